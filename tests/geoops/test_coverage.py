"""Shelter coverage (geoops.coverage) against independent oracles.

Oracles: brute-force geodesic distances over every pair (pyproj.Geod, no tree), exhaustive enumeration of
whole-person assignments on small cases (the transport polytope is integral, so with whole-person data
the best whole-person assignment is the LP optimum), hand-checkable fixtures, and re-solves for the gap
ranking.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geoops.coverage import (
    CELL_COLUMNS,
    FLOW_COLUMNS,
    GAP_COLUMNS,
    SHELTER_COLUMNS,
    _gain_by_lp,
    _Residual,
    assign,
    gap_ranking,
    region_totals,
)
from geoops.errors import InvalidParameterError

GEOD = Geod(ellps="WGS84")


def brute_distances(clon, clat, slon, slat) -> np.ndarray:
    """Geodesic distance of every (cell, shelter) pair, one Geod.inv call per pair."""
    out = np.empty((len(clon), len(slon)))
    for i, j in itertools.product(range(len(clon)), range(len(slon))):
        out[i, j] = GEOD.inv(float(clon[i]), float(clat[i]), float(slon[j]), float(slat[j]))[2]
    return out


def brute_force_best(pop, free, dist, reach) -> tuple[float, float]:
    """(max covered, min person-metres among max) over every whole-person assignment."""
    n, m = dist.shape
    options = []
    for i in range(n):
        ok = [j for j in range(m) if dist[i, j] <= reach]
        rows = []
        for alloc in itertools.product(range(int(pop[i]) + 1), repeat=len(ok)):
            if sum(alloc) <= pop[i]:
                v = np.zeros(m, dtype=np.int64)
                v[ok] = alloc
                rows.append(v)
        options.append(np.array(rows))
    loads = np.zeros((1, m), dtype=np.int64)
    pm = np.zeros(1)
    for i in range(n):
        opt = options[i]
        new_loads = (loads[:, None, :] + opt[None, :, :]).reshape(-1, m)
        safe = np.where(np.isfinite(dist[i]) & (dist[i] <= reach), dist[i], 0.0)
        new_pm = (pm[:, None] + (opt * safe).sum(axis=1)[None, :]).reshape(-1)
        keep = (new_loads <= free[None, :]).all(axis=1)
        loads, pm = new_loads[keep], new_pm[keep]
    covered = loads.sum(axis=1)
    best = covered.max()
    return float(best), float(pm[covered == best].min())


def random_instance(seed: int, n: int, m: int, box_deg: float = 0.03, max_pop: int = 3, max_free: int = 3):
    rng = np.random.default_rng(seed)
    lon0, lat0 = rng.uniform(75, 130), rng.uniform(20, 52)
    return dict(
        demand_cells=np.arange(n, dtype=np.int64) + 1000,
        demand_lon=lon0 + rng.uniform(0, box_deg, n), demand_lat=lat0 + rng.uniform(0, box_deg, n),
        demand_pop=rng.integers(0, max_pop + 1, n).astype(float),
        shelter_ids=np.array([f"s{j}" for j in range(m)]),
        shelter_lon=lon0 + rng.uniform(0, box_deg, m), shelter_lat=lat0 + rng.uniform(0, box_deg, m),
        shelter_free=rng.integers(0, max_free + 1, m).astype(float),
    )


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_over_all_whole_person_assignments(seed):
    inst = random_instance(seed, 4, 3)
    dist = brute_distances(inst["demand_lon"], inst["demand_lat"], inst["shelter_lon"], inst["shelter_lat"])
    reach = float(np.quantile(dist, 0.6))  # some pairs in reach, some not
    res = assign(**inst, max_distance_m=reach)
    best, best_pm = brute_force_best(inst["demand_pop"], inst["shelter_free"], dist, reach)
    assert res.totals["covered"] == pytest.approx(best, abs=1e-6)
    assert res.totals["person_metres"] == pytest.approx(best_pm, rel=1e-7, abs=1e-3)
    # every flow is on a pair the brute force puts in reach, with the brute-force distance
    for row in res.flows.itertuples():
        i, j = int(row.cell) - 1000, int(row.shelter[1:])
        assert dist[i, j] <= reach
        assert row.distance_m == pytest.approx(dist[i, j], abs=1e-6)
    # limits
    assert (res.shelters["load"] <= res.shelters["free"] + 1e-9).all()
    assert (res.cells["covered"] <= res.cells["population"] + 1e-9).all()
    out_of_reach = (dist > reach).all(axis=1)
    assert (res.cells["covered"][out_of_reach] == 0).all()
    assert (~res.cells["reachable"][out_of_reach]).all()


def test_hand_checked_fixture_beats_nearest_first():
    # X is 111 m from A and 2.2 km from B; Y is 2.1 km from A and 4.4 km from B. Reach 2.5 km.
    # Nearest-first would put A in X and leave B out; the optimum sends A to Y and B to X.
    res = assign(["A", "B", "C"], [116.40, 116.40, 117.0], [39.901, 39.88, 39.9], [100.0, 100.0, 50.0],
                 ["X", "Y"], [116.40, 116.40], [39.90, 39.92], [100.0, 100.0], max_distance_m=2500)
    cells = res.cells.set_index("cell")
    assert cells.loc["A", "covered"] == 100 and cells.loc["A", "main_shelter"] == "Y"
    assert cells.loc["B", "covered"] == 100 and cells.loc["B", "main_shelter"] == "X"
    assert cells.loc["C", "covered"] == 0 and not cells.loc["C", "reachable"]
    assert pd.isna(cells.loc["C", "main_shelter"]) and math.isnan(cells.loc["C", "main_distance_m"])
    assert res.totals["covered"] == 200 and res.totals["uncovered"] == 50
    assert res.totals["unreachable_population"] == 50
    assert res.shelters["load_ratio"].tolist() == [1.0, 1.0]
    assert list(res.cells.columns) == CELL_COLUMNS and list(res.shelters.columns) == SHELTER_COLUMNS
    assert list(res.flows.columns) == FLOW_COLUMNS


def test_spare_capacity_goes_to_the_nearest_shelter():
    # 10 people, both shelters could take all of them: everyone goes to the nearer one
    res = assign([1], [116.40], [39.90], [10.0], ["near", "far"], [116.40, 116.40], [39.905, 39.91],
                 [50.0, 50.0], max_distance_m=5000)
    assert res.flows["shelter"].tolist() == ["near"]
    assert res.totals["person_metres"] == pytest.approx(10 * GEOD.inv(116.40, 39.90, 116.40, 39.905)[2])


@pytest.mark.parametrize("lat", [0.0, 18.0, 35.0, 50.0, 53.9, 89.0])
@pytest.mark.parametrize("reach", [300.0, 5000.0, 100_000.0])
def test_reach_is_exact_at_the_boundary_in_every_direction(lat, reach):
    az = np.arange(0, 360, 15.0)
    lon_in, lat_in, _ = GEOD.fwd(np.full(az.shape, 100.0), np.full(az.shape, lat), az,
                                 np.full(az.shape, reach * (1 - 1e-9)))
    lon_out, lat_out, _ = GEOD.fwd(np.full(az.shape, 100.0), np.full(az.shape, lat), az,
                                   np.full(az.shape, reach * (1 + 1e-6)))
    k = az.shape[0]
    res = assign([0], [100.0], [lat], [1e6], np.arange(2 * k), np.r_[lon_in, lon_out], np.r_[lat_in, lat_out],
                 np.ones(2 * k), max_distance_m=reach)
    served = set(res.flows["shelter"].tolist())
    assert served == set(range(k))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), m=st.integers(1, 5),
       d1=st.floats(200, 3000), grow=st.floats(1.0, 3.0), extra=st.floats(0, 50))
def test_coverage_never_falls_with_reach_or_capacity(seed, n, m, d1, grow, extra):
    inst = random_instance(seed, n, m, box_deg=0.04, max_pop=100, max_free=120)
    rng = np.random.default_rng(seed + 1)
    inst["demand_pop"] = inst["demand_pop"] * rng.uniform(0.5, 1.5, n)  # not whole people
    base = assign(**inst, max_distance_m=d1)
    wider = assign(**inst, max_distance_m=d1 * grow)
    bigger = assign(**{**inst, "shelter_free": inst["shelter_free"] + extra * rng.uniform(0, 1, m)},
                    max_distance_m=d1)
    tol = 1e-6 * max(1.0, base.totals["population"])
    assert wider.totals["covered"] >= base.totals["covered"] - tol
    assert bigger.totals["covered"] >= base.totals["covered"] - tol
    for r in (base, wider, bigger):
        assert r.totals["covered"] <= min(r.totals["population"], r.totals["free"]) + tol
        assert r.totals["covered"] <= r.totals["reachable_population"] + tol
        assert (r.shelters["load_ratio"].dropna() <= 1 + 1e-9).all()
        assert (r.cells["uncovered"] >= 0).all()
        assert math.isclose(r.totals["covered"] + r.totals["uncovered"], r.totals["population"],
                            rel_tol=1e-9, abs_tol=1e-9)


def test_gap_ranking_matches_re_solves():
    inst = random_instance(7, 120, 4, box_deg=0.15, max_pop=400, max_free=3000)
    res = assign(**inst, max_distance_m=3000)
    rng = np.random.default_rng(3)
    k = 25
    c_lon = inst["demand_lon"].min() + rng.uniform(0, 0.15, k)
    c_lat = inst["demand_lat"].min() + rng.uniform(0, 0.15, k)
    c_cap = np.round(rng.uniform(100, 3000, k))
    ranking = gap_ranking(res, [f"c{i}" for i in range(k)], c_lon, c_lat, c_cap, top=5)
    assert list(ranking.columns) == GAP_COLUMNS and len(ranking) == 5
    resolved = []
    for i in range(k):
        again = assign(inst["demand_cells"], inst["demand_lon"], inst["demand_lat"], inst["demand_pop"],
                       np.r_[inst["shelter_ids"], ["new"]], np.r_[inst["shelter_lon"], c_lon[i]],
                       np.r_[inst["shelter_lat"], c_lat[i]], np.r_[inst["shelter_free"], c_cap[i]],
                       max_distance_m=3000)
        resolved.append(again.totals["covered"] - res.totals["covered"])
    resolved = np.array(resolved)
    for row in ranking.itertuples():
        assert row.added_covered == pytest.approx(resolved[int(row.candidate[1:])], abs=1e-5)
        assert row.covered_after == pytest.approx(res.totals["covered"] + row.added_covered)
    assert (np.diff(ranking["added_covered"].to_numpy()) <= 1e-9).all()
    assert resolved.max() > 0  # the fixture has a gap to close
    unreported = np.setdiff1d(np.arange(k), [int(c[1:]) for c in ranking["candidate"]])
    assert (resolved[unreported] <= ranking["added_covered"].min() + 1e-5).all()


def test_gap_paths_agree_with_lp_fallback():
    # re-routing needed: the uncovered cell is out of the candidate's reach, a covered one is in it
    inst = random_instance(11, 150, 5, box_deg=0.12, max_pop=500, max_free=2000)
    res = assign(**inst, max_distance_m=2500)
    p = res._problem
    resid = _Residual(p, res.cells["uncovered"].to_numpy())
    for i in range(0, 150, 10):
        start = np.array([i, (i + 1) % 150, (i + 7) % 150], dtype=np.intp)
        for cap in (50.0, 800.0, 5000.0):
            fast = resid.gain(start, cap)
            slow = _gain_by_lp(p, res.cells["covered"].to_numpy(), start, cap)
            assert fast is not None and fast == pytest.approx(slow, abs=1e-5)


def test_gap_ranking_other_reach_and_top():
    inst = random_instance(5, 30, 2, box_deg=0.05, max_pop=100, max_free=200)
    res = assign(**inst, max_distance_m=1000)
    cands = dict(candidate_ids=["a", "b"], candidate_lon=inst["demand_lon"][:2],
                 candidate_lat=inst["demand_lat"][:2], candidate_capacity=[500.0, 10.0])
    wide = gap_ranking(res, **cands, max_distance_m=4000, top=1)
    direct = gap_ranking(assign(**inst, max_distance_m=4000), **cands, top=1)
    assert wide.drop(columns=[]).equals(direct)
    for bad in (0, 1001, 2.5, True):
        with pytest.raises(InvalidParameterError) as e:
            gap_ranking(res, **cands, top=bad)
        assert e.value.field == "top"
    empty = gap_ranking(res, [], [], [], [])
    assert list(empty.columns) == GAP_COLUMNS and len(empty) == 0


def _args():
    return dict(demand_cells=[1, 2], demand_lon=[116.4, 116.41], demand_lat=[39.9, 39.91],
                demand_pop=[10.0, 20.0], shelter_ids=["s"], shelter_lon=[116.4], shelter_lat=[39.905],
                shelter_free=[15.0])


@pytest.mark.parametrize("field,value", [
    ("demand_pop", [-1.0, 2.0]), ("demand_pop", [np.nan, 2.0]), ("demand_lon", [np.nan, 116.0]),
    ("demand_lat", [39.9, 91.0]), ("demand_lon", [116.4]), ("shelter_free", [-3.0]),
    ("shelter_lat", [np.inf]), ("demand_cells", [1, 1]), ("shelter_ids", [["a"]]),
])
def test_bad_inputs_name_the_field(field, value):
    with pytest.raises(InvalidParameterError) as e:
        assign(**{**_args(), field: value}, max_distance_m=1000)
    assert e.value.field == field
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("reach", [0, -5, 100_000.5, float("nan"), float("inf"), "5000", None, True])
def test_bad_reach(reach):
    with pytest.raises(InvalidParameterError) as e:
        assign(**_args(), max_distance_m=reach)
    assert e.value.field == "max_distance_m" and "100000" in str(e.value)


def test_empty_inputs_give_empty_frames_with_columns():
    res = assign([], [], [], [], [], [], [], [], max_distance_m=1000)
    assert list(res.cells.columns) == CELL_COLUMNS and len(res.cells) == 0
    assert list(res.flows.columns) == FLOW_COLUMNS and res.totals["covered"] == 0
    assert math.isnan(res.totals["coverage_ratio"])
    no_shelters = assign([1], [116.0], [40.0], [5.0], [], [], [], [], max_distance_m=1000)
    assert no_shelters.totals["uncovered"] == 5 and len(no_shelters.shelters) == 0
    full = assign([1], [116.0], [40.0], [5.0], ["s"], [116.0], [40.0], [0.0], max_distance_m=1000)
    assert math.isnan(full.shelters["load_ratio"].iloc[0]) and full.totals["covered"] == 0


def test_region_totals_conserve_population():
    inst = random_instance(2, 40, 3, box_deg=0.05, max_pop=100, max_free=150)
    res = assign(**inst, max_distance_m=2000)
    regions = np.where(inst["demand_lon"] < np.median(inst["demand_lon"]), "150102", "150103")
    by = region_totals(res, regions)
    for col in ("population", "covered", "uncovered"):
        assert by[col].sum() == pytest.approx(res.totals[col], rel=1e-12)
        for reg in ("150102", "150103"):
            assert by.loc[reg, col] == pytest.approx(res.cells[col][regions == reg].sum(), rel=1e-12)
    with pytest.raises(InvalidParameterError) as e:
        region_totals(res, {1000: "150102"})
    assert e.value.field == "cell_region"
