/**
 * staffing/main.js: the staffing page. It reads the plan of the chosen town (GET /v1/staffing/plan) and its grids'
 * outlines (GET /v1/staffing/grids) and the plans applied before (GET /v1/staffing/batches), fills the totals, the
 * moves, the grid table and the recent changes, draws the map, and — for
 * callers who may apply — applies the plan they see (POST /v1/staffing/apply with its fingerprint), then reads it
 * again: an applied plan shows no moves.
 *
 * Test hook (window.gridgov.page): {ready, town, within, plan, drawn: {grids, moves, states}, batches (how many past
 * plans are listed), applied, error}.
 */

import { getJson, postJson } from "/static/lib/api.js";
import { readPageConfig } from "/static/lib/config.js";
import { setStatus } from "/static/lib/status.js";
import { publishPage } from "/static/lib/testhook.js";

import { createStaffingMap } from "./map.js";
import { renderBatches, renderGrids, renderMoves, renderTotals } from "./table.js";

const config = readPageConfig();
const hook = publishPage({
  ready: false, town: null, within: "town", plan: null, drawn: null, batches: 0, applied: null, error: null,
});
const townSelect = document.getElementById("town");
const withinSelect = document.getElementById("within");
const applyButton = document.getElementById("apply");
const message = document.getElementById("message");

function say(text, kind = "") {
  message.textContent = text;
  message.className = `st-message ${kind}`.trim();
}

function chosenTown() {
  if (townSelect.value) { return townSelect.value; }
  return config.towns.length === 1 ? config.towns[0].code : null;
}

function updateUrl(town, within) {
  const params = new URLSearchParams();
  if (town) { params.set("town", town); }
  if (within !== "town") { params.set("within", within); }
  const query = params.toString();
  window.history.replaceState(null, "", `${window.location.pathname}${query ? `?${query}` : ""}`);
}

const mapReady = createStaffingMap("map", config);

async function load() {
  const town = chosenTown();
  const within = withinSelect.value;
  hook.ready = false;
  hook.town = town;
  hook.within = within;
  if (applyButton) { applyButton.disabled = true; }
  if (!town) {
    setStatus("请选择镇街");
    hook.ready = true;
    return;
  }
  updateUrl(town, within);
  setStatus("正在计算配员方案…");
  const params = new URLSearchParams({ town, within });
  try {
    const [plan, shapes, history, staffingMap] = await Promise.all([
      getJson(`/v1/staffing/plan?${params}`),
      getJson(`/v1/staffing/grids?${new URLSearchParams({ town })}`, { accept: "application/geo+json" }),
      getJson(`/v1/staffing/batches?${new URLSearchParams({ town, limit: "10" })}`),
      mapReady,
    ]);
    const names = new Map(plan.grids.map((g) => [g.code, g.name || g.code]));
    document.getElementById("capacity").textContent = String(plan.capacity_hours);
    renderTotals(document.getElementById("totals"), plan.totals);
    renderMoves(document.querySelector("#moves tbody"), plan.moves, (code) => names.get(code) || code);
    document.getElementById("no-moves").hidden = plan.moves.length > 0;
    renderGrids(document.querySelector("#grids tbody"), plan.grids, (code) => staffingMap.flyTo(code));
    renderBatches(document.getElementById("batches"), document.getElementById("no-batches"), history.items,
      (code) => names.get(code) || code);
    hook.batches = history.items.length;
    hook.drawn = staffingMap.show(plan, shapes);
    hook.plan = plan;
    hook.error = null;
    if (applyButton) { applyButton.disabled = plan.moves.length === 0; }
    setStatus(plan.moves.length ? `方案：调动 ${plan.moves.length} 名网格员` : "各网格人数已达到方案目标");
  } catch (error) {
    hook.error = error.message;
    setStatus(error.message, { warning: true });
    say(error.message, "refused");
  } finally {
    hook.ready = true;
  }
}

async function applyPlan() {
  const plan = hook.plan;
  if (!plan) { return; }
  applyButton.disabled = true;
  say("正在应用方案…");
  try {
    const result = await postJson("/v1/staffing/apply", { town: plan.town_code, within: plan.within, fingerprint: plan.fingerprint });
    hook.applied = result;
    await load();
    say(`方案已应用（批次 ${result.batch_id}）：调动 ${result.moves.length} 名网格员，移交在办任务 ${result.open_tasks_handed_over} 件，`
      + `新到网格员接手排队任务 ${result.queued_tasks_assigned} 件。`, "done");
  } catch (error) {
    hook.error = error.message;
    say(error.code === "stale_plan" ? `${error.message}。已重新计算方案。` : error.message, "refused");
    if (error.code === "stale_plan") { await load(); }
    else { applyButton.disabled = false; }
  }
}

if (applyButton) {
  const dialog = document.getElementById("confirm-apply");
  applyButton.addEventListener("click", () => {
    document.getElementById("confirm-count").textContent = String(hook.plan ? hook.plan.moves.length : 0);
    dialog.showModal();
  });
  dialog.addEventListener("close", () => { if (dialog.returnValue === "yes") { applyPlan(); } });
}

const initial = new URLSearchParams(window.location.search);
if (config.town) {
  townSelect.value = config.town;
  // A town the caller may not plan is not among the choices: say so, and open their own.
  if (townSelect.value !== config.town) { say("该镇街不在您的管辖范围内，已显示您可查看的范围", "refused"); }
}
if (!townSelect.value && config.towns.length === 1) { townSelect.value = config.towns[0].code; }
if (initial.get("within") === "community") { withinSelect.value = "community"; }
townSelect.addEventListener("change", load);
withinSelect.addEventListener("change", load);
load();
