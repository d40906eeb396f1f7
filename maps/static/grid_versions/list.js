/**
 * grid_versions/list.js: the grid versions page — the versions the caller may see (GET /v1/grid-versions, filtered
 * by state), the form that draws a draft for a community or a town (POST /v1/grid-versions, then on to the new
 * draft's compare page), and for callers with grids.apply the roll back (POST /v1/grid-versions/rollback).
 *
 * Test hook (window.gridgov.page):
 *   loaded        the list was drawn at least once
 *   versions()    → the versions listed now ({id, status, area_code, …} as the API answered)
 *   drawing       whether a draft is being drawn
 *   refusal()     → the last refusal's {status, reason, text}, or null
 *   rolledBack()  → the roll back's answer, or null
 */

import { getJson, postJson } from "../lib/api.js";
import { readPageConfig } from "../lib/config.js";
import { setStatus } from "../lib/status.js";
import { publishPage } from "../lib/testhook.js";
import { withQuery } from "../lib/url.js";
import { LEVEL_ZH, STATUS_ZH, percent, refusalText, shanghaiTime } from "./labels.js";

const config = readPageConfig();
const field = (id) => document.getElementById(id);
const state = { versions: [], refusal: null, rolledBack: null };
const hook = publishPage({
  loaded: false,
  drawing: false,
  versions: () => state.versions,
  refusal: () => state.refusal,
  rolledBack: () => state.rolledBack,
});

function cell(content) {
  const td = document.createElement("td");
  if (content instanceof Node) { td.append(content); } else { td.textContent = content; }
  return td;
}

function drawList() {
  const tbody = field("versions").querySelector("tbody");
  tbody.replaceChildren();
  for (const v of state.versions) {
    const tr = document.createElement("tr");
    tr.dataset.id = String(v.id);
    tr.dataset.status = v.status;
    const link = document.createElement("a");
    link.href = v.links.compare_page;
    link.textContent = String(v.id);
    const figures = v.figures || {};
    const deviation = Number.isFinite(figures.max_deviation_before)
      ? `${percent(figures.max_deviation_before)} → ${percent(figures.max_deviation_after)}` : "—";
    const name = figures.area ? figures.area.name : "";
    const area = v.area_code ? `${LEVEL_ZH[v.area_level] || ""} ${name} ${v.area_code}`.replace(/\s+/g, " ") : "全市";
    const status = (STATUS_ZH[v.status] || v.status) + (v.status === "draft" && v.stale ? "（已过期）" : "");
    tr.append(
      cell(v.area_code ? link : String(v.id)), cell(status), cell(area), cell(v.created_by || "—"),
      cell(shanghaiTime(v.created_at)), cell(deviation), cell(percent(figures.share_addresses_kept)),
    );
    tbody.append(tr);
  }
  field("empty").hidden = state.versions.length > 0;
}

async function loadList() {
  const status = field("status-filter").value;
  try {
    const answer = await getJson(withQuery("/v1/grid-versions", status ? { status } : {}));
    state.versions = answer.items;
  } catch (error) {
    setStatus(`加载失败：${refusalText(error)}`, { warning: true });
    return;
  }
  drawList();
  setStatus(`${state.versions.length} 个网格版本`);
  hook.loaded = true;
  document.body.dataset.loaded = "true";
}

/** The request body the form describes (codes as typed; the server checks them). */
export function drawBody(form) {
  const data = new FormData(form);
  const body = { [data.get("level")]: String(data.get("code")).trim() };
  const grids = String(data.get("grids") || "").trim();
  if (grids) { body.grids = Number(grids); }
  const locks = String(data.get("lock") || "").split(/[\s,，、]+/).filter(Boolean);
  if (locks.length) { body.lock = locks; }
  body.method = data.get("method");
  const tolerance = String(data.get("tolerance") || "").trim();
  if (tolerance) { body.tolerance = Number(tolerance); }
  body.follow_roads = data.get("follow_roads") === "on";
  return body;
}

function drawMessage(text, kind) {
  const el = field("draw-message");
  el.textContent = text;
  el.className = `gv-message ${kind || ""}`.trim();
}

async function draw(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = field("draw-submit");
  button.disabled = true;
  hook.drawing = true;
  drawMessage("正在绘制草案，较大的区域可能需要数十秒…");
  try {
    const draft = await postJson("/v1/grid-versions", drawBody(form));
    drawMessage(`草案 ${draft.id} 已绘制，正在打开对比页面…`, "done");
    window.location.assign(draft.links.compare_page);
  } catch (error) {
    const text = refusalText(error);
    state.refusal = { status: error.status, reason: (error.body && error.body.reason) || error.code, text };
    drawMessage(`未能绘制：${text}`, "refused");
    document.body.dataset.refused = state.refusal.reason || "refused";
    button.disabled = false;
  } finally {
    hook.drawing = false;
  }
}

async function rollback() {
  setStatus("正在回退…");
  let said;
  try {
    const answer = await postJson("/v1/grid-versions/rollback", {});
    said = [`已回退：版本 ${answer.version_id} 重新生效，版本 ${answer.retired_version_id} 停用`, {}];
    await loadList();
    state.rolledBack = answer;
  } catch (error) {
    const text = refusalText(error);
    state.refusal = { status: error.status, reason: (error.body && error.body.reason) || error.code, text };
    said = [`未能回退：${text}`, { warning: true }];
    await loadList();
  }
  setStatus(...said);
}

function wire() {
  const form = field("draw");
  if (form) {
    // A town leader's home is their town: the form starts on the town.
    if (config.home && /^\d{9}000$/.test(config.home)) { form.elements.level.value = "town"; }
    form.addEventListener("submit", draw);
  }
  field("status-filter").addEventListener("change", loadList);
  const button = field("rollback");
  const dialog = field("confirm-rollback");
  if (button && dialog) {
    button.addEventListener("click", () => dialog.showModal());
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "yes") { rollback(); }
    });
  }
}

wire();
loadList();
