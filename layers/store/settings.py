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

from geoops.validate import DEFAULT_MAX_HAZARD_AREA_KM2, DEFAULT_SERVICE_AREA

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    # Most the basemap tile cache may hold; beyond it, tiles rendered on demand are served but not written.
    tile_cache_max_mb: float = Field(default=2048.0, gt=0)
    mode: Literal["demo", "development", "production"] = "development"
    language: Literal["zh-CN", "en"] = "zh-CN"
    # Service area: every coordinate a user sends must fall inside (lon/lat swapped is the usual mistake).
    service_area: tuple[float, float, float, float] = DEFAULT_SERVICE_AREA
    max_zone_area_km2: float = Field(default=200_000.0, gt=0)
    # Largest hazard the analyses cover cell by cell (writes of larger ones are refused; stored ones are skipped).
    max_hazard_area_km2: float = Field(default=DEFAULT_MAX_HAZARD_AREA_KM2, gt=0)
    max_upload_mb: float = Field(default=200.0, gt=0)
    basemap: Literal["offline", "osm", "tianditu"] = "offline"
    tianditu_key: str | None = None
    secret_key: str | None = None
    # Reverse proxies in front of the server whose X-Forwarded-For/-Proto/-Host are trusted (0: none; 1: one nginx).
    proxy_hops: int = Field(default=0, ge=0, le=5)

    @field_validator("service_area")
    @classmethod
    def _check_area(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        west, south, east, north = v
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(f"service_area must be west,south,east,north in degrees, got {v!r}")
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
