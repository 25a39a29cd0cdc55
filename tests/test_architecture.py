"""docs/architecture.md: imports go one way, dashboards -> layers -> geoops. Checked on the sources with ``ast``.

- ``geoops/`` imports none of sqlalchemy, geoalchemy2, psycopg, psycopg2, dash, flask, layers, dashboards;
- ``layers/`` imports none of dashboards, dash, flask;
- ``dashboards/pages/`` imports none of sqlalchemy, geoalchemy2, psycopg, psycopg2;
- ``layers/`` is split into wings (``store``, ``ingest``, ``read``, ``reference``, ``render``); a wing imports only
  ``layers.store``, its own modules and ``geoops``; ``layers.store`` imports no other wing.

Every import counts, also one inside a function, under ``TYPE_CHECKING`` or through ``importlib.import_module("x")``
or ``__import__("x")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RULES: dict[str, frozenset[str]] = {
    "geoops": frozenset({"sqlalchemy", "geoalchemy2", "psycopg", "psycopg2", "dash", "flask", "layers",
                         "dashboards"}),
    "layers": frozenset({"dashboards", "dash", "flask"}),
    "dashboards/pages": frozenset({"sqlalchemy", "geoalchemy2", "psycopg", "psycopg2"}),
}


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``source`` (the code of dotted module ``module``).

    >>> imported_modules("import a.b\\nfrom .c import d\\nfrom e import f", "pkg.sub.m")
    [(1, 'a.b'), (2, 'pkg.sub.c'), (3, 'e')]
    """
    found: list[tuple[int, str]] = []
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "import_module") or \
                    (isinstance(f, ast.Name) and f.id in {"import_module", "__import__"}):
                found.append((node.lineno, node.args[0].value))
    return sorted(found)


def violations(folder: str, forbidden: frozenset[str]) -> list[str]:
    """``path:line imports name`` for every forbidden import under ``ROOT/folder``."""
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = path.relative_to(ROOT)
        module = ".".join(rel.with_suffix("").parts)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module):
            if name.split(".")[0] in forbidden:
                out.append(f"{rel}:{line} imports {name}")
    return out


@pytest.mark.parametrize("folder", sorted(RULES))
def test_imports_go_one_way(folder: str) -> None:
    assert (ROOT / folder).is_dir()
    assert violations(folder, RULES[folder]) == []


def test_the_checker_sees_every_kind_of_import() -> None:
    src = (
        "import sqlalchemy.orm\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from flask import Flask\n"
        "def f():\n    import psycopg\n    return importlib.import_module('dash.html')\n"
        "from .. import layers\n"
    )
    names = {name.split(".")[0] for _, name in imported_modules(src, "geoops.sub.mod")}
    assert {"sqlalchemy", "flask", "psycopg", "dash", "geoops"} <= names
    assert imported_modules("from ..layers import x", "geoops.sub.mod") == [(1, "geoops.layers")]


WINGS = ("store", "ingest", "read", "reference", "render")


def wing_violations(root: Path = ROOT) -> list[str]:
    """``path:line imports name`` for every import of another wing of ``layers`` (``store`` is everyone's)."""
    out = []
    for path in sorted((root / "layers").rglob("*.py")):
        rel = path.relative_to(root)
        parts = rel.parts
        if len(parts) == 2:  # layers/<module>.py: only the package marker belongs at the top
            if parts[1] != "__init__.py":
                out.append(f"{rel} is outside every wing")
            continue
        wing = parts[1]
        if wing not in WINGS:
            out.append(f"{rel} is in an undeclared wing {wing!r}")
            continue
        module = ".".join(rel.with_suffix("").parts)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module):
            bits = name.split(".")
            if bits[0] == "layers" and (len(bits) < 2 or bits[1] not in ("store", wing)):
                out.append(f"{rel}:{line} imports {name}")
    return out


def test_layers_wings_import_only_the_store() -> None:
    assert wing_violations() == []


def test_the_wing_checker_sees_a_crossing(tmp_path: Path) -> None:
    (tmp_path / "layers" / "read").mkdir(parents=True)
    (tmp_path / "layers" / "__init__.py").write_text("")
    (tmp_path / "layers" / "read" / "q.py").write_text("from layers.ingest import imports\nfrom layers.store import db\n")
    (tmp_path / "layers" / "stray.py").write_text("")
    assert wing_violations(tmp_path) == ["layers/read/q.py:1 imports layers.ingest", "layers/stray.py is outside every wing"]


def test_every_package_is_checked() -> None:
    checked = sum(1 for folder in RULES for _ in (ROOT / folder).rglob("*.py"))
    assert checked >= 10
