"""Command-hall wall (``/wall``): live map with an H3 heatmap, hazard zones, annotations, KPI tiles, ticker, trend.

Made for a 1920x1080 or 3840x2160 screen left alone for hours: dark, no scrollbars (``assets/wall.css``), and it
updates itself without a reload.

How it stays live
-----------------
A clientside callback asks ``GET /api/v1/wall/version`` through ONE JavaScript function,
``window.sitroomWall.fetchVersion``: at once when the live push (``dashboards/components/live.py``, server-sent
events) announces a committed change, every :data:`PUSH_SAFETY_S` seconds while the push is up, and every second
while it is not (the poll is the fallback). Only when the store's ``cursor`` (version and oldest running
transaction: a change that commits late moves it too) moves (or after a reconnect, or once a minute for hazards that
expire with time) does it bump the ``refresh`` counter of the status store, and only that triggers :func:`refresh`,
the server callback that redraws KPIs, ticker, chart and map layers from
:func:`dashboards.services.wall.live_snapshot`: one picture per server process shared by every screen, at least as new as
the store when the screen asked. A failed poll never throws: it shows "connection lost,
last update HH:MM" and the next successful poll hides it and refreshes. :func:`refresh` itself answers "no update"
when the database is unreachable, so the last picture stays on screen.

Redraws are gated in the browser (``window.sitroomWall``): one redraw in flight at a time (a change that arrives
meanwhile marks the wall dirty and the tick after the redraw lands checks again), and a pushed change that touches
none of :data:`WALL_LAYERS` redraws nothing (its version counts as seen). ``window.sitroomWall.stats`` counts
checks, redraws, skipped and held pushes (tests, benchmarks).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any, Literal
from zoneinfo import ZoneInfo

import dash
import dash_leaflet as dl
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboards import ids
from dashboards.auth import EVERY_LAYER, allowed
from dashboards.components.basemap import base_map, leaflet_bbox
from dashboards.components.command_wall import (
    COMMAND_LAYERS,
    command_map_layer,
    command_overlay,
    register_command_panel,
)
from dashboards.components.live import live_id, live_source
from dashboards.components.maplayers import map_extras, map_kwargs, register_maps
from dashboards.components.mapstyle import LEVEL_COLOURS
from dashboards.components.monitor_tile import monitor_layer, monitor_tile, register_monitor_tile
from dashboards.components.replay import (
    register_replay,
    register_report_link,
    replay_badge,
    replay_controls,
    replay_id,
    replay_time,
)
from dashboards.components.sitrep_button import sitrep_button
from dashboards.context import API_PREFIX, db_engine, settings
from dashboards.errors import classify
from dashboards.i18n import current_lang, normalize_lang, t, vocab_label
from dashboards.services.wall import HEAT_MODES, live_snapshot, wall_snapshot

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/wall", name="wall", order=1, title=lambda: t("wall.title"))
register_replay("wall")
register_report_link("wall", ids.WALL_SITREP)
register_maps("wall", ids.WALL_MAP,
              overlays=("incidents_major", "resources_deployed", "incidents", "shelters", "resources",
                        "protection_targets", "impact_zones", "admin_regions"),
              checked=("incidents_major", "resources_deployed"), live=live_id("wall"),
              replay=replay_id("wall", "state"), hall=True)
register_monitor_tile(ids.WALL_STATUS, replay_id("wall", "state"))  # stations reporting, anomalies, pending warnings
register_command_panel()  # response banners, task counts, overdue actions, deployed resources' lines

#: the wall's clock and times are China Standard Time, like the hall it hangs in
DISPLAY_TZ = "Asia/Shanghai"
POLL_MS = 1000
FULL_REFRESH_S = 60
#: with live push up, the version is still checked this often (a missed event cannot leave the wall stale)
PUSH_SAFETY_S = 5
#: the layers the wall draws or counts: a pushed change of any other layer (protection targets, regions, ...)
#: does not redraw it
WALL_LAYERS = ("incidents", "hazards", "annotations", "shelters", "resources", "impact_zones", *COMMAND_LAYERS)
#: a redraw not finished after this long no longer blocks the next one (a lost response, a PreventUpdate)
REDRAW_TIMEOUT_S = 15
SEVERITIES = ("extraordinary", "major", "large", "general")
#: the closest the first view zooms in at 1920 px (the province, a prefecture), one more at 3840
FIT_MAX_ZOOM = 7
#: the replay window of the wall (after-action review of a drill)
REPLAY_HOURS = 6
#: the report button sized in rem, so it scales with the wall (16 px at 1920, 32 px at 3840)
SITREP_STYLE = {"fontSize": "0.95rem", "padding": "0.2rem 0.8rem", "borderRadius": "0.25rem"}
HEX_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
#: Extra panels of other concerns, each a function ``lang -> Dash component`` in a module of its own (with its own
#: callbacks), added here by one line and drawn in a box of its own: TOP_PANELS in a full-width row under the KPI
#: tiles (a banner such as the response level), SIDE_PANELS as tiles in the side column between the ticker and the
#: chart (monitoring, task counts). The grid gives each row its content's height and the ticker the rest, so adding
#: a panel needs no change of the layout (``assets/wall.css``, "panel slots").
TOP_PANELS: list[Callable[[str], Any]] = []
SIDE_PANELS: list[Callable[[str], Any]] = []
SYMBOLS = {"incident": "!", "fire": "▲", "flood": "≈", "collapse": "▼", "chemical": "☢", "command_post": "⚑",
           "shelter": "⌂", "medical_point": "✚", "roadblock": "⊘", "evacuation_route": "➜", "note": "•"}


def _kpi(label_key: str, lang: str, *values: Any, sub: Any = None, cls: str = "") -> html.Div:
    return html.Div(className=f"sr-wall-kpi {cls}".strip(), children=[
        html.Div(t(label_key, lang), className="sr-wall-kpi-label"),
        html.Div(list(values), className="sr-wall-kpi-value"),
        html.Div(sub, className="sr-wall-kpi-sub"),
    ])


def _num(id_: str) -> html.Span:
    return html.Span("—", id=id_, className="sr-wall-num")


def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    texts = {"lost": t("wall.connection_lost", lang, time="{time}"), "tz": DISPLAY_TZ,
             "locale": "zh-CN" if lang == "zh-CN" else "en-GB", "api": API_PREFIX,
             "full_refresh_s": FULL_REFRESH_S, "live": live_id("wall"), "push_safety_s": PUSH_SAFETY_S,
             "poll_ms": POLL_MS, "layers": list(WALL_LAYERS), "redraw_timeout_s": REDRAW_TIMEOUT_S,
             "replay": t("replay.badge", lang, time="{time}")}
    severity_chips = html.Div(className="sr-wall-sev", children=[
        html.Span([html.Span(t(f"wall.severity.{s}", lang), className="sr-wall-sev-label",
                             title=vocab_label("incident_severity", s, lang)),
                   html.Span("—", id=ids.wall_severity(s))],
                  className=f"sr-wall-sev-chip sev-{s}")
        for s in SEVERITIES])
    kpis = html.Div(id=ids.WALL_KPIS, className="sr-wall-kpis", children=[
        _kpi("wall.kpi.incidents", lang, _num(ids.WALL_KPI_INCIDENTS), sub=severity_chips, cls="kpi-incidents"),
        _kpi("wall.kpi.affected", lang, _num(ids.WALL_KPI_AFFECTED),
             sub=html.Span(t("wall.kpi.affected_note", lang), id=ids.WALL_KPI_AFFECTED_NOTE)),
        _kpi("wall.kpi.shelters", lang, _num(ids.WALL_KPI_SHELTER_FREE), html.Span(" / ", className="sr-wall-sep"),
             _num(ids.WALL_KPI_SHELTER_TOTAL),
             sub=html.Span(t("wall.kpi.shelters_note", lang, closed="—"), id=ids.WALL_KPI_SHELTER_NOTE)),
        _kpi("wall.kpi.resources", lang, _num(ids.WALL_KPI_RES_AVAILABLE), html.Span(" / ", className="sr-wall-sep"),
             _num(ids.WALL_KPI_RES_DEPLOYED), sub=t("wall.kpi.resources_note", lang)),
        monitor_tile(lang),
        html.Div(className="sr-wall-kpi sr-wall-clock-tile", children=[
            html.Div("--:--:--", id=ids.WALL_CLOCK, className="sr-wall-clock"),
            html.Div([t("wall.data_as_of", lang), " ", html.Span("--:--:--", id=ids.WALL_ASOF)],
                     className="sr-wall-kpi-sub"),
        ]),
    ])
    the_map = base_map(ids.WALL_MAP, dark=True, **map_kwargs("wall", lang), children=[
        dl.LayerGroup(id=ids.WALL_HEX_LAYER),
        dl.LayerGroup(id=ids.WALL_HAZARD_LAYER),
        dl.LayerGroup(id=ids.WALL_ZONE_LAYER),
        dl.LayerGroup(id=ids.WALL_ANNOTATION_LAYER),
        dl.LayerGroup(id=ids.WALL_FLASH_LAYER),
        monitor_layer(),
        command_map_layer(),
    ])
    heat = dcc.RadioItems(id=ids.WALL_HEAT, value="incidents", inline=True, className="sr-wall-heat",
                          options=[{"label": t(f"wall.heat.{m}", lang), "value": m} for m in HEAT_MODES])
    chart = dcc.Graph(id=ids.WALL_CHART, className="sr-wall-chart", figure=_empty_figure(),
                      config={"displayModeBar": False, "staticPlot": False, "responsive": True})
    return html.Div(id=ids.WALL_ROOT, className="sr-wall", lang=lang, children=[
        dcc.Store(id=ids.WALL_TEXT, data=texts),
        dcc.Store(id=ids.WALL_STATUS, data=None),
        dcc.Store(id=ids.WALL_DRAWN, data=None),
        dcc.Store(id=ids.WALL_DRAWN_ACK, data=None),
        dcc.Store(id=ids.WALL_SCALE, data=None),
        dcc.Interval(id=ids.WALL_POLL, interval=POLL_MS),
        live_source("wall"),  # push (SSE): see "Live push" below
        html.Div(id=ids.WALL_BANNER, className="sr-wall-banner sr-hidden", role="alert"),
        kpis,
        # extra panels of other concerns: a full-width row under the KPIs (e.g. the response level) ...
        html.Div([_panel(make, lang) for make in TOP_PANELS], className="sr-wall-banners"),
        html.Div(className="sr-wall-map", children=[
            the_map, *map_extras("wall", lang),
            html.Div(id=ids.WALL_ALERT, className="sr-wall-alert sr-hidden", role="alert"),
            html.Div(className="sr-wall-map-top", children=[
                sitrep_button(id=ids.WALL_SITREP, lang=lang, style=SITREP_STYLE),
            ]),
            html.Div("", id=ids.WALL_REPLAY_BADGE, className="sr-replay-badge sr-hidden", role="status"),
            command_overlay(lang),
            html.Div(className="sr-wall-map-tools", children=[
                heat, html.Div(id=ids.WALL_LEGEND, className="sr-wall-legend"),
                html.Div(level_legend(lang), id=ids.WALL_LEVEL_LEGEND, className="sr-wall-legend")]),
            html.Div(replay_controls("wall", hours=REPLAY_HOURS, lang=lang, speed=60), className="sr-wall-replay"),
        ]),
        html.Div(className="sr-wall-side", children=[
            html.H2(t("wall.ticker", lang), className="sr-wall-h"),
            html.Ul(id=ids.WALL_TICKER, className="sr-wall-ticker"),
            # ... and tiles in the side column, between the ticker and the chart (e.g. monitoring, tasks)
            html.Div([_panel(make, lang) for make in SIDE_PANELS], className="sr-wall-panels"),
            html.H2(t("wall.chart", lang), className="sr-wall-h"),
            chart,
        ]),
    ])


def _panel(make: Callable[[str], Any], lang: str) -> html.Div:
    """One extra panel in its own box (its own grid cell): whatever ``make(lang)`` returns."""
    return html.Div(make(lang), className="sr-wall-panel")


def level_legend(lang: str) -> list[Any]:
    """The four warning levels and their colours (the hazard zones on the map)."""
    items: list[Any] = [html.Span(t("wall.legend.levels", lang), className="sr-wall-legend-title")]
    for level in ("red", "orange", "yellow", "blue"):
        items.append(html.Span([html.I(style={"background": LEVEL_COLOURS[level]}),
                                vocab_label("warning_level", level, lang)], className="sr-wall-legend-item"))
    items.append(html.Span([html.I(className="sr-wall-zone-swatch"), t("wall.legend.zones", lang)],
                           className="sr-wall-legend-item"))
    return items


# ------------------------------------------------------------------------------------------------ polling (browser)
# The IIFE defines window.sitroomWall once (when Dash loads the page's callbacks) and returns the callback function.
dash.clientside_callback(
    """
    (function () {
      const W = window.sitroomWall = window.sitroomWall || {};
      /* The ONE place that asks the server whether the data changed (the live-push issue swaps this for SSE).
         Resolves to {version, time} or rejects; never leaves a request hanging for more than 4 s. */
      W.fetchVersion = function (api) {
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), 4000);
        return fetch(api + "/wall/version", {cache: "no-store", signal: ctl.signal, credentials: "same-origin"})
          .then(r => { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
          .finally(() => clearTimeout(timer));
      };
      W.hhmm = function (ms, txt, seconds) {
        const o = {hour: "2-digit", minute: "2-digit", hour12: false, timeZone: txt.tz};
        if (seconds) { o.second = "2-digit"; }
        return new Date(ms).toLocaleTimeString(txt.locale, o);
      };
      return async function (n, live, txt, status) {
        const nu = window.dash_clientside.no_update;
        const prev = status || {ok: null, version: null, refresh: 0, last_full: 0};
        const now = Date.now();
        /* Live push: while the event stream is up, a change event triggers this at once and the 1 s tick only
           moves the "as of" time; the version is still checked every PUSH_SAFETY_S (and every tick without push).
           A change within POLL_MS of the last check only marks the wall dirty and the next tick checks: a burst of
           changes redraws at most once per tick, as polling does, instead of restarting the redraw on every event. */
        const trig = ((window.dash_clientside.callback_context || {}).triggered || []).map(t => t.prop_id || "");
        const pushed = trig.some(p => p.indexOf(txt.live + ".") === 0);
        const st = W.stats = W.stats || {checks: 0, redraws: 0, skipped: 0, held: 0};
        /* A pushed change of layers the wall does not show (protection targets, regions, ...) redraws
           nothing: its version is remembered as "seen", so the next version check does not redraw for it either. */
        if (pushed && live && !live.full && (live.layers || []).length
            && !(live.layers || []).some(l => txt.layers.indexOf(l) >= 0)) {
          st.skipped += 1;
          if (!W.dirty && !W.inFlight && prev.ok === true && typeof live.version === "number") {
            W.seenKey = String(live.cursor || live.version) + "|" + String(prev.version || "").split("|")[1];
          }
          return [nu, nu, nu, nu];
        }
        /* One redraw in flight at a time: while the server draws, changes only mark the wall dirty; the tick after
           the redraw lands (WALL_DRAWN) checks again. A redraw that never lands stops blocking after a while. */
        /* "data as of" moves only while the figures on screen are the store's: after a failed redraw it stays at the
           last good picture (the alert banner says why) */
        const asofNow = () => W.drawFailed ? nu : W.hhmm(now, txt, true);
        if (W.inFlight && now - W.inFlight > txt.redraw_timeout_s * 1000) { W.inFlight = 0; }
        if (W.inFlight) {
          if (pushed) { W.dirty = true; st.held += 1; }
          return [nu, nu, nu, pushed ? nu : asofNow()];
        }
        if (pushed && now - (W.lastCheck || 0) < txt.poll_ms) {
          W.dirty = true;
          return [nu, nu, nu, nu];
        }
        const dirty = W.dirty;
        W.dirty = false;
        if (!pushed && !dirty && live && live.connected && prev.ok === true
            && (now - (W.lastCheck || 0)) < txt.push_safety_s * 1000
            && (now - (prev.last_full || 0)) <= txt.full_refresh_s * 1000) {
          W.lastOk = now;
          return [nu, nu, nu, asofNow()];
        }
        W.lastCheck = now;
        let v;
        try {
          v = await W.fetchVersion(txt.api);
        } catch (e) {
          W.inFlight = 0;  /* the redraw cannot land either; the first good check after the outage redraws */
          const when = W.lastOk ? W.hhmm(W.lastOk, txt, false) : "--:--";
          const banner = txt.lost.replace("{time}", when);
          if (prev.ok === false) { return [nu, banner, nu, nu]; }
          return [Object.assign({}, prev, {ok: false}), banner, "sr-wall-banner", nu];
        }
        const key = String(v.cursor || v.version) + "|" + String(v.population || "");
        const stale = (now - (prev.last_full || 0)) > txt.full_refresh_s * 1000;
        const asof = asofNow();
        W.lastOk = now;
        st.checks += 1;
        if (prev.ok === true && (prev.version === key || W.seenKey === key) && !stale) {
          return [nu, nu, nu, asof];
        }
        W.seenKey = null;
        W.inFlight = now;
        st.redraws += 1;
        const next = {ok: true, version: key, refresh: (prev.refresh || 0) + 1, last_full: now};
        return [next, "", "sr-wall-banner sr-hidden", asof];
      };
    })()
    """,
    Output(ids.WALL_STATUS, "data"),
    Output(ids.WALL_BANNER, "children"),
    Output(ids.WALL_BANNER, "className"),
    Output(ids.WALL_ASOF, "children"),
    Input(ids.WALL_POLL, "n_intervals"),
    Input(live_id("wall"), "data"),
    State(ids.WALL_TEXT, "data"),
    State(ids.WALL_STATUS, "data"),
)

dash.clientside_callback(
    """
    function (drawn) {
      const W = window.sitroomWall;
      if (W) {
        W.inFlight = 0;  /* the redraw landed: the next tick may check (and redraw) again */
        W.drawFailed = !!(drawn && drawn.ok === false);
        if (W.drawFailed) { W.dirty = true; }  /* try again at the next tick */
      }
      return window.dash_clientside.no_update;
    }
    """,
    Output(ids.WALL_DRAWN_ACK, "data"),
    Input(ids.WALL_DRAWN, "data"),
    prevent_initial_call=True,
)

dash.clientside_callback(
    """
    function (n, prev) {
      /* the wall's scale: 1 at 1920 px wide, 2 at 3840 (the server sizes the chart's fonts and markers by it) */
      const s = Math.round(Math.max(1, (window.innerWidth || 1920) / 1920) * 100) / 100;
      return s === prev ? window.dash_clientside.no_update : s;
    }
    """,
    Output(ids.WALL_SCALE, "data"),
    Input(ids.WALL_POLL, "n_intervals"),
    State(ids.WALL_SCALE, "data"),
)

dash.clientside_callback(
    """
    function (n, txt, replay) {
      /* the hall's clock; while the wall replays the past it shows the replayed time, labelled as a replay */
      if (!window.sitroomWall || !window.sitroomWall.hhmm || !txt) { return window.dash_clientside.no_update; }
      const at = replay && replay.mode === "replay" && replay.at ? Date.parse(replay.at) : NaN;
      if (!isNaN(at)) { return txt.replay.replace("{time}", window.sitroomWall.hhmm(at, txt, true)); }
      return window.sitroomWall.hhmm(Date.now(), txt, true);
    }
    """,
    Output(ids.WALL_CLOCK, "children"),
    Input(ids.WALL_POLL, "n_intervals"),
    State(ids.WALL_TEXT, "data"),
    State(replay_id("wall", "state"), "data"),
)


# ------------------------------------------------------------------------------------------------ formatting (server)
def _fmt_int(n: Any) -> str:
    return "—" if n is None else f"{int(round(float(n))):,}"


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(DISPLAY_TZ))


def _empty_figure(scale: float = 1.0) -> go.Figure:
    """The chart's frame; text sized for a 1920-pixel wall times ``scale`` (2 at 3840 px)."""
    fig = go.Figure()
    fig.update_layout(template="plotly_dark", paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
                      margin={"l": round(44 * scale), "r": round(10 * scale), "t": round(10 * scale),
                              "b": round(34 * scale)}, barmode="stack", autosize=True,
                      legend={"orientation": "h", "y": -0.2, "font": {"size": round(13 * scale)}},
                      font={"size": round(14 * scale)})
    return fig


