/**
 * dashboard/main.js: the command centre's dashboard at / — the map (map.js, layers.js), the drill-down
 * (drill.js), the KPI panel and trend chart (kpi.js, charts.js), the search (search.js), the live feed (live.js),
 * the PNG export (export.js) and the lists beside the map (./lists/, mounted with the context `ctx` below).
 * Who is signed in (GET /v1/me) decides where the view starts and what it may reach: the command centre the
 * city, a town leader their town, a dispatcher their community, a grid worker their grid, a department officer
 * the city with their department's figures, a credential without figures (an API key) the city's map alone.
 *
 * Test hook (window.gridgov.page):
 *   ready               a promise, resolved once the first view is drawn; isReady() the same as a flag
 *   view()              {level, code, name} of the view
 *   counts()            {towns, communities, grids, entities, tasks, clues, registrations}: features drawn now
 *   renderedFeatures(n) the properties of the features of layer group n drawn now
 *   idle()              a promise resolved when the map has drawn everything it asked for
 *   firstPaintMs        ms from navigation start to the first view drawn with its grids (null before)
 *   drill(level, code)  a drill-down step as a click would make it (resolved once the map has moved);
 *   settled()           resolved when the last step's figures are shown; setView(lon, lat, zoom) moves the map
 *   sourcesDrawn(names) resolved (with performance.now()) at the first frame with those sources' tiles all loaded
 *   pixel(lon, lat)     where a WGS84 point is on the page ({x, y}, for clicks); live() the latest live events
 *   searchedGrid()      the code of the grid outlined by the last search, or null
 *   metric(name)        colour the grids by that figure; gridPaint() the grid fill's colour expression now
 */

import { getJson } from "../lib/api.js";
import { readPageConfig } from "../lib/config.js";
import { setStatus } from "../lib/status.js";
import { publishPage } from "../lib/testhook.js";
import { loadVocabulary } from "../lib/vocab.js";
import { mountTrendChart } from "./charts.js";
import { mapCoords } from "./coords.js";
import { CITY, createDrill, urlOf, viewFromUrl, within } from "./drill.js";
import { exportPng } from "./export.js";
import { mountKpiPanel } from "./kpi.js";
import { startLabels } from "./labels.js";
import { POINT_LAYERS, addLayers, highlightSearchedGrid, mountLayerPanel, renderedCounts, renderedFeatures } from "./layers.js";
import { startLive } from "./live.js";
import { createMap } from "./map.js";
import { pointPopup } from "./popup.js";
import { mountSearch } from "./search.js";

const config = readPageConfig();
const geojsonGrids = new URLSearchParams(window.location.search).get("source") === "geojson";
const { toMap, fromMap } = mapCoords(config.coords);
let resolveReady;
const ready = new Promise((resolve) => { resolveReady = resolve; });
const hook = publishPage({ ready, isReady: () => false, firstPaintMs: null });

// The map starts loading at once; who is signed in and the vocabulary arrive meanwhile.
const { map, maplibregl } = createMap("map", config, { geojsonGrids });
const [me, vocabulary] = await Promise.all([
  getJson("/v1/me").catch(() => null),
  loadVocabulary().catch(() => null),
  new Promise((resolve) => map.once("load", resolve)),
]);
const capabilities = new Set((me && me.capabilities) || []);
const seesFigures = !me || capabilities.has("stats.read");

/** Where the caller's view starts and what it may not leave. */
function rootOf(who) {
  const area = who && who.area;
  if (area && area.kind === "town" && area.code) { return { level: "town", code: area.code, name: area.label }; }
  if (area && area.kind === "community" && area.code) { return { level: "community", code: area.code, name: area.label }; }
  if (area && area.kind === "worker" && area.code) { return { level: "grid", code: area.code, name: area.label }; }
  return { ...CITY };
}
const root = rootOf(me);
const department = me && me.area && me.area.kind === "department" ? me.area : null;

// Without the capability the tiles would only answer 403: no layer asks for them.
const LAYER_CAPABILITY = { entities: "territory.detail", tasks: "task.read", clues: "clue.read" };
const without = me ? Object.keys(LAYER_CAPABILITY).filter((name) => !capabilities.has(LAYER_CAPABILITY[name])) : [];
addLayers(map, { geojsonGrids, without });
startLabels(map, { geojsonGrids });

