/* authres.c - SPF through libspf2 (with a DNS layer of ours: the MTA's validating resolver, dns.h), DKIM
 * verification through libopendkim (its key lookup ours, likewise), ARC by arc.c (Debian has no ARC library) and DMARC
 * through libopendmarc (the record fetched by us); the results as an Authentication-Results field. The one boundary where those libraries' results
 * become ours. */
#include "transport/mta/authres.h"
#include "common/err.h"
#include "transport/mta/arc.h"
#include "common/util.h"
#include "transport/mta/dns.h"
#include "transport/mta/dsn.h"
#include "transport/mta/mta.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <opendkim/dkim.h>
#include <opendmarc/dmarc.h>
#include <pthread.h>
#include <spf2/spf.h>
#include <spf2/spf_dns_cache.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A DKIM key record asked for lately (dkim_key_lookup's cache, direct-mapped by the name's hash). */
struct key_slot {
	char name[256];
	char *txt;    /* the record; NULL: there is none */
	time_t until; /* kept until then */
};

struct authres {
	char *id;
	struct dns *resolver;  /* the server's, not ours */
	SPF_dns_server_t *dns; /* our layer: the libspf2 cache layer sits on it */
	SPF_dns_server_t *cache;
	SPF_server_t *spf;
	DKIM_LIB *dkim;
	struct dkim_signer *keys_parsed; /* ARC's verifier: the public keys it parsed */
	OPENDMARC_LIB_T dmarc;           /* libopendmarc's settings (process-wide in the library) */
	pthread_mutex_t key_lock;
	struct key_slot keys[AUTHRES_KEY_CACHE];
	bool dmarc_ready;
};

/* ---- DNS ---- */

/* libspf2's lookup, answered by our resolver (a bogus answer is a temporary error: SPF gives temperror). */
static SPF_dns_rr_t *spf_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type, int should_cache)
{
	(void)should_cache;
	const struct authres *a = srv->hook;
	struct dns_answer ans;
	dns_query(a->resolver, domain, type, &ans);
	if (ans.status != DNS_OK) {
		int st = ans.status == DNS_NXDOMAIN ? HOST_NOT_FOUND : ans.status == DNS_NODATA ? NO_DATA : TRY_AGAIN;
		dns_answer_free(&ans);
		return SPF_dns_rr_new_init(srv, domain, type, 0, st);
	}
	SPF_dns_rr_t *rr = SPF_dns_rr_new_init(srv, domain, type, (int)ans.ttl, NETDB_SUCCESS);
	if (rr == NULL) {
		dns_answer_free(&ans);
		return NULL;
	}
	int cnt = 0;
	for (size_t i = 0; i < ans.n; i++) {
		const unsigned char *rd = ans.rdata[i];
		size_t rdlen = ans.rdlen[i];
		char name[DNS_NAME_MAX];
		struct buf txt = BUF_INIT;
		const void *data = NULL;
		size_t dlen = 0;
		switch (type) {
		case ns_t_a:
		case ns_t_aaaa:
			if (rdlen != (type == ns_t_a ? 4u : 16u))
				continue;
			data = rd;
			dlen = rdlen;
			break;
		case ns_t_mx:
		case ns_t_ptr:
			if ((type == ns_t_mx && rdlen < 3) ||
			    dns_name_text(type == ns_t_mx ? rd + 2 : rd, type == ns_t_mx ? rdlen - 2 : rdlen, name,
					  sizeof(name)) < 0)
				continue;
			data = name;
			dlen = strlen(name) + 1;
			break;
		case ns_t_txt:
		case ns_t_spf:
			dns_txt_join(rd, rdlen, &txt);
			buf_append_char(&txt, '\0');
			data = txt.data;
			dlen = txt.len;
			break;
		default: continue;
		}
		if (SPF_dns_rr_buf_realloc(rr, cnt, dlen) == SPF_E_SUCCESS) {
			memcpy(rr->rr[cnt], data, dlen);
			cnt++;
		}
		buf_free(&txt);
	}
	dns_answer_free(&ans);
	rr->num_rr = cnt;
	if (cnt == 0)
		rr->herrno = NO_DATA;
	return rr;
}

