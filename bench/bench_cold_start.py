"""Cold start: the wall's first numbers and the first situation report after ``sitroom serve`` starts.

Run: ``python -m bench cold_start [--before PATH] [--workers 3]``

On the loaded bench database of ``bench_analysis`` (the demo of Inner Mongolia), ``sitroom serve`` is started from
nothing, and from the moment the command is spawned we time:

- ``health``: the first ``200`` of ``GET /api/v1/health`` (the workers have booted);
- ``wall``: the first ``GET /api/v1/wall/snapshot`` (the wall's numbers), asked as soon as health answers;
- ``sitrep``: the first ``GET /api/v1/reports/sitrep?format=pdf``, asked as soon as the wall answered; also timed
  alone (its own response time).

Targets (issue 16): the wall's first numbers < 2 s after the start, the first report < 3 s. With ``--before PATH``
(a copy of an older checkout, e.g. ``git archive <commit> | tar -x -C PATH``) the same is measured for that code
first, as the reference. The server's processes import the whole stack (pandas, shapely, Dash) when they boot: on
this shared 2-core machine that alone takes seconds, so the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench._scratch import stop
from bench.bench_analysis import bench_url, ensure_data
from tests.e2e.conftest import _free_port

ROOT = Path(__file__).resolve().parents[1]


def _first_ok(url: str, started: float, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=60).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer 200 within {timeout_s} s")


def measure(tree: Path, db_url: str, workers: int) -> dict[str, float]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SITROOM_DATABASE_URL": db_url, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    log = open(f"/tmp/sitroom-bench-cold-{os.getpid()}-{port}.log", "wb")
    started = time.monotonic()
    cli = "import sys; from dashboards.cli import main; sys.argv[0] = 'sitroom'; main()"
    proc = subprocess.Popen([sys.executable, "-c", cli, "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers)], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        out = {"health": _first_ok(base + "/api/v1/health", started, 300)}
        out["wall"] = _first_ok(base + "/api/v1/wall/snapshot", started, 300)
        t0 = time.monotonic()
        out["sitrep"] = _first_ok(base + "/api/v1/reports/sitrep?format=pdf", started, 300)
        out["sitrep_alone"] = time.monotonic() - t0
        return out
    finally:
        stop(proc, 20)
        log.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.bench_cold_start", description=__doc__.splitlines()[0])
    ap.add_argument("--url")
    ap.add_argument("--before", type=Path, help="an older checkout to measure first, as the reference")
    ap.add_argument("--workers", type=int, default=3)
    a = ap.parse_args(argv)
    url = bench_url(a.url)
    ensure_data(url, reload=False, n_resources=1_000_000)
    runs = []
    if a.before:
        runs.append(("before", a.before))
    runs.append(("this checkout", ROOT))
    results = {}
    for name, tree in runs:
        r = measure(tree, url, a.workers)
        results[name] = r
        print(f"{name:14s}: health {r['health']:5.1f} s, wall's first numbers {r['wall']:5.1f} s (target 2 s), "
              f"first sitrep {r['sitrep']:5.1f} s after the start, {r['sitrep_alone']:5.1f} s on its own "
              f"(target 3 s); load average {os.getloadavg()[0]:.1f} on 2 shared cores")
    if "before" in results:
        b, n = results["before"], results["this checkout"]
        print(f"ratios before/now: wall after health {(b['wall'] - b['health']) / max(n['wall'] - n['health'], 1e-3):.1f}x"
              f", first sitrep on its own {b['sitrep_alone'] / n['sitrep_alone']:.1f}x")


if __name__ == "__main__":
    main()
