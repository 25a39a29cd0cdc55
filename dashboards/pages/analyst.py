"""Analyst (``/analyst``): draw impact zones (polygon, rectangle, geodesic circle, multi-ring buffer) and read their
impact card; place, edit and delete annotations with the emergency symbol set.

Public (plain functions the callbacks call, tested without a browser): :func:`zone_from_feature`,
:func:`process_drawings`, :func:`buffer_zones`, :func:`impact_card`, :func:`render_card`, :func:`parse_distances_km`.

Every zone is saved as an impact zone (:func:`dashboards.services.drawings.save_zones`) and its card computed by the
service behind ``POST /api/v1/analysis/impact`` (:func:`dashboards.services.impact.impact_card`). A drawing whose
save fails (bad geometry, database down) stays on the map, listed as pending with its error and a retry button;
nothing is dropped silently.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from shapely.geometry import mapping, shape

from dashboards import ids
from dashboards.auth import allowed
from dashboards.components import data_attributes
from dashboards.components.basemap import base_map
from dashboards.components.drawlocal import draw_locale
from dashboards.components.maplayers import map_extras, map_kwargs, register_maps
from dashboards.components.mapstyle import LEVEL_COLOURS, SEVERITY_COLOURS, ZONE_COLOURS, symbol_icon_url
from dashboards.components.replay import (
    register_replay,
    register_report_link,
    replay_badge,
    replay_controls,
    replay_id,
    replay_situation,
    replay_time,
)
from dashboards.components.sitrep_button import sitrep_button
from dashboards.context import acting_user, db_engine, settings
from dashboards.errors import error_body
from dashboards.i18n import current_lang, normalize_lang, t, vocab_label
from dashboards.services import zones
from dashboards.services.buffer import buffer_rings
from dashboards.services.drawings import save_zones
from dashboards.services.impact import impact_card as card_of
from layers.ingest import drawings
from layers.store import vocab
from layers.store.db import session_scope

dash.register_page(__name__, path="/analyst", name="analyst", order=2, title=lambda: t("analyst.title"))
register_replay("analyst")
register_report_link("analyst", ids.ANALYST_SITREP)
register_maps("analyst", ids.ANALYST_MAP,
              overlays=("hazards", "incidents", "shelters", "resources", "protection_targets", "impact_zones",
                        "annotations", "admin_regions"),
              checked=("hazards", "incidents", "shelters", "resources", "protection_targets"),
              tools=("search", "coords", "measure"), replay=replay_id("analyst", "state"))

SYMBOLS: tuple[str, ...] = vocab.keys("annotation_symbol")
COLORS: tuple[str, ...] = ("#e53935", "#fb8c00", "#fdd835", "#43a047", "#1e88e5", "#8e24aa", "#212121")
SHELTER_DISTANCE_M = 5000.0
RES = zones.DEFAULT_RES
#: replay window (after-action review of a drill) and the past layers it draws
REPLAY_HOURS = 6
REPLAY_LAYERS = ["hazards", "incidents", "impact_zones", "annotations"]
REPLAY_INCIDENT_LIMIT = 3000


def _user() -> str:
    """Who is drawing: the signed-in user or API token of the request."""
    return acting_user()[:64]


def _symbol_url(symbol: str) -> str:
    return dash.get_asset_url(f"symbols/{symbol}.svg")


# ------------------------------------------------------------------------------------------------ plain functions


def zone_from_feature(feature: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """An EditControl feature -> (zone to save or None, buffer source geometry as GeoJSON).

    Polygons and rectangles are zones of kind ``drawn``; a circle (Leaflet: centre + ``_mRadius`` metres) becomes a
    true geodesic polygon of kind ``circle``; markers and lines are not areas: they are only buffer sources.
    """
    props = feature.get("properties") or {}
    geom = feature.get("geometry")
    kind = props.get("type")
    if kind == "circle":
        poly, extra = zones.circle_zone(list((geom or {}).get("coordinates") or [])[:2], props.get("_mRadius"),
                                        service_area=settings().service_area)
        g = mapping(poly)
        return {"geometry": g, "kind": "circle", "properties": extra}, g
    if isinstance(geom, dict) and geom.get("type") in ("Polygon", "MultiPolygon"):
        return {"geometry": geom, "kind": "drawn", "properties": {"drawn_as": kind or "polygon"}}, geom
    return None, geom


def impact_card(zone_geometry: dict[str, Any], *, res: int = RES,
                shelter_distance_m: float = SHELTER_DISTANCE_M) -> dict[str, Any]:
    """The impact card of a zone: exactly what ``POST /api/v1/analysis/impact`` answers for the same geometry."""
    s = settings()
    zone, notes, _ = zones.parse_zone(zone_geometry, service_area=s.service_area, max_area_km2=s.max_zone_area_km2)
    with db_engine().connect() as conn:
        card = card_of(conn, zone, res=res, shelter_distance_m=shelter_distance_m, lang=current_lang())
    card["notes"] = notes
    return card


def _error_text(exc: BaseException, lang: str) -> str:
    status, body = error_body(exc)
    err = body["error"]
    detail = err.get("detail") or ""
    return f"{err['message']}" + (f" ({detail})" if detail and status < 500 else "")


def _save_zones(items: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    return save_zones(db_engine(), items, user=user, service_area=settings().service_area)


def _card_for(zone: dict[str, Any], lang: str) -> dict[str, Any]:
    try:
        card = impact_card(zone["geometry"])
    except Exception as e:  # noqa: BLE001 - the zone is saved; the card says why it cannot be computed
        return {"zone": _zone_summary(zone), "error": _error_text(e, lang)}
    return {"zone": _zone_summary(zone), **card}


def _zone_summary(z: dict[str, Any]) -> dict[str, Any]:
    p = z.get("properties") or {}
    return {"id": z["id"], "kind": z["kind"], "name": z.get("name"), "area_m2": p.get("area_m2"),
            "distance_m": p.get("distance_m"), "radius_m": p.get("radius_m")}


def process_drawings(features: list[dict[str, Any]], *, seen: list[Any], pending: list[dict[str, Any]],
                     mode: str, symbol: str, label: str | None, color: str, user: str,
                     lang: str = "zh-CN", retry: bool = False) -> dict[str, Any]:
    """Save what was newly drawn (and, on ``retry``, what is pending); the core of the draw callback.

    Parameters
    ----------
    features : list of dict
        The EditControl's ``geojson.features`` (each with ``properties._leaflet_id`` and ``properties.type``).
    seen : list
        Leaflet ids already handled. ``pending``: drafts whose save failed (kept with their error).
    mode : {"zone", "annotation"}
        What a new drawing becomes. ``symbol``, ``label``, ``color``: the annotation form.

    Returns
    -------
    dict
        ``seen``, ``pending`` (drafts still unsaved, each with ``error``), ``zones`` (saved zone dicts),
        ``annotations`` (saved), ``card`` (card dict of the last saved zone, or None), ``source`` (GeoJSON of the
        last drawn feature, the buffer source, or None), ``saved`` (number of rows saved), ``new`` (new drawings).
    """
    seen_set = set(seen or [])
    drafts = [dict(d, error=None) for d in (pending or [])] if retry else list(pending or [])
    new_source = None
    for f in features or []:
        key = (f.get("properties") or {}).get("_leaflet_id")
        if key is None or key in seen_set:
            continue
        seen_set.add(key)
        drafts.append({"key": key, "feature": f, "mode": mode, "symbol": symbol, "label": label, "color": color,
                       "error": None, "fresh": True})
    out: dict[str, Any] = {"zones": [], "annotations": [], "card": None, "source": None, "saved": 0,
                           "new": sum(1 for d in drafts if d.get("fresh"))}
    still: list[dict[str, Any]] = []
    for d in drafts:
        if d.get("error") is not None and not d.get("fresh"):  # failed earlier; waits for retry
            still.append(d)
            continue
        d.pop("fresh", None)
        try:
            if d["mode"] == "annotation":
                with session_scope(db_engine(), user=user) as s:
                    a = drawings.save_annotation(s, d["feature"]["geometry"], user=user, symbol=d["symbol"],
                                                 label=d["label"], color=d["color"],
                                                 service_area=settings().service_area)
                out["annotations"].append(a)
                out["saved"] += 1
            else:
                zone, source = zone_from_feature(d["feature"])
                new_source = source
                if zone is None:
                    continue
                saved = _save_zones([zone], user)
                out["zones"].extend(saved)
                out["saved"] += 1
                out["card"] = _card_for(saved[0], lang)
        except Exception as e:  # noqa: BLE001 - a failed save keeps the drawing, with the reason
            d["error"] = _error_text(e, lang)
            still.append(d)
    out["seen"] = sorted(seen_set, key=str)
    out["pending"] = still
    out["source"] = new_source
    return out


def parse_distances_km(text: Any) -> list[float]:
    """``"1, 3,5"`` (km) -> ``[1000.0, 3000.0, 5000.0]`` metres; raises ValueError with a translatable key."""
    parts = [p for p in str(text or "").replace("，", ",").replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        km = [float(p) for p in parts]
    except ValueError:
        raise ValueError("analyst.buffer.bad_distances") from None
    if not km or any(not math.isfinite(k) or k <= 0 for k in km) or sorted(set(km)) != km:
        raise ValueError("analyst.buffer.bad_distances")
    return [k * 1000.0 for k in km]


def ring_name(inner_m: float, outer_m: float, area_m2: float, lang: str) -> str:
    """The name of one buffer ring: its inner and outer distance and its own area (the ring, not the disc).

    >>> ring_name(1000, 3000, 25.13e6, "en")
    'Ring 1–3 km · 25.13 km²'
    >>> ring_name(0, 1000, 3.14e6, "zh-CN")
    '0–1 公里环 · 3.14 平方公里'
    """
    return t("analyst.buffer.ring_name", lang, inner=f"{inner_m / 1000:g}", outer=f"{outer_m / 1000:g}",
             km2=f"{area_m2 / 1e6:,.2f}")


def buffer_zones(source: dict[str, Any], distances_m: list[float], *, user: str, lang: str = "zh-CN"
                 ) -> dict[str, Any]:
    """Multi-ring buffer around a source (point, line or area): one impact zone per ring, saved in one transaction.

    One distance gives one zone of kind ``buffer``; several give rings (kind ``ring``, ``distance_m`` and
    ``inner_distance_m`` in the properties). Returns ``zones`` and ``card`` (card of the innermost ring, plus
    ``rings``: population per ring).
    """
    frame, _, geom = buffer_rings(source, distances_m, service_area=settings().service_area)
    kind = "buffer" if len(distances_m) == 1 else "ring"
    items = [{"geometry": mapping(g), "kind": kind, "name": ring_name(di, d, a, lang),
              "properties": {"distance_m": float(d), "inner_distance_m": float(di), "source_type": geom.geom_type}}
             for d, di, a, g in zip(frame["distance_m"], frame["inner_distance_m"], frame["area_m2"], frame.geometry,
                                    strict=True)]
    saved = _save_zones(items, user)
    cards = [_card_for(z, lang) for z in saved]
    card = dict(cards[0])
    card["rings"] = [{"id": c["zone"]["id"], "distance_m": c["zone"]["distance_m"],
                      "population": c.get("population"), "targets": (c.get("protection_targets") or {}).get("count")}
                     for c in cards]
    return {"zones": saved, "card": card}


# ------------------------------------------------------------------------------------------------ rendering


def _fmt_int(x: Any) -> str:
    return "–" if x is None else f"{round(float(x)):,}"


def _km(m: Any) -> str:
    return "–" if m is None else f"{float(m) / 1000:.1f} km"


def render_card(card: dict[str, Any] | None, lang: str) -> Any:
    """The impact card as HTML (population with containment and source stated plainly, then the breakdowns)."""
    if not card:
        return html.P(t("analyst.card.empty", lang), className="sr-an-muted")
    z = card.get("zone") or {}
    title = (z.get("name") or vocab_label("zone_kind", z.get("kind") or "drawn", lang)) + f" #{z.get('id')}"
    head = html.Div(className="sr-an-card-head", children=[
        html.H3(title),
        html.Span(t("analyst.card.area", lang, km2=f"{(z.get('area_m2') or 0) / 1e6:,.2f}"), className="sr-an-muted"),
    ])
    if card.get("error"):
        return html.Div([head, html.P(card["error"], className="sr-warning")])
    src = card.get("population_source") or {}
    modelled = t("analyst.card.modelled", lang) if src.get("modelled") else t("analyst.card.measured", lang)
    pop = html.Div(className="sr-an-pop", children=[
        html.Span(t("analyst.card.population", lang), className="sr-an-label"),
        html.Span(_fmt_int(card.get("population")), id=ids.ANALYST_CARD_POPULATION, className="sr-an-big"),
        html.P(t("analyst.card.containment", lang, note=card.get("containment_note") or ""), className="sr-an-note"),
        html.P([t("analyst.card.source", lang, source=src.get("source") or "–", vintage=src.get("vintage") or "–",
                  res=card.get("res")), " ", html.B(modelled, className="sr-an-flag")], className="sr-an-note"),
    ])
    rows = [html.Tr([html.Td(r.get("name_en") if lang == "en" and r.get("name_en") else r.get("name")),
                     html.Td(_fmt_int(r.get("population")), className="sr-num")])
            for r in sorted((card.get("by_region") or {}).get("county", []), key=lambda r: -(r["population"] or 0))]
    counties = html.Details(open=True, children=[
        html.Summary(t("analyst.card.by_county", lang)),
        html.Table(className="sr-table sr-an-table", children=[html.Tbody(rows)]) if rows else
        html.P(t("analyst.card.none", lang), className="sr-an-muted")])
    pt = card.get("protection_targets") or {}
    targets = html.Details(open=True, children=[
        html.Summary(t("analyst.card.targets", lang, n=pt.get("count", 0), occupants=_fmt_int(pt.get("occupants")))),
        html.Table(className="sr-table sr-an-table", children=[html.Tbody([
            html.Tr([html.Td(vocab_label("target_kind", k, lang)), html.Td(str(v["count"]), className="sr-num"),
                     html.Td(_fmt_int(v["occupants"]), className="sr-num")])
            for k, v in sorted((pt.get("by_kind") or {}).items())])])])
    sh = card.get("shelters") or {}
    shelter_rows = []
    for where in ("inside", "nearby"):
        for s in (sh.get(where) or {}).get("items", [])[:8]:
            shelter_rows.append(html.Tr([html.Td(s.get("name") or f"#{s['id']}"),
                                         html.Td(t(f"analyst.card.shelter_{where}", lang)),
                                         html.Td(_fmt_int(s.get("free")) if s.get("status") == "open" else
                                                 vocab_label("shelter_status", s.get("status") or "", lang),
                                                 className="sr-num"),
                                         html.Td(_km(s.get("distance_m")), className="sr-num")]))
    shelters = html.Details(open=True, children=[
        html.Summary(t("analyst.card.shelters", lang, inside=(sh.get("inside") or {}).get("count", 0),
                       nearby=(sh.get("nearby") or {}).get("count", 0), km=f"{(sh.get('distance_m') or 0) / 1000:g}",
                       free=_fmt_int((sh.get("inside") or {}).get("free", 0) + (sh.get("nearby") or {}).get("free", 0)),
                       closed=_fmt_int(sum(((sh.get(w) or {}).get("closed") or {}).get("could_open", 0)
                                           for w in ("inside", "nearby"))))),
        html.Table(className="sr-table sr-an-table", children=[
            html.Thead(html.Tr([html.Th(t("analyst.card.name", lang)), html.Th(""),
                                html.Th(t("analyst.card.free", lang)), html.Th(t("analyst.card.distance", lang))])),
            html.Tbody(shelter_rows)])])
    near = (card.get("nearest_resources") or {}).get("by_kind") or {}
    resources = html.Details(open=True, children=[
        html.Summary(t("analyst.card.nearest", lang)),
        html.Table(className="sr-table sr-an-table", children=[html.Tbody([
            html.Tr([html.Td(vocab_label("resource_kind", k, lang)), html.Td((r or {}).get("name") or "–"),
                     html.Td(_km((r or {}).get("distance_m")), className="sr-num")])
            for k, r in near.items()])])])
    parts: list[Any] = [head, pop]
    if card.get("rings"):
        parts.append(html.Table(className="sr-table sr-an-table", children=[
            html.Thead(html.Tr([html.Th(t("analyst.card.ring", lang)), html.Th(t("analyst.card.population", lang)),
                                html.Th(t("analyst.card.targets_short", lang))])),
            html.Tbody([html.Tr([html.Td(_km(r["distance_m"])), html.Td(_fmt_int(r["population"]), className="sr-num"),
                                 html.Td(str(r["targets"] if r["targets"] is not None else "–"), className="sr-num")])
                        for r in card["rings"]])]))
    return html.Div(parts + [counties, targets, shelters, resources])


def _zones_and_annotations() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    try:
        with session_scope(db_engine(), user=_user()) as s:
            return drawings.list_zones(s, limit=100), drawings.list_annotations(s, limit=300), None
    except Exception as e:  # noqa: BLE001 - the page stays usable; the status line says the store is down
        return [], [], _error_text(e, current_lang())


def _zone_layers(zones: list[dict[str, Any]]) -> list[Any]:
    """The analyst's latest zones, one clickable layer (a click selects the zone: :func:`click_zone`), each
    outlined in the colour of its kind. Largest first, so a smaller zone lies on top of a larger one that covers it
    and a click inside it selects it (as GIS stacks polygons); ties keep the list's order."""
    by_area = sorted(zones, key=lambda z: -shape(z["geometry"]).area)  # lon/lat area: enough to stack
    feats = [{"type": "Feature", "geometry": z["geometry"], "properties": {"id": z["id"], "kind": z["kind"]}}
             for z in by_area]
    return [dl.GeoJSON(data={"type": "FeatureCollection", "features": feats}, id=ids.ANALYST_ZONES_GEOJSON,
                       style={"variable": "sitroomMaps.zoneStyle"}, hideout={"colours": ZONE_COLOURS},
                       bubblingMouseEvents=True)]


