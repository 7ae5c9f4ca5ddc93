/* base64.c - the base64 codec (see base64.h): OpenSSL does the bit arithmetic; this file decides what input each
 * decoder accepts, since EVP_DecodeBlock itself takes '=' anywhere as zero bits and trims surrounding whitespace. */
#include "common/base64.h"
#include "common/err.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

/* Decoded bytes of one lenient run handed to OpenSSL at a time (characters: 4/3 of it). */
#define BASE64_CHUNK 3072

void base64_encode(const void *data, size_t len, struct buf *out)
{
	size_t enc_len = (len + 2) / 3 * 4;
	buf_reserve(out, enc_len + 1);
	/* EVP_EncodeBlock takes an int: feed it whole groups of at most BASE64_CHUNK bytes */
	const unsigned char *p = data;
	for (size_t done = 0; done < len;) {
		size_t n = len - done > BASE64_CHUNK ? BASE64_CHUNK : len - done;
		int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, p + done, (int)n);
		out->len += (size_t)w;
		done += n;
	}
	buf_append(out, "", 0);
}

/* Decodes len characters (a multiple of 4, all checked) whose last group carries pad '=' characters. */
static void decode_checked(const char *in, size_t len, size_t pad, struct buf *out)
{
	buf_reserve(out, len / 4 * 3 + 1);
	for (size_t done = 0; done < len;) {
		size_t n = len - done > BASE64_CHUNK / 3 * 4 ? BASE64_CHUNK / 3 * 4 : len - done;
		int w = EVP_DecodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)in + done,
					(int)n);
		out->len += (size_t)w; /* whole groups are never refused: every character was checked */
		done += n;
	}
	out->len -= pad; /* EVP_DecodeBlock counts the padding as zero bytes */
	buf_append(out, "", 0);
}

int base64_decode(const char *in, size_t len, size_t max, struct buf *out)
{
	if (len % 4 != 0)
		return IX_EINVAL;
	if (len / 4 * 3 > max + 2)
		return IX_ELIMIT;
	size_t pad = 0;
	while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++) {
		if (base64_char_value((unsigned char)in[i]) < 0)
			return IX_EINVAL;
	}
	/* canonical only: the bits the padding drops must be zero */
	if (pad > 0) {
		int last = base64_char_value((unsigned char)in[len - pad - 1]);
		if ((pad == 1 && (last & 0x03) != 0) || (pad == 2 && (last & 0x0f) != 0))
			return IX_EINVAL;
	}
	if (len / 4 * 3 - pad > max)
		return IX_ELIMIT;
	decode_checked(in, len, pad, out);
	return IX_OK;
}

void base64_decode_lenient(const char *in, size_t len, struct buf *out)
{
	char group[BASE64_CHUNK / 3 * 4 + 4];
	size_t n = 0;
	for (size_t i = 0; i < len && in[i] != '='; i++) {
		if (base64_char_value((unsigned char)in[i]) < 0)
			continue;
		group[n++] = in[i];
		if (n == BASE64_CHUNK / 3 * 4) {
			decode_checked(group, n, 0, out);
			n = 0;
		}
	}
	size_t whole = n / 4 * 4, rest = n - whole;
	if (whole > 0)
		decode_checked(group, whole, 0, out);
	if (rest >= 2) { /* pad the last group; its bytes are those it fully holds */
		char last[4] = { group[whole], group[whole + 1], rest == 3 ? group[whole + 2] : '=', '=' };
		decode_checked(last, 4, 4 - rest, out);
	}
}
