"""Planner (``/planner``): shelter coverage of a county, a prefecture or a drawn zone, with load, gaps and export.

Public: :func:`layout`, :func:`run_coverage`, :func:`display_cells`, :func:`cells_csv`, :func:`result_geojson`,
and the callbacks :func:`run`, :func:`county_options`, :func:`preset_distance`, :func:`export`.

The numbers come from :func:`dashboards.services.coverage.shelter_coverage`, the service behind
``POST /api/v1/analysis/shelter-coverage``, on the scope of :func:`dashboards.services.coverage.coverage_scope`
(a region, or a drawn zone), so the page and the API show the same totals for the same input.
Demand is always counted on res-8 H3 cells; the map draws them as hexagons only for the scope and, when there are
more than :data:`MAX_DISPLAY_CELLS`, sums them onto coarser parent cells for display (the tables and exports keep
res 8). Results stay on the server (a small cache keyed by the run); the browser gets the run's parameters, so an
export on another worker recomputes the same result.
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
import dash_leaflet as dl
import numpy as np
import shapely
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate
from shapely.geometry import mapping

from dashboards import ids
from dashboards.auth import allowed
from dashboards.components.basemap import base_map
from dashboards.components.drawlocal import draw_locale
from dashboards.components.maplayers import map_extras, map_kwargs, register_maps
from dashboards.context import db_engine
from dashboards.context import settings as current_settings
from dashboards.errors import classify
from dashboards.i18n import current_lang, normalize_lang, t, vocab_label
from dashboards.services.coverage import check_params, coverage_scope, shelter_coverage
from dashboards.services.zones import DEFAULT_RES
from dashboards.tiles import basemap_config
from geoops import h3cells
from geoops.h3cells import parent_cells
from layers.read import analysis as store
from layers.store import vocab

dash.register_page(__name__, path="/planner", name="planner", order=3, title=lambda: t("planner.title"))
register_maps("planner", ids.PLANNER_MAP,
              overlays=("shelters", "hazards", "incidents", "resources", "protection_targets", "admin_regions"),
              checked=("shelters",), tools=("search",))

SHELTER_KINDS = tuple(vocab.keys("shelter_kind"))
#: distance presets, metres
PRESETS = {"walk": 2000.0, "drive": 10000.0}
MAX_DISTANCE_M = 100_000.0
#: at most this many hexagons go to the browser; beyond that cells are summed onto coarser parents
MAX_DISPLAY_CELLS = 3000
#: the GeoJSON export holds res-8 hexagons up to this many cells, else the display cells (the CSV is always res 8)
MAX_EXPORT_HEXES = 60_000
#: a cell is "covered" when at most this share of its people is left without a place, "uncovered" when at most
#: this share has one; "partly" in between
SHARE_TOL = 0.005
STATUS_COLOURS = {"covered": "#2e7d32", "partly": "#f9a825", "uncovered": "#c62828"}
COORD_DECIMALS = 5
_CACHE_SIZE = 6
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


# ------------------------------------------------------------------------------------------------ computing


def run_coverage(conn: Any, params: dict[str, Any], lang: str) -> dict[str, Any]:
    """Coverage of one run, as the API answers it: ``params`` = ``{scope, max_distance_m, kinds}``.

    ``scope`` is ``{"adcode": "150102"}`` or ``{"geometry": <GeoJSON Polygon>}``. Returns the dict of
    :func:`dashboards.services.coverage.shelter_coverage` plus ``scope`` (``adcode, name, name_en, level`` or
    ``geometry: True``) and ``scope_geometry`` (shapely, for display only).
    """
    scope = params["scope"]
    s = current_settings()
    zone, info, _ = coverage_scope(conn, scope if "adcode" in scope else scope["geometry"],
                                   service_area=s.service_area, max_area_km2=s.max_zone_area_km2)
    out = shelter_coverage(conn, zone, max_distance_m=float(params["max_distance_m"]),
                           kinds=params.get("kinds") or None, candidates="closed", res=DEFAULT_RES, lang=lang)
    out["scope"] = info
    out["scope_geometry"] = zone
    return out


def cell_status(population: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """``covered`` / ``partly`` / ``uncovered`` per cell from the share of its people with a place."""
    pop = np.asarray(population, dtype=float)
    share = np.divide(np.asarray(covered, dtype=float), pop, out=np.zeros(pop.size), where=pop > 0)
    return np.where(share >= 1 - SHARE_TOL, "covered", np.where(share <= SHARE_TOL, "uncovered", "partly"))


def display_cells(result: dict[str, Any], *, max_cells: int = MAX_DISPLAY_CELLS) -> dict[str, Any]:
    """The result's cells for the map: res 8, or summed onto the finest parent res with at most ``max_cells``.

    Returns ``{"res", "h3" (int64 array), "population", "covered", "uncovered", "status"}``; sums are conserved.
    """
    c = result["cells"]
    cells = np.array([int(x, 16) for x in c["h3"]], dtype=np.uint64).view(np.int64)
    pop, cov, unc = (np.asarray(c[k], dtype=float) for k in ("population", "covered", "uncovered"))
    res = int(result.get("res", DEFAULT_RES))
    while cells.size > max_cells and res > 0:
        res -= 1
        parents = parent_cells(cells, res=res + 1, parent_res=res)
        cells, inv = np.unique(parents, return_inverse=True)
        pop, cov, unc = (np.bincount(inv, weights=v, minlength=cells.size) for v in (pop, cov, unc))
    return {"res": res, "h3": cells, "population": pop, "covered": cov, "uncovered": unc,
            "status": cell_status(pop, cov)}


def _ring(g: Any) -> list[list[float]]:
    return np.round(shapely.get_coordinates(g), COORD_DECIMALS).tolist()


def hex_features(cells: np.ndarray, props: dict[str, Any]) -> list[dict[str, Any]]:
    """GeoJSON hexagons (coordinates rounded to 1e-5 degree) with per-cell properties (lists, same order)."""
    keys = list(props)
    out = []
    for i, (cell, g) in enumerate(zip(cells.tolist(), h3cells.cell_boundaries(cells), strict=True)):
        p: dict[str, Any] = {"h3": format(cell & 0xFFFFFFFFFFFFFFFF, "x")}
        for k in keys:
            v = props[k][i]
            p[k] = round(float(v), 2) if isinstance(v, (float, np.floating)) else (
                str(v) if isinstance(v, np.str_) else v)
        out.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [_ring(g)]},
                    "properties": p})
    return out


def cells_csv(result: dict[str, Any], *, run_at: str | None = None) -> str:
    """The run as one CSV file in four blocks, each with its own header line and a blank line after it:

    1. ``query``: ``scope, adcode, distance_m, kinds, res, population_source, run_at`` (what was asked, when);
    2. ``cell``: one row per res-8 cell ``h3, lon, lat, population, covered, uncovered, status`` (persons,
       area-weighted; lon/lat of the cell's centre, EPSG:4326);
    3. ``shelter``: per shelter considered ``id, name, kind, status, lon, lat, capacity, occupancy, free, load``;
    4. ``county``: the counties of the scope ``adcode, county, population, covered, uncovered, coverage_ratio``.

    The first column names the block, so a spreadsheet filter on it separates them.
    """
    c = result["cells"]
    status = cell_status(np.asarray(c["population"], dtype=float), np.asarray(c["covered"], dtype=float))
    cells = np.array([int(x, 16) for x in c["h3"]], dtype=np.uint64).view(np.int64)
    lon, lat = h3cells.cell_centres(cells) if cells.size else (np.zeros(0), np.zeros(0))
    scope = result.get("scope") or {}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["block", "scope", "adcode", "distance_m", "kinds", "res", "population_source", "run_at"])
    w.writerow(["query", scope.get("name") or ("drawn zone" if scope.get("geometry") else ""), scope.get("adcode", ""),
                result["max_distance_m"], " ".join(result.get("kinds") or ["all"]), result.get("res", DEFAULT_RES),
                (result.get("population_source") or {}).get("source", ""), run_at or ""])
    w.writerow([])
    w.writerow(["block", "h3", "lon", "lat", "population", "covered", "uncovered", "status"])
    for row in zip(c["h3"], np.round(lon, 6).tolist(), np.round(lat, 6).tolist(), c["population"], c["covered"],
                   c["uncovered"], status.tolist(), strict=True):
        w.writerow(["cell", *row])
    w.writerow([])
    w.writerow(["block", "id", "name", "kind", "status", "lon", "lat", "capacity", "occupancy", "free", "load"])
    for s in result["shelters"]:
        w.writerow(["shelter", s["id"], s["name"] or "", s["kind"], s["status"], s["lon"], s["lat"], s["capacity"],
                    s["occupancy"], s["free"], s["load"]])
    w.writerow([])
    w.writerow(["block", "adcode", "county", "population", "covered", "uncovered", "coverage_ratio"])
    for r in scope_counties(result):
        w.writerow(["county", r["adcode"] or "", r["name"], r["population"], r["covered"], r["uncovered"],
                    r["coverage_ratio"]])
    return buf.getvalue()


def result_geojson(result: dict[str, Any]) -> dict[str, Any]:
    """A FeatureCollection of the run: cell hexagons (res 8, or the display res when huge), shelters, gap sites."""
    c = result["cells"]
    if len(c["h3"]) <= MAX_EXPORT_HEXES:
        d = display_cells(result, max_cells=MAX_EXPORT_HEXES)
    else:
        d = display_cells(result)
    feats = [{**f, "properties": {"layer": "cell", "res": d["res"], **f["properties"]}} for f in hex_features(
        d["h3"], {k: d[k] for k in ("population", "covered", "uncovered", "status")})]
    for s in result["shelters"]:
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                      "properties": {"layer": "shelter", **{k: s[k] for k in (
                          "id", "name", "kind", "status", "capacity", "occupancy", "free", "load", "load_ratio")}}})
    for g in result["gaps"]:
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [g["lon"], g["lat"]]},
                      "properties": {"layer": "gap", **{k: g[k] for k in (
                          "rank", "shelter_id", "name", "kind", "capacity", "added_covered", "covered_after")}}})
    return {"type": "FeatureCollection", "features": feats, "max_distance_m": result["max_distance_m"],
            "kinds": result["kinds"], "scope": result["scope"], "totals": result["totals"],
            "population_source": result["population_source"]}


def _cached(key: str | None, params: dict[str, Any], lang: str | None = None) -> dict[str, Any]:
    with _cache_lock:
        hit = _cache.get(key or "")
        if hit is not None:
            _cache.move_to_end(key or "")
            return hit
    with db_engine().connect() as conn:
        result = run_coverage(conn, params, lang or current_lang())
    if key:
        with _cache_lock:
            _cache[key] = result
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return result


# ------------------------------------------------------------------------------------------------ layout


def _region_label(r: dict[str, Any], lang: str) -> str:
    return (r.get("name_en") or r["name"]) if lang == "en" else r["name"]


def _regions(level: str, lang: str, prefix: str | None = None) -> list[dict[str, str]]:
    with db_engine().connect() as conn:
        rows = store.regions_of_level(conn, level=level, prefix=prefix, geometry=False)
    return [{"label": f"{_region_label(r, lang)} ({r['adcode']})", "value": r["adcode"]} for r in rows]


def _field(label_key: str, lang: str, control: Any) -> html.Div:
    return html.Div(className="sr-pl-field", children=[html.Label(t(label_key, lang), className="sr-pl-label"),
                                                       control])


def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    status = ""
    try:
        prefectures = _regions("prefecture", lang)
        counties = _regions("county", lang)
    except Exception as e:  # noqa: BLE001 - the page still opens; it says why the lists are empty
        prefectures, counties = [], []
        status = t(f"error.{classify(e)[1]}", lang)
    controls = html.Div(className="sr-pl-controls", children=[
        html.H1(t("planner.title", lang), className="sr-pl-title"),
        _field("planner.scope", lang, dcc.RadioItems(
            id=ids.PLANNER_SCOPE_KIND, value="county", className="sr-pl-radio",
            options=[{"label": t(f"planner.scope.{k}", lang), "value": k} for k in ("county", "prefecture", "drawn")])),
        _field("planner.prefecture", lang, dcc.Dropdown(id=ids.PLANNER_PREFECTURE, options=prefectures,
                                                        placeholder=t("planner.pick", lang), clearable=True)),
        _field("planner.county", lang, dcc.Dropdown(id=ids.PLANNER_COUNTY, options=counties,
                                                    placeholder=t("planner.pick", lang), clearable=True)),
        html.P(t("planner.draw_hint", lang), className="sr-pl-hint"),
        _field("planner.distance", lang, html.Div([
            dcc.RadioItems(id=ids.PLANNER_DISTANCE_PRESET, value="walk", className="sr-pl-radio", options=[
                {"label": t(f"planner.distance.{k}", lang), "value": k} for k in ("walk", "drive", "custom")]),
            # min and step agree with the presets (2000, 10000): the browser marks a value off the step invalid
            dcc.Input(id=ids.PLANNER_DISTANCE, type="number", value=PRESETS["walk"], min=100, max=MAX_DISTANCE_M,
                      step=100, debounce=True, className="sr-pl-number"),
            html.Span(t("planner.metres", lang), className="sr-pl-unit"),
        ])),
        _field("planner.kinds", lang, dcc.Checklist(
            id=ids.PLANNER_KINDS, value=list(SHELTER_KINDS), className="sr-pl-check",
            options=[{"label": vocab_label("shelter_kind", k, lang), "value": k} for k in SHELTER_KINDS])),
        html.Button(t("planner.run", lang), id=ids.PLANNER_RUN, n_clicks=0, className="sr-pl-run"),
        html.Div(className="sr-pl-export", children=[
            html.Button(t("planner.export.csv", lang), id=ids.PLANNER_EXPORT_CSV, n_clicks=0, disabled=True),
            html.Button(t("planner.export.geojson", lang), id=ids.PLANNER_EXPORT_GEOJSON, n_clicks=0,
                        disabled=True),
        ]),
        html.Div(status, id=ids.PLANNER_STATUS, className="sr-pl-status", role="status"),
    ])
    the_map = base_map(ids.PLANNER_MAP, **map_kwargs("planner", lang), children=[
        dl.LayerGroup(id=ids.PLANNER_SCOPE_LAYER),
        dl.LayerGroup(id=ids.PLANNER_CELL_LAYER),
        dl.LayerGroup(id=ids.PLANNER_SHELTER_LAYER),
        dl.FeatureGroup([dl.EditControl(
            id=ids.PLANNER_DRAW, position="topleft",
            draw={"polygon": True, "rectangle": True, "polyline": False, "circle": False, "marker": False,
                  "circlemarker": False})]),
    ])
    results = html.Div(className="sr-pl-results", children=[
        html.Div(id=ids.PLANNER_TOTALS, className="sr-pl-totals"),
        html.H2(t("planner.loads", lang)), html.Div(id=ids.PLANNER_LOAD_TABLE),
        html.H2(t("planner.regions", lang)), html.Div(id=ids.PLANNER_REGION_TABLE),
        html.H2(t("planner.gaps", lang)), html.Div(id=ids.PLANNER_GAP_TABLE),
    ])
    return html.Div(id=ids.PLANNER_ROOT, className="sr-pl", lang=lang, children=[
        draw_locale(lang),
        dcc.Store(id=ids.PLANNER_RESULT, data=None),
        dcc.Store(id="planner-lang", data=lang),
        dcc.Download(id=ids.PLANNER_DOWNLOAD),
        controls,
        # the legend lies over the map's lower right corner, inside the viewport (not in a loading wrapper, whose
        # box sits above the map)
        html.Div(className="sr-pl-map", children=[the_map, *map_extras("planner", lang),
                                                   html.Div(id=ids.PLANNER_LEGEND, className="sr-pl-legend")]),
        dcc.Loading(results, type="default", parent_className="sr-pl-results-wrap"),
    ])


# ------------------------------------------------------------------------------------------------ formatting


def _n(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _table(head: list[str], rows: list[list[Any]], num_from: int, table_id: str | None = None) -> html.Table:
    extra: dict[str, Any] = {"id": table_id} if table_id else {}  # Dash refuses id=None
    return html.Table(className="sr-table sr-pl-table", **extra, children=[
        html.Thead(html.Tr([html.Th(h, className="sr-num" if i >= num_from else "") for i, h in enumerate(head)])),
        html.Tbody([html.Tr([html.Td(v, className="sr-num" if i >= num_from else "") for i, v in enumerate(r)])
                    for r in rows]),
    ])


def fill_ratio(s: dict[str, Any]) -> float | None:
    """How full a shelter is after the assignment: (occupancy + assigned) / capacity."""
    return (s["occupancy"] + s["load"]) / s["capacity"] if s["capacity"] else None


def load_rows(result: dict[str, Any], lang: str) -> list[list[Any]]:
    """Shelter load table: name, kind, capacity, occupancy, assigned, load % (fullest first)."""
    rows = sorted(result["shelters"], key=lambda s: (-(fill_ratio(s) or 0), s["id"]))
    return [[s["name"] or f"#{s['id']}", vocab_label("shelter_kind", s["kind"], lang), _n(s["capacity"]),
             _n(s["occupancy"]), _n(s["load"]), _pct(fill_ratio(s))] for s in rows]


def scope_counties(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The county rows of the run that lie in its scope: a county scope's own row, a prefecture's counties (adcode
    prefix), every row for a drawn zone; largest gap first."""
    code = (result.get("scope") or {}).get("adcode")
    level = (result.get("scope") or {}).get("level")
    rows = result["by_region"]["county"]
    if code and level == "county":
        rows = [r for r in rows if r["adcode"] == code]
    elif code and level == "prefecture":
        rows = [r for r in rows if (r["adcode"] or "").startswith(code[:4]) or r.get("parent_adcode") == code]
    return sorted(rows, key=lambda r: -r["uncovered"])


def region_rows(result: dict[str, Any], lang: str) -> list[list[Any]]:
    """Per-county totals of the counties in the scope: county, population, covered, uncovered, coverage %."""
    return [[_region_label(r, lang) if r["adcode"] else r["name"], _n(r["population"]), _n(r["covered"]),
             _n(r["uncovered"]), _pct(r["coverage_ratio"])] for r in scope_counties(result)]


def gap_rows(result: dict[str, Any], lang: str) -> list[list[Any]]:
    """Ranked gaps: rank, closed shelter, kind, capacity, people it would add, covered after."""
    return [[g["rank"], g["name"] or f"#{g['shelter_id']}", vocab_label("shelter_kind", g["kind"], lang),
             _n(g["capacity"]), _n(g["added_covered"]), _n(g["covered_after"])] for g in result["gaps"]]


def cell_layers(d: dict[str, Any], lang: str) -> list[Any]:
    """One GeoJSON layer per status (static styles), hexagons with a tooltip."""
    out = []
    for status, colour in STATUS_COLOURS.items():
        sel = np.flatnonzero(d["status"] == status)
        if not sel.size:
            continue
        feats = hex_features(d["h3"][sel], {"population": d["population"][sel], "covered": d["covered"][sel]})
        for f in feats:
            p = f["properties"]
            p["tooltip"] = t("planner.cell_tooltip", lang, status=t(f"planner.status.{status}", lang),
                             population=_n(p["population"]), covered=_n(p["covered"]))
        out.append(dl.GeoJSON(data={"type": "FeatureCollection", "features": feats},
                              style={"color": colour, "weight": 0.4, "fillColor": colour, "fillOpacity": 0.45,
                                     "opacity": 0.7}))
    return out


def shelter_layers(result: dict[str, Any], lang: str) -> list[Any]:
    """Open shelters as circles sized by assigned people (colour by how full); closed gap sites as rings."""
    shelters = result["shelters"]
    top = max([s["load"] for s in shelters] + [1.0])
    out: list[Any] = []
    for s in shelters:
        fill = fill_ratio(s) or 0.0
        colour = "#c62828" if fill >= 0.999 else "#ef6c00" if fill >= 0.8 else "#1565c0"
        text = t("planner.shelter_tooltip", lang, name=s["name"] or f"#{s['id']}",
                 kind=vocab_label("shelter_kind", s["kind"], lang), load=_n(s["load"]), capacity=_n(s["capacity"]),
                 fill=_pct(fill))
        out.append(dl.CircleMarker(center=[s["lat"], s["lon"]], radius=5 + 13 * math.sqrt(s["load"] / top),
                                   color="#ffffff", weight=1.5, fillColor=colour, fillOpacity=0.85,
                                   children=dl.Tooltip(text)))
    for g in result["gaps"]:
        text = t("planner.gap_tooltip", lang, rank=g["rank"], name=g["name"] or f"#{g['shelter_id']}",
                 added=_n(g["added_covered"]))
        out.append(dl.CircleMarker(center=[g["lat"], g["lon"]], radius=9, color="#6a1b9a", weight=3,
                                   fillColor="#ffffff", fillOpacity=0.6,
                                   children=[dl.Tooltip(f"{g['rank']}", permanent=True, direction="center",
                                                        className="sr-pl-gap-label"), dl.Popup(text)]))
    return out


def scope_layer(result: dict[str, Any]) -> tuple[list[Any], list[list[float]]]:
    """The scope's outline (simplified for display) and its bounds for the map's viewport."""
    g = result["scope_geometry"]
    w, s, e, n = g.bounds
    simple = shapely.simplify(g, 0.002, preserve_topology=True)
    simple = shapely.transform(simple, lambda xy: np.round(xy, COORD_DECIMALS))
    layer = dl.GeoJSON(data={"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": mapping(simple), "properties": {}}]}, interactive=False,
        style={"color": "#12263f", "weight": 2, "fill": False, "dashArray": "6 4"})
    return [layer], [[s, w], [n, e]]


