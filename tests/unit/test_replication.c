/* test_replication.c - unit tests of the pure parts of the replication library (replication_config.c,
 * replication_servers.c): the olcSyncrepl values it writes and the fields it reads back from slapd's canonical form. */
#include "directory/replication.h"
#include "tests/unit/test.h"

#include <stdlib.h>

static void test_value_roundtrip(void)
{
	char *v = repl_syncrepl_value(7, "ldap://127.0.0.1:3389/", "cn=admin,dc=example,dc=com", "pw with space",
				      "dc=example,dc=com", "/d/tls/peers.pem");
	test_assert(v != NULL);
	test_assert(strncmp(v, "rid=007 ", 8) == 0);
	char *c = repl_syncrepl_credentials(v), *p = repl_syncrepl_provider(v);
	test_assert(c != NULL && p != NULL);
	test_assert_str(c, "pw with space");
	test_assert_str(p, "ldap://127.0.0.1:3389/");
	free(c);
	free(p);
	/* on the loopback listener: no TLS options */
	test_assert(strstr(v, "starttls") == NULL && strstr(v, "tls_cacert") == NULL);
	/* delta-syncrepl: the consumer replays the provider's access log */
	test_assert(strstr(v, " syncdata=accesslog") != NULL);
	test_assert(strstr(v, " logbase=\"cn=accesslog\"") != NULL);
	test_assert(strstr(v, " logfilter=\"(&(objectClass=auditWriteObject)(reqResult=0))\"") != NULL);
	test_assert(repl_syncrepl_same(v, v));
	free(v);
}

static void test_same_against_canonical_form(void)
{
	char *want = repl_syncrepl_value(2, "ldap://127.0.0.1:40001/", "cn=admin,dc=example,dc=com", "s3cret",
					 "dc=example,dc=com", "/d/tls/peers.pem");
	test_assert(want != NULL);
	/* as slapd 2.5 hands a delta-syncrepl value back: ordering prefix, defaults spelled out, its own order */
	const char *live = "{0}rid=002 provider=ldap://127.0.0.1:40001/ bindmethod=simple timeout=1 "
			   "network-timeout=3 binddn=\"cn=admin,dc=example,dc=com\" credentials=\"s3cret\" "
			   "keepalive=0:0:0 starttls=no filter=\"(objectclass=*)\" searchbase=\"dc=example,dc=com\" "
			   "scope=sub attrs=\"*,+\" schemachecking=off type=refreshAndPersist retry=\"1 +\" "
			   "logbase=\"cn=accesslog\" logfilter=\"(&(objectClass=auditWriteObject)(reqResult=0))\" "
			   "syncdata=accesslog";
	test_assert(repl_syncrepl_same(live, want));
	/* a value written before delta-syncrepl (no syncdata) is not the same: it gets rewritten */
	const char *plain = "{0}rid=002 provider=ldap://127.0.0.1:40001/ bindmethod=simple timeout=1 "
			    "binddn=\"cn=admin,dc=example,dc=com\" credentials=\"s3cret\" starttls=no "
			    "searchbase=\"dc=example,dc=com\" type=refreshAndPersist retry=\"1 +\"";
	test_assert(!repl_syncrepl_same(plain, want));
	/* nor another password, provider or rid */
	char *other = repl_syncrepl_value(2, "ldap://127.0.0.1:40001/", "cn=admin,dc=example,dc=com", "S3cret",
					  "dc=example,dc=com", NULL);
	test_assert(!repl_syncrepl_same(live, other));
	free(other);
	other = repl_syncrepl_value(3, "ldap://127.0.0.1:40001/", "cn=admin,dc=example,dc=com", "s3cret",
				    "dc=example,dc=com", NULL);
	test_assert(!repl_syncrepl_same(live, other));
	free(other);
	other = repl_syncrepl_value(2, "ldap://127.0.0.1:40002/", "cn=admin,dc=example,dc=com", "s3cret",
				    "dc=example,dc=com", NULL);
	test_assert(!repl_syncrepl_same(live, other));
	free(other);
	/* over the network the TLS options count too */
	other = repl_syncrepl_value(2, "ldap://127.0.0.2:40001/", "cn=admin,dc=example,dc=com", "s3cret",
				    "dc=example,dc=com", "/d/tls/peers.pem");
	const char *live_tls = "{1}rid=002 provider=ldap://127.0.0.2:40001/ bindmethod=simple "
			       "binddn=\"cn=admin,dc=example,dc=com\" credentials=\"s3cret\" starttls=critical "
			       "tls_cacert=\"/d/tls/peers.pem\" tls_reqcert=demand searchbase=\"dc=example,dc=com\" "
			       "logbase=\"cn=accesslog\" syncdata=accesslog";
	test_assert(repl_syncrepl_same(live_tls, other));
	test_assert(!repl_syncrepl_same(live, other));
	free(other);
	free(want);
}

