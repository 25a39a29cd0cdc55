"""Live push: every committed change to the store reaches every open dashboard as a server-sent event.

Public (HTTP): ``GET /api/v1/events`` (``text/event-stream``).
Public (Python): :data:`CHANNEL`, :data:`HEARTBEAT_S`, :data:`MAX_STREAMS`, :class:`Hub`, :func:`get_hub`,
:func:`format_event`, :func:`encode_cursor`, :func:`decode_cursor`.

How it works
------------
The history triggers (migrations 0002/0003) ``NOTIFY sitroom_changes`` with ``{"layer", "op", "ids"}`` when a
statement commits. Each server process (every gunicorn worker: no state is shared between them) runs ONE
background thread, the :class:`Hub`, with a dedicated autocommit connection that ``LISTEN``s on that channel. For
each burst of notifications it reads the change cursor (:func:`layers.read.history.change_cursor`: the newest history id
and the oldest transaction in progress) and fans the changes out to the queues of this process's open streams.
When the database goes away the hub says so (``status`` event), reconnects with exponential backoff (0.5 s .. 10 s),
and catches up from its last cursor, so no change is lost across a database restart.

Events (``event:`` name, ``data:`` JSON)::

    hello   {"version": int|null, "db": bool, "pid": int}  first event of every stream (pid: the server process)
    change  {"layer", "op", "ids": [...], "version": int}   op: insert/update/purge (and delete, when resumed)
    resync  {"reason": str}                                 too much was missed: refetch everything
    status  {"db": bool}                                    the database went away / came back
    ping    {"t": epoch seconds}                            every 15 s, after a ``: heartbeat`` comment

Every event except ``ping`` carries an ``id:`` cursor ``<version>-<xmin>``. A client that reconnects sends it back
(``Last-Event-ID`` header, as EventSource does by itself, or ``?last_event_id=``) and first gets every change
committed after it, read from ``feature_history`` (:func:`layers.read.history.changes_after`), then the live ones:
delivery is at least once (a change may come twice, never not at all). The id attached to a burst is the cursor of
the burst BEFORE it, so that changes committed while a burst was being read are always covered on resume.

Under ``sitroom serve`` the stream is written by the server's asyncio front (:mod:`dashboards.front`): the view
authenticates and parses the request on a thread as usual, then hands its subscription to the front and returns;
the loop writes the events, so one process serves up to :data:`MAX_ASYNC_STREAMS` streams from its one LISTEN
connection and no thread is held. Served by a plain WSGI server (Flask's dev server, a test client), a stream holds
one thread, so each process serves at most :data:`MAX_STREAMS` such streams at once and answers 503
(``Retry-After``) beyond that. Either way a stream ends after :data:`MAX_STREAM_S` (the browser reconnects at once
and resumes), which also frees what clients that vanished without a word held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Response, request
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from dashboards.api.openapi import endpoint, query
from dashboards.context import db_engine
from dashboards.front import TICKET_KEY, StreamTicket
from layers.read import history
from layers.store.models import FEATURE_MODELS

log = logging.getLogger(__name__)

CHANNEL = "sitroom_changes"
HEARTBEAT_S = 15.0
#: streams one server process serves at once when each holds a thread (a plain WSGI server)
MAX_STREAMS = 6
#: streams one server process serves at once through the asyncio front (no thread each)
MAX_ASYNC_STREAMS = 5000
#: a stream ends after this long; the browser reconnects at once with its Last-Event-ID
MAX_STREAM_S = 600.0
#: a reconnecting client that missed more history rows than this gets ``resync`` instead of the rows
RESUME_LIMIT = 5000
#: events waiting for one slow stream before it is told to ``resync``
QUEUE_MAX = 2000
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
#: after the first notification, wait this long for the rest of a burst (one cursor query per burst)
DRAIN_S = 0.005
#: how often an idle listener checks that its connection is alive
PING_S = 5.0
RETRY_MS = 2000
#: an idle stream writes an empty comment this often, so that a client gone without a word frees its thread soon
PROBE_S = 2.0

_streams = threading.BoundedSemaphore(MAX_STREAMS)
_open = [0]
_open_lock = threading.Lock()


def open_streams() -> int:
    """Event streams this process is serving now."""
    with _open_lock:
        return _open[0]


def encode_cursor(cursor: tuple[int, int] | None) -> str | None:
    """``(version, xmin)`` -> ``"version-xmin"`` (the SSE event id).

    >>> encode_cursor((42, 1234)), decode_cursor("42-1234"), decode_cursor("junk")
    ('42-1234', (42, 1234), None)
    """
    return None if cursor is None else f"{int(cursor[0])}-{int(cursor[1])}"


def decode_cursor(value: str | None) -> tuple[int, int] | None:
    """The inverse of :func:`encode_cursor`; None for anything that is not a cursor."""
    try:
        v, x = (value or "").strip().split("-")
        cursor = int(v), int(x)
    except ValueError:
        return None
    return cursor if cursor[0] >= 0 and cursor[1] >= 0 else None


def format_event(kind: str, data: Any, event_id: str | None = None) -> str:
    """One SSE message.

    >>> format_event("change", {"layer": "incidents", "ids": [1]}, "7-9")
    'id: 7-9\\nevent: change\\ndata: {"layer":"incidents","ids":[1]}\\n\\n'
    """
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


@dataclass(eq=False)  # hashed by identity: one per stream
class Subscriber:
    """One open stream's queue of ``(kind, data, id)``; ``layers`` None means every layer.

    A thread-served stream reads :attr:`queue`; a stream of the asyncio front (``loop`` set) reads its own
    :class:`asyncio.Queue` with :meth:`aget`, filled in the loop's thread (:meth:`Hub.publish` hands each loop its
    share of a burst with one ``call_soon_threadsafe``).
    """

    layers: frozenset[str] | None = None
    queue: queue.Queue[tuple[str, dict[str, Any], str | None]] = field(
        default_factory=lambda: queue.Queue(maxsize=QUEUE_MAX))
    overflowed: bool = False
    loop: asyncio.AbstractEventLoop | None = None
    aqueue: asyncio.Queue[tuple[str, dict[str, Any], str | None]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX))

    def wants(self, kind: str, data: dict[str, Any]) -> bool:
        return kind != "change" or self.layers is None or data.get("layer") in self.layers

    def deliver(self, items: list[tuple[str, dict[str, Any], str | None]]) -> None:
        """Queue ``items`` for an async stream (in the loop's thread); a full queue marks the stream overflowed."""
        for item in items:
            try:
                self.aqueue.put_nowait(item)
            except asyncio.QueueFull:
                self.overflowed = True

    async def aget(self) -> tuple[str, dict[str, Any], str | None]:
        return await self.aqueue.get()

    def aget_nowait(self) -> tuple[str, dict[str, Any], str | None] | None:
        try:
            return self.aqueue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def drain(self) -> None:
        """Drop everything queued (before a ``resync``)."""
        while self.aget_nowait() is not None:
            pass
        while not self.queue.empty():
            self.queue.get_nowait()


def _deliver(batch: list[tuple[Subscriber, list[tuple[str, dict[str, Any], str | None]]]]) -> None:
    for sub, items in batch:
        sub.deliver(items)


class Hub:
    """The per-process listener: one thread, one LISTEN connection, fan-out to the open streams.

    Parameters
    ----------
    url_factory : callable
        Returns the SQLAlchemy URL of the store; called on every (re)connect, so a database that moves or starts
        late is found.
    """

    def __init__(self, url_factory: Callable[[], str]) -> None:
        self._url_factory = url_factory
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self.pid = os.getpid()
        #: id for a stream opening now: resuming from it covers everything not yet fanned out
        self.cursor: str | None = None
        self.version: int | None = None
        self.connected = False
        self.connects = 0
        self.backend_pid: int | None = None
        self.bursts = 0

    # ------------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> Hub:
        """Start the listener thread (idempotent)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="sitroom-live", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the listener thread and close its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._engine is not None:
            self._engine.dispose()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the listener is connected (True) or ``timeout`` seconds pass (False)."""
        return self._ready.wait(timeout)

    # ------------------------------------------------------------------------------------------------- fan-out
    def subscribe(self, layers: Iterable[str] | None = None, *, loop: asyncio.AbstractEventLoop | None = None
                  ) -> tuple[Subscriber, str | None, int | None, bool]:
        """A new subscriber (of an asyncio stream when ``loop`` is given), with the hub's cursor, version and
        database state at the moment it joined."""
        sub = Subscriber(layers=frozenset(layers) if layers else None, loop=loop)
        with self._lock:
            self._subs.add(sub)
            return sub, self.cursor, self.version, self.connected

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, events: list[tuple[str, dict[str, Any]]], event_id: str | None, *,
                version: int | None = None) -> None:
        """Hand ``events`` to every subscriber that wants them; move the hub's cursor to ``event_id``."""
        batches: dict[asyncio.AbstractEventLoop, list[tuple[Subscriber, list[Any]]]] = {}
        with self._lock:
            if event_id is not None:
                self.cursor = event_id
            if version is not None:
                self.version = version
            for sub in self._subs:
                items = [(kind, data, event_id) for kind, data in events if sub.wants(kind, data)]
                if not items:
                    continue
                if sub.loop is not None:
                    batches.setdefault(sub.loop, []).append((sub, items))
                    continue
                for item in items:
                    try:
                        sub.queue.put_nowait(item)
                    except queue.Full:
                        sub.overflowed = True
        for loop, batch in batches.items():
            try:
                loop.call_soon_threadsafe(_deliver, batch)
            except RuntimeError:  # that loop has closed: its streams are gone
                pass

    # ------------------------------------------------------------------------------------------------- listener
    def _connect(self) -> Any:
        if self._engine is None:
            self._engine = create_engine(self._url_factory(), poolclass=NullPool, isolation_level="AUTOCOMMIT",
                                         connect_args={"connect_timeout": 5})
        return self._engine.connect()

    def _run(self) -> None:
        delay = BACKOFF_MIN_S
        prev: tuple[int, int] | None = None  # cursor of the last burst read
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    raw = conn.connection.driver_connection
                    conn.exec_driver_sql(f"LISTEN {CHANNEL}")
                    self.backend_pid = raw.info.backend_pid
                    cur = history.change_cursor(conn)
                    if prev is not None:
                        self._catch_up(conn, prev, cur)
                    else:
                        self.publish([], encode_cursor(cur), version=cur[0])
                    prev = cur
                    self.connects += 1
                    self.connected = True
                    self.publish([("status", {"db": True})], None)
                    self._ready.set()
                    delay = BACKOFF_MIN_S
                    prev = self._listen(conn, raw, prev)
            except Exception as e:  # noqa: BLE001 - any failure: say so, back off, reconnect, catch up
                if self.connected:
                    log.warning("live: lost the LISTEN connection (%s); reconnecting", str(e).splitlines()[0][:200])
                    self.connected = False
                    self.publish([("status", {"db": False})], None)
                if self._engine is not None and self._stop.is_set():
                    break
                if self._engine is not None:
                    self._engine.dispose()
                    self._engine = None  # the URL may have changed (private cluster on a new port)
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        self.connected = False

    def _listen(self, conn: Any, raw: Any, prev: tuple[int, int]) -> tuple[int, int]:
        last_ping = time.monotonic()
        while not self._stop.is_set():
            burst = list(raw.notifies(timeout=1.0, stop_after=1))
            if not burst:
                if time.monotonic() - last_ping > PING_S:
                    conn.exec_driver_sql("SELECT 1")  # a dead connection raises here, not silently forever
                    last_ping = time.monotonic()
                continue
            burst += list(raw.notifies(timeout=DRAIN_S))
            cur = history.change_cursor(conn)
            events: list[tuple[str, dict[str, Any]]] = []
            for n in burst:
                if n.channel != CHANNEL:
                    continue
                try:
                    payload = json.loads(n.payload)
                    events.append(("change", {"layer": payload["layer"], "op": payload["op"],
                                              "ids": [int(i) for i in payload["ids"]], "version": cur[0],
                                              "cursor": encode_cursor(cur)}))
                except (ValueError, KeyError, TypeError):
                    log.warning("live: ignoring a malformed notification %r", n.payload[:200])
            self.publish(events, encode_cursor(prev), version=cur[0])
            self.bursts += 1
            prev = cur
            last_ping = time.monotonic()
        return prev

    def _catch_up(self, conn: Any, prev: tuple[int, int], cur: tuple[int, int]) -> None:
        """After a reconnect: what was committed while the listener was away, then the new cursor."""
        rows = history.changes_after(conn, prev[0], xmin=prev[1], limit=RESUME_LIMIT + 1)
        if len(rows) > RESUME_LIMIT:
            self.publish([("resync", {"reason": "reconnected"})], encode_cursor(prev), version=cur[0])
        else:
            self.publish([("change", g) for g in history.group_changes(rows)], encode_cursor(prev), version=cur[0])


