"""The endpoint registry of the HTTP API and the OpenAPI 3.1 document built from it.

Public: :class:`Endpoint`, :data:`REGISTRY`, :data:`SCHEMAS`, :data:`STORE_CHECKED`, :func:`endpoint`,
:func:`query`, :func:`register_schema`, :func:`describe`, :func:`parse_query`, :func:`validate_body`,
:func:`view_function`, :func:`document`.

An endpoint module declares each view once, next to its code, and the declaration is both the Flask route and the
OpenAPI operation, so the two never drift apart::

    @endpoint("/layers/<layer>", "GET", summary="Features of one layer", tags=("layers",),
              parameters=[query("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000})],
              responses={200: ("A GeoJSON FeatureCollection", {"$ref": "#/components/schemas/FeatureCollection"})})
    def layer_features(layer: str, *, limit: int) -> dict: ...

The view gets its path variables, and its declared query parameters parsed and checked against their schemas
(integer / number / boolean / string with enum / comma-separated array), as keyword arguments; a view with a
``request_body`` also gets ``body``: the parsed JSON, validated against that same schema (JSON Schema 2020-12,
by ``jsonschema-rs``) with the schema's top-level defaults filled in. So a view never checks by hand what its
schema already says. Undeclared query parameters are refused (400 naming the allowed ones), except ``lang``. A view
returns a dict or list (sent as JSON), ``(obj, status)``, or a Response. Paths are relative to ``/api/v1``; import
the module in :func:`dashboards.api.declare_endpoints`.

Every refusal names the field (``scope.radius_m``, ``zones[0].geometry``; an item of an array of numbers or
strings is reported as the array), the value received and what is allowed, in words made from the schema
(:func:`describe`). A schema may set, on any subschema, ``x-error-code`` (a code, or ``{keyword: code}``) and
``x-error-status`` for the refusals found under it: ``res`` answers ``invalid_resolution``, an unknown kind in a
list ``unknown_kind``; fields that the store validates as data (an annotation's symbol, a feed's features) answer
422 like the store does.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from flask import Response, request

from dashboards.context import API_PREFIX
from dashboards.errors import ApiError, ParameterError, json_response

ALWAYS_ALLOWED_QUERY = frozenset({"lang"})
#: schema annotations for a field the store checks as data (a vocabulary, a label): refused with 422, as the store
#: refuses it, not 400
STORE_CHECKED: dict[str, Any] = {"x-error-status": 422, "x-error-code": "validation_error"}
_RULE_VAR = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_CONVERTER_SCHEMA = {"int": {"type": "integer"}, "float": {"type": "number"}, "path": {"type": "string"},
                     "string": {"type": "string"}, None: {"type": "string"}}


@dataclass(frozen=True)
class Endpoint:
    """One declared API operation: a Flask rule (relative to /api/v1), a method, the view and its OpenAPI spec."""

    rule: str
    method: str
    view: Callable[..., Any]
    operation_id: str
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    request_body: dict[str, Any] | None = None
    responses: dict[int, tuple[str, dict[str, Any] | None, str]] = field(default_factory=dict)

    @property
    def openapi_path(self) -> str:
        """``/layers/<layer>`` -> ``/layers/{layer}``."""
        return _RULE_VAR.sub(lambda m: "{" + m["name"] + "}", self.rule)


#: (rule, METHOD) -> Endpoint, filled by :func:`endpoint` when endpoint modules are imported
REGISTRY: dict[tuple[str, str], Endpoint] = {}

#: components/schemas of the document; endpoint modules add theirs with :func:`register_schema`
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
    },
    "ErrorDetail": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable snake_case error code"},
            "message": {"type": "string", "description": "translated message (zh-CN or en per request)"},
            "detail": {"type": ["string", "null"], "description": "what was received and what is allowed"},
            "field": {"type": ["string", "null"]},
            "value": {},
            "allowed": {},
            "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
            "context": {"type": "object", "description": "a conflict's state: e.g. the task holding a resource"},
        },
    },
    "Problem": {
        "type": "object",
        "properties": {"row": {"type": ["integer", "null"]}, "field": {"type": ["string", "null"]}, "value": {},
                       "allowed": {}, "file": {"type": ["string", "null"]}},
    },
    "Geometry": {
        "title": "a GeoJSON geometry",
        "type": "object",
        "required": ["type"],
        "description": "GeoJSON geometry (RFC 7946), EPSG:4326 longitude/latitude",
        "properties": {"type": {"type": "string", "enum": [
            "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
            "GeometryCollection"]}, "coordinates": {"type": "array"}, "geometries": {"type": "array"}},
    },
    "Feature": {
        "title": "a GeoJSON Feature",
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {"type": {"const": "Feature"}, "id": {"type": ["integer", "string"]},
                       "geometry": {"oneOf": [{"$ref": "#/components/schemas/Geometry"}, {"type": "null"}]},
                       "properties": {"type": ["object", "null"]}},
    },
    "FeatureCollection": {
        "title": "a GeoJSON FeatureCollection",
        "type": "object",
        "required": ["type", "features"],
        "properties": {"type": {"const": "FeatureCollection"},
                       "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}}},
    },
}

_ERROR_RESPONSES = {
    400: "Bad request: a parameter cannot be parsed or is out of range (names the field)",
    404: "Not found",
    422: "Valid syntax but rejected input (names the field, value and what is allowed)",
    500: "Internal error (no traceback)",
    503: "Database unavailable; retry later",
}


def register_schema(name: str, schema: Mapping[str, Any]) -> str:
    """Add a reusable schema under components/schemas; returns its ``$ref``."""
    SCHEMAS[name] = dict(schema)
    return f"#/components/schemas/{name}"


def query(name: str, schema: Mapping[str, Any], description: str = "", *, required: bool = False,
          example: Any = None) -> dict[str, Any]:
    """An OpenAPI query parameter (arrays are comma-separated: ``style=form, explode=false``)."""
    p: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": dict(schema)}
    if description:
        p["description"] = description
    if schema.get("type") == "array":
        p["style"], p["explode"] = "form", False
    if example is not None:
        p["example"] = example
    return p


def endpoint(rule: str, method: str = "GET", *, summary: str, description: str = "", tags: Iterable[str] = (),
             parameters: Iterable[Mapping[str, Any]] = (), request_body: Mapping[str, Any] | None = None,
             responses: Mapping[int, tuple[str, Mapping[str, Any] | None] | tuple[str, Mapping[str, Any] | None,
                                                                                     str]] | None = None,
             operation_id: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an API operation; see the module docstring.

    Parameters
    ----------
    rule : str
        Flask rule relative to ``/api/v1``, e.g. ``"/layers/<layer>"``.
    method : str
        HTTP method.
    summary, description : str
        For the OpenAPI document.
    tags : iterable of str
        OpenAPI tags.
    parameters : iterable of dict
        Query parameters made with :func:`query` (path parameters are derived from the rule).
    request_body : dict, optional
        JSON schema of the request body (``application/json``); the view receives ``body``.
    responses : dict, optional
        ``{status: (description, schema or None[, content type])}``; default ``{200: ("OK", None)}``. Error
        responses 400/404/422/500/503 with the Error schema are added.
    operation_id : str, optional
        Default: the view's function name.
    """
    verb = method.upper()

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        resp: dict[int, tuple[str, dict[str, Any] | None, str]] = {}
        for status, spec in (responses or {200: ("OK", None)}).items():
            desc, schema, *ctype = spec
            resp[int(status)] = (desc, dict(schema) if schema is not None else None,
                                 ctype[0] if ctype else "application/json")
        ep = Endpoint(rule=rule, method=verb, view=view, operation_id=operation_id or view.__name__,
                      summary=summary, description=description, tags=tuple(tags),
                      parameters=tuple(dict(p) for p in parameters),
                      request_body=dict(request_body) if request_body is not None else None, responses=resp)
        for other in REGISTRY.values():
            if other.operation_id == ep.operation_id and (other.rule, other.method) != (rule, verb):
                raise ValueError(f"operation id {ep.operation_id!r} is declared twice "
                                 f"({other.method} {other.rule} and {verb} {rule})")
        REGISTRY[(rule, verb)] = ep
        view.__dict__["endpoint"] = ep
        return view

    return decorate


