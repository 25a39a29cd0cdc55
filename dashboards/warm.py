"""Warm a fresh server process in the background, so that the first wall and the first report do not pay for it.

Public: :func:`warm_up`, :func:`preload`, :data:`STEPS`.

Run once per worker by the asyncio front (:func:`dashboards.front.create_front`, ``on_startup``) on a thread of its
own while the worker already serves. Each step is independent and its failure is only logged (a database that is
down warms nothing; the server serves anyway and the first requests pay as before):

- ``wall``: the wall's shared live picture (:func:`dashboards.services.wall.live_snapshot`), so the first screen
  gets it from the cache;
- ``live``: this process's LISTEN hub, connected before the first screen opens its stream;
- ``population``: the kept population sums (:mod:`layers.read.popsums`) mapped for the default resolution, and
  their split by county built;
- ``report``: the situation report's PDF engine (WeasyPrint, its fonts: the CJK font files are parsed on first use)
  by rendering a one-line page, and the report's HTML template.

>>> [name for name, _ in STEPS]
['wall', 'live', 'population', 'report']
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _live() -> None:
    from dashboards.live import _hub_for_request

    _hub_for_request().wait_ready(5.0)


def _wall() -> None:
    from dashboards.context import db_engine
    from dashboards.services.wall import live_snapshot

    live_snapshot(db_engine())


def _population() -> None:
    from dashboards.context import db_engine
    from dashboards.services.zones import DEFAULT_RES
    from layers.read import analysis as store
    from layers.read import popsums

    with db_engine().connect() as conn:
        src = store.population_source(conn, res=DEFAULT_RES)
        sums = popsums.hierarchy(conn, source=src["source"], res=DEFAULT_RES, built_at=src["built_at"],
                                 cell_count=src["cell_count"], input_total=src["input_total"])
        popsums.county_sums(conn, sums)


def _report() -> None:
    from dashboards.reports import _env, render_pdf

    _env().get_template("sitrep.html")
    render_pdf('<html lang="zh-CN"><body><p style="font-family: \'Noto Sans CJK SC\'">态势 Sitroom</p></body></html>')


STEPS: list[tuple[str, Callable[[], None]]] = [("wall", _wall), ("live", _live), ("population", _population),
                                                ("report", _report)]


def preload() -> None:
    """Import the server's modules (no app, no engine, no connection) so that forked workers start with them.

    Called by ``sitroom serve`` in gunicorn's master before the workers fork: each worker then skips seconds of
    imports (Dash, pandas, shapely, WeasyPrint), which on two cores three workers would otherwise pay at once.
    """
    for name in PRELOADED:
        importlib.import_module(name)


#: modules ``sitroom serve``'s master imports before the fork
PRELOADED = ("dashboards.app", "dashboards.front", "dashboards.reports", "dashboards.services.wall",
             "dashboards.services.impact", "weasyprint")


def warm_up(server: Any) -> dict[str, float]:
    """Run every step in ``server``'s app context (the Flask app: engines come from its settings); seconds per
    step."""
    took: dict[str, float] = {}
    with server.app_context():
        for name, step in STEPS:
            t0 = time.perf_counter()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - a cold step is only slower, never an error
                log.info("warm-up: %s skipped (%s)", name, str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
            took[name] = round(time.perf_counter() - t0, 3)
    log.info("warm-up done: %s", took)
    return took
