"""Columnar answers: Apache Arrow IPC or Parquet instead of JSON for big tables, chosen by ``Accept``.

Public: :data:`ARROW`, :data:`PARQUET`, :data:`MEDIA_TYPES`, :func:`negotiated`, :func:`table_response`,
:func:`nearest_table`.

A batch of 100,000 points answered in JSON spends most of its time turning numbers into text and back; the same
columns as Arrow IPC (``application/vnd.apache.arrow.stream``) or Parquet (``application/vnd.apache.parquet``) are
written from the arrays as they are. JSON stays the default (``Accept`` absent, ``*/*`` or ``application/json``)
and the answer for small requests. Everything of the answer that is not the table (counts, timings, totals) travels
as JSON in the schema's metadata under the key ``sitroom``.

>>> MEDIA_TYPES
('application/json', 'application/vnd.apache.arrow.stream', 'application/vnd.apache.parquet')
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
from flask import Response, request

__all__ = ["ARROW", "PARQUET", "MEDIA_TYPES", "negotiated", "table_response", "nearest_table"]

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
MEDIA_TYPES = ("application/json", ARROW, PARQUET)


def negotiated() -> str | None:
    """``ARROW`` or ``PARQUET`` when the request's ``Accept`` prefers it to JSON, else None (JSON)."""
    best = request.accept_mimetypes.best_match(MEDIA_TYPES, default=MEDIA_TYPES[0])
    return best if best in (ARROW, PARQUET) else None


def table_response(table: pa.Table, media_type: str, meta: Mapping[str, Any]) -> Response:
    """``table`` as Arrow IPC stream or Parquet, ``meta`` as JSON in the schema metadata (key ``sitroom``)."""
    table = table.replace_schema_metadata({"sitroom": json.dumps(meta, ensure_ascii=False, default=str)})
    sink = io.BytesIO()
    if media_type == PARQUET:
        pq.write_table(table, sink, compression="zstd")
    else:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    resp = Response(sink.getvalue(), mimetype=media_type)
    resp.headers["Vary"] = "Accept"
    return resp


def nearest_table(ids: np.ndarray, distance_m: np.ndarray, bearing_deg: np.ndarray,
                  resources: Sequence[Mapping[str, Any]] | None) -> pa.Table:
    """The k nearest of each point in long form: one row per (point, rank); nulls where fewer than k exist.

    Columns ``point`` (row of the request's points), ``rank`` (1 = nearest), ``resource_id``, ``distance_m``,
    ``bearing_deg``, and with ``resources`` their ``external_id``, ``name``, ``kind``, ``lon``, ``lat``.
    """
    n, k = ids.shape
    none = (ids < 0).ravel()
    cols: dict[str, Any] = {
        "point": pa.array(np.repeat(np.arange(n, dtype=np.uint32), k)),
        "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.uint8), n)),
        "resource_id": pa.array(ids.ravel(), mask=none),
        "distance_m": pa.array(distance_m.ravel(), mask=none | np.isnan(distance_m.ravel())),
        "bearing_deg": pa.array(bearing_deg.ravel(), mask=none | np.isnan(bearing_deg.ravel())),
    }
    if resources is not None:
        by_id = {int(r["id"]): r for r in resources}
        order = np.array(sorted(by_id), dtype=np.int64)
        pos = np.searchsorted(order, ids.ravel()) if order.size else np.zeros(ids.size, dtype=np.int64)
        pos = np.minimum(pos, max(order.size - 1, 0))
        rows = [by_id[int(i)] for i in order.tolist()]
        take: Any = pa.array(pos, type=pa.int64(), mask=none)  # null where a point has fewer than k
        for name, typ in (("external_id", pa.string()), ("name", pa.string()), ("kind", pa.string()),
                          ("lon", pa.float64()), ("lat", pa.float64())):
            values = pa.array([r[name] for r in rows], type=typ)
            cols[name] = (pa.nulls(ids.size, type=typ) if not rows else
                          values.take(take))
    return pa.table(cols)
