"""Warning rules (预警规则) as data, and their evaluation on windows over a station's series. Pure: no database.

Public: :data:`LEVELS`, :data:`AGGREGATIONS`, :data:`OPS`, :class:`Threshold`, :class:`Criterion`, :class:`Rule`,
:class:`Series`, :class:`Verdict`, :func:`rule_from_row`, :func:`aggregate`, :func:`level_at`, :func:`next_level`,
:func:`level_name`, :func:`windows`, :func:`may_reach`.

A rule (a row of ``warning_rules``) says which level a station reaches at time ``t``:

* a **criterion** is ``aggregation`` of ``variable`` over a window ``(t - window_s, t]`` compared with ``op`` to a
  level's threshold. Each level may have its own window (暴雨: 50 mm in 12 h is blue, 50 mm in 3 h orange) and its
  threshold may be a station's own stage (洪水: the warning stage 警戒水位, plus an offset);
* a level is reached when the rule's primary criterion **or** one of its ``alternatives`` reaches it (大风: the mean
  wind or the gust), **and** every one of its ``conditions`` holds for that level (寒潮: the minimum temperature and
  the wind); the station's level is the highest level reached;
* aggregations: ``sum`` (accumulations whose whole period lies in the window: an hourly amount reported at 10:00
  counts in a window that starts at 09:00 or earlier), ``max``, ``min``, ``mean``, ``latest`` (the newest reading in
  the window) and ``min_drop`` (the lowest reading of the window before, minus the lowest of this window: how far the
  minimum temperature fell); a window without readings reaches nothing;
* **hysteresis** (:func:`next_level`): a warning rises at once, and comes down (to a lower level, or clears) only
  when no reading of the last ``hysteresis_s`` seconds reached its level.

Only readings of quality ``good`` are given to these functions: a flagged reading never counts.

>>> r = rule_from_row({"id": 1, "code": "rain", "name": "暴雨", "name_en": "Rainstorm", "hazard_kind": "flood",
...     "variable": "precipitation", "aggregation": "sum", "window_s": 10800, "op": ">=",
...     "thresholds": {"orange": {"value": 50}, "red": {"value": 100}}, "hysteresis_s": 3600})
>>> s = {"precipitation": Series.of([3600, 7200, 10800], [20.0, 20.0, 15.0], periods=[3600] * 3)}
>>> level_name(level_at(r, s, 10800).level), level_name(level_at(r, s, 7200).level)
('orange', None)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from layers.monitor.variables import VARIABLES

__all__ = ["LEVELS", "AGGREGATIONS", "OPS", "STATION_FIELDS", "Threshold", "Criterion", "Rule", "Series", "Verdict",
           "rule_from_row", "aggregate", "level_at", "next_level", "level_name", "NONE", "windows", "may_reach",
           "SCREEN_TOLERANCE"]

#: China's four warning levels, lowest first (blue IV ... red I); a level is its index here, NONE is -1
LEVELS: Final = ("blue", "yellow", "orange", "red")
NONE: Final = -1
AGGREGATIONS: Final = ("sum", "max", "min", "mean", "latest", "min_drop")
OPS: Final = (">=", ">", "<=", "<")
#: station columns a threshold may refer to (river stages, metres)
STATION_FIELDS: Final = ("warning_stage_m", "guarantee_stage_m", "record_stage_m")


def level_name(level: int) -> str | None:
    """``"blue"`` ... ``"red"`` for 0..3, None for :data:`NONE`.

    >>> level_name(2), level_name(NONE)
    ('orange', None)
    """
    return LEVELS[level] if 0 <= level < len(LEVELS) else None


@dataclass(frozen=True)
class Threshold:
    """One level's threshold: a ``value``, or a station's own ``station_field`` plus ``offset``; its window."""

    window_s: int
    value: float | None = None
    station_field: str | None = None
    offset: float = 0.0

    def resolve(self, stages: Mapping[str, float | None]) -> float | None:
        """The threshold for a station (None when it refers to a stage the station does not have)."""
        if self.station_field is None:
            return self.value
        base = stages.get(self.station_field)
        return None if base is None else float(base) + self.offset


@dataclass(frozen=True)
class Criterion:
    """``aggregation`` of ``variable`` over a window, compared with ``op`` to each level's threshold."""

    variable: str
    aggregation: str
    window_s: int
    op: str
    thresholds: Mapping[int, Threshold]

    @property
    def longest_s(self) -> int:
        """How far back the criterion looks (``min_drop`` compares two windows)."""
        w = max((th.window_s for th in self.thresholds.values()), default=self.window_s)
        return 2 * w if self.aggregation == "min_drop" else w


