/**
 * dashboard/layers.js: what the map draws and the switcher to choose it — town, community and grid outlines with
 * Chinese labels; grids filled by a chosen figure (hours of work per worker a month, addresses and entities per
 * worker, overdue tasks, clues of 30 days) with its
 * legend; entities clustered below zoom 14 and as points above; open tasks (overdue in red); clues; the last
 * hour's registrations; the selected unit and a searched grid highlighted. Invisible fills of towns, communities
 * and grids stay on whatever is shown, so a click always finds the unit under it.
 */

import { tileTemplate } from "./map.js";

const LABEL_FONT = ["Noto Sans Regular"];
const COLOURS = {
  town: "#1f3864", community: "#6f6f6f", grid: "#2e75b6", gridFill: "#9dc3e6", selected: "#e0301e", searched: "#ff9900",
  entity: "#2a9d8f", task: "#ed7d31", overdue: "#c00000", clue: "#8e44ad", registration: "#00a65a", none: "#d9d9d9",
};

/** The groups of the layer switcher and the map layers each stands for. */
export const GROUPS = {
  towns: ["towns-line", "towns-label"],
  communities: ["communities-line", "communities-label"],
  grids: ["grids-fill", "grids-line", "grids-label"],
  entities: ["entities-clusters", "entities-count", "entities-points"],
  tasks: ["tasks"],
  clues: ["clues"],
  registrations: ["registrations"],
};
const GROUP_LABELS = {
  entities: "市场主体", tasks: "在办任务（红色为逾期）", clues: "线索", registrations: "近一小时登记",
};
// The layers a group's rendered features are counted on (the test hook and the benchmark).
const COUNTED = {
  towns: ["towns-line"], communities: ["communities-line"], grids: ["grids-fill"],
  entities: ["entities-clusters", "entities-points"], tasks: ["tasks"], clues: ["clues"], registrations: ["registrations"],
};
export const HIT_LAYERS = { town: "towns-hit", community: "communities-hit", grid: "grids-hit" };
export const POINT_LAYERS = ["registrations", "tasks", "clues", "entities-points", "entities-clusters"];

/** The figures grids can be coloured by: label, value expression, unit of the legend. */
export const METRICS = {
  // Hours per month per worker from the workload model (GET /v1/workload); absent until it is computed.
  hours_per_worker: {
    label: "每人工作量 (小时/月)",
    value: ["to-number", ["get", "hours_per_worker"], 0],
    has: ["has", "hours_per_worker"],
  },
  workload: {
    label: "人均地址与主体数",
    value: ["/", ["to-number", ["get", "workload"], 0], ["max", 1, ["to-number", ["get", "workers"], 1]]],
    has: ["has", "workload"],
  },
  overdue_tasks: { label: "逾期任务数", value: ["to-number", ["get", "overdue_tasks"], 0], has: ["has", "overdue_tasks"] },
  clues_30d: { label: "近30天线索数", value: ["to-number", ["get", "clues_30d"], 0], has: ["has", "clues_30d"] },
  none: { label: "仅边界", value: null, has: null },
};

function src(name, geojsonGrids) {
  return name === "grids" && geojsonGrids ? { source: "grids" } : { source: name, "source-layer": name };
}

function labelOf(id, level, minzoom, maxzoom, size, colour) {
  return {
    id, type: "symbol", source: "labels", filter: ["==", ["get", "level"], level], minzoom, maxzoom,
    layout: {
      "text-field": ["get", "name"], "text-font": LABEL_FONT, "text-size": size, "text-max-width": 8,
      "symbol-placement": "point", "text-padding": 4,
    },
    paint: { "text-color": colour, "text-halo-color": "#ffffff", "text-halo-width": 1.4 },
  };
}

/**
 * Add the layers of the dashboard to `map` (its sources are map.js's), but none drawn from the sources named in
 * `without` (the entities, tasks and clues of a caller who may not read them: their tiles would only answer 403).
 */
