"""The error table (``dashboards/errors.py``): keyed by classes, so a misspelt or removed class stops the import; and
every domain error class of ``geoops`` and ``layers`` answers with the status decided for it.

A new subclass of :class:`geoops.errors.GeoOpsError` or :class:`layers.store.errors.StoreError` anywhere in those
packages fails :func:`test_every_domain_error_has_its_intended_status` until its status is decided in
:data:`INTENDED` (and, if it differs from its base class's, given a row in the table).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import geoops
import layers
from dashboards.errors import ERROR_TABLE, classify, error_table
from geoops.errors import CRSError, GeoOpsError, InvalidGeometryError, InvalidParameterError
from layers.command.errors import ActivationStateError, ResourceBusyError, TransitionError
from layers.command.errors import ConflictError as CommandConflictError
from layers.ingest.cap import CapError
from layers.ingest.imports import UploadTooLargeError
from layers.reference.population import PopulationBuildError
from layers.render.sitebasemaps import BasemapError
from layers.render.tiles import TileError
from layers.store.auth import AuthError
from layers.store.errors import (
    ClusterError,
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    StoreError,
    ValidationError,
)

#: the HTTP status each domain error class is meant to answer with
INTENDED: dict[type[BaseException], int] = {
    GeoOpsError: 400,
    InvalidParameterError: 400,
    InvalidGeometryError: 422,
    CRSError: 422,
    StoreError: 500,
    ValidationError: 422,
    CapError: 422,
    UploadTooLargeError: 413,
    PopulationBuildError: 422,
    NotFoundError: 404,
    AuthError: 401,
    TileError: 400,
    BasemapError: 422,
    DatabaseUnavailableError: 503,
    ClusterError: 503,
    ConflictError: 409,
    CommandConflictError: 409,
    ResourceBusyError: 409,
    TransitionError: 409,
    ActivationStateError: 409,
}


def _subclasses(root: type[BaseException]) -> set[type[BaseException]]:
    out = {root}
    for sub in root.__subclasses__():
        out |= _subclasses(sub)
    return out


def _import_every_module() -> None:
    for package in (geoops, layers):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations" not in info.name:  # Alembic's env.py runs migrations when imported
                importlib.import_module(info.name)


def test_every_domain_error_has_its_intended_status() -> None:
    _import_every_module()
    found = {c for c in _subclasses(GeoOpsError) | _subclasses(StoreError)
             if c.__module__.split(".")[0] in ("geoops", "layers")}
    assert sorted(c.__qualname__ for c in found - set(INTENDED)) == [], "decide the status of each new error class"
    for cls, status in INTENDED.items():
        assert classify(cls.__new__(cls))[0] == status, cls


def test_the_table_is_keyed_by_classes_only() -> None:
    assert all(isinstance(cls, type) and issubclass(cls, BaseException) for cls, _, _ in ERROR_TABLE)
    with pytest.raises(TypeError, match="keyed by exception classes"):
        error_table([("layers.store.errors:NotFoundError", 404, "not_found")])
    with pytest.raises(ValueError, match="twice"):
        error_table([(KeyError, 404, None), (KeyError, 400, None)])
    with pytest.raises(ValueError, match="100..599"):
        error_table([(KeyError, 40, None)])


def test_a_misspelt_class_stops_the_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a typo in the table does now: the module (and the server) does not start, instead of a silent 500."""
    (tmp_path / "planted_error_table.py").write_text(
        "from dashboards.errors import error_table\n"
        "from layers.store.errors import NotFoundErorr\n"
        "TABLE = error_table([(NotFoundErorr, 404, 'not_found')])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="NotFoundErorr"):
        importlib.import_module("planted_error_table")
