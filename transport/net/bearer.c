/* bearer.c - parsing OAUTHBEARER and XOAUTH2 client messages: the gs2 header, the key=value pairs, the bearer token. */
#include "transport/net/bearer.h"
#include "common/err.h"
#include "common/util.h"

#include <string.h>
#include <strings.h>

#define KVSEP '\x01'

/* The value of key in the key=value pairs of msg (each ended by KVSEP; an empty pair ends the list), or NULL. Sets
 * *len_r. *ok_r is false when the pairs are not so terminated. */
static const char *kv_get(const char *msg, size_t len, const char *key, size_t *len_r, bool *ok_r)
{
	size_t klen = strlen(key);
	const char *found = NULL;
	*ok_r = false;
	while (len > 0) {
		const char *end = memchr(msg, KVSEP, len);
		if (end == NULL)
			return NULL;
		size_t plen = (size_t)(end - msg);
		if (plen == 0) {
			*ok_r = len == 1; /* the closing separator ends the message */
			return *ok_r ? found : NULL;
		}
		if (found == NULL && plen > klen && msg[klen] == '=' && memcmp(msg, key, klen) == 0) {
			found = msg + klen + 1;
			*len_r = plen - klen - 1;
		}
		msg += plen + 1;
		len -= plen + 1;
	}
	return NULL;
}

/* RFC 7628 section 3.1: gs2-header KVSEP *(kvpair) KVSEP, the authzid "a=" in the header with "=2C" for ',' and
 * "=3D" for '='. Appends the authzid to authzid_r and returns the pairs, or NULL when malformed (or when the client
 * asks for channel binding, which we do not offer with OAUTHBEARER). */
static const char *oauthbearer_header(const char *msg, size_t len, struct buf *authzid_r, size_t *rest_r)
{
	if (len < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
		return NULL;
	size_t i = 2;
	if (len - i >= 2 && msg[i] == 'a' && msg[i + 1] == '=') {
		for (i += 2; i < len && msg[i] != ','; i++) {
			if (msg[i] != '=') {
				buf_append_char(authzid_r, msg[i]);
			} else if (len - i >= 3 && (memcmp(msg + i, "=2C", 3) == 0 || memcmp(msg + i, "=3D", 3) == 0)) {
				buf_append_char(authzid_r, msg[i + 1] == '2' ? ',' : '=');
				i += 2;
			} else {
				return NULL;
			}
		}
	}
	if (i + 1 >= len || msg[i] != ',' || msg[i + 1] != KVSEP)
		return NULL;
	*rest_r = len - i - 2;
	return msg + i + 2;
}

int bearer_parse(bool xoauth2, const char *msg, size_t len, size_t authzid_max, struct buf *authzid_r, char **token_r)
{
	*token_r = NULL;
	const char *pairs = msg;
	size_t plen = len, alen = 0, tlen = 0, before = authzid_r->len;
	bool ok = true;
	if (!xoauth2) {
		pairs = oauthbearer_header(msg, len, authzid_r, &plen);
	} else {
		const char *user = kv_get(msg, len, "user", &alen, &ok);
		if (user != NULL)
			buf_append(authzid_r, user, alen);
	}
	const char *auth = pairs != NULL && ok ? kv_get(pairs, plen, "auth", &tlen, &ok) : NULL;
	size_t zlen = authzid_r->len - before;
	if (auth == NULL || !ok || tlen <= 7 || strncasecmp(auth, "Bearer ", 7) != 0 || zlen > authzid_max ||
	    (zlen > 0 && memchr(authzid_r->data + before, '\0', zlen) != NULL))
		return IX_EINVAL;
	*token_r = xstrndup(auth + 7, tlen - 7);
	return IX_OK;
}
