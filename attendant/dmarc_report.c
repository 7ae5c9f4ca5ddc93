/* dmarc_report.c - the DMARC aggregate reports (RFC 7489 7.2): the evaluations grouped by policy domain, then by
 * source address and outcome, the XML of appendix C, the external destination verification of 7.1, sent as a report
 * message (attendant/report_mail.h). */
#include "attendant/dmarc_report.h"
#include "attendant/report_mail.h"
#include "common/err.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"
#include "directory/dir.h"
#include "transport/mta/dns.h"
#include "transport/mta/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void element(struct buf *out, const char *name, const char *value)
{
	buf_printf(out, "<%s>", name);
	buf_append_xml(out, value);
	buf_printf(out, "</%s>", name);
}

/* Two evaluations that make the same row (everything but the time and the policy). */
static bool same_row(const struct dmarcrpt_eval *a, const struct dmarcrpt_eval *b)
{
	return strcmp(a->ip, b->ip) == 0 && strcmp(a->disposition, b->disposition) == 0 &&
	       strcmp(a->dkim, b->dkim) == 0 && strcmp(a->spf, b->spf) == 0 && strcmp(a->reason, b->reason) == 0 &&
	       strcasecmp(a->header_from, b->header_from) == 0 && strcasecmp(a->envelope_from, b->envelope_from) == 0 &&
	       strcmp(a->dkim_auth, b->dkim_auth) == 0 && strcasecmp(a->spf_domain, b->spf_domain) == 0 &&
	       strcmp(a->spf_scope, b->spf_scope) == 0 && strcmp(a->spf_result, b->spf_result) == 0;
}

/* One DKIM result of the auth_results: "DOMAIN SELECTOR RESULT". */
static void dkim_result(struct buf *out, const char *item, size_t len)
{
	char one[1024];
	snprintf(one, sizeof(one), "%.*s", (int)len, item);
	char *sel = strchr(one, ' '), *res = sel != NULL ? strchr(sel + 1, ' ') : NULL;
	if (res == NULL)
		return;
	*sel++ = '\0';
	*res++ = '\0';
	buf_append_str(out, "<dkim>");
	element(out, "domain", one);
	if (strcmp(sel, "-") != 0)
		element(out, "selector", sel);
	element(out, "result", res);
	buf_append_str(out, "</dkim>");
}

void dmarc_report_xml(const struct dmarc_report_meta *meta, const char *domain, const struct dmarcrpt_eval *e, size_t n,
		      struct buf *out)
{
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata>");
	element(out, "org_name", meta->org_name);
	element(out, "email", meta->email);
	element(out, "report_id", meta->report_id);
	buf_printf(out, "<date_range><begin>%lld</begin><end>%lld</end></date_range></report_metadata>\n",
		   (long long)meta->begin, (long long)meta->end);
	const struct dmarcrpt_eval *last = &e[n - 1];
	buf_append_str(out, "<policy_published>");
	element(out, "domain", domain);
	element(out, "adkim", last->adkim);
	element(out, "aspf", last->aspf);
	element(out, "p", last->p);
	element(out, "sp", last->sp);
	element(out, "pct", last->pct);
	buf_append_str(out, "</policy_published>\n");
	bool *done = xcalloc(n + 1, sizeof(*done));
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		size_t count = 0;
		for (size_t k = i; k < n; k++) {
			if (!done[k] && same_row(&e[i], &e[k])) {
				done[k] = true;
				count++;
			}
		}
		const struct dmarcrpt_eval *r = &e[i];
		buf_append_str(out, "<record><row>");
		element(out, "source_ip", r->ip);
		buf_printf(out, "<count>%zu</count><policy_evaluated>", count);
		element(out, "disposition", r->disposition);
		element(out, "dkim", r->dkim);
		element(out, "spf", r->spf);
		if (r->reason[0] != '\0') {
			buf_append_str(out, "<reason>");
			element(out, "type", r->reason);
			element(out, "comment", "arc=pass, sealed by a trusted forwarder");
			buf_append_str(out, "</reason>");
		}
		buf_append_str(out, "</policy_evaluated></row><identifiers>");
		if (r->envelope_from[0] != '\0')
			element(out, "envelope_from", r->envelope_from);
		element(out, "header_from", r->header_from);
		buf_append_str(out, "</identifiers><auth_results>");
		for (const char *p = r->dkim_auth; *p != '\0';) {
			size_t len = strcspn(p, "|");
			dkim_result(out, p, len);
			p += len;
			p += *p == '|';
		}
		buf_append_str(out, "<spf>");
		element(out, "domain", r->spf_domain);
		element(out, "scope", r->spf_scope);
		element(out, "result", r->spf_result);
		buf_append_str(out, "</spf></auth_results></record>\n");
	}
	free(done);
	buf_append_str(out, "</feedback>\n");
}

