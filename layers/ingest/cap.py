"""CAP 1.2 warnings (Common Alerting Protocol, OASIS) into the ``hazards`` layer: parse, validate, map, ingest.

Public: :func:`parse_cap`, :func:`warning_level`, :func:`hazard_kind`, :func:`geocode_adcode`,
:func:`ingest_cap`, :func:`import_cap_path`, :func:`cap_messages`, :class:`CapAlert`, :class:`CapInfo`,
:class:`CapArea`, :class:`CapReport`, :class:`CapError`, :data:`SCHEMA_PATH`, :data:`CAP_NS`.

What happens to one message:

1. the XML is parsed without DTDs, entities or network, then validated against the official OASIS CAP 1.2 XSD
   (``layers/ingest/schemas/cap-1.2.xsd``, provenance in ``data/README.md``); an error names the element, the line and
   the schema's message;
2. areas are read: ``<polygon>`` is ``"lat,lon lat,lon ..."`` (latitude first; at least 4 pairs, first = last),
   ``<circle>`` is ``"lat,lon radius_km"`` (made a true geodesic polygon, :func:`geoops.geodesic.circle`),
   ``<geocode>`` with China's administrative code (valueName such as ``CPEAS Geographic Code``; 6, 9 or 12
   digits: the first 6 are the county/prefecture/province adcode) is the region's boundary from
   ``admin_regions``. An area is the union of all of them;
3. each ``<info>``/``<area>`` becomes one hazard (MULTIPOLYGON). Info blocks that are translations of each other
   (one block per language, the same number of blocks in each language, paired in order) make one hazard that
   keeps the texts of every language in ``properties`` (``headline``, ``event``, ``description``,
   ``instruction``, ``area_desc``, each ``{"zh-CN": ..., "en": ...}``); geometry comes from the zh-CN block.
   ``source`` is ``cap:<sender>``, ``external_id`` is ``<identifier>#<info>.<area>``;
4. the warning level comes from the colour in the headline or event (蓝/黄/橙/红色, Blue/Yellow/Orange/Red
   warning), else the level numeral (IV/III/II/I 级, Level III), else CAP severity (Minor/Moderate/Severe/Extreme);
   severity Unknown without colour or numeral gives blue (``properties.cap.level_from`` says which rule decided);
5. status: ``expired`` when ``expires`` has passed, ``forecast`` before ``onset``, else ``active``;
6. ``msgType`` Update: the hazards of the alerts named in ``<references>`` leave the live picture (soft delete,
   ``properties.superseded_by``; the history keeps them); Cancel: they (and anything that replaced them) get status
   ``cancelled`` and ``valid_to`` = the Cancel's ``sent``. Re-sending a message changes nothing (upsert by
   ``(source, external_id)``), and never revives a cancelled or superseded hazard. Test, System and Draft messages,
   and Ack / Error, are not ingested (the report says so).

Everything is validated before anything is written; one message is one transaction (a savepoint of the caller's).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from lxml import etree
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.orm import Session

from geoops.errors import GeoOpsError
from geoops.geodesic import circle as geodesic_circle
from layers.ingest.imports import upsert_features, validate_frame
from layers.store.db import connection_of, set_acting_user
from layers.store.errors import RowError, ValidationError
from layers.store.models import AdminRegion, Hazard
from layers.store.settings import get_settings

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "cap-1.2.xsd"
CIRCLE_SEGMENTS = 128
_NS = {"c": CAP_NS}
_INGESTED_STATUS = ("Actual", "Exercise")
_INGESTED_TYPES = ("Alert", "Update", "Cancel")
#: valueNames of China's administrative-division codes (compared lower-case, without spaces)
_ADCODE_VALUE_NAMES = ("cpeasgeographiccode", "cpeas", "adcode", "gb/t2260", "gb2260", "gbt2260", "行政区划代码",
                       "区划代码", "administrativedivisioncode", "administrativecode")


class CapError(ValidationError):
    """A CAP message that is not taken: malformed XML, schema-invalid, bad or unknown area. Nothing was written."""


def _error(element: str, value: object, allowed: str, *, file: str | None, message: str) -> CapError:
    return CapError([RowError(None, element, value, allowed, file)], message=message)


# --- model of a message -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapArea:
    """One ``<area>``: polygons in lon/lat, circles as (lon, lat, radius_m), geocodes as (valueName, value)."""

    path: str
    desc: str | None
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[tuple[float, float, float], ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CapInfo:
    """One ``<info>`` block; ``language`` normalised to ``zh-CN`` / ``en`` where it is one of those."""

    index: int
    language: str
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str | None
    description: str | None
    instruction: str | None
    sender_name: str | None
    effective: datetime | None
    onset: datetime | None
    expires: datetime | None
    categories: tuple[str, ...] = ()
    areas: tuple[CapArea, ...] = ()


@dataclass(frozen=True)
class CapAlert:
    """One ``<alert>``; ``references`` are (sender, identifier, sent) triples."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[tuple[str, str, str], ...] = ()
    infos: tuple[CapInfo, ...] = ()