def _annotation_layers(items: list[dict[str, Any]], lang: str) -> list[Any]:
    out: list[Any] = []
    for a in items:
        g = a["geometry"]
        tip = dl.Tooltip(f"{vocab_label('annotation_symbol', a['symbol'], lang)}: {a.get('label') or ''}")
        if g["type"] == "Point":  # the symbol in the colour the analyst chose
            out.append(dl.Marker(position=[g["coordinates"][1], g["coordinates"][0]], children=[tip],
                                 icon={"iconUrl": symbol_icon_url(a["symbol"], a.get("color")), "iconSize": [30, 30],
                                       "iconAnchor": [15, 15]}))
        else:
            out.append(dl.GeoJSON(data={"type": "Feature", "geometry": g, "properties": {}},
                                  style={"color": a["color"], "weight": 4, "fillOpacity": 0.15,
                                         "dashArray": "8 6" if a["symbol"] == "evacuation_route" else None},
                                  children=[tip]))
    return out


def _zone_list(zones: list[dict[str, Any]], lang: str) -> Any:
    if not zones:
        return html.P(t("analyst.zones.empty", lang), className="sr-an-muted")
    return html.Ul(className="sr-an-list", children=[
        html.Li(html.Button(
            f"#{z['id']} {z.get('name') or vocab_label('zone_kind', z['kind'], lang)} · "
            f"{((z.get('properties') or {}).get('area_m2') or 0) / 1e6:,.2f} km²",
            id={"type": ids.ANALYST_ZONE_ITEM, "id": z["id"]}, className="sr-an-link", n_clicks=0))
        for z in zones[:30]])


