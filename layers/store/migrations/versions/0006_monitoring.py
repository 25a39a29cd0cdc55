"""monitoring: stations (a feature layer), observations (partitioned by month), warning rules, the monitor role

* ``stations``: a feature layer like the others (history and touch triggers of 0002/0003), with the station code
  (区站号), county, reporting interval and river stages (警戒水位, 保证水位, 历史最高水位).
* ``observations``: declarative partitioning by RANGE on ``observed_at``, one partition per month, made on demand by
  ``sitroom_observation_partition(month)`` (an advisory lock makes two ingests that need the same month make it
  once); BRIN on time; the primary key (station, variable, observed time) makes a re-sent reading a no-op.
* ``warning_rules``: rules as data, seeded here from China's official criteria (cited in ``source`` and in
  ``docs/monitoring.md``). A deployment edits the rows; later migrations never overwrite them.
* the ``monitor`` role (监测员) joins the roles of an account.

Revision ID: 0006_monitoring
Revises: 0006_sessions
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0006_monitoring"
down_revision = "0006_sessions"
branch_labels = None
depends_on = None

PARTITION_FUNCTION = r"""
CREATE OR REPLACE FUNCTION sitroom_observation_partition(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := format('observations_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('sitroom_observation_partitions'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF observations FOR VALUES FROM (%L) TO (%L)',
                           name, first::timestamptz, (first + interval '1 month')::timestamptz);
        END IF;
    END IF;
    RETURN name;
END
$$;
"""

_CMA = "中国气象局《气象灾害预警信号发布与传播办法》(中国气象局令第16号, 2007) 附件《气象灾害预警信号及防御指南》"
_MWR = "水利部《水情预警发布管理办法（试行）》(2013) 附件《水情预警信号》"


def _levels(values: dict[str, float], window_s: int | None = None) -> dict[str, dict[str, float]]:
    return {k: ({"value": v} if window_s is None else {"value": v, "window_s": window_s}) for k, v in values.items()}


def _still(variable: str) -> dict:
    """``variable`` fell in the last 2 h: the 'and continuing' part of the criterion."""
    return {"variable": variable, "aggregation": "sum", "window_s": 7200, "op": ">",
            "thresholds": _levels({"blue": 0, "yellow": 0, "orange": 0, "red": 0})}


#: the seeded rules (see docs/monitoring.md for the criteria each one encodes and what was made numeric)
RULES: list[dict] = [
    {"code": "rainstorm", "name": "暴雨", "name_en": "Rainstorm", "hazard_kind": "flood",
     "variable": "precipitation", "aggregation": "sum", "window_s": 43200, "op": ">=",
     "thresholds": {"blue": {"value": 50, "window_s": 43200}, "yellow": {"value": 50, "window_s": 21600},
                    "orange": {"value": 50, "window_s": 10800}, "red": {"value": 100, "window_s": 10800}},
     "conditions": [_still("precipitation")], "alternatives": [], "area": "county", "hysteresis_s": 3600,
     "station_kinds": ["weather"],
     "source": f"{_CMA}: 暴雨 蓝 12 h ≥ 50 mm, 黄 6 h ≥ 50 mm, 橙 3 h ≥ 50 mm, 红 3 h ≥ 100 mm, and continuing"},
    {"code": "blizzard", "name": "暴雪", "name_en": "Blizzard", "hazard_kind": "blizzard",
     "variable": "snowfall", "aggregation": "sum", "window_s": 43200, "op": ">=",
     "thresholds": {"blue": {"value": 4, "window_s": 43200}, "yellow": {"value": 6, "window_s": 43200},
                    "orange": {"value": 10, "window_s": 21600}, "red": {"value": 15, "window_s": 21600}},
     "conditions": [_still("snowfall")], "alternatives": [], "area": "county", "hysteresis_s": 3600,
     "station_kinds": ["weather"],
     "source": f"{_CMA}: 暴雪 蓝 12 h ≥ 4 mm, 黄 12 h ≥ 6 mm, 橙 6 h ≥ 10 mm, 红 6 h ≥ 15 mm (water equivalent), "
               "and continuing"},
    {"code": "gale", "name": "大风", "name_en": "Gale", "hazard_kind": "gale",
     "variable": "wind_speed", "aggregation": "max", "window_s": 3600, "op": ">=",
     "thresholds": _levels({"blue": 10.8, "yellow": 17.2, "orange": 24.5, "red": 32.7}),
     "alternatives": [{"variable": "wind_gust", "aggregation": "max", "window_s": 3600, "op": ">=",
                       "thresholds": _levels({"blue": 13.9, "yellow": 20.8, "orange": 28.5, "red": 37.0})}],
     "conditions": [], "area": "county", "hysteresis_s": 7200, "station_kinds": ["weather"],
     "source": f"{_CMA}: 大风 mean wind of Beaufort force 6/8/10/12 or gusts of force 7/9/11/13 (lower bounds of "
               "GB/T 28591-2012 风力等级: 10.8/17.2/24.5/32.7 and 13.9/20.8/28.5/37.0 m/s), observed in the last hour"},
    {"code": "cold_wave", "name": "寒潮", "name_en": "Cold wave", "hazard_kind": "cold_wave",
     "variable": "temperature", "aggregation": "min_drop", "window_s": 86400, "op": ">=",
     "thresholds": {"blue": {"value": 8, "window_s": 172800}, "yellow": {"value": 10, "window_s": 86400},
                    "orange": {"value": 12, "window_s": 86400}, "red": {"value": 16, "window_s": 86400}},
     "alternatives": [],
     "conditions": [
         {"variable": "temperature", "aggregation": "min", "window_s": 86400, "op": "<=",
          "thresholds": {"blue": {"value": 4, "window_s": 172800}, "yellow": {"value": 4},
                         "orange": {"value": 0}, "red": {"value": 0}}},
         {"variable": "wind_speed", "aggregation": "max", "window_s": 86400, "op": ">=",
          "thresholds": {"blue": {"value": 8.0, "window_s": 172800}, "yellow": {"value": 10.8},
                         "orange": {"value": 10.8}, "red": {"value": 10.8}}},
     ], "area": "county", "hysteresis_s": 21600, "station_kinds": ["weather"],
     "source": f"{_CMA}: 寒潮 the lowest temperature falls by ≥ 8 °C in 48 h (蓝), ≥ 10/12/16 °C in 24 h (黄/橙/红), "
               "to ≤ 4 °C (蓝, 黄) or ≤ 0 °C (橙, 红), with mean wind of force 5 (蓝) or 6 (others)"},
    {"code": "fog", "name": "大雾", "name_en": "Dense fog", "hazard_kind": "other",
     "variable": "visibility", "aggregation": "latest", "window_s": 3600, "op": "<",
     "thresholds": _levels({"yellow": 500, "orange": 200, "red": 50}),
     "alternatives": [], "conditions": [], "area": "county", "hysteresis_s": 3600, "station_kinds": ["weather"],
     "source": f"{_CMA}: 大雾 visibility below 500 m (黄), 200 m (橙), 50 m (红); the signal has no blue level"},
    {"code": "river_stage", "name": "洪水", "name_en": "River flood", "hazard_kind": "flood",
     "variable": "water_level", "aggregation": "latest", "window_s": 3600, "op": ">=",
     "thresholds": {"blue": {"station": "warning_stage_m", "offset": -0.3},
                    "yellow": {"station": "warning_stage_m"}, "orange": {"station": "guarantee_stage_m"},
                    "red": {"station": "record_stage_m"}},
     "alternatives": [], "conditions": [], "area": "buffer", "buffer_m": 20000, "hysteresis_s": 21600,
     "station_kinds": ["hydrology"],
     "source": f"{_MWR}: 洪水 蓝 approaching the warning stage (here: within 0.3 m), 黄 at or above the warning "
               "stage (警戒水位), 橙 at or above the guaranteed stage (保证水位), 红 at or above the record stage "
               "(历史最高水位), each station's own"},
]


def upgrade() -> None:
    op.create_geospatial_table(
        "stations",
        sa.Column("geom", Geometry(geometry_type="POINT", srid=4326, dimension=2, spatial_index=False,
                                   from_text="ST_GeomFromEWKT", name="geometry", nullable=False), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("adcode", sa.String(length=12), nullable=True),
        sa.Column("interval_s", sa.Integer(), server_default="3600", nullable=False),
        sa.Column("warning_stage_m", sa.Double(), nullable=True),
        sa.Column("guarantee_stage_m", sa.Double(), nullable=True),
        sa.Column("record_stage_m", sa.Double(), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), server_default="manual", nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("properties", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.String(length=64), server_default="system", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("interval_s BETWEEN 1 AND 604800", name=op.f("ck_stations_interval")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("code", name=op.f("uq_stations_code")),
        sa.UniqueConstraint("source", "external_id", name="uq_stations_source_external_id"),
    )
    op.create_index("ix_stations_geog", "stations", [sa.literal_column("(geom::geography)")], unique=False,
                    postgresql_using="gist")
    op.create_geospatial_index("ix_stations_geom", "stations", ["geom"], unique=False, postgresql_using="gist",
                               postgresql_ops={})
    op.create_index("ix_stations_kind_status", "stations", ["kind", "status"], unique=False)
    op.create_index("ix_stations_live", "stations", ["id"], unique=False, postgresql_where=sa.text("deleted_at IS NULL"))
    # the history and notification triggers every feature layer has (functions of 0002/0003)
    t = "stations"
    op.execute(f"CREATE TRIGGER {t}_touch BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION sitroom_touch()")
    op.execute(f"CREATE TRIGGER {t}_hist_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
               f"FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_change()")
    op.execute(f"CREATE TRIGGER {t}_hist_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
               f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_change()")
    op.execute(f"CREATE TRIGGER {t}_hist_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
               f"FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_change()")

    op.execute("CREATE SEQUENCE observations_id_seq")
    op.create_table(
        "observations",
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("variable", sa.String(length=24), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger(), server_default=sa.text("nextval('observations_id_seq')"), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("period_s", sa.Integer(), nullable=True),
        sa.Column("quality", sa.String(length=12), server_default="good", nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("quality IN ('good','range','spike','flatline')", name=op.f("ck_observations_quality")),
        sa.PrimaryKeyConstraint("station_id", "variable", "observed_at", name=op.f("pk_observations")),
        postgresql_partition_by="RANGE (observed_at)",
    )
    op.execute("ALTER SEQUENCE observations_id_seq OWNED BY observations.id")
    op.create_index("ix_observations_observed_at", "observations", ["observed_at"], unique=False,
                    postgresql_using="brin")
    op.create_index("ix_observations_flagged", "observations", ["observed_at"], unique=False,
                    postgresql_where=sa.text("quality <> 'good'"))
    op.execute(PARTITION_FUNCTION)

    rules = op.create_table(
        "warning_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("hazard_kind", sa.String(length=32), nullable=False),
        sa.Column("variable", sa.String(length=24), nullable=False),
        sa.Column("aggregation", sa.String(length=12), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=2), server_default=">=", nullable=False),
        sa.Column("thresholds", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("alternatives", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"),
                  nullable=False),
        sa.Column("conditions", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"),
                  nullable=False),
        sa.Column("area", sa.String(length=8), server_default="county", nullable=False),
        sa.Column("buffer_m", sa.Double(), nullable=True),
        sa.Column("hysteresis_s", sa.Integer(), server_default="3600", nullable=False),
        sa.Column("station_kinds", postgresql.ARRAY(sa.String(length=16)), server_default=sa.text("'{weather}'"),
                  nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("aggregation IN ('sum','max','min','mean','latest','min_drop')",
                           name=op.f("ck_warning_rules_aggregation")),
        sa.CheckConstraint("op IN ('>=','<=','>','<')", name=op.f("ck_warning_rules_op")),
        sa.CheckConstraint("area IN ('county','buffer')", name=op.f("ck_warning_rules_area")),
        sa.CheckConstraint("window_s > 0 AND hysteresis_s >= 0", name=op.f("ck_warning_rules_window")),
        sa.CheckConstraint("area <> 'buffer' OR buffer_m > 0", name=op.f("ck_warning_rules_buffer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_rules")),
        sa.UniqueConstraint("code", name=op.f("uq_warning_rules_code")),
    )
    op.bulk_insert(rules, [{**r, "buffer_m": r.get("buffer_m")} for r in RULES])

    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users",
                               "role IN ('display','viewer','analyst','planner','monitor','admin')")


def downgrade() -> None:
    op.execute("UPDATE users SET role = 'viewer' WHERE role = 'monitor'")
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users",
                               "role IN ('display','viewer','analyst','planner','admin')")
    op.drop_table("warning_rules")
    op.execute("DROP FUNCTION IF EXISTS sitroom_observation_partition(date)")
    op.drop_table("observations")  # and its partitions
    op.execute("DELETE FROM feature_history WHERE layer = 'stations'")
    op.drop_table("stations")
