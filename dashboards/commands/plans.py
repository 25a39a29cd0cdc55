"""``sitroom plans load | list``: the response plan templates (预案) of command and dispatch."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group(name="plans", help="Response plan templates (预案): load them, list them.")
def plans() -> None:
    pass


@plans.command(help="Load plan templates (each hazard kind and level replaced; activations keep their copies). "
                    "Without FILE, the drill's templates shipped with Sitroom.")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(file: Path | None) -> None:
    from layers.command.plans import load_plans
    from layers.store.db import session_scope

    data = None if file is None else json.loads(file.read_text(encoding="utf-8"))
    with session_scope(user="cli") as session:
        n = load_plans(session, data)
    click.echo(f"loaded {n['plans']} plan templates with {n['actions']} actions")


@plans.command(name="list", help="The loaded templates: hazard kind, level, actions, reporting deadline.")
def list_cmd() -> None:
    from layers.command.plans import list_plans
    from layers.store.db import session_scope

    with session_scope(user="cli") as session:
        rows = list_plans(session)
    if not rows:
        click.echo("no plan templates loaded (run `sitroom plans load`)")
    for p in rows:
        click.echo(f"{p['hazard_kind']:<18} {p['roman']}级  {len(p['actions'])} actions  report within "
                   f"{p['report_minutes']} min  {p['name']['zh-CN']}")
