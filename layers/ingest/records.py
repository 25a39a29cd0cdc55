"""A few features at a time, without pandas: the twin of :func:`layers.ingest.imports.validate_frame` and
:func:`layers.ingest.imports.upsert_features` for API writes.

Public: :data:`MAX_RECORDS`, :func:`validate_records`, :func:`upsert_records`.

A feed posts one incident at a time, twenty times a second. Through the file-import path each such write costs about
60 ms of CPU: a GeoDataFrame, dozens of pandas operations on one-row columns, a temporary staging table and a COPY.
Here the same checks run on plain values and the upsert is one ``INSERT ... SELECT FROM unnest(...)`` statement, for
a few milliseconds. The rules are not written twice: the layer specs, vocabularies, column mapping, geometry checks
and id hashing are the ones of :mod:`layers.ingest.fieldmap` and :mod:`layers.ingest.imports`; what is re-expressed per value is
how each column type is read, and ``tests/layers/ingest/test_records.py`` checks, on generated input, that both paths
accept and refuse the same items with the same messages and store the same rows.

One difference, on purpose: unmapped properties keep full float precision here (``json.dumps``), where pandas'
``to_json`` rounds to 10 significant digits.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import (
    Connection,
    String,
    Text,
    bindparam,
    cast,
    func,
    literal,
    not_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from layers.ingest import fieldmap
from layers.ingest.imports import (
    UpsertCounts,
    _check_geometry,
    auto_ids,
    datetime_value,
    float_bounds,
    int_bounds,
    refused,
    text_limits,
    text_value,
    upsert_counts,
)
from layers.store.db import connection_of, set_acting_user
from layers.store.errors import RowError
from layers.store.models import FEATURE_MODELS, table_of

#: inputs up to this many features take this path (larger ones the pandas path, which is faster per row)
MAX_RECORDS = 50


def _is_na(v: object) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _blank(v: object) -> bool:
    return _is_na(v) or (isinstance(v, str) and not v.strip())



def _number(v: object) -> float | None:
    """As ``pd.to_numeric(errors="coerce")`` on one value (thousands commas dropped from text)."""
    if _is_na(v):
        return None
    if isinstance(v, str):
        v = v.replace(",", "").strip()
    elif isinstance(v, (bool, int, float)):
        return float(v)
    try:
        out = pd.to_numeric(pd.Series([v], dtype=object), errors="coerce").iloc[0]
    except (TypeError, ValueError):
        return None
    return None if _is_na(out) else float(out)


def _datetime(v: object) -> datetime | None:
    t = datetime_value(v)
    return None if t is None else t.to_pydatetime(warn=False)


def _json_safe(v: Any) -> Any:
    """``v`` with NaN and infinities as null (JSON has no such numbers; pandas' ``to_json`` writes null too)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def validate_records(layer: str, records: Sequence[Mapping[str, Any]], geoms: Sequence[Any], *,
                     file: str | None = None, geom_field: str = "geometry") \
        -> tuple[list[dict[str, Any]], list[RowError], list[str], list[str]]:
    """Check ``records`` (property dicts) with their shapely ``geoms`` (EPSG:4326) for ``layer``; nothing is written.

    The row of an error is the record's index. Same checks, messages and results as
    :func:`layers.ingest.imports.validate_frame` on the frame of the same records.

    Returns
    -------
    (clean, problems, notes, present)
        ``clean``: one dict per valid record with the layer's columns (vocabulary keys, ints, UTC datetimes),
        ``properties`` (JSON text of the unmapped keys), ``row`` and ``geometry``; ``problems``: every invalid value;
        ``notes``: repairs and mapping decisions; ``present``: the layer columns the input had.

    Examples
    --------
    >>> from shapely import Point
    >>> clean, problems, notes, present = validate_records(
    ...     "resources", [{"名称": "一中", "类型": "消防车", "数量": "2", "电话": "0471"}], [Point(111.7, 40.8)])
    >>> [clean[0][k] for k in ("name", "kind", "quantity", "status", "properties")], problems
    (['一中', 'fire_engine', 2, 'available', '{"电话": "0471"}'], [])
    """
    s = fieldmap.spec(layer)
    n = len(records)
    columns: list[str] = []
    for rec in records:
        columns.extend(k for k in rec if k not in columns)
    notes: list[str] = []
    ignored = [c for c in columns if fieldmap.normalize_name(c) in fieldmap.IGNORED_COLUMNS]
    if ignored:
        notes.append("ignored columns the database assigns or that only style a map: " + ", ".join(map(str, ignored)))
        columns = [c for c in columns if c not in ignored]
    mapping, more = fieldmap.map_columns(layer, [str(c) for c in columns])
    notes.extend(more)
    source_of = {t: c for c, t in mapping.items()}
    extra_cols = [c for c in columns if c not in mapping]
    problems: dict[int, list[RowError]] = {}

    def add(i: int, col: str, value: object, allowed: str) -> None:
        problems.setdefault(i, []).append(RowError(i, source_of.get(col, col), value, allowed, file))

    lookups = {col: fieldmap.vocab_lookup(v) for col, v in s.vocabs.items()}
    limits = text_limits(layer)
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for col in s.columns:
        src = source_of.get(col)
        for i, rec in enumerate(records):
            raw = rec.get(src) if src is not None else None
            value: Any
            if src is None or _blank(raw):
                value = None
            elif col in s.vocabs:
                value = lookups[col].get(fieldmap.normalize_name(fieldmap._value_text(raw)))
                if value is None:
                    add(i, col, raw, fieldmap.describe_vocab(s.vocabs[col]))
            elif col in s.ints:
                lo, hi, allowed = int_bounds(layer, col)
                num = _number(raw)
                ok = num is not None and math.isfinite(num) and num % 1 == 0 and lo <= num <= hi
                value = int(num) if ok else None  # type: ignore[arg-type]
                if not ok:
                    add(i, col, raw, allowed)
            elif col in s.floats:
                lo_f, hi_f, allowed = float_bounds(layer, col)
                num = _number(raw)
                ok = num is not None and math.isfinite(num) and lo_f <= num <= hi_f
                value = num if ok else None
                if not ok:
                    add(i, col, raw, allowed)
            elif col in s.datetimes:
                value = _datetime(raw)
                if value is None:
                    add(i, col, raw, "a date/time such as 2024-07-01T08:30:00+08:00 (no zone: Beijing time)")
            else:
                value = text_value(raw)
                limit = limits.get(col)
                if limit is not None and value is not None and len(value) > limit:
                    add(i, col, raw, f"at most {limit} characters")
                if col in s.patterns and value is not None:
                    rx, what = s.patterns[col]
                    if re.fullmatch(rx, value) is None:
                        add(i, col, raw, what)
            out[i][col] = value
    for row in out:
        for col, default in s.defaults.items():
            if row[col] is None:
                row[col] = default
        if layer == "admin_regions" and row["kind"] is None:
            row["kind"] = row["level"]
    for col in s.required:
        src = source_of.get(col)
        for i, rec in enumerate(records):
            if src is None or _blank(rec.get(src)):
                add(i, col, None, f"a value (required for {layer}); column names accepted: "
                    + ", ".join(s.names_for(col)[:8]))
    if layer == "shelters":
        for i, row in enumerate(out):
            if row["occupancy"] is not None and row["capacity"] is not None and row["occupancy"] > row["capacity"]:
                notes.append(f"row {i}: occupancy {row['occupancy']} exceeds capacity {row['capacity']} "
                             "(kept; the shelter is over-full)")
    given_geoms = np.empty(n, dtype=object)
    given_geoms[:] = list(geoms)
    checked, gproblems, repaired = _check_geometry(layer, given_geoms, np.arange(n), file, geom_field)
    for i, e in gproblems.items():
        problems.setdefault(i, []).insert(0, e)
    notes = repaired + notes
    # ids: given, else the hash of geometry and name (as validate_frame); unique within the input
    if layer == "admin_regions":
        for row in out:
            if row["external_id"] is None:
                row["external_id"] = row["adcode"]
    given = [row["external_id"] is not None for row in out]
    auto = auto_ids(checked, [row["name"] for row in out])
    for row, a, g in zip(out, auto, given, strict=True):
        if not g:
            row["external_id"] = a
    for col in ["external_id"] + (["adcode"] if layer == "admin_regions" else []):
        seen: dict[object, int] = {}
        for i, row in enumerate(out):
            v = row[col]
            if v is None or i in problems:
                continue
            if v not in seen:
                seen[v] = i
            elif col == "external_id" and not given[i]:
                add(i, geom_field, f"same geometry and name as row {seen[v]}",
                    "distinct features (rows without external_id are identified by geometry and name)")
            else:
                add(i, col, v, f"a value not used by another row (row {seen[v]} has it)")
    clean = []
    for i, row in enumerate(out):
        if i in problems:
            continue
        props = {str(c): _json_safe(records[i].get(c)) for c in extra_cols}
        row.update(properties=json.dumps(props, ensure_ascii=False, default=str) if extra_cols else "{}",
                   row=i, geometry=checked[i])
        clean.append(row)
    flat = sorted((e for errs in problems.values() for e in errs), key=lambda e: (e.row or 0))
    return clean, flat, notes, sorted(source_of)


