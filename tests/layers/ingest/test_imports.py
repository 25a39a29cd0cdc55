"""Imports against a real PostGIS: every format, every kind of broken row, CRS (Gauss-Kruger, CGCS2000), upserts."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer
from shapely.geometry import Point, Polygon
from sqlalchemy import text
from sqlalchemy.orm import Session

from layers.ingest.imports import UploadTooLargeError, check_upload, import_file, validate_frame
from layers.store.errors import ValidationError

pytestmark = pytest.mark.db

# three shelters in Hohhot, described the way a Chinese office would (Chinese headers and labels)
ROWS = {
    "编号": ["S1", "S2", "S3"],
    "名称": ["人民公园", "第一中学操场", "体育中心"],
    "类型": ["紧急避难场所", "固定避难场所", "中心避难场所"],
    "可容纳人数": [1200, 800, 5000],
    "已安置人数": [0, 35, 410],
    "联系电话": ["0471-1", "0471-2", "0471-3"],
}
LONLAT = [(111.652, 40.818), (111.701, 40.842), (111.745, 40.799)]


def shelters_frame(**changes: list[object]) -> gpd.GeoDataFrame:
    data = {**ROWS, **changes}
    return gpd.GeoDataFrame(data, geometry=[Point(x, y) for x, y in LONLAT], crs=4326)


def write(gdf: gpd.GeoDataFrame, tmp_path: Path, fmt: str) -> Path:
    """Write ``gdf`` in one of the import formats with GDAL (CSV with lon/lat columns named 经度/纬度)."""
    if fmt == "geojson":
        p = tmp_path / "in.geojson"
        gdf.to_file(p, driver="GeoJSON")
    elif fmt == "gpkg":
        p = tmp_path / "in.gpkg"
        gdf.to_file(p, driver="GPKG")
    elif fmt == "kml":
        p = tmp_path / "in.kml"
        gdf.to_file(p, driver="KML")
    elif fmt == "shp":
        d = tmp_path / "shp"
        d.mkdir(exist_ok=True)
        # dBase field names hold 10 bytes: real Chinese shapefiles use short names (3 characters in UTF-8)
        short = {"可容纳人数": "容量", "已安置人数": "occupancy", "联系电话": "联系电话"[:3]}
        gdf.rename(columns=short).to_file(d / "in.shp", driver="ESRI Shapefile", encoding="UTF-8")
        p = tmp_path / "in.zip"
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
            for f in d.iterdir():
                z.write(f, f.name)
    elif fmt == "csv":
        p = tmp_path / "in.csv"
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df["经度"], df["纬度"] = gdf.geometry.x, gdf.geometry.y
        df.to_csv(p, index=False)
    else:
        raise ValueError(fmt)
    return p


def count(session: Session, table: str, source: str | None = None) -> int:
    sql = f"SELECT count(*) FROM {table}" + (" WHERE source = :s" if source else "")
    return int(session.execute(text(sql), {"s": source}).scalar_one())


def rows(session: Session, source: str) -> list[dict[str, object]]:
    return [dict(r._mapping) for r in session.execute(text(
        "SELECT external_id, name, kind, status, capacity, occupancy, properties, ST_X(geom) AS x, ST_Y(geom) AS y, "
        "updated_by FROM shelters WHERE source = :s ORDER BY external_id"), {"s": source})]


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "kml", "csv"])
def test_each_format_imports_with_chinese_columns(session: Session, tmp_path: Path, fmt: str) -> None:
    path = write(shelters_frame(), tmp_path, fmt)
    report = import_file(session, "shelters", path, source=f"t-{fmt}", user="alice")
    assert (report.inserted, report.updated, report.skipped) == (3, 0, [])
    got = rows(session, f"t-{fmt}")
    assert [r["external_id"] for r in got] == ["S1", "S2", "S3"]
    assert [r["kind"] for r in got] == ["emergency", "fixed", "central"]
    assert [r["capacity"] for r in got] == ROWS["可容纳人数"]
    assert [r["occupancy"] for r in got] == ROWS["已安置人数"]
    assert [r["name"] for r in got] == ROWS["名称"]
    assert [r["status"] for r in got] == ["open"] * 3  # the layer's default
    phone = "联系电" if fmt == "shp" else "联系电话"
    assert [r["properties"][phone] for r in got] == ROWS["联系电话"]  # unmapped column kept in properties
    for r, (x, y) in zip(got, LONLAT, strict=True):
        assert r["x"] == pytest.approx(x, abs=1e-9) and r["y"] == pytest.approx(y, abs=1e-9)


def _bowtie(x: float, y: float) -> Polygon:
    return Polygon([(x, y), (x + 0.1, y + 0.1), (x + 0.1, y), (x, y + 0.1), (x, y)])


@pytest.mark.parametrize(("fmt", "change", "field", "value"), [
    ("csv", "lon", "经度", "111.x"),
    ("gpkg", "类型", "类型", "帐篷"),
    ("geojson", "可容纳人数", "可容纳人数", -5),
    ("geojson", "required", "类型", None),
    ("kml", "far", "geometry", None),
])
def test_one_broken_row_rejects_the_file(session: Session, tmp_path: Path, fmt: str, change: str, field: str,
                                         value: object) -> None:
    before = count(session, "shelters")
    gdf = shelters_frame()
    if change == "lon":
        path = write(gdf, tmp_path, "csv")
        df = pd.read_csv(path, dtype=str)
        df.loc[1, "经度"] = value
        df.to_csv(path, index=False)
    elif change == "required":
        gdf.loc[1, "类型"] = None
        path = write(gdf, tmp_path, fmt)
    elif change == "far":  # London: valid lon/lat, outside the service area
        gdf.loc[1, "geometry"] = Point(-0.12, 51.5)
        path = write(gdf, tmp_path, fmt)
    else:
        gdf.loc[1, change] = value
        path = write(gdf, tmp_path, fmt)
    with pytest.raises(ValidationError) as ei:
        import_file(session, "shelters", path, source="broken")
    problems = ei.value.problems
    assert [(p.row, p.field) for p in problems] == [(2, field)]
    assert problems[0].file == str(path) and problems[0].allowed
    if value is not None:
        assert str(problems[0].value) == str(value)
    assert count(session, "shelters") == before


def test_unrepairable_bowtie_is_rejected_and_safe_repair_is_reported(session: Session, tmp_path: Path) -> None:
    square = Polygon([(111, 40), (111.2, 40), (111.2, 40.2), (111, 40.2)])
    # a ring touching itself at one point (an "inverted hole"): make_valid keeps the area -> safe repair
    touching = Polygon([(112, 40), (112.4, 40), (112.4, 40.4), (112.2, 40.4), (112.3, 40.2), (112.1, 40.2),
                        (112.2, 40.4), (112, 40.4)])
    assert not touching.is_valid and not _bowtie(113, 40).is_valid
    gdf = gpd.GeoDataFrame({"id": ["a", "b", "c"], "type": ["flood", "blizzard", "earthquake"],
                            "预警级别": ["蓝色", "II", "红"]},
                           geometry=[square, touching, _bowtie(113, 40)], crs=4326)
    path = tmp_path / "hz.gpkg"
    gdf.to_file(path)
    before = count(session, "hazards")
    with pytest.raises(ValidationError) as ei:
        import_file(session, "hazards", path, source="hz")
    assert [(p.row, p.field) for p in ei.value.problems] == [(3, "geometry")]
    assert "cannot be repaired" in ei.value.problems[0].allowed
    assert count(session, "hazards") == before
    report = import_file(session, "hazards", path, source="hz", skip_invalid=True)
    assert report.inserted == 2 and [p.row for p in report.skipped] == [3]
    assert len(report.repaired) == 1 and report.repaired[0].startswith("row 2: repaired")
    got = session.execute(text("SELECT external_id, warning_level, GeometryType(geom), ST_IsValid(geom), ST_Area(geom) "
                               "FROM hazards WHERE source='hz' ORDER BY external_id")).all()
    assert [(g[0], g[1], g[2], g[3]) for g in got] == [("a", "blue", "MULTIPOLYGON", True),
                                                      ("b", "orange", "MULTIPOLYGON", True)]
    assert got[1][4] == pytest.approx(abs(shapely.area(touching)), rel=1e-9)


def test_skip_invalid_writes_valid_rows_and_reports_each_skipped_row(session: Session, tmp_path: Path) -> None:
    gdf = shelters_frame(**{"类型": ["紧急", "帐篷", "中心"], "可容纳人数": [10, 20, -1]})
    path = write(gdf, tmp_path, "geojson")
    report = import_file(session, "shelters", path, source="skip", skip_invalid=True)
    assert report.inserted == 1 and report.rows_read == 3
    assert [(p.row, p.field, p.value) for p in report.skipped] == [(2, "类型", "帐篷"), (3, "可容纳人数", -1)]
    assert [r["external_id"] for r in rows(session, "skip")] == ["S1"]


def test_reimport_creates_no_duplicates_and_applies_updates(session: Session, tmp_path: Path) -> None:
    path = write(shelters_frame(), tmp_path, "gpkg")
    first = import_file(session, "shelters", path, source="re")
    again = import_file(session, "shelters", path, source="re")
    assert (first.inserted, again.inserted, again.updated, again.unchanged) == (3, 0, 0, 3)
    changed = shelters_frame(**{"已安置人数": [0, 35, 999]})
    path2 = write(changed, tmp_path, "geojson")
    third = import_file(session, "shelters", path2, source="re")
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 2)
    assert count(session, "shelters", "re") == 3
    assert [r["occupancy"] for r in rows(session, "re")] == [0, 35, 999]
    # a soft-deleted row comes back on re-import
    session.execute(text("UPDATE shelters SET deleted_at = now() WHERE source = 're' AND external_id = 'S1'"))
    fourth = import_file(session, "shelters", path2, source="re")
    assert fourth.updated == 1
    assert session.execute(text("SELECT count(*) FROM shelters WHERE source='re' AND deleted_at IS NULL")).scalar() == 3


def test_rows_without_id_get_a_stable_id(session: Session, tmp_path: Path) -> None:
    gdf = shelters_frame().drop(columns="编号")
    path = write(gdf, tmp_path, "csv")
    a = import_file(session, "shelters", path, source="noid")
    b = import_file(session, "shelters", path, source="noid")
    assert (a.inserted, b.inserted, b.unchanged) == (3, 0, 3)
    assert count(session, "shelters", "noid") == 3


def test_gauss_kruger_zone_39_lands_where_pyproj_says(session: Session, tmp_path: Path) -> None:
    # eastings with the zone prefix 39 (central meridian 117E), as in Chinese surveying data
    xy = [(39_512_345.678, 4_412_345.678), (39_487_654.321, 4_523_456.789), (39_400_000.0, 4_600_000.0)]
    gdf = gpd.GeoDataFrame({"类型": ["学校", "医院", "水库"], "人数": [1500, 300, 0]},
                           geometry=[Point(x, y) for x, y in xy], crs="EPSG:4527")
    path = tmp_path / "gk.gpkg"
    gdf.to_file(path)
    report = import_file(session, "protection_targets", path, source="gk")
    assert report.inserted == 3 and any("EPSG:4527" in n for n in report.notes)
    oracle = Transformer.from_crs("EPSG:4527", "EPSG:4326", always_xy=True)
    got = session.execute(text("SELECT ST_X(geom), ST_Y(geom), kind, occupants FROM protection_targets "
                               "WHERE source='gk' ORDER BY occupants DESC")).all()
    assert [(g[2], g[3]) for g in got] == [("school", 1500), ("hospital", 300), ("reservoir", 0)]
    for (x, y), g in zip(xy, got, strict=True):
        lon, lat = oracle.transform(x, y)
        assert abs(g[0] - lon) < 1e-6 and abs(g[1] - lat) < 1e-6
    # the same coordinates in a CSV without CRS: rejected with a hint, accepted with --crs
    csv = tmp_path / "gk.csv"
    pd.DataFrame({"x": [p[0] for p in xy], "y": [p[1] for p in xy], "type": ["school"] * 3}).to_csv(csv, index=False)
    with pytest.raises(ValidationError) as ei:
        import_file(session, "protection_targets", csv, source="gkcsv")
    assert "--crs" in str(ei.value) and "EPSG:4527" in str(ei.value) and "gk.csv" in str(ei.value)
    assert import_file(session, "protection_targets", csv, source="gkcsv", crs="EPSG:4527").inserted == 3
    # a zone-prefixed easting declared as the CM variant is caught
    with pytest.raises(ValidationError, match="EPSG:4527"):
        import_file(session, "protection_targets", csv, source="gkcm", crs="EPSG:4548")


def test_cgcs2000_geographic_file(session: Session, tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"type": ["消防车", "救护车"], "数量": ["3", "1"], "状态": ["可用", "已出动"]},
                           geometry=[Point(111.65, 40.82), Point(122.1, 46.07)], crs="EPSG:4490")
    path = tmp_path / "cgcs.geojson"
    gdf.to_file(path, driver="GeoJSON")
    import_file(session, "resources", path, source="cg")
    oracle = Transformer.from_crs("EPSG:4490", "EPSG:4326", always_xy=True)
    got = session.execute(text("SELECT ST_X(geom), ST_Y(geom), kind, quantity, status FROM resources "
                               "WHERE source='cg' ORDER BY quantity DESC")).all()
    assert [g[2:] for g in got] == [("fire_engine", 3, "available"), ("ambulance", 1, "deployed")]
    for p, g in zip(gdf.geometry, got, strict=True):
        lon, lat = oracle.transform(p.x, p.y)
        assert abs(g[0] - lon) < 1e-9 and abs(g[1] - lat) < 1e-9


def test_swapped_lon_lat_is_named(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "swap.csv"
    pd.DataFrame({"纬度": [111.6, 40.8], "经度": [40.8, 111.6], "类型": ["火灾", "火灾"]}).to_csv(path, index=False)
    with pytest.raises(ValidationError) as ei:
        import_file(session, "incidents", path, source="swap")
    (p,) = ei.value.problems
    assert p.row == 1 and p.field == "经度/纬度" and "swapped" in p.allowed


def test_history_records_the_user(session: Session, tmp_path: Path) -> None:
    path = write(shelters_frame(), tmp_path, "geojson")
    import_file(session, "shelters", path, source="hist", user="zhang.san")
    import_file(session, "shelters", write(shelters_frame(**{"可容纳人数": [1, 2, 3]}), tmp_path, "gpkg"),
                source="hist", user="li.si")
    got = session.execute(text(
        "SELECT h.op, h.changed_by, count(*) FROM feature_history h JOIN shelters s ON s.id = h.feature_id "
        "WHERE h.layer = 'shelters' AND s.source = 'hist' GROUP BY 1, 2 ORDER BY 1")).all()
    assert [tuple(g) for g in got] == [("insert", "zhang.san", 3), ("update", "li.si", 3)]
    assert {r["updated_by"] for r in rows(session, "hist")} == {"li.si"}


def test_warning_level_spellings_and_unknown_layer_values() -> None:
    sq = Polygon([(111, 40), (111.1, 40), (111.1, 40.1)])
    spellings = ["蓝色", "黄", "橙色预警", "I", 4, "III级", "red", "Orange (II)"]
    gdf = gpd.GeoDataFrame({"type": ["暴雪"] * len(spellings), "level": spellings},
                           geometry=[sq] * len(spellings), crs=4326)
    clean, problems, _ = validate_frame("hazards", gdf.assign(id=range(len(spellings))))
    assert problems == []
    assert clean["warning_level"].tolist() == ["blue", "yellow", "orange", "red", "blue", "yellow", "red", "orange"]
    assert set(clean["kind"]) == {"blizzard"}
    _, problems, _ = validate_frame("hazards", gdf.assign(level=["紫色"] * len(spellings), id=range(len(spellings))))
    assert problems[0].field == "level" and "red (红色 (I级))" in problems[0].allowed


def test_size_limits(tmp_path: Path) -> None:
    big = tmp_path / "big.geojson"
    big.write_bytes(b" " * 300_000)
    with pytest.raises(UploadTooLargeError, match="big.geojson"):
        check_upload(big, max_upload_mb=0.1)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.geojson", b"0" * 3_000_000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UploadTooLargeError, match="uncompressed"):
        check_upload(bomb, max_upload_mb=0.1)
    check_upload(bomb, max_upload_mb=1.0)  # 3 MB <= 10 x 1 MB


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch):
    from layers.store.db import reset_engines
    from layers.store.settings import get_settings

    monkeypatch.setenv("SITROOM_DATABASE_URL", db_url)
    get_settings.cache_clear()
    reset_engines()
    yield
    monkeypatch.delenv("SITROOM_DATABASE_URL")
    get_settings.cache_clear()
    reset_engines()


def test_cli_import(cli_env: None, engine, tmp_path: Path) -> None:
    from dashboards.cli import main

    bad = write(shelters_frame(**{"可容纳人数": [1, -2, 3]}), tmp_path, "gpkg")
    r = CliRunner().invoke(main, ["import", "shelters", str(bad), "--source", "cli-test"])
    assert r.exit_code == 2 and "row 2" in r.output and "可容纳人数" in r.output
    r = CliRunner().invoke(main, ["import", "shelters", str(bad), "--source", "cli-test", "--skip-invalid",
                                  "--user", "wang"])
    assert r.exit_code == 0, r.output
    assert "row 2" in r.output
    with engine.connect() as c:
        got = c.execute(text("SELECT external_id, updated_by FROM shelters WHERE source='cli-test' ORDER BY 1")).all()
        c.execute(text("DELETE FROM shelters WHERE source='cli-test'"))
        c.commit()
    assert [tuple(g) for g in got] == [("S1", "wang"), ("S3", "wang")]


def test_docs_list_every_accepted_name() -> None:
    from layers.ingest import fieldmap

    doc = (Path(__file__).resolve().parents[3] / "docs" / "import.md").read_text(encoding="utf-8").lower()
    names = {n for s in fieldmap.SPECS.values() for c in s.columns for n in s.names_for(c)}
    names |= {n for v in fieldmap._VOCAB_ALIASES.values() for spellings in v.values() for n in spellings}
    names |= set(fieldmap.LON_NAMES + fieldmap.LAT_NAMES + fieldmap.WKT_NAMES)
    missing = sorted(n for n in names if n.lower() not in doc)
    assert missing == [], f"docs/import.md does not mention: {missing}"


def test_admin_regions_by_adcode(session: Session, tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"行政区划代码": [150000, 150100], "名称": ["内蒙古自治区", "呼和浩特市"],
                            "级别": ["省", "地级市"], "上级代码": [None, "150000"]},
                           geometry=[Polygon([(97, 37), (126, 37), (126, 53)]),
                                     Polygon([(111, 40), (112, 40), (112, 41)])], crs=4326)
    path = tmp_path / "adm.gpkg"
    gdf.to_file(path)
    assert import_file(session, "admin_regions", path, source="adm").inserted == 2
    got = session.execute(text("SELECT external_id, adcode, level, kind, parent_adcode, GeometryType(geom) "
                               "FROM admin_regions WHERE source='adm' ORDER BY adcode")).all()
    assert [tuple(g) for g in got] == [("150000", "150000", "province", "province", None, "MULTIPOLYGON"),
                                       ("150100", "150100", "prefecture", "prefecture", "150000", "MULTIPOLYGON")]
    moved = gdf.assign(geometry=[gdf.geometry[0], Polygon([(111, 40), (112.5, 40), (112, 41)])])
    moved.to_file(path)
    again = import_file(session, "admin_regions", path, source="adm")
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 1)
    bad = gdf.assign(行政区划代码=["15010", "150100"])
    bad.to_file(tmp_path / "bad.gpkg")
    with pytest.raises(ValidationError) as ei:
        import_file(session, "admin_regions", tmp_path / "bad.gpkg", source="adm2")
    assert [(p.row, p.field, p.value) for p in ei.value.problems] == [(1, "行政区划代码", "15010")]


# An hourglass over 10 degrees of latitude: make_valid keeps both lobes, so the repair changes the area. In square
# degrees the change is ~1.5 % for the first and ~0.5 % for the second, in square metres (geodesic) ~0.66 % and
# ~1.8 %: imports (degrees squared) and the analyses (metres) used to decide them the opposite ways.
HOURGLASS_ACCEPTED = Polygon([(110, 20), (120, 20), (114.55, 30), (115.45, 30)])
HOURGLASS_REJECTED = Polygon([(110, 20), (120, 20), (114.75, 54), (115.25, 54)])


def test_a_repair_is_judged_by_its_geodesic_area_change_as_the_analyses_judge_it() -> None:
    from geoops.errors import InvalidGeometryError
    from geoops.validate import check_geometry

    assert not HOURGLASS_ACCEPTED.is_valid and not HOURGLASS_REJECTED.is_valid
    fixed, notes = check_geometry(HOURGLASS_ACCEPTED)
    assert fixed.is_valid and notes[0].startswith("repaired")
    with pytest.raises(InvalidGeometryError):
        check_geometry(HOURGLASS_REJECTED)
    gdf = gpd.GeoDataFrame({"id": ["a", "b"], "type": ["flood", "flood"], "预警级别": ["蓝色", "红"]},
                           geometry=[HOURGLASS_ACCEPTED, HOURGLASS_REJECTED], crs=4326)
    clean, problems, notes = validate_frame("hazards", gdf)  # rows are numbered by the frame's index
    assert [(p.row, p.field) for p in problems] == [(1, "geometry")] and "cannot be repaired" in problems[0].allowed
    assert len(clean) == 1 and clean.geometry.iloc[0].normalize().equals(
        shapely.MultiPolygon(shapely.get_parts(fixed)).normalize())
    assert notes[0].startswith("row 0: repaired")


def _history(session: Session, source: str) -> list[tuple[object, ...]]:
    """History of ``source``'s shelters, without ids and times (they differ between two runs by construction)."""
    return [tuple(r) for r in session.execute(text(
        "SELECT s.external_id, h.op, h.changed_by, h.row - 'id' - 'created_at' - 'updated_at' - 'source' "
        "FROM feature_history h JOIN shelters s ON s.id = h.feature_id "
        "WHERE h.layer = 'shelters' AND s.source = :s ORDER BY s.external_id, h.id"), {"s": source})]


