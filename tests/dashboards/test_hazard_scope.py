"""Issue 17 item 1: one large or wrapping hazard polygon must not blank the wall, the risk or the sitrep.

* A hazard over Inner Mongolia's whole bounding box (97-126 E x 37-53 N, 4 million km2) is in scope: accepted, and
  the wall, the risk and the sitrep compute it (before: h3ronpy's "pentagon distortion", three 500s).
* Out of scope, refused with a 422 naming the limit: all of China's box (20 million km2), a polygon wrapping the
  antimeridian, the whole world (before: 200, then 500s everywhere).
* Such polygons already stored (written before the limit) are skipped by every shared picture and listed in its
  ``skipped``; the other hazards are still computed (the totals equal those computed without the bad rows).

The rows this module writes to the shared demo database are deleted at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from dashboards.app import create_app
from layers.read import situation
from layers.store.models import Hazard
from layers.store.settings import Settings
from tests.conftest import authorize

pytestmark = pytest.mark.db

SRC = f"pytest-hazard-scope-{os.getpid()}"


def _box(w: float, s: float, e: float, n: float) -> list[list[list[float]]]:
    return [[[w, s], [e, s], [e, n], [w, n], [w, s]]]


def _hazard(fid: str, rings: list[list[list[float]]], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "id": fid, "geometry": {"type": "Polygon", "coordinates": rings},
            "properties": {"name": fid, "kind": "cold_wave", "warning_level": "blue", "status": "active", **props}}


ANTIMERIDIAN = [[[170, 40], [-170, 40], [-170, 50], [170, 50], [170, 40]]]


@pytest.fixture(scope="module")
def client(demo_db: Any, demo_token: str) -> Iterator[Any]:
    app = create_app(Settings(database_url=demo_db.url, mode="demo"))
    yield authorize(app.server.test_client(), demo_token)
    with Session(demo_db.engine) as s, s.begin():
        s.execute(delete(Hazard).where(Hazard.source == SRC))
    situation.clear_cache()


def _pictures(client: Any) -> dict[str, Any]:
    wall = client.get("/api/v1/wall/snapshot?zoom=5")
    risk = client.get("/api/v1/analysis/risk")
    sitrep = client.get("/api/v1/reports/sitrep?format=html")
    assert (wall.status_code, risk.status_code, sitrep.status_code) == (200, 200, 200), \
        (wall.get_data(as_text=True)[:300], risk.get_data(as_text=True)[:300])
    return {"wall": wall.get_json(), "risk": risk.get_json(), "sitrep": sitrep.get_data(as_text=True)}


@pytest.mark.parametrize(("rings", "code"), [
    (_box(74, 19, 134, 53), "area_too_large"),
    (ANTIMERIDIAN, "outside_service_area"),
    (_box(-180, -90, 180, 90), "outside_service_area"),
], ids=["all-china-box", "antimeridian", "world"])
def test_out_of_scope_hazards_are_422_naming_the_limit(client: Any, rings: Any, code: str) -> None:
    r = client.post(f"/api/v1/layers/hazards?source={SRC}", json=_hazard(f"oos-{code}", rings))
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    problem = r.get_json()["error"]["problems"][0]
    assert problem["field"] == "geometry"
    assert ("SITROOM_MAX_HAZARD_AREA_KM2" if code == "area_too_large" else "SITROOM_SERVICE_AREA") \
        in problem["allowed"]


def test_a_province_wide_hazard_is_computed_everywhere(client: Any, demo_db: Any) -> None:
    before = _pictures(client)["wall"]["kpis"]["affected"]["total"]
    r = client.post(f"/api/v1/layers/hazards?source={SRC}", json=_hazard("province", _box(97, 37, 126, 53)))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    try:
        got = _pictures(client)
        assert got["wall"]["skipped"] == [] and got["risk"]["skipped"] == []
        # the box holds all of Inner Mongolia's modelled population: the affected total is that population
        with demo_db.engine.connect() as c:
            everyone = c.execute(text("SELECT sum(population) FROM population_cells WHERE res = 8 AND "
                                      "source = (SELECT source FROM population_sources WHERE res = 8 "
                                      "ORDER BY built_at DESC LIMIT 1)")).scalar_one()
        total = got["wall"]["kpis"]["affected"]["total"]
        assert total > before and total == pytest.approx(float(everyone), rel=0.02)
        assert any(h["name"] == "province" for h in got["risk"]["hazards"])
    finally:
        with Session(demo_db.engine) as s, s.begin():
            s.execute(delete(Hazard).where(Hazard.source == SRC))


def test_stored_out_of_scope_hazards_are_skipped_and_named(client: Any, demo_db: Any) -> None:
    clean = _pictures(client)
    with Session(demo_db.engine) as s, s.begin():  # as the server accepted them before the limit
        for name, wkt in (("world", "POLYGON((-179 -89,0 -89,179 -89,179 89,0 89,-179 89,-179 -89))"),
                          ("wraps", "POLYGON((170 40,-170 40,-170 50,170 50,170 40))"),
                          ("china", "POLYGON((74 19,134 19,134 53,74 53,74 19))")):
            s.execute(text("INSERT INTO hazards (source, external_id, name, kind, status, warning_level, geom) "
                           "VALUES (:src, :xid, :name, 'cold_wave', 'active', 'red', "
                           "ST_Multi(ST_GeomFromText(:wkt, 4326)))"), {"src": SRC, "xid": name, "name": name, "wkt": wkt})
    try:
        got = _pictures(client)
        for picture in ("wall", "risk"):
            skipped = got[picture]["skipped"]
            assert sorted(x["name"] for x in skipped) == ["china", "world", "wraps"], picture
            assert {x["layer"] for x in skipped} == {"hazards"}
            assert all(isinstance(x["id"], int) and x["reason"] for x in skipped)
        # the rest of the picture is what it was without them
        assert got["wall"]["kpis"]["affected"]["total"] == pytest.approx(clean["wall"]["kpis"]["affected"]["total"])
        assert got["risk"]["totals"] == clean["risk"]["totals"]
        assert got["wall"]["kpis"]["incidents"] == clean["wall"]["kpis"]["incidents"]
        for name in ("world", "wraps", "china"):
            assert name in got["sitrep"].split('id="sitrep-skipped"')[1].split("</div>")[0]
    finally:
        with Session(demo_db.engine) as s, s.begin():
            s.execute(delete(Hazard).where(Hazard.source == SRC))
