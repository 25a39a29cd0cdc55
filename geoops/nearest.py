"""Exact geodesic k-nearest neighbours: re-rank a small candidate set, or many queries at once.

Public: :func:`rank`, :func:`nearest_batch`, :data:`MAX_K`.

Planar k-nearest on lon/lat degrees mis-orders neighbours away from the equator (at 50 N a degree of
longitude is 64 % of a degree of latitude), so every order returned here is by true geodesic distance on
WGS84 (``pyproj.Geod``), ties broken by candidate index. :func:`rank` is for the small candidate set
that PostGIS KNN (``ORDER BY geom <-> :pt LIMIT n``) returns; :func:`nearest_batch` finds the k nearest
for many queries among many candidates with a k-d tree that provably never misses one (see its notes).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from geoops.errors import InvalidParameterError
from geoops.wgs84 import GEOD, M_MIN_M, central_angle, unit_vectors

__all__ = ["MAX_K", "rank", "nearest_batch"]

#: Largest k accepted.
MAX_K = 1000

# slack for floating point in the chord -> angle conversion and in Geod.inv (~15 nm)
_ABS_TOL_M = 1e-6
_REL_TOL = 1e-12
# below this many pairs Geod.inv runs in the calling thread
_PARALLEL_MIN = 50_000


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= MAX_K:
        raise InvalidParameterError(
            field="k", value=k, allowed=f"an integer in [1, {MAX_K}]", code="invalid_k"
        )
    return int(k)


def _check_points(
    lon: ArrayLike, lat: ArrayLike, field_lon: str, field_lat: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    try:
        lo = np.asarray(lon, dtype=float)
        la = np.asarray(lat, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            "not numbers", field=field_lon, value=lon, allowed="numbers (degrees)", code="invalid_coordinates"
        ) from exc
    if lo.ndim > 1 or la.ndim > 1 or lo.shape != la.shape:
        raise InvalidParameterError(
            f"{field_lon} has shape {lo.shape}, {field_lat} has shape {la.shape}",
            field=field_lon,
            allowed="two 1-D arrays (or scalars) of equal length",
            code="invalid_coordinates",
        )
    lo = np.atleast_1d(lo)
    la = np.atleast_1d(la)
    for name, arr, lim in ((field_lon, lo, 180.0), (field_lat, la, 90.0)):
        bad = ~np.isfinite(arr) | (np.abs(arr) > lim)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidParameterError(
                f"item {i} is {arr[i]!r}",
                field=name,
                value=float(arr[i]),
                allowed=f"finite degrees in [-{lim:g}, {lim:g}] (EPSG:4326)",
                code="coordinates_out_of_range",
            )
    return lo, la


def _inv(
    lon1: NDArray[np.float64], lat1: NDArray[np.float64], lon2: NDArray[np.float64], lat2: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Geod.inv on flat arrays -> (distance_m, azimuth in [0, 360), NaN where the points coincide).

    pyproj releases the GIL inside ``Geod.inv``, so large arrays are split over the machine's cores.
    """
    n = lon1.size
    workers = min(os.cpu_count() or 1, 8)
    if n < _PARALLEL_MIN or workers < 2:
        az, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    else:
        bounds = np.linspace(0, n, workers + 1).astype(int)
        chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda c: GEOD.inv(lon1[c], lat1[c], lon2[c], lat2[c]), chunks))
        az = np.concatenate([p[0] for p in parts])
        dist = np.concatenate([p[2] for p in parts])
    az = np.mod(np.asarray(az, dtype=float), 360.0)
    dist = np.asarray(dist, dtype=float)
    az[dist == 0.0] = np.nan
    return dist, az


