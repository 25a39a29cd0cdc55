"""The live situation for the command-hall wall: cheap counts and small, aggregated map layers.

Public: :data:`MAX_HEXES`, :data:`TICKER_LIMIT`, :data:`ANNOTATION_LIMIT`, :data:`HAZARD_LIMIT`,
:func:`data_version`, :func:`res_for_zoom`, :func:`tolerance_for_zoom`, :func:`incident_kpis`,
:func:`shelter_places`, :func:`resource_counts`, :func:`latest_incidents`, :func:`incidents_per_hour`,
:func:`incident_days`,
:func:`incident_cells`, :func:`aggregate_cells`, :func:`affected_population_cells`, :func:`hazard_zones`,
:func:`annotation_features`, :func:`impact_zone_features`, :func:`picture_extent`, :func:`hex_features`,
:func:`clear_cache`.

Every function takes a ``Connection`` (or ``Session``) first and reads live rows (``deleted_at IS NULL``) with
2.0-style ``select()`` statements. What leaves this module is small: counts, at most :data:`TICKER_LIMIT` ticker
rows, H3 aggregates instead of points (100k incidents -> a few thousand cells at most), hazard polygons simplified
in PostGIS with a zoom-dependent tolerance, coordinates rounded to 1e-4 degree (about 10 m, below a pixel at the
zooms of a wall).

"Active" means: incidents whose status is not ``closed``; hazards in force now (status ``active``, onset passed,
not expired; :func:`layers.read.analysis.active_hazards`); shelters that are not ``closed``; annotations ``active``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import Connection, and_, case, func, literal_column, select
from sqlalchemy.orm import Session

from geoops.h3cells import cell_boundaries, cell_centres, points_to_cells, zone_weights
from geoops.population import CONTAINMENT, affected_population
from layers.read import analysis, skips
from layers.read.shelter_places import CLOSED, OPEN, could_open_sql, free_sql
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import (
    Annotation,
    FeatureHistory,
    Hazard,
    ImpactZone,
    Incident,
    PopulationSource,
    Resource,
    Shelter,
)

__all__ = [
    "MAX_HEXES",
    "TICKER_LIMIT",
    "ANNOTATION_LIMIT",
    "HAZARD_LIMIT",
    "data_version",
    "res_for_zoom",
    "tolerance_for_zoom",
    "incident_kpis",
    "shelter_places",
    "resource_counts",
    "latest_incidents",
    "incidents_per_hour",
    "incident_days",
    "incident_cells",
    "aggregate_cells",
    "affected_population_cells",
    "hazard_zones",
    "annotation_features",
    "impact_zone_features",
    "picture_extent",
    "hex_features",
    "clear_cache",
]

Db = Session | Connection

#: most hexes sent to a browser per refresh (the largest values are kept; the response says how many were cut)
MAX_HEXES = 4000
TICKER_LIMIT = 50
ANNOTATION_LIMIT = 500
HAZARD_LIMIT = 300
COORD_DECIMALS = 4
SEVERITIES = ("general", "large", "major", "extraordinary")
RESOURCE_STATUSES = ("available", "deployed", "unavailable")
#: Leaflet zoom -> H3 resolution of the heatmap: a hexagon spans roughly 10-40 screen pixels
_ZOOM_RES = {3: 2, 4: 3, 5: 4, 6: 4, 7: 5, 8: 6, 9: 6, 10: 7, 11: 8}
_POP_RES_PREFERENCE = (8, 7, 9, 6)


def _live(model: Any) -> Any:
    return model.deleted_at.is_(None)


def data_version(db: Db) -> int:
    """The newest change to any feature row: ``max(feature_history.id)`` (0 for an empty store); one index probe.

    Examples
    --------
    The version grows with every insert, update and delete of a feature (history triggers), so a wall re-fetches
    its heavy parts only when this number moves.
    """
    return int(db.execute(select(func.coalesce(func.max(FeatureHistory.id), 0))).scalar_one())


def res_for_zoom(zoom: float | None) -> int:
    """H3 resolution of the wall's heatmap at a Leaflet zoom: coarse when zoomed out.

    Examples
    --------
    >>> [res_for_zoom(z) for z in (2, 5, 7, 9, 14, None)]
    [2, 4, 5, 6, 8, 4]
    """
    z = 5 if zoom is None or not math.isfinite(float(zoom)) else int(round(float(zoom)))
    return _ZOOM_RES[min(max(z, 3), 11)]


def tolerance_for_zoom(zoom: float | None) -> float:
    """Simplification tolerance in degrees for polygons drawn at a zoom: half a screen pixel at the equator.

    Examples
    --------
    >>> round(tolerance_for_zoom(5), 4), round(tolerance_for_zoom(10), 6)
    (0.022, 0.000687)
    """
    z = 5 if zoom is None or not math.isfinite(float(zoom)) else min(max(float(zoom), 0.0), 20.0)
    return 0.5 * 360.0 / (256.0 * 2.0 ** z)


def _check_bbox(bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    from layers.read.queries import check_bbox

    return check_bbox(bbox)


# ------------------------------------------------------------------------------------------------------- KPIs


def incident_kpis(db: Db) -> dict[str, Any]:
    """Active (not closed) incidents: total and per severity (every severity key present, 0 if none).

    Returns
    -------
    dict
        ``{"active": n, "by_severity": {"general": n, "large": n, "major": n, "extraordinary": n}, "casualties": n}``.
    """
    stmt = (select(Incident.severity, func.count(), func.coalesce(func.sum(Incident.casualties), 0))
            .where(_live(Incident), Incident.status != "closed").group_by(Incident.severity))
    by = {s: 0 for s in SEVERITIES}
    casualties = 0
    for sev, n, cas in db.execute(stmt).all():
        by[str(sev)] = by.get(str(sev), 0) + int(n or 0)
        casualties += int(cas or 0)
    return {"active": sum(by.values()), "by_severity": by, "casualties": casualties}


def shelter_places(db: Db) -> dict[str, int]:
    """Shelter places by the one rule (:mod:`layers.read.shelter_places`).

    Returns
    -------
    dict
        ``free`` = free places of open shelters; ``total`` = capacity and ``occupied`` = occupancy of the shelters in
        service (open or full); ``shelters`` = how many are in service, ``open`` and ``full`` of them;
        ``closed`` = how many are closed and ``closed_places`` = what they could offer if opened (counted apart,
        never in ``free``).
    """
    in_service = Shelter.status != CLOSED
    stmt = (select(func.count().filter(in_service),
                   func.coalesce(func.sum(Shelter.capacity).filter(in_service), 0),
                   func.coalesce(func.sum(free_sql(Shelter)), 0),
                   func.coalesce(func.sum(Shelter.occupancy).filter(in_service), 0),
                   func.count().filter(Shelter.status == OPEN),
                   func.count().filter(Shelter.status == "full"),
                   func.count().filter(Shelter.status == CLOSED),
                   func.coalesce(func.sum(could_open_sql(Shelter)), 0))
            .where(_live(Shelter)))
    n, total, fr, occ, n_open, n_full, n_closed, closed_places = db.execute(stmt).one()
    return {"shelters": int(n), "total": int(total), "free": int(fr), "occupied": int(occ), "open": int(n_open),
            "full": int(n_full), "closed": int(n_closed), "closed_places": int(closed_places)}


def resource_counts(db: Db) -> dict[str, dict[str, int]]:
    """Rescue resources per status: ``{"units": {status: sum of quantity}, "records": {status: rows}}``."""
    stmt = (select(Resource.status, func.count(), func.coalesce(func.sum(Resource.quantity), 0))
            .where(_live(Resource)).group_by(Resource.status))
    units = {s: 0 for s in RESOURCE_STATUSES}
    records = {s: 0 for s in RESOURCE_STATUSES}
    for status, n, q in db.execute(stmt).all():
        records[str(status)] = int(n)
        units[str(status)] = int(q)
    return {"units": units, "records": records}


def latest_incidents(db: Db, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest incidents (by ``occurred_at``, then id), at most ``limit`` (1..:data:`TICKER_LIMIT`).

    Returns
    -------
    list of dict
        ``id, name, name_en`` (``properties.name_en``, None without), ``kind, severity, status, occurred_at,
        created_at`` (datetimes), ``lon, lat``.
    """
    if not 1 <= int(limit) <= TICKER_LIMIT:
        raise ValidationError([RowError(None, "limit", limit, f"1..{TICKER_LIMIT}")], "limit out of range")
    stmt = (select(Incident.id, Incident.name, Incident.kind, Incident.severity, Incident.status,
                   Incident.occurred_at, Incident.created_at, Incident.properties["name_en"].astext.label("name_en"),
                   func.ST_X(Incident.geom).label("lon"),
                   func.ST_Y(Incident.geom).label("lat"))
            .where(_live(Incident)).order_by(Incident.occurred_at.desc(), Incident.id.desc()).limit(int(limit)))
    return [dict(r._mapping) for r in db.execute(stmt).all()]


