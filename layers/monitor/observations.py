"""The observation store: readings checked, quality-flagged and written in bulk into the partitioned ``observations``
table; series and latest readings read back.

Public: :data:`MAX_ROWS`, :data:`FIELDS`, :data:`FUTURE_TOLERANCE_S`, :data:`EARLIEST`, :class:`Batch`,
:class:`WriteCounts`, :func:`records_frame`, :func:`csv_frame`, :func:`validate`, :func:`assess_quality`,
:func:`ensure_partitions`, :func:`write`, :func:`series`, :func:`latest`, :func:`stations_by_code`.

Input is a JSON array of ``{"station", "variable", "value", "unit", "observed_at", "period_s"}`` or CSV with the same
columns. :func:`validate` checks every row at once (columnar, no ORM object per row) and raises one
:class:`~layers.store.errors.ValidationError` naming each bad row by its 0-based index and field, the value received
and what is allowed: unknown stations, unknown variables, wrong units, values that are not numbers, times that are
not times or lie in the future, missing accumulation periods, and two different values for the same reading.
Nothing is written then.

:func:`write` COPYs the rows into a temporary staging table and merges them with one ``INSERT ... SELECT ... ON
CONFLICT (station_id, variable, observed_at) DO NOTHING``: a reading sent twice (or by two feeds at once) is stored
once, and the first value stays. The monthly partitions the rows need are made first
(:func:`ensure_partitions`; an advisory lock makes two concurrent ingests make a month once).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from numpy.typing import NDArray
from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import BigInteger

from geoops.wgs84 import GEOD
from layers.monitor import quality
from layers.monitor.variables import VARIABLES, canonical_unit, upper_bound
from layers.store.db import connection_of, driver_connection
from layers.store.errors import RowError, ValidationError
from layers.store.models import Observation, Station

__all__ = ["MAX_ROWS", "FIELDS", "FUTURE_TOLERANCE_S", "EARLIEST", "LOCAL_TZ", "NEIGHBOUR_KM", "Batch",
           "WriteCounts", "records_frame", "csv_frame", "validate", "assess_quality", "ensure_partitions", "write",
           "series", "latest", "stations_by_code", "neighbours", "fetch_rows"]

#: most readings one request or file may carry
MAX_ROWS: Final = 100_000
#: the columns of a reading (``period_s`` may be left out where it does not apply)
FIELDS: Final = ("station", "variable", "value", "unit", "observed_at", "period_s")
#: a reading this far ahead of the server's clock is refused (a station whose clock runs ahead)
FUTURE_TOLERANCE_S: Final = 600
#: readings before this are refused (each month of readings gets a partition: a typo must not make one for 1900)
EARLIEST: Final = datetime(1990, 1, 1, tzinfo=UTC)
#: times without a zone are Beijing time, as in every import (China has kept UTC+8 all year since 1991)
LOCAL_TZ: Final = "Asia/Shanghai"
_BEIJING: Final = ZoneInfo(LOCAL_TZ)
#: stations this close (geodesic) are a reading's neighbours in the spike test
NEIGHBOUR_KM: Final = 75.0
#: neighbours' readings this close in time to a reading are compared with it
NEIGHBOUR_WINDOW_S: Final = 1800
#: most stored readings of a series read before a batch, for the spike and flatline tests
CONTEXT_ROWS: Final = 96


@dataclass
class Batch:
    """Valid readings, one array per column, in input order; ``rows`` are the input indexes."""

    rows: NDArray[np.int64]
    station_id: NDArray[np.int64]
    station: NDArray[np.object_]
    variable: NDArray[np.object_]
    value: NDArray[np.float64]
    unit: NDArray[np.object_]
    period_s: NDArray[np.float64]
    t: NDArray[np.int64]  # epoch seconds (readings are kept to the second)
    quality: NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def months(self) -> list[datetime]:
        """The first day (UTC) of every month the readings fall in."""
        if len(self.t) == 0:
            return []
        ts = pd.to_datetime(pd.Series(np.unique(self.t // 86400) * 86400), unit="s", utc=True)
        return sorted({datetime(d.year, d.month, 1, tzinfo=UTC) for d in ts})


@dataclass(frozen=True)
class WriteCounts:
    """What :func:`write` did: readings inserted, already stored (left as they were), and the ``(station_id,
    variable) -> newest time inserted`` of the series that received readings."""

    inserted: int
    duplicates: int
    touched: dict[tuple[int, str], datetime]


# --- input ----------------------------------------------------------------------------------------------------------


def _too_many(n: int, file: str | None) -> ValidationError:
    return ValidationError([RowError(None, "rows", f"{n} readings", f"at most {MAX_ROWS} per request or file",
                                     file)], message="too many readings; nothing was written")


def records_frame(records: Any, *, file: str | None = "request body") -> pd.DataFrame:
    """A JSON array of reading objects as a frame of raw values (object columns :data:`FIELDS`).

    Raises
    ------
    ValidationError
        not an array, more than :data:`MAX_ROWS` items, an item that is not an object, or unknown members.
    """
    if not isinstance(records, list):
        raise ValidationError([RowError(None, "body", type(records).__name__, "a JSON array of readings {"
                                        + ", ".join(FIELDS) + "}", file)], message="not readings; nothing was written")
    if len(records) > MAX_ROWS:
        raise _too_many(len(records), file)
    problems: list[RowError] = []
    allowed = set(FIELDS)
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            problems.append(RowError(i, None, r if not isinstance(r, (list, dict)) else type(r).__name__,
                                     "an object {" + ", ".join(FIELDS) + "}", file))
            continue
        for k in r:
            if k not in allowed:
                problems.append(RowError(i, str(k), r[k], "members among " + ", ".join(FIELDS), file))
    if problems:
        raise ValidationError(problems, message=f"{len({p.row for p in problems})} of {len(records)} readings "
                                                "invalid (row = index in the array); nothing was written")
    cols = {f: [r.get(f) for r in records] for f in FIELDS}
    return pd.DataFrame({f: pd.Series(v, dtype=object) for f, v in cols.items()}, index=pd.RangeIndex(len(records)))


def csv_frame(data: bytes | str, *, file: str | None = None) -> pd.DataFrame:
    """CSV text (UTF-8, header row with the columns of :data:`FIELDS`; ``period_s`` optional) as a frame of raw text.

    Raises
    ------
    ValidationError
        unreadable CSV, missing or unknown columns, more than :data:`MAX_ROWS` rows.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig",
                         skipinitialspace=True)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ValidationError([RowError(None, "file", str(e).splitlines()[0][:200], "UTF-8 CSV with a header row: "
                                        + ",".join(FIELDS), file)], message="unreadable CSV; nothing was written") \
            from None
    df.columns = [str(c).strip() for c in df.columns]
    unknown = [c for c in df.columns if c not in FIELDS]
    missing = [c for c in FIELDS if c not in df.columns and c != "period_s"]
    if unknown or missing:
        raise ValidationError([RowError(None, c, c, "columns " + ", ".join(FIELDS) + " (period_s optional)", file)
                               for c in unknown] + [RowError(None, c, None, "a column " + c, file) for c in missing],
                              message="wrong CSV columns; nothing was written")
    if len(df) > MAX_ROWS:
        raise _too_many(len(df), file)
    if "period_s" not in df:
        df["period_s"] = None
    return df[list(FIELDS)].astype(object).where(df[list(FIELDS)].notna(), None).reset_index(drop=True)


