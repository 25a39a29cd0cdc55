"""Situation-report data on a real PostGIS with hand-made rows: past pictures from history, changes, warnings,
population per county, shelter loads and resources by kind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from geoalchemy2.shape import from_shape
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import Engine, create_engine, select, text

from geoops.h3cells import points_to_cells
from layers.read import sitrep, situation
from layers.store.errors import ValidationError
from layers.store.models import AdminRegion, Hazard, Incident, Resource, Shelter
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

WEST = box(110.0, 40.0, 111.0, 41.0)  # county 159901
EAST = box(111.0, 40.0, 112.0, 41.0)  # county 159902


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    """This module's own database (the ``session`` fixture runs on it): the figures here are global counts, so no
    row another test committed, or left behind when it failed, may be in it."""
    url = sibling_database(db_url, "sitrep")
    eng = create_engine(url)
    yield eng
    eng.dispose()
    drop_database(url)


@pytest.fixture(autouse=True)
def _fresh_cache():
    situation.clear_cache()
    yield
    situation.clear_cache()


def _db_now(conn) -> datetime:
    return conn.execute(text("SELECT clock_timestamp()")).scalar_one()


def _regions(s) -> None:
    s.add_all([
        AdminRegion(source="t", kind="county", status="active", adcode="159900", level="prefecture", name="测试市",
                    name_en="Test City", geom=from_shape(MultiPolygon([box(110, 40, 112, 41)]), srid=4326)),
        AdminRegion(source="t", kind="county", status="active", adcode="159901", level="county",
                    parent_adcode="159900", name="西县", name_en="West County",
                    geom=from_shape(MultiPolygon([WEST]), srid=4326)),
        AdminRegion(source="t", kind="county", status="active", adcode="159902", level="county",
                    parent_adcode="159900", name="东县", name_en="East County",
                    geom=from_shape(MultiPolygon([EAST]), srid=4326)),
    ])


def _point(lon: float, lat: float):
    return from_shape(Point(lon, lat), srid=4326)


def test_past_picture_does_not_see_later_changes(session) -> None:
    conn = session.connection()
    started = _db_now(conn)  # other modules commit rows to this database too: count changes from here on
    session.add_all([
        Incident(source="t", kind="fire", status="reported", severity="general", geom=_point(110.5, 40.5)),
        Incident(source="t", kind="fire", status="reported", severity="large", geom=_point(110.6, 40.5)),
        Shelter(source="t", kind="fixed", status="open", capacity=100, occupancy=10, geom=_point(110.2, 40.2)),
    ])
    boat = Resource(source="t", kind="boat", status="available", quantity=3, geom=_point(110.1, 40.1))
    shelter = Shelter(source="t", kind="central", status="open", capacity=50, occupancy=0, geom=_point(110.3, 40.3))
    session.add_all([boat, shelter])
    session.flush()
    t0 = _db_now(conn)
    session.add(Incident(source="t", kind="collapse", status="reported", severity="major", geom=_point(110.7, 40.7)))
    shelter.occupancy = 45
    boat.deleted_at = datetime.now(UTC)
    session.flush()
    t1 = _db_now(conn)

    past = sitrep.gather(conn, at=t0)
    assert past["live"] is False
    assert past["kpis"]["incidents"]["by_severity"] == {"general": 1, "large": 1, "major": 0, "extraordinary": 0}
    assert past["kpis"]["shelters"] == {"shelters": 2, "total": 150, "free": 140, "occupied": 10, "open": 2,
                                        "full": 0, "closed": 0, "closed_places": 0}
    assert past["kpis"]["resources"] == {"available": 3, "deployed": 0, "unavailable": 0}
    assert past["resources_by_kind"] == {"boat": {"available": 3, "deployed": 0, "unavailable": 0}}

    now = sitrep.gather(conn)
    assert now["kpis"]["incidents"] == situation.incident_kpis(conn)
    assert now["kpis"]["incidents"]["by_severity"]["major"] == 1
    assert now["kpis"]["shelters"]["occupied"] == 55
    assert now["kpis"]["resources"]["available"] == 0
    # the past block left nothing behind: the live tables are read again
    assert conn.execute(select(Incident.id).where(Incident.severity == "major")).all()

    ch = sitrep.changes_since(conn, t0, t1)["layers"]
    assert ch["incidents"] == {"insert": 1, "update": 0, "delete": 0}
    assert ch["shelters"] == {"insert": 0, "update": 1, "delete": 0}
    assert ch["resources"] == {"insert": 0, "update": 0, "delete": 1}
    before = sitrep.changes_since(conn, started, t0)
    assert before["layers"]["incidents"]["insert"] == 2 and before["layers"]["shelters"]["insert"] == 2


def test_since_window_and_future_at_are_checked(session) -> None:
    conn = session.connection()
    now = datetime.now(UTC)
    with pytest.raises(ValidationError) as e:
        sitrep.gather(conn, at=now + timedelta(hours=2))
    assert e.value.problems[0].field == "at"
    with pytest.raises(ValidationError) as e:
        sitrep.gather(conn, at=now - timedelta(hours=1), since=now)
    assert e.value.problems[0].field == "since"
    d = sitrep.gather(conn, previous=now - timedelta(hours=3))
    assert d["changes_from"] == "previous" and d["changes"]["since"] == now - timedelta(hours=3)
    d = sitrep.gather(conn)
    assert d["changes_from"] == "default" and d["at"] - d["changes"]["since"] == sitrep.DEFAULT_LOOKBACK


def test_active_warnings_area_levels_and_counties(session) -> None:
    _regions(session)
    t = datetime.now(UTC)
    zone = box(110.8, 40.2, 111.3, 40.6)  # crosses both counties
    session.add_all([
        Hazard(source="t", kind="flood", status="active", warning_level="yellow", onset=t - timedelta(hours=1),
               expires=t + timedelta(hours=5), geom=from_shape(MultiPolygon([zone]), srid=4326),
               properties={"headline": {"zh-CN": "暴雨黄色预警", "en": "Yellow rainstorm warning"}}),
        Hazard(source="t", kind="blizzard", status="active", warning_level="red",
               geom=from_shape(MultiPolygon([box(110.1, 40.1, 110.2, 40.2)]), srid=4326)),
        Hazard(source="t", kind="gale", status="active", warning_level="red", expires=t - timedelta(minutes=1),
               geom=from_shape(MultiPolygon([box(110.1, 40.1, 110.2, 40.2)]), srid=4326)),  # expired
    ])
    session.flush()
    w = sitrep.active_warnings(session.connection(), at=t)
    assert [x["kind"] for x in w] == ["blizzard", "flood"]  # red first, expired left out
    flood = w[1]
    area_m2, _ = Geod(ellps="WGS84").geometry_area_perimeter(zone)
    assert flood["area_km2"] == pytest.approx(abs(area_m2) / 1e6, rel=1e-6)
    assert [c["adcode"] for c in flood["counties"]] == ["159901", "159902"]
    assert [c["name"] for c in w[0]["counties"]] == ["西县"]
    assert flood["texts"]["headline"]["zh-CN"] == "暴雨黄色预警"


def test_population_by_county_follows_cell_centres_and_adds_up(session) -> None:
    _regions(session)
    session.flush()
    lon = np.array([110.5, 110.52, 111.5, 113.5])
    lat = np.array([40.5, 40.52, 40.5, 40.5])
    cells, pop = points_to_cells(lon, lat, np.array([100.0, 50.0, 30.0, 7.0]), res=8)
    rows = sitrep.population_by_county(session.connection(), {"cells": cells, "population": pop})
    got = {r["adcode"]: r["population"] for r in rows}
    assert got == {"159901": 150.0, "159902": 30.0, None: 7.0}
    assert rows[0]["name"] == "西县" and rows[0]["prefecture"] == "测试市" and rows[-1]["adcode"] is None
    assert sum(got.values()) == pytest.approx(float(pop.sum()))
    assert sitrep.population_by_county(session.connection(), {"cells": [], "population": []}) == []


def test_population_by_county_splits_a_zone_as_geoops_does(session) -> None:
    """The report's split and :func:`geoops.population.split_by_regions` agree for a zone crossing a prefecture
    border through a cell centre and leaving every county (the same cases as ``tests/geoops/test_region_paths``)."""
    import geopandas as gpd
    import pandas as pd

    from geoops.h3cells import zone_weights
    from geoops.population import affected_population, split_by_regions
    from tests.geoops.test_region_paths import BORDER_CELL, EAST, RES, WEST, ZONE

    session.add_all([
        AdminRegion(source="t", kind="county", status="active", adcode=code, level="county", parent_adcode=parent,
                    name=name, geom=from_shape(MultiPolygon([g]), srid=4326))
        for code, parent, name, g in (("159801", "159800", "西县", WEST), ("159901", "159900", "东县", EAST))])
    session.flush()
    pop_cells, _ = zone_weights(ZONE.buffer(0.05), res=RES)
    pop = (pop_cells % 97 + 1).astype(np.float64)
    wc, wf = zone_weights(ZONE, res=RES)
    total, cells, people = affected_population(wc, wf, pop_cells, pop)
    assert BORDER_CELL in cells
    rows = sitrep.population_by_county(session.connection(), {"cells": cells, "population": people})
    got = {r["adcode"]: r["population"] for r in rows}
    regs = gpd.GeoDataFrame({"adcode": ["159801", "159901"], "name": ["西县", "东县"]}, geometry=[WEST, EAST], crs=4326)
    df = split_by_regions(ZONE, regs, pop_cells, pop, res=RES)
    want = {(None if pd.isna(k) else k): v for k, v in zip(df["adcode"], df["population"], strict=True)}
    assert got.keys() == want.keys() == {"159801", "159901", None}
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12)
    assert sum(got.values()) == pytest.approx(total, rel=1e-12)


def test_shelter_loads_and_resources_by_kind(session) -> None:
    p = _point(110.5, 40.5)
    session.add_all([
        Shelter(source="t", name="A", kind="fixed", status="open", capacity=100, occupancy=30, geom=p),
        Shelter(source="t", name="B", kind="fixed", status="full", capacity=50, occupancy=60, geom=p),
        Shelter(source="t", name="C", kind="emergency", status="open", capacity=0, occupancy=0, geom=p),
        Shelter(source="t", name="D", kind="fixed", status="closed", capacity=80, occupancy=0, geom=p),
        Resource(source="t", kind="boat", status="available", quantity=2, geom=p),
        Resource(source="t", kind="boat", status="deployed", quantity=5, geom=p),
        Resource(source="t", kind="ambulance", status="deployed", quantity=1, geom=p),
    ])
    session.flush()
    conn = session.connection()
    s = sitrep.shelter_loads(conn)
    assert [r["name"] for r in s["rows"]] == ["B", "A", "C"]
    assert s["rows"][0]["load"] == pytest.approx(1.2) and s["rows"][0]["free"] == 0 and s["rows"][2]["load"] is None
    assert s["count"] == 3 and s["over"] == 1 and s["closed"] == {"count": 1, "could_open": 80}
    by = sitrep.resources_by_kind(conn)
    assert by == {"ambulance": {"available": 0, "deployed": 1, "unavailable": 0},
                  "boat": {"available": 2, "deployed": 5, "unavailable": 0}}
    units = situation.resource_counts(conn)["units"]
    assert {st: sum(v[st] for v in by.values()) for st in units} == units


def test_map_layers_bbox_is_the_affected_area(session) -> None:
    """The map zooms to the hazards in force and the major incidents; a general incident far away does not widen
    it (it is drawn if it falls inside)."""
    session.add_all([
        Hazard(source="t", kind="flood", status="active", warning_level="orange",
               geom=from_shape(MultiPolygon([box(110.0, 40.0, 110.5, 40.5)]), srid=4326)),
        Incident(source="t", kind="fire", status="reported", severity="major", geom=_point(112.0, 41.0)),
        Incident(source="t", kind="fire", status="reported", severity="general", geom=_point(118.0, 44.0)),
        Incident(source="t", kind="fire", status="closed", severity="general", geom=_point(119.0, 45.0)),
    ])
    session.flush()
    m = sitrep.map_layers(session.connection(), at=datetime.now(UTC), fallback_bbox=(0, 0, 1, 1))
    w, s, e, n = m["bbox"]
    assert w < 110.0 and s < 40.0 and 112.0 < e < 113 and 41.0 < n < 42
    assert len(m["incidents"]) == 2 and m["hazards"][0]["warning_level"] == "orange"


def test_new_major_incidents_are_the_first_rows_and_a_count(session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A window holding many 重大 incidents (a bulk import of a million) gives the first MAJOR_ROWS and the count,
    not every row: the report lists ten and says how many (with 1M incidents the list took 256 MB of a worker)."""
    monkeypatch.setattr(sitrep, "MAJOR_ROWS", 3)
    conn = session.connection()
    t0 = _db_now(conn)
    for i in range(5):
        session.add(Incident(source="t", name=f"m{i}", kind="collapse", status="reported", severity="major",
                             geom=_point(110.3, 40.3)))
        session.flush()
    session.add(Incident(source="t", name="g", kind="fire", status="reported", severity="general",
                         geom=_point(110.3, 40.3)))
    session.flush()
    ch = sitrep.operational_changes(conn, t0, _db_now(conn))
    assert [r["name"] for r in ch["new_major"]] == ["m0", "m1", "m2"]
    assert ch["new_major_count"] == 5
    assert ch["new_major"][0]["severity"] == "major" and ch["new_major"][0]["kind"] == "collapse"
    monkeypatch.setattr(sitrep, "MAJOR_ROWS", 30)
    ch = sitrep.operational_changes(conn, t0, _db_now(conn))
    assert len(ch["new_major"]) == ch["new_major_count"] == 5

