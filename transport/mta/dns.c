/* dns.c - the mail path's DNS resolver over libunbound: a validating resolver context per configuration, shared by
 * every thread (libunbound locks its cache), swapped whole when dns.resolver or dns.trust_anchor change. */
#include "transport/mta/dns.h"
#include "common/err.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>
#include <unistd.h>

struct dns {
	pthread_rwlock_t lock; /* queries hold it shared; a new configuration exclusively */
	struct ub_ctx *ub;     /* NULL: could not start */
	char server[SETTING_TEXT_MAX];
	char anchor[SETTING_TEXT_MAX];
	char error[200];             /* why ub is NULL */
	_Atomic unsigned timeout_ms; /* one query's limit (dns.timeout) */
};

/* A resolver context for server and anchor ("" for the defaults), or NULL with why. */
static struct ub_ctx *ub_make(const char *server, const char *anchor, char *why, size_t size)
{
	struct ub_ctx *ub = ub_ctx_create();
	if (ub == NULL) {
		snprintf(why, size, "libunbound cannot start");
		return NULL;
	}
	/* queries answered on a thread of libunbound's (not a forked process), each waited for with a time limit */
	int rc = ub_ctx_async(ub, 1);
	const char *what = "async";
	/* a resolver on loopback (a local cache, or a test's server) is asked like any other */
	if (rc == 0) {
		what = "do-not-query-localhost";
		rc = ub_ctx_set_option(ub, "do-not-query-localhost:", "no");
	}
	/* names in /etc/hosts as the system's resolver has them (a smart host named there) */
	if (rc == 0) {
		what = "/etc/hosts";
		rc = ub_ctx_hosts(ub, NULL);
	}
	/* names under test. (RFC 6761) are the server's to answer, as every other name: libunbound would say NXDOMAIN
	 * itself */
	if (rc == 0) {
		what = "local-zone";
		rc = ub_ctx_set_option(ub, "local-zone:", "test. transparent");
	}
	if (rc == 0) {
		what = server[0] != '\0' ? server : "/etc/resolv.conf";
		rc = server[0] != '\0' ? ub_ctx_set_fwd(ub, server) : ub_ctx_resolvconf(ub, NULL);
	}
	if (rc == 0) {
		const char *ta = anchor[0] != '\0' ? anchor : DNS_ROOT_KEY;
		what = ta;
		if (anchor[0] != '\0' && access(anchor, R_OK) != 0) {
			snprintf(why, size, "%s: %s", anchor,
				 strerror(errno)); /* libunbound reads it at the first query */
			ub_ctx_delete(ub);
			return NULL;
		}
		if (anchor[0] != '\0' || access(DNS_ROOT_KEY, R_OK) == 0)
			rc = ub_ctx_add_ta_file(ub, ta);
	}
	if (rc != 0) {
		snprintf(why, size, "%s: %s", what, ub_strerror(rc));
		ub_ctx_delete(ub);
		return NULL;
	}
	return ub;
}

struct dns *dns_create(void)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	pthread_rwlock_init(&d->lock, NULL);
	d->ub = ub_make("", "", d->error, sizeof(d->error));
	d->timeout_ms = DNS_TIMEOUT_MS;
	return d;
}

int dns_configure(struct dns *d, const char *server, const char *trust_anchor, struct buf *error_r)
{
	server = server != NULL ? server : "";
	trust_anchor = trust_anchor != NULL ? trust_anchor : "";
	pthread_rwlock_rdlock(&d->lock);
	bool same = strcmp(d->server, server) == 0 && strcmp(d->anchor, trust_anchor) == 0 && d->ub != NULL;
	pthread_rwlock_unlock(&d->lock);
	if (same)
		return IX_OK;
	char why[200];
	struct ub_ctx *ub = ub_make(server, trust_anchor, why, sizeof(why));
	if (ub == NULL) {
		buf_append_str(error_r, why);
		return IX_EINVAL;
	}
	pthread_rwlock_wrlock(&d->lock);
	struct ub_ctx *old = d->ub;
	d->ub = ub;
	snprintf(d->server, sizeof(d->server), "%s", server);
	snprintf(d->anchor, sizeof(d->anchor), "%s", trust_anchor);
	pthread_rwlock_unlock(&d->lock);
	if (old != NULL)
		ub_ctx_delete(old);
	log_info("DNS: asking %s, trust anchors from %s",
		 server[0] != '\0' ? server : "the servers of /etc/resolv.conf",
		 trust_anchor[0] != '\0'           ? trust_anchor
		 : access(DNS_ROOT_KEY, R_OK) == 0 ? DNS_ROOT_KEY
						   : "nowhere (nothing is validated)");
	return IX_OK;
}

