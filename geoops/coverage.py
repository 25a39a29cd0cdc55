"""Shelter coverage: assign the population of H3 cells to shelters within reach, never over capacity.

Public: :func:`assign`, :func:`gap_ranking`, :func:`region_totals`, :class:`CoverageResult`.

Definition (docs/analyses.md, "Shelter coverage")
-------------------------------------------------
Demand is the population of the cells in scope (cell id, centre lon/lat, population); supply is the free
places of each shelter (capacity minus occupancy, >= 0). A cell can be served by a shelter whose geodesic
distance (WGS84, cell centre to shelter) is at most ``max_distance_m``. People of one cell may be split over
several shelters. The assignment

1. never puts more people in a shelter than its free places, nor more people of a cell than live there;
2. **maximises the covered population** (the primary objective);
3. among all assignments that cover that maximum, **minimises the person-metres** (sum of people x distance).

How it is solved
----------------
A transport problem (a min-cost flow on the bipartite graph cells -> shelters), solved as one sparse linear
programme with HiGHS (``scipy.optimize.linprog(method="highs")``). Candidate pairs come from a
``scipy.spatial.cKDTree`` on 3-D unit vectors with a chord radius that provably contains every pair within
``max_distance_m`` (see :func:`geoops.wgs84.chord_radius`); exact ``pyproj.Geod.inv`` distances then decide.

Both objectives are folded into one cost per person on edge ``e`` of connected component ``C``:
``cost_e = d_e / max_distance_m - K_C`` with ``K_C = min(#cells in C, #shelters in C) + 1``. This never
trades a covered person for distance: if an optimal flow ``f`` for these costs were not a maximum flow, its
residual graph would hold an augmenting path ``P`` (source -> cell -> shelter <- cell ... -> shelter -> sink)
inside one component. ``P`` alternates forward and backward cell-shelter edges with one more forward edge
than backward edges and enters each shelter at most once, so it has at most ``min(#cells, #shelters)``
forward edges, each with ``d / max_distance_m <= 1``. Its cost per person is therefore at most
``-K_C + min(#cells, #shelters) = -1 < 0`` and pushing a little flow along ``P`` would lower the cost: a
contradiction. So every optimum covers the maximum population, and among maximum flows the cost differs
from ``sum(people x distance) / max_distance_m`` by the constant ``-K_C x covered``: the person-metres are
minimal. The constraint matrix is that of a network (totally unimodular), so with whole-person data the
optimum found at a vertex is whole people too.

After the solve, solver round-off (HiGHS works to ~1e-7 absolute) is removed by scaling down any shelter
or cell that is over its limit, so a load ratio never exceeds 1.

Examples
--------
Two cells, one shelter with 100 free places 1.1 km away from both: the shelter fills up and the nearer
cell is served first.

>>> r = assign([1, 2], [116.40, 116.40], [39.90, 39.92], [80.0, 50.0],
...            ["s1"], [116.40], [39.91], [100.0], max_distance_m=2000)
>>> r.cells[["cell", "covered", "uncovered"]].to_numpy().tolist()
[[1.0, 80.0, 0.0], [2.0, 20.0, 30.0]]
>>> float(r.totals["covered"]), float(r.shelters["load_ratio"].iloc[0])
(100.0, 1.0)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geoops.errors import GeoOpsError, InvalidParameterError
from geoops.wgs84 import GEOD, chord_radius, unit_vectors

__all__ = ["CoverageResult", "assign", "gap_ranking", "region_totals"]

MAX_DISTANCE_LIMIT_M = 100_000.0
_TOP_LIMIT = 1000

CELL_COLUMNS = ["cell", "population", "covered", "uncovered", "reachable", "n_shelters_in_reach",
                "main_shelter", "main_distance_m", "mean_distance_m"]
SHELTER_COLUMNS = ["shelter", "free", "load", "spare", "load_ratio", "n_cells_served", "n_cells_in_reach",
                   "mean_distance_m"]
FLOW_COLUMNS = ["cell", "shelter", "people", "distance_m"]
GAP_COLUMNS = ["rank", "candidate", "capacity", "added_covered", "covered_after", "coverage_ratio_after",
               "n_cells_in_reach", "population_in_reach", "uncovered_in_reach"]


@dataclass(frozen=True)
class _Problem:
    """Validated inputs and the reachable pairs (internal; kept so :func:`gap_ranking` can re-solve)."""

    cells: NDArray[Any]
    cell_lon: NDArray[np.float64]
    cell_lat: NDArray[np.float64]
    pop: NDArray[np.float64]
    shelters: NDArray[Any]
    shelter_lon: NDArray[np.float64]
    shelter_lat: NDArray[np.float64]
    free: NDArray[np.float64]
    max_distance_m: float
    edge_cell: NDArray[np.intp]  # all pairs within reach (whatever the population / free places)
    edge_shelter: NDArray[np.intp]
    edge_dist: NDArray[np.float64]
    edge_flow: NDArray[np.float64]  # people on each pair in the optimal assignment


@dataclass(frozen=True)
class CoverageResult:
    """Result of :func:`assign`.

    Attributes
    ----------
    cells : pandas.DataFrame
        One row per input cell, in input order: ``cell``, ``population``, ``covered``, ``uncovered``,
        ``reachable`` (bool: a shelter with free places lies within reach), ``n_shelters_in_reach``,
        ``main_shelter`` (id of the shelter that takes most of the cell's people; missing (NA) if nobody
        is covered), ``main_distance_m`` (NaN if none), ``mean_distance_m`` (people-weighted over the
        covered people, NaN if none).
    shelters : pandas.DataFrame
        One row per input shelter, in input order: ``shelter``, ``free``, ``load`` (people assigned),
        ``spare`` (free - load), ``load_ratio`` (load / free, never above 1; NaN when free is 0),
        ``n_cells_served``, ``n_cells_in_reach``, ``mean_distance_m`` (people-weighted, NaN if empty).
    flows : pandas.DataFrame
        One row per (cell, shelter) pair with people on it: ``cell``, ``shelter``, ``people``,
        ``distance_m`` (geodesic, WGS84), sorted by cell (input order) then distance.
    totals : dict
        ``population``, ``covered``, ``uncovered``, ``coverage_ratio`` (NaN if no population),
        ``reachable_population``, ``unreachable_population``, ``free``, ``load``, ``spare``,
        ``person_metres``, ``mean_distance_m``, ``max_distance_m``, ``n_cells``, ``n_shelters``,
        ``n_pairs_in_reach``.
    max_distance_m : float
        The reach used.
    """

    cells: pd.DataFrame
    shelters: pd.DataFrame
    flows: pd.DataFrame
    totals: dict[str, float]
    max_distance_m: float
    _problem: _Problem = field(repr=False)


# ----------------------------------------------------------------------------------------------- validation
def _check_max_distance(max_distance_m: Any) -> float:
    allowed = f"a number of metres in (0, {MAX_DISTANCE_LIMIT_M:.0f}]"
    if isinstance(max_distance_m, bool) or not isinstance(max_distance_m, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(field="max_distance_m", value=max_distance_m, allowed=allowed)
    value = float(max_distance_m)
    if not (0.0 < value <= MAX_DISTANCE_LIMIT_M):
        raise InvalidParameterError(field="max_distance_m", value=max_distance_m, allowed=allowed)
    return value


def _float_array(values: ArrayLike, name: str, n: int | None) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError("not numbers", field=name, value=values,
                                    allowed="a 1-D sequence of numbers") from exc
    if arr.ndim != 1:
        raise InvalidParameterError("not one-dimensional", field=name, value=values,
                                    allowed="a 1-D sequence of numbers")
    if n is not None and arr.shape[0] != n:
        raise InvalidParameterError(f"has {arr.shape[0]} values, expected {n}", field=name,
                                    value=values, allowed=f"{n} values, one per row of the ids")
    return arr


def _ids(values: ArrayLike, name: str) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidParameterError("not one-dimensional", field=name, value=values,
                                    allowed="a 1-D sequence of ids")
    if len(pd.unique(arr)) != arr.shape[0]:
        dup = pd.Series(arr)[pd.Series(arr).duplicated()].iloc[0]
        raise InvalidParameterError("duplicate id", field=name, value=dup, allowed="unique ids")
    return arr


def _check_coords(lon: NDArray[np.float64], lat: NDArray[np.float64], lon_name: str, lat_name: str) -> None:
    for arr, name, bound in ((lon, lon_name, 180.0), (lat, lat_name, 90.0)):
        bad = ~np.isfinite(arr) | (np.abs(arr) > bound)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidParameterError(f"invalid coordinate at position {i}", field=name,
                                        value=float(arr[i]),
                                        allowed=f"finite degrees in [-{bound:.0f}, {bound:.0f}] (EPSG:4326)")


def _check_amount(arr: NDArray[np.float64], name: str, what: str) -> None:
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(f"invalid {what} at position {i}", field=name, value=float(arr[i]),
                                    allowed=f"a finite {what} >= 0")


def _points(ids: ArrayLike, lon: ArrayLike, lat: ArrayLike, amount: ArrayLike, names: Sequence[str],
            what: str) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    id_arr = _ids(ids, names[0])
    n = id_arr.shape[0]
    lon_arr = _float_array(lon, names[1], n)
    lat_arr = _float_array(lat, names[2], n)
    amt = _float_array(amount, names[3], n)
    _check_coords(lon_arr, lat_arr, names[1], names[2])
    _check_amount(amt, names[3], what)
    return id_arr, lon_arr, lat_arr, amt


# --------------------------------------------------------------------------------------------- geometry
def _pairs_within(tree: cKDTree, lon: NDArray[np.float64], lat: NDArray[np.float64],
                  query_lon: NDArray[np.float64], query_lat: NDArray[np.float64], max_distance_m: float
                  ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Pairs (tree point i, query point j) with geodesic distance <= max_distance_m, and that distance."""
    if query_lon.shape[0] == 0 or lon.shape[0] == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty.copy(), np.zeros(0)
    hits: Any = tree.query_ball_point(unit_vectors(query_lon, query_lat), chord_radius(max_distance_m),
                                 return_sorted=False)
    counts = np.fromiter((len(h) for h in hits), dtype=np.intp, count=len(hits))
    j = np.repeat(np.arange(len(hits), dtype=np.intp), counts)
    i = (np.concatenate([np.asarray(h, dtype=np.intp) for h in hits]) if counts.sum()
         else np.zeros(0, dtype=np.intp))
    if i.shape[0] == 0:
        return i, j, np.zeros(0)
    _, _, dist = GEOD.inv(lon[i], lat[i], query_lon[j], query_lat[j])
    dist = np.asarray(dist, dtype=np.float64)
    keep = dist <= max_distance_m
    return i[keep], j[keep], dist[keep]


