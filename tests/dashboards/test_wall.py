"""The wall page: layout without a database, the version endpoint, and the refresh callback as a plain function."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dash.exceptions import PreventUpdate
from sqlalchemy import create_engine, text

from dashboards import ids
from dashboards.app import create_app
from dashboards.i18n import t
from layers.read import situation
from layers.store.settings import Settings
from tests.conftest import drop_database, sibling_database

DOWN_URL = "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"


@pytest.fixture(scope="module")
def app_down():
    return create_app(Settings(database_url=DOWN_URL))


def test_wall_page_and_version_without_database(app_down) -> None:
    client = app_down.server.test_client()
    assert client.get("/wall").status_code == 200
    r = client.get("/api/v1/wall/version?lang=en")
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "database_unavailable"
    with app_down.server.test_request_context("/wall?lang=en"):
        from dashboards.pages import wall

        page = json.dumps(wall.layout(lang="en").to_plotly_json(), default=str)
        # the page itself never touches the database: it is the same skeleton whether PostGIS is up or not
        for key in ("wall.kpi.incidents", "wall.kpi.affected", "wall.kpi.shelters", "wall.kpi.resources"):
            assert t(key, "en") in page
        assert "Connection lost, last update {time}" in page and ids.WALL_MAP in page
        # the refresh callback keeps the last picture when the database is down
        with pytest.raises(PreventUpdate):
            wall.refresh({"ok": True, "refresh": 1}, "incidents", 5, None, None)
        with pytest.raises(PreventUpdate):
            wall.refresh(None, "incidents", 5, None, None)


def test_hex_classes_and_layers() -> None:
    from dashboards.pages import wall

    fc = {"features": [{"type": "Feature", "geometry": None, "properties": {"value": v}} for v in (1, 2, 40, 64)]}
    layers, bounds = wall.hex_layers(fc)
    assert bounds == [0.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    drawn = sorted(f["properties"]["value"] for lyr in layers for f in lyr.data["features"])
    assert drawn == [1, 2, 40, 64]  # every hex lands in exactly one class
    assert [len(lyr.data["features"]) for lyr in layers] == [1, 1, 2]
    assert wall.hex_classes([1, 1]) == [0.0, 1.0] and wall.hex_classes([]) == [0.0]
    assert layers[-1].style["fillColor"] == wall.HEX_COLOURS[-1]  # the hottest class is the reddest


def drawn_by_id(out: tuple) -> dict:
    """The return value of ``wall.refresh`` keyed by component id (``id`` for children, ``id.prop`` otherwise)."""
    from dashboards.pages import wall

    return {(o.component_id if o.component_property == "children" else f"{o.component_id}.{o.component_property}"): v
            for o, v in zip(wall.refresh_outputs(), out, strict=True)}


def _five(d: dict) -> tuple:
    return (d[ids.WALL_KPI_INCIDENTS], *[d[ids.wall_severity(s)] for s in ("extraordinary", "major", "large",
                                                                            "general")])


@pytest.fixture
def wall_db(db_url):
    """Hand-made rows committed to a database of this test's own (the app reads through its own engine): the KPIs
    are global counts, so no other test's rows, nor rows a failed test left behind, may be in it."""
    db_url = sibling_database(db_url, "wall")
    eng = create_engine(db_url)
    now = datetime.now(UTC)
    with eng.begin() as c:
        c.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
        for i, (kind, sev) in enumerate([("fire", "major"), ("fire", "general"), ("traffic", "general"),
                                         ("flood", "extraordinary")]):
            c.execute(text("INSERT INTO incidents (source, external_id, name, kind, status, severity, occurred_at, geom)"
                           " VALUES ('wall-test', :x, :n, :k, 'reported', :s, :at,"
                           " ST_SetSRID(ST_MakePoint(:lon, 40.8), 4326))"),
                      {"x": f"w{i}", "n": f"事件{i}", "k": kind, "s": sev, "at": now - timedelta(minutes=i),
                       "lon": 111.6 + 0.01 * i})
        c.execute(text("INSERT INTO shelters (source, external_id, kind, status, capacity, occupancy, geom) VALUES"
                       " ('wall-test', 's1', 'fixed', 'open', 500, 120, ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326))"))
        c.execute(text("INSERT INTO resources (source, external_id, kind, status, quantity, geom) VALUES"
                       " ('wall-test', 'r1', 'fire_engine', 'available', 6, ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326)),"
                       " ('wall-test', 'r2', 'boat', 'deployed', 2, ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326))"))
        c.execute(text("INSERT INTO hazards (source, external_id, name, kind, status, warning_level, geom) VALUES"
                       " ('wall-test', 'h1', '洪水', 'flood', 'active', 'orange',"
                       " ST_Multi(ST_MakeEnvelope(111.5, 40.7, 111.9, 40.9, 4326)))"))
        c.execute(text("INSERT INTO annotations (source, external_id, kind, status, label, color, geom) VALUES"
                       " ('wall-test', 'a1', 'command_post', 'active', '前方指挥部', '#00e676',"
                       " ST_SetSRID(ST_MakePoint(111.65, 40.85), 4326))"))
    situation.clear_cache()
    yield db_url
    eng.dispose()
    drop_database(db_url)


