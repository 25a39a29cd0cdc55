"""The analysis API against oracles that read the store themselves, on a small world with soft-deleted rows.

A database of its own holds a hand-made world around Hohhot: population on res-8 cells, two counties and a
prefecture, hazards, protection targets, shelters and resources. In every zone an analysis reads, some rows are
soft-deleted (through :func:`layers.ingest.writes.delete_feature`, as the API deletes), one of each is deleted and
restored, and the deleted ones are placed where counting them would change the answer most: a huge orange hazard over
everything, a 5,000-occupant school inside the red hazard, a 50,000-place shelter in the coverage zone, the resource
nearest to each query point, a county that would win every cell.

The oracles (``tests/dashboards/oracles.py``) share no code with the analyses: the live set is rebuilt from the
history (the newest history row of each feature is not a delete), checked against the test's own bookkeeping; cells,
their shares of a zone and their areas come from h3-py, shapely and ``pyproj.Geod``; populations, capacities,
occupancies and occupants from plain SQL; distances from ``Geod.inv``; the coverage optimum from an independent
maximum flow; risk from the documented formula (docs/analyses.md, "Regional risk") in numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session

from dashboards.app import create_app
from layers.ingest.writes import delete_feature
from layers.store.models import AdminRegion, Hazard, ProtectionTarget, Resource, Shelter
from layers.store.settings import Settings
from tests.conftest import api_token, authorize, drop_database, sibling_database
from tests.dashboards import oracles
from tests.dashboards.oracles import GEOD, brute_nearest, live_ids, live_rows

pytestmark = pytest.mark.db

API = "/api/v1/analysis"
SOURCE = "pytest-oracle"
RES = 8
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # hazards are days either side of it
POP_BOX = (111.45, 40.45, 112.15, 41.05)
LEVEL_WEIGHT = {"blue": 0.25, "yellow": 0.5, "orange": 0.75, "red": 1.0}  # the documented defaults

#: the impact card's zone and the coverage scope
Z = box(111.58, 40.60, 111.86, 40.76)
C = box(111.60, 40.62, 111.72, 40.72)
DEG_LON_M = 111_320 * math.cos(math.radians(40.67))  # metres per degree of longitude here, to place points


def _circle(lon: float, lat: float, radius_m: float, n: int = 96) -> Polygon:
    az = np.linspace(0, 360, n, endpoint=False)
    x, y, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), az, np.full(n, radius_m))
    return Polygon(zip(x, y, strict=True))


H_YELLOW = _circle(111.80, 40.70, 8000)


@dataclass
class World:
    url: str
    engine: Engine
    ids: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, set[int]] = field(default_factory=dict)
    restored: dict[str, set[int]] = field(default_factory=dict)


def _add(s: Session, w: World, key: str, model: Any, geom: Any, **cols: Any) -> int:
    ewkt = f"SRID=4326;{(MultiPolygon([geom]) if isinstance(geom, Polygon) else geom).wkt}"
    fid = s.execute(insert(model).values(source=SOURCE, external_id=key, name=key, geom=ewkt, **cols)
                    .returning(model.id)).scalar_one()
    w.ids[key] = int(fid)
    return int(fid)


def _populate(s: Session) -> None:
    rng = np.random.default_rng(19)
    w, so, e, n = POP_BOX
    cells = sorted(h3.polygon_to_cells(h3.LatLngPoly([(so, w), (so, e), (n, e), (n, w)]), RES))
    pop = np.round(rng.gamma(2.0, 60.0, len(cells)), 2)
    pop[rng.random(len(cells)) < 0.05] = 0.0  # a build stores covered cells with no people too
    s.execute(text("INSERT INTO population_sources (source, res, vintage, modelled, input_total, cell_count) "
                   "VALUES (:s, :r, '2024', false, :t, :n)"), {"s": SOURCE, "r": RES, "t": float(pop.sum()),
                                                               "n": len(cells)})
    s.execute(text("INSERT INTO population_cells (source, res, h3, population) VALUES (:s, :r, :h, :p)"),
              [{"s": SOURCE, "r": RES, "h": h3.str_to_int(c), "p": float(p)} for c, p in zip(cells, pop, strict=True)])


def _seed(s: Session, w: World) -> None:
    _populate(s)
    region = {"kind": "county", "status": "active"}
    _add(s, w, "prefecture", AdminRegion, box(111.3, 40.3, 112.3, 41.2), adcode="159900", level="prefecture",
         **{**region, "kind": "prefecture"})
    _add(s, w, "county_west", AdminRegion, box(111.3, 40.3, 111.8, 41.2), adcode="159901", level="county",
         parent_adcode="159900", **region)
    _add(s, w, "county_east", AdminRegion, box(111.8, 40.3, 112.3, 41.2), adcode="159902", level="county",
         parent_adcode="159900", **region)
    # deleted: with the smallest adcode, it would take every cell
    _add(s, w, "county_deleted", AdminRegion, box(111.3, 40.3, 112.3, 41.2), adcode="159899", level="county",
         parent_adcode="159900", **region)

    hz = {"kind": "flood", "status": "active"}
    _add(s, w, "h_red", Hazard, box(111.55, 40.60, 111.75, 40.75), warning_level="red",
         onset=T0 - timedelta(days=1), expires=T0 + timedelta(days=3), **hz)
    _add(s, w, "h_yellow", Hazard, H_YELLOW, warning_level="yellow", **{**hz, "kind": "sandstorm"})
    _add(s, w, "h_orange_deleted", Hazard, box(111.5, 40.5, 112.1, 41.0), warning_level="orange", **hz)
    _add(s, w, "h_blue_past", Hazard, box(111.90, 40.80, 112.05, 40.95), warning_level="blue",
         onset=T0 - timedelta(days=3), expires=T0 - timedelta(days=1), **hz)
    _add(s, w, "h_orange_future", Hazard, box(111.86, 40.52, 112.00, 40.62), warning_level="orange",
         onset=T0 + timedelta(days=1), expires=T0 + timedelta(days=3), **hz)
    _add(s, w, "h_cancelled", Hazard, box(111.95, 40.65, 112.05, 40.75), warning_level="red",
         **{**hz, "status": "cancelled"})
    _add(s, w, "h_yellow_restored", Hazard, box(111.47, 40.47, 111.53, 40.53), warning_level="yellow", **hz)

    tg = {"status": "normal"}
    _add(s, w, "t_school", ProtectionTarget, Point(111.60, 40.66), kind="school", occupants=800, **tg)
    _add(s, w, "t_hospital", ProtectionTarget, Point(111.70, 40.72), kind="hospital", occupants=300, **tg)
    _add(s, w, "t_nursing", ProtectionTarget, Point(111.82, 40.71), kind="nursing_home", occupants=120, **tg)
    _add(s, w, "t_deleted", ProtectionTarget, Point(111.65, 40.67), kind="school", occupants=5000, **tg)
    _add(s, w, "t_restored", ProtectionTarget, Point(111.79, 40.69), kind="kindergarten", occupants=70, **tg)
    _add(s, w, "t_restored_hz", ProtectionTarget, Point(111.50, 40.50), kind="hospital", occupants=90, **tg)
    _add(s, w, "t_outside", ProtectionTarget, Point(112.05, 41.0), kind="mine", occupants=400, **tg)
    # 20 m north of the red hazard, in a cell the hazard covers in part: the cell's exposure includes them
    _add(s, w, "t_edge", ProtectionTarget, Point(111.60, 40.75 + 20 / 111_030), kind="school", occupants=250, **tg)

    sh = {"kind": "emergency"}
    east_2km = 111.72 + 2000 / DEG_LON_M
    _add(s, w, "s_open_1", Shelter, Point(111.63, 40.65), status="open", capacity=3000, occupancy=1000, **sh)
    _add(s, w, "s_open_2", Shelter, Point(111.69, 40.70), status="open", capacity=2500, occupancy=2400, **sh)
    _add(s, w, "s_closed", Shelter, Point(111.66, 40.68), status="closed", capacity=5000, occupancy=0, **sh)
    _add(s, w, "s_full", Shelter, Point(111.70, 40.64), status="full", capacity=1000, occupancy=1000, **sh)
    _add(s, w, "s_over", Shelter, Point(111.68, 40.63), status="open", capacity=100, occupancy=150, **sh)
    _add(s, w, "s_deleted", Shelter, Point(111.65, 40.69), status="open", capacity=50000, occupancy=0, **sh)
    _add(s, w, "s_restored", Shelter, Point(111.615, 40.705), status="open", capacity=1500, occupancy=200, **sh)
    _add(s, w, "s_east_2km", Shelter, Point(east_2km, 40.67), status="open", capacity=4000, occupancy=500, **sh)
    _add(s, w, "s_south_near", Shelter, Point(111.66, 40.60 - 3800 / 111_030), status="open", capacity=800,
         occupancy=100, **sh)  # 3.8 km south of Z: nearby for the card, beyond 3 km of C
    _add(s, w, "s_west_far", Shelter, Point(111.58 - 9000 / DEG_LON_M, 40.68), status="open", capacity=900,
         occupancy=0, **sh)  # 9 km west of Z
    _add(s, w, "s_deleted_near", Shelter, Point(111.70, 40.76 + 1000 / 111_030), status="open", capacity=7000,
         occupancy=0, **sh)  # 1 km north of Z, deleted

    # resources: random, and at the impact card's centre and the single-point queries a deleted one nearest
    kinds = ("ambulance", "fire_engine", "rescue_team")
    rng = np.random.default_rng(7)
    for i in range(90):
        _add(s, w, f"r_{i}", Resource, Point(rng.uniform(111.5, 112.1), rng.uniform(40.5, 41.0)),
             kind=kinds[i % 3], status=("available", "available", "deployed", "unavailable")[i % 4])
    cx, cy = Z.centroid.x, Z.centroid.y
    for kind in kinds:
        _add(s, w, f"r_del_centre_{kind}", Resource, Point(cx + 0.0002, cy + 0.0001), kind=kind, status="available")
    for j, (lon, lat) in enumerate(QUERY_POINTS):
        _add(s, w, f"r_del_q{j}", Resource, Point(lon + 0.0003, lat - 0.0002), kind="ambulance", status="available")
    _add(s, w, "r_restored", Resource, Point(111.701, 40.699), kind="fire_engine", status="available")


QUERY_POINTS = [(111.70, 40.70), (111.95, 40.90), (111.55, 40.95), (112.05, 40.55)]

DELETE = ["county_deleted", "h_orange_deleted", "t_deleted", "s_deleted", "s_deleted_near",
          *[f"r_del_centre_{k}" for k in ("ambulance", "fire_engine", "rescue_team")],
          *[f"r_del_q{j}" for j in range(len(QUERY_POINTS))],
          "r_3", "r_10", "r_21", "r_44", "r_58",
          "t_restored", "t_restored_hz", "s_restored", "r_restored", "h_yellow_restored"]
RESTORE = ["t_restored", "t_restored_hz", "s_restored", "r_restored", "h_yellow_restored"]
LAYER_OF = {"county": "admin_regions", "prefecture": "admin_regions", "h": "hazards", "t": "protection_targets",
            "s": "shelters", "r": "resources"}


def _layer(key: str) -> str:
    return LAYER_OF[key.split("_")[0]]


@pytest.fixture(scope="module")
def world(db_url: str) -> Iterator[World]:
    url = sibling_database(db_url, "oracles")
    engine = create_engine(url)
    w = World(url=url, engine=engine)
    with Session(engine) as s, s.begin():
        s.execute(text("SELECT set_config('sitroom.user', 'pytest-oracles', true)"))
        _seed(s, w)
    with Session(engine) as s, s.begin():  # deleted as the API deletes: deleted_at set, a 'delete' in the history
        for key in DELETE:
            delete_feature(s, _layer(key), w.ids[key], user="pytest-oracles")
            w.deleted.setdefault(_layer(key), set()).add(w.ids[key])
    with Session(engine) as s, s.begin():  # brought back (as a re-import does): an 'update' in the history
        for key in RESTORE:
            s.execute(text(f"UPDATE {_layer(key)} SET deleted_at = NULL WHERE id = :i"), {"i": w.ids[key]})
            w.deleted[_layer(key)].discard(w.ids[key])
            w.restored.setdefault(_layer(key), set()).add(w.ids[key])
    with engine.connect() as c:
        c.execute(text("ANALYZE"))
        c.commit()
    try:
        yield w
    finally:
        engine.dispose()
        drop_database(url)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[Any]:
    app = create_app(Settings(database_url=world.url))
    with app.server.test_client() as c:
        yield authorize(c, api_token(world.engine, access="read"))


def _live(world: World, layer: str, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    with world.engine.connect() as c:
        return live_rows(c, layer, columns)


def _ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_the_oracle_live_set_is_the_history_and_agrees_with_the_test(world: World) -> None:
    """The history-based live set drops exactly what the test deleted and keeps what it brought back."""
    with world.engine.connect() as c:
        for layer in ("admin_regions", "hazards", "protection_targets", "shelters", "resources"):
            every = set(c.execute(text(f"SELECT id FROM {layer}")).scalars())
            live = live_ids(c, layer)
            assert live == every - world.deleted.get(layer, set()), layer
            assert world.restored.get(layer, set()) <= live
            assert world.deleted.get(layer), f"no deleted row in {layer}: the test would prove nothing there"


# ------------------------------------------------------------------------------------------------ impact card


@pytest.fixture(scope="module")
def card(client: Any) -> dict[str, Any]:
    return _ok(client.post(f"{API}/impact", json={"geometry": mapping(Z), "shelter_distance_m": 5000}))


def test_card_targets_are_the_live_ones_in_the_zone(card: dict[str, Any], world: World) -> None:
    live = [t for t in _live(world, "protection_targets", ("kind", "occupants")) if Z.covers(Point(t["lon"], t["lat"]))]
    pt = card["protection_targets"]
    assert sorted(x["id"] for x in pt["items"]) == sorted(t["id"] for t in live)
    assert world.ids["t_deleted"] not in {x["id"] for x in pt["items"]} and world.ids["t_restored"] in {
        x["id"] for x in pt["items"]}
    assert pt["count"] == len(live) and pt["occupants"] == sum(t["occupants"] for t in live)
    by_kind: dict[str, dict[str, int]] = {}
    for t in live:
        k = by_kind.setdefault(t["kind"], {"count": 0, "occupants": 0})
        k["count"] += 1
        k["occupants"] += t["occupants"]
    assert pt["by_kind"] == by_kind


def _card_shelters(world: World, reach_m: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Live shelters inside Z, and those outside within ``reach_m`` of it (brute-force Geod distance)."""
    inside, nearby = [], []
    for sh in _live(world, "shelters", ("status", "capacity", "occupancy")):
        d = oracles.distance_to_polygon_m(sh["lon"], sh["lat"], Z)
        sh["distance_m"] = d
        if d == 0:
            inside.append(sh)
        elif d <= reach_m:
            nearby.append(sh)
    return inside, nearby


