"""geoops.eta: distance x detour / speed, exact and refusing what makes no sense."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geoops.errors import InvalidParameterError
from geoops.eta import travel_time_s


def test_hand_checked_values() -> None:
    # 60 km at 60 km/h is an hour; a detour of 1.5 makes it 90 minutes
    assert travel_time_s(60_000.0, speed_kmh=60.0, detour_factor=1.0) == pytest.approx(3600.0)
    assert travel_time_s(60_000.0, speed_kmh=60.0, detour_factor=1.5) == pytest.approx(5400.0)
    got = travel_time_s([0.0, math.nan, 1000.0], speed_kmh=[36.0, 36.0, 36.0], detour_factor=1.0)
    assert got[0] == 0.0 and math.isnan(got[1]) and got[2] == pytest.approx(100.0)


@pytest.mark.parametrize(("kw", "field"), [
    ({"distance_m": -1.0}, "distance_m"), ({"distance_m": math.inf}, "distance_m"),
    ({"speed_kmh": 0.0}, "speed_kmh"), ({"speed_kmh": 1001.0}, "speed_kmh"), ({"speed_kmh": math.nan}, "speed_kmh"),
    ({"detour_factor": 0.9}, "detour_factor"), ({"detour_factor": 5.5}, "detour_factor"),
    ({"speed_kmh": "fast"}, "speed_kmh"),
])
def test_nonsense_is_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"distance_m": 1000.0, "speed_kmh": 50.0, "detour_factor": 1.2, **kw}
    with pytest.raises(InvalidParameterError) as e:
        travel_time_s(args.pop("distance_m"), **args)  # type: ignore[arg-type]
    assert e.value.field == field


@given(st.lists(st.floats(0, 2e6), min_size=2, max_size=20), st.floats(1, 1000), st.floats(1, 5))
def test_a_farther_resource_of_the_same_kind_never_arrives_sooner(d: list[float], v: float, f: float) -> None:
    d_sorted = np.sort(np.asarray(d))
    eta = travel_time_s(d_sorted, speed_kmh=v, detour_factor=f)
    assert np.all(np.diff(eta) >= 0)
