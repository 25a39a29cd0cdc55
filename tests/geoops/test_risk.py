"""Regional risk (geoops.risk): hand-checked cells, a loop-by-loop oracle, exact roll-ups, weight validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoops.errors import InvalidParameterError
from geoops.risk import CELL_COLUMNS, LEVELS, REGION_COLUMNS, RiskWeights, cell_risk, rollup

DEFAULT_W = {"blue": 0.25, "yellow": 0.5, "orange": 0.75, "red": 1.0}


def test_hand_checked_cells():
    # cell 10: red over 40% and yellow over all -> 1 - (1 - 0.4)(1 - 0.5) = 0.7
    # cell 11: blue over half -> 0.125; cell 12: no hazard -> 0; cell 99 is out of scope
    f = cell_risk([10, 11, 12], [1000.0, 400.0, 50.0],
                  hazard_cover=[("red", [10], [0.4]), ("yellow", [10, 99], 1.0), ("blue", [11], 0.5)],
                  occupants=[100.0, 0.0, 30.0], vulnerability=[2.0, 1.0, 1.0],
                  weights=RiskWeights(occupants_weight=0.5))
    assert list(f.columns) == CELL_COLUMNS
    assert f["intensity"].tolist() == pytest.approx([0.7, 0.125, 0.0], abs=1e-15)
    assert f["exposure"].tolist() == [1050.0, 400.0, 65.0]
    assert f["risk"].tolist() == pytest.approx([0.7 * 1050 * 2, 0.125 * 400, 0.0], rel=1e-15)
    assert f["n_hazards"].tolist() == [2, 1, 0]


def test_any_full_red_cover_means_intensity_one():
    f = cell_risk([1], [10.0], hazard_cover=[("red", [1], 1.0), ("blue", [1], 0.3)])
    assert f["intensity"].iloc[0] == 1.0


def oracle_intensity(cells, cover, weights):
    out = {}
    for c in cells:
        survive = 1.0
        for level, hcells, frac in cover:
            fr = frac if np.ndim(frac) == 0 else dict(zip(hcells, frac, strict=False)).get(c)
            if c in list(hcells):
                survive *= 1.0 - weights[level] * fr
        out[c] = 1.0 - survive
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 25), n_h=st.integers(0, 6), seed=st.integers(0, 10_000))
def test_intensity_matches_loop_oracle_and_stays_in_unit_interval(n, n_h, seed):
    rng = np.random.default_rng(seed)
    cells = (np.arange(n) + 600_000_000_000_000_000).tolist()
    cover = []
    for _ in range(n_h):
        k = int(rng.integers(1, n + 1))
        hc = rng.choice(cells, size=k, replace=False).tolist()
        cover.append((LEVELS[int(rng.integers(0, 4))], hc, rng.uniform(0, 1, k).tolist()))
    pop = rng.uniform(0, 5000, n)
    f = cell_risk(cells, pop, hazard_cover=cover)
    want = oracle_intensity(cells, cover, DEFAULT_W)
    assert f["intensity"].tolist() == pytest.approx([want[c] for c in cells], abs=1e-12)
    assert ((f["intensity"] >= 0) & (f["intensity"] <= 1)).all()
    assert (f["risk"] <= f["exposure"] * f["vulnerability"] + 1e-9).all()
    # adding a hazard never lowers intensity; the same cover as a frame gives the same answer
    more = cell_risk(cells, pop, hazard_cover=[*cover, ("orange", cells, 0.3)])
    assert (more["intensity"] >= f["intensity"] - 1e-15).all()
    rows = [(h, c, lv, fr) for h, (lv, hc, frs) in enumerate(cover) for c, fr in zip(hc, frs, strict=False)]
    frame = pd.DataFrame(rows, columns=["hazard", "cell", "level", "fraction"])
    assert cell_risk(cells, pop, hazard_cover=frame)["intensity"].tolist() == pytest.approx(
        f["intensity"].tolist(), abs=1e-15)


def synthetic_region(seed: int = 1, n: int = 400):
    rng = np.random.default_rng(seed)
    cells = np.arange(n) + 608_000_000_000_000_000
    county = rng.choice(["150102", "150103", "150104", "150202", "150203", "152501"], size=n)
    parent = {"150102": "150100", "150103": "150100", "150104": "150100", "150202": "150200",
              "150203": "150200", "152501": "152500"}
    a, b, c = n // 5, n // 2, n * 3 // 8
    cover = [("red", rng.choice(cells, a, replace=False), rng.uniform(0, 1, a)),
             ("yellow", rng.choice(cells, b, replace=False), 1.0),
             ("blue", rng.choice(cells, c, replace=False), rng.uniform(0, 1, c))]
    f = cell_risk(cells, rng.lognormal(6, 1.5, n), hazard_cover=cover, occupants=rng.uniform(0, 300, n),
                  vulnerability=rng.uniform(0.5, 2.0, n))
    return f, county, parent


def test_rollup_cells_to_counties_to_prefectures_is_exact():
    f, county, parent = synthetic_region()
    r = rollup(f, county, parent)
    assert list(r.columns) == REGION_COLUMNS
    counties = r[r["level"] == "county"].set_index("region")
    prefs = r[r["level"] == "prefecture"].set_index("region")
    assert sorted(counties.index) == sorted(set(county)) and sorted(prefs.index) == ["150100", "150200", "152500"]
    for col in ("population", "occupants", "exposure", "hazard_exposure", "risk"):
        for reg in counties.index:  # county = correctly rounded sum of its cells
            assert counties.loc[reg, col] == math.fsum(f[col][county == reg])
        for pref in prefs.index:  # prefecture = correctly rounded sum of its counties, exactly
            kids = [c for c in counties.index if parent[c] == pref]
            assert prefs.loc[pref, col] == math.fsum(counties.loc[kids, col])
        assert math.fsum(prefs[col]) == pytest.approx(math.fsum(f[col]), rel=1e-14)
    assert counties["n_cells"].sum() == prefs["n_cells"].sum() == len(f)
    assert (counties["parent"] == [parent[c] for c in counties.index]).all()
    # the normalised score is risk / exposure and factors into intensity x vulnerability
    assert np.allclose(r["score"], r["risk"] / r["exposure"], rtol=1e-14)
    assert np.allclose(r["score"], r["intensity"] * r["vulnerability"], rtol=1e-12)
    # the same through a column name and a mapping
    by_col = rollup(f.assign(county=county), "county", parent)
    by_map = rollup(f, dict(zip(f["cell"], county, strict=False)), parent)
    pd.testing.assert_frame_equal(by_col, r)
    pd.testing.assert_frame_equal(by_map, r)


def test_rollup_missing_regions_are_errors_not_dropped_cells():
    f, county, parent = synthetic_region(n=20)
    county = county.astype(object)
    county[3] = None
    with pytest.raises(InvalidParameterError) as e:
        rollup(f, county, parent)
    assert e.value.field == "cell_region_key"
    f2, county2, parent2 = synthetic_region(n=50)
    del parent2[county2[0]]
    with pytest.raises(InvalidParameterError) as e:
        rollup(f2, county2, parent2)
    assert e.value.field == "parent_of" and e.value.value == county2[0]


def test_region_without_exposure_has_nan_score():
    f = cell_risk([1, 2], [0.0, 10.0], hazard_cover=[("red", [1, 2], 1.0)])
    r = rollup(f, ["a", "b"], {"a": "p", "b": "p"}).set_index("region")
    assert math.isnan(r.loc["a", "score"]) and r.loc["b", "score"] == 1.0 and r.loc["p", "score"] == 1.0


@pytest.mark.parametrize("kwargs,field", [
    ({"red": 1.5}, "red"), ({"blue": -0.1}, "blue"), ({"yellow": 0.2}, "yellow"), ({"orange": 0.4}, "orange"),
    ({"red": 0.7}, "red"), ({"occupants_weight": 11}, "occupants_weight"), ({"vulnerability": -1}, "vulnerability"),
    ({"occupants_weight": float("nan")}, "occupants_weight"), ({"blue": "0.3"}, "blue"), ({"red": True}, "red"),
])
def test_weights_validation_names_the_weight(kwargs, field):
    with pytest.raises(InvalidParameterError) as e:
        RiskWeights(**kwargs)
    assert e.value.field == field and e.value.allowed


def test_weights_from_request_and_description():
    w = RiskWeights.from_mapping({"red": "0.9", "orange": 0.6, "occupants_weight": 3})
    assert (w.red, w.orange, w.occupants_weight, w.blue) == (0.9, 0.6, 3.0, 0.25)
    with pytest.raises(InvalidParameterError) as e:
        RiskWeights.from_mapping({"purple": 1})
    assert e.value.field == "purple" and "red" in e.value.allowed
    with pytest.raises(InvalidParameterError) as e:
        RiskWeights.from_mapping({"red": "high"})
    assert e.value.field == "red"
    d = w.to_dict()
    assert d["values"] == {"blue": 0.25, "yellow": 0.5, "orange": 0.6, "red": 0.9, "occupants_weight": 3.0,
                           "vulnerability": 1.0}
    assert set(d["labels"]) == set(d["values"])
    assert all(set(v) == {"zh-CN", "en"} and all(v.values()) for v in d["labels"].values())
    assert d["description_key"] == "risk.weights.description"
    for lang in ("zh-CN", "en"):
        assert "0.9" in d["description"][lang] and "{" not in d["description"][lang]
    # weights change the numbers
    f1 = cell_risk([1], [100.0], hazard_cover=[("red", [1], 1.0)], occupants=[10.0], weights=w)
    assert f1["risk"].iloc[0] == pytest.approx(0.9 * (100 + 3 * 10))


@pytest.mark.parametrize("kwargs,field", [
    ({"population": [-1.0, 2.0]}, "population"), ({"population": [1.0]}, "population"),
    ({"occupants": [np.nan, 0.0]}, "occupants"), ({"vulnerability": [11.0, 1.0]}, "vulnerability"),
    ({"hazard_cover": [("purple", [1], 1.0)]}, "hazard_cover.level"),
    ({"hazard_cover": [("red", [1], 1.5)]}, "hazard_cover[0].fraction"),
    ({"hazard_cover": [("red", [1, 2], [0.5])]}, "hazard_cover[0].fraction"),
    ({"hazard_cover": [("red", [1, 1], 0.5)]}, "hazard_cover"),
    ({"hazard_cover": ["red"]}, "hazard_cover[0]"),
    ({"cells": [1, 1]}, "cells"),
])
def test_cell_risk_bad_inputs_name_the_field(kwargs, field):
    args = {"cells": [1, 2], "population": [10.0, 20.0], **kwargs}
    with pytest.raises(InvalidParameterError) as e:
        cell_risk(args.pop("cells"), args.pop("population"), **args)
    assert e.value.field == field


def test_empty_in_empty_out():
    f = cell_risk([], [], hazard_cover=[("red", [5], 1.0)])
    assert list(f.columns) == CELL_COLUMNS and len(f) == 0
    r = rollup(f, [], {})
    assert list(r.columns) == REGION_COLUMNS and len(r) == 0
