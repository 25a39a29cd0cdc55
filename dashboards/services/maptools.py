"""The analyst's map tools: geodesic measuring, the coordinate readout (WGS84 and CGCS2000 Gauss-Krüger) and the
"go to" box.

Public: :func:`measure`, :func:`readout`, :func:`parse_goto`, :func:`dms`.

Numbers are geodesic on WGS84 (:mod:`geoops.gk`, :func:`geoops.geodesic.area_m2`), never Leaflet's planar maths:
a distance is the sum of the geodesics between the clicked points, an area the geodesic area of the polygon they
enclose. Gauss-Krüger coordinates are CGCS2000 3-degree zones with the zone number in front of Y (EPSG:4513-4533).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from shapely.geometry import Polygon

from geoops import geodesic
from geoops.errors import InvalidParameterError
from geoops.gk import from_gk, path_length_m, to_gk

__all__ = ["measure", "readout", "parse_goto", "dms"]

MAX_POINTS = 500
GOTO_ALLOWED = ("latitude and longitude in decimal degrees (40.84, 111.75 - either order within China), "
                "degrees-minutes-seconds (40°50'24\"N 111°45'E), or CGCS2000 Gauss-Krüger Y (zone-prefixed "
                "easting) and X (northing) in metres (37563254, 4523076)")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_DMS = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*[°º度d]\s*(?:(\d+(?:\.\d+)?)\s*['′分m]\s*)?"
                  r"(?:(\d+(?:\.\d+)?)\s*(?:\"|″|''|秒|s)\s*)?([NSEWnsew北南东西])?")


def measure(points: Any, *, kind: str) -> dict[str, Any]:
    """Length of the path through ``points`` ([[lon, lat], ...]) and, for ``kind="area"``, the area and perimeter of
    the polygon they enclose.

    Returns
    -------
    dict
        ``kind``, ``points`` (how many), ``length_m`` (the open path), and for areas ``area_m2`` and
        ``perimeter_m`` (the closed ring; None below three points).

    Raises
    ------
    InvalidParameterError
        ``kind`` not ``distance``/``area``, or points that are not [lon, lat] pairs in range.

    >>> m = measure([[116.0, 40.0], [117.0, 40.0], [117.0, 41.0]], kind="area")
    >>> round(m["length_m"]), round(m["area_m2"] / 1e6)
    (196438, 4741)
    """
    if kind not in ("distance", "area"):
        raise InvalidParameterError(field="kind", value=kind, allowed="distance, area")
    if not isinstance(points, Sequence) or len(points) > MAX_POINTS or not all(
            isinstance(p, Sequence) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in points):
        raise InvalidParameterError(field="points", value=points, allowed=f"up to {MAX_POINTS} [lon, lat] pairs")
    lon = [float(p[0]) for p in points]
    lat = [float(p[1]) for p in points]
    out: dict[str, Any] = {"kind": kind, "points": len(points), "length_m": path_length_m(lon, lat),
                           "area_m2": None, "perimeter_m": None}
    if kind == "area" and len(points) >= 3:
        out["area_m2"] = float(geodesic.area_m2(Polygon(list(zip(lon, lat, strict=True)))))
        out["perimeter_m"] = path_length_m(lon + lon[:1], lat + lat[:1])
    return out


def dms(value: float, positive: str, negative: str) -> str:
    """Degrees, minutes and seconds (one decimal) with a hemisphere letter.

    >>> dms(40.84, "N", "S"), dms(-0.5, "E", "W")
    ('40°50\\'24.0"N', '0°30\\'00.0"W')
    """
    hemi = positive if value >= 0 else negative
    total = round(abs(value) * 36000)  # tenths of a second
    d, rest = divmod(total, 36000)
    m, s = divmod(rest, 600)
    return f"{d}°{m:02d}'{s / 10:04.1f}\"{hemi}"


def readout(lon: float, lat: float) -> dict[str, Any]:
    """The position under the mouse: WGS84 decimal and DMS, and CGCS2000 3-degree Gauss-Krüger (None outside
    China's zones).

    >>> r = readout(111.75, 40.84)
    >>> r["gk"]["zone"], r["gk"]["epsg"], round(r["gk"]["y"]), r["dms"]
    (37, 4525, 37563254, '40°50\\'24.0"N 111°45\\'00.0"E')
    """
    out: dict[str, Any] = {"lon": lon, "lat": lat, "dms": f"{dms(lat, 'N', 'S')} {dms(lon, 'E', 'W')}", "gk": None}
    try:
        p = to_gk(lon, lat)
    except InvalidParameterError:
        return out
    out["gk"] = {"zone": p.zone, "epsg": p.epsg, "cm": p.central_meridian_deg, "x": p.northing_m, "y": p.easting_m}
    return out


def _in_china(lon: float, lat: float) -> bool:
    return 73.0 <= lon <= 136.0 and 3.0 <= lat <= 54.0


def _lat_lon(a: float, b: float) -> tuple[float, float]:
    """Two numbers as (lat, lon): the order that puts the point in China, else latitude first."""
    if not _in_china(b, a) and _in_china(a, b):
        return b, a
    return a, b


def parse_goto(text: Any, *, service_area: Sequence[float]) -> tuple[float, float, str]:
    """(lon, lat, how it was read: ``wgs84``, ``dms`` or ``gk``) from what a user typed in the "go to" box.

    Two decimal numbers are latitude and longitude in either order (within China the two ranges do not overlap, so
    the order is never ambiguous); numbers of millions of metres are Gauss-Krüger Y and X (the zone-prefixed easting
    is the larger); degrees with ° or 度 are read as degrees-minutes-seconds, N/S/E/W (北南东西) naming the axis.

    Raises
    ------
    InvalidParameterError
        Anything else, or a place outside ``service_area`` (the message says what was read and what is allowed).

    >>> parse_goto("40.84, 111.75", service_area=(73, 18, 135.5, 54))
    (111.75, 40.84, 'wgs84')
    >>> [round(v, 4) if isinstance(v, float) else v for v in parse_goto("37563254 4523076", service_area=(73, 18, 135.5, 54))]
    [111.75, 40.84, 'gk']
    >>> parse_goto("40°50'24\\"N 111°45'E", service_area=(73, 18, 135.5, 54))[:2]
    (111.75, 40.84)
    """
    raw = str(text or "").strip()
    if not raw or len(raw) > 120:
        raise InvalidParameterError(field="goto", value=raw, allowed=GOTO_ALLOWED)
    how = "wgs84"
    if re.search(r"[°º度]", raw):
        parts = [m for m in _DMS.finditer(raw) if m.group(1)]
        if len(parts) != 2:
            raise InvalidParameterError(field="goto", value=raw, allowed=GOTO_ALLOWED)
        values: dict[str, float] = {}
        plain: list[float] = []
        for m in parts:
            deg, mins, secs, hemi = m.group(1), m.group(2), m.group(3), (m.group(4) or "").upper()
            v = abs(float(deg)) + float(mins or 0) / 60 + float(secs or 0) / 3600
            v = -v if deg.startswith("-") or hemi in ("S", "W", "南", "西") else v
            axis = {"N": "lat", "S": "lat", "北": "lat", "南": "lat", "E": "lon", "W": "lon", "东": "lon",
                    "西": "lon"}.get(hemi)
            if axis:
                values[axis] = v
            else:
                plain.append(v)
        if "lat" in values and "lon" in values:
            lat, lon = values["lat"], values["lon"]
        else:
            lat, lon = _lat_lon(*(plain + list(values.values()))[:2])
        how = "dms"
    else:
        nums = [float(n) for n in _NUMBER.findall(raw)]
        if len(nums) != 2 or not all(math.isfinite(n) for n in nums):
            raise InvalidParameterError(field="goto", value=raw, allowed=GOTO_ALLOWED)
        a, b = nums
        if max(abs(a), abs(b)) > 1000:
            y, x = (a, b) if a > b else (b, a)
            lon, lat = from_gk(y, x)
            how = "gk"
        else:
            lat, lon = _lat_lon(a, b)
    w, s, e, n = (float(v) for v in service_area)
    if not (w <= lon <= e and s <= lat <= n):
        raise InvalidParameterError(field="goto", value=raw, allowed=(
            f"a place inside the service area {w:g},{s:g},{e:g},{n:g} (read as lon {lon:.5f}, lat {lat:.5f})"))
    return float(lon), float(lat), how
