"""Exports against a real PostGIS: formats, bbox / within clipping (checked against shapely), round trips."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import Polygon, box
from sqlalchemy import text
from sqlalchemy.orm import Session

from layers.ingest.exports import export_layer, parse_bbox, read_within
from layers.ingest.imports import import_file
from layers.store.errors import ValidationError

pytestmark = pytest.mark.db

BBOX = (111.0, 40.0, 112.0, 41.0)


def resources_frame(n: int = 30, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    kinds = np.array(["消防车", "救护车", "救援队伍", "冲锋舟"])
    return gpd.GeoDataFrame(
        {"编号": [f"R{i:03d}" for i in range(n)], "名称": [f"资源{i}" for i in range(n)],
         "类型": kinds[rng.integers(0, 4, n)], "数量": rng.integers(1, 20, n),
         "电话": [f"0471-{i}" for i in range(n)], "载重吨": np.round(rng.uniform(1, 9, n), 3)},
        geometry=gpd.points_from_xy(rng.uniform(110.5, 112.5, n), rng.uniform(39.5, 41.5, n)), crs=4326)


@pytest.fixture
def imported(session: Session, tmp_path: Path) -> gpd.GeoDataFrame:
    gdf = resources_frame()
    path = tmp_path / "res.geojson"
    gdf.to_file(path, driver="GeoJSON")
    assert import_file(session, "resources", path, source="exp").inserted == len(gdf)
    return gdf


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".csv"])
def test_bbox_export_round_trips(session: Session, tmp_path: Path, imported: gpd.GeoDataFrame, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    n = export_layer(session, "resources", out, bbox=BBOX)
    inside = imported[imported.intersects(box(*BBOX))]  # oracle: shapely on the input
    assert 0 < n == len(inside) < len(imported)
    if suffix == ".csv":
        df = pd.read_csv(out, dtype={"external_id": str, "电话": str})
        got = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)
    else:
        got = pyogrio.read_dataframe(out)
    got = got[got["source"] == "exp"].set_index("external_id").sort_index()
    want = inside.set_index("编号").sort_index()
    assert list(got.index) == list(want.index)
    assert np.allclose(shapely.get_x(got.geometry.values), shapely.get_x(want.geometry.values), atol=1e-9, rtol=0)
    assert np.allclose(shapely.get_y(got.geometry.values), shapely.get_y(want.geometry.values), atol=1e-9, rtol=0)
    assert got["quantity"].tolist() == want["数量"].tolist()
    assert got["name"].tolist() == want["名称"].tolist()
    assert got["电话"].tolist() == want["电话"].tolist()  # properties flattened
    assert np.allclose(got["载重吨"].astype(float), want["载重吨"])
    labels = {"消防车": "fire_engine", "救护车": "ambulance", "救援队伍": "rescue_team", "冲锋舟": "boat"}
    assert got["kind"].tolist() == [labels[k] for k in want["类型"]]
    # importing the export back into the same source changes nothing
    again = import_file(session, "resources", out, source="exp")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, n)
    assert session.execute(text("SELECT count(*) FROM resources WHERE source='exp'")).scalar() == len(imported)


def test_within_file_in_cgcs2000(session: Session, tmp_path: Path, imported: gpd.GeoDataFrame) -> None:
    zone = Polygon([(110.8, 39.8), (112.2, 40.1), (111.9, 41.2), (111.0, 40.9)])
    area = tmp_path / "zone.gpkg"
    gpd.GeoDataFrame({"名称": ["研判区"]}, geometry=[zone], crs="EPSG:4490").to_file(area)
    out = tmp_path / "within.geojson"
    n = export_layer(session, "resources", out, within=read_within(area))
    got = pyogrio.read_dataframe(out)
    want = set(imported.loc[imported.intersects(zone), "编号"])
    assert n == len(want) > 0 and set(got["external_id"]) == want


def test_polygons_to_csv_with_wkt_and_deleted_rows(session: Session, tmp_path: Path) -> None:
    polys = [box(111, 40, 111.5, 40.5), box(112, 41, 112.2, 41.3)]
    src = tmp_path / "zones.geojson"
    gpd.GeoDataFrame({"id": ["z1", "z2"], "type": ["buffer", "drawn"]}, geometry=polys, crs=4326).to_file(src)
    import_file(session, "impact_zones", src, source="zexp")
    session.execute(text("UPDATE impact_zones SET deleted_at = now() WHERE source='zexp' AND external_id='z2'"))
    out = tmp_path / "zones.csv"
    assert export_layer(session, "impact_zones", out) == 1
    df = pd.read_csv(out)
    assert shapely.from_wkt(df.loc[0, "wkt"]).equals(shapely.MultiPolygon([polys[0]]))
    assert export_layer(session, "impact_zones", out, include_deleted=True) == 2
    again = import_file(session, "impact_zones", out, source="zexp")
    assert again.inserted == 0  # the deleted one comes back (update), none duplicated
    assert session.execute(text("SELECT count(*) FROM impact_zones WHERE source='zexp' AND deleted_at IS NULL")
                           ).scalar() == 2


def test_bad_arguments() -> None:
    assert parse_bbox("111,40,112,41") == (111.0, 40.0, 112.0, 41.0)
    for bad in ("111,40,112", "112,40,111,41", "a,b,c,d"):
        with pytest.raises(ValidationError, match="bbox"):
            parse_bbox(bad)


def test_cli_export(db_url: str, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.cli import main
    from layers.store.db import reset_engines
    from layers.store.settings import get_settings

    src = tmp_path / "pts.csv"
    pd.DataFrame({"经度": [111.5, 115.0], "纬度": [40.5, 40.5], "类型": ["学校", "医院"], "编号": ["p1", "p2"]}) \
        .to_csv(src, index=False)
    monkeypatch.setenv("SITROOM_DATABASE_URL", db_url)
    get_settings.cache_clear()
    reset_engines()
    try:
        runner = CliRunner()
        r = runner.invoke(main, ["import", "protection_targets", str(src), "--source", "cli-exp"])
        assert r.exit_code == 0, r.output
        out = tmp_path / "out.gpkg"
        r = runner.invoke(main, ["export", "protection_targets", str(out), "--bbox", "111,40,112,41"])
        assert r.exit_code == 0, r.output
        got = pyogrio.read_dataframe(out)
        assert got.loc[got["source"] == "cli-exp", "external_id"].tolist() == ["p1"]
        r = runner.invoke(main, ["export", "protection_targets", str(out), "--bbox", "1,2,3"])
        assert r.exit_code == 2 and "W,S,E,N" in r.output
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM protection_targets WHERE source='cli-exp'"))
        monkeypatch.delenv("SITROOM_DATABASE_URL")
        get_settings.cache_clear()
        reset_engines()
