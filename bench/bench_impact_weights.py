"""Zone -> H3 weights at res 8: ``geoops.h3cells.zone_weights`` vs a naive reference (every cell h3 says
overlaps the zone, intersected with shapely one by one), for ~10,000 km2 zones (square, circle, concave)
at 44 N, plus ``affected_population`` on top. Prints p50 times, the ratio, and that both give the same weights.

Run: ``.venv/bin/python -m bench impact_weights``.
"""

from __future__ import annotations

import os
import statistics
import time

import h3.api.basic_int as h3i
import numpy as np
import pyproj
from shapely.geometry import Point, Polygon, box

from geoops.h3cells import _lat_weighted_area, zone_weights
from geoops.population import affected_population

RES = 8
GEOD = pyproj.Geod(ellps="WGS84")


def _naive(zone: Polygon) -> tuple[np.ndarray, np.ndarray]:
    over = h3i.h3shape_to_cells_experimental(h3i.geo_to_h3shape(zone), RES, contain="overlap")
    cells, frac = [], []
    for c in over:
        p = Polygon([(lo, la) for la, lo in h3i.cell_to_boundary(c)])
        piece = p.intersection(zone)
        if not piece.is_empty and piece.area > 0:
            cells.append(c)
            frac.append(_lat_weighted_area(np.array([piece]))[0] / _lat_weighted_area(np.array([p]))[0])
    o = np.argsort(cells)
    return np.asarray(cells, dtype=np.int64)[o], np.asarray(frac)[o]


def _p50(f, n: int) -> float:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> None:
    zones = {
        "square": box(111.0, 44.0, 112.26, 44.9),
        "circle": Point(111.6, 44.45).buffer(0.67, quad_segs=64),
        "concave": Polygon([(111.0, 44.0), (112.45, 44.0), (112.45, 45.0), (111.75, 44.4), (111.0, 45.0)]),
    }
    rng = np.random.default_rng(0)
    print(f"res {RES}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, zone in zones.items():
        km2 = abs(GEOD.geometry_area_perimeter(zone)[0]) / 1e6
        cells, frac = zone_weights(zone, res=RES)
        pop_cells = np.unique(np.concatenate([cells, cells + 0]))
        pop = rng.gamma(0.6, 300.0, pop_cells.size)
        fast = _p50(lambda zone=zone: zone_weights(zone, res=RES), 15)
        full = _p50(lambda zone=zone, pop_cells=pop_cells, pop=pop:
                    affected_population(*zone_weights(zone, res=RES), pop_cells, pop), 15)
        t = time.perf_counter()
        rc, rf = _naive(zone)
        naive = time.perf_counter() - t
        same = np.array_equal(rc, cells) and np.allclose(rf, frac, rtol=1e-9, atol=1e-12)
        print(f"{name:8s} {km2:7.0f} km2 {cells.size:6d} cells: zone_weights p50 {fast * 1e3:6.1f} ms, "
              f"+affected_population {full * 1e3:6.1f} ms | naive {naive * 1e3:7.0f} ms | "
              f"ratio {naive / fast:5.0f}x | same weights: {same}")


if __name__ == "__main__":
    main()