def test_card_shelters_capacity_and_occupancy_come_from_the_store(card: dict[str, Any], world: World) -> None:
    inside, nearby = _card_shelters(world, 5000)
    assert {world.ids["s_south_near"]} <= {s["id"] for s in nearby}
    for part, oracle in (("inside", inside), ("nearby", nearby)):
        got = card["shelters"][part]
        by_id = {x["id"]: x for x in got["items"]}
        assert sorted(by_id) == sorted(s["id"] for s in oracle), part
        assert got["count"] == len(oracle)
        assert got["capacity"] == sum(s["capacity"] for s in oracle)
        assert got["occupancy"] == sum(s["occupancy"] for s in oracle)
        for s in oracle:
            item = by_id[s["id"]]
            assert (item["capacity"], item["occupancy"], item["status"]) == (s["capacity"], s["occupancy"],
                                                                            s["status"])
            if s["status"] != "closed":  # free places of an open shelter: capacity - occupancy, never below 0
                assert item["free"] == max(0, s["capacity"] - s["occupancy"]), item
            # the card's distances are on the spheroid with geodesic edges; the oracle's edges are straight in
            # lon/lat: they differ by metres on a zone this size
            assert item["distance_m"] == pytest.approx(s["distance_m"], abs=15.0)


def test_card_free_places_are_those_of_open_shelters(card: dict[str, Any], world: World) -> None:
    """A closed shelter offers no places: the card's free places are capacity - occupancy of the open ones."""
    inside, nearby = _card_shelters(world, 5000)
    assert any(s["status"] == "closed" for s in inside)
    for part, oracle in (("inside", inside), ("nearby", nearby)):
        got = card["shelters"][part]
        assert got["free"] == sum(max(0, s["capacity"] - s["occupancy"]) for s in oracle if s["status"] != "closed")
        for item in got["items"]:
            if item["status"] == "closed":
                assert item["free"] == 0


