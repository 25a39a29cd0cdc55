"""Smoke: the home page in headless Chromium, in Chinese, then in English through the visible language switch; and
`sitroom serve` starting without its database and recovering by itself when the database comes and goes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from dashboards import ids
from dashboards.i18n import t
from layers.store.models import FEATURE_MODELS
from tests.e2e.conftest import waiting

pytestmark = [pytest.mark.browser, pytest.mark.db]

WAIT_S = 60  # generous: the 2-core machine is shared with other test runs; speed is measured in bench/


def _text_is(element_id: str, text: str):
    return ec.text_to_be_present_in_element((By.ID, element_id), text)


def test_home_page_in_chinese_then_english(live_server, browser, severe_console_messages) -> None:
    started = time.perf_counter()
    browser.get(live_server + "/")
    wait = waiting(browser, WAIT_S)
    wait.until(_text_is(ids.HOME_TITLE, t("app.title", "zh-CN")))
    print(f"home page first render in headless Chromium: {time.perf_counter() - started:.2f} s")
    assert browser.find_element(By.ID, ids.HOME_TITLE).text == t("app.title", "zh-CN")
    assert browser.title == t("app.title", "zh-CN")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert browser.find_element(By.ID, ids.home_role_link("wall")).get_attribute("href").endswith("/wall")
    # the database is up: every layer shows a count
    for name in FEATURE_MODELS:
        assert browser.find_element(By.ID, ids.home_layer_count(name)).text.replace(",", "").isdigit()

    switch = browser.find_element(By.ID, ids.LANG_EN)
    assert switch.is_displayed() and switch.text == t("lang.en", "en")
    switch.click()
    wait.until(_text_is(ids.HOME_TITLE, t("app.title", "en")))
    assert browser.find_element(By.ID, ids.HOME_TITLE).text == t("app.title", "en")
    assert t("role.analyst.name", "en") in browser.find_element(By.ID, ids.home_role_link("analyst")).text
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    wait.until(lambda d: d.title == t("app.title", "en"))

    # the choice sticks (cookie) when the page is opened again without ?lang=
    browser.get(live_server + "/")
    wait.until(_text_is(ids.HOME_TITLE, t("app.title", "en")))
    browser.find_element(By.ID, ids.LANG_ZH).click()
    wait.until(_text_is(ids.HOME_TITLE, t("app.title", "zh-CN")))

    assert severe_console_messages(browser) == []


class _Relay:
    """A TCP relay 127.0.0.1:<port> -> the test PostGIS that can be cut and restored: a database that goes away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        lst = socket.create_server(("127.0.0.1", self.port))
        self._listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked in the other thread (Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for s in self._open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._open.clear()

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _health_status(base_url: str) -> int | None:
    try:
        with urllib.request.urlopen(base_url + "/api/v1/health", timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


def _wait_status(base_url: str, status: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := _health_status(base_url)) != status:
        assert time.monotonic() < deadline, f"health stayed {got}, expected {status}"
        time.sleep(0.5)


def test_server_starts_without_database_and_recovers_by_itself(db_url, tmp_path) -> None:
    """`sitroom serve` starts with the database down (503), turns 200 when it appears, 503/200 again on a cut."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    relay = _Relay((url.host or "127.0.0.1", int(url.port or 5432)))
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("sitroom")
    env = {**os.environ, "SITROOM_DATABASE_URL": relayed}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--workers", "1", "--threads", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_status(base, 503)  # up, without a database
        with urllib.request.urlopen(base + "/", timeout=10) as r:  # pages are served too
            assert r.status == 200
        relay.start()
        _wait_status(base, 200)  # the database appears: no restart needed
        relay.stop()
        _wait_status(base, 503)  # it goes away (pooled connections die)
        relay.start()
        _wait_status(base, 200)  # and comes back
    except AssertionError:
        print(log.read_text(errors="replace")[-3000:])
        raise
    finally:
        relay.stop()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
