"""Affected population against an independent oracle: the exact raster-mask sum of synthetic population
GeoTIFFs (EPSG:4326 at 30 arc-seconds and Mollweide at 1 km), plus conservation from raster to cells to
regions and zone parts."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.features import geometry_mask
from rasterio.transform import from_origin
from shapely.geometry import Point, Polygon, box, mapping

from geoops.h3cells import grid_to_cells, zone_weights
from geoops.population import affected_population, cells_to_regions, rollup, split_by_regions

NODATA = -99999.0
RES = 8
# Resolution of the cells built from each raster. The 1 km Mollweide raster is built at res 7 (cells of
# ~5 km2): at res 8 its pixels are larger than the cells (0.6 km2), every pixel lands whole in one cell,
# and the area weighting at a zone's edge gets noisy (2.1% off the mask sum on the 400 km2 square next to
# a town peak). Pixel centre -> cell is only sound when cells hold several pixels.
RES_OF = {"wgs84": 8, "wgs84_50n": 8, "moll": 7}


def _population(lon, lat, rng):
    """Smooth modelled population (towns with distance decay) plus pixel noise, people per km2."""
    towns = [(113.3, 44.3, 900.0), (114.0, 44.7, 600.0), (115.0, 45.0, 1200.0), (113.2, 45.1, 400.0),
             (119.1, 50.0, 700.0), (114.15, 45.4, 300.0)]
    dens = np.full(lon.shape, 5.0)
    for tx, ty, peak in towns:
        d2 = ((lon - tx) * math.cos(math.radians(ty))) ** 2 + (lat - ty) ** 2
        dens += peak * np.exp(-d2 / (2 * 0.08 ** 2))
    return dens * rng.uniform(0.7, 1.3, size=lon.shape)


def _write(path, data, transform, crs):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
                       dtype="float32", crs=crs, transform=transform, nodata=NODATA) as dst:
        dst.write(data.astype(np.float32), 1)


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    """Two EPSG:4326 rasters (30", ~0.0083 deg: 112.5-116 E x 42.8-45.8 N, and 118.5-120 E x 49.5-50.5 N)
    and a Mollweide 1 km raster over the first; read back from GeoTIFF like a real file."""
    rng = np.random.default_rng(42)
    d = tmp_path_factory.mktemp("pop")
    out = {}
    px = 1 / 120
    for name, (w, n, e, s) in {"wgs84": (112.5, 45.8, 116.0, 42.8), "wgs84_50n": (118.5, 50.5, 120.0, 49.5)}.items():
        nc, nr = round((e - w) / px), round((n - s) / px)
        tr = from_origin(w, n, px, px)
        cols, rows = np.meshgrid(np.arange(nc) + 0.5, np.arange(nr) + 0.5)
        lon, lat = w + cols * px, n - rows * px
        km2 = (px * 111.32) ** 2 * np.cos(np.radians(lat))
        data = _population(lon, lat, rng) * km2
        data[rng.random(data.shape) < 0.01] = NODATA
        data[:20, :30] = NODATA
        data[200:240, 60:100] = 0.0                      # an unpopulated patch
        _write(d / f"{name}.tif", data, tr, "EPSG:4326")
        out[name] = d / f"{name}.tif"
    moll = pyproj.Transformer.from_crs("EPSG:4326", "ESRI:54009", always_xy=True)
    x0, _ = moll.transform(112.3, 46.0)                 # westmost x is at the top
    _, y1 = moll.transform(114.0, 46.0)
    _, y0 = moll.transform(114.0, 42.6)
    x1, _ = moll.transform(116.2, 42.6)
    nc, nr = int((x1 - x0) // 1000), int((y1 - y0) // 1000)
    tr = from_origin(x0, y1, 1000.0, 1000.0)
    cols, rows = np.meshgrid(np.arange(nc) + 0.5, np.arange(nr) + 0.5)
    lon, lat = pyproj.Transformer.from_crs("ESRI:54009", "EPSG:4326", always_xy=True).transform(
        x0 + cols * 1000.0, y1 - rows * 1000.0)
    data = _population(lon, lat, rng) * 1.0             # 1 km2 pixels
    data[rng.random(data.shape) < 0.01] = NODATA
    _write(d / "moll.tif", data, tr, "ESRI:54009")
    out["moll"] = d / "moll.tif"
    return out


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.crs, src.nodata


@pytest.fixture(scope="module")
def cells(rasters):
    """Population cells (res 8) of each raster, built window by window as `population build` does."""
    out = {}
    for name, path in rasters.items():
        data, tr, crs, nodata = _read(path)
        out[name] = grid_to_cells(data, transform=tuple(tr)[:6], crs=crs.to_wkt(), res=RES_OF[name],
                                  nodata=nodata)
    return out


def _mask_sum(path, zone):
    """Oracle: sum of the valid pixels whose centre lies in the zone (zone reprojected to the raster CRS)."""
    data, tr, crs, nodata = _read(path)
    if crs.to_epsg() != 4326:
        t = pyproj.Transformer.from_crs("EPSG:4326", crs.to_wkt(), always_xy=True)
        zone = shapely.transform(shapely.segmentize(zone, 0.002), lambda xy: np.column_stack(t.transform(*xy.T)))
    inside = geometry_mask([mapping(zone)], out_shape=data.shape, transform=tr, invert=True)
    v = data[inside & (data != nodata)].astype(np.float64)
    return math.fsum(v.tolist())


ZONES = {  # all >= 100 km2
    "square_20km": box(113.2, 44.22, 113.45, 44.4),
    "square_100km": box(113.3, 43.5, 114.6, 44.4),
    "circle_r12km": Point(115.0, 45.0).buffer(0.15, quad_segs=64),
    "concave": Polygon([(113.0, 45.0), (113.4, 45.0), (113.4, 45.3), (113.2, 45.12), (113.0, 45.3)]),
    "across_utm_49_50": box(113.8, 44.55, 114.2, 44.85),
}


@pytest.mark.parametrize("raster", ["wgs84", "moll"])
@pytest.mark.parametrize("zone_name", list(ZONES))
def test_affected_population_within_2pct_of_raster_mask(rasters, cells, raster, zone_name):
    zone = ZONES[zone_name]
    wc, wf = zone_weights(zone, res=RES_OF[raster])
    total, per_cells, per_pop = affected_population(wc, wf, *cells[raster])
    oracle = _mask_sum(rasters[raster], zone)
    assert oracle > 1000
    assert abs(total - oracle) / oracle < 0.02, (total, oracle)
    np.testing.assert_array_equal(per_cells, wc)
    assert math.isclose(per_pop.sum(), total, rel_tol=1e-12) and np.all(per_pop >= 0)


def test_zone_at_50n_within_2pct(rasters, cells):
    zone = box(118.95, 49.85, 119.3, 50.15)
    wc, wf = zone_weights(zone, res=RES)
    total, _, _ = affected_population(wc, wf, *cells["wgs84_50n"])
    oracle = _mask_sum(rasters["wgs84_50n"], zone)
    assert abs(total - oracle) / oracle < 0.02


@pytest.mark.parametrize("raster", ["wgs84", "wgs84_50n", "moll"])
def test_raster_total_conserved_in_cells(rasters, cells, raster):
    data, _, _, nodata = _read(rasters[raster])
    total = math.fsum(data[data != nodata].astype(np.float64).tolist())
    c, s = cells[raster]
    assert abs(math.fsum(s.tolist()) - total) <= 1e-9 * total
    assert c.dtype == np.int64 and np.all(np.diff(c) > 0)


@pytest.fixture(scope="module")
def counties():
    """Three synthetic counties: west and east of 113.6 E below a jagged border, and one north of it."""
    border = [(116.0, 44.1), (114.5, 44.25), (113.6, 44.05), (112.5, 44.15)]
    north = Polygon([*border, (112.5, 45.8), (116.0, 45.8)])
    south_w = Polygon([(112.5, 42.8), (113.6, 42.8), (113.6, 44.05), (112.5, 44.15)])
    south_e = Polygon([(113.6, 42.8), (116.0, 42.8), (116.0, 44.1), (114.5, 44.25), (113.6, 44.05)])
    return gpd.GeoDataFrame({"adcode": ["150101", "150102", "150103"], "name": ["西县", "东县", "北县"]},
                            geometry=[south_w, south_e, north], crs="EPSG:4326")


def test_split_by_regions_parts_sum_to_total_and_match_mask(rasters, cells, counties):
    zone = box(113.3, 43.9, 113.9, 44.3)                        # crosses the west/east border and the north
    wc, wf = zone_weights(zone, res=RES)
    total, _, _ = affected_population(wc, wf, *cells["wgs84"])
    df = split_by_regions(zone, counties, *cells["wgs84"], res=RES)
    assert list(df.columns) == ["adcode", "name", "population"]
    assert set(df["adcode"]) == {"150101", "150102", "150103"}
    assert math.isclose(df["population"].sum(), total, rel_tol=1e-9)
    for _, row in df.iterrows():
        part = zone.intersection(counties.loc[counties["adcode"] == row["adcode"], "geometry"].iloc[0])
        if part.area > 0.01:                                      # >= ~100 km2: the oracle's 2% applies
            oracle = _mask_sum(rasters["wgs84"], part)
            assert abs(row["population"] - oracle) / oracle < 0.02, (row["adcode"], row["population"], oracle)


def test_split_by_regions_reports_the_uncovered_remainder(cells, counties):
    zone = box(115.8, 44.0, 116.0, 44.2)                        # half of it east of every county
    wc, wf = zone_weights(zone, res=RES)
    total, _, _ = affected_population(wc, wf, *cells["wgs84"])
    df = split_by_regions(zone, counties.iloc[:2].assign(geometry=lambda g: g.geometry.clip(box(0, 0, 115.9, 90))),
                          *cells["wgs84"], res=RES)
    assert df["adcode"].isna().sum() == 1
    assert math.isclose(df["population"].sum(), total, rel_tol=1e-9)


def test_rollup_conserves_cells_to_regions(cells, counties):
    c, s = cells["wgs84"]
    keys = cells_to_regions(c, counties)
    assert keys.shape == c.shape and set(keys.tolist()) <= {"150101", "150102", "150103", None}
    r = rollup(c, s, keys)
    assert math.isclose(r.sum(), s.sum(), rel_tol=1e-12)
    assert r.index.isna().sum() <= 1
    # independent: centre-in-polygon by shapely for a sample of cells
    from geoops.h3cells import cell_centres
    lon, lat = cell_centres(c[::997])
    for i, (x, y) in enumerate(zip(lon, lat, strict=False)):
        inside = counties[counties.contains(Point(x, y))]["adcode"].tolist()
        assert (keys[::997][i] in inside) if inside else keys[::997][i] is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1e6), st.sampled_from(["a", "b", "c", None])),
                max_size=60))
def test_rollup_property_totals_conserved(items):
    cells = np.array([i for i, _, _ in items], dtype=np.int64)
    vals = np.array([v for _, v, _ in items], dtype=np.float64)
    keys = np.array([k for _, _, k in items], dtype=object)
    r = rollup(cells, vals, keys)
    assert math.isclose(r.sum(), vals.sum(), rel_tol=1e-12, abs_tol=1e-9)


def test_empty_zone_and_zone_without_population(cells, counties):
    wc, wf = zone_weights(Polygon(), res=RES)
    total, pc, pp = affected_population(wc, wf, *cells["wgs84"])
    assert total == 0.0 and pc.shape == (0,) and pp.shape == (0,) and pc.dtype == np.int64
    df = split_by_regions(Polygon(), counties, *cells["wgs84"], res=RES)
    assert list(df.columns) == ["adcode", "name", "population"] and len(df) == 0
    # the unpopulated patch (rows 200-240, cols 60-100 of the wgs84 raster) and a zone off the raster
    px = 1 / 120
    patch = box(112.5 + 65 * px, 45.8 - 235 * px, 112.5 + 95 * px, 45.8 - 205 * px)
    for zone in (patch, box(100.0, 30.0, 100.2, 30.2)):
        wc, wf = zone_weights(zone, res=RES)
        total, pc, pp = affected_population(wc, wf, *cells["wgs84"])
        assert total == 0.0 and pc.shape == wc.shape == pp.shape and not np.isnan(pp).any()
