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
	if (o->audience == SIEVE_OOF_ALL || o->audience == SIEVE_OOF_KNOWN) {
		/* known without a contact: the outside text is kept (user show, the API read it back) under a test
		 * no sender passes */
		buf_append_str(out, " elsif ");
		if (o->audience == SIEVE_OOF_KNOWN && (o->known == NULL || o->known[0] == NULL))
			buf_append_str(out, "false");
		else if (o->audience == SIEVE_OOF_KNOWN) {
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

/* The quoted string at *p (as quoted() writes it) as a new string, *p moved past it; NULL when there is none. */
static char *unquote(const char **p, const char *end)
{
	const char *s = *p;
	if (s >= end || *s != '"')
		return NULL;
	struct buf v = BUF_INIT;
	for (s++; s < end && *s != '"'; s++) {
		if (*s == '\\' && s + 1 < end)
			s++;
		buf_append_char(&v, *s);
	}
	if (s >= end) {
		buf_free(&v);
		return NULL;
	}
	*p = s + 1;
	char *r = xstrdup(buf_cstr(&v));
	buf_free(&v);
	return r;
}

/* The subject and text of the vacation rule with handle (":handle "H" :subject "S" "TEXT""), new strings. */
static int rule_texts(const char *script, size_t len, const char *handle, char **subject_r, char **text_r)
{
	char *key = xasprintf(":handle \"%s\" :subject ", handle);
	const char *end = script + len, *at = memmem(script, len, key, strlen(key));
	const char *p = at != NULL ? at + strlen(key) : NULL;
	free(key);
	*subject_r = *text_r = NULL;
	if (p == NULL)
		return -1;
	*subject_r = unquote(&p, end);
	if (*subject_r != NULL && p < end && *p == ' ') {
		p++;
		*text_r = unquote(&p, end);
	}
	return *text_r != NULL ? 0 : -1;
}

int sieve_oof_read(const char *script, size_t len, struct sieve_oof_settings *o_r)
{
	memset(o_r, 0, sizeof(*o_r));
	struct buf line = BUF_INIT;
	if (sieve_oof_describe(script, len, &line) != 0)
		return -1;
	char aud[16] = "", from[11] = "", until[11] = "";
	/* "external-audience=all from=- until=-" */
	if (sscanf(buf_cstr(&line), "external-audience=%15s from=%10s until=%10s", aud, from, until) != 3) {
		buf_free(&line);
		return -1;
	}
	buf_free(&line);
	o_r->audience = sieve_oof_audience(aud);
	snprintf(o_r->from, sizeof(o_r->from), "%s", strcmp(from, "-") == 0 ? "" : from);
	snprintf(o_r->until, sizeof(o_r->until), "%s", strcmp(until, "-") == 0 ? "" : until);
	char *subject2 = NULL;
	if (rule_texts(script, len, "oof-internal", &o_r->subject, &o_r->internal) != 0) {
		sieve_oof_settings_free(o_r);
		return -1;
	}
	rule_texts(script, len, "oof-external", &subject2, &o_r->external);
	free(subject2);
	return 0;
}

void sieve_oof_settings_free(struct sieve_oof_settings *o)
{
	free(o->internal);
	free(o->external);
	free(o->subject);
	memset(o, 0, sizeof(*o));
}
