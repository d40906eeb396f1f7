/**
 * field/position.js: the browser's location (navigator.geolocation), as the field page shows and sends it — the
 * WGS84 point a GPS gives, with its accuracy in metres, and Chinese words for each way it can fail.
 */

const FAILURES_ZH = {
  1: "定位权限被拒绝：请在浏览器或手机设置中允许本页面使用位置信息",
  2: "暂时无法获取位置：请到室外或开启 GPS 后重试",
  3: "定位超时：请到信号较好的地方重试",
};

/** A failure to locate, with a Chinese message. */
export class PositionError extends Error {
  constructor(message) {
    super(message);
    this.name = "PositionError";
  }
}

/**
 * The current position {lon, lat, accuracy_m, at} (a fresh fix, not a cached one); rejects with a PositionError
 * whose message is Chinese.
 */
export function currentPosition({ timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new PositionError("此浏览器不能定位（须通过 HTTPS 访问本页面）"));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (fix) => resolve({
        lon: fix.coords.longitude,
        lat: fix.coords.latitude,
        accuracy_m: fix.coords.accuracy,
        at: new Date(fix.timestamp).toISOString(),
      }),
      (error) => reject(new PositionError(FAILURES_ZH[error.code] || "无法获取位置")),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 0 },
    );
  });
}

/** The position in words: 经度、纬度 with six decimals and the accuracy, e.g. "东经 113.751234，北纬 23.020012（精度 ±12 米）". */
export function describePosition(position) {
  if (!position) { return "尚未获取位置"; }
  const accuracy = Number.isFinite(position.accuracy_m) ? `（精度 ±${Math.round(position.accuracy_m)} 米）` : "";
  return `东经 ${position.lon.toFixed(6)}，北纬 ${position.lat.toFixed(6)}${accuracy}`;
}

/**
 * Wire a "获取当前位置" button and its output element: each press asks for a fresh fix. `onFix(position)` hears a
 * success; `state.position` holds the last fix (null until one arrives or after a failure).
 */
export function locator(button, output, onFix = () => {}) {
  const state = { position: null, pending: null };
  async function locate() {
    button.disabled = true;
    output.textContent = "正在定位…";
    output.classList.remove("failed");
    state.pending = currentPosition();
    try {
      state.position = await state.pending;
      output.textContent = describePosition(state.position);
      onFix(state.position);
    } catch (error) {
      state.position = null;
      output.textContent = error.message;
      output.classList.add("failed");
    } finally {
      button.disabled = false;
      state.pending = null;
    }
    return state.position;
  }
  button.addEventListener("click", () => { locate(); });
  function reset() {
    state.position = null;
    output.textContent = describePosition(null);
    output.classList.remove("failed");
  }
  return { state, locate, reset };
}
