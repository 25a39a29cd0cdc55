"""The observation store against a real PostGIS: validation names row and field and writes nothing; readings are
stored once (re-sent, or sent by two ingests at once); monthly partitions are made on demand; quality flags (range,
spike, flatline); window sums equal a raw SQL sum over the store."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from layers.monitor import observations
from layers.monitor.ingest import ingest_csv, ingest_records
from layers.monitor.rules import Series, aggregate
from layers.store.errors import ValidationError
from layers.store.models import Hazard, Observation, Station
from tests.layers.monitor.conftest import T0, add_station, readings

pytestmark = pytest.mark.db

NOW = T0 + timedelta(days=1)


def _count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Observation)).scalar_one())


def test_readings_are_stored_once_with_their_units_and_periods(session: Session, station) -> None:
    sid = station("S1")
    recs = readings("S1", "precipitation", "毫米", [0.0, 1.5, 3.2], period_s=3600)
    recs += readings("S1", "temperature", "℃", [21.0, 20.5, 19.8])
    r = ingest_records(session, recs, now=NOW)
    assert (r.received, r.inserted, r.duplicates) == (6, 6, 0)
    rows = session.execute(select(Observation.variable, Observation.value, Observation.unit, Observation.period_s,
                                  Observation.quality).where(Observation.station_id == sid)
                           .order_by(Observation.variable, Observation.observed_at)).all()
    assert [tuple(x) for x in rows] == [
        ("precipitation", 0.0, "mm", 3600, "good"), ("precipitation", 1.5, "mm", 3600, "good"),
        ("precipitation", 3.2, "mm", 3600, "good"), ("temperature", 21.0, "degC", None, "good"),
        ("temperature", 20.5, "degC", None, "good"), ("temperature", 19.8, "degC", None, "good")]
    again = ingest_records(session, recs + recs[:2], now=NOW)  # re-sent (and repeated in the input): no new row
    assert (again.inserted, again.duplicates) == (0, 8) and _count(session) == 6
    assert any("repeated identically" in n for n in again.notes)


def test_naive_times_are_beijing_time_and_csv_reads_the_same(session: Session, station) -> None:
    sid = station("S2")
    csv = ("station,variable,value,unit,observed_at,period_s\n"
           "S2,wind_speed,4.5,m/s,2026-07-20 08:00:00,\n"
           "S2,precipitation,2.0,mm,2026-07-20T09:00:00+08:00,3600\n")
    r = ingest_csv(session, csv, now=NOW)
    assert r.inserted == 2
    times = session.execute(select(Observation.observed_at).where(Observation.station_id == sid)
                            .order_by(Observation.observed_at)).scalars().all()
    assert times == [datetime(2026, 7, 20, 0, 0, tzinfo=UTC), datetime(2026, 7, 20, 1, 0, tzinfo=UTC)]


@pytest.mark.parametrize("change, field, allowed", [
    ({"station": "NOPE"}, "station", "the code (区站号) of a station"),
    ({"variable": "humidity"}, "variable", "one of precipitation, snowfall"),
    ({"unit": "km/h"}, "unit", "m/s for wind_speed"),
    ({"value": "fast"}, "value", "a finite number"),
    ({"value": float("nan")}, "value", "a finite number"),
    ({"value": True}, "value", "a finite number"),
    ({"observed_at": "yesterday"}, "observed_at", "an ISO 8601 time"),
    ({"observed_at": (NOW + timedelta(hours=1)).isoformat()}, "observed_at", "no later than the server's clock"),
    ({"observed_at": "1900-01-01T00:00:00Z"}, "observed_at", "a time from 1990-01-01 on"),
    ({"period_s": -5}, "period_s", "a whole number of seconds"),
    ({"colour": "red"}, "colour", "members among station, variable"),
])
def test_a_bad_reading_is_named_by_row_and_field_and_nothing_is_written(session: Session, station, change, field,
                                                                         allowed) -> None:
    station("S3")
    recs = readings("S3", "wind_speed", "m/s", [3.0, 4.0, 5.0])
    recs[1] = {**recs[1], **change}
    with pytest.raises(ValidationError) as e:
        ingest_records(session, recs, now=NOW)
    p = e.value.problems[0]
    assert (p.row, p.field) == (1, field) and allowed in p.allowed, e.value
    assert _count(session) == 0


def test_accumulations_need_their_period_and_two_values_for_one_reading_are_refused(session: Session,
                                                                                    station) -> None:
    station("S4")
    recs = readings("S4", "precipitation", "mm", [1.0, 2.0])
    with pytest.raises(ValidationError) as e:
        ingest_records(session, recs, now=NOW)
    assert [(p.row, p.field) for p in e.value.problems] == [(0, "period_s"), (1, "period_s")]
    recs = readings("S4", "wind_speed", "m/s", [1.0, 2.0])
    recs.append({**recs[0], "value": 9.0})
    with pytest.raises(ValidationError) as e:
        ingest_records(session, recs, now=NOW)
    assert [(p.row, p.field) for p in e.value.problems] == [(2, "value")] and "row 0 has" in e.value.problems[0].allowed
    assert _count(session) == 0


def test_too_many_readings_are_refused_before_anything_is_read(session: Session) -> None:
    with pytest.raises(ValidationError) as e:
        observations.records_frame([{}] * (observations.MAX_ROWS + 1))
    assert e.value.problems[0].field == "rows"


def test_months_get_their_partitions_on_demand(session: Session, station) -> None:
    station("S5")
    june = datetime(2026, 6, 30, 22, tzinfo=UTC)
    recs = readings("S5", "temperature", "degC", [18.0, 17.5, 17.0, 16.0], start=june)  # 22:00 June .. 01:00 July
    ingest_records(session, recs, now=NOW)
    parts = session.execute(text("SELECT tableoid::regclass::text, count(*) FROM observations GROUP BY 1 ORDER BY 1"))
    assert [tuple(r) for r in parts] == [("observations_y2026m06", 2), ("observations_y2026m07", 2)]
    # a query of a week reads only the partitions of that week
    plan = "\n".join(r[0] for r in session.execute(text(
        "EXPLAIN SELECT * FROM observations WHERE observed_at > '2026-07-01' AND observed_at <= '2026-07-08'")))
    assert "observations_y2026m07" in plan and "observations_y2026m06" not in plan


def _lock_waits(engine: Engine, pid: int) -> bool:
    with engine.connect() as c:
        return c.execute(text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                         {"p": pid}).scalar() is True


def test_making_a_month_waits_for_no_reader_so_two_ingests_at_a_month_boundary_both_land(engine: Engine) -> None:
    """The interleaving of two ingests that both reach a month not made yet: B has read the store (an ingest reads
    its stations' recent series before writing), then A makes the month, then B asks for it. A must not wait for
    B's read (it did, with CREATE TABLE ... PARTITION OF: B then waited for A's advisory lock, a deadlock that
    PostgreSQL broke by aborting one ingest); B waits for A's commit and finds the month made."""
    with engine.connect() as c:
        month = next(m for y in range(1991, 2020) for mo in range(1, 13)
                     if c.execute(text("SELECT to_regclass(:n)"), {"n": f"observations_y{y}m{mo:02d}"}).scalar()
                     is None and (m := datetime(y, mo, 15, tzinfo=UTC)))
    name = f"observations_y{month.year}m{month.month:02d}"
    a, b = engine.connect(), engine.connect()
    done: dict[str, object] = {}
    threads: list[threading.Thread] = []

    def make(conn: object, who: str) -> None:
        try:
            done[who] = observations.ensure_partitions(conn, [month])  # type: ignore[arg-type]
        except BaseException as e:  # noqa: BLE001 - reported by the test
            done[who] = e

    try:
        a_pid = a.execute(text("SELECT pg_backend_pid()")).scalar_one()
        b_pid = b.execute(text("SELECT pg_backend_pid()")).scalar_one()
        b.execute(text("SELECT count(*) FROM observations"))  # B holds its read lock until it commits
        ta = threading.Thread(target=make, args=(a, "a"))
        threads.append(ta)
        ta.start()
        # A either finishes or sits in a lock wait; wait for whichever comes first (no clock involved)
        while ta.is_alive() and not _lock_waits(engine, a_pid):
            ta.join(0.05)
        assert not ta.is_alive() and done.get("a") == [name], f"making {name} waited for a reader: {done.get('a')}"
        tb = threading.Thread(target=make, args=(b, "b"))
        threads.append(tb)
        tb.start()
        while tb.is_alive() and not _lock_waits(engine, b_pid):
            tb.join(0.05)
        assert tb.is_alive()  # B waits for the month A is making ...
        a.commit()
        tb.join(60)
        assert done.get("b") == [name]  # ... and finds it made
        b.commit()
    finally:  # end first the transaction no thread is using: that frees the thread waiting for it
        busy = {id(conn) for t, conn in zip(threads, (a, b), strict=False) if t.is_alive()}
        for conn in (a, b):
            if id(conn) not in busy:
                conn.rollback()
        for t in threads:
            t.join(60)
        for conn in (a, b):
            conn.rollback()
            conn.close()
    with engine.connect() as c:  # an attached partition with the parent's indexes, the covering key among them
        assert c.execute(text("SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = to_regclass(:n)"),
                         {"n": name}).scalar_one() == "observations"
        idx = c.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = :n ORDER BY 1"), {"n": name}).scalars()
        assert any("INCLUDE (value, unit, period_s, quality, id)" in d for d in idx)