const layerLabels = {
  towns: vocabulary ? vocabulary.label("layers", "towns") : "镇街",
  communities: vocabulary ? vocabulary.label("layers", "communities") : "村（社区）",
  grids: vocabulary ? vocabulary.label("layers", "grids") : "网格",
};
const ramp = vocabulary ? vocabulary.raw.bin_colours : ["#eeeeee", "#999999", "#333333"];
const layers = mountLayerPanel(document.getElementById("layer-panel"), document.getElementById("legend-panel"), map, {
  labels: layerLabels, ramp, coords: config.coords, geojsonGrids,
});

const kpiPanel = mountKpiPanel(document.getElementById("kpi"), document.getElementById("kpi-children"), { onChild: (child) => drill.go(child.level, child.code) });
const trendChart = mountTrendChart(document.getElementById("trend"));

/** The box [w, s, e, n] of a GeoJSON geometry's coordinates. */
function geometryBox(geometry) {
  let box = null;
  const visit = (c) => {
    if (typeof c[0] === "number") {
      box = box ? [Math.min(box[0], c[0]), Math.min(box[1], c[1]), Math.max(box[2], c[0]), Math.max(box[3], c[1])] : [c[0], c[1], c[0], c[1]];
    } else { c.forEach(visit); }
  };
  visit(geometry.coordinates);
  return box;
}

/** The bounding box, in the map's system, of the features of a unit in the tiles loaded now. */
function tileBox(level, code) {
  const source = { town: "towns", community: "communities", grid: "grids" }[level];
  if (!source) { return null; }
  const options = { filter: ["==", ["get", "code"], code] };
  if (!(source === "grids" && geojsonGrids)) { options.sourceLayer = source; }
  let box = null;
  for (const feature of map.querySourceFeatures(source, options)) {
    const b = geometryBox(feature.geometry);
    box = box ? [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])] : b;
  }
  return box;
}

function kpiQuery(view) {
  if (view.level === "city" && department) { return new URLSearchParams({ level: "department", code: department.code }); }
  const params = new URLSearchParams({ level: view.level });
  if (view.code) { params.set("code", view.code); }
  return params;
}

// GET /v1/kpi answers asked before the step that shows them (a link's unit, checked before the first view).
const prefetched = new Map();

/** The feature of code `code` in GET /v1/{layer} (simplified for a city-wide view), within `bbox` if given. */
async function layerFeature(layer, code, bbox) {
  const params = new URLSearchParams({ zoom: "8" });
  if (bbox) { params.set("bbox", bbox.join(",")); }
  const body = await getJson(`/v1/${layer}?${params}`, { accept: "application/geo+json" });
  return body.features.find((f) => f.properties.code === code) || null;
}

/**
 * Why a link's unit may not be opened ("missing" or "outside"), or null when it may. Its name is remembered for
 * the breadcrumb. With the figures, GET /v1/kpi says (and its answer is kept for the first step); without them,
 * the grid's details or the town and community layers.
 */
async function linkRefusal(view) {
  if (!within(root, view.level, view.code)) { return "outside"; }
  if (view.level === "city") { return null; }
  try {
    if (seesFigures) {
      const query = String(kpiQuery(view));
      const answer = getJson(`/v1/kpi?${query}`);
      prefetched.set(query, answer);
      const kpi = await answer;
      drill.remember(view.level, view.code, kpi.name);
      if (kpi.parent) { drill.remember(kpi.parent.level, kpi.parent.code, kpi.parent.name); }
      return null;
    }
    if (view.level === "grid") {
      const grid = await getJson(`${config.api.grid}${encodeURIComponent(view.code)}`);
      drill.remember("town", grid.town_code, grid.town_name);
      drill.remember("community", grid.community_code, grid.community_name);
      drill.remember("grid", grid.code, grid.name || grid.code);
      return null;
    }
    const town = await layerFeature("towns", `${view.code.slice(0, 9)}000`);
    if (!town) { return "missing"; }
    drill.remember("town", town.properties.code, town.properties.name);
    if (view.level === "town") { return town.properties.code === view.code ? null : "missing"; }
    const community = await layerFeature("communities", view.code, geometryBox(town.geometry));
    if (!community) { return "missing"; }
    drill.remember("community", view.code, community.properties.name);
    return null;
  } catch (error) {
    prefetched.clear();
    if (error.status === 404 || error.status === 422) { return "missing"; }
    if (error.status === 403) { return "outside"; }
    return null; // Anything else (the network): the step itself says what went wrong.
  }
}

let workloadShownFor = null;

/** The workload line of a town, community or grid in view, for callers who may read it (a late answer is dropped). */
function showWorkload(view) {
  const key = `${view.level}:${view.code}`;
  workloadShownFor = key;
  if (!capabilities.has("workload.read") || !["town", "community", "grid"].includes(view.level)) { return; }
  const query = new URLSearchParams({ level: view.level, code: view.code });
  getJson(`/v1/workload?${query}`)
    .then((answer) => { if (workloadShownFor === key) { kpiPanel.workload(answer); } })
    .catch(() => {}); // the figures above stand on their own; the line stays empty
}

