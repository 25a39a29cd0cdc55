"""The analyst page's callbacks as plain functions on the demo data (``demo_db``).

A draw payload (what dash-leaflet's EditControl sends) becomes a saved impact zone and a card whose numbers equal the
HTTP API's for the same geometry; a circle is stored as a geodesic polygon (checked with pyproj.Geod); ring
populations add up to the population of the outer buffer (area weighting is additive); a save that fails (database
unreachable) keeps the drawing as pending with its error, and a retry saves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import text

from dashboards.app import create_app
from layers.store.settings import Settings
from tests.conftest import api_token, authorize

pytestmark = pytest.mark.db
analyst: Any = None  # dashboards.pages.analyst, imported once an app exists (see the ``app`` fixture)

SQUARE = {"type": "Polygon", "coordinates": [[[111.62, 40.78], [111.74, 40.78], [111.74, 40.86], [111.62, 40.86],
                                              [111.62, 40.78]]]}


def feature(geometry: dict[str, Any], kind: str, leaflet_id: int, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"type": kind, "_leaflet_id": leaflet_id, **props}}


@pytest.fixture(scope="module")
def app(demo_db: Any) -> Iterator[Any]:
    a = create_app(Settings(database_url=demo_db.url))
    global analyst
    from dashboards.pages import analyst  # dash.register_page needs an app first
    yield a
    with demo_db.engine.begin() as c:  # leave the shared demo as it was
        c.execute(text("DELETE FROM impact_zones WHERE source = 'analyst'"))
        c.execute(text("DELETE FROM annotations WHERE source = 'analyst'"))


def draw(app: Any, features: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    args = {"seen": [], "pending": [], "mode": "zone", "symbol": "incident", "label": None, "color": "#e53935",
            "user": "analyst-test", "lang": "en", **kw}
    with app.server.test_request_context("/analyst"):
        return analyst.process_drawings(features, **args)


def test_drawn_polygon_is_saved_and_its_card_matches_the_api(app, demo_db, demo_token) -> None:
    out = draw(app, [feature(SQUARE, "polygon", 11)])
    assert out["pending"] == [] and out["saved"] == 1 and out["seen"] == [11]
    zone = out["zones"][0]
    assert zone["kind"] == "drawn" and zone["updated_by"] == "analyst-test"
    card = out["card"]
    api = authorize(app.server.test_client(), demo_token).post("/api/v1/analysis/impact",
                                                              json={"geometry": SQUARE}).get_json()
    assert card["population"] == api["population"] > 0
    assert card["by_region"] == api["by_region"]
    assert card["protection_targets"]["count"] == api["protection_targets"]["count"]
    assert card["shelters"]["inside"]["free"] == api["shelters"]["inside"]["free"]
    assert card["containment"] == "area_weighted" and card["population_source"]["modelled"] is True
    # the stored row: PostGIS geography area equals the area on the card's zone
    with demo_db.engine.connect() as c:
        area, who = c.execute(text("SELECT ST_Area(geom::geography), updated_by FROM impact_zones WHERE id = :i"),
                              {"i": zone["id"]}).one()
    assert card["zone"]["area_m2"] == pytest.approx(area, rel=1e-6) and who == "analyst-test"
    # drawn again (same leaflet id): nothing new is saved
    again = draw(app, [feature(SQUARE, "polygon", 11)], seen=out["seen"])
    assert again["saved"] == 0 and again["new"] == 0
    # the card renders with the population and the plain statement of the source
    with app.server.test_request_context("/analyst?lang=en"):
        html_text = str(analyst.render_card(card, "en"))
    assert f"{round(card['population']):,}" in html_text and "Modelled, not measured" in html_text


def test_drawn_circle_becomes_a_geodesic_polygon(app) -> None:
    lon, lat, r = 111.70, 40.83, 2500.0
    out = draw(app, [feature({"type": "Point", "coordinates": [lon, lat]}, "circle", 21, _mRadius=r)])
    z = out["zones"][0]
    assert z["kind"] == "circle" and z["properties"]["radius_m"] == r
    ring = np.asarray(z["geometry"]["coordinates"][0][0])
    _, _, d = Geod(ellps="WGS84").inv(np.full(len(ring), lon), np.full(len(ring), lat), ring[:, 0], ring[:, 1])
    assert np.max(np.abs(d - r)) < 1e-3
    assert out["source"]["type"] == "Polygon" and out["card"]["population"] > 0


def test_marker_is_a_buffer_source_and_rings_add_up(app) -> None:
    point = {"type": "Point", "coordinates": [111.68, 40.82]}
    out = draw(app, [feature(point, "marker", 31)])
    assert out["saved"] == 0 and out["pending"] == [] and out["source"] == point
    with app.server.test_request_context("/analyst"):
        res = analyst.buffer_zones(out["source"], analyst.parse_distances_km("1, 3"), user="analyst-test", lang="en")
        whole = analyst.impact_card(analyst.buffer_zones(point, [3000.0], user="analyst-test")["zones"][0]["geometry"])
    assert [z["kind"] for z in res["zones"]] == ["ring", "ring"]
    assert [z["properties"]["distance_m"] for z in res["zones"]] == [1000.0, 3000.0]
    rings = res["card"]["rings"]
    assert sum(r["population"] for r in rings) == pytest.approx(whole["population"], rel=1e-3, abs=1.0)
    with pytest.raises(ValueError):
        analyst.parse_distances_km("3,1")


def test_failed_save_keeps_the_drawing_and_retry_saves_it(app, demo_db) -> None:
    down = create_app(Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none"))
    payload = [feature(SQUARE, "rectangle", 41)]
    out = draw(down, payload)
    assert out["saved"] == 0 and len(out["pending"]) == 1
    assert out["pending"][0]["feature"] == payload[0] and out["pending"][0]["error"]
    # an unrelated redraw does not drop or silently retry it
    later = draw(down, payload, seen=out["seen"], pending=out["pending"])
    assert len(later["pending"]) == 1 and later["saved"] == 0
    # retry once the database is back
    ok = draw(app, payload, seen=later["seen"], pending=later["pending"], retry=True)
    assert ok["pending"] == [] and ok["saved"] == 1 and ok["zones"][0]["kind"] == "drawn"


def test_invalid_drawing_stays_pending_with_a_message(app) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[111.6, 40.8], [111.7, 40.9], [111.7, 40.8], [111.6, 40.9],
                                                  [111.6, 40.8]]]}
    out = draw(app, [feature(bowtie, "polygon", 51)])
    assert out["saved"] == 0 and len(out["pending"]) == 1 and "geometry" in out["pending"][0]["error"]


def test_annotation_placed_edited_deleted(app, demo_db) -> None:
    point = {"type": "Point", "coordinates": [111.66, 40.84]}
    out = draw(app, [feature(point, "marker", 61)], mode="annotation", symbol="command_post", label="前方指挥部",
               color="#1e88e5")
    a = out["annotations"][0]
    assert (a["symbol"], a["label"], a["color"]) == ("command_post", "前方指挥部", "#1e88e5")
    api = app.server.test_client().get("/api/v1/annotations").get_json()
    assert a["id"] in [f["id"] for f in api["features"]]
    with app.server.test_request_context("/analyst"):
        b = analyst.edit_annotation("update", a["id"], user="analyst-2", symbol="medical_point", label="医疗点",
                                    color="#43a047")
        assert (b["symbol"], b["label"]) == ("medical_point", "医疗点")
        analyst.edit_annotation("delete", a["id"], user="analyst-3")
    api = app.server.test_client().get("/api/v1/annotations").get_json()
    assert a["id"] not in [f["id"] for f in api["features"]]
    with demo_db.engine.connect() as c:
        hist = c.execute(text("SELECT op, changed_by FROM feature_history WHERE layer = 'annotations' "
                              "AND feature_id = :i ORDER BY id"), {"i": a["id"]}).all()
    assert [tuple(h) for h in hist] == [("insert", "analyst-test"), ("update", "analyst-2"), ("delete", "analyst-3")]


def test_api_endpoints_record_the_user_and_name_bad_fields(app, demo_db) -> None:
    c = app.server.test_client()
    assert c.post("/api/v1/impact-zones", json={"geometry": {"center": [111.7, 40.8], "radius_m": 1000}}
                  ).status_code == 401  # anonymous
    name = f"api-user-{id(c)}"
    authorize(c, api_token(demo_db.engine, name, layers=("impact_zones", "annotations")))
    r = c.post("/api/v1/impact-zones", json={"geometry": {"center": [111.7, 40.8], "radius_m": 1000}})
    assert r.status_code == 201, r.get_data(as_text=True)
    f = r.get_json()["features"][0]
    assert f["properties"]["kind"] == "circle" and f["properties"]["updated_by"] == f"token:{name}"
    assert f["id"] in [x["id"] for x in c.get("/api/v1/impact-zones").get_json()["features"]]
    r = c.post("/api/v1/annotations", json={"geometry": {"type": "Point", "coordinates": [111.7, 40.8]},
                                            "symbol": "unicorn"})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "symbol"
    r = c.post("/api/v1/annotations", json={"geometry": {"type": "Point", "coordinates": [40.8, 111.7]},
                                            "symbol": "fire"})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "geometry"
    r = c.post("/api/v1/annotations", json={"geometry": {"type": "Point", "coordinates": [111.7, 40.8]},
                                            "symbol": "fire", "label": "起火点"})
    aid = r.get_json()["id"]
    r = c.patch(f"/api/v1/annotations/{aid}", json={"color": "#000000", "label": "火点"})
    assert r.status_code == 200 and r.get_json()["properties"]["label"] == "火点"
    assert c.delete(f"/api/v1/annotations/{aid}").status_code == 200
    assert c.get(f"/api/v1/annotations/{aid}").status_code == 404
    assert c.patch(f"/api/v1/annotations/{aid}", json={"label": "x"}).status_code == 404


def test_layout_renders_with_the_symbol_set(app) -> None:
    with app.server.test_request_context("/analyst?lang=en"):
        text_ = str(analyst.layout(lang="en"))
    for s in analyst.SYMBOLS:
        assert f"symbols/{s}.svg" in text_
    assert "Draw impact zones" in text_


def test_callbacks_that_write_need_a_role_that_may_draw(app, demo_db) -> None:
    from dashboards.i18n import t
    from tests.conftest import signed_in

    args = ({"features": [feature(SQUARE, "polygon", 71)]}, None, None, [], [], None, 0, "zone", "incident", None,
            "#e53935", "1")
    with demo_db.engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM impact_zones")).scalar_one()
    with app.server.test_request_context("/analyst?lang=en"):
        for role in (None, "viewer", "display"):  # anonymous, then signed in but reading only
            if role is None:
                out = analyst.on_draw(*args)
            else:
                with signed_in(role):
                    out = analyst.on_draw(*args)
            assert t("auth.not_allowed", "en") in str(out[5]), role
    with demo_db.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM impact_zones")).scalar_one() == before


def n_zones(layers: list) -> int:
    """Zones drawn by a list of GeoJSON layers (one zone each, or one FeatureCollection of zones)."""
    return sum(len(g.data["features"]) if g.data.get("type") == "FeatureCollection" else 1 for g in layers)


def test_replay_shows_the_zones_and_incidents_of_that_time(app, demo_db) -> None:
    """Replay before a zone was drawn: not on the map; after: on it; open incidents and hazards in force are the
    store's (counted in SQL); back to live shows the live zones again; the badge says the replay time."""
    from zoneinfo import ZoneInfo

    with demo_db.engine.connect() as c:
        t0 = c.execute(text("SELECT clock_timestamp()")).scalar_one()
    draw(app, [feature(SQUARE, "polygon", 91)])
    with demo_db.engine.connect() as c:
        t1 = c.execute(text("SELECT clock_timestamp()")).scalar_one()
        zones_now = c.execute(text("SELECT count(*) FROM impact_zones WHERE deleted_at IS NULL")).scalar_one()
        open_incidents = c.execute(text("SELECT count(*) FROM incidents WHERE deleted_at IS NULL "
                                        "AND status <> 'closed'")).scalar_one()
        hazards = c.execute(text("SELECT count(*) FROM hazards WHERE deleted_at IS NULL AND status = 'active' AND "
                                 "(onset IS NULL OR onset <= :t) AND (expires IS NULL OR expires > :t)"),
                            {"t": t1}).scalar_one()

    def state(at):
        return {"mode": "replay", "at": at.isoformat()}

    with app.server.test_request_context("/analyst?lang=en"):
        before = analyst.show_replay(state(t0))
        after = analyst.show_replay(state(t1))
        live = analyst.show_replay({"mode": "live", "at": None})
    assert (n_zones(after[1]), n_zones(before[1]), n_zones(live[1])) == (zones_now, zones_now - 1, min(zones_now, 100))
    assert len(after[0]) == hazards + open_incidents and open_incidents > 0
    assert live[0] == [] and "sr-hidden" in live[4]
    assert after[3] == "Replay " + t1.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
    assert "sr-hidden" not in after[4]



