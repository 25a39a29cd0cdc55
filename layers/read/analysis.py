"""Store-side queries of the analyses: small candidate sets from PostGIS, exact maths in geoops.

Public: :func:`nearest_resources`, :func:`nearest_resources_batch`, :func:`nearest_resource_per_kind`,
:func:`resource_points`, :func:`column_arrays`, :func:`clear_cache`,
:func:`resource_details`, :func:`fetch_resources`,
:func:`population_source`, :func:`population_of_cells`,
:func:`regions_in_zone`,
:func:`region_names`, :func:`region_geometry`, :func:`regions_of_level`, :func:`regions_fingerprint`,
:func:`targets_in_zone`,
:func:`regions_at_points`, :func:`shelters_near_zone`, :func:`shelters_for_coverage`, :func:`active_hazards`, :data:`WARNING_WEIGHT`.

>>> WARNING_WEIGHT["red"], sorted(WARNING_WEIGHT, key=WARNING_WEIGHT.get)
(1.0, ['blue', 'yellow', 'orange', 'red'])

Every function takes a ``Session`` or ``Connection`` first and runs 2.0-style ``select()`` statements; zones are
shapely geometries in lon/lat (EPSG:4326), distances in metres (geodesic: PostGIS ``geography`` on the GiST index
of ``geom::geography``, or ``pyproj.Geod`` in geoops). Only live rows (``deleted_at IS NULL``) are read.

Nearest resources, and why nothing is missed
-------------------------------------------
``ORDER BY geom <-> :pt LIMIT n`` orders by planar distance in degrees, which mis-orders neighbours at 40-53 N
(a degree of longitude is 0.6-0.77 of a degree of latitude). :func:`nearest_resources` takes those n candidates,
lets :func:`geoops.nearest.rank` order them geodesically, and accepts the answer only when it is provably
complete: let G be the k-th geodesic distance among the candidates and D the planar distance (degrees) of the
last candidate. Every point within geodesic distance G of the query lies within planar distance
:func:`geoops.wgs84.planar_bound_deg` (G) (a bound from the smallest radii of curvature of WGS84); if that bound is
below D, every such point is among the candidates. Otherwise the candidates are re-fetched with
``ST_DWithin(geom::geography, :pt::geography, G)`` (on the spheroid), which holds every point nearer than G.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    BigInteger,
    Connection,
    Double,
    and_,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.orm import Session

from geoops.h3cells import child_ranges, parent_cells
from geoops.nearest import nearest_batch, rank
from geoops.regions import assign_points
from geoops.wgs84 import planar_bound_deg
from layers.read.shelter_places import could_open, free_places
from layers.store import vocab
from layers.store.db import connection_of, driver_connection
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import (
    AdminRegion,
    Hazard,
    PopulationCell,
    PopulationSource,
    ProtectionTarget,
    Resource,
    Shelter,
)

__all__ = [
    "WARNING_WEIGHT",
    "nearest_resources",
    "nearest_resources_batch",
    "nearest_resource_per_kind",
    "column_arrays",
    "clear_cache",
    "resource_points",
    "resource_details",
    "fetch_resources",
    "population_source",
    "population_of_cells",
    "regions_in_zone",
    "region_names",
    "region_geometry",
    "regions_of_level",
    "regions_fingerprint",
    "regions_at_points",
    "region_outlines_geojson",
    "targets_in_zone",
    "shelters_near_zone",
    "shelters_for_coverage",
    "active_hazards",
]

Db = Session | Connection

#: hazard intensity of each warning level (IV..I), the default of the risk analysis
WARNING_WEIGHT: dict[str, float] = {"blue": 0.25, "yellow": 0.5, "orange": 0.75, "red": 1.0}

#: slack on the geodesic radius of the fallback ST_DWithin (spheroid vs pyproj differ by far less)
_DWITHIN_SLACK_M = 0.01
_RESOURCE_COLUMNS = (Resource.id, Resource.external_id, Resource.name, Resource.kind, Resource.status,
                     Resource.quantity, Resource.unit)


def _check_keys(field: str, values: Sequence[str] | str | None, vocab_name: str) -> list[str] | None:
    if values is None:
        return None
    vals = [values] if isinstance(values, str) else list(values)
    allowed = vocab.keys(vocab_name)
    bad = [v for v in vals if v not in allowed]
    if bad or not vals:
        raise ValidationError([RowError(None, field, bad[0] if bad else vals, "one or more of " + ", ".join(allowed))])
    return vals


def _point(lon: float, lat: float) -> Any:
    return func.ST_SetSRID(func.ST_MakePoint(literal(float(lon)), literal(float(lat))), 4326)


def _zone_sql(zone: BaseGeometry) -> Any:
    return func.ST_GeomFromWKB(literal(shapely.to_wkb(zone)), 4326)


def column_arrays(db: Db, stmt: Any) -> list[list[Any] | None]:
    """Every column of ``stmt``'s rows as one list each, read in one row of ``array_agg``s in binary format.

    A Python row object per result row costs ~2 us; 400k population cells or 700k resources as rows take
    seconds of CPU, as binary arrays a tenth of that. Runs on ``db``'s own connection (same transaction).
    None for every column when there are no rows.
    """
    conn = connection_of(db)
    sub = stmt.subquery()
    agg = select(*[func.array_agg(c) for c in sub.c])
    compiled = agg.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw = driver_connection(conn)
    with raw.cursor(binary=True) as cur:
        cur.execute(str(compiled), compiled.params)
        row = cur.fetchone()
    return list(row) if row is not None else [None] * len(sub.c)


def _resource_filter(kinds: list[str] | None, status: list[str] | None) -> list[Any]:
    cond: list[Any] = [Resource.deleted_at.is_(None)]
    if kinds:
        cond.append(Resource.kind.in_(kinds))
    if status:
        cond.append(Resource.status.in_(status))
    return cond


def _resource_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"id": r.id, "external_id": r.external_id, "name": r.name, "kind": r.kind, "status": r.status,
             "quantity": r.quantity, "unit": r.unit, "lon": float(r.lon), "lat": float(r.lat)} for r in rows]


@lru_cache(maxsize=256)
def _knn_statement(kinds: tuple[str, ...], status: tuple[str, ...], n: int) -> Any:
    """The KNN candidate query, built once per (kinds, status, n); the point is bound as ``qlon``, ``qlat``.

    LIMIT is inline: as a bind parameter, prepared statements may get a generic plan that sorts the whole table.
    """
    pt = func.ST_SetSRID(func.ST_MakePoint(bindparam("qlon", type_=Double), bindparam("qlat", type_=Double)), 4326)
    planar = Resource.geom.op("<->", return_type=Double)(pt)
    return (select(*_RESOURCE_COLUMNS, func.ST_X(Resource.geom).label("lon"), func.ST_Y(Resource.geom).label("lat"),
                   planar.label("planar_deg"))
            .where(*_resource_filter(list(kinds) or None, list(status) or None)).order_by(planar)
            .limit(bindparam("knn_limit", n, literal_execute=True)))


def nearest_resources(db: Db, lon: float, lat: float, *, k: int = 3, kinds: Sequence[str] | str | None = None,
                      status: Sequence[str] | str | None = "available", oversample: int = 10
                      ) -> list[dict[str, Any]]:
    """The k resources nearest to a point by true geodesic distance (WGS84), nearest first.

    Parameters
    ----------
    db : Session or Connection
    lon, lat : float
        Query point, degrees, EPSG:4326.
    k : int
        How many (1..1000; the API allows 1..100).
    kinds : str or list of str, optional
        Resource kinds (vocabulary ``resource_kind``); None: every kind.
    status : str or list of str, optional
        Resource statuses (default ``available``); None: any status.
    oversample : int
        The KNN first fetches ``max(k * oversample, k + 8)`` candidates; if they are not provably complete, a
        second KNN fetches as many as the bound needs (at most 16 times more), and if still not, every resource
        within the k-th geodesic distance is read with ``ST_DWithin`` on geography.

    Returns
    -------
    list of dict
        ``id, external_id, name, kind, status, quantity, unit, lon, lat, distance_m, bearing_deg`` (bearing from
        the query point, degrees clockwise from north; None at the point itself). Fewer than k if fewer exist.

    Raises
    ------
    ValidationError
        Unknown kind or status (field ``kind`` / ``status``).
    """
    kind_l = _check_keys("kind", kinds, "resource_kind")
    status_l = _check_keys("status", status, "resource_status")
    n = max(int(k) * int(oversample), int(k) + 8)
    params = {"qlon": float(lon), "qlat": float(lat)}
    ranked = None
    for attempt in range(2):
        stmt = _knn_statement(tuple(kind_l or ()), tuple(status_l or ()), n)
        rows = db.execute(stmt, params).all()
        if len(rows) < n:
            break  # every matching resource is a candidate
        ranked = rank(lon, lat, np.fromiter((r.lon for r in rows), float, len(rows)),
                      np.fromiter((r.lat for r in rows), float, len(rows)), k=k)
        g = float(ranked[1][-1])
        if planar_bound_deg(g, lat) < float(rows[-1].planar_deg):
            break  # provably complete (module docstring); ``ranked`` is the answer
        ranked = None
        if attempt == 1:
            # still not provable: take every resource within the k-th geodesic distance (spheroid)
            pt = _point(lon, lat)
            cols = (*_RESOURCE_COLUMNS, func.ST_X(Resource.geom).label("lon"), func.ST_Y(Resource.geom).label("lat"))
            stmt = select(*cols).where(*_resource_filter(kind_l, status_l), func.ST_DWithin(
                func.Geography(Resource.geom), func.Geography(pt), g + _DWITHIN_SLACK_M + g * 1e-9))
            rows = db.execute(stmt).all()
            break
        # the bound needs a planar radius of planar_bound_deg(g); candidates grow with its square
        need = (planar_bound_deg(g, lat) / max(float(rows[-1].planar_deg), 1e-12)) ** 2
        n = int(min(max(n * need * 1.5, n * 2), n * 16)) + 1
    if not rows:
        return []
    if ranked is None:
        ranked = rank(lon, lat, np.fromiter((r.lon for r in rows), float, len(rows)),
                      np.fromiter((r.lat for r in rows), float, len(rows)), k=k)
    idx, dist, bear = ranked
    cands = _resource_rows([rows[i] for i in idx.tolist()])
    idx = np.arange(len(cands))
    out = []
    for i, d, b in zip(idx.tolist(), dist.tolist(), bear.tolist(), strict=True):
        c = dict(cands[i])
        c["distance_m"] = d
        c["bearing_deg"] = None if math.isnan(b) else b
        out.append(c)
    return out


@lru_cache(maxsize=32)
def _knn_per_kind_statement(status: tuple[str, ...], n: int) -> Any:
    """KNN candidates of each kind in ``:kinds`` (``LATERAL`` per kind), built once per (status, n)."""
    pt = func.ST_SetSRID(func.ST_MakePoint(bindparam("qlon", type_=Double), bindparam("qlat", type_=Double)), 4326)
    planar = Resource.geom.op("<->", return_type=Double)(pt)
    kv = func.unnest(bindparam("kinds", type_=ARRAY(Resource.kind.type))).table_valued("k").render_derived(name="kv")
    lat_q = (select(*_RESOURCE_COLUMNS, func.ST_X(Resource.geom).label("lon"), func.ST_Y(Resource.geom).label("lat"),
                    planar.label("planar_deg"))
             .where(*_resource_filter(None, list(status) or None), Resource.kind == kv.c.k).order_by(planar)
             .limit(bindparam("knn_limit", n, literal_execute=True)).lateral("c"))
    return select(lat_q).select_from(kv).join(lat_q, literal(True))


def nearest_resource_per_kind(db: Db, lon: float, lat: float, *, kinds: Sequence[str],
                              status: Sequence[str] | str | None = "available", oversample: int = 10
                              ) -> dict[str, dict[str, Any] | None]:
    """The nearest resource of each kind (true geodesic distance), the KNN candidates of every kind in one query.

    Same answer as ``nearest_resources(db, lon, lat, k=1, kinds=[kind], status=status)[0]`` for each kind (None
    where a kind has no resource): one round trip fetches ``max(oversample, 9)`` KNN candidates per kind
    (``LATERAL`` per kind on the GiST index); a kind whose candidates are not provably complete (module
    docstring) is answered by :func:`nearest_resources` itself.
    """
    kind_l = _check_keys("kind", kinds, "resource_kind") or []
    status_l = _check_keys("status", status, "resource_status")
    if not kind_l:
        return {}
    n = max(int(oversample), 9)
    rows = db.execute(_knn_per_kind_statement(tuple(status_l or ()), n),
                      {"qlon": float(lon), "qlat": float(lat), "kinds": kind_l}).all()
    by_kind: dict[str, list[Any]] = {k: [] for k in kind_l}
    for r in rows:
        by_kind[r.kind].append(r)
    # every kind's candidates in planar order, one after the other, ranked in one geodesic pass: a kind's nearest
    # is its first candidate in the ranking (ties by position, i.e. by planar order within the kind, as when
    # each kind is ranked alone)
    cands = [r for kind in kind_l for r in sorted(by_kind[kind], key=lambda r: r.planar_deg)]
    first: dict[str, tuple[int, float, float]] = {}
    if cands:
        order, dist, bear = rank(lon, lat, np.fromiter((r.lon for r in cands), float, len(cands)),
                                 np.fromiter((r.lat for r in cands), float, len(cands)), k=len(cands))
        for i, d, b in zip(order.tolist(), dist.tolist(), bear.tolist(), strict=True):
            first.setdefault(cands[i].kind, (i, d, b))
    out: dict[str, dict[str, Any] | None] = {}
    for kind in kind_l:
        if kind not in first:
            out[kind] = None
            continue
        i, d, b = first[kind]
        if len(by_kind[kind]) >= n and not planar_bound_deg(d, lat) < float(
                max(r.planar_deg for r in by_kind[kind])):
            got = nearest_resources(db, lon, lat, k=1, kinds=[kind], status=status_l, oversample=oversample)
            out[kind] = got[0] if got else None
            continue
        c = dict(_resource_rows([cands[i]])[0])
        c["distance_m"] = d
        c["bearing_deg"] = None if math.isnan(b) else b
        out[kind] = c
    return out


def fetch_resources(db: Db, *, kinds: Sequence[str] | str | None = None,
                    status: Sequence[str] | str | None = "available") -> dict[str, np.ndarray]:
    """Every live resource of the given kinds and status, as column arrays (``id, lon, lat`` ... ``quantity``).

    Returns
    -------
    dict of ndarray
        ``id`` (int64), ``external_id``, ``name``, ``kind``, ``status`` (object), ``quantity`` (int64), ``lon``,
        ``lat`` (float64), ordered by id.
    """
    kind_l = _check_keys("kind", kinds, "resource_kind")
    status_l = _check_keys("status", status, "resource_status")
    stmt = (select(Resource.id, Resource.external_id, Resource.name, Resource.kind, Resource.status,
                   Resource.quantity, func.ST_X(Resource.geom).label("lon"), func.ST_Y(Resource.geom).label("lat"))
            .where(*_resource_filter(kind_l, status_l)).order_by(Resource.id))
    rows = db.execute(stmt).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    return {
        "id": np.asarray(cols[0], dtype=np.int64),
        "external_id": np.asarray(cols[1], dtype=object),
        "name": np.asarray(cols[2], dtype=object),
        "kind": np.asarray(cols[3], dtype=object),
        "status": np.asarray(cols[4], dtype=object),
        "quantity": np.asarray(cols[5], dtype=np.int64),
        "lon": np.asarray(cols[6], dtype=float),
        "lat": np.asarray(cols[7], dtype=float),
    }


_VERSION_SQL = text(
    "SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), coalesce(max(id), 0), "
    "pg_snapshot_xmin(pg_current_snapshot()) = pg_snapshot_xmax(pg_current_snapshot()) "
    "AND pg_current_xact_id_if_assigned() IS NULL FROM feature_history")
_points_cache: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_points_lock = threading.Lock()


def _store_version(db: Db) -> tuple[tuple[str, int, int], bool]:
    """((database, its oid, newest feature_history id), quiet) as this statement's snapshot sees them.

    ``quiet``: no transaction that writes was in flight (snapshot xmin == xmax) and this one has written
    nothing. History ids come from a sequence and every write to a feature table adds history rows (triggers),
    so in a quiet snapshot every id up to the newest belongs to a finished transaction: any later snapshot
    whose newest id is the same sees exactly the same feature rows.
    """
    bind = db.get_bind() if isinstance(db, Session) else db
    oid, newest, quiet = db.execute(_VERSION_SQL).one()
    return (str(bind.engine.url), int(oid), int(newest)), bool(quiet)


def clear_cache() -> None:
    """Forget the cached resource points (tests; a database restored in place in the same process)."""
    with _points_lock:
        _points_cache.clear()


def resource_points(db: Db, *, kinds: Sequence[str] | str | None = None,
                    status: Sequence[str] | str | None = "available") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(id, lon, lat)`` arrays of every live resource of the given kinds and status (read-only arrays).

    The columns come back as three binary ``array_agg``s (:func:`column_arrays`), so a million resources cost
    three values to transfer and parse, not a million rows. The arrays are cached per process by data version
    (:func:`_store_version`): an entry is stored only when the version read before and after the fetch is the
    same and quiet, so it holds exactly the rows of that version, and it is served to any snapshot that sees
    the same newest history id (one index probe instead of reading 700k rows).
    """
    kind_l = _check_keys("kind", kinds, "resource_kind")
    status_l = _check_keys("status", status, "resource_status")
    before, quiet = _store_version(db)
    key = (before, tuple(kind_l or ()), tuple(status_l or ()))
    with _points_lock:
        hit = _points_cache.get(key)
    if hit is not None:
        return hit
    stmt = (select(Resource.id, func.ST_X(Resource.geom).label("lon"), func.ST_Y(Resource.geom).label("lat"))
            .where(*_resource_filter(kind_l, status_l)))
    ids, lon, lat = column_arrays(db, stmt)
    if ids is None:
        out = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    else:
        out = (np.asarray(ids, dtype=np.int64), np.asarray(lon, dtype=np.float64),
               np.asarray(lat, dtype=np.float64))
    for a in out:
        a.flags.writeable = False
    if quiet:
        after, quiet_after = _store_version(db)
        if after == before and quiet_after:
            with _points_lock:
                if len(_points_cache) >= 4:
                    _points_cache.clear()
                _points_cache[key] = out
    return out


