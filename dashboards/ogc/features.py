"""OGC API - Features views: landing page, conformance, collections, items, one item, queryables.

Public (HTTP, under ``/ogc``): ``GET /``, ``/conformance``, ``/collections``, ``/collections/<layer>``,
``/collections/<layer>/items``, ``/collections/<layer>/items/<id>``, ``/collections/<layer>/queryables``.
Public (Python): :func:`add_routes`, :func:`parse_datetime`, :func:`collection_doc`.

Query parameters of ``items``: ``limit`` (1..10000, default :data:`DEFAULT_LIMIT`), ``offset``, ``after`` (the
cursor of a ``next`` link), ``bbox`` and ``bbox-crs``, ``crs``, ``datetime`` (RFC 3339 instant or interval,
``..`` open), ``as-of`` (the store as it was then), the layer's vocabulary attributes (``kind=fire,flood``),
``filter`` with ``filter-lang=cql2-text`` and ``filter-crs`` (CRS84). Anything else is a 400 naming what is allowed.
The data come from :mod:`layers.read.features`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any

from flask import Blueprint, Response, request

from dashboards.auth import allowed
from dashboards.context import db_engine, db_read
from dashboards.errors import ParameterError
from dashboards.i18n import t
from dashboards.ogc.common import (
    CONFORMANCE,
    GEOJSON,
    HTML,
    JSON,
    OPENAPI,
    answer,
    check_params,
    html_page,
    link,
    links_list,
    self_links,
    table,
    url,
)
from layers.read import features as F
from layers.store.errors import NotFoundError, ValidationError
from layers.store.registry import LAYERS

DEFAULT_LIMIT = 100
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
ALLOWED_TIME = ("an RFC 3339 date-time with offset (2026-07-01T08:30:00+08:00, 2026-07-01T00:30:00Z) or an "
                "interval start/end, either end '..' or empty for open")
_ITEMS_PARAMS = ("limit", "offset", "after", "bbox", "bbox-crs", "crs", "datetime", "as-of", "filter", "filter-lang",
                 "filter-crs")
_POP_PARAMS = ("limit", "offset", "after", "bbox", "bbox-crs", "crs")


def parse_datetime(raw: str, field: str = "datetime") -> tuple[datetime | None, datetime | None]:
    """An RFC 3339 instant ``T`` -> ``(T, T)``; an interval ``a/b`` (``..`` or empty: open) -> ``(a, b)``.

    Raises
    ------
    ParameterError
        Not that, a time without an offset, or an interval that ends before it starts.

    >>> parse_datetime("2026-07-01T00:00:00Z/..")
    (datetime.datetime(2026, 7, 1, 0, 0, tzinfo=datetime.timezone.utc), None)
    """
    def one(text: str) -> datetime | None:
        text = text.strip()
        if text in ("", ".."):
            return None
        try:
            value = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ParameterError(field=field, value=raw, allowed=ALLOWED_TIME) from None
        if value.tzinfo is None or "T" not in text.upper():
            raise ParameterError(field=field, value=raw, allowed=ALLOWED_TIME)
        return value

    parts = raw.split("/")
    if len(parts) == 1:
        at = one(parts[0])
        if at is None:
            raise ParameterError(field=field, value=raw, allowed=ALLOWED_TIME)
        return at, at
    if len(parts) != 2:
        raise ParameterError(field=field, value=raw, allowed=ALLOWED_TIME)
    start, end = one(parts[0]), one(parts[1])
    if start is not None and end is not None and end < start:
        raise ParameterError(field=field, value=raw, allowed="an interval whose end is not before its start")
    return start, end


def _int(name: str, default: int | None, lo: int, hi: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < lo or (hi is not None and value > hi):
        raise ParameterError(field=name, value=raw, allowed=f"an integer in {lo}..{hi if hi is not None else ''}")
    return value


def _numbers(name: str) -> list[float] | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ParameterError(field=name, value=raw, allowed="four numbers minx,miny,maxx,maxy (in bbox-crs)")
    return values


def _param_error(e: ValidationError) -> ParameterError:
    p = e.problems[0]
    return ParameterError(field=p.field, value=request.args.get(p.field or "", p.value), allowed=p.allowed)


def _known(name: str) -> None:
    if name in LAYERS:
        return
    F.population_res(name)  # NotFoundError naming the collections


# ------------------------------------------------------------------------------------------------- documents

def _landing() -> Response:
    check_params(())
    doc = {
        "title": t("ogc.title"),
        "description": t("ogc.description"),
        "links": [
            *self_links(""),
            link(url("/api", {"f": "json"}), "service-desc", OPENAPI, t("ogc.api_definition")),
            link(url("/api", {"f": "html"}), "service-doc", HTML, t("ogc.api_definition")),
            link(url("/conformance"), "conformance", JSON, t("ogc.conformance")),
            link(url("/collections"), "data", JSON, t("ogc.collections")),
            link(url("/tileMatrixSets"), "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", JSON,
                 t("ogc.tile_matrix_sets")),
        ],
    }
    return answer(doc, lambda d: html_page(d["title"], f"<p>{escape(d['description'])}</p>{links_list(d['links'])}"))


def _conformance() -> Response:
    check_params(())
    doc = {"conformsTo": list(CONFORMANCE)}
    return answer(doc, lambda d: html_page(t("ogc.conformance"), "<ul>" + "".join(
        f"<li>{escape(c)}</li>" for c in d["conformsTo"]) + "</ul>"))


def collection_doc(name: str, extent: Mapping[str, Any] | None, *, population: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The metadata document of one collection (OGC API - Common Part 2, Features, Tiles links)."""
    base = f"/collections/{name}"
    links = [
        link(url(base, {"f": "json"}), "self", JSON, t("ogc.this_document")),
        link(url(base, {"f": "html"}), "alternate", HTML, t("ogc.as_html")),
        link(url(f"{base}/items", {"f": "json"}), "items", GEOJSON, t("ogc.items")),
        link(url(f"{base}/items", {"f": "html"}), "items", HTML, t("ogc.items")),
        link(url(f"{base}/queryables", {"f": "json"}), "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "application/schema+json", t("ogc.queryables")),
    ]
    if name in LAYERS:
        links += [
            link(url(f"{base}/tiles"), "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", JSON,
                 t("ogc.tiles")),
            link(url(f"{base}/tiles/WebMercatorQuad/tilejson.json"), "describedby", JSON, "TileJSON"),
        ]
        title = t(f"layer.{name}")
        description = t("ogc.layer_description", layer=title)
    else:
        res = F.population_res(name)
        title = t("ogc.population_title", res=res)
        description = t("ogc.population_description", res=res, source=(population or {}).get("source", ""))
    doc: dict[str, Any] = {"id": name, "title": title, "description": description, "itemType": "feature",
                           "links": links, "crs": list(F.CRSS), "storageCrs": F.CRS84}
    ext: dict[str, Any] = {}
    if extent and extent.get("bbox"):
        ext["spatial"] = {"bbox": [extent["bbox"]], "crs": F.CRS84}
    if extent and extent.get("interval"):
        ext["temporal"] = {"interval": [extent["interval"]], "trs": TRS}
    if ext:
        doc["extent"] = ext
    if extent and "count" in extent:
        doc["numberMatched"] = extent["count"]
    return doc


def _collection_rows(docs: list[dict[str, Any]]) -> str:
    return table([t("ogc.collection"), t("ogc.title_column"), t("ogc.count"), t("ogc.items")],
                 [(("a", url(f"/collections/{d['id']}", {"f": "html"}), d["id"]), d["title"],
                   d.get("numberMatched", ""), ("a", url(f"/collections/{d['id']}/items", {"f": "html"}),
                                                t("ogc.items"))) for d in docs])


def _collections() -> Response:
    check_params(())
    with db_read() as conn:
        ext = F.extents(conn)
        pops = F.population_collections(conn)
        pop_counts = {r: int(p["cell_count"]) for r, p in pops.items()}
    docs = [collection_doc(n, ext[n]) for n in LAYERS if allowed("read", n)]
    docs += [collection_doc(f"{F.POPULATION_PREFIX}{r}", {"count": pop_counts[r]}, population=pops[r])
             for r in pops if allowed("read", f"{F.POPULATION_PREFIX}{r}")]
    doc = {"links": self_links("/collections"), "collections": docs}
    return answer(doc, lambda d: html_page(t("ogc.collections"), _collection_rows(d["collections"])))


def _collection(layer: str) -> Response:
    check_params(())
    _known(layer)
    with db_read() as conn:
        if layer in LAYERS:
            doc = collection_doc(layer, F.extents(conn)[layer])
        else:
            pops = F.population_collections(conn)
            res = F.population_res(layer)
            if res not in pops:
                raise NotFoundError(f"no population at H3 resolution {res} (run sitroom population build)")
            doc = collection_doc(layer, {"count": int(pops[res]["cell_count"])}, population=pops[res])
    return answer(doc, lambda d: html_page(d["title"], f"<p>{escape(d['description'])}</p>"
                                                     f"{links_list(d['links'])}"))


def _queryables(layer: str) -> Response:
    check_params(())
    _known(layer)
    props = F.queryables(LAYERS[layer]) if layer in LAYERS else F.population_queryables()
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url(f"/collections/{layer}/queryables"),
           "type": "object", "title": layer, "properties": props, "additionalProperties": False}
    return answer(doc, lambda d: html_page(f"{t('ogc.queryables')}: {layer}", table(
        [t("ogc.property"), t("ogc.type"), t("ogc.values")],
        [(k, v.get("type") or v.get("format"), ", ".join(v.get("enum", []))) for k, v in d["properties"].items()])),
        mimetype="application/schema+json")


