"""The analysis paths side by side with their references, ratios printed.

Run: ``python -m bench.bench_analysis [--url URL] [--reload] [--resources 1000000] [--repeat 30]``.

Uses its own database ``sitroom_bench`` on this checkout's private cluster (or ``--url``), loaded once with the
offline demo of Inner Mongolia (``layers.reference.demo.load_demo``, 0.01 degree modelled raster, population at res 8 and 7,
drill seed 2024) and ``--resources`` extra seeded synthetic resources (so that nearest runs on a big table).
Printed, each with its reference and the ratio:

1. impact card of a 10,000 km2 zone at res 8: p50 of the service (``dashboards.services.impact.impact_card``) and
   through the Flask test client,
   vs the exact raster reference (pixel-fraction sum over the GeoTIFF) and vs ``rasterio.mask`` (pixel centres);
   plus the relative difference of the populations;
2. single nearest-3 through the API (p50) vs the raw PostGIS KNN SQL (``ORDER BY geom <-> pt LIMIT 3``);
3. nearest-3 for 100k incidents in one batch (API and function) vs brute-force Geod (subsample, extrapolated);
4. shelter coverage of a whole prefecture (Baotou 150200 and Hulunbuir 150700): time, cells, shelters.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.mask
import shapely
from pyproj import Geod
from rasterio.windows import Window, from_bounds
from shapely.geometry import box, mapping
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

GEOD = Geod(ellps="WGS84")
BENCH_DB = "sitroom_bench"
SEED = 2024
# 10,000 km2 around Baotou / Hohhot, crossing county and prefecture borders (about 1.18 x 0.9 degrees at 40.7 N)
ZONE_10K = box(110.6, 40.3, 111.78, 41.2)


CPU: dict[str, float] = {}  # p50 CPU ms of this process for the last p50() call (the machine is shared: wall is noisy)


def p50(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out = fn()  # warm-up
    times, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    CPU["last"] = statistics.median(cpus) * 1000.0
    return statistics.median(times) * 1000.0, out


def bench_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from layers.store import cluster
    from layers.store.settings import get_settings

    info = cluster.up(get_settings().state_dir)
    admin = create_engine(info.url_for("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB}).first():
            c.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    return info.url_for(BENCH_DB)


def ensure_data(url: str, *, reload: bool, n_resources: int) -> Path:
    from layers.reference.demo import load_demo
    from layers.store.db import migrate

    migrate(url)
    eng = create_engine(url)
    with eng.connect() as c:
        row = c.execute(text("SELECT input_path FROM population_sources WHERE res = 8 LIMIT 1")).first()
        n_bench = c.execute(text("SELECT count(*) FROM resources WHERE source = 'bench'")).scalar_one()
    if row is None or reload or not Path(row[0]).exists():
        t0 = time.perf_counter()
        with Session(eng) as s, s.begin():
            report = load_demo(s, seed=SEED, res=8, overview_res=7, all_china=False)
        print(f"demo loaded in {time.perf_counter() - t0:.0f} s: {report['population'][0].cell_count:,} res-8 cells")
        with eng.connect() as c:
            row = c.execute(text("SELECT input_path FROM population_sources WHERE res = 8 LIMIT 1")).first()
    if n_bench != n_resources:
        t0 = time.perf_counter()
        with eng.begin() as c:
            c.execute(text("DELETE FROM resources WHERE source = 'bench'"))
            if n_resources:
                # seeded synthetic resources over Inner Mongolia's bounding box (97-126 E, 37.5-53 N), SQL-side
                c.execute(text("SELECT setseed(0.2024)"))
                c.execute(text(
                    "INSERT INTO resources (source, external_id, name, kind, status, quantity, geom) "
                    "SELECT 'bench', 'b' || g, 'bench ' || g, (ARRAY['rescue_team','fire_engine','ambulance',"
                    "'medical_team','supply_depot','helicopter','excavator','generator','boat'])[1 + (g % 9)], "
                    "CASE WHEN random() < 0.7 THEN 'available' ELSE 'deployed' END, 1, "
                    "ST_SetSRID(ST_MakePoint(97 + 29 * random(), 37.5 + 15.5 * random()), 4326) "
                    "FROM generate_series(1, :n) g"), {"n": n_resources})
        with eng.connect() as c:
            c.execute(text("ANALYZE resources"))
            c.commit()
        print(f"{n_resources:,} synthetic resources inserted in {time.perf_counter() - t0:.0f} s")
    eng.dispose()
    return Path(row[0])


def bench_token(eng: Any) -> str:
    """A fresh read token for every layer (the analysis POSTs need one), replacing the previous run's."""
    from layers.store import auth

    with eng.begin() as c:
        try:
            auth.revoke_token(c, "bench-analysis")
        except Exception:  # noqa: BLE001, S110 - no live token of that name yet
            pass
    with eng.begin() as c:
        return auth.create_token(c, "bench-analysis", layers=["*"], access="read", created_by="bench")