def _annotation_list(items: list[dict[str, Any]], lang: str) -> Any:
    if not items:
        return html.P(t("analyst.annotations.empty", lang), className="sr-an-muted")
    return html.Ul(className="sr-an-list", children=[
        html.Li(className="sr-an-ann", **data_attributes({"id": str(a["id"])}), children=[
            html.Img(src=symbol_icon_url(a["symbol"], a.get("color")), className="sr-an-icon", alt=a["symbol"]),
            html.Span(className="sr-an-swatch", style={"background": a["color"]}),
            html.Span(a.get("label") or vocab_label("annotation_symbol", a["symbol"], lang), className="sr-an-ann-label"),
            html.Button(t("analyst.annotations.edit", lang), id={"type": ids.ANALYST_ANN_EDIT, "id": a["id"]},
                        className="sr-an-small", n_clicks=0),
            html.Button(t("analyst.annotations.delete", lang), id={"type": ids.ANALYST_ANN_DELETE, "id": a["id"]},
                        className="sr-an-small sr-an-danger", n_clicks=0),
        ]) for a in items])


# ------------------------------------------------------------------------------------------------ layout


def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    zones, anns, problem = _zones_and_annotations()
    edit = dl.EditControl(id=ids.ANALYST_EDIT, position="topleft",
                          draw={"polygon": True, "rectangle": True, "circle": True, "polyline": True, "marker": True,
                                "circlemarker": False},
                          edit={"edit": False, "remove": True})
    the_map = base_map(ids.ANALYST_MAP, **map_kwargs("analyst", lang), children=[
        dl.LayerGroup(id=ids.ANALYST_ZONES_LAYER, children=_zone_layers(zones)),
        dl.LayerGroup(id=ids.ANALYST_REPLAY_LAYER),
        dl.LayerGroup(id=ids.ANALYST_ANNOTATIONS_LAYER, children=_annotation_layers(anns, lang)),
        dl.FeatureGroup([edit]),
        dl.ScaleControl(position="bottomleft", imperial=False),
    ])
    symbol_options = [{"label": html.Span([html.Img(src=_symbol_url(s), className="sr-an-icon"),
                                           vocab_label("annotation_symbol", s, lang)]), "value": s} for s in SYMBOLS]
    color_options = [{"label": html.Span(className="sr-an-swatch", style={"background": c}, title=c), "value": c}
                     for c in COLORS]
    side = html.Aside(className="sr-an-side", children=[
        html.Section(className="sr-an-box", children=[
            html.H2(t("analyst.title", lang)),
            html.P(t("analyst.help", lang), className="sr-an-muted"),
            dcc.RadioItems(id=ids.ANALYST_MODE, value="zone", inline=True, className="sr-an-mode", options=[
                {"label": t("analyst.mode.zone", lang), "value": "zone"},
                {"label": t("analyst.mode.annotation", lang), "value": "annotation"}]),
        ]),
        html.Div(id=ids.ANALYST_STATUS, className="sr-an-status",
                 children=html.P(problem, className="sr-warning") if problem else None),
        html.Button(t("analyst.retry", lang), id=ids.ANALYST_RETRY, className="sr-an-button sr-an-danger",
                    n_clicks=0, style={"display": "none"}),
        html.Section(id=ids.ANALYST_CARD, className="sr-an-box sr-an-card", children=render_card(None, lang)),
        html.Section(className="sr-an-box", children=[
            html.H4(t("analyst.annotation.form", lang)),
            dcc.Dropdown(id=ids.ANALYST_SYMBOL, options=symbol_options, value="incident", clearable=False,
                         searchable=False),
            dcc.Input(id=ids.ANALYST_LABEL, type="text", placeholder=t("analyst.annotation.label", lang),
                      maxLength=drawings.MAX_LABEL_CHARS, className="sr-an-input", debounce=False),
            dcc.RadioItems(id=ids.ANALYST_COLOR, options=color_options, value=COLORS[0], inline=True,
                           className="sr-an-colors"),
            html.Button(t("analyst.annotation.update", lang), id=ids.ANALYST_ANNOTATION_UPDATE, disabled=True,
                        className="sr-an-button", n_clicks=0),
        ]),
        html.Section(className="sr-an-box", children=[
            html.H4(t("analyst.buffer.title", lang)),
            html.Div(className="sr-an-row", children=[
                dcc.Input(id=ids.ANALYST_DISTANCES, type="text", value="1,3,5", className="sr-an-input",
                          placeholder="1,3,5"),
                html.Span("km"),
                html.Button(t("analyst.buffer.apply", lang), id=ids.ANALYST_BUFFER, className="sr-an-button",
                            n_clicks=0),
            ]),
            html.P(t("analyst.buffer.no_source", lang), id=ids.ANALYST_BUFFER_SOURCE, className="sr-an-muted"),
        ]),
        html.Section(className="sr-an-box", children=[
            html.H4(t("analyst.zones.title", lang)),
            html.Div(id=ids.ANALYST_ZONE_LIST, children=_zone_list(zones, lang))]),
        html.Section(className="sr-an-box", children=[
            html.H4(t("analyst.annotations.title", lang)),
            html.Div(id=ids.ANALYST_ANNOTATION_LIST, children=_annotation_list(anns, lang))]),
    ])
    return html.Div(className="sr-analyst", lang=lang, children=[
        draw_locale(lang),
        html.Div([the_map, *map_extras("analyst", lang),
                  html.Div([replay_controls("analyst", hours=REPLAY_HOURS, lang=lang, speed=60),
                            sitrep_button(id=ids.ANALYST_SITREP, lang=lang)], className="sr-an-map-top"),
                  html.Div("", id=ids.ANALYST_REPLAY_BADGE, className="sr-replay-badge sr-hidden", role="status")],
                 className="sr-an-map"), side,
        dcc.Store(id=ids.ANALYST_STORE_PENDING, data=[]), dcc.Store(id=ids.ANALYST_STORE_SEEN, data=[]),
        dcc.Store(id=ids.ANALYST_STORE_SOURCE, data=None), dcc.Store(id=ids.ANALYST_STORE_CARD, data=None),
        dcc.Store(id=ids.ANALYST_STORE_SELECTED, data=None), dcc.Store(id=ids.ANALYST_STORE_VERSION, data=0),
    ])


