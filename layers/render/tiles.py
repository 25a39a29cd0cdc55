"""Offline basemap: XYZ tile maths (Web Mercator, EPSG:3857), a raster renderer and the tile cache writer.

Public: :data:`TILE_SIZE`, :data:`MIN_ZOOM`, :data:`MAX_ZOOM`, :data:`DEMO_BBOX`, :data:`STYLES`, :data:`BASEMAPS`,
:data:`RENDERER_VERSION`, :class:`TileError`, :class:`Style`, :class:`BasemapContent`, :class:`BuildStats`,
:func:`tile_bounds`, :func:`tile_for_lonlat`, :func:`tiles_for_bbox`, :func:`check_tile`, :func:`load_content`,
:func:`current_content`, :func:`render_tile`, :func:`tile_path`, :func:`get_tile`, :func:`build_tiles`,
:func:`prune_cache`.

Tiles are 256 px PNGs in the XYZ scheme (x from 180 W eastwards, y from 85.05 N southwards). The renderer draws,
in order: water background, land and lakes (Natural Earth 1:10m, generalised up to z5), rivers (1:50m), county /
prefecture / province boundaries from ``admin_regions``, and GeoNames place labels (Chinese or English) placed once
per zoom with a global, deterministic collision test so that labels continue seamlessly across tile edges.
Drawing is Pillow + aggdraw (Anti-Grain Geometry): anti-aliased, about 10-30 ms a tile, no system libraries.

A cached tile lives at ``<cache_dir>/<basemap>/<version>/<z>/<x>/<y>.png``; ``version`` hashes the renderer, the
committed Natural Earth files, the ``admin_regions`` stamp (live count, last update, last delete), the GeoNames
package version and the label font, so changed boundaries invalidate every tile at once.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import aggdraw
import numpy as np
import shapely
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from layers.render import basemap_data as bd
from layers.store.errors import StoreError
from layers.store.gazetteer import Place, places_version

log = logging.getLogger(__name__)

TILE_SIZE = 256
#: pixel scales a tile is drawn at: 1 (256 px), 2 (512 px: ``@2x`` in URLs and the cache)
SCALES = (1, 2)
#: Zooms the server accepts; content is drawn for 3-12 (deeper zooms are served, but show no more detail).
MIN_ZOOM, MAX_ZOOM = 0, 18
#: Inner Mongolia (the demo region), west, south, east, north in degrees: what ``sitroom tiles build`` pre-renders.
DEMO_BBOX = (97.0, 37.0, 126.5, 53.5)
#: Bump when the drawing changes: it is part of every cache key.
RENDERER_VERSION = "2"
MAX_LAT = 85.0511287798066

CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


class TileError(StoreError, ValueError):
    """A tile address, basemap name, style or option that does not exist."""


# --- tile maths ------------------------------------------------------------------------------------------------------


def check_tile(z: int, x: int, y: int) -> None:
    """Raise :class:`TileError` unless ``z/x/y`` is a tile (``0 <= z <= 18``, ``0 <= x, y < 2**z``).

    >>> check_tile(8, 207, 96)
    >>> check_tile(3, 8, 0)
    Traceback (most recent call last):
    ...
    layers.render.tiles.TileError: tile x must be in [0, 7] at zoom 3, got 8
    """
    for name, v in (("z", z), ("x", x), ("y", y)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TileError(f"tile {name} must be an integer, got {v!r}")
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise TileError(f"zoom must be in [{MIN_ZOOM}, {MAX_ZOOM}], got {z}")
    n = 1 << z
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise TileError(f"tile {name} must be in [0, {n - 1}] at zoom {z}, got {v}")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Bounds of tile ``z/x/y`` as (west, south, east, north), degrees (EPSG:4326).

    >>> tile_bounds(0, 0, 0)
    (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
    >>> [round(v, 4) for v in tile_bounds(1, 1, 0)]
    [0.0, 0.0, 180.0, 85.0511]
    """
    check_tile(z, x, y)
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return (x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y))


