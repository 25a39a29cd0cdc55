"""The /command page and the wall's command panel as plain functions: every write callback checks ``dispatch`` as
the API routes do, a viewer's panels have no buttons, refusals come back as the API's translated messages, the
page and panel survive a database that is down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine, create_engine, select, text

from dashboards.app import create_app
from dashboards.i18n import t
from layers.command import plans
from layers.store.models import Task
from layers.store.settings import Settings
from tests.command_scene import add_incident, add_resource
from tests.conftest import drop_database, sibling_database, signed_in

DOWN_URL = "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none"


def _buttons(component: Any) -> int:
    return json.dumps(component, default=lambda o: o.to_plotly_json()).count('"sr-cmd-btn')


@pytest.fixture(scope="module")
def env(db_url: str) -> Iterator[dict[str, Any]]:
    url = sibling_database(db_url, "cmdpage")
    eng = create_engine(url)
    with eng.begin() as c:
        plans.load_plans(c)
        iid = add_incident(c, 111.7, 40.8, kind="fire", name="页面测试火灾")  # type: ignore[arg-type]
        rids = [add_resource(c, 111.8, 40.8, kind="fire_engine", name="一号车"),  # type: ignore[arg-type]
                add_resource(c, 111.9, 40.8, kind="fire_engine", name="二号车")]  # type: ignore[arg-type]
    app = create_app(Settings(database_url=url))
    try:
        yield {"engine": eng, "app": app, "incident": iid, "resources": rids}
    finally:
        eng.dispose()
        drop_database(url)


@pytest.mark.db
def test_writes_need_dispatch_and_refusals_are_the_apis(env: dict[str, Any]) -> None:
    from dashboards.pages import command as page

    eng: Engine = env["engine"]
    with env["app"].server.test_request_context("/command?lang=en"):
        for role in ("viewer", "display", "analyst", "planner"):
            with signed_in(role):
                assert page.perform("dispatch", "en", resource_id=env["resources"][0],
                                    incident_id=env["incident"]) == (t("auth.not_allowed", "en"), False)
                assert page.perform("activate", "en", hazard_kind="flood", level=4)[1] is False
        with eng.connect() as c:
            assert c.execute(select(Task.id)).first() is None
        with signed_in("dispatcher", "disp-page"):
            msg, ok = page.perform("dispatch", "en", resource_id=env["resources"][0], incident_id=env["incident"],
                                   note="关阀")
            assert ok and "一号车" in msg and "页面测试火灾" in msg
            msg, ok = page.perform("dispatch", "en", resource_id=env["resources"][0], incident_id=env["incident"])
            assert not ok and msg.startswith(t("error.resource_busy", "en")) and "already has active task" in msg
            tid = _task_of(eng, env["resources"][0])
            msg, ok = page.perform("move", "en", task_id=tid, status="completed")
            assert not ok and msg.startswith(t("error.illegal_transition", "en")) and "en_route" in msg
            assert page.perform("move", "en", task_id=tid, status="en_route")[1]
            assert page.perform("log", "en", text="")[1] is False
            assert page.perform("log", "en", text="交班")[1] is True
        with signed_in("admin"):  # admins dispatch too
            assert page.perform("activate", "en", hazard_kind="flood", level=4) == (
                "Autonomous Region: level Ⅳ flood-control emergency response in force", True)
    with eng.connect() as c:
        assert c.execute(select(Task.assigned_by, Task.status, Task.note)).one() == ("disp-page", "en_route", "关阀")


def _task_of(eng: Engine, rid: int) -> int:
    with eng.connect() as c:
        return int(c.execute(select(Task.id).where(Task.resource_id == rid)).scalar_one())


@pytest.mark.db
def test_a_viewer_gets_panels_without_buttons(env: dict[str, Any]) -> None:
    from dashboards.pages import command as page
    from dashboards.services import command

    with env["engine"].connect() as c:
        board = command.task_board(c)
        acts = plans.activations(c)
        sugg = command.suggest(c, env["incident"])
    assert _buttons(page.board_panel(board, "zh-CN", True)) > 0 and _buttons(page.plans_panel(acts, "zh-CN", True)) > 0
    assert _buttons(page.board_panel(board, "zh-CN", False)) == 0
    assert _buttons(page.plans_panel(acts, "zh-CN", False)) == 0
    assert _buttons(page.details_panel(sugg, "zh-CN", False)) == 0
    with env["app"].server.test_request_context("/command"):
        with signed_in("viewer"):
            assert _buttons(page.layout(lang="zh-CN")) == 0
        with signed_in("dispatcher"):
            assert _buttons(page.layout(lang="zh-CN")) == 2  # activate a plan, add to the log


def test_the_page_and_the_wall_panel_survive_a_database_that_is_down() -> None:
    app = create_app(Settings(database_url=DOWN_URL))
    assert app.server.test_client().get("/command").status_code == 200
    from dashboards.components import command_wall
    from dashboards.pages import command as page

    with app.server.test_request_context("/command?lang=en"), signed_in("dispatcher"):
        msg, ok = page.perform("dispatch", "en", resource_id=1, incident_id=1)
        assert not ok and msg.startswith(t("error.database_unavailable", "en"))
        with pytest.raises(PreventUpdate):
            command_wall.redraw({"heat": "incidents", "version": 1}, 5, None, None)
        with pytest.raises(PreventUpdate):
            command_wall.redraw(None, 5, None, None)


@pytest.mark.db
def test_the_wall_panel_draws_the_picture_it_shares_with_the_wall(env: dict[str, Any]) -> None:
    from dashboards.components import command_wall
    from dashboards.ids import wall_task_count
    from dashboards.services import command

    eng = env["engine"]
    with eng.begin() as c:
        c.execute(text("TRUNCATE tasks, plan_activations CASCADE"))
        c.execute(text("UPDATE resources SET status = 'available'"))
    task = command.dispatch(eng, resource_id=env["resources"][1], incident_id=env["incident"], user="w")
    command.move_task(eng, task["id"], "en_route", user="w")
    command.activate_plan(eng, user="w", hazard_kind="flood", level=4)
    with env["app"].server.test_request_context("/wall?lang=zh-CN"):
        banners, panel, lines, state = command_wall.redraw({"heat": "incidents", "version": 1}, 5, None, None)
    assert state["responses"] == ["自治区启动防汛Ⅳ级应急响应"]
    assert state["tasks"]["en_route"] == 1 and state["deployed"] == 1
    assert [b.children for b in banners] == ["自治区启动防汛Ⅳ级应急响应"]
    assert len(lines) == 2  # a line and a dot
    shown = json.dumps(panel, default=lambda o: o.to_plotly_json())
    assert wall_task_count("en_route") in shown
