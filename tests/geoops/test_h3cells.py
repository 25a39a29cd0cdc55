"""Tests of geoops.h3cells against independent oracles: h3's own per-pixel ``latlng_to_cell`` of each pixel
centre (reprojected with pyproj), shapely/pyproj areas, exact sums."""

from __future__ import annotations

import math

import h3
import numpy as np
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoops import h3cells
from geoops.errors import CRSError, InvalidParameterError
from geoops.h3cells import grid_to_cells, merge_cell_sums


def _reference(values, transform, crs, res, nodata):
    """Per-pixel oracle: h3.latlng_to_cell of every valid pixel centre, then plain sums."""
    nr, nc = values.shape
    rr, cc = np.meshgrid(np.arange(nr), np.arange(nc), indexing="ij")
    a, b, c, d, e, f = transform
    x = a * (cc + 0.5) + b * (rr + 0.5) + c
    y = d * (cc + 0.5) + e * (rr + 0.5) + f
    if pyproj.CRS.from_user_input(crs).to_epsg() != 4326:
        x, y = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    valid = ~np.isnan(values)
    if nodata is not None:
        valid &= values != nodata
    cells = np.array([h3.str_to_int(h3.latlng_to_cell(la, lo, res))
                      for la, lo in zip(y[valid].tolist(), x[valid].tolist(), strict=False)], dtype=np.int64)
    u, inv = np.unique(cells, return_inverse=True)
    sums = np.array([math.fsum(values[valid][inv == i]) for i in range(u.size)])
    return u, sums


def _random_raster(rng, shape, nodata_frac=0.1, nodata=-9999.0):
    v = rng.gamma(0.5, 40.0, size=shape)
    v[rng.random(shape) < 0.05] = 0.0
    v[rng.random(shape) < nodata_frac] = nodata
    v[rng.random(shape) < 0.02] = np.nan
    return v


CASES = [("EPSG:4326", res) for res in (5, 6, 7, 8, 9, 10)] + [("ESRI:54009", res) for res in (5, 6, 7, 8, 9, 10)]


@pytest.mark.parametrize(("crs", "res"), CASES)
def test_grid_to_cells_equals_per_pixel_h3(crs, res):
    rng = np.random.default_rng(res + (0 if crs == "EPSG:4326" else 100))
    shape = (90, 130)
    if crs == "EPSG:4326":
        px = 1 / 1200 if res <= 9 else 1 / 120           # 3 arc-seconds (fast path); 30" at res 10 (exact path)
        lon0, lat0 = rng.uniform(105, 124), rng.uniform(41, 50)
        transform = (px, 0.0, lon0, 0.0, -px, lat0)
    else:
        moll = pyproj.Transformer.from_crs("EPSG:4326", "ESRI:54009", always_xy=True)
        x0, y0 = moll.transform(rng.uniform(105, 124), rng.uniform(41, 50))
        px = 100.0 if res <= 9 else 1000.0
        transform = (px, 0.0, float(x0), 0.0, -px, float(y0))
    values = _random_raster(rng, shape)
    cells, sums = grid_to_cells(values, transform=transform, crs=crs, res=res, nodata=-9999.0)
    ref_cells, ref_sums = _reference(values, transform, crs, res, -9999.0)
    assert cells.dtype == np.int64 and np.all(np.diff(cells) > 0)
    np.testing.assert_array_equal(cells, ref_cells)          # same cells: no pixel went elsewhere
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-9)
    valid = values[~np.isnan(values) & (values != -9999.0)]
    assert abs(sums.sum() - math.fsum(valid)) <= 1e-9 * math.fsum(valid)


def test_fast_path_is_taken_and_claims_almost_every_pixel():
    """The equality tests above must exercise the geometric fast path, not only the per-pixel fallback."""
    grid = h3cells._Grid((1 / 1200, 0.0, 111.0, 0.0, -1 / 1200, 45.0), "EPSG:4326", (200, 300))
    out = h3cells._fast_block(grid, 200, 300, 0, 0, 8)
    assert out is not None
    labels, cells = out
    assert (labels[:, :-1] > 0).mean() > 0.999
    moll = h3cells._Grid((100.0, 0.0, 9.0e6, 0.0, -100.0, 5.2e6), "ESRI:54009", (50, 60))
    assert np.isfinite(moll.row_lat).all()                    # Mollweide rows are parallels
    utm = h3cells._Grid((100.0, 0.0, 5.0e5, 0.0, -100.0, 5.0e6), "EPSG:32650", (50, 60))
    assert np.isnan(utm.row_lat).all()                        # UTM rows are not: exact per-pixel path


