/* mta.c - ix-mta: runs the durable queue. Local recipients go into the store, the others over SMTP to their
 * home server, a connector's smart host or the domain's MX; retries with backoff, bounces and delay notices
 * (RFC 3464), expiry after queue.lifetime, the tracking log. */
#include "transport/mta/mta.h"
#include "transport/daemon/daemon.h"
#include "transport/mta/arc.h"
#include "transport/mta/dkim.h"
#include "transport/mta/tlsrpt.h"
#include "transport/mta/dns.h"
#include "transport/mta/mta_sts.h"
#include "transport/mta/dsn.h"
#include "common/err.h"
#include "common/log.h"
#include "common/workpool.h"
#include "transport/mta/queue.h"
#include "transport/mta/smtp_client.h"
#include "transport/net/tls_peers.h"
#include "transport/smtp/smtp_parse.h"
#include "store/store.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

struct qent {
	char id[QUEUE_ID_MAX + 1];
	long long due;
	bool inflight, seen;
};

/* One delivery attempt of a queued message, on the worker pool. */
struct qjob {
	struct mta *m;
	char id[QUEUE_ID_MAX + 1];
	bool flush;
};

struct cached_conn {
	char dest[MTA_DEST_MAX + 1];
	struct smtp_client *c;
	long long idle_since;
};

struct dest_count {
	char dest[MTA_DEST_MAX + 1];
	unsigned n;
};

struct mta {
	struct daemon d;
	struct settings set;
	char *qdir;
	struct tls_ctx *client_tls;
	struct tls_peers *peers; /* TLS to the organisation's other servers (under lock) */
	struct dns *dns;         /* MX, A/AAAA and TLSA lookups */
	struct mta_sts *sts;     /* MTA-STS policies */
	struct tls_ctx *sts_tls; /* verifying, for MTA-STS (under lock; sts_tls()) */
	char sts_ca[SETTING_TEXT_MAX];
	struct tls_ctx *old_tls[16]; /* replaced ones, freed at exit */
	size_t nold_tls;
	struct dkim_signer *dkim; /* signs what leaves the organisation (NULL: libopendkim did not start) */
	struct evloop_timer scan_timer, kick_timer;
	int inotify_fd;
	struct workpool *pool;
	pthread_mutex_t lock;
	pthread_cond_t dest_cond; /* a destination's connection slot was released */
	struct qent *ents;
	size_t nents;
	bool quit;
	/* outbound connections (under lock) */
	struct cached_conn *conns;
	size_t nconns;
	struct dest_count *dests;
	size_t ndests;
};

/* ---- outbound connections ---- */

static bool dest_acquire(struct mta *m, const char *dest)
{
	bool ok = false;
	pthread_mutex_lock(&m->lock);
	struct dest_count *dc;
	struct timespec until = time_after_msecs(CLOCK_MONOTONIC, MTA_DEST_WAIT_MS);
	for (;;) {
		/* the array may move while we wait: find the entry again each time */
		dc = NULL;
		for (size_t i = 0; i < m->ndests; i++) {
			if (strcmp(m->dests[i].dest, dest) == 0)
				dc = &m->dests[i];
		}
		if (dc == NULL) {
			m->dests = xrealloc(m->dests, (m->ndests + 1) * sizeof(*m->dests));
			dc = &m->dests[m->ndests++];
			snprintf(dc->dest, sizeof(dc->dest), "%s", dest);
			dc->n = 0;
		}
		if (dc->n < MTA_DEST_CONCURRENCY) {
			dc->n++;
			ok = true;
			break;
		}
		if (m->quit || pthread_cond_timedwait(&m->dest_cond, &m->lock, &until) != 0)
			break;
	}
	pthread_mutex_unlock(&m->lock);
	return ok;
}

static void dest_release(struct mta *m, const char *dest)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->ndests; i++) {
		if (strcmp(m->dests[i].dest, dest) == 0 && --m->dests[i].n == 0) {
			m->dests[i] = m->dests[--m->ndests];
			break;
		}
	}
	pthread_cond_broadcast(&m->dest_cond);
	pthread_mutex_unlock(&m->lock);
}

/* Takes a cached connection to dest, and closes stale ones on the way: idle too long, or closed by the peer (a
 * server that restarted: reusing its dead connection would fail the message and defer it a whole retry). */
static struct smtp_client *conn_take(struct mta *m, const char *dest)
{
	struct smtp_client *found = NULL, *stale[16];
	size_t nstale = 0;
	long long now = (long long)time(NULL);
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nconns;) {
		struct cached_conn *cc = &m->conns[i];
		bool alive = now - cc->idle_since <= MTA_CONN_IDLE_MAX && smtp_client_alive(cc->c);
		if (found == NULL && alive && strcmp(cc->dest, dest) == 0) {
			found = cc->c;
			m->conns[i] = m->conns[--m->nconns];
			continue;
		}
		if (!alive && nstale < IX_ARRAY_LEN(stale)) {
			stale[nstale++] = cc->c;
			m->conns[i] = m->conns[--m->nconns];
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < nstale; i++)
		smtp_client_close(&stale[i]);
	return found;
}

static void conn_put(struct mta *m, const char *dest, struct smtp_client *c)
{
	pthread_mutex_lock(&m->lock);
	m->conns = xrealloc(m->conns, (m->nconns + 1) * sizeof(*m->conns));
	struct cached_conn *cc = &m->conns[m->nconns++];
	snprintf(cc->dest, sizeof(cc->dest), "%s", dest);
	cc->c = c;
	cc->idle_since = (long long)time(NULL);
	pthread_mutex_unlock(&m->lock);
}

/* ---- one message ---- */

enum outcome { OUT_NONE, OUT_DONE, OUT_TEMP, OUT_PERM, OUT_WAIT };

