/* tls.h - OpenSSL 3 contexts for our servers (cert + key PEM) and for outbound SMTP (opportunistic, optional
 * verification), and a self-signed ECDSA P-256 certificate maker used by `interchange init`. */
#ifndef IX_TLS_H
#define IX_TLS_H

#include <stdbool.h>
#include "common/buf.h"

/* Most a certificate or key PEM file may weigh when we read it. */
#define TLS_PEM_MAX (1024 * 1024)
/* Longest host name accepted for a certificate subject / SNI (RFC 1035 name length). */
#define TLS_HOSTNAME_MAX 253

/* TLS 1.2 is the minimum everywhere. The TLS 1.2 cipher list keeps forward-secret AEAD suites only; TLS 1.3
 * uses OpenSSL's defaults (all AEAD). */
#define TLS_CIPHERS_12 "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"

struct tls_ctx;
/* The ssl_st / ssl_ctx_st types of OpenSSL, named without including its headers. */
struct ssl_st;
struct ssl_ctx_st;

/* Server context from a certificate chain PEM and a private key PEM (which must match). Sessions are
 * cached in-process; compression and renegotiation are off. Returns 0, or IX_EIO (a file cannot be read) /
 * IX_EINVAL (bad PEM, mismatched key) with OpenSSL's reasons in error_r. Free with tls_ctx_destroy. */
int tls_server_ctx_create(const char *cert_path, const char *key_path, struct tls_ctx **ctx_r, struct buf *error_r);
/* Serves cert_path and key_path from now on in the server context ctx, in place: every holder of ctx (listeners,
 * session settings) uses the new pair for its next connection; connections already made keep theirs. The pair is
 * loaded on its own first, so one that is refused (unreadable, bad PEM, a key that does not match) leaves ctx as it
 * was. Call it from the thread that makes connections from ctx. Returns IX_OK, or IX_EIO / IX_EINVAL with error_r. */
int tls_ctx_reload(struct tls_ctx *ctx, const char *cert_path, const char *key_path, struct buf *error_r);
/* What a certificate must pass before this server uses it: the chain file loads with its key (they match), the
 * leaf is valid now and names hostname, and each certificate of the chain is issued by the next. Returns IX_OK, or
 * IX_EIO / IX_EINVAL with the reason in error_r. When the chain does not verify against this machine's trusted CAs
 * (a private CA), IX_OK with a sentence in warnings_r. */
int tls_cert_check(const char *cert_path, const char *key_path, const char *hostname, struct buf *warnings_r,
		   struct buf *error_r);
/* Client context for outbound SMTP. verify false: opportunistic TLS, any certificate is accepted (RFC 7435);
 * verify true: the chain must verify against ca_file (NULL: the system store) and match the host name
 * given to tls_ssl_new (an IP address against the certificate's IP names). Returns 0 or IX_EINVAL/IX_EIO with error_r. */
int tls_client_ctx_create(bool verify, const char *ca_file, struct tls_ctx **ctx_r, struct buf *error_r);
/* Server-to-server identity. On a server context: ask every client for a certificate in the handshake (none is
 * fine; a given one is not verified against any CA, callers compare its fingerprint with the servers the directory
 * lists): port 25 only, where asking MTAs is usual; the login daemons ask later and only the peer that signs in
 * with SASL EXTERNAL (tls_request_peer_cert). On a client context: present cert_path/key_path when a server asks,
 * in the handshake or after it (TLS 1.3 post-handshake authentication is offered). Return 0 or IX_EIO/IX_EINVAL
 * with error_r. */
