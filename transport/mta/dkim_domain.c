/* dkim_domain.c - a domain's DKIM keys across the organisation's servers (see dkim_domain.h). */
#include "transport/mta/dkim_domain.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* Splits selectors (one a line) into those whose key is in this server's data folder (local_r) and those of other
 * servers (other_r), each one a line; a value that does not parse counts as another server's. */
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

int dkim_domain_read(const struct config *cfg, const char *domain, const char *selectors,
		     struct dkim_domain_key **keys_r, size_t *count_r, struct buf *error_r)
{
	char *copy = xstrdup(selectors);
	size_t n = 0, cap = 1;
	for (const char *c = selectors; *c != '\0'; c++)
		cap += *c == '\n';
	struct dkim_domain_key *keys = xcalloc(cap, sizeof(*keys));
	int ret = IX_OK;
	for (char *save = NULL, *v = strtok_r(copy, "\n", &save); v != NULL && ret == IX_OK && n < cap;
	     v = strtok_r(NULL, "\n", &save)) {
		struct dkim_domain_key *k = &keys[n];
		if (dkim_selector_parse(v, strlen(v), &k->alg, k->selector, sizeof(k->selector)) != IX_OK) {
			buf_printf(error_r, "%s has a DKIM selector that is not ALGORITHM:SELECTOR: %s", domain, v);
			ret = IX_EINVAL;
			break;
		}
		snprintf(k->value, sizeof(k->value), "%s", v);
		char *path = dkim_key_path(cfg, domain, k->selector), *pem = NULL;
		size_t len;
		struct buf rec = BUF_INIT;
		if (read_file(path, DKIM_KEY_FILE_MAX, &pem, &len) == 0) { /* else another server's key */
			k->here = true;
			ret = dkim_key_record(pem, &rec, NULL, error_r);
			k->record = ret == IX_OK ? buf_steal(&rec) : NULL;
			explicit_bzero(pem, len);
		}
		free(pem);
		free(path);
		buf_free(&rec);
		n++;
	}
	free(copy);
	*keys_r = keys;
	*count_r = n;
	return ret;
}

void dkim_domain_keys_free(struct dkim_domain_key **keys, size_t count)
{
	for (size_t i = 0; *keys != NULL && i < count; i++)
		free((*keys)[i].record);
	free(*keys);
	*keys = NULL;
}

void dkim_domain_zone(struct buf *out, const char *domain, const struct dkim_domain_key *keys, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct dkim_domain_key *k = &keys[i];
		if (k->record == NULL) {
			/* each server signs with keys of its own: this one is another server's */
			buf_printf(out,
				   "; %s._domainkey.%s: the key is on another server of the organisation ('interchange "
				   "domain dkim %s' there prints its record)\n",
				   k->selector, domain, domain);
			continue;
		}
		buf_printf(out, "%s._domainkey.%s. IN TXT", k->selector, domain);
		size_t len = strlen(k->record);
		for (size_t off = 0; off < len; off += DKIM_TXT_STRING_MAX) {
			size_t n = len - off < DKIM_TXT_STRING_MAX ? len - off : DKIM_TXT_STRING_MAX;
			buf_printf(out, " \"%.*s\"", (int)n, k->record + off);
		}
		buf_append_char(out, '\n');
	}
}

int dkim_domain_records(const struct config *cfg, const char *domain, const char *selectors, struct buf *out,
			struct buf *error_r)
{
	struct dkim_domain_key *keys;
	size_t n;
	int ret = dkim_domain_read(cfg, domain, selectors, &keys, &n, error_r);
	if (ret == IX_OK)
		dkim_domain_zone(out, domain, keys, n);
	dkim_domain_keys_free(&keys, n);
	return ret;
}

/* Removes the key files of the selectors no longer in use (one a line). */
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

int dkim_domain_ensure(const struct config *cfg, struct prov *p, const char *domain, bool rotate, bool *made_r,
		       bool *replaced_r, struct buf *mine_r, struct buf *others_r, struct buf *error_r)
{
	struct buf old = BUF_INIT, mine = BUF_INIT;
	*made_r = *replaced_r = false;
	int ret = prov_domain_dkim_get(p, domain, &old, error_r);
	if (ret == IX_OK)
		split_local(cfg, domain, buf_cstr(&old), &mine, others_r);
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
		ret = make_key(cfg, domain, DKIM_ALG_ED25519, stamp, values[0], sizeof(values[0]), error_r);
		if (ret == IX_OK)
			ret = make_key(cfg, domain, DKIM_ALG_RSA, stamp, values[1], sizeof(values[1]), error_r);
		buf_printf(mine_r, "%s\n%s", values[0], values[1]);
		struct buf all = BUF_INIT;
		buf_printf(&all, "%s%s%s", buf_cstr(others_r), others_r->len > 0 ? "\n" : "", buf_cstr(mine_r));
		const char *v[DKIM_SELECTORS_MAX];
		size_t nv = 0;
		for (char *save = NULL, *x = strtok_r(all.data, "\n", &save); x != NULL && nv < IX_ARRAY_LEN(v);
		     x = strtok_r(NULL, "\n", &save))
			v[nv++] = x;
		if (ret == IX_OK)
			ret = prov_domain_dkim_set(p, domain, v, nv, error_r);
		buf_free(&all);
		if (ret == IX_OK) {
			remove_keys(cfg, domain, buf_cstr(&mine));
			*made_r = true;
			*replaced_r = mine.len > 0;
		} else {
			remove_keys(cfg, domain, buf_cstr(mine_r)); /* the directory refused them: no key left behind */
		}
	} else if (ret == IX_OK) {
		buf_append(mine_r, mine.data, mine.len);
	}
	buf_free(&old);
	buf_free(&mine);
	return ret;
}
