/* imap_urlauth.h - URLAUTH (RFC 4467) over the store: the verifier of a rump URL under its folder's access key, and
 * the content of an authorised URL of a mailbox on this server. Shared by IMAP (GENURLAUTH, URLFETCH) and the
 * submission server's BURL (RFC 4468). */
#ifndef IX_IMAP_URLAUTH_H
#define IX_IMAP_URLAUTH_H

#include <stdint.h>

#include "common/buf.h"
#include "store/store.h"
#include "transport/imap/imap_url.h"

#define IMAP_URLAUTH_TOKEN_HEX (2 * 32) /* HMAC-SHA256, lower-case hex */

/* The verifier of rump (len bytes: the URL up to the end of its ";URLAUTH=access") under key: HMAC-SHA256 in
 * lower-case hex, NUL-terminated in hex_r. */
void imap_urlauth_token(const uint8_t key[STORE_URLAUTH_KEY_LEN], const char *rump, size_t len,
			char hex_r[IMAP_URLAUTH_TOKEN_HEX + 1]);

/* Checks the authorised URL u (parsed from url: mechanism INTERNAL, a token, EXPIRE not before now) of a folder
 * of the mailbox owner_guid (its own folders: the URL's mailbox as the owner names it) against that folder's key,
 * then appends the content the URL names (UIDVALIDITY checked, sections as imap_url_section_spec) to out. Who may
 * ask (the access identifier) is the caller's to decide first. Returns 0, IX_EPERM (no URLAUTH, another mechanism,
 * a wrong token, expired, the folder has no key), IX_ENOTFOUND (no such folder, message or section, UIDVALIDITY
 * changed) or IX_EINVAL (a section not served), with the reason in error_r. */
int imap_urlauth_fetch(struct store *st, const char *owner_guid, const char *url, const struct imap_url *u, int64_t now,
		       struct buf *out, struct buf *error_r);

#endif
