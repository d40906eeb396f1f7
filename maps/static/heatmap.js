/* gridgov town leader's heatmap page: heat, H3 hexagons and hotspots of clues over town, community and grid
   outlines, with a time slider, an industry filter, the top 10 hotspots and this period against the previous one.
   Everything comes from this server (no CDN): /v1/heatmap, /v1/hotspots and the outline layers. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("heat-config").textContent);
  var statusEl = document.getElementById("status");
  var map = L.map("map", { preferCanvas: true, zoomControl: true });
  map.fitBounds(config.bounds);
  window.gridgovHeatmap = { map: map, layers: {}, legend: [], loaded: false };

  var HOT_COLOURS = {
    hot_99: "#b2182b", hot_95: "#ef8a62", hot_90: "#fddbc7", not_significant: "#f7f7f7",
    cold_90: "#d1e5f0", cold_95: "#67a9cf", cold_99: "#2166ac"
  };
  var CLASS_LABELS = {
    hot_99: "热点（99%）", hot_95: "热点（95%）", hot_90: "热点（90%）", not_significant: "不显著",
    cold_90: "冷点（90%）", cold_95: "冷点（95%）", cold_99: "冷点（99%）"
  };
  var EMERGING_LABELS = {
    "new": "新热点", consecutive: "连续热点", intensifying: "加剧热点", persistent: "持续热点",
    diminishing: "减弱热点", sporadic: "零星热点", oscillating: "振荡热点", historical: "历史热点"
  };
  var HEX_COLOURS = ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704", "#4a1503", "#2d0c02"];

  var outlines = L.layerGroup().addTo(map);
  var heat = L.heatLayer([], { radius: 18, blur: 15, maxZoom: 16 }).addTo(map);
  var hexagons = L.geoJSON(null, { style: hexStyle, onEachFeature: hexPopup }).addTo(map);
  var hotspots = L.geoJSON(null, { style: hotStyle, onEachFeature: hotPopup }).addTo(map);
  window.gridgovHeatmap.layers = { heat: heat, hexagons: hexagons, hotspots: hotspots, outlines: outlines };
  L.control.layers(null, { "热力": heat, "六边形": hexagons, "热点": hotspots, "边界": outlines }, { collapsed: false }).addTo(map);

  var industrySelect = document.getElementById("industry");
  config.industries.forEach(function (name) {
    var option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    industrySelect.appendChild(option);
  });

  function escapeHtml(value) {
    return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function isoDay(date) {
    return date.toISOString().slice(0, 10);
  }

  function windowDates() {
    var weeksBack = 52 - Number(document.getElementById("window-end").value);
    var end = new Date(config.today + "T00:00:00Z");
    end.setUTCDate(end.getUTCDate() - 7 * weeksBack);
    var days = Number(document.getElementById("window-days").value);
    var start = new Date(end.getTime());
    start.setUTCDate(start.getUTCDate() - (days - 1));
    return { from: isoDay(start), to: isoDay(end) };
  }

  function query(extra) {
    var w = windowDates();
    var params = new URLSearchParams({ from: w.from, to: w.to, kind: document.getElementById("kind").value });
    if (config.town) { params.set("town", config.town); }
    var industry = industrySelect.value;
    if (industry) { params.set("industry", industry); }
    Object.keys(extra || {}).forEach(function (k) { params.set(k, extra[k]); });
    return params;
  }

  function fetchJson(url, signal) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal: signal }).then(function (r) {
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.detail || ("HTTP " + r.status));
        });
      }
      return r.json();
    });
  }

  function hexStyle(feature) {
    var k = feature.properties.bin;
    return { color: "#8c6d31", weight: 0.5, fillColor: HEX_COLOURS[Math.min(k, HEX_COLOURS.length - 1)], fillOpacity: 0.55 };
  }

  function hexPopup(feature, layer) {
    var p = feature.properties;
    layer.bindPopup("<b>" + escapeHtml(p.code) + "</b><br>数量 " + escapeHtml(p.count) +
      (p.per_entity !== null && p.per_entity !== undefined ? "<br>每主体 " + escapeHtml(p.per_entity) : ""));
  }

  function hotStyle(feature) {
    var c = feature.properties["class"];
    var significant = c !== "not_significant";
    return { color: significant ? "#444" : "#bbb", weight: significant ? 1 : 0.3, fillColor: HOT_COLOURS[c] || "#f7f7f7",
      fillOpacity: significant ? 0.6 : 0.05 };
  }

  function hotPopup(feature, layer) {
    var p = feature.properties;
    layer.bindPopup("<b>" + escapeHtml(p.code) + "</b><br>" + escapeHtml(CLASS_LABELS[p["class"]] || p["class"]) +
      "<br>数量 " + escapeHtml(p.count) + "，z = " + escapeHtml(Number(p.z).toFixed(2)) +
      (p.rate !== null && p.rate !== undefined ? "，比率 " + escapeHtml(p.rate) + rateUnit() : "") +
      (p.emerging ? "<br>趋势：" + escapeHtml(EMERGING_LABELS[p.emerging] || p.emerging) : "") +
      (cluesListable() ? '<br><a href="' + clueLink(p.code) + '">线索列表</a>' : ""));
  }

  function drawLegend(legend) {
    var box = document.getElementById("legend");
    box.innerHTML = "";
    legend.forEach(function (entry, i) {
      var row = document.createElement("div");
      row.className = "legend-row";
      row.setAttribute("data-lower", entry.lower);
      row.setAttribute("data-upper", entry.upper);
      row.setAttribute("data-count", entry.count);
      row.innerHTML = '<span class="swatch" style="background:' + HEX_COLOURS[Math.min(i, HEX_COLOURS.length - 1)] +
        '"></span>' + escapeHtml(entry.lower) + " – " + escapeHtml(entry.upper) + "（" + escapeHtml(entry.count) + " 格）";
      box.appendChild(row);
    });
    window.gridgovHeatmap.legend = legend;
  }

  function drawComparison(c) {
    var text = "本期 " + c.current + "，上期 " + c.previous;
    if (c.percent_change !== null && c.percent_change !== undefined) {
      text += "，" + (c.change >= 0 ? "增加 " : "减少 ") + Math.abs(c.change) + "（" + c.percent_change + "%）";
    }
    document.getElementById("comparison-text").textContent = text;
  }

  function drawTop10(features) {
    var list = document.getElementById("top10");
    list.innerHTML = "";
    features.filter(function (f) { return f.properties["class"].indexOf("hot") === 0; })
      .sort(function (a, b) { return (a.properties.q - b.properties.q) || (b.properties.count - a.properties.count); })
      .slice(0, 10)
      .forEach(function (f) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = "#";
        a.textContent = f.properties.code + "（" + (CLASS_LABELS[f.properties["class"]] || "") + "，" + f.properties.count + "）";
        a.addEventListener("click", function (event) {
          event.preventDefault();
          map.fitBounds(L.geoJSON(f).getBounds(), { maxZoom: 16 });
        });
        li.appendChild(a);
        if (cluesListable()) {
          var clues = document.createElement("a");
          clues.href = clueLink(f.properties.code);
          clues.className = "clue-link";
          clues.textContent = " 线索";
          li.appendChild(clues);
        }
        list.appendChild(li);
      });
    if (!list.children.length) { list.innerHTML = "<li>本时段无显著热点</li>"; }
  }

  function hotspotParams() {
    return { method: document.getElementById("method").value, unit: document.getElementById("unit").value,
      per: document.getElementById("per").value };
  }

  function clueLink(code) {
    // The clues behind a hotspot: the same unit, window, industry and kind, from every source.
    var w = windowDates();
    var params = new URLSearchParams({ from: w.from, to: w.to, source: "all", limit: "500" });
    params.set(/^\d{15}$/.test(code) ? "grid" : "h3", code);
    if (config.town) { params.set("town", config.town); }
    var kind = document.getElementById("kind").value;
    if (kind === "clue" || kind === "unlicensed") { params.set("kind", kind); }
    if (industrySelect.value) { params.set("industry", industrySelect.value); }
    return "/clues?" + params.toString();
  }

  window.gridgovHeatmap.clueLink = clueLink;

  function cluesListable() {
    // Problem inspections are tasks, not clues: there is no clue list behind them.
    return document.getElementById("kind").value !== "problem";
  }

  function rateUnit() {
    return document.getElementById("per").value === "residents" ? "／千人" : "／主体";
  }

  function updateExports() {
    var base = "/towns/" + (config.town || "city") + "/heatmap/export";
    var params = query(hotspotParams()).toString();
    document.getElementById("export-html").href = base + ".html?" + params;
    document.getElementById("export-geojson").href = base + ".geojson?" + params;
    document.getElementById("export-csv").href = base + ".csv?" + params;
  }

  function loadOutlines() {
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].join(",");
    ["towns", "communities", "grids"].forEach(function (layer, i) {
      fetchJson("/v1/" + layer + "?bbox=" + bbox + "&zoom=" + map.getZoom()).then(function (fc) {
        L.geoJSON(fc, { style: { color: ["#333", "#777", "#aaa"][i], weight: [2, 1, 0.4][i], fill: false }, interactive: false })
          .addTo(outlines);
      }).catch(function () { /* outlines are context only */ });
    });
  }

  var generation = 0;  // answers of an older refresh are dropped: filters changed quickly must not draw stale layers
  var inFlight = null;  // and its requests are aborted, so the server stops computing what nobody will see

  function refresh() {
    var mine = ++generation;
    if (inFlight) { inFlight.abort(); }
    inFlight = typeof AbortController === "function" ? new AbortController() : null;
    var signal = inFlight ? inFlight.signal : undefined;
    document.getElementById("per").disabled = document.getElementById("method").value !== "rate";
    var w = windowDates();
    document.getElementById("window-label").textContent = w.from + " 至 " + w.to;
    updateExports();
    statusEl.textContent = "加载中…";
    return Promise.all([
      fetchJson("/v1/heatmap?" + query({ res: config.h3Resolution }).toString(), signal),
      fetchJson("/v1/hotspots?" + query(hotspotParams()).toString(), signal)
    ]).then(function (answers) {
      if (mine !== generation) { return; }
      var layers = answers[0], spots = answers[1];
      heat.setLatLngs(layers.heat.points);
      hexagons.clearLayers();
      hexagons.addData(layers.hexagons);
      drawLegend(layers.legend);
      drawComparison(layers.comparison);
      hotspots.clearLayers();
      hotspots.addData(spots);
      drawTop10(spots.features);
      statusEl.textContent = layers.empty ? (layers.message || "本时段没有数据") : spots.message ? spots.message :
        (layers.total + " 条，" + (layers.heat.mode === "points" ? "点" : "已汇总") + "；" +
         spots.features.filter(function (f) { return f.properties["class"].indexOf("hot") === 0; }).length + " 个热点单元");
      window.gridgovHeatmap.loaded = true;
      window.gridgovHeatmap.drawn = (window.gridgovHeatmap.drawn || 0) + 1;
      window.gridgovHeatmap.query = query(hotspotParams()).toString();
      document.body.setAttribute("data-loaded", "true");
    }).catch(function (error) {
      if (mine !== generation) { return; }
      statusEl.textContent = "加载失败：" + error.message;
    });
  }

  ["window-end", "window-days", "industry", "kind", "method", "unit", "per"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", refresh);
  });
  document.getElementById("window-end").addEventListener("input", function () {
    var w = windowDates();
    document.getElementById("window-label").textContent = w.from + " 至 " + w.to;
  });
  loadOutlines();
  refresh();
})();
