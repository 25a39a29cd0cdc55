"""geoops.nearest against brute force: exact Geod.inv to ALL candidates, sorted by (distance, index)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geoops.errors import InvalidParameterError
from geoops.nearest import nearest_batch, rank

G = Geod(ellps="WGS84")


def brute_force(q_lon, q_lat, c_lon, c_lat, k):
    """Oracle: every candidate's Geod.inv distance, order by (distance, index)."""
    m = len(c_lon)
    idx = np.full((len(q_lon), k), -1)
    dist = np.full((len(q_lon), k), np.nan)
    az_out = np.full((len(q_lon), k), np.nan)
    for i, (x, y) in enumerate(zip(q_lon, q_lat, strict=False)):
        az, _, d = G.inv(np.full(m, x), np.full(m, y), c_lon, c_lat)
        order = np.lexsort((np.arange(m), d))[:k]
        idx[i, : len(order)] = order
        dist[i, : len(order)] = d[order]
        az_out[i, : len(order)] = np.mod(az[order], 360.0)
    return idx, dist, az_out


def region(rng, n):
    return rng.uniform(97.0, 126.0, n), rng.uniform(37.0, 53.0, n)


# ------------------------------------------------------------------------------------------------ rank


def test_planar_degree_knn_misorders_at_50N_but_rank_is_geodesic():
    q = (120.0, 50.0)
    c_lon = np.array([120.0, 121.3, 119.0])  # 0.9 deg north, 1.3 deg east, 1 deg west + 0.75 north
    c_lat = np.array([50.9, 50.0, 50.75])
    planar = np.argsort(np.hypot(c_lon - q[0], c_lat - q[1]))
    idx, d, b = rank(*q, c_lon, c_lat, k=3)
    oracle_idx, oracle_d, oracle_b = brute_force([q[0]], [q[1]], c_lon, c_lat, 3)
    assert idx.tolist() == oracle_idx[0].tolist()
    # planar KNN on EPSG:4326 gets the order wrong:
    # 0.9 deg north looks nearest, 1.3 deg east is (93 vs 100 km)
    assert planar.tolist() == [0, 2, 1] and idx.tolist() == [1, 0, 2]
    np.testing.assert_allclose(d, oracle_d[0], rtol=1e-12)
    np.testing.assert_allclose(b, oracle_b[0], rtol=1e-12)


def test_rank_matches_brute_force_on_random_candidate_sets():
    rng = np.random.default_rng(11)
    for _ in range(20):
        c_lon, c_lat = region(rng, 150)
        q_lon, q_lat = region(rng, 1)
        idx, d, b = rank(float(q_lon[0]), float(q_lat[0]), c_lon, c_lat, k=5)
        o_idx, o_d, o_b = brute_force(q_lon, q_lat, c_lon, c_lat, 5)
        assert idx.tolist() == o_idx[0].tolist()
        np.testing.assert_allclose(d, o_d[0], rtol=1e-12)
        assert ((b >= 0) & (b < 360)).all()


def test_rank_ties_by_index_short_sets_and_coincident_points():
    # two candidates at the same place: the lower index first; the query point itself has no bearing
    idx, d, b = rank(116.0, 40.0, [116.5, 116.0, 116.5, 116.0], [40.0, 40.0, 40.0, 40.0], k=10)
    assert idx.tolist() == [1, 3, 0, 2]
    assert d[:2].tolist() == [0.0, 0.0] and np.isnan(b[:2]).all()
    empty = rank(116.0, 40.0, [], [], k=3)
    assert [a.size for a in empty] == [0, 0, 0]


# ------------------------------------------------------------------------------------------------ batch


def test_nearest_batch_matches_brute_force_same_ids_same_order():
    rng = np.random.default_rng(100)
    c_lon, c_lat = region(rng, 8_000)
    q_lon, q_lat = region(rng, 40)
    o_idx, o_d, o_b = brute_force(q_lon, q_lat, c_lon, c_lat, 8)
    for k in (1, 3, 8):
        idx, d, b = nearest_batch(q_lon, q_lat, c_lon, c_lat, k=k)
        assert idx.shape == d.shape == b.shape == (40, k)
        assert (idx == o_idx[:, :k]).all()
        np.testing.assert_allclose(d, o_d[:, :k], rtol=1e-12)
        np.testing.assert_allclose(b, o_b[:, :k], rtol=1e-9, atol=1e-9)