def test_card_population_and_regions_from_stored_cells(card: dict[str, Any], world: World) -> None:
    frac = oracles.cell_fractions(Z, RES)
    with world.engine.connect() as c:
        pop = oracles.stored_population(c, frac, res=RES, source=SOURCE)
        counties = [r for r in live_rows(c, "admin_regions", ("adcode", "level", "parent_adcode"))
                    if r["level"] == "county"]
    weighted = {cell: pop[cell] * f for cell, f in frac.items()}
    assert card["population"] == pytest.approx(sum(weighted.values()), rel=1e-5)
    # by county: the cell's centre in a county's part of the zone (counties here cover the whole zone)
    counties.sort(key=lambda r: r["adcode"])
    parts = {r["adcode"]: r["geometry"].intersection(Z) for r in counties}
    want: dict[str, float] = {}
    for cell, v in weighted.items():
        if v <= 0:
            continue
        lat, lng = h3.cell_to_latlng(cell)
        centre = Point(lng, lat)
        code = next((a for a, part in parts.items() if part.covers(centre)), None)
        if code is None:  # a boundary cell whose centre is outside the zone: the nearest part
            code = min(parts, key=lambda a: parts[a].distance(centre))
        want[code] = want.get(code, 0.0) + v
    got = {r["adcode"]: r["population"] for r in card["by_region"]["county"]}
    assert sorted(got) == sorted(want) == ["159901", "159902"]  # the deleted county 159899 takes nothing
    for code, v in want.items():
        assert got[code] == pytest.approx(v, rel=1e-5, abs=0.1)