def stations_by_code(conn: Session | Connection, codes: Iterable[str]) -> dict[str, int]:
    """``code -> id`` of the live stations among ``codes``."""
    wanted = sorted({c for c in codes if isinstance(c, str)})
    if not wanted:
        return {}
    rows = connection_of(conn).execute(select(Station.code, Station.id).where(
        Station.code.in_(wanted), Station.deleted_at.is_(None))).all()
    return {str(c): int(i) for c, i in rows}


def _per_value(col: pd.Series, fn: Any) -> NDArray[Any]:
    """``fn`` applied once per distinct value of ``col`` (a batch holds few distinct stations, variables, units and
    times, however many readings), as an object array in ``col``'s order."""
    try:
        codes, uniq = pd.factorize(col.astype(object), use_na_sentinel=False)
    except TypeError:  # unhashable JSON values (an array, an object): one call each
        return np.array([fn(v) for v in col], dtype=object)
    mapped = np.empty(len(uniq), dtype=object)
    mapped[:] = [fn(u) for u in uniq]
    return mapped[codes]


def _time_of(v: object) -> int | None:
    """Epoch seconds of one ISO 8601 text (no zone: Beijing time); None when it is not one."""
    if not isinstance(v, str) or not v.strip():
        return None
    try:
        d = datetime.fromisoformat(v.strip())  # ISO 8601 only: "now" or "yesterday" are not times of a reading
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_BEIJING)
    return int(d.timestamp()) if d.microsecond == 0 else int(math.floor(d.timestamp()))