# ------------------------------------------------------------------------------------------------- features

def _crs_param(name: str) -> F.OutputCRS:
    try:
        return F.crs_of(request.args.get(name), field=name)
    except ValidationError as e:
        raise _param_error(e) from e


def _bbox() -> tuple[float, float, float, float] | None:
    raw = _numbers("bbox")
    if request.args.get("bbox-crs") is not None and raw is None:
        raise ParameterError(field="bbox-crs", value=request.args["bbox-crs"], allowed="only together with bbox")
    if raw is None:
        return None
    try:
        return F.bbox_to_lonlat(raw, _crs_param("bbox-crs"))
    except ValidationError as e:
        raise ParameterError(field="bbox", value=request.args["bbox"], allowed=e.problems[0].allowed) from e


def _items_html(layer: str, doc: Mapping[str, Any]) -> str:
    feats = doc["features"]
    keys: list[str] = []
    for f in feats:
        keys += [k for k in f["properties"] if k not in keys]
    rows = [(("a", url(f"/collections/{layer}/items/{f['id']}", {"f": "html"}), f["id"]),
             *(f["properties"].get(k) for k in keys)) for f in feats]
    nxt = next((li for li in doc["links"] if li["rel"] == "next"), None)
    more = f'<p><a href="{escape(nxt["href"].replace("f=json", "f=html"))}">{escape(t("ogc.next_page"))}</a></p>' \
        if nxt else ""
    summary = t("ogc.items_summary", returned=doc["numberReturned"], matched=doc.get("numberMatched", "?"))
    return html_page(f"{t('ogc.items')}: {layer}", f"<p>{escape(summary)}</p>{table(['id', *keys], rows)}{more}")


