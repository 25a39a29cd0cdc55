"""The pandas-free path for a few features (layers.ingest.records) against the file-import path it twins
(layers.ingest.imports.validate_frame / upsert_features): on generated input both accept and refuse the same items with the
same messages and give the same clean values; against a real PostGIS both store the same rows and count inserts,
updates and unchanged rows alike."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPoint, Point, Polygon, shape
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from layers.ingest import fieldmap
from layers.ingest.imports import upsert_features, validate_frame
from layers.ingest.records import upsert_records, validate_records
from layers.ingest.writes import _frame
from layers.store.models import FEATURE_MODELS

LAYERS = ("incidents", "resources", "shelters", "hazards", "annotations", "protection_targets", "impact_zones")


def _spellings(layer: str) -> list[Any]:
    """Accepted and refused spellings for the layer's vocabularies and numbers."""
    s = fieldmap.spec(layer)
    out: list[Any] = []
    for vocab in s.vocabs.values():
        table = fieldmap.vocab_lookup(vocab)
        out += list(table.values())[:3] + list(table)[:6]
    return out + ["purple", "", "  ", None, 0, 3, -2, 2.5, 7.0, "12", "1,200", " 8 ", "x9", True, float("nan"),
                  2**31 - 1, 2**31, "3,000,000,000", 10**20, -(2**31) - 1,
                  "2024-07-01T08:30:00+08:00", "2024-07-01 08:30", "yesterday", 1.5e3, {"a": 1}, [1, 2],
                  "#ff0000", "#12", "150102", "15010", "前方指挥部", "a" * 20]


def _keys(layer: str) -> list[str]:
    s = fieldmap.spec(layer)
    names = [n for c in s.columns for n in s.names_for(c)[:3]]
    return names + ["电话", "remark", "sitroom_id", "depth_m"]


def _geometries(layer: str) -> st.SearchStrategy[Any]:
    polygons = FEATURE_MODELS[layer].GEOM_TYPE == "MULTIPOLYGON"
    lon = st.floats(111.0, 112.0)
    lat = st.floats(40.0, 41.0)
    good = (st.builds(lambda x, y, r: Point(x, y).buffer(r, 8), lon, lat, st.floats(0.01, 0.2)) if polygons
            else st.builds(Point, lon, lat))
    bad = st.sampled_from([None, Point(200.0, 40.0), Point(40.8, 111.7), Point(2.35, 48.85),
                           MultiPoint([(111.5, 40.5)]), MultiPoint([(111.5, 40.5), (111.6, 40.6)]),
                           Polygon([(111, 40), (112, 41), (112, 40), (111, 41)]),  # a bow tie
                           Polygon([(111, 40), (111.1, 40), (111.1, 40.1), (111, 40.1)]), Point(111.5, 40.5)])
    return st.one_of(good, good, bad)


@st.composite
def _inputs(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], list[Any]]:
    layer = draw(st.sampled_from(LAYERS))
    n = draw(st.integers(1, 4))
    records = [draw(st.dictionaries(st.sampled_from(_keys(layer)), st.sampled_from(_spellings(layer)), max_size=6))
               for _ in range(n)]
    geoms = [draw(_geometries(layer)) for _ in range(n)]
    return layer, records, geoms


