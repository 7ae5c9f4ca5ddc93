/* fuzz_milter.c - fuzz target for what a mail filter sends back (packets decoded one after another, each through
 * the decoder of its kind, its changes applied to a message), and for endpoint lists (the smtp.milters setting). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/endpoint.h"
#include "common/util.h"
#include "transport/milter/milter_edit.h"
#include "transport/milter/milter_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_packet(const struct milter_packet *p, struct milter_message *m, bool *first_body)
{
	const char *v[MILTER_STRINGS_MAX];
	char reply[64];
	uint32_t idx;
	const char *name, *value;
	struct milter_optneg o;
	switch (p->cmd) {
	case SMFIC_OPTNEG:
		if (milter_decode_optneg(p, &o) == 0) {
			const char *pos = o.symlists, *names;
			size_t left = o.symlists_len;
			uint32_t stage;
			while (milter_symlist_next(&pos, &left, &stage, &names) > 0) {
				if (stage >= MILTER_STAGE_COUNT || pos > o.symlists + o.symlists_len)
					abort();
			}
		}
		break;
	case SMFIR_REPLYCODE:
		if (milter_decode_replycode(p, reply, sizeof(reply)) > 0 && strlen(reply) >= sizeof(reply))
			abort();
		break;
	case SMFIR_CHGHEADER:
	case SMFIR_INSHEADER:
		if (milter_decode_indexed_header(p, &idx, &name, &value) == 0) {
			if (p->cmd == SMFIR_CHGHEADER)
				milter_message_change(m, idx, name, value);
			else
				milter_message_insert(m, idx, name, value);
		}
		break;
	case SMFIR_ADDHEADER:
		if (milter_decode_strings(p, v, MILTER_STRINGS_MAX) == 2)
			milter_message_add(m, v[0], v[1]);
		break;
	case SMFIR_REPLBODY:
		milter_message_replace_body(m, *first_body, p->data, p->len);
		*first_body = false;
		break;
	default: {
		int n = milter_decode_strings(p, v, MILTER_STRINGS_MAX);
		for (int i = 0; i < n; i++) {
			if (v[i] < p->data || v[i] + strlen(v[i]) >= p->data + p->len)
				abort();
		}
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* up to the first NUL: a message (and an endpoint list); after it: the filter's packets */
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	size_t mlen = nul != NULL ? (size_t)(nul - in) : size;
	char *text = xstrndup(in, mlen);
	struct endpoint ep[ENDPOINT_LIST_MAX];
	size_t n;
	char why[128];
	if (endpoint_list_parse(text, ep, ENDPOINT_LIST_MAX, &n, why, sizeof(why)) == 0 && n > ENDPOINT_LIST_MAX)
		abort();
	struct milter_message m;
	milter_message_parse(in, mlen, &m);
	bool first_body = true;
	size_t at = nul != NULL ? mlen + 1 : size;
	while (at < size) {
		struct milter_packet p;
		long r = milter_packet_decode(data + at, size - at, &p);
		if (r <= 0)
			break;
		if ((size_t)r > size - at || p.len + 5 != (size_t)r)
			abort();
		check_packet(&p, &m, &first_body);
		at += (size_t)r;
	}
	struct buf out = BUF_INIT;
	milter_message_render(&m, &out);
	if (out.len < m.body_len)
		abort();
	milter_message_free(&m);
	buf_free(&out);
	free(text);
	return 0;
}
