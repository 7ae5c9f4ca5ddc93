/* test_tls.c - unit tests for transport/tls (self-signed P-256 certificates, server and client contexts, bad
 * input) and transport/sasl (PLAIN and LOGIN exchanges end to end, base64, the plaintext-under-TLS policy). */
#include "tests/unit/test.h"
#include "transport/net/tls.h"
#include "transport/net/sasl.h"
#include "common/err.h"
#include "common/util.h"
#include "common/base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static char dir[] = "/tmp/ix-tls-XXXXXX";

static void remove_dir(void)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
}

/* The certificate in the PEM file path (the caller frees it). */
static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL; /* the caller's test_assert on the result fails the case */
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static void self_signed_roundtrip(void)
{
	test_assert(mkdtemp(dir) != NULL);
	char *cert = xasprintf("%s/cert.pem", dir), *key = xasprintf("%s/key.pem", dir);
	struct buf err = BUF_INIT;
	test_assert(tls_make_self_signed("mail.example.com", NULL, cert, key, 365, &err) == 0);
	struct stat st;
	test_assert(stat(key, &st) == 0 && (st.st_mode & 0077) == 0);
	X509 *x = read_cert(cert);
	test_assert(x != NULL);
	test_assert(X509_check_host(x, "mail.example.com", 0, 0, NULL) == 1);
	test_assert(X509_check_host(x, "other.example.com", 0, 0, NULL) != 1);
	EVP_PKEY *pub = X509_get0_pubkey(x);
	test_assert(pub != NULL && EVP_PKEY_is_a(pub, "EC"));
	char group[32];
	size_t glen;
	test_assert(EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen) == 1);
	test_assert_str(group, "prime256v1");
	test_assert(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256);
	X509_free(x);

	struct tls_ctx *ctx = NULL;
	test_assert(tls_server_ctx_create(cert, key, &ctx, &err) == 0);
	test_assert(tls_ctx_is_server(ctx));
	test_assert(tls_ctx_ssl(ctx) != NULL);
	tls_ctx_destroy(&ctx);
	test_assert(ctx == NULL);
	free(cert);
	free(key);
	buf_free(&err);
}

/* Alternative names: host names as DNS names, addresses (v4 and v6) as IP names, and the description of the result */
static void self_signed_alt_names(void)
{
	char *cert = xasprintf("%s/alt.pem", dir), *key = xasprintf("%s/altkey.pem", dir);
	struct buf err = BUF_INIT, out = BUF_INIT;
	static const char *const alt[] = { "localhost", "127.0.0.1", "192.0.2.7", "2001:db8::1", NULL };
	test_assert(tls_make_self_signed("mail.example.com", alt, cert, key, 30, &err) == 0);
	X509 *x = read_cert(cert);
	test_assert(x != NULL);
	test_assert(X509_check_host(x, "mail.example.com", 0, 0, NULL) == 1);
	test_assert(X509_check_host(x, "localhost", 0, 0, NULL) == 1);
	test_assert(X509_check_ip_asc(x, "127.0.0.1", 0) == 1 && X509_check_ip_asc(x, "192.0.2.7", 0) == 1);
	test_assert(X509_check_ip_asc(x, "2001:db8::1", 0) == 1 && X509_check_ip_asc(x, "192.0.2.8", 0) != 1);
	X509_free(x);
	char *pem;
	size_t len;
	test_assert(read_file(cert, TLS_PEM_MAX, &pem, &len) == 0);
	test_assert(tls_cert_describe(pem, len, &out, &err) == IX_OK);
	const char *d = buf_cstr(&out);
	test_assert(strstr(d, "subject:     CN=mail.example.com\n") != NULL);
	test_assert(
		strstr(d,
		       "names:       DNS:mail.example.com, DNS:localhost, IP Address:127.0.0.1, IP Address:192.0.2.7, "
		       "IP Address:2001:DB8:0:0:0:0:0:1\n") != NULL);
	test_assert(strstr(d, "valid from:  20") != NULL && strstr(d, "valid until: 20") != NULL);
	const char *fp = strstr(d, "SHA-256:     ");
	test_assert(fp != NULL && strlen(fp) == 13 + TLS_FINGERPRINT_HEX + 1);
	buf_reset(&err);
	test_assert(tls_cert_describe("junk", 4, &out, &err) == IX_EINVAL && err.len > 0);
	free(pem);
	free(cert);
	free(key);
	buf_free(&out);
	buf_free(&err);
}

