"""The server frame: app factory, local assets, language choice, health, the error table, the OpenAPI document."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from openapi_spec_validator import validate as validate_openapi

from dashboards.api import openapi
from dashboards.app import create_app
from dashboards.errors import ApiError, ParameterError, classify, register_error_handlers
from dashboards.i18n import COOKIE, t
from layers.store.settings import Settings

# nothing listens on port 1 of 127.0.0.1: a database that is down, refused at once
DOWN_URL = "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"


@pytest.fixture(scope="module")
def app_down():
    """An app whose database is unreachable (no PostGIS needed)."""
    return create_app(Settings(database_url=DOWN_URL))


@pytest.fixture(scope="module")
def client_down(app_down):
    return app_down.server.test_client()


# --- the app and its pages ------------------------------------------------------------------------------------------

def test_create_app_uses_pages_and_serves_everything_locally(app_down, client_down) -> None:
    assert app_down.use_pages and app_down.config.serve_locally and app_down.config.suppress_callback_exceptions
    import dash

    assert "/" in {p["path"] for p in dash.page_registry.values()}
    html = client_down.get("/").get_data(as_text=True)
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert srcs, html
    # no CDN: every script and stylesheet is served by this server
    assert all(not s.startswith(("http:", "https:", "//")) for s in srcs), srcs
    assert any("sitroom.css" in s for s in srcs), srcs


def test_index_title_and_html_lang_follow_the_request_language(client_down) -> None:
    zh = client_down.get("/?lang=zh-CN").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and f"<title>{t('app.title', 'zh-CN')}</title>" in zh
    en = client_down.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in en and f"<title>{t('app.title', 'en')}</title>" in en


def test_lang_query_sets_cookie_and_the_layout_follows_the_cookie() -> None:
    client = create_app(Settings(database_url=DOWN_URL, language="zh-CN")).server.test_client()
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert t("app.title", "zh-CN") in json.loads(layout)["props"]["children"][0]["props"]["children"][0][
        "props"]["children"]
    r = client.get("/?lang=en")
    assert f"{COOKIE}=en" in r.headers["Set-Cookie"]
    brand = json.loads(client.get("/_dash-layout").get_data(as_text=True))["props"]["children"][0]["props"][
        "children"][0]["props"]["children"]
    assert brand == t("app.title", "en")
    # the API never sets the cookie
    assert "Set-Cookie" not in client.get("/api/v1/openapi.json?lang=zh-CN").headers


def test_settings_language_is_the_default() -> None:
    client = create_app(Settings(database_url=DOWN_URL, language="en")).server.test_client()
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)
    client.set_cookie(COOKIE, "zh-CN")
    assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/?lang=en").get_data(as_text=True)  # the query beats the cookie


# --- health ---------------------------------------------------------------------------------------------------------

def test_health_is_503_json_when_the_database_is_down(client_down) -> None:
    r = client_down.get("/api/v1/health?lang=en")
    assert r.status_code == 503 and r.mimetype == "application/json"
    body = r.get_json()
    assert body["status"] == "unavailable" and body["db"] is False
    assert body["error"]["code"] == "database_unavailable"
    assert body["error"]["message"] == t("error.database_unavailable", "en")
    assert "Traceback" not in r.get_data(as_text=True) and "nothing@" not in r.get_data(as_text=True)


def test_home_page_says_the_database_is_down_instead_of_failing(app_down) -> None:
    from dashboards import ids
    from dashboards.pages import home

    with app_down.server.test_request_context("/?lang=en"):
        tree = home.layout(lang="en")
    assert _find(tree, ids.HOME_DB_STATUS).children == t("home.db_unavailable", "en")


@pytest.mark.db
def test_health_is_200_with_schema_revision_when_the_database_is_up(db_url) -> None:
    client = create_app(Settings(database_url=db_url)).server.test_client()
    r = client.get("/api/v1/health")
    body = r.get_json()
    assert r.status_code == 200, body
    assert body["status"] == "ok" and body["db"] is True
    from alembic.script import ScriptDirectory

    from layers.store.db import alembic_config

    assert body["schema_revision"] == ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert re.fullmatch(r"\d+\.\d+.*", body["postgis"])


@pytest.mark.db
def test_home_page_lists_roles_and_live_layer_counts(db_url, engine) -> None:
    from sqlalchemy import text

    from dashboards import ids
    from dashboards.pages import home
    from layers.store.models import FEATURE_MODELS

    app = create_app(Settings(database_url=db_url))
    with app.server.test_request_context("/"):
        tree = home.layout(lang="en")
    with engine.connect() as c:  # oracle: plain SQL counts
        expected = {name: c.execute(text(f"SELECT count(*) FROM {name} WHERE deleted_at IS NULL")).scalar_one()
                    for name in FEATURE_MODELS}
    for name, n in expected.items():
        assert _find(tree, ids.home_layer_count(name)).children == f"{n:,}"
    for role, path in home.ROLES:
        link = _find(tree, ids.home_role_link(role))
        assert link.href == path
        assert link.children[0].children == t(f"role.{role}.name", "en")


# --- the error table ------------------------------------------------------------------------------------------------

def _raiser_app() -> Flask:
    """A bare Flask app whose routes raise each kind of error, handled by the API's error handlers."""
    import sqlalchemy.exc
    from werkzeug.exceptions import MethodNotAllowed

    from geoops.errors import CRSError, InvalidGeometryError, InvalidParameterError
    from layers.store.errors import DatabaseUnavailableError, NotFoundError, RowError, ValidationError

    errors = {
        "validation": ValidationError([RowError(3, "kind", "volcano", "one of flood, fire", "a.geojson"),
                                       RowError(7, "capacity", -1, ">= 0", "a.geojson")]),
        "notfound": NotFoundError("no shelter 42"),
        "dbdown": DatabaseUnavailableError("cannot reach 10.0.0.1"),
        "operational": sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
        "param": InvalidParameterError(field="radius_m", value=-5, allowed="a number in (0, 500000]"),
        "geometry": InvalidGeometryError("self-intersection", field="geometry", value="POLYGON(...)",
                                         allowed="a valid polygon"),
        "crs": CRSError("no CRS", field="crs", value=None, allowed="EPSG:4326"),
        "api": ParameterError(field="k", value="101", allowed="an integer in 1..100"),
        "method": MethodNotAllowed(valid_methods=["GET"]),
        "bug": RuntimeError("secret internals /etc/passwd"),
    }
    app = Flask("raiser")
    for name, exc in errors.items():
        app.add_url_rule(f"/{name}", name, (lambda e=exc: (_ for _ in ()).throw(e)))
    register_error_handlers(app)
    return app


