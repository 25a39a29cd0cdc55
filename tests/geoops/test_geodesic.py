"""geoops.geodesic against independent oracles.

The oracle for buffers and rings is a brute-force search with ``pyproj.Geod`` only: the source's
lon/lat-straight edges are sampled every 0.1 degree, the best sample intervals of each vertex are found by
exact ``Geod.inv`` distances, then refined by golden-section search along the lon/lat edge (40
steps, to ~1e-8 of an interval).
It shares no code with ``geoops.geodesic`` (no projection, no shapely distance).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point, Polygon, box

from geoops.errors import CRSError, InvalidGeometryError, InvalidParameterError
from geoops.geodesic import (
    area_m2,
    bearing_deg,
    buffer,
    circle,
    distance_m,
    distance_to_geometry_m,
    inverse,
    rings,
)

G = Geod(ellps="WGS84")
TOL = 0.005  # the requirement: every boundary vertex within 0.5 % of the distance
_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0


# ------------------------------------------------------------------------------------------------ oracle


def _source_intervals(geom, step_deg):
    """Sample points of the source (every lon/lat edge cut to <= step_deg) and the intervals (i0, i1)
    between consecutive samples; a Point part is the degenerate interval (i, i)."""
    pts, i0, i1 = [], [], []
    n = 0
    for part in shapely.get_parts(geom):
        if part.geom_type == "Point":
            pts.append(np.asarray(part.coords)[:, :2])
            i0.append(np.array([n]))
            i1.append(np.array([n]))
            n += 1
            continue
        chains = [part.exterior, *part.interiors] if part.geom_type == "Polygon" else [part]
        for ring in chains:
            c = np.asarray(ring.coords)[:, :2]
            chain = [c[:1]]
            for p, q in zip(c[:-1], c[1:], strict=False):
                k = max(1, int(np.ceil(np.hypot(*(q - p)) / step_deg)))
                chain.append(p + np.linspace(0.0, 1.0, k + 1)[1:, None] * (q - p))
            chain = np.concatenate(chain)
            pts.append(chain)
            i0.append(n + np.arange(len(chain) - 1))
            i1.append(n + np.arange(1, len(chain)))
            n += len(chain)
    return np.concatenate(pts), np.concatenate(i0), np.concatenate(i1)


def oracle_distance_m(vlon, vlat, geom, step_deg=0.1, iters=40):
    """Geodesic distance from each (vlon, vlat) to the nearest point of geom's edges (Geod brute force)."""
    vlon = np.asarray(vlon, float)
    vlat = np.asarray(vlat, float)
    P, i0, i1 = _source_intervals(geom, step_deg)
    nv, npt = vlon.size, P.shape[0]
    _, _, dp = G.inv(np.repeat(vlon, npt), np.repeat(vlat, npt), np.tile(P[:, 0], nv), np.tile(P[:, 1], nv))
    dp = dp.reshape(nv, npt)
    _, _, ilen = G.inv(P[i0, 0], P[i0, 1], P[i1, 0], P[i1, 1])
    ends = np.minimum(dp[:, i0], dp[:, i1])
    best = ends.min(axis=1)
    # the interval holding the true nearest point has an end within half an interval of it
    vi, ii = np.nonzero(ends <= best[:, None] + ilen.max() / 2.0 + 1e-6)
    A, B = P[i0[ii]], P[i1[ii]]
    qx, qy = vlon[vi], vlat[vi]

    def f(t):
        p = A + t[:, None] * (B - A)
        return G.inv(qx, qy, p[:, 0], p[:, 1])[2]

    lo, hi = np.zeros(vi.size), np.ones(vi.size)
    x1, x2 = hi - _INV_PHI * (hi - lo), lo + _INV_PHI * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(iters):
        left = f1 < f2
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        new_x = np.where(left, hi - _INV_PHI * (hi - lo), lo + _INV_PHI * (hi - lo))
        fn = f(new_x)
        x1, x2, f1, f2 = (
            np.where(left, new_x, x2),
            np.where(left, x1, new_x),
            np.where(left, fn, f2),
            np.where(left, f1, fn),
        )
    vals = np.minimum(np.minimum(f1, f2), np.minimum(dp[vi, i0[ii]], dp[vi, i1[ii]]))
    out = np.full(nv, np.inf)
    np.minimum.at(out, vi, vals)
    return out


