"""Shelter coverage: who has a shelter place within reach, the load of each shelter, and which closed shelter would
close most of the gap.

Public: :data:`CANDIDATES`, :data:`MAX_COVERAGE_CELLS`, :data:`MAX_COVERAGE_PAIRS`, :func:`check_params`,
:func:`coverage_scope`, :func:`shelter_coverage`.

Demand is the area-weighted population of the H3 cells of the scope; supply is each open shelter's free places;
the assignment (:func:`geoops.coverage.assign`, HiGHS) respects capacity and maximises the covered population.
``docs/api.md`` says what every number means.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from dashboards.i18n import DEFAULT_LANGUAGE
from dashboards.services.figures import ms, rounded
from dashboards.services.impact import SHELTER_FIELDS
from dashboards.services.regions import split_by_region
from dashboards.services.zones import DEFAULT_RES, MAX_SHELTER_DISTANCE_M, as_area, parse_zone
from geoops import coverage, h3cells
from geoops.errors import InvalidParameterError
from layers.read import analysis as store
from layers.store import vocab

__all__ = ["CANDIDATES", "MAX_COVERAGE_CELLS", "MAX_COVERAGE_PAIRS", "check_params", "coverage_scope",
           "shelter_coverage"]

#: which shelters are ranked as gap closers: the closed ones, or none
CANDIDATES = ("closed", "none")
#: most populated cells (res 8) one run may cover: a prefecture is about 100,000
MAX_COVERAGE_CELLS = 150_000
#: most cell-shelter pairs in reach one run may solve: 180,000 pairs took 9 s on the 2-core reference machine
#: (Hohhot at 100 km), 300,000 took 42 s (Chifeng at 100 km); the bound keeps a run within about 10 s
MAX_COVERAGE_PAIRS = 180_000


def check_params(params: Any, *, max_distance_m: float = MAX_SHELTER_DISTANCE_M) -> dict[str, Any]:
    """A coverage run's ``{scope, max_distance_m, kinds}`` checked as the API's request body is: ``scope`` is
    ``{"adcode": str}`` or ``{"geometry": <GeoJSON or circle>}`` (checked further by :func:`coverage_scope`),
    ``max_distance_m`` in (0, ``max_distance_m``] metres, ``kinds`` None or shelter kinds. A page's stored state
    comes back from the browser: it is checked again like any request.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the value received and what is allowed.

    Examples
    --------
    >>> check_params({"scope": {"adcode": "150200"}, "max_distance_m": 5000, "kinds": None})["max_distance_m"]
    5000.0
    >>> check_params({"scope": {"adcode": "150200"}, "max_distance_m": -5})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoops.errors.InvalidParameterError: max_distance_m: ...; got -5; allowed: a number in (0, 100000] metres
    """
    if not isinstance(params, Mapping):
        raise InvalidParameterError(field="params", value=type(params).__name__,
                                    allowed="an object {scope, max_distance_m, kinds}")
    scope = params.get("scope")
    adcode_ok = isinstance(scope, Mapping) and set(scope) == {"adcode"} and isinstance(scope["adcode"], str) \
        and 0 < len(scope["adcode"]) <= 12
    if not (adcode_ok or (isinstance(scope, Mapping) and set(scope) == {"geometry"})):
        raise InvalidParameterError(field="scope", value=scope,
                                    allowed='{"adcode": "<code of an admin region>"} or {"geometry": <GeoJSON>}')
    d = params.get("max_distance_m")
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or not 0 < d <= max_distance_m:
        raise InvalidParameterError("out of range", field="max_distance_m", value=d,
                                    allowed=f"a number in (0, {max_distance_m:.0f}] metres")
    kinds = params.get("kinds")
    known = vocab.keys("shelter_kind")
    if kinds is not None and not (isinstance(kinds, list) and kinds and all(k in known for k in kinds)):
        raise InvalidParameterError(field="kinds", value=kinds, allowed=f"null or a list of {', '.join(known)}",
                                    code="unknown_kind")
    return {"scope": dict(scope or {}), "max_distance_m": float(d), "kinds": sorted(kinds) if kinds else None}


def coverage_scope(conn: Any, scope: Any, *, service_area: Sequence[float], max_area_km2: float,
                   field: str = "scope") -> tuple[BaseGeometry, dict[str, Any], list[str]]:
    """The area of a coverage run: ``{"adcode": "150200"}`` (an admin region) or a zone (see
    :func:`dashboards.services.zones.parse_zone`).

    Returns
    -------
    (geometry, scope, notes)
        ``scope`` is ``adcode, name, name_en, level`` of the region, or ``{"geometry": True}``.

    Raises
    ------
    layers.store.errors.NotFoundError
        No live region with that adcode.
    """
    if isinstance(scope, Mapping) and "adcode" in scope:
        region = store.region_geometry(conn, str(scope["adcode"]))
        return region["geometry"], {k: region[k] for k in ("adcode", "name", "name_en", "level")}, []
    zone, notes, _ = parse_zone(scope, field=field, service_area=service_area, max_area_km2=max_area_km2)
    return zone, {"geometry": True}, notes


def shelter_coverage(conn: Any, scope: BaseGeometry, *, max_distance_m: float = 5000.0,
                     kinds: list[str] | None = None, candidates: str = "closed", res: int = DEFAULT_RES,
                     top: int = 10, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """Shelter coverage of the population in ``scope`` (lon/lat, EPSG:4326).

    Parameters
    ----------
    max_distance_m : float
        Geodesic reach from a cell's centre to a shelter, metres.
    kinds : list of str, optional
        Shelter kinds considered (default every kind).
    candidates : {"closed", "none"}
        Rank the closed shelters by the population they would add, or not.
    res, top : int
        H3 resolution of the demand; how many gap closers to rank.

    Returns
    -------
    dict
        ``max_distance_m, res, kinds, candidates, totals, cells`` (per res cell: ``h3, population, covered,
        uncovered``), ``by_region``, ``shelters`` (load per open shelter), ``gaps``, ``population_source``,
        ``timing_ms``.
    """
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    src = store.population_source(conn, res=res)
    cells, frac = h3cells.zone_weights(as_area(scope), res=res)
    pop = store.population_of_cells(conn, cells, res=res, source=src["source"]) * frac
    keep = pop > 0
    cells, pop = cells[keep], pop[keep]
    if cells.size > MAX_COVERAGE_CELLS:
        raise InvalidParameterError(f"{cells.size:,} populated cells in the scope", field="scope",
                                    value=f"{cells.size} cells", allowed=f"at most {MAX_COVERAGE_CELLS:,} populated "
                                    f"cells of res {res} (narrow the scope)", code="problem_too_large")
    lon, lat = h3cells.cell_centres(cells) if cells.size else (np.zeros(0), np.zeros(0))
    timing["demand"] = ms(t0)
    t1 = time.perf_counter()
    shelters = store.shelters_for_coverage(conn, scope, max_distance_m=max_distance_m, kinds=kinds)
    open_ = [s for s in shelters if s["status"] != "closed"]
    closed = [s for s in shelters if s["status"] == "closed"]
    timing["shelters"] = ms(t1)
    t1 = time.perf_counter()
    result = coverage.assign(cells, lon, lat, pop, [s["id"] for s in open_], [s["lon"] for s in open_],
                             [s["lat"] for s in open_], [float(s["free"]) for s in open_],
                             max_distance_m=max_distance_m, max_pairs=MAX_COVERAGE_PAIRS)
    timing["assign"] = ms(t1)
    t1 = time.perf_counter()
    gaps: list[dict[str, Any]] = []
    if candidates == "closed" and closed:
        by_id = {s["id"]: s for s in closed}
        ranking = coverage.gap_ranking(result, [s["id"] for s in closed], [s["lon"] for s in closed],
                                       [s["lat"] for s in closed], [float(s["capacity"]) for s in closed], top=top)
        for gap in ranking.to_dict("records"):
            s = by_id[gap["candidate"]]
            gaps.append({"rank": int(gap["rank"]), "shelter_id": s["id"], "external_id": s["external_id"],
                         "name": s["name"], "kind": s["kind"], "lon": s["lon"], "lat": s["lat"],
                         "capacity": s["capacity"], "added_covered": round(float(gap["added_covered"]), 1),
                         "covered_after": round(float(gap["covered_after"]), 1),
                         "uncovered_in_reach": round(float(gap["uncovered_in_reach"]), 1)})
    timing["gaps"] = ms(t1)
    t1 = time.perf_counter()
    c = result.cells
    by_region = split_by_region(conn, scope, lon, lat,
                                {k: c[k].to_numpy() for k in ("population", "covered", "uncovered")}, lang=lang)
    for level in by_region.values():
        for row in level:
            for k in ("population", "covered", "uncovered"):
                row[k] = round(row[k], 1)
            row["coverage_ratio"] = round(row["covered"] / row["population"], 4) if row["population"] else None
    timing["regions"] = ms(t1)
    sh = result.shelters.set_index("shelter")
    shelter_rows = []
    for s in open_:
        r = sh.loc[s["id"]]
        shelter_rows.append({k: s[k] for k in SHELTER_FIELDS}
                            | {"load": round(float(r["load"]), 1), "spare": round(float(r["spare"]), 1),
                               "load_ratio": rounded(float(r["load_ratio"]), 4), "cells_served": int(r["n_cells_served"])})
    totals = {k: (round(float(v), 4 if k.endswith("ratio") else 1) if isinstance(v, (float, np.floating)) else v)
              for k, v in result.totals.items()}
    timing["total"] = ms(t0)
    return {
        "max_distance_m": max_distance_m, "res": res, "kinds": kinds, "candidates": candidates,
        "totals": totals,
        "cells": {"h3": [format(int(x), "x") for x in cells.tolist()],
                  "population": np.round(c["population"].to_numpy(), 2).tolist(),
                  "covered": np.round(c["covered"].to_numpy(), 2).tolist(),
                  "uncovered": np.round(c["uncovered"].to_numpy(), 2).tolist()},
        "by_region": by_region,
        "shelters": shelter_rows,
        "gaps": gaps,
        "population_source": {k: src[k] for k in ("source", "res", "vintage", "modelled")},
        "timing_ms": timing,
    }
