"""Issue 19 item 4: every key figure of the wall and of the situation report against SQL over the store, read where
a person reads it.

A database of its own (nothing shared with another test) holds a small world around Hohhot: population on res-8
cells, incidents of every severity (one closed, one deleted, one deleted and restored), shelters (open, over-full,
full, closed, deleted, restored), resources (every status, a deleted one with many units) and hazards (in force,
overlapping, deleted, expired, not yet in force, cancelled, restored). The deleted rows are placed where counting
them would change a figure most.

The oracles share no code with the application: the live rows are rebuilt from the history
(:func:`tests.dashboards.oracles.live_rows`), the people in hazard zones are the stored population of every res-8
cell times the share of the cell's ellipsoidal area inside the union of the hazards in force (h3-py, shapely,
``pyproj.Geod``). Each figure is then read

- from the wall's snapshot (``GET /api/v1/wall/snapshot``),
- from the wall's tiles: the wall's redraw callback posted to ``/_dash-update-component`` as the browser posts it,
  each number taken from the element of its tile (by component id, not by position in the callback's outputs),
- from the situation report's PDF (``pdftotext -bbox-layout``): the number right under its label, in the label's
  column of the key-figure row, in Chinese and in English; the severities in their note, the resource totals in the
  total row of the resource table.
"""

from __future__ import annotations

import math
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session

from dashboards import ids
from dashboards.app import create_app
from dashboards.i18n import t, vocab_label
from layers.ingest.writes import delete_feature
from layers.read import situation
from layers.store.models import Hazard, Incident, Resource, Shelter
from layers.store.settings import Settings
from tests.conftest import drop_database, sibling_database
from tests.dashboards import oracles
from tests.dashboards.oracles import GEOD, live_rows

pytestmark = pytest.mark.db

SOURCE = "pytest-kpi"
RES = 8
POP_BOX = (111.45, 40.45, 112.15, 41.05)
SEVERITIES = ("extraordinary", "major", "large", "general")
STATUSES = ("available", "deployed", "unavailable")


def _circle(lon: float, lat: float, radius_m: float, n: int = 96) -> Polygon:
    az = np.linspace(0, 360, n, endpoint=False)
    x, y, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), az, np.full(n, radius_m))
    return Polygon(zip(x, y, strict=True))


@dataclass
class World:
    url: str
    engine: Engine
    now: datetime
    ids: dict[str, int] = field(default_factory=dict)


def _add(s: Session, w: World, key: str, model: Any, geom: Any, **cols: Any) -> None:
    ewkt = f"SRID=4326;{(MultiPolygon([geom]) if isinstance(geom, Polygon) else geom).wkt}"
    w.ids[key] = int(s.execute(insert(model).values(source=SOURCE, external_id=key, name=key, geom=ewkt, **cols)
                               .returning(model.id)).scalar_one())