@dataclass
class CapReport:
    """What ingesting one message did."""

    identifier: str
    sender: str
    msg_type: str
    file: str | None = None
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    hazard_ids: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- parsing ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), parser))


def _short_path(path: str | None) -> str:
    """``/*[local-name()='alert']/...`` or ``/c:alert/c:info[2]`` -> ``alert/info[2]``."""
    if not path:
        return "alert"
    p = re.sub(r"\*\[local-name\(\)\s*=\s*'([^']+)'\]", r"\1", path)
    p = re.sub(r"\{[^}]*\}|\b\w+:", "", p)
    return p.strip("/") or "alert"


def _normalize_language(tag: str | None) -> str:
    t = (tag or "en-US").strip()
    low = t.lower()
    if low.startswith("zh"):
        return "zh-CN"
    if low.startswith("en"):
        return "en"
    return t


def _text(el: etree._Element, name: str) -> str | None:
    child = el.find(f"c:{name}", _NS)
    if child is None or child.text is None:
        return None
    s = child.text.strip()
    return s or None


def _time(el: etree._Element, name: str) -> datetime | None:
    s = _text(el, name)
    return datetime.fromisoformat(s) if s else None  # the XSD's pattern guarantees an offset


def _parse_polygon(raw: str, where: str, file: str | None) -> Polygon:
    pairs = raw.split()
    pts: list[tuple[float, float]] = []
    for tok in pairs:
        parts = tok.split(",")
        try:
            if len(parts) != 2:
                raise ValueError(tok)
            lat, lon = float(parts[0]), float(parts[1])
        except ValueError:
            raise _error(where, tok, '"lat,lon" pairs of decimal degrees separated by spaces (latitude first)',
                         file=file, message="CAP polygon cannot be read; nothing was written") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (np.isfinite(lat) and np.isfinite(lon)):
            hint = "; it looks like lon,lat: CAP writes latitude first" if -90 <= lon <= 90 else ""
            raise _error(where, tok, f"latitude -90..90 then longitude -180..180{hint}", file=file,
                         message="CAP polygon coordinates out of range; nothing was written")
        pts.append((lon, lat))
    if len(pts) < 4:
        raise _error(where, raw[:120], f"at least 4 coordinate pairs (a closed ring); got {len(pts)}", file=file,
                     message="CAP polygon has too few points; nothing was written")
    if pts[0] != pts[-1]:
        raise _error(where, f"first {pairs[0]}, last {pairs[-1]}", "a closed ring: the last pair equal to the first",
                     file=file, message="CAP polygon is not closed; nothing was written")
    return Polygon(pts)


def _parse_circle(raw: str, where: str, file: str | None) -> tuple[float, float, float]:
    allowed = '"lat,lon radius" with the radius in km, e.g. "39.9,116.4 5"'
    parts = raw.split()
    try:
        if len(parts) != 2:
            raise ValueError(raw)
        lat_s, lon_s = parts[0].split(",")
        lat, lon, radius_km = float(lat_s), float(lon_s), float(parts[1])
    except ValueError:
        raise _error(where, raw, allowed, file=file, message="CAP circle cannot be read; nothing was written") \
            from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        hint = "; it looks like lon,lat: CAP writes latitude first" if -90 <= lon <= 90 else ""
        raise _error(where, raw, f"latitude -90..90 then longitude -180..180{hint}", file=file,
                     message="CAP circle centre out of range; nothing was written")
    if not (0 < radius_km <= 500) or not np.isfinite(radius_km):
        raise _error(where, raw, "a radius in (0, 500] km (a hazard needs an area)", file=file,
                     message="CAP circle radius out of range; nothing was written")
    return lon, lat, radius_km * 1000.0


def _is_adcode_name(value_name: str) -> bool:
    n = re.sub(r"\s+", "", value_name).lower()
    return any(k in n for k in _ADCODE_VALUE_NAMES)


def geocode_adcode(value: str) -> tuple[str, str | None]:
    """The 6-digit adcode of a Chinese administrative geocode, and a note when precision is lost.

    A 12-digit code (GB/T 2260 county code + 3-digit township + 3-digit village, as used by the China Public
    Emergency Alert System, CPEAS) and a 9-digit township code name the region of their first 6 digits. A code with a
    non-zero township/village part is mapped to its county (we store no township boundaries), which the note says.

    Raises
    ------
    ValueError
        when ``value`` is not 6, 9 or 12 digits.

    Examples
    --------
    >>> geocode_adcode("130602000000")
    ('130602', None)
    >>> geocode_adcode("150102")
    ('150102', None)
    >>> geocode_adcode("130602003000")[1]
    'township/village code 130602003000 taken as its county 130602 (no township boundaries are stored)'
    """
    v = value.strip()
    if not re.fullmatch(r"\d{6}(\d{3}){0,2}", v):
        raise ValueError(value)
    code = v[:6]
    note = None
    if set(v[6:]) - {"0"}:
        note = f"township/village code {v} taken as its county {code} (no township boundaries are stored)"
    return code, note


