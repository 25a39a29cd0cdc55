"""Log in through the page in headless Chromium, see who is signed in, log out; the wall runs under CSP.

The server is the app with :func:`dashboards.auth.install_auth` applied, in production mode, served by werkzeug in a
thread on 127.0.0.1 (the session's ``live_server`` runs ``create_app`` as it is wired today).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, delete

from layers.store import auth
from layers.store.models import User
from tests.e2e.conftest import LOGIN_WAIT_S, waiting

pytestmark = pytest.mark.db

ADMIN = ("e2e_admin", "e2e-admin-password", "管理员 E2E")
WALL = ("e2e_wall", "e2e-wall-password")
SECRET = "e2e-Rk7Yp2Qm9Zw4Lt1Xs8Hv5Nc3Bf6Jd0Gu_Ea"  # a fixed test key, random-looking


@pytest.fixture(scope="module")
def auth_server(db_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from werkzeug.serving import make_server

    from dashboards.app import create_app
    from dashboards.auth import install_auth
    from layers.store.settings import Settings

    with engine.begin() as conn:
        auth.add_user(conn, ADMIN[0], ADMIN[1], role="admin", display_name=ADMIN[2])
        auth.add_user(conn, WALL[0], WALL[1], role="display")
    s = Settings(database_url=db_url, mode="production", secret_key=SECRET,
                 state_dir=tmp_path_factory.mktemp("state"))
    app = create_app(s)
    install_auth(app, s)
    httpd = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        with engine.begin() as conn:
            conn.execute(delete(User).where(User.username.in_([ADMIN[0], WALL[0]])))


def _log_in(driver: Any, base: str, user: str, password: str, next_path: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}{next_path}")  # not signed in: the server sends the browser to the login page
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "login-username").send_keys(user)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def _csp_violations(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "Refused to" in m]


def test_log_in_see_the_user_name_log_out(auth_server: str, browser: Any,
                                          severe_console_messages: Callable[[Any], list[str]]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    browser.get(f"{auth_server}/login?lang=en")  # the language cookie, then the login page in English
    _log_in(browser, auth_server, ADMIN[0], ADMIN[1], "/admin")
    wait = waiting(browser, LOGIN_WAIT_S)
    wait.until(ec.text_to_be_present_in_element((By.ID, "admin-status"), ADMIN[2]))
    assert browser.current_url.endswith("/admin")
    assert browser.find_element(By.ID, "auth-user").text == ADMIN[2]
    assert "Signed in as" in browser.find_element(By.ID, "admin-status").text
    assert ADMIN[0] in browser.find_element(By.ID, "admin-users").text
    assert _csp_violations(severe_console_messages(browser)) == []
    browser.find_element(By.ID, "auth-logout").click()
    wait.until(lambda d: "/login" in d.current_url)
    browser.get(f"{auth_server}/admin")
    assert "/login" in browser.current_url  # signed out for real


def test_wall_under_the_display_account_renders_without_csp_violations(
        auth_server: str, browser_factory: Callable[..., Any],
        severe_console_messages: Callable[[Any], list[str]]) -> None:
    from selenium.webdriver.common.by import By

    driver = browser_factory(1920, 1080)
    _log_in(driver, auth_server, WALL[0], WALL[1], "/wall")
    waiting(driver, LOGIN_WAIT_S).until(lambda d: d.current_url.endswith("/wall")
                                    and d.find_elements(By.CSS_SELECTOR, ".leaflet-container"))
    driver.refresh()  # a reload (or a restart of the server) keeps the wall signed in
    waiting(driver, LOGIN_WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-container"))
    assert driver.current_url.endswith("/wall")
    assert _csp_violations(severe_console_messages(driver)) == []
