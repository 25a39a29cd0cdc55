"""Monitoring and early warning for the API and the pages: readings in, the monitoring picture, a station's series
with the rule thresholds, the rules in words, warnings confirmed or dismissed, the wall's counts.

Public: :data:`SERIES_HOURS`, :func:`ingest_json`, :func:`ingest_csv`, :func:`monitor_picture`,
:func:`station_series`, :func:`rules`, :func:`rules_in_words`, :func:`confirm_warning`, :func:`dismiss_warning`,
:func:`wall_counts`, :func:`warning_features`, :func:`awaiting`, :func:`station_code_of`.

Everything takes ``now`` (the request's clock, or a replay's instant): the same functions draw the live picture and
the picture at any past time (the warnings through :func:`layers.read.history.as_of`, the readings by their time).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from dashboards.i18n import t, vocab_label
from layers.monitor import anomalies, observations, warnings
from layers.monitor.ingest import IngestReport, ingest
from layers.monitor.ingest import ingest_csv as _ingest_csv
from layers.monitor.rules import LEVELS, Criterion, Rule, Series, aggregate
from layers.monitor.variables import VARIABLES
from layers.read import history
from layers.store.errors import NotFoundError
from layers.store.models import Hazard, Station

__all__ = ["SERIES_HOURS", "ingest_json", "ingest_csv", "monitor_picture", "station_series", "rules", "rules_in_words",
           "confirm_warning", "dismiss_warning", "wall_counts", "warning_features", "awaiting", "station_code_of"]

#: how far back a station's plot goes by default
SERIES_HOURS = 72
#: simplification of warning polygons sent to maps, degrees (about 500 m)
SIMPLIFY_DEG = 0.005
LEVEL_COLOURS = {"blue": "#1e88e5", "yellow": "#fdd835", "orange": "#fb8c00", "red": "#e53935"}

#: a rule's comparison -> its translation key (monitor.op.<key>)
_OP_KEYS: dict[str, str] = {">=": "ge", ">": "gt", "<=": "le", "<": "lt"}


def ingest_json(conn: Connection, body: Any, *, now: datetime) -> dict[str, Any]:
    """``POST /api/v1/observations`` with a JSON array: check, flag, store, evaluate (one transaction)."""
    return ingest(conn, observations.records_frame(body), now=now).as_dict()


def ingest_csv(conn: Connection, data: bytes, *, now: datetime, file: str = "request body") -> dict[str, Any]:
    """The same with CSV text (header ``station,variable,value,unit,observed_at,period_s``)."""
    report: IngestReport = _ingest_csv(conn, data, now=now, file=file)
    return report.as_dict()


# --- warnings --------------------------------------------------------------------------------------------------------


def _warning_rows(conn: Connection, *, open_only: bool = True) -> list[Any]:
    stmt = (select(Hazard.id, Hazard.name, Hazard.kind, Hazard.status, Hazard.warning_level, Hazard.onset,
                   Hazard.valid_to, Hazard.properties,
                   func.ST_AsGeoJSON(func.ST_SimplifyPreserveTopology(Hazard.geom, SIMPLIFY_DEG), 4).label("gj"))
            .where(Hazard.source == warnings.SOURCE, Hazard.deleted_at.is_(None)))
    if open_only:
        stmt = stmt.where(Hazard.valid_to.is_(None), Hazard.status.in_(("pending", "active")))
    return list(conn.execute(stmt.order_by(Hazard.onset, Hazard.id)))


def _warning(r: Any, lang: str) -> dict[str, Any]:
    m = r.properties.get("monitor") or {}
    prop = m.get("proposal") if r.status == "active" else None
    waits = r.status == "pending" or bool(prop)
    return {
        "id": int(r.id), "name": r.name if lang == "zh-CN" else (r.properties.get("name_en") or r.name),
        "kind": r.kind, "kind_label": vocab_label("hazard_kind", r.kind, lang), "status": r.status,
        "status_label": vocab_label("hazard_status", r.status, lang), "warning_level": r.warning_level,
        "level_label": vocab_label("warning_level", r.warning_level, lang), "onset": r.onset.isoformat(),
        "rule": m.get("rule"), "rule_name": (m.get("rule_name") or {}).get(lang), "station": m.get("station"),
        "station_name": m.get("station_name"), "proposal": prop, "awaiting": waits,
        "trigger": (prop or {}).get("trigger") or m.get("trigger"),
        "confirmed": m.get("confirmed"), "revisions": len(m.get("revisions") or []),
    }


def warning_features(conn: Connection, *, lang: str, at: datetime | None = None) -> dict[str, Any]:
    """Open automatic warnings (pending and live) as GeoJSON, simplified, oldest first; ``properties``: see
    :func:`monitor_picture`'s ``warnings``. With ``at``: as they were then."""
    if at is not None:
        with history.as_of(conn, at, layers=["hazards"]):
            rows = _warning_rows(conn)
    else:
        rows = _warning_rows(conn)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": int(r.id), "geometry": json.loads(r.gj), "properties": _warning(r, lang)}
        for r in rows]}


