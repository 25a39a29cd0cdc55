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
from layers.render.tiles import TileError, tile_bounds, tile_for_lonlat
from layers.store.models import Hazard, Incident, Shelter
from layers.store.registry import layer
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


# --- clusters (incidents below their cluster_below zoom) -------------------------------------------------------------

CZ = 6


def oracle_cells(points: list[tuple[float, float, str]], z: int, x: int, y: int) -> dict[tuple[int, int], list]:
    """Points of each cluster cell that can show in tile z/x/y, by the Mercator formulas (cells reach one cell beyond
    the tile, so that a cell is whole in every tile that shows it)."""
    cells: dict[tuple[int, int], list] = {}
    for lon, lat, sev in points:
        fx, fy = merc_tile_xy(lon, lat, z, x, y)
        if -mvt.CLUSTER_CELL <= fx <= mvt.EXTENT + mvt.CLUSTER_CELL and \
                -mvt.CLUSTER_CELL <= fy <= mvt.EXTENT + mvt.CLUSTER_CELL:
            cells.setdefault((math.floor(fx / mvt.CLUSTER_CELL), math.floor(fy / mvt.CLUSTER_CELL)), []).append(
                (fx, fy, sev))
    return cells


def _expected(cells: dict[tuple[int, int], list]) -> list[tuple]:
    """(count, x, y, top severity, {severity: count}) of each cell whose mean position lies in the tile + buffer."""
    order = ["general", "large", "major", "extraordinary"]
    out = []
    for members in cells.values():
        mx = round(sum(m[0] for m in members) / len(members))
        my = round(sum(m[1] for m in members) / len(members))
        if not (-mvt.BUFFER <= mx <= mvt.EXTENT + mvt.BUFFER and -mvt.BUFFER <= my <= mvt.EXTENT + mvt.BUFFER):
            continue
        sevs = [m[2] for m in members]
        counts = {s: sevs.count(s) for s in order if s in sevs}
        out.append((len(members), mx, my, max(sevs, key=order.index), counts))
    return sorted(out, key=lambda r: (r[1], r[2]))


def _decoded(data: bytes) -> list[tuple]:
    out = []
    for f in decode(data).get("incidents", []):
        p = f["properties"]
        fx, fy = f["geometry"]["coordinates"]
        if p.get("cluster"):
            counts = {k[len("count_"):]: v for k, v in p.items() if k.startswith("count_")}
            assert f.get("id", 0) == 0 and set(p) <= {"severity", "cluster", "point_count"} | {
                f"count_{k}" for k in counts}
            out.append((p["point_count"], fx, fy, p["severity"], counts))
        else:
            assert f["id"] > 0 and p["source"] == "pytest-mvt" and "point_count" not in p
            out.append((1, fx, fy, p["severity"], {p["severity"]: 1}))
    return sorted(out, key=lambda r: (r[1], r[2]))


def test_below_cluster_zoom_a_tile_holds_one_feature_per_cell_with_its_counts(session: Session) -> None:
    import random

    rng = random.Random(7)
    x, y = tile_for_lonlat(111.7, 40.8, CZ)
    w, s, e, n = tile_bounds(CZ, x, y)
    sevs = ["general", "large", "major", "extraordinary"]
    # a dense town, scattered points, and points just beyond every edge of the tile
    points = [(111.7 + rng.gauss(0, 0.05), 40.8 + rng.gauss(0, 0.05), rng.choice(sevs)) for _ in range(300)]
    points += [(rng.uniform(w, e), rng.uniform(s, n), rng.choice(sevs)) for _ in range(400)]
    points += [(rng.uniform(w - 0.2, w), rng.uniform(s, n), "major") for _ in range(40)]
    points += [(rng.uniform(w, e), rng.uniform(n, n + 0.2), "general") for _ in range(40)]
    for lon, lat, sev in points:
        add_incident(session, lon, lat, severity=sev)
    gone = add_incident(session, 111.7, 40.8, severity="extraordinary")
    session.execute(update(Incident).where(Incident.id == gone).values(deleted_at=datetime.now(UTC)))
    assert mvt.clusters_at("incidents", CZ)
    got = _decoded(mvt.tile(session, "incidents", CZ, x, y).data)
    expected = _expected(oracle_cells(points, CZ, x, y))
    assert len(got) == len(expected) and any(r[0] > 20 for r in got) and any(r[0] == 1 for r in got)
    for g, want in zip(got, expected, strict=True):
        assert (g[0], g[3], g[4]) == (want[0], want[3], want[4])
        assert abs(g[1] - want[1]) <= 1 and abs(g[2] - want[2]) <= 1  # float sums may round the other way
    # the west neighbour shows the clusters of cells reaching over the shared edge, at the same place
    west = _decoded(mvt.tile(session, "incidents", CZ, x - 1, y).data)
    shared = {(c, fx - mvt.EXTENT, fy) for c, fx, fy, *_ in west if fx > mvt.EXTENT - mvt.BUFFER}
    mine = {(c, fx, fy) for c, fx, fy, *_ in got if fx < mvt.BUFFER}
    assert shared == mine and shared


def test_clusters_stop_at_the_layer_s_cluster_zoom(session: Session) -> None:
    for lon, lat in POINTS:
        add_incident(session, lon, lat)
    below = layer("incidents").cluster_below
    assert below is not None
    x, y = tile_for_lonlat(*POINTS[0], below)
    feats = decode(mvt.tile(session, "incidents", below, x, y).data)["incidents"]
    assert not mvt.clusters_at("incidents", below) and all("point_count" not in f["properties"] for f in feats)
    x, y = tile_for_lonlat(*POINTS[0], below - 1)
    feats = decode(mvt.tile(session, "incidents", below - 1, x, y).data)["incidents"]
    assert sum(f["properties"].get("point_count", 1) for f in feats) == len(POINTS)
    assert any(f["properties"].get("cluster") for f in feats)
