// Starts the bundled Swagger UI on this server's OpenAPI document (no CDN, no other origin).
// Swagger UI comes from the swagger-ui-py package; this file is the console's own.
/* global SwaggerUIBundle */
SwaggerUIBundle({
  url: new URL("../openapi.json", document.baseURI).href,
  dom_id: "#api",
  deepLinking: true,
  validatorUrl: null, // the public validator is another origin
  tryItOutEnabled: false,
});
