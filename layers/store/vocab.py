"""Controlled vocabularies of the store: stable English snake_case keys with zh-CN and en labels.

Public: :data:`VOCABULARIES`, :func:`keys`, :func:`label`, :func:`check`.

A deployment may add keys with a JSON file named by ``SITROOM_VOCAB_FILE`` (``{"vocab": {"key": {"zh-CN": ..,
"en": ..}}}``); keys are never removed, since stored rows use them.
"""

from __future__ import annotations

import json
import os
from typing import Final

Label = dict[str, str]

_BASE: Final[dict[str, dict[str, Label]]] = {
    "hazard_kind": {
        "flood": {"zh-CN": "洪涝", "en": "Flood"},
        "blizzard": {"zh-CN": "暴雪", "en": "Blizzard"},
        "cold_wave": {"zh-CN": "寒潮", "en": "Cold wave"},
        "sandstorm": {"zh-CN": "沙尘暴", "en": "Sandstorm"},
        "drought": {"zh-CN": "干旱", "en": "Drought"},
        "grassland_fire": {"zh-CN": "草原火灾", "en": "Grassland fire"},
        "forest_fire": {"zh-CN": "森林火灾", "en": "Forest fire"},
        "earthquake": {"zh-CN": "地震", "en": "Earthquake"},
        "landslide": {"zh-CN": "滑坡", "en": "Landslide"},
        "chemical_release": {"zh-CN": "危化品泄漏", "en": "Chemical release"},
        "thunderstorm": {"zh-CN": "雷暴", "en": "Thunderstorm"},
        "gale": {"zh-CN": "大风", "en": "Gale"},
        "heat_wave": {"zh-CN": "高温", "en": "Heat wave"},
        "other": {"zh-CN": "其他", "en": "Other"},
    },
    "hazard_status": {
        "forecast": {"zh-CN": "预报", "en": "Forecast"},
        "active": {"zh-CN": "生效", "en": "Active"},
        "expired": {"zh-CN": "已过期", "en": "Expired"},
        "cancelled": {"zh-CN": "已解除", "en": "Cancelled"},
        # automatic warnings of the monitoring wing (layers/monitor): raised by a rule, awaiting a duty officer
        "pending": {"zh-CN": "待确认", "en": "Pending confirmation"},
        "dismissed": {"zh-CN": "已驳回", "en": "Dismissed"},
    },
    "warning_level": {
        "blue": {"zh-CN": "蓝色 (IV级)", "en": "Blue (IV)"},
        "yellow": {"zh-CN": "黄色 (III级)", "en": "Yellow (III)"},
        "orange": {"zh-CN": "橙色 (II级)", "en": "Orange (II)"},
        "red": {"zh-CN": "红色 (I级)", "en": "Red (I)"},
    },
    "incident_kind": {
        "fire": {"zh-CN": "火灾", "en": "Fire"},
        "flood": {"zh-CN": "洪涝", "en": "Flood"},
        "collapse": {"zh-CN": "坍塌", "en": "Collapse"},
        "traffic": {"zh-CN": "交通事故", "en": "Traffic accident"},
        "chemical": {"zh-CN": "危化品事故", "en": "Chemical accident"},
        "earthquake": {"zh-CN": "地震", "en": "Earthquake"},
        "rescue": {"zh-CN": "救援", "en": "Rescue"},
        "medical": {"zh-CN": "医疗急救", "en": "Medical"},
        "other": {"zh-CN": "其他", "en": "Other"},
    },
    "incident_status": {
        "reported": {"zh-CN": "已上报", "en": "Reported"},
        "verified": {"zh-CN": "已核实", "en": "Verified"},
        "responding": {"zh-CN": "处置中", "en": "Responding"},
        "closed": {"zh-CN": "已结案", "en": "Closed"},
    },
    # 突发事件分级: 一般 (IV) / 较大 (III) / 重大 (II) / 特别重大 (I)
    "incident_severity": {
        "general": {"zh-CN": "一般 (IV级)", "en": "General (IV)"},
        "large": {"zh-CN": "较大 (III级)", "en": "Relatively major (III)"},
        "major": {"zh-CN": "重大 (II级)", "en": "Major (II)"},
        "extraordinary": {"zh-CN": "特别重大 (I级)", "en": "Especially major (I)"},
    },
    "shelter_kind": {
        "emergency": {"zh-CN": "紧急避难场所", "en": "Emergency shelter"},
        "fixed": {"zh-CN": "固定避难场所", "en": "Fixed shelter"},
        "central": {"zh-CN": "中心避难场所", "en": "Central shelter"},
    },
    "shelter_status": {
        "open": {"zh-CN": "开放", "en": "Open"},
        "closed": {"zh-CN": "关闭", "en": "Closed"},
        "full": {"zh-CN": "已满", "en": "Full"},
    },
    "resource_kind": {
        "rescue_team": {"zh-CN": "救援队伍", "en": "Rescue team"},
        "fire_engine": {"zh-CN": "消防车", "en": "Fire engine"},
        "ambulance": {"zh-CN": "救护车", "en": "Ambulance"},
        "medical_team": {"zh-CN": "医疗队", "en": "Medical team"},
        "supply_depot": {"zh-CN": "物资储备库", "en": "Supply depot"},
        "helicopter": {"zh-CN": "直升机", "en": "Helicopter"},
        "excavator": {"zh-CN": "挖掘机", "en": "Excavator"},
        "generator": {"zh-CN": "发电机", "en": "Generator"},
        "boat": {"zh-CN": "冲锋舟", "en": "Boat"},
    },
    "resource_status": {
        "available": {"zh-CN": "可用", "en": "Available"},
        "deployed": {"zh-CN": "已出动", "en": "Deployed"},
        "unavailable": {"zh-CN": "不可用", "en": "Unavailable"},
    },
    "target_kind": {
        "school": {"zh-CN": "学校", "en": "School"},
        "kindergarten": {"zh-CN": "幼儿园", "en": "Kindergarten"},
        "hospital": {"zh-CN": "医院", "en": "Hospital"},
        "nursing_home": {"zh-CN": "养老院", "en": "Nursing home"},
        "hazmat_plant": {"zh-CN": "危化品企业", "en": "Hazardous-chemical plant"},
        "reservoir": {"zh-CN": "水库", "en": "Reservoir"},
        "power_station": {"zh-CN": "电站", "en": "Power station"},
        "mine": {"zh-CN": "矿山", "en": "Mine"},
    },
    "target_status": {
        "normal": {"zh-CN": "正常", "en": "Normal"},
        "evacuated": {"zh-CN": "已疏散", "en": "Evacuated"},
        "damaged": {"zh-CN": "受损", "en": "Damaged"},
    },
    "admin_level": {
        "province": {"zh-CN": "省级", "en": "Province"},
        "prefecture": {"zh-CN": "地级", "en": "Prefecture"},
        "county": {"zh-CN": "县级", "en": "County"},
    },
    "zone_kind": {
        "drawn": {"zh-CN": "手绘区域", "en": "Drawn zone"},
        "circle": {"zh-CN": "圆形区域", "en": "Circle"},
        "buffer": {"zh-CN": "缓冲区", "en": "Buffer"},
        "ring": {"zh-CN": "多环缓冲", "en": "Buffer ring"},
        "generated": {"zh-CN": "分析生成", "en": "Generated"},
    },
    "zone_status": {
        "draft": {"zh-CN": "草稿", "en": "Draft"},
        "active": {"zh-CN": "生效", "en": "Active"},
        "archived": {"zh-CN": "归档", "en": "Archived"},
    },
    "annotation_symbol": {
        "incident": {"zh-CN": "事件", "en": "Incident"},
        "fire": {"zh-CN": "火点", "en": "Fire"},
        "flood": {"zh-CN": "水情", "en": "Flood"},
        "collapse": {"zh-CN": "坍塌", "en": "Collapse"},
        "chemical": {"zh-CN": "危化品", "en": "Chemical"},
        "command_post": {"zh-CN": "指挥部", "en": "Command post"},
        "shelter": {"zh-CN": "避难点", "en": "Shelter"},
        "medical_point": {"zh-CN": "医疗点", "en": "Medical point"},
        "roadblock": {"zh-CN": "道路封闭", "en": "Roadblock"},
        "evacuation_route": {"zh-CN": "疏散路线", "en": "Evacuation route"},
        "note": {"zh-CN": "标注", "en": "Note"},
    },
    "station_kind": {
        "weather": {"zh-CN": "气象站", "en": "Weather station"},
        "hydrology": {"zh-CN": "水文站", "en": "Hydrological station"},
        "seismic": {"zh-CN": "地震台", "en": "Seismic station"},
        "air_quality": {"zh-CN": "空气质量站", "en": "Air-quality station"},
        "other": {"zh-CN": "其他", "en": "Other"},
    },
    "station_status": {
        "active": {"zh-CN": "运行", "en": "Active"},
        "maintenance": {"zh-CN": "维护", "en": "Maintenance"},
        "retired": {"zh-CN": "停用", "en": "Retired"},
    },
    # what a station measures; each has one fixed unit (layers/monitor/variables.py)
    "observation_variable": {
        "precipitation": {"zh-CN": "降水量", "en": "Precipitation"},
        "snowfall": {"zh-CN": "降雪量 (水当量)", "en": "Snowfall (water equivalent)"},
        "wind_speed": {"zh-CN": "平均风速", "en": "Mean wind speed"},
        "wind_gust": {"zh-CN": "阵风", "en": "Wind gust"},
        "temperature": {"zh-CN": "气温", "en": "Air temperature"},
        "water_level": {"zh-CN": "水位", "en": "Water level"},
        "visibility": {"zh-CN": "能见度", "en": "Visibility"},
    },
    "annotation_status": {
        "active": {"zh-CN": "有效", "en": "Active"},
        "archived": {"zh-CN": "归档", "en": "Archived"},
    },
}


