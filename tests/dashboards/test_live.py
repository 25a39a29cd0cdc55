"""Live push and history over HTTP, against a real threaded server and a real PostGIS database of its own.

The server is Werkzeug's threaded server in this process (one process = one listener, as in a gunicorn worker);
events are read by a plain HTTP client from ``/api/v1/events``. Changes are committed by a separate engine, as a
feed or an analyst would. The browser side is tested in ``tests/e2e/test_live.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import Engine, create_engine, text
from werkzeug.serving import make_server

from dashboards import live
from dashboards.app import create_app
from layers.store.settings import Settings
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

DEADLINE_S = 2.0


@pytest.fixture(scope="module")
def live_db(db_url: str) -> Iterator[tuple[str, Engine]]:
    """A database of its own (the tests commit), migrated, dropped at the end."""
    live_url = sibling_database(db_url, "live")
    engine = create_engine(live_url)
    try:
        yield live_url, engine
    finally:
        engine.dispose()
        for hub in list(live._hubs.values()):
            hub.stop()
        live._hubs.clear()
        drop_database(live_url)


@pytest.fixture(scope="module")
def server(live_db) -> Iterator[str]:
    app = create_app(Settings(database_url=live_db[0]))
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()


class Stream:
    """An SSE client in a thread: parsed events ``(kind, data, id, received_at)`` go to ``self.events``."""

    def __init__(self, url: str, *, last_event_id: str | None = None, headers: dict[str, str] | None = None) -> None:
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.conn.request("GET", f"{u.path}?{u.query}" if u.query else u.path,
                          headers={**({"Last-Event-ID": last_event_id} if last_event_id else {}), **(headers or {})})
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.events: queue.Queue[tuple[str, dict, str | None, float]] = queue.Queue()
        self.skipped: list[tuple[str, dict, str | None, float]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        kind, data, eid = "message", "", None
        try:
            while line := self.resp.readline():
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        self.events.put((kind, json.loads(data), eid, time.monotonic()))
                    kind, data, eid = "message", "", None
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
                elif line.startswith("id: "):
                    eid = line[4:]
        except Exception:  # noqa: BLE001, S110 - the stream was closed by the test
            pass

    def next(self, kinds: tuple[str, ...] = ("change",), timeout: float = DEADLINE_S):
        """The next event of one of ``kinds`` within ``timeout`` seconds, else None (others are kept in order)."""
        for i, ev in enumerate(self.skipped):
            if ev[0] in kinds:
                return self.skipped.pop(i)
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if ev[0] in kinds:
                return ev
            self.skipped.append(ev)
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def _insert(engine: Engine, name: str, *, commit: bool = True) -> int:
    with engine.connect() as c:
        fid = c.execute(text(
            "INSERT INTO incidents (source, external_id, name, kind, status, severity, geom) "
            "VALUES ('live', :n, :m, 'fire', 'reported', 'general', ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326)) "
            "RETURNING id"), {"n": name, "m": name}).scalar_one()
        c.commit() if commit else c.rollback()
    return int(fid)


def _changes_until(stream: Stream, fid: int, timeout: float = DEADLINE_S) -> list[tuple]:
    """Change events up to and including the one naming incident ``fid``; fails after ``timeout``."""
    seen = []
    end = time.monotonic() + timeout
    while True:
        ev = stream.next(timeout=max(0.0, end - time.monotonic()))
        assert ev is not None, f"no event for incident {fid} within {timeout} s (got {seen})"
        seen.append(ev)
        if ev[1]["layer"] == "incidents" and fid in ev[1]["ids"]:
            return seen


def test_committed_insert_arrives_within_two_seconds_and_rolled_back_never(server, live_db) -> None:
    _, engine = live_db
    s = Stream(f"{server}/api/v1/events")
    try:
        hello = s.next(("hello",), timeout=5)
        assert hello is not None and hello[1]["db"] is True and hello[2]
        committed_at = time.monotonic()
        fid = _insert(engine, "committed")
        ev = _changes_until(s, fid)[-1]
        assert ev[1]["op"] == "insert" and ev[1]["ids"] == [fid]
        assert ev[3] - committed_at < DEADLINE_S
        with engine.connect() as c:
            assert ev[1]["version"] >= c.execute(text("SELECT max(id) FROM feature_history WHERE feature_id = :f "
                                                      "AND layer = 'incidents'"), {"f": fid}).scalar_one()
        ghost = _insert(engine, "rolled back", commit=False)
        marker = _insert(engine, "marker")
        before_marker = _changes_until(s, marker)
        assert all(ghost not in e[1]["ids"] for e in before_marker), before_marker
        assert s.next(timeout=0.5) is None  # nothing else: the rolled-back insert was never announced
    finally:
        s.close()


def test_layer_filter(server, live_db) -> None:
    _, engine = live_db
    s = Stream(f"{server}/api/v1/events?layers=shelters")
    try:
        assert s.next(("hello",), timeout=5) is not None
        _insert(engine, "not for shelter walls")
        with engine.connect() as c:
            sid = c.execute(text("INSERT INTO shelters (source, name, kind, status, capacity, geom) VALUES "
                                 "('live', 's', 'emergency', 'open', 10, ST_SetSRID(ST_MakePoint(111, 40), 4326)) "
                                 "RETURNING id")).scalar_one()
            c.commit()
        ev = s.next()
        assert ev is not None and ev[1]["layer"] == "shelters" and ev[1]["ids"] == [sid]
    finally:
        s.close()


def test_reconnect_with_last_event_id_gets_the_missed_changes(server, live_db) -> None:
    _, engine = live_db
    s = Stream(f"{server}/api/v1/events")
    seen = _insert(engine, "seen")
    last_id = [e[2] for e in _changes_until(s, seen) if e[2]][-1]  # what the browser's EventSource would send back
    s.close()
    missed = [_insert(engine, f"missed {k}") for k in range(3)]
    with engine.connect() as c:  # an update and a soft delete while away, too
        c.execute(text("UPDATE incidents SET status = 'verified' WHERE id = :i"), {"i": missed[0]})
        c.execute(text("UPDATE incidents SET deleted_at = now() WHERE id = :i"), {"i": missed[1]})
        c.commit()
    s2 = Stream(f"{server}/api/v1/events", last_event_id=last_id)
    try:
        got: dict[str, set[int]] = {}
        while (ev := s2.next(timeout=0.5)) is not None:
            got.setdefault(ev[1]["op"], set()).update(ev[1]["ids"])
        assert set(missed) <= got.get("insert", set())
        assert missed[0] in got.get("update", set()) and missed[1] in got.get("delete", set())
    finally:
        s2.close()


def test_unknown_event_id_asks_for_a_resync(server) -> None:
    s = Stream(f"{server}/api/v1/events", last_event_id="not-a-cursor")
    try:
        ev = s.next(("resync",), timeout=5)
        assert ev is not None and ev[1]["reason"]
    finally:
        s.close()


def test_listener_survives_its_connection_being_killed(server, live_db) -> None:
    """The database side of a restart: the listener's backend is terminated; it reconnects and nothing is lost."""
    _, engine = live_db
    s = Stream(f"{server}/api/v1/events")
    try:
        assert s.next(("hello",), timeout=5) is not None
        hub = next(h for h in live._hubs.values() if h.connected)
        pid, connects = hub.backend_pid, hub.connects
        with engine.connect() as c:
            assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one() is True
            c.commit()
        fid = _insert(engine, "while the listener was away")  # committed before it is back: caught up from history
        down = s.next(("status",), timeout=5)
        assert down is not None and down[1]["db"] is False
        up = s.next(("status",), timeout=10)
        assert up is not None and up[1]["db"] is True
        assert hub.connects == connects + 1 and hub.backend_pid != pid
        ev = _changes_until(s, fid, timeout=5)[-1]
        assert ev[1]["op"] == "insert"
        after = _insert(engine, "after the reconnect")
        _changes_until(s, after)
    finally:
        s.close()


