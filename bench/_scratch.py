"""What the benches share: a scratch database (on SITROOM_DATABASE_URL's server, else on the private cluster) and a
``sitroom serve`` to measure against."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.e2e.conftest import _free_port, _health

ROOT = Path(__file__).resolve().parents[1]


def scratch_urls(prefix: str) -> tuple[str, str]:
    """(admin URL of the ``postgres`` database, URL of ``<prefix>_<pid>``) on the server the benches use."""
    name = f"{prefix}_{os.getpid()}"
    explicit = os.environ.get("SITROOM_DATABASE_URL")
    if explicit:
        u = make_url(explicit)
        return (u.set(database="postgres").render_as_string(hide_password=False),
                u.set(database=name).render_as_string(hide_password=False))
    from layers.store import cluster
    from layers.store.settings import get_settings

    info = cluster.up(get_settings().state_dir)
    return info.url_for("postgres"), info.url_for(name)


def _admin(url: str) -> tuple[object, str]:
    u = make_url(url)
    admin = create_engine(u.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    return admin, str(u.database)


def create_scratch(prefix: str) -> str:
    """A new, empty database ``<prefix>_<pid>`` (dropped first if a crashed run left it); its URL. Not migrated."""
    _, url = scratch_urls(prefix)
    admin, name = _admin(url)
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()  # type: ignore[attr-defined]
    return url


def drop_scratch(url: str) -> None:
    """Drop the scratch database of :func:`create_scratch` (its open connections are ended)."""
    admin, name = _admin(url)
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()  # type: ignore[attr-defined]


def serve(url: str, log: Path, *, workers: int | None = None, threads: int | None = None,
          timeout_s: float = 120.0) -> tuple[subprocess.Popen[bytes], str]:
    """``sitroom serve`` (gunicorn, as in production) on a free port of 127.0.0.1 against ``url``, its output in
    ``log``; returns the process and the base URL once ``/api/v1/health`` answers 200."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(Path(sys.executable).with_name("sitroom")), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "SITROOM_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while _health(base) != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"sitroom serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return proc, base


def stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 30.0) -> None:
    """End a server of :func:`serve` (SIGTERM, then SIGKILL after ``timeout_s``)."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def load_demo_into(url: str, *, monitoring: bool = False) -> None:
    """Migrate the scratch database ``url`` and load the demo drill into it (Inner Mongolia only, as the dashboard
    tests load it, with its command part; its present is this hour); with ``monitoring``, also the monitoring demo
    of ``sitroom demo load`` (stations at the county seats, 72 h of readings, the warnings they raised)."""
    import tempfile
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from layers.command.demo import load_command_demo
    from layers.reference.demo import load_demo
    from layers.store.db import migrate

    migrate(url)
    eng = create_engine(url)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    try:
        with tempfile.TemporaryDirectory() as tmp, Session(eng) as s, s.begin():
            s.execute(text("SELECT set_config('sitroom.user', 'demo', true)"))
            load_demo(s, seed=2024, res=8, overview_res=7, now=now, all_china=False, raster_dir=tmp)
            load_command_demo(s, now=now)  # response banners, tasks, deployed resources' lines
            if monitoring:
                from layers.monitor.demo import load_monitoring_demo

                load_monitoring_demo(s, seed=2024, now=now)
    finally:
        eng.dispose()
