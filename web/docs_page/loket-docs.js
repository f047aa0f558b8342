// Starts Swagger UI on the page's #swagger-ui over this server's own description. A separate
// file rather than an inline script, so the page's Content-Security-Policy can refuse inline code.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // "Try it out" sends real requests; the API key and staff token are entered under Authorize.
    persistAuthorization: false,
    displayRequestDuration: true,
  });
});