def _times(raw: pd.Series) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Epoch seconds of ISO 8601 texts (no zone: Beijing time) and which ones could be read (each distinct text is
    parsed once)."""
    got = _per_value(raw, _time_of)
    ok = np.array([g is not None for g in got], dtype=bool)
    return np.array([g if g is not None else 0 for g in got], dtype=np.int64), ok


def _numbers(raw: pd.Series) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Finite numbers of a column of JSON values or CSV text; booleans and blanks are not numbers."""
    objs = raw.to_numpy(object)
    is_bool = np.fromiter((type(v) is bool for v in objs), dtype=bool, count=len(objs))
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    for i in np.flatnonzero(np.isnan(vals)).tolist():  # text with spaces or thousands commas, as in the imports
        v = objs[i]
        if isinstance(v, str) and v.strip():
            try:
                vals[i] = float(v.replace(",", "").strip())
            except ValueError:
                pass
    ok = np.isfinite(vals) & ~is_bool
    return np.where(ok, vals, np.nan), ok


def validate(conn: Session | Connection, frame: pd.DataFrame, *, now: datetime,
             file: str | None = "request body") -> Batch:
    """Check every reading of ``frame`` (from :func:`records_frame` or :func:`csv_frame`); nothing is written.

    Parameters
    ----------
    now
        The server's clock: readings later than ``now`` + :data:`FUTURE_TOLERANCE_S` are refused.

    Returns
    -------
    Batch
        The readings, with station ids, canonical units and epoch seconds; readings repeated identically within
        the input are kept once (``notes`` says so).

    Raises
    ------
    ValidationError
        one :class:`~layers.store.errors.RowError` per bad value (row = 0-based index in the input).
    """
    n = len(frame)
    problems: list[RowError] = []

    def bad(mask: NDArray[np.bool_], col: str, allowed: str | Sequence[str]) -> None:
        text_ = allowed if isinstance(allowed, str) else str(allowed)
        for i in np.flatnonzero(mask).tolist():
            problems.append(RowError(i, col, frame[col].iat[i], text_, file))

    station = pd.Series(_per_value(frame["station"], lambda v: v.strip() if isinstance(v, str) else (
        str(v) if isinstance(v, int) and not isinstance(v, bool) else None)), index=frame.index)
    ids = stations_by_code(conn, station.dropna().unique().tolist())
    sid = _per_value(station, lambda c: ids.get(c, -1) if c is not None else -1).astype(np.int64)
    bad((sid < 0), "station", "the code (区站号) of a station in the stations layer")

    variable = pd.Series(_per_value(frame["variable"], lambda v: v.strip() if isinstance(v, str) else None),
                         index=frame.index)
    known = variable.isin(list(VARIABLES)).to_numpy(bool)
    bad(~known, "variable", "one of " + ", ".join(VARIABLES))

    unit = np.empty(n, dtype=object)
    for name, v in VARIABLES.items():
        m = (variable == name).to_numpy(bool)
        if not m.any():
            continue
        got = _per_value(frame["unit"][m], lambda u, name=name: canonical_unit(name, u))
        unit[m] = got
        wrong = np.zeros(n, dtype=bool)
        wrong[np.flatnonzero(m)[np.array([g is None for g in got], dtype=bool)]] = True
        bad(wrong, "unit", f"{v.unit} for {name}")

    value, ok_value = _numbers(frame["value"])
    bad(~ok_value, "value", "a finite number")

    t, ok_t = _times(frame["observed_at"])
    bad(~ok_t, "observed_at", "an ISO 8601 time such as 2024-07-01T08:00:00+08:00 (no zone: Beijing time)")
    latest_ok = int(now.timestamp()) + FUTURE_TOLERANCE_S
    future = ok_t & (t > latest_ok)
    bad(future, "observed_at", f"a time no later than the server's clock plus {FUTURE_TOLERANCE_S} s "
                               f"({datetime.fromtimestamp(latest_ok, UTC).isoformat()})")
    early = ok_t & (t < int(EARLIEST.timestamp()))
    bad(early, "observed_at", f"a time from {EARLIEST.date().isoformat()} on")

    blank_p = _per_value(frame["period_s"], lambda v: v is None or (isinstance(v, str) and not v.strip())
                         or (isinstance(v, float) and math.isnan(v))).astype(bool)
    period, ok_p = _numbers(frame["period_s"])
    ok_p &= (period % 1 == 0) & (period > 0) & (period <= 86400)
    accum = _per_value(variable, lambda v: v in VARIABLES and VARIABLES[v].accumulation).astype(bool)
    bad(accum & blank_p, "period_s", "the accumulation period in seconds (1..86400), required for "
                                     "precipitation and snowfall")
    bad(~blank_p & ~ok_p, "period_s", "a whole number of seconds in 1..86400, or empty")
    period = np.where(ok_p & ~blank_p, period, np.nan)

    good = np.ones(n, dtype=bool)
    for p in problems:
        if p.row is not None:
            good[p.row] = False
    # the same reading twice: once if identical, refused if the values differ
    key = pd.DataFrame({"s": sid, "v": variable.to_numpy(object), "t": t})
    dup = key.duplicated(keep=False).to_numpy(bool) & good
    notes: list[str] = []
    drop = np.zeros(n, dtype=bool)
    if dup.any():
        first_of: dict[tuple[int, str, int], int] = {}
        same = 0
        for i in np.flatnonzero(dup).tolist():
            k = (int(sid[i]), str(variable.iat[i]), int(t[i]))
            j = first_of.setdefault(k, i)
            if j == i:
                continue
            if value[i] == value[j] and (period[i] == period[j] or (np.isnan(period[i]) and np.isnan(period[j]))):
                drop[i] = True
                same += 1
            else:
                problems.append(RowError(i, "value", frame["value"].iat[i],
                                         f"one value per station, variable and time (row {j} has "
                                         f"{frame['value'].iat[j]!r} for the same reading)", file))
        if same:
            notes.append(f"{same} reading(s) repeated identically in the input; stored once")
    if problems:
        problems.sort(key=lambda p: (p.row if p.row is not None else -1))
        raise ValidationError(problems, message=f"{len({p.row for p in problems})} of {n} readings invalid "
                                                "(row = 0-based index); nothing was written")
    keep = ~drop
    return Batch(rows=np.flatnonzero(keep).astype(np.int64), station_id=sid[keep],
                 station=station.to_numpy(object)[keep], variable=variable.to_numpy(object)[keep], value=value[keep],
                 unit=unit[keep], period_s=period[keep], t=t[keep], quality=np.full(int(keep.sum()), "good", object),
                 notes=notes)


