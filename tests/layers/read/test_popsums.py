"""Kept population sums on the H3 hierarchy (``layers.read.popsums``) against raw SQL over ``population_cells``.

Oracle: for every kept coarse cell, ``SUM(population)`` of the rows whose ``h3`` lies in the cell's range of
children (``geoops.h3cells.child_ranges``, itself tested against h3's ``cell_to_children``), read by PostgreSQL.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from geoops import h3cells
from layers.read import analysis as store
from layers.read import popsums
from layers.reference.population import write_cells

pytestmark = pytest.mark.db

SOURCE = "pytest-popsums"


def _cells(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cells, _ = h3cells.zone_weights(h3cells.cell_boundaries(np.array([0x8531AA57FFFFFFF]))[0].buffer(0.05), res=8)
    people = np.where(rng.random(cells.size) < 0.3, 0.0, rng.gamma(0.7, 50.0, cells.size))
    return cells, people


def _hierarchy(session: Session) -> popsums.PopulationHierarchy:
    src = store.population_source(session, res=8, source=SOURCE)
    return popsums.hierarchy(session, source=SOURCE, res=8, built_at=src["built_at"], cell_count=src["cell_count"],
                             input_total=src["input_total"])


def test_kept_sums_equal_sql_sums_of_children(session: Session) -> None:
    cells, people = _cells(1)
    write_cells(session, cells, people, source=SOURCE, res=8, input_total=float(people.sum()))
    h = _hierarchy(session)
    assert sorted(h.cells) == [5, 6, 7, 8] and h.coarse_res == 5
    for r in (5, 6, 7):
        lo, hi = h3cells.child_ranges(h.cells[r], parent_res=r, res=8)
        rows = session.execute(text(
            "SELECT r.i, coalesce(sum(p.population), 0), count(*) FILTER (WHERE p.population > 0) "
            "FROM unnest(CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) WITH ORDINALITY AS r(lo, hi, i) "
            "LEFT JOIN population_cells p ON p.source = :s AND p.res = 8 AND p.h3 BETWEEN r.lo AND r.hi "
            "GROUP BY r.i ORDER BY r.i"), {"lo": lo.tolist(), "hi": hi.tolist(), "s": SOURCE}).all()
        np.testing.assert_allclose(h.people[r], [float(s) for _, s, _ in rows], rtol=1e-12)
        np.testing.assert_array_equal(h.populated[r], [int(n) for _, _, n in rows])
    assert float(np.sum(h.people[5])) == pytest.approx(float(people.sum()), rel=1e-12)
    # lookup of mixed resolutions: a coarse cell, a fine cell, a cell the build does not have
    pick = np.array([h.cells[6][0], cells[3], 0x8831AA5555FFFFF], dtype=np.int64)
    got, npop = h.lookup(pick)
    assert got.tolist() == [float(h.people[6][0]), float(people[3]), 0.0]
    assert npop.tolist() == [int(h.populated[6][0]), int(people[3] > 0), 0]


def test_a_new_build_is_picked_up(session: Session) -> None:
    cells, people = _cells(2)
    write_cells(session, cells, people, source=SOURCE, res=8, input_total=float(people.sum()))
    first = _hierarchy(session)
    session.execute(text("UPDATE population_sources SET built_at = built_at + interval '1 second' "
                         "WHERE source = :s"), {"s": SOURCE})
    write_cells(session, cells, people * 2, source=SOURCE, res=8, input_total=float(people.sum() * 2))
    second = _hierarchy(session)
    assert second.key != first.key
    assert float(np.sum(second.people[5])) == pytest.approx(2 * float(np.sum(first.people[5])), rel=1e-12)
    assert _hierarchy(session) is second, "the same build is not read again"


def test_county_sums_equal_postgis_point_in_polygon(session: Session) -> None:
    """The kept sums split by county against PostGIS: each populated cell's centre (h3-py, not h3ronpy) in the
    first county by adcode whose polygon covers it (``ST_Covers``), summed per parent (h3-py) and county. Counties:
    an L-shaped one, a box sharing a border with it, and a strip of the cells in no county at all; then one of
    them changed."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon, box

    from layers.store.models import AdminRegion

    cells, people = _cells(3)
    write_cells(session, cells, people, source=SOURCE, res=8, input_total=float(people.sum()))
    x, y = 116.4467, 39.9928
    shapes = {"990102": Polygon([(x - 0.2, y - 0.2), (x + 0.01, y - 0.2), (x + 0.01, y - 0.03), (x - 0.02, y - 0.03),
                                 (x - 0.02, y + 0.2), (x - 0.2, y + 0.2)]),
              "990101": box(x - 0.02, y - 0.03, x + 0.2, y + 0.2).difference(box(x + 0.05, y - 0.03, x + 0.07, y + 0.2))}
    for code, g in shapes.items():
        multi = MultiPolygon(shapely.get_parts(g).tolist())
        session.add(AdminRegion(source=SOURCE, external_id=code, name=code, kind="county", status="active",
                                adcode=code, level="county", parent_adcode="990100", geom=f"SRID=4326;{multi.wkt}"))
    session.flush()
    split = popsums.county_sums(session, _hierarchy(session))
    assert split.adcodes == ("990101", "990102")
    _assert_split_matches_postgis(session, split, cells, people)
    # a county's border moved (in the transaction that inserted it) is picked up
    session.execute(text("UPDATE admin_regions SET geom = ST_Multi(ST_Difference(geom, ST_MakeEnvelope("
                         ":x0, :y0, :x1, :y1, 4326))) WHERE adcode = '990101' AND source = :s"),
                    {"x0": x, "y0": y, "x1": x + 0.2, "y1": y + 0.04, "s": SOURCE})
    moved = popsums.county_sums(session, _hierarchy(session))
    assert moved.key != split.key
    _assert_split_matches_postgis(session, moved, cells, people)
    # and so is a county deleted
    session.execute(text("UPDATE admin_regions SET deleted_at = now() WHERE adcode = '990101' AND source = :s"),
                    {"s": SOURCE})
    again = popsums.county_sums(session, _hierarchy(session))
    assert again.adcodes == ("990102",)


