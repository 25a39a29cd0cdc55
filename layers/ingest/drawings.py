"""What analysts draw: impact zones and map annotations, saved, edited and soft-deleted with the user recorded.

Public: :func:`save_zones`, :func:`save_zone`, :func:`update_zone`, :func:`delete_zone`, :func:`list_zones`,
:func:`get_zone`, :func:`save_annotation`, :func:`update_annotation`, :func:`delete_annotation`,
:func:`list_annotations`, :func:`get_annotation`, :func:`zone_geometry`, :data:`COLOR_PATTERN`.

Every function takes a :class:`~sqlalchemy.orm.Session` first and works inside the caller's transaction
(``layers.store.db.session_scope(user=...)``); ``user`` is written to the row's ``updated_by`` and to the session setting
``sitroom.user``, so the history triggers record who made each change. Nothing is ever deleted: a delete sets
``deleted_at`` and the history keeps every version. Input is validated before anything is written: geometry through
:mod:`geoops.validate` (raises :class:`geoops.errors.InvalidGeometryError` naming the field, the value and what is
allowed); kinds, symbols, colours and labels raise :class:`layers.store.errors.ValidationError` whose problems name the field.
Returned features are plain dicts with a GeoJSON ``geometry`` (lon/lat, EPSG:4326).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from geoops import geodesic
from geoops.errors import InvalidGeometryError
from geoops.validate import check_geometry, parse_geojson_geometry
from layers.store import vocab
from layers.store.db import set_acting_user
from layers.store.errors import NotFoundError, RowError, ValidationError
from layers.store.models import Annotation, ImpactZone
from layers.store.settings import get_settings

#: colours are ``#rrggbb``
COLOR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOR = "#e53935"
MAX_LABEL_CHARS = 200
#: most impact zones one request may save (a drill's rings are a handful; 1,000 rings of 500 km are not drawing)
MAX_ZONES_PER_REQUEST = 100
MAX_USER_CHARS = 64
SOURCE = "analyst"


def _reject(field: str, value: Any, allowed: str, message: str | None = None) -> ValidationError:
    return ValidationError([RowError(row=None, field=field, value=value, allowed=allowed)],
                           message=message or f"{field} rejected; nothing was written")


def _set_user(session: Session, user: str) -> str:
    if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER_CHARS:
        raise _reject("user", user, f"a non-empty name of at most {MAX_USER_CHARS} characters")
    set_acting_user(session, user)
    return user


def _change(session: Session, row: Any, changes: dict[str, Any], user: str) -> Any:
    """Write ``changes`` (and ``updated_by``) to a live drawing as ``user``; a soft delete is ``deleted_at``."""
    _set_user(session, user)  # before any attribute changes: its SQL would autoflush them without the user
    for k, v in {**changes, "updated_by": user}.items():
        setattr(row, k, v)
    session.flush()
    session.refresh(row)
    return row


def _service_area(service_area: Sequence[float] | None) -> tuple[float, float, float, float]:
    return tuple(service_area if service_area is not None else get_settings().service_area)  # type: ignore


def _geometry(obj: Any, field: str, service_area: Sequence[float] | None) -> tuple[BaseGeometry, list[str]]:
    geom = obj if isinstance(obj, BaseGeometry) else parse_geojson_geometry(obj, field=field)
    return check_geometry(geom, service_area=_service_area(service_area), field=field)


def zone_geometry(obj: Any, *, field: str = "geometry", service_area: Sequence[float] | None = None
                  ) -> tuple[MultiPolygon, list[str]]:
    """A checked zone geometry: GeoJSON (or shapely) Polygon / MultiPolygon -> MultiPolygon, repair notes.

    Raises
    ------
    geoops.errors.InvalidGeometryError
        Malformed, out of the service area, invalid beyond repair, or not an area (code ``zone_not_polygonal``).

    Examples
    --------
    >>> g, notes = zone_geometry({"type": "Polygon", "coordinates": [[[111, 40], [112, 40], [112, 41], [111, 40]]]})
    >>> g.geom_type, notes
    ('MultiPolygon', [])
    """
    geom, notes = _geometry(obj, field, service_area)
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if not isinstance(geom, MultiPolygon):
        raise InvalidGeometryError("a zone must be an area", field=field, value=geom.geom_type,
                                   allowed="Polygon or MultiPolygon", code="zone_not_polygonal")
    return geom, notes


def _check_key(vocabulary: str, field: str, value: Any) -> str:
    problem = vocab.check(vocabulary, value)
    if problem:
        raise _reject(field, value, problem[len("must be one of "):] if problem.startswith("must be one of ")
                      else problem, f"{field}: unknown {value!r}")
    return str(value)


def _check_name(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        raise _reject(field, value, f"text of at most {MAX_LABEL_CHARS} characters")
    return value.strip() or None


def _check_color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR_PATTERN.match(value):
        raise _reject("color", value, "a colour #rrggbb, e.g. #e53935")
    return value.lower()


def _check_properties(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _reject("properties", value, "a JSON object")
    return dict(value)


# ------------------------------------------------------------------------------------------------ zones


def _zone_dict(z: ImpactZone) -> dict[str, Any]:
    return {"id": z.id, "kind": z.kind, "status": z.status, "name": z.name, "properties": dict(z.properties or {}),
            "geometry": mapping(to_shape(z.geom)), "created_at": z.created_at, "updated_at": z.updated_at,
            "updated_by": z.updated_by, "deleted_at": z.deleted_at}


def _prepare_zone(item: Mapping[str, Any], row: int | None, service_area: Sequence[float] | None
                  ) -> dict[str, Any]:
    prefix = "" if row is None else f"zones[{row}]."
    if not isinstance(item, Mapping):
        raise _reject(prefix.rstrip(".") or "zone", item, "an object with geometry, kind, name, properties")
    unknown = sorted(set(item) - {"geometry", "kind", "name", "status", "properties"})
    if unknown:
        raise _reject(prefix + unknown[0], item[unknown[0]], "geometry, kind, name, status, properties")
    geom, notes = zone_geometry(item.get("geometry"), field=prefix + "geometry", service_area=service_area)
    kind = _check_key("zone_kind", prefix + "kind", item.get("kind", "drawn"))
    status = _check_key("zone_status", prefix + "status", item.get("status", "active"))
    name = _check_name(prefix + "name", item.get("name"))
    props = _check_properties(item.get("properties"))
    props["area_m2"] = round(float(geodesic.area_m2(geom)), 1)
    if notes:
        props["repair_notes"] = notes
    return {"geom": geom, "kind": kind, "status": status, "name": name, "properties": props}


def save_zones(session: Session, zones: Sequence[Mapping[str, Any]], *, user: str,
               service_area: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Save several impact zones in one transaction: all are checked first; one bad zone saves none.

    Parameters
    ----------
    session : Session
    zones : sequence of mappings
        Each ``{"geometry": GeoJSON or shapely (Multi)Polygon, "kind": zone_kind (default "drawn"),
        "name": str, "status": zone_status (default "active"), "properties": {...}}``.
    user : str
        Recorded as ``updated_by`` and in the history.
    service_area : (west, south, east, north), optional
        Default: the settings' service area.

    Returns
    -------
    list of dict
        The saved zones (``id``, ``kind``, ``status``, ``name``, ``properties`` with ``area_m2`` (geodesic, m2),
        ``geometry``, ``created_at``, ``updated_at``, ``updated_by``, ``deleted_at``).

    Raises
    ------
    geoops.errors.InvalidGeometryError
        A geometry is malformed, outside the service area, not an area, or invalid beyond safe repair.
    layers.store.errors.ValidationError
        Unknown kind or status, bad name, properties or user (the problem names the field).
    """
    if isinstance(zones, Mapping) or not isinstance(zones, Sequence) or not zones:
        raise _reject("zones", zones, "a non-empty list of zones")
    if len(zones) > MAX_ZONES_PER_REQUEST:
        raise _reject("zones", f"{len(zones)} zones", f"at most {MAX_ZONES_PER_REQUEST} zones per request")
    prepared = [_prepare_zone(z, None if len(zones) == 1 else i, service_area) for i, z in enumerate(zones)]
    _set_user(session, user)
    rows = [ImpactZone(source=SOURCE, kind=p["kind"], status=p["status"], name=p["name"],
                       properties=p["properties"], geom=from_shape(p["geom"], srid=4326), updated_by=user)
            for p in prepared]
    session.add_all(rows)
    session.flush()
    for r in rows:
        session.refresh(r)
    return [_zone_dict(r) for r in rows]


