"""H3 hexagonal cells: the one module of Sitroom that talks to ``h3`` / ``h3ronpy``.

Cells are ``int64`` numpy arrays everywhere (``BIGINT`` in the database); hex strings appear only in
:func:`cells_to_geojson`. Inside this module h3's ``(lat, lng)`` order is used; every public function
takes and returns shapely's ``(x=lon, y=lat)`` order.

Public functions
----------------
grid_to_cells      population raster (any CRS) -> (cells, sums), the sum of every valid pixel conserved.
merge_cell_sums    combine the (cells, sums) of several windows.
points_to_cells    population points -> (cells, sums).
cell_boundaries    cells -> shapely Polygons (EPSG:4326).
cell_area_m2       cells -> area in m2 (h3's spherical Earth).
cell_centres       cells -> (lon, lat).
parent_cells       cells -> their parents at a coarser resolution (bit arithmetic, vectorised).
child_ranges       parent cells -> the [lo, hi] int64 range of their children at a finer resolution.
bbox_child_ranges  lon/lat box -> the [lo, hi] int64 ranges holding every cell of a resolution that meets it.
cells_to_geojson   cells + per-cell properties -> GeoJSON FeatureCollection (``h3`` as hex string).
zone_weights       zone polygon -> (cells, fraction of each cell's area inside the zone).
zone_cover         the same cells with the interior compacted to coarse cells (mixed resolutions).
cell_resolution    cells -> their H3 resolution.
child_cells        cells -> their children at a finer resolution.
descendant_count   cells -> how many descendants each has at a finer resolution.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h3.api.basic_int as h3i
import h3ronpy
import h3ronpy.vector as h3v
import numpy as np
import pyarrow as pa
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geoops.errors import CRSError, InvalidGeometryError, InvalidParameterError

__all__ = [
    "grid_to_cells",
    "merge_cell_sums",
    "points_to_cells",
    "cell_boundaries",
    "cell_area_m2",
    "cell_centres",
    "parent_cells",
    "child_ranges",
    "cells_to_geojson",
    "zone_weights",
    "zone_cover",
    "cell_resolution",
    "child_cells",
    "descendant_count",
]

_WGS84 = pyproj.CRS.from_epsg(4326)
# A pixel centre is assigned by the fast path only if it lies at least this far (radians of arc, ~6 mm)
# inside every edge of its cell. Rounding in the edge planes and in the pixel coordinates is below 1e-11 rad
# for res <= 12, so the fast path can never disagree with h3 itself; anything closer goes to h3.
_MARGIN_RAD = 1e-9
_FAST_MAX_RES = 12
_BLOCK_PIXELS = 1 << 20
_MIN_PIXELS_PER_CELL = 4


# --------------------------------------------------------------------------------------------- checks
def _check_res(res: Any) -> int:
    if isinstance(res, bool) or not isinstance(res, (int, np.integer)) or not 0 <= int(res) <= 15:
        raise InvalidParameterError(field="res", value=res, allowed="an integer H3 resolution in 0..15")
    return int(res)


def _as_cells(cells: Any) -> np.ndarray:
    arr = np.asarray(cells)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InvalidParameterError(field="cells", value=cells, allowed="a 1-d integer array of H3 cells")
    return arr.astype(np.int64, copy=False)


def _to_u64(cells: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cells, dtype=np.int64).view(np.uint64)


def _h3v_cells(result: Any) -> np.ndarray:
    """h3ronpy cell array (uint64) -> int64 numpy."""
    return np.asarray(result).astype(np.uint64, copy=False).view(np.int64)


# ----------------------------------------------------------------------------------------- raster -> H3
@functools.lru_cache(maxsize=16)
def _to_wgs84(wkt: str) -> pyproj.Transformer:
    """Transformer from a CRS (by WKT) to EPSG:4326 lon/lat, cached: building one takes tens of ms."""
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(wkt), _WGS84, always_xy=True)


class _Grid:
    """Pixel-centre geometry of a raster: exact per-pixel lon/lat, plus per-row parallels for the fast path."""

    def __init__(self, transform: Sequence[float], crs: Any, shape: tuple[int, int]) -> None:
        try:
            a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(field="transform", value=transform,
                                        allowed="six numbers a, b, c, d, e, f (rasterio/affine order)") from exc
        if len(tuple(transform)) < 6 or not all(map(math.isfinite, (a, b, c, d, e, f))) or a * e - b * d == 0:
            raise InvalidParameterError(field="transform", value=transform,
                                        allowed="six finite numbers a, b, c, d, e, f with a*e - b*d != 0")
        if crs is None:
            raise CRSError(field="crs", value=None, allowed="a CRS (EPSG code, WKT, PROJ string or pyproj.CRS)")
        try:
            self.crs = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise CRSError(field="crs", value=crs, allowed="a CRS pyproj understands, e.g. 'EPSG:4326'") from exc
        self.a, self.b, self.c, self.d, self.e, self.f = a, b, c, d, e, f
        self._lock = threading.Lock()
        self.nrows, self.ncols = shape
        self.is_wgs84 = self.crs.to_epsg() == 4326
        self.transformer = None if self.is_wgs84 else _to_wgs84(self.crs.to_wkt())
        # Fast path: rows of pixel centres that are parallels with longitude linear in the column
        # (north-up grids in geographic, cylindrical and pseudo-cylindrical CRSs: WorldPop, GHS-POP Mollweide).
        self.row_lat = np.full(self.nrows, np.nan)
        self.row_lon0 = np.full(self.nrows, np.nan)   # lon of column 0's centre, degrees
        self.row_dlon = np.full(self.nrows, np.nan)   # degrees per column
        if b == 0.0 and d == 0.0 and self.nrows and self.ncols:
            self._rows_as_parallels()

    def lonlat(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact lon/lat (degrees, EPSG:4326) of the centres of pixels (rows, cols)."""
        cp = cols + 0.5
        rp = rows + 0.5
        x = self.a * cp + self.b * rp + self.c
        y = self.d * cp + self.e * rp + self.f
        if self.transformer is None:
            return x, y
        with self._lock:  # worker threads share this Transformer; keep its use serial to be safe
            lon, lat = self.transformer.transform(x, y)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def _rows_as_parallels(self) -> None:
        rows = np.arange(self.nrows, dtype=np.float64)
        ends = np.array([0.0, self.ncols - 1.0])
        lon0, lat0 = self.lonlat(rows, np.zeros(self.nrows))
        lon1, lat1 = self.lonlat(rows, np.full(self.nrows, ends[1]))
        with np.errstate(invalid="ignore"):
            dlon = (lon1 - lon0) / ends[1] if self.ncols > 1 else np.full(self.nrows, self.a)
            ok = np.isfinite(lon0) & np.isfinite(lon1) & np.isfinite(lat0) & (lat0 == lat1) & (np.abs(lat0) < 85.0)
        if self.transformer is not None and ok.any():
            # Check the parallel/linear-longitude assumption on a sample; any deviation beyond 1e-10 degrees
            # (far below the 6 mm margin) sends the whole raster to the exact per-pixel path.
            okr = np.flatnonzero(ok)
            sr = okr[np.linspace(0, okr.size - 1, min(okr.size, 9)).astype(int)]
            sc = np.linspace(0, self.ncols - 1, min(self.ncols, 17)).astype(int).astype(np.float64)
            rr, cc = np.meshgrid(sr.astype(np.float64), sc, indexing="ij")
            lon, lat = self.lonlat(rr.ravel(), cc.ravel())
            lin = (lon0[rr.astype(int)] + cc * dlon[rr.astype(int)]).ravel()
            with np.errstate(invalid="ignore"):
                dev = max(np.nanmax(np.abs(lon - lin)), np.nanmax(np.abs(lat - lat0[rr.astype(int)].ravel())))
            if not np.isfinite(dev) or dev > 1e-10:
                ok[:] = False
        self.row_lat = np.where(ok, lat0, np.nan)
        self.row_lon0 = np.where(ok, lon0, np.nan)
        self.row_dlon = np.where(ok, dlon, np.nan)


