"""Automatic warnings: the rules evaluated on the stored series, and the hazards they raise, upgrade, bring down and
clear; a duty officer's confirmation and dismissal.

Public: :data:`SOURCE`, :data:`SYSTEM_USER`, :data:`STALE_INTERVALS`, :class:`StationInfo`, :class:`Change`,
:func:`load_rules`, :func:`station_info`, :func:`evaluate`, :func:`confirm`, :func:`dismiss`,
:func:`effective_level`, :func:`pending`, :func:`is_automatic`.

An automatic warning is a row of ``hazards`` with ``source = 'monitor'`` and ``properties.automatic = true``; its
``properties.monitor`` holds the rule, the station, the readings that triggered it (ids, times, values), the level
changes, a pending proposal and the confirmed revisions (which :mod:`layers.monitor.cap_out` publishes). One warning
is one **episode** of one rule at one station: from the first crossing until it clears. Its life:

* ``pending`` (待确认): raised by a crossing (:func:`evaluate`), level changes apply in place while nobody has
  confirmed it; when the readings fall below (for the rule's hysteresis) it is withdrawn (``cancelled``);
* ``active``: confirmed by a person (:func:`confirm`): a live warning. A later crossing of another level, or the
  readings falling below for the hysteresis, does not change it: it makes a **proposal** (upgrade, downgrade or
  clear) that waits for a person too; confirming applies it (``cancelled`` with ``valid_to`` for a clear);
* ``dismissed`` (已驳回, :func:`dismiss`): a person said no. It stays open (``valid_to`` empty) and silent until
  the readings reach a higher level (a new pending warning) or clear.

Every change goes through the history (``feature_history``) with who did it: ``monitor`` for the automatic ones,
the person's name for confirmations and dismissals. Evaluations take an advisory lock, so two concurrent ingests
never raise the same episode twice.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import shapely
from sqlalchemy import Connection, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from geoops.geodesic import circle
from layers.monitor.observations import fetch_rows
from layers.monitor.rules import (
    LEVELS,
    NONE,
    Rule,
    Series,
    Verdict,
    level_name,
    may_reach,
    next_level,
    rule_from_row,
    windows,
)
from layers.store.db import connection_of, set_acting_user
from layers.store.errors import ConflictError, NotFoundError
from layers.store.models import AdminRegion, Hazard, Station, WarningRule
from layers.store.vocab import label

__all__ = ["SOURCE", "SYSTEM_USER", "STALE_INTERVALS", "StationInfo", "Change", "load_rules", "station_info",
           "evaluate", "confirm", "dismiss", "effective_level", "pending", "is_automatic", "warning_name"]

#: ``source`` of the automatic warnings in ``hazards``
SOURCE: Final = "monitor"
#: who the history names for automatic changes
SYSTEM_USER: Final = "monitor"
#: a station with nothing newer than this many reporting intervals is stale: its warnings are left as they are
STALE_INTERVALS: Final = 3
#: readings linked to a warning at most (the newest of the deciding window)
MAX_LINKED: Final = 200
#: radius of the area of a county-area warning whose station lies in no stored county
FALLBACK_RADIUS_M: Final = 10_000.0
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('sitroom_monitor_evaluate'))"
_OPEN = ("pending", "active", "dismissed")


def load_rules(conn: Session | Connection, *, enabled_only: bool = True) -> list[Rule]:
    """The warning rules, checked (:func:`layers.monitor.rules.rule_from_row`), in id order."""
    stmt = select(WarningRule.__table__).order_by(WarningRule.id)
    if enabled_only:
        stmt = stmt.where(WarningRule.enabled.is_(True))
    return [rule_from_row(dict(r)) for r in connection_of(conn).execute(stmt).mappings()]


@dataclass(frozen=True)
class StationInfo:
    """What an evaluation needs of a station: identity, place, reporting interval, river stages, its county."""

    id: int
    code: str
    name: str
    kind: str
    interval_s: int
    lon: float
    lat: float
    stages: Mapping[str, float | None]
    county_adcode: str | None
    county_name: str | None
    county_name_en: str | None

    @property
    def place(self) -> str:
        return self.county_name or self.name

    @property
    def place_en(self) -> str:
        return self.county_name_en or self.place


def station_info(conn: Session | Connection, ids: Iterable[int]) -> dict[int, StationInfo]:
    """:class:`StationInfo` of the live stations ``ids``; the county is the station's ``adcode``, else the county
    that contains it."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    c = connection_of(conn)
    by_code = (select(AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en)
               .where(AdminRegion.adcode == Station.adcode, AdminRegion.deleted_at.is_(None)).lateral("by_code"))
    # a station without a county code: the county that contains it (GiST index on the regions)
    around = (select(AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en)
              .where(Station.adcode.is_(None), AdminRegion.level == "county", AdminRegion.deleted_at.is_(None),
                     func.ST_Contains(AdminRegion.geom, Station.geom))
              .order_by(AdminRegion.adcode).limit(1).lateral("around"))
    rows = c.execute(
        select(Station.id, Station.code, Station.name, Station.kind, Station.interval_s, func.ST_X(Station.geom),
               func.ST_Y(Station.geom), Station.warning_stage_m, Station.guarantee_stage_m, Station.record_stage_m,
               func.coalesce(by_code.c.adcode, around.c.adcode), func.coalesce(by_code.c.name, around.c.name),
               func.coalesce(by_code.c.name_en, around.c.name_en))
        .select_from(Station).outerjoin(by_code, text("true")).outerjoin(around, text("true"))
        .where(Station.id.in_(wanted), Station.deleted_at.is_(None))).all()
    return {int(r[0]): StationInfo(int(r[0]), str(r[1]), str(r[2] or r[1]), str(r[3]), int(r[4]), float(r[5]),
                                   float(r[6]), {"warning_stage_m": r[7], "guarantee_stage_m": r[8],
                                                 "record_stage_m": r[9]}, r[10], r[11], r[12])
            for r in rows}


