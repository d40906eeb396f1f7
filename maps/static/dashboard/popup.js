/**
 * dashboard/popup.js: what a click on a point of the map shows — an open task, a clue, an entity or a new
 * registration — as a small table in Chinese (labels from the vocabulary).
 */

function table(title, rows) {
  const box = document.createElement("div");
  box.className = "point-popup";
  const head = document.createElement("h3");
  head.textContent = title;
  const body = document.createElement("table");
  for (const [label, value] of rows) {
    if (value === undefined || value === null || value === "") { continue; }
    const row = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = label;
    const td = document.createElement("td");
    td.textContent = String(value);
    row.append(th, td);
    body.appendChild(row);
  }
  box.append(head, body);
  return box;
}

const when = (iso) => (iso ? String(iso).replace("T", " ").slice(0, 16) : "");
const truthy = (v) => v === true || v === "true";

/** The popup content of a clicked point `feature` (a MapLibre feature of one of the point layers). */
export function pointPopup(feature, vocabulary) {
  const p = feature.properties;
  const term = (name, value) => (vocabulary ? vocabulary.label(name, value) : value);
  switch (feature.layer.id) {
    case "tasks":
      return table(`任务 #${p.id}`, [
        ["职责", term("duties", p.duty)],
        ["状态", term("task_statuses", p.status)],
        ["期限", when(p.due_at)],
        ["是否逾期", truthy(p.overdue) ? "已逾期" : "未逾期"],
        ["市场主体", p.entity_name],
        ["网格", p.grid_code],
      ]);
    case "clues":
      return table(`线索 #${p.id}`, [
        ["行业", p.industry],
        ["严重程度", term("clue_severities", p.severity)],
        ["状态", term("clue_statuses", p.status)],
        ["来源", term("clue_sources", p.source)],
        ["上报时间", when(p.reported_at)],
        ["网格", p.grid_code],
      ]);
    case "registrations":
      return table("新登记", [["名称", p.name], ["地址", p.address], ["网格", p.grid_code], ["时间", when(p.at)]]);
    default:
      return table(p.name || "市场主体", [["统一社会信用代码", p.uscc], ["状态", p.status], ["网格", p.grid_code]]);
  }
}
