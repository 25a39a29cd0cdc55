"""Every path of geoops that splits by region answers as :func:`geoops.regions.assign_points` does.

Two counties of two prefectures share a meridian that runs through an H3 cell centre; a zone crosses that border and
leaves both counties to the east. The border cell, the cells outside every county and the split of the zone's
people must come out the same through ``assign_points``, ``cells_to_regions`` + ``rollup`` and
``split_by_regions`` (the situation report's path is checked on PostGIS in ``tests/layers/read/test_sitrep.py``).
"""

from __future__ import annotations

import math

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geoops.h3cells import cell_centres, zone_weights
from geoops.population import affected_population, cells_to_regions, rollup, split_by_regions
from geoops.regions import assign_points

RES = 8
BORDER_CELL = np.int64(h3.str_to_int(h3.latlng_to_cell(40.5, 111.0, RES)))
BX, BY = (float(v[0]) for v in cell_centres(np.array([BORDER_CELL])))
#: west county (prefecture 1599) and east county (prefecture 1598): the shared border runs through BORDER_CELL's centre
WEST, EAST = box(110.0, 40.0, BX, 41.0), box(BX, 40.0, 112.0, 41.0)
#: crosses the prefecture border and leaves both counties east of 112 E
ZONE = box(110.8, 40.3, 112.2, 40.7)


@pytest.fixture(scope="module")
def regions() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"adcode": ["159801", "159901"], "name": ["西县", "东县"]},
                            geometry=[WEST, EAST], crs=4326)


@pytest.fixture(scope="module")
def population() -> tuple[np.ndarray, np.ndarray]:
    """People per cell over the zone: uneven (1..97), so a cell sent to the wrong county changes a sum."""
    cells, _ = zone_weights(ZONE.buffer(0.05), res=RES)
    return cells, (cells % 97 + 1).astype(np.float64)


def test_the_border_cell_centre_is_on_the_border() -> None:
    assert WEST.boundary.contains(box(BX, BY, BX, BY).centroid) and EAST.boundary.contains(box(BX, BY, BX, BY).centroid)


def test_a_point_on_the_shared_border_goes_to_the_first_region_on_every_path(regions) -> None:
    assert assign_points([BX], [BY], [WEST, EAST]).tolist() == [0]
    assert cells_to_regions(np.array([BORDER_CELL]), regions).tolist() == ["159801"]
    assert cells_to_regions(np.array([BORDER_CELL]), regions.iloc[::-1]).tolist() == ["159901"]  # order decides


def test_a_point_outside_every_region_is_unassigned_or_nearest_alike(regions) -> None:
    far = np.int64(h3.str_to_int(h3.latlng_to_cell(40.5, 112.1, RES)))
    lon, lat = cell_centres(np.array([far]))
    assert assign_points(lon, lat, [WEST, EAST]).tolist() == [-1]
    assert cells_to_regions(np.array([far]), regions).tolist() == [None]
    assert assign_points(lon, lat, [WEST, EAST], outside="nearest").tolist() == [1]
    assert cells_to_regions(np.array([far]), regions, outside="nearest").tolist() == ["159901"]


@pytest.mark.parametrize("outside", ["none", "nearest"])
def test_a_zone_crossing_a_prefecture_border_splits_alike_on_every_path(regions, population, outside) -> None:
    wc, wf = zone_weights(ZONE, res=RES)
    total, cells, people = affected_population(wc, wf, *population)
    assert BORDER_CELL in cells                                       # the border case is inside this zone
    # path 1: assign_points on the cell centres, summed by hand
    lon, lat = cell_centres(cells)
    code = assign_points(lon, lat, [WEST, EAST], outside=outside)
    by_hand = {None if j < 0 else ["159801", "159901"][j]: math.fsum(people[code == j].tolist())
               for j in np.unique(code).tolist()}
    # path 2: cells_to_regions + rollup (the situation report's roll-up)
    rolled = rollup(cells, people, cells_to_regions(cells, regions, outside=outside))
    by_rollup = {(None if pd.isna(k) else k): float(v) for k, v in rolled.items()}
    # path 3: split_by_regions
    df = split_by_regions(ZONE, regions, *population, res=RES, outside=outside)
    by_split = {(None if pd.isna(k) else k): v for k, v in zip(df["adcode"], df["population"], strict=True)}
    assert by_hand.keys() == by_rollup.keys() == by_split.keys()
    for k, v in by_hand.items():
        assert by_rollup[k] == pytest.approx(v, rel=1e-12) and by_split[k] == pytest.approx(v, rel=1e-12)
    assert math.fsum(by_split.values()) == pytest.approx(total, rel=1e-12)
    assert (None in by_split) == (outside == "none")                  # east of 112 E: remainder, or the east county
    assert min(by_split[k] for k in ("159801", "159901")) > 0         # both sides of the border hold people
