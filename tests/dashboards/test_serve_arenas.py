"""``sitroom serve`` caps glibc's malloc arenas (:func:`dashboards.commands.serve.limit_malloc_arenas`).

Each of a worker's 8 request threads otherwise gets an arena of its own, and each arena keeps the memory of the
largest request it served: with a million incidents that made the largest worker 566 MB RSS against the 500 MB of
issue 16. Measured in a fresh interpreter (the cap is read when the first thread arena is made): glibc's own
``malloc_stats()`` lists one ``Arena N:`` per arena.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "cap":
    from dashboards.commands.serve import limit_malloc_arenas
    assert limit_malloc_arenas()
def work():
    for _ in range(50):
        kept = [bytearray(1000) for _ in range(1000)]
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=120,
                         check=True)
    return sum(line.startswith("Arena ") for line in out.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_eight_threads_share_at_most_two_arenas() -> None:
    from dashboards.commands.serve import MALLOC_ARENAS

    assert _arenas("default") > MALLOC_ARENAS  # the probe does make arenas: the cap below is the cap's doing
    assert 1 <= _arenas("cap") <= MALLOC_ARENAS


def test_an_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards.commands.serve import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
