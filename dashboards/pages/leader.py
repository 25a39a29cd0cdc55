"""Leader (``/leader``): regional risk by prefecture or county, H3 detail on zoom, ranking, trend, weights.

Public: :func:`layout`, :func:`risk_result`, :func:`choropleth`, :func:`ranking_rows`, :func:`weights_text`,
:func:`detail_cells`, and the callbacks :func:`update`, :func:`detail`, :func:`reset_weights`.

The numbers are those of :func:`dashboards.services.risk.regional_risk`, the service behind
``GET /api/v1/analysis/risk`` (same level, hazard kinds and weights). It only returns regions touched by an active
hazard; the choropleth draws every region of the level (:func:`dashboards.services.regions.region_outlines`) and
gives the others a risk of 0. It is called once per (level, hazard kinds, weights) with per-cell values for the
whole service area at res 7 (:data:`CELL_RES`); the result is cached here, so zooming and panning only filter the
cached cells to the view's bbox (the browser gets at most :data:`MAX_DETAIL_CELLS` hexagons, at res 6 below zoom 8).

The trend plot is **incidents per day by prefecture** over the last :data:`TREND_DAYS` days
(:func:`dashboards.services.trend.incident_trend`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import OrderedDict
from html import escape
from typing import Any

import dash
import dash_leaflet as dl
import numpy as np
import plotly.graph_objects as go
import shapely
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboards import ids
from dashboards.auth import EVERY_LAYER, allowed
from dashboards.components.basemap import base_map, leaflet_bbox
from dashboards.components.maplayers import map_extras, map_kwargs, register_maps
from dashboards.context import db_engine, settings
from dashboards.errors import classify
from dashboards.i18n import current_lang, normalize_lang, t, vocab_label
from dashboards.services.regions import region_outlines
from dashboards.services.risk import regional_risk
from dashboards.services.trend import TREND_DAYS, incident_trend
from geoops import h3cells
from geoops.errors import InvalidParameterError
from geoops.h3cells import parent_cells
from geoops.risk import RiskWeights
from layers.read import situation
from layers.store import vocab

log = logging.getLogger(__name__)

dash.register_page(__name__, path="/leader", name="leader", order=4, title=lambda: t("leader.title"))
register_maps("leader", ids.LEADER_MAP,
              overlays=("hazards", "incidents", "shelters", "resources", "protection_targets", "admin_regions"),
              checked=("hazards",), tools=("search",))

LEVELS = ("prefecture", "county")
#: the Leaflet pane of the risk choropleth and its cells: under the operational layers' pane (350)
CHOROPLETH_PANE = "sitroomChoropleth"
HAZARD_KINDS = tuple(vocab.keys("hazard_kind"))
WEIGHT_NAMES = tuple(RiskWeights().to_dict()["values"])
#: slider range per weight (warning-level weights are shares, the others factors)
WEIGHT_MAX = {n: (1.0 if n in ("blue", "yellow", "orange", "red") else 10.0 if n == "occupants_weight" else 3.0)
              for n in WEIGHT_NAMES}
CELL_RES = 7
DETAIL_ZOOM = 7  # H3 detail from this zoom on (res 6 below DETAIL_FINE_ZOOM, res 7 from it)
DETAIL_FINE_ZOOM = 8
MAX_DETAIL_CELLS = 2500
TREND_TOP = 6
CLASS_COLOURS = ("#e8edf2", "#fee5d9", "#fcbba1", "#fc9272", "#fb6a4a", "#de2d26", "#a50f15")
COORD_DECIMALS = 3
SIMPLIFY_DEG = 0.01
_lock = threading.Lock()
_risk_cache: OrderedDict[Any, dict[str, Any]] = OrderedDict()


# ------------------------------------------------------------------------------------------------ data


def _weights_key(weights: dict[str, float] | None) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((k, round(float(v), 4)) for k, v in (weights or {}).items()))


def risk_result(conn: Any, *, level: str, hazard_kind: list[str] | None, weights: dict[str, float] | None,
                lang: str) -> dict[str, Any]:
    """:func:`dashboards.services.risk.regional_risk` with per-cell values (res :data:`CELL_RES`) for the service
    area, in ``lang``.

    Cached per (hazard kinds, weights, data version, language), both levels at once; ``weights`` use the model's
    names (``red``,
    ``occupants_weight`` ...). Raises what the service raises (bad weights: ``InvalidParameterError``).
    """
    kinds = sorted(hazard_kind) if hazard_kind else None
    key = (str(conn.engine.url), situation.data_version(conn), tuple(kinds or ()), _weights_key(weights), lang)
    with _lock:
        hit = _risk_cache.get(key)
        if hit is not None:
            _risk_cache.move_to_end(key)
    if hit is None:  # one computation for both levels: switching level reuses it
        hit = regional_risk(conn, level="county", hazard_kind=kinds, weights=weights or None,
                            cells_bbox=list(settings().service_area), cell_res=CELL_RES, lang=lang, all_levels=True)
        with _lock:
            _risk_cache[key] = hit
            while len(_risk_cache) > 8:
                _risk_cache.popitem(last=False)
    return {**hit, "level": level, "regions": hit["regions_by_level"][level]}


# ------------------------------------------------------------------------------------------------ formatting


def _label(r: dict[str, Any], lang: str) -> str:
    return (r.get("name_en") or r["name"]) if lang == "en" else r["name"]


def _n(x: float | None, nd: int = 0) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{nd}f}"


def risk_classes(values: list[float]) -> list[float]:
    """Lower bounds of the colour classes above 0: 1/32, 1/16, 1/8, 1/4, 1/2 of the largest risk."""
    top = max(values + [0.0])
    return [top / 2 ** k for k in (5, 4, 3, 2, 1)] if top > 0 else []


def _class_of(v: float, bounds: list[float]) -> int:
    return 0 if v <= 0 or not bounds else 1 + max([i for i, b in enumerate(bounds) if v >= b] + [0])


def choropleth(shapes: list[dict[str, Any]], result: dict[str, Any], lang: str) -> tuple[list[Any], list[float]]:
    """Every region of the level, one GeoJSON layer per risk class (static styles), tooltip name + risk + score."""
    by_code = {r["adcode"]: r for r in result["regions"] if r["adcode"]}
    bounds = risk_classes([r["risk"] for r in by_code.values()])
    groups: list[list[dict[str, Any]]] = [[] for _ in CLASS_COLOURS]
    for s in shapes:
        r = by_code.get(s["adcode"])
        v = r["risk"] if r else 0.0
        tip = t("leader.region_tooltip", lang, name=escape(_label(s, lang)), risk=_n(v),  # a tooltip string is HTML
                score=_n(r["score"], 3) if r and r["score"] is not None else "—")
        groups[_class_of(v, bounds)].append({"type": "Feature", "id": s["adcode"], "geometry": s["geometry"],
                                             "properties": {"adcode": s["adcode"], "risk": v, "tooltip": tip}})
    layers = [dl.GeoJSON(data={"type": "FeatureCollection", "features": g}, id=f"leader-class-{i}",
                         style={"color": "#5f6b7a", "weight": 0.8, "fillColor": CLASS_COLOURS[i],
                                "fillOpacity": 0.25 if i == 0 else 0.7, "opacity": 0.8})
              for i, g in enumerate(groups) if g]
    return layers, bounds


def reason(r: dict[str, Any], hazards: dict[int, dict[str, Any]], lang: str) -> str:
    """Why a region ranks where it does, in words: the warnings over it (highest level first), the people living
    in their area and the occupants of protection targets there.

    >>> reason({"warnings": [1], "components": {"population": 12000.0, "occupants": 0.0}},
    ...        {1: {"kind": "flood", "warning_level": "red"}}, "en")
    'Red (I) Flood; 12,000 people in the warning areas'
    """
    rank = {"red": 0, "orange": 1, "yellow": 2, "blue": 3}
    ws = sorted((hazards[i] for i in r.get("warnings", []) if i in hazards),
                key=lambda h: rank.get(h["warning_level"], 4))
    parts = []
    if ws:
        named = list(dict.fromkeys(f"{vocab_label('warning_level', h['warning_level'], lang)} "
                                   f"{vocab_label('hazard_kind', h['kind'], lang)}" for h in ws))
        parts.append((", " if lang == "en" else "、").join(named[:3]) + (" …" if len(named) > 3 else ""))
    c = r["components"]
    parts.append(t("leader.reason.people", lang, people=_n(c["population"])))
    if c.get("occupants"):
        parts.append(t("leader.reason.targets", lang, occupants=_n(c["occupants"])))
    return ("; " if lang == "en" else "；").join(parts)


def ranking_rows(result: dict[str, Any], lang: str, *, top: int = 20) -> list[list[Any]]:
    """Rank, region, risk, people exposed, intensity and why (highest risk first). The normalised score and the
    vulnerability are left out: with the default vulnerability the score equals the intensity."""
    hazards = {h["id"]: h for h in result["hazards"]}
    out = []
    for i, r in enumerate(result["regions"][:top], start=1):
        c = r["components"]
        out.append([i, _label(r, lang) if r["adcode"] else r["name"], _n(r["risk"]), _n(c["exposure"]),
                    _n(c["intensity"], 2) if c["intensity"] is not None else "—", reason(r, hazards, lang)])
    return out


def ranking_table(result: dict[str, Any], lang: str) -> Any:
    if not result["regions"]:
        return html.P(t("leader.no_risk", lang), className="sr-ld-hint")
    head = [t(f"leader.col.{k}", lang) for k in ("rank", "region", "risk", "exposure", "intensity", "why")]
    num = {0, 2, 3, 4}
    return html.Table(className="sr-table sr-ld-table", children=[
        html.Thead(html.Tr([html.Th(h, className="sr-num" if i in num else "sr-ld-region" if i == 1 else "")
                            for i, h in enumerate(head)])),
        html.Tbody([html.Tr([html.Td(v, className="sr-num" if i in num else "sr-ld-why" if i == 5 else
                                     "sr-ld-region" if i == 1 else "")
                             for i, v in enumerate(r)]) for r in ranking_rows(result, lang)]),
    ])


def weights_text(weights: dict[str, Any], lang: str) -> list[Any]:
    """The model in plain words and each weight's label, from ``RiskWeights.to_dict()`` in ``lang``."""
    d = RiskWeights.from_mapping(weights).to_dict()
    return [html.P(d["description"][lang], className="sr-ld-desc")]


