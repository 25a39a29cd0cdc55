"""The wall's monitoring tile and map layer: "stations reporting n/N, anomalies k, awaiting confirmation p", and the
automatic warnings awaiting a person drawn distinctly (dashed) on the wall's map.

Public: :data:`REFRESH_S`, :func:`monitor_tile`, :func:`monitor_layer`, :func:`register_monitor_tile`,
:func:`pending_layers`, :func:`tile_values`.

A page includes it with one line in its KPI row (``monitor_tile(lang)``), one in its map (``monitor_layer()``) and
one at module level (``register_monitor_tile(status_id, replay_state_id)``): the tile redraws when the page's status
store changes (the wall's data version moved), every :data:`REFRESH_S` seconds (stations go stale with time), and at
the replay's instant in replay mode. The numbers come from :func:`dashboards.services.monitor.wall_counts`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_leaflet as dl
from dash import Input, Output, callback, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import ids
from dashboards.auth import EVERY_LAYER, allowed
from dashboards.components.replay import replay_time
from dashboards.context import db_engine
from dashboards.errors import classify
from dashboards.i18n import current_lang, t
from dashboards.services.monitor import LEVEL_COLOURS, wall_counts, warning_features

__all__ = ["REFRESH_S", "monitor_tile", "monitor_layer", "register_monitor_tile", "pending_layers", "tile_values"]

#: the tile redraws at least this often (a station goes stale without any change to the store)
REFRESH_S = 30


def monitor_tile(lang: str) -> html.Div:
    """The KPI tile (same look as the wall's other tiles)."""
    def num(id_: str) -> html.Span:
        return html.Span("—", id=id_, className="sr-wall-num")

    return html.Div(id=ids.WALL_MONITOR_TILE, className="sr-wall-kpi sr-wall-monitor", children=[
        html.Div(t("monitor.tile.title", lang), className="sr-wall-kpi-label"),
        html.Div([num(ids.WALL_MONITOR_REPORTING), html.Span(" / ", className="sr-wall-sep"),
                  num(ids.WALL_MONITOR_STATIONS)], className="sr-wall-kpi-value", title=t("monitor.tile.reporting", lang)),
        html.Div(className="sr-wall-kpi-sub sr-wall-monitor-sub", children=[
            html.Span([t("monitor.tile.anomalies", lang), " ", html.B("—", id=ids.WALL_MONITOR_ANOMALIES)]),
            html.Span([t("monitor.tile.pending", lang), " ", html.B("—", id=ids.WALL_MONITOR_PENDING)],
                      className="sr-wall-monitor-pending"),
        ]),
        dcc.Interval(id=ids.WALL_MONITOR_TICK, interval=REFRESH_S * 1000),
    ])


def monitor_layer() -> dl.LayerGroup:
    """The map layer of the automatic warnings awaiting a person."""
    return dl.LayerGroup(id=ids.WALL_MONITOR_LAYER)


def pending_layers(features: dict[str, Any], lang: str) -> list[Any]:
    """Pending automatic warnings by level, dashed outlines, lowest level first (red on top)."""
    out = []
    for level in ("blue", "yellow", "orange", "red"):
        feats = []
        for f in features["features"]:
            p = f["properties"]
            if p["status"] == "pending" and p["warning_level"] == level:
                tip = f"{t('monitor.pending_badge', lang)} · {p['name']}"
                feats.append({**f, "properties": {"tooltip": tip, "id": p["id"]}})
        if feats:
            c = LEVEL_COLOURS[level]
            out.append(dl.GeoJSON(data={"type": "FeatureCollection", "features": feats},
                                  style={"color": c, "weight": 2.5, "dashArray": "6 5", "fillColor": c,
                                         "fillOpacity": 0.08, "opacity": 1.0}))
    return out


def tile_values(counts: dict[str, Any]) -> tuple[str, str, str, str]:
    """Reporting, stations, anomalies, pending: as the tile shows them.

    >>> tile_values({"reporting": 89, "stations": 91, "anomalies": 4, "pending": 2})
    ('89', '91', '4', '2')
    """
    return (f"{counts['reporting']:,}", f"{counts['stations']:,}", f"{counts['anomalies']:,}",
            f"{counts['pending']:,}")


def register_monitor_tile(status_id: str, replay_state_id: str) -> None:
    """Register the tile's callback (call at the page module's top level)."""

    @callback(
        Output(ids.WALL_MONITOR_REPORTING, "children"),
        Output(ids.WALL_MONITOR_STATIONS, "children"),
        Output(ids.WALL_MONITOR_ANOMALIES, "children"),
        Output(ids.WALL_MONITOR_PENDING, "children"),
        Output(ids.WALL_MONITOR_LAYER, "children"),
        Input(status_id, "data"),
        Input(ids.WALL_MONITOR_TICK, "n_intervals"),
        Input(replay_state_id, "data"),
    )
    def refresh_monitor_tile(_status: Any, _tick: Any, replay: dict[str, Any] | None) -> tuple[Any, ...]:
        if not allowed("read", EVERY_LAYER):  # as GET /monitor/stations; the callback policy refuses first
            raise PreventUpdate
        at = replay_time(replay)
        lang = current_lang()
        try:
            with db_engine().connect() as conn:
                counts = wall_counts(conn, now=at or datetime.now(UTC))
                feats = warning_features(conn, lang=lang, at=at)
        except Exception as e:
            if classify(e)[0] == 503:
                raise PreventUpdate from None  # the wall's banner says so; the last numbers stay
            raise
        return (*tile_values(counts), pending_layers(feats, lang))

