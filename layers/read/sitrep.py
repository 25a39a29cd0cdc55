"""What a situation report (态势报告) says: plain data gathered from the store, now or as it was at a past time.

Public: :data:`DEFAULT_LOOKBACK`, :func:`parse_time`, :func:`changes_since`, :func:`active_warnings`,
:func:`population_by_county`, :func:`shelter_loads`, :func:`resources_by_kind`, :func:`map_layers`,
:func:`operational_changes`, :func:`major_incidents`,
:func:`previous_report`, :func:`record_report`, :func:`gather`.

Everything here returns dicts of numbers, strings and datetimes (no translation: ``dashboards/reports.py`` renders).
The KPIs are those of the wall (:mod:`layers.read.situation`), the people in hazard zones are the wall's cached
area-weighted figure, split by county by cell centre with :func:`geoops.regions.assign_points` (the rule of every
split by region) + :func:`geoops.population.rollup`: the county parts add up exactly to the KPI.

The past (``at`` given)
-----------------------
The same queries run inside :func:`layers.read.history.as_of`, which shadows hazards, incidents, shelters and
resources with their state at ``at`` (:func:`layers.read.history.states_at`, the primitive the replay and
``situation_at`` use too). Admin regions and population cells are read as they are now.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, and_, case, func, or_, select

from geoops.population import rollup
from geoops.regions import assign_points
from layers.read import analysis, history, situation, skips
from layers.read.shelter_places import CLOSED, could_open_sql, free_places
from layers.store.errors import RowError, ValidationError
from layers.store.jsonlog import append_capped
from layers.store.models import Hazard, Incident, Resource, Shelter

__all__ = ["DEFAULT_LOOKBACK", "parse_time", "changes_since", "operational_changes", "major_incidents", "active_warnings",
           "population_by_county", "shelter_loads", "resources_by_kind", "map_layers", "previous_report",
           "record_report", "gather"]

#: "changes since" window when no earlier report and no ``since`` is known
DEFAULT_LOOKBACK = timedelta(hours=24)
MAP_INCIDENT_LIMIT = 5000
SHELTER_ROWS = 15


def parse_time(value: Any, *, field: str = "at") -> datetime | None:
    """An ISO 8601 time (a ``datetime`` or text; ``Z`` allowed; naive means UTC) as an aware UTC datetime.

    None or '' gives None. Anything else raises :class:`~layers.store.errors.ValidationError` naming ``field``.

    Examples
    --------
    >>> parse_time("2024-07-01T08:00:00+08:00").isoformat()
    '2024-07-01T00:00:00+00:00'
    >>> parse_time("2024-07-01T00:00Z").isoformat(), parse_time(None)
    ('2024-07-01T00:00:00+00:00', None)
    >>> parse_time("yesterday")
    Traceback (most recent call last):
    ...
    layers.store.errors.ValidationError: at is not an ISO 8601 time
      - field 'at': got 'yesterday'; allowed: an ISO 8601 date-time, e.g. 2024-07-01T08:00:00+08:00
    """
    if value is None or value == "":
        return None
    allowed = "an ISO 8601 date-time, e.g. 2024-07-01T08:00:00+08:00"
    if isinstance(value, datetime):
        when = value
    else:
        raw = str(value).strip()
        try:
            when = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in ("Z", "z") else raw)
        except ValueError:
            raise ValidationError([RowError(None, field, value, allowed)], f"{field} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not 1970 <= when.year <= 9000:
        raise ValidationError([RowError(None, field, value, "a year in 1970..9000")], f"{field} out of range")
    return when.astimezone(UTC)


def changes_since(db: Any, since: datetime, until: datetime) -> dict[str, Any]:
    """Inserts, updates and deletes (soft and purge) per layer with since < changed_at <= until
    (:func:`layers.read.history.change_counts` over every feature layer).

    Returns
    -------
    dict
        ``{"since", "until", "layers": {layer: {"insert": n, "update": n, "delete": n}}, "total": n}``; every layer
        of the store is present (zeros if untouched).
    """
    layers = history.change_counts(db, since, until)
    return {"since": since, "until": until, "layers": layers,
            "total": sum(sum(v.values()) for v in layers.values())}


#: incident severities listed one by one in the report (特别重大, 重大)
MAJOR_SEVERITIES = ("extraordinary", "major")
MAJOR_ROWS = 30


def _states(db: Any, layer: str, at: datetime) -> dict[int, dict[str, Any]]:
    """``feature id -> row`` of the live (not gone) features of ``layer`` at ``at`` (:func:`history.states_at`)."""
    st = history.states_at(at, layers=[layer]).subquery("h")
    out = {}
    for fid, op, row in db.execute(select(st.c.feature_id, st.c.op, st.c.row)).all():
        if op not in ("delete", "purge") and not (row or {}).get("deleted_at"):
            out[int(fid)] = row
    return out


def _hazard_in_force(row: Mapping[str, Any], at: datetime) -> bool:
    onset, expires = parse_time(row.get("onset"), field="onset"), parse_time(row.get("expires"), field="expires")
    return row.get("status") == "active" and (onset is None or onset <= at) and (expires is None or expires > at)


def operational_changes(db: Any, since: datetime, until: datetime) -> dict[str, Any]:
    """What changed between ``since`` and ``until`` in the terms of the hall, from the change history.

    Returns
    -------
    dict
        ``new_warnings`` and ``ended_warnings`` (in force at ``until`` and not at ``since``, or the reverse:
        ``id, name, kind, warning_level, raised`` (a warning whose level rose is listed as new, ``raised`` True)),
        ``new_major`` (the first :data:`MAJOR_ROWS` 特别重大/重大 incidents recorded in the window: ``id, name, kind,
        severity, occurred_at``) and ``new_major_count`` (all of them),
        ``shelters_opened`` and ``shelters_closed`` (``id, name, capacity``), ``since``, ``until``.
    """
    rank = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}
    h0, h1 = _states(db, "hazards", since), _states(db, "hazards", until)
    on0 = {i: r for i, r in h0.items() if _hazard_in_force(r, since)}
    on1 = {i: r for i, r in h1.items() if _hazard_in_force(r, until)}

    def warn(i: int, r: Mapping[str, Any], raised: bool = False) -> dict[str, Any]:
        return {"id": i, "name": r.get("name"), "name_en": (r.get("properties") or {}).get("name_en"),
                "kind": r.get("kind"), "warning_level": r.get("warning_level"), "raised": raised}

    new = [warn(i, r) for i, r in on1.items() if i not in on0]
    new += [warn(i, r, True) for i, r in on1.items() if i in on0
            and rank.get(str(r.get("warning_level")), 0) > rank.get(str(on0[i].get("warning_level")), 0)]
    ended = [warn(i, r) for i, r in on0.items() if i not in on1]
    s0, s1 = _states(db, "shelters", since), _states(db, "shelters", until)
    opened = [{"id": i, "name": r.get("name"), "capacity": r.get("capacity")} for i, r in s1.items()
              if r.get("status") == "open" and (s0.get(i) or {}).get("status") != "open"]
    closed = [{"id": i, "name": r.get("name"), "capacity": r.get("capacity")} for i, r in s1.items()
              if r.get("status") == "closed" and (s0.get(i) or {}).get("status") not in (None, "closed")]
    H = history.H
    recorded = (H.layer == "incidents", H.op == "insert", H.changed_at > since, H.changed_at <= until,
                H.row["severity"].astext.in_(MAJOR_SEVERITIES))
    # the first MAJOR_ROWS and the count, not every row: a bulk import of a million incidents is in the window
    rows = db.execute(
        select(H.feature_id, *(H.row[k].astext.label(k) for k in ("name", "kind", "severity", "occurred_at")),
               H.row["properties"]["name_en"].astext.label("name_en"))
        .where(*recorded).order_by(H.changed_at, H.id).limit(MAJOR_ROWS)).all()
    major = [{"id": int(r.feature_id), "name": r.name, "name_en": r.name_en, "kind": r.kind, "severity": r.severity,
              "occurred_at": parse_time(r.occurred_at, field="occurred_at")} for r in rows]
    major_count = len(major) if len(major) < MAJOR_ROWS else int(
        db.execute(select(func.count()).select_from(H).where(*recorded)).scalar_one())
    key = lambda d: (-rank.get(str(d.get("warning_level")), 0), d["id"])  # noqa: E731
    return {"since": since, "until": until, "new_warnings": sorted(new, key=key), "ended_warnings": sorted(ended, key=key),
            "new_major": major, "new_major_count": major_count, "shelters_opened": sorted(opened, key=lambda d: d["id"]),
            "shelters_closed": sorted(closed, key=lambda d: d["id"])}


def major_incidents(db: Any, *, limit: int = MAJOR_ROWS) -> dict[str, Any]:
    """Active (not closed) 特别重大 and 重大 incidents: where (county, by the one point -> region rule), when, how
    many casualties; 特别重大 first, then newest first.

    Returns
    -------
    dict
        ``rows`` (``id, name, kind, severity, status, occurred_at, casualties, lon, lat, county`` (``{adcode,
        name, name_en}`` or None)) and ``count`` (all of them, ``rows`` holds at most ``limit``).
    """
    sev = case({"extraordinary": 0, "major": 1}, value=Incident.severity, else_=2)
    base = and_(Incident.deleted_at.is_(None), Incident.status != "closed", Incident.severity.in_(MAJOR_SEVERITIES))
    stmt = (select(Incident.id, Incident.name, Incident.properties["name_en"].astext.label("name_en"), Incident.kind,
                   Incident.severity, Incident.status, Incident.occurred_at, Incident.casualties, func.ST_X(Incident.geom).label("lon"), func.ST_Y(Incident.geom).label("lat"))
            .where(base).order_by(sev, Incident.occurred_at.desc().nulls_last(), Incident.id).limit(int(limit)))
    rows = [dict(r._mapping) for r in db.execute(stmt).all()]
    where = analysis.regions_at_points(db, [r["lon"] for r in rows], [r["lat"] for r in rows])
    for r, c in zip(rows, where, strict=True):
        r["county"] = c
    count = int(db.execute(select(func.count()).where(base)).scalar_one())
    return {"rows": rows, "count": count}


def _in_force(at: datetime) -> list[Any]:
    return [Hazard.deleted_at.is_(None), Hazard.status == "active",
            or_(Hazard.onset.is_(None), Hazard.onset <= at), or_(Hazard.expires.is_(None), Hazard.expires > at)]


def _area_km2(geom: Any) -> Any:
    """Spheroidal area in km2; NULL for a polygon wider than 180 degrees of longitude (a row stored before the
    service-area rule: PostGIS refuses the "antipodal" edges of such a polygon with an error)."""
    return case((func.ST_XMax(geom) - func.ST_XMin(geom) < 180, func.ST_Area(func.geography(geom)) / 1e6),
                else_=None)


def active_warnings(db: Any, *, at: datetime) -> list[dict[str, Any]]:
    """Hazards in force at ``at``, red first: kind, level, area, onset/expiry, texts and the counties they touch.

    Returns
    -------
    list of dict
        ``id, name, kind, warning_level, onset, expires, area_km2`` (``ST_Area`` on the spheroid), ``texts``
        (``{"headline"|"description"|"instruction"|"area_desc": {lang: text}}`` from CAP properties, may be
        empty), ``counties`` (``[{adcode, name, name_en}]`` of the counties intersecting the hazard, by adcode).
    """
    from layers.store.models import AdminRegion

    rank = case({"red": 0, "orange": 1, "yellow": 2, "blue": 3}, value=Hazard.warning_level, else_=4)
    stmt = (select(Hazard.id, Hazard.name, Hazard.kind, Hazard.warning_level, Hazard.onset, Hazard.expires,
                   Hazard.properties, _area_km2(Hazard.geom).label("area_km2"))
            .where(and_(*_in_force(at))).order_by(rank, Hazard.id))
    out = []
    for r in db.execute(stmt).all():
        props = r.properties or {}
        texts = {k: props[k] for k in ("headline", "description", "instruction", "area_desc")
                 if isinstance(props.get(k), Mapping) and props[k]}
        out.append({"id": int(r.id), "name": r.name, "name_en": props.get("name_en"), "kind": r.kind,
                    "warning_level": r.warning_level,
                    "onset": r.onset, "expires": r.expires, "area_km2": float(r.area_km2 or 0.0), "texts": texts,
                    "counties": []})
    if out:
        ids = [w["id"] for w in out]
        hz = select(Hazard.id, Hazard.geom).where(Hazard.id.in_(ids)).subquery()
        rows = db.execute(
            select(hz.c.id, AdminRegion.adcode, AdminRegion.name, AdminRegion.name_en)
            .join(AdminRegion, func.ST_Intersects(AdminRegion.geom, hz.c.geom))
            .where(AdminRegion.level == "county", AdminRegion.deleted_at.is_(None))
            .order_by(hz.c.id, AdminRegion.adcode)).all()
        by_id = {w["id"]: w for w in out}
        for r in rows:
            by_id[int(r.id)]["counties"].append({"adcode": r.adcode, "name": r.name, "name_en": r.name_en})
    return out


def population_by_county(db: Any, affected: Mapping[str, Any]) -> list[dict[str, Any]]:
    """People in the hazard zones per county, from the per-cell result of
    :func:`layers.read.situation.affected_population_cells` (each cell to the county holding its centre, by
    :func:`geoops.regions.assign_points`; counties in adcode order decide a centre on a shared border).

    Returns
    -------
    list of dict
        ``adcode, name, name_en, prefecture, prefecture_en, population`` (people), largest first; cells outside
        every county are on a row with ``adcode`` None. The populations add up to ``affected["total"]``.
    """
    cells = np.asarray(affected.get("cells", []), dtype=np.int64)
    people = np.asarray(affected.get("population", []), dtype=np.float64)
    if cells.size == 0:
        return []
    from geoops.h3cells import cell_centres

    lon, lat = cell_centres(cells)
    pad = 0.05
    box = (float(lon.min()) - pad, float(lat.min()) - pad, float(lon.max()) + pad, float(lat.max()) + pad)
    counties = analysis.regions_of_level(db, level="county", within=box)
    code = assign_points(lon, lat, [c["geometry"] for c in counties])
    keys = np.full(cells.size, None, dtype=object)
    keys[code >= 0] = np.array([c["adcode"] for c in counties], dtype=object)[code[code >= 0]]
    sums = rollup(cells, people, keys)
    info = {c["adcode"]: c for c in counties}
    parents = analysis.region_names(db, [c["parent_adcode"] for c in counties if c.get("parent_adcode")])
    out: list[dict[str, Any]] = []
    for key, value in sums.items():
        c = info.get(key) if isinstance(key, str) else None
        p: dict[str, Any] = parents.get(c["parent_adcode"] or "", {}) if c else {}
        out.append({"adcode": c["adcode"] if c else None, "name": c["name"] if c else None,
                    "name_en": c["name_en"] if c else None, "prefecture": p.get("name"),
                    "prefecture_en": p.get("name_en"), "population": float(value)})
    out.sort(key=lambda r: (r["adcode"] is None, -r["population"]))
    return out


def shelter_loads(db: Any, *, limit: int = SHELTER_ROWS) -> dict[str, Any]:
    """Shelters in service (open or full) with their load (occupancy / capacity), fullest first, at most ``limit``
    rows; the closed ones counted apart.

    Returns
    -------
    dict
        ``rows`` (``id, name, kind, status, capacity, occupancy, free, load`` with load None for capacity 0 and
        ``free`` by the rule of :mod:`layers.read.shelter_places`), ``count`` (all shelters in service), ``over``
        (how many at or above 100 %), ``closed`` (``count`` and ``could_open``: places if they were opened).
    """
    load = case((Shelter.capacity > 0, Shelter.occupancy * 1.0 / Shelter.capacity), else_=None)
    base = and_(Shelter.deleted_at.is_(None), Shelter.status != "closed")
    stmt = (select(Shelter.id, Shelter.name, Shelter.properties["name_en"].astext.label("name_en"), Shelter.kind,
                   Shelter.status, Shelter.capacity, Shelter.occupancy, load.label("load")).where(base)
            .order_by(load.desc().nulls_last(), Shelter.capacity.desc(), Shelter.id).limit(int(limit)))
    rows = [{"id": int(r.id), "name": r.name, "name_en": r.name_en, "kind": r.kind, "status": r.status,
             "capacity": int(r.capacity),
             "occupancy": int(r.occupancy), "free": free_places(r.status, r.capacity, r.occupancy),
             "load": None if r.load is None else float(r.load)} for r in db.execute(stmt).all()]
    count, over = db.execute(select(func.count(), func.count().filter(and_(Shelter.capacity > 0,
                                                                            Shelter.occupancy >= Shelter.capacity)))
                             .where(base)).one()
    n_closed, places = db.execute(select(func.count(), func.coalesce(func.sum(could_open_sql(Shelter)), 0))
                                  .where(Shelter.deleted_at.is_(None), Shelter.status == CLOSED)).one()
    return {"rows": rows, "count": int(count), "over": int(over),
            "closed": {"count": int(n_closed), "could_open": int(places)}}


def resources_by_kind(db: Any) -> dict[str, dict[str, int]]:
    """Units (sum of quantity) of live resources per kind and status: ``{kind: {available, deployed, unavailable}}``.

    Per status, the kinds add up to :func:`layers.read.situation.resource_counts` ``["units"]``.
    """
    stmt = (select(Resource.kind, Resource.status, func.coalesce(func.sum(Resource.quantity), 0))
            .where(Resource.deleted_at.is_(None)).group_by(Resource.kind, Resource.status).order_by(Resource.kind))
    out: dict[str, dict[str, int]] = {}
    for kind, status, q in db.execute(stmt).all():
        out.setdefault(str(kind), {s: 0 for s in situation.RESOURCE_STATUSES})[str(status)] = int(q)
    return out


def map_layers(db: Any, *, at: datetime, fallback_bbox: Sequence[float]) -> dict[str, Any]:
    """What the report's map draws: hazards in force (shapely, level), active incidents and open shelters.

    ``bbox`` is the affected area: the hazards in force and the 特别重大/重大 incidents (else every active incident,
    else the shelters, else ``fallback_bbox``), padded by 5 % and clamped to valid coordinates; incidents far from
    it are drawn when they fall inside, not zoomed out for.
    """
    hz = [{"geometry": h["geometry"], "warning_level": h["warning_level"], "kind": h["kind"]}
          for h in skips.in_scope(analysis.active_hazards(db, at=at))[0]]  # not a map of the world for one bad row
    inc_stmt = (select(func.ST_X(Incident.geom).label("lon"), func.ST_Y(Incident.geom).label("lat"), Incident.severity)
                .where(Incident.deleted_at.is_(None), Incident.status != "closed")
                .order_by(Incident.occurred_at.desc()).limit(MAP_INCIDENT_LIMIT))
    incidents = [{"lon": float(r.lon), "lat": float(r.lat), "severity": r.severity} for r in db.execute(inc_stmt)]
    sh_stmt = (select(func.ST_X(Shelter.geom).label("lon"), func.ST_Y(Shelter.geom).label("lat"))
               .where(Shelter.deleted_at.is_(None), Shelter.status != "closed"))
    shelters = [{"lon": float(r.lon), "lat": float(r.lat)} for r in db.execute(sh_stmt)]
    boxes = [shapely.bounds(h["geometry"]).tolist() for h in hz]
    boxes += [[p["lon"], p["lat"], p["lon"], p["lat"]] for p in incidents if p["severity"] in MAJOR_SEVERITIES]
    if not boxes:
        boxes = [[p["lon"], p["lat"], p["lon"], p["lat"]] for p in incidents]
    if not boxes:
        boxes = [[p["lon"], p["lat"], p["lon"], p["lat"]] for p in shelters]
    if boxes:
        b = np.asarray(boxes, dtype=np.float64)
        w, s, e, n = float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())
        pad_x, pad_y = max((e - w) * 0.05, 0.05), max((n - s) * 0.05, 0.05)
        bbox: tuple[float, ...] = (max(w - pad_x, -180.0), max(s - pad_y, -85.0), min(e + pad_x, 180.0), min(n + pad_y, 85.0))
    else:
        bbox = tuple(float(v) for v in fallback_bbox)
    return {"bbox": bbox, "hazards": hz, "incidents": incidents, "shelters": shelters}


# ------------------------------------------------------------------------------------------------ report log

LOG_KEEP = 500


def previous_report(log_path: Path, *, before: datetime) -> datetime | None:
    """The latest ``at`` of a recorded report strictly before ``before`` (None if none, or no log yet)."""
    try:
        lines = Path(log_path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    best: datetime | None = None
    for line in lines:
        try:
            at = parse_time(json.loads(line).get("at"))
        except (ValueError, AttributeError):
            continue
        if at is not None and at < before and (best is None or at > best):
            best = at
    return best


def report_sequence(log_path: Path, *, year: int) -> int:
    """The number of the next report of ``year`` (1 + the reports recorded in the log with ``at`` in that year)."""
    try:
        lines = Path(log_path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 1
    n = 0
    for line in lines:
        try:
            at = parse_time(json.loads(line).get("at"))
        except (ValueError, AttributeError):
            continue
        n += at is not None and at.year == year
    return n + 1


def record_report(log_path: Path, *, at: datetime, generated_at: datetime, fmt: str, lang: str) -> None:
    """Append one generated report to the log (JSON lines; the newest :data:`LOG_KEEP` kept; atomic rewrite)."""
    path = Path(log_path)
    entry = json.dumps({"at": at.isoformat(), "generated_at": generated_at.isoformat(), "format": fmt,
                        "lang": lang})
    append_capped(path, entry, keep=LOG_KEEP)


# ------------------------------------------------------------------------------------------------ everything


def _read(conn: Connection, when: datetime, fallback_bbox: Sequence[float]) -> dict[str, Any]:
    affected = situation.affected_population_cells(conn, at=when)
    total = affected["total"]
    return {
        "kpis": {
            "incidents": situation.incident_kpis(conn),
            "affected": {"total": total, "containment": affected["containment"], "source": affected["source"],
                         "res": affected["res"], "hazards": affected["hazards"]},
            "shelters": situation.shelter_places(conn),
            "resources": situation.resource_counts(conn)["units"],
        },
        "warnings": active_warnings(conn, at=when),
        "major_incidents": major_incidents(conn),
        "population_by_county": population_by_county(conn, affected),
        "shelters": shelter_loads(conn),
        "resources_by_kind": resources_by_kind(conn),
        "map": map_layers(conn, at=when, fallback_bbox=fallback_bbox),
        "skipped": affected.get("skipped", []),
    }


def gather(conn: Connection, *, at: datetime | None = None, since: datetime | None = None,
           previous: datetime | None = None, now: datetime | None = None,
           fallback_bbox: Sequence[float] = (97.0, 37.0, 126.5, 53.5)) -> dict[str, Any]:
    """Everything a situation report shows, as of ``at`` (default: now, from the live tables).

    Parameters
    ----------
    conn : sqlalchemy Connection
        Must be a Connection (not a Session): past pictures use temporary tables on it
        (:func:`layers.read.history.as_of`).
    at : datetime, optional
        The time of the picture; in the past it is rebuilt from ``feature_history``. Must not be in the future.
    since : datetime, optional
        Start of the "changes since" window; default ``previous``, else ``at`` - :data:`DEFAULT_LOOKBACK`.
    previous : datetime, optional
        Time of the previous report (:func:`previous_report`).
    now : datetime, optional
        The present (tests); default the clock.
    fallback_bbox : 4 floats
        Map extent when there is nothing to draw.

    Returns
    -------
    dict
        ``at, live, generated_at, kpis, warnings, population_by_county, shelters, resources_by_kind, map,
        changes`` (:func:`changes_since`) and ``changes_from`` ("since", "previous" or "default").

    Raises
    ------
    layers.store.errors.ValidationError
        ``at`` in the future, or ``since`` not before ``at`` (field named).
    """
    generated = (now or datetime.now(UTC)).astimezone(UTC)
    live = at is None
    when = generated if at is None else at.astimezone(UTC)
    if when > generated + timedelta(seconds=1):
        raise ValidationError([RowError(None, "at", when.isoformat(), f"a time not after now ({generated.isoformat()})")],
                              "at is in the future")
    if since is not None and since.astimezone(UTC) >= when:
        raise ValidationError([RowError(None, "since", since.isoformat(), f"a time before at ({when.isoformat()})")],
                              "since is not before at")
    if live:
        data = _read(conn, when, fallback_bbox)
    else:
        with history.as_of(conn, when):
            data = _read(conn, when, fallback_bbox)
    if since is not None:
        start, origin = since.astimezone(UTC), "since"
    elif previous is not None and previous < when:
        start, origin = previous, "previous"
    else:
        start, origin = when - DEFAULT_LOOKBACK, "default"
    data.update(at=when, live=live, generated_at=generated, changes=changes_since(conn, start, when),
                changes_from=origin, operational=operational_changes(conn, start, when))
    total = data["kpis"]["affected"]["total"]
    if total is not None and not math.isfinite(float(total)):
        data["kpis"]["affected"]["total"] = None
    return data
