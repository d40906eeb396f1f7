/**
 * field/inspect.js: one task — its facts, its photos and its history — and 记录核查: the result (正常 / 有问题, or
 * 复查完成 after a notice: the moves a grid worker may make that the task allows now), a note, photos and the
 * browser's location, which the inspection needs as proof of presence (the server flags a point more than 200 m
 * from the entity). 提交 makes the transition once, then sends the photos one by one; a photo that fails can be
 * retried alone, and the transition is never repeated.
 */

import { getJson, postJson } from "../lib/api.js";
import { locator } from "./position.js";
import { beijingTime, deadlineBadge, taskTitle } from "./tasks.js";
import { checkChosen, showChosen, uploadAll } from "./uploads.js";

const $ = (id) => document.getElementById(id);
const MOVE_FAILURES_ZH = {
  stale_version: "任务刚被他人更新，已重新读取，请确认后再提交",
  invalid_transition: "任务当前的状态不允许这样办理",
  not_permitted: "您的角色不能这样办理任务",
  forbidden: "该任务不在您的范围内",
};

function moveFailure(error) {
  return MOVE_FAILURES_ZH[error.code] || error.message;
}

/**
 * The task view. `config` is the page's; `onChanged(task)` hears a task that changed (to refresh the list).
 * Returns {open(taskId), current(), outcome()}.
 */