# --- quality --------------------------------------------------------------------------------------------------------


def fetch_rows(conn: Session | Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of one statement through the driver's cursor, in the caller's transaction: tens of thousands of readings
    come back as plain tuples (SQLAlchemy's ``Row`` objects cost more than the query). ``sql`` uses psycopg's
    ``%(name)s`` placeholders; lists become arrays."""
    with driver_connection(conn).cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


_CONTEXT_SQL = (
    "SELECT g.s, g.v, extract(epoch FROM x.observed_at)::float8 AS t, x.value, x.quality "
    "FROM unnest(%(s)s::bigint[], %(v)s::text[], %(t0)s::float8[], %(f)s::float8[]) AS g(s, v, t0, f) "
    "JOIN stations st ON st.id = g.s CROSS JOIN LATERAL ("
    "  SELECT o.observed_at, o.value, o.quality FROM observations o"
    "  WHERE o.station_id = g.s AND o.variable = g.v AND o.observed_at < to_timestamp(g.t0)"
    "    AND o.observed_at >= to_timestamp(g.t0) - make_interval(secs => greatest(g.f, 86400) + st.interval_s)"
    "  ORDER BY o.observed_at DESC"
    "  LIMIT greatest(%(own)s, least(%(most)s, ceil(g.f / st.interval_s)::int + 1))) x")


def _context(c: Connection, batch: Batch) -> pd.DataFrame:
    """The stored readings of every series of ``batch`` before its first new reading (with their quality): the
    spike test's :data:`~layers.monitor.quality.OWN_HISTORY`, or as many as the variable's flatline duration spans at
    the station's reporting interval (at most :data:`CONTEXT_ROWS`); one index probe per series."""
    frame = pd.DataFrame({"s": batch.station_id, "v": batch.variable, "t": batch.t})
    first = frame.groupby(["s", "v"], sort=False)["t"].min().reset_index()
    if first.empty:
        return pd.DataFrame(columns=["s", "v", "t", "value", "quality"])
    flat = [float(VARIABLES[str(v)].flatline_s) for v in first["v"]]
    rows = fetch_rows(c, _CONTEXT_SQL, {"s": first["s"].astype(int).tolist(), "v": first["v"].astype(str).tolist(),
                                        "t0": first["t"].astype(float).tolist(), "f": flat,
                                        "own": quality.OWN_HISTORY + 1, "most": CONTEXT_ROWS})
    return pd.DataFrame.from_records(rows, columns=["s", "v", "t", "value", "quality"])


@dataclass(frozen=True)
class _StationPoint:
    ids: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]


def neighbours(conn: Session | Connection, station_ids: Iterable[int], *,
               within_km: float = NEIGHBOUR_KM) -> dict[int, list[int]]:
    """Live stations within ``within_km`` (geodesic) of each of ``station_ids``, nearest first."""
    c = connection_of(conn)
    rows = c.execute(select(Station.id, func.ST_X(Station.geom), func.ST_Y(Station.geom))
                     .where(Station.deleted_at.is_(None))).all()
    if not rows:
        return {}
    pts = _StationPoint(np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], float),
                        np.array([r[2] for r in rows], float))
    pos = {int(i): k for k, i in enumerate(pts.ids)}
    out: dict[int, list[int]] = {}
    for s in set(int(x) for x in station_ids):
        k = pos.get(s)
        if k is None:
            continue
        _, _, d = GEOD.inv(np.full(len(pts.ids), pts.lon[k]), np.full(len(pts.ids), pts.lat[k]), pts.lon, pts.lat)
        near = np.flatnonzero((d <= within_km * 1000.0) & (pts.ids != s))
        out[s] = [int(pts.ids[j]) for j in near[np.argsort(d[near])]]
    return out


