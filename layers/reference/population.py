"""Population on H3 cells: build ``population_cells`` from a population GeoTIFF or from population points.

Public: :func:`build_population`, :func:`build_population_points`, :func:`raster_cells`, :func:`write_cells`,
:func:`raster_windows`, :func:`raster_valid_total`, :class:`BuildReport`, :class:`PopulationBuildError`,
:data:`WORKER_MEMORY`.

A raster (WorldPop in EPSG:4326, GHS-POP in Mollweide ESRI:54009, or any CRS rasterio reads) is read in windows
aligned to its blocks, so memory stays bounded whatever the raster's size. The pixel -> cell arithmetic is
:func:`geoops.h3cells.grid_to_cells`; this module reads, checks and stores. The cells of one ``(source, res)`` are
replaced in one transaction (``COPY``), and the build is refused unless the stored total equals the total of the
valid pixels to 1e-9 relative.

Parallel builds run on Dask (``dask.distributed``): every window is a task (read, then cells and sums), and the
windows' results are merged by cell in a tree of merge tasks (eight at a time), so no worker ever holds more than
eight partial results and the client receives the merged cells once. ``scheduler="local"`` starts a
``LocalCluster`` of ``workers`` processes (one thread each, :data:`WORKER_MEMORY` each) for the build and stops it
afterwards; an address (``tcp://host:8786``) uses a running cluster, whose workers must read the raster at the same
path (a shared file system). The cells and totals are those of the single-process path: the same window function,
and sums that differ only in the order of floating-point additions.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from layers.store.db import driver_connection
from layers.store.errors import RowError, StoreError, ValidationError
from layers.store.models import PopulationCell, PopulationSource, table_of

#: relative tolerance between the stored cell total and the total of the input
RTOL = 1e-9
#: default pixels per window (float64: 32 MB per window and worker)
WINDOW_PIXELS = 4 * 1024 * 1024
#: rasters of at least this many pixels are spread over a local Dask cluster by default
POOL_MIN_PIXELS = 32 * 1024 * 1024
#: memory limit of each worker of the local Dask cluster
WORKER_MEMORY = "2GB"
#: partial results merged by one merge task
MERGE_FANIN = 8
_SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
_LAT_NAMES = ("lat", "latitude", "y", "纬度")


class PopulationBuildError(StoreError, ValueError):
    """A population build that cannot be done or would not conserve the total; nothing was written."""


@dataclass(frozen=True)
class BuildReport:
    """What one build did. ``input_total`` is the sum of valid pixels (or point values)."""

    source: str
    res: int
    input_total: float
    stored_total: float
    cell_count: int
    pixels: int
    valid_pixels: int
    windows: int
    workers: int
    seconds: float
    write_seconds: float = 0.0

    @property
    def cells_seconds(self) -> float:
        """Seconds spent reading pixels and summing them onto cells (without the database write)."""
        return self.seconds - self.write_seconds

    @property
    def pixels_per_second(self) -> float:
        """Pixels (or points) read and summed onto cells per second, the database write excluded."""
        return self.pixels / self.cells_seconds if self.cells_seconds > 0 else math.inf


def check_source(source: str) -> str:
    """Return ``source`` if it is a valid source name, else raise.

    >>> check_source("worldpop-2020")
    'worldpop-2020'
    """
    if not isinstance(source, str) or not _SOURCE_RE.match(source):
        raise PopulationBuildError(
            f"source must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit; got {source!r}")
    return source


def _check_res(res: int) -> int:
    if not isinstance(res, int) or isinstance(res, bool) or not 0 <= res <= 15:
        raise PopulationBuildError(f"res must be an H3 resolution in 0..15, got {res!r}")
    return res


def raster_windows(width: int, height: int, block_shape: tuple[int, int], *,
                   window_pixels: int = WINDOW_PIXELS) -> list[tuple[int, int, int, int]]:
    """Windows ``(col_off, row_off, width, height)`` covering a raster, aligned to its blocks.

    Each window holds about ``window_pixels`` pixels (at least one block, unless ``window_pixels`` is smaller than a
    block, then plain tiles of about that size), so memory is bounded whatever the raster's size.

    >>> raster_windows(10, 4, (1, 10), window_pixels=20)
    [(0, 0, 10, 2), (0, 2, 10, 2)]
    >>> raster_windows(1000, 1000, (256, 256), window_pixels=300_000)[:2]  # 2 x 2 blocks per window
    [(0, 0, 512, 512), (512, 0, 488, 512)]
    """
    if window_pixels < 1:
        raise PopulationBuildError(f"window_pixels must be >= 1, got {window_pixels!r}")
    bh, bw = (max(1, int(block_shape[0])), max(1, int(block_shape[1])))
    if bh * bw > window_pixels:  # blocks bigger than asked for: plain tiles
        bh = bw = 1
    if bw >= width:  # striped: full-width windows of whole strips
        cols = width
        rows = max(1, window_pixels // (bh * width)) * bh
    else:
        k = max(1, int(math.sqrt(window_pixels / (bh * bw))))
        rows, cols = k * bh, k * bw
    return [(c, r, min(cols, width - c), min(rows, height - r))
            for r in range(0, height, rows) for c in range(0, width, cols)]


def _valid_mask(values: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = np.isfinite(values)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= values != nodata
    return valid


_DATASETS: dict[str, Any] = {}


def _window_job(path: str, window: tuple[int, int, int, int], res: int, band: int, nodata: float | None,
                threads: int | None = None) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Read one window and turn it into cells (runs in a worker process). Returns cells, sums, valid total, n."""
    import rasterio
    from rasterio.windows import Window

    from geoops import h3cells
    from geoops.errors import GeoOpsError

    ds = _DATASETS.get(path)
    if ds is None:
        ds = _DATASETS[path] = rasterio.open(path)
    w = Window(*window)
    values = ds.read(band, window=w).astype(np.float64)
    valid = _valid_mask(values, nodata)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64), 0.0, 0
    total = float(values[valid].sum(dtype=np.float64))
    values[~valid] = np.nan  # one marker for nodata, NaN and infinite pixels
    try:
        cells, sums = h3cells.grid_to_cells(values, transform=ds.window_transform(w), crs=ds.crs.to_wkt(),
                                            res=res, nodata=None, workers=threads)
    except GeoOpsError as e:
        raise PopulationBuildError(f"{path}, window {window} (col, row, width, height): {e}") from None
    return np.asarray(cells, np.int64), np.asarray(sums, np.float64), total, n_valid


