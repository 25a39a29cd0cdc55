"""The map every page starts from: dash-leaflet with the configured basemap (offline tiles by default).

Public: :func:`base_map`, :func:`leaflet_bbox`, :data:`DEMO_CENTER`, :data:`DEMO_ZOOM`.
"""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl

from dashboards.context import settings as current_settings
from dashboards.i18n import current_lang
from dashboards.tiles import basemap_config

#: Inner Mongolia, where the demo drill runs (lat, lon for Leaflet)
DEMO_CENTER = (43.5, 113.0)
DEMO_ZOOM = 5


def base_map(map_id: str, *, dark: bool = False, children: list[Any] | None = None,
             center: tuple[float, float] = DEMO_CENTER, zoom: int = DEMO_ZOOM, **style: Any) -> dl.Map:
    """A Leaflet map with the basemap of the settings, in the request's language.

    ``children`` are further layers (GeoJSON, LayerGroup, EditControl ...). ``style`` goes to the map container.
    """
    cfg = basemap_config(current_settings(), current_lang(), dark=dark)
    layers: list[Any] = [dl.TileLayer(url=cfg["url_template"], attribution=cfg["attribution"],
                                      minZoom=cfg["min_zoom"], maxZoom=cfg["max_zoom"],
                                      **({"subdomains": cfg["subdomains"]} if cfg["subdomains"] else {}))]
    if cfg["overlay_url_template"]:
        layers.append(dl.TileLayer(url=cfg["overlay_url_template"], maxZoom=cfg["max_zoom"],
                                   **({"subdomains": cfg["subdomains"]} if cfg["subdomains"] else {})))
    return dl.Map(id=map_id, center=list(center), zoom=zoom, minZoom=cfg["min_zoom"], maxZoom=cfg["max_zoom"],
                  children=layers + list(children or []),
                  style={"width": "100%", "height": "100%", **style}, attributionControl=True)


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
