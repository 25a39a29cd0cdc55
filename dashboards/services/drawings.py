"""Impact zones drawn on a page or posted to the API, saved with the user who made them.

Public: :func:`save_zones`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from dashboards.services.zones import circle_zone
from geoops.errors import InvalidParameterError
from layers.ingest import drawings
from layers.store.db import session_scope

__all__ = ["save_zones"]


def save_zones(engine: Engine, items: Sequence[Any], *, user: str, service_area: Sequence[float]
               ) -> list[dict[str, Any]]:
    """Save zones in one transaction (:func:`layers.ingest.drawings.save_zones`): every zone is checked first and
    one bad zone saves none. A ``{"center": [lon, lat], "radius_m": r}`` geometry becomes a geodesic circle (kind
    ``circle`` unless given, centre and radius kept in the properties).

    Raises
    ------
    geoops.errors.InvalidParameterError
        An item that is not an object, or a bad circle (field ``geometry`` or ``zones[i].geometry``).
    layers.store.errors.ValidationError
        A zone the store refuses (kind, status, name, geometry), naming its row.
    """
    prepared = []
    for i, item in enumerate(items):
        field = "geometry" if len(items) == 1 else f"zones[{i}].geometry"
        if not isinstance(item, Mapping):
            raise InvalidParameterError(field=field.rsplit(".", 1)[0], value=item, allowed="a JSON object")
        zone = dict(item)
        g = zone.get("geometry")
        if isinstance(g, Mapping) and "center" in g and "type" not in g:
            poly, extra = circle_zone(g.get("center"), g.get("radius_m"), service_area=service_area, field=field)
            zone["geometry"] = poly
            zone.setdefault("kind", "circle")
            zone["properties"] = {**(zone.get("properties") or {}), **extra}
        prepared.append(zone)
    with session_scope(engine, user=user) as s:
        return drawings.save_zones(s, prepared, user=user, service_area=service_area)
