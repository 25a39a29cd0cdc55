"""geoops.validate: every rejection names the field, the value received and what is allowed."""

from __future__ import annotations

import json
import math

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Point, Polygon

from geoops.errors import CRSError, GeoOpsError, InvalidGeometryError, InvalidParameterError
from geoops.validate import check_geometry, parse_geojson_geometry

G = Geod(ellps="WGS84")


def _area(geom):
    return sum(
        abs(G.geometry_area_perimeter(shapely.geometry.polygon.orient(p))[0]) for p in shapely.get_parts(geom)
    )


# -------------------------------------------------------------------------------------- check_geometry


def test_valid_geometries_pass_unchanged():
    for g in (
        Point(116.4, 39.9),
        LineString([(110, 40), (125, 42)]),
        Polygon([(116, 40), (117, 40), (117, 41), (116, 41)]),
    ):
        out, notes = check_geometry(g)
        assert out.equals(g) and notes == []


@pytest.mark.parametrize(
    "geom,code,fragment",
    [
        (
            Point(39.9, 116.4),
            "lonlat_swapped",
            "lat in [-90, 90]",
        ),  # lat 116 is out of range; swapped is Beijing
        (
            Polygon([(40, 80), (41, 80), (41, 81), (40, 81)]),
            "lonlat_swapped",
            "service area",
        ),  # in range, swapped inside
        (Point(200.0, 40.0), "coordinates_out_of_range", "lon in [-180, 180]"),
        (Point(2.35, 48.85), "outside_service_area", "lon in [73, 135.5]"),  # Paris
        (LineString([(116, 40), (140, 40)]), "outside_service_area", "lat in [18, 54]"),
        (Point(float("nan"), 40.0), "coordinates_not_finite", "finite"),
        (LineString([(116, 40), (117, float("inf"))]), "coordinates_not_finite", "finite"),
        (Polygon(), "geometry_empty", "coordinates"),
        ("POLYGON ((116 40, 117 40, 117 41, 116 40))", "not_a_geometry", "Polygon"),
    ],
)
def test_rejections_name_field_value_and_allowed(geom, code, fragment):
    with pytest.raises(InvalidGeometryError) as exc:
        check_geometry(geom, field="zone.geometry")
    e = exc.value
    assert isinstance(e, ValueError) and isinstance(e, GeoOpsError)
    assert e.code == code and e.field == "zone.geometry"
    text = str(e)
    assert text.startswith("zone.geometry:") and "got " in text and "allowed:" in text and fragment in text
    if code == "lonlat_swapped":
        assert "looks like lon/lat swapped" in text


def test_swapped_reported_only_when_swapping_helps_and_service_area_is_configurable():
    with pytest.raises(InvalidGeometryError) as exc:
        check_geometry(Point(10.0, 60.0))  # swapped (60, 10) is outside too
    assert exc.value.code == "outside_service_area" and "swapped" not in str(exc.value)
    out, _ = check_geometry(Point(10.0, 60.0), service_area=None)
    assert out.equals(Point(10.0, 60.0))
    out, _ = check_geometry(Point(2.35, 48.85), service_area=(-10, 35, 30, 60))
    assert out.x == 2.35
    with pytest.raises(InvalidParameterError) as exc:
        check_geometry(Point(116, 40), service_area=(135, 18, 73, 54))
    assert exc.value.field == "service_area"


def test_too_many_vertices():
    ring = shapely.segmentize(Polygon([(116, 40), (117, 40), (117, 41), (116, 41)]), 0.01)
    n = len(shapely.get_coordinates(ring))
    with pytest.raises(InvalidGeometryError) as exc:
        check_geometry(ring, max_vertices=100)
    assert exc.value.code == "too_many_vertices" and f"{n} vertices" in str(exc.value)
    assert "at most 100" in str(exc.value)
    assert check_geometry(ring, max_vertices=n)[0] is ring


def test_bow_tie_is_rejected_with_the_reason_and_field():
    bow_tie = Polygon([(116, 40), (117, 41), (117, 40), (116, 41), (116, 40)])
    assert not bow_tie.is_valid
    with pytest.raises(InvalidGeometryError) as exc:
        check_geometry(bow_tie, field="geometry")
    e = exc.value
    assert e.code == "invalid_unrepairable" and e.field == "geometry"
    assert "Self-intersection[116.5 40.5]" in str(e) and "POLYGON" in str(e) and "1%" in e.allowed


@pytest.mark.parametrize(
    "coords",
    [
        # a ring that touches itself at one vertex (a hole drawn as part of the exterior)
        [(116, 40), (117, 40), (117, 41), (116.5, 41), (116.7, 40.5), (116.3, 40.5), (116.5, 41), (116, 41)],
        # a tiny loop at one corner of a 1 x 1 degree square
        [(116, 40), (117, 40), (117, 41), (116, 41), (116.01, 41.01), (116.01, 40.99), (116, 40)],
    ],
)
def test_self_intersection_repaired_when_area_kept(coords):
    g = Polygon(coords)
    assert not g.is_valid
    out, notes = check_geometry(g)
    assert out.is_valid and out.geom_type in ("Polygon", "MultiPolygon")
    assert len(notes) == 1 and notes[0].startswith("repaired: ") and "Self-intersection" in notes[0]
    # independent check of the 1 % rule: the repaired area vs the area of the same shape drawn validly
    valid_area = _area(shapely.make_valid(g))
    assert _area(out) == pytest.approx(valid_area, rel=1e-9)