@pytest.mark.parametrize(("path", "status", "code", "field"), [
    ("validation", 422, "validation_error", "kind"),
    ("notfound", 404, "not_found", None),
    ("dbdown", 503, "database_unavailable", None),
    ("operational", 503, "database_unavailable", None),
    ("param", 400, "invalid_parameter", "radius_m"),
    ("geometry", 422, "invalid_geometry", "geometry"),
    ("crs", 422, "crs_error", "crs"),
    ("api", 400, "invalid_parameter", "k"),
    ("method", 405, "method_not_allowed", None),
    ("bug", 500, "internal_error", None),
])
def test_error_table_maps_domain_errors_to_status_and_translated_json(path, status, code, field) -> None:
    client = _raiser_app().test_client()
    for lang in ("zh-CN", "en"):
        r = client.get(f"/{path}?lang={lang}")
        assert r.status_code == status and r.mimetype == "application/json"
        err = r.get_json()["error"]
        assert err["code"] == code and err["field"] == field
        assert err["message"] == t(f"error.{code}", lang)
        assert set(err) >= {"code", "message", "detail", "field", "value", "allowed", "problems"}
        assert "Traceback" not in r.get_data(as_text=True)


def test_error_bodies_carry_value_allowed_and_problems() -> None:
    client = _raiser_app().test_client()
    v = client.get("/validation").get_json()["error"]
    assert v["problems"] == [
        {"row": 3, "field": "kind", "value": "volcano", "allowed": "one of flood, fire", "file": "a.geojson"},
        {"row": 7, "field": "capacity", "value": -1, "allowed": ">= 0", "file": "a.geojson"},
    ]
    p = client.get("/param").get_json()["error"]
    assert (p["value"], p["allowed"]) == (-5, "a number in (0, 500000]") and "radius_m" in p["detail"]
    bug = client.get("/bug")
    assert bug.get_json()["error"]["detail"] is None and "passwd" not in bug.get_data(as_text=True)
    db = client.get("/dbdown")
    assert db.headers["Retry-After"] and "10.0.0.1" not in db.get_data(as_text=True)
    assert client.get("/method").headers["Allow"] == "GET"


