"""Engine and sessions: the one place that connects to PostGIS.

Public: :func:`database_url`, :func:`get_engine`, :func:`session_scope`, :func:`connection_of`,
:func:`set_acting_user`, :func:`driver_connection`, :func:`migrate`, :func:`reset_engines`.

>>> database_url(Settings(database_url="postgresql+psycopg://u:p@db.example:5432/sitroom"))
'postgresql+psycopg://u:p@db.example:5432/sitroom'
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Text, bindparam, create_engine, event, exc, func, select
from sqlalchemy.orm import Session, sessionmaker

from layers.store import cluster
from layers.store.settings import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def database_url(settings: Settings | None = None) -> str:
    """``SITROOM_DATABASE_URL`` if set, else the URL of this checkout's private cluster."""
    s = settings or get_settings()
    if s.database_url:
        return s.database_url
    return cluster.url(s.state_dir)


#: a pooled connection idle for longer than this is checked with a round trip before it is handed out
PING_IDLE_S = 1.0


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """One engine per URL for the life of the process; survives a database restart.

    Instead of SQLAlchemy's ``pool_pre_ping`` (a round trip on every checkout, which under load is a tenth of a
    request's work), a connection is pinged only when it has been idle in the pool for more than
    :data:`PING_IDLE_S`: a connection returned less than a second ago was working then. A database that went away
    is away for longer than that, so after a restart every pooled connection is checked (and replaced) before use;
    a connection that breaks mid-request fails that request and the pool drops it and its siblings.
    """
    # connect_timeout: an unreachable database fails fast (the wall shows its banner) instead of hanging on TCP.
    # pool_size covers a gunicorn worker's threads (8) plus its live listener and a shared computation: connections
    # beyond pool_size are closed when returned, and a new PostgreSQL backend costs milliseconds of CPU (fork, PostGIS)
    engine = create_engine(url or database_url(), pool_size=12, max_overflow=12, pool_recycle=1800,
                           connect_args={"connect_timeout": 5})
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _mark_returned)
    return engine


def _mark_returned(dbapi_connection: Any, record: Any) -> None:
    record.info["sitroom_returned"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    returned = record.info.get("sitroom_returned")
    if returned is None or time.monotonic() - returned <= PING_IDLE_S:
        return  # new (just connected), or back in the pool a moment ago
    try:
        cur = dbapi_connection.cursor()
        try:
            cur.execute("SELECT 1")
        finally:
            cur.close()
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()  # the ping must not leave a transaction open
    except Exception as e:
        raise exc.DisconnectionError(f"pooled connection is dead: {e}") from e


def reset_engines() -> None:
    """Dispose every engine (after fork, or in tests)."""
    get_engine.cache_clear()


@contextmanager
def session_scope(engine: Engine | None = None, *, user: str = "system") -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error. ``user`` is written to the history."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    with factory() as session, session.begin():
        set_acting_user(session, user)
        yield session


def connection_of(conn: Session | Connection) -> Connection:
    """The Connection to run Core statements on: a Session's (in its current transaction), or ``conn`` itself."""
    return conn.connection() if isinstance(conn, Session) else conn


def driver_connection(conn: Session | Connection) -> Any:
    """The psycopg connection under ``conn`` (same transaction), for ``COPY`` and binary cursors."""
    raw = connection_of(conn).connection.driver_connection
    if raw is None:  # a detached or invalidated connection
        raise exc.InvalidRequestError("the connection has no live driver connection")
    return raw


#: transaction-local (``is_local`` true): the name lasts until the transaction (or savepoint's parent) ends
_SET_USER = select(func.set_config("sitroom.user", bindparam("user", type_=Text), True))


def set_acting_user(conn: Session | Connection, user: str) -> None:
    """Name ``user`` as the author of the changes of the current transaction.

    The history triggers read the ``sitroom.user`` setting into ``feature_history.changed_by``; every write path
    sets it through this function, in the transaction that writes.
    """
    conn.execute(_SET_USER, {"user": user})


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic filter: compare only our tables (PostGIS' own, such as ``spatial_ref_sys``, are not ours)."""
    from geoalchemy2 import alembic_helpers

    from layers.store.models import Base

    if type_ == "table" and reflected and compare_to is None and name not in Base.metadata.tables:
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))


def alembic_config(url: str) -> alembic.config.Config:  # type: ignore[name-defined]  # noqa: F821
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: the configured one) to ``revision``, creating PostGIS if needed."""
    from alembic import command

    command.upgrade(alembic_config(url or database_url()), revision)
