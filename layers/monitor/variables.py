"""What a station measures: each variable with its one unit, the spellings of that unit we accept, its physical range
and the parameters of the data-quality tests.

Public: :class:`Variable`, :data:`VARIABLES`, :func:`variable`, :func:`canonical_unit`, :func:`upper_bound`.

The vocabulary of names and labels is ``observation_variable`` in :mod:`layers.store.vocab`; this module adds what
the monitoring wing needs to check and store a reading. Units are fixed: a reading in another unit is refused (we
never convert silently).

>>> canonical_unit("temperature", "℃"), canonical_unit("temperature", "K")
('degC', None)
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Final

from layers.store.vocab import keys

__all__ = ["Variable", "VARIABLES", "variable", "canonical_unit", "upper_bound"]


@dataclass(frozen=True)
class Variable:
    """One observed variable.

    Parameters
    ----------
    name : str
        Key of the ``observation_variable`` vocabulary.
    unit : str
        The unit values are stored in.
    spellings : tuple of str
        Other spellings of ``unit`` accepted on input (compared after NFKC, case-folded, spaces removed).
    low, high : float
        Physical range: a reading outside is stored with quality ``range`` and never triggers a warning. For
        accumulations ``high`` is per hour of ``period_s`` (at least 10 minutes' worth), capped at ``cap``.
    accumulation : bool
        Precipitation and snowfall: ``value`` is the amount over ``period_s`` seconds ending at ``observed_at``.
    cap : float
        Largest accumulation over any period.
    spike_floor, spike_k : float
        Spike test (:func:`layers.monitor.quality.spike_scores`): a reading is suspect when it lies more than
        ``spike_k`` robust scales from the median of the station's own recent readings, the scale being at least
        ``spike_floor`` (units); 0 disables the test.
    spike_needs_neighbours : bool
        Flag a suspect only when at least two neighbours reported at that time and disagree with it too (rain cells
        are local: a station alone in a downpour is not a broken station unless its neighbours say so).
    flatline_s : float
        Flatline test: the same value for this long (seconds) is a stuck sensor; 0 disables the test.
    flatline_min : float
        Runs of values smaller than this (in absolute value) do not count: a dry week is a run of zero
        precipitation, light snow a run of 0.1 mm, a calm night a run of 0.3 m/s.
    """

    name: str
    unit: str
    spellings: tuple[str, ...]
    low: float
    high: float
    accumulation: bool = False
    cap: float = math.inf
    spike_floor: float = 0.0
    spike_k: float = 6.0
    spike_needs_neighbours: bool = False
    flatline_s: float = 0.0
    flatline_min: float = 0.0


VARIABLES: Final[dict[str, Variable]] = {v.name: v for v in (
    # a downpour is a step by nature: flagged only 64 mm (snow: 24 mm w.e.) above both the station's own recent
    # readings and its neighbours' (a convective cell of 40 mm/h between dry neighbours is weather)
    Variable("precipitation", "mm", ("mm", "毫米", "millimetre", "millimeter"), 0.0, 400.0, accumulation=True,
             cap=2000.0, spike_floor=8.0, spike_k=8.0, spike_needs_neighbours=True, flatline_s=6 * 3600,
             flatline_min=1.0),
    Variable("snowfall", "mm", ("mm", "毫米", "mmwe", "mmw.e.", "mm(w.e.)", "mm水当量"), 0.0, 100.0,
             accumulation=True, cap=500.0, spike_floor=3.0, spike_k=8.0, spike_needs_neighbours=True,
             flatline_s=6 * 3600, flatline_min=1.0),
    Variable("wind_speed", "m/s", ("m/s", "ms-1", "m·s-1", "m·s⁻¹", "米/秒", "mps"), 0.0, 75.0, spike_floor=3.0,
             flatline_s=12 * 3600, flatline_min=1.0),
    Variable("wind_gust", "m/s", ("m/s", "ms-1", "m·s-1", "m·s⁻¹", "米/秒", "mps"), 0.0, 100.0, spike_floor=4.0,
             flatline_s=12 * 3600, flatline_min=1.0),
    # a cold front takes 10 °C in a few hours: a spike is 15 °C off the recent readings (and the neighbours')
    Variable("temperature", "degC", ("degc", "°c", "℃", "摄氏度", "celsius"), -60.0, 60.0, spike_floor=2.5,
             flatline_s=6 * 3600),
    Variable("water_level", "m", ("m", "米", "metre", "meter"), -500.0, 9000.0, spike_floor=0.3, spike_k=8.0,
             flatline_s=72 * 3600),
    Variable("visibility", "m", ("m", "米", "metre", "meter"), 0.0, 100_000.0),
)}

if set(VARIABLES) != set(keys("observation_variable")):  # one list of variables: the vocabulary's
    raise ValueError(f"layers.monitor.variables: {sorted(VARIABLES)} != vocabulary observation_variable "
                     f"{sorted(keys('observation_variable'))}")


def variable(name: str) -> Variable:
    """The :class:`Variable` called ``name``; ``KeyError`` listing the known ones otherwise.

    >>> variable("wind_gust").unit
    'm/s'
    """
    try:
        return VARIABLES[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown variable {name!r}; known: {', '.join(VARIABLES)}") from None


def _norm(unit: str) -> str:
    return "".join(unicodedata.normalize("NFKC", unit).casefold().split())


def canonical_unit(name: str, unit: object) -> str | None:
    """The stored unit of ``name`` when ``unit`` is one of its spellings, else None.

    >>> canonical_unit("wind_speed", "m s-1"), canonical_unit("wind_speed", "km/h")
    ('m/s', None)
    """
    v = variable(name)
    if not isinstance(unit, str):
        return None
    n = _norm(unit)
    return v.unit if n == _norm(v.unit) or n in {_norm(s) for s in v.spellings} else None


def upper_bound(v: Variable, period_s: float | None) -> float:
    """The largest physical value of ``v`` over ``period_s`` (accumulations scale with the period).

    >>> upper_bound(variable("precipitation"), 3600), round(upper_bound(variable("precipitation"), 60), 1)
    (400.0, 66.7)
    """
    if not v.accumulation:
        return v.high
    hours = max(float(period_s or 3600), 600.0) / 3600.0
    return min(v.high * hours, v.cap)