def boundary_points(geom, midpoint_fraction=0.25):
    """Every vertex of the boundary, then the lon/lat midpoints of a seeded random share of the edges.

    Returns lon, lat and the number of vertices (the first entries)."""
    lines = [np.asarray(line.coords) for line in shapely.get_parts(shapely.boundary(geom))]
    vertices = np.concatenate([c[:-1] for c in lines])
    mids = np.concatenate([(c[:-1] + c[1:]) / 2.0 for c in lines])
    mids = mids[np.random.default_rng(0).random(len(mids)) < midpoint_fraction]
    v = np.concatenate([vertices, mids])
    return v[:, 0], v[:, 1], len(vertices)


def test_oracle_is_exact_for_a_point_and_bounded_by_samples_for_a_line():
    lon, lat = np.array([126.3, 125.0]), np.array([50.2, 49.0])
    d = oracle_distance_m(lon, lat, Point(126.0, 50.0))
    np.testing.assert_allclose(d, G.inv([126.0, 126.0], [50.0, 50.0], lon, lat)[2], rtol=1e-12)
    line = LineString([(124.0, 49.0), (127.0, 50.5)])
    samples = np.asarray(shapely.get_coordinates(shapely.segmentize(line, 0.0005)))
    for x, y in zip(lon, lat, strict=False):
        brute = G.inv(np.full(len(samples), x), np.full(len(samples), y), samples[:, 0], samples[:, 1])[
            2
        ].min()
        got = oracle_distance_m([x], [y], line)[0]
        assert got <= brute + 1e-6
        assert got >= brute - 5.0  # samples every ~50 m: the nearest sample is at most ~25 m off the foot


# ------------------------------------------------------------------------------------------------ inverse


def test_inverse_matches_known_ellipsoid_constants():
    # one degree along the equator is a * pi / 180; one degree of meridian from 0 to 1 N is 110574.4 m
    d, az = inverse([0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0])
    assert d[0] == pytest.approx(6378137.0 * math.pi / 180.0, abs=1e-6)
    assert d[1] == pytest.approx(110574.39, abs=0.05)
    assert az.tolist() == pytest.approx([90.0, 0.0])
    assert float(distance_m(116.0, 40.0, 116.0, 40.0)) == 0.0
    assert math.isnan(float(bearing_deg(116.0, 40.0, 116.0, 40.0)))
    assert float(bearing_deg(116.0, 40.0, 115.0, 40.0)) == pytest.approx(270.3, abs=0.1)  # west, in [0, 360)


@pytest.mark.parametrize("bad", [(float("nan"), 40.0), (200.0, 40.0), (116.0, -91.0)])
def test_inverse_rejects_bad_coordinates(bad):
    with pytest.raises(InvalidParameterError) as exc:
        inverse(bad[0], bad[1], 116.0, 40.0)
    assert "lon1/lat1" in str(exc.value) and "allowed" in str(exc.value)


# ------------------------------------------------------------------------------------------------ circle


def _cap_area_m2(lat_deg, r_m):
    """Area of a geodesic disc on a sphere with the ellipsoid's Gaussian radius sqrt(M N) at the centre."""
    a, e2 = 6378137.0, 0.00669437999014
    s2 = math.sin(math.radians(lat_deg)) ** 2
    M = a * (1 - e2) / (1 - e2 * s2) ** 1.5
    N = a / math.sqrt(1 - e2 * s2)
    R = math.sqrt(M * N)
    return 2 * math.pi * R * R * (1 - math.cos(r_m / R))


