"""Export a layer to GeoJSON, GeoPackage or CSV, optionally clipped (in PostGIS) to a bbox or to the shapes of a file.

Public: :func:`export_layer`, :func:`fetch_layer`, :func:`read_within`, :func:`parse_bbox`, :data:`EXPORT_SUFFIXES`.

The exported columns are the layer's own (vocabulary keys, not labels) plus every key of ``properties`` as a column
of its own (flattened; a key that clashes with a column name gets the prefix ``prop_``; nested values are written
as JSON text). ``sitroom_id``, ``source``, ``created_at``, ``updated_at``, ``updated_by`` and ``deleted_at`` are
written for reference and ignored by :func:`layers.ingest.imports.import_file`, so an export imports back unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from layers.ingest import fieldmap
from layers.store.errors import RowError, ValidationError
from layers.store.models import FEATURE_MODELS, table_of

EXPORT_SUFFIXES: dict[str, str] = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".csv": "CSV"}
_SYSTEM = ("created_at", "updated_at", "updated_by", "deleted_at")


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` in degrees -> a tuple; raises :class:`ValidationError` saying what is allowed.

    >>> parse_bbox("111,40,112.5,41")
    (111.0, 40.0, 112.5, 41.0)
    """
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise ValidationError([RowError(None, "bbox", text, "four numbers W,S,E,N in degrees")]) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValidationError([RowError(None, "bbox", text, "W < E within -180..180 and S < N within -90..90")])
    return w, s, e, n


def read_within(path: str | Path, *, crs: str | None = None) -> BaseGeometry:
    """The union of the shapes of a file (any import format, any CRS), in EPSG:4326, for ``--within``."""
    from layers.ingest.imports import read_features

    gdf, problems, _ = read_features(path, crs=crs)
    if problems:
        raise ValidationError(problems, message=f"{Path(path).name}: unreadable coordinates")
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    geoms = geoms[~(pd.isna(geoms) | shapely.is_empty(geoms))]
    if not len(geoms):
        raise ValidationError([RowError(None, "geometry", "no shapes", "a file with at least one polygon", str(path))])
    return shapely.union_all(shapely.make_valid(geoms))


def fetch_layer(conn: Session | Connection, layer: str, *, bbox: tuple[float, float, float, float] | None = None,
                within: BaseGeometry | None = None, include_deleted: bool = False) -> gpd.GeoDataFrame:
    """Rows of ``layer`` (live ones unless ``include_deleted``), filtered in PostGIS with ``ST_Intersects``.

    Returns a GeoDataFrame in EPSG:4326 with the layer's columns, ``properties`` as dicts and ``sitroom_id``.
    """
    if layer not in FEATURE_MODELS:
        raise ValidationError([RowError(None, "layer", layer, "one of " + ", ".join(FEATURE_MODELS))])
    t = table_of(FEATURE_MODELS[layer])
    cols = [c for c in t.c if c.name not in ("geom", "id")]
    stmt = select(t.c.id.label("sitroom_id"), *cols, func.ST_AsBinary(t.c.geom).label("_wkb")).order_by(t.c.id)
    if not include_deleted:
        stmt = stmt.where(t.c.deleted_at.is_(None))
    if bbox is not None:
        stmt = stmt.where(func.ST_Intersects(t.c.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    if within is not None:
        stmt = stmt.where(func.ST_Intersects(t.c.geom, func.ST_GeomFromWKB(shapely.to_wkb(within), 4326)))
    result = conn.execute(stmt)
    df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    geom: Any = shapely.from_wkb(np.array([bytes(b) for b in df.pop("_wkb")], dtype=object)) if len(df) else []
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, index=df.index, crs=4326))


def _flatten(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    props = gdf.pop("properties") if "properties" in gdf else pd.Series([{}] * len(gdf), index=gdf.index)
    keys: list[str] = []
    for p in props:
        for k in (p or {}):
            if k not in keys:
                keys.append(k)
    taken = {fieldmap.normalize_name(c) for c in gdf.columns}
    for k in keys:
        name = f"prop_{k}" if fieldmap.normalize_name(k) in taken else k
        vals = [(p or {}).get(k) for p in props]
        if any(isinstance(v, (dict, list)) for v in vals):
            vals = [json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for v in vals]
        gdf[name] = pd.Series(vals, index=gdf.index, dtype=object)
        if all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            gdf[name] = pd.to_numeric(gdf[name])
            if all(v is None or isinstance(v, int) for v in vals):
                gdf[name] = gdf[name].astype("Int64")
    return gdf


def export_layer(conn: Session | Connection, layer: str, path: str | Path, *,
                 bbox: tuple[float, float, float, float] | None = None, within: BaseGeometry | None = None,
                 include_deleted: bool = False) -> int:
    """Write ``layer`` to ``path`` (GeoJSON, GeoPackage or CSV by suffix); returns the number of rows written.

    CSV gets ``lon``/``lat`` columns for point layers and a ``wkt`` column otherwise; text is UTF-8 with a BOM
    (so that spreadsheet programs read Chinese correctly).

    Raises
    ------
    ValidationError
        for an unsupported suffix or an unknown layer.
    """
    p = Path(path)
    driver = EXPORT_SUFFIXES.get(p.suffix.lower())
    if driver is None:
        raise ValidationError([RowError(None, None, p.suffix or p.name, "one of " + ", ".join(EXPORT_SUFFIXES),
                                        str(p))])
    gdf = _flatten(fetch_layer(conn, layer, bbox=bbox, within=within, include_deleted=include_deleted))
    order = ["sitroom_id", "source", "external_id", "name", "kind", "status"]
    gdf = gdf[[*order, *[c for c in gdf.columns if c not in order and c not in _SYSTEM and c != "geometry"],
               *_SYSTEM, "geometry"]]
    if p.exists():
        p.unlink()
    if driver == "CSV":
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        for c in df.columns:
            if isinstance(df[c].dtype, pd.DatetimeTZDtype):
                df[c] = df[c].map(lambda t: None if pd.isna(t) else t.isoformat())
        if FEATURE_MODELS[layer].GEOM_TYPE == "POINT":
            df["lon"], df["lat"] = shapely.get_x(gdf.geometry.values), shapely.get_y(gdf.geometry.values)
        else:
            df["wkt"] = shapely.to_wkt(np.asarray(gdf.geometry.values, dtype=object))
        df.to_csv(p, index=False, encoding="utf-8-sig")
    else:
        kind = FEATURE_MODELS[layer].GEOM_TYPE
        geometry_type = {"POINT": "Point", "MULTIPOLYGON": "MultiPolygon"}.get(kind, "Unknown")
        pyogrio.write_dataframe(gdf, p, driver=driver, layer=layer, geometry_type=geometry_type)
    return len(gdf)