# ------------------------------------------------------------------------------------------------ callbacks


def _status(lang: str, pending: list[dict[str, Any]], message: str | None, ok: bool = True) -> Any:
    children: list[Any] = []
    if message:
        children.append(html.P(message, className="sr-ok" if ok else "sr-warning"))
    if pending:
        children.append(html.P(t("analyst.pending", lang, n=len(pending)), className="sr-warning"))
        children.extend(html.P(f"• {d['error']}", className="sr-warning sr-an-error") for d in pending)
    return children


@callback(
    Output(ids.ANALYST_STORE_PENDING, "data"), Output(ids.ANALYST_STORE_SEEN, "data"),
    Output(ids.ANALYST_STORE_SOURCE, "data", allow_duplicate=True), Output(ids.ANALYST_STORE_CARD, "data"),
    Output(ids.ANALYST_STORE_VERSION, "data", allow_duplicate=True), Output(ids.ANALYST_STATUS, "children"),
    Output(ids.ANALYST_RETRY, "style"), Output(ids.ANALYST_EDIT, "editToolbar"),
    Input(ids.ANALYST_EDIT, "geojson"), Input(ids.ANALYST_RETRY, "n_clicks"), Input(ids.ANALYST_BUFFER, "n_clicks"),
    State(ids.ANALYST_STORE_SEEN, "data"), State(ids.ANALYST_STORE_PENDING, "data"),
    State(ids.ANALYST_STORE_SOURCE, "data"), State(ids.ANALYST_STORE_VERSION, "data"),
    State(ids.ANALYST_MODE, "value"), State(ids.ANALYST_SYMBOL, "value"), State(ids.ANALYST_LABEL, "value"),
    State(ids.ANALYST_COLOR, "value"), State(ids.ANALYST_DISTANCES, "value"),
    prevent_initial_call=True,
)
def on_draw(geojson: Any, _retry: Any, _buffer: Any, seen: Any, pending: Any, source: Any, version: Any, mode: Any,
            symbol: Any, label: Any, color: Any, distances: Any) -> tuple[Any, ...]:
    lang = current_lang()
    card: Any = no_update
    message = None
    ok = True
    if not allowed("draw"):  # callbacks pass the HTTP policy as reads: saving zones and annotations is checked here
        return (no_update, no_update, no_update, no_update, no_update,
                _status(lang, pending or [], t("auth.not_allowed", lang), False), no_update, no_update)
    if ctx.triggered_id == ids.ANALYST_BUFFER:
        if not source:
            message, ok = t("analyst.buffer.no_source", lang), False
        else:
            try:
                res = buffer_zones(source, parse_distances_km(distances), user=_user(), lang=lang)
                card, message = res["card"], t("analyst.saved_zones", lang, n=len(res["zones"]))
                version = (version or 0) + 1
            except ValueError as e:
                key = str(e)
                message, ok = (t(key, lang) if key.startswith("analyst.") else _error_text(e, lang)), False
            except Exception as e:  # noqa: BLE001 - e.g. database down: said plainly, the source is kept
                message, ok = _error_text(e, lang), False
        return (no_update, no_update, no_update, card, version, _status(lang, pending or [], message, ok),
                {"display": "block" if pending else "none"}, no_update)
    out = process_drawings((geojson or {}).get("features") or [], seen=seen or [], pending=pending or [],
                           mode=mode or "zone", symbol=symbol or "incident", label=label, color=color or COLORS[0],
                           user=_user(), lang=lang, retry=ctx.triggered_id == ids.ANALYST_RETRY)
    if not out["new"] and ctx.triggered_id != ids.ANALYST_RETRY:
        raise PreventUpdate  # e.g. the edit layer was cleared after a save: nothing new to keep
    if out["card"] is not None:
        card = out["card"]
    if out["saved"]:
        message = t("analyst.saved", lang, n=out["saved"])
        version = (version or 0) + 1
    elif out["source"] is not None and not out["pending"]:
        message = t("analyst.buffer.source_set", lang)
    clear = (out["saved"] and not out["pending"])
    # Leaflet.draw's "clear all" button is found by its text, which is translated: name it in the page's language,
    # else the delete mode stays on after every drawing
    toolbar = ({"mode": "remove", "action": t("draw.edit.clear_all.text", lang).lower(), "n_clicks": version}
               if clear else no_update)
    return (out["pending"], out["seen"], out["source"] if out["source"] is not None else no_update, card, version,
            _status(lang, out["pending"], message), {"display": "block" if out["pending"] else "none"}, toolbar)


