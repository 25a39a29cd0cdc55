"""Load test on 127.0.0.1: 50 wall clients, 10 analysts and a 20 updates/s feed against ``sitroom serve``.

Run: ``.venv/bin/python -m bench.bench_load --minutes 10`` (default 10; ``--minutes 2`` for a short run).

What it does
------------
- a database of its own (``sitroom_bench_load`` on the private cluster, or ``--url``), migrated and filled once with
  the offline demo (Inner Mongolia regions, modelled population at res 8, the drill: resources, shelters, hazards),
  kept for the next run (the incidents earlier runs' feeds wrote are removed first, so every run starts from the
  same ~2,700 incidents); an admin-scoped write token for the clients;
- ``sitroom serve`` (gunicorn, its default workers x 8 threads; ``--workers`` to change) on a free port, as in
  production;
- 50 **wall** clients doing what the wall page does: ``GET /api/v1/wall/version`` every second, and
  ``GET /api/v1/wall/snapshot`` when its ``cursor`` moved (at most once a second each; the page does the same on a
  pushed change, so polling costs the server as much as push here). Each snapshot must be at least as new as the
  version the wall had seen; the feed's incidents in its ticker give the time from a write's acknowledgement to a
  wall's screen;
- 10 **analysts**: ``POST /api/v1/analysis/impact`` (a ~5 km zone at a random drill point) then
  ``GET /api/v1/analysis/nearest`` (k=3), one request per second each;
- one **feed** with one incident due every 50 ms (20/s) to ``POST /api/v1/layers/incidents`` with its own source
  and a unique id, paced by the clock and sent on 16 connections (``--feed-connections``); late writes are not
  skipped, and the writes due when the run ends are still sent (the feed keeps up when at most 2 s of them wait).

At the end it prints p50/p95/max and errors per request kind, then checks that every feed write is in the store
(by source and external id) and on the wall (the wall snapshot's incident count grew by the feed's writes, and
every written incident is listed by ``GET /api/v1/layers/incidents?source=``). Plain threads and ``requests``;
locust (the ``bench`` extra) is not needed. The load generator shares the 2 cores with the server: the figures are
for the whole machine.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import requests

from bench._scratch import serve
from bench._scratch import stop as stop_server

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "sitroom_bench_load"
WALLS, ANALYSTS, FEED_PER_S = 50, 10, 20.0
#: a write takes up to ~1 s at the p95 under this load: 16 connections keep 20/s going (6 capped it near 17/s)
FEED_CONNECTIONS = 16
#: the feed keeps up when at most this many seconds of due writes wait at the end of the run
MAX_BEHIND_S = 2.0
FEED_NAME = "负载测试"
#: the snapshot's JSON starts with its version (read without parsing ~100 kB per answer in the load generator)
_SNAP_VERSION = re.compile(rb'\{"version":(\d+)')


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.times[kind].append(seconds)
            if error:
                self.errors[kind].append(error)


def _timed(stats: Stats, kind: str, fn: Any, *args: Any, **kw: Any) -> requests.Response | None:
    t0 = time.perf_counter()
    try:
        r = fn(*args, timeout=60, **kw)
    except requests.RequestException as e:
        stats.record(kind, time.perf_counter() - t0, f"{type(e).__name__}: {e}"[:200])
        return None
    stats.record(kind, time.perf_counter() - t0, None if r.ok else f"HTTP {r.status_code}: {r.text[:200]}")
    return r


def prepare(url: str | None) -> tuple[str, str, list[tuple[float, float]]]:
    """The bench database (created and loaded on first use), an admin write token, and points to query around."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from layers.store import auth, cluster
    from layers.store.db import migrate
    from layers.store.settings import get_settings

    if url is None:
        info = cluster.up(get_settings().state_dir)
        admin = create_engine(info.url_for("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DB_NAME}).first():
                c.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
        admin.dispose()
        url = info.url_for(DB_NAME)
    migrate(url)
    eng = create_engine(url)
    with eng.connect() as c:
        loaded = c.execute(text("SELECT count(*) FROM population_cells")).scalar_one() > 0
    if not loaded:
        from layers.reference.demo import load_demo

        print("loading the demo (Inner Mongolia) into", make_url(url).database, flush=True)
        with Session(eng) as s, s.begin():
            s.execute(text("SELECT set_config('sitroom.user', 'bench', true)"))
            load_demo(s, seed=11, res=8, overview_res=7, all_china=False, cell_deg=0.02,
                      raster_dir=get_settings().state_dir / "bench_load_rasters")
        with eng.connect() as c:
            c.execute(text("ANALYZE"))
            c.commit()
    with eng.begin() as c:  # every run starts from the demo: earlier runs' feed writes go
        c.execute(text("SELECT set_config('sitroom.user', 'bench', true)"))
        gone = c.execute(text("DELETE FROM incidents WHERE source LIKE 'loadtest-%'")).rowcount
    if gone:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE incidents"))
        print(f"removed {gone} incidents of earlier runs", flush=True)
    with eng.begin() as c:
        name = f"bench-load-{os.getpid()}-{int(time.time())}"
        secret = auth.create_token(c, name, layers=["*"], access="write", created_by="bench")
        pts = [(float(x), float(y)) for x, y in c.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM resources WHERE deleted_at IS NULL ORDER BY id LIMIT 500")).all()]
    eng.dispose()
    if not pts:
        raise SystemExit("the bench database has no resources: delete it and run again")
    return url, secret, pts


#: feed incident id -> when its write was acknowledged (monotonic), for the time until a wall shows it
ACKED: dict[int, float] = {}


def wall_client(base: str, headers: dict[str, str], stats: Stats, stop: threading.Event, rng: random.Random) -> None:
    s = requests.Session()
    s.headers.update(headers)
    last = None
    shown: set[int] = set()
    stop.wait(rng.uniform(0, 1))  # the walls do not all poll on the same tick
    while not stop.is_set():
        t0 = time.monotonic()
        r = _timed(stats, "wall version", s.get, f"{base}/api/v1/wall/version")
        if r is not None and r.ok:
            seen = r.json()
            key = (seen["cursor"], seen["population"])  # what the wall page compares
            if key != last:
                snap = _timed(stats, "wall snapshot", s.get, f"{base}/api/v1/wall/snapshot")
                last = key
                if snap is not None and snap.ok:
                    m = _SNAP_VERSION.match(snap.content[:64])
                    got = int(m.group(1)) if m else -1
                    stats.record("snapshot fresh", 0.0, None if got >= seen["version"] else
                                 f"a snapshot of version {got} after the wall saw version {seen['version']}")
                    _record_shown(stats, snap, shown)
        stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))


def _record_shown(stats: Stats, snap: requests.Response, shown: set[int]) -> None:
    """Feed writes in this snapshot's ticker (the 20 newest incidents) that this wall had not shown yet: the time
    from the write's acknowledgement to the snapshot's arrival ("on wall"; 0 when it arrived before the ack)."""
    now = time.monotonic()
    for item in snap.json().get("ticker", []):
        fid = int(item["id"])
        if fid in shown or not str(item.get("name", "")).startswith(FEED_NAME):
            continue
        shown.add(fid)
        acked = ACKED.get(fid)
        stats.record("on wall", 0.0 if acked is None else max(0.0, now - acked), None)


def _zone(lon: float, lat: float, radius_m: float = 5000.0, n: int = 24) -> dict[str, Any]:
    dlat = radius_m / 111_320.0
    dlon = dlat / math.cos(math.radians(lat))
    ring = [[lon + dlon * math.cos(2 * math.pi * i / n), lat + dlat * math.sin(2 * math.pi * i / n)] for i in range(n)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def analyst(base: str, headers: dict[str, str], stats: Stats, stop: threading.Event, rng: random.Random,
            pts: list[tuple[float, float]]) -> None:
    s = requests.Session()
    s.headers.update(headers)
    stop.wait(rng.uniform(0, 1))
    while not stop.is_set():
        t0 = time.monotonic()
        lon, lat = rng.choice(pts)
        lon, lat = lon + rng.uniform(-0.05, 0.05), lat + rng.uniform(-0.05, 0.05)
        _timed(stats, "impact", s.post, f"{base}/api/v1/analysis/impact", json={"geometry": _zone(lon, lat)})
        _timed(stats, "nearest", s.get, f"{base}/api/v1/analysis/nearest", params={"lon": lon, "lat": lat, "k": 3})
        stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))