@dataclass(frozen=True)
class Change:
    """One thing an evaluation, a confirmation or a dismissal did to a warning."""

    hazard_id: int
    action: str  # raised, changed, withdrawn, proposed, proposal_dropped, closed, confirmed, dismissed
    rule: str
    station: str
    level: str | None
    at: datetime


def is_automatic(properties: Mapping[str, Any] | None) -> bool:
    """Whether a hazard's properties mark it as an automatic warning."""
    return bool(properties and properties.get("automatic") and isinstance(properties.get("monitor"), Mapping))


def effective_level(status: str, warning_level: str, properties: Mapping[str, Any]) -> int:
    """The level the rules compare with: the proposal's (or the level) of a warning, a dismissed one's level.

    >>> effective_level("active", "orange", {"monitor": {"proposal": {"level": "red"}}})
    3
    >>> effective_level("active", "orange", {"monitor": {"proposal": {"level": None}}})
    -1
    """
    m = properties.get("monitor") or {}
    prop = m.get("proposal")
    if status == "active" and prop:
        lv = prop.get("level")
        return LEVELS.index(lv) if lv in LEVELS else NONE
    return LEVELS.index(warning_level)


def _iso(t: datetime | float) -> str:
    d = t if isinstance(t, datetime) else datetime.fromtimestamp(float(t), UTC)
    return d.astimezone(UTC).isoformat(timespec="seconds")


def warning_name(rule_name: str, place: str, level: str) -> str:
    """The zh-CN name (and CAP headline) of a warning: place, rule, colour.

    >>> warning_name("暴雨", "昆都仑区", "orange")
    '昆都仑区暴雨橙色预警'
    """
    return f"{place}{rule_name}{label('warning_level', level, 'zh-CN').split(' ')[0]}预警"


