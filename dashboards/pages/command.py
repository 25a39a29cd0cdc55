"""Command and dispatch (``/command``, 指挥调度) for the duty officer and the dispatcher: the incident queue, an
incident's details with resources suggested by ETA and a dispatch button each, the task board by status, the
response plans in force with their checklists and timers, and the duty log.

Public (plain functions the callbacks call, tested without a browser): :func:`queue_items`, :func:`details_panel`,
:func:`board_panel`, :func:`plans_panel`, :func:`log_panel`, :func:`perform`.

Anyone who may read sees the page; only a user with the capability ``dispatch`` (roles ``dispatcher``, ``admin``)
sees its buttons, and every callback that writes checks that capability itself, exactly as the HTTP routes of
:mod:`dashboards.api.command` do (callbacks pass the URL policy as reads). Every write goes through
:mod:`dashboards.services.command`; the page redraws on the live push (tasks, plans, incidents, resources and the
duty log announce their changes) and after its own actions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboards import ids
from dashboards.auth import allowed
from dashboards.components.basemap import base_map
from dashboards.components.command_wall import LEVEL_COLOURS, STATUS_COLOURS, deployed_layers
from dashboards.components.live import live_id, live_source, needs_refetch
from dashboards.components.maplayers import map_extras, map_kwargs, register_maps
from dashboards.context import API_PREFIX, acting_user, db_engine, db_read, settings
from dashboards.errors import error_body
from dashboards.i18n import current_lang, normalize_lang, t, vocab_label
from dashboards.services import command, duty_log
from layers.command import plans
from layers.command.tasks import EtaParams
from layers.store.models import ACTIVE_TASK_STATUSES, DUTY_LOG_KINDS, RESPONSE_LEVELS, TASK_STATUSES

dash.register_page(__name__, path="/command", name="command", order=5, title=lambda: t("command.title"))
register_maps("command", ids.COMMAND_MAP,
              overlays=("incidents", "hazards", "resources", "shelters", "protection_targets", "admin_regions"),
              checked=("hazards", "resources"), tools=("search",))  # a small map: the search only

DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
#: the changes that redraw the page
LIVE_LAYERS = {"incidents", "resources", "tasks", "plan_activations", "activation_actions", "duty_log"}
TICK_MS = 30_000
LOG_LINES = 200
PLAN_KINDS = ("flood", "grassland_fire", "earthquake", "chemical_release", "blizzard")
SEVERITY_COLOURS = {"extraordinary": "#b71c1c", "major": "#e65100", "large": "#f9a825", "general": "#1565c0"}
CAPABILITY = "dispatch"
#: a selected incident and its suggestions are shown at most this close (the town around it stays readable)
SELECTION_MAX_ZOOM = 9


def _user() -> str:
    return acting_user()[:64]


def _hhmm(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(DISPLAY_TZ).strftime("%H:%M")


def _km(m: float | None) -> str:
    return "—" if m is None else f"{m / 1000.0:.1f}"


def _min(s: float | None) -> str:
    return "—" if s is None else f"{s / 60.0:.0f}"


def _age(seconds: float, lang: str) -> str:
    h, m = divmod(int(seconds // 60), 60)
    return t("command.age_hm", lang, h=h, m=m) if h else t("command.minutes", lang, n=m)


# ------------------------------------------------------------------------------------------------ layout

def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    can = allowed(CAPABILITY)
    plan_form = html.Div(className="sr-cmd-form", children=[
        dcc.Dropdown(id=ids.COMMAND_PLAN_KIND, value="flood", clearable=False, className="sr-cmd-dd",
                     options=[{"label": vocab_label("hazard_kind", k, lang), "value": k} for k in PLAN_KINDS]),
        dcc.Dropdown(id=ids.COMMAND_PLAN_LEVEL, value=4, clearable=False, className="sr-cmd-dd",
                     options=[{"label": t("command.level", lang, level=plans.ROMAN[lv]), "value": lv}
                              for lv in sorted(RESPONSE_LEVELS, reverse=True)]),
        html.Button(t("command.plan.activate", lang), id=ids.COMMAND_PLAN_ACTIVATE, className="sr-cmd-btn"),
    ]) if can else None
    log_form = html.Div(className="sr-cmd-form", children=[
        dcc.Textarea(id=ids.COMMAND_LOG_TEXT, placeholder=t("command.log.placeholder", lang), maxLength=2000,
                     className="sr-cmd-text"),
        html.Button(t("command.log.add", lang), id=ids.COMMAND_LOG_ADD, className="sr-cmd-btn"),
    ]) if can else None
    return html.Div(id=ids.COMMAND_ROOT, className="sr-cmd", lang=lang, children=[
        live_source("command"),
        dcc.Interval(id=ids.COMMAND_TICK, interval=TICK_MS),
        dcc.Store(id=ids.COMMAND_VERSION, data=0),
        dcc.Store(id=ids.COMMAND_SELECTED, data=None),
        html.Div(className="sr-cmd-head", children=[
            html.H2(t("command.title", lang)),
            html.P(t("command.read_only", lang), className="sr-muted") if not can else None,
            html.Div(id=ids.COMMAND_STATUS, className="sr-cmd-status", role="status"),
        ]),
        html.Section(className="sr-cmd-queue", children=[
            html.H3(t("command.queue", lang)), html.Div(id=ids.COMMAND_QUEUE, className="sr-cmd-scroll")]),
        html.Section(className="sr-cmd-centre", children=[
            html.Div([base_map(ids.COMMAND_MAP, **map_kwargs("command", lang), children=[
                dl.LayerGroup(id=ids.COMMAND_MAP_DEPLOYED), dl.LayerGroup(id=ids.COMMAND_MAP_SELECTION)]),
                *map_extras("command", lang)], className="sr-cmd-map"),
            dcc.Input(id=ids.COMMAND_NOTE, type="text", maxLength=2000, debounce=False,
                      placeholder=t("command.note_placeholder", lang), className="sr-cmd-note") if can else None,
            html.Div(id=ids.COMMAND_DETAILS, className="sr-cmd-details",
                     children=html.P(t("command.pick_incident", lang), className="sr-muted")),
        ]),
        html.Section(className="sr-cmd-board-wrap", children=[
            html.H3(t("command.board", lang)), html.Div(id=ids.COMMAND_BOARD, className="sr-cmd-board")]),
        html.Section(className="sr-cmd-plans-wrap", children=[
            html.H3(t("command.plans", lang)), plan_form, html.Div(id=ids.COMMAND_PLANS)]),
        html.Section(className="sr-cmd-log-wrap", children=[
            html.H3(t("command.log.title", lang)),
            html.Div(className="sr-cmd-form", children=[
                dcc.Dropdown(id=ids.COMMAND_LOG_KIND, multi=True, className="sr-cmd-dd sr-cmd-dd-wide",
                             placeholder=t("command.log.all_kinds", lang),
                             options=[{"label": t(f"command.log_kind.{k}", lang), "value": k}
                                      for k in DUTY_LOG_KINDS]),
                dcc.Input(id=ids.COMMAND_LOG_QUERY, type="search", debounce=True, maxLength=200,
                          placeholder=t("command.log.search", lang), className="sr-cmd-note"),
                html.A(t("command.log.csv", lang), id=ids.COMMAND_LOG_CSV, href="#", className="sr-cmd-link"),
                html.A(t("command.log.pdf", lang), id=ids.COMMAND_LOG_PDF, href="#", target="_blank",
                       className="sr-cmd-link"),
            ]),
            log_form,
            html.Div(id=ids.COMMAND_LOG, className="sr-cmd-scroll"),
        ]),
    ])


# ------------------------------------------------------------------------------------------------ panels

def queue_items(queue: list[dict[str, Any]], lang: str, selected: int | None) -> list[Any]:
    """The incident queue: unassigned first, severity, age; each row selects the incident."""
    if not queue:
        return [html.P(t("command.queue_empty", lang), className="sr-muted")]
    return [html.Button(
        id={"type": ids.COMMAND_QUEUE_ITEM, "id": q["id"]},
        className="sr-cmd-q" + (" sr-cmd-q-sel" if q["id"] == selected else "") + (
            " sr-cmd-q-open" if not q["active_tasks"] else ""),
        style={"borderLeftColor": SEVERITY_COLOURS.get(q["severity"], "#1565c0")},
        children=[html.Span(vocab_label("incident_severity", q["severity"], lang).split(" ")[0], className="sev"),
                  html.Span(q["name"] or f"#{q['id']}", className="name"),
                  html.Span(vocab_label("incident_kind", q["kind"], lang), className="kind"),
                  html.Span(_age(q["age_s"], lang), className="age"),
                  html.Span(t("command.queue_tasks", lang, n=q["active_tasks"]) if q["active_tasks"]
                            else t("command.queue_idle", lang, n=q["tasks"]) if q["tasks"]
                            else t("command.unassigned", lang), className="tasks")])
        for q in queue]


def details_panel(data: dict[str, Any], lang: str, can_dispatch: bool) -> list[Any]:
    """An incident's details and its suggestions ranked by ETA, each with a dispatch button (dispatchers only)."""
    inc, eta = data["incident"], data["eta"]
    head = html.Div(className="sr-cmd-inc", children=[
        html.H3(inc["name"] or f"#{inc['id']}"),
        html.P(" · ".join([vocab_label("incident_kind", inc["kind"], lang),
                           vocab_label("incident_severity", inc["severity"], lang),
                           vocab_label("incident_status", inc["status"], lang),
                           t("command.occurred", lang, time=_hhmm(inc["occurred_at"]))])),
        html.P(t("command.eta_rule", lang, detour=f"{eta['detour_factor']:g}"), className="sr-muted"),
    ])
    if not data["suggestions"]:
        return [head, html.P(t("command.no_suggestions", lang), className="sr-muted")]
    rows = [html.Tr([
        html.Td(str(s["rank"])), html.Td(s["name"] or f"#{s['id']}"),
        html.Td(vocab_label("resource_kind", s["kind"], lang)), html.Td(_km(s["distance_m"]), className="sr-num"),
        html.Td(_min(s["eta_s"]), className="sr-num"),
        html.Td(t("command.eta_params", lang, speed=f"{s['speed_kmh']:g}", detour=f"{s['detour_factor']:g}"),
                className="sr-muted"),
        html.Td(html.Button(t("command.dispatch", lang), id={"type": ids.COMMAND_DISPATCH, "id": s["id"]},
                            className="sr-cmd-btn") if can_dispatch else None),
    ]) for s in data["suggestions"]]
    header = html.Tr([html.Th(t(k, lang)) for k in ("command.col.rank", "command.col.resource", "command.col.kind",
                                                    "command.col.km", "command.col.eta", "command.col.eta_rule",
                                                    "command.col.action")])
    return [head, html.Table([html.Thead(header), html.Tbody(rows)], className="sr-table sr-cmd-sugg")]


