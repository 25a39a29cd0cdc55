"""``sitroom import-cap FILE|DIR``: CAP 1.2 warnings into the hazards layer (see :mod:`layers.ingest.cap`)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from dashboards.i18n import t


@click.command(name="import-cap", help="Import CAP 1.2 warnings (one .xml file, an Atom feed of CAP alerts such as "
                                       "/api/v1/cap/feed.atom, or a directory of .xml/.cap/.atom files, applied "
                                       "oldest <sent> first) into the hazards layer; all or nothing.")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--user", default=None, help="Who imports (recorded in the history; default: login name).")
def import_cap(path: Path, user: str | None) -> None:
    from layers.ingest.cap import CapError, import_cap_path
    from layers.store.db import session_scope

    who = user or getpass.getuser()
    try:
        with session_scope(user=who) as session:
            reports = import_cap_path(session, path, user=who)
    except CapError as e:
        click.echo(t("cli.rejected", file=path), err=True)
        click.echo(str(e), err=True)
        sys.exit(2)
    for r in reports:
        click.echo(t("cli.cap.done", file=Path(r.file or "").name, msg_type=r.msg_type, identifier=r.identifier,
                      inserted=r.inserted, updated=r.updated, unchanged=r.unchanged, superseded=len(r.superseded),
                      cancelled=len(r.cancelled)))
        for m in r.notes:
            click.echo(f"  {t('cli.note')} {m}")