def test_out_of_range_spike_and_flatline_are_flagged(session: Session, station) -> None:
    station("Q1")  # alone: no neighbour within 75 km
    station("Q2", lon=112.0, lat=43.9)
    for k, code in enumerate(("N1", "N2", "N3")):  # neighbours of Q2
        station(code, lon=112.1 + 0.1 * k, lat=43.95)
    calm = [3.0, 4.0, 3.5, 4.2, 3.8, 4.1, 3.6, 3.9]
    recs = readings("Q1", "temperature", "degC", [20.0, 20.3, 19.9, 20.2, 20.0, 71.0])  # 71 °C: out of range
    recs += readings("Q1", "wind_speed", "m/s", calm + [45.0, 4.0])  # a lone 45 m/s: spike (no neighbours needed)
    recs += readings("Q2", "wind_speed", "m/s", calm + [40.0, 4.0])
    for code in ("N1", "N2", "N3"):
        recs += readings(code, "wind_speed", "m/s", calm + [4.5, 4.0])  # the neighbours stayed calm
    recs += readings("Q1", "water_level", "m", [1001.2] * 8, start=T0 - timedelta(hours=80),
                     step=timedelta(hours=12))  # 84 h of the same stage: stuck from 72 h on
    ingest_records(session, recs, now=NOW)
    q = {(c, v, t.replace(tzinfo=UTC) if t.tzinfo is None else t): f for c, v, t, f in session.execute(
        select(Station.code, Observation.variable, Observation.observed_at, Observation.quality)
        .join(Station, Station.id == Observation.station_id))}
    flagged = sorted((c, v, f) for (c, v, _t), f in q.items() if f != "good")
    assert flagged == [("Q1", "temperature", "range"), ("Q1", "water_level", "flatline"),
                       ("Q1", "water_level", "flatline"), ("Q1", "wind_speed", "spike"), ("Q2", "wind_speed", "spike")]


