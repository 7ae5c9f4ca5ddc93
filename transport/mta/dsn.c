/* dsn.c - RFC 3464 delivery status notifications and the header helpers (see dsn.h). */
#include "transport/mta/dsn.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_FAILED: return "failed";
	case DSN_DELAYED: return "delayed";
	case DSN_DELIVERED: return "delivered";
	case DSN_RELAYED: return "relayed";
	case DSN_EXPANDED: return "expanded";
	}
	return "failed";
}

static bool is_status(const char *s, size_t *len_r)
{
	/* class "." subject "." detail: [245].[0-9]{1,3}.[0-9]{1,3} */
	if (!(s[0] == '2' || s[0] == '4' || s[0] == '5') || s[1] != '.')
		return false;
	size_t i = 2, d = 0;
	while (s[i] >= '0' && s[i] <= '9' && d < 3) {
		i++;
		d++;
	}
	if (d == 0 || s[i] != '.')
		return false;
	i++;
	d = 0;
	while (s[i] >= '0' && s[i] <= '9' && d < 3) {
		i++;
		d++;
	}
	if (d == 0 || (s[i] != '\0' && s[i] != ' '))
		return false;
	*len_r = i;
	return true;
}

void dsn_status_from_reply(const char *reply, const char *def, char *out)
{
	size_t n;
	if (reply != NULL && strlen(reply) > 4 && (reply[3] == ' ' || reply[3] == '-') && is_status(reply + 4, &n) &&
	    n < 16) {
		memcpy(out, reply + 4, n);
		out[n] = '\0';
		return;
	}
	if (reply != NULL && (reply[0] == '2' || reply[0] == '4' || reply[0] == '5') && reply[1] >= '0' &&
	    reply[1] <= '9' && reply[2] >= '0' && reply[2] <= '9') {
		snprintf(out, 16, "%c.0.0", reply[0]);
		return;
	}
	snprintf(out, 16, "%s", def);
}

size_t dsn_header_length(const char *msg, size_t len)
{
	size_t lim = len < DSN_HEADER_SCAN_MAX ? len : DSN_HEADER_SCAN_MAX;
	size_t i = 0;
	while (i < lim) {
		const char *nl = memchr(msg + i, '\n', lim - i);
		if (nl == NULL)
			return len;
		size_t line = (size_t)(nl - (msg + i));
		if (line == 0 || (line == 1 && msg[i] == '\r'))
			return i + line + 1;
		i += line + 1;
	}
	return lim;
}

void dsn_each_field(const char *msg, size_t len, dsn_field_fn *fn, void *ctx)
{
	size_t end = dsn_header_length(msg, len);
	size_t i = 0;
	while (i < end) {
		const char *start = msg + i;
		/* a field runs to a line end not followed by whitespace */
		size_t j = i;
		for (;;) {
			const char *nl = memchr(msg + j, '\n', end - j);
			if (nl == NULL) {
				j = end;
				break;
			}
			j = (size_t)(nl - msg) + 1;
			if (j >= end || (msg[j] != ' ' && msg[j] != '\t'))
				break;
		}
		size_t flen = j - i;
		const char *colon = memchr(start, ':', flen);
		if (colon != NULL && colon > start) {
			size_t nlen = (size_t)(colon - start);
			if (!fn(ctx, start, nlen, colon + 1, flen - nlen - 1))
				return;
		}
		i = j;
	}
}

struct find_ctx {
	const char *name;
	char *out;
	size_t out_size;
	bool found;
};

static bool find_field(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct find_ctx *f = ctx;
	if (nlen != strlen(f->name) || strncasecmp(name, f->name, nlen) != 0)
		return true;
	f->found = true;
	size_t o = 0;
	bool space = false;
	for (size_t k = 0; k < vlen && o + 1 < f->out_size; k++) {
		unsigned char c = (unsigned char)val[k];
		if (c == '\r' || c == '\n' || c == '\t' || c == ' ' || c < 32 || c == 127) {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < f->out_size)
			f->out[o++] = ' ';
		space = false;
		f->out[o++] = (char)c;
	}
	f->out[o] = '\0';
	return false;
}

