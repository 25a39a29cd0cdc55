"""Figures of a zone split by county and prefecture, by the one point -> region rule
(:func:`geoops.regions.assign_points`).

Public: :func:`counties_sharing_area`, :func:`county_of_points`, :func:`split_by_region`, :func:`sum_by_region`,
:func:`region_outlines`.

A value that belongs to a point of a zone (a cell's people, a cell's uncovered people) goes to the county holding
the point, among the counties that share area with the zone: inside or on the boundary, the county with the smaller
adcode on a shared border. A point in none of them (the centre of a cell on the zone's edge, lying in a neighbour
that only touches the zone, or outside every county) goes to the geodesically nearest part of the zone
(county ∩ zone), so the parts always add up to the total and only counties sharing area with the zone are named. A
prefecture's figure is the sum of its counties. The impact card and the shelter coverage split this way; for every
point in a county that shares area with the zone, that is the county the situation report, the risk roll-up and
the leader's trend name.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from dashboards.i18n import DEFAULT_LANGUAGE, t
from geoops.regions import assign_points
from layers.read import analysis as store
from layers.store.registry import layer_version

__all__ = ["counties_sharing_area", "county_of_points", "split_by_region", "sum_by_region", "region_outlines"]

#: DE-9IM: the interiors meet, i.e. two polygons share area (touching along a border is not enough)
_SHARE_AREA = "T********"


def _area_of(g: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of an intersection, or None when it has no area."""
    polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    return shapely.union_all(polys) if polys else None


def counties_sharing_area(conn: Any, zone: BaseGeometry, *, among: Sequence[dict[str, Any]] | None = None,
                          bounds: NDArray[np.float64] | None = None) -> list[dict[str, Any]]:
    """The live counties that share area with ``zone`` (touching along a border is not enough), by adcode, as rows
    of :func:`layers.read.analysis.regions_of_level`. ``among``: every live county already read (by adcode, with
    ``bounds`` of their geometries, as kept by :func:`layers.read.popsums.county_sums`), picked from without a
    query."""
    shapely.prepare(zone)
    if among is None:
        cand: Sequence[dict[str, Any]] = store.regions_of_level(conn, level="county", within=zone.bounds,
                                                                geometry=True)
    else:
        b = np.asarray(bounds if bounds is not None else shapely.bounds([c["geometry"] for c in among]))
        w, s, e, n = zone.bounds
        near = ((b[:, 0] <= e) & (b[:, 2] >= w) & (b[:, 1] <= n) & (b[:, 3] >= s)) if len(among) else np.zeros(0)
        cand = [among[i] for i in np.flatnonzero(near).tolist()]
    return [c for c in cand if shapely.relate_pattern(zone, c["geometry"], _SHARE_AREA)]


def county_of_points(conn: Any, zone: BaseGeometry, lon: NDArray[np.float64], lat: NDArray[np.float64], *,
                     counties: list[dict[str, Any]] | None = None
                     ) -> tuple[NDArray[np.int64], list[dict[str, Any]]]:
    """The county of each point of ``zone`` (module docstring): (index into the counties, -1 when the zone shares
    area with no loaded county; the counties sharing area with the zone, by adcode, as rows of
    :func:`layers.read.analysis.regions_of_level`). ``counties``: those of :func:`counties_sharing_area`, when the
    caller has them already."""
    if lon.size == 0:
        return np.zeros(0, dtype=np.int64), []
    if counties is None:
        counties = counties_sharing_area(conn, zone)
    code = assign_points(lon, lat, [c["geometry"] for c in counties], outside="none")
    rest = np.flatnonzero(code < 0)
    if rest.size and counties:
        parts = [_area_of(shapely.intersection(c["geometry"], zone)) for c in counties]
        code[rest] = assign_points(lon[rest], lat[rest], parts, outside="nearest")
    return code, counties


def split_by_region(conn: Any, zone: BaseGeometry, lon: NDArray[np.float64], lat: NDArray[np.float64],
                    values: Mapping[str, NDArray[np.float64]], *, lang: str = DEFAULT_LANGUAGE,
                    counts: NDArray[np.int64] | None = None, counties: list[dict[str, Any]] | None = None
                    ) -> dict[str, list[dict[str, Any]]]:
    """Per-point ``values`` of ``zone`` summed by county and by prefecture; the parts add up to the totals.

    Returns
    -------
    dict
        ``{"county": [...], "prefecture": [...]}``. A county row: ``adcode, name, name_en, parent_adcode, cells``
        (points counted, or the sum of ``counts``: a point may stand for several cells) and one sum per key of
        ``values``; counties holding no point are left out. A prefecture
        row: ``adcode, name, name_en, cells`` and the sums. Points of a zone that shares area with no loaded
        county are on a row whose ``adcode`` is None, named in ``lang``.
    """
    code, counties = county_of_points(conn, zone, lon, lat, counties=counties)
    return sum_by_region(conn, code, counties, values, lang=lang, counts=counts)


def sum_by_region(conn: Any, code: NDArray[np.int64], counties: list[dict[str, Any]],
                  values: Mapping[str, NDArray[np.float64]], *, lang: str = DEFAULT_LANGUAGE,
                  counts: NDArray[np.int64] | None = None, names: Mapping[str, dict[str, Any]] | None = None
                  ) -> dict[str, list[dict[str, Any]]]:
    """The rows of :func:`split_by_region` from points already assigned: ``code`` indexes ``counties`` (-1: the
    unassigned row), ``values`` and ``counts`` are aligned with it. ``names``: the prefectures' names
    (:func:`layers.read.analysis.region_names`), when the caller has them already."""
    n = len(counties)
    slot = code + 1  # 0: unassigned
    count = np.bincount(slot, weights=counts, minlength=n + 1).astype(np.int64)
    sums = {k: np.bincount(slot, weights=np.asarray(v, dtype=np.float64), minlength=n + 1) for k, v in values.items()}
    unassigned = t("analysis.region.unassigned", lang)
    if names is None:
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


def region_outlines(conn: Any, level: str, *, tolerance_deg: float = 0.01, decimals: int = 3,
                    within: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Every live region of ``level`` (touching the bbox ``within``, e.g. the service area) for a map: ``adcode,
    name, name_en, parent_adcode, geometry`` (GeoJSON, simplified in PostGIS by ``tolerance_deg`` and rounded to
    ``decimals``), cached per database and version of the admin regions (a feed's incidents do not redraw them)."""
    box = None if within is None else tuple(round(float(v), 6) for v in within)
    key = (str(conn.engine.url), level, layer_version(conn, "admin_regions"), tolerance_deg, decimals, box)
    with _lock:
        hit = _outlines.get(key)
    if hit is not None:
        return hit
    out = store.region_outlines_geojson(conn, level=level, tolerance_deg=tolerance_deg, decimals=decimals,
                                        within=box)
    with _lock:
        if len(_outlines) > 8:
            _outlines.clear()
        _outlines[key] = out
    return out
