"""Regional risk: hazard intensity x exposure x vulnerability per H3 cell, rolled up to counties and prefectures.

Public: :class:`RiskWeights`, :func:`cell_risk`, :func:`rollup`, :data:`LEVELS`.

Definition (docs/analyses.md, "Regional risk")
----------------------------------------------
Per cell ``c``:

- **intensity** ``I_c`` in [0, 1]. Each active hazard ``h`` covering the cell contributes
  ``i_h = w(level_h) x f_h`` where ``w`` is the weight of its warning level (defaults blue 0.25,
  yellow 0.5, orange 0.75, red 1.0) and ``f_h`` the fraction of the cell's area it covers. Several hazards
  combine as ``I_c = 1 - prod_h (1 - i_h)``: read ``i_h`` as the chance that hazard ``h`` harms a person in
  the cell, independently of the others; ``I_c`` is then the chance that at least one does. It equals
  ``i_h`` for a single hazard, never falls when a hazard is added or raised, lies between ``max_h i_h`` and
  ``min(1, sum_h i_h)``, and is 1 when any hazard has ``i_h = 1``.
- **exposure** ``E_c = population_c + occupants_weight x occupants_c`` (people; occupants of protection
  targets such as schools and hospitals in the cell, counted again with their own weight).
- **vulnerability** ``V_c`` (default ``weights.vulnerability``, 1; an array may come e.g. from the kinds of
  the protection targets in the cell).
- **risk** ``R_c = I_c x E_c x V_c``: people-weighted intensity, an *extensive* quantity (it adds up).

Regions sum their cells' extensive columns (population, occupants, exposure, ``hazard_exposure`` =
``sum I x E``, risk); county figures are exactly the correctly rounded sums of their cells and prefecture
figures exactly the correctly rounded sums of their counties (``math.fsum``). The normalised ``score =
risk / exposure`` of a region is the product of its exposure-weighted intensity
(``hazard_exposure / exposure``) and its at-risk-weighted vulnerability (``risk / hazard_exposure``).

Examples
--------
>>> f = cell_risk([1, 2], [1000.0, 500.0], hazard_cover=[("red", [1], [0.5]), ("blue", [1, 2], 1.0)])
>>> f[["cell", "intensity", "exposure", "risk"]].to_numpy().tolist()
[[1.0, 0.625, 1000.0, 625.0], [2.0, 0.25, 500.0, 125.0]]
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from geoops.errors import InvalidParameterError

__all__ = ["LEVELS", "RiskWeights", "cell_risk", "rollup"]

LEVELS: Final[tuple[str, ...]] = ("blue", "yellow", "orange", "red")
CELL_COLUMNS: Final[list[str]] = ["cell", "population", "occupants", "exposure", "intensity", "vulnerability",
                                  "hazard_exposure", "risk", "n_hazards"]
EXTENSIVE: Final[list[str]] = ["n_cells", "population", "occupants", "exposure", "hazard_exposure", "risk"]
REGION_COLUMNS: Final[list[str]] = ["level", "region", "parent", *EXTENSIVE, "intensity", "vulnerability",
                                    "score"]

_LABELS: Final[dict[str, dict[str, str]]] = {
    "blue": {"zh-CN": "蓝色预警权重", "en": "Blue warning weight"},
    "yellow": {"zh-CN": "黄色预警权重", "en": "Yellow warning weight"},
    "orange": {"zh-CN": "橙色预警权重", "en": "Orange warning weight"},
    "red": {"zh-CN": "红色预警权重", "en": "Red warning weight"},
    "occupants_weight": {"zh-CN": "保护目标人员权重", "en": "Weight of protection-target occupants"},
    "vulnerability": {"zh-CN": "默认脆弱性系数", "en": "Default vulnerability weight"},
}
_DESCRIPTION: Final[dict[str, str]] = {
    "zh-CN": ("风险 = 致灾强度 × 暴露度 × 脆弱性。致灾强度 (0–1) 取覆盖该网格的生效预警: 每个预警按级别取权重 "
              "(蓝 {blue}、黄 {yellow}、橙 {orange}、红 {red}) 乘以覆盖网格面积的比例, 多个预警按 "
              "1 − ∏(1 − 强度) 合成。暴露度 = 常住人口 + {occupants_weight} × 保护目标内人员。"
              "脆弱性默认为 {vulnerability}。区县、地市的风险为所含网格之和, 归一化得分 = 风险 ÷ 暴露度。"),
    "en": ("Risk = hazard intensity × exposure × vulnerability. Intensity (0–1) comes from the active warnings "
           "covering the cell: each warning counts with the weight of its level (blue {blue}, yellow {yellow}, "
           "orange {orange}, red {red}) times the share of the cell it covers; several warnings combine as "
           "1 − ∏(1 − intensity). Exposure = residents + {occupants_weight} × occupants of protection targets. "
           "Vulnerability is {vulnerability} unless set per cell. A county's or prefecture's risk is the sum "
           "over its cells; the normalised score is risk ÷ exposure."),
}


@dataclass(frozen=True)
class RiskWeights:
    """Weights of the risk model, with defaults; validated on creation.

    Parameters
    ----------
    blue, yellow, orange, red : float
        Intensity of a hazard of that warning level covering a whole cell, in [0, 1] (an intensity is a
        share, so at most 1) and non-decreasing from blue to red. Defaults 0.25, 0.5, 0.75, 1.0.
    occupants_weight : float
        How many residents one occupant of a protection target counts for in the exposure, in [0, 10].
        Default 1.
    vulnerability : float
        Vulnerability of a cell when no per-cell value is given, in [0, 10]. Default 1.

    Raises
    ------
    InvalidParameterError
        A weight out of range, not a number, or level weights that decrease (``field`` names the weight).

    Examples
    --------
    >>> RiskWeights(red=0.9).level_weight("red")
    0.9
    >>> RiskWeights(yellow=0.2)
    Traceback (most recent call last):
    ...
    geoops.errors.InvalidParameterError: yellow: level weights must not decrease from blue to red; got 0.2; allowed: a number in [0.25, 0.75] (blue <= yellow <= orange <= red)
    """

    blue: float = 0.25
    yellow: float = 0.5
    orange: float = 0.75
    red: float = 1.0
    occupants_weight: float = 1.0
    vulnerability: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            top = 1.0 if f.name in LEVELS else 10.0
            allowed = f"a number in [0, {top:g}]"
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not (0.0 <= float(value) <= top):
                raise InvalidParameterError(field=f.name, value=value, allowed=allowed)
            object.__setattr__(self, f.name, float(value))
        levels = [getattr(self, name) for name in LEVELS]
        for k in range(1, len(LEVELS)):
            if levels[k] < levels[k - 1]:
                name = LEVELS[k]
                hi = levels[k + 1] if k + 1 < len(LEVELS) else 1.0
                raise InvalidParameterError("level weights must not decrease from blue to red", field=name,
                                            value=levels[k],
                                            allowed=f"a number in [{levels[k - 1]:g}, {hi:g}] "
                                                    "(blue <= yellow <= orange <= red)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> RiskWeights:
        """Weights from a request: missing keys keep their defaults, unknown keys are rejected.

        Examples
        --------
        >>> RiskWeights.from_mapping({"occupants_weight": "2"}).occupants_weight
        2.0
        """
        names = [f.name for f in fields(cls)]
        parsed: dict[str, float] = {}
        for key, value in (values or {}).items():
            if key not in names:
                raise InvalidParameterError("unknown weight", field=str(key), value=value,
                                            allowed=f"one of {', '.join(names)}")
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterError(field=key, value=value, allowed="a number") from exc
            if not math.isfinite(parsed[key]):
                raise InvalidParameterError(field=key, value=value, allowed="a finite number")
        return cls(**parsed)

    def level_weight(self, level: str) -> float:
        """Weight of a warning level key (``blue``, ``yellow``, ``orange``, ``red``)."""
        if level not in LEVELS:
            raise InvalidParameterError("unknown warning level", field="level", value=level,
                                        allowed=f"one of {', '.join(LEVELS)}")
        return float(getattr(self, level))

    def to_dict(self) -> dict[str, Any]:
        """The weights for display: values, a zh-CN/en label per key, and the model in plain words.

        Returns
        -------
        dict
            ``values`` {key: number}; ``labels`` {key: {"zh-CN": .., "en": ..}}; ``description_key``
            (``"risk.weights.description"``, for a translation catalogue) with ``description_params``
            (the numbers to fill in) and ``description`` {"zh-CN": .., "en": ..} already filled in.

        Examples
        --------
        >>> d = RiskWeights().to_dict()
        >>> d["values"]["orange"], d["labels"]["red"]["en"]
        (0.75, 'Red warning weight')
        >>> "0.25" in d["description"]["en"] and "0.25" in d["description"]["zh-CN"]
        True
        """
        values = asdict(self)
        params = {k: f"{v:g}" for k, v in values.items()}
        return {
            "values": values,
            "labels": {k: dict(_LABELS[k]) for k in values},
            "description_key": "risk.weights.description",
            "description_params": params,
            "description": {lang: text.format(**params) for lang, text in _DESCRIPTION.items()},
        }


# ----------------------------------------------------------------------------------------------- helpers
def _amounts(values: ArrayLike | None, name: str, n: int, *, default: float, top: float = math.inf
             ) -> NDArray[np.float64]:
    if values is None:
        return np.full(n, default)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError("not numbers", field=name, value=values, allowed="numbers") from exc
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InvalidParameterError(f"has shape {arr.shape}, expected ({n},)", field=name, value=values,
                                    allowed=f"{n} values, one per cell")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > top)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(f"invalid value at position {i}", field=name, value=float(arr[i]),
                                    allowed=f"finite numbers in [0, {top:g}]")
    return arr


def _hazard_rows(hazard_cover: Any) -> tuple[list[Any], NDArray[Any], NDArray[np.float64], NDArray[np.intp]]:
    """(levels per row, cells, fractions, hazard number) from tuples or a frame with cell/level/fraction."""
    if isinstance(hazard_cover, pd.DataFrame):
        missing = {"cell", "level", "fraction"} - set(hazard_cover.columns)
        if missing:
            raise InvalidParameterError("missing columns", field="hazard_cover", value=sorted(missing),
                                        allowed="columns cell, level, fraction (and optionally hazard)")
        if "hazard" in hazard_cover.columns:
            hz = pd.factorize(hazard_cover["hazard"])[0].astype(np.intp)
        else:
            hz = np.arange(len(hazard_cover), dtype=np.intp)
        return (list(hazard_cover["level"]), hazard_cover["cell"].to_numpy(),
                _fractions(hazard_cover["fraction"].to_numpy(), "hazard_cover.fraction"), hz)
    levels: list[Any] = []
    cells: list[NDArray[Any]] = []
    fracs: list[NDArray[np.float64]] = []
    hz_parts: list[NDArray[np.intp]] = []
    for k, item in enumerate(hazard_cover):
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 3:
            raise InvalidParameterError("not a (level, cells, fraction) triple", field=f"hazard_cover[{k}]",
                                        value=item, allowed="(level, cells, fraction)")
        level, hcells, frac = item
        c = np.atleast_1d(np.asarray(hcells))
        f = np.asarray(frac, dtype=np.float64) if not isinstance(frac, str) else np.asarray(np.nan)
        f = np.full(c.shape[0], float(f)) if f.ndim == 0 else f
        if f.shape != c.shape:
            raise InvalidParameterError(f"{f.shape[0]} fractions for {c.shape[0]} cells",
                                        field=f"hazard_cover[{k}].fraction", value=frac,
                                        allowed="one fraction per cell, or one for all")
        levels.extend([level] * c.shape[0])
        cells.append(c)
        fracs.append(_fractions(f, f"hazard_cover[{k}].fraction"))
        hz_parts.append(np.full(c.shape[0], k, dtype=np.intp))
    if not cells:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.intp)
    return levels, np.concatenate(cells), np.concatenate(fracs), np.concatenate(hz_parts)


def _fractions(f: NDArray[Any], name: str) -> NDArray[np.float64]:
    arr = np.asarray(f, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(f"invalid fraction at position {i}", field=name, value=float(arr[i]),
                                    allowed="a share of the cell's area in [0, 1]")
    return arr


# ------------------------------------------------------------------------------------------------ public
def cell_risk(cells: ArrayLike, population: ArrayLike, *, hazard_cover: Any = (),
              occupants: ArrayLike | None = None, vulnerability: ArrayLike | None = None,
              weights: RiskWeights | None = None) -> pd.DataFrame:
    """Risk of each cell: intensity (0..1) x exposure (people) x vulnerability.

    Parameters
    ----------
    cells : array-like, shape (n,)
        Unique cell ids (H3 int64).
    population : array-like of float, shape (n,)
        Residents per cell (>= 0).
    hazard_cover : sequence of (level, cells, fraction), or DataFrame
        The active hazards: for each, its warning level (``blue``/``yellow``/``orange``/``red``), the cells
        it covers and the share of each cell's area covered (one number per cell, or one for all, in
        [0, 1]). A DataFrame has one row per (hazard, cell) with columns ``cell``, ``level``, ``fraction``
        and optionally ``hazard`` (rows without it are separate hazards). Cells not in ``cells`` are out of
        scope and ignored. A hazard may list a cell once.
    occupants : array-like of float, shape (n,), optional
        Occupants of protection targets in each cell (>= 0); default 0.
    vulnerability : array-like of float, shape (n,), or float, optional
        Vulnerability weight per cell in [0, 10]; default ``weights.vulnerability``.
    weights : RiskWeights, optional
        Default ``RiskWeights()``.

    Returns
    -------
    pandas.DataFrame
        One row per cell in input order: ``cell``, ``population``, ``occupants``, ``exposure``,
        ``intensity``, ``vulnerability``, ``hazard_exposure`` (intensity x exposure), ``risk``,
        ``n_hazards`` (hazards touching the cell).

    Raises
    ------
    InvalidParameterError
        Negative or non-finite amounts, fractions outside [0, 1], unknown levels, duplicate cells, a hazard
        listing a cell twice, arrays of the wrong length; ``field`` names the input.

    Examples
    --------
    A school of 200 in a cell of 1,000 residents, half under an orange warning:

    >>> f = cell_risk([9], [1000.0], hazard_cover=[("orange", [9], 0.5)], occupants=[200.0])
    >>> f[["intensity", "exposure", "risk"]].iloc[0].tolist()
    [0.375, 1200.0, 450.0]
    """
    w = weights if weights is not None else RiskWeights()
    if not isinstance(w, RiskWeights):
        raise InvalidParameterError(field="weights", value=weights, allowed="a RiskWeights")
    ids = np.asarray(cells)
    if ids.ndim != 1:
        raise InvalidParameterError("not one-dimensional", field="cells", value=cells, allowed="1-D cell ids")
    n = ids.shape[0]
    index = pd.Index(ids)
    if not index.is_unique:
        raise InvalidParameterError("duplicate cell", field="cells", value=index[index.duplicated()][0],
                                    allowed="unique cell ids")
    pop = _amounts(population, "population", n, default=0.0)
    occ = _amounts(occupants, "occupants", n, default=0.0)
    vul = _amounts(vulnerability, "vulnerability", n, default=w.vulnerability, top=10.0)

    levels, hcells, frac, hz = _hazard_rows(hazard_cover)
    level_w = {name: w.level_weight(name) for name in LEVELS}
    try:
        lw = np.array([level_w[lv] for lv in levels], dtype=np.float64)
    except (KeyError, TypeError):
        bad = next(lv for lv in levels if not isinstance(lv, str) or lv not in level_w)
        raise InvalidParameterError("unknown warning level", field="hazard_cover.level", value=bad,
                                    allowed=f"one of {', '.join(LEVELS)}") from None
    pos = index.get_indexer(hcells) if hcells.shape[0] else np.zeros(0, dtype=np.intp)
    inside = pos >= 0
    pos, lw, frac, hz = pos[inside], lw[inside], frac[inside], hz[inside]
    pairs = pd.DataFrame({"h": hz, "c": pos})
    if pairs.duplicated().any():
        h, c = pairs[pairs.duplicated()].iloc[0]
        raise InvalidParameterError(f"hazard {int(h)} lists cell {ids[c]!r} more than once",
                                    field="hazard_cover", value=ids[c], allowed="each cell once per hazard")
    survive = np.ones(n)
    np.multiply.at(survive, pos, 1.0 - lw * frac)
    intensity = np.clip(1.0 - survive, 0.0, 1.0)
    exposure = pop + w.occupants_weight * occ
    hazard_exposure = intensity * exposure
    return pd.DataFrame({
        "cell": ids, "population": pop, "occupants": occ, "exposure": exposure, "intensity": intensity,
        "vulnerability": vul, "hazard_exposure": hazard_exposure, "risk": hazard_exposure * vul,
        "n_hazards": np.bincount(pos, minlength=n),
    }, columns=CELL_COLUMNS)


def _fsum_groups(keys: NDArray[Any], frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Correctly rounded sums (math.fsum) of ``columns`` per key, keys sorted."""
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniques)))]
    out: dict[str, list[float]] = {}
    for col in columns:
        values = frame[col].to_numpy(dtype=np.float64)[order]
        out[col] = [math.fsum(values[bounds[g]:bounds[g + 1]]) for g in range(len(uniques))]
    return pd.DataFrame(out, index=pd.Index(list(uniques), name="region"))


