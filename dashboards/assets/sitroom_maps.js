/* Sitroom maps (dashboards/components/maplayers.py): the operational layers as vector tiles, drawn by
   protomaps-leaflet (assets/vendor, BSD-3-Clause) from GET /api/v1/tiles/<layer>/{z}/{x}/{y}.mvt, and the map tools
   that need the Leaflet map in the browser (mouse position, measuring, refresh on live changes).

   The page builds, through dash-leaflet, one LayerGroup per overlay inside its LayersControl; the group's "add" event
   (dash-leaflet's eventHandlers extension point: {"variable": "sitroomMaps.mount"}) puts a protomaps-leaflet layer
   into the group the first time it is shown, so the layer control shows and hides it with the group. What a layer
   looks like comes as data from the server (dashboards/components/mapstyle.py, a hidden element per map); the
   symbols below draw it on canvas. Text from the data is only ever drawn on canvas or set as textContent: it never
   becomes HTML. Clicks on features are answered by the server (the identify callback), not from the tiles. */
(function () {
  "use strict";
  const M = window.sitroomMaps = window.sitroomMaps || {};
  M.maps = M.maps || {};      /* map id -> L.Map */
  M.layers = M.layers || {};  /* map id -> {overlay key -> protomaps layer} */
  M.state = M.state || {};    /* map id -> {busyUntil, drawing, measure: {mode, points, layer}} */
  M.stats = M.stats || {tiles: 0, refreshes: 0};
  const HEX = /^#[0-9a-fA-F]{6}$/;
  const PANE = "sitroomLive";

  function state(mapId) { return (M.state[mapId] = M.state[mapId] || {busyUntil: 0, drawing: false}); }

  M.config = function (mapId) {
    const el = document.getElementById(mapId + "-sitroom");
    if (!el || !el.dataset.sitroomMap) { return null; }
    if (!el._parsed) { el._parsed = JSON.parse(el.dataset.sitroomMap); }
    return el._parsed;
  };

  M.register = function (map, mapId) {
    if (!map || !mapId) { return; }
    if (M.maps[mapId] !== map) {
      M.maps[mapId] = map;
      M.layers[mapId] = {};
      if (!map.getPane(PANE)) {
        const pane = map.createPane(PANE);
        pane.style.zIndex = 350;           /* above the basemap, below the page's own drawings (overlayPane 400) */
        pane.style.pointerEvents = "none"; /* clicks go to the map: the server answers them */
      }
      const cfg = M.config(mapId);
      if (M.symbolScale(cfg) !== 1) {
        map.eachLayer(function (l) { hallBasemap(l); });
        map.on("layeradd", function (e) { hallBasemap(e.layer); });
      }
    }
  };

  /* A hall wall sqrt(2) x 1920 px (2,716 px) wide or more (its text is in rem, 1/120 of the width): the offline basemap's tiles
     shown on 512 px and drawn at 512 px (@2x), one zoom out: the same picture as on a 1920 wall, at twice the size,
     so that its labels and lines grow with the page's text (dashboards/tiles.py serves <y>@2x.png). */
  const OFFLINE_TILES = /\/tiles\/base[a-z-]*\/\{z\}\/\{x\}\/\{y\}\.png$/;
  function hallBasemap(layer) {
    if (!(layer instanceof L.TileLayer) || layer.options.sitroomHall || !OFFLINE_TILES.test(layer._url || "")) {
      return;
    }
    layer.options.sitroomHall = true;
    layer.options.tileSize = 512;
    layer.options.zoomOffset = -1;
    if (layer.options.maxNativeZoom != null) { layer.options.maxNativeZoom += 1; }
    if (layer.options.minNativeZoom != null) { layer.options.minNativeZoom += 1; }
    layer.setUrl(layer._url.replace("{y}.png", "{y}@2x.png"), true);
    if (layer._map) { layer._resetGrid(); layer.redraw(); }
  }

  function mapIdOf(ctx) {
    if (!ctx || !ctx.map || !ctx.map.getContainer) { return null; }
    const el = ctx.map.getContainer();
    return el.id || (el.closest("[id]") || {}).id || null;
  }

  /* ------------------------------------------------------------------------------------------- styling */
  M.passes = function (s, p) {
    if (!s.where) { return true; }
    if (p.cluster) { return clusterCount(s, p) > 0; }
    return s.where.in.indexOf(p[s.where.attr]) >= 0;
  };
  function clusterCount(s, p) {
    if (!s.where || s.where.attr !== s.by) { return p.point_count || 0; }
    let n = 0;
    for (const v of s.where.in) { n += p["count_" + v] || 0; }
    return n;
  }
  function clusterTop(s, p) {
    const order = Object.keys(s.colours);
    let top = p[s.by];
    if (s.where && s.where.attr === s.by) {
      top = null;
      for (const v of order) { if (s.where.in.indexOf(v) >= 0 && p["count_" + v]) { top = v; } }
    }
    return top;
  }
  M.colour = function (s, p) {
    if (s.colour_attr) {
      const c = p[s.colour_attr];
      return typeof c === "string" && HEX.test(c) ? c : s.default;
    }
    return s.colours[p[s.by]] || s.default;
  };

  function shapePath(ctx, shape, x, y, r) {
    ctx.beginPath();
    if (shape === "square") {
      ctx.rect(x - r, y - r, 2 * r, 2 * r);
    } else if (shape === "diamond") {
      ctx.moveTo(x, y - r * 1.25); ctx.lineTo(x + r * 1.25, y); ctx.lineTo(x, y + r * 1.25);
      ctx.lineTo(x - r * 1.25, y); ctx.closePath();
    } else if (shape === "triangle") {
      ctx.moveTo(x, y - r * 1.35); ctx.lineTo(x + r * 1.2, y + r * 0.85); ctx.lineTo(x - r * 1.2, y + r * 0.85);
      ctx.closePath();
    } else {
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
  }

  function PointSymbolizer(s) { this.s = s; }
  PointSymbolizer.prototype.draw = function (ctx, geom, z, f) {
    const s = this.s, p = f.props;
    if (!M.passes(s, p)) { return; }
    const x = geom[0][0].x, y = geom[0][0].y, k = s.k || 1;
    ctx.globalAlpha = 1;
    if (p.cluster) {
      const n = clusterCount(s, p);
      const r = Math.min(16, 7 + 2.2 * Math.log2(Math.max(n, 1))) * k;
      ctx.fillStyle = s.colours[clusterTop(s, p)] || s.default;
      ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2 * k;
      shapePath(ctx, "circle", x, y, r); ctx.fill(); ctx.stroke();
      ctx.fillStyle = "#10202f"; ctx.font = "700 " + 10 * k + "px sans-serif"; ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.strokeStyle = "rgba(255,255,255,0.85)"; ctx.lineWidth = 2.5 * k;
      const text = n > 9999 ? Math.round(n / 1000) + "k" : String(n);
      ctx.strokeText(text, x, y); ctx.fillText(text, x, y);
      return;
    }
    const v = p[s.by];
    const r = ((s.sizes && s.sizes[v]) || s.size || 5) * k;
    const c = M.colour(s, p);
    const shape = (s.shapes && s.shapes[v]) || s.shape || "circle";
    ctx.lineWidth = 1.5 * k; ctx.strokeStyle = "#ffffff";
    if (s.load) {
      /* shelters: outline by status, filled from the bottom as far as occupied */
      const cap = Number(p.capacity) || 0, occ = Number(p.occupancy) || 0;
      const share = cap > 0 ? Math.max(0, Math.min(1, occ / cap)) : 0;
      ctx.fillStyle = "#ffffff"; shapePath(ctx, shape, x, y, r); ctx.fill();
      ctx.fillStyle = c; ctx.globalAlpha = 0.9;
      ctx.fillRect(x - r, y + r - 2 * r * share, 2 * r, 2 * r * share);
      ctx.globalAlpha = 1; ctx.strokeStyle = c; ctx.lineWidth = 2 * k; shapePath(ctx, shape, x, y, r); ctx.stroke();
      return;
    }
    ctx.fillStyle = c; shapePath(ctx, shape, x, y, r); ctx.fill(); ctx.stroke();
    if (s.glyphs) {
      const g = s.glyphs[p[s.glyph_by]];
      if (g) {
        ctx.fillStyle = "#ffffff"; ctx.font = "700 " + (g.length > 1 ? 7 : 9) * k + "px sans-serif";
        ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.fillText(g, x, y + 0.5 * k);
      }
    }
  };

  function AreaSymbolizer(s) { this.s = s; }
  AreaSymbolizer.prototype.draw = function (ctx, geom, z, f) {
    const s = this.s, p = f.props;
    if (!M.passes(s, p)) { return; }
    const c = M.colour(s, p), k = s.k || 1;
    ctx.globalAlpha = 1;
    if (f.geomType === 1) {  /* a point of a mostly-area layer (an annotation's marker) */
      ctx.fillStyle = c; ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2 * k;
      for (const part of geom) {
        shapePath(ctx, "circle", part[0].x, part[0].y, (s.point_size || 6) * k); ctx.fill(); ctx.stroke();
      }
      return;
    }
    ctx.beginPath();
    for (const ring of geom) {
      for (let i = 0; i < ring.length; i++) {
        if (i === 0) { ctx.moveTo(ring[i].x, ring[i].y); } else { ctx.lineTo(ring[i].x, ring[i].y); }
      }
    }
    if (f.geomType === 3 && s.fill_opacity > 0) {
      ctx.globalAlpha = s.fill_opacity; ctx.fillStyle = c; ctx.fill();
    }
    ctx.globalAlpha = 0.95;
    ctx.strokeStyle = c;
    ctx.lineWidth = ((s.widths && s.widths[p[s.by]]) || s.width || 1.5) * k;
    ctx.setLineDash((s.dash || []).map(function (d) { return d * k; }));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  };

  /* a label at the middle of a feature (the bounding box of its part in the tile), once per feature in view */
  function LabelSymbolizer(s, key) { this.s = s; this.key = key; }
  LabelSymbolizer.prototype.place = function (layout, geom, f) {
    const s = this.s, p = f.props;
    if (!M.passes(s, p) || p.cluster) { return undefined; }
    const minz = s.label_min_zoom && s.label_min_zoom[p[s.by]];
    if (minz && layout.zoom < minz) { return undefined; }
    let text = p[s.label];
    if ((typeof text !== "string" || !text) && s.label_fallback) { text = s.label_fallback[p[s.label_fallback_by]]; }
    if (typeof text !== "string" || !text) { return undefined; }
    text = text.length > 24 ? text.slice(0, 23) + "…" : text;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const ring of geom) {
      for (const q of ring) { x0 = Math.min(x0, q.x); x1 = Math.max(x1, q.x); y0 = Math.min(y0, q.y); y1 = Math.max(y1, q.y); }
    }
    const k = s.k || 1;
    const anchor = geom[0][0].clone();
    anchor.x = (x0 + x1) / 2;
    anchor.y = f.geomType === 1 ? y0 - 10 * k : (y0 + y1) / 2;
    const font = "600 " + 12 * k + "px 'Noto Sans CJK SC', 'Noto Sans SC', sans-serif";
    layout.scratch.font = font;
    const w = layout.scratch.measureText(text).width;
    const colour = M.colour(s, p);
    const draw = function (ctx) {
      ctx.globalAlpha = 1; ctx.font = font; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.lineWidth = 3 * k; ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.strokeText(text, 0, 0);
      ctx.fillStyle = s.label_colour || (colour === "#fdd835" ? "#6d5b00" : "#1c2733"); ctx.fillText(text, 0, 0);
    };
    return [{anchor: anchor, bboxes: [{minX: anchor.x - w / 2 - 2 * k, minY: anchor.y - 8 * k,
                                       maxX: anchor.x + w / 2 + 2 * k, maxY: anchor.y + 8 * k}], draw: draw,
             deduplicationKey: this.key + ":" + (f.id || text), deduplicationDistance: 4096}];
  };

  /* the size of the symbols, lines and labels a map draws: 1, or the width over 1920 px on a hall wall (see
     hallBasemap), so that they grow with the wall's text */
  M.symbolScale = function (cfg) {
    const k = (window.innerWidth || 0) / 1920;
    return cfg && cfg.hall && k >= Math.SQRT2 ? Math.min(k, 4) : 1;  /* wall.py: round(log2(k)) >= 1 */
  };

  M.vectorLayer = function (key, o, k) {
    const P = window.protomapsL;
    const s = k && k !== 1 ? Object.assign({}, o.style, {k: k}) : o.style;
    const paint = [{dataLayer: s.layer, symbolizer: s.kind === "point" ? new PointSymbolizer(s) : new AreaSymbolizer(s)}];
    const labels = s.label ? [{dataLayer: s.layer, symbolizer: new LabelSymbolizer(s, key)}] : [];
    const layer = P.leafletLayer({url: o.url, paintRules: paint, labelRules: labels, levelDiff: 0,
                                  maxDataZoom: o.maxZoom, minZoom: o.minZoom, maxZoom: 22, pane: PANE,
                                  attribution: "", tileDelay: 0});
    layer.on("tileload", function () { M.stats.tiles += 1; });
    layer.sitroomLayer = s.layer;
    return layer;
  };

  /* Leaflet titles the layer control's button "Layers" in every language: the page's word instead. The control
     may be added to the map after its first overlay, so a miss is tried again a few times while the page renders. */
  function titleLayerControl(map, cfg, tries) {
    const text = cfg && cfg.texts && cfg.texts.layers;
    const button = text && map.getContainer().querySelector(".leaflet-control-layers-toggle");
    if (button) {
      button.title = text;
      button.setAttribute("aria-label", text);
    } else if (text && tries > 0) {
      setTimeout(function () { titleLayerControl(map, cfg, tries - 1); }, 100);
    }
  }

  /* eventHandlers "add" of an overlay's LayerGroup (id "<map id>-ov-<overlay key>") */
  M.mount = function (e, ctx) {
    const group = e.target;
    const mapId = mapIdOf(ctx);
    M.register(ctx.map, mapId);
    const cfg = M.config(mapId);
    titleLayerControl(ctx.map, cfg, 20);
    if (group._sitroomLayer || !window.protomapsL) { return; }
    const key = String(ctx.id || "").split("-ov-")[1];
    const o = cfg && cfg.overlays[key];
    if (!o) { return; }
    group._sitroomLayer = M.vectorLayer(key, o, M.symbolScale(cfg));
    M.layers[mapId][key] = group._sitroomLayer;
    group.addLayer(group._sitroomLayer);
  };

  /* a site basemap of vector tiles (dashboards/components/basemap.py): the Protomaps basemap schema with
     protomaps-leaflet's own "light" style, the OpenMapTiles schema with the small style below */
  function omtPaint(P) {
    const is = function (layer, classes) {
      return function (z, f) { return classes.indexOf(f.props["class"]) >= 0; };
    };
    const road = function (classes, colour, width) {
      return {dataLayer: "transportation", filter: is("transportation", classes),
              symbolizer: new P.LineSymbolizer({color: colour, width: width})};
    };
    return [
      {dataLayer: "landcover", symbolizer: new P.PolygonSymbolizer({fill: "#dce9cf"})},
      {dataLayer: "landuse", filter: is("landuse", ["residential", "suburb", "neighbourhood"]),
       symbolizer: new P.PolygonSymbolizer({fill: "#e8e2d8"})},
      {dataLayer: "park", symbolizer: new P.PolygonSymbolizer({fill: "#cde3b6"})},
      {dataLayer: "water", symbolizer: new P.PolygonSymbolizer({fill: "#a8cbe6"})},
      {dataLayer: "waterway", symbolizer: new P.LineSymbolizer({color: "#a8cbe6", width: 1.2})},
      {dataLayer: "building", minzoom: 14, symbolizer: new P.PolygonSymbolizer({fill: "#d9d0c9", stroke: "#c9bfb6",
                                                                                 width: 0.5})},
      {dataLayer: "boundary", symbolizer: new P.LineSymbolizer({color: "#9e9cab", width: 1, dash: [4, 3]})},
      road(["minor", "service", "track", "path"], "#ffffff", 1),
      road(["secondary", "tertiary"], "#fbe9a8", 1.8),
      road(["primary", "trunk"], "#f9c97a", 2.4),
      road(["motorway"], "#f2a65a", 3),
      road(["rail", "transit"], "#9e9e9e", 1)
    ];
  }
  function omtLabels(P, lang) {
    const props = lang === "en" ? ["name:en", "name:latin", "name"] : ["name:zh", "name", "name:latin"];
    return [{dataLayer: "place", symbolizer: new P.CenteredTextSymbolizer({
      labelProps: props, fill: "#2b2b2b", stroke: "#ffffff", width: 2,
      font: "500 12px 'Noto Sans CJK SC', sans-serif"})}];
  }
  M.mountBasemap = function (e, ctx) {
    const group = e.target;
    const P = window.protomapsL;
    const m = String(ctx.id || "").match(/^sr-vbase-([a-z]+)-(\d+)-(.+)$/);
    if (group._sitroomLayer || !P || !m) { return; }
    const url = "/tiles/" + m[3] + "/{z}/{x}/{y}.pbf";
    const lang = (document.documentElement.lang || "").indexOf("en") === 0 ? "en" : "zh";
    const opts = {url: url, maxDataZoom: Number(m[2]), attribution: ""};
    group._sitroomLayer = m[1] === "protomaps"
      ? P.leafletLayer(Object.assign(opts, {flavor: "light", lang: lang}))
      : P.leafletLayer(Object.assign(opts, {paintRules: omtPaint(P), labelRules: omtLabels(P, lang),
                                            backgroundColor: "#f2efe9"}));
    group.addLayer(group._sitroomLayer);
  };

  /* fresh tiles of the layers a committed change touched (live push, dashboards/components/live.py) */
  M.refresh = function (mapId, live) {
    const layers = (live && live.layers) || [];
    for (const key of Object.keys(M.layers[mapId] || {})) {
      const layer = M.layers[mapId][key];
      if (!(live && live.full) && layers.indexOf(layer.sitroomLayer) < 0) { continue; }
      for (const view of layer.views.values()) { view.tileCache.cache.clear(); }
      layer.clearLayout();
      layer.rerenderTiles();
      M.stats.refreshes += 1;
    }
  };

  /* style of the analyst's zones (a GeoJSON of dash-leaflet): the colour of the zone's kind, from its hideout */
  M.zoneStyle = function (feature, context) {
    const colours = (context && context.hideout && context.hideout.colours) || {};
    const c = colours[(feature.properties || {}).kind] || "#d84315";
    return {color: c, weight: 2, fillColor: c, fillOpacity: 0.12};
  };

  /* a monitoring station (the /monitor page's GeoJSON of dash-leaflet, one feature per station): a circle in the
     colour of its state, from the hideout; the radius and the state come from the feature */
  M.stationPoint = function (feature, latlng, context) {
    const p = feature.properties || {};
    const colours = (context && context.hideout && context.hideout.colours) || {};
    const c = colours[p.state] || colours.ok || "#2e7d32";
    return window.L.circleMarker(latlng, {radius: p.radius || 7, color: "#ffffff", weight: 1.5, fillColor: c,
                                          fillOpacity: 0.95});
  };

  /* ---------------------------------------------------------------------------------- map events */
  M.busy = function (mapId) {
    const st = state(mapId);
    return st.drawing || !!(st.measure && st.measure.mode) || Date.now() < st.busyUntil;
  };
  M.drawStart = function (e, ctx) { const st = state(mapIdOf(ctx)); st.drawing = true; };
  M.drawStop = function (e, ctx) {
    const st = state(mapIdOf(ctx));
    st.drawing = false;
    st.busyUntil = Date.now() + 500;  /* the click that finished the drawing is not a request for a popup */
  };

  M.mousemove = function (e, ctx) {
    const mapId = mapIdOf(ctx);
    M.register(ctx.map, mapId);
    const cfg = M.config(mapId);
    if (!cfg || !cfg.stores.mouse) { return; }
    const st = state(mapId);
    st.mouse = [e.latlng.lng, e.latlng.lat];
    if (st.mouseTimer) { return; }
    st.mouseTimer = setTimeout(function () {
      st.mouseTimer = null;
      window.dash_clientside.set_props(cfg.stores.mouse, {data: {lon: st.mouse[0], lat: st.mouse[1]}});
    }, 200);
  };

  /* ---------------------------------------------------------------------------------- measuring */
  M.click = function (e, ctx) {
    const mapId = mapIdOf(ctx);
    M.register(ctx.map, mapId);
    const st = state(mapId);
    if (!st.measure || !st.measure.mode) { return; }
    st.measure.points.push([e.latlng.lng, e.latlng.lat]);
    drawMeasure(mapId);
  };

  function drawMeasure(mapId) {
    const st = state(mapId), map = M.maps[mapId], cfg = M.config(mapId);
    if (!map || !cfg) { return; }
    const m = st.measure;
    if (m.layer) { map.removeLayer(m.layer); m.layer = null; }
    if (m.points.length) {
      const latlngs = m.points.map(function (q) { return [q[1], q[0]]; });
      const opts = {color: "#d81b60", weight: 3, dashArray: "6 5", fillOpacity: 0.12, interactive: false};
      m.layer = window.L.layerGroup([
        m.kind === "area" && latlngs.length > 2 ? window.L.polygon(latlngs, opts) : window.L.polyline(latlngs, opts)
      ].concat(latlngs.map(function (ll) {
        return window.L.circleMarker(ll, {radius: 4, color: "#d81b60", fillColor: "#ffffff", fillOpacity: 1,
                                          weight: 2, interactive: false});
      }))).addTo(map);
    }
    window.dash_clientside.set_props(cfg.stores.measure, {data: {kind: m.kind || null, active: !!m.mode,
                                                                 points: m.points.slice()}});
  }

  /* "distance" or "area": start measuring afresh; the same mode again: stop, keeping the figure and its numbers;
     "clear": stop and forget */
  M.setMeasure = function (mapId, mode) {
    const st = state(mapId);
    const m = st.measure = st.measure || {mode: null, points: [], layer: null};
    if (mode === m.mode) {
      m.mode = null;
    } else {
      m.points = [];
      m.mode = m.kind = mode === "clear" ? null : mode;
    }
    const map = M.maps[mapId];
    if (map) { map.getContainer().classList.toggle("sr-measuring", !!m.mode); }
    drawMeasure(mapId);
    return m.mode;
  };
})();
