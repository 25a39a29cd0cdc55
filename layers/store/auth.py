"""Accounts, roles and API tokens: who may read and write the store.

Public: :data:`ROLES`, :data:`TOKEN_ACCESS`, :data:`TOKEN_SCOPES`, :class:`AuthError`, :class:`Principal`, :func:`hash_password`,
:func:`check_password`, :func:`add_user`, :func:`set_password`, :func:`set_disabled`, :func:`list_users`,
:func:`get_user`, :func:`verify_password`, :func:`create_token`, :func:`revoke_token`, :func:`list_tokens`,
:func:`verify_token`, :func:`token_allows`, :func:`ensure_demo_accounts`, :func:`recent_changes`,
:func:`start_session`, :func:`session_user`, :func:`end_session`, :func:`end_sessions`, :func:`login_wait_s`,
:func:`record_login_failure`, :func:`clear_login_failures`.

Passwords are kept as argon2id hashes (argon2-cffi's defaults), tokens as the sha256 of a 256-bit random secret (a
slow hash adds nothing to a secret that cannot be guessed). Nothing here knows about HTTP: ``dashboards.auth`` turns
the answers into sessions, 401 and 403. Every function takes a SQLAlchemy ``Session`` or ``Connection`` first and
does not commit; the caller's transaction decides.

Roles: ``display`` (a wall: reads only), ``viewer`` (reads: wall, leader), ``analyst`` (draws, annotates, runs
analyses), ``planner`` (as analyst, plus shelter planning), ``dispatcher`` (the duty officer: tasks, response plans,
the duty log), ``admin`` (everything: imports, users, tokens).

Examples
--------
>>> h = hash_password("correct horse battery staple")
>>> h.startswith("$argon2id$"), check_password(h, "correct horse battery staple"), check_password(h, "wrong")
(True, True, False)
>>> p = Principal(kind="token", name="feed-110", role=None, layers=("incidents",), access="write")
>>> token_allows(p, "incidents", write=True), token_allows(p, "shelters", write=True)
(True, False)
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from layers.store.errors import NotFoundError, RowError, StoreError, ValidationError
from layers.store.models import (
    FEATURE_MODELS,
    USER_ROLES,
    ApiToken,
    FeatureHistory,
    LoginFailure,
    User,
    UserSession,
)

ROLES: Final = USER_ROLES
TOKEN_ACCESS: Final = ("read", "write")
#: the layer scope that means "every layer"
ALL_LAYERS: Final = "*"
#: what a token may be scoped to: the feature layers, and ``observations`` (stations' readings, POST
#: /api/v1/observations)
TOKEN_SCOPES: Final = (*sorted(FEATURE_MODELS), "observations")
TOKEN_PREFIX: Final = "srt_"
MIN_PASSWORD_CHARS: Final = 10
DEMO_ACCOUNTS: Final = (("display", "display"), ("analyst", "analyst"), ("planner", "planner"),
                        ("monitor", "monitor"), ("dispatcher", "dispatcher"), ("admin", "admin"))
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{1,63}")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_hasher = PasswordHasher()
# verifying against this when the user does not exist keeps the time of a failed login the same either way
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

Conn = Session | Connection


class AuthError(StoreError, PermissionError):
    """Wrong password, unknown or disabled user, revoked or unknown token (the message does not say which)."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (``kind="user"``, with a role) or an API token (``kind="token"``, with a scope)."""

    kind: str
    name: str
    role: str | None = None
    layers: tuple[str, ...] = ()
    access: str | None = None
    id: int | None = None
    display_name: str | None = None

    @property
    def history_name(self) -> str:
        """The name written to the history: the username, or ``token:<name>``."""
        return self.name if self.kind == "user" else f"token:{self.name}"


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; a new hash on every call)."""
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; False (never an error) for a malformed hash."""
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise ValidationError([RowError(None, "username", username,
                                        "2-64 characters: lower-case letters, digits, '_', '.', '-'")])
    return username


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError([RowError(None, "role", role, ", ".join(ROLES))])
    return role


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError([RowError(None, "password", "*" * len(password or ""),
                                        f"at least {MIN_PASSWORD_CHARS} characters")])
    return password


