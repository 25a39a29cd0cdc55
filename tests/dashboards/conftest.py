"""Shared fixtures of the dashboard tests: the offline demo loaded once per test session.

``demo_db`` is a database of its own (``<test db>_demo`` on the same PostGIS), migrated and filled with
:func:`layers.reference.demo.load_demo` once per session and committed, so that the Flask app (which reads through its own
engine) sees it; other tests keep their empty ``db_url`` database. It is dropped at the end of the session.
Only Inner Mongolia's regions are loaded (all of China takes minutes). The modelled raster is coarser than the real demo (0.02 degree pixels) to keep the load short; population is
built at res 8, as in the real demo, plus res 7.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from tests.conftest import drop_database, sibling_database

DEMO_SEED = 11
# the drill's present is now, so that its hazards (onset - 12 h .. expiry + 24-72 h) are active during the run
DEMO_NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DEMO_CELL_DEG = 0.02


@dataclass(frozen=True)
class DemoDB:
    """The demo database: its URL, an engine on it, the load report and the modelled raster's path."""

    url: str
    engine: Engine
    report: dict[str, Any]
    raster_path: Path
    seed: int
    seconds: float


@pytest.fixture(scope="session")
def demo_db(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDB]:
    """The demo (Inner Mongolia's regions, modelled Inner Mongolia population at res 8 and 7, the drill), committed."""
    from layers.reference.demo import load_demo

    demo_url = sibling_database(db_url, "demo")
    engine = create_engine(demo_url)
    started = time.perf_counter()
    with Session(engine) as s, s.begin():
        s.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
        report = load_demo(s, seed=DEMO_SEED, res=8, overview_res=7, now=DEMO_NOW, cell_deg=DEMO_CELL_DEG, all_china=False,
                           raster_dir=tmp_path_factory.mktemp("demo_rasters"))
    seconds = time.perf_counter() - started
    with engine.connect() as c:
        c.execute(text("ANALYZE"))
        c.commit()
    try:
        yield DemoDB(url=demo_url, engine=engine, report=report, raster_path=Path(report["raster"].path),
                     seed=DEMO_SEED, seconds=seconds)
    finally:
        engine.dispose()
        drop_database(demo_url)


@pytest.fixture(scope="session")
def demo_token(demo_db: DemoDB) -> str:
    """An API token of the demo database that may write every layer, draw and analyse (see tests/conftest.py)."""
    from tests.conftest import api_token

    return api_token(demo_db.engine)
