"""Hypothesis profiles, and the doctest collection of the packages (``testpaths`` in ``pyproject.toml``).

Hypothesis: the ``ci`` profile (``derandomize=True``, no example database) is loaded when ``CI`` is set and by
``make test`` (``--hypothesis-profile=ci``), so that a run tests the same examples every time and a red build is
reproduced by running it again; otherwise the default profile draws new examples each run and keeps the failing
ones in ``.hypothesis/`` (git-ignored) to try first next time. Recent Hypothesis releases load a profile of that
name under CI by themselves; it is registered here all the same, so that its content does not depend on the
release. The root conftest is loaded whatever folder pytest is pointed at, so ``--hypothesis-profile`` always works.

A Dash page module registers itself when imported (``dash.register_page``), which Dash allows only once an app that
uses pages exists. The doctest collector imports ``dashboards/pages/*.py`` before any test has built the app, so an
empty one is made first; ``dashboards.app.create_app`` builds the real ones and runs the page modules again.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config: Any) -> None:
    import dash

    dash.Dash("sitroom-doctests", use_pages=True, pages_folder="")