def detail_cells(result: dict[str, Any], bbox: list[float] | None, zoom: float | None) -> dict[str, Any] | None:
    """Cached per-cell risk within ``bbox`` for the zoom (res 6 or 7), at most :data:`MAX_DETAIL_CELLS` (largest)."""
    cells = result.get("cells")
    if cells is None or bbox is None or zoom is None or zoom < DETAIL_ZOOM or not cells["h3"]:
        return None
    c = np.array([int(x, 16) for x in cells["h3"]], dtype=np.uint64).view(np.int64)
    v = np.asarray(cells["risk"], dtype=float)
    res = int(cells["res"])
    if zoom < DETAIL_FINE_ZOOM and res > 6:
        parents = parent_cells(c, res=res, parent_res=6)
        c, inv = np.unique(parents, return_inverse=True)
        v = np.bincount(inv, weights=v, minlength=c.size)
        res = 6
    lon, lat = h3cells.cell_centres(c)
    w, s, e, n = bbox
    keep = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n) & (v > 0)
    c, v = c[keep], v[keep]
    if c.size > MAX_DETAIL_CELLS:
        top = np.argsort(-v, kind="stable")[:MAX_DETAIL_CELLS]
        c, v = c[top], v[top]
    return {"res": res, "h3": c, "risk": v}