def _wait_all_closed() -> None:
    for _ in range(50):  # a closed stream gives its slot back once the server notices it (probe writes)
        if live.open_streams() == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{live.open_streams()} streams still open 10 s after their clients left")


def test_streams_per_process_are_capped(server) -> None:
    _wait_all_closed()
    streams = [Stream(f"{server}/api/v1/events") for _ in range(live.MAX_STREAMS)]
    try:
        assert all(s.next(("hello",), timeout=5) is not None for s in streams)
        r = requests.get(f"{server}/api/v1/events", timeout=5)
        assert r.status_code == 503 and r.headers["Retry-After"] and r.json()["error"]["code"] == "too_many_streams"
    finally:
        for s in streams:
            s.close()
    _wait_all_closed()
    again = Stream(f"{server}/api/v1/events")  # closed streams gave their slots back
    try:
        assert again.next(("hello",), timeout=5) is not None
    finally:
        again.close()


def test_situation_api_before_and_after_differ_by_the_change(server, live_db) -> None:
    _, engine = live_db
    fid = _insert(engine, "api")

    def picture() -> tuple[str, dict[int, dict]]:
        with engine.connect() as c:
            at = c.execute(text("SELECT clock_timestamp()")).scalar_one().isoformat()
        r = requests.get(f"{server}/api/v1/situation", params={"at": at, "layers": "incidents,shelters"}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert list(body["layers"]) == ["incidents", "shelters"]
        return at, {f["id"]: f for f in body["layers"]["incidents"]["features"]}

    _, before = picture()
    with engine.connect() as c:
        c.execute(text("UPDATE incidents SET severity = 'major' WHERE id = :i"), {"i": fid})
        c.commit()
    _, after = picture()
    assert {k for k in set(before) | set(after) if before.get(k) != after.get(k)} == {fid}
    assert before[fid]["properties"]["severity"] == "general" and after[fid]["properties"]["severity"] == "major"
    r = requests.get(f"{server}/api/v1/history", params={"layer": "incidents", "id": fid}, timeout=10)
    assert [h["op"] for h in r.json()["history"]] == ["insert", "update"]
    bad = requests.get(f"{server}/api/v1/situation", params={"at": "yesterday"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "at"
    naive = requests.get(f"{server}/api/v1/situation", params={"at": datetime.now(UTC).replace(tzinfo=None)
                                                                    .isoformat()}, timeout=10)
    assert naive.status_code == 400
    assert requests.get(f"{server}/api/v1/history", params={"layer": "incidents", "id": 10**9},
                        timeout=10).status_code == 404


def test_replay_component_shows_the_picture_at_the_replay_time(live_db) -> None:
    """The replay controls build in both languages, register their callback, and in replay mode the page gets
    exactly the history's picture at the slider's time (live mode: None, the page draws the live picture)."""
    import dash

    from dashboards.components import replay
    from layers.read import history

    url, engine = live_db
    app = create_app(Settings(database_url=url))
    with app.server.test_request_context("/wall?lang=en"):
        ui = replay.replay_controls("t", hours=6, lang="en")
    assert "● Live" in json.dumps(ui.to_plotly_json(), default=str, ensure_ascii=False)
    before = len(dash._callback.GLOBAL_CALLBACK_LIST)
    replay.register_replay("t")
    assert len(dash._callback.GLOBAL_CALLBACK_LIST) == before + 1
    dash._callback.GLOBAL_CALLBACK_LIST.pop()  # not for this process's next app
    fid = _insert(engine, "replayed")
    with engine.connect() as c:
        at = c.execute(text("SELECT clock_timestamp()")).scalar_one()
        c.execute(text("UPDATE incidents SET status = 'closed' WHERE id = :i"), {"i": fid})
        c.commit()
    state = {"mode": "replay", "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    with app.server.app_context():
        assert replay.replay_situation({"mode": "live", "at": None}) is None
        got = replay.replay_situation(state, layers=["incidents"])
    with engine.connect() as c:
        assert got == history.situation_at(c, at, layers=["incidents"])
    mine = {f["id"]: f for f in got["incidents"]["features"]}
    assert mine[fid]["properties"]["status"] == "reported"  # as it was then, not as it is now
