"""Tasks (调度任务): a resource sent to an incident, a hazard or an impact zone, followed until the job is done.

Public: :data:`TRANSITIONS`, :data:`TERMINAL`, :data:`INCIDENT_NEEDS`, :class:`EtaParams`, :func:`allowed_next`, :func:`dispatch`,
:func:`transition`, :func:`get_task`, :func:`list_tasks`, :func:`active_task_of`, :func:`task_history`,
:func:`tasks_at`, :func:`states_at`, :func:`point_of`, :func:`status_counts`.

Rules
-----
* A task goes ``assigned -> en_route -> on_scene -> completed``, or to ``cancelled`` from any of the first three;
  :data:`TRANSITIONS` is the one table of allowed moves, every other move is refused with the allowed ones
  (:class:`~layers.command.errors.TransitionError`). Each move stamps ``<status>_at`` and ``<status>_by``.
* A resource holds at most one active task (assigned, en_route, on_scene). The database decides: the insert runs
  ``ON CONFLICT ... DO NOTHING`` on the partial unique index ``uq_tasks_active_resource``, so of two dispatchers
  racing for the same resource exactly one gets the task and the other a
  :class:`~layers.command.errors.ResourceBusyError` naming the task that won.
* Dispatching sets the resource ``deployed``; completing or cancelling sets it ``available`` again, in the same
  transaction and through an ordinary UPDATE of ``resources`` (the history triggers record it, ``sitroom_changes``
  announces it). The task's own changes are kept in ``feature_history`` (layer ``tasks``): :func:`task_history`,
  :func:`tasks_at`.
* The ETA is geodesic distance x detour factor / speed of the resource's kind (:func:`geoops.eta.travel_time_s`,
  parameters :class:`EtaParams` from the settings), stored with the parameters it used. A resource's position
  moves with its feed; :func:`list_tasks` gives the distance left and the ETA from where it is now. The target
  point of a hazard or zone is its point nearest the resource.

Every function takes a ``Session`` or ``Connection`` first and does not commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from geoops.eta import METHOD, travel_time_s
from geoops.geodesic import distance_m
from layers.command import duty
from layers.command.errors import ResourceBusyError, TransitionError
from layers.store.db import set_acting_user
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import (
    ACTIVE_TASK_STATUSES,
    TASK_STATUSES,
    FeatureHistory,
    Hazard,
    ImpactZone,
    Incident,
    Resource,
    Task,
)
from layers.store.settings import DEFAULT_ETA_DETOUR_BY_KIND, DEFAULT_ETA_SPEED_KMH, Settings

__all__ = ["TRANSITIONS", "TERMINAL", "INCIDENT_NEEDS", "EtaParams", "allowed_next", "dispatch", "transition", "get_task",
           "list_tasks", "active_task_of", "task_history", "tasks_at", "states_at", "point_of", "status_counts"]

Db = Session | Connection

#: status -> the statuses a task may move to from it (the one table of allowed moves)
TRANSITIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "assigned": ("en_route", "cancelled"),
    "en_route": ("on_scene", "cancelled"),
    "on_scene": ("completed", "cancelled"),
    "completed": (),
    "cancelled": (),
})
#: the resource kinds an incident of each kind usually wants, first choice first (a dispatcher may ask for others)
INCIDENT_NEEDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "fire": ("fire_engine", "rescue_team", "ambulance"),
    "flood": ("boat", "rescue_team", "medical_team", "supply_depot"),
    "collapse": ("rescue_team", "excavator", "ambulance"),
    "traffic": ("ambulance", "rescue_team", "fire_engine"),
    "chemical": ("fire_engine", "rescue_team", "medical_team"),
    "earthquake": ("rescue_team", "excavator", "medical_team", "helicopter"),
    "rescue": ("rescue_team", "helicopter", "ambulance"),
    "medical": ("ambulance", "medical_team"),
    "other": ("rescue_team",),
})
#: statuses that free the resource
TERMINAL: tuple[str, ...] = tuple(s for s in TASK_STATUSES if not TRANSITIONS[s])
_ACTIVE_SQL = "status IN (" + ",".join(f"'{s}'" for s in ACTIVE_TASK_STATUSES) + ")"
#: what a target is, per request field
TARGETS: Mapping[str, Any] = MappingProxyType({"incident_id": Incident, "hazard_id": Hazard, "zone_id": ImpactZone})


@dataclass(frozen=True)
class EtaParams:
    """How an ETA is estimated: geodesic distance x detour factor / speed of the resource's kind.

    >>> p = EtaParams()
    >>> p.for_kind("fire_engine"), p.for_kind("helicopter")
    ((45.0, 1.3), (180.0, 1.0))
    >>> round(p.eta_s("fire_engine", 30_000.0))
    3120
    """

    detour_factor: float = 1.3
    speed_kmh: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ETA_SPEED_KMH))
    detour_by_kind: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ETA_DETOUR_BY_KIND))

    @classmethod
    def from_settings(cls, s: Settings) -> EtaParams:
        """The parameters of a deployment (``SITROOM_ETA_*``)."""
        return cls(detour_factor=s.eta_detour_factor, speed_kmh=dict(s.eta_speed_kmh),
                   detour_by_kind=dict(s.eta_detour_by_kind))

    def for_kind(self, kind: str) -> tuple[float, float]:
        """``(speed_kmh, detour_factor)`` of a resource kind (an unknown kind travels as a rescue team)."""
        speed = self.speed_kmh.get(kind, self.speed_kmh.get("rescue_team", DEFAULT_ETA_SPEED_KMH["rescue_team"]))
        return float(speed), float(self.detour_by_kind.get(kind, self.detour_factor))

    def eta_s(self, kind: str, distance: float) -> float:
        """Seconds for a resource of ``kind`` to cover a geodesic ``distance`` (metres)."""
        speed, detour = self.for_kind(kind)
        return float(travel_time_s(distance, speed_kmh=speed, detour_factor=detour))

    def describe(self, kind: str) -> dict[str, Any]:
        """What an ETA of this kind rests on, shown with it: method, speed, detour factor."""
        speed, detour = self.for_kind(kind)
        return {"method": METHOD, "speed_kmh": speed, "detour_factor": detour}


def allowed_next(status: str) -> tuple[str, ...]:
    """The statuses a task in ``status`` may move to.

    >>> allowed_next("en_route"), allowed_next("completed")
    (('on_scene', 'cancelled'), ())
    """
    return TRANSITIONS.get(status, ())


def _check_id(value: Any, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError([RowError(None, field_name, value, "a positive integer id")])
    return int(value)


def _target_field(incident_id: Any, hazard_id: Any, zone_id: Any) -> tuple[str, int]:
    given = {k: v for k, v in (("incident_id", incident_id), ("hazard_id", hazard_id), ("zone_id", zone_id))
             if v is not None}
    if len(given) != 1:
        raise ValidationError([RowError(None, "incident_id", sorted(given) or None,
                                        "exactly one of incident_id, hazard_id, zone_id")])
    (name, value), = given.items()
    return name, _check_id(value, name)


# ------------------------------------------------------------------------------------------------ reading tasks

def _target_columns(r_geom: Any) -> tuple[Any, Any, Any]:
    """Target name, lon, lat of a task row's target (incident point; a hazard's or zone's point nearest the resource)."""
    i = Incident.__table__.alias("ti")
    h = Hazard.__table__.alias("th")
    z = ImpactZone.__table__.alias("tz")
    pt = func.coalesce(i.c.geom, func.ST_ClosestPoint(h.c.geom, r_geom), func.ST_ClosestPoint(z.c.geom, r_geom))
    return (i, h, z), func.coalesce(i.c.name, h.c.name, z.c.name), pt