def feed(base: str, headers: dict[str, str], stats: Stats, stop: threading.Event, rng: random.Random,
         pts: list[tuple[float, float]], source: str, written: dict[str, int], senders: int) -> None:
    """One write due every 1/20 s by the clock, sent on ``senders`` connections (a write takes longer than 50 ms
    under load). ``feed lag`` is how late each write left (sent minus due). When the run ends, the writes already
    due are still sent (every one must be stored), and how many were waiting is recorded: more than
    :data:`MAX_BEHIND_S` seconds' worth means the server did not keep up."""
    import queue

    jobs: queue.Queue[tuple[int, float] | None] = queue.Queue()
    lock = threading.Lock()

    def send() -> None:
        s = requests.Session()
        s.headers.update(headers)
        while (job := jobs.get()) is not None:
            n, due = job
            stats.record("feed lag", max(0.0, time.monotonic() - due), None)
            lon, lat = pts[n % len(pts)]
            fid = f"load-{n}"
            body = {"type": "Feature", "id": fid, "geometry": {"type": "Point", "coordinates": [
                round(lon + ((n * 7919) % 2000 - 1000) / 10000, 6), round(lat + ((n * 104729) % 2000 - 1000) / 10000, 6)]},
                "properties": {"name": f"{FEED_NAME} {n}", "kind": ("fire", "flood", "traffic", "rescue")[n % 4],
                               "status": "reported"}}
            r = _timed(stats, "feed write", s.post, f"{base}/api/v1/layers/incidents", params={"source": source},
                       json=body)
            if r is not None and r.ok:
                with lock:
                    written[fid] = int(r.json()["ids"][0])
                    ACKED[written[fid]] = time.monotonic()

    workers = [threading.Thread(target=send, daemon=True) for _ in range(senders)]
    for w in workers:
        w.start()
    period = 1.0 / FEED_PER_S
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        due = start + n * period
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        jobs.put((n, due))
        n += 1
    behind = jobs.qsize()
    stats.record("feed backlog", behind / FEED_PER_S, None if behind <= MAX_BEHIND_S * FEED_PER_S else
                 f"{behind} due writes were still waiting when the run ended ({behind / FEED_PER_S:.1f} s behind)")
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))] * 1000