def awaiting(features: dict[str, Any]) -> list[dict[str, Any]]:
    """The warnings of :func:`warning_features` that wait for a person (pending, or a proposal on a live one), oldest
    first: the monitoring page's queue."""
    return [f["properties"] for f in features["features"] if f["properties"]["awaiting"]]


def confirm_warning(conn: Connection, hazard_id: int, *, user: str, now: datetime,
                    note: str | None = None) -> dict[str, Any]:
    """A person confirms a pending warning or a proposal on a live one (:func:`layers.monitor.warnings.confirm`)."""
    c = warnings.confirm(conn, hazard_id, user=user, now=now, note=note)
    return {"id": c.hazard_id, "action": c.action, "level": c.level, "by": user, "at": c.at.isoformat()}


def dismiss_warning(conn: Connection, hazard_id: int, *, user: str, now: datetime,
                    note: str | None = None) -> dict[str, Any]:
    """A person dismisses a pending warning or a proposal (:func:`layers.monitor.warnings.dismiss`)."""
    c = warnings.dismiss(conn, hazard_id, user=user, now=now, note=note)
    return {"id": c.hazard_id, "action": c.action, "level": c.level, "by": user, "at": c.at.isoformat()}


# --- the picture ---------------------------------------------------------------------------------------------------


def _state(s: dict[str, Any], open_levels: dict[str, str]) -> str:
    if s["status"] != "active":
        return "off"
    if s["stale"]:
        return "stale"
    if any(v["quality"] != "good" for v in s["latest"].values()):
        return "flagged"
    return open_levels.get(s["code"], "ok")


def monitor_picture(conn: Connection, *, now: datetime, lang: str, past: bool = False) -> dict[str, Any]:
    """Everything the monitoring page draws at ``now``: ``stations`` (with their latest readings and a state:
    ``ok``, a warning level, ``flagged``, ``stale`` or ``off``), ``warnings`` (open automatic warnings, GeoJSON),
    ``queue`` (those awaiting a person), ``stale`` and ``flagged`` (the anomalies), ``summary`` (the wall's counts).
    ``past``: ``now`` is a replay's instant (the warnings are rebuilt from the history)."""
    states = anomalies.station_states(conn, now=now)
    feats = warning_features(conn, lang=lang, at=now if past else None)
    rank = {lv: k for k, lv in enumerate(LEVELS)}
    open_levels: dict[str, str] = {}
    for f in feats["features"]:
        p = f["properties"]
        code, lv = p["station"], p["warning_level"]
        if code and (code not in open_levels or rank[lv] > rank[open_levels[code]]):
            open_levels[code] = lv
    stations = []
    for s in states:
        latest = {v: {"value": x["value"], "unit": x["unit"], "quality": x["quality"],
                      "observed_at": x["observed_at"].isoformat(),
                      "label": vocab_label("observation_variable", v, lang)} for v, x in s["latest"].items()}
        stations.append({**{k: s[k] for k in ("id", "code", "name", "kind", "status", "interval_s", "lon", "lat")},
                         "kind_label": vocab_label("station_kind", s["kind"], lang),
                         "last_at": s["last_at"].isoformat() if s["last_at"] else None, "stale": s["stale"],
                         "state": _state(s, open_levels), "latest": latest})
    flagged = [{**f, "observed_at": f["observed_at"].isoformat(),
                "label": vocab_label("observation_variable", f["variable"], lang),
                "quality_label": t(f"monitor.quality.{f['quality']}", lang)}
               for f in anomalies.flagged(conn, now=now)]
    stale = [{"code": s["code"], "name": s["name"], "last_at": s["last_at"].isoformat() if s["last_at"] else None}
             for s in states if s["stale"] and s["status"] == "active"]
    return {"time": now.isoformat(), "stations": stations, "warnings": feats,
            "queue": awaiting(feats),
            "stale": stale, "flagged": flagged, "summary": anomalies.summary(conn, now=now, states=states)}


