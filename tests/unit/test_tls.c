/* test_tls.c - unit tests for transport/tls: self-signed P-256 certificates, server and client contexts,
 * error reporting for bad input. */
#include "test.h"
#include "tls.h"
#include "err.h"
#include "util.h"

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

static void self_signed_roundtrip(void)
{
	test_assert(mkdtemp(dir) != NULL);
	char *cert = xasprintf("%s/cert.pem", dir), *key = xasprintf("%s/key.pem", dir);
	struct buf err = BUF_INIT;
	test_assert(tls_make_self_signed("mail.example.com", cert, key, 365, &err) == 0);
	struct stat st;
	test_assert(stat(key, &st) == 0 && (st.st_mode & 0077) == 0);

	FILE *f = fopen(cert, "r");
	test_assert(f != NULL);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
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
	test_assert(tls_make_self_signed("other.example.com", cert2, key2, 1, &err) == 0);
	test_assert(tls_server_ctx_create(cert, key2, &ctx, &err) == IX_EINVAL);
	test_assert(strstr(buf_cstr(&err), "does not match") != NULL || strstr(buf_cstr(&err), "mismatch") != NULL);
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
		test_assert(tls_make_self_signed(bad[i], cert, key, 10, &err) == IX_EINVAL);
		test_assert(err.len > 0);
	}
	test_assert(tls_make_self_signed("ok.example", cert, key, 0, &err) == IX_EINVAL);
	test_assert(access(cert, F_OK) != 0);
	test_assert(tls_make_self_signed("x.example", "/nonexistent/dir/c.pem", key, 1, &err) == IX_EIO);
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

TEST_MAIN("tls", TEST_CASE(self_signed_roundtrip), TEST_CASE(server_ctx_errors),
	  TEST_CASE(self_signed_rejects_bad_input), TEST_CASE(client_ctx))
