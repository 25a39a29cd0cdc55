"""The analyst's map tools (dashboards.services.maptools): measuring against pyproj's Geod, the coordinate readout
and the "go to" box read as a person types coordinates; bad input is refused naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod, Transformer

from dashboards.services.maptools import measure, parse_goto, readout
from geoops.errors import InvalidParameterError

GEOD = Geod(ellps="WGS84")
CHINA = (73.0, 18.0, 135.5, 54.0)
INNER_MONGOLIA = (97.1, 37.4, 126.1, 53.4)


@pytest.mark.parametrize("seed", range(5))
def test_distance_and_area_are_geodesic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # a convex polygon (points by angle around a centre) a few to a few hundred km across
    c_lon, c_lat = rng.uniform(100, 120), rng.uniform(30, 50)
    ang = np.sort(rng.uniform(0, 2 * np.pi, 6))
    r = rng.uniform(0.01, 2.0)
    lon, lat = c_lon + r * np.cos(ang), c_lat + r * np.sin(ang)
    pts = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    d = measure(pts, kind="distance")
    assert d["length_m"] == pytest.approx(GEOD.line_length(lon, lat), rel=1e-9) and d["area_m2"] is None
    a = measure(pts, kind="area")
    area, perimeter = GEOD.polygon_area_perimeter(lon, lat)
    assert a["area_m2"] == pytest.approx(abs(area), rel=1e-6)
    assert a["perimeter_m"] == pytest.approx(perimeter, rel=1e-9)


def test_an_area_needs_three_points_and_bad_points_are_refused() -> None:
    assert measure([[111.0, 40.0], [111.1, 40.0]], kind="area")["area_m2"] is None
    for bad, field in (([[111.0, 40.0]], "kind"), ([[111.0]], "points"), ([["a", 40.0]], "points"),
                       ([[0.0, 0.0]] * 501, "points")):
        with pytest.raises(InvalidParameterError) as e:
            measure(bad, kind="volume" if field == "kind" else "distance")
        assert e.value.field == field


def test_the_readout_gives_wgs84_dms_and_the_gauss_krueger_of_the_zone() -> None:
    r = readout(111.75, 40.84)
    e, n = Transformer.from_crs("EPSG:4490", "EPSG:4546", always_xy=True).transform(111.75, 40.84)  # CM 111E
    assert r["gk"]["zone"] == 37 and r["gk"]["epsg"] == 4525
    assert r["gk"]["y"] == pytest.approx(37e6 + e, abs=1e-3) and r["gk"]["x"] == pytest.approx(n, abs=1e-3)
    assert r["dms"] == "40°50'24.0\"N 111°45'00.0\"E"
    assert readout(10.0, 50.0)["gk"] is None  # outside China's zones: WGS84 only


@pytest.mark.parametrize("text,how", [
    ("40.84, 111.75", "wgs84"), ("111.75 40.84", "wgs84"), ("40.84,111.75", "wgs84"),
    ("40°50'24\"N 111°45'E", "dms"), ("北40度50分24秒 东111度45分", "dms"), ("111°45′E, 40°50′24″N", "dms"),
    ("37563254.00, 4523075.65", "gk"), ("4523075.65 37563254", "gk"),
])
def test_go_to_reads_what_people_type(text: str, how: str) -> None:
    lon, lat, read = parse_goto(text, service_area=CHINA)
    assert read == how and abs(lon - 111.75) < 1e-4 and abs(lat - 40.84) < 1e-4


@pytest.mark.parametrize("text", ["", "hohhot", "1 2 3", "40.84", "nan, 111", "99999999 1", "x" * 200,
                                  "31.23, 121.47"])  # the last one: Shanghai, outside Inner Mongolia
def test_go_to_refuses_what_it_cannot_read_or_what_lies_outside_the_service_area(text: str) -> None:
    with pytest.raises(InvalidParameterError) as e:
        parse_goto(text, service_area=INNER_MONGOLIA)
    assert e.value.field == "goto" or e.value.field in ("easting_m", "northing_m")
    assert e.value.allowed