static void server_ctx_errors(void)
{
	struct buf err = BUF_INIT;
	struct tls_ctx *ctx = NULL;
	char *cert = xasprintf("%s/cert.pem", dir), *key = xasprintf("%s/key.pem", dir);
	char *cert2 = xasprintf("%s/cert2.pem", dir), *key2 = xasprintf("%s/key2.pem", dir);
	char *junk = xasprintf("%s/junk.pem", dir);
	test_assert(tls_server_ctx_create("/nonexistent/cert.pem", key, &ctx, &err) < 0);
	test_assert(err.len > 0 && ctx == NULL);
	buf_reset(&err);
	test_assert(write_file_atomic(junk, "not a pem\n", 10, 0600) == 0);
	test_assert(tls_server_ctx_create(junk, key, &ctx, &err) == IX_EINVAL);
	buf_reset(&err);
	/* a key that belongs to another certificate */
	test_assert(tls_make_self_signed("other.example.com", NULL, cert2, key2, 1, &err) == 0);
	test_assert(tls_server_ctx_create(cert, key2, &ctx, &err) == IX_EINVAL);
	test_assert(strstr(buf_cstr(&err), "key2.pem: ") != NULL &&
		    strstr(buf_cstr(&err), "key values mismatch") != NULL);
	test_assert(ctx == NULL);
	free(cert);
	free(key);
	free(cert2);
	free(key2);
	free(junk);
	buf_free(&err);
}

static void self_signed_rejects_bad_input(void)
{
	struct buf err = BUF_INIT;
	char *cert = xasprintf("%s/c.pem", dir), *key = xasprintf("%s/k.pem", dir);
	static const char *const bad[] = { "", "a,DNS:evil.com", "bad host", ".lead", "trail.", "a..b", "-x" };
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		buf_reset(&err);
		test_assert(tls_make_self_signed(bad[i], NULL, cert, key, 10, &err) == IX_EINVAL);
		test_assert(err.len > 0);
	}
	test_assert(tls_make_self_signed("ok.example", NULL, cert, key, 0, &err) == IX_EINVAL);
	test_assert(access(cert, F_OK) != 0);
	test_assert(tls_make_self_signed("x.example", NULL, "/nonexistent/dir/c.pem", key, 1, &err) == IX_EIO);
	/* an alternative name is a host name or an address, never a list smuggled in */
	static const char *const bad_alt[] = { "localhost", "127.0.0.1,DNS:evil.com", NULL };
	buf_reset(&err);
	test_assert(tls_make_self_signed("ok.example", bad_alt, cert, key, 10, &err) == IX_EINVAL);
	test_assert(strstr(buf_cstr(&err), "127.0.0.1,DNS") != NULL && access(cert, F_OK) != 0);
	free(cert);
	free(key);
	buf_free(&err);
}

static void client_ctx(void)
{
	struct buf err = BUF_INIT;
	struct tls_ctx *ctx = NULL;
	test_assert(tls_client_ctx_create(false, NULL, &ctx, &err) == 0);
	test_assert(!tls_ctx_is_server(ctx));
	struct ssl_st *ssl = tls_ssl_new(ctx, "mx.example.net");
	test_assert(ssl != NULL);
	SSL_free(ssl);
	tls_ctx_destroy(&ctx);
	char *cert = xasprintf("%s/cert.pem", dir);
	test_assert(tls_client_ctx_create(true, cert, &ctx, &err) == 0);
	tls_ctx_destroy(&ctx);
	test_assert(tls_client_ctx_create(true, "/nonexistent/ca.pem", &ctx, &err) == IX_EINVAL);
	free(cert);
	buf_free(&err);
	remove_dir();
}

/* ---- SASL ---- */

struct checker {
	int calls;
	bool unavailable;
};

static int check_pass(void *ctx, const char *user, const char *pass, size_t passlen)
{
	struct checker *ck = ctx;
	ck->calls++;
	if (ck->unavailable)
		return IX_EUNAVAIL;
	if (strcmp(user, "alice") == 0 && passlen == 6 && memcmp(pass, "s3cr3t", 6) == 0)
		return 0;
	if (strcmp(user, "bob") == 0 && passlen == 6 && memcmp(pass, "hunter", 6) == 0)
		return 0;
	return IX_EAUTH;
}

