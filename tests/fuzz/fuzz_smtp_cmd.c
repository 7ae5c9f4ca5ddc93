/* fuzz_smtp_cmd.c - fuzz target for SMTP command lines (command split, MAIL/RCPT/BDAT/AUTH arguments) and for
 * the DATA decoder, whose output must not depend on where the input is split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/smtp/smtp_parse.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_data(const char *in, size_t len)
{
	struct smtp_data whole, split;
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t used_a, used_b1, used_b2 = 0;
	smtp_data_init(&whole, SMTP_BARE_LF_KEEP, 0);
	int ra = smtp_data_feed(&whole, in, len, &a, &used_a);
	size_t cut = len > 0 ? (unsigned char)in[0] % (len + 1) : 0;
	smtp_data_init(&split, SMTP_BARE_LF_KEEP, 0);
	int rb = smtp_data_feed(&split, in, cut, &b, &used_b1);
	if (rb != SMTP_DATA_END)
		rb = smtp_data_feed(&split, in + cut, len - cut, &b, &used_b2);
	if (ra != rb || used_a != used_b1 + used_b2 || a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len)))
		abort();
	if (used_a > len || a.len > len || whole.size != a.len)
		abort();
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_command cmd;
	const char *err = NULL;
	if (smtp_parse_command(line, size, &cmd, &err) == 0) {
		if (cmd.arg < line || cmd.arg + cmd.arg_len > line + size)
			abort();
		switch (cmd.verb) {
		case SMTP_VERB_MAIL: {
			struct smtp_mail m;
			if (smtp_parse_mail(cmd.arg, cmd.arg_len, SMTP_EXT_ALL, &m, &err) == 0) {
				char out[SMTP_PATH_MAX_UTF8 + 1];
				if (smtp_path_string(&m.from, out, sizeof(out)) > SMTP_PATH_MAX_UTF8)
					abort();
				if (m.envid_len > SMTP_ENVID_MAX)
					abort();
			} else if (err == NULL || err[0] != '5') {
				abort();
			}
			break;
		}
		case SMTP_VERB_RCPT: {
			struct smtp_rcpt r;
			if (smtp_parse_rcpt(cmd.arg, cmd.arg_len, SMTP_EXT_ALL, size & 1, &r, &err) == 0) {
				if (r.orcpt_len > SMTP_ORCPT_MAX)
					abort();
			} else if (err == NULL || err[0] != '5') {
				abort();
			}
			break;
		}
		case SMTP_VERB_BDAT: {
			unsigned long long n;
			bool last;
			if (smtp_parse_bdat(cmd.arg, cmd.arg_len, &n, &last, &err) == 0 && n > SMTP_NUMBER_MAX)
				abort();
			break;
		}
		case SMTP_VERB_AUTH: {
			char mech[32];
			const char *ir;
			size_t ir_len;
			if (smtp_parse_auth(cmd.arg, cmd.arg_len, mech, sizeof(mech), &ir, &ir_len, &err) == 0 &&
			    ir != NULL && (ir < cmd.arg || ir + ir_len > cmd.arg + cmd.arg_len))
				abort();
			break;
		}
		default: break;
		}
	} else if (err == NULL || err[0] != '5') {
		abort();
	}
	check_data(line, size);
	return 0;
}
