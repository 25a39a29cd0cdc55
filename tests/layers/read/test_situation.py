"""The wall's queries on a real PostGIS with hand-made rows whose answers are obvious."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import Engine, create_engine, text

from geoops.h3cells import cell_boundaries, cell_centres, points_to_cells
from layers.read import situation
from layers.store.errors import ValidationError
from layers.store.models import (
    Annotation,
    Hazard,
    Incident,
    PopulationCell,
    PopulationSource,
    Resource,
    Shelter,
)
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

NOW = datetime(2024, 7, 1, 12, 30, tzinfo=UTC)


def _incident(s, lon, lat, *, kind="fire", severity="general", status="reported", at=NOW, deleted=False):
    row = Incident(source="t", name=f"{kind}@{lon},{lat}", kind=kind, status=status, severity=severity,
                   occurred_at=at, geom=from_shape(Point(lon, lat), srid=4326),
                   deleted_at=NOW if deleted else None)
    s.add(row)
    return row


def _hazard(s, geom, *, level="red", status="active", onset=None, expires=None):
    mp = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
    row = Hazard(source="t", name=f"h-{level}", kind="flood", status=status, warning_level=level, onset=onset,
                 expires=expires, geom=from_shape(mp, srid=4326))
    s.add(row)
    return row


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    """This module's own database (the ``session`` fixture runs on it): the figures here are global counts, so no
    row another test committed, or left behind when it failed, may be in it."""
    url = sibling_database(db_url, "situation")
    eng = create_engine(url)
    yield eng
    eng.dispose()
    drop_database(url)


@pytest.fixture(autouse=True)
def _fresh_cache():
    situation.clear_cache()
    yield
    situation.clear_cache()


def test_incident_kpis_count_active_by_severity(session) -> None:
    for sev, n in (("general", 3), ("large", 2), ("extraordinary", 1)):
        for i in range(n):
            _incident(session, 111 + i * 0.1, 40.5, severity=sev)
    _incident(session, 112, 41, severity="major", status="closed")  # closed: not active
    _incident(session, 112, 41, severity="major", deleted=True)      # soft-deleted: gone
    session.flush()
    k = situation.incident_kpis(session)
    assert k["by_severity"] == {"general": 3, "large": 2, "major": 0, "extraordinary": 1}
    assert k["active"] == 6


def test_shelter_places_and_resources(session) -> None:
    p = from_shape(Point(111, 40), srid=4326)
    session.add_all([
        Shelter(source="t", kind="fixed", status="open", capacity=100, occupancy=30, geom=p),
        Shelter(source="t", kind="fixed", status="full", capacity=50, occupancy=60, geom=p),   # over-full: 0 free
        Shelter(source="t", kind="fixed", status="closed", capacity=1000, occupancy=0, geom=p),  # closed: apart
        Shelter(source="t", kind="fixed", status="full", capacity=80, occupancy=70, geom=p),   # full: 10 spare, 0 free
        Resource(source="t", kind="fire_engine", status="available", quantity=4, geom=p),
        Resource(source="t", kind="ambulance", status="available", quantity=1, geom=p),
        Resource(source="t", kind="boat", status="deployed", quantity=7, geom=p),
    ])
    session.flush()
    assert situation.shelter_places(session) == {"shelters": 3, "total": 230, "free": 70, "occupied": 160,
                                                 "open": 1, "full": 2, "closed": 1, "closed_places": 1000}
    r = situation.resource_counts(session)
    assert r["units"] == {"available": 5, "deployed": 7, "unavailable": 0}
    assert r["records"] == {"available": 2, "deployed": 1, "unavailable": 0}


def test_data_version_moves_with_every_change(session) -> None:
    v0 = situation.data_version(session)
    row = _incident(session, 111, 40)
    session.flush()
    v1 = situation.data_version(session)
    row.status = "closed"
    session.flush()
    assert v0 < v1 < situation.data_version(session)


def test_incidents_per_hour_bins_and_ticker(session) -> None:
    # 2 fires in the current hour, 1 fire 3 h ago, 4 traffic 23 h ago, 1 flood 25 h ago (outside the window)
    for _ in range(2):
        _incident(session, 111, 40, kind="fire", at=NOW - timedelta(minutes=10))
    _incident(session, 111, 40, kind="fire", at=NOW - timedelta(hours=3))
    for _ in range(4):
        _incident(session, 111, 40, kind="traffic", at=NOW - timedelta(hours=23))
    _incident(session, 111, 40, kind="flood", at=NOW - timedelta(hours=25))
    session.flush()
    h = situation.incidents_per_hour(session, hours=24, now=NOW)
    assert h["start"] == datetime(2024, 6, 30, 13, tzinfo=UTC) and len(h["bins"]) == 24
    assert set(h["counts"]) == {"fire", "traffic"}
    assert h["counts"]["fire"][23] == 2 and h["counts"]["fire"][20] == 1 and sum(h["counts"]["fire"]) == 3
    assert h["counts"]["traffic"][0] == 4 and sum(h["counts"]["traffic"]) == 4
    tick = situation.latest_incidents(session, limit=3)
    assert [r["kind"] for r in tick] == ["fire", "fire", "fire"]
    assert tick[0]["occurred_at"] >= tick[-1]["occurred_at"]
    with pytest.raises(ValidationError):
        situation.latest_incidents(session, limit=0)


def test_incident_cells_conserve_the_count(session) -> None:
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(106, 121, 300), rng.uniform(38, 50, 300)
    for x, y in zip(lon, lat, strict=True):
        _incident(session, float(x), float(y))
    _incident(session, 110, 45, status="closed")
    session.flush()
    for res in (2, 4, 6):
        cells, counts = situation.incident_cells(session, res=res)
        assert counts.sum() == 300 and np.all(counts >= 1) and np.unique(cells).size == cells.size
    cells, counts = situation.incident_cells(session, res=4, bbox=(106, 38, 113.5, 50))
    assert counts.sum() == int(((lon <= 113.5)).sum())
    coarse, cc = situation.aggregate_cells(*situation.incident_cells(session, res=7), res=3)
    assert cc.sum() == 300 and coarse.size <= 300
    fc = situation.hex_features(cells, counts)
    assert fc["total"] == counts.sum() and len(fc["features"]) == cells.size


def _population(session, cells, pops, *, res=8, source="t-pop"):
    session.add(PopulationSource(source=source, res=res, input_total=float(sum(pops)), cell_count=len(cells)))
    session.add_all([PopulationCell(source=source, res=res, h3=int(c), population=float(p))
                     for c, p in zip(cells, pops, strict=True)])
    session.flush()


def test_affected_population_against_postgis_geography_areas(session) -> None:
    # a cluster of res-8 cells around (111.7, 40.8), each with 100 people, and one far away with 1e6
    cells, _ = points_to_cells(np.linspace(111.60, 111.80, 12), np.full(12, 40.8), np.ones(12), res=8)
    far, _ = points_to_cells([118.0], [45.0], [1.0], res=8)
    _population(session, [*cells.tolist(), int(far[0])], [100.0] * cells.size + [1e6])
    # a zone that holds the western half of the cells: area-weighted, the cut cells count by area fraction
    zone = box(111.55, 40.70, 111.70, 40.90)
    _hazard(session, zone, onset=NOW - timedelta(hours=1), expires=NOW + timedelta(hours=1))
    _hazard(session, box(111.50, 40.75, 111.60, 40.85), level="blue")  # overlaps the first: counted once
    _hazard(session, box(118.0, 45.0, 118.5, 45.5), status="expired")   # not active: the far cell stays out
    session.flush()
    got = situation.affected_population_cells(session, at=NOW)
    # oracle: PostGIS spheroidal areas of cell ∩ union / cell
    union = zone.union(box(111.50, 40.75, 111.60, 40.85))
    expected = 0.0
    for _c, g in zip(cells.tolist(), cell_boundaries(cells), strict=True):
        frac = session.execute(text(
            "SELECT ST_Area(ST_Intersection(ST_GeomFromText(:c, 4326), ST_GeomFromText(:z, 4326))::geography)"
            " / ST_Area(ST_GeomFromText(:c, 4326)::geography)"), {"c": g.wkt, "z": union.wkt}).scalar_one()
        expected += 100.0 * frac
    assert got["res"] == 8 and got["source"] == "t-pop" and got["containment"] == "area_weighted"
    assert 0 < expected < 1200 and got["total"] == pytest.approx(expected, rel=1e-3)
    assert got["population"].sum() == pytest.approx(got["total"], rel=1e-12)
    # the same again comes from the cache; the hazard expires -> 0
    assert situation.affected_population_cells(session, at=NOW) is got
    later = situation.affected_population_cells(session, at=NOW + timedelta(hours=2))
    blue_only = box(111.50, 40.75, 111.60, 40.85)
    lon, lat = cell_centres(cells)
    assert later["total"] < got["total"] and later["hazards"] == 1
    assert later["total"] <= 100.0 * int(sum(blue_only.buffer(0.01).contains(Point(x, y))
                                           for x, y in zip(lon, lat, strict=True)))


def test_affected_population_without_population_is_unknown_not_zero(session) -> None:
    _hazard(session, box(111, 40, 112, 41))
    session.flush()
    got = situation.affected_population_cells(session, at=NOW)
    if got["source"] is None:  # no other test committed population into this database
        assert got["total"] is None
    else:
        assert got["total"] >= 0


def test_hazards_are_simplified_and_annotations_listed(session) -> None:
    circle = Point(111.7, 40.8).buffer(0.5, 256)  # 1025 vertices
    _hazard(session, circle, level="yellow")
    _hazard(session, box(112, 41, 113, 42), level="red")
    session.add(Annotation(source="t", kind="command_post", status="active", label="前指", color="#00ff00",
                           geom=from_shape(Point(111.7, 40.8), srid=4326)))
    session.add(Annotation(source="t", kind="note", status="archived", label="old",
                           geom=from_shape(Point(111.7, 40.8), srid=4326)))
    session.flush()
    fine = situation.hazard_zones(session, tolerance_deg=0.0, at=NOW)
    coarse = situation.hazard_zones(session, tolerance_deg=situation.tolerance_for_zoom(5), at=NOW)
    assert [f["properties"]["warning_level"] for f in coarse["features"]] == ["red", "yellow"]
    n_fine = len(fine["features"][1]["geometry"]["coordinates"][0][0])
    n_coarse = len(coarse["features"][1]["geometry"]["coordinates"][0][0])
    assert n_fine > 1000 and n_coarse < 100
    ann = situation.annotation_features(session)
    assert [(f["properties"]["symbol"], f["properties"]["label"], f["properties"]["color"])
            for f in ann["features"]] == [("command_post", "前指", "#00ff00")]