def _seed(s: Session, w: World) -> None:
    rng = np.random.default_rng(4)
    west, south, east, north = POP_BOX
    cells = sorted(h3.polygon_to_cells(h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)]), RES))
    pop = np.round(rng.gamma(2.0, 60.0, len(cells)), 2)
    s.execute(text("INSERT INTO population_sources (source, res, vintage, modelled, input_total, cell_count) "
                   "VALUES (:s, :r, '2024', false, :t, :n)"), {"s": SOURCE, "r": RES, "t": float(pop.sum()),
                                                               "n": len(cells)})
    s.execute(text("INSERT INTO population_cells (source, res, h3, population) VALUES (:s, :r, :h, :p)"),
              [{"s": SOURCE, "r": RES, "h": h3.str_to_int(c), "p": float(p)} for c, p in zip(cells, pop, strict=True)])

    now = w.now
    for i, (key, kind, sev, status, casualties) in enumerate([
            ("i_fire_major", "fire", "major", "reported", 2), ("i_fire_general", "fire", "general", "responding", 0),
            ("i_traffic_general", "traffic", "general", "verified", 1),
            ("i_flood_extra", "flood", "extraordinary", "reported", 7),
            ("i_large_1", "flood", "large", "reported", 0), ("i_large_2", "fire", "large", "responding", 0),
            ("i_closed_extra", "flood", "extraordinary", "closed", 30),  # closed: not active
            ("i_deleted_extra", "flood", "extraordinary", "reported", 40),  # deleted: in no figure
            ("i_deleted_general", "fire", "general", "reported", 0),
            ("i_restored_major", "fire", "major", "reported", 3)]):
        _add(s, w, key, Incident, Point(111.6 + 0.02 * i, 40.7 + 0.01 * i), kind=kind, severity=sev, status=status,
             casualties=casualties, occurred_at=now - timedelta(minutes=7 * i + 1))

    sh = {"kind": "emergency"}
    _add(s, w, "s_open", Shelter, Point(111.63, 40.65), status="open", capacity=3000, occupancy=1000, **sh)
    _add(s, w, "s_open_2", Shelter, Point(111.69, 40.70), status="open", capacity=2500, occupancy=2400, **sh)
    _add(s, w, "s_over", Shelter, Point(111.68, 40.63), status="open", capacity=100, occupancy=150, **sh)
    _add(s, w, "s_full", Shelter, Point(111.70, 40.64), status="full", capacity=1000, occupancy=1000, **sh)
    _add(s, w, "s_closed", Shelter, Point(111.66, 40.68), status="closed", capacity=5000, occupancy=0, **sh)
    _add(s, w, "s_deleted", Shelter, Point(111.65, 40.69), status="open", capacity=50000, occupancy=10, **sh)
    _add(s, w, "s_restored", Shelter, Point(111.615, 40.705), status="open", capacity=1500, occupancy=200, **sh)

    for i, (status, qty) in enumerate([("available", 6), ("available", 3), ("deployed", 2), ("deployed", 5),
                                       ("unavailable", 4)]):
        _add(s, w, f"r_{i}", Resource, Point(111.7 + 0.01 * i, 40.8), kind=("fire_engine", "boat")[i % 2],
             status=status, quantity=qty)
    _add(s, w, "r_deleted", Resource, Point(111.75, 40.8), kind="fire_engine", status="available", quantity=500)
    _add(s, w, "r_deleted_dep", Resource, Point(111.76, 40.8), kind="boat", status="deployed", quantity=300)
    _add(s, w, "r_restored", Resource, Point(111.77, 40.8), kind="boat", status="deployed", quantity=9)

    hz = {"kind": "flood", "status": "active"}
    _add(s, w, "h_red", Hazard, box(111.55, 40.60, 111.75, 40.75), warning_level="red",
         onset=now - timedelta(days=1), expires=now + timedelta(days=3), **hz)
    _add(s, w, "h_yellow", Hazard, _circle(111.74, 40.70, 6000), warning_level="yellow", **{**hz, "kind": "sandstorm"})
    _add(s, w, "h_orange_deleted", Hazard, box(111.5, 40.5, 112.1, 41.0), warning_level="orange", **hz)
    _add(s, w, "h_blue_past", Hazard, box(111.90, 40.80, 112.05, 40.95), warning_level="blue",
         onset=now - timedelta(days=3), expires=now - timedelta(days=1), **hz)
    _add(s, w, "h_orange_future", Hazard, box(111.86, 40.52, 112.00, 40.62), warning_level="orange",
         onset=now + timedelta(days=1), expires=now + timedelta(days=3), **hz)
    _add(s, w, "h_cancelled", Hazard, box(111.95, 40.65, 112.05, 40.75), warning_level="red",
         **{**hz, "status": "cancelled"})
    _add(s, w, "h_restored", Hazard, box(111.47, 40.47, 111.53, 40.53), warning_level="yellow", **hz)


DELETE = ["i_deleted_extra", "i_deleted_general", "i_restored_major", "s_deleted", "s_restored", "r_deleted",
          "r_deleted_dep", "r_restored", "h_orange_deleted", "h_restored"]
RESTORE = ["i_restored_major", "s_restored", "r_restored", "h_restored"]
LAYER_OF = {"i": "incidents", "s": "shelters", "r": "resources", "h": "hazards"}


@pytest.fixture(scope="module")
def world(db_url: str) -> Iterator[World]:
    url = sibling_database(db_url, "kpi")
    engine = create_engine(url)
    w = World(url=url, engine=engine, now=datetime.now(UTC).replace(microsecond=0))
    with Session(engine) as s, s.begin():
        s.execute(text("SELECT set_config('sitroom.user', 'pytest-kpi', true)"))
        _seed(s, w)
    with Session(engine) as s, s.begin():  # as the API deletes: deleted_at set, a 'delete' in the history
        for key in DELETE:
            delete_feature(s, LAYER_OF[key[0]], w.ids[key], user="pytest-kpi")
    with Session(engine) as s, s.begin():  # brought back as a re-import does: an 'update' in the history
        for key in RESTORE:
            s.execute(text(f"UPDATE {LAYER_OF[key[0]]} SET deleted_at = NULL WHERE id = :i"), {"i": w.ids[key]})
    situation.clear_cache()
    try:
        yield w
    finally:
        engine.dispose()
        drop_database(url)


