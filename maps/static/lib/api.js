/**
 * lib/api.js: the pages' client of this server's JSON API.
 *
 * Every error answer has one body, {"error": code, "detail": message, …} (api/errors.py). `getJson` and
 * `postJson` turn it into a thrown ApiError whose message is Chinese (the server's detail when it is Chinese
 * already, otherwise the code's Chinese name), keeping the code, status, detail and whole body for the page. A 401
 * (the session expired or was revoked) sends the browser to the login page, which brings it back here after
 * signing in.
 */

import { loginUrl } from "./url.js";

const MESSAGES_ZH = {
  unauthorized: "登录已失效，请重新登录",
  forbidden: "无权访问该范围",
  not_permitted: "无权执行该操作",
  not_found: "未找到所请求的数据",
  invalid_request: "请求无效",
  layer_too_large: "当前范围数据过多，请放大地图",
  payload_too_large: "请求内容过大",
  too_many_requests: "请求过于频繁，请稍后再试",
  database_unavailable: "数据库暂不可用，请稍后再试",
  export_unavailable: "导出功能暂不可用",
  internal_error: "服务器内部错误",
  already_resolved: "该条已处理",
  duplicate_address: "标准地址库中已有该地址",
  address_rejected: "地址未通过校验",
};
const CJK = /[\u3400-\u9fff]/;

/**
 * An error answer of the API: `code` and `detail` as the server sent them, `message` in Chinese, and the `body`
 * (a conflict's `address_id`, an input error's `field`…).
 */
export class ApiError extends Error {
  constructor(message, { status, code, detail, body }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
  }
}

function errorFrom(status, body) {
  const code = body && typeof body.error === "string" ? body.error : `http_${status}`;
  const detail = body ? body.detail : undefined;
  const message = typeof detail === "string" && CJK.test(detail) ? detail : MESSAGES_ZH[code] || `请求失败（HTTP ${status}）`;
  return new ApiError(message, { status, code, detail, body });
}

async function answer(response) {
  if (response.status === 401) {
    window.location.assign(loginUrl());
    throw errorFrom(401, null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (error.name === "AbortError" || response.ok) { throw error; }
  }
  if (!response.ok) { throw errorFrom(response.status, body); }
  return body;
}

/**
 * GET `url` and return its JSON body; an error answer throws ApiError, an abort throws the AbortError.
 * `accept` names the media type asked for (GeoJSON layers ask for application/geo+json).
 */
export async function getJson(url, { signal, accept = "application/json" } = {}) {
  return answer(await fetch(url, { credentials: "same-origin", headers: { Accept: accept }, signal }));
}

/** POST `body` as JSON to `url` and return the answer's JSON body; an error answer throws ApiError. */
export async function postJson(url, body) {
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  return answer(await fetch(url, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body) }));
}

/** GET `url` and return its body as text (a CSV, say); an error answer throws ApiError. */
export async function getText(url, { signal, accept = "text/plain" } = {}) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: accept }, signal });
  if (response.ok) { return response.text(); }
  return answer(response);
}

/** Save `blob` as a file called `filename` (the browser's download). */
export function saveBlob(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** GET `url` (a CSV export, say) and save the answer as `filename`; an error answer throws ApiError. */
export async function download(url, filename) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) { await answer(response); }
  saveBlob(await response.blob(), filename);
}

/**
 * A server-sent event stream at `url` (same origin, the session cookie) that reconnects on its own.
 * `events` names the event types to listen to; `onEvent(type, data, id)` gets each event's parsed JSON;
 * `onState(state)` hears "connecting", "open" and "retrying". Returns {close()}.
 * The browser's EventSource resends the last event id when it reconnects; after a closed stream a new one is
 * opened after `retryMs` with the last id in the query (`last_event_id`), which servers may read too.
 */
export function openEventStream(url, { events, onEvent, onState = () => {}, retryMs = 3000 }) {
  let source = null;
  let lastId = null;
  let closed = false;
  let timer = null;
  const connect = () => {
    if (closed) { return; }
    onState("connecting");
    const target = lastId === null ? url : `${url}${url.includes("?") ? "&" : "?"}last_event_id=${encodeURIComponent(lastId)}`;
    source = new EventSource(target, { withCredentials: true });
    source.onopen = () => onState("open");
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        onState("retrying");
        source.close();
        clearTimeout(timer);
        timer = setTimeout(connect, retryMs);
      } else {
        onState("retrying");
      }
    };
    for (const type of events) {
      source.addEventListener(type, (message) => {
        if (message.lastEventId) { lastId = message.lastEventId; }
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          return;
        }
        onEvent(type, data, message.lastEventId);
      });
    }
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (source) { source.close(); }
    },
  };
}