/* Attempts of a recipient retried within a second while its mailbox moves (MTA_REPLY_MOVING); past them (a move
 * that stays frozen, directories that never agree) the usual backoff applies. */
#define MTA_MOVING_QUICK_RETRIES 300

struct attempt {
	enum outcome out;
	char *reply; /* malloc'd */
	bool local;
	bool no_dsn; /* relayed to a server without DSN: we owe the success notice (RFC 3461 5.2.2.1) */
	bool moving; /* the mailbox is moving (MTA_REPLY_MOVING): retry within a second, resolving its home again */
	struct mta_target tg;
};

static void target_free(struct mta_target *t)
{
	free(t->addr);
	free(t->orcpt);
	free(t->guid);
	free(t->folder);
	free(t->dest);
	free(t->error);
	memset(t, 0, sizeof(*t));
}

/* Splits "host:port" (or "[v6]:port", or "host"). */
static void split_hostport(const char *hp, char *host, size_t hsize, unsigned *port)
{
	*port = 25;
	const char *colon = strrchr(hp, ':');
	if (hp[0] == '[') {
		const char *rb = strchr(hp, ']');
		size_t n = rb != NULL ? (size_t)(rb - hp - 1) : strlen(hp + 1);
		snprintf(host, hsize, "%.*s", (int)n, hp + 1);
		if (rb != NULL && rb[1] == ':')
			*port = (unsigned)atoi(rb + 2);
		return;
	}
	if (colon != NULL && strchr(hp, ':') == colon) {
		snprintf(host, hsize, "%.*s", (int)(colon - hp), hp);
		*port = (unsigned)atoi(colon + 1);
	} else {
		snprintf(host, hsize, "%s", hp);
	}
	if (*port == 0 || *port > 65535)
		*port = 25;
}

/* The TLS context for a connection to host: another server of the organisation (ours) off loopback gets the
 * organisation's verifying context (and *required: no relay without TLS); anything else opportunistic TLS. NULL with
 * a reply in error_r when the organisation's certificates are not there yet. */
static struct tls_ctx *relay_tls(struct mta *m, const char *host, bool ours, bool *required, struct buf *error_r)
{
	*required = ours && !tls_ip_is_loopback(host) && strcasecmp(host, "localhost") != 0;
	if (!*required)
		return m->client_tls;
	pthread_mutex_lock(&m->lock);
	struct tls_ctx *ctx = tls_peers_ctx(m->peers);
	pthread_mutex_unlock(&m->lock);
	if (ctx == NULL)
		buf_printf(error_r, "no certificates of the organisation's servers to verify %s against", host);
	return ctx;
}

/* How to reach one MX host: its addresses and TLS policy from DNS (RFC 7672 2.2). */
struct mx_route {
	struct dns_answer addr[2]; /* A, AAAA */
	struct dns_answer tlsa;
	const char *addrs[MTA_MX_ADDRS_MAX];
	char text[MTA_MX_ADDRS_MAX][INET6_ADDRSTRLEN];
	struct smtp_tls_policy pol;
};

/* Fills r for host:port, an MX host of a domain whose MX answer was DNSSEC-validated when mx_secure. DANE applies
 * when the host's addresses and its TLSA records are validated too; else, with sts_enforce (the domain's MTA-STS
 * policy enforces), a verified certificate is required. Returns 0, or -1 with the reason in error_r (no
 * address, or an address or TLSA lookup failed or was bogus: the host is not used now). Free with mx_route_free. */
static int mx_route_make(struct mta *m, const char *host, unsigned port, bool mx_secure, bool sts_enforce,
			 struct mx_route *r, struct buf *error_r)
{
	memset(r, 0, sizeof(*r));
	r->pol.addrs = r->addrs;
	static const int types[2] = { DNS_T_A, DNS_T_AAAA };
	bool secure = true, failed = false;
	for (int t = 0; t < 2; t++) {
		struct dns_answer *a = &r->addr[t];
		dns_query(m->dns, host, types[t], a);
		if (a->status == DNS_TEMP || a->status == DNS_BOGUS) {
			failed = true;
			buf_reset(error_r);
			buf_printf(error_r, "cannot resolve %s: %s", host, a->why);
		}
		for (size_t i = 0; a->status == DNS_OK && i < a->n && r->pol.naddrs < MTA_MX_ADDRS_MAX; i++) {
			if (a->rdlen[i] != (t == 0 ? 4u : 16u))
				continue;
			inet_ntop(t == 0 ? AF_INET : AF_INET6, a->rdata[i], r->text[r->pol.naddrs], INET6_ADDRSTRLEN);
			r->addrs[r->pol.naddrs] = r->text[r->pol.naddrs];
			r->pol.naddrs++;
			secure = secure && a->secure;
		}
	}
	if (r->pol.naddrs == 0) {
		if (!failed)
			buf_printf(error_r, "%s has no address", host);
		return -1;
	}
	/* MTA-STS enforce: a certificate valid for the host, unless DANE applies (RFC 8461 2) */
	r->pol.mode = sts_enforce ? SMTP_TLS_VERIFY : SMTP_TLS_OPPORTUNISTIC;
	if (!mx_secure || !secure)
		return 0;
	char name[DNS_NAME_MAX];
	snprintf(name, sizeof(name), "_%u._tcp.%s", port, host);
	dns_query(m->dns, name, DNS_T_TLSA, &r->tlsa);
	if (r->tlsa.status == DNS_TEMP || r->tlsa.status == DNS_BOGUS) {
		/* a secure zone whose TLSA answer cannot be had: a downgrade is not to be allowed (RFC 7672 2.2) */
		buf_reset(error_r);
		buf_printf(error_r, "the TLSA records of %s cannot be had: %s", host, r->tlsa.why);
		return -1;
	}
	if (r->tlsa.status == DNS_OK && r->tlsa.secure) {
		r->pol.mode = SMTP_TLS_DANE;
		r->pol.tlsa = r->tlsa.rdata;
		r->pol.tlsa_len = r->tlsa.rdlen;
		r->pol.ntlsa = r->tlsa.n;
	}
	return 0;
}

