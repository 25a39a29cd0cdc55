"""Situation reports (态势报告): the data of :mod:`layers.read.sitrep` rendered to HTML (Jinja2) and PDF (WeasyPrint).

Public: :data:`FORMATS`, :data:`DISPLAY_TZ`, :func:`report_map`, :func:`render_html`, :func:`render_pdf`,
:func:`generate`, :func:`mark_sent`.

Every text comes from the translation catalogues (``sitrep.*`` keys, vocabulary labels); numbers are the store's
(:func:`layers.read.sitrep.gather`). The map is a PNG from :func:`layers.render.staticmap.render_map`, embedded as a data URI,
so the HTML is self-contained and WeasyPrint needs no network. Chinese is set in Noto Sans CJK SC (Debian's
``fonts-noto-cjk``), found by fontconfig through pango. Times are shown in China Standard Time.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import Engine

from dashboards.i18n import DEFAULT_LANGUAGE, normalize_lang, t, vocab_label
from dashboards.services import command
from layers.read import sitrep, situation
from layers.render.staticmap import LEVEL_COLOURS, SEVERITY_COLOURS, SHELTER_COLOUR, render_map
from layers.render.tiles import current_content
from layers.store.settings import Settings

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("pdf", "html")
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAP_SIZE_PX = (1100, 680)
#: warning texts longer than this are cut (the full text is in the CAP message)
TEXT_CHARS = 160
#: counties listed one by one (largest first); the rest are summed on one row
COUNTY_ROWS = 15

__all__ = ["FORMATS", "DISPLAY_TZ", "report_map", "render_html", "render_pdf", "generate", "mark_sent"]


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


@lru_cache(maxsize=1)
def _css() -> str:
    return (TEMPLATES / "sitrep.css").read_text(encoding="utf-8")


def _num(value: Any) -> str:
    """Whole numbers with thousands separators (``12,345``); None as an em dash."""
    if value is None:
        return "—"
    return f"{round(float(value)):,}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{float(value) * 100:.0f}%"


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M")


def _when_short(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(DISPLAY_TZ).strftime("%m-%d %H:%M")


def report_map(data: Mapping[str, Any], *, lang: str, engine: Engine | None, tile_cache_dir: Path
               ) -> dict[str, Any]:
    """The report's map (JPEG: ``image``, ``media_type``, ``zoom``, ``bounds``) for the ``map`` part of
    :func:`layers.read.sitrep.gather`'s result."""
    m = data["map"]
    content = current_content(engine)
    w, h = MAP_SIZE_PX
    return render_map(bbox=m["bbox"], content=content, cache_dir=tile_cache_dir, hazards=m["hazards"],
                      incidents=m["incidents"], shelters=m["shelters"], width_px=w, height_px=h,
                      basemap="base" if lang == "zh-CN" else "base-en", image_format="jpeg")


def _joined(items: list[str], lang: str) -> str:
    return ("、" if lang == "zh-CN" else ", ").join(items)


def narrative(data: Mapping[str, Any], lang: str) -> list[str]:
    """The report's summary in plain sentences: what is happening where, how many people are affected, what is
    deployed. Every number is one the report shows further down."""
    k = data["kpis"]

    def region(c: Mapping[str, Any]) -> str:
        return (c.get("name_en") or c.get("name") or "") if lang == "en" else (c.get("name") or "")

    out = []
    warnings = data["warnings"]
    if warnings:
        levels = [(lv, sum(w["warning_level"] == lv for w in warnings)) for lv in ("red", "orange", "yellow", "blue")]
        level_text = _joined([t("sitrep.narrative.level", lang, level=vocab_label("warning_level", lv, lang), n=n)
                              for lv, n in levels if n], lang)
        kinds = _joined(list(dict.fromkeys(vocab_label("hazard_kind", w["kind"], lang) for w in warnings)), lang)
        counties = list(dict.fromkeys(region(c) for w in warnings for c in w["counties"]))
        where = _joined(counties[:4], lang) + (t("sitrep.counties_more", lang, n=len(counties)) if len(counties) > 4
                                              else "")
        out.append(t("sitrep.narrative.warnings", lang, n=len(warnings), levels=level_text, kinds=kinds,
                     counties=where or "—"))
    else:
        out.append(t("sitrep.narrative.no_warnings", lang))
    total = k["affected"]["total"]
    if total is not None and warnings:
        top = [region(r) for r in data["population_by_county"] if r["adcode"]][:3]
        out.append(t("sitrep.narrative.people", lang, people=_num(total), top=_joined(top, lang) or "—"))
    majors = data.get("major_incidents") or {"rows": [], "count": 0}
    by = k["incidents"]["by_severity"]
    out.append(t("sitrep.narrative.incidents", lang, active=_num(k["incidents"]["active"]),
                 major=_num(by.get("extraordinary", 0) + by.get("major", 0)),
                 casualties=_num(sum(int(r.get("casualties") or 0) for r in majors["rows"]))))
    out.append(t("sitrep.narrative.response", lang, deployed=_num(k["resources"].get("deployed")),
                 available=_num(k["resources"].get("available")), occupied=_num(k["shelters"]["occupied"]),
                 free=_num(k["shelters"]["free"]), closed=_num(k["shelters"].get("closed_places"))))
    return out


