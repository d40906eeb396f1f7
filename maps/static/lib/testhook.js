/**
 * lib/testhook.js: window.gridgov.page, the one object through which a page shows its state to the browser
 * tests and the console, built from the page's own data (never Leaflet's private fields). Each page module
 * documents what its hook holds.
 */

/** Publish `hook` as window.gridgov.page. */
export function publishPage(hook) {
  window.gridgov = Object.assign(window.gridgov || {}, { page: hook });
  return hook;
}
