/* gridgov clue list: the clues behind a hotspot (or any filter of GET /v1/clues), as a table, newest first.
   The page's own query string is passed to the API unchanged; the API applies the user's scope. */
(function () {
  "use strict";

  var statusEl = document.getElementById("status");
  var body = document.querySelector("#clues tbody");
  var more = document.getElementById("more");
  var params = new URLSearchParams(window.location.search);
  var KINDS = { clue: "线索", unlicensed: "无照经营" };
  var STATUSES = {
    pushed: "待分派", assigned: "已分派", inspected_ok: "检查无问题", inspected_problem: "发现问题",
    notice_issued: "已下达整改通知", reinspected: "已复查", escalated_community: "已上报村（社区）",
    escalated_department: "已移交部门", department_feedback: "部门已反馈", closed: "已办结", cancelled: "已撤销"
  };
  var SOURCES = { field: "网格员上报", hotline: "热线", inspection: "检查" };
  var FILTER_LABELS = { town: "镇街", grid: "网格", h3: "H3 单元", industry: "行业", kind: "类别", from: "自", to: "至" };
  var shown = 0;

  document.getElementById("filters").textContent = Object.keys(FILTER_LABELS)
    .filter(function (k) { return params.get(k); })
    .map(function (k) { return FILTER_LABELS[k] + "：" + (k === "kind" ? KINDS[params.get(k)] || params.get(k) : params.get(k)); })
    .join("　");

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    row.appendChild(td);
  }

  function load(cursor) {
    var query = new URLSearchParams(params);
    if (cursor) { query.set("cursor", cursor); }
    statusEl.textContent = "加载中…";
    return fetch("/v1/clues?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (page) {
          if (!r.ok) { throw new Error(page.detail || ("HTTP " + r.status)); }
          return page;
        });
      })
      .then(function (page) {
        page.items.forEach(function (c) {
          var row = document.createElement("tr");
          row.setAttribute("data-id", c.id);
          cell(row, String(c.reported_at).replace("T", " ").slice(0, 16));
          cell(row, c.industry);
          cell(row, KINDS[c.kind] || c.kind);
          cell(row, c.description);
          cell(row, c.address);
          cell(row, c.grid_code);
          cell(row, STATUSES[c.status] || c.status);
          cell(row, SOURCES[c.source] || c.source);
          body.appendChild(row);
        });
        shown += page.items.length;
        statusEl.textContent = "共 " + page.total + " 条，已显示 " + shown + " 条";
        document.body.setAttribute("data-total", page.total);
        more.hidden = !page.next;
        more.onclick = function () { load(page.next); };
      })
      .catch(function (error) { statusEl.textContent = "加载失败：" + error.message; });
  }

  load(null);
})();