def assess_quality(conn: Session | Connection, batch: Batch) -> Batch:
    """Set ``batch.quality``: ``range``, ``spike``, ``flatline`` or ``good`` for each reading (first failing test).

    The spike and flatline tests read each series' stored readings before the batch (:data:`CONTEXT_ROWS`), and
    the spike test the readings of neighbouring stations (stored, and in the batch) within
    :data:`NEIGHBOUR_WINDOW_S` of the suspect; see :mod:`layers.monitor.quality`.
    """
    c = connection_of(conn)
    n = len(batch)
    flags = np.full(n, "good", dtype=object)
    if n == 0:
        batch.quality = flags
        return batch
    highs = np.empty(n)
    lows = np.empty(n)
    for name, var in VARIABLES.items():
        m = batch.variable == name
        if not m.any():
            continue
        lows[m] = var.low
        if var.accumulation:  # the bound scales with the period (the same rule as upper_bound, per array)
            hours = np.maximum(np.nan_to_num(batch.period_s[m], nan=3600.0), 600.0) / 3600.0
            highs[m] = np.minimum(var.high * hours, var.cap)
        else:
            highs[m] = upper_bound(var, None)
    flags[(batch.value < lows) | (batch.value > highs)] = "range"

    # a series' own history: its stored readings (flagged ones too, but not those out of range: after a real step
    # the median follows the new level instead of flagging it for ever) and the batch's own
    ctx = _context(c, batch)
    ctx = ctx[ctx["quality"] != "range"] if not ctx.empty else ctx
    new = pd.DataFrame({"s": batch.station_id, "v": batch.variable, "t": batch.t, "value": batch.value,
                        "pos": np.arange(n), "ok": flags == "good"})
    both = pd.concat([ctx.assign(pos=-1, ok=True)[["s", "v", "t", "value", "pos", "ok"]] if not ctx.empty
                      else None, new], ignore_index=True)
    both = both[both["ok"]].sort_values(["s", "v", "t"], kind="stable").reset_index(drop=True)
    suspects: list[int] = []
    for vname, part in both.groupby("v", sort=False):
        spec = VARIABLES[str(vname)]
        group = pd.factorize(part["s"])[0].astype(np.int64)
        vals = part["value"].to_numpy(np.float64)
        pos = part["pos"].to_numpy(np.int64)
        if spec.flatline_s > 0:
            flat = quality.flatline(group, part["t"].to_numpy(np.float64), vals, duration_s=spec.flatline_s,
                                    min_abs=spec.flatline_min)
            hit = flat & (pos >= 0)
            flags[pos[hit]] = "flatline"
        if spec.spike_floor > 0:
            score = quality.spike_scores(group, vals, floor=spec.spike_floor)
            sus = (score > spec.spike_k) & (pos >= 0)
            suspects.extend(int(p) for p in pos[sus] if flags[p] == "good")
    if suspects:
        _neighbour_check(c, batch, suspects, flags)
    batch.quality = flags
    return batch


