/**
 * lib/config.js: the page's configuration, which the server embeds as a JSON data block
 * (<script type="application/json" id="page-config">) instead of an inline script.
 */

/** The configuration object of this page. */
export function readPageConfig() {
  return JSON.parse(document.getElementById("page-config").textContent);
}