def _parse_area(el: etree._Element, where: str, file: str | None) -> CapArea:
    polys = tuple(_parse_polygon(p.text or "", f"{where}/polygon[{k}]", file)
                  for k, p in enumerate(el.findall("c:polygon", _NS)))
    circles = tuple(_parse_circle(c.text or "", f"{where}/circle[{k}]", file)
                    for k, c in enumerate(el.findall("c:circle", _NS)))
    geocodes = []
    for k, g in enumerate(el.findall("c:geocode", _NS)):
        name, value = _text(g, "valueName") or "", _text(g, "value") or ""
        geocodes.append((name, value))
        if _is_adcode_name(name):
            try:
                geocode_adcode(value)
            except ValueError:
                raise _error(f"{where}/geocode[{k}]/value", value, "6, 9 or 12 digits (China's administrative code)",
                             file=file, message="CAP geocode cannot be read; nothing was written") from None
        elif not polys and not circles:
            raise _error(f"{where}/geocode[{k}]/valueName", name,
                         "China's administrative code, e.g. valueName 'CPEAS Geographic Code' with a 6- or 12-digit "
                         "value (or give the area a <polygon> or <circle>)", file=file,
                         message="CAP geocode of an unsupported kind; nothing was written")
    if not polys and not circles and not geocodes:
        raise _error(where, _text(el, "areaDesc"), "an area with at least one <polygon>, <circle> or <geocode>",
                     file=file, message="CAP area has no geometry; nothing was written")
    return CapArea(path=where, desc=_text(el, "areaDesc"), polygons=polys, circles=circles,
                   geocodes=tuple(geocodes))


