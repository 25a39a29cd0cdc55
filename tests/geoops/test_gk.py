"""CGCS2000 3-degree Gauss-Krüger (geoops.gk) against an independent oracle: PROJ's "CM" variant of each zone
(EPSG:4534-4554, no zone prefix) with the prefix added by hand, and pyproj's Geod for path lengths."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod, Transformer

from geoops.errors import InvalidParameterError
from geoops.gk import from_gk, gk_zone, path_length_m, to_gk

GEOD = Geod(ellps="WGS84")
RNG = np.random.default_rng(11)
# random points across China's 3-degree zones (73.5 E .. 135 E, 18 N .. 53 N)
POINTS = list(zip(RNG.uniform(73.6, 134.9, 60), RNG.uniform(18.0, 53.0, 60), strict=True))


@pytest.mark.parametrize("lon,lat", POINTS)
def test_to_gk_is_the_zone_s_transverse_mercator_with_the_zone_in_front(lon: float, lat: float) -> None:
    zone = int(round(lon / 3.0))  # central meridian 3 n, the nearest multiple of 3
    e, n = Transformer.from_crs("EPSG:4490", f"EPSG:{4534 + zone - 25}", always_xy=True).transform(lon, lat)
    p = to_gk(lon, lat)
    assert p.zone == zone and p.central_meridian_deg == 3.0 * zone and p.epsg == 4513 + zone - 25
    assert p.easting_m == pytest.approx(zone * 1e6 + e, abs=1e-3)
    assert p.northing_m == pytest.approx(n, abs=1e-3)
    back = from_gk(p.easting_m, p.northing_m)
    assert back == pytest.approx((lon, lat), abs=1e-9)


def test_zone_edges_are_half_way_between_central_meridians() -> None:
    assert (gk_zone(112.49), gk_zone(112.51)) == (37, 38)
    assert (gk_zone(73.5), gk_zone(136.49)) == (25, 45)


@pytest.mark.parametrize("lon", [73.4, 137.0, float("nan"), 10.0])
def test_a_longitude_outside_china_s_zones_is_refused_naming_it(lon: float) -> None:
    with pytest.raises(InvalidParameterError) as e:
        to_gk(lon, 40.0)
    assert e.value.field == "lon"


@pytest.mark.parametrize("easting,northing,field", [(563254.0, 4523076.0, "easting_m"),  # no zone prefix
                                                     (46_500_000.0, 4523076.0, "easting_m"),
                                                     (37_563_254.0, 2e7, "northing_m")])
def test_from_gk_refuses_what_is_not_a_zone_prefixed_coordinate(easting: float, northing: float, field: str) -> None:
    with pytest.raises(InvalidParameterError) as e:
        from_gk(easting, northing)
    assert e.value.field == field


def test_path_length_is_the_sum_of_the_geodesics() -> None:
    lon = RNG.uniform(100, 120, 12)
    lat = RNG.uniform(30, 50, 12)
    oracle = sum(GEOD.inv(lon[i], lat[i], lon[i + 1], lat[i + 1])[2] for i in range(len(lon) - 1))
    assert path_length_m(lon, lat) == pytest.approx(oracle, rel=1e-12)
    assert path_length_m([111.0], [40.0]) == 0.0
    with pytest.raises(InvalidParameterError):
        path_length_m([111.0, 200.0], [40.0, 40.0])
