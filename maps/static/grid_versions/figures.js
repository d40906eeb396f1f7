/**
 * grid_versions/figures.js: the figures of a draft before → after as two tables — the area's summary (largest
 * deviation from the mean workload per worker, worst Polsby-Popper, grids, workers, share of addresses kept, codes
 * kept/new/retired) and one row per grid (workload per worker in hours a month, deviation, workers, PP, addresses).
 * The figures are planning.redesign.Figures as JSON (GET /v1/grid-versions/{id}).
 */

import { fixed, percent, signedPercent } from "./labels.js";

// Hours a month: one decimal, two below 10 hours (a quiet grid's figures would all read 0.1 otherwise).
const hours = (value) => fixed(value, Math.abs(value) < 10 ? 2 : 1);
const sum = (rows, key) => rows.reduce((total, row) => total + (Number(row[key]) || 0), 0);

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) { td.className = className; }
  return td;
}

function arrow(before, after) {
  return `${before} → ${after}`;
}

/** The rows of the summary table: [label, before, after] in Chinese. */
export function summaryRows(figures) {
  const before = figures.grids_before || [];
  const after = figures.grids_after || [];
  const meanBefore = sum(before, "hours") / Math.max(1, sum(before, "workers"));
  const meanAfter = sum(after, "hours") / Math.max(1, sum(after, "workers"));
  return [
    ["网格数", String(before.length), String(after.length)],
    ["网格员", String(sum(before, "workers")), String(sum(after, "workers"))],
    ["平均每人工作量（小时/月）", hours(meanBefore), hours(meanAfter)],
    ["最大偏离平均", percent(figures.max_deviation_before), percent(figures.max_deviation_after)],
    ["最差紧凑度（Polsby-Popper）", fixed(figures.worst_pp_before, 3), fixed(figures.worst_pp_after, 3)],
    ["地址留在原网格", "—", percent(figures.share_addresses_kept)],
    ["调整的地址", "—", Number.isFinite(figures.addresses_moved) ? String(figures.addresses_moved) : "—"],
    ["工作量均衡", "—", figures.balanced ? "是" : "否"],
  ];
}

/** Fill the summary table body and the list of codes kept, new and retired. */
export function drawSummary(tbody, codesList, figures) {
  tbody.replaceChildren();
  for (const [label, before, after] of summaryRows(figures)) {
    const tr = document.createElement("tr");
    tr.append(cell(label), cell(before), cell(after));
    tbody.append(tr);
  }
  codesList.replaceChildren();
  for (const [label, codes] of [
    ["保留编码", figures.codes_kept], ["新增编码", figures.codes_new], ["停用编码", figures.codes_retired],
  ]) {
    const li = document.createElement("li");
    const list = codes || [];
    li.textContent = `${label}（${list.length}）：${list.length ? list.join("、") : "无"}`;
    codesList.append(li);
  }
}

/** One row per grid code of before or after: {code, before, after, locked, state: kept|new|retired}. */
export function gridRows(figures, lockedCodes) {
  const before = new Map((figures.grids_before || []).map((g) => [g.code, g]));
  const after = new Map((figures.grids_after || []).map((g) => [g.code, g]));
  const codes = [...new Set([...before.keys(), ...after.keys()])].sort();
  return codes.map((code) => ({
    code,
    before: before.get(code) || null,
    after: after.get(code) || null,
    locked: lockedCodes.includes(code),
    state: before.has(code) && after.has(code) ? "kept" : after.has(code) ? "new" : "retired",
  }));
}

/** Fill the per-grid table; a deviation beyond the tolerance is marked. */
export function drawGrids(tbody, figures, lockedCodes, tolerance) {
  tbody.replaceChildren();
  const pair = (row, key, format) => arrow(row.before ? format(row.before[key]) : "—", row.after ? format(row.after[key]) : "—");
  for (const row of gridRows(figures, lockedCodes)) {
    const tr = document.createElement("tr");
    tr.dataset.code = row.code;
    tr.className = [row.locked ? "locked" : "", row.state === "kept" ? "" : row.state].filter(Boolean).join(" ");
    const deviation = row.after ? Number(row.after.deviation) : NaN;
    const verdict = Number.isFinite(deviation) ? (Math.abs(deviation) > tolerance + 1e-9 ? "over" : "ok") : "";
    tr.append(
      cell(row.code),
      cell(pair(row, "hours_per_worker", (v) => hours(Number(v)))),
      cell(pair(row, "deviation", (v) => signedPercent(Number(v))), verdict),
      cell(pair(row, "workers", (v) => String(v))),
      cell(pair(row, "polsby_popper", (v) => fixed(Number(v), 3))),
      cell(pair(row, "addresses", (v) => String(v))),
    );
    tbody.append(tr);
  }
}
