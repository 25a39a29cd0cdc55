"""GET /api/v1/tiles/<layer>/<z>/<x>/<y>.mvt: the pages' vector tiles, decoded independently, with their ETags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import pytest
from sqlalchemy import Engine, create_engine, insert
from sqlalchemy.orm import Session

from dashboards.app import create_app
from layers.render import mvt
from layers.render.tiles import tile_for_lonlat
from layers.store.models import Incident
from layers.store.settings import Settings
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

Z = 9
HOHHOT = (111.70, 40.82)


@pytest.fixture(scope="module")
def own(db_url: str) -> Iterator[tuple[Engine, Any]]:
    """A database of this module's own (its writes commit) and a test client of an app reading it."""
    url = sibling_database(db_url, "vtiles")
    eng = create_engine(url)
    try:
        yield eng, create_app(Settings(database_url=url)).server.test_client()
    finally:
        eng.dispose()
        drop_database(url)


def add(eng: Engine, name: str, lon: float, lat: float) -> int:
    with Session(eng) as s, s.begin():
        return int(s.execute(insert(Incident).values(
            source="pytest", name=name, kind="fire", status="reported", severity="major",
            geom=f"SRID=4326;POINT({lon} {lat})").returning(Incident.id)).scalar_one())


def names(data: bytes) -> set[str]:
    layers = mapbox_vector_tile.decode(data)
    return {f["properties"]["name"] for f in layers.get("incidents", {}).get("features", [])}


def test_a_tile_is_the_store_s_features_with_an_etag_that_moves_with_the_layer(own: tuple[Engine, Any]) -> None:
    eng, client = own
    first = add(eng, "one", *HOHHOT)
    x, y = tile_for_lonlat(*HOHHOT, Z)
    url = f"/api/v1/tiles/incidents/{Z}/{x}/{y}.mvt"
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    assert names(r.data) == {"one"}
    with eng.connect() as c:  # the same bytes as the one source
        assert r.data == mvt.tile(c, "incidents", Z, x, y).data
    etag = r.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    add(eng, "two", HOHHOT[0] + 0.01, HOHHOT[1])
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["ETag"] != etag and names(again.data) == {"one", "two"}
    assert first > 0


def test_a_tile_with_no_feature_is_empty(own: tuple[Engine, Any]) -> None:
    x, y = tile_for_lonlat(-60.0, -30.0, Z)
    r = own[1].get(f"/api/v1/tiles/incidents/{Z}/{x}/{y}.mvt")
    assert (r.status_code, r.data) == (200, b"")


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/api/v1/tiles/people/5/25/11.mvt", 404, None),
    ("/api/v1/tiles/shelters/2/3/1.mvt", 404, "z"),
    ("/api/v1/tiles/incidents/5/99/11.mvt", 400, None),
])
def test_bad_tiles_are_named(own: tuple[Engine, Any], path: str, status: int, field: str | None) -> None:
    r = own[1].get(path)
    assert r.status_code == status
    err = r.get_json()["error"]
    assert err["field"] == field
    assert ("known layers" in err["detail"]) if "people" in path else True
