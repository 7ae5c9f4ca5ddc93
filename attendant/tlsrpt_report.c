/* tlsrpt_report.c - the daily TLS reports (RFC 8460 4 and 5.3): the records grouped by domain and policy, the JSON,
 * gzip (zlib), the report message queued for ix-mta (which signs it like all our mail). https: rua addresses are not
 * posted: logged. */
#include "attendant/tlsrpt_report.h"
#include "attendant/monitor.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"
#include "directory/dir.h"
#include "transport/mta/dkim.h"
#include "transport/mta/dns.h"
#include "transport/mta/queue.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

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

/* gzip (RFC 1952) of data into out. */
static bool gzip(const char *data, size_t len, struct buf *out)
{
	z_stream z = { 0 };
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return false;
	uLong bound = deflateBound(&z, (uLong)len);
	buf_reserve(out, bound + 1);
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data + out->len;
	z.avail_out = (uInt)bound;
	bool ok = deflate(&z, Z_FINISH) == Z_STREAM_END;
	if (ok)
		out->len += z.total_out;
	deflateEnd(&z);
	return ok;
}

/* The mailto: addresses of domain's TLSRPT record (_smtp._tls.DOMAIN, "v=TLSRPTv1; rua=..."), comma-separated into
 * rua_r. */
static bool report_addresses(struct dns *d, const char *domain, struct buf *rua_r)
{
	char name[DNS_NAME_MAX];
	snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
	struct dns_answer a;
	dns_query(d, name, DNS_T_TXT, &a);
	bool found = false;
	for (size_t i = 0; a.status == DNS_OK && i < a.n && !found; i++) {
		struct buf txt = BUF_INIT, v = BUF_INIT;
		dns_txt_join(a.rdata[i], a.rdlen[i], &txt);
		if (dkim_tag(txt.data, txt.len, "v", &v) && strcmp(buf_cstr(&v), "TLSRPTv1") == 0)
			found = dkim_tag(txt.data, txt.len, "rua", rua_r);
		buf_free(&txt);
		buf_free(&v);
	}
	dns_answer_free(&a);
	return found;
}

/* Queues the report message (RFC 8460 5.3) for to. */
static int queue_report(const struct config *cfg, const char *domain, const char *to, const char *report_id,
			const struct tlsrpt_meta *meta, const struct buf *gz)
{
	char id[QUEUE_ID_MAX + 1], date[64];
	queue_new_id(id);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	struct queue_msg m;
	queue_msg_init(&m);
	snprintf(m.id, sizeof(m.id), "%s", id);
	m.created = (long long)now;
	queue_set_field(&m.sender, "");
	struct buf *b = &m.body;
	buf_printf(b, "From: TLS reports of %s <tlsrpt-noreply@%s>\r\nTo: <%s>\r\nDate: %s\r\n", cfg->domain,
		   cfg->domain, to, date);
	buf_printf(b, "Message-ID: <%s@%s>\r\nSubject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", id,
		   cfg->hostname, domain, cfg->domain, report_id);
	buf_printf(b, "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\nAuto-Submitted: auto-generated\r\n", domain,
		   cfg->domain);
	buf_printf(b,
		   "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; "
		   "boundary=\"tlsrpt-%s\"\r\n\r\n",
		   id);
	buf_printf(b,
		   "--tlsrpt-%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
		   "The TLS report (RFC 8460) of %s's sessions with %s is attached.\r\n\r\n",
		   id, cfg->domain, domain);
	char start[32], end[32];
	snprintf(start, sizeof(start), "%lld", (long long)meta->start);
	snprintf(end, sizeof(end), "%lld", (long long)meta->end);
	buf_printf(b,
		   "--tlsrpt-%s\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
		   "Content-Disposition: attachment;\r\n filename=\"%s!%s!%s!%s!%s.json.gz\"\r\n\r\n",
		   id, cfg->domain, domain, start, end, id);
	struct buf b64 = BUF_INIT;
	base64_encode(gz->data, gz->len, &b64);
	for (size_t i = 0; i < b64.len; i += 76) {
		buf_append(b, b64.data + i, b64.len - i < 76 ? b64.len - i : 76);
		buf_append_str(b, "\r\n");
	}
	buf_free(&b64);
	buf_printf(b, "--tlsrpt-%s--\r\n", id);
	queue_set_field(&m.msgid, "");
	queue_msg_add_rcpt(&m, to, "", 0);
	char *qdir = config_path(cfg, "queue");
	struct buf err = BUF_INIT;
	int ret = queue_write(qdir, &m, &err);
	if (ret != 0)
		log_warn("TLS reporting: the report for %s cannot be queued: %s", domain, buf_cstr(&err));
	buf_free(&err);
	free(qdir);
	queue_msg_free(&m);
	return ret;
}

