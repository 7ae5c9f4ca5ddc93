/* cmd_dns.c - `interchange dns [DOMAIN]`: every DNS record an administrator publishes for a domain of the
 * organisation, as zone-file lines, from what the directory holds now (servers, ports, domains) and this certificate. */
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/dir.h"
#include "transport/http/clientconf.h"
#include "transport/mta/dkim_domain.h"
#include "transport/net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How long dns waits for the directory replica's first refresh. */
#define DNS_DIR_READY_MS 10000
#define DNS_TTL 3600

static const char dns_help[] =
	"usage: interchange dns [DOMAIN] [--data DIR]\n\n"
	"Prints every DNS record to publish for DOMAIN (default: the organisation's first domain; any accepted\n"
	"domain), as zone-file lines with a comment before each group: the host's address when it listens on one,\n"
	"MX (every server of the organisation), SPF, DKIM (the domain's keys, when 'interchange domain dkim' made them),\n"
	"DMARC (p=quarantine once DKIM signs, p=none before),\n"
	"MTA-STS (the policy is served by ix-httpd at https://mta-sts.DOMAIN/.well-known/mta-sts.txt) and TLS-RPT,\n"
	"SRV records for mail clients (RFC 6186 and 8314: imaps, imap, pop3s, pop3, submissions, submission), the\n"
	"autoconfig and autodiscover names clients look up, and TLSA records (DANE, RFC 7672) for this server's\n"
	"certificate on its SMTP and TLS ports. The ports are this server's, as 'interchange status' shows them.\n"
	"The system must be running: the records come from its directory.\n";

static void record(struct buf *out, const char *owner_prefix, const char *owner, const char *type, const char *fmt, ...)
	IX_PRINTF(5, 6);
static void record(struct buf *out, const char *owner_prefix, const char *owner, const char *type, const char *fmt, ...)
{
	buf_printf(out, "%s%s.\t%d\tIN\t%s\t", owner_prefix, owner, DNS_TTL, type);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(out, fmt, ap);
	va_end(ap);
	buf_append_char(out, '\n');
}

static void srv(struct buf *out, const char *service, const struct clientconf *cc, unsigned priority, unsigned port)
{
	char owner[64];
	snprintf(owner, sizeof(owner), "_%s._tcp.", service);
	if (port == 0)
		record(out, owner, cc->domain, "SRV", "0 0 0 ."); /* RFC 6186: not offered */
	else
		record(out, owner, cc->domain, "SRV", "%u 1 %u %s.", priority, port, cc->hostname);
}

/* The host's A or AAAA record when it listens on one public address; a comment otherwise. */
static void host_address(struct buf *out, const struct config *cfg)
{
	const char *listen = cfg->listen != NULL ? cfg->listen : "127.0.0.1";
	struct in_addr v4;
	struct in6_addr v6;
	bool is4 = inet_pton(AF_INET, listen, &v4) == 1, is6 = !is4 && inet_pton(AF_INET6, listen, &v6) == 1;
	bool specific = (is4 && v4.s_addr != htonl(INADDR_ANY) && (ntohl(v4.s_addr) >> 24) != 127) ||
			(is6 && !IN6_IS_ADDR_UNSPECIFIED(&v6) && !IN6_IS_ADDR_LOOPBACK(&v6));
	buf_printf(out, "; the host clients and other servers connect to\n");
	if (specific)
		record(out, "", cfg->hostname, is4 ? "A" : "AAAA", "%s", listen);
	else
		buf_printf(out, "; %s.\t%d\tIN\tA\tTHE-PUBLIC-ADDRESS-OF-THIS-MACHINE (it listens on %s)\n",
			   cfg->hostname, DNS_TTL, listen);
}

