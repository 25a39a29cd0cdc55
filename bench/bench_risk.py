"""Leader page risk (``dashboards.services.risk.regional_risk``, every active hazard of the demo) with wall and CPU time, and
its cell -> county step side by side with the plain tree query it replaced.

Run: ``python -m bench.bench_risk [--url URL] [--repeat 5]`` (uses ``sitroom_bench`` as ``bench.bench_analysis``
does, loading the demo there if needed). Printed: p50 wall and CPU of ``risk(level=county)`` with its parts, and
``geoops.population.cells_to_regions`` vs ``STRtree.query(points, predicate="intersects")`` (first region wins)
on the same cells: time, ratio, and whether every cell got the same county.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import shapely
from sqlalchemy import create_engine


def _tree_reference(lon: np.ndarray, lat: np.ndarray, geoms: list[Any], keys: list[str]) -> np.ndarray:
    out = np.full(lon.size, None, dtype=object)
    pi, ri = shapely.STRtree(geoms).query(shapely.points(lon, lat), predicate="intersects")
    o = np.lexsort((ri, pi))
    pi, ri = pi[o], ri[o]
    first = np.ones(pi.size, dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    out[pi[first]] = np.asarray(keys, dtype=object)[ri[first]]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench_risk")
    ap.add_argument("--url")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)

    import geopandas as gpd

    from bench.bench_analysis import bench_url, ensure_data
    from dashboards.services.risk import regional_risk as risk
    from geoops import h3cells
    from geoops.population import cells_to_regions
    from layers.read import analysis as store

    url = bench_url(a.url)
    ensure_data(url, reload=False, n_resources=1_000_000)
    eng = create_engine(url, pool_size=2)
    with eng.connect() as conn:
        risk(conn, level="county")  # warm-up
        walls, cpus, parts = [], [], []
        for _ in range(a.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            out = risk(conn, level="county")
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            parts.append(out["timing_ms"])
        i = int(np.argsort(walls)[len(walls) // 2])
        print(f"risk(level=county), {len(out['hazards'])} hazards, {len(out['regions'])} counties: "
              f"p50 {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU; parts {parts[i]}")
        print(f"   totals {out['totals']}")
        hazards = store.active_hazards(conn)
        cells = np.unique(np.concatenate([h3cells.zone_weights(h["geometry"], res=8)[0] for h in hazards]))
        counties = store.regions_of_level(conn, level="county", within=shapely.union_all(
            [h["geometry"] for h in hazards]).bounds, geometry=True)
    gdf = gpd.GeoDataFrame({"adcode": [c["adcode"] for c in counties]},
                           geometry=[c["geometry"] for c in counties], crs=4326)
    lon, lat = h3cells.cell_centres(cells)
    t0, c0 = time.perf_counter(), time.process_time()
    fast = cells_to_regions(cells, gdf)
    t_fast, c_fast = time.perf_counter() - t0, time.process_time() - c0
    geoms = [shapely.from_wkb(shapely.to_wkb(g)) for g in gdf.geometry]  # unprepared copies
    t0, c0 = time.perf_counter(), time.process_time()
    ref = _tree_reference(lon, lat, geoms, list(gdf["adcode"]))
    t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
    print(f"cells -> county, {cells.size:,} cells, {len(counties)} counties: cells_to_regions {t_fast:.3f} s wall "
          f"({c_fast:.3f} s CPU), tree query {t_ref:.3f} s wall ({c_ref:.3f} s CPU) -> {c_ref / max(c_fast, 1e-9):.1f}x "
          f"CPU; identical: {bool(np.array_equal(fast, ref))}")
    eng.dispose()


if __name__ == "__main__":
    main()