def _task_select() -> Any:
    r = Resource.__table__.alias("r")
    (i, h, z), name, pt = _target_columns(r.c.geom)
    cols = [c for c in Task.__table__.c]
    return (select(*cols, r.c.name.label("resource_name"), r.c.kind.label("resource_kind"),
                   r.c.status.label("resource_status"), func.ST_X(r.c.geom).label("resource_lon"),
                   func.ST_Y(r.c.geom).label("resource_lat"), name.label("target_name"),
                   func.ST_X(pt).label("target_lon"), func.ST_Y(pt).label("target_lat"),
                   i.c.kind.label("incident_kind"), i.c.severity.label("incident_severity"))
            .select_from(Task.__table__.join(r, r.c.id == Task.resource_id)
                         .outerjoin(i, i.c.id == Task.incident_id).outerjoin(h, h.c.id == Task.hazard_id)
                         .outerjoin(z, z.c.id == Task.zone_id)))


def _views(rows: Sequence[Mapping[Any, Any]], eta: EtaParams | None) -> list[dict[str, Any]]:
    """Task rows with their target kind, allowed next statuses, and the distance and ETA left from where the
    resource is now (None once on scene or finished)."""
    out = [dict(r) for r in rows]
    if not out:
        return out
    lon1 = np.array([t["resource_lon"] for t in out], dtype=float)
    lat1 = np.array([t["resource_lat"] for t in out], dtype=float)
    lon2 = np.array([np.nan if t["target_lon"] is None else t["target_lon"] for t in out], dtype=float)
    lat2 = np.array([np.nan if t["target_lat"] is None else t["target_lat"] for t in out], dtype=float)
    ok = np.isfinite(lon2) & np.isfinite(lat2)
    left = np.full(len(out), np.nan)
    if ok.any():
        left[ok] = distance_m(lon1[ok], lat1[ok], lon2[ok], lat2[ok])
    for t, d in zip(out, left.tolist(), strict=True):
        t["target"] = next(k.removesuffix("_id") for k in TARGETS if t.get(k) is not None)
        t["target_id"] = t[f"{t['target']}_id"]
        t["allowed"] = list(allowed_next(t["status"]))
        moving = t["status"] in ("assigned", "en_route") and d == d
        t["distance_left_m"] = d if moving else (0.0 if t["status"] == "on_scene" else None)
        speed = t["eta_speed_kmh"] or (eta.for_kind(t["resource_kind"])[0] if eta else None)
        detour = t["eta_detour"] or (eta.for_kind(t["resource_kind"])[1] if eta else None)
        t["eta_left_s"] = (float(travel_time_s(d, speed_kmh=speed, detour_factor=detour))
                           if moving and speed and detour else (0.0 if t["status"] == "on_scene" else None))
        t["eta_method"] = METHOD
    return out


