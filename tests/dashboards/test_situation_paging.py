"""``GET /api/v1/situation`` in pages: at most ``limit`` features per layer and a cursor per layer.

Before: the route built every feature of every layer; with a million incidents in the store it did not answer
within the 30 s database limit (408), and a worker held the whole picture as Python dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from dashboards.app import create_app
from layers.store.settings import Settings
from tests.conftest import api_token, authorize

pytestmark = pytest.mark.db

URL = "/api/v1/situation"
SOURCE = "pytest-situation-paging"


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine) -> Iterator[Any]:
    with engine.begin() as c:
        c.execute(text("INSERT INTO incidents (source, external_id, name, kind, status, geom) "
                       "SELECT :s, 'e' || g, '事件 ' || g, 'fire', 'reported', "
                       "ST_SetSRID(ST_MakePoint(111.6 + g / 100.0, 40.8), 4326) FROM generate_series(1, 5) g"),
                  {"s": SOURCE})
        c.execute(text("UPDATE incidents SET deleted_at = now() WHERE source = :s AND external_id = 'e2'"),
                  {"s": SOURCE})
    app = create_app(Settings(database_url=db_url))
    yield authorize(app.server.test_client(), api_token(engine, layers=("*",), access="read"))
    with engine.begin() as c:
        c.execute(text("DELETE FROM incidents WHERE source = :s"), {"s": SOURCE})


def test_pages_of_one_layer_follow_the_cursor_to_the_end(client: Any) -> None:
    seen, after, pages = [], None, 0
    while True:
        r = client.get(URL, query_string={"layers": "incidents", "limit": 2, **({"after": after} if after else {})})
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        fc = r.get_json()["layers"]["incidents"]
        assert len(fc["features"]) == fc["numberReturned"] <= 2
        seen += [f["properties"]["external_id"] for f in fc["features"] if f["properties"]["source"] == SOURCE]
        pages += 1
        after = fc["next_cursor"]
        if after is None:
            break
    assert seen == ["e1", "e3", "e4", "e5"]
    assert pages >= 2
    whole = client.get(URL, query_string={"layers": "incidents,shelters"}).get_json()["layers"]
    assert whole["incidents"]["next_cursor"] is None and whole["shelters"]["next_cursor"] is None


@pytest.mark.parametrize(("args", "field"), [
    ({"layers": "incidents,shelters", "after": 3}, "after"),
    ({"after": 3}, "after"),
    ({"layers": "incidents", "limit": 0}, "limit"),
    ({"layers": "incidents", "limit": 10_001}, "limit"),
])
def test_a_bad_page_is_a_400_naming_the_parameter(client: Any, args: dict[str, Any], field: str) -> None:
    r = client.get(URL, query_string=args)
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert r.get_json()["error"]["field"] == field
