/**
 * inspections/form.js: the form that makes a plan — departments, their items (重点/一般, GET /v1/inspection-items),
 * the area (a town, grids clicked on the map, or a polygon drawn on it), the ratios per credit class (with the city's
 * effective defaults from GET /v1/inspection-ratios as placeholders), the public value's source and announcement
 * time; "预览" (POST /v1/inspection-plans/preview) shows the strata and shades the candidates' grids, "建立并公布承诺"
 * (POST /v1/inspection-plans) makes the plan and opens it.
 */

import { getJson, postJson } from "/static/lib/api.js";
import { escapeHtml } from "/static/lib/escape.js";

const CLASSES = ["A", "B", "C", "D"];
const BEIJING_OFFSET = "+08:00";

/** A JSON answer that is a list, or a page {items: […]} of one. */
export function listOf(answer) {
  if (Array.isArray(answer)) { return answer; }
  return (answer && (answer.items || answer.plans)) || [];
}

/** "2026-12-01T10:00:05" of an instant, in Beijing time (what a datetime-local input holds). */
function beijingLocal(date) {
  const shifted = new Date(date.getTime() + 8 * 3600 * 1000);
  return shifted.toISOString().slice(0, 19);
}

/** The city's effective ratio and floor of each class from GET /v1/inspection-ratios ({classes: […]}). */
function classRatios(answer) {
  const ratios = {};
  const floors = {};
  for (const row of answer.classes || []) {
    ratios[row.credit_class] = String(row.effective);
    floors[row.credit_class] = String(row.floor);
  }
  return { ratios, floors };
}

