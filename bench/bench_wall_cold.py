"""The wall's first numbers after a cold server start, against the same page on the warm server.

Run: ``python -m bench.bench_wall_cold [--url URL] [--repeat 3]``. Without ``--url`` a scratch database with the
demo (Inner Mongolia and the drill) is made on this checkout's cluster and dropped afterwards.

Each round starts ``sitroom serve`` (gunicorn, 2 workers) anew, waits for ``/api/v1/health``, then opens ``/wall``
in Debian's headless Chromium at 1920x1080 and times until the incident KPI shows a number (``cold``); then opens
the page again in a fresh browser on the same, now warm, server (``warm``, the reference). The ratio says what a
cold process costs on top of the page itself. Target (docs/performance.md): the first numbers under 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._scratch import serve, stop  # noqa: E402
from tests.e2e.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

NUMBERS_JS = ("const e = document.getElementById('wall-kpi-incidents');"
              " return !!e && /[0-9]/.test(e.textContent);")


def _browser(tmp: Path) -> object:
    from selenium import webdriver

    o = webdriver.ChromeOptions()
    o.binary_location = str(CHROMIUM)
    for f in CHROMIUM_FLAGS:
        o.add_argument(f)
    o.add_argument("--window-size=1920,1080")
    o.add_argument(f"--user-data-dir={tmp / str(time.monotonic_ns())}")
    return webdriver.Chrome(options=o, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))


def _first_numbers(base: str, tmp: Path) -> float:
    from selenium.webdriver.support.ui import WebDriverWait

    d = _browser(tmp)
    try:
        t0 = time.perf_counter()
        d.get(base + "/wall")  # type: ignore[attr-defined]
        WebDriverWait(d, 120, poll_frequency=0.05).until(lambda d: d.execute_script(NUMBERS_JS))
        return time.perf_counter() - t0
    finally:
        d.quit()  # type: ignore[attr-defined]


def run(url: str, repeat: int) -> dict[str, float]:
    cold, warm, start = [], [], []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for _ in range(repeat):
            t0 = time.perf_counter()
            proc, base = serve(url, tmp / "serve.log", workers=2)
            start.append(time.perf_counter() - t0)
            try:
                cold.append(_first_numbers(base, tmp))
                warm.append(_first_numbers(base, tmp))
            finally:
                stop(proc)
    return {"start_s": statistics.median(start), "cold_s": statistics.median(cold),
            "warm_s": statistics.median(warm)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="an existing demo database")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    url, scratch = a.url, None
    if url is None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.orm import Session

        from bench._scratch import create_scratch
        from layers.reference.demo import load_demo
        from layers.store.db import migrate

        scratch = url = create_scratch("sitroom_bench_wall_cold")
        migrate(url)
        eng = create_engine(url)
        with Session(eng) as s, s.begin():
            load_demo(s, seed=2024, res=8, overview_res=7, all_china=False)
        with eng.connect() as c:
            c.execute(text("ANALYZE"))
            c.commit()
        eng.dispose()
    try:
        r = run(url, a.repeat)
    finally:
        if scratch is not None:
            from bench._scratch import drop_scratch

            drop_scratch(scratch)
    print(f"wall first numbers after a cold start: {r['cold_s']:.2f} s (median of {a.repeat}; server start to "
          f"healthy {r['start_s']:.2f} s before it); warm server {r['warm_s']:.2f} s; ratio cold/warm "
          f"{r['cold_s'] / r['warm_s']:.1f}x (shared 2-core machine)")


if __name__ == "__main__":
    main()
