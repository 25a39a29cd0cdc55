"""What every part of the server shares: the running app's settings, the database engines, the URL prefixes and
who is acting. It imports nothing of ``dashboards``, so auth, the API, the pages and the commands all depend on it
and never on each other in a circle.

Public: :data:`API_PREFIX`, :data:`OGC_PREFIX`, :data:`SITREP_PATH`, :func:`settings`, :func:`db_engine`, :func:`db_read`,
:func:`reset_db_cache`, :func:`acting_user`, :func:`set_acting_user`, :func:`sitrep_url`.

Engines are created lazily, once per process and database (never shared across gunicorn forks). The acting user is
what the history records for a change; :mod:`dashboards.auth` installs the function that reads it from the request
(:func:`set_acting_user`), so nothing needs to import auth to learn it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

from flask import current_app, has_app_context
from sqlalchemy import Connection, Engine

from layers.store.settings import Settings, get_settings

__all__ = ["API_PREFIX", "OGC_PREFIX", "SITREP_PATH", "settings", "db_engine", "db_read", "reset_db_cache", "acting_user",
           "set_acting_user", "sitrep_url"]

API_PREFIX = "/api/v1"
#: where OGC API - Features and Tiles are served (:mod:`dashboards.ogc`)
OGC_PREFIX = "/ogc"
SITREP_PATH = f"{API_PREFIX}/reports/sitrep"
#: who the history records outside any request (commands, benchmarks, tests calling services directly)
SYSTEM_USER = "system"


def settings() -> Settings:
    """The settings of the running app (those given to ``create_app``), else the process-wide settings."""
    if has_app_context():
        s = current_app.config.get("SITROOM_SETTINGS")
        if isinstance(s, Settings):
            return s
    return get_settings()


_resolved_urls: dict[tuple[str | None, str], str] = {}


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


def db_read() -> Connection:
    """A pooled connection in autocommit mode, for reads of one or a few statements (``with db_read() as conn:``).

    It saves the BEGIN and ROLLBACK round trips of :func:`db_engine` ``().connect()``; each statement sees the data
    committed when it starts, as in a READ COMMITTED transaction, and a single statement that writes is atomic on its
    own. Anything that writes with more than one statement takes ``db_engine().begin()``; ``SET LOCAL`` /
    ``set_config(..., true)`` last one statement here.
    """
    return db_engine().connect().execution_options(isolation_level="AUTOCOMMIT")


def reset_db_cache() -> None:
    """Forget resolved database URLs and engines (after fork, or when the database moved)."""
    from layers.store.db import reset_engines

    _resolved_urls.clear()
    reset_engines()


_acting_user: list[Callable[[], str]] = []


def set_acting_user(fn: Callable[[], str]) -> None:
    """Install the function that names who is acting in the current request (done once by :mod:`dashboards.auth`)."""
    _acting_user[:] = [fn]


def acting_user() -> str:
    """Who the history records for what happens now: the request's user or ``token:<name>``, ``anonymous`` for an
    anonymous request, :data:`SYSTEM_USER` outside requests or before auth is installed.

    >>> acting_user()  # outside a request
    'system'
    """
    return _acting_user[0]() if _acting_user else SYSTEM_USER


def sitrep_url(*, fmt: str = "pdf", lang: str | None = None, at: datetime | str | None = None) -> str:
    """The URL of a situation report (relative to the server root), for links on pages.

    Examples
    --------
    >>> sitrep_url(lang="en")
    '/api/v1/reports/sitrep?format=pdf&lang=en'
    """
    q: dict[str, str] = {"format": fmt}
    if lang:
        q["lang"] = lang
    if at is not None:
        q["at"] = at.isoformat() if isinstance(at, datetime) else str(at)
    return f"{SITREP_PATH}?{urlencode(q)}"
