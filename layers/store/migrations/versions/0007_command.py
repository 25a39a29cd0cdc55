"""command and dispatch: tasks, response plans and their activations, the duty log, the dispatcher role

- ``tasks``: a resource sent to an incident, hazard or impact zone; who and when of each transition; the ETA of the
  dispatch. At most one active task (assigned, en_route, on_scene) per resource: the partial unique index
  ``uq_tasks_active_resource`` decides two dispatchers racing for the same resource.
- ``response_plans`` / ``plan_actions``: plan templates (预案) per hazard kind and response level, loaded as data
  (``sitroom plans load``); ``plan_activations`` / ``activation_actions``: a plan in force and its checklist.
- ``duty_log``: the duty officer's record (值班日志), append-only (a trigger refuses UPDATE and DELETE).
- Every change of ``tasks``, ``plan_activations``, ``activation_actions`` and ``duty_log`` is kept in
  ``feature_history`` (``layer`` = the table) and announced on ``sitroom_changes`` like a feature layer's, so replay,
  the live push and the wall's change cursor see them. ``sitroom_touch`` (0002) keeps ``updated_at``/``updated_by``.
- The account role ``dispatcher`` (值班调度员).

Revision ID: 0007_command
Revises: 0006_monitoring
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_command"
down_revision = "0006_monitoring"
branch_labels = None
depends_on = None

HISTORY_TABLES = ("tasks", "plan_activations", "activation_actions", "duty_log")
TOUCHED_TABLES = ("tasks", "plan_activations", "activation_actions")
ROLES_BEFORE = "'display','viewer','analyst','planner','monitor','admin'"
ROLES_AFTER = "'display','viewer','analyst','planner','monitor','dispatcher','admin'"

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION sitroom_record_command_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    who text := coalesce(nullif(current_setting('sitroom.user', true), ''), 'system');
    chunk bigint[];
    ids bigint[];
    op_name text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row)
        SELECT TG_TABLE_NAME, o.id, 'purge', clock_timestamp(), who, txid_current(), to_jsonb(o) FROM old_rows o;
        SELECT array_agg(id ORDER BY id) INTO ids FROM old_rows;
        op_name := 'purge';
    ELSE
        op_name := lower(TG_OP);
        INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row)
        SELECT TG_TABLE_NAME, (x.r ->> 'id')::bigint, op_name, clock_timestamp(),
               coalesce(nullif(x.r ->> 'updated_by', 'system'), who), txid_current(), x.r
        FROM (SELECT to_jsonb(n) AS r FROM new_rows n) x;
        SELECT array_agg(id ORDER BY id) INTO ids FROM new_rows;
    END IF;
    IF ids IS NOT NULL THEN
        FOR i IN 1 .. array_length(ids, 1) BY 500 LOOP
            chunk := ids[i : i + 499];
            PERFORM pg_notify('sitroom_changes',
                json_build_object('layer', TG_TABLE_NAME, 'op', op_name, 'ids', chunk)::text);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sitroom_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused; add a new line instead', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
"""


def _stamp_columns() -> list[sa.Column]:
    return [sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
            sa.Column("updated_by", sa.String(length=64), server_default="system", nullable=False)]