def warning_name_en(rule_name_en: str, place_en: str, level: str) -> str:
    """The English name of a warning.

    >>> warning_name_en("Rainstorm", "Kundulun", "orange")
    'Rainstorm orange warning, Kundulun'
    """
    return f"{rule_name_en} {level} warning, {place_en}"


def _trigger(v: Verdict, series: Mapping[str, Series]) -> dict[str, Any]:
    s = series.get(v.variable or "")
    linked: list[dict[str, Any]] = []
    if s is not None and v.observation_ids:
        pos = {int(i): k for k, i in enumerate(s.ids)}
        for oid in list(v.observation_ids)[-MAX_LINKED:]:
            k = pos.get(int(oid))
            if k is not None:
                linked.append({"id": int(oid), "observed_at": _iso(float(s.times[k])),
                               "value": float(s.values[k])})
    return {"variable": v.variable, "aggregation": v.aggregation,
            "value": None if v.value is None or math.isnan(v.value) else round(v.value, 3),
            "threshold": v.threshold, "window_s": v.window_s, "at": _iso(v.time),
            "observations": linked, "count": len(v.observation_ids)}


# --- evaluation -----------------------------------------------------------------------------------------------------


_SERIES_SQL = (
    "SELECT g.s, g.v, extract(epoch FROM o.observed_at)::float8, o.value, o.period_s, o.id "
    "FROM unnest(%(s)s::bigint[], %(v)s::text[], %(t0)s::float8[], %(t1)s::float8[]) AS g(s, v, t0, t1) "
    "CROSS JOIN LATERAL ("
    "  SELECT x.observed_at, x.value, x.period_s, x.id FROM observations x"
    "  WHERE x.station_id = g.s AND x.variable = g.v AND x.observed_at > to_timestamp(g.t0)"
    "    AND x.observed_at <= to_timestamp(g.t1) AND x.quality = 'good' ORDER BY x.observed_at) o")


def _fetch_series(c: Connection, wanted: Mapping[tuple[int, str], tuple[datetime, datetime]]) \
        -> dict[int, dict[str, Series]]:
    """Good readings of each (station, variable) in its ``(start, end]``: one index range scan per series (a join
    would hash the whole partition), rows as plain tuples."""
    if not wanted:
        return {}
    keys = list(wanted)
    rows = fetch_rows(c, _SERIES_SQL, {"s": [k[0] for k in keys], "v": [k[1] for k in keys],
                                       "t0": [wanted[k][0].timestamp() for k in keys],
                                       "t1": [wanted[k][1].timestamp() for k in keys]})
    out: dict[int, dict[str, Series]] = {}
    if not rows:
        return out
    # rows come series by series (one lateral scan each, in time order): cut the columns where the series changes
    cols = list(zip(*rows, strict=True))
    sid = np.asarray(cols[0], dtype=np.int64)
    var = np.asarray(cols[1], dtype=object)
    times = np.asarray(cols[2], dtype=np.float64)
    values = np.asarray(cols[3], dtype=np.float64)
    periods = np.array([np.nan if p is None else p for p in cols[4]], dtype=np.float64)
    ids = np.asarray(cols[5], dtype=np.int64)
    cut = np.flatnonzero((sid[1:] != sid[:-1]) | (var[1:] != var[:-1])) + 1
    for a, b in zip(np.concatenate(([0], cut)).tolist(), np.concatenate((cut, [len(sid)])).tolist(), strict=True):
        out.setdefault(int(sid[a]), {})[str(var[a])] = Series(times=times[a:b], values=values[a:b],
                                                              periods=periods[a:b], ids=ids[a:b])
    return out


_NEWEST_SQL = (
    "SELECT g.s, g.v, extract(epoch FROM x.observed_at)::float8 "
    "FROM unnest(%(s)s::bigint[], %(v)s::text[], %(t0)s::float8[]) AS g(s, v, t0) "
    "CROSS JOIN LATERAL ("
    "  SELECT o.observed_at FROM observations o WHERE o.station_id = g.s AND o.variable = g.v AND o.quality = 'good'"
    "    AND o.observed_at >= to_timestamp(g.t0) AND o.observed_at <= %(now)s ORDER BY o.observed_at DESC LIMIT 1) x")