def _index_defs(session: Session) -> list[str]:
    return sorted(session.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'shelters'")).scalars())


def test_bulk_load_writes_what_the_row_path_writes(session: Session, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk path (secondary indexes rebuilt, UPDATE + ordered INSERT) against the ON CONFLICT path, on the same
    sequence of imports: same counts, same rows, same history (op, who, full row), same indexes afterwards."""
    from layers.ingest import imports

    first, changed = write(shelters_frame(), tmp_path, "gpkg"), \
        write(shelters_frame(**{"已安置人数": [0, 35, 999], "联系电话": ["0471-9", None, "0471-3"]}), tmp_path,
              "geojson")
    indexes = _index_defs(session)
    seen: dict[str, tuple[object, ...]] = {}
    for mode, bulk_rows in (("rowpath", 10**9), ("bulkpath", 1)):
        monkeypatch.setattr(imports, "BULK_ROWS", bulk_rows)
        reports = [import_file(session, "shelters", first, source=mode, user="zhang.san"),
                   import_file(session, "shelters", first, source=mode, user="zhang.san"),
                   import_file(session, "shelters", changed, source=mode, user="li.si")]
        session.execute(text("UPDATE shelters SET deleted_at = now() WHERE source = :s AND external_id = 'S1'"),
                        {"s": mode})
        reports.append(import_file(session, "shelters", changed, source=mode, user="wang.wu"))
        seen[mode] = ([(r.inserted, r.updated, r.unchanged) for r in reports],
                      [{k: v for k, v in r.items()} for r in rows(session, mode)], _history(session, mode))
        assert _index_defs(session) == indexes
    assert seen["bulkpath"][0] == [(3, 0, 0), (0, 0, 3), (0, 2, 1), (0, 1, 2)]
    assert seen["bulkpath"] == seen["rowpath"]
    assert [h[:3] for h in seen["bulkpath"][2]] == [
        ("S1", "insert", "zhang.san"), ("S1", "update", "li.si"), ("S1", "delete", "li.si"),
        ("S1", "update", "wang.wu"), ("S2", "insert", "zhang.san"), ("S3", "insert", "zhang.san"),
        ("S3", "update", "li.si")]


def test_text_that_copy_must_escape_is_stored_as_sent(session: Session) -> None:
    """Rows reach the staging table as CSV (``COPY ... FORMAT csv``): tabs, line breaks, quotes, commas, backslashes
    and a literal ``\\N`` arrive as sent, in columns and in ``properties``; a time keeps its microseconds and a
    missing number stays NULL."""
    from layers.ingest.imports import upsert_features

    names = ["a\tb", "line 1\nline 2\r\n", 'say "hi", then go', "C:\\temp\\N", "\\N", "应急,\"避难\""]
    gdf = gpd.GeoDataFrame({"external_id": [f"e{i}" for i in range(len(names))], "name": names,
                            "kind": ["fire"] * len(names), "occurred_at": ["2024-07-01T08:30:00.123456+08:00"] * 6,
                            "casualties": [1, None, 3, None, 5, 6], "备注": names},
                           geometry=[Point(111.6 + i / 100, 40.8) for i in range(len(names))], crs=4326)
    clean, problems, _ = validate_frame("incidents", gdf)
    assert problems == []
    upsert_features(session, "incidents", clean, source="escape", user="t")
    got = session.execute(text("SELECT name, properties->>'备注', casualties, occurred_at::text FROM incidents "
                               "WHERE source = 'escape' ORDER BY external_id")).all()
    assert [g[0] for g in got] == [n.strip() for n in names]
    assert [g[1] for g in got] == names
    assert [g[2] for g in got] == [1, None, 3, None, 5, 6]
    assert {g[3] for g in got} == {"2024-07-01 00:30:00.123456+00"}


@pytest.mark.parametrize("layer", ["incidents", "hazards"])
def test_geometry_reaches_the_store_bit_for_bit(session: Session, layer: str) -> None:
    """Points are encoded as EWKB by numpy, other geometries by GEOS: both give PostGIS the coordinates exactly
    (the stored EWKB equals GEOS's EWKB of the input, SRID 4326)."""
    from layers.ingest.imports import upsert_features

    if layer == "incidents":
        geoms = [Point(111.123456789012345 + i * 1e-9, 40.987654321098765 - i / 7) for i in range(5)]
    else:
        geoms = [Polygon([(111 + i, 40), (111.5 + i, 40), (111.5 + i, 40.333333333333336), (111 + i, 40)])
                 for i in range(3)]
    gdf = gpd.GeoDataFrame({"external_id": [f"g{i}" for i in range(len(geoms))], "name": ["x"] * len(geoms),
                            "kind": ["fire" if layer == "incidents" else "flood"] * len(geoms),
                            "warning_level": ["blue"] * len(geoms)},
                           geometry=geoms, crs=4326)
    clean, problems, _ = validate_frame(layer, gdf)
    assert problems == []
    upsert_features(session, layer, clean, source="bits", user="t")
    got = session.execute(text(f"SELECT encode(ST_AsEWKB(geom), 'hex') FROM {layer} WHERE source = 'bits' "
                               "ORDER BY external_id")).scalars().all()
    want = shapely.to_wkb(shapely.set_srid(clean.geometry.values, 4326), hex=True, include_srid=True)
    assert [g.upper() for g in got] == list(want)
