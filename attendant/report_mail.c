/* report_mail.c - the attendant's periodic reports' common part: their records taken from the day files, gzip (zlib),
 * the mailto: addresses of a rua list, the report message queued for ix-mta. */
#include "attendant/report_mail.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/util.h"
#include "transport/mta/dkim.h"
#include "transport/mta/dns.h"
#include "transport/mta/queue.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

void report_take_records(const struct config *cfg, const char *folder, void (*fn)(char *line, void *ctx), void *ctx)
{
	char *dir = config_path(cfg, folder);
	DIR *dp = opendir(dir);
	if (dp == NULL) {
		free(dir);
		return;
	}
	/* each day's file set aside first: what is recorded from now on goes into a new one */
	for (struct dirent *e; (e = readdir(dp)) != NULL;) {
		if (e->d_name[0] == '.' || strchr(e->d_name, '.') != NULL)
			continue;
		char *from = xasprintf("%s/%s", dir, e->d_name), *to = xasprintf("%s.sending", from);
		if (rename(from, to) != 0)
			log_warn("reports: cannot take %s", from);
		free(from);
		free(to);
	}
	rewinddir(dp);
	for (struct dirent *e; (e = readdir(dp)) != NULL;) {
		size_t len = strlen(e->d_name);
		if (len < 8 || strcmp(e->d_name + len - 8, ".sending") != 0)
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name), *data = NULL;
		size_t dlen;
		if (read_file(path, 64u << 20, &data, &dlen) == 0) {
			for (char *save = NULL, *line = strtok_r(data, "\n", &save); line != NULL;
			     line = strtok_r(NULL, "\n", &save))
				fn(line, ctx);
		}
		free(data);
		unlink(path);
		free(path);
	}
	closedir(dp);
	free(dir);
}

bool report_rua(struct dns *d, const char *name, const char *version, struct buf *rua_r)
{
	struct dns_answer a;
	dns_query(d, name, DNS_T_TXT, &a);
	bool found = false;
	for (size_t i = 0; a.status == DNS_OK && i < a.n && !found; i++) {
		struct buf txt = BUF_INIT, v = BUF_INIT;
		dns_txt_join(a.rdata[i], a.rdlen[i], &txt);
		if (dkim_tag(txt.data, txt.len, "v", &v) && strcmp(buf_cstr(&v), version) == 0)
			found = dkim_tag(txt.data, txt.len, "rua", rua_r);
		buf_free(&txt);
		buf_free(&v);
	}
	dns_answer_free(&a);
	return found;
}

bool report_gzip(const char *data, size_t len, struct buf *out)
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

void report_each_mailto(const char *what, const char *domain, char *rua, void (*fn)(const char *addr, void *ctx),
			void *ctx)
{
	for (char *save = NULL, *uri = strtok_r(rua, ",", &save); uri != NULL; uri = strtok_r(NULL, ",", &save)) {
		uri += strspn(uri, " \t");
		if (strncasecmp(uri, "mailto:", 7) != 0) {
			log_info("%s: %s asks for its report at %s: only mailto: is sent", what, domain, uri);
			continue;
		}
		uri[strcspn(uri, "?! \t")] = '\0'; /* headers (RFC 6068) and a size limit (RFC 7489 6.2) */
		if (uri[7] != '\0')
			fn(uri + 7, ctx);
	}
}

int report_queue(const struct config *cfg, const char *to, const struct report_mail *r)
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
	buf_printf(b, "From: %s\r\nTo: <%s>\r\nDate: %s\r\n", r->from, to, date);
	buf_printf(b, "Message-ID: <%s@%s>\r\nSubject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", id,
		   cfg->hostname, r->domain, cfg->domain, r->report_id);
	buf_printf(b, "%sAuto-Submitted: auto-generated\r\n", r->headers);
	buf_printf(b, "MIME-Version: 1.0\r\nContent-Type: multipart/%s;\r\n boundary=\"report-%s\"\r\n\r\n",
		   r->multipart, id);
	buf_printf(b, "--report-%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n\r\n", id, r->text);
	buf_printf(b,
		   "--report-%s\r\nContent-Type: %s\r\nContent-Transfer-Encoding: base64\r\n"
		   "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\n",
		   id, r->attachment_type, r->filename);
	struct buf b64 = BUF_INIT;
	base64_encode(r->gz->data, r->gz->len, &b64);
	for (size_t i = 0; i < b64.len; i += 76) {
		buf_append(b, b64.data + i, b64.len - i < 76 ? b64.len - i : 76);
		buf_append_str(b, "\r\n");
	}
	buf_free(&b64);
	buf_printf(b, "--report-%s--\r\n", id);
	queue_set_field(&m.msgid, "");
	queue_msg_add_rcpt(&m, to, "", 0);
	char *qdir = config_path(cfg, "queue");
	struct buf err = BUF_INIT;
	int ret = queue_write(qdir, &m, &err);
	if (ret != 0)
		log_warn("%s: the report for %s cannot be queued: %s", r->what, r->domain, buf_cstr(&err));
	buf_free(&err);
	free(qdir);
	queue_msg_free(&m);
	return ret;
}