static char *b64(const char *data, size_t len)
{
	struct buf b = BUF_INIT;
	base64_encode(data, len, &b);
	return buf_steal(&b);
}

static void sasl_plain_exchange(void)
{
	struct buf err = BUF_INIT, ch = BUF_INIT;
	test_assert(ix_sasl_init("interchange-test", &err) == 0);
	test_assert(ix_sasl_init("interchange-test", &err) == 0);
	struct checker ck = { 0 };
	struct ix_sasl *s;
	test_assert(ix_sasl_create("smtp", "mail.example.com", true, check_pass, &ck, &s, &err) == 0);
	test_assert_str(ix_sasl_mechanisms(s), "PLAIN LOGIN");
	/* initial response: authzid empty, "alice", "s3cr3t" */
	char *ir = b64("\0alice\0s3cr3t", 13);
	test_assert(ix_sasl_start(s, "PLAIN", ir, strlen(ir), &ch, &err) == IX_SASL_DONE);
	test_assert_str(ix_sasl_user(s), "alice");
	test_assert(ck.calls == 1);
	free(ir);
	/* wrong password */
	ir = b64("\0alice\0wrong", 12);
	test_assert(ix_sasl_start(s, "plain", ir, strlen(ir), &ch, &err) == IX_EAUTH);
	test_assert(ix_sasl_user(s) == NULL);
	free(ir);
	/* no initial response: an empty challenge, then the response */
	buf_reset(&ch);
	test_assert(ix_sasl_start(s, "PLAIN", NULL, 0, &ch, &err) == IX_SASL_CONTINUE);
	test_assert(ch.len == 0);
	char *resp = b64("\0bob\0hunter", 11);
	test_assert(ix_sasl_step(s, resp, strlen(resp), &ch, &err) == IX_SASL_DONE);
	test_assert_str(ix_sasl_user(s), "bob");
	free(resp);
	/* cancel, garbage, empty initial response */
	test_assert(ix_sasl_start(s, "PLAIN", NULL, 0, &ch, &err) == IX_SASL_CONTINUE);
	test_assert(ix_sasl_step(s, "*", 1, &ch, &err) == IX_SASL_CANCELLED);
	test_assert(ix_sasl_step(s, "AAAA", 4, &ch, &err) == IX_EINVAL);
	test_assert(ix_sasl_start(s, "PLAIN", "!!!!", 4, &ch, &err) == IX_EINVAL);
	test_assert(ix_sasl_start(s, "PLAIN", "=", 1, &ch, &err) < 0);
	test_assert(ix_sasl_start(s, "CRAM-MD5", NULL, 0, &ch, &err) == IX_EINVAL);
	test_assert(ix_sasl_start(s, "SCRAM-SHA-256", NULL, 0, &ch, &err) == IX_EINVAL);
	/* the directory is down */
	ck.unavailable = true;
	ir = b64("\0alice\0s3cr3t", 13);
	test_assert(ix_sasl_start(s, "PLAIN", ir, strlen(ir), &ch, &err) == IX_EUNAVAIL);
	ck.unavailable = false;
	/* plaintext is refused without TLS */
	ix_sasl_set_secure(s, false);
	test_assert_str(ix_sasl_mechanisms(s), "");
	test_assert(ix_sasl_start(s, "PLAIN", ir, strlen(ir), &ch, &err) == IX_EPERM);
	free(ir);
	ix_sasl_destroy(&s);
	test_assert(s == NULL);
	buf_free(&err);
	buf_free(&ch);
}

/* bob may act for alice, nobody else for anyone */
static int bob_for_alice(void *ctx, const char *authcid, const char *authzid)
{
	(*(int *)ctx)++;
	return strcmp(authcid, "bob") == 0 && strcmp(authzid, "alice") == 0 ? 0 : IX_EPERM;
}