export function addLayers(map, { geojsonGrids = false, without = [] } = {}) {
  const g = (name) => src(name, geojsonGrids);
  const isOverdue = ["any", ["==", ["get", "overdue"], true], ["==", ["get", "overdue"], "true"]];
  const layers = [
    { id: "grids-fill", type: "fill", ...g("grids"), paint: { "fill-color": COLOURS.gridFill, "fill-opacity": 0.55 } },
    { id: "grids-line", type: "line", ...g("grids"), minzoom: 9.5, paint: { "line-color": COLOURS.grid, "line-width": ["interpolate", ["linear"], ["zoom"], 10, 0.3, 14, 1] } },
    { id: "communities-line", type: "line", ...g("communities"), minzoom: 9, paint: { "line-color": COLOURS.community, "line-width": 1, "line-dasharray": [3, 2] } },
    { id: "towns-line", type: "line", ...g("towns"), paint: { "line-color": COLOURS.town, "line-width": 2.2 } },
    { id: "towns-hit", type: "fill", ...g("towns"), paint: { "fill-color": "#000", "fill-opacity": 0 } },
    { id: "communities-hit", type: "fill", ...g("communities"), paint: { "fill-color": "#000", "fill-opacity": 0 } },
    { id: "grids-hit", type: "fill", ...g("grids"), paint: { "fill-color": "#000", "fill-opacity": 0 } },
    { id: "selected-town", type: "line", ...g("towns"), filter: ["==", ["get", "code"], ""], paint: { "line-color": COLOURS.selected, "line-width": 3.5 } },
    { id: "selected-community", type: "line", ...g("communities"), filter: ["==", ["get", "code"], ""], paint: { "line-color": COLOURS.selected, "line-width": 3 } },
    { id: "selected-grid", type: "line", ...g("grids"), filter: ["==", ["get", "code"], ""], paint: { "line-color": COLOURS.selected, "line-width": 3 } },
    { id: "searched-grid", type: "line", ...g("grids"), filter: ["==", ["get", "code"], ""], paint: { "line-color": COLOURS.searched, "line-width": 3, "line-dasharray": [2, 1] } },
    {
      id: "entities-clusters", type: "circle", ...g("entities"), filter: ["==", ["get", "cluster"], true],
      paint: {
        "circle-color": COLOURS.entity, "circle-opacity": 0.45, "circle-stroke-color": "#ffffff", "circle-stroke-width": 0.8,
        "circle-radius": ["interpolate", ["linear"], ["to-number", ["get", "point_count"], 1], 1, 3, 100, 6, 1000, 10, 10000, 16],
      },
    },
    {
      id: "entities-count", type: "symbol", ...g("entities"), filter: ["==", ["get", "cluster"], true],
      layout: { "text-field": ["to-string", ["get", "point_count"]], "text-font": LABEL_FONT, "text-size": 10, "text-allow-overlap": false },
      paint: { "text-color": "#ffffff" },
    },
    {
      id: "entities-points", type: "circle", ...g("entities"), filter: ["!=", ["get", "cluster"], true],
      paint: { "circle-color": COLOURS.entity, "circle-radius": 3.5, "circle-stroke-color": "#ffffff", "circle-stroke-width": 0.8 },
    },
    {
      id: "tasks", type: "circle", ...g("tasks"),
      paint: {
        "circle-color": ["case", isOverdue, COLOURS.overdue, COLOURS.task],
        "circle-radius": ["interpolate", ["linear"], ["zoom"], 9, 2.5, 15, 6], "circle-stroke-color": "#ffffff", "circle-stroke-width": 1,
      },
    },
    {
      id: "clues", type: "circle", ...g("clues"),
      paint: {
        "circle-color": COLOURS.clue, "circle-radius": ["interpolate", ["linear"], ["zoom"], 9, 2.5, 15, 6],
        "circle-stroke-color": ["case", ["==", ["get", "severity"], "severe"], "#000000", "#ffffff"], "circle-stroke-width": 1.2,
      },
    },
    {
      id: "registrations", type: "circle", source: "registrations",
      paint: { "circle-color": COLOURS.registration, "circle-radius": 7, "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 },
    },
    labelOf("towns-label", "town", 0, 11.5, 14, COLOURS.town),
    labelOf("communities-label", "community", 11.5, 14.5, 12, "#404040"),
    labelOf("grids-label", "grid", 14.5, 24, 11, COLOURS.grid),
  ];
  for (const layer of layers) {
    if (!without.includes(layer.source)) { map.addLayer(layer); }
  }
}

/** Show the unit of `level` with `code` as the selected one (and nothing at the other levels). */
export function highlightUnit(map, level, code) {
  for (const [name, id] of [["town", "selected-town"], ["community", "selected-community"], ["grid", "selected-grid"]]) {
    map.setFilter(id, ["==", ["get", "code"], level === name && code ? code : ""]);
  }
}

/** Outline the grid `code` as the one a search found (null clears it). */
export function highlightSearchedGrid(map, code) {
  map.setFilter("searched-grid", ["==", ["get", "code"], code || ""]);
}

/** The properties of the features of switcher group `name` now drawn, one per feature. */
export function renderedFeatures(map, name) {
  const ids = (COUNTED[name] || []).filter((id) => map.getLayer(id));
  if (!ids.length) { return []; }
  const seen = new Map();
  for (const feature of map.queryRenderedFeatures({ layers: ids })) {
    const p = feature.properties;
    const key = p.code || p.uscc || (p.id !== undefined ? `id:${p.id}` : null) || p.event_id ||
      (feature.id !== undefined ? `f:${feature.id}` : JSON.stringify(feature.geometry.coordinates));
    if (!seen.has(key)) { seen.set(key, { ...p }); }
  }
  return [...seen.values()];
}

/** Each switcher group's count of features now drawn. */
export function renderedCounts(map) {
  return Object.fromEntries(Object.keys(GROUPS).map((name) => [name, renderedFeatures(map, name).length]));
}

/** Class breaks (ascending, distinct) of the metric's values over the grid features loaded now. */
function breaksFor(map, metric, classes, geojsonGrids) {
  const options = geojsonGrids ? {} : { sourceLayer: "grids" };
  const values = [];
  for (const feature of map.querySourceFeatures("grids", options)) {
    const p = feature.properties;
    if (p[metric] === undefined || p[metric] === null) { continue; }
    values.push(metric === "workload" ? Number(p.workload) / Math.max(1, Number(p.workers) || 1) : Number(p[metric]));
  }
  values.sort((a, b) => a - b);
  const out = [];
  for (let i = 1; i < classes; i += 1) {
    const v = values.length ? values[Math.floor((values.length * i) / classes)] : i;
    const rounded = metric === "workload" || metric === "hours_per_worker" ? Math.round(v * 10) / 10 : Math.round(v);
    if (rounded > (out.length ? out[out.length - 1] : -Infinity) && rounded > 0) { out.push(rounded); }
  }
  return out.length ? out : [1];
}

/**
 * The layer switcher (checkboxes) in element `el`, the grid-colour chooser and its legend in `legendEl`. `labels` gives the
 * Chinese names of towns, communities and grids (the vocabulary's), `ramp` the legend colours.
 * Returns {refresh(name), metric(), setMetric(name)}.
 */
export function mountLayerPanel(el, legendEl, map, { labels, ramp, coords, geojsonGrids = false }) {
  const versions = {};
  // The switcher folds away (the map keeps its width); the colour chooser and legend stay in view.
  const form = document.createElement("details");
  form.className = "layer-panel";
  const title = document.createElement("summary");
  title.textContent = "图层";
  form.appendChild(title);
  for (const name of Object.keys(GROUPS)) {
    if (!map.getLayer(GROUPS[name][0])) { continue; }
    const row = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = name;
    box.checked = true;
    box.addEventListener("change", () => {
      for (const id of GROUPS[name]) { map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none"); }
    });
    row.append(box, document.createTextNode(labels[name] || GROUP_LABELS[name] || name));
    form.appendChild(row);
  }
  const key = document.createElement("div");
  key.className = "legend-box";
  const metricLabel = document.createElement("label");
  metricLabel.className = "metric";
  metricLabel.textContent = "网格着色";
  const select = document.createElement("select");
  select.id = "grid-metric";
  for (const [value, metric] of Object.entries(METRICS)) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = metric.label;
    select.appendChild(option);
  }
  metricLabel.appendChild(select);
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.id = "legend";
  key.append(metricLabel, legend);
  el.appendChild(form);
  legendEl.appendChild(key);

  const palette = ramp.slice(0, Math.min(6, ramp.length));
  let current = "hours_per_worker";

  function drawLegend(name, breaks) {
    legend.replaceChildren();
    if (name === "none") { return; }
    const rows = [];
    const lo = [0, ...breaks];
    palette.slice(0, breaks.length + 1).forEach((colour, i) => {
      const text = i < breaks.length ? `${lo[i]} – ${breaks[i]}` : `≥ ${lo[i]}`;
      rows.push([colour, text]);
    });
    rows.push([COLOURS.none, "无数据或无权查看"]);
    for (const [colour, text] of rows) {
      const row = document.createElement("div");
      const swatch = document.createElement("i");
      swatch.style.background = colour;
      row.append(swatch, document.createTextNode(text));
      legend.appendChild(row);
    }
  }

  function apply(name) {
    current = name;
    const metric = METRICS[name];
    if (!metric.value) {
      map.setPaintProperty("grids-fill", "fill-color", COLOURS.gridFill);
      map.setPaintProperty("grids-fill", "fill-opacity", 0.15);
      drawLegend(name, []);
      return;
    }
    const breaks = breaksFor(map, name, palette.length, geojsonGrids);
    const step = ["step", metric.value, palette[0]];
    breaks.forEach((b, i) => step.push(b, palette[Math.min(i + 1, palette.length - 1)]));
    map.setPaintProperty("grids-fill", "fill-color", ["case", metric.has, step, COLOURS.none]);
    map.setPaintProperty("grids-fill", "fill-opacity", 0.6);
    drawLegend(name, breaks);
  }
  select.addEventListener("change", () => apply(select.value));

  return {
    /** Colour the grids by `name` again with breaks from what is loaded now. */
    setMetric(name) { select.value = name; apply(name); },
    metric: () => current,
    /** Ask the tiles of `name` again (a task moved, a clue came in); registrations are live.js's. */
    refresh(name) {
      if (!map.getSource(name) || name === "registrations" || (name === "grids" && geojsonGrids)) { return; }
      versions[name] = (versions[name] || 0) + 1;
      map.getSource(name).setTiles([tileTemplate(name, coords, versions[name])]);
    },
  };
}
