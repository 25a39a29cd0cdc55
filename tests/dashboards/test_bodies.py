"""Request bodies checked once, against the schema the OpenAPI document shows (``dashboards.api.openapi``).

Without a database: the refusals are raised before a view runs. Each names the field by its path, the value
received and what is allowed, with the status and code the API always gave.
"""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.api import declare_endpoints, openapi
from dashboards.errors import ApiError


def _ep(rule: str, method: str = "POST") -> openapi.Endpoint:
    declare_endpoints()
    return openapi.REGISTRY[(rule, method)]


def _refused(rule: str, body: Any, method: str = "POST") -> ApiError:
    with pytest.raises(ApiError) as e:
        openapi.validate_body(_ep(rule, method), body)
    assert e.value.field and e.value.allowed
    return e.value


def test_defaults_are_filled_and_a_valid_body_passes() -> None:
    body = openapi.validate_body(_ep("/analysis/impact"), {"geometry": {"center": [111.7, 40.8], "radius_m": 100}})
    assert body["res"] == 8 and body["shelter_distance_m"] == 5000
    assert openapi.validate_body(_ep("/annotations/<int:annotation_id>", "PATCH"), {"label": "x"}) == {"label": "x"}


@pytest.mark.parametrize(("rule", "body", "field", "status", "code"), [
    ("/analysis/impact", {"geometry": {"center": [111.7, 40.8], "radius_m": 0}}, "geometry.radius_m", 400,
     "invalid_parameter"),
    ("/analysis/impact", {"geometry": {"center": [111.7, 40.8], "radius_m": 1, "x": 1}}, "geometry.x", 400,
     "unknown_parameter"),
    ("/analysis/impact", {"geometry": {"type": "Polygon", "coordinates": []}, "res": 4}, "res", 400,
     "invalid_resolution"),
    ("/analysis/impact", {"res": 8}, "geometry", 400, "missing_parameter"),
    ("/analysis/impact", [1, 2], "body", 400, "invalid_parameter"),
    ("/analysis/buffer", {"geometry": {"type": "Point", "coordinates": [1, 2]}, "distances_m": [1, float("nan")]},
     "distances_m", 400, "invalid_parameter"),
    ("/analysis/nearest", {"points": [[111.7, 40.8]], "kind": ["ambulance", "tank"]}, "kind", 400, "unknown_kind"),
    ("/analysis/nearest", {"points": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}}]}},
     "points.features[0].geometry.type", 400, "invalid_parameter"),
    ("/analysis/nearest", {"points": [[111.7, 40.8]] * 100_001}, "points", 400, "too_many_points"),
    ("/analysis/shelter-coverage", {"scope": {"adcode": 150200}}, "scope.adcode", 400, "invalid_parameter"),
    ("/impact-zones", {"zones": [{"geometry": {"center": [111.7, 40.8], "radius_m": 1}, "kind": "blob"}]},
     "zones[0].kind", 422, "validation_error"),
    ("/annotations", {"geometry": {"type": "Point", "coordinates": [1, 2]}, "symbol": "unicorn"}, "symbol", 422,
     "validation_error"),
    ("/layers/<layer>", {"type": "FeatureCollection", "features": [{"type": "Feature"}]}, "features[0].geometry",
     422, "missing_parameter"),
])
def test_a_refusal_names_the_field_by_its_path(rule: str, body: Any, field: str, status: int, code: str) -> None:
    e = _refused(rule, body)
    assert (e.field, e.status, e.code) == (field, status, code), e.detail


def test_what_is_allowed_comes_from_the_schema() -> None:
    assert _refused("/analysis/impact", {"geometry": {"center": [1, 2], "radius_m": 0}}).allowed == \
        "a number in (0, 500000]"
    assert _refused("/analysis/impact", {"geometry": {"type": "Point"}, "res": 11}).allowed == "an integer in 5..10"
    e = _refused("/analysis/shelter-coverage", {"scope": {"adcode": "150200"}, "kinds": ["tent"]})
    assert e.field == "kinds" and e.value == "tent" and "fixed" in e.allowed
    e = _refused("/analysis/buffer", {"geometry": {"type": "Point", "coordinates": [1, 2]}, "distances_m": [1],
                                      "colour": "red"})
    assert e.allowed == ["geometry", "distances_m", "segments"] and e.value == "red"
