"""Hostile files to the importers: whatever the bytes, :func:`layers.ingest.imports.import_file` raises ValidationError (or
imports valid rows), never another exception, and a rejected file writes nothing.

Hypothesis mutates and truncates real files of every format (GeoJSON, CSV, GeoPackage, zipped Shapefile), and
builds files with huge, infinite or NaN coordinates, wrong and unknown CRSs; fixed cases cover a 10^6-vertex polygon
and zip bombs. The oracle for "nothing half-written" is the row count of every feature table and of the history,
read in the same transaction (so a partial write inside it would show) before and after each rejected import.

When an import says ok, what it stored is read back with plain SQL before the savepoint is rolled back: every
geometry in EPSG:4326 (``ST_SRID``), finite, in range and inside the service area, every kind and status in the layer's
vocabulary; and where the test wrote the file, every row as sent: its coordinates equal to the sent ones reprojected
from the declared CRS with ``pyproj`` (an independent transform, ``always_xy``), its name, kind, status and numbers
unchanged, one stored row per sent row.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from scipy.optimize import linear_sum_assignment
from sqlalchemy import text
from sqlalchemy.orm import Session

from layers.ingest import imports
from layers.store import vocab
from layers.store.errors import ValidationError
from layers.store.models import FEATURE_MODELS
from layers.store.settings import Settings, get_settings

pytestmark = pytest.mark.db

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TABLES = (*FEATURE_MODELS, "feature_history")


def _counts(session: Session) -> dict[str, int]:
    return {t: int(session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in TABLES}


#: what a row of each layer is stored with, read back by :func:`_stored` (the layer's own numbers included)
NUMBERS_OF = {"shelters": ("capacity", "occupancy"), "resources": ("quantity",), "protection_targets": ("occupants",)}
VOCAB_OF = {"incidents": "incident", "shelters": "shelter", "hazards": "hazard", "admin_regions": None}


def _stored(session: Session, layer: str) -> list[dict[str, Any]]:
    """Every row the import wrote (source ``fuzz``), read with plain SQL: geometry facts, name, kind, status, numbers."""
    extra = "".join(f", {c}" for c in NUMBERS_OF.get(layer, ()))
    rows = session.execute(text(
        f"SELECT ST_SRID(geom) AS srid, GeometryType(geom) AS gtype, ST_XMin(geom) AS xmin, ST_XMax(geom) AS xmax, "
        f"ST_YMin(geom) AS ymin, ST_YMax(geom) AS ymax, ST_X(ST_PointOnSurface(geom)) AS x, "
        f"ST_Y(ST_PointOnSurface(geom)) AS y, name, kind, status{extra} FROM \"{layer}\" WHERE source = 'fuzz'"))
    return [dict(r._mapping) for r in rows]


def _check_stored(layer: str, rows: list[dict[str, Any]]) -> None:
    """What any accepted import must have stored: EPSG:4326, finite, in range, inside the service area (a point
    inside it, another geometry overlapping it), kinds and statuses of the layer's vocabularies."""
    west, south, east, north = get_settings().service_area
    for r in rows:
        assert r["srid"] == 4326, r
        box = [r["xmin"], r["ymin"], r["xmax"], r["ymax"]]
        assert all(np.isfinite(box)) and -180 <= r["xmin"] <= r["xmax"] <= 180 and -90 <= r["ymin"] <= r["ymax"] <= 90
        if r["gtype"] == "POINT":
            assert west <= r["x"] <= east and south <= r["y"] <= north, r
        else:
            assert r["xmax"] >= west and r["xmin"] <= east and r["ymax"] >= south and r["ymin"] <= north, r
        name = VOCAB_OF[layer]
        if name:
            assert r["kind"] in vocab.keys(f"{name}_kind") and r["status"] in vocab.keys(f"{name}_status"), r


def _import(session: Session, layer: str, path: Path, **kw: Any) -> str:
    """Import; return 'ok' or 'rejected'. Any other exception fails the test. A rejected file changed no table;
    an accepted one stored only what :func:`_check_stored` allows (see :func:`_import_rows` for the rows)."""
    return _import_rows(session, layer, path, **kw)[0]


def _import_rows(session: Session, layer: str, path: Path, **kw: Any) -> tuple[str, list[dict[str, Any]]]:
    """:func:`_import`, also returning the rows stored when it was accepted (read before the rollback)."""
    before = _counts(session)
    sp = session.begin_nested()
    try:
        imports.import_file(session, layer, path, source="fuzz", user="fuzz", **kw)
    except ValidationError as e:
        assert str(e)  # the message says what was wrong
        sp.rollback()  # what the caller's transaction would do; the counts must not have moved before it either
        assert _counts(session) == before
        return "rejected", []
    rows = _stored(session, layer)  # none for a file without rows (a header alone is accepted)
    sp.rollback()
    _check_stored(layer, rows)
    return "ok", rows


