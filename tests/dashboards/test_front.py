"""The asyncio front of ``sitroom serve`` (``dashboards.front``) against a real server: slow clients and live push.

A real ``sitroom serve`` (gunicorn, uvicorn workers) in production mode on a database of its own. Slow clients
(issue 17 item 7): 40 sockets that send a request head a line at a time and never finish it, a body that never
arrives, a body declared over the upload limit; meanwhile ordinary requests must still answer, and every slow socket
is answered 408 and closed by the server. Live push: the stream goes through the same authentication as every API
route (401 without a token, 200 with one), and a committed change arrives on it.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import Engine, create_engine, text

from tests.conftest import api_token, drop_database, sibling_database
from tests.dashboards.test_live import Stream
from tests.e2e.conftest import serving

pytestmark = pytest.mark.db

HEAD_TIMEOUT_S = 3.0
SLOW_SOCKETS = 40


@pytest.fixture(scope="module")
def front_db(db_url: str) -> Iterator[tuple[str, Engine]]:
    url = sibling_database(db_url, "front")
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        drop_database(url)


@pytest.fixture(scope="module")
def front(front_db: tuple[str, Engine], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("front") / "serve.log"
    env = {"SITROOM_MODE": "production", "SITROOM_SECRET_KEY": secrets.token_urlsafe(48),
           "SITROOM_MAX_UPLOAD_MB": "1"}
    args = ["--head-timeout", str(HEAD_TIMEOUT_S), "--body-timeout", "2", "--min-body-rate", "1000000"]
    with serving(front_db[0], Path(log), workers=1, threads=2, args=args, env=env) as (base, _):
        yield base


def _connect(base: str) -> socket.socket:
    u = urlsplit(base)
    return socket.create_connection((u.hostname, u.port), timeout=30)


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection (at most ``timeout`` seconds)."""
    sock.settimeout(timeout)
    out = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(4096):
            out += chunk
    return out


def test_slow_request_heads_do_not_starve_normal_requests(front: str) -> None:
    slow = [_connect(front) for _ in range(SLOW_SOCKETS)]
    stop = threading.Event()

    def trickle() -> None:  # a header line now and then, never the blank line that ends the head
        for s in slow:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        while not stop.wait(0.5):
            for s in slow:
                with contextlib.suppress(OSError):
                    s.sendall(b"X-Slow: 1\r\n")

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        for _ in range(5):  # two threads serve the app: with gthread, 40 slow sockets held every one
            r = requests.get(f"{front}/api/v1/health", timeout=5)
            assert r.status_code == 200
        started = time.monotonic()
        answers = [_answer(s, HEAD_TIMEOUT_S + 10) for s in slow]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:40] for a in answers}
        assert time.monotonic() - started < HEAD_TIMEOUT_S + 10
    finally:
        stop.set()
        t.join(5)
        for s in slow:
            s.close()


def test_an_idle_connection_is_closed_without_an_unsolicited_answer(front: str) -> None:
    # a browser opens connections ahead of its requests (and keeps them after one); a 408 written on one that has sent
    # nothing would be read as the answer to the request the browser sends on it at that moment
    fresh = _connect(front)
    kept = _connect(front)
    try:
        kept.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = kept.makefile("rb")
        kept.settimeout(30)
        assert reply.readline().startswith(b"HTTP/1.1 200")
        head = dict(line.decode().rstrip("\r\n").lower().split(": ", 1) for line in iter(reply.readline, b"\r\n"))
        assert "close" not in head.get("connection", "")
        assert reply.read(int(head["content-length"]))  # the whole answer read: the connection is idle now
        started = time.monotonic()
        assert _answer(fresh, HEAD_TIMEOUT_S + 10) == b""  # closed by the server, not a byte written
        assert _answer(kept, HEAD_TIMEOUT_S + 10) == b""
        assert time.monotonic() - started < HEAD_TIMEOUT_S + 10
    finally:
        fresh.close()
        kept.close()


def test_a_request_that_arrived_during_the_previous_answer_is_not_timed(front: str, front_db) -> None:
    # two requests in one write: the second (a live stream) waits in uvicorn's pipeline and starts when the first
    # answer completes; the head deadline, armed at that moment, closed the stream after HEAD_TIMEOUT_S
    token = api_token(front_db[1], "front-pipeline", access="read")
    s = _connect(front)
    try:
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /api/v1/events?layers=incidents HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                  b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
        got = b""
        s.settimeout(30)
        while b"event: hello" not in got:
            chunk = s.recv(65536)
            assert chunk, got[-300:]
            got += chunk
        assert got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1 200") == 2
        s.settimeout(HEAD_TIMEOUT_S + 2)  # past the deadline (and before the first heartbeat): still open
        with pytest.raises(TimeoutError):
            assert s.recv(65536) != b"", "the server closed the stream"
    finally:
        s.close()


def test_slow_and_oversized_bodies_are_refused_before_the_app(front: str) -> None:
    s = _connect(front)
    try:
        s.sendall(b"POST /api/v1/analysis/impact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{\"geometry\":")
        r = requests.get(f"{front}/api/v1/health", timeout=5)  # meanwhile
        assert r.status_code == 200
        answer = _answer(s, 20)
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    finally:
        s.close()
    s = _connect(front)  # 2 MB declared, 1 MB allowed: refused at once, before a byte of it is read
    try:
        s.sendall(b"POST /api/v1/analysis/impact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2097152\r\n\r\n")
        answer = _answer(s, 10)
        assert answer.startswith(b"HTTP/1.1 413") and b"request_entity_too_large" in answer
    finally:
        s.close()


def test_event_stream_has_the_same_auth_and_pushes_a_commit(front: str, front_db: tuple[str, Engine]) -> None:
    url, engine = front_db
    assert requests.get(f"{front}/api/v1/events", timeout=5).status_code == 401
    token = api_token(engine, "front-test", access="read")
    bad = requests.get(f"{front}/api/v1/events?layers=nope", timeout=5, headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 400
    stream = Stream(f"{front}/api/v1/events?layers=incidents", headers={"Authorization": f"Bearer {token}"})
    try:
        assert stream.next(("hello",), timeout=10) is not None
        with engine.begin() as c:
            fid = c.execute(text(
                "INSERT INTO incidents (source, external_id, name, kind, status, severity, geom) VALUES ('front', "
                "'f1', 'front', 'fire', 'reported', 'general', ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326)) "
                "RETURNING id")).scalar_one()
        ev = stream.next(("change",), timeout=10)
        assert ev is not None and ev[1]["layer"] == "incidents" and fid in ev[1]["ids"]
    finally:
        stream.close()
