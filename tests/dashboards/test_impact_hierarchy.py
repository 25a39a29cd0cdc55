"""The impact card answered from the H3 hierarchy equals the flat res-8 path, figure for figure.

Oracle: the flat path as it stood before the hierarchy, built here from independent pieces: every res-8 cell of the
zone with its fraction (:func:`geoops.h3cells.zone_weights`), the population of each read from PostGIS
(:func:`layers.read.analysis.population_of_cells`), and the split of those cells by their centres
(:func:`dashboards.services.regions.split_by_region`). Zones: a 10,000 km2 box across prefectures, a real county
outline (concave, thousands of vertices), a zone across the Hohhot-Baotou border and one reaching beyond Inner
Mongolia (cells in no loaded county go to the nearest part of the zone, one by one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import Session

from dashboards.services.impact import clear_cache, impact_card
from dashboards.services.regions import split_by_region
from geoops import h3cells
from layers.read import analysis as store
from layers.reference.population import write_cells

pytestmark = pytest.mark.db

RES = 8


def _zones(conn: Any) -> dict[str, Any]:
    county = shapely.from_wkb(bytes(conn.execute(text(
        "SELECT ST_AsBinary(geom) FROM admin_regions WHERE level = 'county' AND deleted_at IS NULL "
        "ORDER BY ST_NPoints(geom) DESC LIMIT 1")).scalar_one()))
    x, y = conn.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_ClosestPoint(a.geom, b.geom) AS p FROM admin_regions a, "
        "admin_regions b WHERE a.adcode = '150100' AND b.adcode = '150200') q")).one()
    # a point of Inner Mongolia's border with Shanxi: the edge of Hohhot nearest to a point in Shanxi
    bx, by = conn.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_ClosestPoint(ST_Boundary(geom), ST_SetSRID(ST_MakePoint(112.0, "
        "39.5), 4326)) AS p FROM admin_regions WHERE adcode = '150100') q")).one()
    return {"box_10k": box(110.6, 40.3, 111.78, 41.2), "county": county,
            "two_prefectures": shapely.Point(x, y).buffer(0.3, 32),
            "beyond_the_province": shapely.Point(bx, by).buffer(0.6, 32)}


def _flat(conn: Any, zone: Any) -> dict[str, Any]:
    cells, frac = h3cells.zone_weights(zone, res=RES)
    src = store.population_source(conn, res=RES)
    weighted = store.population_of_cells(conn, cells, res=RES, source=src["source"]) * frac
    keep = weighted > 0
    lon, lat = h3cells.cell_centres(cells[keep])
    return {"population": float(weighted.sum()), "cells": int(cells.size), "cells_populated": int(keep.sum()),
            "by_region": split_by_region(conn, zone, lon, lat, {"population": weighted[keep]})}


def test_card_equals_the_flat_res8_path(demo_db: Any) -> None:
    with demo_db.engine.connect() as conn:
        for name, zone in _zones(conn).items():
            card = impact_card(conn, zone, res=RES)
            flat = _flat(conn, zone)
            assert flat["population"] > 0, name
            assert card["population"] == pytest.approx(flat["population"], rel=1e-6, abs=0.05), name
            assert (card["cells"], card["cells_populated"]) == (flat["cells"], flat["cells_populated"]), name
            for level in ("county", "prefecture"):
                got = [(r["adcode"], r["cells"], r["population"]) for r in card["by_region"][level]]
                want = [(r["adcode"], r["cells"], round(r["population"], 1)) for r in flat["by_region"][level]]
                assert [g[:2] for g in got] == [w[:2] for w in want], (name, level)
                np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-6, atol=0.05)
            if name in ("box_10k", "two_prefectures"):
                assert len(card["by_region"]["prefecture"]) >= 2, name


def test_cells_beyond_every_county_go_to_the_nearest_part_one_by_one(demo_db: Any) -> None:
    """People on both sides of the province's border (a measured source of the test, preferred to the modelled
    demo, rolled back): the coarse cells beyond every county are split cell by cell, as the flat path does."""
    with demo_db.engine.connect() as conn, conn.begin() as tx:
        zone = _zones(conn)["beyond_the_province"]
        cells, _ = h3cells.zone_weights(zone.buffer(0.05), res=RES)
        people = 1.0 + (cells % 97).astype(np.float64)
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            write_cells(s, cells, people, source="pytest-beyond", res=RES, input_total=float(people.sum()))
            s.commit()  # the savepoint only: the outer transaction is rolled back below
        assert store.population_source(conn, res=RES)["source"] == "pytest-beyond"
        card = impact_card(conn, zone, res=RES)
        flat = _flat(conn, zone)
        assert card["population"] == pytest.approx(flat["population"], rel=1e-6)
        got = [(r["adcode"], r["cells"], r["population"]) for r in card["by_region"]["county"]]
        want = [(r["adcode"], r["cells"], round(r["population"], 1)) for r in flat["by_region"]["county"]]
        assert [g[:2] for g in got] == [w[:2] for w in want]
        np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-6, atol=0.05)
        assert len(got) >= 2
        tx.rollback()


def _assert_card_equals_flat(card: dict[str, Any], flat: dict[str, Any]) -> None:
    assert card["population"] == pytest.approx(flat["population"], rel=1e-6, abs=0.05)
    assert (card["cells"], card["cells_populated"]) == (flat["cells"], flat["cells_populated"])
    for level in ("county", "prefecture"):
        got = [(r["adcode"], r["name"], r["cells"], r["population"]) for r in card["by_region"][level]]
        want = [(r["adcode"], r["name"], r["cells"], round(r["population"], 1)) for r in flat["by_region"][level]]
        assert [g[:3] for g in got] == [w[:3] for w in want], level
        np.testing.assert_allclose([g[3] for g in got], [w[3] for w in want], rtol=1e-6, atol=0.05)


def test_a_card_asked_again_follows_changed_counties_and_names(demo_db: Any) -> None:
    """The second card of a zone comes from the kept zone part; a county border moved, or a prefecture renamed,
    in an open transaction (rolled back) is seen by the next card, which still equals the flat path."""
    with demo_db.engine.connect() as conn, conn.begin() as tx:
        zone = _zones(conn)["box_10k"]
        clear_cache()
        first = impact_card(conn, zone, res=RES)
        again = impact_card(conn, zone, res=RES)
        assert "zone_cached" in again["timing_ms"] and "zone_cached" not in first["timing_ms"]
        assert again["by_region"] == first["by_region"] and again["population"] == first["population"]
        big = max(first["by_region"]["county"], key=lambda r: r["population"])
        conn.execute(text("UPDATE admin_regions SET name = name || '(新)' WHERE adcode = :a"),
                     {"a": big["parent_adcode"]})
        renamed = impact_card(conn, zone, res=RES)
        assert [r["name"].endswith("(新)") for r in renamed["by_region"]["prefecture"]] == [
            r["adcode"] == big["parent_adcode"] for r in renamed["by_region"]["prefecture"]]
        conn.execute(text("UPDATE admin_regions SET geom = ST_Multi(ST_Difference(geom, ST_MakeEnvelope("
                          "110.6, 40.3, 111.78, 41.2, 4326))) WHERE adcode = :a"), {"a": big["adcode"]})
        moved = impact_card(conn, zone, res=RES)
        assert "zone_cached" not in moved["timing_ms"]
        assert big["adcode"] not in [r["adcode"] for r in moved["by_region"]["county"]]
        _assert_card_equals_flat(moved, _flat(conn, zone))
        tx.rollback()