@pytest.mark.parametrize(
    "lon,lat,r",
    [(126.0, 50.0, 50.0), (126.0, 50.0, 500_000.0), (87.6, 43.8, 3000.0), (110.3, 20.0, 120_000.0)],
)
def test_circle_vertices_exactly_at_radius_and_area_matches_spherical_cap(lon, lat, r):
    c = circle(lon, lat, radius_m=r)
    xy = np.asarray(c.exterior.coords)
    d = G.inv(np.full(len(xy), lon), np.full(len(xy), lat), xy[:, 0], xy[:, 1])[2]
    np.testing.assert_allclose(d, r, rtol=1e-9)
    assert c.is_valid and c.exterior.is_ccw
    # an inscribed 128-gon has area (n / 2 pi) sin(2 pi / n) = 0.9996 of the disc
    n = 128
    expect = _cap_area_m2(lat, r) * n / (2 * math.pi) * math.sin(2 * math.pi / n)
    assert float(area_m2(c)) == pytest.approx(expect, rel=2e-4)


@pytest.mark.parametrize("r", [0, -1, 500_001, float("nan"), "5", True])
def test_circle_rejects_radius_out_of_range(r):
    with pytest.raises(InvalidParameterError) as exc:
        circle(116.0, 40.0, radius_m=r)
    assert exc.value.field == "radius_m"
    assert "500000" in str(exc.value) and repr(r) in str(exc.value)


# ------------------------------------------------------------------------------------------------ buffer

BUFFER_CASES = {
    "point_50N_126E": Point(126.0, 50.0),
    # 112-124 E at 42 N: about 1,000 km, crossing UTM zones 49, 50 and 51
    "line_42N_two_utm_zones": LineString([(112.0, 42.0), (124.0, 42.0)]),
    "line_bent_inner_mongolia": LineString([(110.0, 40.0), (116.0, 44.5), (121.0, 43.0)]),
    "polygon_50N_126E_concave": Polygon(
        [(124.0, 48.0), (128.0, 48.0), (128.5, 52.0), (126.0, 50.5), (123.5, 52.0)]
    ),
    "polygon_1000km_with_hole": Polygon(
        [(100.0, 30.0), (110.0, 30.0), (110.0, 38.0), (100.0, 38.0)],
        [[(103.0, 33.0), (107.0, 33.0), (105.0, 36.0)]],
    ),
    "multipoint_south": MultiPoint([(113.2, 23.1), (113.3, 23.15), (110.3, 20.0)]),
    "multiline_northeast": MultiLineString([[(125.0, 45.0), (126.5, 45.5)], [(126.0, 44.0), (126.2, 46.0)]]),
}

BUFFER_RUNS = [
    ("point_50N_126E", 50.0),
    ("point_50N_126E", 500_000.0),
    ("line_42N_two_utm_zones", 50.0),
    ("line_42N_two_utm_zones", 500_000.0),
    ("line_bent_inner_mongolia", 5_000.0),
    ("polygon_50N_126E_concave", 50.0),
    ("polygon_50N_126E_concave", 500_000.0),
    ("polygon_1000km_with_hole", 20_000.0),
    ("multipoint_south", 8_000.0),
    ("multiline_northeast", 1_000.0),
]


@pytest.mark.parametrize("name,d", BUFFER_RUNS, ids=[f"{n}-{d:g}m" for n, d in BUFFER_RUNS])
def test_buffer_every_boundary_vertex_within_half_percent(name, d):
    src = BUFFER_CASES[name]
    b = buffer(src, distance_m=d)
    assert b.geom_type in ("Polygon", "MultiPolygon") and b.is_valid
    lon, lat, n_vertices = boundary_points(b)
    got = oracle_distance_m(lon, lat, src)
    rel = got / d - 1.0
    assert np.abs(rel[:n_vertices]).max() <= TOL, (rel.min(), rel.max())
    # edge midpoints too (not required, shows the edges between vertices follow the offset curve)
    assert np.abs(rel[n_vertices:]).max() <= TOL
    # polygons: the interior is inside; a large hole stays a hole
    if src.geom_type == "Polygon":
        assert b.covers(src)
        if src.interiors and d < 50_000:
            hole_centre = Polygon(src.interiors[0]).centroid
            assert not b.contains(hole_centre)


