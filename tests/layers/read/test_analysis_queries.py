"""Store-side queries of the analyses (layers.read.analysis) on small hand-made data in a rolled-back session.

Oracles: brute-force ``pyproj.Geod`` over every row (nearest), ``Geod.fwd`` rings (planar bound), plain SQL and
the fixture's own coordinates (zones, population lookups, hazards in force).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import Session

from geoops.wgs84 import planar_bound_deg
from layers.read import analysis
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import (
    AdminRegion,
    Hazard,
    PopulationCell,
    PopulationSource,
    ProtectionTarget,
    Resource,
    Shelter,
)

pytestmark = pytest.mark.db

GEOD = Geod(ellps="WGS84")
SRC = "pytest-analysis"


def _res(s: Session, name: str, lon: float, lat: float, kind: str = "ambulance", status: str = "available") -> int:
    r = Resource(source=SRC, external_id=name, name=name, kind=kind, status=status,
                 geom=f"SRID=4326;POINT({lon} {lat})")
    s.add(r)
    s.flush()
    return int(r.id)


def _brute(s: Session, lon: float, lat: float, k: int, kind: str | None = None) -> list[int]:
    sql = "SELECT id, ST_X(geom), ST_Y(geom) FROM resources WHERE status = 'available' AND deleted_at IS NULL"
    if kind:
        sql += f" AND kind = '{kind}'"
    rows = s.execute(text(sql)).all()
    ids = np.array([r[0] for r in rows])
    _, _, d = GEOD.inv(np.full(len(rows), lon), np.full(len(rows), lat), [r[1] for r in rows], [r[2] for r in rows])
    return ids[np.lexsort((ids, d))][:k].tolist()


def test_nearest_is_complete_where_planar_knn_misorders_at_50n(session: Session) -> None:
    # At 50 N, B (1.3 degrees east, 93 km) is nearer than A (0.9 degrees north, 100 km); 200 fillers north
    # between them in planar distance fill the KNN candidate list (more than both KNN rounds take), so only the
    # completeness check and its ST_DWithin(geography) fallback find B.
    a = _res(session, "A", 120.0, 50.9)
    b = _res(session, "B", 121.3, 50.0)
    for i in range(200):
        _res(session, f"north-{i}", 120.0, 50.92 + i * 0.0019)
    _res(session, "B-deployed", 121.0, 50.0, status="deployed")
    got = analysis.nearest_resources(session, 120.0, 50.0, k=1, oversample=1)
    assert [g["id"] for g in got] == [b] == _brute(session, 120.0, 50.0, 1)
    two = analysis.nearest_resources(session, 120.0, 50.0, k=2, oversample=1)
    assert [g["id"] for g in two] == [b, a] == _brute(session, 120.0, 50.0, 2)
    _, az, d = GEOD.inv(120.0, 50.0, 121.3, 50.0)
    assert two[0]["distance_m"] == pytest.approx(d, abs=1e-3)
    fwd, _, _ = GEOD.inv(120.0, 50.0, 121.3, 50.0)
    assert two[0]["bearing_deg"] == pytest.approx(fwd % 360, abs=1e-6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), lat0=st.floats(38.0, 53.0))
def test_nearest_matches_brute_force(session: Session, seed: int, k: int, lat0: float) -> None:
    sp = session.begin_nested()
    try:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 40))
        for i in range(n):
            _res(session, f"h{seed}-{i}", float(rng.uniform(100, 126)), float(rng.uniform(lat0 - 2, lat0 + 1)),
                 kind=str(rng.choice(["ambulance", "boat"])))
        q = (float(rng.uniform(100, 126)), lat0)
        got = analysis.nearest_resources(session, *q, k=k, kinds=["ambulance"], oversample=1)
        assert [g["id"] for g in got] == _brute(session, *q, k, kind="ambulance")
        ids, dist, _, cand = analysis.nearest_resources_batch(session, [q[0]], [q[1]], k=k, kinds="ambulance")
        assert [int(i) for i in ids[0] if i >= 0] == [g["id"] for g in got]
        np.testing.assert_allclose(dist[0][: len(got)], [g["distance_m"] for g in got], atol=1e-6)
        details = analysis.resource_details(session, ids[0][ids[0] >= 0])
        assert [d["id"] for d in details] == [g["id"] for g in got]
        assert sorted(cand.tolist()) == sorted(r[0] for r in session.execute(text(
            "SELECT id FROM resources WHERE kind = 'ambulance' AND status = 'available'")).all())
    finally:
        sp.rollback()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), lat0=st.floats(38.0, 53.0), oversample=st.sampled_from([1, 10]))
def test_nearest_of_each_kind_matches_brute_force(session: Session, seed: int, lat0: float, oversample: int) -> None:
    """The impact card's nearest resource per kind (every kind ranked in one pass) against Geod over every row;
    ties and all: ``oversample=1`` sends kinds with many candidates through the completeness check."""
    sp = session.begin_nested()
    try:
        rng = np.random.default_rng(seed)
        kinds = ["ambulance", "boat", "fire_engine"]
        for i in range(int(rng.integers(1, 60))):
            _res(session, f"k{seed}-{i}", float(rng.uniform(100, 126)), float(rng.uniform(lat0 - 2, lat0 + 1)),
                 kind=str(rng.choice(kinds[:2])), status=str(rng.choice(["available", "deployed"], p=[0.8, 0.2])))
        for i in range(int(rng.integers(0, 3))):  # a twin: same place as another resource of its kind
            _res(session, f"twin{seed}-{i}", 110.0, lat0, kind="boat")
        q = (float(rng.uniform(100, 126)), lat0)
        got = analysis.nearest_resource_per_kind(session, *q, kinds=kinds, oversample=oversample)
        assert list(got) == kinds
        for kind in kinds:
            rows = session.execute(text(
                "SELECT id, ST_X(geom), ST_Y(geom) FROM resources WHERE status = 'available' "
                "AND deleted_at IS NULL AND kind = :k"), {"k": kind}).all()
            if not rows:
                assert got[kind] is None, kind
                continue
            _, _, d = GEOD.inv(np.full(len(rows), q[0]), np.full(len(rows), q[1]), np.array([r[1] for r in rows]),
                               np.array([r[2] for r in rows]))
            nearest = {r[0] for r, x in zip(rows, d, strict=True) if x == d.min()}  # twins tie
            assert got[kind]["id"] in nearest, kind
            assert got[kind]["distance_m"] == pytest.approx(float(d.min()), abs=1e-3), kind
            if len(nearest) == 1:
                one = analysis.nearest_resources(session, *q, k=1, kinds=[kind], oversample=oversample)[0]
                assert got[kind] == one, kind
    finally:
        sp.rollback()


@settings(max_examples=50, deadline=None)
@given(lat=st.floats(18.0, 54.0), dist=st.floats(1.0, 500_000.0))
def test_planar_bound_holds_for_every_direction(lat: float, dist: float) -> None:
    az = np.linspace(0, 360, 73)
    lon2, lat2, _ = GEOD.fwd(np.full(az.size, 110.0), np.full(az.size, lat), az, np.full(az.size, dist))
    planar = np.hypot(np.asarray(lon2) - 110.0, np.asarray(lat2) - lat)
    assert planar.max() <= planar_bound_deg(dist, lat)


def test_unknown_kind_or_status_is_rejected(session: Session) -> None:
    with pytest.raises(ValidationError) as e:
        analysis.nearest_resources(session, 111.0, 40.0, kinds=["tank"])
    assert e.value.problems[0].field == "kind" and "ambulance" in e.value.problems[0].allowed
    with pytest.raises(ValidationError):
        analysis.fetch_resources(session, status="busy")


def test_population_lookup_and_source(session: Session) -> None:
    session.add(PopulationSource(source="pytest-measured", res=9, vintage="2021", modelled=False, input_total=6.0,
                                 cell_count=3))
    session.add(PopulationSource(source="pytest-model", res=9, vintage="2020", modelled=True, input_total=1.0,
                                 cell_count=1))
    cells = [0x8931AA0000FFFFF + i for i in range(3)]
    session.add_all([PopulationCell(source="pytest-measured", res=9, h3=c, population=float(i + 1))
                     for i, c in enumerate(cells)])
    session.add(PopulationCell(source="pytest-model", res=9, h3=cells[0], population=100.0))
    session.flush()
    src = analysis.population_source(session, res=9)
    assert src["source"] == "pytest-measured" and src["modelled"] is False  # measured before modelled
    ask = np.array([cells[2], 42, cells[0], cells[1]])
    assert analysis.population_of_cells(session, ask, res=9, source="pytest-measured").tolist() == [3, 0, 1, 2]
    assert analysis.population_of_cells(session, [], res=9, source="pytest-measured").size == 0
    with pytest.raises(NotFoundError, match="available resolutions: .*9"):
        analysis.population_source(session, res=5)


def test_zone_queries_match_coordinates(session: Session) -> None:
    zone = box(111.0, 40.0, 111.2, 40.2)
    inside = [(111.05, 40.05), (111.15, 40.19)]
    outside = [(111.25, 40.1), (110.9, 40.0)]
    for i, (x, y) in enumerate(inside + outside):
        session.add(ProtectionTarget(source=SRC, external_id=f"t{i}", name=f"t{i}", kind="school", status="normal",
                                     occupants=100 * (i + 1), geom=f"SRID=4326;POINT({x} {y})"))
    # shelters: one inside, one 5.56 km due north of the top edge, one 20 km away
    for name, x, y, cap, occ in [("in", 111.1, 40.1, 500, 100), ("north", 111.1, 40.25, 300, 0),
                                 ("far", 111.1, 40.38, 300, 0)]:
        session.add(Shelter(source=SRC, external_id=name, name=name, kind="fixed", status="open", capacity=cap,
                            occupancy=occ, geom=f"SRID=4326;POINT({x} {y})"))
    session.flush()
    got = analysis.targets_in_zone(session, zone)
    assert sorted((round(g["lon"], 2), round(g["lat"], 2)) for g in got if g["external_id"].startswith("t")) == \
        sorted(inside)
    near = [s for s in analysis.shelters_near_zone(session, zone, distance_m=10_000) if s["name"] in
            ("in", "north", "far")]
    assert [s["name"] for s in near] == ["in", "north"]
    assert near[0]["inside"] and near[0]["distance_m"] == 0 and near[0]["free"] == 400
    _, _, d = GEOD.inv(111.1, 40.2, 111.1, 40.25)
    assert near[1]["distance_m"] == pytest.approx(d, abs=10)  # geography edge vs lon/lat edge: metres


def test_regions_in_zone_split_a_zone_on_a_border(session: Session) -> None:
    west = box(90.0, 30.0, 90.5, 30.5)
    east = box(90.5, 30.0, 91.0, 30.5)
    for code, g in (("990101", west), ("990102", east)):
        session.add(AdminRegion(source=SRC, external_id=code, name=code, kind="county", status="active",
                                adcode=code, level="county", parent_adcode="990100",
                                geom=f"SRID=4326;MULTIPOLYGON((({','.join(f'{x} {y}' for x, y in g.exterior.coords)})))"))
    session.flush()
    zone = box(90.3, 30.1, 90.6, 30.3)  # 2/3 west, 1/3 east
    parts = analysis.regions_in_zone(session, zone, level="county")
    assert [p["adcode"] for p in parts] == ["990101", "990102"]
    assert parts[0]["part"].area == pytest.approx(2 * parts[1]["part"].area, rel=1e-9)
    assert parts[0]["part"].union(parts[1]["part"]).area == pytest.approx(zone.area, rel=1e-9)
    assert analysis.region_geometry(session, "990102")["geometry"].equals(east)
    with pytest.raises(NotFoundError, match="999999"):
        analysis.region_geometry(session, "999999")


def test_active_hazards_in_force(session: Session) -> None:
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    h = timedelta(hours=1)
    poly = "SRID=4326;MULTIPOLYGON(((111 40,111.1 40,111.1 40.1,111 40)))"
    cases = {"live": ("active", now - h, now + h), "open-ended": ("active", None, None),
             "expired": ("active", now - 3 * h, now - h), "future": ("active", now + h, now + 3 * h),
             "cancelled": ("cancelled", now - h, now + h)}
    for name, (status, onset, expires) in cases.items():
        session.add(Hazard(source=SRC, external_id=name, name=name, kind="flood", status=status,
                           warning_level="orange", onset=onset, expires=expires, geom=poly))
    session.add(Hazard(source=SRC, external_id="fire", name="fire", kind="grassland_fire", status="active",
                       warning_level="red", geom=poly))
    session.flush()
    names = {x["name"] for x in analysis.active_hazards(session, at=now) if x["name"] in cases or x["name"] == "fire"}
    assert names == {"live", "open-ended", "fire"}
    floods = {x["name"] for x in analysis.active_hazards(session, at=now, kinds=["flood"])}
    assert {"live", "open-ended"} <= floods and "fire" not in floods
    with pytest.raises(ValidationError):
        analysis.active_hazards(session, kinds=["meteor"])
