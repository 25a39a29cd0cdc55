"""Where a benchmark puts its scratch database: on SITROOM_DATABASE_URL's server, else on the private cluster."""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url


def scratch_urls(prefix: str) -> tuple[str, str]:
    """(admin URL of the ``postgres`` database, URL of ``<prefix>_<pid>``) on the server the benches use."""
    name = f"{prefix}_{os.getpid()}"
    explicit = os.environ.get("SITROOM_DATABASE_URL")
    if explicit:
        u = make_url(explicit)
        return (u.set(database="postgres").render_as_string(hide_password=False),
                u.set(database=name).render_as_string(hide_password=False))
    from layers import cluster
    from layers.settings import get_settings

    info = cluster.up(get_settings().state_dir)
    return info.url_for("postgres"), info.url_for(name)
