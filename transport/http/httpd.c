/* httpd.c - ix-httpd, the web server daemon: started by the attendant, it serves the HTTP and HTTPS ports with the
 * routes of this file (ACME HTTP-01 challenges from DATA/acme, client configuration, the MTA-STS policy, the CardDAV
 * address book of transport/http/dav.h, the REST API of transport/http/api.h) and serves a changed certificate without
 * a restart. */
#include "transport/http/api.h"
#include "transport/http/clientconf.h"
#include "transport/http/dav.h"
#include "transport/http/http_server.h"
#include "transport/http/web.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/daemon/daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The folder under the data folder that `certbot certonly --webroot -w DATA/acme` writes its challenges into. */
#define HTTPD_ACME_DIR "acme"
#define HTTPD_ACME_PATH "/.well-known/acme-challenge/"
/* Most a challenge file may weigh (a key authorization is under 100 bytes). */
#define HTTPD_ACME_MAX 4096

struct httpd {
	struct daemon d;
	struct http_server *srv;
	struct dav *dav;
	struct api *api;
	char *acme_dir;
};

/* GET /.well-known/acme-challenge/TOKEN: the file certbot's webroot plugin wrote, as it is. */
static void acme_challenge(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct httpd *h = ctx;
	const char *token = req->path + strlen(HTTPD_ACME_PATH);
	if (!http_token_valid(token)) {
		http_response_error(resp, 404, "Not Found");
		return;
	}
	char *path = xasprintf("%s%s%s", h->acme_dir, HTTPD_ACME_PATH, token);
	char *data = NULL;
	size_t len = 0;
	if (read_file(path, HTTPD_ACME_MAX, &data, &len) < 0) {
		if (errno != ENOENT)
			log_warn("ACME challenge %s: %s", path, strerror(errno));
		http_response_error(resp, 404, "Not Found");
	} else {
		resp->content_type = "application/octet-stream";
		buf_append(&resp->body, data, len);
	}
	free(data);
	free(path);
}

/* GET /: says what answers here. */
static void root_page(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	struct httpd *h = ctx;
	buf_printf(&resp->body, "Interchange mail server %s\n", h->d.cfg.hostname != NULL ? h->d.cfg.hostname : "");
}

/* The mail domain a request is about: the domain of its emailaddress argument or of address (when not NULL), else
 * the Host header without a leading "autoconfig.", "autodiscover." or "mta-sts.", else NULL (this server's first
 * domain). Fills *cc for it; false (a 404 answered) when it is not one of ours or the address is malformed. */
static bool request_conf(struct httpd *h, const struct http_request *req, const char *address, struct clientconf *cc,
			 struct http_response *resp)
{
	const char *domain = NULL;
	if (address == NULL)
		address = http_request_query(req, "emailaddress");
	if (address != NULL && !clientconf_address(address, &domain)) {
		http_response_error(resp, 400, "Bad Request: emailaddress is not an e-mail address");
		return false;
	}
	static const char *const prefixes[] = { "autoconfig.", "autodiscover.", "mta-sts." };
	for (size_t i = 0; domain == NULL && i < IX_ARRAY_LEN(prefixes); i++) {
		if (strncmp(req->host, prefixes[i], strlen(prefixes[i])) == 0)
			domain = req->host + strlen(prefixes[i]);
	}
	if (clientconf_fill(&h->d.cfg, h->d.dir, domain, cc) != IX_OK) {
		http_response_error(resp, 404, "Not Found: not a domain of this organisation");
		return false;
	}
	return true;
}

/* Thunderbird: /.well-known/autoconfig/mail/config-v1.1.xml on the domain, /mail/config-v1.1.xml on autoconfig. */
static void autoconfig(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct clientconf cc;
	if (!request_conf(ctx, req, NULL, &cc, resp))
		return;
	resp->content_type = "application/xml; charset=utf-8";
	clientconf_thunderbird(&cc, &resp->body);
	clientconf_free(&cc);
}

/* Outlook: POST /autodiscover/autodiscover.xml with the plain-XML request schema. */
static void autodiscover(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct buf address = BUF_INIT;
	struct clientconf cc;
	resp->content_type = "application/xml; charset=utf-8";
	if (!clientconf_autodiscover_request(req->body, req->body_len, &address)) {
		clientconf_autodiscover_error(600, "Invalid Request", &resp->body);
	} else if (!request_conf(ctx, req, buf_cstr(&address), &cc, resp)) {
		buf_reset(&resp->body);
		resp->status = 200;
		resp->content_type = "application/xml; charset=utf-8";
		clientconf_autodiscover_error(603, "The e-mail address is not in a domain of this server", &resp->body);
	} else {
		clientconf_autodiscover(&cc, buf_cstr(&address), &resp->body);
		clientconf_free(&cc);
	}
	buf_free(&address);
}

/* Apple devices: GET /mobileconfig?emailaddress=ADDRESS downloads a configuration profile. */
static void mobileconfig(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const char *address = http_request_query(req, "emailaddress");
	struct clientconf cc;
	if (address == NULL) {
		http_response_error(resp, 400, "Bad Request: give the account as ?emailaddress=ADDRESS");
		return;
	}
	if (!request_conf(ctx, req, address, &cc, resp))
		return;
	resp->content_type = "application/x-apple-aspen-config";
	struct buf disposition = BUF_INIT;
	buf_printf(&disposition, "attachment; filename=\"%s.mobileconfig\"", cc.domain);
	http_response_header(resp, "Content-Disposition", buf_cstr(&disposition));
	buf_free(&disposition);
	clientconf_mobileconfig(&cc, address, &resp->body);
	clientconf_free(&cc);
}

