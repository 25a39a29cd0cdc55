"""One computation for many requests: a per-process cache of results stamped with the store's state.

Public: :class:`Stamp`, :class:`Entry`, :class:`Coalescer`, :func:`read_stamp`.

Fifty wall screens asking for the same picture while a feed writes twenty changes a second must not cost fifty
computations a second. :class:`Coalescer` gives every caller a result that is **at least as new as the store was
when the caller asked** (never an older picture than the one it could have had), and shares the work:

- a cached result whose :class:`Stamp` covers the caller's stamp is returned at once;
- otherwise the caller joins the computation in flight for the same key if that computation will read the store
  after the caller's stamp was taken, or starts the next one;
- a key is computed at most once per ``min_interval_s``: a computation due earlier waits out the interval first, and
  every caller that arrives meanwhile joins it (so the cost is bounded by time, not by the number of screens; the
  price is at most ``min_interval_s`` of extra latency under a continuous stream of changes);
- a result older than ``max_age_s`` is recomputed even when nothing changed (pictures that depend on the clock:
  hazards that expire, the current hour).

A failed computation fails every caller waiting on it with the same error (it failed after they asked: a database
outage is one timeout, not one per screen), and leaves no entry behind.

Examples
--------
>>> c = Coalescer(min_interval_s=0.0, max_age_s=60.0)
>>> calls = []
>>> def compute():
...     calls.append(1)
...     return Stamp(5, 100, "p"), {"n": len(calls)}
>>> c.get("k", Stamp(5, 100, "p"), compute), c.get("k", Stamp(4, 90, "p"), compute)
({'n': 1}, {'n': 1})
>>> c.get("k", Stamp(6, 100, "p"), compute)  # the store moved on: computed again
{'n': 2}
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import String, func, select

from layers.store.models import FeatureHistory, PopulationSource


class Stamp(NamedTuple):
    """The state of the store a result was computed from.

    ``version`` is the newest visible history id, ``xmin`` the oldest transaction still running when it was read
    (:func:`layers.read.history.change_cursor`), ``population`` the newest population build ('' without one). A result
    stamped ``s`` serves a caller stamped ``r`` when ``s`` was read no earlier than ``r``: versions and xmin never go
    back, so that is ``s.version >= r.version and s.xmin >= r.xmin`` with the same population. The xmin matters: a
    transaction that took its history ids before a newer one committed, and commits after it, leaves the version
    unchanged but moves the xmin.
    """

    version: int
    xmin: int
    population: str

    def covers(self, other: Stamp) -> bool:
        """Whether a result stamped ``self`` is at least as new as the store was at ``other``."""
        return (self.version >= other.version and self.xmin >= other.xmin
                and self.population == other.population)

    @property
    def cursor(self) -> str:
        """``"version-xmin"``: changes whenever committed feature data may have changed (the wall keys on it)."""
        return f"{self.version}-{self.xmin}"


_STAMP = select(
    select(func.coalesce(func.max(FeatureHistory.id), 0)).scalar_subquery(),
    func.pg_snapshot_xmin(func.pg_current_snapshot()).cast(String),
    select(func.max(PopulationSource.built_at)).scalar_subquery())


def read_stamp(conn: Any) -> Stamp:
    """The :class:`Stamp` of the store behind ``conn`` now (one statement, one snapshot)."""
    version, xmin, built = conn.execute(_STAMP).one()
    return Stamp(int(version), int(xmin), "" if built is None else built.isoformat())


@dataclass
class Entry:
    """A cached result: its :class:`Stamp`, its value, when it was computed (monotonic seconds), and forms derived
    from the value once per entry (e.g. the encoded JSON body)."""

    stamp: Stamp
    value: Any
    at: float
    derived: dict[str, Any] = field(default_factory=dict)

    def derive(self, name: str, make: Callable[[Any], Any]) -> Any:
        """``make(value)``, made once per entry and kept under ``name`` (races make it twice, harmlessly)."""
        hit = self.derived.get(name)
        if hit is None:
            hit = self.derived[name] = make(self.value)
        return hit


@dataclass(eq=False)
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    #: the computation reads the store after this moment (monotonic); callers stamped before it may join
    reads_after: float = 0.0
    error: BaseException | None = None


class Coalescer:
    """Per-process cache of stamped results with single-flight, rate-limited recomputation (module docstring).

    Parameters
    ----------
    min_interval_s : float
        Least time between the starts of two computations of one key.
    max_age_s : float
        A result older than this is not served.
    max_keys : int
        Entries kept (the least recently computed go first).
    wait_s : float
        How long a caller waits for someone else's computation before giving up with ``TimeoutError``.
    """

    def __init__(self, *, min_interval_s: float, max_age_s: float, max_keys: int = 64, wait_s: float = 120.0) -> None:
        self.min_interval_s = float(min_interval_s)
        self.max_age_s = float(max_age_s)
        self.max_keys = int(max_keys)
        self.wait_s = float(wait_s)
        self._lock = threading.Lock()
        self._entries: dict[Any, Entry] = {}
        self._flights: dict[Any, _Flight] = {}
        self._last_start: dict[Any, float] = {}
        #: counters for tests and benchmarks: results served from the cache, computations, joins of a flight
        self.stats = {"hits": 0, "computed": 0, "joined": 0}

    def clear(self) -> None:
        """Forget every result (computations in flight still finish and are stored)."""
        with self._lock:
            self._entries.clear()
            self._last_start.clear()

    def _fresh(self, key: Any, stamp: Stamp, now: float) -> Entry | None:
        e = self._entries.get(key)
        if e is not None and e.stamp.covers(stamp) and now - e.at < self.max_age_s:
            return e
        return None

    def entry(self, key: Any, stamp: Stamp, compute: Callable[[], tuple[Stamp, Any]]) -> Entry:
        """The cache entry for ``key`` that covers ``stamp`` (its ``value`` and ``derived`` forms)."""
        asked = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                hit = self._fresh(key, stamp, now)
                if hit is not None:
                    self.stats["hits"] += 1
                    return hit
                flight = self._flights.get(key)
                if flight is not None and flight.reads_after >= asked:
                    self.stats["joined"] += 1
                    mine = False
                elif flight is None:
                    start = max(now, self._last_start.get(key, -1e18) + self.min_interval_s)
                    flight = self._flights[key] = _Flight(reads_after=start)
                    self._last_start[key] = start
                    mine = True
                else:  # a computation that read the store before we asked: wait for it, then look again
                    mine = False
            if not mine:
                if not flight.done.wait(self.wait_s):
                    raise TimeoutError(f"no result for {key!r} within {self.wait_s:g} s")
                if flight.error is not None:
                    raise flight.error  # it failed after we asked: the store is unreachable now
                continue
            return self._compute(key, flight, compute)

    def get(self, key: Any, stamp: Stamp, compute: Callable[[], tuple[Stamp, Any]]) -> Any:
        """A result for ``key`` at least as new as ``stamp``: cached, shared, or computed by ``compute``.

        ``compute()`` returns ``(stamp, value)``, the stamp read *before* the value (so it never claims more than
        the value holds).
        """
        return self.entry(key, stamp, compute).value

    def _compute(self, key: Any, flight: _Flight, compute: Callable[[], tuple[Stamp, Any]]) -> Entry:
        try:
            delay = flight.reads_after - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # rate limit: everyone who asks meanwhile joins this computation
            stamp, value = compute()
            entry = Entry(stamp, value, time.monotonic())
            with self._lock:
                self.stats["computed"] += 1
                old = self._entries.get(key)
                if old is None or entry.stamp.covers(old.stamp):
                    self._entries[key] = entry
                    while len(self._entries) > self.max_keys:
                        oldest = min(self._entries, key=lambda k: self._entries[k].at)
                        del self._entries[oldest]
            return entry
        except BaseException as e:
            flight.error = e
            raise
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()


__all__ = ["Coalescer", "Entry", "Stamp", "read_stamp"]
