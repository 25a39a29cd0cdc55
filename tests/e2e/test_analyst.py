"""The analyst page in headless Chromium on the demo data, driven as a person would: real clicks on Leaflet.draw's
toolbar and on the map draw a polygon, whose impact card shows the population the API gives for the same zone; an
annotation placed with the marker tool is listed, and shows on the wall. With ``SITROOM_SCREENSHOT_DIR`` set, saves
``analyst.png`` there (the README's is ``SITROOM_SCREENSHOT_DIR=docs/screenshots``); a plain run writes no tracked file.

The server is ``sitroom serve`` against a demo database of its own (loaded as ``demo_db`` of the dashboard tests does,
under another name so that the two never drop each other's), not the empty ``live_server`` database: the card needs
population, targets, shelters and resources.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import create_engine

from dashboards import ids
from layers.render.tiles import DEMO_BBOX
from tests.conftest import api_token, drop_database, sibling_database
from tests.dashboards import conftest as demo_conftest
from tests.e2e.conftest import (
    click_found,
    ensure_user,
    log_in,
    serving,
    wait_painted,
    waiting,
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
def basemap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's site basemaps (empty until a test adds one with ``sitroom basemap add``)."""
    return tmp_path_factory.mktemp("site_basemaps")


@pytest.fixture(scope="module")
def demo_server(demo_url: str, basemap_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"SITROOM_VIEW_AREA": json.dumps(list(DEMO_BBOX)), "SITROOM_BASEMAP_DIR": str(basemap_dir)}
    with serving(demo_url, tmp_path_factory.mktemp("analyst_server") / "serve.log", env=env) as (base, _):
        yield base


def _json(url: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **auth},
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _vertices(driver: Any) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, f"#{ids.ANALYST_MAP} .leaflet-editing-icon"))


def _click_map(driver: Any, map_el: Any, dx: int, dy: int, *, vertex: bool = False) -> None:
    """A real click at (dx, dy) CSS pixels from the centre of the map; with ``vertex``, until Leaflet.draw has placed
    the vertex (so that the next click is a click of its own, not the second half of a double click)."""
    before = _vertices(driver) if vertex else 0
    ActionChains(driver).move_to_element_with_offset(map_el, dx, dy).pause(0.15).click().perform()
    if vertex:
        waiting(driver, WAIT_S, poll=0.1).until(lambda d: _vertices(d) > before)


