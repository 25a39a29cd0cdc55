"""Dash pages: one module per page (``dash.register_page``, a ``layout()`` and thin module-level callbacks).

Dash executes these modules itself when ``dashboards.app.create_app`` builds the app; they import no sqlalchemy,
write no SQL and never import ``dashboards.api``: a callback parses its inputs, calls a service
(:mod:`dashboards.services`, or a ``layers`` read) with a connection from :func:`dashboards.context.db_engine`, and
formats the answer. Component IDs live in ``dashboards/ids.py``; every visible string goes through
``dashboards.i18n.t``.
"""