def _plain(v: Any) -> Any:
    """One comparable form for what pandas and plain Python hold (np.int64 / 5.0 / 5, NaN / NA / None, times)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, (pd.Timestamp, datetime)):
        return pd.Timestamp(v).tz_convert("UTC").isoformat()
    return v


def _props(text_: str) -> dict[str, Any]:
    plain = {k: _plain(v) for k, v in json.loads(text_).items()}
    return {k: v for k, v in plain.items() if v is not None}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_inputs())
def test_validation_matches_the_file_import_path(case: tuple[str, list[dict[str, Any]], list[Any]]) -> None:
    layer, records, geoms = case
    frame_clean, frame_problems, frame_notes = validate_frame(layer, _frame(records, geoms), file="body")
    clean, problems, notes, present = validate_records(layer, records, geoms, file="body")
    assert [(p.row, p.field, _plain(p.value), p.allowed, p.file) for p in problems] == \
           [(p.row, p.field, _plain(p.value), p.allowed, p.file) for p in frame_problems]
    assert notes == frame_notes and present == frame_clean.attrs["present"]
    assert len(clean) == len(frame_clean)
    columns = [c for c in fieldmap.spec(layer).columns]
    for mine, (_, theirs) in zip(clean, frame_clean.iterrows(), strict=True):
        json.loads(mine["properties"], parse_constant=lambda c, text_=mine["properties"]: pytest.fail(f"{c} in {text_}"))
        assert mine["row"] == theirs["row"]
        assert {c: _plain(mine[c]) for c in columns} == {c: _plain(theirs[c]) for c in columns}
        assert shapely.equals_exact(mine["geometry"], theirs["geometry"], 0)
        mp, tp = _props(mine["properties"]), _props(theirs["properties"])
        assert mp.keys() == tp.keys()
        for k in mp:  # pandas' to_json keeps 10 significant digits, json.dumps all of them
            assert (mp[k] == tp[k] or (isinstance(mp[k], float) and math.isclose(mp[k], tp[k], rel_tol=1e-9))), k


# ------------------------------------------------------------------------------------------------ the store

SRC_FRAME, SRC_RECORDS = "pytest-records-frame", "pytest-records-fast"


def _write_both(session: Session, layer: str, features: list[dict[str, Any]]) -> tuple[tuple[int, ...], ...]:
    records = [dict(f["properties"], external_id=f["id"]) for f in features]
    geoms = [shape(f["geometry"]) for f in features]
    frame_clean, fp, _ = validate_frame(layer, _frame(records, geoms))
    clean, p, _, present = validate_records(layer, records, geoms)
    assert fp == [] and p == []
    a = upsert_features(session, layer, frame_clean, source=SRC_FRAME, user="pytest")
    b = upsert_records(session, layer, clean, present=present, source=SRC_RECORDS, user="pytest")
    return (a.inserted, a.updated, a.unchanged), (b.inserted, b.updated, b.unchanged)


def _stored(session: Session, layer: str, source: str) -> list[tuple[Any, ...]]:
    t = FEATURE_MODELS[layer].__table__  # type: ignore[attr-defined]
    skip = {"id", "source", "created_at", "updated_at", "geom"}
    cols = [c for c in t.c if c.name not in skip]
    rows = session.execute(select(*cols, func.ST_AsEWKT(t.c.geom)).where(t.c.source == source)
                           .order_by(t.c.external_id)).all()
    return [tuple(r) for r in rows]


def _feature(fid: str, lon: float, lat: float, **props: Any) -> dict[str, Any]:
    return {"id": fid, "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


@pytest.mark.db
def test_both_paths_store_the_same_rows_and_count_alike(session: Session) -> None:
    first = [_feature("r1", 111.7, 40.8, kind="冲锋舟", quantity="3", 电话="0471", depth_m=1.25),
             _feature("r2", 111.6, 40.85, kind="rescue_team", name="蓝天救援队", valid_to="2030-01-01 08:00")]
    assert _write_both(session, "resources", first) == ((2, 0, 0), (2, 0, 0))
    assert _stored(session, "resources", SRC_FRAME) == _stored(session, "resources", SRC_RECORDS)
    # the same again: unchanged; then one changed property and one moved point: updated
    assert _write_both(session, "resources", first) == ((0, 0, 2), (0, 0, 2))
    second = [_feature("r1", 111.7, 40.8, kind="冲锋舟", quantity="3", 电话="0472", depth_m=1.25),
              _feature("r2", 111.61, 40.85, kind="rescue_team", name="蓝天救援队", valid_to="2030-01-01 08:00")]
    assert _write_both(session, "resources", second) == ((0, 2, 0), (0, 2, 0))
    # a partial representation updates only the columns it has (status stays, name stays)
    session.execute(text("UPDATE resources SET status = 'deployed' WHERE source IN (:a, :b)"),
                    {"a": SRC_FRAME, "b": SRC_RECORDS})
    partial = [_feature("r2", 111.61, 40.85, kind="rescue_team", quantity=4)]
    assert _write_both(session, "resources", partial) == ((0, 1, 0), (0, 1, 0))
    # a soft-deleted row comes back on the next write
    session.execute(text("UPDATE resources SET deleted_at = now() WHERE external_id = 'r1' AND source IN (:a, :b)"),
                    {"a": SRC_FRAME, "b": SRC_RECORDS})
    assert _write_both(session, "resources", second[:1]) == ((0, 1, 0), (0, 1, 0))
    stored = _stored(session, "resources", SRC_FRAME)
    assert stored == _stored(session, "resources", SRC_RECORDS)
    assert len(stored) == 2
    for src in (SRC_FRAME, SRC_RECORDS):
        r1, r2 = session.execute(text(
            "SELECT status, quantity, name, properties, deleted_at FROM resources WHERE source = :s "
            "ORDER BY external_id"), {"s": src}).all()
        assert (r1.status, r1.quantity, r1.properties, r1.deleted_at) == ("deployed", 3, {"电话": "0472",
                                                                                         "depth_m": 1.25}, None)
        assert (r2.status, r2.quantity, r2.name) == ("deployed", 4, "蓝天救援队")  # not in the partial write: kept


def test_both_paths_refuse_text_too_long_for_its_column_by_name() -> None:
    """external_id is varchar(128): 400 characters are refused before the database, naming the field and the limit
    (the store would refuse them too; the fast path never casts text to fit)."""
    records = [{"编号": "x" * 400, "kind": "fire"}, {"编号": "y" * 128, "kind": "fire"}]
    geoms = [Point(111.7, 40.8), Point(111.8, 40.8)]
    clean, p, _, _ = validate_records("incidents", records, geoms)
    frame_clean, fp, _ = validate_frame("incidents", _frame(records, geoms))
    assert [(e.row, e.field, e.allowed) for e in p] == [(e.row, e.field, e.allowed) for e in fp] == [
        (0, "编号", "at most 128 characters")]
    assert [r["external_id"] for r in clean] == frame_clean["external_id"].tolist() == ["y" * 128]


@pytest.mark.db
def test_polygons_and_history_on_the_fast_path(session: Session) -> None:
    zone = Point(111.7, 40.8).buffer(0.1, 16)
    clean, p, _, present = validate_records("hazards", [{"kind": "flood", "warning_level": "橙色", "name": "洪水"}],
                                            [zone])
    assert p == [] and clean[0]["geometry"].geom_type == "MultiPolygon"
    counts = upsert_records(session, "hazards", clean, present=present, source=SRC_RECORDS, user="records-test")
    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 0, 0)
    row = session.execute(text("SELECT warning_level, updated_by, ST_Area(geom) FROM hazards WHERE source = :s"),
                          {"s": SRC_RECORDS}).one()
    assert row[0] == "orange" and row[1] == "records-test" and math.isclose(row[2], zone.area, rel_tol=1e-9)
    who = session.execute(text("SELECT changed_by FROM feature_history WHERE layer = 'hazards' ORDER BY id DESC "
                               "LIMIT 1")).scalar_one()
    assert who == "records-test"


def test_integers_beyond_the_column_are_refused_by_name() -> None:
    """casualties is an integer column: 3,000,000,000 would make PostgreSQL refuse the row (a 500 from a COPY, or a
    cut-off message); both paths refuse it first, naming the field and the range the store holds."""
    records = [{"kind": "fire", "伤亡人数": "3,000,000,000"}, {"kind": "fire", "伤亡人数": 2**31 - 1}]
    geoms = [Point(111.7, 40.8), Point(111.8, 40.8)]
    clean, p, _, _ = validate_records("incidents", records, geoms)
    _, fp, _ = validate_frame("incidents", _frame(records, geoms))
    assert [(e.row, e.field, e.allowed) for e in p] == [(e.row, e.field, e.allowed) for e in fp] == [
        (0, "伤亡人数", "an integer in 0..2147483647")]
    assert [r["casualties"] for r in clean] == [2**31 - 1]