def _assert_stored_as_sent(rows: list[dict[str, Any]], sent: list[dict[str, Any]], crs: str | None) -> None:
    """One stored row per sent row, matched by position: coordinates equal to the sent ones reprojected from ``crs``
    with pyproj (1e-7 degree, about 1 cm), every sent attribute unchanged."""
    assert len(rows) == len(sent)
    x = np.array([float(r["x"]) for r in sent])
    y = np.array([float(r["y"]) for r in sent])
    if crs not in (None, "EPSG:4326"):
        x, y = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    got = np.array([[r["x"], r["y"]] for r in rows], dtype=float)
    dist = np.abs(got[:, None, :] - np.column_stack([x, y])[None, :, :]).max(axis=2)
    stored_i, sent_i = linear_sum_assignment(dist)
    for i, j in zip(stored_i.tolist(), sent_i.tolist(), strict=True):
        assert dist[i, j] <= 1e-7, (rows[i], sent[j], x[j], y[j])
        for k, v in sent[j].items():
            if k not in ("x", "y"):
                assert rows[i][k] == v, (k, rows[i], sent[j])


def _geojson(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


GOOD_INCIDENTS = _geojson([
    {"type": "Feature", "id": f"f{i}", "properties": {"name": f"事件{i}", "kind": "fire", "status": "reported"},
     "geometry": {"type": "Point", "coordinates": [111.6 + i / 100, 40.8]}} for i in range(5)])
GOOD_CSV = ("id,name,kind,status,lon,lat\n" + "".join(f"c{i},点{i},fire,reported,{111.6 + i / 100},40.8\n"
                                                       for i in range(5))).encode()


@pytest.fixture(scope="module")
def good_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("good")
    gdf = gpd.GeoDataFrame({"name": [f"s{i}" for i in range(5)], "kind": ["fire"] * 5, "status": ["reported"] * 5},
                           geometry=gpd.points_from_xy(111.6 + np.arange(5) / 100, [40.8] * 5), crs=4326)
    gdf.to_file(d / "good.gpkg", driver="GPKG")
    gdf.to_file(d / "good.shp")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for part in d.glob("good.*"):
            if part.suffix != ".gpkg":
                z.write(part, part.name)
    return {".geojson": GOOD_INCIDENTS, ".csv": GOOD_CSV, ".gpkg": (d / "good.gpkg").read_bytes(),
            ".zip": buf.getvalue()}


def test_the_unmutated_files_import(session: Session, good_files: dict[str, bytes], tmp_path: Path) -> None:
    """The seeds are valid, so the mutations below start from files the importer accepts."""
    for suffix, data in good_files.items():
        p = tmp_path / f"good{suffix}"
        p.write_bytes(data)
        assert _import(session, "incidents", p) == "ok", suffix


@FUZZ
@given(suffix=st.sampled_from([".geojson", ".csv", ".gpkg", ".zip"]), data=st.data())
def test_truncated_and_corrupted_files(session: Session, good_files: dict[str, bytes], tmp_path_factory: Any,
                                       suffix: str, data: st.DataObject) -> None:
    raw = bytearray(good_files[suffix])
    how = data.draw(st.sampled_from(["truncate", "flip", "splice", "empty"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 20))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    elif how == "splice":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=200))
    else:
        raw = bytearray()
    p = tmp_path_factory.mktemp("mut") / f"mutated{suffix}"
    p.write_bytes(bytes(raw))
    _import(session, "incidents", p)


NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30),
                    st.sampled_from([1e308, -1e308, 181.0, -91.0, 0.0, 4.0e6, 39.9, 116.4]))


#: valid attributes of a row of each layer, so that the coordinates and the CRS decide whether a file is accepted
ATTRS = {"incidents": {"name": "火情", "kind": "fire", "status": "reported"},
         "shelters": {"name": "避难所", "kind": "emergency", "status": "open", "capacity": 10, "occupancy": 3},
         "hazards": {"name": "洪水", "kind": "flood", "status": "active"},
         "admin_regions": {"name": "旗", "kind": "county", "status": "active"}}


def _csv(attrs: dict[str, Any], coords: list[tuple[Any, Any]]) -> str:
    cols = list(attrs)
    return (",".join([*cols, "lon", "lat"]) + "\n"
            + "".join(",".join([*(str(attrs[c]) for c in cols), str(x), str(y)]) + "\n" for x, y in coords))


