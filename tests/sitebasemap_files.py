"""Small basemap archives built in the tests: a raster MBTiles, a raster PMTiles and a vector MBTiles in the
OpenMapTiles schema, each covering a bbox at a few zooms, with tiles whose content says where they belong.

Public: :func:`tile_png`, :func:`make_mbtiles`, :func:`make_pmtiles`, :func:`make_vector_mbtiles`, :data:`COLOUR`.
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
from pathlib import Path

from PIL import Image, ImageDraw

from layers.render.tiles import tiles_for_bbox

#: the fill of every test raster tile (a colour no basemap of ours uses): the browser test looks for it
COLOUR = (255, 0, 200)
HOHHOT_BBOX = (111.0, 40.3, 112.5, 41.3)


def tile_png(z: int, x: int, y: int) -> bytes:
    """A 256 px PNG in :data:`COLOUR` with its own address written on it."""
    img = Image.new("RGB", (256, 256), COLOUR)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 255, 255), outline=(40, 40, 40))
    d.text((10, 10), f"{z}/{x}/{y}", fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_mbtiles(path: Path, *, bbox: tuple[float, float, float, float] = HOHHOT_BBOX, min_zoom: int = 5,
                 max_zoom: int = 9, name: str = "Test raster", attribution: str = "© test tiles") -> list[tuple]:
    """A raster MBTiles 1.3 (TMS rows) of :func:`tile_png` tiles; returns the XYZ tiles it holds."""
    tiles = tiles_for_bbox(bbox, min_zoom=min_zoom, max_zoom=max_zoom)
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        c.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        c.executemany("INSERT INTO metadata VALUES (?, ?)", [
            ("name", name), ("format", "png"), ("minzoom", str(min_zoom)), ("maxzoom", str(max_zoom)),
            ("bounds", ",".join(map(str, bbox))), ("attribution", attribution), ("type", "baselayer")])
        c.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                      [(z, x, (1 << z) - 1 - y, tile_png(z, x, y)) for z, x, y in tiles])
    return tiles


def make_pmtiles(path: Path, *, bbox: tuple[float, float, float, float] = HOHHOT_BBOX, min_zoom: int = 5,
                 max_zoom: int = 7) -> list[tuple]:
    """A raster PMTiles 3 archive of :func:`tile_png` tiles (written by the ``pmtiles`` package)."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    tiles = sorted(tiles_for_bbox(bbox, min_zoom=min_zoom, max_zoom=max_zoom), key=lambda t: zxy_to_tileid(*t))
    with write(str(path)) as w:
        for z, x, y in tiles:
            w.write_tile(zxy_to_tileid(z, x, y), tile_png(z, x, y))
        w.finalize({"tile_type": TileType.PNG, "tile_compression": Compression.NONE, "min_zoom": min_zoom,
                    "max_zoom": max_zoom, "min_lon_e7": int(bbox[0] * 1e7), "min_lat_e7": int(bbox[1] * 1e7),
                    "max_lon_e7": int(bbox[2] * 1e7), "max_lat_e7": int(bbox[3] * 1e7), "center_zoom": min_zoom,
                    "center_lon_e7": int((bbox[0] + bbox[2]) / 2 * 1e7),
                    "center_lat_e7": int((bbox[1] + bbox[3]) / 2 * 1e7)},
                   {"name": "Test PMTiles", "attribution": "© test pmtiles"})
    return tiles


def make_vector_mbtiles(path: Path, *, bbox: tuple[float, float, float, float] = HOHHOT_BBOX, zoom: int = 8,
                        road_y: int = 2048) -> list:
    """A vector MBTiles in the OpenMapTiles schema (a ``water`` square 500-1500 of the 4096 extent and a primary
    ``transportation`` line across at ``road_y`` in each tile, in mapbox_vector_tile's default axes: y up, so 500 is
    3596 from the tile's top; gzip-compressed as tippecanoe and OpenMapTiles write them)."""
    import mapbox_vector_tile

    tiles = tiles_for_bbox(bbox, min_zoom=zoom, max_zoom=zoom)
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        c.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        layers = {"vector_layers": [{"id": "water", "fields": {}}, {"id": "transportation", "fields": {"class": "String"}}]}
        c.executemany("INSERT INTO metadata VALUES (?, ?)", [
            ("name", "Test vector"), ("format", "pbf"), ("minzoom", str(zoom)), ("maxzoom", str(zoom)),
            ("bounds", ",".join(map(str, bbox))), ("json", json.dumps(layers))])
        for z, x, y in tiles:
            data = mapbox_vector_tile.encode([
                {"name": "water", "features": [{"geometry": "POLYGON ((500 500, 1500 500, 1500 1500, 500 1500, 500 500))",
                                                "properties": {}}]},
                {"name": "transportation", "features": [{"geometry": f"LINESTRING (0 {road_y}, 4096 {road_y})",
                                                         "properties": {"class": "primary"}}]}])
            c.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, (1 << z) - 1 - y, gzip.compress(data)))
    return tiles
