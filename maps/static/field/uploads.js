/**
 * field/uploads.js: photos chosen on the phone and sent one request per photo (multipart field `file`), each with
 * its own progress line; a photo that fails says why, in Chinese, and has a 重试 button that sends it alone again.
 *
 * The thing the photos belong to (a task after its inspection was recorded, a clue after it was reported) is
 * created once; only the photos are retried.
 */

const CJK = /[\u3400-\u9fff]/;

/** Chinese words for what the server answered about one photo (its detail is English for the API's clients). */
export function photoFailure(status, body) {
  const detail = body && typeof body.detail === "string" ? body.detail : "";
  if (CJK.test(detail)) { return detail; }
  if (status === 0) { return "网络中断，照片未送达"; }
  if (status === 401) { return "登录已失效，请重新登录后重试"; }
  if (status === 403) { return "无权为该任务上传照片"; }
  if (status === 404) { return "任务或线索已不存在"; }
  if (status === 413) { return "照片太大"; }
  const rules = [
    [/empty/, "照片是空文件"],
    [/limit of|larger than|pixels/, "照片太大（单张不超过 8 MB）"],
    [/at most/, "照片数量已达上限（每项最多 9 张）"],
    [/as declared/, "文件内容与其类型不符"],
    [/not a readable image|images are not accepted/, "不是可识别的照片（请用 JPEG、PNG 或 WebP）"],
    [/closed|cancelled|takes no more/, "该任务已结束，不能再上传照片"],
  ];
  for (const [pattern, words] of rules) {
    if (pattern.test(detail)) { return words; }
  }
  return `上传失败（HTTP ${status}）`;
}

/** POST one file to `url` as multipart `file`; resolves {ok, status, body}; `onProgress(fraction)` as it goes. */
export function sendPhoto(url, file, onProgress = () => {}) {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.withCredentials = true;
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) { onProgress(event.loaded / event.total); }
    });
    request.addEventListener("load", () => {
      let body;
      try { body = JSON.parse(request.responseText); } catch { body = null; }
      resolve({ ok: request.status >= 200 && request.status < 300, status: request.status, body });
    });
    request.addEventListener("error", () => resolve({ ok: false, status: 0, body: null }));
    const form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    request.send(form);
  });
}

/** The files of an <input type=file> checked against the limits: {files, problems (Chinese)}. */
export function checkChosen(fileList, { maxPhotos, maxBytes }) {
  const files = Array.from(fileList || []);
  const problems = [];
  if (files.length > maxPhotos) { problems.push(`最多选择 ${maxPhotos} 张照片，已选 ${files.length} 张`); }
  for (const file of files) {
    if (file.size > maxBytes) { problems.push(`“${file.name}”超过 ${Math.round(maxBytes / 1048576)} MB`); }
    if (file.type && !file.type.startsWith("image/")) { problems.push(`“${file.name}”不是照片`); }
  }
  return { files, problems };
}

/** List the chosen files (name and size) in `listEl`. */
export function showChosen(listEl, files) {
  listEl.replaceChildren();
  for (const file of files) {
    const li = document.createElement("li");
    li.textContent = `${file.name}（${Math.max(1, Math.round(file.size / 1024))} KB）`;
    listEl.appendChild(li);
  }
}

/**
 * Upload `files` one by one to `url`, drawing one line per photo in `listEl`. Resolves with the list of
 * {name, state: "done"|"failed", photo, reason}; a failed line keeps a 重试 button, and `onChange(items)` hears
 * every change (a retry included).
 */
export async function uploadAll(url, files, listEl, onChange = () => {}) {
  listEl.replaceChildren();
  const items = files.map((file, index) => ({ index, name: file.name || `照片${index + 1}`, file, state: "waiting",
    photo: null, reason: null }));
  const lines = items.map((item) => {
    const li = document.createElement("li");
    li.dataset.index = String(item.index);
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = `照片 ${item.index + 1}：${item.name}`;
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = "等待上传";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry";
    retry.textContent = "重试";
    retry.hidden = true;
    retry.addEventListener("click", () => { send(item).then(() => onChange(snapshot())); });
    li.append(label, bar, state, retry);
    listEl.appendChild(li);
    return { li, bar, state, retry };
  });

  function snapshot() {
    return items.map(({ name, state, photo, reason }) => ({ name, state, photo, reason }));
  }

  async function send(item) {
    const line = lines[item.index];
    item.state = "sending";
    line.retry.hidden = true;
    line.li.className = "sending";
    line.state.textContent = "上传中 0%";
    const answer = await sendPhoto(url, item.file, (fraction) => {
      line.bar.value = fraction;
      line.state.textContent = `上传中 ${Math.round(fraction * 100)}%`;
    });
    if (answer.ok) {
      item.state = "done";
      item.photo = answer.body;
      item.reason = null;
      line.bar.value = 1;
      line.li.className = "done";
      line.state.textContent = "已上传";
    } else {
      item.state = "failed";
      item.reason = photoFailure(answer.status, answer.body);
      line.li.className = "failed";
      line.state.textContent = `上传失败：${item.reason}`;
      line.retry.hidden = false;
    }
  }

  for (const item of items) {
    await send(item);
    onChange(snapshot());
  }
  return snapshot();
}
