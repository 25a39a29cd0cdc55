"""The command-hall wall's picture: its data version, the whole picture in one dict, live or as it was.

Public: :data:`HEAT_MODES`, :data:`SNAPSHOTS`, :func:`wall_version`, :func:`wall_snapshot` (with ``at``: the
picture as it was then, for replay), :func:`live_snapshot` (the shared live picture).

The wall polls the version (one statement) and re-fetches the heavy parts only when its ``cursor`` moves. The
picture is small by construction (:mod:`layers.read.situation`): H3 aggregates instead of points, simplified hazard
polygons, capped lists. The live picture is computed once for all the screens of a server process
(:class:`dashboards.services.coalesce.Coalescer`): every screen gets a picture at least as new as the store was
when it asked, and under a continuous stream of changes a process draws each picture at most every
:data:`SNAPSHOT_INTERVAL_S`, however many screens ask.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy import Engine

from dashboards.i18n import DEFAULT_LANGUAGE, vocab_label
from dashboards.services.coalesce import Coalescer, Entry, read_stamp
from dashboards.services.command import wall_picture as command_picture
from geoops.h3cells import points_to_cells
from layers.read import analysis, history, situation

HEAT_MODES: tuple[str, ...] = ("incidents", "population")
TICKER_ROWS = 20
#: a new incident of these severities (重大, 特别重大) flashes on the wall for FLASH_S seconds after it is recorded
FLASH_SEVERITIES: tuple[str, ...] = ("major", "extraordinary")
FLASH_S = 60
#: least time between two computations of the same live picture in one process: the wall redraws at most once a
#: second, and under a 20/s feed each computation is ~0.1 s of CPU per process (measured with bench.bench_load)
SNAPSHOT_INTERVAL_S = 1.0
#: a live picture is recomputed after this long even without changes (hazards expire, the hour turns)
SNAPSHOT_MAX_AGE_S = 10.0
#: the live pictures of this process, shared by every screen and request
SNAPSHOTS = Coalescer(min_interval_s=SNAPSHOT_INTERVAL_S, max_age_s=SNAPSHOT_MAX_AGE_S)

__all__ = ["HEAT_MODES", "SNAPSHOTS", "wall_version", "wall_snapshot", "live_snapshot"]


def wall_version(conn: Any) -> dict[str, Any]:
    """``{"version": int, "cursor": str, "population": str, "time": ISO 8601}`` of the store behind ``conn``."""
    stamp = read_stamp(conn)
    return {"version": stamp.version, "cursor": stamp.cursor, "population": stamp.population,
            "time": datetime.now(UTC).isoformat(timespec="seconds")}


def live_snapshot(engine: Engine, *, zoom: float | None = None, bbox: list[float] | None = None,
                  heat: Literal["incidents", "population"] = "incidents", lang: str = DEFAULT_LANGUAGE) -> Entry:
    """The live :func:`wall_snapshot` of the database behind ``engine``, shared by every screen of this process.

    The picture (``.value`` of the returned entry; derived forms such as its encoded JSON are kept with it, see
    :meth:`~dashboards.services.coalesce.Entry.derive`) is at least as new as the store when this was called
    (:class:`~dashboards.services.coalesce.Stamp`), and at most :data:`SNAPSHOT_MAX_AGE_S` old.
    """
    key = (str(engine.url), None if zoom is None else round(float(zoom), 3),
           None if bbox is None else tuple(round(float(x), 6) for x in bbox), heat, lang)

    def compute() -> tuple[Any, dict[str, Any]]:
        with engine.connect() as c:
            stamp = read_stamp(c)
            snap = wall_snapshot(c, zoom=zoom, bbox=bbox, heat=heat, lang=lang)
            return stamp, {**snap, "cursor": stamp.cursor}

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # one statement
        asked = read_stamp(conn)
    return SNAPSHOTS.entry(key, asked, compute)


def wall_snapshot(conn: Any, *, zoom: float | None = None, bbox: list[float] | None = None,
                  heat: Literal["incidents", "population"] = "incidents", lang: str = DEFAULT_LANGUAGE,
                  now: datetime | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Everything the wall draws, JSON-ready: version, KPIs, ticker (with where each incident is and whether it
    flashes), incidents per hour, hexes, hazards, annotations, published impact zones and the picture's extent.

    Parameters
    ----------
    conn : sqlalchemy Connection
    zoom : float, optional
        Leaflet zoom of the wall's map: picks the H3 resolution and the hazard simplification tolerance.
    bbox : list of 4 floats, optional
        west, south, east, north of the visible map: hexes outside are not sent.
    heat : {"incidents", "population"}
        What the hexes show: active incidents per cell, or people in active hazard zones per cell.
    lang : str
        Language of the kind labels.
    at : datetime, optional
        A past instant (replay): hazards, incidents, shelters and resources as they were then
        (:func:`layers.read.history.as_of`), annotations from :func:`layers.read.history.situation_at`; ``time`` is ``at``.
        Before the first record of the history the answer is only ``{version, time, no_record: True,
        recorded_from}`` (ISO time of the first record, or None): the store knows nothing of that time.
    """
    if at is not None:
        return _past_snapshot(conn, at, zoom=zoom, bbox=bbox, heat=heat, lang=lang)
    when = now or datetime.now(UTC)
    res = situation.res_for_zoom(zoom)
    tol = situation.tolerance_for_zoom(zoom)
    version = situation.data_version(conn)
    affected = situation.affected_population_cells(conn, at=when)
    if heat == "population":
        cells, values = situation.aggregate_cells(affected["cells"], affected["population"], res=res)
    else:
        cells, values = situation.incident_cells(conn, res=res)
    hexes = situation.hex_features(cells, values, bbox=bbox)
    hexes.update(res=res, heat=heat)
    return _picture(conn, when, version=version, affected=affected, hexes=hexes, tol=tol, lang=lang,
                    annotations=situation.annotation_features(conn, tolerance_deg=tol),
                    zones=situation.impact_zone_features(conn, tolerance_deg=tol))