/* The TXT record name by our resolver: DKIM_CBSTAT_CONTINUE with the record in txt_r and its TTL in ttl_r, or
 * DKIM_CBSTAT_NOTFOUND or DKIM_CBSTAT_TRYAGAIN (a DNS failure, or an answer DNSSEC shows forged). */
static DKIM_CBSTAT key_fetch(const struct authres *a, const char *name, struct buf *txt_r, time_t *ttl_r)
{
	struct dns_answer ans;
	dns_query(a->resolver, name, DNS_T_TXT, &ans);
	DKIM_CBSTAT st = ans.status == DNS_OK                                     ? DKIM_CBSTAT_CONTINUE
			 : ans.status == DNS_NXDOMAIN || ans.status == DNS_NODATA ? DKIM_CBSTAT_NOTFOUND
										  : DKIM_CBSTAT_TRYAGAIN;
	if (st == DKIM_CBSTAT_CONTINUE) {
		dns_txt_join(ans.rdata[0], ans.rdlen[0], txt_r);
		*ttl_r = (time_t)ans.ttl;
	}
	dns_answer_free(&ans);
	return st;
}

static size_t key_hash(const char *name)
{
	size_t h = 5381;
	for (; *name != '\0'; name++)
		h = h * 33 + (unsigned char)(*name | 0x20);
	return h % AUTHRES_KEY_CACHE;
}

/* The TXT record name, from the cache or by our resolver (a record kept for its TTL, at most AUTHRES_KEY_TTL_MAX; its
 * absence for AUTHRES_KEY_ABSENT_TTL; a DNS failure not at all): DKIM_CBSTAT_CONTINUE with the record appended to
 * txt_r, DKIM_CBSTAT_NOTFOUND or DKIM_CBSTAT_TRYAGAIN. For DKIM keys and DMARC records. */
static DKIM_CBSTAT txt_cached(struct authres *a, const char *name, struct buf *txt_r)
{
	time_t now = time(NULL);
	struct key_slot *slot = strlen(name) < sizeof(a->keys[0].name) ? &a->keys[key_hash(name)] : NULL;
	if (slot != NULL) {
		pthread_mutex_lock(&a->key_lock);
		bool hit = slot->until > now && strcasecmp(slot->name, name) == 0;
		DKIM_CBSTAT st = slot->txt != NULL ? DKIM_CBSTAT_CONTINUE : DKIM_CBSTAT_NOTFOUND;
		if (hit && slot->txt != NULL)
			buf_append_str(txt_r, slot->txt);
		pthread_mutex_unlock(&a->key_lock);
		if (hit)
			return st;
	}
	time_t ttl = AUTHRES_KEY_ABSENT_TTL;
	size_t before = txt_r->len;
	DKIM_CBSTAT st = key_fetch(a, name, txt_r, &ttl);
	if (slot != NULL && st != DKIM_CBSTAT_TRYAGAIN) {
		pthread_mutex_lock(&a->key_lock);
		free(slot->txt);
		snprintf(slot->name, sizeof(slot->name), "%s", name);
		slot->txt = st == DKIM_CBSTAT_CONTINUE ? xstrndup(txt_r->data + before, txt_r->len - before) : NULL;
		slot->until = now + (ttl < AUTHRES_KEY_TTL_MAX ? ttl : AUTHRES_KEY_TTL_MAX);
		pthread_mutex_unlock(&a->key_lock);
	}
	return st;
}

/* libopendkim's key lookup: the TXT record SELECTOR._domainkey.DOMAIN. */
static DKIM_CBSTAT dkim_key_lookup(DKIM *d, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	struct authres *a = dkim_get_user_context(d);
	char name[NS_MAXDNAME];
	snprintf(name, sizeof(name), "%s._domainkey.%s", (const char *)dkim_sig_getselector(sig),
		 (const char *)dkim_sig_getdomain(sig));
	struct buf txt = BUF_INIT;
	DKIM_CBSTAT st = txt_cached(a, name, &txt);
	if (st == DKIM_CBSTAT_CONTINUE) {
		if (txt.len < buflen)
			memcpy(buf, buf_cstr(&txt), txt.len + 1);
		else
			st = DKIM_CBSTAT_ERROR;
	}
	buf_free(&txt);
	return st;
}