static void mx_route_free(struct mx_route *r)
{
	dns_answer_free(&r->addr[0]);
	dns_answer_free(&r->addr[1]);
	dns_answer_free(&r->tlsa);
}

/* TLS reporting (RFC 8460), when tlsrpt.enabled: the outcome of one negotiation with host, an MX host of domain, under
 * pol (c: the connection made, else NULL with result the failure's result-type and error its text). A connection
 * that failed before any TLS (connect, greeting) is not a TLS outcome. */
static void tls_report_record(struct mta *m, const char *domain, const char *host, const struct smtp_tls_policy *pol,
			      struct smtp_client *c, const char *result, const char *error)
{
	if (!m->set.v[SET_TLSRPT_ENABLED])
		return;
	if (c != NULL)
		result = smtp_client_is_tls(c) ? "success" : "starttls-not-supported";
	if (result == NULL)
		return;
	struct tlsrpt_session s = { .time = (long long)time(NULL) };
	snprintf(s.domain, sizeof(s.domain), "%.255s", domain);
	snprintf(s.policy_type, sizeof(s.policy_type), "%s",
		 pol->mode == SMTP_TLS_DANE     ? "tlsa"
		 : pol->mode == SMTP_TLS_VERIFY ? "sts"
						: "no-policy-found");
	snprintf(s.mx_host, sizeof(s.mx_host), "%.255s", host);
	snprintf(s.result, sizeof(s.result), "%s", result);
	tlsrpt_peer_ip(c != NULL ? smtp_client_peer(c) : error, s.ip, sizeof(s.ip));
	struct buf policy = BUF_INIT;
	for (size_t i = 0; pol->mode == SMTP_TLS_DANE && i < pol->ntlsa; i++) {
		if (pol->tlsa_len[i] < 3)
			continue;
		buf_printf(&policy, "%s%u %u %u ", policy.len ? "|" : "", pol->tlsa[i][0], pol->tlsa[i][1],
			   pol->tlsa[i][2]);
		for (size_t k = 3; k < pol->tlsa_len[i]; k++)
			buf_printf(&policy, "%02X", pol->tlsa[i][k]);
	}
	snprintf(s.policy, sizeof(s.policy), "%s", buf_cstr(&policy));
	buf_free(&policy);
	if (tlsrpt_record(&m->d.cfg, &s) != IX_OK)
		log_warn("TLS reporting: cannot record the outcome with %s (%s)", host, domain);
}

/* The verifying context for MTA-STS (the system's CAs and mta_sts.ca_file), made again when the setting changed (a
 * context replaced is kept until exit: connections of other workers may be using it). NULL with error_r. */
static struct tls_ctx *sts_tls(struct mta *m, struct buf *error_r)
{
	pthread_mutex_lock(&m->lock);
	const char *ca = m->set.text[SET_MTA_STS_CA_FILE];
	if (m->sts_tls == NULL || strcmp(m->sts_ca, ca) != 0) {
		struct tls_ctx *ctx = NULL;
		if (tls_client_ctx_create(true, NULL, &ctx, error_r) == IX_OK && ca[0] != '\0' &&
		    SSL_CTX_load_verify_locations(tls_ctx_ssl(ctx), ca, NULL) != 1) {
			buf_printf(error_r, "mta_sts.ca_file %s: ", ca);
			tls_append_errors(error_r);
			tls_ctx_destroy(&ctx);
		}
		if (ctx != NULL) {
			if (m->sts_tls != NULL && m->nold_tls < IX_ARRAY_LEN(m->old_tls))
				m->old_tls[m->nold_tls++] = m->sts_tls;
			m->sts_tls = ctx;
			snprintf(m->sts_ca, sizeof(m->sts_ca), "%s", ca);
		}
	}
	struct tls_ctx *ctx = m->sts_tls;
	pthread_mutex_unlock(&m->lock);
	return ctx;
}

/* Sends msg to the recipients idx[0..n) of at (all with the same destination; ours: a server of the organisation;
 * mx: hosts are the MX hosts of the domain, whose MX answer was DNSSEC-validated when mx_secure, and whose MTA-STS
 * policy enforces when sts_enforce). */
