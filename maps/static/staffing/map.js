/**
 * staffing/map.js: the MapLibre map of the plan — the grids of GET /v1/staffing/grids (WGS84) filled by their state
 * against the recommendation (red: fewer workers than recommended, green: as recommended, blue: more), and one
 * purple line per move from the grid a worker leaves to the grid they join, with a dot at the grid they join.
 * Nothing is fetched beyond this server unless a WGS84 basemap is configured.
 */

import * as maplibregl from "/static/vendor/maplibre-gl/maplibre-gl.mjs";

import { baseStyle } from "../lib/basestyle.js";

import { figure, staffingState } from "./table.js";

const EMPTY = { type: "FeatureCollection", features: [] };
const FILL = { short: "#e57373", ok: "#c8e6c9", surplus: "#90caf9" };

/** The page's map in element `container`; resolves to {map, show(plan, shapes), flyTo(code)} once loaded. */
export async function createStaffingMap(container, config) {
  const [west, south, east, north] = config.boundsLonLat;
  const map = new maplibregl.Map({
    container,
    style: baseStyle(config),
    bounds: [[west, south], [east, north]],
    minZoom: 7,
    maxZoom: 19,
    attributionControl: false,
    localIdeographFontFamily: "'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif",
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  await new Promise((resolve) => { map.once("load", resolve); });
  map.addSource("grids", { type: "geojson", data: EMPTY, promoteId: "code" });
  map.addSource("moves", { type: "geojson", data: EMPTY });
  map.addSource("arrivals", { type: "geojson", data: EMPTY });
  map.addLayer({
    id: "grid-fill", type: "fill", source: "grids",
    paint: { "fill-color": ["get", "fill"], "fill-opacity": ["case", ["boolean", ["feature-state", "selected"], false], 0.9, 0.6] },
  });
  map.addLayer({ id: "grid-line", type: "line", source: "grids", paint: { "line-color": "#2e75b6", "line-width": 0.8 } });
  map.addLayer({
    id: "move-line", type: "line", source: "moves",
    layout: { "line-cap": "round" },
    paint: { "line-color": "#6a1b9a", "line-width": ["+", 1.5, ["*", 0.8, ["get", "count"]]], "line-opacity": 0.85 },
  });
  map.addLayer({
    id: "move-arrival", type: "circle", source: "arrivals",
    paint: { "circle-radius": 4, "circle-color": "#6a1b9a", "circle-stroke-color": "#fff", "circle-stroke-width": 1 },
  });
  const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false });
  let selected = null;
  let drawn = new Map();
  map.on("mousemove", "grid-fill", (event) => {
    const p = event.features[0].properties;
    map.getCanvas().style.cursor = "pointer";
    popup.setLngLat(event.lngLat).setText(
      `${p.label}：工作量 ${figure(p.hours)} 小时/月，网格员 ${p.workers} → ${p.after}（建议 ${p.recommended}）`,
    ).addTo(map);
  });
  map.on("mouseleave", "grid-fill", () => { map.getCanvas().style.cursor = ""; popup.remove(); });

  return {
    map,
    /** Draw the plan over the grids' outlines; returns what was drawn: {grids, moves}. */
    show(plan, shapes) {
      const byCode = new Map(plan.grids.map((g) => [g.code, g]));
      const features = shapes.features.filter((f) => byCode.has(f.properties.code)).map((f) => {
        const g = byCode.get(f.properties.code);
        return {
          ...f,
          properties: {
            ...f.properties, label: g.name || g.code, hours: g.hours, workers: g.workers, after: g.after,
            recommended: g.recommended, state: staffingState(g), fill: FILL[staffingState(g)],
          },
        };
      });
      // Moves between the same two grids are one line, as thick as the number of workers it carries.
      const pairs = new Map();
      for (const move of plan.moves) {
        const key = `${move.from_grid}>${move.to_grid}`;
        pairs.set(key, { from: move.from_grid, to: move.to_grid, count: (pairs.get(key)?.count || 0) + 1 });
      }
      const lines = [...pairs.values()].map(({ from, to, count }) => ({
        type: "Feature",
        properties: { from, to, count },
        geometry: { type: "LineString", coordinates: [[byCode.get(from).lon, byCode.get(from).lat], [byCode.get(to).lon, byCode.get(to).lat]] },
      }));
      const arrivals = [...new Set(plan.moves.map((m) => m.to_grid))].map((code) => ({
        type: "Feature", properties: { code }, geometry: { type: "Point", coordinates: [byCode.get(code).lon, byCode.get(code).lat] },
      }));
      drawn = new Map(features.map((f) => [f.properties.code, f]));
      map.getSource("grids").setData({ type: "FeatureCollection", features });
      map.getSource("moves").setData({ type: "FeatureCollection", features: lines });
      map.getSource("arrivals").setData({ type: "FeatureCollection", features: arrivals });
      if (shapes.bbox && shapes.bbox.every((v) => v !== null)) {
        const [w, s, e, n] = shapes.bbox;
        map.fitBounds([[w, s], [e, n]], { padding: 24, duration: 0 });
      }
      return { grids: features.length, moves: lines.length, states: features.map((f) => f.properties.state) };
    },
    /** Highlight a grid and bring it into view. */
    flyTo(code) {
      if (selected) { map.setFeatureState({ source: "grids", id: selected }, { selected: false }); }
      selected = code;
      map.setFeatureState({ source: "grids", id: code }, { selected: true });
      const grid = drawn.get(code);
      if (grid) {
        const coords = grid.geometry.type === "Polygon" ? grid.geometry.coordinates.flat() : grid.geometry.coordinates.flat(2);
        const xs = coords.map((c) => c[0]);
        const ys = coords.map((c) => c[1]);
        map.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]], { padding: 60, maxZoom: 16 });
      }
    },
  };
}
