"""Component IDs of every page, in one place (layouts, callbacks and browser tests use these constants).

Public: one string constant per component. Add a page's IDs under its own heading, prefixed with the page name so
that IDs never collide across pages (Dash pages share one DOM namespace).
"""

from __future__ import annotations

from typing import Final

# --- app shell (every page) ---
SHELL_HEADER: Final = "shell-header"
SHELL_BRAND: Final = "shell-brand"
LANG_SWITCH: Final = "lang-switch"
LANG_ZH: Final = "lang-switch-zh"
LANG_EN: Final = "lang-switch-en"

# --- home (/) ---
HOME_TITLE: Final = "home-title"
HOME_INTRO: Final = "home-intro"
HOME_ROLES: Final = "home-roles"
HOME_ROLE_LINK_PREFIX: Final = "home-role-"  # + role name: home-role-wall, home-role-analyst ...
HOME_LAYERS: Final = "home-layers"
HOME_LAYER_COUNT_PREFIX: Final = "home-layer-count-"  # + layer name
HOME_DB_STATUS: Final = "home-db-status"


def home_role_link(role: str) -> str:
    """ID of the home page's link to a role view (``wall``, ``analyst``, ``planner``, ``leader``)."""
    return HOME_ROLE_LINK_PREFIX + role


def home_layer_count(layer: str) -> str:
    """ID of the cell that shows a layer's feature count on the home page."""
    return HOME_LAYER_COUNT_PREFIX + layer
