/* imap_output.c - what an IMAP session writes: untagged and tagged responses (a tagged one first brings the
 * selected view up to date), the answer for a store error, and the conversion of flags between IMAP and the store. */
#include "transport/imap/imap_session_int.h"
#include "transport/imap/imap_fetch.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap_flush_out(struct imap_session *s)
{
	if (s->in_worker)
		return; /* conn is the loop's: the command's output leaves when it is back */
	if (s->out.len > 0 && s->ls.conn != NULL) {
		if (s->z != NULL) {
			struct buf c = BUF_INIT;
			imap_z_compress(s->z, s->out.data, s->out.len, &c);
			conn_write(s->ls.conn, c.data, c.len);
			buf_free(&c);
		} else {
			conn_write(s->ls.conn, s->out.data, s->out.len);
		}
	}
	buf_reset(&s->out);
}

void imap_reply(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append_str(&s->out, "\r\n");
}

void imap_tagged(struct imap_session *s, const char *tag, const char *fmt, ...)
{
	if (s->state == IMAP_ST_SELECTED && s->dirty)
		imap_sync(s, true, false);
	imap_updates_refresh(s); /* the session's own changes (STORE) too */
	buf_append_str(&s->out, tag);
	buf_append_char(&s->out, ' ');
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append_str(&s->out, "\r\n");
	imap_flush_out(s);
}

/* A tagged response after which expunges may not be reported (FETCH, STORE, SEARCH by sequence numbers). */
void imap_tagged_noexpunge(struct imap_session *s, const char *tag, const char *text)
{
	if (s->state == IMAP_ST_SELECTED && s->dirty)
		imap_sync(s, false, false);
	imap_updates_refresh(s);
	buf_printf(&s->out, "%s %s\r\n", tag, text);
	imap_flush_out(s);
}

void imap_store_error_reply(struct imap_session *s, const char *tag, int ret, const struct buf *err)
{
	const char *code = ret == IX_ENOTFOUND ? "[NONEXISTENT] "
			   : ret == IX_EEXIST  ? "[ALREADYEXISTS] "
			   : ret == IX_ELIMIT  ? "[OVERQUOTA] "
			   : ret == IX_EPERM   ? "[NOPERM] "
			   : ret == IX_EINVAL  ? "[CANNOT] "
					       : "[SERVERBUG] ";
	imap_tagged(s, tag, "NO %s%s", code, err->len > 0 ? buf_cstr(err) : ix_strerror(ret));
}

static const struct {
	unsigned imap, st;
} flag_map[] = {
	{ IMAP_FLAG_ANSWERED, STORE_FLAG_ANSWERED }, { IMAP_FLAG_FLAGGED, STORE_FLAG_FLAGGED },
	{ IMAP_FLAG_DELETED, STORE_FLAG_DELETED },   { IMAP_FLAG_SEEN, STORE_FLAG_SEEN },
	{ IMAP_FLAG_DRAFT, STORE_FLAG_DRAFT },       { IMAP_FLAG_RECENT, STORE_FLAG_RECENT },
};

unsigned imap_flags_to_store(unsigned imap)
{
	unsigned r = 0;
	for (size_t i = 0; i < IX_ARRAY_LEN(flag_map); i++)
		if (imap & flag_map[i].imap)
			r |= flag_map[i].st;
	return r;
}

unsigned imap_flags_from_store(unsigned st)
{
	unsigned r = 0;
	for (size_t i = 0; i < IX_ARRAY_LEN(flag_map); i++)
		if (st & flag_map[i].st)
			r |= flag_map[i].imap;
	return r;
}

void imap_write_store_flags(struct buf *out, unsigned flags, const char *keywords)
{
	const char *kw[IMAP_MAX_KEYWORDS];
	size_t n = 0;
	char *copy = xstrdup(keywords != NULL ? keywords : "");
	for (char *save = NULL, *t = strtok_r(copy, " ", &save); t != NULL && n < IMAP_MAX_KEYWORDS;
	     t = strtok_r(NULL, " ", &save))
		kw[n++] = t;
	imap_write_flags(out, imap_flags_from_store(flags), kw, n);
	free(copy);
}
