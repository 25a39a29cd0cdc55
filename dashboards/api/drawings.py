"""Drawing endpoints: the analysts' impact zones and annotations (saved, edited, soft-deleted, kept in history).

Public (HTTP, under ``/api/v1``): ``GET|POST /impact-zones``, ``GET|POST /annotations``,
``GET|PATCH|DELETE /annotations/<id>``. Python: :func:`current_user`, :func:`zone_feature`,
:func:`annotation_feature`, :func:`create_zones`, :func:`zone_circle` (the analyst page calls these too).

Views parse the request and call :mod:`layers.ingest.drawings` inside one transaction (``layers.store.db.session_scope``) with the
user recorded; every problem is a 4xx naming the field, the value and what is allowed (``dashboards/api/errors.py``).
The user is the request's principal (:func:`dashboards.api.current_user_name`: username or ``token:<name>``).
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context

from dashboards.api import current_user_name, db_engine, settings
from dashboards.api.errors import ParameterError, json_response
from dashboards.api.openapi import body_keys, endpoint, register_schema
from geoops import geodesic
from geoops.validate import check_geometry
from layers.ingest import drawings
from layers.store import vocab
from layers.store.db import session_scope

ANONYMOUS = "anonymous"
ZONE_KINDS = list(vocab.keys("zone_kind"))
SYMBOLS = list(vocab.keys("annotation_symbol"))


def current_user() -> str:
    """Who is drawing: the signed-in user or API token of the request (:mod:`dashboards.auth`), else ``anonymous``."""
    if has_request_context():
        return current_user_name()[:64]
    return ANONYMOUS


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def zone_feature(z: dict[str, Any]) -> dict[str, Any]:
    """A saved zone (:mod:`layers.ingest.drawings` dict) as a GeoJSON Feature."""
    props = {k: _iso(z[k]) for k in ("id", "kind", "status", "name", "created_at", "updated_at", "updated_by",
                                      "deleted_at")}
    return {"type": "Feature", "id": z["id"], "geometry": z["geometry"], "properties": {**z["properties"], **props}}


def annotation_feature(a: dict[str, Any]) -> dict[str, Any]:
    """A saved annotation as a GeoJSON Feature (``symbol``, ``label``, ``color`` ... in the properties)."""
    props = {k: _iso(a[k]) for k in ("id", "symbol", "label", "color", "status", "created_at", "updated_at",
                                      "updated_by", "deleted_at")}
    return {"type": "Feature", "id": a["id"], "geometry": a["geometry"],
            "properties": {**a["properties"], **props}}


def zone_circle(center: Any, radius_m: Any, *, field: str = "geometry") -> tuple[Any, dict[str, Any]]:
    """A geodesic circle zone from ``[lon, lat]`` and a radius in metres -> (polygon, properties to store)."""
    from shapely.geometry import Point

    if (not isinstance(center, (list, tuple)) or len(center) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in center)):
        raise ParameterError(field=f"{field}.center", value=center, allowed="[lon, lat] in degrees")
    if isinstance(radius_m, bool) or not isinstance(radius_m, (int, float)) or not (
            0 < radius_m <= geodesic.MAX_DISTANCE_M):
        raise ParameterError(field=f"{field}.radius_m", value=radius_m,
                             allowed=f"a number in (0, {geodesic.MAX_DISTANCE_M:g}] metres")
    c, _ = check_geometry(Point(float(center[0]), float(center[1])),
                          service_area=tuple(settings().service_area), field=f"{field}.center")  # type: ignore
    return (geodesic.circle(c.x, c.y, radius_m=float(radius_m)),
            {"center": [c.x, c.y], "radius_m": float(radius_m)})


def create_zones(items: list[dict[str, Any]], *, user: str) -> list[dict[str, Any]]:
    """Save zones in one transaction (a ``{"center", "radius_m"}`` geometry becomes a geodesic circle, kind circle)."""
    prepared = []
    for i, item in enumerate(items):
        field = "geometry" if len(items) == 1 else f"zones[{i}].geometry"
        if not isinstance(item, dict):
            raise ParameterError(field=field.rsplit(".", 1)[0], value=item, allowed="a JSON object")
        item = dict(item)
        g = item.get("geometry")
        if isinstance(g, dict) and "center" in g and "type" not in g:
            poly, extra = zone_circle(g.get("center"), g.get("radius_m"), field=field)
            item["geometry"] = poly
            item.setdefault("kind", "circle")
            item["properties"] = {**(item.get("properties") or {}), **extra}
        prepared.append(item)
    with session_scope(db_engine(), user=user) as s:
        return drawings.save_zones(s, prepared, user=user, service_area=settings().service_area)


register_schema("ImpactZoneInput", {
    "type": "object", "required": ["geometry"], "additionalProperties": False,
    "properties": {
        "geometry": {"oneOf": [{"$ref": "#/components/schemas/Geometry"},
                               {"type": "object", "required": ["center", "radius_m"]}],
                     "description": "a (Multi)Polygon, or a geodesic circle {center: [lon, lat], radius_m}"},
        "kind": {"type": "string", "enum": ZONE_KINDS, "default": "drawn"},
        "name": {"type": ["string", "null"], "maxLength": drawings.MAX_LABEL_CHARS},
        "status": {"type": "string", "enum": list(vocab.keys("zone_status")), "default": "active"},
        "properties": {"type": "object", "description": "e.g. distance_m of a ring"},
    },
})


@endpoint("/impact-zones", "GET", tags=("drawings",), operation_id="list_impact_zones",
          summary="Live (not deleted) impact zones, newest first",
          responses={200: ("A FeatureCollection", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def list_impact_zones() -> Any:
    with session_scope(db_engine(), user=current_user()) as s:
        zones = drawings.list_zones(s)
    return json_response({"type": "FeatureCollection", "features": [zone_feature(z) for z in zones]},
                         mimetype="application/geo+json")


@endpoint("/impact-zones", "POST", tags=("drawings",), operation_id="create_impact_zones",
          summary="Save one impact zone, or several in one transaction ({\"zones\": [...]})",
          request_body={"oneOf": [{"$ref": "#/components/schemas/ImpactZoneInput"},
                                  {"type": "object", "required": ["zones"], "properties": {"zones": {
                                      "type": "array", "items": {"$ref": "#/components/schemas/ImpactZoneInput"}}}}],
                        "example": {"geometry": {"center": [111.75, 40.84], "radius_m": 3000}, "name": "leak"}},
          responses={201: ("The saved zones", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def create_impact_zones(*, body: Any) -> Any:
    if not isinstance(body, dict):
        raise ParameterError(field="body", value=type(body).__name__, allowed="a JSON object")
    if "zones" in body:
        if set(body) != {"zones"} or not isinstance(body["zones"], list) or not body["zones"]:
            raise ParameterError(field="zones", value=body.get("zones"), allowed="a non-empty list of zones")
        items = body["zones"]
    else:
        items = [body]
    saved = create_zones(items, user=current_user())
    return json_response({"type": "FeatureCollection", "features": [zone_feature(z) for z in saved]}, 201,
                         mimetype="application/geo+json")


ANNOTATION_BODY = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "geometry": {"$ref": "#/components/schemas/Geometry"},
        "symbol": {"type": "string", "enum": SYMBOLS},
        "label": {"type": ["string", "null"], "maxLength": drawings.MAX_LABEL_CHARS},
        "color": {"type": "string", "pattern": drawings.COLOR_PATTERN.pattern, "default": drawings.DEFAULT_COLOR},
        "properties": {"type": "object"},
    },
    "example": {"geometry": {"type": "Point", "coordinates": [111.75, 40.84]}, "symbol": "command_post",
                "label": "前方指挥部", "color": "#1e88e5"},
}


@endpoint("/annotations", "GET", tags=("drawings",), operation_id="list_annotations",
          summary="Live (not deleted) annotations, newest first",
          responses={200: ("A FeatureCollection", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def list_annotations() -> Any:
    with session_scope(db_engine(), user=current_user()) as s:
        items = drawings.list_annotations(s)
    return json_response({"type": "FeatureCollection", "features": [annotation_feature(a) for a in items]},
                         mimetype="application/geo+json")


@endpoint("/annotations", "POST", tags=("drawings",), operation_id="create_annotation",
          summary="Place an annotation: an emergency symbol, a label and a colour on a point, line or area",
          request_body={**ANNOTATION_BODY, "required": ["geometry", "symbol"]},
          responses={201: ("The saved annotation", {"$ref": "#/components/schemas/Feature"},
                           "application/geo+json")})
def create_annotation(*, body: Any) -> Any:
    b = body_keys(body, ("geometry", "symbol", "label", "color", "properties"))
    if b.get("geometry") is None:
        raise ParameterError(field="geometry", value=None, allowed="a GeoJSON geometry", code="missing_parameter")
    user = current_user()
    with session_scope(db_engine(), user=user) as s:
        a = drawings.save_annotation(s, b["geometry"], user=user, symbol=b.get("symbol"), label=b.get("label"),
                                     color=b.get("color", drawings.DEFAULT_COLOR), properties=b.get("properties"),
                                     service_area=settings().service_area)
    return json_response(annotation_feature(a), 201, mimetype="application/geo+json")


@endpoint("/annotations/<int:annotation_id>", "GET", tags=("drawings",), operation_id="get_annotation",
          summary="One live annotation",
          responses={200: ("The annotation", {"$ref": "#/components/schemas/Feature"}, "application/geo+json")})
def get_annotation(annotation_id: int) -> Any:
    with session_scope(db_engine(), user=current_user()) as s:
        a = drawings.get_annotation(s, annotation_id)
    return json_response(annotation_feature(a), mimetype="application/geo+json")


@endpoint("/annotations/<int:annotation_id>", "PATCH", tags=("drawings",), operation_id="update_annotation",
          summary="Change the label, colour, symbol or geometry of an annotation (the old version stays in history)",
          request_body=ANNOTATION_BODY,
          responses={200: ("The annotation after the change", {"$ref": "#/components/schemas/Feature"},
                           "application/geo+json")})
def update_annotation(annotation_id: int, *, body: Any) -> Any:
    b = body_keys(body, ("geometry", "symbol", "label", "color"))
    user = current_user()
    with session_scope(db_engine(), user=user) as s:
        a = drawings.update_annotation(s, annotation_id, user=user, service_area=settings().service_area, **b)
    return json_response(annotation_feature(a), mimetype="application/geo+json")


@endpoint("/annotations/<int:annotation_id>", "DELETE", tags=("drawings",), operation_id="delete_annotation",
          summary="Soft-delete an annotation: it leaves the map, and stays in the history",
          responses={200: ("The annotation as deleted", {"$ref": "#/components/schemas/Feature"},
                           "application/geo+json")})
def delete_annotation(annotation_id: int) -> Any:
    user = current_user()
    with session_scope(db_engine(), user=user) as s:
        a = drawings.delete_annotation(s, annotation_id, user=user)
    return json_response(annotation_feature(a), mimetype="application/geo+json")