def detail_layers(d: dict[str, Any] | None, lang: str) -> list[Any]:
    if d is None or not d["h3"].size:
        return []
    bounds = risk_classes(d["risk"].tolist())
    groups: list[list[dict[str, Any]]] = [[] for _ in CLASS_COLOURS]
    for _cell, v, g in zip(d["h3"].tolist(), d["risk"].tolist(), h3cells.cell_boundaries(d["h3"]), strict=True):
        ring = np.round(shapely.get_coordinates(g), 5).tolist()
        groups[_class_of(v, bounds)].append({"type": "Feature", "geometry": {"type": "Polygon",
                                                                            "coordinates": [ring]},
                                             "properties": {"tooltip": t("leader.cell_tooltip", lang,
                                                                         res=d["res"], risk=_n(v))}})
    return [dl.GeoJSON(data={"type": "FeatureCollection", "features": g},
                       style={"color": CLASS_COLOURS[i], "weight": 0.3, "fillColor": CLASS_COLOURS[i],
                              "fillOpacity": 0.8})
            for i, g in enumerate(groups) if g]


def legend(bounds: list[float], lang: str) -> list[Any]:
    items: list[Any] = [html.Span(t("leader.legend", lang), className="sr-ld-legend-title"),
                        html.Span([html.I(style={"background": CLASS_COLOURS[0]}), "0"], className="sr-ld-legend-item")]
    for i, b in enumerate(bounds, start=1):
        items.append(html.Span([html.I(style={"background": CLASS_COLOURS[i]}), f"≥ {_n(b)}"],
                               className="sr-ld-legend-item"))
    return items


