/**
 * dashboard/lists/overdue.js: the 逾期 list — the open tasks of the view past their deadline, most overdue first,
 * from GET /v1/stats?level=…&code=… (supervision/stats.py), each with its attribution: the overdue time split
 * between those who held the task while it ran late. A department officer's list is their department's.
 */

import { getJson } from "../../lib/api.js";
import { csvLink, h, holderLabel, inView, messageLine, query } from "./common.js";

/** The /v1/stats query of a view: level and code (the city: every town; a department: its own cases). */
export function statsQuery(view, me) {
  const area = me && me.area;
  if (area && area.kind === "department") { return { level: "department", code: area.code }; }
  if (!view || !view.code || view.level === "city") { return { level: "town" }; }
  return { level: view.level, code: view.code };
}

function share(item, part) {
  const total = item.attribution.reduce((sum, a) => sum + a.overdue_seconds, 0) || 1;
  return Math.round((part.overdue_seconds / total) * 100);
}

/** The 逾期 pane. `deps`: {ctx, vocab, departments, openTask(task)}. */
export function createOverdueList(deps) {
  const { ctx, vocab } = deps;
  const total = h("span", { className: "lists-total" });
  const csv = csvLink();
  const rows = h("ol", { className: "lists-rows", "aria-label": "逾期清单" });
  const message = messageLine();
  const el = h("section", { className: "lists-pane", dataset: { pane: "overdue", loads: "0" } },
    h("p", { className: "lists-note", text: "当前逾期未办的任务，最久的在前；逾期时间按当时的责任方归属。" }),
    h("div", { className: "lists-bar" }, total, csv.el), message.el, rows);
  const state = { view: null, items: [], token: 0, timer: null };

  function row(item) {
    const blame = item.attribution.map((a) => `${holderLabel(a.holder, { departments: deps.departments })} ${(a.overdue_hours / 24).toFixed(1)} 天（${share(item, a)}%）`);
    const li = h("li", { className: "lists-row is-overdue", dataset: { id: String(item.id) }, tabindex: "0" },
      h("div", { className: "lists-line" }, h("span", { className: "lists-id", text: `#${item.id}` }),
        h("span", { className: "lists-duty", text: vocab.label("duties", item.duty) }),
        h("span", { className: "lists-subject", text: `网格 ${item.grid_code}` })),
      h("div", { className: "lists-line lists-meta" },
        h("span", { className: "lists-badge overdue", text: `逾期 ${item.overdue_days} 天` }),
        h("span", { className: `lists-status status-${item.status}`, text: vocab.label("task_statuses", item.status) }),
        h("span", { text: `当前：${holderLabel(item.holder, { departments: deps.departments })}` })),
      h("div", { className: "lists-line lists-blame", text: `逾期归属：${blame.join("；") || "—"}` }));
    const open = () => {
      for (const other of rows.children) { other.classList.toggle("selected", other === li); }
      deps.openTask({ id: item.id });
    };
    li.addEventListener("click", open);
    li.addEventListener("keydown", (event) => { if (event.key === "Enter") { open(); } });
    return li;
  }

  async function load(view) {
    state.view = view;
    const token = ++state.token;
    const area = ctx.me && ctx.me.area;
    if (area && area.kind === "worker" && (!view || view.level !== "grid")) {
      // A grid worker's figures are their grid's: the list needs the grid's view.
      state.items = [];
      rows.replaceChildren();
      total.textContent = "";
      message.say("请进入本人负责的网格查看逾期清单");
      el.dataset.loads = String(Number(el.dataset.loads) + 1);
      return;
    }
    const params = query(statsQuery(view, ctx.me));
    csv.set("/v1/stats/overdue.csv", params);
    message.say("加载中…");
    try {
      const report = await getJson(`/v1/stats?${params}`);
      if (token !== state.token) { return; }
      state.items = report.overdue;
      rows.replaceChildren(...report.overdue.map(row));
      const count = report.totals ? report.totals.open_overdue : report.overdue.length;
      total.textContent = count > report.overdue.length ? `逾期 ${count} 条，列出最久的 ${report.overdue.length} 条` : `逾期 ${count} 条`;
      message.say(report.overdue.length ? "" : "当前范围内没有逾期任务");
    } catch (error) {
      if (token === state.token) {
        rows.replaceChildren();
        total.textContent = "";
        message.say(`逾期清单加载失败：${error.message}`, "error");
      }
    }
    if (token === state.token) { el.dataset.loads = String(Number(el.dataset.loads) + 1); }
  }

  return {
    el,
    load,
    /** A task of the view moved: the overdue list may change (reloaded once the events calm down). */
    live(event) {
      if (event.kind !== "task" || !inView(state.view, event)) { return; }
      if (!state.items.some((item) => item.id === event.id)) { return; }
      clearTimeout(state.timer);
      state.timer = setTimeout(() => load(state.view), 1000);
    },
    ids: () => state.items.map((item) => item.id),
    csvHref: () => csv.el.getAttribute("href"),
  };
}