@FUZZ
@given(coords=st.lists(st.tuples(NUMBERS, NUMBERS), min_size=1, max_size=5),
       layer=st.sampled_from(["incidents", "shelters", "hazards", "admin_regions"]),
       crs=st.sampled_from([None, "EPSG:4326", "EPSG:4527", "EPSG:3857", "EPSG:999999", "not a crs", "+proj=xyz"]))
def test_huge_and_nonfinite_coordinates_and_wrong_crs(session: Session, tmp_path_factory: Any,
                                                      coords: list[tuple[Any, Any]], layer: str,
                                                      crs: str | None) -> None:
    # JSON cannot carry NaN/inf literally; Python's encoder writes NaN/Infinity, which GDAL may or may not read
    attrs = ATTRS[layer]
    feats = [{"type": "Feature", "properties": attrs, "geometry": {"type": "Point", "coordinates": [x, y]}}
             for x, y in coords]
    p = tmp_path_factory.mktemp("coords") / "coords.geojson"
    p.write_bytes(_geojson(feats))
    csv = p.with_suffix(".csv")
    csv.write_text(_csv(attrs, coords))
    for path in (p, csv):
        outcome, rows = _import_rows(session, layer, path, crs=crs)
        event(f"{path.suffix} {outcome}")  # --hypothesis-show-statistics: how many were accepted and checked
        if outcome == "ok":  # whatever was accepted is stored where it was sent, with the values sent
            _assert_stored_as_sent(rows, [{"x": x, "y": y, **attrs} for x, y in coords], crs)


#: CRSs a file may come in, each with the longitudes where its coordinates are meant to be used
CRS_RANGES = {"EPSG:4326": (73.6, 135.0), "EPSG:4490": (73.6, 135.0), "EPSG:3857": (73.6, 135.0),
              "EPSG:4527": (115.6, 118.4),  # CGCS2000 / 3-degree Gauss-Kruger zone 39 (117 E), zone number in x
              "EPSG:4547": (112.6, 115.4)}  # CGCS2000 / 3-degree Gauss-Kruger CM 114E, no zone number
NAMES = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=12)


@FUZZ
@given(layer=st.sampled_from(["incidents", "shelters"]), crs=st.sampled_from(sorted(CRS_RANGES)),
       suffix=st.sampled_from([".geojson", ".csv"]), data=st.data())
def test_valid_points_in_any_crs_are_stored_where_and_as_they_were_sent(session: Session, tmp_path_factory: Any,
                                                                         layer: str, crs: str, suffix: str,
                                                                         data: st.DataObject) -> None:
    """Points meant to be valid: the import must accept them, and store each at its longitude and latitude."""
    lo, hi = CRS_RANGES[crs]
    n = data.draw(st.integers(1, 6))
    lonlat = data.draw(st.lists(st.tuples(st.floats(lo, hi), st.floats(18.5, 53.5)), min_size=n, max_size=n,
                                unique_by=lambda p: (round(p[0], 6), round(p[1], 6))))
    names = data.draw(st.lists(NAMES, min_size=n, max_size=n))
    sent = []
    for (lon, lat), name in zip(lonlat, names, strict=True):
        row: dict[str, Any] = {"name": name, **{k: v for k, v in ATTRS[layer].items() if k != "name"}}
        if layer == "shelters":
            row["capacity"] = data.draw(st.integers(0, 100_000))
            row["occupancy"] = data.draw(st.integers(0, row["capacity"]))
        sent.append({"x": lon, "y": lat, **row})
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform([s["x"] for s in sent],
                                                                            [s["y"] for s in sent])
    assume(np.all(np.isfinite(x)) and np.all(np.isfinite(y)))
    attrs = [{k: v for k, v in s.items() if k not in ("x", "y")} for s in sent]
    path = tmp_path_factory.mktemp("crs") / f"points{suffix}"
    if suffix == ".geojson":
        path.write_bytes(_geojson([{"type": "Feature", "properties": a,
                                    "geometry": {"type": "Point", "coordinates": [float(xi), float(yi)]}}
                                   for a, xi, yi in zip(attrs, x, y, strict=True)]))
    else:
        cols = list(attrs[0])
        path.write_text(",".join([*cols, "lon", "lat"]) + "\n" + "".join(
            ",".join([*(str(a[c]) for c in cols), repr(float(xi)), repr(float(yi))]) + "\n"
            for a, xi, yi in zip(attrs, x, y, strict=True)), encoding="utf-8")
    outcome, rows = _import_rows(session, layer, path, crs=crs)
    assert outcome == "ok", "a valid file was rejected"
    # the oracle reprojects what was sent back to lon/lat with pyproj; it must land where the point was meant to be
    back = [{**s, "x": xi, "y": yi} for s, xi, yi in zip(sent, x, y, strict=True)]
    _assert_stored_as_sent(rows, back, crs)
    got = np.array(sorted((r["x"], r["y"]) for r in rows))
    np.testing.assert_allclose(got, np.array(sorted((s["x"], s["y"]) for s in sent)), atol=1e-7)