def save_zone(session: Session, geometry: Any, *, user: str, kind: str = "drawn", name: str | None = None,
              properties: Mapping[str, Any] | None = None, status: str = "active",
              service_area: Sequence[float] | None = None) -> dict[str, Any]:
    """Save one impact zone (see :func:`save_zones`); returns the saved zone."""
    return save_zones(session, [{"geometry": geometry, "kind": kind, "name": name, "status": status,
                                 "properties": dict(properties or {})}], user=user, service_area=service_area)[0]


def _live(session: Session, model: type[Any], feature_id: Any, field: str) -> Any:
    if isinstance(feature_id, bool) or not isinstance(feature_id, int):
        raise _reject(field, feature_id, "an integer id")
    row = session.execute(select(model).where(model.id == feature_id, model.deleted_at.is_(None))
                          .with_for_update()).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no live {model.__tablename__[:-1].replace('_', ' ')} with id {feature_id}")
    return row


def get_zone(session: Session, zone_id: int) -> dict[str, Any]:
    """One live impact zone. Raises :class:`layers.store.errors.NotFoundError` if absent or deleted."""
    return _zone_dict(_live(session, ImpactZone, zone_id, "id"))


def update_zone(session: Session, zone_id: int, *, user: str, name: Any = ..., status: Any = ...,
                properties: Any = ...) -> dict[str, Any]:
    """Change the name, status or properties of a live zone (arguments left out are kept); returns it."""
    z = _live(session, ImpactZone, zone_id, "id")
    changes: dict[str, Any] = {}
    if name is not ...:
        changes["name"] = _check_name("name", name)
    if status is not ...:
        changes["status"] = _check_key("zone_status", "status", status)
    if properties is not ...:
        changes["properties"] = {**_check_properties(properties), "area_m2": (z.properties or {}).get("area_m2")}
    return _zone_dict(_change(session, z, changes, user))