def upgrade() -> None:
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN ({ROLES_AFTER})")
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("hazard_id", sa.BigInteger(), nullable=True),
        sa.Column("zone_id", sa.BigInteger(), nullable=True),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="assigned", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("distance_m", sa.Double(), nullable=True),
        sa.Column("eta_s", sa.Double(), nullable=True),
        sa.Column("eta_speed_kmh", sa.Double(), nullable=True),
        sa.Column("eta_detour", sa.Double(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=False),
        *[sa.Column(f"{s}_{c}", sa.DateTime(timezone=True) if c == "at" else sa.String(length=64), nullable=True)
          for s in ("en_route", "on_scene", "completed", "cancelled") for c in ("at", "by")],
        *_stamp_columns(),
        sa.CheckConstraint("status IN ('assigned','en_route','on_scene','completed','cancelled')",
                           name=op.f("ck_tasks_status")),
        sa.CheckConstraint("num_nonnulls(incident_id, hazard_id, zone_id) = 1", name=op.f("ck_tasks_one_target")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_tasks_incident_id_incidents"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["hazard_id"], ["hazards.id"], name=op.f("fk_tasks_hazard_id_hazards"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["zone_id"], ["impact_zones.id"], name=op.f("fk_tasks_zone_id_impact_zones"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"], name=op.f("fk_tasks_resource_id_resources"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("uq_tasks_active_resource", "tasks", ["resource_id"], unique=True,
                    postgresql_where=sa.text("status IN ('assigned','en_route','on_scene')"))
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_index("ix_tasks_incident_id", "tasks", ["incident_id"])

    op.create_table(
        "response_plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hazard_kind", sa.String(length=32), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        *[sa.Column(c, sa.Text(), nullable=False) for c in ("name_zh", "name_en", "response_zh", "response_en",
                                                            "conditions_zh", "conditions_en")],
        sa.Column("report_minutes", sa.Integer(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("level BETWEEN 1 AND 4", name=op.f("ck_response_plans_level")),
        sa.CheckConstraint("report_minutes > 0", name=op.f("ck_response_plans_report_minutes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_plans")),
        sa.UniqueConstraint("hazard_kind", "level", name="uq_response_plans_hazard_kind_level"),
    )
    op.create_table(
        "plan_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        *[sa.Column(c, sa.Text(), nullable=False) for c in ("text_zh", "text_en", "unit_zh", "unit_en")],
        sa.Column("deadline_min", sa.Integer(), nullable=False),
        sa.CheckConstraint("deadline_min >= 0", name=op.f("ck_plan_actions_deadline_min")),
        sa.ForeignKeyConstraint(["plan_id"], ["response_plans.id"], name=op.f("fk_plan_actions_plan_id_response_plans"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_actions")),
        sa.UniqueConstraint("plan_id", "seq", name="uq_plan_actions_plan_id_seq"),
        sa.UniqueConstraint("plan_id", "code", name="uq_plan_actions_plan_id_code"),
    )
    op.create_table(
        "plan_activations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("hazard_kind", sa.String(length=32), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("hazard_id", sa.BigInteger(), nullable=True),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("activated_by", sa.String(length=64), nullable=False),
        sa.Column("level_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        *_stamp_columns(),
        sa.CheckConstraint("level BETWEEN 1 AND 4", name=op.f("ck_plan_activations_level")),
        sa.CheckConstraint("status IN ('active','closed')", name=op.f("ck_plan_activations_status")),
        sa.ForeignKeyConstraint(["plan_id"], ["response_plans.id"],
                                name=op.f("fk_plan_activations_plan_id_response_plans")),
        sa.ForeignKeyConstraint(["hazard_id"], ["hazards.id"], name=op.f("fk_plan_activations_hazard_id_hazards"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_plan_activations_incident_id_incidents"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_activations")),
    )
    op.create_index("ix_plan_activations_status", "plan_activations", ["status"])
    op.create_table(
        "activation_actions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("activation_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        *[sa.Column(c, sa.Text(), nullable=False) for c in ("text_zh", "text_en", "unit_zh", "unit_en")],
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        *_stamp_columns(),
        sa.CheckConstraint("status IN ('open','done','dropped')", name=op.f("ck_activation_actions_status")),
        sa.ForeignKeyConstraint(["activation_id"], ["plan_activations.id"],
                                name=op.f("fk_activation_actions_activation_id_plan_activations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation_actions")),
        sa.UniqueConstraint("activation_id", "code", name="uq_activation_actions_activation_id_code"),
    )
    op.create_index("ix_activation_actions_open_deadline", "activation_actions", ["deadline_at"],
                    postgresql_where=sa.text("status = 'open'"))
    op.create_table(
        "duty_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=48), nullable=True),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("activation_id", sa.BigInteger(), nullable=True),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('dispatch','task','plan','action','warning','manual')",
                           name=op.f("ck_duty_log_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_log")),
    )
    op.create_index("ix_duty_log_at", "duty_log", ["at"])
    op.create_index("ix_duty_log_kind_at", "duty_log", ["kind", "at"])

    op.execute(FUNCTIONS)
    for t in TOUCHED_TABLES:
        op.execute(f"CREATE TRIGGER {t}_touch BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION sitroom_touch()")
    for t in HISTORY_TABLES:
        op.execute(f"CREATE TRIGGER {t}_hist_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_command_change()")
        if t == "duty_log":
            continue
        op.execute(f"CREATE TRIGGER {t}_hist_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_command_change()")
        op.execute(f"CREATE TRIGGER {t}_hist_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_command_change()")
    op.execute("CREATE TRIGGER duty_log_append_only BEFORE UPDATE OR DELETE ON duty_log "
               "FOR EACH ROW EXECUTE FUNCTION sitroom_append_only()")


def downgrade() -> None:
    for t in ("duty_log", "activation_actions", "plan_activations", "plan_actions", "response_plans", "tasks"):
        op.drop_table(t)
    op.execute("DROP FUNCTION IF EXISTS sitroom_record_command_change()")
    op.execute("DROP FUNCTION IF EXISTS sitroom_append_only()")
    op.execute("UPDATE users SET role = 'viewer' WHERE role = 'dispatcher'")  # keep the accounts, reading only
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN ({ROLES_BEFORE})")