def raster_valid_total(path: str | Path, *, band: int = 1, nodata: float | None = None) -> float:
    """Sum of the valid pixels of a raster (read in blocks); the oracle the build is checked against."""
    import rasterio

    total = 0.0
    with rasterio.open(path) as ds:
        nd = ds.nodata if nodata is None else nodata
        for _, w in ds.block_windows(band):
            v = ds.read(band, window=w).astype(np.float64, copy=False)
            total += float(v[_valid_mask(v, nd)].sum(dtype=np.float64))
    return total


def _rel_diff(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def write_cells(session: Session, cells: np.ndarray, sums: np.ndarray, *, source: str, res: int,
                input_total: float, vintage: str | None = None, description: str | None = None,
                modelled: bool = False, input_path: str | None = None) -> tuple[int, float]:
    """Replace the cells of ``(source, res)`` with ``cells``/``sums`` (COPY) and record the source.

    Runs inside the caller's transaction. Refuses (raises, so the caller's transaction rolls back) unless the
    stored total equals ``input_total`` to :data:`RTOL` relative.

    Returns
    -------
    (cell_count, stored_total)
    """
    check_source(source)
    _check_res(res)
    cells = np.asarray(cells, np.int64)
    sums = np.asarray(sums, np.float64)
    if cells.shape != sums.shape or cells.ndim != 1:
        raise PopulationBuildError(f"cells and sums must be 1-d arrays of one length, got {cells.shape} and "
                                   f"{sums.shape}")
    if len(np.unique(cells)) != len(cells):
        raise PopulationBuildError("cells must be unique (merge the parts first)")
    if not np.all(np.isfinite(sums)) or np.any(sums < 0):
        raise PopulationBuildError("cell populations must be finite and >= 0")
    computed = float(np.sum(sums, dtype=np.float64))
    if _rel_diff(computed, input_total) > RTOL:
        raise PopulationBuildError(
            f"{source} res {res}: cells sum to {computed!r} but the input totals {input_total!r} "
            f"(relative difference {_rel_diff(computed, input_total):.3g} > {RTOL}); nothing was written")

    lock_source(session, source, res)
    session.execute(table_of(PopulationCell).delete().where(PopulationCell.source == source,
                                                            PopulationCell.res == res))
    _copy(session, source, res, cells, sums)
    stored_total, count = session.execute(
        select(func.coalesce(func.sum(PopulationCell.population), 0.0), func.count())
        .where(PopulationCell.source == source, PopulationCell.res == res)).one()
    stored_total = float(stored_total)
    if count != len(cells) or _rel_diff(stored_total, input_total) > RTOL:
        raise PopulationBuildError(
            f"{source} res {res}: stored {count} cells totalling {stored_total!r}, expected {len(cells)} cells "
            f"totalling {input_total!r}; nothing was written")
    table = table_of(PopulationSource)
    row = {"source": source, "res": res, "vintage": vintage, "description": description, "modelled": modelled,
           "input_path": input_path, "input_total": float(input_total), "cell_count": int(count)}
    stmt = pg_insert(table).values(row)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.source, table.c.res],
                                      set_={**{k: stmt.excluded[k] for k in row if k not in ("source", "res")},
                                            "built_at": func.now()})
    session.execute(stmt)
    return int(count), stored_total


