/* Leaflet.draw in the page's language (dashboards/components/drawlocal.py puts the strings in the page).
   dash-leaflet loads Leaflet.draw lazily and assigns L.drawLocal (English) just before it builds the toolbar, so
   L.drawLocal becomes a property: the assignment is kept as the default, and every read returns the default
   deep-merged with the strings of the element [data-sitroom-drawlocal] of the page shown. */
(function () {
  "use strict";
  function merge(base, over) {
    const out = Array.isArray(base) ? base.slice() : Object.assign({}, base);
    Object.keys(over || {}).forEach(k => {
      const v = over[k];
      out[k] = (v && typeof v === "object" && base && typeof base[k] === "object") ? merge(base[k], v) : v;
    });
    return out;
  }
  function install(L) {
    if (L.__sitroomDrawLocal) { return; }
    L.__sitroomDrawLocal = true;
    let fallback = L.drawLocal || {};
    let cache = {raw: null, value: null, base: null};
    Object.defineProperty(L, "drawLocal", {
      configurable: true,
      get: function () {
        const el = document.querySelector("[data-sitroom-drawlocal]");
        const raw = el ? el.getAttribute("data-sitroom-drawlocal") : null;
        if (!raw) { return fallback; }
        if (cache.raw !== raw || cache.base !== fallback) {
          let mine = {};
          try { mine = JSON.parse(raw); } catch (e) { mine = {}; }
          cache = {raw: raw, base: fallback, value: merge(fallback, mine)};
        }
        return cache.value;
      },
      set: function (v) { fallback = v || {}; }
    });
  }
  if (window.L) { install(window.L); return; }
  const timer = setInterval(() => { if (window.L) { clearInterval(timer); install(window.L); } }, 50);
})();
