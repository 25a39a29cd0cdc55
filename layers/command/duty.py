"""The duty log (值班日志): the official record of the duty officer's shift, append-only.

Public: :data:`MAX_TEXT_CHARS`, :data:`MAX_ENTRIES`, :func:`record`, :func:`add_manual`, :func:`entries`, :func:`check_text`,
:func:`db_now`.

Every dispatch, task transition, plan step (activation, level change, close) and checklist action writes one line
here in the same transaction as the change itself; a warning confirmation writes one through :func:`record`
(``kind="warning"``), and a person adds their own lines (:func:`add_manual`). Machine lines carry a message
``code`` and its ``params`` (names and numbers as they were at the time), rendered in the reader's language by the
server (``command.log.<code>``); ``text`` holds a person's own words. A trigger refuses UPDATE and DELETE: a
correction is a new line.

>>> MAX_TEXT_CHARS
2000
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, func, insert, literal_column, or_, select
from sqlalchemy.orm import Session

from layers.store.db import set_acting_user
from layers.store.errors import RowError, ValidationError
from layers.store.models import DUTY_LOG_KINDS, DutyLogEntry

__all__ = ["MAX_TEXT_CHARS", "MAX_ENTRIES", "record", "add_manual", "entries", "db_now", "check_text"]

Db = Session | Connection
MAX_TEXT_CHARS = 2000
#: most lines one :func:`entries` call returns
MAX_ENTRIES = 5000
L = DutyLogEntry


def db_now(conn: Db, now: datetime | None = None) -> datetime:
    """``now`` if given (a controllable clock: tests, replays of a drill), else the database's transaction time."""
    if now is not None:
        if now.tzinfo is None:
            raise ValidationError([RowError(None, "now", now.isoformat(), "a time with a time zone")])
        return now
    return conn.execute(select(func.now())).scalar_one()


def check_text(value: Any, field: str, *, required: bool = False) -> str | None:
    """A person's text: None (unless ``required``) or 1..:data:`MAX_TEXT_CHARS` characters after stripping.

    >>> check_text("  到达现场 ", "note"), check_text(None, "note")
    ('到达现场', None)
    """
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_TEXT_CHARS:
        raise ValidationError([RowError(None, field, value, f"a text of 1..{MAX_TEXT_CHARS} characters")])
    return value.strip()


def record(conn: Db, *, kind: str, author: str, code: str | None = None, text: str | None = None,
           params: Mapping[str, Any] | None = None, task_id: int | None = None, activation_id: int | None = None,
           incident_id: int | None = None, at: datetime | None = None) -> int:
    """Append one line; returns its id. Runs in the caller's transaction (the line commits with the change); the
    history names the transaction's acting user (:func:`layers.store.db.set_acting_user`, which the caller sets).

    Parameters
    ----------
    kind : str
        One of :data:`layers.store.models.DUTY_LOG_KINDS`.
    author : str
        Who (username, ``token:<name>``).
    code, params : optional
        Message key (``dispatch``, ``task.en_route``, ``plan.activated`` ...) and its values.
    text : str, optional
        A person's words.
    task_id, activation_id, incident_id : int, optional
        What the line is about (for filtering).
    at : datetime, optional
        When it happened (default: the database's transaction time).
    """
    if kind not in DUTY_LOG_KINDS:
        raise ValidationError([RowError(None, "kind", kind, ", ".join(DUTY_LOG_KINDS))])
    values: dict[str, Any] = {"author": author[:64], "kind": kind, "code": code, "text": text,
                              "params": dict(params or {}), "task_id": task_id, "activation_id": activation_id,
                              "incident_id": incident_id}
    if at is not None:
        values["at"] = at
    return int(conn.execute(insert(L).values(**values).returning(L.id)).scalar_one())


def add_manual(conn: Db, text: Any, *, author: str, incident_id: Any = None, at: datetime | None = None) -> int:
    """A person's own line (``kind="manual"``).

    Raises
    ------
    ValidationError
        Empty or too long text (field ``text``), an ``incident_id`` that is not an integer.
    """
    body = check_text(text, "text", required=True)
    if incident_id is not None and (isinstance(incident_id, bool) or not isinstance(incident_id, int)):
        raise ValidationError([RowError(None, "incident_id", incident_id, "an incident id (integer) or null")])
    set_acting_user(conn, author)
    return record(conn, kind="manual", author=author, text=body, incident_id=incident_id, at=at)


def entries(conn: Db, *, since: datetime | None = None, until: datetime | None = None,
            kinds: Sequence[str] | None = None, author: str | None = None, query: str | None = None,
            incident_id: int | None = None, limit: int = 500, newest_first: bool = True) -> list[dict[str, Any]]:
    """Lines of the log, filtered: ``since <= at < until``, of ``kinds``, by ``author``, mentioning ``query``
    (in the text or in the values of the params, case-insensitive), about ``incident_id``.

    Returns
    -------
    list of dict
        ``id, at, author, kind, code, text, params, task_id, activation_id, incident_id``; newest first unless
        ``newest_first`` is False; at most ``limit`` (capped at :data:`MAX_ENTRIES`).

    Raises
    ------
    ValidationError
        An unknown kind (field ``kind``), ``until`` not after ``since``.
    """
    cond: list[Any] = []
    if kinds:
        bad = [k for k in kinds if k not in DUTY_LOG_KINDS]
        if bad:
            raise ValidationError([RowError(None, "kind", bad[0], ", ".join(DUTY_LOG_KINDS))])
        cond.append(L.kind.in_(list(kinds)))
    if since is not None and until is not None and until <= since:
        raise ValidationError([RowError(None, "until", until.isoformat(), f"a time after since ({since.isoformat()})")])
    if since is not None:
        cond.append(L.at >= since)
    if until is not None:
        cond.append(L.at < until)
    if author:
        cond.append(L.author == author)
    if incident_id is not None:
        cond.append(L.incident_id == int(incident_id))
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        values = func.jsonb_path_query_array(L.params, literal_column("'strict $.*'::jsonpath"))  # values, not keys
        cond.append(or_(L.text.ilike(pattern), values.cast(Text).ilike(pattern)))
    order = (L.at.desc(), L.id.desc()) if newest_first else (L.at, L.id)
    stmt = (select(L.id, L.at, L.author, L.kind, L.code, L.text, L.params, L.task_id, L.activation_id,
                   L.incident_id).where(*cond).order_by(*order).limit(max(1, min(int(limit), MAX_ENTRIES))))
    return [dict(r) for r in conn.execute(stmt).mappings()]
