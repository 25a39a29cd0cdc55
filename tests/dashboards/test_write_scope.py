"""Issue 19 item 5: a token scoped to the incidents layer, against every real route that changes something.

The routes are not listed by hand: they are every operation of the OpenAPI document whose method changes state, and
the test first checks that these are exactly the Flask URL rules under ``/api/v1`` that accept such a method (so a
route added without a description is caught too). Each is called, for every layer other than ``incidents`` where the
URL names one, with a request that really writes: the same request with a token for every layer is answered 2xx
right after (so a refusal is the scope's doing, not a bad body). The incidents-only write token must be refused with
403 ``forbidden``, and the whole database (every table, row by row; a token's last-use time aside) must be as it was.
The analysis calls that only compute are held to "nothing changed" whatever they answer. The Dash callbacks are
audited with every role by ``tests/dashboards/test_callback_policy.py`` (issue 17).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, text

from dashboards.app import create_app
from dashboards.auth import CSRF_COOKIE
from layers.command import plans, tasks
from layers.store import auth
from layers.store.models import Hazard
from layers.store.registry import LAYERS
from layers.store.settings import Settings
from tests.conftest import api_token, authorize, drop_database, sibling_database

pytestmark = pytest.mark.db

API = "/api/v1"
WARN_PASSWORD = "a long enough password 1"
UNSAFE = ("post", "put", "patch", "delete")
CAP = Path(__file__).resolve().parents[1] / "fixtures" / "cap" / "polygon_alert.xml"
SQUARE = {"type": "Polygon", "coordinates": [[[111.6, 40.7], [111.7, 40.7], [111.7, 40.8], [111.6, 40.8],
                                              [111.6, 40.7]]]}
POINT = {"type": "Point", "coordinates": [111.65, 40.75]}
#: a feature each layer accepts (geometry, properties)
FEATURES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "hazards": (SQUARE, {"name": "scope test", "kind": "flood", "status": "active", "warning_level": "red"}),
    "incidents": (POINT, {"name": "scope test", "kind": "fire", "status": "reported", "severity": "major",
                          "occurred_at": "2026-07-01T08:00:00+08:00"}),
    "shelters": (POINT, {"name": "scope test", "kind": "emergency", "status": "open", "capacity": 100,
                         "occupancy": 0}),
    "resources": (POINT, {"name": "scope test", "kind": "fire_engine", "status": "available", "quantity": 2}),
    "protection_targets": (POINT, {"name": "scope test", "kind": "school", "status": "normal", "occupants": 300}),
    "admin_regions": (SQUARE, {"name": "scope test", "kind": "county", "status": "active", "adcode": "159977",
                               "level": "county"}),
    "impact_zones": (SQUARE, {"name": "scope test", "kind": "buffer", "status": "active"}),
    "annotations": (POINT, {"name": "scope test", "kind": "command_post", "status": "active", "label": "x"}),
    "stations": (POINT, {"name": "scope test", "kind": "hydrology", "status": "active", "code": "x"}),
}
#: how the routes with a layer in their URL are called: one case per layer other than incidents
OTHER_LAYERS = sorted(set(LAYERS) - {"incidents"})


def _feature(layer: str, n: int) -> dict[str, Any]:
    geom, props = FEATURES[layer]
    props = dict(props)
    for unique, value in (("adcode", f"15{n:04d}"), ("code", f"S{n}")):  # unique per layer
        if unique in props:
            props[unique] = value
    return {"type": "Feature", "id": f"scope-{layer}-{n}", "geometry": geom, "properties": props}


@pytest.fixture(scope="module")
def world(db_url: str) -> Iterator[tuple[str, Engine, dict[str, int]]]:
    url = sibling_database(db_url, "scope")
    engine = create_engine(url)
    app = create_app(Settings(database_url=url))
    admin = authorize(app.server.test_client(), api_token(engine, "scope-seed", layers=("*",), access="write"))
    ids = {}
    for i, layer in enumerate(LAYERS):  # two features of every layer: one to change, one to delete
        for j, method in enumerate(("patch", "delete", "patch route", "delete route")):
            r = admin.post(f"{API}/layers/{layer}?source=scope-seed", json=_feature(layer, 9000 + 4 * i + j))
            assert r.status_code == 200, (layer, r.get_data(as_text=True))
            ids[f"{method} {layer}"] = r.get_json()["ids"][0]
    # what the command and monitoring routes act on: plans, a task to move on, a free resource and an incident to
    # dispatch it to, an activation and one of its actions, two automatic warnings awaiting a person, a station
    extra = {"scope resource free": ("resources", POINT, {"name": "free", "kind": "rescue_team",
                                                          "status": "available", "quantity": 1}),
             "scope resource busy": ("resources", POINT, {"name": "busy", "kind": "rescue_team",
                                                          "status": "available", "quantity": 1}),
             "scope incident": ("incidents", POINT, {"name": "scope", "kind": "fire", "status": "reported",
                                                     "severity": "major"}),
             "scope station": ("stations", POINT, {"name": "scope", "kind": "weather", "status": "active",
                                                   "code": "SCOPE-OBS"})}
    for key, (layer, geom, props) in extra.items():
        r = admin.post(f"{API}/layers/{layer}?source=scope-seed",
                       json={"type": "Feature", "id": key, "geometry": geom, "properties": props})
        assert r.status_code == 200, (key, r.get_data(as_text=True))
        ids[key] = r.get_json()["ids"][0]
    with engine.begin() as c:
        plans.load_plans(c)
        ids["task"] = tasks.dispatch(c, resource_id=ids["scope resource busy"], incident_id=ids["scope incident"],
                                     user="scope-seed")["id"]
        act = plans.activate(c, hazard_kind="flood", level=4, user="scope-seed")
        ids["activation"], ids["action"] = act["id"], act["actions"][0]["id"]
        for verb in ("confirm", "dismiss"):
            monitor = {"rule": "scope", "station": "SCOPE-OBS", "trigger": {}, "levels": [], "proposal": None,
                       "suppressed": None, "revisions": []}
            ids[f"warning {verb}"] = c.execute(insert(Hazard).values(
                source="scope-seed", external_id=f"warning-{verb}", name=f"scope {verb}", kind="gale",
                status="pending", warning_level="blue", geom=f"SRID=4326;MULTIPOLYGON((({_ring(SQUARE)})))",
                properties={"automatic": True, "monitor": monitor}).returning(Hazard.id)).scalar_one()
    try:
        yield url, engine, ids
    finally:
        engine.dispose()
        drop_database(url)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's state directory (the situation reports' log lives there)."""
    return tmp_path_factory.mktemp("scope-state")