/** The plan form in the page; `map` is the page's map, `say(text, kind)` its message line, `hook` its test hook. */
export function mountPlanForm({ config, map, towns, say, hook, onStatus }) {
  const form = document.getElementById("plan-form");
  const itemsList = document.getElementById("items");
  const createButton = document.getElementById("create");
  const selectedGrids = new Set();
  let itemsByDepartment = new Map();
  let polygon = null;
  let previewed = null;

  const checkedDepartments = () => [...form.querySelectorAll("input[name=department]:checked")].map((i) => i.value);
  const checkedItems = () => [...itemsList.querySelectorAll("input[name=item]:checked")].map((i) => i.value);
  const areaKind = () => form.querySelector("input[name=area]:checked").value;

  const invalidate = () => {
    previewed = null;
    hook.preview = null;
    createButton.disabled = true;
    document.getElementById("preview-section").hidden = true;
    map.showCandidates([]);
  };

  const renderItems = () => {
    const departments = checkedDepartments();
    const previous = new Set(checkedItems());
    const firstTime = itemsList.childElementCount === 0;
    const names = new Map(config.departments.map((d) => [d.code, d.name]));
    itemsList.replaceChildren();
    for (const code of departments) {
      for (const item of itemsByDepartment.get(code) || []) {
        const li = document.createElement("li");
        const checked = firstTime || previous.has(item.code) || !hook.itemsShown.includes(item.code);
        li.innerHTML = `<label><input type="checkbox" name="item" value="${escapeHtml(item.code)}"${checked ? " checked" : ""}>`
          + ` <span class="ip-key ${item.key ? "key" : "general"}">${item.key ? "重点" : "一般"}</span> ${escapeHtml(item.name)}`
          + ` <small>${escapeHtml(names.get(code) || code)}</small></label>`;
        itemsList.append(li);
      }
    }
    hook.itemsShown = [...itemsList.querySelectorAll("input[name=item]")].map((i) => i.value);
    document.getElementById("no-items").hidden = hook.itemsShown.length > 0;
    document.getElementById("no-items").textContent = departments.length ? "所选部门没有在用的抽查事项。" : "请先选择部门。";
  };

  const showArea = () => {
    for (const el of form.querySelectorAll(".ip-area")) { el.hidden = el.dataset.area !== areaKind() && el.dataset.area !== "town"; }
  };

  const loadGrids = async (code) => {
    const town = towns.features.find((f) => f.properties.code === code);
    if (!town) { return; }
    const coords = town.geometry.type === "Polygon" ? town.geometry.coordinates.flat() : town.geometry.coordinates.flat(2);
    const xs = coords.map((c) => c[0]);
    const ys = coords.map((c) => c[1]);
    const bbox = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)].map((v) => v.toFixed(6)).join(",");
    const grids = await getJson(`/v1/grids?${new URLSearchParams({ bbox, zoom: "14" })}`, { accept: "application/geo+json" });
    const prefix = code.slice(0, 9);
    const inTown = { type: "FeatureCollection", features: grids.features.filter((f) => f.properties.code.startsWith(prefix)) };
    map.showGrids(inTown);
    hook.gridsShown = inTown.features.length;
    hook.gridCodes = inTown.features.map((f) => f.properties.code);
    for (const g of selectedGrids) { map.markGrid(g, true); }
  };

  const chooseTown = async (code) => {
    const select = document.getElementById("area-town");
    select.value = code || "";
    hook.town = code || null;
    map.chooseTown(code, towns);
    invalidate();
    if (code) { await loadGrids(code); }
  };

  const request = () => {
    const body = {
      departments: checkedDepartments(),
      items: checkedItems(),
      public_value_source: document.getElementById("pv-source").value.trim(),
      public_value_at: `${document.getElementById("pv-at").value}${BEIJING_OFFSET}`,
    };
    const kind = areaKind();
    if (kind === "town") { body.towns = hook.town ? [hook.town] : []; }
    if (kind === "grids") { body.grids = [...selectedGrids].sort(); }
    if (kind === "polygon") { body.polygon = polygon; }
    const ratios = {};
    for (const cls of CLASSES) {
      const value = document.getElementById(`ratio-${cls}`).value.trim();
      if (value) { ratios[cls] = value; }
    }
    if (Object.keys(ratios).length) { body.ratios = ratios; }
    const title = document.getElementById("plan-title").value.trim();
    if (title) { body.title = title; }
    return body;
  };

  // What the page can tell before asking the server (the server checks everything again).
  const missing = (body) => {
    if (!body.departments.length) { return "请选择至少一个部门"; }
    if (!body.items.length) { return "请选择至少一个抽查事项"; }
    if (body.towns && !body.towns.length) { return "请选择镇街"; }
    if (body.grids && !body.grids.length) { return "请在地图上点选网格"; }
    if ("polygon" in body && !body.polygon) { return "请在地图上画出多边形（双击结束）"; }
    if (!body.public_value_source) { return "请填写公开随机数的来源"; }
    if (!document.getElementById("pv-at").value) { return "请填写公开随机数的公布时间"; }
    return null;
  };

  const preview = async () => {
    const body = request();
    const problem = missing(body);
    if (problem) { say(problem, "refused"); return; }
    say("正在统计各层对象…");
    const { departments, items, towns: t, grids, polygon: p, ratios } = body;
    const area = t ? { towns: t } : grids ? { grids } : { polygon: p };
    try {
      const answer = await postJson("/v1/inspection-plans/preview", { departments, items, ...area, ...(ratios ? { ratios } : {}) });
      const strata = answer.strata || [];
      const names = new Map(strata.map((s) => [s.item_code, s.item_name]));
      const tbody = document.querySelector("#strata tbody");
      tbody.replaceChildren(...strata.map((s) => {
        const tr = document.createElement("tr");
        tr.innerHTML = `<td>${escapeHtml(names.get(s.item_code) || s.item_code)}</td><td>${escapeHtml(s.credit_class)}</td>`
          + `<td>${s.size}</td><td>${escapeHtml(s.ratio)}</td><td>${s.n}</td>`;
        return tr;
      }));
      const size = strata.reduce((t, s) => t + s.size, 0);
      const n = strata.reduce((t, s) => t + s.n, 0);
      document.getElementById("strata-size").textContent = String(size);
      document.getElementById("strata-n").textContent = String(n);
      document.getElementById("preview-section").hidden = false;
      // The candidates' area, lightly shaded: the grids of the area (a drawn polygon shows itself).
      const shaded = body.grids || (body.towns ? hook.gridCodes : []);
      hook.preview = { strata, size, n, candidates: answer.candidate_count, grids: map.showCandidates(shaded) };
      previewed = JSON.stringify(body);
      createButton.disabled = strata.length === 0;
      say(strata.length ? `共 ${strata.length} 层，对象 ${size} 个（次），预计抽取 ${n} 个（次）` : "该范围内没有符合所选事项的检查对象", strata.length ? "done" : "refused");
    } catch (error) {
      hook.error = error.message;
      say(error.message, "refused");
    }
  };

  const create = async () => {
    const body = request();
    if (JSON.stringify(body) !== previewed) { say("表单已改动，请先重新预览", "refused"); invalidate(); return; }
    createButton.disabled = true;
    say("正在建立计划并公布承诺…");
    try {
      const plan = await postJson("/v1/inspection-plans", body);
      hook.created = plan;
      window.location.assign(`/inspections/${plan.id}`);
    } catch (error) {
      hook.error = error.message;
      say(error.message, "refused");
      createButton.disabled = false;
    }
  };

  const loadItems = async () => {
    const departments = config.departments.map((d) => d.code);
    const answers = await Promise.all(departments.map((code) => getJson(`/v1/inspection-items?${new URLSearchParams({ department: code })}`)));
    itemsByDepartment = new Map(departments.map((code, i) => [code, listOf(answers[i]).filter((item) => item.active !== false)]));
    renderItems();
  };

  const loadRatios = async () => {
    const { ratios, floors } = classRatios(await getJson("/v1/inspection-ratios"));
    for (const [cls, value] of Object.entries(ratios)) {
      const input = document.getElementById(`ratio-${cls}`);
      input.placeholder = value;
      input.min = floors[cls];
    }
    hook.defaultRatios = ratios;
    document.getElementById("ratio-note").textContent = CLASSES.filter((c) => ratios[c])
      .map((c) => `${c} 类现行 ${ratios[c]}（最低 ${floors[c]}）`).join("，") + "；一般事项另有上限，重点事项不设上限。";
  };

  form.addEventListener("change", (event) => {
    if (event.target.name === "department") { renderItems(); }
    if (event.target.name === "area") { showArea(); if (areaKind() !== "polygon") { map.clearPolygon(); polygon = null; } }
    invalidate();
  });
  form.addEventListener("input", (event) => { if (event.target.type !== "checkbox") { invalidate(); } });
  document.getElementById("items-all").addEventListener("click", () => { for (const i of itemsList.querySelectorAll("input")) { i.checked = true; } invalidate(); });
  document.getElementById("items-none").addEventListener("click", () => { for (const i of itemsList.querySelectorAll("input")) { i.checked = false; } invalidate(); });
  document.getElementById("area-town").addEventListener("change", (event) => chooseTown(event.target.value));
  document.getElementById("grids-clear").addEventListener("click", () => {
    for (const g of selectedGrids) { map.markGrid(g, false); }
    selectedGrids.clear();
    document.getElementById("grid-count").textContent = "0";
    hook.grids = [];
    invalidate();
  });
  document.getElementById("polygon-start").addEventListener("click", () => {
    document.getElementById("polygon-state").textContent = "正在画：点击顶点，双击结束";
    map.startPolygon((closed) => {
      polygon = closed;
      hook.polygon = closed;
      document.getElementById("polygon-state").textContent = closed ? `已画（${closed.coordinates[0].length - 1} 个顶点）` : "顶点不足 3 个，请重画";
      invalidate();
    });
  });
  document.getElementById("polygon-clear").addEventListener("click", () => {
    map.clearPolygon();
    polygon = null;
    hook.polygon = null;
    document.getElementById("polygon-state").textContent = "未画";
    invalidate();
  });
  document.getElementById("preview").addEventListener("click", preview);
  createButton.addEventListener("click", create);
  const now = new Date(new Date(config.now).getTime() + 5 * 60 * 1000);
  document.getElementById("pv-at").value = beijingLocal(now).slice(0, 16) + ":00";
  showArea();

  Object.assign(hook, { itemsShown: [], town: null, gridsShown: 0, gridCodes: [], grids: [], polygon: null, preview: null, created: null, defaultRatios: {} });
  onStatus("请选择部门、事项与范围，然后预览");
  return {
    ready: Promise.all([loadItems(), loadRatios()]),
    /** A click on a town of the map chooses it. */
    chooseTown,
    /** A click on a grid selects or unselects it (for an area of grids). */
    toggleGrid(code) {
      if (areaKind() !== "grids") { return; }
      if (selectedGrids.has(code)) { selectedGrids.delete(code); } else { selectedGrids.add(code); }
      map.markGrid(code, selectedGrids.has(code));
      hook.grids = [...selectedGrids].sort();
      document.getElementById("grid-count").textContent = String(selectedGrids.size);
      invalidate();
    },
  };
}
