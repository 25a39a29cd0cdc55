"""The operational layers and GIS tools of every map: hazards, incidents, shelters, resources, protection targets,
impact zones, annotations and regions as vector tiles in a layer control, with legends, click popups, place
search, coordinate readout and go-to, and a geodesic measure tool.

Public: :func:`register_maps`, :func:`map_kwargs`, :func:`map_extras`, :func:`maps_id`, :func:`overlay_id`,
:func:`popup_body`, :func:`identify_overlays`, :data:`TOOLS`.

Use, in a page module::

    register_maps("analyst", ids.ANALYST_MAP, overlays=("hazards", "incidents", ...), checked=("hazards", ...),
                  tools=("search", "coords", "measure"), replay=replay_id("analyst", "state"))   # module level
    ... layout:
    the_map = base_map(ids.ANALYST_MAP, children=[...], **map_kwargs("analyst", lang))
    html.Div([the_map, *map_extras("analyst", lang), ...], className="sr-an-map")   # a position:relative box

How it works. Each overlay (:data:`dashboards.components.mapstyle.OVERLAYS`) is a dash-leaflet ``Overlay`` of the
map's ``LayersControl`` holding an empty ``LayerGroup``; the group's ``add`` event, resolved by dash-leaflet from
``{"variable": "sitroomMaps.mount"}`` (its extension point for JavaScript functions), makes ``assets/sitroom_maps.js``
put a protomaps-leaflet layer of ``GET /api/v1/tiles/<layer>/{z}/{x}/{y}.mvt`` in it, drawn as
:func:`dashboards.components.mapstyle.style_spec` says. So the layer control shows and hides the tiles, and no Dash
component of our own had to be built. A click on the map (dash-leaflet's ``clickData``) asks the server what lies
there in the overlays shown (:func:`dashboards.services.identify.identify`), unless the user is drawing or
measuring; the popup is built here from Dash components, so every text of the data is escaped by React. Live changes
(:mod:`dashboards.components.live`) make the browser fetch fresh tiles of the layers they touched; in replay mode
(:mod:`dashboards.components.replay`) the live overlays are hidden, the page drawing the past itself.

Every server callback checks the ``read`` capability, as ``GET /api/v1/layers/<layer>`` does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboards.auth import add_callback_rule, allowed
from dashboards.components import data_attributes
from dashboards.components.live import live_id, live_source
from dashboards.components.mapstyle import OVERLAYS, legend_items, overlay, style_spec
from dashboards.context import API_PREFIX, db_read, settings
from dashboards.errors import error_body
from dashboards.i18n import current_lang, t, vocab_label
from dashboards.services import maptools
from dashboards.services.identify import identify
from layers.reference.search import PlaceHit, search_places
from layers.store.registry import layer

__all__ = ["register_maps", "map_kwargs", "map_extras", "maps_id", "overlay_id", "popup_body", "identify_overlays",
           "TOOLS"]

#: the optional tools of a map: place search, coordinate readout and go-to, geodesic measuring
TOOLS = ("search", "coords", "measure")
SEARCH_LIMIT = 8
GOTO_ZOOM = 13
PLACE_ZOOM = 12


@dataclass(frozen=True)
class _Setup:
    page: str
    map_id: str
    overlays: tuple[str, ...]
    checked: tuple[str, ...]
    tools: tuple[str, ...]
    live: str | None
    replay: str | None
    hall: bool = False


_SETUPS: dict[str, _Setup] = {}


def maps_id(page: str, part: str) -> str:
    """Component id of one part of a page's map tools (``control``, ``legend``, ``popup``, ``search`` ...).

    >>> maps_id("analyst", "readout")
    'sr-maps-analyst-readout'
    """
    return f"sr-maps-{page}-{part}"


def overlay_id(map_id: str, key: str) -> str:
    """Id of the LayerGroup of overlay ``key`` on map ``map_id`` (``sitroom_maps.js`` reads the key from it).

    >>> overlay_id("analyst-map", "incidents")
    'analyst-map-ov-incidents'
    """
    return f"{map_id}-ov-{key}"


def identify_overlays(keys: Sequence[str]) -> list[tuple[str, str, tuple[str, tuple[str, ...]] | None]]:
    """(key, layer, filter) of the overlays shown, topmost first: points, then lines and areas.

    >>> [k for k, *_ in identify_overlays(["hazards", "shelters", "incidents_major"])]
    ['shelters', 'incidents_major', 'hazards']
    """
    known = [overlay(k) for k in keys if k in OVERLAYS]
    known.sort(key=lambda o: layer(o.layer).geometry_type != "POINT")
    return [(o.key, o.layer, o.where) for o in known]


# ------------------------------------------------------------------------------------------------ layout


def _config(s: _Setup, lang: str) -> dict[str, Any]:
    overlays = {}
    for key in s.overlays:
        o = overlay(key)
        d = layer(o.layer)
        overlays[key] = {"url": f"{API_PREFIX}/tiles/{o.layer}/{{z}}/{{x}}/{{y}}.mvt", "minZoom": d.min_zoom,
                         "maxZoom": d.max_zoom, "style": style_spec(key, lang), "title": t(o.title_key, lang)}
    return {"map": s.map_id, "overlays": overlays,
            "names": {t(overlay(k).title_key, lang): k for k in s.overlays},
            "texts": {"layers": t("map.layers", lang)},  # Leaflet's layer control titles its button "Layers"
            "hall": s.hall,
            "stores": {"mouse": maps_id(s.page, "mouse") if "coords" in s.tools else None,
                       "measure": maps_id(s.page, "measure") if "measure" in s.tools else None}}


def map_kwargs(page: str, lang: str | None = None) -> dict[str, Any]:
    """Keyword arguments of :func:`dashboards.components.basemap.base_map` for a page registered with
    :func:`register_maps`: its overlays (in the layer control), the popup and marker groups, the map's events."""
    s = _SETUPS[page]
    language = lang or current_lang()
    overlays = [dl.Overlay(dl.LayerGroup(id=overlay_id(s.map_id, key),
                                         eventHandlers={"add": {"variable": "sitroomMaps.mount"}}),
                           name=t(overlay(key).title_key, language), checked=key in s.checked)
                for key in s.overlays]
    events = {"draw:drawstart": {"variable": "sitroomMaps.drawStart"},
              "draw:drawstop": {"variable": "sitroomMaps.drawStop"},
              "draw:deletestart": {"variable": "sitroomMaps.drawStart"},
              "draw:deletestop": {"variable": "sitroomMaps.drawStop"},
              "draw:editstart": {"variable": "sitroomMaps.drawStart"},
              "draw:editstop": {"variable": "sitroomMaps.drawStop"}}
    if "coords" in s.tools:
        events["mousemove"] = {"variable": "sitroomMaps.mousemove"}
    if "measure" in s.tools:
        events["click"] = {"variable": "sitroomMaps.click"}
    return {"overlays": overlays, "control_id": maps_id(page, "control"), "event_handlers": events,
            "extra_layers": [dl.LayerGroup(id=maps_id(page, "popup")), dl.LayerGroup(id=maps_id(page, "mark"))]}