# ------------------------------------------------------------------------------------------------------ the oracle


@pytest.fixture(scope="module")
def want(world: World) -> dict[str, Any]:
    """Every key figure, from the store's rows and history (module docstring)."""
    with world.engine.connect() as c:
        inc = live_rows(c, "incidents", ("severity", "status"))
        shelters = live_rows(c, "shelters", ("status", "capacity", "occupancy"))
        res = live_rows(c, "resources", ("status", "quantity"))
        hz = live_rows(c, "hazards", ("status", "onset", "expires"))
        now = datetime.now(UTC)
        zones = [h["geometry"] for h in hz if h["status"] == "active" and (h["onset"] is None or h["onset"] <= now)
                 and (h["expires"] is None or h["expires"] > now)]
        union = shapely.union_all(zones)
        frac = oracles.cell_fractions(union, RES)
        pop = oracles.stored_population(c, frac, res=RES, source=SOURCE)
    active = [r for r in inc if r["status"] != "closed"]
    in_service = [s for s in shelters if s["status"] != "closed"]
    out = {
        "incidents": len(active),
        "by_severity": {sev: sum(r["severity"] == sev for r in active) for sev in SEVERITIES},
        "affected": sum(pop[cell] * f for cell, f in frac.items()),
        "hazards": len(zones),
        "free": sum(max(0, s["capacity"] - s["occupancy"]) for s in shelters if s["status"] == "open"),
        "total": sum(s["capacity"] for s in in_service),
        "units": {st: sum(r["quantity"] for r in res if r["status"] == st) for st in STATUSES},
    }
    # the world is what its docstring says (so that each figure is one a wrong filter would change)
    assert out["incidents"] == 7 and out["by_severity"] == {"extraordinary": 1, "major": 2, "large": 2, "general": 2}
    assert out["units"] == {"available": 9, "deployed": 16, "unavailable": 4} and out["hazards"] == 3
    assert (out["free"], out["total"]) == (2000 + 100 + 0 + 1300, 3000 + 2500 + 100 + 1000 + 1500)
    assert out["affected"] > 1000
    return out


def _int(s: Any) -> int:
    """A number as the wall and the report print it ("12,345")."""
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", str(s)), s
    return int(str(s).replace(",", ""))


# --------------------------------------------------------------------------------------------------------- the wall


@pytest.fixture(scope="module")
def app(world: World) -> Any:
    return create_app(Settings(database_url=world.url))


def test_wall_snapshot_kpis_are_the_stores(app: Any, want: dict[str, Any]) -> None:
    r = app.server.test_client().get("/api/v1/wall/snapshot?zoom=7")
    assert r.status_code == 200, r.get_data(as_text=True)
    k = r.get_json()["kpis"]
    assert k["incidents"]["active"] == want["incidents"]
    assert {s: k["incidents"]["by_severity"][s] for s in SEVERITIES} == want["by_severity"]
    assert k["affected"]["total"] == pytest.approx(want["affected"], rel=1e-5)
    assert k["affected"]["hazards"] == want["hazards"]
    assert (k["shelters"]["free"], k["shelters"]["total"]) == (want["free"], want["total"])
    assert {s: k["resources"][s] for s in STATUSES} == want["units"]


