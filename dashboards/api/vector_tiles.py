"""Vector tiles of the feature layers for the pages' maps: Mapbox Vector Tiles made by PostGIS.

Public (HTTP): ``GET /api/v1/tiles/<layer>/<z>/<x>/<y>.mvt``. Public (Python): :func:`tile_response`.

The bytes come from :func:`layers.render.mvt.tile` (the one source, shared with OGC API - Tiles), cached per
process by the layer's data version. The ETag is ``"<layer>-<version>"``: a browser revalidates and gets a 304
until the layer changes (a tile made while transactions were in flight carries no ETag: a late commit may add to it
without moving the version). A zoom outside the layer's range (:mod:`layers.store.registry`) is a 404 naming the range;
a tile with no feature is an empty 200 body (an empty MVT is zero bytes).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from dashboards.api.openapi import endpoint
from dashboards.context import db_read
from dashboards.errors import ApiError
from layers.render import mvt
from layers.store.errors import NotFoundError
from layers.store.registry import LAYERS

MVT_TYPE = "application/vnd.mapbox-vector-tile"


@endpoint("/tiles/<layer>/<int:z>/<int:x>/<int:y>.mvt", "GET", tags=("layers",), operation_id="vector_tile",
          summary="Vector tile (Mapbox Vector Tile) of a layer's live features, made by PostGIS",
          description="XYZ scheme in Web Mercator (WebMercatorQuad; y from the north), extent 4096, buffer 64. "
                      "One MVT layer named like the Sitroom layer; feature id = the row id; attributes as the "
                      "layer registry declares them (times ISO 8601 UTC). ETag = the layer's data version.",
          responses={200: ("The tile (empty body when no feature meets it)", None, MVT_TYPE),
                     304: ("Not modified since the ETag sent in If-None-Match", None, MVT_TYPE)})
def vector_tile(layer: str, z: int, x: int, y: int) -> Any:
    return tile_response(layer, z, x, y)


def tile_response(layer: str, z: int, x: int, y: int) -> Response:
    """The tile ``z/x/y`` of ``layer`` as an HTTP response (304 when the browser's ETag is current): the one
    answer of the pages' route and of OGC API - Tiles (:mod:`dashboards.ogc.tiles`).

    Raises
    ------
    NotFoundError
        Unknown layer.
    ApiError
        A zoom outside the layer's range (404).
    """
    d = LAYERS.get(layer)
    if d is None:
        raise NotFoundError(f"unknown layer {layer!r}; known layers: {', '.join(LAYERS)}")
    if not d.min_zoom <= z <= d.max_zoom:
        raise ApiError(field="z", value=z, allowed=f"{d.min_zoom}..{d.max_zoom} for layer {layer}", status=404,
                       code="not_found")
    with db_read() as conn:
        t = mvt.tile(conn, layer, z, x, y)
    etag = f"{layer}-{t.version}"
    headers = {"Cache-Control": "no-cache"}
    if t.settled:
        headers["ETag"] = f'"{etag}"'
        if etag in request.if_none_match:
            return Response(status=304, headers=headers)
    return Response(t.data, status=200, mimetype=MVT_TYPE, headers=headers)
