/**
 * lib/escape.js: HTML escaping, for the few strings a page puts into markup (Leaflet popups take HTML).
 * Everywhere else a page sets textContent, which needs none.
 */

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** The value as text safe inside HTML content or a quoted attribute; null and undefined become "". */
export function escapeHtml(value) {
  return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
