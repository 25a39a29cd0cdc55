"""How each operational layer looks on every map: colours, symbols and labels, one home for the pages, the vector
tiles' renderer (``assets/sitroom_maps.js``) and the legends.

Public: :data:`LEVEL_COLOURS`, :data:`SEVERITY_COLOURS`, :data:`ZONE_COLOURS`, :data:`OVERLAYS`, :class:`Overlay`,
:func:`overlay`, :func:`style_spec`, :func:`legend_items`, :func:`symbol_icon_url`.

Every layer is coloured by the attribute the layer registry names (``style_by`` of
:class:`layers.store.registry.LayerDef`), with a second encoding where the users read two things at once:

- hazards: fill and outline by warning level, in the official blue / yellow / orange / red, labelled with their name;
- incidents: by severity, a bigger and sharper symbol the graver it is (一般 circle, 较大 circle, 重大 diamond,
  特别重大 triangle) in the same four colours; clusters (low zooms, :mod:`layers.render.mvt`) are discs sized by
  their count, in the colour of their gravest incident, with the count written on them;
- shelters: a square by status (open / full / closed) filled from the bottom as far as the shelter is occupied;
- resources: a disc by status (available / deployed / unavailable) with a short code of the kind written on it;
- protection targets: a diamond by kind; impact zones: dashed outlines by kind; annotations: their own colour;
  admin regions: grey outlines by level.

An :class:`Overlay` is what a layer control lists: a layer, optionally restricted to some values of one attribute
(the wall's "major incidents" are incidents of severity major or extraordinary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dashboards.i18n import t, vocab_label
from layers.store import vocab
from layers.store.registry import layer

__all__ = ["LEVEL_COLOURS", "SEVERITY_COLOURS", "ZONE_COLOURS", "OVERLAYS", "Overlay", "overlay", "style_spec",
           "legend_items", "symbol_icon_url"]

#: China's four warning levels (IV..I)
LEVEL_COLOURS: dict[str, str] = {"blue": "#1e88e5", "yellow": "#fdd835", "orange": "#fb8c00", "red": "#e53935"}
#: incident severity (一般 IV .. 特别重大 I): the same four colours as the warning levels
SEVERITY_COLOURS: dict[str, str] = {"general": "#1e88e5", "large": "#fdd835", "major": "#fb8c00",
                                    "extraordinary": "#e53935"}
SEVERITY_SHAPES: dict[str, str] = {"general": "circle", "large": "circle", "major": "diamond",
                                   "extraordinary": "triangle"}
SEVERITY_SIZES: dict[str, float] = {"general": 4.0, "large": 5.5, "major": 7.0, "extraordinary": 8.5}
SHELTER_COLOURS: dict[str, str] = {"open": "#2e7d32", "full": "#c62828", "closed": "#757575"}
RESOURCE_COLOURS: dict[str, str] = {"available": "#2e7d32", "deployed": "#ef6c00", "unavailable": "#9e9e9e"}
TARGET_COLOURS: dict[str, str] = {"school": "#8e24aa", "kindergarten": "#ba68c8", "hospital": "#d81b60",
                                  "nursing_home": "#6d4c41", "hazmat_plant": "#f4511e", "reservoir": "#039be5",
                                  "power_station": "#fbc02d", "mine": "#5d4037"}
ZONE_COLOURS: dict[str, str] = {"drawn": "#d84315", "circle": "#c62828", "buffer": "#6a1b9a", "ring": "#6a1b9a",
                                "generated": "#37474f"}
REGION_WIDTHS: dict[str, float] = {"province": 2.2, "prefecture": 1.3, "county": 0.6}
FALLBACK = "#607d8b"
SYMBOLS_DIR = Path(__file__).resolve().parents[1] / "assets" / "symbols"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Overlay:
    """One entry of a layer control: ``layer`` of the registry, restricted to features whose ``where[0]`` is one of
    ``where[1]`` (None: every feature), titled by the translation ``title_key``."""

    key: str
    layer: str
    title_key: str
    where: tuple[str, tuple[str, ...]] | None = None


OVERLAYS: dict[str, Overlay] = {o.key: o for o in (
    Overlay("hazards", "hazards", "map.overlay.hazards"),
    Overlay("incidents", "incidents", "map.overlay.incidents"),
    Overlay("incidents_major", "incidents", "map.overlay.incidents_major",
            ("severity", ("major", "extraordinary"))),
    Overlay("shelters", "shelters", "map.overlay.shelters"),
    Overlay("resources", "resources", "map.overlay.resources"),
    Overlay("resources_deployed", "resources", "map.overlay.resources_deployed", ("status", ("deployed",))),
    Overlay("protection_targets", "protection_targets", "map.overlay.protection_targets"),
    Overlay("impact_zones", "impact_zones", "map.overlay.impact_zones"),
    Overlay("annotations", "annotations", "map.overlay.annotations"),
    Overlay("admin_regions", "admin_regions", "map.overlay.admin_regions"),
)}


def overlay(key: str) -> Overlay:
    """The overlay ``key`` of :data:`OVERLAYS` (KeyError naming the known ones).

    >>> overlay("incidents_major").where
    ('severity', ('major', 'extraordinary'))
    """
    try:
        return OVERLAYS[key]
    except KeyError:
        raise KeyError(f"unknown overlay {key!r}; known: {', '.join(OVERLAYS)}") from None


def _labels(vocab_name: str, lang: str) -> dict[str, str]:
    return {k: vocab_label(vocab_name, k, lang) for k in vocab.keys(vocab_name)}


def style_spec(key: str, lang: str) -> dict[str, Any]:
    """What ``assets/sitroom_maps.js`` needs to draw overlay ``key``: geometry ``kind`` (``point``, ``area``),
    ``by`` (the attribute that picks the colour), ``colours``, shapes and sizes, optional ``glyphs`` (text on a
    point, by ``glyph_by``), ``load`` (shelters), ``colour_attr`` (a feature's own colour), ``label`` (attribute
    written beside the feature) and ``where`` (the overlay's filter). Everything is data: no code goes to the browser.

    >>> s = style_spec("hazards", "en")
    >>> s["by"], s["colours"]["red"], s["kind"]
    ('warning_level', '#e53935', 'area')
    """
    o = overlay(key)
    d = layer(o.layer)
    base: dict[str, Any] = {"layer": o.layer, "by": d.style_by, "default": FALLBACK,
                            "where": {"attr": o.where[0], "in": list(o.where[1])} if o.where else None,
                            "cluster": d.cluster_below is not None, "minzoom": d.min_zoom}
    if o.layer == "hazards":
        return {**base, "kind": "area", "colours": LEVEL_COLOURS, "fill_opacity": 0.22, "width": 2.0,
                "label": "name", "label_fallback": _labels("hazard_kind", lang), "label_fallback_by": "kind"}
    if o.layer == "incidents":
        return {**base, "kind": "point", "colours": SEVERITY_COLOURS, "shapes": SEVERITY_SHAPES,
                "sizes": SEVERITY_SIZES, "size": 4.0, "shape": "circle"}
    if o.layer == "shelters":
        return {**base, "kind": "point", "colours": SHELTER_COLOURS, "shape": "square", "size": 6.5, "load": True}
    if o.layer == "resources":
        return {**base, "kind": "point", "by": "status", "colours": RESOURCE_COLOURS, "shape": "circle",
                "size": 7.5, "glyph_by": "kind",
                "glyphs": {k: t(f"map.resource_code.{k}", lang) for k in vocab.keys("resource_kind")}}
    if o.layer == "protection_targets":
        return {**base, "kind": "point", "colours": TARGET_COLOURS, "shape": "diamond", "size": 6.0}
    if o.layer == "impact_zones":
        return {**base, "kind": "area", "colours": ZONE_COLOURS, "fill_opacity": 0.06, "width": 2.0,
                "dash": [6, 4]}
    if o.layer == "annotations":
        return {**base, "kind": "area", "colours": {}, "colour_attr": "color", "fill_opacity": 0.15, "width": 3.0,
                "point_size": 6.0, "label": "label"}
    if o.layer == "admin_regions":
        return {**base, "kind": "area", "colours": {k: "#546e7a" for k in REGION_WIDTHS}, "widths": REGION_WIDTHS,
                "fill_opacity": 0.0, "width": 0.8, "label": "name_en" if lang == "en" else "name",
                "label_min_zoom": {"province": 4, "prefecture": 6, "county": 8}}
    raise KeyError(f"no style for overlay {key!r}")


def legend_items(key: str, lang: str) -> list[dict[str, str]]:
    """The legend of one overlay: ``[{"label", "colour", "shape"}]`` (what the map shows, in ``lang``).

    >>> [i["label"] for i in legend_items("incidents_major", "en")][:2]
    ['Major (II)', 'Especially major (I)']
    """
    o = overlay(key)
    spec = style_spec(key, lang)
    d = layer(o.layer)
    by = spec["by"]
    vocab_name = d.vocab_of(by)
    wanted = set(o.where[1]) if o.where and o.where[0] == by else None
    items: list[dict[str, str]] = []
    if vocab_name and spec["colours"]:
        for k in vocab.keys(vocab_name):
            if wanted is not None and k not in wanted:
                continue
            shape = (spec.get("shapes") or {}).get(k, spec.get("shape", "area" if spec["kind"] == "area" else "circle"))
            items.append({"label": vocab_label(vocab_name, k, lang), "colour": spec["colours"].get(k, FALLBACK),
                          "shape": shape})
    if spec.get("cluster"):
        items.append({"label": t("map.legend.cluster", lang), "colour": "#455a64", "shape": "cluster"})
    if spec.get("load"):
        items.append({"label": t("map.legend.load", lang), "colour": "#2e7d32", "shape": "load"})
    if spec.get("glyphs"):
        codes = " · ".join(f"{v} {vocab_label('resource_kind', k, lang)}" for k, v in spec["glyphs"].items())
        items.append({"label": codes, "colour": "", "shape": "text"})
    if spec.get("colour_attr"):
        items.append({"label": t("map.legend.own_colour", lang), "colour": "#e53935", "shape": "area"})
    return items


@cache
def _symbol_svg(symbol: str) -> str:
    path = SYMBOLS_DIR / f"{symbol}.svg"
    if symbol not in vocab.keys("annotation_symbol") or not path.exists():
        path = SYMBOLS_DIR / "note.svg"
    return path.read_text(encoding="utf-8")


def symbol_icon_url(symbol: str, colour: str | None) -> str:
    """A ``data:`` URL of the emergency symbol ``symbol`` whose background takes ``colour`` (``#rrggbb``; anything
    else keeps the symbol's own colour), so that the colour an analyst picked shows on the map.

    >>> symbol_icon_url("fire", "#43a047").startswith("data:image/svg+xml,")
    True
    >>> "43a047" in symbol_icon_url("fire", "#43a047"), "javascript" in symbol_icon_url("fire", "javascript:x")
    (True, False)
    """
    svg = _symbol_svg(symbol)
    if colour and _HEX.match(colour):
        svg = re.sub(r'fill="#[0-9a-fA-F]{3,6}"', f'fill="{colour}"', svg, count=1)
    return "data:image/svg+xml," + quote(svg, safe="")
