"""What lies under a click on a map, ready for a popup: each feature's fields with translated vocabularies and local
times.

Public: :data:`DISPLAY_TZ`, :func:`identify`, :func:`field_rows`.

The maps draw vector tiles; a click asks the server what is there (:func:`layers.read.pick.features_near`) rather
than the tiles, so the popup carries every field the layer registry exposes, translated, whatever the tile held (a
cluster at low zoom, a feature whose attributes changed since the tile was drawn).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboards.i18n import t, vocab_label
from layers.read.pick import features_near
from layers.store.registry import layer

__all__ = ["DISPLAY_TZ", "identify", "field_rows"]

#: popups show times in China Standard Time, as the hall reads them
DISPLAY_TZ = "Asia/Shanghai"
#: fields not worth a row of their own (the title shows the name; the link carries the id)
HIDDEN = frozenset({"name", "id", "color"})
#: how far (screen pixels) a click may be from a point symbol, and from a cluster's disc
POINT_TOLERANCE_PX = 9.0
CLUSTER_TOLERANCE_PX = 20.0


def _value(v: Any, vocab_name: str | None, lang: str) -> str | None:
    if v is None or v == "":
        return None
    if vocab_name:
        return vocab_label(vocab_name, str(v), lang)
    if isinstance(v, datetime):
        return v.astimezone(ZoneInfo(DISPLAY_TZ)).strftime("%Y-%m-%d %H:%M")
    if isinstance(v, float):
        return f"{v:,.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else None
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def field_rows(name: str, feature: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    """(label, text) of each field of one feature of layer ``name`` that has a value, in the registry's order; a
    shelter also gets its load (occupancy / capacity).

    >>> field_rows("shelters", {"kind": "fixed", "status": "open", "capacity": 200, "occupancy": 50}, "en")[-1]
    ('Load', '25%')
    """
    d = layer(name)
    rows = []
    for a in d.all_attributes:
        if a in HIDDEN:
            continue
        text = _value(feature.get(a), d.vocab_of(a), lang)
        if text is not None:
            rows.append((t(f"map.field.{a}", lang), text))
    if name == "shelters" and feature.get("capacity"):
        share = float(feature.get("occupancy") or 0) / float(feature["capacity"])
        rows.append((t("map.field.load", lang), f"{100 * share:.0f}%"))
    return rows


def identify(db: Any, lon: float, lat: float, *, zoom: float,
             overlays: Sequence[tuple[str, str, tuple[str, Sequence[str]] | None]], lang: str,
             limit: int = 5) -> list[dict[str, Any]]:
    """Features under a click, per overlay shown.

    Parameters
    ----------
    db : Connection or Session
    lon, lat : float
        The click, degrees.
    zoom : float
        The map's zoom.
    overlays : sequence of (key, layer, where)
        The overlays shown, topmost first: a key, a registry layer and an optional ``(attribute, values)`` filter.
    lang : str
    limit : int
        Features listed per overlay.

    Returns
    -------
    list of dict
        Per overlay with something under the click: ``overlay``, ``layer``, ``total`` (features under the click),
        ``features``: ``id``, ``title`` (name, else the kind's label), ``rows`` (:func:`field_rows`).
    """
    out = []
    for key, name, where in overlays:
        d = layer(name)
        below = d.cluster_below
        tol = CLUSTER_TOLERANCE_PX if below is not None and zoom < below else POINT_TOLERANCE_PX
        feats, total = features_near(db, name, lon, lat, zoom=zoom, tolerance_px=tol if d.geometry_type == "POINT"
                                     else 3.0, where=where, limit=limit)
        if not feats:
            continue
        items = []
        for f in feats:
            kind = f.get("kind")
            title = f.get("name") or (vocab_label(d.kind_vocab, kind, lang) if d.kind_vocab and kind else None) \
                or f"#{f['id']}"
            items.append({"id": int(f["id"]), "title": str(title), "rows": field_rows(name, f, lang)})
        out.append({"overlay": key, "layer": name, "total": total, "features": items})
    return out
