/**
 * dashboard/lists/taskpanel.js: one task beside the map — its facts in Chinese, its history as a timeline
 * (GET /v1/tasks/{id}/history), and a button for each move the caller may make from its state: the moves the
 * state machine allows now (the task's `allowed`) that the caller's role may make from that state (GET /v1/me
 * `task_move_rules`, the holder's rule; none without task.transition). A move posts POST /v1/tasks/{id}/transitions with the version read (optimistic lock):
 * a 409 means someone else moved it first — the panel reloads and says so. Assigning names a worker of the task's
 * grid (GET /v1/workers); an inspection asks for the point on the map. A department officer's moves are their
 * feedback form, with a note.
 */

import { getJson, postJson } from "../../lib/api.js";
import { actorLabel, departmentNames, formatTime, h, holderLabel, messageLine, noteZh, query } from "./common.js";

// What each move is called on its button.
const MOVE_LABELS = {
  assigned: "分派给网格员",
  inspected_ok: "核查无问题",
  inspected_problem: "核查有问题",
  notice_issued: "下达整改通知",
  reinspected: "复查完成",
  escalated_community: "上报村（社区）",
  escalated_department: "移交部门",
  department_feedback: "部门反馈",
  closed: "办结",
  cancelled: "撤销",
};
// Moves that are an on-site inspection: the server wants the position (proof of presence).
const INSPECTIONS = new Set(["inspected_ok", "inspected_problem", "reinspected"]);

/** The moves `me` may make on `task` now: the state machine's next states ∩ the role's (none without the right). */
export function movesFor(me, task) {
  const caps = new Set((me && me.capabilities) || []);
  if (!caps.has("task.transition")) { return []; }
  // The holder's rule: what the role may do from the task's current state (GET /v1/me `task_move_rules`).
  const rules = me.task_move_rules;
  if (rules !== null && rules !== undefined) {
    const fromHere = rules[task.status] || [];
    return (task.allowed || []).filter((to) => fromHere.includes(to));
  }
  const mine = me.task_moves;
  // A task a worker holds is reassigned only by the roles free to make any move (the community, the centre).
  const reassign = (to) => to === "assigned" && task.status === "assigned";
  return (task.allowed || []).filter((to) => (mine === null || mine === undefined) ? true : mine.includes(to) && !reassign(to));
}

