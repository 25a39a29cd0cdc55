"""Nearest resources by true geodesic distance (WGS84): to one point as GeoJSON, to many points as columns.

Public: :data:`MAX_K`, :data:`STATUSES`, :func:`nearest`, :func:`nearest_batch`.

PostGIS KNN gives the candidates and geodesic distance decides the order (:mod:`layers.read.analysis`, which proves
the candidate set complete).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from shapely.geometry import Point

from dashboards.services.figures import ms, rounded
from dashboards.services.zones import service_bbox
from geoops.validate import check_geometry
from layers.read import analysis as store
from layers.store import vocab

__all__ = ["MAX_K", "STATUSES", "nearest", "nearest_batch"]

MAX_K = 100
#: resource statuses a query may ask for; ``any`` means every status
STATUSES = (*vocab.keys("resource_status"), "any")


def _feature(r: Mapping[str, Any], rank: int) -> dict[str, Any]:
    return {"type": "Feature", "id": r["id"], "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            "properties": {"id": r["id"], "external_id": r["external_id"], "name": r["name"], "kind": r["kind"],
                           "status": r["status"], "quantity": r["quantity"], "unit": r["unit"], "rank": rank,
                           "distance_m": rounded(r["distance_m"], 2), "bearing_deg": rounded(r["bearing_deg"], 2)}}


def nearest(conn: Any, lon: float, lat: float, *, k: int = 3, kinds: list[str] | None = None,
            status: str = "available", service_area: Sequence[float], field: str = "lon,lat") -> dict[str, Any]:
    """The ``k`` nearest resources (of ``kinds``, with ``status``) to a point, nearest first, as a FeatureCollection
    with ``distance_m`` (geodesic, metres) and ``bearing_deg`` (from the point, clockwise from north).

    Raises
    ------
    geoops.errors.InvalidGeometryError
        The point lies outside ``service_area`` (or looks like lon/lat swapped).
    """
    check_geometry(Point(lon, lat), service_area=service_bbox(service_area), field=field)
    rows = store.nearest_resources(conn, lon, lat, k=k, kinds=kinds, status=None if status == "any" else status)
    feats = [_feature(r, i + 1) for i, r in enumerate(rows)]
    return {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats),
            "query": {"lon": lon, "lat": lat, "k": k, "kind": kinds, "status": status}}


def nearest_batch(conn: Any, lon: np.ndarray, lat: np.ndarray, *, k: int = 3, kinds: list[str] | None = None,
                  status: str = "available", details: bool = True, arrays: bool = False) -> dict[str, Any]:
    """The ``k`` nearest resources of each point (points already checked, e.g. by
    :func:`dashboards.services.zones.check_points`), as columns: row i is point i.

    Returns
    -------
    dict
        ``n_points, k, kind, status, candidates, resources`` (details of every resource referenced, or None),
        ``resource_id`` (-1 where fewer than k exist), ``distance_m``, ``bearing_deg`` (nearest first), and
        ``timing_ms`` (``fetch_and_compute``, ``details``). With ``arrays`` the three columns are the numpy arrays
        of shape (n, k) themselves (for a columnar answer), not lists.
    """
    t1 = time.perf_counter()
    ids, dist, bear, cand = store.nearest_resources_batch(conn, lon, lat, k=k, kinds=kinds,
                                                          status=None if status == "any" else status)
    t_compute = ms(t1)
    t2 = time.perf_counter()
    resources = store.resource_details(conn, np.unique(ids[ids >= 0])) if details else None
    t_details = ms(t2)
    dist, bear = np.round(dist, 1), np.round(bear, 1)
    return {"n_points": int(lon.size), "k": k, "kind": kinds, "status": status, "candidates": int(cand.size),
            "resources": resources, "resource_id": ids if arrays else ids.tolist(),
            "distance_m": dist if arrays else dist.tolist(), "bearing_deg": bear if arrays else bear.tolist(),
            "timing_ms": {"fetch_and_compute": t_compute, "details": t_details}}