def wall_counts(conn: Connection, *, now: datetime) -> dict[str, Any]:
    """The wall's monitoring tile: stations reporting n/N, anomalies k, warnings awaiting a person, live ones."""
    out = anomalies.summary(conn, now=now)
    rows = conn.execute(select(Hazard.status, Hazard.properties["monitor"]["proposal"]).where(
        Hazard.source == warnings.SOURCE, Hazard.deleted_at.is_(None), Hazard.valid_to.is_(None),
        Hazard.status.in_(("pending", "active")))).all()
    out["pending"] = sum(1 for st, prop in rows if st == "pending" or (st == "active" and prop))
    out["live"] = sum(1 for st, _ in rows if st == "active")
    return out


# --- a station's series ----------------------------------------------------------------------------------------------


def station_code_of(conn: Connection, code: str) -> int:
    """The id of the live station ``code``.

    Raises
    ------
    NotFoundError
        no such station.
    """
    sid = conn.execute(select(Station.id).where(Station.code == code, Station.deleted_at.is_(None))).scalar()
    if sid is None:
        raise NotFoundError(f"no station with code {code!r}")
    return int(sid)


def _criteria(rule: Rule) -> list[tuple[str, Criterion]]:
    return [("primary", rule.primary), *(("alternative", c) for c in rule.alternatives),
            *(("condition", c) for c in rule.conditions)]


def station_series(conn: Connection, code: str, *, now: datetime, lang: str, hours: int = SERIES_HOURS,
                   rules: Sequence[Rule] | None = None) -> dict[str, Any]:
    """A station's readings over the last ``hours`` and what the rules compare them with, for a plot.

    Returns ``{"station", "name", "kind", "variables": [{"variable", "label", "unit", "readings": {t, value,
    quality}, "lines": [{"name", "t", "value"}], "thresholds": [{"level", "value", "label"}]}]}``: ``lines`` are the
    windowed aggregates the rules use (a 3 h sum of precipitation ...), ``thresholds`` the levels they are compared
    with (the station's own stages for a river gauge).
    """
    sid = station_code_of(conn, code)
    st = warnings.station_info(conn, [sid])[sid]
    all_rules = list(rules) if rules is not None else warnings.load_rules(conn)
    mine = [r for r in all_rules if st.kind in r.station_kinds]
    start = now - timedelta(hours=hours)
    wanted = sorted({v for r in mine for v in r.variables} | set(VARIABLES))
    df = observations.series(conn, sid, wanted, start - timedelta(days=2), now)
    out: list[dict[str, Any]] = []
    for var in wanted:
        part = df[df["variable"] == var]
        if part.empty:
            continue
        shown = part[part["observed_at"] > start]
        good = part[part["quality"] == "good"]
        s = Series.of([x.timestamp() for x in good["observed_at"]], good["value"].tolist(),
                      periods=[float(p) if p == p and p is not None else math.nan for p in good["period_s"]])
        times = [x.timestamp() for x in shown["observed_at"]]
        lines: dict[tuple[str, int], dict[str, Any]] = {}
        thresholds: list[dict[str, Any]] = []
        for r in mine:
            for role, c in _criteria(r):
                if c.variable != var or c.aggregation == "min_drop":
                    continue
                for lv, th in c.thresholds.items():
                    limit = th.resolve(st.stages)
                    if limit is None:
                        continue
                    key = (c.aggregation, th.window_s)
                    if c.aggregation not in ("latest",) and key not in lines and not (
                            c.aggregation in ("max", "min") and th.window_s <= 3600):
                        lines[key] = {"name": t(f"monitor.agg.{c.aggregation}", lang, hours=f"{th.window_s / 3600:g}"),
                                      "t": [datetime.fromtimestamp(x, UTC).isoformat() for x in times],
                                      "value": [_num(aggregate(s, x, th.window_s, c.aggregation)[0]) for x in times]}
                    name = r.name if lang == "zh-CN" else r.name_en
                    window = t(f"monitor.agg.{c.aggregation}", lang, hours=f"{th.window_s / 3600:g}")
                    thresholds.append({"level": LEVELS[lv], "value": limit, "op": c.op, "rule": r.code,
                                       "role": role, "label": f"{name} {vocab_label('warning_level', LEVELS[lv], lang)}"
                                                              f" {c.op} {limit:g} ({window})"})
        out.append({"variable": var, "label": vocab_label("observation_variable", var, lang),
                    "unit": VARIABLES[var].unit,
                    "readings": {"t": [x.isoformat() for x in shown["observed_at"]],
                                 "value": [float(v) for v in shown["value"]], "quality": shown["quality"].tolist()},
                    "lines": list(lines.values()), "thresholds": thresholds})
    return {"station": st.code, "name": st.name, "kind": st.kind, "place": st.place, "stages": dict(st.stages),
            "variables": out}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 2)


