/* milter_proto.c - packet framing, encoders and decoders of the milter protocol (pure functions over bounded
 * buffers). */
#include "transport/milter/milter_proto.h"

#include <string.h>

static void put32(struct buf *out, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };
	buf_append(out, b, 4);
}

static uint32_t get32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

long milter_packet_decode(const void *buf, size_t len, struct milter_packet *p_r)
{
	if (len < 4)
		return 0;
	uint32_t n = get32(buf);
	if (n == 0 || n > MILTER_PACKET_MAX)
		return -1;
	if (len - 4 < n)
		return 0;
	const char *b = buf;
	p_r->cmd = b[4];
	p_r->data = b + 5;
	p_r->len = n - 1;
	return (long)n + 4;
}

void milter_encode(struct buf *out, char cmd, const void *data, size_t len)
{
	put32(out, (uint32_t)len + 1);
	buf_append_char(out, cmd);
	if (len > 0)
		buf_append(out, data, len);
}

void milter_encode_optneg(struct buf *out, uint32_t version, uint32_t actions, uint32_t protocol)
{
	put32(out, 13);
	buf_append_char(out, SMFIC_OPTNEG);
	put32(out, version);
	put32(out, actions);
	put32(out, protocol);
}

/* The packet's length field is written once its data is known (start: where the packet begins in out). */
static void finish(struct buf *out, size_t start)
{
	uint32_t n = (uint32_t)(out->len - start - 4);
	unsigned char *p = (unsigned char *)out->data + start;
	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
}

static size_t begin(struct buf *out, char cmd)
{
	size_t start = out->len;
	put32(out, 0);
	buf_append_char(out, cmd);
	return start;
}

static void put_string(struct buf *out, const char *s)
{
	buf_append(out, s, strlen(s) + 1);
}

void milter_encode_strings(struct buf *out, char cmd, const char *const *v, size_t n)
{
	size_t start = begin(out, cmd);
	for (size_t i = 0; i < n; i++)
		put_string(out, v[i]);
	finish(out, start);
}

void milter_encode_macros(struct buf *out, char cmd, const char *const *names, const char *const *values, size_t n)
{
	size_t start = begin(out, SMFIC_MACRO);
	buf_append_char(out, cmd);
	for (size_t i = 0; i < n; i++) {
		put_string(out, names[i]);
		put_string(out, values[i]);
	}
	finish(out, start);
}

void milter_encode_connect(struct buf *out, const char *hostname, char family, unsigned port, const char *addr)
{
	size_t start = begin(out, SMFIC_CONNECT);
	put_string(out, hostname);
	buf_append_char(out, family);
	if (family != SMFIA_UNKNOWN) {
		unsigned char b[2] = { (unsigned char)(port >> 8), (unsigned char)port };
		buf_append(out, b, 2);
		put_string(out, addr);
	}
	finish(out, start);
}

int milter_decode_optneg(const struct milter_packet *p, struct milter_optneg *o_r)
{
	if (p->cmd != SMFIC_OPTNEG || p->len < 12)
		return -1;
	o_r->version = get32(p->data);
	o_r->actions = get32(p->data + 4);
	o_r->protocol = get32(p->data + 8);
	o_r->symlists = p->data + 12;
	o_r->symlists_len = p->len - 12;
	return 0;
}

int milter_symlist_next(const char **pos, size_t *left, uint32_t *stage_r, const char **names_r)
{
	if (*left == 0)
		return 0;
	if (*left < 5)
		return -1;
	uint32_t stage = get32(*pos);
	const char *names = *pos + 4;
	const char *nul = memchr(names, '\0', *left - 4);
	if (stage >= MILTER_STAGE_COUNT || nul == NULL)
		return -1;
	size_t used = (size_t)(nul + 1 - *pos);
	*pos += used;
	*left -= used;
	*stage_r = stage;
	*names_r = names;
	return 1;
}

int milter_decode_strings(const struct milter_packet *p, const char **v, size_t max)
{
	if (p->len == 0 || p->data[p->len - 1] != '\0')
		return -1;
	size_t n = 0, at = 0;
	while (at < p->len) {
		if (n >= max)
			return -1;
		v[n++] = p->data + at;
		at += strlen(p->data + at) + 1;
	}
	return (int)n;
}

int milter_decode_indexed_header(const struct milter_packet *p, uint32_t *index_r, const char **name_r,
				 const char **value_r)
{
	if (p->len < 4)
		return -1;
	struct milter_packet rest = { p->cmd, p->data + 4, p->len - 4 };
	const char *v[2];
	if (milter_decode_strings(&rest, v, 2) != 2 || v[0][0] == '\0')
		return -1;
	*index_r = get32(p->data);
	*name_r = v[0];
	*value_r = v[1];
	return 0;
}

int milter_decode_replycode(const struct milter_packet *p, char *reply, size_t size)
{
	const char *v[1];
	if (milter_decode_strings(p, v, 1) != 1 || size < 5)
		return -1;
	const char *s = v[0];
	if ((s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
	    (s[3] != ' ' && s[3] != '-'))
		return -1;
	/* the first line: a multi-line reply's others are dropped (the SMTP reply given is one line) */
	size_t len = strcspn(s, "\r\n");
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			return -1;
		if (s[i] == 0x7f)
			return -1;
	}
	if (len >= size)
		len = size - 1;
	memcpy(reply, s, len);
	reply[len] = '\0';
	reply[3] = ' ';
	return s[0] - '0';
}
