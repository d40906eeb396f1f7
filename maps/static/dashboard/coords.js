/**
 * dashboard/coords.js: WGS84 ↔ GCJ-02 for a GCJ-02 basemap (Amap), a port of gis/coords.py's public formulas.
 * The API speaks WGS84; a map whose basemap is drawn in GCJ-02 shifts the points it draws (registrations, live
 * events, KPI boxes) with `toMap` and takes clicked points back to WGS84 with `fromMap`.
 */

const A_M = 6378245.0;
const E2 = 0.006693421622965943;

function outOfChina(lon, lat) {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

function periodic(u) {
  return ((20 * Math.sin(6 * Math.PI * u) + 20 * Math.sin(2 * Math.PI * u)) * 2) / 3;
}

function offsetLatM(u, v) {
  let out = -100 + 2 * u + 3 * v + 0.2 * v * v + 0.1 * u * v + 0.2 * Math.sqrt(Math.abs(u));
  out += ((20 * Math.sin(Math.PI * v) + 40 * Math.sin((Math.PI * v) / 3)) * 2) / 3;
  out += ((160 * Math.sin((Math.PI * v) / 12) + 320 * Math.sin((Math.PI * v) / 30)) * 2) / 3;
  return out + periodic(u);
}

function offsetLonM(u, v) {
  let out = 300 + u + 2 * v + 0.1 * u * u + 0.1 * u * v + 0.1 * Math.sqrt(Math.abs(u));
  out += ((20 * Math.sin(Math.PI * u) + 40 * Math.sin((Math.PI * u) / 3)) * 2) / 3;
  out += ((150 * Math.sin((Math.PI * u) / 12) + 300 * Math.sin((Math.PI * u) / 30)) * 2) / 3;
  return out + periodic(u);
}

/** The GCJ-02 point of a WGS84 point, [lon, lat]. */
export function wgs84ToGcj02(lon, lat) {
  if (outOfChina(lon, lat)) { return [lon, lat]; }
  const u = lon - 105;
  const v = lat - 35;
  const latRad = (lat * Math.PI) / 180;
  const w = 1 - E2 * Math.sin(latRad) ** 2;
  const sqrtW = Math.sqrt(w);
  const meridian = (A_M * (1 - E2)) / (w * sqrtW);
  const parallel = (A_M / sqrtW) * Math.cos(latRad);
  return [lon + (offsetLonM(u, v) * 180) / (parallel * Math.PI), lat + (offsetLatM(u, v) * 180) / (meridian * Math.PI)];
}

/** The WGS84 point of a GCJ-02 point (fixed-point iteration on the forward formula, as gis/coords.py does). */
export function gcj02ToWgs84(lon, lat) {
  let x = lon;
  let y = lat;
  for (let i = 0; i < 30; i += 1) {
    const [fx, fy] = wgs84ToGcj02(x, y);
    const dx = fx - lon;
    const dy = fy - lat;
    x -= dx;
    y -= dy;
    if (Math.abs(dx) < 1e-9 && Math.abs(dy) < 1e-9) { break; }
  }
  return [x, y];
}

/** The two conversions of a map drawn in `coords` ("wgs84" or "gcj02"): toMap(lon, lat) and fromMap(lon, lat). */
export function mapCoords(coords) {
  if (coords === "gcj02") { return { toMap: wgs84ToGcj02, fromMap: gcj02ToWgs84 }; }
  return { toMap: (lon, lat) => [lon, lat], fromMap: (lon, lat) => [lon, lat] };
}
