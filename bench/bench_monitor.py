"""Monitoring benches: ingest of 1M readings against a raw COPY, a station's 7-day series with 50M readings stored
against the bare SQL, and a reading's POST to the pending warning on the duty officer's screen.

Run: ``python -m bench.bench_monitor [--rows 1000000] [--big-rows 50000000] [--screens 20] [--stations N] [--skip-big]``

Everything runs in a scratch database ``sitroom_bench_monitor_<pid>`` on this checkout's private cluster (or on the
server of ``SITROOM_DATABASE_URL``), dropped afterwards. The machine is shared: compare the ratios, not the seconds.

1. **ingest**: ``--rows`` hourly readings of 1,000 weather stations (precipitation, temperature, mean wind, gust)
   as CSV, posted in batches of 100,000 (the API's limit) through :func:`dashboards.services.monitor.ingest_csv`,
   exactly what ``POST /api/v1/observations`` runs: parse, check, quality flags (with each series' stored history
   and neighbours), ``COPY`` + ``INSERT ... ON CONFLICT DO NOTHING``, rules evaluated. Reference: the same rows
   ``COPY``'d straight into the same (emptied) table, its partitions and indexes. Target: 1M in < 20 s.
2. **series**: ``--big-rows`` readings generated in SQL (``generate_series``: 2,000 stations x 5 variables, every 10
   minutes) into the partitioned table; then the 7 days before the end of one random station, all variables, by
   :func:`layers.monitor.observations.series` (what the plot and ``/monitor/stations/<code>/series`` read), 200
   times. Reference: the same statement run bare through the driver (no frame). Target: p95 < 20 ms.
3. **screen**: ``sitroom serve`` (2 workers) and a headless Chromium on ``/monitor``; ``--screens`` times a feed
   POSTs a gale at a fresh group of stations and we time POST start -> the new warning's card in the page (a
   MutationObserver, the machine's clock), with the push event's arrival and the queue's and stations' callback
   answers on the way. ``--stations`` puts that many stations on the map (a province has ~1,000). Reference: the
   POST's own round trip. Target: p95 < 2 s.

Last figures (2026-12-05, docs/monitoring.md): screen with 1,000 stations p95 29.6 s -> 0.64 s; ingest 1M 10.9 s
(3.8x COPY) -> 9.8 s (3.1x) at load ~1; series at 50M rows p95 11.8 ms (1.72x the bare statement).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

from bench._scratch import create_scratch, drop_scratch, serve, stop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

BATCH = 100_000
END = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)


def _stats(x: list[float]) -> str:
    a = np.asarray(x) * 1000
    return f"p50 {np.percentile(a, 50):8.1f} ms  p95 {np.percentile(a, 95):8.1f} ms  max {a.max():8.1f} ms  (n={len(a)})"


def _stations(engine: Any, n: int, *, prefix: str, kind: str = "weather") -> list[tuple[int, str]]:
    """``n`` stations on a grid over Inner Mongolia's south (about 25 km apart); (id, code)."""
    side = int(np.ceil(np.sqrt(n)))
    rows = [{"source": "bench", "external_id": f"{prefix}{k:05d}", "code": f"{prefix}{k:05d}", "name": f"站{k}",
             "kind": kind, "status": "active", "interval_s": 3600,
             "geom": f"SRID=4326;POINT({106.0 + 0.3 * (k % side):.4f} {39.0 + 0.22 * (k // side):.4f})"}
            for k in range(n)]
    from layers.store.models import Station

    with Session(engine) as s, s.begin():
        s.execute(insert(Station), rows)
        return [(int(i), str(c)) for i, c in s.execute(text(
            "SELECT id, code FROM stations WHERE code LIKE :p ORDER BY code"), {"p": f"{prefix}%"})]


