"""Warning rules: the seeded rules hold China's official criteria, and each level's boundary (just under, at, just
over) gives the level an independent brute-force oracle computes from those criteria; window sums against a
brute-force sum; hysteresis; rules that are not well-formed are refused naming the field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from layers.monitor.rules import LEVELS, NONE, Series, aggregate, level_at, next_level, rule_from_row
from layers.store.models import WarningRule

H = 3600.0
T = 100 * H  # evaluation time of the boundary tests (epoch seconds; any time will do)

# --- the oracle: the official criteria, written down here from the texts, and a brute-force evaluation -------------
# 中国气象局《气象灾害预警信号及防御指南》 (附件 of 中国气象局令第16号): (level, window hours, threshold)
RAINSTORM = [("blue", 12, 50.0), ("yellow", 6, 50.0), ("orange", 3, 50.0), ("red", 3, 100.0)]
BLIZZARD = [("blue", 12, 4.0), ("yellow", 12, 6.0), ("orange", 6, 10.0), ("red", 6, 15.0)]
# 大风: Beaufort force 6/8/10/12 mean or 7/9/11/13 gust, lower bounds of GB/T 28591-2012 (m/s)
GALE_MEAN = [("blue", 10.8), ("yellow", 17.2), ("orange", 24.5), ("red", 32.7)]
GALE_GUST = [("blue", 13.9), ("yellow", 20.8), ("orange", 28.5), ("red", 37.0)]
# 寒潮: (level, hours, drop of the lowest temperature °C, lowest temperature at most °C, mean wind at least m/s)
COLD_WAVE = [("blue", 48, 8.0, 4.0, 8.0), ("yellow", 24, 10.0, 4.0, 10.8), ("orange", 24, 12.0, 0.0, 10.8),
             ("red", 24, 16.0, 0.0, 10.8)]
FOG = [("yellow", 500.0), ("orange", 200.0), ("red", 50.0)]  # visibility below (m); no blue level


def brute_sum(readings: list[tuple[float, float, float]], t: float, window_s: float) -> float:
    """Sum of the amounts whose whole period lies in (t - window, t]; NaN without any."""
    got = [v for (ti, v, p) in readings if ti <= t and ti - p >= t - window_s and ti > t - window_s]
    return sum(got) if got else math.nan


def brute_values(readings: list[tuple[float, float]], t: float, window_s: float) -> list[float]:
    return [v for (ti, v) in readings if t - window_s < ti <= t]


def oracle_accumulation(table: list[tuple[str, int, float]], amounts: list[tuple[float, float, float]],
                        t: float) -> int:
    """The highest level whose criterion holds (and it still fell in the last 2 h), by brute force."""
    if not brute_sum(amounts, t, 2 * H) > 0:
        return NONE
    best = NONE
    for level, hours, x in table:
        s = brute_sum(amounts, t, hours * H)
        if not math.isnan(s) and round(s, 6) >= x:  # readings have 0.1 mm resolution: sums to the micrometre
            best = max(best, LEVELS.index(level))
    return best


def hourly(amounts: list[float], *, end: float = T) -> list[tuple[float, float, float]]:
    """Hourly accumulations ending at ``end``, the last amount at ``end``."""
    n = len(amounts)
    return [(end - (n - 1 - k) * H, a, H) for k, a in enumerate(amounts)]


def series_of(readings: list[tuple[float, float, float]]) -> Series:
    return Series.of([r[0] for r in readings], [r[1] for r in readings], periods=[r[2] for r in readings])


@pytest.fixture
def seeded(session: Session) -> dict[str, Any]:
    rows = session.execute(select(WarningRule.__table__)).mappings().all()
    return {r["code"]: rule_from_row(dict(r)) for r in rows}


def _thresholds(rule: Any, criterion: Any = None) -> list[tuple[str, float | None, float]]:
    c = criterion or rule.primary
    return [(LEVELS[k], th.value, th.window_s / H) for k, th in c.thresholds.items()]


def test_seeded_rules_hold_the_official_numbers(seeded: dict[str, Any]) -> None:
    assert sorted(seeded) == ["blizzard", "cold_wave", "fog", "gale", "rainstorm", "river_stage"]
    assert _thresholds(seeded["rainstorm"]) == [(lv, x, h) for lv, h, x in RAINSTORM]
    assert _thresholds(seeded["blizzard"]) == [(lv, x, h) for lv, h, x in BLIZZARD]
    gale = seeded["gale"]
    assert [(lv, x) for lv, x, _ in _thresholds(gale)] == GALE_MEAN
    assert [(lv, x) for lv, x, _ in _thresholds(gale, gale.alternatives[0])] == GALE_GUST
    assert [(lv, x) for lv, x, _ in _thresholds(seeded["fog"])] == FOG and seeded["fog"].primary.op == "<"
    cold = seeded["cold_wave"]
    assert [(lv, x, h) for lv, x, h in _thresholds(cold)] == [(lv, d, h) for lv, h, d, _, _ in COLD_WAVE]
    assert [x for _, x, _ in _thresholds(cold, cold.conditions[0])] == [m for *_, m, _ in COLD_WAVE]
    assert [x for _, x, _ in _thresholds(cold, cold.conditions[1])] == [w for *_, w in COLD_WAVE]
    for rule in seeded.values():
        assert rule.source.startswith(("中国气象局", "水利部")), rule.code


@pytest.mark.parametrize("code, table", [("rainstorm", RAINSTORM), ("blizzard", BLIZZARD)])
def test_accumulation_boundaries(seeded: dict[str, Any], code: str, table: list[tuple[str, int, float]]) -> None:
    rule = seeded[code]
    variable = rule.primary.variable
    for level, hours, x in table:
        for amount, expect_at_least in ((x - 0.01, False), (x, True), (x + 0.01, True)):
            amounts = hourly([amount / hours] * hours)  # the amount spread over the level's window
            got = level_at(rule, {variable: series_of(amounts)}, T).level
            want = oracle_accumulation(table, amounts, T)
            assert got == want, (code, level, amount)
            assert (got >= LEVELS.index(level)) == expect_at_least, (code, level, amount, got)
            if expect_at_least and amount == x:
                assert got == LEVELS.index(level), (code, level)  # exactly at the threshold: that level


def test_rain_that_stopped_warns_no_more_than_hysteresis_allows(seeded: dict[str, Any]) -> None:
    rule = seeded["rainstorm"]
    wet = hourly([0, 0, 40, 40, 30])  # 110 mm in 3 h: red
    assert level_at(rule, {"precipitation": series_of(wet)}, T).level == LEVELS.index("red")
    dry = hourly([0, 0, 40, 40, 30, 0, 0], end=T + 2 * H)  # two dry hours: no longer "continuing"
    assert level_at(rule, {"precipitation": series_of(dry)}, T + 2 * H).level == NONE


@pytest.mark.parametrize("variable, table", [("wind_speed", GALE_MEAN), ("wind_gust", GALE_GUST)])
def test_gale_boundaries_mean_or_gust(seeded: dict[str, Any], variable: str, table: list[tuple[str, float]]) -> None:
    rule = seeded["gale"]
    for level, x in table:
        for v, want in ((round(x - 0.01, 2), LEVELS.index(level) - 1), (x, LEVELS.index(level)),
                        (round(x + 0.01, 2), LEVELS.index(level))):
            s = {variable: Series.of([T - H / 2, T], [3.0, v])}  # the strongest of the last hour decides
            assert level_at(rule, s, T).level == want, (variable, level, v)
    # a reading older than the hour does not count
    assert level_at(rule, {"wind_speed": Series.of([T - 2 * H], [40.0])}, T).level == NONE


def test_fog_boundaries_below(seeded: dict[str, Any]) -> None:
    rule = seeded["fog"]
    for level, x in FOG:
        k = LEVELS.index(level)
        below = k - 1 if k > 1 else NONE
        assert level_at(rule, {"visibility": Series.of([T], [x])}, T).level == below, level  # at: not below
        assert level_at(rule, {"visibility": Series.of([T], [x - 1])}, T).level == k, level
        assert level_at(rule, {"visibility": Series.of([T], [x + 1])}, T).level == below, level


def _cold(day_before_min: float, drop: float, wind: float, hours: int) -> dict[str, Series]:
    """Hourly temperatures: 2 x ``hours`` hours, the lowest of the first half ``day_before_min``, of the second
    ``day_before_min - drop``; a steady ``wind``."""
    n = 2 * hours
    times = [T - (n - 1 - k) * H for k in range(n)]
    temps = [day_before_min + 3.0] * n
    temps[hours // 2] = day_before_min
    temps[-1] = day_before_min - drop
    return {"temperature": Series.of(times, temps), "wind_speed": Series.of(times, [wind] * n)}


def test_cold_wave_boundaries(seeded: dict[str, Any]) -> None:
    rule = seeded["cold_wave"]
    for level, hours, drop, min_at_most, wind_at_least in COLD_WAVE:
        k = LEVELS.index(level)
        lowest_after = min_at_most - 0.5
        for d, reached in ((drop - 0.01, False), (drop, True), (drop + 0.01, True)):
            s = _cold(lowest_after + d, d, wind_at_least + 0.5, hours)
            got = level_at(rule, s, T).level
            assert (got >= k) == reached, (level, d, got)
        # the other criteria of the level: the temperature must get low enough, the wind strong enough
        s = _cold(min_at_most + 0.5 + drop, drop, wind_at_least + 0.5, hours)
        assert level_at(rule, s, T).level < k or level == "blue", level
        s = _cold(lowest_after + drop, drop, wind_at_least - 0.1, hours)
        assert level_at(rule, s, T).level < k, level


def test_river_stage_levels_are_the_station_s_own(seeded: dict[str, Any]) -> None:
    rule = seeded["river_stage"]
    stages = {"warning_stage_m": 1002.5, "guarantee_stage_m": 1003.5, "record_stage_m": 1004.2}
    cases = [(1002.19, NONE), (1002.2, 0), (1002.49, 0), (1002.5, 1), (1003.49, 1), (1003.5, 2), (1004.2, 3)]
    for stage, want in cases:
        assert level_at(rule, {"water_level": Series.of([T], [stage])}, T, stages).level == want, stage
    # a station without a record stage never reaches red; one without stages reaches nothing
    assert level_at(rule, {"water_level": Series.of([T], [1010.0])}, T,
                    {**stages, "record_stage_m": None}).level == 2
    assert level_at(rule, {"water_level": Series.of([T], [1010.0])}, T, {}).level == NONE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 96), st.floats(0, 80, allow_nan=False), st.sampled_from([600, 1800, 3600,
                                                                                                    10800])),
                min_size=0, max_size=60, unique_by=lambda r: r[0]),
       st.integers(0, 100), st.sampled_from([3600, 7200, 10800, 21600, 43200, 86400]))
def test_window_sums_equal_a_brute_force_sum(raw: list[tuple[int, float, int]], t_steps: int, window_s: int) -> None:
    readings = [(k * 1800.0, v, float(p)) for k, v, p in raw]
    s = series_of(readings)
    t = t_steps * 1800.0
    got, ids = aggregate(s, t, window_s, "sum")
    want = brute_sum(readings, t, window_s)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9)
        assert len(ids) == len([1 for (ti, _v, p) in readings if ti <= t and ti - p >= t - window_s
                                and ti > t - window_s])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-40, 40, allow_nan=False), min_size=1, max_size=50), st.integers(1, 30))
def test_max_min_mean_latest_equal_brute_force(values: list[float], hours: int) -> None:
    readings = [(k * H, v) for k, v in enumerate(values)]
    s = Series.of([r[0] for r in readings], [r[1] for r in readings])
    t = (len(values) - 1) * H
    inside = brute_values(readings, t, hours * H)
    assert aggregate(s, t, hours * H, "max")[0] == max(inside)
    assert aggregate(s, t, hours * H, "min")[0] == min(inside)
    assert aggregate(s, t, hours * H, "mean")[0] == pytest.approx(float(np.mean(inside)))
    assert aggregate(s, t, hours * H, "latest")[0] == inside[-1]


def _gale(hysteresis_s: int) -> Any:
    return rule_from_row({"id": 9, "code": "g", "name": "大风", "name_en": "Gale", "hazard_kind": "gale",
                          "variable": "wind_speed", "aggregation": "max", "window_s": 3600, "op": ">=",
                          "thresholds": {"blue": 10.8, "yellow": 17.2}, "hysteresis_s": hysteresis_s})


def test_hysteresis_up_at_once_down_after_the_hold() -> None:
    rule = _gale(2 * 3600)
    winds = [5, 18, 18, 12, 12, 12, 5, 5, 5, 5]  # yellow at 1..2, blue-ish at 3..5, calm from 6
    s = {"wind_speed": Series.of([k * H for k in range(len(winds))], [float(w) for w in winds])}
    level = NONE
    seen = []
    for k in range(len(winds)):
        level = next_level(rule, s, k * H, level).level
        seen.append(level)
    # up at once (hour 1); down from yellow only once two hours passed below it (hour 4: readings 2..4 -> hour 2
    # still yellow; hour 5: readings 3..5 all blue); cleared once two hours passed calm (hour 8)
    assert seen == [NONE, 1, 1, 1, 1, 0, 0, 0, NONE, NONE]


def test_a_gap_in_the_readings_is_not_below() -> None:
    rule = _gale(2 * 3600)
    s = {"wind_speed": Series.of([10 * H], [5.0])}  # one calm reading, nothing before it
    assert next_level(rule, s, 10 * H, 1).level == 1


@pytest.mark.parametrize("change, field", [
    ({"variable": "humidity"}, "variable"), ({"aggregation": "median"}, "aggregation"),
    ({"op": "=="}, "op"), ({"thresholds": {"purple": 3}}, "thresholds"),
    ({"thresholds": {"blue": {"value": "lots"}}}, "thresholds.blue.value"),
    ({"area": "buffer"}, "buffer_m"), ({"window_s": 0}, "window_s"),
    ({"conditions": [{"variable": "wind_speed", "aggregation": "max", "thresholds": {"blue": 1}}]},
     "conditions[0].thresholds"),
])
def test_malformed_rules_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    row = {"id": 1, "code": "x", "name": "x", "name_en": "x", "hazard_kind": "gale", "variable": "wind_speed",
           "aggregation": "max", "window_s": 3600, "op": ">=", "thresholds": {"blue": 10.8, "yellow": 17.2}}
    with pytest.raises(ValueError, match=rf"warning rule {field}\b".replace("[", r"\[").replace("]", r"\]")):
        rule_from_row({**row, **change})
