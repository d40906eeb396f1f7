/**
 * grid_versions/compare.js: the compare page of one grid version — its facts, the twin maps (current | draft, moved
 * areas hatched, locked grids marked), the figures before → after, and for callers with grids.apply the "生效"
 * button: a confirmation, then POST /v1/grid-versions/{id}/apply, showing what moved or why it was refused.
 *
 * Test hook (window.gridgov.page):
 *   loaded              the summary, the comparison and both maps are drawn
 *   summary()           → the version as GET /v1/grid-versions/{id} answered (refreshed after an apply)
 *   counts()            → {current, draft, moved, locked}: features drawn on the maps, locked grids marked
 *   rendered()          → {current, draft, moved}: features the maps render now in view (queryRenderedFeatures)
 *   movedPoint()        → a screen point of the draft map over a moved area (null when none is in view)
 *   tooltipAt(x, y)     → the tooltip text at a screen point of the draft map
 *   views()             → the centre and zoom of both maps (they move together)
 *   result()            → the apply answer, or null; refusal() → the refusal's {status, reason, text}, or null
 */

import { getJson, postJson } from "../lib/api.js";
import { readPageConfig } from "../lib/config.js";
import { setStatus } from "../lib/status.js";
import { publishPage } from "../lib/testhook.js";
import { drawGrids, drawSummary } from "./figures.js";
import {
  LEVEL_ZH, METHOD_ZH, MOVED_KIND_ZH, STATUS_ZH, fixed, refusalText, shanghaiTime,
} from "./labels.js";
import { createTwinMaps, renderedPoint } from "./maps.js";

const config = readPageConfig();
const field = (id) => document.getElementById(id);
const base = `/v1/grid-versions/${config.versionId}`;

const state = { summary: null, comparison: null, locked: [], result: null, refusal: null };

/** The locked grids of a draft: those its figures name, or the draft features flagged as locked. */
function lockedCodes(summary, comparison) {
  const named = (comparison && comparison.locked) || (summary.figures && summary.figures.locked) || [];
  const flagged = ((comparison && comparison.draft.features) || [])
    .filter((f) => f.properties && (f.properties.locked === true || f.properties.locked === "true"))
    .map((f) => f.properties.code ?? f.properties.grid_code);
  return [...new Set([...named, ...flagged])];
}

function showFacts(summary) {
  field("version-status").textContent = STATUS_ZH[summary.status] || summary.status;
  document.body.dataset.status = summary.status;
  const name = summary.figures && summary.figures.area ? summary.figures.area.name : "";
  const area = summary.area_code ? `${LEVEL_ZH[summary.area_level] || ""} ${name} ${summary.area_code}`.replace(/\s+/g, " ") : "全市";
  field("version-area").textContent = area;
  field("version-base").textContent = summary.base_version_id ? `版本 ${summary.base_version_id}` : "—";
  field("version-author").textContent = summary.created_by || "—";
  field("version-created").textContent = shanghaiTime(summary.created_at);
  const figures = summary.figures || {};
  const method = METHOD_ZH[figures.method] || figures.method || "—";
  const seconds = Number.isFinite(figures.draw_seconds) ? figures.draw_seconds : figures.seconds;
  field("version-method").textContent = Number.isFinite(seconds) ? `${method}，用时 ${fixed(seconds, 1)} 秒` : method;
  const notes = field("notes");
  notes.replaceChildren(...(figures.notes || []).map((note) => {
    const li = document.createElement("li");
    li.textContent = note;
    return li;
  }));
  const stale = field("stale");
  stale.hidden = !(summary.status === "draft" && summary.stale);
  stale.textContent = `此草案已过期：${(summary.stale_reasons || []).join("；") || "数据已在绘制后变化"}。请重新绘制。`;
  const apply = field("apply");
  if (apply) { apply.disabled = summary.status !== "draft"; }
}

function showFigures(summary) {
  const figures = summary.figures || {};
  if (!figures.grids_after) { return; }
  drawSummary(field("summary").querySelector("tbody"), field("codes"), figures);
  const tolerance = Number.isFinite(figures.tolerance) ? figures.tolerance : 0.10;
  drawGrids(field("grids").querySelector("tbody"), figures, state.locked, tolerance);
}

