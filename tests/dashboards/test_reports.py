"""The situation report endpoint on the demo data: PDF text layer (pdftotext), first page image (pdftoppm), numbers
against plain SQL, English version, past pictures, errors."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from dashboards.app import create_app
from dashboards.i18n import t, vocab_label
from layers.read import situation
from layers.store.settings import Settings

pytestmark = pytest.mark.db

URL = "/api/v1/reports/sitrep"


@pytest.fixture(scope="module")
def client(demo_db: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("sitrep")
    app = create_app(Settings(database_url=demo_db.url, state_dir=tmp / "state", tile_cache_dir=tmp / "tiles"))
    with app.server.test_client() as c:
        yield c


def _pdf_text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _sql_kpis(demo_db: Any) -> dict[str, int]:
    """The KPIs straight from the tables (independent of layers.read.situation)."""
    with demo_db.engine.connect() as c:
        one = lambda sql: int(c.execute(text(sql)).scalar_one())  # noqa: E731
        return {
            "incidents": one("SELECT count(*) FROM incidents WHERE deleted_at IS NULL AND status <> 'closed'"),
            "free": one("SELECT coalesce(sum(greatest(capacity - occupancy, 0)), 0) FROM shelters "
                        "WHERE deleted_at IS NULL AND status <> 'closed'"),
            "places": one("SELECT coalesce(sum(capacity), 0) FROM shelters WHERE deleted_at IS NULL "
                          "AND status <> 'closed'"),
            "available": one("SELECT coalesce(sum(quantity), 0) FROM resources WHERE deleted_at IS NULL "
                             "AND status = 'available'"),
            "deployed": one("SELECT coalesce(sum(quantity), 0) FROM resources WHERE deleted_at IS NULL "
                            "AND status = 'deployed'"),
        }


def _active_hazard_facts(demo_db: Any) -> tuple[list[str], list[str]]:
    """Kinds of the hazards in force, and names of counties they touch (plain SQL)."""
    live = ("h.deleted_at IS NULL AND h.status = 'active' AND (h.onset IS NULL OR h.onset <= now()) "
            "AND (h.expires IS NULL OR h.expires > now())")
    with demo_db.engine.connect() as c:
        kinds = [r[0] for r in c.execute(text(f"SELECT DISTINCT kind FROM hazards h WHERE {live}"))]
        counties = [r[0] for r in c.execute(text(
            f"SELECT DISTINCT a.name FROM admin_regions a JOIN hazards h ON ST_Intersects(a.geom, h.geom) "
            f"WHERE a.level = 'county' AND a.deleted_at IS NULL AND {live}"))]
    return kinds, counties


@pytest.fixture(scope="module")
def zh_pdf(client: Any) -> bytes:
    r = client.get(f"{URL}?format=pdf")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    assert r.headers["Content-Type"] == "application/pdf"
    return r.data


def test_pdf_has_chinese_text_and_the_store_numbers(zh_pdf: bytes, demo_db: Any) -> None:
    assert zh_pdf[:5] == b"%PDF-"
    txt = _squash(_pdf_text(zh_pdf))
    for key in ("sitrep.title", "sitrep.kpi.incidents", "sitrep.kpi.affected", "sitrep.kpi.shelters",
                "sitrep.kpi.resources", "sitrep.section.warnings", "sitrep.section.population",
                "sitrep.section.shelters", "sitrep.section.changes"):
        assert _squash(t(key, "zh-CN")) in txt, key
    assert "态势报告" in txt
    kinds, counties = _active_hazard_facts(demo_db)
    assert kinds and counties  # the drill has hazards in force over counties
    assert any(vocab_label("hazard_kind", k, "zh-CN") in txt for k in kinds)
    assert any(name in txt for name in counties)
    k = _sql_kpis(demo_db)
    assert f"{k['incidents']:,}" in txt
    assert f"{k['free']:,}/{k['places']:,}" in txt
    assert f"{k['available']:,}/{k['deployed']:,}" in txt
    with demo_db.engine.connect() as c:
        affected = situation.affected_population_cells(c)["total"]
    assert affected and f"{round(affected):,}" in txt


def test_first_page_renders_to_a_non_blank_image(zh_pdf: bytes) -> None:
    png = subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-"], input=zh_pdf,
                         capture_output=True, check=True).stdout
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert img.shape[0] > 400 and img.shape[1] > 300  # A4 at 50 dpi: 585 x 413
    assert (img < 200).mean() > 0.05  # text, KPI boxes and the map, not a white page
    assert img.std() > 20


def test_english_report(client: Any) -> None:
    r = client.get(f"{URL}?format=pdf&lang=en")
    assert r.status_code == 200 and r.data[:5] == b"%PDF-"
    txt = _squash(_pdf_text(r.data))
    for key in ("sitrep.title", "sitrep.kpi.incidents", "sitrep.kpi.affected", "sitrep.kpi.shelters",
                "sitrep.kpi.resources", "sitrep.section.population"):
        assert _squash(t(key, "en")) in txt, key
    assert "态势报告" not in txt


def _kpi(html: str, key: str) -> str:
    m = re.search(r'<div class="label">' + re.escape(t(key, "en")) + r'</div>\s*<div class="value">([^<]*)</div>', html)
    assert m, key
    return m.group(1).strip()


def test_past_report_does_not_count_a_later_row(client: Any, demo_db: Any) -> None:
    with demo_db.engine.connect() as c:
        t0 = c.execute(text("SELECT clock_timestamp()")).scalar_one()
    before = _kpi(client.get(f"{URL}?format=html&lang=en").get_data(as_text=True), "sitrep.kpi.incidents")
    with demo_db.engine.begin() as c:
        new_id = c.execute(text(
            "INSERT INTO incidents (source, external_id, name, kind, status, severity, geom) VALUES "
            "('sitrep-test', 'late-1', 'late', 'fire', 'reported', 'major', ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326)) "
            "RETURNING id")).scalar_one()
    try:
        at = t0.isoformat()
        past = client.get(URL, query_string={"format": "html", "lang": "en", "at": at}).get_data(as_text=True)
        now = client.get(URL, query_string={"format": "html", "lang": "en", "since": at}).get_data(as_text=True)
        assert _kpi(past, "sitrep.kpi.incidents") == before
        n0 = int(before.replace(",", ""))
        assert _kpi(now, "sitrep.kpi.incidents") == f"{n0 + 1:,}"
        assert t("sitrep.past", "en") in past and t("sitrep.live", "en") in now
        # the changes section of the live report: exactly one incident added since t0
        row = re.search(re.escape(t("layer.incidents", "en")) + r'</td><td class="num">(\d+)</td>'
                        r'<td class="num">(\d+)</td><td class="num">(\d+)</td>', now)
        assert row and row.groups() == ("1", "0", "0")
    finally:
        with demo_db.engine.begin() as c:
            c.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": new_id})


def test_fetching_changes_nothing_marking_as_sent_moves_the_window(client: Any, demo_db: Any) -> None:
    """Issue 17 item 11: a GET made the report "the previous report"; now only POST .../sent does."""
    from tests.conftest import api_token, authorize

    first = client.get(f"{URL}?format=html&lang=en")
    assert first.status_code == 200
    again = client.get(f"{URL}?format=html&lang=en").get_data(as_text=True)
    assert "Since the previous report" not in again
    assert client.post(f"{URL}/sent", json={"at": first.headers["X-Report-Time"]}).status_code == 401
    sender = authorize(client.application.test_client(), api_token(demo_db.engine, access="read"))
    r = sender.post(f"{URL}/sent", json={"at": first.headers["X-Report-Time"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    second = client.get(f"{URL}?format=html&lang=en").get_data(as_text=True)
    assert "Since the previous report" in second


@pytest.mark.parametrize(("query", "field"), [
    ("at=yesterday", "at"),
    ("at=2024-13-01T00:00:00Z", "at"),
    ("since=soon", "since"),
    (f"at={(datetime.now(UTC) + timedelta(days=2)).strftime('%Y-%m-%dT%H:%M:%SZ')}", "at"),
    ("at=2024-07-01T00:00:00Z&since=2024-07-02T00:00:00Z", "since"),
    ("format=docx", "format"),
])
def test_bad_parameters_are_400_naming_the_field(client: Any, query: str, field: str) -> None:
    r = client.get(f"{URL}?{query}")
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["error"]["field"] == field


def test_sitrep_button_links_to_the_pdf_in_a_new_tab(client: Any) -> None:
    from dashboards.components.sitrep_button import sitrep_button

    b = sitrep_button(lang="en")
    assert b.target == "_blank" and b.children == "Situation report"
    assert b.href == f"{URL}?format=pdf&lang=en"
    r = client.get(b.href)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf"
    assert sitrep_button(lang="zh-CN").children == "生成态势报告"
