/**
 * clues.js: the clue list (/clues) — the clues behind a hotspot (or any filter of GET /v1/clues), as a table,
 * newest first. The page's own query string is passed to the API unchanged; the API applies the user's scope.
 *
 * Test hook (window.gridgov.page):
 *   counts()   → {total, shown}: the clues the filter matches, and the rows shown so far
 * The body's data-total attribute is set once the first page has arrived.
 */

import { getJson } from "./lib/api.js";
import { setStatus } from "./lib/status.js";
import { publishPage } from "./lib/testhook.js";
import { readQuery, withQuery } from "./lib/url.js";
import { loadVocabulary } from "./lib/vocab.js";

const FILTER_LABELS = { town: "镇街", grid: "网格", h3: "H3 单元", industry: "行业", kind: "类别", from: "自", to: "至" };
const params = readQuery();
const body = document.querySelector("#clues tbody");
const more = document.getElementById("more");
const state = { total: null, shown: 0 };

publishPage({ counts: () => ({ ...state }) });

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
}

async function load(vocabulary, cursor) {
  const query = new URLSearchParams(params);
  if (cursor) { query.set("cursor", cursor); }
  setStatus("加载中…");
  const page = await getJson(withQuery("/v1/clues", query));
  for (const c of page.items) {
    const row = document.createElement("tr");
    row.dataset.id = c.id;
    cell(row, String(c.reported_at).replace("T", " ").slice(0, 16));
    cell(row, c.industry);
    cell(row, vocabulary.label("clue_kinds", c.kind));
    cell(row, c.description);
    cell(row, c.address);
    cell(row, c.grid_code);
    cell(row, vocabulary.label("clue_statuses", c.status));
    cell(row, vocabulary.label("event_sources", c.source));
    body.appendChild(row);
  }
  state.shown += page.items.length;
  state.total = page.total;
  setStatus(`共 ${page.total} 条，已显示 ${state.shown} 条`);
  document.body.dataset.total = page.total;
  more.hidden = !page.next;
  more.onclick = () => load(vocabulary, page.next).catch(showFailure);
}

function showFailure(error) {
  setStatus(`加载失败：${error.message}`);
}

async function start() {
  const vocabulary = await loadVocabulary();
  document.getElementById("filters").textContent = Object.keys(FILTER_LABELS)
    .filter((k) => params.get(k))
    .map((k) => `${FILTER_LABELS[k]}：${k === "kind" ? vocabulary.label("clue_kinds", params.get(k)) : params.get(k)}`)
    .join("　");
  await load(vocabulary, null);
}

start().catch(showFailure);