/** The unit of a view for the drill-down: GET /v1/kpi (shown in the panel), or what the tiles know of it. */
async function loadUnit(view) {
  const trend = seesFigures ? getJson(`/v1/kpi/trend?${kpiQuery(view)}&days=30`).catch(() => null) : Promise.resolve(null);
  const early = prefetched.get(String(kpiQuery(view)));
  prefetched.clear();
  if (!seesFigures) {
    // Not an error: this credential reads the map, not the figures.
    kpiPanel.clear("本账号只查看地图，不含指标");
    trendChart.clear();
    if (view.level === "city") { return { name: CITY.name, bbox: config.boundsLonLat }; }
    return { name: null, bboxMap: tileBox(view.level, view.code) };
  }
  try {
    const kpi = await (early || getJson(`/v1/kpi?${kpiQuery(view)}`));
    kpiPanel.show(kpi);
    showWorkload(view);
    trend.then((t) => (t ? trendChart.show(t) : trendChart.clear()));
    if (view.level === "city" && department) { return { ...kpi, name: CITY.name, bbox: kpi.bbox || config.boundsLonLat, children: [] }; }
    return kpi;
  } catch (error) {
    kpiPanel.clear(`指标暂不可用：${error.message}`);
    trendChart.clear();
    if (view.level === "city") { return { name: CITY.name, bbox: config.boundsLonLat }; }
    return { name: null, bboxMap: tileBox(view.level, view.code) };
  }
}

const drill = createDrill(map, {
  root, loadUnit, boxOf: tileBox, cityBox: config.boundsLonLat, describeGrid: (code) => getJson(`${config.api.grid}${encodeURIComponent(code)}`), toMap, breadcrumb: document.getElementById("breadcrumb"), setStatus,
});
if (root.name) { drill.remember(root.level, root.code, root.name); }

/** A marker at a point of the map's system with a popup holding `content` (text or a node). */
function markerAt(x, y, content) {
  const popup = new maplibregl.Popup({ offset: 24, closeButton: true });
  if (typeof content === "string") { popup.setText(content); } else { popup.setDOMContent(content); }
  const marker = new maplibregl.Marker({ color: "#e0301e" }).setLngLat([x, y]).setPopup(popup).addTo(map);
  marker.togglePopup();
  return { remove: () => marker.remove() };
}

// The next map click goes to whoever asked for a point (ctx.map.pickPoint), not to the drill-down.
let picking = null;
function pickPoint(promptText) {
  if (picking) { picking(null); }
  setStatus(promptText || "请在地图上点选位置（Esc 取消）");
  map.getCanvas().style.cursor = "crosshair";
  return new Promise((resolve) => {
    picking = (point) => {
      picking = null;
      map.getCanvas().style.cursor = "";
      setStatus(point ? "已选定位置" : "已取消选点");
      resolve(point);
    };
  });
}
document.addEventListener("keydown", (event) => { if (event.key === "Escape" && picking) { picking(null); } });

map.on("click", (event) => {
  if (picking) {
    const [lon, lat] = fromMap(event.lngLat.lng, event.lngLat.lat);
    picking({ lon, lat });
    return;
  }
  const hits = map.queryRenderedFeatures(event.point, { layers: POINT_LAYERS.filter((id) => map.getLayer(id)) });
  if (hits.length) {
    const feature = hits[0];
    if (feature.layer.id === "entities-clusters") {
      map.easeTo({ center: event.lngLat, zoom: Math.min(map.getZoom() + 2, 16) });
      return;
    }
    new maplibregl.Popup({ maxWidth: "300px" }).setLngLat(event.lngLat).setDOMContent(pointPopup(feature, vocabulary)).addTo(map);
    return;
  }
  drill.clickAt(event.point);
});
for (const id of ["towns-hit", "communities-hit", "grids-hit", ...POINT_LAYERS]) {
  map.on("mouseenter", id, () => { if (!picking) { map.getCanvas().style.cursor = "pointer"; } });
  map.on("mouseleave", id, () => { if (!picking) { map.getCanvas().style.cursor = ""; } });
}

/** A promise resolved at the first frame drawn with every tile of the named sources loaded. */
function sourcesDrawn(names) {
  return new Promise((resolve) => {
    const check = () => {
      if (names.every((name) => map.getSource(name) && map.isSourceLoaded(name))) {
        map.off("render", check);
        resolve(performance.now());
      }
    };
    map.on("render", check);
    map.triggerRepaint();
  });
}

