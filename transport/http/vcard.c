/* vcard.c - vCard 4.0 and 3.0 text of an address-book entry (vcard.h) and the text matches of CardDAV's query
 * filters. */
#include "transport/http/vcard.h"
#include "common/base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Octets of a vCard line before it is folded (RFC 6350 3.2, RFC 2425 5.8.1). */
#define VCARD_LINE_OCTETS 75

void vcard_free(struct vcard *v)
{
	char **fields[] = { &v->uid,        &v->fn,    &v->given,  &v->surname, &v->nickname, &v->company,
			    &v->department, &v->title, &v->office, &v->phone,   &v->mobile,   &v->rev };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		free(*fields[i]);
	for (size_t i = 0; i < v->email_count; i++)
		free(v->emails[i]);
	free(v->emails);
	for (size_t i = 0; i < v->member_count; i++)
		free(v->members[i]);
	free(v->members);
	free(v->photo);
	memset(v, 0, sizeof(*v));
}

/* Appends a value with the text escapes of vCard (backslash, comma, semicolon, newline). */
static void text_escaped(struct buf *line, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '\\' || *s == ',' || *s == ';')
			buf_append_char(line, '\\');
		if (*s == '\n')
			buf_append_str(line, "\\n");
		else if (*s != '\r')
			buf_append_char(line, *s);
	}
}

/* Appends line to out folded into lines of at most VCARD_LINE_OCTETS octets (continuations begin with a space, which
 * counts), never inside a UTF-8 sequence, each ended by CRLF; empties line. */
static void fold(struct buf *out, struct buf *line)
{
	const unsigned char *p = (const unsigned char *)buf_cstr(line);
	size_t n = line->len, col = 0;
	for (size_t i = 0; i < n;) {
		size_t len = 1;
		while (i + len < n && (p[i + len] & 0xC0) == 0x80)
			len++;
		if (col + len > VCARD_LINE_OCTETS) {
			buf_append_str(out, "\r\n ");
			col = 1;
		}
		buf_append(out, p + i, len);
		col += len;
		i += len;
	}
	buf_append_str(out, "\r\n");
	buf_reset(line);
}

/* NAME:VALUE with the value escaped as text, when value is set. */
static void text_prop(struct buf *out, struct buf *line, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	buf_printf(line, "%s:", name);
	text_escaped(line, value);
	fold(out, line);
}