def test_report_button_is_on_the_page(app) -> None:
    from dashboards import ids

    with app.server.test_request_context("/analyst?lang=en"):
        page = str(analyst.layout(lang="en"))
    assert ids.ANALYST_SITREP in page and "Situation report" in page
    assert "/api/v1/reports/sitrep?format=pdf&lang=en" in page


def test_a_smaller_zone_lies_on_top_of_a_larger_one_that_covers_it(app) -> None:
    """The zones layer draws the largest first: a click inside a small zone drawn within a large one selects the small
    one (the last drawn path is the one the browser hits), whatever order the list has (newest first)."""
    def zone(zid: int, half: float) -> dict[str, Any]:
        ring = [[111.0 - half, 40.0 - half], [111.0 + half, 40.0 - half], [111.0 + half, 40.0 + half],
                [111.0 - half, 40.0 + half], [111.0 - half, 40.0 - half]]
        return {"id": zid, "kind": "drawn", "geometry": {"type": "Polygon", "coordinates": [ring]}}

    for listed in ([zone(3, 0.01), zone(2, 0.5), zone(1, 0.1)], [zone(1, 0.1), zone(3, 0.01), zone(2, 0.5)]):
        (layer,) = analyst._zone_layers(listed)
        assert [f["properties"]["id"] for f in layer.data["features"]] == [2, 1, 3]
