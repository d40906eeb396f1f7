/**
 * review.js: the review queue (/review) — registrations whose address could not be placed. For one item the page
 * shows the typed address and what the server proposes (GET /v1/review/{id}/proposal: parsed components, the
 * standard text, the geocoder's coarse point, the candidates); the dispatcher either chooses an existing standard
 * address ("选择已有地址") or clicks the point on the map and adds the address to the library
 * ("加入标准地址库并处理"); both are POST /v1/review/{id}/resolve. The map takes WGS84 points (outlines only unless
 * the basemap is WGS84), which is what the API wants.
 *
 * Test hook (window.gridgov.page):
 *   items()              → the ids of the items listed
 *   selected()           → {id, typed, components, fullText, point, candidates} of the item shown, or null
 *   setView(lat, lon, zoom) moves the map (as a user would by dragging and zooming)
 *   containerPoint(lat, lon) → {x, y}: where a WGS84 point lies in the map element (to click it as a user would)
 *   result()             → the last resolution's answer (the registration's status, with added_address), or null
 * The body's data-items attribute is set when the queue has arrived, data-proposal to the id of the item shown.
 */

import { getJson, postJson } from "./lib/api.js";
import { readPageConfig } from "./lib/config.js";
import { bboxParam, createMap } from "./lib/mapfactory.js";
import { setStatus } from "./lib/status.js";
import { publishPage } from "./lib/testhook.js";

const config = readPageConfig();
const ITEM_ZOOM = 17;
const state = { items: [], selected: null, proposal: null, point: null, choice: null, result: null };
const $ = (id) => document.getElementById(id);

const { map } = createMap("map", { minZoom: 8, maxZoom: 19, zoomSnap: 0.5 }, config);
map.fitBounds(config.bounds);
const grids = L.geoJSON(null, { style: { color: "#2e75b6", weight: 1, fillOpacity: 0.05 }, interactive: false });
grids.addTo(map);
const suggested = L.layerGroup().addTo(map);
let pointMarker = null;

publishPage({
  items: () => state.items.map((item) => item.id),
  selected: () => (state.proposal ? {
    id: state.proposal.review_id,
    typed: state.proposal.address,
    components: readComponents(),
    fullText: $("full-text").textContent,
    point: state.point,
    candidates: candidates().map((c) => c.address_id),
  } : null),
  setView: (lat, lon, zoom) => { map.setView([lat, lon], zoom, { animate: false }); },
  containerPoint: (lat, lon) => {
    const p = map.latLngToContainerPoint([lat, lon]);
    return { x: p.x, y: p.y };
  },
  result: () => state.result,
});

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
}

function message(text, kind = "") {
  const el = $("message");
  el.textContent = text;
  el.className = `message ${kind}`;
}

async function loadQueue() {
  setStatus("加载中…");
  const queue = await getJson("/v1/review");
  state.items = queue.items;
  const body = document.querySelector("#items tbody");
  body.replaceChildren();
  for (const item of queue.items) {
    const row = document.createElement("tr");
    row.dataset.id = item.id;
    cell(row, String(item.created_at).replace("T", " ").slice(0, 16));
    cell(row, item.payload.address);
    cell(row, item.reason);
    row.addEventListener("click", () => select(item).catch(showFailure));
    body.appendChild(row);
  }
  $("empty").hidden = queue.items.length > 0;
  setStatus(`待处理 ${queue.total} 条`);
  document.body.dataset.items = String(queue.total);
}

function buildForm() {
  const form = $("components");
  for (const { name, label } of config.components) {
    const id = `component-${name}`;
    const labelEl = document.createElement("label");
    labelEl.htmlFor = id;
    labelEl.textContent = label;
    const input = document.createElement("input");
    input.id = id;
    input.name = name;
    input.maxLength = 100;
    input.addEventListener("input", () => { $("full-text").textContent = "（提交时按要素生成）"; });
    form.append(labelEl, input);
  }
}

function readComponents() {
  const out = {};
  for (const { name } of config.components) {
    const value = $(`component-${name}`).value.trim();
    if (value) { out[name] = value; }
  }
  return out;
}

function candidates() {
  const list = [...(state.proposal.candidates || [])];
  const existing = state.proposal.existing;
  if (existing && !list.some((c) => c.address_id === existing.address_id)) { list.unshift(existing); }
  return list;
}

function showCandidates() {
  const list = $("candidates");
  list.replaceChildren();
  for (const c of candidates()) {
    const li = document.createElement("li");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "candidate";
    input.value = c.address_id;
    input.id = `candidate-${c.address_id}`;
    input.checked = state.choice === c.address_id;
    input.addEventListener("change", () => { state.choice = c.address_id; $("choose").disabled = false; });
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = `${c.standard_address}（${c.address_id}）`;
    li.append(input, label);
    list.appendChild(li);
  }
  if (!list.children.length) {
    const li = document.createElement("li");
    li.textContent = "没有候选标准地址";
    list.appendChild(li);
  }
  $("choose").disabled = state.choice === null;
}

