"""The command API over HTTP against a real PostGIS: who may dispatch, fifty dispatchers racing for ten resources,
409s that name the winner or the allowed moves, suggestions in the order a brute-force geodesic ETA gives, plans,
the duty log's exports, and the command parts of the wall picture and the situation report.

The app commits, so everything runs on a database of its own (``<test db>_cmdapi``)."""

from __future__ import annotations

import csv
import io
import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pyproj import Geod
from sqlalchemy import Engine, create_engine, func, select, text

from dashboards import auth as web_auth
from dashboards.app import create_app
from dashboards.i18n import catalogue
from layers.command import plans
from layers.store import auth
from layers.store.models import Resource, Task
from layers.store.settings import Settings
from tests.command_scene import add_incident, add_resource
from tests.conftest import api_token, authorize, drop_database, sibling_database
from tests.dashboards.test_auth import csrf_of, login

pytestmark = pytest.mark.db

SECRET = "c" * 16 + "-command-api-test-secret-long-enough-" + "z" * 8
GEOD = Geod(ellps="WGS84")
ETA = {"eta_detour_factor": 1.25, "eta_speed_kmh": {"rescue_team": 48.0, "ambulance": 64.0, "helicopter": 200.0}}
USERS = {"c_viewer": "viewer", "c_disp": "dispatcher"}
PASSWORD = "command-password-1"


