"""The admin page's actions as plain callbacks: accounts (add, role, disable/enable, reset password), API tokens
(create shown once, revoke, scope), the import log, and the role check of every action."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine

from dashboards.app import create_app
from dashboards.i18n import t
from layers.ingest.importlog import LOG_NAME, record_import
from layers.store import auth as store_auth
from layers.store.settings import Settings
from tests.conftest import signed_in

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def app(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    state = tmp_path_factory.mktemp("admin_state")
    record_import(state / LOG_NAME, {"layer": "incidents", "file": "bad.csv", "who": "ops", "ok": False,
                                     "errors": ["row 3, field 'kind': got 'fyre'; allowed: fire, flood, ..."]})
    return create_app(Settings(database_url=db_url, state_dir=state))


def _act(app: Any, button: str, as_role: str = "admin", **state: Any) -> tuple[Any, ...]:
    from dashboards.pages import admin

    names = ["username", "display", "role", "password", "picked", "new_role", "token_name", "token_layers",
             "access", "picked_token"]
    values = [state.get(n) for n in names]
    with app.server.test_request_context("/admin?lang=en"), signed_in(as_role):
        return admin.act(*([1] * 7), *values, trigger=button)


def test_accounts_and_tokens_from_the_page(app: Any, db_url: str) -> None:
    from dashboards.pages import admin

    user = f"ops-{uuid.uuid4().hex[:6]}"
    msg, users, _ = _act(app, admin.ADMIN_ADD, username=user, display="Ops", role="analyst", password="s3cret-pass-1")
    assert msg == f"Account {user} added" and user in str(users)
    _act(app, admin.ADMIN_SET_ROLE, picked=user, new_role="planner")
    _act(app, admin.ADMIN_DISABLE, picked=user)
    eng = create_engine(db_url)
    with eng.connect() as c:
        row = next(u for u in store_auth.list_users(c) if u["username"] == user)
    assert row["role"] == "planner" and row["disabled"]
    msg, _, _ = _act(app, admin.ADMIN_RESET, picked=user)
    new_password = msg.children[-1].children
    _act(app, admin.ADMIN_ENABLE, picked=user)
    with eng.begin() as c:
        assert store_auth.verify_password(c, user, new_password).role == "planner"  # the shown password works
    # a token for a feed: the secret is shown once and works, scoped to its layers; then revoked
    name = f"feed-{uuid.uuid4().hex[:6]}"
    msg, _, tokens = _act(app, admin.ADMIN_TOKEN_CREATE, token_name=name, token_layers=["incidents"], access="write")
    secret = msg.children[-1].children
    assert name in str(tokens) and secret not in str(tokens)
    with eng.begin() as c:
        p = store_auth.verify_token(c, secret)
        assert store_auth.token_allows(p, "incidents", write=True) and not store_auth.token_allows(p, "hazards",
                                                                                                  write=False)
    _act(app, admin.ADMIN_TOKEN_REVOKE, picked_token=name)
    with eng.begin() as c, pytest.raises(store_auth.AuthError):
        store_auth.verify_token(c, secret)
    eng.dispose()


def test_bad_input_is_refused_with_the_field_and_nothing_changes(app: Any, db_url: str) -> None:
    from dashboards.pages import admin

    msg, users, tokens = _act(app, admin.ADMIN_ADD, username="x", role="analyst", password="short")
    assert "Refused" in str(msg) and "username" in str(msg) and users is admin.no_update
    msg, _, _ = _act(app, admin.ADMIN_TOKEN_CREATE, token_name="t1", token_layers=["nope"], access="write")
    assert "layers" in str(msg) and "nope" in str(msg)


def test_every_action_needs_the_admin_role(app: Any, db_url: str) -> None:
    from dashboards.pages import admin

    for who in ("viewer", "analyst", "planner", "display"):
        msg, users, tokens = _act(app, admin.ADMIN_ADD, who, username="intruder", role="admin",
                                  password="long-enough-pass")
        assert msg == t("error.forbidden", "en"), (who, msg)
        assert users is admin.no_update and tokens is admin.no_update
    eng = create_engine(db_url)
    with eng.connect() as c:
        assert "intruder" not in {u["username"] for u in store_auth.list_users(c)}
    eng.dispose()


def test_page_lists_imports_with_their_errors(app: Any) -> None:
    import json

    from plotly.utils import PlotlyJSONEncoder

    from dashboards.pages import admin

    with app.server.test_request_context("/admin?lang=en"), signed_in("admin"):
        page = json.dumps(admin.layout(lang="en"), cls=PlotlyJSONEncoder)
    assert "bad.csv" in page and "refused, nothing written" in page and "got 'fyre'" in page
    for key in (admin.ADMIN_ADD, admin.ADMIN_TOKEN_CREATE, admin.ADMIN_RESET, admin.ADMIN_TOKEN_REVOKE):
        assert key in page
