"""Fixtures of the monitoring tests: stations in the rolled-back session, readings made from plain lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from layers.store.models import Station

#: a fixed clock: every test runs on it, never on the wall clock
T0 = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)


def add_station(session: Session, code: str, *, lon: float = 109.84, lat: float = 40.65, kind: str = "weather",
                interval_s: int = 3600, name: str | None = None, **stages: float) -> int:
    """A live station (committed only to the test's transaction); returns its id."""
    return int(session.execute(insert(Station).values(
        source="pytest", external_id=code, code=code, name=name or f"测试站{code}", kind=kind, status="active",
        interval_s=interval_s, geom=f"SRID=4326;POINT({lon} {lat})", **stages).returning(Station.id)).scalar_one())


def readings(station: str, variable: str, unit: str, values: Iterable[float | None], *, start: datetime = T0,
             step: timedelta = timedelta(hours=1), period_s: int | None = None) -> list[dict[str, Any]]:
    """One reading per value (None skips a slot), ``step`` apart from ``start``."""
    out = []
    for k, v in enumerate(values):
        if v is None:
            continue
        r: dict[str, Any] = {"station": station, "variable": variable, "value": v, "unit": unit,
                             "observed_at": (start + k * step).isoformat()}
        if period_s is not None:
            r["period_s"] = period_s
        out.append(r)
    return out


@pytest.fixture
def station(session: Session) -> Callable[..., int]:
    """``station(code, **kw)`` -> id: see :func:`add_station`."""
    return lambda code, **kw: add_station(session, code, **kw)