@pytest.mark.parametrize(
    "name,d", [("line_42N_two_utm_zones", 300.0), ("polygon_50N_126E_concave", 40_000.0)]
)
def test_buffer_contains_every_point_just_inside_the_distance(name, d):
    """Points at 0.995 d from the source (any direction) must be inside the buffer: nothing is cut away."""
    src = BUFFER_CASES[name]
    b = buffer(src, distance_m=d)
    rng = np.random.default_rng(7)
    samples = np.asarray(
        shapely.get_coordinates(
            shapely.segmentize(shapely.boundary(src) if src.geom_type == "Polygon" else src, 0.05)
        )
    )
    pick = samples[rng.integers(0, len(samples), 2000)]
    az = rng.uniform(0, 360, 2000)
    lon, lat, _ = G.fwd(pick[:, 0], pick[:, 1], az, np.full(2000, 0.995 * d))
    assert shapely.covers(b, shapely.points(lon, lat)).all()


def test_buffer_point_is_the_geodesic_circle():
    b = buffer(Point(126.0, 50.0), distance_m=2_000.0)
    c = circle(126.0, 50.0, radius_m=2_000.0)
    assert b.symmetric_difference(c).area < 1e-12


@pytest.mark.parametrize(
    "geom,exc",
    [
        (Polygon(), InvalidGeometryError),
        ("POINT (1 2)", InvalidGeometryError),
        (Point(116.0, 95.0), InvalidGeometryError),
    ],
)
def test_buffer_rejects_bad_geometry(geom, exc):
    with pytest.raises(exc) as e:
        buffer(geom, distance_m=100.0)
    assert e.value.field == "geometry"


def test_buffer_rejects_bad_distance():
    with pytest.raises(InvalidParameterError, match=r"distance_m.*got 0.*\(0, 500000\]"):
        buffer(Point(116.0, 40.0), distance_m=0)


# ------------------------------------------------------------------------------------------------ rings


@pytest.mark.parametrize(
    "src,ds",
    [
        (Point(126.0, 50.0), [1_000.0, 3_000.0, 5_000.0]),
        (LineString([(112.0, 42.0), (115.0, 42.5)]), [50.0, 20_000.0, 500_000.0]),
        (BUFFER_CASES["polygon_50N_126E_concave"], [5_000.0, 10_000.0]),
    ],
)
def test_ring_boundaries_at_their_distances(src, ds):
    z = rings(src, distances_m=ds)
    assert isinstance(z, gpd.GeoDataFrame) and z.crs.to_epsg() == 4326
    assert list(z.columns) == ["distance_m", "inner_distance_m", "area_m2", "geometry"]
    assert z.distance_m.tolist() == ds and z.inner_distance_m.tolist() == [0.0, *ds[:-1]]
    for _i, row in z.iterrows():
        lon, lat, nv = boundary_points(row.geometry)
        got = oracle_distance_m(lon[:nv], lat[:nv], src)
        outer = np.abs(got / row.distance_m - 1.0)
        inner = np.abs(got / row.inner_distance_m - 1.0) if row.inner_distance_m > 0 else np.full(nv, np.inf)
        assert np.minimum(outer, inner).max() <= TOL
        if row.inner_distance_m > 0:  # the ring has both its outer and its inner boundary
            assert (outer <= TOL).any() and (inner <= TOL).any()
    # rings do not overlap and together are the last buffer
    last = buffer(src, distance_m=ds[-1])
    assert z.area_m2.sum() == pytest.approx(float(area_m2(last)), rel=1e-6)
    assert shapely.union_all(z.geometry.values).symmetric_difference(last).area < 1e-9 * last.area


