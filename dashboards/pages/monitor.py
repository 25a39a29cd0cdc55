"""Monitoring (``/monitor``, 监测预警): stations coloured by their state, a station's series with the rule thresholds,
the automatic warnings awaiting confirmation (confirm / dismiss), the data anomalies, the rules in words; replay of
the last 72 hours.

Public: :func:`layout`, :func:`station_features`, :func:`warning_layers`, :func:`queue_items`,
:func:`anomaly_items`, :func:`series_figure`, and the callbacks :func:`refresh_warnings`, :func:`refresh`,
:func:`pick_station`, :func:`plot`, :func:`decide`.

Data comes from :mod:`dashboards.services.monitor` (the same functions as ``/api/v1/monitor/*``). The page redraws
when the live push announces a change of warnings or stations, every :data:`TICK_S` seconds (readings arrive without
touching any feature layer), and after a decision. Two callbacks answer a change: :func:`refresh_warnings` (the
queue and the warning areas: one query of the open warnings) and :func:`refresh` (the stations, anomalies and
counts), so a new pending warning is on screen as soon as its own small answer arrives. The stations are one
GeoJSON layer (a circle per feature, drawn by ``sitroomMaps.stationPoint``), not a component per station: a
province's thousand stations redraw as one property change, and a click on one is the layer's ``clickData``.
Confirming and dismissing need the ``warn`` capability, checked in the callback exactly as
``POST /api/v1/monitor/warnings/<id>/confirm`` checks it; the history records who.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import dash
import dash_leaflet as dl
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from plotly.subplots import make_subplots

from dashboards import ids
from dashboards.auth import EVERY_LAYER, allowed, current_user_name
from dashboards.components import data_attributes
from dashboards.components.basemap import base_map
from dashboards.components.live import live_id, live_source, needs_refetch
from dashboards.components.maplayers import map_extras, map_kwargs, register_maps
from dashboards.components.replay import (
    register_replay,
    replay_badge,
    replay_controls,
    replay_id,
    replay_time,
)
from dashboards.context import db_engine
from dashboards.errors import classify
from dashboards.i18n import current_lang, normalize_lang, t, vocab_label
from dashboards.services import monitor
from layers.store.errors import StoreError

dash.register_page(__name__, path="/monitor", name="monitor", order=5, title=lambda: t("monitor.title"))
register_replay("monitor")
register_maps("monitor", ids.MONITOR_MAP,
              overlays=("hazards", "incidents", "shelters", "resources", "protection_targets", "admin_regions"),
              checked=("hazards",), tools=("search", "coords"), replay=replay_id("monitor", "state"))

DISPLAY_TZ = "Asia/Shanghai"
TICK_S = 30
REPLAY_HOURS = 72
LIVE_LAYERS = ("hazards", "stations")
STATE_COLOURS = {"ok": "#2e7d32", "stale": "#9e9e9e", "flagged": "#8e24aa", "off": "#cfd8dc", **monitor.LEVEL_COLOURS}
STATES = ("ok", "blue", "yellow", "orange", "red", "flagged", "stale", "off")
EMPTY: dict[str, Any] = {"type": "FeatureCollection", "features": []}


def _local(iso: str | None, fmt: str = "%m-%d %H:%M") -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(DISPLAY_TZ)).strftime(fmt)


def _rules_panel(lang: str) -> Any:
    try:
        with db_engine().connect() as conn:
            rules = monitor.rules(conn, lang=lang)
    except Exception as e:
        if classify(e)[0] == 503:
            return html.P(t("home.db_unavailable", lang), className="sr-warning")
        raise
    return [html.Details(className="sr-mon-rule", children=[
        html.Summary([html.B(r["name"]), f" · {r['kind_label']} · {r['area']}"]),
        html.Ul([html.Li([html.Span(lv["label"], className=f"sr-mon-chip lvl-{lv['level']}"), " ", lv["text"]])
                 for lv in r["levels"]]),
        html.P(r["hysteresis"], className="sr-mon-small"),
        html.P([t("monitor.rules.source", lang), " ", r["source"]], className="sr-mon-small"),
    ]) for r in rules]


def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    legend = html.Div(className="sr-mon-legend", children=[
        html.Span([html.I(style={"background": STATE_COLOURS[s]}), t(f"monitor.state.{s}", lang)])
        for s in STATES])
    the_map = base_map(ids.MONITOR_MAP, **map_kwargs("monitor", lang), children=[
        dl.LayerGroup(id=ids.MONITOR_WARNING_LAYER),
        dl.GeoJSON(id=ids.MONITOR_STATION_LAYER, data=EMPTY, pointToLayer={"variable": "sitroomMaps.stationPoint"},
                   hideout={"colours": STATE_COLOURS}),
    ])
    return html.Div(id=ids.MONITOR_ROOT, lang=lang, children=[
        html.Div(hidden=True, children=[
            live_source("monitor", layers=LIVE_LAYERS),
            dcc.Interval(id=ids.MONITOR_TICK, interval=TICK_S * 1000),
            dcc.Store(id=ids.MONITOR_DECIDED, data=0),
            dcc.Store(id=ids.MONITOR_DRAWN, data=None),
        ]),
        html.Div(className="sr-mon", children=[
        html.Div(className="sr-mon-left", children=[
            html.H1(t("monitor.title", lang), className="sr-mon-title"),
            html.Div(id=ids.MONITOR_SUMMARY, className="sr-mon-summary"),
            html.H2(t("monitor.queue", lang)),
            dcc.Input(id=ids.MONITOR_NOTE, type="text", maxLength=500, debounce=False, className="sr-mon-note",
                      placeholder=t("monitor.note", lang)),
            html.Div(id=ids.MONITOR_STATUS, className="sr-mon-status", role="status"),
            html.Div(id=ids.MONITOR_QUEUE, className="sr-mon-queue"),
            html.H2(t("monitor.anomalies", lang)),
            html.Div(id=ids.MONITOR_ANOMALIES, className="sr-mon-anomalies"),
        ]),
        html.Div(className="sr-mon-map", children=[
            the_map, *map_extras("monitor", lang), legend,
            html.Div(replay_controls("monitor", hours=REPLAY_HOURS, lang=lang, speed=600), className="sr-mon-map-top"),
            html.Div("", id=ids.MONITOR_REPLAY_BADGE, className="sr-replay-badge sr-hidden", role="status"),
        ]),
        html.Div(className="sr-mon-right", children=[
            html.Label(t("monitor.station", lang), htmlFor=ids.MONITOR_STATION, className="sr-mon-label"),
            dcc.Dropdown(id=ids.MONITOR_STATION, options=[], value=None, clearable=True,
                         placeholder=t("monitor.station_pick", lang)),
            html.Div(id=ids.MONITOR_PLOT_TITLE, className="sr-mon-small"),
            dcc.Graph(id=ids.MONITOR_PLOT, className="sr-mon-plot", figure=go.Figure(),
                      config={"displayModeBar": False, "responsive": True}),
            html.H2(t("monitor.rules", lang)),
            html.Div(_rules_panel(lang), id=ids.MONITOR_RULES, className="sr-mon-rules"),
        ]),
        ]),
    ])


# ------------------------------------------------------------------------------------------------ components


def station_features(stations: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    """Every station as a GeoJSON point (one layer, drawn by ``sitroomMaps.stationPoint``): ``code``, ``state`` (its
    colour), ``radius`` by kind, and its latest readings as the ``tooltip`` (HTML to Leaflet: the text is escaped)."""
    feats = []
    for s in stations:
        lines = [f"{s['name']} ({s['code']}) · {s['kind_label']}", t(f"monitor.state.{s['state']}", lang)]
        lines += [f"{x['label']}: {x['value']:g} {x['unit']}" + ("" if x["quality"] == "good" else
                                                               f" ⚠ {t('monitor.quality.' + x['quality'], lang)}")
                  for x in s["latest"].values()]
        lines.append(t("monitor.last", lang, time=_local(s["last_at"])))
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                      "properties": {"code": s["code"], "state": s["state"] if s["state"] in STATE_COLOURS else "ok",
                                     "radius": 7 if s["kind"] == "weather" else 9,
                                     "tooltip": "<br>".join(escape(x) for x in lines)}})
    return {"type": "FeatureCollection", "features": feats}


def warning_layers(features: dict[str, Any], lang: str) -> list[Any]:
    """Open automatic warnings: live ones filled, those awaiting a person dashed."""
    out = []
    for level in ("blue", "yellow", "orange", "red"):
        for awaiting in (False, True):
            feats = [{**f, "properties": {"tooltip": f"{f['properties']['name']} · "
                                                     f"{f['properties']['status_label']}"}}
                     for f in features["features"]
                     if f["properties"]["warning_level"] == level and f["properties"]["status"] == (
                         "pending" if awaiting else "active")]
            if feats:
                c = monitor.LEVEL_COLOURS[level]
                style = {"color": c, "weight": 2.5, "fillColor": c, "fillOpacity": 0.06 if awaiting else 0.2,
                         "opacity": 1.0, **({"dashArray": "6 5"} if awaiting else {})}
                out.append(dl.GeoJSON(data={"type": "FeatureCollection", "features": feats}, style=style))
    return out


def _trigger_text(tr: dict[str, Any] | None, lang: str) -> str:
    if not tr or not tr.get("variable"):
        return ""
    what = vocab_label("observation_variable", tr["variable"], lang)
    if tr.get("aggregation") and tr.get("window_s"):
        what += " " + t(f"monitor.agg.{tr['aggregation']}", lang, hours=f"{float(tr['window_s']) / 3600:g}")
    return t("monitor.trigger", lang, what=what, value=tr.get("value"), threshold=tr.get("threshold"))


def queue_items(queue: list[dict[str, Any]], lang: str, *, can_decide: bool, replay: bool) -> list[Any]:
    """One card per warning awaiting a person, with its confirm and dismiss buttons."""
    if not queue:
        return [html.P(t("monitor.queue_empty", lang), className="sr-mon-small")]
    out = []
    for q in reversed(queue):  # newest first
        prop = q.get("proposal")
        what = (t(f"monitor.proposal.{prop['action']}", lang,
                  level=vocab_label("warning_level", prop["level"], lang) if prop.get("level") else "")
                if prop else t("monitor.new_warning", lang))
        disabled = not can_decide or replay
        out.append(html.Div(className=f"sr-mon-card lvl-{(prop or {}).get('level') or q['warning_level']}",
                            **data_attributes({"id": str(q["id"])}), children=[
            html.Div([html.Span(q["level_label"], className=f"sr-mon-chip lvl-{q['warning_level']}"), " ",
                      html.B(q["name"])]),
            html.Div(what, className="sr-mon-what"),
            html.Div(_trigger_text(q.get("trigger"), lang), className="sr-mon-small"),
            html.Div(t("monitor.since", lang, time=_local((prop or {}).get("since") or q["onset"])),
                     className="sr-mon-small"),
            html.Div(className="sr-mon-buttons", children=[
                html.Button(t("monitor.confirm", lang), id={"type": ids.MONITOR_CONFIRM, "id": q["id"]},
                            n_clicks=0, disabled=disabled, className="sr-mon-confirm",
                            title="" if can_decide else t("monitor.need_warn", lang)),
                html.Button(t("monitor.dismiss", lang), id={"type": ids.MONITOR_DISMISS, "id": q["id"]},
                            n_clicks=0, disabled=disabled, className="sr-mon-dismiss",
                            title="" if can_decide else t("monitor.need_warn", lang)),
            ]),
        ]))
    return out


def anomaly_items(stale: list[dict[str, Any]], flagged: list[dict[str, Any]], lang: str) -> list[Any]:
    """Stale stations, then flagged readings (newest first)."""
    items: list[Any] = [html.Li([html.Span(t("monitor.state.stale", lang), className="sr-mon-chip stale"), " ",
                                 f"{s['name']} ({s['code']}) · ", t("monitor.last", lang, time=_local(s["last_at"]))])
                        for s in stale]
    items += [html.Li([html.Span(f["quality_label"], className="sr-mon-chip flagged"), " ",
                       f"{f['name']} ({f['station']}) · {f['label']} {f['value']:g} {f['unit']} · "
                       f"{_local(f['observed_at'])}"]) for f in flagged[:50]]
    if not items:
        return [html.P(t("monitor.anomalies_none", lang), className="sr-mon-small")]
    return [html.Ul(items, className="sr-mon-list")]


def _summary(s: dict[str, Any], lang: str) -> list[Any]:
    return [t("monitor.summary", lang, reporting=s["reporting"], stations=s["stations"], anomalies=s["anomalies"],
              flagged=s["flagged"], stale=len(s["stale"]))]


LEVEL_DASH = {"blue": "dot", "yellow": "dash", "orange": "dashdot", "red": "solid"}


def series_figure(data: dict[str, Any], lang: str) -> go.Figure:
    """One panel per variable: the readings (flagged ones marked), the rules' windowed lines, the thresholds."""
    variables = data["variables"]
    fig = make_subplots(rows=max(1, len(variables)), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[f"{v['label']} ({v['unit']})" for v in variables] or [""])
    for k, v in enumerate(variables, start=1):
        r = v["readings"]
        local = [_local(x, "%Y-%m-%d %H:%M") for x in r["t"]]
        accumulation = v["variable"] in ("precipitation", "snowfall")
        if accumulation:
            fig.add_bar(x=local, y=r["value"], name=v["label"], marker_color="#64b5f6", row=k, col=1,
                        showlegend=False)
        else:
            fig.add_scatter(x=local, y=r["value"], mode="lines+markers", name=v["label"], line={"color": "#1565c0"},
                            marker={"size": 4}, row=k, col=1, showlegend=False)
        bad = [(x, y, q) for x, y, q in zip(local, r["value"], r["quality"], strict=True) if q != "good"]
        if bad:
            fig.add_scatter(x=[b[0] for b in bad], y=[b[1] for b in bad], mode="markers", row=k, col=1,
                            name=t("monitor.flagged", lang), marker={"symbol": "x", "size": 10, "color": "#8e24aa"},
                            text=[t(f"monitor.quality.{b[2]}", lang) for b in bad], showlegend=False)
        for line in v["lines"]:
            fig.add_scatter(x=[_local(x, "%Y-%m-%d %H:%M") for x in line["t"]], y=line["value"], mode="lines",
                            name=line["name"], line={"width": 1.5}, row=k, col=1, showlegend=False,
                            hovertemplate=f"{line['name']}: %{{y}}<extra></extra>")
        seen = set()
        for th in v["thresholds"]:
            key = (th["level"], th["value"])
            if key in seen or th["role"] == "condition":
                continue
            seen.add(key)
            fig.add_hline(y=th["value"], line={"color": monitor.LEVEL_COLOURS[th["level"]], "width": 1.2,
                                               "dash": LEVEL_DASH[th["level"]]},
                          annotation_text=th["label"], annotation_font_size=9, annotation_position="top left",
                          row=k, col=1)
    fig.update_layout(margin={"l": 45, "r": 10, "t": 30, "b": 30}, height=max(260, 210 * len(variables)),
                      paper_bgcolor="#ffffff", plot_bgcolor="#fafbfc", font={"size": 11}, bargap=0.1)
    return fig