void dns_apply_settings(struct dns *d, const struct settings *s)
{
	struct buf err = BUF_INIT;
	if (dns_configure(d, s->text[SET_DNS_RESOLVER], s->text[SET_DNS_TRUST_ANCHOR], &err) != IX_OK)
		log_warn("DNS: the resolver stays as it was: %s", buf_cstr(&err));
	buf_free(&err);
	dns_set_timeout(d, (unsigned)s->v[SET_DNS_TIMEOUT] * 1000);
}

void dns_set_timeout(struct dns *d, unsigned ms)
{
	d->timeout_ms = ms > 0 ? ms : DNS_TIMEOUT_MS;
}

void dns_destroy(struct dns **dp)
{
	struct dns *d = *dp;
	if (d == NULL)
		return;
	if (d->ub != NULL)
		ub_ctx_delete(d->ub);
	pthread_rwlock_destroy(&d->lock);
	free(d);
	*dp = NULL;
}

static void query(struct dns *d, const char *name, int type, struct dns_answer *a_r);

void dns_query(struct dns *d, const char *name, int type, struct dns_answer *a_r)
{
	query(d, name, type, a_r);
	if (a_r->status == DNS_TEMP || a_r->status == DNS_BOGUS)
		log_info("DNS: %s (type %d): %s", name, type, a_r->why[0] != '\0' ? a_r->why : "no answer");
}

/* One asynchronous query: its answer, set by the callback on whichever thread runs ub_process. */
struct pending {
	pthread_mutex_t lock;
	bool done;
	int err;
	struct ub_result *res;
};

static void on_answer(void *arg, int err, struct ub_result *res)
{
	struct pending *p = arg;
	pthread_mutex_lock(&p->lock);
	p->err = err;
	p->res = res;
	p->done = true;
	pthread_mutex_unlock(&p->lock);
}

static bool pending_done(struct pending *p)
{
	pthread_mutex_lock(&p->lock);
	bool done = p->done;
	pthread_mutex_unlock(&p->lock);
	return done;
}

/* Runs ub's answers (any thread's: each callback marks its own query) until p is done or deadline (now_usec()'s
 * clock; 0: no limit) passes. Short waits, since another thread may take p's answer off the pipe. */
static bool pending_wait(struct ub_ctx *ub, struct pending *p, unsigned long long deadline)
{
	while (!pending_done(p)) {
		unsigned long long now = now_usec();
		long long left = deadline == 0    ? DNS_POLL_MS
				 : deadline > now ? (long long)((deadline - now + 999) / 1000)
						  : 0;
		if (left <= 0)
			return false;
		struct pollfd pfd = { .fd = ub_fd(ub), .events = POLLIN };
		(void)poll(&pfd, 1, (int)(left < DNS_POLL_MS ? left : DNS_POLL_MS));
		(void)ub_process(ub);
	}
	return true;
}