static void send_group(struct mta *m, const struct queue_msg *q, struct attempt *at, const size_t *idx, size_t n,
		       const char *dest, char **hosts, size_t nhosts, bool ours, bool mx, bool mx_secure,
		       bool sts_enforce)
{
	if (!dest_acquire(m, dest)) {
		for (size_t i = 0; i < n; i++) {
			at[idx[i]].out = OUT_WAIT;
			at[idx[i]].reply = xstrdup("destination busy");
		}
		return;
	}
	struct buf err = BUF_INIT;
	struct smtp_client *c = conn_take(m, dest);
	for (size_t h = 0; c == NULL && h < nhosts; h++) {
		char host[MTA_DEST_MAX + 1];
		unsigned port;
		split_hostport(hosts[h], host, sizeof(host), &port);
		buf_reset(&err);
		bool need_tls;
		struct tls_ctx *tls = relay_tls(m, host, ours, &need_tls, &err);
		struct mx_route route;
		/* an MX host, or a connector's smart host by name: its addresses from our resolver (dns.h), not libc's */
		struct in6_addr literal;
		bool named = inet_pton(AF_INET, host, &literal) != 1 && inet_pton(AF_INET6, host, &literal) != 1;
		bool routed = (mx || (!ours && named)) && tls != NULL;
		int rc = IX_EUNAVAIL;
		if (routed && mx_route_make(m, host, port, mx_secure, sts_enforce, &route, &err) == 0) {
			const char *tls_result = NULL;
			route.pol.result_r = &tls_result;
			if (route.pol.mode == SMTP_TLS_VERIFY)
				tls = sts_tls(m, &err);
			if (tls != NULL)
				rc = smtp_client_open_policy(host, port, m->d.cfg.hostname, tls, &route.pol,
							     SMTP_CLIENT_COMMAND_MS, &c, &err);
			if (mx && tls != NULL)
				tls_report_record(m, dest + 3, host, &route.pol, c, tls_result, buf_cstr(&err));
		} else if (!routed && tls != NULL) {
			rc = smtp_client_open(host, port, m->d.cfg.hostname, tls, SMTP_CLIENT_COMMAND_MS, &c, &err);
		}
		if (routed)
			mx_route_free(&route);
		if (rc == 0 && need_tls && !smtp_client_is_tls(c)) {
			buf_printf(&err, "%s offers no STARTTLS, which a server of the organisation must",
				   smtp_client_peer(c));
			smtp_client_close(&c);
			rc = IX_EUNAVAIL;
		}
		if (rc == IX_EINVAL && h + 1 == nhosts) {
			for (size_t i = 0; i < n; i++) {
				at[idx[i]].out = OUT_PERM;
				at[idx[i]].reply = xstrdup(buf_cstr(&err));
			}
			goto out;
		}
	}
	if (c == NULL) {
		for (size_t i = 0; i < n; i++) {
			at[idx[i]].out = OUT_TEMP;
			at[idx[i]].reply = xasprintf("451 4.4.1 %s", buf_cstr(&err));
		}
		goto out;
	}
	const char **rcpts = xcalloc(n, sizeof(*rcpts));
	unsigned *notify = xcalloc(n, sizeof(*notify));
	int *codes = xcalloc(n, sizeof(*codes));
	char **replies = xcalloc(n, sizeof(*replies));
	for (size_t i = 0; i < n; i++) {
		rcpts[i] = at[idx[i]].tg.addr;
		notify[i] = at[idx[i]].tg.notify;
	}
	bool eight = false;
	for (size_t i = 0; i < q->body.len && !eight; i++)
		eight = (unsigned char)q->body.data[i] >= 128;
	/* leaving the organisation: signed now, after every change made to the message (DKIM) */
	struct buf signed_msg = BUF_INIT;
	if (!ours && m->dkim != NULL) {
		struct buf why = BUF_INIT;
		int sr = dkim_sign_outgoing(m->dkim, m->d.dir, &m->d.cfg, q->body.data, q->body.len, &signed_msg, &why);
		if (sr == IX_OK)
			buf_append(&signed_msg, q->body.data, q->body.len);
		else
			buf_reset(&signed_msg);
		if (sr != IX_OK && sr != IX_ENOTFOUND)
			log_warn("message %s leaves unsigned: %s", q->id, buf_cstr(&why));
		/* mail from outside that we forward (a list, a forwarding, a redirect): sealed, so the receiver keeps our
		 * results (ARC) */
		struct buf sealed = BUF_INIT;
		buf_reset(&why);
		sr = arc_seal_outgoing(m->dkim, m->d.dir, &m->d.cfg, q->body.data, q->body.len, &sealed, &why);
		if (sr == IX_OK) {
			if (signed_msg.len == 0)
				buf_append(&signed_msg, q->body.data, q->body.len);
			buf_append(&sealed, signed_msg.data, signed_msg.len);
			buf_free(&signed_msg);
			signed_msg = sealed;
		} else {
			buf_free(&sealed);
		}
		if (sr != IX_OK && sr != IX_ENOTFOUND)
			log_warn("message %s leaves without an ARC seal: %s", q->id, buf_cstr(&why));
		buf_free(&why);
	}
	struct smtp_client_msg sm = {
		.sender = q->sender,
		.rcpts = rcpts,
		.notify = notify,
		.envid = q->envid,
		.data = signed_msg.len > 0 ? signed_msg.data : q->body.data,
		.len = signed_msg.len > 0 ? signed_msg.len : q->body.len,
		.eightbit = eight,
		.utf8 = smtp_client_utf8_need(q->sender, rcpts, n, q->body.data, q->body.len),
		.nrcpts = n,
		.codes = codes,
		.replies = replies,
	};
	buf_reset(&err);
	int rc = smtp_client_send(c, &sm, &err);
	for (size_t i = 0; i < n; i++) {
		struct attempt *a = &at[idx[i]];
		a->out = codes[i] >= 200 && codes[i] < 300 ? OUT_DONE : codes[i] >= 500 ? OUT_PERM : OUT_TEMP;
		a->reply = replies[i] != NULL ? replies[i] : xstrdup("421 4.4.2 no reply");
		/* a server of ours that names another home (a move, or its directory not yet in step) */
		a->moving = ours && mta_reply_is_moving(a->reply);
		a->no_dsn = !smtp_client_has(c, "DSN");
		if (a->out == OUT_DONE) {
			char *r = xasprintf("%s (%s, %s)", a->reply, smtp_client_peer(c), smtp_client_tls_outcome(c));
			free(a->reply);
			a->reply = r;
		}
	}
	if (rc == 0)
		conn_put(m, dest, c);
	else
		smtp_client_close(&c);
	free(rcpts);
	free(notify);
	free(codes);
	free(replies);
	buf_free(&signed_msg);
out:
	buf_free(&err);
	dest_release(m, dest);
}

/* Applies domain's MTA-STS policy to its MX hosts[0..n): under enforce (*enforce_r set) only those it names stay;
 * when none does, a frees them, a's outcome is a temporary failure saying why and 0 is returned. Returns the hosts
 * left. */