@pytest.mark.db
def test_refresh_callback_shows_the_database(wall_db) -> None:
    app = create_app(Settings(database_url=wall_db))
    client = app.server.test_client()
    v = client.get("/api/v1/wall/version").get_json()["version"]
    assert v > 0
    from dashboards.pages import wall

    with app.server.test_request_context("/wall?lang=en"):
        out = wall.refresh({"ok": True, "refresh": 1}, "incidents", 7, [[40, 110], [42, 113]], None)
    d = drawn_by_id(out)
    affected, free, total = d[ids.WALL_KPI_AFFECTED], d[ids.WALL_KPI_SHELTER_FREE], d[ids.WALL_KPI_SHELTER_TOTAL]
    avail, deployed, ticker = d[ids.WALL_KPI_RES_AVAILABLE], d[ids.WALL_KPI_RES_DEPLOYED], d[ids.WALL_TICKER]
    figure, hexes, hazards = d[f"{ids.WALL_CHART}.figure"], d[ids.WALL_HEX_LAYER], d[ids.WALL_HAZARD_LAYER]
    annotations, drawn = d[ids.WALL_ANNOTATION_LAYER], d[f"{ids.WALL_DRAWN}.data"]
    assert d[ids.WALL_REPLAY_BADGE] == "" and "sr-hidden" in d[f"{ids.WALL_REPLAY_BADGE}.className"]  # live
    assert _five(d) == ("4", "1", "1", "0", "2")
    assert affected == "—"  # no population in this database: unknown, not zero
    assert (free, total, avail, deployed) == ("380", "500", "6", "2")
    assert [li.children[1].children for li in ticker] == ["Fire", "Fire", "Traffic accident", "Flood"]
    assert sum(sum(tr.y) for tr in figure.data) == 4 and {tr.name for tr in figure.data} == {
        "Fire", "Traffic accident", "Flood"}
    assert sum(f["properties"]["value"] for lyr in hexes for f in lyr.data["features"]) == 4  # conservation
    assert drawn["version"] == v and drawn["res"] == situation.res_for_zoom(7)
    assert len(hazards) == 1 and hazards[0].style["color"] == wall.LEVEL_COLOURS["orange"]
    assert annotations[0].fillColor == "#00e676" and "前方指挥部" in annotations[0].children.children
    # the snapshot endpoint gives the same picture as JSON, small
    r = client.get("/api/v1/wall/snapshot?zoom=7&heat=population")
    body = r.get_json()
    assert r.status_code == 200 and body["kpis"]["incidents"]["active"] == 4 and body["hexes"]["heat"] == "population"
    assert len(r.data) < 100_000


