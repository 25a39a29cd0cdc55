"""How numbers leave a service: rounded for JSON, a missing value kept missing, and the time each part took.

Public: :func:`ms`, :func:`rounded`.
"""

from __future__ import annotations

import math
import time

__all__ = ["ms", "rounded"]


def ms(t0: float) -> float:
    """Milliseconds since ``t0`` (a ``time.perf_counter()`` reading), rounded for a ``timing_ms`` member."""
    return round((time.perf_counter() - t0) * 1000.0, 2)


def rounded(x: float | None, nd: int = 1) -> float | None:
    """``x`` rounded to ``nd`` decimals; None and NaN stay missing (None), never 0.

    >>> rounded(1.26), rounded(float("nan")), rounded(None)
    (1.3, None, None)
    """
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)
