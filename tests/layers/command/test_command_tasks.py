"""Tasks: dispatch, the one table of transitions, one active task per resource (the database decides), the ETA with
its parameters, moving resources, and the history that replays a task. Real PostGIS, rolled back after each test."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pyproj import Geod
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from layers.command import duty, tasks
from layers.command.errors import ResourceBusyError, TransitionError
from layers.command.tasks import TRANSITIONS, EtaParams
from layers.ingest import writes
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import TASK_STATUSES, DutyLogEntry, FeatureHistory, Resource, Task
from tests.command_scene import HOHHOT, add_hazard, add_incident, add_resource, scene

pytestmark = pytest.mark.db

GEOD = Geod(ellps="WGS84")
T0 = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)


def _status(s, rid: int) -> str:
    return s.execute(select(Resource.status).where(Resource.id == rid)).scalar_one()


def _task_in(s, status: str, rid: int, iid: int) -> int:
    """A task of resource ``rid`` moved along the one path to ``status``."""
    path = {"assigned": [], "en_route": ["en_route"], "on_scene": ["en_route", "on_scene"],
            "completed": ["en_route", "on_scene", "completed"], "cancelled": ["cancelled"]}[status]
    task = tasks.dispatch(s, resource_id=rid, incident_id=iid, user="disp-a", now=T0)
    for i, step in enumerate(path):
        tasks.transition(s, task["id"], step, user="disp-b", now=T0 + timedelta(minutes=10 * (i + 1)))
    return int(task["id"])


def test_dispatch_deploys_the_resource_and_records_eta_who_and_when(session) -> None:
    sc = scene(session)
    eta = EtaParams(detour_factor=1.4, speed_kmh={"rescue_team": 60.0})
    task = tasks.dispatch(session, resource_id=sc["near"], incident_id=sc["incident"], note="搜救被困人员",
                          user="disp-a", eta=eta, now=T0)
    _, _, d = GEOD.inv(HOHHOT[0] + 0.10, HOHHOT[1], *HOHHOT)
    assert task["status"] == "assigned" and task["assigned_by"] == "disp-a" and task["assigned_at"] == T0
    assert task["distance_m"] == pytest.approx(d, abs=1e-6)
    assert task["eta_s"] == pytest.approx(d * 1.4 / (60 / 3.6), rel=1e-12)
    assert (task["eta_speed_kmh"], task["eta_detour"]) == (60.0, 1.4)
    assert task["eta"] == {"method": "geodesic_x_detour_over_speed", "speed_kmh": 60.0, "detour_factor": 1.4}
    assert task["allowed"] == ["en_route", "cancelled"] and task["target"] == "incident"
    assert _status(session, sc["near"]) == "deployed"
    line = session.execute(select(DutyLogEntry).where(DutyLogEntry.task_id == task["id"])).scalar_one()
    assert (line.kind, line.code, line.author, line.at) == ("dispatch", "dispatch", "disp-a", T0)
    assert line.params["resource"] == "近队" and line.params["distance_m"] == pytest.approx(d, abs=0.1)


def test_a_task_goes_its_way_with_who_and_when_and_frees_its_resource(session) -> None:
    sc = scene(session)
    tid = _task_in(session, "completed", sc["near"], sc["incident"])
    row = session.execute(select(Task).where(Task.id == tid)).scalar_one()
    assert row.status == "completed"
    assert (row.en_route_at, row.on_scene_at, row.completed_at) == (T0 + timedelta(minutes=10),
                                                                    T0 + timedelta(minutes=20),
                                                                    T0 + timedelta(minutes=30))
    assert {row.en_route_by, row.on_scene_by, row.completed_by} == {"disp-b"}
    assert _status(session, sc["near"]) == "available"
    codes = session.execute(select(DutyLogEntry.code).where(DutyLogEntry.task_id == tid)
                            .order_by(DutyLogEntry.at)).scalars().all()
    assert codes == ["dispatch", "task.en_route", "task.on_scene", "task.completed"]
    # a cancelled task frees its resource too, and the freed resource can be sent again
    tid2 = _task_in(session, "cancelled", sc["near"], sc["incident"])
    assert _status(session, sc["near"]) == "available"
    assert tasks.dispatch(session, resource_id=sc["near"], incident_id=sc["incident"], user="x")["id"] > tid2


@pytest.mark.parametrize(("start", "to"), [(s, to) for s, to in itertools.product(TASK_STATUSES, TASK_STATUSES)
                                           if to not in TRANSITIONS[s]])
def test_every_illegal_transition_is_refused_naming_the_allowed_ones(session, start: str, to: str) -> None:
    sc = scene(session)
    tid = _task_in(session, start, sc["near"], sc["incident"])
    before = session.execute(select(Task.__table__).where(Task.id == tid)).mappings().one()
    lines = session.execute(select(func.count()).select_from(DutyLogEntry)).scalar_one()
    with pytest.raises(TransitionError) as e:
        tasks.transition(session, tid, to, user="disp-c")
    assert e.value.allowed == list(TRANSITIONS[start]) and e.value.value == to and e.value.field == "status"
    assert e.value.context == {"task_id": tid, "from": start} and e.value.code == "illegal_transition"
    assert session.execute(select(Task.__table__).where(Task.id == tid)).mappings().one() == before
    assert session.execute(select(func.count()).select_from(DutyLogEntry)).scalar_one() == lines


def test_the_transition_table_is_the_documented_life_of_a_task() -> None:
    assert dict(TRANSITIONS) == {"assigned": ("en_route", "cancelled"), "en_route": ("on_scene", "cancelled"),
                                 "on_scene": ("completed", "cancelled"), "completed": (), "cancelled": ()}
    assert tasks.TERMINAL == ("completed", "cancelled")


def test_the_database_itself_refuses_a_second_active_task_per_resource(session) -> None:
    sc = scene(session)
    first = tasks.dispatch(session, resource_id=sc["near"], incident_id=sc["incident"], user="a")
    with pytest.raises(IntegrityError, match="uq_tasks_active_resource"), session.begin_nested():
        session.execute(insert(Task).values(resource_id=sc["near"], incident_id=sc["incident"], status="en_route",
                                            assigned_by="sql"))
    # finished tasks do not hold the resource: any number of them may exist
    tasks.transition(session, first["id"], "cancelled", user="a")
    session.execute(insert(Task).values(resource_id=sc["near"], incident_id=sc["incident"], status="completed",
                                        assigned_by="sql"))
    with pytest.raises(IntegrityError, match="one_target"), session.begin_nested():
        session.execute(insert(Task).values(resource_id=sc["far"], status="assigned", assigned_by="sql"))


def test_a_busy_or_unavailable_resource_is_refused_naming_what_holds_it(session) -> None:
    sc = scene(session)
    won = tasks.dispatch(session, resource_id=sc["near"], incident_id=sc["incident"], user="disp-a", now=T0)
    other = add_incident(session, 111.9, 40.9)
    with pytest.raises(ResourceBusyError) as e:
        tasks.dispatch(session, resource_id=sc["near"], incident_id=other, user="disp-b")
    assert e.value.context["task"]["id"] == won["id"] and e.value.context["task"]["assigned_by"] == "disp-a"
    assert f"task {won['id']}" in str(e.value) and e.value.field == "resource_id"
    with pytest.raises(ResourceBusyError) as e2:
        tasks.dispatch(session, resource_id=sc["broken"], incident_id=other, user="disp-b")
    assert e2.value.context == {"resource_id": sc["broken"], "resource_status": "unavailable"}
    assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 1


def test_bad_dispatch_input_names_the_field_and_writes_nothing(session) -> None:
    sc = scene(session)
    hz = add_hazard(session, "MULTIPOLYGON(((111 40,112 40,112 41,111 41,111 40)))")
    closed = add_incident(session, 111.8, 40.8, status="closed")
    cases = [
        ({"resource_id": sc["near"]}, ValidationError, "incident_id"),
        ({"resource_id": sc["near"], "incident_id": sc["incident"], "hazard_id": hz}, ValidationError, "incident_id"),
        ({"resource_id": "12", "incident_id": sc["incident"]}, ValidationError, "resource_id"),
        ({"resource_id": sc["near"], "incident_id": closed}, ValidationError, "incident_id"),
        ({"resource_id": sc["near"], "incident_id": sc["incident"], "note": " "}, ValidationError, "note"),
        ({"resource_id": 10**12, "incident_id": sc["incident"]}, NotFoundError, None),
        ({"resource_id": sc["near"], "incident_id": 10**12}, NotFoundError, None),
    ]
    for kw, err, field in cases:
        with pytest.raises(err) as e:
            tasks.dispatch(session, user="x", **kw)
        if field:
            assert e.value.problems[0].field == field, kw
    assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 0
    assert _status(session, sc["near"]) == "available"


def test_a_hazard_target_is_reached_at_its_nearest_point(session) -> None:
    sc = scene(session)
    # a square west of the rescue team: its nearest point is on the east edge, at the team's latitude
    hz = add_hazard(session, f"MULTIPOLYGON((({HOHHOT[0] - 0.5} 40.5,{HOHHOT[0]} 40.5,{HOHHOT[0]} 41.2,"
                             f"{HOHHOT[0] - 0.5} 41.2,{HOHHOT[0] - 0.5} 40.5)))")
    task = tasks.dispatch(session, resource_id=sc["near"], hazard_id=hz, user="x")
    assert task["target"] == "hazard" and task["target_id"] == hz
    assert (task["target_lon"], task["target_lat"]) == pytest.approx((HOHHOT[0], HOHHOT[1]))
    _, _, d = GEOD.inv(HOHHOT[0] + 0.10, HOHHOT[1], HOHHOT[0], HOHHOT[1])
    assert task["distance_m"] == pytest.approx(d, abs=1e-6)


def test_a_moving_resource_updates_distance_and_eta_left(session) -> None:
    sc = scene(session)
    eta = EtaParams(detour_factor=1.2, speed_kmh={"rescue_team": 50.0})
    task = tasks.dispatch(session, resource_id=sc["far"], incident_id=sc["incident"], user="x", eta=eta)
    tasks.transition(session, task["id"], "en_route", user="x")
    moved = writes.patch_feature(session, "resources", sc["far"], {"geometry": {"type": "Point",
                                                                              "coordinates": [111.95, 40.90]}},
                                 user="token:gps-feed")
    assert set(moved["changed"]) == {"geom"}  # a position through the write API, as a vehicle feed sends it
    now = tasks.get_task(session, task["id"], eta=eta)
    _, _, d = GEOD.inv(111.95, 40.90, *HOHHOT)
    assert now["distance_left_m"] == pytest.approx(d, abs=1e-6)
    assert now["eta_left_s"] == pytest.approx(d * 1.2 / (50 / 3.6), rel=1e-12)
    assert now["distance_m"] == task["distance_m"]  # the dispatch's own figures stay as they were
    tasks.transition(session, task["id"], "on_scene", user="x")
    assert tasks.get_task(session, task["id"])["distance_left_m"] == 0.0


def test_a_tasks_history_replays_its_states(session) -> None:
    sc = scene(session)

    def clock() -> datetime:
        return session.execute(select(func.clock_timestamp())).scalar_one()

    moments = [clock()]
    task = tasks.dispatch(session, resource_id=sc["near"], incident_id=sc["incident"], user="disp-a")
    for status in ("en_route", "on_scene", "completed"):
        moments.append(clock())
        tasks.transition(session, task["id"], status, user=f"disp-{status}")
    moments.append(clock())
    states = tasks.task_history(session, task["id"])
    assert [s["status"] for s in states] == ["assigned", "en_route", "on_scene", "completed"]
    assert [s["changed_by"] for s in states] == ["disp-a", "disp-en_route", "disp-on_scene", "disp-completed"]
    assert [s["op"] for s in states] == ["insert", "update", "update", "update"]
    assert all(moments[i] < states[i]["changed_at"] < moments[i + 1] for i in range(4))
    # the state at every moment between two changes is the one before it
    seen = [next((x["status"] for x in tasks.tasks_at(session, m) if x["id"] == task["id"]), None) for m in moments]
    assert seen == [None, "assigned", "en_route", "on_scene", "completed"]
    # and the resource's own history shows deployed, then available again
    rows = session.execute(select(FeatureHistory.row["status"].astext).where(
        FeatureHistory.layer == "resources", FeatureHistory.feature_id == sc["near"]).order_by(FeatureHistory.id)
    ).scalars().all()
    assert rows == ["available", "deployed", "available"]


def test_dispatch_is_announced_on_the_change_channel(session) -> None:
    sc = scene(session)
    session.execute(text("LISTEN sitroom_changes"))  # notifications are queued until commit: check the history
    tasks.dispatch(session, resource_id=sc["near"], incident_id=sc["incident"], user="x")
    layers = set(session.execute(select(FeatureHistory.layer).where(FeatureHistory.txid == func.txid_current()))
                 .scalars())
    assert {"tasks", "resources", "duty_log"} <= layers


def test_eta_params_come_from_the_settings() -> None:
    from layers.store.settings import Settings

    p = EtaParams.from_settings(Settings(eta_detour_factor=1.5, eta_speed_kmh={"boat": 30},
                                         eta_detour_by_kind={"boat": 1.1}))
    assert p.for_kind("boat") == (30.0, 1.1)
    assert p.for_kind("ambulance") == (55.0, 1.5)  # unset kinds keep their default speed
    with pytest.raises(ValueError, match="eta_speed_kmh: unknown resource kind 'tank'"):
        Settings(eta_speed_kmh={"tank": 20})
    with pytest.raises(ValueError, match="eta_speed_kmh.boat must be km/h in"):
        Settings(eta_speed_kmh={"boat": 0})
    with pytest.raises(ValueError, match="eta_detour_by_kind.boat must be a factor in"):
        Settings(eta_detour_by_kind={"boat": 0.5})


def test_list_and_counts(session) -> None:
    sc = scene(session)
    a = _task_in(session, "on_scene", sc["near"], sc["incident"])
    b = _task_in(session, "completed", sc["engine"], sc["incident"])
    assert tasks.status_counts(session) == {"assigned": 0, "en_route": 0, "on_scene": 1, "completed": 1,
                                            "cancelled": 0}
    assert [t["id"] for t in tasks.list_tasks(session, status=["on_scene"])] == [a]
    assert {t["id"] for t in tasks.list_tasks(session, incident_id=sc["incident"])} == {a, b}
    with pytest.raises(ValidationError, match="status"):
        tasks.list_tasks(session, status=["lost"])
    assert tasks.active_task_of(session, sc["near"])["id"] == a
    assert tasks.active_task_of(session, sc["engine"]) is None
    assert duty.entries(session, kinds=["task"], limit=10)[0]["task_id"] in (a, b)
    add_resource(session, 111.0, 40.0)  # unrelated rows change nothing
    assert tasks.status_counts(session)["on_scene"] == 1


def test_a_position_feed_is_checked_like_an_import(session) -> None:
    rid = add_resource(session, *HOHHOT)
    for geometry in ({"type": "LineString", "coordinates": [[111, 40], [112, 41]]},
                     {"type": "Point", "coordinates": [40.8, 111.7]},  # lat/lon swapped
                     {"type": "Point"}, "here"):
        with pytest.raises(ValidationError) as e:
            writes.patch_feature(session, "resources", rid, {"geometry": geometry})
        assert e.value.problems[0].field.startswith("geometry"), geometry  # the path: geometry.coordinates
    assert session.execute(select(func.ST_X(Resource.geom)).where(Resource.id == rid)).scalar_one() == HOHHOT[0]
    with pytest.raises(ValidationError, match="cannot be changed"):
        writes.patch_feature(session, "shelters", 1, {"geometry": {"type": "Point", "coordinates": list(HOHHOT)}})
