"""Dispatchers racing for the same resources: the database lets exactly one task per resource through, and the
losers are told which task won. These tests commit, so they run on a database of their own."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from layers.command import tasks
from layers.command.errors import ResourceBusyError
from layers.store.models import ACTIVE_TASK_STATUSES, DutyLogEntry, Resource, Task
from tests.command_scene import add_incident, add_resource
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

N_RESOURCES, N_REQUESTS, N_THREADS = 10, 50, 8


@pytest.fixture(scope="module")
def race_engine(db_url: str) -> Iterator[Engine]:
    url = sibling_database(db_url, "race")
    eng = create_engine(url, pool_size=N_THREADS + 2)
    try:
        yield eng
    finally:
        eng.dispose()
        drop_database(url)


def _scene(eng: Engine) -> tuple[list[int], list[int]]:
    with eng.begin() as c:
        c.execute(text("TRUNCATE tasks, resources, incidents CASCADE"))
        rids = [add_resource(c, 111.0 + 0.05 * i, 40.5, name=f"队{i}") for i in range(N_RESOURCES)]  # type: ignore[arg-type]
        iids = [add_incident(c, 111.3 + 0.1 * j, 40.8, name=f"事件{j}") for j in range(5)]  # type: ignore[arg-type]
    return rids, iids


def _dispatch(eng: Engine, rid: int, iid: int, user: str) -> tuple[str, Any]:
    try:
        with eng.begin() as c:
            return "created", tasks.dispatch(c, resource_id=rid, incident_id=iid, user=user)["id"]
    except ResourceBusyError as e:
        return "busy", e


def test_fifty_dispatches_of_ten_resources_from_eight_threads(race_engine: Engine) -> None:
    rids, iids = _scene(race_engine)
    rng = random.Random(15)
    requests = [(rids[i % N_RESOURCES], rng.choice(iids), f"disp-{i % N_THREADS}") for i in range(N_REQUESTS)]
    rng.shuffle(requests)
    start = threading.Barrier(N_THREADS)

    def run(chunk: list[tuple[int, int, str]]) -> list[tuple[int, str, Any]]:
        start.wait()  # every thread starts at once
        return [(rid, *_dispatch(race_engine, rid, iid, user)) for rid, iid, user in chunk]

    chunks = [requests[k::N_THREADS] for k in range(N_THREADS)]
    with ThreadPoolExecutor(N_THREADS) as pool:
        results = [r for part in pool.map(run, chunks) for r in part]
    outcome = Counter(kind for _, kind, _ in results)
    assert outcome == {"created": N_RESOURCES, "busy": N_REQUESTS - N_RESOURCES}
    winner = {rid: tid for rid, kind, tid in results if kind == "created"}
    assert sorted(winner) == sorted(rids)  # one winner per resource
    for rid, kind, err in results:
        if kind == "busy":  # every loser is told the task that holds its resource
            assert err.context["task"]["id"] == winner[rid], (rid, err)
    with race_engine.connect() as c:  # the store agrees
        per_resource = dict(c.execute(select(Task.resource_id, func.count()).group_by(Task.resource_id)).all())
        assert per_resource == {rid: 1 for rid in rids}
        assert c.execute(select(func.count()).select_from(Task)
                         .where(Task.status.in_(ACTIVE_TASK_STATUSES))).scalar_one() == N_RESOURCES
        assert set(c.execute(select(Resource.status)).scalars()) == {"deployed"}
        assert c.execute(select(func.count()).select_from(DutyLogEntry)
                         .where(DutyLogEntry.kind == "dispatch")).scalar_one() >= N_RESOURCES


def test_a_dispatcher_who_read_the_resource_as_available_loses_to_the_one_who_committed(race_engine: Engine) -> None:
    """The exact race: B checks the resource while A's task is not committed yet, so only the unique index can stop
    B; B waits on it, A commits, and B is told A's task."""
    rids, iids = _scene(race_engine)
    a_conn = race_engine.connect()
    a_tx = a_conn.begin()
    a_task = tasks.dispatch(a_conn, resource_id=rids[0], incident_id=iids[0], user="disp-a")
    got: dict[str, Any] = {}

    def b() -> None:
        got["b"] = _dispatch(race_engine, rids[0], iids[1], "disp-b")

    thread = threading.Thread(target=b)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        with race_engine.connect() as watch:  # wait until B blocks on A's uncommitted index entry
            while True:
                waiting = watch.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
                    "'INSERT INTO tasks%'")).scalar_one()
                watch.commit()
                if waiting:
                    break
                assert time.monotonic() < deadline, "the second dispatcher never waited on the first"
                time.sleep(0.02)
        a_tx.commit()
    finally:
        a_conn.close()
        thread.join(30)
    kind, err = got["b"]
    assert kind == "busy" and err.context["task"]["id"] == a_task["id"]
    assert f"task {a_task['id']}" in str(err)
