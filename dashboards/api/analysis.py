"""Analysis endpoints: geodesic buffers, nearest resources, the impact card, shelter coverage, regional risk.

Public (HTTP, under ``/api/v1``): ``POST /analysis/buffer``, ``GET|POST /analysis/nearest``,
``POST /analysis/impact``, ``POST /analysis/shelter-coverage``, ``GET /analysis/risk``. Python: :func:`parse_zone`,
:func:`check_points`, :func:`impact`, :func:`shelter_coverage`, :func:`risk` (the dashboards call these too).

Views parse and check the request (every problem is a 4xx naming the field, the value and what is allowed), fetch
small candidate sets through :mod:`layers.read.analysis` and compute with :mod:`geoops`. No SQL and no geometry maths
here beyond assembling results. Units: metres, square metres, persons; coordinates lon/lat EPSG:4326.
See ``docs/api.md`` for what every number means.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, mapping
from shapely.geometry.base import BaseGeometry

from dashboards.api import db_engine, db_read, settings
from dashboards.api.errors import ParameterError, json_response
from dashboards.api.openapi import body_keys, endpoint, query, register_schema
from dashboards.i18n import t
from geoops import geodesic
from geoops.errors import InvalidGeometryError, InvalidParameterError
from geoops.validate import check_geometry, parse_geojson_geometry
from layers.read import analysis as store
from layers.store import vocab

MAX_K = 100
MAX_BATCH_POINTS = 100_000
MAX_RADIUS_M = geodesic.MAX_DISTANCE_M
RES_RANGE = (5, 10)
DEFAULT_RES = 8
MAX_SHELTER_DISTANCE_M = 100_000.0
RESOURCE_KINDS = list(vocab.keys("resource_kind"))
RESOURCE_STATUS = list(vocab.keys("resource_status"))
SHELTER_KINDS = list(vocab.keys("shelter_kind"))
HAZARD_KINDS = list(vocab.keys("hazard_kind"))

ZONE_REF = register_schema("Zone", {
    "description": "A GeoJSON Polygon / MultiPolygon (or a Feature of one), or a geodesic circle "
                   "`{\"center\": [lon, lat], \"radius_m\": r}` with r in (0, 500000] metres.",
    "oneOf": [{"$ref": "#/components/schemas/Geometry"},
              {"type": "object", "required": ["center", "radius_m"],
               "properties": {"center": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                                         "maxItems": 2},
                              "radius_m": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RADIUS_M}}}],
})


# ------------------------------------------------------------------------------------------------ parsing


def _service_area() -> tuple[float, float, float, float]:
    return tuple(settings().service_area)  # type: ignore[return-value]


def _number(body: Mapping[str, Any], name: str, *, default: float | None, lo: float, hi: float,
            lo_open: bool = True, integer: bool = False) -> Any:
    value = body.get(name, default)
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
    allowed = f"{'an integer' if integer else 'a number'} in {interval}"
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(field=name, value=value, allowed=allowed)
    if integer and (not float(value).is_integer()):
        raise ParameterError(field=name, value=value, allowed=allowed)
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        raise ParameterError(field=name, value=value, allowed=allowed)
    return int(v) if integer else v


def _keys(body: Mapping[str, Any], name: str, allowed: Sequence[str], *, default: Any = None) -> list[str] | None:
    value = body.get(name, default)
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ParameterError(field=name, value=value, allowed="one or more of " + ", ".join(allowed))
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ParameterError(f"{name}: unknown {bad[0]!r}; allowed: {', '.join(allowed)}", field=name,
                             value=bad[0], allowed=list(allowed), code="unknown_kind")
    return list(values)


def parse_zone(obj: Any, *, field: str = "geometry", polygonal: bool = True,
               max_area_km2: float | None = None) -> tuple[BaseGeometry, list[str], float]:
    """A zone from a request: GeoJSON (geometry or Feature) or ``{"center": [lon, lat], "radius_m": r}``.

    Checked against the service area (lon/lat swaps are named), repaired when safe (the note says so), and, if
    ``polygonal``, required to be a (Multi)Polygon no larger than ``max_area_km2`` (default: the setting).

    Returns
    -------
    (zone, notes, area_m2)
    """
    if isinstance(obj, dict) and "center" in obj and "type" not in obj:
        extra = sorted(set(obj) - {"center", "radius_m"})
        if extra:
            raise ParameterError(field=f"{field}.{extra[0]}", value=obj[extra[0]], allowed=["center", "radius_m"])
        c = obj.get("center")
        if (not isinstance(c, list) or len(c) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in c)):
            raise ParameterError(field=f"{field}.center", value=c, allowed="[lon, lat] in degrees")
        radius = _number(obj, "radius_m", default=None, lo=0.0, hi=MAX_RADIUS_M)
        centre, _ = check_geometry(Point(float(c[0]), float(c[1])), service_area=_service_area(),
                                   field=f"{field}.center")
        zone: BaseGeometry = geodesic.circle(centre.x, centre.y, radius_m=float(radius))
        notes: list[str] = []
    else:
        if obj is None:
            raise ParameterError(field=field, value=None, allowed="a GeoJSON geometry or {center, radius_m}",
                                 code="missing_parameter")
        zone = parse_geojson_geometry(obj, field=field)
        zone, notes = check_geometry(zone, service_area=_service_area(), field=field)
    area = float(geodesic.area_m2(zone))
    if polygonal:
        if zone.geom_type not in ("Polygon", "MultiPolygon"):
            raise InvalidGeometryError("a zone must be an area", field=field, value=zone.geom_type,
                                       allowed="Polygon, MultiPolygon or {center, radius_m}",
                                       code="zone_not_polygonal")
        limit = settings().max_zone_area_km2 if max_area_km2 is None else max_area_km2
        if area / 1e6 > limit:
            raise InvalidGeometryError(f"zone of {area / 1e6:,.0f} km2", field=field,
                                       value=f"{area / 1e6:.1f} km2", allowed=f"at most {limit:g} km2 "
                                       "(SITROOM_MAX_ZONE_AREA_KM2)", code="zone_too_large")
    return zone, notes, area


def check_points(points: Any, *, field: str = "points", max_points: int = MAX_BATCH_POINTS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``[[lon, lat], ...]`` or a FeatureCollection of Points -> (lon, lat) arrays, checked against the service area."""
    if isinstance(points, dict):
        if points.get("type") != "FeatureCollection" or not isinstance(points.get("features"), list):
            raise ParameterError(field=field, value=points.get("type"),
                                 allowed="[[lon, lat], ...] or a GeoJSON FeatureCollection of Points")
        coords = []
        for i, f in enumerate(points["features"]):
            g = (f or {}).get("geometry") if isinstance(f, dict) else None
            if not isinstance(g, dict) or g.get("type") != "Point":
                raise ParameterError(field=f"{field}.features[{i}].geometry", value=g,
                                     allowed="a GeoJSON Point")
            coords.append(g.get("coordinates"))
        points = coords
    if not isinstance(points, list) or not points:
        raise ParameterError(field=field, value=points, allowed=f"1 to {max_points} [lon, lat] pairs")
    if len(points) > max_points:
        raise ParameterError(field=field, value=f"{len(points)} points",
                             allowed=f"1 to {max_points} [lon, lat] pairs per request", code="too_many_points")
    try:
        xy = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        xy = None
    if xy is None or xy.ndim != 2 or xy.shape[1] < 2:
        bad = next((i for i, p in enumerate(points) if not (isinstance(p, list) and len(p) >= 2)), 0)
        raise ParameterError(field=f"{field}[{bad}]", value=points[bad], allowed="[lon, lat] in degrees")
    lon, lat = xy[:, 0], xy[:, 1]
    w, s, e, n = _service_area()
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        swapped = w <= lat[i] <= e and s <= lon[i] <= n
        allowed = f"lon in [{w:g}, {e:g}] and lat in [{s:g}, {n:g}] (the service area, lon first)"
        raise InvalidGeometryError("looks like lon/lat swapped" if swapped else
                                   f"{int(bad.sum())} of {len(lon)} points outside the service area",
                                   field=f"{field}[{i}]", value=[float(lon[i]), float(lat[i])], allowed=allowed,
                                   code="lonlat_swapped" if swapped else "outside_service_area")
    return lon.copy(), lat.copy()


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


