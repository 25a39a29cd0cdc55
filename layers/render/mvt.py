"""Mapbox Vector Tiles of the feature layers, made by PostGIS (``ST_AsMVT``) and cached by the layer's data version.

Public: :data:`EXTENT`, :data:`BUFFER`, :data:`CLUSTER_CELL`, :class:`VectorTile`, :func:`tile`,
:func:`tile_statement`, :func:`clusters_at`, :func:`clear_cache`, :func:`cache_info`.

One source for every consumer: the pages' maps and OGC API - Tiles serve the same bytes. A tile is the layer's
live features (soft-deleted rows never) that meet the tile's envelope (plus a :data:`BUFFER` margin, so symbols and
strokes at tile edges are not cut), in Web Mercator tile coordinates (WebMercatorQuad, ``EXTENT`` units a side),
one MVT layer named like the Sitroom layer, feature id = the row id, attributes = the registry's
(:meth:`layers.store.registry.LayerDef.all_attributes`; times as ISO 8601 UTC strings).

Clusters: a point layer declared with ``cluster_below`` (:class:`layers.store.registry.LayerDef`; incidents) is
served whole only from that zoom on. Below it, its points are grouped on a grid of :data:`CLUSTER_CELL` tile units
(16 px of a 256 px tile) aligned with the tile: a cell holding one point keeps that feature as it is; a cell holding
several becomes one point at their mean position, with no id and the attributes ``cluster`` (true), ``point_count``,
the layer's ``style_by`` attribute (the highest value of its vocabulary among the cell's points: ``severity``
``extraordinary`` over ``major`` ...) and ``count_<value>`` for each value of that vocabulary present. A cell is
computed whole in every tile that shows it (the search reaches one cell beyond the tile), so a cluster at a tile edge
is the same cluster in both tiles. 100,000 incidents over Inner Mongolia make 9 MB of tiles at zoom 6 as single
points, and a few kilobytes as clusters (``bench/bench_tiles.py``).

Geometries are simplified to a quarter of a tile unit before they are projected (a county outline at zoom 4 need
not carry its metre-level detail), and a geometry reaching beyond Web Mercator's latitude limit is clipped to it
first: one feature of a layer can never make the tile fail.

Caching: per process, in memory, keyed by (database, layer, data version, z, x, y) and bounded in bytes. A change
to a layer moves its data version (:func:`layers.store.registry.layer_version`), so cached tiles of that layer are
never served again and age out of the cache; tiles of the other layers stay valid. One race remains: a transaction
that took its history id before another one committed, and commits after it, adds rows without moving the
version. So a tile made while any transaction was in flight (the snapshot's xmin below its xmax) is served from the
cache for at most :data:`UNSETTLED_TTL_S`; a tile made on a settled store is served until its layer changes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import DateTime, Float, Integer, Text

from layers.render.tiles import MAX_LAT, check_tile
from layers.store.models import FeatureHistory
from layers.store.registry import LayerDef, layer
from layers.store.vocab import keys as vocab_keys

__all__ = ["EXTENT", "BUFFER", "CLUSTER_CELL", "VectorTile", "tile", "tile_statement", "clusters_at", "clear_cache",
           "cache_info"]

#: tile side in MVT units (the MVT default)
EXTENT = 4096
#: margin around the tile, in MVT units, kept so that symbols and strokes at tile edges are drawn whole
BUFFER = 64
#: side of a cluster cell in tile units (16 px of a 256 px tile); divides EXTENT, so cells align across tiles
CLUSTER_CELL = 256
#: bytes of tiles kept per process
CACHE_BYTES = 64 * 1024 * 1024
#: seconds a tile made while transactions were in flight may be served from the cache
UNSETTLED_TTL_S = 1.0
_MERCATOR_HALF = 20037508.342789244
_WORLD_DEG = 360.0


@dataclass(frozen=True)
class VectorTile:
    """One tile: the MVT bytes (empty when no feature meets it), the layer's data version, whether it was cached,
    and whether it was made on a settled store (no transaction in flight: ``version`` then names its content)."""

    data: bytes
    version: int
    cached: bool
    settled: bool = True


_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], tuple[bytes, float]] = OrderedDict()  # key -> (tile, expiry or inf)
_size = 0
_stats = {"hits": 0, "misses": 0}


def _attribute(d: LayerDef, name: str) -> Any:
    col = d.model.__table__.c[name]  # type: ignore[attr-defined]
    if isinstance(col.type, DateTime):
        return func.to_char(func.timezone("UTC", col), 'YYYY-MM-DD"T"HH24:MI:SS"Z"').label(name)
    if isinstance(col.type, (Integer, Float)):
        return col.label(name)
    return cast(col, Text).label(name)


def clusters_at(name: str, z: int) -> bool:
    """Whether tiles of layer ``name`` at zoom ``z`` carry clusters (see the module docstring).

    >>> clusters_at("incidents", 6), clusters_at("incidents", 12), clusters_at("shelters", 6)
    (True, False, False)
    """
    below = layer(name).cluster_below
    return below is not None and z < below


@cache
def tile_statement(name: str, clustered: bool = False) -> Select[Any]:
    """The one statement of a layer's tiles, with bind parameters ``z``, ``x``, ``y`` (prepared once per session);
    ``clustered``: the statement of the zooms below the layer's ``cluster_below``.

    >>> "ST_AsMVT" in str(tile_statement("incidents"))
    True
    """
    d = layer(name)
    if clustered:
        return _cluster_statement(d)
    t = d.model.__table__  # type: ignore[attr-defined]
    z, x, y = _zxy()
    envelope = func.ST_TileEnvelope(z, x, y)
    # a quarter of a tile unit, in degrees of longitude at this zoom
    tolerance = _WORLD_DEG / (EXTENT * 4.0) / func.power(2.0, z)
    clipped = case((func.ST_YMax(t.c.geom) > MAX_LAT, func.ST_ClipByBox2D(t.c.geom, func.ST_MakeEnvelope(
        -180.0, -MAX_LAT, 180.0, MAX_LAT, 4326))),
        (func.ST_YMin(t.c.geom) < -MAX_LAT, func.ST_ClipByBox2D(t.c.geom, func.ST_MakeEnvelope(
            -180.0, -MAX_LAT, 180.0, MAX_LAT, 4326))), else_=t.c.geom)
    simple = clipped if d.geometry_type == "POINT" else func.ST_Simplify(clipped, tolerance, True)
    geom = func.ST_AsMVTGeom(func.ST_Transform(simple, 3857), envelope, EXTENT, BUFFER, True).label("geom")
    inner = (select(*[_attribute(d, a) for a in d.all_attributes], geom)
             .where(t.c.deleted_at.is_(None), t.c.geom.op("&&")(_search(z, x, y, BUFFER)))
             .subquery("q"))
    return _as_mvt(inner, name)


def _zxy() -> tuple[Any, Any, Any]:
    return tuple(bindparam(n, type_=Integer) for n in ("z", "x", "y"))  # type: ignore[return-value]


def _search(z: Any, x: Any, y: Any, margin: int) -> Any:
    """The tile's envelope grown by ``margin`` tile units, in EPSG:4326 (what the GiST index is asked for)."""
    world = func.ST_MakeEnvelope(-_MERCATOR_HALF, -_MERCATOR_HALF, _MERCATOR_HALF, _MERCATOR_HALF, 3857)
    return func.ST_Transform(func.ST_TileEnvelope(z, x, y, world, margin / EXTENT), 4326)


