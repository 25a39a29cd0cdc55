"""CGCS2000 Gauss-Krüger coordinates in 3-degree zones (China's survey grid), and the geodesic length of a path.

Public: :data:`ZONE_WIDTH_DEG`, :data:`FIRST_ZONE`, :data:`LAST_ZONE`, :class:`GKPoint`, :func:`gk_zone`,
:func:`gk_epsg`, :func:`to_gk`, :func:`from_gk`, :func:`path_length_m`.

The 3-degree zones of China run from zone 25 (central meridian 75 E) to zone 45 (135 E); zone ``n`` has central
meridian ``3 n`` degrees and covers ``3 n - 1.5`` to ``3 n + 1.5``. Coordinates are written as surveyors in China
read them: X the northing, Y the easting **with the zone number in front** (false easting ``n * 1e6 + 500 km``), so
that a Y names its own zone: EPSG:4513-4533 ("CGCS2000 / 3-degree Gauss-Kruger zone 25..45"). Their twins
EPSG:4534-4554 ("... CM 75E..135E") are the same grid without the zone prefix.

The transformations are pyproj's (PROJ's exact transverse Mercator). Longitude/latitude in WGS84 are taken as
CGCS2000 (EPSG:4490): the two frames agree to a few centimetres, below anything a map click can resolve.

Examples
--------
>>> p = to_gk(111.75, 40.84)  # Hohhot
>>> p.zone, p.epsg, p.central_meridian_deg
(37, 4525, 111.0)
>>> round(p.easting_m), round(p.northing_m)
(37563254, 4523076)
>>> [round(v, 6) for v in from_gk(p.easting_m, p.northing_m)]
[111.75, 40.84]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike
from pyproj import Transformer

from geoops.errors import InvalidParameterError
from geoops.wgs84 import GEOD

__all__ = ["ZONE_WIDTH_DEG", "FIRST_ZONE", "LAST_ZONE", "GKPoint", "gk_zone", "gk_epsg", "to_gk", "from_gk",
           "path_length_m"]

ZONE_WIDTH_DEG = 3.0
#: zones of the EPSG 3-degree CGCS2000 grid (central meridians 75 E .. 135 E)
FIRST_ZONE, LAST_ZONE = 25, 45
_FIRST_EPSG = 4513  # zone 25; zone n is 4513 + n - 25
_CGCS2000 = "EPSG:4490"


@dataclass(frozen=True)
class GKPoint:
    """A point in one 3-degree zone: northing X and easting Y (zone-prefixed), metres."""

    zone: int
    epsg: int
    central_meridian_deg: float
    northing_m: float
    easting_m: float


def gk_zone(lon: float) -> int:
    """The 3-degree zone holding longitude ``lon`` (degrees east), 25..45.

    >>> gk_zone(111.4), gk_zone(112.6), gk_zone(73.5)
    (37, 38, 25)

    Raises
    ------
    InvalidParameterError
        A longitude outside China's zones (73.5 E .. 136.5 E).
    """
    if not np.isfinite(lon):
        raise InvalidParameterError(field="lon", value=lon, allowed="a finite longitude in degrees")
    zone = int(np.floor(lon / ZONE_WIDTH_DEG + 0.5))
    if not FIRST_ZONE <= zone <= LAST_ZONE:
        raise InvalidParameterError(field="lon", value=lon, allowed=(
            f"a longitude of the CGCS2000 3-degree zones {FIRST_ZONE}..{LAST_ZONE} "
            f"({(FIRST_ZONE - 0.5) * ZONE_WIDTH_DEG:g} E .. {(LAST_ZONE + 0.5) * ZONE_WIDTH_DEG:g} E)"))
    return zone


def gk_epsg(zone: int) -> int:
    """The EPSG code of zone ``zone`` with the zone-prefixed easting.

    >>> gk_epsg(37)
    4525
    """
    if not FIRST_ZONE <= zone <= LAST_ZONE:
        raise InvalidParameterError(field="zone", value=zone, allowed=f"{FIRST_ZONE}..{LAST_ZONE}")
    return _FIRST_EPSG + zone - FIRST_ZONE


@cache
def _forward(epsg: int) -> Transformer:
    return Transformer.from_crs(_CGCS2000, f"EPSG:{epsg}", always_xy=True)


@cache
def _inverse(epsg: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{epsg}", _CGCS2000, always_xy=True)


def to_gk(lon: float, lat: float, *, zone: int | None = None) -> GKPoint:
    """Longitude/latitude (degrees) -> Gauss-Krüger X/Y in ``zone`` (default: the zone holding ``lon``).

    Raises
    ------
    InvalidParameterError
        A latitude outside [-90, 90] or a longitude outside China's zones.
    """
    if not (np.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidParameterError(field="lat", value=lat, allowed="a latitude in [-90, 90]")
    z = gk_zone(lon) if zone is None else zone
    epsg = gk_epsg(z)
    easting, northing = _forward(epsg).transform(float(lon), float(lat))
    return GKPoint(z, epsg, z * ZONE_WIDTH_DEG, float(northing), float(easting))


def from_gk(easting_m: float, northing_m: float) -> tuple[float, float]:
    """Gauss-Krüger Y (zone-prefixed easting) and X (northing), metres -> (lon, lat) degrees.

    Raises
    ------
    InvalidParameterError
        An easting whose zone prefix is not one of 25..45, or whose offset within the zone is beyond 1000 km.
    """
    if not (np.isfinite(easting_m) and np.isfinite(northing_m)):
        raise InvalidParameterError(field="easting_m", value=(easting_m, northing_m), allowed="finite numbers")
    zone = int(easting_m // 1_000_000)
    if not FIRST_ZONE <= zone <= LAST_ZONE:
        raise InvalidParameterError(field="easting_m", value=easting_m, allowed=(
            f"a zone-prefixed easting, {FIRST_ZONE}000000 .. {LAST_ZONE}999999 m (zone number first)"))
    if not -10_000_000.0 <= northing_m <= 10_000_000.0:
        raise InvalidParameterError(field="northing_m", value=northing_m, allowed="-10000000 .. 10000000 m")
    lon, lat = _inverse(gk_epsg(zone)).transform(float(easting_m), float(northing_m))
    return float(lon), float(lat)


def path_length_m(lon: ArrayLike, lat: ArrayLike) -> float:
    """Geodesic length on WGS84 of the path through the points in order, metres (0 for fewer than two).

    >>> round(path_length_m([116.0, 117.0], [40.0, 40.0]))
    85393
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InvalidParameterError(field="lon,lat", value=(x.shape, y.shape), allowed="two 1-d arrays of one length")
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or (np.abs(y) > 90).any() or (np.abs(x) > 180).any():
        raise InvalidParameterError(field="lon,lat", value="non-finite or out-of-range coordinates",
                                    allowed="longitudes in [-180, 180], latitudes in [-90, 90]")
    if x.size < 2:
        return 0.0
    return float(GEOD.line_length(x, y))