void tls_ctx_request_client_cert(struct tls_ctx *ctx);
int tls_ctx_use_client_cert(struct tls_ctx *ctx, const char *cert_path, const char *key_path, struct buf *error_r);
/* On a server connection whose handshake is done: asks the client for its certificate now (TLS 1.3 post-handshake
 * authentication, RFC 8446 section 4.6.2), taken as tls_ctx_request_client_cert takes it. The request goes out with
 * the next SSL_read, SSL_write or SSL_do_handshake; the answer (Certificate, CertificateVerify, Finished) is read by
 * SSL_read among the application data, which sets *answered_r (cleared here; it must live as long as ssl) once the
 * answer is complete and verified: SSL_get0_peer_certificate then has the certificate, NULL when the client sent
 * none. False, and ssl left as it was, when it is not possible: TLS 1.2, a client that did not offer post-handshake
 * authentication, a request under way. */
bool tls_request_peer_cert(struct ssl_st *ssl, bool *answered_r);
/* The lower-case hex SHA-256 of the peer's certificate (DER) into hex (65 bytes). False when it sent none. */
#define TLS_FINGERPRINT_HEX 64
bool tls_peer_fingerprint(struct ssl_st *ssl, char *hex);
/* Frees the context (connections made from it hold their own references) and sets *ctx to NULL. */
void tls_ctx_destroy(struct tls_ctx **ctx);

bool tls_ctx_is_server(const struct tls_ctx *ctx);
/* The OpenSSL context (borrowed; valid while ctx lives), for callers that need to tune it further. */
struct ssl_ctx_st *tls_ctx_ssl(struct tls_ctx *ctx);
/* A new SSL object from ctx, in server or client mode per the context. For a client, host (may be NULL) is
 * sent as SNI and, when the context verifies, checked against the certificate. Caller frees with SSL_free. */
struct ssl_st *tls_ssl_new(struct tls_ctx *ctx, const char *host);

struct scram_cbind;
/* The channel binding data of a finished handshake, as the server side sees it: "tls-exporter" (RFC 9266, TLS 1.3
 * only) and "tls-server-end-point" (RFC 5929: the hash of our certificate). Fills what exists (lengths 0 for the
 * rest); false when neither does. */
bool tls_channel_bindings(struct ssl_st *ssl, struct scram_cbind *cb_r);

/* Appends OpenSSL's queued error reasons to error_r ("; "-separated) and clears the queue. */
void tls_append_errors(struct buf *error_r);

/* Describes the first certificate of the PEM text pem (len bytes) in lines appended to out: "subject:", "names:"
 * (its subjectAltNames), "valid from:", "valid until:" (ISO 8601, UTC) and "SHA-256:" (the fingerprint of its DER,
 * lower-case hex, as tls_peer_fingerprint gives it). Returns IX_OK, or IX_EINVAL with error_r. */
int tls_cert_describe(const char *pem, size_t len, struct buf *out, struct buf *error_r);

/* The lower-case hex SHA-256 of the first certificate's SubjectPublicKeyInfo (DER) in pem: the data of a DANE
 * record "TLSA 3 1 1" (RFC 6698). Returns IX_OK, or IX_EINVAL with error_r. */
int tls_cert_spki_sha256(const char *pem, size_t len, char hex[TLS_FINGERPRINT_HEX + 1], struct buf *error_r);

/* True when h may be a certificate's DNS name: letters, digits, '-' and '.', no empty label, at most
 * TLS_HOSTNAME_MAX. */
bool tls_host_name_valid(const char *h);

/* True when s is an IPv4 or IPv6 address literal. */
bool tls_ip_literal(const char *s);

/* Generates an ECDSA P-256 key and a self-signed certificate for hostname (CN and subjectAltName DNS) and each of
 * alt_names (NULL, or a NULL-terminated list; an IP address becomes a subjectAltName IP, so a peer reached by that
 * address verifies, a host name a subjectAltName DNS), valid from now for days days, SHA-256 signature,
 * serverAuth. Writes both PEM files durably, the key with mode 0600 and the certificate 0644. Returns 0, or
 * IX_EINVAL (bad name, address or days) / IX_EIO with error_r. */
int tls_make_self_signed(const char *hostname, const char *const *alt_names, const char *cert_path,
			 const char *key_path, unsigned days, struct buf *error_r);

#endif