def _parse_scalar(name: str, raw: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type", "string")
    allowed = describe(schema)
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,18}", raw.strip()):
            raise ParameterError(field=name, value=raw, allowed=allowed)
        value: Any = int(raw)
    elif kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise ParameterError(field=name, value=raw, allowed=allowed) from None
        if not math.isfinite(value):
            raise ParameterError(field=name, value=raw, allowed=allowed)
    elif kind == "boolean":
        low = raw.strip().lower()
        if low not in {"true", "false", "1", "0"}:
            raise ParameterError(field=name, value=raw, allowed=allowed)
        value = low in {"true", "1"}
    else:
        value = raw
        if "maxLength" in schema and len(raw) > schema["maxLength"]:
            raise ParameterError(field=name, value=raw, allowed=allowed)
    if "enum" in schema and value not in schema["enum"]:
        raise ParameterError(field=name, value=raw, allowed=[str(v) for v in schema["enum"]])
    if "minimum" in schema and value < schema["minimum"]:
        raise ParameterError(field=name, value=raw, allowed=allowed)
    if "maximum" in schema and value > schema["maximum"]:
        raise ParameterError(field=name, value=raw, allowed=allowed)
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise ParameterError(field=name, value=raw, allowed=allowed)
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        raise ParameterError(field=name, value=raw, allowed=allowed)
    return value


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, (int, float)) and float(x).is_integer() else str(x)