def _as_mvt(rows: Any, name: str) -> Select[Any]:
    mvt = func.ST_AsMVT(literal_column(rows.name), name, EXTENT, "geom", "id")
    return select(func.coalesce(mvt, b"")).select_from(rows).where(rows.c.geom.is_not(None))


def _cluster_statement(d: LayerDef) -> Select[Any]:
    """Points grouped on the :data:`CLUSTER_CELL` grid of the tile: single points as they are, the rest as clusters.

    Positions in tile units come from the spherical-Mercator formulas (what ``ST_AsMVTGeom`` computes for a point,
    without building a geometry for each of the tile's thousands of points); only the features kept are built.
    """
    t = d.model.__table__  # type: ignore[attr-defined]
    z, x, y = _zxy()
    vocab = d.vocab_of(d.style_by)
    assert vocab is not None  # checked by the registry
    values = vocab_keys(vocab)
    scale = func.power(2.0, z) * EXTENT
    lat = func.radians(func.least(func.greatest(func.ST_Y(t.c.geom), -MAX_LAT), MAX_LAT))
    px = ((func.ST_X(t.c.geom) + 180.0) / 360.0 * scale - x * EXTENT).label("px")
    py = ((1.0 - func.asinh(func.tan(lat)) / func.pi()) / 2.0 * scale - y * EXTENT).label("py")
    rank = case({v: i for i, v in enumerate(values, start=1)}, value=t.c[d.style_by], else_=0).label("rank_")
    pts = (select(t.c.id, px, py, rank)
           .where(t.c.deleted_at.is_(None), t.c.geom.op("&&")(_search(z, x, y, CLUSTER_CELL)))
           .cte("pts").prefix_with("MATERIALIZED"))
    reach = (-CLUSTER_CELL, EXTENT + CLUSTER_CELL)  # every cell that can show in the tile, whole
    cells = (select(func.count().label("n"), func.min(pts.c.id).label("one"), func.round(func.avg(pts.c.px))
                    .label("mx"), func.round(func.avg(pts.c.py)).label("my"), func.max(pts.c.rank_).label("top"),
                    *[func.nullif(func.count().filter(pts.c.rank_ == i), 0).label(f"count_{v}")
                      for i, v in enumerate(values, start=1)])
             .where(pts.c.px.between(*reach), pts.c.py.between(*reach))
             .group_by(func.floor(pts.c.px / CLUSTER_CELL), func.floor(pts.c.py / CLUSTER_CELL))
             .cte("cells").prefix_with("MATERIALIZED"))
    inside = and_(cells.c.mx.between(-BUFFER, EXTENT + BUFFER), cells.c.my.between(-BUFFER, EXTENT + BUFFER))
    point = func.ST_MakePoint(cells.c.mx, cells.c.my).label("geom")
    extra = ["cluster", "point_count", *(f"count_{v}" for v in values)]
    singles = (select(*[_attribute(d, a) for a in d.all_attributes], *[null().label(e) for e in extra], point)
               .select_from(cells.join(t, t.c.id == cells.c.one)).where(cells.c.n == 1, inside))
    top = case({i: v for i, v in enumerate(values, start=1)}, value=cells.c.top)
    clusters = select(*[top.label(a) if a == d.style_by else null().label(a) for a in d.all_attributes],
                      true().label("cluster"), cast(cells.c.n, Integer).label("point_count"),
                      *[cells.c[f"count_{v}"] for v in values], point).where(cells.c.n > 1, inside)
    return _as_mvt(union_all(singles, clusters).subquery("q"), d.name)


