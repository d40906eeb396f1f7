/* gridgov map page: town, community and grid outlines from /v1/towns, /v1/communities and /v1/grids, a popup per grid. No network beyond this server
   unless a basemap is configured. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("map-config").textContent);
  var statusEl = document.getElementById("status");

  var STYLES = {
    towns: { color: "#1f3864", weight: 2.5, fill: false, interactive: false },
    communities: { color: "#7f7f7f", weight: 1, dashArray: "4 3", fill: false, interactive: false },
    grids: { color: "#2e75b6", weight: 1, fillColor: "#9dc3e6", fillOpacity: 0.15 },
    gridSelected: { color: "#c00000", weight: 2.5, fillColor: "#f4b183", fillOpacity: 0.35 }
  };

  // Half-level zoom steps let the whole city fill the window on load.
  var map = L.map("map", { zoomControl: true, preferCanvas: false, minZoom: 8, maxZoom: 18, zoomSnap: 0.5 });
  window.gridgovMap = map; // for debugging in the console and for the browser tests

  // Panes inside the overlay pane, so grids sit under community lines, which sit under town lines.
  [["grids", 410], ["communities", 420], ["towns", 430]].forEach(function (pane) {
    map.createPane(pane[0], map.getPane("overlayPane")).style.zIndex = pane[1];
  });

  var baseLayers = {};
  var noBasemap = L.layerGroup();
  var BASEMAP_NAMES = { osm: "OpenStreetMap", amap: "高德地图", tianditu: "天地图" };
  if (config.basemap !== "none" && config.tileUrl) {
    var tiles = L.tileLayer(config.tileUrl, {
      attribution: config.tileAttribution, maxZoom: 19, subdomains: config.basemap === "osm" ? "abc" : "1234"
    });
    baseLayers[BASEMAP_NAMES[config.basemap] || config.basemap] = tiles;
    baseLayers["无底图"] = noBasemap;
    tiles.addTo(map);
  }

  var towns = L.geoJSON(null, { pane: "towns", style: STYLES.towns }).addTo(map);
  var communities = L.geoJSON(null, { pane: "communities", style: STYLES.communities }).addTo(map);
  var selectedCode = null;
  // Thousands of grid polygons: one canvas draws them in a fraction of the time SVG needs.
  var gridRenderer = L.canvas({ pane: "grids", padding: 0.2 });
  var grids = L.geoJSON(null, {
    pane: "grids",
    renderer: gridRenderer,
    style: function (feature) {
      return feature.properties.code === selectedCode ? STYLES.gridSelected : STYLES.grids;
    },
    onEachFeature: function (feature, layer) {
      layer.on("click", function (event) { openGridPopup(feature, layer, event.latlng); });
    }
  }).addTo(map);

  // How many grid polygons are on the map (the canvas has no DOM node per polygon to count).
  window.gridgovGridCount = function () { return grids.getLayers().length; };

  var overlays = { "镇街": towns, "村（社区）": communities, "网格": grids };
  L.control.layers(baseLayers, overlays, { collapsed: false }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  var legend = L.control({ position: "bottomright" });
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "legend");
    div.innerHTML = '<div><i class="town"></i>镇街</div><div><i class="community"></i>村（社区）</div>' +
      '<div><i class="grid"></i>网格</div>';
    return div;
  };
  legend.addTo(map);

  function setStatus(message, warning) {
    statusEl.textContent = message;
    statusEl.classList.toggle("warning", Boolean(warning));
  }

  function bboxParam() {
    var b = map.getBounds();
    var clamp = function (v, lo, hi) { return Math.min(hi, Math.max(lo, v)); };
    return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
      clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)].map(function (v) { return v.toFixed(6); }).join(",");
  }

  // One in-flight request per layer: a newer view aborts the older request.
  var pending = {};
  var loadedCounts = {};

  var requestedUrl = {};

  function loadLayer(name, group, withBbox) {
    var url = config.api.layers + name + "?zoom=" + apiZoom() + (withBbox ? "&bbox=" + bboxParam() : "") +
      (config.coords !== "wgs84" ? "&coords=" + config.coords : "");
    // Start-up and map events can ask for the same view several times: ask the server once.
    if (requestedUrl[name] === url && (pending[name] || typeof loadedCounts[name] === "number")) { return; }
    requestedUrl[name] = url;
    if (pending[name]) { pending[name].abort(); }
    var controller = new AbortController();
    pending[name] = controller;
    return fetch(url, { signal: controller.signal, headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
      })
      .then(function (result) {
        if (pending[name] !== controller) { return; }
        pending[name] = null;
        group.clearLayers();
        if (!result.ok) {
          loadedCounts[name] = null;
          var tooLarge = result.body && result.body.error === "layer_too_large";
          throw new Error(tooLarge ? "当前范围" + layerLabel(name) + "过多，请放大地图" : layerLabel(name) + "加载失败");
        }
        group.addData(result.body);
        loadedCounts[name] = result.body.features.length;
        showCounts();
      })
      .catch(function (error) {
        if (error.name === "AbortError") { return; }
        setStatus(error.message, true);
      });
  }

  // The API simplifies per whole zoom level.
  function apiZoom() { return Math.round(map.getZoom()); }

  function layerLabel(name) {
    return { towns: "镇街", communities: "村（社区）", grids: "网格" }[name];
  }

  function showCounts() {
    var parts = [];
    ["towns", "communities", "grids"].forEach(function (name) {
      if (typeof loadedCounts[name] === "number") { parts.push(layerLabel(name) + " " + loadedCounts[name]); }
    });
    var hint = map.getZoom() < config.gridMinZoom && map.hasLayer(grids) ? "（放大至 " + config.gridMinZoom + " 级显示网格）" : "";
    setStatus(parts.join(" · ") + hint, false);
  }

  var lastTownZoom = null;

  function refresh() {
    var zoom = map.getZoom();
    // Towns are few: always the whole city, reloaded only when the zoom (their simplification) changes.
    if (apiZoom() !== lastTownZoom && map.hasLayer(towns)) {
      lastTownZoom = apiZoom();
      loadLayer("towns", towns, false);
    }
    if (map.hasLayer(communities)) {
      if (zoom >= config.communityMinZoom) { loadLayer("communities", communities, true); } else { communities.clearLayers(); }
    }
    if (map.hasLayer(grids)) {
      if (zoom >= config.gridMinZoom) {
        loadLayer("grids", grids, true);
      } else {
        if (pending.grids) { pending.grids.abort(); pending.grids = null; }
        grids.clearLayers();
        loadedCounts.grids = null;
        showCounts();
      }
    }
    writeHash();
  }

  function escapeHtml(value) {
    return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function popupHtml(d) {
    var rows = [
      ["村（社区）", d.community_name], ["镇街", d.town_name], ["人口", d.population],
      ["标准地址", d.address_count], ["市场主体", d.entity_count], ["网格员", d.worker_count], ["工作量", d.workload]
    ];
    if (typeof d.open_tasks === "number") {
      rows.push(["在办任务", d.open_tasks], ["逾期任务", d.overdue_tasks], ["近30天线索", d.clues_30d]);
    }
    if (typeof d.area_km2 === "number") { rows.push(["面积（km²）", d.area_km2.toFixed(3)]); }
    return '<div class="grid-popup"><h3 class="grid-code">' + escapeHtml(d.code) + "</h3><table>" +
      rows.map(function (r) { return "<tr><th>" + escapeHtml(r[0]) + "</th><td>" + escapeHtml(r[1]) + "</td></tr>"; }).join("") +
      "</table></div>";
  }

  function openGridPopup(feature, layer, latlng) {
    selectedCode = feature.properties.code;
    grids.setStyle(grids.options.style);
    var popup = L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(popupHtml(feature.properties)).openOn(map);
    fetch(config.api.grid + encodeURIComponent(feature.properties.code))
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (details) { if (details && map.hasLayer(popup)) { popup.setContent(popupHtml(details)); } })
      .catch(function () { /* the layer's own properties are already shown */ });
  }

  map.on("popupclose", function () {
    selectedCode = null;
    grids.setStyle(grids.options.style);
  });

  // The view lives in the URL (#zoom/lat/lon) so that a view can be shared or reloaded.
  function readHash() {
    var m = /^#(\d{1,2}(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(window.location.hash);
    return m ? { zoom: parseFloat(m[1]), center: L.latLng(parseFloat(m[2]), parseFloat(m[3])) } : null;
  }

  function writeHash() {
    var c = map.getCenter();
    var hash = "#" + map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5);
    if (window.location.hash !== hash) { window.history.replaceState(null, "", hash); }
  }

  map.on("moveend", refresh);
  map.on("overlayadd", function (event) {
    if (event.layer === towns) { lastTownZoom = null; }
    refresh();
  });
  map.on("overlayremove", function (event) {
    var name = event.layer === towns ? "towns" : event.layer === communities ? "communities" : "grids";
    loadedCounts[name] = null;
    requestedUrl[name] = null;
    showCounts();
  });

  var initial = readHash();
  if (initial) {
    map.setView(initial.center, initial.zoom);
  } else {
    map.fitBounds(config.bounds, { padding: [8, 8] });
  }
})();