def hourly_figure(hourly: dict[str, Any], *, lang: str = "zh-CN", scale: float = 1.0) -> go.Figure:
    """Stacked bars of incidents per hour and kind (times in :data:`DISPLAY_TZ`, the day shown where it turns)."""
    fig = _empty_figure(scale)
    days = [_local(b) for b in hourly["bins"]]
    x = [d.strftime("%H:00") if i and d.hour else (d.strftime("%m-%d %H:00") if lang == "en" else
                                                     f"{d.month}月{d.day}日 {d.hour:02d}时")
         for i, d in enumerate(days)]
    for kind, counts in hourly["counts"].items():
        fig.add_bar(x=x, y=counts, name=hourly["labels"].get(kind, kind))
    fig.update_xaxes(type="category", tickangle=0, nticks=6)
    return fig


def hex_classes(values: list[float]) -> list[float]:
    """Lower bounds of up to 6 colour classes: 0, then 1/32, 1/16, 1/8, 1/4, 1/2 of the largest value, rounded
    up to whole numbers (counts and people are whole) and without repeats.

    Examples
    --------
    >>> hex_classes([1, 64])
    [0.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    >>> hex_classes([1, 1]), hex_classes([1, 3]), hex_classes([])
    ([0.0, 1.0], [0.0, 1.0, 2.0], [0.0])
    """
    top = max(values, default=0.0)
    if top <= 0:
        return [0.0]
    return sorted({0.0} | {float(max(1, math.ceil(top / 2 ** k))) for k in (5, 4, 3, 2, 1)})


