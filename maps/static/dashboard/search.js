/**
 * dashboard/search.js: the search box on the project's geocoder (GET /v1/geocode?q=…): fly to the address, show a
 * marker with its standard address and confidence, outline its grid, and offer to drill into it.
 */

import { getJson } from "../lib/api.js";
import { highlightSearchedGrid } from "./layers.js";

const STATUS_TEXT = { matched: "已匹配", ambiguous: "多个候选", not_found: "未找到" };

/**
 * The search form in `form` (an input named q and a submit button). `coords` is the map's system (the geocoder
 * answers in it); `showMarker(lon, lat, node)` draws the marker; `drillToGrid(code)` drills into a grid.
 */
export function mountSearch(form, map, { coords, showMarker, drillToGrid, setStatus }) {
  const input = form.querySelector("input[name=q]");
  const result = document.createElement("div");
  result.className = "search-result";
  result.setAttribute("role", "status");
  form.appendChild(result);
  let marker = null;

  function card(answer) {
    const box = document.createElement("div");
    box.className = "search-card";
    const title = document.createElement("strong");
    title.textContent = answer.standard_address || answer.query;
    const line = document.createElement("div");
    line.textContent = `置信度 ${(answer.confidence * 100).toFixed(0)}% · ${STATUS_TEXT[answer.status] || answer.status}` +
      (answer.grid_code ? ` · 网格 ${answer.grid_code}` : "");
    box.append(title, line);
    if (answer.grid_code) {
      const go = document.createElement("button");
      go.type = "button";
      go.className = "drill-grid";
      go.textContent = "进入该网格";
      go.addEventListener("click", () => drillToGrid(answer.grid_code));
      box.appendChild(go);
    }
    return box;
  }

  async function search(text) {
    const params = new URLSearchParams({ q: text });
    if (coords !== "wgs84") { params.set("crs", coords); }
    result.textContent = "查询中…";
    let answer;
    try {
      answer = await getJson(`/v1/geocode?${params}`);
    } catch (error) {
      result.textContent = error.message;
      return null;
    }
    if (marker) { marker.remove(); marker = null; }
    if (answer.lon === null || answer.lon === undefined) {
      result.textContent = `未找到该地址${answer.reason ? `：${answer.reason}` : ""}`;
      highlightSearchedGrid(map, null);
      return answer;
    }
    result.replaceChildren(card(answer));
    map.flyTo({ center: [answer.lon, answer.lat], zoom: Math.max(map.getZoom(), 16), duration: 600 });
    marker = showMarker(answer.lon, answer.lat, card(answer));
    highlightSearchedGrid(map, answer.grid_code);
    setStatus(`已定位：${answer.standard_address || text}`);
    return answer;
  }

  // The answer's card folds away when the box is emptied or Escape is pressed in it (the marker stays).
  input.addEventListener("input", () => { if (!input.value.trim()) { result.replaceChildren(); } });
  input.addEventListener("keydown", (event) => { if (event.key === "Escape") { result.replaceChildren(); } });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text) { search(text); }
  });
  return { search };
}