@pytest.fixture(scope="module")
def clients(world: tuple[str, Engine, dict[str, int]], state: Path) -> dict[str, Any]:
    url, engine, _ = world
    app = create_app(Settings(database_url=url, state_dir=state))
    with engine.begin() as c:  # confirming a warning is a person's act (the warn capability), never a token's
        auth.add_user(c, "scope-monitor", WARN_PASSWORD, role="monitor")
    warn = app.server.test_client()
    page = warn.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    r = warn.post("/login", data={"username": "scope-monitor", "password": WARN_PASSWORD, "csrf_token": csrf,
                                  "next": "/"})
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    warn.environ_base["HTTP_X_CSRF_TOKEN"] = warn.get_cookie(CSRF_COOKIE).value
    return {"warn": warn,
            "incidents": authorize(app.server.test_client(),
                                   api_token(engine, "scope-incidents", layers=("incidents",), access="write")),
            "all": authorize(app.server.test_client(), api_token(engine, "scope-all", layers=("*",), access="write")),
            "doc": app.server.test_client().get(f"{API}/openapi.json").get_json(),
            "rules": [(r.rule, sorted(set(r.methods or ()) - {"GET", "HEAD", "OPTIONS"}))
                      for r in app.server.url_map.iter_rules()]}


def _fingerprint(engine: Engine, state: Path) -> dict[str, str]:
    """Every table of the database, row by row (md5 of the sorted rows; API tokens without their last-use time), and
    every file of the server's state directory."""
    files = {f"file:{p.relative_to(state)}": hashlib.md5(p.read_bytes()).hexdigest()
             for p in sorted(state.rglob("*")) if p.is_file()}
    with engine.connect() as c:
        tables = c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                "AND tablename <> 'spatial_ref_sys' ORDER BY 1")).scalars().all()
        out = {}
        for tbl in tables:
            rows = "(SELECT id, name, layers, access, revoked_at FROM api_tokens)" if tbl == "api_tokens" else tbl
            out[tbl] = c.execute(text(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                                      f"FROM {rows} AS t")).scalar_one()
    return {**out, **files}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items() if m in UNSAFE]


def test_the_openapi_document_lists_every_write_route(clients: dict[str, Any]) -> None:
    """The enumeration below is complete: the document's state-changing operations are the URL map's."""
    documented = {(m.upper(), p) for m, p, _ in _operations(clients["doc"])}
    served = {(m, rule[len(API):].replace("<int:", "{").replace("<", "{").replace(">", "}"))
              for rule, methods in clients["rules"] for m in methods
              if rule.startswith(f"{API}/") and "<path:" not in rule}
    assert served == documented
    assert len(documented) >= 12


