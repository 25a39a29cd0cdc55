"""Backup and restore of the whole store (every table, the history, population, accounts and tokens).

Public: :func:`backup`, :func:`restore`, :func:`tool`, :class:`RestoreReport`.

>>> tool("pg_dump").name
'pg_dump'

A backup is one ``pg_dump -Fc`` archive of the database (the custom format: compressed, restorable table by table,
and read by ``pg_restore`` of the same or a newer PostgreSQL). The client programs come from the system's
PostgreSQL (the newest ``/usr/lib/postgresql/<v>/bin``, else ``PATH``), as :mod:`layers.store.cluster` finds ``initdb``.
They connect over TCP with the URL's password (passed in ``PGPASSWORD``, never on the command line), so they run as
the current user, root included. :func:`restore` empties the target database first (or restores into an empty
one), restores in one transaction (a failed restore leaves the target as it was), then checks the Alembic revision
of what it restored against this code's migrations.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from layers.store.errors import ClusterError, RowError, ValidationError

#: how the archives we write start (pg_dump's custom format)
ARCHIVE_MAGIC = b"PGDMP"


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore` did: the file, the Alembic revision restored, this code's head, whether it migrated."""

    path: str
    revision: str | None
    head: str
    migrated: bool


def tool(name: str) -> Path:
    """Path of a PostgreSQL client program (``pg_dump``, ``pg_restore``): the newest Debian one, else ``PATH``.

    Raises
    ------
    ClusterError
        The program is not installed.
    """
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise ClusterError(f"{name} not found: install Debian's PostgreSQL client (`apt-get install postgresql-client`)")


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options and environment for the client programs (the password goes in the environment)."""
    u = make_url(url)
    if not u.database:
        raise ValidationError([RowError(None, "url", u.render_as_string(hide_password=True),
                                        "a database URL with a database name")])
    args = [f"--dbname={u.database}", f"--host={u.host or '127.0.0.1'}", f"--port={u.port or 5432}"]
    if u.username:
        args.append(f"--username={u.username}")
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    return args, env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")


def backup(url: str, path: str | Path) -> Path:
    """Write the whole database at ``url`` to ``path`` (``pg_dump -Fc``); the file appears only when complete.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database (``postgresql+psycopg://user:password@host:port/db``).
    path : str or Path
        The archive to write (replaced if it exists).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ClusterError
        ``pg_dump`` is missing or failed (the message carries its error); no file is left behind then.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    conn, env = _libpq(url)
    try:
        _run([str(tool("pg_dump")), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", *conn],
             env, "pg_dump")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _clean(url: str) -> None:
    """Empty the database: our schema and the PostGIS extension (the archive re-creates both)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            c.execute(text("DROP EXTENSION IF EXISTS postgis CASCADE"))
            c.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    from layers.store.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/x"))
    head = script.get_current_head()
    if head is None:
        raise ClusterError("no Alembic head in layers/store/migrations")
    return head


def restore(url: str, path: str | Path, *, migrate: bool = True) -> RestoreReport:
    """Replace the content of the database at ``url`` with the archive at ``path``.

    The database must exist (empty or not): what it holds is dropped first, then the archive is restored in one
    transaction. The restored Alembic revision must be one of this code's migrations; an older one is brought to
    head when ``migrate`` (the default).

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the target database.
    path : str or Path
        An archive written by :func:`backup`.
    migrate : bool, default True
        Upgrade an archive from an older revision to this code's head.

    Returns
    -------
    RestoreReport

    Raises
    ------
    ValidationError
        ``path`` is missing or not a ``pg_dump`` custom archive (checked before anything is dropped), or its
        revision is unknown to this code (newer code wrote it).
    ClusterError
        ``pg_restore`` is missing or failed.
    """
    p = Path(path)
    if not p.is_file():
        raise ValidationError([RowError(None, None, str(p), "an existing backup file", str(p))],
                              message="no such backup; nothing was changed")
    with p.open("rb") as f:
        if f.read(len(ARCHIVE_MAGIC)) != ARCHIVE_MAGIC:
            raise ValidationError([RowError(None, None, p.name, "a pg_dump custom-format archive "
                                            "(written by `sitroom backup`)", str(p))],
                                  message="not a Sitroom backup; nothing was changed")
    conn, env = _libpq(url)
    listing = subprocess.run([str(tool("pg_restore")), "--list", str(p)], capture_output=True, text=True,
                             check=False)
    if listing.returncode != 0:
        raise ValidationError([RowError(None, None, p.name, f"a readable archive ({listing.stderr.strip()})",
                                        str(p))], message="unreadable backup; nothing was changed")
    head = _head()
    _clean(url)
    _run([str(tool("pg_restore")), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
          *conn, str(p)], env, "pg_restore")
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            revision = c.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    finally:
        engine.dispose()
    from alembic.script import ScriptDirectory

    from layers.store.db import alembic_config
    from layers.store.db import migrate as run_migrations

    script = ScriptDirectory.from_config(alembic_config(url))
    known = {rev.revision for rev in script.walk_revisions()}
    if revision is not None and revision not in known:
        raise ValidationError([RowError(None, "alembic_version", revision, "a revision of this code's migrations: "
                                        + ", ".join(sorted(known)), str(p))],
                              message="the backup comes from a newer Sitroom; upgrade Sitroom, then restore again")
    migrated = False
    if migrate and revision != head:
        run_migrations(url)
        migrated = True
    return RestoreReport(path=str(p), revision=revision, head=head, migrated=migrated)
