"""``sitroom backup FILE`` and ``sitroom restore FILE [--yes]``: the whole store to one file and back."""

from __future__ import annotations

from pathlib import Path

import click

from dashboards.i18n import t


@click.command(name="backup", help="Write the whole store (history, population, accounts, tokens) to FILE "
                                   "(pg_dump custom format).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    from layers.store import backup as bk
    from layers.store.db import database_url

    out = bk.backup(database_url(), file)
    click.echo(t("cli.backup.written", file=out, mb=out.stat().st_size / 2**20))


@click.command(name="restore", help="Replace everything in the store with the backup FILE (asks first; --yes "
                                    "does not).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(file: Path, yes: bool) -> None:
    from sqlalchemy.engine import make_url

    from layers.store import backup as bk
    from layers.store.db import database_url, reset_engines

    url = database_url()
    if not yes:
        click.confirm(t("cli.restore.confirm", db=make_url(url).database, file=file), abort=True)
    reset_engines()
    r = bk.restore(url, file)
    click.echo(t("cli.restore.done", file=file, rev=r.revision,
                  migrated=t("cli.restore.migrated", head=r.head) if r.migrated else ""))
