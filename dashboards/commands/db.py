"""``sitroom db up | down | status | url | migrate``: the private PostGIS of this checkout."""

from __future__ import annotations

import click

from layers.store import cluster
from layers.store.settings import get_settings


@click.group(name="db", help="The private PostGIS of this checkout (or SITROOM_DATABASE_URL).")
def db() -> None:
    pass






@db.command(help="Create (first time) and start the private cluster, then migrate. Safe to run again.")
def up() -> None:
    s = get_settings()
    if s.database_url:
        click.echo("SITROOM_DATABASE_URL is set: using that PostGIS; migrating it.")
        _migrate_with_message(s.database_url)
        return
    info = cluster.up(s.state_dir)
    _migrate_with_message(info.url)
    click.echo(f"PostGIS is up on 127.0.0.1:{info.port} (data in {info.data_dir})")


@db.command(help="Stop the private cluster.")
def down() -> None:
    stopped = cluster.down(get_settings().state_dir)
    click.echo("stopped" if stopped else "not running")


@db.command(help="Say whether the private cluster exists and runs.")
def status() -> None:
    s = get_settings()
    if s.database_url:
        click.echo("using SITROOM_DATABASE_URL")
        return
    info = cluster.status(s.state_dir)
    if info is None:
        click.echo("no cluster yet: run `sitroom db up`")
    else:
        click.echo(f"{'running' if info.running else 'stopped'} on 127.0.0.1:{info.port}, data in {info.data_dir}")


@db.command(help="Print the SQLAlchemy URL of the database in use.")
def url() -> None:
    from layers.store.db import database_url

    click.echo(database_url())


@db.command(help="Bring the database to the current schema (creates PostGIS in a fresh empty database).")
def migrate() -> None:
    from layers.store.db import database_url

    _migrate_with_message(database_url())


def _migrate_with_message(url: str) -> None:
    from layers.store.db import migrate as run

    run(url)
    click.echo("schema is current")