def add_user(conn: Conn, username: str, password: str, *, role: str, display_name: str | None = None,
             demo_password: bool = False) -> int:
    """Create an account; returns its id.

    Raises
    ------
    layers.store.errors.ValidationError
        Bad username, unknown role, password shorter than :data:`MIN_PASSWORD_CHARS`, or the username is taken.
    """
    _check_username(username)
    _check_role(role)
    _check_password(password)
    if conn.execute(select(User.id).where(User.username == username)).first() is not None:
        raise ValidationError([RowError(None, "username", username, "a username not taken yet")])
    return int(conn.execute(insert(User).values(
        username=username, display_name=display_name, role=role, password_hash=hash_password(password),
        demo_password=demo_password).returning(User.id)).scalar_one())


def _user_id(conn: Conn, username: str) -> int:
    uid = conn.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
    if uid is None:
        raise NotFoundError(f"no user {username!r}")
    return int(uid)


def set_password(conn: Conn, username: str, password: str) -> None:
    """Give ``username`` a new password; every session of the account ends (:func:`end_sessions`)."""
    _check_password(password)
    uid = _user_id(conn, username)
    conn.execute(update(User).where(User.id == uid).values(
        password_hash=hash_password(password), demo_password=False, password_changed_at=func.clock_timestamp()))
    end_sessions(conn, uid)


def set_disabled(conn: Conn, username: str, disabled: bool = True) -> None:
    """Disable (or enable again) an account; a disabled account cannot log in and its sessions end."""
    uid = _user_id(conn, username)
    conn.execute(update(User).where(User.id == uid).values(disabled=disabled))
    if disabled:
        end_sessions(conn, uid)


# --- sessions: server-side, so that logging out really ends one ---------------------------------------------------

def start_session(conn: Conn, user_id: int) -> str:
    """A new session of ``user_id``; returns its id (kept in the signed cookie; only its sha256 is stored)."""
    sid = secrets.token_urlsafe(32)
    conn.execute(insert(UserSession).values(id_hash=token_hash(sid), user_id=int(user_id)))
    return sid


def session_user(conn: Conn, user_id: int, sid: Any) -> Principal | None:
    """The user of a live session (not revoked, account enabled), as :func:`get_user` gives it; else None."""
    if not isinstance(sid, str) or not 20 <= len(sid) <= 100:
        return None
    row = conn.execute(select(User.__table__).join(UserSession, UserSession.user_id == User.id).where(
        UserSession.id_hash == token_hash(sid), UserSession.user_id == int(user_id),
        UserSession.revoked_at.is_(None))).one_or_none()
    if row is None or row.disabled:
        return None
    return Principal(kind="user", name=row.username, role=row.role, id=row.id, display_name=row.display_name,
                     access=row.password_changed_at.isoformat())


def end_session(conn: Conn, sid: Any) -> None:
    """End one session (logout): its cookie, replayed later, is refused."""
    if isinstance(sid, str):
        conn.execute(update(UserSession).where(UserSession.id_hash == token_hash(sid),
                                               UserSession.revoked_at.is_(None)).values(revoked_at=func.now()))


def end_sessions(conn: Conn, user_id: int) -> int:
    """End every live session of ``user_id`` (new password, account disabled); returns how many."""
    done = conn.execute(update(UserSession).where(UserSession.user_id == int(user_id),
                                                  UserSession.revoked_at.is_(None))
                        .values(revoked_at=func.now()).returning(UserSession.id_hash)).all()
    return len(done)


# --- failed logins: throttled per account and per address, with backoff -------------------------------------------

#: failures counted over this window
THROTTLE_WINDOW_S: Final = 900
#: failures allowed before the backoff starts, per account and per address (an office shares one address)
FREE_FAILURES: Final = {"username": 3, "address": 10}
#: longest wait imposed, seconds
MAX_BACKOFF_S: Final = 300.0


def _backoff_s(n: int, free: int) -> float:
    """Wait after the n-th failure: none for the first ``free``, then 1, 2, 4 ... s up to :data:`MAX_BACKOFF_S`.

    >>> [_backoff_s(n, 3) for n in (1, 3, 4, 5, 20)]
    [0.0, 0.0, 1.0, 2.0, 300.0]
    """
    return 0.0 if n <= free else min(2.0 ** (n - free - 1), MAX_BACKOFF_S)


def login_wait_s(conn: Conn, username: str, address: str) -> float:
    """Seconds before ``username`` may try again from ``address`` (0: now), from the failures of the window."""
    wait = 0.0
    for column, value in ((LoginFailure.username, username[:64]), (LoginFailure.address, address[:64])):
        n, last, now = conn.execute(select(func.count(), func.max(LoginFailure.at), func.now()).where(
            column == value, LoginFailure.at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, THROTTLE_WINDOW_S)
        )).one()
        if n and last is not None:
            delay = _backoff_s(int(n), FREE_FAILURES[column.key])
            wait = max(wait, delay - (now - last).total_seconds())
    return max(wait, 0.0)