# ------------------------------------------------------------------------------------------------ callbacks


def _trigger() -> Any:
    """The id of the input that fired the running callback; None outside a callback (plain-function tests)."""
    try:
        return ctx.triggered_id
    except Exception:  # noqa: BLE001 - dash raises its own exception outside a callback
        return None


def _picture(at: datetime | None, lang: str) -> dict[str, Any]:
    with db_engine().connect() as conn:
        return monitor.monitor_picture(conn, now=at or datetime.now(UTC), lang=lang, past=at is not None)


def _live_skip(live: dict[str, Any] | None) -> bool:
    """A push that touches neither warnings nor stations: nothing to redraw."""
    return _trigger() == live_id("monitor") and not needs_refetch(live, LIVE_LAYERS)


@callback(
    Output(ids.MONITOR_WARNING_LAYER, "children"),
    Output(ids.MONITOR_QUEUE, "children"),
    Output(ids.MONITOR_DRAWN, "data"),
    Input(live_id("monitor"), "data"),
    Input(ids.MONITOR_TICK, "n_intervals"),
    Input(ids.MONITOR_DECIDED, "data"),
    Input(replay_id("monitor", "state"), "data"),
)
def refresh_warnings(live: dict[str, Any] | None, _tick: Any, _decided: Any,
                     replay: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    """Redraw the queue and the warning areas (live, or at the replay's instant): one query of the open warnings,
    answered before the stations are asked for (:func:`refresh` follows ``MONITOR_DRAWN``), so that a new pending
    warning never waits for a thousand stations to be read and drawn. ``MONITOR_DRAWN`` says whether the station
    list may have changed (the first draw, a replay, a push about stations or a full refetch)."""
    if _live_skip(live) or not allowed("read", EVERY_LAYER):  # as GET /monitor/warnings
        raise PreventUpdate
    trig = _trigger()
    same_list = trig == ids.MONITOR_TICK or (trig == live_id("monitor") and not needs_refetch(live, {"stations"}))
    at = replay_time(replay)
    lang = current_lang()
    try:
        with db_engine().connect() as conn:
            feats = monitor.warning_features(conn, lang=lang, at=at)
    except Exception as e:
        if classify(e)[0] == 503:
            raise PreventUpdate from None
        raise
    return (warning_layers(feats, lang),
            queue_items(monitor.awaiting(feats), lang, can_decide=allowed("warn"), replay=at is not None),
            {"stations": not same_list, "t": datetime.now(UTC).timestamp()})


@callback(
    Output(ids.MONITOR_STATION_LAYER, "data"),
    Output(ids.MONITOR_SUMMARY, "children"),
    Output(ids.MONITOR_ANOMALIES, "children"),
    Output(ids.MONITOR_STATION, "options"),
    Output(ids.MONITOR_REPLAY_BADGE, "children"),
    Output(ids.MONITOR_REPLAY_BADGE, "className"),
    Output(ids.MONITOR_REPLAY_BADGE, "title"),
    Input(ids.MONITOR_DRAWN, "data"),
    State(replay_id("monitor", "state"), "data"),
    prevent_initial_call=True,
)
def refresh(drawn: dict[str, Any] | None, replay: dict[str, Any] | None) -> tuple[Any, ...]:
    """Redraw the stations (coloured by state), the counts and the anomalies (live, or at the replay's instant),
    once :func:`refresh_warnings` has drawn the queue; the station list of the dropdown only when stations may have
    changed."""
    if not allowed("read", EVERY_LAYER):  # as GET /monitor/stations
        raise PreventUpdate
    at = replay_time(replay)
    lang = current_lang()
    try:
        pic = _picture(at, lang)
    except Exception as e:
        if classify(e)[0] == 503:
            raise PreventUpdate from None
        raise
    options = no_update if drawn and not drawn.get("stations") else [{"label": f"{s['name']} ({s['code']})", "value": s["code"]}
                                           for s in pic["stations"]]
    return (station_features(pic["stations"], lang), _summary(pic["summary"], lang),
            anomaly_items(pic["stale"], pic["flagged"], lang), options, *replay_badge(at, lang))


@callback(
    Output(ids.MONITOR_STATION, "value"),
    Input(ids.MONITOR_STATION_LAYER, "clickData"),
    prevent_initial_call=True,
)
def pick_station(feature: dict[str, Any] | None) -> Any:
    """A click on a station's circle selects it for the plot."""
    code = ((feature or {}).get("properties") or {}).get("code")
    if not code:
        raise PreventUpdate
    return code


@callback(
    Output(ids.MONITOR_PLOT, "figure"),
    Output(ids.MONITOR_PLOT_TITLE, "children"),
    Input(ids.MONITOR_STATION, "value"),
    Input(ids.MONITOR_TICK, "n_intervals"),
    Input(replay_id("monitor", "state"), "data"),
)
def plot(code: str | None, _tick: Any, replay: dict[str, Any] | None) -> tuple[Any, Any]:
    """The selected station's series with the rule thresholds drawn."""
    lang = current_lang()
    if not code:
        empty = go.Figure(layout={"height": 120, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
                                  "xaxis": {"visible": False}, "yaxis": {"visible": False},
                                  "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff"})
        return empty, t("monitor.station_hint", lang)
    if not allowed("read", EVERY_LAYER):  # as GET /monitor/stations/<code>/series
        return no_update, t("auth.not_allowed", lang)
    at = replay_time(replay) or datetime.now(UTC)
    try:
        with db_engine().connect() as conn:
            data = monitor.station_series(conn, code, now=at, lang=lang)
    except StoreError as e:
        return no_update, str(e)
    return series_figure(data, lang), t("monitor.plot_title", lang, name=data["name"], code=data["station"],
                                        kind=vocab_label("station_kind", data["kind"], lang))


@callback(
    Output(ids.MONITOR_STATUS, "children"),
    Output(ids.MONITOR_DECIDED, "data"),
    Input({"type": ids.MONITOR_CONFIRM, "id": ALL}, "n_clicks"),
    Input({"type": ids.MONITOR_DISMISS, "id": ALL}, "n_clicks"),
    State(ids.MONITOR_NOTE, "value"),
    State(ids.MONITOR_DECIDED, "data"),
    prevent_initial_call=True,
)
def decide(confirms: list[int | None], dismisses: list[int | None], note: str | None,
           decided: int | None) -> tuple[Any, Any]:
    """Confirm or dismiss the warning whose button was pressed (capability ``warn``, as the API)."""
    trig = _trigger()
    if not trig or not any((confirms or []) + (dismisses or [])):
        raise PreventUpdate
    lang = current_lang()
    if not allowed("warn"):
        return t("monitor.need_warn", lang), no_update
    action = monitor.confirm_warning if trig["type"] == ids.MONITOR_CONFIRM else monitor.dismiss_warning
    try:
        with db_engine().begin() as conn:
            out = action(conn, int(trig["id"]), user=current_user_name(), now=datetime.now(UTC),
                         note=(note or "").strip() or None)
    except StoreError as e:
        return t("monitor.decision_failed", lang, reason=str(e)), (decided or 0) + 1
    key = "monitor.confirmed" if out["action"] == "confirmed" else "monitor.dismissed"
    return t(key, lang, id=out["id"], by=out["by"]), (decided or 0) + 1


__all__ = ["anomaly_items", "decide", "layout", "pick_station", "plot", "queue_items", "refresh", "refresh_warnings",
           "series_figure", "station_features", "warning_layers"]
