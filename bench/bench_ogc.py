"""OGC API through ``sitroom serve`` vs PostGIS running the same query alone: an items page of 1,000 incidents and
a z8 vector tile, with 100k incidents in the store.

Run: ``python -m bench.bench_ogc [--incidents 100000] [--pages 40] [--tiles 60] [--seed 13]``.

Items: pages of ``limit=1000`` at seeded cursors (``after``), each fetched over HTTP with a read token
(``/ogc/collections/incidents/items``); the reference is the statement the server runs for that page (captured
from :func:`layers.read.features.fetch_items`; a next page has no count) executed alone on a psycopg connection, rows
fetched. Tiles: z8 tiles over the data, each requested once (cache misses:
``/ogc/collections/incidents/tiles/WebMercatorQuad/8/y/x``); the reference is
:func:`layers.render.mvt.tile_statement` for the same tile. Reported: p50/p95 of each and the ratio of the p95s.
The machine is shared: compare the ratios, not the milliseconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, event, text

from bench._scratch import create_scratch, drop_scratch, serve, stop
from layers.read.features import fetch_items
from layers.render import mvt
from layers.render.tiles import tile_for_lonlat


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def _get(url: str, token: str) -> float:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--tiles", type=int, default=60)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)

    from layers.store.auth import create_token
    from layers.store.db import migrate

    url = create_scratch("bench_ogc")
    proc = None
    try:
        migrate(url)
        eng = create_engine(url)
        rng = np.random.default_rng(args.seed)
        with eng.begin() as c:
            c.execute(text(
                "INSERT INTO incidents (source, external_id, name, kind, status, severity, occurred_at, geom) "
                "SELECT 'bench', 'b' || g, 'incident ' || g, 'fire', 'reported', 'major', now(), "
                "ST_SetSRID(ST_MakePoint(97 + 29 * random(), 37 + 16 * random()), 4326) "
                "FROM generate_series(1, :n) g"), {"n": args.incidents})
            token = create_token(c, "bench-ogc", layers=["*"], access="read", created_by="bench")
        with eng.connect() as c:
            c.execute(text("ANALYZE incidents"))
            c.commit()
            max_id = int(c.execute(text("SELECT max(id) FROM incidents")).scalar_one())
        proc, base = serve(url, Path(tempfile.mkdtemp()) / "serve.log", workers=1)

        afters = sorted(int(a) for a in rng.integers(0, max(1, max_id - 1000), args.pages))
        # the statements of one page, as the server runs them
        captured: list[tuple[str, Any]] = []
        with eng.connect() as c:
            def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
                captured.append((statement, parameters))
            event.listen(c, "before_cursor_execute", grab)
            fetch_items(c, "incidents", limit=1000, after=0, count=False)  # a next page: no count
            event.remove(c, "before_cursor_execute", grab)
        http_items = [_get(f"{base}/ogc/collections/incidents/items?limit=1000&after={a}", token) for a in afters]
        sql_items = []
        raw = eng.raw_connection()
        try:
            cur = raw.cursor()
            for a in afters:
                started = time.perf_counter()
                for statement, params in captured:
                    p = dict(params) if isinstance(params, dict) else params
                    if isinstance(p, dict):
                        p = {k: (a if str(k).startswith("id_") else v) for k, v in p.items()}
                    cur.execute(statement, p)
                    cur.fetchall()
                sql_items.append(time.perf_counter() - started)

            xs, ys = rng.uniform(98, 125, args.tiles * 3), rng.uniform(38, 52, args.tiles * 3)
            tiles = list(dict.fromkeys(tile_for_lonlat(float(x), float(y), 8) for x, y in zip(xs, ys, strict=True)))
            tiles = tiles[: args.tiles]
            http_tiles = [_get(f"{base}/ogc/collections/incidents/tiles/WebMercatorQuad/8/{y}/{x}", token)
                          for x, y in tiles]
            stmt = mvt.tile_statement("incidents").compile(eng)
            sql_tiles = []
            for x, y in tiles:
                started = time.perf_counter()
                cur.execute(str(stmt), {**stmt.params, "z": 8, "x": x, "y": y})
                cur.fetchall()
                sql_tiles.append(time.perf_counter() - started)
        finally:
            raw.close()
        eng.dispose()
        print(f"incidents: {args.incidents:,}; {len(afters)} items pages of 1000, {len(tiles)} distinct z8 tiles "
              "(shared 2-core machine: read the ratios)")
        for label, http, sql in (("items page (1000)", http_items, sql_items), ("z8 MVT tile", http_tiles, sql_tiles)):
            print(f"{label:18s} OGC API over HTTP p50 {_p(http, 50):7.1f} ms  p95 {_p(http, 95):7.1f} ms | "
                  f"PostGIS alone p50 {_p(sql, 50):7.1f} ms  p95 {_p(sql, 95):7.1f} ms | "
                  f"ratio p95 {_p(http, 95) / max(_p(sql, 95), 1e-9):.2f}")
    finally:
        stop(proc)
        drop_scratch(url)


if __name__ == "__main__":
    main()