def trend_figure(trend: dict[str, Any], lang: str) -> go.Figure:
    totals = sorted(trend["counts"].items(), key=lambda kv: -sum(kv[1]))
    fig = go.Figure()
    x = [day_label(d, lang) for d in trend["days"]]  # Plotly's own date ticks are English (Nov, Dec) in zh too
    other = np.asarray(trend["outside"], dtype=int)
    for i, (code, counts) in enumerate(totals):
        if i >= TREND_TOP:
            other = other + np.asarray(counts, dtype=int)
            continue
        fig.add_bar(x=x, y=counts, name=_label({**trend["names"][code]}, lang))
    if other.sum():
        fig.add_bar(x=x, y=other.tolist(), name=t("leader.trend.other", lang), marker_color="#9aa5b1")
    fig.update_layout(barmode="stack", margin={"l": 40, "r": 10, "t": 30, "b": 30}, height=260,
                      title={"text": t("leader.trend.title", lang, days=len(x)), "font": {"size": 14}},
                      legend={"orientation": "h", "y": -0.2}, paper_bgcolor="rgba(0,0,0,0)",
                      plot_bgcolor="#ffffff", yaxis={"title": t("leader.trend.axis", lang)},
                      xaxis={"type": "category", "nticks": 8, "tickangle": 0})
    return fig


def day_label(day: Any, lang: str) -> str:
    """A day on the trend's axis in the page's language.

    >>> import datetime as dt
    >>> day_label(dt.date(2026, 12, 4), "zh-CN"), day_label(dt.date(2026, 12, 4), "en")
    ('12月4日', '4 Dec')
    """
    return f"{day.month}月{day.day}日" if lang == "zh-CN" else f"{day.day} {_MONTHS[day.month - 1]}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ------------------------------------------------------------------------------------------------ layout


