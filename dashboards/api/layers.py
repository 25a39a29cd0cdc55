"""Layer endpoints: the layer registry and each layer's live features as GeoJSON.

Public (HTTP): ``GET /api/v1/layers``, ``GET /api/v1/layers/<layer>``. The views call :mod:`layers.read.queries`; no SQL
here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from dashboards.api.openapi import endpoint, query, register_schema
from dashboards.context import API_PREFIX, db_engine
from dashboards.errors import ApiError, ParameterError, json_response
from dashboards.i18n import LANGUAGES, t
from layers.read import queries
from layers.store.errors import ValidationError

MAX_LIMIT = queries.MAX_LIMIT
DEFAULT_LIMIT = 1000

LAYER_REF = register_schema("Layer", {
    "type": "object",
    "required": ["name", "geometry_type", "count", "labels"],
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string", "description": "label in the request's language"},
        "labels": {"type": "object", "properties": {lang: {"type": "string"} for lang in LANGUAGES}},
        "geometry_type": {"type": "string", "enum": ["POINT", "MULTIPOLYGON", "GEOMETRY"]},
        "count": {"type": "integer", "minimum": 0, "description": "live (not soft-deleted) features"},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
    },
})
register_schema("Link", {"type": "object", "required": ["rel", "href"],
                         "properties": {"rel": {"type": "string"}, "href": {"type": "string"},
                                        "type": {"type": "string"}}})
LAYER_FEATURES_REF = register_schema("LayerFeatures", {
    "allOf": [{"$ref": "#/components/schemas/FeatureCollection"}],
    "properties": {
        "layer": {"type": "string"},
        "numberReturned": {"type": "integer", "minimum": 0},
        "next_cursor": {"type": ["integer", "null"], "description": "pass as `after` for the next page"},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
    },
})


def _labels(layer: str) -> dict[str, str]:
    return {lang: t(f"layer.{layer}", lang) for lang in LANGUAGES}


@endpoint("/layers", "GET", summary="The layer registry: name, geometry type, live feature count, labels",
          tags=("layers",), operation_id="list_layers",
          responses={200: ("Every feature layer", {"type": "object", "required": ["layers"], "properties": {
              "layers": {"type": "array", "items": {"$ref": LAYER_REF}}}})})
def list_layers() -> dict[str, Any]:
    with db_engine().connect() as conn:
        counts = queries.count_features(conn)
    return {"layers": [
        {"name": name, "title": t(f"layer.{name}"), "labels": _labels(name),
         "geometry_type": queries.geometry_type(name), "count": n,
         "links": [{"rel": "items", "href": f"{API_PREFIX}/layers/{name}", "type": "application/geo+json"}]}
        for name, n in counts.items()
    ]}


@endpoint(
    "/layers/<layer>", "GET", tags=("layers",), operation_id="layer_features",
    summary="Live features of one layer as GeoJSON, filtered and paged",
    description="Features that are not soft-deleted, ordered by id. Page with `offset`, or better with the cursor "
                "`after` (the `next_cursor` of the previous page). At most 10000 per request; big layers belong "
                "in tiles or H3 aggregates, not in one GeoJSON.",
    parameters=[
        query("bbox", {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
              "west,south,east,north in degrees (EPSG:4326): features intersecting it", example="111,40,112,41"),
        query("kind", {"type": "array", "items": {"type": "string"}}, "keep these kinds (comma-separated)"),
        query("status", {"type": "array", "items": {"type": "string"}}, "keep these statuses (comma-separated)"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
              "at most this many features"),
        query("offset", {"type": "integer", "minimum": 0, "default": 0}, "skip this many features"),
        query("after", {"type": "integer", "minimum": 0}, "cursor: only features with id > after"),
    ],
    responses={200: ("A GeoJSON FeatureCollection", {"$ref": LAYER_FEATURES_REF}, "application/geo+json")},
)
def layer_features(layer: str, *, bbox: list[float] | None, kind: list[str] | None, status: list[str] | None,
                   limit: int, offset: int, after: int | None) -> Response:
    if layer not in queries.layer_names():
        raise ApiError(f"unknown layer {layer!r}; known layers: {', '.join(queries.layer_names())}",
                       field="layer", value=layer, allowed=list(queries.layer_names()), status=404,
                       code="unknown_layer")
    try:
        if bbox is not None:
            queries.check_bbox(bbox)
        with db_engine().connect() as conn:
            fc = queries.fetch_features(conn, layer, bbox=bbox, kind=kind, status=status, limit=limit,
                                        offset=offset, after_id=after)
    except ValidationError as e:  # every problem here is in a query parameter: a 400 naming it
        p = e.problems[0]
        raise ParameterError(field=p.field, value=request.args.get(p.field or "", p.value),
                             allowed=p.allowed) from e
    cursor = fc.pop("next_after_id")
    links = [{"rel": "self", "href": _href(layer, {}), "type": "application/geo+json"}]
    if cursor is not None:
        paging_by_offset = "offset" in request.args and "after" not in request.args
        nxt = {"offset": str(offset + limit)} if paging_by_offset else {"after": str(cursor)}
        links.append({"rel": "next", "href": _href(layer, nxt), "type": "application/geo+json"})
    body = {"type": fc["type"], "layer": layer, "numberReturned": fc["numberReturned"], "next_cursor": cursor,
            "links": links, "features": fc["features"]}
    return json_response(body, mimetype="application/geo+json")


def _href(layer: str, changes: dict[str, str]) -> str:
    args = {k: v for k, v in request.args.items()}
    args.update(changes)
    qs = urlencode(args)
    return f"{API_PREFIX}/layers/{layer}" + (f"?{qs}" if qs else "")
