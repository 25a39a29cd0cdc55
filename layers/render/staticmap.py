"""Static map images for reports: the offline basemap (:mod:`layers.render.tiles`) stitched and overlaid with features.

Public: :data:`LEVEL_COLOURS`, :data:`SEVERITY_COLOURS`, :data:`SHELTER_COLOUR`, :func:`zoom_for_bbox`,
:func:`lonlat_to_pixels`, :func:`render_map`.

A situation report (态势报告) needs one picture of the situation that a PDF can hold: no browser, no network. The
map is composed of basemap tiles (:func:`layers.render.tiles.get_tile`: from the tile cache, rendered and cached when
missing) at the deepest zoom at which the features' bounding box fits the image, cropped to the image centred on
the box, then hazards filled by warning level, shelters and incidents drawn on top (Pillow + aggdraw, the
basemap's own drawing stack). Everything is in Web Mercator pixels (EPSG:3857), as the tiles are.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aggdraw
import numpy as np
import shapely
from PIL import Image

from layers.render.tiles import MAX_LAT, TILE_SIZE, BasemapContent, get_tile
from layers.store.errors import RowError, ValidationError

__all__ = ["LEVEL_COLOURS", "SEVERITY_COLOURS", "SHELTER_COLOUR", "zoom_for_bbox", "lonlat_to_pixels",
           "render_map"]

#: China's four warning colours (GB/T 27962 style), as drawn on the wall
LEVEL_COLOURS: dict[str, str] = {"blue": "#1f6fd1", "yellow": "#e8c400", "orange": "#f07c00", "red": "#d7191c"}
#: incident severity -> dot colour (一般/较大/重大/特别重大)
SEVERITY_COLOURS: dict[str, str] = {"general": "#2f7d32", "large": "#e0a800", "major": "#e8590c",
                                    "extraordinary": "#a50f15"}
SHELTER_COLOUR = "#0b6e99"
MIN_MAP_ZOOM, MAX_MAP_ZOOM = 3, 12
MAX_IMAGE_PX = 2400


def lonlat_to_pixels(lon: Any, lat: Any, z: int) -> np.ndarray:
    """Global Web Mercator pixel coordinates (x east, y south; 256 px tiles) of lon/lat degrees at zoom ``z``.

    Examples
    --------
    >>> lonlat_to_pixels([0.0, 180.0], [0.0, 0.0], 0).tolist()
    [[128.0, 128.0], [256.0, 128.0]]
    """
    lon_a = np.asarray(lon, dtype=np.float64).ravel()
    lat_a = np.clip(np.asarray(lat, dtype=np.float64).ravel(), -MAX_LAT, MAX_LAT)
    n = TILE_SIZE * float(1 << int(z))
    s = np.sin(np.radians(lat_a))
    return np.column_stack(((lon_a + 180.0) / 360.0 * n, (0.5 - np.log((1 + s) / (1 - s)) / (4 * math.pi)) * n))


def _check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValidationError([RowError(None, "bbox", bbox, "west,south,east,north in degrees")],
                              f"bbox must be 4 numbers west,south,east,north, got {bbox!r}") from None
    if not (-180 <= w <= e <= 180 and -MAX_LAT <= s <= n <= MAX_LAT):
        raise ValidationError([RowError(None, "bbox", bbox, "-180<=west<=east<=180, -85.05<=south<=north<=85.05")],
                              f"bbox out of range or inverted: {bbox!r}")
    return w, s, e, n


def zoom_for_bbox(bbox: Sequence[float], *, width_px: int, height_px: int, margin_px: int = 24) -> int:
    """The deepest zoom (3..12) at which ``bbox`` (west, south, east, north, degrees) fits the image with margins.

    Examples
    --------
    >>> zoom_for_bbox((97.0, 37.0, 126.5, 53.5), width_px=1000, height_px=700)   # Inner Mongolia
    5
    >>> zoom_for_bbox((111.6, 40.7, 111.9, 40.9), width_px=1000, height_px=700)  # Hohhot
    11
    """
    w, s, e, n = _check_bbox(bbox)
    for z in range(MAX_MAP_ZOOM, MIN_MAP_ZOOM - 1, -1):
        p = lonlat_to_pixels([w, e], [n, s], z)
        if p[1, 0] - p[0, 0] <= width_px - 2 * margin_px and p[1, 1] - p[0, 1] <= height_px - 2 * margin_px:
            return z
    return MIN_MAP_ZOOM


def _basemap_image(z: int, left: float, top: float, width_px: int, height_px: int, *, content: BasemapContent,
                   basemap: str, cache_dir: Path) -> Image.Image:
    canvas = Image.new("RGB", (width_px, height_px), "#a9cfe0")
    n = 1 << z
    x0, y0 = int(math.floor(left / TILE_SIZE)), int(math.floor(top / TILE_SIZE))
    x1, y1 = int(math.floor((left + width_px - 1) / TILE_SIZE)), int(math.floor((top + height_px - 1) / TILE_SIZE))
    for ty in range(max(y0, 0), min(y1, n - 1) + 1):
        for tx in range(x0, x1 + 1):
            png, _ = get_tile(z, tx % n, ty, content=content, basemap=basemap, cache_dir=cache_dir)
            with Image.open(io.BytesIO(png)) as tile:
                canvas.paste(tile.convert("RGB"), (int(round(tx * TILE_SIZE - left)), int(round(ty * TILE_SIZE - top))))
    return canvas


def _polygon_path(geom: Any, z: int, left: float, top: float) -> aggdraw.Path | None:
    polys = shapely.get_parts(shapely.orient_polygons(np.asarray([geom], dtype=object), exterior_cw=False))
    polys = polys[shapely.get_type_id(polys) == 3]
    if not len(polys):
        return None
    coords, idx = shapely.get_coordinates(shapely.get_rings(polys), return_index=True)
    if not len(coords):
        return None
    px = lonlat_to_pixels(coords[:, 0], coords[:, 1], z) - (left, top)
    path = aggdraw.Path()
    for ring in np.split(px, np.flatnonzero(np.diff(idx)) + 1):
        if len(ring) >= 3:
            path.polygon(ring.ravel().tolist())
    return path


def render_map(*, bbox: Sequence[float], content: BasemapContent, cache_dir: Path,
               hazards: Iterable[Mapping[str, Any]] = (), incidents: Iterable[Mapping[str, Any]] = (),
               shelters: Iterable[Mapping[str, Any]] = (), width_px: int = 1000, height_px: int = 640,
               basemap: str = "base", image_format: str = "png", jpeg_quality: int = 88) -> dict[str, Any]:
    """Draw the situation on the offline basemap and return the PNG with its zoom and bounds.

    Parameters
    ----------
    bbox : 4 floats
        west, south, east, north (degrees, EPSG:4326) that must be visible; the image is centred on it.
    content, cache_dir
        Basemap content (:func:`layers.render.tiles.current_content`) and the tile cache directory.
    hazards : iterable of mapping
        ``geometry`` (shapely polygonal, lon/lat) and ``warning_level`` (blue/yellow/orange/red); drawn red last.
    incidents : iterable of mapping
        ``lon``, ``lat``, ``severity``: dots coloured by severity, the graver on top.
    shelters : iterable of mapping
        ``lon``, ``lat``: blue squares.
    width_px, height_px : int
        Image size in pixels (64..2400).
    basemap : str
        A basemap of :data:`layers.render.tiles.BASEMAPS` (``base`` light with Chinese labels, ``base-en`` English).
    image_format : {"png", "jpeg"}
        JPEG is what a PDF embeds as it is (no re-encoding by the PDF writer: several times faster there).
    jpeg_quality : int
        1..95, for JPEG.

    Returns
    -------
    dict
        ``image`` (bytes), ``media_type`` (``image/png`` or ``image/jpeg``), ``zoom``, ``bounds`` (west, south,
        east, north of the image), ``width_px``,
        ``height_px``.

    Raises
    ------
    layers.store.errors.ValidationError
        Bad bbox or image size.
    layers.render.tiles.TileError
        Unknown basemap.
    """
    if image_format not in ("png", "jpeg"):
        raise ValidationError([RowError(None, "image_format", image_format, "png, jpeg")],
                              f"image_format must be png or jpeg, got {image_format!r}")
    for name, v in (("width_px", width_px), ("height_px", height_px)):
        if not 64 <= int(v) <= MAX_IMAGE_PX:
            raise ValidationError([RowError(None, name, v, f"64..{MAX_IMAGE_PX}")], f"{name} out of range: {v!r}")
    w, s, e, n = _check_bbox(bbox)
    z = zoom_for_bbox((w, s, e, n), width_px=width_px, height_px=height_px)
    corners = lonlat_to_pixels([w, e], [n, s], z)
    cx, cy = corners.mean(axis=0)
    left, top = cx - width_px / 2.0, cy - height_px / 2.0
    img = _basemap_image(z, left, top, width_px, height_px, content=content, basemap=basemap, cache_dir=cache_dir)
    draw = aggdraw.Draw(img)
    rank = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}
    for hz in sorted(hazards, key=lambda h: rank.get(str(h.get("warning_level")), -1)):
        colour = LEVEL_COLOURS.get(str(hz.get("warning_level")), "#777777")
        path = _polygon_path(hz["geometry"], z, left, top)
        if path is not None:
            draw.path(path, aggdraw.Pen(colour, 2.0, 230), aggdraw.Brush(colour, 95))
    for sh in shelters:
        x, y = lonlat_to_pixels([sh["lon"]], [sh["lat"]], z)[0] - (left, top)
        draw.rectangle((x - 4, y - 4, x + 4, y + 4), aggdraw.Pen("#ffffff", 1.2), aggdraw.Brush(SHELTER_COLOUR))
    order = {"general": 0, "large": 1, "major": 2, "extraordinary": 3}
    pts = sorted(incidents, key=lambda i: order.get(str(i.get("severity")), -1))
    if pts:
        xy = lonlat_to_pixels([p["lon"] for p in pts], [p["lat"] for p in pts], z) - (left, top)
        for p, (x, y) in zip(pts, xy, strict=True):
            r = 3.0 + order.get(str(p.get("severity")), 0)
            draw.ellipse((x - r, y - r, x + r, y + r), aggdraw.Pen("#ffffff", 1.0),
                         aggdraw.Brush(SEVERITY_COLOURS.get(str(p.get("severity")), "#555555")))
    draw.flush()
    buf = io.BytesIO()
    if image_format == "jpeg":
        img.save(buf, format="JPEG", quality=int(min(max(jpeg_quality, 1), 95)))
    else:
        img.save(buf, format="PNG", compress_level=6)
    ((bw, bn), (be, bs)) = _pixels_to_lonlat(np.array([[left, top], [left + width_px, top + height_px]]), z)
    return {"image": buf.getvalue(), "media_type": f"image/{image_format}", "zoom": z, "bounds": (bw, bs, be, bn),
            "width_px": int(width_px),
            "height_px": int(height_px)}


def _pixels_to_lonlat(px: np.ndarray, z: int) -> np.ndarray:
    n = TILE_SIZE * float(1 << int(z))
    lon = px[:, 0] / n * 360.0 - 180.0
    lat = np.degrees(np.arctan(np.sinh(math.pi * (1 - 2 * px[:, 1] / n))))
    return np.column_stack((lon, lat))
