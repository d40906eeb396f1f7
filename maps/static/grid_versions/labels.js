/**
 * grid_versions/labels.js: the Chinese words and number formats of the grid version pages — version states, the
 * refusal reasons of the planning API (planning.errors), percentages and signed deviations.
 */

export const STATUS_ZH = { draft: "草案", active: "生效", retired: "已停用" };
export const LEVEL_ZH = { community: "村（社区）", town: "镇街" };
export const METHOD_ZH = { auto: "自动", cpsat: "约束求解（CP-SAT）", local: "局部调整" };
export const MOVED_KIND_ZH = { address: "地址", entity: "市场主体", task: "任务", clue: "线索", worker: "网格员" };

// The reasons a plan is refused (planning.errors and the redesign's Infeasible reasons), for an answer whose detail
// is not Chinese already.
const REASONS_ZH = {
  stale_draft: "数据已在绘制后变化，草案已过期，请重新绘制",
  version_state: "该版本当前状态不允许此操作",
  lock_outside_area: "锁定的网格不在调整区域内",
  locked_out_of_balance: "锁定网格的每人工作量超出允许偏差，无法均衡",
  k_out_of_range: "网格数超出工作量允许的范围",
  no_balanced_plan: "在时限内未找到满足偏差要求的方案",
  no_addresses: "该区域没有地址，无需调整",
  nothing_to_plan: "该区域没有可调整的内容",
  infeasible: "无法满足所提要求",
  not_found: "未找到该区域或版本",
};
const CJK = /[\u3400-\u9fff]/;

/** The Chinese sentence of a refused request (an ApiError of lib/api.js), naming its reason code. */
export function refusalText(error) {
  const body = error && error.body ? error.body : {};
  const reason = body.reason || body.error || "";
  const detail = typeof body.detail === "string" && CJK.test(body.detail) ? body.detail : null;
  const words = detail || REASONS_ZH[reason] || (error && error.message) || "请求失败";
  return reason ? `${words}（${reason}）` : words;
}

/** A share (0..1) as a percentage with one decimal, "—" when unknown. */
export function percent(value) {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "—";
}

/** A deviation from the mean (a signed share) as "+4.2%" or "−3.1%". */
export function signedPercent(value) {
  if (!Number.isFinite(value)) { return "—"; }
  const text = `${Math.abs(value * 100).toFixed(1)}%`;
  return value > 0 ? `+${text}` : value < 0 ? `−${text}` : text;
}

/** A number with `digits` decimals, "—" when unknown. */
export function fixed(value, digits = 1) {
  return Number.isFinite(value) ? Number(value).toFixed(digits) : "—";
}

/** A date-time as the Shanghai wall clock, "2026-12-01 10:00". */
export function shanghaiTime(iso) {
  if (!iso) { return "—"; }
  const date = new Date(iso);
  const parts = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    hour12: false,
  }).formatToParts(date);
  const part = (type) => (parts.find((p) => p.type === type) || {}).value || "";
  return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")}`;
}

/** The tooltip of a moved area: "从 <from> 调入 <to>". */
export function movedText(properties) {
  const from = properties.from ?? properties.from_grid ?? properties.from_code ?? "—";
  const to = properties.to ?? properties.to_grid ?? properties.to_code ?? "—";
  return `从 ${from} 调入 ${to}`;
}

/** A grid feature's code, whatever the property is called. */
export function gridCode(properties) {
  return properties.code ?? properties.grid_code ?? "";
}
