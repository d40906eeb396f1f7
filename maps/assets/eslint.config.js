// eslint's flat configuration for the pages' ES modules in maps/static. `make lint` runs it from maps/:
//   cd maps && assets/node_modules/.bin/eslint --config assets/eslint.config.js static
// (with --config, patterns are relative to the working directory, maps/).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["static/vendor/**"] },
  {
    files: ["static/**/*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      // Leaflet is a classic script loaded before the page's module: its global L.
      globals: { ...globals.browser, L: "readonly" },
    },
  },
];
