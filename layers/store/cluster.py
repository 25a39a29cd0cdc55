"""A private PostgreSQL + PostGIS cluster for one checkout: create, start, stop, describe.

Public: :func:`up`, :func:`down`, :func:`status`, :func:`url`, :class:`ClusterInfo`.

>>> import tempfile
>>> status(Path(tempfile.mkdtemp())) is None  # no cluster was ever made there
True

The cluster lives under ``<state_dir>/pg-<user>`` (outside git), listens on 127.0.0.1 only, on a free port chosen
at creation, with a generated password (scram-sha-256). When run as root it runs the server as the ``postgres``
user (``initdb`` and ``pg_ctl`` refuse root); an ordinary user runs it as itself. Everything is idempotent.

The app connects as :data:`OWNER`, a role without superuser that owns the database and runs the migrations; the
superuser (:data:`SUPERUSER`) only creates the cluster, the role and the PostGIS extension (which needs one), and
serves administration (``ClusterInfo.url_for``: creating databases, tests).

When root's checkout lies where ``postgres`` cannot reach (a checkout under ``/root`` is the usual case), the data
directory goes to ``/var/lib/postgresql/sitroom/<checkout hash>`` instead, and ``<state_dir>/pg-postgres/datadir``
says where.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from layers.store.errors import ClusterError

DEBIAN_HINT = (
    "install Debian's PostgreSQL and PostGIS: "
    "`apt-get install postgresql postgis postgresql-{v}-postgis-3` (or run the README's install command)"
)
DB_NAME = "sitroom"
SUPERUSER = "sitroom"
#: the role the app and its migrations connect as: owns the database and everything in it, not a superuser
OWNER = "sitroom_owner"


@dataclass(frozen=True)
class ClusterInfo:
    data_dir: Path
    port: int
    password: str
    running: bool
    bin_dir: Path
    owner_password: str | None = None

    @property
    def url(self) -> str:
        """The app's URL: the database as its owner role (no superuser), once :func:`up` has made the role."""
        if self.owner_password is None:
            return self.url_for(DB_NAME)
        return f"postgresql+psycopg://{OWNER}:{self.owner_password}@127.0.0.1:{self.port}/{DB_NAME}"

    def url_for(self, dbname: str) -> str:
        """The superuser's URL of ``dbname``: for administration only (creating databases, tests)."""
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"


