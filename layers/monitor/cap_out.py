"""Warnings out (信息发布): every confirmed automatic warning as CAP 1.2, and an Atom feed of them.

Public: :data:`SENDER`, :data:`CAP_NS`, :data:`ATOM_NS`, :data:`BEIJING`, :class:`Published`, :func:`identifier`,
:func:`published`, :func:`alert_xml`, :func:`feed_atom`, :func:`parse_alert_id`.

A warning is published once a person confirms it, and again each time a person confirms a change: every confirmed
revision (``properties.monitor.revisions``, written by :func:`layers.monitor.warnings.confirm`) is one CAP message:

* revision 1: ``msgType`` Alert; a new level: Update; a clear: Cancel. Update and Cancel name every earlier
  revision in ``<references>`` (``sender,identifier,sent`` triples);
* two ``<info>`` blocks, ``zh-CN`` then ``en``, with the rule's event (暴雨 / Rainstorm), the level's colour in the
  headline (``昆都仑区暴雨橙色预警``), severity by level (blue Minor, yellow Moderate, orange Severe, red Extreme),
  urgency Immediate, certainty Observed (a reading crossed the threshold), the reading that decided it;
* one ``<area>``: the warning's polygon(s), ``lat,lon`` pairs (latitude first, as CAP wants), outer rings; a
  county warning adds the county's adcode as ``<geocode>`` (valueName ``CPEAS Geographic Code``, the name China's
  alert system uses), a buffer warning does not (the area is not the county's).

Times are written in Beijing time with their offset (the CAP schema wants ``+08:00``, not ``Z``). Each document is
valid against the OASIS CAP 1.2 XSD that :mod:`layers.ingest.cap` validates incoming warnings with; reading the
feed back with ``sitroom import-cap`` (:func:`layers.ingest.cap.import_cap_path`) makes the same hazards.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, cast

import shapely
from lxml import etree
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from layers.monitor.variables import VARIABLES
from layers.monitor.warnings import SOURCE, warning_name, warning_name_en
from layers.store.db import connection_of
from layers.store.errors import NotFoundError
from layers.store.models import Hazard
from layers.store.vocab import label

__all__ = ["SENDER", "CAP_NS", "ATOM_NS", "BEIJING", "Published", "identifier", "published", "alert_xml",
           "feed_atom", "parse_alert_id"]

SENDER: Final = "monitor@sitroom"
CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS: Final = "http://www.w3.org/2005/Atom"
BEIJING: Final = timezone(timedelta(hours=8))
ADCODE_VALUE_NAME: Final = "CPEAS Geographic Code"
SEVERITY: Final = {"blue": "Minor", "yellow": "Moderate", "orange": "Severe", "red": "Extreme"}
_COLOUR_EN: Final = {"blue": "Blue", "yellow": "Yellow", "orange": "Orange", "red": "Red"}
_ID = re.compile(r"^(\d{1,18})(?:-(\d{1,6}))?$")


def identifier(hazard_id: int, rev: int) -> str:
    """The CAP identifier of revision ``rev`` of warning ``hazard_id``.

    >>> identifier(12, 2)
    'sitroom.monitor.h12.r2'
    """
    return f"sitroom.monitor.h{int(hazard_id)}.r{int(rev)}"


def parse_alert_id(text: str) -> tuple[int, int | None]:
    """``"12"`` -> (12, None) (the newest revision), ``"12-2"`` -> (12, 2).

    Raises
    ------
    ValueError
        anything else.

    >>> parse_alert_id("12-2"), parse_alert_id("7")
    ((12, 2), (7, None))
    """
    m = _ID.match(text or "")
    if m is None:
        raise ValueError(f"an alert id is <warning id> or <warning id>-<revision>, e.g. 12 or 12-2; got {text!r}")
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


def _cap_time(iso: str | datetime) -> str:
    d = iso if isinstance(iso, datetime) else datetime.fromisoformat(iso)
    return d.astimezone(BEIJING).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Published:
    """One confirmed warning as published: the hazard's stable parts and its revisions."""

    hazard_id: int
    kind: str
    onset: datetime
    monitor: Mapping[str, Any]
    geom: Any  # shapely MultiPolygon

    @property
    def revisions(self) -> list[Mapping[str, Any]]:
        return list(self.monitor.get("revisions") or [])


def _published_stmt() -> Any:
    return select(Hazard.id, Hazard.kind, Hazard.onset, Hazard.properties, func.ST_AsBinary(Hazard.geom)) \
        .where(Hazard.source == SOURCE, Hazard.deleted_at.is_(None),
               func.jsonb_array_length(func.coalesce(Hazard.properties["monitor"]["revisions"],
                                                     func.jsonb_build_array())) > 0)


def _row(r: Any) -> Published:
    return Published(int(r[0]), str(r[1]), r[2], r[3]["monitor"], shapely.from_wkb(bytes(r[4])))