static size_t sts_filter(struct mta *m, const char *domain, char **hosts, size_t n, bool *enforce_r, struct attempt *a)
{
	struct mta_sts_policy p;
	struct buf why = BUF_INIT;
	char ca[SETTING_TEXT_MAX];
	pthread_mutex_lock(&m->lock);
	snprintf(ca, sizeof(ca), "%s", m->set.text[SET_MTA_STS_CA_FILE]);
	pthread_mutex_unlock(&m->lock);
	mta_sts_get(m->sts, domain, ca, &p, &why);
	if (why.len > 0)
		log_info("MTA-STS policy of %s: %s", domain, buf_cstr(&why));
	buf_free(&why);
	*enforce_r = p.mode == MTA_STS_ENFORCE;
	if (!*enforce_r)
		return n;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (mta_sts_mx_allowed(&p, hosts[i]))
			hosts[k++] = hosts[i];
		else
			free(hosts[i]);
	}
	if (k == 0) {
		a->out = OUT_TEMP;
		a->reply = xasprintf("451 4.7.5 No MX host of %s is allowed by its MTA-STS policy (mx: %s%s)", domain,
				     p.mx[0], p.nmx > 1 ? ", ..." : "");
	}
	return k;
}

static void queue_bounce(struct mta *m, const struct queue_msg *q, const struct dsn_rcpt *dr, size_t n)
{
	struct queue_msg b;
	queue_msg_init(&b);
	queue_new_id(b.id);
	b.created = (long long)time(NULL);
	struct dsn_report rep = { m->d.cfg.hostname, q->sender, q->envid, q->ret == SMTP_RET_HDRS,
				  q->created,        dr,        n,        q->body.data != NULL ? q->body.data : "",
				  q->body.len };
	dsn_build(&rep, &b.body);
	char msgid[DSN_HEADER_VALUE_MAX + 1];
	dsn_header_value(b.body.data, b.body.len, "Message-ID", msgid, sizeof(msgid));
	queue_set_field(&b.msgid, msgid);
	queue_msg_add_rcpt(&b, q->sender, "", SMTP_NOTIFY_NEVER);
	b.rcpts[0].next_try = b.created;
	struct buf err = BUF_INIT;
	if (queue_write(m->qdir, &b, &err) != 0)
		log_error("cannot queue the notice for %s: %s", q->id, buf_cstr(&err));
	else
		track_log(m->d.cfg.data_dir, "notice", b.id, b.msgid, "", q->sender, m->d.cfg.hostname,
			  dr[0].action == DSN_FAILED    ? "bounce"
			  : dr[0].action == DSN_DELAYED ? "delay"
							: "success");
	buf_free(&err);
	queue_msg_free(&b);
}

