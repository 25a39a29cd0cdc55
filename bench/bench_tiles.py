"""Vector tiles of N incidents (default 100k): tile latency at zoom 6 and 10 against the bare ``ST_AsMVT`` query, and
the bytes the analyst page downloads, against the reference of sending the same incidents as GeoJSON.

Run: ``python -m bench.bench_tiles [--rows 100000] [--seed 20240601]``

In a scratch database ``sitroom_bench_tiles_<pid>`` on this checkout's private cluster (dropped afterwards): the
seeded incidents of :mod:`bench.bench_wall` (spread over 106-122 E, 38-50 N) COPYed into ``incidents``.

- per tile, on one connection, for every tile of the incidents' extent at zoom 6 and a 6x4 block of zoom-10 tiles
  around Hohhot:
  * bare: the textbook query, ``ST_AsMVT`` over ``ST_AsMVTGeom`` of the points in ``ST_TileEnvelope`` (id and
    severity only, every point, no clustering), JIT off as in production;
  * source, uncached: :func:`layers.render.mvt.tile` with its cache emptied first (at zoom 6 incidents are clustered
    per 16-px cell, so it is a different, smaller answer; the bytes are quoted);
  * source, cached: the same call again (cache hit: the version check only);
  p95 and median of each, and the ratio source-uncached / bare;
- over HTTP: ``sitroom serve`` (1 worker, 4 threads), ``GET /api/v1/tiles/incidents/z/x/y.mvt`` for the same tiles:
  first pass (each tile made once) and second pass (cache hits; ETag/304 not used), p95;
- the analyst page (opening on Inner Mongolia, as the demo): headless Chromium at 1920x1080 signs in as an analyst and opens ``/analyst``; when the tile
  count has not moved for 2 s, the transfer sizes of every resource (``performance.getEntriesByType('resource')``
  plus the navigation) are summed, and the vector tiles' share given: a first visit with the browser's cache off
  (every script and style counted), then a return visit;
- reference: the N incidents as a GeoJSON FeatureCollection of points with id, kind, severity, status and time.

The machine is shared: quote the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._scratch import create_scratch, drop_scratch, serve, stop  # noqa: E402
from bench.bench_wall import _browser, _copy, _reference_bytes, _rows  # noqa: E402

HOHHOT = (111.70, 40.82)
EXTENT = (106.0, 38.0, 122.0, 50.0)

BARE = text("""
SELECT ST_AsMVT(q, 'incidents', 4096, 'geom', 'id') FROM (
  SELECT id, severity,
         ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS geom
  FROM incidents
  WHERE deleted_at IS NULL AND geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096), 4326)
) q
""")


def tiles(z: int) -> list[tuple[int, int, int]]:
    from layers.render.tiles import tile_for_lonlat

    if z <= 8:
        x0, y0 = tile_for_lonlat(EXTENT[0], EXTENT[3], z)
        x1, y1 = tile_for_lonlat(EXTENT[2], EXTENT[1], z)
    else:
        cx, cy = tile_for_lonlat(*HOHHOT, z)
        x0, y0, x1, y1 = cx - 3, cy - 2, cx + 2, cy + 1
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def in_process(url: str, z: int) -> dict[str, Any]:
    from layers.render import mvt

    eng = create_engine(url)
    bare, cold, warm, bare_bytes, src_bytes = [], [], [], 0, 0
    try:
        with eng.connect() as c:
            c.execute(text("SET jit = off"))
            for _, x, y in tiles(z):  # one warm-up pass of the bare query (buffers, plans)
                c.execute(BARE, {"z": z, "x": x, "y": y}).scalar_one()
            for _, x, y in tiles(z):
                s, data = _timed(lambda x=x, y=y: bytes(c.execute(BARE, {"z": z, "x": x, "y": y}).scalar_one()
                                                        or b""))
                bare.append(s)
                bare_bytes += len(data)
                mvt.clear_cache()
                s, t = _timed(lambda x=x, y=y: mvt.tile(c, "incidents", z, x, y))
                cold.append(s)
                src_bytes += len(t.data)
                s, t2 = _timed(lambda x=x, y=y: mvt.tile(c, "incidents", z, x, y))
                assert t2.cached
                warm.append(s)
    finally:
        eng.dispose()
    return {"n": len(bare), "bare": bare, "cold": cold, "warm": warm, "bare_bytes": bare_bytes,
            "src_bytes": src_bytes}


def over_http(base: str, z: int) -> tuple[list[float], list[float]]:
    passes: list[list[float]] = [[], []]
    for p in passes:
        for _, x, y in tiles(z):
            s, _ = _timed(lambda x=x, y=y: urllib.request.urlopen(
                f"{base}/api/v1/tiles/incidents/{z}/{x}/{y}.mvt", timeout=120).read())
            p.append(s)
    return passes[0], passes[1]


_RESOURCES = """
const nav = performance.getEntriesByType('navigation').map(e => [e.name, e.transferSize]);
return nav.concat(performance.getEntriesByType('resource').map(e => [e.name, e.transferSize]));
"""


def analyst_bytes(url: str, base: str) -> list[tuple[int, int, int, int]]:
    """(total bytes, tile bytes, tile requests, other requests) of opening /analyst signed in as an analyst: a first
    visit (nothing in the browser's cache), then a return visit."""
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.e2e.conftest import ensure_user, log_in

    driver = _browser()
    try:
        log_in(driver, base, *ensure_user(url, "analyst"), next_path="/analyst")
        WebDriverWait(driver, 120).until(lambda d: d.execute_script(
            "return !!(window.sitroomMaps && window.sitroomMaps.maps['analyst-map'])"))
        seen = [-1, time.monotonic()]

        def settled(d: Any) -> bool:
            n = d.execute_script("return window.sitroomMaps.stats.tiles")
            if n != seen[0]:
                seen[:] = [n, time.monotonic()]
                return False
            return n > 0 and time.monotonic() - seen[1] > 2.0

        WebDriverWait(driver, 180, poll_frequency=0.25).until(settled)
        # now that the server is warm: a first visit (the browser's cache off), then a return visit (cache on)
        out = []
        for cache_off in (True, False):
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": cache_off})
            driver.get(base + "/analyst")
            seen[:] = [-1, time.monotonic()]
            WebDriverWait(driver, 180, poll_frequency=0.25).until(lambda d: d.execute_script(
                "return !!(window.sitroomMaps && window.sitroomMaps.maps['analyst-map'])"))
            WebDriverWait(driver, 180, poll_frequency=0.25).until(settled)
            out.append(driver.execute_script(_RESOURCES))
    finally:
        driver.quit()
    return [_sums(entries) for entries in out]


def _sums(entries: list[Any]) -> tuple[int, int, int, int]:
    tile = [e for e in entries if "/api/v1/tiles/" in e[0]]
    return (sum(int(e[1]) for e in entries), sum(int(e[1]) for e in tile), len(tile), len(entries) - len(tile))


def bench(n: int, seed: int) -> None:
    url = create_scratch("sitroom_bench_tiles")
    from layers.store.db import migrate

    migrate(url)
    rows = _rows(n, seed)
    copy_s = _copy(url, rows)
    ref = _reference_bytes(rows)
    results = {z: in_process(url, z) for z in (6, 10)}
    log = Path(f"/tmp/sitroom-bench-tiles-{os.getpid()}.log")
    from layers.render.tiles import DEMO_BBOX

    os.environ["SITROOM_VIEW_AREA"] = json.dumps(list(DEMO_BBOX))  # the pages open on Inner Mongolia
    proc, base = serve(url, log, workers=1, threads=4)
    try:
        http = {z: over_http(base, z) for z in (6, 10)}
        visits = analyst_bytes(url, base)
    finally:
        stop(proc)
        drop_scratch(url)
    print(f"incidents: {n:,} (seed {seed}), COPY {copy_s:.1f} s; shared machine: compare the ratios")
    for z, r in results.items():
        ratio = p95(r["cold"]) / p95(r["bare"])
        print(f"z{z}: {r['n']} tiles; p95 / median ms: bare ST_AsMVT {1e3 * p95(r['bare']):.1f} / "
              f"{1e3 * statistics.median(r['bare']):.1f}, source uncached {1e3 * p95(r['cold']):.1f} / "
              f"{1e3 * statistics.median(r['cold']):.1f}, cached {1e3 * p95(r['warm']):.2f} / "
              f"{1e3 * statistics.median(r['warm']):.2f}; ratio uncached/bare p95 {ratio:.2f}; bytes bare "
              f"{r['bare_bytes']:,}, source {r['src_bytes']:,}")
        first, second = http[z]
        print(f"z{z} over HTTP (1 worker): first pass p95 {1e3 * p95(first):.1f} ms, second pass (cache hits) "
              f"p95 {1e3 * p95(second):.1f} ms")
    for what, (total, tile_bytes, n_tiles, n_other) in zip(("first visit", "return visit"), visits, strict=True):
        print(f"analyst page, {what} (1920x1080, signed in): {total:,} B in {n_tiles + n_other} requests, of which "
              f"vector tiles {tile_bytes:,} B in {n_tiles} requests; reference / page = {ref / max(total, 1):,.1f}x")
    print(f"reference (the same incidents as raw GeoJSON points): {ref:,} B")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=20240601)
    a = p.parse_args(argv)
    bench(a.rows, a.seed)


if __name__ == "__main__":
    main()