def _range(schema: Mapping[str, Any], integer: bool) -> str:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if integer and lo is not None and hi is not None:
        return f" in {_num(lo)}..{_num(hi)}"
    low = (f"({_num(xlo)}", True) if xlo is not None else (f"[{_num(lo)}", True) if lo is not None else ("", False)
    high = (f"{_num(xhi)})", True) if xhi is not None else (f"{_num(hi)}]", True) if hi is not None else ("", False)
    if low[1] and high[1]:
        return f" in {low[0]}, {high[0]}"
    if low[1]:
        return f" > {_num(xlo)}" if xlo is not None else f" >= {_num(lo)}"
    if high[1]:
        return f" < {_num(xhi)}" if xhi is not None else f" <= {_num(hi)}"
    return ""


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return SCHEMAS.get(ref.rsplit("/", 1)[1], {})
    return schema


def describe(schema: Mapping[str, Any]) -> str:
    """What a schema allows, in words, for the ``allowed`` of a refusal.

    Examples
    --------
    >>> describe({"type": "number", "exclusiveMinimum": 0, "maximum": 500000})
    'a number in (0, 500000]'
    >>> describe({"type": "integer", "minimum": 5, "maximum": 10})
    'an integer in 5..10'
    >>> describe({"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 3})
    'a list of at most 3 items, each one of a, b'
    """
    schema = _resolve(schema)
    if isinstance(schema.get("title"), str):
        return str(schema["title"])
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list):
            return " or ".join(describe(s) for s in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "const" in schema:
        return f"exactly {schema['const']!r}"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join("null" if k == "null" else describe({**schema, "type": k}) for k in kind)
    if kind == "array":
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        count = (f"{lo} " if lo is not None and lo == hi else f"{lo}..{hi} " if lo is not None and hi is not None
                 else f"at least {lo} " if lo is not None else f"at most {hi} " if hi is not None else "")
        items = schema.get("items")
        return f"a list of {count}items" + (f", each {describe(items)}" if isinstance(items, Mapping) else "")
    if kind in ("integer", "number"):
        return ("an integer" if kind == "integer" else "a number") + _range(schema, kind == "integer")
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        text = "a string"
        if "maxLength" in schema:
            text += f" of at most {schema['maxLength']} characters"
        if "pattern" in schema:
            text += f" matching {schema['pattern']}"
        return text
    if kind == "object":
        names = list(schema.get("properties") or {})
        return "a JSON object" + (f" with members among {', '.join(names)}" if names else "")
    return str(schema.get("description") or "a value as documented in /api/v1/openapi.json")


def _describe(schema: Mapping[str, Any]) -> str:
    """:func:`describe` for a query parameter (arrays are comma-separated)."""
    if schema.get("type") == "array":
        n = ""
        if schema.get("minItems") is not None and schema.get("minItems") == schema.get("maxItems"):
            n = f"{schema['minItems']} "
        items = schema.get("items", {})
        noun = {"integer": "integers", "number": "numbers", "boolean": "booleans"}.get(items.get("type"), "strings")
        if "enum" in items:
            noun += " from " + ", ".join(map(str, items["enum"]))
        return f"{n}comma-separated {noun}"
    return describe(schema)


# ------------------------------------------------------------------------------------------------ request bodies

#: refusals read from the validator before the best one is chosen (a 100k-point body may hold 100k errors)
_MAX_ERRORS = 64
_WEAK = frozenset({"required", "type", "oneOf", "anyOf"})
_validators: dict[str, Any] = {}


def _body_validator(ep: Endpoint) -> Any:
    v = _validators.get(ep.operation_id)
    if v is None:
        root = {**(ep.request_body or {}), "components": {"schemas": SCHEMAS}}
        v = _validators[ep.operation_id] = jsonschema_rs.Draft202012Validator(root)
    return v


def _at(doc: Any, path: Sequence[Any]) -> Any:
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def _field(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "body"


def _schemas_along(root: Mapping[str, Any], evaluation_path: Sequence[Any]) -> list[Mapping[str, Any]]:
    """Every subschema met on the way to a refusal, root first (``$ref`` followed), the failing keyword's last."""
    out = [root]
    cur: Any = root
    for part in evaluation_path:
        if part == "$ref" and isinstance(cur, Mapping):
            cur = _resolve(cur)
        else:
            cur = _at(cur, [part])
        if isinstance(cur, Mapping):
            out.append(cur)
    return out


def _best(errors: list[Any], body: Any) -> Any:
    """The refusal to report: an unknown member first (as the API always did), else the first; inside ``oneOf`` /
    ``anyOf``, the branch the value was meant for (not refused by its JSON type or its ``type`` member; then the one
    that got deepest, with more than a missing member), and in it a refused ``type`` member, else the deepest
    refusal."""
    best = next((e for e in errors if e.kind.name == "additionalProperties"), errors[0])
    while best.kind.name in ("oneOf", "anyOf") and getattr(best.kind, "context", None):
        base = list(best.instance_path)

        def ruled_out(branch: list[Any], base: list[Any] = base) -> bool:
            return any((list(e.instance_path) == base and e.kind.name == "type")
                       or (list(e.instance_path) == [*base, "type"] and e.kind.name in ("enum", "const"))
                       for e in branch)

        branches = [b for b in best.kind.context if b]
        if not branches:
            break
        live = [b for b in branches if not ruled_out(b)] or branches
        branch = max(live, key=lambda b: (max(len(e.instance_path) for e in b),
                                          any(e.kind.name not in _WEAK for e in b), -len(b)))
        best = max(branch, key=lambda e: (_discriminates(e), len(e.instance_path), e.kind.name not in _WEAK))
    return best


def _discriminates(err: Any) -> bool:
    """A refused ``type`` member (a LineString where a Point is wanted): it explains the other refusals."""
    path = list(err.instance_path)
    return bool(path) and path[-1] == "type" and err.kind.name in ("enum", "const")


def _refusal(ep: Endpoint, body: Any, err: Any) -> ApiError:
    root = {**(ep.request_body or {})}
    path = list(err.instance_path)
    kind = err.kind.name
    chain = _schemas_along(root, list(err.evaluation_path)[:-1])
    here = chain[-1]
    code: str | None = None
    status: int | None = None
    for sch in chain:  # the deepest annotation wins
        ann = sch.get("x-error-code")
        if isinstance(ann, str) or (isinstance(ann, Mapping) and kind in ann):
            code = ann if isinstance(ann, str) else ann[kind]
        if isinstance(sch.get("x-error-status"), int):
            status = int(sch["x-error-status"])
    if kind == "additionalProperties":
        name = sorted(map(str, err.kind.unexpected))[0]
        return ParameterError(field=_field([*path, name]), value=_at(body, [*path, name]),
                              allowed=list(here.get("properties") or {}) or ["no members"],
                              code="unknown_parameter", status=status)
    if kind == "required":
        prop = str(err.kind.property)
        return ParameterError(field=_field([*path, prop]), value=None,
                              allowed=describe((here.get("properties") or {}).get(prop, {})),
                              code="missing_parameter", status=status)
    if not path and kind == "type":
        return ParameterError(field="body", value=type(body).__name__, allowed=describe(root),
                              code=code, status=status)
    value = _at(body, path)
    if path and isinstance(path[-1], int) and not isinstance(value, (dict, list)):
        path = path[:-1]  # an item of an array of numbers or strings: name the array
    allowed: Any = [str(o) for o in err.kind.options] if kind == "enum" else describe(here)
    return ParameterError(field=_field(path), value=value, allowed=allowed, code=code, status=status)


def validate_body(ep: Endpoint, body: Any) -> Any:
    """``body`` checked against ``ep.request_body``, with the schema's top-level defaults filled in.

    Raises
    ------
    ParameterError
        The body does not fit the schema: names the field, the value and what is allowed (status 400, or the
        schema's ``x-error-status``).
    """
    errors = list(itertools.islice(_body_validator(ep).iter_errors(body), _MAX_ERRORS))
    if errors:
        raise _refusal(ep, body, _best(errors, body))
    props = (ep.request_body or {}).get("properties")
    if isinstance(body, dict) and isinstance(props, Mapping):
        missing = {k: p["default"] for k, p in props.items() if k not in body and "default" in p}
        if missing:
            return {**body, **missing}
    return body


def parse_query(ep: Endpoint, args: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The declared query parameters of ``ep`` from ``args`` (default: the request's), parsed and checked.

    Missing optional parameters take their schema ``default`` (or None).

    Raises
    ------
    ParameterError
        An undeclared parameter, a missing required one, or a value that does not fit its schema.
    """
    source = request.args if args is None else args
    declared = {p["name"]: p for p in ep.parameters if p.get("in") == "query"}
    unknown = sorted(set(source) - set(declared) - ALWAYS_ALLOWED_QUERY)
    if unknown:
        raise ParameterError(field=unknown[0], value=source.get(unknown[0]),
                             allowed=sorted(declared) or ["no query parameters"], code="unknown_parameter")
    out: dict[str, Any] = {}
    for name, p in declared.items():
        schema = p.get("schema", {})
        raw = source.get(name)
        if raw is None or raw == "":
            if p.get("required"):
                raise ParameterError(field=name, value=None, allowed=_describe(schema), code="missing_parameter")
            out[name] = schema.get("default")
            continue
        if schema.get("type") == "array":
            items = [s.strip() for s in raw.split(",")]
            if (any(s == "" for s in items) or len(items) < schema.get("minItems", 0)
                    or len(items) > schema.get("maxItems", 10_000)):
                raise ParameterError(field=name, value=raw, allowed=_describe(schema))
            try:
                out[name] = [_parse_scalar(name, s, schema.get("items", {})) for s in items]
            except ParameterError as e:
                raise ParameterError(field=name, value=raw, allowed=e.allowed) from None
        else:
            out[name] = _parse_scalar(name, raw, schema)
    return out


def view_function(ep: Endpoint) -> Callable[..., Response]:
    """The Flask view for ``ep``: parses the query (and body), calls the declared view, makes the response."""
    wants_body = ep.request_body is not None

    @functools.wraps(ep.view)
    def run(**path_vars: Any) -> Response:
        kwargs = parse_query(ep)
        if wants_body:
            body = request.get_json(silent=True)
            if body is None:
                raise ParameterError(field="body", value=(request.get_data(as_text=True) or None),
                                     allowed="a JSON document (Content-Type: application/json); NaN, Infinity and "
                                             "lone surrogates (\\ud800) are not JSON", code="invalid_json")
            kwargs["body"] = validate_body(ep, body)
        result = ep.view(**path_vars, **kwargs)
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple):
            obj, status = result
            return json_response(obj, status)
        return json_response(result)

    return run


def _operation(ep: Endpoint) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for m in _RULE_VAR.finditer(ep.rule):
        params.append({"name": m["name"], "in": "path", "required": True,
                       "schema": dict(_CONVERTER_SCHEMA.get(m["conv"], {"type": "string"}))})
    declared_path = {p["name"] for p in ep.parameters if p.get("in") == "path"}
    params = [p for p in params if p["name"] not in declared_path] + [dict(p) for p in ep.parameters]
    params.append({"name": "lang", "in": "query", "required": False,
                   "description": "language of messages (default: cookie sitroom_lang, then the server's)",
                   "schema": {"type": "string", "enum": ["zh-CN", "en"]}})
    responses: dict[str, Any] = {}
    for status, (desc, schema, ctype) in sorted(ep.responses.items()):
        r: dict[str, Any] = {"description": desc}
        if schema is not None:
            r["content"] = {ctype: {"schema": schema}}
        responses[str(status)] = r
    for status, desc in _ERROR_RESPONSES.items():
        responses.setdefault(str(status), {"description": desc, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    op: dict[str, Any] = {"operationId": ep.operation_id, "summary": ep.summary, "parameters": params,
                          "responses": responses}
    if ep.description:
        op["description"] = ep.description
    if ep.tags:
        op["tags"] = list(ep.tags)
    if ep.request_body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ep.request_body}}}
    return op


def document(*, version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered endpoint (paths relative to the ``/api/v1`` server)."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in sorted(REGISTRY.values(), key=lambda e: (e.openapi_path, e.method)):
        paths.setdefault(ep.openapi_path, {})[ep.method.lower()] = _operation(ep)
    tags = sorted({tag for ep in REGISTRY.values() for tag in ep.tags})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sitroom API",
            "version": version,
            "description": "Situational awareness for emergency management (应急管理综合态势): layers, analyses "
                           "and feeds. Coordinates are EPSG:4326 longitude/latitude; distances in metres.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": API_PREFIX}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {"schemas": dict(SCHEMAS)},
    }


@endpoint("/openapi.json", "GET", summary="This OpenAPI 3.1 document", tags=("meta",),
          responses={200: ("The OpenAPI document", {"type": "object"})})
def openapi_json() -> Response:
    """Serve :func:`document`."""
    return json_response(document(version=_package_version()))


@functools.lru_cache(maxsize=1)
def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sitroom")
    except PackageNotFoundError:
        return "0.0.0"
