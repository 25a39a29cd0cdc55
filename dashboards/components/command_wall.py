"""The wall's command panel (指挥调度): the response-level banners ("自治区启动防汛Ⅳ级应急响应"), tasks by status,
overdue plan actions, and each deployed resource on the map with a line to its incident.

Public: :data:`COMMAND_LAYERS`, :data:`STATUS_COLOURS`, :data:`LEVEL_COLOURS`, :func:`command_map_layer`, :func:`command_overlay`,
:func:`deployed_layers`, :func:`banners`, :func:`panel`, :func:`redraw`.

The wall includes it with one line in its map (:func:`command_map_layer`) and one over it
(:func:`command_overlay`). Its data is the ``command`` part of the wall picture
(:func:`dashboards.services.command.wall_picture`), computed with the rest of the picture once per server process;
:func:`redraw` runs after each redraw of the wall has landed (``WALL_DRAWN``) and reads that same cached picture,
or, while the wall replays the past, the command picture as it was then.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import dash_leaflet as dl
from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import ids
from dashboards.auth import EVERY_LAYER, allowed
from dashboards.components.basemap import leaflet_bbox
from dashboards.components.replay import replay_id, replay_time
from dashboards.context import db_engine
from dashboards.errors import classify
from dashboards.i18n import current_lang, t
from dashboards.services.command import wall_picture
from dashboards.services.wall import live_snapshot
from layers.store.models import TASK_STATUSES

__all__ = ["COMMAND_LAYERS", "STATUS_COLOURS", "LEVEL_COLOURS", "command_map_layer", "command_overlay", "deployed_layers", "banners",
           "panel", "redraw"]

#: line and marker colour of a deployed resource, by its task's status
STATUS_COLOURS = {"assigned": "#ffd54f", "en_route": "#4fc3f7", "on_scene": "#69f0ae", "completed": "#9e9e9e",
                  "cancelled": "#757575"}
#: banner colour by response level: Ⅰ red, Ⅱ orange, Ⅲ yellow, Ⅳ blue (as the warning colours)
LEVEL_COLOURS = {1: "#c62828", 2: "#ef6c00", 3: "#f9a825", 4: "#1565c0"}
OVERDUE_SHOWN = 4
#: the command tables whose changes redraw the wall (task moves, plan steps); the duty log does not
COMMAND_LAYERS = ("tasks", "plan_activations", "activation_actions")


def command_map_layer() -> dl.LayerGroup:
    """The map layer of deployed resources and their lines (a child of the wall's map)."""
    return dl.LayerGroup(id=ids.WALL_CMD_LINES)


def command_overlay(lang: str | None = None) -> html.Div:
    """Banners and the task/overdue panel, laid over the wall's map (``assets/command.css``)."""
    lang = lang or current_lang()
    return html.Div(className="sr-cmd-overlay", children=[
        dcc.Store(id=ids.WALL_CMD_STATE, data=None),
        html.Div(id=ids.WALL_CMD_BANNERS, className="sr-cmd-banners", role="status"),
        html.Div(id=ids.WALL_CMD_PANEL, className="sr-cmd-panel", children=panel(None, lang)),
    ])


def deployed_layers(deployed: list[dict[str, Any]], lang: str, *, permanent: bool = False) -> list[Any]:
    """A dashed line from each deployed resource to its target, and a dot at the resource with its name."""
    out: list[Any] = []
    for d in deployed:
        colour = STATUS_COLOURS.get(d["status"], "#ffffff")
        tip = f"{d.get('resource') or ''} → {d.get('target') or ''} · {t('command.status.' + d['status'], lang)}"
        out.append(dl.Polyline(positions=[[d["lat"], d["lon"]], [d["target_lat"], d["target_lon"]]], color=colour,
                               weight=2, opacity=0.9, dashArray="6 6", interactive=False))
        out.append(dl.CircleMarker(center=[d["lat"], d["lon"]], radius=5, color="#0b1220", weight=1, fillColor=colour,
                                   fillOpacity=1.0, children=dl.Tooltip(tip, permanent=permanent,
                                                                        className="sr-cmd-tip")))
    return out


def banners(responses: list[dict[str, Any]]) -> list[Any]:
    """One banner per response in force, highest level first."""
    return [html.Div(r["banner"], className="sr-cmd-banner", id=f"wall-cmd-banner-{r['activation_id']}",
                     style={"background": LEVEL_COLOURS.get(int(r["level"]), "#1565c0"),
                            "color": "#1d2430" if int(r["level"]) == 3 else "#ffffff"})
            for r in responses]


def _minutes(n: int, lang: str) -> str:
    return t("command.minutes", lang, n=n)


def panel(picture: dict[str, Any] | None, lang: str) -> list[Any]:
    """Task counts by status, deployed resources, and the most overdue plan actions."""
    counts = (picture or {}).get("tasks") or {}
    chips = [html.Span([html.I(style={"background": STATUS_COLOURS[s]}),
                        html.Span(t(f"command.status.{s}", lang), className="sr-cmd-chip-label"),
                        html.B("—" if picture is None else str(counts.get(s, 0)), id=ids.wall_task_count(s))],
                       className="sr-cmd-chip") for s in TASK_STATUSES]
    overdue = (picture or {}).get("overdue") or []
    items = [html.Li([html.Span(_minutes(o["minutes_over"], lang), className="sr-cmd-over"),
                      html.Span(o["text"] or "", className="sr-cmd-over-text"),
                      html.Span(o["unit"] or "", className="sr-cmd-over-unit")]) for o in overdue[:OVERDUE_SHOWN]]
    total = (picture or {}).get("overdue_total") or 0
    return [
        html.Div(t("command.wall.tasks", lang), className="sr-cmd-h"),
        html.Div(chips, className="sr-cmd-chips"),
        html.Div(t("command.wall.overdue", lang, n=total), className="sr-cmd-h sr-cmd-h-over" if total else "sr-cmd-h"),
        html.Ul(items or [html.Li(t("command.wall.none_overdue", lang), className="sr-cmd-none")],
                className="sr-cmd-overdue"),
    ]


def register_command_panel() -> None:
    """Register the panel's callback with the app being built (call at the wall page module's top level: Dash
    executes a page module for every app it makes, but imports this module once)."""
    callback(
        Output(ids.WALL_CMD_BANNERS, "children"),
        Output(ids.WALL_CMD_PANEL, "children"),
        Output(ids.WALL_CMD_LINES, "children"),
        Output(ids.WALL_CMD_STATE, "data"),
        Input(ids.WALL_DRAWN, "data"),
        State(ids.WALL_MAP, "zoom"),
        State(ids.WALL_MAP, "bounds"),
        State(replay_id("wall", "state"), "data"),
        prevent_initial_call=True,
    )(redraw)


def redraw(drawn: dict[str, Any] | None, zoom: float | None, bounds: Any, replay: dict[str, Any] | None
           ) -> tuple[Any, ...]:
    """Draw the command part of the picture the wall has just drawn (or of the replayed time)."""
    if not drawn or not allowed("read", EVERY_LAYER):  # as GET /tasks and /plans/activations (the callback
        raise PreventUpdate                              # policy refuses first; this covers a call that bypasses it)
    lang = current_lang()
    at = replay_time(replay)
    try:
        if at is None:
            heat: Literal["incidents", "population"] = (
                "population" if drawn.get("heat") == "population" else "incidents")
            snap = live_snapshot(db_engine(), zoom=zoom, bbox=leaflet_bbox(bounds), heat=heat, lang=lang).value
            picture = snap.get("command")
        else:
            with db_engine().connect() as conn:
                picture = wall_picture(conn, now=at, at=at, lang=lang)
    except Exception as e:
        if classify(e)[0] == 503:
            raise PreventUpdate from None  # the wall shows "connection lost"; the last panel stays
        raise
    if picture is None:
        raise PreventUpdate
    state = {"responses": [r["banner"] for r in picture["responses"]], "tasks": picture["tasks"],
             "deployed": len(picture["deployed"]), "overdue": picture["overdue_total"],
             "replay": None if at is None else at.isoformat(), "drawn_at": time.time()}
    return banners(picture["responses"]), panel(picture, lang), deployed_layers(picture["deployed"], lang), state