function message(text, kind) {
  const el = field("message");
  el.textContent = text;
  el.className = `gv-message ${kind || ""}`.trim();
}

function movedSentence(result) {
  const parts = Object.entries(result.moved || {})
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${MOVED_KIND_ZH[kind] || kind} ${count}`);
  return `版本 ${result.version_id} 已生效（批次 ${result.batch_id}，用时 ${fixed(result.seconds, 1)} 秒）` +
    (parts.length ? `：迁移 ${parts.join("，")}` : "");
}

async function apply() {
  const button = field("apply");
  button.disabled = true;
  message("正在生效，请稍候…");
  setStatus("正在生效…");
  try {
    state.result = await postJson(`${base}/apply`, {});
    state.refusal = null;
    message(movedSentence(state.result), "done");
    setStatus("已生效");
    state.summary = await getJson(base);
    showFacts(state.summary);
    document.body.dataset.applied = "true";
  } catch (error) {
    const text = refusalText(error);
    state.refusal = { status: error.status, reason: (error.body && error.body.reason) || error.code, text };
    message(`未生效：${text}`, "refused");
    setStatus("未生效", { warning: true });
    button.disabled = !state.summary || state.summary.status !== "draft";
    document.body.dataset.refused = state.refusal.reason || "refused";
  }
}

function wireApply() {
  const button = field("apply");
  const dialog = field("confirm-apply");
  if (!button || !dialog) { return; }
  button.addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "yes") { apply(); }
  });
}

let twin = null;
const count = (fc) => ((fc && fc.features) || []).length;
const renderedCount = (map, layer) => (map.getLayer(layer) ? map.queryRenderedFeatures({ layers: [layer] }).length : 0);
publishPage({
  loaded: false,
  summary: () => state.summary,
  counts: () => ({
    current: count(state.comparison && state.comparison.current),
    draft: count(state.comparison && state.comparison.draft),
    moved: count(state.comparison && state.comparison.moved),
    locked: state.locked.length,
  }),
  rendered: () => (twin ? {
    current: renderedCount(twin.current, "grids-fill"),
    draft: renderedCount(twin.draft, "grids-fill"),
    moved: renderedCount(twin.draft, "moved-fill"),
  } : null),
  movedPoint: () => (twin ? renderedPoint(twin.draft, "moved-fill") : null),
  tooltipAt: (x, y) => (twin ? twin.tooltipAt(twin.draft, { x, y }) : null),
  views: () => (twin ? [twin.current, twin.draft].map((m) => ({ center: m.getCenter().toArray(), zoom: m.getZoom() })) : []),
  result: () => state.result,
  refusal: () => state.refusal,
});

/** Resolves when `map` has drawn what it was given (its next idle), or after 10 s at most. */
function settled(map) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    map.once("idle", () => { clearTimeout(timer); resolve(); });
    map.triggerRepaint();
  });
}

async function start() {
  wireApply();
  setStatus("加载中…");
  try {
    const [summary, comparison, maps] = await Promise.all([
      getJson(base), getJson(`${base}/comparison`), createTwinMaps("map-current", "map-draft", config),
    ]);
    state.summary = summary;
    state.comparison = comparison;
    state.locked = lockedCodes(summary, comparison);
    twin = maps;
    showFacts(summary);
    showFigures(summary);
    const tolerance = summary.figures && Number.isFinite(summary.figures.tolerance) ? summary.figures.tolerance : 0.10;
    twin.show(comparison, state.locked, tolerance);
    field("balance-key").textContent = `填色：每人工作量偏离平均，绿 0，橙 ±${Math.round(tolerance * 100)}%，红 ±${Math.round(tolerance * 200)}% 以上`;
    await Promise.all([settled(twin.current), settled(twin.draft)]);
  } catch (error) {
    setStatus(`加载失败：${refusalText(error)}`, { warning: true });
    message(`加载失败：${refusalText(error)}`, "refused");
    return;
  }
  setStatus(`${count(state.comparison.draft)} 个草案网格，${count(state.comparison.moved)} 处区域改变所属网格`);
  window.gridgov.page.loaded = true;
  document.body.dataset.loaded = "true";
}

start();
