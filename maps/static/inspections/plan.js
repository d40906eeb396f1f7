/**
 * inspections/plan.js: one plan on the page — its commitment and strata (GET /v1/inspection-plans/{id}), the draw
 * with the public value (POST …/draw), the selected entities on the map coloured by team (unmatched in grey, the
 * reason in their popup), the teams panel, the routes per team and day (GET/POST …/routes) drawn in the team's
 * colour, and moving a stop by hand (POST …/routes/move): a refused move (422 route_infeasible) is said in Chinese
 * with the reason and the routes stay as they were.
 */

import { ApiError, getJson, postJson } from "/static/lib/api.js";
import { escapeHtml } from "/static/lib/escape.js";

import { UNMATCHED_COLOUR, teamColour } from "./map.js";

/** "08:30" of minutes since midnight. */
function hhmm(minutes) {
  const m = Math.round(minutes);
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

/** "2026-12-02T09:30:00+08:00" → "2026-12-02 09:30" in Beijing time. */
function beijing(iso) {
  if (!iso) { return "—"; }
  return new Date(new Date(iso).getTime() + 8 * 3600 * 1000).toISOString().slice(0, 16).replace("T", " ");
}

/** The team days of GET …/routes as one flat list [{key, teamId, teamNo, day, date, stops, duration_s, …}]. */
export function routeDays(answer) {
  const days = [];
  for (const team of answer.teams || []) {
    for (const day of team.days || []) {
      days.push({ ...day, key: `${team.team_id}/${day.day}`, teamId: team.team_id, teamNo: team.team_no });
    }
  }
  days.sort((a, b) => (a.teamNo - b.teamNo) || (a.day - b.day));
  return days;
}

/** The plan view in the page: returns {load()} — loads the plan and draws everything it has. */
export function mountPlanView({ config, map, say, hook, onStatus }) {
  const planId = config.planId;
  const section = document.getElementById("plan-section");
  const drawForm = document.getElementById("draw-form");
  const moveForm = document.getElementById("move-form");
  const state = { plan: null, routes: null, days: [], teamsById: new Map(), itemNames: new Map(), selected: null };

  const teamNoOf = (visit) => {
    const team = state.teamsById.get(visit.team_id);
    return team ? team.team_no : null;
  };

  const fact = (dl, label, value, id) => {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (id) { dd.id = id; }
    dl.append(dt, dd);
  };

  const renderFacts = (plan) => {
    document.getElementById("plan-title-shown").textContent = `${plan.title || "抽查计划"}（编号 ${plan.id}）`;
    const dl = document.getElementById("plan-facts");
    dl.replaceChildren();
    const names = new Map(config.departments.map((d) => [d.code, d.name]));
    fact(dl, "状态", config.planStatuses[plan.status] || plan.status, "plan-status");
    fact(dl, "部门", (plan.departments || []).map((d) => names.get(d) || d).join("、"));
    fact(dl, "公开随机数来源", plan.public_value_source || "—");
    fact(dl, "公开随机数公布时间", beijing(plan.public_value_at));
    fact(dl, "承诺 SHA-256(server_seed)", plan.commitment, "commitment");
    fact(dl, "候选名单 SHA-256", plan.candidates_sha256, "candidates-sha256");
    fact(dl, "候选对象数", String(plan.candidate_count ?? "—"));
    if (plan.status === "cancelled") { fact(dl, "撤销原因", plan.cancel_reason || "—", "cancel-reason-shown"); }
    if (plan.status === "drawn") {
      fact(dl, "公开随机数", plan.public_value, "shown-public-value");
      fact(dl, "抽取种子 seed", plan.seed || "—");
      fact(dl, "摇号时间", beijing(plan.drawn_at));
    }
    document.getElementById("public-page").href = `/public/inspections/${plan.id}/page`;
    document.getElementById("candidates-csv").href = `/public/inspections/${plan.id}/candidates.csv`;
    const tbody = document.querySelector("#plan-strata tbody");
    tbody.replaceChildren(...(plan.strata || []).map((s) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td><code>${escapeHtml(s.id)}</code></td><td>${escapeHtml(state.itemNames.get(s.item_code) || s.item_code)}</td>`
        + `<td>${escapeHtml(s.credit_class || "")}</td><td>${s.size}</td><td>${escapeHtml(s.ratio)}</td><td>${s.n}</td>`;
      return tr;
    }));
  };

  const renderTeams = (plan) => {
    const list = document.getElementById("teams");
    const names = new Map(config.departments.map((d) => [d.code, d.name]));
    const counts = new Map();
    for (const v of plan.visits || []) { if (v.team_id !== null) { counts.set(v.team_id, (counts.get(v.team_id) || 0) + 1); } }
    list.replaceChildren(...(plan.teams || []).map((team) => {
      const li = document.createElement("li");
      li.dataset.team = String(team.id);
      const inspectors = (team.inspectors || []).map((i) => `${escapeHtml(i.name || i.code || i.id)}（${escapeHtml(names.get(i.department) || i.department)}）`).join("、");
      li.innerHTML = `<span class="ip-swatch" data-colour="${escapeHtml(teamColour(team.team_no))}"></span>`
        + `<strong>第 ${team.team_no} 组</strong> ${escapeHtml((team.departments || []).map((d) => names.get(d) || d).join(" + "))}`
        + `，${counts.get(team.id) || 0} 户<br><small>${inspectors}</small>`
        + (team.office ? `<br><small>出发地：${escapeHtml(team.office.name)}</small>` : "");
      return li;
    }));
    // Colours are set from script (no inline style attribute in the markup).
    for (const swatch of list.querySelectorAll(".ip-swatch")) { swatch.style.backgroundColor = swatch.dataset.colour; }
    const unmatched = (plan.visits || []).filter((v) => v.team_id === null);
    const note = document.getElementById("unmatched-note");
    note.hidden = unmatched.length === 0;
    note.textContent = unmatched.length ? `${unmatched.length} 户未能匹配检查人员（地图上灰色），点击查看原因。` : "";
    document.getElementById("teams-section").hidden = (plan.teams || []).length === 0 && unmatched.length === 0;
  };

  const renderRoutes = () => {
    const box = document.getElementById("routes");
    box.replaceChildren();
    for (const day of state.days) {
      const block = document.createElement("section");
      block.className = "ip-day";
      block.dataset.key = day.key;
      const minutes = Math.round((day.duration_s || 0) / 60);
      const km = ((day.distance_m || 0) / 1000).toFixed(1);
      block.innerHTML = `<h3><span class="ip-swatch" data-colour="${escapeHtml(teamColour(day.teamNo))}"></span>第 ${day.teamNo} 组 · ${escapeHtml(day.date)}`
        + ` <small>${day.stops.length} 站，${minutes} 分钟，${km} 公里${day.manual ? "，含手动调整" : ""}</small></h3>`;
      const table = document.createElement("table");
      table.className = "ip-table ip-stops";
      table.innerHTML = "<thead><tr><th>序</th><th>到达</th><th>市场主体</th><th>事项</th></tr></thead>";
      const tbody = document.createElement("tbody");
      day.stops.forEach((stop, i) => {
        const tr = document.createElement("tr");
        tr.dataset.visit = String(stop.visit_id);
        tr.tabIndex = 0;
        const items = (stop.items || []).map((code) => state.itemNames.get(code) || code).join("、");
        tr.innerHTML = `<td>${i + 1}</td><td>${escapeHtml(stop.arrival)}</td><td>${escapeHtml(stop.name)}<br><small>${escapeHtml(stop.uscc)}</small></td><td>${escapeHtml(items)}</td>`;
        tr.addEventListener("click", () => select(stop.visit_id));
        tr.addEventListener("keydown", (event) => { if (event.key === "Enter") { select(stop.visit_id); } });
        tbody.append(tr);
      });
      table.append(tbody);
      block.append(table);
      box.append(block);
    }
    for (const swatch of box.querySelectorAll(".ip-swatch")) { swatch.style.backgroundColor = swatch.dataset.colour; }
    const unassigned = (state.routes && state.routes.unassigned) || [];
    const visits = new Map((state.plan.visits || []).map((v) => [v.id, v]));
    document.getElementById("unassigned").replaceChildren(...unassigned.map((u) => {
      const li = document.createElement("li");
      const visit = visits.get(u.visit_id);
      li.textContent = `未排入路线：${u.name || (visit ? visit.name : u.visit_id)}——${u.detail || u.reason}`;
      return li;
    }));
    document.getElementById("routes-section").hidden = state.days.length === 0 && unassigned.length === 0;
    document.getElementById("print").hidden = state.days.length === 0;
  };

  const orderOf = () => {
    const order = new Map();
    for (const day of state.days) { day.stops.forEach((stop, i) => order.set(stop.visit_id, i + 1)); }
    return (id) => (order.has(id) ? order.get(id) : null);
  };

  const drawMap = () => {
    const visits = state.plan.visits || [];
    hook.drawn = {
      visits: map.showVisits(visits, teamNoOf, orderOf()),
      routes: map.showRoutes(state.days),
      teams: (state.plan.teams || []).length,
    };
    map.showOffices(state.plan.teams || []);
    renderLegend();
  };

  // The legend: one colour per team, grey for visits no team could take, the ring of an office.
  const renderLegend = () => {
    const legend = document.getElementById("legend");
    const entries = (state.plan.teams || []).map((t) => [teamColour(t.team_no), `第 ${t.team_no} 组`]);
    if ((state.plan.visits || []).some((v) => v.team_id === null)) { entries.push([UNMATCHED_COLOUR, "未匹配检查人员"]); }
    legend.replaceChildren(...entries.map(([colour, label]) => {
      const row = document.createElement("div");
      const swatch = document.createElement("i");
      swatch.className = "ip-swatch";
      swatch.style.backgroundColor = colour;
      row.append(swatch, label);
      return row;
    }));
    if (entries.length) {
      const office = document.createElement("div");
      office.innerHTML = "<i class=\"ip-swatch ip-office\"></i>检查组出发地";
      legend.append(office);
    }
    legend.hidden = entries.length === 0;
  };

  const dayOfVisit = (visitId) => state.days.find((d) => d.stops.some((s) => s.visit_id === visitId)) || null;

  /** Select a visit (a stop): highlight it on the map and in the list, show its popup and the move form. */
  function select(visitId, lngLat = null) {
    const visit = (state.plan.visits || []).find((v) => v.id === visitId);
    if (!visit) { return; }
    state.selected = visitId;
    hook.selected = visitId;
    map.selectVisit(visitId);
    for (const tr of document.querySelectorAll("#routes tr.selected")) { tr.classList.remove("selected"); }
    const row = document.querySelector(`#routes tr[data-visit="${visitId}"]`);
    if (row) { row.classList.add("selected"); }
    const day = dayOfVisit(visitId);
    map.selectRoute(day ? day.key : null);
    const names = new Map(config.departments.map((d) => [d.code, d.name]));
    const lines = [visit.name || visit.uscc, `统一社会信用代码：${visit.uscc}`,
      `事项：${(visit.items || []).map((c) => state.itemNames.get(c) || c).join("、")}`,
      `部门：${(visit.departments || []).map((d) => names.get(d) || d).join("、")}`];
    if (visit.window) { lines.push(`营业时间：${hhmm(visit.window[0])}–${hhmm(visit.window[1])}，检查约 ${visit.service_minutes} 分钟`); }
    if (visit.team_id === null) { lines.push(`未匹配检查人员：${visit.unmatched_reason_zh || visit.unmatched_reason || "原因不明"}`); }
    else { lines.push(`检查组：第 ${teamNoOf(visit)} 组`); }
    if (day) {
      const stop = day.stops.find((s) => s.visit_id === visitId);
      lines.push(`路线：${day.date} 第 ${day.stops.indexOf(stop) + 1} 站，${stop.arrival} 到达`);
      if (stop.address) { lines.push(`地址：${stop.address}`); }
    }
    map.popup(lngLat || [visit.lon, visit.lat], lines);
    if (moveForm && day) { openMove(visit, day); }
  }

  const openMove = (visit, day) => {
    moveForm.hidden = false;
    document.getElementById("move-what").textContent = visit.name || visit.uscc;
    const teamSelect = document.getElementById("move-team");
    const names = new Map(config.departments.map((d) => [d.code, d.name]));
    teamSelect.replaceChildren(...(state.plan.teams || []).map((t) => new Option(`第 ${t.team_no} 组（${(t.departments || []).map((d) => names.get(d) || d).join(" + ")}）`, String(t.id))));
    teamSelect.value = String(day.teamId);
    fillDays(day.day);
    document.getElementById("move-position").value = String(day.stops.findIndex((s) => s.visit_id === visit.id) + 1);
  };

  // The team's days, and one more (a new day after its last) to move a stop to.
  const fillDays = (chosen) => {
    const teamId = Number(document.getElementById("move-team").value);
    const days = state.days.filter((d) => d.teamId === teamId);
    const next = Math.max(0, ...days.map((d) => d.day)) + 1;
    const daySelect = document.getElementById("move-day");
    daySelect.replaceChildren(
      ...days.map((d) => new Option(`第 ${d.day} 天（${d.date}，${d.stops.length} 站）`, String(d.day))),
      new Option(`第 ${next} 天（新增）`, String(next)),
    );
    if (chosen !== undefined && [...daySelect.options].some((o) => o.value === String(chosen))) { daySelect.value = String(chosen); }
  };

  const loadRoutes = async () => {
    try {
      state.routes = await getJson(`/v1/inspection-plans/${planId}/routes`);
    } catch (error) {
      // The plan's entities and teams are still drawn; the routes' failure is said, not hidden.
      state.routes = null;
      if (!(error instanceof ApiError && error.status === 404)) {
        hook.error = error.message;
        say(`路线暂时无法读取：${error.message}`, "refused");
      }
    }
    state.days = state.routes ? routeDays(state.routes) : [];
    hook.routes = state.days.map((d) => ({
      key: d.key, team_id: d.teamId, team_no: d.teamNo, day: d.day, date: d.date, visits: d.stops.map((s) => s.visit_id), manual: Boolean(d.manual),
    }));
  };

  const load = async () => {
    hook.ready = false;
    const plan = await getJson(`/v1/inspection-plans/${planId}`);
    state.plan = plan;
    hook.plan = plan;
    state.teamsById = new Map((plan.teams || []).map((t) => [t.id, t]));
    state.itemNames = new Map((plan.items || []).map((i) => (typeof i === "string" ? [i, i] : [i.code, i.name])));
    section.hidden = false;
    renderFacts(plan);
    renderTeams(plan);
    if (drawForm) { drawForm.hidden = plan.status !== "committed"; }
    const solveButton = document.getElementById("solve-routes");
    if (plan.status === "drawn") { await loadRoutes(); } else { state.days = []; state.routes = null; hook.routes = []; }
    if (solveButton) { solveButton.hidden = plan.status !== "drawn" || (plan.teams || []).length === 0; }
    renderRoutes();
    drawMap();
    if ((plan.visits || []).length) { map.fitVisits(plan.visits); }
    if (state.selected !== null) { select(state.selected); }
    document.getElementById("print").href = `/inspections/${planId}/print`;
    onStatus(plan.status === "drawn"
      ? `已摇号：${(plan.visits || []).length} 户，${(plan.teams || []).length} 个检查组${state.days.length ? `，${state.days.length} 条路线` : ""}`
      : config.planStatuses[plan.status] || plan.status);
    hook.ready = true;
  };

  const act = async (button, busy, call) => {
    button.disabled = true;
    say(busy);
    try {
      await call();
    } catch (error) {
      hook.error = error.message;
      // A refusal's own sentence often already says why (a refused move names its reason): each reason is added
      // once, and only when the sentence does not already carry it.
      const listed = error.body && Array.isArray(error.body.unassigned)
        ? error.body.unassigned.map((u) => u.detail || u.reason) : [];
      const extra = [...new Set(listed)].filter((text) => text && !error.message.includes(text));
      say(extra.length ? `${error.message}：${extra.join("；")}` : error.message, "refused");
    } finally {
      button.disabled = false;
    }
  };

  if (drawForm) {
    const drawButton = document.getElementById("draw");
    drawButton.addEventListener("click", () => act(drawButton, "正在摇号…", async () => {
      const value = document.getElementById("public-value").value;
      if (!value) { say("请填写公开随机数", "refused"); return; }
      await postJson(`/v1/inspection-plans/${planId}/draw`, { public_value: value });
      await load();
      say(`摇号完成：选中 ${(state.plan.visits || []).length} 户，组成 ${(state.plan.teams || []).length} 个检查组`, "done");
    }));
    const cancelButton = document.getElementById("cancel-plan");
    cancelButton.addEventListener("click", () => act(cancelButton, "正在撤销…", async () => {
      const reason = document.getElementById("cancel-reason").value.trim();
      if (!reason) { say("请填写撤销原因（将在公示页面公开）", "refused"); return; }
      await postJson(`/v1/inspection-plans/${planId}/cancel`, { reason });
      await load();
      say("撤销成功：公示页面将显示撤销及其原因", "done");
    }));
    const solveButton = document.getElementById("solve-routes");
    solveButton.addEventListener("click", () => act(solveButton, "正在规划路线（按道路行驶时间与营业时间）…", async () => {
      await postJson(`/v1/inspection-plans/${planId}/routes`, {});
      await load();
      say(`路线已规划：${state.days.length} 条（检查组 × 日期）`, "done");
    }));
  }
  if (moveForm) {
    document.getElementById("move-team").addEventListener("change", () => fillDays(document.getElementById("move-day").value));
    document.getElementById("move-cancel").addEventListener("click", () => { moveForm.hidden = true; map.selectVisit(null); state.selected = null; hook.selected = null; });
    const moveButton = document.getElementById("move");
    moveButton.addEventListener("click", () => act(moveButton, "正在调整并重新优化…", async () => {
      // The form counts stops from 1; the API's position is 0-based among the day's other stops.
      const body = {
        visit_id: state.selected,
        team_id: Number(document.getElementById("move-team").value),
        day: Number(document.getElementById("move-day").value),
        position: Math.max(0, Number(document.getElementById("move-position").value) - 1),
      };
      try {
        await postJson(`/v1/inspection-plans/${planId}/routes/move`, body);
      } catch (error) {
        hook.moveRefused = { code: error.code, status: error.status, body: error.body };
        throw error;
      }
      hook.moved = body;
      await load();
      const day = dayOfVisit(body.visit_id);
      say(day ? `已移到第 ${day.teamNo} 组 ${day.date} 第 ${day.stops.findIndex((s) => s.visit_id === body.visit_id) + 1} 站，其余站点已重新优化` : "已调整", "done");
    }));
  }
  Object.assign(hook, { plan: null, routes: [], drawn: null, selected: null, moved: null, moveRefused: null });
  return { load, select };
}