_WINDOWS_SQL = (
    "SELECT g.i, a.* "
    "FROM unnest(%(s)s::bigint[], %(v)s::text[], %(t1)s::float8[], %(w)s::float8[]) WITH ORDINALITY AS g(s, v, t1, w, i) "
    "CROSS JOIN LATERAL ("
    "  SELECT sum(o.value) FILTER (WHERE extract(epoch FROM o.observed_at) - coalesce(o.period_s, 0)"
    "                                    >= g.t1 - g.w - 1e-6) AS sum,"
    "    max(o.value) AS max, min(o.value) AS min, avg(o.value) AS mean,"
    "    (array_agg(o.value ORDER BY o.observed_at DESC))[1] AS latest"
    "  FROM observations o WHERE o.station_id = g.s AND o.variable = g.v AND o.quality = 'good'"
    "    AND o.observed_at > to_timestamp(g.t1 - g.w) AND o.observed_at <= to_timestamp(g.t1)) a")
_AGGREGATES = ("sum", "max", "min", "mean", "latest")


def _screen(c: Connection, plan: Sequence[tuple[Rule, StationInfo]], now: datetime) \
        -> list[tuple[Rule, StationInfo]]:
    """The (rule, station) pairs without an open episode that may raise one at their evaluation time: the rest
    would reach no level (:func:`layers.monitor.rules.may_reach`, on aggregates the database computes over each
    window without sending the readings), so their series are never read. The evaluation time is, as in
    :func:`evaluate`, the newest good reading of the rule's triggers at or before ``now``; a stale station is left
    out, as there."""
    if not plan:
        return []
    stale = {st.id: STALE_INTERVALS * st.interval_s for _, st in plan}
    keys = sorted({(st.id, v) for r, st in plan for v in r.triggers})
    newest: dict[tuple[int, str], float] = {
        (int(s_), str(v_)): float(t_) for s_, v_, t_ in fetch_rows(c, _NEWEST_SQL, {
            "s": [k[0] for k in keys], "v": [k[1] for k in keys],
            "t0": [now.timestamp() - stale[k[0]] for k in keys], "now": now})}
    timed: list[tuple[Rule, StationInfo, float]] = []
    for r, st in plan:
        times = [newest[(st.id, v)] for v in r.triggers if (st.id, v) in newest]
        if times:
            timed.append((r, st, max(times)))
    asked: dict[tuple[int, str, float, int], int] = {}
    for r, st, t_e in timed:
        for var, w in windows(r):
            asked.setdefault((st.id, var, t_e - abs(w) if w < 0 else t_e, abs(w)), len(asked) + 1)
    rows = fetch_rows(c, _WINDOWS_SQL, {"s": [k[0] for k in asked], "v": [k[1] for k in asked],
                                        "t1": [k[2] for k in asked], "w": [float(k[3]) for k in asked]}) \
        if asked else []
    by_index = {int(row[0]): dict(zip(_AGGREGATES, row[1:], strict=True)) for row in rows}
    out: list[tuple[Rule, StationInfo]] = []
    for r, st, t_e in timed:
        aggs = {(var, w): by_index[asked[(st.id, var, t_e - abs(w) if w < 0 else t_e, abs(w))]]
                for var, w in windows(r)}
        if may_reach(r, aggs, st.stages):
            out.append((r, st))
    return out


