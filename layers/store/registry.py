"""The layer registry: every feature layer declared once (table, geometry, vocabularies, attributes, time, zooms,
style), checked against the models at import, and each layer's data version.

Public: :class:`LayerDef`, :data:`LAYERS`, :func:`layer`, :func:`layer_version`, :func:`layer_versions`,
:func:`check_registry`.

Whatever shows or serves a layer reads it from here: the vector tiles (:mod:`layers.render.mvt`), the layer API,
the OGC API collections, the maps' layer control. A tile or a response cached for a layer is keyed by the layer's
**data version**: the id of the newest ``feature_history`` row of that layer (history triggers write one per insert,
update and delete), so any committed change to a layer makes every cached piece of it stale at once, and changes
to other layers leave it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from layers.store.models import FEATURE_MODELS, FeatureHistory, FeatureMixin
from layers.store.vocab import VOCABULARIES

__all__ = ["LayerDef", "LAYERS", "layer", "layer_version", "layer_versions", "check_registry"]

#: the columns every layer exposes to maps and other GIS besides its own (``id`` is the feature id)
COMMON_ATTRIBUTES: tuple[str, ...] = ("id", "name", "kind", "status", "source", "external_id", "updated_at")


@dataclass(frozen=True)
class LayerDef:
    """One feature layer as maps, tiles and other GIS see it.

    Parameters
    ----------
    name : str
        Table name and the layer's key everywhere (``incidents``).
    kind_vocab, status_vocab : str or None
        Vocabularies of the ``kind`` and ``status`` columns (:mod:`layers.store.vocab`); None accepts any value.
    attributes : tuple of str
        The layer's own columns shown beside :data:`COMMON_ATTRIBUTES` (in tiles, popups and OGC properties).
    vocab_attributes : mapping
        Attribute -> vocabulary, for attributes other than kind/status that hold vocabulary keys.
    time : (str, str or None)
        The columns that say when a feature is valid: start and end (None: an instant, or open-ended).
    min_zoom, max_zoom : int
        Web-Mercator zooms at which the layer is served as vector tiles.
    style_by : str
        The attribute that decides colour and symbol on the maps (a vocabulary attribute).
    cluster_below : int or None
        Point layers that can hold many thousands of features: at zooms below this one their vector tiles carry
        clusters (a count per cell of a grid in tile space, :mod:`layers.render.mvt`) instead of every point.
        None: every feature at every zoom.
    """

    name: str
    kind_vocab: str | None
    status_vocab: str | None
    attributes: tuple[str, ...] = ()
    vocab_attributes: Mapping[str, str] = field(default_factory=dict)
    time: tuple[str, str | None] = ("valid_from", "valid_to")
    min_zoom: int = 3
    max_zoom: int = 18
    style_by: str = "kind"
    cluster_below: int | None = None

    @property
    def model(self) -> type[FeatureMixin]:
        """The SQLAlchemy model of the layer's table."""
        return FEATURE_MODELS[self.name]

    @property
    def geometry_type(self) -> str:
        """``POINT``, ``MULTIPOLYGON`` or ``GEOMETRY`` (any)."""
        return self.model.GEOM_TYPE

    @property
    def title_key(self) -> str:
        """Translation key of the layer's title (``layer.<name>`` in the server's catalogues)."""
        return f"layer.{self.name}"

    @property
    def all_attributes(self) -> tuple[str, ...]:
        """:data:`COMMON_ATTRIBUTES` then the layer's own attributes."""
        return COMMON_ATTRIBUTES + tuple(a for a in self.attributes if a not in COMMON_ATTRIBUTES)

    @property
    def vocabs(self) -> dict[str, str]:
        """Attribute -> vocabulary, for every attribute that holds vocabulary keys.

        >>> layer("incidents").vocabs
        {'kind': 'incident_kind', 'status': 'incident_status', 'severity': 'incident_severity'}
        """
        out = {"kind": self.kind_vocab, "status": self.status_vocab, **self.vocab_attributes}
        return {a: v for a, v in out.items() if v is not None}

    def vocab_of(self, attribute: str) -> str | None:
        """The vocabulary of an attribute, or None when it holds free values.

        >>> layer("hazards").vocab_of("warning_level"), layer("hazards").vocab_of("name")
        ('warning_level', None)
        """
        return self.vocabs.get(attribute)


