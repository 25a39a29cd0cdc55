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