def _open_warnings(c: Connection, station_ids: Sequence[int]) -> dict[tuple[str, int], Any]:
    """The open episode of each (rule code, station id) among ``station_ids``: pending, active or dismissed with
    no ``valid_to``."""
    rows = c.execute(select(Hazard.id, Hazard.status, Hazard.warning_level, Hazard.properties, Hazard.name)
                     .where(Hazard.source == SOURCE, Hazard.deleted_at.is_(None), Hazard.valid_to.is_(None),
                            Hazard.status.in_(_OPEN),
                            Hazard.properties["monitor"]["station_id"].as_integer().in_(list(station_ids)))
                     .with_for_update()).all()
    out: dict[tuple[str, int], Any] = {}
    for r in rows:
        m = r.properties.get("monitor") or {}
        out[(str(m.get("rule")), int(m.get("station_id") or 0))] = r
    return out


def _area(c: Connection, rule: Rule, st: StationInfo) -> tuple[Any, str]:
    """The warning area: the station's county (as stored), or a geodesic circle; and which it is."""
    if rule.area == "county" and st.county_adcode is not None:
        g = c.execute(select(func.ST_Multi(AdminRegion.geom)).where(AdminRegion.adcode == st.county_adcode)).scalar()
        if g is not None:
            return g, "county"
    radius = rule.buffer_m if rule.area == "buffer" and rule.buffer_m else FALLBACK_RADIUS_M
    poly = shapely.MultiPolygon([circle(st.lon, st.lat, radius_m=radius, segments=96)])
    return func.ST_GeomFromEWKB(bindparam("wkb", shapely.to_wkb(shapely.set_srid(poly, 4326), include_srid=True),
                                          unique=True)), "buffer"


def _new_warning(c: Connection, rule: Rule, st: StationInfo, v: Verdict, series: Mapping[str, Series],
                 user: str) -> int:
    level = LEVELS[v.level]
    at = datetime.fromtimestamp(v.time, UTC)
    geom, area = _area(c, rule, st)
    props = {
        "automatic": True,
        "name_en": warning_name_en(rule.name_en, st.place_en, level),
        "monitor": {
            "rule": rule.code, "rule_id": rule.id, "rule_name": {"zh-CN": rule.name, "en": rule.name_en},
            "station": st.code, "station_id": st.id, "station_name": st.name,
            "adcode": st.county_adcode if area == "county" else None, "place": st.place, "place_en": st.place_en,
            "area": area, "buffer_m": rule.buffer_m if area == "buffer" else None,
            "trigger": _trigger(v, series), "levels": [{"at": _iso(at), "level": level, "by": user}],
            "proposal": None, "suppressed": None, "revisions": [],
        },
    }
    hid = c.execute(insert(Hazard).values(
        source=SOURCE, external_id=f"{rule.code}:{st.code}:{at.strftime('%Y%m%dT%H%M%SZ')}",
        name=warning_name(rule.name, st.place, level), kind=rule.hazard_kind, status="pending",
        warning_level=level, onset=at, valid_from=at, geom=geom, properties=props, updated_by=user)
        .returning(Hazard.id)).scalar_one()
    return int(hid)


def _save(c: Connection, hid: int, user: str, **values: Any) -> None:
    c.execute(update(Hazard).where(Hazard.id == hid).values(**values, updated_by=user))


