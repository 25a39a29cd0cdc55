"""Dash pages: one module per page (``dash.register_page``, a ``layout()`` and thin module-level callbacks).

Dash executes these modules itself when ``dashboards.app.create_app`` builds the app; they import no sqlalchemy and
write no SQL (they call ``layers`` functions with a connection from ``dashboards.api.db_engine``). Component IDs live
in ``dashboards/ids.py``; every visible string goes through ``dashboards.i18n.t``.
"""
