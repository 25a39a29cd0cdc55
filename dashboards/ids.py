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

# --- wall ---
WALL_ROOT: Final = "wall-root"
WALL_TEXT: Final = "wall-text"
WALL_STATUS: Final = "wall-status"
WALL_DRAWN: Final = "wall-drawn"
WALL_DRAWN_ACK: Final = "wall-drawn-ack"  # written by no one: the output of the "redraw landed" clientside callback
WALL_POLL: Final = "wall-poll"
WALL_BANNER: Final = "wall-banner"
WALL_KPIS: Final = "wall-kpis"
WALL_KPI_INCIDENTS: Final = "wall-kpi-incidents"
WALL_KPI_SEVERITY_PREFIX: Final = "wall-kpi-severity-"  # + severity key
WALL_KPI_AFFECTED: Final = "wall-kpi-affected"
WALL_KPI_AFFECTED_NOTE: Final = "wall-kpi-affected-note"
WALL_KPI_SHELTER_FREE: Final = "wall-kpi-shelter-free"
WALL_KPI_SHELTER_TOTAL: Final = "wall-kpi-shelter-total"
WALL_KPI_SHELTER_NOTE: Final = "wall-kpi-shelter-note"  # "closed, could open: N" (counted apart from the free places)
WALL_KPI_RES_AVAILABLE: Final = "wall-kpi-res-available"
WALL_KPI_RES_DEPLOYED: Final = "wall-kpi-res-deployed"
WALL_CLOCK: Final = "wall-clock"
WALL_ASOF: Final = "wall-asof"
WALL_MAP: Final = "wall-map"
WALL_HEX_LAYER: Final = "wall-hex-layer"
WALL_HAZARD_LAYER: Final = "wall-hazard-layer"
WALL_ANNOTATION_LAYER: Final = "wall-annotation-layer"
WALL_HEAT: Final = "wall-heat"
WALL_LEGEND: Final = "wall-legend"
WALL_TICKER: Final = "wall-ticker"
WALL_CHART: Final = "wall-chart"
WALL_REPLAY_BADGE: Final = "wall-replay-badge"  # "回放 HH:MM" over the map in replay mode
WALL_SITREP: Final = "wall-sitrep"
WALL_ALERT: Final = "wall-alert"  # figures that could not be computed, or a failed redraw (the banner of issue 12)
WALL_SCALE: Final = "wall-scale"  # viewport width / 1920, set in the browser
WALL_ZONE_LAYER: Final = "wall-zone-layer"  # published impact zones
WALL_FLASH_LAYER: Final = "wall-flash-layer"  # new 重大/特别重大 incidents, pulsing for a minute
WALL_LEVEL_LEGEND: Final = "wall-level-legend"  # the four warning levels


def wall_severity(severity: str) -> str:
    """ID of the wall's count of active incidents of one severity (``general`` ... ``extraordinary``)."""
    return WALL_KPI_SEVERITY_PREFIX + severity

# --- planner ---
PLANNER_ROOT: Final = "planner-root"
PLANNER_SCOPE_KIND: Final = "planner-scope-kind"
PLANNER_PREFECTURE: Final = "planner-prefecture"
PLANNER_COUNTY: Final = "planner-county"
PLANNER_DISTANCE_PRESET: Final = "planner-distance-preset"
PLANNER_DISTANCE: Final = "planner-distance"
PLANNER_KINDS: Final = "planner-kinds"
PLANNER_RUN: Final = "planner-run"
PLANNER_STATUS: Final = "planner-status"
PLANNER_RESULT: Final = "planner-result"
PLANNER_MAP: Final = "planner-map"
PLANNER_DRAW: Final = "planner-draw"
PLANNER_SCOPE_LAYER: Final = "planner-scope-layer"
PLANNER_CELL_LAYER: Final = "planner-cell-layer"
PLANNER_SHELTER_LAYER: Final = "planner-shelter-layer"
PLANNER_LEGEND: Final = "planner-legend"
PLANNER_TOTALS: Final = "planner-totals"
PLANNER_LOAD_TABLE: Final = "planner-load-table"
PLANNER_REGION_TABLE: Final = "planner-region-table"
PLANNER_GAP_TABLE: Final = "planner-gap-table"
PLANNER_EXPORT_CSV: Final = "planner-export-csv"
PLANNER_EXPORT_GEOJSON: Final = "planner-export-geojson"
PLANNER_DOWNLOAD: Final = "planner-download"