def _stage_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _columns(layer: str) -> list[str]:
    target = table_of(FEATURE_MODELS[layer])
    return [k for k in fieldmap.spec(layer).columns if k in target.c] + ["properties", "geom"]


@functools.lru_cache(maxsize=256)
def _upsert_statement(layer: str, kept: frozenset[str]) -> Any:
    """The upsert for ``layer`` updating the columns ``kept``, built once: one text array per column
    (``unnest(:external_id, :name, ...)``), so the statement does not depend on the number of rows and SQLAlchemy
    compiles it once."""
    target = table_of(FEATURE_MODELS[layer])
    cols = _columns(layer)
    raw = func.unnest(*[bindparam(f"c_{k}", type_=ARRAY(Text)) for k in cols]).table_valued(*cols).render_derived(
        name="v")
    typed = []
    for k in cols:
        if k == "properties":
            typed.append(func.jsonb_strip_nulls(cast(raw.c[k], JSONB)).label(k))
        elif isinstance(target.c[k].type, String):
            # text stays text: storing it into varchar(n) refuses what is too long (a cast would cut it silently)
            typed.append(raw.c[k].label(k))
        elif k == "occurred_at":
            typed.append(func.coalesce(cast(raw.c[k], target.c[k].type), func.now()).label(k))
        else:
            typed.append(cast(raw.c[k], target.c[k].type).label(k))
    stage = select(*typed).cte("stage")
    sc = stage.c
    update_cols = [k for k in cols if k in kept]
    compare = [k for k in update_cols if k not in ("geom", "properties")]
    t2 = target.alias("stored")
    identical = select(literal(1)).where(
        t2.c.source == bindparam("source"), t2.c.external_id == sc.external_id, t2.c.deleted_at.is_(None),
        tuple_(*[t2.c[k] for k in compare], func.ST_AsEWKB(t2.c.geom)).is_not_distinct_from(
            tuple_(*[sc[k] for k in compare], func.ST_AsEWKB(sc.geom))),
        t2.c.properties.op("@>", is_comparison=True)(sc.properties)).exists()
    ins = pg_insert(target).from_select(
        [*cols, "source", "updated_by"],
        select(*[sc[k] for k in cols], bindparam("source", type_=String(64)).label("source"),
               bindparam("user", type_=String(64)).label("updated_by")).where(not_(identical)))
    return upsert_counts(ins, target, update_cols, compare)


