"""Real GIS clients against a live ``sitroom serve``: GDAL (``ogrinfo``/``ogr2ogr``, Debian's gdal-bin) and QGIS
(Debian's python3-qgis, headless) read the OGC API with an API token, and get what the store holds.

Oracle: raw SQL over the store (counts, ids, coordinates), read through the test's own engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geoops.h3cells import points_to_cells
from layers.reference.population import write_cells
from layers.render.tiles import tile_for_lonlat
from layers.store.registry import LAYERS
from tests.conftest import api_token, drop_database, sibling_database, unavailable
from tests.e2e.conftest import serving

pytestmark = [pytest.mark.db, pytest.mark.browser]

HERE = Path(__file__).resolve().parent
DEBIAN_PYTHON = "/usr/bin/python3"
N_INCIDENTS = 230  # more than one of GDAL's pages


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        unavailable(f"{tool} is not installed (Debian gdal-bin; `make install` installs it)")
    return path


def _seed(url: str) -> None:
    eng = create_engine(url)
    rng = np.random.default_rng(13)
    with Session(eng) as s, s.begin():
        s.execute(text("SELECT set_config('sitroom.user', 'pytest', true)"))
        for i in range(N_INCIDENTS):
            lon, lat = 111.0 + rng.random() * 2, 40.0 + rng.random() * 1.5
            s.execute(text("INSERT INTO incidents (source, external_id, name, kind, status, severity, occurred_at, geom) "
                           "VALUES ('pytest', :e, :n, 'fire', 'reported', 'major', now() - :h * interval '1 hour', "
                           "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                      {"e": f"i{i}", "n": f"火情 {i}", "h": int(rng.integers(0, 48)), "x": lon, "y": lat})
        s.execute(text("INSERT INTO shelters (source, name, kind, status, capacity, geom) VALUES "
                       "('pytest', '避难所', 'emergency', 'open', 500, 'SRID=4326;POINT(111.7 40.8)')"))
        s.execute(text("INSERT INTO hazards (source, name, kind, status, warning_level, onset, expires, geom) VALUES "
                       "('pytest', '暴雪', 'blizzard', 'active', 'orange', now() - interval '1 day', "
                       "now() + interval '1 day', 'SRID=4326;MULTIPOLYGON(((111 40,112 40,112 41,111 41,111 40)))')"))
        s.execute(text("INSERT INTO annotations (source, name, kind, status, label, geom) VALUES "
                       "('pytest', '路线', 'fire', 'active', 'A', "
                       "'SRID=4326;LINESTRING(111 40,111.5 40.2)')"))
        cells, sums = points_to_cells(111 + rng.random(300), 40.5 + rng.random(300), np.full(300, 100.0), res=7)
        write_cells(s, cells, sums, source="pytest", res=7, input_total=float(sums.sum()))
    eng.dispose()


@pytest.fixture(scope="module")
def served(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Any]]:
    """(base URL, a read token, an engine) of a live server on a database of this module's own."""
    url = sibling_database(db_url, "ogc_clients")
    _seed(url)
    eng = create_engine(url)
    token = api_token(eng, access="read")
    try:
        with serving(url, tmp_path_factory.mktemp("ogc") / "serve.log", workers=1) as (base, _):
            yield base, token, eng
    finally:
        eng.dispose()
        drop_database(url)


def gdal(*args: str, token: str) -> str:
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}", "CPL_VSIL_CURL_CACHE_SIZE": "0"}
    done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def live(eng: Any, layer: str) -> int:
    with eng.connect() as c:
        return int(c.execute(text(f"SELECT count(*) FROM {layer} WHERE deleted_at IS NULL")).scalar_one())


def test_ogrinfo_lists_every_collection_with_the_store_s_counts(served: tuple[str, str, Any]) -> None:
    base, token, eng = served
    ogrinfo = _require("ogrinfo")
    listing = gdal(ogrinfo, "-ro", "-q", f"OAPIF:{base}/ogc", token=token)
    names = re.findall(r"^\d+: (\S+)", listing, re.MULTILINE)
    assert set(names) == {*LAYERS, "population_h3_r7"}
    for name in LAYERS:
        out = gdal(ogrinfo, "-ro", "-so", f"OAPIF:{base}/ogc", name, token=token)
        assert f"Feature Count: {live(eng, name)}" in out, (name, out)


