"""Point -> region assignment: the one rule that decides which region a point (a cell centre, an incident) is in.

Public: :func:`assign_points`, :data:`OUTSIDE_MODES`.

Every figure split by region (the impact card's counties, the situation report's per-county population, the risk
roll-up, the leader's incidents per prefecture) goes through this function, so two screens never disagree about a
point on a border.

The rule
--------
- A point inside a region, or on its boundary, belongs to it.
- A point in (or on the boundary of) several regions belongs to the **first** of them in the order given. Callers
  pass regions in a stable order (the store returns them by adcode), so a point on a shared border always goes to
  the region with the smaller adcode.
- A point in no region is unassigned (``-1``) with ``outside="none"``; with ``outside="nearest"`` it goes to the
  region at the smallest **geodesic** distance (WGS84), ties to the first in order. ``"nearest"`` is for splits
  that must conserve a total: a cell of a zone whose centre falls just outside the zone's parts still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry.base import BaseGeometry

from geoops.errors import InvalidParameterError
from geoops.geodesic import distance_to_geometry_m

__all__ = ["assign_points", "OUTSIDE_MODES"]

OUTSIDE_MODES = ("none", "nearest")

#: widening of the planar search radius for the geodesic nearest: at latitude phi a degree of longitude is
#: cos(phi) of a degree of latitude, so the geodesically nearest region lies within d / cos(phi) degrees of the
#: point when the planar-nearest lies at d degrees (with a margin for the ellipsoid).
_MARGIN = 1.01


def _lonlat(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(lon, dtype=np.float64).ravel()
    y = np.asarray(lat, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidParameterError(field="lon/lat", value=f"{x.size} lon, {y.size} lat",
                                    allowed="arrays of the same length")
    bad = ~(np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 180) & (np.abs(y) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(field=f"lon/lat[{i}]", value=[float(x[i]), float(y[i])],
                                    allowed="finite lon in [-180, 180], lat in [-90, 90]")
    return x, y


def _nearest(x: NDArray[np.float64], y: NDArray[np.float64], geoms: Sequence[BaseGeometry | None]
             ) -> NDArray[np.int64]:
    """Index of the geodesically nearest non-empty geometry of each point (first in order on ties)."""
    live = [j for j, g in enumerate(geoms) if g is not None and not g.is_empty]
    out = np.full(x.size, -1, dtype=np.int64)
    if not live or x.size == 0:
        return out
    tree = shapely.STRtree(np.asarray([geoms[j] for j in live], dtype=object))
    pts = shapely.points(x, y)
    (pi, _), planar = tree.query_nearest(pts, return_distance=True, all_matches=False)
    reach = np.zeros(x.size)
    reach[pi] = planar
    reach = reach / np.maximum(np.cos(np.radians(np.minimum(np.abs(y) + reach, 89.0))), 1e-6) * _MARGIN + 1e-9
    qi, ti = tree.query(pts, predicate="dwithin", distance=reach)
    order = np.lexsort((ti, qi))
    qi, ti = qi[order], ti[order]
    starts = np.flatnonzero(np.r_[True, qi[1:] != qi[:-1]]) if qi.size else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], qi.size]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        p = int(qi[a])
        if b - a == 1:  # one region within reach: it is the nearest, no distance needed
            out[p] = live[int(ti[a])]
            continue
        dist = [distance_to_geometry_m(float(x[p]), float(y[p]), geoms[live[int(t)]])  # type: ignore[arg-type]
                for t in ti[a:b]]
        out[p] = live[int(ti[a + int(np.argmin(dist))])]  # argmin: the first in order on ties
    return out


def assign_points(lon: ArrayLike, lat: ArrayLike, regions: Sequence[BaseGeometry | None], *,
                  outside: Literal["none", "nearest"] = "none") -> NDArray[np.int64]:
    """Index in ``regions`` of the region of each point (see the module docstring for the rule); -1 for none.

    Parameters
    ----------
    lon, lat : array_like
        Points, degrees, EPSG:4326.
    regions : sequence of shapely geometries (lon/lat, EPSG:4326)
        In the order that breaks ties; ``None`` or empty entries are never chosen.
    outside : {"none", "nearest"}
        What happens to a point in no region: unassigned (-1), or the geodesically nearest region.

    Returns
    -------
    ndarray of int64
        One index per point.

    Raises
    ------
    InvalidParameterError
        Unknown ``outside``; lon and lat of different lengths; a coordinate out of range.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> west, east = box(110, 40, 111, 41), box(111, 40, 112, 41)
    >>> assign_points([110.5, 111.0, 111.5, 113.0], [40.5, 40.5, 40.5, 40.5], [west, east]).tolist()
    [0, 0, 1, -1]
    >>> assign_points([113.0], [40.5], [west, east], outside="nearest").tolist()
    [1]
    """
    if outside not in OUTSIDE_MODES:
        raise InvalidParameterError(field="outside", value=outside, allowed=", ".join(OUTSIDE_MODES))
    x, y = _lonlat(lon, lat)
    code = np.full(x.size, -1, dtype=np.int64)
    if x.size == 0:
        return code
    for j, g in enumerate(regions):
        if g is None or g.is_empty:
            continue
        # a prepared polygon tested on the points of its bounding box: far cheaper than a tree query of the points
        shapely.prepare(g)
        w, s, e, n = g.bounds
        free = np.flatnonzero((code < 0) & (x >= w) & (x <= e) & (y >= s) & (y <= n))
        if free.size:
            code[free[shapely.intersects_xy(g, x[free], y[free])]] = j
    if outside == "nearest":
        rest = np.flatnonzero(code < 0)
        if rest.size:
            code[rest] = _nearest(x[rest], y[rest], regions)
    return code
