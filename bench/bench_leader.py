"""The leader page's level switch (prefecture -> county) on the demo with all of China's regions, against the risk
service alone as the reference.

Run: ``python -m bench.bench_leader [--url URL] [--repeat 3]``. Without ``--url`` a scratch database
``sitroom_bench_leader_<pid>`` is made on this checkout's cluster (the demo drill on Inner Mongolia's modelled
population, then all of China's admin regions, as ``sitroom demo load`` does; a few minutes) and dropped afterwards.

What is timed, in this process (the page's main callback as a plain function, as a gunicorn worker runs it):

- ``switch``: :func:`dashboards.pages.leader.update` for the county level right after the prefecture level was
  drawn (the data version unchanged, nothing of the county level cached): risk, outlines, ranking and trend, plus
  the size of what goes to the browser (the callback's JSON);
- ``again``: the same call once more (what a second leader, or the same one switching back, pays);
- ``service``: :func:`dashboards.services.risk.regional_risk` at county level alone (the reference the ratio is
  taken against).

Target (docs/performance.md): the county switch under 2 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _demo(url: str) -> None:
    from layers.reference.demo import load_demo
    from layers.reference.regions import load_admin_regions

    eng = create_engine(url)
    with Session(eng) as s, s.begin():
        s.execute(text("SELECT set_config('sitroom.user', 'bench', true)"))
        load_demo(s, seed=2024, res=8, overview_res=7, all_china=False)
        load_admin_regions(s)
    with eng.connect() as c:
        c.execute(text("ANALYZE"))
        c.commit()
    eng.dispose()


def _clear_caches() -> None:
    from dashboards.pages import leader
    from dashboards.services import regions

    leader._risk_cache.clear()
    regions._outlines.clear()


def run(url: str, repeat: int) -> dict[str, float]:
    from dashboards.app import create_app
    from dashboards.services.risk import regional_risk
    from layers.store.settings import Settings

    app = create_app(Settings(database_url=url))
    from dashboards.pages import leader  # pages register themselves with the app made above

    defaults = leader.RiskWeights().to_dict()["values"]
    sliders = [defaults[n] for n in leader.WEIGHT_NAMES]
    switch, again, service, sizes = [], [], [], []
    for _ in range(repeat):
        _clear_caches()
        with app.server.test_request_context("/leader?lang=zh-CN"):
            leader.update("prefecture", [], *sliders, "zh-CN")
            t0 = time.perf_counter()
            out = leader.update("county", [], *sliders, "zh-CN")
            switch.append(time.perf_counter() - t0)
            sizes.append(len(json.dumps(out, default=lambda o: o.to_plotly_json())))
            t0 = time.perf_counter()
            leader.update("county", [], *sliders, "zh-CN")
            again.append(time.perf_counter() - t0)
        eng = create_engine(url)
        with eng.connect() as c:
            t0 = time.perf_counter()
            regional_risk(c, level="county", cells_bbox=list(Settings().service_area), cell_res=leader.CELL_RES)
            service.append(time.perf_counter() - t0)
        eng.dispose()
    return {"switch_s": statistics.median(switch), "again_s": statistics.median(again),
            "service_s": statistics.median(service), "bytes": statistics.median(sizes)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="an existing demo database (with all of China's regions)")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    url, scratch = a.url, None
    if url is None:
        from bench._scratch import create_scratch
        from layers.store.db import migrate

        scratch = create_scratch("sitroom_bench_leader")
        migrate(scratch)
        url = scratch
        _demo(url)
    try:
        r = run(url, a.repeat)
    finally:
        if scratch is not None:
            from bench._scratch import drop_scratch

            drop_scratch(scratch)
    print(f"leader county switch: {r['switch_s']:.2f} s (median of {a.repeat}; again {r['again_s']:.2f} s), "
          f"{r['bytes'] / 1e6:.2f} MB to the browser; risk service alone {r['service_s']:.2f} s; "
          f"ratio switch/service {r['switch_s'] / r['service_s']:.1f}x (shared 2-core machine)")


if __name__ == "__main__":
    main()