def report(stats: Stats, seconds: float) -> bool:
    print(f"\n{'request':<14} {'count':>7} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'errors':>7}")
    ok = True
    backlog = stats.errors.get("feed backlog", [])
    if backlog:
        ok = False
        print(f"feed backlog: {backlog[0]}")
    lag = stats.times.get("feed lag", [])
    if lag:
        waiting = stats.times.get("feed backlog", [0.0])[0]
        print(f"feed: {len(lag)} writes sent, {len(lag) / seconds:.1f}/s; lag from due to sent p50 {_pct(lag, .5):.0f} "
              f"ms, p95 {_pct(lag, .95):.0f} ms, max {max(lag) * 1000:.0f} ms; {waiting:.2f} s of writes waiting at "
              "the end (sent after it)")
    for kind in ("wall version", "wall snapshot", "impact", "nearest", "feed write"):
        xs = stats.times.get(kind, [])
        errs = stats.errors.get(kind, [])
        ok &= not errs
        if xs:
            print(f"{kind:<14} {len(xs):>7} {len(xs) / seconds:>7.1f} {_pct(xs, .5):>8.1f} {_pct(xs, .95):>8.1f} "
                  f"{max(xs) * 1000:>8.1f} {len(errs):>7}")
        for e in sorted(set(errs))[:5] if kind != "feed backlog" else []:
            print(f"    {kind} error: {e}")
    shown = stats.times.get("on wall", [])
    if shown:
        print(f"feed write acknowledged -> in a wall's snapshot (walls poll each second; {len(shown)} sightings): "
              f"p50 {_pct(shown, .5):.0f} ms, p95 {_pct(shown, .95):.0f} ms, max {max(shown) * 1000:.0f} ms")
    fresh, stale = stats.times.get("snapshot fresh", []), stats.errors.get("snapshot fresh", [])
    ok &= not stale
    print(f"wall snapshots at least as new as the version the wall had seen: {len(fresh) - len(stale)} of {len(fresh)}"
          + (f" (e.g. {stale[0]})" if stale else ""))
    return ok