def test_non_north_up_and_utm_grids_go_pixel_by_pixel_and_still_match():
    rng = np.random.default_rng(7)
    values = _random_raster(rng, (40, 50))
    for crs, transform in [("EPSG:32650", (100.0, 0.0, 5.0e5, 0.0, -100.0, 5.0e6)),
                           ("EPSG:4326", (0.001, 0.0002, 112.0, 0.0001, -0.001, 44.0))]:
        cells, sums = grid_to_cells(values, transform=transform, crs=crs, res=9, nodata=-9999.0)
        ref_cells, ref_sums = _reference(values, transform, crs, 9, -9999.0)
        np.testing.assert_array_equal(cells, ref_cells)
        np.testing.assert_allclose(sums, ref_sums, rtol=1e-12)


def test_windows_merge_to_the_whole():
    rng = np.random.default_rng(3)
    values = _random_raster(rng, (300, 200))
    a, e = 1 / 1200, -1 / 1200
    whole = grid_to_cells(values, transform=(a, 0, 116.0, 0, e, 42.0), crs="EPSG:4326", res=8, nodata=-9999.0)
    parts = []
    for r in range(0, 300, 128):
        for c in range(0, 200, 96):
            win = values[r:r + 128, c:c + 96]
            parts.append(grid_to_cells(win, transform=(a, 0, 116.0 + c * a, 0, e, 42.0 + r * e),
                                       crs="EPSG:4326", res=8, nodata=-9999.0))
    merged = merge_cell_sums(parts)
    np.testing.assert_array_equal(merged[0], whole[0])
    np.testing.assert_allclose(merged[1], whole[1], rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nodata_frac=st.floats(0.0, 1.0), res=st.integers(5, 9),
       rows=st.integers(1, 60), cols=st.integers(1, 60), mollweide=st.booleans())
def test_conservation_under_random_rasters(seed, nodata_frac, res, rows, cols, mollweide):
    rng = np.random.default_rng(seed)
    values = _random_raster(rng, (rows, cols), nodata_frac=nodata_frac)
    if mollweide:
        transform, crs = (250.0, 0.0, 9.3e6 + rng.uniform(0, 1e5), 0.0, -250.0, 5.1e6), "ESRI:54009"
    else:
        transform, crs = (1 / 400, 0.0, 118.0 + rng.uniform(0, 1), 0.0, -1 / 400, 47.0), "EPSG:4326"
    cells, sums = grid_to_cells(values, transform=transform, crs=crs, res=res, nodata=-9999.0)
    valid = values[~np.isnan(values) & (values != -9999.0)]
    total = math.fsum(valid)
    assert abs(math.fsum(sums) - total) <= 1e-9 * max(total, 1e-300)
    assert cells.size == np.unique(cells).size and np.all(sums >= 0)
    assert (cells.size == 0) == (valid.size == 0)


def test_grid_to_cells_rejects_bad_input():
    good = dict(transform=(0.01, 0, 110.0, 0, -0.01, 45.0), crs="EPSG:4326", res=8)
    with pytest.raises(InvalidParameterError, match="non-negative"):
        grid_to_cells(np.array([[1.0, -2.0]]), **good)
    with pytest.raises(InvalidParameterError):
        grid_to_cells(np.array([[1.0, np.inf]]), **good)
    with pytest.raises(InvalidParameterError, match="res"):
        grid_to_cells(np.ones((2, 2)), **{**good, "res": 16})
    with pytest.raises(InvalidParameterError, match="values"):
        grid_to_cells(np.ones(4), **good)
    with pytest.raises(CRSError):
        grid_to_cells(np.ones((2, 2)), **{**good, "crs": "EPSG:999999"})
    with pytest.raises(CRSError):
        grid_to_cells(np.ones((2, 2)), **{**good, "crs": None})
    with pytest.raises(InvalidParameterError, match="transform"):
        grid_to_cells(np.ones((2, 2)), **{**good, "transform": (0, 0, 0, 0, 0, 0)})
    # a nodata value that is negative is fine; an all-nodata raster gives empty output
    cells, sums = grid_to_cells(np.full((3, 3), -1.0), **good, nodata=-1.0)
    assert cells.size == 0 and sums.size == 0 and cells.dtype == np.int64


# ------------------------------------------------------------------------------------ cells and geometry
import h3.api.basic_int as h3i  # noqa: E402
import shapely  # noqa: E402
from shapely.geometry import MultiPolygon, Point, Polygon, box  # noqa: E402

