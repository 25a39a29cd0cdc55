"""Vector tiles from PostGIS: decoded by an independent decoder (mapbox-vector-tile) and checked against the rows.

The oracle is plain arithmetic on the rows as inserted: a point belongs to tile z/x/y when its Web-Mercator
position falls inside the tile plus the buffer; its tile coordinates are the spherical-Mercator formulas.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

import mapbox_vector_tile
import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, create_engine, insert, update
from sqlalchemy.orm import Session

from layers.render import mvt
from layers.render.tiles import TileError, tile_for_lonlat
from layers.store.models import Hazard, Incident, Shelter
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

Z = 10
POINTS = [(111.70, 40.82), (111.71, 40.83), (111.69, 40.81), (111.72, 40.80)]


def merc_tile_xy(lon: float, lat: float, z: int, x: int, y: int) -> tuple[float, float]:
    """Tile coordinates (0..EXTENT, y from the top) of a point, by the spherical-Mercator formulas."""
    n = 1 << z
    gx = (lon + 180.0) / 360.0 * n
    gy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return (gx - x) * mvt.EXTENT, (gy - y) * mvt.EXTENT


def decode(data: bytes) -> dict[str, list[dict]]:
    out = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return {name: layer["features"] for name, layer in out.items()}


def add_incident(s: Session, lon: float, lat: float, **kw: object) -> int:
    row = {"source": "pytest-mvt", "kind": "fire", "status": "reported", "severity": "major",
           "occurred_at": datetime(2026, 7, 1, 8, 30, tzinfo=UTC), "geom": f"SRID=4326;POINT({lon} {lat})", **kw}
    return int(s.execute(insert(Incident).values(**row).returning(Incident.id)).scalar_one())


def test_a_tile_holds_exactly_the_live_rows_of_the_tile_at_their_positions(session: Session) -> None:
    ids = [add_incident(session, lon, lat, name=f"火 {i}", casualties=i) for i, (lon, lat) in enumerate(POINTS)]
    gone = add_incident(session, 111.705, 40.815)
    session.execute(update(Incident).where(Incident.id == gone).values(deleted_at=datetime.now(UTC)))
    x, y = tile_for_lonlat(*POINTS[0], Z)
    feats = decode(mvt.tile(session, "incidents", Z, x, y).data)["incidents"]
    mine = {f["id"]: f for f in feats if f["properties"].get("source") == "pytest-mvt"}
    expected = {i for i, (lon, lat) in zip(ids, POINTS, strict=True)
                if all(-mvt.BUFFER <= c <= mvt.EXTENT + mvt.BUFFER for c in merc_tile_xy(lon, lat, Z, x, y))}
    assert set(mine) == expected and gone not in mine and expected
    for i, (lon, lat) in zip(ids, POINTS, strict=True):
        if i not in expected:
            continue
        fx, fy = mine[i]["geometry"]["coordinates"]
        ex, ey = merc_tile_xy(lon, lat, Z, x, y)
        assert abs(fx - ex) <= 0.5 and abs(fy - ey) <= 0.5  # snapped to the tile grid, never further
        p = mine[i]["properties"]
        assert (p["kind"], p["status"], p["severity"], p["occurred_at"]) == (
            "fire", "reported", "major", "2026-07-01T08:30:00Z")
        assert p["name"] == f"火 {ids.index(i)}" and p["casualties"] == ids.index(i)


def test_a_tile_far_from_every_feature_is_empty(session: Session) -> None:
    add_incident(session, *POINTS[0])
    x, y = tile_for_lonlat(-60.0, -30.0, Z)
    assert mvt.tile(session, "incidents", Z, x, y).data == b""


def test_a_polygon_beyond_mercator_latitudes_does_not_break_the_tile(session: Session) -> None:
    world = MultiPolygon([box(60, -89.9, 150, 89.9)])  # beyond Web Mercator at both poles
    small = MultiPolygon([box(111.6, 40.7, 111.8, 40.9)])
    for name, g in (("world", world), ("small", small)):
        session.execute(insert(Hazard).values(source="pytest-mvt", name=name, kind="flood", status="active",
                                              warning_level="red", geom=f"SRID=4326;{g.wkt}"))
    x, y = tile_for_lonlat(111.7, 40.8, 6)
    names = {f["properties"]["name"] for f in decode(mvt.tile(session, "hazards", 6, x, y).data)["hazards"]}
    assert {"world", "small"} <= names


def test_bad_tiles_and_layers_are_refused(session: Session) -> None:
    with pytest.raises(TileError, match="x must be in"):
        mvt.tile(session, "incidents", 3, 8, 0)
    with pytest.raises(KeyError, match="known layers"):
        mvt.tile(session, "people", 3, 0, 0)


@pytest.fixture
def own_engine(db_url: str) -> Iterator[Engine]:
    """A database of this test's own: its writes commit, so that versions settle as in production."""
    url = sibling_database(db_url, "mvt")
    eng = create_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()
        drop_database(url)


def test_the_cache_serves_a_layer_until_that_layer_changes(own_engine: Engine) -> None:
    mvt.clear_cache()
    x, y = tile_for_lonlat(*POINTS[0], Z)
    with Session(own_engine) as s, s.begin():
        add_incident(s, *POINTS[0], name="first")
    with own_engine.connect() as c:
        a = mvt.tile(c, "incidents", Z, x, y)
        b = mvt.tile(c, "incidents", Z, x, y)
    assert (a.cached, b.cached, a.data == b.data) == (False, True, True)
    with Session(own_engine) as s, s.begin():  # another layer changes: the incident tile stays cached
        s.execute(insert(Shelter).values(source="pytest-mvt", kind="emergency", status="open", capacity=10,
                                         geom=f"SRID=4326;POINT({POINTS[1][0]} {POINTS[1][1]})"))
    with own_engine.connect() as c:
        assert mvt.tile(c, "incidents", Z, x, y).cached
    with Session(own_engine) as s, s.begin():
        add_incident(s, *POINTS[1], name="second")
    with own_engine.connect() as c:
        after = mvt.tile(c, "incidents", Z, x, y)
    assert not after.cached and after.version > a.version
    names = {f["properties"]["name"] for f in decode(after.data)["incidents"]}
    assert names == {"first", "second"}
    assert mvt.cache_info()["tiles"] >= 2