def legend(d: dict[str, Any], lang: str) -> list[Any]:
    items: list[Any] = [html.Span(t("planner.legend", lang, res=d["res"]), className="sr-pl-legend-title")]
    for status, colour in STATUS_COLOURS.items():
        items.append(html.Span([html.I(style={"background": colour}), t(f"planner.status.{status}", lang)],
                               className="sr-pl-legend-item"))
    return items


def totals_block(result: dict[str, Any], lang: str) -> list[Any]:
    tt = result["totals"]
    scope = result["scope"]
    name = _region_label(scope, lang) if "adcode" in scope else t("planner.scope.drawn", lang)

    def tile(key: str, value: str, cls: str = "") -> html.Div:
        return html.Div([html.Div(t(key, lang), className="sr-pl-kpi-label"),
                         html.Div(value, className="sr-pl-kpi-value")], className=f"sr-pl-kpi {cls}".strip())

    return [
        html.Div(t("planner.summary", lang, scope=name, distance=_n(result["max_distance_m"])),
                 className="sr-pl-summary"),
        html.Div(className="sr-pl-kpis", children=[
            tile("planner.total.population", _n(tt["population"])),
            tile("planner.total.covered", _n(tt["covered"]), "ok"),
            tile("planner.total.uncovered", _n(tt["uncovered"]), "bad"),
            tile("planner.total.ratio", _pct(tt["coverage_ratio"])),
            tile("planner.total.free", _n(tt["free"])),
        ]),
    ]


