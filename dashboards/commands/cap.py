"""``sitroom import-cap FILE|DIR``: CAP 1.2 warnings into the hazards layer (see :mod:`layers.cap`)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

# zh-CN / en strings of this command (as in dashboards/commands/io.py)
_TEXT = {
    "rejected": {"en": "{path}: rejected, nothing was written:", "zh-CN": "{path}：校验未通过，未写入任何数据："},
    "done": {"en": "{file}: {msg_type} {identifier}: {inserted} inserted, {updated} updated, {unchanged} unchanged, "
                   "{superseded} superseded, {cancelled} cancelled",
             "zh-CN": "{file}：{msg_type} {identifier}：新增 {inserted}，更新 {updated}，未变 {unchanged}，"
                      "被替代 {superseded}，已解除 {cancelled}"},
    "note": {"en": "note:", "zh-CN": "说明："},
}


def _t(key: str, **kw: object) -> str:
    from layers.settings import get_settings

    return _TEXT[key][get_settings().language].format(**kw)


@click.command(name="import-cap", help="Import CAP 1.2 warnings (one .xml file, or a directory of .xml/.cap files, "
                                       "applied oldest <sent> first) into the hazards layer; all or nothing.")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--user", default=None, help="Who imports (recorded in the history; default: login name).")
def import_cap(path: Path, user: str | None) -> None:
    from layers.cap import CapError, import_cap_path
    from layers.db import session_scope

    who = user or getpass.getuser()
    try:
        with session_scope(user=who) as session:
            reports = import_cap_path(session, path, user=who)
    except CapError as e:
        click.echo(_t("rejected", path=path), err=True)
        click.echo(str(e), err=True)
        sys.exit(2)
    for r in reports:
        click.echo(_t("done", file=Path(r.file or "").name, msg_type=r.msg_type, identifier=r.identifier,
                      inserted=r.inserted, updated=r.updated, unchanged=r.unchanged, superseded=len(r.superseded),
                      cancelled=len(r.cancelled)))
        for m in r.notes:
            click.echo(f"  {_t('note')} {m}")