_hub_lock = threading.Lock()
_hubs: dict[str, Hub] = {}


def get_hub(key: str = "default", url_factory: Callable[[], str] | None = None) -> Hub:
    """This process's hub (made on first use: after a gunicorn fork, in the worker), started."""
    with _hub_lock:
        hub = _hubs.get(key)
        if hub is None or hub.pid != os.getpid():
            hub = Hub(url_factory or _app_database_url)
            _hubs[key] = hub
    return hub.start()


def _app_database_url() -> str:
    return db_engine().url.render_as_string(hide_password=False)


def _hub_for_request() -> Hub:
    url = _app_database_url()  # resolved in the request (app settings); the hub keeps one per database
    return get_hub(url, lambda: url)


def _resume(last: tuple[int, int]) -> tuple[list[tuple[str, dict[str, Any]]], int | None]:
    """Events a client reconnecting with cursor ``last`` missed (or one ``resync``), and the current version."""
    try:
        with db_engine().connect() as conn:
            rows = history.changes_after(conn, last[0], xmin=last[1], limit=RESUME_LIMIT + 1)
            version = history.change_cursor(conn)[0]
    except Exception as e:  # noqa: BLE001 - the database is away: the client refetches once it is back
        log.info("live: cannot resume from %s (%s)", last, type(e).__name__)
        return [("resync", {"reason": "database unavailable"})], None
    if len(rows) > RESUME_LIMIT:
        return [("resync", {"reason": "too many changes missed"})], version
    return [("change", g) for g in history.group_changes(rows)], version


