"""OGC API - Tiles views: Mapbox Vector Tiles of every feature layer in WebMercatorQuad, and TileJSON.

Public (HTTP, under ``/ogc``): ``GET /tileMatrixSets``, ``/tileMatrixSets/WebMercatorQuad``,
``/collections/<layer>/tiles``, ``/collections/<layer>/tiles/WebMercatorQuad``,
``/collections/<layer>/tiles/WebMercatorQuad/<tileMatrix>/<tileRow>/<tileCol>`` (z/y/x: row before column, as
OGC orders them), ``/collections/<layer>/tiles/WebMercatorQuad/tilejson.json``.
Public (Python): :func:`add_routes`.

A tile is :func:`dashboards.api.vector_tiles.tile_response`: the bytes of :func:`layers.render.mvt.tile` (the same
cache, the same ETag) that the pages read at ``/api/v1/tiles/<layer>/<z>/<x>/<y>.mvt``. The tile matrix set is
morecantile's WebMercatorQuad (the OGC 2D Tile Matrix Set standard's definition). The H3 population collections
have no tiles (their cells are not geometries in the store; the pages draw them from aggregates).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import morecantile
from flask import Blueprint, Response

from dashboards.api.vector_tiles import tile_response
from dashboards.errors import ApiError
from dashboards.i18n import t
from dashboards.ogc.common import (
    JSON,
    MVT,
    answer,
    check_params,
    html_page,
    link,
    links_list,
    self_links,
    url,
)
from layers.read.features import collection_attributes, queryables
from layers.store.errors import NotFoundError
from layers.store.registry import LAYERS, LayerDef

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
WEB_MERCATOR = "http://www.opengis.net/def/crs/EPSG/0/3857"
_TEMPLATE = "/collections/{layer}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"


@cache
def _tms_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(morecantile.tms.get(TMS_ID).model_dump_json(exclude_none=True))
    return doc


def _layer(layer: str) -> LayerDef:
    d = LAYERS.get(layer)
    if d is None:
        raise NotFoundError(f"collection {layer!r} has no tiles; collections with vector tiles: {', '.join(LAYERS)}")
    return d


def _tms_list() -> Response:
    check_params(())
    doc = {"tileMatrixSets": [{"id": TMS_ID, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
                               "links": [link(url(f"/tileMatrixSets/{TMS_ID}"), "self", JSON, TMS_ID)]}],
           "links": self_links("/tileMatrixSets")}
    return answer(doc, lambda d: html_page(t("ogc.tile_matrix_sets"), links_list(
        li for s in d["tileMatrixSets"] for li in s["links"])))


def _tms() -> Response:
    check_params(())
    return answer(_tms_doc(), lambda d: html_page(TMS_ID, f"<pre>{json.dumps(d, indent=1)[:20000]}</pre>"))


def _tileset_doc(d: LayerDef) -> dict[str, Any]:
    template = url(_TEMPLATE.format(layer=d.name))
    fields = {a: q.get("type", "string") for a, q in queryables(d).items() if a != "geom"}
    return {
        "title": t(f"layer.{d.name}"),
        "dataType": "vector",
        "crs": WEB_MERCATOR,
        "tileMatrixSetURI": TMS_URI,
        "tileMatrixSetLimits": [{"tileMatrix": str(z), "minTileRow": 0, "maxTileRow": 2 ** z - 1,
                                 "minTileCol": 0, "maxTileCol": 2 ** z - 1}
                                for z in range(d.min_zoom, d.max_zoom + 1)],
        "layers": [{"id": d.name, "dataType": "vector", "geometryDimension": 0 if d.geometry_type == "POINT" else 2,
                    "minTileMatrix": str(d.min_zoom), "maxTileMatrix": str(d.max_zoom),
                    "propertiesSchema": {"type": "object", "properties": {
                        "id": {"type": "integer"}, **{a: {"type": fields.get(a, "string")}
                                                      for a in collection_attributes(d)}}}}],
        "links": [
            link(url(f"/collections/{d.name}/tiles/{TMS_ID}"), "self", JSON, t("ogc.this_document")),
            link(url(f"/tileMatrixSets/{TMS_ID}"), "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", JSON,
                 TMS_ID),
            link(template, "item", MVT, t("ogc.tiles"), templated=True),
            link(url(f"/collections/{d.name}"), "collection", JSON, t("ogc.collection")),
        ],
    }


def _tilesets(layer: str) -> Response:
    check_params(())
    d = _layer(layer)
    ts = _tileset_doc(d)
    doc = {"tilesets": [{k: ts[k] for k in ("title", "dataType", "crs", "tileMatrixSetURI")} | {
        "links": [link(url(f"/collections/{layer}/tiles/{TMS_ID}"), "self", JSON, TMS_ID), ts["links"][1]]}],
        "links": self_links(f"/collections/{layer}/tiles")}
    return answer(doc, lambda x: html_page(f"{t('ogc.tiles')}: {layer}", links_list(
        li for s in x["tilesets"] for li in s["links"])))


def _tileset(layer: str) -> Response:
    check_params(())
    d = _layer(layer)
    return answer(_tileset_doc(d), lambda x: html_page(f"{t('ogc.tiles')}: {layer}", links_list(x["links"])))


def _tilejson(layer: str) -> Response:
    check_params(())
    d = _layer(layer)
    fields = {a: a for a in collection_attributes(d)}
    doc = {"tilejson": "3.0.0", "name": d.name, "description": t(f"layer.{d.name}"),
           "tiles": [url(f"/collections/{d.name}/tiles/{TMS_ID}/{{z}}/{{y}}/{{x}}")],
           "minzoom": d.min_zoom, "maxzoom": d.max_zoom, "bounds": [-180, -85.0511287798066, 180, 85.0511287798066],
           "scheme": "xyz", "vector_layers": [{"id": d.name, "fields": fields, "minzoom": d.min_zoom,
                                               "maxzoom": d.max_zoom}]}
    return Response(json.dumps(doc, ensure_ascii=False), mimetype=JSON)


def _tile(layer: str, z: int, y: int, x: int) -> Any:
    check_params(())
    _layer(layer)
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):  # OGC API - Tiles: a tile outside the matrix is not found
        raise ApiError(field="tileRow/tileCol", value=f"{y}/{x}", allowed=f"0..{2 ** z - 1} at tileMatrix {z}",
                       status=404, code="not_found")
    return tile_response(layer, z, x, y)


def add_routes(bp: Blueprint) -> None:
    """Put the Tiles views on the ``/ogc`` blueprint."""
    bp.add_url_rule("/tileMatrixSets", endpoint="tile_matrix_sets", view_func=_tms_list)
    bp.add_url_rule(f"/tileMatrixSets/{TMS_ID}", endpoint="tile_matrix_set", view_func=_tms)
    bp.add_url_rule("/collections/<layer>/tiles", endpoint="tilesets", view_func=_tilesets)
    bp.add_url_rule(f"/collections/<layer>/tiles/{TMS_ID}", endpoint="tileset", view_func=_tileset)
    bp.add_url_rule(f"/collections/<layer>/tiles/{TMS_ID}/tilejson.json", endpoint="tilejson", view_func=_tilejson)
    bp.add_url_rule(f"/collections/<layer>/tiles/{TMS_ID}/<int:z>/<int:y>/<int:x>", endpoint="tile",
                    view_func=_tile)
