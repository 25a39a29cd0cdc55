"""``sitroom basemap add|list|remove``: a site's own detailed basemap (MBTiles or PMTiles), served from this machine.

A registered basemap is offered on every map's layer control; ``SITROOM_BASEMAP=site:<name>`` makes it the one
the maps open with (the Natural Earth basemap stays the default).
"""

from __future__ import annotations

import click

from layers.store.settings import get_settings


@click.group(name="basemap", help="Site basemaps: MBTiles or PMTiles archives served locally "
                                  "(/tiles/<name>/<z>/<x>/<y>.<ext>) and offered on every map.")
def basemap() -> None:
    pass


@basemap.command(name="add", help="Register FILE (.mbtiles or .pmtiles, raster png/jpg/webp or vector pbf): it is "
                                  "checked and copied into the basemap directory (SITROOM_BASEMAP_DIR).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="Name in URLs and settings (default: the file name), e.g. hohhot.")
@click.option("--attribution", help="Shown on the map (default: the archive's own attribution).")
@click.option("--title", help="Shown in the layer control (default: the archive's name).")
@click.option("--replace", is_flag=True, help="Replace a basemap of the same name.")
def add(file: str, name: str | None, attribution: str | None, title: str | None, replace: bool) -> None:
    from layers.render.sitebasemaps import add_basemap

    s = get_settings()
    bm = add_basemap(s.basemaps_path, file, name=name, attribution=attribution, title=title, replace=replace)
    zooms = f"z{bm.min_zoom}-{bm.max_zoom}"
    schema = f", {bm.schema} schema" if bm.schema else (", no known vector schema" if bm.kind == "vector" else "")
    click.echo(f"basemap {bm.name!r}: {bm.container}, {bm.kind} {bm.format}, {zooms}{schema}; "
               f"served at /tiles/{bm.name}/{{z}}/{{x}}/{{y}}.{bm.format}")
    click.echo(f"to open every map on it: SITROOM_BASEMAP=site:{bm.name}")


@basemap.command(name="list", help="The registered basemaps.")
def list_cmd() -> None:
    from layers.render.sitebasemaps import list_basemaps

    s = get_settings()
    found = list_basemaps(s.basemaps_path)
    if not found:
        click.echo(f"no site basemap in {s.basemaps_path}")
    for bm in found:
        chosen = " (chosen: SITROOM_BASEMAP)" if s.basemap == f"site:{bm.name}" else ""
        click.echo(f"{bm.name}\t{bm.container}\t{bm.kind} {bm.format}\tz{bm.min_zoom}-{bm.max_zoom}\t"
                   f"{bm.title}\t{bm.attribution}{chosen}")


@basemap.command(name="remove", help="Unregister basemap NAME and delete its copy.")
@click.argument("name")
def remove(name: str) -> None:
    from layers.render.sitebasemaps import remove_basemap

    remove_basemap(get_settings().basemaps_path, name)
    click.echo(f"removed basemap {name!r}")
