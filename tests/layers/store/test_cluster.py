"""The private PostGIS of a checkout: `sitroom db up` works twice in a row, as root and as an ordinary user.

Every test here runs whoever runs the suite. The root path (the server dropped to ``postgres``, the data dir moved out
of a checkout ``postgres`` cannot enter) is taken as root, or by an ordinary user through passwordless ``sudo``;
the ordinary path directly, or by root as ``postgres``. When neither is possible the test says why: it skips in a
plain run and fails under ``make test`` (``SITROOM_TESTS_NEED_DB``) and CI, never skips silently there.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from layers.store import cluster
from layers.store.errors import ClusterError
from tests.conftest import unavailable

pytestmark = pytest.mark.db
SITROOM = str(Path(sys.executable).with_name("sitroom"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITROOM_")}
    env.update(extra)
    return env


def _as_root() -> list[str]:
    """The prefix that runs a command as root: nothing for root, ``sudo -n`` for an ordinary user allowed to use it
    without a password; otherwise the test cannot run here (skip, or fail under ``make test`` and CI)."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                               check=False).returncode == 0:
        return ["sudo", "-n"]
    unavailable(f"the root path of `sitroom db up` needs root: run the suite as root, or give "
                f"{pwd.getpwuid(os.geteuid()).pw_name!r} passwordless sudo")