def _exact_cells(grid: _Grid, rows: np.ndarray, cols: np.ndarray, res: int) -> np.ndarray:
    """h3 cell of each pixel centre, one by one (h3ronpy, vectorised)."""
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    lon, lat = grid.lonlat(rows.astype(np.float64), cols.astype(np.float64))
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(
            "a valid pixel's centre has no longitude/latitude in this CRS",
            field="values", value={"row": int(rows[i]), "col": int(cols[i])},
            allowed="nodata (or NaN) outside the CRS's domain")
    return _h3v_cells(h3v.coordinates_to_cells(lat, lon, res))


def _parse_wkb_rings(cells_u64: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boundaries of cells as closed rings (lat_rad, lng_rad), shape (n, vmax), padded with the closing vertex."""
    arr = pa.array(h3v.cells_to_wkb_polygons(cells_u64, radians=True))
    bufs = arr.buffers()
    odt = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    off = np.frombuffer(bufs[1], dtype=odt)[arr.offset: arr.offset + len(arr) + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    start = off[:-1]
    if np.any(data[start] != 1):
        raise RuntimeError("h3ronpy returned big-endian WKB")  # pragma: no cover - never seen
    size = np.diff(off)                      # 13 header bytes + 16 per vertex (one ring)
    npts = (size - 13) // 16
    vmax = int(npts.max())
    lat = np.empty((start.size, vmax))
    lng = np.empty((start.size, vmax))
    for n in np.unique(npts):
        g = np.flatnonzero(npts == n)
        if g.size == start.size and np.all(size == size[0]):  # the usual case: one contiguous block
            raw = data[start[0]: off[-1]].reshape(start.size, -1)[:, 13:]
        else:
            raw = data[start[g][:, None] + np.arange(13, 13 + 16 * n)]
        xy = np.ascontiguousarray(raw).view("<f8").reshape(g.size, n, 2)
        lng[g, :n], lat[g, :n] = xy[..., 0], xy[..., 1]
        lng[g, n:], lat[g, n:] = xy[:, -1:, 0], xy[:, -1:, 1]
    return lat, lng


def _fast_block(grid: _Grid, nr: int, nc: int, r0: int, c0: int, res: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Label the pixels of one block with the cells that contain them, from exact cell geometry.

    Each row of pixel centres is a parallel: latitude fixed, longitude linear in the column. An H3 cell is
    the spherical polygon whose edges are great-circle arcs between the vertices h3 reports (within an
    icosahedron face the cells are hexagons of the face's gnomonic plane, where straight lines are great
    circles; class II cells meet face edges at vertices, class III cells get an extra vertex there). A point
    on the inner side of every edge's great-circle plane is in the cell: for a convex cell that set is the
    cell, for a class III cell with a slightly reflex face-edge vertex it is the kernel, a subset, so the
    test never claims a pixel the cell does not own.

    On the parallel at latitude phi, edge plane n gives f(lam) = n . p(lam) = cos(phi) (P(lam) ...) and we
    need f >= margin. Around the cell's central longitude lam_c, f(lam_c + d) >= f0 + f1 d - cos(phi) rho
    D^2 / 2 for |d| <= D (|f''| <= cos(phi) rho, rho = |n_xy|, D the cell's half-width in longitude), so
    ``f0 + f1 d >= margin + cos(phi) rho D^2 / 2`` is a sufficient, linear condition: one bound on d per
    edge. The bounds of all edges give the run of columns of that row that lies inside the cell by at least
    ``_MARGIN_RAD`` (6 mm) plus the curvature allowance (3 cm at res 8). Pixels no cell claims (near
    edges, or in cells missing from the candidate list) are looked up exactly with h3 by the caller.

    Returns (labels (nr, nc) int32: 0 = not claimed, i + 1 = cells[i]; cells int64), or None when the
    block is not eligible (rows not parallels, near a pole or the antimeridian, or cells smaller than a
    few pixels, where one lookup per pixel is cheaper).
    """
    lat_deg = grid.row_lat[r0: r0 + nr]
    dlon = grid.row_dlon[r0: r0 + nr]
    lon0 = grid.row_lon0[r0: r0 + nr] + c0 * dlon
    if res > _FAST_MAX_RES or not np.all(np.isfinite(lat_deg)):
        return None
    r1 = min(r0 + 1, grid.nrows - 1)
    dlat = abs(grid.row_lat[r1] - grid.row_lat[r0]) if r1 != r0 else abs(dlon[0])
    px_m2 = abs(dlon[0]) * dlat * 111.2e3 ** 2 * math.cos(math.radians(lat_deg[0]))
    if px_m2 * _MIN_PIXELS_PER_CELL > h3i.average_hexagon_area(res, "m^2"):
        return None
    lon_a, lon_b = lon0, lon0 + (nc - 1) * dlon
    lon_min = float(min(lon_a.min(), lon_b.min()))
    lon_max = float(max(lon_a.max(), lon_b.max()))
    lat_min, lat_max = float(lat_deg.min()), float(lat_deg.max())
    pad = 0.2 * h3i.average_hexagon_edge_length(res, "km") / 111.0
    pad_lon = pad / math.cos(math.radians(max(abs(lat_min), abs(lat_max))))
    if lon_min - pad_lon <= -180.0 or lon_max + pad_lon >= 180.0 or max(abs(lat_min), abs(lat_max)) + pad > 85:
        return None
    box = h3i.LatLngPoly([(lat_min - pad, lon_min - pad_lon), (lat_min - pad, lon_max + pad_lon),
                          (lat_max + pad, lon_max + pad_lon), (lat_max + pad, lon_min - pad_lon)])
    cells = np.asarray(h3i.h3shape_to_cells_experimental(box, res, contain="overlap"), dtype=np.int64)
    labels = np.zeros((nr, nc + 1), dtype=np.int32)
    if cells.size == 0:
        return labels, cells
    vlat, vlng = _parse_wkb_rings(_to_u64(cells))
    # unit vectors of the vertices; edge-plane normals n = v_k x v_{k+1}, turned to point into the cell
    cl = np.cos(vlat)
    x, y, z = cl * np.cos(vlng), cl * np.sin(vlng), np.sin(vlat)
    nx = y[:, :-1] * z[:, 1:] - z[:, :-1] * y[:, 1:]
    ny = z[:, :-1] * x[:, 1:] - x[:, :-1] * z[:, 1:]
    nz = x[:, :-1] * y[:, 1:] - y[:, :-1] * x[:, 1:]
    cx, cy, cz = x[:, :-1].sum(axis=1), y[:, :-1].sum(axis=1), z[:, :-1].sum(axis=1)
    flip = np.where((nx * cx[:, None] + ny * cy[:, None] + nz * cz[:, None]).sum(axis=1) < 0, -1.0, 1.0)[:, None]
    nx, ny, nz = nx * flip, ny * flip, nz * flip
    nn = np.sqrt(nx * nx + ny * ny + nz * nz)
    lam_c = np.arctan2(cy, cx)
    vl = np.remainder(vlng - lam_c[:, None] + np.pi, 2 * np.pi) - np.pi   # vertex lon - lam_c
    d_lo, d_hi = vl.min(axis=1), vl.max(axis=1)
    half = np.maximum(-d_lo, d_hi)
    cs, sn = np.cos(lam_c)[:, None], np.sin(lam_c)[:, None]
    P = nx * cs + ny * sn
    Q = -nx * sn + ny * cs
    rho = np.hypot(nx, ny)
    deg = nn <= 1e-300                                                   # padding (repeated vertex)
    with np.errstate(divide="ignore", invalid="ignore"):
        k1 = _MARGIN_RAD * nn / Q
        k2 = -nz / Q
        k3 = (rho * half[:, None] ** 2 / 2 - P) / Q
    usable = ~np.any((Q == 0) & ~deg, axis=1)        # an edge with Q == 0 exactly: leave the cell to h3
    # pack each cell's lower-bound edges (Q > 0) first and its upper-bound edges (Q < 0) last
    kind = np.where(deg, 1, np.where(Q > 0, 0, 2))
    srt = np.argsort(kind, axis=1, kind="stable")
    kind = np.take_along_axis(kind, srt, axis=1)
    k1, k2, k3 = (np.take_along_axis(k, srt, axis=1) for k in (k1, k2, k3))
    nlow = int((kind == 0).sum(axis=1).max())
    nup = int((kind == 2).sum(axis=1).max())
    ne = kind.shape[1]
    # latitude band of each cell: vertex extent plus the poleward bulge of a great-circle edge (< 1e-6 rad)
    phi = np.radians(lat_deg)
    order = np.argsort(phi, kind="stable")
    phis = phi[order]
    lo_i = np.searchsorted(phis, vlat.min(axis=1) - 1e-6, side="left")
    cnt = np.searchsorted(phis, vlat.max(axis=1) + 1e-6, side="right") - lo_i
    cnt[~usable] = 0
    rmax = int(cnt.max())
    if rmax <= 0:
        return labels, cells
    s_idx = np.minimum(lo_i[:, None] + np.arange(rmax), nr - 1)          # (C, R) sorted-row index
    inrange = np.arange(rmax)[None, :] < cnt[:, None]
    rows = order[s_idx]
    sec = (1.0 / np.cos(phis))[s_idx]
    tan = np.tan(phis)[s_idx]
    lo = d_lo[:, None] + np.zeros_like(sec)
    for e in range(nlow):
        b = k1[:, e, None] * sec + k2[:, e, None] * tan + k3[:, e, None]
        np.maximum(lo, np.where(kind[:, e, None] == 0, b, -np.inf), out=lo)
    hi = d_hi[:, None] + np.zeros_like(sec)
    for e in range(ne - nup, ne):
        b = k1[:, e, None] * sec + k2[:, e, None] * tan + k3[:, e, None]
        np.minimum(hi, np.where(kind[:, e, None] == 2, b, np.inf), out=hi)
    rel = lam_c[:, None] - np.radians(lon0)[rows]                        # lam_c - lon(col 0)
    dl = np.radians(dlon)[rows]
    u = (rel + lo) / dl
    w = (rel + hi) / dl
    ca = np.maximum(np.ceil(np.minimum(u, w)), 0.0)
    cb = np.minimum(np.floor(np.maximum(u, w)), nc - 1.0)
    keep = inrange & (hi >= lo) & (ca <= cb)
    pc = np.broadcast_to(np.arange(cells.size)[:, None], keep.shape)[keep]
    prow, ca, cb = rows[keep], ca[keep].astype(np.int64), cb[keep].astype(np.int64)
    # Runs claimed in one row must be disjoint (cells are); should rounding ever make two overlap, both go to h3.
    o = np.argsort(prow * (nc + 1) + ca)
    pc, prow, ca, cb = pc[o], prow[o], ca[o], cb[o]
    clash = (prow[1:] == prow[:-1]) & (ca[1:] <= cb[:-1])
    if clash.any():
        bad = np.zeros(pc.size, dtype=bool)
        bad[1:] |= clash
        bad[:-1] |= clash
        pc, prow, ca, cb = pc[~bad], prow[~bad], ca[~bad], cb[~bad]
    lab = (pc + 1).astype(np.int32)
    starts = np.zeros((nr, nc + 1), dtype=np.int32)
    starts[prow, ca] = lab
    labels[prow, cb + 1] = lab
    np.subtract(starts, labels, out=starts)
    np.cumsum(starts, axis=1, dtype=np.int32, out=starts)
    return starts, cells


def _grid_block(grid: _Grid, v: np.ndarray, valid: np.ndarray, r0: int, c0: int, res: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(cells, sums) of one block; every valid pixel counted once.

    ``v`` and ``valid`` have one extra, invalid column (so that the label array of the fast path, which has
    it too, is used without copies); values of invalid pixels are never added to a cell.
    """
    nr, nc = v.shape[0], v.shape[1] - 1
    fast = _fast_block(grid, nr, nc, r0, c0, res)
    if fast is None:
        rr, cc = np.nonzero(valid)
        cells = _exact_cells(grid, rr + r0, cc + c0, res)
        return merge_cell_sums([(cells, v[rr, cc])])
    labels, cells = fast
    todo = labels == 0
    todo &= valid
    # flatnonzero + divmod: a third of np.nonzero's time on a 2-d mask (same row-major order)
    rr, cc = np.divmod(np.flatnonzero(todo), labels.shape[1])
    labels *= valid
    if rr.size:
        extra = _exact_cells(grid, rr + r0, cc + c0, res)
        uextra, inv = np.unique(extra, return_inverse=True)
        labels[rr, cc] = cells.size + 1 + inv.astype(np.int32)
        cells = np.concatenate([cells, uextra])
    lab = labels.ravel()
    # bin 0 collects the invalid pixels (NaN, nodata) and is dropped
    sums = np.bincount(lab, weights=v.ravel(), minlength=cells.size + 1)[1:]
    counts = np.bincount(lab, minlength=cells.size + 1)[1:]
    has = counts > 0
    return merge_cell_sums([(cells[has], sums[has])])


def grid_to_cells(
    values: np.ndarray,
    *,
    transform: Sequence[float],
    crs: pyproj.CRS | str,
    res: int,
    nodata: float | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum a population raster onto H3 cells: each valid pixel goes to the cell containing its centre.

    The assignment is exactly h3's ``latlng_to_cell`` of each pixel centre (reprojected to EPSG:4326 with
    pyproj when ``crs`` is not WGS84), and every valid pixel is counted once, so the total is conserved.
    North-up rasters in geographic, cylindrical or pseudo-cylindrical CRSs (WorldPop EPSG:4326, GHS-POP
    Mollweide ESRI:54009) take a fast path: whole runs of a row are claimed by exact cell geometry and only
    pixels within ~6 mm of a cell edge are looked up one by one. Other grids are looked up pixel by pixel.

    Parameters
    ----------
    values : ndarray, 2-d
        Pixel values (an extensive quantity such as people per pixel), ``values[row, col]``.
    transform : tuple of float
        Affine ``a, b, c, d, e, f`` (rasterio order): ``x = a*col + b*row + c``, ``y = d*col + e*row + f``,
        for the pixel *corner*; an ``affine.Affine`` works too.
    crs : pyproj.CRS or str
        CRS of ``x, y``.
    res : int
        H3 resolution, 0..15.
    nodata : float, optional
        Pixel value meaning "no data"; such pixels and NaN pixels are skipped.
    workers : int, optional
        Threads (default: up to 2, the cores this machine has).

    Returns
    -------
    cells : ndarray of int64
        Sorted unique cells that received at least one valid pixel (a cell with valid pixels of value 0
        is included: the source covers it).
    sums : ndarray of float64
        Sum of the values of the valid pixels whose centre falls in each cell.

    Raises
    ------
    InvalidParameterError
        ``values`` not 2-d numeric, negative or infinite valid values, a bad ``transform`` or ``res``, or
        a valid pixel whose centre cannot be reprojected.
    CRSError
        ``crs`` missing or not understood.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[1.0, 2.0], [-1.0, 4.0]])
    >>> cells, sums = grid_to_cells(v, transform=(0.01, 0, 110.0, 0, -0.01, 45.0), crs="EPSG:4326",
    ...                             res=5, nodata=-1.0)
    >>> float(sums.sum()), cells.dtype.name
    (7.0, 'int64')
    """
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.dtype.kind not in "fiub":
        raise InvalidParameterError(field="values", value=f"array of shape {arr.shape} and dtype {arr.dtype}",
                                    allowed="a 2-d numeric array")
    res = _check_res(res)
    if nodata is not None and not isinstance(nodata, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(field="nodata", value=nodata, allowed="a number, NaN or None")
    grid = _Grid(transform, crs, arr.shape)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    nw = max(1, min(2, os.cpu_count() or 1) if workers is None else int(workers))
    # blocks of about a million pixels: rows x (up to 4096 columns)
    bc = min(arr.shape[1], 4096)
    br = max(1, _BLOCK_PIXELS // bc)
    blocks = [(r, c) for r in range(0, arr.shape[0], br) for c in range(0, arr.shape[1], bc)]

    nodata_nan = nodata is None or math.isnan(float(nodata))

    def run(rc: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        r, c = rc
        blk = arr[r: r + br, c: c + bc]
        v = np.empty((blk.shape[0], blk.shape[1] + 1), dtype=np.float64)
        v[:, :-1] = blk
        v[:, -1] = np.nan
        if not nodata_nan:
            np.copyto(v, np.nan, where=v == nodata)
        valid = v >= 0                                   # False for NaN (and nodata, now NaN)
        nvalid = np.count_nonzero(valid)
        # fmax skips NaN: +inf is the only infinite value that is "valid" (>= 0); -inf fails the count
        if nvalid + np.count_nonzero(np.isnan(v)) != v.size or np.fmax.reduce(v, axis=None) == np.inf:
            bad = ~(valid | np.isnan(v)) | np.isinf(v)
            raise InvalidParameterError("pixel values must be finite and non-negative", field="values",
                                        value=float(v[bad][0]), allowed="values >= 0, nodata or NaN")
        if nvalid == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return _grid_block(grid, v, valid, r, c, res)

    if nw == 1 or len(blocks) == 1:
        parts = [run(b) for b in blocks]
    else:
        with ThreadPoolExecutor(nw) as ex:
            parts = list(ex.map(run, blocks))
    return merge_cell_sums(parts)


def merge_cell_sums(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Combine (cells, sums) pairs, e.g. from the windows of one raster, into sorted unique cells and sums.

    Parameters
    ----------
    parts : iterable of (cells int64, sums float64)

    Returns
    -------
    cells : ndarray of int64, sorted unique
    sums : ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> merge_cell_sums([(np.array([5, 3]), np.array([1.0, 2.0])), (np.array([5]), np.array([0.5]))])
    (array([3, 5]), array([2. , 1.5]))
    """
    plist = [(np.asarray(c, dtype=np.int64).ravel(), np.asarray(s, dtype=np.float64).ravel()) for c, s in parts]
    for c, s in plist:
        if c.shape != s.shape:
            raise InvalidParameterError(field="parts", value=f"cells {c.shape} vs sums {s.shape}",
                                        allowed="cells and sums of the same length")
    if not plist:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    cells = np.concatenate([c for c, _ in plist])
    sums = np.concatenate([s for _, s in plist])
    u, inv = np.unique(cells, return_inverse=True)
    return u, np.bincount(inv.ravel(), weights=sums, minlength=u.size)


def points_to_cells(lon: Any, lat: Any, values: Any, *, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum point values (e.g. population of places) onto the H3 cells containing the points.

    Parameters
    ----------
    lon, lat : array-like of float
        Coordinates in degrees, EPSG:4326.
    values : array-like of float
        Non-negative value of each point (NaN is rejected: missing population is not zero).
    res : int
        H3 resolution, 0..15.

    Returns
    -------
    cells : ndarray of int64, sorted unique
    sums : ndarray of float64

    Examples
    --------
    >>> cells, sums = points_to_cells([111.65, 111.6501], [40.82, 40.8201], [10, 5], res=7)
    >>> cells.size, float(sums.sum())
    (1, 15.0)
    """
    res = _check_res(res)
    lo = np.asarray(lon, dtype=np.float64).ravel()
    la = np.asarray(lat, dtype=np.float64).ravel()
    va = np.asarray(values, dtype=np.float64).ravel()
    if not lo.shape == la.shape == va.shape:
        raise InvalidParameterError(field="values", value=f"lengths {lo.size}, {la.size}, {va.size}",
                                    allowed="lon, lat and values of the same length")
    bad = ~(np.isfinite(lo) & np.isfinite(la) & (np.abs(la) <= 90) & (np.abs(lo) <= 180))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(field="lon/lat", value=(float(lo[i]), float(la[i])),
                                    allowed="lon in [-180, 180], lat in [-90, 90] (EPSG:4326, lon first)")
    badv = ~(np.isfinite(va) & (va >= 0))
    if badv.any():
        raise InvalidParameterError(field="values", value=float(va[np.flatnonzero(badv)[0]]),
                                    allowed="finite values >= 0 (missing population is not zero)")
    if lo.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    cells = _h3v_cells(h3v.coordinates_to_cells(la, lo, res))
    return merge_cell_sums([(cells, va)])


# ------------------------------------------------------------------------------------------ cell geometry
def cell_boundaries(cells: Any) -> np.ndarray:
    """Cell outlines as shapely Polygons in EPSG:4326 (lon, lat), one per cell.

    Examples
    --------
    >>> import numpy as np
    >>> g = cell_boundaries(np.array([0x88283082a3fffff]))
    >>> g[0].geom_type, len(g[0].exterior.coords)
    ('Polygon', 7)
    """
    arr = _as_cells(cells)
    if arr.size == 0:
        return np.empty(0, dtype=object)
    lat, lng = _parse_wkb_rings(_to_u64(arr))
    return np.asarray(shapely.polygons(np.stack([np.degrees(lng), np.degrees(lat)], axis=-1)), dtype=object)


def cell_area_m2(cells: Any) -> np.ndarray:
    """Area of each cell in m2 (h3's ``cell_area`` on its spherical Earth, radius 6371.007 km).

    Examples
    --------
    >>> import numpy as np
    >>> round(float(cell_area_m2(np.array([0x88283082a3fffff]))[0]) / 1e6, 3)
    0.766
    """
    arr = _as_cells(cells)
    return np.array([h3i.cell_area(int(c), "m^2") for c in arr.tolist()], dtype=np.float64)


def cell_centres(cells: Any) -> tuple[np.ndarray, np.ndarray]:
    """Centre of each cell as (lon, lat) in degrees, EPSG:4326.

    Examples
    --------
    >>> import numpy as np
    >>> lon, lat = cell_centres(np.array([0x88283082a3fffff]))
    >>> round(float(lon[0]), 4), round(float(lat[0]), 4)
    (-122.4018, 37.7924)
    """
    arr = _as_cells(cells)
    if arr.size == 0:
        return np.zeros(0), np.zeros(0)
    rb = pa.record_batch(h3v.cells_to_coordinates(_to_u64(arr)))
    return (rb.column("lng").to_numpy(zero_copy_only=False).astype(np.float64),
            rb.column("lat").to_numpy(zero_copy_only=False).astype(np.float64))


# H3 index layout (int64): resolution in bits 52-55, then 15 digits of 3 bits (digit r at bits 3 * (15 - r)),
# unused digits set to 7. Parents and child ranges are bit arithmetic on that documented layout, vectorised;
# tests check them against h3.cell_to_parent and h3.cell_to_children.
_RES_SHIFT = 52


def _check_parent_res(parent_res: Any, res: Any) -> tuple[int, int]:
    r = _check_res(res)
    if isinstance(parent_res, bool) or not isinstance(parent_res, (int, np.integer)) or not 0 <= parent_res <= r:
        raise InvalidParameterError(field="parent_res", value=parent_res, allowed=f"an integer in 0..{r}")
    return int(parent_res), r


def parent_cells(cells: Any, *, res: int, parent_res: int) -> np.ndarray:
    """Parent at ``parent_res`` (<= ``res``) of each int64 H3 cell of resolution ``res``.

    Raises
    ------
    InvalidParameterError
        ``res`` not in 0..15 or ``parent_res`` not in 0..``res``.

    Examples
    --------
    >>> hex(int(parent_cells([0x8831aa5555fffff], res=8, parent_res=5)[0]))
    '0x8531aa57fffffff'
    """
    parent_res, res = _check_parent_res(parent_res, res)
    c = np.asarray(cells, dtype=np.int64).view(np.uint64).copy()
    c &= ~np.uint64(0xF << _RES_SHIFT)
    c |= np.uint64(parent_res << _RES_SHIFT)
    for r in range(parent_res + 1, res + 1):
        c |= np.uint64(7 << ((15 - r) * 3))
    return c.view(np.int64)


def child_ranges(parents: Any, *, parent_res: int, res: int) -> tuple[np.ndarray, np.ndarray]:
    """``[lo, hi]`` int64 range holding every child at ``res`` of each parent cell (and no other cell of that res).

    A store keyed by int64 cells reads the children of a parent with one index range scan.

    Examples
    --------
    >>> lo, hi = child_ranges([0x8531aa57fffffff], parent_res=5, res=8)
    >>> bool(lo[0] <= 0x8831aa5555fffff <= hi[0])
    True
    """
    parent_res, res = _check_parent_res(parent_res, res)
    u = np.asarray(parents, dtype=np.int64).view(np.uint64)
    base = (u & ~np.uint64(0xF << _RES_SHIFT)) | np.uint64(res << _RES_SHIFT)
    lo, hi = base.copy(), base.copy()
    for r in range(parent_res + 1, res + 1):
        m = np.uint64(7 << ((15 - r) * 3))
        lo &= ~m
        hi = (hi & ~m) | np.uint64(6 << ((15 - r) * 3))
    return lo.view(np.int64), hi.view(np.int64)


def bbox_child_ranges(bbox: Sequence[float], *, res: int, parent_res: int,
                      max_parents: int = 4096) -> tuple[np.ndarray, np.ndarray] | None:
    """``[lo, hi]`` int64 ranges that hold every cell of ``res`` meeting a lon/lat box (and some cells near it).

    The box, widened by two edges of a ``parent_res`` cell (children may reach slightly beyond their parent's
    outline), is covered by cells of ``parent_res`` (:func:`zone_weights`); their children are those ranges.
    A caller keeps the candidates whose outline really meets the box.

    Parameters
    ----------
    bbox : (west, south, east, north)
        Degrees, EPSG:4326.
    res, parent_res : int
        Resolution of the cells asked for, and of the cover (``parent_res <= res``).
    max_parents : int, default 4096
        Above this many covering cells the box is too large for a useful pre-filter: None is returned.

    Returns
    -------
    (lo, hi) of int64 arrays, or None

    Examples
    --------
    >>> lo, hi = bbox_child_ranges((111.70, 40.80, 111.72, 40.82), res=8, parent_res=5)
    >>> bool(lo.size) and bool((lo <= hi).all())
    True
    """
    parent_res, res = _check_parent_res(parent_res, res)
    w, s, e, n = (float(v) for v in bbox)
    pad_m = 2.0 * float(h3i.average_hexagon_edge_length(parent_res, "m"))
    dlat = pad_m / 111_320.0
    dlon = pad_m / (111_320.0 * max(math.cos(math.radians(min(89.0, max(abs(s), abs(n))))), 0.01))
    zone = shapely.box(max(w - dlon, -180.0), max(s - dlat, -89.9), min(e + dlon, 180.0), min(n + dlat, 89.9))
    parents, _ = zone_weights(zone, res=parent_res)
    if parents.size > max_parents:
        return None
    return child_ranges(parents, parent_res=parent_res, res=res)


def _json_value(x: Any) -> Any:
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def cells_to_geojson(cells: Any, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """GeoJSON FeatureCollection of cell polygons for the browser; ``h3`` is the cell id as a hex string.

    Parameters
    ----------
    cells : array of int64
    properties : dict of str -> array, optional
        Per-cell values (same length as ``cells``); NaN becomes JSON null.

    Examples
    --------
    >>> import numpy as np
    >>> fc = cells_to_geojson(np.array([0x88283082a3fffff]), {"population": np.array([12.5])})
    >>> fc["features"][0]["properties"]
    {'h3': '88283082a3fffff', 'population': 12.5}
    """
    arr = _as_cells(cells)
    props = {k: np.asarray(v) for k, v in (properties or {}).items()}
    for k, v in props.items():
        if v.shape != arr.shape:
            raise InvalidParameterError(field=f"properties.{k}", value=f"length {v.size}",
                                        allowed=f"one value per cell ({arr.size})")
    feats: list[dict[str, Any]] = []
    for i, g in enumerate(cell_boundaries(arr)):
        p: dict[str, Any] = {"h3": format(int(arr[i]) & 0xFFFFFFFFFFFFFFFF, "x")}
        p.update({k: _json_value(v[i]) for k, v in props.items()})
        feats.append({"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": p})
    for f in feats:  # GeoJSON wants lists, not tuples
        f["geometry"]["coordinates"] = [[list(pt) for pt in ring] for ring in f["geometry"]["coordinates"]]
    return {"type": "FeatureCollection", "features": feats}


# ------------------------------------------------------------------------------------------ zone weights
def _check_zone(zone: Any) -> Polygon | MultiPolygon:
    if not isinstance(zone, (Polygon, MultiPolygon)):
        raise InvalidGeometryError("the zone must be a Polygon or MultiPolygon", field="geometry",
                                   value=getattr(zone, "geom_type", type(zone).__name__),
                                   allowed="Polygon or MultiPolygon in EPSG:4326")
    if not zone.is_empty:
        if not zone.is_valid:
            raise InvalidGeometryError("the zone is not a valid polygon", field="geometry",
                                       value=shapely.is_valid_reason(zone), allowed="a valid polygon")
        x0, y0, x1, y1 = zone.bounds
        if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
            raise InvalidGeometryError("coordinates out of range", field="geometry", value=zone.bounds,
                                       allowed="lon in [-180, 180], lat in [-90, 90] (EPSG:4326, lon first)")
    return zone


def _lat_weighted_area(g: np.ndarray) -> np.ndarray:
    """Area in square degrees times cos(latitude of the centroid): proportional to the true area to second
    order over one cell (the plate-carree area scale 1/cos(lat) is linear across a cell to first order)."""
    return shapely.area(g) * np.cos(np.radians(shapely.get_y(shapely.centroid(g))))


def _clip_left(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each closed ring ``px, py`` (rows; padded by repeating a vertex) clipped to the left of its line a->b
    (Sutherland-Hodgman against one line, all rows at once).

    Returns the clipped rings (closed, padded the same way), whether each is non-empty, ``ok`` (False where a vertex
    lies within 1e-10 degree of the line: tangent cases, which GEOS decides), and the parameter along a->b of every
    crossing of the ring's outline with the line (NaN where an edge does not cross) with the crossing mask."""
    ax, ay = a[:, :1], a[:, 1:]
    dx, dy = (b[:, 0] - a[:, 0])[:, None], (b[:, 1] - a[:, 1])[:, None]
    seg_len = np.hypot(dx, dy)
    d = dx * (py - ay) - dy * (px - ax)                # > 0: left of the line (inside the zone)
    ok = np.all(np.abs(d) > 1e-10 * seg_len, axis=1) & (seg_len[:, 0] > 0)
    inside = d > 0
    p_in, q_in = inside[:, :-1], inside[:, 1:]
    qx, qy, dp, dq = px[:, 1:], py[:, 1:], d[:, :-1], d[:, 1:]
    pxe, pye = px[:, :-1], py[:, :-1]
    cross = p_in != q_in
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(cross, dp / (dp - dq), 0.0)
    ix, iy = pxe + t * (qx - pxe), pye + t * (qy - pye)
    u = ((ix - ax) * dx + (iy - ay) * dy) / np.where(seg_len > 0, seg_len ** 2, 1.0)
    # output of edge k: its start if inside, then the crossing point if the edge crosses the line
    ox = np.stack([pxe, ix], axis=2).reshape(px.shape[0], -1)
    oy = np.stack([pye, iy], axis=2).reshape(px.shape[0], -1)
    valid = np.stack([p_in, cross], axis=2).reshape(px.shape[0], -1)
    m = valid.shape[1]
    pos = np.where(valid, np.arange(m), -1)
    last = pos.max(axis=1)
    ff = np.maximum.accumulate(pos, axis=1)
    ff = np.where(ff < 0, last[:, None], ff)           # leading gaps: the ring is cyclic, take its last point
    rows = np.arange(px.shape[0])[:, None]
    ffc = np.maximum(ff, 0)
    ox, oy = ox[rows, ffc], oy[rows, ffc]
    ox, oy = np.concatenate([ox, ox[:, :1]], axis=1), np.concatenate([oy, oy[:, :1]], axis=1)
    return ox, oy, last >= 0, ok, np.where(cross, u, np.nan)


def _ring_area_cy(px: np.ndarray, py: np.ndarray, y0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area (square degrees) and centroid latitude of closed rings ``px, py`` given relative to latitude ``y0``."""
    nx, ny = px[:, 1:], py[:, 1:]
    c = px[:, :-1] * ny - nx * py[:, :-1]
    area2 = c.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cy = np.where(area2 != 0, ((py[:, :-1] + ny) * c).sum(axis=1) / (3.0 * area2), 0.0) + y0
    return np.abs(area2) / 2.0, cy


def _halfplane_weights(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Latitude-weighted area of each cell (closed rings ``x, y``, degrees) on the left of its one zone segment a->b.

    Used for cells that exactly one segment of the zone's boundary touches: inside such a cell the boundary is the
    segment, so the cell's part of the zone is its part on the segment's left (the zone's inside), clipped here
    in numpy (Sutherland-Hodgman against one line, shoelace area and centroid) instead of a GEOS overlay per cell.
    ``ok`` is False where that reasoning needs care and GEOS decides instead: a vertex within 1e-10 degree of the
    line (tangent cells, where the overlay may say "no area"), or the line crossing the cell's outline beyond the
    segment's ends (a cell that is not convex).
    """
    x0, y0 = x[:, :1], y[:, :1]                        # relative to the cell's first vertex, for precision
    ox, oy, nonempty, ok, u = _clip_left(x - x0, y - y0, a - np.c_[x0, y0], b - np.c_[x0, y0])
    ok &= ~np.any((u < 0) | (u > 1), axis=1)           # the crossing points must lie on the segment itself
    area, cy = _ring_area_cy(ox, oy, y0[:, 0])
    return np.where(nonempty, area, 0.0) * np.cos(np.radians(cy)), ok


def _convex(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each closed ring (rows; padded at the end by repeating its closing vertex) is strictly convex."""
    ex, ey = np.diff(x, axis=1), np.diff(y, axis=1)
    real = (ex != 0) | (ey != 0)
    rows = np.arange(ex.shape[0])
    last = ex.shape[1] - 1 - np.argmax(real[:, ::-1], axis=1)    # the last edge of non-zero length
    cr = ex * np.roll(ey, -1, axis=1) - ey * np.roll(ex, -1, axis=1)
    cr[rows, last] = ex[rows, last] * ey[:, 0] - ey[rows, last] * ex[:, 0]
    pair = real & np.roll(real, -1, axis=1)
    pair[rows, last] = True
    cr = np.where(pair, cr, np.nan)
    # a zero-length edge before a real one is a repeated vertex inside the ring, not padding: not handled here
    inner_gap = np.any(~real[:, :-1] & real[:, 1:], axis=1) | ~real[:, 0]
    convex: np.ndarray = ((np.nanmin(cr, axis=1) > 0) | (np.nanmax(cr, axis=1) < 0)) & ~inner_gap
    return convex


#: below this many corner cells GEOS is quicker than the fixed cost of the numpy corner clip (a box has 4)
_MIN_CORNER_CELLS = 16


def _corner_weights(x: np.ndarray, y: np.ndarray, a: np.ndarray, v: np.ndarray, b: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Latitude-weighted area of each cell (closed rings ``x, y``) inside the zone, for cells that exactly two
    consecutive segments a->v, v->b of the zone's boundary touch (a zone vertex v in or near the cell).

    In such a convex cell the zone's inside is the inside of the corner at v: the left of both lines a->v and v->b
    where the boundary turns left, the rest of the cell minus the right of both where it turns right (each segment
    crosses the convex cell in one piece, and the far end of each segment lies outside the cell, else a third
    segment would touch it). Clipped in numpy; ``ok`` is False where GEOS decides instead: a cell that is not
    convex, a vertex within 1e-10 degree of either line, or a corner too straight to tell its turn.
    """
    x0, y0 = x[:, :1], y[:, :1]
    rel = np.c_[x0, y0]
    a, v, b = a - rel, v - rel, b - rel
    px, py = x - x0, y - y0
    turn = (v[:, 0] - a[:, 0]) * (b[:, 1] - v[:, 1]) - (v[:, 1] - a[:, 1]) * (b[:, 0] - v[:, 0])
    scale = np.hypot(*(v - a).T) * np.hypot(*(b - v).T)
    left = turn > 0
    # clip to the left of both lines (left turn), or to the right of both (right turn: the part outside the zone)
    a1, b1 = np.where(left[:, None], a, v), np.where(left[:, None], v, a)
    a2, b2 = np.where(left[:, None], v, b), np.where(left[:, None], b, v)
    ox, oy, ne1, ok1, _ = _clip_left(px, py, a1, b1)
    ox, oy, ne2, ok2, _ = _clip_left(ox, oy, a2, b2)
    ok = ok1 & ok2 & (np.abs(turn) > 1e-12 * scale) & _convex(x, y)
    # a ring emptied by the first clip is a copy of one point: the second clip keeps it empty
    area, cy = _ring_area_cy(ox, oy, y0[:, 0])
    area = np.where(ne1 & ne2, area, 0.0)
    cell_area, cell_cy = _ring_area_cy(px, py, y0[:, 0])
    # right turn: the cell minus the clipped part, its centroid from the two moments
    rest = np.maximum(cell_area - area, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rest_cy = np.where(rest > 0, (cell_area * cell_cy - area * cy) / rest, cell_cy)
    out_area, out_cy = np.where(left, area, rest), np.where(left, cy, rest_cy)
    return out_area * np.cos(np.radians(out_cy)), ok


#: metres per degree used to turn a spacing in metres into degrees along a lon/lat line (at least the true length
#: of a degree of latitude or longitude everywhere but within 0.3 % near the poles)
_M_PER_DEG = 111_320.0


def _touch_candidates(lines: Any, res: int) -> np.ndarray:
    """A superset of the cells of ``res`` that ``lines`` (lon/lat, straight in lon/lat) touch, sorted and unique.

    The lines are sampled every half an average edge length of ``res`` (vertices included) and the cells of the
    samples taken with their ring of neighbours. A cell the lines touch at a point q has a sample within a quarter
    edge of q; the cell holding that sample is the cell or a neighbour of it, as cells that share no vertex lie at
    least one edge length apart (the shortest edges of a resolution are about half its average). h3's own tiling of
    a line is not used: it follows the grid, not the lon/lat line, and missed a hundred cells along a 0.5 degree
    parallel at res 8.
    """
    step = h3i.average_hexagon_edge_length(res, "m") / 2.0 / _M_PER_DEG
    xy = shapely.get_coordinates(shapely.segmentize(lines, step))
    if xy.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    seed = np.unique(_h3v_cells(h3v.coordinates_to_cells(xy[:, 1], xy[:, 0], res)))
    return np.unique(_h3v_cells(h3ronpy.grid_disk(_to_u64(seed), 1, flatten=True)))


def _boundary_candidates(zone: Polygon | MultiPolygon, res: int) -> np.ndarray:
    """Cells that may touch the zone's boundary (sorted, unique; :func:`_touch_candidates`); shapely decides which
    of them the boundary really touches."""
    return _touch_candidates(zone.boundary, res)


def zone_weights(zone: Polygon | MultiPolygon, *, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells that intersect a zone and the fraction of each cell's area inside it (area-weighted mode).

    Cells whose centre is inside the zone and which do not touch its boundary are fully inside: fraction 1,
    with no geometry work. Cells that touch the boundary get area(cell & zone) / area(cell), computed with
    shapely on the lon/lat polygons with each piece's area scaled by cos(latitude of its centroid) (exact
    to second order across a cell; at res 8 the error of a fraction is below 1e-6). The zone's edges are
    straight lines in lon/lat, as in GeoJSON.

    Parameters
    ----------
    zone : shapely Polygon or MultiPolygon
        In EPSG:4326 (lon, lat), valid.
    res : int
        H3 resolution, 0..15.

    Returns
    -------
    cells : ndarray of int64, sorted
    fraction : ndarray of float64 in (0, 1]

    Raises
    ------
    InvalidGeometryError
        Not a (valid) polygon, or coordinates out of range.
    InvalidParameterError
        ``res`` out of range.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> cells, frac = zone_weights(box(111.0, 40.0, 111.1, 40.1), res=7)
    >>> bool(((frac > 0) & (frac <= 1)).all()), round(float((frac * cell_area_m2(cells)).sum()) / 1e6, 1)
    (True, 94.6)
    """
    res = _check_res(res)
    zone = _check_zone(zone)
    if zone.is_empty or zone.area == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    centre = np.sort(_h3v_cells(h3v.geometry_to_cells(
        zone, res, containment_mode=h3ronpy.ContainmentMode.ContainsCentroid)))
    edge, frac, _ = _edge_fractions(zone, res)
    pos = np.minimum(np.searchsorted(edge, centre), max(edge.size - 1, 0))
    interior = centre[edge[pos] != centre] if edge.size else centre   # centre inside, boundary untouched
    cells = np.concatenate([interior, edge])
    fr = np.concatenate([np.ones(interior.size), frac])
    keep = fr > 0
    o = np.argsort(cells[keep])
    return cells[keep][o], fr[keep][o]


def _edge_fractions(zone: Polygon | MultiPolygon, res: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of ``res`` that the zone's boundary touches, with the fraction of each inside the zone (0 for a cell
    the boundary only grazes), and the candidates they were picked from (a superset of every cell touching the
    boundary). All three sorted; the zone checked, not empty."""
    cand = _boundary_candidates(zone, res)
    vlat, vlng = _parse_wkb_rings(_to_u64(cand))
    vx, vy = np.degrees(vlng), np.degrees(vlat)
    polys = np.asarray(shapely.polygons(np.stack([vx, vy], axis=-1)), dtype=object)
    # the zone's boundary as oriented segments (exterior counter-clockwise, holes clockwise: inside on the left)
    rings = shapely.get_rings(shapely.get_parts(shapely.orient_polygons(zone)))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    s0, s1 = xy[:-1][same], xy[1:][same]
    seg_tree = shapely.STRtree(np.asarray(shapely.linestrings(np.stack([s0, s1], axis=1)), dtype=object))
    ci, sj = seg_tree.query(polys, predicate="intersects")
    hits = np.bincount(ci, minlength=cand.size)
    touches = hits > 0
    one_seg = np.full(cand.size, -1, dtype=np.int64)
    single = hits[ci] == 1
    one_seg[ci[single]] = sj[single]
    # cells that two consecutive segments of one ring touch (a zone vertex in or near the cell): first, second
    two = np.flatnonzero(hits == 2)
    pair2 = hits[ci] == 2
    o = np.lexsort((sj[pair2], ci[pair2]))
    ci2, sj2 = ci[pair2][o], sj[pair2][o]
    first = np.searchsorted(ci2, two)
    j0, j1 = sj2[first], sj2[first + 1]
    seg_ring = ring[:-1][same]
    ring_first = np.r_[0, np.flatnonzero(seg_ring[1:] != seg_ring[:-1]) + 1]
    ring_last = np.r_[ring_first[1:], seg_ring.size] - 1
    rf, rl = ring_first[np.searchsorted(ring_first, j0, "right") - 1], ring_last[np.searchsorted(ring_first, j0,
                                                                                                 "right") - 1]
    chained = (j1 == j0 + 1) & (j1 <= rl)
    wrapped = (j0 == rf) & (j1 == rl) & (rl > rf + 1)  # the ring's last segment, then its first
    corner = np.full((cand.size, 2), -1, dtype=np.int64)
    corner[two[chained]] = np.c_[j0[chained], j1[chained]]
    corner[two[wrapped]] = np.c_[j1[wrapped], j0[wrapped]]
    edge, polys, one_seg, corner = cand[touches], polys[touches], one_seg[touches], corner[touches]
    vx, vy = vx[touches], vy[touches]
    frac = np.empty(edge.size)
    cell_w = _lat_weighted_area(polys)
    fast = np.flatnonzero(one_seg >= 0)
    done = np.zeros(edge.size, dtype=bool)
    if fast.size:
        w, ok = _halfplane_weights(vx[fast], vy[fast], s0[one_seg[fast]], s1[one_seg[fast]])
        frac[fast[ok]] = w[ok]
        done[fast[ok]] = True
    at_corner = np.flatnonzero(corner[:, 0] >= 0)
    if at_corner.size >= _MIN_CORNER_CELLS:
        sa, sb = corner[at_corner, 0], corner[at_corner, 1]
        w, ok = _corner_weights(vx[at_corner], vy[at_corner], s0[sa], s1[sa], s1[sb])
        frac[at_corner[ok]] = w[ok]
        done[at_corner[ok]] = True
    slow = np.flatnonzero(~done)
    if slow.size:
        frac[slow] = _lat_weighted_area(shapely.intersection(polys[slow], zone))
    frac = np.minimum(frac / cell_w, 1.0)
    return edge, frac, cand


# ------------------------------------------------------------------------------------- hierarchical cover
def cell_resolution(cells: Any) -> np.ndarray:
    """H3 resolution of each cell (read from the index bits).

    >>> cell_resolution([0x8531aa57fffffff, 0x8831aa5555fffff]).tolist()
    [5, 8]
    """
    u = _as_cells(cells).view(np.uint64)
    return ((u >> np.uint64(_RES_SHIFT)) & np.uint64(0xF)).astype(np.int64)


def child_cells(cells: Any, *, child_res: int) -> np.ndarray:
    """Every child at ``child_res`` of the given cells (all of one coarser resolution), as one int64 array.

    >>> child_cells([0x8531aa57fffffff], child_res=6).size
    7
    """
    arr = _as_cells(cells)
    if arr.size == 0:
        return arr
    return _h3v_cells(h3ronpy.change_resolution(_to_u64(arr), _check_res(child_res)))


#: the base cells whose centre cell is a pentagon (the H3 grid has 12, one per icosahedron vertex)
_PENTAGON_BASE_CELLS = np.array([4, 14, 24, 38, 49, 58, 63, 72, 83, 97, 107, 117], dtype=np.uint64)


def descendant_count(cells: Any, *, res: int) -> np.ndarray:
    """Number of descendants at ``res`` of each cell (1 for a cell of ``res``; a pentagon has fewer than 7^k).

    Read from the index bits: a cell is a pentagon when its base cell is one of the 12 pentagons and all its
    digits are 0; a pentagon at k resolutions above ``res`` has 1 + 5 (7^k - 1) / 6 descendants.

    >>> descendant_count([0x8531aa57fffffff, 0x8831aa5555fffff, 0x8009fffffffffff], res=8).tolist()
    [343, 1, 4804001]
    """
    arr = _as_cells(cells)
    res = _check_res(res)
    k = np.maximum(res - cell_resolution(arr), 0)
    out: np.ndarray = np.power(7, k, dtype=np.int64)
    u = arr.view(np.uint64)
    rs = cell_resolution(arr).astype(np.uint64)
    digits = (u >> (np.uint64(3) * (np.uint64(15) - rs))) & ((np.uint64(1) << (np.uint64(3) * rs)) - np.uint64(1))
    pent = np.isin((u >> np.uint64(45)) & np.uint64(0x7F), _PENTAGON_BASE_CELLS) & (digits == 0)
    out[pent] = 1 + 5 * (out[pent] - 1) // 6
    return out


def _line_candidates(lines: Any, res: int) -> np.ndarray:
    """A superset of the cells of ``res`` that ``lines`` touch (any geometry: polygons by their outlines)."""
    parts = shapely.get_parts(shapely.get_parts(lines))
    parts = np.asarray([shapely.boundary(p) if p.geom_type in ("Polygon", "MultiPolygon") else p for p in parts],
                       dtype=object)
    parts = shapely.get_parts(parts)
    parts = parts[(shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)] if parts.size else parts
    if parts.size == 0:
        return np.zeros(0, dtype=np.int64)
    return _touch_candidates(shapely.multilinestrings(parts), res)


def zone_cover(zone: Polygon | MultiPolygon, *, res: int, coarse_res: int = 5, borders: Any = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The cells of :func:`zone_weights` with the zone's interior compacted: coarse cells wherever they can stand.

    Returns cells of mixed resolution, ``coarse_res`` .. ``res``: a cell coarser than ``res`` stands for all its
    descendants at ``res``, every one of which is entirely inside the zone (fraction 1); cells at ``res`` carry
    the same fractions as :func:`zone_weights`. Expanding every coarse cell to its descendants at ``res`` gives
    exactly the cells and fractions of ``zone_weights(zone, res=res)`` (the H3 hierarchy is logical: a cell's
    descendants do not tile its hexagon, so a coarse cell's figure must be the sum of its descendants, never
    its own geometry).

    Only the zone's boundary is worked at ``res`` (the cost grows with the perimeter, not the area). A coarse
    cell none of whose descendants may touch the boundary has its descendants all inside or all outside, as the
    set of a cell's descendants is connected; its centre, the centre of its central descendant, decides.

    Parameters
    ----------
    zone : shapely Polygon or MultiPolygon
        In EPSG:4326 (lon, lat), valid.
    res : int
        The fine resolution (that of the population cells).
    coarse_res : int
        The coarsest resolution returned (0 .. ``res``).
    borders : shapely geometry, optional
        Lines (or polygons: their outlines) that no returned coarse cell may touch, e.g. the county borders: every
        coarse cell then lies inside one region, and a split of the zone by region can take each returned cell
        by its centre, as for the cells of ``zone_weights``.

    Returns
    -------
    cells : ndarray of int64, sorted
    fraction : ndarray of float64 in (0, 1]

    Examples
    --------
    >>> from shapely.geometry import box
    >>> zone = box(111.0, 40.0, 111.6, 40.5)
    >>> cells, frac = zone_cover(zone, res=8)
    >>> flat, _ = zone_weights(zone, res=8)
    >>> sorted(set(cell_resolution(cells).tolist())), int((7 ** (8 - cell_resolution(cells))).sum()) == flat.size
    ([5, 6, 7, 8], True)
    """
    res = _check_res(res)
    zone = _check_zone(zone)
    if isinstance(coarse_res, bool) or not isinstance(coarse_res, (int, np.integer)) or not 0 <= coarse_res <= res:
        raise InvalidParameterError(field="coarse_res", value=coarse_res, allowed=f"an integer in 0..{res}")
    if zone.is_empty or zone.area == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    edge, edge_frac, blocked = _edge_fractions(zone, res)
    shapely.prepare(zone)
    if borders is not None and not borders.is_empty:
        # only the borders' parts inside the zone matter: a cell reaching a border outside the zone also reaches
        # the zone's boundary, and is worked at ``res`` for that
        blocked = np.union1d(blocked, _line_candidates(shapely.intersection(
            shapely.get_parts(shapely.boundary(shapely.get_parts(borders))), zone), res))
    # coarse candidates: parents of what may touch the boundary or a border, and cells whose centre is inside
    level = np.union1d(parent_cells(blocked, res=res, parent_res=coarse_res), _h3v_cells(h3v.geometry_to_cells(
        zone, coarse_res, containment_mode=h3ronpy.ContainmentMode.ContainsCentroid)))
    out: list[np.ndarray] = []
    for r in range(coarse_res, res):
        # parents of sorted cells are sorted (a parent's children are one run of ids): unique without sorting,
        # membership by binary search
        held = parent_cells(blocked, res=res, parent_res=r)
        held = held[np.r_[True, held[1:] != held[:-1]]] if held.size else held
        pos = np.minimum(np.searchsorted(held, level), max(held.size - 1, 0))
        stuck = held[pos] == level if held.size else np.zeros(level.size, dtype=bool)
        free = level[~stuck]
        if free.size:
            lon, lat = cell_centres(free)
            out.append(free[shapely.contains_xy(zone, lon, lat)])
        level = child_cells(level[stuck], child_res=r + 1)
    # at res: boundary cells carry their fraction, the others are inside or outside by their centre
    pos = np.minimum(np.searchsorted(edge, level), max(edge.size - 1, 0))
    on_edge = edge[pos] == level if edge.size else np.zeros(level.size, dtype=bool)
    lon, lat = cell_centres(level[~on_edge])
    inner = level[~on_edge][shapely.contains_xy(zone, lon, lat)]
    coarse = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    cells = np.concatenate([coarse, inner, edge])
    frac = np.concatenate([np.ones(coarse.size + inner.size), edge_frac])
    keep = frac > 0
    o = np.argsort(cells[keep])
    return cells[keep][o], frac[keep][o]
