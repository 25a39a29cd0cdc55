"""The duty log: append-only in the database, filtered, with manual lines checked. Real PostGIS, rolled back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from layers.command import duty
from layers.store.errors import ValidationError
from layers.store.models import DutyLogEntry

pytestmark = pytest.mark.db

T0 = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)


def test_lines_cannot_be_changed_or_deleted(session) -> None:
    lid = duty.add_manual(session, "20:00 交接班", author="duty-li", at=T0)
    for stmt in (update(DutyLogEntry).where(DutyLogEntry.id == lid).values(text="改过"),
                 delete(DutyLogEntry).where(DutyLogEntry.id == lid)):
        with pytest.raises(DBAPIError, match="duty_log is append-only"), session.begin_nested():
            session.execute(stmt)
    assert [e["text"] for e in duty.entries(session)] == ["20:00 交接班"]


def test_filters_by_time_kind_author_text_and_incident(session) -> None:
    duty.add_manual(session, "夜班开始", author="duty-li", at=T0)
    duty.record(session, kind="dispatch", code="dispatch", author="disp-wang", at=T0 + timedelta(minutes=5),
                params={"resource": "青城救援一队", "target": "化工园区泄漏"}, incident_id=7)
    duty.record(session, kind="task", code="task.en_route", author="disp-wang", at=T0 + timedelta(minutes=9),
                params={"resource": "青城救援一队"}, text="沿G6前往")
    assert [e["kind"] for e in duty.entries(session)] == ["task", "dispatch", "manual"]
    assert [e["kind"] for e in duty.entries(session, newest_first=False)] == ["manual", "dispatch", "task"]
    assert [e["kind"] for e in duty.entries(session, since=T0 + timedelta(minutes=1))] == ["task", "dispatch"]
    assert [e["kind"] for e in duty.entries(session, until=T0 + timedelta(minutes=5))] == ["manual"]
    assert [e["kind"] for e in duty.entries(session, kinds=["manual", "task"])] == ["task", "manual"]
    assert [e["kind"] for e in duty.entries(session, author="duty-li")] == ["manual"]
    assert [e["kind"] for e in duty.entries(session, query="化工")] == ["dispatch"]  # in the params
    assert [e["kind"] for e in duty.entries(session, query="g6")] == ["task"]  # in the text, any case
    assert [e["kind"] for e in duty.entries(session, query="100%_")] == []  # wildcards are literal
    assert [e["kind"] for e in duty.entries(session, incident_id=7)] == ["dispatch"]
    with pytest.raises(ValidationError, match="kind"):
        duty.entries(session, kinds=["gossip"])
    with pytest.raises(ValidationError, match="until"):
        duty.entries(session, since=T0, until=T0)


@pytest.mark.parametrize(("text_value", "incident_id"), [("", None), ("   ", None), ("x" * 2001, None), (None, None),
                                                         (42, None), ("ok", "7"), ("ok", True)])
def test_manual_lines_are_checked(session, text_value, incident_id) -> None:
    with pytest.raises(ValidationError) as e:
        duty.add_manual(session, text_value, author="duty-li", incident_id=incident_id)
    assert e.value.problems[0].field in ("text", "incident_id")
    assert duty.entries(session) == []


def test_the_clock_is_the_databases_unless_given(session) -> None:
    now = session.execute(text("SELECT now()")).scalar_one()
    assert duty.db_now(session) == now and duty.db_now(session, T0) == T0
    with pytest.raises(ValidationError, match="now"):
        duty.db_now(session, datetime(2024, 7, 1, 8, 0))