def _readings_csv(codes: list[str], hours: int, *, seed: int) -> list[bytes]:
    """Hourly readings of every station, oldest first, as CSV batches of at most BATCH rows."""
    rng = np.random.default_rng(seed)
    variables = (("precipitation", "mm", "3600"), ("temperature", "degC", ""), ("wind_speed", "m/s", ""),
                 ("wind_gust", "m/s", ""))
    per_hour = len(codes) * len(variables)
    hours_per_batch = max(1, BATCH // per_hour)
    out = []
    start = END - timedelta(hours=hours - 1)
    for h0 in range(0, hours, hours_per_batch):
        buf = io.StringIO()
        buf.write("station,variable,value,unit,observed_at,period_s\n")
        for h in range(h0, min(hours, h0 + hours_per_batch)):
            t = (start + timedelta(hours=h)).isoformat()
            rain = np.where(rng.random(len(codes)) < 0.05, np.round(rng.gamma(1.2, 2.0, len(codes)), 1), 0.0)
            temp = np.round(15 + 6 * np.sin(h / 24 * 2 * np.pi) + rng.normal(0, 0.6, len(codes)), 1)
            wind = np.round(np.clip(3.5 + rng.normal(0, 1.0, len(codes)), 0.2, None), 1)
            gust = np.round(wind * 1.4, 1)
            for vals, (var, unit, period) in zip((rain, temp, wind, gust), variables, strict=True):
                for code, v in zip(codes, vals, strict=True):
                    buf.write(f"{code},{var},{v},{unit},{t},{period}\n")
        out.append(buf.getvalue().encode())
    return out


def bench_ingest(url: str, rows: int) -> None:
    from dashboards.services.monitor import ingest_csv
    from layers.store.db import driver_connection

    engine = create_engine(url)
    stations = _stations(engine, 1000, prefix="B")
    codes = [c for _, c in stations]
    hours = max(1, rows // (len(codes) * 4))
    batches = _readings_csv(codes, hours, seed=7)
    n = sum(b.count(b"\n") - 1 for b in batches)
    print(f"ingest: {n:,} readings of {len(codes)} stations over {hours} h in {len(batches)} batches")
    started = time.perf_counter()
    per_batch = []
    flagged = raised = 0
    for b in batches:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            report = ingest_csv(conn, b, now=END + timedelta(minutes=5))
        per_batch.append(time.perf_counter() - t0)
        flagged += sum(report["flagged"].values())
        raised += sum(1 for w in report["warnings"] if w["action"] == "raised")
    ours = time.perf_counter() - started
    with engine.connect() as c:
        stored = c.execute(text("SELECT count(*) FROM observations")).scalar_one()
        dump = io.StringIO()
        raw = driver_connection(c)
        with raw.cursor().copy("COPY (SELECT station_id, variable, observed_at, value, unit, period_s, quality"
                               " FROM observations) TO STDOUT") as cp:
            for chunk in cp:
                dump.write(bytes(chunk).decode())
        c.commit()
    with engine.begin() as c:
        c.execute(text("TRUNCATE observations"))
    t0 = time.perf_counter()
    with engine.begin() as c:
        raw = driver_connection(c)
        with raw.cursor().copy("COPY observations (station_id, variable, observed_at, value, unit, period_s, quality)"
                               " FROM STDIN") as cp:
            cp.write(dump.getvalue())
    reference = time.perf_counter() - t0
    print(f"  ours (check, flag, COPY + merge, evaluate): {ours:6.1f} s  ({n / ours:,.0f} readings/s; batches "
          f"{min(per_batch):.1f}..{max(per_batch):.1f} s); stored {stored:,}, flagged {flagged}, warnings {raised}")
    print(f"  reference (raw COPY of the same rows into the same table): {reference:6.1f} s  -> ratio "
          f"{ours / reference:.1f}x; target < 20 s for 1M: {'met' if ours < 20 * n / 1e6 else 'NOT met'}")
    engine.dispose()


def bench_series(url: str, big_rows: int, queries: int = 200) -> None:
    from layers.monitor.observations import fetch_rows, series

    engine = create_engine(url)
    n_st, n_var = 2000, 5
    steps = max(1, big_rows // (n_st * n_var))
    stations = _stations(engine, n_st, prefix="S")
    ids = np.array([i for i, _ in stations])
    start = END - timedelta(minutes=10 * (steps - 1))
    t0 = time.perf_counter()
    with engine.begin() as c:
        m = datetime(start.year, start.month, 1, tzinfo=UTC)
        while m <= END:
            c.execute(text("SELECT sitroom_observation_partition(CAST(:m AS date))"), {"m": m.date().isoformat()})
            m = datetime(m.year + (m.month == 12), m.month % 12 + 1, 1, tzinfo=UTC)
    with engine.begin() as c:
        c.execute(text(
            "INSERT INTO observations (station_id, variable, observed_at, value, unit, period_s, quality)"
            " SELECT s.id, v.variable, :start + make_interval(mins => 10 * k),"
            "  CASE v.variable WHEN 'temperature' THEN 15 + 8 * sin(k / 144.0 * 2 * pi()) + (s.id % 7)"
            "   WHEN 'precipitation' THEN CASE WHEN (k + s.id) % 37 = 0 THEN 1.2 ELSE 0 END"
            "   ELSE 3 + ((k * 7 + s.id) % 11) / 3.0 END,"
            "  v.unit, CASE WHEN v.variable = 'precipitation' THEN 600 END, 'good'"
            " FROM generate_series(0, :steps - 1) AS k"
            " CROSS JOIN (SELECT id FROM stations WHERE code LIKE 'S%') s"
            " CROSS JOIN (VALUES ('precipitation', 'mm'), ('temperature', 'degC'), ('wind_speed', 'm/s'),"
            "  ('wind_gust', 'm/s'), ('visibility', 'm')) AS v(variable, unit)"), {"start": start, "steps": steps})
    generated = time.perf_counter() - t0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        # what autovacuum does to a partition within a minute of a load (insert-triggered since PostgreSQL 13): the
        # visibility map lets a series be read from the key's index alone
        c.execute(text("VACUUM ANALYZE observations"))
        total = c.execute(text("SELECT count(*) FROM observations")).scalar_one()
        size = c.execute(text("SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits"
                              " WHERE inhparent = 'observations'::regclass")).scalar_one()
    print(f"series: {total:,} readings stored ({size}, generated in SQL in {generated:.0f} s: {steps} steps of 10 min "
          f"x {n_st} stations x {n_var} variables)")
    rng = np.random.default_rng(3)
    variables = ["precipitation", "temperature", "wind_speed", "wind_gust", "visibility"]
    ours, bare, sizes = [], [], []
    with engine.connect() as c:
        for _ in range(queries):
            sid = int(rng.choice(ids))
            t0 = time.perf_counter()
            df = series(c, sid, variables, END - timedelta(days=7), END)
            ours.append(time.perf_counter() - t0)
            sizes.append(len(df))
            t0 = time.perf_counter()
            fetch_rows(c, "SELECT variable, observed_at, value, unit, period_s, quality, id FROM observations"
                          " WHERE station_id = %(s)s AND variable = ANY(%(v)s::text[]) AND observed_at > %(t0)s"
                          " AND observed_at <= %(t1)s ORDER BY variable, observed_at",
                       {"s": sid, "v": variables, "t0": END - timedelta(days=7), "t1": END})
            bare.append(time.perf_counter() - t0)
    print(f"  7-day series of one station ({int(np.median(sizes)):,} readings): {_stats(ours)}")
    print(f"  reference (the bare statement, rows as tuples):      {_stats(bare)}  -> p95 ratio "
          f"{np.percentile(ours, 95) / np.percentile(bare, 95):.2f}x; target p95 < 20 ms: "
          f"{'met' if np.percentile(ours, 95) < 0.020 else 'NOT met'}")
    engine.dispose()


def _browser(base: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from dashboards import ids

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument("--window-size=1920,1080")
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    d.get(base + "/monitor")
    deadline = time.time() + 120
    while time.time() < deadline:
        if d.execute_script("const s = window.sitroomLive && Object.values(window.sitroomLive.sources)[0];"
                            " return !!(s && s.connected && document.getElementById(arguments[0]).textContent);",
                            ids.MONITOR_SUMMARY):
            break
        time.sleep(0.3)
    d.execute_script("""
        window.__cards = [];
        window.__pushes = [];
        window.__answers = [];
        const q = document.getElementById(arguments[0]);
        new MutationObserver(() => window.__cards.push([Date.now(),
            [...q.querySelectorAll('.sr-mon-card')].map(c => c.dataset.id)]))
          .observe(q, {childList: true, subtree: true});
        // the push event naming the new hazard, and each Dash callback answer (when its body has arrived)
        Object.values(window.sitroomLive.sources)[0].es.addEventListener('change', ev => {
            try { window.__pushes.push([Date.now(), JSON.parse(ev.data).ids || []]); } catch (e) {} });
        const fetch0 = window.fetch;
        window.fetch = function (url, init) {
            const t0 = Date.now();
            let out = '';
            try { out = JSON.parse(init.body).output; } catch (e) {}
            return fetch0.apply(this, arguments).then(r => r.clone().text().then(() => {
                if (String(url).indexOf('_dash-update-component') >= 0) window.__answers.push([t0, Date.now(), out]);
                return r; }));
        };""", ids.MONITOR_QUEUE)
    return d


def bench_screen(url: str, screens: int, n_stations: int = 0) -> None:
    from dashboards import ids
    from layers.store import auth

    engine = create_engine(url)
    stations = _stations(engine, max(3 * screens, n_stations), prefix="W")
    codes = [c for _, c in stations]
    with engine.begin() as c:
        token = auth.create_token(c, "bench-feed", layers=["observations"], access="write", created_by="bench")
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    def post(readings: list[dict[str, Any]]) -> dict[str, Any]:
        req = urllib.request.Request(base + "/api/v1/observations", data=json.dumps(readings).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def hourly(code: str, values: list[float], end: datetime) -> list[dict[str, Any]]:
        return [{"station": code, "variable": "wind_speed", "value": v, "unit": "m/s",
                 "observed_at": (end - timedelta(hours=len(values) - 1 - k)).isoformat()} for k, v in enumerate(values)]

    log = Path(tempfile.gettempdir()) / f"bench_monitor_serve_{id(engine)}.log"
    proc, base = serve(url, log, workers=2, threads=4)
    driver = None
    try:
        post([r for c in codes for r in hourly(c, [3.0, 3.5, 4.0, 3.8], now - timedelta(hours=1))])
        driver = _browser(base)
        round_trip, on_screen, pushed, answered, mapped = [], [], [], [], []
        for k in range(screens):
            group = codes[3 * k: 3 * k + 3]  # a gale three neighbouring stations share
            gale = [r for c in group for r in hourly(c, [19.0, 20.5], now + timedelta(minutes=1))]
            t0 = time.time()
            report = post(gale)
            t1 = time.time()
            new = {str(w["id"]) for w in report["warnings"] if w["action"] == "raised"}
            deadline = time.time() + 30
            seen = None
            while time.time() < deadline and seen is None:
                for ts, present in driver.execute_script("return window.__cards;"):
                    if new & set(present) and ts / 1000 >= t0:
                        seen = ts / 1000
                        break
                time.sleep(0.05)
            round_trip.append(t1 - t0)
            on_screen.append((seen or float("inf")) - t0)
            while time.time() < deadline and not any(  # the stations' redraw too, before the next gale
                    ids.MONITOR_STATION_LAYER in out and start / 1000 >= t0
                    for start, _, out in driver.execute_script("return window.__answers;")):
                time.sleep(0.05)
            new_ids = {int(i) for i in new}
            push = min((ts / 1000 for ts, hz in driver.execute_script("return window.__pushes;")
                        if new_ids & set(hz) and ts / 1000 >= t0), default=float("inf"))
            pushed.append(push - t0)
            answers = driver.execute_script("return window.__answers;")
            answered.append(min((end / 1000 for start, end, out in answers
                                 if start / 1000 >= push and ids.MONITOR_QUEUE in out), default=float("inf")) - t0)
            mapped.append(min((end / 1000 for start, end, out in answers
                               if start / 1000 >= push and ids.MONITOR_STATION_LAYER in out), default=float("inf")) - t0)
        print(f"screen: POST of a gale at 3 of {len(codes)} stations -> the pending warning on /monitor ({screens} "
              "times, 2 workers)")
        print(f"  POST round trip (check, store, evaluate, commit): {_stats(round_trip)}")
        print(f"  POST start -> push event in the page:             {_stats(pushed)}")
        print(f"  POST start -> the queue's callback answered:      {_stats(answered)}")
        print(f"  POST start -> the stations' callback answered:    {_stats(mapped)}")
        print(f"  POST start -> card on the officer's screen:        {_stats(on_screen)}  -> p95 ratio "
              f"{np.percentile(on_screen, 95) / np.percentile(round_trip, 95):.1f}x; target p95 < 2 s: "
              f"{'met' if np.percentile(on_screen, 95) < 2.0 else 'NOT met'}")
    finally:
        if driver is not None:
            driver.quit()
        stop(proc)
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--big-rows", type=int, default=50_000_000)
    ap.add_argument("--screens", type=int, default=20)
    ap.add_argument("--stations", type=int, default=0,
                    help="stations on the screen part's map (at least 3 x --screens; a province has ~1,000)")
    ap.add_argument("--skip-big", action="store_true", help="leave out the 50M-row series bench")
    ap.add_argument("--only", choices=["ingest", "series", "screen"], default=None)
    args = ap.parse_args(argv)
    from layers.store.db import migrate

    print("note: the machine is shared by other work; the ratios are the figures to compare; load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    for part in ("ingest", "screen", "series"):
        if args.only not in (None, part) or (part == "series" and args.skip_big):
            continue
        url = create_scratch("sitroom_bench_monitor")
        try:
            migrate(url)
            if part == "ingest":
                bench_ingest(url, args.rows)
            elif part == "screen":
                bench_screen(url, args.screens, args.stations)
            else:
                bench_series(url, args.big_rows)
        finally:
            drop_scratch(url)


if __name__ == "__main__":
    main()
