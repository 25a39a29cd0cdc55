"""Analysis endpoints: geodesic buffers, nearest resources, the impact card, shelter coverage, regional risk.

Public (HTTP, under ``/api/v1``): ``POST /analysis/buffer``, ``GET|POST /analysis/nearest``,
``POST /analysis/impact``, ``POST /analysis/shelter-coverage``, ``GET /analysis/risk``.

Each view is parse -> service -> JSON: the body is checked against its schema (declared here, also the OpenAPI
document's) before the view runs, the view turns it into arguments, and :mod:`dashboards.services` computes.
Units: metres, square metres, persons; coordinates lon/lat EPSG:4326. See ``docs/api.md`` for what every number
means.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

import dashboards.api.columnar as columnar
from dashboards.api.openapi import endpoint, query, register_schema
from dashboards.context import db_engine, db_read, settings
from dashboards.errors import ParameterError, json_response
from dashboards.i18n import current_lang
from dashboards.services import buffer, coverage, nearest, risk, zones
from dashboards.services.figures import ms
from dashboards.services.impact import impact_card
from geoops import geodesic
from geoops.errors import InvalidParameterError
from geoops.risk import RiskWeights
from layers.store import vocab

MAX_RADIUS_M = geodesic.MAX_DISTANCE_M
RES_RANGE = zones.RES_RANGE
DEFAULT_RES = zones.DEFAULT_RES
RESOURCE_KINDS = list(vocab.keys("resource_kind"))
SHELTER_KINDS = list(vocab.keys("shelter_kind"))
HAZARD_KINDS = list(vocab.keys("hazard_kind"))

RES_SCHEMA = {"type": "integer", "minimum": RES_RANGE[0], "maximum": RES_RANGE[1], "default": DEFAULT_RES,
              "description": "H3 resolution", "x-error-code": "invalid_resolution"}
CIRCLE_REF = register_schema("Circle", {
    "title": "a geodesic circle {center: [lon, lat], radius_m} with radius_m in (0, 500000]",
    "type": "object", "required": ["center", "radius_m"], "additionalProperties": False,
    "properties": {"center": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                              "description": "[lon, lat], degrees"},
                   "radius_m": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RADIUS_M,
                                "description": "geodesic radius, metres"}},
})
ZONE_REF = register_schema("Zone", {
    "title": "a GeoJSON Polygon or MultiPolygon (or a Feature of one), or a geodesic circle {center, radius_m}",
    "description": "A GeoJSON Polygon / MultiPolygon (or a Feature of one), or a geodesic circle "
                   "`{\"center\": [lon, lat], \"radius_m\": r}` with r in (0, 500000] metres.",
    "oneOf": [{"$ref": "#/components/schemas/Geometry"}, {"$ref": "#/components/schemas/Feature"},
              {"$ref": CIRCLE_REF}],
})
POINT_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "description": "[lon, lat], degrees"}
#: more points than this in one request: ``too_many_points``
TOO_MANY = {"maxItems": "too_many_points"}


# ------------------------------------------------------------------------------------------------ 1. buffer

BUFFER_BODY = {
    "type": "object", "required": ["geometry", "distances_m"], "additionalProperties": False,
    "properties": {
        "geometry": {"oneOf": [{"$ref": "#/components/schemas/Geometry"}, {"$ref": "#/components/schemas/Feature"}]},
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
def analysis_buffer(*, body: dict[str, Any]) -> Any:
    t0 = time.perf_counter()
    out = buffer.ring_features(body["geometry"], body["distances_m"], service_area=settings().service_area,
                               segments=int(body["segments"]))
    out["timing_ms"] = ms(t0)
    return json_response(out, mimetype="application/geo+json")


# ------------------------------------------------------------------------------------------------ 2. nearest


@endpoint("/analysis/nearest", "GET", tags=("analysis",), operation_id="analysis_nearest",
          summary="The k nearest resources to a point, by true geodesic distance",
          description="PostGIS KNN finds candidates; the order is decided by geodesic distance on WGS84 and the "
                      "candidate set is provably complete (see layers.read.analysis).",
          parameters=[
              query("lon", {"type": "number", "minimum": -180, "maximum": 180}, "longitude, degrees", required=True),
              query("lat", {"type": "number", "minimum": -90, "maximum": 90}, "latitude, degrees", required=True),
              query("k", {"type": "integer", "minimum": 1, "maximum": nearest.MAX_K, "default": 3}),
              query("kind", {"type": "array", "items": {"type": "string", "enum": RESOURCE_KINDS}},
                    "resource kinds (comma-separated); default every kind"),
              query("status", {"type": "string", "enum": list(nearest.STATUSES), "default": "available"}),
          ],
          responses={200: ("Features nearest first", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def analysis_nearest(*, lon: float, lat: float, k: int, kind: list[str] | None, status: str) -> Any:
    t0 = time.perf_counter()
    with db_read() as conn:  # one or two KNN statements: no transaction round trips
        out = nearest.nearest(conn, lon, lat, k=k, kinds=kind, status=status, service_area=settings().service_area)
    out["timing_ms"] = ms(t0)
    return json_response(out, mimetype="application/geo+json")


NEAREST_BATCH_BODY = {
    "type": "object", "required": ["points"], "additionalProperties": False,
    "properties": {
        "points": {"description": f"[[lon, lat], ...] (up to {zones.MAX_BATCH_POINTS}) or a FeatureCollection "
                                  "of Points",
                   "oneOf": [{"type": "array", "minItems": 1, "maxItems": zones.MAX_BATCH_POINTS, "items": POINT_PAIR,
                              "x-error-code": TOO_MANY},
                             {"type": "object", "required": ["type", "features"], "properties": {
                                 "type": {"const": "FeatureCollection"},
                                 "features": {"type": "array", "minItems": 1, "maxItems": zones.MAX_BATCH_POINTS,
                                              "x-error-code": TOO_MANY, "items": {
                                                  "type": "object", "required": ["geometry"], "properties": {
                                                      "geometry": {"type": "object", "required": ["type", "coordinates"],
                                                                   "properties": {"type": {"const": "Point"},
                                                                                  "coordinates": POINT_PAIR}}}}}}}]},
        "k": {"type": "integer", "minimum": 1, "maximum": nearest.MAX_K, "default": 3},
        "kind": {"type": "array", "items": {"type": "string", "enum": RESOURCE_KINDS, "x-error-code": "unknown_kind"}},
        "status": {"type": "string", "enum": list(nearest.STATUSES), "default": "available"},
        "details": {"type": "boolean", "default": True,
                    "description": "include `resources` (id, name, kind ... of every resource referenced)"},
    },
}


def _lonlat(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """The lon and lat columns of ``[[lon, lat], ...]`` or of a FeatureCollection of Points (already validated)."""
    if isinstance(points, dict):
        points = [f["geometry"]["coordinates"] for f in points["features"]]
    try:
        xy = np.asarray(points, dtype=np.float64)
    except ValueError:  # ragged: some positions carry a height
        xy = np.asarray([p[:2] for p in points], dtype=np.float64)
    return xy[:, 0], xy[:, 1]


@endpoint("/analysis/nearest", "POST", tags=("analysis",), operation_id="analysis_nearest_batch",
          summary="The k nearest resources of many points (up to 100,000 per request)",
          description="Columns per point (row i is points[i]): `resource_id` (-1 when fewer than k exist), "
                      "`distance_m` and `bearing_deg`, nearest first; `resources` holds the details of every "
                      "resource referenced (unless `details: false`). With `Accept: "
                      f"{columnar.ARROW}` (Arrow IPC stream) or `{columnar.PARQUET}` the answer is one table, a "
                      "row per (point, rank): `point, rank, resource_id, distance_m, bearing_deg` (null where fewer "
                      "than k exist) and, with details, the resource's `external_id, name, kind, lon, lat`; the "
                      "rest of the answer is JSON in the schema metadata `sitroom`.",
          request_body=NEAREST_BATCH_BODY,
          responses={200: ("Nearest resources per point, as columns (JSON, Arrow IPC or Parquet by Accept)",
                           {"type": "object"})})
def analysis_nearest_batch(*, body: dict[str, Any]) -> Any:
    t0 = time.perf_counter()
    lon, lat = zones.check_points(*_lonlat(body["points"]), service_area=settings().service_area)
    t_parse = ms(t0)
    media = columnar.negotiated()
    with db_engine().connect() as conn:
        out = nearest.nearest_batch(conn, lon, lat, k=int(body["k"]), kinds=body.get("kind"), status=body["status"],
                                    details=body["details"], arrays=media is not None)
    out["timing_ms"] = {"parse": t_parse, **out["timing_ms"], "total": ms(t0)}
    if media is None:
        return out
    table = columnar.nearest_table(out.pop("resource_id"), out.pop("distance_m"), out.pop("bearing_deg"),
                                   out.pop("resources"))
    return columnar.table_response(table, media, out)


# ------------------------------------------------------------------------------------------------ 3. impact

IMPACT_BODY = {
    "type": "object", "required": ["geometry"], "additionalProperties": False,
    "properties": {
        "geometry": {"$ref": ZONE_REF},
        "res": RES_SCHEMA,
        "shelter_distance_m": {"type": "number", "exclusiveMinimum": 0, "maximum": zones.MAX_SHELTER_DISTANCE_M,
                               "default": 5000},
    },
    "example": {"geometry": {"center": [111.75, 40.84], "radius_m": 5000}, "res": 8, "shelter_distance_m": 5000},
}


@endpoint("/analysis/impact", "POST", tags=("analysis",), operation_id="analysis_impact",
          summary="Impact card of a zone: population (area-weighted over H3 cells) by county and prefecture, "
                  "protection targets, shelters inside and nearby, nearest available resource of each kind",
          request_body=IMPACT_BODY, responses={200: ("The impact card", {"type": "object"})})
def analysis_impact(*, body: dict[str, Any]) -> Any:
    s = settings()
    zone, notes, _ = zones.parse_zone(body["geometry"], service_area=s.service_area,
                                      max_area_km2=s.max_zone_area_km2)
    with db_engine().connect() as conn:
        out = impact_card(conn, zone, res=int(body["res"]), shelter_distance_m=float(body["shelter_distance_m"]),
                          lang=current_lang())
    out["notes"] = notes
    return out


# ------------------------------------------------------------------------------------------------ 4. coverage

COVERAGE_BODY = {
    "type": "object", "required": ["scope"], "additionalProperties": False,
    "properties": {
        "scope": {"oneOf": [{"$ref": ZONE_REF}, {
            "title": "an admin region {adcode: 6-digit code}", "type": "object", "required": ["adcode"],
            "additionalProperties": False, "properties": {"adcode": {"type": "string", "maxLength": 12}}}]},
        "max_distance_m": {"type": "number", "exclusiveMinimum": 0, "maximum": zones.MAX_SHELTER_DISTANCE_M,
                           "default": 5000},
        "kinds": {"type": "array", "items": {"type": "string", "enum": SHELTER_KINDS, "x-error-code": "unknown_kind"}},
        "candidates": {"type": "string", "enum": list(coverage.CANDIDATES), "default": "closed"},
        "res": RES_SCHEMA,
        "top": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
    },
    "example": {"scope": {"adcode": "150200"}, "max_distance_m": 5000, "candidates": "closed"},
}


@endpoint("/analysis/shelter-coverage", "POST", tags=("analysis",), operation_id="analysis_shelter_coverage",
          summary="Shelter coverage: who has a shelter place within reach, load per shelter, which closed shelter "
                  "would close most of the gap",
          description="With `Accept: " + columnar.ARROW + "` or `" + columnar.PARQUET + "` the answer is the table "
                      "of cells (`h3, population, covered, uncovered`), the rest of the answer JSON in the schema "
                      "metadata `sitroom`.",
          request_body=COVERAGE_BODY,
          responses={200: ("Coverage per cell, region and shelter (JSON, or the cells as Arrow IPC or Parquet by "
                           "Accept)", {"type": "object"})})
def analysis_shelter_coverage(*, body: dict[str, Any]) -> Any:
    s = settings()
    with db_engine().connect() as conn:
        zone, scope, notes = coverage.coverage_scope(conn, body["scope"], service_area=s.service_area,
                                                     max_area_km2=s.max_zone_area_km2)
        out = coverage.shelter_coverage(conn, zone, max_distance_m=float(body["max_distance_m"]),
                                        kinds=body.get("kinds"), candidates=body["candidates"], res=int(body["res"]),
                                        top=int(body["top"]), lang=current_lang())
    out["scope"] = scope
    out["notes"] = notes
    media = columnar.negotiated()
    if media is None:
        return out
    return columnar.table_response(pa.table(out.pop("cells")), media, out)


# ------------------------------------------------------------------------------------------------ 5. risk

#: query parameter -> weight of the model (geoops.risk.RiskWeights)
WEIGHT_PARAMS = {"w_blue": "blue", "w_yellow": "yellow", "w_orange": "orange", "w_red": "red",
                 "w_occupants": "occupants_weight", "w_vulnerability": "vulnerability"}
_LEVEL_WEIGHTS = ("w_blue", "w_yellow", "w_orange", "w_red")


@endpoint("/analysis/risk", "GET", tags=("analysis",), operation_id="analysis_risk",
          summary="Regional risk: hazard intensity x exposure x vulnerability per H3 cell, by county or prefecture",
          description="Weights are adjustable per request (w_*); per-cell values (aggregated to `cell_res`) only "
                      "with `cells=true` and a `bbox`.",
          parameters=[
              query("level", {"type": "string", "enum": list(risk.LEVELS), "default": "county"}),
              query("hazard_kind", {"type": "array", "items": {"type": "string", "enum": HAZARD_KINDS}},
                    "only these hazard kinds (comma-separated)"),
              *[query(p, {"type": "number", "minimum": 0, "maximum": 1 if p in _LEVEL_WEIGHTS else 10},
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
    model = {WEIGHT_PARAMS[k]: v for k, v in weights.items() if v is not None}
    try:
        RiskWeights.from_mapping(model)
    except InvalidParameterError as e:  # name the request's parameter (w_yellow), not the model's (yellow)
        names = {v: k for k, v in WEIGHT_PARAMS.items()}
        raise ParameterError(str(e), field=names.get(e.field or "", e.field), value=e.value, allowed=e.allowed) from e
    with db_engine().connect() as conn:
        return risk.regional_risk(conn, level=level, hazard_kind=hazard_kind, weights=model, res=res, at=when,
                                  cells_bbox=bbox if cells else None, cell_res=cell_res, lang=current_lang())
