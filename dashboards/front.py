"""The server's front: an ASGI app under uvicorn, so that slow clients and live streams cost no thread.

Public: :func:`create_front`, :class:`EdgeProtocol`, :class:`SitroomWorker`, :class:`EdgeLimits`,
:data:`EVENTS_PATH`, :data:`TICKET_KEY`.

``sitroom serve`` runs gunicorn with :class:`SitroomWorker` (uvicorn's worker for gunicorn): each worker process runs
one asyncio loop that owns every connection, and hands complete requests to the Flask/Dash app on a pool of threads
(``a2wsgi``), as gunicorn's threaded workers did. From the browser's point of view nothing changes: one port, the
same routes, the same authentication.

- **Live push** (``GET /api/v1/events``): the request goes through the Flask app like any other (authentication,
  parameters, resume from ``Last-Event-ID``: :func:`dashboards.live.live_events`); instead of holding a thread for
  the stream, the view hands a subscription of the process's one LISTEN hub (:class:`dashboards.live.Hub`) to this
  front (the ticket under :data:`TICKET_KEY` of the ASGI scope, which no client can set), and the loop writes the
  events. One LISTEN connection per process feeds any number of streams.
- **Slow clients** (:class:`EdgeLimits`): the head of every request must arrive within ``head_timeout_s`` of the
  connection opening (or of the previous response on a kept-alive connection), else 408 and the connection is
  closed (:class:`EdgeProtocol`; uvicorn itself only times out idle connections); a body must arrive at
  ``min_body_rate`` bytes/s after ``body_timeout_s`` of grace, and is read here, before any thread or parser sees
  it, so a slow body holds no thread; a declared ``Content-Length`` over the upload limit is refused at once (413);
  each process serves at most ``max_connections`` connections and requests at once (uvicorn answers 503 beyond).
  ``docs/security.md`` says how to run behind a TLS reverse proxy with limits of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from a2wsgi import WSGIMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

EVENTS_PATH = "/api/v1/events"
#: the ASGI scope key of a stream's ticket (read by dashboards.live through the WSGI environ's ``asgi.scope``)
TICKET_KEY = "sitroom.stream_ticket"


@dataclass(frozen=True)
class EdgeLimits:
    """Limits at the edge, per worker process (``sitroom serve`` options)."""

    head_timeout_s: float = 10.0
    body_timeout_s: float = 20.0
    min_body_rate: float = 50_000.0
    max_connections: int = 2000
    max_body_bytes: int | None = None
    threads: int = 8


#: the limits of this process (set by ``sitroom serve`` in the master, inherited by the forked workers)
LIMITS = EdgeLimits()


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) with a deadline on receiving each request's head.

    The deadline is armed when the connection opens and when a response completes on a kept-alive connection with
    no request waiting; it is disarmed when the head is complete. On expiry, a connection that has begun a request
    (some bytes of a head) is answered 408 and closed; an idle one (not a byte since it opened or since its last
    response) is closed without a word, as uvicorn's keep-alive timeout does. An unsolicited 408 on an idle
    connection is read by a browser that sends a request on it at that moment as the answer to that request (a map
    tile failed that way under `taskset -c 0`); a silent close makes it open a new connection and send again.
    The body is timed by the front (:func:`create_front`), a response (a live stream) is never timed.
    """

    _head_deadline: asyncio.TimerHandle | None = None
    #: bytes of a request received since the deadline was armed
    _head_begun: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_begun = False
        self._head_deadline = self.loop.call_later(LIMITS.head_timeout_s, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if data and self._head_deadline is not None:
            self._head_begun = True
        super().data_received(data)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if not self._head_begun:
            self.transport.close()
            return
        msg = f"request head not received within {LIMITS.head_timeout_s:g} s"
        log.warning("408 to %s: %s", self.client, msg)
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"connection: close\r\ncontent-length: " + str(len(msg)).encode() + b"\r\n\r\n"
                             + msg.encode())
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # armed only when the connection waits for a request: a request that arrived before this response was
        # complete (pipelined: a browser reuses the connection as soon as it has the body, before the last empty
        # message is sent) has just been started by uvicorn, and its head is complete; a deadline armed now would
        # close it mid-answer (a live stream after 10 s, a slow tile under load)
        if not self.transport.is_closing() and not self.pipeline and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)


