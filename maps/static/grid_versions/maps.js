/**
 * grid_versions/maps.js: two synchronised MapLibre maps, the current grids on the left and the draft on the right.
 * Moved areas (pieces whose grid changes) are hatched in red on the draft and outlined in red on the current map,
 * with the tooltip "从 <from> 调入 <to>"; locked grids are outlined dashed in blue on both. Everything is drawn from
 * GET /v1/grid-versions/{id}/comparison (WGS84 GeoJSON); nothing is fetched beyond this server unless a WGS84
 * basemap is configured.
 */

import * as maplibregl from "/static/vendor/maplibre-gl/maplibre-gl.mjs";

import { baseStyle } from "../lib/basestyle.js";

import { gridCode, movedText } from "./labels.js";

const COLOURS = { grid: "#2e75b6", gridFill: "#9dc3e6", moved: "#d62728", locked: "#1f4e79" };
const EMPTY = { type: "FeatureCollection", features: [] };
const HATCH = "hatch";

/** A 12×12 image of red diagonal stripes on a light red ground: the fill pattern of the moved areas. */
function hatchImage() {
  const size = 12;
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const stripe = (x + y) % 6 < 2;
      const i = (y * size + x) * 4;
      data.set(stripe ? [214, 39, 40, 230] : [214, 39, 40, 50], i);
    }
  }
  return { width: size, height: size, data };
}

function newMap(container, config) {
  const [west, south, east, north] = config.boundsLonLat;
  const map = new maplibregl.Map({
    container,
    style: baseStyle(config),
    bounds: [[west, south], [east, north]],
    minZoom: 7,
    maxZoom: 19,
    attributionControl: false,
    canvasContextAttributes: { preserveDrawingBuffer: true },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  return map;
}

// Listened to right after the map is made: "load" fires later, from the event loop.
const loaded = (map) => new Promise((resolve) => { map.once("load", resolve); });

/** Keep the two maps on the same view: a move of either is copied to the other (a guard stops the echo). */
function synchronise(a, b) {
  let copying = false;
  const follow = (from, to) => () => {
    if (copying) { return; }
    copying = true;
    to.jumpTo({ center: from.getCenter(), zoom: from.getZoom(), bearing: from.getBearing(), pitch: from.getPitch() });
    copying = false;
  };
  a.on("move", follow(a, b));
  b.on("move", follow(b, a));
}

/**
 * The fill of a grid by how far its workload per worker lies from the area's mean: green within the tolerance,
 * orange at it, red at twice it; grey without figures.
 */
export function balanceFill(tolerance) {
  const deviation = ["abs", ["to-number", ["get", "deviation"], 0]];
  return [
    "case", ["has", "deviation"],
    ["interpolate", ["linear"], deviation, 0, "#a1d99b", tolerance, "#fdd49e", 2 * tolerance, "#ef6548"],
    COLOURS.gridFill,
  ];
}

function addGridLayers(map, lockedCodes, tolerance) {
  const locked = ["in", ["coalesce", ["get", "code"], ["get", "grid_code"], ""], ["literal", lockedCodes]];
  map.addLayer({ id: "grids-fill", type: "fill", source: "grids", paint: { "fill-color": balanceFill(tolerance), "fill-opacity": 0.45 } });
  map.addLayer({ id: "grids-line", type: "line", source: "grids", paint: { "line-color": COLOURS.grid, "line-width": 1.2 } });
  map.addLayer({
    id: "locked-fill", type: "fill", source: "grids", filter: locked,
    paint: { "fill-color": COLOURS.locked, "fill-opacity": 0.12 },
  });
  map.addLayer({
    id: "locked-line", type: "line", source: "grids", filter: locked,
    paint: { "line-color": COLOURS.locked, "line-width": 2.5, "line-dasharray": [2, 1.5] },
  });
}

/**
 * The twin maps in the elements `currentId` and `draftId`. Returns {current, draft, show(comparison, locked),
 * tooltip(map, point)} once both maps have loaded.
 */
export async function createTwinMaps(currentId, draftId, config) {
  const current = newMap(currentId, config);
  const draft = newMap(draftId, config);
  await Promise.all([loaded(current), loaded(draft)]);
  synchronise(current, draft);
  draft.addImage(HATCH, hatchImage());
  for (const map of [current, draft]) {
    map.addSource("grids", { type: "geojson", data: EMPTY });
    map.addSource("moved", { type: "geojson", data: EMPTY });
  }
  const popups = new Map();
  const hover = (map) => (event) => {
    if (!map.getLayer("moved-fill")) { return; }
    const hit = map.queryRenderedFeatures(event.point, { layers: ["moved-fill", "grids-fill"] });
    const popup = popups.get(map);
    if (!hit.length) {
      popup.remove();
      map.getCanvas().style.cursor = "";
      return;
    }
    map.getCanvas().style.cursor = "pointer";
    popup.setLngLat(event.lngLat).setText(textAt(hit)).addTo(map);
  };
  const textAt = (hit) => {
    const moved = hit.find((f) => f.layer.id === "moved-fill");
    if (moved) { return movedText(moved.properties); }
    const code = gridCode(hit[0].properties);
    return state.locked.includes(code) ? `网格 ${code}（锁定）` : `网格 ${code}`;
  };
  const state = { locked: [] };
  for (const map of [current, draft]) {
    popups.set(map, new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: "gv-popup", maxWidth: "22em" }));
    map.on("mousemove", hover(map));
    map.on("mouseout", () => popups.get(map).remove());
  }

  return {
    current,
    draft,
    /**
     * Draw a comparison (current, draft, moved FeatureCollections): grids filled by their balance against
     * `tolerance`, the locked grids marked; fit the area.
     */
    show(comparison, lockedCodes, tolerance = 0.10) {
      state.locked = lockedCodes;
      current.getSource("grids").setData(comparison.current);
      draft.getSource("grids").setData(comparison.draft);
      current.getSource("moved").setData(comparison.moved);
      draft.getSource("moved").setData(comparison.moved);
      for (const map of [current, draft]) {
        if (!map.getLayer("grids-fill")) { addGridLayers(map, lockedCodes, tolerance); }
      }
      if (!draft.getLayer("moved-fill")) {
        draft.addLayer({ id: "moved-fill", type: "fill", source: "moved", paint: { "fill-pattern": HATCH } });
        draft.addLayer({ id: "moved-line", type: "line", source: "moved", paint: { "line-color": COLOURS.moved, "line-width": 1.5 } });
        current.addLayer({ id: "moved-fill", type: "fill", source: "moved", paint: { "fill-color": COLOURS.moved, "fill-opacity": 0.12 } });
        current.addLayer({ id: "moved-line", type: "line", source: "moved", paint: { "line-color": COLOURS.moved, "line-width": 1.5 } });
      }
      // The panel beside the maps is filled by now: the canvases take their final size before the fit.
      current.resize();
      draft.resize();
      const box = extent([comparison.current, comparison.draft]);
      if (box) { current.fitBounds(box, { padding: 24, animate: false }); }
    },
    /** The tooltip a user would read at a screen point of `map` (null where nothing is drawn). */
    tooltipAt(map, point) {
      if (!map.getLayer("moved-fill")) { return null; }
      const hit = map.queryRenderedFeatures([point.x, point.y], { layers: ["moved-fill", "grids-fill"] });
      return hit.length ? textAt(hit) : null;
    },
  };
}

