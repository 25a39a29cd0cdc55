"""Figures of a zone split by county and prefecture, by the one point -> region rule
(:func:`geoops.regions.assign_points`).

Public: :func:`county_parts`, :func:`split_by_region`, :func:`region_outlines`.

A value that belongs to a point of a zone (a cell's people, a cell's uncovered people) goes to the county whose part
of the zone holds the point: inside or on the boundary, the county with the smaller adcode on a shared border, and
the geodesically nearest part for a point in none (a cell of the zone whose centre lies just outside it), so the
parts always add up to the total and only counties that share area with the zone are named. A prefecture's figure
is the sum of its counties. The impact card and the shelter coverage split this way; for a point inside the zone
that is the county holding it, as the situation report, the risk roll-up and the leader's trend say.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from dashboards.i18n import DEFAULT_LANGUAGE, t
from geoops.regions import assign_points
from layers.read import analysis as store
from layers.read import situation

__all__ = ["county_parts", "split_by_region", "region_outlines"]


def _area_of(g: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of an intersection (a county that only touches the zone shares a line, no area)."""
    polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    return shapely.union_all(polys) if polys else None


def county_parts(conn: Any, zone: BaseGeometry) -> list[dict[str, Any]]:
    """The counties sharing area with ``zone``, by adcode: ``adcode, name, name_en, parent_adcode, part``
    (county ∩ zone, polygonal, lon/lat)."""
    out = []
    for c in store.regions_in_zone(conn, zone, level="county"):
        part = _area_of(c["part"])
        if part is not None:
            out.append({**c, "part": part})
    return out


def split_by_region(conn: Any, zone: BaseGeometry, lon: NDArray[np.float64], lat: NDArray[np.float64],
                    values: Mapping[str, NDArray[np.float64]], *, lang: str = DEFAULT_LANGUAGE
                    ) -> dict[str, list[dict[str, Any]]]:
    """Per-point ``values`` of ``zone`` summed by county and by prefecture; the parts add up to the totals.

    Returns
    -------
    dict
        ``{"county": [...], "prefecture": [...]}``. A county row: ``adcode, name, name_en, parent_adcode, cells``
        (points counted) and one sum per key of ``values``; counties holding no point are left out. A prefecture
        row: ``adcode, name, name_en, cells`` and the sums. Points of a zone that shares area with no loaded
        county are on a row whose ``adcode`` is None, named in ``lang``.
    """
    counties = county_parts(conn, zone) if lon.size else []
    code = assign_points(lon, lat, [c["part"] for c in counties], outside="nearest")
    n = len(counties)
    slot = code + 1  # 0: unassigned
    count = np.bincount(slot, minlength=n + 1)
    sums = {k: np.bincount(slot, weights=np.asarray(v, dtype=np.float64), minlength=n + 1) for k, v in values.items()}
    unassigned = t("analysis.region.unassigned", lang)
    names = store.region_names(conn, [c["parent_adcode"] for c in counties if c["parent_adcode"]])
    county_rows: list[dict[str, Any]] = []
    pref: dict[str | None, dict[str, Any]] = {}
    for j, c in [(j + 1, c) for j, c in enumerate(counties)] + [(0, None)]:
        if count[j] == 0:
            continue
        p: str | None = c["parent_adcode"] if c else None
        row = {"adcode": c["adcode"] if c else None, "name": c["name"] if c else unassigned,
               "name_en": c["name_en"] if c else None, "parent_adcode": p,
               "cells": int(count[j]), **{k: float(v[j]) for k, v in sums.items()}}
        county_rows.append(row)
        info = names.get(p or "", {})
        agg = pref.setdefault(p, {"adcode": p, "name": info.get("name") or unassigned,
                                  "name_en": info.get("name_en"), "cells": 0, **{k: 0.0 for k in values}})
        agg["cells"] += row["cells"]
        for k in values:
            agg[k] += row[k]
    return {"county": county_rows, "prefecture": sorted(pref.values(), key=lambda r: r["adcode"] or "~")}


_lock = threading.Lock()
_outlines: dict[Any, list[dict[str, Any]]] = {}


def region_outlines(conn: Any, level: str, *, tolerance_deg: float = 0.01, decimals: int = 3
                    ) -> list[dict[str, Any]]:
    """Every live region of ``level`` for a map: ``adcode, name, name_en, parent_adcode, geometry`` (GeoJSON,
    simplified by ``tolerance_deg`` and rounded to ``decimals``), cached per database and data version."""
    key = (str(conn.engine.url), level, situation.data_version(conn), tolerance_deg, decimals)
    with _lock:
        hit = _outlines.get(key)
    if hit is not None:
        return hit
    out = []
    for r in store.regions_of_level(conn, level=level, geometry=True):
        g = shapely.simplify(r["geometry"], tolerance_deg, preserve_topology=True)
        g = shapely.transform(g, lambda xy: np.round(xy, decimals))
        out.append({**{k: r[k] for k in ("adcode", "name", "name_en", "parent_adcode")}, "geometry": mapping(g)})
    with _lock:
        if len(_outlines) > 8:
            _outlines.clear()
        _outlines[key] = out
    return out
