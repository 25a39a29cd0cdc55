"""The ``sitroom`` command line. Each command group lives in ``dashboards/commands/<name>.py``.

Public: :func:`main`.
"""

from __future__ import annotations

import importlib
import sys

import click
import pydantic

from layers.store.errors import StoreError

# module name in dashboards.commands -> attribute holding the click command or group
COMMANDS = {
    "db": "db",
    "io": ("import_cmd", "export_cmd"),
    "population": "population",
    "demo": "demo",
    "serve": "serve",
    "tiles": "tiles",
    "basemap": "basemap",
    "cap": "import_cap",
    "monitor": "import_observations",
    "users": ("users", "token"),
    "backup": ("backup", "restore"),
    "plans": "plans",
}


class _Main(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except StoreError as e:  # a domain error is the user's to read, not a traceback
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except pydantic.ValidationError as e:
            if e.title != "Settings":
                raise
            # invalid configuration (layers/store/settings.py): each problem names the setting or the variable
            click.echo(f"error: invalid configuration, nothing was started\n{e}", err=True)
            sys.exit(2)


@click.group(cls=_Main, help="Sitroom: situational awareness for emergency management (应急管理综合态势).")
def main() -> None:
    pass


for module_name, attrs in COMMANDS.items():
    try:
        module = importlib.import_module(f"dashboards.commands.{module_name}")
    except ModuleNotFoundError as e:
        if e.name != f"dashboards.commands.{module_name}":
            raise
        continue  # command not built yet
    for attr in (attrs,) if isinstance(attrs, str) else attrs:
        main.add_command(getattr(module, attr))