bool dsn_header_value(const char *msg, size_t len, const char *name, char *out, size_t out_size)
{
	struct find_ctx f = { name, out, out_size, false };
	if (out_size > 0)
		out[0] = '\0';
	if (out_size == 0)
		return false;
	dsn_each_field(msg, len, find_field, &f);
	return f.found;
}

static bool count_received(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	(void)val;
	(void)vlen;
	if (nlen == 8 && strncasecmp(name, "Received", 8) == 0)
		(*(unsigned *)ctx)++;
	return true;
}

unsigned dsn_count_received(const char *msg, size_t len)
{
	unsigned n = 0;
	dsn_each_field(msg, len, count_received, &n);
	return n;
}

static bool is_name(const char *name, size_t nlen, const char *want)
{
	return nlen == strlen(want) && strncasecmp(name, want, nlen) == 0;
}

struct rewrite_ctx {
	const char *msg;
	struct buf *out;
	size_t copied; /* msg[0..copied) is dealt with */
};

/* Drops each Return-Path field (what lies before it is copied). */
static bool drop_return_path(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct rewrite_ctx *r = ctx;
	if (is_name(name, nlen, "Return-Path")) {
		size_t start = (size_t)(name - r->msg);
		buf_append(r->out, r->msg + r->copied, start - r->copied);
		r->copied = (size_t)(val + vlen - r->msg);
	}
	return true;
}

void dsn_with_return_path(const char *msg, size_t len, const char *sender, struct buf *out)
{
	buf_printf(out, "Return-Path: <%s>\r\n", sender);
	struct rewrite_ctx r = { msg, out, 0 };
	dsn_each_field(msg, len, drop_return_path, &r);
	buf_append(out, msg + r.copied, len - r.copied);
}

/* Stops at the first field that is not a trace field: the insertion point. */
static bool before_trace_end(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct rewrite_ctx *r = ctx;
	if (is_name(name, nlen, "Return-Path") || is_name(name, nlen, "Received")) {
		r->copied = (size_t)(val + vlen - r->msg);
		return true;
	}
	return false;
}

void dsn_header_insert(const char *msg, size_t len, const char *field, struct buf *out)
{
	struct rewrite_ctx r = { msg, out, 0 };
	dsn_each_field(msg, len, before_trace_end, &r);
	buf_append(out, msg, r.copied);
	buf_append_str(out, field);
	buf_append(out, msg + r.copied, len - r.copied);
}

