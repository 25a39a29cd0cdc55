"""The shared live picture: every caller gets a result at least as new as the store when it asked, and many callers
cost few computations (:mod:`dashboards.services.coalesce`)."""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from dashboards.services.coalesce import Coalescer, Stamp, read_stamp


class Store:
    """A fake store whose version moves on a clock; computing reads it first, then takes ``cost_s``."""

    def __init__(self, cost_s: float) -> None:
        self.version = 0
        self.cost_s = cost_s
        self.computations = 0
        self.lock = threading.Lock()

    def stamp(self) -> Stamp:
        with self.lock:
            return Stamp(self.version, self.version, "p")

    def compute(self) -> tuple[Stamp, int]:
        s = self.stamp()
        with self.lock:
            self.computations += 1
        time.sleep(self.cost_s)
        return s, s.version


def test_many_callers_under_a_stream_of_changes_get_fresh_results_from_few_computations() -> None:
    """40 screens asking 10 times a second while the version moves every 10 ms: each answer covers what the store
    was when that screen asked, and the number of computations is bounded by the interval, not by the screens."""
    store = Store(cost_s=0.02)
    c = Coalescer(min_interval_s=0.2, max_age_s=60)
    stop = threading.Event()
    stale: list[tuple[int, int]] = []
    answers = [0]

    def writer() -> None:
        while not stop.is_set():
            with store.lock:
                store.version += 1
            time.sleep(0.01)

    def screen(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            asked = store.stamp()
            got = c.get("wall", asked, store.compute)
            if got < asked.version:
                stale.append((asked.version, got))
            answers[0] += 1
            time.sleep(rng.uniform(0.05, 0.15))

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=screen, args=(i,)) for i in range(40)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert stale == []
    assert answers[0] > 300  # the screens were served (not stuck behind each other)
    # one computation per interval (plus the first, and the one that may be running when the clock stops)
    assert store.computations <= elapsed / 0.2 + 2, (store.computations, elapsed)
    assert c.stats["computed"] == store.computations and c.stats["joined"] > 0


def test_an_unchanged_store_is_served_from_the_cache_until_the_result_is_too_old() -> None:
    store = Store(cost_s=0.0)
    c = Coalescer(min_interval_s=0.0, max_age_s=0.3)
    for _ in range(5):
        assert c.get("k", store.stamp(), store.compute) == 0
    assert store.computations == 1 and c.stats["hits"] == 4
    time.sleep(0.35)
    c.get("k", store.stamp(), store.compute)
    assert store.computations == 2  # too old: recomputed although nothing changed
    c.get("other", store.stamp(), store.compute)
    assert store.computations == 3  # keys are separate


def test_a_late_commit_and_a_new_population_are_not_covered() -> None:
    """Same version but a larger xmin (a transaction that took its ids earlier committed), or another population
    build: the cached result does not serve."""
    s = Stamp(10, 500, "2026-11-01")
    assert s.covers(Stamp(10, 500, "2026-11-01")) and s.covers(Stamp(9, 480, "2026-11-01"))
    assert not s.covers(Stamp(10, 501, "2026-11-01"))
    assert not s.covers(Stamp(11, 500, "2026-11-01"))
    assert not s.covers(Stamp(10, 500, "2026-11-21"))
    assert s.cursor == "10-500"


def test_a_failed_computation_fails_its_waiters_once_and_leaves_no_entry() -> None:
    c = Coalescer(min_interval_s=0.0, max_age_s=60)
    calls = []
    release = threading.Event()

    def broken() -> tuple[Stamp, int]:
        calls.append(1)
        release.wait(5)
        raise ConnectionError("database down")

    errors: list[BaseException] = []

    def ask() -> None:
        try:
            c.get("k", Stamp(1, 1, ""), broken)
        except ConnectionError as e:
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    release.set()
    for t in threads:
        t.join()
    assert len(errors) == 8 and len(calls) == 1  # one timeout for eight screens, not eight
    assert c.get("k", Stamp(1, 1, ""), lambda: (Stamp(1, 1, ""), "back")) == "back"


@pytest.mark.db
def test_the_stamp_moves_when_an_earlier_transaction_commits_after_a_later_one(db_url) -> None:
    """Transaction A takes its history id, B takes a larger one and commits, then A commits: ``max(id)`` does not
    move at A's commit, the stamp's xmin does, so a picture drawn between the two commits is not served after."""
    eng = create_engine(db_url)
    try:
        with eng.connect() as a, eng.connect() as b, eng.connect() as reader:
            ta = a.begin()
            a.execute(text("INSERT INTO incidents (source, external_id, name, kind, severity, status, geom) VALUES "
                           "('coalesce-test', 'a', 'A', 'fire', 'general', 'reported', "
                           "ST_SetSRID(ST_MakePoint(111.6, 40.8), 4326))"))
            with b.begin():
                b.execute(text("INSERT INTO incidents (source, external_id, name, kind, severity, status, geom) "
                               "VALUES ('coalesce-test', 'b', 'B', 'fire', 'general', 'reported', "
                               "ST_SetSRID(ST_MakePoint(111.7, 40.8), 4326))"))
            between = read_stamp(reader)
            reader.rollback()
            ta.commit()
            after = read_stamp(reader)
            reader.rollback()
            assert after.version == between.version  # the version alone would call the old picture current
            assert not Stamp(*between).covers(after) and after.cursor != between.cursor
    finally:
        with eng.begin() as c:
            c.execute(text("DELETE FROM incidents WHERE source = 'coalesce-test'"))
        eng.dispose()
