"""One point -> region rule on every screen: the impact card, the situation report's county split, the regional risk
and the leader's incidents per prefecture agree for the same input (issue 10).

The input is seeded on the demo (``demo_db``), in one transaction that is rolled back: a zone made of whole res-8 H3
cells (469 of them, about 350 km2) around a point of the border between Hohhot (150100) and Baotou (150200), so
every cell lies wholly inside it and area weighting changes nothing; a hazard on that zone (a kind the drill does
not use, so nothing else counts); and one incident at the centre of each populated cell. Then

- the card's county and prefecture figures add up to its total, and hold counties of both prefectures;
- the sitrep's split of the same cells (:func:`layers.read.sitrep.population_by_county`) gives the card's counties;
- the risk roll-up's population per county and per prefecture is the card's;
- the leader's trend counts, per prefecture, as many new incidents as the card counts populated cells.

Oracle for the split itself: PostGIS ``ST_Intersects`` of each cell centre with the counties (ties to the smaller
adcode). A second test takes a zone whose edge cells have their centres outside it, in counties sharing no area with
it: the card names only the counties that share area with the zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import numpy as np
import pytest
import shapely
from sqlalchemy import Connection, text

from dashboards.services.impact import impact_card
from dashboards.services.risk import regional_risk
from dashboards.services.trend import incident_trend
from geoops import h3cells
from layers.read import analysis as store
from layers.read.sitrep import population_by_county

pytestmark = pytest.mark.db

HAZARD_KIND = "landslide"  # not in the demo drill
RING = 12


@pytest.fixture
def seeded(demo_db: Any) -> Iterator[dict[str, Any]]:
    """The zone, its cells with their people, and a connection whose hazard and incidents are rolled back."""
    conn: Connection = demo_db.engine.connect()
    tx = conn.begin()
    try:
        conn.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
        x, y = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_ClosestPoint(a.geom, b.geom) AS p FROM admin_regions a, "
            "admin_regions b WHERE a.adcode = '150100' AND b.adcode = '150200') q")).one()
        disk = np.array(sorted(h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(y, x, 8), RING)),
                        dtype=np.int64)
        zone = shapely.union_all(h3cells.cell_boundaries(disk))
        src = store.population_source(conn, res=8)
        pop = store.population_of_cells(conn, disk, res=8, source=src["source"])
        now = datetime.now(UTC)
        conn.execute(text(
            "INSERT INTO hazards (source, external_id, name, kind, status, warning_level, onset, expires, geom) "
            "VALUES ('pytest', 'agree', 'border zone', :k, 'active', 'red', :on, :off, "
            "ST_Multi(ST_GeomFromText(:wkt, 4326)))"),
            {"k": HAZARD_KIND, "on": now - timedelta(hours=1), "off": now + timedelta(days=1), "wkt": zone.wkt})
        yield {"conn": conn, "zone": zone, "cells": disk, "pop": pop, "now": now}
    finally:
        tx.rollback()
        conn.close()


def _oracle_counties(conn: Connection, cells: np.ndarray) -> list[str]:
    """County of each cell centre by PostGIS ST_Intersects, the smallest adcode on a shared border."""
    lon, lat = h3cells.cell_centres(cells)
    rows = conn.execute(text(
        "SELECT p.i, min(r.adcode) FROM unnest(:x, :y) WITH ORDINALITY AS p(x, y, i) JOIN admin_regions r "
        "ON r.level = 'county' AND r.deleted_at IS NULL AND ST_Intersects(r.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), "
        "4326)) GROUP BY p.i ORDER BY p.i"), {"x": lon.tolist(), "y": lat.tolist()}).all()
    assert [int(i) for i, _ in rows] == list(range(1, cells.size + 1)), "every centre lies in a county"
    return [str(a) for _, a in rows]


def test_card_sitrep_risk_and_trend_agree_across_a_prefecture_border(seeded: dict[str, Any]) -> None:
    conn, cells, pop = seeded["conn"], seeded["cells"], seeded["pop"]
    card = impact_card(conn, seeded["zone"], res=8)
    total = float(pop.sum())
    assert card["cells"] == cells.size and card["population"] == pytest.approx(total, abs=0.1)

    # the border case: counties of both prefectures, the parts adding up to the total at both levels
    counties = {r["adcode"]: r for r in card["by_region"]["county"]}
    prefectures = {r["adcode"]: r for r in card["by_region"]["prefecture"]}
    assert {"150100", "150200"} <= set(prefectures)
    assert {c["parent_adcode"] for c in counties.values()} >= {"150100", "150200"}
    for level in (counties, prefectures):
        assert sum(r["population"] for r in level.values()) == pytest.approx(card["population"], abs=0.5)
        assert sum(r["cells"] for r in level.values()) == card["cells_populated"]

    # the split against PostGIS, cell by cell
    populated = pop > 0
    oracle = np.asarray(_oracle_counties(conn, cells[populated]), dtype=object)
    expect = {a: float(pop[populated][oracle == a].sum()) for a in sorted(set(oracle))}
    assert {a: r["population"] for a, r in counties.items()} == pytest.approx(expect, abs=0.1)

    # the situation report splits the same cells the same way
    sitrep = population_by_county(conn, {"cells": cells, "population": pop})
    assert {r["adcode"]: r["population"] for r in sitrep if r["population"] > 0} == pytest.approx(expect, abs=1e-6)

    # the risk roll-up of a hazard on the zone: the same people per county and per prefecture
    for level, want in (("county", counties), ("prefecture", prefectures)):
        got = regional_risk(conn, level=level, hazard_kind=[HAZARD_KIND], res=8)
        assert [h["name"] for h in got["hazards"]] == ["border zone"]
        people = {r["adcode"]: r["components"]["population"] for r in got["regions"]
                  if r["components"]["population"] > 0}
        assert people == pytest.approx({a: r["population"] for a, r in want.items()}, abs=0.1)

    # the leader's trend: one incident at each populated cell's centre counts in the card's prefecture
    before = incident_trend(conn, days=7, now=seeded["now"])
    lon, lat = h3cells.cell_centres(cells[populated])
    conn.execute(text(
        "INSERT INTO incidents (source, external_id, name, kind, status, occurred_at, geom) "
        "SELECT 'pytest', 'agree-' || i, 'seeded', 'other', 'reported', :t, ST_SetSRID(ST_MakePoint(x, y), 4326) "
        "FROM unnest(:x, :y) WITH ORDINALITY AS p(x, y, i)"),
        {"t": seeded["now"], "x": lon.tolist(), "y": lat.tolist()})
    after = incident_trend(conn, days=7, now=seeded["now"])
    added = {a: after["counts"].get(a, [0] * 7)[-1] - before["counts"].get(a, [0] * 7)[-1]
             for a in set(after["counts"]) | set(before["counts"])}
    assert {a: n for a, n in added.items() if n} == {a: r["cells"] for a, r in prefectures.items()}
    assert after["outside"] == before["outside"]


def test_card_names_only_counties_sharing_area_with_the_zone(demo_db: Any) -> None:
    """A zone that is one county (Kundulun, 150203, as the planner's county scope): the cells along its border have
    their centres in the neighbouring counties, which share no area with it. Those cells count in the nearest part
    of the zone, so the card names only counties sharing area with the zone (PostGIS ``ST_Area(ST_Intersection)``),
    here the one county, and the counties add up to the total."""
    with demo_db.engine.connect() as conn:
        zone = store.region_geometry(conn, "150203")["geometry"]
        card = impact_card(conn, zone, res=8)
        sharing = set(conn.execute(text(
            "SELECT adcode FROM admin_regions WHERE level = 'county' AND deleted_at IS NULL AND "
            "ST_Area(ST_Intersection(geom, ST_GeomFromText(:wkt, 4326))) > 0"), {"wkt": zone.wkt}).scalars())
        lon, lat = h3cells.cell_centres(h3cells.zone_weights(zone, res=8)[0])
        outside = conn.execute(text(
            "SELECT count(*) FROM unnest(:x, :y) AS p(x, y) WHERE NOT ST_Intersects(ST_GeomFromText(:wkt, 4326), "
            "ST_SetSRID(ST_MakePoint(x, y), 4326))"), {"x": lon.tolist(), "y": lat.tolist(), "wkt": zone.wkt}
        ).scalar_one()
    assert sharing == {"150203"} and outside > 0, "cells of the zone with their centres outside it"
    assert [r["adcode"] for r in card["by_region"]["county"]] == ["150203"]
    assert [r["adcode"] for r in card["by_region"]["prefecture"]] == ["150200"]
    assert card["by_region"]["county"][0]["population"] == pytest.approx(card["population"], abs=0.1)