def test_card_nearest_resource_of_each_kind_is_live(card: dict[str, Any], world: World) -> None:
    cx, cy = card["nearest_resources"]["from"]
    assert (cx, cy) == pytest.approx((Z.centroid.x, Z.centroid.y), abs=1e-6)
    resources = [r for r in _live(world, "resources", ("kind", "status")) if r["status"] == "available"]
    for kind, got in card["nearest_resources"]["by_kind"].items():
        rows = [r for r in resources if r["kind"] == kind]
        if not rows:
            assert got is None, kind
            continue
        ((oid, od),) = brute_nearest(cx, cy, rows, 1)
        assert got["id"] == oid and got["distance_m"] == pytest.approx(od, abs=0.1), kind
        assert got["id"] != world.ids.get(f"r_del_centre_{kind}")


# ------------------------------------------------------------------------------------------------ nearest


@pytest.mark.parametrize(("lon", "lat"), QUERY_POINTS)
@pytest.mark.parametrize("status", ["available", "any"])
def test_nearest_skips_deleted_resources(client: Any, world: World, lon: float, lat: float, status: str) -> None:
    out = _ok(client.get(f"{API}/nearest?lon={lon}&lat={lat}&k=5&status={status}"))
    rows = [r for r in _live(world, "resources", ("kind", "status")) if status == "any" or r["status"] == status]
    oracle = brute_nearest(lon, lat, rows, 5)
    assert [f["properties"]["id"] for f in out["features"]] == [i for i, _ in oracle]
    np.testing.assert_allclose([f["properties"]["distance_m"] for f in out["features"]], [d for _, d in oracle],
                               atol=0.01)


