/* imap_session_compress.h - RFC 4978 COMPRESS=DEFLATE streams for an IMAP session (raw deflate over zlib).
 * Built with zlib when its header is present (IMAP_HAVE_ZLIB); otherwise imap_z_available() is false. */
#ifndef IX_IMAP_SESSION_COMPRESS_H
#define IX_IMAP_SESSION_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"

/* zlib memLevel of the output stream: 5 keeps a session's deflate state near 144 KiB (8 would be 256 KiB). */
#define IMAP_Z_MEM_LEVEL 5
/* Most inflated input a session holds unparsed; more is inflated only as it is consumed. */
#define IMAP_Z_INPUT_MAX (64u * 1024)

struct imap_z;

/* Whether COMPRESS=DEFLATE can be offered (built with zlib). */
bool imap_z_available(void);
/* Both directions' streams. Returns 0, or -1 (no zlib, or zlib refused). Free with imap_z_destroy. */
int imap_z_create(struct imap_z **z_r);
void imap_z_destroy(struct imap_z **z);
/* Appends data compressed and flushed (Z_SYNC_FLUSH: the peer can inflate everything sent so far) to out. */
void imap_z_compress(struct imap_z *z, const void *data, size_t len, struct buf *out);
/* Takes len compressed bytes (copied) and inflates what it can into out while out->len < max_out; the rest stays
 * pending for later calls (with len 0). Returns 0, or -1 on a corrupt stream. */
int imap_z_decompress(struct imap_z *z, const void *data, size_t len, struct buf *out, size_t max_out);
/* Compressed bytes taken but not inflated yet. */
size_t imap_z_pending(const struct imap_z *z);

#endif
