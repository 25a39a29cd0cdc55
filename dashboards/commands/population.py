"""``sitroom population build``: population on H3 cells from a GeoTIFF or from population points."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="population", help="Population on H3 cells (人口网格).")
def population() -> None:
    pass


@population.command(help="Build population_cells from a population GeoTIFF (any CRS), or from points with --points.\n\n"
                         "Example: sitroom population build worldpop.tif --res 8 --source worldpop-2020 --vintage 2020")
@click.argument("raster", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--res", default=8, show_default=True, type=click.IntRange(0, 15), help="H3 resolution.")
@click.option("--source", default=None, help="Source name stored with the cells (default: the file name).")
@click.option("--vintage", default=None, help="Year or date the population refers to, e.g. 2020.")
@click.option("--description", default=None, help="Free text recorded with the source.")
@click.option("--modelled", is_flag=True, help="Mark the data as modelled rather than census-based.")
@click.option("--scheduler", default="local", show_default=True,
              help="Where windows are processed: 'local' (a Dask LocalCluster of --workers processes, started and "
                   "stopped here), a running Dask scheduler (tcp://host:8786; its workers must see the raster at "
                   "the same path), or 'none' (this process).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes of the local Dask cluster (2 GB of memory each at most).")
@click.option("--window-pixels", default=None, type=click.IntRange(1), help="Pixels read per window.")
@click.option("--points", "points", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Population points instead of a raster: CSV with lon/lat columns, or a point vector file.")
@click.option("--column", default="population", show_default=True, help="Population column of --points.")
@click.option("--crs", default=None, help="CRS of --points when the file does not say (e.g. EPSG:4490).")
def build(raster: Path | None, res: int, source: str | None, vintage: str | None, description: str | None,
          modelled: bool, scheduler: str, workers: int, window_pixels: int | None, points: Path | None,
          column: str, crs: str | None) -> None:
    from layers.reference.population import WINDOW_PIXELS, build_population, build_population_points
    from layers.store.db import session_scope

    if (raster is None) == (points is None):
        raise click.UsageError("give either RASTER or --points FILE (exactly one)")
    with session_scope(user="cli") as session:
        if points is not None:
            report = build_population_points(session, points, column=column, res=res, source=source,
                                             vintage=vintage, description=description, modelled=modelled,
                                             crs=crs)
        elif raster is not None:
            report = build_population(session, raster, res=res, source=source, vintage=vintage,
                                      description=description, modelled=modelled, workers=workers,
                                      window_pixels=window_pixels or WINDOW_PIXELS, scheduler=scheduler)
    click.echo(f"{report.source} res {report.res}: {report.cell_count:,} cells, total {report.stored_total:,.3f} "
               f"(input {report.input_total:,.3f}); {report.pixels:,} "
               f"{'pixels' if points is None else 'points'} in {report.windows} windows on {report.workers} "
               f"worker(s){'' if points is not None else f' (scheduler {scheduler})'}, {report.seconds:.2f} s ({report.pixels_per_second / 1e6:.2f} M/s)")