from geoops.errors import InvalidGeometryError  # noqa: E402
from geoops.h3cells import (  # noqa: E402
    _lat_weighted_area,
    cell_area_m2,
    cell_boundaries,
    cell_centres,
    cells_to_geojson,
    points_to_cells,
    zone_weights,
)

GEOD = pyproj.Geod(ellps="WGS84")


def _some_cells(n=50, res=8, seed=0):
    rng = np.random.default_rng(seed)
    return np.unique([h3i.latlng_to_cell(la, lo, res) for la, lo in
                      zip(rng.uniform(40, 50, n), rng.uniform(105, 125, n), strict=False)]).astype(np.int64)


def test_cell_geometry_matches_h3_and_geodesic_area():
    cells = _some_cells()
    polys = cell_boundaries(cells)
    lon, lat = cell_centres(cells)
    areas = cell_area_m2(cells)
    for i, c in enumerate(cells.tolist()):
        ref = np.array([(lo, la) for la, lo in h3i.cell_to_boundary(c)])
        np.testing.assert_allclose(np.asarray(polys[i].exterior.coords)[:-1], ref, atol=1e-12)
        la, lo = h3i.cell_to_latlng(c)
        assert abs(lon[i] - lo) < 1e-12 and abs(lat[i] - la) < 1e-12
        geodesic = abs(GEOD.geometry_area_perimeter(polys[i])[0])   # WGS84 ellipsoid vs h3's sphere
        assert abs(areas[i] - geodesic) / geodesic < 0.005


def test_cells_to_geojson_has_hex_ids_and_nulls_for_nan():
    cells = _some_cells(3)
    fc = cells_to_geojson(cells, {"population": np.array([1.5, np.nan, 0.0])[: cells.size]})
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == cells.size
    f0 = fc["features"][0]
    assert f0["properties"]["h3"] == h3i.int_to_str(int(cells[0])) and f0["properties"]["population"] == 1.5
    assert fc["features"][1]["properties"]["population"] is None
    assert f0["geometry"]["type"] == "Polygon" and len(f0["geometry"]["coordinates"][0]) == 7
    assert cells_to_geojson(np.zeros(0, dtype=np.int64), {})["features"] == []
    with pytest.raises(InvalidParameterError):
        cells_to_geojson(cells, {"x": np.zeros(cells.size + 1)})


def test_points_to_cells_equals_per_point_h3():
    rng = np.random.default_rng(5)
    lon, lat, val = rng.uniform(105, 125, 2000), rng.uniform(40, 50, 2000), rng.uniform(0, 100, 2000)
    cells, sums = points_to_cells(lon, lat, val, res=6)
    ref = np.array([h3i.latlng_to_cell(a, o, 6) for a, o in zip(lat, lon, strict=False)], dtype=np.int64)
    u, inv = np.unique(ref, return_inverse=True)
    np.testing.assert_array_equal(cells, u)
    np.testing.assert_allclose(sums, np.bincount(inv, weights=val), rtol=1e-12)
    with pytest.raises(InvalidParameterError):
        points_to_cells([111.0], [40.0], [np.nan], res=6)
    with pytest.raises(InvalidParameterError, match="lon"):
        points_to_cells([40.0], [111.0], [1.0], res=6)            # swapped lon/lat


def _naive_weights(zone, res):
    """Reference: every cell h3 says overlaps the zone, intersected with shapely one by one."""
    over = h3i.h3shape_to_cells_experimental(h3i.geo_to_h3shape(zone), res, contain="overlap")
    out = {}
    for c in over:
        p = Polygon([(lo, la) for la, lo in h3i.cell_to_boundary(c)])
        piece = p.intersection(zone)
        if not piece.is_empty and piece.area > 0:
            out[c] = _lat_weighted_area(np.array([piece]))[0] / _lat_weighted_area(np.array([p]))[0]
    return out


ZONES = {
    "square": box(113.2, 44.2, 113.4, 44.35),
    "circle": Point(115.0, 45.0).buffer(0.1, quad_segs=32),
    "concave": Polygon([(113.0, 45.0), (113.3, 45.0), (113.3, 45.25), (113.15, 45.08), (113.0, 45.25)]),
    "utm_49_50": box(113.85, 44.6, 114.15, 44.75),
    "at_50N": box(119.0, 49.9, 119.25, 50.1),
    "with_hole": Polygon(box(114.0, 45.3, 114.3, 45.5).exterior.coords, [box(114.1, 45.35, 114.2, 45.45).exterior.coords]),
    "multi": MultiPolygon([box(113.0, 43.0, 113.1, 43.1), box(113.3, 43.0, 113.4, 43.1)]),
    # h3's tiling of the line along 38.5 N missed about a hundred cells that it cuts (found by Hypothesis)
    "parallel_38_5": box(122.0, 38.0, 122.5, 38.5),
    # 60 corners turning left and 60 turning right, a few hundred metres apart: most corner cells hold one vertex
    "star": Polygon([(116.0 + r * np.cos(t) / np.cos(np.radians(44.0)), 44.0 + r * np.sin(t))
                     for t, r in zip(np.linspace(0, 2 * np.pi, 120, endpoint=False), [0.12, 0.09] * 60,
                                     strict=True)]),
}


