"""Ingest -> screen latency of the live push, side by side with the wall's version polling (the reference).

Run: ``python -m bench.bench_push [--count 200] [--rate 10] [--clients 4] [--browser]``

In a scratch database ``sitroom_bench_push_<pid>`` on this checkout's private cluster (or on the PostGIS of
``SITROOM_DATABASE_URL``; dropped afterwards), ``sitroom serve`` with 2 gunicorn workers. Then ``--count`` incidents
are committed one by one at a steady ``--rate`` per second (each is one committed change through the history
triggers, as a feed's POST would be), and for each we take the time from "commit returned" to:

- push: the ``change`` event naming it arriving on each of ``--clients`` SSE clients of ``/api/v1/events``
  (spread over both workers; each worker LISTENs itself);
- reference: a client polling ``/api/v1/wall/version`` every ``POLL_MS`` (the wall's ``dcc.Interval`` period)
  first seeing a version at or above the change's history id (what a polling wall would notice; its redraw comes on
  top, as it does for push);
- ``--browser``: two headless Chromiums on ``/wall``: the incident KPI showing the new count (the DOM updated: push
  event, version check, server redraw), read by a MutationObserver in the page (clocks: the same machine's wall
  clock); the second one cannot open ``/api/v1/events`` (blocked), so it runs on the wall's 1 s polling fallback:
  the reference on screen.

Prints p50 / p95 / max per path and the push/poll ratio. Target (docs/performance.md): p95 < 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import queue
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from sqlalchemy import create_engine, text

from bench._scratch import create_scratch, drop_scratch, serve, stop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

POLL_MS = 1000  # dashboards/pages/wall.py POLL_MS: the polling reference


class SSEClient(threading.Thread):
    """Reads ``/api/v1/events``; records the first arrival time (time.time()) of every incident id announced."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        u = urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.conn.request("GET", "/api/v1/events?layers=incidents")
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.seen: dict[int, float] = {}
        self.hello: queue.Queue[dict] = queue.Queue()
        self.start()

    def run(self) -> None:
        kind, data = "", ""
        with contextlib.suppress(Exception):
            while line := self.resp.readline():
                now = time.time()
                line = line.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    d = json.loads(data)
                    if kind == "hello":
                        self.hello.put(d)
                    elif kind == "change":
                        for i in d["ids"]:
                            self.seen.setdefault(int(i), now)
                    kind, data = "", ""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


