"""Issue 17 item 2, the audit: every Dash callback of the app, called as every role, refuses as its route does.

The callbacks are enumerated from Dash's own callback map (``app.callback_map``), so a callback added later is
audited too: one that :data:`dashboards.auth.CALLBACK_POLICY` does not list fails here (and is refused by the server).
Each is posted to ``/_dash-update-component`` exactly as the Dash renderer posts it, by an anonymous client (demo
and production), a signed-in user of every role, and layer-scoped API tokens; the answer must be 401/403 exactly when
the role lacks the capability the policy names (the capability of the API route that serves the same data), and
anything but 401/403 otherwise. The page router is called with the path of every page.

Before: the planner's export (``planner-download.data``) and every other callback answered anonymous (demo), display
and viewer alike: the HTTP policy let every callback through as a read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete

from dashboards import auth as web_auth
from dashboards.app import create_app
from layers.store import auth
from layers.store.models import ApiToken, User
from layers.store.settings import Settings

pytestmark = pytest.mark.db

SECRET = "Wb5nK8-qZr1Ly4Gd7TsXe0Pj3Hm6Fc9Ua2Vo_Ni"  # a fixed test key, random-looking
PREFIX = "cbaudit_"
#: every role of the app (roles added on main later are picked up from the store's list)
ROLES = tuple(auth.ROLES)
PAGES = ("/", "/wall", "/leader", "/analyst", "/planner", "/admin")


@pytest.fixture(scope="module")
def accounts(engine: Engine) -> Iterator[dict[str, str]]:
    with engine.begin() as conn:
        for role in ROLES:
            auth.add_user(conn, f"{PREFIX}{role}", f"{role}-audit-password", role=role)
        tokens = {"shelters-read": auth.create_token(conn, "cbaudit-shelters", layers=["shelters"], access="read",
                                                     created_by="pytest"),
                  "all-read": auth.create_token(conn, "cbaudit-all", layers=["*"], access="read",
                                                created_by="pytest")}
    yield tokens
    with engine.begin() as conn:
        conn.execute(delete(ApiToken).where(ApiToken.name.like("cbaudit-%")))
        conn.execute(delete(User).where(User.username.like(f"{PREFIX}%")))


def _server(db_url: str, state: Path, mode: str) -> Any:
    return create_app(Settings(database_url=db_url, state_dir=state, mode=mode, secret_key=SECRET)).server


@pytest.fixture(scope="module")
def servers(db_url: str, accounts: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = tmp_path_factory.mktemp("cbaudit")
    return {mode: _server(db_url, state, mode) for mode in ("demo", "production")}


def _server_callbacks(server: Any) -> dict[str, dict[str, Any]]:
    dash_app = server.config["SITROOM_DASH_APP"]
    return {k: v for k, v in dash_app.callback_map.items() if v.get("callback") is not None}


def _split_output(key: str) -> list[tuple[str, str]]:
    """Dash's output key (``id.prop`` or ``..a.p...b.q..``) -> [(id, prop)]."""
    parts = key.strip(".").split("...") if key.startswith("..") else [key]
    return [tuple(p.rsplit(".", 1)) for p in parts]  # type: ignore[misc]


def _body(key: str, spec: dict[str, Any], pathname: str | None = None) -> dict[str, Any]:
    """The request the Dash renderer sends for this callback (every input and state None, the first one changed)."""
    outs = [{"id": i, "property": p} for i, p in _split_output(key)]

    def item(x: dict[str, Any]) -> Any:
        if not isinstance(x["id"], str):  # a pattern-matching (ALL) input: no components on the page
            return []
        value = pathname if (x["id"], x["property"]) == ("_pages_location", "pathname") else None
        return {"id": x["id"], "property": x["property"], "value": value}

    first = spec["inputs"][0]
    return {"output": key, "outputs": outs if key.startswith("..") else outs[0],
            "inputs": [item(x) for x in spec["inputs"]], "state": [item(x) for x in spec["state"]],
            "changedPropIds": [f"{first['id']}.{first['property']}"] if isinstance(first["id"], str) else []}


def _policy_key(key: str) -> str:
    cid, prop = _split_output(key)[0]
    return f"{cid}.{prop.split('@', 1)[0]}"


def _client(server: Any, who: str, tokens: dict[str, str]) -> Any:
    c = server.test_client()
    if who.startswith("token:"):
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens[who[6:]]}"
    elif who != "anonymous":
        page = c.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        r = c.post("/login", data={"username": f"{PREFIX}{who}", "password": f"{who}-audit-password",
                                   "csrf_token": csrf, "next": "/"})
        assert r.status_code == 303, who
    return c


def _post(c: Any, body: dict[str, Any]) -> int:
    cookie = c.get_cookie(web_auth.CSRF_COOKIE)
    headers = {"X-CSRFToken": cookie.value} if cookie is not None else {}
    return c.post(web_auth.DASH_CALLBACK_PATH, json=body, headers=headers).status_code


def test_every_server_callback_is_in_the_policy(servers: dict[str, Any]) -> None:
    callbacks = _server_callbacks(servers["demo"])
    assert len(callbacks) >= 15
    missing = sorted(_policy_key(k) for k in callbacks if _policy_key(k) not in web_auth.CALLBACK_POLICY)
    assert missing == [], f"callbacks without a rule in dashboards.auth.CALLBACK_POLICY: {missing}"
    stale = sorted(set(web_auth.CALLBACK_POLICY) - {_policy_key(k) for k in callbacks})
    assert stale == [], f"rules for callbacks that no longer exist: {stale}"


def _cases(server: Any) -> list[tuple[str, dict[str, Any], str | None, str]]:
    """(key, spec, pathname, capability) for every server callback; the router once per page."""
    out = []
    for key, spec in _server_callbacks(server).items():
        cap = web_auth.CALLBACK_POLICY[_policy_key(key)]
        if _policy_key(key) == "_pages_content.children":
            out += [(key, spec, path, web_auth.PAGE_POLICY.get(path, "read")) for path in PAGES]
        else:
            out.append((key, spec, None, cap))
    return out


@pytest.mark.parametrize("who", ["anonymous", *ROLES, "token:shelters-read", "token:all-read"])
@pytest.mark.parametrize("mode", ["demo", "production"])
def test_every_callback_refuses_exactly_the_roles_its_route_refuses(servers: dict[str, Any], accounts: Any,
                                                                     who: str, mode: str) -> None:
    server = servers[mode]
    client = _client(server, who, accounts)
    wrong = []
    for key, spec, path, cap in _cases(server):
        if who == "anonymous":
            expect_ok = cap == "read" and mode in web_auth.ANONYMOUS_READ_MODES
        elif who.startswith("token:"):  # callbacks return several layers: only a token for every layer reads
            expect_ok = cap in web_auth.TOKEN_CAPABILITIES["read"] and who == "token:all-read"
        else:
            expect_ok = cap in web_auth.ROLE_CAPABILITIES[who]
        status = _post(client, _body(key, spec, path))
        refused = status in (401, 403)
        if refused == expect_ok:
            wrong.append(f"{_policy_key(key)}{' ' + path if path else ''}: {status} (needs {cap})")
    assert wrong == [], f"{who} in {mode} mode"


def test_unlisted_and_malformed_callback_requests_are_refused(servers: dict[str, Any], accounts: Any) -> None:
    admin = _client(servers["production"], "admin", accounts)
    assert _post(admin, {"output": "x.y", "outputs": {"id": "made-up", "property": "children"}, "inputs": []}) == 403
    assert _post(admin, {"no": "outputs"}) == 400