def render_html(data: Mapping[str, Any], *, lang: str = DEFAULT_LANGUAGE, map_image: bytes | None = None,
                map_media_type: str = "image/jpeg") -> str:
    """The report as one self-contained HTML page in ``lang`` (zh-CN or en).

    Parameters
    ----------
    data : mapping
        :func:`layers.read.sitrep.gather`'s result.
    lang : str
        ``zh-CN`` or ``en`` (other tags are normalised; unknown ones fall back to zh-CN).
    map_image : bytes, optional
        The map (:func:`report_map`); without it the map section shows only its legend.
    map_media_type : str
        Its media type.
    """
    language = normalize_lang(lang) or DEFAULT_LANGUAGE

    def tr(key: str, **fmt: Any) -> str:
        return t(key, language, **fmt)

    def label(vocab: str, key: str) -> str:
        return vocab_label(vocab, key, language)

    def named(item: Mapping[str, Any]) -> str:
        """A feature's name in the report's language (``name_en`` in English when the feature has one)."""
        return str((item.get("name_en") if language == "en" else None) or item.get("name") or "")

    def region(name: str | None, name_en: str | None) -> str:
        if language == "en":
            return name_en or name or "—"
        return name or name_en or "—"

    def counties(items: list[Mapping[str, Any]]) -> str:
        names = [region(c["name"], c["name_en"]) for c in items]
        if not names:
            return "—"
        shown = (", " if language == "en" else "、").join(names[:6])
        return shown + (tr("sitrep.counties_more", n=len(names)) if len(names) > 6 else "")

    def warning_text(w: Mapping[str, Any]) -> str:
        for key in ("description", "headline"):
            texts = w["texts"].get(key) or {}
            txt = texts.get(language) or texts.get(DEFAULT_LANGUAGE) or next(iter(texts.values()), None)
            if txt:
                txt = " ".join(str(txt).split())
                return txt if len(txt) <= TEXT_CHARS else txt[:TEXT_CHARS - 1] + "…"
        return ""

    counties_all = [r for r in data["population_by_county"] if r["adcode"]]
    county_rows = [dict(r) for r in counties_all[:COUNTY_ROWS]]
    rest = counties_all[COUNTY_ROWS:]
    if rest:
        county_rows.append({"adcode": None, "name": None, "name_en": None, "prefecture": None, "prefecture_en": None,
                            "label": tr("sitrep.other_counties", n=len(rest)),
                            "population": sum(r["population"] for r in rest)})
    county_rows += [{**r, "label": tr("sitrep.unassigned")} for r in data["population_by_county"] if not r["adcode"]]
    map_src = (f"data:{map_media_type};base64," + base64.b64encode(map_image).decode("ascii")) if map_image else None
    return _env().get_template("sitrep.html").render(
        d=data, county_rows=county_rows, lang=language, css=_css(), t=tr, label=label, region=region, counties=counties,
        named=named,
        summary=narrative(data, language), letterhead=data.get("letterhead") or {},
        warning_text=warning_text, num=_num, pct=_pct, when=_when, when_short=_when_short, map_src=map_src,
        severities=situation.SEVERITIES, statuses=situation.RESOURCE_STATUSES,
        levels=("blue", "yellow", "orange", "red"), level_colours=LEVEL_COLOURS, severity_colours=SEVERITY_COLOURS,
        shelter_colour=SHELTER_COLOUR, tz_label="UTC+08:00")