/* Processes one queued message. Returns when it is next due (LLONG_MAX: gone). */
static long long process(struct mta *m, const char *id, bool flush)
{
	struct queue_msg q;
	struct buf err = BUF_INIT;
	int rc = queue_read(m->qdir, id, true, &q, &err);
	if (rc != 0) {
		if (rc != IX_ENOTFOUND)
			log_error("queue %s: %s", id, buf_cstr(&err));
		buf_free(&err);
		queue_msg_free(&q);
		return LLONG_MAX;
	}
	const char *data_dir = m->d.cfg.data_dir, *me = m->d.cfg.hostname;
	long long now = (long long)time(NULL);
	size_t norig = q.nrcpts;
	struct attempt *at = xcalloc(norig, sizeof(*at));
	/* route every due recipient */
	for (size_t i = 0; i < norig; i++) {
		struct queue_rcpt *r = &q.rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING || (!flush && r->next_try > now))
			continue;
		if (r->attempts == 0 && r->last_error != NULL && r->last_error[0] == '5') {
			/* a permanent verdict made at accept, where the sender was known (a list member's restriction):
			 * final, never routed again without it */
			at[i].out = OUT_PERM;
			at[i].reply = xstrdup(r->last_error);
			continue;
		}
		struct mta_targets t = { 0 };
		mta_resolve(m->d.dir, m->d.cfg.server_dn, r->addr, r->orcpt, r->notify, MTA_RESOLVE_FINAL, NULL, &t);
		if (t.n == 0) {
			at[i].out = OUT_PERM;
			at[i].reply = xstrdup("550 5.1.1 No recipient left after expansion");
			mta_targets_free(&t);
			continue;
		}
		/* the first target takes the queue entry's place; any further ones become new entries */
		at[i].tg = t.v[0];
		for (size_t k = 1; k < t.n; k++) {
			struct queue_rcpt *nr = queue_msg_add_rcpt(&q, t.v[k].addr, t.v[k].orcpt, t.v[k].notify);
			nr->next_try = now;
			target_free(&t.v[k]);
		}
		free(t.v);
		if (at[i].tg.kind == MTA_FAIL) {
			at[i].out = at[i].tg.error[0] == '4' ? OUT_TEMP : OUT_PERM;
			at[i].reply = xstrdup(at[i].tg.error);
		}
	}
	/* local: a mailbox with an active Sieve script its own delivery, then one append for the rest */
	size_t nlocal = 0;
	struct buf final = BUF_INIT; /* the final delivery writes Return-Path (RFC 5321 4.4) */
	dsn_with_return_path(q.body.data, q.body.len, q.sender, &final);
	struct mta_sieve_ctx sctx = { m->d.store, m->d.dir, &m->set, m->qdir, m->d.cfg.data_dir, m->d.cfg.hostname };
	for (size_t i = 0; i < norig; i++) {
		if (at[i].out != OUT_NONE || at[i].tg.kind != MTA_LOCAL)
			continue;
		char *outcome;
		if (mta_sieve_deliver(&sctx, &at[i].tg, q.sender, q.id, q.msgid, final.data, final.len, &outcome)) {
			at[i].local = true;
			at[i].out = outcome[0] == '2' ? OUT_DONE : outcome[0] == '5' ? OUT_PERM : OUT_TEMP;
			at[i].moving = mta_reply_is_moving(
				outcome); /* the script's keep or fileinto met a frozen mailbox */
			at[i].reply = outcome;
		} else
			nlocal++;
	}
	if (nlocal > 0) {
		struct store_target *st = xcalloc(nlocal, sizeof(*st));
		size_t *map = xcalloc(nlocal, sizeof(*map)), k = 0;
		for (size_t i = 0; i < norig; i++) {
			if (at[i].out != OUT_NONE || at[i].tg.kind != MTA_LOCAL)
				continue;
			st[k].guid = at[i].tg.guid;
			st[k].folder = at[i].tg.folder;
			st[k].quota_bytes = at[i].tg.quota_bytes;
			st[k].quota_messages = at[i].tg.quota_messages;
			map[k++] = i;
			mta_local_prepare(m->d.store, &at[i].tg);
		}
		struct store_append req = { final.data, final.len, 0, 0, NULL, st, nlocal, 0 };
		buf_reset(&err);
		int src = store_append(m->d.store, &req, &err);
		for (size_t x = 0; x < nlocal; x++) {
			struct attempt *a = &at[map[x]];
			a->local = true;
			if (src == 0 || st[x].result == 0) {
				a->out = OUT_DONE;
				a->reply = xstrdup("250 2.0.0 delivered to mailbox");
			} else if (req.refused && src == IX_EINVAL) {
				a->out = OUT_PERM; /* the store refuses the message itself: retrying cannot help */
				a->reply = xasprintf("554 5.6.0 Message cannot be stored: %.200s", buf_cstr(&err));
			} else {
				bool permanent; /* this target alone (the others had their own outcome) */
				a->reply = mta_local_failure(&a->tg, st[x].result, buf_cstr(&err), &permanent);
				a->out = permanent ? OUT_PERM : OUT_TEMP;
				a->moving = mta_reply_is_moving(a->reply);
			}
		}
		free(st);
		free(map);
	}
	buf_free(&final);
	/* remote: group by destination */
	for (size_t i = 0; i < norig; i++) {
		if (at[i].out != OUT_NONE || (at[i].tg.kind != MTA_SERVER && at[i].tg.kind != MTA_REMOTE))
			continue;
		char dest[MTA_DEST_MAX + 1];
		char *hosts[MTA_MX_MAX];
		size_t nhosts = 0;
		const char *domain = mta_domain(at[i].tg.addr);
		struct dir_connector con;
		bool mx = false, mx_secure = false, sts_enforce = false;
		if (at[i].tg.kind == MTA_SERVER) {
			snprintf(dest, sizeof(dest), "%s", at[i].tg.dest);
			hosts[nhosts++] = xstrdup(at[i].tg.dest);
		} else if (dir_route_domain(m->d.dir, domain, &con) == IX_OK && con.smart_host[0] != '\0') {
			hosts[nhosts++] = mta_pick_smart_host(m->d.dir, domain, &con, q.id);
			snprintf(dest, sizeof(dest), "%s", hosts[0]);
			dir_connector_free(&con);
		} else {
			snprintf(dest, sizeof(dest), "mx:%s", domain);
			bool temp;
			struct buf why = BUF_INIT;
			nhosts = dns_mx(m->dns, domain, hosts, MTA_MX_MAX, &temp, &mx_secure, &why);
			mx = true;
			if (nhosts > 0)
				nhosts = sts_filter(m, domain, hosts, nhosts, &sts_enforce, &at[i]);
			if (nhosts == 0 && at[i].out != OUT_NONE)
				continue; /* refused by the domain's MTA-STS policy */
			if (nhosts == 0) {
				at[i].out = temp ? OUT_TEMP : OUT_PERM;
				at[i].reply = temp ? xasprintf("451 4.4.3 Cannot resolve the domain %s now: %s", domain,
							       buf_cstr(&why))
						   : xasprintf("550 5.1.2 The domain %s does not exist", domain);
				buf_free(&why);
				continue;
			}
			buf_free(&why);
		}
		/* every recipient with the same destination goes in this transaction */
		size_t *idx = xcalloc(norig, sizeof(*idx)), n = 0;
		idx[n++] = i;
		for (size_t j = i + 1; j < norig; j++) {
			if (at[j].out != OUT_NONE || (at[j].tg.kind != MTA_SERVER && at[j].tg.kind != MTA_REMOTE))
				continue;
			bool same;
			if (at[i].tg.kind == MTA_SERVER)
				same = at[j].tg.kind == MTA_SERVER && strcmp(at[j].tg.dest, dest) == 0;
			else
				same = at[j].tg.kind == MTA_REMOTE &&
				       strcasecmp(mta_domain(at[j].tg.addr), domain) == 0;
			if (same)
				idx[n++] = j;
		}
		send_group(m, &q, at, idx, n, dest, hosts, nhosts, at[i].tg.kind == MTA_SERVER, mx, mx_secure,
			   sts_enforce);
		for (size_t h = 0; h < nhosts; h++)
			free(hosts[h]);
		free(idx);
	}
	/* outcomes */
	long long lifetime = (long long)m->set.v[SET_QUEUE_LIFETIME];
	struct dsn_rcpt *fails = xcalloc(norig, sizeof(*fails)), *delays = xcalloc(norig, sizeof(*delays)),
			*oks = xcalloc(norig, sizeof(*oks));
	size_t nfails = 0, ndelays = 0, noks = 0;
	for (size_t i = 0; i < norig; i++) {
		struct attempt *a = &at[i];
		struct queue_rcpt *r = &q.rcpts[i];
		const char *reply = a->reply != NULL ? a->reply : "";
		const char *where = a->tg.kind == MTA_SERVER ? a->tg.dest : me;
		switch (a->out) {
		case OUT_NONE: continue;
		case OUT_WAIT: r->next_try = now + 1; continue;
		case OUT_DONE:
			r->state = QUEUE_RCPT_DONE;
			queue_set_field(&r->last_error, reply);
			track_log(data_dir, a->local ? "delivered" : "relayed", q.id, q.msgid, q.sender, r->addr, where,
				  reply);
			if ((a->local || a->no_dsn) && (r->notify & SMTP_NOTIFY_SUCCESS))
				oks[noks++] = (struct dsn_rcpt){
					r->addr, r->orcpt, a->local ? DSN_DELIVERED : DSN_RELAYED, NULL, reply, NULL
				};
			continue;
		case OUT_TEMP:
			r->attempts++;
			queue_set_field(&r->last_error, reply);
			if (now - q.created < lifetime) {
				r->next_try = now + queue_backoff(r->attempts,
								  (long long)m->set.v[SET_QUEUE_RETRY_FIRST],
								  (long long)m->set.v[SET_QUEUE_RETRY_MAX]);
				if (a->moving && r->attempts <= MTA_MOVING_QUICK_RETRIES)
					r->next_try = now + 1;
				track_log(data_dir, "deferred", q.id, q.msgid, q.sender, r->addr, where, reply);
				if ((r->notify & SMTP_NOTIFY_DELAY) && !r->delay_notified) {
					r->delay_notified = true;
					delays[ndelays++] = (struct dsn_rcpt){ r->addr, r->orcpt, DSN_DELAYED,
									       NULL,    reply,    NULL };
				}
				continue;
			}
			{
				char *expired = xasprintf("Delivery time expired after %lld seconds; last error: %s",
							  now - q.created, reply);
				free(a->reply);
				a->reply = expired;
				reply = expired;
			}
			break;
		case OUT_PERM: break;
		}
		r->state = QUEUE_RCPT_FAILED;
		queue_set_field(&r->last_error, reply);
		track_log(data_dir, "bounced", q.id, q.msgid, q.sender, r->addr, where, reply);
		if (!(r->notify & SMTP_NOTIFY_NEVER) && (r->notify == 0 || (r->notify & SMTP_NOTIFY_FAILURE)))
			fails[nfails++] = (struct dsn_rcpt){ r->addr,       r->orcpt,
							     DSN_FAILED,    a->out == OUT_TEMP ? "4.4.7" : NULL,
							     r->last_error, NULL };
	}
	/* notices: never to the null sender, so never a bounce of a bounce */
	if (q.sender[0] != '\0') {
		if (nfails > 0)
			queue_bounce(m, &q, fails, nfails);
		if (ndelays > 0)
			queue_bounce(m, &q, delays, ndelays);
		if (noks > 0)
			queue_bounce(m, &q, oks, noks);
	}
	free(fails);
	free(delays);
	free(oks);
	/* write back: gone when every recipient is finished */
	long long due = LLONG_MAX;
	for (size_t i = 0; i < q.nrcpts; i++) {
		if (q.rcpts[i].state == QUEUE_RCPT_PENDING && q.rcpts[i].next_try < due)
			due = q.rcpts[i].next_try;
	}
	buf_reset(&err);
	if (due == LLONG_MAX) {
		int r = queue_remove(m->qdir, q.id, &err);
		if (r != 0 && r != IX_ENOTFOUND)
			log_error("%s", buf_cstr(&err));
	} else {
		int r = queue_update(m->qdir, &q, &err);
		if (r == IX_ENOTFOUND)
			due = LLONG_MAX; /* deleted meanwhile (interchange queue delete): it stays deleted */
		else if (r != 0)
			log_error("queue %s: %s", q.id, buf_cstr(&err));
	}
	for (size_t i = 0; i < norig; i++) {
		free(at[i].reply);
		target_free(&at[i].tg);
	}
	free(at);
	buf_free(&err);
	queue_msg_free(&q);
	return due;
}

