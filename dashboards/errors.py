"""The one table that maps errors to HTTP status codes and JSON bodies, keyed by exception **class** (titiler's
``DEFAULT_STATUS_CODES``), and the JSON helpers of every answer.

Public: :data:`ERROR_TABLE`, :class:`ApiError`, :class:`ParameterError`, :func:`error_table`, :func:`classify`,
:func:`error_body`, :func:`dumps`, :func:`json_response`, :func:`error_response`, :func:`register_error_handlers`.

Domain code (``geoops``, ``layers``, ``dashboards.services``) raises its own errors and knows nothing about HTTP;
this module decides the status and the body. The table imports the classes it names, so a misspelt or removed class
stops the import of this module (and the server's start) instead of turning into a silent 500. The most specific
class in an exception's MRO wins. Every body has the same shape::

    {"error": {"code": "invalid_parameter", "message": "<translated>", "detail": "<what was received, what is
     allowed>", "field": ..., "value": ..., "allowed": ..., "problems": [{row, field, value, allowed, file}],
     "context": {...}}}

``context`` is present only for errors that carry one (a 409 conflict names the task or activation in the way).

``message`` is translated (``error.<code>`` in the catalogues; zh-CN or en per request); ``detail`` is the
error's own text. Anything not in the table is a 500 whose body carries no traceback; the traceback goes to the log.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pydantic
import sqlalchemy.exc
from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from dashboards.i18n import DEFAULT_LANGUAGE, catalogue, current_lang, t
from geoops.errors import CRSError, GeoOpsError, InvalidGeometryError, InvalidParameterError
from layers.ingest.imports import UploadTooLargeError
from layers.reference.population import PopulationBuildError
from layers.render.sitebasemaps import BasemapError
from layers.render.tiles import TileError
from layers.store.auth import AuthError
from layers.store.errors import (
    ClusterError,
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    StoreError,
    ValidationError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A problem with an HTTP request itself (not a domain error): carries its status, code, field, value, allowed.

    Parameters
    ----------
    detail : str, optional
        English sentence for the ``detail`` of the body; default built from field, value and allowed.
    field, value, allowed
        The offending input, what was received and what is allowed.
    status : int, optional
        HTTP status; default the class's ``status``.
    code : str, optional
        Stable error code (translation key ``error.<code>``); default the class's ``code``.
    """

    status = 400
    code = "bad_request"

    def __init__(self, detail: str | None = None, *, field: str | None = None, value: Any = None,
                 allowed: Any = None, status: int | None = None, code: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if detail is None:
            parts = [f"got {_short(value)}"] if value is not None else []
            if allowed is not None:
                parts.append(f"allowed: {allowed if isinstance(allowed, str) else ', '.join(map(str, allowed))}")
            detail = (f"{field}: " if field else "") + "; ".join(parts or ["bad request"])
        self.detail = detail
        super().__init__(detail)


class ParameterError(ApiError):
    """A query parameter, path parameter or body field that cannot be parsed or is out of range (HTTP 400)."""

    status = 400
    code = "invalid_parameter"


_UNAVAILABLE = "database_unavailable"

#: (exception class, HTTP status or None for the exception's own, error code or None for the exception's own)
ERROR_TABLE: tuple[tuple[type[BaseException], int | None, str | None], ...] = (
    (ApiError, None, None),
    (HTTPException, None, None),
    # the store
    (StoreError, 500, "internal_error"),
    (ValidationError, 422, "validation_error"),
    (UploadTooLargeError, 413, "request_entity_too_large"),
    (PopulationBuildError, 422, "validation_error"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, None),  # its own code: conflict; resource_busy, illegal_transition, activation_state
    (AuthError, 401, "unauthorized"),
    (TileError, 400, "invalid_parameter"),
    (BasemapError, 422, "validation_error"),
    (DatabaseUnavailableError, 503, _UNAVAILABLE),
    (ClusterError, 503, _UNAVAILABLE),
    (sqlalchemy.exc.OperationalError, 503, _UNAVAILABLE),
    (sqlalchemy.exc.InterfaceError, 503, _UNAVAILABLE),
    (sqlalchemy.exc.TimeoutError, 503, _UNAVAILABLE),
    (psycopg.OperationalError, 503, _UNAVAILABLE),
    # a value PostgreSQL cannot take, raised by psycopg itself (a COPY); SQLAlchemy's DataError: dashboards.limits
    (psycopg.DataError, 400, "invalid_parameter"),
    # the analyses
    (GeoOpsError, 400, None),
    (InvalidParameterError, 400, None),
    (InvalidGeometryError, 422, None),
    (CRSError, 422, None),
    (pydantic.ValidationError, 422, "validation_error"),
)


def error_table(rows: Iterable[tuple[Any, int | None, str | None]]) -> dict[type[BaseException], tuple[int | None,
                                                                                                      str | None]]:
    """``{class: (status, code)}`` of table rows, refusing anything but exception classes, unknown statuses and
    a class listed twice.

    Raises
    ------
    TypeError
        A row keyed by something that is not an exception class (a ``"module:Name"`` string, say).
    ValueError
        A status outside 100..599, or a class listed twice.

    Examples
    --------
    >>> error_table([(KeyError, 404, "not_found")])
    {<class 'KeyError'>: (404, 'not_found')}
    >>> error_table([("layers.store.errors:NotFoundError", 404, None)])
    Traceback (most recent call last):
    ...
    TypeError: error table rows are keyed by exception classes, got 'layers.store.errors:NotFoundError'
    """
    table: dict[type[BaseException], tuple[int | None, str | None]] = {}
    for cls, status, code in rows:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(f"error table rows are keyed by exception classes, got {cls!r}")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"{cls.__name__}: HTTP status must be in 100..599, got {status!r}")
        if cls in table:
            raise ValueError(f"{cls.__name__} is listed twice in the error table")
        table[cls] = (status, code)
    return table