def get_task(db: Db, task_id: int, *, eta: EtaParams | None = None) -> dict[str, Any]:
    """One task with its resource, target, allowed next statuses, distance and ETA left.

    Raises
    ------
    NotFoundError
        No such task.
    """
    rows = db.execute(_task_select().where(Task.id == _check_id(task_id, "task_id"))).mappings().all()
    if not rows:
        raise NotFoundError(f"no task {task_id}")
    return _views(rows, eta)[0]


def list_tasks(db: Db, *, status: Sequence[str] | None = None, incident_id: int | None = None,
               resource_id: int | None = None, eta: EtaParams | None = None, limit: int = 500
               ) -> list[dict[str, Any]]:
    """Tasks (newest first), filtered by status, incident or resource; as :func:`get_task` each.

    Raises
    ------
    ValidationError
        An unknown status (field ``status``).
    """
    cond: list[Any] = []
    if status:
        bad = [s for s in status if s not in TASK_STATUSES]
        if bad:
            raise ValidationError([RowError(None, "status", bad[0], ", ".join(TASK_STATUSES))])
        cond.append(Task.status.in_(list(status)))
    if incident_id is not None:
        cond.append(Task.incident_id == _check_id(incident_id, "incident_id"))
    if resource_id is not None:
        cond.append(Task.resource_id == _check_id(resource_id, "resource_id"))
    stmt = _task_select().where(*cond).order_by(Task.assigned_at.desc(), Task.id.desc()).limit(
        max(1, min(int(limit), 5000)))
    return _views(db.execute(stmt).mappings().all(), eta)


