/**
 * inspections/map.js: the planning page's MapLibre map — the towns (click one to choose it), the chosen town's grids
 * (click to select or unselect, for an area of grids), a polygon drawn by clicking its vertices and closed by a
 * double click, the preview's candidates as a light layer, and a plan's visits coloured by team (unmatched ones in
 * grey) with each team-day's route in the team's colour; a click on a visit selects it as a stop to move.
 * Nothing is fetched beyond this server unless a WGS84 basemap is configured.
 */

import * as maplibregl from "/static/vendor/maplibre-gl/maplibre-gl.mjs";

import { baseStyle } from "../lib/basestyle.js";
import { escapeHtml } from "../lib/escape.js";

const EMPTY = { type: "FeatureCollection", features: [] };
// Team colours (Tableau 10), repeated after ten teams; unmatched visits are grey.
const TEAM_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#5b5f97"];
export const UNMATCHED_COLOUR = "#9e9e9e";

/** The colour of team number `teamNo` (1…), grey for none. */
export function teamColour(teamNo) {
  return teamNo ? TEAM_COLOURS[(teamNo - 1) % TEAM_COLOURS.length] : UNMATCHED_COLOUR;
}

function boundsOf(coordinates) {
  const xs = coordinates.map((c) => c[0]);
  const ys = coordinates.map((c) => c[1]);
  return [[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]];
}

function ringsOf(geometry) {
  if (geometry.type === "Polygon") { return geometry.coordinates.flat(); }
  if (geometry.type === "MultiPolygon") { return geometry.coordinates.flat(2); }
  if (geometry.type === "LineString") { return geometry.coordinates; }
  return [geometry.coordinates];
}

function addSources(map, names) {
  for (const name of names) { map.addSource(name, { type: "geojson", data: EMPTY, promoteId: "id" }); }
}

