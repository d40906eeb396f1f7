/**
 * dashboard/charts.js: the trend chart of the unit in view (GET /v1/kpi/trend), drawn by ECharts on a canvas,
 * with Chinese series names and axis labels.
 */

// ECharts (a megabyte) is fetched when the first trend is drawn, not before the map's first paint.
let library = null;
const echartsLibrary = () => {
  library = library || import("/static/vendor/echarts/echarts.esm.min.mjs");
  return library;
};

const SERIES = [
  ["tasks_pushed", "推送任务", "#2e75b6"],
  ["tasks_completed", "完成任务", "#70ad47"],
  ["overdue_tasks", "逾期任务", "#c00000"],
  ["clues_reported", "上报线索", "#8e44ad"],
  ["clues_closed", "办结线索", "#ffc000"],
];

/** The trend chart in element `el`. Returns {show(trend), clear()}. */
export function mountTrendChart(el) {
  let chart = null;
  let shown = 0;

  async function show(trend) {
    const mine = ++shown;
    const echarts = await echartsLibrary();
    if (mine !== shown) { return; }
    if (!chart) {
      chart = echarts.init(el, null, { renderer: "canvas", locale: "ZH" });
      new ResizeObserver(() => chart.resize()).observe(el);
    }
    const days = trend.days.map((d) => d.slice(5));
    chart.setOption(
      {
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { bottom: 0, itemWidth: 14, textStyle: { fontSize: 11 } },
        grid: { left: 40, right: 12, top: 30, bottom: 74 },
        xAxis: { type: "category", data: days, name: "日期", nameLocation: "middle", nameGap: 20, axisLabel: { fontSize: 10 } },
        yAxis: { type: "value", name: "件数", minInterval: 1, axisLabel: { fontSize: 10 } },
        series: SERIES.filter(([key]) => trend.series[key]).map(([key, name, color]) => ({
          name, type: "line", data: trend.series[key], smooth: true, symbol: "none", lineStyle: { width: 1.6 }, color,
        })),
      },
      true,
    );
  }

  function clear() {
    shown += 1;
    if (chart) { chart.clear(); }
  }

  return { show, clear };
}
