"""Place search for maps and other clients: administrative regions and GeoNames places by Chinese name, pinyin or
English (:func:`layers.reference.search.search_places`).

Public (HTTP): ``GET /api/v1/places?q=<text>&limit=<n>``.
"""

from __future__ import annotations

from typing import Any

from dashboards.api.openapi import endpoint, query, register_schema
from dashboards.context import db_read, settings
from layers.reference.search import MAX_LIMIT, search_places

PLACES_REF = register_schema("Places", {
    "type": "object",
    "required": ["query", "places"],
    "properties": {
        "query": {"type": "string"},
        "places": {"type": "array", "items": {"type": "object", "required": ["kind", "code", "name", "lon", "lat"],
                                              "properties": {
            "kind": {"type": "string", "enum": ["province", "prefecture", "county", "place"]},
            "code": {"type": "string", "description": "adcode of a region, geonames:<id> of a place"},
            "name": {"type": "string"}, "name_en": {"type": ["string", "null"]},
            "lon": {"type": "number"}, "lat": {"type": "number"},
            "bbox": {"type": ["array", "null"], "items": {"type": "number"}},
            "parent": {"type": ["string", "null"]}, "population": {"type": ["integer", "null"]},
            "score": {"type": "number"}}}},
    },
})


@endpoint("/places", "GET", tags=("layers",), operation_id="search_places",
          summary="Places and administrative regions whose name matches, best first",
          description="Chinese, pinyin (tones, spaces and hyphens ignored; syllable initials too) or English names "
                      "of the store's admin regions and of GeoNames places in the service area.",
          parameters=[query("q", {"type": "string", "minLength": 1, "maxLength": 60}, "what to look for",
                            required=True, example="huhehaote"),
                      query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
                            "at most this many results")],
          responses={200: ("The matches", {"$ref": PLACES_REF})})
def places(*, q: str, limit: int) -> Any:
    with db_read() as conn:
        hits = search_places(conn, q, limit=limit, bbox=tuple(settings().service_area))  # type: ignore[arg-type]
    return {"query": q, "places": [{**h.__dict__, "bbox": list(h.bbox) if h.bbox else None} for h in hits]}