def _wall_redraw(app: Any, lang: str) -> dict[str, dict[str, Any]]:
    """The wall's redraw callback posted as the browser posts it; its answer by component id and property."""
    server = app.server
    key = next(k for k in server.config["SITROOM_DASH_APP"].callback_map if f"{ids.WALL_KPI_INCIDENTS}.children" in k)
    spec = server.config["SITROOM_DASH_APP"].callback_map[key]
    values = {(ids.WALL_STATUS, "data"): {"ok": True, "refresh": 1}, (ids.WALL_HEAT, "value"): "incidents",
              (ids.WALL_MAP, "zoom"): 7, (ids.WALL_MAP, "bounds"): [[40.3, 111.2], [41.3, 112.4]]}

    def item(x: dict[str, Any]) -> dict[str, Any]:
        return {"id": x["id"], "property": x["property"], "value": values.get((x["id"], x["property"]))}

    outs = [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in key.strip(".").split("...")]
    body = {"output": key, "outputs": outs, "inputs": [item(x) for x in spec["inputs"]],
            "state": [item(x) for x in spec["state"]], "changedPropIds": [f"{ids.WALL_STATUS}.data"]}
    client = server.test_client()
    client.set_cookie("sitroom_lang", lang)
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["response"]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_wall_tiles_show_the_stores_figures(app: Any, want: dict[str, Any], lang: str) -> None:
    """Each tile's element holds the store's figure (the affected people rounded to a whole person)."""
    got = _wall_redraw(app, lang)

    def tile(cid: str) -> int:
        return _int(got[cid]["children"])

    assert tile(ids.WALL_KPI_INCIDENTS) == want["incidents"]
    assert {s: tile(ids.wall_severity(s)) for s in SEVERITIES} == want["by_severity"]
    assert tile(ids.WALL_KPI_AFFECTED) == round(want["affected"])
    assert (tile(ids.WALL_KPI_SHELTER_FREE), tile(ids.WALL_KPI_SHELTER_TOTAL)) == (want["free"], want["total"])
    assert (tile(ids.WALL_KPI_RES_AVAILABLE), tile(ids.WALL_KPI_RES_DEPLOYED)) == (
        want["units"]["available"], want["units"]["deployed"])


# ------------------------------------------------------------------------------------------------- the sitrep PDF

NS = {"x": "http://www.w3.org/1999/xhtml"}


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


def _pages(pdf: bytes, tmp: Path) -> list[list[list[Word]]]:
    """The words of each page of the PDF, grouped in lines as pdftotext finds them, top to bottom."""
    (tmp / "r.pdf").write_bytes(pdf)
    subprocess.run(["pdftotext", "-bbox-layout", str(tmp / "r.pdf"), str(tmp / "r.html")], check=True)
    root = ET.parse(tmp / "r.html").getroot()
    pages = []
    for page in root.iter(f"{{{NS['x']}}}page"):
        lines = [[Word(w.text or "", float(w.get("xMin")), float(w.get("yMin")), float(w.get("xMax")),
                       float(w.get("yMax"))) for w in line.iter(f"{{{NS['x']}}}word")]
                 for line in page.iter(f"{{{NS['x']}}}line")]
        pages.append(sorted((ln for ln in lines if ln), key=lambda ln: (ln[0].y0, ln[0].x0)))
    return pages


def _find(lines: list[list[Word]], label: str) -> list[Word]:
    """The line(s) whose words make ``label`` (a label may wrap over two lines of its column)."""
    flat = label.replace(" ", "")
    for i, ln in enumerate(lines):
        text_ = "".join(w.text for w in ln)
        if text_ == flat:
            return ln
        if flat.startswith(text_) and i + 1 < len(lines):
            nxt = [ln2 for ln2 in lines[i + 1:i + 4] if abs(ln2[0].x0 - ln[0].x0) < 2]
            if nxt and text_ + "".join(w.text for w in nxt[0]) == flat:
                return ln + nxt[0]
    raise AssertionError(f"label {label!r} not found in the report")


def _below(lines: list[list[Word]], label: list[Word], right: float) -> str:
    """The text of the first line under ``label`` inside its column (from the label's left edge to ``right``)."""
    bottom = max(w.y1 for w in label)
    left = min(w.x0 for w in label)
    below = [[w for w in ln if left - 2 <= w.x0 < right - 2] for ln in lines if ln[0].y0 >= bottom - 0.5]
    below = [ln for ln in below if ln]
    assert below, f"nothing under {''.join(w.text for w in label)!r}"
    first = min(below, key=lambda ln: ln[0].y0)
    return " ".join(w.text for w in sorted(first, key=lambda w: w.x0))


