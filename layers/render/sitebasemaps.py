"""Site basemaps: a detailed offline basemap that a site supplies as an MBTiles or PMTiles file, registered once
(``sitroom basemap add FILE``) and served from this machine.

Public: :data:`NAME_PATTERN`, :class:`SiteBasemap`, :class:`BasemapError`, :func:`inspect`, :func:`add_basemap`,
:func:`list_basemaps`, :func:`get_basemap`, :func:`remove_basemap`, :func:`read_tile`, :func:`decompressed`.

A registered basemap is two files in the basemap directory (``SITROOM_BASEMAP_DIR``, default
``<state dir>/basemaps``): the archive, copied as ``<name>.mbtiles`` or ``<name>.pmtiles``, and ``<name>.json`` with
what the maps show (title, attribution) and what was read from the archive (tile format, zooms, bounds, vector
schema). The archive is read as it is, never changed:

- MBTiles 1.3 (SQLite): ``metadata`` (``format`` png / jpg / webp / pbf, ``minzoom``, ``maxzoom``, ``bounds``,
  ``attribution``, ``json`` with ``vector_layers``) and ``tiles`` in the TMS scheme (rows counted from the south;
  served here as XYZ, rows from the north); vector tiles are usually gzip-compressed, and said so when served;
- PMTiles 3 through the ``pmtiles`` package (BSD-3-Clause): tile type and compression from the header, the rest from
  its JSON metadata.

Raster archives show as they are; vector archives need a style, which the maps have for the OpenMapTiles schema
(layers ``water``, ``landcover``, ``transportation`` ...) and the Protomaps basemap schema (``earth``, ``roads`` ...).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from layers.render.tiles import check_tile
from layers.store.errors import NotFoundError, StoreError

__all__ = ["NAME_PATTERN", "SiteBasemap", "BasemapError", "inspect", "add_basemap", "list_basemaps", "get_basemap",
           "remove_basemap", "read_tile", "decompressed"]

#: a basemap's name: also its URL segment (/tiles/<name>/...) and file stem
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
#: names the built-in basemaps use (dashboards/tiles.py serves them under /tiles/<name>/)
RESERVED = frozenset({"base", "base-en", "base-dark", "base-dark-en", "offline", "osm", "tianditu"})
FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "pbf": "pbf", "mvt": "pbf"}
_PM_TYPES = {1: "pbf", 2: "png", 3: "jpg", 4: "webp"}


class BasemapError(StoreError, ValueError):
    """A basemap file, name or option that cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class SiteBasemap:
    """A registered basemap (what ``<name>.json`` holds)."""

    name: str
    title: str
    attribution: str
    container: str
    format: str
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float] | None
    schema: str | None
    file: str

    @property
    def kind(self) -> str:
        """``raster`` or ``vector``."""
        return "vector" if self.format == "pbf" else "raster"

    @property
    def media_type(self) -> str:
        return {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp",
                "pbf": "application/vnd.mapbox-vector-tile"}[self.format]


def _schema(layer_ids: set[str]) -> str | None:
    if {"transportation", "water"} <= layer_ids or {"landcover", "water"} <= layer_ids:
        return "openmaptiles"
    if {"earth", "roads"} <= layer_ids or {"earth", "water"} <= layer_ids:
        return "protomaps"
    return None


def _bounds(text: Any) -> tuple[float, float, float, float] | None:
    try:
        w, s, e, n = (float(v) for v in str(text).split(","))
    except (TypeError, ValueError):
        return None
    return (w, s, e, n) if -180 <= w < e <= 180 and -90 <= s < n <= 90 else None


