"""Monitoring endpoints: readings in, stations and their series, automatic warnings confirmed or dismissed, rules,
anomalies; confirmed warnings out as CAP 1.2 and an Atom feed.

Public (HTTP): ``POST /api/v1/observations``, ``GET /api/v1/monitor/stations``,
``GET /api/v1/monitor/stations/<code>/series``, ``GET /api/v1/monitor/warnings``,
``POST /api/v1/monitor/warnings/<id>/confirm``, ``POST /api/v1/monitor/warnings/<id>/dismiss``,
``GET /api/v1/monitor/rules``, ``GET /api/v1/cap/alerts/<id>.xml``, ``GET /api/v1/cap/feed.atom``.

The views parse the request and call :mod:`dashboards.services.monitor` (and :mod:`layers.monitor.cap_out`); the
clock is the server's, read here once per request and passed down. Readings are refused with 422 naming each bad
row (0-based index) and field; nothing is written then.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Response, request

from dashboards.api.openapi import endpoint, query, register_schema
from dashboards.context import API_PREFIX, acting_user, db_engine, db_read
from dashboards.errors import ApiError, ParameterError
from dashboards.i18n import current_lang
from dashboards.services import monitor
from layers.monitor import cap_out
from layers.monitor.variables import VARIABLES

_ANONYMOUS = ("anonymous", "system", "")

READING_REF = register_schema("Reading", {
    "title": "a reading",
    "type": "object",
    "required": ["station", "variable", "value", "unit", "observed_at"],
    "properties": {
        "station": {"type": "string", "description": "the station's code (区站号)"},
        "variable": {"type": "string", "enum": list(VARIABLES)},
        "value": {"type": "number"},
        "unit": {"type": "string", "description": "the variable's unit: mm, m/s, degC, m"},
        "observed_at": {"type": "string", "format": "date-time", "description": "no zone: Beijing time"},
        "period_s": {"type": ["integer", "null"], "minimum": 1, "maximum": 86400,
                     "description": "accumulation period (precipitation, snowfall: required)"},
    },
    "additionalProperties": False,
})
INGEST_REF = register_schema("IngestReport", {
    "type": "object",
    "required": ["received", "inserted", "duplicates", "flagged", "warnings"],
    "properties": {
        "received": {"type": "integer"}, "inserted": {"type": "integer"},
        "duplicates": {"type": "integer", "description": "readings already stored (left as they were)"},
        "flagged": {"type": "object", "description": "quality flag -> readings flagged (range, spike, flatline)"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "warnings": {"type": "array", "description": "what the rules did: raised, changed, withdrawn, proposed ...",
                     "items": {"type": "object"}},
    },
})
DECISION_REF = register_schema("WarningDecision", {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "action": {"type": "string"}, "level": {"type": ["string", "null"]},
                   "by": {"type": "string"}, "at": {"type": "string", "format": "date-time"}},
})


def _now() -> datetime:
    return datetime.now(UTC)


def _user() -> str:
    name = acting_user()
    return "api" if name in _ANONYMOUS else name


@endpoint(
    "/observations", "POST", tags=("monitor", "feeds"), operation_id="post_observations",
    summary="Readings of stations in: a JSON array of readings, or CSV with the same columns (up to 100,000)",
    description="Body: `application/json`, an array of `Reading` objects (`{station, variable, value, unit, "
                "observed_at, period_s}`), or `text/csv` with the header `station,variable,value,unit,observed_at,"
                "period_s`. Variables and units are fixed (precipitation and snowfall mm with `period_s`, wind_speed "
                "and wind_gust m/s, temperature degC, water_level and visibility m). Every reading is checked first: "
                "422 names each bad row (0-based index) and field, and nothing is written. A reading already stored "
                "(same station, variable and time) is left as it is. Readings get quality flags (range, spike, "
                "flatline; flagged readings never warn) and the warning rules run at once: the answer lists the "
                "warnings raised or changed. Token scope: `observations` (write).",
    responses={200: ("What was stored and what the rules did", {"$ref": INGEST_REF})},
)
def post_observations() -> dict[str, Any]:
    kind = (request.mimetype or "").lower()
    data = request.get_data(cache=False)
    if not data:
        raise ParameterError(field="body", value=None, allowed="a JSON array of readings, or CSV", code="missing_parameter")
    now = _now()
    if kind in ("text/csv", "application/csv"):
        with db_engine().begin() as conn:
            return monitor.ingest_csv(conn, data, now=now)
    if kind not in ("application/json", ""):
        raise ApiError(field="Content-Type", value=kind, allowed=["application/json", "text/csv"], status=415,
                       code="unsupported_media_type")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ParameterError(field="body", value=data[:200].decode("utf-8", "replace"),
                             allowed="a JSON array of readings", code="invalid_json") from None
    with db_engine().begin() as conn:
        return monitor.ingest_json(conn, body, now=now)


@endpoint("/monitor/stations", "GET", tags=("monitor",), operation_id="monitor_stations",
          summary="Every station with its latest readings and state; the automatic warnings; the anomalies",
          parameters=[query("at", {"type": "string", "format": "date-time", "maxLength": 40},
                            "a past instant (replay); default now")],
          responses={200: ("The monitoring picture", {"type": "object"})})
def get_stations(*, at: str | None) -> dict[str, Any]:
    when, past = _at(at)
    with db_engine().connect() as conn:
        return monitor.monitor_picture(conn, now=when, lang=current_lang(), past=past)


def _at(at: str | None) -> tuple[datetime, bool]:
    if not at:
        return _now(), False
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(field="at", value=at, allowed="an ISO 8601 time with a zone") from None
    if when.tzinfo is None:
        raise ParameterError(field="at", value=at, allowed="an ISO 8601 time with a zone")
    return when.astimezone(UTC), True


@endpoint("/monitor/stations/<code>/series", "GET", tags=("monitor",), operation_id="monitor_station_series",
          summary="A station's readings and the thresholds its rules compare them with",
          parameters=[query("hours", {"type": "integer", "minimum": 1, "maximum": 720, "default": 72},
                            "how far back"),
                      query("at", {"type": "string", "format": "date-time", "maxLength": 40}, "end (default now)")],
          responses={200: ("Series per variable, the rules' windowed lines and thresholds", {"type": "object"})})
def get_series(code: str, *, hours: int, at: str | None) -> dict[str, Any]:
    when, _ = _at(at)
    with db_read() as conn:
        return monitor.station_series(conn, code, now=when, lang=current_lang(), hours=hours)


@endpoint("/monitor/warnings", "GET", tags=("monitor",), operation_id="monitor_warnings",
          summary="Open automatic warnings (pending and live) as GeoJSON; `awaiting` marks those a person must decide",
          responses={200: ("A FeatureCollection", {"$ref": "#/components/schemas/FeatureCollection"})})
def get_warnings() -> dict[str, Any]:
    with db_read() as conn:
        return monitor.warning_features(conn, lang=current_lang())


_NOTE = {"type": "object", "properties": {"note": {"type": ["string", "null"], "maxLength": 500}},
         "additionalProperties": False}


@endpoint("/monitor/warnings/<int:warning_id>/confirm", "POST", tags=("monitor",), operation_id="confirm_warning",
          summary="Confirm an automatic warning (it goes live and is published as CAP), or the change it proposes",
          description="Capability `warn` (the monitor role, admin). The history records who and when; 409 when "
                      "nothing awaits confirmation (someone else decided first).",
          request_body=_NOTE, responses={200: ("What was confirmed", {"$ref": DECISION_REF})})
def confirm(warning_id: int, *, body: Any) -> dict[str, Any]:
    with db_engine().begin() as conn:
        return monitor.confirm_warning(conn, warning_id, user=_user(), now=_now(), note=body.get("note"))


@endpoint("/monitor/warnings/<int:warning_id>/dismiss", "POST", tags=("monitor",), operation_id="dismiss_warning",
          summary="Dismiss an automatic warning (it leaves every map), or the change it proposes",
          description="Capability `warn`. The history records who and when; 409 when nothing awaits a decision.",
          request_body=_NOTE, responses={200: ("What was dismissed", {"$ref": DECISION_REF})})
def dismiss(warning_id: int, *, body: Any) -> dict[str, Any]:
    with db_engine().begin() as conn:
        return monitor.dismiss_warning(conn, warning_id, user=_user(), now=_now(), note=body.get("note"))


@endpoint("/monitor/rules", "GET", tags=("monitor",), operation_id="monitor_rules",
          summary="The warning rules, as data and in words, with their sources",
          responses={200: ("The rules", {"type": "array", "items": {"type": "object"}})})
def get_rules() -> list[dict[str, Any]]:
    with db_read() as conn:
        return monitor.rules(conn, lang=current_lang())


@endpoint("/cap/alerts/<alert_id>.xml", "GET", tags=("monitor", "cap"), operation_id="cap_alert",
          summary="A confirmed warning as CAP 1.2 XML: `<id>` is the newest message, `<id>-<revision>` an earlier one",
          description="Valid against the OASIS CAP 1.2 schema; zh-CN and en `<info>`, polygons latitude first, the "
                      "county's adcode as geocode; Update and Cancel name what they replace in `<references>`.",
          responses={200: ("The alert", {"type": "string"}, "application/cap+xml")})
def get_cap_alert(alert_id: str) -> Response:
    try:
        hid, rev = cap_out.parse_alert_id(alert_id)
    except ValueError as e:
        raise ParameterError(field="alert_id", value=alert_id, allowed=str(e)) from None
    with db_read() as conn:
        data = cap_out.alert_xml(conn, hid, rev)
    return Response(data, mimetype="application/cap+xml")


@endpoint("/cap/feed.atom", "GET", tags=("monitor", "cap"), operation_id="cap_feed",
          summary="Atom feed of the confirmed warnings: one entry per CAP message, the alert inline",
          parameters=[query("days", {"type": "number", "exclusiveMinimum": 0, "maximum": 366, "default": 7},
                            "warnings changed in the last days (and every live one)")],
          responses={200: ("The feed", {"type": "string"}, "application/atom+xml")})
def get_cap_feed(*, days: float) -> Response:
    base = request.url_root.rstrip("/")
    with db_read() as conn:
        data = cap_out.feed_atom(conn, now=_now(), days=days, base_url=base, feed_path=f"{API_PREFIX}/cap/feed.atom",
                                 alert_path=f"{API_PREFIX}/cap/alerts")
    return Response(data, mimetype="application/atom+xml")
