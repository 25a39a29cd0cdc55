"""Settings for the store and the server, read once from the environment (``SITROOM_*``).

Public: :class:`Settings`, :func:`get_settings`.

>>> Settings(service_area=(73, 18, 74, 19)).service_area
(73.0, 18.0, 74.0, 19.0)
>>> Settings(service_area=(74, 18, 73, 19))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: service_area must be west,south,east,north in degrees ...
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geoops.validate import DEFAULT_SERVICE_AREA

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
    mode: Literal["demo", "development", "production"] = "development"
    language: Literal["zh-CN", "en"] = "zh-CN"
    # Service area: every coordinate a user sends must fall inside (lon/lat swapped is the usual mistake).
    service_area: tuple[float, float, float, float] = DEFAULT_SERVICE_AREA
    view_area: tuple[float, float, float, float] | None = Field(
        default=None,
        description="West, south, east, north: what every map shows when it opens (default: the service area). "
                    "The demo shows Inner Mongolia inside a service area of all China.",
    )
    max_zone_area_km2: float = Field(default=200_000.0, gt=0)
    max_upload_mb: float = Field(default=200.0, gt=0)
    basemap: str = Field(
        default="offline",
        description="The maps' basemap: offline (Natural Earth, drawn here), osm, tianditu, or site:<name> for an "
                    "MBTiles/PMTiles basemap registered with `sitroom basemap add`.",
    )
    basemap_dir: Path | None = Field(default=None, description="Site basemaps (default: <state_dir>/basemaps).")
    tianditu_key: str | None = None
    secret_key: str | None = None

    @field_validator("service_area", "view_area")
    @classmethod
    def _check_area(cls, v: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if v is None:
            return v
        west, south, east, north = v
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(f"service_area / view_area must be west,south,east,north in degrees, got {v!r}")
        return v

    @field_validator("basemap")
    @classmethod
    def _check_basemap(cls, v: str) -> str:
        if v in ("offline", "osm", "tianditu") or re.fullmatch(r"site:[a-z][a-z0-9_-]{0,39}", v):
            return v
        raise ValueError(f"basemap must be offline, osm, tianditu or site:<name> (a lower-case name), got {v!r}")

    @property
    def view_bbox(self) -> tuple[float, float, float, float]:
        """What the maps show first: ``view_area``, else ``service_area``."""
        return self.view_area or self.service_area

    @property
    def basemaps_path(self) -> Path:
        """Where site basemaps are registered."""
        return self.basemap_dir or self.state_dir / "basemaps"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