def _stream(hub: Hub, sub: Subscriber, hello_id: str | None, hello: dict[str, Any],
            backlog: list[tuple[str, dict[str, Any]]]) -> Iterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    yield format_event("hello", hello, hello_id)
    for kind, data in backlog:
        if sub.wants(kind, data):
            yield format_event(kind, data, hello_id)
    ends = time.monotonic() + MAX_STREAM_S
    beat = time.monotonic() + HEARTBEAT_S
    while True:
        now = time.monotonic()
        if now >= ends:
            return
        if sub.overflowed:
            sub.overflowed = False
            while not sub.queue.empty():
                sub.queue.get_nowait()
            yield format_event("resync", {"reason": "too slow"}, hub.cursor)
        try:
            kind, data, eid = sub.queue.get(timeout=max(0.05, min(beat, ends, now + PROBE_S) - now))
        except queue.Empty:
            if time.monotonic() >= beat:
                yield f": heartbeat\nevent: ping\ndata: {{\"t\":{time.time():.3f}}}\n\n"
                beat = time.monotonic() + HEARTBEAT_S
            else:
                yield ":\n"  # probe: writing to a closed connection ends this stream
            continue
        yield format_event(kind, data, eid)


@endpoint("/events", "GET", tags=("live",), operation_id="live_events",
          summary="Server-sent events: every committed change to the store (layer, op, ids, version)",
          description="`text/event-stream`. Events: hello, change, resync, status, ping (every 15 s). Each has an "
                      "`id` cursor; reconnecting with `Last-Event-ID` (or `last_event_id`) first replays what was "
                      "missed, from the history. At most a few streams per server process: 503 with Retry-After "
                      "beyond that.",
          parameters=[
              query("layers", {"type": "array", "items": {"type": "string", "enum": list(FEATURE_MODELS)}},
                    "only changes of these layers (default all)"),
              query("last_event_id", {"type": "string", "maxLength": 64},
                    "resume after this event id (same as the Last-Event-ID header)"),
          ],
          responses={200: ("An endless event stream", {"type": "string"}, "text/event-stream")})
