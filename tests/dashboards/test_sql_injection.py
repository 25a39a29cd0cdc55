"""SQL injection attempts in every text field of the write API and of imports: stored verbatim as text, or rejected.

Each payload goes into name, external id (the feature's ``id``), source, kind, status, label, free properties and the
PATCH body; then (1) the tables are intact (every feature table and the history still answer, with the counts the
writes explain), (2) whatever was stored reads back byte for byte as sent, (3) a rejected request changed nothing.
Runs on a database of its own.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from layers.store.models import FEATURE_MODELS
from layers.store.settings import Settings
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

PAYLOADS = [
    "'; DROP TABLE incidents; --",
    "x' OR '1'='1",
    "1; DELETE FROM feature_history",
    "\"; TRUNCATE shelters CASCADE; --",
    "$$; DROP TABLE users; $$",
    "Robert'); DROP TABLE api_tokens;--",
    "' UNION SELECT password_hash FROM users --",
    "\\'; SELECT pg_sleep(5); --",
    "名称'); DROP SCHEMA public CASCADE; --",
    "%s%s%s %(x)s :name ?",
]


@pytest.fixture(scope="module")
def inj(db_url: str) -> Iterator[tuple[str, Engine, Any, str]]:
    from dashboards.app import create_app
    from layers.store import auth

    url = sibling_database(db_url, "sqlinj")
    eng = create_engine(url)
    with eng.begin() as c:
        auth.add_user(c, "inj_admin", "a long enough password 1", role="admin")
        secret = auth.create_token(c, "inj-admin", layers=["*"], access="write", created_by="pytest")
    client = create_app(Settings(database_url=url)).server.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    yield url, eng, client, secret
    eng.dispose()
    drop_database(url)


def _state(eng: Engine) -> dict[str, int]:
    with eng.connect() as c:
        out = {t: int(c.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
               for t in (*FEATURE_MODELS, "feature_history", "users", "api_tokens")}
        out["tables"] = int(c.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one())
    return out


@pytest.mark.parametrize("payload", PAYLOADS)
def test_write_api_stores_injection_text_verbatim_or_rejects(inj: tuple[str, Engine, Any, str], payload: str) -> None:
    _, eng, client, _ = inj
    before = _state(eng)
    feature = {"type": "Feature", "id": payload,
               "geometry": {"type": "Point", "coordinates": [111.7, 40.8]},
               "properties": {"name": payload, "kind": "fire", "status": "reported", "note": payload,
                              payload: "key"}}
    r = client.post("/api/v1/layers/incidents", query_string={"source": payload[:64]}, json=feature)
    after = _state(eng)
    assert r.status_code in (200, 400, 422), r.get_data(as_text=True)[:500]
    assert after["tables"] == before["tables"] and after["users"] == before["users"]
    assert after["api_tokens"] == before["api_tokens"]
    if r.status_code != 200:
        assert after == before
        return
    fid = r.get_json()["ids"][0]
    with eng.connect() as c:
        row = c.execute(text("SELECT name, external_id, source, properties FROM incidents WHERE id = :i"),
                        {"i": fid}).one()
    assert row.name == payload and row.external_id == payload and row.source == payload[:64]
    assert row.properties["note"] == payload and row.properties[payload] == "key"
    assert after["incidents"] == before["incidents"] + 1
    assert after["feature_history"] == before["feature_history"] + 1

    # a vocabulary field is checked, so the payload there is refused and nothing changes
    for field in ("kind", "status"):
        before = _state(eng)
        r = client.patch(f"/api/v1/layers/incidents/{fid}", json={field: payload})
        assert r.status_code == 422 and _state(eng) == before
    # free text through PATCH is stored as sent
    r = client.patch(f"/api/v1/layers/incidents/{fid}", json={"name": payload + "!", "properties": {"x": payload}})
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    with eng.connect() as c:
        name, props = c.execute(text("SELECT name, properties FROM incidents WHERE id = :i"), {"i": fid}).one()
    assert name == payload + "!" and props["x"] == payload


@pytest.mark.parametrize("payload", PAYLOADS[:5])
def test_layer_and_path_and_query_parameters(inj: tuple[str, Engine, Any, str], payload: str) -> None:
    _, eng, client, _ = inj
    before = _state(eng)
    answers = [
        client.post(f"/api/v1/layers/{payload}", json={"type": "FeatureCollection", "features": []}),
        client.get("/api/v1/layers/incidents", query_string={"kind": payload, "status": payload, "bbox": payload}),
        client.get("/api/v1/analysis/nearest", query_string={"lon": payload, "lat": "40", "kinds": payload}),
        client.delete(f"/api/v1/layers/incidents/{payload}"),
    ]
    for r in answers:
        assert r.status_code < 500, (r.request.url if hasattr(r, "request") else "", r.status_code)
    assert _state(eng) == before


def test_imports_store_injection_text_verbatim(inj: tuple[str, Engine, Any, str], tmp_path: Path) -> None:
    from layers.ingest.imports import import_file

    url, eng, _, _ = inj
    path = tmp_path / "inj.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "kind", "status", "capacity", "lon", "lat", "contact"])
        for i, p in enumerate(PAYLOADS):
            w.writerow([p, p, "emergency", "open", 100 + i, 111.7 + i / 1000, 40.8, p])
    before = _state(eng)
    with Session(eng) as s, s.begin():
        report = import_file(s, "shelters", path, source=PAYLOADS[0], user=PAYLOADS[2][:64])
    after = _state(eng)
    assert report.inserted == len(PAYLOADS)
    assert after["shelters"] == before["shelters"] + len(PAYLOADS) and after["tables"] == before["tables"]
    with eng.connect() as c:
        rows = c.execute(text("SELECT external_id, name, properties, updated_by FROM shelters WHERE source = :s"),
                         {"s": PAYLOADS[0]}).all()
    assert sorted(r.external_id for r in rows) == sorted(PAYLOADS)
    assert all(r.name == r.external_id and r.properties.get("contact") == r.external_id for r in rows)
    assert {r.updated_by for r in rows} == {PAYLOADS[2][:64]}
    del url
