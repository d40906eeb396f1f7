/**
 * dashboard/lists/review.js: the 待核 queue on the map — registrations whose address could not be placed
 * (GET /v1/review), those of the view. An item shows the typed address, the geocoder's reason and the candidate
 * standard addresses (GET /v1/review/{id}/proposal); a dispatcher resolves it (POST /v1/review/{id}/resolve) by
 * choosing a candidate ({address_id}) or by clicking the point on the map ({lon, lat}, ctx.map.pickPoint). The
 * resolved item leaves the list, and its tasks appear on the map and in the 任务 list.
 */

import { getJson, postJson } from "../../lib/api.js";
import { formatTime, h, messageLine } from "./common.js";

const LEVELS_ZH = { town: "镇街", community: "村（社区）", road: "道路", village: "自然村", compound: "小区", door: "门牌", building: "楼栋", room: "房间" };
// The geocoder's reasons (supervision/intake.py), in Chinese; the detail in brackets is kept as written.
const REASONS = [
  [/^ambiguous: several standard addresses fit/, "有多个标准地址符合，需人工确认"],
  [/^no standard address found/, "标准地址库中未找到该地址"],
  [/^matched only at (\w+) level/, (m) => `只匹配到${LEVELS_ZH[m[1]] || m[1]}一级`],
  [/^match confidence ([\d.]+) is below ([\d.]+)/, (m) => `匹配可信度 ${m[1]} 低于 ${m[2]}`],
  [/^the matched address lies in no grid/, "匹配到的地址不在任何网格内"],
  [/^address unusable/, "地址无法使用"],
];

// The geocoder's own words for what it found (address_library), in Chinese; anything else is kept as written.
const DETAILS = [
  [/not in the library: ([^;]+); answered at (\w+) level/, (m) => `标准地址库中没有“${m[1]}”，按${LEVELS_ZH[m[2]] || m[2]}一级作答`],
  [/not in the library: ([^;]+); answered with the address above it/, (m) => `标准地址库中没有“${m[1]}”，按上一级地址作答`],
  [/only the community could be identified/, () => "只能确定村（社区）"],
  [/only the town could be identified/, () => "只能确定镇街"],
  [/road found, no door number to place on it/, () => "找到道路，但没有门牌号可落点"],
  [/two held names fit the typed one equally well/, () => "两个库内名称同样符合"],
  [/no known place in Dongguan found in the address/, () => "地址中没有东莞已知的地名"],
  [/outside_dongguan: the address names another city/, () => "地址属于其他城市"],
  [/relative location '([^']+)': near, not at, this address/, (m) => `相对位置“${m[1]}”：在此地址附近，而非此处`],
];

function detailZh(detail) {
  let out = detail;
  for (const [pattern, zh] of DETAILS) { out = out.replace(pattern, (...m) => zh(m)); }
  return out;
}

// A resolution teaches the geocoder the typed text for the chosen address's community only (issue 17, finding 3).
const ALIAS_NOTE = "原文仅在本村（社区）作为该地址的别名使用；他人再次同样处理或指挥中心确认后才全市通用";

/** The geocoder's reason in Chinese, with its detail after it (in Chinese where the words are known). */
export function reasonZh(reason) {
  const text = String(reason || "");
  for (const [pattern, zh] of REASONS) {
    const m = text.match(pattern);
    if (m) {
      const head = typeof zh === "function" ? zh(m) : zh;
      const rest = text.slice(m[0].length).replace(/^[\s:：]+/, "").trim().replace(/^\(|\)$/g, "");
      return rest ? `${head}（${detailZh(rest)}）` : head;
    }
  }
  return detailZh(text) || "原因未知";
}

/** Whether a review item belongs to the view: its town, and its community where known. */
function itemInView(view, item) {
  if (!view || !view.code || view.level === "city") { return true; }
  const town = item.town_code;
  if (!town || town.slice(0, 9) !== view.code.slice(0, 9)) { return false; }
  const community = item.payload && item.payload.community_code;
  return view.level === "town" || !community || view.code.startsWith(community) || community.startsWith(view.code);
}

