/**
 * dashboard/map.js: the MapLibre map of the dashboard — an outline-only style (a background colour, nothing
 * fetched beyond this server) or a configured raster basemap, and the sources of the territory and the work:
 * the vector tiles of /tiles/{layer}/{z}/{x}/{y}.mvt (or, with ?source=geojson, the grid layer from GET /v1/grids
 * as the benchmark's baseline) and the last hour's registrations (GeoJSON).
 */

import * as maplibregl from "/static/vendor/maplibre-gl/maplibre-gl.mjs";

import { baseStyle } from "../lib/basestyle.js";

export const TILE_LAYERS = ["towns", "communities", "grids", "entities", "tasks", "clues"];
// The zooms each tile layer is asked at (from the layer's minzoom, GET /tiles/{layer}.json); beyond its maximum the
// map over-zooms the tiles it has. Town and community outlines stay sharp enough over-zoomed, so a drill-down step
// asks the server for fewer tiles.
const TILE_MIN_ZOOM = { towns: 0, communities: 8, grids: 9, entities: 8, tasks: 10, clues: 10 };
const TILE_MAX_ZOOM = { towns: 10, communities: 12, grids: 16, entities: 16, tasks: 16, clues: 16 };
// The margin kept round a unit fitted into view.
export const FIT_PADDING = 16;

/** The absolute tile URL template of a layer on this server (the coordinate system and a version appended). */
export function tileTemplate(layer, coords, version = 0) {
  const params = new URLSearchParams();
  if (coords !== "wgs84") { params.set("coords", coords); }
  if (version) { params.set("v", String(version)); }
  const query = params.toString();
  return `${window.location.origin}/tiles/${layer}/{z}/{x}/{y}.mvt${query ? `?${query}` : ""}`;
}

/**
 * The dashboard's map in element `container`. `geojsonGrids` draws the grid layer from GET /v1/grids instead of
 * the vector tiles (the benchmark's baseline). Returns {map, maplibregl}.
 */
export function createMap(container, config, { geojsonGrids = false } = {}) {
  const [west, south, east, north] = config.boundsLonLat;
  const map = new maplibregl.Map({
    container,
    style: baseStyle(config),
    bounds: [[west, south], [east, north]],
    fitBoundsOptions: { padding: FIT_PADDING },
    minZoom: 7,
    maxZoom: 19,
    attributionControl: false,
    // Chinese labels are drawn from the browser's own fonts: no glyph server, nothing fetched.
    localIdeographFontFamily: "'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif",
    // The PNG export reads the canvas after a render.
    canvasContextAttributes: { preserveDrawingBuffer: true },
    transformRequest: (url) => (url.startsWith(window.location.origin) ? { url, credentials: "same-origin" } : { url }),
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  if (config.tileAttribution) { map.addControl(new maplibregl.AttributionControl({ compact: true }), "bottom-right"); }
  map.once("load", () => {
    for (const layer of TILE_LAYERS) {
      if (layer === "grids" && geojsonGrids) {
        // As the old Leaflet page asked: the whole city at the zoom of the view, simplified for it.
        const params = new URLSearchParams({ zoom: String(Math.round(map.getZoom())), bbox: [west, south, east, north].join(",") });
        if (config.coords !== "wgs84") { params.set("coords", config.coords); }
        map.addSource("grids", { type: "geojson", data: `${window.location.origin}/v1/grids?${params}` });
        continue;
      }
      map.addSource(layer, {
        type: "vector",
        tiles: [tileTemplate(layer, config.coords)],
        minzoom: TILE_MIN_ZOOM[layer],
        maxzoom: TILE_MAX_ZOOM[layer],
      });
    }
    map.addSource("labels", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addSource("registrations", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  });
  return { map, maplibregl };
}
