"""observations: a month's partition is made apart and attached, so that making it never waits for other ingests

``sitroom_observation_partition(month)`` made a missing month with ``CREATE TABLE ... PARTITION OF observations``,
which takes an ACCESS EXCLUSIVE lock on ``observations`` and so waits for every open transaction that has read or
written it. An ingest reads the stored series (quality context) before it writes, then asks for its months'
partitions; two ingests at once whose batches both reach a month not yet made deadlocked: the first held the
advisory lock and waited for the second's read lock, the second waited for the advisory lock (PostgreSQL aborts one
of them after ``deadlock_timeout``: a batch lost to a month boundary). Found by running the suite with the clock at
the turn of a year (libfaketime).

The month is now ``CREATE TABLE ... (LIKE observations ...)`` and ``ALTER TABLE observations ATTACH PARTITION``,
which takes SHARE UPDATE EXCLUSIVE on ``observations``: it does not conflict with readers or writers, so the maker
never waits for another ingest, and a second ingest that needs the same month waits only for the advisory lock.
The partition gets the parent's indexes (the covering key, BRIN, the flagged index) on attach. After the advisory
lock the function asks the catalog again with a query (its statement's snapshot) rather than ``to_regclass``, which
reads the session's catalog cache: the cache is not refreshed by an advisory lock, so the second ingest still saw no
month and failed on a duplicate table.

Revision ID: 0009_observation_partitions
Revises: 0008_observations_covering_key
"""
from __future__ import annotations

from alembic import op

revision = "0009_observation_partitions"
down_revision = "0008_observations_covering_key"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE OR REPLACE FUNCTION sitroom_observation_partition(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := format('observations_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('sitroom_observation_partitions'));
        -- asked again of the catalog in this statement's snapshot: to_regclass reads the session's catalog cache,
        -- which the advisory lock does not refresh (it still missed a month another ingest made meanwhile)
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = name
                       AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'observations'::regclass))
        THEN
            {make}
        END IF;
    END IF;
    RETURN name;
END
$$;
"""
_ATTACHED = """EXECUTE format('CREATE TABLE %I (LIKE observations INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
            EXECUTE format('ALTER TABLE observations ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           name, first::timestamptz, (first + interval '1 month')::timestamptz);"""
_PARTITION_OF = """EXECUTE format('CREATE TABLE %I PARTITION OF observations FOR VALUES FROM (%L) TO (%L)',
                           name, first::timestamptz, (first + interval '1 month')::timestamptz);"""


def upgrade() -> None:
    op.execute(_FUNCTION.replace("{make}", _ATTACHED))


def downgrade() -> None:
    op.execute(_FUNCTION.replace("{make}", _PARTITION_OF))
