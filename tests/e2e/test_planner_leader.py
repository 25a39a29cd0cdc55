"""Planner and leader in headless Chromium against ``sitroom serve`` on the demo data.

A planner picks a county, runs the coverage query, sees the load table and the hexagons, exports the CSV and finds
the downloaded file (one row per cell); a leader switches prefecture/county and moves a weight slider and sees the
ranking change. With ``SITROOM_SCREENSHOT_DIR`` set, 1920x1080 screenshots are saved there (``planner.png``,
``leader.png``; the committed ones are in ``docs/screenshots``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboards import ids
from tests.dashboards.conftest import demo_db  # noqa: F401 - the demo database fixture
from tests.e2e.conftest import ensure_user, log_in, serving, wait_painted, waiting

pytestmark = pytest.mark.db
WAIT_S = 90


@pytest.fixture(scope="module")
def demo_server(demo_db, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    """``sitroom serve`` on the demo database."""
    with serving(demo_db.url, tmp_path_factory.mktemp("demo_server") / "serve.log") as (base, _):
        yield base


def _wait(driver, cond, timeout: float = WAIT_S):
    return waiting(driver, timeout).until(cond)


def _pick(driver, dropdown_id: str, text: str) -> None:
    """Choose an option of a dcc.Dropdown by typing part of its label, as a person would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.ID, dropdown_id)
    box.click()
    field = _wait(driver, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "input")
                                          if e.is_displayed() and e == d.switch_to.active_element), None))
    field.send_keys(text)
    # the list filters as one types, and a dependent list (the counties of a prefecture) fills by a callback:
    # choose once an option naming ``text`` is shown, not after a guessed pause
    _wait(driver, lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                             if o.is_displayed() and text in o.text] or None)
    field.send_keys(Keys.ENTER)
    _wait(driver, lambda d: text in d.find_element(By.ID, dropdown_id).text or None)


def _sql_names(url: str, sql: str, **params) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return sorted(str(v) for v in c.execute(text(sql), params).scalars())
    finally:
        engine.dispose()


def _zoom(driver, map_id: str) -> int | None:
    return driver.execute_script(f"const m = window.sitroomMaps && window.sitroomMaps.maps['{map_id}'];"
                                 "return m ? m.getZoom() : null;")


