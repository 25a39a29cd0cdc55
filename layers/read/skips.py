"""Shared pictures skip a feature that cannot be computed, and say which: one bad hazard never blanks the wall.

Public: :func:`skip_entry`, :func:`in_scope`, :func:`each`.

The wall, the regional risk and the situation report cover every hazard in force with H3 cells. A hazard stored
before today's limits (a polygon wrapping the antimeridian, one around the globe or all of China), or one whose cell
work fails for any other reason, is left out of the figures; the rest are computed as usual and the answer lists
what was left out as ``skipped: [{"layer", "id", "name", "reason"}]`` (the wall draws its error banner from it).

>>> skip_entry("hazards", {"id": 7, "name": "寒潮"}, "area_too_large: 20,108,116 km2")
{'layer': 'hazards', 'id': 7, 'name': '寒潮', 'reason': 'area_too_large: 20,108,116 km2'}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from geoops.errors import GeoOpsError
from geoops.validate import check_extent
from layers.store.settings import Settings, get_settings

__all__ = ["skip_entry", "in_scope", "each"]

log = logging.getLogger(__name__)
T = TypeVar("T")
F = TypeVar("F", bound=Mapping[str, Any])
Feature = Mapping[str, Any]


def skip_entry(layer: str, feature: Feature, reason: str) -> dict[str, Any]:
    """One entry of a picture's ``skipped`` list."""
    fid = feature.get("id")
    return {"layer": layer, "id": None if fid is None else int(fid), "name": feature.get("name"), "reason": reason}


def _reason(e: BaseException) -> str:
    if isinstance(e, GeoOpsError):
        return f"{e.code}: {e.message}; allowed: {e.allowed}" if e.allowed else f"{e.code}: {e.message}"
    return f"{type(e).__name__}: {str(e)[:200]}"


def in_scope(features: Iterable[F], *, layer: str = "hazards", settings: Settings | None = None
             ) -> tuple[list[F], list[dict[str, Any]]]:
    """Split features (dicts with ``id``, ``name``, ``geometry``) into those the cell work covers and the skipped.

    In scope: every vertex inside the service area and an area of at most ``max_hazard_area_km2``
    (:func:`geoops.validate.check_extent`), the rule every write of a hazard passes today.
    """
    s = settings or get_settings()
    keep: list[F] = []
    skipped: list[dict[str, Any]] = []
    for f in features:
        try:
            check_extent(f["geometry"], service_area=s.service_area, max_area_km2=s.max_hazard_area_km2)
        except GeoOpsError as e:
            skipped.append(skip_entry(layer, f, _reason(e)))
            continue
        keep.append(f)
    return keep, skipped


def each(features: Iterable[F], fn: Callable[[F], T], *, layer: str = "hazards"
         ) -> tuple[list[tuple[F, T]], list[dict[str, Any]]]:
    """``fn(feature)`` for every feature; one that raises is logged and skipped, the others are kept.

    ``fn`` is pure computation (geoops): a database error is not expected here and is skipped like any other.
    """
    done: list[tuple[F, T]] = []
    skipped: list[dict[str, Any]] = []
    for f in features:
        try:
            done.append((f, fn(f)))
        except Exception as e:  # noqa: BLE001 - one feature must not take down a shared picture; it is reported
            log.warning("%s %s (%r) skipped: %s", layer, f.get("id"), f.get("name"), e)
            skipped.append(skip_entry(layer, f, _reason(e)))
    return done, skipped
