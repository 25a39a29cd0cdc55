"""Shared fixtures. Database tests run against a real PostGIS, never a mock.

The suite uses a database ``sitroom_test_<pid>`` on this checkout's private cluster (``sitroom db up`` is run for you), or
the PostGIS named by ``SITROOM_TEST_DATABASE_URL``. It is dropped and migrated afresh once per run. Each test gets a
``session`` inside a transaction that is rolled back. Without a database, db tests are skipped, except under CI
(``CI`` set), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

# One database per test run, so that runs in parallel (two checkouts, two helpers) never collide.
TEST_DB = os.environ.get("SITROOM_TEST_DB", f"sitroom_test_{os.getpid()}")


def _admin_url_and_test_url() -> tuple[str, str]:
    explicit = os.environ.get("SITROOM_TEST_DATABASE_URL")
    if explicit:
        u = make_url(explicit)
        return u.set(database="postgres").render_as_string(hide_password=False), explicit
    from layers.store import cluster
    from layers.store.settings import get_settings

    info = cluster.up(get_settings().state_dir)
    return info.url_for("postgres"), info.url_for(TEST_DB)


def unavailable(reason: str) -> NoReturn:
    """A real part (PostGIS, Chromium) is missing: skip, except under ``make test`` (``SITROOM_TESTS_NEED_DB``) and in
    CI, where a missing part fails the run instead of silently skipping hundreds of tests."""
    if os.environ.get("CI") or os.environ.get("SITROOM_TESTS_NEED_DB"):
        pytest.fail(f"these tests need the real part: {reason}")
    pytest.skip(reason)


def sibling_database(db_url: str, suffix: str, *, migrated: bool = True) -> str:
    """The URL of a new, empty database ``<test database>_<suffix>`` on the test server (dropped first if a crashed
    run left it), migrated unless ``migrated`` is False: for fixtures whose tests commit."""
    from layers.store.db import migrate

    u = make_url(db_url)
    name = f"{u.database}_{suffix}"
    admin = create_engine(u.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = u.set(database=name).render_as_string(hide_password=False)
    if migrated:
        migrate(url)
    return url


def drop_database(url: str) -> None:
    """Drop the database at ``url`` (its connections are ended), after closing this process's pooled engines."""
    from layers.store.db import reset_engines

    reset_engines()
    u = make_url(url)
    admin = create_engine(u.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def db_url() -> Iterator[str]:
    """URL of a freshly migrated test database (dropped and re-created once per run)."""
    try:
        admin_url, test_url = _admin_url_and_test_url()
    except Exception as e:  # noqa: BLE001 - any failure to reach PostGIS
        unavailable(f"no PostGIS available: {e}")
    name = make_url(test_url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    from layers.store.db import migrate

    migrate(test_url)
    yield test_url
    from layers.store.db import reset_engines

    reset_engines()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose every write is rolled back at the end of the test (commits become savepoints)."""
    conn = engine.connect()
    outer = conn.begin()
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    s.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
    try:
        yield s
    finally:
        s.close()
        outer.rollback()
        conn.close()


# --- authentication (dashboards.auth): how tests act as someone ---------------------------------------------------
#
# * HTTP through a Flask test client: ``authorize(client, token)`` sends ``Authorization: Bearer <token>`` on every
#   request of that client; ``admin_token`` is a token of the ``db_url`` database that may write every layer (and
#   draw and analyse); ``api_token(engine, ...)`` makes one in another database (e.g. the demo database).
# * Page callbacks called as plain functions: inside ``app.server.test_request_context(...)``, ``signed_in("planner")``
#   makes the request's principal a user of that role (``dashboards.auth.allowed`` outside a request, or for an
#   anonymous request, denies everything but reads).

def api_token(engine: Engine, name: str | None = None, *, layers: tuple[str, ...] = ("*",),
              access: str = "write") -> str:
    """A new API token (``name``, default a fresh ``pytest-...``) in the database of ``engine``; returns its secret.

    The history records its writes as ``token:<name>``.
    """
    import uuid

    from layers.store.auth import create_token

    with engine.begin() as conn:
        return create_token(conn, name or f"pytest-{uuid.uuid4().hex[:12]}", layers=list(layers), access=access,
                            created_by="pytest")


@pytest.fixture(scope="session")
def admin_token(engine: Engine) -> str:
    """A token of the test database that may write every layer (feeds, drawings, analyses)."""
    return api_token(engine)


def authorize(client: Any, token: str) -> Any:
    """Make every request of a Flask test client carry ``Authorization: Bearer <token>``; returns the client."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@contextmanager
def signed_in(role: str, name: str | None = None) -> Iterator[Any]:
    """Within a request context: act as a user of ``role`` (what :func:`dashboards.auth.allowed` checks)."""
    from flask import g

    from layers.store.auth import Principal

    before = g.get("sitroom_principal")
    g.sitroom_principal = Principal(kind="user", name=name or f"pytest-{role}", role=role)
    try:
        yield g.sitroom_principal
    finally:
        g.sitroom_principal = before
