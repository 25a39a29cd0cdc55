"""Command and dispatch (指挥调度): suggestions by ETA, dispatch and task moves, the incident queue and task board,
response plans in force, and the command part of the wall picture and of the situation report.

Public: :data:`INCIDENT_NEEDS`, :data:`QUEUE_LIMIT`, :func:`suggest`, :func:`dispatch`, :func:`move_task`,
:func:`incident_queue`, :func:`task_board`, :func:`activate_plan`, :func:`change_plan_level`, :func:`close_plan`,
:func:`check_plan_action`, :func:`banner_text`, :func:`wall_picture`, :func:`sitrep_section`.

Writes take an engine and run in one transaction of their own (:mod:`layers.command` does the work and writes the
duty-log line in the same transaction); reads take a connection. ETA parameters come in as
:class:`layers.command.tasks.EtaParams` (``EtaParams.from_settings(settings)`` in the adapters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, select

from dashboards.i18n import DEFAULT_LANGUAGE, t, vocab_label
from dashboards.services import duty_log
from geoops.eta import METHOD, travel_time_s
from layers.command import duty, plans, tasks
from layers.command.tasks import INCIDENT_NEEDS, EtaParams
from layers.read.analysis import nearest_resources
from layers.store import vocab
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import ACTIVE_TASK_STATUSES, TASK_STATUSES, Incident, Task

__all__ = ["INCIDENT_NEEDS", "QUEUE_LIMIT", "suggest", "dispatch", "move_task", "incident_queue", "task_board",
           "activate_plan", "change_plan_level", "close_plan", "check_plan_action", "banner_text", "wall_picture",
           "sitrep_section"]

QUEUE_LIMIT = 200
MAX_SUGGEST_K = 20
#: finished tasks the board still shows
BOARD_FINISHED = 30
WALL_DEPLOYED_LIMIT = 500
WALL_OVERDUE_LIMIT = 8
SITREP_LOG_LINES = 40
SEVERITY_RANK = {"extraordinary": 0, "major": 1, "large": 2, "general": 3}


def _incident(conn: Any, incident_id: int) -> dict[str, Any]:
    row = conn.execute(select(Incident.id, Incident.name, Incident.kind, Incident.severity, Incident.status,
                              Incident.occurred_at, Incident.deleted_at, func.ST_X(Incident.geom).label("lon"),
                              func.ST_Y(Incident.geom).label("lat")).where(Incident.id == incident_id)).mappings().first()
    if row is None or row["deleted_at"] is not None:
        raise NotFoundError(f"no incident {incident_id}")
    return {k: v for k, v in row.items() if k != "deleted_at"}


def suggest(conn: Any, incident_id: int, *, kinds: Sequence[str] | None = None, k: int = 3,
            eta: EtaParams | None = None) -> dict[str, Any]:
    """The available resources of the wanted kinds nearest an incident, ranked by ETA (ties by distance, then id).

    Within a kind the ETA grows with the distance, so the ``k`` nearest of each kind (true geodesic order,
    :func:`layers.read.analysis.nearest_resources`) hold the ``k`` fastest of it; they are merged across kinds
    by ETA. Every row says how its ETA was estimated (method, speed, detour factor).

    Parameters
    ----------
    incident_id : int
    kinds : list of str, optional
        Resource kinds wanted; default :data:`INCIDENT_NEEDS` of the incident's kind.
    k : int
        Candidates per kind, 1..20.
    eta : EtaParams, optional

    Returns
    -------
    dict
        ``incident`` (id, name, kind, severity, status, occurred_at, lon, lat), ``kinds``, ``k``, ``eta``
        (``method``, ``detour_factor``, ``speed_kmh`` per kind, ``detour_by_kind``), ``suggestions``: resources
        (``id, name, kind, status, quantity, unit, lon, lat, distance_m, bearing_deg, speed_kmh, detour_factor,
        eta_s, rank``) fastest first.

    Raises
    ------
    NotFoundError
        No such incident.
    ValidationError
        An unknown kind, ``k`` out of range.
    """
    params = eta or EtaParams()
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SUGGEST_K:
        raise ValidationError([RowError(None, "k", k, f"an integer in 1..{MAX_SUGGEST_K}")])
    inc = _incident(conn, int(incident_id))
    wanted = list(kinds) if kinds else list(INCIDENT_NEEDS.get(inc["kind"], INCIDENT_NEEDS["other"]))
    bad = [x for x in wanted if x not in vocab.keys("resource_kind")]
    if bad:
        raise ValidationError([RowError(None, "kind", bad[0], ", ".join(vocab.keys("resource_kind")))])
    rows: list[dict[str, Any]] = []
    for kind in dict.fromkeys(wanted):
        speed, detour = params.for_kind(kind)
        for r in nearest_resources(conn, inc["lon"], inc["lat"], k=k, kinds=[kind], status="available"):
            rows.append({**r, "speed_kmh": speed, "detour_factor": detour,
                         "eta_s": float(travel_time_s(r["distance_m"], speed_kmh=speed, detour_factor=detour))})
    rows.sort(key=lambda r: (r["eta_s"], r["distance_m"], r["id"]))
    for i, r in enumerate(rows):
        r["rank"] = i + 1
    return {"incident": inc, "kinds": list(dict.fromkeys(wanted)), "k": k, "suggestions": rows,
            "eta": {"method": METHOD, "detour_factor": params.detour_factor,
                    "detour_by_kind": dict(params.detour_by_kind),
                    "speed_kmh": {kind: params.for_kind(kind)[0] for kind in dict.fromkeys(wanted)}}}


def dispatch(engine: Engine, *, resource_id: Any, incident_id: Any = None, hazard_id: Any = None,
             zone_id: Any = None, note: Any = None, user: str, eta: EtaParams | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """:func:`layers.command.tasks.dispatch` in a transaction of its own (committed on return)."""
    with engine.begin() as conn:
        return tasks.dispatch(conn, resource_id=resource_id, incident_id=incident_id, hazard_id=hazard_id,
                              zone_id=zone_id, note=note, user=user, eta=eta, now=now)


def move_task(engine: Engine, task_id: Any, status: Any, *, user: str, note: Any = None,
              eta: EtaParams | None = None, now: datetime | None = None) -> dict[str, Any]:
    """:func:`layers.command.tasks.transition` in a transaction of its own."""
    with engine.begin() as conn:
        return tasks.transition(conn, task_id, status, user=user, note=note, eta=eta, now=now)


def activate_plan(engine: Engine, *, user: str, now: datetime | None = None, **kw: Any) -> dict[str, Any]:
    """:func:`layers.command.plans.activate` in a transaction of its own."""
    with engine.begin() as conn:
        return plans.activate(conn, user=user, now=now, **kw)


def change_plan_level(engine: Engine, activation_id: Any, level: Any, *, user: str, note: Any = None,
                      now: datetime | None = None) -> dict[str, Any]:
    """:func:`layers.command.plans.change_level` in a transaction of its own."""
    with engine.begin() as conn:
        return plans.change_level(conn, activation_id, level, user=user, note=note, now=now)


def close_plan(engine: Engine, activation_id: Any, *, user: str, note: Any = None, now: datetime | None = None
               ) -> dict[str, Any]:
    """:func:`layers.command.plans.close` in a transaction of its own."""
    with engine.begin() as conn:
        return plans.close(conn, activation_id, user=user, note=note, now=now)


def check_plan_action(engine: Engine, action_id: Any, *, user: str, note: Any = None, now: datetime | None = None
                      ) -> dict[str, Any]:
    """:func:`layers.command.plans.check_action` in a transaction of its own."""
    with engine.begin() as conn:
        return plans.check_action(conn, action_id, user=user, note=note, now=now)


# ------------------------------------------------------------------------------------------------ the desk

def incident_queue(conn: Any, *, now: datetime | None = None, limit: int = QUEUE_LIMIT) -> list[dict[str, Any]]:
    """Incidents that are not closed, for the duty officer: those without an active task first, then by severity
    (特别重大 first), then oldest first. Each: ``id, name, kind, severity, status, occurred_at, age_s, lon, lat,
    active_tasks, tasks``."""
    when = duty.db_now(conn, now)
    active = func.count(Task.id).filter(Task.status.in_(ACTIVE_TASK_STATUSES))
    sev = case(SEVERITY_RANK, value=Incident.severity, else_=4)
    stmt = (select(Incident.id, Incident.name, Incident.kind, Incident.severity, Incident.status,
                   Incident.occurred_at, func.ST_X(Incident.geom).label("lon"), func.ST_Y(Incident.geom).label("lat"),
                   active.label("active_tasks"), func.count(Task.id).label("tasks"))
            .outerjoin(Task, Task.incident_id == Incident.id)
            .where(Incident.deleted_at.is_(None), Incident.status != "closed")
            .group_by(Incident.id)
            .order_by((active > 0), sev, Incident.occurred_at, Incident.id).limit(max(1, min(int(limit), 2000))))
    out = []
    for r in conn.execute(stmt).mappings():
        row = dict(r)
        row["age_s"] = max(0.0, (when - row["occurred_at"]).total_seconds())
        out.append(row)
    return out


def task_board(conn: Any, *, eta: EtaParams | None = None) -> dict[str, Any]:
    """Tasks by status for the board: every active task, and the latest :data:`BOARD_FINISHED` finished ones.

    Returns
    -------
    dict
        ``columns`` (status -> tasks as :func:`layers.command.tasks.list_tasks` gives them) and ``counts``
        (tasks per status in the whole store).
    """
    active = tasks.list_tasks(conn, status=list(ACTIVE_TASK_STATUSES), eta=eta, limit=2000)
    done = tasks.list_tasks(conn, status=list(tasks.TERMINAL), eta=eta, limit=BOARD_FINISHED)
    columns: dict[str, list[dict[str, Any]]] = {s: [] for s in TASK_STATUSES}
    for task in active + done:
        columns[task["status"]].append(task)
    return {"columns": columns, "counts": tasks.status_counts(conn)}


# ------------------------------------------------------------------------------------------------ the wall

def banner_text(activation: Mapping[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """"自治区启动防汛Ⅳ级应急响应": who declared which response at which level, in ``lang``.

    >>> banner_text({"issuer": None, "response": {"zh-CN": "防汛", "en": "flood-control"}, "roman": "Ⅳ",
    ...              "hazard_kind": "flood"})
    '自治区启动防汛Ⅳ级应急响应'
    """
    response = (activation.get("response") or {}).get(lang) or vocab_label("hazard_kind", activation["hazard_kind"],
                                                                             lang)
    issuer = activation.get("issuer") or t("command.issuer", lang)
    return t("command.banner", lang, issuer=issuer, response=response, level=activation["roman"])


def _deployed_live(conn: Any) -> list[dict[str, Any]]:
    rows = tasks.list_tasks(conn, status=list(ACTIVE_TASK_STATUSES), limit=WALL_DEPLOYED_LIMIT)
    return [{"task_id": r["id"], "status": r["status"], "resource": r["resource_name"], "kind": r["resource_kind"],
             "lon": r["resource_lon"], "lat": r["resource_lat"], "target": r["target_name"],
             "target_lon": r["target_lon"], "target_lat": r["target_lat"]}
            for r in rows if r["target_lon"] is not None]


def _deployed_at(conn: Any, at: datetime, active: list[dict[str, Any]]) -> list[dict[str, Any]]:
    res = tasks.states_at(conn, "resources", at, ids=[int(x["resource_id"]) for x in active])
    targets: dict[str, dict[int, dict[str, Any]]] = {}
    for field, layer in (("incident_id", "incidents"), ("hazard_id", "hazards"), ("zone_id", "impact_zones")):
        wanted = [int(x[field]) for x in active if x.get(field) is not None]
        targets[field] = tasks.states_at(conn, layer, at, ids=wanted) if wanted else {}
    out = []
    for x in active[:WALL_DEPLOYED_LIMIT]:
        r = res.get(int(x["resource_id"]))
        field = next(f for f in ("incident_id", "hazard_id", "zone_id") if x.get(f) is not None)
        tg = targets[field].get(int(x[field]))
        p, q = (tasks.point_of(r) if r else None), (tasks.point_of(tg) if tg else None)
        if p is None or q is None:
            continue
        out.append({"task_id": int(x["id"]), "status": x["status"], "resource": r.get("name") if r else None,
                    "kind": r.get("kind") if r else None, "lon": p[0], "lat": p[1],
                    "target": tg.get("name") if tg else None, "target_lon": q[0], "target_lat": q[1]})
    return out


def _response_view(a: Mapping[str, Any], lang: str) -> dict[str, Any]:
    return {"activation_id": a["id"], "hazard_kind": a["hazard_kind"], "level": a["level"], "roman": a["roman"],
            "banner": banner_text(a, lang), "activated_at": a["activated_at"], "open": a["open"], "done": a["done"],
            "overdue": a["overdue"]}


def _overdue_view(x: Mapping[str, Any], now: datetime, lang: str) -> dict[str, Any]:
    return {"action_id": x["id"], "activation_id": x.get("activation_id"), "text": x["text"].get(lang),
            "unit": x["unit"].get(lang), "deadline_at": x["deadline_at"],
            "minutes_over": math.floor((now - x["deadline_at"]).total_seconds() / 60.0)}


def wall_picture(conn: Any, *, now: datetime, at: datetime | None = None, lang: str = DEFAULT_LANGUAGE
                 ) -> dict[str, Any]:
    """The command part of the wall picture: responses in force (with their banner text), tasks per status,
    overdue plan actions, and deployed resources with their target (for a line from one to the other).

    With ``at`` (replay) everything is as it was then, rebuilt from ``feature_history``.

    Returns
    -------
    dict
        ``responses`` (``activation_id, hazard_kind, level, roman, banner, activated_at, open, done, overdue``;
        highest level first), ``tasks`` (status -> count), ``overdue`` (``action_id, activation_id, text, unit,
        deadline_at, minutes_over``, most overdue first, at most :data:`WALL_OVERDUE_LIMIT`), ``overdue_total``,
        ``deployed`` (``task_id, status, resource, kind, lon, lat, target, target_lon, target_lat``).
    """
    if at is None:
        acts = plans.activations(conn, status="active", now=now)
        counts = tasks.status_counts(conn)
        deployed = _deployed_live(conn)
        overdue = plans.overdue_actions(conn, now=now, limit=WALL_OVERDUE_LIMIT)
        overdue_total = sum(a["overdue"] for a in acts)
        when = now
    else:
        when = at
        acts = plans.activations_at(conn, at)
        past = tasks.tasks_at(conn, at)
        counts = {s: sum(1 for x in past if x["status"] == s) for s in TASK_STATUSES}
        deployed = _deployed_at(conn, at, [x for x in past if x["status"] in ACTIVE_TASK_STATUSES])
        late = sorted((x for a in acts for x in a["actions"] if x["overdue"]), key=lambda x: x["deadline_at"])
        overdue = [{**x, "activation_id": a["id"]} for a in acts for x in a["actions"] if x["overdue"]]
        overdue = sorted(overdue, key=lambda x: x["deadline_at"])[:WALL_OVERDUE_LIMIT]
        overdue_total = len(late)
    return {"responses": [_response_view(a, lang) for a in sorted(acts, key=lambda a: (a["level"], a["id"]))],
            "tasks": counts, "overdue": [_overdue_view(x, when, lang) for x in overdue],
            "overdue_total": overdue_total, "deployed": deployed}


# ------------------------------------------------------------------------------------------------ the report

def sitrep_section(conn: Any, *, since: datetime, until: datetime, live: bool = True) -> dict[str, Any]:
    """The situation report's command section: responses in force at ``until``, tasks dispatched, completed and
    cancelled in ``(since, until]``, tasks per status at ``until``, and the duty log of the window quoted line by
    line in both languages (newest first, at most :data:`SITREP_LOG_LINES`; ``log_total`` counts them all).
    """
    if live:
        acts = plans.activations(conn, status="active", now=until)
        counts = tasks.status_counts(conn)
    else:
        acts = plans.activations_at(conn, until)
        past = tasks.tasks_at(conn, until)
        counts = {s: sum(1 for x in past if x["status"] == s) for s in TASK_STATUSES}
    window = and_(Task.assigned_at > since, Task.assigned_at <= until)
    dispatched = int(conn.execute(select(func.count()).select_from(Task).where(window)).scalar_one())
    finished = {s: int(conn.execute(select(func.count()).select_from(Task).where(
        getattr(Task, f"{s}_at") > since, getattr(Task, f"{s}_at") <= until)).scalar_one()) for s in tasks.TERMINAL}
    lines = duty.entries(conn, since=since + timedelta(microseconds=1), until=until + timedelta(microseconds=1),
                         limit=duty.MAX_ENTRIES)
    return {
        "since": since, "until": until,
        "responses": [{"activation_id": a["id"], "hazard_kind": a["hazard_kind"], "level": a["level"],
                       "roman": a["roman"], "activated_at": a["activated_at"], "open": a["open"], "done": a["done"],
                       "overdue": a["overdue"], "banner": {lang: banner_text(a, lang) for lang in ("zh-CN", "en")}}
                      for a in sorted(acts, key=lambda a: (a["level"], a["id"]))],
        "tasks": {"dispatched": dispatched, **finished, "by_status": counts},
        "log": [{**e, "line": {lang: duty_log.render(e, lang) for lang in ("zh-CN", "en")}}
                for e in lines[:SITREP_LOG_LINES]],
        "log_total": len(lines),
    }
