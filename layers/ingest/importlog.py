"""The import log: one JSON line per file import, accepted or refused, with what it wrote or why it was refused.

Public: :data:`LOG_NAME`, :data:`LOG_KEEP`, :func:`record_import`, :func:`recent_imports`.

A refused import changes nothing in the store (one transaction), so the store itself keeps no trace of it; this log
(``<state_dir>/imports.jsonl``, the newest :data:`LOG_KEEP` kept, rewritten atomically) is what the admin page shows.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> record_import(d / LOG_NAME, {"layer": "incidents", "file": "a.csv", "ok": False, "errors": ["row 3: kind"]})
>>> recent_imports(d / LOG_NAME)[0]["errors"]
['row 3: kind']
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from layers.store.jsonlog import append_capped

__all__ = ["LOG_NAME", "LOG_KEEP", "record_import", "recent_imports"]

LOG_NAME = "imports.jsonl"
LOG_KEEP = 500


def record_import(path: Path, entry: dict[str, Any]) -> None:
    """Append one import (``layer, file, ok`` and counts or ``errors``); ``at`` is added (UTC) if absent."""
    line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), **entry}, ensure_ascii=False,
                      default=str)
    append_capped(Path(path), line, keep=LOG_KEEP)


def recent_imports(path: Path, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest imports first (at most ``limit``); lines that are not JSON objects are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in reversed(lines):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict):
            out.append(d)
        if len(out) >= limit:
            break
    return out