def test_ring_areas_match_independent_formulas():
    # point: spherical caps with the local Gaussian radius (inscribed 128-gon factor)
    n = 128
    poly_factor = n / (2 * math.pi) * math.sin(2 * math.pi / n)
    z = rings(Point(126.0, 50.0), distances_m=[1_000.0, 3_000.0, 50_000.0])
    caps = [_cap_area_m2(50.0, d) * poly_factor for d in (1_000.0, 3_000.0, 50_000.0)]
    np.testing.assert_allclose(z.area_m2, [caps[0], caps[1] - caps[0], caps[2] - caps[1]], rtol=5e-4)
    # a straight 100 km meridian segment at 45 N: 2 d L + pi d^2 (d << earth radius)
    line = LineString([(120.0, 45.0), (120.0, 45.9)])
    L = G.inv(120.0, 45.0, 120.0, 45.9)[2]
    z = rings(line, distances_m=[1_000.0, 2_000.0])
    expect = [
        2 * 1e3 * L + math.pi * 1e6 * poly_factor,
        2 * 2e3 * L + math.pi * 4e6 * poly_factor - (2 * 1e3 * L + math.pi * 1e6 * poly_factor),
    ]
    np.testing.assert_allclose(z.area_m2, expect, rtol=2e-3)


@pytest.mark.parametrize(
    "ds,fragment",
    [
        ([], "0 distances"),
        ([1000, 1000], "not strictly increasing"),
        ([3000, 1000], "not strictly increasing"),
        ([0, 1000], "item 0"),
        ([1000, 600_000], "item 1"),
        ("1000", "not a list"),
        ([1000, None], "item 1"),
        (list(range(1, 30)), "29 distances"),
    ],
)
def test_rings_reject_bad_distances_listing_what_was_received(ds, fragment):
    with pytest.raises(InvalidParameterError) as exc:
        rings(Point(116.0, 40.0), distances_m=ds)
    assert exc.value.field == "distances_m"
    assert fragment in str(exc.value) and "strictly increasing" in exc.value.allowed
    if isinstance(ds, list) and ds:
        assert repr(ds[0]) in str(exc.value)


