"""The leader page's callbacks as plain functions on the demo database.

The ranking equals ``GET /api/v1/analysis/risk`` for the same level, hazard kinds and weights; the choropleth holds
exactly the live prefectures / counties; the trend's counts equal a PostGIS count of incidents per prefecture and day.
Hazard kinds are filtered to the small demo hazards to keep the file short.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dashboards import ids
from dashboards.app import create_app
from dashboards.i18n import t, vocab_label
from geoops.risk import RiskWeights
from layers.store.settings import Settings

pytestmark = pytest.mark.db

KINDS = ["chemical_release", "earthquake"]
DEFAULTS = RiskWeights().to_dict()["values"]


@pytest.fixture(scope="module")
def app(demo_db):
    return create_app(Settings(database_url=demo_db.url))


def _api(app, query: str):
    r = app.server.test_client().get(f"/api/v1/analysis/risk?lang=en&{query}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def _weights(**over: float) -> list[float]:
    from dashboards.pages import leader

    return [over.get(n, DEFAULTS[n]) for n in leader.WEIGHT_NAMES]


def _codes(layers) -> list[str]:
    return [f["properties"]["adcode"] for lyr in layers for f in lyr.data["features"]]


def _ranking(table) -> list[list[str]]:
    return [[c.children for c in tr.children] for tr in table.children[1].children]


@pytest.mark.parametrize("level", ["prefecture", "county"])
def test_choropleth_and_ranking_equal_the_api(app, demo_db, level) -> None:
    from dashboards.pages import leader

    api = _api(app, f"level={level}&hazard_kind={','.join(KINDS)}")
    with app.server.test_request_context("/leader?lang=en"):
        out = leader.update(level, KINDS, *_weights(), "en")
    with demo_db.engine.connect() as c:
        live = sorted(c.execute(text("SELECT adcode FROM admin_regions WHERE level = :l AND deleted_at IS NULL"),
                                {"l": level}).scalars())
    codes = _codes(out[0])
    assert sorted(codes) == live and len(codes) == len(set(codes))
    assert len(live) == {"prefecture": 12, "county": 103}[level]
    risky = {r["adcode"] for r in api["regions"] if r["risk"] > 0}
    drawn_risky = {f["properties"]["adcode"] for lyr in out[0] for f in lyr.data["features"]
                   if f["properties"]["risk"] > 0}
    assert drawn_risky == risky and risky
    rows = _ranking(out[2])
    assert len(rows) == min(20, len(api["regions"]))
    for row, r in zip(rows, api["regions"], strict=False):
        assert row[2] == f"{r['risk']:,.0f}" and row[3] == f"{r['components']['exposure']:,.0f}"
        # why, in words: the highest warning over the region and the people in the warning areas
        top = min((h for h in api["hazards"] if h["id"] in r["warnings"]),
                  key=lambda h: ["red", "orange", "yellow", "blue"].index(h["warning_level"]))
        assert row[5].startswith(vocab_label("warning_level", top["warning_level"], "en"))
        assert f"{r['components']['population']:,.0f} people" in row[5]
    # no column repeats another: the score (= intensity with the default vulnerability) is gone
    assert len({tuple(col) for col in zip(*rows, strict=True)}) == len(rows[0])
    assert out[4] == t("leader.status", "en", hazards=len(api["hazards"]), regions=len(live),
                       at_risk=len([r for r in api["regions"] if r["adcode"]]))


def test_a_weight_changes_the_ranking_as_the_api_does(app) -> None:
    from dashboards.pages import leader

    before = _api(app, f"level=county&hazard_kind={','.join(KINDS)}")
    after = _api(app, f"level=county&hazard_kind={','.join(KINDS)}&w_orange=0.3&w_yellow=0.3&w_blue=0.1")
    assert [r["risk"] for r in before["regions"]] != [r["risk"] for r in after["regions"]]
    with app.server.test_request_context("/leader?lang=zh-CN"):
        out = leader.update("county", KINDS, *_weights(orange=0.3, yellow=0.3, blue=0.1), "zh-CN")
        text_ = str(out[3])
        bad = leader.update("county", KINDS, *_weights(yellow=0.9), "zh-CN")
    assert [r[2] for r in _ranking(out[2])] == [f"{r['risk']:,.0f}" for r in after["regions"][:20]]
    assert "0.3" in text_ and "致灾强度" in text_  # the weights in plain words, in the page's language
    # a refused weight is said in the page's language, naming the weight by its label (not the model's name)
    assert "预警权重不能为" in bad[4] and not re.search("[A-Za-z]", bad[4]), bad[4]
    assert leader.reset_weights(1) == tuple(DEFAULTS[n] for n in leader.WEIGHT_NAMES)


def test_detail_cells_only_when_zoomed_in_and_inside_the_view(app) -> None:
    from dashboards.pages import leader

    api = _api(app, f"level=prefecture&hazard_kind={','.join(KINDS)}")
    assert api["hazards"]
    with app.server.test_request_context("/leader?lang=en"):
        assert leader.detail(5, [[37, 97], [53, 126]], "prefecture", KINDS, *_weights(), "en") == []
        # zoomed in on the demo's earthquake (Baotou)
        box = [[40.3, 109.4], [41.0, 110.6]]
        layers = leader.detail(9, box, "prefecture", KINDS, *_weights(), "en")
    feats = [f for lyr in layers for f in lyr.data["features"]]
    assert 0 < len(feats) <= leader.MAX_DETAIL_CELLS
    import h3

    for f in feats[:200]:
        lon, lat = sum(p[0] for p in f["geometry"]["coordinates"][0][:-1]) / 6, \
            sum(p[1] for p in f["geometry"]["coordinates"][0][:-1]) / 6
        assert 109.3 <= lon <= 110.7 and 40.2 <= lat <= 41.1
        assert h3.get_resolution(h3.latlng_to_cell(lat, lon, 7)) == 7


def test_trend_counts_equal_postgis(app, demo_db) -> None:
    from dashboards.pages import leader
    from dashboards.services.trend import incident_trend

    now = datetime.now(UTC)
    with app.server.test_request_context("/leader?lang=en"):
        from dashboards.context import db_engine

        with db_engine().connect() as conn:
            trend = incident_trend(conn, days=7, now=now)
        fig = leader.trend_figure(trend, "en")
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=6)
    with demo_db.engine.connect() as c:
        rows = c.execute(text(
            "SELECT r.adcode, floor(extract(epoch FROM i.occurred_at - :s) / 86400)::int AS d, count(*) "
            "FROM incidents i JOIN admin_regions r ON r.level = 'prefecture' AND ST_Intersects(r.geom, i.geom) "
            "WHERE i.deleted_at IS NULL AND i.occurred_at >= :s GROUP BY 1, 2"), {"s": start}).all()
    expect: dict[str, list[int]] = {}
    for code, d, n in rows:
        if d < 7:
            expect.setdefault(code, [0] * 7)[d] += n
    assert trend["counts"] == expect and sum(map(sum, expect.values())) > 0
    assert sum(sum(b.y) for b in fig.data) == sum(map(sum, expect.values())) + sum(trend["outside"])
    # the days in the page's language (Plotly's own date ticks would say "Dec" on a Chinese page)
    days = trend["days"]
    assert list(fig.data[0].x) == [f"{d.day} {d.strftime('%b')}" for d in days]
    assert list(leader.trend_figure(trend, "zh-CN").data[0].x) == [f"{d.month}月{d.day}日" for d in days]


def test_layout_shows_every_weight_with_its_label(app) -> None:
    from dashboards.pages import leader

    with app.server.test_request_context("/leader?lang=en"):
        comps = {getattr(c, "id", None): c for c in leader.layout(lang="en")._traverse()}
    labels = RiskWeights().to_dict()["labels"]
    for n in leader.WEIGHT_NAMES:
        assert comps[ids.leader_weight(n)].value == DEFAULTS[n]
    texts = [c for c in leader.layout(lang="en")._traverse()
             if str(getattr(c, "htmlFor", None) or "").startswith(ids.LEADER_WEIGHT_PREFIX)]
    assert sorted(c.children for c in texts) == sorted(labels[n]["en"] for n in leader.WEIGHT_NAMES)