/* ---- the runner: scan, workers ---- */

static struct qent *ent_find(struct mta *m, const char *id, bool create)
{
	size_t lo = 0, hi = m->nents;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->ents[mid].id, id);
		if (c == 0)
			return &m->ents[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create)
		return NULL;
	m->ents = xrealloc(m->ents, (m->nents + 1) * sizeof(*m->ents));
	memmove(&m->ents[lo + 1], &m->ents[lo], (m->nents - lo) * sizeof(*m->ents));
	m->nents++;
	struct qent *e = &m->ents[lo];
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->due = 0;
	return e;
}

static void qjob_run(void *arg)
{
	struct qjob *j = arg;
	struct mta *m = j->m;
	pthread_mutex_lock(&m->lock);
	bool quit = m->quit;
	pthread_mutex_unlock(&m->lock);
	if (!quit) { /* at stop what is still queued is left for the next start */
		long long due = process(m, j->id, j->flush);
		pthread_mutex_lock(&m->lock);
		struct qent *e = ent_find(m, j->id, false);
		if (e != NULL) {
			e->inflight = false;
			e->due = due;
		}
		pthread_mutex_unlock(&m->lock);
	}
	free(j);
}

static void job_push(struct mta *m, const char *id, bool flush)
{
	struct qjob *j = xcalloc(1, sizeof(*j));
	j->m = m;
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->flush = flush;
	workpool_submit(m->pool, qjob_run, NULL, j);
}

