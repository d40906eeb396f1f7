/**
 * heatmap.js: the town leader's heatmap page — heat, H3 hexagons and hotspots of clues over town, community and
 * grid outlines, with a time slider, an industry filter, the top 10 hotspots and this period against the
 * previous one. Everything comes from this server (no CDN): /v1/heatmap, /v1/hotspots and the outline layers.
 *
 * Test hook (window.gridgov.page):
 *   loaded, drawn       whether the layers were drawn once, and how many times
 *   query               the query string of the last drawn hotspots request
 *   counts()            → {points, hexagons, hotspots, hotUnits, legend}: what is drawn now
 *   hexagonCounts()     → the count of every drawn hexagon
 *   hotspots()          → the properties of every drawn hotspot unit
 *   clueLink(code)      → the clue list URL behind a unit (what its popup and the top-10 link to)
 */

import { getJson } from "./lib/api.js";
import { readPageConfig } from "./lib/config.js";
import { bboxParam, createMap } from "./lib/mapfactory.js";
import { setStatus } from "./lib/status.js";
import { publishPage } from "./lib/testhook.js";
import { withQuery } from "./lib/url.js";
import { loadVocabulary } from "./lib/vocab.js";
import {
  drawComparison, drawLegend, drawTop10, hexagonPopupHtml, hotspotPopupHtml, isHot,
} from "./heatmap/panel.js";

const config = readPageConfig();
const field = (id) => document.getElementById(id);
const FILTERS = ["window-end", "window-days", "industry", "kind", "method", "unit", "per"];
const OUTLINE_STYLES = {
  towns: { color: "#333", weight: 2, fill: false },
  communities: { color: "#777", weight: 1, fill: false },
  grids: { color: "#aaa", weight: 0.4, fill: false },
};

let vocabulary;
try {
  vocabulary = await loadVocabulary();
} catch (error) {
  setStatus(`加载失败：${error.message}`);
  throw error;
}

const { map } = createMap("map", { preferCanvas: true, zoomControl: true });
map.fitBounds(config.bounds);

const outlines = L.layerGroup().addTo(map);
const heat = L.heatLayer([], { radius: 18, blur: 15, maxZoom: 16 }).addTo(map);
const hexagons = L.geoJSON(null, {
  style: (feature) => ({
    color: "#8c6d31", weight: 0.5, fillColor: vocabulary.binColour(feature.properties.bin), fillOpacity: 0.55,
  }),
  onEachFeature: (feature, layer) => layer.bindPopup(hexagonPopupHtml(feature.properties)),
}).addTo(map);
const notSignificantColour = vocabulary.colour("hot_classes", "not_significant");
const hotspots = L.geoJSON(null, {
  style: (feature) => {
    const significant = feature.properties["class"] !== "not_significant";
    return {
      color: significant ? "#444" : "#bbb", weight: significant ? 1 : 0.3,
      fillColor: vocabulary.colour("hot_classes", feature.properties["class"], notSignificantColour),
      fillOpacity: significant ? 0.6 : 0.05,
    };
  },
  onEachFeature: (feature, layer) => layer.bindPopup(() => hotspotPopupHtml(feature.properties, {
    vocabulary, rateUnit: rateUnit(), clueLink: cluesListable() ? clueLink : null,
  })),
}).addTo(map);
L.control.layers(null, { "热力": heat, "六边形": hexagons, "热点": hotspots, "边界": outlines }, { collapsed: false })
  .addTo(map);

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function windowDates() {
  const weeksBack = 52 - Number(field("window-end").value);
  const end = new Date(`${config.today}T00:00:00Z`);
  end.setUTCDate(end.getUTCDate() - 7 * weeksBack);
  const days = Number(field("window-days").value);
  const start = new Date(end.getTime());
  start.setUTCDate(start.getUTCDate() - (days - 1));
  return { from: isoDay(start), to: isoDay(end) };
}

function query(extra) {
  const w = windowDates();
  const params = new URLSearchParams({ from: w.from, to: w.to, kind: field("kind").value });
  if (config.town) { params.set("town", config.town); }
  if (field("industry").value) { params.set("industry", field("industry").value); }
  for (const [k, v] of Object.entries(extra || {})) { params.set(k, v); }
  return params;
}

function hotspotParams() {
  return { method: field("method").value, unit: field("unit").value, per: field("per").value };
}

