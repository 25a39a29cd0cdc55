"""``sitroom import-observations FILE.csv``: stations' readings into the observation store (see
:mod:`layers.monitor.ingest`); the warning rules run as they would for a feed."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from dashboards.i18n import t


@click.command(name="import-observations",
               help="Import readings from a CSV file (header station,variable,value,unit,observed_at,period_s; up to "
                    "100,000 rows): all rows valid or nothing is written; then the warning rules run.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_observations(file: Path) -> None:
    from layers.monitor.ingest import import_path
    from layers.store.db import session_scope
    from layers.store.errors import ValidationError

    try:
        with session_scope(user="monitor") as session:
            r = import_path(session, file, now=datetime.now(UTC))
    except ValidationError as e:
        click.echo(t("cli.rejected", file=file), err=True)
        click.echo(str(e), err=True)
        sys.exit(2)
    click.echo(t("cli.monitor.done", file=file.name, received=r.received, inserted=r.inserted,
                 duplicates=r.duplicates, flagged=sum(r.flagged.values()), warnings=len(r.changes)))
    for c in r.changes:
        click.echo(f"  {t('cli.monitor.warning', action=c.action, rule=c.rule, station=c.station, level=c.level or '-')}")
    for m in r.notes:
        click.echo(f"  {t('cli.note')} {m}")
