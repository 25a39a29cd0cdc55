"""``sitroom serve``: the dashboards and the HTTP API, by gunicorn (production) or Flask's dev server (``--dev``).

The server starts even when the database is down: ``/api/v1/health`` answers 503 until it is back, and pages say
so; a wall display recovers by itself. Each gunicorn worker builds its own app and database engine after the fork
(no ``preload_app``), so no connection pool is shared between processes.

The workers are uvicorn's (:class:`dashboards.front.SitroomWorker`): an asyncio loop per process owns the
connections (slow clients cost no thread; live streams are written by the loop) and hands requests to the Flask app
on ``--threads`` threads. The limits at the edge (request head and body deadlines, connections per process) are
options here; ``docs/security.md`` describes them and the reverse proxy in front.
"""

from __future__ import annotations

import os
from typing import Any

import click

GUNICORN_THREADS = 8
#: glibc malloc arenas per process: each of a worker's threads would otherwise get an arena of its own (up to 8 per
#: core), and each keeps the memory of the largest request it served; glibc's MALLOC_ARENA_MAX overrides it
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas of this process and the workers it forks (unless ``MALLOC_ARENA_MAX`` is set);
    False where that is not glibc. Call before any second thread allocates: the cap is read when the first thread
    arena is made. With 1M incidents, 3 workers x 8 threads: the largest worker's RSS after the screens' requests
    566 -> 469 MB (``bench.bench_memory``, MALLOC_ARENA_MAX=2 against the default, load 4.5-4.7)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):
        return False


def default_workers() -> int:
    """``cores + 1`` (at least 2, at most 9): each worker runs :data:`GUNICORN_THREADS` threads, so a few processes
    keep the cores busy; every further one repeats the live listener, the shared wall picture and a connection
    pool (gunicorn's ``2 x cores + 1`` is for one request per process). Measured with ``bench.bench_load`` on 2
    cores: 3 workers kept the 20 writes/s feed, 5 did not."""
    return max(2, min((os.cpu_count() or 1) + 1, 9))


def _post_fork(server: Any, worker: Any) -> None:
    # Engines (and their sockets) must never cross a fork; with lazy creation there are none yet, but be certain.
    from dashboards.context import reset_db_cache

    reset_db_cache()


def gunicorn_options(host: str, port: int, workers: int, *, threads: int = GUNICORN_THREADS) -> dict[str, Any]:
    """The gunicorn settings ``sitroom serve`` uses (the asyncio front's workers, ``threads`` threads each for the
    Flask app)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "dashboards.front.SitroomWorker",
        "threads": threads,
        "timeout": 120,
        "graceful_timeout": 10,
        "keepalive": 5,
        "preload_app": False,
        "post_fork": _post_fork,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "sitroom",
        # gunicorn >= 25.1 opens one control socket per user ($HOME/.gunicorn/gunicorn.ctl): two servers (a demo
        # and a test run) would fight over it. Nothing here uses gunicornc.
        "control_socket_disable": True,
    }


def _run_gunicorn(options: dict[str, Any]) -> None:
    from gunicorn.app.base import BaseApplication

    class SitroomGunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                    self.cfg.set(key, value)

        def load(self) -> Any:
            from dashboards.app import create_app
            from dashboards.front import create_front
            from dashboards.warm import warm_up

            server = create_app().server
            return create_front(server, on_startup=lambda: warm_up(server))

    SitroomGunicorn().run()


def _db_reachable() -> str | None:
    """None if the database answers, else a one-line reason."""
    try:
        from dashboards.context import db_engine
        from layers.read.queries import database_status

        with db_engine().connect() as conn:
            database_status(conn)
        return None
    except Exception as e:  # noqa: BLE001 - any reason; the server starts anyway
        return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    finally:
        from dashboards.context import reset_db_cache

        reset_db_cache()  # nothing opened here may leak into the forked workers


@click.command(name="serve", help="Serve the dashboards and the HTTP API (gunicorn; --dev for Flask's dev server).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="gunicorn worker processes [default: 2 x cores + 1, at most 9].")
@click.option("--threads", type=click.IntRange(1, 64), default=GUNICORN_THREADS, show_default=True,
              help="Threads per gunicorn worker.")
@click.option("--head-timeout", type=click.FloatRange(0.5, 300), default=10.0, show_default=True,
              help="Seconds a client may take to send a request's head (line and headers); then 408.")
@click.option("--body-timeout", type=click.FloatRange(0.5, 3600), default=20.0, show_default=True,
              help="Seconds of grace for a request body, plus one per --min-body-rate bytes; then 408.")
@click.option("--min-body-rate", type=click.FloatRange(100), default=50_000.0, show_default=True,
              help="Slowest accepted upload, bytes per second.")
@click.option("--max-connections", type=click.IntRange(10, 100_000), default=2000, show_default=True,
              help="Connections (and requests) per worker process at once; 503 beyond.")
@click.option("--dev", is_flag=True, help="Flask's development server with debug tools and reload (not for walls).")
def serve(host: str, port: int, workers: int | None, threads: int, head_timeout: float, body_timeout: float,
          min_body_rate: float, max_connections: int, dev: bool) -> None:
    limit_malloc_arenas()  # first: in the master, before any thread, inherited by the forked workers
    from dashboards import front
    from layers.store.settings import get_settings

    settings = get_settings()  # invalid settings fail here, naming the setting, not on the first request
    from dashboards.auth import AuthConfigError, check_production

    try:  # here, before the fork: a refusal is said once, not by every worker
        check_production(settings)
    except AuthConfigError as e:
        raise click.ClickException(str(e)) from None
    problem = _db_reachable()  # also drops any engine the check opened, before the fork
    if problem:
        click.echo(f"warning: the database is not reachable ({problem}); serving anyway: /api/v1/health answers "
                   "503 until it is back (`sitroom db up` starts the private PostGIS).", err=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/"
    if dev:
        from dashboards.app import create_app

        click.echo(f"Sitroom (development server, language {settings.language}): {url}  API: {url}api/v1/")
        create_app(settings).run(host=host, port=port, debug=True, dev_tools_disable_version_check=True)
        return
    n = workers or default_workers()
    # set in the master, inherited by the forked workers
    front.LIMITS = front.EdgeLimits(head_timeout_s=head_timeout, body_timeout_s=body_timeout,
                                    min_body_rate=min_body_rate, max_connections=max_connections,
                                    max_body_bytes=int(settings.max_upload_mb * 1024 * 1024), threads=threads)
    click.echo(f"Sitroom: {url}  API: {url}api/v1/  ({n} workers x {threads} threads, asyncio front)")
    from dashboards.warm import preload

    preload()  # modules only, in the master: the forked workers start with them
    _run_gunicorn(gunicorn_options(host, port, n, threads=threads))