def incidents_per_hour(db: Db, *, hours: int = 24, now: datetime | None = None) -> dict[str, Any]:
    """Incidents per hour and kind over the last ``hours`` hours (the last bin is the current, partial hour).

    Parameters
    ----------
    hours : int, default 24
        1..168 bins.
    now : datetime, optional
        Timezone-aware; default now (UTC).

    Returns
    -------
    dict
        ``{"start": datetime, "bins": [datetime of each hour's start], "counts": {kind: [n per bin]}}``; only kinds
        with at least one incident in the window appear; every incident of the window is in exactly one bin.
    """
    if not 1 <= int(hours) <= 168:
        raise ValidationError([RowError(None, "hours", hours, "1..168")], "hours out of range")
    when = (now or datetime.now(UTC)).astimezone(UTC)
    end = when.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=int(hours))
    # date_part gives float8; extract gives numeric since PostgreSQL 14, a third slower over many rows
    bin_ = func.floor(func.date_part("epoch", Incident.occurred_at - start) / 3600).label("bin")
    stmt = (select(Incident.kind, bin_, func.count())
            .where(_live(Incident), Incident.occurred_at >= start, Incident.occurred_at < end)
            .group_by(Incident.kind, literal_column("bin")))
    counts: dict[str, list[int]] = {}
    for kind, b, n in db.execute(stmt).all():
        counts.setdefault(str(kind), [0] * int(hours))[int(b)] += int(n)
    bins = [start + timedelta(hours=i) for i in range(int(hours))]
    return {"start": start, "bins": bins, "counts": dict(sorted(counts.items()))}