/** The panel. `deps`: {ctx, vocab, departments, onMoved(task), onClose()}. */
export function createTaskPanel(deps) {
  const { ctx, vocab } = deps;
  const me = ctx.me || {};
  const caps = new Set(me.capabilities || []);
  const isDepartment = me.area && me.area.kind === "department";
  const title = h("h2", { className: "panel-title" });
  const facts = h("dl", { className: "panel-facts" });
  const actions = h("section", { className: "panel-actions", "aria-label": isDepartment ? "部门反馈" : "任务流转" });
  const timeline = h("ol", { className: "panel-timeline", "aria-label": "任务历史" });
  const message = messageLine();
  const back = h("button", { type: "button", className: "panel-back", text: "← 返回列表", onclick: () => close() });
  const el = h("section", { className: "task-panel", hidden: true, "aria-label": "任务详情" },
    h("div", { className: "panel-head" }, back, title), message.el, facts, actions,
    h("h3", { text: "流转记录" }), timeline);
  const state = { task: null, history: [], marker: null, busy: false, token: 0 };
  const places = new Map();

  function fact(label, value, className = "") {
    const dd = h("dd", { className, text: value === null || value === undefined || value === "" ? "—" : value });
    facts.append(h("dt", { text: label }), dd);
    return dd;
  }

  /** A grid's names (GET /v1/grids/{code}, read once per grid), or null when they cannot be read. */
  function placeOf(code) {
    if (!places.has(code)) { places.set(code, getJson(`/v1/grids/${encodeURIComponent(code)}`).catch(() => null)); }
    return places.get(code);
  }

  function showFacts(task) {
    title.textContent = `任务 #${task.id} · ${vocab.label("duties", task.duty)}`;
    facts.replaceChildren();
    fact("职责", vocab.label("duties", task.duty));
    fact("对象", task.entity_name || (task.kind === "clue" ? `线索 ${task.clue_id}` : ""));
    if (task.entity_uscc) { fact("信用代码", task.entity_uscc); }
    fact("地址", task.address);
    const grid = fact("网格", task.grid_code);
    const community = fact("村（社区）", task.community_code);
    placeOf(task.grid_code).then((place) => {
      if (!place || !state.task || state.task.id !== task.id) { return; }
      grid.textContent = `${place.name || task.grid_code}（${task.grid_code}）`;
      community.textContent = `${place.town_name} ${place.community_name}`;
    });
    fact("网格员", task.worker_name ? `${task.worker_name}（${task.worker_id}）` : "未分派");
    fact("状态", vocab.label("task_statuses", task.status), `status-${task.status}`);
    fact("责任方", holderLabel(task.holder, { workerName: task.worker_name, departments: deps.departments }));
    fact("期限", task.due_at ? formatTime(task.due_at) : "无");
    fact("是否逾期", task.overdue ? "已逾期" : "未逾期", task.overdue ? "overdue" : "");
    fact("推送时间", formatTime(task.pushed_at));
    if (task.department_codes && task.department_codes.length) { fact("经办部门", departmentNames(task.department_codes, deps.departments)); }
    if (task.flagged) { fact("核查位置", "超出主体 200 米，待查", "overdue"); }
  }

  function showHistory(items) {
    timeline.replaceChildren();
    for (const entry of items) {
      const move = entry.from_status
        ? `${vocab.label("task_statuses", entry.from_status)} → ${vocab.label("task_statuses", entry.to_status)}`
        : `新建：${vocab.label("task_statuses", entry.to_status)}`;
      const details = [
        `责任方：${holderLabel(entry.holder, { departments: deps.departments })}`,
        entry.due_at ? `期限：${formatTime(entry.due_at)}` : null,
        entry.distance_m !== null && entry.distance_m !== undefined ? `距主体 ${Math.round(entry.distance_m)} 米${entry.flagged ? "（待查）" : ""}` : null,
      ].filter(Boolean).join("；");
      timeline.append(h("li", { className: "panel-event", dataset: { to: entry.to_status } },
        h("div", { className: "panel-event-head" }, h("time", { text: formatTime(entry.at) }), h("strong", { text: move })),
        h("div", { className: "panel-event-meta", text: `操作：${actorLabel(entry.actor)}；${details}` }),
        entry.note ? h("div", { className: "panel-event-note", text: `说明：${noteZh(entry.note)}` }) : null));
    }
    if (!items.length) { timeline.append(h("li", { text: "暂无记录" })); }
  }

  async function workerSelect(task) {
    const select = h("select", { name: "worker_id", "aria-label": "选择网格员" });
    select.append(h("option", { value: "", text: "选择网格员…" }));
    if (!caps.has("worker.manage")) { return select; }
    try {
      const answer = await getJson(`/v1/workers?${query({ grid: task.grid_code })}`);
      for (const w of answer.items) {
        if (w.id === task.worker_id) { continue; }
        const full = w.open_tasks >= w.capacity;
        select.append(h("option", { value: String(w.id), text: `${w.name}（在办 ${w.open_tasks}/${w.capacity}${full ? "，已满" : ""}）` }));
      }
    } catch (error) {
      message.say(`网格员名单加载失败：${error.message}`, "error");
    }
    return select;
  }

  async function showActions(task) {
    actions.replaceChildren();
    const moves = movesFor(me, task);
    if (!moves.length) {
      actions.hidden = true;
      return;
    }
    actions.hidden = false;
    const note = h("textarea", { name: "note", rows: "2", maxlength: "1000", placeholder: isDepartment ? "反馈意见（必填）" : "说明（可选）" });
    actions.append(h("h3", { text: isDepartment ? "部门反馈" : "流转" }));
    for (const to of moves) {
      const label = to === "assigned" && task.status === "assigned" ? "改派给其他网格员" : MOVE_LABELS[to] || vocab.label("task_statuses", to);
      const button = h("button", { type: "button", className: "panel-move", dataset: { move: to }, text: label });
      if (to === "assigned") {
        const select = await workerSelect(task);
        button.addEventListener("click", () => {
          if (!select.value && caps.has("worker.manage")) { message.say("请先选择网格员", "error"); return; }
          move(to, { worker_id: select.value ? Number(select.value) : undefined, note: note.value });
        });
        actions.append(h("div", { className: "panel-assign" }, select, button));
      } else {
        button.addEventListener("click", () => {
          if (isDepartment && !note.value.trim()) { message.say("请填写反馈意见", "error"); note.focus(); return; }
          move(to, { note: note.value });
        });
        actions.append(button);
      }
    }
    actions.append(note);
  }

  async function move(to, { worker_id, note }) {
    const task = state.task;
    if (!task || state.busy) { return; }
    const body = { to, version: task.version, note: note && note.trim() ? note.trim() : null };
    if (worker_id) { body.worker_id = worker_id; }
    if (INSPECTIONS.has(to)) {
      const point = await ctx.map.pickPoint("请在地图上点选核查位置（Esc 取消）");
      if (!point) { message.say("已取消"); return; }
      body.lon = point.lon;
      body.lat = point.lat;
    }
    state.busy = true;
    for (const b of actions.querySelectorAll("button")) { b.disabled = true; }
    try {
      const moved = await postJson(`/v1/tasks/${task.id}/transitions`, body);
      await show(moved.id);
      const status = vocab.label("task_statuses", moved.status);
      message.say(to === "assigned" && moved.worker_name ? `已${task.status === "assigned" ? "改派" : "分派"}给网格员 ${moved.worker_name}` : `操作成功：${MOVE_LABELS[to] || status}（当前状态：${status}）`, "done");
      ctx.map.refresh("tasks");
      deps.onMoved(moved);
    } catch (error) {
      if (error.status === 409 && error.code === "stale_version") {
        await show(task.id);
        message.say("该任务刚被他人更新，已重新载入，请确认后再操作", "error");
      } else {
        message.say(`操作失败：${error.message}`, "error");
        for (const b of actions.querySelectorAll("button")) { b.disabled = false; }
      }
    } finally {
      state.busy = false;
    }
  }

  async function show(taskId) {
    const token = ++state.token;
    const [task, history] = await Promise.all([
      getJson(`/v1/tasks/${taskId}`),
      getJson(`/v1/tasks/${taskId}/history`),
    ]);
    if (token !== state.token) { return; }
    state.task = task;
    state.history = history.items;
    showFacts(task);
    showHistory(history.items);
    await showActions(task);
    el.dataset.task = String(task.id);
  }

  function close() {
    state.task = null;
    state.token += 1;
    if (state.marker) { state.marker.remove(); state.marker = null; }
    el.hidden = true;
    delete el.dataset.task;
    deps.onClose();
  }

  return {
    el,
    /** Open `task` (an object with id, and lon/lat when known): fly there, mark it, read it and its history. */
    async open(task) {
      el.hidden = false;
      message.say("加载中…");
      facts.replaceChildren();
      actions.replaceChildren();
      timeline.replaceChildren();
      if (state.marker) { state.marker.remove(); state.marker = null; }
      try {
        await show(task.id);
        message.say("");
      } catch (error) {
        message.say(`任务加载失败：${error.message}`, "error");
        return;
      }
      const current = state.task;
      if (current && current.lon !== null && current.lon !== undefined) {
        ctx.map.flyTo(current.lon, current.lat, 17);
        state.marker = ctx.map.showMarker(current.lon, current.lat, `${current.entity_name || "任务"}（#${current.id}）`);
      }
      if (current) { ctx.map.highlightGrid(current.grid_code); }
    },
    close,
    /** Reload the task shown if it is `taskId` (a live move of it). */
    async refreshIf(taskId) {
      if (state.task && state.task.id === taskId && !state.busy) {
        try { await show(taskId); } catch { /* the list says what failed */ }
      }
    },
    /** The task shown (test hook): {task, history, moves}. */
    current: () => (state.task ? {
      task: state.task,
      history: state.history,
      moves: [...actions.querySelectorAll(".panel-move")].map((b) => b.dataset.move),
    } : null),
    /** The options of the assign select (test hook). */
    workerOptions: () => [...actions.querySelectorAll("select[name=worker_id] option")].filter((o) => o.value)
      .map((o) => ({ value: Number(o.value), label: o.textContent })),
  };
}
