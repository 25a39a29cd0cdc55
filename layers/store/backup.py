"""Backup and restore of the whole store (every table, the history, population, accounts and tokens).

Public: :func:`backup`, :func:`restore`, :func:`tool`, :class:`RestoreReport`.

>>> tool("pg_dump").name
'pg_dump'

A backup is one ``pg_dump -Fc`` archive of the database (the custom format: compressed, restorable table by table,
and read by ``pg_restore`` of the same or a newer PostgreSQL). The client programs come from the system's
PostgreSQL (the newest ``/usr/lib/postgresql/<v>/bin``, else ``PATH``), as :mod:`layers.store.cluster` finds ``initdb``.
They connect over TCP with the URL's password (passed in ``PGPASSWORD``, never on the command line), so they run as
the current user, root included.

:func:`restore` checks the archive before it touches anything: it must be a readable custom archive whose Alembic
revision (read from the archive's ``alembic_version`` data) is one of this code's migrations, so an archive of a newer
Sitroom is refused up front. It then empties the target and restores the archive in **one transaction**: ``pg_restore``
writes the archive as SQL into ``psql``, after ``BEGIN`` and the statements that empty the database, and ``COMMIT`` is
sent only when ``pg_restore`` has read the whole archive and ``psql`` has run every statement. A failure anywhere (an
archive whose data is cut short or corrupt, a statement that fails) leaves the database exactly as it was. An archive
of an older revision is then migrated to this code's head.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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


#: run first in the restore's transaction: empty the database (the archive re-creates our schema and PostGIS)
_EMPTY = b"""SET client_min_messages = warning;
BEGIN;
DROP SCHEMA IF EXISTS public CASCADE;
DROP EXTENSION IF EXISTS postgis CASCADE;
CREATE SCHEMA public;
"""


def _tail(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode("utf-8", "replace").strip()[-2000:]


def _replace_in_one_transaction(url: str, archive: Path) -> None:
    """Empty the database at ``url`` and restore ``archive`` into it, all in one transaction (module docstring).

    Raises
    ------
    ClusterError
        ``pg_restore`` could not read the whole archive, or a statement failed; the transaction was rolled back.
    """
    conn, env = _libpq(url)
    with tempfile.TemporaryFile() as psql_out, tempfile.TemporaryFile() as restore_err:
        psql = subprocess.Popen([str(tool("psql")), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", *conn],
                                stdin=subprocess.PIPE, stdout=psql_out, stderr=subprocess.STDOUT, env=env)
        assert psql.stdin is not None  # stdin=PIPE
        restored = committed = False
        try:
            psql.stdin.write(_EMPTY)
            psql.stdin.flush()
            rc = subprocess.run([str(tool("pg_restore")), "--no-owner", "--no-privileges", "--file=-", str(archive)],
                                stdout=psql.stdin, stderr=restore_err, check=False).returncode
            restored = rc == 0
            if restored:
                psql.stdin.write(b"COMMIT;\n")
                committed = True
        except BrokenPipeError:  # psql stopped at a failed statement; its transaction is rolled back
            pass
        finally:
            try:
                psql.stdin.close()  # without COMMIT, psql ends the session and the server rolls the transaction back
            except BrokenPipeError:
                pass
            psql_rc = psql.wait()
        if not restored:
            what = _tail(restore_err) or _tail(psql_out)
            raise ClusterError(f"pg_restore failed: {what}; nothing was changed (the restore was rolled back)")
        if not committed or psql_rc != 0:
            raise ClusterError(f"restoring the archive failed: {_tail(psql_out)}; nothing was changed (the restore "
                               "was rolled back)")


def _archive_revision(p: Path) -> str | None:
    """The Alembic revision stored in the archive (its ``alembic_version`` data), without restoring anything."""
    out = subprocess.run([str(tool("pg_restore")), "--data-only", "--table=alembic_version", "--file=-", str(p)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ValidationError([RowError(None, None, p.name, f"a readable archive ({out.stderr.strip()})", str(p))],
                              message="unreadable backup; nothing was changed")
    lines = out.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and ".alembic_version " in line:
            value = lines[i + 1] if i + 1 < len(lines) else "\\."
            return None if value == "\\." else value.strip()
    return None


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

    The database must exist (empty or not). The archive is checked first (readable, and its Alembic revision one of
    this code's migrations); then what the database holds is dropped and the archive restored, both in one
    transaction, so that any failure leaves the database as it was. An older revision is brought to head when
    ``migrate`` (the default).

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
        ``pg_restore`` or ``psql`` is missing, or the restore failed part-way (rolled back: nothing changed).
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
    listing = subprocess.run([str(tool("pg_restore")), "--list", str(p)], capture_output=True, text=True,
                             check=False)
    if listing.returncode != 0:
        raise ValidationError([RowError(None, None, p.name, f"a readable archive ({listing.stderr.strip()})",
                                        str(p))], message="unreadable backup; nothing was changed")
    from alembic.script import ScriptDirectory

    from layers.store.db import alembic_config
    from layers.store.db import migrate as run_migrations

    head = _head()
    revision = _archive_revision(p)
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if revision is not None and revision not in known:
        raise ValidationError([RowError(None, "alembic_version", revision, "a revision of this code's migrations: "
                                        + ", ".join(sorted(known)), str(p))],
                              message="the backup comes from a newer Sitroom; upgrade Sitroom, then restore again; "
                                      "nothing was changed")
    _replace_in_one_transaction(url, p)
    migrated = False
    if migrate and revision != head:
        run_migrations(url)
        migrated = True
    return RestoreReport(path=str(p), revision=revision, head=head, migrated=migrated)