def record_login_failure(conn: Conn, username: str, address: str) -> None:
    """Count one failed login (and forget failures older than a day)."""
    conn.execute(insert(LoginFailure).values(username=username[:64], address=address[:64]))
    conn.execute(delete(LoginFailure).where(LoginFailure.at < func.now() - func.make_interval(0, 0, 0, 1)))


def clear_login_failures(conn: Conn, username: str) -> None:
    """Forget the failures of ``username`` (after a successful login; the address keeps its count)."""
    conn.execute(delete(LoginFailure).where(LoginFailure.username == username[:64]))


def set_role(conn: Conn, username: str, role: str) -> None:
    """Change the role of ``username``."""
    _check_role(role)
    conn.execute(update(User).where(User.id == _user_id(conn, username)).values(role=role))


def list_users(conn: Conn) -> list[dict[str, Any]]:
    """Every account (no hashes): id, username, display_name, role, disabled, demo_password, created_at."""
    rows = conn.execute(select(User.id, User.username, User.display_name, User.role, User.disabled,
                               User.demo_password, User.created_at, User.password_changed_at)
                        .order_by(User.username)).mappings().all()
    return [dict(r) for r in rows]


def get_user(conn: Conn, user_id: int) -> Principal | None:
    """The enabled user ``user_id`` as a :class:`Principal` (with ``password_changed_at`` as ``access``), or None."""
    row = conn.execute(select(User.__table__).where(User.id == user_id)).one_or_none()
    if row is None or row.disabled:
        return None
    return Principal(kind="user", name=row.username, role=row.role, id=row.id, display_name=row.display_name,
                     access=row.password_changed_at.isoformat())


def verify_password(conn: Conn, username: str, password: str) -> Principal:
    """The user, if ``password`` is theirs and the account is enabled.

    Raises
    ------
    AuthError
        Unknown user, wrong password or disabled account (one message for all three).
    """
    row = conn.execute(select(User.__table__).where(User.username == username)).one_or_none() \
        if isinstance(username, str) and len(username) <= 64 else None
    ok = check_password(row.password_hash if row is not None else _DUMMY_HASH, password or "")
    if row is None or not ok or row.disabled:
        raise AuthError("unknown user, wrong password or disabled account")
    if _hasher.check_needs_rehash(row.password_hash):
        conn.execute(update(User).where(User.id == row.id).values(password_hash=hash_password(password)))
    return Principal(kind="user", name=row.username, role=row.role, id=row.id, display_name=row.display_name,
                     access=row.password_changed_at.isoformat())