def live_events(*, layers: list[str] | None, last_event_id: str | None) -> Response:
    scope = request.environ.get("asgi.scope")
    ticket = scope.get(TICKET_KEY) if isinstance(scope, dict) else None
    if isinstance(ticket, StreamTicket):
        return _async_stream(ticket, layers, last_event_id)
    if not _streams.acquire(blocking=False):
        return _too_many(MAX_STREAMS)
    with _open_lock:
        _open[0] += 1
    released = threading.Event()
    hub: Hub | None = None
    sub: Subscriber | None = None

    def release() -> None:
        if not released.is_set():
            released.set()
            if hub is not None and sub is not None:
                hub.unsubscribe(sub)
            with _open_lock:
                _open[0] -= 1
            _streams.release()

    try:
        hub = _hub_for_request()
        sub, cursor, hello, backlog = _open_subscription(hub, layers, last_event_id)
    except Exception:
        release()
        raise
    return _stream_response(_stream(hub, sub, cursor, hello, backlog), release)


def _too_many(limit: int) -> Response:
    resp = Response(json.dumps({"error": {"code": "too_many_streams",
                                          "message": "too many open event streams on this server process",
                                          "detail": f"at most {limit} per process"}}),
                    status=503, mimetype="application/json")
    resp.headers["Retry-After"] = "5"
    return resp