def resource_details(db: Db, ids: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
    """``id, external_id, name, kind, status, quantity, unit, lon, lat`` of the given resources, in the order asked."""
    want = [int(i) for i in np.asarray(ids, dtype=np.int64).tolist()]
    if not want:
        return []
    stmt = (select(*_RESOURCE_COLUMNS, func.ST_X(Resource.geom).label("lon"), func.ST_Y(Resource.geom).label("lat"))
            .where(Resource.id == any_(bindparam("ids", want, type_=ARRAY(BigInteger)))))
    by_id = {r["id"]: r for r in _resource_rows(db.execute(stmt).all())}
    return [by_id[i] for i in want if i in by_id]


def nearest_resources_batch(db: Db, lon: Any, lat: Any, *, k: int = 3, kinds: Sequence[str] | str | None = None,
                            status: Sequence[str] | str | None = "available"
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The k nearest resources of many points: one fetch of the candidates, then :func:`geoops.nearest.nearest_batch`.

    Returns
    -------
    ids : ndarray of int64, shape (n, k)
        Resource ids, nearest first (-1 where fewer than k exist).
    distance_m, bearing_deg : ndarray of float, shape (n, k)
        Geodesic distance (metres) and bearing from the point (degrees), NaN where padded.
    candidates : ndarray of int64
        The ids of every candidate resource.
    """
    rid, rlon, rlat = resource_points(db, kinds=kinds, status=status)
    idx, dist, bear = nearest_batch(lon, lat, rlon, rlat, k=k)
    ids = np.where(idx >= 0, rid[np.maximum(idx, 0)] if rid.size else -1, -1)
    return ids, dist, bear, rid


# ------------------------------------------------------------------------------------------------ population


def population_source(db: Db, *, res: int, source: str | None = None) -> dict[str, Any]:
    """The population source used at resolution ``res``: measured sources before modelled ones, then the newest.

    Returns
    -------
    dict
        ``source, res, vintage, modelled, description, input_total, cell_count, built_at``.

    Raises
    ------
    NotFoundError
        No population at ``res`` (or no such source); the message lists the resolutions available.
    """
    cols = ("source", "res", "vintage", "modelled", "description", "input_total", "cell_count", "built_at")
    stmt = (select(*(getattr(PopulationSource, c) for c in cols)).where(PopulationSource.res == int(res))
            .order_by(PopulationSource.modelled, PopulationSource.built_at.desc()).limit(1))
    if source is not None:
        stmt = stmt.where(PopulationSource.source == source)
    row = db.execute(stmt).first()
    if row is None:
        have = sorted({int(r) for r in db.execute(select(PopulationSource.res).distinct()).scalars()})
        raise NotFoundError(f"no population at H3 resolution {res}"
                            + (f" from source {source!r}" if source else "")
                            + f"; available resolutions: {', '.join(map(str, have)) or 'none (run sitroom demo load)'}")
    return dict(row._mapping)


#: above this many ids, cells are fetched by contiguous H3 ranges of their coarse parents (a few index range
#: scans) instead of ``h3 = ANY(:ids)``, which the planner turns into a sequential scan for long arrays
ANY_LIMIT = 1000


def population_of_cells(db: Db, cells: Any, *, res: int, source: str) -> np.ndarray:
    """Population of each given H3 cell (int64 ids), aligned with ``cells``; 0 for cells without population.

    Up to :data:`ANY_LIMIT` ids: one indexed lookup ``h3 = ANY(:ids)`` on the primary key ``(source, res, h3)``.
    More: the cells' parents three resolutions up give contiguous id ranges (the children of a cell at a finer
    resolution are exactly the ids of that resolution between two bounds), read with one index range scan each;
    the rows are then matched to the ids asked for.
    """
    ids = np.asarray(cells, dtype=np.int64)
    out = np.zeros(ids.size)
    if ids.size == 0:
        return out
    cond = [PopulationCell.source == source, PopulationCell.res == int(res)]
    if ids.size <= ANY_LIMIT or res < 3:
        stmt = (select(PopulationCell.h3, PopulationCell.population)
                .where(*cond, PopulationCell.h3 == any_(bindparam("ids", ids.tolist(), type_=ARRAY(BigInteger)))))
    else:
        coarse = res - 3
        parents = np.unique(parent_cells(ids, res=int(res), parent_res=coarse))
        lo, hi = child_ranges(parents, parent_res=coarse, res=int(res))
        ranges = func.unnest(bindparam("lo", lo.tolist(), type_=ARRAY(BigInteger)),
                             bindparam("hi", hi.tolist(), type_=ARRAY(BigInteger))
                             ).table_valued("lo", "hi").render_derived(name="r")
        stmt = (select(PopulationCell.h3, PopulationCell.population)
                .join(ranges, PopulationCell.h3.between(ranges.c.lo, ranges.c.hi))
                .where(*cond))
        # the planner cannot size the ranges and overestimates rows a hundredfold, which turns on JIT
        # compilation (~40 ms of a ~20 ms query); off for this transaction only
        db.execute(select(func.set_config("jit", "off", True)))
    hl, pl = column_arrays(db, stmt)
    if hl:
        h = np.asarray(hl, dtype=np.int64)
        p = np.asarray(pl, dtype=np.float64)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        pos = np.searchsorted(sorted_ids, h)
        hit = (pos < ids.size) & (sorted_ids[np.minimum(pos, ids.size - 1)] == h)
        out[order[pos[hit]]] = p[hit]
    return out


# ------------------------------------------------------------------------------------------------ regions


def regions_in_zone(db: Db, zone: BaseGeometry, *, level: str = "county") -> list[dict[str, Any]]:
    """Admin regions of ``level`` intersecting ``zone``, each with its part of the zone.

    Returns
    -------
    list of dict
        ``adcode, name, name_en, level, parent_adcode, part`` (shapely: region ∩ zone, lon/lat) and
        ``part_area_m2`` (``ST_Area`` of the part as geography, spheroid), ordered by adcode.
    """
    z = _zone_sql(zone)
    part = func.ST_Intersection(AdminRegion.geom, z)
    stmt = (select(AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en, AdminRegion.level,
                   AdminRegion.parent_adcode, func.ST_AsBinary(part).label("wkb"))
            .where(AdminRegion.level == level, AdminRegion.deleted_at.is_(None), func.ST_Intersects(AdminRegion.geom, z))
            .order_by(AdminRegion.adcode))
    out = []
    for r in db.execute(stmt).all():
        g = shapely.from_wkb(bytes(r.wkb))
        out.append({"adcode": r.adcode, "name": r.name, "name_en": r.name_en, "level": r.level,
                    "parent_adcode": r.parent_adcode, "part": g})
    return out


def region_names(db: Db, adcodes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``adcode -> {name, name_en, level, parent_adcode}`` for the given codes (unknown codes are absent)."""
    codes = sorted({a for a in adcodes if a})
    if not codes:
        return {}
    stmt = (select(AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en, AdminRegion.level,
                   AdminRegion.parent_adcode)
            .where(AdminRegion.adcode.in_(codes), AdminRegion.deleted_at.is_(None)))
    return {r.adcode: {"name": r.name, "name_en": r.name_en, "level": r.level, "parent_adcode": r.parent_adcode}
            for r in db.execute(stmt).all()}


def region_geometry(db: Db, adcode: str) -> dict[str, Any]:
    """One region: ``adcode, name, name_en, level, parent_adcode, geometry`` (shapely, lon/lat).

    Raises
    ------
    NotFoundError
        No live region with that adcode.
    """
    stmt = (select(AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en, AdminRegion.level,
                   AdminRegion.parent_adcode, AdminRegion.geom)
            .where(AdminRegion.adcode == str(adcode), AdminRegion.deleted_at.is_(None)))
    r = db.execute(stmt).first()
    if r is None:
        raise NotFoundError(f"no admin region with adcode {adcode!r} (6 digits, e.g. 150200 for Baotou)")
    return {"adcode": r.adcode, "name": r.name, "name_en": r.name_en, "level": r.level,
            "parent_adcode": r.parent_adcode, "geometry": to_shape(r.geom)}


def regions_of_level(db: Db, *, level: str, within: Sequence[float] | None = None, prefix: str | None = None,
                     geometry: bool = True) -> list[dict[str, Any]]:
    """Every live region of ``level`` (optionally intersecting bbox ``within`` or with adcode ``prefix``)."""
    cols: list[Any] = [AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en, AdminRegion.level,
                       AdminRegion.parent_adcode]
    if geometry:
        cols.append(func.ST_AsBinary(AdminRegion.geom).label("wkb"))
    stmt = select(*cols).where(AdminRegion.level == level, AdminRegion.deleted_at.is_(None))
    if within is not None:
        w, s, e, n = (float(v) for v in within)
        stmt = stmt.where(func.ST_Intersects(AdminRegion.geom, func.ST_MakeEnvelope(w, s, e, n, 4326)))
    if prefix:
        stmt = stmt.where(AdminRegion.adcode.like(f"{prefix}%"))
    out = []
    for r in db.execute(stmt.order_by(AdminRegion.adcode)).all():
        d = {"adcode": r.adcode, "name": r.name, "name_en": r.name_en, "level": r.level,
             "parent_adcode": r.parent_adcode}
        if geometry:
            d["geometry"] = shapely.from_wkb(bytes(r.wkb))
        out.append(d)
    return out


def regions_fingerprint(db: Db, *, levels: Sequence[str]) -> str:
    """A text that changes whenever a region of one of ``levels`` is inserted, updated or deleted (soft or hard),
    for caches of what is computed from those regions.

    An md5 over the physical id and inserting transaction of every row version (``ctid``, ``xmin``; an update
    writes a new row version, even in the transaction that inserted the row), in the statement's snapshot: no
    geometry is read. A ``VACUUM FULL`` changes it without a change of data (a cache is merely rebuilt)."""
    ver: Any = literal_column("ctid::text || '/' || xmin::text")
    stmt = (select(func.coalesce(func.md5(func.string_agg(ver, aggregate_order_by(literal_column("','"), ver))),
                                 "")).where(AdminRegion.level.in_(list(levels))))
    return str(db.execute(stmt).scalar_one())


def region_outlines_geojson(db: Db, *, level: str, tolerance_deg: float, decimals: int,
                            within: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Every live region of ``level`` (touching bbox ``within``) simplified in PostGIS
    (``ST_Simplify``, degrees, small parts kept) as GeoJSON with ``decimals`` decimals, by adcode:
    ``adcode, name, name_en, parent_adcode, geometry`` (a dict)."""
    import json

    # ST_Simplify (keeping small parts): for a map of outlines; the topology-preserving form is ~50x slower
    gj = func.ST_AsGeoJSON(func.ST_Simplify(AdminRegion.geom, float(tolerance_deg), True), int(decimals))
    stmt = select(AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en, AdminRegion.parent_adcode,
                  gj.label("gj")).where(AdminRegion.level == level, AdminRegion.deleted_at.is_(None))
    if within is not None:
        w, s, e, n = (float(v) for v in within)
        stmt = stmt.where(func.ST_Intersects(AdminRegion.geom, func.ST_MakeEnvelope(w, s, e, n, 4326)))
    return [{"adcode": r.adcode, "name": r.name, "name_en": r.name_en, "parent_adcode": r.parent_adcode,
             "geometry": json.loads(r.gj)} for r in db.execute(stmt.order_by(AdminRegion.adcode)).all()]


def regions_at_points(db: Db, lon: Sequence[float], lat: Sequence[float], *, level: str = "county"
                      ) -> list[dict[str, Any] | None]:
    """The region of ``level`` each point is in, by the one rule (:func:`geoops.regions.assign_points`): the
    candidates are the regions whose polygon touches one of the points (PostGIS, GiST), in adcode order.

    Returns
    -------
    list
        Per point ``{adcode, name, name_en, parent_adcode}``, or None for a point in no region.
    """
    x, y = [float(v) for v in lon], [float(v) for v in lat]
    if not x:
        return []
    pts = func.ST_SetSRID(func.ST_GeomFromText(shapely.MultiPoint(list(zip(x, y, strict=True))).wkt), 4326)
    stmt = (select(AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en, AdminRegion.parent_adcode,
                   func.ST_AsBinary(AdminRegion.geom).label("wkb"))
            .where(AdminRegion.level == level, AdminRegion.deleted_at.is_(None), func.ST_Intersects(AdminRegion.geom, pts))
            .order_by(AdminRegion.adcode))
    rows = db.execute(stmt).all()
    code = assign_points(x, y, [shapely.from_wkb(bytes(r.wkb)) for r in rows]) if rows else np.full(len(x), -1)
    return [None if j < 0 else {"adcode": rows[j].adcode, "name": rows[j].name, "name_en": rows[j].name_en,
                                "parent_adcode": rows[j].parent_adcode} for j in code.tolist()]


# ------------------------------------------------------------------------------------------------ features


def targets_in_zone(db: Db, zone: BaseGeometry) -> list[dict[str, Any]]:
    """Live protection targets inside ``zone`` (``ST_Intersects``; zone edges straight in lon/lat), by id.

    Returns
    -------
    list of dict
        ``id, external_id, name, kind, status, occupants, criticality, lon, lat``.
    """
    z = _zone_sql(zone)
    stmt = (select(ProtectionTarget.id, ProtectionTarget.external_id, ProtectionTarget.name, ProtectionTarget.kind,
                   ProtectionTarget.status, ProtectionTarget.occupants, ProtectionTarget.criticality,
                   func.ST_X(ProtectionTarget.geom).label("lon"), func.ST_Y(ProtectionTarget.geom).label("lat"))
            .where(ProtectionTarget.deleted_at.is_(None), func.ST_Intersects(ProtectionTarget.geom, z))
            .order_by(ProtectionTarget.id))
    return [dict(r._mapping) for r in db.execute(stmt).all()]


def shelters_near_zone(db: Db, zone: BaseGeometry, *, distance_m: float,
                       status: Sequence[str] | str | None = None) -> list[dict[str, Any]]:
    """Live shelters inside ``zone`` or within geodesic ``distance_m`` of it, nearest first.

    ``inside`` is ``ST_Intersects`` on the geometry (as drawn); ``distance_m`` is ``ST_Distance`` on geography
    (spheroid), 0 inside. Candidates come from ``ST_DWithin`` on the ``geom::geography`` index.

    Returns
    -------
    list of dict
        ``id, external_id, name, kind, status, capacity, occupancy, free, could_open, inside, distance_m, lon,
        lat``; ``free`` and ``could_open`` by the rule of :mod:`layers.read.shelter_places` (free places only in
        open shelters).
    """
    status_l = _check_keys("status", status, "shelter_status")
    z = _zone_sql(zone)
    zg = func.Geography(z)
    sg = func.Geography(Shelter.geom)
    inside = func.ST_Intersects(Shelter.geom, z)
    cond = [Shelter.deleted_at.is_(None),
            or_(inside, func.ST_DWithin(sg, zg, float(distance_m)))]
    if status_l:
        cond.append(Shelter.status.in_(status_l))
    stmt = (select(Shelter.id, Shelter.external_id, Shelter.name, Shelter.kind, Shelter.status, Shelter.capacity,
                   Shelter.occupancy, inside.label("inside"), func.ST_Distance(sg, zg).label("distance_m"),
                   func.ST_X(Shelter.geom).label("lon"), func.ST_Y(Shelter.geom).label("lat"))
            .where(*cond))
    out = []
    for r in db.execute(stmt).all():
        d = dict(r._mapping)
        d["free"] = free_places(r.status, r.capacity, r.occupancy)
        d["could_open"] = could_open(r.status, r.capacity, r.occupancy)
        d["distance_m"] = 0.0 if r.inside else float(r.distance_m)
        out.append(d)
    out.sort(key=lambda d: (d["distance_m"], d["id"]))
    return out


def shelters_for_coverage(db: Db, scope: BaseGeometry, *, max_distance_m: float,
                          kinds: Sequence[str] | str | None = None) -> list[dict[str, Any]]:
    """Live shelters (any status) of ``kinds`` inside ``scope`` or within ``max_distance_m`` of it, by id.

    Returns
    -------
    list of dict
        ``id, external_id, name, kind, status, capacity, occupancy, free, could_open, lon, lat`` (the rule of
        :mod:`layers.read.shelter_places`).
    """
    kind_l = _check_keys("kinds", kinds, "shelter_kind")
    z = _zone_sql(scope)
    cond = [Shelter.deleted_at.is_(None),
            or_(func.ST_Intersects(Shelter.geom, z),
                func.ST_DWithin(func.Geography(Shelter.geom), func.Geography(z), float(max_distance_m)))]
    if kind_l:
        cond.append(Shelter.kind.in_(kind_l))
    stmt = (select(Shelter.id, Shelter.external_id, Shelter.name, Shelter.kind, Shelter.status, Shelter.capacity,
                   Shelter.occupancy, func.ST_X(Shelter.geom).label("lon"), func.ST_Y(Shelter.geom).label("lat"))
            .where(*cond).order_by(Shelter.id))
    out = []
    for r in db.execute(stmt).all():
        d = dict(r._mapping)
        d["free"] = free_places(r.status, r.capacity, r.occupancy)
        d["could_open"] = could_open(r.status, r.capacity, r.occupancy)
        out.append(d)
    return out


def active_hazards(db: Db, *, kinds: Sequence[str] | str | None = None, at: datetime | None = None,
                   bbox: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Hazards in force at ``at`` (default now): status ``active``, onset <= at (or none), expires > at (or none).

    Returns
    -------
    list of dict
        ``id, external_id, name, kind, warning_level, onset, expires, geometry`` (shapely), by id.
    """
    kind_l = _check_keys("hazard_kind", kinds, "hazard_kind")
    when = at or datetime.now(UTC)
    cond = [Hazard.deleted_at.is_(None), Hazard.status == "active",
            or_(Hazard.onset.is_(None), Hazard.onset <= when), or_(Hazard.expires.is_(None), Hazard.expires > when)]
    if kind_l:
        cond.append(Hazard.kind.in_(kind_l))
    if bbox is not None:
        w, s, e, n = (float(v) for v in bbox)
        cond.append(func.ST_Intersects(Hazard.geom, func.ST_MakeEnvelope(w, s, e, n, 4326)))
    stmt = (select(Hazard.id, Hazard.external_id, Hazard.name, Hazard.kind, Hazard.warning_level, Hazard.onset,
                   Hazard.expires, func.ST_AsBinary(Hazard.geom).label("wkb"))
            .where(and_(*cond)).order_by(Hazard.id))
    out = []
    for r in db.execute(stmt).all():
        d = {k: getattr(r, k) for k in ("id", "external_id", "name", "kind", "warning_level", "onset", "expires")}
        d["geometry"] = shapely.from_wkb(bytes(r.wkb))
        out.append(d)
    return out