def parse_cap(data: bytes | str, *, file: str | None = None, max_bytes: int | None = None) -> CapAlert:
    """Parse one CAP 1.2 message and validate it against the official XSD; read its areas.

    Parameters
    ----------
    data
        The XML (bytes, or text).
    file
        Name used in errors.
    max_bytes
        Refuse larger messages (default: the upload limit, ``SITROOM_MAX_UPLOAD_MB``).

    Returns
    -------
    CapAlert

    Raises
    ------
    CapError
        malformed XML (line and parser message), a DOCTYPE, schema-invalid (the element, line and the XSD's
        message), unreadable or open polygons, polygons with fewer than 4 points, coordinates out of range, bad
        circles, unsupported or malformed geocodes, areas without geometry.

    Examples
    --------
    >>> xml = (f'<alert xmlns="{CAP_NS}"><identifier>x1</identifier><sender>s</sender>'
    ...        '<sent>2024-07-12T21:31:38+08:00</sent><status>Actual</status><msgType>Alert</msgType>'
    ...        '<scope>Public</scope><info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency>'
    ...        '<severity>Severe</severity><certainty>Likely</certainty><area><areaDesc>a</areaDesc>'
    ...        '<polygon>40,111 40,112 41,112 40,111</polygon></area></info></alert>')
    >>> a = parse_cap(xml)
    >>> a.infos[0].areas[0].polygons[0].exterior.coords[1]   # lat-first pair "40,112" is lon 112, lat 40
    (112.0, 40.0)
    >>> try:
    ...     parse_cap(xml.replace("Alert<", "Warning<"))
    ... except CapError as e:
    ...     print(e.problems[0].field, e.problems[0].value)
    alert/msgType (line 1) Warning
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    limit = max_bytes if max_bytes is not None else int(get_settings().max_upload_mb * 2**20)
    if len(raw) > limit:
        raise _error("alert", f"{len(raw)} bytes", f"at most {limit} bytes", file=file,
                     message="CAP message too large; nothing was written")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as e:
        line = getattr(e, "lineno", None)
        raise _error(f"line {line}" if line else "document", e.msg, "well-formed XML (a CAP 1.2 <alert>)",
                     file=file, message="malformed XML; nothing was written") from None
    doctype = getattr(root.getroottree().docinfo, "doctype", None)  # lxml-stubs leave DocInfo.doctype out
    if doctype:
        raise _error("DOCTYPE", doctype, "a CAP message without a DOCTYPE", file=file,
                     message="CAP message with a DOCTYPE refused; nothing was written")
    if root.tag != f"{{{CAP_NS}}}alert":
        raise _error("alert", root.tag, f"the root element <alert> in namespace {CAP_NS} (CAP 1.2)", file=file,
                     message="not a CAP 1.2 alert; nothing was written")
    schema = _schema()
    if not schema.validate(root):
        problems = []
        entries: list[Any] = [*cast(Any, schema.error_log)][:20]  # an _ErrorLog iterates its entries
        for entry in entries:
            m = re.search(r"The value '([^']*)'", entry.message)
            msg = re.sub(r"\{(?:urn|https?):[^}]*\}", "", entry.message)
            problems.append(RowError(None, f"{_element_of(entry, root)} (line {entry.line})",
                                     m.group(1) if m else None, msg, file))
        raise CapError(problems, message="CAP message does not follow the CAP 1.2 schema; nothing was written")
    refs = []
    for tok in (_text(root, "references") or "").split():
        parts = tok.split(",")
        if len(parts) != 3:
            raise _error("alert/references", tok, '"sender,identifier,sent" triples separated by spaces',
                         file=file, message="CAP references cannot be read; nothing was written")
        refs.append((parts[0], parts[1], parts[2]))
    infos = []
    for i, el in enumerate(root.findall("c:info", _NS)):
        where = f"alert/info[{i}]"
        areas = tuple(_parse_area(a, f"{where}/area[{k}]", file) for k, a in enumerate(el.findall("c:area", _NS)))
        infos.append(CapInfo(
            index=i, language=_normalize_language(_text(el, "language")), event=_text(el, "event") or "",
            urgency=_text(el, "urgency") or "Unknown", severity=_text(el, "severity") or "Unknown",
            certainty=_text(el, "certainty") or "Unknown", headline=_text(el, "headline"),
            description=_text(el, "description"), instruction=_text(el, "instruction"),
            sender_name=_text(el, "senderName"), effective=_time(el, "effective"), onset=_time(el, "onset"),
            expires=_time(el, "expires"),
            categories=tuple((c.text or "").strip() for c in el.findall("c:category", _NS)), areas=areas))
    return CapAlert(identifier=_text(root, "identifier") or "", sender=_text(root, "sender") or "",
                    sent=_time(root, "sent"),  # type: ignore[arg-type]  # required by the schema
                    status=_text(root, "status") or "", msg_type=_text(root, "msgType") or "",
                    scope=_text(root, "scope") or "", references=tuple(refs), infos=tuple(infos))


def _element_of(entry: Any, root: etree._Element) -> str:
    """``alert/info[1]/area[0]/circle[0]``-style path of the element an XSD error is about (0-based indexes)."""
    try:
        hits: Any = root.xpath(entry.path) if getattr(entry, "path", None) else []
    except etree.XPathError:
        hits = []
    if not hits or not isinstance(hits[0], etree._Element):
        m = re.search(r"Element '(?:\{[^}]*\})?([^']+)'", entry.message)
        return f"alert/{m.group(1)}" if m and m.group(1) != "alert" else "alert"
    parts = []
    el: etree._Element | None = hits[0]
    while el is not None:
        name = etree.QName(el).localname
        parent = el.getparent()
        if parent is not None and name in ("info", "area", "polygon", "circle", "geocode", "parameter",
                                           "eventCode", "resource"):
            same = [s for s in parent if isinstance(s.tag, str) and etree.QName(s).localname == name]
            name = f"{name}[{same.index(el)}]"
        parts.append(name)
        el = parent
    return "/".join(reversed(parts))


# --- mapping ------------------------------------------------------------------------------------------------------

_ZH_COLOUR = re.compile(r"(红|橙|黄|蓝)色")
_EN_COLOUR = re.compile(r"\b(red|orange|yellow|blue)\b(?:\s+[a-z]+)?\s+(?:warning|alert|signal)", re.I)
_NUMERAL = re.compile(r"(?<![A-Za-z])(IV|III|II|I)\s*级|\blevel\s+(IV|III|II|I)\b|(一|二|三|四)级", re.I)
_COLOURS = {"红": "red", "橙": "orange", "黄": "yellow", "蓝": "blue"}
_LEVELS = {"i": "red", "ii": "orange", "iii": "yellow", "iv": "blue", "一": "red", "二": "orange", "三": "yellow",
           "四": "blue"}
_SEVERITY = {"extreme": "red", "severe": "orange", "moderate": "yellow", "minor": "blue"}


def warning_level(texts: Iterable[str | None], *, severity: str = "Unknown") -> tuple[str, str]:
    """China's warning level (blue/yellow/orange/red) of a warning, and the rule that decided it.

    The colour named in the texts (headline, event) decides (红/橙/黄/蓝色, Red/Orange/Yellow/Blue warning), then
    a level numeral (I-IV 级, Level I-IV, 一-四级: I = red ... IV = blue), then the CAP severity (Extreme red,
    Severe orange, Moderate yellow, Minor blue); with none of them, blue.

    Examples
    --------
    >>> warning_level(["保定市气象台更新雷电黄色预警[Ⅲ级/较重]"], severity="Moderate")
    ('yellow', 'colour')
    >>> warning_level(["Baoding updates lightning yellow warning [Level III/Heavy]"])
    ('yellow', 'colour')
    >>> warning_level(["地质灾害Ⅱ级预警"])
    ('orange', 'numeral')
    >>> warning_level(["Heavy rain"], severity="Extreme")
    ('red', 'severity')
    >>> warning_level([None, "Yellow River flood"], severity="Unknown")
    ('blue', 'default')
    """
    norm = [unicodedata.normalize("NFKC", t) for t in texts if t]
    for t in norm:
        m = _ZH_COLOUR.search(t)
        if m:
            return _COLOURS[m.group(1)], "colour"
        m = _EN_COLOUR.search(t)
        if m:
            return m.group(1).lower(), "colour"
    for t in norm:
        m = _NUMERAL.search(t)
        if m:
            return _LEVELS[next(g for g in m.groups() if g).lower()], "numeral"
    level = _SEVERITY.get(severity.strip().lower())
    if level:
        return level, "severity"
    return "blue", "default"


_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("thunderstorm", ("雷电", "雷暴", "thunder", "lightning")),
    ("blizzard", ("暴雪", "blizzard", "snowstorm", "snow storm", "heavy snow")),
    ("cold_wave", ("寒潮", "cold wave")),
    ("sandstorm", ("沙尘暴", "sandstorm", "sand storm", "dust storm", "sand and dust")),
    ("forest_fire", ("森林火险", "森林火灾", "forest fire")),
    ("grassland_fire", ("草原火险", "草原火灾", "grassland fire")),
    ("gale", ("大风", "gale", "strong wind", "high wind")),
    ("flood", ("暴雨", "洪水", "洪涝", "山洪", "rainstorm", "flood", "heavy rain")),
    ("drought", ("干旱", "drought")),
    ("earthquake", ("地震", "earthquake")),
    ("landslide", ("地质灾害", "滑坡", "泥石流", "landslide", "geological", "debris flow", "mudslide")),
    ("heat_wave", ("高温", "heat wave", "heatwave", "high temperature")),
)


def hazard_kind(texts: Iterable[str | None]) -> str:
    """Hazard kind of a warning from its event (then headline) texts; ``other`` when nothing matches.

    Examples
    --------
    >>> hazard_kind(["雷电"]), hazard_kind(["thunder"]), hazard_kind(["森林火险"]), hazard_kind(["雷雨大风"])
    ('thunderstorm', 'thunderstorm', 'forest_fire', 'gale')
    >>> hazard_kind(["大雾"])
    'other'
    """
    low = [t.lower() for t in texts if t]
    for t in low:
        for kind, words in _KINDS:
            if any(w in t for w in words):
                return kind
    return "other"


def _slots(infos: Sequence[CapInfo]) -> list[list[CapInfo]]:
    """Info blocks grouped into translations of one another: the k-th block of each language, when every language
    has the same number of blocks; else each block on its own. zh-CN first in each group."""
    by_lang: dict[str, list[CapInfo]] = {}
    for inf in infos:
        by_lang.setdefault(inf.language, []).append(inf)
    counts = {len(v) for v in by_lang.values()}
    if len(by_lang) > 1 and len(counts) == 1:
        groups = [list(g) for g in zip(*by_lang.values(), strict=True)]
    else:
        groups = [[inf] for inf in infos]
    return [sorted(g, key=lambda i: (i.language != "zh-CN", i.index)) for g in groups]


def _bounded(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return value[: limit - 13] + "~" + hashlib.sha1(value.encode()).hexdigest()[:12]


def source_of(sender: str) -> str:
    """The ``source`` of the hazards of a sender: ``cap:<sender>`` (cut with a hash suffix beyond 64 characters).

    >>> source_of("Baoding_Meteorological_Observatory")
    'cap:Baoding_Meteorological_Observatory'
    """
    return _bounded(f"cap:{sender}", 64)


def _external_prefix(identifier: str) -> str:
    return _bounded(identifier, 110) + "#"


# --- geometry -----------------------------------------------------------------------------------------------------


def _regions(conn: Connection, codes: set[str]) -> dict[str, tuple[str, str, Any]]:
    if not codes:
        return {}
    rows = conn.execute(select(AdminRegion.adcode, AdminRegion.name, AdminRegion.level,
                               func.ST_AsBinary(AdminRegion.geom))
                        .where(AdminRegion.adcode.in_(sorted(codes)), AdminRegion.deleted_at.is_(None))).all()
    return {r[0]: (r[1], r[2], shapely.from_wkb(bytes(r[3]))) for r in rows}


def _area_geometries(conn: Connection, areas: Sequence[CapArea], file: str | None) \
        -> tuple[list[MultiPolygon], list[dict[str, Any]], list[str]]:
    """Geometry of each area (union of its polygons, circles and regions), the geocodes resolved, notes."""
    wanted: dict[str, tuple[str, str, str | None]] = {}  # value -> (adcode, element, note)
    for a in areas:
        for k, (name, value) in enumerate(a.geocodes):
            if _is_adcode_name(name):
                code, note = geocode_adcode(value)
                wanted[value] = (code, f"{a.path}/geocode[{k}]/value", note)
    found = _regions(conn, {c for c, _, _ in wanted.values()})
    missing = [(el, v, c) for v, (c, el, _) in wanted.items() if c not in found]
    if missing:
        n = conn.execute(select(func.count()).select_from(AdminRegion)
                         .where(AdminRegion.deleted_at.is_(None))).scalar_one()
        hint = (f"{n} regions are stored" if n else "no regions are loaded (run `sitroom demo load`)")
        raise CapError([RowError(None, el, v, f"an administrative code whose first 6 digits ({c}) name a region in "
                                              f"admin_regions; {hint}", file) for el, v, c in missing],
                       message="CAP geocode names no known region; nothing was written")
    geoms: list[MultiPolygon] = []
    resolved: list[dict[str, Any]] = []
    notes: list[str] = []
    for a in areas:
        parts: list[Any] = list(a.polygons)
        for k, (lon, lat, radius_m) in enumerate(a.circles):
            try:
                parts.append(geodesic_circle(lon, lat, radius_m=radius_m, segments=CIRCLE_SEGMENTS))
            except GeoOpsError as e:
                raise _error(f"{a.path}/circle[{k}]", f"{lat},{lon} {radius_m / 1000:g}", str(e), file=file,
                             message="CAP circle cannot be drawn; nothing was written") from None
        codes = []
        for k, (name, value) in enumerate(a.geocodes):
            if not _is_adcode_name(name):
                notes.append(f"{a.path}/geocode[{k}]: valueName {name!r} is not an administrative code; ignored "
                             "(the area's polygon/circle is used)")
                continue
            code, _, note = wanted[value]
            rname, level, g = found[code]
            parts.append(g)
            codes.append({"value": value, "adcode": code, "name": rname, "level": level})
            if note:
                notes.append(f"{a.path}/geocode[{k}]: {note}")
        resolved.append({"geocodes": codes})
        if len(parts) == 1 and isinstance(parts[0], MultiPolygon):
            geoms.append(parts[0])  # a region's boundary, exactly as stored
            continue
        merged = shapely.union_all(parts) if len(parts) > 1 else parts[0]
        polys = [p for p in shapely.get_parts(merged) if isinstance(p, Polygon)]
        geoms.append(MultiPolygon(polys))
    return geoms, resolved, notes


# --- ingest -------------------------------------------------------------------------------------------------------


def _texts(group: Sequence[CapInfo], attr: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for inf in group:
        v = getattr(inf, attr)
        if v and inf.language not in out:
            out[inf.language] = v
    return out


def _status(onset: datetime | None, expires: datetime | None, now: datetime) -> str:
    if expires is not None and expires <= now:
        return "expired"
    if onset is not None and onset > now:
        return "forecast"
    return "active"


def _hazard_rows(conn: Connection, alert: CapAlert, *, now: datetime, file: str | None) \
        -> tuple[gpd.GeoDataFrame, list[str], list[dict[str, Any]], list[str]]:
    """One row per hazard (columns for :func:`validate_frame`), the element path of each, their properties, notes."""
    rows: list[dict[str, Any]] = []
    paths: list[str] = []
    props: list[dict[str, Any]] = []
    geoms: list[Any] = []
    notes: list[str] = []
    prefix = _external_prefix(alert.identifier)
    for slot, group in enumerate(_slots(alert.infos)):
        primary = group[0]
        if not primary.areas:
            notes.append(f"alert/info[{primary.index}] has no <area>; no hazard made from it")
            continue
        area_geoms, resolved, more = _area_geometries(conn, primary.areas, file)
        notes.extend(more)
        headlines = _texts(group, "headline")
        events = _texts(group, "event")
        level, level_from = warning_level([*headlines.values(), *events.values()], severity=primary.severity)
        kind = hazard_kind([*events.values(), *headlines.values()])
        onset = primary.onset or primary.effective or alert.sent
        valid_from = primary.effective or alert.sent
        for k, (area, geom) in enumerate(zip(primary.areas, area_geoms, strict=True)):
            area_desc: dict[str, str] = {}
            for inf in group:
                if k < len(inf.areas) and inf.areas[k].desc and inf.language not in area_desc:
                    area_desc[inf.language] = inf.areas[k].desc or ""
            title = headlines.get("zh-CN") or next(iter(headlines.values()), None) or events.get("zh-CN") \
                or primary.event
            if len(primary.areas) > 1 and area.desc:
                title = f"{title} ({area.desc})"
            rows.append({"external_id": f"{prefix}{slot}.{k}", "name": title, "kind": kind,
                         "status": _status(onset, primary.expires, now), "warning_level": level,
                         "onset": onset.isoformat(), "expires": primary.expires.isoformat() if primary.expires else None,
                         "valid_from": valid_from.isoformat(),
                         "valid_to": primary.expires.isoformat() if primary.expires else None})
            geoms.append(geom)
            paths.append(area.path)
            props.append({
                "headline": headlines, "event": events, "description": _texts(group, "description"),
                "instruction": _texts(group, "instruction"), "area_desc": area_desc,
                "sender_name": _texts(group, "sender_name"),
                "languages": [inf.language for inf in group],
                "cap": {"identifier": alert.identifier, "sender": alert.sender, "sent": alert.sent.isoformat(),
                        "msg_type": alert.msg_type, "status": alert.status, "scope": alert.scope,
                        "severity": primary.severity, "urgency": primary.urgency, "certainty": primary.certainty,
                        "categories": list(primary.categories), "level_from": level_from,
                        "info": primary.index, "area": k,
                        "references": [",".join(r) for r in alert.references],
                        "replaces": [r[1] for r in alert.references] if alert.msg_type == "Update" else [],
                        **resolved[k]},
            })
    frame = pd.DataFrame(rows, columns=["external_id", "name", "kind", "status", "warning_level", "onset",
                                        "expires", "valid_from", "valid_to"])
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326) if geoms else
                           gpd.GeoSeries([], crs=4326), crs=4326)
    return gdf, paths, props, notes


def _referenced(alert: CapAlert) -> Any:
    """WHERE clause: live hazards of the alerts named in ``<references>`` and of alerts that replaced them."""
    conds = []
    for sender, ident, _sent in alert.references:
        if sender == alert.sender and ident == alert.identifier:
            continue
        conds.append((Hazard.source == source_of(sender))
                     & Hazard.external_id.startswith(_external_prefix(ident), autoescape=True))
        conds.append((Hazard.source == source_of(sender))
                     & Hazard.properties["cap"]["replaces"].op("?")(ident))
    return or_(*conds) if conds else None


def ingest_cap(conn: Session | Connection, data: bytes | str, *, file: str | None = None, user: str = "system",
               now: datetime | None = None) -> CapReport:
    """Validate one CAP 1.2 message and write it to ``hazards`` (see the module docstring), in one savepoint.

    Parameters
    ----------
    conn
        the caller's Session or Connection; the caller commits.
    data
        the XML.
    file
        name used in errors and the report.
    user
        recorded in ``updated_by`` and the history.
    now
        the time that decides expired / forecast / active (default: now).

    Returns
    -------
    CapReport

    Raises
    ------
    CapError
        see :func:`parse_cap`; also unknown geocodes and areas outside the service area (naming the element).
        Nothing is written then.
    """
    when = now or datetime.now(UTC)
    alert = parse_cap(data, file=file)
    report = CapReport(identifier=alert.identifier, sender=alert.sender, msg_type=alert.msg_type, file=file)
    if alert.status not in _INGESTED_STATUS or alert.msg_type not in _INGESTED_TYPES:
        report.notes.append(f"status {alert.status}, msgType {alert.msg_type}: not ingested (only "
                            f"{'/'.join(_INGESTED_STATUS)} messages of type {'/'.join(_INGESTED_TYPES)} are)")
        return report
    c = connection_of(conn)
    source = source_of(alert.sender)
    with conn.begin_nested():
        set_acting_user(c, user)
        refs = _referenced(alert)
        if alert.msg_type == "Cancel":
            if refs is None:
                raise _error("alert/references", None, "the alerts this Cancel cancels (sender,identifier,sent)",
                             file=file, message="CAP Cancel without references; nothing was written")
            ids = c.execute(
                update(Hazard).where(refs, Hazard.deleted_at.is_(None), Hazard.status != "cancelled")
                .values(status="cancelled", valid_to=alert.sent, updated_by=user,
                        properties=Hazard.properties.op("||")(func.jsonb_build_object(
                            "cancelled_by", alert.identifier, "cancelled_at", alert.sent.isoformat())))
                .returning(Hazard.id)).scalars().all()
            report.cancelled = sorted(ids)
            if not ids:
                report.notes.append("no live hazard of the referenced alerts (unknown, or already cancelled)")
            return report
        gdf, paths, props, notes = _hazard_rows(c, alert, now=when, file=file)
        report.notes.extend(notes)
        gdf.index = pd.RangeIndex(len(gdf))
        clean, problems, vnotes = validate_frame("hazards", gdf, file=file)
        if problems:
            raise CapError([RowError(None, paths[int(p.row or 0)] if p.field == "geometry" else
                                     f"{paths[int(p.row or 0)]} ({p.field})", p.value, p.allowed, file)
                            for p in problems], message="CAP area rejected; nothing was written")
        report.notes.extend(m.replace("row ", "area #", 1) for m in vnotes)
        # a re-sent message never revives what a Cancel or an Update has taken off the live picture
        ext = clean["external_id"].tolist()
        final = {r.external_id for r in c.execute(
            select(Hazard.external_id).where(Hazard.source == source, Hazard.external_id.in_(ext),
                                             (Hazard.status == "cancelled") | Hazard.deleted_at.isnot(None)))}
        if final:
            report.notes.append(f"{len(final)} hazard(s) of this alert were cancelled or superseded; left as they are")
        keep = ~clean["external_id"].isin(final)
        clean = clean[keep.to_numpy()].reset_index(drop=True)
        clean["properties"] = [json.dumps(props[int(r)], ensure_ascii=False) for r in clean["row"]]
        counts = upsert_features(c, "hazards", clean, source=source, user=user)
        report.inserted, report.updated, report.unchanged = counts.inserted, counts.updated, counts.unchanged
        report.hazard_ids = sorted(c.execute(select(Hazard.id).where(Hazard.source == source,
                                                                     Hazard.external_id.in_(ext))).scalars())
        if alert.msg_type == "Update" and refs is not None:
            old = c.execute(
                update(Hazard).where(refs, Hazard.deleted_at.is_(None), Hazard.id.not_in(report.hazard_ids or [-1]))
                .values(deleted_at=func.now(), updated_by=user,
                        properties=Hazard.properties.op("||")(func.jsonb_build_object(
                            "superseded_by", alert.identifier, "superseded_at", alert.sent.isoformat())))
                .returning(Hazard.id)).scalars().all()
            report.superseded = sorted(old)
            if not old:
                report.notes.append("the referenced alerts are not stored (or already superseded); this update "
                                    "stands alone")
    return report


ATOM_NS = "http://www.w3.org/2005/Atom"


def cap_messages(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """The CAP messages of one file: the file itself, or, for an Atom feed (RFC 4287) whose entries carry their
    alert inline (``<content type="application/cap+xml">``, as Sitroom's ``/api/v1/cap/feed.atom`` does), each of
    those alerts, named ``<file>#entry[k]``."""
    if ATOM_NS.encode() not in data[:4096]:
        return [(name, data)]
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return [(name, data)]  # parse_cap names the line of the error
    if root.tag != f"{{{ATOM_NS}}}feed":
        return [(name, data)]
    out = []
    for k, entry in enumerate(root.iterfind(f"{{{ATOM_NS}}}entry")):
        for alert in entry.iterfind(f"{{{ATOM_NS}}}content/{{{CAP_NS}}}alert"):
            out.append((f"{name}#entry[{k}]", etree.tostring(alert, xml_declaration=True, encoding="UTF-8")))
    return out


def import_cap_path(conn: Session | Connection, path: str | Path, *, user: str = "system",
                    now: datetime | None = None) -> list[CapReport]:
    """Ingest a CAP file, an Atom feed of CAP alerts (:func:`cap_messages`), or every ``*.xml`` / ``*.cap`` /
    ``*.atom`` file of a directory, oldest ``<sent>`` first (so that an Alert, its Update and its Cancel are
    applied in that order whatever the file names or the feed's order), all in the caller's transaction: one bad
    file rejects the whole directory, naming the file.

    Raises
    ------
    CapError
        for every message that is rejected (each validated before anything is written).
    """
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".xml", ".cap", ".atom")) if p.is_dir() else [p]
    if not files:
        raise _error(str(p), "no .xml, .cap or .atom files", "a CAP file, an Atom feed or a directory of them",
                     file=str(p), message="nothing to import")
    messages: list[tuple[datetime, str, bytes]] = []
    problems: list[RowError] = []
    for f in files:
        for name, data in cap_messages(str(f), f.read_bytes()):
            try:
                messages.append((parse_cap(data, file=name).sent, name, data))
            except CapError as e:
                problems.extend(e.problems)
    if problems:
        raise CapError(problems, message=f"{len({q.file for q in problems})} of {len(files)} CAP files rejected; "
                                         "nothing was written")
    messages.sort(key=lambda m: (m[0], m[1]))
    with conn.begin_nested():
        return [ingest_cap(conn, data, file=name, user=user, now=now) for _, name, data in messages]