def active_task_of(db: Db, resource_id: int) -> dict[str, Any] | None:
    """The active task holding a resource (id, status, assigned_at/by, target), or None."""
    row = db.execute(select(Task.id, Task.status, Task.assigned_at, Task.assigned_by, Task.incident_id,
                            Task.hazard_id, Task.zone_id)
                     .where(Task.resource_id == resource_id, text(_ACTIVE_SQL))).mappings().first()
    return dict(row) if row is not None else None


def status_counts(db: Db) -> dict[str, int]:
    """Tasks per status (every status present, zeros included)."""
    rows = db.execute(select(Task.status, func.count()).group_by(Task.status)).all()
    got = {str(s): int(n) for s, n in rows}
    return {s: got.get(s, 0) for s in TASK_STATUSES}


# ------------------------------------------------------------------------------------------------ dispatch

def _resource(db: Db, resource_id: int) -> Any:
    row = db.execute(select(Resource.id, Resource.name, Resource.kind, Resource.status, Resource.deleted_at,
                            func.ST_X(Resource.geom).label("lon"), func.ST_Y(Resource.geom).label("lat"))
                     .where(Resource.id == resource_id)).first()
    if row is None or row.deleted_at is not None:
        raise NotFoundError(f"no resource {resource_id}")
    return row


def _target(db: Db, field_name: str, target_id: int, resource_id: int) -> Any:
    model = TARGETS[field_name]
    r = select(Resource.geom).where(Resource.id == resource_id).scalar_subquery()
    pt = model.geom if model is Incident else func.ST_ClosestPoint(model.geom, r)
    status_col = model.status
    row = db.execute(select(model.id, model.name, model.kind, status_col.label("status"), model.deleted_at,
                            func.ST_X(pt).label("lon"), func.ST_Y(pt).label("lat"))
                     .where(model.id == target_id)).first()
    if row is None or row.deleted_at is not None:
        raise NotFoundError(f"no {field_name.removesuffix('_id').replace('_', ' ')} {target_id}")
    if model is Incident and row.status == "closed":
        raise ValidationError([RowError(None, field_name, target_id, "an incident that is not closed")])
    return row


def _busy(db: Db, resource: Any) -> ResourceBusyError:
    holder = active_task_of(db, int(resource.id))
    name = resource.name or f"#{resource.id}"
    if holder is None:
        return ResourceBusyError(f"resource {resource.id} ({name}) is {resource.status}, not available",
                                 value=int(resource.id), allowed="a resource that is available",
                                 context={"resource_id": int(resource.id), "resource_status": resource.status})
    return ResourceBusyError(
        f"resource {resource.id} ({name}) already has active task {holder['id']} ({holder['status']}, assigned "
        f"by {holder['assigned_by']} at {holder['assigned_at'].isoformat(timespec='seconds')})",
        value=int(resource.id), allowed=f"a resource without an active task; task {holder['id']} holds this one",
        context={"resource_id": int(resource.id), "task": {**holder, "assigned_at": holder["assigned_at"]}})


def _set_resource_status(db: Db, resource_id: int, status: str, *, user: str, only_if: str | None = None) -> None:
    """The resource's status through an ordinary UPDATE: the history triggers and the change push see it."""
    cond = [Resource.id == resource_id, Resource.deleted_at.is_(None), Resource.status != status]
    if only_if is not None:
        cond.append(Resource.status == only_if)
    db.execute(update(Resource).where(*cond).values(status=status, updated_by=user))


