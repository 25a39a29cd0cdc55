"""STYLE.md §1: imports go one way, dashboards -> layers -> geoops. Checked on the sources with ``ast``.

- ``geoops/`` imports none of sqlalchemy, geoalchemy2, psycopg, psycopg2, dash, flask, layers, dashboards;
- ``layers/`` imports none of dashboards, dash, flask;
- ``dashboards/pages/`` imports none of sqlalchemy, geoalchemy2, psycopg, psycopg2.

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


def test_every_package_is_checked() -> None:
    checked = sum(1 for folder in RULES for _ in (ROOT / folder).rglob("*.py"))
    assert checked >= 10