def hex_colour(i: int, n: int) -> str:
    """Colour of class ``i`` of ``n``: the hottest classes take the reddest colours."""
    return HEX_COLOURS[len(HEX_COLOURS) - n + i]


def hex_layers(hexes: dict[str, Any]) -> tuple[list[Any], list[float]]:
    """One GeoJSON layer per colour class (static styles: nothing to evaluate in the browser) and the class bounds."""
    feats = hexes["features"]
    bounds = hex_classes([f["properties"]["value"] for f in feats])
    groups: list[list[dict[str, Any]]] = [[] for _ in bounds]
    for f in feats:
        v = f["properties"]["value"]
        k = max(i for i, b in enumerate(bounds) if v >= b)
        groups[k].append(f)
    n = len(bounds)
    layers = [dl.GeoJSON(data={"type": "FeatureCollection", "features": g}, interactive=False,
                         style={"color": hex_colour(i, n), "weight": 0.5, "fillColor": hex_colour(i, n),
                                "fillOpacity": 0.35 + 0.08 * (len(HEX_COLOURS) - n + i), "opacity": 0.6})
              for i, g in enumerate(groups) if g]
    return layers, bounds


def hazard_layers(hazards: dict[str, Any], lang: str) -> list[Any]:
    """Hazard zones by warning level, lowest level drawn first so red lies on top."""
    out = []
    for level in ("blue", "yellow", "orange", "red"):
        feats = []
        for f in hazards["features"]:
            if f["properties"]["warning_level"] == level:
                p = dict(f["properties"])
                # a tooltip string is HTML to Leaflet: text from the store is escaped (a CAP headline is a name)
                p["tooltip"] = escape(f"{p.get('name') or ''} · {vocab_label('hazard_kind', p['kind'], lang)} · "
                                      f"{vocab_label('warning_level', level, lang)}")
                feats.append({**f, "properties": p})
        if feats:
            c = LEVEL_COLOURS[level]
            out.append(dl.GeoJSON(data={"type": "FeatureCollection", "features": feats},
                                  style={"color": c, "weight": 2, "fillColor": c, "fillOpacity": 0.22,
                                         "opacity": 0.9}))
    return out


