"""The API definition of ``/ogc`` (OpenAPI 3.0, as OGC API - Features /req/oas30 asks), built from the views'
parameters and the layer registry.

Public (HTTP): ``GET /ogc/api`` (JSON, or an HTML summary). Public (Python): :func:`add_routes`, :func:`document`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Blueprint, Response

from dashboards.context import OGC_PREFIX
from dashboards.i18n import t
from dashboards.ogc.common import OPENAPI, answer, check_params, html_page, table
from dashboards.ogc.features import DEFAULT_LIMIT
from layers.read import features as F
from layers.store.registry import LAYERS


def _param(name: str, schema: dict[str, Any], description: str, *, where: str = "query", required: bool = False,
           style: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "required": required or where == "path", "schema": schema,
                         "description": description}
    if style:
        p.update(style=style, explode=False)
    return p


def _ok(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "object"}}}}


_ERRORS = {"400": {"description": "A query parameter is wrong: the body names it, what was received and what is "
                                  "allowed", "content": {"application/json": {"schema": {"type": "object"}}}},
           "401": {"description": "Sign in, or send Authorization: Bearer <token>"},
           "403": {"description": "The token or account may not read this collection"},
           "404": {"description": "No such collection or feature"}}


def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``/ogc`` (paths relative to the server root)."""
    names = list(F.collection_names())
    vocab_params = sorted({a for d in LAYERS.values() for a in d.vocabs})
    coll = _param("collectionId", {"type": "string", "enum": names}, "a collection", where="path")
    layer = _param("collectionId", {"type": "string", "enum": list(LAYERS)}, "a feature layer", where="path")
    crs = {"type": "string", "format": "uri", "enum": list(F.CRSS), "default": F.CRS84}
    items_params = [
        coll,
        _param("limit", {"type": "integer", "minimum": 1, "maximum": F.MAX_LIMIT, "default": DEFAULT_LIMIT},
               "at most this many features"),
        _param("offset", {"type": "integer", "minimum": 0, "default": 0}, "skip this many features"),
        _param("after", {"type": "string"}, "cursor of a next link: features after this id"),
        _param("bbox", {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
               "features whose geometry meets the box (in bbox-crs, its axis order)", style="form"),
        _param("bbox-crs", crs, "CRS of bbox"),
        _param("crs", crs, "CRS of the geometries returned (EPSG:4326 and EPSG:4490 with latitude first)"),
        _param("datetime", {"type": "string"}, "RFC 3339 instant or interval (.. open): features whose time, from "
                                               "the layer's time columns, meets it"),
        _param("as-of", {"type": "string", "format": "date-time"}, "read the layer as it was at this time"),
        _param("filter", {"type": "string"}, "CQL2 text over the queryables"),
        _param("filter-lang", {"type": "string", "enum": ["cql2-text"], "default": "cql2-text"}, "filter language"),
        _param("filter-crs", {"type": "string", "enum": [F.CRS84]}, "CRS of geometry literals in filter"),
        *(_param(a, {"type": "array", "items": {"type": "string"}}, f"keep features whose {a} is one of these "
                 "(vocabulary keys, comma-separated)", style="form") for a in vocab_params),
    ]
    f_param = _param("f", {"type": "string", "enum": ["json", "html"]}, "format")
    tile_params = [layer, _param("tileMatrix", {"type": "integer", "minimum": 0, "maximum": 22}, "zoom", where="path"),
                   _param("tileRow", {"type": "integer", "minimum": 0}, "row (y, from the north)", where="path"),
                   _param("tileCol", {"type": "integer", "minimum": 0}, "column (x)", where="path")]

    def op(summary: str, params: list[dict[str, Any]], response: dict[str, Any], op_id: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "operationId": op_id, "parameters": [*params, f_param],
                        "responses": {"200": response, **_ERRORS}}}

    p = OGC_PREFIX
    paths = {
        f"{p}/": op("Landing page", [], _ok("Links to the API definition, conformance and collections"), "landing"),
        f"{p}/conformance": op("Conformance classes", [], _ok("The classes this server conforms to"), "conformance"),
        f"{p}/api": op("This document", [], _ok("OpenAPI 3.0", OPENAPI), "api"),
        f"{p}/collections": op("Collections", [], _ok("Every collection the caller may read"), "collections"),
        f"{p}/collections/{{collectionId}}": op("One collection", [coll], _ok("Its metadata and links"),
                                                "collection"),
        f"{p}/collections/{{collectionId}}/queryables": op(
            "Queryable properties", [coll], _ok("JSON Schema", "application/schema+json"), "queryables"),
        f"{p}/collections/{{collectionId}}/items": op(
            "Features", items_params, _ok("GeoJSON FeatureCollection with numberMatched, numberReturned and a next "
                                          "link", "application/geo+json"), "items"),
        f"{p}/collections/{{collectionId}}/items/{{featureId}}": op(
            "One feature", [coll, _param("featureId", {"type": "string"}, "feature id", where="path"),
                            _param("crs", crs, "output CRS"),
                            _param("as-of", {"type": "string", "format": "date-time"}, "as it was then")],
            _ok("GeoJSON Feature", "application/geo+json"), "item"),
        f"{p}/tileMatrixSets": op("Tile matrix sets", [], _ok("WebMercatorQuad"), "tileMatrixSets"),
        f"{p}/tileMatrixSets/WebMercatorQuad": op("WebMercatorQuad", [], _ok("Its definition"), "tileMatrixSet"),
        f"{p}/collections/{{collectionId}}/tiles": op("Vector tilesets of a layer", [layer], _ok("Tilesets"),
                                                      "tilesets"),
        f"{p}/collections/{{collectionId}}/tiles/WebMercatorQuad": op(
            "The WebMercatorQuad tileset of a layer", [layer], _ok("Tileset metadata"), "tileset"),
        f"{p}/collections/{{collectionId}}/tiles/WebMercatorQuad/tilejson.json": op(
            "TileJSON 3.0 of a layer", [layer], _ok("TileJSON"), "tilejson"),
        f"{p}/collections/{{collectionId}}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}": op(
            "A vector tile", tile_params,
            {"description": "Mapbox Vector Tile (empty body when no feature meets it)",
             "content": {"application/vnd.mapbox-vector-tile": {"schema": {"type": "string", "format": "binary"}}}},
            "tile"),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": t("ogc.title"), "version": "1.0.0", "description": t("ogc.description")},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "session": {"type": "apiKey", "in": "cookie", "name": "sitroom_session"}}},
        "security": [{"bearer": []}, {"session": []}, {}],
        "paths": paths,
    }


def _api() -> Response:
    check_params(())
    rows = [(path, spec["get"]["summary"]) for path, spec in document()["paths"].items()]
    return answer(document(), lambda d: html_page(t("ogc.api_definition"), f"<p>{escape(d['info']['title'])}</p>"
                                                  + table(["path", t("ogc.title_column")], rows)), mimetype=OPENAPI)


def add_routes(bp: Blueprint) -> None:
    """Put ``/api`` on the ``/ogc`` blueprint."""
    bp.add_url_rule("/api", endpoint="api", view_func=_api)
