/**
 * field/tasks.js: 我的任务 — the worker's open field tasks (the states in which the grid's worker must act), by
 * deadline (the nearest first, those without one last), each with its duty and entity in Chinese and an 已逾期 /
 * 即将到期 badge. A grid worker sees the tasks assigned to them and those waiting unassigned in their grid's queue;
 * another role sees the field tasks of its scope.
 */

import { getJson } from "../lib/api.js";

const PAGE_SIZE = 500;
const MAX_PAGES = 4;
const TIME = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  hour12: false,
});

/** A moment of the API (ISO 8601) as Beijing time, e.g. "2026/12/14 17:30"; "" for none. */
export function beijingTime(iso) {
  return iso ? TIME.format(new Date(iso)) : "";
}

/** The deadline badge of a task at the platform's time `now`: {kind: "overdue"|"soon", label} or null. */
export function deadlineBadge(task, now) {
  if (task.overdue) { return { kind: "overdue", label: "已逾期" }; }
  if (task.warn_at && new Date(task.warn_at) <= now) { return { kind: "soon", label: "即将到期" }; }
  return null;
}

/** Tasks by deadline: the nearest first, tasks without a deadline last, then by id. */
export function byDeadline(tasks) {
  const key = (t) => (t.due_at ? new Date(t.due_at).getTime() : Number.POSITIVE_INFINITY);
  return [...tasks].sort((a, b) => key(a) - key(b) || a.id - b.id);
}

async function pagesOf(params, maxPages) {
  const found = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const query = new URLSearchParams({ ...params, limit: String(PAGE_SIZE) });
    if (cursor) { query.set("cursor", cursor); }
    const answer = await getJson(`/v1/tasks?${query}`);
    found.push(...answer.items);
    cursor = answer.next;
    if (!cursor) { break; }
  }
  return { found, more: Boolean(cursor) };
}

/**
 * The field tasks the page lists, by deadline: those in a state where the grid's worker must act (`statuses`). A
 * grid worker (`workerId`) gets theirs and their grid's unassigned queue; another role those of its scope, at most
 * PAGE_SIZE of each state. Resolves {tasks, truncated}.
 */
export async function loadMyTasks(workerId, statuses) {
  const mine = workerId !== null;
  const answers = await Promise.all(statuses.map((status) => {
    const params = { status };
    if (mine && status !== "pushed") { params.worker = String(workerId); }
    return pagesOf(params, mine ? MAX_PAGES : 1);
  }));
  const tasks = answers.flatMap((a) => a.found).filter((t) => !mine || t.worker_id === workerId || t.worker_id === null);
  return { tasks: byDeadline(tasks), truncated: answers.some((a) => a.more) };
}

/** The title of a task: its duty and its entity (or its clue), in Chinese. */
export function taskTitle(task, vocabulary) {
  const duty = vocabulary.label("duties", task.duty);
  const subject = task.entity_name || (task.clue_id ? `线索 ${task.clue_id}` : "");
  return subject ? `${duty}｜${subject}` : duty;
}

/** Draw the task list as large tappable cards; `onOpen(task)` hears a tap. */
export function renderTaskList(listEl, tasks, { vocabulary, now, onOpen }) {
  listEl.replaceChildren();
  for (const task of tasks) {
    const li = document.createElement("li");
    const card = document.createElement("button");
    card.type = "button";
    card.className = "task-card";
    card.dataset.id = String(task.id);
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = taskTitle(task, vocabulary);
    const meta = document.createElement("span");
    meta.className = "meta";
    const due = task.due_at ? `期限 ${beijingTime(task.due_at)}` : "无期限";
    meta.textContent = `${vocabulary.label("task_statuses", task.status)} · ${due}`;
    card.append(title, meta);
    const badge = deadlineBadge(task, now);
    if (badge) {
      const mark = document.createElement("span");
      mark.className = `badge ${badge.kind}`;
      mark.textContent = badge.label;
      card.appendChild(mark);
    }
    if (task.worker_id === null) {
      const queue = document.createElement("span");
      queue.className = "badge queue";
      queue.textContent = "待领取";
      card.appendChild(queue);
    }
    card.addEventListener("click", () => onOpen(task));
    li.appendChild(card);
    listEl.appendChild(li);
  }
}
