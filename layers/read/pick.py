"""What lies under a click on a map: the live features of a layer near a point, as the layer registry exposes them.

Public: :func:`features_near`, :func:`pixel_degrees`.

A map click is a point plus a tolerance in screen pixels (a symbol is drawn some pixels wide); at Web-Mercator zoom
``z`` a pixel spans ``360 / (256 * 2**z)`` degrees of longitude and that times ``cos(lat)`` of latitude, so the
tolerance becomes a small box around the point. Point features are those inside the box, nearest first; lines and
areas those that meet it, smallest area first (a zone drawn inside a hazard is what the user aimed at).

>>> [round(v, 6) for v in pixel_degrees(10, 40.0)]
[0.001373, 0.001052]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from layers.store.registry import layer

__all__ = ["features_near", "pixel_degrees"]

MAX_LIMIT = 50


def pixel_degrees(zoom: float, lat: float) -> tuple[float, float]:
    """(degrees of longitude, degrees of latitude) one 256-px-tile pixel spans at ``zoom`` and latitude ``lat``."""
    dlon = 360.0 / (256.0 * 2.0 ** float(zoom))
    return dlon, dlon * math.cos(math.radians(max(-85.0, min(85.0, float(lat)))))


def features_near(db: Connection | Session, name: str, lon: float, lat: float, *, zoom: float,
                  tolerance_px: float = 8.0, where: tuple[str, Sequence[str]] | None = None,
                  limit: int = 5) -> tuple[list[dict[str, Any]], int]:
    """Live features of layer ``name`` under a click at (``lon``, ``lat``) on a map at ``zoom``.

    Parameters
    ----------
    name : str
        A layer of :data:`layers.store.registry.LAYERS`.
    lon, lat : float
        The click, degrees (EPSG:4326).
    zoom : float
        The map's zoom, 0..22.
    tolerance_px : float, default 8
        How far from the point a feature may be, in screen pixels (0..64).
    where : (attribute, values), optional
        Only features whose attribute (one of the registry's) is one of ``values``.
    limit : int, default 5
        At most this many features (1..50).

    Returns
    -------
    (features, total)
        ``features``: dicts of the registry's attributes (``id`` first; times as aware datetimes) plus
        ``geometry_type``; ``total``: how many features lie under the click (at most 1000 counted).

    Raises
    ------
    KeyError
        Unknown layer. ``ValueError``: an out-of-range argument or an attribute the layer does not expose.
    """
    d = layer(name)
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"lon, lat must be degrees in [-180, 180] x [-90, 90], got ({lon!r}, {lat!r})")
    if not (isinstance(zoom, (int, float)) and 0 <= zoom <= 22):
        raise ValueError(f"zoom must be in 0..22, got {zoom!r}")
    if not 0 <= tolerance_px <= 64:
        raise ValueError(f"tolerance_px must be in 0..64, got {tolerance_px!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be in 1..{MAX_LIMIT}, got {limit!r}")
    t = d.model.__table__  # type: ignore[attr-defined]
    dlon, dlat = pixel_degrees(zoom, lat)
    box = func.ST_MakeEnvelope(lon - tolerance_px * dlon, lat - tolerance_px * dlat, lon + tolerance_px * dlon,
                               lat + tolerance_px * dlat, 4326)
    conds = [t.c.deleted_at.is_(None), t.c.geom.op("&&")(box)]
    if d.geometry_type != "POINT":
        conds.append(func.ST_Intersects(t.c.geom, box))
    if where is not None:
        attr, values = where
        if attr not in d.all_attributes:
            raise ValueError(f"{name} has no attribute {attr!r}; it exposes {', '.join(d.all_attributes)}")
        conds.append(t.c[attr].in_(list(values)))
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    order = (t.c.geom.op("<->")(point) if d.geometry_type == "POINT"
             else func.ST_Area(func.ST_Envelope(t.c.geom)))
    cols = [t.c[a] for a in d.all_attributes]
    rows = db.execute(select(*cols, func.GeometryType(t.c.geom).label("geometry_type")).where(*conds)
                      .order_by(order, t.c.id).limit(limit)).mappings().all()
    counted = select(t.c.id).where(*conds).limit(1000).subquery()
    total = int(db.execute(select(func.count()).select_from(counted)).scalar_one())
    return [dict(r) for r in rows], total