# -------------------------------------------------------------------------------------------------- solve
def _solve_transport(edge_cell: NDArray[np.intp], edge_shelter: NDArray[np.intp], dist: NDArray[np.float64],
                     pop: NDArray[np.float64], free: NDArray[np.float64], max_distance_m: float,
                     *, distances: bool = True) -> NDArray[np.float64]:
    """People on each edge: maximum covered population, then (if ``distances``) minimum person-metres.

    Only edges with people and free places on both ends should be passed. Returns a flow that respects
    both limits exactly (round-off scaled away).
    """
    n_edges = edge_cell.shape[0]
    if n_edges == 0:
        return np.zeros(0)
    # compact numbering of the cells and shelters that appear
    cell_u, cell_idx = np.unique(edge_cell, return_inverse=True)
    shel_u, shel_idx = np.unique(edge_shelter, return_inverse=True)
    nc, ns = cell_u.shape[0], shel_u.shape[0]
    if distances:
        graph = sparse.coo_matrix((np.ones(n_edges), (cell_idx, nc + shel_idx)), shape=(nc + ns, nc + ns))
        n_comp, label = connected_components(graph, directed=False)
        comp_cells = np.bincount(label[:nc], minlength=n_comp)
        comp_shel = np.bincount(label[nc:], minlength=n_comp)
        k = (np.minimum(comp_cells, comp_shel) + 1).astype(np.float64)
        cost = dist / max_distance_m - k[label[cell_idx]]
    else:
        cost = -np.ones(n_edges)
    rows = np.concatenate([cell_idx, nc + shel_idx])
    cols = np.concatenate([np.arange(n_edges), np.arange(n_edges)])
    a_ub = sparse.csr_matrix((np.ones(2 * n_edges), (rows, cols)), shape=(nc + ns, n_edges))
    b_ub = np.concatenate([pop[cell_u], free[shel_u]])
    upper = np.minimum(pop[edge_cell], free[edge_shelter])
    # an (n, 2) array of bounds is documented by scipy; its stubs type only a sequence of pairs
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=np.column_stack([np.zeros(n_edges), upper]),  # type: ignore[call-overload]
                  method="highs")
    if res.status != 0 or res.x is None:  # cannot happen for a bounded feasible transport problem
        raise GeoOpsError(f"the shelter assignment solver failed: {res.message}", field="max_distance_m",
                          value=max_distance_m, allowed="a solvable problem", code="solver_failed")
    x = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, upper)
    # remove round-off: never more than the free places of a shelter, nor the people of a cell
    for idx, limit in ((shel_idx, free[shel_u]), (cell_idx, pop[cell_u])):
        total = np.bincount(idx, weights=x, minlength=limit.shape[0])
        over = total > limit
        if over.any():
            scale = np.ones_like(total)
            scale[over] = limit[over] / total[over]
            x = x * scale[idx]
            total = np.bincount(idx, weights=x, minlength=limit.shape[0])
            # a last ulp of excess goes off the largest edge of that node
            still = np.flatnonzero(total > limit)
            for node in still:
                members = np.flatnonzero(idx == node)
                big = members[np.argmax(x[members])]
                x[big] = max(0.0, x[big] - (total[node] - limit[node]))
    x[x < 1e-9 * np.maximum(1.0, upper)] = 0.0
    return x