/** The 待核 pane. `deps`: {ctx, onResolved(result)}. */
export function createReviewList(deps) {
  const { ctx } = deps;
  const canResolve = new Set((ctx.me && ctx.me.capabilities) || []).has("review.resolve");
  const total = h("span", { className: "lists-total" });
  const csv = h("a", { className: "lists-csv", href: "/v1/review.csv", download: "", text: "导出CSV", role: "button" });
  const rows = h("ol", { className: "lists-rows", "aria-label": "待核登记" });
  const message = messageLine();
  const detail = h("section", { className: "review-detail", hidden: true, "aria-label": "待核登记处理" });
  const el = h("section", { className: "lists-pane", dataset: { pane: "review", loads: "0" } },
    h("div", { className: "lists-bar" }, total, csv), message.el, detail, rows);
  const state = { view: null, items: [], selected: null, proposal: null, point: null, marker: null, token: 0, result: null };

  function clearMarker() {
    if (state.marker) { state.marker.remove(); state.marker = null; }
  }

  function row(item) {
    const li = h("li", { className: "lists-row", dataset: { id: String(item.id) }, tabindex: "0" },
      h("div", { className: "lists-line" }, h("span", { className: "lists-id", text: `#${item.id}` }),
        h("span", { className: "lists-subject", text: item.payload.name || "" })),
      h("div", { className: "lists-line", text: item.payload.address || "" }),
      h("div", { className: "lists-line lists-meta" }, h("span", { text: formatTime(item.created_at) }),
        h("span", { className: "lists-reason", text: reasonZh(item.reason) })));
    const open = () => select(item).catch((error) => message.say(`加载失败：${error.message}`, "error"));
    li.addEventListener("click", open);
    li.addEventListener("keydown", (event) => { if (event.key === "Enter") { open(); } });
    return li;
  }

  function render() {
    const shown = state.items.filter((item) => itemInView(state.view, item));
    rows.replaceChildren(...shown.map(row));
    total.textContent = `待核 ${shown.length} 条`;
    if (!shown.length && !state.selected) { message.say("当前范围内没有待核登记"); }
  }

  async function load(view = state.view) {
    state.view = view;
    const token = ++state.token;
    try {
      const queue = await getJson("/v1/review?limit=500");
      if (token !== state.token) { return; }
      state.items = queue.items;
      message.say("");
      render();
    } catch (error) {
      if (token === state.token) { message.say(`待核队列加载失败：${error.message}`, "error"); }
    }
    if (token === state.token) { el.dataset.loads = String(Number(el.dataset.loads) + 1); }
  }

  function candidatesOf(proposal) {
    const list = [...(proposal.candidates || [])];
    const existing = proposal.existing;
    if (existing && !list.some((c) => c.address_id === existing.address_id)) { list.unshift(existing); }
    return list;
  }

  async function select(item) {
    for (const li of rows.children) { li.classList.toggle("selected", li.dataset.id === String(item.id)); }
    state.selected = item;
    state.point = null;
    clearMarker();
    message.say("加载中…");
    const proposal = await getJson(`/v1/review/${item.id}/proposal`);
    if (state.selected !== item) { return; }
    state.proposal = proposal;
    message.say("");
    const choices = candidatesOf(proposal).map((c) => h("li", { className: "review-candidate" },
      h("span", { text: `${c.standard_address}（${c.address_id}）` }),
      canResolve ? h("button", { type: "button", className: "review-choose", dataset: { address: String(c.address_id) }, text: "选此地址",
        onclick: () => resolve({ address_id: c.address_id }, `已落到标准地址 ${c.standard_address}；${ALIAS_NOTE}`) }) : null));
    const pointLine = h("p", { className: "review-point", text: "位置：未选" });
    const confirm = h("button", { type: "button", className: "review-confirm", text: "以此位置处理", disabled: true,
      onclick: () => state.point && resolve({ lon: state.point.lon, lat: state.point.lat }, "已按地图上点选的位置落点") });
    const pick = h("button", { type: "button", className: "review-pick", text: "在地图上点选位置",
      onclick: async () => {
        const point = await ctx.map.pickPoint("请在地图上点选该登记的位置（Esc 取消）");
        if (!point || state.selected !== item) { return; }
        state.point = { lon: Number(point.lon.toFixed(7)), lat: Number(point.lat.toFixed(7)) };
        clearMarker();
        state.marker = ctx.map.showMarker(state.point.lon, state.point.lat, `点选位置：${item.payload.address || ""}`);
        pointLine.textContent = `位置：${state.point.lon}, ${state.point.lat}`;
        confirm.disabled = false;
      } });
    detail.replaceChildren(
      h("div", { className: "panel-head" }, h("button", { type: "button", className: "panel-back", text: "← 返回队列", onclick: () => closeDetail() }),
        h("h3", { text: `待核 #${item.id}` })),
      h("dl", { className: "panel-facts" },
        h("dt", { text: "名称" }), h("dd", { text: item.payload.name || "—" }),
        h("dt", { text: "登记地址" }), h("dd", { className: "review-typed", text: proposal.address }),
        h("dt", { text: "原因" }), h("dd", { className: "review-reason", text: reasonZh(proposal.reason) }),
        h("dt", { text: "粗略位置" }), h("dd", { text: proposal.suggested ? (proposal.suggested.standard_address || "有") : "无" })),
      h("h4", { text: "候选标准地址" }),
      choices.length ? h("ol", { className: "review-candidates" }, choices) : h("p", { text: "没有候选标准地址" }),
      canResolve ? h("div", { className: "review-map" }, pick, pointLine, confirm) : h("p", { text: "本账号只能查看，不能处理" }));
    detail.hidden = false;
    rows.hidden = true;
    if (proposal.suggested) {
      ctx.map.flyTo(proposal.suggested.lon, proposal.suggested.lat, 16);
    }
    el.dataset.selected = String(item.id);
  }

  function closeDetail() {
    state.selected = null;
    state.proposal = null;
    clearMarker();
    detail.hidden = true;
    rows.hidden = false;
    delete el.dataset.selected;
  }

  async function resolve(body, done) {
    const item = state.selected;
    if (!item) { return; }
    for (const b of detail.querySelectorAll("button")) { b.disabled = true; }
    try {
      const result = await postJson(`/v1/review/${item.id}/resolve`, body);
      state.result = result;
      closeDetail();
      state.items = state.items.filter((other) => other.id !== item.id);
      render();
      message.say(`${done}，已派发 ${result.task_ids.length} 项任务`, "done");
      ctx.map.refresh("tasks");
      ctx.map.refresh("entities");
      deps.onResolved(result);
    } catch (error) {
      for (const b of detail.querySelectorAll("button")) { b.disabled = false; }
      if (error.code === "already_resolved") {
        closeDetail();
        await load();
        message.say("该条已被他人处理，已刷新队列", "error");
        return;
      }
      message.say(`处理失败：${error.message}`, "error");
    }
  }

  return {
    el,
    load,
    /** A registration sent to review in view: reload the queue and mark the new item. */
    async live(event) {
      if (event.kind !== "registration" || event.action !== "review") { return; }
      if (!itemInView(state.view, { town_code: event.town_code, payload: { community_code: event.community_code } })) { return; }
      await load();
      const li = rows.querySelector(`li[data-id="${event.review_id}"]`);
      if (li) {
        rows.prepend(li);
        li.classList.add("lists-new");
        setTimeout(() => li.classList.remove("lists-new"), 6000);
      }
    },
    ids: () => state.items.filter((item) => itemInView(state.view, item)).map((item) => item.id),
    /** Open item `id` (test hook, as a click on its row). */
    select: (id) => {
      const item = state.items.find((other) => other.id === id);
      return item ? select(item) : Promise.reject(new Error(`no review item ${id}`));
    },
    selected: () => (state.proposal ? { id: state.selected.id, typed: state.proposal.address, point: state.point,
      candidates: candidatesOf(state.proposal).map((c) => c.address_id) } : null),
    result: () => state.result,
  };
}