# --- leader ---
LEADER_ROOT: Final = "leader-root"
LEADER_LEVEL: Final = "leader-level"
LEADER_HAZARD_KIND: Final = "leader-hazard-kind"
LEADER_WEIGHT_PREFIX: Final = "leader-weight-"  # + weight name (blue, yellow, orange, red, occupants_weight ...)
LEADER_WEIGHTS_TEXT: Final = "leader-weights-text"
LEADER_WEIGHTS_RESET: Final = "leader-weights-reset"
LEADER_MAP: Final = "leader-map"
LEADER_REGION_LAYER: Final = "leader-region-layer"
LEADER_CELL_LAYER: Final = "leader-cell-layer"
LEADER_LEGEND: Final = "leader-legend"
LEADER_STATUS: Final = "leader-status"
LEADER_RANKING: Final = "leader-ranking"
LEADER_TREND: Final = "leader-trend"


def leader_weight(name: str) -> str:
    """ID of the leader page's slider of one risk weight (a field of ``geoops.risk.RiskWeights``)."""
    return LEADER_WEIGHT_PREFIX + name


# --- analyst ---
ANALYST_MAP: Final = "analyst-map"
ANALYST_EDIT: Final = "analyst-edit"
ANALYST_ZONES_LAYER: Final = "analyst-zones-layer"
ANALYST_ZONES_GEOJSON: Final = "analyst-zones-geojson"  # the latest zones, one clickable layer
ANALYST_ANNOTATIONS_LAYER: Final = "analyst-annotations-layer"
ANALYST_MODE: Final = "analyst-mode"  # draw zones or annotations
ANALYST_SYMBOL: Final = "analyst-symbol"
ANALYST_LABEL: Final = "analyst-label"
ANALYST_COLOR: Final = "analyst-color"
ANALYST_DISTANCES: Final = "analyst-distances"  # multi-ring buffer distances, km
ANALYST_BUFFER: Final = "analyst-buffer"
ANALYST_BUFFER_SOURCE: Final = "analyst-buffer-source"  # text: what the buffer will be built around
ANALYST_STATUS: Final = "analyst-status"
ANALYST_RETRY: Final = "analyst-retry"
ANALYST_CARD: Final = "analyst-card"
ANALYST_CARD_POPULATION: Final = "analyst-card-population"
ANALYST_ZONE_LIST: Final = "analyst-zone-list"
ANALYST_ANNOTATION_LIST: Final = "analyst-annotation-list"
ANALYST_ANNOTATION_UPDATE: Final = "analyst-annotation-update"
ANALYST_STORE_PENDING: Final = "analyst-store-pending"
ANALYST_STORE_SEEN: Final = "analyst-store-seen"
ANALYST_STORE_SOURCE: Final = "analyst-store-source"
ANALYST_STORE_CARD: Final = "analyst-store-card"
ANALYST_STORE_SELECTED: Final = "analyst-store-selected"  # annotation being edited
ANALYST_STORE_VERSION: Final = "analyst-store-version"  # bumped after every save: lists and layers redraw
ANALYST_REPLAY_BADGE: Final = "analyst-replay-badge"
ANALYST_REPLAY_LAYER: Final = "analyst-replay-layer"  # past hazards and incidents in replay mode
ANALYST_SITREP: Final = "analyst-sitrep"
ANALYST_ZONE_ITEM: Final = "analyst-zone-item"  # pattern-matching type: {"type": ANALYST_ZONE_ITEM, "id": n}
ANALYST_ANN_EDIT: Final = "analyst-ann-edit"  # pattern-matching type, + "id"
ANALYST_ANN_DELETE: Final = "analyst-ann-delete"  # pattern-matching type, + "id"