def assign(demand_cells: ArrayLike, demand_lon: ArrayLike, demand_lat: ArrayLike, demand_pop: ArrayLike,
           shelter_ids: ArrayLike, shelter_lon: ArrayLike, shelter_lat: ArrayLike, shelter_free: ArrayLike,
           *, max_distance_m: float, max_pairs: int | None = None) -> CoverageResult:
    """Assign the population of cells to shelters within reach: maximum coverage, then shortest distances.

    Parameters
    ----------
    demand_cells : array-like, shape (n,)
        Unique cell ids (H3 int64, or any hashable id).
    demand_lon, demand_lat : array-like of float, shape (n,)
        Cell centres, degrees, EPSG:4326.
    demand_pop : array-like of float, shape (n,)
        Population of each cell (people, >= 0).
    shelter_ids : array-like, shape (m,)
        Unique shelter ids.
    shelter_lon, shelter_lat : array-like of float, shape (m,)
        Shelter locations, degrees, EPSG:4326.
    shelter_free : array-like of float, shape (m,)
        Free places (capacity minus occupancy, >= 0; clip over-full shelters to 0 before calling).
    max_distance_m : float
        Reach: a cell may be served by a shelter at most this geodesic distance (WGS84) from its centre,
        in (0, 100000] metres.
    max_pairs : int, optional
        Refuse (``problem_too_large``) when more cell-shelter pairs than this are in reach: a bound on the solver's
        time, which grows faster than the number of pairs.

    Returns
    -------
    CoverageResult
        Per cell, per shelter, per pair and total figures (see :class:`CoverageResult`).

    Raises
    ------
    InvalidParameterError
        Negative or non-finite population or free places, coordinates that are NaN or out of range,
        arrays of different lengths, duplicate ids, or ``max_distance_m`` outside (0, 100000]. The
        error's ``field`` names the argument.

    Examples
    --------
    One cell of 10 people, two shelters of 6 free places at about 1.1 and 2.2 km, reach 3 km: six go to
    the nearer one, four to the farther one.

    >>> r = assign([7], [116.40], [39.90], [10.0], ["near", "far"], [116.40, 116.40],
    ...            [39.91, 39.92], [6.0, 6.0], max_distance_m=3000)
    >>> r.flows[["shelter", "people"]].to_numpy().tolist()
    [['near', 6.0], ['far', 4.0]]
    >>> r.cells["main_shelter"].tolist(), float(r.totals["uncovered"])
    (['near'], 0.0)
    """
    dmax = _check_max_distance(max_distance_m)
    cells, clon, clat, pop = _points(demand_cells, demand_lon, demand_lat, demand_pop,
                                     ("demand_cells", "demand_lon", "demand_lat", "demand_pop"), "population")
    shel, slon, slat, free = _points(shelter_ids, shelter_lon, shelter_lat, shelter_free,
                                     ("shelter_ids", "shelter_lon", "shelter_lat", "shelter_free"),
                                     "number of free places")
    tree = cKDTree(unit_vectors(clon, clat)) if cells.shape[0] else None
    if tree is None:
        ec = es = np.zeros(0, dtype=np.intp)
        ed = np.zeros(0)
    else:
        ec, es, ed = _pairs_within(tree, clon, clat, slon, slat, dmax)
    if max_pairs is not None and ec.shape[0] > max_pairs:  # the solver's time grows faster than the pairs
        raise InvalidParameterError(
            f"{ec.shape[0]:,} cell-shelter pairs in reach: too large to solve in time", field="max_distance_m",
            value=max_distance_m, allowed=f"a scope and distance with at most {max_pairs:,} cell-shelter pairs in "
                                          "reach (narrow the scope or shorten the distance)", code="problem_too_large")
    order = np.lexsort((ed, ec))
    ec, es, ed = ec[order], es[order], ed[order]
    active = (pop[ec] > 0) & (free[es] > 0)
    flow = np.zeros(ec.shape[0])
    flow[active] = _solve_transport(ec[active], es[active], ed[active], pop, free, dmax)
    problem = _Problem(cells, clon, clat, pop, shel, slon, slat, free, dmax, ec, es, ed, flow)
    return _result(problem)


