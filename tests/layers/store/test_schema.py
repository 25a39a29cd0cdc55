"""The schema: migrations match the models, history and notifications follow every change."""

from __future__ import annotations

import json

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from layers.store.db import include_object
from layers.store.models import Base, FeatureHistory, Incident, Shelter

pytestmark = pytest.mark.db


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_every_change_is_kept_with_who_and_when(session: Session) -> None:
    session.execute(text("SELECT set_config('sitroom.user', 'analyst-li', true)"))
    fid = session.execute(insert(Shelter).values(kind="fixed", status="open", capacity=500, occupancy=0,
                                                 geom="SRID=4326;POINT(111.7 40.8)").returning(Shelter.id)).scalar_one()
    session.execute(update(Shelter).where(Shelter.id == fid).values(occupancy=120))
    session.execute(update(Shelter).where(Shelter.id == fid).values(deleted_at=text("now()")))
    rows = session.execute(sa_select(FeatureHistory).where(FeatureHistory.layer == "shelters",
                                                           FeatureHistory.feature_id == fid)
                           .order_by(FeatureHistory.id)).scalars().all()
    assert [r.op for r in rows] == ["insert", "update", "delete"]
    assert [r.row["occupancy"] for r in rows] == [0, 120, 120]
    assert {r.changed_by for r in rows} == {"analyst-li"}
    assert rows[0].changed_at <= rows[1].changed_at <= rows[2].changed_at


def test_committed_change_is_notified_with_layer_id_and_op(engine: Engine, db_url: str) -> None:
    u = make_url(db_url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
                         autocommit=True) as listener:
        listener.execute("LISTEN sitroom_changes")
        with engine.begin() as conn:
            fid = conn.execute(insert(Incident).values(kind="fire", status="reported", source="test-notify",
                                                       geom="SRID=4326;POINT(111.7 40.8)").returning(Incident.id)).scalar_one()
        got = []
        for n in listener.notifies(timeout=5, stop_after=1):
            got.append(json.loads(n.payload))
        with engine.begin() as conn:  # clean up: this test commits for real
            conn.execute(text("DELETE FROM incidents WHERE source = 'test-notify'"))
    assert got == [{"layer": "incidents", "op": "insert", "ids": [fid]}]


def test_bulk_insert_notifies_in_chunks(session: Session) -> None:
    # 1,200 rows in one statement: one history row each, ids announced in chunks of at most 500.
    session.execute(text(
        "INSERT INTO incidents (kind, status, geom, source, external_id) "
        "SELECT 'fire', 'reported', ST_SetSRID(ST_MakePoint(110 + g * 0.001, 40), 4326), 'bulk', g::text "
        "FROM generate_series(1, 1200) g"))
    n = session.execute(text("SELECT count(*) FROM feature_history WHERE layer = 'incidents' "
                             "AND row->>'source' = 'bulk'")).scalar_one()
    assert n == 1200
