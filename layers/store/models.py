"""The PostGIS schema as typed SQLAlchemy 2 models. Alembic migrations mirror this module exactly.

Public: :class:`Base`, one model per layer (:class:`Hazard`, :class:`Incident`, :class:`Shelter`,
USER_ROLES: tuple[str, ...] = ("display", "viewer", "analyst", "planner", "monitor", "dispatcher", "admin")

Every feature layer shares the columns of :class:`FeatureMixin`. Columns that analyses filter or sum on are real
columns (capacity, occupancy, quantity, status, warning level, occupants, adcode ...); the rest lives in
``properties`` (JSONB). Geometries are SRID 4326; each layer has a GiST index on ``geom`` and, where we query in
metres, a GiST index on ``geom::geography``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _geom(kind: str) -> Any:
    # spatial_index=False: indexes are declared explicitly below so that migrations and models match.
    return mapped_column(Geometry(kind, srid=4326, spatial_index=False), nullable=False)


class FeatureMixin:
    """Columns common to every feature layer."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), nullable=False, server_default="manual")
    external_id: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False, server_default="system")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    #: geometry type the layer accepts (``POINT`` layers also get a geography index)
    GEOM_TYPE: str = "GEOMETRY"
    GEOGRAPHY_INDEX: bool = False

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        t = cls.__tablename__  # type: ignore[attr-defined]
        args: list[Any] = [
            UniqueConstraint("source", "external_id", name=f"uq_{t}_source_external_id"),
            Index(f"ix_{t}_geom", "geom", postgresql_using="gist"),
            Index(f"ix_{t}_kind_status", "kind", "status"),
            Index(f"ix_{t}_live", "id", postgresql_where=text("deleted_at IS NULL")),
        ]
        if cls.GEOGRAPHY_INDEX:
            args.append(Index(f"ix_{t}_geog", text("(geom::geography)"), postgresql_using="gist"))
        args.extend(cls._extra_args())
        return tuple(args)

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return []


class Hazard(FeatureMixin, Base):
    """An area under a hazard or a warning (CAP, forecast, drawn). ``warning_level``: blue/yellow/orange/red."""

    __tablename__ = "hazards"
    GEOM_TYPE = "MULTIPOLYGON"
    GEOGRAPHY_INDEX = True
    geom: Mapped[Any] = _geom("MULTIPOLYGON")
    warning_level: Mapped[str] = mapped_column(String(16), nullable=False)
    onset: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return [CheckConstraint("warning_level IN ('blue','yellow','orange','red')", name="warning_level")]


class Incident(FeatureMixin, Base):
    """Something that happened at a place: fire, collapse, traffic accident ..."""

    __tablename__ = "incidents"
    GEOM_TYPE = "POINT"
    GEOGRAPHY_INDEX = True
    geom: Mapped[Any] = _geom("POINT")
    severity: Mapped[str] = mapped_column(String(16), nullable=False, server_default="general")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    casualties: Mapped[int | None] = mapped_column(Integer)

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return [Index("ix_incidents_occurred_at", "occurred_at")]


class Shelter(FeatureMixin, Base):
    """An emergency shelter (紧急/固定/中心避难场所) with places: capacity and current occupancy (persons)."""

    __tablename__ = "shelters"
    GEOM_TYPE = "POINT"
    GEOGRAPHY_INDEX = True
    geom: Mapped[Any] = _geom("POINT")
    capacity: Mapped[int] = mapped_column(Integer, nullable=False)
    occupancy: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return [CheckConstraint("capacity >= 0 AND occupancy >= 0", name="places")]


class Resource(FeatureMixin, Base):
    """A rescue resource: team, vehicle, depot ... ``status``: available / deployed / unavailable."""

    __tablename__ = "resources"
    GEOM_TYPE = "POINT"
    GEOGRAPHY_INDEX = True
    geom: Mapped[Any] = _geom("POINT")
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    unit: Mapped[str | None] = mapped_column(String(32))

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return [CheckConstraint("quantity >= 0", name="quantity")]


class ProtectionTarget(FeatureMixin, Base):
    """A place that must be protected: school, hospital, hazmat plant ... with its occupants."""

    __tablename__ = "protection_targets"
    GEOM_TYPE = "POINT"
    GEOGRAPHY_INDEX = True
    geom: Mapped[Any] = _geom("POINT")
    occupants: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    criticality: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="3")

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return [CheckConstraint("occupants >= 0 AND criticality BETWEEN 1 AND 5", name="occupants")]


