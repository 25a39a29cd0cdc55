"""History endpoints: the picture at any past time, and the life of one feature.

Public (HTTP): ``GET /api/v1/situation?at=<ISO time>&layers=...``, ``GET /api/v1/history?layer=&id=``.
Public (Python): :func:`parse_time`, :func:`situation_json`.

Both read ``feature_history`` through :mod:`layers.read.history`; see there for what "the picture at ``at``" means.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dashboards.api.openapi import endpoint, query, register_schema
from dashboards.context import db_engine
from dashboards.errors import ParameterError
from layers.read import history
from layers.read.queries import MAX_LIMIT
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import FEATURE_MODELS

SITUATION_REF = register_schema("Situation", {
    "type": "object",
    "required": ["at", "layers"],
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "layers": {"type": "object",
                   "additionalProperties": {"$ref": "#/components/schemas/FeatureCollection"}},
    },
})
HISTORY_REF = register_schema("FeatureHistory", {
    "type": "object",
    "required": ["layer", "id", "history"],
    "properties": {
        "layer": {"type": "string"}, "id": {"type": "integer"},
        "history": {"type": "array", "items": {"type": "object", "properties": {
            "history_id": {"type": "integer"}, "op": {"type": "string", "enum": ["insert", "update", "delete", "purge"]},
            "changed_at": {"type": "string", "format": "date-time"}, "changed_by": {"type": "string"},
            "feature": {"$ref": "#/components/schemas/Feature"}}}},
    },
})
ALLOWED_TIME = "an ISO 8601 time with a UTC offset, e.g. 2026-07-01T08:30:00+08:00 or 2026-07-01T00:30:00Z"


def parse_time(field: str, raw: str | None) -> datetime:
    """An ISO 8601 time with an offset (``Z`` allowed) -> aware datetime; None -> now (UTC).

    >>> parse_time("at", "2026-07-01T08:30:00+08:00").isoformat()
    '2026-07-01T08:30:00+08:00'
    >>> parse_time("at", "2026-07-01T00:30:00Z").isoformat()
    '2026-07-01T00:30:00+00:00'
    """
    if raw is None or raw == "":
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace(" ", "+", 1) if "T" in raw
                                    else raw.strip())
    except ValueError:
        raise ParameterError(field=field, value=raw, allowed=ALLOWED_TIME) from None
    if at.tzinfo is None:  # a naive time is ambiguous in a hall that runs on China Standard Time: refuse it
        raise ParameterError(field=field, value=raw, allowed=ALLOWED_TIME)
    return at


def situation_json(conn: Any, at: datetime, layers: list[str] | None = None, *, limit: int | None = None,
                   after: int | None = None) -> dict[str, Any]:
    """``{"at": ISO 8601, "layers": {layer: FeatureCollection}}`` of the picture at ``at``; with ``limit``, at most
    that many features per layer after id ``after``, each collection with its ``next_cursor`` (None: last page)."""
    if limit is None and after is None:
        return {"at": at.isoformat(), "layers": history.situation_at(conn, at, layers=layers)}
    try:
        pages = history.situation_at(conn, at, layers=layers, limit=limit, after_id=after)
    except ValidationError as e:  # limit and after are query parameters: a 400 naming the one at fault
        p = e.problems[0]
        if p.field not in ("limit", "after_id"):
            raise
        raise ParameterError(field="after" if p.field == "after_id" else p.field, value=p.value,
                             allowed=p.allowed) from e
    for fc in pages.values():
        fc["next_cursor"] = fc.pop("next_after_id")
    return {"at": at.isoformat(), "layers": pages}


@endpoint("/situation", "GET", tags=("history",), operation_id="situation_at",
          summary="The picture as it was at a given time (hazards, incidents, resources, shelters, annotations, "
                  "impact zones), rebuilt from the history",
          description="Each feature as it was at `at` (its last recorded state at or before `at`); features deleted "
                      "by then are left out. Without `at`: now. At most `limit` features per layer, ordered by "
                      "id; a layer with more has a `next_cursor`: ask again for that layer alone with "
                      "`after=<next_cursor>`. Big layers belong in tiles or H3 aggregates, not in one GeoJSON.",
          parameters=[
              query("at", {"type": "string", "format": "date-time"}, "ISO 8601 time with offset (default now)",
                    example="2026-07-01T08:30:00+08:00"),
              query("layers", {"type": "array", "items": {"type": "string", "enum": list(FEATURE_MODELS)}},
                    f"layers (default {', '.join(history.SITUATION_LAYERS)})"),
              query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": MAX_LIMIT},
                    "at most this many features per layer"),
              query("after", {"type": "integer", "minimum": 0},
                    "cursor: only features with id > after (one layer in `layers`)"),
          ],
          responses={200: ("The picture at that time", {"$ref": SITUATION_REF})})
def get_situation(*, at: str | None, layers: list[str] | None, limit: int, after: int | None) -> dict[str, Any]:
    when = parse_time("at", at)
    if after is not None and (layers is None or len(set(layers)) != 1):
        raise ParameterError(field="after", value=after, allowed="one layer in `layers` (each layer has its own "
                             "cursor, next_cursor)")
    with db_engine().connect() as conn:
        return situation_json(conn, when, layers, limit=limit, after=after)


@endpoint("/history", "GET", tags=("history",), operation_id="feature_history",
          summary="Every recorded state of one feature, oldest first (who changed what, when)",
          parameters=[
              query("layer", {"type": "string", "enum": list(FEATURE_MODELS)}, "the feature's layer", required=True),
              query("id", {"type": "integer", "minimum": 1}, "the feature id", required=True),
          ],
          responses={200: ("The feature's history", {"$ref": HISTORY_REF})})
def get_feature_history(*, layer: str, id: int) -> dict[str, Any]:
    with db_engine().connect() as conn:
        rows = history.feature_history(conn, layer, id)
    if not rows:
        raise NotFoundError(f"no history for feature {id} of layer {layer!r}")
    return {"layer": layer, "id": id, "history": rows}
