"""Replay controls for a page: a time slider over the last N hours, play/pause, speed (1x, 10x, 60x, 600x) and a
"live" button; in replay mode the page draws :func:`layers.read.history.situation_at` instead of the live picture.

Public: :data:`SPEEDS`, :func:`replay_controls`, :func:`register_replay`, :func:`replay_id`,
:func:`replay_time`, :func:`replay_situation`,
:func:`replay_badge`, :func:`register_report_link`.

Use (in a page module)::

    from dashboards.components.replay import register_replay, replay_controls, replay_id, replay_situation

    register_replay("wall")                      # module level: the page is executed for every app built
    ... layout: replay_controls("wall", hours=6, lang=lang) ...

    @callback(Output(...), Input(replay_id("wall", "state"), "data"))
    def draw(state):
        past = replay_situation(state)           # None: live -> draw the live picture as before
        ...

The state store holds ``{"mode": "live"|"replay", "at": ISO 8601 UTC or None, "start", "end", "playing", "speed"}``.
Everything moves in the browser (one clientside callback): a tick of 1 s advances ``at`` by ``speed`` seconds, so a
server round trip happens only for the page's own redraw of the new ``at``.

The labels are the ``replay.*`` keys of the catalogues (``dashboards/translations``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import Input, Output, State, dcc, html

from dashboards.i18n import current_lang, normalize_lang, t

#: replay speeds (x real time)
SPEEDS: tuple[int, ...] = (1, 10, 60, 600)
TICK_MS = 1000
DISPLAY_TZ = "Asia/Shanghai"

_PARTS = ("state", "slider", "play", "live", "speed", "tick", "label", "text")


def replay_id(name: str, part: str) -> str:
    """Component id of one part (``state``, ``slider``, ``play``, ``live``, ``speed``, ``tick``, ``label``).

    >>> replay_id("wall", "state")
    'sr-replay-wall-state'
    """
    if part not in _PARTS:
        raise ValueError(f"part must be one of {', '.join(_PARTS)}, got {part!r}")
    return f"sr-replay-{name}-{part}"


def replay_controls(name: str, *, hours: int = 6, lang: str | None = None, speed: int = 60,
                    now: datetime | None = None) -> html.Div:
    """The controls and their state store; the window is the last ``hours`` hours before ``now`` (page load).

    Parameters
    ----------
    name : str
        Unique in the page; the ids are :func:`replay_id` ``(name, part)``.
    hours : int, default 6
        Length of the replay window, 1..168.
    lang : str, optional
        Default: the request's language.
    speed : int, default 60
        Initial speed, one of :data:`SPEEDS`.
    """
    if not 1 <= int(hours) <= 168:
        raise ValueError(f"hours must be in 1..168, got {hours!r}")
    if speed not in SPEEDS:
        raise ValueError(f"speed must be one of {SPEEDS}, got {speed!r}")
    lang = normalize_lang(lang) or current_lang()
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(hours=int(hours))
    span_s = int(hours) * 3600
    marks = {int(h * 3600): f"-{int(hours) - h}h" if h < int(hours) else t("replay.live", lang)
             for h in range(0, int(hours) + 1, max(1, int(hours) // 6))}
    texts: dict[str, Any] = {"play": t("replay.play", lang), "pause": t("replay.pause", lang),
             "mode_live": t("replay.mode_live", lang), "mode_replay": t("replay.mode_replay", lang),
             "tz": DISPLAY_TZ, "locale": "zh-CN" if lang == "zh-CN" else "en-GB",
             "ids": {p: replay_id(name, p) for p in _PARTS}}
    state = {"mode": "live", "at": None, "start": start.isoformat(), "end": end.isoformat(), "playing": False,
             "speed": speed}
    return html.Div(className="sr-replay", children=[
        dcc.Store(id=replay_id(name, "state"), data=state),
        dcc.Store(id=replay_id(name, "text"), data=texts),
        dcc.Interval(id=replay_id(name, "tick"), interval=TICK_MS, disabled=True),
        html.Button(texts["play"], id=replay_id(name, "play"), n_clicks=0, className="sr-replay-play"),
        html.Div(dcc.Slider(id=replay_id(name, "slider"), min=0, max=span_s, step=60, value=span_s, marks=marks,
                            updatemode="mouseup", included=True, allow_direct_input=False),
                 className="sr-replay-slider", title=t("replay.slider", lang, hours=int(hours))),
        dcc.RadioItems(id=replay_id(name, "speed"), value=speed, inline=True, className="sr-replay-speed",
                       options=[{"label": f"{s}x", "value": s} for s in SPEEDS]),
        html.Button(t("replay.live", lang), id=replay_id(name, "live"), n_clicks=0, className="sr-replay-live"),
        html.Span(texts["mode_live"], id=replay_id(name, "label"), className="sr-replay-label"),
    ])


_STEP_JS = """
function (play, live, tick, slider, speed, st, txt) {
  const nu = window.dash_clientside.no_update;
  if (!st || !txt) { return [nu, nu, nu, nu, nu]; }
  const trig = ((window.dash_clientside.callback_context || {}).triggered || []).map(t => t.prop_id || "");
  const has = part => trig.some(p => p.indexOf(txt.ids[part] + ".") === 0);
  const s = Object.assign({}, st);
  const start = Date.parse(s.start), end = Date.parse(s.end);
  const label = ms => txt.mode_replay.replace("{time}", new Date(ms).toLocaleString(txt.locale,
      {timeZone: txt.tz, hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
       second: "2-digit"}));
  if (has("live")) {
    Object.assign(s, {mode: "live", at: null, playing: false});
    return [s, Math.round((end - start) / 1000), true, txt.play, txt.mode_live];
  }
  let at = s.at ? Date.parse(s.at) : end;
  if (has("speed") && speed) { s.speed = speed; }
  if (has("slider") && typeof slider === "number") { s.mode = "replay"; at = start + slider * 1000; }
  if (has("play")) {
    if (s.mode === "live" || at >= end) { s.mode = "replay"; at = start; }
    s.playing = !s.playing;
  }
  if (has("tick")) {
    if (!s.playing) { return [nu, nu, true, nu, nu]; }
    at = Math.min(end, at + s.speed * 1000);
    if (at >= end) { s.playing = false; }
  }
  if (s.mode === "live") { return [s, nu, true, txt.play, txt.mode_live]; }
  s.at = new Date(at).toISOString();
  return [s, Math.round((at - start) / 1000), !s.playing, s.playing ? txt.pause : txt.play, label(at)];
}
"""


def register_replay(name: str) -> None:
    """Register the controls' clientside callback for ``name`` (call at the page module's top level)."""
    dash.clientside_callback(
        _STEP_JS,
        Output(replay_id(name, "state"), "data"),
        Output(replay_id(name, "slider"), "value"),
        Output(replay_id(name, "tick"), "disabled"),
        Output(replay_id(name, "play"), "children"),
        Output(replay_id(name, "label"), "children"),
        Input(replay_id(name, "play"), "n_clicks"),
        Input(replay_id(name, "live"), "n_clicks"),
        Input(replay_id(name, "tick"), "n_intervals"),
        Input(replay_id(name, "slider"), "value"),
        Input(replay_id(name, "speed"), "value"),
        State(replay_id(name, "state"), "data"),
        State(replay_id(name, "text"), "data"),
        prevent_initial_call=True,
    )


_LINK_JS = """
function (st, href) {
  if (!href) { return window.dash_clientside.no_update; }
  const base = href.replace(/([?&])at=[^&]*(&|$)/, (m, a, b) => b ? a : "").replace(/[?&]$/, "");
  if (!st || st.mode !== "replay" || !st.at) { return base; }
  return base + (base.indexOf("?") >= 0 ? "&" : "?") + "at=" + encodeURIComponent(st.at);
}
"""


def register_report_link(name: str, link_id: str) -> None:
    """Keep the ``href`` of the link ``link_id`` (e.g. :func:`dashboards.components.sitrep_button.sitrep_button`)
    on the picture shown: its ``at=`` is the replay time in replay mode and absent when live (in the browser, no
    round trip). Call at the page module's top level, after :func:`register_replay`."""
    dash.clientside_callback(_LINK_JS, Output(link_id, "href"), Input(replay_id(name, "state"), "data"),
                             State(link_id, "href"), prevent_initial_call=True)


