/**
 * dashboard/live.js: the live feed (GET /v1/live, server-sent events, scoped by the credential): the latest
 * events in Chinese (新登记 / 任务流转 / 新线索), new registrations drawn on the map at once, task and clue tiles
 * asked again after a move, a connection indicator, and the last hour's registrations
 * (GET /v1/registrations/recent?minutes=60) reloaded on each registration.
 */

import { getJson, openEventStream } from "../lib/api.js";

const KIND_TEXT = { registration: "新登记", task: "任务流转", clue: "新线索" };
const STATE_TEXT = { connecting: "实时：连接中…", open: "实时：已连接", retrying: "实时：重连中…" };
const FEED_LENGTH = 50;

/**
 * The live feed in element `feed`, the indicator in `indicator`. `toMap(lon, lat)` shifts WGS84 into the map's
 * system; `refresh(layer)` asks a tile layer again; `listeners` hear every event object; `streaming` false (a
 * credential the stream would refuse) opens none.
 * Returns {events (the latest first), reloadRecent(), close()}.
 */
export function startLive(map, { feed, indicator, toMap, refresh, listeners, streaming = true }) {
  const events = [];
  let recent = { type: "FeatureCollection", features: [] };
  const pendingRefresh = new Set();
  let refreshTimer = null;

  const setData = () => {
    const source = map.getSource("registrations");
    if (source) { source.setData(recent); }
  };

  function shifted(feature) {
    const [lon, lat] = feature.geometry.coordinates;
    const [x, y] = toMap(lon, lat);
    return { ...feature, geometry: { type: "Point", coordinates: [x, y] } };
  }

  async function reloadRecent() {
    try {
      const body = await getJson("/v1/registrations/recent?minutes=60", { accept: "application/geo+json" });
      const fromServer = body.features.filter((f) => f.geometry).map(shifted);
      const known = new Set(fromServer.map((f) => f.properties.event_id));
      // Live points the server's answer does not hold yet stay drawn.
      const live = recent.features.filter((f) => f.properties.live && !known.has(f.properties.event_id));
      recent = { type: "FeatureCollection", features: [...fromServer, ...live] };
      setData();
    } catch {
      // The live points stay; the next registration asks again.
    }
  }

  function draw(event) {
    if (event.lon === null || event.lon === undefined || event.lat === null || event.lat === undefined) { return; }
    const [x, y] = toMap(event.lon, event.lat);
    recent.features = recent.features.filter((f) => f.properties.event_id !== String(event.id));
    recent.features.push({
      type: "Feature",
      geometry: { type: "Point", coordinates: [x, y] },
      properties: { event_id: String(event.id), kind: event.kind, name: event.label, grid_code: event.grid_code, at: event.at, live: true },
    });
    setData();
  }

  function later(layer) {
    pendingRefresh.add(layer);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      for (const name of pendingRefresh) { refresh(name); }
      pendingRefresh.clear();
    }, 300);
  }

  function addToFeed(type, event) {
    const item = document.createElement("li");
    item.className = `live-${type}`;
    item.dataset.kind = type;
    item.dataset.id = String(event.id);
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = KIND_TEXT[type] || type;
    const time = document.createElement("time");
    time.dateTime = event.at || "";
    time.textContent = event.at ? new Date(event.at).toLocaleTimeString("zh-CN", { hour12: false }) : "";
    const text = document.createElement("span");
    text.className = "label";
    text.textContent = event.label || "";
    item.append(tag, time, text);
    feed.prepend(item);
    while (feed.children.length > FEED_LENGTH) { feed.lastElementChild.remove(); }
  }

  if (!streaming) {
    // The credential reads no task, clue or review item: the server would refuse the stream; say so calmly.
    indicator.textContent = "实时：本账号无实时动态";
    indicator.dataset.state = "off";
    return { events, reloadRecent, close() {} };
  }
  const stream = openEventStream("/v1/live", {
    events: ["registration", "task", "clue"],
    onState(state) {
      indicator.textContent = STATE_TEXT[state] || state;
      indicator.dataset.state = state;
    },
    onEvent(type, event) {
      events.unshift({ type, ...event });
      if (events.length > FEED_LENGTH) { events.pop(); }
      addToFeed(type, event);
      if (type === "registration") {
        draw(event);
        later("tasks");
        setTimeout(reloadRecent, 1000);
      } else if (type === "task") {
        later("tasks");
      } else if (type === "clue") {
        later("clues");
        later("tasks");
      }
      for (const fn of listeners) {
        try {
          fn({ ...event, kind: event.kind || type });
        } catch (error) {
          console.error(error);
        }
      }
    },
  });

  return { events, reloadRecent, close: () => stream.close() };
}
