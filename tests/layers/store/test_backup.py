"""Backup and restore round-trip the whole store: every table, row by row, history, population, accounts, tokens.

A database of its own is filled with at least one row in every table of the schema (features of every layer,
updated and soft-deleted so that the history holds insert/update/delete rows, population cells, an account, a token),
backed up with :func:`layers.store.backup.backup`, and restored (1) into a new empty database and (2) over an existing
database whose content differs. The oracle is PostgreSQL's own text form of every row (``t::text``: geometry as hex
EWKB, JSONB, timestamps to the microsecond) and every sequence's position, read independently of the code under test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, insert, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from layers.store import auth, backup
from layers.store.db import migrate
from layers.store.errors import ValidationError
from layers.store.models import (
    AdminRegion,
    Annotation,
    Base,
    Hazard,
    ImpactZone,
    Incident,
    Observation,
    PopulationCell,
    PopulationSource,
    ProtectionTarget,
    Resource,
    Shelter,
    Station,
)

pytestmark = pytest.mark.db

SQUARE = "SRID=4326;MULTIPOLYGON(((111 40,111.1 40,111.1 40.1,111 40.1,111 40)))"


def _url(db_url: str, name: str) -> str:
    return make_url(db_url).set(database=name).render_as_string(hide_password=False)


def _admin(db_url: str) -> str:
    return _url(db_url, "postgres")


def _create(db_url: str, name: str) -> str:
    eng = create_engine(_admin(db_url), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return _url(db_url, name)


def _drop(db_url: str, *names: str) -> None:
    eng = create_engine(_admin(db_url), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        for name in names:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def _fill(url: str, tag: str) -> None:
    """At least one row in every table; each feature updated, one deleted, so the history has every op."""
    eng = create_engine(url)
    with Session(eng) as s, s.begin():
        s.execute(text("SELECT set_config('sitroom.user', :u, true)"), {"u": f"filler-{tag}"})
        pt = "SRID=4326;POINT(111.05 40.05)"
        common = {"source": f"bk-{tag}", "status": "active", "name": f"名称 {tag} 'quoted'",
                  "properties": {"note": f"备注 {tag}", "n": 1.5, "list": [1, "二"]}}
        s.execute(insert(Hazard).values(**common, external_id="h1", kind="flood", geom=SQUARE, warning_level="red"))
        s.execute(insert(Incident).values(**common, external_id="i1", kind="fire", geom=pt))
        s.execute(insert(Incident).values(**common, external_id="i2", kind="flood", geom=pt))
        s.execute(insert(Shelter).values(**common, external_id="s1", kind="emergency", geom=pt, capacity=500,
                                         occupancy=12))
        s.execute(insert(Resource).values(**common, external_id="r1", kind="boat", geom=pt, quantity=3))
        s.execute(insert(ProtectionTarget).values(**common, external_id="p1", kind="school", geom=pt, occupants=900))
        s.execute(insert(AdminRegion).values(**common, external_id="a1", kind="county", geom=SQUARE,
                                             adcode=f"15{abs(hash(tag)) % 10000:04d}", level="county"))
        s.execute(insert(ImpactZone).values(**common, external_id="z1", kind="drawn", geom=SQUARE))
        s.execute(insert(Annotation).values(**common, external_id="n1", kind="fire", geom=pt))
        s.execute(insert(Annotation).values(**common, external_id="n2", kind="fire", geom=pt))
        sid = s.execute(insert(Station).values(**common, external_id="st1", kind="weather", geom=pt,
                                               code=f"ST-{tag}").returning(Station.id)).scalar_one()
        s.execute(text("SELECT sitroom_observation_partition(DATE '2026-07-01')"))  # a month of the partitioned store
        s.execute(insert(Observation).values(station_id=sid, variable="temperature", value=21.5, unit="degC",
                                             observed_at=text("TIMESTAMPTZ '2026-07-20 08:00+08'")))
    with Session(eng) as s, s.begin():
        s.execute(text("SELECT set_config('sitroom.user', :u, true)"), {"u": f"editor-{tag}"})
        s.execute(update(Shelter).values(occupancy=40))
        s.execute(update(Incident).where(Incident.external_id == "i2").values(deleted_at=text("now()")))
        s.execute(text("DELETE FROM annotations WHERE external_id = 'n2'"))  # a hard delete: the history keeps the row
        s.execute(insert(PopulationSource).values(source=f"pop-{tag}", res=8, input_total=1234.5, cell_count=2,
                                                  modelled=True))
        s.execute(insert(PopulationCell).values([
            {"source": f"pop-{tag}", "res": 8, "h3": 613196571324350463, "population": 1000.25},
            {"source": f"pop-{tag}", "res": 8, "h3": 613196571326447615, "population": 234.25}]))
        auth.add_user(s.connection(), f"admin_{tag}", "a long enough password 1", role="admin")
        auth.create_token(s.connection(), f"feed-{tag}", layers=["incidents"], access="write",
                          created_by=f"admin_{tag}")
    eng.dispose()


def _snapshot(url: str) -> dict[str, list[str]]:
    """Every row of every table of the public schema as PostgreSQL's text, sorted; and every sequence's state."""
    eng = create_engine(url)
    out: dict[str, list[str]] = {}
    with eng.connect() as c:
        tables = c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                "AND tablename <> 'spatial_ref_sys' ORDER BY 1")).scalars().all()
        for t in tables:
            out[t] = sorted(c.execute(text(f'SELECT t::text FROM public."{t}" AS t')).scalars().all())
        for seq in c.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).scalars():
            out[f"sequence:{seq}"] = [str(c.execute(text(f'SELECT last_value, is_called FROM public."{seq}"')).one())]
        out["extensions"] = sorted(c.execute(text("SELECT extname FROM pg_extension")).scalars().all())
        out["triggers"] = sorted(c.execute(text("SELECT tgrelid::regclass::text || ':' || tgname FROM pg_trigger "
                                                "WHERE NOT tgisinternal")).scalars().all())
    eng.dispose()
    return out


@pytest.fixture(scope="module")
def source_db(db_url: str) -> Iterator[str]:
    name = f"{make_url(db_url).database}_bksrc"
    url = _create(db_url, name)
    migrate(url)
    _fill(url, "one")
    yield url
    _drop(db_url, name)


def test_every_table_is_filled_so_the_comparison_covers_it(source_db: str) -> None:
    snap = _snapshot(source_db)
    for table in [*Base.metadata.tables, "alembic_version"]:
        assert snap[table], f"{table} is empty in the source: the round trip would not test it"
    ops = {r.split(",")[3] for r in snap["feature_history"]}
    assert {"insert", "update", "delete"} <= ops


def test_round_trip_into_an_empty_and_into_an_existing_database(source_db: str, db_url: str, tmp_path) -> None:
    before = _snapshot(source_db)
    archive = backup.backup(source_db, tmp_path / "store.dump")
    assert archive.read_bytes()[:5] == b"PGDMP" and not (tmp_path / "store.dump.partial").exists()

    base = make_url(db_url).database
    empty, existing = f"{base}_bkempty", f"{base}_bkexisting"
    try:
        empty_url = _create(db_url, empty)
        report = backup.restore(empty_url, archive)
        assert report.revision == report.head and not report.migrated
        assert _snapshot(empty_url) == before

        existing_url = _create(db_url, existing)
        migrate(existing_url)
        _fill(existing_url, "other")  # different rows, users, tokens, history
        assert _snapshot(existing_url) != before
        backup.restore(existing_url, archive)
        assert _snapshot(existing_url) == before

        # the restored store keeps working: the triggers write history, the sequences continue past the old ids
        eng = create_engine(existing_url)
        with Session(eng) as s, s.begin():
            new_id = s.execute(insert(Incident).values(source="bk-after", external_id="x", kind="fire",
                                                       status="active", geom="SRID=4326;POINT(111 40)")
                               .returning(Incident.id)).scalar_one()
        with eng.connect() as c:
            src = create_engine(source_db)
            with src.connect() as sc:
                old_max = sc.execute(text("SELECT max(id) FROM incidents")).scalar_one()
            src.dispose()
            assert new_id > old_max
            assert c.execute(text("SELECT count(*) FROM feature_history WHERE layer = 'incidents' "
                                  "AND feature_id = :i"), {"i": new_id}).scalar_one() == 1
        eng.dispose()
    finally:
        _drop(db_url, empty, existing)


def test_a_file_that_is_not_a_backup_changes_nothing(source_db: str, tmp_path) -> None:
    before = _snapshot(source_db)
    bad = tmp_path / "not-a-dump.dump"
    bad.write_bytes(b"PGDMP" + os.urandom(200))  # right magic, truncated garbage
    junk = tmp_path / "junk.txt"
    junk.write_text("DROP TABLE incidents;")
    for path in (bad, junk, tmp_path / "missing.dump"):
        with pytest.raises(ValidationError):
            backup.restore(source_db, path)
    assert _snapshot(source_db) == before
