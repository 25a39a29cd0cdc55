"""The wall with N incidents (default 100k): first render in headless Chromium and bytes per refresh, against the
reference of sending the same incidents as raw GeoJSON points.

Run: ``python -m bench.bench_wall [--rows 100000] [--seed 20240601] [--zoom 5]``
and, for the README screenshot on the demo data: ``python -m bench.bench_wall --demo-screenshot docs/screenshots/wall.png``.

In a scratch database ``sitroom_bench_wall_<pid>`` on this checkout's private cluster (dropped afterwards): seeded
incidents spread over Inner Mongolia (106-122 E, 38-50 N; 24 h of occurrence times; kinds and severities drawn
with fixed weights) COPYed into ``incidents`` (history triggers on, as in production), ``sitroom serve`` (gunicorn,
2 workers) on it, Debian's headless Chromium at 1920x1080.

- first render: from ``driver.get('/wall')`` until the incident KPI shows N and the hex layer has paths;
- bytes per refresh: one incident is inserted; the page's resource timing (``transferSize``) of the requests made
  from the insert until the KPI shows N+1 (the version polls plus the one redraw) is summed; also the bytes of the
  idle polls per second;
- reference: the same N incidents as a GeoJSON FeatureCollection of points with id, kind, severity, status and
  time (what a naive wall would download on every refresh), its byte size and the ratio.
Targets (docs/performance.md): first render < 3 s, < 1 MB per refresh.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._scratch import create_scratch, drop_scratch, serve, stop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

KINDS = ["fire", "flood", "collapse", "traffic", "chemical", "earthquake", "rescue", "medical", "other"]
KIND_P = [0.2, 0.1, 0.05, 0.25, 0.05, 0.02, 0.13, 0.15, 0.05]
SEVERITIES = ["general", "large", "major", "extraordinary"]
SEV_P = [0.7, 0.2, 0.08, 0.02]


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    return {"lon": rng.uniform(106.0, 122.0, n).round(6), "lat": rng.uniform(38.0, 50.0, n).round(6),
            "kind": rng.choice(KINDS, n, p=KIND_P), "severity": rng.choice(SEVERITIES, n, p=SEV_P),
            "at": np.array([now - timedelta(seconds=float(s)) for s in rng.uniform(0, 24 * 3600, n)])}


def _copy(url: str, rows: dict[str, np.ndarray]) -> float:
    import psycopg

    buf = io.StringIO()
    for i in range(rows["lon"].size):
        buf.write(f"bench\tb{i}\t事件{i}\t{rows['kind'][i]}\treported\t{rows['severity'][i]}\t"
                  f"{rows['at'][i].isoformat()}\tSRID=4326;POINT({rows['lon'][i]} {rows['lat'][i]})\n")
    t0 = time.perf_counter()
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as c:
        with c.cursor() as cur, cur.copy("COPY incidents (source, external_id, name, kind, status, severity, "
                                         "occurred_at, geom) FROM STDIN") as cp:
            cp.write(buf.getvalue())
        c.execute("ANALYZE incidents")
    return time.perf_counter() - t0


def _reference_bytes(rows: dict[str, np.ndarray]) -> int:
    feats = [{"type": "Feature", "id": i, "geometry": {"type": "Point", "coordinates": [float(rows["lon"][i]),
                                                                                        float(rows["lat"][i])]},
              "properties": {"id": i, "kind": str(rows["kind"][i]), "severity": str(rows["severity"][i]),
                             "status": "reported", "occurred_at": rows["at"][i].isoformat(timespec="seconds")}}
             for i in range(rows["lon"].size)]
    return len(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False).encode())


def _browser(width: int = 1920, height: int = 1080):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--window-size={width},{height}")
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return d


def _kpi(d) -> str:
    return d.execute_script("const e = document.getElementById('wall-kpi-incidents'); return e ? e.textContent : ''"
                            ).replace(",", "")


def _hex_paths(d) -> int:
    return d.execute_script("return document.querySelectorAll('#wall-map .leaflet-overlay-pane path').length")


def _wait(pred, timeout: float = 60.0, step: float = 0.02) -> float:
    t0 = time.perf_counter()
    while not pred():
        if time.perf_counter() - t0 > timeout:
            raise SystemExit("timed out waiting for the wall")
        time.sleep(step)
    return time.perf_counter() - t0


_RESOURCES_SINCE = """
return performance.getEntriesByType('resource').filter(e => e.startTime >= arguments[0])
  .map(e => [e.name, e.transferSize, e.encodedBodySize]);