@pytest.fixture(scope="module")
def env(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = sibling_database(db_url, "cmdapi")
    eng = create_engine(url, pool_size=10)
    with eng.begin() as c:
        plans.load_plans(c)
        for name, role in USERS.items():
            auth.add_user(c, name, PASSWORD, role=role)
    s = Settings(database_url=url, mode="production", secret_key=SECRET,
                 state_dir=tmp_path_factory.mktemp("cmd-state"), **ETA)
    server = create_app(s).server
    try:
        yield {"engine": eng, "server": server, "token": api_token(eng), "settings": s,
               "reader": api_token(eng, access="read"), "scoped": api_token(eng, layers=("incidents",))}
    finally:
        eng.dispose()
        drop_database(url)


def _client(env: dict[str, Any], token: str | None = None) -> Any:
    c = env["server"].test_client()
    return authorize(c, token) if token else c


def _fresh(eng: Engine, n_resources: int = 10, n_incidents: int = 5) -> tuple[list[int], list[int]]:
    with eng.begin() as c:
        c.execute(text("TRUNCATE tasks, plan_activations, resources, incidents, duty_log CASCADE"))
        rids = [add_resource(c, 111.0 + 0.05 * i, 40.5, name=f"队{i}") for i in range(n_resources)]  # type: ignore[arg-type]
        iids = [add_incident(c, 111.3 + 0.1 * j, 40.8, name=f"事件{j}") for j in range(n_incidents)]  # type: ignore[arg-type]
    return rids, iids


def test_dispatching_needs_the_dispatch_capability(env: dict[str, Any]) -> None:
    rids, iids = _fresh(env["engine"])
    body = {"resource_id": rids[0], "incident_id": iids[0]}
    viewer = _client(env)
    login(viewer, "c_viewer", PASSWORD)
    r = viewer.post("/api/v1/tasks", json=body, headers={"X-CSRF-Token": csrf_of(viewer)})
    assert r.status_code == 403 and "may not dispatch" in r.json["error"]["detail"]
    assert viewer.get("/api/v1/tasks").status_code == 200  # reading is for everyone signed in
    assert _client(env, env["reader"]).post("/api/v1/tasks", json=body).status_code == 403
    assert _client(env, env["scoped"]).post("/api/v1/tasks", json=body).status_code == 403
    disp = _client(env)
    login(disp, "c_disp", PASSWORD)
    assert disp.post("/api/v1/tasks", json=body).status_code == 403  # no CSRF token: refused
    r = disp.post("/api/v1/tasks", json=body, headers={"X-CSRF-Token": csrf_of(disp)})
    assert r.status_code == 201 and r.json["assigned_by"] == "c_disp"
    r = _client(env, env["token"]).post("/api/v1/tasks", json={"resource_id": rids[1], "incident_id": iids[0]})
    assert r.status_code == 201 and r.json["assigned_by"].startswith("token:")
    # duty officers also confirm or dismiss automatic warnings (issue 14's capability)
    assert set(web_auth.ROLE_CAPABILITIES["dispatcher"]) == {"read", "analyse", "dispatch", "warn"}
    assert "dispatch" in web_auth.ROLE_CAPABILITIES["admin"]


def test_fifty_concurrent_dispatches_of_ten_resources_give_ten_tasks_and_forty_409s(env: dict[str, Any]) -> None:
    rids, iids = _fresh(env["engine"])
    rng = random.Random(7)
    requests = [{"resource_id": rids[i % 10], "incident_id": rng.choice(iids)} for i in range(50)]
    rng.shuffle(requests)
    start = threading.Barrier(8)

    def run(chunk: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
        client = _client(env, env["token"])
        start.wait()
        return [(b["resource_id"], *(lambda r: (r.status_code, r.json))(client.post("/api/v1/tasks", json=b)))
                for b in chunk]

    with ThreadPoolExecutor(8) as pool:
        results = [x for part in pool.map(run, [requests[k::8] for k in range(8)]) for x in part]
    assert Counter(status for _, status, _ in results) == {201: 10, 409: 40}
    winner = {rid: body["id"] for rid, status, body in results if status == 201}
    assert sorted(winner) == sorted(rids)
    for rid, status, body in results:
        if status == 409:
            err = body["error"]
            assert err["code"] == "resource_busy" and err["field"] == "resource_id" and err["value"] == rid
            assert err["context"]["task"]["id"] == winner[rid] and f"task {winner[rid]}" in err["detail"]
            assert err["message"] == catalogue("zh-CN")["error.resource_busy"]
    with env["engine"].connect() as c:
        assert dict(c.execute(select(Task.resource_id, func.count()).group_by(Task.resource_id)).all()) == {
            rid: 1 for rid in rids}
        assert set(c.execute(select(Resource.status)).scalars()) == {"deployed"}


def test_illegal_moves_are_409_naming_the_allowed_ones_and_bad_input_names_the_field(env: dict[str, Any]) -> None:
    rids, iids = _fresh(env["engine"])
    c = _client(env, env["token"])
    tid = c.post("/api/v1/tasks", json={"resource_id": rids[0], "incident_id": iids[0]}).json["id"]
    r = c.patch(f"/api/v1/tasks/{tid}", json={"status": "completed"}, query_string={"lang": "en"})
    assert r.status_code == 409
    err = r.json["error"]
    assert (err["code"], err["field"], err["value"], err["allowed"]) == (
        "illegal_transition", "status", "completed", ["en_route", "cancelled"])
    assert err["context"] == {"task_id": tid, "from": "assigned"}
    assert err["message"] == catalogue("en")["error.illegal_transition"]
    for step in ("en_route", "on_scene", "completed"):
        assert c.patch(f"/api/v1/tasks/{tid}", json={"status": step}).status_code == 200
    r = c.patch(f"/api/v1/tasks/{tid}", json={"status": "en_route"})
    assert r.status_code == 409 and r.json["error"]["allowed"] is None  # nothing is allowed any more
    assert "the task is finished" in r.json["error"]["detail"]
    r = c.patch(f"/api/v1/tasks/{tid}", json={"status": "flying"})
    assert r.status_code == 400 and r.json["error"]["field"] == "status" and "en_route" in r.json["error"]["allowed"]
    assert c.patch("/api/v1/tasks/999999", json={"status": "en_route"}).status_code == 404
    r = c.post("/api/v1/tasks", json={"resource_id": rids[1]})
    assert r.status_code == 422 and r.json["error"]["field"] == "incident_id"
    r = c.post("/api/v1/tasks", json={"resource_id": rids[1], "incident_id": iids[0], "crew": 3})
    assert r.status_code == 400 and r.json["error"]["field"] == "crew"
    history = c.get(f"/api/v1/tasks/{tid}/history").json["states"]
    assert [h["status"] for h in history] == ["assigned", "en_route", "on_scene", "completed"]
    with env["engine"].connect() as conn:  # the refused requests changed nothing
        assert conn.execute(select(func.count()).select_from(Task)).scalar_one() == 1


def test_suggestions_follow_a_brute_force_geodesic_eta(env: dict[str, Any]) -> None:
    _fresh(env["engine"], n_resources=0, n_incidents=0)
    rng = random.Random(3)
    lon0, lat0 = 111.7, 46.5  # far north: planar degrees mis-order neighbours here
    with env["engine"].begin() as c:
        iid = add_incident(c, lon0, lat0, kind="rescue")  # type: ignore[arg-type]
        for _ in range(150):
            add_resource(c, lon0 + rng.uniform(-1.5, 1.5), lat0 + rng.uniform(-1.0, 1.0),  # type: ignore[arg-type]
                         kind=rng.choice(["rescue_team", "ambulance", "helicopter"]),
                         status=rng.choice(["available"] * 4 + ["deployed", "unavailable"]))
        rows = c.execute(select(Resource.id, Resource.kind, func.ST_X(Resource.geom), func.ST_Y(Resource.geom))
                         .where(Resource.status == "available")).all()
    k = 4
    r = _client(env, env["token"]).get(f"/api/v1/incidents/{iid}/suggestions", query_string={"k": k})
    assert r.status_code == 200
    got = r.json
    s: Settings = env["settings"]
    speed = {kind: s.eta_speed_kmh[kind] for kind in ("rescue_team", "ambulance", "helicopter")}
    detour = {kind: s.eta_detour_by_kind.get(kind, s.eta_detour_factor) for kind in speed}
    brute = []
    for rid, kind, lon, lat in rows:
        _, _, d = GEOD.inv(lon0, lat0, lon, lat)
        brute.append((d * detour[kind] / (speed[kind] / 3.6), d, rid, kind))
    expected = sorted(x for kind in speed for x in sorted(b for b in brute if b[3] == kind)[:k])
    assert got["kinds"] == ["rescue_team", "helicopter", "ambulance"]  # what a rescue needs, first choice first
    assert [x["id"] for x in got["suggestions"]] == [x[2] for x in expected]
    for row, (eta_s, d, _, kind) in zip(got["suggestions"], expected, strict=True):
        assert row["eta_s"] == pytest.approx(eta_s, rel=1e-9) and row["distance_m"] == pytest.approx(d, abs=1e-3)
        assert (row["speed_kmh"], row["detour_factor"]) == (speed[kind], detour[kind])
    assert got["eta"]["detour_factor"] == 1.25 and got["eta"]["speed_kmh"]["helicopter"] == 200.0
    assert got["eta"]["method"] == "geodesic_x_detour_over_speed"
    r = _client(env, env["token"]).get(f"/api/v1/incidents/{iid}/suggestions", query_string={"kind": "tank"})
    assert r.status_code == 400 and r.json["error"]["field"] == "kind"


def test_plans_over_http(env: dict[str, Any]) -> None:
    _fresh(env["engine"])
    c = _client(env, env["token"])
    r = c.post("/api/v1/plans/activations", json={"hazard_kind": "flood", "level": 4})
    assert r.status_code == 201
    act = r.json
    again = c.post("/api/v1/plans/activations", json={"hazard_kind": "flood", "level": 3})
    assert again.status_code == 409 and again.json["error"]["context"]["activation_id"] == act["id"]
    assert c.post("/api/v1/plans/activations", json={"hazard_kind": "flood", "level": 5}).status_code == 400
    up = c.patch(f"/api/v1/plans/activations/{act['id']}", json={"level": 3}).json
    assert up["level"] == 3 and up["roman"] == "Ⅲ"
    action = up["actions"][0]["id"]
    done = c.patch(f"/api/v1/plans/actions/{action}", json={"status": "done", "note": "已会商"}).json
    assert done["done"] == 1
    assert c.patch(f"/api/v1/plans/actions/{action}", json={"status": "done"}).status_code == 409
    assert c.patch(f"/api/v1/plans/activations/{act['id']}", json={"level": 2, "status": "closed"}).status_code == 400
    assert [a["id"] for a in c.get("/api/v1/plans/activations").json["activations"]] == [act["id"]]
    closed = c.patch(f"/api/v1/plans/activations/{act['id']}", json={"status": "closed"}).json
    assert closed["status"] == "closed" and c.get("/api/v1/plans/activations").json["activations"] == []
    assert len(c.get("/api/v1/plans", query_string={"hazard_kind": "earthquake"}).json["plans"]) == 4


def test_duty_log_filters_and_exports(env: dict[str, Any]) -> None:
    rids, iids = _fresh(env["engine"])
    c = _client(env, env["token"])
    tid = c.post("/api/v1/tasks", json={"resource_id": rids[0], "incident_id": iids[0]}).json["id"]
    c.patch(f"/api/v1/tasks/{tid}", json={"status": "en_route", "note": "沿G6高速"})
    r = c.post("/api/v1/duty-log", json={"text": "21:00 夜班交接完毕"})
    assert r.status_code == 201 and r.json["line"] == "21:00 夜班交接完毕"
    assert c.post("/api/v1/duty-log", json={"text": ""}).status_code == 400
    zh = c.get("/api/v1/duty-log", query_string={"kind": "task", "lang": "zh-CN"}).json["entries"]
    assert zh[0]["line"] == f"队0出发（任务 #{tid}）（备注：沿G6高速）"
    en = c.get("/api/v1/duty-log", query_string={"q": "G6", "lang": "en"}).json["entries"]
    assert [e["line"] for e in en] == [f"队0 en route (task #{tid}) (note: 沿G6高速)"]
    r = c.get("/api/v1/duty-log", query_string={"format": "csv"})
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.data.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert table[0][:5] == ["id", "at", "author", "kind", "line"] and len(table) == 4  # header, dispatch, move, manual
    assert [row[3] for row in table[1:]] == ["dispatch", "task", "manual"]  # oldest first
    pdf = c.get("/api/v1/duty-log", query_string={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    bad = c.get("/api/v1/duty-log", query_string={"kind": "gossip"})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "kind"


def test_the_wall_picture_and_the_sitrep_carry_the_command_part(env: dict[str, Any]) -> None:
    rids, iids = _fresh(env["engine"])
    c = _client(env, env["token"])
    c.post("/api/v1/plans/activations", json={"hazard_kind": "flood", "level": 4})
    tid = c.post("/api/v1/tasks", json={"resource_id": rids[2], "incident_id": iids[1]}).json["id"]
    c.patch(f"/api/v1/tasks/{tid}", json={"status": "en_route"})
    snap = c.get("/api/v1/wall/snapshot", query_string={"lang": "zh-CN"}).json["command"]
    assert [r["banner"] for r in snap["responses"]] == ["自治区启动防汛Ⅳ级应急响应"]
    assert snap["tasks"] == {"assigned": 0, "en_route": 1, "on_scene": 0, "completed": 0, "cancelled": 0}
    [line] = snap["deployed"]
    assert (line["task_id"], line["lon"], line["lat"]) == (tid, pytest.approx(111.1), pytest.approx(40.5))
    assert (line["target_lon"], line["target_lat"]) == (pytest.approx(111.4), pytest.approx(40.8))
    en = c.get("/api/v1/wall/snapshot", query_string={"lang": "en"}).json["command"]
    assert en["responses"][0]["banner"] == "Autonomous Region: level Ⅳ flood-control emergency response in force"
    html = c.get("/api/v1/reports/sitrep", query_string={"format": "html", "lang": "zh-CN"}).get_data(as_text=True)
    assert "指挥调度与值班日志" in html and "自治区启动防汛Ⅳ级应急响应" in html
    assert f"队2出发（任务 #{tid}）" in html


def test_error_codes_of_conflicts_are_translated() -> None:
    for lang in ("zh-CN", "en"):
        for code in ("resource_busy", "illegal_transition", "activation_state"):
            assert catalogue(lang)[f"error.{code}"]