def _legend(s: _Setup, lang: str) -> html.Details:
    sections = []
    for key in s.overlays:
        items = [html.Li([html.I(className=f"sr-maps-sym sr-maps-sym-{i['shape']}",
                                 style={"--sr-sym": i["colour"]} if i["colour"] else {}),
                          html.Span(i["label"])]) for i in legend_items(key, lang)]
        sections.append(html.Section([html.H5(t(overlay(key).title_key, lang)), html.Ul(items)],
                                     id=maps_id(s.page, f"legend-{key}"),
                                     style={} if key in s.checked else {"display": "none"}))
    return html.Details(open=True, className="sr-maps-legend", id=maps_id(s.page, "legend"),
                        children=[html.Summary(t("map.legend.title", lang)), *sections])


def map_extras(page: str, lang: str | None = None) -> list[Any]:
    """What a page puts beside its map, in the map's ``position: relative`` box: the configuration of the vector
    layers, the legend, and the tools it was registered with (search box, coordinate readout and go-to, measure)."""
    s = _SETUPS[page]
    language = lang or current_lang()
    _warm_search()
    out: list[Any] = [
        html.Div(id=f"{s.map_id}-sitroom", hidden=True,
                 **data_attributes({"sitroom-map": json.dumps(_config(s, language), ensure_ascii=False)})),
        dcc.Store(id=maps_id(page, "identify"), data=None),
        dcc.Store(id=maps_id(page, "sink"), data=None),
        _legend(s, language),
    ]
    if s.live is None:
        out.append(live_source(f"maps-{page}", layers=sorted({overlay(k).layer for k in s.overlays})))
    if "search" in s.tools:
        out.append(html.Div(className="sr-maps-search", children=[
            html.Label(t("map.search.label", language), htmlFor=maps_id(page, "search"), className="sr-maps-sr-only"),
            dcc.Input(id=maps_id(page, "search"), type="search", debounce=0.4, autoComplete="off",
                      placeholder=t("map.search.placeholder", language), className="sr-maps-input"),
            dcc.Store(id=maps_id(page, "hits"), data=[]),
            html.Ul(id=maps_id(page, "results"), className="sr-maps-results"),
        ]))
    tools: list[Any] = []
    if "coords" in s.tools:
        tools += [
            html.Div(t("map.coords.hint", language), id=maps_id(page, "readout"), className="sr-maps-readout",
                     role="status"),
            dcc.Store(id=maps_id(page, "mouse"), data=None),
            html.Div(className="sr-maps-row", children=[
                html.Label(t("map.goto.label", language), htmlFor=maps_id(page, "goto"), className="sr-maps-sr-only"),
                dcc.Input(id=maps_id(page, "goto"), type="text", debounce=False, className="sr-maps-input",
                          placeholder=t("map.goto.placeholder", language)),
                html.Button(t("map.goto.button", language), id=maps_id(page, "goto-go"), n_clicks=0,
                            className="sr-maps-button"),
            ]),
            html.Div(id=maps_id(page, "goto-msg"), className="sr-maps-msg", role="status"),
        ]
    if "measure" in s.tools:
        tools += [
            html.Div(className="sr-maps-row", children=[
                html.Button(t("map.measure.distance", language), id=maps_id(page, "measure-distance"), n_clicks=0,
                            className="sr-maps-button"),
                html.Button(t("map.measure.area", language), id=maps_id(page, "measure-area"), n_clicks=0,
                            className="sr-maps-button"),
                html.Button(t("map.measure.clear", language), id=maps_id(page, "measure-clear"), n_clicks=0,
                            className="sr-maps-button sr-maps-quiet"),
            ]),
            dcc.Store(id=maps_id(page, "measure"), data=None),
            html.Div(t("map.measure.hint", language), id=maps_id(page, "measure-out"), className="sr-maps-msg",
                     role="status"),
        ]
    if tools:
        out.append(html.Div(tools, className="sr-maps-tools", id=maps_id(page, "tools")))
    return out


