/* mta_sts.c - MTA-STS policies (see mta_sts.h): the TXT record through the validating resolver, the document over
 * HTTPS (oauth_https_get, connecting to the address our resolver gave), a direct-mapped cache under a lock. */
#include "transport/mta/mta_sts.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "transport/mta/dns.h"
#include "transport/net/oauth.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct slot {
	char domain[256];
	struct mta_sts_policy policy;
	time_t until; /* fetched + max_age */
};

struct mta_sts {
	struct dns *dns;
	pthread_mutex_t lock;
	struct slot slots[MTA_STS_CACHE];
};

/* ---- the policy document ---- */

bool mta_sts_parse(const char *text, size_t len, struct mta_sts_policy *p_r, struct buf *error_r)
{
	memset(p_r, 0, sizeof(*p_r));
	bool version = false, mode = false, age = false;
	size_t i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && text[e] != '\n')
			e++;
		size_t end = e > i && text[e - 1] == '\r' ? e - 1 : e;
		const char *colon = memchr(text + i, ':', end - i);
		if (colon != NULL) {
			size_t kl = (size_t)(colon - (text + i));
			const char *v = colon + 1;
			while (v < text + end && (*v == ' ' || *v == '\t'))
				v++;
			size_t vl = (size_t)(text + end - v);
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			char val[256];
			if (vl >= sizeof(val)) {
				buf_printf(error_r, "a value of %zu bytes", vl);
				return false;
			}
			memcpy(val, v, vl);
			val[vl] = '\0';
			if (kl == 7 && strncmp(text + i, "version", 7) == 0) {
				version = strcmp(val, "STSv1") == 0;
			} else if (kl == 4 && strncmp(text + i, "mode", 4) == 0) {
				mode = true;
				if (strcmp(val, "enforce") == 0)
					p_r->mode = MTA_STS_ENFORCE;
				else if (strcmp(val, "testing") == 0)
					p_r->mode = MTA_STS_TESTING;
				else if (strcmp(val, "none") == 0)
					p_r->mode = MTA_STS_NONE;
				else
					mode = false;
			} else if (kl == 7 && strncmp(text + i, "max_age", 7) == 0) {
				unsigned long long a;
				age = parse_uint(val, 1000000000000000ULL, &a) == 0; /* larger: taken as the most */
				p_r->max_age = (unsigned long)(a < MTA_STS_MAX_AGE_MAX ? a : MTA_STS_MAX_AGE_MAX);
			} else if (kl == 2 && strncmp(text + i, "mx", 2) == 0 && p_r->nmx < MTA_STS_MX_MAX && vl > 0) {
				memcpy(p_r->mx[p_r->nmx++], val, vl + 1);
			}
		}
		i = e + 1;
	}
	if (!version || !mode || !age) {
		buf_append_str(error_r, !version ? "no version: STSv1" : !mode ? "no valid mode" : "no valid max_age");
		return false;
	}
	if (p_r->mode != MTA_STS_NONE && p_r->nmx == 0) {
		buf_append_str(error_r, "no mx");
		return false;
	}
	return true;
}

bool mta_sts_mx_allowed(const struct mta_sts_policy *p, const char *host)
{
	size_t hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		if (pat[0] == '*' && pat[1] == '.') { /* one label, then the parent */
			const char *dot = memchr(host, '.', hl);
			size_t rest = dot != NULL ? hl - (size_t)(dot - host) : 0;
			if (dot != NULL && dot > host && rest == strlen(pat + 1) &&
			    strncasecmp(dot, pat + 1, rest) == 0)
				return true;
		} else if (strlen(pat) == hl && strncasecmp(pat, host, hl) == 0) {
			return true;
		}
	}
	return false;
}

/* ---- the cache ---- */