def _items(layer: str) -> Response:
    _known(layer)
    d = LAYERS.get(layer)
    vocab_params = tuple(d.vocabs) if d is not None else ()
    check_params((*(_ITEMS_PARAMS if d is not None else _POP_PARAMS), *vocab_params))
    limit = _int("limit", DEFAULT_LIMIT, 1, F.MAX_LIMIT)
    offset = _int("offset", 0, 0)
    after_raw = request.args.get("after")
    out_crs = _crs_param("crs")
    bbox = _bbox()
    assert limit is not None and offset is not None
    args: dict[str, Any] = {"bbox": bbox, "crs": out_crs, "limit": limit, "offset": offset,
                            "count": after_raw is None}
    try:
        if d is None:
            after = int(after_raw) if after_raw is not None else None
            with db_read() as conn:
                fc = F.fetch_population(conn, layer, after=after, **args)
        else:
            after = _int("after", None, 0)
            if (lang := request.args.get("filter-lang")) is not None and lang != "cql2-text":
                raise ParameterError(field="filter-lang", value=lang, allowed=["cql2-text"])
            if (fcrs := request.args.get("filter-crs")) is not None and F.crs_of(fcrs, "filter-crs").uri != F.CRS84:
                raise ParameterError(field="filter-crs", value=fcrs, allowed=[F.CRS84])
            start, end = parse_datetime(request.args["datetime"]) if "datetime" in request.args else (None, None)
            at = None
            if "as-of" in request.args:
                at, at_end = parse_datetime(request.args["as-of"], "as-of")
                if at != at_end:
                    raise ParameterError(field="as-of", value=request.args["as-of"], allowed="one instant")
            equals = {a: request.args[a].split(",") for a in vocab_params if a in request.args}
            with (db_engine().connect() if at is not None else db_read()) as conn:
                fc = F.fetch_items(conn, layer, start=start, end=end, equals=equals, cql=request.args.get("filter"),
                                   at=at, after=after, **args)
    except ValueError as e:
        if isinstance(e, ValidationError):
            raise _param_error(e) from e
        raise ParameterError(field="after", value=after_raw, allowed="the cursor of a next link") from e
    nxt = fc.pop("next_after")
    keep = {k: v for k, v in request.args.items() if k not in ("f", "offset", "after")}
    links = self_links(f"/collections/{layer}/items", GEOJSON)
    if nxt is not None:
        links.append(link(url(f"/collections/{layer}/items", {**keep, "after": nxt, "f": "json"}), "next", GEOJSON,
                          t("ogc.next_page")))
    links.append(link(url(f"/collections/{layer}"), "collection", JSON, t("ogc.collection")))
    doc = {**fc, "timeStamp": datetime.now().astimezone().isoformat(timespec="seconds"), "links": links}
    headers = {"Content-Crs": f"<{out_crs.uri}>"}
    return answer(doc, lambda x: _items_html(layer, x), mimetype=GEOJSON, headers=headers)