# ------------------------------------------------------------------------------------------------ formatting


def popup_body(found: list[dict[str, Any]], lang: str) -> html.Div:
    """The popup of a click: per overlay its title, then each feature's title, fields and a link to its history.

    Every text comes from the store or the catalogue and goes in as a Dash text child: React escapes it, so a
    name like ``<img onerror=...>`` shows as those characters.
    """
    blocks: list[Any] = []
    for group in found:
        o = overlay(group["overlay"])
        blocks.append(html.H4(t(o.title_key, lang), className="sr-pop-layer"))
        for f in group["features"]:
            rows = [html.Tr([html.Th(label), html.Td(text)]) for label, text in f["rows"]]
            blocks.append(html.Div(className="sr-pop-feature", children=[
                html.Div(f["title"], className="sr-pop-title"),
                html.Table(html.Tbody(rows), className="sr-pop-table"),
                html.A(t("map.popup.history", lang), href=f"{API_PREFIX}/history?layer={group['layer']}&id={f['id']}",
                       target="_blank", rel="noopener", className="sr-pop-link"),
            ]))
        more = group["total"] - len(group["features"])
        if more > 0:
            blocks.append(html.P(t("map.popup.more", lang, n=f"{more:,}" if group["total"] < 1000 else "999+"),
                                 className="sr-pop-more"))
    return html.Div(blocks, className="sr-pop")


def _hit_label(h: PlaceHit, lang: str) -> str:
    name = f"{h.name_en} {h.name}" if lang == "en" and h.name_en and h.name_en != h.name else h.name
    kind = vocab_label("admin_level", h.kind, lang) if h.kind != "place" else t("map.search.place", lang)
    parent = f" · {h.parent}" if h.parent else ""
    return f"{name} · {kind}{parent}"