@pytest.fixture(scope="module", params=["zh-CN", "en"])
def report(request: pytest.FixtureRequest, app: Any, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[str, list[list[list[Word]]]]:
    lang = request.param
    r = app.server.test_client().get(f"/api/v1/reports/sitrep?format=pdf&lang={lang}")
    assert r.status_code == 200 and r.data[:5] == b"%PDF-", r.get_data(as_text=True)[:500]
    return lang, _pages(r.data, tmp_path_factory.mktemp(f"sitrep-{lang}"))


def _kpi_columns(lang: str, lines: list[list[Word]]) -> dict[str, str]:
    keys = ("sitrep.kpi.incidents", "sitrep.kpi.affected", "sitrep.kpi.shelters", "sitrep.kpi.resources")
    labels = {k: _find(lines, t(k, lang)) for k in keys}
    lefts = sorted(min(w.x0 for w in lab) for lab in labels.values())
    out = {}
    for k, lab in labels.items():
        left = min(w.x0 for w in lab)
        right = next((x for x in lefts if x > left + 1), math.inf)
        out[k] = _below(lines, lab, right)
    return out


def test_report_key_figures_under_their_labels(report: tuple[str, Any], want: dict[str, Any]) -> None:
    lang, pages = report
    lines = pages[0]  # the key figures open the report
    got = _kpi_columns(lang, lines)
    assert _int(got["sitrep.kpi.incidents"]) == want["incidents"]
    assert _int(got["sitrep.kpi.affected"]) == round(want["affected"])
    free, total = (_int(x) for x in got["sitrep.kpi.shelters"].split(" / "))
    assert (free, total) == (want["free"], want["total"])
    avail, deployed = (_int(x) for x in got["sitrep.kpi.resources"].split(" / "))
    assert (avail, deployed) == (want["units"]["available"], want["units"]["deployed"])


def test_report_severities_in_the_incidents_note(report: tuple[str, Any], want: dict[str, Any]) -> None:
    """The note under the active incidents: each severity's label followed by its count."""
    lang, pages = report
    lines = pages[0]
    label = _find(lines, t("sitrep.kpi.incidents", lang))
    value = [ln for ln in lines if ln[0].y0 >= max(w.y1 for w in label) - 0.5 and abs(ln[0].x0 - label[0].x0) < 2]
    note_lines = [value[1]]  # the value, then the note, which may wrap onto the lines right under it
    for ln in value[2:]:
        if ln[0].y0 - note_lines[-1][0].y1 > 0.5 * (note_lines[-1][0].y1 - note_lines[-1][0].y0):
            break
        note_lines.append(ln)
    note = " ".join(w.text for ln in note_lines for w in ln)
    for sev in SEVERITIES:
        name = vocab_label("incident_severity", sev, lang)
        m = re.search(re.escape(name) + r"\s*(\d[\d,]*)", note)
        assert m is not None, (sev, note)
        assert _int(m[1]) == want["by_severity"][sev], (sev, note)


def _rows(lines: list[list[Word]]) -> list[list[Word]]:
    """Words on the same baseline (pdftotext puts each table cell in a line of its own), left to right."""
    rows: list[list[Word]] = []
    for w in sorted((w for ln in lines for w in ln), key=lambda w: (w.y1, w.x0)):
        if rows and abs(rows[-1][-1].y1 - w.y1) < 2:
            rows[-1].append(w)
        else:
            rows.append([w])
    return [sorted(r, key=lambda w: w.x0) for r in rows]


def test_report_resource_totals_row(report: tuple[str, Any], want: dict[str, Any]) -> None:
    """The total row of the resource table: units available, deployed, unavailable, each under its header."""
    lang, pages = report
    total = t("sitrep.col.total", lang)
    heads = [vocab_label("resource_status", st, lang) for st in STATUSES]
    found = []
    for lines in pages:
        rows = _rows(lines)
        for i, row in enumerate(rows):
            joined = "".join(w.text for w in row)
            if not all(h.replace(" ", "") in joined for h in heads):
                continue
            tot = next((r for r in rows[i + 1:] if "".join(w.text for w in r).startswith(total)), None)
            if tot is not None:
                found.append((row, tot))
    assert len(found) == 1, f"one resource table with a total row expected, found {len(found)}"
    head, tot = found[0]
    numbers = [w for w in tot if re.fullmatch(r"[\d,]+", w.text)]
    assert len(numbers) == 3, [w.text for w in tot]
    # each number under its header: the header whose centre is nearest (three numbers, three distinct headers)
    centres = []
    for h in heads:
        words = h.split()
        first = next(k for k, w in enumerate(head) if w.text == words[0]
                     and [x.text for x in head[k:k + len(words)]] == words)
        centres.append((head[first].x0 + head[first + len(words) - 1].x1) / 2)
    got = {STATUSES[int(np.argmin([abs((w.x0 + w.x1) / 2 - c) for c in centres]))]: _int(w.text) for w in numbers}
    assert got == want["units"]
