"""docs/architecture.md: imports go one way, dashboards -> layers -> geoops. Checked on the sources with ``ast``.

- ``geoops/`` imports none of sqlalchemy, geoalchemy2, psycopg, psycopg2, dash, flask, layers, dashboards;
- ``layers/`` imports none of dashboards, dash, flask;
- ``dashboards/pages/`` imports none of sqlalchemy, geoalchemy2, psycopg, psycopg2, and nothing of ``dashboards.api``;
- ``dashboards/api/`` imports nothing of ``dashboards.pages``;
- ``dashboards/services/`` imports no web framework (flask, dash, dash_leaflet, werkzeug) and none of
  ``dashboards.api``, ``dashboards.pages``, ``dashboards.errors`` (HTTP), ``dashboards.auth``, ``dashboards.context``
  (what a service needs is passed in);
- ``dashboards/context.py`` imports nothing of ``dashboards``;
- no import cycle among the modules of ``dashboards``;
- ``layers/`` is split into wings (``store``, ``ingest``, ``read``, ``reference``, ``render``, ``monitor``); a wing imports only
  ``layers.store``, its own modules and ``geoops``; ``layers.store`` imports no other wing.

Every import counts, also one inside a function, under ``TYPE_CHECKING`` or through ``importlib.import_module("x")``
or ``__import__("x")`` with a literal name; ``from a import b`` counts as importing ``a`` and, when it is one, the
module ``a.b``. Each rule has a test that plants a violation in ``tmp_path`` and sees it caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

WEB = frozenset({"flask", "dash", "dash_leaflet", "werkzeug"})
#: folder or file -> what nothing in it may import (a top-level package, or a dotted module and its submodules)
RULES: dict[str, frozenset[str]] = {
    "geoops": frozenset({"sqlalchemy", "geoalchemy2", "psycopg", "psycopg2", "dash", "flask", "layers",
                         "dashboards"}),
    "layers": frozenset({"dashboards", "dash", "flask"}),
    "dashboards/pages": frozenset({"sqlalchemy", "geoalchemy2", "psycopg", "psycopg2", "dashboards.api"}),
    "dashboards/api": frozenset({"dashboards.pages"}),
    "dashboards/ogc": frozenset({"dashboards.pages"}),
    "dashboards/services": WEB | {"dashboards.api", "dashboards.pages", "dashboards.errors", "dashboards.auth",
                                  "dashboards.context"},
    "dashboards/context.py": frozenset({"dashboards"}),
}


def imported_modules(source: str, module: str, *, submodules: bool = False) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``source`` (the code of dotted module ``module``); with
    ``submodules``, ``from a import b`` also gives ``a.b`` (which may be a module or just a name).

    >>> imported_modules("import a.b\\nfrom .c import d\\nfrom e import f", "pkg.sub.m")
    [(1, 'a.b'), (2, 'pkg.sub.c'), (3, 'e')]
    >>> imported_modules("from . import d", "pkg.sub.m", submodules=True)
    [(1, 'pkg.sub'), (1, 'pkg.sub.d')]
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
            if submodules:
                found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "import_module") or \
                    (isinstance(f, ast.Name) and f.id in {"import_module", "__import__"}):
                found.append((node.lineno, node.args[0].value))
    return sorted(found)


def _module(rel: Path) -> str:
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(root: Path, folder: str) -> list[Path]:
    where = root / folder
    return [where] if where.suffix == ".py" else sorted(where.rglob("*.py"))


def _is_under(name: str, forbidden: frozenset[str]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


def violations(folder: str, forbidden: frozenset[str], root: Path = ROOT) -> list[str]:
    """``path:line imports name`` for every forbidden import in ``root/folder`` (a folder or one file)."""
    out = []
    for path in _sources(root, folder):
        rel = path.relative_to(root)
        module = ".".join(rel.with_suffix("").parts)  # a package's __init__ resolves relative imports inside it
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module, submodules=True):
            if _is_under(name, forbidden):
                out.append(f"{rel}:{line} imports {name}")
    return sorted(set(out))


@pytest.mark.parametrize("folder", sorted(RULES))
def test_imports_go_one_way(folder: str) -> None:
    assert (ROOT / folder).exists()
    assert violations(folder, RULES[folder]) == []


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(("folder", "planted", "caught"), [
    ("dashboards/services", "def f():\n    from flask import request\n", "flask"),
    ("dashboards/services", "from dashboards import api\n", "dashboards.api"),
    ("dashboards/services", "import dash_leaflet as dl\n", "dash_leaflet"),
    ("dashboards/services", "from dashboards.errors import ParameterError\n", "dashboards.errors"),
    ("dashboards/api", "from dashboards.pages.wall import refresh\n", "dashboards.pages.wall"),
    ("dashboards/pages", "from dashboards.api.analysis import risk\n", "dashboards.api.analysis"),
    ("dashboards/pages", "from ..api import openapi\n", "dashboards.api"),
    ("dashboards/context.py", "from dashboards.i18n import t\n", "dashboards.i18n"),
])
def test_the_dashboards_rules_catch_a_planted_import(tmp_path: Path, folder: str, planted: str, caught: str) -> None:
    rel = folder if folder.endswith(".py") else f"{folder}/planted.py"
    _plant(tmp_path, {"dashboards/__init__.py": "", rel: planted})
    found = violations(folder, RULES[folder], root=tmp_path)
    assert any(f.endswith(f"imports {caught}") for f in found), found


def import_graph(root: Path = ROOT, package: str = "dashboards") -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (anywhere in its code), for every module of ``package``."""
    modules = {_module(p.relative_to(root)): p for p in sorted((root / package).rglob("*.py"))}
    graph = {}
    for m, p in modules.items():
        names = imported_modules(p.read_text(encoding="utf-8"), ".".join(p.relative_to(root).with_suffix("").parts),
                                 submodules=True)
        graph[m] = {name for _, name in names if name in modules and name != m}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_no_import_cycle_in_dashboards() -> None:
    graph = import_graph()
    assert len(graph) >= 40 and "dashboards.services.impact" in graph["dashboards.api.analysis"]
    assert import_cycles(graph) == []


def test_the_cycle_checker_sees_a_planted_cycle(tmp_path: Path) -> None:
    """The cycle this layout ended: the API package imported auth (inside a function) and auth the API package."""
    _plant(tmp_path, {
        "dashboards/__init__.py": "",
        "dashboards/api/__init__.py": "def user():\n    from dashboards.auth import current_user_name\n",
        "dashboards/auth.py": "from dashboards.api import API_PREFIX\n",
        "dashboards/ids.py": "",
        "dashboards/pages/__init__.py": "",
        "dashboards/pages/wall.py": "from dashboards import ids\n",
    })
    assert import_cycles(import_graph(tmp_path)) == [["dashboards.api", "dashboards.auth"]]


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


WINGS = ("store", "ingest", "read", "reference", "render", "monitor", "command")


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
