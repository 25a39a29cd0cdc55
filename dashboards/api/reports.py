"""Report endpoints: the situation report (态势报告) as PDF or HTML, now or as it was at a past time.

Public (HTTP): ``GET /api/v1/reports/sitrep?at=&since=&format=pdf|html&lang=zh-CN|en`` (pages link to it with
:func:`dashboards.context.sitrep_url`), ``POST /api/v1/reports/sitrep/sent`` (mark a report as sent).

The report is built by :func:`dashboards.reports.generate` (data from :mod:`layers.read.sitrep`). Fetching a report
changes nothing; a report marked as sent (POST) is logged so that the next one lists what changed since it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response

from dashboards.api.openapi import endpoint, query
from dashboards.context import db_engine, settings
from dashboards.errors import ParameterError
from dashboards.i18n import current_lang
from dashboards.reports import FORMATS, generate, mark_sent
from layers.read.sitrep import parse_time
from layers.store.errors import ValidationError

TIME_ALLOWED = "an ISO 8601 date-time, e.g. 2024-07-01T08:00:00+08:00, not in the future"


def _time(name: str, raw: str | None) -> datetime | None:
    try:
        return parse_time(raw, field=name)
    except ValidationError:
        raise ParameterError(field=name, value=raw, allowed=TIME_ALLOWED) from None


@endpoint("/reports/sitrep", "GET", tags=("reports",), operation_id="report_sitrep",
          summary="Situation report (态势报告) as PDF or HTML: map, KPIs, warnings, people by county, shelters, "
                  "resources, changes",
          description="`at` in the past rebuilds the picture from the change history. The changes section covers "
                      "`since` .. `at`, by default the previous generated report's `at` (else the last 24 h). "
                      "Chinese by default; `lang=en` for English.",
          parameters=[
              query("at", {"type": "string", "format": "date-time", "maxLength": 64},
                    "time of the picture (default now)"),
              query("since", {"type": "string", "format": "date-time", "maxLength": 64},
                    "start of the changes window (default: the previous report)"),
              query("format", {"type": "string", "enum": list(FORMATS), "default": "pdf"}, "pdf or html"),
          ],
          responses={200: ("The report", {"type": "string", "format": "binary"}, "application/pdf")})
def report_sitrep(*, at: str | None, since: str | None, format: str) -> Any:
    when, start = _time("at", at), _time("since", since)
    try:
        out = generate(db_engine(), settings(), at=when, since=start, fmt="html" if format == "html" else "pdf",
                       lang=current_lang(), record=False)  # a GET changes nothing: sending is POST .../sent
    except ValidationError as e:
        field = e.problems[0].field if e.problems else None
        if field in ("at", "since"):
            raise ParameterError(field=field, value=at if field == "at" else since,
                                 allowed=e.problems[0].allowed) from None
        raise
    resp = Response(out["body"], content_type=out["content_type"])
    resp.headers["Content-Disposition"] = f'inline; filename="{out["filename"]}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Report-Time"] = out["at"].isoformat(timespec="seconds")
    resp.headers["Server-Timing"] = ", ".join(f"{k};dur={v}" for k, v in out["timing_ms"].items())
    return resp


SENT_BODY = {
    "type": "object", "required": ["at"], "additionalProperties": False,
    "properties": {"at": {"type": "string", "format": "date-time", "maxLength": 64,
                          "description": "the report's time (its X-Report-Time header)"}},
    "example": {"at": "2026-07-01T08:00:00+08:00"},
}


@endpoint("/reports/sitrep/sent", "POST", tags=("reports",), operation_id="report_sitrep_sent",
          summary="Mark the situation report of a time as sent: the next report's changes start there",
          description="Generating a report (GET) changes nothing; this is the one call that moves the default "
                      "`since` of the next report.",
          request_body=SENT_BODY,
          responses={200: ("Recorded", {"type": "object", "required": ["at"], "properties": {
              "at": {"type": "string", "format": "date-time"}}})})
def report_sitrep_sent(*, body: dict[str, Any]) -> dict[str, Any]:
    when = _time("at", body["at"])
    if when is None:
        raise ParameterError(field="at", value=body["at"], allowed=TIME_ALLOWED)
    mark_sent(settings(), at=when, lang=current_lang())
    return {"at": when.isoformat()}
