"""Settings for the store and the server, read once from the environment (``SITROOM_*``).

Public: :class:`Settings`, :func:`get_settings`.

>>> Settings(service_area=(73, 18, 74, 19)).service_area
(73.0, 18.0, 74.0, 19.0)
>>> Settings(service_area=(74, 18, 73, 19))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: service_area must be west,south,east,north in degrees ...
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geoops.validate import DEFAULT_SERVICE_AREA
from layers.store.vocab import keys as vocab_keys

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: average travel speed of each resource kind from its base to a scene, km/h (roads of a wide region, start-up
#: included; a boat or an excavator travels on a trailer); a deployment sets its own with SITROOM_ETA_SPEED_KMH
DEFAULT_ETA_SPEED_KMH: dict[str, float] = {
    "rescue_team": 50.0, "fire_engine": 45.0, "ambulance": 55.0, "medical_team": 50.0, "supply_depot": 40.0,
    "helicopter": 180.0, "excavator": 25.0, "generator": 40.0, "boat": 40.0,
}
#: kinds that do not follow roads: their detour factor is 1 unless SITROOM_ETA_DETOUR_BY_KIND says otherwise
DEFAULT_ETA_DETOUR_BY_KIND: dict[str, float] = {"helicopter": 1.0}


class Settings(BaseSettings):
    """All configuration of one Sitroom deployment.

    Every field is read from ``SITROOM_<NAME>``; unknown ``SITROOM_*`` variables are an error at start-up.
    """

    model_config = SettingsConfigDict(env_prefix="SITROOM_", extra="forbid", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an existing PostGIS; unset means the private cluster of `sitroom db up`.",
    )
    state_dir: Path = Field(
        default=PROJECT_ROOT / ".sitroom",
        description="Where the private cluster, its logs and generated rasters live (outside git).",
    )
    tile_cache_dir: Path = Field(default=PROJECT_ROOT / "tile_cache")
    mode: Literal["demo", "development", "production"] = "development"
    language: Literal["zh-CN", "en"] = "zh-CN"
    # Service area: every coordinate a user sends must fall inside (lon/lat swapped is the usual mistake).
    service_area: tuple[float, float, float, float] = DEFAULT_SERVICE_AREA
    max_zone_area_km2: float = Field(default=200_000.0, gt=0)
    max_upload_mb: float = Field(default=200.0, gt=0)
    basemap: Literal["offline", "osm", "tianditu"] = "offline"
    tianditu_key: str | None = None
    secret_key: str | None = None
    # ETA of a resource to a scene (command and dispatch): geodesic distance x detour factor / speed of its kind,
    # both shown with every ETA; road travel time replaces it once a road network is loaded
    eta_detour_factor: float = Field(default=1.3, ge=1.0, le=5.0,
                                     description="road distance / geodesic distance, for kinds that follow roads")
    eta_speed_kmh: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_ETA_SPEED_KMH),
                                            description="speed per resource kind, km/h (missing kinds: defaults)")
    eta_detour_by_kind: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_ETA_DETOUR_BY_KIND),
                                                 description="detour factor of kinds that differ from the default")

    @field_validator("eta_speed_kmh")
    @classmethod
    def _check_speeds(cls, v: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_ETA_SPEED_KMH, **_per_kind(v, "eta_speed_kmh", 0.0, 1000.0, "km/h in (0, 1000]")}

    @field_validator("eta_detour_by_kind")
    @classmethod
    def _check_detours(cls, v: dict[str, float]) -> dict[str, float]:
        return _per_kind(v, "eta_detour_by_kind", 1.0, 5.0, "a factor in [1, 5]", low_inclusive=True)

    @field_validator("service_area")
    @classmethod
    def _check_area(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        west, south, east, north = v
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(f"service_area must be west,south,east,north in degrees, got {v!r}")
        return v


def _per_kind(v: dict[str, float], name: str, low: float, high: float, allowed: str, *,
              low_inclusive: bool = False) -> dict[str, float]:
    """A per-resource-kind setting checked: known kinds only, every value in range (the message names the kind)."""
    kinds = vocab_keys("resource_kind")
    out: dict[str, float] = {}
    for kind, value in v.items():
        if kind not in kinds:
            raise ValueError(f"{name}: unknown resource kind {kind!r}; known: {', '.join(kinds)}")
        x = float(value)
        if not ((low <= x if low_inclusive else low < x) and x <= high):
            raise ValueError(f"{name}.{kind} must be {allowed}, got {value!r}")
        out[kind] = x
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
