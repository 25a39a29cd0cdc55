"""Mapbox Vector Tiles of the feature layers, made by PostGIS (``ST_AsMVT``) and cached by the layer's data version.

Public: :data:`EXTENT`, :data:`BUFFER`, :class:`VectorTile`, :func:`tile`, :func:`tile_statement`,
:func:`clear_cache`, :func:`cache_info`.

One source for every consumer: the pages' maps and OGC API - Tiles serve the same bytes. A tile is the layer's
live features (soft-deleted rows never) that meet the tile's envelope (plus a :data:`BUFFER` margin, so symbols and
strokes at tile edges are not cut), in Web Mercator tile coordinates (WebMercatorQuad, ``EXTENT`` units a side),
one MVT layer named like the Sitroom layer, feature id = the row id, attributes = the registry's
(:meth:`layers.store.registry.LayerDef.all_attributes`; times as ISO 8601 UTC strings).

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

from sqlalchemy import Connection, Select, bindparam, case, cast, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.types import DateTime, Float, Integer, Text

from layers.render.tiles import MAX_LAT, check_tile
from layers.store.models import FeatureHistory
from layers.store.registry import LayerDef, layer

__all__ = ["EXTENT", "BUFFER", "VectorTile", "tile", "tile_statement", "clear_cache", "cache_info"]

#: tile side in MVT units (the MVT default)
EXTENT = 4096
#: margin around the tile, in MVT units, kept so that symbols and strokes at tile edges are drawn whole
BUFFER = 64
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


@cache
def tile_statement(name: str) -> Select[Any]:
    """The one statement of a layer's tiles, with bind parameters ``z``, ``x``, ``y`` (prepared once per session).

    >>> "ST_AsMVT" in str(tile_statement("incidents"))
    True
    """
    d = layer(name)
    t = d.model.__table__  # type: ignore[attr-defined]
    z, x, y = (bindparam(n, type_=Integer) for n in ("z", "x", "y"))
    world = func.ST_MakeEnvelope(-_MERCATOR_HALF, -_MERCATOR_HALF, _MERCATOR_HALF, _MERCATOR_HALF, 3857)
    envelope = func.ST_TileEnvelope(z, x, y)
    search = func.ST_Transform(func.ST_TileEnvelope(z, x, y, world, BUFFER / EXTENT), 4326)
    # a quarter of a tile unit, in degrees of longitude at this zoom
    tolerance = _WORLD_DEG / (EXTENT * 4.0) / func.power(2.0, z)
    clipped = case((func.ST_YMax(t.c.geom) > MAX_LAT, func.ST_ClipByBox2D(t.c.geom, func.ST_MakeEnvelope(
        -180.0, -MAX_LAT, 180.0, MAX_LAT, 4326))),
        (func.ST_YMin(t.c.geom) < -MAX_LAT, func.ST_ClipByBox2D(t.c.geom, func.ST_MakeEnvelope(
            -180.0, -MAX_LAT, 180.0, MAX_LAT, 4326))), else_=t.c.geom)
    simple = clipped if d.geometry_type == "POINT" else func.ST_Simplify(clipped, tolerance, True)
    geom = func.ST_AsMVTGeom(func.ST_Transform(simple, 3857), envelope, EXTENT, BUFFER, True).label("geom")
    inner = (select(*[_attribute(d, a) for a in d.all_attributes], geom)
             .where(t.c.deleted_at.is_(None), t.c.geom.op("&&")(search))
             .subquery("q"))
    mvt = func.ST_AsMVT(literal_column("q"), name, EXTENT, "geom", "id")
    return select(func.coalesce(mvt, b"")).select_from(inner).where(inner.c.geom.is_not(None))


def _stamp(db: Connection | Session, name: str) -> tuple[int, bool]:
    """(data version of the layer, whether no transaction was in flight), in one statement."""
    layer(name)
    snap = func.pg_current_snapshot()
    stmt = select(select(func.coalesce(func.max(FeatureHistory.id), 0)).where(FeatureHistory.layer == name)
                  .scalar_subquery(), func.pg_snapshot_xmin(snap) == func.pg_snapshot_xmax(snap))
    version, settled = db.execute(stmt).one()
    return int(version), bool(settled)


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
    data = bytes(db.execute(tile_statement(name), {"z": z, "x": x, "y": y}).scalar_one() or b"")
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