def test_nearest_batch_on_clustered_duplicated_and_equidistant_candidates():
    """Hard cases for the k-d tree shortcut: exact duplicates (ties by index) and candidates placed at the
    same geodesic distance in every direction (sphere chords disagree with the ellipsoid order), so the
    provable-completeness check has to widen the search."""
    rng = np.random.default_rng(5)
    centres = np.array([[126.0, 50.0], [100.0, 38.0], [117.0, 45.0]])
    parts_lon, parts_lat = [], []
    for lon0, lat0 in centres:
        az = np.linspace(0, 360, 40, endpoint=False)
        lon, lat, _ = G.fwd(np.full(40, lon0), np.full(40, lat0), az, np.full(40, 25_000.0))
        parts_lon.append(lon)
        parts_lat.append(lat)
    dup_lon, dup_lat = region(rng, 50)
    c_lon = np.concatenate([*parts_lon, dup_lon, dup_lon, rng.uniform(97, 126, 3000)])
    c_lat = np.concatenate([*parts_lat, dup_lat, dup_lat, rng.uniform(37, 53, 3000)])
    q_lon = np.concatenate([centres[:, 0], dup_lon[:10], rng.uniform(97, 126, 20)])
    q_lat = np.concatenate([centres[:, 1], dup_lat[:10], rng.uniform(37, 53, 20)])
    for k in (1, 4, 30):
        idx, d, _ = nearest_batch(q_lon, q_lat, c_lon, c_lat, k=k)
        o_idx, o_d, _ = brute_force(q_lon, q_lat, c_lon, c_lat, k)
        assert (idx == o_idx).all(), k
        np.testing.assert_allclose(d, o_d, rtol=1e-12)


def test_nearest_batch_pads_when_k_exceeds_candidates_and_handles_empty_inputs():
    idx, d, b = nearest_batch([116.0, 120.0], [40.0, 50.0], [116.1, 119.0], [40.0, 50.0], k=4)
    assert idx.tolist() == [[0, 1, -1, -1], [1, 0, -1, -1]]
    assert np.isnan(d[:, 2:]).all() and np.isnan(b[:, 2:]).all() and np.isfinite(d[:, :2]).all()
    idx, d, b = nearest_batch([116.0], [40.0], [], [], k=2)
    assert idx.tolist() == [[-1, -1]] and np.isnan(d).all()
    idx, d, b = nearest_batch([], [], [116.0], [40.0], k=3)
    assert idx.shape == (0, 3) and d.shape == (0, 3)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"k": 0}, "k"),
        ({"k": 1001}, "k"),
        ({"k": 2.0}, "k"),
        ({"q_lon": [116.0, np.nan]}, "q_lon"),
        ({"cand_lat": [40.0, 95.0]}, "cand_lat"),
        ({"q_lon": [116.0, 117.0, 118.0]}, "q_lon"),
    ],
)
def test_nearest_batch_rejects_bad_input_naming_the_field(kwargs, field):
    args = {
        "q_lon": [116.0, 117.0],
        "q_lat": [40.0, 41.0],
        "cand_lon": [116.0, 117.0],
        "cand_lat": [40.0, 41.0],
        "k": 3,
    } | kwargs
    with pytest.raises(InvalidParameterError) as exc:
        nearest_batch(args["q_lon"], args["q_lat"], args["cand_lon"], args["cand_lat"], k=args["k"])
    assert exc.value.field == field and exc.value.allowed
    with pytest.raises(InvalidParameterError):
        rank(116.0, 40.0, args["cand_lon"], args["cand_lat"], k=0)


lon_st = st.floats(97.0, 126.0)
lat_st = st.floats(37.0, 53.0)


@settings(max_examples=40, deadline=None)
@given(
    q=st.tuples(lon_st, lat_st),
    cands=st.lists(st.tuples(lon_st, lat_st), min_size=1, max_size=60),
    k=st.integers(1, 8),
)
def test_property_nearest_never_farther_than_any_candidate(q, cands, k):
    c = np.asarray(cands)
    idx, d, _ = nearest_batch([q[0]], [q[1]], c[:, 0], c[:, 1], k=k)
    _, _, all_d = G.inv(np.full(len(c), q[0]), np.full(len(c), q[1]), c[:, 0], c[:, 1])
    found = idx[0][idx[0] >= 0]
    assert len(found) == min(k, len(c))
    assert d[0, 0] <= all_d.min() + 1e-9  # the nearest is never farther than any candidate
    assert (np.diff(d[0, : len(found)]) >= 0).all()
    others = np.setdiff1d(np.arange(len(c)), found)
    if others.size:  # nothing left out is nearer than what was returned
        assert all_d[others].min() >= d[0, len(found) - 1] - 1e-9
    r_idx, r_d, _ = rank(q[0], q[1], c[:, 0], c[:, 1], k=k)
    assert r_idx.tolist() == found.tolist()
