"""Issue 17 items 5, 6, 12, 15 and 17: sessions end for real, logins are throttled, production waits for its account
check, HTTPS behind a proxy gets Secure cookies and HSTS, anonymous readers see no account names.

Before: a cookie saved before logout still wrote (6); 6.8 wrong passwords a second were accepted and only logged at
INFO (12); production started with the database down and then let the demo admin in (5); the session cookie was never
``Secure`` and no HSTS was sent behind an HTTPS proxy (15); anonymous demo readers saw ``updated_by`` (17).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, text

from dashboards import auth as web_auth
from dashboards.app import create_app
from dashboards.i18n import t
from layers.store import auth
from layers.store.models import Incident, LoginFailure, User
from layers.store.settings import Settings

pytestmark = pytest.mark.db

SECRET = "Hs4-Xq9Lm2Vb7Kd0Pw5Zr8Tc1Ny6Gj3Fe_Ua"  # a fixed test key, random-looking
PASSWORD = "session-test-password"
BUFFER = {"geometry": {"type": "Point", "coordinates": [111.7, 40.8]}, "distances_m": [1000]}
NAMES = ("sess_analyst", "sess_throttle", "sess_demo")


@pytest.fixture(scope="module")
def users(engine: Engine) -> Iterator[None]:
    with engine.begin() as conn:
        for name in NAMES:
            auth.add_user(conn, name, PASSWORD, role="analyst")
    yield
    with engine.begin() as conn:
        conn.execute(delete(LoginFailure))
        conn.execute(delete(User).where(User.username.in_(NAMES)))


def _server(db_url: str, tmp_path: Path, **kw: Any) -> Any:
    s = Settings(**{"database_url": db_url, "state_dir": tmp_path, "mode": "production", "secret_key": SECRET, **kw})
    return create_app(s).server


def _login(c: Any, username: str, password: str = PASSWORD, **env: Any) -> Any:
    page = c.get("/login", **env).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    return c.post("/login", data={"username": username, "password": password, "csrf_token": csrf, "next": "/"},
                  **env)


def _replay(server: Any, cookie: str, csrf: str) -> int:
    """A new client that carries only a saved session cookie and CSRF token, and asks for an analysis (a POST)."""
    c = server.test_client()
    c.set_cookie(web_auth.SESSION_COOKIE, cookie)
    c.set_cookie(web_auth.CSRF_COOKIE, csrf)
    return c.post("/api/v1/analysis/buffer", json=BUFFER, headers={"X-CSRF-Token": csrf}).status_code


def _saved(c: Any) -> tuple[str, str]:
    return c.get_cookie(web_auth.SESSION_COOKIE).value, c.get_cookie(web_auth.CSRF_COOKIE).value


@pytest.mark.parametrize("ending", ["logout", "new password", "disabled"])
def test_a_saved_cookie_is_refused_once_its_session_has_ended(db_url: str, engine: Engine, users: None,
                                                             tmp_path: Path, ending: str) -> None:
    server = _server(db_url, tmp_path)
    c = server.test_client()
    assert _login(c, "sess_analyst").status_code == 303
    c.get("/")  # the CSRF cookie
    cookie, csrf = _saved(c)
    assert _replay(server, cookie, csrf) == 200
    try:
        if ending == "logout":
            assert c.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
        else:
            with engine.begin() as conn:
                if ending == "new password":
                    auth.set_password(conn, "sess_analyst", PASSWORD)  # even the same password ends the sessions
                else:
                    auth.set_disabled(conn, "sess_analyst")
        assert _replay(server, cookie, csrf) == 401
    finally:
        with engine.begin() as conn:
            auth.set_disabled(conn, "sess_analyst", False)


def test_failed_logins_are_throttled_with_backoff_and_logged(db_url: str, users: None, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    server = _server(db_url, tmp_path)
    c = server.test_client()
    with caplog.at_level(logging.WARNING, logger="dashboards.auth"):
        statuses = [_login(c, "sess_throttle", "wrong-password").status_code for _ in range(5)]
    assert statuses[:auth.FREE_FAILURES["username"] + 1] == [401] * (auth.FREE_FAILURES["username"] + 1)
    assert statuses[-1] == 429
    assert sum("failed login for 'sess_throttle'" in r.getMessage() for r in caplog.records) >= 4
    r = _login(c, "sess_throttle")  # the right password, still within the backoff: not even checked
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_production_waits_for_its_account_check(db_url: str, engine: Engine, users: None, tmp_path: Path) -> None:
    down = _server("postgresql+psycopg://nobody:x@127.0.0.1:1/none", tmp_path)  # starts: the database is down
    r = _login(down.test_client(), "sess_demo")
    assert r.status_code == 503 and escape(t("auth.login.unchecked", "zh-CN")) in r.get_data(as_text=True)
    # the database is back, but an account still has a demo password: sign-in stays closed, naming it
    server = _server(db_url, tmp_path)
    server.config["SITROOM_ACCOUNTS_CHECKED"] = False  # as when the check could not run at start-up
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET demo_password = true WHERE username = 'sess_demo'"))
    try:
        r = _login(server.test_client(), "sess_demo")
        assert r.status_code == 503 and "sess_demo" in r.get_data(as_text=True)
    finally:
        with engine.begin() as conn:
            auth.set_password(conn, "sess_demo", PASSWORD)  # clears the demo flag
    assert _login(server.test_client(), "sess_demo").status_code == 303


def test_https_behind_a_trusted_proxy_gets_secure_cookies_and_hsts(db_url: str, users: None, tmp_path: Path) -> None:
    https = {"headers": {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}}
    server = _server(db_url, tmp_path, proxy_hops=1)
    c = server.test_client()
    r = _login(c, "sess_analyst", **https)
    cookies = [v for k, v in r.headers.items() if k == "Set-Cookie" and v.startswith(web_auth.SESSION_COOKIE)]
    assert cookies and all("Secure" in v for v in cookies)
    assert "max-age=" in r.headers["Strict-Transport-Security"]
    # plain HTTP, or a forwarded header from a proxy that is not trusted: neither
    plain = _login(_server(db_url, tmp_path).test_client(), "sess_analyst", **https)
    assert "Strict-Transport-Security" not in plain.headers
    assert all("Secure" not in v for k, v in plain.headers.items() if k == "Set-Cookie")


def test_anonymous_readers_do_not_see_account_names(db_url: str, engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        fid = conn.execute(insert(Incident).values(kind="fire", status="reported", source="sess-test",
                                                   updated_by="zhang.san", geom="SRID=4326;POINT(111.7 40.8)")
                           .returning(Incident.id)).scalar_one()
    try:
        demo = create_app(Settings(database_url=db_url, state_dir=tmp_path, mode="demo")).server.test_client()
        feats = demo.get("/api/v1/layers/incidents?limit=10000").get_json()["features"]
        mine = [f for f in feats if f["id"] == fid]
        assert mine and mine[0]["properties"]["updated_by"] is None
        hist = demo.get(f"/api/v1/history?layer=incidents&id={fid}").get_json()["history"]
        assert hist and all(h["changed_by"] is None for h in hist)
        assert "zhang.san" not in demo.get(f"/api/v1/history?layer=incidents&id={fid}").get_data(as_text=True)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(Incident).where(Incident.id == fid))
