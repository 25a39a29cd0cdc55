"""``sitroom demo load``: the offline demo (real boundaries and places, modelled population, a drill scenario)."""

from __future__ import annotations

import time

import click


@click.group(name="demo", help="Offline demo data: China's admin regions, modelled population, drill (演练).")
def demo() -> None:
    pass


@demo.command(help="Load the demo: admin regions of China, the MODELLED population of Inner Mongolia, a seeded "
                   "drill scenario and 72 h of modelled station readings (exercise data, 演练). Safe to run again.")
@click.option("--seed", default=2024, show_default=True, type=int, help="Seed of the drill scenario.")
@click.option("--res", default=8, show_default=True, type=click.IntRange(5, 10), help="H3 resolution.")
@click.option("--overview-res", default=7, show_default=True, type=click.IntRange(0, 10),
              help="A coarser resolution also built, for overviews.")
@click.option("--workers", default=None, type=click.IntRange(1, 64), help="Worker processes (default: up to 2).")
def load(seed: int, res: int, overview_res: int, workers: int | None) -> None:
    from layers.command.demo import load_command_demo
    from layers.command.tasks import EtaParams
    from layers.monitor.demo import load_monitoring_demo
    from layers.reference.demo import load_demo
    from layers.store.db import session_scope
    from layers.store.settings import get_settings

    started = time.perf_counter()
    with session_scope(user="demo") as session:
        report = load_demo(session, seed=seed, res=res, overview_res=overview_res, workers=workers,
                           echo=click.echo)
        load_monitoring_demo(session, seed=seed, echo=click.echo)  # stations and 72 h of readings (docs/monitoring.md)
        load_command_demo(session, eta=EtaParams.from_settings(get_settings()), echo=click.echo)
    click.echo(f"demo loaded in {time.perf_counter() - started:.1f} s (the population is MODELLED; the drill is "
               "fictional exercise data, 演练)")
    del report
    _demo_accounts()


def _demo_accounts() -> None:
    """Create the demo accounts (display, analyst, planner, admin) and print their generated passwords, once."""
    from layers.store.auth import DEMO_ACCOUNTS, ensure_demo_accounts
    from layers.store.db import session_scope

    with session_scope(user="demo") as session:
        made = ensure_demo_accounts(session)
    if made:
        click.echo("demo accounts (passwords generated now and shown only this once; sign in at /login):")
        for username, password in made.items():
            role = dict(DEMO_ACCOUNTS)[username]
            click.echo(f"  {username:<8} role {role:<8} password {password}")
        if "display" in made:
            click.echo(f"the wall's display account logs in with: display / {made['display']} (it stays signed in)")
    kept = [u for u, _ in DEMO_ACCOUNTS if u not in made]
    if kept:
        click.echo(f"existing accounts kept with their passwords: {', '.join(kept)} (new password: "
                   "`sitroom users passwd NAME`)")
