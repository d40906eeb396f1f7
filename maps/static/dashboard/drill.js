/**
 * dashboard/drill.js: the drill-down city → town → community → grid, by a click on the map, by the breadcrumb
 * (东莞市 › 东城街道 › …) and by the URL (/?level=town&code=441900003000; history.pushState, and popstate goes
 * back). Each step fits the unit's box (GET /v1/kpi's bbox), highlights it and tells the panels (onView).
 * The caller's root (a town leader's town, a dispatcher's community) is where the breadcrumb starts and what
 * no step may leave.
 */

import { HIT_LAYERS, highlightUnit } from "./layers.js";
import { FIT_PADDING } from "./map.js";

export const LEVELS = ["city", "town", "community", "grid"];
export const CITY = { level: "city", code: null, name: "东莞市" };

/** The codes of a unit and its ancestors: [city, town, community, grid] down to the unit's level. */
export function chainOf(level, code) {
  if (level === "city" || !code) { return [CITY.code]; }
  const town = `${code.slice(0, 9)}000`;
  const community = code.slice(0, 12);
  const chain = [null, town];
  if (level === "community" || level === "grid") { chain.push(community); }
  if (level === "grid") { chain.push(code); }
  return chain;
}

/** The view a URL's query names ({level, code}), or null. */
export function viewFromUrl() {
  const query = new URLSearchParams(window.location.search);
  const level = query.get("level");
  const code = query.get("code");
  if (level === "city") { return { level: "city", code: null }; }
  if (LEVELS.includes(level) && code && /^\d{9,15}$/.test(code)) { return { level, code }; }
  return null;
}

/** The dashboard's URL of a view (the page's other query parameters kept). */
export function urlOf(view) {
  const query = new URLSearchParams(window.location.search);
  query.delete("level");
  query.delete("code");
  if (view.level !== "city") {
    query.set("level", view.level);
    query.set("code", view.code);
  }
  const text = query.toString();
  return `${window.location.pathname}${text ? `?${text}` : ""}`;
}

/** Whether the unit (level, code) lies within `root` (itself, or below it). */
export function within(root, level, code) {
  if (root.level === "city") { return true; }
  if (LEVELS.indexOf(level) < LEVELS.indexOf(root.level)) { return false; }
  return chainOf(level, code)[LEVELS.indexOf(root.level)] === root.code;
}

/**
 * The drill-down controller. `loadUnit(view)` answers the unit's {name, parent, bbox} (from GET /v1/kpi) or throws;
 * `boxOf(level, code)` is the unit's box in the map's system from the tiles drawn (or null), `cityBox` the city's
 * (WGS84); `describeGrid(code)` answers a grid's town and community names (GET /v1/grids/{code}) for a breadcrumb opened
 * from a link; `toMap(lon, lat)` puts WGS84 into the map's system; `breadcrumb` is the element to draw the trail in.
 * Returns {view(), settled(), go(level, code, options), onView(fn), clickAt(point), remember(level, code, name)}.
 */
