/* tls.c - OpenSSL 3 server and client contexts, and self-signed ECDSA P-256 certificates.
 * OpenSSL's error queue is translated into error_r here and nowhere else in this module. */
#include "transport/net/tls.h"
#include "common/scram.h"
#include "common/err.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Longest validity a generated certificate may have. */
#define TLS_CERT_DAYS_MAX 36500

struct tls_ctx {
	SSL_CTX *ssl;
	bool server;
	bool verify;
};

void tls_append_errors(struct buf *error_r)
{
	unsigned long e;
	bool first = true;
	while ((e = ERR_get_error()) != 0) {
		char line[256];
		ERR_error_string_n(e, line, sizeof(line));
		if (error_r != NULL) {
			if (!first)
				buf_append_str(error_r, "; ");
			buf_append_str(error_r, line);
		}
		first = false;
	}
}

static void fail(struct buf *error_r, const char *what)
{
	if (error_r != NULL) {
		buf_append_str(error_r, what);
		buf_append_str(error_r, ": ");
	}
	tls_append_errors(error_r);
}

static int ctx_common(SSL_CTX *ssl, struct buf *error_r)
{
	if (SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) != 1) {
		fail(error_r, "cannot set TLS 1.2 minimum");
		return IX_EINVAL;
	}
	if (SSL_CTX_set_cipher_list(ssl, TLS_CIPHERS_12) != 1) {
		fail(error_r, "cannot set cipher list");
		return IX_EINVAL;
	}
	SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* partial writes let conn hand SSL_write whatever is buffered; released buffers keep idle sessions small */
	SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

int tls_server_ctx_create(const char *cert_path, const char *key_path, struct tls_ctx **ctx_r, struct buf *error_r)
{
	ERR_clear_error();
	SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
	if (ssl == NULL) {
		fail(error_r, "SSL_CTX_new");
		return IX_EIO;
	}
	int ret = ctx_common(ssl, error_r);
	if (ret < 0)
		goto out;
	SSL_CTX_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
	static const unsigned char sid_ctx[] = "interchange";
	SSL_CTX_set_session_id_context(ssl, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_use_certificate_chain_file(ssl, cert_path) != 1) {
		ret = access(cert_path, R_OK) < 0 ? IX_EIO : IX_EINVAL;
		buf_printf(error_r, "certificate %s: ", cert_path);
		tls_append_errors(error_r);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ssl, key_path, SSL_FILETYPE_PEM) != 1) {
		ret = access(key_path, R_OK) < 0 ? IX_EIO : IX_EINVAL;
		buf_printf(error_r, "private key %s: ", key_path);
		tls_append_errors(error_r);
		goto out;
	}
	if (SSL_CTX_check_private_key(ssl) != 1) {
		ret = IX_EINVAL;
		buf_printf(error_r, "private key %s does not match certificate %s: ", key_path, cert_path);
		tls_append_errors(error_r);
		goto out;
	}
	struct tls_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->ssl = ssl;
	ctx->server = true;
	*ctx_r = ctx;
	return 0;
out:
	SSL_CTX_free(ssl);
	return ret;
}

int tls_client_ctx_create(bool verify, const char *ca_file, struct tls_ctx **ctx_r, struct buf *error_r)
{
	ERR_clear_error();
	SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
	if (ssl == NULL) {
		fail(error_r, "SSL_CTX_new");
		return IX_EIO;
	}
	int ret = ctx_common(ssl, error_r);
	if (ret < 0)
		goto out;
	if (verify) {
		int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ssl, ca_file, NULL)
					 : SSL_CTX_set_default_verify_paths(ssl);
		if (ok != 1) {
			ret = IX_EINVAL;
			buf_printf(error_r, "CA certificates %s: ", ca_file != NULL ? ca_file : "(system)");
			tls_append_errors(error_r);
			goto out;
		}
		SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	struct tls_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->ssl = ssl;
	ctx->verify = verify;
	*ctx_r = ctx;
	return 0;
out:
	SSL_CTX_free(ssl);
	return ret;
}

/* Any certificate is taken at the handshake: trust is decided afterwards by fingerprint, not by a CA. */
static int accept_any_cert(int preverify_ok, X509_STORE_CTX *x)
{
	(void)preverify_ok;
	(void)x;
	return 1;
}