def _run_as() -> str | None:
    """The user the server must run as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as e:
        raise ClusterError("running as root needs the `postgres` user; " + DEBIAN_HINT.format(v="15")) from e
    return "postgres"


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ClusterError("PostgreSQL server binaries (initdb, pg_ctl) not found; " + DEBIAN_HINT.format(v="15"))


def _check_postgis(bin_dir: Path) -> None:
    version = bin_dir.parent.name
    share = Path(f"/usr/share/postgresql/{version}/extension")
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            share = Path(out.stdout.strip()) / "extension"
    if not (share / "postgis.control").exists():
        raise ClusterError(f"PostGIS is not installed for PostgreSQL {version} (no {share}/postgis.control); "
                           + DEBIAN_HINT.format(v=version))


def _cluster_dir(state_dir: Path) -> Path:
    user = _run_as() or pwd.getpwuid(os.geteuid()).pw_name
    return state_dir.resolve() / f"pg-{user}"


def _cmd(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    user = _run_as()
    full = (["runuser", "-u", user, "--"] + args) if user else args
    proc = subprocess.run(full, capture_output=True, text=True, check=False, cwd="/")
    if check and proc.returncode != 0:
        raise ClusterError(f"`{' '.join(args)}` failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _chown_for_server(path: Path) -> None:
    user = _run_as()
    if user:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _server_can_reach(path: Path) -> bool:
    user = _run_as()
    if user is None:
        return True
    probe = path if path.exists() else path.parent
    return subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(probe)], capture_output=True,
                          check=False).returncode == 0


def _data_dir(root: Path) -> Path:
    pointer = root / "datadir"
    if pointer.exists():
        return Path(pointer.read_text().strip())
    return root / "data"


def _read_info(root: Path, bin_dir: Path) -> ClusterInfo | None:
    data = _data_dir(root)
    if not (data / "PG_VERSION").exists():
        return None
    port = int((root / "port").read_text().strip())
    password = (root / "password").read_text().strip()
    owner_file = root / "owner_password"
    owner = owner_file.read_text().strip() if owner_file.exists() else None
    running = _cmd([str(bin_dir / "pg_ctl"), "status", "-D", str(data)], check=False).returncode == 0
    return ClusterInfo(data_dir=data, port=port, password=password, running=running, bin_dir=bin_dir,
                       owner_password=owner or None)


def status(state_dir: Path) -> ClusterInfo | None:
    """The cluster of this checkout, or ``None`` if it was never created."""
    return _read_info(_cluster_dir(state_dir), _bin_dir())


def _initdb(root: Path, bin_dir: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    password = secrets.token_urlsafe(24)
    pwfile = root / "password"
    pwfile.write_text(password + "\n")
    os.chmod(pwfile, 0o600)
    (root / "port").write_text(f"{_free_port()}\n")
    data = root / "data"
    if not _server_can_reach(root):
        import hashlib

        data = Path("/var/lib/postgresql/sitroom") / hashlib.sha1(str(root).encode()).hexdigest()[:12] / "data"
        data.parent.mkdir(parents=True, exist_ok=True)
        for d in (data.parent.parent, data.parent):
            _chown_for_server(d)
        (root / "datadir").write_text(f"{data}\n")
    if (data / "PG_VERSION").exists():
        _set_aside(data, bin_dir)
    data.mkdir(mode=0o700, exist_ok=True)
    _chown_for_server(data)
    # initdb reads the password from a file the server user can read; remove it right after.
    tmp_pw = data.parent / f"initdb-{os.getpid()}.pw"
    tmp_pw.write_text(password + "\n")
    os.chmod(tmp_pw, 0o600)
    _chown_for_server(tmp_pw)
    try:
        _cmd([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=scram-sha-256",
              f"--pwfile={tmp_pw}", "-E", "UTF8", "--locale=C.UTF-8"])
    finally:
        tmp_pw.unlink(missing_ok=True)
    conf = data / "postgresql.conf"
    with conf.open("a") as f:
        f.write("\n# sitroom private cluster\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                "max_connections = 200\nshared_buffers = 512MB\nwork_mem = 32MB\nmaintenance_work_mem = 512MB\n"
                "max_wal_size = 4GB\nlog_min_messages = warning\n"
                "timezone = 'UTC'\n")


def _set_aside(data: Path, bin_dir: Path) -> Path:
    """A cluster outside the state dir (``/var/lib/postgresql/sitroom/<hash of the checkout path>``) left by an
    earlier checkout at the same path whose state dir, and with it the password, is gone: stop it and move it aside
    (nothing is deleted; the message says where it went), so a new cluster can take its place."""
    _cmd([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast"], check=False)
    aside = data.with_name(f"data.orphaned-{time.strftime('%Y%m%d-%H%M%S')}")
    data.rename(aside)
    print(f"sitroom: a cluster left by an earlier checkout at this path (its password was in the deleted state "
          f"dir) was moved to {aside}; delete it when it is not needed", file=sys.stderr)
    return aside


def up(state_dir: Path, *, timeout_s: float = 60.0) -> ClusterInfo:
    """Create (first time) and start the cluster; return how to reach it. Safe to call again."""
    bin_dir = _bin_dir()
    _check_postgis(bin_dir)
    root = _cluster_dir(state_dir)
    info = _read_info(root, bin_dir)
    if info is None:
        _initdb(root, bin_dir)
        info = _read_info(root, bin_dir)
        assert info is not None
    if not info.running:
        port = info.port
        if _port_in_use(port):  # someone took our port while we were down: move
            port = _free_port()
            (root / "port").write_text(f"{port}\n")
        log = info.data_dir.parent / "server.log"
        if not log.exists():
            log.touch()
        _chown_for_server(log)
        _cmd([str(bin_dir / "pg_ctl"), "start", "-w", "-t", str(int(timeout_s)), "-D", str(info.data_dir),
              "-l", str(log), "-o", f"-p {port}"])
        info = _read_info(root, bin_dir)
        assert info is not None
    _wait_ready(info, timeout_s)
    if info.owner_password is None:
        _make_owner(root, info)
        info = _read_info(root, bin_dir)
        assert info is not None
    return info


# Objects of the schema that the owner takes over from the superuser (a cluster made before the owner role existed):
# tables, views, sequences not tied to a column, functions; never those of an extension (PostGIS keeps its own).
_TAKE_OVER = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             AND pg_get_userbyid(c.relowner) <> '{owner}'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.deptype IN ('e', 'a', 'i'))
             AND (c.relkind <> 'r' OR NOT c.relispartition)
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO {owner}', CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                   WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{owner}'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                             AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO {owner}', r.f);
  END LOOP;
  ALTER SCHEMA public OWNER TO {owner};
END $$;
"""


def _make_owner(root: Path, info: ClusterInfo) -> None:
    """Make the owner role (login, no superuser), give it the database and what is in it, and create PostGIS once
    as the superuser (``CREATE EXTENSION postgis`` needs one); from then on the app and its migrations connect as
    the owner. The role's password is kept in ``<cluster dir>/owner_password`` (0600)."""
    import psycopg
    from psycopg import sql

    password = secrets.token_urlsafe(24)
    with psycopg.connect(host="127.0.0.1", port=info.port, user=SUPERUSER, password=info.password,
                         dbname="postgres", connect_timeout=10, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(OWNER), sql.Literal(password)))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(DB_NAME), sql.Identifier(OWNER)))
    with psycopg.connect(host="127.0.0.1", port=info.port, user=SUPERUSER, password=info.password,
                         dbname=DB_NAME, connect_timeout=10, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute(_TAKE_OVER.replace("{owner}", OWNER))  # a constant: no input in it
    pw = root / "owner_password"
    tmp = root / f".owner_password.{os.getpid()}"
    tmp.write_text(password + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, pw)


def _wait_ready(info: ClusterInfo, timeout_s: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(host="127.0.0.1", port=info.port, user=SUPERUSER, password=info.password,
                                 dbname="postgres", connect_timeout=3, autocommit=True) as conn:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
                    conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                return
        except psycopg.OperationalError as e:
            last = e
            time.sleep(0.2)
    raise ClusterError(f"the cluster in {info.data_dir} did not accept connections in {timeout_s:.0f} s: {last}")


def down(state_dir: Path) -> bool:
    """Stop the cluster if it runs; return whether it was running."""
    info = status(state_dir)
    if info is None or not info.running:
        return False
    _cmd([str(info.bin_dir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(info.data_dir)])
    return True


def url(state_dir: Path) -> str:
    """The SQLAlchemy URL of the running cluster; error if it is not up."""
    info = status(state_dir)
    if info is None or not info.running:
        raise ClusterError("the private PostGIS is not running: start it with `sitroom db up` "
                           "(or set SITROOM_DATABASE_URL to an existing PostGIS)")
    return info.url
