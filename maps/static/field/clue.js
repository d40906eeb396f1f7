/**
 * field/clue.js: 上报线索 — the industry (the clue industries the server routes), a description, the severity, the
 * browser's location and photos: POST /v1/clues once, then POST /v1/clues/{id}/photos one photo at a time, each
 * retried alone when it fails.
 */

import { postJson } from "../lib/api.js";
import { locator } from "./position.js";
import { checkChosen, showChosen, uploadAll } from "./uploads.js";

const $ = (id) => document.getElementById(id);
const CLUE_FAILURES_ZH = {
  forbidden: "该位置不在您负责的网格内",
  invalid_request: "上报内容无效",
};

/** The clue form; `onReported(clue)` hears a clue the server stored. Returns {locate(), outcome()}. */
export function clueForm({ config, onReported = () => {} }) {
  const state = { files: [], clue: null, uploads: [], outcome: null };
  const where = locator($("clue-locate"), $("clue-position"));
  const select = $("clue-industry");
  for (const industry of config.industries) {
    const option = document.createElement("option");
    option.value = industry;
    option.textContent = industry;
    select.appendChild(option);
  }

  function message(text, kind = "") {
    const el = $("clue-message");
    el.textContent = text;
    el.className = `message ${kind}`;
  }

  function reset() {
    state.files = [];
    state.clue = null;
    $("clue-form").reset();
    $("clue-chosen").replaceChildren();
    $("clue-send").disabled = false;
    $("clue-send").textContent = "上报";
  }

  function finish(items) {
    state.uploads = items;
    if (items.some((i) => i.state === "waiting" || i.state === "sending")) { return; }
    const failed = items.filter((i) => i.state === "failed");
    const clue = state.clue;
    const head = `线索已上报（编号 ${clue.id}，网格 ${clue.grid_code}）`;
    if (failed.length) {
      state.outcome = "partial";
      message(`${head}；${failed.length} 张照片未上传：${failed.map((f) => f.name).join("、")}，请点“重试”`, "warning");
    } else {
      state.outcome = "done";
      message(`${head}${items.length ? `，${items.length} 张照片已上传` : ""}`, "done");
    }
    document.body.dataset.clue = state.outcome;
  }

  $("clue-photos").addEventListener("change", (event) => {
    const { files, problems } = checkChosen(event.target.files, { maxPhotos: config.maxPhotos, maxBytes: config.maxPhotoBytes });
    state.files = problems.length ? [] : files;
    showChosen($("clue-chosen"), files);
    message(problems.join("；"), problems.length ? "error" : "");
  });

  $("clue-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (state.clue && state.outcome === null) { return; }
    if (state.clue) { reset(); $("clue-uploads").replaceChildren(); message(""); return; }
    if (!select.value) { message("请选择行业", "error"); return; }
    if ($("clue-photos").files.length && !state.files.length) { message("所选照片不符合要求，请重新选择", "error"); return; }
    const position = where.state.position;
    if (!position) {
      message("尚未获取当前位置：线索须附现场位置。请点“获取当前位置”，并允许本页面使用位置信息。", "error");
      return;
    }
    const send = $("clue-send");
    send.disabled = true;
    message("正在上报…");
    const severity = document.querySelector("input[name=severity]:checked").value;
    try {
      state.clue = await postJson("/v1/clues", {
        industry: select.value, description: $("clue-description").value.trim(), severity,
        lon: position.lon, lat: position.lat,
      });
    } catch (error) {
      send.disabled = false;
      message(`上报失败：${CLUE_FAILURES_ZH[error.code] || error.message}`, "error");
      return;
    }
    state.outcome = null;
    onReported(state.clue);
    const items = await uploadAll(`/v1/clues/${state.clue.id}/photos`, state.files, $("clue-uploads"), finish);
    finish(items);
    send.disabled = false;
    send.textContent = "再报一条";
  });

  return {
    locate: () => where.locate(),
    position: () => where.state.position,
    outcome: () => ({ clue: state.clue, uploads: state.uploads, outcome: state.outcome }),
  };
}
