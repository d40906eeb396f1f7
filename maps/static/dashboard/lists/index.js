/**
 * dashboard/lists/index.js: the lists beside the dashboard's map — 任务 (tasks.js), 逾期 (overdue.js), 线索
 * (clues.js), 待核 (review.js, for roles with review.read) and, for a department officer, 部门案件
 * (department.js) — and the task panel (taskpanel.js), mounted by the shell in <aside id="side"> with
 * `mountLists(el, ctx)`. The lists follow the drill-down view (ctx.onView) and the live feed (ctx.onLive).
 *
 * ctx (the shell's contract): { me, config, view() → {level, code, name}, onView(fn), onLive(fn),
 * map: { flyTo, showMarker, pickPoint, highlightGrid, refresh }, setStatus(text, {warning}) }.
 *
 * Test hook (window.gridgov.lists):
 *   ready                 a promise resolved once the first list has loaded
 *   tabs(), active()      the tab ids shown and the open one; select(id) opens a tab as a click would
 *   settled()             a promise resolved when the last list load asked for has finished
 *   view()                the view the lists show
 *   tasks, overdue, clues, review, department: each pane's own hook (ids(), csvHref(), …) or undefined
 *   openTask(id)          open a task's panel as a click on its row would (a promise)
 *   panel()               the task shown: {task, history, moves}, or null; panelWorkers() the assign choices
 *   lastResolution()      the last review resolution's answer, or null
 * Each pane's element carries data-loads (how many loads have finished), the panel data-task.
 */

import { getJson } from "../../lib/api.js";
import { loadVocabulary } from "../../lib/vocab.js";
import { h } from "./common.js";
import { createClueList } from "./clues.js";
import { createDepartmentList } from "./department.js";
import { createOverdueList } from "./overdue.js";
import { createReviewList } from "./review.js";
import { createTaskPanel } from "./taskpanel.js";
import { createTaskList } from "./tasks.js";

const CAPABILITY = { taskRead: "task.read", clueRead: "clue.read", statsRead: "stats.read", reviewRead: "review.read", workerManage: "worker.manage" };

/** The tabs the caller's role may open, in order: [{id, label}]. */
export function tabsFor(me) {
  const caps = new Set((me && me.capabilities) || []);
  const department = me && me.area && me.area.kind === "department";
  const tabs = [];
  if (department) { tabs.push({ id: "department", label: "部门案件" }); }
  if (caps.has(CAPABILITY.taskRead) && !department) { tabs.push({ id: "tasks", label: "任务" }); }
  if (caps.has(CAPABILITY.statsRead)) { tabs.push({ id: "overdue", label: "逾期" }); }
  if (caps.has(CAPABILITY.clueRead)) { tabs.push({ id: "clues", label: "线索" }); }
  if (caps.has(CAPABILITY.reviewRead)) { tabs.push({ id: "review", label: "待核" }); }
  return tabs;
}

async function departmentsMap() {
  try {
    const answer = await getJson("/v1/departments");
    return new Map(answer.items.map((d) => [d.code, d.name]));
  } catch {
    return new Map();
  }
}

const viewKey = (view) => (view ? `${view.level}:${view.code || ""}` : "");

/** Mount the lists into `el` (the dashboard's side panel); returns the hook object (window.gridgov.lists). */
export function mountLists(el, ctx) {
  let resolveReady;
  const ready = new Promise((resolve) => { resolveReady = resolve; });
  const hook = { ready, tabs: () => [], active: () => null };
  window.gridgov = Object.assign(window.gridgov || {}, { lists: hook });
  el.classList.add("lists");
  el.replaceChildren(h("p", { className: "lists-message", text: "列表加载中…" }));
  build(el, ctx, hook).then(resolveReady, (error) => {
    el.replaceChildren(h("p", { className: "lists-message error", text: `列表加载失败：${error.message}` }));
    resolveReady(hook);
  });
  return hook;
}