export function taskView({ config, vocabulary, onChanged }) {
  const state = { task: null, sent: null, uploads: [], files: [], outcome: null };
  const where = locator($("inspect-locate"), $("inspect-position"));

  function fact(list, term, value) {
    if (value === null || value === undefined || value === "") { return; }
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    list.append(dt, dd);
  }

  function showFacts(task) {
    $("task-title").textContent = taskTitle(task, vocabulary);
    const facts = $("task-facts");
    facts.replaceChildren();
    const badge = deadlineBadge(task, new Date(config.now));
    fact(facts, "任务编号", task.id);
    fact(facts, "职责", vocabulary.label("duties", task.duty));
    fact(facts, "市场主体", task.entity_name);
    fact(facts, "统一社会信用代码", task.entity_uscc);
    fact(facts, "线索编号", task.clue_id);
    fact(facts, "状态", vocabulary.label("task_statuses", task.status));
    fact(facts, "期限", task.due_at ? `${beijingTime(task.due_at)}${badge ? `（${badge.label}）` : ""}` : "无");
    fact(facts, "推送时间", beijingTime(task.pushed_at));
    fact(facts, "网格", task.grid_code);
    if (task.flagged) { fact(facts, "提示", "核查位置曾超出主体 200 米，待查"); }
  }

  function showResults(task) {
    const options = $("result-options");
    options.replaceChildren();
    const offered = config.results.filter((r) => task.allowed.includes(r.value));
    offered.forEach((result, index) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "result";
      input.value = result.value;
      input.checked = index === 0;
      label.append(input, ` ${result.label}`);
      options.appendChild(label);
    });
    return offered.length > 0;
  }

  async function showPhotos(task) {
    const list = $("task-photos");
    const answer = await getJson(`/v1/tasks/${task.id}/photos`);
    list.replaceChildren();
    for (const photo of answer.items) {
      const li = document.createElement("li");
      const img = document.createElement("img");
      img.src = `/v1/task-photos/${photo.id}`;
      img.alt = photo.filename || `照片 ${photo.id}`;
      img.loading = "lazy";
      li.appendChild(img);
      list.appendChild(li);
    }
    $("task-photos-empty").hidden = answer.items.length > 0;
    return answer.items;
  }

  async function showHistory(task) {
    const list = $("task-history");
    const answer = await getJson(`/v1/tasks/${task.id}/history`);
    list.replaceChildren();
    for (const entry of answer.items) {
      const li = document.createElement("li");
      const from = entry.from_status ? `${vocabulary.label("task_statuses", entry.from_status)} → ` : "";
      const note = entry.note ? `：${entry.note}` : "";
      const distance = entry.distance_m !== null && entry.distance_m !== undefined
        ? `（距主体 ${Math.round(entry.distance_m)} 米${entry.flagged ? "，待查" : ""}）` : "";
      li.textContent = `${beijingTime(entry.at)} ${from}${vocabulary.label("task_statuses", entry.to_status)}${distance}${note}`;
      list.appendChild(li);
    }
  }

  function resetForm() {
    state.sent = null;
    state.uploads = [];
    state.files = [];
    state.outcome = null;
    delete document.body.dataset.inspection;
    $("inspect-note").value = "";
    $("inspect-photos").value = "";
    $("inspect-chosen").replaceChildren();
    $("inspect-uploads").replaceChildren();
    where.reset();
    message("");
    $("move-message").textContent = "";
    $("inspect-send").disabled = false;
    $("inspect-send").textContent = "提交核查";
    for (const el of $("inspect-form").querySelectorAll("input, textarea")) { el.disabled = false; }
  }

  function message(text, kind = "") {
    const el = $("inspect-message");
    el.textContent = text;
    el.className = `message ${kind}`;
  }

  async function render(task) {
    state.task = task;
    showFacts(task);
    const mayInspect = config.canInspect && showResults(task);
    $("inspect-form").hidden = !mayInspect;
    showMoves(task);
    document.body.dataset.task = String(task.id);
    await Promise.all([showPhotos(task), showHistory(task)]);
  }

  async function open(taskId) {
    resetForm();
    const task = await getJson(`/v1/tasks/${taskId}`);
    await render(task);
    if (!$("inspect-form").hidden) { where.locate(); }
    return task;
  }

  function finish(items) {
    state.uploads = items;
    const failed = items.filter((i) => i.state === "failed");
    const pending = items.some((i) => i.state === "waiting" || i.state === "sending");
    if (pending) { return; }
    const flagged = state.sent && state.sent.flagged ? "（位置距主体超过 200 米，已标记待查）" : "";
    if (failed.length) {
      state.outcome = "partial";
      message(`核查已记录${flagged}；${failed.length} 张照片未上传：${failed.map((f) => f.name).join("、")}，请点“重试”`, "warning");
    } else {
      state.outcome = "done";
      message(`核查已记录${flagged}${items.length ? `，${items.length} 张照片已上传` : ""}`, "done");
    }
    document.body.dataset.inspection = state.outcome;
    showPhotos(state.sent).catch(() => {});
  }

  $("inspect-photos").addEventListener("change", (event) => {
    const { files, problems } = checkChosen(event.target.files, { maxPhotos: config.maxPhotos, maxBytes: config.maxPhotoBytes });
    state.files = problems.length ? [] : files;
    showChosen($("inspect-chosen"), files);
    message(problems.join("；"), problems.length ? "error" : "");
  });

  $("inspect-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (state.sent || !state.task) { return; }
    const position = where.state.position;
    if (!position) {
      message("尚未获取当前位置：核查须附现场位置作为到场证明。请点“获取当前位置”，并允许本页面使用位置信息。", "error");
      return;
    }
    const chosen = document.querySelector("input[name=result]:checked");
    if (!chosen) { message("请选择核查结果", "error"); return; }
    if ($("inspect-photos").files.length && !state.files.length) {
      message("所选照片不符合要求，请重新选择", "error");
      return;
    }
    const send = $("inspect-send");
    send.disabled = true;
    message("正在提交核查…");
    const note = $("inspect-note").value.trim();
    try {
      state.sent = await postJson(`/v1/tasks/${state.task.id}/transitions`, {
        to: chosen.value, version: state.task.version, note: note || null, lon: position.lon, lat: position.lat,
      });
    } catch (error) {
      send.disabled = false;
      message(`提交失败：${moveFailure(error)}`, "error");
      if (error.code === "stale_version") { await render(await getJson(`/v1/tasks/${state.task.id}`)); }
      return;
    }
    for (const el of $("inspect-form").querySelectorAll("input, textarea")) { el.disabled = true; }
    send.textContent = "核查已提交";
    state.task = state.sent;
    showFacts(state.sent);
    showMoves(state.sent);
    showHistory(state.sent).catch(() => {});
    onChanged(state.sent);
    if (state.files.length) { message("核查已记录，正在上传照片…"); }
    const items = await uploadAll(`/v1/tasks/${state.task.id}/photos`, state.files, $("inspect-uploads"), finish);
    finish(items);
  });

  async function makeMove(target) {
    const el = $("move-message");
    el.className = "message";
    el.textContent = "正在办理…";
    try {
      const task = await postJson(`/v1/tasks/${state.task.id}/transitions`, { to: target, version: state.task.version });
      onChanged(task);
      await render(task);
      el.className = "message done";
      el.textContent = `已办理：${vocabulary.label("task_statuses", task.status)}`;
    } catch (error) {
      el.className = "message error";
      el.textContent = `办理失败：${moveFailure(error)}`;
      if (error.code === "stale_version") { await render(await getJson(`/v1/tasks/${state.task.id}`)); }
    }
  }

  /** The buttons of the other moves the role may make that the task allows now (领取, 下达整改通知, 上报, 办结). */
  function showMoves(task) {
    const box = $("task-moves");
    box.replaceChildren();
    const mine = config.workerId === null || task.worker_id === null || task.worker_id === config.workerId;
    for (const move of config.moves) {
      if (!task.allowed.includes(move.value)) { continue; }
      if (move.value === "assigned" ? task.worker_id !== null : !mine) { continue; }
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.move = move.value;
      button.textContent = move.label;
      button.addEventListener("click", () => { makeMove(move.value); });
      box.appendChild(button);
    }
    box.hidden = box.children.length === 0;
  }

  return {
    open,
    current: () => state.task,
    /** What the last inspection did: {task (after the move), uploads, outcome}. */
    outcome: () => ({ task: state.sent, uploads: state.uploads, outcome: state.outcome }),
  };
}
