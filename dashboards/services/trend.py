"""The leader's trend: incidents per day and prefecture over the last days.

Public: :data:`TREND_DAYS`, :func:`incident_trend`.

The incidents of the window come from one statement (:func:`layers.read.situation.incident_days`: lon, lat and day
as columns) and go to prefectures by the one point -> region rule (:func:`geoops.regions.assign_points`), the rule
of the impact card and the situation report. No risk history is stored yet, so the trend is of incidents.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from geoops.regions import assign_points
from layers.read import analysis as store
from layers.read import situation

__all__ = ["TREND_DAYS", "incident_trend"]

TREND_DAYS = 7
_lock = threading.Lock()
_cache: dict[Any, dict[str, Any]] = {}


def incident_trend(conn: Any, *, days: int = TREND_DAYS, now: datetime | None = None) -> dict[str, Any]:
    """Incidents per day (UTC) and prefecture over the last ``days`` days (the last day is today, partial).

    Cached per database, data version (:func:`layers.read.situation.data_version`), ``days`` and day.

    Returns
    -------
    dict
        ``{"days": [date, ...], "counts": {adcode: [n per day]}, "names": {adcode: {name, name_en}},
        "outside": [n per day]}``: prefectures with at least one incident, and the incidents in no loaded
        prefecture. Every incident of the window is counted once.
    """
    when = (now or datetime.now(UTC)).astimezone(UTC)
    key = (str(conn.engine.url), situation.data_version(conn), days, when.date())
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    start = datetime(when.year, when.month, when.day, tzinfo=UTC) - timedelta(days=days - 1)
    lon, lat, day = situation.incident_days(conn, start=start, days=days)
    prefs = (store.regions_of_level(conn, level="prefecture", geometry=True, within=(
        float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))) if lon.size else [])
    where = assign_points(lon, lat, [p["geometry"] for p in prefs], outside="none")
    per_day = [np.bincount(day[where == j], minlength=days).tolist() for j in range(len(prefs))]
    out = {"days": [(start + timedelta(days=i)).date() for i in range(days)],
           "counts": {p["adcode"]: n for p, n in zip(prefs, per_day, strict=True) if sum(n)},
           "names": {p["adcode"]: {"name": p["name"], "name_en": p["name_en"]} for p in prefs},
           "outside": np.bincount(day[where < 0], minlength=days).tolist()}
    with _lock:
        if len(_cache) > 8:
            _cache.clear()
        _cache[key] = out
    return out
