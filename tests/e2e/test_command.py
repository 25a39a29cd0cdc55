"""Command and dispatch in headless Chromium against ``sitroom serve``: a dispatcher picks an incident on
``/command``, dispatches the first suggested resource, sees the task on the board and on the wall (a second browser
signed in as the wall), activates the flood plan and checks an action; a viewer sees no buttons and the API refuses
the viewer's dispatch. With ``SITROOM_SCREENSHOT_DIR`` set, ``command.png`` and ``wall-command.png`` are saved."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import create_engine, select, text

from dashboards import ids
from layers.command import plans
from layers.store.models import ActivationAction, Resource, Task
from tests.command_scene import add_incident, add_resource
from tests.conftest import drop_database, sibling_database
from tests.e2e.conftest import click_found, ensure_user, log_in, serving, wait_painted, waiting

pytestmark = [pytest.mark.browser, pytest.mark.db]

WAIT_S = 60  # generous: the machine is shared; speed is measured in bench/bench_dispatch.py
NAME = "【E2E】化工园区泄漏"


@pytest.fixture(scope="module")
def command_db(db_url: str) -> Iterator[str]:
    """A database of this module's own: the duty log is append-only, so the lines these tests write could never be
    taken back out of the shared test database (the duty-log tests would read them)."""
    url = sibling_database(db_url, "e2e_command")
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def command_server(command_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(command_db, tmp_path_factory.mktemp("command_server") / "serve.log") as (base, _):
        yield base


@pytest.fixture
def command_scene(command_db: str) -> Iterator[dict[str, Any]]:
    eng = create_engine(command_db)
    with eng.begin() as c:
        plans.load_plans(c)
        c.execute(text("UPDATE plan_activations SET status = 'closed' WHERE status = 'active'"))
        iid = add_incident(c, 108.5, 39.5, kind="chemical", severity="extraordinary", name=NAME)  # type: ignore[arg-type]
        rids = [add_resource(c, 108.5 + 0.05 * (i + 1), 39.5, kind=k, name=f"【E2E】{k}{i}")  # type: ignore[arg-type]
                for i, k in enumerate(("fire_engine", "rescue_team", "medical_team"))]
    yield {"engine": eng, "incident": iid, "resources": rids}
    with eng.begin() as c:
        c.execute(text("UPDATE plan_activations SET status = 'closed' WHERE status = 'active'"))
        c.execute(text("DELETE FROM resources WHERE source = 'cmd-test'"))
        c.execute(text("DELETE FROM incidents WHERE source = 'cmd-test'"))
    eng.dispose()


def _wait(driver: Any, cond: Any, timeout: float = WAIT_S) -> Any:
    return waiting(driver, timeout).until(cond)


def _shot(driver: Any, name: str, map_id: str) -> None:
    target = os.environ.get("SITROOM_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        wait_painted(driver, map_id)
        driver.save_screenshot(str(Path(target) / name))


# the readers below run inside _wait, which looks again when a redraw replaced what they read
def _text(driver: Any, element_id: str) -> str:
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else ""


def _class(driver: Any, element_id: str) -> str:
    found = driver.find_elements(By.ID, element_id)
    return (found[0].get_attribute("class") or "") if found else ""


def _cell(driver: Any, row: int, col: int) -> str | None:
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{ids.COMMAND_DETAILS} tbody tr")
    return rows[row].find_elements(By.TAG_NAME, "td")[col].text if len(rows) > row else None


def _first_open_action(driver: Any) -> str | None:
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{ids.COMMAND_PLANS} .sr-cmd-act-open")
    return rows[0].get_attribute("id") if rows else None


def test_a_dispatcher_dispatches_and_runs_a_plan_and_the_wall_shows_it(command_server: str, command_db: str,
                                                                      browser_factory: Any,
                                                                      command_scene: dict[str, Any]) -> None:
    eng = command_scene["engine"]
    user, password = ensure_user(command_db, "dispatcher")
    desk = browser_factory(1920, 1080)
    log_in(desk, command_server, user, password, "/command?lang=zh-CN")
    click_found(desk, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, ".sr-cmd-q") if NAME in e.text), None))
    _wait(desk, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.COMMAND_DETAILS} button.sr-cmd-btn"))
    first = _wait(desk, lambda d: _cell(d, 0, 1))
    assert first == "【E2E】fire_engine0"  # the nearest fire engine arrives first
    desk.find_element(By.ID, ids.COMMAND_NOTE).send_keys("关阀堵漏")
    click_found(desk, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.COMMAND_DETAILS} tbody tr button.sr-cmd-btn")[0])
    _wait(desk, lambda d: "已调派" in _text(d, ids.COMMAND_STATUS))
    with eng.connect() as c:
        task = c.execute(select(Task.id, Task.status, Task.assigned_by, Task.note, Task.resource_id)
                         .where(Task.incident_id == command_scene["incident"])).one()
        assert c.execute(select(Resource.status).where(Resource.id == task.resource_id)).scalar_one() == "deployed"
    assert (task.status, task.assigned_by, task.note) == ("assigned", user, "关阀堵漏")
    _wait(desk, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.command_board_column('assigned')} "
                                                           f"#command-task-{task.id}"))

    # the wall, signed in as the hall's display account, shows the task and then the response banner
    wall = browser_factory(1920, 1080)
    log_in(wall, command_server, *ensure_user(command_db, "display"), "/wall?lang=zh-CN")
    _wait(wall, lambda d: _text(d, ids.wall_task_count("assigned")) not in ("", "—", "0"))

    # a plan: activate flood Ⅳ (the defaults of the form), then check its first action
    desk.find_element(By.ID, ids.COMMAND_PLAN_ACTIVATE).click()
    _wait(desk, lambda d: "自治区启动防汛Ⅳ级应急响应" in _text(d, ids.COMMAND_PLANS))
    row_id = _wait(desk, _first_open_action)
    click_found(desk, lambda d: d.find_element(By.CSS_SELECTOR, f"#{row_id} button"))
    _wait(desk, lambda d: "sr-cmd-act-done" in _class(d, row_id))
    with eng.connect() as c:
        done = c.execute(select(ActivationAction.status, ActivationAction.done_by)
                         .where(ActivationAction.id == int(row_id.rsplit("-", 1)[1]))).one()
    assert tuple(done) == ("done", user)
    _wait(wall, lambda d: "自治区启动防汛Ⅳ级应急响应" in _text(d, ids.WALL_CMD_BANNERS))
    _shot(desk, "command.png", ids.COMMAND_MAP)
    _shot(wall, "wall-command.png", ids.WALL_MAP)


def test_a_viewer_sees_no_buttons_and_the_api_refuses(command_server: str, command_db: str, browser: Any,
                                                      command_scene: dict[str, Any]) -> None:
    user, password = ensure_user(command_db, "viewer")
    log_in(browser, command_server, user, password, "/command?lang=en")
    click_found(browser, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, ".sr-cmd-q") if NAME in e.text), None))
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.COMMAND_DETAILS} tbody tr"))
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.COMMAND_BOARD} .sr-cmd-col"))
    assert browser.find_elements(By.CSS_SELECTOR, "button.sr-cmd-btn") == []
    assert browser.find_elements(By.ID, ids.COMMAND_LOG_TEXT) == []
    assert browser.find_elements(By.ID, ids.COMMAND_PLAN_ACTIVATE) == []
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const csrf = (document.cookie.match(/_csrf_token=([^;]+)/) || [])[1] || '';"
        "fetch('/api/v1/tasks', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': "
        "'application/json', 'X-CSRF-Token': decodeURIComponent(csrf)}, body: JSON.stringify({resource_id: "
        f"{command_scene['resources'][0]}, incident_id: {command_scene['incident']}}})}})"
        ".then(r => done(r.status), () => done(-1));")
    assert status == 403
    with command_scene["engine"].connect() as c:
        assert c.execute(select(Task.id).where(Task.incident_id == command_scene["incident"])).first() is None