def _stamp(db: Connection | Session, name: str) -> tuple[int, bool]:
    """(data version of the layer, whether no transaction was in flight), in one statement."""
    layer(name)
    snap = func.pg_current_snapshot()
    stmt = select(select(func.coalesce(func.max(FeatureHistory.id), 0)).where(FeatureHistory.layer == name)
                  .scalar_subquery(), func.pg_snapshot_xmin(snap) == func.pg_snapshot_xmax(snap))
    version, settled = db.execute(stmt).one()
    return int(version), bool(settled)


def _execute_without_jit(db: Connection | Session, stmt: Select[Any], params: dict[str, int]) -> bytes:
    """Run a tile statement with PostgreSQL's JIT off, then put the setting back.

    PostGIS declares its functions costly, so a tile of a few thousand points passes ``jit_above_cost`` and would
    be compiled (and inlined and optimised) first: seconds of compilation for tens of milliseconds of work. A failed
    statement leaves the setting off on that connection (harmless), or rolled back with its transaction.
    """
    before = db.execute(select(func.current_setting("jit"), func.set_config("jit", "off", False))).one()[0]
    data = bytes(db.execute(stmt, params).scalar_one() or b"")
    if before != "off":
        db.execute(select(func.set_config("jit", before, False)))
    return data


def _cache_key(db: Connection | Session, name: str, version: int, z: int, x: int, y: int) -> tuple[Any, ...]:
    bind = db.get_bind() if isinstance(db, Session) else db
    return (str(bind.engine.url), name, version, z, x, y)


def tile(db: Connection | Session, name: str, z: int, x: int, y: int) -> VectorTile:
    """The vector tile ``z/x/y`` of layer ``name`` (see the module docstring).

    Parameters
    ----------
    db : Connection or Session
    name : str
        A layer of :data:`layers.store.registry.LAYERS`.
    z, x, y : int
        XYZ tile (WebMercatorQuad, y from the north).

    Raises
    ------
    KeyError
        Unknown layer.
    layers.render.tiles.TileError
        ``z/x/y`` is not a tile.
    """
    global _size
    check_tile(z, x, y)
    version, settled = _stamp(db, name)
    key = _cache_key(db, name, version, z, x, y)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[1] > now:
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return VectorTile(hit[0], version, True, hit[1] == float("inf"))
    data = _execute_without_jit(db, tile_statement(name, clusters_at(name, z)), {"z": z, "x": x, "y": y})
    with _lock:
        _stats["misses"] += 1
        old = _cache.pop(key, None)
        if old is not None:
            _size -= len(old[0])
        _cache[key] = (data, float("inf") if settled else now + UNSETTLED_TTL_S)
        _size += len(data)
        while _size > CACHE_BYTES and _cache:
            _, (gone, _) = _cache.popitem(last=False)
            _size -= len(gone)
    return VectorTile(data, version, False, settled)


def clear_cache() -> None:
    """Forget every cached tile of this process."""
    global _size
    with _lock:
        _cache.clear()
        _size = 0
        _stats.update(hits=0, misses=0)


def cache_info() -> dict[str, int]:
    """``{"tiles", "bytes", "hits", "misses"}`` of this process's cache."""
    with _lock:
        return {"tiles": len(_cache), "bytes": _size, **_stats}