class AdminRegion(FeatureMixin, Base):
    """A province, prefecture or county (adcode = China's 6-digit administrative code)."""

    __tablename__ = "admin_regions"
    GEOM_TYPE = "MULTIPOLYGON"
    geom: Mapped[Any] = _geom("MULTIPOLYGON")
    adcode: Mapped[str] = mapped_column(String(12), nullable=False, unique=True)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    parent_adcode: Mapped[str | None] = mapped_column(String(12), index=True)
    name_en: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return [Index("ix_admin_regions_level", "level")]


class ImpactZone(FeatureMixin, Base):
    """A zone drawn by an analyst or generated by an analysis (buffer ring, CAP area)."""

    __tablename__ = "impact_zones"
    GEOM_TYPE = "MULTIPOLYGON"
    geom: Mapped[Any] = _geom("MULTIPOLYGON")


class Station(FeatureMixin, Base):
    """A monitoring station (气象站, 水文站 ...): ``code`` is its station number (区站号), unique; ``interval_s`` how often
    it reports; river stations carry their stages in metres (警戒水位, 保证水位, 历史最高水位)."""

    __tablename__ = "stations"
    GEOM_TYPE = "POINT"
    GEOGRAPHY_INDEX = True
    geom: Mapped[Any] = _geom("POINT")
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    adcode: Mapped[str | None] = mapped_column(String(12))
    interval_s: Mapped[int] = mapped_column(Integer, nullable=False, server_default="3600")
    warning_stage_m: Mapped[float | None] = mapped_column(Double)
    guarantee_stage_m: Mapped[float | None] = mapped_column(Double)
    record_stage_m: Mapped[float | None] = mapped_column(Double)

    @classmethod
    def _extra_args(cls) -> list[Any]:
        return [CheckConstraint("interval_s BETWEEN 1 AND 604800", name="interval")]


class Annotation(FeatureMixin, Base):
    """A map annotation: an emergency symbol (``kind``), a label and a colour, on a point, line or polygon."""

    __tablename__ = "annotations"
    GEOM_TYPE = "GEOMETRY"
    geom: Mapped[Any] = _geom("GEOMETRY")
    label: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str] = mapped_column(String(16), nullable=False, server_default="#e53935")


FEATURE_MODELS: dict[str, type[FeatureMixin]] = {
    m.__tablename__: m
    for m in (Hazard, Incident, Shelter, Resource, ProtectionTarget, AdminRegion, ImpactZone, Annotation, Station)
}


def table_of(model: type[Any]) -> Table:
    """The Core table of a model, for ``INSERT ... SELECT``, ``ON CONFLICT`` and access to its columns by name.

    >>> table_of(FEATURE_MODELS["shelters"]).name
    'shelters'
    """
    return Base.metadata.tables[model.__tablename__]


class PopulationSource(Base):
    """Where a set of population cells came from: a raster or point file, its vintage, whether it is modelled."""

    __tablename__ = "population_sources"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    res: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    vintage: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    modelled: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))
    input_path: Mapped[str | None] = mapped_column(Text)
    input_total: Mapped[float] = mapped_column(Double, nullable=False)
    cell_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class PopulationCell(Base):
    """Population on one H3 cell (int64 index) of resolution ``res``; the unit of every affected-population figure."""

    __tablename__ = "population_cells"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    res: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    h3: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    population: Mapped[float] = mapped_column(Double, nullable=False)


class FeatureHistory(Base):
    """Every change to every feature row, written by triggers: the audit trail and the source of replay.

    ``row`` is the full row after the change (before it, for ``delete``), geometry as hex EWKB.
    """

    __tablename__ = "feature_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    layer: Mapped[str] = mapped_column(String(32), nullable=False)
    feature_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    op: Mapped[str] = mapped_column(String(8), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    changed_by: Mapped[str] = mapped_column(String(64), nullable=False)
    txid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    row: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)

    __table_args__ = (
        Index("ix_feature_history_layer_feature", "layer", "feature_id", "changed_at"),
        Index("ix_feature_history_changed_at", "changed_at"),
        Index("ix_feature_history_layer_id", "layer", "id"),  # a layer's data version: max(id) of its rows
        CheckConstraint("op IN ('insert','update','delete','purge')", name="op"),
    )


