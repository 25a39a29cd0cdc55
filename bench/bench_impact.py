"""Population of a zone and the whole impact card, side by side with exactextract on the same raster and zones.

Run: ``python -m bench impact [--url URL] [--repeat 30]``.

On the loaded bench database of ``bench_analysis`` (the offline demo of Inner Mongolia: the 0.01 degree modelled
raster, population at res 8 built from it, 1M synthetic resources; loaded once, kept as ``sitroom_bench``), for five
zones (about 1,000, 10,000 and 60,000 km2; the outline of the county with the most vertices, concave; a disc across
the Hohhot-Baotou prefecture border), printed with the reference and the ratio:

- population: Sitroom's figure from the H3 hierarchy (:func:`geoops.h3cells.zone_cover` and the kept sums of
  :mod:`layers.read.popsums`, i.e. what the card computes for its population) vs ``exactextract``'s exact
  pixel-fraction sum of the GeoTIFF the cells were built from (its Python binding on the open rasterio dataset, in
  this process): p50 wall and CPU time, the ratio of times (target: within 2x) and the difference of the figures
  (target: within 0.5 %);
- the flat res-8 path (every cell of the zone, :func:`geoops.h3cells.zone_weights` plus the stored cells read from
  PostGIS), as it was before the hierarchy, for the ratio hierarchy / flat;
- the whole card (:func:`dashboards.services.impact.impact_card`): p50 wall and CPU time (targets: p50 < 15 ms at
  10,000 km2, < 40 ms at 60,000 km2), twice: for a zone drawn anew (the card's zone cache cleared before each call:
  cover, population, split by county all computed) and for a zone asked again (as every open card is refreshed on
  each change of the live picture: population part from the zone cache; targets, shelters, resources from PostGIS).

The machine is shared: wall-clock times swing with the load printed at the start; ratios measured in the same run
and CPU times are the figures to compare.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import rasterio
import shapely
from shapely.geometry import box
from sqlalchemy import create_engine, text

from bench.bench_analysis import CPU, bench_url, ensure_data
from bench.bench_analysis import p50 as analysis_p50


def p50(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(p50 wall ms, p50 CPU ms, last result) after one warm-up call (:func:`bench.bench_analysis.p50`)."""
    wall, out = analysis_p50(fn, repeat)
    return wall, CPU["last"], out