@pytest.mark.db
def test_replay_shows_the_past_picture_and_a_badge(wall_db) -> None:
    """Replay at t0 draws the rows as they were at t0 (KPIs, hexes, hazards, annotations), live draws them now."""
    from dashboards.components.replay import replay_id
    from dashboards.pages import wall

    eng = create_engine(wall_db)
    with eng.begin() as c:
        t0 = c.execute(text("SELECT clock_timestamp()")).scalar_one()
    with eng.begin() as c:  # after t0: one incident closed, a boat back, the hazard and the annotation removed
        c.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
        c.execute(text("UPDATE incidents SET status = 'closed' WHERE source = 'wall-test' AND external_id = 'w3'"))
        c.execute(text("UPDATE resources SET status = 'available' WHERE source = 'wall-test' AND external_id = 'r2'"))
        c.execute(text("UPDATE hazards SET deleted_at = now() WHERE source = 'wall-test'"))
        c.execute(text("UPDATE annotations SET deleted_at = now() WHERE source = 'wall-test'"))
    eng.dispose()
    situation.clear_cache()
    app = create_app(Settings(database_url=wall_db))
    state = {"mode": "replay", "at": t0.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    bbox = [[40, 110], [42, 113]]
    with app.server.test_request_context("/wall?lang=en"):
        live = wall.refresh({"ok": True, "refresh": 1}, "incidents", 7, bbox, None, {"mode": "live", "at": None})
        past = wall.refresh({"ok": True, "refresh": 1}, "incidents", 7, bbox, None, state)
        # replay does not depend on the live status (a wall replaying while the poll says "lost" still draws)
        again = wall.refresh(None, "incidents", 7, bbox, None, state)
    live, past, again = drawn_by_id(live), drawn_by_id(past), drawn_by_id(again)
    assert _five(live) == ("3", "0", "1", "0", "2") and _five(past) == ("4", "1", "1", "0", "2")
    res = (ids.WALL_KPI_RES_AVAILABLE, ids.WALL_KPI_RES_DEPLOYED)
    assert tuple(live[k] for k in res) == ("8", "0") and tuple(past[k] for k in res) == ("6", "2")
    assert sum(f["properties"]["value"] for lyr in past[ids.WALL_HEX_LAYER] for f in lyr.data["features"]) == 4
    assert sum(f["properties"]["value"] for lyr in live[ids.WALL_HEX_LAYER] for f in lyr.data["features"]) == 3
    assert len(past[ids.WALL_HAZARD_LAYER]) == 1 and live[ids.WALL_HAZARD_LAYER] == []  # the hazard then, none now
    notes = ids.WALL_ANNOTATION_LAYER
    assert len(past[notes]) == 1 and "前方指挥部" in past[notes][0].children.children and live[notes] == []
    local = t0.astimezone(ZoneInfo(wall.DISPLAY_TZ)).strftime("%H:%M")
    badge = ids.WALL_REPLAY_BADGE
    assert past[badge] == f"Replay {local}" and "sr-hidden" not in past[f"{badge}.className"]
    assert "sr-hidden" in live[f"{badge}.className"]
    assert past[f"{ids.WALL_DRAWN}.data"]["replay"] is not None and _five(again) == _five(past)
    with app.server.test_request_context("/wall?lang=zh-CN"):
        page = json.dumps(wall.layout(lang="zh-CN").to_plotly_json(), default=str, ensure_ascii=False)
    assert replay_id("wall", "state") in page and ids.WALL_REPLAY_BADGE in page and "● 实时" in page
    # the report button: the live picture, or the replayed time
    assert ids.WALL_SITREP in page and "/api/v1/reports/sitrep?format=pdf&lang=zh-CN" in page


@pytest.mark.db
def test_two_redraws_of_the_same_shared_picture_both_land(wall_db) -> None:
    """The page lets the next redraw start when the previous one's WALL_DRAWN value arrives; Dash fires that only
    for a new value. Two redraws can draw the same cached picture (same version and second), so the value must
    still differ, or the wall would sit out REDRAW_TIMEOUT_S (seen as a 6 s median in bench_push)."""
    app = create_app(Settings(database_url=wall_db))
    from dashboards.pages import wall

    with app.server.test_request_context("/wall?lang=en"):
        first = wall.refresh({"ok": True, "refresh": 1}, "incidents", 7, None, None)
        second = wall.refresh({"ok": True, "refresh": 2}, "incidents", 7, None, None)
    drawn = [drawn_by_id(out)[f"{ids.WALL_DRAWN}.data"] for out in (first, second)]
    assert drawn[0]["version"] == drawn[1]["version"] and drawn[0] != drawn[1]


def test_alert_banner_lists_skipped_features_and_works_without_the_field() -> None:
    from dashboards.pages import wall

    assert wall.alert(None, "en") == ("", "sr-wall-alert sr-hidden")
    assert wall.alert([], "en")[1] == "sr-wall-alert sr-hidden"
    reasons = ["area_too_large: 20,108,116 km2; allowed: at most 5,000,000 km2", "outside_service_area: x",
               "ValueError: boom", "", "invalid geometry"]
    skipped = [{"layer": "hazards", "id": i, "name": f"H{i}", "reason": r} for i, r in enumerate(reasons)]
    text_, cls = wall.alert(skipped, "en")
    assert cls == "sr-wall-alert" and text_.startswith("5 features could not be computed")
    assert f"{t('layer.hazards', 'en')} H0 (area above the limit)" in text_ and "H1 (outside the service area)" in text_
    assert "H2 (computation failed)" in text_ and "and 2 more" in text_ and "H4" not in text_
    zh = wall.alert(skipped, "zh-CN")[0]  # the reason in the page's language, no English fragment
    assert "H0 (面积超出上限)" in zh and "H1 (超出服务区范围)" in zh and "H2 (计算失败)" in zh and "另有 2 个" in zh
    assert not any(w in zh for w in ("area_too_large", "ValueError", "km2"))


@pytest.mark.db
def test_a_stored_hazard_that_cannot_be_computed_is_named_in_the_banner(demo_db) -> None:
    """The snapshot's ``skipped`` (issue 17) reaches the wall: the banner names the hazard, the figures stay those of
    the picture without it (on the demo, whose population makes the hazards' cells worth computing)."""
    from dashboards.pages import wall

    app = create_app(Settings(database_url=demo_db.url, mode="demo"))
    kpis = (ids.WALL_KPI_INCIDENTS, ids.WALL_KPI_AFFECTED, ids.WALL_KPI_SHELTER_FREE)

    def draw(lang: str) -> dict:
        situation.clear_cache()
        with app.server.test_request_context(f"/wall?lang={lang}"):
            return drawn_by_id(wall.refresh({"ok": True, "refresh": 5}, "incidents", 6, None, None))

    clean = draw("en")
    assert "sr-hidden" in clean[f"{ids.WALL_ALERT}.className"]
    with demo_db.engine.begin() as c:  # as the server accepted it before the limits: it wraps the antimeridian
        c.execute(text("INSERT INTO hazards (source, external_id, name, kind, status, warning_level, geom) VALUES"
                       " ('wall-test', 'wraps', '跨日界线寒潮', 'cold_wave', 'active', 'blue', ST_Multi("
                       "ST_GeomFromText('POLYGON((170 40,-170 40,-170 50,170 50,170 40))', 4326)))"))
    try:
        for lang, reason in (("zh-CN", "超出服务区范围"), ("en", "outside the service area")):
            out = draw(lang)
            assert out[f"{ids.WALL_ALERT}.className"] == "sr-wall-alert"
            assert f"跨日界线寒潮 ({reason})" in out[ids.WALL_ALERT] and out[ids.WALL_ALERT].startswith(
                t("wall.alert.skipped", lang, n=1, items="")), out[ids.WALL_ALERT]
            assert out[f"{ids.WALL_DRAWN}.data"]["skipped"] == 1
            if lang == "en":  # the other figures are those of the picture without it
                assert [out[k] for k in kpis] == [clean[k] for k in kpis] and clean[ids.WALL_KPI_AFFECTED] != "—"
            # and the map fits the situation it can show, not the skipped hazard's box (across the antimeridian,
            # which the service area clips to the whole service area)
            view = f"{ids.WALL_MAP}.viewport"
            assert out[view] == clean[view], (out[view], clean[view])
    finally:
        with demo_db.engine.begin() as c:
            c.execute(text("DELETE FROM hazards WHERE source = 'wall-test' AND external_id = 'wraps'"))
        situation.clear_cache()


@pytest.mark.db
def test_a_3840_wall_one_zoom_in_draws_the_hexes_of_a_1920_wall(demo_db) -> None:
    """A 3840 wall fits one zoom further in than a 1920 one and shows the same picture at twice the size (basemap
    tiles at 512 px, symbols doubled): its heat hexes are those of the 1920 wall's zoom, not a finer resolution."""
    from dashboards.pages import wall

    app = create_app(Settings(database_url=demo_db.url, mode="demo"))
    hexes = {}
    for zoom, scale in ((6, 1.0), (7, 2.0), (7, 1.0)):
        situation.clear_cache()
        with app.server.test_request_context("/wall?lang=en"):
            out = drawn_by_id(wall.refresh({"ok": True, "refresh": 5}, "population", zoom, None, None, None, scale))
        hexes[zoom, scale] = out[ids.WALL_HEX_LAYER]
    assert hexes[6, 1.0] and repr(hexes[7, 2.0]) == repr(hexes[6, 1.0])
    assert repr(hexes[7, 1.0]) != repr(hexes[6, 1.0])  # the zoom does choose the resolution


@pytest.mark.db
def test_a_failed_picture_shows_the_alert_and_keeps_the_figures(wall_db, monkeypatch) -> None:
    """Never blank figures under a fresh "as of": a picture that cannot be drawn leaves every figure as it is
    (no update), says so in the alert banner, and tells the browser (``ok: False``) to stop moving "data as of"."""
    from dash import no_update

    from dashboards.pages import wall

    app = create_app(Settings(database_url=wall_db))

    def broken(*_a, **_k):
        raise RuntimeError("a feature that cannot be computed")

    monkeypatch.setattr(wall, "live_snapshot", broken)
    with app.server.test_request_context("/wall?lang=en"):
        out = drawn_by_id(wall.refresh({"ok": True, "refresh": 3}, "incidents", 7, None, None, None, 1.0,
                                       {"ok": True, "time": "2026-07-01T01:30:00+00:00", "fitted": True}))
    assert out[ids.WALL_ALERT] == "The figures could not be updated; showing the picture of 09:30:00"
    assert out[f"{ids.WALL_ALERT}.className"] == "sr-wall-alert"
    assert out[f"{ids.WALL_DRAWN}.data"]["ok"] is False
    assert all(out[k] is no_update for k in (ids.WALL_KPI_INCIDENTS, ids.WALL_KPI_SHELTER_FREE, ids.WALL_TICKER))


@pytest.mark.db
def test_ticker_says_where_and_a_new_major_incident_flashes(wall_db) -> None:
    from dashboards.services.wall import FLASH_S, wall_snapshot

    eng = create_engine(wall_db)
    with eng.begin() as c:
        c.execute(text("INSERT INTO admin_regions (source, external_id, name, name_en, kind, status, adcode, level,"
                       " geom) VALUES ('wall-test', 'c1', '新城区', 'Xincheng District', 'county', 'active', '159901',"
                       " 'county', ST_Multi(ST_MakeEnvelope(111.55, 40.7, 111.625, 40.9, 4326)))"))
    try:
        with eng.connect() as c:
            snap = wall_snapshot(c, zoom=7, lang="en")
            later = wall_snapshot(c, zoom=7, lang="en", now=datetime.now(UTC) + timedelta(seconds=FLASH_S + 1))
    finally:
        with eng.begin() as c:
            c.execute(text("DELETE FROM admin_regions WHERE source = 'wall-test'"))
        eng.dispose()
    by_name = {r["name"]: r for r in snap["ticker"]}
    assert by_name["事件0"]["where"] == "Xincheng District" and by_name["事件3"]["where"] is None  # 111.63 E: outside
    assert by_name["事件0"]["flash_s"] > 0 and by_name["事件3"]["flash_s"] > 0  # major, extraordinary: just recorded
    assert by_name["事件1"]["flash_s"] == 0  # general: never flashes
    assert all(r["flash_s"] == 0 for r in later["ticker"])  # a minute later: no more
    assert snap["extent"] is not None and snap["impact_zones"]["features"] == []


@pytest.mark.db
def test_replay_before_the_first_record_says_so(wall_db) -> None:
    """Before the history's first row the store knows nothing: no zeros presented as facts, a banner instead."""
    from dashboards.pages import wall
    from dashboards.services.wall import wall_snapshot

    eng = create_engine(wall_db)
    with eng.connect() as c:
        snap = wall_snapshot(c, zoom=7, at=datetime(2001, 1, 1, tzinfo=UTC))
    eng.dispose()
    assert snap["no_record"] is True and snap["recorded_from"] is not None and "kpis" not in snap
    app = create_app(Settings(database_url=wall_db))
    with app.server.test_request_context("/wall?lang=en"):
        out = drawn_by_id(wall.refresh(None, "incidents", 7, None, None,
                                       {"mode": "replay", "at": "2001-01-01T00:00:00Z"}))
    assert out[ids.WALL_KPI_INCIDENTS] == "—" and out[ids.WALL_KPI_SHELTER_FREE] == "—" and out[ids.WALL_TICKER] == []
    assert out[ids.WALL_ALERT].startswith("No record before ") and out[f"{ids.WALL_ALERT}.className"] == "sr-wall-alert"