export function createDrill(map, { root, loadUnit, describeGrid, boxOf, cityBox, toMap, breadcrumb, setStatus }) {
  const names = new Map([["city:", CITY.name]]);
  // The WGS84 box of every unit whose figures came (GET /v1/kpi's bbox): a step back up to one (the breadcrumb,
  // the back button) moves the map at once instead of waiting for the figures again.
  const boxes = new Map();
  const listeners = [];
  let current = { ...root, name: root.name || CITY.name };
  let step = 0;

  const nameOf = (level, code) => names.get(`${level}:${code || ""}`);
  const remember = (level, code, name) => { if (name) { names.set(`${level}:${code || ""}`, name); } };

  function drawBreadcrumb() {
    breadcrumb.replaceChildren();
    const chain = chainOf(current.level, current.code);
    const start = LEVELS.indexOf(root.level);
    for (let i = start; i < chain.length; i += 1) {
      const level = LEVELS[i];
      const code = chain[i];
      const text = nameOf(level, code) || code || CITY.name;
      if (i > start) {
        const sep = document.createElement("span");
        sep.className = "sep";
        sep.textContent = "›";
        breadcrumb.appendChild(sep);
      }
      if (i === chain.length - 1) {
        const here = document.createElement("span");
        here.className = "here";
        here.setAttribute("aria-current", "page");
        here.textContent = text;
        breadcrumb.appendChild(here);
      } else {
        const link = document.createElement("a");
        link.href = urlOf({ level, code });
        link.dataset.level = level;
        link.dataset.code = code || "";
        link.textContent = text;
        link.addEventListener("click", (event) => {
          event.preventDefault();
          go(level, code);
        });
        breadcrumb.appendChild(link);
      }
    }
  }

  function fit(bbox, inMapCoords = false) {
    if (!bbox) { return; }
    const convert = inMapCoords ? (lon, lat) => [lon, lat] : toMap;
    const [w, s] = convert(bbox[0], bbox[1]);
    const [e, n] = convert(bbox[2], bbox[3]);
    map.fitBounds([[w, s], [e, n]], { padding: FIT_PADDING, duration: 0, maxZoom: 17 });
  }

  let settled = Promise.resolve();

  /** Whether a box in the map's system lies inside the view. */
  function inView(box) {
    const b = map.getBounds();
    return box[0] >= b.getWest() && box[1] >= b.getSouth() && box[2] <= b.getEast() && box[3] <= b.getNorth();
  }

  /** The rest of a step once the unit's figures are in: names, breadcrumb, the box (unless fitted), listeners. */
  async function complete(level, code, mine, fitAfter) {
    let answer = null;
    try {
      answer = await loadUnit(current);
    } catch (error) {
      if (mine === step) { setStatus(error.message || "加载失败", { warning: true }); }
    }
    if (mine !== step) { return; }
    if (answer) {
      remember(level, code, answer.name);
      if (answer.bbox) { boxes.set(`${level}:${code || ""}`, answer.bbox); }
      if (answer.parent) { remember(answer.parent.level, answer.parent.code, answer.parent.name); }
      for (const child of answer.children || []) { remember(child.level, child.code, child.name); }
      if (level === "grid" && !nameOf("town", chainOf(level, code)[1]) && describeGrid) {
        try {
          const grid = await describeGrid(code);
          remember("town", grid.town_code, grid.town_name);
          remember("community", grid.community_code, grid.community_name);
        } catch {
          // The breadcrumb shows the codes it has no name for.
        }
        if (mine !== step) { return; }
      }
      current = { ...current, name: nameOf(level, code) || current.name };
      drawBreadcrumb();
      if (fitAfter) { fit(answer.bbox || answer.bboxMap, !answer.bbox); }
    }
    for (const fn of listeners) { fn({ ...current }, answer); }
  }

  /**
   * Go to the unit (level, code): highlight, breadcrumb, URL (unless `push` is false), fit, then its figures and
   * the listeners. The map moves at once when the tiles drawn know the unit's outline or the unit was shown before
   * (the figures follow: see `settled`); otherwise it waits for GET /v1/kpi's box.
   */
  async function go(level, code, { push = true } = {}) {
    if (level === "city") { code = null; }
    if (!within(root, level, code)) {
      setStatus("超出您的管辖范围，无法查看", { warning: true });
      return false;
    }
    const mine = ++step;
    current = { level, code, name: nameOf(level, code) || code || CITY.name };
    if (push) { window.history.pushState({ level, code }, "", urlOf(current)); }
    highlightUnit(map, level, code);
    drawBreadcrumb();
    // The tiles drawn know a unit's whole outline only when it lies in view (as a child of the view does).
    const drawnBox = level === "city" ? null : boxOf(level, code);
    const known = boxes.get(`${level}:${code || ""}`);
    let quick = null;
    if (level === "city") {
      quick = cityBox;
      fit(cityBox);
    } else if (drawnBox && inView(drawnBox)) {
      quick = drawnBox;
      fit(drawnBox, true);
    } else if (known) {
      quick = known;
      fit(known);
    }
    settled = complete(level, code, mine, !quick);
    if (!quick) { await settled; }
    return true;
  }

  /** The unit one step below the deepest one that the clicked place and the current view share. */
  function clickAt(point) {
    const found = { town: null, community: null, grid: null };
    for (const feature of map.queryRenderedFeatures(point, { layers: Object.values(HIT_LAYERS) })) {
      const level = Object.keys(HIT_LAYERS).find((k) => HIT_LAYERS[k] === feature.layer.id);
      if (!found[level]) {
        found[level] = feature.properties.code;
        remember(level, feature.properties.code, feature.properties.name);
      }
    }
    // The deepest unit found names its ancestors by its code: outlines generalised differently per layer may
    // disagree near a boundary, the codes never do.
    const deepest = found.grid ? ["grid", found.grid] : found.community ? ["community", found.community] : ["town", found.town];
    const there = found.town || found.community || found.grid ? chainOf(...deepest) : [null];
    while (there.length < 4) { there.push(null); }
    const here = chainOf(current.level, current.code);
    let shared = 1;
    while (shared < here.length && here[shared] === there[shared]) { shared += 1; }
    if (shared >= there.length || !there[shared]) {
      // Nothing of the caller's territory is drawn there: outside a town leader's or dispatcher's area.
      if (root.level !== "city" && !found.town) { setStatus("超出您的管辖范围，无法查看", { warning: true }); }
      return false;
    }
    return go(LEVELS[shared], there[shared]);
  }

  window.addEventListener("popstate", () => {
    const view = viewFromUrl() || { level: root.level, code: root.code };
    go(view.level, view.code, { push: false });
  });

  return {
    view: () => ({ ...current }),
    /** A promise resolved when the last step's figures and listeners are done. */
    settled: () => settled,
    go,
    clickAt,
    onView(fn) { listeners.push(fn); },
    remember,
    root,
  };
}