def test_classify_uses_the_most_specific_class() -> None:
    from geoops.errors import GeoOpsError, InvalidGeometryError

    assert classify(InvalidGeometryError("x")) == (422, "invalid_geometry")
    assert classify(GeoOpsError("x")) == (400, "geoops_error")
    assert classify(ApiError("gone", status=410, code="gone")) == (410, "gone")


def test_unknown_api_paths_are_json_404_not_dash_pages(client_down) -> None:
    r = client_down.get("/api/v1/no/such/thing")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert client_down.get("/api/v1").get_json()["links"]


# --- OpenAPI --------------------------------------------------------------------------------------------------------

def test_openapi_document_validates_and_matches_the_routes(app_down, client_down) -> None:
    r = client_down.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    validate_openapi(doc)  # raises on an invalid OpenAPI 3.1 document
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routed = set()
    for rule in app_down.server.url_map.iter_rules():
        if rule.endpoint.startswith("api_v1.") and not rule.endpoint.startswith("api_v1._"):
            path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule.removeprefix(openapi.API_PREFIX))
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed
    assert {"/health", "/layers", "/layers/{layer}", "/openapi.json"} <= {p for p, _ in documented}


def test_declared_query_parameters_are_parsed_and_checked() -> None:
    ep = openapi.REGISTRY[("/layers/<layer>", "GET")]
    parsed = openapi.parse_query(ep, {"bbox": "111,40.5,112,41", "kind": "fixed,central", "limit": "5"})
    assert parsed["bbox"] == [111.0, 40.5, 112.0, 41.0] and parsed["kind"] == ["fixed", "central"]
    assert parsed["limit"] == 5 and parsed["offset"] == 0 and parsed["after"] is None
    for args, field in [({"limit": "0"}, "limit"), ({"limit": "10001"}, "limit"), ({"limit": "5.5"}, "limit"),
                        ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "1,2,x,4"}, "bbox"), ({"bbox": "1,,3,4"}, "bbox"),
                        ({"offset": "-1"}, "offset"), ({"limt": "5"}, "limt")]:
        with pytest.raises(ParameterError) as e:
            openapi.parse_query(ep, args)
        assert e.value.field == field and e.value.allowed


def _find(tree, component_id):
    """The component with ``id`` in a Dash component tree (depth first), or fail."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if getattr(node, "id", None) == component_id:
            return node
        children = getattr(node, "children", None)
        if isinstance(children, (list, tuple)):
            stack.extend(children)
        elif children is not None and not isinstance(children, (str, int, float)):
            stack.append(children)
    raise AssertionError(f"no component {component_id!r}")


def test_wsgi_entry_point_is_built_lazily_once() -> None:
    import dashboards.app as module

    assert "_wsgi_app" in vars(module)
    server = module.server  # what `gunicorn dashboards.app:server` loads
    assert isinstance(server, Flask) and module.server is server
    assert any(r.rule == "/api/v1/health" for r in server.url_map.iter_rules())
    with pytest.raises(AttributeError):
        module.no_such_thing  # noqa: B018