def _cases(doc: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    out = []
    for method, path, _ in _operations(doc):
        layers = OTHER_LAYERS if "{layer}" in path else [None]
        out += [(method, path, layer) for layer in layers]
    return out


def _ring(polygon: dict[str, Any]) -> str:
    return ", ".join(f"{x} {y}" for x, y in polygon["coordinates"][0])


def _request(method: str, path: str, layer: str | None, op: dict[str, Any], ids: dict[str, int],
             n: int) -> tuple[str, dict[str, Any]]:
    url = API + path.replace("{layer}", str(layer)).replace("{annotation_id}", str(ids.get(f"{method} route annotations", 0)))
    url = url.replace("{feature_id}", str(ids.get(f"{method} {layer}", 0)))
    url = (url.replace("{task_id}", str(ids["task"])).replace("{activation_id}", str(ids["activation"]))
           .replace("{action_id}", str(ids["action"])))
    if "{warning_id}" in url:
        verb = url.rsplit("/", 1)[1]
        return url.replace("{warning_id}", str(ids[f"warning {verb}"])), {"json": {"note": f"scope {n}"}}
    if path == "/observations":
        return url, {"json": [{"station": "SCOPE-OBS", "variable": "temperature", "value": 21.5, "unit": "degC",
                               "observed_at": "2026-07-20T08:00:00+08:00"}]}
    if path == "/tasks":
        return url, {"json": {"resource_id": ids["scope resource free"], "incident_id": ids["scope incident"]}}
    if path == "/plans/activations":
        return url, {"json": {"hazard_kind": "blizzard", "level": 4}}
    if path == "/cap":
        return url, {"data": CAP.read_bytes(), "headers": {"Content-Type": "application/cap+xml"}}
    if method == "delete":
        return url, {}
    if path == "/layers/{layer}":
        return url + "?source=scope-test", {"json": _feature(str(layer), n)}
    if method == "patch" and ("/tasks/" in path or "/plans/" in path):
        return url, {"json": copy.deepcopy(op["requestBody"]["content"]["application/json"]["schema"]["example"])}
    if method == "patch":
        return url, {"json": {"label": f"renamed {n}"} if "annotation" in path else {"name": f"renamed {n}"}}
    if path == "/analysis/nearest":
        return url, {"json": {"points": [[111.65, 40.75]], "k": 1}}
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    return url, {"json": copy.deepcopy(schema["example"])}


# the cases are known only from the served document: built once, at collection, from an app without a database
_DOC = create_app(Settings(database_url="postgresql+psycopg://nobody:x@127.0.0.1:1/none")
                  ).server.test_client().get(f"{API}/openapi.json").get_json()
CASES = _cases(_DOC)


@pytest.mark.parametrize(("method", "path", "layer"), CASES, ids=[f"{m} {p} {lyr or ''}".strip()
                                                                  for m, p, lyr in CASES])
def test_an_incidents_token_changes_nothing_outside_incidents(clients: dict[str, Any], world: Any, state: Path,
                                                               method: str, path: str, layer: str | None) -> None:
    _, engine, ids = world
    op = clients["doc"]["paths"][path][method]
    computes = "analysis" in op.get("tags", ())
    n = CASES.index((method, path, layer))
    url, kw = _request(method, path, layer, op, ids, n)
    before = _fingerprint(engine, state)
    r = getattr(clients["incidents"], method)(url, **kw)
    after = _fingerprint(engine, state)
    assert {k for k in before if before[k] != after[k]} == set(), (r.status_code, r.get_data(as_text=True)[:300])
    if not computes:
        assert r.status_code == 403, r.get_data(as_text=True)[:300]
        assert r.get_json()["error"]["code"] == "forbidden"
    # the same request with a token for every layer is a real write (a computation: not refused, not an error;
    # here without population or regions it may say what is missing)
    ok = getattr(clients["warn" if "/monitor/warnings/" in path else "all"], method)(url, **kw)
    if computes:
        assert ok.status_code not in (401, 403) and ok.status_code < 500, ok.get_data(as_text=True)[:300]
    else:
        assert 200 <= ok.status_code < 300, (ok.status_code, ok.get_data(as_text=True)[:300])
        assert _fingerprint(engine, state) != after, "the control request wrote nothing: the case proves nothing"


def test_an_incidents_token_writes_incidents(clients: dict[str, Any], world: Any) -> None:
    """The scope is not a blanket refusal: the same token may write its own layer."""
    _, engine, ids = world
    r = clients["incidents"].post(f"{API}/layers/incidents?source=scope-test", json=_feature("incidents", 999))
    assert r.status_code == 200, r.get_data(as_text=True)
    r = clients["incidents"].patch(f"{API}/layers/incidents/{ids['patch incidents']}", json={"name": "renamed"})
    assert r.status_code == 200, r.get_data(as_text=True)
