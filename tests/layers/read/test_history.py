"""layers.read.history on a real PostGIS: the picture rebuilt from feature_history equals the live tables as they were.

The oracle is the live layer query (:func:`layers.read.queries.fetch_features`, which reads the feature tables, not the
history) captured right after each step of a small drill; the history-rebuilt picture at the step's time must equal
it, and two consecutive pictures must differ exactly by the feature that step touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, Polygon
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from layers.read import history
from layers.read.queries import fetch_features
from layers.store.errors import ValidationError
from layers.store.models import Hazard, Incident, Shelter

pytestmark = pytest.mark.db

LAYERS = ("incidents", "shelters", "hazards")


def _now(s) -> datetime:
    return s.execute(select(text("clock_timestamp()"))).scalar_one()


def _live(s) -> dict[str, dict]:
    conn = s.connection()
    return {n: {f["id"]: f for f in fetch_features(conn, n, limit=10_000)["features"]} for n in LAYERS}


def _picture(s, at) -> dict[str, dict]:
    got = history.situation_at(s.connection(), at, layers=LAYERS)
    return {n: {f["id"]: f for f in fc["features"]} for n, fc in got.items()}


def _diff(a: dict, b: dict) -> set[tuple[str, int]]:
    out = set()
    for n in LAYERS:
        for fid in set(a[n]) | set(b[n]):
            if a[n].get(fid) != b[n].get(fid):
                out.add((n, fid))
    return out


def _drill(s) -> tuple[list[datetime], list[dict], list[set[tuple[str, int]]], dict[str, int]]:
    """Insert, update, move, soft-delete, purge; returns step times, live pictures after each step, what changed."""
    times, pictures, touched = [_now(s)], [_live(s)], []

    def step(what: set[tuple[str, int]]) -> None:
        s.flush()
        times.append(_now(s))
        pictures.append(_live(s))
        touched.append(what)

    fire = Incident(source="hist", external_id="f1", name="草原火 1", kind="fire",
                    status="reported", severity="large", geom=from_shape(Point(111.70, 40.82), srid=4326))
    s.add(fire)
    s.flush()
    step({("incidents", fire.id)})
    shelter = Shelter(source="hist", external_id="s1", name="避难场所 1", kind="emergency", status="open",
                      capacity=500, occupancy=0, geom=from_shape(Point(111.65, 40.80), srid=4326))
    s.add(shelter)
    s.flush()
    step({("shelters", shelter.id)})
    s.execute(update(Incident).where(Incident.id == fire.id).values(status="verified", severity="major"))
    step({("incidents", fire.id)})
    s.execute(update(Shelter).where(Shelter.id == shelter.id).values(occupancy=120))
    step({("shelters", shelter.id)})
    s.execute(update(Incident).where(Incident.id == fire.id).values(geom=from_shape(Point(111.72, 40.83), srid=4326)))
    step({("incidents", fire.id)})
    zone = Hazard(source="hist", external_id="h1", name="大风", kind="sandstorm", status="active",
                  warning_level="orange", geom=from_shape(MultiPolygon([Polygon([(111, 40), (112, 40), (112, 41), (111, 41)])]),
                                                          srid=4326))
    s.add(zone)
    s.flush()
    step({("hazards", zone.id)})
    s.execute(update(Incident).where(Incident.id == fire.id).values(deleted_at=text("now()")))
    step({("incidents", fire.id)})
    s.execute(Hazard.__table__.delete().where(Hazard.id == zone.id))
    step({("hazards", zone.id)})
    return times, pictures, touched, {"fire": fire.id, "shelter": shelter.id, "zone": zone.id}


def test_situation_at_equals_the_live_tables_after_every_step(session) -> None:
    times, pictures, _, _ = _drill(session)
    for at, live in zip(times, pictures, strict=True):
        assert _picture(session, at) == live


def test_the_report_at_a_past_time_and_situation_at_agree(session) -> None:
    """The two views of the past (temporary tables under ``as_of``, which the situation report and the wall's KPIs
    read through their unchanged queries; GeoJSON from ``situation_at``) come from one primitive and agree."""
    from layers.read import sitrep, situation

    times, _, _, ids = _drill(session)
    conn = session.connection()
    for at in times:
        picture = _picture(session, at)
        with history.as_of(conn, at, layers=LAYERS):
            shadowed = _live(session)                       # the live layer query, reading the past tables
            places = situation.shelter_places(conn)
        assert shadowed == picture
        open_ = [f["properties"] for f in picture["shelters"].values() if f["properties"]["status"] != "closed"]
        assert places["shelters"] == len(open_)
        assert places["occupied"] == sum(p["occupancy"] for p in open_)
        report = sitrep.gather(conn, at=at)
        assert report["kpis"]["shelters"] == places
        got = {r["id"] for r in report["shelters"]["rows"]}
        assert got == {fid for fid, f in picture["shelters"].items() if f["properties"]["status"] != "closed"}
    # the report's change counts are the rows of changes_between, counted
    counts = history.change_counts(conn, times[0], times[-1], layers=LAYERS)
    rows = history.changes_between(conn, times[0], times[-1], layers=LAYERS)
    for layer in LAYERS:
        for op in ("insert", "update", "delete"):
            want = sum(1 for r in rows if r["layer"] == layer and (r["op"] == op or (op == "delete" and r["op"] == "purge")))
            assert counts[layer][op] == want
    assert counts["hazards"]["delete"] == 1 and ids["zone"] not in _picture(session, times[-1])["hazards"]


def test_before_and_after_differ_exactly_by_the_change(session) -> None:
    times, pictures, touched, ids = _drill(session)
    for k, what in enumerate(touched):
        before, after = _picture(session, times[k]), _picture(session, times[k + 1])
        assert _diff(before, after) == what
    # and the change is of the right kind: insert adds, update alters in place, soft delete and purge remove
    fire = ("incidents", ids["fire"])
    p = [_picture(session, t) for t in times]
    assert fire[1] not in p[0]["incidents"] and fire[1] in p[1]["incidents"]                      # insert
    assert p[2]["incidents"][fire[1]]["properties"]["status"] == "reported"
    assert p[3]["incidents"][fire[1]]["properties"]["status"] == "verified"                       # update
    assert p[3]["incidents"][fire[1]]["properties"]["severity"] == "major"
    assert p[4]["shelters"][ids["shelter"]]["properties"]["occupancy"] == 120
    assert p[5]["incidents"][fire[1]]["geometry"]["coordinates"] == [111.72, 40.83]               # moved
    assert p[4]["incidents"][fire[1]]["geometry"]["coordinates"] == [111.7, 40.82]
    assert fire[1] in p[6]["incidents"] and fire[1] not in p[7]["incidents"]                      # soft delete
    assert ids["zone"] in p[7]["hazards"] and ids["zone"] not in p[8]["hazards"]                   # purge


def test_replay_frames_step_through_the_drill(session) -> None:
    times, pictures, _, _ = _drill(session)
    start, end = times[0], times[-1] + timedelta(milliseconds=1)
    step = (end - start) / 97
    frames = list(history.replay_frames(session.connection(), start, end, step=step, layers=LAYERS))
    assert len(frames) == (end - start) // step + 1 >= 97 and frames[-1]["at"] > end - step
    assert sum(f["changes"] for f in frames[1:]) == len(history.changes_between(
        session.connection(), start, frames[-1]["at"], layers=LAYERS))
    # step k+1 took effect at its history row's changed_at (the statement's time, before our time after it)
    done = [times[0]] + list(session.execute(text(
        "SELECT changed_at FROM feature_history WHERE changed_at > :t ORDER BY changed_at, id"), {"t": times[0]}).scalars())
    assert len(done) == len(times)
    for f in frames:
        k = max(i for i, t in enumerate(done) if t <= f["at"])  # the last step done by the frame's time
        got = {n: {x["id"]: x for x in fc["features"]} for n, fc in f["layers"].items()}
        assert got == pictures[k], f"frame at {f['at']} should show the picture after step {k}"
    for f in frames[::10]:
        assert f["layers"] == history.situation_at(session.connection(), f["at"], layers=LAYERS)


def test_changes_between_and_feature_history(session) -> None:
    times, _, touched, ids = _drill(session)
    conn = session.connection()
    got = history.changes_between(conn, times[0], times[-1], layers=LAYERS)
    assert [(c["layer"], c["feature_id"]) for c in got] == [next(iter(w)) for w in touched]
    assert [c["op"] for c in got] == ["insert", "insert", "update", "update", "update", "insert", "delete", "purge"]
    assert all(c["changed_by"] == "pytest" for c in got)
    assert history.changes_between(conn, times[2], times[3], layers=LAYERS) == got[2:3]
    past = history.feature_history(conn, "incidents", ids["fire"])
    assert [h["op"] for h in past] == ["insert", "update", "update", "delete"]
    assert past[0]["feature"]["properties"]["name"] == "草原火 1"
    assert past[-1]["feature"]["geometry"]["coordinates"] == [111.72, 40.83]  # as it was when deleted
    assert history.feature_history(conn, "incidents", 10**12) == []


def test_change_cursor_and_changes_after(session) -> None:
    conn = session.connection()
    version, xmin = history.change_cursor(conn)
    times, _, touched, _ = _drill(session)
    after = history.changes_after(conn, version)
    assert [(c["layer"], c["feature_id"]) for c in after] == [next(iter(w)) for w in touched]
    # our own transaction is still in progress: its txid is at or above any cursor's xmin taken now
    v2, x2 = history.change_cursor(conn)
    assert history.changes_after(conn, v2) == []
    assert {c["history_id"] for c in history.changes_after(conn, v2, xmin=x2)} >= {c["history_id"] for c in after}
    grouped = history.group_changes(after)
    assert sum(len(g["ids"]) for g in grouped) == len(after)
    assert grouped[-1]["version"] == after[-1]["history_id"]


def test_bad_arguments_name_the_field(session) -> None:
    conn = session.connection()
    with pytest.raises(ValidationError, match="at"):
        history.situation_at(conn, datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="layers"):
        history.situation_at(conn, datetime.now(UTC), layers=["nope"])
    now = datetime.now(UTC)
    with pytest.raises(ValidationError, match="step"):
        list(history.replay_frames(conn, now - timedelta(days=1), now, step=timedelta(seconds=1)))
    with pytest.raises(ValidationError, match="t1"):
        history.changes_between(conn, now, now - timedelta(seconds=1))


def test_the_past_reaches_a_statement_the_connection_has_already_prepared(engine) -> None:
    """psycopg prepares a statement the fifth time a connection runs it, and a prepared statement stays bound to the
    tables it was planned on unless the search path changes (which creating the session's first temporary table
    does): the report at a past time must read the past even so (it read the live tables on a pooled connection
    that had once committed a temporary table)."""
    with engine.connect() as conn:
        with conn.begin():  # a committed temporary table (an import's staging table) creates the session's
            conn.exec_driver_sql("CREATE TEMPORARY TABLE prep_probe (i int) ON COMMIT DROP")  # temporary schema:
        tx = conn.begin()  # the temporary tables of a report no longer change the search path
        s = Session(bind=conn, join_transaction_mode="create_savepoint")
        before = _now(s)
        s.add(Shelter(source="hist-prep", external_id="p1", name="预备", kind="emergency", status="open",
                      capacity=10, occupancy=0, geom=from_shape(Point(111.6, 40.7), srid=4326)))
        s.flush()
        for _ in range(8):  # past psycopg's prepare threshold, on this connection
            live = _live(s)
        assert any(f["properties"]["source"] == "hist-prep" for f in live["shelters"].values())
        with history.as_of(conn, before, layers=LAYERS):
            past = _live(s)
        assert past == _picture(s, before)
        assert not any(f["properties"]["source"] == "hist-prep" for f in past["shelters"].values())
        s.close()
        tx.rollback()


def _paged(s, at, limit: int) -> tuple[dict[str, dict], list[int | None]]:
    """Every feature of LAYERS at ``at``, read ``limit`` at a time with the cursor; and the cursors seen."""
    out: dict[str, dict] = {}
    cursors: list[int | None] = []
    for n in LAYERS:
        out[n], after = {}, None
        while True:
            fc = history.situation_at(s.connection(), at, layers=[n], limit=limit, after_id=after)[n]
            assert fc["numberReturned"] == len(fc["features"]) <= limit
            out[n].update({f["id"]: f for f in fc["features"]})
            after = fc["next_after_id"]
            cursors.append(after)
            if after is None:
                break
    return out, cursors


def test_a_page_of_the_situation_is_the_situation_read_in_pieces(session) -> None:
    """``limit``/``after_id`` (one layer of a million incidents without them is a million dicts) give, page after page,
    the features of the unpaged picture at every step of the drill: the same states, deleted features skipped even
    when a whole page of ids is gone, a cursor only while features remain."""
    s = session
    _drill(s)
    more = [Incident(source="hist", external_id=f"p{i}", name=f"事件 {i}", kind="fire", status="reported",
                     geom=from_shape(Point(111.7 + i / 100, 40.8), srid=4326)) for i in range(7)]
    s.add_all(more)
    s.flush()
    mid = _now(s)
    s.execute(update(Incident).where(Incident.id.in_([m.id for m in more[1:5]])).values(deleted_at=text("now()")))
    s.execute(update(Incident).where(Incident.id == more[5].id).values(name="改名"))
    s.flush()
    for at in (mid, _now(s)):
        whole = _picture(s, at)
        for limit in (1, 2, 3, 100):
            got, cursors = _paged(s, at, limit)
            assert got == whole
            assert cursors.count(None) == len(LAYERS)
    assert [f["properties"]["name"] for f in history.situation_at(
        s.connection(), _now(s), layers=["incidents"], limit=10)["incidents"]["features"]
        if f["properties"]["source"] == "hist"] == ["事件 0", "改名", "事件 6"]
    for bad in ({"limit": 0}, {"limit": 10_001}, {"limit": 5, "after_id": -1}):
        with pytest.raises(ValidationError):
            history.situation_at(s.connection(), _now(s), layers=["incidents"], **bad)
