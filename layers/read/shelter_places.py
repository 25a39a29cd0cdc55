"""The one rule of shelter places: what is free, what is closed but could open, what is full.

Public: :data:`OPEN`, :data:`CLOSED`, :func:`free_places`, :func:`could_open`, :func:`free_sql`,
:func:`could_open_sql`.

**Free places** are ``max(0, capacity - occupancy)`` of shelters whose status is ``open``, and 0 for every other
status: a closed shelter takes nobody in until someone opens it, and a full one has said it takes nobody in. The
places of closed shelters are counted apart, as **closed, could open** (``max(0, capacity - occupancy)`` of
``closed`` shelters), so that no figure people act on adds them to the free places. Every figure of free places (the
impact card, the wall's KPI, the situation report, the coverage's supply, the API) is computed by one of the two
forms here: :func:`free_places` for a row in Python, :func:`free_sql` for a query.

Examples
--------
>>> free_places("open", 100, 30), free_places("closed", 100, 0), free_places("full", 100, 90)
(70, 0, 0)
>>> could_open("closed", 500, 0), could_open("open", 500, 0)
(500, 0)
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import case, func

OPEN: Final = "open"
CLOSED: Final = "closed"

__all__ = ["OPEN", "CLOSED", "free_places", "could_open", "free_sql", "could_open_sql"]


def _spare(capacity: Any, occupancy: Any) -> int:
    return max(0, int(capacity or 0) - int(occupancy or 0))


def free_places(status: str | None, capacity: Any, occupancy: Any) -> int:
    """Free places of one shelter: its spare places if it is open, else 0."""
    return _spare(capacity, occupancy) if status == OPEN else 0


def could_open(status: str | None, capacity: Any, occupancy: Any) -> int:
    """Places a closed shelter would offer if it were opened (0 for any other status)."""
    return _spare(capacity, occupancy) if status == CLOSED else 0


def free_sql(model: Any) -> Any:
    """SQL expression of :func:`free_places` over a shelter table or model (``status, capacity, occupancy``)."""
    return case((model.status == OPEN, func.greatest(model.capacity - model.occupancy, 0)), else_=0)


def could_open_sql(model: Any) -> Any:
    """SQL expression of :func:`could_open`."""
    return case((model.status == CLOSED, func.greatest(model.capacity - model.occupancy, 0)), else_=0)
