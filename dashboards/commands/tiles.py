"""``sitroom tiles build``: pre-render the offline basemap into the tile cache."""

from __future__ import annotations

import click

from layers.store.settings import get_settings


def _bbox(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float, float, float]:
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise click.BadParameter(f"expected W,S,E,N in degrees (four numbers), got {value!r}")
    return parts


@click.group(name="tiles", help="The offline basemap: XYZ tiles rendered from the project's own data.")
def tiles() -> None:
    pass


@tiles.command(help="Pre-render basemap tiles of a region into the tile cache (missing tiles only). Higher zooms "
                    "are rendered on demand by the server.")
@click.option("--min-zoom", type=click.IntRange(0, 18), default=3, show_default=True)
@click.option("--max-zoom", type=click.IntRange(0, 18), default=8, show_default=True)
@click.option("--bbox", default="97,37,126.5,53.5", show_default=True, callback=_bbox,
              help="W,S,E,N in degrees (default: Inner Mongolia, the demo region).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--basemap", "basemaps", multiple=True, default=("base", "base-dark"), show_default=True,
              type=click.Choice(["base", "base-dark", "base-en", "base-dark-en"]),
              help="Which basemaps (repeat the option for several).")
@click.option("--no-db", is_flag=True, help="Draw without admin boundaries (do not read the database).")
@click.option("--keep-old", is_flag=True, help="Keep tiles of older data versions (default: delete them).")
def build(min_zoom: int, max_zoom: int, bbox: tuple[float, float, float, float], workers: int,
          basemaps: tuple[str, ...], no_db: bool, keep_old: bool) -> None:
    import time

    from layers.render.tiles import build_tiles, load_content, prune_cache, tiles_for_bbox

    s = get_settings()
    t0 = time.perf_counter()
    if no_db:
        content = load_content(None)
    else:
        from layers.store.db import session_scope

        with session_scope() as session:
            content = load_content(session)
    n = len(tiles_for_bbox(bbox, min_zoom=min_zoom, max_zoom=max_zoom)) * len(basemaps)
    click.echo(f"data version {content.version} (admin_regions: {content.admin_stamp}); "
               f"{n} tiles, z{min_zoom}-{max_zoom}, {len(basemaps)} basemap(s), {workers} worker(s)")
    stats = build_tiles(content, cache_dir=s.tile_cache_dir, bbox=bbox, min_zoom=min_zoom, max_zoom=max_zoom,
                        basemaps=basemaps, workers=workers)
    removed = 0 if keep_old else sum(prune_cache(s.tile_cache_dir, b, keep_version=content.version)
                                     for b in basemaps)
    click.echo(f"rendered {stats.rendered}, already cached {stats.cached}, in {stats.seconds:.1f} s "
               f"(total with loading {time.perf_counter() - t0:.1f} s); render time per tile mean "
               f"{stats.render_ms_mean:.1f} ms, max {stats.render_ms_max:.1f} ms; old versions removed: {removed}; "
               f"cache: {s.tile_cache_dir}")
