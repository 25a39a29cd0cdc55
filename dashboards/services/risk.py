"""Regional risk: hazard intensity x exposure x vulnerability per H3 cell, rolled up to counties and prefectures.

Public: :data:`LEVELS`, :func:`regional_risk`.

Cells are those of the active hazards (:func:`geoops.h3cells.zone_weights`); a cell goes to the county holding its
centre (:func:`geoops.population.cells_to_regions`), a county to its prefecture. The weights are the model's
(:class:`geoops.risk.RiskWeights`: ``blue`` .. ``red``, ``occupants_weight``, ``vulnerability``) and are checked
there. ``docs/api.md`` says what every number means.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from dashboards.i18n import DEFAULT_LANGUAGE, t
from dashboards.services.figures import ms, rounded
from dashboards.services.zones import DEFAULT_RES
from geoops import h3cells
from geoops import risk as grisk
from geoops.population import cells_to_regions
from layers.read import analysis as store
from layers.read import skips

__all__ = ["LEVELS", "regional_risk"]

LEVELS = ("county", "prefecture")
_UNASSIGNED = "unassigned"


def _occupants(conn: Any, hazards: list[dict[str, Any]], cells: np.ndarray, *, res: int) -> np.ndarray:
    """Protection-target occupants per cell of ``cells`` (sorted): every target whose point lies in one of the cells,
    inside a hazard or not, since a cell's exposure counts everyone in it (docs/analyses.md, "Regional risk")."""
    occ = np.zeros(cells.size)
    if not hazards or not cells.size:
        return occ
    # each hazard's bounding box grown by twice a cell's circumradius holds every cell that touches the hazard (the
    # cells are hexagons of about equal area at one resolution); which cell a target is in is decided exactly below
    radius_m = math.sqrt(2 * float(h3cells.cell_area_m2(cells[:1])[0]) / (3 * math.sqrt(3)))
    boxes = []
    for h in hazards:
        west, south, east, north = h["geometry"].bounds
        grow_lat = 2 * radius_m / 110_000.0
        grow_lon = grow_lat / max(math.cos(math.radians(min(89.0, max(abs(south), abs(north)) + grow_lat))), 0.02)
        boxes.append(shapely.box(west - grow_lon, south - grow_lat, east + grow_lon, north + grow_lat))
    targets = store.targets_in_zone(conn, shapely.union_all(boxes))
    if targets:
        tc, ts = h3cells.points_to_cells([x["lon"] for x in targets], [x["lat"] for x in targets],
                                         [float(x["occupants"]) for x in targets], res=res)
        pos = np.searchsorted(cells, tc)
        ok = (pos < cells.size) & (cells[np.minimum(pos, cells.size - 1)] == tc)
        occ[pos[ok]] = ts[ok]
    return occ


def _county_keys(conn: Any, hazards: list[dict[str, Any]], cells: np.ndarray
                 ) -> tuple[np.ndarray, dict[Hashable, Hashable]]:
    """County adcode of each cell (``unassigned`` outside every county) and each county's prefecture."""
    counties = store.regions_of_level(conn, level="county", within=shapely.union_all(
        [h["geometry"] for h in hazards]).bounds, geometry=True) if hazards else []
    if counties and cells.size:
        gdf = gpd.GeoDataFrame({"adcode": [c["adcode"] for c in counties]},
                               geometry=[c["geometry"] for c in counties], crs=4326)
        keys = cells_to_regions(cells, gdf)
    else:
        keys = np.full(cells.size, None, dtype=object)
    keys = np.where(pd.isna(keys), _UNASSIGNED, keys).astype(object)
    parent_of: dict[Hashable, Hashable] = {c["adcode"]: c["parent_adcode"] or _UNASSIGNED for c in counties}
    parent_of[_UNASSIGNED] = _UNASSIGNED
    return keys, parent_of


def _region_row(r: Mapping[Hashable, Any], names: Mapping[str, Mapping[str, Any]], lang: str) -> dict[str, Any]:
    code = r["region"]
    info = names.get(code, {})
    return {"adcode": None if code == _UNASSIGNED else code,
            "name": info.get("name") or t("analysis.region.unassigned", lang), "name_en": info.get("name_en"),
            "parent_adcode": None if r["parent"] in (None, _UNASSIGNED) else r["parent"],
            "risk": round(float(r["risk"]), 2), "score": rounded(float(r["score"]), 6),
            "components": {"intensity": rounded(float(r["intensity"]), 6),
                           "vulnerability": rounded(float(r["vulnerability"]), 6),
                           "exposure": round(float(r["exposure"]), 2),
                           "hazard_exposure": round(float(r["hazard_exposure"]), 2),
                           "population": round(float(r["population"]), 2),
                           "occupants": round(float(r["occupants"]), 2)},
            "cells": int(r["n_cells"])}