def raster_exact(path: Path, zone: Any) -> float:
    """Exact zone population on the raster: each pixel x the fraction of its area inside the zone."""
    with rasterio.open(path) as ds:
        w = from_bounds(*zone.bounds, transform=ds.transform)
        c0, r0 = max(0, int(np.floor(w.col_off)) - 1), max(0, int(np.floor(w.row_off)) - 1)
        win = Window(c0, r0, min(ds.width - c0, int(w.width) + 3), min(ds.height - r0, int(w.height) + 3))
        arr = ds.read(1, window=win).astype(float)
        tr = ds.window_transform(win)
        nodata = ds.nodata
    valid = (arr > 0) & ((arr != nodata) if nodata is not None else True)
    r, c = np.nonzero(valid)
    x0, y0 = tr.c + c * tr.a, tr.f + r * tr.e
    boxes = shapely.box(x0, y0 + tr.e, x0 + tr.a, y0)
    return float((arr[r, c] * shapely.area(shapely.intersection(boxes, zone)) / shapely.area(boxes)).sum())


def raster_mask(path: Path, zone: Any) -> float:
    with rasterio.open(path) as ds:
        out, _ = rasterio.mask.mask(ds, [mapping(zone)], crop=True, filled=True, nodata=0)
    v = out[0].astype(float)
    return float(v[v > 0].sum())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--reload", action="store_true")
    ap.add_argument("--resources", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--batch", type=int, default=100_000)
    args = ap.parse_args(argv)

    from dashboards.app import create_app
    from dashboards.services.coverage import shelter_coverage
    from dashboards.services.impact import impact_card
    from geoops import geodesic
    from layers.read import analysis as store
    from layers.store.settings import Settings

    url = bench_url(args.url)
    raster = ensure_data(url, reload=args.reload, n_resources=args.resources)
    eng = create_engine(url, pool_size=2)
    app = create_app(Settings(database_url=url))
    client = app.server.test_client()
    # analysis calls need an account or a token (dashboards.auth); one read token, replaced on every run
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {bench_token(eng)}"
    masked = make_url(url).render_as_string(hide_password=True)
    print(f"database {masked}; raster {raster}")
    with eng.connect() as c:
        print("resources:", c.execute(text("SELECT count(*) FROM resources")).scalar_one(),
              "| available:", c.execute(text("SELECT count(*) FROM resources WHERE status='available'")).scalar_one())

    # 1. impact
    zone = ZONE_10K
    km2 = float(geodesic.area_m2(zone)) / 1e6
    with eng.connect() as conn:
        t_fn, card = p50(lambda: impact_card(conn, zone, res=8), args.repeat)
        c_fn = CPU["last"]
    t_api, _ = p50(lambda: client.post("/api/v1/analysis/impact", json={"geometry": mapping(zone), "res": 8}),
                   args.repeat)
    c_api = CPU["last"]
    t_exact, exact = p50(lambda: raster_exact(raster, zone), max(3, args.repeat // 3))
    t_mask, masksum = p50(lambda: raster_mask(raster, zone), max(3, args.repeat // 3))
    print(f"\n1. impact, {km2:,.0f} km2 zone at res 8 ({card['cells']:,} cells)")
    print(f"   function p50 {t_fn:7.1f} ms (CPU {c_fn:6.1f} ms)  (parts: {card['timing_ms']})")
    print(f"   API      p50 {t_api:7.1f} ms (CPU {c_api:6.1f} ms)")
    print(f"   exact raster pixel-fraction p50 {t_exact:7.1f} ms  -> function/exact = {t_fn / t_exact:.2f}x")
    print(f"   rasterio.mask (centres)     p50 {t_mask:7.1f} ms  -> function/mask = {t_fn / t_mask:.2f}x")
    print(f"   population {card['population']:,.0f} vs exact {exact:,.0f} ({(card['population'] / exact - 1) * 100:+.2f} %)"
          f", vs mask {masksum:,.0f}")

    # 2. nearest-3, single
    rng = np.random.default_rng(7)
    pts = np.column_stack([rng.uniform(106, 122, 200), rng.uniform(39, 50, 200)])
    it = iter(range(10**9))

    def api_one() -> Any:
        x, y = pts[next(it) % len(pts)]
        return client.get(f"/api/v1/analysis/nearest?lon={x:.5f}&lat={y:.5f}&k=3")

    def fn_one(conn: Any) -> Any:
        x, y = pts[next(it) % len(pts)]
        return store.nearest_resources(conn, float(x), float(y), k=3)

    def sql_one(conn: Any) -> Any:
        x, y = pts[next(it) % len(pts)]
        return conn.execute(text("SELECT id, geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) FROM resources "
                                 "WHERE status = 'available' AND deleted_at IS NULL "
                                 "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) LIMIT 3"),
                            {"x": float(x), "y": float(y)}).all()

    reps = max(args.repeat * 5, 100)
    t_api1, _ = p50(api_one, reps)
    c_api1 = CPU["last"]
    with eng.connect() as conn:
        t_fn1, _ = p50(lambda: fn_one(conn), reps)
        c_fn1 = CPU["last"]
        t_sql1, _ = p50(lambda: sql_one(conn), reps)
    print("\n2. nearest-3 available resources, one point")
    print(f"   API p50 {t_api1:6.2f} ms   function p50 {t_fn1:6.2f} ms   raw KNN SQL p50 {t_sql1:6.2f} ms"
          f"   -> API/SQL = {t_api1 / t_sql1:.1f}x, function/SQL = {t_fn1 / t_sql1:.1f}x")
    print(f"   CPU p50: API {c_api1:6.2f} ms   function {c_fn1:6.2f} ms")

    # 3. nearest-3 batch
    n = args.batch
    q = np.column_stack([rng.uniform(97, 126, n), rng.uniform(37.5, 53, n)])
    t0, c0 = time.perf_counter(), time.process_time()
    r = client.post("/api/v1/analysis/nearest", json={"points": q.tolist(), "k": 3, "details": False})
    t_batch_api, c_batch_api = time.perf_counter() - t0, time.process_time() - c0
    body = r.get_json()
    with eng.connect() as conn:
        t0, c0 = time.perf_counter(), time.process_time()
        ids, dist, _, cand = store.nearest_resources_batch(conn, q[:, 0], q[:, 1], k=3)
        t_batch_fn, c_batch_fn = time.perf_counter() - t0, time.process_time() - c0
        rid, rlon, rlat = store.resource_points(conn)
    m = len(rid)
    sub = 50
    t0 = time.perf_counter()
    agree = 0
    for i in range(sub):
        _, _, d = GEOD.inv(np.full(m, q[i, 0]), np.full(m, q[i, 1]), rlon, rlat)
        agree += int(np.array_equal(rid[np.lexsort((rid, d))[:3]], ids[i]))
    t_brute = (time.perf_counter() - t0) / sub * n
    print(f"\n3. nearest-3 for {n:,} points among {m:,} available resources")
    print(f"   API {t_batch_api:6.2f} s (CPU {c_batch_api:5.2f} s) (server timing {body['timing_ms']})")
    print(f"   function {t_batch_fn:6.2f} s (CPU {c_batch_fn:5.2f} s)   brute-force Geod (extrapolated from {sub}) {t_brute:8.1f} s"
          f"   -> brute/function = {t_brute / t_batch_fn:,.0f}x; {agree}/{sub} identical to brute force")

    # 4. shelter coverage of whole prefectures
    print("\n4. shelter coverage, whole prefecture, reach 5 km, closed shelters as candidates")
    with eng.connect() as conn:
        for code in ("150200", "150700"):
            region = store.region_geometry(conn, code)
            t0 = time.perf_counter()
            out = shelter_coverage(conn, region["geometry"], max_distance_m=5000)
            dt = time.perf_counter() - t0
            tot = out["totals"]
            print(f"   {code} {region['name']}: {dt:6.2f} s; {len(out['cells']['h3']):,} populated cells, "
                  f"{len(out['shelters'])} open shelters, covered {tot['covered']:,.0f} of {tot['population']:,.0f}; "
                  f"parts {out['timing_ms']}")
    eng.dispose()


if __name__ == "__main__":
    main()
