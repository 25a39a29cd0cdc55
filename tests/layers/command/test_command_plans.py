"""Response plans: templates as data, activation with a controllable clock, overdue marking, level changes the
checklist follows, closing, and the past. Real PostGIS, rolled back after each test."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from layers.command import duty, plans
from layers.command.errors import ActivationStateError
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import ActivationAction, PlanAction, ResponsePlan
from tests.command_scene import add_hazard

pytestmark = pytest.mark.db

T0 = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)
DOC = json.loads(plans.TEMPLATES_PATH.read_text(encoding="utf-8"))


def _minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def _by_code(act: dict) -> dict[str, dict]:
    return {a["code"]: a for a in act["actions"]}


def test_the_shipped_templates_cover_the_drill_hazards_at_every_level() -> None:
    got = plans.read_templates()
    kinds = {"flood", "grassland_fire", "earthquake", "chemical_release", "blizzard"}
    assert {(p["hazard_kind"], p["level"]) for p in got} == {(k, lv) for k in kinds for lv in (1, 2, 3, 4)}
    for p in got:
        assert p["basis"].startswith("《国家") and p["report_minutes"] > 0
        assert all(a["text"]["zh-CN"] and a["text"]["en"] and a["unit"]["zh-CN"] for a in p["actions"])
        # a higher level reports at least as soon as a lower one
        lower = next(q for q in got if q["hazard_kind"] == p["hazard_kind"] and q["level"] == min(p["level"] + 1, 4))
        assert p["report_minutes"] <= lower["report_minutes"]


def test_a_bad_template_document_is_refused_naming_every_place() -> None:
    doc = copy.deepcopy(DOC)
    doc["plans"][0]["hazard_kind"] = "volcano"
    lv = doc["plans"][1]["levels"]["3"]
    lv["actions"][1]["code"] = lv["actions"][0]["code"]
    lv["actions"][2]["deadline_min"] = -5
    lv["report_minutes"] = 0
    doc["plans"][2]["levels"]["7"] = doc["plans"][2]["levels"]["4"]
    del doc["plans"][3]["levels"]["2"]["conditions"]["en"]
    with pytest.raises(ValidationError) as e:
        plans.read_templates(doc)
    fields = {p.field for p in e.value.problems}
    assert {"plans[0].hazard_kind", "plans[1].levels.3.actions[1].code", "plans[1].levels.3.actions[2].deadline_min",
            "plans[1].levels.3.report_minutes", "plans[2].levels.7", "plans[3].levels.2.conditions"} <= fields
    assert "nothing was loaded" in str(e.value)


def test_loading_is_idempotent_and_replaces_actions(session) -> None:
    first = plans.load_plans(session)
    again = plans.load_plans(session)
    assert first == again == {"plans": 20, "actions": sum(len(p["actions"]) for p in plans.read_templates())}
    assert session.execute(select(func.count()).select_from(ResponsePlan)).scalar_one() == 20
    assert session.execute(select(func.count()).select_from(PlanAction)).scalar_one() == first["actions"]
    with pytest.raises(NotFoundError, match="no response plan for drought"):
        plans.get_plan(session, "drought", 4)
    with pytest.raises(ValidationError, match="level"):
        plans.get_plan(session, "flood", 5)


def test_activation_with_a_controllable_clock_marks_overdue_actions(session) -> None:
    plans.load_plans(session)
    act = plans.activate(session, hazard_kind="flood", level=4, user="duty-li", now=T0)
    tpl = plans.get_plan(session, "flood", 4)
    assert act["roman"] == "Ⅳ" and act["status"] == "active" and act["activated_at"] == T0
    assert [(a["code"], a["deadline_at"]) for a in act["actions"]] == [
        (a["code"], T0 + _minutes(a["deadline_min"])) for a in tpl["actions"]]
    deadlines = sorted({a["deadline_min"] for a in tpl["actions"]})
    # at each moment, exactly the actions whose deadline has passed are overdue
    for minutes in (0, deadlines[0] - 1, deadlines[0] + 1, deadlines[-1] + 1):
        now = T0 + _minutes(minutes)
        view = plans.get_activation(session, act["id"], now=now)
        assert {a["code"] for a in view["actions"] if a["overdue"]} == {
            a["code"] for a in tpl["actions"] if a["deadline_min"] < minutes}
        assert [x["code"] for x in plans.overdue_actions(session, now=now)] == [
            a["code"] for a in sorted((a for a in tpl["actions"] if a["deadline_min"] < minutes),
                                      key=lambda a: (a["deadline_min"], a["seq"]))]
    # a checked action is no longer overdue, and says who did it when, and that it was late
    first = _by_code(act)["duty"]
    late = T0 + _minutes(45)
    after = plans.check_action(session, first["id"], user="duty-wang", note="已加密监测", now=late)
    done = _by_code(after)["duty"]
    assert (done["status"], done["done_by"], done["done_at"], done["note"], done["overdue"]) == (
        "done", "duty-wang", late, "已加密监测", False)
    line = duty.entries(session, kinds=["action"])[0]
    assert line["code"] == "action.done_late" and line["params"]["late_min"] == 15
    with pytest.raises(ActivationStateError, match="already done by duty-wang"):
        plans.check_action(session, first["id"], user="x")


def test_overdue_actions_come_most_overdue_first(session) -> None:
    plans.load_plans(session)
    act = plans.activate(session, hazard_kind="earthquake", level=3, user="d", now=T0)
    now = T0 + _minutes(500)
    got = plans.overdue_actions(session, now=now)
    assert [g["deadline_at"] for g in got] == sorted(g["deadline_at"] for g in got)
    assert {g["id"] for g in got} == {a["id"] for a in act["actions"]}
    assert all(g["hazard_kind"] == "earthquake" and g["activation_level"] == 3 for g in got)


def test_the_checklist_follows_a_level_change(session) -> None:
    plans.load_plans(session)
    act = plans.activate(session, hazard_kind="flood", level=4, user="d", now=T0)
    four = _by_code(act)
    plans.check_action(session, four["consult"]["id"], user="d", now=T0 + _minutes(20))
    raised_at = T0 + _minutes(60)
    up = plans.change_level(session, act["id"], 3, user="lead", note="水位继续上涨", now=raised_at)
    three, tpl3 = _by_code(up), {a["code"]: a for a in plans.get_plan(session, "flood", 3)["actions"]}
    assert up["level"] == 3 and up["roman"] == "Ⅲ" and up["level_changed_at"] == raised_at
    assert three["consult"]["status"] == "done" and three["consult"]["id"] == four["consult"]["id"]
    for code in ("duty", "workgroup", "forces", "report", "publish"):  # open before and after: the earlier deadline
        assert three[code]["id"] == four[code]["id"]
        assert three[code]["deadline_at"] == min(four[code]["deadline_at"], raised_at + _minutes(tpl3[code]["deadline_min"]))
        assert three[code]["text"]["zh-CN"] == tpl3[code]["text"]["zh-CN"] and three[code]["level"] == 3
    assert three["evacuate"]["deadline_at"] == raised_at + _minutes(tpl3["evacuate"]["deadline_min"])
    assert [a["code"] for a in up["actions"] if a["status"] != "dropped"] == [
        a["code"] for a in sorted(tpl3.values(), key=lambda a: a["seq"])]
    # back to Ⅳ: "evacuate" (not in Ⅳ) is dropped, kept on the list; the dropped line counts in the duty log
    down = plans.change_level(session, act["id"], 4, user="lead", now=raised_at + _minutes(120))
    d4 = _by_code(down)
    assert d4["evacuate"]["status"] == "dropped" and not d4["evacuate"]["overdue"]
    assert down["actions"][-1]["code"] == "evacuate"  # dropped ones last
    codes = [e["code"] for e in duty.entries(session, kinds=["plan"], newest_first=False)]
    assert codes == ["plan.activated", "plan.raised", "plan.lowered"]
    assert duty.entries(session, kinds=["plan"])[0]["params"]["dropped"] == 1
    with pytest.raises(ActivationStateError, match="already at level Ⅳ"):
        plans.change_level(session, act["id"], 4, user="lead")
    assert session.execute(select(func.count()).select_from(ActivationAction)).scalar_one() == len(d4)


def test_close_ends_the_response_and_its_overdue_marks(session) -> None:
    plans.load_plans(session)
    act = plans.activate(session, hazard_kind="blizzard", level=2, user="d", now=T0)
    late = T0 + _minutes(10_000)
    assert plans.get_activation(session, act["id"], now=late)["overdue"] == len(act["actions"])
    closed = plans.close(session, act["id"], user="lead", now=T0 + _minutes(30))
    assert (closed["status"], closed["closed_by"]) == ("closed", "lead")
    assert plans.get_activation(session, act["id"], now=late)["overdue"] == 0
    assert plans.overdue_actions(session, now=late) == []
    assert plans.activations(session, now=late) == []
    with pytest.raises(ActivationStateError, match="was closed"):
        plans.close(session, act["id"], user="lead")
    with pytest.raises(ActivationStateError):
        plans.check_action(session, act["actions"][0]["id"], user="lead")
    # a new activation of that kind is allowed again once the old one is closed
    assert plans.activate(session, hazard_kind="blizzard", level=4, user="d", now=late)["level"] == 4


def test_one_response_per_kind_and_target_at_a_time(session) -> None:
    plans.load_plans(session)
    act = plans.activate(session, hazard_kind="flood", level=4, user="d", now=T0)
    with pytest.raises(ActivationStateError) as e:
        plans.activate(session, hazard_kind="flood", level=2, user="d2")
    assert e.value.context == {"activation_id": act["id"], "level": 4}
    hz = add_hazard(session, "MULTIPOLYGON(((111 40,112 40,112 41,111 41,111 40)))")
    other = plans.activate(session, hazard_kind="flood", level=3, hazard_id=hz, user="d", now=T0)
    assert other["hazard_id"] == hz  # a response for one hazard is a different target
    with pytest.raises(NotFoundError):
        plans.activate(session, hazard_kind="flood", level=3, hazard_id=10**12, user="d")


def test_activations_at_rebuild_the_past(session) -> None:
    plans.load_plans(session)

    def clock() -> datetime:
        return session.execute(select(func.clock_timestamp())).scalar_one()

    t_before = clock()
    act = plans.activate(session, hazard_kind="flood", level=4, user="d", now=T0)
    t_active = clock()
    plans.check_action(session, _by_code(act)["consult"]["id"], user="d", now=T0 + _minutes(5))
    plans.change_level(session, act["id"], 3, user="d", now=T0 + _minutes(10))
    t_raised = clock()
    plans.close(session, act["id"], user="d", now=T0 + _minutes(20))
    t_closed = clock()
    assert plans.activations_at(session, t_before) == []
    past = plans.activations_at(session, t_active)
    assert [(a["level"], a["done"]) for a in past] == [(4, 0)]
    assert [(a["level"], a["done"]) for a in plans.activations_at(session, t_raised)] == [(3, 1)]
    assert plans.activations_at(session, t_closed) == []
