/**
 * lib/basestyle.js: the style every MapLibre page starts from — a background colour, and the configured raster
 * basemap when there is one (nothing fetched beyond this server otherwise). The pages add their own layers.
 */

const SUBDOMAINS = { osm: ["a", "b", "c"], amap: ["1", "2", "3", "4"], tianditu: ["1", "2", "3", "4"] };

/** The raster basemap's tile URLs (Leaflet's {s} expanded into one URL per subdomain), or [] for none. */
function basemapTiles(config) {
  if (!config.tileUrl || config.basemap === "none") { return []; }
  if (!config.tileUrl.includes("{s}")) { return [config.tileUrl]; }
  return (SUBDOMAINS[config.basemap] || ["a"]).map((s) => config.tileUrl.replace("{s}", s));
}

/** The style a map starts with: the background (and basemap), no layers of the page's yet. */
export function baseStyle(config) {
  const style = {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef2f5" } }],
  };
  const tiles = basemapTiles(config);
  if (tiles.length) {
    style.sources.basemap = { type: "raster", tiles, tileSize: 256, attribution: config.tileAttribution, maxzoom: 19 };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  return style;
}
