"""The monitoring demo tells the story the issue asks for, checked against the store by raw SQL: stations at county
seats inside their counties, two stations gone stale, one spike flagged and never warning, rainstorm warnings that
appear, upgrade and clear on the first day, a blizzard still warned at the end, every change dated in the story so
the replay shows it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from layers.monitor import anomalies
from layers.monitor.demo import HOURS, SOURCE, SPIKE, load_monitoring_demo
from layers.monitor.rules import LEVELS
from layers.reference.regions import load_admin_regions
from layers.store.gazetteer import read_places
from tests.layers.monitor.conftest import T0

pytestmark = pytest.mark.db

NOW = T0 + timedelta(minutes=30)
END = T0  # the last hourly reading (the hour before NOW, 5 minutes of delivery allowed)
FIRST = END - timedelta(hours=HOURS - 1)


def _rows(session: Session, sql: str, **params: Any) -> list[Any]:
    return list(session.execute(text(sql), params).all())


def test_the_demo_tells_its_story(session: Session) -> None:
    load_admin_regions(session, provinces=("15",))
    report = load_monitoring_demo(session, seed=2024, now=NOW)

    # stations: one weather station per county of Inner Mongolia, inside its county; three river gauges
    weather = _rows(session, "SELECT s.code, s.adcode, ST_Covers(a.geom, s.geom) FROM stations s"
                             " LEFT JOIN admin_regions a ON a.adcode = s.adcode AND a.level = 'county'"
                             " WHERE s.source = :src AND s.kind = 'weather'", src=SOURCE)
    places = read_places(country="CN", admin1="20", min_population=0)  # GeoNames admin1 20: Inner Mongolia
    with_place = session.execute(text(
        "SELECT count(*) FROM admin_regions WHERE level = 'county' AND adcode LIKE '15%' AND ST_Intersects(geom,"
        " ST_GeomFromText(:mp, 4326))"), {"mp": "MULTIPOINT(" + ",".join(f"({p.lon} {p.lat})" for p in places) + ")"}
    ).scalar_one()
    assert len(weather) == with_place > 80 and all(inside for _, _, inside in weather)
    assert all(code == f"D{adcode}" for code, adcode, _ in weather)
    assert len({a for _, a, _ in weather}) == len(weather)
    gauges = _rows(session, "SELECT code, warning_stage_m FROM stations WHERE source = :src AND kind = 'hydrology'",
                   src=SOURCE)
    assert len(gauges) == 3 and all(w is not None for _, w in gauges)
    assert report["stations"] == len(weather) + 3

    # readings: what the report says is what is stored, hourly over the 72 h
    n, t0, t1 = session.execute(text(
        "SELECT count(*), min(observed_at), max(observed_at) FROM observations o JOIN stations s"
        " ON s.id = o.station_id WHERE s.source = :src"), {"src": SOURCE}).one()
    assert n == report["readings"] and t0 == FIRST and t1 == END

    # two stale stations: nothing in the last 3 intervals, by raw SQL and as the wall counts them
    stale = _rows(session, "SELECT s.code FROM stations s WHERE s.source = :src AND NOT EXISTS (SELECT 1 FROM"
                           " observations o WHERE o.station_id = s.id AND o.observed_at > :now - interval '3 hours'"
                           " AND o.observed_at <= :now)", src=SOURCE, now=NOW)
    assert len(stale) == 2
    states = anomalies.station_states(session, now=NOW)
    assert sorted(s["code"] for s in states if s["stale"] and s["code"].startswith("D")) == sorted(c for c, in stale)

    # one spike: the anemometer's hour, flagged, and no warning was triggered by it
    spikes = _rows(session, "SELECT o.id, s.adcode, o.variable, o.observed_at FROM observations o JOIN stations s"
                            " ON s.id = o.station_id WHERE s.source = :src AND o.quality = 'spike'", src=SOURCE)
    spiked = {(a, v, t) for _, a, v, t in spikes}
    assert spikes and all(a.startswith(SPIKE[0]) and t == END - timedelta(hours=SPIKE[1]) for a, _v, t in spiked)
    assert {v for _, v, _ in spiked} <= {"wind_speed", "wind_gust"}
    triggering = {int(i) for (i,) in _rows(
        session, "SELECT (o->>'id')::bigint FROM hazards h, jsonb_array_elements(coalesce("
                 "h.properties->'monitor'->'trigger'->'observations', '[]'))"
                 " o WHERE h.source = 'monitor'")}
    assert triggering and not triggering & {int(i) for i, *_ in spikes}
    spiker = _rows(session, "SELECT count(*) FROM hazards h JOIN stations s ON s.id = (h.properties->'monitor'"
                            "->>'station_id')::bigint WHERE h.source = 'monitor' AND s.adcode LIKE :p"
                            " AND h.properties->'monitor'->>'rule' = 'gale' AND h.valid_from <= :t"
                            " AND coalesce(h.valid_to, 'infinity') > :t",
                   p=SPIKE[0] + "%", t=END - timedelta(hours=SPIKE[1]))
    assert spiker[0][0] == 0  # no gale there at the spike's hour: the neighbours did not feel it

    # the rainstorm on the first day: warnings appear, at least one upgrades, all have cleared by the end
    rain = _rows(session, "SELECT id, status, valid_from, valid_to, jsonb_path_query_array(properties->'monitor'"
                          "->'revisions', '$[*].level') FROM hazards WHERE source = 'monitor'"
                          " AND properties->'monitor'->>'rule' = 'rainstorm'")
    assert rain
    assert all(FIRST <= vf <= END - timedelta(hours=36) for _, _, vf, _, _ in rain)
    assert all(vt is not None and vt <= END for _, _, _, vt, _ in rain)
    # the officer confirmed within the hour, so each level change is a confirmed revision (published as CAP)
    upgraded = [h for h in rain if any(LEVELS.index(b) > LEVELS.index(a) for a, b in zip(h[4], h[4][1:],
                                                                                         strict=False))]
    assert upgraded and any(h[4] and h[4][0] != "red" and "red" in h[4] for h in rain)

    # the blizzard over Xilingol (adcode 1525..): still warned at the end
    snow = _rows(session, "SELECT h.warning_level, s.adcode FROM hazards h JOIN stations s ON s.id ="
                          " (h.properties->'monitor'->>'station_id')::bigint WHERE h.source = 'monitor'"
                          " AND h.properties->'monitor'->>'rule' = 'blizzard' AND h.valid_to IS NULL"
                          " AND h.status IN ('pending', 'active')")
    assert snow and any(a.startswith("1525") for _, a in snow)

    # replay: every change of a warning is dated in the story (arrival or the officer's decision), in order, so
    # that the hazards as of a past hour are what the officer saw then
    hist = _rows(session, "SELECT f.feature_id, f.changed_at, f.changed_by, f.row->>'status' FROM feature_history f"
                          " WHERE f.layer = 'hazards' AND f.feature_id IN (SELECT id FROM hazards WHERE source ="
                          " 'monitor') ORDER BY f.id")
    assert all(FIRST <= at <= NOW for _, at, _, _ in hist)
    by: dict[int, list[Any]] = {}
    for fid, at, who, status in hist:
        by.setdefault(fid, []).append((at, who, status))
    assert all(all(a[0] <= b[0] for a, b in zip(v, v[1:], strict=False)) for v in by.values())
    assert any(who == "demo-duty" and status == "active" for v in by.values() for _, who, status in v)
    assert any(status == "dismissed" for v in by.values() for _, _, status in v)
    mid = END - timedelta(hours=50)  # while the cell was over Baotou
    open_mid = {fid for fid, v in by.items() if v[0][0] <= mid and not any(
        at <= mid and status == "cancelled" for at, _, status in v)}
    assert open_mid & {h[0] for h in rain}
