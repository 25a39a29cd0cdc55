"""Automatic warnings against a real PostGIS, on a controlled clock: a crossing raises a pending warning that links
its readings and rule, it rises at once and comes down after the hysteresis; a spike never warns; confirmation and
dismissal are recorded with who and when; a confirmed warning changes only through a person; a stale station's
warnings are left alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from layers.monitor import warnings
from layers.monitor.ingest import ingest_records
from layers.store.errors import ConflictError, NotFoundError
from layers.store.models import FeatureHistory, Hazard, Observation
from tests.layers.monitor.conftest import T0, readings

pytestmark = pytest.mark.db

H = timedelta(hours=1)


def feed(session: Session, recs: list[dict[str, Any]], *, hours: range) -> list[warnings.Change]:
    """Post the readings hour by hour, each hour at hh:05 (the clock of the test), as a station would."""
    changes = []
    for h in hours:
        at = (T0 + h * H).isoformat()
        batch = [r for r in recs if r["observed_at"] == at]
        changes += ingest_records(session, batch, now=T0 + h * H + timedelta(minutes=5)).changes
    return changes


def monitor_hazards(session: Session) -> list[Any]:
    session.expire_all()  # the evaluations write with Core statements
    return session.execute(select(Hazard).where(Hazard.source == "monitor").order_by(Hazard.id)).scalars().all()


RAIN = [0, 0, 6, 20, 20, 15, 40, 45, 20, 0, 0, 0, 0, 0]  # mm per hour: blue .. red, then dry


def test_a_rainstorm_raises_upgrades_and_withdraws_a_pending_warning(session: Session, station) -> None:
    station("B1")
    changes = feed(session, readings("B1", "precipitation", "mm", RAIN, period_s=3600), hours=range(len(RAIN)))
    got = [(c.action, c.level, int((c.at - T0) / H)) for c in changes]
    # 3 h sums: h5 55 (orange), h6 75, h7 100 (red); dry from h9: the 2 h "continuing" test fails at h10, the
    # hysteresis (1 h) holds each level one more reading
    assert got[0] == ("raised", "orange", 5)
    assert ("changed", "red", 7) in got
    assert got[-1] == ("withdrawn", None, 11)
    (h,) = monitor_hazards(session)
    assert h.status == "cancelled" and h.valid_to == T0 + 11 * H and h.onset == T0 + 5 * H
    m = h.properties["monitor"]
    assert h.properties["automatic"] is True and m["rule"] == "rainstorm" and m["station"] == "B1"
    assert [x["level"] for x in m["levels"]][:2] == ["orange", "red"]
    # the warning links the readings that decided it: they are stored readings of that station
    ids = {o["id"] for o in m["trigger"]["observations"]}
    stored = set(session.execute(select(Observation.id).where(Observation.id.in_(ids))).scalars())
    assert ids and ids == stored
    assert sum(o["value"] for o in m["trigger"]["observations"]) == m["trigger"]["value"]


def test_a_spike_never_warns(session: Session, station) -> None:
    station("G1", lon=112.0, lat=43.9)
    for k, code in enumerate(("G2", "G3", "G4")):
        station(code, lon=112.1 + 0.1 * k, lat=43.95)
    winds = [4.0, 5.0, 4.5, 3.8, 4.2, 5.1, 4.4, 4.0]
    recs = readings("G1", "wind_speed", "m/s", winds + [41.0, 4.3, 4.1])  # 41 m/s would be red
    for code in ("G2", "G3", "G4"):
        recs += readings(code, "wind_speed", "m/s", winds + [4.6, 4.1, 4.0])
    changes = feed(session, recs, hours=range(11))
    assert changes == [] and monitor_hazards(session) == []
    flag = session.execute(select(Observation.quality).where(Observation.value == 41.0)).scalar_one()
    assert flag == "spike"


def test_a_gale_every_neighbour_feels_warns(session: Session, station) -> None:
    for k, code in enumerate(("G5", "G6", "G7")):
        station(code, lon=112.0 + 0.1 * k, lat=43.9)
    winds = [4.0, 5.0, 4.5, 3.8, 4.2, 5.1, 4.4, 4.0, 18.5, 19.0]
    recs = [r for code in ("G5", "G6", "G7") for r in readings(code, "wind_speed", "m/s", winds)]
    changes = feed(session, recs, hours=range(10))
    assert sorted((c.station, c.action, c.level) for c in changes) == [
        ("G5", "raised", "yellow"), ("G6", "raised", "yellow"), ("G7", "raised", "yellow")]


def _raised(session: Session, station) -> Hazard:
    station("B2")
    feed(session, readings("B2", "precipitation", "mm", RAIN[:6], period_s=3600), hours=range(6))
    (h,) = monitor_hazards(session)
    assert h.status == "pending"
    return h


def _history(session: Session, hid: int) -> list[tuple[str, str, str]]:
    rows = session.execute(select(FeatureHistory.changed_by, FeatureHistory.op, FeatureHistory.row)
                           .where(FeatureHistory.layer == "hazards", FeatureHistory.feature_id == hid)
                           .order_by(FeatureHistory.id)).all()
    return [(who, op, row["status"]) for who, op, row in rows]


def test_confirmation_is_recorded_with_who_and_when(session: Session, station) -> None:
    h = _raised(session, station)
    when = T0 + 5 * H + timedelta(minutes=12)
    change = warnings.confirm(session, h.id, user="duty-li", now=when, note="雷达回波一致")
    session.refresh(h)
    assert (change.action, h.status) == ("confirmed", "active")
    m = h.properties["monitor"]
    assert m["confirmed"] == {"by": "duty-li", "at": when.isoformat(), "note": "雷达回波一致"}
    (rev,) = m["revisions"]
    assert {k: rev[k] for k in ("rev", "msg_type", "sent", "level", "status", "by")} == {
        "rev": 1, "msg_type": "Alert", "sent": when.isoformat(), "level": "orange", "status": "active",
        "by": "duty-li"}
    assert rev["trigger"]["value"] == 55.0 and rev["trigger"]["threshold"] == 50.0
    assert _history(session, h.id) == [("monitor", "insert", "pending"), ("duty-li", "update", "active")]
    with pytest.raises(ConflictError):
        warnings.confirm(session, h.id, user="duty-wang", now=when)  # nothing left to confirm


def test_dismissal_is_recorded_and_silences_the_episode_until_it_rises(session: Session, station) -> None:
    h = _raised(session, station)
    warnings.dismiss(session, h.id, user="duty-zhao", now=T0 + 5 * H + timedelta(minutes=9), note="雨量计故障")
    session.refresh(h)
    assert h.status == "dismissed" and h.properties["monitor"]["dismissed"]["by"] == "duty-zhao"
    assert _history(session, h.id)[-1] == ("duty-zhao", "update", "dismissed")
    # the same level again: silent; a higher level: a new pending warning, the dismissed episode closed
    more = readings("B2", "precipitation", "mm", [0, 0, 6, 20, 20, 15, 18], period_s=3600)
    assert feed(session, more, hours=range(6, 7)) == []
    higher = readings("B2", "precipitation", "mm", [0, 0, 6, 20, 20, 15, 18, 70], period_s=3600)
    changes = feed(session, higher, hours=range(7, 8))
    assert [(c.action, c.level) for c in changes] == [("closed", "red"), ("raised", "red")]
    first, second = monitor_hazards(session)
    assert (first.status, first.valid_to, second.status) == ("dismissed", T0 + 7 * H, "pending")


def test_a_confirmed_warning_changes_only_through_a_person(session: Session, station) -> None:
    h = _raised(session, station)
    warnings.confirm(session, h.id, user="duty-li", now=T0 + 5 * H + timedelta(minutes=10))
    more = readings("B2", "precipitation", "mm", RAIN[:8], period_s=3600)
    changes = feed(session, more, hours=range(6, 8))  # 100 mm in 3 h at h7: red
    assert [(c.action, c.level) for c in changes] == [("proposed", "red")]
    session.refresh(h)
    assert h.warning_level == "orange" and h.properties["monitor"]["proposal"]["action"] == "upgrade"
    assert [p["id"] for p in warnings.pending(session)] == [h.id]
    warnings.confirm(session, h.id, user="duty-wang", now=T0 + 7 * H + timedelta(minutes=8))
    session.refresh(h)
    assert h.warning_level == "red" and h.name.endswith("红色预警")
    assert [r["msg_type"] for r in h.properties["monitor"]["revisions"]] == ["Alert", "Update"]
    # the rain stops: after the hysteresis the rules propose to clear; a person clears it
    dry = readings("B2", "precipitation", "mm", RAIN, period_s=3600)
    changes = feed(session, dry, hours=range(8, 14))
    assert changes[-1].action == "proposed" and changes[-1].level is None
    warnings.confirm(session, h.id, user="duty-wang", now=T0 + 14 * H)
    session.refresh(h)
    assert h.status == "cancelled" and h.valid_to == T0 + 14 * H
    assert [r["msg_type"] for r in h.properties["monitor"]["revisions"]] == ["Alert", "Update", "Cancel"]
    assert warnings.pending(session) == []


def test_a_dismissed_proposal_is_not_made_again_for_the_same_level(session: Session, station) -> None:
    h = _raised(session, station)
    warnings.confirm(session, h.id, user="duty-li", now=T0 + 5 * H + timedelta(minutes=10))
    feed(session, readings("B2", "precipitation", "mm", RAIN[:8], period_s=3600), hours=range(6, 8))
    warnings.dismiss(session, h.id, user="duty-li", now=T0 + 7 * H + timedelta(minutes=6))
    session.refresh(h)
    assert h.properties["monitor"]["proposal"] is None and h.warning_level == "orange"
    still_red = readings("B2", "precipitation", "mm", RAIN[:8] + [60], period_s=3600)
    assert feed(session, still_red, hours=range(8, 9)) == []


def test_a_stale_station_s_warning_is_left_alone(session: Session, station) -> None:
    h = _raised(session, station)
    late = [r for r in readings("B2", "precipitation", "mm", RAIN, period_s=3600)
            if r["observed_at"] == (T0 + 6 * H).isoformat()]
    changes = ingest_records(session, late, now=T0 + 20 * H).changes  # arrives 14 h late: no evaluation
    assert changes == [] and monitor_hazards(session)[0].status == "pending"
    with pytest.raises(NotFoundError):
        warnings.confirm(session, 10**9, user="x", now=T0)
    assert h.id


def test_the_screen_in_sql_never_drops_a_rule_that_reaches_a_level(session: Session, station) -> None:
    """An evaluation reads the whole series only of the (rule, station) pairs the database's window aggregates say
    may reach a level (warnings._screen): for every pair at every clock, the screen keeps each pair that level_at
    on the full series (the oracle) finds at a level, and drops the others."""
    import numpy as np

    from layers.monitor.ingest import ingest
    from layers.monitor.observations import records_frame
    from layers.monitor.rules import NONE, level_at

    rng = np.random.default_rng(11)
    hours = 60
    recs: list[dict[str, Any]] = []
    for k in range(8):  # weather: rain cells, a cold front at some, winds near the gale thresholds, fog
        code = f"Q{k}"
        station(code, lon=109.0 + 0.5 * k)
        rain = np.where(rng.random(hours) < 0.3, np.round(rng.gamma(1.5, 6.0 + 3 * k, hours), 1), 0.0)
        drop = np.where(np.arange(hours) > 30, 3.0 * k, 0.0)
        temp = np.round(8 + 4 * np.sin(np.arange(hours) / 24 * 2 * np.pi) - drop + rng.normal(0, 0.3, hours), 1)
        wind = np.round(np.clip(4 + 2 * k + rng.normal(0, 2.0, hours), 0.1, None), 1)
        gust = np.round(wind * rng.uniform(1.2, 1.8, hours), 1)
        vis = np.round(np.clip(rng.lognormal(7.0 - 0.4 * k, 0.8, hours), 10, 30000))
        for var, unit, vals, extra in (("precipitation", "mm", rain, {"period_s": 3600}),
                                       ("temperature", "degC", temp, {}), ("wind_speed", "m/s", wind, {}),
                                       ("wind_gust", "m/s", gust, {}), ("visibility", "m", vis, {})):
            recs += [{**r, **extra} for r in readings(code, var, unit, vals.tolist())]
    for k in range(3):  # river gauges around their stages
        code = f"QH{k}"
        station(code, lon=110.0 + 0.3 * k, kind="hydrology", warning_stage_m=1000.0, guarantee_stage_m=1001.0,
                record_stage_m=1002.0)
        level = np.round(999.0 + np.cumsum(rng.normal(0.05 * k, 0.2, hours)), 2)
        recs += readings(code, "water_level", "m", level.tolist())
    ingest(session, records_frame(recs), now=T0 + hours * H, evaluate=False)

    c = session.connection()
    rules = warnings.load_rules(c)
    ids = [int(i) for i in session.execute(select(Observation.station_id).distinct()).scalars()]
    stations = warnings.station_info(c, ids)
    pairs = [(r, st) for st in stations.values() for r in rules if st.kind in r.station_kinds]
    kept_total = reached_total = 0
    for h in range(6, hours + 3, 3):
        now = T0 + h * H + timedelta(minutes=5)
        kept = {(r.code, st.id) for r, st in warnings._screen(c, pairs, now)}
        series = warnings._fetch_series(c, {(st.id, v): (now - timedelta(days=10), now)
                                            for r, st in pairs for v in r.variables})
        reached = set()
        for r, st in pairs:
            s = series.get(st.id, {})
            times = [float(s[v].times[-1]) for v in r.triggers if v in s and len(s[v].times)]
            if times and max(times) >= now.timestamp() - warnings.STALE_INTERVALS * st.interval_s \
                    and level_at(r, s, max(times), st.stages).level != NONE:
                reached.add((r.code, st.id))
        assert reached <= kept, (h, reached - kept)
        assert kept == reached, (h, kept - reached)  # continuous values: no reading sits on a threshold
        kept_total, reached_total = kept_total + len(kept), reached_total + len(reached)
    assert 0 < reached_total < len(pairs) * len(range(6, hours + 3, 3)) / 2  # levels reached, most pairs dropped
