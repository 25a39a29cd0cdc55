/* Sitroom live push in the browser (dashboards/components/live.py puts the pieces in a page).

   Every element with a `data-sitroom-live` attribute ({"store": id, "url": ...}) gets ONE EventSource on
   /api/v1/events; what arrives is written (after 50 ms, at most every 500 ms in a burst) to the dcc.Store `store` with
   dash_clientside.set_props, as
     {seq, full: bool, changes: [{layer, op, ids, version}], layers: [...], version, cursor, connected: bool, t: ms}
   (`cursor` is the store's "version-xmin" after the newest change, as /api/v1/wall/version gives it).
   `full` means "refetch everything" (first connect, resync, database back). The browser resumes after a network
   error by itself (Last-Event-ID); after an HTTP error (503: too many streams) or 40 s of silence this code reopens
   the stream with ?last_event_id= and a growing pause (1 s .. 15 s). When the element leaves the page, the stream
   is closed. window.sitroomLive.stats[store] = {events, last_ms} is for tests and benchmarks. */
(function () {
  "use strict";
  if (window.sitroomLive) { return; }
  const L = window.sitroomLive = {sources: {}, stats: {}};
  const SILENCE_MS = 40000;
  const THROTTLE_MS = 500;

  function write(s) {
    s.timer = null;
    const evs = s.pending;
    s.pending = [];
    if (!evs.length || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
    const changes = evs.filter(e => e.kind === "change").map(e => ({layer: e.layer, op: e.op, ids: e.ids,
                                                                     version: e.version}));
    const full = evs.some(e => e.kind === "hello" || e.kind === "resync" || (e.kind === "status" && e.db));
    let version = null;
    let cursor = null;
    evs.forEach(e => {
      if (typeof e.version === "number" && e.version >= (version || 0)) { version = e.version; cursor = e.cursor || null; }
    });
    s.seq += 1;
    const data = {seq: s.seq, full: full, changes: changes, layers: [...new Set(changes.map(c => c.layer))],
                  version: version, cursor: cursor, connected: s.connected, db: s.db, t: Date.now()};
    window.dash_clientside.set_props(s.cfg.store, {data: data});
  }

  function push(s, ev) {
    s.pending.push(ev);
    const st = L.stats[s.cfg.store] = L.stats[s.cfg.store] || {events: 0, last_ms: null, ids: []};
    st.events += 1;
    st.last_ms = Date.now();
    if (ev.ids) { st.ids = st.ids.concat(ev.ids).slice(-200); }
    if (!s.timer) {  // the first change of a quiet spell is written after 50 ms, a burst at most every 500 ms
      s.timer = setTimeout(() => { s.lastWrite = Date.now(); write(s); },
                           Math.max(50, (s.lastWrite || 0) + THROTTLE_MS - Date.now()));
    }
  }

  function connected(s, ok) {
    if (s.connected !== ok) { s.connected = ok; push(s, {kind: "connection", connected: ok}); }
  }

  function connect(s) {
    if (s.closed) { return; }
    let url = s.cfg.url;
    if (s.lastId) { url += (url.indexOf("?") >= 0 ? "&" : "?") + "last_event_id=" + encodeURIComponent(s.lastId); }
    const es = s.es = new EventSource(url, {withCredentials: true});
    s.heard = Date.now();
    const heard = ev => { s.heard = Date.now(); if (ev.lastEventId) { s.lastId = ev.lastEventId; } };
    const on = (name, f) => es.addEventListener(name, ev => {
      heard(ev);
      let d = {};
      try { d = JSON.parse(ev.data || "{}"); } catch (e) { return; }
      f(d);
    });
    on("hello", d => { s.backoff = 1000; s.db = d.db; connected(s, true); push(s, Object.assign({kind: "hello"}, d)); });
    on("change", d => push(s, Object.assign({kind: "change"}, d)));
    on("resync", d => push(s, Object.assign({kind: "resync"}, d)));
    on("status", d => { s.db = d.db; push(s, Object.assign({kind: "status"}, d)); });
    on("ping", () => {});
    es.onopen = () => { s.heard = Date.now(); };
    es.onerror = () => {
      connected(s, false);
      if (es.readyState === 2) { reopen(s); }  // closed for good (HTTP error): we retry, with a pause
    };
  }

  function reopen(s) {
    if (s.es) { s.es.close(); }
    if (s.retry) { return; }
    s.retry = setTimeout(() => { s.retry = null; connect(s); }, s.backoff);
    s.backoff = Math.min(s.backoff * 2, 15000);
  }

  function scan() {
    const seen = {};
    document.querySelectorAll("[data-sitroom-live]").forEach(el => {
      let cfg;
      try { cfg = JSON.parse(el.getAttribute("data-sitroom-live")); } catch (e) { return; }
      seen[cfg.store] = true;
      const old = L.sources[cfg.store];
      if (old && old.cfg.url === cfg.url) { return; }
      if (old) { old.closed = true; if (old.es) { old.es.close(); } }
      const s = L.sources[cfg.store] = {cfg: cfg, seq: 0, pending: [], timer: null, es: null, lastId: null,
                                        backoff: 1000, connected: null, db: null, heard: Date.now()};
      connect(s);
    });
    Object.keys(L.sources).forEach(k => {
      const s = L.sources[k];
      if (!seen[k]) {                        // the page with this store was left
        s.closed = true;
        if (s.es) { s.es.close(); }
        delete L.sources[k];
      } else if (Date.now() - s.heard > SILENCE_MS) {   // no heartbeat: the connection is dead without an error
        s.heard = Date.now();
        connected(s, false);
        reopen(s);
      }
    });
  }
  setInterval(scan, 500);
  if (document.readyState !== "loading") { scan(); } else { document.addEventListener("DOMContentLoaded", scan); }
})();
