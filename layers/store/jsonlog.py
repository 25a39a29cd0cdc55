"""Small logs kept as JSON lines in the state folder (the situation reports sent, the imports run): append one
line, keep the newest ``keep``, rewrite atomically so a reader never sees half a file."""
from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["append_capped"]

_lock = threading.Lock()


def append_capped(path: Path, line: str, *, keep: int) -> None:
    """Append ``line`` (one JSON document, no newline) to ``path``, keeping its newest ``keep`` lines."""
    p = Path(path)
    with _lock:
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        lines = (lines + [line])[-keep:]
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, p)
