"""Feature queries in the terms other GIS speak (OGC API - Features): what ``/ogc/collections/.../items`` reads.

Public: :data:`CRS84`, :data:`CRSS`, :class:`OutputCRS`, :func:`crs_of`, :func:`bbox_to_lonlat`,
:func:`collection_attributes`, :func:`queryables`, :func:`time_conditions`, :func:`cql_condition`,
:func:`fetch_items`, :func:`fetch_item`, :func:`extents`, :data:`POPULATION_PREFIX`, :func:`population_collections`,
:func:`population_res`, :func:`fetch_population`, :func:`population_item`, :func:`population_queryables`,
:func:`collection_names`.

A *collection* is a feature layer of the registry (:mod:`layers.store.registry`) or the H3 population of one
resolution (``population_h3_r8``). For a layer:

* features are the live rows (soft-deleted never), ordered by id; properties are the registry's attributes and the
  layer's time columns (a stable schema, the same for every feature, which GDAL and QGIS read from the first page);
* ``bbox`` is in any CRS of :data:`CRSS` (converted to lon/lat by pyproj), features whose geometry meets it;
* ``datetime`` (an instant or an interval, either end open) keeps the features whose time, from the layer's time
  columns (``onset``/``expires`` of a hazard, ``occurred_at`` of an incident, ``valid_from``/``valid_to`` of the
  rest; a missing start or end is open), meets it (:func:`time_conditions`);
* equality filters on the vocabulary attributes (``kind=fire,flood``) are checked against the vocabulary;
* CQL2 text (``filter``) is parsed by ``pygeofilter`` and turned into a SQLAlchemy condition over the queryable
  attributes and ``geom`` (:func:`cql_condition`);
* the output CRS transforms and, for CRSs with latitude first (EPSG:4326, EPSG:4490), swaps the axes, in PostGIS;
* "as of" a past time runs the same query on the layer rebuilt from the history (:func:`layers.read.history.as_of`).

The population is read from ``population_cells`` (the source :func:`layers.read.analysis.population_source`
picks); each cell is a feature whose geometry is its outline (:func:`geoops.h3cells.cell_boundaries`) and whose
id is the H3 index as a hex string. A ``bbox`` reads candidate cells by index ranges
(:func:`geoops.h3cells.bbox_child_ranges`) and keeps the cells whose outline meets the box.

Bad arguments raise :class:`layers.store.errors.ValidationError` (field, value, allowed); an unknown feature raises
:class:`layers.store.errors.NotFoundError`.

Examples
--------
>>> crs_of("http://www.opengis.net/def/crs/EPSG/0/4490")
OutputCRS(uri='http://www.opengis.net/def/crs/EPSG/0/4490', srid=4490, lat_first=True, decimals=7)
>>> bbox_to_lonlat([40.0, 111.0, 41.0, 112.0], crs_of("http://www.opengis.net/def/crs/EPSG/0/4326"))
(111.0, 40.0, 112.0, 41.0)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import numpy as np
import pyproj
import shapely
from sqlalchemy import BigInteger, Connection, Table, bindparam, func, literal, or_, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Boolean, DateTime, Float, Integer, Numeric

from geoops.h3cells import bbox_child_ranges, cell_boundaries
from layers.read.analysis import population_source
from layers.read.history import as_of
from layers.read.queries import GEOJSON_DECIMALS, check_bbox, geojson_geometry, properties_object
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import PopulationCell, PopulationSource, table_of
from layers.store.registry import LAYERS, LayerDef, layer_versions
from layers.store.vocab import VOCABULARIES

__all__ = ["CRS84", "CRSS", "OutputCRS", "crs_of", "bbox_to_lonlat", "collection_attributes", "queryables",
           "time_conditions", "cql_condition", "fetch_items", "fetch_item", "extents", "POPULATION_PREFIX",
           "population_collections", "population_res", "fetch_population", "population_item", "population_queryables",
           "collection_names", "MAX_LIMIT"]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MAX_LIMIT = 10_000
POPULATION_PREFIX = "population_h3_r"
#: the resolutions served as population collections
POPULATION_RES: tuple[int, ...] = (7, 8)
_EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@dataclass(frozen=True)
class OutputCRS:
    """A CRS features can be asked in: its OGC URI, PostGIS SRID, whether its first axis is latitude, and the
    decimals kept (1e-7 degree is about 1 cm; Web Mercator metres to the centimetre)."""

    uri: str
    srid: int
    lat_first: bool
    decimals: int


#: CRS URI -> definition: CRS84 (the storage CRS, longitude first), WGS 84 and CGCS2000 (latitude first, as EPSG
#: defines them), Web Mercator
CRSS: Mapping[str, OutputCRS] = {c.uri: c for c in (
    OutputCRS(CRS84, 4326, False, GEOJSON_DECIMALS),
    OutputCRS(f"{_EPSG}4326", 4326, True, GEOJSON_DECIMALS),
    OutputCRS(f"{_EPSG}4490", 4490, True, GEOJSON_DECIMALS),
    OutputCRS(f"{_EPSG}3857", 3857, False, 2),
)}
_SHORT = re.compile(r"^\[?(?:EPSG:(\d+)|OGC:CRS84|CRS84)\]?$", re.IGNORECASE)


def crs_of(uri: str | None, field: str = "crs") -> OutputCRS:
    """The :class:`OutputCRS` of a URI of :data:`CRSS` (also ``EPSG:4490``, ``[EPSG:4490]``, ``CRS84``); None: CRS84.

    Raises
    ------
    ValidationError
        Any other CRS (the message lists the supported URIs).
    """
    if uri is None:
        return CRSS[CRS84]
    text = uri.strip()
    m = _SHORT.match(text)
    if m:
        text = f"{_EPSG}{m[1]}" if m[1] else CRS84
    found = CRSS.get(text.replace("https://", "http://"))
    if found is None:
        raise ValidationError([RowError(None, field, uri, "one of " + ", ".join(CRSS))])
    return found


@cache
def _to_lonlat(srid: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(f"EPSG:{srid}", "EPSG:4326", always_xy=True)


def bbox_to_lonlat(bbox: Sequence[float], crs: OutputCRS) -> tuple[float, float, float, float]:
    """A bounding box given in ``crs`` (in its axis order) as ``(west, south, east, north)`` degrees, EPSG:4326.

    Raises
    ------
    ValidationError
        Not four finite numbers in that CRS, or an empty box.
    """
    try:
        a, b, c, d = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValidationError([RowError(None, "bbox", bbox, "four numbers: minx,miny,maxx,maxy in bbox-crs")]) from None
    if crs.lat_first:
        a, b, c, d = b, a, d, c
    if crs.srid != 4326:
        if not (a < c and b < d):
            raise ValidationError([RowError(None, "bbox", bbox, "lower corner before upper corner in bbox-crs")])
        a, b, c, d = _to_lonlat(crs.srid).transform_bounds(a, b, c, d)
    return check_bbox([a, b, c, d])


# --------------------------------------------------------------------------------------------- the schema

def collection_attributes(d: LayerDef) -> tuple[str, ...]:
    """The properties of a layer's features: the registry's attributes (not ``id``: it is the feature's id), then
    the layer's time columns.

    >>> collection_attributes(LAYERS["shelters"])[-3:]
    ('occupancy', 'valid_from', 'valid_to')
    """
    names = [a for a in d.all_attributes if a != "id"]
    names += [c for c in d.time if c and c not in names]
    return tuple(names)


def _json_type(col: Any) -> dict[str, Any]:
    if isinstance(col.type, DateTime):
        return {"type": "string", "format": "date-time"}
    if isinstance(col.type, Integer):
        return {"type": "integer"}
    if isinstance(col.type, (Float, Numeric)):
        return {"type": "number"}
    if isinstance(col.type, Boolean):
        return {"type": "boolean"}
    return {"type": "string"}


def queryables(d: LayerDef) -> dict[str, dict[str, Any]]:
    """Attribute -> JSON schema of each property of a layer (vocabulary attributes with their ``enum``), plus
    ``geom`` (the geometry, for spatial CQL2 functions).

    >>> queryables(LAYERS["incidents"])["severity"]["enum"][:2]
    ['general', 'large']
    """
    t = table_of(d.model)
    out: dict[str, dict[str, Any]] = {}
    for a in collection_attributes(d):
        schema = _json_type(t.c[a])
        vocab = d.vocab_of(a)
        if vocab is not None:
            schema["enum"] = list(VOCABULARIES[vocab])
        out[a] = {"title": a, **schema}
    out["geom"] = {"title": "geom", "format": f"geometry-{_geometry_format(d.geometry_type)}"}
    return out


def _geometry_format(kind: str) -> str:
    return {"POINT": "point", "MULTIPOLYGON": "multipolygon"}.get(kind, "any")


# --------------------------------------------------------------------------------------------- conditions

def time_conditions(d: LayerDef, start: datetime | None, end: datetime | None, t: Table | None = None) -> list[Any]:
    """Conditions keeping the features of layer ``d`` whose time meets ``[start, end]`` (None: open).

    A layer whose time is an interval (``start_col``, ``end_col``) keeps a feature when
    ``start_col <= end`` and ``end_col >= start``; a missing value is an open end. A layer whose time is an
    instant (``end_col`` None) keeps ``start <= start_col <= end``. An instant ``T`` is ``start = end = T``.
    """
    t = table_of(d.model) if t is None else t
    begin_col, end_col = d.time
    b = t.c[begin_col]
    out: list[Any] = []
    if end_col is None:
        if start is not None:
            out.append(b >= start)
        if end is not None:
            out.append(b <= end)
        return out
    e = t.c[end_col]
    if end is not None:
        out.append(or_(b.is_(None), b <= end))
    if start is not None:
        out.append(or_(e.is_(None), e >= start))
    return out


def cql_condition(d: LayerDef, text: str, t: Table | None = None) -> Any:
    """A CQL2 text filter (OGC API - Features Part 3) as a SQLAlchemy condition over the layer's queryables.

    Parsed by ``pygeofilter`` (the parser pygeoapi uses); comparisons, ``LIKE``, ``IN``, ``BETWEEN``,
    ``IS NULL``, ``AND``/``OR``/``NOT`` and the spatial functions (``S_INTERSECTS(geom, POLYGON(...))``; geometry
    literals in CRS84) are supported.

    Raises
    ------
    ValidationError
        Text that does not parse, or names a property that is not queryable (the message lists them).

    Examples
    --------
    >>> from sqlalchemy.dialects import postgresql
    >>> c = cql_condition(LAYERS["incidents"], "kind = 'fire' AND casualties > 2")
    >>> str(c.compile(dialect=postgresql.dialect()))
    'incidents.kind = %(kind_1)s::VARCHAR AND incidents.casualties > %(casualties_1)s::INTEGER'
    """
    from pygeofilter.backends.sqlalchemy import to_filter
    from pygeofilter.parsers.cql2_text import parse

    t = table_of(d.model) if t is None else t
    names = collection_attributes(d)
    fields = {a: t.c[a] for a in names} | {"geom": t.c.geom}
    allowed = "CQL2 text over the queryables " + ", ".join((*names, "geom"))
    try:
        ast = parse(text)
    except Exception as e:  # noqa: BLE001 - lark's errors have no common base worth naming; the text is refused
        raise ValidationError([RowError(None, "filter", text, f"{allowed} ({type(e).__name__}: "
                                        f"{str(e).splitlines()[0][:120]})")]) from None
    try:
        return to_filter(ast, fields)
    except KeyError as e:
        raise ValidationError([RowError(None, "filter", text, f"{allowed}; unknown: {e.args[0]!r}")]) from None
    except Exception as e:  # noqa: BLE001 - pygeofilter raises plain errors for what it cannot translate
        raise ValidationError([RowError(None, "filter", text, f"{allowed} ({type(e).__name__}: {e})")]) from None


def _equals(d: LayerDef, equals: Mapping[str, Sequence[str]], t: Table) -> list[Any]:
    out = []
    for attr, values in equals.items():
        vocab = d.vocab_of(attr)
        if vocab is None:
            raise ValidationError([RowError(None, attr, list(values), "a vocabulary attribute of layer "
                                            f"{d.name}: {', '.join(d.vocabs)}")])
        bad = [v for v in values if v not in VOCABULARIES[vocab]]
        if bad or not values:
            raise ValidationError([RowError(None, attr, bad[0] if len(bad) == 1 else (bad or list(values)),
                                            "one or more of " + ", ".join(VOCABULARIES[vocab]))])
        out.append(t.c[attr].in_(list(values)))
    return out


def _check_page(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError([RowError(None, "limit", limit, f"an integer in 1..{MAX_LIMIT}")])
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError([RowError(None, "offset", offset, "an integer >= 0")])


@contextmanager
def _reading(conn: Connection, name: str, at: datetime | None) -> Iterator[Connection]:
    with as_of(conn, at, layers=[name]) if at is not None else nullcontext(conn) as c:
        yield c


# --------------------------------------------------------------------------------------------- layers

def _layer(name: str) -> LayerDef:
    d = LAYERS.get(name)
    if d is None:
        raise NotFoundError(f"unknown collection {name!r}; known: {', '.join(collection_names())}")
    return d


def collection_names() -> tuple[str, ...]:
    """Every collection name: the feature layers, then the population resolutions."""
    return (*LAYERS, *(f"{POPULATION_PREFIX}{r}" for r in POPULATION_RES))


def fetch_items(
    conn: Connection,
    name: str,
    *,
    bbox: Sequence[float] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    equals: Mapping[str, Sequence[str]] | None = None,
    cql: str | None = None,
    crs: OutputCRS | None = None,
    at: datetime | None = None,
    limit: int = 10,
    offset: int = 0,
    after: int | None = None,
    count: bool = True,
) -> dict[str, Any]:
    """Features of one layer as a GeoJSON FeatureCollection, filtered and paged (see the module docstring).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Not in autocommit mode when ``at`` is given (the past is rebuilt in temporary tables of a transaction).
    name : str
        A feature layer.
    bbox : (west, south, east, north), optional
        Degrees, EPSG:4326 (:func:`bbox_to_lonlat` converts other CRSs).
    start, end : datetime, optional
        Timezone-aware; the time window (:func:`time_conditions`).
    equals : mapping, optional
        Vocabulary attribute -> values to keep.
    cql : str, optional
        CQL2 text (:func:`cql_condition`).
    crs : OutputCRS, optional
        Output CRS; default CRS84.
    at : datetime, optional
        Read the layer as it was at this time (the store "as of").
    limit, offset : int
        Page size (1..10000) and features skipped.
    after : int, optional
        Only features with an id above this (the cursor of the previous page's ``next_after``).
    count : bool, default True
        Count every matching feature (``numberMatched``; one more query).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features", "numberReturned", "numberMatched" (when counted),
        "next_after": id or None}``.
    """
    d = _layer(name)
    _check_page(limit, offset)
    out_crs = crs or CRSS[CRS84]
    t = table_of(d.model)
    where: list[Any] = [t.c.deleted_at.is_(None)]
    if bbox is not None:
        w, s, e, n = check_bbox(bbox)
        where.append(func.ST_Intersects(t.c.geom, func.ST_MakeEnvelope(w, s, e, n, 4326)))
    where += time_conditions(d, start, end, t)
    where += _equals(d, equals or {}, t)
    if cql:
        where.append(cql_condition(d, cql, t))
    page = [*where, t.c.id > after] if after is not None else where
    stmt = (select(t.c.id, properties_object(t, collection_attributes(d)).label("properties"),
                   geojson_geometry(t.c.geom, srid=out_crs.srid, lat_first=out_crs.lat_first,
                                    decimals=out_crs.decimals))
            .where(*page).order_by(t.c.id).limit(limit + 1).offset(offset or None))
    with _reading(conn, name, at) as c:
        rows = c.execute(stmt).all()
        matched = int(c.execute(select(func.count()).select_from(t).where(*where)).scalar_one()) if count else None
    more = len(rows) > limit
    features = [{"type": "Feature", "id": int(fid), "geometry": json.loads(g) if g else None, "properties": props}
                for fid, props, g in rows[:limit]]
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}
    if matched is not None:
        body["numberMatched"] = matched
    body["next_after"] = features[-1]["id"] if more and features else None
    return body


def fetch_item(conn: Connection, name: str, fid: int, *, crs: OutputCRS | None = None,
               at: datetime | None = None) -> dict[str, Any]:
    """One live feature of a layer as a GeoJSON Feature.

    Raises
    ------
    NotFoundError
        No live feature ``fid`` in that layer (at that time).
    """
    d = _layer(name)
    out_crs = crs or CRSS[CRS84]
    t = table_of(d.model)
    stmt = (select(t.c.id, properties_object(t, collection_attributes(d)).label("properties"),
                   geojson_geometry(t.c.geom, srid=out_crs.srid, lat_first=out_crs.lat_first,
                                    decimals=out_crs.decimals))
            .where(t.c.id == int(fid), t.c.deleted_at.is_(None)))
    with _reading(conn, name, at) as c:
        row = c.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no feature {fid} in collection {name!r}")
    return {"type": "Feature", "id": int(row.id), "geometry": json.loads(row.geometry), "properties": row.properties}


_extent_cache: dict[tuple[str, str, int], dict[str, Any]] = {}


def extents(conn: Connection) -> dict[str, dict[str, Any]]:
    """Per layer: ``{"bbox": [w, s, e, n] or None, "interval": [start, end] ISO 8601 or None, "count": n}`` of its
    live features, cached per layer data version."""
    versions = layer_versions(conn)
    url = str(conn.engine.url)
    out: dict[str, dict[str, Any]] = {}
    for name, d in LAYERS.items():
        key = (url, name, versions[name])
        hit = _extent_cache.get(key)
        if hit is None:
            t = table_of(d.model)
            b, e = d.time
            ext = func.ST_Extent(t.c.geom)
            row = conn.execute(select(func.ST_XMin(ext), func.ST_YMin(ext), func.ST_XMax(ext), func.ST_YMax(ext),
                                      func.min(t.c[b]), func.max(t.c[e or b]), func.count())
                               .where(t.c.deleted_at.is_(None))).one()
            hit = {"bbox": [float(v) for v in row[:4]] if row[0] is not None else None,
                   "interval": [v.isoformat() if v is not None else None for v in row[4:6]]
                   if row[4] is not None or row[5] is not None else None,
                   "count": int(row[6])}
            _extent_cache[key] = hit
        out[name] = hit
    return out


# --------------------------------------------------------------------------------------------- population

def population_res(name: str) -> int:
    """The H3 resolution of a population collection name (``population_h3_r8`` -> 8).

    Raises
    ------
    NotFoundError
        Not a population collection.

    >>> population_res("population_h3_r7")
    7
    """
    if name.startswith(POPULATION_PREFIX) and name[len(POPULATION_PREFIX):].isdigit():
        res = int(name[len(POPULATION_PREFIX):])
        if res in POPULATION_RES:
            return res
    raise NotFoundError(f"unknown collection {name!r}; known: {', '.join(collection_names())}")


def population_collections(conn: Connection) -> dict[int, dict[str, Any]]:
    """``{res: source row}`` of the resolutions of :data:`POPULATION_RES` that have population (the source
    :func:`layers.read.analysis.population_source` picks)."""
    have = {int(r) for r in conn.execute(select(PopulationSource.res).distinct()).scalars()}
    return {r: population_source(conn, res=r) for r in POPULATION_RES if r in have}


@cache
def _from_lonlat(srid: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{srid}", always_xy=True)


def _cell_geometries(cells: np.ndarray, crs: OutputCRS) -> list[dict[str, Any]]:
    polys = cell_boundaries(cells)
    if crs.srid != 4326:
        tr = _from_lonlat(crs.srid)
        polys = shapely.transform(polys, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    if crs.lat_first:
        polys = shapely.transform(polys, lambda xy: xy[:, ::-1])
    coords, index = shapely.get_coordinates(shapely.get_exterior_ring(polys), return_index=True)
    counts = np.bincount(index, minlength=len(polys))
    rounded = np.round(coords, crs.decimals).tolist()
    out, i = [], 0
    for n in counts.tolist():
        out.append({"type": "Polygon", "coordinates": [rounded[i:i + n]]})
        i += n
    return out


_POP_CHUNK = 20_000


def fetch_population(conn: Connection, name: str, *, bbox: Sequence[float] | None = None,
                     crs: OutputCRS | None = None, limit: int = 10, offset: int = 0, after: int | None = None,
                     count: bool = True) -> dict[str, Any]:
    """H3 population cells of one resolution as a GeoJSON FeatureCollection, ordered by cell index.

    Properties: ``h3`` (hex), ``res``, ``population`` (persons), ``source``. With ``bbox`` (degrees, EPSG:4326),
    the cells whose outline meets it; ``numberMatched`` is then not given (it would need every cell's outline).
    ``after`` is an int64 cell index (the ``next_after`` of the previous page).

    Raises
    ------
    NotFoundError
        Not a population collection, or no population at that resolution.
    """
    res = population_res(name)
    _check_page(limit, offset)
    out_crs = crs or CRSS[CRS84]
    src = population_source(conn, res=res)["source"]
    pc = PopulationCell
    where: list[Any] = [pc.source == src, pc.res == res]
    box = None
    ranges = None
    if bbox is not None:
        w, s, e, n = check_bbox(bbox)
        box = shapely.box(w, s, e, n)
        ranges = bbox_child_ranges((w, s, e, n), res=res, parent_res=max(0, res - 3))
    base = select(pc.h3, pc.population).where(*where)
    if ranges is not None:
        r = func.unnest(bindparam("lo", ranges[0].tolist(), type_=ARRAY(BigInteger)),
                        bindparam("hi", ranges[1].tolist(), type_=ARRAY(BigInteger))
                        ).table_valued("lo", "hi").render_derived(name="r")
        base = base.join(r, pc.h3.between(r.c.lo, r.c.hi))
    matched = None
    if count and box is None:
        matched = int(conn.execute(select(func.count()).select_from(pc).where(*where)).scalar_one())
    cells: list[int] = []
    pops: list[float] = []
    skip = offset
    cursor = after
    want = limit + 1
    while len(cells) < want:
        stmt = base.where(pc.h3 > cursor if cursor is not None else true()).order_by(pc.h3).limit(_POP_CHUNK)
        rows = conn.execute(stmt).all()
        if not rows:
            break
        h = np.array([r[0] for r in rows], dtype=np.int64)
        p = np.array([r[1] for r in rows], dtype=np.float64)
        cursor = int(h[-1])
        if box is not None:
            keep = shapely.intersects(cell_boundaries(h), box)
            h, p = h[keep], p[keep]
        if skip:
            dropped = min(skip, h.size)
            h, p, skip = h[dropped:], p[dropped:], skip - dropped
        cells += h[: want - len(cells)].tolist()
        pops += p[: want - len(pops)].tolist()
        if len(rows) < _POP_CHUNK:
            break
    more = len(cells) > limit
    cells, pops = cells[:limit], pops[:limit]
    arr = np.asarray(cells, dtype=np.int64)
    geoms = _cell_geometries(arr, out_crs) if arr.size else []
    features = [{"type": "Feature", "id": f"{c & 0xFFFFFFFFFFFFFFFF:x}", "geometry": g,
                 "properties": {"h3": f"{c & 0xFFFFFFFFFFFFFFFF:x}", "res": res, "population": pop, "source": src}}
                for c, pop, g in zip(cells, pops, geoms, strict=True)]
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}
    if matched is not None:
        body["numberMatched"] = matched
    body["next_after"] = cells[-1] if more and cells else None
    return body


def population_queryables() -> dict[str, dict[str, Any]]:
    """The properties of a population cell, as :func:`queryables` gives them for a layer."""
    return {"h3": {"title": "h3", "type": "string"}, "res": {"title": "res", "type": "integer"},
            "population": {"title": "population", "type": "number"},
            "source": {"title": "source", "type": "string"},
            "geom": {"title": "geom", "format": "geometry-polygon"}}


def population_item(conn: Connection, name: str, cell_hex: str, *, crs: OutputCRS | None = None) -> dict[str, Any]:
    """One population cell (its hex H3 index) as a GeoJSON Feature.

    Raises
    ------
    NotFoundError
        Not a cell of that collection.
    """
    res = population_res(name)
    try:
        cell = int(cell_hex, 16)
    except ValueError:
        raise NotFoundError(f"no cell {cell_hex!r} in collection {name!r} (ids are hex H3 indexes)") from None
    if cell >= 1 << 63:
        cell -= 1 << 64
    src = population_source(conn, res=res)["source"]
    pop = conn.execute(select(PopulationCell.population).where(
        PopulationCell.source == src, PopulationCell.res == res, PopulationCell.h3 == literal(cell, BigInteger))
    ).scalar_one_or_none()
    if pop is None:
        raise NotFoundError(f"no cell {cell_hex!r} in collection {name!r}")
    out_crs = crs or CRSS[CRS84]
    (geom,) = _cell_geometries(np.array([cell], dtype=np.int64), out_crs)
    return {"type": "Feature", "id": f"{cell & 0xFFFFFFFFFFFFFFFF:x}", "geometry": geom,
            "properties": {"h3": f"{cell & 0xFFFFFFFFFFFFFFFF:x}", "res": res, "population": float(pop),
                           "source": src}}
