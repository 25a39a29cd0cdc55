"""Settings for the store and the server, read once from the environment (``SITROOM_*``).

Public: :class:`Settings`, :func:`get_settings`, :data:`OTHER_VARIABLES`.

A ``SITROOM_*`` variable in the environment that is neither a setting nor one of :data:`OTHER_VARIABLES` stops the
start, naming it: a misspelt ``SITROOM_DATABSE_URL`` would otherwise leave ``database_url`` unset and send every
command to the private cluster without a word.

>>> Settings(service_area=(73, 18, 74, 19)).service_area
(73.0, 18.0, 74.0, 19.0)
>>> Settings(service_area=(74, 18, 73, 19))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: service_area must be west,south,east,north in degrees ...
"""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geoops.validate import DEFAULT_MAX_HAZARD_AREA_KM2, DEFAULT_SERVICE_AREA
from layers.store.vocab import keys as vocab_keys

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "SITROOM_"
#: average travel speed of each resource kind from its base to a scene, km/h (roads of a wide region, start-up
#: included; a boat or an excavator travels on a trailer); a deployment sets its own with SITROOM_ETA_SPEED_KMH
DEFAULT_ETA_SPEED_KMH: dict[str, float] = {
    "rescue_team": 50.0, "fire_engine": 45.0, "ambulance": 55.0, "medical_team": 50.0, "supply_depot": 40.0,
    "helicopter": 180.0, "excavator": 25.0, "generator": 40.0, "boat": 40.0,
}
#: kinds that do not follow roads: their detour factor is 1 unless SITROOM_ETA_DETOUR_BY_KIND says otherwise
DEFAULT_ETA_DETOUR_BY_KIND: dict[str, float] = {"helicopter": 1.0}

#: ``SITROOM_*`` variables that are not settings but are read where they are used, and why each is not a setting
OTHER_VARIABLES: dict[str, str] = {
    "SITROOM_VOCAB_FILE": "extra vocabulary keys, read by layers/store/vocab.py when the vocabularies load, before "
                          "any settings exist",
    "SITROOM_TEST_DATABASE_URL": "tests: the PostGIS server the test suite uses instead of the private cluster",
    "SITROOM_TEST_DB": "tests: the name of the test database (default sitroom_test_<pid>)",
    "SITROOM_TESTS_NEED_DB": "tests: a missing PostGIS or Chromium fails the run instead of skipping (make test)",
    "SITROOM_SCREENSHOT_DIR": "tests: where the browser tests save the README's screenshots",
    "SITROOM_CHROMIUM": "tests: the Chromium the browser tests drive (default /usr/bin/chromium)",
    "SITROOM_CHROMEDRIVER": "tests: its ChromeDriver (default /usr/bin/chromedriver)",
}


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
    view_area: tuple[float, float, float, float] | None = Field(
        default=None,
        description="West, south, east, north: what every map shows when it opens (default: the service area). "
                    "The demo shows Inner Mongolia inside a service area of all China.",
    )
    max_zone_area_km2: float = Field(default=200_000.0, gt=0)
    # Largest hazard the analyses cover cell by cell (writes of larger ones are refused; stored ones are skipped).
    max_hazard_area_km2: float = Field(default=DEFAULT_MAX_HAZARD_AREA_KM2, gt=0)
    max_upload_mb: float = Field(default=200.0, gt=0)
    basemap: str = Field(
        default="offline",
        description="The maps' basemap: offline (Natural Earth, drawn here), osm, tianditu, or site:<name> for an "
                    "MBTiles/PMTiles basemap registered with `sitroom basemap add`.",
    )
    basemap_dir: Path | None = Field(default=None, description="Site basemaps (default: <state_dir>/basemaps).")
    tianditu_key: str | None = None
    secret_key: str | None = None
    # Reverse proxies in front of the server whose X-Forwarded-For/-Proto/-Host are trusted (0: none; 1: one nginx).
    proxy_hops: int = Field(default=0, ge=0, le=5)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_variables(cls, values: object) -> object:
        """Refuse a ``SITROOM_*`` environment variable that nothing reads (pydantic-settings' ``extra="forbid"``
        covers keyword arguments only), naming it and the closest known name."""
        known = {ENV_PREFIX + name.upper() for name in cls.model_fields} | set(OTHER_VARIABLES)
        # pydantic-settings matches names case-insensitively: sitroom_mode sets mode, so sitroom_bogus is checked too
        unknown = sorted(k for k in os.environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
        if unknown:
            lines = []
            for name in unknown:
                near = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.75)
                lines.append(f"{name}" + (f" (did you mean {near[0]}?)" if near else ""))
            raise ValueError(
                "unknown SITROOM_* environment variable" + ("s" if len(unknown) > 1 else "") + ": "
                + "; ".join(lines) + ". Settings: " + ", ".join(sorted(k for k in known if k not in OTHER_VARIABLES))
                + "; also read: " + ", ".join(sorted(OTHER_VARIABLES)) + " (layers/store/settings.py)")
        return values

    # The situation report's letterhead: issuing unit (签发单位), who signs it off (签发人), and its number
    # (编号), formatted with the year and the report's sequence number within the year.
    report_unit: str = Field(default="应急管理综合指挥中心（演练）", max_length=80)
    report_unit_en: str = Field(default="Emergency Command Centre (drill)", max_length=80)
    report_signer: str = Field(default="", max_length=40)
    report_number_format: str = Field(default="{year}-{n:03d}", max_length=60)

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

    @field_validator("report_number_format")
    @classmethod
    def _check_number_format(cls, v: str) -> str:
        try:
            v.format(year=2026, n=1)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"report_number_format may use {{year}} and {{n}}, got {v!r} ({e})") from None
        return v

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
