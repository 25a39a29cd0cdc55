"""Request limits: upload size, vertices in any posted geometry, and time per request, each a clear 4xx in JSON.

Public: :func:`install_limits`, :func:`count_vertices`, :data:`MAX_VERTICES`, :data:`REQUEST_TIME_LIMIT_S`.

One line at the end of ``create_app``: ``install_limits(server)`` (a Flask app, or a Dash app: its ``.server``).

- **Body size**: a body longer than its route's limit (:data:`ROUTE_BODY_LIMITS`: Dash callbacks 8 MB, CAP 1 MB,
  the API 16 MB; anything else ``settings.max_upload_mb``) is refused before it is read, before even the access
  policy looks at it, with 413 ``request_entity_too_large`` naming the size and the limit.
- **Vertices**: every JSON body (the API's writes and analyses, and Dash's callbacks, which carry drawn shapes) is
  walked once, without recursion, and refused with 413 ``too_many_points`` when it holds more than
  :data:`MAX_VERTICES` coordinate pairs or nests deeper than :data:`MAX_JSON_DEPTH` (a body nested 10^5 deep makes
  Python's JSON parser raise RecursionError: a 500 without this check). ``geoops.validate`` checks each geometry
  again; this check bounds the memory and time spent before anything is parsed into shapely.
- **Time**: each database statement run while serving a request has PostgreSQL's ``statement_timeout`` set to
  :data:`REQUEST_TIME_LIMIT_S` (on pool checkout; connections used outside requests get no limit). A statement
  cancelled by it answers 408 ``request_timeout`` ("narrow the zone or the query"), not 503. Pure Python work that
  runs longer is bounded by gunicorn's worker timeout.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Response, current_app, has_request_context, request
from flask.json.provider import DefaultJSONProvider
from psycopg.errors import QueryCanceled
from sqlalchemy import event
from sqlalchemy.exc import DataError, DisconnectionError, OperationalError
from sqlalchemy.pool import Pool

from dashboards.errors import ApiError, error_response

#: most [x, y] pairs one request may carry (same as geoops.validate's default per geometry)
MAX_VERTICES = 200_000
#: deepest JSON nesting accepted (a MultiPolygon is 4 deep inside a Feature inside a FeatureCollection)
MAX_JSON_DEPTH = 64
#: longest a database statement may run while serving one request, in seconds
REQUEST_TIME_LIMIT_S = 30.0

_JSON_TYPES = ("application/json", "application/geo+json")
_FLAG = "sitroom_statement_timeout"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259): send a number, or null where the field allows it")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_strings(obj: Any) -> None:
    """Refuse lone UTF-16 surrogates (``"\\ud800"``): valid JSON escapes, but no text PostgreSQL can store."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValueError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff): not valid Unicode text")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class StrictJSONProvider(DefaultJSONProvider):
    """Request bodies parsed strictly: ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's parser accepts) and
    lone surrogates are refused, so they never reach a number or a text column (the API answers 400 ``invalid_json``).

    >>> StrictJSONProvider(Flask("t")).loads('{"occupancy": NaN}')
    Traceback (most recent call last):
    ...
    ValueError: NaN is not JSON (RFC 8259): send a number, or null where the field allows it
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        obj = json.loads(s, parse_constant=_reject_constant, **kwargs)
        _check_strings(obj)
        return obj


def _limit_error(detail: str, *, field: str | None, value: Any, allowed: str, status: int, code: str) -> Response:
    return error_response(ApiError(detail, field=field, value=value, allowed=allowed, status=status, code=code))


def count_vertices(obj: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[int, int]:
    """Count the coordinate pairs (lists whose first two items are numbers) in a parsed JSON value, and its depth.

    Iterative (no recursion), so a hostile body cannot exhaust the stack; stops descending below ``max_depth``.

    Examples
    --------
    >>> count_vertices({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    (4, 4)
    >>> count_vertices({"type": "Point", "coordinates": [116.4, 39.9]}, max_depth=8)
    (1, 2)
    """
    pairs = 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > max_depth:
            continue
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            if len(item) >= 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item[:2]):
                pairs += 1
            else:
                stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return pairs, deepest


def _raw_depth(data: bytes, limit: int) -> int:
    """Bracket nesting depth of raw JSON text (strings skipped), stopping once past ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in data:
        if in_string:
            if escaped:
                escaped = False
            elif ch == 0x5C:  # backslash
                escaped = True
            elif ch == 0x22:
                in_string = False
        elif ch == 0x22:
            in_string = True
        elif ch in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in (0x5D, 0x7D):
            depth -= 1
    return deepest


#: most bytes of one request body, by path prefix (first match); other paths: ``MAX_CONTENT_LENGTH``
#: (SITROOM_MAX_UPLOAD_MB). A Dash callback carries a drawn shape at most; a CAP message is a few kB; an API call
#: holds at most 10,000 features or 200,000 vertices.
ROUTE_BODY_LIMITS: tuple[tuple[str, int, str], ...] = (
    ("/_dash-update-component", 8 * 2**20, "a Dash callback"),
    ("/api/v1/cap", 2**20, "a CAP message"),
    ("/api/v1/observations", 16 * 2**20, "a batch of observations"),
    ("/api/v1/", 16 * 2**20, "an API request"),
)


def body_limit(path: str) -> tuple[int | None, str]:
    """Most bytes a request body to ``path`` may have, and what such a request is (for the message).

    >>> body_limit("/_dash-update-component")
    (8388608, 'a Dash callback')
    """
    for prefix, limit, what in ROUTE_BODY_LIMITS:
        if path.startswith(prefix):
            return limit, what
    upload = current_app.config.get("MAX_CONTENT_LENGTH") if has_request_context() else None
    return (int(upload) if upload else None), "an upload"


def _check_size() -> Response | None:
    """Refuse a body over its route's limit from its Content-Length, before anything reads it; a body without one
    (chunked) is cut at the limit while it is read (``request.max_content_length``: 413)."""
    limit, what = body_limit(request.path)
    if limit is None:
        return None
    request.max_content_length = limit
    length = request.content_length
    if length is not None and length > limit:
        return _limit_error(f"request body of {length / 2**20:.1f} MB; at most {limit / 2**20:g} MB for {what}",
                            field="body", value=f"{length} bytes", allowed=f"at most {int(limit)} bytes",
                            status=413, code="request_entity_too_large")
    return None


def _check_json() -> Response | None:
    if request.method not in ("POST", "PUT", "PATCH") or request.mimetype not in _JSON_TYPES:
        return None
    data = request.get_data(cache=True)
    if not data:
        return None
    limit = current_app.config.get("SITROOM_MAX_JSON_DEPTH", MAX_JSON_DEPTH)
    depth = _raw_depth(data, limit) if data.count(b"[") + data.count(b"{") > limit else 0
    if depth > limit:
        return _limit_error(f"JSON nested more than {limit} levels deep", field="body", value=f"depth > {limit}",
                            allowed=f"at most {limit} levels of nesting", status=413, code="too_many_points")
    try:
        body = current_app.json.loads(data)
    except (ValueError, RecursionError):
        return None  # the view answers malformed JSON with its own 400
    max_vertices = current_app.config.get("SITROOM_MAX_VERTICES", MAX_VERTICES)
    pairs, _ = count_vertices(body, max_depth=limit)
    if pairs > max_vertices:
        return _limit_error(f"{pairs} coordinate pairs in one request; at most {max_vertices} (simplify the "
                            "geometry or split the request)", field="geometry", value=f"{pairs} vertices",
                            allowed=f"at most {max_vertices} vertices", status=413, code="too_many_points")
    return None


def _before_request() -> Response | None:
    return _check_json()


def _statement_timeout_ms() -> int | None:
    if not has_request_context():
        return None
    try:
        seconds = float(current_app.config.get("SITROOM_REQUEST_TIME_LIMIT_S", REQUEST_TIME_LIMIT_S))
    except RuntimeError:
        return None
    return max(1, int(seconds * 1000))


def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    ms = _statement_timeout_ms()
    if ms is None and not record.info.get(_FLAG):
        return
    if record.info.get(_FLAG) == ms:
        return
    try:
        cur = dbapi_connection.cursor()
        try:
            # SET cannot take a bind parameter; ms is an int we computed
            cur.execute(f"SET statement_timeout = {int(ms or 0)}")
        finally:
            cur.close()
        if getattr(dbapi_connection, "autocommit", True) is False:
            dbapi_connection.commit()  # keep the setting out of the transaction the caller will begin
    except Exception as e:
        raise DisconnectionError(f"pooled connection is dead: {e}") from e
    record.info[_FLAG] = ms


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "orig", None), QueryCanceled)


