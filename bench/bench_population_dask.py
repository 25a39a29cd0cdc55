"""National scale: ``sitroom population build`` on Dask over a synthetic all-China 100 m raster (~1e9 valid pixels).

Run: ``python -m bench population_dask [--pixel-m 100] [--workers 1 2] [--res 8]``

The raster is generated here, once, and kept (``<state_dir>/bench/china_synthetic_<pixel>m.tif``): Mollweide
(ESRI:54009, the CRS of GHS-POP) at ``--pixel-m`` metres over China's extent, float32, tiled 512 x 512 and ZSTD
compressed, written window by window (never held in memory). Inside a coarse outline of China (about 9.5 million
km2; outside is nodata) the value is a seeded synthetic population: a rural background plus 300 Gaussian towns and
cities, rounded to 0.1 person. At 100 m that is about 2.4e9 pixels, 1e9 of them valid.

Then the cells of the whole raster at ``--res`` are computed with :func:`layers.reference.population.raster_cells`
on a Dask ``LocalCluster`` of each ``--workers`` count (started and stopped by the call, as the command does; one
thread and 2 GB per worker), without the database write (``sitroom population build`` adds one ``COPY``).
Printed: pixels per second of each run beside the target (10M px/s per process) and the ratio to one worker; the
peak resident memory of the busiest worker (bound: 2 GB); the cells and the total of every run against the first
(same cells, totals equal to 1e-9). The machine is shared (2 cores): with other work running, two workers cannot
reach twice one.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import geometry_mask
from rasterio.transform import from_origin
from rasterio.windows import Window

# a coarse outline of China (lon, lat), enough for a synthetic national raster
OUTLINE = [(73.5, 39.5), (75.0, 37.0), (78.0, 35.5), (79.0, 32.5), (81.0, 30.0), (85.0, 28.3), (88.0, 27.9),
           (92.0, 27.8), (97.0, 28.2), (98.5, 25.0), (97.5, 23.8), (100.0, 21.5), (102.0, 22.4), (106.0, 22.8),
           (108.0, 21.5), (110.0, 20.2), (111.0, 21.5), (114.0, 22.2), (117.0, 23.5), (119.5, 25.5), (121.5, 28.0),
           (122.0, 30.5), (121.0, 32.5), (119.5, 35.0), (122.5, 37.0), (121.0, 38.8), (121.5, 39.8), (124.0, 40.0),
           (126.0, 41.5), (128.5, 42.0), (130.5, 42.5), (131.0, 45.0), (134.7, 48.3), (132.0, 47.8), (127.5, 49.8),
           (125.5, 52.5), (123.0, 53.5), (120.5, 52.5), (119.5, 50.0), (116.5, 49.8), (115.5, 47.5), (112.0, 45.0),
           (106.5, 42.3), (101.5, 42.5), (96.5, 42.7), (91.0, 45.2), (87.8, 49.1), (85.5, 47.0), (82.5, 45.3),
           (80.2, 42.2), (76.5, 40.5), (73.5, 39.5)]
CRS = "ESRI:54009"
NODATA = -99999.0
SEED = 20261204
TILE = 512
WINDOW = 8 * TILE


def generate(path: Path, pixel_m: float) -> dict[str, float]:
    """Write the synthetic raster at ``path`` window by window; its size and valid pixels."""
    to_moll = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    outline = shapely.segmentize(shapely.Polygon(OUTLINE), 0.2)
    xy = np.asarray(outline.exterior.coords)
    mx, my = to_moll.transform(xy[:, 0], xy[:, 1])
    shape = shapely.Polygon(np.column_stack([mx, my]))
    x0, y0, x1, y1 = shape.bounds
    width, height = math.ceil((x1 - x0) / pixel_m), math.ceil((y1 - y0) / pixel_m)
    transform = from_origin(x0, y1, pixel_m, pixel_m)
    rng = np.random.default_rng(SEED)
    n_towns = 300
    tx = rng.uniform(x0, x1, n_towns)
    ty = rng.uniform(y0, y1, n_towns)
    inside = shapely.contains_xy(shape, tx, ty)
    tx, ty = tx[inside], ty[inside]
    peak = rng.lognormal(3.0, 1.0, tx.size)             # people per 100 m pixel at the centre
    sigma = rng.uniform(2_000, 15_000, tx.size)         # metres
    scale = (pixel_m / 100.0) ** 2
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32", "crs": CRS,
               "transform": transform, "nodata": NODATA, "tiled": True, "blockxsize": TILE, "blockysize": TILE,
               "compress": "ZSTD", "predictor": 3, "BIGTIFF": "YES"}
    tmp = path.with_suffix(".tmp.tif")
    valid = 0
    t0 = time.perf_counter()
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, height, WINDOW):
            for c0 in range(0, width, WINDOW):
                w = Window(c0, r0, min(WINDOW, width - c0), min(WINDOW, height - r0))
                wt = dst.window_transform(w)
                mask = geometry_mask([shape], out_shape=(int(w.height), int(w.width)), transform=wt, invert=True)
                if not mask.any():
                    dst.write(np.full((1, int(w.height), int(w.width)), NODATA, np.float32), window=w)
                    continue
                cx = wt.c + (np.arange(int(w.width)) + 0.5) * pixel_m
                cy = wt.f - (np.arange(int(w.height)) + 0.5) * pixel_m
                v = np.full((int(w.height), int(w.width)), 0.3, np.float32)
                near = ((tx > cx[0] - 4 * sigma) & (tx < cx[-1] + 4 * sigma)
                        & (ty < cy[0] + 4 * sigma) & (ty > cy[-1] - 4 * sigma))
                for i in np.flatnonzero(near):  # each town only over its 4-sigma box
                    cs = slice(*np.searchsorted(cx, [tx[i] - 4 * sigma[i], tx[i] + 4 * sigma[i]]))
                    rs = slice(*np.searchsorted(-cy, [-(ty[i] + 4 * sigma[i]), -(ty[i] - 4 * sigma[i])]))
                    gx = np.exp(-0.5 * ((cx[cs] - tx[i]) / sigma[i]) ** 2).astype(np.float32)
                    gy = np.exp(-0.5 * ((cy[rs] - ty[i]) / sigma[i]) ** 2).astype(np.float32)
                    v[rs, cs] += peak[i] * np.outer(gy, gx)
                v = np.round(v * scale, 1)
                v[~mask] = NODATA
                valid += int(mask.sum())
                dst.write(v[None], window=w)
    os.replace(tmp, path)
    return {"width": width, "height": height, "valid": valid, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.bench_population_dask", description=__doc__.splitlines()[0])
    ap.add_argument("--pixel-m", type=float, default=100.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--res", type=int, default=8)
    a = ap.parse_args(argv)

    from layers.reference.population import WORKER_MEMORY, raster_cells
    from layers.store.settings import get_settings

    out_dir = Path(get_settings().state_dir) / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"china_synthetic_{a.pixel_m:g}m.tif"
    if not path.exists():
        made = generate(path, a.pixel_m)
        print(f"generated {path}: {made['width']:,} x {made['height']:,} pixels, {made['valid']:,} valid, "
              f"{path.stat().st_size / 2**30:.2f} GB, in {made['seconds']:.0f} s")
    with rasterio.open(path) as ds:
        print(f"bench_population_dask: {path.name}, {ds.width:,} x {ds.height:,} = {ds.width * ds.height:,} pixels "
              f"({ds.crs}), res {a.res}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} shared cores")
    first = None
    base_rate = None
    for n in a.workers:
        t0 = time.perf_counter()
        cells, sums, info = raster_cells(path, res=a.res, scheduler="local", workers=n)
        dt = time.perf_counter() - t0
        rate = info["pixels"] / dt
        base_rate = base_rate or rate
        line = (f"  {n} worker(s): {dt:7.1f} s, {rate / 1e6:6.2f} M px/s ({info['valid_pixels'] / dt / 1e6:6.2f} M "
                f"valid px/s; target 10 M px/s per process: {rate / 1e7 / n:.2f} of it per worker), "
                f"x{rate / base_rate:.2f} one worker; {cells.size:,} cells, total {info['input_total']:,.1f}; "
                f"busiest worker peak RSS {info['worker_peak_mb']:,.0f} MB (limit {WORKER_MEMORY})")
        if first is None:
            first = (cells, sums, info["input_total"])
        else:
            same = np.array_equal(cells, first[0])
            rel = abs(info["input_total"] - first[2]) / first[2]
            line += (f"; cells identical to the first run: {same}, total differs by {rel:.1e} relative, "
                     f"largest cell difference {np.max(np.abs(sums - first[1])) if same else float('nan'):.1e}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
