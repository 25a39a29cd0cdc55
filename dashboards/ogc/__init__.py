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

__all__ = ["create_blueprint", "CONFORMANCE"]

_F = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
_C = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf"
_T = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
#: the conformance classes declared: each is checked by a test named in docs/ogc.md
CONFORMANCE: tuple[str, ...] = (
    f"{_C}/core", f"{_C}/landing-page", f"{_C}/json", f"{_C}/html", f"{_C}/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    f"{_F}/core", f"{_F}/oas30", f"{_F}/html", f"{_F}/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    f"{_T}/core", f"{_T}/tileset", f"{_T}/tilesets-list", f"{_T}/geodata-tilesets", f"{_T}/mvt", f"{_T}/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
)


def create_blueprint() -> Blueprint:
    """A fresh ``/ogc`` blueprint: Features, Tiles, the API definition, JSON errors."""
    from dashboards.ogc import document, features, tiles

    bp = Blueprint("ogc", __name__, url_prefix=OGC_PREFIX)
    for module in (features, tiles, document):
        module.add_routes(bp)
    register_error_handlers(bp)
    return bp