def annotation_layers(annotations: dict[str, Any], lang: str, *, scale: float = 1.0) -> list[Any]:
    """Analysts' annotations: a coloured circle with a permanent label (symbol + text) at points, styled shapes."""
    out: list[Any] = []
    for f in annotations["features"]:
        p, g = f["properties"], f["geometry"]
        colour = p.get("color") or "#e53935"
        symbol = p.get("symbol") or "note"
        text = f"{SYMBOLS.get(symbol, '•')} {p.get('label') or vocab_label('annotation_symbol', symbol, lang)}"
        if g["type"] == "Point":
            lon, lat = g["coordinates"][:2]
            out.append(dl.CircleMarker(center=[lat, lon], radius=7 * scale, color="#ffffff", weight=2 * scale,
                                       fillColor=colour,
                                       fillOpacity=0.95, children=dl.Tooltip(
                                           text, permanent=True, direction="right", className="sr-wall-note")))
        else:
            out.append(dl.GeoJSON(data={"type": "FeatureCollection", "features": [
                {**f, "properties": {"tooltip": escape(text)}}]}, style={"color": colour, "weight": 3, "fillOpacity": 0.1,
                                                                 "fillColor": colour}))
    return out


def ticker_items(ticker: list[dict[str, Any]]) -> list[Any]:
    """One row per incident: time, kind, name and where (county); never cut (rows wrap, a row that does not fit is
    hidden whole). A new 重大/特别重大 incident flashes for the rest of its minute (``flash_s``, a CSS animation of that
    many one-second steps), then stays as the others."""
    out = []
    for r in ticker:
        flash = float(r.get("flash_s") or 0)
        style = {"animationIterationCount": max(1, math.ceil(flash))} if flash > 0 else None
        out.append(html.Li(className=f"sr-wall-tick sev-{r['severity']}" + (" sr-wall-flash" if flash > 0 else ""),
                           style=style, title=str(r["id"]), children=[
            html.Span(_local(r["occurred_at"]).strftime("%H:%M"), className="sr-wall-tick-time"),
            html.Span(r["kind_label"], className="sr-wall-tick-kind"),
            html.Span([html.Span(r["name"] or "", className="sr-wall-tick-name"),
                       html.Span(r.get("where") or "", className="sr-wall-tick-where")],
                      className="sr-wall-tick-what"),
        ]))
    return out