def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    defaults = RiskWeights().to_dict()
    sliders = []
    for name in WEIGHT_NAMES:
        top = WEIGHT_MAX[name]
        sliders.append(html.Div(className="sr-ld-weight", children=[
            html.Label(defaults["labels"][name][lang], htmlFor=ids.leader_weight(name)),
            dcc.Slider(id=ids.leader_weight(name), min=0, max=top, step=0.05 if top <= 1 else 0.1,
                       value=defaults["values"][name], marks={0: "0", top: f"{top:g}"},
                       tooltip={"placement": "bottom", "always_visible": False}, updatemode="mouseup"),
        ]))
    controls = html.Div(className="sr-ld-controls", children=[
        html.H1(t("leader.title", lang), className="sr-ld-title"),
        html.Label(t("leader.level", lang), className="sr-ld-label"),
        dcc.RadioItems(id=ids.LEADER_LEVEL, value="prefecture", inline=True, className="sr-ld-radio",
                       options=[{"label": t(f"leader.level.{k}", lang), "value": k} for k in LEVELS]),
        html.Label(t("leader.hazard_kind", lang), className="sr-ld-label"),
        dcc.Dropdown(id=ids.LEADER_HAZARD_KIND, multi=True, value=[], placeholder=t("leader.hazard_all", lang),
                     options=[{"label": vocab_label("hazard_kind", k, lang), "value": k} for k in HAZARD_KINDS]),
        html.H2(t("leader.weights", lang)),
        html.Div(weights_text({}, lang), id=ids.LEADER_WEIGHTS_TEXT),
        *sliders,
        html.Button(t("leader.weights.reset", lang), id=ids.LEADER_WEIGHTS_RESET, n_clicks=0,
                    className="sr-ld-reset"),
        html.Div(id=ids.LEADER_STATUS, className="sr-ld-status", role="status"),
    ])
    # the choropleth is the context, the hazards and the other operational layers are read over it: its own pane
    # lies under theirs (350, assets/sitroom_maps.js) and over the basemap (200); clicks on it still reach it
    the_map = base_map(ids.LEADER_MAP, **map_kwargs("leader", lang), children=[
        dl.Pane([dl.LayerGroup(id=ids.LEADER_REGION_LAYER), dl.LayerGroup(id=ids.LEADER_CELL_LAYER)],
                name=CHOROPLETH_PANE, style={"zIndex": 340})])
    return html.Div(id=ids.LEADER_ROOT, className="sr-ld", lang=lang, children=[
        dcc.Store(id="leader-lang", data=lang),
        controls,
        html.Div(className="sr-ld-map", children=[
            the_map, *map_extras("leader", lang), dcc.Loading(html.Div(id=ids.LEADER_LEGEND, className="sr-ld-legend"), type="circle")]),
        html.Div(className="sr-ld-side", children=[
            html.H2(t("leader.ranking", lang)),
            dcc.Loading(html.Div(id=ids.LEADER_RANKING, className="sr-ld-ranking")),
            dcc.Graph(id=ids.LEADER_TREND, config={"displayModeBar": False, "responsive": True},
                      className="sr-ld-trend", style={"height": "17rem"}),
        ]),
    ])


# ------------------------------------------------------------------------------------------------ callbacks


def bad_weight_message(e: InvalidParameterError, lang: str) -> str:
    """A refused weight in words of the page's language: which weight, what it was, what is allowed."""
    labels = RiskWeights().to_dict()["labels"]
    name = labels.get(str(e.field), {}).get(lang, str(e.field))
    m = re.search(r"\[([-\d.]+), ([-\d.]+)\]", str(e.allowed or ""))
    allowed = t("leader.allowed.range", lang, lo=m.group(1), hi=m.group(2)) if m else t("leader.allowed.number", lang)
    if "<=" in str(e.allowed or ""):
        allowed += t("leader.allowed.order", lang)
    return t("leader.bad_weight", lang, weight=name, value=e.value, allowed=allowed)


# The four warning-level weights must not decrease from blue to red (the model refuses otherwise): moving one
# slider pushes its neighbours along, so a refused combination cannot be set.
dash.clientside_callback(
    """
    function (blue, yellow, orange, red) {
      const nu = window.dash_clientside.no_update;
      const ids = __IDS__;
      const trig = ((window.dash_clientside.callback_context || {}).triggered || []).map(t => t.prop_id || "");
      const v = [blue, yellow, orange, red].map(x => (typeof x === "number" ? x : 0));
      let k = ids.findIndex(id => trig.some(p => p.indexOf(id + ".") === 0));
      if (k < 0) { k = 0; }
      const out = v.slice();
      for (let i = k + 1; i < 4; i++) { out[i] = Math.max(out[i], out[i - 1]); }
      for (let i = k - 1; i >= 0; i--) { out[i] = Math.min(out[i], out[i + 1]); }
      return out.map((x, i) => (x === v[i] ? nu : x));
    }
    """.replace("__IDS__", json.dumps([ids.leader_weight(n) for n in ("blue", "yellow", "orange", "red")])),
    *[Output(ids.leader_weight(n), "value", allow_duplicate=True) for n in ("blue", "yellow", "orange", "red")],
    *[Input(ids.leader_weight(n), "value") for n in ("blue", "yellow", "orange", "red")],
    prevent_initial_call=True,
)


def _weights_from_sliders(values: list[Any]) -> dict[str, float]:
    return {n: float(v) for n, v in zip(WEIGHT_NAMES, values, strict=True) if v is not None}


