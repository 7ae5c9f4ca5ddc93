/* imap_url.c - IMAP URLs (RFC 5092) of one message or part: "imap://user@host:port/mailbox;UIDVALIDITY=v/;UID=u
 * /;SECTION=s/;PARTIAL=o.l;EXPIRE=t;URLAUTH=access:mech:token", "/mailbox..." and ";UID=..." relative forms. */
#include "transport/imap/imap_url.h"

#include "common/err.h"
#include "common/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void imap_url_free(struct imap_url *url)
{
	free(url->user);
	free(url->host);
	free(url->mailbox);
	free(url->section);
	free(url->access);
	free(url->mechanism);
	free(url->token);
	memset(url, 0, sizeof(*url));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into a new string; NULL for a bad escape or an encoded NUL. */
static char *pct_decode(const char *s, size_t len)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			buf_append_char(&b, s[i]);
			continue;
		}
		int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
		int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			buf_free(&b);
			return NULL;
		}
		buf_append_char(&b, (char)(hi << 4 | lo));
		i += 2;
	}
	char *r = buf_steal(&b);
	buf_free(&b);
	return r != NULL ? r : xstrdup("");
}

static bool number(const char *s, size_t len, uint64_t max, uint64_t *n_r)
{
	uint64_t n = 0;
	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]) || n > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*n_r = n;
	return true;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm). */
