/**
 * inspections/main.js: the inspection planning page (双随机、一公开). It lists the plans the caller may read
 * (GET /v1/inspection-plans); on /inspections a caller who may plan gets the plan form (form.js) with the towns
 * (GET /v1/towns) and grids (GET /v1/grids) on the map; on /inspections/{id} the plan itself (plan.js): commitment,
 * draw, teams, coloured routes, moving a stop, the route sheets' link.
 *
 * Test hook (window.gridgov.page): {ready, isReady(), project(lon, lat) → [x, y] on the map, firstPaintMs (ms from navigation start to the first frame
 * with the plan's visits drawn; null before, and on the form), plans (listed), error, and — on the form —
 * itemsShown, town, gridsShown, grids, polygon, preview {strata, size, n, grids}, created, defaultRatios; on a
 * plan — plan, routes [{key, team_id, team_no, date, visits, manual}], drawn {visits, routes, teams}, selected,
 * moved, moveRefused}.
 */

import { getJson } from "/static/lib/api.js";
import { readPageConfig } from "/static/lib/config.js";
import { escapeHtml } from "/static/lib/escape.js";
import { setStatus } from "/static/lib/status.js";
import { publishPage } from "/static/lib/testhook.js";

import { listOf, mountPlanForm } from "./form.js";
import { createInspectionMap } from "./map.js";
import { mountPlanView } from "./plan.js";

const config = readPageConfig();
const hook = publishPage({ ready: false, isReady: () => hook.ready, firstPaintMs: null, plans: 0, error: null });
const message = document.getElementById("message");

function say(text, kind = "") {
  message.textContent = text;
  message.className = `ip-message ${kind}`.trim();
}

async function listPlans() {
  const plans = listOf(await getJson("/v1/inspection-plans"));
  const names = new Map(config.departments.map((d) => [d.code, d.name]));
  const tbody = document.querySelector("#plans tbody");
  tbody.replaceChildren(...plans.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.plan = String(p.id);
    if (p.id === config.planId) { tr.classList.add("selected"); }
    const departments = (p.departments || p.department_codes || []).map((d) => names.get(d) || d).join("、");
    const when = (p.drawn_at || p.public_value_at || "").slice(0, 16).replace("T", " ");
    tr.innerHTML = `<td><a href="/inspections/${p.id}">${p.id}</a></td><td><a href="/inspections/${p.id}">${escapeHtml(p.title || "抽查计划")}</a></td>`
      + `<td>${escapeHtml(departments)}</td><td>${escapeHtml(config.planStatuses[p.status] || p.status)}</td><td>${escapeHtml(when)}</td>`;
    return tr;
  }));
  document.getElementById("no-plans").hidden = plans.length > 0;
  hook.plans = plans.length;
}

async function start() {
  let form = null;
  let view = null;
  const map = await createInspectionMap("map", config, {
    onTown: (code) => { if (form) { form.chooseTown(code); } },
    onGrid: (code) => { if (form) { form.toggleGrid(code); } },
    onVisit: (id, lngLat) => { if (view) { view.select(id, lngLat); } },
  });
  // Where a WGS84 point is drawn, in CSS pixels from the map's top-left corner (for tests that click the map).
  hook.project = (lon, lat) => {
    const point = map.map.project([lon, lat]);
    return [point.x, point.y];
  };
  if (config.planId) {
    view = mountPlanView({ config, map, say, hook, onStatus: setStatus });
    await Promise.all([view.load(), listPlans()]);
    // First paint: the first frame drawn with the plan's visits on the map.
    if ((hook.plan.visits || []).length) { hook.firstPaintMs = await map.visitsDrawn(); }
    // Then, for context, the outlines of the towns the plan's area touches.
    const planTowns = new Set(hook.plan.town_codes || []);
    const towns = await getJson("/v1/towns?zoom=10", { accept: "application/geo+json" });
    map.showTowns({ ...towns, features: towns.features.filter((f) => planTowns.has(f.properties.code)) });
    hook.townsShown = planTowns.size;
    return;
  }
  const towns = await getJson("/v1/towns?zoom=10", { accept: "application/geo+json" });
  const mine = new Set(config.towns.map((t) => t.code));
  const shown = { ...towns, features: towns.features.filter((f) => mine.has(f.properties.code)) };
  map.showTowns(shown);
  if (config.canPlan && document.getElementById("plan-form")) {
    form = mountPlanForm({ config, map, towns: shown, say, hook, onStatus: setStatus });
    await Promise.all([form.ready, listPlans()]);
  } else {
    await listPlans();
    setStatus(hook.plans ? `共 ${hook.plans} 个抽查计划` : "本账号范围内尚无抽查计划");
  }
  hook.ready = true;
}

start().catch((error) => {
  hook.error = error.message;
  setStatus(error.message, { warning: true });
  say(error.message, "refused");
  hook.ready = true;
});
