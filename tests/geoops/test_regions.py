"""geoops.regions.assign_points: the one point -> region rule, at its border cases, against a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import Polygon, box

from geoops.errors import InvalidParameterError
from geoops.regions import assign_points

GEOD = Geod(ellps="WGS84")
WEST, EAST = box(110, 40, 111, 41), box(111, 40, 112, 41)


def brute_nearest(lon: float, lat: float, regions: list[Polygon]) -> int:
    """Index of the region whose densified boundary (1,000 points a side) is geodesically nearest; first on ties."""
    best, arg = np.inf, -1
    for j, g in enumerate(regions):
        if g.contains(shapely.Point(lon, lat)) or g.touches(shapely.Point(lon, lat)):
            return j
        ring = np.asarray(g.exterior.coords)
        pts = np.concatenate([np.linspace(a, b, 1000, endpoint=False) for a, b in zip(ring[:-1], ring[1:],
                                                                                     strict=True)])
        _, _, d = GEOD.inv(np.full(len(pts), lon), np.full(len(pts), lat), pts[:, 0], pts[:, 1])
        if d.min() < best - 1e-3:
            best, arg = float(d.min()), j
    return arg


def test_a_point_inside_goes_to_its_region() -> None:
    assert assign_points([110.5, 111.5], [40.5, 40.5], [WEST, EAST]).tolist() == [0, 1]


def test_a_point_on_a_shared_border_goes_to_the_first_region_in_order() -> None:
    on_border = ([111.0, 111.0], [40.5, 40.0])
    assert assign_points(*on_border, [WEST, EAST]).tolist() == [0, 0]
    assert assign_points(*on_border, [EAST, WEST]).tolist() == [0, 0]  # the first *given*, whichever it is


def test_a_point_outside_every_region_is_unassigned_or_goes_to_the_geodesically_nearest() -> None:
    assert assign_points([113.0], [40.5], [WEST, EAST]).tolist() == [-1]
    assert assign_points([113.0], [40.5], [WEST, EAST], outside="nearest").tolist() == [1]


def test_nearest_is_geodesic_not_planar() -> None:
    # At 50 N a degree of longitude is ~64 % of a degree of latitude: the eastern region 0.7 degrees away is
    # ~50 km off, the northern one 0.6 degrees away ~67 km. Planar order says north, geodesic order says east.
    north = box(119.5, 50.6, 120.5, 51.0)
    east = box(120.7, 49.5, 121.0, 50.5)
    got = assign_points([120.0], [50.0], [north, east], outside="nearest").tolist()
    assert got == [brute_nearest(120.0, 50.0, [north, east])] == [1]


def test_empty_and_missing_regions_are_never_chosen() -> None:
    assert assign_points([110.5], [40.5], [None, Polygon(), WEST]).tolist() == [2]
    assert assign_points([], [], [WEST]).tolist() == []
    assert assign_points([115.0], [40.5], [None], outside="nearest").tolist() == [-1]


def test_bad_input_is_named() -> None:
    with pytest.raises(InvalidParameterError, match="outside"):
        assign_points([1.0], [1.0], [WEST], outside="closest")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"lon/lat\[1\]"):
        assign_points([110.0, np.nan], [40.0, 40.0], [WEST])
    with pytest.raises(InvalidParameterError, match="same length"):
        assign_points([110.0], [40.0, 41.0], [WEST])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.floats(108.0, 114.0), st.floats(38.0, 43.0))
def test_every_point_agrees_with_the_brute_force_oracle(lon: float, lat: float) -> None:
    regions = [WEST, EAST, box(110.5, 41.5, 111.5, 42.0)]
    got = int(assign_points([lon], [lat], regions, outside="nearest")[0])
    assert got == brute_nearest(lon, lat, regions)
