"""Live push in a page: a ``dcc.Store`` that holds the latest committed changes, fed by server-sent events.

Public: :func:`live_source`, :func:`live_id`, :func:`needs_refetch`, :func:`changed_ids`.

Drop ``live_source("wall")`` into a layout and react to ``Input(live_id("wall"), "data")``; the browser part is
``dashboards/assets/live.js`` (one EventSource per store on ``/api/v1/events``, resumed after reconnects, reopened
after errors; no Dash callback to register, so the piece works in any page and any app). The store's data::

    {"seq": int, "full": bool, "changes": [{"layer", "op", "ids", "version"}], "layers": [...],
     "version": int | None, "cursor": str | None, "connected": bool, "db": bool | None, "t": ms since epoch}

``full`` means "refetch everything" (first connect, a resync, or the database is back); otherwise fetch only what
``changes`` names. ``connected`` False means the server cannot be reached (show a "connection lost" banner; the
stream comes back by itself). Example::

    @callback(Output(...), Input(live_id("wall"), "data"))
    def on_change(live):
        if not needs_refetch(live, {"incidents", "hazards"}):
            raise PreventUpdate
        ...
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from dash import dcc, html

from dashboards.components import data_attributes
from dashboards.context import API_PREFIX


def live_id(name: str) -> str:
    """The id of the store of :func:`live_source` ``(name)``.

    >>> live_id("wall")
    'sr-live-wall'
    """
    return f"sr-live-{name}"


def live_source(name: str, *, layers: Iterable[str] | None = None) -> html.Div:
    """The store ``live_id(name)`` and the (hidden) element that tells ``live.js`` to open a stream for it.

    Parameters
    ----------
    name : str
        Unique in the page, e.g. the page's name.
    layers : iterable of str, optional
        Only changes of these layers (default every layer).
    """
    url = f"{API_PREFIX}/events"
    names = list(layers or [])
    if names:
        url += "?layers=" + ",".join(names)
    cfg = {"store": live_id(name), "url": url}
    return html.Div([
        dcc.Store(id=live_id(name), data=None),
        html.Div(id=f"{live_id(name)}-cfg", hidden=True, **data_attributes({"sitroom-live": json.dumps(cfg)})),
    ], className="sr-live")


def needs_refetch(data: dict[str, Any] | None, layers: Iterable[str] | None = None) -> bool:
    """True when the store's latest update asks for a full refetch or touches one of ``layers`` (any, if None).

    >>> needs_refetch({"full": False, "layers": ["shelters"]}, {"incidents"})
    False
    >>> needs_refetch({"full": False, "layers": ["incidents"]}, {"incidents"}), needs_refetch({"full": True})
    (True, True)
    """
    if not data:
        return False
    if data.get("full"):
        return True
    touched = set(data.get("layers") or [])
    return bool(touched) if layers is None else bool(touched & set(layers))


def changed_ids(data: dict[str, Any] | None, layer: str) -> dict[str, set[int]]:
    """``{op: ids}`` of one layer in the store's latest update (empty when it is a full refetch).

    >>> changed_ids({"changes": [{"layer": "incidents", "op": "insert", "ids": [3]},
    ...                          {"layer": "incidents", "op": "update", "ids": [1, 2]}]}, "incidents")
    {'insert': {3}, 'update': {1, 2}}
    """
    out: dict[str, set[int]] = {}
    for c in (data or {}).get("changes") or []:
        if c.get("layer") == layer:
            out.setdefault(c["op"], set()).update(int(i) for i in c.get("ids") or [])
    return out


__all__ = ["live_source", "live_id", "needs_refetch", "changed_ids"]
