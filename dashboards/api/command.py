"""Command and dispatch endpoints (指挥调度): tasks, suggestions by ETA, response plans and activations, the duty log.

Public (HTTP, under ``/api/v1``): ``GET|POST /tasks``, ``GET|PATCH /tasks/<id>``, ``GET /tasks/<id>/history``,
``GET /incidents/<id>/suggestions``, ``GET /plans``, ``GET|POST /plans/activations``,
``GET|PATCH /plans/activations/<id>``, ``PATCH /plans/actions/<id>``, ``GET|POST /duty-log``.

Writes need the capability ``dispatch`` (roles ``dispatcher`` and ``admin``; :data:`dashboards.auth.POLICY`) and
run in one transaction each (:mod:`dashboards.services.command`), with the duty-log line of the change. Conflicts
answer 409 with ``context``: two dispatchers racing for one resource get one 201 and one 409 naming the task that
won (``context.task``); a status change the task does not allow names the allowed ones (``allowed``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response

from dashboards.api.openapi import endpoint, query, register_schema
from dashboards.context import acting_user, db_engine, db_read, settings
from dashboards.errors import ParameterError, json_response
from dashboards.i18n import current_lang
from dashboards.services import command, duty_log
from layers.command import plans, tasks
from layers.command.tasks import EtaParams
from layers.read.sitrep import parse_time
from layers.store import vocab
from layers.store.errors import ValidationError
from layers.store.models import DUTY_LOG_KINDS, RESPONSE_LEVELS, TASK_STATUSES

TAGS = ("command",)
CONFLICT = {"$ref": "#/components/schemas/Error"}
TASK_REF = register_schema("Task", {
    "type": "object",
    "required": ["id", "status", "resource_id", "allowed"],
    "properties": {
        "id": {"type": "integer"}, "status": {"type": "string", "enum": list(TASK_STATUSES)},
        "resource_id": {"type": "integer"}, "incident_id": {"type": ["integer", "null"]},
        "hazard_id": {"type": ["integer", "null"]}, "zone_id": {"type": ["integer", "null"]},
        "allowed": {"type": "array", "items": {"type": "string"}, "description": "statuses it may move to"},
        "distance_m": {"type": ["number", "null"], "description": "geodesic distance at dispatch, metres"},
        "eta_s": {"type": ["number", "null"], "description": "ETA at dispatch, seconds"},
        "eta_speed_kmh": {"type": ["number", "null"]}, "eta_detour": {"type": ["number", "null"]},
        "distance_left_m": {"type": ["number", "null"], "description": "from the resource's position now"},
        "eta_left_s": {"type": ["number", "null"]}, "eta_method": {"type": "string"},
    },
})
NOTE = {"type": ["string", "null"], "maxLength": 2000}


def _user() -> str:
    return acting_user()[:64]


def _eta() -> EtaParams:
    return EtaParams.from_settings(settings())


def _time(name: str, raw: str | None) -> datetime | None:
    try:
        return parse_time(raw, field=name)
    except ValidationError:
        raise ParameterError(field=name, value=raw, allowed="an ISO 8601 date-time") from None


# ------------------------------------------------------------------------------------------------ tasks

@endpoint("/tasks", "GET", tags=TAGS, operation_id="list_tasks", summary="Tasks, newest first",
          parameters=[query("status", {"type": "array", "items": {"type": "string", "enum": list(TASK_STATUSES)}},
                            "only these statuses"),
                      query("incident_id", {"type": "integer", "minimum": 1}, "only tasks of this incident"),
                      query("limit", {"type": "integer", "minimum": 1, "maximum": 5000, "default": 500})],
          responses={200: ("Tasks", {"type": "object", "properties": {
              "tasks": {"type": "array", "items": {"$ref": TASK_REF}}, "counts": {"type": "object"}}})})
def list_tasks(*, status: list[str] | None, incident_id: int | None, limit: int) -> dict[str, Any]:
    with db_read() as conn:
        return {"tasks": tasks.list_tasks(conn, status=status, incident_id=incident_id, eta=_eta(), limit=limit),
                "counts": tasks.status_counts(conn)}


@endpoint("/tasks", "POST", tags=TAGS, operation_id="create_task",
          summary="Dispatch a resource to an incident, a hazard or an impact zone (the resource becomes deployed)",
          description="Exactly one of `incident_id`, `hazard_id`, `zone_id`. A resource holds at most one active "
                      "task (enforced by the database): when another task holds it, or two dispatchers race for "
                      "it, the answer is 409 `resource_busy` naming the task that holds it in `context.task`.",
          request_body={"type": "object", "additionalProperties": False, "required": ["resource_id"],
                        "properties": {"resource_id": {"type": "integer", "minimum": 1},
                                       "incident_id": {"type": "integer", "minimum": 1},
                                       "hazard_id": {"type": "integer", "minimum": 1},
                                       "zone_id": {"type": "integer", "minimum": 1},
                                       "note": {**NOTE, "description": "what to do"}},
                        "example": {"incident_id": 12, "resource_id": 345, "note": "搜救被困人员"}},
          responses={201: ("The task, with its ETA and how it was estimated", {"$ref": TASK_REF}),
                     409: ("The resource is not available; `context.task` names the task holding it", CONFLICT)})
def create_task(*, body: dict[str, Any]) -> Any:
    task = command.dispatch(db_engine(), resource_id=body["resource_id"], incident_id=body.get("incident_id"),
                            hazard_id=body.get("hazard_id"), zone_id=body.get("zone_id"), note=body.get("note"),
                            user=_user(), eta=_eta())
    return json_response(task, 201)


@endpoint("/tasks/<int:task_id>", "GET", tags=TAGS, operation_id="get_task",
          summary="One task: resource, target, who and when of each transition, distance and ETA left",
          responses={200: ("The task", {"$ref": TASK_REF})})
def get_task(task_id: int) -> dict[str, Any]:
    with db_read() as conn:
        return tasks.get_task(conn, task_id, eta=_eta())


@endpoint("/tasks/<int:task_id>", "PATCH", tags=TAGS, operation_id="move_task",
          summary="Move a task: assigned -> en_route -> on_scene -> completed, or cancelled",
          description="Any other move is 409 `illegal_transition` with the allowed ones in `allowed`. Completing "
                      "or cancelling makes the resource available again.",
          request_body={"type": "object", "additionalProperties": False, "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": list(TASK_STATUSES)}, "note": NOTE},
                        "example": {"status": "en_route"}},
          responses={200: ("The task after the move", {"$ref": TASK_REF}),
                     409: ("A move the task's status does not allow (`allowed` lists those it does)", CONFLICT)})
def move_task(task_id: int, *, body: dict[str, Any]) -> dict[str, Any]:
    return command.move_task(db_engine(), task_id, body["status"], user=_user(), note=body.get("note"), eta=_eta())


@endpoint("/tasks/<int:task_id>/history", "GET", tags=TAGS, operation_id="task_history",
          summary="Every recorded state of a task, oldest first (who and when of each change)",
          responses={200: ("The states", {"type": "object"})})
def task_history(task_id: int) -> dict[str, Any]:
    with db_read() as conn:
        tasks.get_task(conn, task_id)
        return {"task_id": task_id, "states": tasks.task_history(conn, task_id)}


@endpoint("/incidents/<int:incident_id>/suggestions", "GET", tags=TAGS, operation_id="suggest_resources",
          summary="Available resources for an incident, ranked by ETA (geodesic distance x detour factor / speed)",
          description="Kinds default to what the incident's kind usually needs. Each row carries the speed and "
                      "detour factor its ETA used (settings SITROOM_ETA_SPEED_KMH, SITROOM_ETA_DETOUR_FACTOR).",
          parameters=[query("kind", {"type": "array", "items": {"type": "string",
                                                                "enum": list(vocab.keys("resource_kind"))}},
                            "resource kinds wanted"),
                      query("k", {"type": "integer", "minimum": 1, "maximum": command.MAX_SUGGEST_K, "default": 3},
                            "candidates per kind")],
          responses={200: ("The ranked suggestions", {"type": "object"})})
def suggest_resources(incident_id: int, *, kind: list[str] | None, k: int) -> dict[str, Any]:
    with db_read() as conn:
        return command.suggest(conn, incident_id, kinds=kind, k=k, eta=_eta())


# ------------------------------------------------------------------------------------------------ plans

@endpoint("/plans", "GET", tags=TAGS, operation_id="list_plans",
          summary="Response plan templates (预案) by hazard kind and level: start conditions, reporting deadline, "
                  "actions", parameters=[query("hazard_kind", {"type": "string",
                                                                "enum": list(vocab.keys("hazard_kind"))})],
          responses={200: ("The templates", {"type": "object"})})
def list_plans(*, hazard_kind: str | None) -> dict[str, Any]:
    with db_read() as conn:
        return {"plans": plans.list_plans(conn, hazard_kind=hazard_kind)}


@endpoint("/plans/activations", "GET", tags=TAGS, operation_id="list_activations",
          summary="Plan activations with their checklists (time left and overdue marks as of now)",
          parameters=[query("status", {"type": "string", "enum": ["active", "closed", "any"], "default": "active"})],
          responses={200: ("The activations", {"type": "object"})})
def list_activations(*, status: str) -> dict[str, Any]:
    with db_read() as conn:
        return {"activations": plans.activations(conn, status=None if status == "any" else status)}


@endpoint("/plans/activations", "POST", tags=TAGS, operation_id="activate_plan",
          summary="Activate the plan of a hazard kind at a response level (1 = Ⅰ, highest .. 4 = Ⅳ)",
          request_body={"type": "object", "additionalProperties": False, "required": ["hazard_kind", "level"],
                        "properties": {"hazard_kind": {"type": "string", "enum": list(vocab.keys("hazard_kind"))},
                                       "level": {"type": "integer", "enum": list(RESPONSE_LEVELS)},
                                       "hazard_id": {"type": "integer", "minimum": 1},
                                       "incident_id": {"type": "integer", "minimum": 1},
                                       "issuer": {**NOTE, "description": "who declares it (default 自治区)"},
                                       "note": NOTE},
                        "example": {"hazard_kind": "flood", "level": 4}},
          responses={201: ("The activation and its checklist", {"type": "object"}),
                     409: ("A response of that kind is already in force (`context.activation_id`)", CONFLICT)})
def activate_plan(*, body: dict[str, Any]) -> Any:
    return json_response(command.activate_plan(db_engine(), user=_user(), **body), 201)


@endpoint("/plans/activations/<int:activation_id>", "GET", tags=TAGS, operation_id="get_activation",
          summary="One activation with its checklist", responses={200: ("The activation", {"type": "object"})})
def get_activation(activation_id: int) -> dict[str, Any]:
    with db_read() as conn:
        return plans.get_activation(conn, activation_id)


@endpoint("/plans/activations/<int:activation_id>", "PATCH", tags=TAGS, operation_id="change_activation",
          summary="Raise or lower the level (`level`; the checklist follows) or close the activation "
                  "(`status: closed`)",
          request_body={"type": "object", "additionalProperties": False, "minProperties": 1,
                        "properties": {"level": {"type": "integer", "enum": list(RESPONSE_LEVELS)},
                                       "status": {"type": "string", "enum": ["closed"]}, "note": NOTE},
                        "example": {"level": 3}},
          responses={200: ("The activation after the change", {"type": "object"}),
                     409: ("Closed already, or already at that level", CONFLICT)})
def change_activation(activation_id: int, *, body: dict[str, Any]) -> dict[str, Any]:
    if ("level" in body) == ("status" in body):
        raise ParameterError(field="level", value=body.get("level"), allowed="exactly one of level, status")
    if "level" in body:
        return command.change_plan_level(db_engine(), activation_id, body["level"], user=_user(),
                                         note=body.get("note"))
    return command.close_plan(db_engine(), activation_id, user=_user(), note=body.get("note"))


@endpoint("/plans/actions/<int:action_id>", "PATCH", tags=TAGS, operation_id="check_action",
          summary="Check one action of a checklist as done (who and when are recorded)",
          request_body={"type": "object", "additionalProperties": False, "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": ["done"]}, "note": NOTE},
                        "example": {"status": "done", "note": "已召开会商会"}},
          responses={200: ("The activation with the action checked", {"type": "object"}),
                     409: ("Done or dropped already, or the activation is closed", CONFLICT)})
def check_action(action_id: int, *, body: dict[str, Any]) -> dict[str, Any]:
    return command.check_plan_action(db_engine(), action_id, user=_user(), note=body.get("note"))


# ------------------------------------------------------------------------------------------------ duty log

@endpoint("/duty-log", "GET", tags=TAGS, operation_id="duty_log",
          summary="The duty log (值班日志), filtered; as JSON, CSV or PDF",
          parameters=[query("since", {"type": "string", "format": "date-time", "maxLength": 64}),
                      query("until", {"type": "string", "format": "date-time", "maxLength": 64}),
                      query("kind", {"type": "array", "items": {"type": "string", "enum": list(DUTY_LOG_KINDS)}}),
                      query("author", {"type": "string", "maxLength": 64}),
                      query("q", {"type": "string", "maxLength": 200}, "text the line mentions"),
                      query("incident_id", {"type": "integer", "minimum": 1}),
                      query("limit", {"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}),
                      query("format", {"type": "string", "enum": list(duty_log.FORMATS), "default": "json"})],
          responses={200: ("The lines, newest first (CSV and PDF oldest first)", {"type": "object"})})
def get_duty_log(*, since: str | None, until: str | None, kind: list[str] | None, author: str | None,
                 q: str | None, incident_id: int | None, limit: int, format: str) -> Any:
    lang = current_lang()
    with db_read() as conn:
        rows = duty_log.lines(conn, lang=lang, since=_time("since", since), until=_time("until", until),
                              kinds=kind, author=author, query=q, incident_id=incident_id, limit=limit)
    stamp = datetime.now(UTC)
    name = f"duty-log-{stamp.strftime('%Y%m%d-%H%M')}"
    if format == "csv":
        return Response(duty_log.to_csv(rows), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if format == "pdf":
        shown = ", ".join(f"{k}={v}" for k, v in (("since", since), ("until", until), ("kind", kind and ",".join(kind)),
                                                 ("author", author), ("q", q), ("incident_id", incident_id)) if v)
        return Response(duty_log.to_pdf(rows, lang=lang, title_time=stamp, filters=shown),
                        content_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})
    return {"entries": rows, "count": len(rows)}


@endpoint("/duty-log", "POST", tags=TAGS, operation_id="add_duty_log",
          summary="Add a line of one's own to the duty log (it cannot be changed or deleted afterwards)",
          request_body={"type": "object", "additionalProperties": False, "required": ["text"],
                        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000},
                                       "incident_id": {"type": "integer", "minimum": 1}},
                        "example": {"text": "20:00 交接班，夜班值班员王明到岗"}},
          responses={201: ("The line", {"type": "object"})})
def add_duty_log(*, body: dict[str, Any]) -> Any:
    return json_response(duty_log.add_entry(db_engine(), body["text"], user=_user(),
                                            incident_id=body.get("incident_id"), lang=current_lang()), 201)