def test_operational_changes_and_major_incidents(session) -> None:
    conn = session.connection()
    shelter = Shelter(source="t", name="S", kind="fixed", status="closed", capacity=300, occupancy=0,
                      geom=_point(110.2, 40.2))
    old = Hazard(source="t", name="old", kind="flood", status="active", warning_level="yellow",
                 geom=from_shape(MultiPolygon([box(110.0, 40.0, 110.5, 40.5)]), srid=4326))
    gone = Hazard(source="t", name="gone", kind="blizzard", status="active", warning_level="blue",
                  geom=from_shape(MultiPolygon([box(111.0, 40.0, 111.5, 40.5)]), srid=4326))
    session.add_all([shelter, old, gone])
    session.flush()
    t0 = _db_now(conn)
    old.warning_level = "red"  # raised
    gone.status = "cancelled"
    shelter.status = "open"
    session.add_all([
        Hazard(source="t", name="new", kind="sandstorm", status="active", warning_level="orange",
               geom=from_shape(MultiPolygon([box(112.0, 40.0, 112.5, 40.5)]), srid=4326)),
        Incident(source="t", name="big", kind="collapse", status="reported", severity="extraordinary",
                 casualties=7, geom=_point(110.3, 40.3)),
        Incident(source="t", name="small", kind="fire", status="reported", severity="general", geom=_point(110.3, 40.3)),
    ])
    session.flush()
    t1 = _db_now(conn)
    ch = sitrep.operational_changes(conn, t0, t1)
    assert [(w["name"], w["raised"]) for w in ch["new_warnings"]] == [("old", True), ("new", False)]
    assert [w["name"] for w in ch["ended_warnings"]] == ["gone"]
    assert [r["name"] for r in ch["new_major"]] == ["big"]
    assert [s["name"] for s in ch["shelters_opened"]] == ["S"] and ch["shelters_closed"] == []
    majors = sitrep.major_incidents(conn)
    assert [r["name"] for r in majors["rows"]] == ["big"] and majors["rows"][0]["casualties"] == 7


def test_report_log_previous_report(tmp_path) -> None:
    log = tmp_path / "sitrep.jsonl"
    t = datetime(2024, 7, 1, 8, tzinfo=UTC)
    assert sitrep.previous_report(log, before=t) is None
    for h in (0, 2, 5):
        sitrep.record_report(log, at=t + timedelta(hours=h), generated_at=t, fmt="pdf", lang="zh-CN")
    assert sitrep.previous_report(log, before=t + timedelta(hours=4)) == t + timedelta(hours=2)
    assert sitrep.previous_report(log, before=t) is None