# ------------------------------------------------------------------------------------------------ callbacks


@callback(Output(ids.PLANNER_COUNTY, "options"), Input(ids.PLANNER_PREFECTURE, "value"),
          State("planner-lang", "data"), prevent_initial_call=True)
def county_options(prefecture: str | None, lang: str | None) -> list[dict[str, str]]:
    """Counties of the chosen prefecture (every county when none is chosen)."""
    try:
        return _regions("county", lang or current_lang(), prefix=prefecture[:4] if prefecture else None)
    except Exception:  # noqa: BLE001 - keep the previous list when the database is unreachable
        raise PreventUpdate from None


@callback(Output(ids.PLANNER_DISTANCE, "value"), Input(ids.PLANNER_DISTANCE_PRESET, "value"),
          prevent_initial_call=True)
def preset_distance(preset: str | None) -> Any:
    """Walking 2 km / driving 10 km fill the distance field; "custom" leaves it to the user."""
    return PRESETS.get(preset or "", no_update)


def _drawn_polygon(drawn: dict[str, Any] | None) -> dict[str, Any] | None:
    feats = [f for f in (drawn or {}).get("features") or []
             if (f.get("geometry") or {}).get("type") in ("Polygon", "MultiPolygon")]
    return feats[-1]["geometry"] if feats else None


