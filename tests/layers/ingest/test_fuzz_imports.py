"""Hostile files to the importers: whatever the bytes, :func:`layers.ingest.imports.import_file` raises ValidationError (or
imports valid rows), never another exception, and a rejected file writes nothing.

Hypothesis mutates and truncates real files of every format (GeoJSON, CSV, GeoPackage, zipped Shapefile), and
builds files with huge, infinite or NaN coordinates, wrong and unknown CRSs; fixed cases cover a 10^6-vertex polygon
and zip bombs. The oracle for "nothing half-written" is the row count of every feature table and of the history,
read in the same transaction (so a partial write inside it would show) before and after each rejected import.
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from layers.ingest import imports
from layers.store.errors import ValidationError
from layers.store.models import FEATURE_MODELS
from layers.store.settings import Settings

pytestmark = pytest.mark.db

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TABLES = (*FEATURE_MODELS, "feature_history")


def _counts(session: Session) -> dict[str, int]:
    return {t: int(session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in TABLES}


def _import(session: Session, layer: str, path: Path, **kw: Any) -> str:
    """Import; return 'ok' or 'rejected'. Any other exception fails the test. A rejected file changed no table."""
    before = _counts(session)
    sp = session.begin_nested()
    try:
        imports.import_file(session, layer, path, source="fuzz", user="fuzz", **kw)
    except ValidationError as e:
        assert str(e)  # the message says what was wrong
        sp.rollback()  # what the caller's transaction would do; the counts must not have moved before it either
        assert _counts(session) == before
        return "rejected"
    sp.rollback()
    return "ok"


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


@FUZZ
@given(coords=st.lists(st.tuples(NUMBERS, NUMBERS), min_size=1, max_size=5),
       layer=st.sampled_from(["incidents", "shelters", "hazards", "admin_regions"]),
       crs=st.sampled_from([None, "EPSG:4326", "EPSG:4527", "EPSG:3857", "EPSG:999999", "not a crs", "+proj=xyz"]))
def test_huge_and_nonfinite_coordinates_and_wrong_crs(session: Session, tmp_path_factory: Any,
                                                      coords: list[tuple[Any, Any]], layer: str,
                                                      crs: str | None) -> None:
    # JSON cannot carry NaN/inf literally; Python's encoder writes NaN/Infinity, which GDAL may or may not read
    feats = [{"type": "Feature", "properties": {"kind": "fire", "status": "active", "capacity": 10},
              "geometry": {"type": "Point", "coordinates": [x, y]}} for x, y in coords]
    p = tmp_path_factory.mktemp("coords") / "coords.geojson"
    p.write_bytes(_geojson(feats))
    csv = p.with_suffix(".csv")
    csv.write_text("kind,status,capacity,lon,lat\n" + "".join(f"fire,active,10,{x},{y}\n" for x, y in coords))
    for path in (p, csv):
        _import(session, layer, path, crs=crs)


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
