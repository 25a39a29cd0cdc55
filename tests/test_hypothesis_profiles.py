"""Hypothesis under CI and ``make test`` tests the same examples every run; a local run keeps its example database.

Each check runs a small property in a fresh interpreter that imports the root ``conftest.py`` (where the profiles
live), with and without ``CI``, and compares the examples it drew.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DRAW = """
import sys
import conftest  # registers the profiles; loads "ci" when CI is set
from hypothesis import given, settings, strategies as st

if sys.argv[1:] == ["--hypothesis-profile=ci"]:
    settings.load_profile("ci")  # what Hypothesis' pytest plugin does with that option

seen = []

@settings(max_examples=25)  # a test's own settings keep the profile's derandomize and database
@given(st.integers(-10**9, 10**9), st.floats(-1e6, 1e6))
def probe(i, f):
    seen.append((i, f))

probe()
print(repr(seen))
print("derandomize", settings.default.derandomize, "database", settings.default.database)
"""


def _draw(ci: bool, *args: str) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    p = subprocess.run([sys.executable, "-c", DRAW, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    examples, profile = p.stdout.strip().splitlines()
    return examples, profile


@pytest.mark.parametrize(("ci", "args"), [(True, ()), (False, ("--hypothesis-profile=ci",))],
                         ids=["CI-set", "make-test"])
def test_ci_draws_the_same_examples_every_run_and_keeps_no_database(ci: bool, args: tuple[str, ...]) -> None:
    first, profile = _draw(ci, *args)
    second, _ = _draw(ci, *args)
    assert first == second
    assert profile == "derandomize True database None"


def test_a_local_run_keeps_its_examples_in_the_git_ignored_folder() -> None:
    _, profile = _draw(ci=False)
    assert profile.startswith("derandomize False database DirectoryBasedExampleDatabase")
    assert ".hypothesis" in profile
    assert ".hypothesis/" in (ROOT / ".gitignore").read_text().splitlines()


def test_make_test_uses_the_ci_profile() -> None:
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None
    pytest_lines = [line for line in recipe.group(1).splitlines() if "pytest" in line]
    assert pytest_lines and all("--hypothesis-profile=ci" in line for line in pytest_lines)
