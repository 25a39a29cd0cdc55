"""Doctest collection of the packages (``testpaths`` in ``pyproject.toml``).

A Dash page module registers itself when imported (``dash.register_page``), which Dash allows only once an app that
uses pages exists. The doctest collector imports ``dashboards/pages/*.py`` before any test has built the app, so an
empty one is made first; ``dashboards.app.create_app`` builds the real ones and runs the page modules again.
"""

from __future__ import annotations

from typing import Any


def pytest_configure(config: Any) -> None:
    import dash

    dash.Dash("sitroom-doctests", use_pages=True, pages_folder="")
