/**
 * staffing/table.js: the plan as the town leader reads it — the totals, the moves (who goes from where to where,
 * how far, how many open tasks they hand over) and every grid (hours per month, workers now → target, hours per
 * worker before → after). Everything is set as text: no value of the API is parsed as HTML.
 */

const number = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 1 });

/** A figure for people: one decimal at most, "—" when there is none. */
export function figure(value) {
  return value === null || value === undefined ? "—" : number.format(value);
}

/** A grid's state against its recommendation: "short", "surplus" or "ok" (the map colours it the same way). */
export function staffingState(grid, count = grid.workers) {
  if (count < grid.recommended) { return "short"; }
  if (count > grid.recommended) { return "surplus"; }
  return "ok";
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

/** The totals as a definition list. */
export function renderTotals(element, totals) {
  const items = [
    ["网格数", `${totals.grids}`],
    ["在岗网格员", `${totals.workers} 人（建议共 ${totals.recommended} 人）`],
    ["总工作量", `${figure(totals.hours)} 小时/月`],
    ["人数少于建议的网格", `${totals.understaffed_before} → ${totals.understaffed_after}`],
    ["人数多于建议的网格", `${totals.overstaffed_before} → ${totals.overstaffed_after}`],
    ["调动人数", `${totals.moves} 人，合计 ${figure(totals.distance_m / 1000)} 公里`],
    ["需移交的在办任务", `${totals.open_tasks_handed_over} 件`],
    ["调整后仍缺", `${totals.shortfall_after} 人${totals.shortfall_after > 0 ? "（本范围人手不足，需增配）" : ""}`],
  ];
  element.replaceChildren();
  for (const [term, value] of items) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    element.append(dt, dd);
  }
}

/** One row per move. */
export function renderMoves(tbody, moves, gridName) {
  tbody.replaceChildren();
  for (const move of moves) {
    const row = document.createElement("tr");
    row.dataset.worker = String(move.worker_id);
    cell(row, `${move.worker_name}（${move.worker_id}）`);
    cell(row, gridName(move.from_grid));
    cell(row, gridName(move.to_grid));
    cell(row, figure(move.distance_m));
    cell(row, String(move.open_tasks));
    tbody.appendChild(row);
  }
}

/** One row per grid; `onPick(code)` when a row is clicked (the map flies there). */
export function renderGrids(tbody, grids, onPick) {
  tbody.replaceChildren();
  for (const grid of grids) {
    const row = document.createElement("tr");
    row.dataset.code = grid.code;
    row.classList.add(staffingState(grid));
    if (grid.after !== grid.workers) { row.classList.add("changes"); }
    const name = cell(row, grid.name || grid.code);
    name.title = `${grid.code} · ${grid.community_name}`;
    cell(row, figure(grid.hours));
    cell(row, grid.after === grid.workers ? `${grid.workers}` : `${grid.workers} → ${grid.after}`);
    // Under a town-wide shortage the target is below the recommendation: say so, so the gap is not read as a need.
    cell(row, grid.short_by > 0 ? `${grid.recommended} · 缺 ${grid.short_by} 人（全镇人手不足）` : String(grid.recommended));
    const before = figure(grid.hours_per_worker_before);
    const after = figure(grid.hours_per_worker_after);
    cell(row, before === after ? before : `${before} → ${after}`);
    row.addEventListener("click", () => onPick(grid.code));
    tbody.appendChild(row);
  }
}

const when = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});

/** The plans applied before (GET /v1/staffing/batches): when, who, how many workers, and who went where. */
export function renderBatches(list, empty, batches, gridName) {
  list.replaceChildren();
  empty.hidden = batches.length > 0;
  for (const batch of batches) {
    const item = document.createElement("li");
    item.dataset.batch = String(batch.id);
    const head = document.createElement("div");
    head.textContent = `批次 ${batch.id} · ${when.format(new Date(batch.at))} · 调动 ${batch.moves.length} 人`;
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = `${batch.actor}：${batch.reason}`;
    const moves = document.createElement("div");
    moves.textContent = batch.moves
      .map((m) => `${m.worker_name || m.worker_id} ${gridName(m.from_grid)} → ${gridName(m.to_grid)}`)
      .join("；");
    item.append(head, who, moves);
    list.appendChild(item);
  }
}