def dispatch(db: Db, *, resource_id: Any, incident_id: Any = None, hazard_id: Any = None, zone_id: Any = None,
             note: Any = None, user: str, eta: EtaParams | None = None, now: datetime | None = None
             ) -> dict[str, Any]:
    """Send a resource to an incident (or a hazard, or an impact zone): a new task, the resource ``deployed``, a
    line in the duty log, all in the caller's transaction.

    Parameters
    ----------
    resource_id : int
        An available resource.
    incident_id, hazard_id, zone_id : int
        Exactly one: the target.
    note : str, optional
        What to do (1..2000 characters).
    user : str
        Who dispatches (history, ``assigned_by``, the duty log).
    eta : EtaParams, optional
        How the ETA is estimated (default: the built-in speeds).
    now : datetime, optional
        The time of the dispatch (a controllable clock); default the database's.

    Returns
    -------
    dict
        The task as :func:`get_task` returns it, plus ``eta`` (method, speed, detour factor).

    Raises
    ------
    ValidationError
        Not exactly one target, bad ids, a closed incident, a bad note.
    NotFoundError
        No such resource or target (or deleted).
    ResourceBusyError
        The resource is not available; when another task holds it (also when two dispatchers race for it), the
        error names that task in ``context["task"]``.
    """
    rid = _check_id(resource_id, "resource_id")
    target_field, target_id = _target_field(incident_id, hazard_id, zone_id)
    text_note = duty.check_text(note, "note")
    params = eta or EtaParams()
    resource = _resource(db, rid)
    target = _target(db, target_field, target_id, rid)
    if resource.status != "available":
        raise _busy(db, resource)
    when = duty.db_now(db, now) if now is not None else None  # None: the database's time (one round trip less)
    dist = float(distance_m(resource.lon, resource.lat, target.lon, target.lat))
    speed, detour = params.for_kind(resource.kind)
    eta_s = params.eta_s(resource.kind, dist)
    set_acting_user(db, user)
    stmt = (pg_insert(Task).values(**{target_field: target_id}, resource_id=rid, status="assigned", note=text_note,
                                   distance_m=dist, eta_s=eta_s, eta_speed_kmh=speed, eta_detour=detour,
                                   assigned_at=func.now() if when is None else when, assigned_by=user,
                                   updated_by=user)
            .on_conflict_do_nothing(index_elements=["resource_id"], index_where=text(_ACTIVE_SQL))
            .returning(Task.id))
    task_id = db.execute(stmt).scalar_one_or_none()
    if task_id is None:  # another dispatcher's task holds the resource (committed before ours could insert)
        raise _busy(db, _resource(db, rid))
    _set_resource_status(db, rid, "deployed", user=user)
    incident = target_id if target_field == "incident_id" else None
    duty.record(db, kind="dispatch", code="dispatch", author=user, at=when, task_id=int(task_id), incident_id=incident,
                params={"task_id": int(task_id), "resource": resource.name or f"#{rid}", "resource_kind": resource.kind,
                        "target": target.name or f"#{target_id}", "target_type": target_field.removesuffix("_id"),
                        "distance_m": round(dist, 1), "eta_s": round(eta_s, 1), "note": text_note})
    return {**get_task(db, int(task_id), eta=params), "eta": params.describe(resource.kind)}


