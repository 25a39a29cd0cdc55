"""The access policy on a real app and a real PostGIS: 401/403, token scopes, CSRF, the display account, headers."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import request
from sqlalchemy import Engine, delete, insert, select, text

from dashboards import auth as web_auth
from dashboards.app import create_app
from dashboards.context import API_PREFIX, db_engine
from layers.store import auth
from layers.store.db import session_scope
from layers.store.models import ApiToken, FeatureHistory, Incident, User
from layers.store.settings import Settings

pytestmark = pytest.mark.db

SOURCE = "test-auth"
SECRET = "tQ3v-Jm8xR2pLw9sK0dNf5yHb7cZ1gUe4aVi6oTn"  # a fixed test key, random-looking (128+ bits)
PASSWORDS = {"t_viewer": "viewer-password-1", "t_analyst": "analyst-password-1", "t_wall": "display-password-1",
             "t_admin": "admin-password-1"}
ROLES = {"t_viewer": "viewer", "t_analyst": "analyst", "t_wall": "display", "t_admin": "admin"}
DRAW = f"{API_PREFIX}/_test/draw"
FEATURE = f"{API_PREFIX}/_test/layers/<layer>/features"
BUFFER = {"geometry": {"type": "Point", "coordinates": [111.7, 40.8]}, "distances_m": [1000]}


def _write_incident(**_path: Any) -> Any:
    """A write like the real endpoints make: through session_scope, recording who did it."""
    with session_scope(db_engine(), user=web_auth.current_user_name()) as s:
        fid = s.execute(insert(Incident).values(kind="fire", status="reported", source=SOURCE,
                                                geom="SRID=4326;POINT(111.7 40.8)").returning(Incident.id)).scalar_one()
    return {"id": fid, "layer": (request.view_args or {}).get("layer")}


@pytest.fixture(scope="module")
def accounts(engine: Engine) -> Iterator[dict[str, str]]:
    with engine.begin() as conn:
        for name, pw in PASSWORDS.items():
            auth.add_user(conn, name, pw, role=ROLES[name], display_name=f"{name} 测试")
        tokens = {
            "incidents": auth.create_token(conn, "t-feed-incidents", layers=["incidents"], access="write",
                                           created_by="t_admin"),
            "reader": auth.create_token(conn, "t-reader", layers=["*"], access="read", created_by="t_admin"),
            "revoked": auth.create_token(conn, "t-revoked", layers=["*"], access="write", created_by="t_admin"),
        }
        auth.revoke_token(conn, "t-revoked")
    yield tokens
    with engine.begin() as conn:
        conn.execute(delete(ApiToken).where(ApiToken.name.like("t-%")))
        conn.execute(delete(User).where(User.username.like("t\\_%")))
        conn.execute(text("DELETE FROM incidents WHERE source = :s"), {"s": SOURCE})


def _app(db_url: str, tmp_path: Path, **kw: Any) -> Any:
    s = Settings(database_url=db_url, state_dir=tmp_path, **{"mode": "production", "secret_key": SECRET, **kw})
    app = create_app(s)
    server = web_auth.install_auth(app, s)
    server.add_url_rule(DRAW, endpoint="t_draw", view_func=_write_incident, methods=["POST"])
    server.add_url_rule(FEATURE, endpoint="t_feature", view_func=_write_incident, methods=["POST"])
    return server


@pytest.fixture(scope="module")
def server(db_url: str, accounts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    web_auth.POLICY[(DRAW, "POST")] = web_auth.Rule("draw", layer="impact_zones")
    try:
        yield _app(db_url, tmp_path_factory.mktemp("state"))
    finally:
        web_auth.POLICY.pop((DRAW, "POST"), None)


def login(client: Any, username: str, password: str | None = None) -> Any:
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    return client.post("/login", data={"username": username, "password": password or PASSWORDS[username],
                                       "csrf_token": csrf, "next": "/"})


def csrf_of(client: Any) -> str:
    return client.get_cookie(web_auth.CSRF_COOKIE).value


def _history_by(engine: Engine, fid: int) -> str:
    with engine.connect() as c:
        return c.execute(select(FeatureHistory.changed_by).where(FeatureHistory.layer == "incidents",
                                                                 FeatureHistory.feature_id == fid)).scalar_one()


# --- who may write ----------------------------------------------------------------------------------------------

def test_anonymous_write_is_401_and_anonymous_read_is_refused_in_production(server: Any) -> None:
    c = server.test_client()
    for path, body in ((DRAW, {}), (f"{API_PREFIX}/_test/layers/incidents/features", {}),
                       (f"{API_PREFIX}/analysis/buffer", BUFFER)):
        r = c.post(path, json=body)
        assert r.status_code == 401, (path, r.status_code)
        assert r.json["error"]["code"] == "unauthorized" and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert c.get(f"{API_PREFIX}/layers").status_code == 401
    r = c.get("/wall")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/wall")
    assert c.get(f"{API_PREFIX}/health").status_code in (200, 503)  # public


def test_viewer_write_is_403_analyst_may_draw_and_history_names_them(server: Any, engine: Engine) -> None:
    viewer = server.test_client()
    assert login(viewer, "t_viewer").status_code == 303
    r = viewer.post(DRAW, json={}, headers={"X-CSRF-Token": csrf_of(viewer)})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert viewer.get(f"{API_PREFIX}/layers").status_code == 200  # but reads
    analyst = server.test_client()
    login(analyst, "t_analyst")
    r = analyst.post(DRAW, json={}, headers={"X-CSRF-Token": csrf_of(analyst)})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert _history_by(engine, r.json["id"]) == "t_analyst"
    r = analyst.post(f"{API_PREFIX}/analysis/buffer", json=BUFFER, headers={"X-CSRF-Token": csrf_of(analyst)})
    assert r.status_code == 200, r.get_data(as_text=True)
    # an analyst may not write any layer (that is a feed's or an admin's)
    r = analyst.post(f"{API_PREFIX}/_test/layers/shelters/features", json={}, headers={"X-CSRF-Token": csrf_of(analyst)})
    assert r.status_code == 403


def test_token_scoped_to_incidents_cannot_write_shelters(server: Any, accounts: dict[str, str], engine: Engine) -> None:
    c = server.test_client()
    bearer = {"Authorization": f"Bearer {accounts['incidents']}"}
    r = c.post(f"{API_PREFIX}/_test/layers/incidents/features", json={}, headers=bearer)  # no CSRF needed
    assert r.status_code == 200, r.get_data(as_text=True)
    assert _history_by(engine, r.json["id"]) == "token:t-feed-incidents"
    r = c.post(f"{API_PREFIX}/_test/layers/shelters/features", json={}, headers=bearer)
    assert r.status_code == 403 and "shelters" in r.json["error"]["detail"]
    reader = {"Authorization": f"Bearer {accounts['reader']}"}
    assert c.get(f"{API_PREFIX}/layers", headers=reader).status_code == 200
    assert c.post(f"{API_PREFIX}/_test/layers/incidents/features", json={}, headers=reader).status_code == 403


def test_revoked_or_unknown_token_is_401(server: Any, accounts: dict[str, str]) -> None:
    c = server.test_client()
    for token in (accounts["revoked"], accounts["incidents"][:-2] + "xx", "not-a-token"):
        r = c.post(f"{API_PREFIX}/_test/layers/incidents/features", json={},
                   headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
        assert c.get(f"{API_PREFIX}/layers", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# --- CSRF -----------------------------------------------------------------------------------------------------------

def test_session_writes_without_the_csrf_token_are_refused(server: Any) -> None:
    c = server.test_client()
    login(c, "t_admin")
    token = csrf_of(c)
    assert c.post(DRAW, json={}).status_code == 403
    assert c.post(DRAW, json={}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    r = c.post(DRAW, data={"x": "1"})  # a form post from another site: no token
    assert r.status_code == 403 and r.json["error"]["code"] == "csrf_failed"
    assert c.post(DRAW, data={"csrf_token": token}).status_code == 200  # a form with the token
    assert c.post(DRAW, json={}, headers={"X-CSRFToken": token}).status_code == 200  # what dash-renderer sends
    # log out needs it too
    assert c.post("/logout").status_code == 403
    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert c.post(DRAW, json={}, headers={"X-CSRF-Token": token}).status_code == 401


def test_login_form_without_csrf_is_refused_and_wrong_password_says_so(server: Any) -> None:
    c = server.test_client()
    r = c.post("/login", data={"username": "t_admin", "password": PASSWORDS["t_admin"]})
    assert r.status_code == 403 and "uid" not in r.get_data(as_text=True)
    r = login(c, "t_admin", "wrong-password!")
    assert r.status_code == 401 and 'id="login-error"' in r.get_data(as_text=True)
    assert "wrong-password" not in r.get_data(as_text=True)


def test_login_page_in_both_languages_and_next_stays_on_this_site(server: Any) -> None:
    from dashboards.i18n import t

    c = server.test_client()
    for lang in ("zh-CN", "en"):
        page = c.get(f"/login?lang={lang}").get_data(as_text=True)
        assert f'<html lang="{lang}">' in page and t("auth.login.password", lang) in page
    page = c.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    r = c.post("/login", data={"username": "t_viewer", "password": PASSWORDS["t_viewer"], "csrf_token": csrf,
                               "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["Location"] == "/"


# --- the wall -------------------------------------------------------------------------------------------------------

def test_wall_under_the_display_account_reads_and_never_sees_the_login_page(server: Any) -> None:
    c = server.test_client()
    login(c, "t_wall")
    cookie = c.get_cookie(web_auth.SESSION_COOKIE)
    assert cookie.expires is not None  # a lasting cookie, not a browser-session one
    r = c.get("/wall")
    assert r.status_code == 200 and "/login" not in r.headers.get("Location", "")
    assert c.get("/_dash-layout").status_code == 200
    assert c.get(f"{API_PREFIX}/wall/version").status_code == 200
    assert c.get(f"{API_PREFIX}/layers").status_code == 200
    # a Dash callback: refused without the CSRF header, passed to Dash with it
    assert c.post("/_dash-update-component", json={}).status_code == 403
    r = c.post("/_dash-update-component", json={}, headers={"X-CSRFToken": csrf_of(c)})
    assert r.status_code not in (401, 403)
    # reads only
    r = c.post(DRAW, json={}, headers={"X-CSRF-Token": csrf_of(c)})
    assert r.status_code == 403
    assert c.get("/admin").status_code == 403


def test_sessions_survive_a_restart_and_die_with_a_password_change(db_url: str, server: Any, engine: Engine,
                                                                  tmp_path: Path) -> None:
    c = server.test_client()
    login(c, "t_wall")
    restarted = _app(db_url, tmp_path)  # same secret key: a new process
    c2 = restarted.test_client()
    c2.set_cookie(web_auth.SESSION_COOKIE, c.get_cookie(web_auth.SESSION_COOKIE).value)
    assert c2.get(f"{API_PREFIX}/layers").status_code == 200
    with engine.begin() as conn:
        auth.set_password(conn, "t_wall", "display-password-2")
    web_auth.clear_user_cache()
    try:
        assert c2.get(f"{API_PREFIX}/layers").status_code == 401
    finally:
        with engine.begin() as conn:
            auth.set_password(conn, "t_wall", PASSWORDS["t_wall"])


# --- secrets and production -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "changeme", "short-secret", "a" * 36, "abcd" * 12])
def test_production_refuses_default_secrets_naming_the_setting(tmp_path: Path, secret: str | None) -> None:
    s = Settings(database_url="postgresql+psycopg://nobody:x@127.0.0.1:1/none", mode="production",
                 secret_key=secret, state_dir=tmp_path)
    with pytest.raises(web_auth.AuthConfigError, match="SITROOM_SECRET_KEY"):
        web_auth.install_auth(create_app(s), s)


def test_production_refuses_demo_passwords(db_url: str, engine: Engine, tmp_path: Path) -> None:
    s = Settings(database_url=db_url, mode="production", secret_key=SECRET, state_dir=tmp_path)
    with engine.begin() as conn:
        made = auth.ensure_demo_accounts(conn)
    try:
        with pytest.raises(web_auth.AuthConfigError, match="sitroom users passwd") as e:
            web_auth.check_production(s)
        assert all(name in str(e.value) for name in made)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(User).where(User.username.in_(list(made))))
    web_auth.check_production(s)  # now it starts


def test_development_generates_one_secret_kept_private_in_the_state_dir(tmp_path: Path) -> None:
    s = Settings(mode="development", state_dir=tmp_path / "state")
    first = web_auth.resolve_secret_key(s)
    assert len(first) >= web_auth.MIN_SECRET_CHARS and web_auth.resolve_secret_key(s) == first
    path = tmp_path / "state" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert web_auth.resolve_secret_key(Settings(mode="development", state_dir=tmp_path / "other")) != first


def test_development_allows_anonymous_reads_but_not_writes(db_url: str, tmp_path: Path) -> None:
    c = _app(db_url, tmp_path, mode="development", secret_key=None).test_client()
    assert c.get("/wall").status_code == 200 and c.get(f"{API_PREFIX}/layers").status_code == 200
    assert c.post(f"{API_PREFIX}/analysis/buffer", json=BUFFER).status_code == 401


# --- headers --------------------------------------------------------------------------------------------------------

def test_security_headers_on_pages_api_and_login(server: Any, db_url: str, tmp_path: Path) -> None:
    c = server.test_client()
    for path in ("/login", f"{API_PREFIX}/health", "/wall"):
        h = c.get(path).headers
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
        assert re.search(r"script-src 'self' 'unsafe-eval'( 'sha256-[A-Za-z0-9+/=]+')+;", csp), csp
        assert "openstreetmap" not in csp  # offline basemap: no tile host
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer"
    osm = _app(db_url, tmp_path, basemap="osm").test_client()
    img = [d for d in osm.get("/login").headers["Content-Security-Policy"].split("; ") if d.startswith("img-src")]
    assert img == ["img-src 'self' data: blob: https://tile.openstreetmap.org"]
    session_cookie = [v for v in server.test_client().get("/login").headers.getlist("Set-Cookie") if v.startswith("sitroom_session=")]
    assert session_cookie and "HttpOnly" in session_cookie[0] and "SameSite=Lax" in session_cookie[0]


def test_admin_page_lists_changes_users_and_tokens_for_admins_only(server: Any, accounts: dict[str, str]) -> None:
    from dashboards.pages import admin

    c = server.test_client()
    login(c, "t_admin")
    with server.test_request_context("/admin", headers={"Cookie": f"sitroom_session="
                                                                  f"{c.get_cookie(web_auth.SESSION_COOKIE).value}"}):
        server.preprocess_request()
        page = str(admin.layout(lang="en"))
    assert "t_analyst" in page and "t-feed-incidents" in page and "Signed in as t_admin" in page
    assert accounts["incidents"] not in page  # never the secret
    analyst = server.test_client()
    login(analyst, "t_analyst")
    with server.test_request_context("/admin", headers={"Cookie": f"sitroom_session="
                                                                  f"{analyst.get_cookie(web_auth.SESSION_COOKIE).value}"}):
        server.preprocess_request()
        page = str(admin.layout(lang="en"))
    assert "t-feed-incidents" not in page and "Access denied" in page


# --- the command line -----------------------------------------------------------------------------------------------

def test_users_and_token_commands(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dashboards.cli import main
    from layers.store.settings import get_settings

    monkeypatch.setenv("SITROOM_DATABASE_URL", db_url)
    get_settings.cache_clear()
    run = CliRunner().invoke
    try:
        r = run(main, ["users", "add", "t_cli", "--role", "planner", "--name", "王芳", "--password-stdin"],
                input="cli-password-1\n")
        assert r.exit_code == 0, r.output
        assert run(main, ["users", "passwd", "t_cli", "--password-stdin"], input="cli-password-2\n").exit_code == 0
        with engine.connect() as conn:
            assert auth.verify_password(conn, "t_cli", "cli-password-2").role == "planner"
        assert run(main, ["users", "disable", "t_cli"]).exit_code == 0
        listed = run(main, ["users", "list"]).output
        assert re.search(r"t_cli\s+planner\s+disabled\s+王芳", listed), listed
        r = run(main, ["users", "add", "t_cli2", "--role", "analyst", "--password-stdin"], input="short\n")
        assert r.exit_code == 2 and "password" in r.output and "short" not in r.output
        r = run(main, ["token", "create", "t-cli-feed", "--layers", "incidents,hazards", "--access", "write"])
        assert r.exit_code == 0, r.output
        secret = r.stdout.strip()
        with engine.connect() as conn:
            assert auth.verify_token(conn, secret, touch=False).layers == ("hazards", "incidents")
        assert secret not in run(main, ["token", "list"]).output and "t-cli-feed" in run(main, ["token", "list"]).output
        assert run(main, ["token", "revoke", "t-cli-feed"]).exit_code == 0
        with engine.connect() as conn, pytest.raises(auth.AuthError):
            auth.verify_token(conn, secret)
        assert run(main, ["token", "revoke", "t-cli-feed"]).exit_code == 2
    finally:
        get_settings.cache_clear()
        from layers.store.db import reset_engines

        reset_engines()
        with engine.begin() as conn:
            conn.execute(delete(ApiToken).where(ApiToken.name == "t-cli-feed"))
            conn.execute(delete(User).where(User.username == "t_cli"))