def _step(c: Connection, rule: Rule, st: StationInfo, series: Mapping[str, Series], t_e: float, row: Any,
          user: str) -> list[Change]:
    """One rule at one station at reading time ``t_e``: what the open episode ``row`` (or None) becomes."""
    at = datetime.fromtimestamp(t_e, UTC)
    if row is None:
        v = next_level(rule, series, t_e, NONE, st.stages)
        if v.level == NONE:
            return []
        hid = _new_warning(c, rule, st, v, series, user)
        return [Change(hid, "raised", rule.code, st.code, LEVELS[v.level], at)]
    props = copy.deepcopy(dict(row.properties))
    m = props["monitor"]
    current = effective_level(row.status, row.warning_level, props)
    if row.status == "dismissed":
        dismissed = LEVELS.index(m.get("dismissed_level") or row.warning_level)
        v = next_level(rule, series, t_e, dismissed, st.stages)
        if v.level == dismissed:
            return []
        _save(c, row.id, user, valid_to=at)  # the dismissed episode ends
        out = [Change(int(row.id), "closed", rule.code, st.code, level_name(v.level), at)]
        if v.level > dismissed:
            hid = _new_warning(c, rule, st, v, series, user)
            out.append(Change(hid, "raised", rule.code, st.code, LEVELS[v.level], at))
        return out
    v = next_level(rule, series, t_e, current, st.stages)
    if row.status == "pending":
        if v.level == current:
            return []
        if v.level == NONE:
            m["withdrawn_at"] = _iso(at)
            _save(c, row.id, user, status="cancelled", valid_to=at, properties=props)
            return [Change(int(row.id), "withdrawn", rule.code, st.code, None, at)]
        level = LEVELS[v.level]
        m["levels"].append({"at": _iso(at), "level": level, "by": user})
        m["trigger"] = _trigger(v, series)
        props["name_en"] = warning_name_en(rule.name_en, m.get("place_en") or st.place_en, level)
        _save(c, row.id, user, warning_level=level, name=warning_name(rule.name, m.get("place") or st.place, level),
              properties=props)
        return [Change(int(row.id), "changed", rule.code, st.code, level, at)]
    # active: a confirmed warning changes only through a person; the rules propose
    confirmed = LEVELS.index(row.warning_level)
    if v.level == confirmed:
        if m.get("proposal") is None and m.get("suppressed") is None:
            return []
        dropped = m.get("proposal") is not None
        m["proposal"], m["suppressed"] = None, None
        _save(c, row.id, user, properties=props)
        return [Change(int(row.id), "proposal_dropped", rule.code, st.code, row.warning_level, at)] if dropped else []
    proposed = level_name(v.level)
    if v.level == current and m.get("proposal") is not None:
        return []
    if m.get("suppressed", None) is not None and m["suppressed"] == (proposed or "none"):
        return []
    action = "clear" if v.level == NONE else ("upgrade" if v.level > confirmed else "downgrade")
    m["proposal"] = {"action": action, "level": proposed, "since": _iso(at), "trigger": _trigger(v, series)}
    m["suppressed"] = None
    _save(c, row.id, user, properties=props)
    return [Change(int(row.id), "proposed", rule.code, st.code, proposed, at)]


def evaluate(conn: Session | Connection, touched: Mapping[tuple[int, str], datetime] | Iterable[int], *,
             now: datetime, user: str = SYSTEM_USER, rules: Sequence[Rule] | None = None) -> list[Change]:
    """Evaluate the rules at the stations that received readings, and raise, change or clear their warnings.

    Parameters
    ----------
    touched
        ``(station_id, variable) -> newest time`` of the series that received readings (what
        :func:`layers.monitor.observations.write` returns), or station ids (every rule of those stations).
    now
        The clock: each (rule, station) is evaluated at the station's newest good reading of the rule's variables
        at or before ``now``; a station whose newest reading is older than :data:`STALE_INTERVALS` intervals is
        stale and its warnings are left alone.
    user
        Who the history names (``monitor``).

    Returns
    -------
    list of Change
    """
    c = connection_of(conn)
    if isinstance(touched, Mapping):
        by_station: dict[int, set[str]] = {}
        for (sid, var) in touched:
            by_station.setdefault(int(sid), set()).add(str(var))
    else:
        by_station = {int(s): set() for s in touched}
    if not by_station:
        return []
    all_rules = list(rules) if rules is not None else load_rules(c)
    stations = station_info(c, by_station)
    plan: list[tuple[Rule, StationInfo]] = []
    for sid, variables in by_station.items():
        st = stations.get(sid)
        if st is None:
            continue
        for r in all_rules:
            if st.kind not in r.station_kinds or (variables and not variables & set(r.triggers)):
                continue
            plan.append((r, st))
    if not plan:
        return []
    set_acting_user(c, user)
    c.execute(text(_LOCK))
    open_rows = _open_warnings(c, sorted({st.id for _, st in plan}))
    plan = _screen(c, [(r, st) for r, st in plan if (r.code, st.id) not in open_rows], now) + [
        (r, st) for r, st in plan if (r.code, st.id) in open_rows]
    wanted: dict[tuple[int, str], tuple[datetime, datetime]] = {}
    for r, st in plan:
        start = now - timedelta(seconds=r.span_s + STALE_INTERVALS * st.interval_s)
        for var in r.variables:
            old = wanted.get((st.id, var))
            wanted[(st.id, var)] = (min(start, old[0]) if old else start, now)
    series = _fetch_series(c, wanted)
    changes: list[Change] = []
    for rule, st in plan:
        s = series.get(st.id, {})
        times = [float(s[v].times[-1]) for v in rule.triggers if v in s and len(s[v].times)]
        if not times:
            continue
        t_e = max(times)
        if t_e < now.timestamp() - STALE_INTERVALS * st.interval_s:
            continue
        changes.extend(_step(c, rule, st, s, t_e, open_rows.get((rule.code, st.id)), user))
    return changes