def transition(db: Db, task_id: Any, status: Any, *, user: str, note: Any = None, eta: EtaParams | None = None,
               now: datetime | None = None) -> dict[str, Any]:
    """Move a task to ``status`` (see :data:`TRANSITIONS`), with who and when; free the resource when the task is
    completed or cancelled; one line in the duty log (with ``note``).

    Raises
    ------
    NotFoundError
        No such task.
    ValidationError
        A status that is not a task status at all, a bad note.
    TransitionError
        A move the task's current status does not allow; ``allowed`` lists those it does (empty once finished).
    """
    tid = _check_id(task_id, "task_id")
    if status not in TASK_STATUSES:
        raise ValidationError([RowError(None, "status", status, ", ".join(TASK_STATUSES))])
    text_note = duty.check_text(note, "note")
    cur = db.execute(select(Task.id, Task.status, Task.resource_id, Task.incident_id).where(Task.id == tid)
                     .with_for_update()).first()
    if cur is None:
        raise NotFoundError(f"no task {tid}")
    allowed = allowed_next(cur.status)
    if status not in allowed:
        where_to = ", ".join(allowed) if allowed else "nothing: the task is finished"
        raise TransitionError(f"task {tid} is {cur.status}; it cannot go to {status} (allowed: {where_to})",
                              value=status, allowed=list(allowed), context={"task_id": tid, "from": cur.status})
    when = duty.db_now(db, now) if now is not None else None
    set_acting_user(db, user)
    db.execute(update(Task).where(Task.id == tid).values(
        {"status": status, f"{status}_at": func.now() if when is None else when, f"{status}_by": user,
         "updated_by": user}))
    if status in TERMINAL:
        _set_resource_status(db, int(cur.resource_id), "available", user=user, only_if="deployed")
    names = db.execute(select(Resource.name, Resource.kind).where(Resource.id == cur.resource_id)).one()
    duty.record(db, kind="task", code=f"task.{status}", author=user, at=when, task_id=tid, text=text_note,
                incident_id=cur.incident_id,
                params={"task_id": tid, "from": cur.status, "to": status, "resource": names.name or
                        f"#{cur.resource_id}", "resource_kind": names.kind})
    return get_task(db, tid, eta=eta)


# ------------------------------------------------------------------------------------------------ the past

H = FeatureHistory


def task_history(db: Db, task_id: int) -> list[dict[str, Any]]:
    """Every recorded state of one task, oldest first: ``history_id, op, changed_at, changed_by, status, task``
    (``task``: the full row after the change, times as ISO 8601 text)."""
    stmt = (select(H.id, H.op, H.changed_at, H.changed_by, H.row).where(H.layer == "tasks",
                                                                        H.feature_id == _check_id(task_id, "task_id"))
            .order_by(H.changed_at, H.id))
    return [{"history_id": int(r.id), "op": r.op, "changed_at": r.changed_at, "changed_by": r.changed_by,
             "status": r.row.get("status"), "task": r.row} for r in db.execute(stmt)]


def states_at(db: Db, layer: str, at: datetime, *, ids: Sequence[int] | None = None) -> dict[int, dict[str, Any]]:
    """The rows of ``layer`` (a command table or a feature layer) as they were at ``at``, from ``feature_history``:
    the last recorded state of each id with ``changed_at <= at`` (purged or soft-deleted ones left out)."""
    cond: list[Any] = [H.layer == layer, H.changed_at <= at]
    if ids is not None:
        cond.append(H.feature_id.in_([int(i) for i in ids]))
    stmt = (select(H.feature_id, H.op, H.row).where(*cond).ext(distinct_on(H.feature_id))
            .order_by(H.feature_id, H.changed_at.desc(), H.id.desc()))
    return {int(r.feature_id): r.row for r in db.execute(stmt)
            if r.op not in ("delete", "purge") and not r.row.get("deleted_at")}


def tasks_at(db: Db, at: datetime) -> list[dict[str, Any]]:
    """Every task as it was at ``at`` (rows of :func:`task_history`), oldest first."""
    return sorted(states_at(db, "tasks", at).values(), key=lambda t: int(t["id"]))


def point_of(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """(lon, lat) of a history row's point geometry (hex EWKB under ``geom``), None if it has none."""
    import shapely

    g = row.get("geom")
    if not g:
        return None
    geom = shapely.from_wkb(bytes.fromhex(g))
    if geom.is_empty:
        return None
    p = geom if geom.geom_type == "Point" else shapely.point_on_surface(geom)
    x, y = shapely.get_coordinates(p)[0]
    return float(x), float(y)
