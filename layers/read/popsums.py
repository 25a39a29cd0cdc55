"""Population on the H3 hierarchy, held in memory: sorted arrays of kept sums, shared by the server's processes.

Public: :func:`hierarchy`, :class:`PopulationHierarchy`, :func:`county_sums`, :class:`CountySums`,
:data:`COARSEST`, :func:`clear`.

A zone's population is its interior as compacted coarse cells plus its boundary cells at the fine resolution
(:func:`geoops.h3cells.zone_cover`). The figure of a coarse cell is the sum of its descendants at the fine
resolution (the H3 hierarchy is logical: descendants do not tile their ancestor's hexagon), kept here for every
coarse resolution from :data:`COARSEST` to the one above the fine resolution (res 5-7 for res 8), next to the fine
cells themselves: one sorted int64 array of cells and one
float64 array of people per resolution, plus the number of populated descendants (for the card's cell counts).
A lookup is one ``searchsorted`` per resolution; no database round trip.

Sharing and reloading
---------------------
The arrays are built once per population build from ``population_cells`` (one binary read), written as ``.npy``
files under ``<state_dir>/popsums/<key>/`` (the key names the database, source, resolution and the build's
``built_at``, cell count and total) and memory-mapped read-only by every process: the pages live once in the
operating system's page cache, whatever the number of gunicorn workers, and a worker's resident memory grows only
by the pages it touches. A new build has a new ``built_at``, hence a new key: the next request of each process maps
the new files (built by the first process that needs them; concurrent builders write identical files and the
last atomic rename wins). Older keys of the same database, source and resolution are removed. Without a writable
state directory the arrays stay in the process's own memory.

Split by county
---------------
:func:`county_sums` keeps the same coarse sums split by the county of each populated fine cell (its centre, by the
one point -> region rule :func:`geoops.regions.assign_points` over every live county in adcode order; -1 in none),
for one build and one state of the counties and the regions above them. For a coarse cell entirely inside a zone, that is the county
the zone's own split gives each descendant: a centre strictly inside the zone lies only in counties that share area
with the zone, so the first of them in adcode order is the same among all counties as among those. The split of
a zone's interior by county is then a lookup, without cutting the interior along the county borders. These arrays
are small (a few hundred thousand entries) and built in about a second; each process keeps its own, with the
county rows and prefecture names it was built from (a zone's counties are then picked without a query).

>>> COARSEST
5
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import select

from geoops.h3cells import cell_centres, cell_resolution, parent_cells
from geoops.regions import assign_points
from layers.read.analysis import column_arrays, region_names, regions_fingerprint, regions_of_level
from layers.store.db import connection_of
from layers.store.models import PopulationCell
from layers.store.settings import get_settings

__all__ = ["COARSEST", "PopulationHierarchy", "hierarchy", "CountySums", "county_sums", "clear"]

log = logging.getLogger(__name__)

#: the coarsest resolution whose sums are kept (a zone's interior compacts to this one and finer ones); a res-5
#: cell is about 250 km2, so a 10,000 km2 zone holds a few dozen
COARSEST = 5
_FILES = ("cells", "people", "populated")


@dataclass(frozen=True)
class PopulationHierarchy:
    """Kept sums of one population build: per resolution, sorted cells, their people and populated descendants."""

    source: str
    res: int
    key: str
    cells: dict[int, np.ndarray]
    people: dict[int, np.ndarray]
    populated: dict[int, np.ndarray]

    @property
    def coarse_res(self) -> int:
        """The coarsest resolution kept."""
        return min(self.cells)

    def lookup(self, cells: Any) -> tuple[np.ndarray, np.ndarray]:
        """People of each cell (of any kept resolution) and its populated descendants at :attr:`res`; 0 where the
        build has no such cell. Cells of a resolution that is not kept raise ``KeyError``."""
        arr = np.asarray(cells, dtype=np.int64)
        people = np.zeros(arr.size)
        populated = np.zeros(arr.size, dtype=np.int64)
        if arr.size == 0:
            return people, populated
        rs = cell_resolution(arr)
        for r in np.unique(rs).tolist():
            at = np.flatnonzero(rs == r)
            kc = self.cells[r]
            if kc.size == 0:
                continue
            pos = np.minimum(np.searchsorted(kc, arr[at]), kc.size - 1)
            hit = kc[pos] == arr[at]
            people[at[hit]] = self.people[r][pos[hit]]
            populated[at[hit]] = self.populated[r][pos[hit]]
        return people, populated


def _build(cells: np.ndarray, people: np.ndarray, res: int) -> dict[str, dict[int, np.ndarray]]:
    o = np.argsort(cells, kind="stable")
    cells, people = cells[o], people[o]
    out: dict[str, dict[int, np.ndarray]] = {"cells": {res: cells}, "people": {res: people},
                                            "populated": {res: (people > 0).astype(np.int32)}}
    for r in range(min(COARSEST, res), res):
        # the parents of sorted cells are sorted (a parent's children are one contiguous run of ids)
        par = parent_cells(cells, res=res, parent_res=r)
        start = np.flatnonzero(np.r_[True, par[1:] != par[:-1]]) if par.size else np.zeros(0, dtype=np.int64)
        out["cells"][r] = par[start]
        out["people"][r] = np.add.reduceat(people, start) if par.size else np.zeros(0)
        out["populated"][r] = (np.add.reduceat((people > 0).astype(np.int32), start) if par.size
                               else np.zeros(0, dtype=np.int32))
    return out


def _cache_root() -> Path:
    return Path(get_settings().state_dir) / "popsums"


def _write(root: Path, key: str, arrays: dict[str, dict[int, np.ndarray]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    for name, per_res in arrays.items():
        for r, a in per_res.items():
            np.save(tmp / f"{name}_{r}.npy", a)
    final = root / key
    try:
        os.rename(tmp, final)
    except OSError:  # another process got there first: its files are the same
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _read(path: Path) -> dict[str, dict[int, np.ndarray]] | None:
    if not path.is_dir():
        return None
    out: dict[str, dict[int, np.ndarray]] = {n: {} for n in _FILES}
    for f in path.glob("*.npy"):
        name, _, r = f.stem.rpartition("_")
        if name in out:
            out[name][int(r)] = np.load(f, mmap_mode="r")
    return out if out["cells"] and all(set(out[n]) == set(out["cells"]) for n in _FILES) else None


def _prune(root: Path, prefix: str, keep: str) -> None:
    for old in root.glob(f"{prefix}*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


_lock = threading.Lock()
_loaded: dict[tuple[str, str, int], PopulationHierarchy] = {}


def hierarchy(db: Any, *, source: str, res: int, built_at: Any, cell_count: int, input_total: float
              ) -> PopulationHierarchy:
    """The kept sums of population build ``(source, res)`` as recorded in ``population_sources`` (``built_at``,
    ``cell_count``, ``input_total`` identify the build: pass the row of
    :func:`layers.read.analysis.population_source`). Mapped from the shared files, built on first use."""
    conn = connection_of(db)
    url = conn.engine.url
    where = f"{url.host}:{url.port}/{url.database}"
    ident = f"{where}|{source}|{res}|{built_at}|{cell_count}|{input_total!r}"
    prefix = hashlib.sha1(f"{where}|{source}|{res}".encode()).hexdigest()[:12]
    key = f"{prefix}-{hashlib.sha1(ident.encode()).hexdigest()[:12]}"
    slot = (where, source, int(res))
    with _lock:
        hit = _loaded.get(slot)
        if hit is not None and hit.key == key:
            return hit
    root = _cache_root()
    arrays = _read(root / key)
    if arrays is None:
        stmt = (select(PopulationCell.h3, PopulationCell.population)
                .where(PopulationCell.source == source, PopulationCell.res == int(res)))
        hl, pl = column_arrays(db, stmt)
        built = _build(np.asarray(hl or [], dtype=np.int64), np.asarray(pl or [], dtype=np.float64), int(res))
        try:
            arrays = _read(_write(root, key, built)) or built
            _prune(root, prefix, key)
        except OSError as e:  # no writable state directory: keep this process's own copy
            log.warning("population sums kept in process memory only (%s)", e)
            arrays = built
    h = PopulationHierarchy(source, int(res), key, arrays["cells"], arrays["people"], arrays["populated"])
    with _lock:
        _loaded[slot] = h
    return h


@dataclass(frozen=True)
class CountySums:
    """Kept coarse sums of one build split by county: per coarse resolution, one entry per (cell, county) holding
    populated descendants, sorted by cell then county; ``code`` indexes :attr:`adcodes` (-1: in no county)."""

    key: tuple[str, str]
    adcodes: tuple[str, ...]
    cells: dict[int, np.ndarray]
    code: dict[int, np.ndarray]
    people: dict[int, np.ndarray]
    populated: dict[int, np.ndarray]
    #: the live counties the split was made from, as rows of :func:`layers.read.analysis.regions_of_level` (by
    #: adcode; geometries prepared, shared: never modify them), with ``bounds`` (n, 4) of their geometries
    counties: tuple[dict[str, Any], ...] = ()
    bounds: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    #: ``adcode -> {name, name_en, level, parent_adcode}`` of the counties' live parents
    #: (:func:`layers.read.analysis.region_names`)
    prefectures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def lookup(self, cells: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The entries of the given coarse cells: (index into ``cells``, county code, people, populated
        descendants), grouped by cell in the order given. A cell of the fine resolution raises ``KeyError``."""
        arr = np.asarray(cells, dtype=np.int64)
        rs = cell_resolution(arr)
        parts = []
        for r in np.unique(rs).tolist():
            at = np.flatnonzero(rs == r)
            kc = self.cells[r]
            lo, hi = np.searchsorted(kc, arr[at], "left"), np.searchsorted(kc, arr[at], "right")
            n = hi - lo
            # entry j of cell i: lo[i] + j, for j < n[i]
            idx = np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(int(n.sum()))
            parts.append((np.repeat(at, n), idx, r))
        if not parts:
            z = np.zeros(0, dtype=np.int64)
            return z, z, np.zeros(0), z
        return (np.concatenate([p[0] for p in parts]),
                np.concatenate([self.code[r][i] for _, i, r in parts]).astype(np.int64),
                np.concatenate([self.people[r][i] for _, i, r in parts]),
                np.concatenate([self.populated[r][i] for _, i, r in parts]).astype(np.int64))