def _run(args: list[str], env: dict[str, str], user: str | None = None,
         root: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with the ``SITROOM_*`` variables of ``env``: as ``user`` (root drops to it with runuser), or
    through the ``root`` prefix of :func:`_as_root`."""
    passed = [f"{k}={v}" for k, v in env.items() if k.startswith("SITROOM_")]
    if user:
        cmd = ["runuser", "-u", user, "--", "env", *passed, *args]
    elif root:
        cmd = [*root, "env", *passed, *args]
    else:
        cmd = args
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd="/")


def _remove(path: Path, root: list[str] | None = None) -> None:
    """Remove a folder the test made, also when root made what is inside it."""
    if root:
        subprocess.run([*root, "rm", "-rf", "--", str(path)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def _up_twice_then_down(state: Path, user: str | None, root: list[str] | None = None) -> None:
    env = _env(SITROOM_STATE_DIR=str(state))
    try:
        for _ in range(2):
            p = _run([SITROOM, "db", "up"], env, user, root)
            assert p.returncode == 0, p.stderr
            assert "PostGIS is up on 127.0.0.1:" in p.stdout
        url = _run([SITROOM, "db", "url"], env, user, root).stdout.strip()
        u = make_url(url)
        with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                             dbname=u.database) as conn:
            assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3")
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            # issue 17 item 16: the app is not a superuser; it owns the database and what the migrations made
            who, is_super, owner = conn.execute(
                "SELECT current_user, rolsuper, pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d "
                "WHERE r.rolname = current_user AND d.datname = current_database()").fetchone()
            assert (who, is_super, owner) == (cluster.OWNER, False, cluster.OWNER)
            assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'hazards'").fetchone()[0] == who
    finally:
        _run([SITROOM, "db", "down"], env, user, root)
        for pointer in state.glob("pg-*/datadir"):  # a data dir placed outside the state dir (see layers.store.cluster)
            _remove(Path(pointer.read_text().strip()).parent, root)


def test_db_up_twice_as_root(tmp_path: Path) -> None:
    root = _as_root()
    try:
        _up_twice_then_down(tmp_path / "state", None, root)
    finally:
        _remove(tmp_path / "state", root)


def test_a_new_checkout_at_the_same_path_sets_the_old_cluster_aside(tmp_path: Path) -> None:
    """As root, when ``postgres`` cannot reach the checkout, the data dir lives in /var/lib/postgresql/sitroom/<hash
    of the path> and the password in the checkout's state dir. A new clone at the same path (state dir gone) used
    to start the old cluster with a new password: every connection refused, every db test skipped. Now the old
    cluster is stopped and moved aside, and a new one starts."""
    root = _as_root()
    state = tmp_path / "state"  # under pytest's 0700 tmp dir: postgres cannot reach it
    env = _env(SITROOM_STATE_DIR=str(state))
    old: Path | None = None
    try:
        assert _run([SITROOM, "db", "up"], env, root=root).returncode == 0
        pointers = list(state.glob("pg-*/datadir"))
        assert pointers, "the data dir should be outside the unreachable state dir"
        old = Path(pointers[0].read_text().strip())
        _remove(state, root)  # the checkout is deleted and cloned again; the old cluster still runs
        assert not state.exists()
        p = _run([SITROOM, "db", "up"], env, root=root)
        assert p.returncode == 0, p.stderr
        assert "was moved to" in p.stderr and list(old.parent.glob("data.orphaned-*"))
        u = make_url(_run([SITROOM, "db", "url"], env, root=root).stdout.strip())
        with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                             dbname=u.database) as conn:
            assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3")
    finally:
        _run([SITROOM, "db", "down"], env, root=root)
        if old is not None:
            for d in old.parent.glob("data*"):
                subprocess.run([*root, "runuser", "-u", "postgres", "--", str(cluster._bin_dir() / "pg_ctl"), "stop",
                                "-D", str(d), "-m", "immediate"], capture_output=True, check=False)
            _remove(old.parent, root)
        _remove(state, root)


def test_db_up_twice_as_ordinary_user(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root drops to an ordinary account for this test: `postgres` exists wherever PostgreSQL is installed
        user = "postgres"
        can_run = subprocess.run(["runuser", "-u", user, "--", SITROOM, "--help"], capture_output=True,
                                 check=False).returncode == 0
        if not can_run:  # e.g. a virtualenv made from a Python under /root: not an ordinary user's to run
            unavailable(f"user {user!r} cannot run {SITROOM} (its interpreter is "
                        f"{os.path.realpath(sys.executable)}); `make test` builds .venv from /usr/bin/python3")
        state = Path("/tmp") / f"sitroom-user-test-{os.getpid()}"
        state.mkdir(mode=0o755)
        pw = pwd.getpwnam(user)
        os.chown(state, pw.pw_uid, pw.pw_gid)
    else:
        user, state = None, tmp_path / "state"
    try:
        _up_twice_then_down(state, user)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_migrate_brings_a_fresh_empty_database_to_the_current_schema(db_url: str) -> None:
    u = make_url(db_url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"sitroom_empty_{os.getpid()}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        target = u.set(database=name).render_as_string(hide_password=False)
        p = subprocess.run([SITROOM, "db", "migrate"], env=_env(SITROOM_DATABASE_URL=target),
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        eng = create_engine(target)
        with eng.connect() as c:
            tables = set(c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
            assert {"hazards", "incidents", "shelters", "resources", "protection_targets", "admin_regions",
                    "impact_zones", "annotations", "population_cells", "feature_history"} <= tables
            assert c.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")).scalar_one() == 1
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrations_run_as_an_owner_without_superuser(db_url: str) -> None:
    """Production with an external PostGIS (docs/security.md): the superuser creates the role, the database and the
    PostGIS extension once; the owner, no superuser, runs every migration."""
    u = make_url(db_url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name, role = f"sitroom_owned_{os.getpid()}", f"sitroom_owner_test_{os.getpid()}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        c.execute(text(f"CREATE ROLE \"{role}\" LOGIN NOSUPERUSER PASSWORD 'owner-test-password'"))
        c.execute(text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
    first = create_engine(u.set(database=name), isolation_level="AUTOCOMMIT")
    with first.connect() as c:
        c.execute(text("CREATE EXTENSION postgis"))
    first.dispose()
    try:
        target = u.set(database=name, username=role, password="owner-test-password")
        p = subprocess.run([SITROOM, "db", "migrate"], env=_env(SITROOM_DATABASE_URL=target.render_as_string(
            hide_password=False)), capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        eng = create_engine(target)
        with eng.connect() as c:
            assert c.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one() is False
            assert c.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'feature_history'")
                             ).scalar_one() == role
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def test_missing_postgis_names_the_debian_packages() -> None:
    with pytest.raises(ClusterError, match="apt-get install postgresql postgis"):
        cluster._check_postgis(Path("/nonexistent/postgresql/99/bin"))