static int print_records(const struct config *cfg, struct dir *dir, const char *domain)
{
	struct clientconf cc;
	if (clientconf_fill(cfg, dir, domain, &cc) != IX_OK) {
		cli_error("dns: %s is not a domain of this organisation (its accepted domains are in the directory, "
			  "under ou=Accepted Domains,ou=Configuration)",
			  domain);
		return CLI_EXIT_FAIL;
	}
	struct buf out = BUF_INIT;
	const char *d = cc.domain;
	buf_printf(&out, "; DNS records for %s, from the directory of %s (interchange dns)\n", d, cfg->hostname);
	/* the host's own records (its address, TLSA) go in the zone the host name is in */
	size_t hl = strlen(cc.hostname), dl = strlen(d);
	bool host_here = strcasecmp(cc.hostname, d) == 0 ||
			 (hl > dl && cc.hostname[hl - dl - 1] == '.' && strcasecmp(cc.hostname + hl - dl, d) == 0);
	if (host_here)
		host_address(&out, cfg);

	buf_printf(&out, "; mail for %s goes to the servers of the organisation\n", d);
	for (size_t i = 0; cc.mx[i] != NULL; i++)
		record(&out, "", d, "MX", "10 %s.", cc.mx[i]);
	buf_printf(&out, "; SPF: only those servers send mail from %s\n", d);
	record(&out, "", d, "TXT", "\"v=spf1 mx -all\"");
	struct buf selectors = BUF_INIT, err = BUF_INIT;
	bool dkim = dir_domain_dkim(dir, d, &selectors) == IX_OK && selectors.len > 0;
	if (!dkim) {
		buf_printf(&out, "; DKIM: %s has no signing keys ('interchange domain dkim %s' makes them)\n", d, d);
	} else {
		buf_printf(&out, "; DKIM: the public keys of the domain's signing keys ('interchange domain dkim')\n");
		if (dkim_domain_records(cfg, d, buf_cstr(&selectors), &out, &err) != IX_OK) {
			buf_printf(&out, "; DKIM: %s\n", buf_cstr(&err));
			dkim = false;
		}
	}
	buf_free(&selectors);
	buf_reset(&err);
	buf_printf(&out, "; DMARC: reports to postmaster%s\n",
		   dkim ? "" : "; raise p=none to quarantine once DKIM signs the mail");
	record(&out, "_dmarc.", d, "TXT", "\"v=DMARC1; p=%s; rua=mailto:postmaster@%s\"", dkim ? "quarantine" : "none",
	       d);

	struct buf policy = BUF_INIT;
	char id[17];
	clientconf_mta_sts(&cc, &policy, id);
	buf_printf(&out,
		   "; MTA-STS (RFC 8461): ix-httpd serves the policy at https://mta-sts.%s/.well-known/mta-sts.txt on "
		   "the HTTPS port (%u);\n; its certificate must name mta-sts.%s. TLS-RPT: failure reports to "
		   "postmaster\n",
		   d, cfg->ports[PORT_HTTPS], d);
	buf_free(&policy);
	record(&out, "_mta-sts.", d, "TXT", "\"v=STSv1; id=%s\"", id);
	record(&out, "mta-sts.", d, "CNAME", "%s.", cc.hostname);
	record(&out, "_smtp._tls.", d, "TXT", "\"v=TLSRPTv1; rua=mailto:postmaster@%s\"", d);

	buf_printf(&out, "; mail clients find their servers (RFC 6186, RFC 8314: TLS from the first byte preferred)\n");
	srv(&out, "imaps", &cc, 0, cc.imaps);
	srv(&out, "imap", &cc, 10, cc.imap);
	srv(&out, "pop3s", &cc, 20, cc.pop3s);
	srv(&out, "pop3", &cc, 30, cc.pop3);
	srv(&out, "submissions", &cc, 0, cc.submissions);
	srv(&out, "submission", &cc, 10, cc.submission);
	buf_printf(&out, "; Thunderbird (autoconfig) and Outlook (autodiscover) ask these names; ix-httpd answers\n");
	record(&out, "autoconfig.", d, "CNAME", "%s.", cc.hostname);
	record(&out, "autodiscover.", d, "CNAME", "%s.", cc.hostname);
	record(&out, "_autodiscover._tcp.", d, "SRV", "0 1 %u %s.", cfg->ports[PORT_HTTPS], cc.hostname);

	char *certpath = config_path(cfg, "tls/cert.pem");
	char *pem = NULL, hex[TLS_FINGERPRINT_HEX + 1];
	size_t len = 0;
	if (!host_here) {
		buf_printf(&out,
			   "; the address and TLSA records of %s belong in its own zone: 'interchange dns' for it\n",
			   cc.hostname);
	} else if (read_file(certpath, TLS_PEM_MAX, &pem, &len) == 0 &&
		   tls_cert_spki_sha256(pem, len, hex, &err) == IX_OK) {
		buf_printf(
			&out,
			"; DANE (RFC 7672): the key of this server's certificate, on each port with TLS. A renewal must "
			"keep the key\n; (certbot --reuse-key), or publish the next key's records before it is used\n");
		const unsigned ports[] = { cfg->ports[PORT_SMTP], cfg->ports[PORT_SUBMISSION], cc.submissions,
					   cfg->ports[PORT_IMAP], cfg->ports[PORT_IMAPS],      cfg->ports[PORT_POP3],
					   cfg->ports[PORT_POP3S] };
		for (size_t i = 0; i < IX_ARRAY_LEN(ports); i++) {
			char owner[32];
			snprintf(owner, sizeof(owner), "_%u._tcp.", ports[i]);
			if (ports[i] != 0)
				record(&out, owner, cc.hostname, "TLSA", "3 1 1 %s", hex);
		}
	} else {
		buf_printf(&out, "; DANE: the certificate %s cannot be read (%s), so no TLSA record is printed\n",
			   certpath, err.len ? buf_cstr(&err) : strerror(errno));
	}
	free(pem);
	free(certpath);
	buf_free(&err);
	fputs(buf_cstr(&out), stdout);
	buf_free(&out);
	clientconf_free(&cc);
	return CLI_EXIT_OK;
}

int cmd_dns(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(dns_help, stdout);
		return CLI_EXIT_OK;
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		cli_error("dns takes at most one domain: see 'interchange dns --help'");
		return CLI_EXIT_USAGE;
	}
	const char *domain = argc == 2 ? argv[1] : NULL;
	if (domain != NULL && !config_domain_valid(domain)) {
		cli_error("dns: \"%s\" is not a domain name", domain);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	if (!cli_system_running(&cfg)) {
		cli_error("dns reads the directory of the running system: start it first ('interchange start')");
		config_free(&cfg);
		return CLI_EXIT_FAIL;
	}
	struct dir *dir = NULL;
	struct buf err = BUF_INIT;
	char *ldapi = config_ldapi_uri(&cfg);
	int ret = CLI_EXIT_FAIL;
	if (dir_open(ldapi, cfg.suffix, &dir, &err) != IX_OK)
		cli_error("dns: cannot read the directory: %s", buf_cstr(&err));
	else if (dir_wait_ready(dir, DNS_DIR_READY_MS) != IX_OK)
		cli_error("dns: the directory did not answer within %d s", DNS_DIR_READY_MS / 1000);
	else
		ret = print_records(&cfg, dir, domain);
	dir_destroy(&dir);
	free(ldapi);
	buf_free(&err);
	config_free(&cfg);
	return ret;
}