def _flash_left_s(r: dict[str, Any], when: datetime) -> float:
    """Seconds a ticker row still flashes: a 重大/特别重大 incident recorded less than :data:`FLASH_S` ago."""
    created = r.get("created_at")
    if r["severity"] not in FLASH_SEVERITIES or created is None:
        return 0.0
    age = (when - created).total_seconds()
    return round(FLASH_S - age, 1) if -5 <= age < FLASH_S else 0.0  # a few seconds of clock skew still flash


def ticker_rows(conn: Any, when: datetime, lang: str) -> list[dict[str, Any]]:
    """The newest incidents with where they are (county, by the one point -> region rule) and whether they flash."""
    rows = situation.latest_incidents(conn, limit=TICKER_ROWS)
    where = analysis.regions_at_points(conn, [r["lon"] for r in rows], [r["lat"] for r in rows])
    out = []
    for r, region in zip(rows, where, strict=True):
        place = None if region is None else (region["name_en"] or region["name"]) if lang == "en" else region["name"]
        name = (r.get("name_en") or r["name"]) if lang == "en" else r["name"]
        out.append({"id": r["id"], "name": name, "kind": r["kind"],
                    "kind_label": vocab_label("incident_kind", r["kind"], lang), "severity": r["severity"],
                    "severity_label": vocab_label("incident_severity", r["severity"], lang),
                    "status": r["status"], "occurred_at": r["occurred_at"].isoformat(),
                    "where": place, "adcode": None if region is None else region["adcode"],
                    "lon": round(float(r["lon"]), 5), "lat": round(float(r["lat"]), 5),
                    "flash_s": _flash_left_s(r, when)})
    return out