region_points = st.tuples(st.floats(97.0, 126.0), st.floats(37.0, 53.0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=region_points,
    bearing=st.floats(0, 360),
    length_m=st.floats(0, 200_000),
    ds=st.lists(st.floats(50.0, 500_000.0), min_size=1, max_size=4, unique=True),
)
def test_property_ring_areas_grow_with_distance(start, bearing, length_m, ds):
    ds = sorted(ds)
    if any(b - a < 1.0 for a, b in zip(ds, ds[1:], strict=False)):
        ds = sorted({round(d, -1) for d in ds})
    end_lon, end_lat, _ = G.fwd(start[0], start[1], bearing, length_m)
    src = Point(start) if length_m < 1.0 else LineString([start, (end_lon, end_lat)])
    z = rings(src, distances_m=ds)
    assert (z.area_m2 > 0).all()
    cumulative = np.cumsum(z.area_m2.to_numpy())
    assert (np.diff(cumulative) > 0).all()
    # and the area of each buffer is more than a disc of that radius and less than the disc swept along
    for d, a in zip(ds, cumulative, strict=False):
        assert 0.99 * math.pi * d * d <= a <= (math.pi * d * d + 2 * d * max(length_m, 0)) * 1.01


# ------------------------------------------------------------------------------------------------ areas


def _quadrangle_area_m2(lon0, lat0, lon1, lat1):
    """Exact area of a lon/lat quadrangle on WGS84 (authalic formula)."""
    a, e2 = 6378137.0, 0.00669437999014
    e = math.sqrt(e2)
    b2 = a * a * (1 - e2)

    def q(phi):
        s = math.sin(math.radians(phi))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return b2 / 2 * math.radians(lon1 - lon0) * (q(lat1) - q(lat0))


def test_area_m2_matches_exact_quadrangle_and_handles_holes_lines_none():
    quad = shapely.segmentize(box(116.0, 40.0, 117.0, 41.0), 0.01)
    holed = Polygon(
        quad.exterior.coords, [shapely.segmentize(box(116.2, 40.2, 116.4, 40.4), 0.01).exterior.coords]
    )
    got = area_m2(
        np.array(
            [quad, holed.reverse(), LineString([(116, 40), (117, 41), (116, 41)]), None, Polygon()],
            dtype=object,
        )
    )
    assert got[0] == pytest.approx(_quadrangle_area_m2(116, 40, 117, 41), rel=1e-6)
    assert got[1] == pytest.approx(
        _quadrangle_area_m2(116, 40, 117, 41) - _quadrangle_area_m2(116.2, 40.2, 116.4, 40.4), rel=1e-6
    )
    assert got[2] == 0.0 and math.isnan(got[3]) and got[4] == 0.0
    assert area_m2(quad).shape == ()


def test_area_m2_requires_lonlat_crs():
    s = gpd.GeoSeries([box(116, 40, 117, 41)], crs="EPSG:4326")
    assert area_m2(s).shape == (1,)
    with pytest.raises(CRSError, match="EPSG:4326"):
        area_m2(s.to_crs("EPSG:3857"))
    with pytest.raises(CRSError):
        area_m2(gpd.GeoSeries([box(116, 40, 117, 41)]))


# -------------------------------------------------------------------------------- distance to geometry


def test_distance_to_geometry_matches_brute_force_oracle():
    rng = np.random.default_rng(3)
    geoms = [
        BUFFER_CASES["line_bent_inner_mongolia"],
        BUFFER_CASES["polygon_50N_126E_concave"],
        BUFFER_CASES["multipoint_south"],
    ]
    for g in geoms:
        minx, miny, maxx, maxy = g.bounds
        lon = rng.uniform(minx - 1, maxx + 1, 12)
        lat = rng.uniform(miny - 1, maxy + 1, 12)
        expect = oracle_distance_m(lon, lat, g)
        got = np.array([distance_to_geometry_m(x, y, g) for x, y in zip(lon, lat, strict=False)])
        inside = (
            shapely.contains(g, shapely.points(lon, lat)) if g.geom_type == "Polygon" else np.zeros(12, bool)
        )
        assert (got[inside] == 0).all()
        np.testing.assert_allclose(got[~inside], expect[~inside], rtol=1e-6, atol=1e-3)


def test_distance_to_a_many_vertex_border_matches_the_oracle_near_and_far():
    """A border of thousands of short edges (a county's, in shape) is searched near the point only: the answer is
    the brute-force one for points close to it, far from it, at 70 degrees north and in its concave bay (where the
    nearest edge in plain degrees is not the geodesically nearest)."""
    rng = np.random.default_rng(11)
    for base in (BUFFER_CASES["polygon_50N_126E_concave"],
                 shapely.affinity.translate(BUFFER_CASES["polygon_50N_126E_concave"], yoff=20.0)):
        wobbly = shapely.segmentize(base, 0.01)  # ~2,000 edges
        coords = np.asarray(wobbly.exterior.coords)
        coords[1:-1] += rng.normal(0.0, 0.002, coords[1:-1].shape)  # not straight lines: every vertex counts
        g = shapely.Polygon(coords)
        assert g.is_valid and len(coords) > 1000
        minx, miny, maxx, maxy = g.bounds
        lon = np.r_[rng.uniform(minx - 0.2, maxx + 0.2, 10), rng.uniform(minx - 6, maxx + 6, 6), 126.0]
        lat = np.r_[rng.uniform(miny - 0.2, maxy + 0.2, 10), rng.uniform(miny - 6, maxy + 6, 6), maxy - 0.3]
        outside = ~shapely.contains(g, shapely.points(lon, lat))
        expect = oracle_distance_m(lon[outside], lat[outside], g, step_deg=0.01)
        got = np.array([distance_to_geometry_m(x, y, g) for x, y in zip(lon[outside], lat[outside], strict=True)])
        np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-3)