@dataclass(frozen=True)
class Rule:
    """A warning rule (see the module docstring); ``area`` is ``county`` or ``buffer`` (``buffer_m`` metres)."""

    id: int
    code: str
    name: str
    name_en: str
    hazard_kind: str
    primary: Criterion
    alternatives: tuple[Criterion, ...] = ()
    conditions: tuple[Criterion, ...] = ()
    area: str = "county"
    buffer_m: float | None = None
    hysteresis_s: int = 3600
    station_kinds: tuple[str, ...] = ("weather",)
    enabled: bool = True
    source: str = ""

    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable the rule reads, primary first."""
        out: list[str] = []
        for c in (self.primary, *self.alternatives, *self.conditions):
            if c.variable not in out:
                out.append(c.variable)
        return tuple(out)

    @property
    def triggers(self) -> tuple[str, ...]:
        """The variables whose readings are the rule's evaluation times (primary and alternatives)."""
        out: list[str] = []
        for c in (self.primary, *self.alternatives):
            if c.variable not in out:
                out.append(c.variable)
        return tuple(out)

    @property
    def span_s(self) -> int:
        """How far back before an evaluation time the rule needs readings (windows, then hysteresis)."""
        return max(c.longest_s for c in (self.primary, *self.alternatives, *self.conditions)) + self.hysteresis_s

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels the rule can reach (fog has no blue)."""
        return tuple(sorted(self.primary.thresholds))


# --- reading rules ------------------------------------------------------------------------------------------------


def _bad(field_: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"warning rule {field_}: got {value!r}; allowed: {allowed}")


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _criterion(spec: Mapping[str, Any], where: str, defaults: Mapping[str, Any]) -> Criterion:
    """One criterion; ``where`` prefixes the field names in errors ('' for the rule's own columns)."""
    if not isinstance(spec, Mapping):
        raise _bad(where, spec, "an object with variable, aggregation, window_s, op, thresholds")
    where = f"{where}." if where else ""
    variable = spec.get("variable", defaults.get("variable"))
    aggregation = spec.get("aggregation", defaults.get("aggregation"))
    window_s = spec.get("window_s", defaults.get("window_s"))
    op = spec.get("op", defaults.get("op", ">="))
    if variable not in VARIABLES:
        raise _bad(f"{where}variable", variable, "one of " + ", ".join(VARIABLES))
    if aggregation not in AGGREGATIONS:
        raise _bad(f"{where}aggregation", aggregation, "one of " + ", ".join(AGGREGATIONS))
    if not (isinstance(window_s, int) and not isinstance(window_s, bool) and 0 < window_s <= 30 * 86400):
        raise _bad(f"{where}window_s", window_s, "an integer number of seconds in 1..2592000")
    if op not in OPS:
        raise _bad(f"{where}op", op, "one of " + ", ".join(OPS))
    raw = spec.get("thresholds")
    if not isinstance(raw, Mapping) or not raw:
        raise _bad(f"{where}thresholds", raw, "an object level -> {value[, window_s]} for levels among "
                   + ", ".join(LEVELS))
    out: dict[int, Threshold] = {}
    for level, th in raw.items():
        if level not in LEVELS:
            raise _bad(f"{where}thresholds", level, "levels among " + ", ".join(LEVELS))
        if _number(th):
            th = {"value": th}
        if not isinstance(th, Mapping):
            raise _bad(f"{where}thresholds.{level}", th, "a number or {value, window_s} or {station, offset}")
        w = th.get("window_s", window_s)
        if not (isinstance(w, int) and not isinstance(w, bool) and 0 < w <= 30 * 86400):
            raise _bad(f"{where}thresholds.{level}.window_s", w, "an integer number of seconds in 1..2592000")
        if "station" in th:
            if th["station"] not in STATION_FIELDS:
                raise _bad(f"{where}thresholds.{level}.station", th["station"], "one of " + ", ".join(STATION_FIELDS))
            off = th.get("offset", 0.0)
            if not _number(off):
                raise _bad(f"{where}thresholds.{level}.offset", off, "a number (metres)")
            out[LEVELS.index(level)] = Threshold(window_s=w, station_field=th["station"], offset=float(off))
        else:
            if not _number(th.get("value")):
                raise _bad(f"{where}thresholds.{level}.value", th.get("value"),
                           f"a number in the unit of {variable} ({VARIABLES[variable].unit})")
            out[LEVELS.index(level)] = Threshold(window_s=w, value=float(th["value"]))
    return Criterion(variable=variable, aggregation=aggregation, window_s=window_s, op=op,
                     thresholds=dict(sorted(out.items())))


def rule_from_row(row: Mapping[str, Any]) -> Rule:
    """A :class:`Rule` from a ``warning_rules`` row (or a dict with its columns), checked.

    Raises
    ------
    ValueError
        naming the field, the value and what is allowed (an unknown variable, an aggregation, a level ...).
    """
    primary = _criterion({"variable": row.get("variable"), "aggregation": row.get("aggregation"),
                          "window_s": row.get("window_s"), "op": row.get("op", ">="),
                          "thresholds": row.get("thresholds")}, "", {})
    alternatives = tuple(_criterion(a, f"alternatives[{i}]", {"window_s": primary.window_s})
                         for i, a in enumerate(row.get("alternatives") or []))
    conditions = []
    for i, c in enumerate(row.get("conditions") or []):
        crit = _criterion(c, f"conditions[{i}]", {"window_s": primary.window_s})
        missing = set(primary.thresholds) - set(crit.thresholds)
        if missing:
            raise _bad(f"conditions[{i}].thresholds", sorted(LEVELS[m] for m in missing),
                       "a threshold for every level of the rule")
        conditions.append(crit)
    area = row.get("area", "county")
    if area not in ("county", "buffer"):
        raise _bad("area", area, "county or buffer")
    buffer_m = row.get("buffer_m")
    if area == "buffer" and not (_number(buffer_m) and 0 < float(buffer_m) <= 500_000):  # type: ignore[arg-type]
        raise _bad("buffer_m", buffer_m, "metres in (0, 500000] for a buffer area")
    hysteresis_s = row.get("hysteresis_s", 3600)
    if not (isinstance(hysteresis_s, int) and 0 <= hysteresis_s <= 7 * 86400):
        raise _bad("hysteresis_s", hysteresis_s, "an integer number of seconds in 0..604800")
    return Rule(id=int(row.get("id") or 0), code=str(row.get("code")), name=str(row.get("name")),
                name_en=str(row.get("name_en") or row.get("name")), hazard_kind=str(row.get("hazard_kind")),
                primary=primary, alternatives=alternatives, conditions=tuple(conditions), area=area,
                buffer_m=float(buffer_m) if buffer_m is not None else None, hysteresis_s=hysteresis_s,
                station_kinds=tuple(row.get("station_kinds") or ("weather",)),
                enabled=bool(row.get("enabled", True)), source=str(row.get("source") or ""))


# --- series and windows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """Good readings of one variable of one station, sorted by time: epoch seconds, values, accumulation periods
    (seconds; NaN when not an accumulation) and observation ids."""

    times: NDArray[np.float64]
    values: NDArray[np.float64]
    periods: NDArray[np.float64]
    ids: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @classmethod
    def of(cls, times: Sequence[float], values: Sequence[float], *, periods: Sequence[float] | None = None,
           ids: Sequence[int] | None = None) -> Series:
        """A series from plain lists (sorted here by time)."""
        t = np.asarray(times, dtype=np.float64)
        order = np.argsort(t, kind="stable")
        p = np.full(len(t), np.nan) if periods is None else np.asarray(periods, dtype=np.float64)
        i = np.arange(len(t), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        return cls(t[order], np.asarray(values, dtype=np.float64)[order], p[order], i[order])

    @classmethod
    def empty(cls) -> Series:
        return cls.of([], [])


def _window(s: Series, t: float, w: float) -> slice:
    lo = int(np.searchsorted(s.times, t - w, side="right"))
    hi = int(np.searchsorted(s.times, t, side="right"))
    return slice(lo, hi)


def aggregate(s: Series, t: float, window_s: float, aggregation: str) -> tuple[float, NDArray[np.int64]]:
    """``aggregation`` of the readings of ``s`` in ``(t - window_s, t]``, and the ids of the readings used.

    NaN when the window holds no reading (``min_drop``: when either of its two windows is empty). For ``sum``, a
    reading counts only when its whole period lies in the window (``observed_at - period_s >= t - window_s``).

    >>> s = Series.of([3600, 7200, 10800], [1.0, 2.0, 4.0], periods=[3600, 3600, 3600])
    >>> aggregate(s, 10800, 7200, "sum")[0], aggregate(s, 10800, 7200, "max")[0], aggregate(s, 10800, 10800, "sum")[0]
    (6.0, 4.0, 7.0)
    >>> aggregate(s, 3600, 3600, "min_drop")[0]
    nan
    """
    if aggregation == "min_drop":
        before, ids_b = aggregate(s, t - window_s, window_s, "min")
        now, ids_n = aggregate(s, t, window_s, "min")
        return before - now, np.concatenate((ids_b, ids_n))
    sl = _window(s, t, window_s)
    vals = s.values[sl]
    ids = s.ids[sl]
    if aggregation == "sum":
        starts = s.times[sl] - np.nan_to_num(s.periods[sl], nan=0.0)
        keep = starts >= t - window_s - 1e-6
        vals, ids = vals[keep], ids[keep]
    if len(vals) == 0:
        return float("nan"), ids
    if aggregation == "sum":
        return float(vals.sum()), ids
    if aggregation == "max":
        return float(vals.max()), ids
    if aggregation == "min":
        return float(vals.min()), ids
    if aggregation == "mean":
        return float(vals.mean()), ids
    if aggregation == "latest":
        return float(vals[-1]), ids[-1:]
    raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")


#: relative tolerance of a comparison with a threshold: twelve readings of 4.1666... mm sum to 49.99999999999999,
#: which is 50 mm (readings have a resolution of 0.1 mm at best)
REL_TOLERANCE: Final = 1e-9


def _compare(x: float, op: str, threshold: float) -> bool:
    """``x op threshold``, with sums that differ from the threshold by float rounding only taken as equal.

    >>> _compare(sum([50 / 12] * 12), ">=", 50.0), _compare(49.99, ">=", 50.0), _compare(500.0, "<", 500.0)
    (True, False, False)
    """
    if math.isnan(x):
        return False
    eps = REL_TOLERANCE * max(1.0, abs(threshold))
    if op == ">=":
        return x >= threshold - eps
    if op == ">":
        return x > threshold + eps
    if op == "<=":
        return x <= threshold + eps
    return x < threshold - eps


@dataclass(frozen=True)
class Verdict:
    """The level a rule reaches at ``time``, and what decided it (the criterion that reached it: its variable,
    aggregated value, threshold, window and the ids of its readings)."""

    level: int
    time: float
    variable: str | None = None
    aggregation: str | None = None
    value: float | None = None
    threshold: float | None = None
    window_s: int | None = None
    observation_ids: tuple[int, ...] = ()


_Memo = dict[tuple[str, str, int], tuple[float, NDArray[np.int64]]]
_EMPTY_IDS = np.empty(0, dtype=np.int64)


def _reaches(c: Criterion, level: int, series: Mapping[str, Series], t: float,
             stages: Mapping[str, float | None], memo: _Memo) -> tuple[bool, float, float | None, NDArray[np.int64]]:
    th = c.thresholds.get(level)
    if th is None:
        return False, float("nan"), None, _EMPTY_IDS
    limit = th.resolve(stages)
    if limit is None:
        return False, float("nan"), None, _EMPTY_IDS
    key = (c.variable, c.aggregation, th.window_s)  # levels and conditions often share a window
    got = memo.get(key)
    if got is None:
        s = series.get(c.variable)
        got = memo[key] = (float("nan"), _EMPTY_IDS) if s is None else aggregate(s, t, th.window_s, c.aggregation)
    x, ids = got
    return _compare(x, c.op, limit), x, limit, ids


def level_at(rule: Rule, series: Mapping[str, Series], t: float,
             stages: Mapping[str, float | None] | None = None) -> Verdict:
    """The highest level ``rule`` reaches at ``t`` (epoch seconds) on ``series`` (variable -> good readings).

    ``stages``: the station's river stages, for thresholds that refer to them.
    """
    st = stages or {}
    memo: _Memo = {}
    for level in sorted(rule.levels, reverse=True):
        if not all(_reaches(c, level, series, t, st, memo)[0] for c in rule.conditions):
            continue
        for c in (rule.primary, *rule.alternatives):
            ok, x, limit, ids = _reaches(c, level, series, t, st, memo)
            if ok:
                return Verdict(level=level, time=t, variable=c.variable, aggregation=c.aggregation, value=x,
                               threshold=limit,
                               window_s=c.thresholds[level].window_s,
                               observation_ids=tuple(int(i) for i in ids))
    return Verdict(level=NONE, time=t)


#: how much wider :func:`may_reach` compares than :func:`level_at`, relative to the threshold: a sum the database adds
#: up in another order than NumPy differs by far less (readings have 0.1 resolution, sums a few hundred terms), and
#: half of :data:`REL_TOLERANCE` still leaves a strict ``> 0`` false at exactly 0 (no rain in the last 2 hours)
SCREEN_TOLERANCE: Final = 0.5 * REL_TOLERANCE


def windows(rule: Rule) -> set[tuple[str, int]]:
    """The ``(variable, window_s)`` windows ending at the evaluation time whose aggregates :func:`level_at` reads
    (``min_drop``: its latest window; :func:`may_reach` also needs the window before it, ``(variable, -window_s)``).

    >>> r = rule_from_row({"code": "c", "name": "c", "hazard_kind": "cold_wave", "variable": "temperature",
    ...     "aggregation": "min_drop", "window_s": 86400, "op": ">=", "thresholds": {"red": 16}})
    >>> sorted(windows(r))
    [('temperature', -86400), ('temperature', 86400)]
    """
    out: set[tuple[str, int]] = set()
    for c in (rule.primary, *rule.alternatives, *rule.conditions):
        for th in c.thresholds.values():
            out.add((c.variable, th.window_s))
            if c.aggregation == "min_drop":
                out.add((c.variable, -th.window_s))
    return out


def _loose(x: float, op: str, threshold: float) -> bool:
    """:func:`_compare` widened by :data:`SCREEN_TOLERANCE`: True wherever it is, and wherever a value off by
    float rounding only would make it so.

    >>> _loose(50.0 - 4e-8, ">=", 50.0), _loose(50.0 + 3e-8, ">", 50.0), _loose(0.0, ">", 0.0), _loose(49.9, ">=", 50.0)
    (True, True, False, False)
    """
    if math.isnan(x):
        return False
    m = max(1.0, abs(threshold))
    eps, slack = REL_TOLERANCE * m, SCREEN_TOLERANCE * m
    if op == ">=":
        return x >= threshold - eps - slack
    if op == ">":
        return x > threshold + eps - slack
    if op == "<=":
        return x <= threshold + eps + slack
    return x < threshold - eps + slack


def may_reach(rule: Rule, aggregates: Mapping[tuple[str, int], Mapping[str, float | None]],
              stages: Mapping[str, float | None] | None = None) -> bool:
    """Whether ``rule`` may reach a level at an evaluation time, from aggregates computed elsewhere (the database,
    over the stored series): ``aggregates[(variable, window_s)]`` holds ``sum, max, min, mean, latest`` of the good
    readings in ``(t - window_s, t]`` (None or NaN when empty; ``sum`` with :func:`aggregate`'s rule on periods), and
    ``(variable, -window_s)`` the ``min`` of the window before (for ``min_drop``).

    ``level_at(...).level != NONE`` with every comparison widened (:func:`_loose`): never False where
    :func:`level_at` finds a level, since widening a comparison only adds levels. An evaluation reads the whole
    series only of the rules and stations for which this is True.

    >>> r = rule_from_row({"code": "gale", "name": "大风", "hazard_kind": "gale", "variable": "wind_speed",
    ...     "aggregation": "max", "window_s": 3600, "op": ">=", "thresholds": {"blue": 10.8, "red": 32.7}})
    >>> may_reach(r, {("wind_speed", 3600): {"max": 9.0}}), may_reach(r, {("wind_speed", 3600): {"max": 11.0}})
    (False, True)
    """
    st = stages or {}

    def value(c: Criterion, window_s: int) -> float:
        got = aggregates.get((c.variable, window_s)) or {}
        if c.aggregation == "min_drop":
            before = (aggregates.get((c.variable, -window_s)) or {}).get("min")
            now = got.get("min")
            return math.nan if before is None or now is None else float(before) - float(now)
        x = got.get(c.aggregation)
        return math.nan if x is None else float(x)

    def reaches(c: Criterion, level: int) -> bool:
        th = c.thresholds.get(level)
        limit = None if th is None else th.resolve(st)
        return th is not None and limit is not None and _loose(value(c, th.window_s), c.op, limit)

    return any(all(reaches(c, level) for c in rule.conditions)
               and any(reaches(c, level) for c in (rule.primary, *rule.alternatives)) for level in rule.levels)


def next_level(rule: Rule, series: Mapping[str, Series], t: float, current: int,
               stages: Mapping[str, float | None] | None = None) -> Verdict:
    """The level a warning at level ``current`` should have at ``t``: hysteresis applied.

    Up at once: when the level at ``t`` is above ``current``, it is the answer. Down only after ``hysteresis_s``
    below: when the level at ``t`` is lower, the answer is the highest level reached at any reading time in
    ``[t - hysteresis_s, t]`` (so ``current`` while any of them still reached it: with hourly readings and one
    hour of hysteresis, the first reading below keeps the warning and the second brings it down), and ``current``
    when the readings do not reach back that far (a gap in the data is not "below").
    """
    now = level_at(rule, series, t, stages)
    if now.level >= current:
        return now
    h = float(rule.hysteresis_s)
    times: list[float] = []
    earliest = math.inf
    for var in rule.triggers:
        s = series.get(var)
        if s is None or len(s.times) == 0:
            continue
        earliest = min(earliest, float(s.times[0]))
        lo = int(np.searchsorted(s.times, t - h, side="left"))
        hi = int(np.searchsorted(s.times, t, side="right"))
        times.extend(float(x) for x in s.times[lo:hi])
    if h > 0 and not earliest <= t - h:
        return Verdict(level=current, time=t)
    best = now
    for x in sorted(set(times)):
        if x >= t:
            continue
        v = level_at(rule, series, x, stages)
        if v.level > best.level:
            best = v
    if best.level >= current:
        return Verdict(level=current, time=t)
    # coming down to the highest level still reached: what reached it is what the warning now rests on
    return Verdict(level=best.level, time=t, variable=best.variable, aggregation=best.aggregation, value=best.value,
                   threshold=best.threshold, window_s=best.window_s, observation_ids=best.observation_ids)
