"""observations: the primary key carries the reading (value, unit, period_s, quality, id) in its leaf entries

A station's series (the plot, ``GET /monitor/stations/<code>/series``, the rules' windows) is a range of the key
(station, variable, observed time). Readings arrive time after time for every station, so the rows of one series lie
one per heap page: a week of one station (5,000 readings) touched ~1,000 heap pages. With the columns the readers
ask for INCLUDEd in the key's index the range is an index-only scan of a few dozen pages (22 ms -> 1.6 ms of
execution at 10M readings). The index grows by ~7 % (the key's ``variable`` text dominates it).

Revision ID: 0008_observations_covering_key
Revises: 0007_command
"""
from __future__ import annotations

from alembic import op

revision = "0008_observations_covering_key"
down_revision = "0007_command"
branch_labels = None
depends_on = None

KEY = "station_id, variable, observed_at"


def upgrade() -> None:
    op.execute("ALTER TABLE observations DROP CONSTRAINT pk_observations")
    op.execute(f"ALTER TABLE observations ADD CONSTRAINT pk_observations PRIMARY KEY ({KEY})"
               " INCLUDE (value, unit, period_s, quality, id)")


def downgrade() -> None:
    op.execute("ALTER TABLE observations DROP CONSTRAINT pk_observations")
    op.execute(f"ALTER TABLE observations ADD CONSTRAINT pk_observations PRIMARY KEY ({KEY})")