static void rfc822_date(long long t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Appends s with control bytes removed (fields of the report must stay one line). */
static void append_clean(struct buf *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		buf_append_char(out, ((unsigned char)*s < 32 || *s == 127) ? ' ' : *s);
}

void dsn_build(const struct dsn_report *r, struct buf *out)
{
	char date[64], boundary[64], arrival[64];
	long long now = (long long)time(NULL);
	rfc822_date(now, date, sizeof(date));
	rfc822_date(r->arrival ? r->arrival : now, arrival, sizeof(arrival));
	snprintf(boundary, sizeof(boundary), "=_ix_report_%llx_%lx", (unsigned long long)now_usec(),
		 (unsigned long)(r->original_len ^ r->nrcpts));
	bool failed = false, delayed = false;
	for (size_t i = 0; i < r->nrcpts; i++) {
		failed |= r->rcpts[i].action == DSN_FAILED;
		delayed |= r->rcpts[i].action == DSN_DELAYED;
	}
	bool relayed = false;
	for (size_t i = 0; i < r->nrcpts; i++)
		relayed |= r->rcpts[i].action == DSN_RELAYED;
	const char *subject = failed    ? "Undelivered Mail Returned to Sender"
			      : delayed ? "Delayed Mail (still being retried)"
					: "Successful Mail Delivery Report";
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@");
	append_clean(out, r->reporting_mta);
	buf_printf(out, ">\r\nTo: <");
	append_clean(out, r->to);
	buf_printf(out, ">\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@", subject, date, boundary + 2);
	append_clean(out, r->reporting_mta);
	buf_printf(out,
		   ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
		   "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n"
		   "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		   boundary, boundary);
	buf_append_str(out, "This is the mail system at host ");
	append_clean(out, r->reporting_mta);
	buf_append_str(out, ".\r\n\r\n");
	if (failed)
		buf_append_str(out, "Your message could not be delivered to one or more recipients.\r\n\r\n");
	else if (delayed)
		buf_append_str(out, "Your message has not been delivered yet; it is still being retried.\r\n"
				    "You do not need to send it again.\r\n\r\n");
	else if (relayed)
		buf_append_str(out, "Your message was delivered to the recipients below, or passed on to a server\r\n"
				    "that will not report further on its delivery.\r\n\r\n");
	else
		buf_append_str(out, "Your message was delivered to the recipients below.\r\n\r\n");
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *x = &r->rcpts[i];
		buf_append_str(out, "<");
		append_clean(out, x->addr);
		buf_printf(out, ">: %s", action_name(x->action));
		if (x->diagnostic != NULL && *x->diagnostic != '\0') {
			buf_append_str(out, ": ");
			append_clean(out, x->diagnostic);
		}
		buf_append_str(out, "\r\n");
	}
	buf_printf(out, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; ", boundary);
	append_clean(out, r->reporting_mta);
	buf_append_str(out, "\r\n");
	if (r->envid != NULL && *r->envid != '\0') {
		buf_append_str(out, "Original-Envelope-Id: ");
		append_clean(out, r->envid);
		buf_append_str(out, "\r\n");
	}
	buf_printf(out, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *x = &r->rcpts[i];
		char status[16];
		const char *def = x->action == DSN_FAILED ? "5.0.0" : x->action == DSN_DELAYED ? "4.0.0" : "2.0.0";
		if (x->status != NULL)
			snprintf(status, sizeof(status), "%s", x->status);
		else
			dsn_status_from_reply(x->diagnostic, def, status);
		/* the status class must agree with the action */
		if (x->action == DSN_FAILED && status[0] != '5')
			status[0] = '5';
		if (x->action == DSN_DELAYED && status[0] != '4')
			status[0] = '4';
		if ((x->action == DSN_DELIVERED || x->action == DSN_RELAYED || x->action == DSN_EXPANDED) &&
		    status[0] != '2')
			status[0] = '2';
		buf_append_str(out, "\r\n");
		if (x->orcpt != NULL && *x->orcpt != '\0') {
			buf_append_str(out, "Original-Recipient: rfc822;");
			append_clean(out, x->orcpt);
			buf_append_str(out, "\r\n");
		}
		buf_append_str(out, "Final-Recipient: rfc822;");
		append_clean(out, x->addr);
		buf_printf(out, "\r\nAction: %s\r\nStatus: %s\r\n", action_name(x->action), status);
		if (x->remote_mta != NULL && *x->remote_mta != '\0') {
			buf_append_str(out, "Remote-MTA: dns; ");
			append_clean(out, x->remote_mta);
			buf_append_str(out, "\r\n");
		}
		if (x->diagnostic != NULL && *x->diagnostic != '\0') {
			buf_append_str(out, "Diagnostic-Code: smtp; ");
			append_clean(out, x->diagnostic);
			buf_append_str(out, "\r\n");
		}
		buf_printf(out, "Last-Attempt-Date: %s\r\n", date);
	}
	size_t hlen = dsn_header_length(r->original, r->original_len);
	bool headers = r->headers_only || r->original_len > DSN_RETURN_MAX;
	buf_printf(out, "\r\n--%s\r\nContent-Type: %s\r\n\r\n", boundary,
		   headers ? "text/rfc822-headers" : "message/rfc822");
	buf_append(out, r->original, headers ? hlen : r->original_len);
	if (out->len >= 2 && memcmp(out->data + out->len - 2, "\r\n", 2) != 0)
		buf_append_str(out, "\r\n");
	buf_printf(out, "\r\n--%s--\r\n", boundary);
}