def zones(conn: Any) -> dict[str, Any]:
    county = conn.execute(text(
        "SELECT name, ST_AsBinary(geom) FROM admin_regions WHERE level = 'county' AND deleted_at IS NULL "
        "AND ST_Area(geom::geography) BETWEEN 2e9 AND 2e10 ORDER BY ST_NPoints(geom) DESC LIMIT 1")).one()
    x, y = conn.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_ClosestPoint(a.geom, b.geom) AS p FROM admin_regions a, "
        "admin_regions b WHERE a.adcode = '150100' AND b.adcode = '150200') q")).one()
    return {
        "1k km2 box": box(111.4, 40.6, 111.78, 40.87),
        "10k km2 box": box(110.6, 40.3, 111.78, 41.2),
        "60k km2 box": box(109.5, 39.6, 112.4, 41.9),
        f"county {county[0]} (concave)": shapely.from_wkb(bytes(county[1])),
        "two prefectures (disc)": shapely.Point(x, y).buffer(0.45, 64),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.bench_impact", description=__doc__.splitlines()[0])
    ap.add_argument("--url")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--resources", type=int, default=1_000_000)
    a = ap.parse_args(argv)

    from exactextract import exact_extract

    from dashboards.services.impact import clear_cache, impact_card
    from geoops import geodesic, h3cells
    from layers.read import analysis as store
    from layers.read import popsums

    url = bench_url(a.url)
    raster = ensure_data(url, reload=False, n_resources=a.resources)
    eng = create_engine(url)
    print(f"bench_impact: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine); "
          f"raster {raster.name}; {a.repeat} runs each")
    ds = rasterio.open(raster)
    with eng.connect() as conn:
        src = store.population_source(conn, res=8)
        sums = popsums.hierarchy(conn, source=src["source"], res=8, built_at=src["built_at"],
                                 cell_count=src["cell_count"], input_total=src["input_total"])

        def hierarchical(zone: Any) -> float:
            cells, frac = h3cells.zone_cover(zone, res=8, coarse_res=sums.coarse_res)
            people, _ = sums.lookup(cells)
            return float((people * frac).sum())

        def flat(zone: Any) -> float:
            cells, frac = h3cells.zone_weights(zone, res=8)
            return float((store.population_of_cells(conn, cells, res=8, source=src["source"]) * frac).sum())

        def exact(frame: gpd.GeoDataFrame) -> float:
            return float(exact_extract(ds, frame, "sum", output="pandas")["sum"].iloc[0])

        rows = []
        for name, zone in zones(conn).items():
            frame = gpd.GeoDataFrame({"id": [1]}, geometry=[zone], crs=4326)
            km2 = float(geodesic.area_m2(zone)) / 1e6
            h_wall, h_cpu, h_pop = p50(lambda z=zone: hierarchical(z), a.repeat)
            e_wall, e_cpu, e_pop = p50(lambda f=frame: exact(f), a.repeat)
            f_wall, f_cpu, f_pop = p50(lambda z=zone: flat(z), max(3, a.repeat // 3))
            def anew(z: Any = zone) -> Any:
                clear_cache()
                return impact_card(conn, z, res=8)

            c_wall, c_cpu, card = p50(anew, a.repeat)
            w_wall, w_cpu, again = p50(lambda z=zone: impact_card(conn, z, res=8), a.repeat)
            rows.append((name, km2, h_wall, h_cpu, h_pop, e_wall, e_cpu, e_pop, f_wall, f_cpu, f_pop, c_wall, c_cpu,
                         card, w_wall, w_cpu))
            print(f"\n{name}: {km2:,.0f} km2, {card['cells']:,} res-8 cells")
            print(f"  population, H3 hierarchy : p50 {h_wall:7.2f} ms wall, {h_cpu:7.2f} ms CPU  -> {h_pop:13,.0f}")
            print(f"  exactextract (reference) : p50 {e_wall:7.2f} ms wall, {e_cpu:7.2f} ms CPU  -> {e_pop:13,.0f}")
            print(f"     ratio hierarchy/exactextract: {h_wall / e_wall:5.2f}x wall, {h_cpu / e_cpu:5.2f}x CPU "
                  f"(target <= 2x); difference {(h_pop / e_pop - 1) * 100:+.3f} % (target within 0.5 %)")
            print(f"  flat res-8 path (before) : p50 {f_wall:7.2f} ms wall, {f_cpu:7.2f} ms CPU  -> {f_pop:13,.0f}"
                  f"   hierarchy/flat: {h_cpu / f_cpu:5.2f}x CPU, figures differ by {abs(h_pop - f_pop):.2e}")
            print(f"  whole card, zone anew    : p50 {c_wall:7.2f} ms wall, {c_cpu:7.2f} ms CPU  "
                  f"(parts, last run: {card['timing_ms']})")
            print(f"  whole card, zone again   : p50 {w_wall:7.2f} ms wall, {w_cpu:7.2f} ms CPU  "
                  f"(parts, last run: {again['timing_ms']})")
        print("\nsummary (p50 ms): zone | hierarchy CPU | exactextract CPU | ratio | difference % | card anew wall / CPU"
              " | card again wall / CPU")
        for r in rows:
            print(f"  {r[0]:32s} | {r[3]:7.2f} | {r[6]:7.2f} | {r[3] / r[6]:5.2f}x | {(r[4] / r[7] - 1) * 100:+.3f} | "
                  f"{r[11]:6.2f} / {r[12]:6.2f} | {r[14]:6.2f} / {r[15]:6.2f}")
    ds.close()
    eng.dispose()


if __name__ == "__main__":
    main()