def _load() -> dict[str, dict[str, Label]]:
    vocab = {name: dict(entries) for name, entries in _BASE.items()}
    extra = os.environ.get("SITROOM_VOCAB_FILE")
    if extra:
        with open(extra, encoding="utf-8") as f:
            for name, entries in json.load(f).items():
                if name not in vocab:
                    raise ValueError(f"{extra}: unknown vocabulary {name!r}; known: {sorted(vocab)}")
                for key, labels in entries.items():
                    if not key.isidentifier() or key != key.lower():
                        raise ValueError(f"{extra}: {name}.{key!r} must be a lower snake_case key")
                    if set(labels) != {"zh-CN", "en"}:
                        raise ValueError(f"{extra}: {name}.{key} needs exactly 'zh-CN' and 'en' labels")
                    vocab[name][key] = labels
    return vocab


VOCABULARIES: Final = _load()


def keys(vocab: str) -> tuple[str, ...]:
    """The allowed keys of one vocabulary.

    >>> keys("warning_level")
    ('blue', 'yellow', 'orange', 'red')
    """
    return tuple(VOCABULARIES[vocab])


def label(vocab: str, key: str, lang: str = "zh-CN") -> str:
    """The label of ``key`` in ``lang`` (the key itself if unknown).

    >>> label("shelter_kind", "central", "zh-CN")
    '中心避难场所'
    """
    return VOCABULARIES.get(vocab, {}).get(key, {}).get(lang, key)


def check(vocab: str, value: object) -> str | None:
    """``None`` if ``value`` is an allowed key, else a message listing the allowed keys.

    >>> check("resource_status", "busy")
    'must be one of available, deployed, unavailable'
    """
    if isinstance(value, str) and value in VOCABULARIES[vocab]:
        return None
    return "must be one of " + ", ".join(VOCABULARIES[vocab])