def flash_layers(ticker: list[dict[str, Any]], scale: float) -> list[Any]:
    """A pulsing ring on the map around each flashing incident of the ticker."""
    return [dl.CircleMarker(center=[r["lat"], r["lon"]], radius=14 * scale, color="#ff1744", weight=3 * scale,
                            fillOpacity=0.15, className="sr-wall-flash-marker", interactive=False)
            for r in ticker if float(r.get("flash_s") or 0) > 0 and r.get("lat") is not None]


def zone_layers(zones: dict[str, Any]) -> list[Any]:
    """Published impact zones: dashed outlines, lightly filled."""
    if not zones.get("features"):
        return []
    feats = [{**f, "properties": {**f["properties"], "tooltip": f["properties"].get("name") or ""}}
             for f in zones["features"]]
    return [dl.GeoJSON(data={"type": "FeatureCollection", "features": feats},
                       style={"color": "#e040fb", "weight": 2, "dashArray": "8 6", "fillColor": "#e040fb",
                              "fillOpacity": 0.08, "opacity": 0.9})]


def alert(skipped: list[dict[str, Any]] | None, lang: str) -> tuple[str, str]:
    """Text and class of the alert banner for the features the picture could not compute (hidden when none): the
    first three by layer, name and reason (in the page's language), then how many more."""
    if not skipped:
        return "", "sr-wall-alert sr-hidden"
    shown = [f"{_layer_label(str(s.get('layer') or ''), lang)} {s.get('name') or '#' + str(s.get('id'))}"
             f" ({_reason_label(s.get('reason'), lang)})" for s in skipped[:3]]
    more = t("wall.alert.more", lang, n=len(skipped) - 3) if len(skipped) > 3 else ""
    return t("wall.alert.skipped", lang, n=len(skipped), items="; ".join(shown) + more), "sr-wall-alert"


