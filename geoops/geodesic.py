"""Geodesic maths on the WGS84 ellipsoid: distances, circles, buffers, multi-ring zones, areas.

Public: :func:`inverse`, :func:`distance_m`, :func:`bearing_deg`, :func:`circle`, :func:`buffer`,
:func:`rings`, :func:`area_m2`, :func:`distance_to_geometry_m`.

All coordinates are longitude/latitude in degrees, EPSG:4326, in shapely's ``(x, y) = (lon, lat)``
order. Every distance is a geodesic distance on WGS84 (``pyproj.Geod``), in metres.

Conventions
-----------
* **Edges of the source geometry** are straight lines in longitude/latitude, as in GeoJSON (RFC 7946
  section 3.1.1), shapely and PostGIS ``geometry``. A 1,000 km edge along 42 N therefore follows the
  parallel, not the great circle (which would bulge about 27 km north). Add vertices to the source if
  a great-circle edge is meant.
* **Buffers** are built in a local azimuthal-equidistant (AEQD) projection on the ellipsoid centred on
  each piece of the feature (see :func:`buffer`), then returned in EPSG:4326. Every vertex of a buffer's
  boundary lies within 0.5 % of the requested distance from the source (the tests check this against a
  brute-force ``pyproj.Geod`` oracle in 18-54 N, 73-135 E for 50 m .. 500 km and sources up to
  1,000 km long). The antimeridian and the poles are not supported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from geoops.errors import CRSError, InvalidGeometryError, InvalidParameterError
from geoops.validate import require_geometry
from geoops.wgs84 import GEOD, METRES_PER_DEGREE, R_MEAN_M

__all__ = [
    "GEOD",
    "MAX_DISTANCE_M",
    "MAX_RINGS",
    "inverse",
    "distance_m",
    "bearing_deg",
    "circle",
    "buffer",
    "rings",
    "area_m2",
    "distance_to_geometry_m",
]

#: Largest buffer / ring / circle distance accepted, metres.
MAX_DISTANCE_M = 500_000.0
#: Largest number of rings in one :func:`rings` call.
MAX_RINGS = 20

# A piece of a buffered feature reaches at most this far (piece half-length + buffer distance) from the
# centre of its AEQD projection. AEQD is exact along radii and stretches the azimuthal direction by
# k = s / m(s) ~ 1 + (s/R)^2 / 6 (m = reduced length), so within 650 km lengths are off by < 0.18 %.
_MAX_REACH_M = 650_000.0
# ... and no piece is longer than this, whatever the distance.
_MAX_PIECE_M = 400_000.0
# Source edges are straight in lon/lat, hence curved in AEQD; they are densified so that the chord
# departs from the curve by less than this fraction of the buffer distance.
_CHORD_TOLERANCE = 5e-4
# Before the planar buffer, the projected source is simplified (Douglas-Peucker) by this fraction of the
# buffer distance: it moves the offset curve by at most that much and keeps GEOS fast on detailed sources.
_SIMPLIFY_TOLERANCE = 2e-4


# --------------------------------------------------------------------------------------------------
# checks


def _check_distance(value: Any, field: str) -> float:
    """Return ``value`` as a float in (0, MAX_DISTANCE_M] or raise naming ``field``."""
    allowed = f"a number of metres in (0, {MAX_DISTANCE_M:.0f}]"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(
            "not a number", field=field, value=value, allowed=allowed, code="distance_out_of_range"
        )
    d = float(value)
    if not (math.isfinite(d) and 0.0 < d <= MAX_DISTANCE_M):
        raise InvalidParameterError(field=field, value=value, allowed=allowed, code="distance_out_of_range")
    return d


def _check_lonlat_arrays(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    field: str,
    error: type[InvalidParameterError] | type[InvalidGeometryError] = InvalidParameterError,
) -> None:
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        raise error(
            "coordinates must be finite",
            field=field,
            value=_first_bad(lon, lat),
            allowed="finite lon/lat in degrees",
            code="coordinates_not_finite",
        )
    if lon.size and (np.abs(lon).max() > 180.0 or np.abs(lat).max() > 90.0):
        raise error(
            "coordinates out of range",
            field=field,
            value=_first_bad(lon, lat),
            allowed="lon in [-180, 180], lat in [-90, 90] (EPSG:4326, lon first)",
            code="coordinates_out_of_range",
        )


def _first_bad(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[float, float] | None:
    bad = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180.0) | (np.abs(lat) > 90.0)
    idx = np.flatnonzero(bad.ravel())
    return (float(lon.ravel()[idx[0]]), float(lat.ravel()[idx[0]])) if idx.size else None


def _check_geometry(geom: Any, field: str = "geometry") -> BaseGeometry:
    g = require_geometry(geom, field=field)
    xy = shapely.get_coordinates(g)
    _check_lonlat_arrays(xy[:, 0], xy[:, 1], field, InvalidGeometryError)
    return g


# --------------------------------------------------------------------------------------------------
# distances


def inverse(
    lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Geodesic distance and forward azimuth from point(s) 1 to point(s) 2 (vectorised, broadcasting).

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Degrees, EPSG:4326. Broadcast against each other.

    Returns
    -------
    distance_m : ndarray
        Geodesic distance on WGS84, metres.
    azimuth_deg : ndarray
        Forward azimuth at point 1, degrees clockwise from north in [0, 360); NaN where the points
        coincide (no direction).

    Raises
    ------
    InvalidParameterError
        Non-finite or out-of-range coordinates.

    Examples
    --------
    >>> d, az = inverse(116.0, 40.0, 116.0, 41.0)
    >>> round(float(d)), round(float(az), 6)
    (111044, 0.0)
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (lon1, lat1, lon2, lat2)))
    shape = arrays[0].shape
    lo1, la1, lo2, la2 = (np.ascontiguousarray(a.ravel()) for a in arrays)
    _check_lonlat_arrays(lo1, la1, "lon1/lat1")
    _check_lonlat_arrays(lo2, la2, "lon2/lat2")
    az, _, dist = GEOD.inv(lo1, la1, lo2, la2)
    az = np.mod(np.asarray(az, dtype=float), 360.0)
    dist = np.asarray(dist, dtype=float)
    az[dist == 0.0] = np.nan
    return dist.reshape(shape), az.reshape(shape)


def distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> NDArray[np.float64]:
    """Geodesic distance on WGS84 in metres (see :func:`inverse`).

    Examples
    --------
    >>> round(float(distance_m(116.39, 39.91, 121.47, 31.23)))  # Beijing - Shanghai
    1066993
    """
    return inverse(lon1, lat1, lon2, lat2)[0]


def bearing_deg(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> NDArray[np.float64]:
    """Forward azimuth from point 1 to point 2, degrees clockwise from north in [0, 360).

    See :func:`inverse`.


    Examples
    --------
    >>> round(float(bearing_deg(116.0, 40.0, 117.0, 40.0)), 2)
    89.68
    """
    return inverse(lon1, lat1, lon2, lat2)[1]


# --------------------------------------------------------------------------------------------------
# local azimuthal-equidistant projection on the ellipsoid


def _aeqd_forward(
    lon0: float, lat0: float, lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> NDArray[np.float64]:
    """lon/lat -> (x, y) metres in the ellipsoidal AEQD centred on (lon0, lat0).

    This is the definition of the projection (PROJ's ``+proj=aeqd`` on an ellipsoid does the same):
    the point at geodesic distance s and azimuth a from the centre maps to (s sin a, s cos a).
    """
    n = lon.shape[0]
    az, _, dist = GEOD.inv(np.full(n, lon0), np.full(n, lat0), lon, lat)
    a = np.radians(np.asarray(az, dtype=float))
    dist = np.asarray(dist, dtype=float)
    return np.column_stack([dist * np.sin(a), dist * np.cos(a)])


def _aeqd_inverse(lon0: float, lat0: float, xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """(x, y) metres in the AEQD centred on (lon0, lat0) -> lon/lat degrees."""
    n = xy.shape[0]
    dist = np.hypot(xy[:, 0], xy[:, 1])
    az = np.degrees(np.arctan2(xy[:, 0], xy[:, 1]))
    lon, lat, _ = GEOD.fwd(np.full(n, lon0), np.full(n, lat0), az, dist)
    return np.column_stack([np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)])


def _polygon_to_lonlat(poly: Polygon, lon0: float, lat0: float) -> Polygon:
    shell = _aeqd_inverse(lon0, lat0, np.asarray(poly.exterior.coords))
    holes = [_aeqd_inverse(lon0, lat0, np.asarray(r.coords)) for r in poly.interiors]
    return Polygon(shell, holes)


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    """The polygons of any geometry (dropping lines and points of a collection)."""
    return (
        [
            g
            for g in shapely.get_parts(shapely.get_parts(geom)).tolist()
            if isinstance(g, Polygon) and not g.is_empty
        ]
        if not isinstance(geom, Polygon)
        else ([geom] if not geom.is_empty else [])
    )


def _as_polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    polys = []
    for p in _polygons(geom):
        polys.append(orient(p, sign=1.0))  # GeoJSON (RFC 7946): exterior counter-clockwise
    if len(polys) == 1:
        return polys[0]
    return MultiPolygon(polys)


# --------------------------------------------------------------------------------------------------
# circles and buffers


def circle(lon: float, lat: float, *, radius_m: float, segments: int = 128) -> Polygon:
    """True geodesic circle: the polygon whose vertices are exactly ``radius_m`` from the centre.

    Parameters
    ----------
    lon, lat : float
        Centre, degrees, EPSG:4326.
    radius_m : float
        Geodesic radius in metres, in (0, 500000].
    segments : int, default 128
        Number of vertices (8 .. 4096), at equal azimuth steps (``pyproj.Geod.fwd``).

    Returns
    -------
    shapely.Polygon
        In lon/lat, exterior counter-clockwise. Each vertex is at ``radius_m`` to within micrometres;
        the edges between vertices cut inside the circle by radius * (1 - cos(pi / segments)), 0.03 % at 128.

    Raises
    ------
    InvalidParameterError
        Radius out of range, bad centre or segments.

    Examples
    --------
    >>> c = circle(116.4, 39.9, radius_m=1000)
    >>> len(c.exterior.coords)
    129
    >>> round(float(distance_m(116.4, 39.9, *c.exterior.coords[7])), 6)
    1000.0
    """
    radius = _check_distance(radius_m, "radius_m")
    if isinstance(segments, bool) or not isinstance(segments, (int, np.integer)) or not 8 <= segments <= 4096:
        raise InvalidParameterError(
            field="segments", value=segments, allowed="an integer in [8, 4096]", code="invalid_parameter"
        )
    lo = np.asarray([lon], dtype=float)
    la = np.asarray([lat], dtype=float)
    _check_lonlat_arrays(lo, la, "lon/lat")
    az = np.linspace(0.0, 360.0, int(segments), endpoint=False)[::-1]  # clockwise azimuths -> CCW ring
    plon, plat, _ = GEOD.fwd(
        np.full(az.size, float(lon)), np.full(az.size, float(lat)), az, np.full(az.size, radius)
    )
    return Polygon(np.column_stack([plon, plat]))


def _densify_lonlat(coords: NDArray[np.float64], max_step_m: float) -> NDArray[np.float64]:
    """Insert vertices on straight lon/lat edges so no edge is longer than ``max_step_m`` (roughly)."""
    if coords.shape[0] < 2:
        return coords
    line = shapely.segmentize(LineString(coords), max_step_m / METRES_PER_DEGREE)
    return np.asarray(shapely.get_coordinates(line), dtype=float)


def _pieces(coords: NDArray[np.float64], max_piece_m: float) -> list[NDArray[np.float64]]:
    """Cut a (densified) path into consecutive pieces at most ``max_piece_m`` long (sharing end vertices)."""
    if coords.shape[0] < 2:
        return [coords]
    _, _, seg = GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    pieces = []
    start = 0
    n = coords.shape[0]
    while start < n - 1:
        stop = int(np.searchsorted(cum, cum[start] + max_piece_m, side="right")) - 1
        stop = max(stop, start + 1)  # an edge longer than a piece cannot happen after densification
        pieces.append(coords[start : stop + 1])
        start = stop
    return pieces


def _buffer_path(
    coords: NDArray[np.float64], dist: float, quad_segs: int, max_piece_m: float, step_m: float
) -> list[Polygon]:
    """Buffer a lon/lat path (LineString or ring coordinates) piece by piece, each in its own AEQD."""
    dense = _densify_lonlat(coords, step_m)
    out: list[Polygon] = []
    for piece in _pieces(dense, max_piece_m):
        if piece.shape[0] == 1 or np.all(piece == piece[0]):
            out.append(circle(float(piece[0, 0]), float(piece[0, 1]), radius_m=dist, segments=4 * quad_segs))
            continue
        # centre: the vertex half-way along the piece, so every piece vertex is within half its length
        _, _, seg = GEOD.inv(piece[:-1, 0], piece[:-1, 1], piece[1:, 0], piece[1:, 1])
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        mid = int(np.searchsorted(cum, cum[-1] / 2.0))
        lon0, lat0 = float(piece[mid, 0]), float(piece[mid, 1])
        xy = _aeqd_forward(lon0, lat0, piece[:, 0], piece[:, 1])
        line = shapely.simplify(LineString(xy), _SIMPLIFY_TOLERANCE * dist, preserve_topology=False)
        planar = shapely.buffer(line, dist, quad_segs=quad_segs)
        for poly in _polygons(planar):
            out.append(_polygon_to_lonlat(poly, lon0, lat0))
    return out


def _buffer_polygon_whole(poly: Polygon, dist: float, quad_segs: int, step_m: float) -> list[Polygon] | None:
    """Buffer a polygon in one AEQD centred on its bounding box, or None when it is too large for one.

    Buffering the polygon as an area (rather than its rings as lines) is what GEOS does fastest, and the
    interior comes for free.
    """
    rings_ll = [
        _densify_lonlat(np.asarray(r.coords)[:, :2], step_m) for r in (poly.exterior, *poly.interiors)
    ]
    minx, miny, maxx, maxy = poly.bounds
    lon0, lat0 = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    pts = np.concatenate(rings_ll)
    _, _, reach = GEOD.inv(np.full(len(pts), lon0), np.full(len(pts), lat0), pts[:, 0], pts[:, 1])
    if float(np.max(reach)) + dist > _MAX_REACH_M:
        return None
    rings_xy = [_aeqd_forward(lon0, lat0, r[:, 0], r[:, 1]) for r in rings_ll]
    planar_src: BaseGeometry = Polygon(rings_xy[0], rings_xy[1:])
    if not planar_src.is_valid:
        planar_src = shapely.make_valid(planar_src)
    planar_src = shapely.simplify(planar_src, _SIMPLIFY_TOLERANCE * dist, preserve_topology=True)
    planar = shapely.buffer(planar_src, dist, quad_segs=quad_segs)
    return [_polygon_to_lonlat(p, lon0, lat0) for p in _polygons(planar)]


def buffer(geom: BaseGeometry, *, distance_m: float, segments: int = 128) -> Polygon | MultiPolygon:
    """Geodesic buffer of a point, line or polygon (or a multi-part / collection of them).

    Points get a true geodesic :func:`circle`. Lines and polygon boundaries are densified along their
    lon/lat-straight edges, cut into pieces short enough that each piece plus the buffer distance stays
    within 650 km of the piece's centre, and each piece is buffered in its own ellipsoidal
    azimuthal-equidistant projection centred on that piece (exact along radii, azimuthal scale
    ``1 + (s/R)^2/6 < 1.0018``); the pieces are projected back and unioned, together with the polygon
    interiors. Hence each boundary vertex is within 0.5 % of ``distance_m`` from the source (in practice
    within 0.2 %, the tests check the 0.5 % with a brute-force ``pyproj.Geod`` oracle).

    Parameters
    ----------
    geom : shapely geometry
        Point, LineString, Polygon, their Multi* forms or a GeometryCollection of them; lon/lat
        degrees, EPSG:4326; edges straight in lon/lat. Must not cross the antimeridian.
    distance_m : float
        Buffer distance in metres, in (0, 500000].
    segments : int, default 128
        Vertices per full turn of a round cap or join (and of a point's circle), 8 .. 4096.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        In lon/lat (EPSG:4326), exteriors counter-clockwise; polygon sources lie inside their buffer.

    Raises
    ------
    InvalidParameterError
        ``distance_m`` or ``segments`` out of range.
    InvalidGeometryError
        Not a geometry, empty, non-finite or out-of-range coordinates.

    Examples
    --------
    >>> from shapely.geometry import LineString
    >>> b = buffer(LineString([(116.0, 40.0), (116.1, 40.0)]), distance_m=500)
    >>> b.geom_type
    'Polygon'
    >>> round(float(area_m2(b)) / 1e6, 2)  # ~ 8.53 km x 1 km + a 500 m disc
    9.32
    """
    dist = _check_distance(distance_m, "distance_m")
    if isinstance(segments, bool) or not isinstance(segments, (int, np.integer)) or not 8 <= segments <= 4096:
        raise InvalidParameterError(
            field="segments", value=segments, allowed="an integer in [8, 4096]", code="invalid_parameter"
        )
    geom = _check_geometry(geom)
    quad_segs = max(2, int(segments) // 4)
    max_piece_m = min(_MAX_PIECE_M, 2.0 * (_MAX_REACH_M - dist))
    # chord tolerance: sagitta = step^2 * kappa / 8 with the curvature of a lon/lat line kappa <= 2 / R
    step_m = float(np.clip(math.sqrt(8.0 * _CHORD_TOLERANCE * dist * R_MEAN_M / 2.0), 1.0, 20_000.0))

    parts: list[Polygon] = []
    for part in shapely.get_parts(shapely.get_parts(geom)).tolist():  # flattens one level of collections
        for g in shapely.get_parts(part).tolist():
            if g.is_empty:
                continue
            if g.geom_type == "Point":
                parts.append(circle(g.x, g.y, radius_m=dist, segments=int(segments)))
            elif g.geom_type in ("LineString", "LinearRing"):
                parts.extend(_buffer_path(np.asarray(g.coords), dist, quad_segs, max_piece_m, step_m))
            elif g.geom_type == "Polygon":
                whole = _buffer_polygon_whole(g, dist, quad_segs, step_m)
                if whole is not None:
                    parts.extend(whole)
                    continue
                # too large for one projection: the polygon itself plus its rings buffered piece by piece
                parts.append(shapely.make_valid(g) if not g.is_valid else g)
                for ring in (g.exterior, *g.interiors):
                    parts.extend(_buffer_path(np.asarray(ring.coords), dist, quad_segs, max_piece_m, step_m))
            else:  # pragma: no cover - get_parts flattened everything above
                raise InvalidGeometryError(
                    field="geometry",
                    value=g.geom_type,
                    allowed="Point, LineString, Polygon, Multi*, GeometryCollection",
                )
    merged = shapely.union_all(shapely.make_valid(np.asarray(parts, dtype=object)))
    return _as_polygonal(merged)


def _check_distances(distances_m: Any) -> list[float]:
    field = "distances_m"
    allowed = f"1 to {MAX_RINGS} strictly increasing distances in metres, each in (0, {MAX_DISTANCE_M:.0f}]"
    if isinstance(distances_m, (str, bytes)) or not isinstance(distances_m, (Sequence, np.ndarray, Iterable)):
        raise InvalidParameterError(
            "not a list of numbers", field=field, value=distances_m, allowed=allowed, code="invalid_distances"
        )
    values = list(distances_m)
    if not 1 <= len(values) <= MAX_RINGS:
        raise InvalidParameterError(
            f"{len(values)} distances", field=field, value=values, allowed=allowed, code="invalid_distances"
        )
    out = []
    for i, v in enumerate(values):
        try:
            out.append(_check_distance(v, f"{field}[{i}]"))
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                f"item {i} is {v!r}", field=field, value=values, allowed=allowed, code="invalid_distances"
            ) from exc
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            raise InvalidParameterError(
                f"not strictly increasing at item {i} ({out[i - 1]:g} then {out[i]:g})",
                field=field,
                value=values,
                allowed=allowed,
                code="invalid_distances",
            )
    return out


def rings(geom: BaseGeometry, *, distances_m: Sequence[float], segments: int = 128) -> gpd.GeoDataFrame:
    """Multi-ring impact zones: one ring per distance, the buffer at that distance minus the previous one.

    Ring 0 is the whole buffer at ``distances_m[0]`` (it contains the source); ring i > 0 is
    ``buffer(d_i) - buffer(d_{i-1})``. The rings do not overlap and together cover ``buffer(d_last)``.

    Parameters
    ----------
    geom : shapely geometry
        Source in lon/lat (see :func:`buffer`).
    distances_m : sequence of float
        1 to 20 strictly increasing distances in metres, each in (0, 500000].
    segments : int, default 128
        Passed to :func:`buffer`.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per distance (index 0..n-1), columns ``distance_m`` (outer), ``inner_distance_m``
        (0 for the first ring), ``area_m2`` (geodesic area of the ring), ``geometry`` (Polygon or
        MultiPolygon); crs EPSG:4326.

    Raises
    ------
    InvalidParameterError
        Distances empty, not increasing, out of range (the message lists what was received).
    InvalidGeometryError
        See :func:`buffer`.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> z = rings(Point(116.4, 39.9), distances_m=[1000, 3000])
    >>> z[["distance_m", "inner_distance_m"]].values.tolist()
    [[1000.0, 0.0], [3000.0, 1000.0]]
    >>> (z.area_m2 / 1e6).round(1).tolist()  # pi * 1^2 and pi * (3^2 - 1^2) km2
    [3.1, 25.1]
    """
    ds = _check_distances(distances_m)
    geom = _check_geometry(geom)
    outer = [buffer(geom, distance_m=d, segments=segments) for d in ds]
    geoms: list[BaseGeometry] = [outer[0]]
    for i in range(1, len(outer)):
        geoms.append(_as_polygonal(shapely.difference(outer[i], outer[i - 1])))
    frame = gpd.GeoDataFrame(
        {
            "distance_m": np.asarray(ds, dtype=float),
            "inner_distance_m": np.asarray([0.0, *ds[:-1]], dtype=float),
            "area_m2": area_m2(np.asarray(geoms, dtype=object)),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    return frame


# --------------------------------------------------------------------------------------------------
# areas


def _ring_area(coords: NDArray[np.float64]) -> float:
    if coords.shape[0] < 4:
        return 0.0
    area, _ = GEOD.polygon_area_perimeter(coords[:, 0], coords[:, 1])
    return abs(float(area))


def _geometry_area(geom: BaseGeometry | None) -> float:
    if geom is None:
        return math.nan
    if geom.is_empty:
        return 0.0
    total = 0.0
    for poly in _polygons(geom):
        total += _ring_area(np.asarray(poly.exterior.coords))
        total -= sum(_ring_area(np.asarray(r.coords)) for r in poly.interiors)
    return total


def area_m2(geoms: BaseGeometry | ArrayLike | gpd.GeoSeries) -> NDArray[np.float64]:
    """Geodesic area on WGS84 of each geometry, square metres.

    Each polygon counts as |exterior| - sum |holes| whatever the ring orientation; edges are taken as
    geodesics between vertices (``pyproj.Geod.polygon_area_perimeter``), which differs from
    lon/lat-straight edges by a negligible amount for the short edges of buffers and H3 cells.
    Points and lines have area 0; empty geometries 0; missing (None) NaN.

    Parameters
    ----------
    geoms : shapely geometry, array_like of geometries, or GeoSeries
        Lon/lat degrees. A GeoSeries / GeoDataFrame must have crs EPSG:4326.

    Returns
    -------
    ndarray of float
        Same shape as ``geoms`` (0-d for a single geometry).

    Raises
    ------
    CRSError
        A GeoSeries without crs or with a crs other than EPSG:4326.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> a = area_m2([box(116.0, 40.0, 117.0, 41.0), None])
    >>> round(float(a[0]) / 1e6), bool(np.isnan(a[1]))
    (9413, True)
    """
    if isinstance(geoms, (gpd.GeoSeries, gpd.GeoDataFrame)):
        crs = geoms.crs
        if crs is None or crs.to_epsg() != 4326:
            raise CRSError(
                "area_m2 needs lon/lat",
                field="crs",
                value=None if crs is None else str(crs),
                allowed="EPSG:4326",
                code="crs_error",
            )
        geoms = np.asarray(geoms.geometry.values, dtype=object)
    arr = np.asarray(geoms, dtype=object)
    out = np.empty(arr.shape, dtype=float)
    for idx, g in np.ndenumerate(arr):
        if g is not None and not isinstance(g, BaseGeometry):
            raise InvalidGeometryError(
                "not a geometry",
                field="geometry",
                value=type(g).__name__,
                allowed="shapely geometries or None",
                code="not_a_geometry",
            )
        out[idx] = _geometry_area(g)
    return out


# --------------------------------------------------------------------------------------------------
# point to geometry


def _edges(geom: BaseGeometry) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """All edges of a geometry as (starts, ends) lon/lat arrays; a point is a zero-length edge."""
    starts, ends = [], []
    for g in shapely.get_parts(shapely.get_parts(geom)).tolist():
        for part in shapely.get_parts(g).tolist():
            if part.is_empty:
                continue
            if part.geom_type == "Point":
                c = np.asarray(part.coords)[:, :2]
                starts.append(c)
                ends.append(c)
                continue
            rings_ = [part.exterior, *part.interiors] if part.geom_type == "Polygon" else [part]
            for ring in rings_:
                c = np.asarray(ring.coords)[:, :2]
                if c.shape[0] == 1:
                    starts.append(c)
                    ends.append(c)
                else:
                    starts.append(c[:-1])
                    ends.append(c[1:])
    return np.concatenate(starts), np.concatenate(ends)


#: widening of the planar cut-off of :func:`_nearby_edges` beyond the bound of the sphere (the ellipsoid's degrees
#: differ by < 1 %, and the geodesic may bow poleward of the chord): generous, the cut only has to keep the far side
_NEARBY_MARGIN = 1.5


def _closest_t(rel: NDArray[np.float64], d: NDArray[np.float64]) -> NDArray[np.float64]:
    """For segments ``rel -> rel + d`` (the origin being the point), the parameter in [0, 1] of each one's point
    closest to the origin (0 for a segment of no length)."""
    dd = np.einsum("ij,ij->i", d, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(dd > 0.0, -np.einsum("ij,ij->i", rel, d) / dd, 0.0)
    return np.clip(t, 0.0, 1.0)


def _nearby_edges(
    lon: float, lat: float, a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The edges a->b that can hold the geodesically nearest point to (lon, lat): a county border of 50,000
    vertices is searched near the point, not along its whole length.

    Planar distance in degrees (lon, lat unscaled) bounds the geodesic distance from both sides: a point at planar
    distance p lies within p degrees of latitude-length (<= 111.7 km each) of the query, and any point at planar
    distance q is at least q * cos(phi) degrees away, phi the highest latitude between them. So an edge whose planar
    distance exceeds p_min / cos(phi) (widened by :data:`_NEARBY_MARGIN`) cannot be the nearest. Near a pole or the
    antimeridian the bound does not hold and every edge is kept.
    """
    if a.shape[0] < 64:
        return a, b
    if np.abs(np.concatenate([a[:, 0], b[:, 0]]) - lon).max() > 180.0:
        return a, b  # edges across the antimeridian from the point: planar degrees mean nothing there
    rel = a - np.array([lon, lat])  # the edges with the point at the origin, in plain degrees
    d = b - a
    planar = np.hypot(*(rel + _closest_t(rel, d)[:, None] * d).T)
    p_min = float(planar.min())
    cut = p_min * _NEARBY_MARGIN
    for _ in range(2):  # the edges within the cut reach at most |lat| + cut; widen for the cosine there
        top = abs(lat) + cut
        if top >= 89.0:
            return a, b
        cut = p_min * _NEARBY_MARGIN / math.cos(math.radians(top))
    keep = planar <= cut + 1e-12
    return a[keep], b[keep]


def _closest_on_edges(
    lon: float, lat: float, a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """For each lon/lat-straight edge a->b, a point near its closest point to (lon, lat) and its distance.

    The edge is projected into the AEQD centred on the query point, where distances from the origin are
    exact geodesic distances; the parameter t of the closest point of the projected chord is mapped back
    onto the lon/lat edge and its geodesic distance computed exactly. The result is always the exact
    distance of a point of the edge (an upper bound of the edge's minimum).
    """
    pa = _aeqd_forward(lon, lat, a[:, 0], a[:, 1])
    pb = _aeqd_forward(lon, lat, b[:, 0], b[:, 1])
    pts = a + _closest_t(pa, pb - pa)[:, None] * (b - a)
    n = pts.shape[0]
    _, _, dist = GEOD.inv(np.full(n, lon), np.full(n, lat), pts[:, 0], pts[:, 1])
    return pts, np.asarray(dist, dtype=float)


def distance_to_geometry_m(lon: float, lat: float, geom: BaseGeometry) -> float:
    """Geodesic distance from a point to the nearest point of a geometry (0 inside a polygon).

    The geometry's edges are straight in lon/lat. Edges are cut into steps of at most ~1 km; for each step
    the closest point is found in an azimuthal-equidistant projection centred on the query point (where the
    distance from the centre is exact) and its true geodesic distance computed; the best few steps are then
    re-cut 32 times finer and searched again, twice (about 1 m steps). Only the edges that can hold the nearest
    point are searched (:func:`_nearby_edges`). Every returned value is the exact geodesic distance of an
    actual point of the geometry, so it is never below the true minimum; the tests bound the excess at
    < 1 mm + 1e-6 relative against a brute-force Geod search.

    Parameters
    ----------
    lon, lat : float
        Query point, degrees, EPSG:4326.
    geom : shapely geometry
        Lon/lat, EPSG:4326.

    Returns
    -------
    float
        Metres.

    Examples
    --------
    >>> from shapely.geometry import LineString
    >>> round(distance_to_geometry_m(116.05, 40.01, LineString([(116.0, 40.0), (116.1, 40.0)])), 1)
    1110.3
    """
    geom = _check_geometry(geom)
    _check_lonlat_arrays(np.asarray([lon], float), np.asarray([lat], float), "lon/lat")
    if _polygons(geom) and shapely.intersects(geom, shapely.Point(lon, lat)):
        return 0.0
    a, b = _nearby_edges(lon, lat, *_edges(geom))
    # stage 1: steps of <= ~1 km (in latitude-degree units, conservative in longitude)
    step_deg = 1000.0 / METRES_PER_DEGREE
    seg_len = np.hypot(*(b - a).T)
    n_sub = np.maximum(1, np.ceil(seg_len / step_deg)).astype(int)
    if n_sub.sum() > 2_000_000:
        n_sub = np.maximum(1, (n_sub * 2_000_000 // n_sub.sum())).astype(int)
    edge_idx = np.repeat(np.arange(a.shape[0]), n_sub)
    k = np.arange(edge_idx.size) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub)
    t0 = k / n_sub[edge_idx]
    t1 = (k + 1) / n_sub[edge_idx]
    sa = a[edge_idx] + t0[:, None] * (b - a)[edge_idx]
    sb = a[edge_idx] + t1[:, None] * (b - a)[edge_idx]
    _, dist = _closest_on_edges(lon, lat, sa, sb)
    best = float(dist.min())
    # stage 2: the best few steps re-cut 32 times finer, then the best few of those again (1/1,024 of a step, about
    # a metre, as one cut of 1,000 would, with 1/20 of the geodesic computations)
    for keep in (8, 4):
        cand = np.argsort(dist)[:keep]
        sa, sb = _recut(sa[cand], sb[cand], _RECUT)
        _, dist = _closest_on_edges(lon, lat, sa, sb)
        best = min(best, float(dist.min()))
    return best


#: how many parts each candidate step of :func:`distance_to_geometry_m` is cut into, twice
_RECUT = 32


def _recut(a: NDArray[np.float64], b: NDArray[np.float64], n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each segment a->b cut into ``n`` equal parts (lon/lat-straight), in order."""
    ts = np.linspace(0.0, 1.0, n + 1)
    pts = a[:, None, :] + ts[None, :, None] * (b - a)[:, None, :]
    return pts[:, :-1].reshape(-1, 2), pts[:, 1:].reshape(-1, 2)
