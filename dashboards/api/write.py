"""Write endpoints for feeds and other systems: GeoJSON features in, status changes, soft deletes, CAP 1.2 warnings.

Public (HTTP): ``POST /api/v1/layers/<layer>``, ``PATCH /api/v1/layers/<layer>/<id>``,
``DELETE /api/v1/layers/<layer>/<id>``, ``POST /api/v1/cap``. The views call :mod:`layers.ingest.writes` and
:mod:`layers.ingest.cap`; each request is one transaction, and a rejected request writes nothing (422 naming every bad
item's index in ``features`` as ``row``, and its field; a body that is not GeoJSON features is refused with 422 as
well). The acting user (history, ``updated_by``) is :func:`dashboards.context.acting_user` (the signed-in user or
``token:<name>``), else ``api``.
"""

from __future__ import annotations

from typing import Any

from flask import request

from dashboards.api.openapi import STORE_CHECKED, endpoint, query, register_schema
from dashboards.context import acting_user, db_engine
from dashboards.errors import ParameterError
from layers.ingest import cap, writes

_ANONYMOUS = ("anonymous", "system", "")


def _user() -> str:
    """The name the history records for this request (the principal; ``api`` if there is none)."""
    name = acting_user()
    return "api" if name in _ANONYMOUS else name


WRITE_RESULT_REF = register_schema("WriteResult", {
    "type": "object",
    "required": ["layer", "source", "inserted", "updated", "unchanged", "ids"],
    "properties": {
        "layer": {"type": "string"}, "source": {"type": "string"},
        "inserted": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
        "ids": {"type": "array", "items": {"type": "integer"}, "description": "stored id of each item, in order"},
        "external_ids": {"type": "array", "items": {"type": "string"}},
        "notes": {"type": "array", "items": {"type": "string"}, "description": "repairs and mapping decisions"},
    },
})
CAP_RESULT_REF = register_schema("CapResult", {
    "type": "object",
    "required": ["identifier", "sender", "msg_type", "hazard_ids"],
    "properties": {
        "identifier": {"type": "string"}, "sender": {"type": "string"},
        "msg_type": {"type": "string", "enum": ["Alert", "Update", "Cancel", "Ack", "Error"]},
        "inserted": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
        "hazard_ids": {"type": "array", "items": {"type": "integer"}},
        "superseded": {"type": "array", "items": {"type": "integer"},
                       "description": "hazards of the referenced alerts taken off the live picture (Update)"},
        "cancelled": {"type": "array", "items": {"type": "integer"}},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
})


@endpoint(
    "/layers/<layer>", "POST", tags=("layers", "feeds"), operation_id="write_features",
    summary="Create or update features from a GeoJSON Feature or FeatureCollection (by source and external_id)",
    description="Validated like a file import (vocabularies, integers, times, geometry type and validity, service "
                "area). The item's `id` (or `external_id` property) is its key within `source`; without one, a hash "
                "of geometry and name is, so re-sending never duplicates. One transaction: any bad item rejects the "
                "request with 422 listing each problem (`row` = index in `features`, `field`), nothing written.",
    parameters=[query("source", {"type": "string", "minLength": 1, "maxLength": 64, "default": "api"},
                      "the feed's name: with the item id, the upsert key")],
    request_body={"oneOf": [{"$ref": "#/components/schemas/Feature"},
                            {"$ref": "#/components/schemas/FeatureCollection"}], **STORE_CHECKED},
    responses={200: ("What was written", {"$ref": WRITE_RESULT_REF})},
)
def write_features(layer: str, *, source: str, body: Any) -> dict[str, Any]:
    with db_engine().begin() as conn:
        r = writes.write_features(conn, layer, body, source=source, user=_user())
    return {"layer": r.layer, "source": r.source, "inserted": r.inserted, "updated": r.updated,
            "unchanged": r.unchanged, "ids": r.ids, "external_ids": r.external_ids, "notes": r.notes}


@endpoint(
    "/layers/<layer>/<int:feature_id>", "PATCH", tags=("layers", "feeds"), operation_id="patch_feature",
    summary="Change a feature's status or counts (resource deployed/available, shelter occupancy, incident status), "
            "or move a resource (its position from a vehicle location feed)",
    description="Body: a JSON object of columns to change; which columns each layer allows is listed in the 422 "
                "answer to any other. Values as in imports (`deployed` or `已出动`). `properties` is merged. "
                "A resource's `geometry` (a GeoJSON Point in the service area) moves it.",
    request_body={"type": "object", **STORE_CHECKED},
    responses={200: ("The columns that changed", {"type": "object", "properties": {
        "id": {"type": "integer"}, "layer": {"type": "string"}, "changed": {"type": "object"}}})},
)
def patch_feature(layer: str, feature_id: int, *, body: Any) -> dict[str, Any]:
    with db_engine().begin() as conn:
        return writes.patch_feature(conn, layer, feature_id, body, user=_user())


@endpoint(
    "/layers/<layer>/<int:feature_id>", "DELETE", tags=("layers", "feeds"), operation_id="delete_feature",
    summary="Soft-delete a feature (it leaves the live picture; the row and its history stay)",
    responses={200: ("Deleted (or already deleted)", {"type": "object", "properties": {
        "id": {"type": "integer"}, "layer": {"type": "string"}, "deleted_at": {"type": "string", "format": "date-time"},
        "already_deleted": {"type": "boolean"}}})},
)
def delete_feature(layer: str, feature_id: int) -> dict[str, Any]:
    with db_engine().begin() as conn:
        return writes.delete_feature(conn, layer, feature_id, user=_user())


@endpoint(
    "/cap", "POST", tags=("feeds",), operation_id="post_cap",
    summary="Ingest one CAP 1.2 alert (XML body): each info/area becomes a hazard; Update and Cancel act on references",
    description="Body: the XML of one `<alert>` (Content-Type application/cap+xml, application/xml or text/xml), "
                "validated against the official OASIS CAP 1.2 schema. Polygons are `lat,lon` (latitude first), "
                "circles `lat,lon radius_km`, geocodes China's administrative codes (6 or 12 digits). Malformed XML, "
                "schema errors, unknown geocodes and bad areas answer 422 naming the element; nothing is written.",
    responses={200: ("What the message did", {"$ref": CAP_RESULT_REF})},
)
def post_cap() -> dict[str, Any]:
    data = request.get_data(cache=False)
    if not data:
        raise ParameterError(field="body", value=None, allowed="the XML of one CAP 1.2 <alert>", code="invalid_body")
    with db_engine().begin() as conn:
        r = cap.ingest_cap(conn, data, file="request body", user=_user())
    return {"identifier": r.identifier, "sender": r.sender, "msg_type": r.msg_type, "inserted": r.inserted,
            "updated": r.updated, "unchanged": r.unchanged, "hazard_ids": r.hazard_ids, "superseded": r.superseded,
            "cancelled": r.cancelled, "notes": r.notes}
