"""The impact card of a zone: who and what is in it, and what can reach it.

Public: :func:`impact_card`, :func:`clear_cache`, :data:`ZONE_CACHE_SIZE`.

Population is area-weighted over H3 cells (each cell's people x the share of its area inside the zone), answered
from the H3 hierarchy: the zone's interior as compacted coarse cells whose sums are kept in memory
(:mod:`layers.read.popsums`), only the cells on its boundary at the population's resolution
(:func:`geoops.h3cells.zone_cover`); the same figure, to rounding, as summing every fine cell. The split by county
takes the coarse cells' sums kept per county (:func:`layers.read.popsums.county_sums`: the county of each
descendant's centre, which for a cell inside the zone is the one the zone's own split gives) and the fine cells by
their centres, so the figures are those of splitting every fine cell. Protection
targets and shelters come from PostGIS (:mod:`layers.read.analysis`), the nearest available resource of each kind
by true geodesic distance from the zone's centroid. ``docs/api.md`` says what every number means.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from dashboards.i18n import DEFAULT_LANGUAGE, t
from dashboards.services.figures import ms, rounded
from dashboards.services.regions import counties_sharing_area, county_of_points, sum_by_region
from dashboards.services.zones import DEFAULT_RES, as_area
from geoops import geodesic, h3cells
from layers.read import analysis as store
from layers.read import popsums
from layers.read.shelter_places import CLOSED, OPEN
from layers.store import vocab

__all__ = ["impact_card", "clear_cache", "RESOURCE_KINDS", "SHELTER_FIELDS", "ZONE_CACHE_SIZE"]

RESOURCE_KINDS = list(vocab.keys("resource_kind"))
SHELTER_FIELDS = ("id", "external_id", "name", "kind", "status", "capacity", "occupancy", "free", "could_open",
                  "lon", "lat")


def _shelter_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and places of some shelters: ``free`` only in open ones (:mod:`layers.read.shelter_places`), the
    closed ones counted apart (``closed``: how many, and the places they could offer if opened), ``full``: how many."""
    closed = [s for s in items if s["status"] == CLOSED]
    return {"count": len(items), "capacity": sum(s["capacity"] for s in items),
            "occupancy": sum(s["occupancy"] for s in items), "free": sum(s["free"] for s in items),
            "open": sum(s["status"] == OPEN for s in items), "full": sum(s["status"] == "full" for s in items),
            "closed": {"count": len(closed), "could_open": sum(s["could_open"] for s in closed)},
            "items": [{k: s[k] for k in SHELTER_FIELDS} | {"distance_m": rounded(s["distance_m"], 1)}
                      for s in items]}