def _copy_payload(source: str, res: int, cells: np.ndarray, sums: np.ndarray) -> bytes:
    """Rows ``(source, res, h3, population)`` in PostgreSQL's binary COPY format, built with numpy.

    Binary: every double is sent bit for bit (the stored total is the computed one), and 1M rows take tens of
    milliseconds to encode instead of seconds of text formatting.

    >>> payload = _copy_payload("s", 8, np.array([1], np.int64), np.array([2.5]))
    >>> payload[:6], len(payload)  # 19-byte header, one 37-byte row, 2-byte trailer
    (b'PGCOPY', 58)
    """
    src = source.encode("utf-8")
    row = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("src", f"S{len(src)}"), ("l2", ">i4"), ("res", ">i2"),
                    ("l3", ">i4"), ("h3", ">i8"), ("l4", ">i4"), ("pop", ">f8")])
    rows = np.empty(len(cells), row)
    rows["nf"], rows["l1"], rows["src"], rows["l2"], rows["res"] = 4, len(src), src, 2, res
    rows["l3"], rows["h3"], rows["l4"], rows["pop"] = 8, cells, 8, sums
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + rows.tobytes() + (-1).to_bytes(2, "big", signed=True)


def _copy(session: Session, source: str, res: int, cells: np.ndarray, sums: np.ndarray,
          chunk: int = 1 << 20) -> None:
    """COPY rows into population_cells through the session's own connection (same transaction)."""
    payload = _copy_payload(source, res, cells, sums)
    dbapi = driver_connection(session)
    with dbapi.cursor() as cur, cur.copy(
            "COPY population_cells (source, res, h3, population) FROM STDIN WITH (FORMAT binary)") as cp:
        view = memoryview(payload)
        for start in range(0, len(view), chunk * 16):
            cp.write(view[start:start + chunk * 16])


def _iter_results(path: str, windows: list[tuple[int, int, int, int]], *, res: int, band: int,
                  nodata: float | None) -> Iterator[tuple[np.ndarray, np.ndarray, float, int]]:
    try:
        for w in windows:  # one process: grid_to_cells may use its own threads
            yield _window_job(path, w, res, band, nodata)
    finally:
        _close_datasets()


def _merge_parts(*parts: tuple[np.ndarray, np.ndarray, float, int]) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Several windows' ``(cells, sums, valid total, valid pixels)`` as one (a Dask merge task)."""
    from geoops import h3cells

    nonempty = [(c, v) for c, v, _, _ in parts if len(c)]
    cells, sums = h3cells.merge_cell_sums(nonempty) if nonempty else (np.empty(0, np.int64), np.empty(0, np.float64))
    return cells, sums, math.fsum(p[2] for p in parts), sum(p[3] for p in parts)


