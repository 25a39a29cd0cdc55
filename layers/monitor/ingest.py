"""From readings to warnings in one transaction: check, flag, store, evaluate.

Public: :class:`IngestReport`, :func:`ingest`, :func:`ingest_records`, :func:`ingest_csv`, :func:`import_path`.

``POST /api/v1/observations`` and ``sitroom import-observations`` call these. Every reading is checked first
(:func:`layers.monitor.observations.validate`: one bad row refuses the whole input, naming it, and nothing is
written); then the readings get their quality flags, are stored (a reading already stored is left as it is), and the
rules are evaluated at the stations that received readings (:func:`layers.monitor.warnings.evaluate`), in the
caller's transaction: the warnings a batch raises commit with it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from layers.monitor import observations, warnings
from layers.store.errors import RowError, ValidationError

__all__ = ["IngestReport", "ingest", "ingest_records", "ingest_csv", "import_path"]


@dataclass
class IngestReport:
    """What one ingest did: readings received, inserted, already stored; quality flags set; warning changes."""

    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    changes: list[warnings.Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"received": self.received, "inserted": self.inserted, "duplicates": self.duplicates,
                "flagged": self.flagged, "notes": self.notes,
                "warnings": [{"id": c.hazard_id, "action": c.action, "rule": c.rule, "station": c.station,
                              "level": c.level, "at": c.at.isoformat()} for c in self.changes]}


def ingest(conn: Session | Connection, frame: pd.DataFrame, *, now: datetime, file: str | None = "request body",
           evaluate: bool = True) -> IngestReport:
    """Check, flag, store and evaluate the readings of ``frame`` (:func:`~layers.monitor.observations.records_frame`
    or :func:`~layers.monitor.observations.csv_frame`), in one savepoint of the caller's transaction.

    Parameters
    ----------
    now
        The clock (the server's, or a replay's): readings after it are refused, and rules are evaluated at it.
    evaluate
        Evaluate the rules (a bulk back-fill may skip it and evaluate once at the end).

    Raises
    ------
    ValidationError
        every bad reading (row = 0-based index), nothing written.
    """
    batch = observations.validate(conn, frame, now=now, file=file)
    report = IngestReport(received=len(frame), notes=list(batch.notes))
    with conn.begin_nested():
        observations.assess_quality(conn, batch)
        counts = observations.write(conn, batch)
        report.inserted, report.duplicates = counts.inserted, counts.duplicates + (len(frame) - len(batch))
        report.flagged = {k: int(v) for k, v in Counter(batch.quality.tolist()).items() if k != "good"}
        if evaluate and counts.touched:
            report.changes = warnings.evaluate(conn, counts.touched, now=now)
    return report


def ingest_records(conn: Session | Connection, records: Any, *, now: datetime,
                   file: str | None = "request body") -> IngestReport:
    """:func:`ingest` of a parsed JSON array of reading objects."""
    return ingest(conn, observations.records_frame(records, file=file), now=now, file=file)


def ingest_csv(conn: Session | Connection, data: bytes | str, *, now: datetime,
               file: str | None = "request body") -> IngestReport:
    """:func:`ingest` of CSV text (header ``station,variable,value,unit,observed_at,period_s``)."""
    return ingest(conn, observations.csv_frame(data, file=file), now=now, file=file)


def import_path(conn: Session | Connection, path: str | Path, *, now: datetime) -> IngestReport:
    """:func:`ingest_csv` of a file (``sitroom import-observations``); its name is used in errors.

    Raises
    ------
    ValidationError
        a file that cannot be read, or bad readings.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ValidationError([RowError(None, "file", str(p), f"a readable CSV file ({e.strerror})", str(p))],
                              message="cannot read the file; nothing was written") from None
    return ingest_csv(conn, data, now=now, file=str(p))
