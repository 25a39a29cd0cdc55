"""Import of N points (default 100k): ``layers.ingest.imports.import_file`` vs a raw COPY of the same rows into a plain table.

Run: ``python -m bench.bench_import [--rows 100000] [--seed 20240601] [--format gpkg|csv|geojson] [--repeat 1]``.

Seeded incidents in north China, written once to a file. Timed side by side, in a scratch database
``sitroom_bench_import_<pid>`` (created on this checkout's private cluster, or next to ``SITROOM_DATABASE_URL``,
and dropped afterwards):

- reference: psycopg ``COPY`` of the same rows (hex EWKB geometry, JSON properties) into a plain table without
  indexes or triggers; no reading, no validation;
- sitroom: ``import_file`` end to end (read with GDAL, reproject, map, validate every row, COPY into staging,
  ``INSERT ... ON CONFLICT`` into ``incidents`` with its GiST/geography/btree indexes and history triggers), split
  into read / validate / upsert; then a re-import of the same file (every row unchanged);
- diagnostic: the same upsert with the table's triggers disabled, to show what history recording costs.
Target (issue 2): 100k points import "in seconds".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._scratch import create_scratch, drop_scratch
from layers.ingest import imports


def make_frame(rows: int, seed: int) -> gpd.GeoDataFrame:
    """Seeded incidents (Chinese labels for kind, an unmapped column, no ids) in 37-45N, 105-120E."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["火灾", "洪涝", "交通事故", "救援", "other"])
    return gpd.GeoDataFrame(
        {"名称": [f"事件{i}" for i in range(rows)], "类型": kinds[rng.integers(0, len(kinds), rows)],
         "伤亡人数": rng.integers(0, 5, rows), "备注": rng.choice(["", "已派车", "待核实"], rows)},
        geometry=gpd.points_from_xy(rng.uniform(105, 120, rows), rng.uniform(37, 45, rows)), crs=4326)


def write(gdf: gpd.GeoDataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df["经度"], df["纬度"] = gdf.geometry.x, gdf.geometry.y
        df.to_csv(path, index=False)
    else:
        gdf.to_file(path, driver={".gpkg": "GPKG", ".geojson": "GeoJSON"}[path.suffix])


def raw_copy(engine, clean: gpd.GeoDataFrame) -> float:
    """Reference: COPY the already-prepared rows into a plain table (no indexes, no triggers)."""
    hexes = shapely.to_wkb(shapely.set_srid(np.asarray(clean.geometry.values), 4326), hex=True,
                           include_srid=True).tolist()
    cols = list(zip(clean["external_id"], clean["name"], clean["kind"], clean["status"], clean["severity"],
                    clean["casualties"].astype(object), clean["properties"], hexes, strict=True))
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS bench_plain"))
        c.execute(text("CREATE TABLE bench_plain (external_id text, name text, kind text, status text, "
                       "severity text, casualties int, properties jsonb, geom geometry(Point, 4326))"))
    with engine.begin() as c:
        raw = c.connection.driver_connection
        t = time.perf_counter()
        with raw.cursor() as cur, cur.copy("COPY bench_plain FROM STDIN") as cp:
            for row in cols:
                cp.write_row(row)
        return time.perf_counter() - t


def run(rows: int, seed: int, fmt: str, repeat: int) -> None:
    url = create_scratch("sitroom_bench_import")
    from layers.store.db import migrate

    migrate(url)
    engine = create_engine(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"incidents.{fmt}"
            write(make_frame(rows, seed), path)
            print(f"bench_import: {rows} points, {fmt} ({path.stat().st_size / 2**20:.1f} MB), seed {seed}, "
                  f"database {make_url(url).database}")
            for r in range(repeat):
                with engine.begin() as c:
                    c.execute(text("TRUNCATE incidents, feature_history"))
                t0 = time.perf_counter()
                gdf, _, _ = imports.read_features(path)
                t1 = time.perf_counter()
                clean, problems, _ = imports.validate_frame("incidents", gdf, file=str(path))
                t2 = time.perf_counter()
                with engine.begin() as c:
                    counts = imports.upsert_features(c, "incidents", clean, source="bench", user="bench")
                t3 = time.perf_counter()
                with engine.begin() as c:
                    again = imports.import_file(c, "incidents", path, source="bench", user="bench")
                t4 = time.perf_counter()
                with engine.begin() as c:  # diagnostic: the same first upsert without history triggers
                    c.execute(text("TRUNCATE incidents"))
                    c.execute(text("ALTER TABLE incidents DISABLE TRIGGER USER"))
                    t5 = time.perf_counter()
                    imports.upsert_features(c, "incidents", clean, source="bench2", user="bench")
                    t6 = time.perf_counter()
                    c.execute(text("ALTER TABLE incidents ENABLE TRIGGER USER"))
                ref = raw_copy(engine, clean)
                total = t3 - t0
                print(f"  run {r + 1}: problems {len(problems)}, inserted {counts.inserted}; "
                      f"re-import: inserted {again.inserted}, updated {again.updated}, unchanged {again.unchanged}")
                print(f"    reference raw COPY into plain table : {ref:7.2f} s  ({rows / ref:,.0f} rows/s)")
                print(f"    sitroom import, end to end          : {total:7.2f} s  ({rows / total:,.0f} rows/s)  "
                      f"ratio {total / ref:.1f}x")
                print(f"      read {t1 - t0:.2f} s, validate {t2 - t1:.2f} s, upsert {t3 - t2:.2f} s")
                print(f"    re-import of the same file           : {t4 - t3:7.2f} s")
                print(f"    diagnostic: upsert without triggers  : {t6 - t5:7.2f} s  "
                      f"(history triggers cost {(t3 - t2) - (t6 - t5):.2f} s)")
    finally:
        engine.dispose()
        drop_scratch(url)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.bench_import", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--format", choices=["gpkg", "csv", "geojson"], default="gpkg")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args(argv)
    run(a.rows, a.seed, a.format, a.repeat)


if __name__ == "__main__":
    main()
