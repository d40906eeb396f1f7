/**
 * field/main.js: the grid worker's phone page (/field) — 我的任务 (the list by deadline and a small map) with one
 * task's view and 记录核查, and 上报线索. A role that may not move tasks sees the tasks with a read-only note.
 *
 * Test hook (window.gridgov.page):
 *   tasks()        → the ids of the listed tasks, in the order shown (by deadline)
 *   task()         → the task shown, or null
 *   inspection()   → {task (after the move), uploads [{name, state, photo, reason}], outcome: "done"|"partial"|null}
 *   clue()         → {clue, uploads, outcome} of the last clue report
 *   map()          → {grids, tasks, tileTasks, position, rendered}: what the map shows (rendered: all drawn)
 *   containerPoint(lon, lat) → {x, y}: where a WGS84 point lies in the map element (to tap it as a user would)
 * The body's data-tasks is set when the list has arrived, data-task to the id of the task shown, data-inspection
 * and data-clue to "done" or "partial" when a send has finished.
 */

import { readPageConfig } from "../lib/config.js";
import { setStatus } from "../lib/status.js";
import { publishPage } from "../lib/testhook.js";
import { loadVocabulary } from "../lib/vocab.js";
import { clueForm } from "./clue.js";
import { taskView } from "./inspect.js";
import { createFieldMap } from "./map.js";
import { currentPosition, describePosition } from "./position.js";
import { loadMyTasks, renderTaskList } from "./tasks.js";

const config = readPageConfig();
const $ = (id) => document.getElementById(id);
const state = { tasks: [], view: "tasks" };

function show(view) {
  state.view = view;
  $("tasks-view").hidden = view !== "tasks";
  $("task-view").hidden = view !== "task";
  $("clue-view").hidden = view !== "clue";
  if (view !== "task") { delete document.body.dataset.task; }
  $("tab-tasks").setAttribute("aria-pressed", String(view !== "clue"));
  $("tab-clue").setAttribute("aria-pressed", String(view === "clue"));
  window.scrollTo(0, 0);
}

async function start() {
  const vocabulary = await loadVocabulary();
  const fieldMap = createFieldMap($("field-map"), config.bounds);
  const tasks = taskView({ config, vocabulary, onChanged: () => { refresh().catch(showFailure); } });
  const clues = config.canReport ? clueForm({ config, onReported: () => { refresh().catch(showFailure); } }) : null;

  publishPage({
    tasks: () => state.tasks.map((t) => t.id),
    task: () => (state.view === "task" ? tasks.current() : null),
    inspection: () => tasks.outcome(),
    clue: () => (clues ? clues.outcome() : null),
    map: () => fieldMap.summary(),
    containerPoint: (lon, lat) => fieldMap.containerPoint(lon, lat),
  });

  if (!config.canInspect) {
    const note = $("readonly-note");
    note.textContent = "您的账号只能查看任务，不能在此记录核查；核查由网格员在现场办理。";
    note.hidden = false;
  }
  $("tab-clue").hidden = !clues;

  async function openTask(id) {
    show("task");
    setStatus("加载任务…");
    await tasks.open(id);
    setStatus(`任务 ${id}`);
  }

  async function refresh() {
    const { tasks: listed, truncated } = await loadMyTasks(config.workerId, config.fieldStatuses);
    state.tasks = listed;
    const now = new Date(config.now);
    renderTaskList($("task-list"), state.tasks, { vocabulary, now, onOpen: (task) => { openTask(task.id).catch(showFailure); } });
    $("task-empty").hidden = state.tasks.length > 0;
    const overdue = state.tasks.filter((t) => t.overdue).length;
    $("task-count").textContent = `（${state.tasks.length} 项${overdue ? `，逾期 ${overdue} 项` : ""}${truncated ? "，仅列出最近推送的" : ""}）`;
    setStatus(`待办 ${state.tasks.length} 项`, { warning: overdue > 0 });
    document.body.dataset.tasks = String(state.tasks.length);
    fieldMap.showTasks(state.tasks.map((t) => t.id)).catch(() => {});
    return state.tasks;
  }

  $("tab-tasks").addEventListener("click", () => show("tasks"));
  $("tab-clue").addEventListener("click", () => {
    show("clue");
    if (clues && !clues.position()) { clues.locate(); }
  });
  $("back").addEventListener("click", () => show("tasks"));
  fieldMap.onTask((id) => { openTask(id).catch(showFailure); });

  const first = await refresh();
  const grids = [...new Set(first.map((t) => t.grid_code))];
  fieldMap.showGrids(grids).catch(() => {});
  currentPosition().then((position) => {
    $("position-line").textContent = `我的位置：${describePosition(position)}`;
    fieldMap.showPosition(position);
  }).catch((error) => { $("position-line").textContent = `我的位置：${error.message}`; });
}

function showFailure(error) {
  setStatus(`出错了：${error.message}`, { warning: true });
}

start().catch(showFailure);
