/**
 * lib/status.js: the status line of the top bar (#status): progress, counts and warnings, in Chinese.
 */

function element() {
  return document.getElementById("status");
}

/** Show `message`; a warning is drawn in the warning colour until the next message. */
export function setStatus(message, { warning = false } = {}) {
  const el = element();
  if (!el) { return; }
  el.textContent = message;
  el.classList.toggle("warning", warning);
}

/** What the status line says now. */
export function statusText() {
  const el = element();
  return el ? el.textContent : "";
}
