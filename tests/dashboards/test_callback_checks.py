"""The leader's, the wall's and the monitoring page's data callbacks check the role themselves, as their API routes do.

The callback policy (``dashboards.auth.CALLBACK_POLICY``, audited over HTTP by ``test_callback_policy.py``) refuses a
request before any callback runs; these checks cover a call that does not come through it (a callback registered
under another first output, a call from the server's own code). Called directly here, in production mode: anonymous
and a token for one layer are refused as ``GET /analysis/risk`` and ``GET /wall/snapshot`` refuse them; a viewer
gets the data.
"""

from __future__ import annotations

from typing import Any

import pytest
from dash import no_update
from dash.exceptions import PreventUpdate
from flask import g

from dashboards import ids
from dashboards.app import create_app
from dashboards.i18n import t
from layers.store.auth import Principal
from layers.store.settings import Settings

pytestmark = pytest.mark.db

SECRET = "Qk3mW8-zTr5Ny1Hd6UsLe9Pa2Gm4Fc7Vb0Xo_Ji"  # a fixed test key, random-looking
WHO = {"anonymous": None,
       "token:shelters-read": Principal(kind="token", name="one-layer", layers=("shelters",), access="read"),
       "viewer": Principal(kind="user", name="pytest-viewer", role="viewer")}
WEIGHTS = (None,) * 6  # the six sliders (dashboards.pages.leader.WEIGHT_NAMES): None keeps the defaults


@pytest.fixture(scope="module")
def app(demo_db: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Production mode on the demo (regions, population, the drill): the viewer's answers carry figures."""
    return create_app(Settings(database_url=demo_db.url, mode="production", secret_key=SECRET,
                               state_dir=tmp_path_factory.mktemp("cbchecks")))


def _as(app: Any, path: str, who: str) -> Any:
    ctx = app.server.test_request_context(f"{path}?lang=en")
    ctx.push()
    g.sitroom_principal = WHO[who]
    return ctx


@pytest.mark.parametrize("who", ["anonymous", "token:shelters-read"])
def test_the_leader_and_the_wall_refuse_who_their_routes_refuse(app: Any, who: str) -> None:
    from dashboards.components import command_wall
    from dashboards.pages import leader, monitor, wall

    refused = t("auth.not_allowed", "en")
    ctx = _as(app, "/leader", who)
    try:
        out = leader.update("county", None, *WEIGHTS, "en")
        assert out[4] == refused and out[:4] == (no_update,) * 4 and out[5] is no_update
        assert leader.detail(12, [[40.0, 110.0], [41.0, 112.0]], "county", None, *WEIGHTS, "en") == []
        values = dict(zip([(str(o.component_id), o.component_property) for o in wall.refresh_outputs()],
                          wall.refresh({"ok": True, "refresh": 1}, "incidents", 7, None, None), strict=True))
        assert values[(ids.WALL_ALERT, "children")] == refused
        assert values[(ids.WALL_KPI_INCIDENTS, "children")] is no_update  # no figure leaves the server
        with pytest.raises(PreventUpdate):
            command_wall.redraw({"ok": True, "heat": "incidents"}, 7, None, None)
        with pytest.raises(PreventUpdate):
            monitor.refresh(None, None)
        with pytest.raises(PreventUpdate):
            monitor.refresh_warnings(None, None, None, None)
        assert monitor.plot("ST-ANY", None, None) == (no_update, refused)
    finally:
        ctx.pop()


def test_a_viewer_gets_the_data(app: Any) -> None:
    from dashboards.pages import leader, monitor, wall

    refused = t("auth.not_allowed", "en")
    ctx = _as(app, "/leader", "viewer")
    try:
        out = leader.update("county", None, *WEIGHTS, "en")
        assert out[4] != refused and out[2] is not no_update
        values = dict(zip([(str(o.component_id), o.component_property) for o in wall.refresh_outputs()],
                          wall.refresh({"ok": True, "refresh": 1}, "incidents", 7, None, None), strict=True))
        assert values[(ids.WALL_ALERT, "children")] != refused
        assert values[(ids.WALL_KPI_INCIDENTS, "children")] is not no_update
        assert len(monitor.refresh(None, None)) == 7  # stations, summary, anomalies, options, badge
        assert len(monitor.refresh_warnings(None, None, None, None)) == 3  # warning areas, queue, "drawn"
        assert monitor.plot("ST-NONE", None, None)[1] != refused  # reaches the store (which names the unknown code)
    finally:
        ctx.pop()
