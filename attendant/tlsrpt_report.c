/* tlsrpt_report.c - the daily TLS reports (RFC 8460 4 and 5.3): the records grouped by domain and policy, the JSON,
 * sent as a report message (attendant/report_mail.h). https: rua addresses are not posted: logged. */
#include "attendant/tlsrpt_report.h"
#include "attendant/monitor.h"
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

static void iso_time(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_pair(struct buf *out, const char *name, const char *value, bool comma)
{
	buf_printf(out, "\"%s\":", name);
	monitor_json_string(out, value);
	if (comma)
		buf_append_char(out, ',');
}

void tlsrpt_report_json(const struct tlsrpt_meta *meta, const char *domain, const struct tlsrpt_session *s, size_t n,
			struct buf *out)
{
	char start[32], end[32];
	iso_time(meta->start, start);
	iso_time(meta->end, end);
	buf_append_char(out, '{');
	json_pair(out, "organization-name", meta->organization, true);
	buf_append_str(out, "\"date-range\":{");
	json_pair(out, "start-datetime", start, true);
	json_pair(out, "end-datetime", end, false);
	buf_append_str(out, "},");
	json_pair(out, "contact-info", meta->contact, true);
	json_pair(out, "report-id", meta->report_id, true);
	buf_append_str(out, "\"policies\":[");
	bool *done = xcalloc(n + 1, sizeof(*done));
	bool first_policy = true;
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		/* one policy: its type and string; the sessions under it */
		size_t ok = 0, failed = 0;
		struct buf hosts = BUF_INIT, details = BUF_INIT;
		bool *counted = xcalloc(n + 1, sizeof(*counted));
		for (size_t k = i; k < n; k++) {
			if (done[k] || strcmp(s[k].policy_type, s[i].policy_type) != 0 ||
			    strcmp(s[k].policy, s[i].policy) != 0)
				continue;
			done[k] = true;
			bool seen = false;
			for (size_t j = i; j < k && !seen; j++)
				seen = strcmp(s[j].policy_type, s[i].policy_type) == 0 &&
				       strcmp(s[j].policy, s[i].policy) == 0 &&
				       strcasecmp(s[j].mx_host, s[k].mx_host) == 0;
			if (!seen) {
				if (hosts.len > 0)
					buf_append_char(&hosts, ',');
				monitor_json_string(&hosts, s[k].mx_host);
			}
			if (strcmp(s[k].result, "success") == 0) {
				ok++;
				continue;
			}
			failed++;
			if (counted[k])
				continue;
			/* the failures of one kind at one host and address, together */
			size_t same = 0;
			for (size_t j = k; j < n; j++) {
				if (!counted[j] && strcmp(s[j].policy_type, s[k].policy_type) == 0 &&
				    strcmp(s[j].policy, s[k].policy) == 0 && strcmp(s[j].result, s[k].result) == 0 &&
				    strcasecmp(s[j].mx_host, s[k].mx_host) == 0 && strcmp(s[j].ip, s[k].ip) == 0) {
					counted[j] = true;
					same++;
				}
			}
			buf_append_str(&details, details.len > 0 ? ",{" : "{");
			json_pair(&details, "result-type", s[k].result, true);
			if (s[k].ip[0] != '\0')
				json_pair(&details, "receiving-ip", s[k].ip, true);
			json_pair(&details, "receiving-mx-hostname", s[k].mx_host, true);
			buf_printf(&details, "\"failed-session-count\":%zu}", same);
		}
		buf_append_str(out, first_policy ? "{\"policy\":{" : ",{\"policy\":{");
		first_policy = false;
		json_pair(out, "policy-type", s[i].policy_type, true);
		if (s[i].policy[0] != '\0') {
			buf_append_str(out, "\"policy-string\":[");
			struct buf item = BUF_INIT;
			for (const char *p = s[i].policy;; p++) {
				if (*p == '|' || *p == '\0') {
					monitor_json_string(out, buf_cstr(&item));
					buf_reset(&item);
					if (*p == '\0')
						break;
					buf_append_char(out, ',');
				} else {
					buf_append_char(&item, *p);
				}
			}
			buf_free(&item);
			buf_append_str(out, "],");
		}
		json_pair(out, "policy-domain", domain, true);
		buf_printf(out, "\"mx-host\":[%s]},", buf_cstr(&hosts));
		buf_printf(out,
			   "\"summary\":{\"total-successful-session-count\":%zu,\"total-failure-session-count\":%zu}",
			   ok, failed);
		if (details.len > 0)
			buf_printf(out, ",\"failure-details\":[%s]", buf_cstr(&details));
		buf_append_char(out, '}');
		free(counted);
		buf_free(&hosts);
		buf_free(&details);
	}
	buf_append_str(out, "]}");
	free(done);
}

/* The mailto: addresses of domain's TLSRPT record (_smtp._tls.DOMAIN, "v=TLSRPTv1; rua=..."), comma-separated into
 * rua_r. */
