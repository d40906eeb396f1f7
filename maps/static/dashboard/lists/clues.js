/**
 * dashboard/lists/clues.js: the 线索 list — the clues of the view (GET /v1/clues with town=, community= or grid=;
 * field reports and hotline work orders alike), newest first, filtered by status, severity and source, paged by
 * the API's cursor. A click flies to the clue and opens its task; a live clue in view is prepended.
 */

import { getJson } from "../../lib/api.js";
import { csvLink, departmentNames, flash, formatTime, h, inView, messageLine, moreButton, query, selectOf, termsOf, viewFilter } from "./common.js";

const PAGE = 50;

/** The 线索 pane. `deps`: {ctx, vocab, departments, openTask(task)}. */
export function createClueList(deps) {
  const { ctx, vocab } = deps;
  const status = selectOf("status", "全部状态", termsOf(vocab, "clue_statuses"));
  const severity = selectOf("severity", "全部严重程度", termsOf(vocab, "clue_severities"));
  const source = selectOf("source", "全部来源", termsOf(vocab, "clue_sources"));
  const total = h("span", { className: "lists-total" });
  const csv = csvLink();
  const rows = h("ol", { className: "lists-rows", "aria-label": "线索列表" });
  const message = messageLine();
  const state = { view: null, next: null, total: 0, token: 0, marker: null };
  const more = moreButton(() => loadPage(false));
  for (const input of [status, severity, source]) { input.addEventListener("change", () => reload()); }
  const el = h("section", { className: "lists-pane", dataset: { pane: "clues", loads: "0" } },
    h("form", { className: "lists-filters", onsubmit: (e) => e.preventDefault() }, status, severity, source),
    h("div", { className: "lists-bar" }, total, csv.el), message.el, rows, more.el);

  function filters() {
    return { ...viewFilter(state.view), status: status.value, severity: severity.value, source: source.value || "all" };
  }

  function row(clue) {
    const li = h("li", { className: "lists-row", dataset: { id: String(clue.id) }, tabindex: "0" },
      h("div", { className: "lists-line" }, h("span", { className: "lists-id", text: `#${clue.id}` }),
        h("span", { className: "lists-duty", text: clue.industry }),
        h("span", { className: `lists-badge severity-${clue.severity}`, text: vocab.label("clue_severities", clue.severity) }),
        h("span", { text: vocab.label("clue_sources", clue.source) })),
      h("div", { className: "lists-line lists-meta" },
        h("span", { className: `lists-status status-${clue.status}`, text: vocab.label("clue_statuses", clue.status) }),
        h("span", { text: `上报 ${formatTime(clue.reported_at)}` }),
        h("span", { text: `去向：${departmentNames(clue.department_code ? [clue.department_code] : [], deps.departments)}` })),
      clue.address || clue.description ? h("div", { className: "lists-line lists-blame", text: clue.address || clue.description }) : null);
    const open = () => {
      for (const other of rows.children) { other.classList.toggle("selected", other === li); }
      if (clue.task_id) {
        deps.openTask({ id: clue.task_id });
      } else {
        ctx.map.flyTo(clue.lon, clue.lat, 17);
        if (state.marker) { state.marker.remove(); }
        state.marker = ctx.map.showMarker(clue.lon, clue.lat, `线索 #${clue.id}：${clue.industry}`);
      }
    };
    li.addEventListener("click", open);
    li.addEventListener("keydown", (event) => { if (event.key === "Enter") { open(); } });
    return li;
  }

  async function loadPage(first) {
    const token = first ? ++state.token : state.token;
    message.say(first ? "加载中…" : "");
    try {
      const page = await getJson(`/v1/clues?${query({ ...filters(), limit: PAGE, cursor: first ? null : state.next })}`);
      if (token !== state.token) { return; }
      if (first) { rows.replaceChildren(); }
      rows.append(...page.items.map(row));
      state.next = page.next;
      state.total = page.total;
      total.textContent = `共 ${page.total} 条`;
      more.show(Boolean(page.next));
      message.say(page.total ? "" : "当前范围内没有符合条件的线索");
    } catch (error) {
      if (token === state.token) { message.say(`线索加载失败：${error.message}`, "error"); }
    }
    if (token === state.token) { el.dataset.loads = String(Number(el.dataset.loads) + 1); }
  }

  function reload() {
    csv.set("/v1/clues.csv", query(filters()));
    return loadPage(true);
  }

  return {
    el,
    /** Show the clues of `view`. */
    load(view) {
      state.view = view;
      return reload();
    },
    /** A live clue in view: prepend it (when it passes the filters). */
    async live(event) {
      if (event.kind !== "clue" || !inView(state.view, event)) { return; }
      if (rows.querySelector(`li[data-id="${event.id}"]`)) { return; }
      let clue;
      try {
        clue = await getJson(`/v1/clues/${event.id}`);
      } catch {
        return;
      }
      const f = filters();
      if ((f.status && clue.status !== f.status) || (f.severity && clue.severity !== f.severity)
        || (f.source !== "all" && clue.source !== f.source)) { return; }
      const li = row(clue);
      rows.prepend(li);
      flash(li);
      state.total += 1;
      total.textContent = `共 ${state.total} 条`;
      message.say("");
    },
    ids: () => [...rows.children].map((li) => Number(li.dataset.id)),
    csvHref: () => csv.el.getAttribute("href"),
  };
}