def _split_interior(cells: np.ndarray, weighted: np.ndarray, counties: list[dict[str, Any]],
                    sums: popsums.PopulationHierarchy, split: popsums.CountySums, *, res: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The zone's populated cells ready for the split by county: the coarse cells (all inside the zone) by their
    kept sums per county (:func:`layers.read.popsums.county_sums`), and the fine cells to be assigned by their
    centres, as when every fine cell is split. A coarse cell with descendants in no county sharing area with the
    zone (beyond every county: those go to the nearest part of the zone one by one) is replaced by its populated
    fine descendants.

    Returns (fine cells, their people, coarse entries' county index into ``counties``, their people, their
    populated descendants)."""
    rs = h3cells.cell_resolution(cells)
    fine = rs == res
    coarse = np.flatnonzero(~fine)
    fcells, fpeople = cells[fine], weighted[fine]
    if coarse.size == 0 or not counties:
        none = np.zeros(0, dtype=np.int64)
        if coarse.size:  # a zone sharing area with no county: every coarse cell goes to the unassigned row
            people, populated = sums.lookup(cells[coarse])
            return fcells, fpeople, np.full(coarse.size, -1, dtype=np.int64), people, populated
        return fcells, fpeople, none, np.zeros(0), none
    local = {c["adcode"]: j for j, c in enumerate(counties)}
    to_local = np.array([local.get(a, -1) for a in split.adcodes] + [-1], dtype=np.int64)  # code -1 -> last
    at, code, people, populated = split.lookup(cells[coarse])
    lcode = to_local[code]
    redo = np.zeros(coarse.size, dtype=bool)
    redo[at[lcode < 0]] = True
    if redo.any():
        out = cells[coarse[redo]]
        rout = h3cells.cell_resolution(out)
        kids = np.concatenate([h3cells.child_cells(out[rout == r], child_res=res) for r in np.unique(rout).tolist()])
        kp, _ = sums.lookup(kids)
        fcells = np.concatenate([fcells, kids[kp > 0]])
        fpeople = np.concatenate([fpeople, kp[kp > 0]])
        take = ~redo[at]
        lcode, people, populated = lcode[take], people[take], populated[take]
    return fcells, fpeople, lcode, people, populated


def _population_part(conn: Any, zone: BaseGeometry, *, res: int, lang: str, sums: popsums.PopulationHierarchy,
                     split: popsums.CountySums, timing: dict[str, float], t0: float) -> dict[str, Any]:
    """The members of the card that depend only on the zone, the population build and the counties:
    ``population, cells, cells_populated, zone_area_m2, by_region``."""
    counties = counties_sharing_area(conn, zone, among=split.counties, bounds=split.bounds)
    cells, frac = h3cells.zone_cover(as_area(zone), res=res, coarse_res=sums.coarse_res)
    timing["cells"] = ms(t0)
    t1 = time.perf_counter()
    people, populated = sums.lookup(cells)
    weighted = people * frac
    timing["population"] = ms(t1)
    t1 = time.perf_counter()
    n_cells = int(h3cells.descendant_count(cells, res=res).sum())
    keep = weighted > 0
    cells, weighted = cells[keep], weighted[keep]
    n_populated = int(np.where(h3cells.cell_resolution(cells) < res, populated[keep], 1).sum())
    fcells, fpeople, ccode, cpeople, cpopulated = _split_interior(cells, weighted, counties, sums, split, res=res)
    lon, lat = h3cells.cell_centres(fcells) if fcells.size else (np.zeros(0), np.zeros(0))
    fcode, _ = county_of_points(conn, zone, lon, lat, counties=counties)
    by_region = sum_by_region(conn, np.concatenate([fcode, ccode]), counties,
                              {"population": np.concatenate([fpeople, cpeople])}, lang=lang,
                              counts=np.concatenate([np.ones(fcells.size, dtype=np.int64), cpopulated]),
                              names=split.prefectures)
    for level in by_region.values():
        for row in level:
            row["population"] = round(row["population"], 1)
    timing["regions"] = ms(t1)
    return {"population": round(float(weighted.sum()), 1), "cells": n_cells, "cells_populated": n_populated,
            "zone_area_m2": round(float(geodesic.area_m2(zone)), 1), "by_region": by_region}


#: zones whose population part is kept (a card asked again for the same zone, as every open card is refreshed
#: on each change of the live picture, reads its population, cells and split by region from here)
ZONE_CACHE_SIZE = 64
_zone_lock = threading.Lock()
_zone_parts: OrderedDict[Any, dict[str, Any]] = OrderedDict()


def clear_cache() -> None:
    """Forget the zones' population parts kept by this process (benchmarks of a zone drawn for the first time)."""
    with _zone_lock:
        _zone_parts.clear()


def impact_card(conn: Any, zone: BaseGeometry, *, res: int = DEFAULT_RES, shelter_distance_m: float = 5000.0,
                lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The impact card of ``zone`` (lon/lat, EPSG:4326; a checked zone from
    :func:`dashboards.services.zones.parse_zone`).

    Parameters
    ----------
    conn : Connection or Session
    zone : shapely (Multi)Polygon
    res : int
        H3 resolution of the population cells.
    shelter_distance_m : float
        Shelters within this geodesic distance of the zone are listed as nearby.
    lang : str
        Language of the texts in the card (``containment_note``, the unassigned region's name).

    Returns
    -------
    dict
        ``population`` (persons, area-weighted), ``containment``, ``containment_note``, ``res``, ``cells``,
        ``cells_populated``, ``zone_area_m2``, ``by_region`` (``county`` and ``prefecture`` rows),
        ``protection_targets``, ``shelters`` (``inside`` and ``nearby``), ``nearest_resources``,
        ``population_source``, ``timing_ms``.
    """
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    src = store.population_source(conn, res=res)
    sums = popsums.hierarchy(conn, source=src["source"], res=res, built_at=src["built_at"],
                             cell_count=src["cell_count"], input_total=src["input_total"])
    split = popsums.county_sums(conn, sums)
    key = (shapely.to_wkb(zone), res, sums.key, split.key, lang)
    with _zone_lock:
        part = _zone_parts.get(key)
        if part is not None:
            _zone_parts.move_to_end(key)
    if part is None:
        part = _population_part(conn, zone, res=res, lang=lang, sums=sums, split=split, timing=timing, t0=t0)
        with _zone_lock:
            _zone_parts[key] = part
            while len(_zone_parts) > ZONE_CACHE_SIZE:
                _zone_parts.popitem(last=False)
    else:
        timing["zone_cached"] = ms(t0)
    part = copy.deepcopy(part)
    t1 = time.perf_counter()
    targets = store.targets_in_zone(conn, zone)
    by_kind: dict[str, dict[str, int]] = {}
    for tg in targets:
        k = by_kind.setdefault(tg["kind"], {"count": 0, "occupants": 0})
        k["count"] += 1
        k["occupants"] += int(tg["occupants"])
    shelters = store.shelters_near_zone(conn, zone, distance_m=shelter_distance_m)
    timing["features"] = ms(t1)
    t1 = time.perf_counter()
    centre = zone.centroid if not zone.is_empty else zone.representative_point()
    per_kind = store.nearest_resource_per_kind(conn, centre.x, centre.y, kinds=RESOURCE_KINDS, status="available")
    nearest = {kind: ({"id": r["id"], "external_id": r["external_id"], "name": r["name"], "quantity": r["quantity"],
                       "unit": r["unit"], "lon": r["lon"], "lat": r["lat"], "distance_m": rounded(r["distance_m"], 1),
                       "bearing_deg": rounded(r["bearing_deg"], 1)} if (r := per_kind[kind]) is not None else None)
               for kind in RESOURCE_KINDS}
    timing["nearest"] = ms(t1)
    timing["total"] = ms(t0)
    return {
        "population": part["population"],
        "containment": "area_weighted",
        "containment_note": t("analysis.containment.area_weighted", lang),
        "res": res,
        "cells": part["cells"],
        "cells_populated": part["cells_populated"],
        "zone_area_m2": part["zone_area_m2"],
        "by_region": part["by_region"],
        "protection_targets": {"count": len(targets), "occupants": sum(int(x["occupants"]) for x in targets),
                               "by_kind": by_kind, "items": targets},
        "shelters": {"distance_m": shelter_distance_m,
                     "inside": _shelter_summary([s for s in shelters if s["inside"]]),
                     "nearby": _shelter_summary([s for s in shelters if not s["inside"]])},
        "nearest_resources": {"from": [round(centre.x, 6), round(centre.y, 6)], "status": "available",
                              "by_kind": nearest},
        "population_source": {k: src[k] for k in ("source", "res", "vintage", "modelled", "description")},
        "timing_ms": timing,
    }