static bool report_addresses(struct dns *d, const char *domain, struct buf *rua_r)
{
	char name[DNS_NAME_MAX];
	snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
	return report_rua(d, name, "TLSRPTv1", rua_r);
}

static int by_domain(const void *x, const void *y)
{
	const struct tlsrpt_session *a = x, *b = y;
	int c = strcasecmp(a->domain, b->domain);
	return c != 0 ? c : (a->time > b->time) - (a->time < b->time);
}

struct records {
	struct tlsrpt_session *s;
	size_t n;
};

static void take_record(char *line, void *ctx)
{
	struct records *r = ctx;
	struct tlsrpt_session one;
	if (!tlsrpt_parse(line, &one))
		return;
	r->s = xrealloc(r->s, (r->n + 1) * sizeof(*r->s));
	r->s[r->n++] = one;
}

/* One report to one address of the domain's rua (RFC 8460 5.3). */
struct sending {
	const struct config *cfg;
	const char *domain, *report_id, *unique; /* unique: the report id's part in the file name */
	const struct tlsrpt_meta *meta;
	const struct buf *gz;
	size_t sessions;
};

static void send_to(const char *addr, void *ctx)
{
	const struct sending *sd = ctx;
	const struct config *cfg = sd->cfg;
	char *from = xasprintf("TLS reports of %s <tlsrpt-noreply@%s>", cfg->domain, cfg->domain);
	char *headers = xasprintf("TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n", sd->domain, cfg->domain);
	char *text = xasprintf("The TLS report (RFC 8460) of %s's sessions with %s is attached.", cfg->domain,
			       sd->domain);
	char *file = xasprintf("%s!%s!%lld!%lld!%s.json.gz", cfg->domain, sd->domain, (long long)sd->meta->start,
			       (long long)sd->meta->end, sd->unique);
	const struct report_mail m = { "TLS reporting",
				       from,
				       sd->domain,
				       sd->report_id,
				       headers,
				       "report; report-type=\"tlsrpt\"",
				       text,
				       "application/tlsrpt+gzip",
				       file,
				       sd->gz };
	if (report_queue(cfg, addr, &m) == 0)
		log_info("TLS reporting: report %s of %s (%zu sessions) to %s", sd->report_id, sd->domain, sd->sessions,
			 addr);
	free(from);
	free(headers);
	free(text);
	free(file);
}

void tlsrpt_report_run(const struct config *cfg, struct dir *dir, time_t now)
{
	struct settings set;
	if (dir == NULL || dir_server_settings(dir, cfg->server_dn, &set) != IX_OK || !set.v[SET_TLSRPT_ENABLED])
		return;
	struct records recs = { NULL, 0 };
	report_take_records(cfg, TLSRPT_DIR, take_record, &recs);
	struct tlsrpt_session *s = recs.s;
	size_t n = recs.n;
	if (n == 0)
		return;
	qsort(s, n, sizeof(*s), by_domain);
	struct dns *d = dns_create();
	dns_apply_settings(d, &set);
	char contact[SETTING_TEXT_MAX + 16];
	snprintf(contact, sizeof(contact), "%s",
		 set.text[SET_TLSRPT_CONTACT][0] != '\0' ? set.text[SET_TLSRPT_CONTACT] : "");
	if (contact[0] == '\0')
		snprintf(contact, sizeof(contact), "postmaster@%.200s", cfg->domain);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && strcasecmp(s[j].domain, s[i].domain) == 0;)
			j++;
		struct buf rua = BUF_INIT;
		if (!report_addresses(d, s[i].domain, &rua)) {
			log_info("TLS reporting: %s publishes no TLSRPT record: %zu sessions not reported", s[i].domain,
				 j - i);
			buf_free(&rua);
			continue;
		}
		char id[QUEUE_ID_MAX + 1];
		queue_new_id(id);
		char *report_id = xasprintf("%s@%s", id, cfg->hostname);
		struct tlsrpt_meta meta = { set.text[SET_TLSRPT_ORGANIZATION][0] != '\0'
						    ? set.text[SET_TLSRPT_ORGANIZATION]
						    : cfg->domain,
					    contact, report_id, (time_t)s[i].time, now };
		struct buf json = BUF_INIT, gz = BUF_INIT;
		tlsrpt_report_json(&meta, s[i].domain, s + i, j - i, &json);
		if (!report_gzip(json.data, json.len, &gz)) {
			log_warn("TLS reporting: the report for %s cannot be compressed", s[i].domain);
		} else {
			struct sending sd = { cfg, s[i].domain, report_id, id, &meta, &gz, j - i };
			report_each_mailto("TLS reporting", s[i].domain, rua.data, send_to, &sd);
		}
		free(report_id);
		buf_free(&json);
		buf_free(&gz);
		buf_free(&rua);
	}
	dns_destroy(&d);
	free(s);
}