def tile_for_lonlat(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The (x, y) of the zoom-``z`` tile holding a point (lon, lat in degrees; latitudes clamped to 85.05).

    >>> tile_for_lonlat(111.75, 40.84, 8)   # Hohhot
    (207, 96)
    """
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise TileError(f"lon must be in [-180, 180] and lat in [-90, 90], got ({lon!r}, {lat!r})")
    n = 1 << z
    lat = min(max(lat, -MAX_LAT), MAX_LAT)
    s = math.sin(math.radians(lat))
    fx = (lon + 180.0) / 360.0 * n
    fy = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n
    return min(int(fx), n - 1), min(max(int(fy), 0), n - 1)


def tiles_for_bbox(bbox: tuple[float, float, float, float], *, min_zoom: int, max_zoom: int
                   ) -> list[tuple[int, int, int]]:
    """Every tile ``(z, x, y)`` meeting ``bbox`` (west, south, east, north, degrees) for zooms min..max.

    >>> tiles_for_bbox((111.0, 40.0, 112.0, 40.9), min_zoom=3, max_zoom=4)
    [(3, 6, 3), (4, 12, 6)]
    """
    west, south, east, north = bbox
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise TileError(f"bbox must be west,south,east,north in degrees with west<east and south<north, got {bbox!r}")
    if not MIN_ZOOM <= min_zoom <= max_zoom <= MAX_ZOOM:
        raise TileError(f"zooms must satisfy {MIN_ZOOM} <= min_zoom <= max_zoom <= {MAX_ZOOM}, "
                        f"got min_zoom={min_zoom}, max_zoom={max_zoom}")
    out = []
    for z in range(min_zoom, max_zoom + 1):
        x0, y0 = tile_for_lonlat(west, north, z)
        x1, y1 = tile_for_lonlat(east, south, z)
        out += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return out


def _to_pixels(coords: np.ndarray, z: int, x: int, y: int) -> np.ndarray:
    """(lon, lat) degrees -> pixel coordinates inside tile z/x/y (float, may lie outside 0..256)."""
    n = TILE_SIZE * float(1 << z)
    out = np.empty((len(coords), 2))
    out[:, 0] = (coords[:, 0] + 180.0) / 360.0 * n - x * TILE_SIZE
    s = np.sin(np.radians(np.clip(coords[:, 1], -MAX_LAT, MAX_LAT)))
    out[:, 1] = (0.5 - np.log((1 + s) / (1 - s)) / (4 * math.pi)) * n - y * TILE_SIZE
    return out


def _global_pixel(lon: float, lat: float, z: int) -> tuple[float, float]:
    p = _to_pixels(np.array([[lon, lat]]), z, 0, 0)[0]
    return float(p[0]), float(p[1])


# --- styles ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """Colours of one cartographic style (hex RGB)."""

    water: str
    land: str
    river: str
    county: str
    prefecture: str
    province: str
    label: str
    halo: str
    dot: str


STYLES: dict[str, Style] = {
    # light desktop: pale land, soft blue water, violet administrative lines (the usual Chinese atlas convention)
    "light": Style(water="#a9cfe0", land="#f4f1ea", river="#8dbbd3", county="#d3c7da", prefecture="#b59ec6",
                   province="#8a63a8", label="#2b2b2b", halo="#ffffff", dot="#4a4a4a"),
    # dark command-hall wall: low-luminance land and water so that hazard colours stand out
    "dark": Style(water="#0a1622", land="#18222e", river="#1e4563", county="#324054", prefecture="#44546c",
                  province="#6b7f9e", label="#c8d3e0", halo="#0a1622", dot="#8fa3bd"),
}

#: Basemap name in URLs and the cache -> (style, label language).
BASEMAPS: dict[str, tuple[str, str]] = {
    "base": ("light", "zh-CN"),
    "base-dark": ("dark", "zh-CN"),
    "base-en": ("light", "en"),
    "base-dark-en": ("dark", "en"),
}

# zoom -> minimum population of a labelled place; deeper zooms label every place (collisions still thin them)
_LABEL_MIN_POP = {3: 3_000_000, 4: 1_500_000, 5: 600_000, 6: 250_000, 7: 100_000, 8: 40_000, 9: 15_000}


GENERALISE_MAX_ZOOM = 8


def _tolerance_deg(z: int) -> float:
    """A third of a pixel at zoom ``z`` at 35 degrees N, in degrees (the simplification tolerance)."""
    return 0.33 * 360.0 / (TILE_SIZE * (1 << z)) * math.cos(math.radians(35.0))


def _river_width(z: int) -> float:
    return 0.6 if z <= 4 else 0.9 if z <= 6 else 1.3 if z <= 9 else 2.0


def _admin_width(level: str, z: int) -> float:
    if level == "province":
        return 0.9 if z <= 4 else 1.4 if z <= 7 else 2.0
    if level == "prefecture":
        return 0.7 if z <= 8 else 1.2
    return 0.6 if z <= 9 else 0.9


def _admin_min_zoom(level: str) -> int:
    return {"province": 0, "prefecture": 6, "county": 8}.get(level, 99)


# --- fonts -----------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _cjk_font() -> tuple[str, int] | None:
    """(path, face index) of a Simplified-Chinese face, or None when no CJK font is installed."""
    for path in CJK_FONTS:
        if not os.path.exists(path):
            continue
        for index in range(8):
            try:
                f = ImageFont.truetype(path, 12, index=index)
            except OSError:
                break
            if "SC" in " ".join(n or "" for n in f.getname()) or index == 0 and not path.endswith(".ttc"):
                return path, index
        return path, 0
    return None


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    cjk = _cjk_font()
    if cjk is not None:
        return ImageFont.truetype(cjk[0], size, index=cjk[1])
    return ImageFont.load_default(size)


def _font_key() -> str:
    cjk = _cjk_font()
    return f"{cjk[0]}#{cjk[1]}" if cjk else "default"


# --- content ---------------------------------------------------------------------------------------------------------


_DERIVED: dict[tuple[Any, ...], tuple[object, Any]] = {}
_DERIVED_LOCK = threading.Lock()


def _derived(source: object, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """``make()`` computed once per process for ``(source, key)``: generalised geometry and label layouts are
    shared by every content object drawn from the same (immutable) layer or places."""
    k = (id(source), *key)
    hit = _DERIVED.get(k)
    if hit is None or hit[0] is not source:
        with _DERIVED_LOCK:
            hit = _DERIVED.get(k)
            if hit is None or hit[0] is not source:
                hit = (source, make())  # holding ``source`` keeps its id from being reused
                _DERIVED[k] = hit
    return hit[1]


@dataclass(frozen=True)
class BasemapContent:
    """Everything a tile is drawn from, and its version (part of every cache key)."""

    naturalearth: dict[str, bd.VectorLayer]
    admin: dict[str, bd.VectorLayer]
    places: tuple[Place, ...]
    version: str
    admin_stamp: str

    def layer(self, name: str, z: int) -> bd.VectorLayer:
        """A Natural Earth layer (``land_10m`` ...) or ``admin:<level>``, generalised for zoom ``z``.

        Up to z8 the whole layer is simplified once per zoom and process (a third of a pixel) and kept; deeper
        zooms use the full geometry (and :func:`render_tile` simplifies what it clipped).
        """
        if name.startswith("admin:"):
            layer = self.admin.get(name[6:]) or bd.VectorLayer.of([])
        else:
            layer = self.naturalearth[name]
        if not len(layer.geoms) or z > GENERALISE_MAX_ZOOM:
            return layer

        def make() -> bd.VectorLayer:
            simple = shapely.simplify(layer.geoms, _tolerance_deg(z))
            if not name.startswith(("admin:", "rivers")):
                simple = shapely.orient_polygons(simple, exterior_cw=False)
            return bd.VectorLayer.of(simple)

        return _derived(layer, ("generalised", z), make)

    def labels(self, z: int, lang: str) -> dict[str, Any]:
        """Labels shown at zoom ``z``: text, size, global pixel anchor and box, chosen most-populous-first."""
        return _derived(self.places, ("labels", z, lang, _font_key()),
                        lambda: _layout_labels(self.places, z, lang))


def _make_version(admin_stamp: str) -> str:
    parts = (RENDERER_VERSION, bd.naturalearth_version(), admin_stamp, places_version(), _font_key())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def load_content(session: Session | None = None) -> BasemapContent:
    """Read what the basemap draws: the committed Natural Earth data, admin boundaries from ``session`` (none
    without a session, or with an empty table), and GeoNames places."""
    if session is None:
        admin: dict[str, bd.VectorLayer] = {}
        stamp = "nodb"
    else:
        stamp = bd.admin_stamp(session)
        admin = bd.fetch_admin_boundaries(session)
    return BasemapContent(bd.load_naturalearth(), admin, bd.load_places(), _make_version(stamp), stamp)


_CURRENT: dict[str, tuple[float, BasemapContent]] = {}
_CURRENT_LOCK = threading.Lock()


def current_content(engine: Engine | None, *, max_age_s: float = 30.0) -> BasemapContent:
    """The process-wide content for ``engine``, re-checked against ``admin_regions`` at most every ``max_age_s``.

    Boundaries are re-read only when the table's stamp changed. If the database cannot be reached, the last content
    is kept (or, before any, content without boundaries whose version says so, retried after ``max_age_s``).
    """
    key = str(engine.url) if engine is not None else "-"
    now = time.monotonic()
    hit = _CURRENT.get(key)
    if hit is not None and now - hit[0] < max_age_s:
        return hit[1]
    with _CURRENT_LOCK:
        hit = _CURRENT.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age_s:
            return hit[1]
        content = hit[1] if hit else None
        if engine is None:
            content = content or load_content(None)
        else:
            try:
                with Session(engine) as s:
                    stamp = bd.admin_stamp(s)
                    if content is None or content.admin_stamp != stamp:
                        content = load_content(s)
            except Exception as e:  # noqa: BLE001 - a database outage must not blank the map
                log.warning("basemap: admin_regions unreachable (%s); drawing without fresh boundaries", e)
                content = content or load_content(None)
        _CURRENT[key] = (time.monotonic(), content)
        return content


# --- labels ----------------------------------------------------------------------------------------------------------


def _label_text(p: Place, lang: str) -> str | None:
    """The label of a place; in Chinese, places GeoNames has no Chinese name for are left out (no mixed labels)."""
    if lang == "zh-CN" and _cjk_font() is not None:
        return p.name_zh
    return p.name_en


def _font_size(population: int) -> int:
    return 15 if population >= 2_000_000 else 13 if population >= 500_000 else 12


def _layout_labels(places: Iterable[Place], z: int, lang: str) -> dict[str, Any]:
    min_pop = _LABEL_MIN_POP.get(z, 0) if z >= 3 else 10**12
    cell = 128.0
    grid: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
    texts, sizes, anchors, boxes = [], [], [], []
    for p in places:
        if p.population < min_pop:
            continue
        text = _label_text(p, lang)
        if not text:
            continue
        size = _font_size(p.population)
        left, top, right, bottom = _font(size).getbbox(text)
        w, h = right - left, bottom - top
        gx, gy = _global_pixel(p.lon, p.lat, z)
        box = (gx - w / 2 - 3, gy - 5 - h - 3, gx + w / 2 + 3, gy + 4)
        cells = [(i, j) for i in range(int(box[0] // cell), int(box[2] // cell) + 1)
                 for j in range(int(box[1] // cell), int(box[3] // cell) + 1)]
        if any(b[0] < box[2] and box[0] < b[2] and b[1] < box[3] and box[1] < b[3]
               for c in cells for b in grid.get(c, ())):
            continue
        for c in cells:
            grid.setdefault(c, []).append(box)
        texts.append(text)
        sizes.append(size)
        anchors.append((gx, gy, left, top, w, h))
        boxes.append(box)
    return {"text": texts, "size": sizes, "anchor": anchors,
            "box": np.asarray(boxes, dtype=float).reshape(-1, 4)}


# --- rendering -------------------------------------------------------------------------------------------------------


def _prepare(geoms: np.ndarray, qbox: tuple[float, float, float, float], *, z: int, polygons: bool) -> np.ndarray:
    """Clip to the (padded) tile, simplify beyond the pre-generalised zooms, and re-orient clipped polygons."""
    if not len(geoms):
        return geoms
    out = shapely.clip_by_rect(geoms, *qbox)
    out = out[~shapely.is_empty(out)]
    if len(out) and z > GENERALISE_MAX_ZOOM:
        out = shapely.simplify(out, _tolerance_deg(z))
        out = out[~shapely.is_empty(out)]
    if len(out) and polygons:  # clipping does not keep ring orientation; the nonzero fill needs it
        out = shapely.orient_polygons(out, exterior_cw=False)
    return out


def _fill(draw: aggdraw.Draw, geoms: np.ndarray, brush: aggdraw.Brush, z: int, x: int, y: int,
          scale: int = 1) -> None:
    """Fill polygons in one path (nonzero rule; holes are wound opposite to exteriors by the loader)."""
    if not len(geoms):
        return
    polys = shapely.get_parts(geoms)
    polys = polys[shapely.get_type_id(polys) == 3]
    rings = shapely.get_rings(polys)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    if not len(coords):
        return
    px = _to_pixels(coords, z, x, y) * scale
    splits = np.flatnonzero(np.diff(idx)) + 1
    path = aggdraw.Path()
    for ring in np.split(px, splits):
        if len(ring) >= 3:
            path.polygon(ring.ravel().tolist())
    draw.path(path, None, brush)


def _stroke(draw: aggdraw.Draw, geoms: np.ndarray, pen: aggdraw.Pen, z: int, x: int, y: int,
            scale: int = 1) -> None:
    if not len(geoms):
        return
    lines = shapely.get_parts(geoms)
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    if not len(coords):
        return
    px = _to_pixels(coords, z, x, y) * scale
    for line in np.split(px, np.flatnonzero(np.diff(idx)) + 1):
        if len(line) >= 2:
            draw.line(line.ravel().tolist(), pen)


def render_tile(z: int, x: int, y: int, *, content: BasemapContent, style: str = "light",
                lang: str = "zh-CN", scale: int = 1) -> bytes:
    """Draw one 256x256 basemap tile (512x512 at ``scale`` 2) and return it as PNG bytes.

    Parameters
    ----------
    z, x, y
        XYZ tile address (Web Mercator).
    content
        What to draw (:func:`load_content`).
    style
        ``"light"`` (desktop) or ``"dark"`` (command-hall wall).
    lang
        Label language, ``"zh-CN"`` (Chinese names; English ones if no CJK font is installed) or ``"en"``.
    scale
        1, or 2: the same map drawn at twice the pixels (lines, dots, text and halo twice as wide, the same labels
        placed as at 1), for a screen that shows a tile on 512 pixels (a 3840-pixel hall wall, a high-DPI screen).

    Raises
    ------
    TileError
        Unknown tile, style, language or scale.

    Examples
    --------
    >>> png = render_tile(8, 207, 96, content=load_content(None))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    check_tile(z, x, y)
    if style not in STYLES:
        raise TileError(f"style must be one of {sorted(STYLES)}, got {style!r}")
    if lang not in ("zh-CN", "en"):
        raise TileError(f"lang must be one of ['en', 'zh-CN'], got {lang!r}")
    if scale not in SCALES:
        raise TileError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    st = STYLES[style]
    k = scale
    img = Image.new("RGB", (TILE_SIZE * k, TILE_SIZE * k), st.water)
    draw = aggdraw.Draw(img)
    west, south, east, north = tile_bounds(z, x, y)
    deg_per_px = 360.0 / (TILE_SIZE * (1 << z))
    pad = 4 * deg_per_px
    qbox = (west - pad, max(south - pad, -MAX_LAT - 1), east + pad, min(north + pad, MAX_LAT + 1))
    dw, ds, de, dn = bd.DETAIL_BBOX
    detail = z >= 6 and dw <= qbox[0] and ds <= qbox[1] and qbox[2] <= de and qbox[3] <= dn
    res = "10m" if detail else "low"
    for name, brush in ((f"land_{res}", aggdraw.Brush(st.land)), (f"lakes_{res}", aggdraw.Brush(st.water))):
        _fill(draw, _prepare(content.layer(name, z).query(qbox), qbox, z=z, polygons=True), brush, z, x, y, k)
    _stroke(draw, _prepare(content.layer("rivers_50m", z).query(qbox), qbox, z=z, polygons=False),
            aggdraw.Pen(st.river, _river_width(z) * k), z, x, y, k)
    for level in ("county", "prefecture", "province"):
        if z >= _admin_min_zoom(level):
            geoms = _prepare(content.layer(f"admin:{level}", z).query(qbox), qbox, z=z, polygons=False)
            _stroke(draw, geoms, aggdraw.Pen(getattr(st, level), _admin_width(level, z) * k), z, x, y, k)

    labels = content.labels(z, lang)
    ox, oy = x * TILE_SIZE, y * TILE_SIZE
    b = labels["box"]
    shown = np.flatnonzero((b[:, 0] < ox + TILE_SIZE) & (b[:, 2] > ox) & (b[:, 1] < oy + TILE_SIZE) & (b[:, 3] > oy))
    dot = aggdraw.Brush(st.dot)
    halo = aggdraw.Pen(st.halo, 1.2 * k)
    for i in shown:
        gx, gy = labels["anchor"][i][:2]
        cx, cy = (gx - ox) * k, (gy - oy) * k
        r = (2.6 if labels["size"][i] >= 13 else 2.0) * k
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), halo, dot)
    draw.flush()
    if len(shown):
        text_draw = ImageDraw.Draw(img)
        for i in shown:
            gx, gy, left, top, w, h = labels["anchor"][i]
            font = _font(labels["size"][i] * k)
            if k != 1:  # the glyphs' box at this size (the layout measured them at 1)
                left, top, right, bottom = font.getbbox(labels["text"][i])
                w, h = right - left, bottom - top
            text_draw.text(((gx - ox) * k - w / 2 - left, (gy - oy) * k - 5 * k - h - top), labels["text"][i],
                           fill=st.label, font=font, stroke_width=2 * k, stroke_fill=st.halo)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