def _neighbour_check(c: Connection, batch: Batch, suspects: list[int], flags: NDArray[np.object_]) -> None:
    """Flag each suspect as a spike unless its neighbours read about the same at that time."""
    near = neighbours(c, {int(batch.station_id[p]) for p in suspects})
    wanted: dict[tuple[int, str], list[int]] = {}
    for p in suspects:
        wanted.setdefault((int(batch.station_id[p]), str(batch.variable[p])), []).append(p)
    new_by_key: dict[tuple[int, str], list[tuple[int, float]]] = {}
    for i in range(len(batch)):
        if flags[i] == "good":
            new_by_key.setdefault((int(batch.station_id[i]), str(batch.variable[i])), []).append(
                (int(batch.t[i]), float(batch.value[i])))
    lo = int(min(batch.t[p] for p in suspects)) - NEIGHBOUR_WINDOW_S
    hi = int(max(batch.t[p] for p in suspects)) + NEIGHBOUR_WINDOW_S
    all_near = sorted({s for sid, _ in wanted for s in near.get(sid, [])})
    stored: dict[tuple[int, str], list[tuple[int, float]]] = {}
    if all_near:
        rows = c.execute(select(Observation.station_id, Observation.variable,
                                func.extract("epoch", Observation.observed_at), Observation.value).where(
            Observation.station_id.in_(all_near), Observation.variable.in_(sorted({v for _, v in wanted})),
            Observation.observed_at >= datetime.fromtimestamp(lo, UTC),
            Observation.observed_at <= datetime.fromtimestamp(hi, UTC), Observation.quality == "good")).all()
        for s, v, t, x in rows:
            stored.setdefault((int(s), str(v)), []).append((int(t), float(x)))
    for (sid, var), ps in wanted.items():
        spec = VARIABLES[var]
        for p in ps:
            t0 = int(batch.t[p])
            vals = []
            for nb in near.get(sid, []):
                readings = stored.get((nb, var), []) + new_by_key.get((nb, var), [])
                close = [x for tt, x in readings if abs(tt - t0) <= NEIGHBOUR_WINDOW_S]
                if close:
                    vals.append(close[0])
            score = quality.neighbour_score(float(batch.value[p]), np.asarray(vals, dtype=np.float64),
                                            floor=spec.spike_floor)
            if math.isnan(score):
                if not spec.spike_needs_neighbours:
                    flags[p] = "spike"
            elif score > spec.spike_k:
                flags[p] = "spike"


