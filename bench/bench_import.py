"""Import of N points (default 100k): ``layers.ingest.imports.import_file`` vs a raw COPY of the same rows into a plain table.

Run: ``python -m bench.bench_import [--rows 100000] [--seed 20240601] [--format gpkg|csv|geojson] [--repeat 1]
[--no-row-path]``; ``python -m bench import`` runs 100k then 1M (the 1M run without the row path).

Seeded incidents in north China, written once to a file. Timed side by side, in a scratch database
``sitroom_bench_import_<pid>`` (created on this checkout's private cluster, or next to ``SITROOM_DATABASE_URL``,
and dropped afterwards):

- reference: psycopg ``COPY`` of the same rows (hex EWKB geometry, JSON properties) into a plain table without
  indexes or triggers; no reading, no validation;
- sitroom: ``import_file`` end to end (read with GDAL, reproject, map, validate every row, COPY into staging, then
  the bulk load of ``upsert_features`` into ``incidents``, its indexes rebuilt and history triggers firing), split
  into read / validate / upsert; then a re-import of the same file (every row unchanged);
- the row path (``INSERT ... ON CONFLICT`` with every index kept up row by row, what every import did before
  issue 16) on the same rows, as the before figure of the same run;
- history completeness: one ``insert`` history row per imported incident.

Each phase prints wall time and CPU time (this process plus the PostgreSQL backend serving it, read from /proc):
on a shared machine the CPU time is the figure to hold against the target. Targets (issue 16): 100k points < 4 s,
1M < 40 s. Measured at load 1.0 (issue 16): 100k 3.14 s wall, 3.07 s CPU, 28x the raw COPY; 1M 34.6 s wall,
33.6 s CPU, 27x; the PostgreSQL backend (history rows, index builds) is 70 % of the CPU.
"""

from __future__ import annotations

import argparse
import os
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


def _backend_cpu(c) -> float:
    """CPU seconds used so far by the PostgreSQL backend serving ``c`` (same machine: /proc/<pid>/stat)."""
    pid = c.execute(text("SELECT pg_backend_pid()")).scalar_one()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Clock:
    """Wall and CPU (this process + one backend) time of a phase run on connection ``c``."""

    def __init__(self, c) -> None:
        self.c = c

    def __enter__(self) -> _Clock:
        self.w, self.p, self.b = time.perf_counter(), time.process_time(), _backend_cpu(self.c)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w
        self.client = time.process_time() - self.p
        self.server = _backend_cpu(self.c) - self.b
        self.cpu = self.client + self.server


def _target(rows: int) -> float:
    return 4.0 * rows / 100_000 if rows <= 100_000 else 40.0 * rows / 1_000_000


def run(rows: int, seed: int, fmt: str, repeat: int, row_path: bool = True) -> None:
    url = create_scratch("sitroom_bench_import")
    from layers.store.db import migrate

    migrate(url)
    engine = create_engine(url)
    target = _target(rows)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"incidents.{fmt}"
            write(make_frame(rows, seed), path)
            print(f"bench_import: {rows:,} points, {fmt} ({path.stat().st_size / 2**20:.1f} MB), seed {seed}, "
                  f"database {make_url(url).database}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
                  "shared cores")
            for r in range(repeat):
                with engine.begin() as c:
                    c.execute(text("TRUNCATE incidents, feature_history CASCADE"))
                with engine.begin() as c, _Clock(c) as total:
                    with _Clock(c) as rd:
                        gdf, _, _ = imports.read_features(path)
                    with _Clock(c) as va:
                        clean, problems, _ = imports.validate_frame("incidents", gdf, file=str(path))
                    with _Clock(c) as up:
                        counts = imports.upsert_features(c, "incidents", clean, source="bench", user="bench")
                with engine.begin() as c:
                    hist = c.execute(text("SELECT count(*) FILTER (WHERE h.op = 'insert'), count(DISTINCT i.id) "
                                          "FROM incidents i LEFT JOIN feature_history h ON h.layer = 'incidents' "
                                          "AND h.feature_id = i.id")).one()
                with engine.begin() as c, _Clock(c) as again_t:
                    again = imports.import_file(c, "incidents", path, source="bench", user="bench")
                rp = None
                if row_path:
                    saved = imports.BULK_ROWS
                    imports.BULK_ROWS = 10**12  # the ON CONFLICT path every import took before
                    try:
                        with engine.begin() as c:
                            c.execute(text("TRUNCATE incidents, feature_history CASCADE"))
                        with engine.begin() as c, _Clock(c) as rp:
                            imports.upsert_features(c, "incidents", clean, source="bench", user="bench")
                    finally:
                        imports.BULK_ROWS = saved
                ref = raw_copy(engine, clean)
                print(f"  run {r + 1}: problems {len(problems)}, inserted {counts.inserted}; history: "
                      f"{hist[0]:,} insert rows for {hist[1]:,} incidents ({'complete' if hist[0] == hist[1] == rows else 'INCOMPLETE'}); "
                      f"re-import: inserted {again.inserted}, updated {again.updated}, unchanged {again.unchanged}")
                print(f"    reference raw COPY into a plain table : {ref:7.2f} s wall ({rows / ref:,.0f} rows/s)")
                print(f"    sitroom import, end to end            : {total.wall:7.2f} s wall, {total.cpu:6.2f} s CPU "
                      f"(client {total.client:.2f} + server {total.server:.2f})   target < {target:g} s   "
                      f"CPU/target {total.cpu / target:.2f}   wall ratio to raw COPY {total.wall / ref:.1f}x")
                for label, ph in (("read", rd), ("validate", va), ("upsert (bulk load)", up)):
                    print(f"      {label:<20}: {ph.wall:6.2f} s wall, {ph.cpu:6.2f} s CPU (client {ph.client:.2f} "
                          f"+ server {ph.server:.2f})")
                print(f"    re-import of the same file            : {again_t.wall:7.2f} s wall, {again_t.cpu:6.2f} s CPU")
                if rp is not None:
                    print(f"    before: the row path's upsert (ON CONFLICT, indexes kept up row by row): {rp.wall:6.2f} s "
                          f"wall, {rp.cpu:6.2f} s CPU; bulk load / row path: {up.wall / rp.wall:.2f} wall, "
                          f"{up.cpu / rp.cpu:.2f} CPU")
    finally:
        engine.dispose()
        drop_scratch(url)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.bench_import", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=None, help="default: 100,000 then 1,000,000")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--format", choices=["gpkg", "csv", "geojson"], default="gpkg")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-row-path", action="store_true", help="skip the row path (the before figure)")
    a = ap.parse_args(argv)
    if a.rows is not None:
        run(a.rows, a.seed, a.format, a.repeat, not a.no_row_path)
        return
    run(100_000, a.seed, a.format, a.repeat, not a.no_row_path)
    run(1_000_000, a.seed, a.format, a.repeat, False)


if __name__ == "__main__":
    main()