# --- cache -----------------------------------------------------------------------------------------------------------


def _basemap(name: str) -> tuple[str, str]:
    try:
        return BASEMAPS[name]
    except KeyError:
        raise TileError(f"basemap must be one of {sorted(BASEMAPS)}, got {name!r}") from None


def tile_path(cache_dir: Path, basemap: str, version: str, z: int, x: int, y: int, scale: int = 1) -> Path:
    """Where a tile is cached: ``<cache_dir>/<basemap>/<version>/<z>/<x>/<y>.png`` (``<y>@2x.png`` at scale 2).

    >>> tile_path(Path("tile_cache"), "base", "abc", 8, 207, 96).as_posix()
    'tile_cache/base/abc/8/207/96.png'
    >>> tile_path(Path("tile_cache"), "base", "abc", 8, 207, 96, scale=2).name
    '96@2x.png'
    """
    _basemap(basemap)
    check_tile(z, x, y)
    if scale not in SCALES:
        raise TileError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return Path(cache_dir) / basemap / version / str(z) / str(x) / (f"{y}.png" if scale == 1 else f"{y}@{scale}x.png")


def cached_tile(z: int, x: int, y: int, *, content: BasemapContent, basemap: str = "base",
                cache_dir: Path, scale: int = 1) -> bytes | None:
    """The PNG of a tile if it is in the cache, else None (nothing is rendered)."""
    _basemap(basemap)
    try:
        return tile_path(cache_dir, basemap, content.version, z, x, y, scale).read_bytes()
    except FileNotFoundError:
        return None