# --- writing --------------------------------------------------------------------------------------------------------


def ensure_partitions(conn: Session | Connection, months: Iterable[datetime]) -> list[str]:
    """Make the monthly partitions of ``observations`` for ``months`` that do not exist yet; returns their names.

    Runs ``sitroom_observation_partition(month)`` (migration 0006) in the caller's transaction: the partition
    exists for everyone once that commits, and an advisory lock makes a concurrent ingest wait rather than fail.
    """
    c = connection_of(conn)
    return [str(c.execute(text("SELECT sitroom_observation_partition(CAST(:m AS date))"),
                          {"m": m.date().isoformat()}).scalar_one()) for m in months]


_COLUMNS = "station_id, variable, observed_at, value, unit, period_s, quality"
_STAGE_COLUMNS = "station_id bigint, variable text, observed_at timestamptz, value double precision, unit text, " \
                 "period_s integer, quality text"


def _few(values: NDArray[Any], fmt: Any = str) -> tuple[NDArray[np.intp], pa.Array]:
    """A column with few distinct values (stations' variables, units, flags, the batch's times) as sorted codes and
    an Arrow string column built from them: each distinct value is formatted once, not once per reading."""
    codes, uniq = pd.factorize(values, sort=True)
    labels = pa.array([fmt(u) for u in uniq], pa.string())
    return codes, pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), labels).cast(pa.string())


