"""What every OGC API view shares: the format asked for, the query parameters allowed, links, and the answer
as JSON or as an HTML page.

Public: :data:`CONFORMANCE`, :data:`JSON`, :data:`GEOJSON`, :data:`HTML`, :data:`OPENAPI`, :data:`MVT`, :func:`wants_html`,
:func:`check_params`, :func:`url`, :func:`link`, :func:`answer`, :func:`html_page`, :func:`table`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from dashboards.context import OGC_PREFIX
from dashboards.errors import ParameterError, json_response
from dashboards.i18n import LANGUAGES, current_lang, t

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
MVT = "application/vnd.mapbox-vector-tile"
#: query parameters every view takes: the format and the language
COMMON_PARAMS = ("f", "lang")
_FORMATS = {"json": JSON, "html": HTML}

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


def wants_html() -> bool:
    """Whether the request asks for HTML: ``f=html``, or (without ``f``) a browser's ``Accept``."""
    f = request.args.get("f")
    if f is not None:
        if f not in _FORMATS:
            raise ParameterError(field="f", value=f, allowed=list(_FORMATS))
        return f == "html"
    return request.accept_mimetypes.best_match([JSON, GEOJSON, HTML], default=JSON) == HTML


def check_params(allowed: Iterable[str]) -> None:
    """Refuse (400) a query parameter the view does not define (OGC API - Features /req/core/query-param-unknown)."""
    names = (*COMMON_PARAMS, *allowed)
    for name in request.args:
        if name not in names:
            raise ParameterError(f"unknown query parameter {name!r}; allowed here: {', '.join(names)}",
                                 field=name, value=request.args.get(name), allowed=list(names))


def url(path: str, params: Mapping[str, Any] | None = None) -> str:
    """The absolute URL of ``/ogc<path>`` with ``params`` (None values left out): GIS clients follow links as they
    are given."""
    q = {k: v for k, v in (params or {}).items() if v is not None}
    return f"{request.host_url.rstrip('/')}{OGC_PREFIX}{path}" + (f"?{urlencode(q)}" if q else "")


def link(href: str, rel: str, type_: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    """One link object."""
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    out.update(extra)
    return out


def self_links(path: str, json_type: str = JSON, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """``self`` (JSON) and ``alternate`` (HTML) links of a document, keeping its query parameters."""
    keep = {k: v for k, v in (params if params is not None else request.args).items() if k != "f"}
    return [link(url(path, {**keep, "f": "json"}), "self", json_type, t("ogc.this_document")),
            link(url(path, {**keep, "f": "html"}), "alternate", HTML, t("ogc.as_html"))]


def answer(doc: Mapping[str, Any], render: Callable[[Mapping[str, Any]], str], *, mimetype: str = JSON,
           headers: Mapping[str, str] | None = None) -> Response:
    """``doc`` as JSON (``mimetype``), or as the HTML page ``render(doc)`` when the request asks for HTML."""
    if wants_html():
        return Response(render(doc), mimetype=HTML, headers=dict(headers or {}))
    return json_response(doc, mimetype=mimetype, headers=headers)


def html_page(title: str, body: str) -> str:
    """A plain page in the server's style, with the language switch (everything escaped by the callers)."""
    lang = current_lang()
    switch = " ".join(f'<a href="?{escape(urlencode({**request.args, "lang": code}))}" lang="{code}">'
                      f'{escape(t("lang.zh" if code == "zh-CN" else "lang.en"))}</a>'
                      for code in LANGUAGES if code != lang)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="/assets/sitroom.css"></head><body class="sr-ogc">'
            f'<main class="sr-ogc-page"><nav class="sr-ogc-crumbs"><a href="{OGC_PREFIX}?f=html">'
            f'{escape(t("ogc.title"))}</a> · <a href="{OGC_PREFIX}/collections?f=html">'
            f'{escape(t("ogc.collections"))}</a> <span class="sr-ogc-lang">{switch}</span></nav>'
            f"<h1>{escape(title)}</h1>{body}</main></body></html>")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; cells are escaped unless they are ``Markup`` (a tuple ``("a", href, text)`` is a link)."""
    def cell(v: Any) -> str:
        if isinstance(v, tuple) and len(v) == 3 and v[0] == "a":
            return f'<a href="{escape(str(v[1]))}">{escape(str(v[2]))}</a>'
        return escape("" if v is None else str(v))

    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="sr-ogc-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def links_list(links: Iterable[Mapping[str, Any]]) -> str:
    """The links of a document as an HTML list (rel, title, type)."""
    items = "".join(f'<li><a href="{escape(str(li["href"]))}">{escape(str(li.get("title") or li["rel"]))}</a> '
                    f'<small>{escape(str(li["rel"]))} · {escape(str(li.get("type", "")))}</small></li>'
                    for li in links if not li.get("templated"))
    return f"<ul>{items}</ul>"
