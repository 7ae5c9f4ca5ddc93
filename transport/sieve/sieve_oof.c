/* sieve_oof.c - out of office as a generated Sieve script: one vacation rule with an inside and an outside text,
 * a period, and an audience outside; the settings ride in the script's first line so they can be shown again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "transport/sieve/sieve.h"

static void quoted(struct buf *out, const char *s)
{
	buf_append_char(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, *s);
	}
	buf_append_char(out, '"');
}

static void list(struct buf *out, const char *const *v)
{
	buf_append_char(out, '[');
	for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
		if (i)
			buf_append_str(out, ", ");
		quoted(out, v[i]);
	}
	buf_append_char(out, ']');
}

static const char *const audiences[] = { "none", "known", "all" };

int sieve_oof_audience(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(name, audiences[i]) == 0)
			return i;
	return -1;
}

void sieve_oof_script(const struct sieve_oof *o, struct buf *out)
{
	/* the first line: what `user show` prints */
	buf_printf(out, "# %s external-audience=%s from=%s until=%s\r\n", SIEVE_OOF_MARK,
		   audiences[o->audience < 0 || o->audience > 2 ? 0 : o->audience], o->from ? o->from : "-",
		   o->until ? o->until : "-");
	buf_append_str(out, "require [\"vacation\", \"envelope\", \"date\", \"relational\"];\r\n");
	const char *indent = "\t";
	if (o->from != NULL || o->until != NULL) {
		buf_append_str(out, "if allof (");
		if (o->from != NULL) {
			buf_append_str(out, "currentdate :value \"ge\" \"date\" ");
			quoted(out, o->from);
		}
		if (o->until != NULL) {
			buf_append_str(out, o->from != NULL ? ", " : "");
			buf_append_str(out, "currentdate :value \"le\" \"date\" ");
			quoted(out, o->until);
		}
		buf_append_str(out, ") {\r\n");
	} else
		buf_append_str(out, "if true {\r\n");
	buf_printf(out, "%sif envelope :domain :is \"from\" ", indent);
	list(out, o->domains);
	buf_printf(out, " {\r\n%s\tvacation :handle \"oof-internal\" :subject ", indent);
	quoted(out, o->subject ? o->subject : "Out of office");
	buf_append_char(out, ' ');
	quoted(out, o->internal ? o->internal : "");
	buf_printf(out, ";\r\n%s}", indent);
	if (o->audience == SIEVE_OOF_ALL || (o->audience == SIEVE_OOF_KNOWN && o->known && o->known[0])) {
		buf_append_str(out, " elsif ");
		if (o->audience == SIEVE_OOF_KNOWN) {
			buf_append_str(out, "envelope :all :is \"from\" ");
			list(out, o->known);
		} else
			buf_append_str(out, "true");
		buf_printf(out, " {\r\n%s\tvacation :handle \"oof-external\" :subject ", indent);
		quoted(out, o->subject ? o->subject : "Out of office");
		buf_append_char(out, ' ');
		quoted(out, o->external ? o->external : (o->internal ? o->internal : ""));
		buf_printf(out, ";\r\n%s}", indent);
	}
	buf_append_str(out, "\r\n}\r\n");
}

int sieve_oof_describe(const char *script, size_t len, struct buf *out)
{
	size_t ml = strlen(SIEVE_OOF_MARK);
	if (len < ml + 2 || strncmp(script, "# ", 2) != 0 || strncmp(script + 2, SIEVE_OOF_MARK, ml) != 0)
		return -1;
	const char *e = memchr(script, '\r', len);
	size_t n = e ? (size_t)(e - script) : len;
	if (n > ml + 3)
		buf_append(out, script + ml + 3, n - ml - 3);
	return 0;
}
