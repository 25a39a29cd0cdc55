"""Response plans (预案) as data, their activation (启动应急响应) and the checklist each activation carries.

Public: :data:`TEMPLATES_PATH`, :data:`ROMAN`, :func:`read_templates`, :func:`load_plans`, :func:`list_plans`,
:func:`get_plan`, :func:`activate`, :func:`change_level`, :func:`close`, :func:`check_action`,
:func:`activations`, :func:`get_activation`, :func:`overdue_actions`, :func:`activations_at`.

A template is one hazard kind at one response level (1 = Ⅰ级, the highest, .. 4 = Ⅳ级): its start conditions
(启动条件), its reporting deadline (信息报告时限) and an ordered list of actions (响应措施), each with a responsible
unit and a deadline in minutes after activation. Templates are data (``plans.json`` beside this module, or a
deployment's own file), loaded into ``response_plans`` / ``plan_actions`` by :func:`load_plans`.

Activating a plan copies its actions into a checklist (``activation_actions``) with absolute deadlines. A person
checks each action (who, when, note); an open action past its deadline is *overdue* (the time is passed in as
``now``: a controllable clock for tests and drills). Raising or lowering the level makes the checklist follow the
new level's template: actions are matched by ``code``; done ones stay done; open ones take the new level's text and
the earlier of the two deadlines; new ones are added with deadlines from the change; open ones the new level does
not have are ``dropped`` (kept, greyed). Closing the activation ends it (its open actions are no longer overdue).
Every step writes a duty-log line in the same transaction. At most one activation per hazard kind and target is
active at a time (a transaction-level advisory lock per hazard kind serialises activations).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.orm import Session

from layers.command import duty
from layers.command.errors import ActivationStateError
from layers.command.tasks import states_at
from layers.store import vocab
from layers.store.db import set_acting_user
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import (
    RESPONSE_LEVELS,
    ActivationAction,
    Hazard,
    Incident,
    PlanAction,
    PlanActivation,
    ResponsePlan,
)

__all__ = ["TEMPLATES_PATH", "ROMAN", "read_templates", "load_plans", "list_plans", "get_plan", "activate",
           "change_level", "close", "check_action", "activations", "get_activation", "overdue_actions",
           "activations_at"]

Db = Session | Connection
TEMPLATES_PATH = Path(__file__).resolve().parent / "plans.json"
#: response level -> its Roman numeral as written in Chinese documents (Ⅰ级 .. Ⅳ级)
ROMAN: Mapping[int, str] = {1: "Ⅰ", 2: "Ⅱ", 3: "Ⅲ", 4: "Ⅳ"}
LANGS = ("zh-CN", "en")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
A = ActivationAction


# ------------------------------------------------------------------------------------------------ templates

def _texts(obj: Any, where: str, problems: list[RowError]) -> dict[str, str]:
    if not isinstance(obj, Mapping) or any(not isinstance(obj.get(k), str) or not obj[k].strip() for k in LANGS):
        problems.append(RowError(None, where, obj, "an object with non-empty 'zh-CN' and 'en' texts"))
        return {k: "" for k in LANGS}
    return {k: obj[k].strip() for k in LANGS}


def read_templates(data: Any = None) -> list[dict[str, Any]]:
    """The templates of a plans document (default: ``plans.json`` beside this module), checked, one dict per
    (hazard kind, level): ``hazard_kind, level, name, response, basis, conditions, report_minutes, actions``.

    Raises
    ------
    ValidationError
        Every problem of the document, each naming where it is (``plans[2].levels.3.actions[1].deadline_min``).

    >>> t = read_templates()
    >>> sorted({p["hazard_kind"] for p in t}), len(t)
    (['blizzard', 'chemical_release', 'earthquake', 'flood', 'grassland_fire'], 20)
    """
    if data is None:
        data = json.loads(TEMPLATES_PATH.read_text(encoding="utf-8"))
    problems: list[RowError] = []
    plans = data.get("plans") if isinstance(data, Mapping) else None
    if not isinstance(plans, list) or not plans:
        raise ValidationError([RowError(None, "plans", type(plans).__name__, "a non-empty list of plans")])
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for i, p in enumerate(plans):
        at = f"plans[{i}]"
        if not isinstance(p, Mapping):
            problems.append(RowError(i, at, p, "an object"))
            continue
        kind = p.get("hazard_kind")
        if vocab.check("hazard_kind", kind):
            problems.append(RowError(i, f"{at}.hazard_kind", kind, ", ".join(vocab.keys("hazard_kind"))))
        name, response = _texts(p.get("name"), f"{at}.name", problems), _texts(p.get("response"), f"{at}.response",
                                                                                  problems)
        basis = p.get("basis")
        if not isinstance(basis, str) or not basis.strip():
            problems.append(RowError(i, f"{at}.basis", basis, "the national plan the template follows"))
        levels = p.get("levels")
        if not isinstance(levels, Mapping) or not levels:
            problems.append(RowError(i, f"{at}.levels", levels, "an object: level (1..4) -> its template"))
            continue
        for key, lv in levels.items():
            lat = f"{at}.levels.{key}"
            level = int(key) if str(key).isdigit() else None
            if level not in RESPONSE_LEVELS:
                problems.append(RowError(i, lat, key, "a response level 1..4"))
                continue
            if (str(kind), level) in seen:
                problems.append(RowError(i, lat, f"{kind} level {level}", "one template per hazard kind and level"))
            seen.add((str(kind), level))
            if not isinstance(lv, Mapping):
                problems.append(RowError(i, lat, lv, "an object"))
                continue
            report = lv.get("report_minutes")
            if isinstance(report, bool) or not isinstance(report, int) or report <= 0:
                problems.append(RowError(i, f"{lat}.report_minutes", report, "an integer > 0 (minutes)"))
            actions = lv.get("actions")
            if not isinstance(actions, list) or not actions:
                problems.append(RowError(i, f"{lat}.actions", actions, "a non-empty list of actions"))
                actions = []
            parsed: list[dict[str, Any]] = []
            for j, act in enumerate(actions):
                aat = f"{lat}.actions[{j}]"
                act = act if isinstance(act, Mapping) else {}
                code, deadline = act.get("code"), act.get("deadline_min")
                if not isinstance(code, str) or not _CODE.fullmatch(code):
                    problems.append(RowError(i, f"{aat}.code", code, "a snake_case key of 1..32 characters"))
                elif code in {a["code"] for a in parsed}:
                    problems.append(RowError(i, f"{aat}.code", code, "a code not used twice in one level"))
                if isinstance(deadline, bool) or not isinstance(deadline, int) or deadline < 0:
                    problems.append(RowError(i, f"{aat}.deadline_min", deadline, "an integer >= 0 (minutes)"))
                parsed.append({"seq": j + 1, "code": code, "text": _texts(act.get("text"), f"{aat}.text", problems),
                               "unit": _texts(act.get("unit"), f"{aat}.unit", problems), "deadline_min": deadline})
            out.append({"hazard_kind": kind, "level": level, "name": name, "response": response, "basis": basis,
                        "conditions": _texts(lv.get("conditions"), f"{lat}.conditions", problems),
                        "report_minutes": report, "actions": parsed})
    if problems:
        raise ValidationError(problems, message="plan templates rejected; nothing was loaded")
    return out


def load_plans(db: Db, data: Any = None) -> dict[str, int]:
    """Load templates (:func:`read_templates`) into the store: each (hazard kind, level) inserted or replaced,
    its actions replaced. Activations already made keep their own copy of the actions. Returns counts.
    """
    templates = read_templates(data)
    n_actions = 0
    for tpl in templates:
        values = {"name_zh": tpl["name"]["zh-CN"], "name_en": tpl["name"]["en"],
                  "response_zh": tpl["response"]["zh-CN"], "response_en": tpl["response"]["en"],
                  "conditions_zh": tpl["conditions"]["zh-CN"], "conditions_en": tpl["conditions"]["en"],
                  "report_minutes": tpl["report_minutes"], "basis": tpl["basis"], "updated_at": func.now()}
        pid = db.execute(select(ResponsePlan.id).where(ResponsePlan.hazard_kind == tpl["hazard_kind"],
                                                       ResponsePlan.level == tpl["level"])).scalar_one_or_none()
        if pid is None:
            pid = db.execute(insert(ResponsePlan).values(hazard_kind=tpl["hazard_kind"], level=tpl["level"], **values)
                             .returning(ResponsePlan.id)).scalar_one()
        else:
            db.execute(update(ResponsePlan).where(ResponsePlan.id == pid).values(**values))
            db.execute(delete(PlanAction).where(PlanAction.plan_id == pid))
        db.execute(insert(PlanAction), [
            {"plan_id": pid, "seq": a["seq"], "code": a["code"], "text_zh": a["text"]["zh-CN"],
             "text_en": a["text"]["en"], "unit_zh": a["unit"]["zh-CN"], "unit_en": a["unit"]["en"],
             "deadline_min": a["deadline_min"]} for a in tpl["actions"]])
        n_actions += len(tpl["actions"])
    return {"plans": len(templates), "actions": n_actions}


def _plan_dict(p: Any, actions: Sequence[Any]) -> dict[str, Any]:
    return {"id": int(p.id), "hazard_kind": p.hazard_kind, "level": int(p.level), "roman": ROMAN[int(p.level)],
            "name": {"zh-CN": p.name_zh, "en": p.name_en}, "response": {"zh-CN": p.response_zh, "en": p.response_en},
            "conditions": {"zh-CN": p.conditions_zh, "en": p.conditions_en}, "report_minutes": int(p.report_minutes),
            "basis": p.basis,
            "actions": [{"seq": int(a.seq), "code": a.code, "text": {"zh-CN": a.text_zh, "en": a.text_en},
                         "unit": {"zh-CN": a.unit_zh, "en": a.unit_en}, "deadline_min": int(a.deadline_min)}
                        for a in actions]}


def list_plans(db: Db, *, hazard_kind: str | None = None) -> list[dict[str, Any]]:
    """Every template (by hazard kind, then level Ⅰ..Ⅳ) with its actions in order."""
    cond = [] if hazard_kind is None else [ResponsePlan.hazard_kind == hazard_kind]
    # Core rows (attribute access as on ORM objects) so that a plain Connection serves as well as a Session
    plans = db.execute(select(ResponsePlan.__table__).where(*cond)
                       .order_by(ResponsePlan.hazard_kind, ResponsePlan.level)).all()
    acts = db.execute(select(PlanAction.__table__).where(PlanAction.plan_id.in_([p.id for p in plans]))
                      .order_by(PlanAction.plan_id, PlanAction.seq)).all() if plans else []
    by_plan: dict[int, list[Any]] = {}
    for a in acts:
        by_plan.setdefault(a.plan_id, []).append(a)
    return [_plan_dict(p, by_plan.get(p.id, [])) for p in plans]


def _check_level(level: Any) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or level not in RESPONSE_LEVELS:
        raise ValidationError([RowError(None, "level", level, "a response level: 1 (Ⅰ, highest) .. 4 (Ⅳ)")])
    return int(level)


def get_plan(db: Db, hazard_kind: Any, level: Any) -> dict[str, Any]:
    """The template of one hazard kind and level.

    Raises
    ------
    ValidationError
        Unknown hazard kind or level.
    NotFoundError
        No template for it (the message lists what is loaded, or says to run ``sitroom plans load``).
    """
    if vocab.check("hazard_kind", hazard_kind):
        raise ValidationError([RowError(None, "hazard_kind", hazard_kind, ", ".join(vocab.keys("hazard_kind")))])
    lv = _check_level(level)
    found = list_plans(db, hazard_kind=hazard_kind)
    for p in found:
        if p["level"] == lv:
            return p
    have = ", ".join(f"{p['hazard_kind']} {p['roman']}" for p in list_plans(db)) or "none (run `sitroom plans load`)"
    raise NotFoundError(f"no response plan for {hazard_kind} at level {lv}; loaded: {have}")


# ------------------------------------------------------------------------------------------------ activations

def _check_id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError([RowError(None, field, value, "a positive integer id")])
    return int(value)


def _target(db: Db, hazard_id: Any, incident_id: Any) -> tuple[int | None, int | None, str | None]:
    hid = None if hazard_id is None else _check_id(hazard_id, "hazard_id")
    iid = None if incident_id is None else _check_id(incident_id, "incident_id")
    name = None
    for model, fid, field in ((Hazard, hid, "hazard_id"), (Incident, iid, "incident_id")):
        if fid is None:
            continue
        row = db.execute(select(model.name, model.deleted_at).where(model.id == fid)).first()
        if row is None or row.deleted_at is not None:
            raise NotFoundError(f"no {field.removesuffix('_id')} {fid}")
        name = name or row.name
    return hid, iid, name


def _active_same(db: Db, hazard_kind: str, hid: int | None, iid: int | None) -> Any:
    return db.execute(select(PlanActivation.id, PlanActivation.level, PlanActivation.activated_by,
                             PlanActivation.activated_at)
                      .where(PlanActivation.status == "active", PlanActivation.hazard_kind == hazard_kind,
                             PlanActivation.hazard_id.is_not_distinct_from(hid),
                             PlanActivation.incident_id.is_not_distinct_from(iid))).first()


def _action_rows(plan: Mapping[str, Any], activation_id: int, start: datetime) -> list[dict[str, Any]]:
    return [{"activation_id": activation_id, "seq": a["seq"], "code": a["code"], "level": plan["level"],
             "text_zh": a["text"]["zh-CN"], "text_en": a["text"]["en"], "unit_zh": a["unit"]["zh-CN"],
             "unit_en": a["unit"]["en"], "deadline_at": start + timedelta(minutes=a["deadline_min"]),
             "status": "open"} for a in plan["actions"]]


def activate(db: Db, *, hazard_kind: Any, level: Any, user: str, hazard_id: Any = None, incident_id: Any = None,
             issuer: Any = None, note: Any = None, now: datetime | None = None) -> dict[str, Any]:
    """Put the plan of ``hazard_kind`` at ``level`` into force (optionally for one hazard or incident): an activation
    and its checklist, deadlines counted from ``now``; one duty-log line.

    Raises
    ------
    ValidationError
        Unknown hazard kind or level, bad ids or texts.
    NotFoundError
        No template for it, no such hazard or incident.
    ActivationStateError
        A plan of that kind is already in force for the same target (``context["activation_id"]``): change its level.
    """
    plan = get_plan(db, hazard_kind, level)
    hid, iid, target_name = _target(db, hazard_id, incident_id)
    issuer_text = duty.check_text(issuer, "issuer")
    note_text = duty.check_text(note, "note")
    db.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"sitroom.activation.{plan['hazard_kind']}"))))
    same = _active_same(db, plan["hazard_kind"], hid, iid)
    if same is not None:
        raise ActivationStateError(
            f"a {plan['hazard_kind']} response is already in force (activation {same.id}, level "
            f"{ROMAN[int(same.level)]}, by {same.activated_by}); raise or lower its level instead",
            field="hazard_kind", value=plan["hazard_kind"], allowed="a hazard kind without a response in force",
            context={"activation_id": int(same.id), "level": int(same.level)})
    when = duty.db_now(db, now)
    set_acting_user(db, user)
    aid = int(db.execute(insert(PlanActivation).values(
        plan_id=plan["id"], hazard_kind=plan["hazard_kind"], level=plan["level"], hazard_id=hid, incident_id=iid,
        status="active", issuer=issuer_text, note=note_text, activated_at=when, activated_by=user, updated_by=user)
        .returning(PlanActivation.id)).scalar_one())
    db.execute(insert(A), [{**r, "updated_by": user} for r in _action_rows(plan, aid, when)])
    duty.record(db, kind="plan", code="plan.activated", author=user, at=when, activation_id=aid, incident_id=iid,
                text=note_text, params={"activation_id": aid, "hazard_kind": plan["hazard_kind"],
                                        "level": plan["level"], "response": plan["response"], "target": target_name,
                                        "issuer": issuer_text, "report_minutes": plan["report_minutes"]})
    return get_activation(db, aid, now=when)


def _response_of(db: Db, plan_id: int) -> dict[str, str]:
    row = db.execute(select(ResponsePlan.response_zh, ResponsePlan.response_en).where(ResponsePlan.id == plan_id)).one()
    return {"zh-CN": row.response_zh, "en": row.response_en}


def _locked_activation(db: Db, activation_id: Any) -> Any:
    aid = _check_id(activation_id, "activation_id")
    # a Core row, not an ORM object: a later UPDATE in the same session must not change what we read here
    row = db.execute(select(PlanActivation.__table__).where(PlanActivation.id == aid)
                     .with_for_update()).first()
    if row is None:
        raise NotFoundError(f"no plan activation {aid}")
    if row.status != "active":
        raise ActivationStateError(f"activation {aid} was closed at {row.closed_at} by {row.closed_by}",
                                   field="activation_id", value=aid, allowed="an activation in force",
                                   context={"activation_id": aid, "status": row.status})
    return row


def change_level(db: Db, activation_id: Any, level: Any, *, user: str, note: Any = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """Raise or lower the response level of an activation; its checklist follows the new level's template (module
    docstring); one duty-log line (``plan.raised`` or ``plan.lowered``).

    Raises
    ------
    ActivationStateError
        The activation is closed, or already at that level.
    NotFoundError
        No template for the new level.
    """
    act = _locked_activation(db, activation_id)
    lv = _check_level(level)
    if lv == act.level:
        raise ActivationStateError(f"activation {act.id} is already at level {ROMAN[lv]}", field="level", value=lv,
                                   allowed=[x for x in RESPONSE_LEVELS if x != lv],
                                   context={"activation_id": int(act.id), "level": int(act.level)})
    plan = get_plan(db, act.hazard_kind, lv)
    note_text = duty.check_text(note, "note")
    when = duty.db_now(db, now)
    set_acting_user(db, user)
    current = {r.code: r for r in db.execute(select(A.__table__).where(A.activation_id == act.id))}
    wanted = {r["code"]: r for r in _action_rows(plan, int(act.id), when)}
    for code, new in wanted.items():
        old = current.get(code)
        if old is None:
            db.execute(insert(A).values(**new, updated_by=user))
        elif old.status == "done":
            db.execute(update(A).where(A.id == old.id).values(seq=new["seq"], updated_by=user))
        else:
            deadline = new["deadline_at"] if old.status == "dropped" else min(old.deadline_at, new["deadline_at"])
            db.execute(update(A).where(A.id == old.id).values(
                seq=new["seq"], level=lv, text_zh=new["text_zh"], text_en=new["text_en"], unit_zh=new["unit_zh"],
                unit_en=new["unit_en"], deadline_at=deadline, status="open", updated_by=user))
    gone = [r.id for code, r in current.items() if code not in wanted and r.status == "open"]
    if gone:
        db.execute(update(A).where(A.id.in_(gone)).values(status="dropped", updated_by=user))
    db.execute(update(PlanActivation).where(PlanActivation.id == act.id).values(
        level=lv, plan_id=plan["id"], level_changed_at=when, updated_by=user))
    code = "plan.raised" if lv < act.level else "plan.lowered"
    duty.record(db, kind="plan", code=code, author=user, at=when, activation_id=int(act.id),
                incident_id=act.incident_id, text=note_text,
                params={"activation_id": int(act.id), "hazard_kind": act.hazard_kind, "from": int(act.level),
                        "to": lv, "dropped": len(gone), "response": plan["response"], "issuer": act.issuer})
    return get_activation(db, int(act.id), now=when)


def close(db: Db, activation_id: Any, *, user: str, note: Any = None, now: datetime | None = None
          ) -> dict[str, Any]:
    """End an activation (应急响应终止); one duty-log line. Raises :class:`ActivationStateError` if already closed."""
    act = _locked_activation(db, activation_id)
    note_text = duty.check_text(note, "note")
    when = duty.db_now(db, now)
    set_acting_user(db, user)
    db.execute(update(PlanActivation).where(PlanActivation.id == act.id).values(
        status="closed", closed_at=when, closed_by=user, updated_by=user))
    duty.record(db, kind="plan", code="plan.closed", author=user, at=when, activation_id=int(act.id),
                incident_id=act.incident_id, text=note_text,
                params={"activation_id": int(act.id), "hazard_kind": act.hazard_kind, "level": int(act.level),
                        "response": _response_of(db, int(act.plan_id)), "issuer": act.issuer})
    return get_activation(db, int(act.id), now=when)


def check_action(db: Db, action_id: Any, *, user: str, note: Any = None, now: datetime | None = None
                 ) -> dict[str, Any]:
    """Mark one checklist action done (who, when, note); one duty-log line (``action.done``, on time or late).

    Raises
    ------
    NotFoundError
        No such action.
    ActivationStateError
        Its activation is closed, or the action is already done (by whom, when) or dropped.
    """
    xid = _check_id(action_id, "action_id")
    row = db.execute(select(A.__table__).where(A.id == xid).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"no checklist action {xid}")
    act = _locked_activation(db, row.activation_id)
    if row.status != "open":
        who = f" by {row.done_by} at {row.done_at}" if row.status == "done" else ""
        raise ActivationStateError(f"action {xid} is already {row.status}{who}", field="action_id", value=xid,
                                   allowed="an open action", context={"action_id": xid, "status": row.status})
    note_text = duty.check_text(note, "note")
    when = duty.db_now(db, now)
    set_acting_user(db, user)
    db.execute(update(A).where(A.id == xid).values(status="done", done_at=when, done_by=user, note=note_text,
                                                   updated_by=user))
    late_s = max(0.0, (when - row.deadline_at).total_seconds())
    duty.record(db, kind="action", code="action.done" if late_s == 0 else "action.done_late", author=user, at=when,
                activation_id=int(act.id), incident_id=act.incident_id, text=note_text,
                params={"activation_id": int(act.id), "action_id": xid, "hazard_kind": act.hazard_kind,
                        "level": int(act.level), "action": {"zh-CN": row.text_zh, "en": row.text_en},
                        "response": _response_of(db, int(act.plan_id)), "late_min": round(late_s / 60.0)})
    return get_activation(db, int(act.id), now=when)


# ------------------------------------------------------------------------------------------------ reading

def _action_view(a: Mapping[Any, Any], now: datetime, live: bool) -> dict[str, Any]:
    deadline = a["deadline_at"]
    left = (deadline - now).total_seconds()
    return {"id": int(a["id"]), "seq": int(a["seq"]), "code": a["code"], "level": int(a["level"]),
            "text": {"zh-CN": a["text_zh"], "en": a["text_en"]}, "unit": {"zh-CN": a["unit_zh"], "en": a["unit_en"]},
            "deadline_at": deadline, "status": a["status"], "done_at": a["done_at"], "done_by": a["done_by"],
            "note": a["note"], "seconds_left": left if a["status"] == "open" else None,
            "overdue": bool(live and a["status"] == "open" and left < 0)}


def _activation_view(act: Mapping[Any, Any], actions: Sequence[Mapping[Any, Any]], plan: Mapping[str, Any] | None,
                     now: datetime) -> dict[str, Any]:
    live = act["status"] == "active"
    items = sorted((_action_view(a, now, live) for a in actions), key=lambda a: (a["status"] == "dropped", a["seq"]))
    return {"id": int(act["id"]), "hazard_kind": act["hazard_kind"], "level": int(act["level"]),
            "roman": ROMAN[int(act["level"])], "status": act["status"], "hazard_id": act["hazard_id"],
            "incident_id": act["incident_id"], "issuer": act["issuer"], "note": act["note"],
            "activated_at": act["activated_at"], "activated_by": act["activated_by"],
            "level_changed_at": act["level_changed_at"], "closed_at": act["closed_at"], "closed_by": act["closed_by"],
            "response": plan["response"] if plan else None, "name": plan["name"] if plan else None,
            "report_minutes": plan["report_minutes"] if plan else None, "basis": plan["basis"] if plan else None,
            "conditions": plan["conditions"] if plan else None,
            "actions": items, "done": sum(a["status"] == "done" for a in items),
            "open": sum(a["status"] == "open" for a in items), "overdue": sum(a["overdue"] for a in items)}


def _plans_by_id(db: Db, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = db.execute(select(ResponsePlan.__table__).where(ResponsePlan.id.in_(list(ids)))).all()
    return {p.id: _plan_dict(p, []) for p in rows}


def activations(db: Db, *, status: str | None = "active", now: datetime | None = None, limit: int = 50
                ) -> list[dict[str, Any]]:
    """Activations (newest first; ``status`` ``active``, ``closed`` or None for both) with their checklists,
    each action's time left and overdue mark as of ``now`` (default: the database's time)."""
    when = duty.db_now(db, now)
    cond = [] if status is None else [PlanActivation.status == status]
    acts = db.execute(select(PlanActivation.__table__).where(*cond)
                      .order_by(PlanActivation.level, PlanActivation.activated_at.desc())
                      .limit(max(1, min(int(limit), 500)))).mappings().all()
    if not acts:
        return []
    items = db.execute(select(A.__table__).where(A.activation_id.in_([a["id"] for a in acts]))
                       ).mappings().all()
    by_act: dict[int, list[Any]] = {}
    for it in items:
        by_act.setdefault(int(it["activation_id"]), []).append(it)
    plans = _plans_by_id(db, {int(a["plan_id"]) for a in acts})
    return [_activation_view(a, by_act.get(int(a["id"]), []), plans.get(int(a["plan_id"])), when) for a in acts]


def get_activation(db: Db, activation_id: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """One activation with its checklist (as :func:`activations`). Raises ``NotFoundError``."""
    aid = _check_id(activation_id, "activation_id")
    when = duty.db_now(db, now)
    act = db.execute(select(PlanActivation.__table__).where(PlanActivation.id == aid)).mappings().first()
    if act is None:
        raise NotFoundError(f"no plan activation {aid}")
    items = db.execute(select(A.__table__).where(A.activation_id == aid)).mappings().all()
    return _activation_view(act, items, _plans_by_id(db, {int(act["plan_id"])}).get(int(act["plan_id"])), when)


def overdue_actions(db: Db, *, now: datetime | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Open actions of active activations past their deadline at ``now``, most overdue first: the action (as in
    :func:`activations`) plus ``activation_id``, ``hazard_kind``, ``level``."""
    when = duty.db_now(db, now)
    rows = db.execute(select(A.__table__, PlanActivation.hazard_kind.label("hazard_kind"),
                             PlanActivation.level.label("activation_level"))
                      .join(PlanActivation, PlanActivation.id == A.activation_id)
                      .where(PlanActivation.status == "active", A.status == "open", A.deadline_at < when)
                      .order_by(A.deadline_at, A.id).limit(max(1, min(int(limit), 500)))).mappings().all()
    return [{**_action_view(r, when, True), "activation_id": int(r["activation_id"]), "hazard_kind": r["hazard_kind"],
             "activation_level": int(r["activation_level"])} for r in rows]


def _timed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A history row with its ``*_at`` values (ISO text in the JSON) back as datetimes."""
    return {k: datetime.fromisoformat(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in row.items()}


def activations_at(db: Db, at: datetime) -> list[dict[str, Any]]:
    """Activations in force at ``at``, with their checklists as they were then (from ``feature_history``), the
    overdue marks as of ``at``: the response banner and checklist of a replayed picture."""
    acts = [_timed(a) for a in states_at(db, "plan_activations", at).values() if a.get("status") == "active"]
    if not acts:
        return []
    ids = {int(a["id"]) for a in acts}
    items = [_timed(r) for r in states_at(db, "activation_actions", at).values() if int(r["activation_id"]) in ids]
    by_act: dict[int, list[Any]] = {}
    for it in items:
        by_act.setdefault(int(it["activation_id"]), []).append(it)
    plans = _plans_by_id(db, {int(a["plan_id"]) for a in acts})
    out = [_activation_view(a, by_act.get(int(a["id"]), []), plans.get(int(a["plan_id"])), at) for a in acts]
    return sorted(out, key=lambda a: (a["level"], a["id"]))
