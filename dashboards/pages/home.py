"""Home (``/``): the role views and the live feature count of every layer."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboards import ids
from dashboards.context import API_PREFIX, db_engine
from dashboards.errors import classify
from dashboards.i18n import current_lang, normalize_lang, t
from layers.read import queries

dash.register_page(__name__, path="/", name="home", order=0, title=lambda: t("app.title"))

#: role -> path of its view (the views are pages of their own)
ROLES: tuple[tuple[str, str], ...] = (
    ("wall", "/wall"),
    ("analyst", "/analyst"),
    ("planner", "/planner"),
    ("leader", "/leader"),
    ("monitor", "/monitor"),
    ("command", "/command"),
)


def _layer_counts() -> dict[str, int] | None:
    """Live counts per layer, or None when the database cannot be reached (the page then says so)."""
    try:
        with db_engine().connect() as conn:
            return queries.count_features(conn)
    except Exception as e:
        if classify(e)[0] == 503:
            return None
        raise


def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    roles = html.Ul(id=ids.HOME_ROLES, className="sr-roles", children=[
        html.Li(dcc.Link(href=path, id=ids.home_role_link(role), className="sr-role", children=[
            html.Span(t(f"role.{role}.name", lang), className="sr-role-name"),
            html.Span(t(f"role.{role}.desc", lang), className="sr-role-desc"),
        ]))
        for role, path in ROLES
    ])
    counts = _layer_counts()
    if counts is None:
        status = html.P(t("home.db_unavailable", lang), id=ids.HOME_DB_STATUS, className="sr-warning")
        table: Any = None
    else:
        status = html.P(t("home.db_ok", lang), id=ids.HOME_DB_STATUS, className="sr-ok")
        table = html.Table(className="sr-table", children=[
            html.Thead(html.Tr([html.Th(t("home.layer", lang)), html.Th(t("home.count", lang))])),
            html.Tbody([
                html.Tr([html.Td(t(f"layer.{name}", lang)),
                         html.Td(f"{n:,}", id=ids.home_layer_count(name), className="sr-num")])
                for name, n in counts.items()
            ]),
        ])
    return html.Div(className="sr-home", children=[
        html.H1(t("app.title", lang), id=ids.HOME_TITLE),
        html.P(t("app.tagline", lang), id=ids.HOME_INTRO, className="sr-tagline"),
        html.H2(t("home.roles", lang)),
        roles,
        html.H2(t("home.layers", lang)),
        status,
        html.Div(table, id=ids.HOME_LAYERS),
        html.P(html.A(t("home.api", lang), href=f"{API_PREFIX}/openapi.json", className="sr-api-link")),
    ])