/** The clues behind a hotspot: the same unit, window, industry and kind, from every source. */
function clueLink(code) {
  const w = windowDates();
  const params = new URLSearchParams({ from: w.from, to: w.to, source: "all", limit: "500" });
  params.set(/^\d{15}$/.test(code) ? "grid" : "h3", code);
  if (config.town) { params.set("town", config.town); }
  const kind = field("kind").value;
  if (kind === "clue" || kind === "unlicensed") { params.set("kind", kind); }
  if (field("industry").value) { params.set("industry", field("industry").value); }
  return withQuery("/clues", params);
}

// Problem inspections are tasks, not clues: there is no clue list behind them.
const cluesListable = () => field("kind").value !== "problem";
const rateUnit = () => (field("per").value === "residents" ? "／千人" : "／主体");

function updateExports() {
  const base = `/towns/${config.town || "city"}/heatmap/export`;
  const params = query(hotspotParams());
  field("export-html").href = withQuery(`${base}.html`, params);
  field("export-geojson").href = withQuery(`${base}.geojson`, params);
  field("export-csv").href = withQuery(`${base}.csv`, params);
}

function loadOutlines() {
  const bbox = bboxParam(map, 12);
  for (const layer of ["towns", "communities", "grids"]) {
    getJson(`/v1/${layer}?bbox=${bbox}&zoom=${map.getZoom()}`)
      .then((fc) => L.geoJSON(fc, { style: OUTLINE_STYLES[layer], interactive: false }).addTo(outlines))
      .catch(() => { /* outlines are context only */ });
  }
}

// What is drawn now, for the test hook.
const drawn = { layers: null, spots: null };
const hook = publishPage({
  loaded: false,
  drawn: 0,
  query: "",
  counts: () => ({
    points: drawn.layers ? drawn.layers.heat.points.length : 0,
    hexagons: drawn.layers ? drawn.layers.hexagons.features.length : 0,
    hotspots: drawn.spots ? drawn.spots.features.length : 0,
    hotUnits: drawn.spots ? drawn.spots.features.filter(isHot).length : 0,
    legend: drawn.layers ? drawn.layers.legend.length : 0,
  }),
  hexagonCounts: () => (drawn.layers ? drawn.layers.hexagons.features.map((f) => f.properties.count) : []),
  hotspots: () => (drawn.spots ? drawn.spots.features.map((f) => ({ ...f.properties })) : []),
  clueLink,
});

let generation = 0; // answers of an older refresh are dropped: filters changed quickly must not draw stale layers
let inFlight = null; // and its requests are aborted, so the server stops computing what nobody will see

function showWindow() {
  const w = windowDates();
  field("window-label").textContent = `${w.from} 至 ${w.to}`;
}

async function refresh() {
  const mine = ++generation;
  if (inFlight) { inFlight.abort(); }
  inFlight = new AbortController();
  const signal = inFlight.signal;
  field("per").disabled = field("method").value !== "rate";
  showWindow();
  updateExports();
  setStatus("加载中…");
  let layers, spots;
  try {
    [layers, spots] = await Promise.all([
      getJson(withQuery("/v1/heatmap", query({ res: config.h3Resolution })), { signal }),
      getJson(withQuery("/v1/hotspots", query(hotspotParams())), { signal }),
    ]);
  } catch (error) {
    if (mine === generation) { setStatus(`加载失败：${error.message}`); }
    return;
  }
  if (mine !== generation) { return; }
  heat.setLatLngs(layers.heat.points);
  hexagons.clearLayers();
  hexagons.addData(layers.hexagons);
  drawLegend(layers.legend, vocabulary);
  drawComparison(layers.comparison);
  hotspots.clearLayers();
  hotspots.addData(spots);
  drawTop10(spots.features, {
    vocabulary,
    zoomTo: (f) => map.fitBounds(L.geoJSON(f).getBounds(), { maxZoom: 16 }),
    clueLink: cluesListable() ? clueLink : null,
  });
  drawn.layers = layers;
  drawn.spots = spots;
  setStatus(layers.empty ? (layers.message || "本时段没有数据") : spots.message ? spots.message :
    `${layers.total} 条，${layers.heat.mode === "points" ? "点" : "已汇总"}；${spots.features.filter(isHot).length} 个热点单元`);
  hook.loaded = true;
  hook.drawn += 1;
  hook.query = query(hotspotParams()).toString();
  document.body.dataset.loaded = "true";
}

for (const id of FILTERS) { field(id).addEventListener("change", refresh); }
field("window-end").addEventListener("input", showWindow);
loadOutlines();
refresh();
