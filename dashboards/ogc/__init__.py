"""OGC API - Features and Tiles under ``/ogc``: how other departments' GIS (QGIS, ArcGIS Pro, GDAL) read Sitroom.

Public: :func:`create_blueprint`, :data:`CONFORMANCE`.

Written here rather than mounted from pygeoapi (the reasons, measured, are in ``docs/ogc.md``): the protocol is a
thin layer of JSON documents and links; the data come from :mod:`layers.read.features` (features: soft delete,
per-layer time columns, "as of", the H3 population, CRSs in PostGIS) and :mod:`layers.render.mvt` (the same tiles
as the pages'); CQL2 is parsed by ``pygeofilter`` and the WebMercatorQuad tile matrix set comes from
``morecantile``. The views live in :mod:`dashboards.ogc.features` and :mod:`dashboards.ogc.tiles`; the API
definition in :mod:`dashboards.ogc.document`.

Access is the server's (:mod:`dashboards.auth`): the landing page, conformance, the API definition and the tile
matrix sets are public; every collection is data, named by the URL's ``<layer>``, so a read token scoped to some
layers reads those collections only. Errors have the API's JSON shape (:mod:`dashboards.errors`).
"""

from __future__ import annotations

from flask import Blueprint

from dashboards.context import OGC_PREFIX
from dashboards.errors import register_error_handlers
from dashboards.ogc.common import CONFORMANCE

__all__ = ["create_blueprint", "CONFORMANCE"]


def create_blueprint() -> Blueprint:
    """A fresh ``/ogc`` blueprint: Features, Tiles, the API definition, JSON errors."""
    from dashboards.ogc import document, features, tiles

    bp = Blueprint("ogc", __name__, url_prefix=OGC_PREFIX)
    for module in (features, tiles, document):
        module.add_routes(bp)
    register_error_handlers(bp)
    return bp
