/**
 * lib/vocab.js: the vocabularies of GET /v1/vocabulary — task states, duties, clue kinds, sources, severities
 * and states, event kinds and sources, hotspot classes with their colours, emerging-hotspot trends, the legend
 * ramp and the layer names — as the Python enums define them. Fetched once per page.
 */

import { getJson } from "./api.js";

/** A vocabulary answer with lookups; an unknown value is shown as itself. */
export class Vocabulary {
  constructor(raw) {
    this.raw = raw;
    this.byName = {};
    for (const [name, terms] of Object.entries(raw)) {
      if (Array.isArray(terms) && terms.every((t) => t && typeof t === "object")) {
        this.byName[name] = new Map(terms.map((t) => [t.value, t]));
      }
    }
  }

  /** The Chinese label of `value` in vocabulary `name`, e.g. label("task_statuses", "closed"). */
  label(name, value) {
    const term = this.byName[name] && this.byName[name].get(value);
    if (term) { return term.label; }
    return value === null || value === undefined ? "" : String(value);
  }

  /** The colour of `value` in vocabulary `name`, or `fallback`. */
  colour(name, value, fallback) {
    const term = this.byName[name] && this.byName[name].get(value);
    return (term && term.colour) || fallback;
  }

  /** The colour of legend class `index` (a class beyond the ramp takes its last colour). */
  binColour(index) {
    const ramp = this.raw.bin_colours;
    return ramp[Math.max(0, Math.min(index, ramp.length - 1))];
  }
}

let pending = null;

/** The page's vocabulary (one request, however many modules ask). */
export function loadVocabulary() {
  if (!pending) { pending = getJson("/v1/vocabulary").then((raw) => new Vocabulary(raw)); }
  return pending;
}