def render_pdf(html: str) -> bytes:
    """PDF bytes of a report's HTML (WeasyPrint; fonts subset, images embedded as they are)."""
    import weasyprint

    return weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def generate(engine: Engine, settings: Settings, *, at: datetime | None = None, since: datetime | None = None,
             fmt: Literal["pdf", "html"] = "pdf", lang: str = DEFAULT_LANGUAGE, record: bool = True
             ) -> dict[str, Any]:
    """Gather, draw and render one report; remember it so the next report's "changes since" starts here.

    Parameters
    ----------
    engine : Engine
        The store.
    settings : Settings
        For ``tile_cache_dir`` (basemap tiles) and ``state_dir`` (the report log ``sitrep_reports.jsonl``).
    at, since : datetime, optional
        The picture's time (default now) and the start of the changes window (default: the previous report
        before ``at``, else 24 h before).
    fmt : {"pdf", "html"}
    lang : str
        ``zh-CN`` (default) or ``en``.
    record : bool
        Append this report to the log.

    Returns
    -------
    dict
        ``body`` (bytes), ``content_type``, ``filename``, ``at``, ``timing_ms`` (gather, map, html, pdf, total; ``cpu``: this
        process's CPU time), ``data`` (what :func:`layers.read.sitrep.gather` returned).
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    language = normalize_lang(lang) or DEFAULT_LANGUAGE
    log_path = Path(settings.state_dir) / "sitrep_reports.jsonl"
    timing: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    with engine.connect() as conn:
        previous = sitrep.previous_report(log_path, before=at or datetime.now(DISPLAY_TZ))
        data = sitrep.gather(conn, at=at, since=since, previous=previous)
        data["command"] = command.sitrep_section(conn, since=data["changes"]["since"], until=data["at"],
                                                 live=data["live"])
    year = data["at"].astimezone(DISPLAY_TZ).year
    data["letterhead"] = {
        "unit": settings.report_unit_en if language == "en" else settings.report_unit,
        "signer": settings.report_signer,
        "number": settings.report_number_format.format(year=year, n=sitrep.report_sequence(log_path, year=year))}
    timing["gather"] = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    drawn = report_map(data, lang=language, engine=engine, tile_cache_dir=Path(settings.tile_cache_dir))
    timing["map"] = (time.perf_counter() - t1) * 1000
    t1 = time.perf_counter()
    html = render_html(data, lang=language, map_image=drawn["image"], map_media_type=drawn["media_type"])
    timing["html"] = (time.perf_counter() - t1) * 1000
    stamp = data["at"].astimezone(DISPLAY_TZ).strftime("%Y%m%d-%H%M")
    if fmt == "pdf":
        t1 = time.perf_counter()
        body, ctype = render_pdf(html), "application/pdf"
        timing["pdf"] = (time.perf_counter() - t1) * 1000
    else:
        body, ctype = html.encode("utf-8"), "text/html; charset=utf-8"
    timing["total"] = (time.perf_counter() - t0) * 1000
    timing["cpu"] = (time.process_time() - c0) * 1000
    if record:
        try:
            sitrep.record_report(log_path, at=data["at"], generated_at=data["generated_at"], fmt=fmt, lang=language)
        except OSError as e:  # a read-only state dir must not cost the report itself
            log.warning("sitrep: could not record the report in %s: %s", log_path, e)
    return {"body": body, "content_type": ctype, "filename": f"sitrep-{stamp}-{language}.{fmt}", "at": data["at"],
            "timing_ms": {k: round(v, 1) for k, v in timing.items()}, "data": data}


def mark_sent(settings: Settings, *, at: datetime, lang: str = DEFAULT_LANGUAGE) -> None:
    """Record that the report of ``at`` was sent: the next report's "changes since" starts there."""
    language = normalize_lang(lang) or DEFAULT_LANGUAGE
    sitrep.record_report(Path(settings.state_dir) / "sitrep_reports.jsonl", at=at,
                         generated_at=datetime.now(DISPLAY_TZ), fmt="sent", lang=language)