# --- people ---------------------------------------------------------------------------------------------------------


def _locked(c: Connection, hazard_id: int) -> Any:
    row = c.execute(select(Hazard.id, Hazard.status, Hazard.warning_level, Hazard.properties, Hazard.name,
                           Hazard.valid_to)
                    .where(Hazard.id == int(hazard_id), Hazard.deleted_at.is_(None)).with_for_update()).first()
    if row is None or row.properties is None or not is_automatic(row.properties):
        raise NotFoundError(f"no automatic warning {hazard_id}")
    return row


def _revision(m: dict[str, Any], *, msg_type: str, level: str, status: str, when: datetime, user: str,
              trigger: Mapping[str, Any] | None = None) -> None:
    """A confirmed state of the warning, as published (:mod:`layers.monitor.cap_out`): its level and status, when
    and by whom, and the reading that decided it (without the list of readings)."""
    revs = m.setdefault("revisions", [])
    t = trigger or {}
    revs.append({"rev": len(revs) + 1, "msg_type": msg_type, "sent": _iso(when), "level": level, "status": status,
                 "by": user, "trigger": {k: t.get(k) for k in ("variable", "aggregation", "value", "threshold", "window_s",
                                                     "at")}})


def confirm(conn: Session | Connection, hazard_id: int, *, user: str, now: datetime,
            note: str | None = None) -> Change:
    """A person confirms an automatic warning: a pending one becomes a live warning (``active``); a proposal on a
    live one is applied (new level, or cleared: ``cancelled`` with ``valid_to``). The history names ``user``.

    Raises
    ------
    NotFoundError
        no automatic warning with that id.
    ConflictError
        nothing awaits confirmation (already confirmed, dismissed, withdrawn or cleared).
    """
    c = connection_of(conn)
    row = _locked(c, hazard_id)
    props = copy.deepcopy(dict(row.properties))
    m = props["monitor"]
    set_acting_user(c, user)
    stamp = {"by": user, "at": _iso(now), **({"note": note} if note else {})}
    rule, station = str(m.get("rule")), str(m.get("station"))
    if row.status == "pending":
        m["confirmed"] = stamp
        _revision(m, msg_type="Alert", level=row.warning_level, status="active", when=now, user=user,
                  trigger=m.get("trigger"))
        _save(c, row.id, user, status="active", properties=props)
        return Change(int(row.id), "confirmed", rule, station, row.warning_level, now)
    prop = m.get("proposal")
    if row.status == "active" and prop:
        m.setdefault("applied", []).append({**stamp, "action": prop["action"], "level": prop.get("level")})
        m["proposal"], m["suppressed"] = None, None
        if prop.get("level") is None:
            m["cleared"] = stamp
            _revision(m, msg_type="Cancel", level=row.warning_level, status="cancelled", when=now, user=user,
                      trigger=prop.get("trigger"))
            _save(c, row.id, user, status="cancelled", valid_to=now, properties=props)
            return Change(int(row.id), "confirmed", rule, station, None, now)
        level = str(prop["level"])
        _revision(m, msg_type="Update", level=level, status="active", when=now, user=user,
                  trigger=prop.get("trigger"))
        props["name_en"] = warning_name_en(str(m["rule_name"]["en"]), str(m.get("place_en")), level)
        _save(c, row.id, user, warning_level=level, properties=props,
              name=warning_name(str(m["rule_name"]["zh-CN"]), str(m.get("place")), level))
        return Change(int(row.id), "confirmed", rule, station, level, now)
    raise ConflictError(f"warning {hazard_id} has nothing to confirm (status {row.status})")