#: reasons of :mod:`layers.read.skips` the banner names in the page's language (its code, before the first colon);
#: any other says "could not be computed" (the full reason is in the snapshot and the server's log)
SKIP_REASONS = ("area_too_large", "outside_service_area")


def _reason_label(reason: Any, lang: str) -> str:
    code = str(reason or "").split(":", 1)[0].strip()
    return t(f"wall.alert.reason.{code if code in SKIP_REASONS else 'other'}", lang)


def _layer_label(layer: str, lang: str) -> str:
    text = t(f"layer.{layer}", lang)
    return layer if text == f"layer.{layer}" else text


def fit_viewport(extent: list[float] | None, service_area: tuple[float, ...] | list[float], *,
                 scale: float = 1.0) -> dict[str, Any]:
    """The map's first view: the picture's extent (hazards in force, active incidents) within the service area, or
    the service area when there is nothing to show. Leaflet picks the zoom for the screen (one more at 3840 px),
    at most :data:`FIT_MAX_ZOOM` (+1 at 3840): the wall is an overview, and a handful of features close together
    must not zoom it down to a street.

    >>> fit_viewport([110, 40, 112, 41], (97, 37, 126, 53))["bounds"]
    [[40, 110], [41, 112]]
    >>> fit_viewport(None, (97, 37, 126, 53))["bounds"]
    [[37, 97], [53, 126]]
    """
    w, s, e, n = service_area
    if extent:
        w, s, e, n = max(extent[0], w), max(extent[1], s), min(extent[2], e), min(extent[3], n)
        if w >= e or s >= n:
            w, s, e, n = service_area
    max_zoom = FIT_MAX_ZOOM + max(0, round(math.log2(max(scale, 1.0))))
    return {"bounds": [[s, w], [n, e]], "transition": "fitBounds",
            "options": {"padding": [24, 24], "maxZoom": max_zoom}}


def legend(bounds: list[float], heat: str, lang: str) -> list[Any]:
    items = [html.Span(t(f"wall.legend.{heat}", lang), className="sr-wall-legend-title")]
    for i, b in enumerate(bounds):
        items.append(html.Span([html.I(style={"background": hex_colour(i, len(bounds))}), f"≥ {_fmt_int(b)}" if b > 0 else "> 0"],
                               className="sr-wall-legend-item"))
    return items


#: what :func:`refresh` draws, in the order of its return value (:func:`refresh_outputs`)
_REFRESH_OUTPUTS = [
    Output(ids.WALL_KPI_INCIDENTS, "children"),
    *[Output(ids.wall_severity(s), "children") for s in SEVERITIES],
    Output(ids.WALL_KPI_AFFECTED, "children"),
    Output(ids.WALL_KPI_SHELTER_FREE, "children"),
    Output(ids.WALL_KPI_SHELTER_TOTAL, "children"),
    Output(ids.WALL_KPI_SHELTER_NOTE, "children"),
    Output(ids.WALL_KPI_RES_AVAILABLE, "children"),
    Output(ids.WALL_KPI_RES_DEPLOYED, "children"),
    Output(ids.WALL_TICKER, "children"),
    Output(ids.WALL_CHART, "figure"),
    Output(ids.WALL_HEX_LAYER, "children"),
    Output(ids.WALL_HAZARD_LAYER, "children"),
    Output(ids.WALL_ZONE_LAYER, "children"),
    Output(ids.WALL_ANNOTATION_LAYER, "children"),
    Output(ids.WALL_FLASH_LAYER, "children"),
    Output(ids.WALL_LEGEND, "children"),
    Output(ids.WALL_ALERT, "children"),
    Output(ids.WALL_ALERT, "className"),
    Output(ids.WALL_MAP, "viewport"),
    Output(ids.WALL_DRAWN, "data"),
    Output(ids.WALL_REPLAY_BADGE, "children"),
    Output(ids.WALL_REPLAY_BADGE, "className"),
    Output(ids.WALL_REPLAY_BADGE, "title"),
]