@callback(Output(ids.ANALYST_CARD, "children"), Input(ids.ANALYST_STORE_CARD, "data"))
def show_card(card: Any) -> Any:
    return render_card(card, current_lang())


@callback(Output(ids.ANALYST_BUFFER_SOURCE, "children"), Input(ids.ANALYST_STORE_SOURCE, "data"))
def show_source(source: Any) -> Any:
    lang = current_lang()
    if not source:
        return t("analyst.buffer.no_source", lang)
    return t("analyst.buffer.source", lang, kind=t(f"analyst.geom.{source.get('type', 'Polygon')}", lang))


@callback(
    Output(ids.ANALYST_ZONES_LAYER, "children"), Output(ids.ANALYST_ANNOTATIONS_LAYER, "children"),
    Output(ids.ANALYST_ZONE_LIST, "children"), Output(ids.ANALYST_ANNOTATION_LIST, "children"),
    Input(ids.ANALYST_STORE_VERSION, "data"), prevent_initial_call=True,
)
def refresh_lists(_version: Any) -> tuple[Any, ...]:
    lang = current_lang()
    zones, anns, _ = _zones_and_annotations()
    return _zone_layers(zones), _annotation_layers(anns, lang), _zone_list(zones, lang), _annotation_list(anns, lang)


@callback(
    Output(ids.ANALYST_STORE_CARD, "data", allow_duplicate=True),
    Output(ids.ANALYST_STORE_SOURCE, "data", allow_duplicate=True),
    Input({"type": ids.ANALYST_ZONE_ITEM, "id": ALL}, "n_clicks"), prevent_initial_call=True,
)
def select_zone(clicks: Any) -> tuple[Any, Any]:
    if not ctx.triggered_id or not any(clicks or []):
        return no_update, no_update
    return zone_selected(int(ctx.triggered_id["id"]))


