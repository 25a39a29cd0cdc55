"""Columnar answers (``dashboards.api.columnar``): Arrow IPC and Parquet, chosen by ``Accept``, hold exactly what the
JSON answer holds.

Oracle: the JSON answer of the same request (itself checked against brute force and a max-flow in
``test_api_analysis``), read back column for column; the tables are read by pyarrow's own IPC and Parquet readers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
from shapely.geometry import Point, mapping

from dashboards.api.columnar import ARROW, PARQUET
from dashboards.app import create_app
from layers.store.settings import Settings
from tests.conftest import api_token, authorize

pytestmark = pytest.mark.db

API = "/api/v1/analysis"


@pytest.fixture(scope="module")
def client(demo_db: Any) -> Iterator[Any]:
    app = create_app(Settings(database_url=demo_db.url))
    with app.server.test_client() as c:
        yield authorize(c, api_token(demo_db.engine, access="read"))


def _table(resp: Any) -> pa.Table:
    if resp.mimetype == ARROW:
        return pa.ipc.open_stream(resp.data).read_all()
    assert resp.mimetype == PARQUET
    return pq.read_table(io.BytesIO(resp.data))


@pytest.mark.parametrize("media", [ARROW, PARQUET])
@pytest.mark.parametrize("details", [False, True])
def test_nearest_batch_table_equals_the_json_answer(client: Any, media: str, details: bool) -> None:
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(108, 120, 400), rng.uniform(39, 46, 400)]).round(5).tolist()
    body = {"points": pts, "k": 3, "details": details, "kind": ["boat", "helicopter"]}
    want = client.post(f"{API}/nearest", json=body).get_json()
    r = client.post(f"{API}/nearest", json=body, headers={"Accept": f"{media}, application/json;q=0.5"})
    assert r.status_code == 200 and r.mimetype == media and "Accept" in r.headers["Vary"]
    t = _table(r)
    assert t.num_rows == 400 * 3
    assert t.column("point").to_pylist() == [i for i in range(400) for _ in range(3)]
    assert t.column("rank").to_pylist() == [1, 2, 3] * 400
    ids = np.asarray(want["resource_id"]).ravel()
    got = t.column("resource_id").to_pylist()
    assert got == [None if i < 0 else int(i) for i in ids], "null where fewer than k exist"
    assert t.column("distance_m").to_pylist() == [None if i < 0 else d for i, d in
                                                   zip(ids, np.asarray(want["distance_m"]).ravel().tolist(),
                                                       strict=True)]
    meta = json.loads(t.schema.metadata[b"sitroom"])
    assert (meta["n_points"], meta["k"], meta["candidates"]) == (400, 3, want["candidates"])
    if details:
        by_id = {r["id"]: r for r in want["resources"]}
        names = [None if i is None else by_id[i]["name"] for i in got]
        assert t.column("name").to_pylist() == names
        assert t.column("lon").to_pylist() == [None if i is None else by_id[i]["lon"] for i in got]
    else:
        assert "name" not in t.column_names


def test_json_stays_the_default(client: Any) -> None:
    body = {"points": [[111.7, 40.8]], "k": 1}
    for accept in (None, "*/*", "application/json", f"application/json, {ARROW};q=0.5"):
        r = client.post(f"{API}/nearest", json=body, headers={"Accept": accept} if accept else {})
        assert r.status_code == 200 and r.mimetype == "application/json", accept


@pytest.mark.parametrize("media", [ARROW, PARQUET])
def test_coverage_cells_table_equals_the_json_cells(client: Any, media: str) -> None:
    body = {"scope": mapping(Point(111.70, 40.82).buffer(0.12)), "max_distance_m": 3000}
    want = client.post(f"{API}/shelter-coverage", json=body).get_json()
    r = client.post(f"{API}/shelter-coverage", json=body, headers={"Accept": media})
    assert r.status_code == 200 and r.mimetype == media
    t = _table(r)
    assert t.column_names == ["h3", "population", "covered", "uncovered"]
    for name in t.column_names:
        assert t.column(name).to_pylist() == want["cells"][name]
    meta = json.loads(t.schema.metadata[b"sitroom"])
    assert meta["totals"] == want["totals"] and len(meta["shelters"]) == len(want["shelters"])
