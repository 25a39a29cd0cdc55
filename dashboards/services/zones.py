"""Zones and points from a request, checked as data: inside the service area (a lon/lat swap is named), repaired
when that is safe, and within the limits.

Public: :data:`DEFAULT_RES`, :data:`RES_RANGE`, :data:`MAX_BATCH_POINTS`, :data:`MAX_SHELTER_DISTANCE_M`,
:func:`service_bbox`, :func:`circle_zone`, :func:`parse_zone`, :func:`check_points`.

The shape of a request (types, ranges, known members) is checked before, by the endpoint's JSON Schema; what is
checked here needs geometry: where a zone lies, how large it is, whether it is an area. Units: metres and square
metres; coordinates lon/lat EPSG:4326.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geoops import geodesic
from geoops.errors import InvalidGeometryError, InvalidParameterError
from geoops.validate import check_geometry, parse_geojson_geometry

__all__ = ["DEFAULT_RES", "RES_RANGE", "MAX_BATCH_POINTS", "MAX_SHELTER_DISTANCE_M", "service_bbox", "circle_zone",
           "parse_zone", "as_area", "check_points"]

#: H3 resolution of the analyses (res 8: about 0.74 km2 a cell) and the range a request may ask for
DEFAULT_RES = 8
RES_RANGE = (5, 10)
MAX_BATCH_POINTS = 100_000
MAX_SHELTER_DISTANCE_M = 100_000.0

ServiceArea = Sequence[float]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def service_bbox(service_area: ServiceArea) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` as floats, the form the geometry checks take."""
    w, s, e, n = (float(v) for v in service_area)
    return w, s, e, n


def circle_zone(center: Any, radius_m: Any, *, service_area: ServiceArea, field: str = "geometry"
                ) -> tuple[Polygon, dict[str, Any]]:
    """A geodesic circle from ``[lon, lat]`` and a radius in metres -> (polygon, properties to store with it).

    Raises
    ------
    InvalidParameterError
        ``center`` is not two numbers, or ``radius_m`` is not in (0, 500000].
    InvalidGeometryError
        The centre lies outside the service area (or looks like lon/lat swapped).

    Examples
    --------
    >>> poly, props = circle_zone([111.7, 40.8], 1000, service_area=(73, 18, 135.5, 54))
    >>> props, poly.geom_type
    ({'center': [111.7, 40.8], 'radius_m': 1000.0}, 'Polygon')
    """
    if not (isinstance(center, (list, tuple)) and len(center) == 2 and all(_is_number(v) for v in center)):
        raise InvalidParameterError(field=f"{field}.center", value=center, allowed="[lon, lat] in degrees")
    if not (_is_number(radius_m) and 0 < radius_m <= geodesic.MAX_DISTANCE_M):
        raise InvalidParameterError(field=f"{field}.radius_m", value=radius_m,
                                    allowed=f"a number in (0, {geodesic.MAX_DISTANCE_M:.0f}] metres")
    c, _ = check_geometry(Point(float(center[0]), float(center[1])), service_area=service_bbox(service_area),
                          field=f"{field}.center")
    cx, cy = c.coords[0][:2]
    return (geodesic.circle(cx, cy, radius_m=float(radius_m)), {"center": [cx, cy], "radius_m": float(radius_m)})


def as_area(zone: BaseGeometry, *, field: str = "geometry") -> Polygon | MultiPolygon:
    """``zone`` itself, known to be a (Multi)Polygon; anything else is ``zone_not_polygonal``.

    >>> as_area(Point(1, 2))
    Traceback (most recent call last):
    ...
    geoops.errors.InvalidGeometryError: geometry: a zone must be an area; got 'Point'; allowed: Polygon, MultiPolygon or {center, radius_m}
    """
    if not isinstance(zone, (Polygon, MultiPolygon)):
        raise InvalidGeometryError("a zone must be an area", field=field, value=zone.geom_type,
                                   allowed="Polygon, MultiPolygon or {center, radius_m}", code="zone_not_polygonal")
    return zone