async function select(item) {
  for (const row of document.querySelectorAll("#items tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === String(item.id));
  }
  state.selected = item;
  state.point = null;
  state.choice = null;
  message("");
  setStatus("加载中…");
  const proposal = await getJson(`/v1/review/${item.id}/proposal`);
  state.proposal = proposal;
  if (proposal.existing) { state.choice = proposal.existing.address_id; }
  $("detail").hidden = false;
  $("typed").textContent = proposal.address;
  $("reason").textContent = proposal.reason;
  for (const { name } of config.components) {
    $(`component-${name}`).value = proposal.components[name] || "";
  }
  $("full-text").textContent = proposal.full_text || "（要素不足，不能成为标准地址）";
  $("point").textContent = "未选";
  showCandidates();
  if (pointMarker) { pointMarker.remove(); pointMarker = null; }
  suggested.clearLayers();
  if (proposal.suggested) {
    const { lat, lon } = proposal.suggested;
    L.circleMarker([lat, lon], { radius: 7, color: "#7f7f7f", dashArray: "3 3" })
      .bindTooltip(`粗略位置：${proposal.suggested.standard_address || ""}`).addTo(suggested);
    map.setView([lat, lon], ITEM_ZOOM);
  }
  updateAddButton();
  map.invalidateSize();
  await loadGrids();
  setStatus(proposal.existing ? "标准地址库已有该地址，请直接选择" : "在地图上点选新地址的位置");
  document.body.dataset.proposal = String(item.id);
}

function choosePoint(lon, lat) {
  if (!state.proposal) { return; }
  state.point = { lon: Number(lon.toFixed(7)), lat: Number(lat.toFixed(7)) };
  if (pointMarker) { pointMarker.setLatLng([lat, lon]); } else { pointMarker = L.marker([lat, lon]).addTo(map); }
  $("point").textContent = `${state.point.lon}, ${state.point.lat}`;
  updateAddButton();
}

function updateAddButton() {
  $("add").disabled = !state.proposal || !state.point;
}

async function loadGrids() {
  if (map.getZoom() < config.gridMinZoom) { grids.clearLayers(); return; }
  const params = new URLSearchParams({ zoom: Math.round(map.getZoom()), bbox: bboxParam(map) });
  const body = await getJson(`/v1/grids?${params.toString().replace(/%2C/g, ",")}`, { accept: "application/geo+json" });
  grids.clearLayers();
  grids.addData(body);
}

// A resolution teaches the geocoder the typed text for the chosen address's community only (issue 17, finding 3).
const ALIAS_NOTE = "原文仅在本村（社区）作为该地址的别名使用；他人再次同样处理或指挥中心确认后才全市通用";

async function resolve(body, done) {
  const id = state.proposal.review_id;
  $("add").disabled = true;
  $("choose").disabled = true;
  try {
    state.result = await postJson(`/v1/review/${id}/resolve`, body);
  } catch (error) {
    updateAddButton();
    $("choose").disabled = state.choice === null;
    if (error.code === "duplicate_address" && error.body) {
      // The library holds this text already: offer that address to choose instead.
      state.proposal.existing = { address_id: error.body.address_id, standard_address: error.body.standard_address };
      state.choice = error.body.address_id;
      showCandidates();
      message(`标准地址库已有“${error.body.standard_address}”（${error.body.address_id}），请选择已有地址`, "error");
      return;
    }
    message(`处理失败：${error.message}${error.code === "address_rejected" ? `（${error.detail}）` : ""}`, "error");
    return;
  }
  message(done(state.result), "done");
  state.proposal = null;
  $("detail").hidden = true;
  map.invalidateSize();
  await loadQueue();
  setStatus(`已处理第 ${id} 条；${$("empty").hidden ? "请选择下一条" : "没有待处理的登记"}`);
}

$("add").addEventListener("click", () => {
  const body = { add_address: { ...state.point, components: readComponents() } };
  resolve(body, (r) => `已加入标准地址库：${r.added_address.full_text}（${r.added_address.id}），已派发 ${r.task_ids.length} 项任务；${ALIAS_NOTE}`)
    .catch(showFailure);
});
$("choose").addEventListener("click", () => {
  resolve({ address_id: state.choice }, (r) => `已落到标准地址 ${state.choice}，已派发 ${r.task_ids.length} 项任务；${ALIAS_NOTE}`)
    .catch(showFailure);
});
map.on("click", (event) => choosePoint(event.latlng.lng, event.latlng.lat));
map.on("moveend", () => { if (state.proposal) { loadGrids().catch(() => grids.clearLayers()); } });

function showFailure(error) {
  setStatus(`加载失败：${error.message}`, { warning: true });
}

buildForm();
loadQueue().catch(showFailure);