void tls_ctx_request_client_cert(struct tls_ctx *ctx)
{
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, accept_any_cert);
}

/* Info callback of a connection asked for its certificate: the client's Finished has been read and verified (the
 * state machine leaves TLS_ST_SR_FINISHED), so its answer is complete. */
static void peer_cert_answered(const SSL *ssl, int where, int ret)
{
	(void)ret;
	bool *answered = SSL_get_app_data(ssl);
	if ((where & SSL_CB_ACCEPT_LOOP) && SSL_get_state(ssl) == TLS_ST_SR_FINISHED && answered != NULL)
		*answered = true;
}

bool tls_request_peer_cert(SSL *ssl, bool *answered_r)
{
	if (!SSL_is_server(ssl) || SSL_version(ssl) != TLS1_3_VERSION)
		return false;
	int mode = SSL_get_verify_mode(ssl);
	SSL_verify_cb cb = SSL_get_verify_callback(ssl);
	/* without FAIL_IF_NO_PEER_CERT: a client that answers with no certificate keeps its connection */
	SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any_cert);
	ERR_clear_error();
	if (SSL_verify_client_post_handshake(ssl) != 1) {
		ERR_clear_error(); /* not offered (the usual client): not an error of the connection */
		SSL_set_verify(ssl, mode, cb);
		return false;
	}
	*answered_r = false;
	SSL_set_app_data(ssl, answered_r);
	SSL_set_info_callback(ssl, peer_cert_answered);
	return true;
}

int tls_ctx_use_client_cert(struct tls_ctx *ctx, const char *cert_path, const char *key_path, struct buf *error_r)
{
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_path) != 1) {
		buf_printf(error_r, "certificate %s: ", cert_path);
		tls_append_errors(error_r);
		return access(cert_path, R_OK) < 0 ? IX_EIO : IX_EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx->ssl, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx->ssl) != 1) {
		buf_printf(error_r, "private key %s: ", key_path);
		tls_append_errors(error_r);
		return access(key_path, R_OK) < 0 ? IX_EIO : IX_EINVAL;
	}
	/* our servers' login daemons ask for it only after the handshake, when we sign in with SASL EXTERNAL */
	SSL_CTX_set_post_handshake_auth(ctx->ssl, 1);
	return 0;
}

/* The lower-case hex SHA-256 of cert (DER) into hex (TLS_FINGERPRINT_HEX + 1 bytes). */
static bool cert_fingerprint(X509 *cert, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &len) != 1 || len * 2 != TLS_FINGERPRINT_HEX)
		return false;
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return true;
}

bool tls_peer_fingerprint(SSL *ssl, char *hex)
{
	return cert_fingerprint(ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL, hex);
}

bool tls_channel_bindings(SSL *ssl, struct scram_cbind *cb_r)
{
	memset(cb_r, 0, sizeof(*cb_r));
	static const char label[] = "EXPORTER-Channel-Binding";
	/* RFC 9266: 32 bytes, no context; defined for TLS 1.3 (TLS 1.2 would need the extended master secret) */
	if (SSL_version(ssl) == TLS1_3_VERSION &&
	    SSL_export_keying_material(ssl, cb_r->exporter, 32, label, sizeof(label) - 1, NULL, 0, 0) == 1)
		cb_r->exporter_len = 32;
	/* RFC 5929 section 4.1: the certificate's signature hash, SHA-256 for MD5, SHA-1 and none */
	X509 *cert = SSL_get_certificate(ssl);
	int md_nid = NID_undef;
	if (cert != NULL && X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) != 1)
		md_nid = NID_undef;
	const EVP_MD *md = md_nid == NID_undef || md_nid == NID_md5 || md_nid == NID_sha1 ? EVP_sha256()
											  : EVP_get_digestbynid(md_nid);
	unsigned len = 0;
	if (cert != NULL && md != NULL && (size_t)EVP_MD_get_size(md) <= sizeof(cb_r->endpoint) &&
	    X509_digest(cert, md, cb_r->endpoint, &len) == 1)
		cb_r->endpoint_len = len;
	return cb_r->exporter_len > 0 || cb_r->endpoint_len > 0;
}

/* Appends what fn(bio, arg) prints to out; false when fn fails (returns 0 or less). */
static bool append_printed(struct buf *out, int (*fn)(BIO *, const void *), const void *arg)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;
	bool ok = bio != NULL && fn(bio, arg) > 0 && (n = BIO_get_mem_data(bio, &p)) >= 0;
	if (ok)
		buf_append(out, p, (size_t)n);
	BIO_free(bio);
	return ok;
}