def incident_days(db: Db, *, start: datetime, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every live incident that occurred in ``days`` days from ``start``, as columns: lon, lat (degrees) and the day
    (0 .. days - 1, whole days of 86400 s after ``start``). One statement; closed incidents count too.

    Raises
    ------
    ValidationError
        ``days`` outside 1..366, or a ``start`` without a time zone.
    """
    if not 1 <= int(days) <= 366:
        raise ValidationError([RowError(None, "days", days, "1..366")], "days out of range")
    if start.tzinfo is None:
        raise ValidationError([RowError(None, "start", start.isoformat(), "a time with a UTC offset")])
    end = start + timedelta(days=int(days))
    day = func.floor(func.date_part("epoch", Incident.occurred_at - start) / 86400)
    lon, lat, d = analysis.column_arrays(db, select(func.ST_X(Incident.geom).label("lon"),
                                                    func.ST_Y(Incident.geom).label("lat"), day.label("day"))
                                         .where(_live(Incident), Incident.occurred_at >= start,
                                                Incident.occurred_at < end, Incident.geom.is_not(None)))
    if lon is None:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    return (np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64),
            np.asarray(d, dtype=np.float64).astype(np.int64))


# ------------------------------------------------------------------------------------------------------- H3


def aggregate_cells(cells: Any, values: Any, *, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum per-cell values onto coarser (or equal) cells of ``res``, by each cell's centre (totals conserved).

    Examples
    --------
    >>> c, v = points_to_cells([111.65, 111.70, 112.5], [40.82, 40.85, 41.0], [1, 2, 4], res=8)
    >>> c7, v7 = aggregate_cells(c, v, res=5)
    >>> float(v7.sum()), c7.size <= c.size
    (7.0, True)
    """
    c = np.asarray(cells, dtype=np.int64)
    if c.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    lon, lat = cell_centres(c)
    return points_to_cells(lon, lat, np.asarray(values, dtype=np.float64), res=res)


def _incident_lonlat(db: Db, bbox: tuple[float, float, float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    cond = [_live(Incident), Incident.status != "closed"]
    if bbox is not None:
        cond.append(func.ST_Intersects(Incident.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    # two binary float8 arrays instead of N rows (or a MultiPoint blob): 100k points in ~0.1 s, not ~0.4 s
    lon, lat = analysis.column_arrays(db, select(func.ST_X(Incident.geom), func.ST_Y(Incident.geom))
                                      .where(and_(*cond)))
    if lon is None:
        return np.zeros(0), np.zeros(0)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


_cells_cache: dict[Any, tuple[np.ndarray, np.ndarray]] = {}


def incident_cells(db: Db, *, res: int, bbox: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Active incidents counted per H3 cell of ``res`` (sorted cells, counts; sum of counts = number of incidents).

    The points are filtered in PostGIS (live, not closed, inside ``bbox`` west,south,east,north if given) and
    binned with :func:`geoops.h3cells.points_to_cells`. Cached per process by (database, :func:`data_version`,
    res, bbox): every wall screen and every redraw of the same data shares one computation.
    """
    box = _check_bbox(bbox)
    key = (_db_key(db), data_version(db), int(res), box)
    with _cache_lock:
        hit = _cells_cache.get(key)
    if hit is not None:
        return hit
    lon, lat = _incident_lonlat(db, box)
    out = points_to_cells(lon, lat, np.ones(lon.size), res=res)
    with _cache_lock:
        if len(_cells_cache) > 32:
            _cells_cache.clear()
        _cells_cache[key] = out
    return out


_cache_lock = threading.Lock()
_affected_cache: dict[Any, dict[str, Any]] = {}


def clear_cache() -> None:
    """Forget cached affected-population results (tests; after a population rebuild in the same process)."""
    with _cache_lock:
        _affected_cache.clear()
        _cells_cache.clear()


def _population_source(db: Db) -> dict[str, Any] | None:
    for res in _POP_RES_PREFERENCE:
        try:
            return analysis.population_source(db, res=res)
        except NotFoundError:
            continue
    return None


def _db_key(db: Db) -> str:
    bind = db.get_bind() if isinstance(db, Session) else db
    return str(bind.engine.url)


def affected_population_cells(db: Db, *, at: datetime | None = None) -> dict[str, Any]:
    """People inside the active hazard zones, per population cell (area-weighted; overlapping zones counted once).

    The union of the hazards in force is weighted against the population cells
    (:func:`geoops.h3cells.zone_weights` + :func:`geoops.population.affected_population`) at the finest
    resolution available among 8, 7, 9, 6. The result is cached per process, keyed by the database, the active
    hazards (id and ``updated_at`` of each) and the population source (name, resolution, build time): every wall
    screen shares one computation, and a change to a hazard or to the population invalidates it.

    Returns
    -------
    dict
        ``total`` (float, people), ``cells`` (int64), ``population`` (float64 per cell), ``res``, ``source``
        (None without population: then total is None), ``containment`` ("area_weighted"), ``hazards`` (how many).
    """
    when = at or datetime.now(UTC)
    src = _population_source(db)
    cond = [_live(Hazard), Hazard.status == "active",
            (Hazard.onset.is_(None)) | (Hazard.onset <= when), (Hazard.expires.is_(None)) | (Hazard.expires > when)]
    sig = tuple(db.execute(select(Hazard.id, Hazard.updated_at).where(and_(*cond)).order_by(Hazard.id)).all())
    key = (_db_key(db), sig, None if src is None else (src["source"], src["res"], str(src["built_at"])))
    with _cache_lock:
        hit = _affected_cache.get(key)
    if hit is not None:
        return hit
    empty = np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {"total": None, "cells": empty, "population": np.zeros(0), "res": None, "source": None,
                           "containment": CONTAINMENT, "hazards": len(sig), "skipped": []}
    if src is not None:
        res = int(src["res"])
        out.update(res=res, source=src["source"], total=0.0)
        if sig:
            zones, skipped = skips.in_scope(analysis.active_hazards(db, at=when))
            try:
                wc, wf = _union_weights(zones, res=res)
            except Exception:  # noqa: BLE001 - find the hazard(s) whose cells fail, leave them out, keep the rest
                done, failed = skips.each(zones, lambda z: _union_weights([z], res=res))
                skipped += failed
                wc, wf = _union_weights([z for z, _ in done], res=res)
            out["skipped"] = skipped
            if wc.size:
                pop = analysis.population_of_cells(db, wc, res=res, source=src["source"])
                total, cells, people = affected_population(wc, wf, wc, pop)
                keep = people > 0
                out.update(total=total, cells=cells[keep], population=people[keep])
    with _cache_lock:
        if len(_affected_cache) > 16:
            _affected_cache.clear()
        _affected_cache[key] = out
    return out


def _union_weights(zones: Sequence[Mapping[str, Any]], *, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells and area fractions of the union of the zones' geometries (overlaps counted once)."""
    geoms = [shapely.make_valid(z["geometry"]) for z in zones]
    union = shapely.union_all([g for g in geoms if not g.is_empty]) if geoms else Polygon()
    polys = [p for p in shapely.get_parts(union) if isinstance(p, Polygon) and not p.is_empty]
    if not polys:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return zone_weights(MultiPolygon(polys) if len(polys) > 1 else polys[0], res=res)


def hex_features(cells: Any, values: Any, *, bbox: Sequence[float] | None = None,
                 max_hexes: int = MAX_HEXES) -> dict[str, Any]:
    """Compact GeoJSON of H3 cells with a ``value`` each, for the browser (coordinates rounded to 1e-4 degree).

    Cells whose centre is outside ``bbox`` (west, south, east, north) are left out; of the rest, the ``max_hexes``
    largest values are kept. ``numberMatched`` is how many cells were in the box, ``total`` their sum.

    Examples
    --------
    >>> c, v = points_to_cells([111.65, 111.70, 118.0], [40.82, 40.85, 45.0], [1, 2, 4], res=5)
    >>> fc = hex_features(c, v, max_hexes=1)
    >>> len(fc["features"]), fc["numberMatched"], fc["features"][0]["properties"]["value"], fc["total"]
    (1, 2, 4.0, 7.0)
    """
    c = np.asarray(cells, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if bbox is not None and c.size:
        w, s, e, n = _check_bbox(bbox)  # type: ignore[misc]
        lon, lat = cell_centres(c)
        inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
        c, v = c[inside], v[inside]
    matched, total = int(c.size), float(math.fsum(v.tolist()))
    if c.size > max_hexes:
        top = np.argsort(-v, kind="stable")[:max_hexes]
        c, v = c[top], v[top]
    feats = []
    for cell, val, g in zip(c.tolist(), v.tolist(), cell_boundaries(c), strict=True):
        ring = np.round(shapely.get_coordinates(g), COORD_DECIMALS).tolist()
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"h3": format(cell & 0xFFFFFFFFFFFFFFFF, "x"), "value": round(val, 1)}})
    return {"type": "FeatureCollection", "features": feats, "numberMatched": matched, "total": total}


# ------------------------------------------------------------------------------------------------------- shapes


def _geojson(geom: Any, tolerance_deg: float) -> Any:
    simplified = func.ST_SimplifyPreserveTopology(geom, tolerance_deg) if tolerance_deg > 0 else geom
    return func.ST_AsGeoJSON(simplified, COORD_DECIMALS).label("gj")


def hazard_zones(db: Db, *, tolerance_deg: float, bbox: Sequence[float] | None = None,
                 at: datetime | None = None, limit: int = HAZARD_LIMIT) -> dict[str, Any]:
    """Hazards in force as GeoJSON, simplified in PostGIS (``ST_SimplifyPreserveTopology``, tolerance in degrees).

    Ordered red first (then orange, yellow, blue), at most ``limit``. Properties: ``id, name, kind, warning_level,
    onset, expires`` (ISO 8601).
    """
    import json

    when = at or datetime.now(UTC)
    cond = [_live(Hazard), Hazard.status == "active",
            (Hazard.onset.is_(None)) | (Hazard.onset <= when), (Hazard.expires.is_(None)) | (Hazard.expires > when)]
    box = _check_bbox(bbox)
    if box is not None:
        cond.append(func.ST_Intersects(Hazard.geom, func.ST_MakeEnvelope(*box, 4326)))
    rank = case({"red": 0, "orange": 1, "yellow": 2, "blue": 3}, value=Hazard.warning_level, else_=4)
    stmt = (select(Hazard.id, Hazard.name, Hazard.kind, Hazard.warning_level, Hazard.onset, Hazard.expires,
                   _geojson(Hazard.geom, float(tolerance_deg)))
            .where(and_(*cond)).order_by(rank, Hazard.id).limit(int(limit)))
    feats = []
    for r in db.execute(stmt).all():
        feats.append({"type": "Feature", "id": int(r.id), "geometry": json.loads(r.gj), "properties": {
            "id": int(r.id), "name": r.name, "kind": r.kind, "warning_level": r.warning_level,
            "onset": r.onset.isoformat() if r.onset else None,
            "expires": r.expires.isoformat() if r.expires else None}})
    return {"type": "FeatureCollection", "features": feats}


def annotation_features(db: Db, *, tolerance_deg: float = 0.0, limit: int = ANNOTATION_LIMIT) -> dict[str, Any]:
    """Active annotations (newest first, at most ``limit``) as GeoJSON: ``id, symbol, label, color, name``."""
    import json

    stmt = (select(Annotation.id, Annotation.kind, Annotation.label, Annotation.color, Annotation.name,
                   _geojson(Annotation.geom, float(tolerance_deg)))
            .where(_live(Annotation), Annotation.status == "active")
            .order_by(Annotation.updated_at.desc(), Annotation.id.desc()).limit(int(limit)))
    feats = [{"type": "Feature", "id": int(r.id), "geometry": json.loads(r.gj),
              "properties": {"id": int(r.id), "symbol": r.kind, "label": r.label, "color": r.color, "name": r.name}}
             for r in db.execute(stmt).all()]
    return {"type": "FeatureCollection", "features": feats}


def impact_zone_features(db: Db, *, tolerance_deg: float = 0.0, limit: int = ANNOTATION_LIMIT) -> dict[str, Any]:
    """Published impact zones (status ``active``; drafts and archived ones are the analysts' own) as GeoJSON, newest
    first, at most ``limit``: ``id, name, kind``."""
    import json

    stmt = (select(ImpactZone.id, ImpactZone.kind, ImpactZone.name, _geojson(ImpactZone.geom, float(tolerance_deg)))
            .where(_live(ImpactZone), ImpactZone.status == "active")
            .order_by(ImpactZone.updated_at.desc(), ImpactZone.id.desc()).limit(int(limit)))
    feats = [{"type": "Feature", "id": int(r.id), "geometry": json.loads(r.gj),
              "properties": {"id": int(r.id), "kind": r.kind, "name": r.name}} for r in db.execute(stmt).all()]
    return {"type": "FeatureCollection", "features": feats}


def picture_extent(db: Db, *, at: datetime | None = None, leave_out: Iterable[int] = ()) -> list[float] | None:
    """``[west, south, east, north]`` of the hazards in force and the active incidents (what the wall fits its map
    to), None when there are neither. ``leave_out``: ids of hazards the picture could not compute (its ``skipped``):
    one drawn over half the country must not zoom the wall out from the situation it can show."""
    when = at or datetime.now(UTC)
    hz = (select(Hazard.geom).where(_live(Hazard), Hazard.status == "active",
                                    (Hazard.onset.is_(None)) | (Hazard.onset <= when),
                                    (Hazard.expires.is_(None)) | (Hazard.expires > when)))
    if skip := sorted({int(i) for i in leave_out}):
        hz = hz.where(Hazard.id.not_in(skip))
    inc = select(Incident.geom).where(_live(Incident), Incident.status != "closed")
    both = hz.union_all(inc).subquery()
    box = func.ST_Extent(both.c.geom)
    r = db.execute(select(func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box), func.ST_YMax(box))).one()
    return None if r[0] is None else [round(float(v), COORD_DECIMALS) for v in r]


def population_source_version(db: Db) -> str:
    """The newest population build (``max(built_at)`` of population_sources) as text, '' without population."""
    v = db.execute(select(func.max(PopulationSource.built_at))).scalar_one()
    return "" if v is None else v.isoformat()