def parse_zone(obj: Any, *, service_area: ServiceArea, max_area_km2: float, field: str = "geometry",
               polygonal: bool = True) -> tuple[BaseGeometry, list[str], float]:
    """A zone: GeoJSON (a geometry or a Feature) or a geodesic circle ``{"center": [lon, lat], "radius_m": r}``.

    Checked against ``service_area`` (west, south, east, north in degrees; lon/lat swaps are named), repaired when
    safe (the note says so) and, if ``polygonal``, required to be a (Multi)Polygon of at most ``max_area_km2``.

    Returns
    -------
    zone : shapely geometry
        Lon/lat, EPSG:4326.
    notes : list of str
        Repairs made.
    area_m2 : float
        Geodesic area.

    Raises
    ------
    InvalidParameterError
        Nothing given, or a circle with members other than ``center`` and ``radius_m``.
    InvalidGeometryError
        Malformed, outside the service area, not an area (``zone_not_polygonal``), too large (``zone_too_large``).
    """
    if isinstance(obj, Mapping) and "center" in obj and "type" not in obj:
        extra = sorted(set(obj) - {"center", "radius_m"})
        if extra:
            raise InvalidParameterError(field=f"{field}.{extra[0]}", value=obj[extra[0]], allowed="center, radius_m",
                                        code="unknown_parameter")
        zone: BaseGeometry
        zone, _ = circle_zone(obj.get("center"), obj.get("radius_m"), service_area=service_area, field=field)
        notes: list[str] = []
    else:
        if obj is None:
            raise InvalidParameterError(field=field, value=None, allowed="a GeoJSON geometry or {center, radius_m}",
                                        code="missing_parameter")
        zone, notes = check_geometry(parse_geojson_geometry(obj, field=field),
                                     service_area=service_bbox(service_area), field=field)
    area = float(geodesic.area_m2(zone))
    if polygonal:
        as_area(zone, field=field)
        if area / 1e6 > max_area_km2:
            raise InvalidGeometryError(f"zone of {area / 1e6:,.0f} km2", field=field,
                                       value=f"{area / 1e6:.1f} km2", allowed=f"at most {max_area_km2:g} km2 "
                                       "(SITROOM_MAX_ZONE_AREA_KM2)", code="zone_too_large")
    return zone, notes, area


def check_points(lon: Any, lat: Any, *, service_area: ServiceArea, field: str = "points"
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points as float arrays, each inside ``service_area``; the first one outside is named (``points[i]``).

    Raises
    ------
    InvalidGeometryError
        ``lonlat_swapped`` when the point would be inside with lon and lat exchanged, else ``outside_service_area``.

    Examples
    --------
    >>> check_points([111.7], [40.8], service_area=(73, 18, 135.5, 54))[0].tolist()
    [111.7]
    >>> check_points([111.7, 40.8], [40.8, 111.7], service_area=(73, 18, 135.5, 54))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoops.errors.InvalidGeometryError: points[1]: looks like lon/lat swapped; got [40.8, 111.7]; ...
    """
    x = np.array(lon, dtype=np.float64).ravel()
    y = np.array(lat, dtype=np.float64).ravel()
    w, s, e, n = service_bbox(service_area)
    bad = ~(np.isfinite(x) & np.isfinite(y) & (x >= w) & (x <= e) & (y >= s) & (y <= n))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        swapped = bool(w <= y[i] <= e and s <= x[i] <= n)
        allowed = f"lon in [{w:g}, {e:g}] and lat in [{s:g}, {n:g}] (the service area, lon first)"
        raise InvalidGeometryError("looks like lon/lat swapped" if swapped else
                                   f"{int(bad.sum())} of {x.size} points outside the service area",
                                   field=f"{field}[{i}]", value=[float(x[i]), float(y[i])], allowed=allowed,
                                   code="lonlat_swapped" if swapped else "outside_service_area")
    return x, y
