/* test_sync_relay.c - unit tests of the pass-through relay's cache file (directory/sync_relay.c): what a relay reads
 * at its start (its own source's lines only, old hashes dropped by the lifetime), what it writes, and that a hash read
 * from the file signs in over the relay's socket while the source cannot be reached. */
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/sync_relay.h"
#include "tests/unit/test.h"

#include <ldap.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* nothing listens on port 1 of this machine: the source cannot be reached */
#define NOWHERE "ldap://127.0.0.1:1/"
#define ORIGIN "0f8fad5b-d9cb-469f-a165-70867728950e " NOWHERE
#define SALT "000102030405060708090a0b0c0d0e0f"

static char dir[] = "/tmp/ix-relay-XXXXXX";
static char cache[64], sock[64];

/* The cache file's line for dn with password, taken at time at (the hash as the relay makes it). */
static void line_for(struct buf *b, long long at, const char *password, const char *dn)
{
	unsigned char salt[16], hash[32];
	for (int i = 0; i < 16; i++)
		salt[i] = (unsigned char)i;
	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, 16, SYNC_RELAY_PBKDF2_ITERATIONS, EVP_sha256(), 32,
			  hash);
	buf_printf(b, "%lld %s ", at, SALT);
	for (int i = 0; i < 32; i++)
		buf_printf(b, "%02x", hash[i]);
	buf_printf(b, " %s\n", dn);
}

/* A simple bind of dn with password over the relay's socket: the LDAP result code. */
static int bind_at(struct sync_relay *r, const char *dn, const char *password)
{
	LDAP *ld = NULL;
	if (ldap_initialize(&ld, sync_relay_uri(r)) != LDAP_SUCCESS)
		return -1;
	int v3 = LDAP_VERSION3;
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	struct berval cred = { strlen(password), (char *)password };
	int rc = ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return rc;
}

static struct sync_relay *start(const char *origin)
{
	struct sync_relay *r = NULL;
	struct buf err = BUF_INIT;
	int ret = sync_relay_start("corp", NOWHERE, NULL, sock, cache, origin, &r, &err);
	buf_free(&err);
	return ret == IX_OK ? r : NULL;
}

static void setup_dir(void)
{
	if (cache[0] == '\0' && mkdtemp(dir) != NULL) {
		snprintf(cache, sizeof(cache), "%s/corp.passthrough", dir);
		snprintf(sock, sizeof(sock), "%s/corp.auth", dir);
	}
}

static void test_reads_its_own_file_and_signs_in_from_it(void)
{
	setup_dir();
	test_assert(cache[0] != '\0');
	long long now = (long long)time(NULL);
	struct buf b = BUF_INIT;
	buf_printf(&b, "interchange pass-through cache 1 %s\n", ORIGIN);
	line_for(&b, now - 10, "paula-pw", "uid=paula,ou=People,dc=corp,dc=test");
	line_for(&b, now - 5000, "quinn-pw", "uid=quinn,ou=People,dc=corp,dc=test"); /* older than the lifetime */
	buf_append_str(&b, "12 not-hex " SALT " uid=bad\n");                         /* skipped */
	buf_printf(&b, "%lld " SALT " 00 uid=short\n", now);                         /* skipped */
	test_assert(write_file_atomic(cache, b.data, b.len, 0600) == 0);
	buf_free(&b);
	struct sync_relay *r = start(ORIGIN);
	test_assert(r != NULL);
	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	test_assert(st.entries == 2);
	sync_relay_set_lifetime(r, 900); /* quinn's hash is past it */
	sync_relay_stats(r, &st);
	test_assert(st.entries == 1);
	test_assert(bind_at(r, "uid=paula,ou=People,dc=corp,dc=test", "paula-pw") == LDAP_SUCCESS);
	test_assert(bind_at(r, "uid=paula,ou=People,dc=corp,dc=test", "wrong") == LDAP_INVALID_CREDENTIALS);
	test_assert(bind_at(r, "uid=quinn,ou=People,dc=corp,dc=test", "quinn-pw") == LDAP_INVALID_CREDENTIALS);
	sync_relay_stats(r, &st);
	test_assert(st.cached == 1 && st.unreachable == 2 && st.accepted == 0 && st.refused == 0);
	/* the file follows: rewritten without quinn within SYNC_RELAY_WRITE_S (and the listener's poll) */
	char *data = NULL;
	size_t len = 0;
	for (int i = 0; i < 50; i++) {
		free(data);
		data = NULL;
		if (read_file(cache, 1 << 20, &data, &len) == 0 && strstr(data, "uid=quinn") == NULL)
			break;
		usleep(100000);
	}
	test_assert(data != NULL && strstr(data, "uid=quinn") == NULL && strstr(data, "uid=paula") != NULL);
	test_assert(strstr(data, "uid=bad") == NULL && strstr(data, "paula-pw") == NULL);
	free(data);
	struct stat sb;
	test_assert(stat(cache, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	sync_relay_stop(&r, 1); /* the attendant stops: the file stays */
	test_assert(r == NULL && access(cache, F_OK) == 0);
	/* another source of the same name (or this one at another URI) does not take it */
	r = start("another-uuid " NOWHERE);
	test_assert(r != NULL);
	sync_relay_stats(r, &st);
	test_assert(st.entries == 0);
	sync_relay_stop(&r, 1);
	/* the same source again: paula's hash is back; the source gone, its file goes */
	r = start(ORIGIN);
	test_assert(r != NULL);
	sync_relay_stats(r, &st);
	test_assert(st.entries == 1);
	sync_relay_stop(&r, 0);
	test_assert(access(cache, F_OK) != 0);
}

static void test_lifetime_zero_empties_the_file(void)
{
	setup_dir();
	test_assert(cache[0] != '\0');
	struct buf b = BUF_INIT;
	buf_printf(&b, "interchange pass-through cache 1 %s\n", ORIGIN);
	line_for(&b, (long long)time(NULL), "rosa-pw", "uid=rosa,ou=People,dc=corp,dc=test");
	test_assert(write_file_atomic(cache, b.data, b.len, 0600) == 0);
	buf_free(&b);
	struct sync_relay *r = start(ORIGIN);
	test_assert(r != NULL);
	sync_relay_set_lifetime(r, 0);
	struct sync_relay_stats st;
	sync_relay_stats(r, &st);
	test_assert(st.entries == 0);
	for (int i = 0; i < 50 && access(cache, F_OK) == 0; i++)
		usleep(100000);
	test_assert(access(cache, F_OK) != 0);
	sync_relay_stop(&r, 1);
	rmdir(dir);
}

TEST_MAIN("sync_relay", TEST_CASE(test_reads_its_own_file_and_signs_in_from_it),
	  TEST_CASE(test_lifetime_zero_empties_the_file))
