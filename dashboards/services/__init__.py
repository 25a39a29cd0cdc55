"""The domain operations of the server, as plain functions over a connection (pygeoapi's ``api/*.py``).

Modules: :mod:`~dashboards.services.zones` (zones and points from a request, checked against the service area),
:mod:`~dashboards.services.regions` (figures split by county and prefecture), :mod:`~dashboards.services.impact`
(the impact card), :mod:`~dashboards.services.coverage` (shelter coverage), :mod:`~dashboards.services.risk`
(regional risk), :mod:`~dashboards.services.trend` (the leader's incidents per day and prefecture),
:mod:`~dashboards.services.nearest` (nearest resources, single and batch), :mod:`~dashboards.services.buffer`
(multi-ring buffers), :mod:`~dashboards.services.drawings` (impact zones drawn or posted),
:mod:`~dashboards.services.wall` (the wall picture), :mod:`~dashboards.services.coalesce` (one computation for many
screens), :mod:`~dashboards.services.figures` (rounding and timing of what a service returns).

A service takes a connection (or an engine) and plain values, and returns plain data (dicts, lists, arrays). It
imports no web framework (flask, dash, werkzeug) and nothing of ``dashboards.api`` or ``dashboards.pages``: the
HTTP endpoints and the Dash callbacks are thin adapters over it, and ``tests/test_architecture.py`` keeps it so.
It raises domain errors only (:mod:`geoops.errors`, :mod:`layers.store.errors`, naming field, value and what is
allowed); :mod:`dashboards.errors` turns them into HTTP answers. Settings it needs (the service area, limits) are
passed in.
"""
