"""Translations: every user-visible string of the server goes through :func:`t` (zh-CN by default, en).

Public: :data:`LANGUAGES`, :data:`DEFAULT_LANGUAGE`, :data:`COOKIE`, :func:`catalogue`, :func:`normalize_lang`,
:func:`current_lang`, :func:`t`, :func:`vocab_label`.

Catalogues are flat JSON files ``dashboards/translations/<lang>.json`` (``"key": "text with {placeholders}"``);
``tests/dashboards/test_i18n.py`` keeps them complete: both have the same keys, no empty texts, and every literal
``t("...")`` key used in ``dashboards/`` exists in both.

The language of a request is, in order: the query parameter ``?lang=``, the cookie ``sitroom_lang`` (set by the app
whenever ``?lang=`` is given), then ``settings.language``.

Examples
--------
>>> t("app.title", "en")
'Emergency Situation Overview'
>>> t("app.title", "zh-CN")
'应急管理综合态势'
>>> normalize_lang("zh"), normalize_lang("EN-us"), normalize_lang("fr")
('zh-CN', 'en', None)
>>> vocab_label("warning_level", "red", "en")
'Red (I)'
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from layers.store import vocab as _vocab

LANGUAGES: Final = ("zh-CN", "en")
DEFAULT_LANGUAGE: Final = "zh-CN"
COOKIE: Final = "sitroom_lang"
TRANSLATIONS_DIR: Final = Path(__file__).resolve().parent / "translations"

log = logging.getLogger(__name__)


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(lang: str) -> dict[str, str]:
    """The catalogue of one language (read once per process).

    Raises
    ------
    ValueError
        ``lang`` is not one of :data:`LANGUAGES`.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    with open(TRANSLATIONS_DIR / f"{lang}.json", encoding="utf-8") as f:
        data = json.load(f)
    return {str(k): str(v) for k, v in data.items()}


def normalize_lang(value: object) -> str | None:
    """One of :data:`LANGUAGES` for a tag such as ``en``, ``en-US``, ``zh``, ``zh-cn``, ``zh-Hans``; else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    tag = value.strip().lower().replace("_", "-")
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"
    return None


def _default_lang() -> str:
    try:
        from dashboards.context import settings

        return str(settings().language)
    except Exception:  # noqa: BLE001 - bad settings fail at start-up elsewhere; translation must not
        return DEFAULT_LANGUAGE


def current_lang() -> str:
    """The language of the current request: ``?lang=``, else cookie ``sitroom_lang``, else settings.language."""
    from flask import has_request_context, request

    if has_request_context():
        for candidate in (request.args.get("lang"), request.cookies.get(COOKIE)):
            lang = normalize_lang(candidate)
            if lang:
                return lang
    return _default_lang()


def t(key: str, lang: str | None = None, **fmt: Any) -> str:
    """The text of ``key`` in ``lang`` (default: the request's language), formatted with ``fmt``.

    A key missing from ``lang`` falls back to zh-CN, then to the key itself (logged), so that a wall display never
    fails on a missing translation; the i18n test keeps that from happening.
    """
    language = normalize_lang(lang) if lang is not None else current_lang()
    language = language or DEFAULT_LANGUAGE
    text = catalogue(language).get(key)
    if text is None:
        log.warning("missing translation %r for %s", key, language)
        text = catalogue(DEFAULT_LANGUAGE).get(key, key)
    if fmt:
        try:
            return text.format(**fmt)
        except (KeyError, IndexError, ValueError):
            log.warning("translation %r (%s) does not fit arguments %s", key, language, sorted(fmt))
    return text


def vocab_label(vocab: str, key: str, lang: str | None = None) -> str:
    """The label of a controlled-vocabulary key (``layers.store.vocab.label``) in ``lang`` or the request's language."""
    language = (normalize_lang(lang) if lang is not None else current_lang()) or DEFAULT_LANGUAGE
    return _vocab.label(vocab, key, language)
