"""The situation report on the demo data: time to generate the PDF, against the HTML-only reference.

Run: ``python -m bench.bench_sitrep [--runs 5] [--seed 2024] [--all-china] [--out /tmp/sitrep.pdf]``

In a scratch database ``sitroom_bench_sitrep_<pid>`` on this checkout's private cluster (or the server of
``SITROOM_DATABASE_URL``; dropped afterwards) the offline demo is loaded (:func:`layers.reference.demo.load_demo`: Inner
Mongolia's regions, unless ``--all-china``; the modelled population at res 8 and 7; the drill of ``--seed``). Then
:func:`dashboards.reports.generate` runs ``--runs`` times for each of:

- ``pdf`` zh-CN, the first run with an empty tile cache (cold: basemap tiles rendered), then warm;
- ``html`` zh-CN (the reference: the same data, map and template, without WeasyPrint);
- ``pdf`` for a past ``at`` (just after the load: the whole picture rebuilt from ``feature_history``).

Printed: p50 / max of each step (gather, map, html, pdf), of the total and of the CPU time of the process (on a
busy machine the wall time is a multiple of it: the load average is printed), and the PDF / HTML ratio. Target (issue
5): a PDF in under 3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench._scratch import create_scratch, drop_scratch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _stats(rows: list[dict[str, float]], key: str) -> str:
    vals = [r[key] for r in rows if key in r]
    if not vals:
        return "-"
    return f"{statistics.median(vals):7.0f} / {max(vals):7.0f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--all-china", action="store_true", help="load every region of China (slower load)")
    ap.add_argument("--out", type=Path, default=None, help="write the last zh-CN PDF here")
    args = ap.parse_args(argv)

    from dashboards.reports import generate
    from layers.reference.demo import load_demo
    from layers.store.db import migrate
    from layers.store.settings import Settings

    url = create_scratch("sitroom_bench_sitrep")
    engine = create_engine(url)
    try:
        migrate(url)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, Session(engine) as s, s.begin():
            s.execute(text("SELECT set_config('sitroom.user', 'bench', true)"))
            load_demo(s, seed=args.seed, all_china=args.all_china, raster_dir=tmp)
        with engine.connect() as c:
            c.execute(text("ANALYZE"))
            c.commit()
            counts = {t: c.execute(text(f"SELECT count(*) FROM {t} WHERE deleted_at IS NULL")).scalar_one()
                      for t in ("hazards", "incidents", "shelters", "resources", "admin_regions")}
        print(f"demo loaded in {time.perf_counter() - t0:.1f} s: {counts}; load average {os.getloadavg()[0]:.2f}")

        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(database_url=url, state_dir=Path(tmp) / "state", tile_cache_dir=Path(tmp) / "tiles")
            results: dict[str, list[dict[str, float]]] = {"pdf (cold tiles)": [], "pdf": [], "html (reference)": [],
                                                          "pdf, past at": []}
            last: dict[str, Any] = {}
            past = datetime.now(UTC)  # after the load: every row is rebuilt from history
            for i in range(args.runs + 1):
                label = "pdf (cold tiles)" if i == 0 else "pdf"
                last = generate(engine, settings, fmt="pdf", lang="zh-CN")
                results[label].append(last["timing_ms"])
                if i:
                    results["html (reference)"].append(generate(engine, settings, fmt="html")["timing_ms"])
                    results["pdf, past at"].append(generate(engine, settings, fmt="pdf", at=past)["timing_ms"])
            steps = ("gather", "map", "html", "pdf", "total", "cpu")
            print(f"{'ms (p50 / max)':20s} " + " ".join(f"{k:>15s}" for k in steps))
            for label, rows in results.items():
                print(f"{label:20s} " + " ".join(f"{_stats(rows, k):>15s}" for k in steps))
            pdf_p50 = statistics.median(r["total"] for r in results["pdf"])
            cpu_p50 = statistics.median(r["cpu"] for r in results["pdf"])
            html_p50 = statistics.median(r["total"] for r in results["html (reference)"])
            print(f"PDF p50 {pdf_p50 / 1000:.2f} s (target < 3 s), HTML-only p50 {html_p50 / 1000:.2f} s, "
                  f"ratio PDF/HTML {pdf_p50 / html_p50:.2f}; PDF CPU p50 {cpu_p50 / 1000:.2f} s; "
                  f"PDF {len(last['body']) / 1024:.0f} KiB; load average now {os.getloadavg()[0]:.2f}")
            if args.out:
                args.out.write_bytes(last["body"])
                print(f"wrote {args.out}")
    finally:
        engine.dispose()
        drop_scratch(url)


if __name__ == "__main__":
    main()
