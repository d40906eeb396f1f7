/*
 * docs/swagger-init.js: starts Swagger UI on /docs from a static file, so that the page needs no inline script
 * (the pages' Content-Security-Policy allows scripts from this server only). The OpenAPI address comes from the
 * page's data-openapi-url attribute.
 */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
