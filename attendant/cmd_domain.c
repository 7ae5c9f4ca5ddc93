/* cmd_domain.c - interchange domain: the organisation's accepted domains, and the DKIM keys their outgoing mail is
 * signed with (selectors in the directory, private keys in this server's data folder, records for DNS). */
#include "attendant/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"
#include "transport/mta/dkim.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A TXT record's strings hold at most 255 bytes (RFC 1035 3.3.14): longer values are written as several. */
#define DOMAIN_TXT_STRING_MAX 255

static const char domain_help[] =
	"usage: interchange domain list\n"
	"       interchange domain dkim DOMAIN [--rotate]\n\n"
	"list shows the organisation's accepted domains, their types and DKIM selectors.\n"
	"dkim makes this server's DKIM keys of DOMAIN when it has none (an Ed25519 key and an RSA-2048 key, RFC 8463\n"
	"and RFC 6376): their selectors go into the directory beside other servers' ones, the private keys into this\n"
	"server's data folder (dkim/, readable by the service user alone), and every message from the domain that\n"
	"this server sends out of the organisation is signed with both. Run it on each server that sends mail out.\n"
	"It prints the DNS TXT records to publish; run again, it prints them again. --rotate makes new keys for this\n"
	"server that sign from now on: publish their records, keep the old ones a few days, then remove them.\n"
	"All commands take --data DIR.\n";

/* Appends the zone-file line of the TXT record of selector: NAME. IN TXT "..." ["..."]. */
static void record_line(struct buf *out, const char *domain, const char *selector, const char *value)
{
	buf_printf(out, "%s._domainkey.%s. IN TXT", selector, domain);
	size_t len = strlen(value);
	for (size_t off = 0; off < len; off += DOMAIN_TXT_STRING_MAX) {
		size_t n = len - off < DOMAIN_TXT_STRING_MAX ? len - off : DOMAIN_TXT_STRING_MAX;
		buf_printf(out, " \"%.*s\"", (int)n, value + off);
	}
	buf_append_char(out, '\n');
}

/* Writes a new key of alg for domain under a selector named after now: its file, and its "ALGORITHM:SELECTOR" value
 * into value (size bytes). */
static int make_key(const struct config *cfg, const char *domain, enum dkim_alg alg, const char *stamp, char *value,
		    size_t size, struct buf *error_r)
{
	char selector[64];
	snprintf(selector, sizeof(selector), "%s-%s", alg == DKIM_ALG_ED25519 ? "ed" : "rsa", stamp);
	struct buf pem = BUF_INIT;
	int ret = dkim_key_generate(alg, &pem, error_r);
	char *path = dkim_key_path(cfg, domain, selector);
	if (ret == IX_OK) {
		char *dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));
		char *top = config_path(cfg, DKIM_DIR);
		if (mkdir_p(dir, 0700) != 0 || chmod(top, 0700) != 0 || chmod(dir, 0700) != 0 ||
		    write_file_atomic(path, pem.data, pem.len, 0600) != 0) {
			buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
			ret = IX_EIO;
		}
		free(dir);
		free(top);
	}
	snprintf(value, size, "%s:%s", dkim_alg_name(alg), selector);
	explicit_bzero(pem.data, pem.len);
	buf_free(&pem);
	free(path);
	return ret;
}

/* Splits selectors (ixDkimSelector values, one a line) into those whose key is in this server's data folder (local_r)
 * and those of other servers (other_r), each one a line; a value that does not parse counts as another server's. */
static void split_local(const struct config *cfg, const char *domain, const char *selectors, struct buf *local_r,
			struct buf *other_r)
{
	char *copy = xstrdup(selectors);
	for (char *save = NULL, *v = strtok_r(copy, "\n", &save); v != NULL; v = strtok_r(NULL, "\n", &save)) {
		enum dkim_alg alg;
		char sel[128];
		bool here = false;
		if (dkim_selector_parse(v, strlen(v), &alg, sel, sizeof(sel)) == IX_OK) {
			char *path = dkim_key_path(cfg, domain, sel);
			here = access(path, F_OK) == 0;
			free(path);
		}
		struct buf *to = here ? local_r : other_r;
		buf_printf(to, "%s%s", to->len > 0 ? "\n" : "", v);
	}
	free(copy);
}

int domain_dkim_records(const struct config *cfg, const char *domain, const char *selectors, struct buf *out,
			struct buf *error_r)
{
	char *copy = xstrdup(selectors);
	int ret = IX_OK;
	for (char *save = NULL, *v = strtok_r(copy, "\n", &save); v != NULL && ret == IX_OK;
	     v = strtok_r(NULL, "\n", &save)) {
		enum dkim_alg alg;
		char sel[128];
		if (dkim_selector_parse(v, strlen(v), &alg, sel, sizeof(sel)) != IX_OK) {
			buf_printf(error_r, "%s has a DKIM selector that is not ALGORITHM:SELECTOR: %s", domain, v);
			ret = IX_EINVAL;
			break;
		}
		char *path = dkim_key_path(cfg, domain, sel), *pem = NULL;
		size_t len;
		struct buf rec = BUF_INIT;
		if (read_file(path, DKIM_KEY_FILE_MAX, &pem, &len) != 0) {
			/* each server signs with keys of its own: this one is another server's */
			buf_printf(out,
				   "; %s._domainkey.%s: the key is on another server of the organisation ('interchange "
				   "domain dkim %s' there prints its record)\n",
				   sel, domain, domain);
		} else if ((ret = dkim_key_record(pem, &rec, NULL, error_r)) == IX_OK) {
			record_line(out, domain, sel, buf_cstr(&rec));
		}
		if (pem != NULL)
			explicit_bzero(pem, len);
		free(pem);
		free(path);
		buf_free(&rec);
	}
	free(copy);
	return ret;
}

