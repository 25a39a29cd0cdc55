"""Issue 17 items 4, 8, 13 and 14: bad input gets a 4xx naming it and changes nothing; tiles are bounded.

Before: ``PATCH {"occupancy": NaN}`` set 303 to 0, ``null`` too, ``quantity: NaN`` became 1 (4); 300 anonymous z18
basemap requests rendered and cached 300 files (8); a missing ``/assets/x.css``, ``/tiles/base/99/0/0.png``, an
unknown basemap, lone surrogates and malformed Dash bodies answered 500 (13); points as strings or nested, names of
100,000 characters and 1,000 impact zones in one POST were accepted (14).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from dashboards.app import create_app
from layers.store.models import ImpactZone, Incident, Resource, Shelter
from layers.store.settings import Settings
from tests.conftest import authorize

pytestmark = pytest.mark.db

SRC = f"pytest-input-{os.getpid()}"
API = "/api/v1"


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, admin_token: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tiles = tmp_path_factory.mktemp("tiles")
    app = create_app(Settings(database_url=db_url, mode="demo", tile_cache_dir=tiles))
    c = authorize(app.server.test_client(), admin_token)
    c.tile_dir = tiles
    yield c
    with engine.begin() as conn:
        for model in (Shelter, Resource, Incident):
            conn.execute(delete(model).where(model.source == SRC))
        conn.execute(delete(ImpactZone).where(ImpactZone.name.like("pytest-input%")))


def _post(client: Any, layer: str, text: str) -> Any:
    return client.post(f"{API}/layers/{layer}?source={SRC}", data=text, content_type="application/json")


def _point(fid: str, coords: str, props: str) -> str:
    return (f'{{"type": "Feature", "id": "{fid}", "geometry": {{"type": "Point", "coordinates": {coords}}}, '
            f'"properties": {props}}}')


@pytest.fixture
def shelter(client: Any, engine: Engine) -> int:
    r = _post(client, "shelters", _point("s-1", "[111.7, 40.8]", '{"kind": "fixed", "capacity": 500, '
                                                                 '"occupancy": 303}'))
    assert r.status_code == 200, r.get_data(as_text=True)
    return int(r.get_json()["ids"][0])


def _occupancy(engine: Engine, fid: int) -> int:
    with engine.connect() as c:
        return int(c.execute(select(Shelter.occupancy).where(Shelter.id == fid)).scalar_one())


@pytest.mark.parametrize("body", ['{"occupancy": NaN}', '{"occupancy": Infinity}', '{"occupancy": -Infinity}'])
def test_nan_and_infinity_are_invalid_json(client: Any, engine: Engine, shelter: int, body: str) -> None:
    r = client.patch(f"{API}/layers/shelters/{shelter}", data=body, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_json"
    assert "NaN" in r.get_json()["error"]["allowed"]
    assert _occupancy(engine, shelter) == 303


def test_null_for_a_required_number_is_422_naming_it(client: Any, engine: Engine, shelter: int) -> None:
    r = client.patch(f"{API}/layers/shelters/{shelter}", json={"occupancy": None})
    assert r.status_code == 422
    assert [p["field"] for p in r.get_json()["error"]["problems"]] == ["occupancy"]
    assert _occupancy(engine, shelter) == 303


@pytest.mark.parametrize(("layer", "props"), [("resources", '{"kind": "boat", "quantity": NaN}'),
                                              ("incidents", '{"kind": "fire", "casualties": NaN}')])
def test_nan_in_a_new_feature_is_refused(client: Any, engine: Engine, layer: str, props: str) -> None:
    r = _post(client, layer, _point(f"nan-{layer}", "[111.7, 40.8]", props))
    assert r.status_code == 400
    model = {"resources": Resource, "incidents": Incident}[layer]
    with engine.connect() as c:
        assert c.execute(select(model.id).where(model.external_id == f"nan-{layer}")).first() is None


@pytest.mark.parametrize(("coords", "field"), [('["111", "40"]', "geometry"), ("[[111, 40]]", "geometry")])
def test_points_as_strings_or_nested_are_refused(client: Any, coords: str, field: str) -> None:
    r = _post(client, "incidents", _point("odd-point", coords, '{"kind": "fire"}'))
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.get_json()["error"]["problems"][0]["field"].startswith(field)


def test_a_name_of_100000_characters_is_refused(client: Any) -> None:
    r = _post(client, "incidents", _point("long-name", "[111.7, 40.8]", json.dumps({"kind": "fire",
                                                                                   "name": "名" * 100_000})))
    assert r.status_code == 422
    problem = r.get_json()["error"]["problems"][0]
    assert problem["field"] == "name" and "2000" in problem["allowed"]


def test_a_thousand_impact_zones_in_one_post_are_refused(client: Any, engine: Engine) -> None:
    zone = {"type": "Feature", "properties": {"name": "pytest-input-zone"},
            "geometry": {"center": [111.7, 40.8], "radius_m": 500_000}}
    r = client.post(f"{API}/impact-zones", json={"type": "FeatureCollection", "features": [zone] * 1000})
    assert 400 <= r.status_code < 500, r.status_code
    with engine.connect() as c:
        assert c.execute(select(ImpactZone.id).where(ImpactZone.name == "pytest-input-zone")).first() is None


def test_lone_surrogates_are_400_not_500(client: Any) -> None:
    r = _post(client, "incidents", _point("surrogate", "[111.7, 40.8]", '{"kind": "fire", "name": "\\ud800"}'))
    assert r.status_code == 400


@pytest.mark.parametrize("path", ["/tiles/base/99/0/0.png", "/tiles/no-such-basemap/3/6/3.png", "/assets/x.css",
                                  "/assets/../../etc/passwd"])
def test_missing_things_are_404_not_500(client: Any, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("body", ['{"output": NaN}', "[1, 2", '{"output": "x.y", "outputs": "nonsense"}', "null"])
def test_malformed_dash_bodies_are_400(client: Any, body: str) -> None:
    anonymous = client.application.test_client()  # demo mode: anonymous callbacks are allowed to read
    r = anonymous.post("/_dash-update-component", data=body, content_type="application/json")
    assert r.status_code == 400


def _files(root: Path) -> int:
    return sum(len(f) for _, _, f in os.walk(root))


def test_tiles_beyond_the_built_range_are_not_rendered(client: Any) -> None:
    anonymous = client.application.test_client()
    before = _files(client.tile_dir)
    for i in range(20):  # z18 over Hohhot, and z10 over the Atlantic: neither is rendered nor cached
        assert anonymous.get(f"/tiles/base/18/{212000 + i}/{97000}.png").status_code == 404
        assert anonymous.get(f"/tiles/base/10/{300 + i}/380.png").status_code == 404
    assert _files(client.tile_dir) == before
    assert anonymous.get("/tiles/base/6/51/24.png").status_code == 200  # over Inner Mongolia: rendered
    assert _files(client.tile_dir) == before + 1


def test_a_full_tile_cache_is_not_written(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "filler.bin").write_bytes(b"\0" * 2 * 2**20)
    app = create_app(Settings(database_url=db_url, mode="demo", tile_cache_dir=tmp_path, tile_cache_max_mb=1))
    r = app.server.test_client().get("/tiles/base/6/51/24.png")
    assert r.status_code == 200 and r.data[:4] == b"\x89PNG"
    assert _files(tmp_path) == 1


@pytest.mark.parametrize(("path", "mb"), [("/_dash-update-component", 9), ("/api/v1/cap", 2),
                                          ("/api/v1/layers/incidents", 17)])
def test_bodies_over_their_route_limit_are_refused_unread(client: Any, path: str, mb: int) -> None:
    """Item 9: 100 MB bodies were parsed for anonymous Dash calls (the one limit was 200 MB)."""
    anonymous = client.application.test_client()
    body = b'{"pad": "' + b"x" * (mb * 2**20) + b'"}'
    r = anonymous.post(path, data=body, content_type="application/json")
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "request_entity_too_large"


def test_a_chunked_body_is_cut_at_the_route_limit(client: Any) -> None:
    """Without a Content-Length the body is read up to the route's limit only (werkzeug stops there): what was read
    is not a whole JSON document, so the answer is a 4xx, never a parse of 12 MB."""
    anonymous = client.application.test_client()
    body = io.BytesIO(b'{"pad": "' + b"x" * (12 * 2**20) + b'"}')
    r = anonymous.post("/_dash-update-component", input_stream=body, content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})  # as gunicorn says for chunked bodies
    assert r.status_code in (400, 413)