def scope_params(scope_kind: str | None, prefecture: str | None, county: str | None,
                 drawn: dict[str, Any] | None) -> dict[str, Any] | None:
    """The API's ``scope`` for the controls, or None when the chosen kind has nothing chosen yet."""
    if scope_kind == "prefecture":
        return {"adcode": prefecture} if prefecture else None
    if scope_kind == "drawn":
        g = _drawn_polygon(drawn)
        return {"geometry": g} if g else None
    return {"adcode": county} if county else None


@callback(
    Output(ids.PLANNER_RESULT, "data"),
    Output(ids.PLANNER_STATUS, "children"),
    Output(ids.PLANNER_TOTALS, "children"),
    Output(ids.PLANNER_LOAD_TABLE, "children"),
    Output(ids.PLANNER_REGION_TABLE, "children"),
    Output(ids.PLANNER_GAP_TABLE, "children"),
    Output(ids.PLANNER_CELL_LAYER, "children"),
    Output(ids.PLANNER_SHELTER_LAYER, "children"),
    Output(ids.PLANNER_SCOPE_LAYER, "children"),
    Output(ids.PLANNER_LEGEND, "children"),
    Output(ids.PLANNER_MAP, "viewport"),
    Output(ids.PLANNER_EXPORT_CSV, "disabled"),
    Output(ids.PLANNER_EXPORT_GEOJSON, "disabled"),
    Input(ids.PLANNER_RUN, "n_clicks"),
    State(ids.PLANNER_SCOPE_KIND, "value"),
    State(ids.PLANNER_PREFECTURE, "value"),
    State(ids.PLANNER_COUNTY, "value"),
    State(ids.PLANNER_DRAW, "geojson"),
    State(ids.PLANNER_DISTANCE_PRESET, "value"),
    State(ids.PLANNER_DISTANCE, "value"),
    State(ids.PLANNER_KINDS, "value"),
    State("planner-lang", "data"),
    prevent_initial_call=True,
    running=[(Output(ids.PLANNER_RUN, "disabled"), True, False)],
)
def run(n_clicks: int | None, scope_kind: str | None, prefecture: str | None, county: str | None,
        drawn: dict[str, Any] | None, preset: str | None, distance: float | None, kinds: list[str] | None,
        lang: str | None) -> tuple[Any, ...]:
    """Run the coverage query and draw map, totals and tables (the page's main callback)."""
    lang = normalize_lang(lang) or current_lang()
    # a preset is its distance even when "run" is clicked before the field has been filled from it (the field
    # follows the preset by a round trip to the server; a quick click ran the previous preset's distance)
    distance = PRESETS.get(preset or "", distance)
    keep = (no_update,) * 11
    if not n_clicks:
        raise PreventUpdate
    if not allowed("plan"):  # callbacks pass the HTTP policy as reads: planning is checked here
        return (no_update, t("auth.not_allowed", lang), *keep)
    scope = scope_params(scope_kind, prefecture, county, drawn)
    if scope is None:
        return (no_update, t(f"planner.need.{scope_kind or 'county'}", lang), *keep)
    if not isinstance(distance, (int, float)) or not 0 < float(distance) <= MAX_DISTANCE_M:
        return (no_update, t("planner.bad_distance", lang, max=_n(MAX_DISTANCE_M)), *keep)
    if not kinds:
        return (no_update, t("planner.need.kinds", lang), *keep)
    params = {"scope": scope, "max_distance_m": float(distance),
              "kinds": None if set(kinds) == set(SHELTER_KINDS) else sorted(kinds)}
    key = uuid.uuid4().hex
    try:
        result = _cached(key, params, lang)
    except Exception as e:  # noqa: BLE001 - a user message instead of a traceback
        return (no_update, f"{t(f'error.{classify(e)[1]}', lang)}: {e}", *keep)
    d = display_cells(result)
    scope_layers, bounds = scope_layer(result)
    head_load = [t(f"planner.col.{k}", lang) for k in ("name", "kind", "capacity", "occupancy", "assigned", "load")]
    head_reg = [t(f"planner.col.{k}", lang) for k in ("county", "population", "covered", "uncovered", "ratio")]
    head_gap = [t(f"planner.col.{k}", lang) for k in ("rank", "site", "kind", "capacity", "added", "after")]
    gaps = (_table(head_gap, gap_rows(result, lang), 3) if result["gaps"]
            else html.P(t("planner.no_gaps", lang), className="sr-pl-hint"))
    status: Any = t("planner.done", lang, cells=_n(len(result["cells"]["h3"])), shelters=_n(len(result["shelters"])),
               ms=_n(result["timing_ms"]["total"]))
    if not result["cells"]["h3"]:  # no populated cell: the scope lies outside the loaded population
        status = html.Span([status, html.Br(), t("planner.no_population", lang)], className="sr-warning")
    return ({"key": key, "params": params}, status, totals_block(result, lang),
            _table(head_load, load_rows(result, lang), 2, "planner-load-rows"),
            _table(head_reg, region_rows(result, lang), 1), gaps,
            cell_layers(d, lang), shelter_layers(result, lang), scope_layers, legend(d, lang),
            fit_viewport(bounds, lang), False, False)