_DEFS = (
    LayerDef("hazards", "hazard_kind", "hazard_status", ("warning_level", "onset", "expires"),
             {"warning_level": "warning_level"}, time=("onset", "expires"), min_zoom=3, style_by="warning_level"),
    LayerDef("incidents", "incident_kind", "incident_status", ("severity", "occurred_at", "casualties"),
             {"severity": "incident_severity"}, time=("occurred_at", None), min_zoom=3, style_by="severity",
             cluster_below=9),
    LayerDef("shelters", "shelter_kind", "shelter_status", ("capacity", "occupancy"), min_zoom=5,
             style_by="status"),
    LayerDef("resources", "resource_kind", "resource_status", ("quantity", "unit"), min_zoom=5),
    LayerDef("protection_targets", "target_kind", "target_status", ("occupants", "criticality"), min_zoom=6),
    LayerDef("admin_regions", None, None, ("adcode", "level", "parent_adcode", "name_en"), {"level": "admin_level"},
             min_zoom=3, style_by="level"),
    LayerDef("impact_zones", "zone_kind", "zone_status", (), min_zoom=3),
    LayerDef("annotations", "annotation_symbol", "annotation_status", ("label", "color"), min_zoom=3),
    LayerDef("stations", "station_kind", "station_status", ("code", "adcode", "interval_s", "warning_stage_m",
                                                            "guarantee_stage_m", "record_stage_m"), min_zoom=4),
)

#: layer name -> definition, in the order maps list them
LAYERS: Mapping[str, LayerDef] = MappingProxyType({d.name: d for d in _DEFS})


def layer(name: str) -> LayerDef:
    """The definition of a layer.

    Raises
    ------
    KeyError
        Unknown layer (the message lists the known ones).

    >>> layer("shelters").geometry_type
    'POINT'
    """
    try:
        return LAYERS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown layer {name!r}; known layers: {', '.join(LAYERS)}") from None


def check_registry(defs: Iterable[LayerDef] | None = None) -> None:
    """Raise ``ValueError`` naming the first mismatch between the registry and the models (run at import).

    Every model has exactly one definition; every attribute and time column is a column of the table; every
    vocabulary exists; the zoom range is sane.

    >>> check_registry([LayerDef("shelters", "shelter_kind", "shelter_status", ("beds",))])
    Traceback (most recent call last):
    ...
    ValueError: layer registry: shelters.beds is not a column of table shelters
    """
    complete = defs is None
    defs = list(_DEFS if defs is None else defs)
    names = [d.name for d in defs]
    if complete:
        missing = sorted(set(FEATURE_MODELS) - set(names))
        if missing:
            raise ValueError(f"layer registry: no definition for table(s) {', '.join(missing)}")
    for d in defs:
        if d.name not in FEATURE_MODELS:
            raise ValueError(f"layer registry: {d.name!r} is not a feature table ({', '.join(FEATURE_MODELS)})")
        columns = set(d.model.__table__.columns.keys())  # type: ignore[attr-defined]
        for a in (*d.all_attributes, *(c for c in d.time if c)):
            if a not in columns:
                raise ValueError(f"layer registry: {d.name}.{a} is not a column of table {d.name}")
        for v in (d.kind_vocab, d.status_vocab, *d.vocab_attributes.values()):
            if v is not None and v not in VOCABULARIES:
                raise ValueError(f"layer registry: {d.name} names unknown vocabulary {v!r}")
        if not 0 <= d.min_zoom <= d.max_zoom <= 22:
            raise ValueError(f"layer registry: {d.name} zoom range {d.min_zoom}..{d.max_zoom} not within 0..22")
        if d.style_by not in d.all_attributes:
            raise ValueError(f"layer registry: {d.name} styled by {d.style_by!r}, which it does not expose")
        if d.cluster_below is not None and (d.geometry_type != "POINT" or d.vocab_of(d.style_by) is None
                                            or not d.min_zoom <= d.cluster_below <= d.max_zoom):
            raise ValueError(f"layer registry: {d.name} clusters below zoom {d.cluster_below}, but only a point "
                             f"layer styled by a vocabulary can, within its zooms {d.min_zoom}..{d.max_zoom}")
    if len(set(names)) != len(names):
        raise ValueError("layer registry: a layer is declared twice")


check_registry()


def layer_version(db: Connection | Session, name: str) -> int:
    """The data version of one layer: ``max(feature_history.id)`` of its rows, 0 when it never changed.

    One backward scan of the index ``ix_feature_history_layer_id``.
    """
    layer(name)
    stmt = select(func.coalesce(func.max(FeatureHistory.id), 0)).where(FeatureHistory.layer == name)
    return int(db.execute(stmt).scalar_one())


def layer_versions(db: Connection | Session, names: Iterable[str] | None = None) -> dict[str, int]:
    """Data versions of several layers (default all) in one statement."""
    wanted = list(LAYERS if names is None else names)
    for n in wanted:
        layer(n)
    subs = [select(func.coalesce(func.max(FeatureHistory.id), 0)).where(FeatureHistory.layer == n)
            .scalar_subquery().label(f"v{i}") for i, n in enumerate(wanted)]
    if not subs:
        return {}
    row: Any = db.execute(select(*subs)).one()
    return {n: int(v) for n, v in zip(wanted, row, strict=True)}
