"""A feed's single-feature write, side by side: the pandas-free path (layers.ingest.records) against the file-import path
(layers.ingest.imports.validate_frame + upsert_features, the reference), in the same transaction kind as the API.

Run: ``python -m bench.bench_write [--writes 200]``

In a scratch database ``sitroom_bench_write_<pid>`` (private cluster or ``SITROOM_DATABASE_URL``'s server; dropped
afterwards), each write is one committed transaction inserting one new incident (as
``POST /api/v1/layers/incidents`` does), the two paths interleaved so that both see the same machine. Prints
p50 wall time and CPU time per write for each path (CPU of this process: the Python side) and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench._scratch import create_scratch, drop_scratch


def _body(n: int) -> dict[str, Any]:
    return {"type": "Feature", "id": f"w-{n}",
            "geometry": {"type": "Point", "coordinates": [111.0 + (n % 1000) * 1e-3, 40.0 + (n // 1000) * 1e-3]},
            "properties": {"name": f"写入测试 {n}", "kind": ("fire", "flood", "traffic")[n % 3], "status": "reported",
                           "severity": "一般", "电话": "0471-1"}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writes", type=int, default=200)
    args = ap.parse_args(argv)
    from layers.ingest.imports import upsert_features, validate_frame
    from layers.ingest.writes import _frame, feature_items, write_features
    from layers.store.db import migrate

    url = create_scratch("sitroom_bench_write")
    try:
        migrate(url)
        eng = create_engine(url)

        def fast(n: int) -> None:
            with Session(eng) as s, s.begin():
                write_features(s, "incidents", _body(n), source="bench-fast", user="bench")

        def reference(n: int) -> None:
            with Session(eng) as s, s.begin():
                records, geoms, _ = feature_items(_body(n))
                clean, problems, _ = validate_frame("incidents", _frame(records, geoms))
                assert not problems
                upsert_features(s, "incidents", clean, source="bench-frame", user="bench")

        times: dict[str, list[tuple[float, float]]] = {"records": [], "frame": []}
        for n in range(10):  # warm up: imports, statement caches, the pool
            fast(1_000_000 + n)
            reference(1_000_000 + n)
        for n in range(args.writes):
            for label, fn in (("records", fast), ("frame", reference)):
                t, c = time.perf_counter(), time.process_time()
                fn(n)
                times[label].append((time.perf_counter() - t, time.process_time() - c))
        with eng.connect() as c:
            stored = dict(c.execute(text("SELECT source, count(*) FROM incidents GROUP BY source")).all())
        eng.dispose()
    finally:
        drop_scratch(url)
    p50 = {k: (statistics.median(w for w, _ in v) * 1000, statistics.median(c for _, c in v) * 1000)
           for k, v in times.items()}
    print(f"{args.writes} single-incident writes per path, each its own transaction")
    print(f"{'path':<36} {'wall p50 ms':>12} {'CPU p50 ms':>12}")
    print(f"{'records (layers/ingest/records.py)':<36} {p50['records'][0]:>12.1f} {p50['records'][1]:>12.1f}")
    print(f"{'reference: frame (validate_frame)':<36} {p50['frame'][0]:>12.1f} {p50['frame'][1]:>12.1f}")
    print(f"ratio frame/records: wall {p50['frame'][0] / p50['records'][0]:.1f}x, "
          f"CPU {p50['frame'][1] / p50['records'][1]:.1f}x; stored {stored}")


if __name__ == "__main__":
    main()