def _result(p: _Problem) -> CoverageResult:
    n, m = p.cells.shape[0], p.shelters.shape[0]
    ec, es, ed, x = p.edge_cell, p.edge_shelter, p.edge_dist, p.edge_flow
    covered = np.bincount(ec, weights=x, minlength=n)
    covered = np.minimum(covered, p.pop)
    load = np.bincount(es, weights=x, minlength=m)
    usable = p.free[es] > 0
    reachable = np.zeros(n, dtype=bool)
    reachable[ec[usable]] = True
    n_in_reach = np.bincount(ec[usable], minlength=n)
    cell_pm = np.bincount(ec, weights=x * ed, minlength=n)
    shel_pm = np.bincount(es, weights=x * ed, minlength=m)

    # main shelter of each cell: the largest flow, ties to the nearest (edges are sorted by cell, distance)
    main_shelter = np.full(n, None, dtype=object)
    main_dist = np.full(n, np.nan)
    pos = np.flatnonzero(x > 0)
    if pos.shape[0]:
        order = pos[np.lexsort((pos, -x[pos], ec[pos]))]
        first = order[np.r_[True, ec[order][1:] != ec[order][:-1]]]
        main_shelter[ec[first]] = p.shelters[es[first]]
        main_dist[ec[first]] = ed[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        cell_mean = np.where(covered > 0, cell_pm / np.where(covered > 0, covered, 1.0), np.nan)
        shel_mean = np.where(load > 0, shel_pm / np.where(load > 0, load, 1.0), np.nan)
        ratio = np.where(p.free > 0, load / np.where(p.free > 0, p.free, 1.0), np.nan)
    cells = pd.DataFrame({
        "cell": p.cells, "population": p.pop, "covered": covered, "uncovered": np.maximum(p.pop - covered, 0.0),
        "reachable": reachable, "n_shelters_in_reach": n_in_reach, "main_shelter": main_shelter,
        "main_distance_m": main_dist, "mean_distance_m": cell_mean,
    }, columns=CELL_COLUMNS)
    shelters = pd.DataFrame({
        "shelter": p.shelters, "free": p.free, "load": load, "spare": np.maximum(p.free - load, 0.0),
        "load_ratio": ratio, "n_cells_served": np.bincount(es[x > 0], minlength=m),
        "n_cells_in_reach": np.bincount(es[p.pop[ec] > 0], minlength=m), "mean_distance_m": shel_mean,
    }, columns=SHELTER_COLUMNS)
    flows = pd.DataFrame({"cell": p.cells[ec[pos]], "shelter": p.shelters[es[pos]], "people": x[pos],
                          "distance_m": ed[pos]}, columns=FLOW_COLUMNS)
    total_pop = math.fsum(p.pop)
    total_cov = math.fsum(covered)
    pm = math.fsum(x * ed)
    totals = {
        "population": total_pop, "covered": total_cov, "uncovered": math.fsum(cells["uncovered"]),
        "coverage_ratio": total_cov / total_pop if total_pop > 0 else math.nan,
        "reachable_population": math.fsum(p.pop[reachable]),
        "unreachable_population": math.fsum(p.pop[~reachable]),
        "free": math.fsum(p.free), "load": math.fsum(load), "spare": math.fsum(shelters["spare"]),
        "person_metres": pm, "mean_distance_m": pm / total_cov if total_cov > 0 else math.nan,
        "max_distance_m": p.max_distance_m, "n_cells": float(n), "n_shelters": float(m),
        "n_pairs_in_reach": float(ec.shape[0]),
    }
    return CoverageResult(cells, shelters, flows, totals, p.max_distance_m, p)


# ------------------------------------------------------------------------------------------- region totals
def region_totals(result: CoverageResult, cell_region: ArrayLike | Mapping[Hashable, Hashable]) -> pd.DataFrame:
    """Population, covered and uncovered population per region (sums of cells, so totals are conserved).

    Parameters
    ----------
    result : CoverageResult
        From :func:`assign`.
    cell_region : array-like aligned with ``result.cells`` rows, or mapping cell id -> region
        The region (e.g. county adcode) of each cell; every cell must have one.

    Returns
    -------
    pandas.DataFrame
        Index ``region`` (sorted); columns ``n_cells``, ``population``, ``covered``, ``uncovered``,
        ``unreachable_population``, ``coverage_ratio`` (NaN where there is no population).

    Raises
    ------
    InvalidParameterError
        A cell without a region, or an array of the wrong length (field ``cell_region``).

    Examples
    --------
    >>> r = assign([1, 2], [116.40, 116.40], [39.90, 39.92], [80.0, 50.0],
    ...            ["s1"], [116.40], [39.91], [100.0], max_distance_m=2000)
    >>> region_totals(r, {1: "110101", 2: "110102"})["uncovered"].tolist()
    [0.0, 30.0]
    """
    cells = result.cells
    if isinstance(cell_region, Mapping):
        keys = cells["cell"].map(lambda c: cell_region.get(c))
    else:
        keys = pd.Series(np.asarray(cell_region, dtype=object), index=cells.index)
        if keys.shape[0] != cells.shape[0]:
            raise InvalidParameterError(f"has {keys.shape[0]} values, expected {cells.shape[0]}",
                                        field="cell_region", value=keys.shape[0],
                                        allowed="one region per cell of the result")
    missing = keys.isna()
    if missing.any():
        first = cells["cell"][missing].iloc[0]
        raise InvalidParameterError(f"{int(missing.sum())} cell(s) have no region, e.g. cell {first!r}",
                                    field="cell_region", value=first, allowed="a region for every cell")
    frame = pd.DataFrame({"region": keys.to_numpy(), "population": cells["population"],
                          "covered": cells["covered"], "uncovered": cells["uncovered"],
                          "unreachable_population": np.where(cells["reachable"], 0.0, cells["population"])})
    out = frame.groupby("region", sort=True).agg(
        n_cells=("population", "size"), population=("population", "sum"), covered=("covered", "sum"),
        uncovered=("uncovered", "sum"), unreachable_population=("unreachable_population", "sum"))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["coverage_ratio"] = np.where(out["population"] > 0, out["covered"] / out["population"], np.nan)
    return out


# --------------------------------------------------------------------------------------------- gap ranking
_MAX_ROUNDS = 200


def _gather(nodes: NDArray[np.intp], ptr: NDArray[np.intp], order: NDArray[np.intp] | None
            ) -> NDArray[np.intp]:
    """Edge ids of ``nodes`` from a CSR-like ``ptr`` (and ``order`` of edges, if not already grouped)."""
    starts = ptr[nodes]
    counts = ptr[nodes + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.intp)
    offsets = np.arange(total, dtype=np.intp) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.repeat(starts, counts) + offsets
    return np.asarray(idx if order is None else order[idx], dtype=np.intp)


class _Residual:
    """The optimal flow of a :class:`_Problem` as a residual network, indexed for breadth-first search.

    A new shelter ``c`` (capacity ``C``) next to cells ``N`` can gain people only along augmenting paths
    ``source -> u -> j1 <- i1 -> j2 <- i2 ... -> c``: an uncovered person of cell ``u`` takes a place in
    shelter ``j1`` freed by a person of cell ``i1`` moving on, and so on, until a person of a cell in ``N``
    moves to ``c``. Forward (cell -> shelter) edges have no limit of their own; backward ones carry at most
    the people currently on them. Since the current flow is maximum, every new augmenting path ends at
    ``c`` (augmenting only adds residual edges between nodes already reachable from the source, none of
    which is an existing shelter with room), so Ford-Fulkerson with breadth-first paths into ``c`` until
    none is left gives the exact gain.
    """

    def __init__(self, p: _Problem, uncovered: NDArray[np.float64]) -> None:
        self.p = p
        n, m = p.cells.shape[0], p.shelters.shape[0]
        self.uncovered = uncovered
        # edges are sorted by cell in _Problem
        self.cell_ptr = np.searchsorted(p.edge_cell, np.arange(n + 1)).astype(np.intp)
        self.shel_order = np.argsort(p.edge_shelter, kind="stable").astype(np.intp)
        self.shel_ptr = np.searchsorted(p.edge_shelter[self.shel_order], np.arange(m + 1)).astype(np.intp)

    def gain(self, start_cells: NDArray[np.intp], capacity: float) -> float | None:
        """Exact extra people covered by a shelter of ``capacity`` serving ``start_cells`` (None: gave up)."""
        p = self.p
        ec, es = p.edge_cell, p.edge_shelter
        tol = 1e-9 * max(1.0, capacity)
        unc = self.uncovered.copy()
        x = p.edge_flow.copy()
        left = float(capacity)
        start = np.unique(start_cells[p.pop[start_cells] > 0])
        # paths of one edge first: uncovered people next to the new shelter
        for u in start[unc[start] > tol].tolist():
            take = min(unc[u], left)
            unc[u] -= take
            left -= take
            if left <= tol:
                return float(capacity)
        n, m = p.cells.shape[0], p.shelters.shape[0]
        for _ in range(_MAX_ROUNDS):
            cell_parent = np.full(n, -2, dtype=np.intp)  # edge to the shelter this cell relieves; -1 = into c
            shel_parent = np.full(m, -2, dtype=np.intp)  # edge of the cell that moves out of this shelter
            cell_parent[start] = -1
            frontier = start
            levels = [start]
            while frontier.shape[0]:
                e = _gather(frontier, self.cell_ptr, None)
                e = e[x[e] > tol]
                e = e[shel_parent[es[e]] == -2]
                sh, first = np.unique(es[e], return_index=True)
                if sh.shape[0] == 0:
                    break
                shel_parent[sh] = e[first]
                e2 = _gather(sh, self.shel_ptr, self.shel_order)
                e2 = e2[cell_parent[ec[e2]] == -2]
                ce, first2 = np.unique(ec[e2], return_index=True)
                cell_parent[ce] = e2[first2]
                frontier = ce
                levels.append(ce)
            reached = np.concatenate(levels)
            src = reached[(unc[reached] > tol) & (cell_parent[reached] >= 0)]
            if src.shape[0] == 0:
                return float(capacity) - max(left, 0.0)
            # all sources entering the same shelter share its tree path into c: walk it once per shelter
            entry = es[cell_parent[src]]
            order = np.argsort(entry, kind="stable")
            src, entry = src[order], entry[order]
            shelters_in, starts = np.unique(entry, return_index=True)
            bounds_ = np.r_[starts, src.shape[0]]
            for g, j in enumerate(shelters_in.tolist()):
                fwd: list[int] = []
                bwd: list[int] = []
                eb = int(shel_parent[j])
                while True:
                    bwd.append(eb)
                    ef = int(cell_parent[ec[eb]])
                    if ef == -1:
                        break
                    fwd.append(ef)
                    eb = int(shel_parent[es[ef]])
                path_cap = min(left, float(x[bwd].min()))
                if path_cap <= tol:
                    continue
                members = src[bounds_[g]:bounds_[g + 1]]
                want = unc[members]
                before = np.cumsum(want) - want
                take = np.clip(path_cap - before, 0.0, want)
                total = float(take.sum())
                unc[members] -= take
                x[cell_parent[members]] += take
                x[bwd] -= total
                x[fwd] += total
                left -= total
                if left <= tol:
                    return float(capacity)
        return None


def _backward_reach(p: _Problem, start_cells: NDArray[np.intp]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Cells and shelters from which flow could be re-routed towards a new shelter next to ``start_cells``.

    From a reached cell, its people may leave the shelters they are in (cell -> shelter with flow > 0);
    a shelter so relieved can take people from any cell in its reach (shelter -> every adjacent cell).
    Every augmenting path to the new shelter lies in this set, and no flow leaves or enters it.
    """
    n, m = p.cells.shape[0], p.shelters.shape[0]
    ec, es = p.edge_cell, p.edge_shelter
    pos = p.edge_flow > 0
    flow_csr = sparse.csr_matrix((np.ones(int(pos.sum())), (ec[pos], es[pos])), shape=(n, m))
    adj_csr = sparse.csr_matrix((np.ones(ec.shape[0]), (es, ec)), shape=(m, n))
    cell_seen = np.zeros(n, dtype=bool)
    shel_seen = np.zeros(m, dtype=bool)
    frontier = np.unique(start_cells)
    cell_seen[frontier] = True
    while frontier.shape[0]:
        sh = np.unique(flow_csr[frontier].indices)
        sh = sh[~shel_seen[sh]]
        shel_seen[sh] = True
        if sh.shape[0] == 0:
            break
        ce = np.unique(adj_csr[sh].indices).astype(np.intp)
        ce = ce[~cell_seen[ce]]
        cell_seen[ce] = True
        frontier = ce
    return cell_seen, shel_seen


def _gain_by_lp(p: _Problem, covered: NDArray[np.float64], start_cells: NDArray[np.intp],
                capacity: float) -> float:
    """Exact gain by re-solving the maximum cover of the part of the network the new shelter can touch."""
    cell_in, shel_in = _backward_reach(p, start_cells)
    ec, es = p.edge_cell, p.edge_shelter
    m = p.shelters.shape[0]
    sub = cell_in[ec] & shel_in[es]
    s_ec = np.concatenate([ec[sub], start_cells])
    s_es = np.concatenate([es[sub], np.full(start_cells.shape[0], m, dtype=np.intp)])
    free = np.concatenate([p.free, [capacity]])
    active = (p.pop[s_ec] > 0) & (free[s_es] > 0)
    x = _solve_transport(s_ec[active], s_es[active], np.zeros(int(active.sum())), p.pop, free, 1.0,
                         distances=False)
    return max(0.0, math.fsum(x) - math.fsum(covered[cell_in]))


def _crude_bounds(p: _Problem, qc: NDArray[np.intp], qk: NDArray[np.intp], k: int,
                  uncovered: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per candidate: the uncovered population of the connected components (cells and shelters linked by
    pairs in reach) that its cells in reach belong to. Re-routing never leaves a component, so this bounds
    the gain; it is computed for all candidates at once."""
    n, m = p.cells.shape[0], p.shelters.shape[0]
    if qc.shape[0] == 0:
        return np.zeros(k)
    ec, es = p.edge_cell, p.edge_shelter
    graph = sparse.coo_matrix((np.ones(ec.shape[0]), (ec, n + es)), shape=(n + m, n + m))
    n_comp, label = connected_components(graph, directed=False)
    comp_unc = np.bincount(label[:n], weights=uncovered, minlength=n_comp)
    pairs = np.unique(np.column_stack([qk, label[qc]]), axis=0)
    return np.asarray(np.bincount(pairs[:, 0], weights=comp_unc[pairs[:, 1]], minlength=k), dtype=np.float64)


def gap_ranking(result: CoverageResult, candidate_ids: ArrayLike, candidate_lon: ArrayLike,
                candidate_lat: ArrayLike, candidate_capacity: ArrayLike, *, max_distance_m: float | None = None,
                top: int = 10) -> pd.DataFrame:
    """Rank candidate sites by the population each would newly cover if it alone were added.

    Candidates are closed shelters that could open, or proposed sites with a planned capacity. For each,
    the gain is ``max covered(existing shelters + candidate) - max covered(existing shelters)`` at the same
    reach, exact for every reported row: it is found by augmenting the current optimal assignment along
    re-routing paths into the candidate until none is left (max-flow / min-cut, see :class:`_Residual`), with
    an LP re-solve of the affected part as a fallback. Candidates are evaluated in order of a cheap upper
    bound (capacity, and the uncovered population of the connected parts of the network they touch) until
    the ``top`` exact gains are at least every remaining bound.

    Parameters
    ----------
    result : CoverageResult
        The current assignment, from :func:`assign`.
    candidate_ids : array-like, shape (k,)
        Unique candidate ids.
    candidate_lon, candidate_lat : array-like of float, shape (k,)
        Candidate locations, degrees, EPSG:4326.
    candidate_capacity : array-like of float, shape (k,)
        Places the candidate would offer (>= 0).
    max_distance_m : float, optional
        Reach, in (0, 100000] metres; defaults to the reach of ``result``. A different value re-solves the
        current assignment at that reach first.
    top : int, default 10
        How many candidates to report (1..1000).

    Returns
    -------
    pandas.DataFrame
        Up to ``top`` rows, best first (ties: input order): ``rank`` (1-based), ``candidate``, ``capacity``,
        ``added_covered`` (exact gain in people), ``covered_after``, ``coverage_ratio_after``,
        ``n_cells_in_reach``, ``population_in_reach``, ``uncovered_in_reach`` (in the current assignment).

    Raises
    ------
    InvalidParameterError
        Bad candidate arrays (field names as the arguments), ``top`` outside 1..1000, or a bad reach.

    Examples
    --------
    Two cells 1.1 km north and south of the only open shelter (40 places); a candidate next to the
    uncovered cell gains its 30 people, one far away gains nothing.

    >>> r = assign([1, 2], [116.40, 116.40], [39.90, 39.92], [40.0, 30.0],
    ...            ["s1"], [116.40], [39.91], [40.0], max_distance_m=1500)
    >>> g = gap_ranking(r, ["c_near", "c_far"], [116.40, 117.0], [39.921, 39.0], [100.0, 500.0])
    >>> g[["candidate", "added_covered"]].to_numpy().tolist()
    [['c_near', 30.0], ['c_far', 0.0]]
    """
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not (1 <= int(top) <= _TOP_LIMIT):
        raise InvalidParameterError(field="top", value=top, allowed=f"an integer in 1..{_TOP_LIMIT}")
    p = result._problem
    if max_distance_m is not None and _check_max_distance(max_distance_m) != p.max_distance_m:
        result = assign(p.cells, p.cell_lon, p.cell_lat, p.pop, p.shelters, p.shelter_lon, p.shelter_lat,
                        p.free, max_distance_m=float(max_distance_m))
        p = result._problem
    cand, clon, clat, ccap = _points(candidate_ids, candidate_lon, candidate_lat, candidate_capacity,
                                     ("candidate_ids", "candidate_lon", "candidate_lat", "candidate_capacity"),
                                     "capacity")
    k, n = cand.shape[0], p.cells.shape[0]
    if k == 0:
        return pd.DataFrame({c: [] for c in GAP_COLUMNS})
    if n:
        tree = cKDTree(unit_vectors(p.cell_lon, p.cell_lat))
        qc, qk, _ = _pairs_within(tree, p.cell_lon, p.cell_lat, clon, clat, p.max_distance_m)
    else:
        qc = qk = np.zeros(0, dtype=np.intp)
    covered = result.cells["covered"].to_numpy()
    uncovered = result.cells["uncovered"].to_numpy()
    base_total = result.totals["covered"]
    total_pop = result.totals["population"]
    in_reach_n = np.bincount(qk[p.pop[qc] > 0], minlength=k)
    in_reach_pop = np.bincount(qk, weights=p.pop[qc], minlength=k)
    in_reach_unc = np.bincount(qk, weights=uncovered[qc], minlength=k)
    cand_cells = np.split(qc[np.argsort(qk, kind="stable")], np.cumsum(np.bincount(qk, minlength=k))[:-1])
    residual = _Residual(p, uncovered)

    def exact_gain(c: int) -> float:
        g = residual.gain(cand_cells[c], float(ccap[c]))
        return g if g is not None else _gain_by_lp(p, covered, cand_cells[c], float(ccap[c]))

    # lazy branch and bound on (-value, input index, stage); stage 0 = upper bound, 1 = exact
    bounds = np.minimum(ccap, _crude_bounds(p, qc, qk, k, uncovered))
    heap: list[tuple[float, int, int]] = [(-float(b), c, 0) for c, b in enumerate(bounds)]
    heapq.heapify(heap)
    chosen: list[tuple[int, float]] = []
    while heap and len(chosen) < int(top):
        neg, c, stage = heapq.heappop(heap)
        if stage == 1 or -neg <= 0.0:
            chosen.append((c, max(0.0, -neg)))
        else:
            heapq.heappush(heap, (-exact_gain(c), c, 1))
    idx = np.array([c for c, _ in chosen], dtype=np.intp)
    gain = np.array([g for _, g in chosen])
    after = base_total + gain
    return pd.DataFrame({
        "rank": np.arange(1, idx.shape[0] + 1), "candidate": cand[idx], "capacity": ccap[idx],
        "added_covered": gain, "covered_after": after,
        "coverage_ratio_after": after / total_pop if total_pop > 0 else np.full(idx.shape[0], np.nan),
        "n_cells_in_reach": in_reach_n[idx], "population_in_reach": in_reach_pop[idx],
        "uncovered_in_reach": in_reach_unc[idx],
    }, columns=GAP_COLUMNS)