# --- monitoring (layers/monitor) ------------------------------------------------------------------------------------------

#: quality flags of an observation: ``good``, or why it is not trusted (it then never triggers a warning)
QUALITY_FLAGS: tuple[str, ...] = ("good", "range", "spike", "flatline")


class Observation(Base):
    """One reading of one station: ``value`` in the fixed ``unit`` of ``variable`` (:mod:`layers.monitor.variables`),
    ``period_s`` the accumulation period of precipitation and snowfall (mm over the period ending at ``observed_at``).

    Partitioned by month on ``observed_at`` (declarative partitioning; partitions ``observations_yYYYYmMM`` are made
    on demand by :func:`layers.monitor.observations.ensure_partitions`), BRIN on time. The key is (station, variable,
    observed time): a reading sent twice is stored once. No foreign key to ``stations``: ingest checks the codes,
    and a 1M-row load does not pay a lookup per row.
    """

    __tablename__ = "observations"
    station_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    variable: Mapped[str] = mapped_column(String(24), primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, nullable=False,
                                    server_default=text("nextval('observations_id_seq')"))
    value: Mapped[float] = mapped_column(Double, nullable=False)
    unit: Mapped[str] = mapped_column(String(16), nullable=False)
    period_s: Mapped[int | None] = mapped_column(Integer)
    quality: Mapped[str] = mapped_column(String(12), nullable=False, server_default="good")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        # a series is a range of the key: with the reading in the key's leaf entries it is an index-only scan
        # (a series' rows lie one per heap page, as readings arrive time after time for every station)
        PrimaryKeyConstraint("station_id", "variable", "observed_at", name="pk_observations",
                             postgresql_include=["value", "unit", "period_s", "quality", "id"]),
        Index("ix_observations_observed_at", "observed_at", postgresql_using="brin"),
        # the few flagged readings, for the anomaly list (a partial index costs nothing for good readings)
        Index("ix_observations_flagged", "observed_at", postgresql_where=text("quality <> 'good'")),
        CheckConstraint("quality IN ('good','range','spike','flatline')", name="quality"),
        {"postgresql_partition_by": "RANGE (observed_at)"},
    )


class WarningRule(Base):
    """A warning rule (预警规则), data not code: the levels a station's windowed readings reach.

    ``thresholds`` maps a level (blue/yellow/orange/red) to ``{"value": x}`` or ``{"value": x, "window_s": w}`` (a
    level's own window, e.g. 暴雨: 12 h for blue, 3 h for red) or ``{"station": "warning_stage_m", "offset": -0.3}``
    (a station's own stage). A level is reached when ``aggregation`` of ``variable`` over the window compares with
    ``op`` to the value; ``alternatives`` are other variables that reach a level as well (大风: mean wind or gust) and
    ``conditions`` must hold too (寒潮: the minimum temperature and the wind). See :mod:`layers.monitor.rules`.
    """

    __tablename__ = "warning_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(48), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str] = mapped_column(Text, nullable=False)
    hazard_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    variable: Mapped[str] = mapped_column(String(24), nullable=False)
    aggregation: Mapped[str] = mapped_column(String(12), nullable=False)
    window_s: Mapped[int] = mapped_column(Integer, nullable=False)
    op: Mapped[str] = mapped_column(String(2), nullable=False, server_default=">=")
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    alternatives: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    conditions: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    area: Mapped[str] = mapped_column(String(8), nullable=False, server_default="county")
    buffer_m: Mapped[float | None] = mapped_column(Double)
    hysteresis_s: Mapped[int] = mapped_column(Integer, nullable=False, server_default="3600")
    station_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(16)), nullable=False,
                                                     server_default=text("'{weather}'"))
    enabled: Mapped[bool] = mapped_column(nullable=False, server_default=text("true"))
    source: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("aggregation IN ('sum','max','min','mean','latest','min_drop')", name="aggregation"),
        CheckConstraint("op IN ('>=','<=','>','<')", name="op"),
        CheckConstraint("area IN ('county','buffer')", name="area"),
        CheckConstraint("window_s > 0 AND hysteresis_s >= 0", name="window"),
        CheckConstraint("area <> 'buffer' OR buffer_m > 0", name="buffer"),
    )


# --- accounts and API tokens (layers/store/auth.py) ------------------------------------------------------------------------

