"""Errors of the analyses: one root, narrow subclasses that also subclass ``ValueError``.

Public: :class:`GeoOpsError`, :class:`CRSError`, :class:`InvalidParameterError`,
:class:`InvalidGeometryError`.

Every error carries ``field`` (the name of the offending input, for the HTTP layer to report),
``value`` (what was received), ``allowed`` (what is allowed, in words) and ``code`` (a stable
snake_case key the HTTP layer can use to look up a zh-CN / en translation). ``str(e)`` says what was
received and what is allowed. ``dashboards`` maps these classes to HTTP 4xx codes; this module knows
nothing about HTTP.

Examples
--------
>>> e = InvalidParameterError(field="radius_m", value=-5, allowed="a number in (0, 500000]")
>>> str(e)
'radius_m: got -5; allowed: a number in (0, 500000]'
>>> isinstance(e, ValueError), e.field, e.code
(True, 'radius_m', 'invalid_parameter')
>>> str(InvalidGeometryError("ring is not closed", field="geometry", value=[[0, 0], [1, 1]],
...                          allowed="a closed linear ring"))
'geometry: ring is not closed; got [[0, 0], [1, 1]]; allowed: a closed linear ring'
"""

from __future__ import annotations

from typing import Any

__all__ = ["GeoOpsError", "CRSError", "InvalidParameterError", "InvalidGeometryError"]

_MAX_VALUE_CHARS = 200


def _short(value: Any) -> str:
    """``repr(value)`` cut to a readable length (large geometries must not flood an error message)."""
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


class GeoOpsError(Exception):
    """Root of all analysis errors.

    Parameters
    ----------
    message : str, optional
        What is wrong, in one English sentence (without the value; it is appended).
    field : str, optional
        Name of the input that is wrong (e.g. ``"distances_m"``, ``"geometry"``), or None.
    value : object, optional
        The value received (shown shortened with ``repr``).
    allowed : str
        What is allowed, in words, e.g. ``"a number in (0, 500000]"``.
    code : str, optional
        Stable key for translation; defaults to the class's ``default_code``.
    """

    default_code = "geoops_error"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        value: Any = None,
        allowed: str = "",
        code: str | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.value = value
        self.allowed = allowed
        self.code = code or self.default_code
        super().__init__(str(self))

    def __str__(self) -> str:
        parts: list[str] = []
        if self.message:
            parts.append(self.message)
        if self.value is not None or not self.message:
            parts.append(f"got {_short(self.value)}")
        if self.allowed:
            parts.append(f"allowed: {self.allowed}")
        text = "; ".join(parts)
        return f"{self.field}: {text}" if self.field else text

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for an API error body: ``code``, ``field``, ``value``, ``allowed``, ``message``.

        Examples
        --------
        >>> InvalidParameterError(field="k", value=101, allowed="1..100").to_dict()["allowed"]
        '1..100'
        """
        return {
            "code": self.code,
            "field": self.field,
            "value": _short(self.value) if self.value is not None else None,
            "allowed": self.allowed,
            "message": str(self),
        }


class CRSError(GeoOpsError, ValueError):
    """Missing, or wrong kind of, CRS."""

    default_code = "crs_error"


class InvalidParameterError(GeoOpsError, ValueError):
    """Out-of-range or unknown option (a distance, a count, an option string)."""

    default_code = "invalid_parameter"


class InvalidGeometryError(GeoOpsError, ValueError):
    """A geometry that is empty, malformed, out of range, or invalid beyond safe repair."""

    default_code = "invalid_geometry"
