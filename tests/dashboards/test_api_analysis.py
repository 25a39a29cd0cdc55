"""The analysis API on the demo data (``demo_db``), each number against an independent oracle.

Oracles (``tests/dashboards/oracles.py``; the live rows are those the history says exist, not the code's
``deleted_at`` filter): brute-force ``pyproj.Geod`` over every resource read with plain SQL (nearest), ``pyproj.Geod``
distances of ring vertices (buffer), the exact pixel-fraction sum over the modelled GeoTIFF (impact population), PostGIS
``ST_Intersects`` counts and the stored capacity and occupancy (targets, shelters), an independent maximum flow over
the stored population and the stored free places (coverage), sums of the per-cell values (risk roll-up). Requests go
through the Flask test client. ``test_analysis_oracles.py`` does the same on a small world with soft-deleted rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h3
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Geod
from rasterio.windows import from_bounds
from shapely.geometry import LineString, Point, box, mapping, shape
from sqlalchemy import text

from dashboards.app import create_app
from layers.store.settings import Settings
from tests.conftest import api_token, authorize
from tests.dashboards import oracles
from tests.dashboards.oracles import brute_nearest, live_ids, live_rows

pytestmark = pytest.mark.db

GEOD = Geod(ellps="WGS84")
API = "/api/v1/analysis"


@pytest.fixture(scope="module")
def client(demo_db: Any) -> Iterator[Any]:
    app = create_app(Settings(database_url=demo_db.url, max_zone_area_km2=50_000))
    with app.server.test_client() as c:
        yield authorize(c, api_token(demo_db.engine, access="read"))  # a read token may run analyses


def _resources(demo_db: Any, kind: str | None, status: str | None) -> list[dict[str, Any]]:
    """Live resources of ``kind`` and ``status``, read by the oracle (the history decides what is live)."""
    with demo_db.engine.connect() as c:
        rows = live_rows(c, "resources", ("kind", "status"))
    return [r for r in rows if (kind is None or r["kind"] == kind) and (status is None or r["status"] == status)]


def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["field"] and err["allowed"] and err["message"]
    return err


# ------------------------------------------------------------------------------------------------ buffer


def test_buffer_rings_vertices_at_their_distance(client: Any) -> None:
    line = LineString([(119.5, 49.8), (121.2, 50.3)])  # 50 N, about 130 km, in the north of the region
    r = client.post(f"{API}/buffer", json={"geometry": mapping(line), "distances_m": [1000, 3000, 5000]})
    assert r.status_code == 200, r.get_data(as_text=True)
    fc = r.get_json()
    assert [f["properties"]["distance_m"] for f in fc["features"]] == [1000, 3000, 5000]
    assert [f["properties"]["inner_distance_m"] for f in fc["features"]] == [0, 1000, 3000]
    areas = [f["properties"]["area_m2"] for f in fc["features"]]
    # oracle: every outer vertex of ring i is at distance d_i from the line (brute force on a dense line)
    dense = np.array([line.interpolate(t, normalized=True).coords[0] for t in np.linspace(0, 1, 4001)])
    for f in fc["features"]:
        d = f["properties"]["distance_m"]
        g = shape(f["geometry"])
        polys = getattr(g, "geoms", [g])
        outer = max(polys, key=lambda p: p.area).exterior
        pts = np.asarray(outer.coords)[::7]
        dist = np.array([GEOD.inv(np.full(len(dense), x), np.full(len(dense), y), dense[:, 0], dense[:, 1])[2].min()
                         for x, y in pts])
        assert np.all(np.abs(dist - d) <= 0.005 * d + 2.0), (d, dist.min(), dist.max())
    # ring areas: the first is the whole buffer; the sum equals the area of the outermost buffer (Geod)
    outer5 = shape(fc["features"][2]["geometry"]).union(shape(fc["features"][1]["geometry"])).union(
        shape(fc["features"][0]["geometry"]))
    a5, _ = GEOD.geometry_area_perimeter(outer5)
    assert sum(areas) == pytest.approx(abs(a5), rel=1e-6)
    assert areas[0] < areas[1] < areas[2]


def test_buffer_bad_requests(client: Any) -> None:
    pt = {"type": "Point", "coordinates": [111.7, 40.8]}
    e = _error(client.post(f"{API}/buffer", json={"geometry": pt, "distances_m": [3000, 1000]}), 400)
    assert e["field"] == "distances_m"
    e = _error(client.post(f"{API}/buffer", json={"geometry": pt, "distances_m": [600_000]}), 400)
    assert e["field"] == "distances_m"
    e = _error(client.post(f"{API}/buffer", json={"geometry": pt, "distances_m": [-5]}), 400)
    assert e["field"] == "distances_m"
    swapped = {"type": "Point", "coordinates": [40.8, 111.7]}
    e = _error(client.post(f"{API}/buffer", json={"geometry": swapped, "distances_m": [1000]}), 422)
    assert e["code"] == "lonlat_swapped" and "swapped" in e["detail"]


# ------------------------------------------------------------------------------------------------ nearest

NEAREST_POINTS = [
    (111.75, 40.84, None),  # Hohhot
    (119.75, 49.2, "ambulance"),  # Hulunbuir, 49 N
    (121.5, 52.9, "rescue_team"),  # 53 N at the northern tip of the region
    (126.0, 50.0, None),  # 50 N just outside the region's eastern edge (Heilongjiang)
    (97.2, 42.0, "fire_engine"),  # far west, region edge (Alxa)
    (109.8, 39.6, "medical_team"),
]


@pytest.mark.parametrize(("lon", "lat", "kind"), NEAREST_POINTS)
def test_nearest_matches_brute_force_geodesic(client: Any, demo_db: Any, lon: float, lat: float,
                                              kind: str | None) -> None:
    k = 5
    q = f"{API}/nearest?lon={lon}&lat={lat}&k={k}" + (f"&kind={kind}" if kind else "")
    r = client.get(q)
    assert r.status_code == 200, r.get_data(as_text=True)
    feats = r.get_json()["features"]
    oracle = brute_nearest(lon, lat, _resources(demo_db, kind, "available"), k)
    assert [f["properties"]["id"] for f in feats] == [i for i, _ in oracle]
    np.testing.assert_allclose([f["properties"]["distance_m"] for f in feats], [d for _, d in oracle], atol=0.01)
    for f in feats:
        p = f["properties"]
        assert p["status"] == "available" and (kind is None or p["kind"] == kind)
        az, _, _ = GEOD.inv(lon, lat, *f["geometry"]["coordinates"])
        assert (p["bearing_deg"] - az % 360 + 180) % 360 - 180 == pytest.approx(0, abs=0.01)


def test_nearest_batch_matches_brute_force(client: Any, demo_db: Any) -> None:
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(97, 126, 400), rng.uniform(37.5, 53, 400)])
    r = client.post(f"{API}/nearest", json={"points": pts.tolist(), "k": 3, "kind": ["ambulance", "fire_engine"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    rows = _resources(demo_db, "ambulance", "available") + _resources(demo_db, "fire_engine", "available")
    assert {x["id"] for x in body["resources"]} == {i for row in body["resource_id"] for i in row if i >= 0}
    for i in range(0, 400, 7):
        oracle = brute_nearest(pts[i, 0], pts[i, 1], rows, 3)
        got = body["resource_id"][i]
        assert got == [o for o, _ in oracle]
        np.testing.assert_allclose(body["distance_m"][i], [d for _, d in oracle], atol=0.06)
    assert body["timing_ms"]["total"] > 0


def test_nearest_batch_feature_collection_and_limits(client: Any) -> None:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [111.7, 40.8]}, "properties": {}}]}
    r = client.post(f"{API}/nearest", json={"points": fc, "k": 2, "details": False})
    assert r.status_code == 200 and len(r.get_json()["resource_id"][0]) == 2 and r.get_json()["resources"] is None
    e = _error(client.post(f"{API}/nearest", json={"points": [[111.7, 40.8]] * 100_001}), 400)
    assert e["field"] == "points" and "100000" in e["allowed"]
    e = _error(client.post(f"{API}/nearest", json={"points": [[111.7, 40.8], [40.8, 111.7]]}), 422)
    assert e["field"] == "points[1]" and e["code"] == "lonlat_swapped"


def test_nearest_bad_requests(client: Any) -> None:
    e = _error(client.get(f"{API}/nearest?lon=111.7&lat=40.8&k=101"), 400)
    assert e["field"] == "k" and "100" in e["allowed"]
    e = _error(client.get(f"{API}/nearest?lon=111.7&lat=40.8&kind=tank"), 400)
    assert e["field"] == "kind" and "ambulance" in e["allowed"]
    e = _error(client.get(f"{API}/nearest?lon=40.8&lat=111.7"), 400)  # lat > 90: schema range
    assert e["field"] == "lat"
    e = _error(client.get(f"{API}/nearest?lon=40.8&lat=80"), 422)  # inside lon/lat range, outside the area
    assert e["code"] in ("outside_service_area", "lonlat_swapped")
    e = _error(client.get(f"{API}/nearest?lon=40.8&lat=50"), 422)
    e = _error(client.get(f"{API}/nearest?lon=111.7"), 400)
    assert e["field"] == "lat"
    e = _error(client.post(f"{API}/nearest", json={"points": [[111.7, 40.8]], "kind": ["tank"]}), 400)
    assert e["field"] == "kind"
    e = _error(client.post(f"{API}/nearest", json={"points": [[111.7, 40.8]], "k": 0}), 400)
    assert e["field"] == "k"


def test_openapi_documents_the_analyses(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ("/analysis/buffer", "/analysis/nearest"):
        assert path in doc["paths"], sorted(doc["paths"])
    assert {"get", "post"} <= set(doc["paths"]["/analysis/nearest"])



# ------------------------------------------------------------------------------------------------ impact


def _raster_sum(path: Any, zone: Any) -> float:
    """Exact population of ``zone`` on the source raster: every pixel x the fraction of its area inside the zone."""
    with rasterio.open(path) as ds:
        w = from_bounds(*zone.bounds, transform=ds.transform)
        col0, row0 = max(0, int(np.floor(w.col_off)) - 1), max(0, int(np.floor(w.row_off)) - 1)
        win = rasterio.windows.Window(col0, row0, min(ds.width - col0, int(w.width) + 3),
                                      min(ds.height - row0, int(w.height) + 3))
        if win.width <= 0 or win.height <= 0:
            return 0.0
        arr = ds.read(1, window=win).astype(float)
        tr = ds.window_transform(win)
        nodata = ds.nodata
    valid = np.isfinite(arr) & (arr > 0) & ((arr != nodata) if nodata is not None else True)
    r, c = np.nonzero(valid)
    x0, y0 = tr.c + c * tr.a, tr.f + r * tr.e
    boxes = shapely.box(x0, y0 + tr.e, x0 + tr.a, y0)
    frac = shapely.area(shapely.intersection(boxes, zone)) / shapely.area(boxes)
    return float((arr[r, c] * frac).sum())


def _sql_count(demo_db: Any, sql: str, zone: Any, *, layer: str, **params: Any) -> int:
    """``sql`` over the live rows of ``layer`` (``id = ANY(:live)``, the live set from the history)."""
    with demo_db.engine.connect() as c:
        live = sorted(live_ids(c, layer))
        return int(c.execute(text(sql), {"wkt": zone.wkt, "live": live, **params}).scalar_one())


def _post_impact(client: Any, zone: Any, **extra: Any) -> dict[str, Any]:
    geom = zone if isinstance(zone, dict) and "center" in zone else mapping(zone)
    r = client.post(f"{API}/impact", json={"geometry": geom, **extra})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


IMPACT_ZONES = {
    # name: (zone, tolerance of the population vs the exact raster sum)
    "baotou_10000km2_two_counties_and_more": box(109.3, 40.3, 110.5, 41.1),
    "two_utm_zones_114E": box(113.4, 41.4, 114.6, 42.2),
    "hohhot_circle_20km": Point(111.70, 40.82).buffer(0.25),
    "chifeng_1000km2": box(118.7, 42.1, 119.1, 42.35),
    "north_50N_region_edge": box(119.2, 49.9, 120.6, 50.5),  # crosses into Russia at the Argun
}


@pytest.mark.parametrize("name", sorted(IMPACT_ZONES))
def test_impact_population_matches_exact_raster_sum(client: Any, demo_db: Any, name: str) -> None:
    zone = IMPACT_ZONES[name]
    card = _post_impact(client, zone)
    exact = _raster_sum(demo_db.raster_path, zone)
    assert card["containment"] == "area_weighted" and card["containment_note"]
    assert card["population_source"]["modelled"] is True and card["population_source"]["vintage"] == "2020"
    km2 = card["zone_area_m2"] / 1e6
    assert km2 >= 100
    assert card["population"] == pytest.approx(exact, rel=0.02, abs=50), (name, km2, card["population"], exact)
    # parts add up to the total, at both levels
    for level in ("county", "prefecture"):
        assert sum(r["population"] for r in card["by_region"][level]) == pytest.approx(card["population"], abs=1)


def test_impact_splits_across_county_border_like_the_raster(client: Any, demo_db: Any) -> None:
    zone = IMPACT_ZONES["baotou_10000km2_two_counties_and_more"]
    card = _post_impact(client, zone)
    counties = card["by_region"]["county"]
    assert len([c for c in counties if c["population"] > 0]) >= 2
    with demo_db.engine.connect() as c:
        geoms = {a: shapely.from_wkb(bytes(g)) for a, g in c.execute(text(
            "SELECT adcode, ST_AsBinary(ST_Intersection(geom, ST_GeomFromText(:wkt, 4326))) FROM admin_regions "
            "WHERE level = 'county' AND ST_Intersects(geom, ST_GeomFromText(:wkt, 4326))"), {"wkt": zone.wkt})}
    for row in counties:
        oracle = _raster_sum(demo_db.raster_path, geoms[row["adcode"]]) if row["adcode"] else 0.0
        # cells are split at their centres: a county's part may differ by the cells along its border
        assert row["population"] == pytest.approx(oracle, rel=0.05, abs=0.01 * card["population"]), row


def test_impact_targets_and_shelters_match_postgis(client: Any, demo_db: Any) -> None:
    zone = Point(111.70, 40.82).buffer(0.3)
    card = _post_impact(client, zone, shelter_distance_m=8000)
    n = _sql_count(demo_db, "SELECT count(*) FROM protection_targets WHERE id = ANY(:live) AND "
                   "ST_Intersects(geom, ST_GeomFromText(:wkt, 4326))", zone, layer="protection_targets")
    occ = _sql_count(demo_db, "SELECT coalesce(sum(occupants), 0) FROM protection_targets WHERE id = ANY(:live) "
                     "AND ST_Intersects(geom, ST_GeomFromText(:wkt, 4326))", zone, layer="protection_targets")
    pt = card["protection_targets"]
    assert n > 0 and pt["count"] == n == len(pt["items"]) and pt["occupants"] == occ
    assert sum(v["count"] for v in pt["by_kind"].values()) == n
    inside = _sql_count(demo_db, "SELECT count(*) FROM shelters WHERE id = ANY(:live) AND "
                        "ST_Intersects(geom, ST_GeomFromText(:wkt, 4326))", zone, layer="shelters")
    near = _sql_count(demo_db, "SELECT count(*) FROM shelters WHERE id = ANY(:live) AND NOT "
                      "ST_Intersects(geom, ST_GeomFromText(:wkt, 4326)) AND ST_DWithin(geom::geography, "
                      "ST_GeomFromText(:wkt, 4326)::geography, 8000)", zone, layer="shelters")
    sh = card["shelters"]
    assert sh["inside"]["count"] == inside and sh["nearby"]["count"] == near
    with demo_db.engine.connect() as c:  # capacity, occupancy and status as the store holds them
        stored = {r["id"]: r for r in live_rows(c, "shelters", ("status", "capacity", "occupancy"))}
    for item in sh["inside"]["items"] + sh["nearby"]["items"]:
        row = stored[item["id"]]
        assert (item["capacity"], item["occupancy"]) == (row["capacity"], row["occupancy"])
        if row["status"] != "closed":
            assert item["free"] == max(0, row["capacity"] - row["occupancy"])
    for item in sh["nearby"]["items"]:
        assert 0 < item["distance_m"] <= 8000
    # the nearest available resource of each kind, from the zone's centre: brute force over all of that kind
    cx, cy = card["nearest_resources"]["from"]
    for kind, got in card["nearest_resources"]["by_kind"].items():
        rows = _resources(demo_db, kind, "available")
        if not rows:
            assert got is None
            continue
        (oid, od), = brute_nearest(cx, cy, rows, 1)
        assert got["id"] == oid and got["distance_m"] == pytest.approx(od, abs=0.1)


def test_impact_circle_and_zone_without_population(client: Any, demo_db: Any) -> None:
    card = _post_impact(client, {"center": [111.70, 40.82], "radius_m": 10_000})
    assert card["zone_area_m2"] == pytest.approx(np.pi * 1e8, rel=0.001)
    assert card["population"] > 0
    # Mongolia, inside the service area but outside the population raster: zero, not an error, no regions
    empty = _post_impact(client, box(106.0, 47.0, 106.3, 47.2))
    assert empty["population"] == 0 and empty["cells"] > 0 and empty["by_region"]["county"] == []


def test_impact_bad_requests(client: Any) -> None:
    ok = mapping(box(111.0, 40.0, 111.1, 40.1))
    e = _error(client.post(f"{API}/impact", json={"geometry": ok, "res": 11}), 400)
    assert e["field"] == "res" and "5..10" in e["allowed"]
    e = _error(client.post(f"{API}/impact", json={"geometry": ok, "res": 4}), 400)
    e = _error(client.post(f"{API}/impact", json={"geometry": {"center": [111.7, 40.8], "radius_m": 0}}), 400)
    assert e["field"] == "geometry.radius_m"  # a member of the zone, named by its path like geometry.center
    e = _error(client.post(f"{API}/impact", json={"geometry": {"center": [111.7, 40.8], "radius_m": 500_001}}), 400)
    assert e["field"] == "geometry.radius_m" and "500000" in e["allowed"]
    e = _error(client.post(f"{API}/impact", json={"geometry": {"center": [40.8, 111.7], "radius_m": 1000}}), 422)
    assert e["code"] == "lonlat_swapped"
    big = mapping(box(100.0, 40.0, 105.0, 44.0))  # ~180,000 km2 > 50,000 km2 of the test settings
    e = _error(client.post(f"{API}/impact", json={"geometry": big}), 422)
    assert e["code"] == "zone_too_large" and "50000" in e["allowed"]
    bowtie = {"type": "Polygon", "coordinates": [[[111, 40], [111.2, 40.2], [111.2, 40], [111, 40.2], [111, 40]]]}
    e = _error(client.post(f"{API}/impact", json={"geometry": bowtie}), 422)
    assert e["code"] == "invalid_unrepairable"
    e = _error(client.post(f"{API}/impact", json={"geometry": {"type": "Polygon", "coordinates": []}}), 422)
    e = _error(client.post(f"{API}/impact", json={"geometry": {"type": "Point", "coordinates": [111, 40]}}), 422)
    assert e["code"] == "zone_not_polygonal"
    e = _error(client.post(f"{API}/impact", json={"geometry": ok, "colour": "red"}), 400)
    assert e["field"] == "colour"
    spike = {"type": "Polygon", "coordinates": [[[111, 40], [111.2, 40], [111.2, 40.2], [111.1, 40.2], [111.1, 40.1],
                                                 [111.1, 40.2], [111, 40.2], [111, 40]]]}
    r = client.post(f"{API}/impact", json={"geometry": spike})
    assert r.status_code == 200 and r.get_json()["notes"][0].startswith("repaired")


# ------------------------------------------------------------------------------------------------ coverage


def test_shelter_coverage_is_maximal_and_respects_capacity(client: Any, demo_db: Any) -> None:
    zone = Point(111.70, 40.82).buffer(0.12)  # central Hohhot, small enough for the oracle
    r = client.post(f"{API}/shelter-coverage", json={"scope": mapping(zone), "max_distance_m": 3000,
                                                    "candidates": "closed"})
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    cells = out["cells"]
    pop = np.asarray(cells["population"])
    cov, unc = np.asarray(cells["covered"]), np.asarray(cells["uncovered"])
    assert np.allclose(cov + unc, pop, atol=0.02) and (cov >= -1e-9).all()
    # the oracle's inputs come from the store: each cell's stored population x its share of the zone (h3-py outlines,
    # Geod areas), each open live shelter within reach (Geod) with its capacity - occupancy
    frac = oracles.cell_fractions(zone, 8)
    with demo_db.engine.connect() as c:
        source = c.execute(text("SELECT source FROM population_sources WHERE res = 8 ORDER BY modelled, built_at DESC "
                                "LIMIT 1")).scalar_one()
        stored = oracles.stored_population(c, frac, res=8, source=source)
        shelters = live_rows(c, "shelters", ("status", "capacity", "occupancy"))
    demand = {cell: stored[cell] * f for cell, f in frac.items() if stored[cell] * f > 0}
    got = dict(zip(cells["h3"], pop.tolist(), strict=True))
    assert sorted(got) == sorted(demand)
    for cell, v in demand.items():
        assert got[cell] == pytest.approx(v, rel=1e-5, abs=0.01)
    supply = [{**sh, "free": max(0, sh["capacity"] - sh["occupancy"])} for sh in shelters
              if sh["status"] != "closed" and oracles.distance_to_polygon_m(sh["lon"], sh["lat"], zone) <= 3000]
    assert sorted(s["id"] for s in out["shelters"]) == sorted(s["id"] for s in supply)
    free = {s["id"]: s["free"] for s in supply}
    for s in out["shelters"]:
        assert s["free"] == free[s["id"]] and s["load"] <= free[s["id"]] + 1e-6 and s["status"] != "closed"
    order = sorted(demand)
    xy = np.array([h3.cell_to_latlng(c)[::-1] for c in order])
    oracle = oracles.max_flow(xy, np.array([demand[c] for c in order]), supply, 3000.0)
    assert out["totals"]["covered"] == pytest.approx(oracle, abs=0.01 * len(pop) + 0.5)
    assert sum(r["covered"] for r in out["by_region"]["county"]) == pytest.approx(out["totals"]["covered"], abs=1)
    # coverage never falls when the reach grows
    r2 = client.post(f"{API}/shelter-coverage", json={"scope": mapping(zone), "max_distance_m": 6000,
                                                     "candidates": "none"}).get_json()
    assert r2["totals"]["covered"] >= out["totals"]["covered"] - 1e-6 and r2["gaps"] == []


def test_shelter_coverage_of_a_whole_prefecture(client: Any) -> None:
    r = client.post(f"{API}/shelter-coverage", json={"scope": {"adcode": "150200"}, "max_distance_m": 5000})
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.get_json()
    assert out["scope"]["adcode"] == "150200" and out["totals"]["population"] > 100_000
    inside = [c for c in out["by_region"]["county"] if c["parent_adcode"] == "150200"]
    assert sum(c["population"] for c in inside) >= 0.95 * out["totals"]["population"]
    for g in out["gaps"]:
        assert g["added_covered"] >= 0
    gains = [g["added_covered"] for g in out["gaps"]]
    assert gains == sorted(gains, reverse=True)


def test_shelter_coverage_bad_requests(client: Any) -> None:
    ok = mapping(box(111.6, 40.7, 111.8, 40.9))
    r = client.post(f"{API}/shelter-coverage", json={"scope": {"adcode": "999999"}})
    assert r.status_code == 404 and "999999" in r.get_json()["error"]["detail"]
    e = _error(client.post(f"{API}/shelter-coverage", json={"scope": ok, "kinds": ["tent"]}), 400)
    assert e["field"] == "kinds" and "fixed" in e["allowed"]
    e = _error(client.post(f"{API}/shelter-coverage", json={"scope": ok, "max_distance_m": 0}), 400)
    assert e["field"] == "max_distance_m"
    e = _error(client.post(f"{API}/shelter-coverage", json={"scope": ok, "candidates": "all"}), 400)
    assert e["field"] == "candidates"


# ------------------------------------------------------------------------------------------------ risk


def test_risk_rolls_up_from_cells_to_counties_to_prefectures(client: Any) -> None:
    r = client.get(f"{API}/risk?level=county&cells=true&bbox=96,37,127,54&cell_res=7")
    assert r.status_code == 200, r.get_data(as_text=True)
    county = r.get_json()
    pref = client.get(f"{API}/risk?level=prefecture").get_json()
    assert county["hazards"], "the demo drill has active hazards"
    total = county["totals"]["risk"]
    assert total > 0
    assert sum(x["risk"] for x in county["regions"]) == pytest.approx(total, rel=1e-9, abs=0.05)
    assert sum(x["risk"] for x in pref["regions"]) == pytest.approx(total, rel=1e-9, abs=0.05)
    # each prefecture is the sum of its counties
    by_parent: dict[str, float] = {}
    for x in county["regions"]:
        by_parent[x["parent_adcode"] or "-"] = by_parent.get(x["parent_adcode"] or "-", 0.0) + x["risk"]
    for p in pref["regions"]:
        assert p["risk"] == pytest.approx(by_parent[p["adcode"] or "-"], abs=0.05)
    # the heatmap cells (res 7) hold the same total
    assert sum(county["cells"]["risk"]) == pytest.approx(total, rel=1e-6)
    # regions are ranked, each with its components; the score is risk / exposure
    risks = [x["risk"] for x in county["regions"]]
    assert risks == sorted(risks, reverse=True)
    for x in county["regions"][:5]:
        c = x["components"]
        assert x["score"] == pytest.approx(x["risk"] / c["exposure"], rel=1e-3)
        assert 0 <= c["intensity"] <= 1
    assert county["weights"]["values"]["red"] == 1.0


def test_risk_weights_are_adjustable(client: Any) -> None:
    base = client.get(f"{API}/risk?level=county").get_json()
    double = client.get(f"{API}/risk?level=county&w_vulnerability=2").get_json()
    assert double["weights"]["values"]["vulnerability"] == 2.0
    # totals are rounded to 0.01: twice a rounded total may differ from the rounded double by up to 0.015
    assert double["totals"]["risk"] == pytest.approx(2 * base["totals"]["risk"], rel=1e-9, abs=0.015)
    none = client.get(f"{API}/risk?level=county&w_blue=0&w_yellow=0&w_orange=0&w_red=0").get_json()
    assert none["totals"]["risk"] == 0


def test_parent_cells_match_h3() -> None:
    import h3

    from geoops.h3cells import parent_cells

    rng = np.random.default_rng(5)
    cells = np.array([h3.str_to_int(h3.latlng_to_cell(la, lo, 8))
                      for lo, la in zip(rng.uniform(97, 126, 200), rng.uniform(37, 53, 200), strict=True)])
    for p in (5, 6, 7, 8):
        want = [h3.str_to_int(h3.cell_to_parent(h3.int_to_str(int(c)), p)) for c in cells]
        assert parent_cells(cells, res=8, parent_res=p).tolist() == want


def test_risk_bad_requests(client: Any) -> None:
    e = _error(client.get(f"{API}/risk?level=village"), 400)
    assert e["field"] == "level" and "county" in e["allowed"]
    e = _error(client.get(f"{API}/risk?hazard_kind=meteor"), 400)
    assert e["field"] == "hazard_kind"
    e = _error(client.get(f"{API}/risk?w_blue=0.6"), 400)
    assert e["field"] in ("w_yellow", "w_blue")
    e = _error(client.get(f"{API}/risk?w_red=1.5"), 400)
    assert e["field"] == "w_red"
    e = _error(client.get(f"{API}/risk?cells=true"), 400)
    assert e["field"] == "bbox"
    e = _error(client.get(f"{API}/risk?res=11"), 400)
    assert e["field"] == "res"