# --- rules in words --------------------------------------------------------------------------------------------------


def _criterion_words(c: Criterion, level: int, lang: str) -> str | None:
    th = c.thresholds.get(level)
    if th is None:
        return None
    unit = VARIABLES[c.variable].unit
    what = vocab_label("observation_variable", c.variable, lang)
    what = what.lower() if lang == "en" else what  # inside a sentence
    if th.station_field is not None:
        value = t(f"monitor.stage.{th.station_field}", lang) + (f" {th.offset:+g} m" if th.offset else "")
    else:
        value = f"{th.value:g} {unit}"
    return t(f"monitor.words.{c.aggregation}", lang, what=what, hours=f"{th.window_s / 3600:g}",
             op=t(f"monitor.op.{_OP_KEYS[c.op]}", lang), value=value)


def rules(conn: Connection, *, lang: str) -> list[dict[str, Any]]:
    """Every warning rule (enabled or not) in words: :func:`rules_in_words` of the stored rules."""
    return rules_in_words(warnings.load_rules(conn, enabled_only=False), lang=lang)


def rules_in_words(rules: Sequence[Rule], *, lang: str) -> list[dict[str, Any]]:
    """Each rule as sentences, one per level: ``{code, name, kind, kind_label, area, hysteresis, source,
    levels: [{level, label, text}]}``."""
    out = []
    for r in rules:
        levels = []
        for lv in sorted(r.levels):
            main = [w for w in (_criterion_words(c, lv, lang) for c in (r.primary, *r.alternatives)) if w]
            also = [w for w in (_criterion_words(c, lv, lang) for c in r.conditions) if w]
            text = t("monitor.words.or", lang).join(main)
            if also:
                text += t("monitor.words.and", lang) + t("monitor.words.and", lang).join(also)
            levels.append({"level": LEVELS[lv], "label": vocab_label("warning_level", LEVELS[lv], lang),
                           "text": text})
        area = (t("monitor.area.county", lang) if r.area == "county"
                else t("monitor.area.buffer", lang, km=f"{(r.buffer_m or 0) / 1000:g}"))
        out.append({"code": r.code, "name": r.name if lang == "zh-CN" else r.name_en, "kind": r.hazard_kind,
                    "kind_label": vocab_label("hazard_kind", r.hazard_kind, lang), "area": area,
                    "stations": [vocab_label("station_kind", k, lang) for k in r.station_kinds],
                    "hysteresis": t("monitor.words.hysteresis", lang, hours=f"{r.hysteresis_s / 3600:g}"),
                    "enabled": r.enabled, "source": r.source, "levels": levels})
    return out