_TABLE = error_table(ERROR_TABLE)


def classify(exc: BaseException) -> tuple[int, str]:
    """HTTP status and error code of an exception (500, ``internal_error`` when it is not in the table).

    Examples
    --------
    >>> from layers.store.errors import NotFoundError
    >>> classify(NotFoundError("no layer 'x'"))
    (404, 'not_found')
    >>> classify(KeyError("boom"))
    (500, 'internal_error')
    """
    for cls in type(exc).__mro__:
        if cls in _TABLE:
            status, code = _TABLE[cls]
            break
    else:
        return 500, "internal_error"
    if isinstance(exc, HTTPException):
        status = status or exc.code or 500
        code = code or _snake(exc.name)
    if isinstance(exc, ApiError):
        status, code = status or exc.status, code or exc.code
    return int(status or 500), str(code or getattr(exc, "code", None) or "error")


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


_MAX_CHARS = 200


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 3] + "..."


def _value(value: Any) -> Any:
    """A JSON-safe, bounded rendering of a received value (large geometries must not flood the body)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _short(value)
    if isinstance(value, (list, tuple)) and len(value) <= 20 and all(
            v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return [_value(v) for v in value]
    return _short(value)


def _allowed(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value]
    return str(value)


def _translated(code: str, fallback: str) -> str:
    lang = current_lang()
    for key in (f"error.{code}", f"error.{fallback}"):
        if key in catalogue(lang) or key in catalogue(DEFAULT_LANGUAGE):
            return t(key, lang)
    return t("error.internal_error", lang)


def _problems(exc: BaseException) -> list[dict[str, Any]]:
    problems = getattr(exc, "problems", None)
    if problems is not None:  # layers.store.errors.ValidationError: a list of RowError
        return [{"row": p.row, "field": p.field, "value": _value(p.value), "allowed": _allowed(p.allowed),
                 "file": p.file} for p in problems]
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__module__.startswith("pydantic"):
        return [{"row": None, "field": ".".join(str(x) for x in e.get("loc", ())) or None,
                 "value": _value(e.get("input")), "allowed": e.get("msg"), "file": None} for e in errors()]
    return []


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body for an exception (see the module docstring for the shape)."""
    status, code = classify(exc)
    fallback = {400: "invalid_parameter", 404: "not_found", 422: "validation_error",
                503: "database_unavailable"}.get(status, "http" if status < 500 else "internal_error")
    err: dict[str, Any] = {"code": code, "message": _translated(code, fallback)}
    if status >= 500 and code == "internal_error":
        err["detail"] = None  # never leak internals
    elif code == "database_unavailable":
        err["detail"] = "the database cannot be reached; retry later"
    else:
        err["detail"] = exc.description if isinstance(exc, HTTPException) else _short(str(exc))
    problems = _problems(exc)
    first = problems[0] if problems else {}
    err["field"] = getattr(exc, "field", None) or first.get("field")
    err["value"] = _value(getattr(exc, "value", None)) if hasattr(exc, "value") else first.get("value")
    err["allowed"] = _allowed(getattr(exc, "allowed", None) or None) or first.get("allowed")
    err["problems"] = problems
    context = getattr(exc, "context", None)
    if isinstance(context, Mapping) and context:
        err["context"] = dict(context)  # what the caller needs to act on a conflict (e.g. the task that won)
    return status, {"error": err}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(obj, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _finite(obj: Any) -> Any:
    """NaN and infinities become null (JSON has no NaN; a missing value stays missing, never 0)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Compact UTF-8 JSON; datetimes as ISO 8601, numpy scalars as numbers, NaN as null."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default)
    except ValueError:
        return json.dumps(_finite(json.loads(json.dumps(obj, default=_json_default))), ensure_ascii=False,
                          separators=(",", ":"), allow_nan=False)


def json_response(obj: Any, status: int = 200, *, mimetype: str = "application/json",
                  headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response (use ``mimetype="application/geo+json"`` for GeoJSON)."""
    return Response(dumps(obj), status=status, mimetype=mimetype, headers=dict(headers or {}))


def error_response(exc: BaseException) -> Response:
    """The JSON response for any exception raised while serving an API request; 5xx are logged."""
    status, body = error_body(exc)
    if status >= 500:
        if body["error"]["code"] == "internal_error":
            log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        else:
            log.warning("%s on %s %s: %s", body["error"]["code"], request.method, request.path, exc)
    headers = {"Retry-After": "5"} if status == 503 else {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return json_response(body, status, headers=headers)


def register_error_handlers(target: Flask | Blueprint) -> None:
    """Make every exception raised by ``target``'s views answer with :func:`error_response`."""
    target.register_error_handler(Exception, error_response)
