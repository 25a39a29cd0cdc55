"""Data-quality tests of readings (数据异常), pure: physical range, spike, flatline. No database.

Public: :data:`OWN_HISTORY`, :data:`MIN_HISTORY`, :func:`out_of_range`, :func:`spike_scores`,
:func:`neighbour_score`, :func:`flatline`.

Readings are given as arrays sorted by series (one station and variable: ``group``) then time, the stored history
of each series first and the new readings after it. Each test returns a boolean per reading (or a score); the
caller stores the first failing test as the reading's quality flag, and a flagged reading never triggers a warning.

- **range**: outside the variable's physical range (:mod:`layers.monitor.variables`).
- **spike**: robust test against the station's own recent readings, then its neighbours: the reading lies more than
  ``k`` robust scales (1.4826 x MAD, at least the variable's floor) from the median of the previous
  :data:`OWN_HISTORY` readings of the series, and (where neighbours reported) more than ``k`` robust scales from the
  median of what its neighbours read at that time. A step that every neighbour shows is weather, not a broken sensor.
- **flatline**: the same value, unchanged, for at least the variable's flatline duration.

>>> import numpy as np
>>> g = np.zeros(8, dtype=np.int64); x = np.array([10., 11, 10.5, 11, 10, 10.8, 45, 11])
>>> np.round(spike_scores(g, x, floor=1.5), 1).tolist()
[nan, nan, nan, nan, 0.5, 0.2, 22.9, 0.1]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["OWN_HISTORY", "MIN_HISTORY", "MAD_SCALE", "out_of_range", "spike_scores", "neighbour_score",
           "flatline"]

#: how many previous readings of its own series a reading is compared with
OWN_HISTORY = 12
#: fewer previous readings than this: the own test says nothing (a new station is not a broken one)
MIN_HISTORY = 4
#: 1.4826 x MAD estimates the standard deviation of normally distributed readings
MAD_SCALE = 1.4826


def out_of_range(values: NDArray[np.float64], low: float, high: NDArray[np.float64] | float) -> NDArray[np.bool_]:
    """True where a value lies outside ``[low, high]`` (``high`` may vary per reading, for accumulations).

    >>> out_of_range(np.array([-1.0, 0.0, 5.0]), 0.0, 4.0).tolist()
    [True, False, True]
    """
    return (values < low) | (values > high)


def _previous_windows(group: NDArray[np.int64], n: int) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """For every reading, the indexes of the ``n`` readings before it in its group, and which of them exist."""
    size = len(group)
    idx = np.arange(size)[:, None] - np.arange(1, n + 1)[None, :]
    starts = np.zeros(size, dtype=np.intp)
    if size:
        change = np.flatnonzero(np.diff(group) != 0) + 1
        first = np.concatenate(([0], change))
        counts = np.diff(np.concatenate((first, [size])))
        starts = np.repeat(first, counts)
    valid = idx >= starts[:, None]
    return np.where(valid, idx, 0), valid


def spike_scores(group: NDArray[np.int64], values: NDArray[np.float64], *, floor: float,
                 history: int = OWN_HISTORY, min_history: int = MIN_HISTORY) -> NDArray[np.float64]:
    """How far each reading lies from its series' recent readings, in robust scales (NaN: too little history).

    ``|x - median(prev)| / max(MAD_SCALE * MAD(prev), floor)`` over the previous ``history`` readings of the same
    group (readings already flagged may be among them: the median shrugs off a single outlier).
    """
    if len(values) == 0:
        return np.empty(0)
    idx, valid = _previous_windows(group, history)
    win = np.where(valid, values[idx], np.nan)
    count = valid.sum(axis=1)
    enough = count >= min_history
    out = np.full(len(values), np.nan)
    if enough.any():
        w, k = win[enough], count[enough]
        med = _row_median(w, k)
        mad = _row_median(np.abs(w - med[:, None]), k)
        scale = np.maximum(MAD_SCALE * mad, floor)
        out[enough] = np.abs(values[enough] - med) / scale
    return out


def _row_median(w: NDArray[np.float64], k: NDArray[np.int64]) -> NDArray[np.float64]:
    """Median of each row's first ``k`` finite values (NaN pads the rest): a sort, no masked arrays."""
    a = np.sort(w, axis=1)  # NaN sorts last
    rows = np.arange(len(a))
    return 0.5 * (a[rows, (k - 1) // 2] + a[rows, k // 2])


def neighbour_score(value: float, neighbours: NDArray[np.float64], *, floor: float) -> float:
    """How far ``value`` lies from what the neighbours read at the same time, in robust scales (NaN: fewer than two
    neighbours).

    >>> round(neighbour_score(40.0, np.array([35.0, 42.0, 30.0]), floor=6.0), 2)
    0.67
    >>> round(neighbour_score(40.0, np.array([0.0, 0.0]), floor=6.0), 2)
    6.67
    """
    x = neighbours[np.isfinite(neighbours)]
    if len(x) < 2:
        return float("nan")
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    return abs(value - med) / max(MAD_SCALE * mad, floor)


def flatline(group: NDArray[np.int64], times_s: NDArray[np.float64], values: NDArray[np.float64], *,
             duration_s: float, min_abs: float = 0.0) -> NDArray[np.bool_]:
    """True for every reading at which its series has shown the same value for at least ``duration_s`` seconds
    (measured from the first reading of the run); runs of values smaller than ``min_abs`` do not count (a dry week
    is a run of zeros, a calm night a run of 0.3 m/s: the weather, not a stuck sensor).

    >>> t = np.arange(8) * 3600.0
    >>> flatline(np.zeros(8, dtype=np.int64), t, np.array([1., 2, 2, 2, 2, 2, 2, 3]), duration_s=4 * 3600).tolist()
    [False, False, False, False, False, True, True, False]
    """
    n = len(values)
    if n == 0 or duration_s <= 0:
        return np.zeros(n, dtype=bool)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (values[1:] != values[:-1]) | (group[1:] != group[:-1])
    run_id = np.cumsum(new_run) - 1
    run_start = times_s[new_run][run_id]
    return ((times_s - run_start) >= duration_s) & (np.abs(values) >= min_abs)