/** The WGS84 box [[west, south], [east, north]] of the features of some FeatureCollections, null when empty. */
export function extent(collections) {
  let west = Infinity; let south = Infinity; let east = -Infinity; let north = -Infinity;
  const visit = (coords) => {
    if (typeof coords[0] === "number") {
      west = Math.min(west, coords[0]); east = Math.max(east, coords[0]);
      south = Math.min(south, coords[1]); north = Math.max(north, coords[1]);
      return;
    }
    for (const c of coords) { visit(c); }
  };
  for (const fc of collections) {
    for (const feature of (fc && fc.features) || []) {
      if (feature.geometry) { visit(feature.geometry.coordinates); }
    }
  }
  return Number.isFinite(west) ? [[west, south], [east, north]] : null;
}

/**
 * A screen point of `map` where a rendered feature of `layer` lies, the one nearest the middle of the canvas (away
 * from the map's controls), scanned on a coarse lattice; null when none is in view. What a test moves the mouse to.
 */
export function renderedPoint(map, layer, step = 6) {
  const canvas = map.getCanvas();
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const margin = 60;
  let best = null;
  let bestDistance = Infinity;
  for (let y = margin; y < height - margin; y += step) {
    for (let x = margin; x < width - margin; x += step) {
      const distance = (x - width / 2) ** 2 + (y - height / 2) ** 2;
      if (distance < bestDistance && map.queryRenderedFeatures([x, y], { layers: [layer] }).length) {
        best = { x, y };
        bestDistance = distance;
      }
    }
  }
  return best;
}