def test_overlapping_multipolygon_rejected_when_repair_changes_area():
    a = Polygon([(116, 40), (117, 40), (117, 41), (116, 41)])
    b = Polygon([(116.5, 40), (117.5, 40), (117.5, 41), (116.5, 41)])
    with pytest.raises(InvalidGeometryError) as exc:
        check_geometry(MultiPolygon([a, b]))
    assert "repair would change the area" in str(exc.value)


def test_invalid_collection_is_rejected():
    bow_tie = Polygon([(116, 40), (117, 41), (117, 40), (116, 41), (116, 40)])
    with pytest.raises(InvalidGeometryError) as exc:
        check_geometry(GeometryCollection([bow_tie, Point(116, 40)]))
    assert exc.value.code == "invalid_unrepairable"


def test_z_is_dropped():
    out, notes = check_geometry(Point(116.4, 39.9, 50.0))
    assert not out.has_z and notes == []


# ------------------------------------------------------------------------------------------------ GeoJSON


def test_parse_all_geometry_types_and_feature_and_string():
    objs = [
        {"type": "Point", "coordinates": [116.4, 39.9, 44.0]},
        {"type": "MultiPoint", "coordinates": [[116.4, 39.9], [117, 40]]},
        {"type": "LineString", "coordinates": [[116.4, 39.9], [117, 40]]},
        {"type": "MultiLineString", "coordinates": [[[116.4, 39.9], [117, 40]], [[118, 41], [119, 42]]]},
        {
            "type": "Polygon",
            "coordinates": [
                [[116, 40], [117, 40], [117, 41], [116, 40]],
                [[116.5, 40.2], [116.8, 40.2], [116.8, 40.4], [116.5, 40.2]],
            ],
        },
        {"type": "MultiPolygon", "coordinates": [[[[116, 40], [117, 40], [117, 41], [116, 40]]]]},
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [116, 40]}]},
    ]
    for obj in objs:
        g = parse_geojson_geometry(obj)
        assert g.geom_type == obj["type"] and not g.has_z
        assert parse_geojson_geometry(json.dumps(obj)).equals(g)
        assert parse_geojson_geometry({"type": "Feature", "properties": {}, "geometry": obj}).equals(g)
    assert len(parse_geojson_geometry(objs[4]).interiors) == 1


@pytest.mark.parametrize(
    "obj,path,code,fragment",
    [
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
            "zone.coordinates[0]",
            "ring_not_closed",
            "not closed",
        ),
        (
            {"type": "Polygon", "coordinates": [[0, 0], [1, 0], [1, 1], [0, 0]]},
            "zone.coordinates[0]",
            "geojson_malformed",
            "at least 4 positions",
        ),  # LineString nesting given for a Polygon
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
            "zone.coordinates[0]",
            "geojson_malformed",
            "at least 4",
        ),
        (
            {"type": "LineString", "coordinates": [[116, 40]]},
            "zone.coordinates",
            "geojson_malformed",
            "at least 2",
        ),
        ({"type": "Point", "coordinates": ["116", 40]}, "zone.coordinates", "geojson_malformed", "numbers"),
        ({"type": "Point", "coordinates": [[116, 40]]}, "zone.coordinates", "geojson_malformed", "position"),
        ({"type": "Point", "coordinates": [True, 40]}, "zone.coordinates", "geojson_malformed", "numbers"),
        ({"type": "Circle", "coordinates": [116, 40]}, "zone.type", "geojson_malformed", "MultiPolygon"),
        ({"type": "FeatureCollection", "features": []}, "zone.type", "geojson_malformed", "Polygon"),
        ({"coordinates": [116, 40]}, "zone.type", "geojson_malformed", "Point"),
        ({"type": "Point"}, "zone.coordinates", "geojson_malformed", "coordinates"),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6]]]],
            },
            "zone.coordinates[1][0]",
            "geojson_malformed",
            "at least 4",
        ),
        ({"type": "Feature", "geometry": None}, "zone.geometry", "geojson_malformed", "GeoJSON geometry"),
        ([116, 40], "zone", "not_a_geometry", "GeoJSON geometry object"),
        ("{not json", "zone", "not_a_geometry", "GeoJSON geometry object"),
    ],
)
def test_malformed_geojson_names_the_path(obj, path, code, fragment):
    with pytest.raises(InvalidGeometryError) as exc:
        parse_geojson_geometry(obj, field="zone")
    e = exc.value
    assert (e.field, e.code) == (path, code)
    assert fragment in str(e) and "allowed:" in str(e)


def test_geojson_crs_member():
    pt = {"type": "Point", "coordinates": [116.4, 39.9]}
    ok = pt | {"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}}
    assert parse_geojson_geometry(ok).equals(Point(116.4, 39.9))
    bad = pt | {"crs": {"type": "name", "properties": {"name": "EPSG:3857"}}}
    with pytest.raises(CRSError) as exc:
        parse_geojson_geometry(bad)
    assert (
        exc.value.field == "geometry.crs" and "EPSG:3857" in str(exc.value) and "CRS84" in exc.value.allowed
    )


def test_parse_then_check_flags_swapped_coordinates():
    g = parse_geojson_geometry({"type": "Point", "coordinates": [39.9, 116.4]}, field="centre")
    with pytest.raises(InvalidGeometryError, match="looks like lon/lat swapped") as exc:
        check_geometry(g, field="centre")
    d = exc.value.to_dict()
    assert d["field"] == "centre" and d["code"] == "lonlat_swapped" and "39.9" in d["value"]
    assert not math.isnan(float(d["value"].strip("()").split(",")[0]))
