"""history rows keep the geometry as hex EWKB, not GeoJSON

``to_jsonb(row)`` turns a PostGIS geometry into GeoJSON through its json cast, which looks the CRS up for every row:
100k imported points spent 12 s in the history trigger. Building the row's JSON from a projection in which the
geometry columns are cast to text (hex EWKB, exact and cheap) brings that to a fraction of a second, and is what
0002's docstring promised. The projection is built once per table from ``pg_attribute`` and run with EXECUTE;
transition tables are visible to EXECUTE'd queries in PL/pgSQL.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION sitroom_row_projection(rel regclass, alias text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(
        CASE WHEN t.typname IN ('geometry', 'geography')
             THEN format('%I.%I::text AS %I', alias, a.attname, a.attname)
             ELSE format('%I.%I', alias, a.attname) END, ', ' ORDER BY a.attnum)
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
$$;

CREATE OR REPLACE FUNCTION sitroom_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    who text := coalesce(nullif(current_setting('sitroom.user', true), ''), 'system');
    chunk bigint[];
    ids bigint[];
    op_name text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row) '
            'SELECT $1, p.id, ''insert'', clock_timestamp(), coalesce(nullif(p.updated_by, ''system''), $2), '
            '       txid_current(), to_jsonb(p) '
            'FROM (SELECT %s FROM new_rows n) p', sitroom_row_projection(TG_RELID, 'n'))
        USING TG_TABLE_NAME, who;
        SELECT array_agg(id ORDER BY id) INTO ids FROM new_rows;
        op_name := 'insert';
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format(
            'INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row) '
            'SELECT $1, p.id, CASE WHEN o.deleted_at IS NULL AND p.deleted_at IS NOT NULL '
            '                      THEN ''delete'' ELSE ''update'' END, '
            '       clock_timestamp(), coalesce(nullif(p.updated_by, ''system''), $2), txid_current(), to_jsonb(p) '
            'FROM (SELECT %s FROM new_rows n) p JOIN old_rows o ON o.id = p.id',
            sitroom_row_projection(TG_RELID, 'n'))
        USING TG_TABLE_NAME, who;
        SELECT array_agg(id ORDER BY id) INTO ids FROM new_rows;
        op_name := 'update';
    ELSE
        EXECUTE format(
            'INSERT INTO feature_history (layer, feature_id, op, changed_at, changed_by, txid, row) '
            'SELECT $1, p.id, ''purge'', clock_timestamp(), $2, txid_current(), to_jsonb(p) '
            'FROM (SELECT %s FROM old_rows o) p', sitroom_row_projection(TG_RELID, 'o'))
        USING TG_TABLE_NAME, who;
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
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    # 0002's function (GeoJSON geometry) comes back with its migration's SQL.
    from importlib import import_module

    op.execute(import_module("layers.store.migrations.versions.0002_history_and_notify").FUNCTION)  # pragma: no cover
    op.execute("DROP FUNCTION IF EXISTS sitroom_row_projection(regclass, text)")
