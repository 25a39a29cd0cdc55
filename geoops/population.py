"""Population on H3 cells: affected population of a zone, its split by region, roll-ups to regions.

Population is extensive: every function here conserves totals (cells -> zone parts -> regions).

Public functions
----------------
affected_population  area-weighted population of a zone from (cells, fraction) weights.
split_by_regions     population of a zone split by region, each cell by its centre (parts sum to the total).
cells_to_regions     region key of each cell, by its centre.

Every "which region" here is :func:`geoops.regions.assign_points`, the one point -> region rule.
rollup               sum of per-cell values by region key.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import MultiPolygon, Polygon

from geoops.errors import CRSError, InvalidParameterError
from geoops.h3cells import _check_zone, cell_centres, zone_weights
from geoops.regions import assign_points

__all__ = ["affected_population", "split_by_regions", "cells_to_regions", "rollup"]

#: The containment mode of every figure computed here (stated with each figure by the API).
CONTAINMENT = "area_weighted"


def _cells_values(cells: Any, values: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(cells)
    v = np.asarray(values, dtype=np.float64)
    if c.size and c.dtype.kind not in "iu":
        raise InvalidParameterError(field=f"{what}_cells", value=str(c.dtype), allowed="int64 H3 cells")
    c = c.astype(np.int64, copy=False).ravel()
    v = v.ravel()
    if c.shape != v.shape:
        raise InvalidParameterError(field=what, value=f"{c.size} cells, {v.size} values",
                                    allowed="one value per cell")
    return c, v


def affected_population(weights_cells: Any, weights_frac: Any, pop_cells: Any, pop_values: Any
                        ) -> tuple[float, np.ndarray, np.ndarray]:
    """Area-weighted population of a zone: sum over cells of population(c) x fraction(c).

    Parameters
    ----------
    weights_cells, weights_frac : ndarray
        From :func:`geoops.h3cells.zone_weights` (cells int64, fraction of each cell inside the zone).
    pop_cells, pop_values : ndarray
        Population per cell (e.g. from :func:`geoops.h3cells.grid_to_cells` at the same resolution).

    Returns
    -------
    total : float
        People in the zone.
    cells : ndarray of int64
        The weight cells, in their order.
    population : ndarray of float64
        People of each weight cell inside the zone.

    Notes
    -----
    A weight cell absent from ``pop_cells`` counts 0. That is right where the population source covers the
    cell (``grid_to_cells`` emits every cell that received a valid pixel, zeros included) and an
    undercount where it does not (a zone beyond the raster's extent or over its nodata): the caller must
    check the zone against the source's coverage. No NaN is produced; a NaN in ``pop_values`` is rejected.

    Examples
    --------
    >>> import numpy as np
    >>> total, cells, pop = affected_population(np.array([1, 2, 3]), np.array([1.0, 0.5, 0.2]),
    ...                                         np.array([2, 1]), np.array([100.0, 10.0]))
    >>> total, pop.tolist()
    (60.0, [10.0, 50.0, 0.0])
    """
    wc, wf = _cells_values(weights_cells, weights_frac, "weights")
    pc, pv = _cells_values(pop_cells, pop_values, "pop")
    if np.any(~np.isfinite(pv)) or np.any(pv < 0):
        raise InvalidParameterError(field="pop_values", value="NaN, infinite or negative values",
                                    allowed="finite populations >= 0")
    if np.any(~np.isfinite(wf)) or np.any((wf < 0) | (wf > 1)):
        raise InvalidParameterError(field="weights_frac", value="values outside [0, 1]",
                                    allowed="area fractions in [0, 1]")
    if pc.size == 0 or wc.size == 0:
        return 0.0, wc, np.zeros(wc.size)
    o = np.argsort(pc, kind="stable")
    spc, spv = pc[o], pv[o]
    if np.any(spc[1:] == spc[:-1]):
        raise InvalidParameterError(field="pop_cells", value="duplicate cells",
                                    allowed="unique cells (merge windows with merge_cell_sums)")
    pos = np.minimum(np.searchsorted(spc, wc), spc.size - 1)
    found = spc[pos] == wc
    pop = np.where(found, spv[pos], 0.0) * wf
    return math.fsum(pop.tolist()), wc, pop


def _regions_4326(regions: Any, key: str) -> gpd.GeoDataFrame:
    if not isinstance(regions, gpd.GeoDataFrame):
        raise InvalidParameterError(field="regions", value=type(regions).__name__, allowed="a GeoDataFrame")
    if regions.crs is None:
        raise CRSError(field="regions.crs", value=None, allowed="a CRS (regions are reprojected to EPSG:4326)")
    if key not in regions.columns:
        raise InvalidParameterError(field="key", value=key, allowed=f"a column of regions: {list(regions.columns)}")
    return regions if regions.crs.to_epsg() == 4326 else regions.to_crs(4326)


def split_by_regions(zone: Polygon | MultiPolygon, regions: gpd.GeoDataFrame, pop_cells: Any, pop_values: Any,
                     *, res: int, outside: Literal["none", "nearest"] = "none") -> pd.DataFrame:
    """Population of a zone split by the regions it crosses; the parts sum to the zone's total.

    The zone's people are its cells' area-weighted people (:func:`zone_weights` + :func:`affected_population`),
    and each cell goes to a region by its centre with :func:`geoops.regions.assign_points`: the same rule as the
    impact card, the situation report and the risk roll-up, so a zone crossing a border is split alike on every
    screen. With ``outside="none"`` the people of cells whose centre is in no region are reported on a row with
    ``adcode`` None; with ``"nearest"`` they go to the geodesically nearest region.

    Parameters
    ----------
    zone : shapely Polygon or MultiPolygon, EPSG:4326
    regions : GeoDataFrame
        Columns ``adcode``, ``name``, ``geometry`` (with a CRS; reprojected to EPSG:4326 if needed). In the order
        that decides a centre on a shared border (the first region wins).
    pop_cells, pop_values : ndarray
        Population per H3 cell at resolution ``res``.
    res : int
        H3 resolution of the population cells.
    outside : {"none", "nearest"}
        Where the people of a cell whose centre is in no region go (see above).

    Returns
    -------
    DataFrame
        Columns ``adcode``, ``name``, ``population``, one row per region holding people of the zone (in the
        order of ``regions``), then the remainder row if any. Empty zone: no rows, same columns.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np
    >>> from shapely.geometry import box
    >>> from geoops.h3cells import zone_weights
    >>> regs = gpd.GeoDataFrame({"adcode": ["150102", "150103"], "name": ["A", "B"]},
    ...                         geometry=[box(111.0, 40.0, 111.05, 40.1), box(111.05, 40.0, 111.1, 40.1)],
    ...                         crs=4326)
    >>> cells, frac = zone_weights(box(111.0, 40.0, 111.1, 40.1), res=8)
    >>> df = split_by_regions(box(111.02, 40.02, 111.08, 40.08), regs, cells, np.full(cells.size, 10.0), res=8)
    >>> df["adcode"].tolist(), round(float(df["population"].sum()), 6) > 0
    (['150102', '150103'], True)
    """
    zone = _check_zone(zone)
    regs = _regions_4326(regions, "adcode")
    if "name" not in regs.columns:
        raise InvalidParameterError(field="regions", value=list(regs.columns), allowed="columns adcode, name, geometry")
    empty = pd.DataFrame({"adcode": pd.Series(dtype=object), "name": pd.Series(dtype=object),
                          "population": pd.Series(dtype=float)})
    if zone.is_empty or zone.area == 0:
        return empty
    wc, wf = zone_weights(zone, res=res)
    _, cells, people = affected_population(wc, wf, pop_cells, pop_values)
    if cells.size == 0:
        return empty
    lon, lat = cell_centres(cells)
    code = assign_points(lon, lat, list(regs.geometry.to_numpy()), outside=outside)
    rows: list[dict[str, Any]] = []
    for j in np.unique(code[code >= 0]).tolist():
        rows.append({"adcode": regs["adcode"].iloc[j], "name": regs["name"].iloc[j],
                     "population": math.fsum(people[code == j].tolist())})
    if (code < 0).any():
        rows.append({"adcode": None, "name": None, "population": math.fsum(people[code < 0].tolist())})
    return pd.DataFrame(rows, columns=["adcode", "name", "population"])


def cells_to_regions(cells: Any, regions: gpd.GeoDataFrame, key: str = "adcode", *,
                     outside: Literal["none", "nearest"] = "none") -> np.ndarray:
    """Region key of each cell, by its centre with :func:`geoops.regions.assign_points` (None outside every region).

    A centre on a region's boundary is in it; one on a shared border goes to the first such region in
    ``regions``' order; with ``outside="nearest"`` a centre in no region goes to the geodesically nearest one.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, h3
    >>> from shapely.geometry import box
    >>> regs = gpd.GeoDataFrame({"adcode": ["150102"]}, geometry=[box(111, 40, 112, 41)], crs=4326)
    >>> c = np.array([h3.str_to_int(h3.latlng_to_cell(40.5, 111.5, 8)), h3.str_to_int(h3.latlng_to_cell(0, 0, 8))])
    >>> cells_to_regions(c, regs).tolist()
    ['150102', None]
    """
    regs = _regions_4326(regions, key)
    arr = np.asarray(cells, dtype=np.int64).ravel()
    out = np.full(arr.size, None, dtype=object)
    if arr.size == 0 or len(regs) == 0:
        return out
    lon, lat = cell_centres(arr)
    code = assign_points(lon, lat, list(regs.geometry.to_numpy()), outside=outside)
    hit = code >= 0
    out[hit] = regs[key].to_numpy(dtype=object)[code[hit]]
    return out


def rollup(cells: Any, values: Any, cell_region: Any) -> pd.Series:
    """Sum per-cell values by region key; cells with key None are summed under None. Totals are conserved.

    Examples
    --------
    >>> import numpy as np
    >>> rollup(np.array([1, 2, 3]), np.array([1.0, 2.0, 4.0]), np.array(["a", "b", "a"], dtype=object)).to_dict()
    {'a': 5.0, 'b': 2.0}
    """
    c, v = _cells_values(cells, values, "values")
    keys = np.asarray(cell_region, dtype=object).ravel()
    if keys.shape != c.shape:
        raise InvalidParameterError(field="cell_region", value=f"{keys.size} keys for {c.size} cells",
                                    allowed="one region key per cell")
    s = pd.Series(v).groupby(pd.Series(keys), dropna=False, sort=True).sum()
    s.index.name = "region"
    s.name = "value"
    return s