static void scan(struct mta *m)
{
	if (m->d.stopping)
		return;
	char **ids;
	size_t n;
	struct buf err = BUF_INIT;
	if (queue_list(m->qdir, &ids, &n, &err) != 0) {
		log_error("%s", buf_cstr(&err));
		buf_free(&err);
		return;
	}
	buf_free(&err);
	char *flush_path = xasprintf("%s/%s", m->qdir, QUEUE_FLUSH_FILE);
	bool flush = unlink(flush_path) == 0;
	free(flush_path);
	if (flush)
		log_info("queue flush requested");
	long long now = (long long)time(NULL);
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nents; i++)
		m->ents[i].seen = false;
	for (size_t i = 0; i < n; i++) {
		struct qent *e = ent_find(m, ids[i], true);
		e->seen = true;
		if (!e->inflight && (flush || e->due <= now)) {
			e->inflight = true;
			job_push(m, e->id, flush);
		}
	}
	size_t k = 0;
	for (size_t i = 0; i < m->nents; i++) {
		if (m->ents[i].seen || m->ents[i].inflight)
			m->ents[k++] = m->ents[i];
	}
	m->nents = k;
	pthread_mutex_unlock(&m->lock);
	queue_ids_free(&ids, n);
}

static void scan_tick(struct evloop *loop, struct evloop_timer *t, void *ctx)
{
	(void)loop;
	(void)t;
	scan(ctx);
}

static void on_inotify(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)events;
	struct mta *m = ctx;
	char b[4096];
	while (read(fd, b, sizeof(b)) > 0)
		;
	/* a short delay gathers a burst of new files into one scan */
	if (!evloop_timer_pending(&m->kick_timer))
		evloop_timer_start(loop, &m->kick_timer, 20, 0, scan_tick, m);
}

/* `interchange server set` reaches the running daemon through the replica (daemon_watch_settings). */
static void on_settings(struct daemon *d, const struct settings *s, void *ctx)
{
	(void)d;
	struct mta *m = ctx;
	pthread_mutex_lock(&m->lock); /* workers read the text settings under it */
	m->set = *s;                  /* whole-struct copy; workers read single words (benign) */
	pthread_mutex_unlock(&m->lock);
	dns_apply_settings(m->dns, s);
}

static void on_stop(struct daemon *d, void *ctx)
{
	(void)ctx;
	daemon_stopped(d);
}

int mta_main(int argc, char **argv)
{
	static struct mta mv;
	struct mta *m = &mv;
	daemon_setup(&m->d, "mta", DAEMON_WANT_STORE, argc, argv);
	struct buf err = BUF_INIT;
	m->qdir = config_path(&m->d.cfg, "queue");
	if (queue_dir_ensure(m->qdir, &err) != 0)
		fatal("%s", buf_cstr(&err));
	if (tls_client_ctx_create(false, NULL, &m->client_tls, &err) != 0 ||
	    smtp_client_dane_enable(m->client_tls, &err) != IX_OK)
		fatal("outbound TLS: %s", buf_cstr(&err));
	/* our certificate, for the servers of the organisation that ask (they know it from our server entry) */
	char *cert = config_path(&m->d.cfg, "tls/cert.pem"), *key = config_path(&m->d.cfg, "tls/key.pem");
	if (tls_ctx_use_client_cert(m->client_tls, cert, key, &err) != 0) {
		log_warn("outbound TLS without a client certificate: %s", buf_cstr(&err));
		buf_reset(&err);
	}
	free(cert);
	free(key);
	m->peers = tls_peers_create(m->d.cfg.data_dir, true);
	if (dkim_signer_create(&m->dkim, &err) != IX_OK) {
		log_error("mail leaves unsigned: %s", buf_cstr(&err));
		buf_reset(&err);
	}
	m->dns = dns_create();
	m->sts = mta_sts_create(m->dns);
	pthread_mutex_init(&m->lock, NULL);
	daemon_watch_settings(&m->d, on_settings, m);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->dest_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (workpool_create(m->d.loop, MTA_WORKERS, &m->pool, &err) != 0)
		fatal("%s", buf_cstr(&err));
	m->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (m->inotify_fd >= 0 && inotify_add_watch(m->inotify_fd, m->qdir, IN_MOVED_TO | IN_CLOSE_WRITE) >= 0)
		evloop_fd_set(m->d.loop, m->inotify_fd, EVLOOP_READ, on_inotify, m);
	else
		log_warn("inotify unavailable (%s): the queue is scanned every %d ms", strerror(errno), MTA_SCAN_MS);
	evloop_timer_start(m->d.loop, &m->scan_timer, 0, MTA_SCAN_MS, scan_tick, m);
	daemon_on_stop(&m->d, on_stop, m);
	daemon_run(&m->d);

	evloop_timer_stop(m->d.loop, &m->scan_timer);
	evloop_timer_stop(m->d.loop, &m->kick_timer);
	pthread_mutex_lock(&m->lock);
	m->quit = true;
	pthread_cond_broadcast(&m->dest_cond);
	pthread_mutex_unlock(&m->lock);
	/* a worker stuck in a slow SMTP exchange must not hold the stop: what it did not finish is retried */
	if (workpool_destroy(&m->pool, DAEMON_STOP_GRACE_MS) != 0) {
		log_warn("a delivery is still running at stop; it will be retried after restart");
		_exit(0);
	}
	for (size_t i = 0; i < m->nconns; i++)
		smtp_client_close(&m->conns[i].c);
	free(m->conns);
	free(m->dests);
	free(m->ents);
	if (m->inotify_fd >= 0) {
		evloop_fd_remove(m->d.loop, m->inotify_fd);
		close(m->inotify_fd);
	}
	tls_ctx_destroy(&m->client_tls);
	tls_peers_destroy(&m->peers);
	dkim_signer_destroy(&m->dkim);
	mta_sts_destroy(&m->sts);
	tls_ctx_destroy(&m->sts_tls);
	for (size_t i = 0; i < m->nold_tls; i++)
		tls_ctx_destroy(&m->old_tls[i]);
	dns_destroy(&m->dns);
	free(m->qdir);
	buf_free(&err);
	daemon_teardown(&m->d);
	return 0;
}
