"""The server: one Flask app carrying the Dash pages and the ``/api/v1`` HTTP API.

Public: :func:`create_app`, :func:`shell_layout`, ``server`` (the WSGI app for gunicorn, ``dashboards.app:server``,
built lazily from the settings on first access).

Everything is served from this machine: Dash's own JavaScript (``serve_locally``), ``dashboards/assets/`` and no
external stylesheet or script. The language of a request is ``?lang=``, else the ``sitroom_lang`` cookie (set here
whenever ``?lang=`` is given), else ``settings.language``. Database engines are created lazily, once per process
(``dashboards.context.db_engine``), so gunicorn workers never share a connection pool.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import dash
from dash import dcc, html
from flask import Flask, Response, request

from dashboards import ids
from dashboards.api import create_blueprint
from dashboards.auth import install_auth, user_badge
from dashboards.context import API_PREFIX
from dashboards.i18n import COOKIE, LANGUAGES, current_lang, normalize_lang, t
from dashboards.limits import install_limits
from dashboards.ogc import create_blueprint as create_ogc_blueprint
from dashboards.tiles import tiles_bp
from layers.store.settings import Settings, get_settings

PACKAGE_DIR = Path(__file__).resolve().parent
PAGES_DIR = PACKAGE_DIR / "pages"
ASSETS_DIR = PACKAGE_DIR / "assets"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600
_DASH_LOADING = re.compile(r'(<div class="_dash-loading">\s*)Loading\.\.\.')


class SitroomDash(dash.Dash):
    """Dash with a translated ``<title>`` and ``<html lang>`` per request."""

    def interpolate_index(self, **kwargs: Any) -> str:  # type: ignore[override]  # Dash passes keywords only
        kwargs["title"] = t("app.title")
        page = super().interpolate_index(**kwargs)
        page = _DASH_LOADING.sub(lambda m: m[1] + t("app.loading"), page, count=1)  # shown until React renders
        return page.replace("<html>", f'<html lang="{current_lang()}">', 1)


def _remember_language(response: Response) -> Response:
    """``?lang=xx`` on a page request sets the ``sitroom_lang`` cookie, so later requests keep the language."""
    lang = normalize_lang(request.args.get("lang"))
    if lang and not request.path.startswith(API_PREFIX):
        response.set_cookie(COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE_S, samesite="Lax", path="/")
    return response


def shell_layout() -> Any:
    """The frame of every page: title bar with the language switch, then the page (evaluated per request)."""
    lang = current_lang()
    switch = [
        html.A(t(f"lang.{'zh' if code == 'zh-CN' else code}"), id=ids.LANG_ZH if code == "zh-CN" else ids.LANG_EN,
               href=f"?lang={code}", lang=code, className="sr-lang-active" if code == lang else "sr-lang-option")
        for code in LANGUAGES
    ]
    return html.Div(className="sr-shell", lang=lang, children=[
        html.Header(id=ids.SHELL_HEADER, className="sr-header", children=[
            dcc.Link(t("app.title"), href="/", id=ids.SHELL_BRAND, className="sr-brand"),
            html.Nav(switch, id=ids.LANG_SWITCH, className="sr-lang", title=t("lang.switch")),
            user_badge(),
        ]),
        html.Main(dash.page_container, className="sr-main"),
    ])


def create_app(settings: Settings | None = None) -> dash.Dash:
    """Build the server: Flask with the ``/api/v1`` blueprint, and the Dash pages of ``dashboards/pages``.

    Parameters
    ----------
    settings : Settings, optional
        Default: the process-wide :func:`layers.store.settings.get_settings`. Views and callbacks read them with
        :func:`dashboards.context.settings`.

    Returns
    -------
    dash.Dash
        The Dash app; its Flask app is ``.server``.

    Notes
    -----
    Dash executes every page module when an app is built; their module-level ``@callback``s go to a process-wide
    list that this function hands to the new app at once (Dash's first-request set-up is run here), so building
    several apps in one process (tests) gives each its own callbacks.
    """
    s = settings or get_settings()
    server = Flask("dashboards", root_path=str(PACKAGE_DIR))
    server.config.update(
        SITROOM_SETTINGS=s,
        MAX_CONTENT_LENGTH=int(s.max_upload_mb * 1024 * 1024),
        JSON_AS_ASCII=False,
    )
    if s.secret_key:
        server.config["SECRET_KEY"] = s.secret_key
    server.register_blueprint(create_blueprint())
    server.register_blueprint(tiles_bp)  # offline basemap: /tiles/<basemap>/<z>/<x>/<y>.png
    server.register_blueprint(create_ogc_blueprint())  # OGC API - Features and Tiles: /ogc
    server.after_request(_remember_language)

    app = SitroomDash(
        "dashboards",
        server=server,  # type: ignore[arg-type]  # Dash takes a Flask app here; its annotation leaves it out
        use_pages=True,
        pages_folder=str(PAGES_DIR),
        assets_folder=str(ASSETS_DIR),
        serve_locally=True,
        external_stylesheets=[],
        external_scripts=[],
        suppress_callback_exceptions=True,
        title=t("app.title", s.language),
        update_title=None,  # type: ignore[arg-type]  # None: no "Updating..." flicker in an unattended wall's tab
        compress=False,
    )
    app.layout = shell_layout
    # Dash sets itself up (script registry, page router, callbacks) on its "first request", and not thread-safely:
    # with gthread workers a second thread could serve a script before the registry is filled (HTTP 500 on
    # /_dash-component-suites/...). Do that set-up now, before the app serves anything.
    with server.test_request_context("/"):
        server.preprocess_request()
    install_auth(app, s)  # after Dash's set-up above, which a refused anonymous request would skip
    install_limits(app)  # body size, vertex count, JSON depth and database time of every request
    return app


_wsgi_lock = threading.Lock()
_wsgi_app: Flask | None = None


def _wsgi() -> Flask:
    global _wsgi_app
    with _wsgi_lock:
        if _wsgi_app is None:
            _wsgi_app = create_app().server
        return _wsgi_app


def __getattr__(name: str) -> Any:
    # ``dashboards.app:server`` for gunicorn: built on first access, in the worker process, from the settings.
    if name == "server":
        return _wsgi()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