def dismiss(conn: Session | Connection, hazard_id: int, *, user: str, now: datetime,
            note: str | None = None) -> Change:
    """A person dismisses an automatic warning: a pending one becomes ``dismissed`` (off every map, silent until
    the readings reach a higher level or clear); a proposal on a live warning is dropped (and not made again for
    the same level). The history names ``user``.

    Raises
    ------
    NotFoundError
        no automatic warning with that id.
    ConflictError
        nothing awaits a decision.
    """
    c = connection_of(conn)
    row = _locked(c, hazard_id)
    props = copy.deepcopy(dict(row.properties))
    m = props["monitor"]
    set_acting_user(c, user)
    stamp = {"by": user, "at": _iso(now), **({"note": note} if note else {})}
    rule, station = str(m.get("rule")), str(m.get("station"))
    if row.status == "pending":
        m["dismissed"] = stamp
        m["dismissed_level"] = row.warning_level
        _save(c, row.id, user, status="dismissed", properties=props)
        return Change(int(row.id), "dismissed", rule, station, row.warning_level, now)
    prop = m.get("proposal")
    if row.status == "active" and prop:
        m.setdefault("rejected", []).append({**stamp, "action": prop["action"], "level": prop.get("level")})
        m["proposal"] = None
        m["suppressed"] = prop.get("level") or "none"
        _save(c, row.id, user, properties=props)
        return Change(int(row.id), "dismissed", rule, station, row.warning_level, now)
    raise ConflictError(f"warning {hazard_id} has nothing to dismiss (status {row.status})")


def pending(conn: Session | Connection) -> list[dict[str, Any]]:
    """Automatic warnings awaiting a person: pending ones and live ones with a proposal, oldest first.

    Each: ``id, name, kind, status, warning_level, proposal (or None), rule, station, onset, since, trigger``.
    """
    c = connection_of(conn)
    rows = c.execute(select(Hazard.id, Hazard.name, Hazard.kind, Hazard.status, Hazard.warning_level, Hazard.onset,
                            Hazard.properties)
                     .where(Hazard.source == SOURCE, Hazard.deleted_at.is_(None), Hazard.valid_to.is_(None),
                            (Hazard.status == "pending")
                            | ((Hazard.status == "active")
                               & Hazard.properties["monitor"]["proposal"].isnot(None)
                               & (func.jsonb_typeof(Hazard.properties["monitor"]["proposal"]) == "object")))
                     .order_by(Hazard.onset, Hazard.id)).all()
    out = []
    for r in rows:
        m = r.properties.get("monitor") or {}
        prop = m.get("proposal") if r.status == "active" else None
        out.append({"id": int(r.id), "name": r.name, "name_en": r.properties.get("name_en"), "kind": r.kind,
                    "status": r.status, "warning_level": r.warning_level, "proposal": prop, "rule": m.get("rule"),
                    "rule_name": m.get("rule_name"), "station": m.get("station"), "onset": r.onset,
                    "since": (prop or {}).get("since") or (m.get("levels") or [{}])[-1].get("at"),
                    "trigger": (prop or {}).get("trigger") or m.get("trigger")})
    return out
