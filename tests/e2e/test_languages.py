"""Issue 12 item 6 in headless Chromium, on the demo data: every role page read in English shows no Chinese, and in
Chinese no English words beyond the names of formats and standards.

Each page is opened as a person would (signed in as an administrator, who may see every page), its data waited
for, then the text the browser renders (``innerText``, plus the ``title`` tooltips) is searched: in English for any
CJK character (region, incident and place names come from ``name_en``), in Chinese for Latin words outside
:data:`LATIN_OK`. The language switch names the other language in its own script ("中文" / "English"): that is the
one exception. Not searched: the map's attribution (the names of the data sources, as their licences want them) and
the admin page's change log (the audit record shows rows, names and users as they were stored); a colour's hex code
is not a word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from dashboards import ids
from tests.dashboards.conftest import demo_db  # noqa: F401 - the demo database fixture
from tests.e2e.conftest import ensure_user, log_in, serving, waiting

pytestmark = pytest.mark.db
WAIT_S = 120

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")
LATIN = re.compile(r"[A-Za-z][A-Za-z]{2,}")
#: Latin words a Chinese page may show: format and standard names, the product's name, units, map attribution
LATIN_OK = frozenset({"API", "CSV", "GeoJSON", "PDF", "OGC", "GIS", "Sitroom", "HTML", "JSON", "Leaflet", "OpenStreetMap",
                      "OSM", "English", "MVT", "PNG", "WGS", "CAP", "Atom", "JavaScript",
                      "III",  # warning levels: 黄色 (III级)
                      "admin", "E2E"})  # the test account's display name, in the header

#: the fallback dash-leaflet's lazy controls and Dash's renderer show while their code loads (in their bundles, in
#: English only): a page is read once it is gone, as a person reads it after the moment it takes
LAZY_FALLBACK = "Loading..."

#: (path, a condition in JavaScript that holds once the page shows its data)
PAGES = (
    ("/wall", "return /[0-9]/.test((document.getElementById(arguments[0]) || {}).textContent || '')",
     ids.WALL_KPI_INCIDENTS),
    ("/leader", "return document.querySelectorAll('#' + arguments[0] + ' tbody tr').length > 0", ids.LEADER_RANKING),
    ("/planner", "return !!document.getElementById(arguments[0])", ids.PLANNER_RUN),
    ("/analyst", "return !!document.querySelector('#' + arguments[0] + ' img.leaflet-tile-loaded')", ids.ANALYST_MAP),
    ("/admin", "return document.querySelectorAll('table tbody tr').length > 0", None),
)

_TEXT = """
const skip = '.leaflet-control-attribution, #admin-changes, #admin-users, #admin-imports';
const hide = [...document.querySelectorAll(skip)];
hide.forEach(e => { e.dataset.srDisplay = e.style.display; e.style.display = 'none'; });
const text = document.body.innerText;
hide.forEach(e => { e.style.display = e.dataset.srDisplay; });
const titles = [...document.querySelectorAll('[title]')].filter(e => !e.closest(skip)).map(e => e.getAttribute('title'));
return (text + '\\n' + titles.join('\\n')).replace(/#[0-9a-fA-F]{3,8}\\b/g, '');
"""

#: the page has settled: no callback is pending and no lazy component still shows its "Loading..." fallback
_SETTLED = """
return document.querySelectorAll('[data-dash-is-loading="true"]').length === 0
    && !document.body.innerText.includes(LOADING);
""".replace("LOADING", json.dumps(LAZY_FALLBACK))


@pytest.fixture(scope="module")
def server(demo_db: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    with serving(demo_db.url, tmp_path_factory.mktemp("languages_server") / "serve.log") as (base, _):
        yield base


def _page_text(driver: Any, base: str, path: str, ready: str, arg: str | None, lang: str) -> str:
    driver.get(f"{base}{path}?lang={lang}")
    waiting(driver, WAIT_S).until(lambda d: d.execute_script(ready, arg))
    # Dash has answered every callback of the first render: no component is waiting for its data, and no component
    # is waiting for its code (a lazy dash-leaflet control shows React's Suspense fallback until its chunk arrives)
    waiting(driver, WAIT_S).until(lambda d: d.execute_script(_SETTLED))
    return driver.execute_script(_TEXT)


def test_english_pages_show_no_chinese_and_chinese_pages_no_stray_english(server: str, demo_db: Any,  # noqa: F811
                                                                            browser: Any) -> None:
    log_in(browser, server, *ensure_user(demo_db.url, "admin"), next_path="/?lang=en")
    found: dict[str, list[str]] = {}
    for path, ready, arg in PAGES:
        en = _page_text(browser, server, path, ready, arg, "en")
        cjk = sorted(set(CJK.findall(en)) - {"中文"})
        if cjk:
            found[f"{path} en"] = cjk
        zh = _page_text(browser, server, path, ready, arg, "zh-CN")
        latin = sorted(set(LATIN.findall(zh)) - LATIN_OK)
        if latin:
            found[f"{path} zh-CN"] = latin
    assert found == {}, json.dumps(found, ensure_ascii=False, indent=1)