def _picture(conn: Any, when: datetime, *, version: int, affected: dict[str, Any], hexes: dict[str, Any],
             tol: float, lang: str, annotations: dict[str, Any], zones: dict[str, Any],
             past: bool = False) -> dict[str, Any]:
    hourly = situation.incidents_per_hour(conn, hours=24, now=when)
    ticker = ticker_rows(conn, when, lang)
    return {
        "version": version,
        "time": when.isoformat(timespec="seconds"),
        "kpis": {
            "incidents": situation.incident_kpis(conn),
            "affected": {"total": affected["total"], "containment": affected["containment"],
                         "source": affected["source"], "res": affected["res"], "hazards": affected["hazards"]},
            "shelters": situation.shelter_places(conn),
            "resources": situation.resource_counts(conn)["units"],
        },
        "ticker": ticker,
        "hourly": {"bins": [b.isoformat() for b in hourly["bins"]],
                   "counts": hourly["counts"],
                   "labels": {k: vocab_label("incident_kind", k, lang) for k in hourly["counts"]}},
        "hexes": hexes,
        "hazards": situation.hazard_zones(conn, tolerance_deg=tol, at=when),
        "annotations": annotations,
        "impact_zones": zones,
        "extent": situation.picture_extent(conn, at=when, leave_out=[k["id"] for k in affected.get("skipped", [])
                                                                    if k["layer"] == "hazards" and k["id"] is not None]),
        # hazards left out of the figures (cannot be computed); the wall's banner names them
        "skipped": affected.get("skipped", []),
        "command": command_picture(conn, now=when, at=when if past else None, lang=lang),
    }


def _past_snapshot(conn: Any, at: datetime, *, zoom: float | None, bbox: list[float] | None, heat: str,
                   lang: str) -> dict[str, Any]:
    """:func:`wall_snapshot` as of ``at``. The incident heat is binned here from the history's points: the
    per-version cache of :func:`layers.read.situation.incident_cells` must not hold a past picture."""
    at = at.astimezone(UTC)
    res = situation.res_for_zoom(zoom)
    tol = situation.tolerance_for_zoom(zoom)
    version = situation.data_version(conn)
    first = history.first_record(conn, layers=list(history.SHADOWED_LAYERS))
    if first is None or at < first:  # nothing recorded yet: say so, never zeros presented as facts
        return {"version": version, "time": at.isoformat(timespec="seconds"), "no_record": True,
                "recorded_from": None if first is None else first.isoformat(timespec="seconds")}
    past = history.situation_at(conn, at, layers=["incidents", "annotations", "impact_zones"])
    notes = [{"type": "Feature", "id": f["id"], "geometry": f["geometry"],
              "properties": {"id": f["id"], "symbol": f["properties"].get("kind"),
                             "label": f["properties"].get("label"), "color": f["properties"].get("color"),
                             "name": f["properties"].get("name")}}
             for f in past["annotations"]["features"]
             if f["geometry"] and f["properties"].get("status", "active") == "active"][:situation.ANNOTATION_LIMIT]
    zones = [{"type": "Feature", "id": f["id"], "geometry": f["geometry"],
              "properties": {"id": f["id"], "kind": f["properties"].get("kind"), "name": f["properties"].get("name")}}
             for f in past["impact_zones"]["features"]
             if f["geometry"] and f["properties"].get("status") == "active"][:situation.ANNOTATION_LIMIT]
    with history.as_of(conn, at):
        affected = situation.affected_population_cells(conn, at=at)
        if heat == "population":
            cells, values = situation.aggregate_cells(affected["cells"], affected["population"], res=res)
        else:
            pts = [f["geometry"]["coordinates"][:2] for f in past["incidents"]["features"]
                   if f["geometry"] and f["geometry"]["type"] == "Point"
                   and f["properties"].get("status") != "closed"]
            xy = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            cells, values = points_to_cells(xy[:, 0], xy[:, 1], np.ones(len(xy)), res=res)
        hexes = situation.hex_features(cells, values, bbox=bbox)
        hexes.update(res=res, heat=heat)
        return _picture(conn, at, version=version, affected=affected, hexes=hexes, tol=tol, lang=lang,
                        annotations={"type": "FeatureCollection", "features": notes},
                        zones={"type": "FeatureCollection", "features": zones}, past=True)