def upsert_records(conn: Session | Connection, layer: str, clean: Sequence[Mapping[str, Any]], *,
                   present: Sequence[str] | None, source: str, user: str = "system") -> UpsertCounts:
    """Write the ``clean`` records of :func:`validate_records` into ``layer``: one ``INSERT ... SELECT`` from the
    rows passed as one text array per column, ``ON CONFLICT (source, external_id) DO UPDATE``, with the semantics
    of :func:`layers.ingest.imports.upsert_features` (only ``present`` columns updated, properties merged, ``deleted_at``
    cleared, identical rows left alone and counted as unchanged; ``sitroom.user`` and ``updated_by`` = ``user``).

    One statement, so atomic; it runs in the caller's transaction, which is aborted by a refusal (the API rolls the
    request back).

    Raises
    ------
    ValidationError
        when the database refuses a row (a unique value another source already uses).
    """
    c = connection_of(conn)
    spec_cols = list(fieldmap.spec(layer).columns)
    cols = _columns(layer)
    kept = frozenset(set(present if present is not None else spec_cols) | {"external_id", "geom"})
    if not clean:
        return UpsertCounts(0, 0, 0)
    params: dict[str, Any] = {"source": source, "user": user}
    for k in cols:
        if k == "geom":
            g = shapely.set_srid(np.asarray([r["geometry"] for r in clean], dtype=object), 4326)
            params["c_geom"] = shapely.to_wkb(g, hex=True, include_srid=True).tolist()
        elif k == "properties":
            params["c_properties"] = [r.get("properties") or "{}" for r in clean]
        else:
            params[f"c_{k}"] = [_stage_text(r.get(k)) for r in clean]
    set_acting_user(c, user)
    try:
        ins_n, upd_n = c.execute(_upsert_statement(layer, kept), params).one()
    except IntegrityError as e:
        raise refused(e) from None
    return UpsertCounts(int(ins_n), int(upd_n), len(clean) - int(ins_n) - int(upd_n))


__all__ = ["MAX_RECORDS", "upsert_records", "validate_records"]