def _shot(driver, name: str, map_id: str) -> None:
    target = os.environ.get("SITROOM_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        wait_painted(driver, map_id)
        driver.save_screenshot(str(Path(target) / name))


def test_planner_run_and_export(demo_db, demo_server, browser, tmp_path, severe_console_messages) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    log_in(browser, demo_server, *ensure_user(demo_db.url, "planner"), next_path="/planner?lang=zh-CN")
    _wait(browser, lambda d: d.find_elements(By.ID, ids.PLANNER_RUN))
    # Leaflet.draw speaks the page's language
    polygon_tool = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon"))[0]
    assert polygon_tool.get_attribute("title") == "画多边形"
    # each radio button sits on the line of its label
    for opt in browser.find_elements(By.CSS_SELECTOR, f"#{ids.PLANNER_SCOPE_KIND} label"):
        box = opt.find_element(By.TAG_NAME, "input").rect
        text_box = opt.find_element(By.CSS_SELECTOR, ".dash-options-list-option-text").rect
        assert abs((box["y"] + box["height"] / 2) - (text_box["y"] + text_box["height"] / 2)) < 6, (box, text_box)
    _pick(browser, ids.PLANNER_PREFECTURE, "包头市")
    _pick(browser, ids.PLANNER_COUNTY, "昆都仑区")
    drive = browser.find_element(By.XPATH, f"//*[@id='{ids.PLANNER_DISTANCE_PRESET}']//input[@value='drive']")
    drive.click()
    _wait(browser, lambda d: drive.is_selected())
    start_zoom = _wait(browser, lambda d: _zoom(d, ids.PLANNER_MAP))
    browser.find_element(By.ID, ids.PLANNER_RUN).click()
    # the rows' texts are read in the wait: a later answer may redraw the table between finding a row and reading it
    shown = _wait(browser, lambda d: sorted(tr.find_elements(By.TAG_NAME, "td")[0].text
                                            for tr in d.find_elements(By.CSS_SELECTOR, "#planner-load-rows tbody tr")))
    # the load table lists every open shelter within the drive distance of the county, each once: PostGIS geography
    # over the store is the oracle
    from dashboards.pages.planner import PRESETS

    expected = _sql_names(demo_db.url, """
        SELECT coalesce(s.name, '#' || s.id) FROM shelters s, admin_regions r
        WHERE r.name = '昆都仑区' AND r.deleted_at IS NULL AND s.deleted_at IS NULL AND s.status <> 'closed'
          AND ST_DWithin(s.geom::geography, r.geom::geography, :d)""", d=PRESETS["drive"])
    assert shown == expected and shown, (shown, expected)
    hexes = browser.find_elements(By.CSS_SELECTOR, f"#{ids.PLANNER_MAP} path.leaflet-interactive")
    assert len(hexes) > 10
    status = browser.find_element(By.ID, ids.PLANNER_STATUS).text
    assert status.startswith("完成")
    # the map flies to the county: closer than the province it opened on, and no tile beyond what the server renders
    _wait(browser, lambda d: (_zoom(d, ids.PLANNER_MAP) or 0) > start_zoom)
    wait_painted(browser, ids.PLANNER_MAP)
    from dashboards.tiles import OFFLINE_MAX_ZOOM

    zoom = _zoom(browser, ids.PLANNER_MAP)
    tiles = browser.execute_script(
        f"return Array.from(document.querySelectorAll('#{ids.PLANNER_MAP} img.leaflet-tile')).map(i => i.src);")
    levels = {int(u.split("/")[-3]) for u in tiles if "/tiles/" in u}
    assert levels and max(levels) <= OFFLINE_MAX_ZOOM, (zoom, sorted(levels))
    _shot(browser, "planner.png", ids.PLANNER_MAP)
    browser.find_element(By.ID, ids.PLANNER_EXPORT_CSV).click()
    # Chromium writes into a .crdownload file and renames it when the download is complete
    files = _wait(browser, lambda d: not list(downloads.glob("*.crdownload"))
                  and [p for p in downloads.glob("*.csv") if p.stat().st_size > 0], 60)
    # blocks, each under its own header row, named by the first column: the query, the cells, the shelters, ...
    blocks: dict[str, list[dict[str, str]]] = {}
    header: list[str] = []
    for row in csv.reader(files[0].open(encoding="utf-8")):
        if not row:
            continue
        if row[0] == "block":
            header = row
        else:
            blocks.setdefault(row[0], []).append(dict(zip(header, row, strict=True)))
    n_cells = int(status.split("完成:")[1].split("个网格")[0].replace(",", "").strip())
    (query,) = blocks["query"]
    assert (query["scope"], float(query["distance_m"])) == ("昆都仑区", PRESETS["drive"]), query
    assert len(blocks["cell"]) == n_cells and blocks["cell"][0].keys() >= {"h3", "population", "covered", "uncovered"}
    assert sorted(r["name"] for r in blocks["shelter"]) == shown
    assert not [m for m in severe_console_messages(browser) if "favicon" not in m]


def _ranking(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [tr.text for tr in driver.find_elements(By.CSS_SELECTOR, f"#{ids.LEADER_RANKING} tbody tr")]


def _risks(driver) -> dict[str, float]:
    """Region -> the risk shown in the ranking (columns: rank, region, risk, ...)."""
    from selenium.webdriver.common.by import By

    out = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, f"#{ids.LEADER_RANKING} tbody tr"):
        cells = [(td.get_attribute("textContent") or "").strip() for td in tr.find_elements(By.TAG_NAME, "td")]
        out[cells[1]] = float(cells[2].replace(",", ""))
    return out


def test_leader_switch_level_and_weight(demo_server, browser, severe_console_messages) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{demo_server}/leader?lang=zh-CN")
    first = _wait(browser, lambda d: _ranking(d) or None, 150)
    n_regions = lambda d: len(d.find_elements(By.CSS_SELECTOR, f"#{ids.LEADER_MAP} path.leaflet-interactive"))  # noqa: E731
    _wait(browser, lambda d: n_regions(d) >= 12)
    # the hazards (on by default) are read over the choropleth: at a hazard's middle the topmost map layer is the
    # operational layers' canvas, not a region's fill
    from dashboards.pages.leader import CHOROPLETH_PANE

    stack = _wait(browser, lambda d: d.execute_script("""
        const m = window.sitroomMaps && window.sitroomMaps.maps[arguments[0]];
        const hz = m && window.sitroomMaps.layers[arguments[0]] && window.sitroomMaps.layers[arguments[0]].hazards;
        const pane = m && m.getPane(arguments[1]);
        const paths = pane ? pane.querySelectorAll('path.leaflet-interactive') : [];
        if (!hz || !paths.length) return null;
        const live = m.getPane('sitroomLive');
        return {choropleth: +getComputedStyle(pane).zIndex, live: +getComputedStyle(live).zIndex,
                regions: paths.length};""", ids.LEADER_MAP, CHOROPLETH_PANE))
    assert stack["choropleth"] < stack["live"] and stack["regions"] == n_regions(browser), stack
    _shot(browser, "leader.png", ids.LEADER_MAP)
    browser.find_element(By.XPATH, f"//*[@id='{ids.LEADER_LEVEL}']//input[@value='county']").click()
    _wait(browser, lambda d: n_regions(d) >= 103, 150)
    by_county = _wait(browser, lambda d: (r := _ranking(d)) != first and r or None, 150)
    before = _wait(browser, lambda d: _risks(d) or None)
    # type a larger vulnerability into the slider's number field: every risk number grows
    from selenium.webdriver.common.keys import Keys

    field = browser.find_element(By.CSS_SELECTOR, f"#{ids.leader_weight('vulnerability')} input, "
                                                  f"input#{ids.leader_weight('vulnerability')}")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("2", Keys.ENTER)
    field.send_keys(Keys.TAB)
    _wait(browser, lambda d: (r := _ranking(d)) != by_county and r or None, 150)
    after = _wait(browser, lambda d: (r := _risks(d)) != before and r or None)
    # risk is intensity x exposure x vulnerability (docs/analyses.md): a uniform vulnerability of 2 doubles every
    # region's risk and keeps the order; the table shows whole numbers, so each may be off by the rounding
    assert list(after) == list(before), (before, after)
    assert all(abs(after[k] - 2 * before[k]) <= 1.5 for k in before) and any(v > 0 for v in before.values()), (
        before, after)
    assert not [m for m in severe_console_messages(browser) if "favicon" not in m]