def _open_subscription(hub: Hub, layers: list[str] | None, last_event_id: str | None, *,
                       loop: asyncio.AbstractEventLoop | None = None
                       ) -> tuple[Subscriber, str | None, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Subscribe to ``hub`` and gather what a new stream sends first: (subscriber, its first id, hello, backlog)."""
    hub.wait_ready(2.0)
    sub, cursor, version, connected = hub.subscribe(layers, loop=loop)
    try:
        last = decode_cursor(request.headers.get("Last-Event-ID") or last_event_id)
        backlog: list[tuple[str, dict[str, Any]]] = []
        if last is not None:
            backlog, v = _resume(last)
            version = v if v is not None else version
        elif (request.headers.get("Last-Event-ID") or last_event_id):
            backlog = [("resync", {"reason": "unknown event id"})]
    except Exception:
        hub.unsubscribe(sub)
        raise
    return sub, cursor, {"version": version, "db": connected, "pid": os.getpid()}, backlog


def _stream_response(body: Any, on_close: Callable[[], None] | None = None) -> Response:
    resp = Response(body, mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-cache, no-transform"
    resp.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must not buffer the stream
    if on_close is not None:
        resp.call_on_close(on_close)
    return resp


def _async_stream(ticket: StreamTicket, layers: list[str] | None, last_event_id: str | None) -> Response:
    """Hand the stream to the asyncio front (``dashboards.front``): it writes the events; no thread is held."""
    hub = _hub_for_request()
    if hub.subscribers >= MAX_ASYNC_STREAMS:
        return _too_many(MAX_ASYNC_STREAMS)
    sub, cursor, hello, backlog = _open_subscription(hub, layers, last_event_id, loop=ticket.loop)
    prelude = [f"retry: {RETRY_MS}\n\n", format_event("hello", hello, cursor)]
    prelude += [format_event(kind, data, cursor) for kind, data in backlog if sub.wants(kind, data)]
    ticket.accept(hub, sub, prelude, max_s=MAX_STREAM_S, heartbeat_s=HEARTBEAT_S, event=format_event)
    return _stream_response(b"")


__all__ = ["CHANNEL", "HEARTBEAT_S", "MAX_STREAMS", "MAX_ASYNC_STREAMS", "MAX_STREAM_S", "Hub", "Subscriber", "get_hub", "format_event",
           "encode_cursor", "decode_cursor", "live_events", "open_streams"]
