/* mutf7.c - modified UTF-7 (RFC 3501 5.1.3): '&' base64(UTF-16BE) '-' with ',' for '/', "&-" for '&'.
 * Decoding is strict: only the one canonical encoding of a name is accepted. */
#include "transport/imap/mutf7.h"

#include <string.h>

#include "common/err.h"
#include "common/base64.h"
#include "common/utf8.h"

/* Appends an error message; error_r may be NULL (the caller only wants the code). */
static void err_append(struct buf *error_r, const char *msg)
{
	if (error_r != NULL)
		buf_append_str(error_r, msg);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Modified base64 (RFC 3501 5.1.3) is the standard alphabet with ',' in place of '/'. */
static int b64_value(unsigned char c)
{
	if (c == ',')
		return 63;
	return c == '/' ? -1 : base64_char_value(c);
}

static int fail(struct buf *error_r, const char *msg)
{
	err_append(error_r, msg);
	return IX_EINVAL;
}

/* Decodes one base64 run s[0..n) (between '&' and '-') as UTF-16BE into UTF-8. */
static int decode_run(const unsigned char *s, size_t n, struct buf *out, struct buf *error_r)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);
		if (v < 0)
			return fail(error_r, "Invalid character in modified UTF-7 base64");
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return fail(error_r, "Unpaired surrogate in modified UTF-7");
			utf8_append(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return fail(error_r, "Unpaired surrogate in modified UTF-7");
		} else if (unit == 0) {
			return fail(error_r, "NUL in modified UTF-7");
		} else if (unit >= 0x20 && unit <= 0x7e) {
			return fail(error_r, "Printable ASCII encoded in modified UTF-7 base64");
		} else {
			utf8_append(out, unit);
		}
	}
	if (high != 0)
		return fail(error_r, "Unpaired surrogate in modified UTF-7");
	if (nbits >= 6 || bits != 0)
		return fail(error_r, "Non-canonical modified UTF-7 base64 padding");
	return 0;
}

int mutf7_to_utf8(const char *in, size_t len, struct buf *out, struct buf *error_r)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t start = out->len;
	size_t i = 0;
	bool prev_run = false;
	while (i < len) {
		unsigned char c = s[i];
		if (c < 0x20 || c > 0x7e)
			return fail(error_r, "Invalid byte in modified UTF-7 (8-bit or control)");
		if (c != '&') {
			buf_append_char(out, (char)c);
			i++;
			prev_run = false;
			continue;
		}
		if (i + 1 < len && s[i + 1] == '-') {
			buf_append_char(out, '&');
			i += 2;
			prev_run = false;
			continue;
		}
		if (prev_run)
			return fail(error_r, "Adjacent modified UTF-7 base64 runs (non-canonical)");
		size_t j = i + 1;
		while (j < len && s[j] != '-')
			j++;
		if (j >= len)
			return fail(error_r, "Unterminated modified UTF-7 base64 run");
		int ret = decode_run(s + i + 1, j - i - 1, out, error_r);
		if (ret != 0)
			return ret;
		i = j + 1;
		prev_run = true;
	}
	/* final word on canonical form: encoding the result must give the input back */
	struct buf again = BUF_INIT, err = BUF_INIT;
	int ret = mutf7_from_utf8(buf_cstr(out) + start, out->len - start, &again, &err);
	if (ret == 0 && (again.len != len || memcmp(buf_cstr(&again), in, len) != 0))
		ret = fail(error_r, "Non-canonical modified UTF-7");
	else if (ret != 0)
		err_append(error_r, buf_cstr(&err));
	buf_free(&again);
	buf_free(&err);
	return ret;
}

/* Encodes a run of UTF-16BE units (2 bytes each in run) as '&' base64 '-'. */
static void flush_run(struct buf *out, struct buf *run)
{
	const unsigned char *u = (const unsigned char *)run->data;
	uint32_t bits = 0;
	unsigned nbits = 0;
	buf_append_char(out, '&');
	for (size_t i = 0; i < run->len; i++) {
		bits = (bits << 8) | u[i];
		nbits += 8;
		while (nbits >= 6) {
			nbits -= 6;
			buf_append_char(out, b64[(bits >> nbits) & 0x3f]);
		}
		bits &= (1u << nbits) - 1;
	}
	if (nbits > 0)
		buf_append_char(out, b64[(bits << (6 - nbits)) & 0x3f]);
	buf_append_char(out, '-');
	buf_reset(run);
}

static void put_unit(struct buf *run, uint32_t unit)
{
	buf_append_char(run, (char)(unit >> 8));
	buf_append_char(run, (char)(unit & 0xff));
}

int mutf7_from_utf8(const char *in, size_t len, struct buf *out, struct buf *error_r)
{
	struct buf run = BUF_INIT;
	size_t i = 0;
	int ret = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(in + i, len - i, &cp);
		if (n == 0) {
			ret = fail(error_r, "Invalid UTF-8 in mailbox name");
			break;
		}
		i += n;
		if (cp == 0) {
			ret = fail(error_r, "NUL in mailbox name");
			break;
		}
		if (cp >= 0x20 && cp <= 0x7e) {
			if (run.len > 0)
				flush_run(out, &run);
			if (cp == '&')
				buf_append_str(out, "&-");
			else
				buf_append_char(out, (char)cp);
		} else if (cp >= 0x10000) {
			cp -= 0x10000;
			put_unit(&run, 0xd800 + (cp >> 10));
			put_unit(&run, 0xdc00 + (cp & 0x3ff));
		} else {
			put_unit(&run, cp);
		}
	}
	if (ret == 0 && run.len > 0)
		flush_run(out, &run);
	buf_free(&run);
	return ret;
}

int mutf7_mailbox_name_check(const char *utf8, size_t len, char sep, struct buf *error_r)
{
	if (len == 0)
		return fail(error_r, "Empty mailbox name");
	if (len > MUTF7_MAX_NAME) {
		err_append(error_r, "Mailbox name too long");
		return IX_ELIMIT;
	}
	size_t i = 0, comp_start = 0;
	unsigned levels = 1;
	while (i <= len) {
		if (i == len || utf8[i] == sep) {
			size_t clen = i - comp_start;
			const char *comp = utf8 + comp_start;
			if (clen == 0)
				return fail(error_r, "Empty component in mailbox name");
			if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.'))
				return fail(error_r, "Mailbox name component . or .. not allowed");
			if (clen > MUTF7_MAX_COMPONENT) {
				err_append(error_r, "Mailbox name component too long");
				return IX_ELIMIT;
			}
			if (i == len)
				break;
			if (++levels > MUTF7_MAX_LEVELS) {
				err_append(error_r, "Mailbox hierarchy too deep");
				return IX_ELIMIT;
			}
			i++;
			comp_start = i;
			continue;
		}
		uint32_t cp;
		size_t n = utf8_decode(utf8 + i, len - i, &cp);
		if (n == 0)
			return fail(error_r, "Invalid UTF-8 in mailbox name");
		i += n;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return fail(error_r, "Control character in mailbox name");
		if (cp == '*' || cp == '%')
			return fail(error_r, "Wildcard character in mailbox name");
	}
	return 0;
}