def test_ogr2ogr_copies_each_collection_to_gpkg_with_identical_features(served: tuple[str, str, Any],
                                                                          tmp_path: Path) -> None:
    base, token, eng = served
    ogr2ogr = _require("ogr2ogr")
    for name in (*LAYERS, "population_h3_r7"):
        target = tmp_path / f"{name}.gpkg"
        gdal(ogr2ogr, "-f", "GPKG", "-preserve_fid", str(target), f"OAPIF:{base}/ogc", name, token=token)
        if name.startswith("population"):
            with eng.connect() as c:
                n = c.execute(text("SELECT count(*) FROM population_cells WHERE res = 7")).scalar_one()
            assert pyogrio.read_info(target, layer=name)["features"] == n
            continue
        expected = live(eng, name)
        if expected == 0:
            continue
        df = pyogrio.read_dataframe(target, layer=name, fid_as_index=True)
        assert len(df) == expected, name
        with eng.connect() as c:
            rows = dict(c.execute(text(f"SELECT id, ST_AsBinary(geom) FROM {name} WHERE deleted_at IS NULL")).all())
        import shapely

        for fid, geom in df.geometry.items():
            want = shapely.from_wkb(bytes(rows[int(fid)]))
            assert shapely.get_coordinates(geom).shape == shapely.get_coordinates(want).shape
            assert np.abs(shapely.get_coordinates(geom) - shapely.get_coordinates(want)).max() <= 1e-7, (name, fid)


def test_ogr2ogr_bbox_returns_what_postgis_returns(served: tuple[str, str, Any], tmp_path: Path) -> None:
    base, token, eng = served
    target = tmp_path / "box.gpkg"
    gdal(_require("ogr2ogr"), "-f", "GPKG", "-preserve_fid", "-spat", "111.2", "40.2", "112.3", "41.1", str(target),
         f"OAPIF:{base}/ogc", "incidents", token=token)
    with eng.connect() as c:
        ids = sorted(int(i) for i in c.execute(text(
            "SELECT id FROM incidents WHERE deleted_at IS NULL AND "
            "ST_Intersects(geom, ST_MakeEnvelope(111.2, 40.2, 112.3, 41.1, 4326))")).scalars())
    got = sorted(int(i) for i in pyogrio.read_dataframe(target, fid_as_index=True).index)
    assert got == ids and 0 < len(ids) < N_INCIDENTS


def test_qgis_reads_a_features_collection_and_draws_its_vector_tiles(served: tuple[str, str, Any],
                                                                     tmp_path: Path) -> None:
    base, token, eng = served
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=120)
    if probe.returncode != 0:
        unavailable("QGIS's Python bindings are not installed (Debian python3-qgis; `make install` installs it)")
    with eng.connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incidents ORDER BY id LIMIT 1")).one()
        ids = sorted(int(i) for i in c.execute(text("SELECT id FROM incidents WHERE deleted_at IS NULL")).scalars())
    x, y = tile_for_lonlat(lon, lat, 8)

    def run(tok: str) -> dict[str, Any]:
        done = subprocess.run([DEBIAN_PYTHON, str(HERE / "qgis_client.py"), base, tok, "incidents", "8", str(x),
                               str(y)], env={**os.environ, "HOME": str(tmp_path / tok[-6:]),
                                             "QT_QPA_PLATFORM": "offscreen"},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    got = run(token)
    assert got["features_valid"] and sorted(f["id"] for f in got["features"]) == ids
    assert got["crs"] == "EPSG:4326" and got["tiles_valid"] and got["tile_pixels"] > 0
    other = run(api_token(eng, layers=("shelters",), access="read"))  # scoped to another layer: nothing
    assert not other["features_valid"] and other["tile_pixels"] == 0
