"""The command part of the drill (演练): plan templates, responses in force, tasks in every state, duty-log lines.

Public: :data:`DEMO_USER`, :func:`load_command_demo`.

Run after the drill's features are loaded (:func:`layers.reference.demo.load_demo`): it loads the plan templates,
puts the flood plan at level Ⅳ and the grassland-fire plan at level Ⅲ into force (hours ago, some actions checked,
one overdue), and dispatches the nearest available resource of the wanted kind to the most severe open incidents,
moving the tasks along a timeline (completed, on scene, en route, assigned). Safe to run again: a plan already in
force is left alone, and the tasks are made only while the drill has none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Double, bindparam, case, func, select
from sqlalchemy.orm import Session

from geoops.nearest import rank
from layers.command import duty, plans, tasks
from layers.command.errors import ActivationStateError, ResourceBusyError
from layers.store.models import ActivationAction, Hazard, Incident, Resource, Task

__all__ = ["DEMO_USER", "load_command_demo"]

#: the duty officer of the drill, as the history and the duty log name them
DEMO_USER = "demo-duty"
#: (hazard kind, level, drill hazard external id, activated minutes ago, action codes already checked)
RESPONSES = (
    ("flood", 4, "hazard-flood", 180, ("consult", "duty")),
    ("grassland_fire", 3, "hazard-grassland-fire", 150, ("consult", "forces", "isolation")),
)
#: minutes ago each task was dispatched, and the moves made since (minutes after dispatch)
TIMELINE: tuple[tuple[int, tuple[tuple[str, int], ...]], ...] = (
    (150, (("en_route", 3), ("on_scene", 40), ("completed", 110))),
    (120, (("en_route", 5), ("on_scene", 50), ("completed", 100))),
    (95, (("en_route", 4), ("on_scene", 55))),
    (70, (("en_route", 6), ("on_scene", 45))),
    (50, (("en_route", 5),)),
    (35, (("en_route", 4),)),
    (20, ()),
    (8, ()),
)


def _nearest_available(session: Session, lon: float, lat: float, kinds: tuple[str, ...]) -> int | None:
    """The available resource nearest (geodesic) to a point, of the first wanted kind that has one."""
    pt = func.ST_SetSRID(func.ST_MakePoint(bindparam("x", lon, type_=Double), bindparam("y", lat, type_=Double)),
                         4326)
    for kind in kinds:
        rows = session.execute(select(Resource.id, func.ST_X(Resource.geom), func.ST_Y(Resource.geom))
                               .where(Resource.kind == kind, Resource.status == "available",
                                      Resource.deleted_at.is_(None))
                               .order_by(Resource.geom.op("<->")(pt)).limit(12)).all()
        if rows:
            idx, _, _ = rank(lon, lat, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), k=1)
            return int(rows[int(idx[0])][0])
    return None


def _responses(session: Session, when: datetime) -> int:
    made = 0
    for kind, level, hazard_key, minutes_ago, done in RESPONSES:
        hid = session.execute(select(Hazard.id).where(Hazard.external_id == hazard_key, Hazard.source.like("drill-%"),
                                                      Hazard.deleted_at.is_(None))).scalar_one_or_none()
        start = when - timedelta(minutes=minutes_ago)
        try:
            act = plans.activate(session, hazard_kind=kind, level=level, hazard_id=hid, user=DEMO_USER, now=start,
                                 note="【演练】" if hid is None else None)
        except ActivationStateError:
            continue  # already in force
        made += 1
        ids = {a["code"]: a["id"] for a in act["actions"]}
        for i, code in enumerate(done):
            if code in ids:
                plans.check_action(session, ids[code], user=DEMO_USER, now=start + timedelta(minutes=10 + 12 * i))
    return made


def _tasks(session: Session, when: datetime, eta: tasks.EtaParams) -> int:
    if session.execute(select(Task.id).where(Task.assigned_by == DEMO_USER).limit(1)).first() is not None:
        return 0  # the drill's timeline is there already (another seed's drill was purged with its tasks)
    severity = case({"extraordinary": 0, "major": 1, "large": 2, "general": 3}, value=Incident.severity, else_=4)
    has_task = select(Task.id).where(Task.incident_id == Incident.id).exists()
    open_incidents = session.execute(
        select(Incident.id, Incident.kind, func.ST_X(Incident.geom), func.ST_Y(Incident.geom))
        .where(Incident.source.like("drill-%"), Incident.deleted_at.is_(None), Incident.status != "closed",
               ~has_task, Incident.occurred_at <= when - timedelta(minutes=TIMELINE[0][0]))
        .order_by(severity, Incident.occurred_at).limit(len(TIMELINE) * 3)).all()
    made = 0
    for (minutes_ago, moves), inc in zip(TIMELINE, open_incidents, strict=False):
        rid = _nearest_available(session, float(inc[2]), float(inc[3]),
                                 tasks.INCIDENT_NEEDS.get(inc[1], tasks.INCIDENT_NEEDS["other"]))
        if rid is None:
            continue
        start = when - timedelta(minutes=minutes_ago)
        try:
            task = tasks.dispatch(session, resource_id=rid, incident_id=int(inc[0]), user=DEMO_USER, eta=eta,
                                  now=start, note="【演练】")
        except ResourceBusyError:
            continue
        for status, after in moves:
            tasks.transition(session, task["id"], status, user=DEMO_USER, now=start + timedelta(minutes=after))
        made += 1
    return made


def load_command_demo(session: Session, *, now: datetime | None = None, eta: tasks.EtaParams | None = None,
                      echo: Callable[[str], Any] | None = None) -> dict[str, int]:
    """Plan templates, two responses in force and a timeline of tasks for the drill (module docstring).

    Returns
    -------
    dict
        ``plans``, ``actions`` (templates loaded), ``activations`` and ``tasks`` made now, ``overdue`` actions.
    """
    say = echo or (lambda _msg: None)
    loaded = plans.load_plans(session)
    when = duty.db_now(session, now)
    if not session.execute(select(func.count()).select_from(ActivationAction)).scalar_one():
        duty.add_manual(session, "【演练】交接班：白班值班员到岗，夜班无遗留事项", author=DEMO_USER,
                        at=when - timedelta(hours=4))
    n_act = _responses(session, when)
    n_tasks = _tasks(session, when, eta or tasks.EtaParams())
    overdue = len(plans.overdue_actions(session, now=when, limit=500))
    say(f"command demo: {loaded['plans']} plan templates, {n_act} responses put in force, {n_tasks} tasks "
        f"dispatched, {overdue} overdue plan actions")
    return {**loaded, "activations": n_act, "tasks": n_tasks, "overdue": overdue}