# --- monitor (/monitor) and the wall's monitoring tile ---
MONITOR_ROOT: Final = "monitor-root"
MONITOR_MAP: Final = "monitor-map"
MONITOR_STATION_LAYER: Final = "monitor-station-layer"
MONITOR_WARNING_LAYER: Final = "monitor-warning-layer"
MONITOR_SUMMARY: Final = "monitor-summary"
MONITOR_STATUS: Final = "monitor-status"  # the outcome of the last confirmation or dismissal
MONITOR_QUEUE: Final = "monitor-queue"
MONITOR_ANOMALIES: Final = "monitor-anomalies"
MONITOR_RULES: Final = "monitor-rules"
MONITOR_STATION: Final = "monitor-station"  # dropdown: the station whose series is plotted
MONITOR_PLOT: Final = "monitor-plot"
MONITOR_PLOT_TITLE: Final = "monitor-plot-title"
MONITOR_TICK: Final = "monitor-tick"
MONITOR_DECIDED: Final = "monitor-decided"  # store bumped after every decision: the page redraws
MONITOR_DRAWN: Final = "monitor-drawn"  # store set once the queue is drawn: the stations redraw after it
MONITOR_NOTE: Final = "monitor-note"
MONITOR_REPLAY_BADGE: Final = "monitor-replay-badge"
MONITOR_CONFIRM: Final = "monitor-confirm"  # pattern-matching type, + "id" (warning id)
MONITOR_DISMISS: Final = "monitor-dismiss"  # pattern-matching type, + "id"
WALL_MONITOR_TILE: Final = "wall-monitor-tile"
WALL_MONITOR_REPORTING: Final = "wall-monitor-reporting"
WALL_MONITOR_STATIONS: Final = "wall-monitor-stations"
WALL_MONITOR_ANOMALIES: Final = "wall-monitor-anomalies"
WALL_MONITOR_PENDING: Final = "wall-monitor-pending"
WALL_MONITOR_LAYER: Final = "wall-monitor-layer"  # pending automatic warnings on the wall's map
WALL_MONITOR_TICK: Final = "wall-monitor-tick"

# --- wall: the command panel (dashboards/components/command_wall.py) ---
WALL_CMD_BANNERS: Final = "wall-cmd-banners"  # "自治区启动防汛Ⅳ级应急响应", one per response in force
WALL_CMD_PANEL: Final = "wall-cmd-panel"  # task counts by status and overdue plan actions
WALL_CMD_LINES: Final = "wall-cmd-lines"  # map layer: deployed resources with a line to their target
WALL_CMD_STATE: Final = "wall-cmd-state"  # what the panel drew (tests, benchmarks)


def wall_task_count(status: str) -> str:
    """ID of the wall's count of tasks in one status (``assigned`` ... ``cancelled``)."""
    return f"wall-cmd-tasks-{status}"


# --- command (/command) ---
COMMAND_ROOT: Final = "command-root"
COMMAND_STATUS: Final = "command-status"  # the answer to the last action (done, or why not)
COMMAND_VERSION: Final = "command-version"  # bumped after every action of this page: panels redraw
COMMAND_SELECTED: Final = "command-selected"  # the incident whose details and suggestions are shown
COMMAND_TICK: Final = "command-tick"  # timers of the checklists
COMMAND_QUEUE: Final = "command-queue"
COMMAND_QUEUE_ITEM: Final = "command-queue-item"  # pattern-matching type: {"type": ..., "id": incident id}
COMMAND_MAP: Final = "command-map"
COMMAND_MAP_SELECTION: Final = "command-map-selection"
COMMAND_MAP_DEPLOYED: Final = "command-map-deployed"
COMMAND_DETAILS: Final = "command-details"
COMMAND_NOTE: Final = "command-note"
COMMAND_DISPATCH: Final = "command-dispatch"  # pattern-matching type: {"type": ..., "id": resource id}
COMMAND_BOARD: Final = "command-board"
COMMAND_TASK_MOVE: Final = "command-task-move"  # pattern-matching type: {"type": ..., "id": task id, "to": status}
COMMAND_PLANS: Final = "command-plans"
COMMAND_PLAN_KIND: Final = "command-plan-kind"
COMMAND_PLAN_LEVEL: Final = "command-plan-level"
COMMAND_PLAN_ACTIVATE: Final = "command-plan-activate"
COMMAND_PLAN_CHANGE: Final = "command-plan-change"  # pattern-matching type: {"type": ..., "id": activation, "to": level or 0}
COMMAND_ACTION_CHECK: Final = "command-action-check"  # pattern-matching type: {"type": ..., "id": action id}
COMMAND_LOG: Final = "command-log"
COMMAND_LOG_KIND: Final = "command-log-kind"
COMMAND_LOG_QUERY: Final = "command-log-query"
COMMAND_LOG_TEXT: Final = "command-log-text"
COMMAND_LOG_ADD: Final = "command-log-add"
COMMAND_LOG_CSV: Final = "command-log-csv"
COMMAND_LOG_PDF: Final = "command-log-pdf"


def command_board_column(status: str) -> str:
    """ID of the task board's column of one status."""
    return f"command-board-{status}"