static void query(struct dns *d, const char *name, int type, struct dns_answer *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	a_r->status = DNS_TEMP;
	struct ub_result *res = NULL;
	unsigned timeout = d->timeout_ms;
	pthread_rwlock_rdlock(&d->lock);
	struct pending p = { .lock = PTHREAD_MUTEX_INITIALIZER };
	int id = 0, rc = d->ub != NULL ? ub_resolve_async(d->ub, name, type, 1 /* IN */, &p, on_answer, &id) : -1;
	if (d->ub == NULL) {
		snprintf(a_r->why, sizeof(a_r->why), "no resolver: %.140s", d->error);
	} else if (rc != 0) {
		snprintf(a_r->why, sizeof(a_r->why), "%s", ub_strerror(rc));
	} else if (!pending_wait(d->ub, &p, now_usec() + timeout * 1000ULL) && ub_cancel(d->ub, id) == 0) {
		/* cancelled: the callback will not run */
		rc = -1;
		snprintf(a_r->why, sizeof(a_r->why), "no answer from %.100s within %u ms",
			 d->server[0] != '\0' ? d->server : "the name servers of /etc/resolv.conf", timeout);
	} else {
		(void)pending_wait(d->ub, &p, 0); /* answered (maybe just now, on another thread) */
		rc = p.err;
		res = p.res;
		if (rc != 0)
			snprintf(a_r->why, sizeof(a_r->why), "%s", ub_strerror(rc));
	}
	pthread_rwlock_unlock(&d->lock);
	pthread_mutex_destroy(&p.lock);
	if (rc != 0 || res == NULL)
		return;
	a_r->priv = res;
	a_r->secure = res->secure != 0;
	if (res->bogus) {
		a_r->status = DNS_BOGUS;
		snprintf(a_r->why, sizeof(a_r->why), "DNSSEC validation failed: %s",
			 res->why_bogus != NULL ? res->why_bogus : "bogus");
		return;
	}
	if (res->havedata) {
		size_t n = 0;
		while (res->data[n] != NULL)
			n++;
		const unsigned char **rd = xcalloc(n, sizeof(*rd));
		size_t *len = xcalloc(n, sizeof(*len));
		for (size_t i = 0; i < n; i++) {
			rd[i] = (const unsigned char *)res->data[i];
			len[i] = (size_t)res->len[i];
		}
		a_r->rdata = rd;
		a_r->rdlen = len;
		a_r->n = n;
		a_r->ttl = res->ttl > 0 ? (unsigned)res->ttl : 0;
		a_r->status = DNS_OK;
	} else if (res->nxdomain) {
		a_r->status = DNS_NXDOMAIN;
	} else if (res->rcode == 0) {
		a_r->status = DNS_NODATA;
	} else {
		snprintf(a_r->why, sizeof(a_r->why), "the DNS server answered rcode %d for %s", res->rcode, name);
	}
}

void dns_answer_free(struct dns_answer *a)
{
	free((void *)a->rdata);
	free((void *)a->rdlen);
	if (a->priv != NULL)
		ub_resolve_free(a->priv);
	memset(a, 0, sizeof(*a));
}

int dns_name_text(const unsigned char *rd, size_t len, char *out, size_t size)
{
	size_t o = 0, i = 0;
	while (i < len && rd[i] != 0) {
		size_t l = rd[i++];
		if (l > 63 || i + l > len || o + l + 2 > size)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			unsigned char c = rd[i + k];
			if (c <= ' ' || c == 0x7f || c == '.')
				return -1; /* not a host name we can write */
			out[o++] = (char)c;
		}
		i += l;
	}
	if (i >= len || size == 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

void dns_txt_join(const unsigned char *rd, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len;) {
		size_t l = rd[i++];
		if (i + l > len)
			l = len - i;
		buf_append(out, rd + i, l);
		i += l;
	}
}

size_t dns_mx(struct dns *d, const char *domain, char **hosts, size_t max, bool *temp_r, bool *secure_r,
	      struct buf *why_r)
{
	*temp_r = false;
	struct dns_answer a;
	dns_query(d, domain, DNS_T_MX, &a);
	if (secure_r != NULL)
		*secure_r = a.secure;
	size_t n = 0;
	if (a.status == DNS_NXDOMAIN)
		goto out;
	if (a.status == DNS_TEMP || a.status == DNS_BOGUS) {
		*temp_r = true;
		if (why_r != NULL)
			buf_append_str(why_r, a.why[0] != '\0' ? a.why : "no answer");
		goto out;
	}
	unsigned prefs[64];
	for (size_t i = 0; i < a.n && n < max && n < IX_ARRAY_LEN(prefs); i++) {
		char name[DNS_NAME_MAX];
		if (a.rdlen[i] < 3 || dns_name_text(a.rdata[i] + 2, a.rdlen[i] - 2, name, sizeof(name)) < 0)
			continue;
		unsigned pref = (unsigned)a.rdata[i][0] << 8 | a.rdata[i][1];
		size_t k = n; /* insertion by preference */
		while (k > 0 && prefs[k - 1] > pref) {
			prefs[k] = prefs[k - 1];
			hosts[k] = hosts[k - 1];
			k--;
		}
		prefs[k] = pref;
		hosts[k] = xstrdup(name);
		n++;
	}
	if (n == 0 && max > 0) /* no MX (or only unusable ones): the domain itself */
		hosts[n++] = xstrdup(domain);
out:
	dns_answer_free(&a);
	return n;
}
