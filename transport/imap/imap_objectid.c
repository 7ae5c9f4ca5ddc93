/* imap_objectid.c - OBJECTID identifiers (RFC 8474) and PREVIEW text (RFC 8970), pure functions over the caller's
 * strings (see imap_objectid.h). */
#include "transport/imap/imap_objectid.h"
#include "transport/imap/imap_sort.h"
#include "common/utf8.h"

#include <string.h>
#include <strings.h>

void imap_mailboxid(const char *guid, uint32_t folder_id, struct buf *out)
{
	buf_printf(out, "F%s-%x", guid, folder_id);
}

static void append_hex(struct buf *out, const uint8_t *bytes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%02x", bytes[i]);
}

void imap_emailid(const uint8_t hash[32], struct buf *out)
{
	buf_append_char(out, 'M');
	append_hex(out, hash, 12);
}

/* 64-bit FNV-1a of data from a seed: two seeds give the 96 bits a THREADID shows (stable, not secret). */
static uint64_t fnv1a(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void imap_threadid(const char *message_id, const char *in_reply_to, const char *references, const uint8_t hash[32],
		   struct buf *out)
{
	const char *fields[] = { references, in_reply_to, message_id };
	struct buf ids = BUF_INIT;
	for (size_t i = 0; i < 3 && ids.len == 0; i++)
		if (fields[i] != NULL)
			imap_msgid_parse(fields[i], strlen(fields[i]), 0, &ids);
	const void *root = hash;
	size_t root_len = 32;
	if (ids.len > 0) {
		root = ids.data;
		root_len = strlen(ids.data); /* the first Message-ID, NUL-terminated */
	}
	uint64_t a = fnv1a(root, root_len, 0xcbf29ce484222325ull), b = fnv1a(root, root_len, 0x84222325cbf29ce4ull);
	uint8_t bytes[12];
	for (size_t i = 0; i < 8; i++)
		bytes[i] = (uint8_t)(a >> (56 - 8 * i));
	for (size_t i = 0; i < 4; i++)
		bytes[8 + i] = (uint8_t)(b >> (56 - 8 * i));
	buf_append_char(out, 'T');
	append_hex(out, bytes, sizeof(bytes));
	buf_free(&ids);
}

bool imap_objectid_valid(const char *s, size_t len)
{
	if (len == 0 || len > IMAP_OBJECTID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* ---- PREVIEW ---- */

/* The preview being built: characters kept so far, and whether a space is owed before the next one. */
struct preview {
	struct buf *out;
	size_t chars;
	bool space;
};

static bool preview_full(const struct preview *p)
{
	return p->chars >= IMAP_PREVIEW_MAX_CHARS;
}

/* Adds one code point: white space and controls become one owed space (dropped at the start and the end). */
static void preview_put(struct preview *p, uint32_t cp)
{
	if (preview_full(p))
		return;
	if (cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0xa0 || cp == 0x2028 || cp == 0x2029) {
		p->space = p->chars > 0;
		return;
	}
	if (p->space) {
		if (p->chars + 1 == IMAP_PREVIEW_MAX_CHARS) {
			p->chars++; /* no room for the space and a character after it: the preview ends here */
			return;
		}
		buf_append_char(p->out, ' ');
		p->space = false;
		p->chars++;
	}
	utf8_append(p->out, cp);
	p->chars++;
}

/* Adds the UTF-8 text s[0..len), dropping bytes that are not UTF-8. */
static void preview_text(struct preview *p, const char *s, size_t len)
{
	for (size_t i = 0; i < len && !preview_full(p);) {
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			i++;
			continue;
		}
		preview_put(p, cp);
		i += n;
	}
}

/* Plain text: line by line, quoted lines skipped, up to a signature separator. */
static void preview_plain(struct preview *p, const char *s, size_t len)
{
	for (size_t i = 0; i < len && !preview_full(p);) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - s) : len, l = end - i;
		if (l > 0 && s[end - 1] == '\r')
			l--;
		if ((l == 3 && memcmp(s + i, "-- ", 3) == 0) || (l == 2 && memcmp(s + i, "--", 2) == 0))
			return;
		size_t k = i;
		while (k < i + l && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (k == i + l || s[k] != '>') {
			preview_text(p, s + i, l);
			preview_put(p, ' ');
		}
		i = end + 1;
	}
}

/* A character reference at s[0..len) (after the '&'): its code point and length through the ';', or 0. */
static size_t html_entity(const char *s, size_t len, uint32_t *cp_r)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} named[] = { { "amp;", '&' },  { "lt;", '<' },    { "gt;", '>' },
		      { "quot;", '"' }, { "apos;", '\'' }, { "nbsp;", 0xa0 } };
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);
		if (len >= n && strncasecmp(s, named[i].name, n) == 0) {
			*cp_r = named[i].cp;
			return n;
		}
	}
	if (len < 3 || s[0] != '#')
		return 0;
	bool hex = s[1] == 'x' || s[1] == 'X';
	uint32_t cp = 0;
	size_t i = hex ? 2 : 1, digits = 0;
	for (; i < len && digits < 8; i++, digits++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (hex && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
			d = (unsigned)((c | 0x20) - 'a' + 10);
		else
			break;
		cp = cp * (hex ? 16 : 10) + d;
	}
	if (digits == 0 || i >= len || s[i] != ';' || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return i + 1;
}

/* Whether the tag at s[0..len) (after the '<') opens an element whose contents are not text: head, style, script.
 * Returns the name's length, or 0. */
static size_t html_hidden_element(const char *s, size_t len)
{
	static const char *const names[] = { "head", "style", "script" };
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(names[i]);
		if (len > n && strncasecmp(s, names[i], n) == 0 &&
		    (s[n] == '>' || s[n] == ' ' || s[n] == '\t' || s[n] == '\r' || s[n] == '\n' || s[n] == '/'))
			return n;
	}
	return 0;
}

/* Finds "</name" (any case) in s[from..len); returns its offset or len. */
static size_t find_close(const char *s, size_t len, size_t from, const char *name, size_t nlen)
{
	for (size_t i = from; i + 2 + nlen <= len; i++)
		if (s[i] == '<' && s[i + 1] == '/' && strncasecmp(s + i + 2, name, nlen) == 0)
			return i;
	return len;
}

static void preview_html(struct preview *p, const char *s, size_t len)
{
	for (size_t i = 0; i < len && !preview_full(p);) {
		if (s[i] == '<') {
			size_t hidden = html_hidden_element(s + i + 1, len - i - 1);
			if (hidden > 0)
				i = find_close(s, len, i + 1 + hidden, s + i + 1, hidden);
			const char *gt = memchr(s + i, '>', len - i);
			i = gt != NULL ? (size_t)(gt - s) + 1 : len;
			preview_put(p, ' ');
			continue;
		}
		uint32_t cp;
		size_t n;
		if (s[i] == '&' && (n = html_entity(s + i + 1, len - i - 1, &cp)) > 0) {
			preview_put(p, cp);
			i += 1 + n;
			continue;
		}
		const char *next = s + i;
		while (next < s + len && *next != '<' && *next != '&')
			next++;
		if (next == s + i)
			next++; /* an '&' that starts no reference */
		preview_text(p, s + i, (size_t)(next - (s + i)));
		i = (size_t)(next - s);
	}
}

void imap_preview(const char *text, size_t len, bool html, struct buf *out)
{
	struct preview p = { out, 0, false };
	if (len > IMAP_PREVIEW_INPUT_MAX)
		len = IMAP_PREVIEW_INPUT_MAX;
	if (html)
		preview_html(&p, text, len);
	else
		preview_plain(&p, text, len);
}