def check_feed(base: str, headers: dict[str, str], url: str, source: str, written: dict[str, int],
               wall_before: int | None) -> bool:
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.connect() as c:
        stored = set(c.execute(text("SELECT external_id FROM incidents WHERE source = :s AND deleted_at IS NULL"),
                               {"s": source}).scalars())
    eng.dispose()
    missing = sorted(set(written) - stored)
    print(f"\nfeed: {len(written)} writes acknowledged, {len(stored)} in the store, missing {len(missing)}"
          + (f" (e.g. {missing[:5]})" if missing else ""))
    ids = set(written.values())
    listed: set[int] = set()
    after = min(ids) - 1 if ids else 0
    while ids:  # the layer API, paged by id cursor from our first write
        r = requests.get(f"{base}/api/v1/layers/incidents", params={"limit": 10000, "after": after},
                         headers=headers, timeout=120)
        if not r.ok:
            print(f"layer API: HTTP {r.status_code} {r.text[:200]}")
            break
        feats = r.json().get("features", [])
        if not feats:
            break
        got = [int(f["id"]) for f in feats]
        listed.update(got)
        after = max(got)
    on_api = len(ids & listed)
    print(f"layer API lists {on_api} of {len(ids)} written incidents")
    wall_after = _wall_incidents(base, headers)
    grew = None if wall_before is None or wall_after is None else wall_after - wall_before
    print(f"wall snapshot: active incidents {wall_before} -> {wall_after} (grew {grew}; feed wrote {len(written)})")
    return not missing and len(stored) == len(written) and on_api == len(ids) and grew == len(written)


def _wall_incidents(base: str, headers: dict[str, str]) -> int | None:
    r = requests.get(f"{base}/api/v1/wall/snapshot", headers=headers, timeout=60)
    if not r.ok:
        return None
    return int(r.json()["kpis"]["incidents"]["active"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--url", default=None, help="SQLAlchemy URL of the database (default: the bench database)")
    ap.add_argument("--walls", type=int, default=WALLS)
    ap.add_argument("--analysts", type=int, default=ANALYSTS)
    ap.add_argument("--feed-connections", type=int, default=FEED_CONNECTIONS,
                    help="connections the feed sends its writes on (a write still in flight does not hold up the next)")
    ap.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: sitroom serve's)")
    args = ap.parse_args(argv)
    url, secret, pts = prepare(args.url)
    log = Path("/tmp") / f"sitroom-bench-load-{os.getpid()}.log"
    proc, base = serve(url, log, workers=args.workers)
    headers = {"Authorization": f"Bearer {secret}"}
    source = f"loadtest-{os.getpid()}-{int(time.time())}"
    stats, stop = Stats(), threading.Event()
    written: dict[str, int] = {}
    try:
        wall_before = _wall_incidents(base, headers)
        rng = random.Random(7)
        threads = [threading.Thread(target=wall_client, args=(base, headers, stats, stop, random.Random(rng.random())),
                                    daemon=True) for _ in range(args.walls)]
        threads += [threading.Thread(target=analyst, args=(base, headers, stats, stop, random.Random(rng.random()), pts),
                                     daemon=True) for _ in range(args.analysts)]
        threads.append(threading.Thread(target=feed, args=(base, headers, stats, stop, random.Random(rng.random()),
                                                           pts, source, written, args.feed_connections), daemon=True))
        print(f"{args.walls} walls, {args.analysts} analysts, feed {FEED_PER_S:g}/s on {args.feed_connections} "
              f"connections for {args.minutes:g} min "
              f"against {base} (server log {log})", flush=True)
        t0 = time.monotonic()
        for t in threads:
            t.start()
        stop.wait(args.minutes * 60)
        stop.set()
        seconds = time.monotonic() - t0
        for t in threads:
            t.join(timeout=90)
        ok = report(stats, seconds)
        ok &= check_feed(base, headers, url, source, written, wall_before)
        print("\nRESULT:", "zero errors, every feed write stored and shown" if ok else "FAILED (see above)")
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
