/**
 * dashboard/lists/tasks.js: the 任务 list — the tasks of the view (GET /v1/tasks with town=, community= or grid=),
 * newest first, filtered by status, duty, overdue only and worker, paged with the API's keyset cursor. A click
 * flies the map to the task's object and opens its panel; live task events add new tasks and update moved ones.
 */

import { getJson } from "../../lib/api.js";
import { csvLink, flash, formatTime, h, inView, messageLine, moreButton, query, selectOf, termsOf, viewFilter } from "./common.js";

const PAGE = 50;

/** One task as a row: duty and object, then status, deadline (overdue in red) and worker. */
export function taskRow(task, vocab, onOpen) {
  const subject = task.entity_name || (task.kind === "clue" ? `线索任务（线索 ${task.clue_id}）` : "—");
  const status = h("span", { className: `lists-status status-${task.status}`, text: vocab.label("task_statuses", task.status) });
  const due = task.due_at ? `期限 ${formatTime(task.due_at)}` : "无期限";
  const row = h(
    "li",
    { className: "lists-row", dataset: { id: String(task.id), status: task.status }, tabindex: "0" },
    h("div", { className: "lists-line" }, h("span", { className: "lists-id", text: `#${task.id}` }),
      h("span", { className: "lists-duty", text: vocab.label("duties", task.duty) }), h("span", { className: "lists-subject", text: subject })),
    h("div", { className: "lists-line lists-meta" }, status,
      task.overdue ? h("span", { className: "lists-badge overdue", text: "逾期" }) : null,
      h("span", { text: due }), h("span", { text: task.worker_name ? `网格员 ${task.worker_name}` : "未分派网格员" })),
  );
  row.classList.toggle("is-overdue", Boolean(task.overdue));
  row.addEventListener("click", () => onOpen(task));
  row.addEventListener("keydown", (event) => { if (event.key === "Enter") { onOpen(task); } });
  return row;
}

/**
 * A pane of tasks. `deps`: {vocab, openTask(task), canListWorkers}. `options`: `pane` (its name), `fixed` (filters
 * always sent, e.g. {department}), `statuses` (the status choices, default every state), `status` (the first
 * choice), `followView` (filter by the drill-down view; default true), `label` (the list's name).
 */