function addLayers(map) {
  map.addLayer({ id: "town-fill", type: "fill", source: "towns", paint: { "fill-color": "#dfe7ef", "fill-opacity": ["case", ["boolean", ["feature-state", "chosen"], false], 0.0, 0.35] } });
  map.addLayer({ id: "town-line", type: "line", source: "towns", paint: { "line-color": "#5b7083", "line-width": ["case", ["boolean", ["feature-state", "chosen"], false], 2.5, 0.8] } });
  map.addLayer({ id: "grid-fill", type: "fill", source: "grids", paint: { "fill-color": "#f6b26b", "fill-opacity": ["case", ["boolean", ["feature-state", "selected"], false], 0.55, 0.04] } });
  map.addLayer({ id: "grid-line", type: "line", source: "grids", paint: { "line-color": "#2e75b6", "line-width": 0.6 } });
  map.addLayer({ id: "polygon-fill", type: "fill", source: "polygon", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": "#8e24aa", "fill-opacity": 0.15 } });
  map.addLayer({ id: "polygon-line", type: "line", source: "polygon", paint: { "line-color": "#8e24aa", "line-width": 2, "line-dasharray": [2, 1] } });
  map.addLayer({ id: "polygon-vertex", type: "circle", source: "polygon", filter: ["==", ["geometry-type"], "Point"], paint: { "circle-radius": 4, "circle-color": "#8e24aa" } });
  map.addLayer({ id: "candidate-fill", type: "fill", source: "candidates", paint: { "fill-color": "#ffb74d", "fill-opacity": 0.3 } });
  map.addLayer({ id: "route-line", type: "line", source: "routes", layout: { "line-cap": "round", "line-join": "round" }, paint: { "line-color": ["get", "colour"], "line-width": ["case", ["boolean", ["feature-state", "selected"], false], 5, 3], "line-opacity": 0.85 } });
  map.addLayer({ id: "office", type: "circle", source: "offices", paint: { "circle-radius": 7, "circle-color": "#fff", "circle-stroke-width": 3, "circle-stroke-color": ["get", "colour"] } });
  map.addLayer({ id: "visit", type: "circle", source: "visits", paint: { "circle-radius": ["case", ["boolean", ["feature-state", "selected"], false], 9, 5.5], "circle-color": ["get", "colour"], "circle-stroke-color": ["case", ["boolean", ["feature-state", "selected"], false], "#000", "#fff"], "circle-stroke-width": 1.5 } });
  map.addLayer({ id: "visit-order", type: "symbol", source: "visits", filter: ["has", "order"], layout: { "text-field": ["to-string", ["get", "order"]], "text-size": 10, "text-offset": [0, -1.2], "text-allow-overlap": true }, paint: { "text-color": "#222", "text-halo-color": "#fff", "text-halo-width": 1 } });
}

/** The page's map in element `container`; resolves once loaded to the object whose methods draw the page's data. */
export async function createInspectionMap(container, config, { onTown, onGrid, onVisit }) {
  const [west, south, east, north] = config.boundsLonLat;
  const map = new maplibregl.Map({
    container,
    style: baseStyle(config),
    bounds: [[west, south], [east, north]],
    minZoom: 7,
    maxZoom: 19,
    attributionControl: false,
    doubleClickZoom: false,
    localIdeographFontFamily: "'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif",
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  await new Promise((resolve) => { map.once("load", resolve); });
  addSources(map, ["towns", "grids", "polygon", "candidates", "routes", "offices", "visits"]);
  addLayers(map);

  let chosenTown = null;
  let drawing = null; // the vertices [[lon, lat]…] of a polygon being drawn, or null
  let polygon = null; // the closed polygon (GeoJSON geometry), or null
  let onPolygon = () => {};
  let selectedVisit = null;
  let selectedRoute = null;
  let gridFeatures = [];
  const popup = new maplibregl.Popup({ maxWidth: "320px" });

  const drawPolygon = () => {
    const features = [];
    const ring = drawing || (polygon ? polygon.coordinates[0].slice(0, -1) : []);
    for (const c of ring) { features.push({ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: c } }); }
    if (polygon) { features.push({ type: "Feature", properties: {}, geometry: polygon }); }
    else if (ring.length > 1) { features.push({ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: ring } }); }
    map.getSource("polygon").setData({ type: "FeatureCollection", features });
  };

  map.on("click", (event) => {
    if (drawing) {
      drawing.push([event.lngLat.lng, event.lngLat.lat]);
      drawPolygon();
      return;
    }
    const [visit] = map.queryRenderedFeatures(event.point, { layers: ["visit"] });
    if (visit) { onVisit(visit.properties.id, event.lngLat); return; }
    const [grid] = map.queryRenderedFeatures(event.point, { layers: ["grid-fill"] });
    if (grid) { onGrid(grid.properties.code); return; }
    const [town] = map.queryRenderedFeatures(event.point, { layers: ["town-fill"] });
    if (town) { onTown(town.properties.code); }
  });
  map.on("dblclick", (event) => {
    if (!drawing) { return; }
    event.preventDefault();
    // The double click's two clicks each added the same vertex: drop the repeats before closing the ring.
    const ring = drawing.filter((c, i) => i === 0 || c[0] !== drawing[i - 1][0] || c[1] !== drawing[i - 1][1]);
    drawing = null;
    map.getCanvas().style.cursor = "";
    if (ring.length >= 3) {
      polygon = { type: "Polygon", coordinates: [[...ring, ring[0]]] };
    }
    drawPolygon();
    onPolygon(polygon);
  });
  for (const layer of ["visit", "grid-fill", "town-fill"]) {
    map.on("mouseenter", layer, () => { if (!drawing) { map.getCanvas().style.cursor = "pointer"; } });
    map.on("mouseleave", layer, () => { if (!drawing) { map.getCanvas().style.cursor = ""; } });
  }

  const fit = (coordinates, maxZoom = 15) => {
    if (coordinates.length) { map.fitBounds(boundsOf(coordinates), { padding: 40, maxZoom, duration: 0 }); }
  };

  return {
    map,
    /** The towns' outlines (GET /v1/towns). */
    showTowns(towns) { map.getSource("towns").setData(towns); },
    /** Mark the chosen town and bring it into view. */
    chooseTown(code, towns) {
      if (chosenTown) { map.setFeatureState({ source: "towns", id: chosenTown }, { chosen: false }); }
      chosenTown = code;
      if (!code) { return; }
      map.setFeatureState({ source: "towns", id: code }, { chosen: true });
      const town = towns.features.find((f) => f.properties.code === code);
      if (town) { fit(ringsOf(town.geometry), 14); }
    },
    /** The grids of the chosen town (each feature's id is its code), none selected. */
    showGrids(grids) {
      gridFeatures = grids.features.map((f) => ({ ...f, id: f.properties.code, properties: { ...f.properties, id: f.properties.code } }));
      map.getSource("grids").setData({ type: "FeatureCollection", features: gridFeatures });
    },
    /** Draw a grid as selected or not. */
    markGrid(code, selected) { map.setFeatureState({ source: "grids", id: code }, { selected }); },
    /** Start drawing a polygon; `done(polygon)` hears the closed polygon (or null when fewer than 3 vertices). */
    startPolygon(done) {
      polygon = null;
      drawing = [];
      onPolygon = done;
      map.getCanvas().style.cursor = "crosshair";
      drawPolygon();
    },
    /** Remove the polygon (and stop drawing). */
    clearPolygon() { polygon = null; drawing = null; map.getCanvas().style.cursor = ""; drawPolygon(); },
    /** Whether a polygon is being drawn now. */
    isDrawing() { return drawing !== null; },
    /** The preview's candidates as a light layer over the grids of their area; returns the grids shaded. */
    showCandidates(codes) {
      const wanted = new Set(codes);
      const features = gridFeatures.filter((f) => wanted.has(f.properties.code));
      map.getSource("candidates").setData({ type: "FeatureCollection", features });
      return features.length;
    },
    /** A plan's visits as points coloured by team (`teamNoOf(visit)`), with the stop order when routes exist;
     *  returns the number of points drawn. */
    showVisits(visits, teamNoOf, orderOf = () => null) {
      const features = visits.filter((v) => v.lon !== null && v.lat !== null).map((v) => {
        const order = orderOf(v.id);
        const properties = { id: v.id, colour: teamColour(teamNoOf(v)) };
        if (order !== null) { properties.order = order; }
        return { type: "Feature", id: v.id, properties, geometry: { type: "Point", coordinates: [v.lon, v.lat] } };
      });
      map.getSource("visits").setData({ type: "FeatureCollection", features });
      if (selectedVisit !== null) { map.setFeatureState({ source: "visits", id: selectedVisit }, { selected: true }); }
      return features.length;
    },
    /** Bring the plan's visits (or its area) into view. */
    fitVisits(visits) { fit(visits.filter((v) => v.lon !== null).map((v) => [v.lon, v.lat])); },
    /** The teams' offices as rings in their colours. */
    showOffices(teams) {
      const features = teams.filter((t) => t.office && t.office.lon !== null).map((t) => ({ type: "Feature", properties: { id: t.id, colour: teamColour(t.team_no), name: t.office.name }, geometry: { type: "Point", coordinates: [t.office.lon, t.office.lat] } }));
      map.getSource("offices").setData({ type: "FeatureCollection", features });
    },
    /** Each team-day's route (its road geometry) in its team's colour; returns the number of lines drawn. */
    showRoutes(days) {
      const features = days.filter((d) => d.geometry).map((d) => ({ type: "Feature", id: d.key, properties: { id: d.key, colour: teamColour(d.teamNo) }, geometry: d.geometry }));
      map.getSource("routes").setData({ type: "FeatureCollection", features });
      return features.length;
    },
    /** Highlight one team-day's route (or none). */
    selectRoute(key) {
      if (selectedRoute !== null) { map.setFeatureState({ source: "routes", id: selectedRoute }, { selected: false }); }
      selectedRoute = key;
      if (key !== null) { map.setFeatureState({ source: "routes", id: key }, { selected: true }); }
    },
    /** Highlight one visit (or none). */
    selectVisit(id) {
      if (selectedVisit !== null) { map.setFeatureState({ source: "visits", id: selectedVisit }, { selected: false }); }
      selectedVisit = id;
      if (id !== null) { map.setFeatureState({ source: "visits", id }, { selected: true }); }
    },
    /** A popup at `lngLat` with lines of text (each escaped). */
    popup(lngLat, lines) {
      popup.setLngLat(lngLat).setHTML(lines.map((line) => `<div>${escapeHtml(line)}</div>`).join("")).addTo(map);
    },
    /** A promise of the instant (performance.now()) of the first frame drawn with the visits set last. */
    visitsDrawn() {
      return new Promise((resolve) => {
        const check = () => {
          if (map.isSourceLoaded("visits") && map.querySourceFeatures("visits").length > 0) {
            map.off("render", check);
            resolve(performance.now());
          }
        };
        map.on("render", check);
        map.triggerRepaint();
      });
    },
  };
}