"""


def bench(n: int, seed: int, zoom: int) -> None:
    url = create_scratch("sitroom_bench_wall")
    from layers.store.db import migrate

    migrate(url)
    rows = _rows(n, seed)
    copy_s = _copy(url, rows)
    ref = _reference_bytes(rows)
    log = Path(f"/tmp/sitroom-bench-wall-{os.getpid()}.log")
    proc, base = serve(url, log, workers=2, threads=4)
    driver = None
    try:
        driver = _browser()
        # warm the server (first request of each worker imports and builds the app), then measure a cold page
        driver.get(base + "/wall")
        _wait(lambda: _kpi(driver) == str(n) and _hex_paths(driver) > 0, timeout=120)
        renders = []
        for _ in range(3):
            driver.get("about:blank")
            t0 = time.perf_counter()
            driver.get(base + "/wall")
            _wait(lambda: _kpi(driver) == str(n) and _hex_paths(driver) > 0, timeout=120)
            renders.append(time.perf_counter() - t0)
        hexes = _hex_paths(driver)
        # bytes of one refresh: insert one incident and wait until it shows
        time.sleep(2.0)
        mark = driver.execute_script("return performance.now()")
        with create_engine(url).begin() as c:
            c.execute(text("INSERT INTO incidents (source, external_id, name, kind, status, severity, geom) VALUES "
                           "('bench', 'new', 'new', 'fire', 'reported', 'major', "
                           "ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326))"))
        seen_s = _wait(lambda: _kpi(driver) == str(n + 1), timeout=60)
        time.sleep(0.5)
        entries = driver.execute_script(_RESOURCES_SINCE, mark)
        refresh = [e for e in entries if "_dash-update-component" in e[0] or "/wall/" in e[0]]
        refresh_bytes = sum(int(e[1]) for e in refresh)
        # idle: polls only
        mark = driver.execute_script("return performance.now()")
        time.sleep(5.0)
        idle = driver.execute_script(_RESOURCES_SINCE, mark)
        idle_bytes = sum(int(e[1]) for e in idle) / 5.0
    finally:
        if driver is not None:
            driver.quit()
        stop(proc)
        drop_scratch(url)
    print(f"incidents: {n:,} (seed {seed}), COPY {copy_s:.1f} s; wall at zoom {zoom}, 1920x1080 headless Chromium")
    print(f"first render (KPI = {n:,} and {hexes} hex paths drawn): "
          f"median {sorted(renders)[1]:.2f} s, runs {', '.join(f'{r:.2f}' for r in renders)}  (target < 3 s)")
    print(f"insert -> visible on the wall: {seen_s:.2f} s")
    print(f"bytes per refresh: {refresh_bytes:,} B in {len(refresh)} requests "
          f"({', '.join(sorted({e[0].rsplit('/', 1)[-1].split('?')[0] for e in refresh}))})  (target < 1 MB)")
    print(f"idle polling: {idle_bytes:,.0f} B/s")
    print(f"reference (the same incidents as raw GeoJSON points): {ref:,} B; ratio reference / refresh = "
          f"{ref / max(refresh_bytes, 1):,.0f}x")


def demo_screenshot(path: Path) -> None:
    """Load the demo (Inner Mongolia only, as the dashboard tests do) into a scratch database and screenshot /wall."""
    from sqlalchemy.orm import Session

    from layers.command.demo import load_command_demo
    from layers.reference.demo import load_demo
    from layers.store.db import migrate

    url = create_scratch("sitroom_bench_wall")
    proc = driver = None
    try:
        migrate(url)
        eng = create_engine(url)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        import tempfile

        with tempfile.TemporaryDirectory() as tmp, Session(eng) as s, s.begin():
            s.execute(text("SELECT set_config('sitroom.user', 'demo', true)"))
            load_demo(s, seed=2024, res=8, overview_res=7, now=now, all_china=False, raster_dir=tmp)
            load_command_demo(s, now=now)  # the command part: response banners, tasks, deployed resources' lines
        from layers.store import (
            auth,  # the wall signs in once as a display account, as the hall's browser does
        )

        with eng.begin() as c:
            auth.add_user(c, "wall_display", "wall-display-demo", role="display", display_name="指挥大厅")
        eng.dispose()
        proc, base = serve(url, Path(f"/tmp/sitroom-bench-wall-demo-{os.getpid()}.log"), workers=2, threads=4)
        driver = _browser()
        from selenium.webdriver.common.by import By

        driver.get(base + "/login?next=/wall")
        _wait(lambda: driver.find_elements(By.ID, "login-username"), timeout=60)
        driver.find_element(By.ID, "login-username").send_keys("wall_display")
        driver.find_element(By.ID, "login-password").send_keys("wall-display-demo")
        driver.find_element(By.ID, "login-submit").click()
        _wait(lambda: "/login" not in driver.current_url, timeout=60)
        _wait(lambda: _kpi(driver) not in ("", "—") and _hex_paths(driver) > 0, timeout=120)
        time.sleep(3.0)  # tiles and chart settle
        path.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
    finally:
        if driver is not None:
            driver.quit()
        stop(proc)
        drop_scratch(url)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--zoom", type=int, default=5)
    p.add_argument("--demo-screenshot", type=Path, default=None)
    a = p.parse_args()
    if a.demo_screenshot:
        demo_screenshot(a.demo_screenshot)
    else:
        bench(a.rows, a.seed, a.zoom)


if __name__ == "__main__":
    main()