def delete_zone(session: Session, zone_id: int, *, user: str) -> dict[str, Any]:
    """Soft-delete a live zone (``deleted_at`` set; the history keeps it); returns it as it was deleted."""
    z = _live(session, ImpactZone, zone_id, "id")
    return _zone_dict(_change(session, z, {"deleted_at": datetime.now(UTC)}, user))


def list_zones(session: Session, *, kinds: Sequence[str] | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Live impact zones, newest first (at most ``limit``)."""
    q = select(ImpactZone).where(ImpactZone.deleted_at.is_(None))
    if kinds:
        for k in kinds:
            _check_key("zone_kind", "kind", k)
        q = q.where(ImpactZone.kind.in_(list(kinds)))
    rows = session.execute(q.order_by(ImpactZone.id.desc()).limit(int(limit))).scalars().all()
    return [_zone_dict(r) for r in rows]


# ------------------------------------------------------------------------------------------------ annotations


def _annotation_dict(a: Annotation) -> dict[str, Any]:
    return {"id": a.id, "symbol": a.kind, "label": a.label, "color": a.color, "status": a.status,
            "name": a.name, "properties": dict(a.properties or {}), "geometry": mapping(to_shape(a.geom)),
            "created_at": a.created_at, "updated_at": a.updated_at, "updated_by": a.updated_by,
            "deleted_at": a.deleted_at}


def save_annotation(session: Session, geometry: Any, *, user: str, symbol: str, label: str | None = None,
                    color: str = DEFAULT_COLOR, properties: Mapping[str, Any] | None = None,
                    service_area: Sequence[float] | None = None) -> dict[str, Any]:
    """Save an annotation: an emergency symbol (``annotation_symbol``), a label and a colour on a point, line or area.

    Returns
    -------
    dict
        ``id``, ``symbol``, ``label``, ``color``, ``status``, ``geometry`` (GeoJSON), ``updated_by`` ...

    Raises
    ------
    geoops.errors.InvalidGeometryError
        Bad geometry (field ``geometry``).
    layers.store.errors.ValidationError
        Unknown symbol, colour not ``#rrggbb``, label too long (the problem names the field).
    """
    geom, notes = _geometry(geometry, "geometry", service_area)
    kind = _check_key("annotation_symbol", "symbol", symbol)
    lab = _check_name("label", label)
    col = _check_color(color)
    props = _check_properties(properties)
    if notes:
        props["repair_notes"] = notes
    _set_user(session, user)
    a = Annotation(source=SOURCE, kind=kind, status="active", label=lab, color=col, properties=props,
                   geom=from_shape(geom, srid=4326), updated_by=user)
    session.add(a)
    session.flush()
    session.refresh(a)
    return _annotation_dict(a)


def get_annotation(session: Session, annotation_id: int) -> dict[str, Any]:
    """One live annotation. Raises :class:`layers.store.errors.NotFoundError` if absent or deleted."""
    return _annotation_dict(_live(session, Annotation, annotation_id, "id"))


def update_annotation(session: Session, annotation_id: int, *, user: str, label: Any = ..., color: Any = ...,
                      symbol: Any = ..., geometry: Any = ..., service_area: Sequence[float] | None = None
                      ) -> dict[str, Any]:
    """Change the label, colour, symbol or geometry of a live annotation (arguments left out are kept)."""
    a = _live(session, Annotation, annotation_id, "id")
    changes: dict[str, Any] = {}
    if label is not ...:
        changes["label"] = _check_name("label", label)
    if color is not ...:
        changes["color"] = _check_color(color)
    if symbol is not ...:
        changes["kind"] = _check_key("annotation_symbol", "symbol", symbol)
    if geometry is not ...:
        changes["geom"] = from_shape(_geometry(geometry, "geometry", service_area)[0], srid=4326)
    return _annotation_dict(_change(session, a, changes, user))


def delete_annotation(session: Session, annotation_id: int, *, user: str) -> dict[str, Any]:
    """Soft-delete a live annotation (``deleted_at`` set; kept in the history); returns it as deleted."""
    a = _live(session, Annotation, annotation_id, "id")
    return _annotation_dict(_change(session, a, {"deleted_at": datetime.now(UTC)}, user))


def list_annotations(session: Session, *, limit: int = 500) -> list[dict[str, Any]]:
    """Live annotations, newest first (at most ``limit``)."""
    rows = session.execute(select(Annotation).where(Annotation.deleted_at.is_(None))
                           .order_by(Annotation.id.desc()).limit(int(limit))).scalars().all()
    return [_annotation_dict(r) for r in rows]
