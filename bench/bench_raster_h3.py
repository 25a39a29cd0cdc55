"""Population raster -> H3 res 8: ``geoops.h3cells.grid_to_cells`` vs a plain per-pixel ``h3.latlng_to_cell``.

A seeded synthetic WorldPop-like raster (EPSG:4326, 3 arc-second pixels, float32, 10% nodata) of ~25M
pixels is processed in windows of 1024 rows, as ``sitroom population build`` reads a GeoTIFF. The
reference is timed on a 200k-pixel subsample and extrapolated (running it on 25M pixels takes minutes);
the subsample's cells and sums are also checked against grid_to_cells on the same pixels.

Run: ``.venv/bin/python -m bench raster_h3`` (``--pixels N`` to change the size).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import h3.api.basic_int as h3i
import numpy as np

from geoops.h3cells import grid_to_cells, merge_cell_sums

PX = 1 / 1200          # 3 arc-seconds
RES = 8


def _raster(rng: np.random.Generator, nrows: int, ncols: int) -> np.ndarray:
    v = rng.gamma(0.6, 8.0, size=(nrows, ncols)).astype(np.float32)
    v[rng.random((nrows, ncols)) < 0.10] = -99999.0
    return v


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench_raster_h3")
    ap.add_argument("--pixels", type=float, default=25e6)
    ap.add_argument("--window-rows", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    ncols = 6000                                              # 5 degrees of longitude
    nrows = max(1, int(a.pixels // ncols))
    west, north = 110.0, 45.0
    data = _raster(rng, nrows, ncols)
    print(f"raster {nrows} x {ncols} = {data.size / 1e6:.1f}M px, EPSG:4326 3\", res {RES}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    t0, c0 = time.perf_counter(), time.process_time()
    parts = []
    for r in range(0, nrows, a.window_rows):
        win = data[r: r + a.window_rows]
        parts.append(grid_to_cells(win, transform=(PX, 0.0, west, 0.0, -PX, north - r * PX), crs="EPSG:4326",
                                   res=RES, nodata=-99999.0, workers=a.workers))
    cells, sums = merge_cell_sums(parts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    valid = data[data != -99999.0].astype(np.float64)
    total = math.fsum(valid.tolist())
    rel = abs(math.fsum(sums.tolist()) - total) / total
    fast = data.size / wall

    # reference: plain per-pixel h3 on a random subsample, extrapolated
    n = 200_000
    rr, cc = rng.integers(0, nrows, n), rng.integers(0, ncols, n)
    lon, lat = west + (cc + 0.5) * PX, north - (rr + 0.5) * PX
    t1 = time.perf_counter()
    _ref = np.array([h3i.latlng_to_cell(y, x, RES) for y, x in zip(lat.tolist(), lon.tolist(), strict=False)], dtype=np.int64)
    ref_rate = n / (time.perf_counter() - t1)
    # exactness spot check on a 60 x 400 window: per-pixel h3 sums == grid_to_cells sums
    win = np.where(data[:60, :400] == -99999.0, np.nan, data[:60, :400]).astype(np.float64)
    wc, ws = grid_to_cells(win, transform=(PX, 0.0, west, 0.0, -PX, north), crs="EPSG:4326", res=RES)
    r2, c2 = np.nonzero(~np.isnan(win))
    pc = np.array([h3i.latlng_to_cell(north - (i + 0.5) * PX, west + (j + 0.5) * PX, RES)
                   for i, j in zip(r2.tolist(), c2.tolist(), strict=False)], dtype=np.int64)
    u, inv = np.unique(pc, return_inverse=True)
    same = np.array_equal(u, wc) and np.allclose(np.bincount(inv, weights=win[r2, c2]), ws, rtol=1e-12)
    print(f"grid_to_cells : {fast / 1e6:6.1f} M px/s wall ({data.size / cpu / 1e6:.1f} M px/s per CPU-second), "
          f"{wall:.2f} s, {cells.size} cells, total rel. error {rel:.1e}")
    print(f"per-pixel h3  : {ref_rate / 1e6:6.2f} M px/s (timed on {n} px, extrapolated: "
          f"{data.size / ref_rate:.0f} s for the raster)")
    print(f"ratio         : {fast / ref_rate:6.1f}x   (24k-pixel window identical to per-pixel h3: {same})")


if __name__ == "__main__":
    main()