def test_nearest_batch_skips_deleted_resources(client: Any, world: World) -> None:
    rng = np.random.default_rng(11)
    pts = np.vstack([np.array(QUERY_POINTS), np.column_stack([rng.uniform(111.5, 112.1, 200),
                                                              rng.uniform(40.5, 41.0, 200)])])
    body = _ok(client.post(f"{API}/nearest", json={"points": pts.tolist(), "k": 3, "kind": ["ambulance"]}))
    rows = [r for r in _live(world, "resources", ("kind", "status"))
            if r["kind"] == "ambulance" and r["status"] == "available"]
    for i, (lon, lat) in enumerate(pts.tolist()):
        oracle = brute_nearest(lon, lat, rows, 3)
        assert body["resource_id"][i] == [o for o, _ in oracle], i
        np.testing.assert_allclose(body["distance_m"][i], [d for _, d in oracle], atol=0.06)


# ------------------------------------------------------------------------------------------------ coverage


def _coverage_oracle(world: World, reach_m: float) -> tuple[dict[str, float], list[dict[str, Any]], float]:
    """Demand per cell of C (stored population x the cell's share of C), the open live shelters within reach with
    their free places from SQL, and the maximum coverable population."""
    frac = oracles.cell_fractions(C, RES)
    with world.engine.connect() as c:
        pop = oracles.stored_population(c, frac, res=RES, source=SOURCE)
    demand = {cell: pop[cell] * f for cell, f in frac.items() if pop[cell] * f > 0}
    supply = []
    for sh in _live(world, "shelters", ("status", "capacity", "occupancy")):
        if sh["status"] != "closed" and oracles.distance_to_polygon_m(sh["lon"], sh["lat"], C) <= reach_m:
            supply.append({**sh, "free": max(0, sh["capacity"] - sh["occupancy"])})
    cells = sorted(demand)
    xy = np.array([h3.cell_to_latlng(cell)[::-1] for cell in cells])
    best = oracles.max_flow(xy, np.array([demand[cell] for cell in cells]), supply, reach_m)
    return demand, supply, best


