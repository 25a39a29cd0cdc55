"""The planner page's callbacks as plain functions on the demo database.

What a planner acts on is checked against the API function for the same input (same totals, same loads) and the
exported CSV against an independent oracle: the scope population recomputed with h3-py cell outlines and PostGIS
geography areas (``ST_Area(ST_Intersection(cell, county)::geography) / ST_Area(cell::geography)`` x cell population).
"""

from __future__ import annotations

import csv
import io
import json
import math

import dash
import h3
import pytest
from sqlalchemy import text

from dashboards import ids
from dashboards.app import create_app
from dashboards.i18n import t
from layers.store.settings import Settings
from tests.conftest import api_token, authorize, signed_in

pytestmark = pytest.mark.db

ALL_KINDS = ["emergency", "fixed", "central"]


@pytest.fixture(scope="module")
def app(demo_db):
    a = create_app(Settings(database_url=demo_db.url))
    a.api_token = api_token(demo_db.engine, access="read")  # the coverage endpoint is an analysis: read tokens may
    return a


@pytest.fixture(scope="module")
def busy_county(demo_db) -> str:
    """The county holding the most live shelters (chosen from the data, not hard-coded)."""
    with demo_db.engine.connect() as c:
        return c.execute(text(
            "SELECT r.adcode FROM admin_regions r JOIN shelters s ON ST_Intersects(r.geom, s.geom) "
            "WHERE r.level = 'county' AND r.deleted_at IS NULL AND s.deleted_at IS NULL "
            "GROUP BY r.adcode ORDER BY count(*) DESC, r.adcode LIMIT 1")).scalar_one()


