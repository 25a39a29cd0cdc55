"""Administration (``/admin``, admins only): recent changes from the history (the audit trail), accounts and tokens.

The history is written by database triggers with the name of whoever made each change (``dashboards.auth``
passes it to ``session_scope(user=...)``): a username, or ``token:<name>`` for a feed.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import html

from dashboards.auth import allowed, current_principal, user_badge
from dashboards.context import db_engine
from dashboards.errors import classify
from dashboards.i18n import current_lang, normalize_lang, t
from layers.store import auth as store_auth

dash.register_page(__name__, path="/admin", name="admin", order=9, title=lambda: t("admin.title"))

# component IDs of this page (dashboards/ids.py belongs to the shell; these are used only here and in its tests)
ADMIN_PAGE = "admin-page"
ADMIN_CHANGES = "admin-changes"
ADMIN_USERS = "admin-users"
ADMIN_TOKENS = "admin-tokens"
ADMIN_STATUS = "admin-status"

DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
RECENT_CHANGES = 200


def _when(value: Any) -> str:
    return value.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _table(table_id: str, headers: list[str], rows: list[list[Any]], lang: str) -> Any:
    if not rows:
        return html.P(t("admin.empty", lang), id=table_id, className="sr-muted")
    return html.Table(id=table_id, className="sr-table", children=[
        html.Thead(html.Tr([html.Th(t(h, lang)) for h in headers])),
        html.Tbody([html.Tr([html.Td("" if v is None else str(v)) for v in row]) for row in rows]),
    ])


def _layer_label(layer: str, lang: str) -> str:
    key = f"layer.{layer}"
    text = t(key, lang)
    return layer if text == key else text


def layout(lang: str | None = None, **_query: Any) -> Any:
    lang = normalize_lang(lang) or current_lang()
    if not allowed("admin"):  # the page router is a callback: the URL policy alone does not cover it
        return html.Div(id=ADMIN_PAGE, children=[html.P(t("error.forbidden", lang), className="sr-warning")])
    try:
        with db_engine().connect() as conn:
            changes = store_auth.recent_changes(conn, limit=RECENT_CHANGES)
            users = store_auth.list_users(conn)
            tokens = store_auth.list_tokens(conn)
    except Exception as e:
        if classify(e)[0] != 503:
            raise
        return html.Div(id=ADMIN_PAGE, children=[
            user_badge(), html.P(t("home.db_unavailable", lang), id=ADMIN_STATUS, className="sr-warning")])
    p = current_principal()
    change_rows = [[_when(c["changed_at"]), c["changed_by"], _layer_label(c["layer"], lang),
                    t(f"admin.op.{c['op']}", lang), c["feature_id"], c["name"]] for c in changes]
    user_rows = [[u["username"], u["display_name"], t(f"auth.role.{u['role']}", lang),
                  t("admin.yes", lang) if u["disabled"] else "", t("admin.yes", lang) if u["demo_password"] else "",
                  _when(u["created_at"])] for u in users]
    token_rows = [[k["name"], k["prefix"] + "…", ", ".join(k["layers"]), t(f"admin.access.{k['access']}", lang),
                   k["created_by"], _when(k["created_at"]), _when(k["last_used_at"]), _when(k["revoked_at"])]
                  for k in tokens]
    return html.Div(id=ADMIN_PAGE, className="sr-admin", children=[
        html.Div(className="sr-admin-head", children=[
            html.H2(t("admin.title", lang)),
            html.P(t("admin.signed_in_as", lang, name=p.display_name or p.name if p else ""), id=ADMIN_STATUS),
            user_badge(),
        ]),
        html.H3(t("admin.changes", lang, n=len(changes))),
        _table(ADMIN_CHANGES, ["admin.col.when", "admin.col.who", "admin.col.layer", "admin.col.op",
                               "admin.col.feature", "admin.col.name"], change_rows, lang),
        html.H3(t("admin.users", lang)),
        _table(ADMIN_USERS, ["admin.col.username", "admin.col.display_name", "admin.col.role",
                             "admin.col.disabled", "admin.col.demo_password", "admin.col.created"], user_rows, lang),
        html.H3(t("admin.tokens", lang)),
        _table(ADMIN_TOKENS, ["admin.col.token", "admin.col.prefix", "admin.col.layers", "admin.col.access",
                              "admin.col.created_by", "admin.col.created", "admin.col.last_used",
                              "admin.col.revoked"], token_rows, lang),
    ])