def _task_card(task: dict[str, Any], lang: str, can_dispatch: bool) -> Any:
    left = (t("command.left", lang, km=_km(task["distance_left_m"]), min=_min(task["eta_left_s"]))
            if task["status"] in ("assigned", "en_route") else "")
    buttons = [html.Button(t(f"command.move.{to}", lang), id={"type": ids.COMMAND_TASK_MOVE, "id": task["id"], "to": to},
                           className="sr-cmd-btn sr-cmd-btn-sm" + (" sr-cmd-btn-quiet" if to == "cancelled" else ""))
               for to in task["allowed"]] if can_dispatch else []
    return html.Div(className="sr-cmd-card", id=f"command-task-{task['id']}",
                    style={"borderLeftColor": STATUS_COLOURS.get(task["status"], "#999")}, children=[
        html.Div([html.B(task["resource_name"] or f"#{task['resource_id']}"), " ",
                  html.Span(vocab_label("resource_kind", task["resource_kind"], lang), className="sr-muted")]),
        html.Div(["→ ", task["target_name"] or f"#{task['target_id']}"]),
        html.Div(t("command.assigned_by", lang, who=task["assigned_by"], time=_hhmm(task["assigned_at"])),
                 className="sr-muted"),
        html.Div(left, className="sr-cmd-left") if left else None,
        html.Div(buttons, className="sr-cmd-moves") if buttons else None,
    ])


