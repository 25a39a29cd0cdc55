"""Errors of the store: one root, narrow subclasses. ``dashboards`` maps them to HTTP codes.

Public: :class:`StoreError`, :class:`ValidationError`, :class:`RowError`, :class:`NotFoundError`,
:class:`ConflictError`, :class:`DatabaseUnavailableError`, :class:`ClusterError`.

>>> print(ValidationError([RowError(3, "capacity", -5, "an integer >= 0", "shelters.csv")]))
input rejected; nothing was written
  - shelters.csv, row 3, field 'capacity': got -5; allowed: an integer >= 0
"""

from __future__ import annotations

from dataclasses import dataclass, field


class StoreError(Exception):
    """Root of all storage errors."""


class NotFoundError(StoreError, LookupError):
    """A layer, feature or region that does not exist."""


class ConflictError(StoreError, RuntimeError):
    """The request does not fit the row's current state (a warning already confirmed by someone else); answered
    409 with ``code`` (subclasses name theirs: ``layers.command.errors``)."""

    code = "conflict"


class DatabaseUnavailableError(StoreError, ConnectionError):
    """PostGIS cannot be reached."""


class ClusterError(StoreError, RuntimeError):
    """The private PostgreSQL cluster cannot be created or started."""


@dataclass(frozen=True)
class RowError:
    """One problem in one input row: where, what was received, what is allowed."""

    row: int | None
    field: str | None
    value: object
    allowed: str
    file: str | None = None

    def __str__(self) -> str:
        where = [p for p in (self.file, f"row {self.row}" if self.row is not None else None,
                             f"field {self.field!r}" if self.field else None) if p]
        return f"{', '.join(where)}: got {self.value!r}; allowed: {self.allowed}"


@dataclass
class ValidationError(StoreError, ValueError):
    """Input that was rejected before anything was written; lists every problem found."""

    problems: list[RowError] = field(default_factory=list)
    message: str = "input rejected; nothing was written"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        return f"{self.message}\n{shown}{more}" if shown else self.message