@pytest.mark.parametrize("name", list(ZONES))
def test_zone_weights_equal_naive_intersection_and_geodesic_area(name):
    zone = ZONES[name]
    cells, frac = zone_weights(zone, res=8)
    ref = _naive_weights(zone, 8)
    np.testing.assert_array_equal(cells, np.array(sorted(ref), dtype=np.int64))
    np.testing.assert_allclose(frac, [ref[c] for c in sorted(ref)], rtol=1e-9, atol=1e-12)
    assert np.all((frac > 0) & (frac <= 1))
    # independent check of the fractions: sum of cell area x fraction vs the geodesic area of the zone
    oriented = shapely.orient_polygons(shapely.segmentize(zone, 0.001))   # holes clockwise for Geod
    geodesic = abs(GEOD.geometry_area_perimeter(oriented)[0])
    assert abs((frac * cell_area_m2(cells)).sum() - geodesic) / geodesic < 0.005


def test_zone_weights_empty_and_bad_zones():
    cells, frac = zone_weights(Polygon(), res=8)
    assert cells.size == 0 and frac.size == 0 and cells.dtype == np.int64
    with pytest.raises(InvalidGeometryError):
        zone_weights(Point(1, 1), res=8)
    with pytest.raises(InvalidGeometryError):
        zone_weights(Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]), res=8)     # bow-tie
    with pytest.raises(InvalidGeometryError):
        zone_weights(box(40, 100, 41, 101), res=8)                          # lat out of range (swapped)
    with pytest.raises(InvalidParameterError):
        zone_weights(box(111, 40, 111.1, 40.1), res=-1)


# ------------------------------------------------------------------------------------ parents and child ranges


@settings(max_examples=40, deadline=None)
@given(st.floats(18, 54), st.floats(73, 135), st.integers(1, 12), st.integers(0, 3))
def test_parent_cells_and_child_ranges_match_h3(lat, lon, res, up):
    from geoops.h3cells import child_ranges, parent_cells

    parent_res = max(res - up, 0)
    cell = h3i.latlng_to_cell(lat, lon, res)
    parent = int(parent_cells(np.array([cell], dtype=np.int64), res=res, parent_res=parent_res)[0])
    assert parent == h3i.cell_to_parent(cell, parent_res)
    lo, hi = child_ranges(np.array([parent], dtype=np.int64), parent_res=parent_res, res=res)
    children = np.array(h3i.cell_to_children(parent, res), dtype=np.int64)
    assert children.min() >= lo[0] and children.max() <= hi[0]
    # no other cell of that resolution in the range: the neighbours' children fall outside it
    for n in h3i.grid_disk(parent, 1):
        if n != parent:
            other = np.array(h3i.cell_to_children(n, res), dtype=np.int64)
            assert not ((other >= lo[0]) & (other <= hi[0])).any()


def test_parent_res_out_of_range_names_the_field():
    from geoops.h3cells import parent_cells

    with pytest.raises(InvalidParameterError) as e:
        parent_cells(np.array([0x8831AA5555FFFFF]), res=8, parent_res=9)
    assert e.value.field == "parent_res"


@pytest.mark.parametrize("bounds", [(97, 37, 126, 53), (74, 19, 134, 53)], ids=["inner-mongolia-box", "china-box"])
def test_zone_weights_of_a_province_sized_zone(bounds: tuple[float, float, float, float]) -> None:
    """Issue 17 item 1: h3's tracing of a long boundary edge failed ("pentagon distortion", "cannot unfold"); the
    boundary is now traced in short pieces. Oracle: the zone's geodesic area (edges densified, as in lon/lat)."""
    from shapely.geometry import box

    from geoops.wgs84 import GEOD

    zone = box(*bounds)
    cells, frac = zone_weights(zone, res=4)
    area = float((frac * cell_area_m2(cells)).sum())
    truth = abs(GEOD.geometry_area_perimeter(zone.segmentize(0.01))[0])
    assert area == pytest.approx(truth, rel=0.01)
