"""The hierarchical cover of a zone (``geoops.h3cells.zone_cover``) against the flat one (``zone_weights``).

Oracle: the flat res-8 cells and fractions of :func:`geoops.h3cells.zone_weights` (itself tested against a naive
per-cell intersection in ``test_h3cells``) and h3's own ``cell_to_children``. Expanding every coarse cell of the
cover to its res-8 children must give the flat cells and fractions exactly, and so a population summed over the
hierarchy (coarse cells by the sum of their children) equals the flat res-8 sum to 1e-6 relative.
"""

from __future__ import annotations

import math

import h3
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geoops import h3cells
from geoops.errors import InvalidParameterError
from geoops.h3cells import cell_resolution, child_cells, descendant_count, zone_cover, zone_weights

RES = 8

ZONES = {
    "box_10k": box(110.6, 40.3, 111.78, 41.2),
    "circle": Point(116.4, 40.0).buffer(0.5, 64),
    "concave": Point(111.0, 41.0).buffer(1.0, 32).difference(box(111.0, 41.0, 113.0, 43.0)),
    "with_hole": Point(119.0, 45.0).buffer(0.6, 32).difference(Point(119.0, 45.0).buffer(0.2, 32)),
    "multipolygon": MultiPolygon([box(100.0, 38.0, 100.4, 38.3), box(100.6, 38.0, 101.2, 38.5)]),
    "thin": box(105.0, 42.0, 106.5, 42.02),
}


def _expand(cells: np.ndarray, frac: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Every cell of the cover replaced by its children at ``res`` (h3's own ``cell_to_children``)."""
    out_c, out_f = [], []
    for c, f in zip(cells.tolist(), frac.tolist(), strict=True):
        kids = [h3.str_to_int(k) for k in h3.cell_to_children(h3.int_to_str(c), res)]
        out_c.extend(kids)
        out_f.extend([f] * len(kids))
    o = np.argsort(out_c)
    return np.asarray(out_c, dtype=np.int64)[o], np.asarray(out_f)[o]


def _population(cells: np.ndarray) -> np.ndarray:
    """A deterministic, uneven population per res-8 cell (some cells empty)."""
    h = (cells.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    v = (h % np.uint64(1000)).astype(np.float64)
    return np.where(v < 200, 0.0, v * 1.37)


@pytest.mark.parametrize("name", list(ZONES))
def test_cover_expands_to_the_flat_cells_and_fractions(name):
    zone = ZONES[name]
    cells, frac = zone_cover(zone, res=RES)
    flat_c, flat_f = zone_weights(zone, res=RES)
    got_c, got_f = _expand(cells, frac, RES)
    np.testing.assert_array_equal(got_c, flat_c)
    np.testing.assert_array_equal(got_f, flat_f)
    rs = cell_resolution(cells)
    assert rs.min() >= 5 and rs.max() == RES
    assert np.all(frac[rs < RES] == 1.0), "coarse cells are wholly inside"
    if name in ("box_10k", "circle", "concave"):
        assert (rs < RES).any() and cells.size < flat_c.size / 4, "the interior is compacted"


@pytest.mark.parametrize("name", list(ZONES))
def test_hierarchical_sum_equals_flat_res8_sum(name):
    zone = ZONES[name]
    flat_c, flat_f = zone_weights(zone, res=RES)
    flat = math.fsum((_population(flat_c) * flat_f).tolist())
    cells, frac = zone_cover(zone, res=RES)
    rs = cell_resolution(cells)
    total = 0.0
    for c, f, r in zip(cells.tolist(), frac.tolist(), rs.tolist(), strict=True):
        kids = child_cells(np.array([c]), child_res=RES) if r < RES else np.array([c])
        total += f * math.fsum(_population(kids).tolist())  # a coarse cell's kept sum: its children's people
    assert total == pytest.approx(flat, rel=1e-6)


def test_borders_keep_every_coarse_cell_on_one_side():
    zone = ZONES["box_10k"]
    west, east = box(100.0, 30.0, 111.17, 50.0), box(111.17, 30.0, 120.0, 50.0)
    cells, frac = zone_cover(zone, res=RES, borders=shapely.GeometryCollection([west, east]))
    plain, _ = zone_cover(zone, res=RES)
    assert cells.size > plain.size, "cells on the border are refined"
    rs = cell_resolution(cells)
    for c in cells[rs < RES].tolist():
        kids = child_cells(np.array([c]), child_res=RES)
        lon, _ = h3cells.cell_centres(kids)
        assert (lon < 111.17).all() or (lon > 111.17).all(), f"{c:x} straddles the border"
    np.testing.assert_array_equal(_expand(cells, frac, RES)[0], zone_weights(zone, res=RES)[0])


def test_descendant_count_matches_h3():
    cells = np.array([0x8531AA57FFFFFFF, 0x8631AA507FFFFFF, 0x8831AA5555FFFFF])
    assert descendant_count(cells, res=8).tolist() == [
        h3.cell_to_children_size(h3.int_to_str(int(c)), 8) for c in cells.tolist()]


def test_descendant_count_of_pentagons_and_their_neighbours_matches_h3():
    """Every pentagon at res 0-7 (read from the bits, not asked of h3), its children and neighbours, and cells
    whose base cell is a pentagon but which are not pentagons themselves, against h3's own count."""
    cells = []
    for r in range(8):
        for p in h3.get_pentagons(r):
            cells += [p, *h3.grid_disk(p, 1), *h3.cell_to_children(p, min(r + 1, 8))]
    ints = np.unique(np.array([h3.str_to_int(c) for c in cells], dtype=np.int64))
    for res in (8, 9):
        want = [h3.cell_to_children_size(h3.int_to_str(int(c)), res) for c in ints.tolist()]
        assert descendant_count(ints, res=res).tolist() == want


def test_cover_empty_and_bad_input():
    c, f = zone_cover(Polygon(), res=RES)
    assert c.size == 0 and f.size == 0
    with pytest.raises(InvalidParameterError, match="coarse_res"):
        zone_cover(ZONES["circle"], res=RES, coarse_res=9)
    with pytest.raises(InvalidParameterError, match="res"):
        zone_cover(ZONES["circle"], res=16)


@settings(max_examples=25, deadline=None)
@given(st.floats(98.0, 125.0), st.floats(38.0, 52.0), st.floats(0.05, 0.8), st.floats(0.05, 0.8),
       st.integers(6, 8))
def test_cover_equals_flat_for_random_boxes(x, y, w, h, res):
    zone = box(x, y, x + w, y + h)
    cells, frac = zone_cover(zone, res=res)
    flat_c, flat_f = zone_weights(zone, res=res)
    got_c, got_f = _expand(cells, frac, res)
    np.testing.assert_array_equal(got_c, flat_c)
    np.testing.assert_array_equal(got_f, flat_f)