def refresh_outputs() -> list[Output]:
    """The outputs of :func:`refresh`, in the order of its return value (tests map them by component id)."""
    return list(_REFRESH_OUTPUTS)


def _outputs(values: dict[tuple[str, str], Any]) -> tuple[Any, ...]:
    """``{(component id, property): value}`` in the order of :data:`_REFRESH_OUTPUTS`; the rest stay as they are."""
    return tuple(values.get((str(o.component_id), o.component_property), no_update) for o in _REFRESH_OUTPUTS)


@callback(
    *_REFRESH_OUTPUTS,
    Input(ids.WALL_STATUS, "data"),
    Input(ids.WALL_HEAT, "value"),
    Input(ids.WALL_MAP, "zoom"),
    Input(ids.WALL_MAP, "bounds"),
    State(ids.WALL_TEXT, "data"),
    Input(replay_id("wall", "state"), "data"),
    State(ids.WALL_SCALE, "data"),
    State(ids.WALL_DRAWN, "data"),
    prevent_initial_call=True,
)
def refresh(status: dict[str, Any] | None, heat: str | None, zoom: float | None, bounds: Any,
            texts: dict[str, Any] | None, replay: dict[str, Any] | None = None, scale: float | None = None,
            drawn: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """Redraw everything from one snapshot; keep the last picture (no update) when the database is unreachable.

    In replay mode (``replay`` is the state of :func:`~dashboards.components.replay.replay_controls`) the snapshot
    is the picture at the replay time (KPIs included) and a "回放 HH:MM" badge lies over the map; live changes do
    not redraw it (the "● Live" button goes back to the live picture).

    Never blank figures under a fresh "as of": when the picture cannot be drawn at all, the last one stays with an
    alert banner saying since when (and the browser stops moving "data as of", see ``W.drawFailed``); features the
    picture could not compute (the snapshot's ``skipped``: layer, id, name, reason) are listed in the same banner.
    The first picture fits the map to what it shows (:func:`fit_viewport`); ``scale`` (viewport width / 1920)
    sizes the chart's text and the markers for a 3840-pixel wall.
    """
    at = replay_time(replay)
    if at is None and (not status or not status.get("ok")):
        raise PreventUpdate
    if at is not None and _triggered() == {ids.WALL_STATUS}:
        raise PreventUpdate  # a live change while the wall replays the past
    lang = current_lang()
    if not allowed("read", EVERY_LAYER):  # as GET /wall/snapshot; the callback policy refuses first, this covers
        return _outputs({(ids.WALL_ALERT, "children"): t("auth.not_allowed", lang),  # a call that bypasses it
                         (ids.WALL_ALERT, "className"): "sr-wall-alert"})
    mode: Literal["incidents", "population"] = "population" if heat == "population" else "incidents"
    k_scale = min(max(float(scale or 1.0), 1.0), 4.0)
    # a 3840 wall sits one zoom in to show what a 1920 wall shows at twice the size (basemap, symbols): its hexes
    # and simplification are those of the 1920 wall's zoom (and its picture is the one they share)
    if zoom is not None:
        zoom = zoom - round(math.log2(k_scale))
    try:
        if at is None:  # the live picture, shared with every other screen of this process
            snap = live_snapshot(db_engine(), zoom=zoom, bbox=leaflet_bbox(bounds), heat=mode, lang=lang).value
        else:
            with db_engine().connect() as conn:
                snap = wall_snapshot(conn, zoom=zoom, bbox=leaflet_bbox(bounds), heat=mode, lang=lang, at=at)
    except Exception as e:  # whatever failed (log.exception), the hall sees a banner, never a blank picture
        if classify(e)[0] == 503:
            raise PreventUpdate from None  # the poll shows "connection lost"; the last picture stays
        log.exception("wall: the picture could not be drawn")
        last = (drawn or {}).get("time")
        since = _local(last).strftime("%H:%M:%S") if last else "--:--:--"
        return _outputs({(ids.WALL_ALERT, "children"): t("wall.alert.failed", lang, time=since),
                         (ids.WALL_ALERT, "className"): "sr-wall-alert",
                         (ids.WALL_DRAWN, "data"): {**(drawn or {}), "ok": False, "drawn_at": time.time(),
                                                    "redraw": (status or {}).get("refresh")}})
    if snap.get("no_record"):
        return _outputs(_no_record(snap, at, lang, status))
    k = snap["kpis"]
    hexes, bounds_ = hex_layers(snap["hexes"])
    alert_text, alert_class = alert(snap.get("skipped"), lang)
    fit = at is None and not (drawn or {}).get("fitted")
    values: dict[tuple[str, str], Any] = {
        (ids.WALL_KPI_INCIDENTS, "children"): _fmt_int(k["incidents"]["active"]),
        **{(ids.wall_severity(s), "children"): _fmt_int(k["incidents"]["by_severity"].get(s, 0)) for s in SEVERITIES},
        (ids.WALL_KPI_AFFECTED, "children"): _fmt_int(k["affected"]["total"]),
        (ids.WALL_KPI_SHELTER_FREE, "children"): _fmt_int(k["shelters"]["free"]),
        (ids.WALL_KPI_SHELTER_TOTAL, "children"): _fmt_int(k["shelters"]["total"]),
        (ids.WALL_KPI_SHELTER_NOTE, "children"): t("wall.kpi.shelters_note", lang,
                                                   closed=_fmt_int(k["shelters"].get("closed_places"))),
        (ids.WALL_KPI_RES_AVAILABLE, "children"): _fmt_int(k["resources"].get("available", 0)),
        (ids.WALL_KPI_RES_DEPLOYED, "children"): _fmt_int(k["resources"].get("deployed", 0)),
        (ids.WALL_TICKER, "children"): ticker_items(snap["ticker"]),
        (ids.WALL_CHART, "figure"): hourly_figure(snap["hourly"], lang=lang, scale=k_scale),
        (ids.WALL_HEX_LAYER, "children"): hexes,
        (ids.WALL_HAZARD_LAYER, "children"): hazard_layers(snap["hazards"], lang),
        (ids.WALL_ZONE_LAYER, "children"): zone_layers(snap.get("impact_zones") or {}),
        (ids.WALL_ANNOTATION_LAYER, "children"): annotation_layers(snap["annotations"], lang, scale=k_scale),
        (ids.WALL_FLASH_LAYER, "children"): flash_layers(snap["ticker"], k_scale),
        (ids.WALL_LEGEND, "children"): legend(bounds_, mode, lang),
        (ids.WALL_ALERT, "children"): alert_text,
        (ids.WALL_ALERT, "className"): alert_class,
        # "redraw" makes every landing a new value: an unchanged one would not fire the "landed" callback, and the
        # next redraw would wait REDRAW_TIMEOUT_S (two redraws can draw the same shared picture)
        (ids.WALL_DRAWN, "data"): {"ok": True, "version": snap["version"], "hexes": len(snap["hexes"]["features"]),
                                   "res": snap["hexes"]["res"], "heat": mode, "time": snap["time"],
                                   "replay": None if at is None else snap["time"], "fitted": bool(
                                       (drawn or {}).get("fitted") or fit),
                                   "skipped": len(snap.get("skipped") or []),
                                   "redraw": (status or {}).get("refresh"), "drawn_at": time.time()},
    }
    if fit:
        values[(ids.WALL_MAP, "viewport")] = fit_viewport(snap.get("extent"), settings().service_area,
                                                          scale=k_scale)
    badge = replay_badge(at, lang)
    for prop, v in zip(("children", "className", "title"), badge, strict=True):
        values[(ids.WALL_REPLAY_BADGE, prop)] = v
    return _outputs(values)


def _no_record(snap: dict[str, Any], at: datetime | None, lang: str, status: dict[str, Any] | None
               ) -> dict[tuple[str, str], Any]:
    """A replayed time before the history's first record: dashes, empty map and the banner "no record before T"."""
    first = snap.get("recorded_from")
    since = _local(first).strftime("%m-%d %H:%M") if first else "—"
    dash_ = "—"
    values: dict[tuple[str, str], Any] = {
        **{(str(o.component_id), "children"): dash_ for o in _REFRESH_OUTPUTS if str(o.component_id) in (
            ids.WALL_KPI_INCIDENTS, ids.WALL_KPI_AFFECTED, ids.WALL_KPI_SHELTER_FREE, ids.WALL_KPI_SHELTER_TOTAL,
            ids.WALL_KPI_RES_AVAILABLE, ids.WALL_KPI_RES_DEPLOYED, *[ids.wall_severity(s) for s in SEVERITIES])},
        (ids.WALL_KPI_SHELTER_NOTE, "children"): "",
        (ids.WALL_TICKER, "children"): [], (ids.WALL_CHART, "figure"): _empty_figure(),
        **{(i, "children"): [] for i in (ids.WALL_HEX_LAYER, ids.WALL_HAZARD_LAYER, ids.WALL_ZONE_LAYER,
                                          ids.WALL_ANNOTATION_LAYER, ids.WALL_FLASH_LAYER, ids.WALL_LEGEND)},
        (ids.WALL_ALERT, "children"): t("wall.alert.no_record", lang, time=since),
        (ids.WALL_ALERT, "className"): "sr-wall-alert",
        (ids.WALL_DRAWN, "data"): {"ok": True, "version": snap["version"], "time": snap["time"], "fitted": True,
                                   "replay": snap["time"], "no_record": True,
                                   "redraw": (status or {}).get("refresh"), "drawn_at": time.time()},
    }
    for prop, v in zip(("children", "className", "title"), replay_badge(at, lang), strict=True):
        values[(ids.WALL_REPLAY_BADGE, prop)] = v
    return values


def _triggered() -> set[str]:
    """Ids of the inputs that fired this callback (empty outside a callback, e.g. in tests)."""
    try:
        return {str(p["prop_id"]).split(".")[0] for p in dash.callback_context.triggered}
    except Exception:  # noqa: BLE001 - no callback context (plain-function tests)
        return set()


__all__ = [
    "annotation_layers",
    "hazard_layers",
    "hex_classes",
    "hex_layers",
    "hourly_figure",
    "layout",
    "legend",
    "refresh",
    "ticker_items",
]