def _api(app, body):
    r = authorize(app.server.test_client(), app.api_token).post("/api/v1/analysis/shelter-coverage?lang=en",
                                                                json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def _oracle_population(demo_db, adcode: str) -> float:
    """Area-weighted population of a county from h3-py outlines and PostGIS geography areas."""
    with demo_db.engine.connect() as c:
        source = c.execute(text("SELECT source FROM population_sources WHERE res = 8 "
                                "ORDER BY modelled, built_at DESC LIMIT 1")).scalar_one()
        w, s, e, n = c.execute(text("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
                                    "FROM admin_regions WHERE adcode = :a"), {"a": adcode}).one()
        pad = 0.02
        box = h3.LatLngPoly([(s - pad, w - pad), (s - pad, e + pad), (n + pad, e + pad), (n + pad, w - pad)])
        cells = list(h3.h3shape_to_cells(box, 8))
        wkt = []
        for cell in cells:
            ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
            ring.append(ring[0])
            wkt.append("POLYGON((" + ",".join(f"{x} {y}" for x, y in ring) + "))")
        ints = [h3.str_to_int(x) for x in cells]
        ints = [i - (1 << 64) if i >= 1 << 63 else i for i in ints]
        total = c.execute(text(
            "WITH cells AS (SELECT unnest(CAST(:h AS bigint[])) AS h3, "
            "ST_GeomFromText(unnest(CAST(:g AS text[])), 4326) AS geom), "
            "region AS (SELECT geom FROM admin_regions WHERE adcode = :a) "
            "SELECT sum(p.population * ST_Area(ST_Intersection(cells.geom, region.geom)::geography) "
            "/ ST_Area(cells.geom::geography)) FROM cells JOIN region ON ST_Intersects(cells.geom, region.geom) "
            "JOIN population_cells p ON p.h3 = cells.h3 AND p.res = 8 AND p.source = :src"),
            {"h": ints, "g": wkt, "a": adcode, "src": source}).scalar_one()
    return float(total)


def test_county_run_shows_the_api_numbers_and_exports_one_row_per_cell(app, demo_db, busy_county) -> None:
    from dashboards.pages import planner

    body = {"scope": {"adcode": busy_county}, "max_distance_m": 10000}
    api = _api(app, body)
    with app.server.test_request_context("/planner?lang=en"), signed_in("planner"):
        out = planner.run(1, "county", None, busy_county, None, "custom", 10000, ALL_KINDS, "en")
        state, status = out[0], out[1]
        assert status.startswith("Done:") and state["params"]["scope"] == {"adcode": busy_county}
        # "drive" chosen and "run" clicked before the field followed it (it still says 2,000): the preset counts
        quick = planner.run(1, "county", None, busy_county, None, "drive", 2000, ALL_KINDS, "en")
        assert quick[0]["params"]["max_distance_m"] == planner.PRESETS["drive"] == 10000
        # totals shown = API totals (same rounding)
        totals = json.dumps(out[2][1].to_plotly_json(), default=str)
        for key in ("population", "covered", "uncovered", "free"):
            assert f"{api['totals'][key]:,.0f}" in totals
        # load table: one row per open shelter, assigned = API load
        rows = out[3].children[1].children
        assert len(rows) == len(api["shelters"]) > 0
        shown = sorted(r.children[4].children for r in rows)
        assert shown == sorted(f"{s['load']:,.0f}" for s in api["shelters"])
        # per-county table: the county of the scope only (the API's rows also name neighbours at the edge)
        county_rows = out[4].children[1].children
        assert len(county_rows) == 1 and len(api["by_region"]["county"]) >= 1
        # the map: hexagons of the three classes hold every cell once; shelters + gap sites as markers
        hexes = [f for lyr in out[6] for f in lyr.data["features"]]
        assert len(hexes) == len(api["cells"]["h3"])  # a county is drawn at res 8 (under the display cap)
        assert len(out[7]) == len(api["shelters"]) + len(api["gaps"])
        assert out[10]["bounds"][0][0] < out[10]["bounds"][1][0]

        dl = planner.export(1, 0, state, None, "csv")[0]
        assert dl["filename"].endswith(".csv")
        blocks = [b for b in dl["content"].split("\n\n") if b.strip()]
        query, cells_block, shelters_block, counties_block = (list(csv.DictReader(io.StringIO(b))) for b in blocks)
        rows_csv = cells_block
        gj = json.loads(planner.export(0, 1, state, None, "geojson")[0]["content"])
    assert len(rows_csv) == len(api["cells"]["h3"]) == len({r["h3"] for r in rows_csv})
    covered = math.fsum(float(r["covered"]) for r in rows_csv)
    uncovered = math.fsum(float(r["uncovered"]) for r in rows_csv)
    assert covered == pytest.approx(api["totals"]["covered"], abs=1.0)
    oracle = _oracle_population(demo_db, busy_county)
    assert covered + uncovered == pytest.approx(oracle, rel=2e-3)
    assert all(float(r["covered"]) <= float(r["population"]) + 0.01 for r in rows_csv)
    kinds = {f["properties"]["layer"] for f in gj["features"]}
    assert {"cell", "shelter"} <= kinds
    assert sum(1 for f in gj["features"] if f["properties"]["layer"] == "cell") == len(rows_csv)
    # the CSV says what was asked (scope, distance, kinds, time), where each cell is, and holds both tables
    assert query[0]["adcode"] == busy_county and float(query[0]["distance_m"]) == api["max_distance_m"]
    assert query[0]["run_at"] and query[0]["kinds"]
    import h3

    for r in rows_csv[:50]:
        lat, lon = h3.cell_to_latlng(r["h3"])
        assert (float(r["lon"]), float(r["lat"])) == pytest.approx((lon, lat), abs=1e-6)
    assert {int(s["id"]) for s in shelters_block} == {s["id"] for s in api["shelters"]}
    assert [c["adcode"] for c in counties_block] == [busy_county]


def test_prefecture_is_aggregated_for_display_but_counted_at_res8(app, demo_db) -> None:
    from dashboards.pages import planner

    with demo_db.engine.connect() as c:
        pref = c.execute(text("SELECT adcode FROM admin_regions WHERE level = 'prefecture' "
                              "ORDER BY ST_Area(geom::geography) DESC LIMIT 1")).scalar_one()
    api = _api(app, {"scope": {"adcode": pref}, "max_distance_m": 2000, "kinds": ["emergency", "fixed"]})
    with app.server.test_request_context("/planner?lang=zh-CN"), signed_in("planner"):
        out = planner.run(1, "prefecture", pref, None, None, "custom", 2000, ["fixed", "emergency"], "zh-CN")
        result = planner._cached(out[0]["key"], out[0]["params"])
    d = planner.display_cells(result)
    hexes = [f for lyr in out[6] for f in lyr.data["features"]]
    assert len(hexes) == d["h3"].size <= planner.MAX_DISPLAY_CELLS
    if len(api["cells"]["h3"]) > planner.MAX_DISPLAY_CELLS:
        assert d["res"] < 8
    # aggregation conserves the res-8 numbers, which are the API's
    slack = 0.005 * len(api["cells"]["h3"]) + 1.0  # the API rounds each cell to 0.01 person
    assert math.fsum(d["population"]) == pytest.approx(math.fsum(api["cells"]["population"]), abs=slack)
    assert math.fsum(d["uncovered"]) == pytest.approx(api["totals"]["uncovered"], abs=slack)
    assert result["totals"]["covered"] == api["totals"]["covered"]


def test_drawn_zone_and_input_messages(app) -> None:
    from dashboards.pages import planner

    zone = {"type": "Polygon", "coordinates": [[[109.75, 40.55], [110.0, 40.55], [110.0, 40.7], [109.75, 40.7],
                                                [109.75, 40.55]]]}
    drawn = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": zone, "properties": {}}]}
    api = _api(app, {"scope": zone, "max_distance_m": 2000})
    with app.server.test_request_context("/planner?lang=en"), signed_in("planner"):
        out = planner.run(1, "drawn", None, None, drawn, "custom", 2000, ALL_KINDS, "en")
        assert out[0]["params"]["scope"] == {"geometry": zone}
        assert f"{api['totals']['population']:,.0f}" in json.dumps(out[2][1].to_plotly_json(), default=str)
        assert planner.run(1, "drawn", None, None, None, "custom", 2000, ALL_KINDS, "en")[1] == t("planner.need.drawn", "en")
        assert planner.run(1, "county", None, None, None, "custom", 2000, ALL_KINDS, "en")[1] == t("planner.need.county", "en")
        assert planner.run(1, "county", None, "150102", None, "custom", -5, ALL_KINDS, "en")[1].startswith("The maximum")
        assert planner.run(1, "county", None, "150102", None, "custom", 2000, [], "en")[1] == t("planner.need.kinds", "en")
        msg = planner.run(1, "county", None, "999999", None, "custom", 2000, ALL_KINDS, "en")[1]
        assert msg.startswith(t("error.not_found", "en"))
    with app.server.test_request_context("/planner?lang=en"):  # anonymous, then roles that may not plan
        assert planner.run(1, "drawn", None, None, drawn, "custom", 2000, ALL_KINDS, "en")[1] == t("auth.not_allowed", "en")
        for role in ("viewer", "analyst"):
            with signed_in(role):
                assert planner.run(1, "drawn", None, None, drawn, "custom", 2000, ALL_KINDS, "en")[1] == \
                    t("auth.not_allowed", "en")
    assert planner.preset_distance("drive") == 10000.0


def test_dropdowns_list_the_demo_regions_in_both_languages(app, demo_db) -> None:
    from dashboards.pages import planner

    with app.server.test_request_context("/planner?lang=zh-CN"):
        comps = {getattr(c, "id", None): c for c in planner.layout(lang="zh-CN")._traverse()}
        counties = planner.county_options("150200", "zh-CN")
    with demo_db.engine.connect() as c:
        n_pref, n_county, baotou = c.execute(text(
            "SELECT count(*) FILTER (WHERE level = 'prefecture'), count(*) FILTER (WHERE level = 'county'), "
            "count(*) FILTER (WHERE parent_adcode = '150200') FROM admin_regions")).one()
    prefs = comps[ids.PLANNER_PREFECTURE].options
    assert len(prefs) == n_pref and len(comps[ids.PLANNER_COUNTY].options) == n_county
    assert any(o["label"].startswith("包头市") for o in prefs)
    assert comps[ids.PLANNER_RUN].children == t("planner.run", "zh-CN")
    assert len(counties) == baotou and all(o["value"].startswith("1502") for o in counties)


def test_fit_viewport_stops_at_the_offline_tiles_last_zoom_and_draw_tools_speak_chinese(app) -> None:
    from dashboards.components.drawlocal import draw_locale, draw_strings
    from dashboards.pages import planner
    from dashboards.tiles import OFFLINE_MAX_ZOOM

    with app.server.test_request_context("/planner?lang=zh-CN"):
        vp = planner.fit_viewport([[40.5, 109.7], [40.7, 109.9]], "zh-CN")
        el = draw_locale("zh-CN")
    assert vp["options"]["maxZoom"] == OFFLINE_MAX_ZOOM == 12 and vp["bounds"] == [[40.5, 109.7], [40.7, 109.9]]
    zh, en = draw_strings("zh-CN"), draw_strings("en")
    assert zh["draw"]["toolbar"]["buttons"]["rectangle"] == "画矩形"
    assert en["draw"]["toolbar"]["buttons"]["rectangle"] == "Draw a rectangle"
    assert json.loads(getattr(el, "data-sitroom-drawlocal")) == zh


@pytest.mark.parametrize("role", ["display", "viewer", "analyst"])
def test_export_refuses_without_plan(app, busy_county, role: str) -> None:
    """Issue 17 item 2: the export ran for anonymous, display and viewer (it skipped the role check)."""
    from dashboards.pages import planner

    state = {"key": "not-cached", "params": {"scope": {"adcode": busy_county}, "max_distance_m": 2000.0,
                                             "kinds": None}}
    with app.server.test_request_context("/_dash-update-component", method="POST"), signed_in(role):
        data, status = planner.export(1, 0, state, "en", "csv")
    assert data is dash.no_update and status == t("auth.not_allowed", "en")


@pytest.mark.parametrize(("params", "field"), [
    ({"scope": {"adcode": "150200"}, "max_distance_m": -5, "kinds": None}, "max_distance_m"),
    ({"scope": {"adcode": "150200"}, "max_distance_m": float("nan"), "kinds": None}, "max_distance_m"),
    ({"scope": {"adcode": "150200"}, "max_distance_m": 1e9, "kinds": None}, "max_distance_m"),
    ({"scope": {"adcode": "150200"}, "max_distance_m": 2000, "kinds": ["castle"]}, "kinds"),
    ({"scope": {"sql": "1; drop"}, "max_distance_m": 2000, "kinds": None}, "scope"),
    ("nonsense", "params"),
])
def test_export_validates_its_parameters_as_the_api_does(app, params, field: str) -> None:
    """``max_distance_m: -5`` was a 500; every bad parameter is named and nothing is computed."""
    from dashboards.pages import planner

    with app.server.test_request_context("/_dash-update-component", method="POST"), signed_in("planner"):
        data, status = planner.export(1, 0, {"key": None, "params": params}, "en", "csv")
    assert data is dash.no_update and field in status


def test_export_of_a_run_too_large_is_refused_with_a_clear_message(app, demo_db) -> None:
    """A prefecture at 100 km took 147 s and returned 50 MB: the run is bounded (cell-shelter pairs in reach)."""
    from dashboards.pages import planner
    from dashboards.services.coverage import MAX_COVERAGE_PAIRS

    with demo_db.engine.connect() as c:  # the prefecture with the most shelters: the most pairs in reach
        adcode = c.execute(text("SELECT r.adcode FROM admin_regions r JOIN shelters s ON ST_Intersects(r.geom, s.geom) "
                                "WHERE r.level = 'prefecture' GROUP BY r.adcode ORDER BY count(*) DESC "
                                "LIMIT 1")).scalar_one()
    state = {"key": None, "params": {"scope": {"adcode": adcode}, "max_distance_m": 100_000, "kinds": None}}
    with app.server.test_request_context("/_dash-update-component", method="POST"), signed_in("planner"):
        data, status = planner.export(1, 0, state, "en", "csv")
    assert data is dash.no_update
    assert f"{MAX_COVERAGE_PAIRS:,}" in status and "max_distance_m" in status
