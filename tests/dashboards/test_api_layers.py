"""``/api/v1/layers`` and ``/api/v1/layers/<layer>`` against a real PostGIS, and ``layers.read.queries`` behind them.

The app reads committed data through its own engine, so the fixture commits a small, hand-checkable set of features
under a source name unique to this run and purges it afterwards. Expected answers come from the fixture's own
coordinates (a point is in a bbox or not) and from plain SQL, never from the code under test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from shapely.geometry import box, shape
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from dashboards.app import create_app
from dashboards.i18n import t
from layers.read import queries
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import FEATURE_MODELS, Incident, Shelter
from layers.store.settings import Settings

pytestmark = pytest.mark.db

SOURCE = f"pytest-api-{os.getpid()}"
BBOX = (101.0, 38.0, 101.5, 38.5)  # west, south, east, north
# name, lon, lat, kind, status, capacity, occupancy, extra JSON properties
SHELTERS = [
    ("s-in-1", 101.10, 38.10, "fixed", "open", 500, 20, {"phone": "0471-1", "capacity": "json loses"}),
    ("s-in-2", 101.20, 38.20, "central", "open", 3000, 0, {}),
    ("s-in-3", 101.30, 38.40, "emergency", "full", 80, 80, {"note": "已满"}),
    ("s-in-4", 101.45, 38.05, "fixed", "closed", 200, 0, {}),
    ("s-edge", 101.50, 38.25, "fixed", "open", 10, 0, {}),  # on the east edge: intersects
    ("s-out-1", 101.60, 38.20, "fixed", "open", 100, 0, {}),
    ("s-out-2", 100.90, 38.60, "central", "open", 100, 0, {}),
    ("s-deleted", 101.25, 38.25, "fixed", "open", 100, 0, {}),  # soft-deleted below: never returned
]


@pytest.fixture(scope="module")
def data(engine: Engine) -> Iterator[dict[str, int]]:
    """Commit the shelters (and one incident) above; yield name -> id; purge them afterwards."""
    with Session(engine) as s, s.begin():
        rows = [Shelter(source=SOURCE, external_id=name, name=name, kind=kind, status=status, capacity=cap,
                        occupancy=occ, properties=props, geom=f"SRID=4326;POINT({lon} {lat})")
                for name, lon, lat, kind, status, cap, occ, props in SHELTERS]
        rows.append(Incident(source=SOURCE, external_id="i-1", name="i-1", kind="fire", status="reported",
                             severity="large", geom="SRID=4326;POINT(101.2 38.2)"))
        s.add_all(rows)
        s.flush()
        ids = {r.name: r.id for r in rows}
        s.execute(update(Shelter).where(Shelter.id == ids["s-deleted"]).values(deleted_at=func.now()))
    yield ids
    with Session(engine) as s, s.begin():
        for model in (Shelter, Incident):
            s.execute(delete(model).where(model.source == SOURCE))


@pytest.fixture(scope="module")
def client(db_url: str) -> Any:
    return create_app(Settings(database_url=db_url)).server.test_client()


def _mine(fc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["name"]: f for f in fc["features"] if f["properties"]["source"] == SOURCE}


def _expected_in_bbox(kinds: set[str] | None = None, statuses: set[str] | None = None) -> set[str]:
    w, s, e, n = BBOX
    return {name for name, lon, lat, kind, status, *_ in SHELTERS
            if name != "s-deleted" and w <= lon <= e and s <= lat <= n
            and (kinds is None or kind in kinds) and (statuses is None or status in statuses)}


BBOX_Q = ",".join(map(str, BBOX))


def test_layer_registry_counts_match_sql(client, data, engine) -> None:
    r = client.get("/api/v1/layers")
    assert r.status_code == 200
    layers = {item["name"]: item for item in r.get_json()["layers"]}
    assert list(layers) == list(FEATURE_MODELS)
    with engine.connect() as c:
        for name, model in FEATURE_MODELS.items():
            n = c.execute(select(func.count()).select_from(model).where(model.deleted_at.is_(None))).scalar_one()
            assert layers[name]["count"] == n
            assert layers[name]["labels"] == {"zh-CN": t(f"layer.{name}", "zh-CN"), "en": t(f"layer.{name}", "en")}
    assert layers["shelters"]["geometry_type"] == "POINT" and layers["hazards"]["geometry_type"] == "MULTIPOLYGON"
    assert layers["shelters"]["count"] >= len(SHELTERS) - 1


def test_bbox_returns_live_features_inside_with_real_columns_over_json(client, data) -> None:
    r = client.get(f"/api/v1/layers/shelters?bbox={BBOX_Q}")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    fc = r.get_json()
    assert fc["type"] == "FeatureCollection" and fc["numberReturned"] == len(fc["features"])
    mine = _mine(fc)
    assert set(mine) == _expected_in_bbox()
    # every feature returned (ours or anyone's) really intersects the bbox
    assert all(shape(f["geometry"]).intersects(box(*BBOX)) for f in fc["features"])
    f = mine["s-in-1"]
    assert f["id"] == data["s-in-1"]
    assert f["geometry"] == {"type": "Point", "coordinates": [101.1, 38.1]}
    p = f["properties"]
    assert (p["capacity"], p["occupancy"], p["kind"], p["status"], p["phone"]) == (500, 20, "fixed", "open", "0471-1")
    assert "geom" not in p and "deleted_at" not in p and "properties" not in p
    assert p["created_at"].startswith("20")  # ISO 8601 text
    assert mine["s-in-3"]["properties"]["note"] == "已满"


@pytest.mark.parametrize(("query", "kinds", "statuses"), [
    ("kind=fixed", {"fixed"}, None),
    ("kind=fixed,central", {"fixed", "central"}, None),
    ("status=open", None, {"open"}),
    ("kind=fixed&status=open,closed", {"fixed"}, {"open", "closed"}),
])
def test_kind_and_status_filters(client, data, query, kinds, statuses) -> None:
    fc = client.get(f"/api/v1/layers/shelters?bbox={BBOX_Q}&{query}").get_json()
    assert set(_mine(fc)) == _expected_in_bbox(kinds, statuses)
    assert all((kinds is None or f["properties"]["kind"] in kinds)
               and (statuses is None or f["properties"]["status"] in statuses) for f in fc["features"])


@pytest.mark.parametrize("mode", ["cursor", "offset"])
def test_paging_visits_every_feature_once_in_id_order(client, data, mode) -> None:
    whole = client.get(f"/api/v1/layers/shelters?bbox={BBOX_Q}&limit=10000").get_json()
    want = [f["id"] for f in whole["features"]]
    assert len(want) >= 5
    url: str | None = f"/api/v1/layers/shelters?bbox={BBOX_Q}&limit=2" + ("&offset=0" if mode == "offset" else "")
    got, pages = [], 0
    while url:
        page = client.get(url).get_json()
        assert page["numberReturned"] <= 2
        got += [f["id"] for f in page["features"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
        if url:
            assert ("after=" in url) == (mode == "cursor") and page["next_cursor"] == got[-1]
    assert got == want and pages == -(-len(want) // 2)


def test_soft_deleted_features_are_never_returned(client, data) -> None:
    ids = {f["id"] for f in client.get("/api/v1/layers/shelters?limit=10000").get_json()["features"]}
    assert data["s-deleted"] not in ids and data["s-in-1"] in ids


@pytest.mark.parametrize(("query", "field"), [
    ("bbox=101,38,101.5", "bbox"),
    ("bbox=101.5,38,101,38.5", "bbox"),  # west > east
    ("bbox=200,38,201,38.5", "bbox"),
    ("bbox=a,b,c,d", "bbox"),
    ("limit=0", "limit"),
    ("limit=10001", "limit"),
    ("offset=-3", "offset"),
    ("kind=volcano", "kind"),
    ("status=sleeping", "status"),
    ("colour=red", "colour"),
])
def test_bad_parameters_are_400_naming_the_field(client, query, field) -> None:
    r = client.get(f"/api/v1/layers/shelters?{query}&lang=en")
    assert r.status_code == 400, r.get_json()
    err = r.get_json()["error"]
    assert err["field"] == field and err["allowed"] and err["value"] is not None
    assert err["message"] in {t("error.invalid_parameter", "en"), t("error.unknown_parameter", "en")}


def test_unknown_kind_names_the_allowed_kinds(client) -> None:
    err = client.get("/api/v1/layers/shelters?kind=volcano").get_json()["error"]
    assert err["value"] == "volcano" and all(k in err["allowed"] for k in ("emergency", "fixed", "central"))


def test_unknown_layer_is_404_naming_the_layers(client) -> None:
    r = client.get("/api/v1/layers/volcanoes")
    assert r.status_code == 404
    err = r.get_json()["error"]
    assert (err["field"], err["value"]) == ("layer", "volcanoes")
    assert err["allowed"] == list(FEATURE_MODELS)


# --- layers.read.queries directly (inside a rolled-back session) ---------------------------------------------------------

def test_fetch_features_in_a_transaction_sees_uncommitted_rows(session: Session) -> None:
    session.add(Shelter(source=SOURCE + "-tx", external_id="tx", name="tx", kind="fixed", status="open",
                        capacity=1, geom="SRID=4326;POINT(75.5 39.5)"))
    session.flush()
    fc = queries.fetch_features(session.connection(), "shelters", bbox=(75.4, 39.4, 75.6, 39.6), limit=10)
    assert [f["properties"]["name"] for f in fc["features"]] == ["tx"] and fc["next_after_id"] is None


def test_fetch_features_rejects_bad_arguments(session: Session) -> None:
    conn = session.connection()
    with pytest.raises(NotFoundError, match="shelters"):
        queries.fetch_features(conn, "volcanoes", limit=1)
    for kwargs, field in [({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"), ({"limit": 5, "offset": -1},
                          "offset"), ({"limit": 5, "kind": "volcano"}, "kind"),
                          ({"limit": 5, "bbox": (1, 2, 3)}, "bbox"), ({"limit": 5, "bbox": (1, 2, float("nan"), 4)},
                                                                      "bbox")]:
        with pytest.raises(ValidationError) as e:
            queries.fetch_features(conn, "shelters", **kwargs)
        assert e.value.problems[0].field == field


def test_count_features_matches_sql(session: Session) -> None:
    conn = session.connection()
    counts = queries.count_features(conn, ["shelters", "incidents"])
    for name in counts:
        model = FEATURE_MODELS[name]
        assert counts[name] == conn.execute(
            select(func.count()).select_from(model).where(model.deleted_at.is_(None))).scalar_one()
    assert queries.count_features(conn, []) == {}