def test_draw_a_zone_read_the_card_place_an_annotation_see_it_on_the_wall(demo_url: str, demo_server: str,
                                                                         browser: Any) -> None:
    browser.get(demo_server + "/analyst?lang=en")  # anonymous: sent to the login page, then back here
    assert "/login" in browser.current_url
    log_in(browser, demo_server, *ensure_user(demo_url, "analyst"), next_path="/analyst?lang=en")
    wait = waiting(browser, WAIT_S)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon"))
    map_el = browser.find_element(By.ID, ids.ANALYST_MAP)
    search_and_pick(browser, "Hohhot", "呼和浩特")  # the page opens on all of Inner Mongolia
    wait_still(browser)

    # polygon tool, four corners, click the first vertex again to close
    browser.find_element(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon").click()
    for dx, dy in ((-160, -110), (150, -120), (170, 120), (-140, 130)):
        _click_map(browser, map_el, dx, dy, vertex=True)
    _click_map(browser, map_el, -160, -110)

    pop_el = wait.until(lambda d: d.find_elements(By.ID, ids.ANALYST_CARD_POPULATION))[0]
    shown = int(pop_el.text.replace(",", ""))
    engine = create_engine(demo_url)
    try:
        token = api_token(engine, access="read")
    finally:
        engine.dispose()
    # read with a token: anonymous answers hide who changed what (docs/security.md)
    zones = _json(demo_server + "/api/v1/impact-zones", token=token)["features"]
    drawn = [f for f in zones if f["properties"]["kind"] == "drawn"][0]
    assert drawn["properties"]["updated_by"] == "e2e_analyst"  # the history names who drew it
    api = _json(demo_server + "/api/v1/analysis/impact", {"geometry": drawn["geometry"]}, token)
    assert shown == round(api["population"]) and shown > 0
    card = browser.find_element(By.ID, ids.ANALYST_CARD).text
    assert "Modelled, not measured" in card and "Area-weighted" in card
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon.leaflet-draw-toolbar-"
                                                              "button-enabled"))
    target = os.environ.get("SITROOM_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        wait_painted(browser, ids.ANALYST_MAP)
        browser.save_screenshot(str(Path(target) / "analyst.png"))

    # annotation: mode, label, marker tool, one click on the map
    browser.find_element(By.CSS_SELECTOR, f"#{ids.ANALYST_MODE} input[value='annotation']").click()
    label = browser.find_element(By.ID, ids.ANALYST_LABEL)
    label.clear()
    label.send_keys(LABEL)
    browser.find_element(By.CSS_SELECTOR, f"#{ids.ANALYST_COLOR} input[value='#43a047']").click()
    browser.find_element(By.CSS_SELECTOR, ".leaflet-draw-draw-marker").click()
    _click_map(browser, map_el, 60, 40)
    wait.until(lambda d: LABEL in d.find_element(By.ID, ids.ANALYST_ANNOTATION_LIST).text)
    # the symbol shows in the chosen colour, and Leaflet.draw's own blue pin is gone from the map
    wait.until(lambda d: any("43a047" in (i.get_attribute("src") or "")
                             for i in d.find_elements(By.CSS_SELECTOR, f"#{ids.ANALYST_MAP} .leaflet-marker-icon")))
    wait.until(lambda d: not [i for i in d.find_elements(By.CSS_SELECTOR, f"#{ids.ANALYST_MAP} .leaflet-marker-icon")
                              if "marker-icon" in (i.get_attribute("src") or "")])
    anns = _json(demo_server + "/api/v1/layers/annotations")["features"]
    assert any((f["properties"] or {}).get("label") == LABEL for f in anns)

    # the wall shows it (permanent label of the annotation)
    browser.get(demo_server + "/wall?lang=en")
    wait.until(lambda d: any(LABEL in e.text for e in d.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")))


# --- the map as a GIS: layers, popups, search, coordinates, measuring, zones, site basemaps ---------------------

MAP = ids.ANALYST_MAP


def tool(part: str) -> str:
    from dashboards.components.maplayers import maps_id

    return maps_id("analyst", part)


def map_js(d: Any, js: str) -> Any:
    """Run ``js`` with ``m`` = the analyst page's Leaflet map (as dashboards/assets/sitroom_maps.js registers it)."""
    return d.execute_script(f"const m = window.sitroomMaps.maps['{MAP}']; {js}")


def wait_map(d: Any) -> None:
    waiting(d, WAIT_S).until(lambda d: d.execute_script(
        f"return !!(window.sitroomMaps && window.sitroomMaps.maps['{MAP}'])"))


def wait_still(d: Any) -> None:
    """Until the map stops moving (a fly-to has ended): two polls half a second apart see the same view."""
    wait_map(d)
    seen: list[Any] = [None]

    def still(_: Any) -> bool:
        now = map_js(d, "return m._animatingZoom || (m._panAnim && m._panAnim._inProgress) ? null : "
                        "[m.getZoom(), m.getCenter().lat.toFixed(6), m.getCenter().lng.toFixed(6)].join()")
        ok = now is not None and now == seen[0]
        seen[0] = now
        return ok

    waiting(d, WAIT_S, poll=0.5).until(still)


def set_view(d: Any, lat: float, lon: float, zoom: int) -> None:
    wait_map(d)
    map_js(d, f"m.setView([{lat}, {lon}], {zoom}, {{animate: false}}); return 1")
    wait_still(d)


def click_lonlat(d: Any, lon: float, lat: float) -> None:
    """A real click on the map where (lon, lat) is."""
    el = d.find_element(By.ID, MAP)
    x, y, w, h = map_js(d, f"const p = m.latLngToContainerPoint([{lat}, {lon}]); const s = m.getSize(); "
                           "return [p.x, p.y, s.x, s.y]")
    ActionChains(d).move_to_element_with_offset(el, round(x - w / 2), round(y - h / 2)).pause(0.1).click().perform()


def search_and_pick(d: Any, query: str, expect: str) -> None:
    """Type ``query`` in the place search and click the first result naming ``expect``."""
    box = d.find_element(By.ID, tool("search"))
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)  # clear() empties the field without React hearing of it
    box.send_keys(query)
    # an answer to an earlier keystroke may redraw the hits after the one we want appeared: click_found looks again
    click_found(d, lambda d: next((h for h in d.find_elements(By.CSS_SELECTOR, ".sr-maps-hit") if expect in h.text),
                                  None), WAIT_S)


def open_analyst(d: Any, server: str, url: str, lang: str = "zh-CN") -> Any:
    log_in(d, server, *ensure_user(url, "analyst"), next_path=f"/analyst?lang={lang}")
    wait_map(d)
    return waiting(d, WAIT_S)


def _rows(url: str, sql: str) -> list[Any]:
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return list(c.execute(text(sql)).all())
    finally:
        engine.dispose()


POPUPS_JS = ("return Array.from(document.querySelectorAll('.leaflet-popup-content')).map(p => "
             "[p.innerText, Array.from(p.querySelectorAll('a.sr-pop-link')).map(a => a.href)])")


def test_click_a_shelter_a_resource_and_a_hazard_and_read_their_popups(demo_url: str, demo_server: str,
                                                                       browser: Any) -> None:
    wait = open_analyst(browser, demo_server, demo_url)
    shelter = _rows(demo_url, "SELECT id, name, ST_X(geom), ST_Y(geom), capacity, occupancy FROM shelters "
                              "WHERE status = 'open' AND capacity > 0 ORDER BY id LIMIT 1")[0]
    resource = _rows(demo_url, "SELECT id, name, ST_X(geom), ST_Y(geom), kind, status FROM resources "
                               "ORDER BY id LIMIT 1")[0]
    hazard = _rows(demo_url, "SELECT id, name, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), "
                             "warning_level FROM hazards WHERE deleted_at IS NULL ORDER BY ST_Area(geom) DESC "
                             "LIMIT 1")[0]
    from layers.store.vocab import label

    cases = [("shelters", shelter, 15, ["负荷", f"{round(100 * shelter[5] / shelter[4])}%", "开放"]),
             ("resources", resource, 15, [label("resource_kind", resource[4]), label("resource_status", resource[5])]),
             ("hazards", hazard, 8, ["预警级别", label("warning_level", hazard[4])])]
    for layer, (fid, name, lon, lat, *_), zoom, expected in cases:
        set_view(browser, lat, lon, zoom)
        click_lonlat(browser, lon, lat)
        # read the popup in one script: Dash may re-render it between two WebDriver calls
        text, links = wait.until(lambda d, name=name: [p for p in d.execute_script(POPUPS_JS) if name in p[0]])[0]
        for want in expected:
            assert want in text, (layer, want, text)
        assert any(f"layer={layer}&id={fid}" in (h or "") for h in links), links
        assert "更新时间" in text  # times in China Standard Time, labelled in the page's language


def test_toggle_layers_in_the_control(demo_url: str, demo_server: str, browser: Any) -> None:
    wait = open_analyst(browser, demo_server, demo_url, lang="en")
    wait.until(lambda d: map_js(d, "return Object.keys(window.sitroomMaps.layers['" + MAP + "']).length") >= 5)
    control = browser.find_element(By.CSS_SELECTOR, f"#{MAP} .leaflet-control-layers")
    ActionChains(browser).move_to_element(control).perform()  # the collapsed control opens on hover

    def row(name: str) -> Any:
        return next(lab for lab in control.find_elements(By.CSS_SELECTOR, "label") if lab.text.strip() == name)

    on_map = "return m.hasLayer(window.sitroomMaps.layers['" + MAP + "']['{key}'] || {{}})"
    assert map_js(browser, on_map.format(key="incidents"))
    row("Incidents").click()
    wait.until(lambda d: not map_js(d, on_map.format(key="incidents")))
    wait.until(lambda d: not d.find_element(By.ID, tool("legend-incidents")).is_displayed())
    row("Impact zones").click()
    wait.until(lambda d: map_js(d, on_map.format(key="impact_zones")))
    assert browser.find_element(By.ID, tool("legend-impact_zones")).is_displayed()


def test_search_a_county_and_a_town_and_land_on_them(demo_url: str, demo_server: str, browser: Any) -> None:
    from layers.reference.places import inner_mongolia_places

    open_analyst(browser, demo_server, demo_url)
    county = _rows(demo_url, "SELECT adcode, name, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                             "FROM admin_regions WHERE name = '土默特左旗'")[0]
    search_and_pick(browser, "tumotezuoqi", county[1])  # pinyin of a county
    wait_still(browser)
    inside = map_js(browser, f"return m.getBounds().contains([{county[3]}, {county[2]}]) && m.getZoom() >= 8")
    assert inside
    town = next(p for p in inner_mongolia_places() if p.name_zh and 2000 < p.population < 60000
                and " " not in p.name_en)
    search_and_pick(browser, town.name_en, f"{town.name_zh} · 地名")  # a GeoNames town by its English name
    wait_still(browser)
    lat, lon, zoom = map_js(browser, "const c = m.getCenter(); return [c.lat, c.lng, m.getZoom()]")
    pixel = 360.0 / (256 * 2 ** 12)  # the fly-to ends on a whole pixel of zoom 12
    assert abs(lat - town.lat) < pixel and abs(lon - town.lon) < pixel and zoom == 12
    assert town.name_zh in browser.find_element(By.CSS_SELECTOR, f"#{MAP} .sr-maps-mark").text


def test_measure_a_distance_and_an_area_against_a_geod_oracle(demo_url: str, demo_server: str, browser: Any) -> None:
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    wait = open_analyst(browser, demo_server, demo_url)
    set_view(browser, 40.82, 111.70, 10)
    el = browser.find_element(By.ID, MAP)
    for kind, offsets in (("distance", ((-300, 60), (-40, -120), (260, 90))),
                          ("area", ((-200, -100), (220, -140), (160, 170), (-180, 120)))):
        browser.find_element(By.ID, tool(f"measure-{kind}")).click()
        for dx, dy in offsets:
            ActionChains(browser).move_to_element_with_offset(el, dx, dy).pause(0.1).click().perform()
        n = len(offsets)
        value = wait.until(lambda d, n=n: [v for v in d.find_elements(By.ID, tool("measure-value"))
                                           if f"{n} 个点" in v.text])[0]
        pts = map_js(browser, f"return window.sitroomMaps.state['{MAP}'].measure.points")
        assert len(pts) == len(offsets) and not browser.find_elements(By.CSS_SELECTOR, ".leaflet-popup")
        lon, lat = [p[0] for p in pts], [p[1] for p in pts]
        shown_length = float(value.get_attribute("data-length-m"))
        assert shown_length == pytest.approx(geod.line_length(lon, lat), rel=1e-9, abs=1e-3)
        if kind == "area":
            area, _ = geod.polygon_area_perimeter(lon, lat)
            assert float(value.get_attribute("data-area-m2")) == pytest.approx(abs(area), rel=1e-6)
            assert "平方公里" in value.text or "km²" in value.text
        browser.find_element(By.ID, tool(f"measure-{kind}")).click()  # stop


def test_read_a_coordinate_in_cgcs2000_gauss_krueger_and_go_to_one(demo_url: str, demo_server: str,
                                                                   browser: Any) -> None:
    import re

    from pyproj import Transformer

    wait = open_analyst(browser, demo_server, demo_url, lang="en")
    set_view(browser, 40.84, 111.75, 12)
    el = browser.find_element(By.ID, MAP)
    ActionChains(browser).move_to_element_with_offset(el, 37, -21).perform()
    text = wait.until(lambda d: "EPSG:" in d.find_element(By.ID, tool("readout")).text
                      and d.find_element(By.ID, tool("readout")).text)
    lon, lat = map_js(browser, f"return window.sitroomMaps.state['{MAP}'].mouse")
    zone = int(re.search(r"zone (\d+)", text).group(1))
    x = float(re.search(r"X ([\d,.]+) m", text).group(1).replace(",", ""))
    y = float(re.search(r"Y ([\d,.]+) m", text).group(1).replace(",", ""))
    # oracle: PROJ's CM variant (EPSG:4534 + zone - 25, no zone prefix), the prefix added by hand
    e, n = Transformer.from_crs("EPSG:4490", f"EPSG:{4534 + zone - 25}", always_xy=True).transform(lon, lat)
    assert zone == 37 and "EPSG:4525" in text
    assert abs(y - (zone * 1e6 + e)) < 0.006 and abs(x - n) < 0.006
    box = browser.find_element(By.ID, tool("goto"))
    box.send_keys("37563254.00, 4523075.65")
    browser.find_element(By.ID, tool("goto-go")).click()
    wait.until(lambda d: "Gauss" in d.find_element(By.ID, tool("goto-msg")).text)
    wait_still(browser)
    clat, clon = map_js(browser, "const c = m.getCenter(); return [c.lat, c.lng]")
    assert abs(clat - 40.84) < 1e-5 and abs(clon - 111.75) < 1e-5


def test_select_a_zone_by_clicking_it_and_the_delete_mode_is_off_after_drawing(demo_url: str, demo_server: str,
                                                                              browser: Any) -> None:
    wait = open_analyst(browser, demo_server, demo_url)  # zh-CN: Leaflet.draw's "clear all" button is translated
    set_view(browser, 40.60, 111.20, 12)
    el = browser.find_element(By.ID, MAP)
    before = _rows(demo_url, "SELECT coalesce(max(id), 0) FROM impact_zones")[0][0]
    browser.find_element(By.CSS_SELECTOR, ".leaflet-draw-draw-polygon").click()
    for dx, dy in ((-120, -80), (110, -90), (130, 90), (-100, 100)):
        _click_map(browser, el, dx, dy, vertex=True)
    _click_map(browser, el, -120, -80)  # the first vertex again: closes the polygon
    wait.until(lambda d: d.find_elements(By.ID, ids.ANALYST_CARD_POPULATION))
    # the zone is saved by its own round trip: wait for its row, not the newest row of an earlier test
    zone_id = waiting(browser, WAIT_S, poll=0.25).until(
        lambda d: (z := _rows(demo_url, "SELECT max(id) FROM impact_zones")[0][0]) is not None and z > before and z)
    remove_on = ("return !!document.querySelector('.leaflet-draw-edit-remove.leaflet-draw-toolbar-button-enabled') "
                 "|| Array.from(document.querySelectorAll('.leaflet-draw-actions')).some(a => a.offsetParent)")
    wait.until(lambda d: d.execute_script(remove_on) is False)
    # another zone is selected from the list, then this one by a click on the map
    lon, lat = _rows(demo_url, f"SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                               f"FROM impact_zones WHERE id = {zone_id}")[0]
    def card_title(d: Any) -> str:  # textContent: the card may be scrolled out of view
        return str(d.execute_script(f"const h = document.querySelector('#{ids.ANALYST_CARD} h3'); "
                                    "return h ? h.textContent : ''"))

    def other_zone(d: Any) -> Any:
        return next((b for b in d.find_elements(By.CSS_SELECTOR, f"#{ids.ANALYST_ZONE_LIST} button")
                     if f"#{zone_id} " not in b.text), None)

    # the list is redrawn when the new zone is saved: whether it holds another zone, and the click, read it afresh
    if wait.until(lambda d: "yes" if other_zone(d) is not None else "no") == "yes":
        click_found(browser, other_zone, WAIT_S)
        wait.until(lambda d: card_title(d) and not card_title(d).endswith(f"#{zone_id}"))
    click_lonlat(browser, lon, lat)
    wait.until(lambda d: card_title(d).endswith(f"#{zone_id}"))


@contextlib.contextmanager
def _site_basemap(demo_url: str, basemap_dir: Path, src: Path, name: str) -> Iterator[None]:
    """``sitroom basemap add SRC --name NAME`` as a site would run it, removed afterwards."""
    from tests.e2e.conftest import _sitroom_command

    env = {**os.environ, "SITROOM_BASEMAP_DIR": str(basemap_dir), "SITROOM_DATABASE_URL": demo_url}
    out = subprocess.run([*_sitroom_command(), "basemap", "add", str(src), "--name", name,
                          "--attribution", "© E2E survey"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    try:
        yield
    finally:
        subprocess.run([*_sitroom_command(), "basemap", "remove", name], env=env, capture_output=True, timeout=60)


def _choose_basemap(browser: Any, title: str) -> None:
    control = browser.find_element(By.CSS_SELECTOR, f"#{MAP} .leaflet-control-layers")
    ActionChains(browser).move_to_element(control).perform()
    next(lab for lab in control.find_elements(By.CSS_SELECTOR, "label") if lab.text.strip() == title).click()


def test_add_an_mbtiles_basemap_and_see_its_tiles(demo_url: str, demo_server: str, basemap_dir: Path,
                                                  browser: Any, tmp_path: Path) -> None:
    from tests.sitebasemap_files import COLOUR, make_mbtiles

    src = tmp_path / "hohhot.mbtiles"
    make_mbtiles(src, name="Hohhot E2E")
    with _site_basemap(demo_url, basemap_dir, src, "e2e-city"):
        wait = open_analyst(browser, demo_server, demo_url, lang="en")
        _choose_basemap(browser, "Hohhot E2E")
        set_view(browser, 40.8, 111.7, 8)
        colour = ("const img = Array.from(document.querySelectorAll('#" + MAP + " .leaflet-tile-pane img'))"
                  ".find(i => i.src.indexOf('/tiles/e2e-city/8/') >= 0 && i.complete && i.naturalWidth === 256);"
                  "if (!img) { return null; } const c = document.createElement('canvas'); c.width = c.height = 1;"
                  "const g = c.getContext('2d'); g.drawImage(img, 128, 200, 1, 1, 0, 0, 1, 1);"
                  "return Array.from(g.getImageData(0, 0, 1, 1).data.slice(0, 3));")
        assert wait.until(lambda d: d.execute_script(colour)) == list(COLOUR)
        assert "© E2E survey" in browser.find_element(By.CSS_SELECTOR, f"#{MAP} .leaflet-control-attribution").text


def test_a_vector_basemap_in_the_openmaptiles_schema_is_drawn_in_its_style(
        demo_url: str, demo_server: str, basemap_dir: Path, browser: Any, tmp_path: Path) -> None:
    # OpenMapTiles (and Protomaps) tiles are made to be shown on 512 px: protomaps-leaflet draws the data of zoom
    # z - 1 at zoom z. The archive holds zoom 8 only, each tile a water square (500-1500 of the 4096 extent, y up as
    # mapbox_vector_tile encodes: 2596-3596 from the top) and a primary road across at 1024 (3072 from the top). At
    # zoom 9 the south-west quarter of a data tile is the display tile (2x, 2y + 1): there, in 256 px, the style's
    # water colour at (120, 130), the road's at (200, 128), the background at (200, 230) (sitroom_maps.js omtPaint)
    from tests.sitebasemap_files import make_vector_mbtiles

    src = tmp_path / "city-vector.mbtiles"
    keys = [f"{2 * x}:{2 * y + 1}:9" for _, x, y in make_vector_mbtiles(src, zoom=8, road_y=1024)]  # Leaflet's keys
    with _site_basemap(demo_url, basemap_dir, src, "e2e-vector"):
        wait = open_analyst(browser, demo_server, demo_url, lang="en")
        _choose_basemap(browser, "Test vector")
        set_view(browser, 40.8, 111.7, 9)
        pixels = ("const m = window.sitroomMaps.maps[arguments[0]];"
                  "const c = Array.from(document.querySelectorAll('#' + arguments[0] + ' .leaflet-tile-pane "
                  "canvas.leaflet-tile-loaded')).find(t => t.width >= 256 && arguments[1].indexOf(t.key) >= 0);"
                  "if (!m || !c) { return null; } const k = c.width / 256, g = c.getContext('2d');"
                  "const at = (x, y) => Array.from(g.getImageData(x * k, y * k, 1, 1).data.slice(0, 3));"
                  "return {water: at(120, 130), road: at(200, 128), ground: at(200, 230)};")
        hexes = {"water": "#a8cbe6", "road": "#f9c97a", "ground": "#f2efe9"}
        want = {k: [int(v[i:i + 2], 16) for i in (1, 3, 5)] for k, v in hexes.items()}
        seen: list = []

        def drawn(d: Any) -> bool:  # the tile is drawn once its three places have their colours (within rounding)
            seen.append(px := d.execute_script(pixels, MAP, keys))
            return bool(px) and all(max(abs(a - b) for a, b in zip(px[k], want[k], strict=True)) <= 2 for k in want)

        try:
            wait.until(drawn)
        except TimeoutException:
            raise AssertionError(f"the vector tile is not drawn in its style: {seen[-1]} (want {want})") from None

