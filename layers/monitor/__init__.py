"""Monitoring and early warning (监测预警): stations, observations, warning rules, data anomalies, automatic warnings
and the CAP 1.2 feed out.

Modules: :mod:`~layers.monitor.variables` (what a station measures, units, physical ranges),
:mod:`~layers.monitor.quality` (range, spike and flatline tests, pure), :mod:`~layers.monitor.rules` (warning rules
and their windows, pure), :mod:`~layers.monitor.observations` (the partitioned time-series store: ingest, series),
:mod:`~layers.monitor.warnings` (automatic warnings: raise, upgrade, clear, confirm, dismiss),
:mod:`~layers.monitor.anomalies` (stale stations, flagged readings), :mod:`~layers.monitor.cap_out` (confirmed
warnings as CAP 1.2 and an Atom feed), :mod:`~layers.monitor.demo` (the demo's stations and 72 h of readings).

A wing of ``layers``: it imports only :mod:`layers.store`, :mod:`geoops` and its own modules. Every function that
depends on the time takes ``now`` (the clock is the caller's), so tests and the demo replay run on a controlled clock.
"""
