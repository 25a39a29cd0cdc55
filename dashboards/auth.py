"""Who may do what on the server: sessions, API tokens, the access policy, CSRF and security headers.

Public: :func:`install_auth`, :data:`ROLE_CAPABILITIES`, :data:`POLICY`, :data:`PAGE_POLICY`, :class:`Rule`,
:class:`AuthConfigError`, :func:`resolve_secret_key`, :func:`check_production`, :func:`current_principal`,
:func:`current_user_name`, :func:`allowed`, :func:`csrf_token`, :func:`user_badge`, :func:`content_security_policy`.

``install_auth(app, settings)`` (one line at the end of ``create_app``) adds ``/login`` and ``/logout`` and one
``before_request`` that decides every request from a policy table, so endpoint modules need no decorator:

* who: ``Authorization: Bearer <token>`` (an API token, :mod:`layers.store.auth`; also HTTP Basic with the token as
  password, for GIS clients), else the signed session cookie
  (``flask.session``, signed with ``settings.secret_key``; in demo/development a generated key kept in
  ``<state_dir>/secret_key`` so sessions survive restarts), else anonymous.
* what: :data:`POLICY` maps ``(URL rule, METHOD)`` to a :class:`Rule` (a capability and, optionally, the layer the
  call writes; by default the ``<layer>`` of the URL). Unlisted GET/HEAD are ``read``; unlisted writes under
  ``/api/v1`` are ``write``; Dash callbacks (``/_dash-update-component``) are ``read`` (a callback that writes checks
  :func:`allowed` itself). Pages are listed by path in :data:`PAGE_POLICY`.
* answers: anonymous -> 401 (API) or a redirect to ``/login`` (pages); known but not allowed -> 403.
  Anonymous reads are allowed only where ``settings.mode`` is in :data:`ANONYMOUS_READ_MODES`.
* CSRF: every state-changing request made with a session cookie carries the session's CSRF token, in the header
  ``X-CSRF-Token`` (or ``X-CSRFToken``, which Dash's renderer sends by itself from the ``_csrf_token`` cookie) or
  the form field ``csrf_token``; else 403. Calls with a bearer token are exempt (no ambient credentials).
* the wall runs under a ``display`` account (reads only) whose session lasts :data:`DISPLAY_SESSION_DAYS` days and
  is renewed while the wall polls, so the hall never sees a login page.
* every response carries the security headers (CSP, nosniff, frame-ancestors 'none', X-Frame-Options, Referrer-Policy).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

from flask import Blueprint, Flask, Response, current_app, g, has_request_context, redirect, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as BaseResponse

from dashboards.context import API_PREFIX, OGC_PREFIX, db_engine, db_read, set_acting_user
from dashboards.context import settings as current_settings
from dashboards.errors import ApiError, classify, error_body, json_response
from dashboards.i18n import LANGUAGES, current_lang, t
from layers.store.settings import Settings

log = logging.getLogger(__name__)

#: what each role may do; ``read`` is every GET, ``analyse`` the analysis calls, ``draw`` impact zones and
#: annotations, ``plan`` shelter planning, ``dispatch`` tasks, response plans and the duty log (指挥调度),
#: ``warn`` confirm or dismiss automatic warnings (监测员, the monitor role; duty officers too), ``write`` any
#: layer, ``admin`` imports, users and tokens
ROLE_CAPABILITIES: Final[dict[str, frozenset[str]]] = {
    "display": frozenset({"read"}),
    "viewer": frozenset({"read"}),
    "analyst": frozenset({"read", "analyse", "draw"}),
    "planner": frozenset({"read", "analyse", "draw", "plan"}),
    "monitor": frozenset({"read", "warn"}),
    "dispatcher": frozenset({"read", "analyse", "dispatch", "warn"}),
    "admin": frozenset({"read", "analyse", "draw", "plan", "dispatch", "warn", "write", "admin"}),
}
#: capabilities a token's ``access`` may give (its layer scope is checked as well, where the call names a layer)
TOKEN_CAPABILITIES: Final[dict[str, frozenset[str]]] = {
    "read": frozenset({"read", "analyse"}),
    "write": frozenset({"read", "analyse", "draw", "dispatch", "write"}),
}
WRITE_CAPABILITIES: Final = frozenset({"draw", "write", "plan", "dispatch", "warn", "admin"})
ANONYMOUS_READ_MODES: Final = frozenset({"demo", "development"})
USER_SESSION_HOURS: Final = 12
DISPLAY_SESSION_DAYS: Final = 400  # browsers cap cookie lifetimes at 400 days
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_COOKIE: Final = "_csrf_token"  # the name dash-renderer reads
CSRF_HEADERS: Final = ("X-CSRF-Token", "X-CSRFToken")
CSRF_FIELD: Final = "csrf_token"
SESSION_COOKIE: Final = "sitroom_session"
HSTS_MAX_AGE_S: Final = 365 * 86400
#: keys of a JSON answer that name who changed something: hidden from anonymous readers (demo mode)
NAME_KEYS: Final = ("updated_by", "changed_by", "created_by")
MIN_SECRET_CHARS: Final = 32
#: least entropy (estimated by :func:`secret_bits`) of a production secret key
MIN_SECRET_BITS: Final = 128
#: secrets that must never be used in production (lower-cased)
WEAK_SECRETS: Final = frozenset({"", "secret", "changeme", "change-me", "dev", "development", "demo", "sitroom",
                                 "password", "default", "test", "insecure"})
#: paths served to anyone (the login page, health, the API description, static files, the offline basemap)
PUBLIC_PREFIXES: Final = ("/login", "/assets/", "/_dash-component-suites/", "/_favicon", "/favicon",
                          f"{API_PREFIX}/health", f"{API_PREFIX}/openapi.json", "/tiles/")
#: paths served to anyone as they are: OGC API's landing page, conformance, API definition and tiling schemes
#: (its collections and features are data: the policy decides, per collection, as ``<layer>``)
PUBLIC_PATHS: Final = frozenset({"/logout", OGC_PREFIX, f"{OGC_PREFIX}/", f"{OGC_PREFIX}/conformance",
                                 f"{OGC_PREFIX}/api", f"{OGC_PREFIX}/tileMatrixSets",
                                 f"{OGC_PREFIX}/tileMatrixSets/WebMercatorQuad"})
DASH_CALLBACK_PATH: Final = "/_dash-update-component"
BASEMAP_HOSTS: Final[dict[str, tuple[str, ...]]] = {
    "offline": (),
    "osm": ("https://tile.openstreetmap.org",),
    "tianditu": ("https://*.tianditu.gov.cn",),
}
_USER_CACHE_S = 5.0


class AuthConfigError(RuntimeError):
    """The server must not start with these settings (production without a real secret, demo passwords ...)."""


#: a rule's ``layer`` for calls that return several layers at once (the wall, the sitrep, a callback): a token must
#: be scoped to every layer (``*``)
EVERY_LAYER: Final = "*"


@dataclass(frozen=True)
class Rule:
    """What a route needs: a capability and the layer(s) it touches.

    ``layer`` names the layer (:data:`EVERY_LAYER` for a call that returns several); None means the ``<layer>`` of
    the URL, else the comma-separated query parameter ``layer_param`` (default ``default_layers``), else no layer.
    """

    capability: str
    layer: str | None = None
    layer_param: str | None = None
    default_layers: tuple[str, ...] = ()


#: ``(URL rule, METHOD) -> Rule``; the lead and endpoint authors add lines here (see the module docstring)
POLICY: dict[tuple[str, str], Rule] = {
    (f"{API_PREFIX}/analysis/buffer", "POST"): Rule("analyse"),
    # drawings (dashboards/api/drawings.py): analysts' impact zones and annotations
    (f"{API_PREFIX}/impact-zones", "POST"): Rule("draw", layer="impact_zones"),
    (f"{API_PREFIX}/annotations", "POST"): Rule("draw", layer="annotations"),
    (f"{API_PREFIX}/annotations/<int:annotation_id>", "PATCH"): Rule("draw", layer="annotations"),
    (f"{API_PREFIX}/annotations/<int:annotation_id>", "DELETE"): Rule("draw", layer="annotations"),
    # feeds (dashboards/api/write.py): any layer, named by the URL's <layer>; CAP warnings become hazards
    (f"{API_PREFIX}/layers/<layer>", "POST"): Rule("write"),
    (f"{API_PREFIX}/layers/<layer>/<int:feature_id>", "PATCH"): Rule("write"),
    (f"{API_PREFIX}/layers/<layer>/<int:feature_id>", "DELETE"): Rule("write"),
    (f"{API_PREFIX}/cap", "POST"): Rule("write", layer="hazards"),
    # monitoring (dashboards/api/monitor.py): stations' readings from feeds; a person decides automatic warnings
    (f"{API_PREFIX}/observations", "POST"): Rule("write", layer="observations"),
    (f"{API_PREFIX}/monitor/warnings/<int:warning_id>/confirm", "POST"): Rule("warn"),
    (f"{API_PREFIX}/monitor/warnings/<int:warning_id>/dismiss", "POST"): Rule("warn"),
    # command and dispatch (dashboards/api/command.py): reads that name incidents and resources need a token scoped to
    # every layer, and so do writes (a dispatch changes a resource's status)
    (f"{API_PREFIX}/tasks", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/tasks", "POST"): Rule("dispatch", layer=EVERY_LAYER),
    (f"{API_PREFIX}/tasks/<int:task_id>", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/tasks/<int:task_id>", "PATCH"): Rule("dispatch", layer=EVERY_LAYER),
    (f"{API_PREFIX}/tasks/<int:task_id>/history", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/incidents/<int:incident_id>/suggestions", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/plans", "GET"): Rule("read"),
    (f"{API_PREFIX}/plans/activations", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/plans/activations", "POST"): Rule("dispatch", layer=EVERY_LAYER),
    (f"{API_PREFIX}/plans/activations/<int:activation_id>", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/plans/activations/<int:activation_id>", "PATCH"): Rule("dispatch", layer=EVERY_LAYER),
    (f"{API_PREFIX}/plans/actions/<int:action_id>", "PATCH"): Rule("dispatch", layer=EVERY_LAYER),
    (f"{API_PREFIX}/duty-log", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/duty-log", "POST"): Rule("dispatch", layer=EVERY_LAYER),
    # reads that return layer data: a token's layer scope applies (several layers at once: every layer)
    (f"{API_PREFIX}/impact-zones", "GET"): Rule("read", layer="impact_zones"),
    (f"{API_PREFIX}/annotations", "GET"): Rule("read", layer="annotations"),
    (f"{API_PREFIX}/annotations/<int:annotation_id>", "GET"): Rule("read", layer="annotations"),
    (f"{API_PREFIX}/history", "GET"): Rule("read", layer_param="layer", default_layers=(EVERY_LAYER,)),
    (f"{API_PREFIX}/situation", "GET"): Rule("read", layer_param="layers", default_layers=(
        "hazards", "incidents", "resources", "shelters", "annotations", "impact_zones")),
    (f"{API_PREFIX}/wall/snapshot", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/reports/sitrep", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/reports/sitrep/sent", "POST"): Rule("analyse", layer=EVERY_LAYER),
    (f"{API_PREFIX}/analysis/risk", "GET"): Rule("read", layer=EVERY_LAYER),
    (f"{API_PREFIX}/analysis/nearest", "GET"): Rule("analyse", layer="resources"),
    (f"{API_PREFIX}/analysis/nearest", "POST"): Rule("analyse", layer="resources"),
    (f"{API_PREFIX}/analysis/impact", "POST"): Rule("analyse", layer=EVERY_LAYER),
    (f"{API_PREFIX}/analysis/shelter-coverage", "POST"): Rule("analyse", layer="shelters"),
    # Dash callbacks: decided per callback by CALLBACK_POLICY below
    (DASH_CALLBACK_PATH, "POST"): Rule("read", layer=EVERY_LAYER),
}

#: Dash callbacks, by the ``id.property`` of the callback's first output -> the capability it needs, that of the API
#: route serving the same data (named on each line). Every server-side callback of the app is listed; one that is
#: not is refused (403), and ``tests/dashboards/test_callback_policy.py`` calls every callback as every role.
CALLBACK_POLICY: dict[str, str] = {
    "_pages_content.children": "read",          # the page router; plus the page's own capability (PAGE_POLICY)
    "wall-kpi-incidents.children": "read",      # the wall's picture: GET /wall/snapshot
    "leader-region-layer.children": "read",     # GET /analysis/risk
    "leader-cell-layer.children": "read",       # GET /analysis/risk?cells_bbox=
    "leader-weight-blue.value": "read",         # the weights' reset (no data)
    "analyst-store-pending.data": "draw",       # POST /impact-zones, /annotations; the card: POST /analysis/impact
    "analyst-card.children": "analyse",         # the card drawn from the page's own store
    "analyst-buffer-source.children": "analyse",
    "analyst-zones-layer.children": "analyse",  # GET /impact-zones, /annotations
    "analyst-store-card.data": "analyse",       # POST /analysis/impact
    "analyst-store-selected.data": "analyse",   # GET /annotations/<id>
    "analyst-store-version.data": "draw",       # PATCH / DELETE /annotations/<id>
    "analyst-replay-layer.children": "analyse",  # GET /situation
    "planner-county.options": "plan",           # the planner's scope choices
    "planner-distance.value": "plan",
    "planner-result.data": "plan",              # POST /analysis/shelter-coverage, as the planner
    "planner-download.data": "plan",            # the export of that run
    "admin-message.children": "admin",          # every action of /admin: accounts and tokens (sitroom users, token)
    "monitor-station-layer.data": "read",       # GET /monitor/stations (and its replay)
    "monitor-warning-layer.children": "read",   # GET /monitor/warnings (and the replay of /monitor/stations)
    "monitor-station.value": "read",            # a click on a station picks it (no data)
    "monitor-plot.figure": "read",              # GET /monitor/stations/<code>/series
    "monitor-status.children": "warn",          # POST /monitor/warnings/<id>/confirm | dismiss
    "wall-monitor-reporting.children": "read",  # the wall's monitoring tile: GET /monitor/stations
    # plus the maps' own callbacks (popups, place search, coordinates, measuring: all "read", as GET /layers/<layer>
    # and GET /places), added by dashboards.components.maplayers.register_maps through add_callback_rule
    "wall-cmd-banners.children": "read",        # the wall's command panel: GET /tasks, /plans/activations
    "command-queue.children": "read",           # GET /situation (incidents) and /tasks
    "command-board.children": "read",           # GET /tasks
    "command-plans.children": "read",           # GET /plans/activations
    "command-log.children": "read",             # GET /duty-log
    "command-details.children": "read",         # GET /incidents/<id>/suggestions
    "command-selected.data": "read",            # the incident picked in the queue (no data)
    "command-status.children": "dispatch",      # every write of /command: POST /tasks, PATCH /tasks/<id>, /plans/..., POST /duty-log
}


def add_callback_rule(key: str, capability: str) -> None:
    """Add the rule of a callback a shared component registers (``key``: ``id.property`` of its first output); a
    different rule for the same key is a programming error."""
    if CALLBACK_POLICY.setdefault(key, capability) != capability:
        raise ValueError(f"callback {key}: already needs {CALLBACK_POLICY[key]!r}, not {capability!r}")

#: page path -> capability to open it (other pages: ``read``)
PAGE_POLICY: dict[str, str] = {
    "/analyst": "analyse",
    "/planner": "plan",
    "/admin": "admin",
}

# --- who is asking --------------------------------------------------------------------------------------------------

from layers.store import auth as store_auth  # noqa: E402 - after the policy tables, which are what readers look for

Principal = store_auth.Principal
_user_cache: dict[tuple[int, str], tuple[float, Principal | None]] = {}
_user_cache_lock = threading.Lock()


def current_principal() -> Principal | None:
    """The user or token of the current request (None: anonymous, or outside a request)."""
    if not has_request_context():
        return None
    return g.get("sitroom_principal")


def current_user_name() -> str:
    """The name history records for the current request: username, ``token:<name>``, else ``anonymous``/``system``."""
    if not has_request_context():
        return "system"
    p = current_principal()
    return p.history_name if p is not None else "anonymous"


def allowed(capability: str, layer: str | None = None) -> bool:
    """Whether the current request may do ``capability`` (on ``layer``): for callbacks that write."""
    p = current_principal()
    if p is None:
        return capability == "read" and _anonymous_read()
    return _permits(p, Rule(capability, layer), layer)


def _permits(p: Principal, rule: Rule, layer: str | None) -> bool:
    if p.kind == "user":
        return rule.capability in ROLE_CAPABILITIES.get(p.role or "", frozenset())
    if rule.capability not in TOKEN_CAPABILITIES.get(p.access or "", frozenset()):
        return False
    return store_auth.token_allows(p, layer, write=rule.capability in WRITE_CAPABILITIES)


def _request_layers(rule: Rule) -> list[str | None]:
    """The layers a request touches under ``rule`` (see :class:`Rule`); ``[None]`` for none in particular."""
    if rule.layer is not None:
        return [rule.layer]
    view_layer = (request.view_args or {}).get("layer")
    if isinstance(view_layer, str):
        return [view_layer]
    if rule.layer_param is not None:
        asked = [x.strip() for x in request.args.get(rule.layer_param, "").split(",") if x.strip()]
        return list(asked or rule.default_layers) or [None]
    return [None]


def _callback_rule() -> Rule:
    """The rule of a Dash callback request, from :data:`CALLBACK_POLICY` (the body is small: see dashboards.limits)."""
    body = request.get_json(silent=True)
    outputs = body.get("outputs") if isinstance(body, dict) else None
    first = outputs[0] if isinstance(outputs, list) and outputs else outputs
    if not isinstance(first, dict) or not isinstance(first.get("property"), str):
        g.sitroom_malformed_callback = True  # answered 400 once the policy and CSRF checks have passed
        return Rule("read", layer=EVERY_LAYER)
    cid = first.get("id")
    key = (cid if isinstance(cid, str) else json.dumps(cid, sort_keys=True, separators=(",", ":"))) + "." + \
        first["property"].split("@", 1)[0]
    capability = CALLBACK_POLICY.get(key)
    if capability is None:
        return Rule("unlisted-callback", layer=EVERY_LAYER)
    if key == "_pages_content.children" and isinstance(body, dict):  # the router: the capability of the page asked
        for item in body.get("inputs") or []:
            if isinstance(item, dict) and item.get("id") == "_pages_location" and item.get("property") == "pathname":
                value = item.get("value")
                path = value if isinstance(value, str) else "/"
                capability = PAGE_POLICY.get(path.rstrip("/") or "/", "read")
    return Rule(capability, layer=EVERY_LAYER)


def _anonymous_read() -> bool:
    return current_settings().mode in ANONYMOUS_READ_MODES


def _user_from_session() -> Principal | None:
    """The user of the session cookie, if its server-side session is live (see :func:`layers.store.auth.session_user`).

    Reads (GET/HEAD) may use an answer up to :data:`_USER_CACHE_S` old (the wall polls); anything that can change
    state asks the database, so a session ended by a logout, a new password or a disabled account never writes again.
    """
    uid, sid = session.get("uid"), session.get("sid")
    if not isinstance(uid, int) or not isinstance(sid, str):
        session.clear()
        return None
    if float(session.get("exp", 0)) < time.time():
        session.clear()
        return None
    now = time.monotonic()
    with _user_cache_lock:
        hit = _user_cache.get((uid, sid)) if request.method in ("GET", "HEAD") else None
    if hit is not None and hit[0] > now:
        user = hit[1]
    else:
        try:
            with db_read() as conn:
                user = store_auth.session_user(conn, uid, sid)
        except Exception as e:
            if classify(e)[0] != 503:
                raise
            if request.method not in SAFE_METHODS and request.path != DASH_CALLBACK_PATH:
                raise
            # the database is down: trust the signed session for reads (the wall keeps its banner, not a login)
            return Principal(kind="user", name=str(session.get("u")), role=str(session.get("r")), id=uid)
        with _user_cache_lock:
            if len(_user_cache) > 10_000:
                _user_cache.clear()
            _user_cache[(uid, sid)] = (now + _USER_CACHE_S, user)
    if user is None or user.access != session.get("pwv"):  # ended, disabled, gone, or the password changed
        session.clear()
        return None
    _renew(user)
    return user


def _session_seconds(role: str | None) -> float:
    return DISPLAY_SESSION_DAYS * 86400.0 if role == "display" else USER_SESSION_HOURS * 3600.0


def _renew(user: Principal) -> None:
    ttl = _session_seconds(user.role)
    if float(session.get("exp", 0)) - time.time() < ttl / 2:  # sliding, but not a new cookie on every poll
        session["exp"] = time.time() + ttl
    if session.get("r") != user.role:
        session["r"] = user.role


def _bearer() -> str | None:
    """The API token of the request: ``Authorization: Bearer <token>``, or HTTP Basic whose password is a token
    (``srt_...``; any user name): GIS clients that cannot set a header, such as QGIS before 3.24 and ArcGIS Pro,
    offer Basic authentication."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value.strip():
        try:
            password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password if password.startswith(store_auth.TOKEN_PREFIX) else None
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# --- the policy -----------------------------------------------------------------------------------------------------

