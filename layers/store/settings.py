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
    max_zone_area_km2: float = Field(default=200_000.0, gt=0)
    max_upload_mb: float = Field(default=200.0, gt=0)
    basemap: Literal["offline", "osm", "tianditu"] = "offline"
    tianditu_key: str | None = None
    secret_key: str | None = None
    # The situation report's letterhead: issuing unit (签发单位), who signs it off (签发人), and its number
    # (编号), formatted with the year and the report's sequence number within the year.
    report_unit: str = Field(default="应急管理综合指挥中心（演练）", max_length=80)
    report_unit_en: str = Field(default="Emergency Command Centre (drill)", max_length=80)
    report_signer: str = Field(default="", max_length=40)
    report_number_format: str = Field(default="{year}-{n:03d}", max_length=60)

    @field_validator("report_number_format")
    @classmethod
    def _check_number_format(cls, v: str) -> str:
        try:
            v.format(year=2026, n=1)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"report_number_format may use {{year}} and {{n}}, got {v!r} ({e})") from None
        return v

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
