"""OGC API - Features and Tiles under /ogc, against the demo database: documents, paging, filters, CRSs, access.

Oracles: raw SQL over the store for counts and bbox + datetime answers, pyproj for CGCS2000 and Web Mercator, an
independent MVT decoder (mapbox-vector-tile) for tiles, openapi-spec-validator for the API definition.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import mapbox_vector_tile
import pyproj
import pytest
from openapi_spec_validator import validate
from sqlalchemy import text

from dashboards.app import create_app
from dashboards.ogc import CONFORMANCE
from layers.render import mvt
from layers.render.tiles import tile_for_lonlat
from layers.store.registry import LAYERS
from layers.store.settings import Settings
from tests.conftest import api_token
from tests.dashboards.conftest import DEMO_NOW, DemoDB

pytestmark = pytest.mark.db

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@pytest.fixture(scope="module")
def app(demo_db: DemoDB) -> Any:
    return create_app(Settings(database_url=demo_db.url, mode="production", secret_key="x" * 40)).server


@pytest.fixture(scope="module")
def client(app: Any, demo_db: DemoDB) -> Iterator[Any]:
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_token(demo_db.engine, access='read')}"
    c.environ_base["HTTP_ACCEPT"] = "application/json"
    yield c


def live_count(demo_db: DemoDB, layer: str, where: str = "true", **params: Any) -> list[int]:
    with demo_db.engine.connect() as c:
        return [int(r[0]) for r in c.execute(text(
            f"SELECT id FROM {layer} WHERE deleted_at IS NULL AND ({where}) ORDER BY id"), params)]


def test_landing_conformance_and_api_are_public_and_data_is_not(app: Any) -> None:
    anon = app.test_client()
    for path in ("/ogc", "/ogc/conformance", "/ogc/api", "/ogc/tileMatrixSets/WebMercatorQuad"):
        r = anon.get(path, headers={"Accept": "application/json"})
        assert r.status_code == 200, path
    assert set(anon.get("/ogc/conformance?f=json").get_json()["conformsTo"]) == set(CONFORMANCE)
    for path in ("/ogc/collections", "/ogc/collections/incidents/items",
                 "/ogc/collections/incidents/tiles/WebMercatorQuad/8/96/206"):
        r = anon.get(path, headers={"Accept": "application/json"})
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized", path
    r = anon.get("/ogc/collections", headers={"Accept": "text/html"})  # a person in a browser: the login page
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_the_api_definition_is_valid_openapi_30(client: Any) -> None:
    doc = client.get("/ogc/api?f=json").get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.0") and "/ogc/collections/{collectionId}/items" in doc["paths"]


def test_every_layer_and_the_population_are_collections_with_the_store_s_counts(client: Any, demo_db: DemoDB) -> None:
    body = client.get("/ogc/collections").get_json()
    got = {c["id"]: c for c in body["collections"]}
    assert set(LAYERS) <= set(got) and {"population_h3_r7", "population_h3_r8"} <= set(got)
    for name in LAYERS:
        assert got[name]["numberMatched"] == len(live_count(demo_db, name)), name
        assert set(got[name]["crs"]) == {CRS84, f"{EPSG}4326", f"{EPSG}4490", f"{EPSG}3857"}
    with demo_db.engine.connect() as c:
        for res in (7, 8):
            n = c.execute(text("SELECT count(*) FROM population_cells WHERE res = :r"), {"r": res}).scalar_one()
            assert got[f"population_h3_r{res}"]["numberMatched"] == n


def test_paging_with_next_links_returns_every_live_feature_once(client: Any, demo_db: DemoDB) -> None:
    seen: list[int] = []
    url = "/ogc/collections/incidents/items?limit=50"
    while url:
        body = client.get(url.replace("http://localhost", "")).get_json()
        seen += [f["id"] for f in body["features"]]
        url = next((li["href"] for li in body["links"] if li["rel"] == "next"), "")
    assert seen == live_count(demo_db, "incidents")


def test_soft_deleted_features_are_never_served(client: Any, demo_db: DemoDB) -> None:
    with demo_db.engine.begin() as c:
        fid = c.execute(text("SELECT max(id) FROM shelters WHERE deleted_at IS NULL")).scalar_one()
        c.execute(text("UPDATE shelters SET deleted_at = now() WHERE id = :i"), {"i": fid})
    try:
        ids = [f["id"] for f in client.get("/ogc/collections/shelters/items?limit=10000").get_json()["features"]]
        assert fid not in ids and ids == live_count(demo_db, "shelters")
        assert client.get(f"/ogc/collections/shelters/items/{fid}").status_code == 404
    finally:
        with demo_db.engine.begin() as c:
            c.execute(text("UPDATE shelters SET deleted_at = NULL WHERE id = :i"), {"i": fid})


def test_bbox_and_datetime_return_exactly_what_postgis_returns(client: Any, demo_db: DemoDB) -> None:
    t0, t1 = DEMO_NOW - timedelta(hours=12), DEMO_NOW
    bbox = (106.0, 39.0, 113.0, 42.5)
    expected = live_count(demo_db, "incidents", "ST_Intersects(geom, ST_MakeEnvelope(:w, :s, :e, :n, 4326)) AND "
                          "occurred_at BETWEEN :t0 AND :t1", w=bbox[0], s=bbox[1], e=bbox[2], n=bbox[3], t0=t0, t1=t1)
    assert 0 < len(expected) < len(live_count(demo_db, "incidents"))
    q = f"bbox={','.join(map(str, bbox))}&datetime={t0.isoformat()}/{t1.isoformat()}&limit=10000"
    body = client.get(f"/ogc/collections/incidents/items?{q.replace('+', '%2B')}").get_json()
    assert [f["id"] for f in body["features"]] == expected and body["numberMatched"] == len(expected)
    # the same box in EPSG:4326's own axis order (latitude first)
    lat_first = f"{bbox[1]},{bbox[0]},{bbox[3]},{bbox[2]}"
    q2 = f"bbox={lat_first}&bbox-crs={EPSG}4326&datetime={t0.isoformat()}/{t1.isoformat()}&limit=10000"
    assert [f["id"] for f in client.get(f"/ogc/collections/incidents/items?{q2.replace('+', '%2B')}")
            .get_json()["features"]] == expected


def test_datetime_on_hazards_means_valid_at_that_time(client: Any, demo_db: DemoDB) -> None:
    at = DEMO_NOW.isoformat().replace("+", "%2B")
    expected = live_count(demo_db, "hazards", "(onset IS NULL OR onset <= :t) AND (expires IS NULL OR expires >= :t)",
                          t=DEMO_NOW)
    assert expected
    assert [f["id"] for f in client.get(f"/ogc/collections/hazards/items?datetime={at}&limit=10000")
            .get_json()["features"]] == expected


def test_as_of_reads_the_store_as_it_was(client: Any, demo_db: DemoDB) -> None:
    with demo_db.engine.connect() as c:
        before = c.execute(text("SELECT clock_timestamp()")).scalar_one()
    with demo_db.engine.begin() as c:
        c.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
        fid = c.execute(text("INSERT INTO incidents (source, name, kind, status, severity, geom) VALUES "
                             "('pytest-ogc', 'later', 'fire', 'reported', 'major', "
                             "'SRID=4326;POINT(111.7 40.8)') RETURNING id")).scalar_one()
    try:
        q = f"as-of={before.isoformat().replace('+', '%2B')}&limit=10000"
        past = [f["id"] for f in client.get(f"/ogc/collections/incidents/items?{q}").get_json()["features"]]
        now = [f["id"] for f in client.get("/ogc/collections/incidents/items?limit=10000").get_json()["features"]]
        assert fid in now and fid not in past and set(past) == set(now) - {fid}
    finally:
        with demo_db.engine.begin() as c:
            c.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": fid})


def test_cgcs2000_and_web_mercator_agree_with_pyproj(client: Any) -> None:
    wgs = client.get("/ogc/collections/shelters/items?limit=200").get_json()["features"]
    r = client.get(f"/ogc/collections/shelters/items?limit=200&crs={EPSG}4490")
    assert r.headers["Content-Crs"] == f"<{EPSG}4490>"
    cgcs = r.get_json()["features"]
    web = client.get(f"/ogc/collections/shelters/items?limit=200&crs={EPSG}3857").get_json()["features"]
    to_cgcs = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4490", always_xy=True)
    to_web = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    geod = pyproj.Geod(ellps="WGS84")
    assert len(wgs) == len(cgcs) == len(web) > 10
    for a, b, m in zip(wgs, cgcs, web, strict=True):
        lon, lat = a["geometry"]["coordinates"]
        lat_c, lon_c = b["geometry"]["coordinates"]  # EPSG:4490: latitude first
        x, y = to_cgcs.transform(lon, lat)
        assert abs(x - lon_c) < 1e-7 and abs(y - lat_c) < 1e-7
        assert geod.inv(lon, lat, lon_c, lat_c)[2] < 1.0  # CGCS2000 vs WGS 84: under a metre
        mx, my = to_web.transform(lon, lat)
        # the CRS84 output is rounded to 1e-7 degree (about 1 cm, 1.5 cm in Mercator y at 45 N)
        assert abs(m["geometry"]["coordinates"][0] - mx) < 0.05 and abs(m["geometry"]["coordinates"][1] - my) < 0.05


def test_vocabulary_filters_and_cql2(client: Any, demo_db: DemoDB) -> None:
    fires = live_count(demo_db, "incidents", "kind IN ('fire', 'flood')")
    got = client.get("/ogc/collections/incidents/items?kind=fire,flood&limit=10000").get_json()["features"]
    assert [f["id"] for f in got] == fires
    expected = live_count(demo_db, "incidents", "severity = 'major' AND casualties > 2 AND "
                          "ST_Intersects(geom, ST_MakeEnvelope(100, 35, 120, 50, 4326))")
    cql = ("severity = 'major' AND casualties > 2 AND "
           "S_INTERSECTS(geom, POLYGON((100 35, 120 35, 120 50, 100 50, 100 35)))")
    got = client.get("/ogc/collections/incidents/items", query_string={"filter": cql, "limit": 10000}).get_json()
    assert [f["id"] for f in got["features"]] == expected
    q = client.get("/ogc/collections/incidents/queryables").get_json()
    assert q["properties"]["kind"]["enum"][0] == "fire" and "geom" in q["properties"]


@pytest.mark.parametrize(("query", "field"), [
    ("bbox=200,0,1,1", "bbox"), ("datetime=yesterday", "datetime"), ("kind=volcano", "kind"),
    ("limit=0", "limit"), ("crs=EPSG:9999", "crs"), ("colour=red", "colour"), ("filter=kind ==", "filter"),
    ("bbox-crs=EPSG:4326", "bbox-crs"), ("filter-lang=cql2-json&filter=x", "filter-lang"),
])
def test_bad_parameters_are_a_400_naming_the_parameter(client: Any, query: str, field: str) -> None:
    r = client.get(f"/ogc/collections/incidents/items?{query}")
    assert r.status_code == 400, r.data
    err = r.get_json()["error"]
    assert err["field"] == field and err["allowed"]


def test_a_read_token_s_layer_scope_applies_per_collection(app: Any, demo_db: DemoDB) -> None:
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_token(demo_db.engine, layers=('incidents',), access='read')}"
    c.environ_base["HTTP_ACCEPT"] = "application/json"
    assert c.get("/ogc/collections/incidents/items?limit=1").status_code == 200
    assert c.get("/ogc/collections/shelters/items?limit=1").status_code == 403
    assert c.get("/ogc/collections/shelters/tiles/WebMercatorQuad/8/96/206").status_code == 403
    assert [x["id"] for x in c.get("/ogc/collections").get_json()["collections"]] == ["incidents"]


def test_population_cells_are_features_with_their_outline(client: Any, demo_db: DemoDB) -> None:
    body = client.get("/ogc/collections/population_h3_r7/items?limit=5").get_json()
    assert body["numberReturned"] == 5
    f = body["features"][0]
    assert f["geometry"]["type"] == "Polygon" and len(f["geometry"]["coordinates"][0]) == 7
    with demo_db.engine.connect() as c:
        pop = c.execute(text("SELECT population FROM population_cells WHERE res = 7 AND h3 = :h"),
                        {"h": int(f["id"], 16)}).scalar_one()
    assert f["properties"]["population"] == pytest.approx(pop)
    lon, lat = f["geometry"]["coordinates"][0][0]
    box = f"{lon - 0.2},{lat - 0.2},{lon + 0.2},{lat + 0.2}"
    inside = client.get(f"/ogc/collections/population_h3_r7/items?bbox={box}&limit=10000").get_json()
    assert f["id"] in [x["id"] for x in inside["features"]]
    assert client.get(f"/ogc/collections/population_h3_r7/items/{f['id']}").get_json()["properties"]["h3"] == f["id"]


def test_tiles_are_the_pages_tiles_and_decode_with_the_right_features(client: Any, demo_db: DemoDB) -> None:
    with demo_db.engine.connect() as c:
        fid, lon, lat, name, kind = c.execute(text(
            "SELECT id, ST_X(geom), ST_Y(geom), name, kind FROM incidents WHERE deleted_at IS NULL ORDER BY id LIMIT 1"
        )).one()
    z = 8
    x, y = tile_for_lonlat(lon, lat, z)
    r = client.get(f"/ogc/collections/incidents/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    assert r.data == client.get(f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt").data
    with demo_db.engine.connect() as c:
        assert r.data == mvt.tile(c, "incidents", z, x, y).data
    feats = {f["id"]: f["properties"] for f in mapbox_vector_tile.decode(r.data)["incidents"]["features"]}
    assert feats[fid]["name"] == name and feats[fid]["kind"] == kind
    tj = client.get("/ogc/collections/incidents/tiles/WebMercatorQuad/tilejson.json").get_json()
    assert tj["tiles"][0].endswith("/ogc/collections/incidents/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert tj["vector_layers"][0]["id"] == "incidents"
    ts = client.get("/ogc/collections/incidents/tiles/WebMercatorQuad").get_json()
    assert any(li["rel"] == "item" and li["href"].endswith("{tileMatrix}/{tileRow}/{tileCol}") for li in ts["links"])
    assert client.get(f"/ogc/collections/incidents/tiles/WebMercatorQuad/{z}/{2 ** z}/0").status_code == 404


def test_html_pages_in_both_languages(client: Any) -> None:
    for lang, word in (("zh-CN", "数据集列表"), ("en", "Collections")):
        r = client.get(f"/ogc/collections?f=html&lang={lang}")
        assert r.status_code == 200 and r.mimetype == "text/html" and word in r.get_data(as_text=True)
    r = client.get("/ogc/collections/incidents/items?f=html&limit=3&lang=en")
    assert r.status_code == 200 and "Next page" in r.get_data(as_text=True)
