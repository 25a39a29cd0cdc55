"""Plant each bug that issue 19 named in the code, run the test meant to catch it, and put the code back.

Each plant is a one-place change to the product (a filter dropped, a check skipped, an input ignored); the test after
it must fail. Run from a clean checkout, with the suite's database reachable as for ``make test``::

    python -m tests.planted_bugs          # every plant
    python -m tests.planted_bugs 4 7      # plants 4 and 7

One line per plant: ``caught`` (the test failed, naming the first failure) or ``MISSED``; the exit status is the
number missed. The file is restored after each plant, also on an interrupt; a dirty tree is refused, so that the
restore cannot undo someone's edit. Not part of ``make test`` (one pytest run per plant, about 2 minutes in all).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (what the bug is, file, the text replaced, its replacement, the test file, pytest -k or "")
PLANTS = [
    ("item 1: soft-deleted resources read by nearest", "layers/read/analysis.py",
        "cond: list[Any] = [Resource.deleted_at.is_(None)]", "cond: list[Any] = [Resource.id.is_not(None)]",
        "tests/dashboards/test_analysis_oracles.py", "nearest"),
    ("item 1: soft-deleted targets in the card", "layers/read/analysis.py",
        ".where(ProtectionTarget.deleted_at.is_(None), func.ST_Intersects(ProtectionTarget.geom, z))",
        ".where(func.ST_Intersects(ProtectionTarget.geom, z))", "tests/dashboards/test_analysis_oracles.py", "card_targets"),
    ("item 1: soft-deleted shelters in the card and coverage", "layers/read/analysis.py",
        "cond = [Shelter.deleted_at.is_(None),\n            or_(inside", "cond = [Shelter.id.is_not(None),\n            or_(inside",
        "tests/dashboards/test_analysis_oracles.py", "shelters or coverage"),
    ("item 1: soft-deleted hazards in risk", "layers/read/analysis.py",
        "cond = [Hazard.deleted_at.is_(None), Hazard.status == \"active\",", "cond = [Hazard.status == \"active\",",
        "tests/dashboards/test_analysis_oracles.py", "risk"),
    ("item 2: risk ignores protection-target occupants", "dashboards/services/risk.py",
        "occupants=_occupants(conn, hazards, cells, res=res)", "occupants=np.zeros(len(cells))",
        "tests/dashboards/test_analysis_oracles.py", "risk"),
    ("item 2: risk ?at= ignored (always now)", "layers/read/analysis.py",
        "when = at or datetime.now(UTC)", "when = datetime.now(UTC)",
        "tests/dashboards/test_analysis_oracles.py", "risk_at_another_time"),
    ("item 3: free places ignore occupancy", "layers/read/shelter_places.py",
        "return _spare(capacity, occupancy) if status == OPEN else 0", "return _spare(capacity, 0) if status == OPEN else 0",
        "tests/dashboards/test_analysis_oracles.py", "free_places or coverage"),
    ("item 4: wall/sitrep KPI counts closed incidents", "layers/read/situation.py",
        ".where(_live(Incident), Incident.status != \"closed\").group_by(Incident.severity))",
        ".where(_live(Incident)).group_by(Incident.severity))", "tests/dashboards/test_kpi_oracles.py", ""),
    ("item 5: a token's layer scope ignored", "layers/store/auth.py",
        "return ALL_LAYERS in principal.layers or layer in principal.layers", "return True",
        "tests/dashboards/test_write_scope.py", ""),
    ("item 5: leader callback without its role check", "dashboards/pages/leader.py",
        "    if not allowed(\"read\", EVERY_LAYER):  # as GET /analysis/risk;", "    if False:  # as GET /analysis/risk;",
        "tests/dashboards/test_callback_checks.py", ""),
    ("item 6: unknown SITROOM_* variables let through", "layers/store/settings.py",
        "        if unknown:\n", "        if False:\n", "tests/layers/store/test_settings.py", ""),
    ("item 7: import takes declared-CRS coordinates as lon/lat", "layers/ingest/imports.py",
        "to EPSG:4326\")\n        gdf = gdf.to_crs(4326)", "to EPSG:4326\")\n        gdf = gdf.set_crs(4326, allow_override=True)",
        "tests/layers/ingest/test_fuzz_imports.py", "any_crs"),
    ("item 8: restore of a newer schema not refused", "layers/store/backup.py",
        "if revision is not None and revision not in known:", "if False:",
        "tests/layers/store/test_backup.py", "newer"),
    ("leaning on luck: the ci profile draws random examples", "conftest.py",
  'settings.register_profile("ci", derandomize=True, database=None,', 'settings.register_profile("ci", derandomize=False, database=None,',
        "tests/test_hypothesis_profiles.py", ""),
]


def main(argv: list[str]) -> int:
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout
    if dirty.strip():
        print(f"refused: the checkout has changes, which the restore after a plant would undo:\n{dirty}")
        return 2
    missed = 0
    for i, (name, path, old, new, test, k) in enumerate(PLANTS):
        if argv and str(i) not in argv:
            continue
        f = ROOT / path
        src = f.read_text()
        if src.count(old) != 1:
            print(f"[{i}] {name}: the text to replace is in {path} {src.count(old)} times, not once: update the plant")
            missed += 1
            continue
        f.write_text(src.replace(old, new))
        try:
            cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test, *(["-k", k] if k else [])]
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "SITROOM_TESTS_NEED_DB": "1"})
        finally:
            f.write_text(src)
        failed = [line.removeprefix("FAILED ").split(" - ")[0] for line in r.stdout.splitlines() if line.startswith("FAILED ")]
        if r.returncode == 1 and failed:
            print(f"[{i}] {name}: caught by {failed[0]}", flush=True)
        else:
            missed += 1
            tail = (r.stdout.strip().splitlines() or [r.stderr.strip()])[-1]
            print(f"[{i}] {name}: MISSED (pytest exit {r.returncode}: {tail})", flush=True)
    return missed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