static int print_subject(BIO *bio, const void *cert)
{
	return X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0;
}

static int print_names(BIO *bio, const void *cert)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int ok = names != NULL ? 1 : BIO_puts(bio, "(none)");
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && ok > 0; i++) {
		if (i > 0)
			BIO_puts(bio, ", ");
		ok = GENERAL_NAME_print(bio, sk_GENERAL_NAME_value(names, i));
	}
	GENERAL_NAMES_free(names);
	return ok;
}

static int print_time(BIO *bio, const void *t)
{
	return ASN1_TIME_print_ex(bio, t, ASN1_DTFLGS_ISO8601);
}

/* The first certificate of a PEM text, or NULL. */
static X509 *first_cert(const char *pem, size_t len)
{
	ERR_clear_error();
	BIO *bio = BIO_new_mem_buf(pem, (int)(len > TLS_PEM_MAX ? TLS_PEM_MAX : len));
	X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	return cert;
}

int tls_cert_spki_sha256(const char *pem, size_t len, char hex[TLS_FINGERPRINT_HEX + 1], struct buf *error_r)
{
	X509 *cert = first_cert(pem, len);
	unsigned char *der = NULL;
	int n = cert != NULL ? i2d_PUBKEY(X509_get0_pubkey(cert), &der) : -1;
	unsigned char md[SHA256_DIGEST_LENGTH];
	X509_free(cert);
	if (n <= 0) {
		fail(error_r, "not a PEM certificate");
		return IX_EINVAL;
	}
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return IX_OK;
}

int tls_cert_describe(const char *pem, size_t len, struct buf *out, struct buf *error_r)
{
	X509 *cert = first_cert(pem, len);
	char hex[TLS_FINGERPRINT_HEX + 1];
	if (cert == NULL || !cert_fingerprint(cert, hex)) {
		fail(error_r, "not a PEM certificate");
		X509_free(cert);
		return IX_EINVAL;
	}
	buf_append_str(out, "subject:     ");
	bool ok = append_printed(out, print_subject, cert);
	buf_append_str(out, "\nnames:       ");
	ok = ok && append_printed(out, print_names, cert);
	buf_append_str(out, "\nvalid from:  ");
	ok = ok && append_printed(out, print_time, X509_get0_notBefore(cert));
	buf_append_str(out, "\nvalid until: ");
	ok = ok && append_printed(out, print_time, X509_get0_notAfter(cert));
	buf_printf(out, "\nSHA-256:     %s\n", hex);
	X509_free(cert);
	if (!ok) {
		fail(error_r, "cannot print the certificate");
		return IX_EINVAL;
	}
	return IX_OK;
}

int tls_ctx_reload(struct tls_ctx *ctx, const char *cert_path, const char *key_path, struct buf *error_r)
{
	/* the pair must load on its own first: a refused one leaves ctx as it was */
	struct tls_ctx *fresh = NULL;
	int ret = tls_server_ctx_create(cert_path, key_path, &fresh, error_r);
	if (ret != IX_OK)
		return ret;
	tls_ctx_destroy(&fresh);
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx->ssl, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx->ssl) != 1) {
		buf_printf(error_r, "certificate %s and key %s changed while read: ", cert_path, key_path);
		tls_append_errors(error_r);
		return IX_EINVAL;
	}
	return IX_OK;
}