def _split(cells: np.ndarray, people: np.ndarray, code: np.ndarray, res: int, coarse: range
           ) -> dict[str, dict[int, np.ndarray]]:
    out: dict[str, dict[int, np.ndarray]] = {"cells": {}, "code": {}, "people": {}, "populated": {}}
    for r in coarse:
        par = parent_cells(cells, res=res, parent_res=r)
        o = np.lexsort((code, par))
        par, c, p = par[o], code[o], people[o]
        start = (np.flatnonzero(np.r_[True, (par[1:] != par[:-1]) | (c[1:] != c[:-1])]) if par.size
                 else np.zeros(0, dtype=np.int64))
        out["cells"][r] = par[start]
        out["code"][r] = c[start].astype(np.int32)
        out["people"][r] = np.add.reduceat(p, start) if par.size else np.zeros(0)
        out["populated"][r] = (np.diff(np.r_[start, par.size]).astype(np.int32) if par.size
                               else np.zeros(0, dtype=np.int32))
    return out


#: the admin levels whose rows a county split is made from: the counties, and their parents (for their names)
PARENT_LEVELS = ("county", "prefecture", "province")

_split_lock = threading.Lock()
_split_loaded: dict[tuple[str, str, int], CountySums] = {}


def county_sums(db: Any, sums: PopulationHierarchy) -> CountySums:
    """The coarse sums of ``sums`` split by county (module docstring), for the live counties as they are now:
    built on first use and again after any change to a county or to a region above (whose names a split shows; the
    key is :func:`layers.read.analysis.regions_fingerprint`, for caches of what is computed from the split)."""
    key = (sums.key, regions_fingerprint(db, levels=PARENT_LEVELS))
    slot = (sums.key.split("-")[0], sums.source, sums.res)
    with _split_lock:
        hit = _split_loaded.get(slot)
        if hit is not None and hit.key == key:
            return hit
    counties = regions_of_level(db, level="county", geometry=True)
    prefectures = region_names(db, [c["parent_adcode"] for c in counties if c["parent_adcode"]])
    geoms = np.asarray([c["geometry"] for c in counties], dtype=object)
    shapely.prepare(geoms)  # here, before the rows are shared between threads
    fine, people = np.asarray(sums.cells[sums.res]), np.asarray(sums.people[sums.res])
    keep = people > 0
    fine, people = fine[keep], people[keep]
    lon, lat = cell_centres(fine)
    code = assign_points(lon, lat, [c["geometry"] for c in counties], outside="none")
    split = _split(fine, people, code, sums.res, range(sums.coarse_res, sums.res))
    h = CountySums(key, tuple(c["adcode"] for c in counties), split["cells"], split["code"], split["people"],
                   split["populated"], tuple(counties), shapely.bounds(geoms).reshape(-1, 4), prefectures)
    with _split_lock:
        _split_loaded[slot] = h
    return h


def clear() -> None:
    """Forget the mapped arrays and county splits of this process (the files stay)."""
    with _lock:
        _loaded.clear()
    with _split_lock:
        _split_loaded.clear()
