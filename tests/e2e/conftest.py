"""Browser tests: a real ``sitroom serve`` (gunicorn, 2 workers) on the test database, driven by Debian's chromium.

Fixtures
--------
live_server : str (session)
    Base URL (``http://127.0.0.1:<port>``) of ``sitroom serve`` started as a subprocess with
    ``SITROOM_DATABASE_URL`` = the ``db_url`` test database; waits for ``/api/v1/health`` and stops it at the end.
    Its log is ``live_server_log`` (printed when it fails to start).
browser_factory : callable (function)
    ``browser_factory(width=1920, height=1080)`` -> a new headless Chromium WebDriver (fresh profile each) whose
    viewport is exactly width x height CSS pixels;
    e.g. ``browser_factory(3840, 2160)`` for the wall. All are quit after the test.
browser : WebDriver (function)
    ``browser_factory()`` at 1920x1080.
severe_console_messages : callable
    ``severe_console_messages(driver)`` -> the browser console's SEVERE entries since the last call.

Chromium and chromedriver come from Debian (``/usr/bin/chromium``, ``/usr/bin/chromedriver``); without them the tests
are skipped, except under CI (``CI`` set), where they fail. When a test fails, a screenshot of every open browser is
saved to ``/tmp/sitroom-e2e-<test>-<n>.png``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SITROOM_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("SITROOM_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SERVER_START_TIMEOUT_S = 90.0
SCREENSHOT_DIR = Path("/tmp")
#: run by Debian's python3 (which has QGIS), not imported by pytest
collect_ignore = ["qgis_client.py"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sitroom_command() -> list[str]:
    exe = Path(sys.executable).with_name("sitroom")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from dashboards.cli import main; main()"]


def _health(base_url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{base_url}/api/v1/health", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


@pytest.fixture(scope="session")
def live_server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live_server") / "sitroom-serve.log"


#: tries of :func:`serving` when another process takes the chosen port between its choice and gunicorn's bind
SERVE_TRIES = 5


def _listening(log_path: Path, port: int) -> bool:
    """gunicorn of this run said it listens on ``port`` (so /health answers from it, not from another process)."""
    return f"Listening at: http://127.0.0.1:{port} " in log_path.read_text(errors="replace")


def _address_taken(log_path: Path) -> bool:
    return "Address already in use" in log_path.read_text(errors="replace")


@contextlib.contextmanager
def serving(url: str, log_path: Path, *, workers: int = 2, threads: int = 4, args: Sequence[str] = (),
            env: Mapping[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``sitroom serve`` (gunicorn) on a free 127.0.0.1 port against ``url`` (more options in ``args``, more
    environment in ``env``); yields its base URL once
    ``/api/v1/health`` answers 200 (the test fails with the log's tail if it does not) with the gunicorn master
    process, and stops it afterwards.

    The port is chosen free, closed, then bound by gunicorn: another process may take it in between (six test runs
    share this machine). So the server counts as up only when its own log says it listens on that port, and when it
    could not bind, it is started again on another port."""
    env = {**os.environ, "SITROOM_DATABASE_URL": url, "PYTHONUNBUFFERED": "1", **(env or {})}
    for attempt in range(SERVE_TRIES):
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        cmd = [*_sitroom_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--threads", str(threads), *args]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not (_listening(log_path, port) and _health(base_url) == 200):
            if _address_taken(log_path) and attempt + 1 < SERVE_TRIES:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop(proc)
                tail = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"`{' '.join(cmd)}` did not become healthy (exit code {proc.poll()}):\n{tail}")
            time.sleep(0.3)  # polling interval of the health check, not a wait for luck
        else:
            try:
                yield base_url, proc
            finally:
                _stop(proc)
            return
        _stop(proc)  # the port was taken: try another


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # SIGTERM: gunicorn stops its workers gracefully
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(db_url: str, live_server_log: Path) -> Iterator[str]:
    """``sitroom serve`` (gunicorn, 2 workers) on a free 127.0.0.1 port against the test database."""
    with serving(db_url, live_server_log) as (base_url, _):
        yield base_url


def _require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.exists() and os.access(p, os.X_OK))]
    if missing:
        msg = f"{', '.join(missing)} not found: install Debian's chromium and chromium-driver"
        unavailable(msg)


