"""Site basemaps: MBTiles and PMTiles archives built here, registered, listed and served by the tile route; tiles
are checked against what was written (the TMS row flip of MBTiles is the classic mistake)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import mapbox_vector_tile
import pytest
from click.testing import CliRunner
from flask import Flask

from dashboards.tiles import basemap_choices, basemap_config, tiles_bp
from layers.render import sitebasemaps
from layers.store.errors import NotFoundError
from layers.store.settings import Settings
from tests.sitebasemap_files import make_mbtiles, make_pmtiles, make_vector_mbtiles, tile_png


def test_an_mbtiles_archive_is_read_and_registered(tmp_path: Path) -> None:
    src = tmp_path / "Hohhot City.mbtiles"
    tiles = make_mbtiles(src)
    info = sitebasemaps.inspect(src)
    assert (info["container"], info["format"], info["min_zoom"], info["max_zoom"]) == ("mbtiles", "png", 5, 9)
    d = tmp_path / "basemaps"
    bm = sitebasemaps.add_basemap(d, src, attribution="© Hohhot survey")
    assert (bm.name, bm.kind, bm.attribution, bm.title) == ("hohhot-city", "raster", "© Hohhot survey", "Test raster")
    assert [b.name for b in sitebasemaps.list_basemaps(d)] == ["hohhot-city"]
    for z, x, y in tiles[:: max(1, len(tiles) // 7)]:
        data, gz = sitebasemaps.read_tile(d, bm, z, x, y)
        assert data == tile_png(z, x, y) and not gz  # XYZ in, the tile written for that XYZ out
    outside = next((z, x, y) for z, x, y in ((5, 0, 0), (9, 0, 0)) if (z, x, y) not in tiles)
    assert sitebasemaps.read_tile(d, bm, *outside) == (None, False)
    with pytest.raises(sitebasemaps.BasemapError, match="exists already"):
        sitebasemaps.add_basemap(d, src)
    sitebasemaps.add_basemap(d, src, replace=True)
    sitebasemaps.remove_basemap(d, "hohhot-city")
    assert sitebasemaps.list_basemaps(d) == [] and not list(d.glob("*.mbtiles"))


def test_a_pmtiles_archive_is_read(tmp_path: Path) -> None:
    src = tmp_path / "city.pmtiles"
    tiles = make_pmtiles(src)
    bm = sitebasemaps.add_basemap(tmp_path / "b", src, name="city")
    assert (bm.container, bm.format, bm.min_zoom, bm.max_zoom) == ("pmtiles", "png", 5, 7)
    assert bm.bounds is not None and abs(bm.bounds[0] - 111.0) < 1e-6
    for z, x, y in tiles:
        assert sitebasemaps.read_tile(tmp_path / "b", bm, z, x, y)[0] == tile_png(z, x, y)


def test_a_vector_archive_knows_its_schema(tmp_path: Path) -> None:
    src = tmp_path / "omt.mbtiles"
    tiles = make_vector_mbtiles(src)
    bm = sitebasemaps.add_basemap(tmp_path / "b", src, name="omt")
    assert (bm.kind, bm.format, bm.schema) == ("vector", "pbf", "openmaptiles")
    data, gz = sitebasemaps.read_tile(tmp_path / "b", bm, *tiles[0])
    assert gz and set(mapbox_vector_tile.decode(gzip.decompress(data or b""))) == {"water", "transportation"}


@pytest.mark.parametrize(("name", "content", "match"), [
    ("Bad Name", None, "not allowed"),
    ("base", None, "not allowed"),
    ("ok", b"not an archive at all", "neither MBTiles"),
    ("ok", b"SQLite format 3\x00" + b"\x00" * 200, "not an MBTiles"),
])
def test_bad_names_and_files_are_refused_naming_why(tmp_path: Path, name: str, content: bytes | None,
                                                     match: str) -> None:
    src = tmp_path / "x.mbtiles"
    if content is None:
        make_mbtiles(src, min_zoom=5, max_zoom=5)
    else:
        src.write_bytes(content)
    with pytest.raises(sitebasemaps.BasemapError, match=match):
        sitebasemaps.add_basemap(tmp_path / "b", src, name=name)
    assert sitebasemaps.list_basemaps(tmp_path / "b") == []


@pytest.fixture
def served(tmp_path: Path) -> tuple[object, Settings, list[tuple]]:
    d = tmp_path / "basemaps"
    tiles = make_mbtiles(tmp_path / "r.mbtiles")
    sitebasemaps.add_basemap(d, tmp_path / "r.mbtiles", name="city")
    make_vector_mbtiles(tmp_path / "v.mbtiles")
    sitebasemaps.add_basemap(d, tmp_path / "v.mbtiles", name="streets")
    s = Settings(basemap="site:city", basemap_dir=d, state_dir=tmp_path)
    app = Flask("t")
    app.config["SITROOM_SETTINGS"] = s
    app.register_blueprint(tiles_bp)
    return app.test_client(), s, tiles


def test_the_route_serves_site_tiles_with_etags(served: tuple) -> None:
    client, _, tiles = served
    z, x, y = tiles[-1]
    r = client.get(f"/tiles/city/{z}/{x}/{y}.png")
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data == tile_png(z, x, y)
    assert client.get(f"/tiles/city/{z}/{x}/{y}.png", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    assert client.get("/tiles/city/3/0/0.png").status_code == 204  # outside the archive: nothing to draw
    assert client.get(f"/tiles/city/{z}/{x}/{y}.jpg").status_code == 404  # not its format
    assert client.get(f"/tiles/nowhere/{z}/{x}/{y}.png").status_code == 404
    assert client.get("/tiles/city/5/99/1.png").status_code == 404  # not a tile


def test_vector_tiles_go_gzipped_to_who_accepts_it(served: tuple) -> None:
    client, _, _ = served
    x, y = 207, 96  # Hohhot at zoom 8
    gz = client.get(f"/tiles/streets/8/{x}/{y}.pbf", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip" and "water" in mapbox_vector_tile.decode(gzip.decompress(gz.data))
    plain = client.get(f"/tiles/streets/8/{x}/{y}.pbf", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and "water" in mapbox_vector_tile.decode(plain.data)


def test_the_settings_choose_the_basemap_the_maps_open_with(served: tuple) -> None:
    _, s, _ = served
    choices = basemap_choices(s, "en")
    assert [(c["key"], c["checked"]) for c in choices] == [("offline", False), ("site:city", True),
                                                          ("site:streets", False)]
    assert basemap_config(s, "zh-CN")["url_template"] == "/tiles/city/{z}/{x}/{y}.png"
    gone = s.model_copy(update={"basemap": "site:gone"})
    assert [c["key"] for c in basemap_choices(gone, "en") if c["checked"]] == ["offline"]
    with pytest.raises(NotFoundError, match="registered: city, streets"):
        basemap_config(gone, "en")


def test_the_command_adds_lists_and_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.cli import main
    from layers.store.settings import get_settings

    monkeypatch.setenv("SITROOM_BASEMAP_DIR", str(tmp_path / "b"))
    get_settings.cache_clear()
    try:
        make_mbtiles(tmp_path / "a.mbtiles", min_zoom=5, max_zoom=6)
        runner = CliRunner()
        r = runner.invoke(main, ["basemap", "add", str(tmp_path / "a.mbtiles"), "--name", "hohhot",
                                 "--attribution", "© Hohhot survey 2026"])
        assert r.exit_code == 0, r.output
        assert "/tiles/hohhot/{z}/{x}/{y}.png" in r.output and "SITROOM_BASEMAP=site:hohhot" in r.output
        listed = runner.invoke(main, ["basemap", "list"])
        assert "hohhot" in listed.output and "© Hohhot survey 2026" in listed.output
        bad = runner.invoke(main, ["basemap", "add", str(tmp_path / "a.mbtiles"), "--name", "hohhot"])
        assert bad.exit_code == 2 and "exists already" in bad.output
        assert json.loads((tmp_path / "b" / "hohhot.json").read_text())["format"] == "png"
        assert runner.invoke(main, ["basemap", "remove", "hohhot"]).exit_code == 0
    finally:
        get_settings.cache_clear()