#: roles of a person's account; ``display`` is the read-only account a wall runs under
USER_ROLES: tuple[str, ...] = ("display", "viewer", "analyst", "planner", "monitor", "dispatcher", "admin")


class User(Base):
    """A person's (or a wall's) account: argon2 password hash, one role, can be disabled (never deleted)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    demo_password: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))
    disabled: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                          server_default=func.now())

    __table_args__ = (
        CheckConstraint("role IN ('display','viewer','analyst','planner','monitor','dispatcher','admin')", name="role"),
    )


class UserSession(Base):
    """A signed-in browser session, kept server-side so that logging out, a new password or a disabled account ends
    it (the cookie alone proves nothing once its row is revoked). Only the sha256 of the session id is kept."""

    __tablename__ = "user_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """One failed login (account name as typed, client address), for throttling with backoff."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )


class ApiToken(Base):
    """An API token for a feed: only the sha256 of the secret is kept; scoped to layers and read or write."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    layers: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    access: Mapped[str] = mapped_column(String(8), nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("access IN ('read','write')", name="access"),
        Index("ix_api_tokens_live_name", "name", unique=True, postgresql_where=text("revoked_at IS NULL")),
    )


# --- command and dispatch (layers/command/) --------------------------------------------------------------------------

#: a task's life: assigned -> en_route -> on_scene -> completed, or cancelled (the allowed moves: layers/command/tasks.py)
TASK_STATUSES: tuple[str, ...] = ("assigned", "en_route", "on_scene", "completed", "cancelled")
#: statuses in which a task holds its resource: at most one such task per resource (a unique index says so)
ACTIVE_TASK_STATUSES: tuple[str, ...] = ("assigned", "en_route", "on_scene")
#: the command tables whose every change is kept in ``feature_history`` (``layer`` = table name) and announced on
#: ``sitroom_changes``, as the feature layers' are: replay, the live push and the wall's cursor see them
COMMAND_TABLES: tuple[str, ...] = ("tasks", "plan_activations", "activation_actions", "duty_log")
#: response levels, 1 = Ⅰ级 (the highest) .. 4 = Ⅳ级
RESPONSE_LEVELS: tuple[int, ...] = (1, 2, 3, 4)
#: what a duty-log line records: a dispatch, a task transition, a plan step (activation, level change, close), a
#: checklist action, a warning confirmation, a person's own entry
DUTY_LOG_KINDS: tuple[str, ...] = ("dispatch", "task", "plan", "action", "warning", "manual")


def _sql_list(values: tuple[str, ...]) -> str:
    return ",".join(f"'{v}'" for v in values)


class Task(Base):
    """A resource sent to an incident (or a hazard, or an impact zone) to do something (调度任务).

    Who and when of every transition are columns (``<status>_at``, ``<status>_by``); the ETA is the one computed at
    dispatch, with the parameters it used (distance, detour factor, speed). A resource holds at most one task in
    :data:`ACTIVE_TASK_STATUSES`: the partial unique index ``uq_tasks_active_resource`` decides races.
    """

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    incident_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"))
    hazard_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("hazards.id", ondelete="CASCADE"))
    zone_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("impact_zones.id", ondelete="CASCADE"))
    resource_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("resources.id", ondelete="CASCADE"),
                                             nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="assigned")
    note: Mapped[str | None] = mapped_column(Text)
    distance_m: Mapped[float | None] = mapped_column(Double)
    eta_s: Mapped[float | None] = mapped_column(Double)
    eta_speed_kmh: Mapped[float | None] = mapped_column(Double)
    eta_detour: Mapped[float | None] = mapped_column(Double)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    assigned_by: Mapped[str] = mapped_column(String(64), nullable=False)
    en_route_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    en_route_by: Mapped[str | None] = mapped_column(String(64))
    on_scene_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_scene_by: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False, server_default="system")

    __table_args__ = (
        CheckConstraint(f"status IN ({_sql_list(TASK_STATUSES)})", name="status"),
        CheckConstraint("num_nonnulls(incident_id, hazard_id, zone_id) = 1", name="one_target"),
        Index("uq_tasks_active_resource", "resource_id", unique=True,
              postgresql_where=text(f"status IN ({_sql_list(ACTIVE_TASK_STATUSES)})")),
        Index("ix_tasks_status", "status"),
        Index("ix_tasks_incident_id", "incident_id"),
    )


class ResponsePlan(Base):
    """A response plan template (预案) for one hazard kind and response level: when it starts (启动条件), how soon
    information must be reported (信息报告时限), and its ordered actions (响应措施, :class:`PlanAction`)."""

    __tablename__ = "response_plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hazard_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    name_zh: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str] = mapped_column(Text, nullable=False)
    response_zh: Mapped[str] = mapped_column(Text, nullable=False)
    response_en: Mapped[str] = mapped_column(Text, nullable=False)
    conditions_zh: Mapped[str] = mapped_column(Text, nullable=False)
    conditions_en: Mapped[str] = mapped_column(Text, nullable=False)
    report_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    basis: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("hazard_kind", "level", name="uq_response_plans_hazard_kind_level"),
        CheckConstraint("level BETWEEN 1 AND 4", name="level"),
        CheckConstraint("report_minutes > 0", name="report_minutes"),
    )


class PlanAction(Base):
    """One action of a plan template: text, responsible unit or role, deadline in minutes after activation.

    ``code`` names the same action across levels (``consult``, ``report`` ...), so a checklist follows a level change.
    """

    __tablename__ = "plan_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(Integer, ForeignKey("response_plans.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    text_zh: Mapped[str] = mapped_column(Text, nullable=False)
    text_en: Mapped[str] = mapped_column(Text, nullable=False)
    unit_zh: Mapped[str] = mapped_column(Text, nullable=False)
    unit_en: Mapped[str] = mapped_column(Text, nullable=False)
    deadline_min: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (
        UniqueConstraint("plan_id", "seq", name="uq_plan_actions_plan_id_seq"),
        UniqueConstraint("plan_id", "code", name="uq_plan_actions_plan_id_code"),
        CheckConstraint("deadline_min >= 0", name="deadline_min"),
    )


class PlanActivation(Base):
    """A plan put into force (启动应急响应) for a hazard kind at a level, optionally for one hazard or incident."""

    __tablename__ = "plan_activations"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(Integer, ForeignKey("response_plans.id"), nullable=False)
    hazard_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    hazard_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("hazards.id", ondelete="SET NULL"))
    incident_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("incidents.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    issuer: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    activated_by: Mapped[str] = mapped_column(String(64), nullable=False)
    level_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False, server_default="system")

    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 4", name="level"),
        CheckConstraint("status IN ('active','closed')", name="status"),
        Index("ix_plan_activations_status", "status"),
    )


class ActivationAction(Base):
    """One line of an activation's checklist: the template action copied at activation (or level change), its
    deadline, and who checked it, when, with what note. ``dropped``: left behind by a level change, never done."""

    __tablename__ = "activation_actions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    activation_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("plan_activations.id", ondelete="CASCADE"),
                                               nullable=False)
    seq: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    text_zh: Mapped[str] = mapped_column(Text, nullable=False)
    text_en: Mapped[str] = mapped_column(Text, nullable=False)
    unit_zh: Mapped[str] = mapped_column(Text, nullable=False)
    unit_en: Mapped[str] = mapped_column(Text, nullable=False)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="open")
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False, server_default="system")

    __table_args__ = (
        UniqueConstraint("activation_id", "code", name="uq_activation_actions_activation_id_code"),
        CheckConstraint("status IN ('open','done','dropped')", name="status"),
        Index("ix_activation_actions_open_deadline", "deadline_at", postgresql_where=text("status = 'open'")),
    )


class DutyLogEntry(Base):
    """One line of the duty log (值班日志): every dispatch, task transition, plan step, warning confirmation and
    manual entry, with time and person. Append-only (a trigger refuses UPDATE and DELETE): corrections are new lines.

    Machine lines carry a message ``code`` and its ``params`` (rendered in the reader's language); ``text`` is a
    person's words (a manual entry, a note).
    """

    __tablename__ = "duty_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    author: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    code: Mapped[str | None] = mapped_column(String(48))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    text: Mapped[str | None] = mapped_column(Text)  # after ``params``: the name hides sqlalchemy's text() below it
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    activation_id: Mapped[int | None] = mapped_column(BigInteger)
    incident_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN ({_sql_list(DUTY_LOG_KINDS)})", name="kind"),
        Index("ix_duty_log_at", "at"),
        Index("ix_duty_log_kind_at", "kind", "at"),
    )