def test_a_downpour_that_the_neighbours_share_is_not_a_spike(session: Session, station) -> None:
    for k, code in enumerate(("R1", "R2", "R3", "R4")):
        station(code, lon=109.8 + 0.1 * k, lat=40.6)
    recs = []
    for k, code in enumerate(("R1", "R2", "R3", "R4")):
        recs += readings(code, "precipitation", "mm", [0.0] * 8 + [42.0 + k, 30.0], period_s=3600)
    ingest_records(session, recs, now=NOW)
    assert session.execute(select(func.count()).select_from(Observation)
                           .where(Observation.quality != "good")).scalar_one() == 0


def test_window_sums_equal_a_raw_sql_sum_over_the_store(session: Session, station) -> None:
    sid = station("W1")
    amounts = [0.4, 0.0, 2.5, 11.0, 7.3, 0.0, 0.1, 25.0, 3.3, 0.0, 1.1, 9.9]
    recs = readings("W1", "precipitation", "mm", amounts, period_s=3600)
    recs += readings("W1", "precipitation", "mm", [0.7, 0.2], start=T0 + timedelta(minutes=30),
                     step=timedelta(hours=5), period_s=1800)
    ingest_records(session, recs, now=NOW)
    df = observations.series(session, sid, ["precipitation"], T0 - timedelta(days=1), NOW)
    s = Series.of([t.timestamp() for t in df["observed_at"]], df["value"].tolist(),
                  periods=df["period_s"].astype(float).tolist())
    for hours in (1, 3, 6, 12):
        for end in range(0, 12):
            t = T0 + timedelta(hours=end)
            want = session.execute(text(
                "SELECT sum(value) FROM observations WHERE station_id = :s AND variable = 'precipitation'"
                " AND observed_at <= :t AND observed_at - make_interval(secs => period_s) >= :t - make_interval("
                "hours => :h) AND observed_at > :t - make_interval(hours => :h)"),
                {"s": sid, "t": t, "h": hours}).scalar_one()
            got = aggregate(s, t.timestamp(), hours * 3600, "sum")[0]
            assert (want is None and got != got) or got == pytest.approx(float(want)), (hours, end)


