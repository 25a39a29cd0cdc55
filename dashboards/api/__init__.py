"""The HTTP API frame: the ``/api/v1`` blueprint and the health check.

Public: :func:`create_blueprint`.

An endpoint module declares its views with :func:`dashboards.api.openapi.endpoint` and is imported by
:func:`declare_endpoints`; :func:`create_blueprint` routes every declared view, documents it in
``/api/v1/openapi.json`` and maps its errors to JSON (:mod:`dashboards.errors`). Views parse the request, call a
service (:mod:`dashboards.services`) or a ``layers`` function with a connection from
:func:`dashboards.context.db_engine`, and answer JSON.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint
from werkzeug.exceptions import NotFound

from dashboards.api.openapi import REGISTRY, endpoint, register_schema, view_function
from dashboards.context import API_PREFIX, db_read
from dashboards.errors import error_body, json_response, register_error_handlers
from layers.read.queries import database_status

__all__ = ["create_blueprint", "declare_endpoints"]


def declare_endpoints() -> None:
    """Import every endpoint module: importing one declares its views in the registry."""
    from dashboards import live  # noqa: F401 - /events
    from dashboards.api import (  # noqa: F401
        analysis,
        command,
        drawings,
        layers,
        monitor,
        openapi,
        places,
        reports,
        situation,
        vector_tiles,
        wall,
        write,
    )


register_schema("Health", {
    "type": "object",
    "required": ["status", "db", "time"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "db": {"type": "boolean", "description": "the database answered"},
        "time": {"type": "string", "format": "date-time"},
        "db_latency_ms": {"type": "number"},
        "schema_revision": {"type": ["string", "null"], "description": "Alembic revision of the database"},
        "postgis": {"type": "string"},
        "error": {"$ref": "#/components/schemas/ErrorDetail"},
    },
})


@endpoint("/health", "GET", summary="Liveness and database reachability", tags=("meta",),
          responses={200: ("Server and database are up", {"$ref": "#/components/schemas/Health"}),
                     503: ("Database unreachable; the server keeps running and recovers by itself",
                           {"$ref": "#/components/schemas/Health"})})
def health() -> Any:
    """``{"status": "ok", "db": true, ...}`` (200) or ``{"status": "unavailable", "db": false, ...}`` (503)."""
    started = time.perf_counter()
    body: dict[str, Any] = {"time": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        with db_read() as conn:
            info = database_status(conn)
        body.update(status="ok", db=True, db_latency_ms=round((time.perf_counter() - started) * 1000, 2), **info)
        return body
    except Exception as e:  # noqa: BLE001 - any failure to reach the database is a 503, never a traceback
        _, err = error_body(e)
        body.update(status="unavailable", db=False, error=err["error"])
        return body, 503


def _index() -> Any:
    return json_response({"links": [
        {"rel": "service-desc", "href": f"{API_PREFIX}/openapi.json", "type": "application/vnd.oai.openapi+json"},
        {"rel": "status", "href": f"{API_PREFIX}/health"},
        {"rel": "data", "href": f"{API_PREFIX}/layers"},
    ]})


def _not_found(rest: str = "") -> Any:
    raise NotFound(f"no API endpoint at {API_PREFIX}/{rest}; see {API_PREFIX}/openapi.json")


def create_blueprint() -> Blueprint:
    """A fresh ``/api/v1`` blueprint with every declared endpoint, the JSON error handlers and a JSON 404."""
    declare_endpoints()
    bp = Blueprint("api_v1", __name__, url_prefix=API_PREFIX)
    for ep in REGISTRY.values():
        bp.add_url_rule(ep.rule, endpoint=ep.operation_id, view_func=view_function(ep), methods=[ep.method])
    bp.add_url_rule("", endpoint="_index", view_func=_index, methods=["GET"])
    bp.add_url_rule("/", endpoint="_index_slash", view_func=_index, methods=["GET"])
    # without this, Dash's catch-all page route would answer unknown API paths with an HTML page
    bp.add_url_rule("/<path:rest>", endpoint="_not_found", view_func=_not_found,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    register_error_handlers(bp)
    return bp
