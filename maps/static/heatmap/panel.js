/**
 * heatmap/panel.js: the heatmap page's side panel — the legend of the hexagons, this period against the last,
 * and the top 10 hotspots (each zooms the map, and links to its clues when the kind has clues).
 */

import { escapeHtml } from "../lib/escape.js";

/** Draw the hexagons' legend: one row per class with its colour, bounds and how many cells it holds. */
export function drawLegend(legend, vocabulary) {
  const box = document.getElementById("legend");
  box.replaceChildren();
  legend.forEach((entry, i) => {
    const row = document.createElement("div");
    row.className = "legend-row";
    row.dataset.lower = entry.lower;
    row.dataset.upper = entry.upper;
    row.dataset.count = entry.count;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = vocabulary.binColour(i);
    row.append(swatch, `${entry.lower} – ${entry.upper}（${entry.count} 格）`);
    box.appendChild(row);
  });
}

/** "本期 n，上期 m，增加 k（p%）". */
export function drawComparison(c) {
  let text = `本期 ${c.current}，上期 ${c.previous}`;
  if (c.percent_change !== null && c.percent_change !== undefined) {
    text += `，${c.change >= 0 ? "增加 " : "减少 "}${Math.abs(c.change)}（${c.percent_change}%）`;
  }
  document.getElementById("comparison-text").textContent = text;
}

export const isHot = (feature) => feature.properties["class"].indexOf("hot") === 0;

/**
 * The ten most significant hot units (smallest q first, then the busiest), each a link that calls
 * `zoomTo(feature)`, followed by a link to its clues when `clueLink` is given.
 */
export function drawTop10(features, { vocabulary, zoomTo, clueLink }) {
  const list = document.getElementById("top10");
  list.replaceChildren();
  features.filter(isHot)
    .sort((a, b) => (a.properties.q - b.properties.q) || (b.properties.count - a.properties.count))
    .slice(0, 10)
    .forEach((f) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "#";
      a.textContent = `${f.properties.code}（${vocabulary.label("hot_classes", f.properties["class"])}，${f.properties.count}）`;
      a.addEventListener("click", (event) => {
        event.preventDefault();
        zoomTo(f);
      });
      li.appendChild(a);
      if (clueLink) {
        const clues = document.createElement("a");
        clues.href = clueLink(f.properties.code);
        clues.className = "clue-link";
        clues.textContent = " 线索";
        li.appendChild(clues);
      }
      list.appendChild(li);
    });
  if (!list.children.length) {
    const li = document.createElement("li");
    li.textContent = "本时段无显著热点";
    list.appendChild(li);
  }
}

/** The popup of a hotspot unit: class, count, z, rate, trend and (when listable) the link to its clues. */
export function hotspotPopupHtml(p, { vocabulary, rateUnit, clueLink }) {
  return `<b>${escapeHtml(p.code)}</b><br>${escapeHtml(vocabulary.label("hot_classes", p["class"]))}` +
    `<br>数量 ${escapeHtml(p.count)}，z = ${escapeHtml(Number(p.z).toFixed(2))}` +
    (p.rate !== null && p.rate !== undefined ? `，比率 ${escapeHtml(p.rate)}${rateUnit}` : "") +
    (p.emerging ? `<br>趋势：${escapeHtml(vocabulary.label("emerging_classes", p.emerging))}` : "") +
    (clueLink ? `<br><a href="${escapeHtml(clueLink(p.code))}">线索列表</a>` : "");
}

/** The popup of an H3 hexagon: its count, and its count per entity when known. */
export function hexagonPopupHtml(p) {
  return `<b>${escapeHtml(p.code)}</b><br>数量 ${escapeHtml(p.count)}` +
    (p.per_entity !== null && p.per_entity !== undefined ? `<br>每主体 ${escapeHtml(p.per_entity)}` : "");
}