def _inspect_mbtiles(path: Path) -> dict[str, Any]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as c:
            meta = dict(c.execute("SELECT name, value FROM metadata").fetchall())
            zmin, zmax, n = c.execute("SELECT min(zoom_level), max(zoom_level), count(*) FROM tiles").fetchone()
    except sqlite3.DatabaseError as e:
        raise BasemapError(f"{path}: not an MBTiles file (SQLite with tables metadata and tiles): {e}") from None
    if not n:
        raise BasemapError(f"{path}: the MBTiles file holds no tile")
    fmt = FORMATS.get(str(meta.get("format", "")).lower())
    if fmt is None:
        raise BasemapError(f"{path}: MBTiles format {meta.get('format')!r} is not one of png, jpg, webp, pbf")
    layers: set[str] = set()
    if fmt == "pbf":
        try:
            layers = {str(v["id"]) for v in json.loads(meta.get("json") or "{}").get("vector_layers", [])}
        except (ValueError, TypeError, KeyError):
            layers = set()
    return {"container": "mbtiles", "format": fmt, "min_zoom": int(meta.get("minzoom", zmin)),
            "max_zoom": int(meta.get("maxzoom", zmax)), "bounds": _bounds(meta.get("bounds")),
            "attribution": str(meta.get("attribution") or ""), "title": str(meta.get("name") or ""),
            "schema": _schema(layers) if fmt == "pbf" else None}


def _pm_reader(path: Path) -> Any:
    from pmtiles.reader import MmapSource, Reader

    f = open(path, "rb")  # stays open: the memory map reads from it for the reader's life
    return Reader(MmapSource(f))


def _inspect_pmtiles(path: Path) -> dict[str, Any]:
    try:
        r = _pm_reader(path)
        h = r.header()
        meta = r.metadata()
    except Exception as e:  # noqa: BLE001 - any failure to read means "not a PMTiles file we can use"
        raise BasemapError(f"{path}: not a PMTiles 3 file: {e}") from None
    fmt = _PM_TYPES.get(getattr(h["tile_type"], "value", 0))
    if fmt is None:
        raise BasemapError(f"{path}: PMTiles tile type {h['tile_type']} is not one of MVT, PNG, JPEG, WEBP")
    if fmt == "pbf" and getattr(h["tile_compression"], "name", "") not in ("NONE", "GZIP"):
        raise BasemapError(f"{path}: vector tiles compressed with {h['tile_compression'].name}; "
                           "only uncompressed or gzip tiles can be served")
    bounds = (h["min_lon_e7"] / 1e7, h["min_lat_e7"] / 1e7, h["max_lon_e7"] / 1e7, h["max_lat_e7"] / 1e7)
    layers = {str(v.get("id")) for v in meta.get("vector_layers", []) if isinstance(v, dict)}
    return {"container": "pmtiles", "format": fmt, "min_zoom": int(h["min_zoom"]), "max_zoom": int(h["max_zoom"]),
            "bounds": _bounds(",".join(map(str, bounds))), "attribution": str(meta.get("attribution") or ""),
            "title": str(meta.get("name") or ""), "schema": _schema(layers) if fmt == "pbf" else None}