export function createTaskList(deps, options = {}) {
  const { vocab } = deps;
  const { pane = "tasks", fixed = {}, followView = true, label = "任务列表" } = options;
  const status = selectOf("status", "全部状态", options.statuses || termsOf(vocab, "task_statuses"));
  if (options.status) { status.value = options.status; }
  const duty = selectOf("duty", "全部职责", termsOf(vocab, "duties"));
  const worker = selectOf("worker", "全部网格员", []);
  const overdue = h("input", { type: "checkbox", name: "overdue" });
  const total = h("span", { className: "lists-total" });
  const csv = csvLink();
  const rows = h("ol", { className: "lists-rows", "aria-label": label });
  const message = messageLine();
  const state = { view: null, next: null, items: [], token: 0, workers: new Map() };
  const more = moreButton(() => loadPage(false));
  const filtersEl = h("form", { className: "lists-filters", onsubmit: (e) => e.preventDefault() },
    status, duty, worker, h("label", { className: "lists-check" }, overdue, "只看逾期"));
  for (const input of [status, duty, worker, overdue]) { input.addEventListener("change", () => reload()); }
  const el = h("section", { className: "lists-pane", dataset: { pane, loads: "0" } },
    filtersEl, h("div", { className: "lists-bar" }, total, csv.el), message.el, rows, more.el);

  function filters() {
    return {
      ...(followView ? viewFilter(state.view) : {}), ...fixed, status: status.value, duty: duty.value, worker: worker.value,
      overdue: overdue.checked ? "true" : "",
    };
  }

  function matches(task) {
    const f = filters();
    return (!f.status || task.status === f.status) && (!f.duty || task.duty === f.duty)
      && (!f.worker || String(task.worker_id) === f.worker) && (!f.overdue || task.overdue);
  }

  async function loadWorkers() {
    const view = state.view;
    const keep = worker.value;
    let options = [];
    if (deps.canListWorkers && view && (view.level === "community" || view.level === "grid")) {
      try {
        const answer = await getJson(`/v1/workers?${query({ [view.level]: view.code })}`);
        options = answer.items.map((w) => ({ value: String(w.id), label: `${w.name}（在办 ${w.open_tasks}）` }));
      } catch {
        options = [];
      }
    }
    if (!options.length) {
      options = [...state.workers.entries()].map(([id, name]) => ({ value: id, label: name }));
    }
    worker.replaceChildren(h("option", { value: "", text: "全部网格员" }),
      ...options.map((o) => h("option", { value: o.value, text: o.label })));
    worker.value = options.some((o) => o.value === keep) ? keep : "";
  }

  function remember(items) {
    for (const task of items) {
      if (task.worker_id && !state.workers.has(String(task.worker_id))) {
        state.workers.set(String(task.worker_id), task.worker_name || `网格员 ${task.worker_id}`);
      }
    }
  }

  async function loadPage(first) {
    const token = first ? ++state.token : state.token;
    const params = query({ ...filters(), limit: PAGE, cursor: first ? null : state.next });
    message.say(first ? "加载中…" : "");
    try {
      const page = await getJson(`/v1/tasks?${params}`);
      if (token !== state.token) { return; }
      if (first) { rows.replaceChildren(); state.items = []; }
      state.items.push(...page.items);
      remember(page.items);
      for (const task of page.items) { rows.append(taskRow(task, vocab, open)); }
      state.next = page.next;
      state.total = page.total;
      total.textContent = `共 ${page.total} 条`;
      more.show(Boolean(page.next));
      message.say(page.total ? "" : "当前范围内没有符合条件的任务");
    } catch (error) {
      if (token === state.token) { message.say(`任务加载失败：${error.message}`, "error"); }
    }
    if (token === state.token) { el.dataset.loads = String(Number(el.dataset.loads) + 1); }
  }

  function open(task) {
    for (const row of rows.children) { row.classList.toggle("selected", row.dataset.id === String(task.id)); }
    deps.openTask(task);
  }

  async function reload() {
    csv.set("/v1/tasks.csv", query(filters()));
    await loadPage(true);
    if (!worker.value) { await loadWorkers(); }
  }

  /** A task changed or appeared (a live event, or a move made here): update or prepend its row. */
  async function upsert(taskId, { created = false } = {}) {
    let task;
    try {
      task = await getJson(`/v1/tasks/${taskId}`);
    } catch {
      return;
    }
    const existing = rows.querySelector(`li[data-id="${task.id}"]`);
    const row = taskRow(task, vocab, open);
    if (existing) {
      row.classList.toggle("selected", existing.classList.contains("selected"));
      existing.replaceWith(row);
      state.items = state.items.map((t) => (t.id === task.id ? task : t));
    } else if (created && (!followView || inView(state.view, task)) && matches(task)) {
      rows.prepend(row);
      state.items.unshift(task);
      state.total = (state.total || 0) + 1;
      total.textContent = `共 ${state.total} 条`;
      message.say("");
    } else {
      return;
    }
    flash(row);
  }

  return {
    el,
    /** Show the tasks of `view` (a drill-down step). */
    load(view) {
      state.view = view;
      state.workers.clear();
      worker.value = "";
      return reload();
    },
    reload,
    upsert,
    /** A live event: a task created in view is prepended, a moved one listed here is updated. */
    live(event) {
      if (event.kind !== "task" || (followView && !inView(state.view, event))) { return null; }
      return upsert(event.id, { created: event.action === "created" });
    },
    /** The ids of the rows shown (test hook). */
    ids: () => [...rows.children].map((row) => Number(row.dataset.id)),
    /** Set a filter as a user would, and reload (test hook). */
    filter(name, value) {
      const input = { status, duty, worker, overdue }[name];
      if (input === overdue) { overdue.checked = Boolean(value); } else { input.value = value === null ? "" : String(value); }
      return reload();
    },
    /** The worker filter's options (test hook): [{value, label}]. */
    workerOptions: () => [...worker.options].filter((o) => o.value).map((o) => ({ value: o.value, label: o.textContent })),
    csvHref: () => csv.el.getAttribute("href"),
  };
}
