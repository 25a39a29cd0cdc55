"""Data anomalies (数据异常) and the state of each station: stale stations, flagged readings, the wall's counts.

Public: :data:`ANOMALY_WINDOW`, :func:`station_states`, :func:`flagged`, :func:`summary`.

* a station is **stale** when its newest reading at ``now`` is older than :data:`~layers.monitor.warnings.STALE_INTERVALS`
  reporting intervals (or it has none in the last week); a station in maintenance or retired is not expected to
  report and is neither stale nor counted;
* a **flagged** reading is one whose quality is not ``good`` (out of range, spike, flatline: see
  :mod:`layers.monitor.quality`); flagged readings never trigger a warning;
* the wall shows "stations reporting n/N, anomalies k": N the active stations, n those not stale, k the stale
  stations plus the readings flagged in the last :data:`ANOMALY_WINDOW`.

Everything takes ``now``: the same functions draw the live picture and a replay.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from layers.monitor.observations import latest
from layers.monitor.warnings import STALE_INTERVALS
from layers.store.db import connection_of
from layers.store.models import Observation, Station

__all__ = ["ANOMALY_WINDOW", "station_states", "flagged", "summary"]

#: flagged readings of this period are the anomalies the wall counts and the monitor page lists
ANOMALY_WINDOW: Final = timedelta(hours=24)


def station_states(conn: Session | Connection, *, now: datetime) -> list[dict[str, Any]]:
    """Every live station at ``now``: ``id, code, name, kind, status, interval_s, adcode, lon, lat, stages,
    last_at, stale, latest`` (``latest``: variable -> ``{value, unit, observed_at, quality}``), by code."""
    c = connection_of(conn)
    rows = c.execute(select(Station.id, Station.code, Station.name, Station.kind, Station.status, Station.interval_s,
                            Station.adcode, func.ST_X(Station.geom), func.ST_Y(Station.geom),
                            Station.warning_stage_m, Station.guarantee_stage_m, Station.record_stage_m)
                     .where(Station.deleted_at.is_(None)).order_by(Station.code)).all()
    values = latest(c, at=now)
    by_station: dict[int, dict[str, Any]] = {}
    for v in values.to_dict("records"):
        by_station.setdefault(int(v["station_id"]), {})[str(v["variable"])] = {
            "value": float(v["value"]), "unit": v["unit"], "observed_at": v["observed_at"], "quality": v["quality"]}
    out = []
    for r in rows:
        mine = by_station.get(int(r[0]), {})
        last = max((v["observed_at"] for v in mine.values()), default=None)
        expected = r[4] == "active"
        stale = expected and (last is None or (now - last).total_seconds() > STALE_INTERVALS * int(r[5]))
        out.append({"id": int(r[0]), "code": r[1], "name": r[2], "kind": r[3], "status": r[4],
                    "interval_s": int(r[5]), "adcode": r[6], "lon": float(r[7]), "lat": float(r[8]),
                    "stages": {"warning_stage_m": r[9], "guarantee_stage_m": r[10], "record_stage_m": r[11]},
                    "last_at": last, "stale": bool(stale), "latest": mine})
    return out


def flagged(conn: Session | Connection, *, now: datetime, window: timedelta = ANOMALY_WINDOW,
            limit: int = 200) -> list[dict[str, Any]]:
    """Readings flagged in ``(now - window, now]``, newest first: ``station, name, variable, value, unit,
    observed_at, quality, id`` (at most ``limit``; the partial index on flagged readings makes this cheap)."""
    stmt = (select(Station.code, Station.name, Observation.variable, Observation.value, Observation.unit,
                   Observation.observed_at, Observation.quality, Observation.id)
            .join(Station, Station.id == Observation.station_id)
            .where(Observation.quality != "good", Observation.observed_at > now - window,
                   Observation.observed_at <= now)
            .order_by(Observation.observed_at.desc(), Station.code).limit(int(limit)))
    return [{"station": r[0], "name": r[1], "variable": r[2], "value": float(r[3]), "unit": r[4],
             "observed_at": r[5], "quality": r[6], "id": int(r[7])} for r in connection_of(conn).execute(stmt)]


def summary(conn: Session | Connection, *, now: datetime, states: list[dict[str, Any]] | None = None) \
        -> dict[str, Any]:
    """The wall's counts: ``{"stations": N, "reporting": n, "stale": [codes], "flagged": m, "anomalies": k}``."""
    st = states if states is not None else station_states(conn, now=now)
    active = [s for s in st if s["status"] == "active"]
    stale = [s["code"] for s in active if s["stale"]]
    c = connection_of(conn)
    n_flagged = int(c.execute(select(func.count()).select_from(Observation).where(
        Observation.quality != "good", Observation.observed_at > now - ANOMALY_WINDOW,
        Observation.observed_at <= now)).scalar_one())
    return {"stations": len(active), "reporting": len(active) - len(stale), "stale": stale, "flagged": n_flagged,
            "anomalies": len(stale) + n_flagged}
