"""`population build`: raster (EPSG:4326 and Mollweide) and points -> population_cells, against independent oracles.

Oracles: the raster total is summed here with numpy from a full rasterio read; point cells come from h3-py's
scalar ``latlng_to_cell`` one point at a time.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import h3
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from layers.reference.population import (
    PopulationBuildError,
    build_population,
    build_population_points,
    raster_cells,
    write_cells,
)
from layers.store.errors import ValidationError
from layers.store.models import PopulationCell, PopulationSource

pytestmark = pytest.mark.db

NODATA = 1.0e7  # a large nodata value: counting it by mistake would be obvious


def _write(path: Path, values: np.ndarray, *, crs: str, transform: object, nodata: float | None = NODATA,
           tiled: bool = True) -> Path:
    profile = {"driver": "GTiff", "width": values.shape[1], "height": values.shape[0], "count": 1,
               "dtype": values.dtype.name, "crs": crs, "transform": transform, "nodata": nodata}
    if tiled:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    return path


def _values(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.gamma(0.8, 40.0, size=shape)
    v[rng.random(shape) < 0.15] = NODATA
    v[rng.random(shape) < 0.05] = 0.0
    return v


def _oracle_total(path: Path) -> float:
    with rasterio.open(path) as ds:
        v = ds.read(1).astype(np.float64)
        nd = ds.nodata
    ok = np.isfinite(v) & (v != nd) if nd is not None else np.isfinite(v)
    return float(v[ok].sum())


def _stored(session: Session, source: str, res: int) -> tuple[float, int]:
    total, n = session.execute(select(func.coalesce(func.sum(PopulationCell.population), 0.0), func.count())
                               .where(PopulationCell.source == source, PopulationCell.res == res)).one()
    return float(total), int(n)


def _cells(session: Session, source: str, res: int) -> dict[int, float]:
    return dict(session.execute(select(PopulationCell.h3, PopulationCell.population)
                                .where(PopulationCell.source == source, PopulationCell.res == res)).all())


@pytest.fixture
def wgs84_tif(tmp_path: Path) -> Path:
    # 48 x 40 pixels of 0.01 deg near Hohhot (like WorldPop), tiled 16 x 16
    return _write(tmp_path / "wgs84.tif", _values((40, 48), 1), crs="EPSG:4326",
                  transform=from_origin(111.50, 41.00, 0.01, 0.01))


@pytest.fixture
def mollweide_tif(tmp_path: Path) -> Path:
    # 40 x 32 pixels of 1 km in ESRI:54009 (like GHS-POP), upper-left near Baotou
    x0, y0 = Transformer.from_crs("EPSG:4326", "ESRI:54009", always_xy=True).transform(109.6, 40.8)
    values = _values((32, 40), 2).astype(np.float32)
    return _write(tmp_path / "mollweide.tif", values, crs="ESRI:54009",
                  transform=from_origin(round(x0, -3), round(y0, -3), 1000.0, 1000.0))


@pytest.mark.parametrize("which", ["wgs84_tif", "mollweide_tif"])
def test_cell_total_equals_raster_total(session: Session, which: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(which)
    oracle = _oracle_total(path)
    report = build_population(session, path, res=8, source=f"t-{which}", vintage="2020", workers=1)
    total, n = _stored(session, f"t-{which}", 8)
    assert oracle > 0
    assert abs(total - oracle) <= 1e-9 * oracle
    assert abs(report.input_total - oracle) <= 1e-9 * oracle
    src = session.get(PopulationSource, (f"t-{which}", 8))
    assert src is not None and src.cell_count == n and src.vintage == "2020" and not src.modelled
    assert abs(src.input_total - oracle) <= 1e-9 * oracle
    assert n > 1


def test_nodata_is_respected(session: Session, tmp_path: Path) -> None:
    values = np.full((20, 20), NODATA)
    values[3, 4] = 123.5
    values[10, 11] = 7.25
    path = _write(tmp_path / "sparse.tif", values, crs="EPSG:4326", transform=from_origin(110.0, 41.0, 0.01, 0.01))
    build_population(session, path, res=9, source="t-sparse", workers=1)
    cells = _cells(session, "t-sparse", 9)
    # each valid pixel centre lies in its own res-9 cell (pixels ~1 km apart, cells ~0.1 km2)
    expected = {h3.str_to_int(h3.latlng_to_cell(41.0 - 3.5 * 0.01, 110.0 + 4.5 * 0.01, 9)): 123.5,
                h3.str_to_int(h3.latlng_to_cell(41.0 - 10.5 * 0.01, 110.0 + 11.5 * 0.01, 9)): 7.25}
    assert cells == pytest.approx(expected, rel=1e-12)


def test_nan_pixels_without_nodata_are_skipped(session: Session, tmp_path: Path) -> None:
    values = _values((16, 16), 3)
    values[values == NODATA] = np.nan
    path = _write(tmp_path / "nan.tif", values, crs="EPSG:4326", transform=from_origin(110.0, 41.0, 0.01, 0.01),
                  nodata=None, tiled=False)
    build_population(session, path, res=8, source="t-nan", workers=1)
    oracle = float(np.nansum(values))
    total, _ = _stored(session, "t-nan", 8)
    assert abs(total - oracle) <= 1e-9 * oracle


def test_rebuild_replaces_and_does_not_double(session: Session, wgs84_tif: Path, tmp_path: Path) -> None:
    build_population(session, wgs84_tif, res=7, source="t-rebuild", workers=1)
    first = _stored(session, "t-rebuild", 7)
    build_population(session, wgs84_tif, res=7, source="t-rebuild", workers=1)
    assert _stored(session, "t-rebuild", 7) == pytest.approx(first, rel=1e-12)
    other = _write(tmp_path / "other.tif", _values((40, 48), 9), crs="EPSG:4326",
                   transform=from_origin(111.50, 41.00, 0.01, 0.01))
    build_population(session, other, res=7, source="t-rebuild", workers=1)
    total, _ = _stored(session, "t-rebuild", 7)
    assert abs(total - _oracle_total(other)) <= 1e-9 * total
    assert session.execute(select(func.count()).select_from(PopulationSource)
                           .where(PopulationSource.source == "t-rebuild")).scalar_one() == 1


def test_windowed_read_gives_the_same_cells(session: Session, wgs84_tif: Path) -> None:
    whole = build_population(session, wgs84_tif, res=8, source="t-whole", workers=1)
    small = build_population(session, wgs84_tif, res=8, source="t-windows", workers=1, window_pixels=256)
    assert whole.windows == 1 and small.windows == 9  # 48 x 40 pixels in 16 x 16 blocks: 3 x 3 windows
    a, b = _cells(session, "t-whole", 8), _cells(session, "t-windows", 8)
    assert a.keys() == b.keys()
    assert all(abs(a[k] - b[k]) <= 1e-9 * max(1.0, a[k]) for k in a)


def test_worker_processes_give_the_same_total(session: Session, mollweide_tif: Path) -> None:
    report = build_population(session, mollweide_tif, res=8, source="t-pool", workers=2, window_pixels=256)
    assert report.workers == 2 and report.windows > 2
    total, _ = _stored(session, "t-pool", 8)
    oracle = _oracle_total(mollweide_tif)
    assert abs(total - oracle) <= 1e-9 * oracle


def test_dask_cluster_gives_the_cells_and_totals_of_one_process(tmp_path: Path) -> None:
    """A LocalCluster of two workers, 80 windows merged by a tree of merge tasks (8 at a time, three levels):
    the same cells, each with the same people, and the same total as the single-process path and the raster."""
    values = _values((160, 128), seed=9)
    path = _write(tmp_path / "dask.tif", values, crs="EPSG:4326", transform=from_origin(111.0, 41.0, 0.004, 0.004))
    one_c, one_v, one = raster_cells(path, res=8, scheduler="none", window_pixels=256)
    many_c, many_v, many = raster_cells(path, res=8, scheduler="local", workers=2, window_pixels=256)
    assert one["workers"] == 1 and many["workers"] == 2 and many["windows"] == 80
    np.testing.assert_array_equal(many_c, one_c)
    np.testing.assert_allclose(many_v, one_v, rtol=1e-12)
    oracle = _oracle_total(path)
    assert abs(many["input_total"] - one["input_total"]) <= 1e-9 * oracle
    assert abs(float(many_v.sum()) - oracle) <= 1e-9 * oracle
    assert many["valid_pixels"] == one["valid_pixels"] == int(((values != NODATA) & np.isfinite(values)).sum())


def test_points_go_to_the_cell_that_contains_them(session: Session, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    lon, lat = rng.uniform(111.5, 111.9, 500), rng.uniform(40.6, 40.9, 500)
    pop = rng.integers(0, 500, 500).astype(float)
    path = tmp_path / "points.csv"
    lines = [f"p{i},{float(x)!r},{float(y)!r},{float(v)!r}\n"
             for i, (x, y, v) in enumerate(zip(lon, lat, pop, strict=True))]
    path.write_text("name,lon,lat,population\n" + "".join(lines))
    build_population_points(session, path, column="population", res=8, source="t-points")
    oracle: dict[int, float] = defaultdict(float)
    for x, y, v in zip(lon, lat, pop, strict=True):
        oracle[h3.str_to_int(h3.latlng_to_cell(y, x, 8))] += v
    stored = _cells(session, "t-points", 8)
    assert {k: v for k, v in stored.items() if v} == pytest.approx({k: v for k, v in oracle.items() if v},
                                                                    rel=1e-12)
    assert abs(sum(stored.values()) - pop.sum()) <= 1e-9 * pop.sum()


def test_bad_point_rows_are_named_and_nothing_is_written(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("lon,lat,population\n111.6,40.8,10\n211.6,40.8,5\n111.7,40.7,-3\n")
    with pytest.raises(ValidationError) as e:
        build_population_points(session, path, res=8, source="t-bad")
    rows = {(p.row, p.field) for p in e.value.problems}
    assert rows == {(2, "lon"), (3, "population")}
    assert _stored(session, "t-bad", 8) == (0.0, 0)


def test_a_build_that_would_not_conserve_the_total_is_refused(session: Session) -> None:
    cells = np.array([h3.str_to_int(h3.latlng_to_cell(40.8, 111.6, 8))], np.int64)
    with pytest.raises(PopulationBuildError, match="nothing was written"):
        write_cells(session, cells, np.array([100.0]), source="t-refused", res=8, input_total=100.001)
    assert _stored(session, "t-refused", 8) == (0.0, 0)


def test_a_raster_without_crs_is_refused(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float64") as dst:
        dst.write(np.ones((4, 4)), 1)
    with pytest.raises(PopulationBuildError, match="no CRS"):
        build_population(session, path, res=8, source="t-nocrs", workers=1)
