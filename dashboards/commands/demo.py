"""``sitroom demo load``: the offline demo (real boundaries and places, modelled population, a drill scenario)."""

from __future__ import annotations

import time

import click


@click.group(name="demo", help="Offline demo data: China's admin regions, modelled population, drill (演练).")
def demo() -> None:
    pass


@demo.command(help="Load the demo: admin regions of China, the MODELLED population of Inner Mongolia, and a "
                   "seeded drill scenario (exercise data, 演练). Safe to run again.")
@click.option("--seed", default=2024, show_default=True, type=int, help="Seed of the drill scenario.")
@click.option("--res", default=8, show_default=True, type=click.IntRange(5, 10), help="H3 resolution.")
@click.option("--overview-res", default=7, show_default=True, type=click.IntRange(0, 10),
              help="A coarser resolution also built, for overviews.")
@click.option("--workers", default=None, type=click.IntRange(1, 64), help="Worker processes (default: up to 2).")
def load(seed: int, res: int, overview_res: int, workers: int | None) -> None:
    from layers.db import session_scope
    from layers.demo import load_demo

    started = time.perf_counter()
    with session_scope(user="demo") as session:
        report = load_demo(session, seed=seed, res=res, overview_res=overview_res, workers=workers,
                           echo=click.echo)
    click.echo(f"demo loaded in {time.perf_counter() - started:.1f} s (the population is MODELLED; the drill is "
               "fictional exercise data, 演练)")
    del report
