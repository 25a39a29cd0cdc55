"""Feature writes for the HTTP API (feeds and other systems): create-or-update from GeoJSON, PATCH, soft DELETE.

Public: :func:`feature_items`, :func:`features_frame`, :func:`write_features`, :func:`patch_feature`, :func:`delete_feature`,
:class:`WriteResult`, :data:`PATCHABLE`, :data:`MAX_FEATURES`.

The same checks as file imports (:func:`layers.ingest.imports.validate_frame`: vocabularies in English keys, zh-CN or en
labels; integers; times; geometry type, validity, coordinate range and service area) and the same idempotent upsert
by ``(source, external_id)`` (:func:`layers.ingest.imports.upsert_features`; up to :data:`layers.ingest.records.MAX_RECORDS`
features their pandas-free twins in :mod:`layers.ingest.records`). A feature's ``external_id`` is its GeoJSON
``id`` or its ``external_id``/``id`` property; without one it is a hash of geometry and name, so re-sending the same
feature never duplicates it. Every call is one savepoint of the caller's transaction: one bad item rejects the whole
request (each problem names the item's 0-based index in ``features`` as ``row``, and the field), and nothing of it
is written. POST is a full representation (the layer's required fields must be given); PATCH changes some columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from geoops.errors import GeoOpsError
from geoops.validate import parse_geojson_geometry
from layers.ingest import fieldmap
from layers.ingest.imports import upsert_features, validate_frame
from layers.ingest.records import MAX_RECORDS, upsert_records, validate_records
from layers.store.db import connection_of, set_acting_user
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import FEATURE_MODELS, table_of

MAX_FEATURES = 10_000
#: columns a PATCH may change, per layer (``properties`` is merged key by key; a null value removes a key)
PATCHABLE: dict[str, tuple[str, ...]] = {
    # a resource's geometry: its position from a vehicle location feed (the task board's distance and ETA left)
    "resources": ("status", "quantity", "unit", "name", "valid_to", "properties", "geometry"),
    "shelters": ("status", "occupancy", "capacity", "name", "valid_to", "properties"),
    "incidents": ("status", "severity", "casualties", "name", "valid_to", "properties"),
    "hazards": ("status", "warning_level", "onset", "expires", "name", "valid_to", "properties"),
    "protection_targets": ("status", "occupants", "criticality", "name", "properties"),
    "impact_zones": ("status", "name", "valid_to", "properties"),
    "annotations": ("status", "label", "color", "kind", "name", "properties"),
    "admin_regions": ("name", "name_en", "properties"),
    "stations": ("status", "name", "interval_s", "adcode", "warning_stage_m", "guarantee_stage_m", "record_stage_m",
                 "valid_to", "properties"),
}
_BODY = "request body"


@dataclass
class WriteResult:
    """What a POST did: counts, and the stored id of every item in request order."""

    layer: str
    source: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    ids: list[int] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_layer(layer: str) -> None:
    if layer not in FEATURE_MODELS:
        raise NotFoundError(f"unknown layer {layer!r}; known layers: {', '.join(FEATURE_MODELS)}")


def feature_items(body: Any) -> tuple[list[dict[str, Any]], list[Any], list[RowError]]:
    """The items of a GeoJSON Feature or FeatureCollection: property dicts (``external_id`` from the GeoJSON ``id``),
    shapely geometries (None where missing or unreadable), and the items that cannot be read at all (not a Feature,
    unreadable geometry).

    Raises
    ------
    ValidationError
        when the body is neither a Feature nor a FeatureCollection, or has more than :data:`MAX_FEATURES` items.
    """
    if isinstance(body, Mapping) and body.get("type") == "FeatureCollection":
        items = body.get("features")
        if not isinstance(items, list):
            raise ValidationError([RowError(None, "features", type(items).__name__, "an array of GeoJSON Features",
                                            _BODY)], message="FeatureCollection without features; nothing was written")
    elif isinstance(body, Mapping) and body.get("type") == "Feature":
        items = [body]
    else:
        got = body.get("type") if isinstance(body, Mapping) else type(body).__name__
        raise ValidationError([RowError(None, "type", got, "a GeoJSON Feature or FeatureCollection", _BODY)],
                              message="not GeoJSON; nothing was written")
    if len(items) > MAX_FEATURES:
        raise ValidationError([RowError(None, "features", f"{len(items)} features", f"at most {MAX_FEATURES} per "
                                        "request", _BODY)], message="too many features; nothing was written")
    records: list[dict[str, Any]] = []
    geoms: list[Any] = []
    problems: list[RowError] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or item.get("type") != "Feature":
            got = item.get("type") if isinstance(item, Mapping) else type(item).__name__
            problems.append(RowError(i, "type", got, "a GeoJSON Feature", _BODY))
            records.append({})
            geoms.append(None)
            continue
        props = item.get("properties") or {}
        if not isinstance(props, Mapping):
            problems.append(RowError(i, "properties", type(props).__name__, "an object or null", _BODY))
            props = {}
        rec = dict(props)
        fid = item.get("id")
        if fid is not None and not any(fieldmap.normalize_name(k) in ("externalid", "extid") for k in rec):
            rec = {"external_id": str(fid), **{k: v for k, v in rec.items() if fieldmap.normalize_name(k) != "id"}}
        records.append(rec)
        g = item.get("geometry")
        try:  # strict RFC 7946: positions are numbers, nested as the type says (["111", "40"] or [[111, 40]] fail)
            geoms.append(parse_geojson_geometry(g) if g is not None else None)
        except GeoOpsError as e:
            problems.append(RowError(i, e.field or "geometry", json.dumps(g, default=str)[:200],
                                     f"a GeoJSON geometry with lon/lat coordinates ({e.message}; {e.allowed})", _BODY))
            geoms.append(None)
    return records, geoms, problems


def _frame(records: list[dict[str, Any]], geoms: list[Any]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame.from_records(records, index=pd.RangeIndex(len(records))) if records else pd.DataFrame()
    for c in frame.columns:  # nested values stay JSON values in properties
        if frame[c].map(lambda v: isinstance(v, (dict, list))).any():
            frame[c] = frame[c].astype(object)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(np.array(geoms, dtype=object), crs=4326,
                                                           index=frame.index), crs=4326)


def features_frame(body: Any) -> tuple[gpd.GeoDataFrame, list[RowError]]:
    """A GeoJSON Feature or FeatureCollection as a frame (index = 0-based item index), and the items that cannot
    be read at all (:func:`feature_items`).

    Examples
    --------
    >>> gdf, bad = features_frame({"type": "Feature", "id": "r1", "geometry": {"type": "Point",
    ...     "coordinates": [111.7, 40.8]}, "properties": {"kind": "boat"}})
    >>> gdf[["external_id", "kind"]].iloc[0].tolist(), gdf.geometry.iloc[0].wkt, bad
    (['r1', 'boat'], 'POINT (111.7 40.8)', [])
    """
    records, geoms, problems = feature_items(body)
    return _frame(records, geoms), problems


def write_features(conn: Session | Connection, layer: str, body: Any, *, source: str = "api",
                   user: str = "api") -> WriteResult:
    """Create or update features of ``layer`` from a GeoJSON Feature or FeatureCollection (one savepoint).

    Parameters
    ----------
    conn
        the caller's Session or Connection; the caller commits.
    layer
        one of :data:`layers.store.models.FEATURE_MODELS`.
    body
        the parsed GeoJSON (EPSG:4326 lon/lat); property names as in file imports (:mod:`layers.ingest.fieldmap`).
    source
        upsert key with ``external_id`` (at most 64 characters).
    user
        recorded in ``updated_by`` and the history.

    Returns
    -------
    WriteResult

    Raises
    ------
    NotFoundError
        unknown layer.
    ValidationError
        every bad item, with ``row`` = its index in ``features`` and the field; nothing is written.
    """
    _check_layer(layer)
    if not source or len(source) > 64:
        raise ValidationError([RowError(None, "source", source, "1 to 64 characters", _BODY)],
                              message="bad source; nothing was written")
    records, geoms, problems = feature_items(body)
    not_features = {p.row for p in problems if p.field == "type"}  # say why once, not every missing field
    no_geometry = {p.row for p in problems if (p.field or "").split(".")[0] == "geometry"}  # unreadable: said once
    small = len(records) <= MAX_RECORDS  # a feed's single feature: no pandas, one statement (layers.ingest.records)
    if small:
        rows, vproblems, notes, present = validate_records(layer, records, geoms, file=_BODY)
    else:
        clean, vproblems, notes = validate_frame(layer, _frame(records, geoms), file=_BODY)
    problems += [p for p in vproblems if p.row not in not_features
                 and not (p.row in no_geometry and p.field == "geometry")]
    if problems:
        problems.sort(key=lambda p: (p.row if p.row is not None else -1))
        n_bad = len({p.row for p in problems})
        raise ValidationError(problems, message=f"{n_bad} of {len(records)} features invalid (row = index in "
                                                "features); nothing was written")
    result = WriteResult(layer=layer, source=source, notes=notes)
    if not records:
        return result
    model = FEATURE_MODELS[layer]
    with conn.begin_nested():
        if small:
            counts = upsert_records(conn, layer, rows, present=present, source=source, user=user)
            ext = [r["external_id"] for r in rows]
        else:
            counts = upsert_features(conn, layer, clean, source=source, user=user)
            ext = clean["external_id"].tolist()
        ids = dict(connection_of(conn).execute(select(model.external_id, model.id).where(
            model.source == source, model.external_id.in_(ext))).all())
    result.inserted, result.updated, result.unchanged = counts.inserted, counts.updated, counts.unchanged
    result.external_ids = [str(e) for e in ext]
    result.ids = [int(ids[e]) for e in ext]
    return result


def _current(c: Connection, layer: str, feature_id: int) -> Any:
    model = FEATURE_MODELS[layer]
    t = table_of(model)
    row = c.execute(select(*t.c, func.ST_AsBinary(t.c.geom).label("_wkb"))
                    .where(t.c.id == feature_id, t.c.deleted_at.is_(None))).mappings().first()
    if row is None:
        raise NotFoundError(f"no live feature {feature_id} in layer {layer!r}")
    return row


def _patched_geometry(changes: Mapping[str, Any]) -> Any:
    g = changes["geometry"]
    try:  # strict RFC 7946, as a feed's POST is read
        return parse_geojson_geometry(g)
    except GeoOpsError as e:
        raise ValidationError([RowError(None, e.field or "geometry", json.dumps(g, default=str)[:200],
                                        f"a GeoJSON geometry with lon/lat coordinates ({e.message}; {e.allowed})",
                                        _BODY)],
                              message="bad geometry; nothing was written") from None


def patch_feature(conn: Session | Connection, layer: str, feature_id: int, changes: Mapping[str, Any], *,
                  user: str = "api") -> dict[str, Any]:
    """Change some columns of one live feature (status, occupancy, quantity ...), checked like an import row.

    Values are read as in imports: vocabulary keys or their zh-CN / en labels (``已出动`` -> ``deployed``),
    integers, ISO times. ``properties`` is merged (a null removes a key). A resource's ``geometry`` (GeoJSON) moves
    it, checked as an import's (a point in the service area). The history records the change and ``user``.

    Returns
    -------
    dict
        ``{"id", "layer", "changed": {column: new value}}`` (empty ``changed`` when nothing differed).

    Raises
    ------
    NotFoundError
        unknown layer, or no live feature with that id.
    ValidationError
        a column that cannot be patched (lists those that can), or a bad value (names the field).
    """
    _check_layer(layer)
    if not isinstance(changes, Mapping) or not changes:
        raise ValidationError([RowError(None, None, changes, "a JSON object of columns to change: "
                                        + ", ".join(PATCHABLE[layer]), _BODY)], message="nothing to change")
    allowed = PATCHABLE[layer]
    bad = [RowError(None, k, v, "one of " + ", ".join(allowed), _BODY) for k, v in changes.items() if k not in allowed]
    if bad:
        raise ValidationError(bad, message=f"these fields of {layer} cannot be changed by PATCH; nothing was written")
    table = table_of(FEATURE_MODELS[layer])
    nulls = [RowError(None, k, None, f"a value ({k} is required: null would erase it)", _BODY)
             for k, v in changes.items() if v is None and k != "properties" and k in table.c and not table.c[k].nullable]
    if nulls:
        raise ValidationError(nulls, message="null for a required field; nothing was written")
    props_patch = changes.get("properties")
    if props_patch is not None and not isinstance(props_patch, Mapping):
        raise ValidationError([RowError(None, "properties", props_patch, "an object", _BODY)],
                              message="bad properties; nothing was written")
    c = connection_of(conn)
    model = FEATURE_MODELS[layer]
    with conn.begin_nested():
        cur = _current(c, layer, feature_id)
        cols = {k: v for k, v in changes.items() if k not in ("properties", "geometry")}
        spec_cols = [k for k in fieldmap.spec(layer).columns if k in cur]
        record = {k: cur[k] for k in spec_cols}
        record.update(cols)
        geom = shapely.from_wkb(bytes(cur["_wkb"])) if "geometry" not in changes else _patched_geometry(changes)
        frame = gpd.GeoDataFrame(pd.DataFrame([record], index=[0]).astype(object),
                                 geometry=gpd.GeoSeries([geom], crs=4326), crs=4326)
        clean, problems, _ = validate_frame(layer, frame, file=_BODY)
        mine = [p for p in problems if p.field in cols or (p.field == "geometry" and "geometry" in changes)]
        if mine or problems:
            raise ValidationError([RowError(None, p.field, p.value, p.allowed, _BODY) for p in (mine or problems)],
                                  message="bad value; nothing was written")
        values: dict[str, Any] = {}
        for k in cols:
            v = clean[k].iloc[0]
            v = None if v is None or (not isinstance(v, (list, dict)) and pd.isna(v)) else v
            if isinstance(v, pd.Timestamp):
                v = v.to_pydatetime()
            elif isinstance(v, np.integer):
                v = int(v)
            if v != cur[k]:
                values[k] = v
        if "geometry" in changes and not shapely.equals_exact(geom, shapely.from_wkb(bytes(cur["_wkb"])), 0.0):
            values["geom"] = func.ST_GeomFromWKB(shapely.to_wkb(clean.geometry.iloc[0]), 4326)
        if props_patch:
            merged = {**cur["properties"], **props_patch}
            merged = {k: v for k, v in merged.items() if v is not None}
            if merged != cur["properties"]:
                values["properties"] = merged
        if values:
            set_acting_user(c, user)
            c.execute(update(model).where(model.id == feature_id).values(**values, updated_by=user))
    return {"id": int(feature_id), "layer": layer, "changed": values}


def delete_feature(conn: Session | Connection, layer: str, feature_id: int, *, user: str = "api") -> dict[str, Any]:
    """Soft-delete one feature: ``deleted_at`` is set, the row and its history stay; it leaves every live view.

    Deleting a feature that is already deleted changes nothing and says so (``already_deleted``).

    Raises
    ------
    NotFoundError
        unknown layer, or no feature with that id.
    """
    _check_layer(layer)
    model = FEATURE_MODELS[layer]
    c = connection_of(conn)
    with conn.begin_nested():
        set_acting_user(c, user)
        row = c.execute(update(model).where(model.id == feature_id, model.deleted_at.is_(None))
                        .values(deleted_at=func.now(), updated_by=user)
                        .returning(model.deleted_at)).first()
        if row is not None:
            return {"id": int(feature_id), "layer": layer, "deleted_at": row[0], "already_deleted": False}
        before = c.execute(select(model.deleted_at).where(model.id == feature_id)).first()
    if before is None:
        raise NotFoundError(f"no feature {feature_id} in layer {layer!r}")
    return {"id": int(feature_id), "layer": layer, "deleted_at": before[0], "already_deleted": True}
