"""The HTTP API frame: the ``/api/v1`` blueprint, database access for views and callbacks, and the health check.

Public: :data:`ENDPOINT_MODULES`, :func:`create_blueprint`, :func:`db_engine`, :func:`settings`,
:func:`db_read`, :func:`json_response` (re-exported from :mod:`dashboards.api.errors`), :func:`current_user_name`.

An endpoint module declares its views with :func:`dashboards.api.openapi.endpoint`; list it in
:data:`ENDPOINT_MODULES` and :func:`create_blueprint` routes it, documents it in ``/api/v1/openapi.json`` and maps its
errors to JSON (``dashboards/api/errors.py``). Views and Dash callbacks reach PostGIS only through layers functions,
with a connection from :func:`db_engine` (created lazily, once per process: never shared across gunicorn forks).
"""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, has_app_context
from sqlalchemy import Connection, Engine
from werkzeug.exceptions import NotFound

from dashboards.api.errors import error_body, json_response, register_error_handlers
from dashboards.api.openapi import API_PREFIX, REGISTRY, endpoint, register_schema, view_function
from layers.read.queries import database_status
from layers.store.settings import Settings, get_settings

#: modules whose import declares endpoints (one line per module)
ENDPOINT_MODULES: tuple[str, ...] = (
    "dashboards.api.openapi",
    "dashboards.api.layers",
    "dashboards.api.analysis",
    "dashboards.api.drawings",
    "dashboards.api.wall",
    "dashboards.api.reports",
    "dashboards.api.write",
    "dashboards.api.situation",
    "dashboards.live",
)

__all__ = ["ENDPOINT_MODULES", "create_blueprint", "db_engine", "db_read", "settings", "json_response", "API_PREFIX",
           "current_user_name"]


def current_user_name() -> str:
    """Who the history records for this request (:func:`dashboards.auth.current_user_name`; imported lazily,
    since :mod:`dashboards.auth` imports this module)."""
    from dashboards.auth import current_user_name as f

    return f()


def settings() -> Settings:
    """The settings of the running app (those given to ``create_app``), else the process-wide settings."""
    if has_app_context():
        s = current_app.config.get("SITROOM_SETTINGS")
        if s is not None:
            return s  # type: ignore[no-any-return]
    return get_settings()


_resolved_urls: dict[tuple[str | None, str], str] = {}


def db_read() -> Connection:
    """A pooled connection in autocommit mode, for reads of one or a few statements (``with db_read() as conn:``).

    It saves the BEGIN and ROLLBACK round trips of :func:`db_engine` ``().connect()``; each statement sees the data
    committed when it starts, as in a READ COMMITTED transaction, and a single statement that writes is atomic on its
    own. Anything that writes with more than one statement takes ``db_engine().begin()``; ``SET LOCAL`` /
    ``set_config(..., true)`` last one statement here.
    """
    return db_engine().connect().execution_options(isolation_level="AUTOCOMMIT")


def db_engine() -> Engine:
    """The engine of this process for the app's database (lazily created; pool pre-ping survives restarts).

    Raises
    ------
    layers.store.errors.ClusterError
        No ``SITROOM_DATABASE_URL`` and the private cluster is not running (mapped to HTTP 503).
    """
    from layers.store.db import database_url, get_engine

    s = settings()
    key = (s.database_url, str(s.state_dir))
    url = _resolved_urls.get(key)
    if url is None:
        # resolving the private cluster's URL runs `pg_ctl status`: once per process, then cached
        url = database_url(s)
        _resolved_urls[key] = url
    return get_engine(url)


def reset_db_cache() -> None:
    """Forget resolved database URLs and engines (after fork, or when the database moved)."""
    from layers.store.db import reset_engines

    _resolved_urls.clear()
    reset_engines()


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
    for name in ENDPOINT_MODULES:
        importlib.import_module(name)
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
