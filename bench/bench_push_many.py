"""Push to every screen: 1,000 concurrent SSE clients on ``sitroom serve``, push latency, server memory, pages.

Run: ``python -m bench push_many [--clients 1000] [--count 40] [--rate 2] [--workers 3]``

In a scratch database ``sitroom_bench_push_many_<pid>`` (dropped afterwards), ``sitroom serve`` with ``--workers``
uvicorn workers (the asyncio front: one LISTEN connection per process feeds all its streams). A bounded load
generator in this process (asyncio, one socket per client, on 127.0.0.1) opens ``--clients`` streams of
``/api/v1/events?layers=incidents``; then ``--count`` incidents are committed one by one at ``--rate`` per second and
each client records when the ``change`` naming each one arrives. Printed, each beside its target or reference:

- push latency, commit returned -> event received, over every (client, change): p50 / p95 / max (target p95 < 2 s);
  the reference is the thread-per-stream server this replaces, which served at most 6 streams per process (18 at
  3 workers) and sent every other screen to a 1 s poll;
- server memory with the clients connected: RSS of every process of the server summed, and PSS (shared pages
  counted once) (target < 1 GB);
- the Dash pages: p50 of ``GET /wall`` and ``GET /_dash-layout`` before the clients connect (reference) and while
  they are connected and changes flow; the ratio (target: unaffected, ~1x);
- the CPU time the load generator and the server used while the changes flowed, beside the wall time: which of
  them (or neither: the machine's other work) holds the cores.

The load generator shares the machine's 2 cores with the server and the database: the figures are an upper bound.
Measured (issue 16): at load 6.9 p95 0.11 s, at 9.2 p95 0.65 s, at 14 p95 3.2 s, with the same code: the latency
follows the machine's load; the generator and the server each use a small share of a core (see the CPU line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import requests
from sqlalchemy import create_engine, text

from bench._scratch import create_scratch, drop_scratch, serve, stop


class Clients:
    """``n`` SSE clients on one asyncio loop in a thread; ``seen[i][incident id]`` = arrival time (time.time())."""

    def __init__(self, base: str, n: int) -> None:
        u = urlsplit(base)
        self.host, self.port, self.n = u.hostname, u.port, n
        self.seen: list[dict[int, float]] = [{} for _ in range(n)]
        self.hello = 0
        self.failed = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.stop_event: asyncio.Event | None = None
        self.thread.start()

    async def _one(self, i: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except OSError:
            self.failed += 1
            return
        writer.write(b"GET /api/v1/events?layers=incidents HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            self.failed += 1
            writer.close()
            return
        kind = ""
        seen = self.seen[i]
        try:
            while line := await reader.readline():
                if line.startswith(b"event: "):
                    kind = line[7:].strip().decode()
                    if kind == "hello":
                        self.hello += 1
                elif line.startswith(b"data: ") and kind == "change":
                    now = time.time()
                    for fid in json.loads(line[6:])["ids"]:
                        seen.setdefault(int(fid), now)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        tasks = []
        for i in range(self.n):
            tasks.append(asyncio.create_task(self._one(i)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # open the connections in waves, as screens come up
        self.ready.set()
        await self.stop_event.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def _memory_mb(pid: int) -> tuple[float, float]:
    """(RSS summed, PSS summed) of ``pid`` and its descendants, MB."""
    rss = pss = 0.0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) / 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) / 1024
    return rss, pss


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (/proc/<pid>/stat)."""
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _pages_p50(base: str, n: int) -> dict[str, float]:
    out = {}
    for path in ("/wall", "/_dash-layout"):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = requests.get(base + path, timeout=30)
            ts.append(time.perf_counter() - t0)
            assert r.status_code == 200, (path, r.status_code)
        out[path] = statistics.median(ts) * 1000
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.bench_push_many", description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--count", type=int, default=40, help="changes to commit")
    ap.add_argument("--rate", type=float, default=2.0, help="changes per second")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--pages", type=int, default=20, help="page requests per measurement")
    args = ap.parse_args(argv)

    from layers.store.db import migrate

    url = create_scratch("sitroom_bench_push_many")
    migrate(url)
    log = Path(f"/tmp/sitroom-bench-push-many-{os.getpid()}.log")
    proc, base = serve(url, log, workers=args.workers)
    clients = None
    try:
        _pages_p50(base, 3)  # warm every worker a little
        idle_pages = _pages_p50(base, args.pages)
        idle_mem = _memory_mb(proc.pid)
        clients = Clients(base, args.clients)
        clients.ready.wait(120)
        deadline = time.monotonic() + 120
        while clients.hello + clients.failed < args.clients and time.monotonic() < deadline:
            time.sleep(0.2)
        connected = clients.hello
        eng = create_engine(url)
        commits: list[tuple[int, float]] = []
        loaded_pages: dict[str, float] = {}
        pages_thread = threading.Thread(target=lambda: loaded_pages.update(_pages_p50(base, args.pages)))
        cpu0 = (time.process_time(), _cpu_s(proc.pid), time.monotonic())
        with eng.connect() as c:
            nxt = time.monotonic()
            for k in range(args.count):
                if k == 2:
                    pages_thread.start()  # the pages are timed while changes flow to every screen
                wait = nxt - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                nxt += 1.0 / args.rate
                fid = c.execute(text(
                    "INSERT INTO incidents (source, external_id, name, kind, status, severity, geom) VALUES "
                    "('bench', :x, :n, 'fire', 'reported', 'general', ST_SetSRID(ST_MakePoint(111 + :d, 40.8), "
                    "4326)) RETURNING id"), {"x": f"m{k}", "n": f"bench {k}", "d": k * 1e-3}).scalar_one()
                c.commit()
                commits.append((int(fid), time.time()))
        busy_mem = _memory_mb(proc.pid)
        pages_thread.join(120)
        cpu1 = (time.process_time(), _cpu_s(proc.pid), time.monotonic())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(len(s) < args.count for s in clients.seen[:connected]):
            time.sleep(0.2)
        lat, missing = [], 0
        for seen in clients.seen:
            if not seen:
                continue
            for fid, t0 in commits:
                if fid in seen:
                    lat.append(seen[fid] - t0)
                else:
                    missing += 1
        a = np.asarray(lat)
        load = os.getloadavg()
        print(f"bench_push_many: {connected} of {args.clients} SSE clients connected ({clients.failed} refused), "
              f"{args.workers} workers; {args.count} commits at {args.rate:g}/s; load average {load[0]:.1f} "
              f"{load[1]:.1f} {load[2]:.1f} (2 shared cores; the load generator runs on them too)")
        if a.size:
            print(f"  push latency over {a.size:,} (client, change) pairs: p50 {np.percentile(a, 50):.3f} s, "
                  f"p95 {np.percentile(a, 95):.3f} s, max {a.max():.3f} s; missing {missing}  "
                  f"(target p95 < 2 s: {np.percentile(a, 95) / 2.0:.2f} of it)")
        span = cpu1[2] - cpu0[2]
        print(f"  CPU while the changes flowed ({span:.1f} s): load generator (this process, with the commits and "
              f"the page timings) {cpu1[0] - cpu0[0]:.1f} s ({(cpu1[0] - cpu0[0]) / span:.0%} of a core), server "
              f"(every process) {cpu1[1] - cpu0[1]:.1f} s ({(cpu1[1] - cpu0[1]) / span:.0%} of a core); the rest of "
              "the 2 cores is the database and the machine's other work")
        print(f"  reference: the thread-per-stream server served at most 6 streams per process "
              f"({6 * args.workers} at {args.workers} workers): {connected / (6 * args.workers):.0f}x as many "
              "screens pushed now; the rest polled every 1 s")
        print(f"  server memory: idle RSS {idle_mem[0]:,.0f} MB / PSS {idle_mem[1]:,.0f} MB; with the clients RSS "
              f"{busy_mem[0]:,.0f} MB / PSS {busy_mem[1]:,.0f} MB (target < 1,024 MB: PSS "
              f"{busy_mem[1] / 1024:.2f} of it)")
        for path, idle in idle_pages.items():
            busy = loaded_pages.get(path, float("nan"))
            print(f"  page {path:14s} p50 idle {idle:7.1f} ms, with {connected} streams and changes flowing "
                  f"{busy:7.1f} ms: {busy / idle:.2f}x")
        eng.dispose()
    finally:
        if clients is not None:
            clients.close()
        stop(proc, 20)
        drop_scratch(url)


if __name__ == "__main__":
    main()
