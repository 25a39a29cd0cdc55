"""Memory of ``sitroom serve``'s workers with 1M incidents in the store (issue 16: RSS per worker < 500 MB).

Run: ``python -m bench.bench_memory [--rows 1000000] [--seed 20240601] [--workers 3] [--rounds 20]``.

A scratch database ``sitroom_bench_memory_<pid>`` is copied from ``sitroom_bench`` (the offline demo of Inner
Mongolia with population at res 8 and 7 and 1M synthetic resources; loaded by ``bench_analysis`` on first use), and
N seeded incidents over Inner Mongolia (``bench_wall``'s generator) are COPYed in. ``sitroom serve`` (gunicorn,
``--workers``) runs on it. Every worker's RSS, PSS and USS (``/proc/<pid>/smaps_rollup``) is read:

- after start (health answers; the workers' background warm-up may still run);
- after ``--rounds`` rounds of what the screens ask for, spread over the workers by the kernel: the wall page, its
  Dash layout, its snapshot and version, the situation, the incidents as a vector tile at z5 and z8, a page of 10,000
  incidents from the layer API, an impact card, the nearest 3 resources, and the first situation report.

Reference: the target, 500 MB per worker; the workers' RSS beside it and the ratio. PSS counts pages shared between
workers (the code imported before the fork, the memory-mapped population sums) once across them; RSS counts them in
every worker. Measured (issue 16, load 3.4-3.9): after start 226-235 MB per worker, after the rounds 411-486 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._scratch import _admin, drop_scratch, scratch_urls, serve, stop
from bench.bench_analysis import bench_url, ensure_data
from bench.bench_push_many import _tree
from bench.bench_wall import _copy, _rows

TARGET_MB = 500.0


def _memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of one process, MB."""
    out = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            kb = rest.split()[0] if rest.split() else "0"
            if key == "Rss":
                out["rss"] = int(kb) / 1024
            elif key == "Pss":
                out["pss"] = int(kb) / 1024
            elif key in ("Private_Clean", "Private_Dirty"):
                out["uss"] += int(kb) / 1024
    return out


def _print(label: str, master: int) -> float:
    """Print every process of the server (the master first), return the largest worker's RSS."""
    rows = [(p, _memory(p)) for p in _tree(master)]
    top = max((m["rss"] for p, m in rows if p != master), default=0.0)
    print(f"  {label}: " + "; ".join(f"{'master' if p == master else 'worker'} {p} RSS {m['rss']:,.0f} / PSS "
                                     f"{m['pss']:,.0f} / USS {m['uss']:,.0f} MB" for p, m in rows))
    print(f"    largest worker RSS {top:,.0f} MB   target < {TARGET_MB:,.0f} MB   ratio {top / TARGET_MB:.2f}   "
          f"all processes PSS {sum(m['pss'] for _, m in rows):,.0f} MB")
    return top


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = math.asinh(math.tan(math.radians(lat)))
    return int((lon + 180.0) / 360.0 * n), int((1.0 - y / math.pi) / 2.0 * n)


def _zone(lon: float, lat: float, d: float = 0.5) -> dict[str, object]:
    return {"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
                                                [lon - d, lat + d], [lon - d, lat - d]]]}


def _round(s: requests.Session, base: str, first: bool) -> None:
    def get(path: str, **kw: object) -> None:
        r = requests.get(base + path, headers=s.headers, timeout=300, **kw)  # type: ignore[arg-type]
        if r.status_code != 200:  # reported, not fatal: the memory is measured whatever a route answers
            print(f"    GET {path}: {r.status_code} {r.text[:160]}")

    get("/wall")
    get("/_dash-layout")
    get("/api/v1/wall/snapshot")
    get("/api/v1/wall/version")
    get("/api/v1/situation")
    for z in (5, 8):
        x, y = _tile(112.0, 42.0, z)
        get(f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt")
    get("/api/v1/layers/incidents", params={"limit": 10000})
    r = requests.post(base + "/api/v1/analysis/impact", headers=s.headers, json={"geometry": _zone(111.7, 40.8)},
                      timeout=300)
    if r.status_code != 200:
        print(f"    POST /api/v1/analysis/impact: {r.status_code} {r.text[:160]}")
    get("/api/v1/analysis/nearest", params={"lon": 111.7, "lat": 40.8, "k": 3})
    if first:
        get("/api/v1/reports/sitrep")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.bench_memory", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args(argv)

    from layers.store import auth
    from layers.store.db import migrate

    template = bench_url(None)
    ensure_data(template, reload=False, n_resources=1_000_000)
    _, url = scratch_urls("sitroom_bench_memory")
    admin, name = _admin(url)
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"'))
    admin.dispose()  # type: ignore[attr-defined]
    proc = None
    try:
        migrate(url)
        eng = create_engine(url)
        with eng.begin() as c:
            c.execute(text("DELETE FROM incidents"))
        copy_s = _copy(url, _rows(a.rows, a.seed))
        with eng.begin() as c:
            n = c.execute(text("SELECT count(*) FROM incidents WHERE deleted_at IS NULL")).scalar_one()
            secret = auth.create_token(c, "bench-memory", layers=["*"], access="write", created_by="bench")
        eng.dispose()
        print(f"bench_memory: {n:,} incidents (seed {a.seed}, COPY {copy_s:.0f} s) in {name}, {a.workers} workers, "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} shared cores")
        log = Path(f"/tmp/sitroom-bench-memory-{os.getpid()}.log")
        proc, base = serve(url, log, workers=a.workers, timeout_s=600)
        _print("after start", proc.pid)
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {secret}"
        t0 = time.perf_counter()
        for i in range(a.rounds):
            _round(s, base, i < a.workers)
            s.close()  # a new connection next round, so the kernel may hand it to another worker
        print(f"  {a.rounds} rounds in {time.perf_counter() - t0:.0f} s")
        _print(f"after {a.rounds} rounds", proc.pid)
    finally:
        stop(proc)
        drop_scratch(url)


if __name__ == "__main__":
    main()