def _ratios(frame: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(invalid="ignore", divide="ignore"):
        e, he, r = frame["exposure"], frame["hazard_exposure"], frame["risk"]
        frame["intensity"] = np.where(e > 0, he / e.where(e > 0, 1.0), np.nan)
        frame["vulnerability"] = np.where(he > 0, r / he.where(he > 0, 1.0), np.nan)
        frame["score"] = np.where(e > 0, r / e.where(e > 0, 1.0), np.nan)
    return frame


def rollup(cell_frame: pd.DataFrame, cell_region_key: str | ArrayLike | Mapping[Hashable, Hashable],
           parent_of: Mapping[Hashable, Hashable], *, levels: tuple[str, str] = ("county", "prefecture")
           ) -> pd.DataFrame:
    """Sum cell risk to regions (e.g. counties) and their parents (e.g. prefectures).

    Parameters
    ----------
    cell_frame : pandas.DataFrame
        From :func:`cell_risk`.
    cell_region_key : str, array-like or mapping
        The region of each cell: a column of ``cell_frame``, an array aligned with its rows, or a mapping
        cell id -> region. Every cell must have one.
    parent_of : mapping
        Region -> parent region (county adcode -> prefecture adcode); every region must have one.
    levels : (str, str)
        Names of the two levels in the ``level`` column.

    Returns
    -------
    pandas.DataFrame
        Rows of the first level (sorted by region), then of the second: ``level``, ``region``, ``parent``
        (None at the top), ``n_cells``, ``population``, ``occupants``, ``exposure``, ``hazard_exposure``,
        ``risk`` (sums: a region's value is the ``math.fsum`` of its cells', a parent's the ``math.fsum``
        of its children's), ``intensity`` (hazard_exposure / exposure), ``vulnerability`` (risk /
        hazard_exposure) and ``score`` (risk / exposure = intensity x vulnerability), NaN where undefined.

    Raises
    ------
    InvalidParameterError
        A cell without a region (``cell_region_key``) or a region without a parent (``parent_of``).

    Examples
    --------
    >>> f = cell_risk([1, 2, 3], [100.0, 300.0, 50.0], hazard_cover=[("red", [1, 2], 1.0)])
    >>> r = rollup(f, {1: "150102", 2: "150103", 3: "150103"}, {"150102": "150100", "150103": "150100"})
    >>> r[["level", "region", "risk", "score"]].to_numpy().tolist()
    [['county', '150102', 100.0, 1.0], ['county', '150103', 300.0, 0.8571428571428571], ['prefecture', '150100', 400.0, 0.8888888888888888]]
    """
    if isinstance(cell_region_key, str) and cell_region_key in cell_frame.columns:
        keys = cell_frame[cell_region_key].to_numpy(dtype=object)
    elif isinstance(cell_region_key, Mapping):
        keys = np.array([cell_region_key.get(c) for c in cell_frame["cell"].tolist()], dtype=object)
    elif isinstance(cell_region_key, str):
        raise InvalidParameterError("no such column", field="cell_region_key", value=cell_region_key,
                                    allowed=f"one of {', '.join(map(str, cell_frame.columns))}")
    else:
        keys = np.asarray(cell_region_key, dtype=object)
        if keys.shape != (len(cell_frame),):
            raise InvalidParameterError(f"has shape {keys.shape}, expected ({len(cell_frame)},)",
                                        field="cell_region_key", value=keys.shape,
                                        allowed="one region per row of cell_frame")
    missing = pd.isna(pd.Series(keys, dtype=object)).to_numpy()
    if missing.any():
        cell = cell_frame["cell"].iloc[int(np.flatnonzero(missing)[0])]
        raise InvalidParameterError(f"{int(missing.sum())} cell(s) have no region, e.g. cell {cell!r}",
                                    field="cell_region_key", value=cell, allowed="a region for every cell")
    base = cell_frame.assign(n_cells=1.0)
    low = _fsum_groups(keys, base, EXTENSIVE)
    orphans = [r for r in low.index if r not in parent_of or parent_of[r] is None]
    if orphans:
        raise InvalidParameterError(f"{len(orphans)} region(s) have no parent", field="parent_of",
                                    value=orphans[0], allowed="a parent for every region that has cells")
    low_parent = np.array([parent_of[r] for r in low.index], dtype=object)
    high = _fsum_groups(low_parent, low.reset_index(drop=True), EXTENSIVE)
    low = _ratios(low.reset_index())
    high = _ratios(high.reset_index())
    low.insert(0, "level", levels[0])
    low.insert(2, "parent", low_parent)
    high.insert(0, "level", levels[1])
    high.insert(2, "parent", None)
    out = pd.concat([low, high], ignore_index=True)[REGION_COLUMNS]
    out["n_cells"] = out["n_cells"].astype(np.int64)
    return out