/* The organisational domain as near as it comes without the public suffix list: the last two labels. */
static const char *org_domain(const char *d)
{
	const char *last = strrchr(d, '.'), *org = d;
	for (const char *q = strchr(d, '.'); q != NULL && q != last; q = strchr(q + 1, '.'))
		org = q + 1;
	return org;
}

bool dmarc_report_same_org(const char *policy_domain, const char *rua_domain)
{
	if (strcasecmp(policy_domain, rua_domain) == 0)
		return true;
	const char *a = org_domain(policy_domain), *b = org_domain(rua_domain);
	return strchr(a, '.') != NULL && strcasecmp(a, b) == 0;
}

/* The rua of domain's DMARC record (_dmarc.DOMAIN, "v=DMARC1; ...; rua=...") into rua_r. */
static bool report_addresses(struct dns *d, const char *domain, struct buf *rua_r)
{
	char name[DNS_NAME_MAX];
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	return report_rua(d, name, "DMARC1", rua_r);
}

/* RFC 7489 7.1: a domain that takes reports for policy_domain says so in
 * POLICY-DOMAIN._report._dmarc.RUA-DOMAIN ("v=DMARC1"). */
static bool destination_verified(struct dns *d, const char *policy_domain, const char *rua_domain)
{
	char name[DNS_NAME_MAX];
	snprintf(name, sizeof(name), "%s._report._dmarc.%s", policy_domain, rua_domain);
	struct dns_answer a;
	dns_query(d, name, DNS_T_TXT, &a);
	bool ok = false;
	for (size_t i = 0; a.status == DNS_OK && i < a.n && !ok; i++) {
		struct buf txt = BUF_INIT;
		dns_txt_join(a.rdata[i], a.rdlen[i], &txt);
		ok = strncasecmp(buf_cstr(&txt), "v=DMARC1", 8) == 0;
		buf_free(&txt);
	}
	dns_answer_free(&a);
	return ok;
}

struct records {
	struct dmarcrpt_eval *e;
	size_t n;
};

static void take_record(char *line, void *ctx)
{
	struct records *r = ctx;
	struct dmarcrpt_eval one;
	if (!dmarcrpt_parse(line, &one))
		return;
	r->e = xrealloc(r->e, (r->n + 1) * sizeof(*r->e));
	r->e[r->n++] = one;
}

static int by_domain(const void *x, const void *y)
{
	const struct dmarcrpt_eval *a = x, *b = y;
	int c = strcasecmp(a->domain, b->domain);
	return c != 0 ? c : (a->time > b->time) - (a->time < b->time);
}

/* One report to the addresses of a domain's rua. */
struct sending {
	const struct config *cfg;
	struct dns *dns;
	const char *domain, *report_id, *unique, *from;
	const struct dmarc_report_meta *meta;
	const struct buf *gz;
	size_t messages;
	unsigned sent, unverified;
};

