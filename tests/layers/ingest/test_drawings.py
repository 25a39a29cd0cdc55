"""layers.ingest.drawings against a real PostGIS: save, edit and soft-delete leave history rows naming the user; bad input is
rejected naming the field and writes nothing; a drawn circle saved as a zone has its vertices at the geodesic radius
(checked with pyproj.Geod directly, not through geoops)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import func, select, text

from geoops import geodesic
from geoops.errors import InvalidGeometryError
from layers.ingest import drawings
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import Annotation, FeatureHistory, ImpactZone

pytestmark = pytest.mark.db

SQUARE = {"type": "Polygon", "coordinates": [[[111.6, 40.8], [111.7, 40.8], [111.7, 40.9], [111.6, 40.9],
                                              [111.6, 40.8]]]}


def history(session, layer: str, feature_id: int) -> list[tuple[str, str, dict]]:
    rows = session.execute(select(FeatureHistory.op, FeatureHistory.changed_by, FeatureHistory.row)
                           .where(FeatureHistory.layer == layer, FeatureHistory.feature_id == feature_id)
                           .order_by(FeatureHistory.id)).all()
    return [tuple(r) for r in rows]


def test_zone_save_edit_soft_delete_keeps_history_with_the_user(session) -> None:
    z = drawings.save_zone(session, SQUARE, user="analyst-li", kind="drawn", name="北郊")
    assert z["kind"] == "drawn" and z["updated_by"] == "analyst-li" and z["geometry"]["type"] == "MultiPolygon"
    # the stored area is the geodesic area (PostGIS geography is the independent oracle)
    pg_area = session.execute(select(func.ST_Area(func.geography(ImpactZone.geom)))
                              .where(ImpactZone.id == z["id"])).scalar_one()
    assert z["properties"]["area_m2"] == pytest.approx(pg_area, rel=1e-6)

    drawings.update_zone(session, z["id"], user="analyst-wang", name="北郊 (改)")
    gone = drawings.delete_zone(session, z["id"], user="analyst-zhao")
    assert gone["deleted_at"] is not None
    assert z["id"] not in [x["id"] for x in drawings.list_zones(session)]
    with pytest.raises(NotFoundError):
        drawings.get_zone(session, z["id"])
    # the row itself is still there (soft delete), and every version is in the history with its user
    assert session.get(ImpactZone, z["id"]) is not None
    h = history(session, "impact_zones", z["id"])
    assert [(op, who) for op, who, _ in h] == [("insert", "analyst-li"), ("update", "analyst-wang"),
                                               ("delete", "analyst-zhao")]
    assert h[0][2]["name"] == "北郊" and h[1][2]["name"] == "北郊 (改)"


def test_annotation_save_edit_delete_and_history(session) -> None:
    a = drawings.save_annotation(session, {"type": "Point", "coordinates": [111.65, 40.82]}, user="analyst-li",
                                 symbol="command_post", label="前方指挥部", color="#1E88E5")
    assert (a["symbol"], a["label"], a["color"]) == ("command_post", "前方指挥部", "#1e88e5")
    assert a["id"] in [x["id"] for x in drawings.list_annotations(session)]
    b = drawings.update_annotation(session, a["id"], user="analyst-wang", label="指挥部", symbol="medical_point",
                                   color="#43a047")
    assert (b["symbol"], b["label"], b["color"], b["updated_by"]) == ("medical_point", "指挥部", "#43a047",
                                                                      "analyst-wang")
    drawings.delete_annotation(session, a["id"], user="analyst-zhao")
    assert a["id"] not in [x["id"] for x in drawings.list_annotations(session)]
    with pytest.raises(NotFoundError):
        drawings.update_annotation(session, a["id"], user="x", label="too late")
    h = history(session, "annotations", a["id"])
    assert [(op, who) for op, who, _ in h] == [("insert", "analyst-li"), ("update", "analyst-wang"),
                                               ("delete", "analyst-zhao")]
    assert [r["kind"] for _, _, r in h] == ["command_post", "medical_point", "medical_point"]
    # lines and areas are annotations too (an evacuation route)
    line = drawings.save_annotation(session, {"type": "LineString", "coordinates": [[111.6, 40.8], [111.7, 40.85]]},
                                    user="analyst-li", symbol="evacuation_route")
    assert line["geometry"]["type"] == "LineString"


@pytest.mark.parametrize(("call", "field"), [
    (lambda s: drawings.save_zone(s, {"type": "Polygon", "coordinates": [[[111, 40], [112, 40], [112, 41]]]},
                                  user="u"), "geometry"),
    (lambda s: drawings.save_zone(s, {"type": "Point", "coordinates": [111, 40]}, user="u"), "geometry"),
    (lambda s: drawings.save_zone(s, {"type": "Point", "coordinates": [40.8, 111.6]}, user="u"), "geometry"),
    (lambda s: drawings.save_annotation(s, {"type": "Point", "coordinates": [200, 40]}, user="u", symbol="fire"),
     "geometry"),
])
def test_invalid_geometry_rejected_naming_the_field(session, call, field) -> None:
    before = session.execute(select(func.count()).select_from(ImpactZone)).scalar_one()
    with pytest.raises(InvalidGeometryError) as e:
        call(session)
    assert e.value.field.startswith(field) and str(e.value).startswith(e.value.field + ":")
    assert session.execute(select(func.count()).select_from(ImpactZone)).scalar_one() == before


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"symbol": "unicorn"}, "symbol"),
    ({"symbol": "fire", "color": "red"}, "color"),
    ({"symbol": "fire", "label": "x" * 500}, "label"),
    ({"symbol": "fire", "user": ""}, "user"),
])
def test_bad_annotation_fields_rejected_naming_the_field(session, kwargs, field) -> None:
    kwargs = {"user": "u", **kwargs}
    before = session.execute(select(func.count()).select_from(Annotation)).scalar_one()
    with pytest.raises(ValidationError) as e:
        drawings.save_annotation(session, {"type": "Point", "coordinates": [111.6, 40.8]}, **kwargs)
    assert e.value.problems[0].field == field and repr(field) in str(e.value)
    assert session.execute(select(func.count()).select_from(Annotation)).scalar_one() == before


def test_one_bad_zone_saves_none(session) -> None:
    before = session.execute(select(func.count()).select_from(ImpactZone)).scalar_one()
    with pytest.raises(ValidationError) as e:
        drawings.save_zones(session, [{"geometry": SQUARE, "kind": "ring"},
                                      {"geometry": SQUARE, "kind": "volcano"}], user="u")
    assert e.value.problems[0].field == "zones[1].kind"
    assert session.execute(select(func.count()).select_from(ImpactZone)).scalar_one() == before


@pytest.mark.parametrize(("lon", "lat", "radius_m"), [(111.65, 40.82, 3000.0), (121.0, 50.5, 25_000.0),
                                                      (97.0, 41.0, 150.0)])
def test_circle_zone_vertices_at_the_geodesic_radius(session, lon, lat, radius_m) -> None:
    circle = geodesic.circle(lon, lat, radius_m=radius_m)
    z = drawings.save_zone(session, circle, user="u", kind="circle",
                           properties={"center": [lon, lat], "radius_m": radius_m})
    # read back what PostGIS stored and measure with pyproj.Geod directly
    stored = json.loads(session.execute(select(func.ST_AsGeoJSON(ImpactZone.geom, 15))
                                        .where(ImpactZone.id == z["id"])).scalar_one())
    ring = np.asarray(stored["coordinates"][0][0], dtype=float)
    assert stored["type"] == "MultiPolygon" and ring.shape[0] >= 65
    _, _, d = Geod(ellps="WGS84").inv(np.full(len(ring), lon), np.full(len(ring), lat), ring[:, 0], ring[:, 1])
    assert np.max(np.abs(d - radius_m)) < 1e-3  # every stored vertex within a millimetre of the radius
    assert z["properties"]["radius_m"] == radius_m


def test_history_user_comes_from_the_session_setting_too(session) -> None:
    z = drawings.save_zone(session, SQUARE, user="analyst-li")
    who = session.execute(text("SELECT current_setting('sitroom.user', true)")).scalar_one()
    assert who == "analyst-li" and history(session, "impact_zones", z["id"])[0][1] == "analyst-li"