static void test_value_over_the_network_needs_tls(void)
{
	/* any address but the loopback listener's counts as the network, 127.0.0.2 included */
	static const char *const uris[] = { "ldap://127.0.0.2:3389/", "ldap://mail2.example.com:3389/",
					    "ldap://[2001:db8::1]:389/" };
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		char *v = repl_syncrepl_value(3, uris[i], "cn=admin,dc=x", "pw", "dc=x", "/d/tls/peers.pem");
		test_assert(v != NULL);
		test_assert(strstr(v, " starttls=critical") != NULL);
		test_assert(strstr(v, " tls_reqcert=demand") != NULL);
		test_assert(strstr(v, " tls_cacert=\"/d/tls/peers.pem\"") != NULL);
		free(v);
	}
	test_assert(repl_uri_is_local("ldap://127.0.0.1:3389/") && repl_uri_is_local("ldap://localhost/") &&
		    repl_uri_is_local("ldapi://%2Ftmp%2Fs") && repl_uri_is_local("ldap://[::1]:3389/"));
	test_assert(!repl_uri_is_local("ldap://127.0.0.2/") && !repl_uri_is_local("ldaps://127.0.0.1/") &&
		    !repl_uri_is_local("ldap://10.0.0.1/") && !repl_uri_is_local("not a uri"));
	/* a CA path with a quote cannot be carried */
	test_assert(repl_syncrepl_value(3, "ldap://h/", "cn=admin,dc=x", "pw", "dc=x", "/a\"b") == NULL);
}

static void test_value_refuses_quotes(void)
{
	test_assert(repl_syncrepl_value(1, "ldap://h/", "cn=admin,dc=x", "a\"b", "dc=x", NULL) == NULL);
	test_assert(repl_syncrepl_value(1, "ldap://h/", "cn=admin,dc=x", "a\\b", "dc=x", NULL) == NULL);
	test_assert(repl_syncrepl_value(1, "ldap://h/ x", "cn=admin,dc=x", "ab", "dc=x", NULL) == NULL);
}

static void test_canonical_form(void)
{
	/* as slapd hands olcSyncrepl back: an ordering prefix and every option spelled out */
	const char *live = "{0}rid=002 provider=ldap://127.0.0.1:40001/ bindmethod=simple timeout=5 "
			   "network-timeout=5 binddn=\"cn=admin,dc=example,dc=com\" credentials=\"s3cret\" "
			   "keepalive=0:0:0 starttls=no filter=\"(objectclass=*)\" searchbase=\"dc=example,dc=com\"";
	char *c = repl_syncrepl_credentials(live), *p = repl_syncrepl_provider(live);
	test_assert(c != NULL && p != NULL);
	test_assert_str(c, "s3cret");
	test_assert_str(p, "ldap://127.0.0.1:40001/");
	free(c);
	free(p);
	test_assert(repl_syncrepl_credentials("{0}rid=001 provider=ldap://x/") == NULL);
	/* a key inside another value does not count */
	test_assert(repl_syncrepl_provider("{0}rid=001 xprovider=ldap://x/") == NULL);
}

TEST_MAIN("replication", TEST_CASE(test_value_roundtrip), TEST_CASE(test_value_refuses_quotes),
	  TEST_CASE(test_value_over_the_network_needs_tls), TEST_CASE(test_canonical_form),
	  TEST_CASE(test_same_against_canonical_form))