/* The certificates of a PEM file in order, or NULL with error_r. Free with sk_X509_pop_free(.., X509_free). */
static STACK_OF(X509) * read_chain(const char *path, struct buf *error_r)
{
	char *pem = NULL;
	size_t len = 0;
	if (read_file(path, TLS_PEM_MAX, &pem, &len) < 0) {
		buf_printf(error_r, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509 *c;
	while (bio != NULL && (c = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(chain, c);
	ERR_clear_error();
	BIO_free(bio);
	free(pem);
	if (sk_X509_num(chain) == 0) {
		buf_printf(error_r, "%s holds no PEM certificate", path);
		sk_X509_pop_free(chain, X509_free);
		return NULL;
	}
	return chain;
}

/* The leaf of a chain: valid now, and for hostname. */
static int leaf_check(X509 *leaf, const char *cert_path, const char *hostname, struct buf *error_r)
{
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
		buf_printf(error_r, "the certificate in %s has expired", cert_path);
		return IX_EINVAL;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
		buf_printf(error_r, "the certificate in %s is not valid yet", cert_path);
		return IX_EINVAL;
	}
	if (X509_check_host(leaf, hostname, 0, 0, NULL) != 1) {
		buf_printf(error_r, "the certificate in %s is not valid for %s (its names: ", cert_path, hostname);
		append_printed(error_r, print_names, leaf);
		buf_append_str(error_r, ")");
		return IX_EINVAL;
	}
	return IX_OK;
}

int tls_cert_check(const char *cert_path, const char *key_path, const char *hostname, struct buf *warnings_r,
		   struct buf *error_r)
{
	STACK_OF(X509) *chain = read_chain(cert_path, error_r);
	if (chain == NULL)
		return IX_EINVAL;
	X509 *leaf = sk_X509_value(chain, 0);
	/* the key first, in words: OpenSSL's own message for a stray key is "key values mismatch" */
	FILE *kf = fopen(key_path, "r");
	EVP_PKEY *pkey = kf != NULL ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
	if (kf != NULL)
		fclose(kf);
	int ret = IX_OK;
	if (pkey == NULL) {
		buf_printf(error_r, "%s is not a PEM private key (%s)", key_path,
			   kf == NULL ? strerror(errno) : "unreadable");
		ret = IX_EINVAL;
	} else if (X509_check_private_key(leaf, pkey) != 1) {
		buf_printf(error_r, "the key in %s does not match the certificate in %s", key_path, cert_path);
		ret = IX_EINVAL;
	}
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	struct tls_ctx *ctx = NULL;
	if (ret == IX_OK)
		ret = tls_server_ctx_create(cert_path, key_path, &ctx, error_r);
	tls_ctx_destroy(&ctx);
	if (ret == IX_OK)
		ret = leaf_check(leaf, cert_path, hostname, error_r);
	/* the chain in order: each certificate issued by the next */
	for (int i = 0; ret == IX_OK && i + 1 < sk_X509_num(chain); i++) {
		if (X509_check_issued(sk_X509_value(chain, i + 1), sk_X509_value(chain, i)) != X509_V_OK) {
			buf_printf(error_r,
				   "the chain in %s is out of order: certificate %d is not issued by certificate %d "
				   "(the server's own certificate goes first, then each issuer)",
				   cert_path, i + 1, i + 2);
			ret = IX_EINVAL;
		}
	}
	/* trusted by the system's CAs? Not required (a private CA is fine), but clients must be told */
	if (ret == IX_OK) {
		X509_STORE *store = X509_STORE_new();
		X509_STORE_CTX *vctx = X509_STORE_CTX_new();
		STACK_OF(X509) *rest = sk_X509_dup(chain);
		(void)sk_X509_shift(rest);
		if (store != NULL && vctx != NULL && X509_STORE_set_default_paths(store) == 1 &&
		    X509_STORE_CTX_init(vctx, store, leaf, rest) == 1 && X509_verify_cert(vctx) != 1)
			buf_printf(warnings_r,
				   "the certificate does not verify against this machine's trusted CAs (%s): "
				   "clients must trust its issuer themselves",
				   X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		sk_X509_free(rest);
		X509_STORE_CTX_free(vctx);
		X509_STORE_free(store);
		ERR_clear_error();
	}
	sk_X509_pop_free(chain, X509_free);
	return ret;
}

void tls_ctx_destroy(struct tls_ctx **ctxp)
{
	struct tls_ctx *ctx = *ctxp;
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
	*ctxp = NULL;
}

bool tls_ctx_is_server(const struct tls_ctx *ctx)
{
	return ctx->server;
}

struct ssl_ctx_st *tls_ctx_ssl(struct tls_ctx *ctx)
{
	return ctx->ssl;
}

static bool is_ip_literal(const char *host)
{
	return strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host);
}

struct ssl_st *tls_ssl_new(struct tls_ctx *ctx, const char *host)
{
	SSL *ssl = SSL_new(ctx->ssl);
	if (ssl == NULL)
		fatal("SSL_new failed (out of memory)");
	if (ctx->server) {
		SSL_set_accept_state(ssl);
		return ssl;
	}
	SSL_set_connect_state(ssl);
	if (host != NULL && *host != '\0' && strlen(host) <= TLS_HOSTNAME_MAX) {
		if (!is_ip_literal(host))
			(void)SSL_set_tlsext_host_name(ssl, host);
		/* a peer reached by address is checked against the certificate's IP names, by name against DNS ones */
		if (ctx->verify && is_ip_literal(host))
			(void)X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
		else if (ctx->verify)
			(void)SSL_set1_host(ssl, host);
	}
	return ssl;
}

/* ---- self-signed certificates ---- */

bool tls_host_name_valid(const char *h)
{
	size_t len = strlen(h);
	if (len == 0 || len > TLS_HOSTNAME_MAX || h[0] == '.' || h[0] == '-' || h[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '.';
		if (!ok || (c == '.' && h[i + 1] == '.'))
			return false;
	}
	return true;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static int bio_contents(BIO *bio, const char **data_r, size_t *len_r)
{
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	if (n <= 0)
		return -1;
	*data_r = p;
	*len_r = (size_t)n;
	return 0;
}

bool tls_ip_literal(const char *s)
{
	unsigned char ip[16];
	return inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1;
}

int tls_make_self_signed(const char *hostname, const char *const *alt_names, const char *cert_path,
			 const char *key_path, unsigned days, struct buf *error_r)
{
	if (!tls_host_name_valid(hostname)) {
		buf_printf(error_r, "not a valid host name for a certificate: %.64s", hostname);
		return IX_EINVAL;
	}
	struct buf san_b = BUF_INIT;
	buf_printf(&san_b, "DNS:%s", hostname);
	for (size_t i = 0; alt_names != NULL && alt_names[i] != NULL; i++) {
		const char *alt = alt_names[i];
		bool ip = tls_ip_literal(alt);
		if (!ip && !tls_host_name_valid(alt)) {
			buf_printf(error_r, "not a host name or an IP address for a certificate: %.64s", alt);
			buf_free(&san_b);
			return IX_EINVAL;
		}
		buf_printf(&san_b, ",%s:%s", ip ? "IP" : "DNS", alt);
	}
	char *san = buf_steal(&san_b);
	if (days == 0 || days > TLS_CERT_DAYS_MAX) {
		buf_printf(error_r, "certificate validity must be 1..%d days", TLS_CERT_DAYS_MAX);
		free(san);
		return IX_EINVAL;
	}
	ERR_clear_error();
	int ret = IX_EIO;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIGNUM *serial = NULL;
	BIO *cert_bio = NULL, *key_bio = NULL;

	pkey = EVP_EC_gen("P-256");
	if (pkey == NULL) {
		fail(error_r, "cannot generate a P-256 key");
		goto out;
	}
	x = X509_new();
	serial = BN_new();
	if (x == NULL || serial == NULL || X509_set_version(x, 2) != 1 ||
	    BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) == NULL || X509_set_pubkey(x, pkey) != 1) {
		fail(error_r, "cannot build certificate");
		goto out;
	}
	X509_NAME *name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1) {
		fail(error_r, "cannot set certificate name");
		goto out;
	}
	if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 || add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, NID_subject_alt_name, san) < 0) {
		fail(error_r, "cannot add certificate extensions");
		goto out;
	}
	if (X509_sign(x, pkey, EVP_sha256()) == 0) {
		fail(error_r, "cannot sign certificate");
		goto out;
	}
	cert_bio = BIO_new(BIO_s_mem());
	key_bio = BIO_new(BIO_s_mem());
	if (cert_bio == NULL || key_bio == NULL || PEM_write_bio_X509(cert_bio, x) != 1 ||
	    PEM_write_bio_PrivateKey(key_bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		fail(error_r, "cannot encode PEM");
		goto out;
	}
	const char *data;
	size_t len;
	if (bio_contents(key_bio, &data, &len) < 0 || write_file_atomic(key_path, data, len, 0600) < 0) {
		buf_printf(error_r, "cannot write %s: %s", key_path, strerror(errno));
		goto out;
	}
	if (bio_contents(cert_bio, &data, &len) < 0 || write_file_atomic(cert_path, data, len, 0644) < 0) {
		buf_printf(error_r, "cannot write %s: %s", cert_path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(san);
	BIO_free(cert_bio);
	BIO_free(key_bio);
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ret;
}
