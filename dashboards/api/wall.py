"""Wall endpoints: the cheap data version the command-hall wall polls, and the whole wall picture in one JSON.

Public (HTTP): ``GET /api/v1/wall/version``, ``GET /api/v1/wall/snapshot``.

Both read :mod:`dashboards.services.wall`; the snapshot is the live picture shared by every screen of this process,
sent as JSON encoded once per picture.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from dashboards.api.openapi import endpoint, query, register_schema
from dashboards.context import db_engine, db_read
from dashboards.errors import dumps
from dashboards.i18n import current_lang
from dashboards.services import wall

VERSION_REF = register_schema("WallVersion", {
    "type": "object",
    "required": ["version", "cursor", "time"],
    "properties": {
        "version": {"type": "integer", "description": "max(feature_history.id): moves with every feature change"},
        "cursor": {"type": "string", "description": "version-xmin: also moves when a change that took its version "
                                                     "earlier commits late (compare this, not the version)"},
        "population": {"type": "string", "description": "newest population build ('' without population)"},
        "time": {"type": "string", "format": "date-time", "description": "server time"},
    },
})


@endpoint("/wall/version", "GET", tags=("wall",), operation_id="wall_version",
          summary="Data version of the store (cheap; the wall polls it and refetches only when it moves)",
          responses={200: ("The version", {"$ref": VERSION_REF})})
def get_wall_version() -> dict[str, Any]:
    with db_read() as conn:
        return wall.wall_version(conn)


@endpoint("/wall/snapshot", "GET", tags=("wall",), operation_id="wall_snapshot",
          summary="The whole wall picture: KPIs, ticker, incidents per hour, H3 heatmap, hazards, annotations",
          description="Small by construction: the heatmap is H3 cells (resolution from `zoom`, cells outside `bbox` "
                      "left out, at most 4000), hazards are simplified with a zoom-dependent tolerance, lists are "
                      "capped.",
          parameters=[
              query("zoom", {"type": "number", "minimum": 0, "maximum": 20, "default": 5}, "Leaflet zoom"),
              query("bbox", {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                    "west,south,east,north of the visible map"),
              query("heat", {"type": "string", "enum": list(wall.HEAT_MODES), "default": "incidents"},
                    "what the hexes count"),
          ],
          responses={200: ("The wall picture", {"type": "object"})})
def get_wall_snapshot(*, zoom: float, bbox: list[float] | None, heat: str) -> Response:
    entry = wall.live_snapshot(db_engine(), zoom=zoom, bbox=bbox, heat="population" if heat == "population"
                               else "incidents", lang=current_lang())
    return Response(entry.derive("json", lambda v: dumps(v).encode("utf-8")), mimetype="application/json")
