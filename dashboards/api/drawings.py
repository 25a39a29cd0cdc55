"""Drawing endpoints: the analysts' impact zones and annotations (saved, edited, soft-deleted, kept in history).

Public (HTTP, under ``/api/v1``): ``GET|POST /impact-zones``, ``GET|POST /annotations``,
``GET|PATCH|DELETE /annotations/<id>``. Python: :func:`zone_feature`, :func:`annotation_feature`.

Views take the body checked against its schema and call :mod:`dashboards.services.drawings` or
:mod:`layers.ingest.drawings` inside one transaction (``layers.store.db.session_scope``) with the acting user
recorded (:func:`dashboards.context.acting_user`: username or ``token:<name>``). Fields the store checks as data
(kind, symbol, label, colour) answer 422 as the store does; a malformed request 400.
"""

from __future__ import annotations

from typing import Any

from dashboards.api.openapi import STORE_CHECKED, endpoint, register_schema
from dashboards.context import acting_user, db_engine, settings
from dashboards.errors import json_response
from dashboards.services import drawings as zones_service
from layers.ingest import drawings
from layers.store import vocab
from layers.store.db import session_scope

ZONE_KINDS = list(vocab.keys("zone_kind"))
SYMBOLS = list(vocab.keys("annotation_symbol"))


def _user() -> str:
    return acting_user()[:64]


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


register_schema("ImpactZoneInput", {
    "type": "object", "required": ["geometry"], "additionalProperties": False,
    "properties": {
        "geometry": {"oneOf": [{"$ref": "#/components/schemas/Geometry"}, {"$ref": "#/components/schemas/Circle"}],
                     "description": "a (Multi)Polygon, or a geodesic circle {center: [lon, lat], radius_m}"},
        "kind": {"type": "string", "enum": ZONE_KINDS, "default": "drawn", **STORE_CHECKED},
        "name": {"type": ["string", "null"], "maxLength": drawings.MAX_LABEL_CHARS, **STORE_CHECKED},
        "status": {"type": "string", "enum": list(vocab.keys("zone_status")), "default": "active", **STORE_CHECKED},
        "properties": {"type": "object", "description": "e.g. distance_m of a ring"},
    },
})