class SitroomWorker(UvicornWorker):
    """gunicorn worker: uvicorn with :class:`EdgeProtocol` and the connection limit of :data:`LIMITS`."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "asyncio", "http": EdgeProtocol, "interface": "asgi3",
                                     "lifespan": "on"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).CONFIG_KWARGS = {**SitroomWorker.CONFIG_KWARGS, "limit_concurrency": LIMITS.max_connections,
                                    "h11_max_incomplete_event_size": 64 * 1024}
        super().__init__(*args, **kwargs)


# --------------------------------------------------------------------------------------------------- the front
def _json_error(status: int, code: str, message: str, detail: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"code": code, "message": message, "detail": detail}}).encode()


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(scope: Scope, receive: Receive, limits: EdgeLimits) -> tuple[list[Message], tuple[int, bytes] | None]:
    """Every ``http.request`` message of the body, read within its deadline; or the error to answer."""
    length = next((int(v) for k, v in scope["headers"] if k == b"content-length" and v.isdigit()), None)
    if limits.max_body_bytes is not None and length is not None and length > limits.max_body_bytes:
        return [], _json_error(413, "request_entity_too_large", f"request body of {length} bytes",
                               f"at most {limits.max_body_bytes} bytes")
    expected = length if length is not None else 0
    deadline = time.monotonic() + limits.body_timeout_s + expected / limits.min_body_rate
    messages: list[Message] = []
    received = 0
    while True:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            msg = await asyncio.wait_for(receive(), left)
        except TimeoutError:
            return messages, _json_error(408, "request_timeout", "the request body arrived too slowly",
                                         f"{received} bytes in {limits.body_timeout_s:g} s + 1 s per "
                                         f"{limits.min_body_rate:g} bytes")
        if msg["type"] != "http.request":
            return messages, None  # the client went away; the app sees the disconnect
        messages.append(msg)
        received += len(msg.get("body", b""))
        if limits.max_body_bytes is not None and received > limits.max_body_bytes:
            return messages, _json_error(413, "request_entity_too_large", f"request body over {received} bytes",
                                         f"at most {limits.max_body_bytes} bytes")
        if length is None:  # chunked: the deadline follows what has come
            deadline = max(deadline, time.monotonic() + received / limits.min_body_rate)
        if not msg.get("more_body", False):
            return messages, None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def again() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return again


@dataclass(eq=False)
class StreamTicket:
    """What the live view hands the front: the subscription and the first events of one stream."""

    loop: asyncio.AbstractEventLoop
    accepted: bool = False
    hub: Any = None
    sub: Any = None
    prelude: list[str] = field(default_factory=list)
    max_s: float = 600.0
    heartbeat_s: float = 15.0
    event: Callable[[str, Any, str | None], str] | None = None

    def accept(self, hub: Any, sub: Any, prelude: list[str], *, max_s: float, heartbeat_s: float,
               event: Callable[[str, Any, str | None], str]) -> None:
        """Take the stream: ``event(kind, data, id)`` formats one server-sent event (``dashboards.live``)."""
        self.hub, self.sub, self.prelude = hub, sub, prelude
        self.max_s, self.heartbeat_s, self.event = max_s, heartbeat_s, event
        self.accepted = True


async def _stream(ticket: StreamTicket, start: Message, receive: Receive, send: Send) -> None:
    format_event = ticket.event
    assert format_event is not None  # set by accept()
    sub = ticket.sub
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        # the view's answer carries the stream's headers; its length (an empty body) is not the stream's
        await send({**start, "headers": [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]})
        await send({"type": "http.response.body", "body": "".join(ticket.prelude).encode(), "more_body": True})
        ends = time.monotonic() + ticket.max_s
        beat = time.monotonic() + ticket.heartbeat_s
        while not gone.is_set():
            now = time.monotonic()
            if now >= ends:
                break
            if sub.overflowed:
                sub.overflowed = False
                sub.drain()
                chunk = format_event("resync", {"reason": "too slow"}, ticket.hub.cursor)
            else:
                try:
                    kind, data, eid = await asyncio.wait_for(sub.aget(), max(0.05, min(beat, ends) - now))
                except TimeoutError:
                    beat = time.monotonic() + ticket.heartbeat_s
                    chunk = f": heartbeat\nevent: ping\ndata: {{\"t\":{time.time():.3f}}}\n\n"
                else:
                    chunk = format_event(kind, data, eid)
                    while (more := sub.aget_nowait()) is not None:  # a burst goes out in one write
                        chunk += format_event(*more)
            await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
        if not gone.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the client went away mid-write
    finally:
        watcher.cancel()
        ticket.hub.unsubscribe(sub)


def create_front(wsgi_app: Any, *, limits: EdgeLimits | None = None,
                 on_startup: Callable[[], object] | None = None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app of ``sitroom serve``: ``wsgi_app`` (the Flask server) on a thread pool, behind the edge limits,
    with ``GET /api/v1/events`` streamed by the loop. ``on_startup`` runs in a thread once the worker starts
    (warm-up); it does not delay serving."""
    lim = limits or LIMITS
    # typed by a2wsgi with the ASGI TypedDicts; the scopes and messages here are the plain mappings they are
    wsgi: Any = WSGIMiddleware(wsgi_app, workers=lim.threads)

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                if on_startup is not None:
                    asyncio.get_running_loop().run_in_executor(None, on_startup)
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def events(scope: Scope, receive: Receive, send: Send) -> None:
        ticket = StreamTicket(loop=asyncio.get_running_loop())
        captured: list[Message] = []

        async def capture(msg: Message) -> None:
            captured.append(msg)

        await wsgi({**scope, TICKET_KEY: ticket}, receive, capture)
        if not ticket.accepted:  # refused (authentication, parameters, overload): the app's answer as it is
            for msg in captured:
                await send(msg)
            return
        await _stream(ticket, captured[0], receive, send)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body, refused = await _read_body(scope, receive, lim)
        if refused is not None:
            await _respond(send, *refused)
            return
        receive = _replay(body, receive)
        if scope["path"] == EVENTS_PATH and scope["method"] == "GET":
            await events(scope, receive, send)
        else:
            await wsgi(scope, receive, send)

    return app


__all__ = ["EVENTS_PATH", "TICKET_KEY", "EdgeLimits", "LIMITS", "EdgeProtocol", "SitroomWorker", "StreamTicket",
           "create_front"]