static void send_to(const char *addr, void *ctx)
{
	struct sending *sd = ctx;
	const char *at = strrchr(addr, '@');
	if (at == NULL)
		return;
	if (!dmarc_report_same_org(sd->domain, at + 1) && !destination_verified(sd->dns, sd->domain, at + 1)) {
		log_info("DMARC reporting: %s asks for its report at %s, which does not say it takes them "
			 "(%s._report._dmarc.%s): not sent",
			 sd->domain, addr, sd->domain, at + 1);
		sd->unverified++;
		return;
	}
	const struct config *cfg = sd->cfg;
	char *text = xasprintf("The DMARC aggregate report (RFC 7489) of the mail %s received from %s is attached.",
			       cfg->domain, sd->domain);
	char *file = xasprintf("%s!%s!%lld!%lld!%s.xml.gz", cfg->domain, sd->domain, (long long)sd->meta->begin,
			       (long long)sd->meta->end, sd->unique);
	const struct report_mail m = { "DMARC reporting", sd->from, sd->domain,         sd->report_id, "",
				       "mixed",           text,     "application/gzip", file,          sd->gz };
	if (report_queue(cfg, addr, &m) == 0) {
		log_info("DMARC reporting: report %s of %s (%zu messages) to %s", sd->report_id, sd->domain,
			 sd->messages, addr);
		sd->sent++;
	}
	free(text);
	free(file);
}

void dmarc_report_run(const struct config *cfg, struct dir *dir, time_t now, time_t *last, bool force,
		      struct buf *summary_r)
{
	struct settings set;
	if (dir == NULL || dir_server_settings(dir, cfg->server_dn, &set) != IX_OK) {
		if (summary_r != NULL)
			buf_append_str(summary_r, "DMARC reports: the directory cannot be read now\n");
		return;
	}
	if (!force && (!set.v[SET_DMARC_REPORTS] || now - *last < (time_t)set.v[SET_DMARC_REPORT_INTERVAL]))
		return;
	*last = now;
	struct records recs = { NULL, 0 };
	report_take_records(cfg, DMARCRPT_DIR, take_record, &recs);
	struct dmarcrpt_eval *e = recs.e;
	size_t n = recs.n;
	unsigned domains = 0, sent = 0, unasked = 0, unverified = 0;
	if (n > 0)
		qsort(e, n, sizeof(*e), by_domain);
	struct dns *d = dns_create();
	dns_apply_settings(d, &set);
	char contact[SETTING_TEXT_MAX + 32];
	snprintf(contact, sizeof(contact), "%s", set.text[SET_DMARC_REPORT_CONTACT]);
	if (contact[0] == '\0')
		snprintf(contact, sizeof(contact), "dmarc-noreply@%.200s", cfg->domain);
	const char *org = set.text[SET_DMARC_REPORT_ORGANIZATION][0] != '\0' ? set.text[SET_DMARC_REPORT_ORGANIZATION]
									     : cfg->domain;
	char *from = xasprintf("DMARC reports of %s <%s>", org, contact);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && strcasecmp(e[j].domain, e[i].domain) == 0;)
			j++;
		domains++;
		struct buf rua = BUF_INIT;
		if (!report_addresses(d, e[i].domain, &rua)) {
			log_info("DMARC reporting: %s asks for no aggregate report (no rua): %zu messages not reported",
				 e[i].domain, j - i);
			unasked++;
			buf_free(&rua);
			continue;
		}
		char id[QUEUE_ID_MAX + 1];
		queue_new_id(id);
		char *report_id = xasprintf("%s@%s", id, cfg->hostname);
		const struct dmarc_report_meta meta = { org, contact, report_id, (time_t)e[i].time, now };
		struct buf xml = BUF_INIT, gz = BUF_INIT;
		dmarc_report_xml(&meta, e[i].domain, e + i, j - i, &xml);
		if (!report_gzip(xml.data, xml.len, &gz)) {
			log_warn("DMARC reporting: the report for %s cannot be compressed", e[i].domain);
		} else {
			struct sending sd = { cfg, d, e[i].domain, report_id, id, from, &meta, &gz, j - i, 0, 0 };
			report_each_mailto("DMARC reporting", e[i].domain, rua.data, send_to, &sd);
			sent += sd.sent;
			unverified += sd.unverified;
		}
		free(report_id);
		buf_free(&xml);
		buf_free(&gz);
		buf_free(&rua);
	}
	if (summary_r != NULL)
		buf_printf(summary_r,
			   "DMARC reports: %zu evaluations of %u domains, %u reports sent, %u domains ask for none, %u "
			   "addresses did not verify they take reports\n",
			   n, domains, sent, unasked, unverified);
	free(from);
	dns_destroy(&d);
	free(e);
}
