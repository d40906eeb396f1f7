/**
 * lib/mapfactory.js: the pages' Leaflet map. By default it draws outlines only and reaches nothing beyond this
 * server (offline intranets); a configured basemap adds its tiles and a "无底图" choice, and names the coordinate
 * system (WGS84, or GCJ-02 for Amap) the layers must be asked in so that outlines sit on the basemap's streets.
 * Leaflet itself is the global `L`, loaded by a classic script before the page's module.
 */

const BASEMAP_NAMES = { osm: "OpenStreetMap", amap: "高德地图", tianditu: "天地图" };

/**
 * A Leaflet map in element `elementId` with Leaflet `options`.
 * `basemap` is the page configuration's {basemap, tileUrl, tileAttribution, coords}, or null for outlines only.
 * Returns {map, baseLayers (for L.control.layers), coords, withCoords(params)}.
 */
export function createMap(elementId, options = {}, basemap = null) {
  const map = L.map(elementId, options);
  const baseLayers = {};
  if (basemap && basemap.basemap !== "none" && basemap.tileUrl) {
    const tiles = L.tileLayer(basemap.tileUrl, {
      attribution: basemap.tileAttribution, maxZoom: 19, subdomains: basemap.basemap === "osm" ? "abc" : "1234",
    });
    baseLayers[BASEMAP_NAMES[basemap.basemap] || basemap.basemap] = tiles;
    baseLayers["无底图"] = L.layerGroup();
    tiles.addTo(map);
  }
  const coords = (basemap && basemap.coords) || "wgs84";
  return {
    map,
    baseLayers,
    coords,
    /** The layer request's parameters, asking for the basemap's coordinate system when it is not WGS84. */
    withCoords(params) {
      const out = new URLSearchParams(params);
      if (coords !== "wgs84") { out.set("coords", coords); }
      return out;
    },
  };
}

/** Stacked panes inside the overlay pane: [[name, zIndex], …], later ones drawn above earlier ones. */
export function addPanes(map, panes) {
  for (const [name, zIndex] of panes) {
    map.createPane(name, map.getPane("overlayPane")).style.zIndex = zIndex;
  }
}

/** The map's view as a WGS84 box "west,south,east,north" clamped to the globe, with `digits` decimals. */
export function bboxParam(map, digits = 6) {
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180),
    clamp(b.getNorth(), -90, 90)].map((v) => v.toFixed(digits)).join(",");
}
