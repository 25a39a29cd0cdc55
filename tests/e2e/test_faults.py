"""Faults: the database restarts under traffic, an import is killed during COPY, a gunicorn worker is killed.

Everything runs on a private PostgreSQL cluster of this module's own (``layers.store.cluster`` with a temporary state
dir), so restarting it disturbs no other test, with ``sitroom serve`` (gunicorn, 2 workers) on it:

- database restart mid-traffic: while clients poll ``/api/v1/health`` and ``/api/v1/wall/version``, the cluster
  stops and starts again; during the outage the server answers 503 JSON (never a 500, never a dropped connection)
  and, without being restarted, answers 200 again within seconds of the database's return;
- ``sitroom import`` killed with SIGKILL while its COPY runs (seen in ``pg_stat_activity``): no row of it is
  stored, the layer and the history are as before;
- a gunicorn worker killed with SIGKILL right after a write was acknowledged: the write is in the store, and the
  server (a new worker) keeps serving.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from layers.store import auth, cluster
from layers.store.db import migrate
from tests.conftest import unavailable
from tests.e2e.conftest import serving

pytestmark = [pytest.mark.db, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    state = tmp_path_factory.mktemp("fault-cluster")
    os.chmod(state, 0o755)
    try:
        info = cluster.up(state)
    except Exception as e:  # noqa: BLE001 - no PostgreSQL binaries: same rule as the other db tests
        unavailable(f"cannot start a private cluster: {e}")
    migrate(info.url)
    try:
        yield state, info.url
    finally:
        cluster.down(state)
        data = cluster._data_dir(cluster._cluster_dir(state))
        shutil.rmtree(data.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def server(own_cluster: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, str]]:
    _, url = own_cluster
    eng = create_engine(url)
    with eng.begin() as c:
        secret = auth.create_token(c, "faults", layers=["*"], access="write", created_by="pytest")
    eng.dispose()
    with serving(url, tmp_path_factory.mktemp("faults") / "serve.log") as (base, proc):
        yield base, proc, secret


def test_database_restart_mid_traffic(own_cluster: tuple[Path, str], server: tuple[str, Any, str]) -> None:
    state, _ = own_cluster
    base, proc, _ = server
    seen: list[tuple[float, str, int | str]] = []
    stop = threading.Event()

    def poll(path: str) -> None:
        s = requests.Session()
        while not stop.is_set():
            try:
                code: int | str = s.get(f"{base}{path}", timeout=15).status_code
            except requests.RequestException as e:
                code = type(e).__name__
            seen.append((time.monotonic(), path, code))
            time.sleep(0.1)

    threads = [threading.Thread(target=poll, args=(p,)) for p in ("/api/v1/health", "/api/v1/wall/version")]
    def wait_seen(code: int, after: float) -> None:  # both paths have answered ``code`` since ``after``
        deadline = time.monotonic() + 60
        while {p for when, p, c in list(seen) if c == code and when > after} != {"/api/v1/health",
                                                                                 "/api/v1/wall/version"}:
            assert time.monotonic() < deadline, f"no {code} on both paths within 60 s: {seen[-10:]}"
            time.sleep(0.1)  # polling interval, not a wait for luck

    for t in threads:
        t.start()
    wait_seen(200, 0.0)
    cluster.down(state)
    down_at = time.monotonic()
    wait_seen(503, down_at + 0.5)  # the outage is answered on both paths before the database comes back
    cluster.up(state)
    up_at = time.monotonic()
    recovered = None
    while time.monotonic() < up_at + 30:
        if requests.get(f"{base}/api/v1/wall/version", timeout=15).status_code == 200:
            recovered = time.monotonic() - up_at
            break
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert proc.poll() is None, "the server died"
    codes = {c for _, _, c in seen}
    during = {c for when, _, c in seen if down_at + 0.5 < when < up_at}
    assert 503 in during, during  # the outage was seen, and answered with 503
    assert codes <= {200, 503}, codes  # never a 500, never a refused or dropped connection
    assert recovered is not None and recovered < 15, recovered
    r = requests.get(f"{base}/api/v1/health", timeout=15)
    assert r.status_code == 200


def test_killed_import_leaves_nothing(own_cluster: tuple[Path, str], tmp_path: Path) -> None:
    _, url = own_cluster
    n = 200_000
    big = tmp_path / "big.csv"
    with big.open("w") as f:
        f.write("id,name,kind,status,lon,lat\n")
        for i in range(n):
            f.write(f"k{i},killed {i},fire,reported,{111 + (i % 1000) / 1000:.4f},{40 + (i // 1000) / 1000:.4f}\n")
    eng = create_engine(url)

    def counts() -> tuple[int, int]:
        with eng.connect() as c:
            return (int(c.execute(text("SELECT count(*) FROM incidents")).scalar_one()),
                    int(c.execute(text("SELECT count(*) FROM feature_history")).scalar_one()))

    before = counts()
    exe = Path(sys.executable).with_name("sitroom")
    proc = subprocess.Popen([str(exe), "import", "incidents", str(big), "--source", "killed"],
                            env={**os.environ, "SITROOM_DATABASE_URL": url}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    copying = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with eng.connect() as c:
                copying = bool(c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY%' "
                                              "AND state = 'active'")).scalar_one())
            if copying:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert copying, "the import finished before its COPY was seen: make the file bigger"
    # the server notices the dropped connection, rolls back and ends the backend that ran the COPY
    deadline = time.monotonic() + 60
    while True:
        with eng.connect() as c:
            left = c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY%' "
                                  "AND pid <> pg_backend_pid()")).scalar_one()
        if not left:
            break
        assert time.monotonic() < deadline, "the killed import's backend is still there after 60 s"
        time.sleep(0.1)  # polling interval
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM incidents WHERE source = 'killed'")).scalar_one() == 0
    assert counts() == before
    eng.dispose()


def _workers(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_worker_crash_loses_no_committed_write(own_cluster: tuple[Path, str], server: tuple[str, Any, str]) -> None:
    _, url = own_cluster
    base, proc, secret = server
    h = {"Authorization": f"Bearer {secret}"}
    ids = []
    for i in range(10):
        r = requests.post(f"{base}/api/v1/layers/incidents", params={"source": "crash"}, headers=h, timeout=30,
                          json={"type": "Feature", "id": f"c{i}", "properties": {"kind": "fire", "status": "reported"},
                                "geometry": {"type": "Point", "coordinates": [111.7, 40.8 + i / 100]}})
        assert r.status_code == 200, r.text
        ids.append(r.json()["ids"][0])
        if i == 4:
            for pid in _workers(proc.pid):
                os.kill(pid, signal.SIGKILL)  # every worker: whichever served the write is gone
    eng = create_engine(url)
    with eng.connect() as c:
        stored = set(c.execute(text("SELECT id FROM incidents WHERE source = 'crash'")).scalars())
    eng.dispose()
    assert stored == set(ids)
    assert proc.poll() is None
    assert requests.get(f"{base}/api/v1/health", timeout=30).status_code == 200
