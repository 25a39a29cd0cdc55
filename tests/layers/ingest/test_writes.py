"""layers.ingest.writes against a real PostGIS: GeoJSON create-or-update, idempotence, all-or-nothing rejection with the
item index and field, PATCH through the import checks with history, soft delete."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from layers.ingest.writes import delete_feature, features_frame, patch_feature, write_features
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import FeatureHistory, Incident, Resource, Shelter

pytestmark = pytest.mark.db

SRC = "pytest-writes"


def _feature(fid: str | None, lon: float, lat: float, **props: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": props}
    if fid is not None:
        f["id"] = fid
    return f


def _fc(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _count(s: Session, model: Any) -> int:
    return int(s.execute(select(func.count()).select_from(model).where(model.source == SRC)).scalar_one())


def test_feature_and_collection_create_then_update_without_duplicates(session: Session) -> None:
    r = write_features(session, "resources", _feature("boat-1", 111.70, 40.80, kind="冲锋舟", quantity=3),
                       source=SRC, user="pytest")
    assert (r.inserted, r.external_ids) == (1, ["boat-1"])
    fc = _fc(_feature("boat-1", 111.70, 40.80, kind="boat", quantity=3),
             _feature("team-1", 111.60, 40.85, kind="rescue_team", name="蓝天救援队", phone="0471-1"))
    r2 = write_features(session, "resources", fc, source=SRC, user="pytest")
    assert (r2.inserted, r2.updated, r2.unchanged) == (1, 0, 1) and r2.ids[0] == r.ids[0]
    r3 = write_features(session, "resources", fc, source=SRC, user="pytest")
    assert (r3.inserted, r3.updated, r3.unchanged) == (0, 0, 2) and r3.ids == r2.ids
    assert _count(session, Resource) == 2
    team = session.get(Resource, r2.ids[1])
    assert (team.kind, team.status, team.quantity, team.properties) == ("rescue_team", "available", 1,
                                                                          {"phone": "0471-1"})
    assert session.execute(select(func.ST_X(Resource.geom), func.ST_Y(Resource.geom))
                           .where(Resource.id == team.id)).one() == (111.60, 40.85)


def test_items_without_id_are_keyed_by_geometry_and_name(session: Session) -> None:
    f = _feature(None, 111.5, 40.5, kind="fire", name="仓库火情")
    first = write_features(session, "incidents", f, source=SRC)
    again = write_features(session, "incidents", f, source=SRC)
    assert first.inserted == 1 and again.unchanged == 1 and again.ids == first.ids
    assert _count(session, Incident) == 1


def test_one_bad_item_rejects_the_request_naming_index_and_field(session: Session) -> None:
    fc = _fc(_feature("s-1", 111.7, 40.8, kind="fixed", capacity=100),
             _feature("s-2", 111.7, 40.9, kind="palace", capacity=100),
             _feature("s-3", 111.7, 41.0, kind="fixed", capacity=-5),
             {"type": "Feature", "id": "s-4", "geometry": {"type": "Point", "coordinates": [40.8, 111.7]},
              "properties": {"kind": "fixed", "capacity": 5}})
    with pytest.raises(ValidationError) as info:
        write_features(session, "shelters", fc, source=SRC)
    got = {(p.row, p.field) for p in info.value.problems}
    assert got == {(1, "kind"), (2, "capacity"), (3, "geometry")}
    swapped = next(p for p in info.value.problems if p.row == 3)
    assert "swapped" in swapped.allowed
    assert _count(session, Shelter) == 0  # nothing of the request, not even the good item 0


def test_unreadable_items_are_named(session: Session) -> None:
    fc = _fc(_feature("a", 111.7, 40.8, kind="boat"), "not a feature",
             {"type": "Feature", "geometry": {"type": "Point", "coordinates": "x"}, "properties": {"kind": "boat"}})
    with pytest.raises(ValidationError) as info:
        write_features(session, "resources", fc, source=SRC)
    assert {(p.row, p.field) for p in info.value.problems} == {(1, "type"), (2, "geometry.coordinates")}
    with pytest.raises(ValidationError, match="not GeoJSON"):
        write_features(session, "resources", {"type": "Point", "coordinates": [1, 2]}, source=SRC)
    with pytest.raises(NotFoundError):
        write_features(session, "volcanoes", fc, source=SRC)
    assert _count(session, Resource) == 0


def test_patch_status_uses_vocabulary_and_records_history(session: Session) -> None:
    [rid] = write_features(session, "resources", _feature("r-1", 111.7, 40.8, kind="boat"), source=SRC).ids
    out = patch_feature(session, "resources", rid, {"status": "已出动", "properties": {"task": "T-7"}},
                        user="dispatcher")
    assert out["changed"]["status"] == "deployed"
    r = session.get(Resource, rid)
    session.refresh(r)
    assert (r.status, r.properties["task"], r.updated_by) == ("deployed", "T-7", "dispatcher")
    hist = session.execute(select(FeatureHistory.op, FeatureHistory.changed_by, FeatureHistory.row["status"].astext)
                           .where(FeatureHistory.layer == "resources", FeatureHistory.feature_id == rid)
                           .order_by(FeatureHistory.id)).all()
    assert [tuple(h) for h in hist][-1] == ("update", "dispatcher", "deployed")
    assert patch_feature(session, "resources", rid, {"status": "deployed"})["changed"] == {}


def test_patch_rejects_unknown_columns_and_bad_values(session: Session) -> None:
    [sid] = write_features(session, "shelters", _feature("s-1", 111.7, 40.8, kind="fixed", capacity=100),
                           source=SRC).ids
    with pytest.raises(ValidationError) as info:
        patch_feature(session, "shelters", sid, {"geom": "POINT (0 0)", "occupancy": 5})
    assert info.value.problems[0].field == "geom" and "occupancy" in info.value.problems[0].allowed
    with pytest.raises(ValidationError) as info:
        patch_feature(session, "shelters", sid, {"occupancy": -1})
    assert info.value.problems[0].field == "occupancy"
    out = patch_feature(session, "shelters", sid, {"occupancy": 40})
    assert out["changed"] == {"occupancy": 40}
    assert session.get(Shelter, sid).occupancy == 40
    with pytest.raises(NotFoundError):
        patch_feature(session, "shelters", 10**12, {"occupancy": 1})


def test_delete_is_soft_and_idempotent(session: Session) -> None:
    [iid] = write_features(session, "incidents", _feature("i-1", 111.7, 40.8, kind="fire"), source=SRC).ids
    first = delete_feature(session, "incidents", iid, user="pytest")
    second = delete_feature(session, "incidents", iid, user="pytest")
    assert first["already_deleted"] is False and second["already_deleted"] is True
    assert first["deleted_at"] == second["deleted_at"]
    row = session.get(Incident, iid)
    session.refresh(row)
    assert row.deleted_at is not None  # the row keeps
    with pytest.raises(NotFoundError):
        patch_feature(session, "incidents", iid, {"status": "closed"})
    # re-posting the feature brings it back (an upsert clears deleted_at), still one row
    write_features(session, "incidents", _feature("i-1", 111.7, 40.8, kind="fire"), source=SRC)
    session.refresh(row)
    assert row.deleted_at is None and _count(session, Incident) == 1


def test_features_frame_keeps_nested_properties() -> None:
    gdf, bad = features_frame(_fc(_feature("x", 111.0, 40.0, kind="boat", crew=["a", "b"], meta={"k": 1})))
    assert bad == [] and gdf["crew"].iloc[0] == ["a", "b"] and gdf["meta"].iloc[0] == {"k": 1}
