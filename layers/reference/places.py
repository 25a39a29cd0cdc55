"""The GeoNames places of Inner Mongolia, the input of the demo's modelled population raster and the towns of its
drill (read through :mod:`layers.store.gazetteer`, the one reader of GeoNames and the one rule for Chinese names).

Public: :func:`inner_mongolia_places`, :data:`INNER_MONGOLIA_ADMIN1`.

>>> INNER_MONGOLIA_ADMIN1
'20'
"""

from __future__ import annotations

from layers.store.gazetteer import Place, read_places

__all__ = ["INNER_MONGOLIA_ADMIN1", "inner_mongolia_places"]

#: GeoNames admin1 code of Inner Mongolia (country CN)
INNER_MONGOLIA_ADMIN1 = "20"


def inner_mongolia_places(*, min_population: int = 0) -> list[Place]:
    """GeoNames places of Inner Mongolia (admin1 ``20``), largest first.

    The default reads the package's largest extract whole: places of at least 500 people and the seats of admin
    divisions, whatever their population.

    Examples
    --------
    >>> places = inner_mongolia_places()
    >>> len(places) > 300 and places[0].population >= places[-1].population
    True
    """
    return list(read_places(country="CN", admin1=INNER_MONGOLIA_ADMIN1, min_population=min_population))
