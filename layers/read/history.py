"""The past of the store: the situation at any time, what changed between two times, replay frames, and the change
cursor the live push resumes from.

Public: :data:`SITUATION_LAYERS`, :data:`SHADOWED_LAYERS`, :data:`MAX_FRAMES`, :func:`states_at`, :func:`first_record`,
:func:`as_of`,
:func:`states_page`, :func:`situation_at`, :func:`changes_between`, :func:`change_counts`, :func:`replay_frames`, :func:`feature_history`,
:func:`change_cursor`, :func:`changes_after`, :func:`group_changes`.

Everything is rebuilt from ``feature_history`` (filled by the triggers of migrations 0002/0003: the full row after
each insert, update and soft delete, the row before a purge; geometry as hex EWKB under ``"geom"``). The state of a
feature at time ``at`` is its last history row with ``changed_at <= at`` (the latest ``changed_at``, then the
largest id): :func:`states_at`, the one time-travel primitive. It is on the map unless that row is a ``delete`` or
``purge`` (or carries ``deleted_at``). Two views of the past are built on it: :func:`situation_at` (and
:func:`replay_frames`) return the picture as GeoJSON; :func:`as_of` puts it in temporary tables named as the live
ones, so that every unchanged query of the store (the situation report, the wall's KPIs) reads the past. Features come out exactly like the live layer API
(:func:`layers.read.queries.fetch_features`): ``id``, GeoJSON geometry (7 decimals) and the row's columns merged over its
``properties`` JSONB, so a picture rebuilt for "now" equals the live one.

``changed_at`` is the time of the writing statement (``clock_timestamp()``), not of the commit: a transaction that
commits after ``at`` but wrote before it is part of the picture at ``at``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    String,
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import array, distinct_on
from sqlalchemy.orm import Session

from layers.read.queries import MAX_LIMIT
from layers.store.errors import RowError, ValidationError
from layers.store.models import FEATURE_MODELS, FeatureHistory

__all__ = [
    "SITUATION_LAYERS",
    "SHADOWED_LAYERS",
    "MAX_FRAMES",
    "states_at",
    "first_record",
    "as_of",
    "states_page",
    "situation_at",
    "changes_between",
    "change_counts",
    "replay_frames",
    "feature_history",
    "change_cursor",
    "changes_after",
    "group_changes",
]

Db = Session | Connection

#: the layers of "the picture": what ``situation?at=`` returns by default (admin regions and protection targets
#: hardly change and are large; ask for them by name)
SITUATION_LAYERS: tuple[str, ...] = ("hazards", "incidents", "resources", "shelters", "annotations", "impact_zones")
#: the layers :func:`as_of` rebuilds: those the situation report and the wall's KPIs read (admin regions and
#: population cells are read as they are now)
SHADOWED_LAYERS: tuple[str, ...] = ("hazards", "incidents", "shelters", "resources")
#: most frames one :func:`replay_frames` call builds
MAX_FRAMES = 2000
#: most rows :func:`changes_between` / :func:`changes_after` return
MAX_CHANGES = 100_000
GEOJSON_DECIMALS = 7  # as layers.read.queries: 1e-7 degree is about 1 cm
_NOT_PROPERTIES = ("id", "geom", "properties", "deleted_at")
_GONE = ("delete", "purge")

H = FeatureHistory


def _check_time(field: str, value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError([RowError(None, field, value, "a timezone-aware datetime (ISO 8601 with offset)")])
    return value


def _check_layers(layers: str | Iterable[str] | None) -> list[str]:
    if layers is None:
        return list(SITUATION_LAYERS)
    names = [layers] if isinstance(layers, str) else list(layers)
    bad = [n for n in names if n not in FEATURE_MODELS]
    if bad or not names:
        raise ValidationError([RowError(None, "layers", bad[0] if bad else names, ", ".join(FEATURE_MODELS))])
    return list(dict.fromkeys(names))


def _feature_columns(row: Any = H.row) -> list[Any]:
    """Columns that turn a history row into a GeoJSON feature: id, properties (JSONB), geometry (GeoJSON text)."""
    props = func.coalesce(row.op("->")("properties"), func.jsonb_build_object()).op("||")(
        row.op("-")(array(list(_NOT_PROPERTIES), type_=String)))
    geom_hex = row.op("->>")("geom")
    geometry = func.ST_AsGeoJSON(func.ST_GeomFromEWKB(func.decode(geom_hex, "hex")), GEOJSON_DECIMALS)
    return [props.label("properties"), geometry.label("geometry")]


def _feature(fid: int, props: dict[str, Any], geometry: str | None) -> dict[str, Any]:
    return {"type": "Feature", "id": int(fid), "geometry": json.loads(geometry) if geometry else None,
            "properties": props}


def _collection(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    feats = sorted(features, key=lambda f: f["id"])
    return {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats)}


def _is_gone(op: str, props: dict[str, Any]) -> bool:
    return op in _GONE or props.get("deleted_at") is not None


def states_at(at: datetime, *, layers: Sequence[str]) -> Select[Any]:
    """The state of every feature of ``layers`` at ``at``: its newest history row with ``changed_at <= at``.

    Columns ``layer, feature_id, op, row`` (the row as JSONB); gone features (``op`` delete or purge) included, for
    the caller to keep or drop. The one definition of "as it was at" that :func:`situation_at`, :func:`as_of` and
    :func:`replay_frames` share.
    """
    return (
        select(H.layer, H.feature_id, H.op, H.row)
        .where(H.layer.in_(list(layers)), H.changed_at <= at)
        .ext(distinct_on(H.layer, H.feature_id))
        .order_by(H.layer, H.feature_id, H.changed_at.desc(), H.id.desc())
    )


@contextmanager
def as_of(conn: Connection, at: datetime, *, layers: Sequence[str] = SHADOWED_LAYERS) -> Iterator[Connection]:
    """Inside the block, ``conn`` reads ``layers`` as they were at ``at`` (:func:`states_at`).

    Each layer is rebuilt into a temporary table of the same name (purged rows dropped; soft-deleted rows kept with
    their ``deleted_at``, as in the live table). PostgreSQL searches the session's temporary schema before
    ``public``, so every unchanged query reads the past picture. The tables live in a transaction (a savepoint if
    one is open) that is rolled back on exit: nothing is written, and the connection reads the live tables again
    afterwards.

    Raises
    ------
    ValidationError
        ``at`` naive or not a datetime; a layer that is not a feature layer.
    """
    at = _check_time("at", at)
    names = _check_layers(layers)
    trans = conn.begin_nested() if conn.in_transaction() else conn.begin()
    try:
        for layer in names:  # a name of FEATURE_MODELS (checked above), never free text
            st = states_at(at, layers=[layer]).subquery("h")
            body: Select[Any] = (select(literal_column(f"(jsonb_populate_record(NULL::public.{layer}, h.row)).*"))
                    .select_from(st).where(st.c.op != "purge"))
            sql = body.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {layer} ON COMMIT DROP AS {sql}", sql.params)
        # A statement the connection has prepared (psycopg prepares one run five times) keeps the tables it was
        # planned on: a new temporary table of the same name does not reach it, and the report would read the
        # live tables. A changed search_path makes PostgreSQL parse prepared statements again; naming pg_temp
        # first keeps the order it has anyway. Local to the (sub)transaction: rolled back with the tables.
        conn.exec_driver_sql("SELECT set_config('search_path', 'pg_temp, ' || current_setting('search_path'), true)")
        yield conn
    finally:
        if trans.is_active:
            trans.rollback()


def states_page(at: datetime, *, layer: str, after_id: int, ids: int) -> Select[Any]:
    """:func:`states_at` for the next ``ids`` features of one layer with ``feature_id > after_id``, ordered by id:
    the same rows (the newest with ``changed_at <= at``, then the largest history id), read as a page.

    Columns ``layer, feature_id, op, row``. The feature ids come from a scan of ``ix_feature_history_layer_feature``
    that stops after ``ids`` of them, and each one's state from one backward probe of the same index; the
    ``DISTINCT ON`` of :func:`states_at` would sort every history row of the layer first (3.9 s for a page of a
    million incidents, against 46 ms).
    """
    page = (select(H.feature_id).where(H.layer == layer, H.feature_id > after_id, H.changed_at <= at)
            .distinct().order_by(H.feature_id).limit(ids).cte("page"))
    h = FeatureHistory.__table__.alias("h")
    state = (select(h.c.op, h.c.row)
             .where(h.c.layer == layer, h.c.feature_id == page.c.feature_id, h.c.changed_at <= at)
             .order_by(h.c.changed_at.desc(), h.c.id.desc()).limit(1).lateral("s"))
    return (select(literal(layer, String).label("layer"), page.c.feature_id, state.c.op, state.c.row)
            .select_from(page.join(state, true())).order_by(page.c.feature_id))


def situation_at(db: Db, at: datetime, *, layers: str | Iterable[str] | None = None, limit: int | None = None,
                 after_id: int | None = None) -> dict[str, dict[str, Any]]:
    """The picture as it was at ``at``: per layer, the features that existed then, as they were then.

    Parameters
    ----------
    db : sqlalchemy Connection or Session
    at : datetime
        Timezone-aware instant.
    layers : str or iterable of str, optional
        Feature layers; default :data:`SITUATION_LAYERS`.
    limit : int, optional
        At most this many features per layer (1..:data:`layers.read.queries.MAX_LIMIT`), read page by page
        (:func:`states_page`); default: every feature (a layer of a million incidents is then a million dicts).
    after_id : int, optional
        With ``limit``: only features with ``id > after_id`` (the ``next_after_id`` of the previous page).

    Returns
    -------
    dict
        ``{layer: FeatureCollection}`` in the order asked; features ordered by id, each as
        :func:`layers.read.queries.fetch_features` gives it (``numberReturned`` set; with ``limit`` also
        ``next_after_id``, the cursor of the next page or None on the last).

    Raises
    ------
    ValidationError
        ``at`` naive or not a datetime; unknown layer (lists the known ones); ``limit`` or ``after_id`` out of range.

    Examples
    --------
    >>> situation_at(None, datetime(2026, 1, 1), layers=["incidents"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    layers.store.errors.ValidationError: at: ... a timezone-aware datetime
    """
    at = _check_time("at", at)
    names = _check_layers(layers)
    if limit is not None or after_id is not None:
        return {n: _situation_page(db, at, n, limit, after_id) for n in names}
    st = states_at(at, layers=names).subquery("h")
    last = select(st.c.layer, st.c.feature_id, st.c.op, *_feature_columns(st.c.row))
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for layer, fid, op, props, geometry in db.execute(last):
        if not _is_gone(op, props):
            out[layer].append(_feature(fid, props, geometry))
    return {n: _collection(feats) for n, feats in out.items()}


def _situation_page(db: Db, at: datetime, layer: str, limit: int | None, after_id: int | None) -> dict[str, Any]:
    """One page of :func:`situation_at` for one layer: ``limit`` live features after ``after_id``, gone ones
    skipped (more ids are read while the page is short)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError([RowError(None, "limit", limit, f"an integer in 1..{MAX_LIMIT}")])
    if after_id is not None and (isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0):
        raise ValidationError([RowError(None, "after_id", after_id, "an integer feature id >= 0")])
    cursor, more = after_id or 0, False
    feats: list[dict[str, Any]] = []
    while True:
        st = states_page(at, layer=layer, after_id=cursor, ids=limit + 1).subquery("p")
        rows = db.execute(select(st.c.feature_id, st.c.op, *_feature_columns(st.c.row))).all()
        for fid, op, props, geometry in rows:
            cursor = int(fid)
            if _is_gone(op, props):
                continue
            if len(feats) == limit:
                more = True
                break
            feats.append(_feature(fid, props, geometry))
        if more or len(rows) < limit + 1:
            break
    out = _collection(feats)
    out["next_after_id"] = feats[-1]["id"] if more else None
    return out


def first_record(db: Db, *, layers: str | Iterable[str] | None = None) -> datetime | None:
    """The time of the oldest history row of ``layers`` (default :data:`SITUATION_LAYERS`): before it the store
    holds no record, so a picture of an earlier time would be zeros presented as facts. None: no history at all."""
    names = _check_layers(layers)
    return db.execute(select(func.min(H.changed_at)).where(H.layer.in_(names))).scalar_one()


def _change(r: Any) -> dict[str, Any]:
    return {"history_id": int(r.id), "layer": r.layer, "feature_id": int(r.feature_id), "op": r.op,
            "changed_at": r.changed_at.isoformat(), "changed_by": r.changed_by}


def changes_between(db: Db, t0: datetime, t1: datetime, *, layers: str | Iterable[str] | None = None,
                    limit: int = MAX_CHANGES) -> list[dict[str, Any]]:
    """The history rows with ``t0 < changed_at <= t1``, oldest first (without geometry).

    Parameters
    ----------
    db : sqlalchemy Connection or Session
    t0, t1 : datetime
        Timezone-aware; ``t0 <= t1``.
    layers : str or iterable of str, optional
        Default :data:`SITUATION_LAYERS`.
    limit : int, default :data:`MAX_CHANGES`
        At most this many rows (the oldest).

    Returns
    -------
    list of dict
        ``{"history_id", "layer", "feature_id", "op", "changed_at" (ISO 8601), "changed_by"}``; ``op`` is
        ``insert``, ``update``, ``delete`` (soft) or ``purge``.
    """
    stmt = (select(H.id, H.layer, H.feature_id, H.op, H.changed_at, H.changed_by)
            .where(*_window(t0, t1, layers))
            .order_by(H.changed_at, H.id).limit(max(1, min(int(limit), MAX_CHANGES))))
    return [_change(r) for r in db.execute(stmt)]


def _window(t0: datetime, t1: datetime, layers: str | Iterable[str] | None) -> list[Any]:
    """The history rows of :func:`changes_between` and :func:`change_counts`: ``t0 < changed_at <= t1``."""
    t0, t1 = _check_time("t0", t0), _check_time("t1", t1)
    if t1 < t0:
        raise ValidationError([RowError(None, "t1", t1.isoformat(), f"a time at or after t0 ({t0.isoformat()})")])
    return [H.layer.in_(_check_layers(layers)), H.changed_at > t0, H.changed_at <= t1]


def change_counts(db: Db, t0: datetime, t1: datetime, *, layers: str | Iterable[str] | None = None
                  ) -> dict[str, dict[str, int]]:
    """How many inserts, updates and deletes (soft or purge) :func:`changes_between` holds, per layer.

    Counted in the database (one ``GROUP BY``), so a busy day costs no rows. Default layers: every feature layer.

    Returns
    -------
    dict
        ``{layer: {"insert": n, "update": n, "delete": n}}`` for every layer asked (zeros if untouched).
    """
    names = list(FEATURE_MODELS) if layers is None else _check_layers(layers)
    op = case((H.op == "purge", "delete"), else_=H.op)
    stmt = select(H.layer, op.label("op"), func.count()).where(*_window(t0, t1, names)).group_by(H.layer, op)
    out = {n: {"insert": 0, "update": 0, "delete": 0} for n in names}
    for layer, o, n in db.execute(stmt).all():
        out[str(layer)][str(o)] += int(n)
    return out


def replay_frames(db: Db, start: datetime, end: datetime, *, step: timedelta,
                  layers: str | Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """The picture at ``start``, ``start + step``, ... up to and including ``end``: the frames of a replay.

    The first frame is :func:`situation_at` ``(start)``; each next one applies the history rows of its interval to
    the previous one (one query for the whole range), so a replay of hours costs one scan, not one per frame.

    Parameters
    ----------
    db : sqlalchemy Connection or Session
    start, end : datetime
        Timezone-aware, ``start <= end``.
    step : timedelta
        Positive; at most :data:`MAX_FRAMES` frames in all.
    layers : str or iterable of str, optional
        Default :data:`SITUATION_LAYERS`.

    Yields
    ------
    dict
        ``{"at": datetime, "layers": {layer: FeatureCollection}, "changes": int}`` (``changes``: history rows
        applied since the previous frame).
    """
    start, end = _check_time("start", start), _check_time("end", end)
    if end < start:
        raise ValidationError([RowError(None, "end", end.isoformat(), f"a time at or after start ({start.isoformat()})")])
    if not isinstance(step, timedelta) or step <= timedelta(0):
        raise ValidationError([RowError(None, "step", step, "a positive timedelta")])
    n_frames = (end - start) // step + 1
    if n_frames > MAX_FRAMES:
        raise ValidationError([RowError(None, "step", str(step),
                                        f"a step giving at most {MAX_FRAMES} frames (got {n_frames})")])
    names = _check_layers(layers)
    state = {n: {f["id"]: f for f in fc["features"]} for n, fc in situation_at(db, start, layers=names).items()}
    rows = db.execute(
        select(H.layer, H.feature_id, H.op, H.changed_at, *_feature_columns())
        .where(H.layer.in_(names), H.changed_at > start, H.changed_at <= end)
        .order_by(H.changed_at, H.id)).all()
    i = 0
    for k in range(n_frames):
        at = start + k * step
        applied = 0
        while i < len(rows) and rows[i].changed_at <= at:
            layer, fid, op, _, props, geometry = rows[i]
            if _is_gone(op, props):
                state[layer].pop(int(fid), None)
            else:
                state[layer][int(fid)] = _feature(fid, props, geometry)
            i += 1
            applied += 1
        yield {"at": at, "layers": {n: _collection(state[n].values()) for n in names}, "changes": applied}


def feature_history(db: Db, layer: str, feature_id: int) -> list[dict[str, Any]]:
    """Every recorded state of one feature, oldest first.

    Returns
    -------
    list of dict
        ``{"history_id", "op", "changed_at" (ISO 8601), "changed_by", "feature"}`` where ``feature`` is the GeoJSON
        feature as it was after the change (before it, for a purge). Empty if the feature never existed.

    Raises
    ------
    ValidationError
        Unknown layer, or ``feature_id`` not an integer.
    """
    (name,) = _check_layers([layer])
    if isinstance(feature_id, bool) or not isinstance(feature_id, int):
        raise ValidationError([RowError(None, "id", feature_id, "an integer feature id")])
    stmt = (select(H.id, H.op, H.changed_at, H.changed_by, *_feature_columns())
            .where(H.layer == name, H.feature_id == feature_id).order_by(H.changed_at, H.id))
    return [{"history_id": int(r.id), "op": r.op, "changed_at": r.changed_at.isoformat(), "changed_by": r.changed_by,
             "feature": _feature(feature_id, r.properties, r.geometry)} for r in db.execute(stmt)]


def change_cursor(db: Db) -> tuple[int, int]:
    """``(version, xmin)``: the newest visible history id and the oldest transaction still in progress, read in one
    snapshot. Rows written later, or by a transaction in progress now, satisfy ``id > version or txid >= xmin``:
    pass both to :func:`changes_after` to get everything committed after this cursor."""
    version, xmin = db.execute(select(func.coalesce(func.max(H.id), 0),
                                      func.pg_snapshot_xmin(func.pg_current_snapshot()).cast(String))).one()
    return int(version), int(xmin)


def changes_after(db: Db, version: int, *, xmin: int | None = None, window: int = MAX_CHANGES,
                  limit: int = MAX_CHANGES) -> list[dict[str, Any]]:
    """History rows committed after the cursor ``(version, xmin)`` of :func:`change_cursor`, in id order.

    Rows with ``id > version``, plus rows of transactions that were in progress at the cursor (``txid >= xmin``,
    looked for among the ``window`` ids below ``version``): a transaction that took its ids before the cursor but
    committed after it is not missed. Rows may repeat ones seen before (at least once, never lost).

    Returns
    -------
    list of dict
        As :func:`changes_between`, plus ``"txid"``; at most ``limit`` rows (ask again from the last id for more).
    """
    cond: Any = H.id > int(version)
    if xmin is not None:
        cond = or_(cond, and_(H.id > int(version) - int(window), H.txid >= int(xmin)))
    stmt = (select(H.id, H.layer, H.feature_id, H.op, H.changed_at, H.changed_by, H.txid)
            .where(cond).order_by(H.id).limit(max(1, min(int(limit), MAX_CHANGES))))
    return [{**_change(r), "txid": int(r.txid)} for r in db.execute(stmt)]


def group_changes(changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive history rows of one layer and op folded into ``{"layer", "op", "ids", "version"}`` (version: the
    largest history id of the group), the shape of a live change event.

    >>> group_changes([{"history_id": 5, "layer": "incidents", "op": "insert", "feature_id": 1},
    ...                {"history_id": 6, "layer": "incidents", "op": "insert", "feature_id": 2},
    ...                {"history_id": 7, "layer": "shelters", "op": "update", "feature_id": 1}])
    [{'layer': 'incidents', 'op': 'insert', 'ids': [1, 2], 'version': 6}, {'layer': 'shelters', 'op': 'update', 'ids': [1], 'version': 7}]
    """
    out: list[dict[str, Any]] = []
    for c in changes:
        if out and out[-1]["layer"] == c["layer"] and out[-1]["op"] == c["op"] and len(out[-1]["ids"]) < 500:
            if c["feature_id"] not in out[-1]["ids"]:
                out[-1]["ids"].append(c["feature_id"])
            out[-1]["version"] = max(out[-1]["version"], c["history_id"])
        else:
            out.append({"layer": c["layer"], "op": c["op"], "ids": [c["feature_id"]], "version": c["history_id"]})
    return out
