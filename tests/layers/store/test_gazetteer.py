"""One reader of GeoNames places, one rule for their Chinese names: the basemap's labels and the demo's towns
used to read the same package with two rules that disagreed (Xilinhot was 锡林浩特 on the map, 希日塔拉 in the
demo's shelter names)."""

from __future__ import annotations

from layers.reference.places import inner_mongolia_places
from layers.render.basemap_data import load_places
from layers.store.gazetteer import chinese_name, read_places


def test_every_place_has_one_chinese_name_on_every_path() -> None:
    by_id = {p.geonameid: p for p in read_places(country="CN", min_population=0)}
    demo = inner_mongolia_places()
    assert demo and all(by_id[p.geonameid].name_zh == p.name_zh for p in demo)
    labels = load_places()
    assert labels and all(by_id[p.geonameid].name_zh == p.name_zh for p in labels)
    xilinhot = next(p for p in demo if p.name_en == "Xilinhot")
    assert xilinhot.name_zh == "锡林浩特"
    assert next(p for p in labels if p.name_en == "Xilinhot").name_zh == "锡林浩特"


def test_chinese_name_prefers_the_simplified_base_shared_with_its_city_form() -> None:
    assert chinese_name(["希日塔拉", "希日塔拉街道", "锡林浩特", "锡林浩特市"]) == "锡林浩特"
    assert chinese_name(["Wuhai", "wu hai", "乌海", "乌海市", "烏海"]) == "乌海"
    assert chinese_name(["Ulan"]) is None
