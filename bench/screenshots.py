"""Screenshots of every page at 1920x1080 on the demo drill, for the README:
``python -m bench.screenshots [DIR [PAGE ...]]`` (default ``docs/screenshots``, every page).

The demo (Inner Mongolia only, as the dashboard tests load it) goes into a scratch database ``sitroom_shots_<pid>``
on this checkout's private cluster (dropped afterwards); ``sitroom serve`` runs on it with the maps opening on
Inner Mongolia (``SITROOM_VIEW_AREA``); headless Chromium signs in with the role of each page and saves
``wall.png``, ``analyst.png`` (with a shelter's popup open), ``planner.png`` and ``leader.png`` once the map's
vector tiles have stopped coming.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._scratch import create_scratch, drop_scratch, load_demo_into, serve, stop  # noqa: E402
from bench.bench_wall import _browser  # noqa: E402

PAGES = {"wall": ("display", "wall-map"), "analyst": ("analyst", "analyst-map"),
         "planner": ("planner", "planner-map"), "leader": ("admin", "leader-map"),
         "command": ("admin", "command-map"), "monitor": ("admin", "monitor-map")}


def _settled(map_id: str) -> Callable[[Any], bool]:
    """A WebDriverWait condition: the map exists and its vector-tile count has not moved for 2 s."""
    seen = [-1, time.monotonic()]

    def ok(d: Any) -> bool:
        n = d.execute_script(f"const M = window.sitroomMaps; return M && M.maps['{map_id}'] ? M.stats.tiles : -1")
        if n != seen[0]:
            seen[:] = [n, time.monotonic()]
            return False
        return n >= 0 and time.monotonic() - seen[1] > 2.0

    return ok


def _wall_ready(d: Any) -> bool:
    """The wall has its picture: the incident KPI shows a number and no connection banner is up."""
    return bool(d.execute_script(
        "const k = document.getElementById('wall-kpi-incidents'); const b = document.getElementById('wall-banner');"
        "return !!k && /[0-9]/.test(k.textContent) && !(b && !b.classList.contains('sr-hidden'));"))


def _shelter_popup(d: Any, url: str) -> None:
    """Zoom the analyst's map onto the fullest open shelter of the demo and click it, so its popup shows."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    eng = create_engine(url)
    with eng.connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM shelters WHERE status = 'open' AND capacity > 0 "
                                  "ORDER BY occupancy::float / capacity DESC, id LIMIT 1")).one()
    eng.dispose()
    d.execute_script(f"window.sitroomMaps.maps['analyst-map'].setView([{lat}, {lon}], 12, {{animate: false}})")
    WebDriverWait(d, 120, poll_frequency=0.25).until(_settled("analyst-map"))
    x, y, w, h = d.execute_script(f"const m = window.sitroomMaps.maps['analyst-map']; "
                                  f"const p = m.latLngToContainerPoint([{lat}, {lon}]); const s = m.getSize(); "
                                  "return [p.x, p.y, s.x, s.y]")
    el = d.find_element(By.ID, "analyst-map")
    ActionChains(d).move_to_element_with_offset(el, round(x - w / 2), round(y - h / 2)).pause(0.1).click().perform()
    WebDriverWait(d, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-popup-content .sr-pop-title"))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else ROOT / "docs" / "screenshots")
    pages = {p: PAGES[p] for p in args[1:]} or PAGES  # python -m bench.screenshots DIR [PAGE ...]
    from selenium.webdriver.support.ui import WebDriverWait

    from layers.render.tiles import DEMO_BBOX
    from tests.e2e.conftest import ensure_user, log_in

    url = create_scratch("sitroom_shots")
    proc = None
    try:
        load_demo_into(url, monitoring="monitor" in pages)  # /monitor shows the stations of `sitroom demo load`
        os.environ["SITROOM_VIEW_AREA"] = json.dumps(list(DEMO_BBOX))
        proc, base = serve(url, Path(f"/tmp/sitroom-bench-shots-{os.getpid()}.log"), workers=2, threads=4)
        target.mkdir(parents=True, exist_ok=True)
        for page, (role, map_id) in pages.items():
            d = _browser()
            try:
                log_in(d, base, *ensure_user(url, role), next_path=f"/{page}")
                WebDriverWait(d, 180, poll_frequency=0.25).until(_settled(map_id))
                if page == "wall":  # a busy machine may time a poll out: the wall shows its banner until the next
                    WebDriverWait(d, 180, poll_frequency=0.5).until(_wall_ready)
                if page == "analyst":
                    _shelter_popup(d, url)
                time.sleep(1.0)  # the last tiles paint (no condition tells when a canvas is drawn)
                d.save_screenshot(str(target / f"{page}.png"))
                print(f"screenshot: {target / f'{page}.png'}", flush=True)
            finally:
                d.quit()
    finally:
        stop(proc)
        drop_scratch(url)


if __name__ == "__main__":
    main()
