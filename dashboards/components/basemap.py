"""The map every page starts from: dash-leaflet with the basemaps of the settings (offline tiles by default), opened
on the view area.

Public: :func:`base_map`, :func:`leaflet_bbox`, :func:`view_bounds`, :data:`MAX_ZOOM`.

The basemap the settings choose (``SITROOM_BASEMAP``) is shown; when there is more than one basemap to choose from
(site basemaps registered with ``sitroom basemap add``) or the page has overlays
(:mod:`dashboards.components.maplayers`), they are listed in a layer control, basemaps as radio buttons and
overlays as check boxes. Zooming in beyond a basemap's last zoom enlarges its last tiles instead of leaving the map
grey. The map opens on ``SITROOM_VIEW_AREA`` (else the service area) unless the page asks for a centre and zoom.
"""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl

from dashboards.context import settings as current_settings
from dashboards.i18n import current_lang, t
from dashboards.tiles import basemap_choices

#: the deepest zoom of every map (vector overlays have detail down to it)
MAX_ZOOM = 18
#: the zoom a map starts from before it fits the view area
VIEW_ZOOM = 5


def view_bounds() -> list[list[float]]:
    """Leaflet bounds ``[[south, west], [north, east]]`` of the view area of the settings."""
    w, s, e, n = current_settings().view_bbox
    return [[s, w], [n, e]]


def _tile_layer(cfg: dict[str, Any]) -> Any:
    opts: dict[str, Any] = {"url": cfg["url_template"], "attribution": cfg["attribution"],
                            "minZoom": cfg["min_zoom"], "maxNativeZoom": cfg["max_zoom"], "maxZoom": MAX_ZOOM}
    if cfg.get("subdomains"):
        opts["subdomains"] = cfg["subdomains"]
    if cfg.get("bounds"):
        w, s, e, n = cfg["bounds"]
        opts["bounds"] = [[s, w], [n, e]]
    if cfg.get("kind") == "vector":
        # drawn in the browser by assets/sitroom_maps.js (protomaps-leaflet with a style for its schema)
        # its id carries what the browser needs: schema, last zoom of the archive, name (sitroom_maps.js reads it)
        name = cfg["key"].split(":", 1)[1]
        return dl.LayerGroup(id=f"sr-vbase-{cfg.get('schema') or 'none'}-{cfg['max_zoom']}-{name}",
                             attribution=cfg["attribution"],
                             eventHandlers={"add": {"variable": "sitroomMaps.mountBasemap"}})
    layers = [dl.TileLayer(**opts)]
    if cfg.get("overlay_url_template"):
        layers.append(dl.TileLayer(url=cfg["overlay_url_template"], maxNativeZoom=cfg["max_zoom"], maxZoom=MAX_ZOOM,
                                   **({"subdomains": cfg["subdomains"]} if cfg.get("subdomains") else {})))
    return layers[0] if len(layers) == 1 else dl.LayerGroup(layers)


def base_map(map_id: str, *, dark: bool = False, children: list[Any] | None = None,
             center: tuple[float, float] | None = None, zoom: int | None = None, overlays: list[Any] | None = None,
             control_id: str | None = None, event_handlers: dict[str, Any] | None = None,
             extra_layers: list[Any] | None = None, **style: Any) -> dl.Map:
    """A Leaflet map with the basemaps of the settings, in the request's language.

    Parameters
    ----------
    map_id : str
    dark : bool
        The dark wall style of the offline basemap.
    children : list, optional
        The page's own layers (GeoJSON, LayerGroup, EditControl ...).
    center, zoom : optional
        Where the map opens (lat, lon); default: fitted to the view area.
    overlays, control_id, event_handlers, extra_layers
        From :func:`dashboards.components.maplayers.map_kwargs`: ``dl.Overlay`` entries of the layer control, its
        id, map-level event handlers and layers kept above the page's (popups, markers).
    style
        CSS of the map container.
    """
    lang = current_lang()
    choices = basemap_choices(current_settings(), lang, dark=dark)
    first = next(c for c in choices if c["checked"]) if any(c["checked"] for c in choices) else choices[0]
    if len(choices) == 1 and not overlays:
        layers: list[Any] = [_tile_layer(first)]
    else:
        names = {c["key"]: c["title"] or t(f"map.basemap.{c['key']}", lang) for c in choices}
        bases = [dl.BaseLayer(_tile_layer(c), name=names[c["key"]], checked=c is first) for c in choices]
        # the control reports what is shown in ``baseLayer`` and ``overlays``: start them right, since its handlers
        # update them from their previous values
        layers = [dl.LayersControl([*bases, *(overlays or [])], position="topright", collapsed=True,
                                   baseLayer=names[first["key"]],
                                   overlays=[o.name for o in overlays or [] if getattr(o, "checked", False)],
                                   **({"id": control_id} if control_id else {}))]
    if center is not None:
        view: dict[str, Any] = {"center": list(center), "zoom": zoom if zoom is not None else 10}
    else:
        # dash-leaflet needs a centre and a zoom to start from; the viewport then fits the view area to the map's
        # actual size, which only the browser knows
        (s, w), (n, e) = bounds = view_bounds()
        view = {"center": [(s + n) / 2, (w + e) / 2], "zoom": VIEW_ZOOM,
                "viewport": {"bounds": bounds, "transition": "fitBounds"}}
    extra: dict[str, Any] = {"eventHandlers": event_handlers} if event_handlers else {}
    return dl.Map(id=map_id, minZoom=min(c["min_zoom"] for c in choices), maxZoom=MAX_ZOOM,
                  children=layers + list(children or []) + list(extra_layers or []),
                  style={"width": "100%", "height": "100%", **style}, attributionControl=True, **view, **extra)


def leaflet_bbox(bounds: Any) -> list[float] | None:
    """Leaflet bounds ``[[south, west], [north, east]]`` -> ``[west, south, east, north]``, clamped to the world (a
    map zoomed out shows longitudes beyond 180); None for anything else.

    >>> leaflet_bbox([[38.0, 100.5], [50.0, 200.0]]), leaflet_bbox(None)
    ([100.5, 38.0, 180.0, 50.0], None)
    """
    try:
        (s, w), (n, e) = bounds
        return [max(float(w), -180.0), max(float(s), -90.0), min(float(e), 180.0), min(float(n), 90.0)]
    except (TypeError, ValueError):
        return None
