"""history triggers and change notifications on every feature layer

Every committed change to a feature row is kept in ``feature_history`` (full row, who, when, transaction) and
announced on the ``sitroom_changes`` channel as JSON ``{"layer", "op", "ids"}``. Statement-level triggers with
transition tables keep a 100k-row COPY fast: one history INSERT ... SELECT and one NOTIFY per 500 ids, not one per row.
A soft delete (``deleted_at`` set) is recorded as op ``delete``.

Who: the ``updated_by`` column of the new row, else the session setting ``sitroom.user``, else ``system``.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LAYERS = ("hazards", "incidents", "shelters", "resources", "protection_targets", "admin_regions",
          "impact_zones", "annotations")

FUNCTION = r"""
CREATE OR REPLACE FUNCTION sitroom_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    who text := coalesce(nullif(current_setting('sitroom.user', true), ''), 'system');
    chunk bigint[];
    ids bigint[];
    op_name text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row)
        SELECT TG_TABLE_NAME, n.id, 'insert', clock_timestamp(),
               coalesce(nullif(n.updated_by, 'system'), who), txid_current(), to_jsonb(n)
        FROM new_rows n;
        SELECT array_agg(id ORDER BY id) INTO ids FROM new_rows;
        op_name := 'insert';
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row)
        SELECT TG_TABLE_NAME, n.id,
               CASE WHEN o.deleted_at IS NULL AND n.deleted_at IS NOT NULL THEN 'delete' ELSE 'update' END,
               clock_timestamp(), coalesce(nullif(n.updated_by, 'system'), who), txid_current(), to_jsonb(n)
        FROM new_rows n JOIN old_rows o ON o.id = n.id;
        SELECT array_agg(id ORDER BY id) INTO ids FROM new_rows;
        op_name := 'update';
    ELSE
        INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row)
        SELECT TG_TABLE_NAME, o.id, 'purge', clock_timestamp(), who, txid_current(), to_jsonb(o)
        FROM old_rows o;
        SELECT array_agg(id ORDER BY id) INTO ids FROM old_rows;
        op_name := 'purge';
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

CREATE OR REPLACE FUNCTION sitroom_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    IF NEW.updated_by IS NOT DISTINCT FROM OLD.updated_by THEN
        NEW.updated_by := coalesce(nullif(current_setting('sitroom.user', true), ''), NEW.updated_by);
    END IF;
    RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    for t in LAYERS:
        op.execute(f"CREATE TRIGGER {t}_touch BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION sitroom_touch()")
        op.execute(f"CREATE TRIGGER {t}_hist_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_change()")
        op.execute(f"CREATE TRIGGER {t}_hist_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_change()")
        op.execute(f"CREATE TRIGGER {t}_hist_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION sitroom_record_change()")


def downgrade() -> None:
    for t in LAYERS:
        for suffix in ("touch", "hist_ins", "hist_upd", "hist_del"):
            op.execute(f"DROP TRIGGER IF EXISTS {t}_{suffix} ON {t}")
    op.execute("DROP FUNCTION IF EXISTS sitroom_record_change()")
    op.execute("DROP FUNCTION IF EXISTS sitroom_touch()")