def inspect(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What an archive holds: ``container``, ``format``, ``min_zoom``, ``max_zoom``, ``bounds``, ``attribution``,
    ``title``, ``schema`` (vector only). Raises :class:`BasemapError` naming the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise BasemapError(f"{p}: no such file")
    with open(p, "rb") as f:
        magic = f.read(16)
    if magic.startswith(b"PMTiles"):
        return _inspect_pmtiles(p)
    if magic.startswith(b"SQLite format 3"):
        return _inspect_mbtiles(p)
    raise BasemapError(f"{p}: neither MBTiles (SQLite) nor PMTiles; allowed: a .mbtiles or .pmtiles archive")


def _meta_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def add_basemap(directory: str | os.PathLike[str], file: str | os.PathLike[str], *, name: str | None = None,
                attribution: str | None = None, title: str | None = None, replace: bool = False) -> SiteBasemap:
    """Register ``file`` as basemap ``name`` (default: the file's stem, lower-cased): check it, copy it into
    ``directory`` and write its ``<name>.json``.

    Raises
    ------
    BasemapError
        A bad name (:data:`NAME_PATTERN`, or one of the built-in basemaps), an unreadable archive, or a name taken
        (unless ``replace``).
    """
    src = Path(file)
    stem = (name or re.sub(r"[^a-z0-9_-]+", "-", src.stem.lower()).strip("-_")) or "site"
    if not NAME_PATTERN.match(stem) or stem in RESERVED:
        raise BasemapError(f"name: {stem!r} is not allowed; allowed: a lower-case letter, then up to 39 letters, "
                           f"digits, '-' or '_', and none of {', '.join(sorted(RESERVED))}")
    info = inspect(src)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if _meta_path(d, stem).exists() and not replace:
        raise BasemapError(f"name: a basemap {stem!r} exists already; pass --replace to replace it")
    target = d / f"{stem}.{info['container']}"
    tmp = target.with_suffix(target.suffix + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)
    bm = SiteBasemap(name=stem, title=title or info["title"] or stem,
                     attribution=attribution if attribution is not None else info["attribution"],
                     container=info["container"], format=info["format"], min_zoom=info["min_zoom"],
                     max_zoom=info["max_zoom"], bounds=info["bounds"], schema=info["schema"], file=target.name)
    _meta_path(d, stem).write_text(json.dumps(asdict(bm), ensure_ascii=False, indent=1), encoding="utf-8")
    return bm


def _load(meta: Path) -> SiteBasemap | None:
    try:
        d = json.loads(meta.read_text(encoding="utf-8"))
        d["bounds"] = tuple(d["bounds"]) if d.get("bounds") else None
        bm = SiteBasemap(**d)
    except (OSError, ValueError, TypeError):
        return None
    return bm if NAME_PATTERN.match(bm.name) and (meta.parent / bm.file).is_file() else None


def list_basemaps(directory: str | os.PathLike[str]) -> list[SiteBasemap]:
    """The registered basemaps of ``directory``, by name (an unreadable entry is left out)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return [bm for meta in sorted(d.glob("*.json")) if (bm := _load(meta)) is not None]


def get_basemap(directory: str | os.PathLike[str], name: str) -> SiteBasemap:
    """Basemap ``name`` of ``directory``; :class:`layers.store.errors.NotFoundError` naming the known ones."""
    if isinstance(name, str) and NAME_PATTERN.match(name):
        bm = _load(_meta_path(Path(directory), name))
        if bm is not None:
            return bm
    known = ", ".join(b.name for b in list_basemaps(directory)) or "none"
    raise NotFoundError(f"no site basemap {name!r}; registered: {known}")


def remove_basemap(directory: str | os.PathLike[str], name: str) -> None:
    """Unregister basemap ``name`` and delete its copy."""
    bm = get_basemap(directory, name)
    d = Path(directory)
    _meta_path(d, name).unlink()
    (d / bm.file).unlink(missing_ok=True)


_readers: dict[Path, Any] = {}


def read_tile(directory: str | os.PathLike[str], bm: SiteBasemap, z: int, x: int, y: int) -> tuple[bytes | None, bool]:
    """The tile ``z/x/y`` (XYZ, rows from the north) of basemap ``bm``: (bytes or None when the archive has none,
    whether the bytes are gzip-compressed).

    Raises
    ------
    layers.render.tiles.TileError
        Not a tile.
    """
    check_tile(z, x, y)
    path = Path(directory) / bm.file
    if bm.container == "mbtiles":
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)) as c:
            row = c.execute("SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                            (z, x, (1 << z) - 1 - y)).fetchone()
        data = bytes(row[0]) if row and row[0] is not None else None
    else:
        reader = _readers.get(path)
        if reader is None:
            reader = _readers[path] = _pm_reader(path)
        raw = reader.get(z, x, y)
        data = bytes(raw) if raw is not None else None
    return data, bool(data and data[:2] == b"\x1f\x8b")


def decompressed(data: bytes) -> bytes:
    """``data`` without its gzip layer, if it has one (for clients that do not accept gzip)."""
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data

