"""The command part of the drill (:func:`layers.command.demo.load_command_demo`) on the demo database: two responses
in force with checked and overdue actions, tasks along the timeline whose resources follow them, the duty log, and a
second run that adds nothing. Runs in a transaction that is rolled back, so the shared demo database is unchanged."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from layers.command import duty, plans
from layers.command.demo import DEMO_USER, RESPONSES, TIMELINE, load_command_demo
from layers.command.tasks import EtaParams
from layers.store.models import ACTIVE_TASK_STATUSES, Incident, Resource, Task
from tests.dashboards.conftest import DEMO_NOW, DemoDB

pytestmark = pytest.mark.db


def _expected_statuses() -> Counter[str]:
    return Counter(moves[-1][0] if moves else "assigned" for _, moves in TIMELINE)


def test_the_command_demo_puts_responses_in_force_and_tasks_along_the_timeline(demo_db: DemoDB) -> None:
    with Session(demo_db.engine) as s:
        s.begin()
        try:
            s.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
            got = load_command_demo(s, now=DEMO_NOW, eta=EtaParams())
            assert got["activations"] == len(RESPONSES) and got["tasks"] == len(TIMELINE)

            # the responses: the levels of RESPONSES, their checked actions done by the drill's duty officer, and
            # overdue actions counted as overdue_actions counts them at the same clock
            acts = plans.activations(s, now=DEMO_NOW)
            assert sorted((a["hazard_kind"], a["level"]) for a in acts) == sorted((k, lv) for k, lv, *_ in RESPONSES)
            for kind, _level, _key, minutes_ago, done in RESPONSES:
                act = next(a for a in acts if a["hazard_kind"] == kind)
                assert act["activated_at"] == DEMO_NOW - timedelta(minutes=minutes_ago)
                checked = {a["code"] for a in act["actions"] if a["status"] == "done"}
                assert checked == set(done) and all(a["done_by"] == DEMO_USER for a in act["actions"]
                                                    if a["status"] == "done")
            overdue = plans.overdue_actions(s, now=DEMO_NOW, limit=500)
            assert got["overdue"] == len(overdue) == sum(a["overdue"] for a in acts) > 0
            assert all(a["deadline_at"] < DEMO_NOW for a in overdue)

            # the tasks: one per timeline entry, in the status its last move gives, on drill incidents
            rows = s.execute(select(Task.status, Task.resource_id, Task.incident_id, Task.assigned_by,
                                    Task.assigned_at)).all()
            assert Counter(r.status for r in rows) == _expected_statuses()
            assert {r.assigned_by for r in rows} == {DEMO_USER}
            assert sorted(r.assigned_at for r in rows) == sorted(DEMO_NOW - timedelta(minutes=m) for m, _ in TIMELINE)
            assert len({r.incident_id for r in rows}) == len(rows)
            sources = s.execute(select(Incident.source).where(Incident.id.in_([r.incident_id for r in rows]))
                                ).scalars().all()
            assert all(src.startswith("drill-") for src in sources)
            # each resource follows its task: deployed while the task is active, available once it is finished
            status_of = dict(s.execute(select(Resource.id, Resource.status)
                                       .where(Resource.id.in_([r.resource_id for r in rows]))).all())
            for r in rows:
                assert status_of[r.resource_id] == ("deployed" if r.status in ACTIVE_TASK_STATUSES else "available")

            # the duty log has a line for every dispatch and move, every activation and checked action
            log = duty.entries(s, limit=1000)
            kinds = Counter(e["kind"] for e in log)
            moves = sum(len(m) for _, m in TIMELINE)
            assert kinds["dispatch"] == len(TIMELINE) and kinds["task"] == moves
            assert kinds["plan"] == len(RESPONSES) and kinds["action"] == sum(len(d) for *_, d in RESPONSES)
            assert kinds["manual"] == 1

            # again: nothing new (a response in force is left alone, an incident with a task is skipped)
            again = load_command_demo(s, now=DEMO_NOW, eta=EtaParams())
            assert (again["activations"], again["tasks"]) == (0, 0)
            assert s.execute(select(func.count()).select_from(Task)).scalar_one() == len(TIMELINE)
        finally:
            s.rollback()
    with demo_db.engine.connect() as c:  # the shared demo database is as it was
        assert c.execute(select(func.count()).select_from(Task)).scalar_one() == 0
