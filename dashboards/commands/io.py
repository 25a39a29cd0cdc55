"""``sitroom import LAYER FILE`` and ``sitroom export LAYER FILE``: feature files in and out of the store."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from dashboards.i18n import t
from layers.store.models import FEATURE_MODELS


def _log_import(entry: dict[str, object]) -> None:
    """One line in the import log the admin page shows (``layers.ingest.importlog``); never fails the import."""
    from layers.ingest.importlog import LOG_NAME, record_import
    from layers.store.settings import get_settings

    try:
        record_import(get_settings().state_dir / LOG_NAME, dict(entry))
    except OSError as e:
        click.echo(f"import log not written: {e}", err=True)


@click.command(name="import", help="Import a GeoJSON, GeoPackage, zipped Shapefile, KML or CSV file into LAYER "
                                   "(all rows valid, or nothing is written).")
@click.argument("layer", type=click.Choice(sorted(FEATURE_MODELS)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default=None, help="Source name, the upsert key with external_id (default: file name).")
@click.option("--crs", default=None, help="CRS of the file, e.g. EPSG:4527; overrides the file's own.")
@click.option("--skip-invalid", is_flag=True, help="Write the valid rows and report the invalid ones.")
@click.option("--user", default=None, help="Who imports (recorded in the history; default: login name).")
def import_cmd(layer: str, file: Path, source: str | None, crs: str | None, skip_invalid: bool,
               user: str | None) -> None:
    from layers.ingest.imports import import_file
    from layers.store.db import session_scope
    from layers.store.errors import ValidationError

    who = user or getpass.getuser()
    try:
        with session_scope(user=who) as session:
            r = import_file(session, layer, file, source=source, crs=crs, skip_invalid=skip_invalid, user=who)
            if layer == "admin_regions":  # regions without an English name get one (layers/reference/names.py)
                from layers.reference.names import fill_english_names

                fill_english_names(session)
    except ValidationError as e:
        _log_import({"layer": layer, "file": file.name, "who": who, "ok": False,
                     "errors": str(e).splitlines()[:50]})
        click.echo(t("cli.rejected", file=file), err=True)
        click.echo(str(e), err=True)
        sys.exit(2)
    _log_import({"layer": layer, "file": file.name, "who": who, "ok": True, "source": r.source,
                 "inserted": r.inserted, "updated": r.updated, "unchanged": r.unchanged, "rows": r.rows_read,
                 "errors": [str(p) for p in r.skipped][:50]})
    click.echo(t("cli.import.done", layer=layer, file=file.name, source=r.source, inserted=r.inserted, updated=r.updated,
                  unchanged=r.unchanged, skipped=len({e.row for e in r.skipped}), rows=r.rows_read))
    for problem in r.skipped:
        click.echo(f"  {t('cli.import.skipped')} {problem}")
    for m in r.repaired:
        click.echo(f"  {t('cli.import.repaired')} {m}")
    for m in r.notes:
        click.echo(f"  {t('cli.note')} {m}")


@click.command(name="export", help="Export LAYER to a GeoJSON, GeoPackage or CSV file (by suffix).")
@click.argument("layer", type=click.Choice(sorted(FEATURE_MODELS)))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bbox", default=None, help="Only features intersecting W,S,E,N (degrees).")
@click.option("--within", "within_file", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only features intersecting the shapes of this file (any import format).")
@click.option("--include-deleted", is_flag=True, help="Also soft-deleted features.")
def export_cmd(layer: str, file: Path, bbox: str | None, within_file: Path | None, include_deleted: bool) -> None:
    from layers.ingest.exports import export_layer, parse_bbox, read_within
    from layers.store.db import session_scope

    box = parse_bbox(bbox) if bbox else None
    within = read_within(within_file) if within_file else None
    with session_scope() as session:
        n = export_layer(session, layer, file, bbox=box, within=within, include_deleted=include_deleted)
    click.echo(t("cli.export.done", layer=layer, file=file, n=n))
