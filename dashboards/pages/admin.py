"""Administration (``/admin``, admins only): accounts, API tokens, file imports and the recent changes.

- Accounts: add one (name, role, password), change a role, disable or enable, reset a password (a new one is made
  and shown once).
- API tokens: create one for a feed (its layers and access; the secret is shown once, only its hash is kept),
  revoke one.
- Imports: every ``sitroom import`` run, accepted or refused, with its counts or its errors
  (:mod:`layers.ingest.importlog`).
- Recent changes: the history, written by database triggers with the name of whoever made each change (a username,
  or ``token:<name>`` for a feed).

Every callback checks ``allowed("admin")`` first, as the page itself does.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboards.auth import allowed, current_principal
from dashboards.context import db_engine, settings
from dashboards.errors import classify
from dashboards.i18n import current_lang, normalize_lang, t
from layers.ingest.importlog import LOG_NAME, recent_imports
from layers.store import auth as store_auth
from layers.store.errors import StoreError
from layers.store.models import FEATURE_MODELS

dash.register_page(__name__, path="/admin", name="admin", order=9, title=lambda: t("admin.title"))

# component IDs of this page (dashboards/ids.py belongs to the shell; these are used only here and in its tests)
ADMIN_PAGE = "admin-page"
ADMIN_CHANGES = "admin-changes"
ADMIN_USERS = "admin-users"
ADMIN_TOKENS = "admin-tokens"
ADMIN_STATUS = "admin-status"
ADMIN_IMPORTS = "admin-imports"
ADMIN_MESSAGE = "admin-message"  # the result of the last action (a new password or token secret, shown once)
ADMIN_NEW_USER, ADMIN_NEW_NAME, ADMIN_NEW_ROLE, ADMIN_NEW_PASSWORD = ("admin-new-user", "admin-new-name",
                                                                      "admin-new-role", "admin-new-password")
ADMIN_ADD = "admin-add"
ADMIN_PICK_USER, ADMIN_SET_ROLE_TO = "admin-pick-user", "admin-set-role-to"
ADMIN_SET_ROLE, ADMIN_DISABLE, ADMIN_ENABLE, ADMIN_RESET = ("admin-set-role", "admin-disable", "admin-enable",
                                                            "admin-reset")
ADMIN_TOKEN_NAME, ADMIN_TOKEN_LAYERS, ADMIN_TOKEN_ACCESS = "admin-token-name", "admin-token-layers", "admin-token-access"
ADMIN_TOKEN_CREATE, ADMIN_PICK_TOKEN, ADMIN_TOKEN_REVOKE = "admin-token-create", "admin-pick-token", "admin-token-revoke"

DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
RECENT_CHANGES = 200
RECENT_IMPORTS = 50


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


def _tables(conn: Any, lang: str) -> tuple[Any, Any]:
    users = store_auth.list_users(conn)
    tokens = store_auth.list_tokens(conn)
    user_rows = [[u["username"], u["display_name"], t(f"auth.role.{u['role']}", lang),
                  t("admin.yes", lang) if u["disabled"] else "", t("admin.yes", lang) if u["demo_password"] else "",
                  _when(u["created_at"])] for u in users]
    token_rows = [[k["name"], k["prefix"] + "…", ", ".join(k["layers"]), t(f"admin.access.{k['access']}", lang),
                   k["created_by"], _when(k["created_at"]), _when(k["last_used_at"]), _when(k["revoked_at"])]
                  for k in tokens]
    return (_table(ADMIN_USERS, ["admin.col.username", "admin.col.display_name", "admin.col.role",
                                 "admin.col.disabled", "admin.col.demo_password", "admin.col.created"], user_rows, lang),
            _table(ADMIN_TOKENS, ["admin.col.token", "admin.col.prefix", "admin.col.layers", "admin.col.access",
                                  "admin.col.created_by", "admin.col.created", "admin.col.last_used",
                                  "admin.col.revoked"], token_rows, lang))


def _imports(lang: str) -> Any:
    rows = []
    for e in recent_imports(settings().state_dir / LOG_NAME, limit=RECENT_IMPORTS):
        at = datetime.fromisoformat(e["at"]) if e.get("at") else None
        result = (t("admin.import.ok", lang, inserted=e.get("inserted", 0), updated=e.get("updated", 0),
                    unchanged=e.get("unchanged", 0)) if e.get("ok") else t("admin.import.refused", lang))
        errors = e.get("errors") or []
        rows.append([_when(at), e.get("who", ""), _layer_label(str(e.get("layer", "")), lang), e.get("file", ""),
                     result, html.Details([html.Summary(t("admin.import.errors", lang, n=len(errors))),
                                           html.Pre("\n".join(errors))]) if errors else ""])
    return _table(ADMIN_IMPORTS, ["admin.col.when", "admin.col.who", "admin.col.layer", "admin.col.file",
                                  "admin.col.result", "admin.col.errors"], rows, lang)


def _forms(lang: str, users: list[dict[str, Any]], tokens: list[dict[str, Any]]) -> Any:
    roles = [{"label": t(f"auth.role.{r}", lang), "value": r} for r in store_auth.ROLES]
    layers = [{"label": t("admin.all_layers", lang), "value": store_auth.ALL_LAYERS}] + [
        {"label": _layer_label(n, lang), "value": n} for n in sorted(FEATURE_MODELS)]
    return html.Div(className="sr-admin-forms", children=[
        html.Fieldset([html.Legend(t("admin.add_user", lang)),
                       dcc.Input(id=ADMIN_NEW_USER, placeholder=t("admin.col.username", lang)),
                       dcc.Input(id=ADMIN_NEW_NAME, placeholder=t("admin.col.display_name", lang)),
                       dcc.Dropdown(id=ADMIN_NEW_ROLE, options=roles, value="viewer" if "viewer" in store_auth.ROLES
                                    else store_auth.ROLES[0], clearable=False),
                       dcc.Input(id=ADMIN_NEW_PASSWORD, type="password", placeholder=t("admin.password", lang)),
                       html.Button(t("admin.add", lang), id=ADMIN_ADD, n_clicks=0)]),
        html.Fieldset([html.Legend(t("admin.change_user", lang)),
                       dcc.Dropdown(id=ADMIN_PICK_USER, options=[u["username"] for u in users],
                                    placeholder=t("admin.col.username", lang)),
                       dcc.Dropdown(id=ADMIN_SET_ROLE_TO, options=roles, placeholder=t("admin.col.role", lang)),
                       html.Button(t("admin.set_role", lang), id=ADMIN_SET_ROLE, n_clicks=0),
                       html.Button(t("admin.disable", lang), id=ADMIN_DISABLE, n_clicks=0),
                       html.Button(t("admin.enable", lang), id=ADMIN_ENABLE, n_clicks=0),
                       html.Button(t("admin.reset_password", lang), id=ADMIN_RESET, n_clicks=0)]),
        html.Fieldset([html.Legend(t("admin.new_token", lang)),
                       dcc.Input(id=ADMIN_TOKEN_NAME, placeholder=t("admin.col.token", lang)),
                       dcc.Dropdown(id=ADMIN_TOKEN_LAYERS, options=layers, multi=True,
                                    placeholder=t("admin.col.layers", lang)),
                       dcc.RadioItems(id=ADMIN_TOKEN_ACCESS, value="write", inline=True, options=[
                           {"label": t(f"admin.access.{a}", lang), "value": a} for a in store_auth.TOKEN_ACCESS]),
                       html.Button(t("admin.create", lang), id=ADMIN_TOKEN_CREATE, n_clicks=0),
                       dcc.Dropdown(id=ADMIN_PICK_TOKEN, placeholder=t("admin.col.token", lang), options=[
                           k["name"] for k in tokens if k["revoked_at"] is None]),
                       html.Button(t("admin.revoke", lang), id=ADMIN_TOKEN_REVOKE, n_clicks=0)]),
        html.Div(id=ADMIN_MESSAGE, className="sr-admin-message", role="status"),
    ])


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
            html.P(t("home.db_unavailable", lang), id=ADMIN_STATUS, className="sr-warning")])
    p = current_principal()
    change_rows = [[_when(c["changed_at"]), c["changed_by"], _layer_label(c["layer"], lang),
                    t(f"admin.op.{c['op']}", lang), c["feature_id"], c["name"]] for c in changes]
    with db_engine().connect() as conn:
        users_table, tokens_table = _tables(conn, lang)
    return html.Div(id=ADMIN_PAGE, className="sr-admin", lang=lang, children=[
        html.Div(className="sr-admin-head", children=[
            html.H2(t("admin.title", lang)),
            # the header's badge signs out (one badge per page: its ids are unique)
            html.P(t("admin.signed_in_as", lang, name=p.display_name or p.name if p else ""), id=ADMIN_STATUS),
        ]),
        _forms(lang, users, tokens),
        html.H3(t("admin.users", lang)), html.Div(users_table, id=f"{ADMIN_USERS}-box"),
        html.H3(t("admin.tokens", lang)), html.Div(tokens_table, id=f"{ADMIN_TOKENS}-box"),
        html.H3(t("admin.imports", lang)), _imports(lang),
        html.H3(t("admin.changes", lang, n=len(changes))),
        _table(ADMIN_CHANGES, ["admin.col.when", "admin.col.who", "admin.col.layer", "admin.col.op",
                               "admin.col.feature", "admin.col.name"], change_rows, lang),
    ])


def _act(lang: str, action: Any) -> tuple[Any, ...]:
    """Run one account or token action as the signed-in admin: (message, users table, tokens table)."""
    if not allowed("admin"):  # every callback checks the role exactly as the page does
        return t("error.forbidden", lang), no_update, no_update
    try:
        with db_engine().begin() as conn:
            message = action(conn)
            users_table, tokens_table = _tables(conn, lang)
    except StoreError as e:
        return html.Span(f"{t('admin.refused', lang)}: {e}", className="sr-warning"), no_update, no_update
    return message, users_table, tokens_table


@callback(Output(ADMIN_MESSAGE, "children"), Output(f"{ADMIN_USERS}-box", "children"),
          Output(f"{ADMIN_TOKENS}-box", "children"),
          Input(ADMIN_ADD, "n_clicks"), Input(ADMIN_SET_ROLE, "n_clicks"), Input(ADMIN_DISABLE, "n_clicks"),
          Input(ADMIN_ENABLE, "n_clicks"), Input(ADMIN_RESET, "n_clicks"), Input(ADMIN_TOKEN_CREATE, "n_clicks"),
          Input(ADMIN_TOKEN_REVOKE, "n_clicks"),
          State(ADMIN_NEW_USER, "value"), State(ADMIN_NEW_NAME, "value"), State(ADMIN_NEW_ROLE, "value"),
          State(ADMIN_NEW_PASSWORD, "value"), State(ADMIN_PICK_USER, "value"), State(ADMIN_SET_ROLE_TO, "value"),
          State(ADMIN_TOKEN_NAME, "value"), State(ADMIN_TOKEN_LAYERS, "value"), State(ADMIN_TOKEN_ACCESS, "value"),
          State(ADMIN_PICK_TOKEN, "value"), prevent_initial_call=True)
def act(*args: Any, trigger: str | None = None) -> tuple[Any, ...]:
    """Add, change, disable/enable or reset an account; create or revoke a token (the button pressed decides)."""
    (_a, _r, _d, _e, _p, _c, _v, username, display, role, password, picked, new_role, token_name, token_layers,
     access, picked_token) = args
    lang = current_lang()
    button = trigger or (dash.ctx.triggered_id if dash.ctx else None)
    p = current_principal()
    me = p.name if p else "admin"

    def run(conn: Any) -> Any:
        if button == ADMIN_ADD:
            store_auth.add_user(conn, (username or "").strip(), password or "", role=role or "",
                                display_name=(display or "").strip() or None)
            return t("admin.done.added", lang, user=username)
        if button in (ADMIN_SET_ROLE, ADMIN_DISABLE, ADMIN_ENABLE, ADMIN_RESET) and not picked:
            return t("admin.pick_user", lang)
        if button == ADMIN_SET_ROLE:
            store_auth.set_role(conn, picked, new_role or "")
            return t("admin.done.role", lang, user=picked, role=t(f"auth.role.{new_role}", lang))
        if button in (ADMIN_DISABLE, ADMIN_ENABLE):
            store_auth.set_disabled(conn, picked, button == ADMIN_DISABLE)
            return t("admin.done.disabled" if button == ADMIN_DISABLE else "admin.done.enabled", lang, user=picked)
        if button == ADMIN_RESET:
            new = secrets.token_urlsafe(12)
            store_auth.set_password(conn, picked, new)
            return html.Span([t("admin.done.password", lang, user=picked), " ", html.Code(new, id="admin-secret")])
        if button == ADMIN_TOKEN_CREATE:
            secret = store_auth.create_token(conn, (token_name or "").strip(), layers=list(token_layers or []),
                                             access=access or "read", created_by=me)
            return html.Span([t("admin.done.token", lang, name=token_name), " ", html.Code(secret, id="admin-secret")])
        if button == ADMIN_TOKEN_REVOKE:
            if not picked_token:
                return t("admin.pick_token", lang)
            store_auth.revoke_token(conn, picked_token)
            return t("admin.done.revoked", lang, name=picked_token)
        return no_update

    return _act(lang, run)