# ------------------------------------------------------------------------------------------------ 1. buffer

BUFFER_BODY = {
    "type": "object", "required": ["geometry", "distances_m"], "additionalProperties": False,
    "properties": {
        "geometry": {"$ref": "#/components/schemas/Geometry"},
        "distances_m": {"type": "array", "minItems": 1, "maxItems": geodesic.MAX_RINGS,
                        "items": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RADIUS_M},
                        "description": "strictly increasing geodesic distances, metres"},
        "segments": {"type": "integer", "minimum": 8, "maximum": 1024, "default": 128},
    },
    "example": {"geometry": {"type": "Point", "coordinates": [111.75, 40.84]}, "distances_m": [1000, 3000, 5000]},
}


@endpoint("/analysis/buffer", "POST", tags=("analysis",), operation_id="analysis_buffer",
          summary="Geodesic multi-ring buffer around a point, line or polygon",
          description="One ring per distance (outer buffer minus the previous one), built in local azimuthal-"
                      "equidistant projections on WGS84; every ring vertex lies within 0.5 % of its distance.",
          request_body=BUFFER_BODY,
          responses={200: ("A FeatureCollection, one ring per distance",
                           {"$ref": "#/components/schemas/FeatureCollection"}, "application/geo+json")})
def analysis_buffer(*, body: Any) -> Any:
    t0 = time.perf_counter()
    b = body_keys(body, ("geometry", "distances_m", "segments"))
    geom = parse_geojson_geometry(b.get("geometry"), field="geometry") if b.get("geometry") is not None else None
    if geom is None:
        raise ParameterError(field="geometry", value=None, allowed="a GeoJSON geometry", code="missing_parameter")
    geom, notes = check_geometry(geom, service_area=_service_area(), field="geometry")
    segments = _number(b, "segments", default=128, lo=8, hi=1024, lo_open=False, integer=True)
    frame = geodesic.rings(geom, distances_m=b.get("distances_m"), segments=segments)
    feats = [{"type": "Feature", "id": i,
              "geometry": mapping(g),
              "properties": {"ring": i, "distance_m": float(d), "inner_distance_m": float(di),
                             "area_m2": round(float(a), 1)}}
             for i, (d, di, a, g) in enumerate(zip(frame["distance_m"], frame["inner_distance_m"],
                                                   frame["area_m2"], frame.geometry, strict=True))]
    return json_response({"type": "FeatureCollection", "features": feats, "notes": notes,
                          "source_area_m2": round(float(geodesic.area_m2(geom)), 1), "timing_ms": _ms(t0)},
                         mimetype="application/geo+json")


