"""``sitroom users add | passwd | disable | enable | list`` and ``sitroom token create | revoke | list``.

Passwords are asked for at the prompt (hidden, twice) unless ``--password-stdin`` is given; a token's secret is
printed once and only its sha256 is stored.
"""

from __future__ import annotations

import getpass
import os
import sys

import click


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


def _actor() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser() or "cli"


@click.group(name="users", help="Accounts: add, change passwords, disable, list.")
def users() -> None:
    pass


@users.command(name="add", help="Create an account with a role (display, viewer, analyst, planner, monitor, "
                                "dispatcher, admin).")
@click.argument("username")
@click.option("--role", required=True,
              type=click.Choice(["display", "viewer", "analyst", "planner", "monitor", "dispatcher", "admin"]))
@click.option("--name", "display_name", default=None, help="Name shown in the pages (e.g. 李伟).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def add(username: str, role: str, display_name: str | None, password_stdin: bool) -> None:
    from layers.store import auth
    from layers.store.db import session_scope

    password = _password(password_stdin)
    with session_scope(user=f"cli:{_actor()}") as s:
        auth.add_user(s, username, password, role=role, display_name=display_name)
    click.echo(f"added {username} ({role})")


@users.command(name="passwd", help="Set a new password (the user's open sessions end).")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def passwd(username: str, password_stdin: bool) -> None:
    from layers.store import auth
    from layers.store.db import session_scope

    password = _password(password_stdin)
    with session_scope(user=f"cli:{_actor()}") as s:
        auth.set_password(s, username, password)
    click.echo(f"password of {username} changed")


def _set_disabled(username: str, disabled: bool) -> None:
    from layers.store import auth
    from layers.store.db import session_scope

    with session_scope(user=f"cli:{_actor()}") as s:
        auth.set_disabled(s, username, disabled)
    click.echo(f"{username} {'disabled' if disabled else 'enabled'}")


@users.command(name="disable", help="Disable an account (it cannot log in; its sessions end).")
@click.argument("username")
def disable(username: str) -> None:
    _set_disabled(username, True)


@users.command(name="enable", help="Enable a disabled account again.")
@click.argument("username")
def enable(username: str) -> None:
    _set_disabled(username, False)


@users.command(name="list", help="List accounts.")
def list_cmd() -> None:
    from layers.store import auth
    from layers.store.db import session_scope

    with session_scope() as s:
        rows = auth.list_users(s)
    click.echo(f"{'username':<20} {'role':<8} {'state':<9} {'name'}")
    for u in rows:
        state = "disabled" if u["disabled"] else ("demo-pw" if u["demo_password"] else "ok")
        click.echo(f"{u['username']:<20} {u['role']:<8} {state:<9} {u['display_name'] or ''}")


@click.group(name="token", help="API tokens for feeds: create (shown once), revoke, list.")
def token() -> None:
    pass


@token.command(name="create", help="Create a token; prints its secret once (only a hash is kept).")
@click.argument("name")
@click.option("--layers", "layers_", required=True,
              help="Comma-separated layers the token may touch, or '*' for all (e.g. incidents,hazards; "
                   "'observations' for a feed of stations' readings).")
@click.option("--access", type=click.Choice(["read", "write"]), default="read", show_default=True)
def create(name: str, layers_: str, access: str) -> None:
    from layers.store import auth
    from layers.store.db import session_scope

    with session_scope(user=f"cli:{_actor()}") as s:
        secret = auth.create_token(s, name, layers=[x.strip() for x in layers_.split(",") if x.strip()],
                                   access=access, created_by=f"cli:{_actor()}")
    click.echo(secret)
    click.echo(f"token {name!r} ({layers_}: {access}); send it as 'Authorization: Bearer <token>'. "
               "It is not shown again.", err=True)


@token.command(name="revoke", help="Revoke a token at once.")
@click.argument("name")
def revoke(name: str) -> None:
    from layers.store import auth
    from layers.store.db import session_scope

    with session_scope(user=f"cli:{_actor()}") as s:
        auth.revoke_token(s, name)
    click.echo(f"token {name!r} revoked")


@token.command(name="list", help="List tokens (never their secrets).")
def token_list() -> None:
    from layers.store import auth
    from layers.store.db import session_scope

    with session_scope() as s:
        rows = auth.list_tokens(s)
    click.echo(f"{'name':<24} {'prefix':<11} {'access':<6} {'layers':<30} {'state'}")
    for k in rows:
        state = f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else (
            f"last used {k['last_used_at']:%Y-%m-%d %H:%M}" if k["last_used_at"] else "never used")
        click.echo(f"{k['name']:<24} {k['prefix']:<11} {k['access']:<6} {','.join(k['layers']):<30} {state}")