def test_coverage_reads_population_places_and_shelters_from_the_store(client: Any, world: World) -> None:
    out = _ok(client.post(f"{API}/shelter-coverage", json={"scope": mapping(C), "max_distance_m": 3000,
                                                           "candidates": "closed"}))
    demand, supply, best = _coverage_oracle(world, 3000)
    # the demand: every populated cell of the scope with its stored population x its share of the scope
    got = dict(zip(out["cells"]["h3"], out["cells"]["population"], strict=True))
    assert sorted(got) == sorted(demand)
    for cell, v in demand.items():
        assert got[cell] == pytest.approx(v, rel=1e-5, abs=0.01)
    # the supply: exactly the open live shelters in reach, with the free places the store says they have
    rows = {s["id"]: s for s in out["shelters"]}
    assert sorted(rows) == sorted(s["id"] for s in supply)
    assert world.ids["s_deleted"] not in rows and world.ids["s_restored"] in rows
    for s in supply:
        assert (rows[s["id"]]["free"], rows[s["id"]]["capacity"], rows[s["id"]]["occupancy"]) == (
            s["free"], s["capacity"], s["occupancy"])
        assert rows[s["id"]]["load"] <= s["free"] + 1e-6
    # places are scarce here, so the maximum depends on every shelter's occupancy
    assert sum(s["free"] for s in supply) < 0.8 * sum(demand.values())
    assert out["totals"]["covered"] == pytest.approx(best, abs=0.01 * len(demand) + 0.5)
    assert [g["shelter_id"] for g in out["gaps"]] == [world.ids["s_closed"]]


# ------------------------------------------------------------------------------------------------ risk