def test_two_ingests_of_overlapping_batches_store_each_reading_once(engine: Engine) -> None:
    """Two transactions at once, committed: the overlap is stored once, no reading is lost, one warning."""
    code = f"C{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with Session(engine) as s, s.begin():
        add_station(s, code)
    start = now - timedelta(hours=11)
    a = readings(code, "precipitation", "mm", [0, 0, 0, 0, 0, 5, 20, 20, 15, 5, 2, 1], start=start, period_s=3600)
    b = a[4:] + readings(code, "wind_speed", "m/s", [3.0] * 12, start=start)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(recs: list[dict]) -> None:
        try:
            with Session(engine) as s, s.begin():
                barrier.wait(timeout=30)
                ingest_records(s, recs, now=now + timedelta(minutes=5))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(x,)) for x in (a, b)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    try:
        assert not errors, errors
        with engine.connect() as c:
            sid = c.execute(select(Station.id).where(Station.code == code)).scalar_one()
            n = dict(c.execute(select(Observation.variable, func.count()).where(Observation.station_id == sid)
                               .group_by(Observation.variable)).all())
            assert n == {"precipitation": 12, "wind_speed": 12}
            dup = c.execute(text("SELECT count(*) FROM (SELECT station_id, variable, observed_at FROM observations"
                                 " WHERE station_id = :s GROUP BY 1, 2, 3 HAVING count(*) > 1) d"), {"s": sid})
            assert dup.scalar_one() == 0
            warnings = c.execute(select(func.count()).select_from(Hazard).where(
                Hazard.source == "monitor", Hazard.properties["monitor"]["station"].astext == code)).scalar_one()
            assert warnings == 1
    finally:
        with engine.begin() as c:
            sid = c.execute(select(Station.id).where(Station.code == code)).scalar_one()
            c.execute(text("DELETE FROM observations WHERE station_id = :s"), {"s": sid})
            c.execute(text("DELETE FROM hazards WHERE source = 'monitor' AND properties->'monitor'->>'station' = :c"),
                      {"c": code})
            c.execute(text("DELETE FROM stations WHERE id = :s"), {"s": sid})


def test_a_series_is_read_from_the_primary_key_alone(session: Session) -> None:
    """Every column observations.series reads is in the key's index (INCLUDE), so a station's week is an index-only
    range scan instead of ~1,000 heap pages (one reading per page, as readings arrive time after time)."""
    import re

    read = re.match(r"SELECT (.+?) FROM", observations._SERIES_SQL)[1].replace(" ", "").split(",")  # type: ignore[index]
    covered = set(session.execute(text(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indexrelid = 'pk_observations'::regclass")).scalars())
    assert set(read) | {"station_id"} <= covered, set(read) - covered
