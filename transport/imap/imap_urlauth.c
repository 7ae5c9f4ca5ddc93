/* imap_urlauth.c - URLAUTH (RFC 4467) over the store: INTERNAL verifiers (HMAC-SHA256 of the rump URL under the
 * folder's random key) and the content of an authorised URL. */
#include "transport/imap/imap_urlauth.h"

#include "common/err.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

void imap_urlauth_token(const uint8_t key[STORE_URLAUTH_KEY_LEN], const char *rump, size_t len,
			char hex_r[IMAP_URLAUTH_TOKEN_HEX + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	HMAC(EVP_sha256(), key, STORE_URLAUTH_KEY_LEN, (const unsigned char *)rump, len, mac, &maclen);
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < 32; i++) {
		hex_r[2 * i] = digits[mac[i] >> 4];
		hex_r[2 * i + 1] = digits[mac[i] & 15];
	}
	hex_r[IMAP_URLAUTH_TOKEN_HEX] = '\0';
}

int imap_urlauth_fetch(struct store *st, const char *owner_guid, const char *url, const struct imap_url *u, int64_t now,
		       struct buf *out, struct buf *error_r)
{
	if (u->access == NULL || u->mechanism == NULL || strcmp(u->mechanism, "INTERNAL") != 0) {
		buf_append_str(error_r, "Not a URL authorised by URLAUTH INTERNAL");
		return IX_EPERM;
	}
	if (u->has_expire && u->expire <= now) {
		buf_append_str(error_r, "The URL has expired");
		return IX_EPERM;
	}
	if (u->mailbox == NULL) {
		buf_append_str(error_r, "No mailbox in the URL");
		return IX_EINVAL;
	}
	uint8_t key[STORE_URLAUTH_KEY_LEN];
	int ret = store_urlauth_key(st, owner_guid, u->mailbox, 0, key, NULL);
	if (ret != 0) {
		buf_append_str(error_r, ret == IX_ENOTFOUND ? "No key for that mailbox" : "The key cannot be read");
		return ret == IX_ENOTFOUND ? IX_EPERM : ret;
	}
	char want[IMAP_URLAUTH_TOKEN_HEX + 1];
	imap_urlauth_token(key, url, u->rump_len, want);
	OPENSSL_cleanse(key, sizeof(key));
	if (strlen(u->token) != IMAP_URLAUTH_TOKEN_HEX || CRYPTO_memcmp(want, u->token, IMAP_URLAUTH_TOKEN_HEX) != 0) {
		buf_append_str(error_r, "The URL's authorisation does not verify");
		return IX_EPERM;
	}
	struct store_folder_info fi = { 0 };
	ret = store_folder_status(st, owner_guid, u->mailbox, NULL, &fi, NULL);
	if (ret == 0 && u->uidvalidity != 0 && u->uidvalidity != fi.uidvalidity)
		ret = IX_ENOTFOUND;
	store_folder_info_free(&fi);
	struct buf spec = BUF_INIT;
	if (ret == 0 && imap_url_section_spec(u, &spec) != 0) {
		buf_append_str(error_r, "Only HEADER, TEXT, MIME and part sections are served");
		ret = IX_EINVAL;
	} else if (ret == 0) {
		size_t before = out->len;
		ret = store_fetch_section(st, owner_guid, u->mailbox, u->uid, buf_cstr(&spec),
					  u->partial ? u->partial_offset : 0, u->partial ? u->partial_length : 0, out,
					  NULL);
		if (ret != 0)
			out->len = before;
	}
	if (ret == IX_ENOTFOUND)
		buf_append_str(error_r, "No such message or section");
	else if (ret != 0 && error_r->len == 0)
		buf_append_str(error_r, "Cannot read it");
	buf_free(&spec);
	return ret;
}