def _assert_split_matches_postgis(session: Session, split: popsums.CountySums, cells: np.ndarray,
                                  people: np.ndarray) -> None:
    import h3

    populated = cells[people > 0]
    lat, lon = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in populated]).T
    rows = session.execute(text(
        "SELECT DISTINCT ON (p.i) p.i, a.adcode FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) "
        "WITH ORDINALITY AS p(x, y, i) JOIN admin_regions a ON a.source = :s AND "
        "ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)) ORDER BY p.i, a.adcode"),
        {"x": lon.tolist(), "y": lat.tolist(), "s": SOURCE}).all()
    county = np.full(populated.size, -1)
    for i, adcode in rows:
        county[int(i) - 1] = split.adcodes.index(adcode)
    assert {-1, 0, 1} <= set(county.tolist()), "the fixture has cells in both counties and in none"
    pp = people[people > 0]
    for r in (5, 6, 7):
        parent = np.array([h3.str_to_int(h3.cell_to_parent(h3.int_to_str(int(c)), r)) for c in populated])
        want: dict[tuple[int, int], tuple[float, int]] = {}
        for p, c, v in zip(parent.tolist(), county.tolist(), pp.tolist(), strict=True):
            s, n = want.get((p, c), (0.0, 0))
            want[(p, c)] = (s + v, n + 1)
        keys = sorted(want)
        got_cells = np.unique(split.cells[r])
        at, code, ppl, npop = split.lookup(got_cells)
        got = sorted(zip(got_cells[at].tolist(), code.tolist(), ppl.tolist(), npop.tolist(), strict=True))
        assert [g[:2] for g in got] == keys, r
        np.testing.assert_allclose([g[2] for g in got], [want[k][0] for k in keys], rtol=1e-12)
        assert [g[3] for g in got] == [want[k][1] for k in keys]
