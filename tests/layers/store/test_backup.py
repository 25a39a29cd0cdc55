"""Backup and restore round-trip the whole store: every table, row by row, history, population, accounts, tokens.

A database of its own is filled with at least one row in every table of the schema (features of every layer,
updated and soft-deleted so that the history holds insert/update/delete rows, population cells, an account, a token),
backed up with :func:`layers.store.backup.backup`, and restored (1) into a new empty database and (2) over an existing
database whose content differs. The oracle is PostgreSQL's own text form of every row (``t::text``: geometry as hex
EWKB, JSONB, timestamps to the microsecond) and every sequence's position, read independently of the code under test.

Beyond the round trip: an archive written by ``pg_dump`` of a database migrated only to an older revision is restored
and brought to this code's head (its rows unchanged, its schema equal to a freshly migrated one's, read from the
catalogues); an archive of a newer schema is refused before anything changes; an archive whose table of contents reads
well but whose data is cut short fails part-way through and leaves the database as it was; and the ``sitroom backup``
and ``sitroom restore`` commands do the same in a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from layers.store import auth, backup
from layers.store.db import migrate
from layers.store.errors import ClusterError, ValidationError
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


def _fill(url: str, tag: str, *, accounts: bool = True, cells: int = 0) -> None:
    """At least one row in every table; each feature updated, one deleted, so the history has every op.

    ``accounts``: also an account and a token (their tables exist from revision 0004 on). ``cells``: that many more
    population cells, for an archive with a large data section.
    """
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
        if s.execute(text("SELECT to_regclass('stations')")).scalar() is not None:  # from 0006_monitoring on
            sid = s.execute(insert(Station).values(**common, external_id="st1", kind="weather", geom=pt,
                                                   code=f"ST-{tag}").returning(Station.id)).scalar_one()
            s.execute(text("SELECT sitroom_observation_partition(DATE '2026-07-01')"))  # a month of the store
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
        if cells:
            s.execute(text("INSERT INTO population_cells (source, res, h3, population) SELECT :src, 9, "
                           "617700169958293503 + g, (g % 997)::float FROM generate_series(0, :n - 1) g"),
                      {"src": f"pop-{tag}", "n": cells})
        if s.execute(text("SELECT to_regclass('tasks')")).scalar() is not None:  # from 0007_command on
            from layers.command import duty, plans, tasks

            conn = s.connection()
            plans.load_plans(conn)  # response_plans, plan_actions
            rid = s.execute(insert(Resource).values(**{**common, "status": "available"}, external_id="r2",
                                                    kind="rescue_team", geom=pt, quantity=1)
                            .returning(Resource.id)).scalar_one()
            iid = s.execute(select(Incident.id).where(Incident.source == f"bk-{tag}", Incident.external_id == "i1")
                            ).scalar_one()
            tasks.dispatch(conn, resource_id=rid, incident_id=iid, note=f"备注 {tag}", user=f"editor-{tag}")
            plans.activate(conn, hazard_kind="flood", level=4, user=f"editor-{tag}", incident_id=iid)
            duty.add_manual(conn, f"交接班 {tag}", author=f"editor-{tag}")
        if accounts:
            uid = auth.add_user(s.connection(), f"admin_{tag}", "a long enough password 1", role="admin")
            auth.start_session(s.connection(), uid)
            auth.record_login_failure(s.connection(), f"admin_{tag}", "192.0.2.1")
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


# --- archives of another schema, a failure part-way, the command line ------------------------------------------------

OLD_REVISION = "0003"  # before accounts (0004) and the layer-version index (0005)
SITROOM = str(Path(sys.executable).with_name("sitroom"))


def _schema(url: str) -> dict[str, list[str]]:
    """The schema as the catalogues describe it: columns, constraints, indexes, triggers, functions of ``public``."""
    eng = create_engine(url)
    q = {
        "columns": "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || "
                   "coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public'",
        "constraints": "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) "
                       "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
        "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "triggers": "SELECT tgrelid::regclass::text || ' ' || pg_get_triggerdef(oid) FROM pg_trigger "
                    "WHERE NOT tgisinternal",
        "functions": "SELECT p.proname || ' ' || md5(p.prosrc) FROM pg_proc p "
                     "WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f' "
                     "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
        "revision": "SELECT version_num FROM alembic_version",
    }
    with eng.connect() as c:
        out = {k: sorted(c.execute(text(sql)).scalars().all()) for k, sql in q.items()}
    eng.dispose()
    # a CHECK constraint comes back from a dump with its casts spelt differently (ARRAY['a'::varchar]::text[] vs
    # ARRAY[('a'::varchar)::text]): compare them without casts and brackets
    out["constraints"] = sorted(re.sub(r"::[a-z ]+(\[\])?|[()\s]", "", c) for c in out["constraints"])
    return out


@pytest.fixture
def databases(db_url: str) -> Iterator[dict[str, str]]:
    """Names -> URLs of scratch databases made by the test (``make(name)``), all dropped at the end."""
    base = make_url(db_url).database

    class Made(dict[str, str]):
        def make(self, name: str) -> str:
            self[name] = _create(db_url, f"{base}_bk{name}")
            return self[name]

    m = Made()
    yield m
    _drop(db_url, *(make_url(u).database for u in m.values()))


def test_an_archive_of_an_older_schema_is_restored_and_migrated(databases, tmp_path) -> None:
    old = databases.make("old")
    migrate(old, OLD_REVISION)
    _fill(old, "old", accounts=False)
    old_rows = _snapshot(old)
    assert "users" not in old_rows and old_rows["alembic_version"] == [f"({OLD_REVISION})"]
    archive = backup.backup(old, tmp_path / "old.dump")

    fresh = databases.make("fresh")
    migrate(fresh)
    target = databases.make("target")
    migrate(target)
    _fill(target, "other")
    report = backup.restore(target, archive)
    assert (report.revision, report.migrated) == (OLD_REVISION, True)
    assert report.head == _schema(fresh)["revision"][0] != OLD_REVISION
    assert _schema(target) == _schema(fresh)  # the same schema as a database migrated to head from nothing
    now = _snapshot(target)
    for table, rows in old_rows.items():  # every row of the old archive, unchanged, and nothing of the target's
        if table not in ("alembic_version", "triggers"):
            assert now[table] == rows, table
    assert now["users"] == [] and now["api_tokens"] == []
    eng = create_engine(target)  # the migrated store works: the new tables take rows, the triggers write history
    with Session(eng) as s, s.begin():
        auth.add_user(s.connection(), "after_restore", "a long enough password 1", role="viewer")
        s.execute(update(Shelter).values(occupancy=41))
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM feature_history WHERE layer = 'shelters' AND op = 'update' "
                              "AND (row->>'occupancy')::int = 41")).scalar_one() == 1
    eng.dispose()


def _future_archive(databases, tmp_path) -> Path:
    """An archive of a newer Sitroom: a revision this code does not know, and a table it has never heard of."""
    newer = databases.make("newer")
    migrate(newer)
    _fill(newer, "newer")
    eng = create_engine(newer)
    with eng.begin() as c:
        c.execute(text("CREATE TABLE from_the_future (id int PRIMARY KEY)"))
        c.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    eng.dispose()
    return backup.backup(newer, tmp_path / "newer.dump")


def _refused_and_unchanged(databases, name: str, archive: Path, error: type[Exception]) -> Exception:
    """Restore ``archive`` over a filled database: it must raise ``error`` and leave rows and schema as they were."""
    target = databases.make(name)
    migrate(target)
    _fill(target, name)
    before, schema = _snapshot(target), _schema(target)
    with pytest.raises(error) as e:
        backup.restore(target, archive)
    assert _snapshot(target) == before and _schema(target) == schema
    return e.value


def test_an_archive_of_a_newer_schema_is_refused_before_anything_changes(databases, tmp_path) -> None:
    e = _refused_and_unchanged(databases, "keep", _future_archive(databases, tmp_path), ValidationError)
    assert "0099_from_the_future" in str(e) and "newer Sitroom" in str(e)
    assert "nothing was changed" in str(e)


def _cut_short(archive: Path, into: Path) -> Path:
    """The archive without the end of its data: the table of contents (at the start) reads well, the data does not."""
    data = archive.read_bytes()
    into.write_bytes(data[: int(len(data) * 0.8)])
    return into


def test_a_corrupt_archive_fails_part_way_and_leaves_the_database_as_it_was(databases, tmp_path) -> None:
    src = databases.make("big")
    migrate(src)
    _fill(src, "big", cells=60_000)  # a large data section, so that the cut falls inside the data
    cut = _cut_short(backup.backup(src, tmp_path / "big.dump"), tmp_path / "cut.dump")
    listing = subprocess.run([str(backup.tool("pg_restore")), "--list", str(cut)], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE DATA public population_cells" in listing.stdout  # not refused up front
    e = _refused_and_unchanged(databases, "victim", cut, ClusterError)
    assert "end of file" in str(e) and "nothing was changed" in str(e)


def _cli(*args: str, url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SITROOM_")}
    env["SITROOM_DATABASE_URL"] = url
    return subprocess.run([SITROOM, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300)


def test_the_backup_and_restore_commands(source_db: str, databases, tmp_path) -> None:
    before = _snapshot(source_db)
    archive = tmp_path / "cli.dump"
    p = _cli("backup", str(archive), url=source_db)
    assert p.returncode == 0, p.stderr
    assert str(archive) in p.stdout and archive.read_bytes()[:5] == b"PGDMP"

    target = databases.make("cli")
    migrate(target)
    _fill(target, "cli")
    kept = _snapshot(target)
    p = _cli("restore", str(archive), url=target, stdin="n\n")  # asked, answered no: nothing changes
    assert p.returncode == 1 and "Aborted" in p.stderr and make_url(target).database in p.stdout
    assert _snapshot(target) == kept
    junk = tmp_path / "junk.dump"
    junk.write_text("not an archive")
    p = _cli("restore", str(junk), "--yes", url=target)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr
    assert _snapshot(target) == kept
    p = _cli("restore", str(archive), "--yes", url=target)
    assert p.returncode == 0, p.stderr
    assert _schema(target)["revision"][0] in p.stdout
    assert _snapshot(target) == before

    newer = _future_archive(databases, tmp_path)
    p = _cli("restore", str(newer), "--yes", url=target)
    assert p.returncode == 2 and "0099_from_the_future" in p.stderr and "Traceback" not in p.stderr
    assert _snapshot(target) == before
