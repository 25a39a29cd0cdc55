/* Leaflet's own controls in the page's language (issue 12: no English fragment on a Chinese page). Leaflet builds
   its zoom buttons and its attribution credit with English tooltips ("Zoom in", "Zoom out", "A JavaScript library
   for interactive maps") whatever the page's language; on a page whose <html lang> is zh-CN this swaps them for
   Chinese as the controls appear. English pages keep Leaflet's own texts. */
(function () {
  "use strict";
  const ZH = {
    ".leaflet-control-zoom-in": "放大",
    ".leaflet-control-zoom-out": "缩小",
    ".leaflet-control-attribution a[href*='leafletjs.com']": "Leaflet：交互式地图的 JavaScript 库",
  };
  function localise() {
    if ((document.documentElement.getAttribute("lang") || "").toLowerCase() !== "zh-cn") { return; }
    Object.keys(ZH).forEach(sel => document.querySelectorAll(sel).forEach(el => {
      if (el.getAttribute("title") !== ZH[sel]) { el.setAttribute("title", ZH[sel]); }
      if (el.hasAttribute("aria-label") && el.getAttribute("aria-label") !== ZH[sel]) {
        el.setAttribute("aria-label", ZH[sel]);
      }
    }));
  }
  new MutationObserver(localise).observe(document.documentElement, {childList: true, subtree: true,
                                                                    attributes: true, attributeFilter: ["lang"]});
  localise();
})();
