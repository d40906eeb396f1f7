/**
 * dashboard/lists/index.js: the lists beside the dashboard's map — 任务, 逾期, 线索, 待核 and, for a department
 * officer, 部门案件 — mounted by the dashboard shell in <aside id="side"> with `mountLists(el, ctx)`.
 *
 * ctx (the shell's contract): { me, config, view() → {level, code, name}, onView(fn), onLive(fn),
 * map: { flyTo, showMarker, pickPoint, highlightGrid, refresh }, setStatus(text, {warning}) }.
 *
 * Test hook: window.gridgov.lists (see publishHook).
 */

const CAPABILITY = { taskRead: "task.read", clueRead: "clue.read", statsRead: "stats.read", reviewRead: "review.read" };

/** The tabs the caller's role may open, in order: [{id, label}]. */
export function tabsFor(me) {
  const caps = new Set((me && me.capabilities) || []);
  const tabs = [];
  if (me && me.area && me.area.kind === "department") { tabs.push({ id: "department", label: "部门案件" }); }
  if (caps.has(CAPABILITY.taskRead)) { tabs.push({ id: "tasks", label: "任务" }); }
  if (caps.has(CAPABILITY.statsRead)) { tabs.push({ id: "overdue", label: "逾期" }); }
  if (caps.has(CAPABILITY.clueRead)) { tabs.push({ id: "clues", label: "线索" }); }
  if (caps.has(CAPABILITY.reviewRead)) { tabs.push({ id: "review", label: "待核" }); }
  return tabs;
}

/** Mount the lists into `el` (the dashboard's side panel); returns the hook object. */
export function mountLists(el, ctx) {
  el.classList.add("lists");
  const bar = document.createElement("nav");
  bar.className = "lists-tabs";
  bar.setAttribute("role", "tablist");
  const body = document.createElement("div");
  body.className = "lists-body";
  const tabs = tabsFor(ctx.me);
  const state = { active: null };
  for (const tab of tabs) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "lists-tab";
    button.dataset.tab = tab.id;
    button.setAttribute("role", "tab");
    button.textContent = tab.label;
    button.addEventListener("click", () => select(tab.id));
    bar.appendChild(button);
  }
  el.replaceChildren(bar, body);

  function select(id) {
    state.active = id;
    for (const button of bar.querySelectorAll(".lists-tab")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === id));
    }
  }

  if (tabs.length) { select(tabs[0].id); }
  const hook = { tabs: () => tabs.map((t) => t.id), active: () => state.active, select };
  window.gridgov = Object.assign(window.gridgov || {}, { lists: hook });
  return hook;
}
