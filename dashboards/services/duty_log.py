"""The duty log (值班日志) as people read it: each line rendered in their language, filtered, exported as CSV or PDF.

Public: :data:`FORMATS`, :data:`CSV_COLUMNS`, :func:`render`, :func:`lines`, :func:`add_entry`, :func:`to_csv`,
:func:`to_pdf`.

A machine line (:mod:`layers.command.duty`) is a message code and its values as they were; it is rendered here
with the ``command.log.<code>`` text of the catalogue (levels as Ⅰ..Ⅳ, kinds by their labels, kilometres and
minutes rounded), followed by the person's note if any. A manual line is the person's words.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import Engine

from dashboards.i18n import DEFAULT_LANGUAGE, catalogue, t, vocab_label
from layers.command import duty
from layers.command.plans import ROMAN

__all__ = ["FORMATS", "CSV_COLUMNS", "render", "lines", "add_entry", "to_csv", "to_pdf"]

FORMATS = ("json", "csv", "pdf")
CSV_COLUMNS = ("id", "at", "author", "kind", "line", "task_id", "activation_id", "incident_id")
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _values(params: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The params of a line, ready for its text: labels, Roman levels, km and minutes."""
    v: dict[str, Any] = {k: ("" if x is None else x) for k, x in params.items()}
    for key in ("level", "from", "to"):
        if isinstance(params.get(key), int):
            v[key] = ROMAN.get(params[key], params[key])
    for key in ("response", "action"):
        if isinstance(params.get(key), Mapping):
            v[key] = params[key].get(lang) or next(iter(params[key].values()), "")
    if params.get("resource_kind"):
        v["resource_kind"] = vocab_label("resource_kind", params["resource_kind"], lang)
    if params.get("hazard_kind"):
        v["hazard"] = vocab_label("hazard_kind", params["hazard_kind"], lang)
        v.setdefault("response", v["hazard"])
    if isinstance(params.get("distance_m"), (int, float)):
        v["distance_km"] = f"{params['distance_m'] / 1000.0:.1f}"
    if isinstance(params.get("eta_s"), (int, float)):
        v["eta_min"] = f"{params['eta_s'] / 60.0:.0f}"
    if not params.get("issuer"):
        v["issuer"] = t("command.issuer", lang)
    return v


def render(entry: Mapping[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """One duty-log line as text in ``lang``: the message of its code with its values, then the person's note.

    >>> render({"kind": "task", "code": "task.on_scene", "text": None,
    ...         "params": {"task_id": 7, "resource": "青城救援一队", "resource_kind": "rescue_team"}}, "en")
    '青城救援一队 on scene (task #7)'
    >>> render({"kind": "manual", "code": None, "text": "交班：夜班无异常", "params": {}}, "zh-CN")
    '交班：夜班无异常'
    """
    code, note = entry.get("code"), entry.get("text")
    if not code:
        return str(note or "")
    key = f"command.log.{code}"
    if key not in catalogue(lang) and key not in catalogue(DEFAULT_LANGUAGE):
        body = code
    else:
        body = t(key, lang, **_values(entry.get("params") or {}, lang))
    return body + (t("command.log.note", lang, note=note) if note else "")


def lines(conn: Any, *, lang: str = DEFAULT_LANGUAGE, **filters: Any) -> list[dict[str, Any]]:
    """:func:`layers.command.duty.entries` (same filters) with each line rendered (``line``) in ``lang``."""
    return [{**e, "line": render(e, lang)} for e in duty.entries(conn, **filters)]


def add_entry(engine: Engine, text: Any, *, user: str, incident_id: Any = None, lang: str = DEFAULT_LANGUAGE
              ) -> dict[str, Any]:
    """A person's own line, in a transaction of its own; returns it as :func:`lines` would."""
    with engine.begin() as conn:
        lid = duty.add_manual(conn, text, author=user, incident_id=incident_id)
        got = [e for e in duty.entries(conn, author=user, limit=20) if e["id"] == lid]
    return {**got[0], "line": render(got[0], lang)}


def _local(at: datetime) -> str:
    return at.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M:%S")


def to_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The lines as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese), times in China
    Standard Time, oldest first."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for r in sorted(rows, key=lambda r: (r["at"], r["id"])):
        w.writerow([r["id"], _local(r["at"]), r["author"], r["kind"], r["line"], r.get("task_id") or "",
                    r.get("activation_id") or "", r.get("incident_id") or ""])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_pdf(rows: Sequence[Mapping[str, Any]], *, lang: str, title_time: datetime, filters: str = "") -> bytes:
    """The lines as a PDF (A4, oldest first) with the duty officer's header, rendered with WeasyPrint."""
    import weasyprint  # (dashboards.reports imports this module for the sitrep: no render_pdf from there)

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("duty_log.html").render(
        rows=sorted(rows, key=lambda r: (r["at"], r["id"])), lang=lang, when=_local, filters=filters,
        t=lambda key, **kw: t(key, lang, **kw), generated=_local(title_time),
        kind_label=lambda k: t(f"command.log_kind.{k}", lang))
    return bytes(weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf())
