"""Place search (``GET /api/v1/places``, ``layers.reference.search``) and the popups' identify
(``dashboards.services.identify`` over ``layers.read.pick``) against the demo store.

Oracles: the admin regions and shelters are read with plain SQL; the GeoNames places from the packaged file
(``layers.reference.places``); pinyin keys are written here by hand, not derived from the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from dashboards.app import create_app
from layers.store.settings import Settings

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def client(demo_db: Any) -> Iterator[Any]:
    """An app whose service area is the demo's (Inner Mongolia and around), as the demo is run."""
    from layers.render.tiles import DEMO_BBOX

    yield create_app(Settings(database_url=demo_db.url, mode="demo",
                              service_area=DEMO_BBOX)).server.test_client()


def places(client: Any, q: str, **kw: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/places", query_string={"q": q, **kw})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["places"]


def one_row(demo_db: Any, sql: str) -> Any:
    with demo_db.engine.connect() as c:
        return c.execute(text(sql)).one()


@pytest.mark.parametrize("query", ["呼和浩特市", "呼和浩特", "huhehaote", "Hu He Hao Te", "hhht"])
def test_a_prefecture_is_found_by_its_chinese_name_with_or_without_suffix_and_by_pinyin(client: Any, demo_db: Any,
                                                                                       query: str) -> None:
    adcode, w, s, e, n = one_row(demo_db, "SELECT adcode, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), "
                                          "ST_YMax(geom) FROM admin_regions WHERE name = '呼和浩特市'")
    hits = places(client, query)
    first = hits[0]
    assert (first["code"], first["name"], first["kind"]) == (adcode, "呼和浩特市", "prefecture"), hits[:3]
    assert first["bbox"] == pytest.approx([w, s, e, n])


def test_a_county_by_pinyin_names_its_prefecture(client: Any, demo_db: Any) -> None:
    adcode, parent = one_row(demo_db, "SELECT r.adcode, p.name FROM admin_regions r JOIN admin_regions p "
                                      "ON p.adcode = r.parent_adcode WHERE r.name = '土默特左旗'")
    hit = places(client, "tumotezuoqi")[0]
    assert (hit["code"], hit["kind"], hit["parent"]) == (adcode, "county", parent)


def test_a_geonames_town_by_its_english_name(client: Any) -> None:
    from layers.reference.places import inner_mongolia_places

    town = next(p for p in inner_mongolia_places() if p.name_zh and 2000 < p.population < 60000
                and " " not in p.name_en)
    hits = places(client, town.name_en, limit=50)
    hit = next(h for h in hits if h["code"] == f"geonames:{town.geonameid}")
    assert (hit["kind"], hit["name"], hit["name_en"]) == ("place", town.name_zh, town.name_en)
    assert (hit["lon"], hit["lat"]) == pytest.approx((town.lon, town.lat))


def test_nothing_outside_the_service_area_and_nothing_for_nonsense(client: Any) -> None:
    assert places(client, "zzqxj") == []
    # Shanghai's GeoNames places lie outside the demo's service area (Inner Mongolia and around)
    assert [h["name_en"] for h in places(client, "Shanghai", limit=50) if h["lat"] < 32.0] == []


@pytest.mark.parametrize("qs,field", [({}, "q"), ({"q": ""}, "q"), ({"q": "x" * 61}, "q"),
                                      ({"q": "hohhot", "limit": 0}, "limit"), ({"q": "hohhot", "limit": 51}, "limit"),
                                      ({"q": "hohhot", "limit": "ten"}, "limit")])
def test_bad_queries_are_refused_naming_the_field(client: Any, qs: dict[str, Any], field: str) -> None:
    r = client.get("/api/v1/places", query_string=qs)
    assert r.status_code == 400, r.get_json()
    assert field in r.get_data(as_text=True)


def test_identify_reads_the_shelter_under_a_click_and_the_popup_escapes_its_name(demo_db: Any) -> None:
    from dashboards.components.maplayers import identify_overlays, popup_body
    from dashboards.services.identify import identify

    sid, lon, lat, cap, occ = one_row(demo_db, "SELECT id, ST_X(geom), ST_Y(geom), capacity, occupancy FROM shelters "
                                               "WHERE capacity > 0 AND deleted_at IS NULL ORDER BY id LIMIT 1")
    evil = "<img src=x onerror=alert(1)>"
    with demo_db.engine.begin() as c:
        old = c.execute(text("SELECT name FROM shelters WHERE id = :i"), {"i": sid}).scalar_one()
        c.execute(text("UPDATE shelters SET name = :n WHERE id = :i"), {"n": evil, "i": sid})
    try:
        with demo_db.engine.connect() as c:
            # a click 3 pixels off the symbol at zoom 15 still finds it; the shelter layer only
            dlon = 3 * 360.0 / (256 * 2 ** 15)
            found = identify(c, lon + dlon, lat, zoom=15, overlays=identify_overlays(["shelters"]), lang="en")
            far = identify(c, lon + 40 * dlon, lat, zoom=15, overlays=identify_overlays(["shelters"]), lang="en")
        assert far == [] or all(f["id"] != sid for g in far for f in g["features"])
        group = found[0]
        assert group["overlay"] == "shelters" and group["features"][0]["id"] == sid
        feat = group["features"][0]
        assert feat["title"] == evil
        assert ("Load", f"{100 * occ / cap:.0f}%") in feat["rows"]
        body = popup_body(found, "en").to_plotly_json()
        # the name is a text child (React escapes it), never dangerouslySetInnerHTML
        assert "dangerouslySetInnerHTML" not in repr(body)
        assert evil in repr(body)
    finally:
        with demo_db.engine.begin() as c:
            c.execute(text("UPDATE shelters SET name = :n WHERE id = :i"), {"n": old, "i": sid})
