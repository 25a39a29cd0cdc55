"""Hostile input to the HTTP API: schemathesis generates requests from our own OpenAPI document, and the limits.

Every operation of ``/api/v1/openapi.json`` gets a bounded number of generated requests (valid and invalid by the
schema) through the Flask WSGI app, on a database of its own (fuzzed writes land there, not in other tests' data),
sent with an admin-scoped bearer token so that writes are tried once authentication is installed. Checks: no
response is a 5xx (``not_a_server_error``) and every declared response conforms to its schema
(``response_schema_conformance``). Left out: ``/events`` (a Server-Sent Events stream that never ends) and the PDF
report (seconds per call; its own tests cover it).

The limits of :mod:`dashboards.limits` are then tested directly: an oversized body, a 10^6-vertex polygon, JSON
nested 10^5 deep and a statement that runs past the time limit each get a 4xx JSON answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import create_engine, text

from layers.store.settings import Settings
from tests.conftest import drop_database, sibling_database

pytestmark = pytest.mark.db

MAX_EXAMPLES = 8  # per operation and mode: about 30 operations x 2 modes, the run stays under a minute
EXCLUDED_PATHS = r"^(/api/v1)?/(events|reports/)"


@pytest.fixture(scope="module")
def fuzz_db(db_url: str) -> Iterator[tuple[str, str]]:
    """A migrated database of this module's own, with an admin-scoped write token; dropped at the end."""
    from layers.store import auth

    url = sibling_database(db_url, "fuzzapi")
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("INSERT INTO incidents (source, external_id, name, kind, status, geom) VALUES "
                       "('seed', 'i1', 'seed incident', 'fire', 'active', 'SRID=4326;POINT(111.7 40.8)')"))
        c.execute(text("INSERT INTO resources (source, external_id, name, kind, status, quantity, geom) VALUES "
                       "('seed', 'r1', 'seed boat', 'boat', 'available', 2, 'SRID=4326;POINT(111.8 40.8)')"))
        secret = auth.create_token(c, "fuzz-admin", layers=["*"], access="write", created_by="pytest")
    eng.dispose()
    yield url, secret
    drop_database(url)


@pytest.fixture(scope="module")
def fuzz_app(fuzz_db: tuple[str, str]) -> Any:
    from dashboards.app import create_app
    from dashboards.limits import install_limits

    server = create_app(Settings(database_url=fuzz_db[0], max_upload_mb=5)).server
    if _limits_installed(server) is False:
        install_limits(server)
    return server


def _limits_installed(server: Any) -> bool:
    from dashboards.limits import _before_request

    return any(f is _before_request for f in server.before_request_funcs.get(None, []))


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    ops = [r.ok() for r in schema.get_all_operations()]
    return [op for op in ops if not re.search(EXCLUDED_PATHS, op.path)]


def test_no_server_error_and_responses_match_the_document(fuzz_app: Any, fuzz_db: tuple[str, str]) -> None:
    """Each operation, valid and invalid requests by its schema (pytest 9 cannot run schemathesis' own plugin)."""
    headers = {"Authorization": f"Bearer {fuzz_db[1]}"}
    ops = _operations(fuzz_app)
    assert len(ops) >= 20, [op.label for op in ops]  # the document lists every endpoint
    failures: list[str] = []
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

            try:
                run()
            except BaseException as e:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{op.label} ({mode.value}): {type(e).__name__}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)


# --- the limits -------------------------------------------------------------------------------------------------------


@pytest.fixture
def client(fuzz_app: Any, fuzz_db: tuple[str, str]) -> Any:
    c = fuzz_app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {fuzz_db[1]}"
    return c


def _incident_count(url: str) -> int:
    eng = create_engine(url)
    with eng.connect() as c:
        n = int(c.execute(text("SELECT count(*) FROM incidents")).scalar_one())
    eng.dispose()
    return n


def test_oversized_body_is_413_json_and_writes_nothing(client: Any, fuzz_db: tuple[str, str]) -> None:
    before = _incident_count(fuzz_db[0])
    from dashboards.limits import body_limit

    limit, _ = body_limit("/api/v1/layers/incidents")
    assert limit is not None
    r = client.post("/api/v1/layers/incidents", data=b"{" + b" " * (limit + 1) + b"}",
                    content_type="application/json")
    assert r.status_code == 413
    err = r.get_json()["error"]
    assert err["code"] == "request_entity_too_large" and "MB" in err["detail"]
    assert _incident_count(fuzz_db[0]) == before


def test_a_million_vertex_polygon_is_refused_before_it_is_parsed(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from dashboards import limits
    from dashboards.limits import MAX_VERTICES

    n = 10**6
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([111.7 + 0.1 * np.cos(angle), 40.8 + 0.1 * np.sin(angle)]).round(6).tolist()
    ring.append(ring[0])
    zone = {"type": "Polygon", "coordinates": [ring]}
    # let the size pass (the API's body limit is 16 MB, this body ~25 MB), so the vertex limit is what answers
    monkeypatch.setattr(limits, "ROUTE_BODY_LIMITS", (("/api/v1/", 64 * 2**20, "an API request"),))
    r = client.post("/api/v1/analysis/impact", json={"zone": zone})
    assert r.status_code == 413
    err = r.get_json()["error"]
    assert err["code"] == "too_many_points"
    assert str(n + 1) in err["detail"] and str(MAX_VERTICES) in err["detail"]


def test_deeply_nested_json_is_a_4xx_not_a_recursion_error(client: Any) -> None:
    body = "[" * 100_000 + "]" * 100_000
    for path in ("/api/v1/layers/incidents", "/api/v1/analysis/impact", "/api/v1/analysis/nearest"):
        r = client.post(path, data=body, content_type="application/json")
        assert r.status_code == 413, (path, r.status_code)
        assert r.get_json()["error"]["code"] == "too_many_points"


def test_a_statement_past_the_time_limit_answers_408(fuzz_db: tuple[str, str]) -> None:
    from flask import Flask

    from dashboards.context import db_engine
    from dashboards.errors import register_error_handlers
    from dashboards.limits import install_limits

    app = Flask("limits-test")
    app.config["SITROOM_SETTINGS"] = Settings(database_url=fuzz_db[0])

    @app.get("/slow")
    def slow() -> str:
        with db_engine().connect() as c:
            return str(c.execute(text("SELECT pg_sleep(2)")).scalar())

    @app.get("/setting")
    def setting() -> str:
        with db_engine().connect() as c:
            return str(c.execute(text("SHOW statement_timeout")).scalar())

    register_error_handlers(app)
    install_limits(app, time_limit_s=0.3)
    c = app.test_client()
    assert c.get("/setting").get_data(as_text=True) == "300ms"
    r = c.get("/slow")
    assert r.status_code == 408
    assert r.get_json()["error"]["code"] == "request_timeout" and "0.3 s" in r.get_json()["error"]["detail"]
    # outside a request (CLI, background threads) the same pooled connections carry no limit
    with app.app_context(), db_engine().connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
        assert conn.execute(text("SELECT 1 FROM pg_sleep(0.5)")).scalar() == 1
