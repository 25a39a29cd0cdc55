"""The "生成态势报告 / Situation report" button for the wall and analyst pages: a link opening the PDF in a new tab.

Public: :data:`SITREP_BUTTON_ID`, :func:`sitrep_button`.

The page owners place it in their layouts (``sitrep_button()``); it needs no callback: the browser follows the link
to ``GET /api/v1/reports/sitrep?format=pdf&lang=<page language>`` and shows the PDF in a new tab. The report is
generated when the link is followed, so it is always the picture of that moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import html

from dashboards.context import sitrep_url
from dashboards.i18n import current_lang, t

#: default component ID (pages may pass their own from ``dashboards/ids.py``)
SITREP_BUTTON_ID = "sitrep-button"


def sitrep_button(*, id: str = SITREP_BUTTON_ID, lang: str | None = None,
                  at: datetime | None = None, fmt: str = "pdf", className: str = "sr-sitrep-button",
                  style: dict[str, Any] | None = None) -> html.A:
    """A button-styled link to the situation report in ``lang`` (default: the request's language).

    Parameters
    ----------
    id : str
        Component ID.
    lang : str, optional
        ``zh-CN`` or ``en``.
    at : datetime, optional
        A past time for the report (replay pages); default now.
    fmt : {"pdf", "html"}
    className, style
        Styling; the default inline style makes it look like a button on the light and the dark pages.
    """
    language = lang or current_lang()
    base = {"display": "inline-block", "padding": "4px 12px", "borderRadius": "4px", "border": "1px solid #b3261e",
            "background": "#b3261e", "color": "#ffffff", "textDecoration": "none", "fontSize": "14px",
            "whiteSpace": "nowrap", "cursor": "pointer"}
    return html.A(t("sitrep.button", language), id=id, href=sitrep_url(fmt=fmt, lang=language, at=at),
                  target="_blank", rel="noopener", title=t("sitrep.button_title", language), className=className,
                  style={**base, **(style or {})})
