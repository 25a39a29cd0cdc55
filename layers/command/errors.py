"""Errors of command and dispatch: the conflicts a dispatcher can run into (HTTP 409 in ``dashboards.errors``).

Public: :class:`ConflictError`, :class:`ResourceBusyError`, :class:`TransitionError`, :class:`ActivationStateError`.

Each carries ``code`` (a stable snake_case key, translated as ``error.<code>``), ``field``, ``value`` and
``allowed`` (what was asked and what would have been accepted) and ``context``: what the caller needs to act on the
refusal, e.g. the task that holds the resource.

>>> e = TransitionError("task 7 is completed; it cannot go to en_route", value="en_route", allowed=[],
...                     context={"task_id": 7, "from": "completed"})
>>> e.status_field, e.code, isinstance(e, ConflictError)
('status', 'illegal_transition', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from layers.store.errors import ConflictError as StoreConflictError

__all__ = ["ConflictError", "ResourceBusyError", "TransitionError", "ActivationStateError"]


class ConflictError(StoreConflictError):
    """The request is well formed but conflicts with the current state of the store (someone else was first, the
    task or the activation is no longer in a state that allows it)."""

    code = "conflict"
    default_field: str | None = None

    def __init__(self, message: str, *, field: str | None = None, value: Any = None, allowed: Any = None,
                 context: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.field = field or self.default_field
        self.value = value
        self.allowed = allowed
        self.context = dict(context or {})

    @property
    def status_field(self) -> str | None:
        """The field of the request that conflicts (alias of ``field``)."""
        return self.field


class ResourceBusyError(ConflictError):
    """The resource already has an active task (``context["task"]``), or is not available at all."""

    code = "resource_busy"
    default_field = "resource_id"


class TransitionError(ConflictError):
    """A task status change the task's current status does not allow (``allowed`` lists the ones it does)."""

    code = "illegal_transition"
    default_field = "status"


class ActivationStateError(ConflictError):
    """A plan step that the activation's (or checklist action's) state does not allow: closed, already done, the
    same level again, or a plan of that kind already in force."""

    code = "activation_state"
