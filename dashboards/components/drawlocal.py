"""Leaflet.draw's toolbar and tooltips in the page's language: ``draw_locale(lang)`` puts the strings (from the
translation catalogue, ``draw.*`` keys) in a hidden element; ``dashboards/assets/drawlocal.js`` makes ``L.drawLocal``
read them when an EditControl is built.

Public: :func:`draw_locale`, :func:`draw_strings`.
"""

from __future__ import annotations

import json
from typing import Any

from dash import html

from dashboards.components import data_attributes
from dashboards.i18n import current_lang, normalize_lang, t

_BUTTONS = ("polyline", "polygon", "rectangle", "circle", "marker", "circlemarker")


def draw_strings(lang: str) -> dict[str, Any]:
    """``L.drawLocal`` (the parts we translate) in ``lang``.

    >>> draw_strings("zh-CN")["draw"]["toolbar"]["buttons"]["polygon"]
    '画多边形'
    """
    def tx(key: str) -> str:
        return t(key, lang)

    def action(key: str) -> dict[str, str]:
        return {"title": tx(f"{key}.title"), "text": tx(f"{key}.text")}

    h = "draw.handlers"
    return {
        "draw": {
            "toolbar": {"actions": action("draw.toolbar.actions"), "finish": action("draw.toolbar.finish"),
                        "undo": action("draw.toolbar.undo"),
                        "buttons": {b: tx(f"draw.toolbar.buttons.{b}") for b in _BUTTONS}},
            "handlers": {
                "circle": {"tooltip": {"start": tx(f"{h}.circle.start")}, "radius": tx(f"{h}.circle.radius")},
                "circlemarker": {"tooltip": {"start": tx(f"{h}.marker.start")}},
                "marker": {"tooltip": {"start": tx(f"{h}.marker.start")}},
                "polygon": {"tooltip": {k: tx(f"{h}.polygon.{k}") for k in ("start", "cont", "end")}},
                "polyline": {"tooltip": {k: tx(f"{h}.polyline.{k}") for k in ("start", "cont", "end")}},
                "rectangle": {"tooltip": {"start": tx(f"{h}.rectangle.start")}},
                "simpleshape": {"tooltip": {"end": tx(f"{h}.simpleshape.end")}},
            },
        },
        "edit": {
            "toolbar": {"actions": {"save": action("draw.edit.save"), "cancel": action("draw.edit.cancel"),
                                    "clearAll": action("draw.edit.clear_all")},
                        "buttons": {"edit": tx("draw.edit.buttons.edit"),
                                    "editDisabled": tx("draw.edit.buttons.edit_disabled"),
                                    "remove": tx("draw.edit.buttons.remove"),
                                    "removeDisabled": tx("draw.edit.buttons.remove_disabled")}},
            "handlers": {"edit": {"tooltip": {"text": tx("draw.edit.tooltip.text"),
                                              "subtext": tx("draw.edit.tooltip.subtext")}},
                         "remove": {"tooltip": {"text": tx("draw.edit.remove.text")}}},
        },
    }


def draw_locale(lang: str | None = None) -> html.Div:
    """A hidden element carrying :func:`draw_strings` for ``assets/drawlocal.js``; put it in a page with a drawing
    toolbar (before or beside the map)."""
    language = normalize_lang(lang) or current_lang()
    return html.Div(hidden=True, className="sr-drawlocal",
                    **data_attributes({"sitroom-drawlocal": json.dumps(draw_strings(language), ensure_ascii=False)}))


__all__ = ["draw_locale", "draw_strings"]
