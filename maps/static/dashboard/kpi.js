/**
 * dashboard/kpi.js: the figures of the unit in view (GET /v1/kpi) — tasks pushed and completed, completion and
 * on-time rates, open and overdue, clue handling and licensing rates, each beside the seed's headline figure
 * where the seed has one — its workload in hours a month (GET /v1/workload) when the caller may read it, and the
 * table of its children (a row click drills into it).
 */

const FIGURES = [
  ["tasks_pushed", "推送任务", "count"],
  ["tasks_completed", "已完成", "count"],
  ["completion_rate", "完成率", "rate"],
  ["on_time_rate", "按时率", "rate"],
  ["open_tasks", "在办", "count"],
  ["overdue_tasks", "逾期", "count"],
  ["clue_handling_rate", "线索办结率", "rate"],
  ["licensing_rate", "持证率", "rate"],
];
const CHILD_COLUMNS = [
  ["tasks_pushed", "推送", "count"],
  ["completion_rate", "完成率", "rate"],
  ["overdue_tasks", "逾期", "count"],
  ["clue_handling_rate", "线索办结", "rate"],
];
const LEVEL_NAMES = { city: "市", town: "镇街", community: "村（社区）", grid: "网格", department: "部门" };

/** A figure as the panel shows it: rates as percentages with two decimals, counts with separators. */
export function formatFigure(value, kind) {
  if (value === null || value === undefined) { return "—"; }
  if (kind === "rate") { return `${(value * 100).toFixed(2).replace(/\.?0+$/, "")}%`; }
  return Number(value).toLocaleString("zh-CN");
}

/**
 * The days a KPI window covers, as the panel prints them: GET /v1/kpi's window is half-open ([from 00:00, to
 * 00:00) in Beijing time), so the last day included is the day before `to`.
 */
export function windowLabel(window) {
  const first = window.from.slice(0, 10);
  const end = new Date(`${window.to.slice(0, 10)}T00:00:00Z`);
  end.setUTCDate(end.getUTCDate() - 1);
  return `统计期：${first} 至 ${end.toISOString().slice(0, 10)}`;
}

function cell(tag, text, className) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) { el.className = className; }
  return el;
}

/**
 * The KPI panel in `el` and the children's table in `childrenEl`; `onChild(child)` is called when a child's row is
 * clicked. Returns {show(kpi), clear(message), workload(answer of GET /v1/workload)}.
 */
export function mountKpiPanel(el, childrenEl, { onChild }) {
  const heading = cell("h2", "指标");
  const windowText = cell("p", "", "kpi-window");
  const cards = document.createElement("dl");
  cards.className = "kpi-cards";
  const childTitle = cell("h3", "下级单位");
  const table = document.createElement("table");
  table.className = "kpi-children";
  // The unit's workload (GET /v1/workload), shown when it arrives: it never delays the figures above.
  const workloadLine = cell("p", "", "kpi-workload");
  workloadLine.id = "kpi-workload";
  el.append(heading, windowText, cards, workloadLine);
  childrenEl.append(childTitle, table);

  function show(kpi) {
    workloadLine.textContent = "";
    heading.textContent = `${kpi.name} 指标`;
    windowText.textContent = kpi.window ? windowLabel(kpi.window) : "";
    cards.replaceChildren();
    for (const [key, label, kind] of FIGURES) {
      const box = document.createElement("div");
      box.className = "kpi";
      box.dataset.figure = key;
      const value = cell("dd", formatFigure(kpi.figures[key], kind), "value");
      box.append(cell("dt", label), value);
      const seed = kpi.seed && kpi.seed[key];
      if (seed !== undefined && seed !== null) {
        const beside = cell("dd", `东莞实际 ${formatFigure(seed, "rate")}`, "seed");
        beside.title = "种子数据中的全市公布值";
        box.appendChild(beside);
      }
      if (key === "overdue_tasks" && kpi.figures[key] > 0) { box.classList.add("alert"); }
      cards.appendChild(box);
    }
    const children = kpi.children || [];
    childTitle.textContent = children.length ? `下级${LEVEL_NAMES[children[0].level] || ""}（${children.length}）` : "";
    table.replaceChildren();
    if (!children.length) { return; }
    const head = document.createElement("tr");
    head.append(cell("th", "名称"), ...CHILD_COLUMNS.map(([, label]) => cell("th", label)));
    const thead = document.createElement("thead");
    thead.appendChild(head);
    const tbody = document.createElement("tbody");
    for (const child of children) {
      const row = document.createElement("tr");
      row.dataset.level = child.level;
      row.dataset.code = child.code;
      row.tabIndex = 0;
      row.title = `进入${child.name}`;
      row.append(cell("td", child.name), ...CHILD_COLUMNS.map(([key, , kind]) => cell("td", formatFigure(child.figures[key], kind), "num")));
      row.addEventListener("click", () => onChild(child));
      row.addEventListener("keydown", (event) => { if (event.key === "Enter") { onChild(child); } });
      tbody.appendChild(row);
    }
    table.append(thead, tbody);
  }

  /** The workload line of the unit in view: hours a month, workers, hours per worker, recommended workers. */
  function workload(w) {
    const perWorker = w.hours_per_worker === null ? "—" : w.hours_per_worker.toFixed(1);
    workloadLine.textContent = `工作量：每月 ${w.hours.toFixed(1)} 小时 · 网格员 ${w.workers} 人 · ` +
      `每人 ${perWorker} 小时/月 · 建议 ${w.recommended_workers} 人`;
    workloadLine.title = w.items.filter((i) => i.hours > 0).map((i) => `${i.label_zh} ${i.hours.toFixed(1)} 小时`).join("\n");
  }

  function clear(message) {
    workloadLine.textContent = "";
    heading.textContent = "指标";
    windowText.textContent = message || "";
    cards.replaceChildren();
    childTitle.textContent = "";
    table.replaceChildren();
  }

  return { show, clear, workload };
}