def zone_selected(zone_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card of a saved zone and its geometry (the next buffer's source): what selecting it shows."""
    with session_scope(db_engine(), user=_user()) as s:
        z = drawings.get_zone(s, zone_id)
    if not allowed("analyse"):
        return {"zone": _zone_summary(z), "error": t("auth.not_allowed", current_lang())}, z["geometry"]
    return _card_for(z, current_lang()), z["geometry"]


@callback(
    Output(ids.ANALYST_STORE_CARD, "data", allow_duplicate=True),
    Output(ids.ANALYST_STORE_SOURCE, "data", allow_duplicate=True),
    Input(ids.ANALYST_ZONES_GEOJSON, "clickData"), prevent_initial_call=True,
)
def click_zone(feature: Any) -> tuple[Any, Any]:
    """A click on a zone drawn on the map selects it, as its entry in the list does."""
    try:
        zone_id = int(((feature or {}).get("properties") or {})["id"])
    except (KeyError, TypeError, ValueError):
        raise PreventUpdate from None
    return zone_selected(zone_id)


@callback(
    Output(ids.ANALYST_STORE_SELECTED, "data"), Output(ids.ANALYST_SYMBOL, "value"),
    Output(ids.ANALYST_LABEL, "value"), Output(ids.ANALYST_COLOR, "value"),
    Output(ids.ANALYST_ANNOTATION_UPDATE, "disabled"),
    Input({"type": ids.ANALYST_ANN_EDIT, "id": ALL}, "n_clicks"), prevent_initial_call=True,
)
def pick_annotation(clicks: Any) -> tuple[Any, ...]:
    if not ctx.triggered_id or not any(clicks or []):
        return (no_update,) * 5
    with session_scope(db_engine(), user=_user()) as s:
        a = drawings.get_annotation(s, int(ctx.triggered_id["id"]))
    return a["id"], a["symbol"], a.get("label") or "", a["color"] if a["color"] in COLORS else COLORS[0], False


def edit_annotation(action: str, annotation_id: int, *, user: str, symbol: str | None = None,
                    label: str | None = None, color: str | None = None) -> dict[str, Any]:
    """Update (``action="update"``: symbol, label, colour) or soft-delete (``"delete"``) an annotation."""
    with session_scope(db_engine(), user=user) as s:
        if action == "delete":
            return drawings.delete_annotation(s, annotation_id, user=user)
        return drawings.update_annotation(s, annotation_id, user=user, symbol=symbol, label=label, color=color)


@callback(
    Output(ids.ANALYST_STORE_VERSION, "data", allow_duplicate=True),
    Output(ids.ANALYST_STATUS, "children", allow_duplicate=True),
    Output(ids.ANALYST_STORE_SELECTED, "data", allow_duplicate=True),
    Input(ids.ANALYST_ANNOTATION_UPDATE, "n_clicks"), Input({"type": ids.ANALYST_ANN_DELETE, "id": ALL}, "n_clicks"),
    State(ids.ANALYST_STORE_SELECTED, "data"), State(ids.ANALYST_SYMBOL, "value"), State(ids.ANALYST_LABEL, "value"),
    State(ids.ANALYST_COLOR, "value"), State(ids.ANALYST_STORE_VERSION, "data"), prevent_initial_call=True,
)
def change_annotation(_update: Any, deletes: Any, selected: Any, symbol: Any, label: Any, color: Any,
                      version: Any) -> tuple[Any, ...]:
    lang = current_lang()
    trig = ctx.triggered_id
    if isinstance(trig, dict):
        if not any(deletes or []):
            return no_update, no_update, no_update
        action, target = "delete", int(trig["id"])
    elif selected:
        action, target = "update", int(selected)
    else:
        return no_update, no_update, no_update
    if not allowed("draw"):
        return no_update, html.P(t("auth.not_allowed", lang), className="sr-warning"), no_update
    try:
        edit_annotation(action, target, user=_user(), symbol=symbol, label=label, color=color)
    except Exception as e:  # noqa: BLE001 - said plainly; nothing changed
        return no_update, html.P(_error_text(e, lang), className="sr-warning"), no_update
    msg = t(f"analyst.annotation.{'deleted' if action == 'delete' else 'updated'}", lang, id=target)
    return (version or 0) + 1, html.P(msg, className="sr-ok"), None if action == "delete" else selected


# ------------------------------------------------------------------------------------------------ replay


def _in_force(p: dict[str, Any], at: datetime) -> bool:
    onset, expires = p.get("onset"), p.get("expires")
    return ((not onset or datetime.fromisoformat(str(onset)) <= at)
            and (not expires or datetime.fromisoformat(str(expires)) > at))


def past_layers(past: dict[str, Any], at: datetime, lang: str) -> tuple[list[Any], list[Any], list[Any]]:
    """Map layers of the picture at ``at`` (:func:`layers.read.history.situation_at`): hazards in force then and open
    incidents (replay layer), impact zones, annotations (drawn as on the live map).
    """
    hazards = []
    for f in past["hazards"]["features"]:
        p = f["properties"]
        if not f["geometry"] or p.get("status") not in (None, "active") or not _in_force(p, at):
            continue
        c = LEVEL_COLOURS.get(p.get("warning_level") or "", "#757575")
        hazards.append(dl.GeoJSON(data={"type": "Feature", "geometry": f["geometry"], "properties": {}},
                                  style={"color": c, "weight": 2, "fillColor": c, "fillOpacity": 0.18},
                                  children=[dl.Tooltip(f"{p.get('name') or ''} · "
                                                       f"{vocab_label('hazard_kind', p.get('kind') or '', lang)}")]))
    incidents = [f for f in past["incidents"]["features"]
                 if f["geometry"] and f["geometry"]["type"] == "Point" and f["properties"].get("status") != "closed"]
    points = [dl.CircleMarker(center=[f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0]], radius=5,
                              color="#ffffff", weight=1, fillOpacity=0.9,
                              fillColor=SEVERITY_COLOURS.get(f["properties"].get("severity") or "", "#455a64"),
                              children=[dl.Tooltip(f"{f['properties'].get('name') or ''} · "
                                                   f"{vocab_label('incident_kind', f['properties'].get('kind') or '', lang)}")])
              for f in incidents[-REPLAY_INCIDENT_LIMIT:]]
    zones = [{"kind": f["properties"].get("kind") or "drawn", "geometry": f["geometry"]}
             for f in past["impact_zones"]["features"] if f["geometry"]]
    anns = [{"symbol": f["properties"].get("kind") or "note", "label": f["properties"].get("label"),
             "color": f["properties"].get("color") or "#e53935", "geometry": f["geometry"]}
            for f in past["annotations"]["features"]
            if f["geometry"] and f["properties"].get("status", "active") == "active"]
    return hazards + points, _zone_layers_past(zones), _annotation_layers(anns, lang)


def _zone_layers_past(zones: list[dict[str, Any]]) -> list[Any]:
    return [dl.GeoJSON(data={"type": "Feature", "geometry": z["geometry"], "properties": {}},
                       style={"color": ZONE_COLOURS.get(z["kind"], "#d84315"), "weight": 2, "fillOpacity": 0.12})
            for z in zones]


@callback(
    Output(ids.ANALYST_REPLAY_LAYER, "children"),
    Output(ids.ANALYST_ZONES_LAYER, "children", allow_duplicate=True),
    Output(ids.ANALYST_ANNOTATIONS_LAYER, "children", allow_duplicate=True),
    Output(ids.ANALYST_REPLAY_BADGE, "children"), Output(ids.ANALYST_REPLAY_BADGE, "className"),
    Output(ids.ANALYST_REPLAY_BADGE, "title"),
    Input(replay_id("analyst", "state"), "data"), prevent_initial_call=True,
)
def show_replay(state: Any) -> tuple[Any, ...]:
    """Replay mode: the map shows hazards, incidents, impact zones and annotations as they were at the replay time,
    under a "回放 HH:MM" badge; live mode: the live zones and annotations again."""
    lang = current_lang()
    at = replay_time(state)
    if at is None:
        zones, anns, _ = _zones_and_annotations()
        return [], _zone_layers(zones), _annotation_layers(anns, lang), *replay_badge(None, lang)
    past = replay_situation(state, layers=REPLAY_LAYERS)
    replay, zones_, anns_ = past_layers(past or {k: {"features": []} for k in REPLAY_LAYERS}, at, lang)
    return replay, zones_, anns_, *replay_badge(at, lang)