static void sasl_plain_authzid(void)
{
	struct buf err = BUF_INIT, ch = BUF_INIT;
	struct checker ck = { 0 };
	struct ix_sasl *s;
	test_assert(ix_sasl_init("interchange-test", &err) == 0);
	test_assert(ix_sasl_create("imap", "mail.example.com", true, check_pass, &ck, &s, &err) == 0);
	/* without an authorization function another user is refused, the same one accepted */
	char *ir = b64("alice\0bob\0hunter", 16);
	test_assert(ix_sasl_start(s, "PLAIN", ir, strlen(ir), &ch, &err) == IX_EAUTH);
	test_assert(ix_sasl_user(s) == NULL && ix_sasl_actor(s) == NULL);
	char *same = b64("bob\0bob\0hunter", 14);
	test_assert(ix_sasl_start(s, "PLAIN", same, strlen(same), &ch, &err) == IX_SASL_DONE);
	test_assert_str(ix_sasl_user(s), "bob");
	test_assert(ix_sasl_actor(s) == NULL);
	/* with one: bob signs in as alice with his own password; carol's right password does not make her alice */
	int asked = 0;
	ix_sasl_set_authorize(s, bob_for_alice, &asked);
	buf_reset(&err);
	test_assert(ix_sasl_start(s, "PLAIN", ir, strlen(ir), &ch, &err) == IX_SASL_DONE);
	test_assert_str(ix_sasl_user(s), "alice");
	test_assert_str(ix_sasl_actor(s), "bob");
	test_assert(asked == 1);
	char *wrong = b64("alice\0bob\0wrong!", 16);
	test_assert(ix_sasl_start(s, "PLAIN", wrong, strlen(wrong), &ch, &err) == IX_EAUTH);
	test_assert(ix_sasl_user(s) == NULL && ix_sasl_actor(s) == NULL && asked == 1);
	char *other = b64("bob\0alice\0s3cr3t", 16);
	buf_reset(&err);
	test_assert(ix_sasl_start(s, "PLAIN", other, strlen(other), &ch, &err) == IX_EAUTH);
	test_assert(strstr(buf_cstr(&err), "act for") != NULL && asked == 2);
	free(ir);
	free(same);
	free(wrong);
	free(other);
	ix_sasl_destroy(&s);
	buf_free(&err);
	buf_free(&ch);
}

static void sasl_login_exchange(void)
{
	struct buf err = BUF_INIT, ch = BUF_INIT, dec = BUF_INIT;
	struct checker ck = { 0 };
	struct ix_sasl *s;
	test_assert(ix_sasl_create("smtp", "mail.example.com", true, check_pass, &ck, &s, &err) == 0);
	test_assert(ix_sasl_start(s, "LOGIN", NULL, 0, &ch, &err) == IX_SASL_CONTINUE);
	test_assert(base64_decode(ch.data, ch.len, 100, &dec) == 0);
	test_assert(strncmp(buf_cstr(&dec), "Username", 8) == 0);
	buf_reset(&ch);
	buf_reset(&dec);
	test_assert(ix_sasl_step(s, "Ym9i", 4, &ch, &err) == IX_SASL_CONTINUE); /* "bob" */
	test_assert(base64_decode(ch.data, ch.len, 100, &dec) == 0);
	test_assert(strncmp(buf_cstr(&dec), "Password", 8) == 0);
	buf_reset(&ch);
	test_assert(ix_sasl_step(s, "aHVudGVy", 8, &ch, &err) == IX_SASL_DONE); /* "hunter" */
	test_assert_str(ix_sasl_user(s), "bob");
	/* again with a wrong password */
	test_assert(ix_sasl_start(s, "LOGIN", NULL, 0, &ch, &err) == IX_SASL_CONTINUE);
	test_assert(ix_sasl_step(s, "Ym9i", 4, &ch, &err) == IX_SASL_CONTINUE);
	test_assert(ix_sasl_step(s, "bm9wZQ==", 8, &ch, &err) == IX_EAUTH);
	test_assert(ix_sasl_user(s) == NULL);
	ix_sasl_destroy(&s);
	ix_sasl_done();
	buf_free(&err);
	buf_free(&ch);
	buf_free(&dec);
}

TEST_MAIN("tls", TEST_CASE(self_signed_roundtrip), TEST_CASE(server_ctx_errors),
	  TEST_CASE(self_signed_rejects_bad_input), TEST_CASE(self_signed_alt_names), TEST_CASE(client_ctx),
	  TEST_CASE(sasl_plain_exchange), TEST_CASE(sasl_plain_authzid), TEST_CASE(sasl_login_exchange))