def _viewport_of(h: dict[str, Any]) -> dict[str, Any]:
    if h.get("bbox"):
        w, s, e, n = h["bbox"]
        return {"bounds": [[s, w], [n, e]], "transition": "flyToBounds", "options": {"padding": [20, 20]}}
    return {"center": [h["lat"], h["lon"]], "zoom": PLACE_ZOOM, "transition": "flyTo"}


def _mark(lat: float, lon: float, text: str) -> list[Any]:
    return [dl.CircleMarker(center=[lat, lon], radius=9, color="#d81b60", weight=3, fill=False,
                            children=[dl.Tooltip(text, permanent=True, direction="top", className="sr-maps-mark")])]


def _fmt_m(v: float | None, lang: str) -> str:
    if v is None:
        return "–"
    return f"{v / 1000:,.3f} km" if v >= 1000 else f"{v:,.1f} m"


def _fmt_m2(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v / 1e6:,.3f} km²" if v >= 1e5 else f"{v:,.0f} m²"


def _error(e: BaseException) -> str:
    return str(error_body(e)[1]["error"].get("detail") or e)


# ------------------------------------------------------------------------------------------------ search warm-up

_warm_lock = threading.Lock()
_warmed = False


def _warm_search() -> None:
    """Build the GeoNames part of the place index in the background the first time a map is shown (it takes a few
    seconds), so that the first search answers at once."""
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        _warmed = True
    threading.Thread(target=search_places, args=(None, "x"), daemon=True, name="sitroom-place-index").start()


# ------------------------------------------------------------------------------------------------ callbacks

_IDENTIFY_JS = """
function (click, zoom, shown, mapId) {
  const M = window.sitroomMaps;
  if (!click || !click.latlng || !M || M.busy(mapId)) { return window.dash_clientside.no_update; }
  const cfg = M.config(mapId) || {names: {}};
  const keys = (shown || []).map(n => cfg.names[n]).filter(k => !!k);
  if (!keys.length) { return window.dash_clientside.no_update; }
  return {lat: click.latlng.lat, lon: click.latlng.lng, zoom: zoom, overlays: keys, t: Date.now()};
}
"""

_LEGEND_JS = """
function (shown, mapId) {
  const cfg = (window.sitroomMaps && window.sitroomMaps.config(mapId)) || {names: {}, overlays: {}};
  const on = new Set((shown || []).map(n => cfg.names[n]));
  return Object.keys(cfg.overlays).map(k => on.has(k) ? {} : {display: "none"});
}
"""

_LIVE_JS = """
function (live, mapId) {
  if (live && window.sitroomMaps) { window.sitroomMaps.refresh(mapId, live); }
  return window.dash_clientside.no_update;
}
"""

_REPLAY_JS = """
function (st, mapId) {
  const el = document.getElementById(mapId);
  if (el) { el.classList.toggle("sr-maps-replaying", !!(st && st.mode === "replay")); }
  return window.dash_clientside.no_update;
}
"""

_MEASURE_JS = """
function (nd, na, nc, mapId) {
  const M = window.sitroomMaps;
  const trig = ((window.dash_clientside.callback_context || {}).triggered || []).map(t => t.prop_id)[0] || "";
  if (!M || !trig) { return [window.dash_clientside.no_update, window.dash_clientside.no_update]; }
  const mode = trig.indexOf("measure-distance") >= 0 ? "distance" : trig.indexOf("measure-area") >= 0 ? "area"
             : "clear";
  const active = M.setMeasure(mapId, mode);
  return ["sr-maps-button" + (active === "distance" ? " sr-maps-active" : ""),
          "sr-maps-button" + (active === "area" ? " sr-maps-active" : "")];
}
"""


