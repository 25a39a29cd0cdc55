"""Geodesic multi-ring buffers around a point, line or area.

Public: :func:`buffer_rings`, :func:`ring_features`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from dashboards.services.zones import service_bbox
from geoops import geodesic
from geoops.validate import check_geometry, parse_geojson_geometry

__all__ = ["buffer_rings", "ring_features"]


def buffer_rings(source: Any, distances_m: Sequence[float], *, service_area: Sequence[float], segments: int = 128,
                 field: str = "geometry") -> tuple[gpd.GeoDataFrame, list[str], BaseGeometry]:
    """One ring per distance around ``source`` (GeoJSON), each the buffer minus the previous one.

    Returns
    -------
    (rings, notes, source)
        The frame of :func:`geoops.geodesic.rings` (``distance_m``, ``inner_distance_m``, ``area_m2``, geometry),
        the repairs made to the source, and the checked source geometry.

    Raises
    ------
    geoops.errors.InvalidGeometryError
        A malformed source, or one outside ``service_area``.
    geoops.errors.InvalidParameterError
        Distances not strictly increasing, or out of (0, 500000] metres.
    """
    geom, notes = check_geometry(parse_geojson_geometry(source, field=field), service_area=service_bbox(service_area),
                                 field=field)
    return geodesic.rings(geom, distances_m=distances_m, segments=segments), notes, geom


def ring_features(source: Any, distances_m: Sequence[float], *, service_area: Sequence[float],
                  segments: int = 128) -> dict[str, Any]:
    """:func:`buffer_rings` as a GeoJSON FeatureCollection (``ring``, ``distance_m``, ``inner_distance_m``,
    ``area_m2`` per ring), with ``notes`` and the source's ``source_area_m2``."""
    frame, notes, geom = buffer_rings(source, distances_m, service_area=service_area, segments=segments)
    feats = [{"type": "Feature", "id": i, "geometry": mapping(g),
              "properties": {"ring": i, "distance_m": float(d), "inner_distance_m": float(di),
                             "area_m2": round(float(a), 1)}}
             for i, (d, di, a, g) in enumerate(zip(frame["distance_m"], frame["inner_distance_m"],
                                                   frame["area_m2"], frame.geometry, strict=True))]
    return {"type": "FeatureCollection", "features": feats, "notes": notes,
            "source_area_m2": round(float(geodesic.area_m2(geom)), 1)}