class Poller(threading.Thread):
    """Polls ``/api/v1/wall/version`` every POLL_MS; records (time.time(), version) of each answer."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.answers, self.stop = base, [], threading.Event()
        self.start()

    def run(self) -> None:
        import urllib.request

        nxt = time.monotonic()
        while not self.stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(self.base + "/api/v1/wall/version", timeout=5) as r:
                    v = json.loads(r.read())["version"]
                self.answers.append((time.time(), int(v)))
            nxt += POLL_MS / 1000
            self.stop.wait(max(0.0, nxt - time.monotonic()))


def _browser(base: str, *, push: bool = True):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument("--window-size=1920,1080")
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    d.set_window_size(1920, 1080)
    if not push:  # the event stream cannot be opened: the wall falls back to its 1 s version poll
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/v1/events*"]})
    d.get(base + "/wall")
    from dashboards import ids

    deadline = time.time() + 90
    while time.time() < deadline:
        ok = d.execute_script(
            "const e = document.getElementById(arguments[0]); const s = window.sitroomLive &&"
            " Object.values(window.sitroomLive.sources)[0];"
            " return !!(e && /^[0-9,]+$/.test(e.textContent) && s && (s.connected || !arguments[1]));",
            ids.WALL_KPI_INCIDENTS, push)
        if ok:
            break
        time.sleep(0.2)
    d.execute_script("""
        window.__kpi = [];
        const e = document.getElementById(arguments[0]);
        new MutationObserver(() => window.__kpi.push([Date.now(), e.textContent]))
          .observe(e, {childList: true, characterData: true, subtree: true});""", ids.WALL_KPI_INCIDENTS)
    return d


def _stats(lat: list[float]) -> tuple[int, float, float, float]:
    a = np.asarray(lat)
    return len(a), float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200, help="changes to commit")
    ap.add_argument("--rate", type=float, default=10.0, help="changes per second")
    ap.add_argument("--clients", type=int, default=4, help="SSE clients (spread over the 2 workers)")
    ap.add_argument("--browser", action="store_true", help="also measure the wall's DOM in headless Chromium")
    args = ap.parse_args(argv)

    from layers.store.db import migrate

    url = create_scratch("sitroom_bench_push")
    migrate(url)
    log = Path(f"/tmp/sitroom-bench-push-{os.getpid()}.log")
    proc, base = serve(url, log, workers=2)
    clients: list[SSEClient] = []
    driver = driver_poll = None
    try:
        pids: set[int] = set()
        tries = 0
        while len(clients) < args.clients or (len(pids) < 2 and tries < args.clients + 4):
            tries += 1  # a few more clients, hoping both workers get some (gunicorn decides, not us)
            cl = SSEClient(base)
            if cl.resp.status != 200:  # this worker serves its most streams already
                cl.close()
                if len(clients) >= args.clients:
                    break
                continue
            clients.append(cl)
            pids.add(cl.hello.get(timeout=30)["pid"])
        poller = Poller(base)
        if args.browser:
            driver = _browser(base)
            driver_poll = _browser(base, push=False)
        eng = create_engine(url)
        commits: list[tuple[int, float, int]] = []  # (incident id, commit time, history id)
        period = 1.0 / args.rate
        nxt = time.monotonic()
        with eng.connect() as c:
            c.execute(text("SELECT set_config('sitroom.user', 'bench', false)"))
            c.commit()
            base_count = 0
            for k in range(args.count):
                self_wait = nxt - time.monotonic()
                if self_wait > 0:
                    time.sleep(self_wait)
                nxt += period
                fid = c.execute(text(
                    "INSERT INTO incidents (source, external_id, name, kind, status, severity, geom) VALUES "
                    "('bench', :x, :n, 'fire', 'reported', 'general', "
                    "ST_SetSRID(ST_MakePoint(111 + :d, 40.8), 4326)) RETURNING id"),
                    {"x": f"p{k}", "n": f"bench {k}", "d": k * 1e-3}).scalar_one()
                c.commit()
                t_commit = time.time()
                hid = c.execute(text("SELECT max(id) FROM feature_history")).scalar_one()
                c.commit()
                commits.append((int(fid), t_commit, int(hid)))
        from dashboards import ids

        deadline = time.monotonic() + 15  # until every screen shows the last commit (or 15 s)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            shown = [d.execute_script("return document.getElementById(arguments[0]).textContent;",
                                      ids.WALL_KPI_INCIDENTS).replace(",", "")
                     for d in (driver, driver_poll) if d is not None]
            if all(x == str(args.count) for x in shown) and all(len(cl.seen) >= args.count for cl in clients):
                break
        time.sleep(1.0)
        poller.stop.set()
        push: list[float] = []
        missing = 0
        for cl in clients:
            for fid, t0, _ in commits:
                if fid in cl.seen:
                    push.append(cl.seen[fid] - t0)
                else:
                    missing += 1
        poll: list[float] = []
        for _, t0, hid in commits:
            seen = [t for t, v in poller.answers if t >= t0 and v >= hid]
            if seen:
                poll.append(seen[0] - t0)
        rows = [("push: SSE event received", push)]
        rows.append((f"reference: version poll every {POLL_MS} ms", poll))
        for d, label in ((driver, "push: wall KPI updated (Chromium DOM)"),
                         (driver_poll, "reference: wall polling, KPI updated (DOM)")):
            if d is None:
                continue
            marks = d.execute_script("return window.__kpi;")
            dom = []
            for k, (_, t0, _) in enumerate(commits):
                want = base_count + k + 1
                hit = [ms / 1000 for ms, txt in marks if txt.replace(",", "").isdigit()
                       and int(txt.replace(",", "")) >= want and ms / 1000 >= t0 - 0.01]
                if hit:
                    dom.append(hit[0] - t0)
            rows.append((label, dom))
        load = os.getloadavg()
        print(f"{args.count} commits at {args.rate:g}/s; sitroom serve, 2 workers; {args.clients} SSE clients on "
              f"{len(pids)} worker(s); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'path':44s} {'n':>5s} {'p50 s':>8s} {'p95 s':>8s} {'max s':>8s}")
        for label, lat in rows:
            if lat:
                n, p50, p95, mx = _stats(lat)
                print(f"{label:44s} {n:5d} {p50:8.3f} {p95:8.3f} {mx:8.3f}")
            else:
                print(f"{label:44s}     0        -        -        -")
        if push and poll:
            print(f"ratio poll/push: p50 {_stats(poll)[1] / _stats(push)[1]:.1f}x, "
                  f"p95 {_stats(poll)[2] / _stats(push)[2]:.1f}x; SSE events missing: {missing}")
        eng.dispose()
    finally:
        for cl in clients:
            cl.close()
        for d in (driver, driver_poll):
            if d is not None:
                d.quit()
        stop(proc, 20)
        drop_scratch(url)


if __name__ == "__main__":
    main()
