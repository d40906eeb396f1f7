/**
 * lib/url.js: the page's state in its URL — query parameters read and built, the map view in the hash
 * (#zoom/lat/lon, so a view can be shared or reloaded), and the way back through the login page.
 */

/** The current page's query parameters (a fresh copy: changing it changes nothing). */
export function readQuery() {
  return new URLSearchParams(window.location.search);
}

/** `path?query` from a URLSearchParams or a plain object of parameters; no "?" when there are none. */
export function withQuery(path, params) {
  const query = (params instanceof URLSearchParams ? params : new URLSearchParams(params)).toString();
  return query ? `${path}?${query}` : path;
}

/** The map view in the hash, or null when the hash holds none. */
export function readMapView() {
  const m = /^#(\d{1,2}(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(window.location.hash);
  return m ? { zoom: parseFloat(m[1]), lat: parseFloat(m[2]), lon: parseFloat(m[3]) } : null;
}

/** Put the map view in the hash without adding a history entry. */
export function writeMapView(zoom, lat, lon) {
  const hash = `#${zoom}/${lat.toFixed(5)}/${lon.toFixed(5)}`;
  if (window.location.hash !== hash) { window.history.replaceState(null, "", hash); }
}

/** The login page, coming back to this very page (path, query and view) after signing in. */
export function loginUrl() {
  const here = window.location.pathname + window.location.search + window.location.hash;
  return withQuery("/login", { next: here });
}
