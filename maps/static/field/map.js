/**
 * field/map.js: the small map of 我的任务 (MapLibre, outline-only: nothing is fetched beyond this server). It draws
 * the outlines of the worker's grids and their neighbours (GET /v1/grids, GeoJSON), the open tasks of the list
 * (the `tasks` vector tiles of /tiles/tasks/{z}/{x}/{y}.mvt, when the server has them) and the phone's own position
 * with its accuracy. Tapping a task point opens the task.
 */

import * as maplibregl from "/static/vendor/maplibre-gl/maplibre-gl.mjs";
import { getJson } from "../lib/api.js";

const EMPTY = { type: "FeatureCollection", features: [] };
const TASK_COLOURS = ["case", ["==", ["get", "overdue"], true], "#c00000", "#2e75b6"];

/** A GeoJSON circle polygon of `radiusM` metres around (lon, lat) (for the accuracy of a fix). */
function circle(lon, lat, radiusM, steps = 48) {
  const ring = [];
  const dLat = radiusM / 111320;
  const dLon = radiusM / (111320 * Math.cos((lat * Math.PI) / 180));
  for (let i = 0; i <= steps; i += 1) {
    const angle = (2 * Math.PI * i) / steps;
    ring.push([lon + dLon * Math.cos(angle), lat + dLat * Math.sin(angle)]);
  }
  return { type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [ring] } };
}

/**
 * The field map in element `container`, first showing the city's extent `bounds` [w, s, e, n]. Returns an object
 * with showGrids(codes), showTasks(ids), showPosition(position), onTask(callback), containerPoint(lon,
 * lat), summary() and `ready` (a promise).
 */
export function createFieldMap(container, bounds) {
  const [west, south, east, north] = bounds;
  const map = new maplibregl.Map({
    container,
    style: {
      version: 8,
      sources: {},
      layers: [{ id: "background", type: "background", paint: { "background-color": "#eef2f5" } }],
    },
    bounds: [[west, south], [east, north]],
    minZoom: 7,
    maxZoom: 19,
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false,
    transformRequest: (url) => (url.startsWith(window.location.origin) ? { url, credentials: "same-origin" } : { url }),
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  // A missing tile or layer must not stop the page: the list works without the map.
  map.on("error", () => {});
  const state = { mine: [], taskIds: [], hasTasks: false, position: null, fitted: false, onTask: () => {} };

  const ready = new Promise((resolve) => {
    map.on("load", async () => {
      map.addSource("grids", { type: "geojson", data: EMPTY });
      map.addLayer({ id: "grids-line", type: "line", source: "grids", paint: { "line-color": "#7f8c99", "line-width": 1 } });
      map.addLayer({
        id: "my-grids-line", type: "line", source: "grids", filter: ["in", ["get", "code"], ["literal", []]],
        paint: { "line-color": "#1f4e79", "line-width": 3 },
      });
      map.addSource("me", { type: "geojson", data: EMPTY });
      map.addLayer({
        id: "me-accuracy", type: "fill", source: "me", filter: ["==", ["geometry-type"], "Polygon"],
        paint: { "fill-color": "#2e9e4f", "fill-opacity": 0.15 },
      });
      map.addLayer({
        id: "me-point", type: "circle", source: "me", filter: ["==", ["geometry-type"], "Point"],
        paint: { "circle-radius": 7, "circle-color": "#2e9e4f", "circle-stroke-color": "#fff", "circle-stroke-width": 2 },
      });
      await addTaskTiles();
      resolve(map);
    });
  });

  async function addTaskTiles() {
    let tilejson;
    try {
      tilejson = await getJson("/tiles/tasks.json");
    } catch {
      return; // No vector tiles on this server: the list alone shows the tasks.
    }
    const template = (tilejson.tiles && tilejson.tiles[0]) || "/tiles/tasks/{z}/{x}/{y}.mvt";
    map.addSource("tasks", {
      type: "vector",
      tiles: [new URL(template, window.location.origin).href.replace(/%7B/g, "{").replace(/%7D/g, "}")],
      minzoom: tilejson.minzoom ?? 0,
      maxzoom: tilejson.maxzoom ?? 16,
    });
    map.addLayer({
      id: "tasks-points", type: "circle", source: "tasks", "source-layer": "tasks",
      filter: ["in", ["to-number", ["get", "id"]], ["literal", state.taskIds]],
      paint: { "circle-radius": 8, "circle-color": TASK_COLOURS, "circle-stroke-color": "#fff", "circle-stroke-width": 2 },
    });
    map.on("click", "tasks-points", (event) => {
      const feature = event.features && event.features[0];
      if (feature) { state.onTask(Number(feature.properties.id)); }
    });
    state.hasTasks = true;
  }

  return {
    map,
    ready,
    /** Outline the grids `codes` (the worker's) among their neighbours, and fit the view to them. */
    async showGrids(codes) {
      await ready;
      state.mine = [...new Set(codes)];
      if (!state.mine.length) { return; }
      const details = await Promise.all(state.mine.map((code) => getJson(`/v1/grids/${encodeURIComponent(code)}`)));
      const box = [
        Math.min(...details.map((d) => d.min_lon)), Math.min(...details.map((d) => d.min_lat)),
        Math.max(...details.map((d) => d.max_lon)), Math.max(...details.map((d) => d.max_lat)),
      ];
      const pad = 0.01;
      const around = [box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad].map((v) => v.toFixed(6)).join(",");
      const layer = await getJson(`/v1/grids?bbox=${around}&zoom=15`, { accept: "application/geo+json" });
      map.getSource("grids").setData(layer);
      map.setFilter("my-grids-line", ["in", ["get", "code"], ["literal", state.mine]]);
      map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { padding: 16, animate: false });
      state.fitted = true;
    },
    /** Show the task points of `ids` (the list's tasks). */
    async showTasks(ids) {
      await ready;
      state.taskIds = ids.map(Number);
      if (state.hasTasks) {
        map.setFilter("tasks-points", ["in", ["to-number", ["get", "id"]], ["literal", state.taskIds]]);
      }
    },
    /** Mark the phone's position (and its accuracy); the view follows it when no grid was shown. */
    async showPosition(position) {
      await ready;
      state.position = position;
      const point = { type: "Feature", properties: {}, geometry: { type: "Point", coordinates: [position.lon, position.lat] } };
      const features = [point];
      if (Number.isFinite(position.accuracy_m) && position.accuracy_m > 0) {
        features.unshift(circle(position.lon, position.lat, position.accuracy_m));
      }
      map.getSource("me").setData({ type: "FeatureCollection", features });
      if (!state.fitted) { map.jumpTo({ center: [position.lon, position.lat], zoom: 16 }); }
    },
    /** `callback(taskId)` hears a tap on a task point. */
    onTask(callback) { state.onTask = callback; },
    /** Where a WGS84 point lies in the map element, {x, y} in CSS pixels (to tap it as a user would). */
    containerPoint(lon, lat) {
      const p = map.project([lon, lat]);
      return { x: p.x, y: p.y };
    },
    /** What the map shows (for the test hook). */
    summary() {
      return {
        grids: [...state.mine], tasks: [...state.taskIds], tileTasks: state.hasTasks, position: state.position,
        rendered: map.loaded(),
      };
    },
  };
}
