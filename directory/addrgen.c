/* addrgen.c - ASCII folding and address template expansion for recipient policies. */
#include "directory/addrgen.h"
#include "common/err.h"
#include "common/utf8.h"

#include <string.h>

/* Folds U+00C0..U+017F; runs of code points share one ASCII replacement. */
struct fold_run {
	unsigned char count;
	const char *ascii;
};

static const struct fold_run fold_latin1[] = {
	/* U+00C0 .. U+00FF */
	{ 6, "a" }, { 1, "ae" }, { 1, "c" }, { 4, "e" }, { 4, "i" }, { 1, "d" },  { 1, "n" },
	{ 5, "o" }, { 1, "" },   { 1, "o" }, { 4, "u" }, { 1, "y" }, { 1, "th" }, { 1, "ss" },
	{ 6, "a" }, { 1, "ae" }, { 1, "c" }, { 4, "e" }, { 4, "i" }, { 1, "d" },  { 1, "n" },
	{ 5, "o" }, { 1, "" },   { 1, "o" }, { 4, "u" }, { 1, "y" }, { 1, "th" }, { 1, "y" },
};

static const struct fold_run fold_latin_ext_a[] = {
	/* U+0100 .. U+017F */
	{ 6, "a" }, { 8, "c" },  { 4, "d" },  { 10, "e" }, { 8, "g" }, { 4, "h" },  { 10, "i" }, { 2, "ij" },
	{ 2, "j" }, { 3, "k" },  { 10, "l" }, { 9, "n" },  { 6, "o" }, { 2, "oe" }, { 6, "r" },  { 8, "s" },
	{ 6, "t" }, { 12, "u" }, { 2, "w" },  { 3, "y" },  { 6, "z" }, { 1, "s" },
};

static const char *fold_lookup(const struct fold_run *runs, size_t nruns, unsigned offset)
{
	for (size_t i = 0; i < nruns; i++) {
		if (offset < runs[i].count)
			return runs[i].ascii;
		offset -= runs[i].count;
	}
	return "";
}

static void fold_append(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
			buf_append_char(out, c);
		else if (c == '.' && out->len > 0 && out->data[out->len - 1] != '.')
			buf_append_char(out, '.');
	}
}

void addrgen_fold(const char *in, struct buf *out)
{
	size_t start = out->len;
	size_t len = strlen(in);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(in + i, len - i, &cp);
		if (n == 0) { /* an invalid sequence is skipped bytewise */
			i++;
			continue;
		}
		i += n;
		char ascii[2] = { 0, 0 };
		if (cp < 0x80) {
			ascii[0] = (char)cp;
			fold_append(out, ascii);
		} else if (cp >= 0xc0 && cp <= 0xff) {
			fold_append(out, fold_lookup(fold_latin1, IX_ARRAY_LEN(fold_latin1), cp - 0xc0));
		} else if (cp >= 0x100 && cp <= 0x17f) {
			fold_append(out, fold_lookup(fold_latin_ext_a, IX_ARRAY_LEN(fold_latin_ext_a), cp - 0x100));
		}
	}
	/* no leading or trailing dot from this piece */
	if (out->len > start && out->data[start] == '.') {
		memmove(out->data + start, out->data + start + 1, out->len - start - 1);
		out->len--;
		out->data[out->len] = '\0';
	}
	if (out->len > start && out->data[out->len - 1] == '.') {
		out->len--;
		out->data[out->len] = '\0';
	}
}

int addrgen_expand(const char *tmpl, const struct addrgen_vars *vars, struct buf *out, struct buf *error_r)
{
	if (strncasecmp(tmpl, "smtp:", 5) == 0)
		tmpl += 5;
	const char *at = strrchr(tmpl, '@');
	if (at == NULL || at[1] == '\0' || strchr(at + 1, '%') != NULL) {
		buf_printf(error_r, "address template \"%s\" needs the form local@domain", tmpl);
		return IX_EINVAL;
	}
	struct buf local = BUF_INIT;
	for (const char *p = tmpl; p < at; p++) {
		if (*p != '%') {
			char s[2] = { *p, 0 };
			fold_append(&local, s);
			continue;
		}
		p++;
		const char *v = NULL;
		switch (p < at ? *p : '\0') {
		case 'g': v = vars->given; break;
		case 's': v = vars->surname; break;
		case 'm': v = vars->nickname; break;
		case 'i': {
			struct buf g = BUF_INIT;
			addrgen_fold(vars->given != NULL ? vars->given : "", &g);
			if (g.len > 0)
				buf_append_char(&local, g.data[0]);
			buf_free(&g);
			continue;
		}
		case '%': buf_append_char(&local, '%'); continue;
		default:
			buf_printf(error_r, "address template \"%s\" has an unknown %% code", tmpl);
			buf_free(&local);
			return IX_EINVAL;
		}
		if (v != NULL) {
			if (local.len > 0 && local.data[local.len - 1] != '.' && v[0] == '.')
				v++;
			addrgen_fold(v, &local);
		}
	}
	/* collapse dots that met across pieces, trim the ends */
	struct buf clean = BUF_INIT;
	for (size_t i = 0; i < local.len; i++) {
		char c = local.data[i];
		if (c == '.' && (clean.len == 0 || clean.data[clean.len - 1] == '.'))
			continue;
		buf_append_char(&clean, c);
	}
	while (clean.len > 0 && clean.data[clean.len - 1] == '.')
		clean.data[--clean.len] = '\0';
	buf_free(&local);
	if (clean.len == 0 || clean.len > ADDRGEN_MAX_LOCAL) {
		buf_printf(error_r, "address template \"%s\" gives %s local part", tmpl,
			   clean.len == 0 ? "an empty" : "a too long");
		buf_free(&clean);
		return IX_EINVAL;
	}
	buf_append(out, clean.data, clean.len);
	buf_append_char(out, '@');
	for (const char *d = at + 1; *d != '\0'; d++)
		buf_append_char(out, (char)(*d >= 'A' && *d <= 'Z' ? *d - 'A' + 'a' : *d));
	buf_free(&clean);
	return IX_OK;
}

void addrgen_variant(const char *address, unsigned n, struct buf *out)
{
	const char *at = strrchr(address, '@');
	if (at == NULL)
		at = address + strlen(address);
	buf_append(out, address, (size_t)(at - address));
	buf_printf(out, "%u", n);
	buf_append_str(out, at);
}