def replay_time(state: dict[str, Any] | None) -> datetime | None:
    """The instant the page must show, or None for the live picture.

    >>> replay_time({"mode": "replay", "at": "2026-07-01T00:30:00.000Z"}).isoformat()
    '2026-07-01T00:30:00+00:00'
    >>> replay_time({"mode": "live", "at": None}) is None, replay_time(None) is None
    (True, True)
    """
    if not state or state.get("mode") != "replay" or not state.get("at"):
        return None
    at = datetime.fromisoformat(str(state["at"]).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def replay_badge(at: datetime | None, lang: str) -> tuple[str, str, str]:
    """Text, class and title of the badge over a replayed map ("回放 HH:MM", China Standard Time); hidden when live.

    >>> replay_badge(datetime(2026, 7, 1, 1, 30, tzinfo=UTC), "en")[:2]
    ('Replay 09:30', 'sr-replay-badge')
    >>> replay_badge(None, "en")[1]
    'sr-replay-badge sr-hidden'
    """
    if at is None:
        return "", "sr-replay-badge sr-hidden", ""
    local = at.astimezone(ZoneInfo(DISPLAY_TZ))
    return (t("replay.badge", lang, time=local.strftime("%H:%M")), "sr-replay-badge",
            t("replay.badge_title", lang, time=local.strftime("%Y-%m-%d %H:%M:%S")))


def replay_situation(state: dict[str, Any] | None, *, layers: list[str] | None = None) -> dict[str, Any] | None:
    """``{layer: FeatureCollection}`` at the replay time (:func:`layers.read.history.situation_at`), or None when live."""
    at = replay_time(state)
    if at is None:
        return None
    from dashboards.context import db_engine
    from layers.read.history import situation_at

    with db_engine().connect() as conn:
        return situation_at(conn, at, layers=layers)


__all__ = ["SPEEDS", "replay_badge", "register_report_link", "replay_controls", "register_replay", "replay_id", "replay_time", "replay_situation"]
