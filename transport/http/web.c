/* web.c - the console and self-service pages (web.h), served from the copies of transport/http/web/ built into the
 * program. */
#include "transport/http/web.h"

#include <string.h>

/* The files of transport/http/web/, built into the program (transport/http/http.mk). */
extern const char web_console_html[], web_console_css[], web_console_js[], web_recipients_js[], web_me_js[],
	web_graphs_js[], web_infra_js[];

struct asset {
	const char *path, *alias; /* alias: the same page without its last slash */
	const char *type;
	const char *text;
};

static const struct asset assets[] = {
	{ WEB_ADMIN, "/admin", "text/html; charset=utf-8", web_console_html }, /* the script shows the console */
	{ WEB_ME, "/me", "text/html; charset=utf-8", web_console_html },       /* or only the account view */
	{ WEB_ASSETS "console.css", NULL, "text/css; charset=utf-8", web_console_css },
	{ WEB_ASSETS "console.js", NULL, "text/javascript; charset=utf-8", web_console_js },
	{ WEB_ASSETS "recipients.js", NULL, "text/javascript; charset=utf-8", web_recipients_js },
	{ WEB_ASSETS "me.js", NULL, "text/javascript; charset=utf-8", web_me_js },
	{ WEB_ASSETS "graphs.js", NULL, "text/javascript; charset=utf-8", web_graphs_js },
	{ WEB_ASSETS "infra.js", NULL, "text/javascript; charset=utf-8", web_infra_js },
};

void web_handle(const struct http_request *req, struct http_response *resp, unsigned https_port, const char *hostname)
{
	if (!req->tls) {
		http_response_to_https(req, resp, https_port, hostname,
				       "Moved Permanently: the console is served over HTTPS only");
		return;
	}
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
		const struct asset *a = &assets[i];
		if (a->alias != NULL && strcmp(req->path, a->alias) == 0) {
			http_response_header(resp, "Location", a->path);
			http_response_error(resp, 301, "Moved Permanently");
			return;
		}
		if (strcmp(req->path, a->path) != 0)
			continue;
		resp->content_type = a->type;
		buf_append_str(&resp->body, a->text);
		http_response_header(resp, "Content-Security-Policy", WEB_CSP);
		http_response_header(resp, "X-Frame-Options", "DENY");
		http_response_header(resp, "Referrer-Policy", "no-referrer");
		http_response_header(resp, "Cache-Control", "no-cache");
		return;
	}
	http_response_error(resp, 404, "Not Found");
}