/* arc.c's key lookup: the TXT record name, through the same cache. */
static int arc_key(void *ctx, const char *name, struct buf *txt_r)
{
	DKIM_CBSTAT st = txt_cached(ctx, name, txt_r);
	return st == DKIM_CBSTAT_CONTINUE ? IX_OK : st == DKIM_CBSTAT_NOTFOUND ? IX_ENOTFOUND : IX_EAGAIN;
}

/* ---- setup ---- */

int authres_create(const char *authserv_id, struct dns *resolver, struct authres **a_r, struct buf *error_r)
{
	struct authres *a = xcalloc(1, sizeof(*a));
	a->id = xstrdup(authserv_id);
	a->resolver = resolver;
	pthread_mutex_init(&a->key_lock, NULL);
	a->dns = xcalloc(1, sizeof(*a->dns));
	a->dns->lookup = spf_lookup;
	a->dns->name = "interchange";
	a->dns->hook = a;
	a->cache = SPF_dns_cache_new(a->dns, NULL, 0, AUTHRES_SPF_CACHE_BITS);
	a->spf = a->cache != NULL ? SPF_server_new_dns(a->cache, 0) : NULL;
	a->dkim = dkim_init(NULL, NULL);
	(void)dkim_signer_create(&a->keys_parsed, error_r);
	/* libopendmarc keeps its settings (the public suffix list) for the whole process */
	if (access(AUTHRES_PSL, R_OK) == 0) {
		a->dmarc.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
		snprintf((char *)a->dmarc.tld_source_file, sizeof(a->dmarc.tld_source_file), "%s", AUTHRES_PSL);
	}
	a->dmarc_ready = opendmarc_policy_library_init(&a->dmarc) == DMARC_PARSE_OKAY;
	if (!a->dmarc_ready) {
		buf_append_str(error_r, "libopendmarc cannot start");
		authres_destroy(&a);
		return IX_EIO;
	}
	if (a->spf == NULL || a->dkim == NULL || dkim_set_key_lookup(a->dkim, dkim_key_lookup) != DKIM_STAT_OK) {
		buf_append_str(error_r, a->spf == NULL ? "libspf2 cannot start" : "libopendkim cannot start");
		authres_destroy(&a);
		return IX_EIO;
	}
	*a_r = a;
	return IX_OK;
}

void authres_destroy(struct authres **ap)
{
	struct authres *a = *ap;
	if (a == NULL)
		return;
	if (a->spf != NULL)
		SPF_server_free(a->spf); /* a resolver given to SPF_server_new_dns stays the caller's */
	if (a->cache != NULL)
		SPF_dns_free(a->cache); /* the cache layer; ours below it has no destroy function */
	if (a->dkim != NULL)
		dkim_close(a->dkim);
	dkim_signer_destroy(&a->keys_parsed);
	if (a->dmarc_ready)
		(void)opendmarc_policy_library_shutdown(&a->dmarc);
	for (size_t i = 0; i < AUTHRES_KEY_CACHE; i++)
		free(a->keys[i].txt);
	pthread_mutex_destroy(&a->key_lock);
	free(a->dns);
	free(a->id);
	free(a);
	*ap = NULL;
}

/* ---- the checks ---- */