def _item(layer: str, item_id: str) -> Response:
    _known(layer)
    check_params(("crs",) + (("as-of",) if layer in LAYERS else ()))
    out_crs = _crs_param("crs")
    if layer in LAYERS:
        try:
            fid = int(item_id)
        except ValueError:
            raise NotFoundError(f"no feature {item_id!r} in collection {layer!r} (ids are integers)") from None
        at = parse_datetime(request.args["as-of"], "as-of")[0] if "as-of" in request.args else None
        with (db_engine().connect() if at is not None else db_read()) as conn:
            feature = F.fetch_item(conn, layer, fid, crs=out_crs, at=at)
    else:
        with db_read() as conn:
            feature = F.population_item(conn, layer, item_id, crs=out_crs)
    feature["links"] = [*self_links(f"/collections/{layer}/items/{item_id}", GEOJSON),
                        link(url(f"/collections/{layer}"), "collection", JSON, t("ogc.collection"))]
    return answer(feature, lambda f: html_page(f"{layer} {item_id}", table(
        [t("ogc.property"), t("ogc.value")], list(f["properties"].items()))), mimetype=GEOJSON,
        headers={"Content-Crs": f"<{out_crs.uri}>"})


def add_routes(bp: Blueprint) -> None:
    """Put the Features views on the ``/ogc`` blueprint."""
    bp.add_url_rule("", endpoint="landing", view_func=_landing)
    bp.add_url_rule("/", endpoint="landing_slash", view_func=_landing)
    bp.add_url_rule("/conformance", endpoint="conformance", view_func=_conformance)
    bp.add_url_rule("/collections", endpoint="collections", view_func=_collections)
    bp.add_url_rule("/collections/<layer>", endpoint="collection", view_func=_collection)
    bp.add_url_rule("/collections/<layer>/items", endpoint="items", view_func=_items)
    bp.add_url_rule("/collections/<layer>/items/<item_id>", endpoint="item", view_func=_item)
    bp.add_url_rule("/collections/<layer>/queryables", endpoint="queryables", view_func=_queryables)