def _operational_error(exc: OperationalError) -> Response:
    if _is_timeout(exc):
        limit = float(current_app.config.get("SITROOM_REQUEST_TIME_LIMIT_S", REQUEST_TIME_LIMIT_S))
        return _limit_error(f"the request ran longer than {limit:g} s and was stopped; narrow the zone, the bounding "
                            "box or the number of items", field=None, value=None,
                            allowed=f"at most {limit:g} s per request", status=408, code="request_timeout")
    return error_response(exc)


def _data_error(exc: DataError) -> Response:
    """A value PostgreSQL cannot take (SQLSTATE class 22: a path id beyond bigint, a number out of range) is the
    client's error: 400 naming it, not a 500."""
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    detail = str(getattr(diag, "message_primary", None) or type(orig).__name__)
    return _limit_error(f"a value in the request cannot be stored or compared: {detail}", field=None,
                        value=None, allowed="values within the column's range (ids: 1 .. 9223372036854775807)",
                        status=400, code="invalid_parameter")


_listening = False


def install_limits(app: Any, *, max_vertices: int = MAX_VERTICES, time_limit_s: float = REQUEST_TIME_LIMIT_S,
                   max_json_depth: int = MAX_JSON_DEPTH) -> Flask:
    """Put the size, vertex and time limits on ``app`` (call after every blueprint is registered).

    Parameters
    ----------
    app : flask.Flask or dash.Dash
        The server (a Dash app's ``.server`` is used).
    max_vertices : int
        Most coordinate pairs per request body.
    time_limit_s : float
        ``statement_timeout`` of the database work of one request, in seconds.
    max_json_depth : int
        Deepest JSON nesting accepted.

    Returns
    -------
    flask.Flask
    """
    global _listening
    server: Flask = app.server if hasattr(app, "server") else app
    server.config.update(SITROOM_MAX_VERTICES=int(max_vertices), SITROOM_REQUEST_TIME_LIMIT_S=float(time_limit_s),
                         SITROOM_MAX_JSON_DEPTH=int(max_json_depth))
    server.json = StrictJSONProvider(server)
    # the size first of all, before the access policy reads a callback's body to decide it
    server.before_request_funcs.setdefault(None, []).insert(0, _check_size)
    server.before_request_funcs.setdefault(None, []).append(_before_request)
    # blueprint handlers win over app handlers whatever the class; put ours next to the API's own catch-all
    for name in [None, *server.blueprints]:
        # index, never setdefault: the spec is a defaultdict of defaultdicts, and a plain dict put in it makes
        # Flask's own lookup of a 404 handler raise KeyError (a 500 for every missing asset)
        handlers = server.error_handler_spec[name][None]
        handlers[OperationalError] = _operational_error
        handlers[DataError] = _data_error
    if not _listening:
        event.listen(Pool, "checkout", _on_checkout)  # every pool of this process; outside requests: no limit
        _listening = True
    return server
