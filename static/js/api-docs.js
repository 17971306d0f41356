// The API reference at /docs: Swagger UI, vendored (static/vendor/swagger-ui), started from this
// file rather than an inline script, so the page keeps the site's script policy and works offline.
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
                               presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
                               layout: "BaseLayout"});
});