static bool datetime(const char *s, size_t len, int64_t *t_r)
{
	struct tm tm = { 0 };
	char z[64];
	if (len < 20 || len >= sizeof(z))
		return false;
	memcpy(z, s, len);
	z[len] = '\0';
	const char *p = strptime(z, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return false;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
		   p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L + ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	*t_r = (int64_t)timegm(&tm) - off;
	return true;
}

static bool keyword(const char *s, size_t len, const char *kw, size_t *kl_r)
{
	size_t kl = strlen(kw);
	if (len < kl || strncasecmp(s, kw, kl) != 0)
		return false;
	*kl_r = kl;
	return true;
}

static int fail(struct buf *error_r, const char *what)
{
	if (error_r != NULL)
		buf_printf(error_r, "Bad IMAP URL: %s", what);
	return IX_EINVAL;
}

/* The server part of an absolute URL: [user[;AUTH=x]@]host[:port], s[0..len). */
static int parse_server(const char *s, size_t len, struct imap_url *u, struct buf *error_r)
{
	const char *at = NULL;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '@')
			at = s + i;
	const char *host = s;
	if (at != NULL) {
		size_t ul = (size_t)(at - s);
		const char *semi = memchr(s, ';', ul);
		if (semi != NULL)
			ul = (size_t)(semi - s); /* ;AUTH=...: how to log in, nothing to check here */
		if (ul > 0 && (u->user = pct_decode(s, ul)) == NULL)
			return fail(error_r, "bad escape in the user name");
		host = at + 1;
	}
	size_t hl = len - (size_t)(host - s);
	const char *colon = hl > 0 && host[0] != '[' ? memchr(host, ':', hl) : NULL;
	if (host[0] == '[') {
		const char *close = memchr(host, ']', hl);
		if (close == NULL)
			return fail(error_r, "bad host");
		colon = (size_t)(close - host) + 1 < hl && close[1] == ':' ? close + 1 : NULL;
	}
	if (colon != NULL) {
		uint64_t port;
		if (!number(colon + 1, hl - (size_t)(colon - host) - 1, 65535, &port) || port == 0)
			return fail(error_r, "bad port");
		u->port = (unsigned)port;
		hl = (size_t)(colon - host);
	}
	if (hl == 0)
		return fail(error_r, "no host");
	u->host = xstrndup(host, hl);
	for (char *p = u->host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* The ";URLAUTH=access[:mech:token]" parameter's value v[0..len) of url: the rump ends with the access. */
static int parse_urlauth(const char *url, const char *v, size_t len, struct imap_url *u, struct buf *error_r)
{
	const char *c1 = memchr(v, ':', len);
	size_t al = c1 != NULL ? (size_t)(c1 - v) : len;
	if (al == 0)
		return fail(error_r, "empty URLAUTH access");
	u->access = pct_decode(v, al);
	if (u->access == NULL || imap_url_access_kind(u->access, NULL) == IMAP_URL_ACCESS_BAD)
		return fail(error_r, "bad URLAUTH access identifier");
	u->rump_len = (size_t)(v - url) + al;
	if (c1 == NULL)
		return 0;
	const char *mech = c1 + 1, *end = v + len;
	const char *c2 = memchr(mech, ':', (size_t)(end - mech));
	if (c2 == NULL || c2 == mech)
		return fail(error_r, "URLAUTH needs access:mechanism:token");
	const char *tok = c2 + 1;
	size_t tl = (size_t)(end - tok);
	if (tl < 32)
		return fail(error_r, "URLAUTH token shorter than 32 hex digits");
	for (size_t i = 0; i < tl; i++)
		if (hexval(tok[i]) < 0)
			return fail(error_r, "URLAUTH token is not hex");
	u->mechanism = xstrndup(mech, (size_t)(c2 - mech));
	for (char *p = u->mechanism; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	u->token = xstrndup(tok, tl);
	for (char *p = u->token; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

int imap_url_parse(const char *url, size_t len, struct imap_url *u, struct buf *error_r)
{
	memset(u, 0, sizeof(*u));
	if (memchr(url, '\0', len) != NULL)
		return fail(error_r, "NUL");
	const char *p = url, *end = url + len;
	size_t kl;
	if (keyword(p, len, "imap://", &kl)) {
		p += kl;
		const char *slash = memchr(p, '/', (size_t)(end - p));
		if (slash == NULL)
			return fail(error_r, "no mailbox");
		int ret = parse_server(p, (size_t)(slash - p), u, error_r);
		if (ret != 0)
			return ret;
		p = slash;
	}
	if (p < end && *p == '/') {
		/* the mailbox: up to the first ';' (enc-mailbox has none) */
		p++;
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *mend = semi != NULL ? semi : end;
		if (semi != NULL && mend > p && mend[-1] == '/')
			mend--; /* "INBOX/;UID=1": the slash goes with the parameter */
		if (mend == p)
			return fail(error_r, "empty mailbox name");
		if ((u->mailbox = pct_decode(p, (size_t)(mend - p))) == NULL)
			return fail(error_r, "bad escape in the mailbox name");
		p = mend;
	} else if (u->host != NULL || p == end || *p != ';') {
		return fail(error_r, "neither imap://, /mailbox nor ;UID=");
	}
	/* parameters: ";NAME=value", "/;NAME=value"; a value ends at the next "/;" or ";" */
	bool have_uid = false;
	while (p < end) {
		bool slash = *p == '/';
		if (slash)
			p++;
		if (p >= end || *p != ';')
			return fail(error_r, "expected ;NAME=value");
		p++;
		const char *v;
		size_t vl;
		const char *next = p;
		while (next < end && *next != ';' && !(*next == '/' && next + 1 < end && next[1] == ';'))
			next++;
		const char *eq = memchr(p, '=', (size_t)(next - p));
		if (eq == NULL)
			return fail(error_r, "parameter without a value");
		v = eq + 1;
		vl = (size_t)(next - v);
		size_t nl = (size_t)(eq - p);
		uint64_t n;
		if (nl == 11 && strncasecmp(p, "UIDVALIDITY", nl) == 0 && !slash && !have_uid && u->mailbox != NULL) {
			if (!number(v, vl, UINT32_MAX, &n) || n == 0)
				return fail(error_r, "bad UIDVALIDITY");
			u->uidvalidity = (uint32_t)n;
		} else if (nl == 3 && strncasecmp(p, "UID", nl) == 0 && !have_uid &&
			   (slash || (u->mailbox == NULL && p == url + 1))) {
			if (!number(v, vl, UINT32_MAX, &n) || n == 0)
				return fail(error_r, "bad UID");
			u->uid = (uint32_t)n;
			have_uid = true;
		} else if (nl == 7 && strncasecmp(p, "SECTION", nl) == 0 && slash && have_uid && u->section == NULL &&
			   !u->partial) {
			if (vl == 0 || (u->section = pct_decode(v, vl)) == NULL)
				return fail(error_r, "bad SECTION");
			for (char *c = u->section; *c != '\0'; c++)
				*c = (char)toupper((unsigned char)*c);
		} else if (nl == 7 && strncasecmp(p, "PARTIAL", nl) == 0 && slash && have_uid && !u->partial) {
			const char *dot = memchr(v, '.', vl);
			uint64_t o, l = 0;
			if (!number(v, dot != NULL ? (size_t)(dot - v) : vl, UINT64_MAX, &o) ||
			    (dot != NULL && (!number(dot + 1, vl - (size_t)(dot - v) - 1, UINT64_MAX, &l) || l == 0)))
				return fail(error_r, "bad PARTIAL");
			u->partial = true;
			u->partial_offset = o;
			u->partial_length = l;
		} else if (nl == 6 && strncasecmp(p, "EXPIRE", nl) == 0 && !slash && have_uid && !u->has_expire &&
			   u->access == NULL) {
			if (!datetime(v, vl, &u->expire))
				return fail(error_r, "bad EXPIRE date-time");
			u->has_expire = true;
		} else if (nl == 7 && strncasecmp(p, "URLAUTH", nl) == 0 && !slash && have_uid && u->access == NULL) {
			if (next != end)
				return fail(error_r, "URLAUTH must come last");
			int ret = parse_urlauth(url, v, vl, u, error_r);
			if (ret != 0)
				return ret;
		} else {
			return fail(error_r, "unknown or misplaced parameter");
		}
		p = next;
	}
	if (!have_uid)
		return fail(error_r, "no UID");
	if (u->access != NULL && u->host == NULL)
		return fail(error_r, "URLAUTH needs an absolute URL");
	return 0;
}

enum imap_url_access imap_url_access_kind(const char *access, const char **user_r)
{
	size_t kl;
	size_t len = strlen(access);
	if (strcasecmp(access, "anonymous") == 0)
		return IMAP_URL_ACCESS_ANONYMOUS;
	if (strcasecmp(access, "authuser") == 0)
		return IMAP_URL_ACCESS_AUTHUSER;
	enum imap_url_access k = IMAP_URL_ACCESS_BAD;
	if (keyword(access, len, "user+", &kl))
		k = IMAP_URL_ACCESS_USER;
	else if (keyword(access, len, "submit+", &kl))
		k = IMAP_URL_ACCESS_SUBMIT;
	if (k == IMAP_URL_ACCESS_BAD || access[kl] == '\0')
		return IMAP_URL_ACCESS_BAD;
	if (user_r != NULL)
		*user_r = access + kl;
	return k;
}

int imap_url_section_spec(const struct imap_url *url, struct buf *out)
{
	const char *s = url->section != NULL ? url->section : "";
	/* parts "n.n.n", optionally followed by ".HEADER", ".TEXT", ".MIME" (MIME only after a part) */
	const char *p = s;
	bool part = false;
	while (isdigit((unsigned char)*p)) {
		if (*p == '0')
			return IX_EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
		part = true;
		if (*p != '.')
			break;
		p++;
	}
	if (*p != '\0' && strcmp(p, "HEADER") != 0 && strcmp(p, "TEXT") != 0 && !(part && strcmp(p, "MIME") == 0))
		return IX_EINVAL;
	if (*p == '\0' && p > s && p[-1] == '.')
		return IX_EINVAL;
	buf_append_str(out, s);
	return 0;
}
