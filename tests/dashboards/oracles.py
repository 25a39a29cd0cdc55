"""Independent oracles of the analysis tests: what the store holds, read with plain SQL and the history, and brute
force with ``pyproj.Geod``, ``shapely`` and ``h3`` over it.

Nothing here imports the code under test (``geoops``, ``layers``, ``dashboards``). In particular the live features
are not chosen with the code's ``deleted_at IS NULL``: a feature exists now when the newest row of its history (written
by the triggers on every change) is not a ``delete`` or ``purge`` (:func:`live_ids`).

Public: :data:`GEOD`, :func:`live_ids`, :func:`live_rows`, :func:`brute_nearest`, :func:`cell_polygon`,
:func:`geod_area_m2`, :func:`cell_fractions`, :func:`stored_population`, :func:`distance_to_polygon_m`,
:func:`max_flow`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import h3
import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

GEOD = Geod(ellps="WGS84")


def live_ids(conn: Connection, layer: str) -> set[int]:
    """The features of ``layer`` that exist now, from the history alone (module docstring)."""
    rows = conn.execute(text(
        "SELECT DISTINCT ON (feature_id) feature_id, op FROM feature_history WHERE layer = :layer "
        "ORDER BY feature_id, id DESC"), {"layer": layer}).all()
    return {int(fid) for fid, op in rows if op not in ("delete", "purge")}


def live_rows(conn: Connection, layer: str, columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every row of ``layer`` (no filter in SQL), kept when :func:`live_ids` has it: ``id``, ``columns``, and the
    geometry as ``lon``, ``lat`` (points) and ``geometry`` (shapely)."""
    cols = "".join(f", {c}" for c in columns)
    rows = conn.execute(text(f'SELECT id, ST_AsBinary(geom) AS wkb{cols} FROM "{layer}" ORDER BY id')).all()
    live = live_ids(conn, layer)
    out = []
    for r in rows:
        if int(r.id) not in live:
            continue
        d = dict(r._mapping)
        d["geometry"] = shapely.from_wkb(bytes(d.pop("wkb")))
        if d["geometry"].geom_type == "Point":
            d["lon"], d["lat"] = d["geometry"].x, d["geometry"].y
        out.append(d)
    return out


def brute_nearest(lon: float, lat: float, rows: Sequence[dict[str, Any]], k: int) -> list[tuple[int, float]]:
    """``(id, distance_m)`` of the k rows nearest to the point by ``Geod.inv``, ties by id."""
    if not rows:
        return []
    ids = np.array([r["id"] for r in rows])
    _, _, d = GEOD.inv(np.full(len(rows), lon), np.full(len(rows), lat), [r["lon"] for r in rows],
                       [r["lat"] for r in rows])
    order = np.lexsort((ids, d))[:k]
    return [(int(ids[i]), float(d[i])) for i in order]


def cell_polygon(cell: str) -> Polygon:
    """The outline of an H3 cell in lon/lat, from h3-py."""
    return Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def geod_area_m2(geom: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid (``Geod.geometry_area_perimeter``), metres squared."""
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def cell_fractions(zone: BaseGeometry, res: int) -> dict[str, float]:
    """Every H3 cell of ``res`` that shares area with ``zone``, with the share of the cell's ellipsoidal area inside.

    Brute force: every cell whose centre lies in the zone's bounding box grown by 0.05 degree (more than a res-5
    cell's radius at these latitudes, so no cell that touches the zone is missed) is cut with shapely, and the
    pieces measured with ``Geod``.
    """
    w, s, e, n = zone.bounds
    grow = 0.05 if res >= 6 else 0.2
    box = h3.LatLngPoly([(s - grow, w - grow), (s - grow, e + grow), (n + grow, e + grow), (n + grow, w - grow)])
    shapely.prepare(zone)
    out = {}
    for cell in h3.polygon_to_cells(box, res):
        poly = cell_polygon(cell)
        if not zone.intersects(poly):
            continue
        piece = zone.intersection(poly)
        frac = geod_area_m2(piece) / geod_area_m2(poly) if not piece.is_empty else 0.0
        if frac > 0:
            out[cell] = min(frac, 1.0)
    return out


def stored_population(conn: Connection, cells: Iterable[str], *, res: int, source: str) -> dict[str, float]:
    """The population the store holds on each cell (0 where it holds none), read with plain SQL."""
    cells = list(cells)
    ids = [h3.str_to_int(c) for c in cells]
    got = dict(conn.execute(text("SELECT h3, population FROM population_cells WHERE source = :s AND res = :r "
                                 "AND h3 = ANY(:ids)"), {"s": source, "r": res, "ids": ids}).all())
    return {c: float(got.get(i, 0.0)) for c, i in zip(cells, ids, strict=True)}


def distance_to_polygon_m(lon: float, lat: float, poly: BaseGeometry, *, step_deg: float = 0.0002) -> float:
    """Geodesic distance from a point to a polygon: 0 inside, else the least ``Geod.inv`` distance to its boundary
    densified every ``step_deg`` (about 20 m; edges straight in lon/lat)."""
    if poly.covers(Point(lon, lat)):
        return 0.0
    pts = []
    for ring in shapely.get_parts(shapely.boundary(poly)):
        xy = np.asarray(ring.coords)
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:], strict=True):
            n = max(2, int(np.hypot(x1 - x0, y1 - y0) / step_deg) + 1)
            t = np.linspace(0.0, 1.0, n)
            pts.append(np.column_stack([x0 + (x1 - x0) * t, y0 + (y1 - y0) * t]))
    b = np.concatenate(pts)
    _, _, d = GEOD.inv(np.full(len(b), lon), np.full(len(b), lat), b[:, 0], b[:, 1])
    return float(np.min(d))


def max_flow(cells_xy: np.ndarray, pop: np.ndarray, shelters: Sequence[dict[str, Any]], reach_m: float) -> float:
    """The most people that can be given a place within ``reach_m`` (geodesic, from each cell's centre), no shelter
    over its ``free`` places: scipy's maximum flow on integer centi-persons."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow

    n, m = len(pop), len(shelters)
    src, sink = n + m, n + m + 1
    rows, cols, caps = [], [], []
    big = int(np.sum(pop) * 100) + 1
    for i in range(n):
        rows.append(src), cols.append(i), caps.append(int(round(pop[i] * 100)))
        _, _, d = GEOD.inv(np.full(m, cells_xy[i, 0]), np.full(m, cells_xy[i, 1]),
                           np.array([s["lon"] for s in shelters]), np.array([s["lat"] for s in shelters]))
        for j in np.flatnonzero(np.asarray(d) <= reach_m):
            rows.append(i), cols.append(n + int(j)), caps.append(big)
    for j, s in enumerate(shelters):
        rows.append(n + j), cols.append(sink), caps.append(int(s["free"]) * 100)
    g = csr_matrix((np.asarray(caps, dtype=np.int64), (rows, cols)), shape=(n + m + 2, n + m + 2))
    return maximum_flow(g, src, sink).flow_value / 100.0