def rank(
    lon: float, lat: float, cand_lon: ArrayLike, cand_lat: ArrayLike, *, k: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """The k candidates nearest to one point, in exact geodesic order (ties by candidate index).

    Use after a planar / PostGIS KNN has produced a small candidate set (fetch a few more than k).

    Parameters
    ----------
    lon, lat : float
        Query point, degrees, EPSG:4326.
    cand_lon, cand_lat : array_like, shape (m,)
        Candidates, degrees.
    k : int
        1 .. 1000.

    Returns
    -------
    index : ndarray of int64, shape (min(k, m),)
        Positions in the candidate arrays, nearest first.
    distance_m : ndarray of float
        Geodesic distance on WGS84, metres.
    bearing_deg : ndarray of float
        Forward azimuth from the query to the candidate, degrees clockwise from north in [0, 360);
        NaN for a candidate at the query point itself.

    Raises
    ------
    InvalidParameterError
        Bad k or coordinates (the message names the field and the first bad item).

    Examples
    --------
    At 50 N, 1.3 degrees east is nearer than 0.9 degrees north (planar degree KNN says the opposite):

    >>> idx, d, b = rank(120.0, 50.0, [120.0, 121.3], [50.9, 50.0], k=2)
    >>> idx.tolist(), (d / 1000).round(1).tolist(), b.round(1).tolist()
    ([1, 0], [93.2, 100.1], [89.5, 0.0])
    """
    k = _check_k(k)
    qlo, qla = _check_points(lon, lat, "lon", "lat")
    if qlo.size != 1:
        raise InvalidParameterError(
            "one query point expected",
            field="lon",
            value=lon,
            allowed="a single lon/lat (use nearest_batch for many)",
            code="invalid_coordinates",
        )
    clo, cla = _check_points(cand_lon, cand_lat, "cand_lon", "cand_lat")
    m = clo.size
    if m == 0:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
    dist, az = _inv(np.full(m, qlo[0]), np.full(m, qla[0]), clo, cla)
    order = np.lexsort((np.arange(m), dist))[:k]
    return order.astype(np.int64), dist[order], az[order]


def nearest_batch(
    q_lon: ArrayLike, q_lat: ArrayLike, cand_lon: ArrayLike, cand_lat: ArrayLike, *, k: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Exact geodesic k nearest candidates for each of many query points.

    Candidates go into a k-d tree of unit vectors (geodetic lon/lat put on the unit sphere); each query
    takes its k' nearest by chord, their exact ``Geod.inv`` distances decide the order, and the answer is
    accepted only when it is provably complete, otherwise k' doubles for that query.

    Notes
    -----
    Why nothing is missed. The geodesic distance g and the unit sphere's central angle s of any two points
    satisfy ``M_min * s <= g <= N_max * s`` (ratio 1.0101; see :mod:`geoops.wgs84`). Let G be the k-th smallest
    exact distance among the k' chord-nearest candidates. Every candidate outside them has
    ``s >= s_k'`` (the k'-th central angle), hence ``g >= M_min * s_k'``; so if ``M_min * s_k' > G``
    (with 1 um slack for rounding), no outside candidate can enter the top k. Among the k' candidates,
    only those with ``M_min * s <= G`` need an exact distance at all.

    Parameters
    ----------
    q_lon, q_lat : array_like, shape (n,)
        Query points, degrees, EPSG:4326.
    cand_lon, cand_lat : array_like, shape (m,)
        Candidates, degrees.
    k : int
        1 .. 1000. If k > m the missing columns are padded.

    Returns
    -------
    index : ndarray of int64, shape (n, k)
        Candidate positions, nearest first, ties broken by index; -1 where padded.
    distance_m : ndarray of float, shape (n, k)
        Geodesic distance on WGS84, metres; NaN where padded.
    bearing_deg : ndarray of float, shape (n, k)
        Forward azimuth from query to candidate in [0, 360); NaN where padded or coincident.

    Raises
    ------
    InvalidParameterError
        Bad k or coordinates.

    Examples
    --------
    >>> q_lon, q_lat = [120.0, 116.4], [50.0, 39.9]
    >>> idx, d, b = nearest_batch(q_lon, q_lat, [120.0, 121.3, 116.5], [50.9, 50.0, 39.9], k=2)
    >>> idx.tolist()
    [[1, 0], [2, 1]]
    >>> nearest_batch([120.0], [50.0], [121.0], [50.0], k=2)[0].tolist()
    [[0, -1]]
    """
    k = _check_k(k)
    qlo, qla = _check_points(q_lon, q_lat, "q_lon", "q_lat")
    clo, cla = _check_points(cand_lon, cand_lat, "cand_lon", "cand_lat")
    n, m = qlo.size, clo.size
    index = np.full((n, k), -1, dtype=np.int64)
    dist_out = np.full((n, k), np.nan)
    bear_out = np.full((n, k), np.nan)
    if n == 0 or m == 0:
        return index, dist_out, bear_out
    kk = min(k, m)
    tree = cKDTree(unit_vectors(clo, cla), leafsize=32, balanced_tree=False, compact_nodes=False)
    # Queries are processed in a spatial order (quarter-degree cells, row by row): neighbouring queries walk
    # the same tree nodes, which makes the k-d tree search several times faster than in random order.
    # The results are put back in the caller's order at the end.
    q_order = np.argsort(
        np.floor((qla + 90.0) * 4.0).astype(np.int64) * 1441 + np.floor((qlo + 180.0) * 4.0).astype(np.int64),
        kind="stable",
    )
    qlo, qla = qlo[q_order], qla[q_order]
    qxyz = unit_vectors(qlo, qla)

    pending = np.arange(n)
    k2 = min(m, kk + 2)
    while pending.size:
        chord, ii = tree.query(qxyz[pending], k=k2, workers=-1)
        chord = np.asarray(chord, dtype=float).reshape(pending.size, k2)
        ii = np.asarray(ii, dtype=np.int64).reshape(pending.size, k2)
        lower = M_MIN_M * central_angle(chord)  # lower bound of the geodesic distance of each column
        p = pending.size
        rows = np.repeat(np.arange(p), k2).reshape(p, k2)
        g = np.full((p, k2), np.inf)
        az = np.full((p, k2), np.nan)
        # exact distances for the first kk columns, then only for the columns that could beat them
        first = (slice(None), slice(0, kk))
        d0, a0 = _inv(
            qlo[pending][rows[first]].ravel(),
            qla[pending][rows[first]].ravel(),
            clo[ii[first]].ravel(),
            cla[ii[first]].ravel(),
        )
        g[first] = d0.reshape(p, kk)
        az[first] = a0.reshape(p, kk)
        g0 = g[first].max(axis=1)
        need = np.zeros((p, k2), dtype=bool)
        need[:, kk:] = lower[:, kk:] <= g0[:, None] + _ABS_TOL_M + _REL_TOL * g0[:, None]
        if need.any():
            r, c = np.nonzero(need)
            d1, a1 = _inv(qlo[pending][r], qla[pending][r], clo[ii[r, c]], cla[ii[r, c]])
            g[r, c] = d1
            az[r, c] = a1
        order = np.lexsort((ii, g), axis=-1)[:, :kk]
        top_g = np.take_along_axis(g, order, axis=1)
        gk = top_g[:, -1]
        if k2 >= m:
            ok = np.ones(p, dtype=bool)
        else:
            ok = lower[:, -1] > gk + _ABS_TOL_M + _REL_TOL * gk
        done = pending[ok]
        index[done, :kk] = np.take_along_axis(ii, order, axis=1)[ok]
        dist_out[done, :kk] = top_g[ok]
        bear_out[done, :kk] = np.take_along_axis(az, order, axis=1)[ok]
        pending = pending[~ok]
        k2 = min(m, 2 * k2)
    inverse_order = np.empty_like(q_order)
    inverse_order[q_order] = np.arange(n)
    return index[inverse_order], dist_out[inverse_order], bear_out[inverse_order]