def _dask_cells(path: str, windows: list[tuple[int, int, int, int]], *, res: int, band: int, nodata: float | None,
                scheduler: str, workers: int) -> tuple[np.ndarray, np.ndarray, float, int, int, float]:
    """Cells of every window on Dask, merged by cell in a tree; (cells, sums, total, valid pixels, workers, peak
    resident memory of the busiest worker in MB)."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler == "local":
        # GDAL's block cache defaults to 5 % of the machine's memory per process: bounded here, as the windows are
        # read once each
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=WORKER_MEMORY,
                               dashboard_address=None, env={"GDAL_CACHEMAX": "128"})
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
            level = client.map(_window_job, [path] * len(windows), windows, res=res, band=band, nodata=nodata,
                               threads=1, pure=False)
            while len(level) > 1:
                level = [client.submit(_merge_parts, *level[i:i + MERGE_FANIN], pure=False)
                         for i in range(0, len(level), MERGE_FANIN)]
            cells, sums, total, n_valid = level[0].result() if level else _merge_parts()
            peaks = client.run(_peak_rss_mb)
    finally:
        if cluster is not None:
            cluster.close()
    return cells, sums, total, n_valid, n_workers, max(peaks.values(), default=0.0)


def _peak_rss_mb() -> float:
    """Peak resident memory of this (worker) process, MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raster_cells(raster: str | Path, *, res: int = 8, scheduler: str | None = None, workers: int | None = None,
                 window_pixels: int = WINDOW_PIXELS, band: int = 1, nodata: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Population cells of a raster without storing them: ``(cells, sums, info)``.

    Parameters
    ----------
    raster
        Path of a single-band population-count raster with a CRS.
    res
        H3 resolution.
    scheduler
        ``None``: this process, unless ``workers`` > 1 or the raster has :data:`POOL_MIN_PIXELS` pixels or more (then
        ``"local"``); ``"none"``: this process; ``"local"``: a ``LocalCluster`` started and stopped here; an address
        such as ``tcp://host:8786``: that cluster.
    workers
        Workers of the local cluster (default 2).
    window_pixels, band, nodata
        As for :func:`build_population`.

    Returns
    -------
    cells, sums : ndarray
        Sorted unique int64 cells and the population of each.
    info : dict
        ``input_total`` (sum of the valid pixels), ``pixels``, ``valid_pixels``, ``windows``, ``workers``,
        ``scheduler`` (``none``, ``local`` or the address), ``worker_peak_mb`` (peak resident memory of the busiest
        worker process, or of this process).

    Raises
    ------
    PopulationBuildError
        The file cannot be read, has no CRS, or a window cannot be turned into cells.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    from geoops import h3cells

    _check_res(res)
    path = str(Path(raster).resolve())
    try:
        ds = rasterio.open(path)
    except RasterioIOError as e:
        raise PopulationBuildError(f"{raster}: cannot be read as a raster: {e}") from e
    with ds:
        if ds.crs is None:
            raise PopulationBuildError(f"{raster}: the raster has no CRS; allowed: any raster with a CRS "
                                       "(EPSG:4326 like WorldPop, ESRI:54009 Mollweide like GHS-POP, ...)")
        if not 1 <= band <= ds.count:
            raise PopulationBuildError(f"band must be in 1..{ds.count} for {raster}, got {band!r}")
        nd = ds.nodata if nodata is None else nodata
        windows = raster_windows(ds.width, ds.height, ds.block_shapes[band - 1], window_pixels=window_pixels)
        pixels = ds.width * ds.height
    if scheduler is None:
        scheduler = "local" if (workers or 1) > 1 or (workers is None and pixels >= POOL_MIN_PIXELS) else "none"
    if scheduler != "none":
        cells, sums, input_total, valid_pixels, n_workers, peak_mb = _dask_cells(
            path, windows, res=res, band=band, nodata=nd, scheduler=scheduler, workers=max(1, workers or 2))
    else:
        n_workers, peak_mb = 1, _peak_rss_mb()
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        totals: list[float] = []
        valid_pixels = 0
        for c, v, total, n_valid in _iter_results(path, windows, res=res, band=band, nodata=nd):
            totals.append(total)
            valid_pixels += n_valid
            if len(c):
                parts.append((c, v))
            if len(parts) >= 64:  # keep memory bounded by the number of distinct cells, not of windows
                parts = [h3cells.merge_cell_sums(parts)]
        cells, sums = h3cells.merge_cell_sums(parts) if parts else (np.empty(0, np.int64), np.empty(0, np.float64))
        input_total = math.fsum(totals)
    return cells, sums, {"input_total": input_total, "pixels": pixels, "valid_pixels": valid_pixels,
                         "windows": len(windows), "workers": n_workers, "scheduler": scheduler,
                         "worker_peak_mb": peak_mb}


def _close_datasets() -> None:
    for ds in _DATASETS.values():
        ds.close()
    _DATASETS.clear()


def build_population(session: Session, raster: str | Path, *, res: int = 8, source: str | None = None,
                     vintage: str | None = None, description: str | None = None, modelled: bool = False,
                     workers: int | None = None, window_pixels: int = WINDOW_PIXELS, band: int = 1,
                     nodata: float | None = None, scheduler: str | None = None) -> BuildReport:
    """Turn a population GeoTIFF into ``population_cells`` of resolution ``res``, replacing ``(source, res)``.

    Parameters
    ----------
    session
        An open session; the caller commits (a failure raises and writes nothing).
    raster
        Path of a single-band population-count raster in any CRS rasterio reads (EPSG:4326, ESRI:54009 ...).
    res
        H3 resolution of the cells (8: about 0.74 km2).
    source
        Name stored with the cells (default: the file's stem), e.g. ``worldpop-2020``.
    vintage, description, modelled
        Recorded in ``population_sources``; ``modelled=True`` marks a model rather than a census-based raster.
    workers, scheduler
        Where the windows are processed (:func:`raster_cells`): by default this process (which still uses two
        threads inside ``grid_to_cells``), or a local Dask cluster of 2 workers for rasters of
        :data:`POOL_MIN_PIXELS` or more; ``scheduler="local"`` with ``workers`` for a local cluster, an address
        for a running one.
    window_pixels
        Pixels per window read at a time (memory per worker is about 8 bytes x this).
    band, nodata
        Band to read; nodata value (default: the raster's own). NaN and infinite pixels are never valid.

    Returns
    -------
    BuildReport

    Raises
    ------
    PopulationBuildError
        The file cannot be read, has no CRS, or the cells would not total the valid pixels to 1e-9 relative.
    """
    _check_res(res)
    path = str(Path(raster).resolve())
    source = check_source(source or _default_source(path))
    started = time.perf_counter()
    cells, sums, info = raster_cells(path, res=res, scheduler=scheduler, workers=workers,
                                     window_pixels=window_pixels, band=band, nodata=nodata)
    written = time.perf_counter()
    count, stored = write_cells(session, cells, sums, source=source, res=res, input_total=info["input_total"],
                                vintage=vintage, description=description, modelled=modelled, input_path=path)
    done = time.perf_counter()
    return BuildReport(source, res, info["input_total"], stored, count, info["pixels"], info["valid_pixels"],
                       info["windows"], info["workers"], done - started, done - written)


def _default_source(path: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-._")[:64]
    return stem or "population"


def _read_points(path: str, *, column: str, lon: str | None, lat: str | None,
                 crs: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd
    from pyproj import CRS, Transformer

    p = Path(path)
    if not p.exists():
        raise PopulationBuildError(f"{path}: no such file")
    if p.suffix.lower() in (".csv", ".txt", ".tsv"):
        frame = pd.read_csv(p, sep=None, engine="python", encoding="utf-8-sig")
        lower = {c.lower().strip(): c for c in frame.columns}
        lon_col = lon or next((lower[n] for n in _LON_NAMES if n in lower), None)
        lat_col = lat or next((lower[n] for n in _LAT_NAMES if n in lower), None)
        for want, got in (("lon", lon_col), ("lat", lat_col)):
            if got is None or got not in frame.columns:
                allowed = _LON_NAMES if want == "lon" else _LAT_NAMES
                raise ValidationError([RowError(None, want, sorted(map(str, frame.columns)),
                                                f"a {want} column named one of {', '.join(allowed)}", path)])
        x = pd.to_numeric(frame[lon_col], errors="coerce").to_numpy(np.float64)
        y = pd.to_numeric(frame[lat_col], errors="coerce").to_numpy(np.float64)
        src_crs = CRS.from_user_input(crs) if crs else CRS.from_epsg(4326)
    else:
        import geopandas as gpd

        frame = gpd.read_file(p)
        if crs:
            frame = frame.set_crs(crs, allow_override=True)
        if frame.crs is None:
            raise PopulationBuildError(f"{path}: the file has no CRS; give one with --crs EPSG:XXXX")
        if not frame.geom_type.isin(["Point"]).all():
            raise PopulationBuildError(f"{path}: only Point geometries can carry population points, got "
                                       f"{sorted(set(frame.geom_type.dropna()))}")
        x, y = frame.geometry.x.to_numpy(np.float64), frame.geometry.y.to_numpy(np.float64)
        src_crs = CRS.from_user_input(frame.crs)
    if column not in frame.columns:
        raise ValidationError([RowError(None, column, sorted(map(str, frame.columns)),
                                        "the population column (--column)", path)])
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    if not src_crs.equals(CRS.from_epsg(4326)):
        x, y = Transformer.from_crs(src_crs, 4326, always_xy=True).transform(x, y)
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    problems: list[RowError] = []
    for i in np.flatnonzero(~(np.isfinite(x) & (np.abs(x) <= 180))):
        problems.append(RowError(int(i) + 1, "lon", float(x[i]), "a longitude in [-180, 180]", path))
    for i in np.flatnonzero(~(np.isfinite(y) & (np.abs(y) <= 90))):
        problems.append(RowError(int(i) + 1, "lat", float(y[i]), "a latitude in [-90, 90]", path))
    for i in np.flatnonzero(~(np.isfinite(values) & (values >= 0))):
        problems.append(RowError(int(i) + 1, column, float(values[i]), "a number >= 0", path))
    if problems:
        raise ValidationError(problems, message=f"{path}: population points rejected; nothing was written")
    return x, y, values


def build_population_points(session: Session, path: str | Path, *, column: str = "population", res: int = 8,
                            source: str | None = None, vintage: str | None = None,
                            description: str | None = None, modelled: bool = False, lon: str | None = None,
                            lat: str | None = None, crs: str | None = None) -> BuildReport:
    """Turn population points (CSV with lon/lat columns, or a point GeoJSON/GPKG/...) into ``population_cells``.

    Each point's ``column`` value goes to the cell containing the point; ``(source, res)`` is replaced.

    Parameters
    ----------
    session
        An open session; the caller commits.
    path
        CSV (columns lon/lng/longitude/x/经度 and lat/latitude/y/纬度, EPSG:4326 unless ``crs``) or a vector file
        of points with a CRS.
    column
        The population column.
    res, source, vintage, description, modelled
        As for :func:`build_population`.
    lon, lat, crs
        Column names and CRS when they cannot be detected.

    Raises
    ------
    ValidationError
        A row with a coordinate out of range or a population that is not a number >= 0 (every such row listed).
    PopulationBuildError
        The file is unreadable or the totals would not be conserved.
    """
    from geoops import h3cells

    _check_res(res)
    full = str(Path(path).resolve())
    source = check_source(source or _default_source(full))
    started = time.perf_counter()
    x, y, values = _read_points(full, column=column, lon=lon, lat=lat, crs=crs)
    cells, sums = h3cells.points_to_cells(x, y, values, res=res)
    total = float(np.sum(values, dtype=np.float64))
    count, stored = write_cells(session, np.asarray(cells, np.int64), np.asarray(sums, np.float64),
                                source=source, res=res, input_total=total, vintage=vintage,
                                description=description, modelled=modelled, input_path=full)
    return BuildReport(source, res, total, stored, count, len(values), len(values), 1, 1,
                       time.perf_counter() - started)


def population_total(session: Session, *, source: str, res: int) -> float:
    """Sum of the stored cells of ``(source, res)`` (0.0 if none)."""
    return float(session.execute(
        select(func.coalesce(func.sum(PopulationCell.population), 0.0))
        .where(PopulationCell.source == source, PopulationCell.res == res)).scalar_one())


def lock_source(session: Session, source: str, res: int) -> None:
    """Serialise concurrent builds of one ``(source, res)`` (transaction-scoped advisory lock)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"population:{source}:{res}"})