def _is_public(path: str) -> bool:
    return any(path == p or path.startswith(p) for p in PUBLIC_PREFIXES) or path in PUBLIC_PATHS


def _is_api(path: str) -> bool:
    if path.startswith(f"{OGC_PREFIX}/"):  # OGC API: JSON for GIS clients, the login page for a browser
        return request.accept_mimetypes.best != "text/html" and request.args.get("f") != "html"
    return path.startswith(API_PREFIX) or path.startswith("/_dash-")


def _rule_for_request() -> Rule:
    method = request.method.upper()
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    if rule == DASH_CALLBACK_PATH and method == "POST":
        return _callback_rule()
    listed = POLICY.get((rule, method))
    if listed is not None:
        return listed
    if method in SAFE_METHODS:
        return Rule(PAGE_POLICY.get(request.path.rstrip("/") or "/", "read"))
    return Rule("write")


def _deny(status: int, code: str, detail: str) -> BaseResponse:
    if _is_api(request.path) or request.method not in SAFE_METHODS:
        body = error_body(ApiError(detail, status=status, code=code))[1]
        headers = {"WWW-Authenticate": 'Bearer realm="sitroom"'} if status == 401 else {}
        return json_response(body, status, headers=headers)
    if status == 401:
        return redirect(f"/login?next={quote(request.full_path.rstrip('?'), safe='/?=&')}")
    return _html_page(t("auth.forbidden.title"), f'<p class="sr-warning">{escape(t("error.forbidden"))}</p>'
                      f'<p><a href="/">{escape(t("app.title"))}</a></p>', status=403)


