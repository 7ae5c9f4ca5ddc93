/* dkim.c - DKIM signing through libopendkim (which signs Ed25519 since 2.11): the one boundary where libopendkim's
 * errors become ours; which domain and keys sign a message leaving the organisation. */
#include "transport/mta/dkim.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/mta/mta.h"

#include <opendkim/dkim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dkim_signer {
	DKIM_LIB *lib;
};

int dkim_signer_create(struct dkim_signer **s_r, struct buf *error_r)
{
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	if (lib == NULL) {
		buf_append_str(error_r, "libopendkim cannot start");
		return IX_EIO;
	}
	/* From is signed once more than it occurs, so a From added later breaks the signature (RFC 6376 8.15) */
	static const char *oversign[] = { "from", NULL }; /* kept by the library: static */
	const char **list = oversign;                     /* the library takes the list and a pointer's size */
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, list, sizeof(list)) != DKIM_STAT_OK) {
		dkim_close(lib);
		buf_append_str(error_r, "libopendkim refuses the header fields to oversign");
		return IX_EIO;
	}
	struct dkim_signer *s = xcalloc(1, sizeof(*s));
	s->lib = lib;
	*s_r = s;
	return IX_OK;
}

void dkim_signer_destroy(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;
	if (s == NULL)
		return;
	dkim_close(s->lib);
	free(s);
	*sp = NULL;
}

/* Appends "DKIM-Signature: VALUE" with the library's line ends made CRLF. */
static void append_field(struct buf *out, const unsigned char *value, size_t len)
{
	buf_append_str(out, DKIM_SIGNHEADER ": ");
	for (size_t i = 0; i < len; i++) {
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			buf_append_char(out, '\r');
		buf_append_char(out, (char)value[i]);
	}
	buf_append_str(out, "\r\n");
}

static int sign_one(struct dkim_signer *s, const struct dkim_key *k, const char *msg, size_t len, struct buf *fields_r,
		    struct buf *error_r)
{
	DKIM_STAT st;
	DKIM *d = dkim_sign(s->lib, (const unsigned char *)"ix", NULL, (dkim_sigkey_t)k->pem,
			    (const unsigned char *)k->selector, (const unsigned char *)k->domain, DKIM_CANON_RELAXED,
			    DKIM_CANON_RELAXED,
			    k->alg == DKIM_ALG_ED25519 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256, -1, &st);
	if (d == NULL) {
		buf_printf(error_r, "DKIM signing for %s (selector %s) cannot start: %s", k->domain, k->selector,
			   dkim_getresultstr(st));
		return IX_EINVAL;
	}
	u_char *hdr = NULL;
	size_t hlen = 0;
	st = dkim_chunk(d, (u_char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(d, strlen(DKIM_SIGNHEADER) + 2, &hdr, &hlen);
	int ret = IX_OK;
	if (st == DKIM_STAT_OK) {
		append_field(fields_r, hdr, hlen);
	} else {
		const char *why = dkim_geterror(d);
		buf_printf(error_r, "DKIM signing for %s (selector %s, %s): %s", k->domain, k->selector,
			   dkim_alg_name(k->alg), why != NULL && *why != '\0' ? why : dkim_getresultstr(st));
		ret = IX_EINVAL;
	}
	dkim_free(d);
	return ret;
}

int dkim_sign_message(struct dkim_signer *s, const struct dkim_key *keys, size_t n, const char *msg, size_t len,
		      struct buf *fields_r, struct buf *error_r)
{
	for (size_t i = 0; i < n; i++) {
		int ret = sign_one(s, &keys[i], msg, len, fields_r, error_r);
		if (ret != IX_OK)
			return ret;
	}
	return IX_OK;
}

int dkim_sign_outgoing(struct dkim_signer *s, struct dir *dir, const struct config *cfg, const char *msg, size_t len,
		       struct buf *fields_r, struct buf *error_r)
{
	char domain[256];
	if (!mta_header_from_domain(msg, len, domain, sizeof(domain)))
		return IX_ENOTFOUND;
	/* the From's domain, else its nearest parent among ours (MAILER-DAEMON@host.example.com signs as example.com) */
	struct buf sels = BUF_INIT;
	const char *d = domain;
	while (d != NULL && !(dir_domain_dkim(dir, d, &sels) == IX_OK && sels.len > 0)) {
		d = strchr(d, '.');
		d = d != NULL && strchr(d + 1, '.') != NULL ? d + 1 : NULL;
	}
	if (d == NULL) {
		buf_free(&sels);
		return IX_ENOTFOUND;
	}
	struct dkim_key keys[DKIM_KEYS_MAX];
	char selectors[DKIM_KEYS_MAX][128];
	char *pems[DKIM_KEYS_MAX] = { 0 };
	size_t n = 0;
	int ret = IX_OK;
	for (char *save = NULL, *line = strtok_r(sels.data, "\n", &save); line != NULL && n < DKIM_KEYS_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		if (dkim_selector_parse(line, strlen(line), &keys[n].alg, selectors[n], sizeof(selectors[n])) !=
		    IX_OK) {
			buf_printf(error_r, "%s has a DKIM selector that is not ALGORITHM:SELECTOR: %s", d, line);
			ret = IX_EINVAL;
			break;
		}
		char *path = dkim_key_path(cfg, d, selectors[n]);
		size_t klen;
		if (read_file(path, DKIM_KEY_FILE_MAX, &pems[n], &klen) != 0) {
			buf_printf(error_r, "no key for the DKIM selector %s of %s: %s cannot be read", selectors[n], d,
				   path);
			free(path);
			ret = IX_EIO;
			break;
		}
		free(path);
		keys[n].domain = d;
		keys[n].selector = selectors[n];
		keys[n].pem = pems[n];
		n++;
	}
	if (ret == IX_OK)
		ret = dkim_sign_message(s, keys, n, msg, len, fields_r, error_r);
	for (size_t i = 0; i < DKIM_KEYS_MAX; i++)
		free(pems[i]);
	buf_free(&sels);
	return ret;
}