@callback(
    Output(ids.LEADER_REGION_LAYER, "children"),
    Output(ids.LEADER_LEGEND, "children"),
    Output(ids.LEADER_RANKING, "children"),
    Output(ids.LEADER_WEIGHTS_TEXT, "children"),
    Output(ids.LEADER_STATUS, "children"),
    Output(ids.LEADER_TREND, "figure"),
    Input(ids.LEADER_LEVEL, "value"),
    Input(ids.LEADER_HAZARD_KIND, "value"),
    *[Input(ids.leader_weight(n), "value") for n in WEIGHT_NAMES],
    State("leader-lang", "data"),
)
def update(level: str | None, hazard_kind: list[str] | None, *rest: Any) -> tuple[Any, ...]:
    """Choropleth, legend, ranking, weights in words, status and trend for the controls (the main callback)."""
    *values, lang = rest
    lang = normalize_lang(lang) or current_lang()
    if not allowed("read", EVERY_LAYER):  # as GET /analysis/risk; the callback policy refuses first, this covers
        return (no_update,) * 4 + (t("auth.not_allowed", lang), no_update)  # a call that bypasses it
    level = level if level in LEVELS else "prefecture"
    weights = _weights_from_sliders(values)
    try:
        text = weights_text(weights, lang)
    except InvalidParameterError as e:  # bad weights: say which, in the page's language, and keep the last picture
        return (no_update,) * 4 + (bad_weight_message(e, lang), no_update)
    try:
        with db_engine().connect() as conn:
            result = risk_result(conn, level=level, hazard_kind=hazard_kind or None, weights=weights, lang=lang)
            shapes = region_outlines(conn, level, tolerance_deg=SIMPLIFY_DEG, decimals=COORD_DECIMALS,
                                     within=settings().service_area)
            trend = incident_trend(conn, days=TREND_DAYS)
    except InvalidParameterError as e:
        return (no_update,) * 3 + (text, bad_weight_message(e, lang), no_update)
    except Exception as e:  # noqa: BLE001 - a translated message instead of a traceback (details in the log)
        log.warning("leader: %s", e)
        return (no_update,) * 3 + (text, t(f"error.{classify(e)[1]}", lang), no_update)
    layers, bounds = choropleth(shapes, result, lang)
    status = t("leader.status", lang, hazards=len(result["hazards"]), regions=len(shapes),
               at_risk=len([r for r in result["regions"] if r["adcode"]]))
    return layers, legend(bounds, lang), ranking_table(result, lang), text, status, trend_figure(trend, lang)


@callback(
    Output(ids.LEADER_CELL_LAYER, "children"),
    Input(ids.LEADER_MAP, "zoom"),
    Input(ids.LEADER_MAP, "bounds"),
    Input(ids.LEADER_LEVEL, "value"),
    Input(ids.LEADER_HAZARD_KIND, "value"),
    *[Input(ids.leader_weight(n), "value") for n in WEIGHT_NAMES],
    State("leader-lang", "data"),
)
def detail(zoom: float | None, bounds: Any, level: str | None, hazard_kind: list[str] | None,
           *rest: Any) -> list[Any]:
    """H3 detail (res 6/7 cells of the cached risk run) when zoomed in to :data:`DETAIL_ZOOM` or more."""
    *values, lang = rest
    lang = normalize_lang(lang) or current_lang()
    if zoom is None or zoom < DETAIL_ZOOM or not allowed("read", EVERY_LAYER):  # as GET /analysis/risk?cells=
        return []
    try:
        with db_engine().connect() as conn:
            result = risk_result(conn, level=level if level in LEVELS else "prefecture",
                                 hazard_kind=hazard_kind or None, weights=_weights_from_sliders(values), lang=lang)
    except Exception:  # noqa: BLE001 - the main callback reports errors; detail just stays as it was
        raise PreventUpdate from None
    return detail_layers(detail_cells(result, leaflet_bbox(bounds), zoom), lang)


@callback(*[Output(ids.leader_weight(n), "value") for n in WEIGHT_NAMES],
          Input(ids.LEADER_WEIGHTS_RESET, "n_clicks"), prevent_initial_call=True)
def reset_weights(n_clicks: int | None) -> tuple[float, ...]:
    """Back to the model's default weights (constants of the model: no data, so no role check)."""
    d = RiskWeights().to_dict()["values"]
    return tuple(float(d[n]) for n in WEIGHT_NAMES)

