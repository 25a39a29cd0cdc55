"""Travel time of a resource to a scene while no road network is loaded: geodesic distance x detour factor / speed.

Public: :data:`METHOD`, :func:`travel_time_s`.

The geodesic distance (WGS84, metres) is the shortest possible path; roads are longer by a *detour factor* (road
distance / straight distance, typically 1.2-1.4 on a regional network, 1 for a helicopter). Both the factor and the
speed of each resource kind are settings, and every ETA is shown with them (:data:`METHOD` names the rule), so a
reader knows it is an estimate and of what kind. Road travel time replaces it when a road network is loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geoops.errors import InvalidParameterError

__all__ = ["METHOD", "travel_time_s"]

#: the rule of :func:`travel_time_s`, reported with every ETA
METHOD = "geodesic_x_detour_over_speed"
MAX_SPEED_KMH = 1000.0
MAX_DETOUR = 5.0


def _floats(value: Any, field: str, allowed: str) -> NDArray[np.float64]:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(field=field, value=value, allowed=allowed) from exc


def _require(arr: NDArray[np.float64], ok: NDArray[np.bool_], field: str, allowed: str) -> None:
    bad = ~np.atleast_1d(ok)
    if bad.any():
        raise InvalidParameterError(field=field, value=float(np.atleast_1d(arr)[np.flatnonzero(bad)[0]]),
                                    allowed=allowed)


def travel_time_s(distance_m: ArrayLike, *, speed_kmh: ArrayLike, detour_factor: ArrayLike) -> NDArray[np.float64]:
    """Seconds to cover ``distance_m`` of geodesic distance at ``speed_kmh`` on a path ``detour_factor`` times longer.

    Parameters
    ----------
    distance_m : array_like
        Geodesic distance, metres, >= 0 (NaN stays NaN: a missing distance is no ETA).
    speed_kmh : array_like
        Average speed, km/h, in (0, 1000]; broadcast against ``distance_m``.
    detour_factor : array_like
        Path length / geodesic distance, in [1, 5].

    Returns
    -------
    ndarray of float
        Seconds, the broadcast shape of the inputs.

    Raises
    ------
    InvalidParameterError
        A negative or infinite distance, a speed or factor out of range (names the field and the first bad value).

    Examples
    --------
    >>> travel_time_s([0.0, 10_000.0], speed_kmh=60.0, detour_factor=1.2).tolist()
    [0.0, 720.0]
    >>> travel_time_s(10_000.0, speed_kmh=[60.0, 180.0], detour_factor=[1.2, 1.0]).tolist()
    [720.0, 200.0]
    """
    rules = (("distance_m", distance_m, "metres >= 0 (NaN for unknown)"),
             ("speed_kmh", speed_kmh, f"km/h in (0, {MAX_SPEED_KMH:g}]"),
             ("detour_factor", detour_factor, f"a factor in [1, {MAX_DETOUR:g}]"))
    d, v, f = (_floats(value, field, allowed) for field, value, allowed in rules)
    _require(d, np.isnan(d) | (np.isfinite(d) & (d >= 0.0)), *rules[0][::2])
    _require(v, np.isfinite(v) & (v > 0.0) & (v <= MAX_SPEED_KMH), *rules[1][::2])
    _require(f, np.isfinite(f) & (f >= 1.0) & (f <= MAX_DETOUR), *rules[2][::2])
    out: NDArray[np.float64] = np.asarray(d * f / (v / 3.6), dtype=np.float64)
    return out