def fit_viewport(bounds: list[list[float]], lang: str) -> dict[str, Any]:
    """Fly to ``bounds`` but never past the basemap's last zoom (offline tiles stop at 12: beyond, a grey map)."""
    max_zoom = int(basemap_config(current_settings(), lang)["max_zoom"])
    return {"bounds": bounds, "transition": "flyToBounds", "options": {"maxZoom": max_zoom, "padding": [24, 24]}}


@callback(Output(ids.PLANNER_DOWNLOAD, "data"),
          Output(ids.PLANNER_STATUS, "children", allow_duplicate=True),
          Input(ids.PLANNER_EXPORT_CSV, "n_clicks"), Input(ids.PLANNER_EXPORT_GEOJSON, "n_clicks"),
          State(ids.PLANNER_RESULT, "data"), State("planner-lang", "data"), prevent_initial_call=True)
def export(n_csv: int | None, n_geojson: int | None, run_state: dict[str, Any] | None, lang: str | None = None,
           fmt: str | None = None) -> tuple[Any, Any]:
    """The last run as CSV (one row per res-8 cell) or GeoJSON (cells, shelters, gap sites); a refusal in the status.

    The run's parameters come back from the browser: checked as the API checks them, and the run is bounded as every
    coverage run is (:data:`dashboards.services.coverage.MAX_COVERAGE_PAIRS`).
    """
    lang = normalize_lang(lang) or current_lang()
    if not allowed("plan"):  # the callback policy refuses it first (403); this covers direct calls
        return no_update, t("auth.not_allowed", lang)
    if fmt is None:
        trig = dash.ctx.triggered_id if dash.ctx else None
        fmt = "geojson" if trig == ids.PLANNER_EXPORT_GEOJSON else "csv"
    if not isinstance(run_state, dict):
        raise PreventUpdate
    try:
        result = _cached(run_state.get("key") if isinstance(run_state.get("key"), str) else None,
                         check_params(run_state.get("params")), lang)
    except Exception as e:  # noqa: BLE001 - a user message instead of a traceback
        return no_update, f"{t(f'error.{classify(e)[1]}', lang)}: {e}"
    scope = result["scope"]
    stem = f"coverage_{scope.get('adcode', 'zone')}_{int(result['max_distance_m'])}m"
    if fmt == "geojson":
        return {"content": json.dumps(result_geojson(result), ensure_ascii=False, separators=(",", ":")),
                "filename": f"{stem}.geojson", "type": "application/geo+json"}, no_update
    run_at = datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    return {"content": cells_csv(result, run_at=run_at), "filename": f"{stem}.csv", "type": "text/csv"}, no_update