def _check_csrf() -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected:
        return False
    sent = next((request.headers[h] for h in CSRF_HEADERS if request.headers.get(h)), None)
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = request.form.get(CSRF_FIELD)
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


def csrf_token() -> str:
    """The CSRF token of the current session (made on first use), for forms and for ``X-CSRF-Token`` headers."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _before_request() -> BaseResponse | None:
    g.sitroom_principal = None
    g.sitroom_malformed_callback = False
    path = request.path
    token = _bearer()
    principal: Principal | None = None
    if token is not None:
        try:
            with db_read() as conn:  # one statement: look up and touch
                principal = store_auth.verify_token(conn, token)
        except store_auth.AuthError:
            return _deny(401, "unauthorized", "unknown or revoked API token")
        except Exception as e:  # noqa: BLE001 - database down: 503 in the API's shape
            status, body = error_body(e)
            return json_response(body, status)
    elif "uid" in session:
        principal = _user_from_session()
    g.sitroom_principal = principal
    if _is_public(path):
        return None
    rule = _rule_for_request()
    if principal is None:
        if rule.capability == "read" and _anonymous_read():
            return _malformed_callback()
        return _deny(401, "unauthorized", "sign in, or send an API token (Authorization: Bearer ...)")
    for layer in _request_layers(rule):
        if not _permits(principal, rule, layer):
            who = principal.history_name + (f" (role {principal.role})" if principal.role else
                                            f" (scope {','.join(principal.layers)}:{principal.access})")
            what = "every layer" if layer == EVERY_LAYER else f"layer {layer!r}" if layer else ""
            return _deny(403, "forbidden", f"{who} may not {rule.capability} {what}".rstrip())
    if token is None and request.method not in SAFE_METHODS and not _check_csrf():
        return _deny(403, "csrf_failed", f"missing or wrong CSRF token: send the header {CSRF_HEADERS[0]} "
                                          f"(or form field {CSRF_FIELD}) with the value of the {CSRF_COOKIE} cookie")
    return _malformed_callback()


def _malformed_callback() -> BaseResponse | None:
    if not g.get("sitroom_malformed_callback"):
        return None
    return _deny(400, "bad_request", "a Dash callback request needs a JSON body with 'output', 'outputs' and "
                                     "'inputs' as the Dash renderer sends them")


# --- headers --------------------------------------------------------------------------------------------------------

def content_security_policy(settings: Settings, *, script_hashes: tuple[str, ...] = ()) -> str:
    """The CSP of every response: everything from this server; map tiles also from the online basemap's hosts.

    Dash needs ``'unsafe-eval'`` (its renderer builds functions at run time) and inline styles (React ``style``).
    Inline scripts are allowed only by their hashes (Dash's renderer start-up, clientside callbacks).
    """
    tiles = " ".join(BASEMAP_HOSTS.get(settings.basemap, ()))
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(("'self'", "'unsafe-eval'", *script_hashes)),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": f"'self' data: blob: {tiles}".strip(),
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


def _security_headers(response: Response) -> Response:
    csp = current_app.config.get("SITROOM_CSP")
    if csp is None:
        dash_app = current_app.config.get("SITROOM_DASH_APP")
        hashes = tuple(f"'{h}'" if not h.startswith("'") else h for h in dash_app.csp_hashes()) \
            if dash_app is not None else ()
        csp = content_security_policy(current_settings(), script_hashes=hashes)
        current_app.config["SITROOM_CSP"] = csp
    h = response.headers
    h.setdefault("Content-Security-Policy", csp)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:  # served over HTTPS (directly, or behind a trusted proxy: SITROOM_PROXY_HOPS)
        h.setdefault("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE_S}")
    if "uid" in session or "csrf" in session:
        token = csrf_token()
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, samesite="Strict", httponly=False, path="/",
                                max_age=DISPLAY_SESSION_DAYS * 86400, secure=request.is_secure)
    return response


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie ``Secure`` whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(has_request_context() and request.is_secure) or super().get_cookie_secure(app)


def _hide_names(response: Response) -> Response:
    """Anonymous readers (demo mode) do not learn account or token names: ``updated_by``, ``changed_by`` and
    ``created_by`` of a JSON answer become null."""
    if current_principal() is not None or response.direct_passthrough or response.is_streamed \
            or response.mimetype not in ("application/json", "application/geo+json"):
        return response
    data = response.get_data()
    if not any(f'"{k}"'.encode() in data for k in NAME_KEYS):
        return response
    body = json.loads(data)
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k in NAME_KEYS and isinstance(v, str):
                    item[k] = None
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))
    response.set_data(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    return response


# --- secrets --------------------------------------------------------------------------------------------------------

def secret_bits(key: str) -> float:
    """Entropy of ``key`` estimated from its own characters: length x Shannon entropy of their frequencies, in bits.

    A generous estimate for a random key (what a generator makes scores close to its true entropy) and a low one for
    a patterned key: 36 times the same letter scores 0.

    >>> secret_bits("a" * 36), round(secret_bits("0123456789abcdef" * 4))
    (0.0, 256)
    """
    if not key:
        return 0.0
    n = len(key)
    counts = Counter(key).values()
    return n * -sum(c / n * math.log2(c / n) for c in counts) + 0.0


def resolve_secret_key(settings: Settings) -> str:
    """The key that signs session cookies.

    ``settings.secret_key`` (``SITROOM_SECRET_KEY``) if set; in production it must be set, at least
    :data:`MIN_SECRET_CHARS` characters and not a well-known value. In demo and development, a random key is
    generated once and kept in ``<state_dir>/secret_key`` (mode 0600) so that sessions survive restarts.

    Raises
    ------
    AuthConfigError
        Production mode without a usable ``SITROOM_SECRET_KEY``.
    """
    key = settings.secret_key
    if settings.mode == "production":
        bits = secret_bits(key or "")
        if key is None or key.strip().lower() in WEAK_SECRETS or len(key) < MIN_SECRET_CHARS \
                or bits < MIN_SECRET_BITS:
            got = "unset" if key is None else f"{len(key)} characters, about {bits:.0f} bits" + (
                ", a well-known value" if key.strip().lower() in WEAK_SECRETS else "")
            raise AuthConfigError(
                f"production mode refuses to start: SITROOM_SECRET_KEY must be a random secret of at least "
                f"{MIN_SECRET_CHARS} characters and {MIN_SECRET_BITS} bits (got: {got}); make one with "
                f"`python -c 'import secrets; print(secrets.token_urlsafe(48))'` and set it in the environment")
        return key
    if key:
        return key
    path = Path(settings.state_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it right now
            text = path.read_text(encoding="ascii").strip()
            if text:
                return text
            time.sleep(0.02)
        raise AuthConfigError(f"{path} is empty: delete it and start again") from None
    new = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(new + "\n")
    return new


def _demo_password_accounts(settings: Settings) -> list[str]:
    from layers.store.db import database_url, get_engine

    with get_engine(database_url(settings)).connect() as conn:
        return store_auth.demo_passwords_in_use(conn)


def _demo_password_message(names: list[str]) -> str:
    return (f"the accounts {', '.join(names)} still have the passwords the demo generated; change them with "
            f"`sitroom users passwd NAME` or disable them with `sitroom users disable NAME`")


def check_production(settings: Settings) -> bool:
    """Refuse production settings that are not safe: no real secret key, or accounts with the demo's passwords.

    The account check needs the database. The server must start without its database, so when it cannot be reached
    the server starts with sign-in closed: every login is refused until the check has passed
    (:func:`_production_login_refusal` runs it again on each attempt).

    Returns
    -------
    bool
        Whether the accounts were checked (always True outside production).

    Raises
    ------
    AuthConfigError
        Naming the setting or the accounts to fix.
    """
    if settings.mode != "production":
        return True
    resolve_secret_key(settings)
    try:
        names = _demo_password_accounts(settings)
    except Exception as e:  # noqa: BLE001 - any failure to reach the database: start, sign-in closed
        log.warning("production check: accounts not checked, the database cannot be reached (%s); sign-in is "
                    "refused until the check passes", e)
        return False
    if names:
        raise AuthConfigError(f"production mode refuses to start: {_demo_password_message(names)}")
    return True


def _production_login_refusal() -> Response | None:
    """In production, a login waits for the account check that could not run at start-up (database down): run it
    now; while it cannot run, or finds demo passwords, sign-in is refused (503, naming the reason)."""
    if current_app.config.get("SITROOM_ACCOUNTS_CHECKED", True):
        return None
    try:
        names = _demo_password_accounts(current_settings())
    except Exception as e:  # noqa: BLE001 - still unreachable
        log.warning("login refused: the production account check cannot run yet (%s)", e)
        return _login_form(t("auth.login.unchecked"), status=503)
    if names:
        log.error("login refused: %s", _demo_password_message(names))
        return _login_form(t("auth.login.demo_passwords", names=", ".join(names)), status=503)
    current_app.config["SITROOM_ACCOUNTS_CHECKED"] = True
    return None


# --- login and logout -----------------------------------------------------------------------------------------------

def _html_page(title: str, body: str, *, status: int = 200) -> Response:
    lang = current_lang()
    switch = " ".join(f'<a href="?lang={code}" lang="{code}">{escape(t("lang.zh" if code == "zh-CN" else "lang.en"))}'
                      f"</a>" for code in LANGUAGES if code != lang)
    page = (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="/assets/sitroom.css"></head><body class="sr-auth">'
            f'<main class="sr-auth-box"><h1>{escape(t("app.title"))}</h1><h2>{escape(title)}</h2>{body}'
            f'<nav class="sr-lang">{switch}</nav></main></body></html>')
    return Response(page, status=status, mimetype="text/html")


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _login_form(error: str | None = None, *, status: int = 200, username: str = "") -> Response:
    nxt = _safe_next(request.values.get("next"))
    err = f'<p class="sr-warning" id="login-error" role="alert">{escape(error)}</p>' if error else ""
    body = (f'{err}<form method="post" action="/login" id="login-form">'
            f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">'
            f'<input type="hidden" name="next" value="{escape(nxt)}">'
            f'<label>{escape(t("auth.login.username"))}<input id="login-username" name="username" '
            f'autocomplete="username" required maxlength="64" value="{escape(username)}"></label>'
            f'<label>{escape(t("auth.login.password"))}<input id="login-password" name="password" type="password" '
            f'autocomplete="current-password" required maxlength="1024"></label>'
            f'<button id="login-submit" type="submit">{escape(t("auth.login.submit"))}</button></form>')
    return _html_page(t("auth.login.title"), body, status=status)


def _login() -> BaseResponse:
    if request.method == "GET":
        return _login_form()
    if not _check_csrf():
        return _login_form(t("error.csrf_failed"), status=403)
    username = (request.form.get("username") or "").strip().lower()[:64]
    password = request.form.get("password") or ""
    address = request.remote_addr or "unknown"
    refused = _production_login_refusal()
    if refused is not None:
        return refused
    try:
        with db_engine().begin() as conn:
            wait = store_auth.login_wait_s(conn, username, address)
            if wait > 0:  # throttled: the password is not even checked
                log.warning("login throttled for %r from %s: %.0f s to wait", username, address, wait)
                resp = _login_form(t("auth.login.throttled", seconds=math.ceil(wait)), status=429, username=username)
                resp.headers["Retry-After"] = str(math.ceil(wait))
                return resp
            user = store_auth.verify_password(conn, username, password)
            store_auth.clear_login_failures(conn, username)
            sid = store_auth.start_session(conn, int(user.id or 0))
    except store_auth.AuthError:
        with db_engine().begin() as conn:
            store_auth.record_login_failure(conn, username, address)
        log.warning("failed login for %r from %s", username, address)
        return _login_form(t("auth.login.failed"), status=401, username=username)
    session.clear()  # a fresh session (and CSRF token) on every login: no session fixation
    session.permanent = True
    session.update(uid=user.id, sid=sid, u=user.name, r=user.role, pwv=user.access, exp=time.time() +
                   _session_seconds(user.role), csrf=secrets.token_urlsafe(32))
    log.info("login %s (%s) from %s", user.name, user.role, address)
    return redirect(_safe_next(request.form.get("next")), code=303)


def _logout() -> BaseResponse:
    if "uid" in session and not _check_csrf():
        return _deny(403, "csrf_failed", "missing or wrong CSRF token")
    sid = session.get("sid")
    if isinstance(sid, str):
        with db_engine().begin() as conn:  # the cookie, replayed later, is refused
            store_auth.end_session(conn, sid)
        with _user_cache_lock:
            for key in [k for k in _user_cache if k[1] == sid]:
                _user_cache.pop(key, None)
    session.clear()
    response = redirect("/login", code=303)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


def user_badge() -> Any:
    """A Dash component for the page header: who is signed in and a log-out button (nothing when anonymous)."""
    from dash import dcc, html

    p = current_principal()
    if p is None or p.kind != "user":
        return html.A(t("auth.login.submit"), href="/login", id="auth-login-link", className="sr-auth-link")
    return html.Form(action="/logout", method="POST", id="auth-badge", className="sr-auth-badge", children=[
        html.Span(p.display_name or p.name, id="auth-user", title=t(f"auth.role.{p.role}")),
        dcc.Input(type="hidden", name=CSRF_FIELD, value=csrf_token()),
        html.Button(t("auth.logout"), type="submit", id="auth-logout"),
    ])


# --- wiring ---------------------------------------------------------------------------------------------------------

def install_auth(app: Any, settings: Settings | None = None) -> Flask:
    """Put the policy, the login pages and the security headers on ``app`` (a Dash app or its Flask server).

    One line at the end of ``create_app``: ``install_auth(app, s)``.

    Raises
    ------
    AuthConfigError
        Production mode with an unusable secret key or demo passwords (see :func:`check_production`).
    """
    server: Flask = app.server if hasattr(app, "server") else app
    if "sitroom_auth" in server.blueprints:  # already installed (create_app does it): once is enough
        return server
    s = settings or server.config.get("SITROOM_SETTINGS") or current_settings()
    checked = check_production(s)
    server.config.update(
        SITROOM_ACCOUNTS_CHECKED=checked,
        SECRET_KEY=resolve_secret_key(s),
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(days=DISPLAY_SESSION_DAYS),
        SITROOM_CSP=None,
        SITROOM_DASH_APP=app if hasattr(app, "server") else None,
    )
    set_acting_user(current_user_name)  # what the history records, for services that must not import auth
    bp = Blueprint("sitroom_auth", __name__)
    bp.add_url_rule("/login", endpoint="login", view_func=_login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", endpoint="logout", view_func=_logout, methods=["POST"])
    server.register_blueprint(bp)
    server.session_interface = _SessionInterface()
    if s.proxy_hops:  # X-Forwarded-For/-Proto/-Host of that many reverse proxies are trusted (docs/security.md)
        n = int(s.proxy_hops)
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    # first, so that nothing else (Dash's own set-up, the API) runs for a request that is refused
    server.before_request_funcs.setdefault(None, []).insert(0, _before_request)
    server.after_request(_security_headers)
    server.after_request(_hide_names)
    return server


def clear_user_cache() -> None:
    """Forget cached accounts (tests; after ``sitroom users disable`` the cache expires by itself in seconds)."""
    with _user_cache_lock:
        _user_cache.clear()


def now_utc() -> datetime:
    """Now, with the time zone (for pages that show times)."""
    return datetime.now(UTC)