static int by_domain(const void *x, const void *y)
{
	const struct tlsrpt_session *a = x, *b = y;
	int c = strcasecmp(a->domain, b->domain);
	return c != 0 ? c : (a->time > b->time) - (a->time < b->time);
}

/* Reads the records of folder's files named *.sending into *s_r (appended). */
static void read_records(const char *folder, struct tlsrpt_session **s_r, size_t *n_r)
{
	DIR *dp = opendir(folder);
	if (dp == NULL)
		return;
	for (struct dirent *e; (e = readdir(dp)) != NULL;) {
		size_t len = strlen(e->d_name);
		if (len < 8 || strcmp(e->d_name + len - 8, ".sending") != 0)
			continue;
		char *path = xasprintf("%s/%s", folder, e->d_name), *data = NULL;
		size_t dlen;
		if (read_file(path, 64u << 20, &data, &dlen) == 0) {
			for (char *save = NULL, *line = strtok_r(data, "\n", &save); line != NULL;
			     line = strtok_r(NULL, "\n", &save)) {
				struct tlsrpt_session one;
				if (!tlsrpt_parse(line, &one))
					continue;
				*s_r = xrealloc(*s_r, (*n_r + 1) * sizeof(**s_r));
				(*s_r)[(*n_r)++] = one;
			}
		}
		free(data);
		unlink(path);
		free(path);
	}
	closedir(dp);
}

void tlsrpt_report_run(const struct config *cfg, struct dir *dir, time_t now)
{
	struct settings set;
	if (dir == NULL || dir_server_settings(dir, cfg->server_dn, &set) != IX_OK || !set.v[SET_TLSRPT_ENABLED])
		return;
	char *folder = config_path(cfg, TLSRPT_DIR);
	DIR *dp = opendir(folder);
	if (dp == NULL) {
		free(folder);
		return;
	}
	/* each day's file set aside first: what ix-mta records from now on goes into a new one */
	for (struct dirent *e; (e = readdir(dp)) != NULL;) {
		if (e->d_name[0] == '.' || strchr(e->d_name, '.') != NULL)
			continue;
		char *from = xasprintf("%s/%s", folder, e->d_name), *to = xasprintf("%s.sending", from);
		if (rename(from, to) != 0)
			log_warn("TLS reporting: cannot take %s", from);
		free(from);
		free(to);
	}
	closedir(dp);
	struct tlsrpt_session *s = NULL;
	size_t n = 0;
	read_records(folder, &s, &n);
	free(folder);
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
		if (!gzip(json.data, json.len, &gz)) {
			log_warn("TLS reporting: the report for %s cannot be compressed", s[i].domain);
		} else {
			for (char *save = NULL, *uri = strtok_r(rua.data, ",", &save); uri != NULL;
			     uri = strtok_r(NULL, ",", &save)) {
				if (strncasecmp(uri, "mailto:", 7) != 0) {
					log_info("TLS reporting: %s asks for its report at %s: only mailto: is sent",
						 s[i].domain, uri);
					continue;
				}
				char *q = strchr(uri, '?'); /* RFC 6068 headers, not ours to honour */
				if (q != NULL)
					*q = '\0';
				if (queue_report(cfg, s[i].domain, uri + 7, report_id, &meta, &gz) == 0)
					log_info("TLS reporting: report %s of %s (%zu sessions) to %s", report_id,
						 s[i].domain, j - i, uri + 7);
			}
		}
		free(report_id);
		buf_free(&json);
		buf_free(&gz);
		buf_free(&rua);
	}
	dns_destroy(&d);
	free(s);
}
