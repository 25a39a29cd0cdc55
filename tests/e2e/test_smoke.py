"""Smoke: the home page in headless Chromium, in Chinese, then in English through the visible language switch."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from dashboards import ids
from dashboards.i18n import t
from layers.models import FEATURE_MODELS

pytestmark = [pytest.mark.browser, pytest.mark.db]

WAIT_S = 60  # generous: the 2-core machine is shared with other test runs; speed is measured in bench/


def _text_is(element_id: str, text: str):
    return ec.text_to_be_present_in_element((By.ID, element_id), text)


def test_home_page_in_chinese_then_english(live_server, browser, severe_console_messages) -> None:
    started = time.perf_counter()
    browser.get(live_server + "/")
    wait = WebDriverWait(browser, WAIT_S)
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