def cache_size_bytes(cache_dir: Path) -> int:
    """Bytes of every file under ``cache_dir`` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(cache_dir):
        for f in files:
            try:
                total += (Path(root) / f).stat().st_size
            except FileNotFoundError:
                continue
    return total


def get_tile(z: int, x: int, y: int, *, content: BasemapContent, basemap: str = "base", cache_dir: Path,
             render: Callable[..., bytes] = render_tile, write: bool = True, scale: int = 1) -> tuple[bytes, bool]:
    """The PNG of a tile from the cache, or rendered, written to the cache (atomically, unless ``write`` is False:
    the cache is full) and returned.

    Returns
    -------
    (bytes, bool)
        The PNG, and whether it came from the cache.
    """
    style, lang = _basemap(basemap)
    path = tile_path(cache_dir, basemap, content.version, z, x, y, scale)
    try:
        return path.read_bytes(), True
    except FileNotFoundError:
        pass
    data = render(z, x, y, content=content, style=style, lang=lang, **({"scale": scale} if scale != 1 else {}))
    if not write:
        return data, False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers never see half a tile; two writers of the same tile are harmless
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return data, False


def prune_cache(cache_dir: Path, basemap: str, *, keep_version: str) -> int:
    """Delete cached versions of ``basemap`` other than ``keep_version``; returns how many were removed."""
    _basemap(basemap)
    root = Path(cache_dir) / basemap
    removed = 0
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name != keep_version:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
    return removed


@dataclass(frozen=True)
class BuildStats:
    """What :func:`build_tiles` did: tiles rendered and already cached, wall seconds (preparation and rendering),
    and the render time of one tile in a worker (ms, mean and max)."""

    rendered: int
    cached: int
    seconds: float
    render_ms_mean: float
    render_ms_max: float
    version: str


_WORKER: dict[str, Any] = {}


def _build_one(task: tuple[str, int, int, int]) -> tuple[bool, float]:
    basemap, z, x, y = task
    t0 = time.perf_counter()
    _, hit = get_tile(z, x, y, content=_WORKER["content"], basemap=basemap, cache_dir=_WORKER["cache_dir"])
    return hit, (time.perf_counter() - t0) * 1000.0


def build_tiles(content: BasemapContent, *, cache_dir: Path, bbox: tuple[float, float, float, float] = DEMO_BBOX,
                min_zoom: int = 3, max_zoom: int = 8, basemaps: Iterable[str] = ("base", "base-dark"),
                workers: int = 2) -> BuildStats:
    """Pre-render every tile of ``bbox`` for zooms min..max into the cache (tiles already there are kept).

    Work is shared by ``workers`` forked processes, which inherit ``content`` (nothing is re-read from the store).
    """
    names = list(basemaps)
    for name in names:
        _basemap(name)
    if workers < 1:
        raise TileError(f"workers must be >= 1, got {workers}")
    t0 = time.perf_counter()
    tiles = tiles_for_bbox(bbox, min_zoom=min_zoom, max_zoom=max_zoom)
    tasks = [(name, z, x, y) for name in names for (z, x, y) in tiles
             if not tile_path(cache_dir, name, content.version, z, x, y).exists()]
    cached = len(names) * len(tiles) - len(tasks)
    # generalise and lay out labels once, before forking, so that the workers share the result
    for z in sorted({t[1] for t in tasks}):
        res = "10m" if z >= 6 else "low"
        for name in [f"land_{res}", f"lakes_{res}", "rivers_50m",
                     *(f"admin:{lv}" for lv in content.admin if z >= _admin_min_zoom(lv))]:
            content.layer(name, z)
        for lang in {BASEMAPS[n][1] for n in names}:
            content.labels(z, lang)
    _WORKER.update(content=content, cache_dir=Path(cache_dir))
    try:
        if workers == 1 or len(tasks) < 2:
            results = [_build_one(t) for t in tasks]
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(workers) as pool:
                results = list(pool.imap_unordered(_build_one, tasks, chunksize=8))
    finally:
        _WORKER.clear()
    seconds = time.perf_counter() - t0
    ms = [t for hit, t in results if not hit]
    return BuildStats(rendered=len(ms), cached=cached + len(results) - len(ms), seconds=seconds,
                      render_ms_mean=float(np.mean(ms)) if ms else 0.0,
                      render_ms_max=float(np.max(ms)) if ms else 0.0, version=content.version)
