"""Small hand-made scenes for the command tests (layers and dashboards): incidents, resources, a hazard."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from layers.store.models import Hazard, Incident, Resource

HOHHOT = (111.75, 40.84)


def add_resource(s: Session, lon: float, lat: float, *, kind: str = "rescue_team", status: str = "available",
                 name: str | None = None) -> int:
    return int(s.execute(insert(Resource).values(source="cmd-test", kind=kind, status=status, name=name or f"{kind}",
                                                 geom=f"SRID=4326;POINT({lon} {lat})").returning(Resource.id)).scalar_one())


def add_incident(s: Session, lon: float, lat: float, *, kind: str = "fire", status: str = "reported",
                 severity: str = "general", name: str = "测试事件") -> int:
    return int(s.execute(insert(Incident).values(source="cmd-test", kind=kind, status=status, severity=severity,
                                                 name=name, geom=f"SRID=4326;POINT({lon} {lat})")
                         .returning(Incident.id)).scalar_one())


def add_hazard(s: Session, wkt: str, *, kind: str = "flood", level: str = "orange") -> int:
    return int(s.execute(insert(Hazard).values(source="cmd-test", kind=kind, status="active", warning_level=level,
                                               name="测试洪水", geom=f"SRID=4326;{wkt}").returning(Hazard.id)).scalar_one())


def scene(session: Session) -> dict[str, Any]:
    """One incident at Hohhot, three resources around it (two rescue teams, a fire engine), one unavailable."""
    lon, lat = HOHHOT
    return {
        "session": session,
        "incident": add_incident(session, lon, lat),
        "near": add_resource(session, lon + 0.10, lat, name="近队"),
        "far": add_resource(session, lon + 0.50, lat + 0.2, name="远队"),
        "engine": add_resource(session, lon - 0.2, lat, kind="fire_engine", name="消防车"),
        "broken": add_resource(session, lon, lat + 0.05, status="unavailable", name="检修中"),
    }