struct mta_sts *mta_sts_create(struct dns *resolver)
{
	struct mta_sts *s = xcalloc(1, sizeof(*s));
	s->dns = resolver;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void mta_sts_destroy(struct mta_sts **sp)
{
	struct mta_sts *s = *sp;
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

/* The id of domain's "v=STSv1; id=..." TXT record into id (size bytes): 1, 0 when there is none, -1 when DNS
 * failed. */
static int txt_id(struct mta_sts *s, const char *domain, char *id, size_t size)
{
	char name[DNS_NAME_MAX];
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	struct dns_answer a;
	dns_query(s->dns, name, DNS_T_TXT, &a);
	int found = a.status == DNS_TEMP || a.status == DNS_BOGUS ? -1 : 0;
	for (size_t i = 0; i < a.n && found == 0; i++) {
		struct buf t = BUF_INIT;
		dns_txt_join(a.rdata[i], a.rdlen[i], &t);
		const char *txt = buf_cstr(&t), *p = strstr(txt, "id=");
		if (strncmp(txt, "v=STSv1", 7) == 0 && p != NULL) {
			size_t n = strcspn(p + 3, "; \t");
			snprintf(id, size, "%.*s", (int)(n < size ? n : size - 1), p + 3);
			found = 1;
		}
		buf_free(&t);
	}
	dns_answer_free(&a);
	return found;
}

/* Fetches domain's policy document into p_r. */
static bool fetch(struct mta_sts *s, const char *domain, const char *ca_file, struct mta_sts_policy *p_r,
		  struct buf *error_r)
{
	char host[DNS_NAME_MAX], addr[INET6_ADDRSTRLEN] = "";
	snprintf(host, sizeof(host), "mta-sts.%s", domain);
	static const int types[2] = { DNS_T_A, DNS_T_AAAA };
	for (int t = 0; t < 2 && addr[0] == '\0'; t++) {
		struct dns_answer a;
		dns_query(s->dns, host, types[t], &a);
		if (a.status == DNS_OK && a.rdlen[0] == (t == 0 ? 4u : 16u))
			inet_ntop(t == 0 ? AF_INET : AF_INET6, a.rdata[0], addr, sizeof(addr));
		dns_answer_free(&a);
	}
	if (addr[0] == '\0') {
		buf_printf(error_r, "%s has no address", host);
		return false;
	}
	char *url = xasprintf("https://%s/.well-known/mta-sts.txt", host);
	struct buf doc = BUF_INIT;
	int rc = oauth_https_get(url, ca_file != NULL && ca_file[0] != '\0' ? ca_file : NULL, addr, MTA_STS_POLICY_MAX,
				 &doc, error_r);
	bool ok = rc == IX_OK && mta_sts_parse(doc.data != NULL ? doc.data : "", doc.len, p_r, error_r);
	if (rc == IX_OK && !ok)
		buf_printf(error_r, " (the policy at %s)", url);
	free(url);
	buf_free(&doc);
	return ok;
}

void mta_sts_get(struct mta_sts *s, const char *domain, const char *ca_file, struct mta_sts_policy *p_r,
		 struct buf *error_r)
{
	memset(p_r, 0, sizeof(*p_r));
	size_t h = 5381;
	for (const char *c = domain; *c != '\0'; c++)
		h = h * 33 + (unsigned char)(*c | 0x20);
	struct slot *slot = strlen(domain) < sizeof(s->slots[0].domain) ? &s->slots[h % MTA_STS_CACHE] : NULL;
	time_t now = time(NULL);
	struct mta_sts_policy cached = { 0 };
	if (slot != NULL) {
		pthread_mutex_lock(&s->lock);
		if (strcasecmp(slot->domain, domain) == 0 && slot->until > now)
			cached = slot->policy;
		pthread_mutex_unlock(&s->lock);
	}
	char id[sizeof(cached.id)] = "";
	int found = txt_id(s, domain, id, sizeof(id));
	/* no record now (or DNS failed): a policy still in force is kept (RFC 8461 5.1) */
	if (found <= 0 || strcmp(id, cached.id) == 0) {
		*p_r = cached;
		return;
	}
	struct mta_sts_policy fresh;
	if (!fetch(s, domain, ca_file, &fresh, error_r)) {
		*p_r = cached;
		return;
	}
	snprintf(fresh.id, sizeof(fresh.id), "%s", id);
	*p_r = fresh;
	if (slot != NULL) {
		pthread_mutex_lock(&s->lock);
		snprintf(slot->domain, sizeof(slot->domain), "%s", domain);
		slot->policy = fresh;
		slot->until = now + (time_t)fresh.max_age;
		pthread_mutex_unlock(&s->lock);
	}
}