/* An address or domain usable as a pvalue (RFC 8601 2.2): atext, dots and one @; else only its domain is given. */
static const char *pvalue(const char *addr)
{
	for (const char *p = addr; *p != '\0'; p++) {
		if (!(strchr("!#$%&'*+-/=?^_`{|}~.@", *p) != NULL || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return strrchr(addr, '@') != NULL ? strrchr(addr, '@') + 1 : "";
	}
	return addr;
}

/* Checks SPF into out (and e, for a DMARC report, when not NULL); returns the outcome for DMARC
 * (DMARC_POLICY_SPF_OUTCOME_*). */
static int spf_check(struct authres *a, const struct authres_input *in, struct buf *out, struct dmarcrpt_eval *e)
{
	const char *result = "temperror";
	SPF_request_t *req = SPF_request_new(a->spf);
	SPF_response_t *resp = NULL;
	bool ipv6 = strchr(in->client_ip, ':') != NULL;
	const char *ip = strncasecmp(in->client_ip, "::ffff:", 7) == 0 && strchr(in->client_ip, '.') != NULL
				 ? in->client_ip + 7
				 : in->client_ip;
	if (req != NULL && (ip != in->client_ip || !ipv6 ? SPF_request_set_ipv4_str(req, ip)
							 : SPF_request_set_ipv6_str(req, ip)) == SPF_E_SUCCESS) {
		if (in->helo[0] != '\0')
			SPF_request_set_helo_dom(req, in->helo);
		if (SPF_request_set_env_from(req, in->mail_from[0] != '\0' ? in->mail_from : in->helo) == 0) {
			SPF_request_query_mailfrom(req, &resp);
			result = resp != NULL ? SPF_strresult(SPF_response_result(resp)) : "temperror";
		} else {
			result = "none"; /* no identity to check (a null sender without HELO) */
		}
	}
	/* libspf2's names are RFC 7208's but for the error results */
	if (strcmp(result, "(invalid)") == 0 || strcmp(result, "error") == 0)
		result = "temperror";
	else if (strcmp(result, "unknown") == 0)
		result = "permerror";
	buf_printf(out, ";\r\n\tspf=%s (client-ip %s", result, in->client_ip);
	if (in->helo[0] != '\0')
		buf_printf(out, ", helo %s", pvalue(in->helo));
	if (in->mail_from[0] != '\0')
		buf_printf(out, ") smtp.mailfrom=%s", pvalue(in->mail_from));
	else
		buf_printf(out, ") smtp.helo=%s", pvalue(in->helo));
	if (resp != NULL)
		SPF_response_free(resp);
	if (req != NULL)
		SPF_request_free(req);
	if (e != NULL) {
		snprintf(e->spf_domain, sizeof(e->spf_domain), "%s",
			 in->mail_from[0] != '\0' ? mta_domain(in->mail_from) : in->helo);
		snprintf(e->envelope_from, sizeof(e->envelope_from), "%s",
			 in->mail_from[0] != '\0' ? e->spf_domain : ""); /* RFC5321.MailFrom's: none for <> */
		snprintf(e->spf_scope, sizeof(e->spf_scope), "%s", in->mail_from[0] != '\0' ? "mfrom" : "helo");
		snprintf(e->spf_result, sizeof(e->spf_result), "%s", result);
	}
	return strcmp(result, "pass") == 0                                      ? DMARC_POLICY_SPF_OUTCOME_PASS
	       : strcmp(result, "fail") == 0 || strcmp(result, "softfail") == 0 ? DMARC_POLICY_SPF_OUTCOME_FAIL
	       : strcmp(result, "temperror") == 0                               ? DMARC_POLICY_SPF_OUTCOME_TMPFAIL
										: DMARC_POLICY_SPF_OUTCOME_NONE;
}

static const char *dkim_alg(DKIM_SIGINFO *sig)
{
	dkim_alg_t alg;
	if (dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK)
		return NULL;
	return alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256"
	       : alg == DKIM_SIGN_RSASHA256   ? "rsa-sha256"
	       : alg == DKIM_SIGN_RSASHA1     ? "rsa-sha1"
					      : NULL;
}

/* Verifies the DKIM signatures into out, each result also given to the DMARC evaluation pctx (and to e, for a DMARC
 * report, when not NULL). */
static void dkim_check(struct authres *a, const struct authres_input *in, DMARC_POLICY_T *pctx, struct buf *out,
		       struct dmarcrpt_eval *e)
{
	DKIM_STAT st;
	DKIM *d = dkim_verify(a->dkim, (const unsigned char *)"ix", NULL, &st);
	if (d == NULL) {
		buf_append_str(out, ";\r\n\tdkim=temperror (the verifier cannot start)");
		return;
	}
	dkim_set_user_context(d, a);
	st = dkim_chunk(d, (u_char *)in->msg, in->len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG)
		st = dkim_eom(d, NULL);
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs == 0) {
		buf_append_str(out, ";\r\n\tdkim=none");
		dkim_free(d);
		return;
	}
	for (int i = 0; i < nsigs && i < AUTHRES_DKIM_MAX; i++) {
		DKIM_SIGINFO *sig = sigs[i];
		unsigned flags = dkim_sig_getflags(sig);
		int err = dkim_sig_geterror(sig);
		const char *result, *why = NULL;
		if ((flags & DKIM_SIGFLAG_PASSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
			result = "pass";
		} else if (err == DKIM_SIGERROR_KEYFAIL) {
			result = "temperror";
		} else if (err == DKIM_SIGERROR_NOKEY || (flags & DKIM_SIGFLAG_IGNORE)) {
			result = "permerror";
		} else {
			result = "fail";
		}
		if (strcmp(result, "pass") != 0)
			why = err != DKIM_SIGERROR_OK                   ? dkim_sig_geterrorstr(err)
			      : dkim_sig_getbh(sig) != DKIM_SIGBH_MATCH ? "body hash did not verify"
									: "signature did not verify";
		buf_printf(out, ";\r\n\tdkim=%s", result);
		if (pctx != NULL && dkim_sig_getdomain(sig) != NULL)
			opendmarc_policy_store_dkim(pctx, dkim_sig_getdomain(sig), dkim_sig_getselector(sig),
						    strcmp(result, "pass") == 0 ? DMARC_POLICY_DKIM_OUTCOME_PASS
						    : strcmp(result, "temperror") == 0
							    ? DMARC_POLICY_DKIM_OUTCOME_TMPFAIL
							    : DMARC_POLICY_DKIM_OUTCOME_FAIL,
						    NULL);
		if (why != NULL)
			buf_printf(out, " (%s)", why);
		const char *dom = (const char *)dkim_sig_getdomain(sig), *sel = (const char *)dkim_sig_getselector(sig);
		if (e != NULL && dom != NULL) {
			size_t at = strlen(e->dkim_auth);
			snprintf(e->dkim_auth + at, sizeof(e->dkim_auth) - at, "%s%s %s %s", at > 0 ? "|" : "",
				 pvalue(dom), sel != NULL ? pvalue(sel) : "-", result);
		}
		if (dom != NULL)
			buf_printf(out, " header.d=%s", pvalue(dom));
		if (sel != NULL)
			buf_printf(out, " header.s=%s", pvalue(sel));
		const char *alg = dkim_alg(sig);
		if (alg != NULL)
			buf_printf(out, " header.a=%s", alg);
		char b[16];
		size_t blen = sizeof(b);
		if (dkim_get_sigsubstring(d, sig, b, &blen) == DKIM_STAT_OK && blen < sizeof(b)) {
			b[blen] = '\0';
			buf_printf(out, " header.b=%s", b);
		}
	}
	dkim_free(d);
}

/* The DMARC record of domain (_dmarc.DOMAIN, else that of the domain of its last two labels, the organisational
 * domain as near as it takes without the suffix list) into record_r, the domain it was found at into at_r. */
static bool dmarc_record(struct authres *a, const char *domain, struct buf *record_r, char *at_r, size_t size)
{
	const char *d = domain;
	for (int round = 0; round < 2 && d != NULL; round++) {
		char name[NS_MAXDNAME];
		snprintf(name, sizeof(name), "_dmarc.%s", d);
		buf_reset(record_r);
		if (txt_cached(a, name, record_r) == DKIM_CBSTAT_CONTINUE &&
		    strncasecmp(buf_cstr(record_r), "v=DMARC1", 8) == 0) {
			snprintf(at_r, size, "%s", d);
			return true;
		}
		/* the organisational domain: the last two labels */
		const char *last = strrchr(d, '.'), *org = NULL;
		for (const char *q = strchr(d, '.'); q != NULL && q != last; q = strchr(q + 1, '.'))
			org = q + 1;
		d = org;
	}
	return false;
}

static const char *policy_name(int p)
{
	return p == DMARC_RECORD_P_REJECT ? "reject" : p == DMARC_RECORD_P_QUARANTINE ? "quarantine" : "none";
}

/* The evaluation for a DMARC aggregate report: the record's policy and what was applied (an override says so in the
 * field written so far). */
static void dmarc_eval(DMARC_POLICY_T *pctx, const char *at, const char *from_domain, enum authres_policy policy,
		       const struct buf *out, struct dmarcrpt_eval *e)
{
	int p = 0, sp = 0, adkim = 0, aspf = 0, pct = 100, dkim = 0, spf = 0;
	opendmarc_policy_fetch_p(pctx, &p);
	opendmarc_policy_fetch_sp(pctx, &sp);
	opendmarc_policy_fetch_adkim(pctx, &adkim);
	opendmarc_policy_fetch_aspf(pctx, &aspf);
	opendmarc_policy_fetch_pct(pctx, &pct);
	opendmarc_policy_fetch_alignment(pctx, &dkim, &spf);
	snprintf(e->domain, sizeof(e->domain), "%.255s", at);
	snprintf(e->header_from, sizeof(e->header_from), "%.255s", from_domain);
	snprintf(e->p, sizeof(e->p), "%s", policy_name(p));
	snprintf(e->sp, sizeof(e->sp), "%s", policy_name(sp != 0 ? sp : p));
	snprintf(e->adkim, sizeof(e->adkim), "%s", adkim == DMARC_RECORD_A_STRICT ? "s" : "r");
	snprintf(e->aspf, sizeof(e->aspf), "%s", aspf == DMARC_RECORD_A_STRICT ? "s" : "r");
	snprintf(e->pct, sizeof(e->pct), "%d", pct >= 0 && pct <= 100 ? pct : 100);
	snprintf(e->disposition, sizeof(e->disposition), "%s",
		 policy == AUTHRES_REJECT       ? "reject"
		 : policy == AUTHRES_QUARANTINE ? "quarantine"
						: "none");
	snprintf(e->dkim, sizeof(e->dkim), "%s", dkim == DMARC_POLICY_DKIM_ALIGNMENT_PASS ? "pass" : "fail");
	snprintf(e->spf, sizeof(e->spf), "%s", spf == DMARC_POLICY_SPF_ALIGNMENT_PASS ? "pass" : "fail");
	snprintf(e->reason, sizeof(e->reason), "%s",
		 strstr(buf_cstr(out), "policy.arc-override=") != NULL ? "local_policy" : "");
}

/* DMARC of the message into out (pctx holds the SPF and DKIM outcomes); returns the policy to apply: a failure
 * whose ARC chain passed, sealed last by a domain of trusted, is delivered (RFC 7489 local policy, RFC 8617 7.2). */
static enum authres_policy dmarc_check(struct authres *a, DMARC_POLICY_T *pctx, const char *from_domain,
				       const struct arc_verdict *arc, const char *trusted, struct buf *out,
				       struct dmarcrpt_eval *e)
{
	struct buf record = BUF_INIT;
	char at[NS_MAXDNAME];
	enum authres_policy policy = AUTHRES_DELIVER;
	if (from_domain[0] == '\0') {
		buf_append_str(out, ";\r\n\tdmarc=permerror (no From domain)");
	} else if (!dmarc_record(a, from_domain, &record, at, sizeof(at))) {
		buf_printf(out, ";\r\n\tdmarc=none header.from=%s", pvalue(from_domain));
	} else if (opendmarc_policy_store_dmarc(pctx, (u_char *)record.data, (u_char *)from_domain,
						strcasecmp(at, from_domain) != 0 ? (u_char *)at : NULL) !=
		   DMARC_PARSE_OKAY) {
		buf_printf(out, ";\r\n\tdmarc=permerror (a record that does not parse) header.from=%s",
			   pvalue(from_domain));
	} else {
		int p = 0, sp = 0;
		opendmarc_policy_fetch_p(pctx, &p);
		opendmarc_policy_fetch_sp(pctx, &sp);
		const char *pname = policy_name(p);
		switch (opendmarc_get_policy_to_enforce(pctx)) {
		case DMARC_POLICY_PASS:
			buf_printf(out, ";\r\n\tdmarc=pass (p=%s) header.from=%s", pname, pvalue(from_domain));
			break;
		case DMARC_POLICY_REJECT: policy = AUTHRES_REJECT; goto failed;
		case DMARC_POLICY_QUARANTINE: policy = AUTHRES_QUARANTINE; goto failed;
		case DMARC_POLICY_NONE:
		failed:
			if (policy != AUTHRES_DELIVER && arc->result == ARC_PASS && trusted != NULL &&
			    arc_trusted(trusted, arc->sealer)) {
				buf_printf(out,
					   ";\r\n\tdmarc=fail (p=%s, delivered: local_policy, ARC chain sealed by "
					   "trusted %s) header.from=%s policy.arc-override=%s",
					   pname, pvalue(arc->sealer), pvalue(from_domain), pvalue(arc->sealer));
				policy = AUTHRES_DELIVER;
				break;
			}
			buf_printf(out, ";\r\n\tdmarc=fail (p=%s, %s) header.from=%s", pname,
				   policy == AUTHRES_REJECT       ? "rejected"
				   : policy == AUTHRES_QUARANTINE ? "quarantined"
								  : "delivered",
				   pvalue(from_domain));
			break;
		default: buf_printf(out, ";\r\n\tdmarc=none header.from=%s", pvalue(from_domain)); break;
		}
		if (e != NULL)
			dmarc_eval(pctx, at, from_domain, policy, out, e);
	}
	buf_free(&record);
	return policy;
}

enum authres_policy authres_check(struct authres *a, const struct authres_input *in, struct buf *out,
				  struct buf *from_domain_r, struct dmarcrpt_eval *eval_r)
{
	if (eval_r != NULL) {
		memset(eval_r, 0, sizeof(*eval_r));
		eval_r->time = (long long)time(NULL);
		snprintf(eval_r->ip, sizeof(eval_r->ip), "%s", in->client_ip);
	}
	char from[NS_MAXDNAME] = "";
	if (!mta_header_from_domain(in->msg, in->len, from, sizeof(from)))
		from[0] = '\0';
	if (from_domain_r != NULL) {
		buf_reset(from_domain_r);
		buf_append_str(from_domain_r, from);
	}
	bool ipv6 = strchr(in->client_ip, ':') != NULL && strchr(in->client_ip, '.') == NULL;
	DMARC_POLICY_T *pctx = opendmarc_policy_connect_init((u_char *)in->client_ip, ipv6 ? DMARC_POLICY_IP_TYPE_IPV6
											   : DMARC_POLICY_IP_TYPE_IPV4);
	if (pctx != NULL && from[0] != '\0')
		opendmarc_policy_store_from_domain(pctx, (u_char *)from);
	buf_printf(out, "Authentication-Results: %s", a->id);
	int spf = spf_check(a, in, out, eval_r);
	if (pctx != NULL) {
		const char *spf_domain = in->mail_from[0] != '\0' ? mta_domain(in->mail_from) : in->helo;
		opendmarc_policy_store_spf(pctx, (u_char *)spf_domain, spf,
					   in->mail_from[0] != '\0' ? DMARC_POLICY_SPF_ORIGIN_MAILFROM
								    : DMARC_POLICY_SPF_ORIGIN_HELO,
					   NULL);
	}
	dkim_check(a, in, pctx, out, eval_r);
	struct arc_verdict arc;
	arc_verify(a->keys_parsed, in->msg, in->len, arc_key, a, &arc);
	buf_append_str(out, ";\r\n\t");
	arc_result_write(&arc, in->client_ip, out);
	enum authres_policy policy = AUTHRES_DELIVER;
	if (pctx != NULL) {
		policy = dmarc_check(a, pctx, from, &arc, in->arc_trusted, out, eval_r);
		opendmarc_policy_connect_shutdown(pctx);
	} else {
		buf_append_str(out, ";\r\n\tdmarc=temperror (the evaluator cannot start)");
	}
	arc_verdict_free(&arc);
	buf_append_str(out, "\r\n");
	authres_strip(a->id, in->msg, in->len, out);
	return policy;
}