def board_panel(board: dict[str, Any], lang: str, can_dispatch: bool) -> list[Any]:
    """Columns by status: active tasks with their moves, then the recently finished."""
    cols = []
    for status in TASK_STATUSES:
        items = board["columns"][status]
        cols.append(html.Div(id=ids.command_board_column(status), className=f"sr-cmd-col sr-cmd-col-{status}",
                             children=[html.H4(f"{t('command.status.' + status, lang)} · {board['counts'][status]}"),
                                       *[_task_card(x, lang, can_dispatch and status in ACTIVE_TASK_STATUSES)
                                         for x in items]]))
    return cols


def _action_row(a: dict[str, Any], lang: str, can: bool) -> Any:
    if a["status"] == "done":
        state = t("command.action.done", lang, who=a["done_by"], time=_hhmm(a["done_at"]))
    elif a["status"] == "dropped":
        state = t("command.action.dropped", lang)
    elif a["overdue"]:
        state = t("command.action.overdue", lang, n=int(-a["seconds_left"] // 60))
    else:
        state = t("command.action.left", lang, n=int(a["seconds_left"] // 60))
    button = (html.Button(t("command.action.check", lang), id={"type": ids.COMMAND_ACTION_CHECK, "id": a["id"]},
                          className="sr-cmd-btn sr-cmd-btn-sm") if can and a["status"] == "open" else None)
    return html.Tr(className=f"sr-cmd-act sr-cmd-act-{a['status']}" + (" sr-cmd-act-overdue" if a["overdue"] else ""),
                   id=f"command-action-{a['id']}", children=[
        html.Td(a["text"].get(lang)), html.Td(a["unit"].get(lang), className="sr-muted"),
        html.Td(_hhmm(a["deadline_at"])), html.Td(state), html.Td(button)])


def plans_panel(activations: list[dict[str, Any]], lang: str, can_dispatch: bool) -> list[Any]:
    """Each response in force: its banner, level buttons, close, and the checklist with timers."""
    if not activations:
        return [html.P(t("command.plans_none", lang), className="sr-muted")]
    out = []
    for a in activations:
        moves = [html.Button(t("command.plan.to_level", lang, level=plans.ROMAN[lv]),
                             id={"type": ids.COMMAND_PLAN_CHANGE, "id": a["id"], "to": lv},
                             className="sr-cmd-btn sr-cmd-btn-sm") for lv in RESPONSE_LEVELS if lv != a["level"]]
        moves.append(html.Button(t("command.plan.close", lang), id={"type": ids.COMMAND_PLAN_CHANGE, "id": a["id"],
                                                                     "to": 0},
                                 className="sr-cmd-btn sr-cmd-btn-sm sr-cmd-btn-quiet"))
        out.append(html.Div(className="sr-cmd-plan", id=f"command-activation-{a['id']}", children=[
            html.Div(command.banner_text(a, lang), className="sr-cmd-plan-banner",
                     style={"background": LEVEL_COLOURS.get(a["level"], "#1565c0"),
                            "color": "#1d2430" if a["level"] == 3 else "#fff"}),
            html.P(t("command.plan.meta", lang, who=a["activated_by"], time=_hhmm(a["activated_at"]),
                     report=a["report_minutes"] or "—", done=a["done"], open=a["open"], overdue=a["overdue"]),
                   className="sr-muted"),
            html.Div(moves, className="sr-cmd-moves") if can_dispatch else None,
            html.Table(className="sr-table sr-cmd-checklist", children=[
                html.Thead(html.Tr([html.Th(t(k, lang)) for k in ("command.col.measure", "command.col.unit",
                                                                  "command.col.deadline", "command.col.state",
                                                                  "command.col.action")])),
                html.Tbody([_action_row(x, lang, can_dispatch) for x in a["actions"]])]),
        ]))
    return out


def log_panel(lines: list[dict[str, Any]], lang: str) -> Any:
    """The duty log, newest first."""
    if not lines:
        return html.P(t("command.log.empty", lang), className="sr-muted")
    return html.Table(className="sr-table sr-cmd-logtable", children=[
        html.Thead(html.Tr([html.Th(t(k, lang)) for k in ("command.col.when", "command.col.who", "command.col.kind",
                                                          "command.col.entry")])),
        html.Tbody([html.Tr([html.Td(_hhmm(x["at"])), html.Td(x["author"]),
                             html.Td(t(f"command.log_kind.{x['kind']}", lang)), html.Td(x["line"])])
                    for x in lines])])


def perform(action: str, lang: str, **kw: Any) -> tuple[str, bool]:
    """Run one write of the page as the current user, if they may dispatch: ``(message, ok)``.

    ``action``: ``dispatch`` (resource_id, incident_id, note), ``move`` (task_id, status), ``activate``
    (hazard_kind, level), ``level`` (activation_id, level), ``close`` (activation_id), ``check`` (action_id),
    ``log`` (text). A refusal (409, 422 ...) comes back as the translated message of the API with its detail.
    """
    if not allowed(CAPABILITY):  # the same capability as the HTTP routes; callbacks pass the URL policy as reads
        return t("auth.not_allowed", lang), False
    engine, user, eta = db_engine(), _user(), EtaParams.from_settings(settings())
    try:
        if action == "dispatch":
            task = command.dispatch(engine, resource_id=kw["resource_id"], incident_id=kw["incident_id"],
                                    note=kw.get("note") or None, user=user, eta=eta)
            return t("command.done.dispatch", lang, resource=task["resource_name"], target=task["target_name"],
                     min=_min(task["eta_s"])), True
        if action == "move":
            task = command.move_task(engine, kw["task_id"], kw["status"], user=user, eta=eta)
            return t("command.done.move", lang, task=task["id"], status=t(f"command.status.{task['status']}", lang)), True
        if action == "activate":
            act = command.activate_plan(engine, user=user, hazard_kind=kw["hazard_kind"], level=kw["level"])
            return command.banner_text(act, lang), True
        if action == "level":
            act = command.change_plan_level(engine, kw["activation_id"], kw["level"], user=user)
            return command.banner_text(act, lang), True
        if action == "close":
            command.close_plan(engine, kw["activation_id"], user=user)
            return t("command.done.close", lang), True
        if action == "check":
            command.check_plan_action(engine, kw["action_id"], user=user)
            return t("command.done.check", lang), True
        if action == "log":
            duty_log.add_entry(engine, kw.get("text"), user=user, lang=lang)
            return t("command.done.log", lang), True
    except Exception as e:  # noqa: BLE001 - every refusal is shown to the dispatcher, as the API answers it
        status, body = error_body(e)
        err = body["error"]
        detail = err.get("detail") if status < 500 else None
        return err["message"] + (f" ({detail})" if detail else ""), False
    raise ValueError(f"unknown action {action!r}")


# ------------------------------------------------------------------------------------------------ callbacks

_REDRAW = (Input(live_id("command"), "data"), Input(ids.COMMAND_VERSION, "data"))


def _wants(live: Any) -> bool:
    """A redraw is due: the page's own action, the timer, the first draw, or a change of the layers shown."""
    return ctx.triggered_id != live_id("command") or needs_refetch(live, LIVE_LAYERS)


@callback(Output(ids.COMMAND_QUEUE, "children"), *_REDRAW, Input(ids.COMMAND_SELECTED, "data"))
def draw_queue(live: Any, _version: Any, selected: Any) -> Any:
    if not _wants(live) or not allowed("read"):
        raise PreventUpdate
    with db_read() as conn:
        queue = command.incident_queue(conn)
    return queue_items(queue, current_lang(), selected)


@callback(Output(ids.COMMAND_BOARD, "children"), Output(ids.COMMAND_MAP_DEPLOYED, "children"), *_REDRAW)
def draw_board(live: Any, _version: Any) -> tuple[Any, Any]:
    if not _wants(live) or not allowed("read"):
        raise PreventUpdate
    lang = current_lang()
    with db_read() as conn:
        board = command.task_board(conn, eta=EtaParams.from_settings(settings()))
    deployed = [{"task_id": x["id"], "status": x["status"], "resource": x["resource_name"], "kind": x["resource_kind"],
                 "lon": x["resource_lon"], "lat": x["resource_lat"], "target": x["target_name"],
                 "target_lon": x["target_lon"], "target_lat": x["target_lat"]}
                for s in ACTIVE_TASK_STATUSES for x in board["columns"][s] if x["target_lon"] is not None]
    return board_panel(board, lang, allowed(CAPABILITY)), deployed_layers(deployed, lang)


@callback(Output(ids.COMMAND_PLANS, "children"), *_REDRAW, Input(ids.COMMAND_TICK, "n_intervals"))
def draw_plans(live: Any, _version: Any, _tick: Any) -> Any:
    if not _wants(live) or not allowed("read"):
        raise PreventUpdate
    with db_read() as conn:
        acts = plans.activations(conn, status="active", now=datetime.now(UTC))
    return plans_panel(acts, current_lang(), allowed(CAPABILITY))


@callback(Output(ids.COMMAND_LOG, "children"), Output(ids.COMMAND_LOG_CSV, "href"), Output(ids.COMMAND_LOG_PDF, "href"),
          *_REDRAW, Input(ids.COMMAND_LOG_KIND, "value"), Input(ids.COMMAND_LOG_QUERY, "value"))
def draw_log(live: Any, _version: Any, kinds: Any, query: Any) -> tuple[Any, str, str]:
    if not _wants(live) or not allowed("read"):
        raise PreventUpdate
    lang = current_lang()
    kinds = [k for k in (kinds or []) if k in DUTY_LOG_KINDS] or None
    with db_read() as conn:
        lines = duty_log.lines(conn, lang=lang, kinds=kinds, query=(query or "").strip() or None, limit=LOG_LINES)
    q = {k: v for k, v in (("kind", ",".join(kinds or [])), ("q", (query or "").strip()), ("lang", lang)) if v}
    return (log_panel(lines, lang), f"{API_PREFIX}/duty-log?{urlencode({**q, 'format': 'csv'})}",
            f"{API_PREFIX}/duty-log?{urlencode({**q, 'format': 'pdf'})}")


@callback(Output(ids.COMMAND_DETAILS, "children"), Output(ids.COMMAND_MAP_SELECTION, "children"),
          Output(ids.COMMAND_MAP, "viewport"), Input(ids.COMMAND_SELECTED, "data"), *_REDRAW)
def draw_details(selected: Any, live: Any, _version: Any) -> tuple[Any, Any, Any]:
    if not selected or not allowed("read"):
        raise PreventUpdate
    if ctx.triggered_id == live_id("command") and not needs_refetch(live, {"incidents", "resources", "tasks"}):
        raise PreventUpdate
    lang = current_lang()
    try:
        with db_read() as conn:
            data = command.suggest(conn, int(selected), eta=EtaParams.from_settings(settings()))
    except Exception as e:  # noqa: BLE001 - the incident may be gone; say so in the panel
        return html.P(error_body(e)[1]["error"]["message"], className="sr-warning"), [], no_update
    inc = data["incident"]
    marks: list[Any] = [dl.CircleMarker(center=[inc["lat"], inc["lon"]], radius=9, color="#b71c1c", weight=3,
                                        fillOpacity=0.6, children=dl.Tooltip(inc["name"] or ""))]
    for s in data["suggestions"]:
        marks.append(dl.Polyline(positions=[[s["lat"], s["lon"]], [inc["lat"], inc["lon"]]], color="#1565c0",
                                 weight=1, dashArray="4 6"))
        marks.append(dl.CircleMarker(center=[s["lat"], s["lon"]], radius=5, color="#1565c0", fillOpacity=0.9,
                                     children=dl.Tooltip(f"{s['rank']}. {s['name'] or ''} · "
                                                         + t("command.minutes", lang, n=_min(s["eta_s"])))))
    view: Any = no_update
    if ctx.triggered_id == ids.COMMAND_SELECTED:  # a new selection: show it and its suggestions
        lats = [inc["lat"], *(s["lat"] for s in data["suggestions"])]
        lons = [inc["lon"], *(s["lon"] for s in data["suggestions"])]
        view = {"bounds": [[min(lats) - 0.05, min(lons) - 0.05], [max(lats) + 0.05, max(lons) + 0.05]],
                "transition": "flyToBounds", "options": {"maxZoom": SELECTION_MAX_ZOOM}}
    return details_panel(data, lang, allowed(CAPABILITY)), marks, view


@callback(Output(ids.COMMAND_SELECTED, "data"), Input({"type": ids.COMMAND_QUEUE_ITEM, "id": ALL}, "n_clicks"),
          prevent_initial_call=True)
def select_incident(clicks: Any) -> Any:
    if not isinstance(ctx.triggered_id, dict) or not any(clicks or []):
        raise PreventUpdate
    return int(ctx.triggered_id["id"])


def _answer(message: str, ok: bool, version: Any) -> tuple[Any, Any]:
    return (html.Span(message, className="sr-ok" if ok else "sr-warning"),
            (version or 0) + 1 if ok else no_update)


def _clicked() -> dict[str, Any] | None:
    """The pattern-matching id of the button that fired, if it was really clicked (not just drawn)."""
    trig = ctx.triggered[0] if ctx.triggered else None
    if not trig or not trig.get("value") or not isinstance(ctx.triggered_id, dict):
        return None
    return dict(ctx.triggered_id)


_WRITE_OUT = (Output(ids.COMMAND_STATUS, "children", allow_duplicate=True),
              Output(ids.COMMAND_VERSION, "data", allow_duplicate=True))


@callback(*_WRITE_OUT, Input({"type": ids.COMMAND_DISPATCH, "id": ALL}, "n_clicks"),
          State(ids.COMMAND_SELECTED, "data"), State(ids.COMMAND_NOTE, "value"), State(ids.COMMAND_VERSION, "data"),
          prevent_initial_call=True)
def on_dispatch(_clicks: Any, selected: Any, note: Any, version: Any) -> tuple[Any, Any]:
    hit = _clicked()
    if hit is None or not selected:
        raise PreventUpdate
    return _answer(*perform("dispatch", current_lang(), resource_id=int(hit["id"]), incident_id=int(selected),
                            note=note), version)


@callback(*_WRITE_OUT, Input({"type": ids.COMMAND_TASK_MOVE, "id": ALL, "to": ALL}, "n_clicks"),
          State(ids.COMMAND_VERSION, "data"), prevent_initial_call=True)
def on_move(_clicks: Any, version: Any) -> tuple[Any, Any]:
    hit = _clicked()
    if hit is None:
        raise PreventUpdate
    return _answer(*perform("move", current_lang(), task_id=int(hit["id"]), status=str(hit["to"])), version)


@callback(*_WRITE_OUT, Input(ids.COMMAND_PLAN_ACTIVATE, "n_clicks"), State(ids.COMMAND_PLAN_KIND, "value"),
          State(ids.COMMAND_PLAN_LEVEL, "value"), State(ids.COMMAND_VERSION, "data"), prevent_initial_call=True)
def on_activate(clicks: Any, kind: Any, level: Any, version: Any) -> tuple[Any, Any]:
    if not clicks:
        raise PreventUpdate
    return _answer(*perform("activate", current_lang(), hazard_kind=kind, level=level), version)


@callback(*_WRITE_OUT, Input({"type": ids.COMMAND_PLAN_CHANGE, "id": ALL, "to": ALL}, "n_clicks"),
          State(ids.COMMAND_VERSION, "data"), prevent_initial_call=True)
def on_plan_change(_clicks: Any, version: Any) -> tuple[Any, Any]:
    hit = _clicked()
    if hit is None:
        raise PreventUpdate
    if int(hit["to"]) == 0:
        return _answer(*perform("close", current_lang(), activation_id=int(hit["id"])), version)
    return _answer(*perform("level", current_lang(), activation_id=int(hit["id"]), level=int(hit["to"])), version)


@callback(*_WRITE_OUT, Input({"type": ids.COMMAND_ACTION_CHECK, "id": ALL}, "n_clicks"),
          State(ids.COMMAND_VERSION, "data"), prevent_initial_call=True)
def on_check(_clicks: Any, version: Any) -> tuple[Any, Any]:
    hit = _clicked()
    if hit is None:
        raise PreventUpdate
    return _answer(*perform("check", current_lang(), action_id=int(hit["id"])), version)


@callback(*_WRITE_OUT, Output(ids.COMMAND_LOG_TEXT, "value"), Input(ids.COMMAND_LOG_ADD, "n_clicks"),
          State(ids.COMMAND_LOG_TEXT, "value"), State(ids.COMMAND_VERSION, "data"), prevent_initial_call=True)
def on_log(clicks: Any, text: Any, version: Any) -> tuple[Any, Any, Any]:
    if not clicks:
        raise PreventUpdate
    message, ok = perform("log", current_lang(), text=text)
    return (*_answer(message, ok, version), "" if ok else no_update)


__all__ = ["layout", "queue_items", "details_panel", "board_panel", "plans_panel", "log_panel", "perform"]