@pytest.fixture
def browser_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Make headless Chromium drivers (fresh profile each); screenshots of all of them if the test fails."""
    _require_chromium()
    from selenium import webdriver

    drivers: list[Any] = []

    def make(width: int = 1920, height: int = 1080) -> Any:
        profile = tmp_path / f"chromium-profile-{len(drivers)}"
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER),
                                          log_output=str(tmp_path / f"chromedriver-{len(drivers)}.log"))
        driver = webdriver.Chrome(options=options, service=service)
        driver.set_page_load_timeout(60)
        # the window includes the (invisible) browser frame; make the page itself exactly width x height
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        drivers.append(driver)
        return driver

    try:
        yield make
    finally:
        failed = any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
                     for when in ("setup", "call"))
        name = re.sub(r"[^\w.-]+", "_", request.node.name)[:80]
        for n, driver in enumerate(drivers):
            if failed:
                shot = SCREENSHOT_DIR / f"sitroom-e2e-{name}-{n}.png"
                try:
                    driver.save_screenshot(str(shot))
                    print(f"screenshot of the failed test: {shot}")
                except Exception as e:  # noqa: BLE001 - a dead browser must not hide the real failure
                    print(f"no screenshot ({e})")
            driver.quit()


@pytest.fixture
def browser(browser_factory: Callable[..., Any]) -> Any:
    """A headless Chromium at 1920x1080 with a fresh profile (so the language starts at the default)."""
    return browser_factory(1920, 1080)


@pytest.fixture
def severe_console_messages() -> Callable[[Any], list[str]]:
    """``f(driver)`` -> SEVERE console entries (errors, failed requests) since the previous call."""

    def severe(driver: Any) -> list[str]:
        return [f"{e.get('source')}: {e.get('message')}" for e in driver.get_log("browser")
                if e.get("level") == "SEVERE"]

    return severe


# --- signing in (dashboards.auth) ---------------------------------------------------------------------------------
#
# Pages that need a role (/analyst: analyse, /planner: plan, /admin: admin) send an anonymous browser to /login.
# ``ensure_user(url, role)`` makes (or resets) the account ``e2e_<role>`` in the database at ``url`` and returns
# ``(username, password)``; ``log_in(driver, base, username, password, next_path)`` signs in through the login form
# and waits until the browser is on ``next_path``. The wall signs in as a ``display`` account, as the hall's does.
# ``api_token(engine)`` (tests/conftest.py) gives a token for calls a test makes with urllib.

E2E_PASSWORD = "e2e-password-"  # + role: at least 10 characters


def ensure_user(url: str, role: str) -> tuple[str, str]:
    """The account ``e2e_<role>`` (created, or its password reset) in the database at ``url``."""
    from sqlalchemy import create_engine, select

    from layers.store import auth
    from layers.store.models import User

    username, password = f"e2e_{role}", E2E_PASSWORD + role
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if conn.execute(select(User.id).where(User.username == username)).first() is None:
                auth.add_user(conn, username, password, role=role, display_name=f"{role} E2E")
            else:
                auth.set_password(conn, username, password)
                auth.set_disabled(conn, username, False)
    finally:
        engine.dispose()
    return username, password


def waiting(driver: Any, timeout: float, poll: float = 0.25) -> Any:
    """A ``WebDriverWait`` for the e2e tests: a Dash callback or a live push may redraw an element between the moment a
    condition finds it and the moment it reads it (StaleElementReferenceException); that is a reason to look again at
    the next poll, as Selenium's own expected conditions do, never a failure. ``timeout`` is a deadline, not a target."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=poll, ignored_exceptions=(StaleElementReferenceException,))


def click_found(driver: Any, find: Callable[[Any], Any], timeout: float = 90.0) -> Any:
    """Click what ``find`` returns (None: not there yet), looking again if a redraw (a live change) replaced it between
    finding and clicking; returns what was clicked."""
    def attempt(d: Any) -> Any:
        el = find(d)
        if el is not None:
            el.click()
        return el

    return waiting(driver, timeout).until(attempt)


#: a deadline, not a target: the first page of a fresh worker on one busy core may take long; sign-in speed is not
#: what these tests measure
LOGIN_WAIT_S = 90


def log_in(driver: Any, base: str, username: str, password: str, next_path: str = "/") -> None:
    """Sign in through the /login form, then wait until the browser is on ``next_path`` (path and query)."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login?next={quote(next_path, safe='/?=&')}")
    waiting(driver, LOGIN_WAIT_S).until(lambda d: d.find_elements(By.ID, "login-username"))
    driver.find_element(By.ID, "login-username").send_keys(username)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    waiting(driver, LOGIN_WAIT_S).until(lambda d: "/login" not in d.current_url)
    assert d_path(driver.current_url) == next_path, driver.current_url


def d_path(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture(scope="session")
def display_account(db_url: str) -> tuple[str, str]:
    """The wall's ``display`` account in the ``live_server`` database."""
    return ensure_user(db_url, "display")


@pytest.fixture(scope="session")
def live_token(engine: Any) -> str:
    """An API token of the ``live_server`` database that may write every layer (for urllib calls)."""
    from tests.conftest import api_token

    return api_token(engine)


def wait_painted(driver: Any, map_id: str, timeout: float = 60.0) -> None:
    """Until the map ``map_id`` has stopped moving and every basemap tile it shows has loaded: what a screenshot or a
    check of the painted map waits for, instead of a guessed pause. A tile that failed counts as settled (Leaflet
    marks it ``leaflet-tile-loaded`` only on success; ``complete`` is true either way)."""
    js = f"""const el = document.getElementById({map_id!r});
        const m = el && window.sitroomMaps && window.sitroomMaps.maps[{map_id!r}];
        if (!m || m._animatingZoom || (m._panAnim && m._panAnim._inProgress)) return false;
        const tiles = Array.from(el.querySelectorAll('img.leaflet-tile'));
        return tiles.every(t => t.complete);"""
    waiting(driver, timeout).until(lambda d: d.execute_script(js))