async function build(el, ctx, hook) {
  const me = ctx.me || {};
  const caps = new Set(me.capabilities || []);
  const [vocab, departments] = await Promise.all([loadVocabulary(), departmentsMap()]);
  const tabs = tabsFor(me);
  const state = { active: null, view: ctx.view(), loaded: new Map(), pending: Promise.resolve() };

  const openTask = (task) => {
    body.hidden = true;
    bar.hidden = true;
    return panel.open(task);
  };
  const deps = { ctx, vocab, departments, openTask, canListWorkers: caps.has(CAPABILITY.workerManage) };
  const panes = {};
  for (const tab of tabs) {
    if (tab.id === "tasks") { panes.tasks = createTaskList(deps); }
    if (tab.id === "department") { panes.department = createDepartmentList(deps, { code: me.area.code, label: me.area.label }); }
    if (tab.id === "overdue") { panes.overdue = createOverdueList(deps); }
    if (tab.id === "clues") { panes.clues = createClueList(deps); }
    if (tab.id === "review") {
      panes.review = createReviewList({
        ctx,
        onResolved: () => {
          // The new tasks belong in the task list of their grid: reload it when it is shown next.
          state.loaded.delete("tasks");
          if (state.active === "tasks") { loadPane("tasks"); }
        },
      });
    }
  }
  const panel = createTaskPanel({
    ctx, vocab, departments,
    onMoved: (task) => {
      for (const id of ["tasks", "department"]) { if (panes[id]) { panes[id].upsert(task.id); } }
      state.loaded.delete("overdue");
    },
    onClose: () => {
      body.hidden = false;
      bar.hidden = false;
      if (!state.loaded.has(state.active)) { loadPane(state.active); }
    },
  });

  const bar = h("nav", { className: "lists-tabs", role: "tablist", "aria-label": "列表" });
  const body = h("div", { className: "lists-body" });
  for (const tab of tabs) {
    bar.append(h("button", { type: "button", className: "lists-tab", role: "tab", dataset: { tab: tab.id }, text: tab.label,
      onclick: () => select(tab.id) }));
    const pane = panes[tab.id];
    pane.el.hidden = true;
    body.append(pane.el);
  }
  el.replaceChildren(bar, body, panel.el);
  if (!tabs.length) { body.append(h("p", { className: "lists-message", text: "本账号没有可查看的列表" })); }

  /** Load pane `id` for the current view (once per view; a move or resolution marks it stale). */
  function loadPane(id) {
    const pane = panes[id];
    if (!pane) { return Promise.resolve(); }
    state.loaded.set(id, viewKey(state.view));
    state.pending = Promise.resolve(pane.load(state.view)).catch(() => {});
    return state.pending;
  }

  function select(id) {
    if (!panes[id]) { return Promise.resolve(); }
    state.active = id;
    for (const button of bar.querySelectorAll(".lists-tab")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === id));
    }
    for (const [name, pane] of Object.entries(panes)) { pane.el.hidden = name !== id; }
    if (!panel.el.hidden) { panel.close(); }
    if (state.loaded.get(id) !== viewKey(state.view)) { return loadPane(id); }
    return Promise.resolve();
  }

  ctx.onView((view) => {
    if (viewKey(view) === viewKey(state.view) && state.loaded.size) { return; }
    state.view = view;
    state.loaded.clear();
    if (state.active) { loadPane(state.active); }
  });
  ctx.onLive((event) => {
    for (const [id, pane] of Object.entries(panes)) {
      if (state.loaded.get(id) === viewKey(state.view)) { Promise.resolve(pane.live(event)).catch(() => {}); }
    }
    if (event.kind === "task") { panel.refreshIf(event.id); }
  });

  Object.assign(hook, {
    tabs: () => tabs.map((t) => t.id),
    active: () => state.active,
    select,
    view: () => ({ ...state.view }),
    settled: () => state.pending.then(() => true),
    tasks: panes.tasks,
    overdue: panes.overdue,
    clues: panes.clues,
    review: panes.review,
    department: panes.department,
    openTask: (id) => openTask({ id }),
    panel: () => panel.current(),
    panelWorkers: () => panel.workerOptions(),
    closePanel: () => panel.close(),
    lastResolution: () => (panes.review ? panes.review.result() : null),
  });
  if (tabs.length) { await select(tabs[0].id); }
  return hook;
}
