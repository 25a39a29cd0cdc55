"""Column mapping for imports: which input column feeds which column of a layer, and how values are read.

Public: :class:`LayerSpec`, :data:`SPECS`, :func:`spec`, :func:`normalize_name`, :func:`map_columns`,
:func:`vocab_lookup`, :func:`to_vocab_keys`, :data:`IGNORED_COLUMNS`, :data:`LON_NAMES`, :data:`LAT_NAMES`,
:data:`WKT_NAMES`.

For imports of files whose column names differ from ours: English and Chinese names that are common in Chinese
government and emergency-management data map onto the layer's real columns; every other column goes to
``properties``. ``docs/import.md`` documents the same tables for users; keep the two in step.

Names are compared after :func:`normalize_name` (case, width, spaces, ``_``/``-``/``.`` and a trailing unit in
brackets do not matter): ``Capacity (persons)``, ``capacity`` and ``容量（人）`` all name the capacity.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from layers.store import registry
from layers.store import vocab as _vocab

# --- names ------------------------------------------------------------------------------------------------------

_BRACKETS = re.compile(r"[(\[（【].*?[)\]）】]")
_SEPARATORS = re.compile(r"[\s_\-.·:/：、]+")


def normalize_name(name: object) -> str:
    """The form in which column names and vocabulary values are compared.

    >>> normalize_name(" Capacity (persons) ")
    'capacity'
    >>> normalize_name("容量（人）")
    '容量'
    >>> normalize_name("External_ID")
    'externalid'
    >>> normalize_name("Ⅳ级")
    'iv级'
    """
    s = unicodedata.normalize("NFKC", str(name)).strip().lower()
    s = _BRACKETS.sub("", s)
    return _SEPARATORS.sub("", s)


#: Columns that hold a longitude / latitude in CSV files (compared after :func:`normalize_name`).
LON_NAMES: tuple[str, ...] = ("lon", "lng", "long", "longitude", "x", "经度", "东经", "x坐标")
LAT_NAMES: tuple[str, ...] = ("lat", "latitude", "y", "纬度", "北纬", "y坐标")
#: Columns that hold a geometry as WKT in CSV files.
WKT_NAMES: tuple[str, ...] = ("wkt", "geometry", "geom", "the_geom", "几何", "空间信息")

#: Columns that our own exports (and GDAL drivers) write but that an import never takes as data: the database
#: assigns them. They are dropped, with a note.
IGNORED_COLUMNS: frozenset[str] = frozenset(
    normalize_name(n) for n in (
        "sitroom_id", "source", "created_at", "updated_at", "updated_by", "deleted_at",
        # GDAL's KML driver: styling and rendering fields of every placemark
        "altitudeMode", "tessellate", "extrude", "visibility", "drawOrder", "icon", "snippet",
    )
)

# --- layers -------------------------------------------------------------------------------------------------------

_COMMON_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "ext_id", "id", "uid", "uuid", "feature_id", "编号", "唯一编号", "标识码",
                    "唯一标识", "标识", "代码编号"),
    "name": ("name", "title", "名称", "名字", "地名", "单位名称", "场所名称"),
    "kind": ("kind", "type", "category", "class", "类型", "类别", "种类", "分类"),
    "status": ("status", "state", "状态", "当前状态"),
    "valid_from": ("valid_from", "start", "start_time", "begin", "开始时间", "起始时间"),
    "valid_to": ("valid_to", "end", "end_time", "结束时间", "截止时间"),
}


@dataclass(frozen=True)
class LayerSpec:
    """How one layer reads its input.

    ``aliases`` extends (and for the same alias, overrides) the common aliases; ``vocabs`` maps a column to its
    controlled vocabulary; ``ints`` maps an integer column to its (min, max) (None: unbounded), ``floats`` a
    real-number column to its (min, max); ``defaults`` are
    used on insert when a row has no value (a column missing from the file is never overwritten on re-import).
    """

    layer: str
    vocabs: dict[str, str]
    required: tuple[str, ...]
    defaults: dict[str, object]
    ints: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    floats: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    datetimes: tuple[str, ...] = ("valid_from", "valid_to")
    texts: tuple[str, ...] = ("external_id", "name")
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    patterns: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (regex, what is allowed)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column an input can feed (besides geometry and properties)."""
        cols = list(_COMMON_ALIASES)
        for c in (*self.aliases, *self.vocabs, *self.ints, *self.floats, *self.datetimes, *self.texts,
                  *self.patterns):
            if c not in cols:
                cols.append(c)
        return tuple(cols)

    def names_for(self, column: str) -> tuple[str, ...]:
        """The input column names accepted for ``column`` (layer aliases, else the common ones).

        >>> spec("shelters").names_for("capacity")[:3]
        ('capacity', 'places', '容量')
        """
        return self.aliases.get(column, _COMMON_ALIASES.get(column, (column,)))

    def alias_table(self) -> dict[str, str]:
        """Normalised alias -> column; layer aliases win over the common ones, and exact names over aliases."""
        table: dict[str, str] = {}
        for col, names in _COMMON_ALIASES.items():
            for n in names:
                table[normalize_name(n)] = col
        for col, names in self.aliases.items():
            for n in names:
                table[normalize_name(n)] = col
        for col in self.columns:
            table[normalize_name(col)] = col
            if len(col) > 10:  # Shapefile (dBase) truncates field names to 10 characters
                table.setdefault(normalize_name(col[:10]), col)
        return table


