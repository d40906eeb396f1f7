/**
 * dashboard/lists/common.js: what the lists share — building elements with text only (no HTML from data), the
 * view's filters as query parameters, Chinese labels for times, holders and actors, a CSV export link, and a
 * "more" button for the API's keyset pages.
 */

/**
 * A new element: `props` sets attributes (`className`, `dataset`, `text`, `on<Event>` handlers, `hidden`…),
 * `children` are nodes or strings (strings become text nodes).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) { continue; }
    if (key === "className") { el.className = value; } else if (key === "text") { el.textContent = String(value); } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) { continue; }
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const TIME = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  hour12: false,
});

/** An ISO instant as Beijing time, "2026-12-01 10:00" ("" for none). */
export function formatTime(iso) {
  if (!iso) { return ""; }
  const parts = Object.fromEntries(TIME.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

/** The filter of a view for the task and clue lists: {town}, {community}, {grid} or nothing for the city. */
export function viewFilter(view) {
  if (!view || !view.code) { return {}; }
  if (view.level === "town" || view.level === "community" || view.level === "grid") { return { [view.level]: view.code }; }
  return {};
}

/** URLSearchParams of the non-empty values of `params`. */
export function query(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "" && value !== false) { out.set(key, String(value)); }
  }
  return out;
}

/** Whether a place (town, community, grid codes of a live event or row) lies inside the view. */
export function inView(view, place) {
  if (!view || !view.code || view.level === "city" || view.level === "department") { return true; }
  const code = { town: place.town_code, community: place.community_code, grid: place.grid_code }[view.level];
  if (code) { return code === view.code; }
  const grid = place.grid_code || "";
  if (view.level === "town") { return Boolean(grid) && grid.slice(0, 9) === view.code.slice(0, 9); }
  return Boolean(grid) && grid.startsWith(view.code);
}

/** A link that downloads a CSV export of the list as shown (L's endpoints take the list's own filters). */
export function csvLink(label = "导出CSV") {
  const link = h("a", { className: "lists-csv", href: "#", download: "", text: label, role: "button" });
  return {
    el: link,
    /** Point the link at `path` with `params` (a URLSearchParams). */
    set(path, params) {
      const q = params.toString();
      link.href = q ? `${path}?${q}` : path;
    },
  };
}

/** The Chinese words for a holder string (worker:<id>, grid:<code>, community:<code>, department:<codes>). */
export function holderLabel(holder, { workerName, departments } = {}) {
  if (!holder) { return "无"; }
  const [kind, rest = ""] = holder.split(/:(.*)/s);
  if (kind === "worker") { return workerName ? `网格员 ${workerName}（${rest}）` : `网格员 ${rest}`; }
  if (kind === "grid") { return `网格 ${rest}（网格待办队列）`; }
  if (kind === "community") { return `村（社区）${rest}`; }
  if (kind === "department") { return `部门：${departmentNames(rest, departments)}`; }
  return holder;
}

/** Comma-separated department codes as their Chinese names. */
export function departmentNames(codes, departments) {
  const list = Array.isArray(codes) ? codes : String(codes || "").split(",").filter(Boolean);
  return list.map((code) => (departments && departments.get(code)) || code).join("、") || "无";
}

/** Who did it, in words: "系统", "模拟数据（sim:…）", "账号 …", "接口密钥 …". */
export function actorLabel(actor) {
  if (!actor) { return ""; }
  if (actor === "system") { return "系统"; }
  if (actor.startsWith("sim:") || actor === "sim") { return `模拟数据（${actor}）`; }
  if (actor.startsWith("user:")) { return `账号 ${actor.slice(5)}`; }
  if (actor.startsWith("key:")) { return `接口密钥 ${actor.slice(4)}`; }
  return actor;
}

/** A "加载更多" button that calls `more()` and hides itself when there is no next page. */
export function moreButton(more) {
  const button = h("button", { type: "button", className: "lists-more", text: "加载更多", hidden: true });
  button.addEventListener("click", () => {
    button.disabled = true;
    Promise.resolve(more()).finally(() => { button.disabled = false; });
  });
  return {
    el: button,
    /** Show the button when a next page exists. */
    show(hasNext) { button.hidden = !hasNext; },
  };
}

/** Mark a row as new (a live arrival) for a few seconds. */
export function flash(row) {
  row.classList.add("lists-new");
  setTimeout(() => row.classList.remove("lists-new"), 6000);
}

/** A select with a first "all" option and `options` [{value, label}]. */
export function selectOf(name, allLabel, options) {
  const select = h("select", { name, "aria-label": allLabel });
  select.append(h("option", { value: "", text: allLabel }));
  for (const { value, label } of options) { select.append(h("option", { value, text: label })); }
  return select;
}

/** The vocabulary's terms as select options. */
export function termsOf(vocab, name) {
  const terms = (vocab && vocab.raw && vocab.raw[name]) || [];
  return terms.map((t) => ({ value: t.value, label: t.label }));
}

/** A message line of a pane (error in red, done in green). */
export function messageLine() {
  const el = h("p", { className: "lists-message", role: "status" });
  return {
    el,
    /** Show `text` as `kind` ("", "error", "done"). */
    say(text, kind = "") {
      el.textContent = text || "";
      el.className = `lists-message ${kind}`;
    },
  };
}

// The notes the system itself writes into the audit trail (supervision/), in Chinese; people's notes stay as typed.
const SYSTEM_NOTES = [
  [/^assigned to worker (\d+)$/, "分派给网格员 $1"],
  [/^no worker of the grid has room: waiting in the grid's queue$/, "网格内网格员已满，在网格队列中等待"],
  [/^a worker of the grid has room now$/, "网格内有网格员空出，任务已派出"],
  [/^check the new address$/, "核查新地址"],
  [/^needs (.+)$/, "需要：$1"],
  [/^annual report for (\d+) not filed$/, "$1 年度报告未报送"],
  [/^clue: (.+)$/, "线索：$1"],
  [/^deregistered \(event (.+)\)$/, "已注销（登记事件 $1）"],
  [/^address changed to (.+) \(event (.+)\)$/, "地址变更为 $1（登记事件 $2）"],
  [/^reassigned from worker (\d+): worker left$/, "由网格员 $1 改派：网格员离岗"],
  [/^reassigned from worker (\d+): worker moved to grid (\d+)$/, "由网格员 $1 改派：网格员调往网格 $2"],
  [/^reassigned from worker (\d+): (.+)$/, "由网格员 $1 改派：$2"],
  [/^assigned in the new grid (\d+)$/, "在新网格 $1 分派"],
  [/^moved to grid (\d+): (.*)$/, "调往网格 $1：$2"],
];

/** An audit note in Chinese: the system's own notes translated, anything else as written. */
export function noteZh(note) {
  const text = String(note || "");
  for (const [pattern, zh] of SYSTEM_NOTES) {
    if (pattern.test(text)) { return text.replace(pattern, zh); }
  }
  return text;
}
