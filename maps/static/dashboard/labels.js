/**
 * dashboard/labels.js: one label per town, community and grid. A polygon cut across tiles would be labelled once per
 * tile; instead, after each redraw the pieces of the tiles loaded are grouped by code and the label is put at the
 * centre of the largest piece (a GeoJSON source, "labels").
 */

const LEVELS = [["towns", "town"], ["communities", "community"], ["grids", "grid"]];

function ringArea(ring) {
  let area = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    area += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  }
  return Math.abs(area / 2);
}

function ringCentre(ring) {
  let x = 0;
  let y = 0;
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    const f = ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
    x += (ring[j][0] + ring[i][0]) * f;
    y += (ring[j][1] + ring[i][1]) * f;
    a += f;
  }
  if (a === 0) { return ring[0]; }
  return [x / (3 * a), y / (3 * a)];
}

function outerRings(geometry) {
  if (geometry.type === "Polygon") { return [geometry.coordinates[0]]; }
  if (geometry.type === "MultiPolygon") { return geometry.coordinates.map((p) => p[0]); }
  return [];
}

/** The label points of the towns and communities in the loaded tiles, as a FeatureCollection. */
function labelPoints(map, geojsonGrids) {
  const features = [];
  for (const [source, level] of LEVELS) {
    // Grid labels are shown from zoom 14.5 only: below it their 2,900 outlines need no label points.
    if (!map.getSource(source) || (source === "grids" && map.getZoom() < 14)) { continue; }
    const best = new Map();
    const options = source === "grids" && geojsonGrids ? {} : { sourceLayer: source };
    for (const feature of map.querySourceFeatures(source, options)) {
      const { code, name } = feature.properties;
      for (const ring of outerRings(feature.geometry)) {
        const area = ringArea(ring);
        const known = best.get(code);
        if (!known || area > known.area) { best.set(code, { area, ring, name }); }
      }
    }
    for (const [code, { ring, name }] of best) {
      features.push({ type: "Feature", geometry: { type: "Point", coordinates: ringCentre(ring) }, properties: { code, name, level } });
    }
  }
  return { type: "FeatureCollection", features };
}

/** Keep the "labels" source in step with the tiles: recomputed when the map settles after loading tiles. */
export function startLabels(map, { geojsonGrids = false } = {}) {
  let dirty = true;
  let last = "";
  map.on("sourcedata", (event) => {
    if (LEVELS.some(([source]) => source === event.sourceId)) { dirty = true; }
  });
  map.on("zoomend", () => { dirty = true; });
  map.on("idle", () => {
    if (!dirty) { return; }
    dirty = false;
    const data = labelPoints(map, geojsonGrids);
    const key = data.features.map((f) => `${f.properties.code}:${f.geometry.coordinates.join(",")}`).join("|");
    if (key !== last) {
      last = key;
      map.getSource("labels").setData(data);
    }
  });
}