def _utc_text(t: int) -> str:
    """Epoch seconds as PostgreSQL reads a ``timestamptz`` in a COPY."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def _csv(batch: Batch) -> bytes:
    """The batch as CSV rows in the order of :data:`_COLUMNS` (pyarrow's C++ writer; the text columns and the times
    through :func:`_few`), sorted by the key: two ingests of overlapping batches then take their row locks in the
    same order and never deadlock."""
    var_codes, variable = _few(batch.variable)
    o = np.lexsort((batch.t, var_codes, batch.station_id))
    has_period = np.isfinite(batch.period_s[o])
    table = pa.table({
        "station_id": pa.array(batch.station_id[o], pa.int64()), "variable": variable.take(o),
        "observed_at": _few(batch.t, _utc_text)[1].take(o),
        "value": pa.array(batch.value[o], pa.float64()), "unit": _few(batch.unit)[1].take(o),
        "period_s": pa.array(np.where(has_period, batch.period_s[o], 0).astype(np.int64), pa.int64(),
                             mask=~has_period),
        "quality": _few(batch.quality)[1].take(o)})
    buf = pa.BufferOutputStream()
    pa_csv.write_csv(table, buf, write_options=pa_csv.WriteOptions(include_header=False))
    return buf.getvalue().to_pybytes()


def write(conn: Session | Connection, batch: Batch) -> WriteCounts:
    """Store ``batch`` (validated, quality assessed) in the caller's transaction.

    New readings (the usual case) are ``COPY``'d straight into ``observations`` in a savepoint; when one of them is
    already stored (a re-sent batch, or an overlapping ingest that committed first), that savepoint is rolled back
    and the batch goes through a staging table and one ``INSERT ... ON CONFLICT DO NOTHING`` instead: a reading is
    stored once, the first value stays."""
    c = connection_of(conn)
    if len(batch) == 0:
        return WriteCounts(0, 0, {})
    ensure_partitions(c, batch.months())
    data = _csv(batch)
    raw = driver_connection(c)
    with raw.cursor() as cur:  # a savepoint of our own on the driver's connection: the COPY is the driver's too
        cur.execute("SAVEPOINT sitroom_obs_copy")
        try:
            with cur.copy(f"COPY observations ({_COLUMNS}) FROM STDIN (FORMAT csv)") as cp:
                cp.write(data)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT sitroom_obs_copy")
            copied = False  # some are stored already: the merge below
        else:
            copied = True
        cur.execute("RELEASE SAVEPOINT sitroom_obs_copy")
    if copied:
        newest = pd.DataFrame({"s": batch.station_id, "v": batch.variable, "t": batch.t}).groupby(
            ["s", "v"], sort=False)["t"].max().reset_index()
        return WriteCounts(inserted=len(batch), duplicates=0, touched={
            (int(s_), str(v_)): datetime.fromtimestamp(int(t_), UTC)
            for s_, v_, t_ in zip(newest["s"], newest["v"], newest["t"], strict=True)})
    with conn.begin_nested():
        c.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS _sitroom_obs_stage ({_STAGE_COLUMNS}) "
                       "ON COMMIT DELETE ROWS"))
        c.execute(text("TRUNCATE _sitroom_obs_stage"))
        with raw.cursor() as cur, cur.copy(f"COPY _sitroom_obs_stage ({_COLUMNS}) FROM STDIN (FORMAT csv)") as cp:
            cp.write(data)
        rows = c.execute(text(
            f"WITH ins AS (INSERT INTO observations ({_COLUMNS}) SELECT {_COLUMNS} FROM _sitroom_obs_stage"
            " ORDER BY station_id, variable, observed_at"
            " ON CONFLICT (station_id, variable, observed_at) DO NOTHING"
            " RETURNING station_id, variable, observed_at)"
            " SELECT station_id, variable, max(observed_at), count(*) FROM ins GROUP BY station_id, variable")).all()
        c.execute(text("TRUNCATE _sitroom_obs_stage"))
    inserted = sum(int(r[3]) for r in rows)
    return WriteCounts(inserted=inserted, duplicates=len(batch) - inserted,
                       touched={(int(r[0]), str(r[1])): r[2] for r in rows})


# --- reading --------------------------------------------------------------------------------------------------------


_SERIES_SQL = (
    "SELECT variable, observed_at, value, unit, period_s, quality, id FROM observations"
    " WHERE station_id = %(s)s AND variable = ANY(%(v)s::text[]) AND observed_at > %(t0)s AND observed_at <= %(t1)s"
    "{good} ORDER BY variable, observed_at")


def series(conn: Session | Connection, station_id: int, variables: Sequence[str], start: datetime, end: datetime,
           *, good_only: bool = False) -> pd.DataFrame:
    """The readings of one station in ``(start, end]``: columns ``variable, observed_at, value, unit, period_s,
    quality, id``, by variable then time. One index-only range scan of the primary key (it INCLUDEs every column
    read here) per partition the window touches; rows come back as plain tuples in the binary protocol."""
    sql = _SERIES_SQL.format(good=" AND quality = 'good'" if good_only else "")
    with driver_connection(conn).cursor(binary=True) as cur:  # binary times and numbers: no text to parse per row
        cur.execute(sql, {"s": int(station_id), "v": list(variables), "t0": start, "t1": end})
        rows = cur.fetchall()
    return pd.DataFrame.from_records(rows, columns=["variable", "observed_at", "value", "unit", "period_s", "quality",
                                                    "id"])


def latest(conn: Session | Connection, *, at: datetime, within: timedelta = timedelta(days=7),
           station_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """The newest reading of every variable of every live station at ``at`` (looking back ``within``): columns
    ``station_id, variable, observed_at, value, unit, quality``. One backward index probe per series."""
    c = connection_of(conn)
    cond = "s.deleted_at IS NULL" + (" AND s.id = ANY(:ids)" if station_ids is not None else "")
    stmt = text(
        "SELECT s.id, v.variable, x.observed_at, x.value, x.unit, x.quality "
        "FROM stations s CROSS JOIN unnest(CAST(:vars AS text[])) AS v(variable) CROSS JOIN LATERAL ("
        "  SELECT o.observed_at, o.value, o.unit, o.quality FROM observations o"
        "  WHERE o.station_id = s.id AND o.variable = v.variable AND o.observed_at <= :at AND o.observed_at > :since"
        "  ORDER BY o.observed_at DESC LIMIT 1) x "
        f"WHERE {cond} ORDER BY s.id, v.variable")
    params: dict[str, Any] = {"vars": list(VARIABLES), "at": at, "since": at - within}
    if station_ids is not None:
        stmt = stmt.bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
        params["ids"] = [int(i) for i in station_ids]
    rows = c.execute(stmt, params).all()
    return pd.DataFrame(rows, columns=["station_id", "variable", "observed_at", "value", "unit", "quality"])