@endpoint("/impact-zones", "GET", tags=("drawings",), operation_id="list_impact_zones",
          summary="Live (not deleted) impact zones, newest first",
          responses={200: ("A FeatureCollection", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def list_impact_zones() -> Any:
    with session_scope(db_engine(), user=_user()) as s:
        zones = drawings.list_zones(s)
    return json_response({"type": "FeatureCollection", "features": [zone_feature(z) for z in zones]},
                         mimetype="application/geo+json")


@endpoint("/impact-zones", "POST", tags=("drawings",), operation_id="create_impact_zones",
          summary="Save one impact zone, or several in one transaction ({\"zones\": [...]})",
          request_body={"oneOf": [{"$ref": "#/components/schemas/ImpactZoneInput"},
                                  {"type": "object", "required": ["zones"], "additionalProperties": False,
                                   "properties": {"zones": {"type": "array", "minItems": 1, "items": {
                                       "$ref": "#/components/schemas/ImpactZoneInput"}}}}],
                        "example": {"geometry": {"center": [111.75, 40.84], "radius_m": 3000}, "name": "leak"}},
          responses={201: ("The saved zones", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def create_impact_zones(*, body: dict[str, Any]) -> Any:
    items = body["zones"] if "zones" in body else [body]
    saved = zones_service.save_zones(db_engine(), items, user=_user(), service_area=settings().service_area)
    return json_response({"type": "FeatureCollection", "features": [zone_feature(z) for z in saved]}, 201,
                         mimetype="application/geo+json")


ANNOTATION_FIELDS = {
    "geometry": {"$ref": "#/components/schemas/Geometry"},
    "symbol": {"type": "string", "enum": SYMBOLS, **STORE_CHECKED},
    "label": {"type": ["string", "null"], "maxLength": drawings.MAX_LABEL_CHARS, **STORE_CHECKED},
    "color": {"type": "string", "pattern": drawings.COLOR_PATTERN.pattern, **STORE_CHECKED},
}
ANNOTATION_BODY = {
    "type": "object", "additionalProperties": False, "required": ["geometry", "symbol"],
    "properties": {**ANNOTATION_FIELDS,
                   "color": {**ANNOTATION_FIELDS["color"], "default": drawings.DEFAULT_COLOR},
                   "properties": {"type": "object"}},
    "example": {"geometry": {"type": "Point", "coordinates": [111.75, 40.84]}, "symbol": "command_post",
                "label": "前方指挥部", "color": "#1e88e5"},
}


@endpoint("/annotations", "GET", tags=("drawings",), operation_id="list_annotations",
          summary="Live (not deleted) annotations, newest first",
          responses={200: ("A FeatureCollection", {"$ref": "#/components/schemas/FeatureCollection"},
                           "application/geo+json")})
def list_annotations() -> Any:
    with session_scope(db_engine(), user=_user()) as s:
        items = drawings.list_annotations(s)
    return json_response({"type": "FeatureCollection", "features": [annotation_feature(a) for a in items]},
                         mimetype="application/geo+json")


@endpoint("/annotations", "POST", tags=("drawings",), operation_id="create_annotation",
          summary="Place an annotation: an emergency symbol, a label and a colour on a point, line or area",
          request_body=ANNOTATION_BODY,
          responses={201: ("The saved annotation", {"$ref": "#/components/schemas/Feature"},
                           "application/geo+json")})
def create_annotation(*, body: dict[str, Any]) -> Any:
    user = _user()
    with session_scope(db_engine(), user=user) as s:
        a = drawings.save_annotation(s, body["geometry"], user=user, symbol=body["symbol"], label=body.get("label"),
                                     color=body["color"], properties=body.get("properties"),
                                     service_area=settings().service_area)
    return json_response(annotation_feature(a), 201, mimetype="application/geo+json")


@endpoint("/annotations/<int:annotation_id>", "GET", tags=("drawings",), operation_id="get_annotation",
          summary="One live annotation",
          responses={200: ("The annotation", {"$ref": "#/components/schemas/Feature"}, "application/geo+json")})
def get_annotation(annotation_id: int) -> Any:
    with session_scope(db_engine(), user=_user()) as s:
        a = drawings.get_annotation(s, annotation_id)
    return json_response(annotation_feature(a), mimetype="application/geo+json")


@endpoint("/annotations/<int:annotation_id>", "PATCH", tags=("drawings",), operation_id="update_annotation",
          summary="Change the label, colour, symbol or geometry of an annotation (the old version stays in history)",
          request_body={"type": "object", "additionalProperties": False, "properties": ANNOTATION_FIELDS},
          responses={200: ("The annotation after the change", {"$ref": "#/components/schemas/Feature"},
                           "application/geo+json")})
def update_annotation(annotation_id: int, *, body: dict[str, Any]) -> Any:
    user = _user()
    with session_scope(db_engine(), user=user) as s:
        a = drawings.update_annotation(s, annotation_id, user=user, service_area=settings().service_area, **body)
    return json_response(annotation_feature(a), mimetype="application/geo+json")


@endpoint("/annotations/<int:annotation_id>", "DELETE", tags=("drawings",), operation_id="delete_annotation",
          summary="Soft-delete an annotation: it leaves the map, and stays in the history",
          responses={200: ("The annotation as deleted", {"$ref": "#/components/schemas/Feature"},
                           "application/geo+json")})
def delete_annotation(annotation_id: int) -> Any:
    user = _user()
    with session_scope(db_engine(), user=user) as s:
        a = drawings.delete_annotation(s, annotation_id, user=user)
    return json_response(annotation_feature(a), mimetype="application/geo+json")
