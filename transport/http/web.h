/* web.h - the pages ix-httpd serves to browsers: the administration console at /admin/ and the self-service page at
 * /me/ (docs/console.md), with their style sheet and script under /web/, all built into the program (nothing is
 * fetched from elsewhere) and served with a Content-Security-Policy that allows no inline script. */
#ifndef IX_WEB_H
#define IX_WEB_H

#include "transport/http/http_server.h"

#define WEB_ADMIN "/admin/"
#define WEB_ME "/me/"
#define WEB_ASSETS "/web/"
/* What the pages may load: their own script, style sheet and API, nothing inline, no frame around them. */
#define WEB_CSP                                                                                               \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* Answers GET (and HEAD) of WEB_ADMIN, WEB_ME (with or without the last slash) and the files under WEB_ASSETS; on
 * the plain listener a redirect to the same path over HTTPS, whose port is https_port. */
void web_handle(const struct http_request *req, struct http_response *resp, unsigned https_port, const char *hostname);

#endif