/* "20261207095512Z" as vCard 4's "20261207T095512Z" or vCard 3's "2026-12-07T09:55:12Z"; false when malformed. */
static bool rev_text(const char *ldap_time, int version, char *out, size_t size)
{
	if (ldap_time == NULL || strlen(ldap_time) < 14 || strspn(ldap_time, "0123456789") < 14)
		return false;
	const char *t = ldap_time;
	if (version == 4)
		snprintf(out, size, "%.8sT%.6sZ", t, t + 8);
	else
		snprintf(out, size, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", t, t + 4, t + 6, t + 8, t + 10, t + 12);
	return true;
}

void vcard_write(const struct vcard *v, int version, struct buf *out)
{
	struct buf line = BUF_INIT;
	bool v4 = version == 4;
	buf_printf(out, "BEGIN:VCARD\r\nVERSION:%s\r\nPRODID:-//Interchange//CardDAV//EN\r\n", v4 ? "4.0" : "3.0");
	if (v4)
		buf_printf(&line, "UID:urn:uuid:%s", v->uid);
	else
		buf_printf(&line, "UID:%s", v->uid);
	fold(out, &line);
	if (v4)
		buf_append_str(out, v->group ? "KIND:group\r\n" : "KIND:individual\r\n");
	else if (v->group)
		buf_append_str(out, "X-ADDRESSBOOKSERVER-KIND:group\r\n");
	text_prop(out, &line, "FN", v->fn != NULL ? v->fn : v->emails != NULL ? v->emails[0] : v->uid);
	buf_append_str(&line, "N:");
	text_escaped(&line, v->surname);
	buf_append_char(&line, ';');
	text_escaped(&line, v->given);
	buf_append_str(&line, ";;;");
	fold(out, &line);
	text_prop(out, &line, "NICKNAME", v->nickname);
	for (size_t i = 0; i < v->member_count; i++) {
		buf_printf(&line, "%s:urn:uuid:%s", v4 ? "MEMBER" : "X-ADDRESSBOOKSERVER-MEMBER", v->members[i]);
		fold(out, &line);
	}
	for (size_t i = 0; i < v->email_count; i++) {
		if (v4)
			buf_printf(&line, "EMAIL;TYPE=work%s:", i == 0 ? ";PREF=1" : "");
		else
			buf_printf(&line, "EMAIL;TYPE=INTERNET,WORK%s:", i == 0 ? ",PREF" : "");
		text_escaped(&line, v->emails[i]);
		fold(out, &line);
	}
	if (v->company != NULL || v->department != NULL) {
		buf_append_str(&line, "ORG:");
		text_escaped(&line, v->company);
		if (v->department != NULL) {
			buf_append_char(&line, ';');
			text_escaped(&line, v->department);
		}
		fold(out, &line);
	}
	text_prop(out, &line, "TITLE", v->title);
	if (v->office != NULL) {
		/* the office is where a person sits: ADR's extended-address component */
		buf_append_str(&line, v4 ? "ADR;TYPE=work:;" : "ADR;TYPE=WORK:;");
		text_escaped(&line, v->office);
		buf_append_str(&line, ";;;;;");
		fold(out, &line);
	}
	const char *phones[][3] = { { v->phone, "work,voice", "WORK,VOICE" }, { v->mobile, "cell", "CELL" } };
	for (size_t i = 0; i < 2; i++) {
		if (phones[i][0] == NULL)
			continue;
		if (v4)
			buf_printf(&line, "TEL;VALUE=text;TYPE=\"%s\":", phones[i][1]);
		else
			buf_printf(&line, "TEL;TYPE=%s:", phones[i][2]);
		text_escaped(&line, phones[i][0]);
		fold(out, &line);
	}
	if (v->photo != NULL && v->photo_len > 0) {
		buf_append_str(&line, v4 ? "PHOTO:data:image/jpeg;base64," : "PHOTO;ENCODING=b;TYPE=JPEG:");
		base64_encode(v->photo, v->photo_len, &line);
		fold(out, &line);
	}
	char rev[32];
	if (rev_text(v->rev, version, rev, sizeof(rev)))
		buf_printf(out, "REV:%s\r\n", rev);
	buf_append_str(out, "END:VCARD\r\n");
	buf_free(&line);
}

size_t vcard_values(const struct vcard *v, const char *name, char *storage, size_t storage_len, const char **vals,
		    size_t max)
{
	size_t n = 0;
#define ONE(x)                              \
	do {                                \
		if ((x) != NULL && n < max) \
			vals[n++] = (x);    \
	} while (0)
	if (strcasecmp(name, "FN") == 0) {
		ONE(v->fn);
	} else if (strcasecmp(name, "NICKNAME") == 0) {
		ONE(v->nickname);
	} else if (strcasecmp(name, "EMAIL") == 0) {
		for (size_t i = 0; i < v->email_count; i++)
			ONE(v->emails[i]);
	} else if (strcasecmp(name, "TEL") == 0) {
		ONE(v->phone);
		ONE(v->mobile);
	} else if (strcasecmp(name, "TITLE") == 0) {
		ONE(v->title);
	} else if (strcasecmp(name, "UID") == 0) {
		ONE(v->uid);
	} else if (strcasecmp(name, "KIND") == 0) {
		ONE(v->group ? "group" : "individual");
	} else if (strcasecmp(name, "N") == 0 && (v->surname != NULL || v->given != NULL)) {
		snprintf(storage, storage_len, "%s;%s", v->surname != NULL ? v->surname : "",
			 v->given != NULL ? v->given : "");
		ONE(storage);
	} else if (strcasecmp(name, "ORG") == 0 && (v->company != NULL || v->department != NULL)) {
		snprintf(storage, storage_len, "%s;%s", v->company != NULL ? v->company : "",
			 v->department != NULL ? v->department : "");
		ONE(storage);
	}
#undef ONE
	return n;
}

bool vcard_text_match(const char *value, const char *text, const char *match_type, bool octet)
{
	size_t vl = strlen(value), tl = strlen(text);
	int (*cmp)(const char *, const char *, size_t) = octet ? strncmp : strncasecmp;
	if (match_type == NULL || strcmp(match_type, "contains") == 0) {
		for (size_t i = 0; i + tl <= vl; i++)
			if (cmp(value + i, text, tl) == 0)
				return true;
		return false;
	}
	if (strcmp(match_type, "equals") == 0)
		return vl == tl && cmp(value, text, tl) == 0;
	if (strcmp(match_type, "starts-with") == 0)
		return vl >= tl && cmp(value, text, tl) == 0;
	if (strcmp(match_type, "ends-with") == 0)
		return vl >= tl && cmp(value + vl - tl, text, tl) == 0;
	return false;
}