def published(conn: Session | Connection, *, since: datetime | None = None,
              hazard_id: int | None = None) -> list[Published]:
    """Confirmed warnings (at least one revision), newest revision first; ``since``: those with a revision sent
    after it, or still live."""
    stmt = _published_stmt()
    if hazard_id is not None:
        stmt = stmt.where(Hazard.id == int(hazard_id))
    out = [_row(r) for r in connection_of(conn).execute(stmt)]
    if since is not None:
        out = [p for p in out if p.revisions and (datetime.fromisoformat(p.revisions[-1]["sent"]) > since
                                                  or p.revisions[-1]["status"] == "active")]
    return sorted(out, key=lambda p: p.revisions[-1]["sent"], reverse=True)


def _sub(parent: etree._Element, tag: str, text: str | None = None, ns: str = CAP_NS) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _polygons(geom: Any) -> list[str]:
    """Outer rings as CAP polygons: ``lat,lon`` pairs, 6 decimals, closed."""
    out = []
    for poly in shapely.get_parts(geom):
        ring = list(poly.exterior.coords)
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        out.append(" ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in ring))
    return out


_AGG_ZH: Final = {"sum": "{h}累计", "max": "{h}内最大", "min": "{h}内最低", "mean": "{h}平均", "latest": "",
                  "min_drop": "{h}内最低值下降"}
_AGG_EN: Final = {"sum": "total over {h}", "max": "highest in {h}", "min": "lowest in {h}", "mean": "mean over {h}",
                  "latest": "", "min_drop": "fall of the lowest reading in {h}"}


def _window_text(window_s: Any, lang: str) -> str:
    if not isinstance(window_s, (int, float)) or window_s <= 0:
        return ""
    hours = window_s / 3600
    if lang == "zh-CN":
        return f"{hours:g}小时" if hours >= 1 else f"{window_s / 60:g}分钟"
    return f"{hours:g} h" if hours >= 1 else f"{window_s / 60:g} min"


def _description(p: Published, rev: Mapping[str, Any], lang: str) -> str:
    """What was measured against which criterion, in the message's language (the CAP document's own text)."""
    m = p.monitor
    t = rev.get("trigger") or {}
    var = t.get("variable")
    unit = VARIABLES[var].unit if var in VARIABLES else ""
    station = m.get("station_name") or m.get("station")
    when = _cap_time(t["at"]) if t.get("at") else ""
    agg = str(t.get("aggregation") or "latest")
    if lang == "zh-CN":
        head = f"{station}站（{m.get('station')}）"
        if var:
            how = _AGG_ZH.get(agg, "").format(h=_window_text(t.get("window_s"), "zh-CN"))
            head += (f"{when} {label('observation_variable', var, 'zh-CN')}{how} {t.get('value')} {unit}，"
                     f"达到{m['rule_name']['zh-CN']}{label('warning_level', rev['level'], 'zh-CN').split(' ')[0]}"
                     f"预警标准（{t.get('threshold')} {unit}）。")
        if rev["msg_type"] == "Cancel":
            head += "观测已回落至标准以下，预警解除。"
        return head + "由监测预警规则自动生成，经值班员确认发布。"
    head = f"Station {station} ({m.get('station')})"
    if var:
        how = _AGG_EN.get(agg, "").format(h=_window_text(t.get("window_s"), "en"))
        head += (f": {label('observation_variable', var, 'en').lower()}{(' ' + how) if how else ''} "
                 f"{t.get('value')} {unit} at {when}, reaching the {rev['level']} {m['rule_name']['en'].lower()} "
                 f"criterion ({t.get('threshold')} {unit}).")
    if rev["msg_type"] == "Cancel":
        head += " Readings fell below the criterion; the warning is cancelled."
    return head + " Raised automatically by a monitoring rule and confirmed by the duty officer."


def _info(alert: etree._Element, p: Published, rev: Mapping[str, Any], lang: str) -> None:
    m = p.monitor
    info = _sub(alert, "info")
    _sub(info, "language", lang)
    _sub(info, "category", "Geo" if m.get("rule") == "river_stage" else "Met")
    _sub(info, "event", m["rule_name"]["zh-CN" if lang == "zh-CN" else "en"])
    _sub(info, "urgency", "Past" if rev["msg_type"] == "Cancel" else "Immediate")
    _sub(info, "severity", SEVERITY[rev["level"]])
    _sub(info, "certainty", "Observed")
    _sub(info, "effective", _cap_time(rev["sent"]))
    _sub(info, "onset", _cap_time(p.onset))
    _sub(info, "senderName", "Sitroom 监测预警" if lang == "zh-CN" else "Sitroom monitoring")
    place = str(m.get("place") or m.get("station_name"))
    place_en = str(m.get("place_en") or place)
    if lang == "zh-CN":
        headline = warning_name(m["rule_name"]["zh-CN"], place, rev["level"])
        if rev["msg_type"] == "Cancel":
            headline += "解除"
    else:
        headline = warning_name_en(m["rule_name"]["en"], place_en, rev["level"])
        headline = headline[0].upper() + headline[1:] + (" cancelled" if rev["msg_type"] == "Cancel" else "")
    _sub(info, "headline", headline)
    _sub(info, "description", _description(p, rev, lang))
    area = _sub(info, "area")
    _sub(area, "areaDesc", place if lang == "zh-CN" else place_en)
    for poly in _polygons(p.geom):
        _sub(area, "polygon", poly)
    if m.get("area") == "county" and m.get("adcode"):
        gc = _sub(area, "geocode")
        _sub(gc, "valueName", ADCODE_VALUE_NAME)
        _sub(gc, "value", str(m["adcode"]))


def _alert(p: Published, rev_no: int) -> etree._Element:
    revs = p.revisions
    if not 1 <= rev_no <= len(revs):
        raise NotFoundError(f"warning {p.hazard_id} has revisions 1..{len(revs)}, not {rev_no}")
    rev = revs[rev_no - 1]
    alert = etree.Element(f"{{{CAP_NS}}}alert", nsmap=cast(Any, {None: CAP_NS}))
    _sub(alert, "identifier", identifier(p.hazard_id, rev_no))
    _sub(alert, "sender", SENDER)
    _sub(alert, "sent", _cap_time(rev["sent"]))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", rev["msg_type"])
    _sub(alert, "scope", "Public")
    if rev_no > 1:
        _sub(alert, "references", " ".join(f"{SENDER},{identifier(p.hazard_id, r['rev'])},{_cap_time(r['sent'])}"
                                           for r in revs[:rev_no - 1]))
    for lang in ("zh-CN", "en"):
        _info(alert, p, rev, lang)
    return alert


def alert_xml(conn: Session | Connection, hazard_id: int, rev: int | None = None) -> bytes:
    """The CAP 1.2 XML of revision ``rev`` (default: the newest) of a confirmed warning.

    Raises
    ------
    NotFoundError
        no confirmed automatic warning with that id, or no such revision.
    """
    found = published(conn, hazard_id=hazard_id)
    if not found:
        raise NotFoundError(f"no confirmed warning {hazard_id} (a warning is published once a person confirms it)")
    p = found[0]
    return etree.tostring(_alert(p, rev or len(p.revisions)), xml_declaration=True, encoding="UTF-8")


def _atom(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def feed_atom(conn: Session | Connection, *, now: datetime, days: float = 7.0, base_url: str = "",
              feed_path: str = "/api/v1/cap/feed.atom", alert_path: str = "/api/v1/cap/alerts") -> bytes:
    """An Atom feed (RFC 4287) of the confirmed warnings: one entry per published CAP message of every warning
    that is live or changed in the last ``days``, newest first, each carrying the alert inline
    (``<content type="application/cap+xml">``) and linking its own URL."""
    items: list[tuple[str, Published, Mapping[str, Any]]] = []
    for p in published(conn, since=now - timedelta(days=days)):
        items.extend((str(r["sent"]), p, r) for r in p.revisions)
    items.sort(key=lambda x: x[0], reverse=True)
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap=cast(Any, {None: ATOM_NS}))
    _atom(feed, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, base_url + feed_path)}")
    _atom(feed, "title", "Sitroom 监测预警 / confirmed warnings (CAP 1.2)")
    _atom(feed, "updated", _cap_time(items[0][0]) if items else _cap_time(now))
    author = _atom(feed, "author")
    _atom(author, "name", "Sitroom monitoring")
    _atom(feed, "link", rel="self", type="application/atom+xml", href=base_url + feed_path)
    for sent, p, r in items:
        ident = identifier(p.hazard_id, int(r["rev"]))
        entry = _atom(feed, "entry")
        _atom(entry, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{SENDER}/{ident}')}")
        alert = _alert(p, int(r["rev"]))
        headline = alert.find(f"{{{CAP_NS}}}info/{{{CAP_NS}}}headline")
        _atom(entry, "title", headline.text if headline is not None else ident)
        _atom(entry, "updated", _cap_time(sent))
        _atom(entry, "category", term=str(r["level"]), label=label("warning_level", str(r["level"]), "zh-CN"))
        _atom(entry, "link", rel="alternate", type="application/cap+xml",
              href=f"{base_url}{alert_path}/{p.hazard_id}-{r['rev']}.xml")
        summary = alert.find(f"{{{CAP_NS}}}info/{{{CAP_NS}}}description")
        _atom(entry, "summary", summary.text if summary is not None else "")
        content = _atom(entry, "content", type="application/cap+xml")
        content.append(alert)
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8")
