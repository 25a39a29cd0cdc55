"""Read queries on the feature layers: what the HTTP API and the pages fetch from PostGIS.

Public: :data:`KIND_VOCAB`, :data:`STATUS_VOCAB`, :func:`layer_names`, :func:`geometry_type`, :func:`check_bbox`,
:func:`count_features`, :func:`properties_object`, :func:`geojson_geometry`, :func:`fetch_features`,
:func:`database_status`.

Every query is a SQLAlchemy 2 ``select()``; filtering (bbox, kind, status, soft delete) runs in PostGIS and geometries
leave the database as GeoJSON (``ST_AsGeoJSON``). Results are plain JSON-ready dicts: datetimes as ISO 8601 strings.
Bad arguments raise :class:`layers.store.errors.ValidationError` (field, value, allowed); an unknown layer raises
:class:`layers.store.errors.NotFoundError` naming the known layers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, literal, select, union_all

from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import FEATURE_MODELS, table_of
from layers.store.registry import LAYERS
from layers.store.vocab import VOCABULARIES

#: layer -> vocabulary of its ``kind`` / ``status`` column, from the layer registry (layers without one accept any)
KIND_VOCAB: dict[str, str] = {n: d.kind_vocab for n, d in LAYERS.items() if d.kind_vocab}
STATUS_VOCAB: dict[str, str] = {n: d.status_vocab for n, d in LAYERS.items() if d.status_vocab}

#: columns that are not feature properties (``geom`` is the geometry, ``properties`` is merged, ``deleted_at``
#: is always null for live features)
_NOT_PROPERTIES = frozenset({"id", "geom", "properties", "deleted_at"})
MAX_LIMIT = 10_000
GEOJSON_DECIMALS = 7  # 1e-7 degree is about 1 cm


def layer_names() -> tuple[str, ...]:
    """The feature layers, in registry order.

    >>> layer_names()[:3]
    ('hazards', 'incidents', 'shelters')
    """
    return tuple(FEATURE_MODELS)


def geometry_type(layer: str) -> str:
    """The geometry type a layer stores (``POINT``, ``MULTIPOLYGON`` or ``GEOMETRY`` for any).

    >>> geometry_type("shelters")
    'POINT'
    """
    return _model(layer).GEOM_TYPE


def _model(layer: str) -> Any:
    try:
        return FEATURE_MODELS[layer]
    except (KeyError, TypeError):
        raise NotFoundError(f"unknown layer {layer!r}; known layers: {', '.join(FEATURE_MODELS)}") from None


def _table(layer: str) -> Table:
    return table_of(_model(layer))


def count_features(conn: Connection, layers: Iterable[str] | None = None) -> dict[str, int]:
    """Number of live (not soft-deleted) features per layer, in one round trip.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        An open connection.
    layers : iterable of str, optional
        Layer names; default all feature layers.

    Returns
    -------
    dict
        ``{layer: count}`` in the order asked.

    Raises
    ------
    NotFoundError
        A layer name that does not exist.
    """
    names = list(layers) if layers is not None else list(FEATURE_MODELS)
    if not names:
        return {}
    parts = [
        select(literal(name).label("layer"), func.count().label("n"))
        .select_from(t)
        .where(t.c.deleted_at.is_(None))
        for name, t in ((n, _table(n)) for n in names)
    ]
    rows = dict(conn.execute(union_all(*parts)).all())
    return {name: int(rows.get(name, 0)) for name in names}


def _as_list(field: str, value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValidationError([RowError(None, field, value, "one or more non-empty strings")])
    return values


def _check_vocab(field: str, values: list[str] | None, vocab: str | None) -> None:
    if values is None or vocab is None:
        return
    allowed = VOCABULARIES[vocab]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValidationError([RowError(None, field, bad[0] if len(bad) == 1 else bad,
                                        "one of " + ", ".join(allowed))])


def check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """Check a bounding box ``(west, south, east, north)`` in degrees (EPSG:4326) and return it as floats.

    Raises
    ------
    ValidationError
        Not four finite numbers, outside [-180, 180] x [-90, 90], or west >= east / south >= north.

    Examples
    --------
    >>> check_bbox([111, 40, 112.5, 41])
    (111.0, 40.0, 112.5, 41.0)
    >>> check_bbox([112, 40, 111, 41])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    layers.store.errors.ValidationError: ...field 'bbox': got [112, 40, 111, 41]; allowed: west,south,east,north ...
    """
    allowed = ("west,south,east,north in degrees (EPSG:4326), -180<=west<east<=180, -90<=south<north<=90")
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValidationError([RowError(None, "bbox", bbox, allowed)]) from None
    if not all(math.isfinite(v) for v in (w, s, e, n)) or not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValidationError([RowError(None, "bbox", bbox, allowed)])
    return w, s, e, n


def properties_object(t: Table, names: Sequence[str]) -> Any:
    """``jsonb_build_object(name, column, ...)`` of the named columns of ``t``: a feature's properties, built in
    PostGIS (timestamps as ISO 8601 text with their offset)."""
    pairs: list[Any] = []
    for name in names:
        pairs += [literal(name), t.c[name]]
    return func.jsonb_build_object(*pairs)


def geojson_geometry(geom: Any, *, srid: int = 4326, lat_first: bool = False,
                     decimals: int = GEOJSON_DECIMALS) -> Any:
    """``ST_AsGeoJSON`` of a stored (EPSG:4326) geometry, labelled ``geometry``: transformed to ``srid``, and with
    its axes swapped when that CRS puts latitude first (EPSG:4326 and EPSG:4490 as OGC API - Features Part 2 wants
    them; GeoJSON's own order is longitude first)."""
    g = geom if srid == 4326 else func.ST_Transform(geom, srid)
    if lat_first:
        g = func.ST_FlipCoordinates(g)
    return func.ST_AsGeoJSON(g, decimals, 0).label("geometry")  # options 0: no "crs" member (GeoJSON has none)


def fetch_features(
    conn: Connection,
    layer: str,
    *,
    bbox: Sequence[float] | None = None,
    kind: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = None,
    limit: int,
    offset: int = 0,
    after_id: int | None = None,
) -> dict[str, Any]:
    """Live features of one layer as a GeoJSON FeatureCollection (EPSG:4326), ordered by id.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        An open connection.
    layer : str
        A feature layer (see :func:`layer_names`).
    bbox : sequence of 4 floats, optional
        ``west, south, east, north`` in degrees; features whose geometry intersects it.
    kind, status : str or sequence of str, optional
        Keep features whose ``kind`` / ``status`` is one of these (checked against the layer's vocabulary).
    limit : int
        At most this many features, 1..10000.
    offset : int, default 0
        Skip this many features (page by offset).
    after_id : int, optional
        Only features with ``id > after_id`` (page by cursor: pass the last id of the previous page).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...], "numberReturned": n, "next_after_id": id or None}``.
        Each feature has ``id``, ``geometry`` and ``properties``: the layer's real columns merged over its
        ``properties`` JSONB (a real column wins over a JSON key of the same name). ``next_after_id`` is the
        cursor for the next page, or None on the last page.

    Raises
    ------
    NotFoundError
        Unknown layer.
    ValidationError
        Bad bbox, kind, status, limit, offset or after_id (field, value, allowed).
    """
    t = _table(layer)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError([RowError(None, "limit", limit, f"an integer in 1..{MAX_LIMIT}")])
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError([RowError(None, "offset", offset, "an integer >= 0")])
    if after_id is not None and (isinstance(after_id, bool) or not isinstance(after_id, int)):
        raise ValidationError([RowError(None, "after_id", after_id, "an integer feature id")])
    kinds = _as_list("kind", kind)
    statuses = _as_list("status", status)
    _check_vocab("kind", kinds, KIND_VOCAB.get(layer))
    _check_vocab("status", statuses, STATUS_VOCAB.get(layer))

    # properties are built in PostGIS (JSONB, real columns over the JSON ones; timestamps as ISO 8601 text):
    # about 3x faster than converting row by row in Python
    props = t.c.properties.op("||")(properties_object(t, [c.name for c in t.columns if c.name not in _NOT_PROPERTIES]))
    stmt = (
        select(t.c.id, props.label("properties"), geojson_geometry(t.c.geom))
        .where(t.c.deleted_at.is_(None))
        .order_by(t.c.id)
        .limit(limit + 1)  # one more tells whether there is a next page
    )
    if bbox is not None:
        w, s, e, n = check_bbox(bbox)
        stmt = stmt.where(func.ST_Intersects(t.c.geom, func.ST_MakeEnvelope(w, s, e, n, 4326)))
    if kinds is not None:
        stmt = stmt.where(t.c.kind.in_(kinds))
    if statuses is not None:
        stmt = stmt.where(t.c.status.in_(statuses))
    if after_id is not None:
        stmt = stmt.where(t.c.id > after_id)
    if offset:
        stmt = stmt.offset(offset)

    rows = conn.execute(stmt).all()
    more = len(rows) > limit
    features = [{"type": "Feature", "id": fid, "geometry": json.loads(geometry), "properties": props}
                for fid, props, geometry in rows[:limit]]
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "next_after_id": features[-1]["id"] if more and features else None,
    }


def database_status(conn: Connection) -> dict[str, Any]:
    """What the health check reports: the schema revision (Alembic) and the PostGIS version.

    Returns
    -------
    dict
        ``{"schema_revision": "0002" or None, "postgis": "3.3.2"}``.
    """
    from sqlalchemy import column, table

    version_table = table("alembic_version", column("version_num"))
    revision = conn.execute(select(version_table.c.version_num).limit(1)).scalar_one_or_none()
    postgis = conn.execute(select(func.postgis_lib_version())).scalar_one()
    return {"schema_revision": revision, "postgis": postgis}