def token_hash(token: str) -> str:
    """The sha256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_scope(layers: list[str] | tuple[str, ...], access: str) -> list[str]:
    if access not in TOKEN_ACCESS:
        raise ValidationError([RowError(None, "access", access, ", ".join(TOKEN_ACCESS))])
    allowed = list(TOKEN_SCOPES) + [ALL_LAYERS]
    bad = [x for x in layers if x not in allowed]
    if bad or not layers:
        raise ValidationError([RowError(None, "layers", ",".join(bad) if bad else "",
                                        "one or more of " + ", ".join(allowed))])
    return sorted(set(layers))


def create_token(conn: Conn, name: str, *, layers: list[str] | tuple[str, ...], access: str,
                 created_by: str) -> str:
    """Create an API token; returns the secret (shown once: only its sha256 is stored).

    Parameters
    ----------
    name : str
        Unique among live tokens (e.g. the feed's name).
    layers : list of str
        Layers the token may touch, or ``["*"]`` for all.
    access : {"read", "write"}
        ``write`` includes read.
    created_by : str
        Who made it (username).
    """
    if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
        raise ValidationError([RowError(None, "name", name, "1-64 characters: letters, digits, '_', '.', ':', '-'")])
    scope = _check_scope(layers, access)
    live = conn.execute(select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).first()
    if live is not None:
        raise ValidationError([RowError(None, "name", name, "a name no live token has")])
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(insert(ApiToken).values(name=name, token_hash=token_hash(secret), prefix=secret[:10],
                                         layers=scope, access=access, created_by=created_by))
    return secret


def revoke_token(conn: Conn, name: str) -> None:
    """Revoke the live token called ``name`` (kept, with ``revoked_at``, for the audit trail)."""
    done = conn.execute(update(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
                        .values(revoked_at=func.now()).returning(ApiToken.id)).first()
    if done is None:
        raise NotFoundError(f"no live token {name!r}")


def list_tokens(conn: Conn, *, include_revoked: bool = True) -> list[dict[str, Any]]:
    """Every token (never the secret): name, prefix, layers, access, created_by/at, revoked_at, last_used_at."""
    q = select(ApiToken.id, ApiToken.name, ApiToken.prefix, ApiToken.layers, ApiToken.access, ApiToken.created_by,
               ApiToken.created_at, ApiToken.revoked_at, ApiToken.last_used_at).order_by(ApiToken.created_at)
    if not include_revoked:
        q = q.where(ApiToken.revoked_at.is_(None))
    return [dict(r) for r in conn.execute(q).mappings().all()]


@functools.cache
def _token_stmt() -> Any:
    return select(ApiToken.__table__).where(ApiToken.token_hash == bindparam("hash"))


@functools.cache
def _token_touch_stmt() -> Any:
    """One statement (one round trip, atomic on an autocommit connection): the token's row as it was, and a touch
    of ``last_used_at`` when the token is live and was last used more than a minute ago. Built once: the request
    path checks a token on every call."""
    hit = _token_stmt().cte("hit")
    touched = (update(ApiToken).where(
        ApiToken.id == hit.c.id, hit.c.revoked_at.is_(None),
        (hit.c.last_used_at.is_(None)) | (hit.c.last_used_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 1)))
        .values(last_used_at=func.now()).returning(ApiToken.id).cte("touched"))
    return select(hit, select(func.count()).select_from(touched).scalar_subquery().label("touched"))


def verify_token(conn: Conn, token: str, *, touch: bool = True) -> Principal:
    """The live token whose secret is ``token``; records ``last_used_at`` (at most once a minute).

    Raises
    ------
    AuthError
        Unknown or revoked token.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthError("unknown or revoked token")
    stmt = _token_touch_stmt() if touch else _token_stmt()
    row = conn.execute(stmt, {"hash": token_hash(token)}).one_or_none()
    if row is None or row.revoked_at is not None:
        raise AuthError("unknown or revoked token")
    return Principal(kind="token", name=row.name, layers=tuple(row.layers), access=row.access, id=row.id)


def token_allows(principal: Principal, layer: str | None, *, write: bool) -> bool:
    """Whether a token principal may read (or write) ``layer`` (None: an operation on no particular layer)."""
    if principal.kind != "token":
        return False
    if write and principal.access != "write":
        return False
    if layer is None:
        return not write or ALL_LAYERS in principal.layers
    return ALL_LAYERS in principal.layers or layer in principal.layers


def ensure_demo_accounts(conn: Conn, *, reset: bool = False) -> dict[str, str]:
    """Create the demo accounts (display, analyst, planner, admin) with generated passwords.

    Returns the passwords of the accounts created (or reset) now, to be printed once; existing accounts are left
    alone unless ``reset``. Only hashes are stored, flagged ``demo_password`` (production refuses to start while an
    enabled account still has one).
    """
    made: dict[str, str] = {}
    for username, role in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(12)
        exists = conn.execute(select(User.id).where(User.username == username)).first() is not None
        if not exists:
            add_user(conn, username, password, role=role, display_name=username, demo_password=True)
        elif reset:
            set_password(conn, username, password)
            conn.execute(update(User).where(User.username == username).values(demo_password=True, disabled=False))
        else:
            continue
        made[username] = password
    return made


def demo_passwords_in_use(conn: Conn) -> list[str]:
    """Usernames of enabled accounts that still have a password generated by the demo."""
    return list(conn.execute(select(User.username).where(User.demo_password.is_(True), User.disabled.is_(False))
                             .order_by(User.username)).scalars())


def recent_changes(conn: Conn, *, limit: int = 100, before: datetime | None = None) -> list[dict[str, Any]]:
    """The latest feature changes (the audit trail): changed_at, changed_by, layer, op, feature_id, name."""
    q = select(FeatureHistory.id, FeatureHistory.changed_at, FeatureHistory.changed_by, FeatureHistory.layer,
               FeatureHistory.op, FeatureHistory.feature_id, FeatureHistory.row["name"].astext.label("name"))
    if before is not None:
        q = q.where(FeatureHistory.changed_at < before)
    rows = conn.execute(q.order_by(FeatureHistory.changed_at.desc(), FeatureHistory.id.desc())
                        .limit(max(1, min(int(limit), 1000)))).mappings().all()
    return [dict(r) for r in rows]
