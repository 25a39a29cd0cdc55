"""Free shelter places are those of OPEN shelters, everywhere people read them: the impact card (API and page), the
wall's KPI (snapshot API and page callback) and the situation report. Closed shelters are counted apart ("closed,
could open"), full ones give no free place. Every figure is checked against plain SQL over ``shelters``.

The rows reproduce the finding of the issue (a zone around 111.70 E 40.82 N whose free places were inflated by
36,070 places of two closed shelters), added to the demo's own shelters for the time of this module.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import create_engine, text

from dashboards.app import create_app
from layers.read import situation
from layers.store.settings import Settings
from tests.conftest import api_token, authorize

pytestmark = pytest.mark.db

ZONE = (111.55, 40.70, 111.85, 40.92)  # around 111.70 E 40.82 N (Hohhot)
# (external id, status, capacity, occupancy, lon, lat, deleted): inside the circle unless far away
ROWS = [
    ("open-a", "open", 3000, 1200, 111.66, 40.80, False),
    ("open-b", "open", 900, 0, 111.75, 40.85, False),
    ("open-over", "open", 400, 450, 111.71, 40.83, False),       # over-full but still "open": 0 free, never < 0
    ("full", "full", 800, 790, 111.69, 40.81, False),            # declared full: 10 spare places are not free
    ("closed-a", "closed", 20_000, 0, 111.72, 40.84, False),
    ("closed-b", "closed", 16_070, 0, 111.68, 40.79, False),
    ("open-deleted", "open", 5000, 0, 111.70, 40.82, True),       # soft-deleted: not counted anywhere
    ("open-far", "open", 700, 100, 116.40, 39.90, False),        # far outside the circle (Beijing)
    ("closed-far", "closed", 999, 0, 116.41, 39.91, False),
]


def _sql(c: Any, what: str, where: str) -> int:
    return int(c.execute(text(f"SELECT coalesce({what}, 0) FROM shelters WHERE deleted_at IS NULL AND {where}"),
                         dict(zip("wsen", ZONE, strict=True))).scalar_one())


SPARE = "sum(greatest(capacity - occupancy, 0))"
IN_ZONE = "ST_Intersects(geom, ST_MakeEnvelope(:w, :s, :e, :n, 4326))"


@pytest.fixture(scope="module")
def places_db(demo_db: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    eng = create_engine(demo_db.url)
    with eng.begin() as c:
        c.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
        for x, status, cap, occ, lon, lat, deleted in ROWS:
            c.execute(text("INSERT INTO shelters (source, external_id, name, kind, status, capacity, occupancy, geom,"
                           " deleted_at) VALUES ('free-places', :x, :n, 'fixed', :s, :cap, :occ,"
                           " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), CASE WHEN :d THEN now() END)"),
                      {"x": x, "n": x, "s": status, "cap": cap, "occ": occ, "lon": lon, "lat": lat, "d": deleted})
    with eng.connect() as c:
        oracle = {
            "card_free": _sql(c, SPARE, f"status = 'open' AND {IN_ZONE}"),
            "card_closed": _sql(c, SPARE, f"status = 'closed' AND {IN_ZONE}"),
            "card_n_closed": _sql(c, "count(*)", f"status = 'closed' AND {IN_ZONE}"),
            "card_naive": _sql(c, SPARE, IN_ZONE),  # the old, wrong rule: every status
            "free": _sql(c, SPARE, "status = 'open'"),
            "closed": _sql(c, SPARE, "status = 'closed'"),
            "capacity": _sql(c, "sum(capacity)", "status <> 'closed'"),
            "counts": [_sql(c, "count(*)", f"status = '{st}'") for st in ("open", "full", "closed")],
        }
    situation.clear_cache()
    tmp = tmp_path_factory.mktemp("free_places")
    app = create_app(Settings(database_url=demo_db.url, state_dir=tmp / "state", tile_cache_dir=tmp / "tiles"))
    yield {"app": app, "oracle": oracle, "engine": eng}
    with eng.begin() as c:
        c.execute(text("DELETE FROM shelters WHERE source = 'free-places'"))
    situation.clear_cache()
    eng.dispose()


def test_the_oracle_tells_the_rules_apart(places_db: dict[str, Any]) -> None:
    o = places_db["oracle"]
    assert o["card_free"] >= 1800 + 900 and o["card_closed"] >= 36_070
    assert o["card_naive"] >= o["card_free"] + 36_070 + 10  # what the card used to say


def test_impact_card_counts_only_open_shelters(places_db: dict[str, Any]) -> None:
    o = places_db["oracle"]
    with places_db["app"].server.test_client() as client:
        authorize(client, api_token(places_db["engine"], access="read"))
        r = client.post("/api/v1/analysis/impact",
                        json={"geometry": mapping(box(*ZONE)), "shelter_distance_m": 1000})
    assert r.status_code == 200, r.get_data(as_text=True)
    inside = r.get_json()["shelters"]["inside"]
    assert inside["free"] == o["card_free"]
    assert inside["closed"] == {"count": o["card_n_closed"], "could_open": o["card_closed"]}
    by_id = {s["external_id"]: s for s in inside["items"]}
    assert by_id["closed-a"]["status"] == "closed" and by_id["closed-a"]["free"] == 0
    assert by_id["closed-a"]["could_open"] == 20_000
    assert by_id["full"]["free"] == 0 and by_id["open-over"]["free"] == 0 and "open-deleted" not in by_id


def test_wall_kpi_counts_only_open_shelters(places_db: dict[str, Any]) -> None:
    o = places_db["oracle"]
    app = places_db["app"]
    with app.server.test_client() as client:
        body = client.get("/api/v1/wall/snapshot?zoom=7").get_json()
    sh = body["kpis"]["shelters"]
    assert (sh["free"], sh["closed_places"], sh["total"]) == (o["free"], o["closed"], o["capacity"])
    assert [sh["open"], sh["full"], sh["closed"]] == o["counts"]
    from dashboards import ids
    from dashboards.pages import wall

    with app.server.test_request_context("/wall?lang=en"):
        out = wall.refresh({"ok": True, "refresh": 1}, "incidents", 7, None, None)
    got = {x.component_id: v for x, v in zip(wall.refresh_outputs(), out, strict=True)
           if x.component_property == "children"}
    assert got[ids.WALL_KPI_SHELTER_FREE] == f"{o['free']:,}"
    assert got[ids.WALL_KPI_SHELTER_TOTAL] == f"{o['capacity']:,}"
    assert f"{o['closed']:,}" in got[ids.WALL_KPI_SHELTER_NOTE]


def test_sitrep_counts_only_open_shelters(places_db: dict[str, Any]) -> None:
    o = places_db["oracle"]
    with places_db["app"].server.test_client() as client:
        r = client.get("/api/v1/reports/sitrep?format=pdf&lang=en")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    txt = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=r.data, capture_output=True,
                         check=True).stdout.decode("utf-8")
    flat = re.sub(r"\s+", "", txt)
    assert f"{o['free']:,}/{o['capacity']:,}" in flat
    assert re.sub(r"\s+", "", f"closed, could open: {o['closed']:,} places") in flat