def _cells_in(frame: pd.DataFrame, cells: np.ndarray, bbox: Sequence[float], *, res: int, cell_res: int
              ) -> dict[str, Any]:
    """Per-cell values inside ``bbox`` summed onto their parents at ``cell_res``."""
    lon, lat = h3cells.cell_centres(cells) if cells.size else (np.zeros(0), np.zeros(0))
    west, south, east, north = bbox
    sub = frame[(lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)]
    parents = h3cells.parent_cells(sub["cell"].to_numpy(), res=res, parent_res=cell_res)
    agg = sub.assign(parent=parents).groupby("parent", sort=True)[
        ["population", "occupants", "exposure", "hazard_exposure", "risk"]].sum()
    inten = np.where(agg["exposure"] > 0, agg["hazard_exposure"] / agg["exposure"].where(agg["exposure"] > 0, 1),
                     np.nan)
    return {"res": cell_res, "bbox": list(bbox),
            "h3": [format(int(x), "x") for x in agg.index.to_numpy(dtype=np.int64)],
            "risk": np.round(agg["risk"].to_numpy(), 3).tolist(),
            "exposure": np.round(agg["exposure"].to_numpy(), 3).tolist(),
            "intensity": [None if math.isnan(v) else round(float(v), 6) for v in inten]}


def regional_risk(conn: Any, *, level: str = "county", hazard_kind: list[str] | None = None,
                  weights: Mapping[str, float] | None = None, res: int = DEFAULT_RES, at: datetime | None = None,
                  cells_bbox: Sequence[float] | None = None, cell_res: int = 7, lang: str = DEFAULT_LANGUAGE
                  ) -> dict[str, Any]:
    """Regional risk from the hazards in force at ``at`` (default now).

    Parameters
    ----------
    level : {"county", "prefecture"}
        The regions listed.
    hazard_kind : list of str, optional
        Only these hazard kinds.
    weights : mapping, optional
        The model's weights by name (:class:`geoops.risk.RiskWeights`); the rest keep their defaults.
    res : int
        H3 resolution of the analysis.
    cells_bbox : (west, south, east, north), optional
        Also return per-cell values inside this box, summed onto cells of ``cell_res``.

    Returns
    -------
    dict
        ``level, res, weights, hazard_kind, hazards, regions`` (highest risk first, with components),
        ``totals``, ``population_source``, ``cells`` (with ``cells_bbox``), ``timing_ms``.

    Raises
    ------
    geoops.errors.InvalidParameterError
        A weight out of range, named by the model's name (``yellow``).
    """
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    w = grisk.RiskWeights.from_mapping(weights)
    src = store.population_source(conn, res=res)
    # a hazard whose cells cannot be computed is left out and listed in "skipped"; the rest are drawn
    hazards, skipped = skips.in_scope(store.active_hazards(conn, kinds=hazard_kind, at=at))
    done, failed = skips.each(hazards, lambda h: h3cells.zone_weights(h["geometry"], res=res))
    skipped += failed
    hazards = [h for h, _ in done]
    cover = [(h["warning_level"], hc, hf) for h, (hc, hf) in done]
    all_cells = [hc for _, hc, _ in cover]
    cells = np.unique(np.concatenate(all_cells)) if all_cells else np.zeros(0, dtype=np.int64)
    timing["hazard_cells"] = ms(t0)
    t1 = time.perf_counter()
    pop = store.population_of_cells(conn, cells, res=res, source=src["source"])
    frame = grisk.cell_risk(cells, pop, hazard_cover=cover, occupants=_occupants(conn, hazards, cells, res=res),
                            weights=w)
    timing["cell_risk"] = ms(t1)
    t1 = time.perf_counter()
    keys, parent_of = _county_keys(conn, hazards, cells)
    regions = (grisk.rollup(frame, keys, parent_of) if cells.size
               else pd.DataFrame(columns=grisk.REGION_COLUMNS))
    timing["rollup"] = ms(t1)
    names = store.region_names(conn, [r for r in regions["region"].tolist() if r != _UNASSIGNED])
    rows = [_region_row(r, names, lang) for r in regions[regions["level"] == level].sort_values(
        "risk", ascending=False).to_dict("records")]
    out: dict[str, Any] = {
        "level": level, "res": res, "weights": w.to_dict(), "hazard_kind": hazard_kind,
        "hazards": [{"id": h["id"], "name": h["name"], "kind": h["kind"], "warning_level": h["warning_level"],
                     "expires": h["expires"]} for h in hazards],
        "regions": rows,
        "skipped": skipped,
        "totals": {k: round(float(frame[k].sum()), 2) for k in ("population", "occupants", "exposure",
                                                                  "hazard_exposure", "risk")},
        "population_source": {k: src[k] for k in ("source", "res", "vintage", "modelled")},
    }
    if cells_bbox is not None:
        t1 = time.perf_counter()
        out["cells"] = _cells_in(frame, cells, cells_bbox, res=res, cell_res=cell_res)
        timing["cells"] = ms(t1)
    timing["total"] = ms(t0)
    out["timing_ms"] = timing
    return out