def _risk_oracle(world: World, *, at: datetime, w_occupants: float = 1.0, w_vulnerability: float = 1.0,
                 ) -> dict[str, Any]:
    """Regional risk by the documented formula, from raw hazards, stored cells and live targets' occupants.

    Per cell c: I = 1 - prod(1 - w(level) x share of c covered by hazard h) over the hazards in force at ``at``
    (status active, onset passed or unset, expiry not reached or unset, live); E = population + w_occupants x
    occupants of the live targets in c; R = I x E x w_vulnerability. Cells go to the first live county (by adcode)
    holding their centre, counties to their prefecture.
    """
    with world.engine.connect() as c:
        hazards = [h for h in live_rows(c, "hazards", ("status", "warning_level", "onset", "expires"))
                   if h["status"] == "active" and (h["onset"] is None or h["onset"] <= at)
                   and (h["expires"] is None or h["expires"] > at)]
        targets = live_rows(c, "protection_targets", ("occupants",))
        counties = sorted((r for r in live_rows(c, "admin_regions", ("adcode", "level", "parent_adcode"))
                           if r["level"] == "county"), key=lambda r: r["adcode"])
        shares = [(h, oracles.cell_fractions(h["geometry"], RES)) for h in hazards]
        cells = sorted({cell for _, f in shares for cell in f})
        pop = oracles.stored_population(c, cells, res=RES, source=SOURCE)
    index = {cell: i for i, cell in enumerate(cells)}
    keep = np.ones(len(cells))
    for h, f in shares:
        for cell, share in f.items():
            keep[index[cell]] *= 1.0 - LEVEL_WEIGHT[h["warning_level"]] * share
    intensity = 1.0 - keep
    occupants = np.zeros(len(cells))
    for t in targets:
        cell = h3.latlng_to_cell(t["lat"], t["lon"], RES)
        if cell in index:
            occupants[index[cell]] += t["occupants"]
    population = np.array([pop[cell] for cell in cells])
    exposure = population + w_occupants * occupants
    risk = intensity * exposure * w_vulnerability
    county_of = []
    for cell in cells:
        lat, lng = h3.cell_to_latlng(cell)
        centre = Point(lng, lat)
        county_of.append(next((r["adcode"] for r in counties if r["geometry"].covers(centre)), None))
    parent = {r["adcode"]: r["parent_adcode"] for r in counties}
    by_county: dict[str | None, float] = {}
    by_pref: dict[str | None, float] = {}
    for code, r in zip(county_of, risk, strict=True):
        by_county[code] = by_county.get(code, 0.0) + float(r)
        by_pref[parent.get(code)] = by_pref.get(parent.get(code), 0.0) + float(r)
    return {"hazards": sorted(h["id"] for h in hazards), "risk": float(risk.sum()),
            "exposure": float(exposure.sum()), "population": float(population.sum()),
            "occupants": float(occupants.sum()), "hazard_exposure": float((intensity * exposure).sum()),
            "county": by_county, "prefecture": by_pref}


def _risk(client: Any, level: str, **params: Any) -> dict[str, Any]:
    q = "&".join(f"{k}={v}" for k, v in {"level": level, **params}.items())
    return _ok(client.get(f"{API}/risk?{q}"))


def _assert_risk(out: dict[str, Any], oracle: dict[str, Any], level: str) -> None:
    assert sorted(h["id"] for h in out["hazards"]) == oracle["hazards"]
    for k in ("risk", "hazard_exposure", "population", "exposure", "occupants"):
        assert out["totals"][k] == pytest.approx(oracle[k], rel=1e-5, abs=0.02), k
    want = {code: v for code, v in oracle[level].items() if v > 0 or code is not None}
    got = {r["adcode"]: r["risk"] for r in out["regions"]}
    assert sorted(got, key=str) == sorted(want, key=str)
    for code, v in want.items():
        assert got[code] == pytest.approx(v, rel=1e-5, abs=0.02), code


@pytest.mark.parametrize("level", ["county", "prefecture"])
def test_risk_now_equals_the_documented_formula_over_the_store(client: Any, world: World, level: str) -> None:
    oracle = _risk_oracle(world, at=datetime.now(UTC))
    assert world.ids["h_red"] in oracle["hazards"] and world.ids["h_orange_deleted"] not in oracle["hazards"]
    assert oracle["occupants"] >= 800 + 300 + 120 + 70 + 90  # the occupants path is exercised, deleted school not
    _assert_risk(_risk(client, level), oracle, level)


@pytest.mark.parametrize("days", [-2, 2])
def test_risk_at_another_time(client: Any, world: World, days: int) -> None:
    at = T0 + timedelta(days=days)
    oracle = _risk_oracle(world, at=at)
    in_force = {world.ids["h_blue_past"] if days < 0 else world.ids["h_orange_future"]}
    assert in_force <= set(oracle["hazards"])
    _assert_risk(_risk(client, "county", at=at.isoformat().replace("+00:00", "Z")), oracle, "county")


def test_risk_weights_of_occupants_and_vulnerability(client: Any, world: World) -> None:
    oracle = _risk_oracle(world, at=datetime.now(UTC), w_occupants=3.0, w_vulnerability=0.5)
    _assert_risk(_risk(client, "county", w_occupants=3, w_vulnerability=0.5), oracle, "county")
