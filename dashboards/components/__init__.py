"""Building blocks shared by the pages (maps, KPI tiles ...). Layout only: no SQL, no geometry maths.

Public: :func:`data_attributes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def data_attributes(values: Mapping[str, str]) -> dict[str, Any]:
    """``data-*`` attributes as keyword arguments of a Dash ``html`` component (which takes them, though its typed
    signature has no place for such names).

    >>> data_attributes({"id": "7"})
    {'data-id': '7'}
    """
    return {f"data-{name}": value for name, value in values.items()}