/* Removes the key files of the selectors no longer in use (ixDkimSelector values, one a line). */
static void remove_keys(const struct config *cfg, const char *domain, const char *selectors)
{
	char *copy = xstrdup(selectors);
	for (char *save = NULL, *v = strtok_r(copy, "\n", &save); v != NULL; v = strtok_r(NULL, "\n", &save)) {
		enum dkim_alg alg;
		char sel[128];
		if (dkim_selector_parse(v, strlen(v), &alg, sel, sizeof(sel)) != IX_OK)
			continue;
		char *path = dkim_key_path(cfg, domain, sel);
		(void)unlink(path);
		free(path);
	}
	free(copy);
}

struct domain_args {
	const char *domain;
	bool rotate;
};

static int domain_list(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	(void)ctx;
	return prov_domain_list(p, out, err);
}

static int domain_dkim(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	const struct domain_args *a = ctx;
	const char *domain = a->domain;
	bool rotate = a->rotate;
	struct buf old = BUF_INIT, mine = BUF_INIT, others = BUF_INIT, cur = BUF_INIT;
	int ret = prov_domain_dkim_get(p, domain, &old, err);
	if (ret == IX_OK)
		split_local(cfg, domain, buf_cstr(&old), &mine, &others);
	/* each server signs with keys of its own: one without any makes them, beside the other servers' selectors */
	if (ret == IX_OK && (mine.len == 0 || rotate)) {
		char base[32], stamp[40], values[2][128];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(base, sizeof(base), "%Y%m%d%H%M%S", &tm);
		snprintf(stamp, sizeof(stamp), "%s", base);
		/* a rotation within the same second (or another server's keys of that second) still gets names of its own */
		for (char c = 'a'; strstr(buf_cstr(&old), stamp) != NULL && c <= 'z'; c++)
			snprintf(stamp, sizeof(stamp), "%s%c", base, c);
		ret = make_key(cfg, domain, DKIM_ALG_ED25519, stamp, values[0], sizeof(values[0]), err);
		if (ret == IX_OK)
			ret = make_key(cfg, domain, DKIM_ALG_RSA, stamp, values[1], sizeof(values[1]), err);
		buf_printf(&cur, "%s\n%s", values[0], values[1]);
		struct buf all = BUF_INIT;
		buf_printf(&all, "%s%s%s", buf_cstr(&others), others.len > 0 ? "\n" : "", buf_cstr(&cur));
		const char *v[DKIM_SELECTORS_MAX];
		size_t nv = 0;
		for (char *save = NULL, *x = strtok_r(all.data, "\n", &save); x != NULL && nv < IX_ARRAY_LEN(v);
		     x = strtok_r(NULL, "\n", &save))
			v[nv++] = x;
		if (ret == IX_OK)
			ret = prov_domain_dkim_set(p, domain, v, nv, err);
		buf_free(&all);
		if (ret == IX_OK) {
			remove_keys(cfg, domain, buf_cstr(&mine));
			buf_printf(out,
				   "Made new DKIM keys for %s on %s: mail from it that this server sends out of the "
				   "organisation is signed with them from now on.\n",
				   domain, cfg->hostname);
			if (mine.len > 0)
				buf_printf(
					out,
					"This server's previous selectors sign nothing more: keep their records published a "
					"few days\n(mail already on its way), then remove them.\n");
		}
	} else if (ret == IX_OK) {
		buf_append(&cur, mine.data, mine.len);
	}
	if (ret == IX_OK) {
		buf_printf(out, "Publish these TXT records in the DNS zone of %s:\n", domain);
		ret = domain_dkim_records(cfg, domain, buf_cstr(&cur), out, err);
	}
	if (ret == IX_OK && others.len > 0)
		ret = domain_dkim_records(cfg, domain, buf_cstr(&others), out, err);
	buf_free(&old);
	buf_free(&mine);
	buf_free(&others);
	buf_free(&cur);
	return ret;
}

int cmd_domain(const char *data_dir, int argc, char **argv)
{
	int shown = cli_help_or_usage(argc, argv, domain_help);
	if (shown >= 0)
		return shown;
	const char *verb = argv[1], *domain = NULL;
	bool list = strcmp(verb, "list") == 0, dkim = strcmp(verb, "dkim") == 0, rotate = false;
	if (!list && !dkim) {
		fprintf(stderr, "interchange: unknown domain command \"%s\"\n\n%s", verb, domain_help);
		return CLI_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (dkim && strcmp(argv[i], "--rotate") == 0 && !rotate) {
			rotate = true;
		} else if (dkim && domain == NULL && argv[i][0] != '-') {
			domain = argv[i];
		} else {
			fprintf(stderr, "interchange: domain %s: unexpected argument \"%s\"\n\n%s", verb, argv[i],
				domain_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (dkim && domain == NULL) {
		fprintf(stderr, "interchange: domain dkim needs the DOMAIN\n\n%s", domain_help);
		return CLI_EXIT_USAGE;
	}
	struct domain_args a = { domain, rotate };
	return cli_with_prov(data_dir, list ? domain_list : domain_dkim, &a);
}