def _vocabs(layer: str) -> dict[str, str]:
    return dict(registry.layer(layer).vocabs)


SPECS: dict[str, LayerSpec] = {
    "hazards": LayerSpec(
        layer="hazards",
        vocabs=_vocabs("hazards"),
        required=("kind", "warning_level"),
        defaults={"status": "active"},
        datetimes=("valid_from", "valid_to", "onset", "expires"),
        aliases={
            "warning_level": ("warning_level", "level", "alert_level", "severity", "color", "colour", "预警级别",
                              "预警等级", "级别", "等级", "预警颜色", "颜色"),
            "onset": ("onset", "effective", "生效时间", "开始时间", "起始时间", "发布时间"),
            "expires": ("expires", "expiry", "expire_time", "失效时间", "解除时间", "结束时间"),
            "kind": ("kind", "type", "category", "hazard", "event", "类型", "类别", "灾种", "灾害类型", "预警类型"),
        },
    ),
    "incidents": LayerSpec(
        layer="incidents",
        vocabs=_vocabs("incidents"),
        required=("kind",),
        defaults={"status": "reported", "severity": "general"},
        ints={"casualties": (0, None)},
        datetimes=("valid_from", "valid_to", "occurred_at"),
        aliases={
            "severity": ("severity", "level", "事件级别", "事件等级", "级别", "等级"),
            "occurred_at": ("occurred_at", "time", "datetime", "date", "timestamp", "发生时间", "事发时间",
                            "时间", "上报时间"),
            "casualties": ("casualties", "伤亡人数", "伤亡"),
            "kind": ("kind", "type", "category", "class", "类型", "类别", "事件类型"),
        },
    ),
    "shelters": LayerSpec(
        layer="shelters",
        vocabs=_vocabs("shelters"),
        required=("kind", "capacity"),
        defaults={"status": "open", "occupancy": 0},
        ints={"capacity": (0, None), "occupancy": (0, None)},
        aliases={
            "capacity": ("capacity", "places", "容量", "可容纳人数", "容纳人数", "设计容量", "避难人数"),
            "occupancy": ("occupancy", "occupied", "已安置人数", "安置人数", "当前人数", "已入住人数"),
            "kind": ("kind", "type", "category", "class", "类型", "类别", "场所类型", "避难场所类型"),
        },
    ),
    "resources": LayerSpec(
        layer="resources",
        vocabs=_vocabs("resources"),
        required=("kind",),
        defaults={"status": "available", "quantity": 1},
        ints={"quantity": (0, None)},
        texts=("external_id", "name", "unit"),
        aliases={
            "quantity": ("quantity", "qty", "count", "amount", "number", "数量", "台数", "人数"),
            "unit": ("unit", "计量单位"),
            "kind": ("kind", "type", "category", "class", "类型", "类别", "资源类型", "装备类型"),
        },
    ),
    "protection_targets": LayerSpec(
        layer="protection_targets",
        vocabs=_vocabs("protection_targets"),
        required=("kind",),
        defaults={"status": "normal", "occupants": 0, "criticality": 3},
        ints={"occupants": (0, None), "criticality": (1, 5)},
        aliases={
            "occupants": ("occupants", "population", "people", "persons", "人数", "人员数量", "在册人数",
                          "在校人数", "在院人数"),
            "criticality": ("criticality", "priority", "重要性", "重要程度", "优先级"),
            "kind": ("kind", "type", "category", "class", "类型", "类别", "目标类型"),
        },
    ),
    "admin_regions": LayerSpec(
        layer="admin_regions",
        vocabs=_vocabs("admin_regions"),
        required=("adcode", "level"),
        defaults={"status": "active"},
        texts=("external_id", "name", "name_en", "kind", "status"),
        patterns={"adcode": (r"^\d{6}(\d{3}){0,2}$", "6, 9 or 12 digits (China's administrative code)"),
                  "parent_adcode": (r"^\d{6}(\d{3}){0,2}$", "6, 9 or 12 digits, or empty")},
        aliases={
            "adcode": ("adcode", "ad_code", "code", "gb", "行政区划代码", "区划代码", "行政代码", "行政区代码"),
            "level": ("level", "admin_level", "级别", "行政级别", "层级", "行政等级"),
            "parent_adcode": ("parent_adcode", "parent", "parent_code", "上级代码", "上级行政区划代码", "上级区划代码"),
            "name_en": ("name_en", "english_name", "name_english", "英文名称", "英文名"),
            "name": ("name", "名称", "行政区名称", "区划名称", "地名"),
        },
    ),
    "impact_zones": LayerSpec(
        layer="impact_zones",
        vocabs=_vocabs("impact_zones"),
        required=(),
        defaults={"kind": "drawn", "status": "active"},
    ),
    "annotations": LayerSpec(
        layer="annotations",
        vocabs=_vocabs("annotations"),
        required=(),
        defaults={"kind": "note", "status": "active", "color": "#e53935"},
        texts=("external_id", "name", "label"),
        patterns={"color": (r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", "a colour as #rgb or #rrggbb")},
        aliases={
            "kind": ("kind", "type", "symbol", "icon_kind", "类型", "类别", "符号"),
            "label": ("label", "text", "标注", "标签", "文字", "标注文字"),
            "color": ("color", "colour", "颜色"),
        },
    ),
    "stations": LayerSpec(
        layer="stations",
        vocabs=_vocabs("stations"),
        required=("kind", "code"),
        defaults={"status": "active", "interval_s": 3600},
        ints={"interval_s": (1, 604_800)},
        # river stages are heights above the station's datum: metres, within what any gauge in China reads
        floats={"warning_stage_m": (-500.0, 9000.0), "guarantee_stage_m": (-500.0, 9000.0),
                "record_stage_m": (-500.0, 9000.0)},
        texts=("external_id", "name", "code"),
        patterns={"code": (r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", "1-32 letters, digits, '_', '.', '-' (区站号)"),
                  "adcode": (r"^\d{6}(\d{3}){0,2}$", "6, 9 or 12 digits (China's administrative code), or empty")},
        aliases={
            "code": ("code", "station_code", "station_id", "区站号", "站号", "测站编码", "站码"),
            "adcode": ("adcode", "county_adcode", "行政区划代码", "区县代码"),
            "interval_s": ("interval_s", "interval", "reporting_interval", "上报间隔", "观测间隔"),
            "warning_stage_m": ("warning_stage_m", "warning_stage", "警戒水位"),
            "guarantee_stage_m": ("guarantee_stage_m", "guarantee_stage", "保证水位"),
            "record_stage_m": ("record_stage_m", "record_stage", "历史最高水位"),
            "kind": ("kind", "type", "category", "类型", "类别", "站点类型", "测站类型"),
            "name": ("name", "station_name", "名称", "站名", "测站名称"),
        },
    ),
}


def spec(layer: str) -> LayerSpec:
    """The :class:`LayerSpec` of ``layer``; raises :class:`KeyError` naming the known layers.

    >>> spec("shelters").required
    ('kind', 'capacity')
    """
    try:
        return SPECS[layer]
    except KeyError:
        raise KeyError(f"unknown layer {layer!r}; known: {', '.join(SPECS)}") from None


def map_columns(layer: str, columns: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Which input column feeds which layer column.

    Returns ``(mapping, notes)``: ``mapping`` is input column -> layer column for the columns that map (at most
    one input column per layer column: an exact name wins over an alias, else the first column in file order);
    every input column not in ``mapping`` (and not ignored) goes to ``properties``. ``notes`` says what was
    ignored or left to ``properties`` because another column already fed the same layer column.

    >>> m, notes = map_columns("shelters", ["名称", "类型", "容量（人）", "已安置人数", "电话"])
    >>> m
    {'名称': 'name', '类型': 'kind', '容量（人）': 'capacity', '已安置人数': 'occupancy'}
    >>> map_columns("hazards", ["level", "warning_level"])[0]
    {'warning_level': 'warning_level'}
    """
    s = spec(layer)
    table = s.alias_table()
    cols = list(columns)
    mapping: dict[str, str] = {}
    taken: dict[str, str] = {}
    notes: list[str] = []
    exact = {c: table.get(normalize_name(c)) for c in cols}
    # pass 1: exact names of our columns; pass 2: aliases in file order
    for c in cols:
        target = exact[c]
        if target is not None and normalize_name(c) == normalize_name(target) and target not in taken:
            mapping[c], taken[target] = target, c
    for c in cols:
        target = exact[c]
        if c in mapping or target is None:
            continue
        if target in taken:
            notes.append(f"column {c!r} also looks like {target!r}, which is taken from {taken[target]!r}; "
                         f"{c!r} goes to properties")
            continue
        mapping[c], taken[target] = target, c
    return {c: mapping[c] for c in cols if c in mapping}, notes


# --- vocabularies -------------------------------------------------------------------------------------------------

# Spellings beyond each vocabulary's key and its zh-CN / en labels.
_VOCAB_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "warning_level": {
        "blue": ("蓝", "蓝色", "蓝色预警", "iv", "iv级", "4", "四级", "minor"),
        "yellow": ("黄", "黄色", "黄色预警", "iii", "iii级", "3", "三级", "moderate"),
        "orange": ("橙", "橙色", "橙色预警", "ii", "ii级", "2", "二级", "severe"),
        "red": ("红", "红色", "红色预警", "i", "i级", "1", "一级", "extreme"),
    },
    "incident_severity": {
        "general": ("一般", "iv", "iv级", "4", "一般事件"),
        "large": ("较大", "iii", "iii级", "3", "较大事件"),
        "major": ("重大", "ii", "ii级", "2", "重大事件"),
        "extraordinary": ("特别重大", "特大", "i", "i级", "1", "特别重大事件"),
    },
    "admin_level": {
        "province": ("省", "省份", "省级行政区", "自治区", "直辖市"),
        "prefecture": ("市", "地级市", "地区", "盟", "自治州", "city"),
        "county": ("县", "区县", "县区", "区", "旗", "县级市", "district"),
    },
    "shelter_kind": {"emergency": ("紧急",), "fixed": ("固定",), "central": ("中心",)},
    "shelter_status": {"open": ("启用", "开放中", "正常"), "closed": ("关闭", "停用"), "full": ("满员",)},
    "resource_kind": {
        "rescue_team": ("救援队", "救援队伍", "应急救援队", "team"),
        "fire_engine": ("消防车", "fire truck", "firetruck"),
        "medical_team": ("医疗队伍", "医疗救援队"),
        "supply_depot": ("物资库", "仓库", "储备库", "物资仓库", "depot", "warehouse"),
        "boat": ("冲锋舟", "舟艇", "橡皮艇", "船"),
        "generator": ("发电机组",),
    },
    "resource_status": {
        "available": ("可用", "空闲", "待命", "idle", "standby"),
        "deployed": ("出动", "已出动", "执行任务", "在途"),
        "unavailable": ("不可用", "维修", "故障", "停用"),
    },
    "target_kind": {
        "school": ("中学", "小学", "中小学", "学校"),
        "hazmat_plant": ("危化品企业", "化工厂", "化工企业", "危险化学品企业"),
        "nursing_home": ("敬老院", "福利院", "养老机构"),
        "power_station": ("发电厂", "电厂", "变电站"),
        "mine": ("煤矿", "矿井"),
    },
    "incident_status": {"closed": ("结案", "已处置", "处置完毕")},
    "hazard_status": {"active": ("发布", "生效中"), "cancelled": ("解除",)},
}


@lru_cache(maxsize=64)
def vocab_lookup(vocab: str) -> dict[str, str]:
    """Normalised spelling -> key for one vocabulary: the key, its labels (with and without the bracketed level),
    and the extra spellings of :data:`_VOCAB_ALIASES`.

    >>> lk = vocab_lookup("resource_kind")
    >>> lk["消防车"], lk[normalize_name("Fire engine")], lk[normalize_name("fire_engine")]
    ('fire_engine', 'fire_engine', 'fire_engine')
    >>> vocab_lookup("warning_level")["橙色"], vocab_lookup("warning_level")["ii"]
    ('orange', 'orange')
    """
    out: dict[str, str] = {}
    entries = _vocab.VOCABULARIES[vocab]
    for key in entries:  # keys first: a key always means itself
        out[normalize_name(key)] = key
    for key, labels in entries.items():
        for lab in labels.values():
            out.setdefault(normalize_name(lab), key)
            out.setdefault(normalize_name(lab.split("(")[0]), key)
    for key, extra in _VOCAB_ALIASES.get(vocab, {}).items():
        if key in entries:
            for e in extra:
                out.setdefault(normalize_name(e), key)
    return out


def describe_vocab(vocab: str) -> str:
    """What a vocabulary allows, for error messages: keys with their Chinese labels.

    >>> describe_vocab("admin_level")
    'one of province (省级), prefecture (地级), county (县级)'
    """
    entries = _vocab.VOCABULARIES[vocab]
    return "one of " + ", ".join(f"{k} ({v['zh-CN']})" for k, v in entries.items())


def _value_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def to_vocab_keys(vocab: str, values: Sequence[object] | pd.Series) -> pd.Series:
    """Vocabulary keys for ``values`` (any accepted spelling); missing values and unknown spellings give ``NA``.

    >>> to_vocab_keys("warning_level", ["红色", "IV", 2, None, "purple"]).tolist()
    ['red', 'blue', 'orange', nan, nan]
    """
    s = pd.Series(list(values), dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    if s.map(lambda v: isinstance(v, (dict, list))).any():  # a JSON object or array is refused as its text
        s = s.map(lambda v: str(v) if isinstance(v, (dict, list)) else v)
    lookup = vocab_lookup(vocab)
    uniq = pd.unique(s[s.notna()])
    table = {u: lookup.get(normalize_name(_value_text(u))) for u in uniq}
    out = s.map({u: k for u, k in table.items() if k is not None})
    return out.astype(object).where(out.notna(), float("nan"))
