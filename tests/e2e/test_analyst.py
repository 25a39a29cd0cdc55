"""The analyst page in headless Chromium on the demo data, driven as a person would: real clicks on Leaflet.draw's
toolbar and on the map draw a polygon, whose impact card shows the population the API gives for the same zone; an
annotation placed with the marker tool is listed, and shows on the wall. With ``SITROOM_SCREENSHOT_DIR`` set, saves
``analyst.png`` there (the README's is ``SITROOM_SCREENSHOT_DIR=docs/screenshots``); a plain run writes no tracked file.

The server is ``sitroom serve`` against a demo database of its own (loaded as ``demo_db`` of the dashboard tests does,
under another name so that the two never drop each other's), not the empty ``live_server`` database: the card needs
population, targets, shelters and resources.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import create_engine

from dashboards import ids
from tests.conftest import api_token, drop_database, sibling_database
from tests.dashboards import conftest as demo_conftest
from tests.e2e.conftest import (
    ensure_user,
    log_in,
    serving,
)

pytestmark = [pytest.mark.browser, pytest.mark.db]

WAIT_S = 60
LABEL = "前方指挥部 E2E"


@pytest.fixture(scope="module")
def demo_url(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from layers.reference.demo import load_demo

    target = sibling_database(db_url, "analyst_e2e")
    engine = create_engine(target)
    with Session(engine) as s, s.begin():
        load_demo(s, seed=demo_conftest.DEMO_SEED, res=8, overview_res=7, now=demo_conftest.DEMO_NOW,
                  cell_deg=demo_conftest.DEMO_CELL_DEG, all_china=False,
                  raster_dir=tmp_path_factory.mktemp("analyst_rasters"))
    engine.dispose()
    try:
        yield target
    finally:
        drop_database(target)


@pytest.fixture(scope="module")
def demo_server(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(demo_url, tmp_path_factory.mktemp("analyst_server") / "serve.log") as (base, _):
        yield base


def _json(url: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **auth},
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _click_map(driver: Any, map_el: Any, dx: int, dy: int) -> None:
    """A real click at (dx, dy) CSS pixels from the centre of the map."""
    ActionChains(driver).move_to_element_with_offset(map_el, dx, dy).pause(0.15).click().perform()
    time.sleep(0.25)


def test_draw_a_zone_read_the_card_place_an_annotation_see_it_on_the_wall(demo_url: str, demo_server: str,
                                                                         browser: Any) -> None:
    browser.get(demo_server + "/analyst?lang=en")  # anonymous: sent to the login page, then back here
    assert "/login" in browser.current_url
    log_in(browser, demo_server, *ensure_user(demo_url, "analyst"), next_path="/analyst?lang=en")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon"))
    map_el = browser.find_element(By.ID, ids.ANALYST_MAP)
    time.sleep(1.0)  # let the map settle (tiles, the edit control's mount event)

    # polygon tool, four corners, click the first vertex again to close
    browser.find_element(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon").click()
    for dx, dy in ((-160, -110), (150, -120), (170, 120), (-140, 130)):
        _click_map(browser, map_el, dx, dy)
    _click_map(browser, map_el, -160, -110)

    pop_el = wait.until(lambda d: d.find_elements(By.ID, ids.ANALYST_CARD_POPULATION))[0]
    shown = int(pop_el.text.replace(",", ""))
    zones = _json(demo_server + "/api/v1/impact-zones")["features"]
    drawn = [f for f in zones if f["properties"]["kind"] == "drawn"][0]
    assert drawn["properties"]["updated_by"] == "e2e_analyst"  # the history names who drew it
    engine = create_engine(demo_url)
    try:
        token = api_token(engine, access="read")
    finally:
        engine.dispose()
    api = _json(demo_server + "/api/v1/analysis/impact", {"geometry": drawn["geometry"]}, token)
    assert shown == round(api["population"]) and shown > 0
    card = browser.find_element(By.ID, ids.ANALYST_CARD).text
    assert "Modelled, not measured" in card and "Area-weighted" in card
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon.leaflet-draw-toolbar-"
                                                              "button-enabled"))
    target = os.environ.get("SITROOM_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        time.sleep(1.0)
        browser.save_screenshot(str(Path(target) / "analyst.png"))

    # annotation: mode, label, marker tool, one click on the map
    browser.find_element(By.CSS_SELECTOR, f"#{ids.ANALYST_MODE} input[value='annotation']").click()
    label = browser.find_element(By.ID, ids.ANALYST_LABEL)
    label.clear()
    label.send_keys(LABEL)
    browser.find_element(By.CSS_SELECTOR, ".leaflet-draw-draw-marker").click()
    _click_map(browser, map_el, 60, 40)
    wait.until(lambda d: LABEL in d.find_element(By.ID, ids.ANALYST_ANNOTATION_LIST).text)
    anns = _json(demo_server + "/api/v1/layers/annotations")["features"]
    assert any((f["properties"] or {}).get("label") == LABEL for f in anns)

    # the wall shows it (permanent label of the annotation)
    browser.get(demo_server + "/wall?lang=en")
    wait.until(lambda d: any(LABEL in e.text for e in d.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")))