@FUZZ
@given(text_=st.text(max_size=300), header=st.sampled_from(["lon,lat", "x,y", "wkt", "经度,纬度", ""]))
def test_arbitrary_csv_text(session: Session, tmp_path_factory: Any, text_: str, header: str) -> None:
    p = tmp_path_factory.mktemp("csv") / "any.csv"
    p.write_text(f"{header}\n{text_}", encoding="utf-8", errors="surrogatepass") if "\ud800" not in text_ else \
        p.write_bytes(f"{header}\n".encode() + text_.encode("utf-8", "replace"))
    _import(session, "incidents", p)


@FUZZ
@given(members=st.lists(st.tuples(st.sampled_from(["a.shp", "a.dbf", "a.geojson", "../evil.csv", "x.txt", "a.prj"]),
                                  st.binary(max_size=300)), max_size=4))
def test_arbitrary_zip_archives(session: Session, tmp_path_factory: Any, members: list[tuple[str, bytes]]) -> None:
    p = tmp_path_factory.mktemp("zip") / "any.zip"
    with zipfile.ZipFile(p, "w") as z:
        for name, payload in members:
            z.writestr(name, payload)
    _import(session, "incidents", p)
    assert not (p.parent.parent / "evil.csv").exists()


# --- fixed hostile cases --------------------------------------------------------------------------------------------


@pytest.fixture
def small_upload_limit(monkeypatch: pytest.MonkeyPatch) -> float:
    """An upload limit of 1 MB (so that a zip bomb over 10 x the limit is quick to build)."""
    monkeypatch.setattr(imports, "get_settings", lambda: Settings(max_upload_mb=1))
    return 1.0


def test_zip_bomb_is_refused_before_extraction(session: Session, tmp_path: Path, small_upload_limit: float) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        zeros = b"\0" * 2**20
        with z.open("bomb.geojson", "w", force_zip64=True) as f:
            for _ in range(20):  # 20 MB of zeros, about 20 kB compressed: beyond 10 x 1 MB
                f.write(zeros)
    assert bomb.stat().st_size < small_upload_limit * 2**20
    with pytest.raises(imports.UploadTooLargeError, match="uncompressed"):
        imports.import_file(session, "incidents", bomb, source="fuzz")
    nested = tmp_path / "nested.zip"  # a bomb inside a zip: the inner archive counts at its compressed size
    with zipfile.ZipFile(nested, "w") as z:
        z.write(bomb, "inner.zip")
    assert _import(session, "incidents", nested) == "rejected"


def test_oversized_file_is_refused_unread(session: Session, tmp_path: Path, small_upload_limit: float) -> None:
    big = tmp_path / "big.geojson"
    big.write_bytes(GOOD_INCIDENTS[:-2] + b" " * (2 * 2**20) + b"]}")
    with pytest.raises(imports.UploadTooLargeError, match="MB"):
        imports.import_file(session, "incidents", big, source="fuzz")


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def test_a_million_vertex_polygon_is_bounded(session: Session, tmp_path: Path) -> None:
    """A 10^6-vertex hazard polygon: rejected with a ValidationError, or imported whole, in bounded time and memory."""
    n = 10**6
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([111.7 + 0.2 * np.cos(angle), 40.8 + 0.2 * np.sin(angle)])
    poly = shapely.Polygon(ring)
    p = tmp_path / "huge.geojson"
    gpd.GeoDataFrame({"kind": ["flood"], "status": ["active"], "warning_level": ["red"]}, geometry=[poly],
                     crs=4326).to_file(p, driver="GeoJSON")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (Linux), so the peak below is this import's
    rss_before = _rss_kb("VmRSS")
    started = time.perf_counter()
    outcome = _import(session, "hazards", p)
    seconds = time.perf_counter() - started
    grown_mb = (_rss_kb("VmHWM") - rss_before) / 1024
    print(f"10^6-vertex polygon: {outcome} in {seconds:.1f} s, peak RSS grew {grown_mb:.0f} MB")
    assert grown_mb < 2048  # bounds, not a benchmark: a runaway copy per vertex would blow far past this
    assert seconds < 120