/* RFC 8461: https://mta-sts.DOMAIN/.well-known/mta-sts.txt (HTTPS only). */
static void mta_sts(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct clientconf cc;
	if (!request_conf(ctx, req, NULL, &cc, resp))
		return;
	char id[17];
	clientconf_mta_sts(&cc, &resp->body, id);
	clientconf_free(&cc);
}

/* /dav/... and /.well-known/carddav: the CardDAV address book (transport/http/dav.h). */
static void dav(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct httpd *h = ctx;
	dav_handle(h->dav, req, resp);
}

/* /api/v1/...: the REST API (transport/http/api.h). */
static void api(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct httpd *h = ctx;
	api_handle(h->api, req, resp);
}

/* /admin/, /me/ and /web/...: the console and self-service pages (transport/http/web.h). */
static void web(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct httpd *h = ctx;
	web_handle(req, resp, h->d.cfg.ports[PORT_HTTPS], h->d.cfg.hostname);
}

/* The sign-in limits of this server's settings, as every service applies them. */
static void on_settings(struct daemon *d, const struct settings *s, void *ctx)
{
	(void)d;
	struct httpd *h = ctx;
	dav_settings(h->dav, s);
	api_settings(h->api, s);
}

static const struct http_route routes[] = {
	{ NULL, API_PREFIX, true, HTTP_ON_BOTH, api },
	{ NULL, DAV_PREFIX, true, HTTP_ON_BOTH, dav },
	{ NULL, DAV_WELL_KNOWN, false, HTTP_ON_BOTH, dav },
	{ "GET", WEB_ADMIN, false, HTTP_ON_BOTH, web },
	{ "GET", "/admin", false, HTTP_ON_BOTH, web },
	{ "GET", WEB_ME, false, HTTP_ON_BOTH, web },
	{ "GET", "/me", false, HTTP_ON_BOTH, web },
	{ "GET", WEB_ASSETS, true, HTTP_ON_BOTH, web },
	{ "GET", HTTPD_ACME_PATH, true, HTTP_ON_BOTH, acme_challenge },
	{ "GET", "/.well-known/autoconfig/mail/config-v1.1.xml", false, HTTP_ON_BOTH, autoconfig },
	{ "GET", "/mail/config-v1.1.xml", false, HTTP_ON_BOTH, autoconfig },
	{ "POST", "/autodiscover/autodiscover.xml", false, HTTP_ON_BOTH, autodiscover },
	{ "POST", "/Autodiscover/Autodiscover.xml", false, HTTP_ON_BOTH, autodiscover },
	{ "GET", "/mobileconfig", false, HTTP_ON_BOTH, mobileconfig },
	{ "GET", "/.well-known/mta-sts.txt", false, HTTP_ON_TLS, mta_sts },
	{ "GET", "/", false, HTTP_ON_BOTH, root_page },
};

/* The certificate changed (the daemon's context already serves it): the HTTPS listener takes it too. */
static void cert_changed(struct daemon *d, void *ctx)
{
	(void)d;
	struct httpd *h = ctx;
	struct buf err = BUF_INIT;
	if (http_server_reload_tls(h->srv, &err) == IX_OK)
		log_info("new HTTPS connections get the new certificate");
	else
		log_error("the HTTPS port keeps the old certificate: %s", buf_cstr(&err));
	buf_free(&err);
}

static void on_stop(struct daemon *d, void *ctx)
{
	struct httpd *h = ctx;
	http_server_stop(&h->srv);
	daemon_stopped(d);
}

int main(int argc, char **argv)
{
	static struct httpd h;
	daemon_setup(&h.d, "httpd", 0, argc, argv);
	const struct config *cfg = &h.d.cfg;
	h.acme_dir = config_path(cfg, HTTPD_ACME_DIR);
	char *challenges = xasprintf("%s%s", h.acme_dir, HTTPD_ACME_PATH);
	/* certbot (root) writes its challenges here, world-readable; like the rest of the data folder it is ours */
	if (mkdir_p(challenges, 0750) < 0)
		log_warn("cannot create %s: %s", challenges, strerror(errno));
	free(challenges);
	h.dav = dav_create(cfg, h.d.dir);
	h.api = api_create(cfg, h.d.dir);
	daemon_watch_settings(&h.d, on_settings, &h);
	struct http_server_config sc = {
		.listen = cfg->listen,
		.http_port = cfg->ports[PORT_HTTP],
		.https_port = cfg->ports[PORT_HTTPS],
		.cert_path = h.d.cert_path,
		.key_path = h.d.key_path,
		.routes = routes,
		.route_count = IX_ARRAY_LEN(routes),
		.ctx = &h,
	};
	struct buf err = BUF_INIT;
	if (http_server_start(&sc, &h.srv, &err) != IX_OK)
		fatal("cannot serve HTTP on ports %u and %u: %s", sc.http_port, sc.https_port, buf_cstr(&err));
	buf_free(&err);
	log_info("listening for http on port %u and https on port %u", http_server_port(h.srv, false),
		 http_server_port(h.srv, true));
	daemon_on_stop(&h.d, on_stop, &h);
	daemon_on_cert(&h.d, cert_changed, &h);
	daemon_run(&h.d);
	http_server_stop(&h.srv);
	dav_destroy(&h.dav);
	api_destroy(&h.api);
	daemon_teardown(&h.d);
	free(h.acme_dir);
	return 0;
}