# ------------------------------------------------------------------------------------------------ 2. nearest

NEAREST_PROPS = {"id": {"type": "integer"}, "external_id": {"type": ["string", "null"]},
                 "name": {"type": ["string", "null"]}, "kind": {"type": "string"}, "status": {"type": "string"},
                 "quantity": {"type": "integer"}, "rank": {"type": "integer", "minimum": 1},
                 "distance_m": {"type": "number", "description": "geodesic, WGS84, metres"},
                 "bearing_deg": {"type": ["number", "null"], "description": "from the point, clockwise from north"}}


def _nearest_feature(r: Mapping[str, Any], rank: int) -> dict[str, Any]:
    return {"type": "Feature", "id": r["id"], "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            "properties": {"id": r["id"], "external_id": r["external_id"], "name": r["name"], "kind": r["kind"],
                           "status": r["status"], "quantity": r["quantity"], "unit": r["unit"], "rank": rank,
                           "distance_m": _r(r["distance_m"], 2), "bearing_deg": _r(r["bearing_deg"], 2)}}


@endpoint("/analysis/nearest", "GET", tags=("analysis",), operation_id="analysis_nearest",
          summary="The k nearest resources to a point, by true geodesic distance",
          description="PostGIS KNN finds candidates; the order is decided by geodesic distance on WGS84 and the "
                      "candidate set is provably complete (see layers.read.analysis).",
          parameters=[
              query("lon", {"type": "number", "minimum": -180, "maximum": 180}, "longitude, degrees", required=True),
              query("lat", {"type": "number", "minimum": -90, "maximum": 90}, "latitude, degrees", required=True),
              query("k", {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 3}),
              query("kind", {"type": "array", "items": {"type": "string", "enum": RESOURCE_KINDS}},
                    "resource kinds (comma-separated); default every kind"),
              query("status", {"type": "string", "enum": [*RESOURCE_STATUS, "any"], "default": "available"}),
          ],
          responses={200: ("Features nearest first", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def analysis_nearest(*, lon: float, lat: float, k: int, kind: list[str] | None, status: str) -> Any:
    t0 = time.perf_counter()
    check_geometry(Point(lon, lat), service_area=_service_area(), field="lon,lat")
    with db_read() as conn:  # one or two KNN statements: no transaction round trips
        rows = store.nearest_resources(conn, lon, lat, k=k, kinds=kind, status=None if status == "any" else status)
    feats = [_nearest_feature(r, i + 1) for i, r in enumerate(rows)]
    return json_response({"type": "FeatureCollection", "features": feats, "numberReturned": len(feats),
                          "query": {"lon": lon, "lat": lat, "k": k, "kind": kind, "status": status},
                          "timing_ms": _ms(t0)}, mimetype="application/geo+json")


NEAREST_BATCH_BODY = {
    "type": "object", "required": ["points"], "additionalProperties": False,
    "properties": {
        "points": {"description": f"[[lon, lat], ...] (up to {MAX_BATCH_POINTS}) or a FeatureCollection of Points",
                   "oneOf": [{"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                             {"$ref": "#/components/schemas/FeatureCollection"}]},
        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 3},
        "kind": {"type": "array", "items": {"type": "string", "enum": RESOURCE_KINDS}},
        "status": {"type": "string", "enum": [*RESOURCE_STATUS, "any"], "default": "available"},
        "details": {"type": "boolean", "default": True,
                    "description": "include `resources` (id, name, kind ... of every resource referenced)"},
    },
}


@endpoint("/analysis/nearest", "POST", tags=("analysis",), operation_id="analysis_nearest_batch",
          summary="The k nearest resources of many points (up to 100,000 per request)",
          description="Columns per point (row i is points[i]): `resource_id` (-1 when fewer than k exist), "
                      "`distance_m` and `bearing_deg`, nearest first; `resources` holds the details of every "
                      "resource referenced (unless `details: false`).",
          request_body=NEAREST_BATCH_BODY,
          responses={200: ("Nearest resources per point, as columns", {"type": "object"})})
def analysis_nearest_batch(*, body: Any) -> Any:
    t0 = time.perf_counter()
    b = body_keys(body, ("points", "k", "kind", "status", "details"))
    details = b.get("details", True)
    if not isinstance(details, bool):
        raise ParameterError(field="details", value=details, allowed="true or false")
    k = _number(b, "k", default=3, lo=1, hi=MAX_K, lo_open=False, integer=True)
    kinds = _keys(b, "kind", RESOURCE_KINDS)
    status = b.get("status", "available")
    if status not in [*RESOURCE_STATUS, "any"]:
        raise ParameterError(field="status", value=status, allowed=[*RESOURCE_STATUS, "any"])
    lon, lat = check_points(b.get("points"))
    t_parse = _ms(t0)
    t1 = time.perf_counter()
    with db_engine().connect() as conn:
        ids, dist, bear, cand = store.nearest_resources_batch(conn, lon, lat, k=k, kinds=kinds,
                                                              status=None if status == "any" else status)
        t_compute = _ms(t1)
        t2 = time.perf_counter()
        used = np.unique(ids[ids >= 0])
        resources = store.resource_details(conn, used) if details else None
    t_details = _ms(t2)
    out = {"n_points": int(lon.size), "k": k, "kind": kinds, "status": status, "candidates": int(cand.size),
           "resources": resources, "resource_id": ids.tolist(),
           "distance_m": np.round(dist, 1).tolist(), "bearing_deg": np.round(bear, 1).tolist()}
    out["timing_ms"] = {"parse": t_parse, "fetch_and_compute": t_compute, "details": t_details, "total": _ms(t0)}
    return out


# ------------------------------------------------------------------------------------------------ regions


def _assign_regions(lon: np.ndarray, lat: np.ndarray, parts: Sequence[BaseGeometry]) -> np.ndarray:
    """Index of the part containing each cell centre; centres in no part go to the nearest part; -1 if none."""
    code = np.full(lon.size, -1, dtype=np.int64)
    if not parts or lon.size == 0:
        return code
    for j, g in enumerate(parts):
        if g.is_empty:
            continue
        shapely.prepare(g)
        w, s, e, n = g.bounds
        free = np.flatnonzero((code < 0) & (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n))
        if free.size:
            code[free[shapely.contains_xy(g, lon[free], lat[free])]] = j
    rest = np.flatnonzero(code < 0)
    if rest.size:
        pts = shapely.points(lon[rest], lat[rest])
        pi, gi = shapely.STRtree(list(parts)).query_nearest(pts, all_matches=True)
        best = np.full(rest.size, len(parts), dtype=np.int64)
        np.minimum.at(best, pi, gi)            # equally near parts: the first one, as argmin would pick
        code[rest] = best
    return code


def _by_region(conn: Any, zone: BaseGeometry, lon: np.ndarray, lat: np.ndarray, values: Mapping[str, np.ndarray]
               ) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Sum ``values`` (per cell) by county and prefecture; the parts always add up to the totals."""
    counties = store.regions_in_zone(conn, zone, level="county")
    code = _assign_regions(lon, lat, [c["part"] for c in counties])
    names = store.region_names(conn, [c["parent_adcode"] for c in counties if c["parent_adcode"]])
    county_rows: list[dict[str, Any]] = []
    pref: dict[str | None, dict[str, Any]] = {}
    for j, c in enumerate(counties + [None]):  # type: ignore[operator]
        sel = code == (j if c is not None else -1)
        if c is None and not sel.any():
            continue
        sums = {k: float(v[sel].sum()) for k, v in values.items()}
        row = {"adcode": c["adcode"] if c else None, "name": c["name"] if c else t("analysis.region.unassigned"),
               "name_en": c["name_en"] if c else None, "parent_adcode": c["parent_adcode"] if c else None,
               "cells": int(sel.sum()), **sums}
        county_rows.append(row)
        p = row["parent_adcode"]
        agg = pref.setdefault(p, {"adcode": p, "name": (names.get(p or "", {}).get("name") if p else None)
                                  or t("analysis.region.unassigned"),
                                  "name_en": names.get(p or "", {}).get("name_en"), "cells": 0,
                                  **{k: 0.0 for k in values}})
        agg["cells"] += row["cells"]
        for k in values:
            agg[k] += sums[k]
    return code, counties, {"county": county_rows, "prefecture": sorted(pref.values(),
                                                                        key=lambda r: r["adcode"] or "~")}


def _zone_cells(zone: BaseGeometry, res: int) -> tuple[np.ndarray, np.ndarray]:
    from geoops import h3cells

    return h3cells.zone_weights(zone, res=res)  # type: ignore[attr-defined,no-any-return]


def _cell_centres(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from geoops import h3cells

    return h3cells.cell_centres(cells)  # type: ignore[attr-defined,no-any-return]


def _check_res(value: Any, field: str = "res") -> int:
    lo, hi = RES_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ParameterError(field=field, value=value, allowed=f"an integer H3 resolution in {lo}..{hi}",
                             code="invalid_resolution")
    return value


# ------------------------------------------------------------------------------------------------ 3. impact

IMPACT_BODY = {
    "type": "object", "required": ["geometry"], "additionalProperties": False,
    "properties": {
        "geometry": {"$ref": ZONE_REF},
        "res": {"type": "integer", "minimum": RES_RANGE[0], "maximum": RES_RANGE[1], "default": DEFAULT_RES},
        "shelter_distance_m": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SHELTER_DISTANCE_M,
                               "default": 5000},
    },
    "example": {"geometry": {"center": [111.75, 40.84], "radius_m": 5000}, "res": 8, "shelter_distance_m": 5000},
}


def impact(conn: Any, zone: BaseGeometry, *, res: int = DEFAULT_RES, shelter_distance_m: float = 5000.0
           ) -> dict[str, Any]:
    """The impact card of a zone (see ``docs/api.md``); ``conn`` is a Connection or Session."""
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    src = store.population_source(conn, res=res)
    cells, frac = _zone_cells(zone, res)
    timing["cells"] = _ms(t0)
    t1 = time.perf_counter()
    pop = store.population_of_cells(conn, cells, res=res, source=src["source"])
    weighted = pop * frac
    timing["population"] = _ms(t1)
    t1 = time.perf_counter()
    keep = weighted > 0
    lon, lat = _cell_centres(cells[keep]) if keep.any() else (np.zeros(0), np.zeros(0))
    _, _, by_region = _by_region(conn, zone, lon, lat, {"population": weighted[keep]})
    for level in by_region.values():
        for row in level:
            row["population"] = round(row["population"], 1)
    timing["regions"] = _ms(t1)
    t1 = time.perf_counter()
    targets = store.targets_in_zone(conn, zone)
    by_kind: dict[str, dict[str, int]] = {}
    for tg in targets:
        k = by_kind.setdefault(tg["kind"], {"count": 0, "occupants": 0})
        k["count"] += 1
        k["occupants"] += int(tg["occupants"])
    shelters = store.shelters_near_zone(conn, zone, distance_m=shelter_distance_m)
    timing["features"] = _ms(t1)
    t1 = time.perf_counter()
    centre = zone.centroid if not zone.is_empty else zone.representative_point()
    nearest = {}
    per_kind = store.nearest_resource_per_kind(conn, centre.x, centre.y, kinds=RESOURCE_KINDS, status="available")
    for kind in RESOURCE_KINDS:
        r = per_kind[kind]
        nearest[kind] = ({"id": r["id"], "external_id": r["external_id"], "name": r["name"],
                          "quantity": r["quantity"], "unit": r["unit"], "lon": r["lon"], "lat": r["lat"],
                          "distance_m": _r(r["distance_m"], 1), "bearing_deg": _r(r["bearing_deg"], 1)}
                         if r is not None else None)
    timing["nearest"] = _ms(t1)

    def shelter_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"count": len(items), "capacity": sum(s["capacity"] for s in items),
                "occupancy": sum(s["occupancy"] for s in items), "free": sum(s["free"] for s in items),
                "items": [{k: s[k] for k in ("id", "external_id", "name", "kind", "status", "capacity", "occupancy",
                                             "free", "lon", "lat")} | {"distance_m": _r(s["distance_m"], 1)}
                          for s in items]}

    timing["total"] = _ms(t0)
    return {
        "population": round(float(weighted.sum()), 1),
        "containment": "area_weighted",
        "containment_note": t("analysis.containment.area_weighted"),
        "res": res,
        "cells": int((frac > 0).sum()),
        "cells_populated": int(keep.sum()),
        "zone_area_m2": round(float(geodesic.area_m2(zone)), 1),
        "by_region": by_region,
        "protection_targets": {"count": len(targets), "occupants": sum(int(x["occupants"]) for x in targets),
                               "by_kind": by_kind, "items": targets},
        "shelters": {"distance_m": shelter_distance_m,
                     "inside": shelter_summary([s for s in shelters if s["inside"]]),
                     "nearby": shelter_summary([s for s in shelters if not s["inside"]])},
        "nearest_resources": {"from": [round(centre.x, 6), round(centre.y, 6)], "status": "available",
                              "by_kind": nearest},
        "population_source": {k: src[k] for k in ("source", "res", "vintage", "modelled", "description")},
        "timing_ms": timing,
    }


@endpoint("/analysis/impact", "POST", tags=("analysis",), operation_id="analysis_impact",
          summary="Impact card of a zone: population (area-weighted over H3 cells) by county and prefecture, "
                  "protection targets, shelters inside and nearby, nearest available resource of each kind",
          request_body=IMPACT_BODY, responses={200: ("The impact card", {"type": "object"})})
def analysis_impact(*, body: Any) -> Any:
    b = body_keys(body, ("geometry", "res", "shelter_distance_m"))
    res = _check_res(b.get("res", DEFAULT_RES))
    dist = _number(b, "shelter_distance_m", default=5000.0, lo=0.0, hi=MAX_SHELTER_DISTANCE_M)
    zone, notes, _ = parse_zone(b.get("geometry"), field="geometry")
    with db_engine().connect() as conn:
        out = impact(conn, zone, res=res, shelter_distance_m=dist)
    out["notes"] = notes
    return out


# ------------------------------------------------------------------------------------------------ 4. coverage

COVERAGE_BODY = {
    "type": "object", "required": ["scope"], "additionalProperties": False,
    "properties": {
        "scope": {"oneOf": [{"$ref": ZONE_REF}, {"type": "object", "required": ["adcode"],
                                                 "properties": {"adcode": {"type": "string"}}}]},
        "max_distance_m": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SHELTER_DISTANCE_M,
                           "default": 5000},
        "kinds": {"type": "array", "items": {"type": "string", "enum": SHELTER_KINDS}},
        "candidates": {"type": "string", "enum": ["closed", "none"], "default": "closed"},
        "res": {"type": "integer", "minimum": RES_RANGE[0], "maximum": RES_RANGE[1], "default": DEFAULT_RES},
        "top": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
    },
    "example": {"scope": {"adcode": "150200"}, "max_distance_m": 5000, "candidates": "closed"},
}


def shelter_coverage(conn: Any, scope: BaseGeometry, *, max_distance_m: float = 5000.0,
                     kinds: list[str] | None = None, candidates: str = "closed", res: int = DEFAULT_RES,
                     top: int = 10) -> dict[str, Any]:
    """Shelter coverage of the population in ``scope`` (see ``docs/api.md``)."""
    from geoops import coverage

    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    src = store.population_source(conn, res=res)
    cells, frac = _zone_cells(scope, res)
    pop = store.population_of_cells(conn, cells, res=res, source=src["source"]) * frac
    keep = pop > 0
    cells, pop = cells[keep], pop[keep]
    lon, lat = _cell_centres(cells) if cells.size else (np.zeros(0), np.zeros(0))
    timing["demand"] = _ms(t0)
    t1 = time.perf_counter()
    shelters = store.shelters_for_coverage(conn, scope, max_distance_m=max_distance_m, kinds=kinds)
    open_ = [s for s in shelters if s["status"] != "closed"]
    closed = [s for s in shelters if s["status"] == "closed"]
    timing["shelters"] = _ms(t1)
    t1 = time.perf_counter()
    result = coverage.assign(cells, lon, lat, pop, [s["id"] for s in open_], [s["lon"] for s in open_],
                             [s["lat"] for s in open_], [float(s["free"]) for s in open_],
                             max_distance_m=max_distance_m)
    timing["assign"] = _ms(t1)
    t1 = time.perf_counter()
    gaps: list[dict[str, Any]] = []
    if candidates == "closed" and closed:
        by_id = {s["id"]: s for s in closed}
        ranking = coverage.gap_ranking(result, [s["id"] for s in closed], [s["lon"] for s in closed],
                                       [s["lat"] for s in closed], [float(s["capacity"]) for s in closed], top=top)
        for row in ranking.to_dict("records"):
            s = by_id[row["candidate"]]
            gaps.append({"rank": int(row["rank"]), "shelter_id": s["id"], "external_id": s["external_id"],
                         "name": s["name"], "kind": s["kind"], "lon": s["lon"], "lat": s["lat"],
                         "capacity": s["capacity"], "added_covered": round(float(row["added_covered"]), 1),
                         "covered_after": round(float(row["covered_after"]), 1),
                         "uncovered_in_reach": round(float(row["uncovered_in_reach"]), 1)})
    timing["gaps"] = _ms(t1)
    t1 = time.perf_counter()
    c = result.cells
    _, _, by_region = _by_region(conn, scope, lon, lat, {"population": c["population"].to_numpy(),
                                                         "covered": c["covered"].to_numpy(),
                                                         "uncovered": c["uncovered"].to_numpy()})
    for level in by_region.values():
        for row in level:
            for k in ("population", "covered", "uncovered"):
                row[k] = round(row[k], 1)
            row["coverage_ratio"] = round(row["covered"] / row["population"], 4) if row["population"] else None
    timing["regions"] = _ms(t1)
    sh = result.shelters.set_index("shelter")
    shelter_rows = []
    for s in open_:
        r = sh.loc[s["id"]]
        shelter_rows.append({k: s[k] for k in ("id", "external_id", "name", "kind", "status", "capacity", "occupancy",
                                               "free", "lon", "lat")}
                            | {"load": round(float(r["load"]), 1), "spare": round(float(r["spare"]), 1),
                               "load_ratio": _r(float(r["load_ratio"]), 4), "cells_served": int(r["n_cells_served"])})
    totals = {k: (round(float(v), 4 if k.endswith("ratio") else 1) if isinstance(v, (float, np.floating)) else v)
              for k, v in result.totals.items()}
    timing["total"] = _ms(t0)
    return {
        "max_distance_m": max_distance_m, "res": res, "kinds": kinds, "candidates": candidates,
        "totals": totals,
        "cells": {"h3": [format(int(x), "x") for x in cells.tolist()],
                  "population": np.round(c["population"].to_numpy(), 2).tolist(),
                  "covered": np.round(c["covered"].to_numpy(), 2).tolist(),
                  "uncovered": np.round(c["uncovered"].to_numpy(), 2).tolist()},
        "by_region": by_region,
        "shelters": shelter_rows,
        "gaps": gaps,
        "population_source": {k: src[k] for k in ("source", "res", "vintage", "modelled")},
        "timing_ms": timing,
    }


@endpoint("/analysis/shelter-coverage", "POST", tags=("analysis",), operation_id="analysis_shelter_coverage",
          summary="Shelter coverage: who has a shelter place within reach, load per shelter, which closed shelter "
                  "would close most of the gap",
          request_body=COVERAGE_BODY, responses={200: ("Coverage per cell, region and shelter", {"type": "object"})})
def analysis_shelter_coverage(*, body: Any) -> Any:
    b = body_keys(body, ("scope", "max_distance_m", "kinds", "candidates", "res", "top"))
    dist = _number(b, "max_distance_m", default=5000.0, lo=0.0, hi=MAX_SHELTER_DISTANCE_M)
    kinds = _keys(b, "kinds", SHELTER_KINDS)
    cand = b.get("candidates", "closed")
    if cand not in ("closed", "none"):
        raise ParameterError(field="candidates", value=cand, allowed=["closed", "none"])
    res = _check_res(b.get("res", DEFAULT_RES))
    top = _number(b, "top", default=10, lo=1, hi=100, lo_open=False, integer=True)
    scope = b.get("scope")
    notes: list[str] = []
    with db_engine().connect() as conn:
        if isinstance(scope, dict) and "adcode" in scope:
            if set(scope) != {"adcode"} or not isinstance(scope["adcode"], str):
                raise ParameterError(field="scope", value=scope, allowed='{"adcode": "6-digit code"}')
            region = store.region_geometry(conn, scope["adcode"])
            zone = region["geometry"]
            scope_info = {"adcode": region["adcode"], "name": region["name"], "level": region["level"]}
        else:
            zone, notes, _ = parse_zone(scope, field="scope")
            scope_info = {"geometry": True}
        out = shelter_coverage(conn, zone, max_distance_m=dist, kinds=kinds, candidates=cand, res=res, top=top)
    out["scope"] = scope_info
    out["notes"] = notes
    return out


# ------------------------------------------------------------------------------------------------ 5. risk

WEIGHT_PARAMS = {"w_blue": "blue", "w_yellow": "yellow", "w_orange": "orange", "w_red": "red",
                 "w_occupants": "occupants_weight", "w_vulnerability": "vulnerability"}


def risk(conn: Any, *, level: str = "county", hazard_kind: list[str] | None = None,
         weights: Mapping[str, float] | None = None, res: int = DEFAULT_RES, at: Any = None,
         cells_bbox: Sequence[float] | None = None, cell_res: int = 7) -> dict[str, Any]:
    """Regional risk from the active hazards (see ``docs/api.md``); per-cell values only when ``cells_bbox`` is given."""
    import geopandas as gpd
    import pandas as pd

    from geoops import h3cells
    from geoops import risk as grisk
    from geoops.population import cells_to_regions

    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        w = grisk.RiskWeights.from_mapping(weights)
    except InvalidParameterError as e:  # name the request's parameter (w_yellow), not the model's (yellow)
        names = {v: k for k, v in WEIGHT_PARAMS.items()}
        raise ParameterError(str(e), field=names.get(e.field or "", e.field), value=e.value, allowed=e.allowed) from e
    src = store.population_source(conn, res=res)
    hazards = store.active_hazards(conn, kinds=hazard_kind, at=at)
    cover = []
    all_cells: list[np.ndarray] = []
    for h in hazards:
        hc, hf = h3cells.zone_weights(h["geometry"], res=res)
        cover.append((h["warning_level"], hc, hf))
        all_cells.append(hc)
    cells = np.unique(np.concatenate(all_cells)) if all_cells else np.zeros(0, dtype=np.int64)
    timing["hazard_cells"] = _ms(t0)
    t1 = time.perf_counter()
    pop = store.population_of_cells(conn, cells, res=res, source=src["source"])
    occ = np.zeros(cells.size)
    if hazards:
        union = shapely.union_all([h["geometry"] for h in hazards])
        targets = store.targets_in_zone(conn, union)
        if targets:
            tc, ts = h3cells.points_to_cells([x["lon"] for x in targets], [x["lat"] for x in targets],
                                             [float(x["occupants"]) for x in targets], res=res)
            pos = np.searchsorted(cells, tc)
            ok = (pos < cells.size) & (cells[np.minimum(pos, cells.size - 1)] == tc)
            occ[pos[ok]] = ts[ok]
    frame = grisk.cell_risk(cells, pop, hazard_cover=cover, occupants=occ, weights=w)
    timing["cell_risk"] = _ms(t1)
    t1 = time.perf_counter()
    counties = store.regions_of_level(conn, level="county", within=(shapely.union_all(
        [h["geometry"] for h in hazards]).bounds if hazards else None), geometry=True) if hazards else []
    unassigned = "unassigned"
    if counties and cells.size:
        gdf = gpd.GeoDataFrame({"adcode": [c["adcode"] for c in counties]},
                               geometry=[c["geometry"] for c in counties], crs=4326)
        keys = cells_to_regions(cells, gdf)
    else:
        keys = np.full(cells.size, None, dtype=object)
    keys = np.where(pd.isna(keys), unassigned, keys).astype(object)
    parent_of = {c["adcode"]: c["parent_adcode"] or unassigned for c in counties}
    parent_of[unassigned] = unassigned
    regions = grisk.rollup(frame, keys, parent_of) if cells.size else pd.DataFrame(columns=grisk.REGION_COLUMNS)
    timing["rollup"] = _ms(t1)
    names = store.region_names(conn, [r for r in regions["region"].tolist() if r != unassigned])
    rows = []
    for r in regions[regions["level"] == level].sort_values("risk", ascending=False).to_dict("records"):
        code = r["region"]
        info = names.get(code, {})
        rows.append({"adcode": None if code == unassigned else code,
                     "name": info.get("name") or t("analysis.region.unassigned"), "name_en": info.get("name_en"),
                     "parent_adcode": None if r["parent"] in (None, unassigned) else r["parent"],
                     "risk": round(float(r["risk"]), 2), "score": _r(float(r["score"]), 6),
                     "components": {"intensity": _r(float(r["intensity"]), 6),
                                    "vulnerability": _r(float(r["vulnerability"]), 6),
                                    "exposure": round(float(r["exposure"]), 2),
                                    "hazard_exposure": round(float(r["hazard_exposure"]), 2),
                                    "population": round(float(r["population"]), 2),
                                    "occupants": round(float(r["occupants"]), 2)},
                     "cells": int(r["n_cells"])})
    out: dict[str, Any] = {
        "level": level, "res": res, "weights": w.to_dict(), "hazard_kind": hazard_kind,
        "hazards": [{"id": h["id"], "name": h["name"], "kind": h["kind"], "warning_level": h["warning_level"],
                     "expires": h["expires"]} for h in hazards],
        "regions": rows,
        "totals": {k: round(float(frame[k].sum()), 2) for k in ("population", "occupants", "exposure",
                                                                  "hazard_exposure", "risk")},
        "population_source": {k: src[k] for k in ("source", "res", "vintage", "modelled")},
    }
    if cells_bbox is not None:
        t1 = time.perf_counter()
        lon, lat = h3cells.cell_centres(cells) if cells.size else (np.zeros(0), np.zeros(0))
        west, south, east, north = cells_bbox
        inb = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
        sub = frame[inb]
        parents = store.parent_cells(sub["cell"].to_numpy(), res=res, parent_res=cell_res)
        agg = sub.assign(parent=parents).groupby("parent", sort=True)[
            ["population", "occupants", "exposure", "hazard_exposure", "risk"]].sum()
        inten = np.where(agg["exposure"] > 0, agg["hazard_exposure"] / agg["exposure"].where(agg["exposure"] > 0, 1),
                         np.nan)
        out["cells"] = {"res": cell_res, "bbox": list(cells_bbox),
                        "h3": [format(int(x), "x") for x in agg.index.to_numpy(dtype=np.int64)],
                        "risk": np.round(agg["risk"].to_numpy(), 3).tolist(),
                        "exposure": np.round(agg["exposure"].to_numpy(), 3).tolist(),
                        "intensity": [None if math.isnan(v) else round(float(v), 6) for v in inten]}
        timing["cells"] = _ms(t1)
    timing["total"] = _ms(t0)
    out["timing_ms"] = timing
    return out


@endpoint("/analysis/risk", "GET", tags=("analysis",), operation_id="analysis_risk",
          summary="Regional risk: hazard intensity x exposure x vulnerability per H3 cell, by county or prefecture",
          description="Weights are adjustable per request (w_*); per-cell values (aggregated to `cell_res`) only "
                      "with `cells=true` and a `bbox`.",
          parameters=[
              query("level", {"type": "string", "enum": ["county", "prefecture"], "default": "county"}),
              query("hazard_kind", {"type": "array", "items": {"type": "string", "enum": HAZARD_KINDS}},
                    "only these hazard kinds (comma-separated)"),
              *[query(p, {"type": "number", "minimum": 0, "maximum": 1 if p in ("w_blue", "w_yellow", "w_orange",
                                                                                 "w_red") else 10},
                      f"weight `{f}` of the risk model") for p, f in WEIGHT_PARAMS.items()],
              query("res", {"type": "integer", "minimum": RES_RANGE[0], "maximum": RES_RANGE[1],
                            "default": DEFAULT_RES}, "H3 resolution of the analysis"),
              query("cells", {"type": "boolean", "default": False}, "also return per-cell values (needs bbox)"),
              query("bbox", {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                    "west,south,east,north of the per-cell values"),
              query("cell_res", {"type": "integer", "minimum": 5, "maximum": 8, "default": 7},
                    "resolution of the per-cell values (res-8 cells summed to their parents)"),
              query("at", {"type": "string", "format": "date-time"}, "hazards in force at this time (default now)"),
          ],
          responses={200: ("Risk per region, weights, optional cells", {"type": "object"})})
def analysis_risk(*, level: str, hazard_kind: list[str] | None, res: int, cells: bool,
                  bbox: list[float] | None, cell_res: int, at: str | None, **weights: float | None) -> Any:
    from datetime import datetime

    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise ParameterError(field="at", value=at, allowed="an ISO 8601 date-time") from None
        if when.tzinfo is None:
            raise ParameterError(field="at", value=at, allowed="an ISO 8601 date-time with a UTC offset")
    if cells and bbox is None:
        raise ParameterError(field="bbox", value=None, allowed="west,south,east,north (required with cells=true)",
                             code="missing_parameter")
    if bbox is not None:
        w_, s_, e_, n_ = bbox
        if not (w_ < e_ and s_ < n_):
            raise ParameterError(field="bbox", value=bbox, allowed="west,south,east,north with west<east, south<north")
    if cell_res > res:
        raise ParameterError(field="cell_res", value=cell_res, allowed=f"an integer in 5..{min(res, 8)} (<= res)")
    wmap = {WEIGHT_PARAMS[k]: v for k, v in weights.items() if v is not None}
    with db_engine().connect() as conn:
        return risk(conn, level=level, hazard_kind=hazard_kind, weights=wmap, res=res, at=when,
                    cells_bbox=bbox if cells else None, cell_res=cell_res)