// First paint: the first frame drawn with the grid tiles of the view all loaded.
sourcesDrawn(["grids"]).then((at) => { hook.firstPaintMs = at; });

const liveListeners = [];
const live = startLive(map, {
  feed: document.getElementById("live-feed"),
  indicator: document.getElementById("live-state"),
  toMap,
  refresh: (name) => layers.refresh(name),
  listeners: liveListeners,
  // GET /v1/live streams only to a credential that reads tasks, clues or review items.
  streaming: !me || ["task.read", "clue.read", "review.read"].some((name) => capabilities.has(name)),
});
// The last hour's registrations are a map of work, read with task.read (as the task layer is).
if (!me || capabilities.has("task.read")) { live.reloadRecent(); }

mountSearch(document.getElementById("search"), map, {
  coords: config.coords,
  showMarker: (x, y, node) => markerAt(x, y, node),
  drillToGrid: (code) => drill.go("grid", code),
  setStatus,
});

document.getElementById("export-png").addEventListener("click", () => {
  exportPng(map, drill.view()).then(() => setStatus("地图已导出为 PNG"), (error) => setStatus(error.message, { warning: true }));
});

/** What the lists beside the map (./lists/index.js, D2's) are given: the binding contract of the two parts. */
const ctx = {
  me,
  config,
  view: () => drill.view(),
  onView: (fn) => drill.onView(fn),
  onLive: (fn) => liveListeners.push(fn),
  map: {
    flyTo(lon, lat, zoom = 16) {
      const [x, y] = toMap(lon, lat);
      map.flyTo({ center: [x, y], zoom, duration: 600 });
    },
    showMarker(lon, lat, labelText) {
      const [x, y] = toMap(lon, lat);
      return markerAt(x, y, labelText);
    },
    pickPoint,
    highlightGrid: (code) => highlightSearchedGrid(map, code),
    refresh: (name) => layers.refresh(name),
  },
  setStatus,
};


function idle() {
  return new Promise((resolve) => {
    map.once("idle", () => resolve());
    map.triggerRepaint();
  });
}

// The first view: the URL's, when the caller may see it; otherwise where their area starts.
// A unit the link names that does not exist or lies outside the caller's area: back to where the caller starts,
// said in the status line (never a code in the breadcrumb).
const asked = viewFromUrl();
const refusal = asked ? await linkRefusal(asked) : null;
const first = asked && !refusal ? asked : { level: root.level, code: root.code };
await drill.go(first.level, first.code, { push: false });
await drill.settled();
const homeName = root.name || CITY.name;
if (refusal === "missing") { setStatus(`未找到该单位，已回到${homeName}`, { warning: true }); }
if (refusal === "outside") { setStatus(`超出您的管辖范围，已回到${homeName}`, { warning: true }); }
window.history.replaceState({ level: first.level, code: first.code }, "", refusal ? urlOf(first) : window.location.href);
await idle();
layers.setMetric(layers.metric());
const drawn = renderedCounts(map);
if (!refusal) { setStatus(`${drill.view().name} · ${layerLabels.grids} ${drawn.grids}`); }

Object.assign(hook, {
  isReady: () => true,
  view: () => drill.view(),
  counts: () => renderedCounts(map),
  renderedFeatures: (name) => renderedFeatures(map, name),
  idle,
  drill: (level, code) => drill.go(level, code),
  settled: () => drill.settled(),
  sourcesDrawn,
  setView(lon, lat, zoom) {
    const [x, y] = toMap(lon, lat);
    map.jumpTo({ center: [x, y], zoom });
  },
  bounds() {
    const b = map.getBounds();
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  },
  pixel(lon, lat) {
    const [x, y] = toMap(lon, lat);
    const p = map.project([x, y]);
    const rect = map.getContainer().getBoundingClientRect();
    return { x: rect.left + p.x, y: rect.top + p.y };
  },
  live: () => live.events.slice(),
  metric: (name) => layers.setMetric(name),
  gridPaint: () => map.getPaintProperty("grids-fill", "fill-color"),
  searchedGrid: () => map.getFilter("searched-grid")[2] || null,
  exportPng: () => exportPng(map, drill.view()).then((blob) => blob.size),
});
resolveReady(hook);

// The lists beside the map come after the map's first view, so that they do not delay it.
const side = document.getElementById("side");
import("./lists/index.js")
  .then((lists) => lists.mountLists(side, ctx))
  .catch((error) => {
    console.warn("列表模块未加载", error);
    side.hidden = true;
  });
