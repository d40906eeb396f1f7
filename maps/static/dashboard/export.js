/**
 * dashboard/export.js: the map as a PNG (网格地图-<view>.png), read from the canvas right after a render (the map
 * keeps its drawing buffer for this).
 */

import { saveBlob } from "../lib/api.js";

/** The file name of the current view's PNG: 网格地图-<unit name>.png (characters a file system refuses dropped). */
export function pngName(view) {
  const name = (view.name || view.code || "东莞市").replace(/[\\/:*?"<>|\s]+/g, "");
  return `网格地图-${name}.png`;
}

/** Render the map once more and save its canvas as a PNG named after `view`; resolves with the blob. */
export function exportPng(map, view) {
  return new Promise((resolve, reject) => {
    map.once("render", () => {
      map.getCanvas().toBlob((blob) => {
        if (!blob) {
          reject(new Error("地图导出失败"));
          return;
        }
        saveBlob(blob, pngName(view));
        resolve(blob);
      }, "image/png");
    });
    map.triggerRepaint();
  });
}
