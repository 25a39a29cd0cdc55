"""Issue 17 item 10: a token's layer scope applies to every route that returns layer data.

Before: a ``shelters`` read token read incidents through ``/history``, ``/situation``, ``/wall/snapshot`` and
``/reports/sitrep`` (the policy checked the scope only where the URL named a ``<layer>``).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from dashboards.app import create_app
from layers.store.settings import Settings
from tests.conftest import api_token, authorize

pytestmark = pytest.mark.db

API = "/api/v1"


@pytest.fixture(scope="module")
def clients(db_url: str, engine: Engine) -> dict[str, Any]:
    app = create_app(Settings(database_url=db_url))
    out = {}
    for name, layers in (("shelters", ("shelters",)), ("all", ("*",))):
        out[name] = authorize(app.server.test_client(), api_token(engine, layers=layers, access="read"))
    return out


@pytest.mark.parametrize(("path", "shelters_ok"), [
    (f"{API}/history?layer=incidents&id=1", False),
    (f"{API}/history?layer=shelters&id=1", True),
    (f"{API}/situation", False),
    (f"{API}/situation?layers=incidents,shelters", False),
    (f"{API}/situation?layers=shelters", True),
    (f"{API}/wall/snapshot", False),
    (f"{API}/reports/sitrep?format=html", False),
    (f"{API}/analysis/risk", False),
    (f"{API}/impact-zones", False),
    (f"{API}/annotations", False),
    (f"{API}/layers/incidents", False),
    (f"{API}/layers/shelters", True),
    (f"{API}/analysis/nearest?lon=111.7&lat=40.8", False),
])
def test_layer_scope_applies_to_every_read(clients: dict[str, Any], path: str, shelters_ok: bool) -> None:
    scoped = clients["shelters"].get(path)
    assert (scoped.status_code != 403) == shelters_ok, (scoped.status_code, scoped.get_data(as_text=True)[:200])
    if not shelters_ok:
        assert scoped.get_json()["error"]["code"] == "forbidden"
    assert clients["all"].get(path).status_code != 403