def register_maps(page: str, map_id: str, *, overlays: Sequence[str], checked: Sequence[str] = (),
                  tools: Sequence[str] = (), live: str | None = None, replay: str | None = None,
                  hall: bool = False) -> None:
    """Declare a page's map: which overlays its layer control lists (in that order) and which are on at first, its
    tools (:data:`TOOLS`), the live store to follow (default: one of its own) and the replay state that hides the live
    overlays. ``hall``: a command-hall wall whose text grows with the screen (1rem = 1/120 of the width): on a screen
    sqrt(2) times 1920 px wide or more (where the wall fits one zoom further in), the offline basemap's tiles are shown on 512 px, drawn at 512 px (``@2x``) one
    zoom out, so the basemap's labels and lines grow with the page's text. Call at the page module's top level; it
    registers the callbacks."""
    unknown = [k for k in (*overlays, *checked) if k not in OVERLAYS]
    if unknown or not set(checked) <= set(overlays) or not set(tools) <= set(TOOLS):
        raise ValueError(f"register_maps({page!r}): unknown overlays {unknown} (known: {', '.join(OVERLAYS)}), "
                         f"checked {list(checked)} not all listed, or tools {list(tools)} not in {TOOLS}")
    s = _SETUPS[page] = _Setup(page, map_id, tuple(overlays), tuple(checked), tuple(tools), live, replay, hall)
    # the server callbacks below, by their first output, need what GET /layers/<layer> and GET /places need
    for part, wanted in (("popup", True), ("results", "search" in s.tools), ("readout", "coords" in s.tools),
                         ("measure-out", "measure" in s.tools)):
        if wanted:
            add_callback_rule(f"{maps_id(page, part)}.children", "read")
    if "search" in s.tools or "coords" in s.tools:
        add_callback_rule(f"{map_id}.viewport", "read")
    control = maps_id(page, "control")
    dash.clientside_callback(_IDENTIFY_JS, Output(maps_id(page, "identify"), "data"), Input(map_id, "clickData"),
                             State(map_id, "zoom"), State(control, "overlays"), State(map_id, "id"),
                             prevent_initial_call=True)
    dash.clientside_callback(_LEGEND_JS, [Output(maps_id(page, f"legend-{k}"), "style") for k in s.overlays],
                             Input(control, "overlays"), State(map_id, "id"), prevent_initial_call=True)
    dash.clientside_callback(_LIVE_JS, Output(maps_id(page, "sink"), "data", allow_duplicate=True),
                             Input(live or live_id(f"maps-{page}"), "data"), State(map_id, "id"),
                             prevent_initial_call=True)
    if replay:
        dash.clientside_callback(_REPLAY_JS, Output(maps_id(page, "sink"), "data", allow_duplicate=True),
                                 Input(replay, "data"), State(map_id, "id"), prevent_initial_call=True)

    @dash.callback(Output(maps_id(page, "popup"), "children"), Input(maps_id(page, "identify"), "data"),
                   prevent_initial_call=True)
    def _identify(req: Any) -> Any:
        if not req or not allowed("read"):
            raise PreventUpdate
        lang = current_lang()
        try:
            lon, lat, zoom = float(req["lon"]), float(req["lat"]), float(req["zoom"])
            with db_read() as conn:
                found = identify(conn, lon, lat, zoom=zoom, overlays=identify_overlays(req.get("overlays") or []),
                                 lang=lang)
        except (KeyError, TypeError, ValueError):
            raise PreventUpdate from None
        if not found:
            return []
        return [dl.Popup(popup_body(found, lang), position=[lat, lon], maxWidth=380, minWidth=220,
                         autoPan=True, id=maps_id(page, f"popup-{int(req.get('t') or 0)}"))]

    if "search" in s.tools:
        @dash.callback(Output(maps_id(page, "results"), "children"), Output(maps_id(page, "hits"), "data"),
                       Input(maps_id(page, "search"), "value"), prevent_initial_call=True)
        def _search(q: Any) -> tuple[Any, Any]:
            lang = current_lang()
            if not q or not str(q).strip() or not allowed("read"):
                return [], []
            with db_read() as conn:
                hits = search_places(conn, str(q)[:60], limit=SEARCH_LIMIT,
                                     bbox=tuple(settings().service_area))  # type: ignore[arg-type]
            if not hits:
                return [html.Li(t("map.search.none", lang), className="sr-maps-none")], []
            items = [html.Li(html.Button(_hit_label(h, lang), id={"type": maps_id(page, "hit"), "index": i},
                                         n_clicks=0, className="sr-maps-hit")) for i, h in enumerate(hits)]
            data = [{"name": (h.name_en or h.name) if lang == "en" else h.name, "lon": h.lon, "lat": h.lat,
                     "bbox": h.bbox} for h in hits]
            return items, data

        @dash.callback(Output(map_id, "viewport", allow_duplicate=True),
                       Output(maps_id(page, "mark"), "children", allow_duplicate=True),
                       Output(maps_id(page, "results"), "children", allow_duplicate=True),
                       Input({"type": maps_id(page, "hit"), "index": ALL}, "n_clicks"),
                       State(maps_id(page, "hits"), "data"), prevent_initial_call=True)
        def _pick(clicks: Any, hits: Any) -> tuple[Any, Any, Any]:
            trig = ctx.triggered_id
            if not isinstance(trig, dict) or not any(clicks or []) or not hits or not allowed("read"):
                raise PreventUpdate
            h = hits[int(trig["index"])]
            return _viewport_of(h), _mark(h["lat"], h["lon"], h["name"]), []

    if "coords" in s.tools:
        @dash.callback(Output(maps_id(page, "readout"), "children"), Input(maps_id(page, "mouse"), "data"),
                       prevent_initial_call=True)
        def _readout(pos: Any) -> Any:
            lang = current_lang()
            if not allowed("read"):
                raise PreventUpdate
            try:
                r = maptools.readout(float(pos["lon"]), float(pos["lat"]))
            except (KeyError, TypeError, ValueError):
                raise PreventUpdate from None
            parts = [html.Span(t("map.coords.wgs84", lang, lat=f"{r['lat']:.5f}", lon=f"{r['lon']:.5f}", dms=r["dms"]),
                               className="sr-maps-wgs84")]
            g = r["gk"]
            if g:
                parts.append(html.Span(t("map.coords.gk", lang, zone=g["zone"], cm=f"{g['cm']:g}", epsg=g["epsg"],
                                         x=f"{g['x']:,.2f}", y=f"{g['y']:,.2f}"), className="sr-maps-gk"))
            return parts

        @dash.callback(Output(map_id, "viewport", allow_duplicate=True),
                       Output(maps_id(page, "mark"), "children", allow_duplicate=True),
                       Output(maps_id(page, "goto-msg"), "children"),
                       Input(maps_id(page, "goto-go"), "n_clicks"), Input(maps_id(page, "goto"), "n_submit"),
                       State(maps_id(page, "goto"), "value"), prevent_initial_call=True)
        def _goto(_n: Any, _submit: Any, text: Any) -> tuple[Any, Any, Any]:
            lang = current_lang()
            if not allowed("read"):
                raise PreventUpdate
            try:
                lon, lat, how = maptools.parse_goto(text, service_area=settings().service_area)
            except ValueError as e:
                return no_update, no_update, html.Span(_error(e), className="sr-warning")
            label = f"{lat:.5f}, {lon:.5f}"
            return ({"center": [lat, lon], "zoom": GOTO_ZOOM, "transition": "flyTo"}, _mark(lat, lon, label),
                    t(f"map.goto.done.{how}", lang, lat=f"{lat:.5f}", lon=f"{lon:.5f}"))

    if "measure" in s.tools:
        dash.clientside_callback(
            _MEASURE_JS, Output(maps_id(page, "measure-distance"), "className"),
            Output(maps_id(page, "measure-area"), "className"),
            Input(maps_id(page, "measure-distance"), "n_clicks"), Input(maps_id(page, "measure-area"), "n_clicks"),
            Input(maps_id(page, "measure-clear"), "n_clicks"), State(map_id, "id"), prevent_initial_call=True)

        @dash.callback(Output(maps_id(page, "measure-out"), "children"), Input(maps_id(page, "measure"), "data"),
                       prevent_initial_call=True)
        def _measure(m: Any) -> Any:
            lang = current_lang()
            if not allowed("read"):
                raise PreventUpdate
            if not m or not m.get("kind"):
                return t("map.measure.hint", lang)
            try:
                r = maptools.measure(m.get("points") or [], kind=m["kind"])
            except ValueError as e:
                return html.Span(_error(e), className="sr-warning")
            text = t("map.measure.length", lang, length=_fmt_m(r["length_m"], lang), n=r["points"])
            if r["kind"] == "area":
                text = t("map.measure.area_result", lang, area=_fmt_m2(r["area_m2"]),
                         perimeter=_fmt_m(r["perimeter_m"], lang), n=r["points"])
            return [html.Span(text, id=maps_id(page, "measure-value"),
                              **data_attributes({"length-m": f"{r['length_m']:.3f}",
                                                 "area-m2": "" if r["area_m2"] is None else f"{r['area_m2']:.1f}"})),
                    " ", html.Span(t("map.measure.active" if m.get("active") else "map.measure.stopped", lang),
                                   className="sr-maps-muted")]
