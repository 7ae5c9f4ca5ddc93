/* test_dir.c - unit tests for the directory library's pure parts: address and DN normalization, the hash maps,
 * and resolution, list expansion and change handling over an in-memory replica filled directly (no slapd). */
#include "tests/unit/test.h"
#include "directory/dir.h"
#include "directory/dir_private.h"
#include "common/err.h"
#include "common/util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUFFIX "dc=example,dc=com"
#define R(x) x ",ou=Recipients," SUFFIX
/* Ends entry()'s list of attribute/value pairs (a typed null pointer: variadic arguments are not converted). */
#define END ((const char *)NULL)

/* An entry with uuid {n, 0...}: pairs of attribute name and value, then NULL. */
static struct dir_entry *entry(unsigned n, const char *dn, ...)
{
	unsigned char uuid[16] = { 0 };
	uuid[0] = (unsigned char)(n & 0xff);
	uuid[1] = (unsigned char)(n >> 8);
	struct dir_builder b;
	dir_builder_init(&b, dn, uuid);
	va_list ap;
	va_start(ap, dn);
	for (;;) {
		const char *attr = va_arg(ap, const char *);
		if (attr == NULL)
			break;
		const char *value = va_arg(ap, const char *);
		dir_builder_add(&b, attr, value, strlen(value));
	}
	va_end(ap);
	return dir_builder_finish(&b);
}

static void uuid_of(unsigned n, unsigned char uuid[16])
{
	memset(uuid, 0, 16);
	uuid[0] = (unsigned char)(n & 0xff);
	uuid[1] = (unsigned char)(n >> 8);
}

static void put(struct dir *dir, struct dir_entry *e)
{
	dir_apply_put(dir, e);
}

static void del(struct dir *dir, unsigned n)
{
	unsigned char uuid[16];
	uuid_of(n, uuid);
	dir_apply_del(dir, uuid);
}

static void add_user(struct dir *dir, unsigned n, const char *uid, const char *primary, const char *secondary)
{
	char dn[256], p[300], s[300];
	snprintf(dn, sizeof(dn), "uid=%s,ou=Recipients," SUFFIX, uid);
	snprintf(p, sizeof(p), "SMTP:%s", primary);
	snprintf(s, sizeof(s), "smtp:%s", secondary != NULL ? secondary : primary);
	put(dir, entry(n, dn, "objectClass", "inetOrgPerson", "objectClass", "ixRecipient", "objectClass", "ixMailUser",
		       "uid", uid, "cn", uid, "sn", uid, "ixMailboxGuid", "0123456789abcdef0123456789abcdef",
		       "ixProxyAddresses", p, "ixProxyAddresses", s, "mail", primary, END));
}

/* A list with up to 4 members (NULL ends). */
static void add_list(struct dir *dir, unsigned n, const char *name, const char *m1, const char *m2, const char *m3,
		     const char *m4)
{
	char dn[256], p[300];
	snprintf(dn, sizeof(dn), "cn=%s,ou=Recipients," SUFFIX, name);
	snprintf(p, sizeof(p), "SMTP:%s@example.com", name);
	struct dir_builder b;
	unsigned char uuid[16];
	uuid_of(n, uuid);
	dir_builder_init(&b, dn, uuid);
	const char *vals[][2] = { { "objectClass", "ixDistributionList" },
				  { "objectClass", "ixRecipient" },
				  { "cn", name },
				  { "ixProxyAddresses", p } };
	for (size_t i = 0; i < IX_ARRAY_LEN(vals); i++)
		dir_builder_add(&b, vals[i][0], vals[i][1], strlen(vals[i][1]));
	const char *members[] = { m1, m2, m3, m4 };
	for (size_t i = 0; i < 4 && members[i] != NULL; i++)
		dir_builder_add(&b, "member", members[i], strlen(members[i]));
	put(dir, dir_builder_finish(&b));
}

static bool expansion_has(const struct dir_expansion *x, const char *dn)
{
	for (size_t i = 0; i < x->count; i++) {
		if (strcasecmp(x->recipients[i].dn, dn) == 0)
			return true;
	}
	return false;
}

static void address_keys(void)
{
	char key[DIR_ADDRESS_MAX + 1];
	test_assert(dir_address_key("Alice.Smith@Example.COM", 23, key) == 23);
	test_assert_str(key, "alice.smith@example.com");
	test_assert(dir_address_key("nobody", 6, key) == 0);
	test_assert(dir_address_key("", 0, key) == 0);
	test_assert(dir_address_key("a\r@b", 4, key) == 0);
	char *longer = xmalloc(DIR_ADDRESS_MAX + 2);
	memset(longer, 'a', DIR_ADDRESS_MAX + 1);
	longer[5] = '@';
	longer[DIR_ADDRESS_MAX + 1] = '\0';
	test_assert(dir_address_key(longer, DIR_ADDRESS_MAX + 1, key) == 0);
	test_assert(dir_address_key(longer, DIR_ADDRESS_MAX, key) == DIR_ADDRESS_MAX);
	free(longer);

	const char *a;
	bool primary;
	test_assert(dir_proxy_smtp("SMTP:x@y", &a, &primary) && primary && strcmp(a, "x@y") == 0);
	test_assert(dir_proxy_smtp("smtp:x@y", &a, &primary) && !primary && strcmp(a, "x@y") == 0);
	test_assert(dir_proxy_smtp("x@y", &a, &primary) && !primary && strcmp(a, "x@y") == 0);
	test_assert(dir_proxy_smtp("x:1@y", &a, &primary) == false);
	test_assert(!dir_proxy_smtp("X400:c=us;a= ;p=Org", &a, &primary));
	test_assert(dir_proxy_smtp("a@b:c", &a, &primary) && strcmp(a, "a@b:c") == 0);
}

static void dn_normalization(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	dir_dn_normalize("uid=Alice, ou=Recipients,DC=Example,dc=com", &a);
	dir_dn_normalize("UID=alice,ou=recipients,dc=example,dc=com", &b);
	test_assert_str(buf_cstr(&a), buf_cstr(&b));
	test_assert_str(buf_cstr(&a), "uid=alice,ou=recipients,dc=example,dc=com");
	buf_reset(&a);
	buf_reset(&b);
	dir_dn_normalize("cn=Smith\\, John,ou=Recipients,dc=example,dc=com", &a);
	dir_dn_normalize("cn=Smith\\2C John,ou=Recipients,dc=example,dc=com", &b);
	test_assert_str(buf_cstr(&a), buf_cstr(&b));
	buf_reset(&a);
	dir_dn_normalize("not a dn ((", &a);
	test_assert_str(buf_cstr(&a), "not a dn ((");
	buf_free(&a);
	buf_free(&b);
}

static void hash_map_matches_reference(void)
{
	/* Random adds and deletes against a plain array, checking every key after each round. */
	enum { N = 2000 };
	static char keys[N][16];
	static bool present[N];
	struct dir_entry *fake = (struct dir_entry *)&keys; /* values are only compared */
	struct dir_map m;
	dir_map_init(&m);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i * 7919);
		present[i] = false;
	}
	unsigned seed = 12345;
	for (int round = 0; round < 20000; round++) {
		seed = seed * 1103515245u + 12345u;
		int i = (int)((seed >> 8) % N);
		if (present[i]) {
			test_assert(dir_map_del(&m, keys[i], strlen(keys[i]), NULL));
			present[i] = false;
		} else {
			test_assert(dir_map_add(&m, keys[i], strlen(keys[i]), fake + 0) == NULL);
			present[i] = true;
		}
		if (round % 1000 == 0) {
			size_t count = 0;
			for (int j = 0; j < N; j++) {
				bool got = dir_map_get(&m, keys[j], strlen(keys[j])) != NULL;
				test_assert(got == present[j]);
				count += present[j];
			}
			test_assert(m.count == count);
		}
	}
	/* dir_map_del with another value leaves the key. */
	dir_map_add(&m, "zz", 2, fake);
	test_assert(!dir_map_del(&m, "zz", 2, fake + 1));
	test_assert(dir_map_get(&m, "zz", 2) == fake);
	dir_map_free(&m);
}

static void resolve_addresses(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	add_user(dir, 1, "alice", "alice.smith@example.com", "al@example.com");
	put(dir,
	    entry(2, R("uid=bob"), "objectClass", "inetOrgPerson", "objectClass", "ixRecipient", "objectClass",
		  "ixMailUser", "uid", "Bob", "cn", "Bob Hidden", "ixMailboxGuid", "0123456789abcdef0123456789abcdee",
		  "ixHideFromAddressBook", "TRUE", "ixProxyAddresses", "smtp:bob@example.com", "ixProxyAddresses",
		  "X400:c=us;p=x", "ixQuotaBytes", "1000", "ixForwardTo", R("uid=alice"), "ixAcceptFrom",
		  R("uid=alice"), "ixHomeServer", "cn=mail1,ou=Servers,ou=Configuration," SUFFIX, END));
	put(dir, entry(3, "cn=mail1,ou=Servers,ou=Configuration," SUFFIX, "objectClass", "ixServer", "cn", "mail1",
		       "ixHostName", "mail1.example.com", "ixSmtpPort", "2525", "ixImapPort", "1143", END));
	put(dir, entry(4, "cn=example.com,ou=Accepted Domains,ou=Configuration," SUFFIX, "objectClass",
		       "ixAcceptedDomain", "cn", "Example.com", END));

	struct dir_recipient r;
	for (size_t i = 0; i < dir->rep.by_dn.cap; i++) {
		if (dir->rep.by_dn.slots[i].key != NULL)
			test_assert(dir_entry_one_block(dir->rep.by_dn.slots[i].val));
	}
	test_assert(dir_resolve(dir, "Alice.Smith@EXAMPLE.com", &r) == IX_OK);
	test_assert(r.type == DIR_TYPE_USER);
	test_assert_str(r.login, "alice");
	test_assert_str(r.primary_address, "alice.smith@example.com");
	test_assert(r.address_count == 2);
	test_assert(!r.hidden && r.quota_bytes == -1 && r.home_server_host == NULL);
	dir_recipient_release(&r);
	test_assert(r.entry_ == NULL);
	test_assert(dir_resolve(dir, "al@example.com", &r) == IX_OK);
	test_assert_str(r.login, "alice");
	dir_recipient_release(&r);
	/* Subaddress. */
	test_assert(dir_resolve(dir, "AL+Lists@example.com", &r) == IX_OK);
	test_assert_str(r.login, "alice");
	dir_recipient_release(&r);
	test_assert(dir_resolve(dir, "+x@example.com", &r) == IX_ENOTFOUND);
	test_assert(dir_resolve(dir, "al@example.org", &r) == IX_ENOTFOUND);
	test_assert(r.dn == NULL);
	test_assert(dir_resolve(dir, "", &r) == IX_ENOTFOUND);
	test_assert(dir_resolve(dir, "alice", &r) == IX_ENOTFOUND);
	test_assert(dir_resolve(dir, NULL, &r) == IX_ENOTFOUND);

	/* Hidden, no primary yet, other fields, home server. */
	test_assert(dir_resolve(dir, "BOB@example.com", &r) == IX_OK);
	test_assert(r.hidden);
	test_assert(r.primary_address == NULL);
	test_assert(r.address_count == 1);
	test_assert(r.quota_bytes == 1000);
	test_assert(r.forward_to != NULL && r.accept_from_count == 1);
	test_assert(r.home_server_host != NULL && strcmp(r.home_server_host, "mail1.example.com") == 0);
	dir_recipient_release(&r);

	test_assert(dir_lookup_login(dir, "BOB", &r) == IX_OK);
	test_assert_str(r.dn, R("uid=bob"));
	dir_recipient_release(&r);
	test_assert(dir_lookup_dn(dir, "UID=bob, ou=recipients, dc=example, dc=com", &r) == IX_OK);
	dir_recipient_release(&r);
	test_assert(dir_lookup_dn(dir, "cn=mail1,ou=Servers,ou=Configuration," SUFFIX, &r) == IX_ENOTFOUND);

	test_assert(dir_is_local_domain(dir, "EXAMPLE.COM"));
	test_assert(!dir_is_local_domain(dir, "example.org"));
	struct buf type = BUF_INIT;
	test_assert(dir_domain_type(dir, "example.com", &type) == IX_OK);
	test_assert_str(buf_cstr(&type), "authoritative");
	buf_free(&type);

	struct dir_server *servers;
	size_t count;
	test_assert(dir_servers(dir, &servers, &count) == IX_OK && count == 1);
	test_assert_str(servers[0].host, "mail1.example.com");
	test_assert(servers[0].smtp_port == 2525 && servers[0].imap_port == 1143 && servers[0].pop3_port == 0);
	dir_servers_free(&servers, count);
	test_assert(servers == NULL);

	struct dir_status st;
	dir_status(dir, &st);
	test_assert(st.entries == 4 && st.recipients == 2 && st.changes == 4);

	/* Authentication never reaches the network for an empty password or an offline replica. */
	struct buf error = BUF_INIT;
	test_assert(dir_authenticate(dir, "alice", "", &error) == IX_EAUTH);
	test_assert(dir_authenticate(dir, "alice", "secret", &error) == IX_EUNAVAIL);
	buf_free(&error);
	dir_destroy(&dir);
	test_assert(dir == NULL);
}

static void snapshot_outlives_change(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	add_user(dir, 1, "alice", "alice@example.com", NULL);
	struct dir_recipient r;
	test_assert(dir_resolve(dir, "alice@example.com", &r) == IX_OK);
	/* Change the primary address: the old snapshot stays as it was; the old address is gone. */
	add_user(dir, 1, "alice", "alice.smith@example.com", NULL);
	test_assert_str(r.primary_address, "alice@example.com");
	struct dir_recipient r2;
	test_assert(dir_resolve(dir, "alice@example.com", &r2) == IX_ENOTFOUND);
	test_assert(dir_resolve(dir, "alice.smith@example.com", &r2) == IX_OK);
	dir_recipient_release(&r2);
	del(dir, 1);
	test_assert(dir_resolve(dir, "alice.smith@example.com", &r2) == IX_ENOTFOUND);
	test_assert_str(r.dn, R("uid=alice"));
	dir_recipient_release(&r);
	dir_destroy(&dir);
}

static void expand_nested_loops_duplicates(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	add_user(dir, 1, "alice", "alice@example.com", NULL);
	add_user(dir, 2, "bob", "bob@example.com", NULL);
	add_user(dir, 3, "carol", "carol@example.com", NULL);
	put(dir, entry(4, R("uid=hidden"), "objectClass", "ixMailUser", "objectClass", "ixRecipient", "uid", "hidden",
		       "ixHideFromAddressBook", "TRUE", "mail", "hidden@example.com", END));
	put(dir, entry(5, R("cn=Ext"), "objectClass", "inetOrgPerson", "objectClass", "ixRecipient", "objectClass",
		       "ixContact", "cn", "Ext", "ixTargetAddress", "ext@other.org", "mail", "ext@other.org", END));
	/* all -> (sales, eng, alice); sales -> (alice, bob, eng); eng -> (carol, hidden, all: a loop, ext) */
	add_list(dir, 10, "all", R("cn=sales"), R("cn=eng"), R("uid=alice"), NULL);
	add_list(dir, 11, "sales", R("uid=alice"), "UID=Bob,OU=Recipients,DC=example,DC=com", R("cn=eng"), NULL);
	add_list(dir, 12, "eng", R("uid=carol"), R("uid=hidden"), R("cn=all"), R("cn=Ext"));

	struct dir_expansion x;
	struct buf error = BUF_INIT;
	for (size_t i = 0; i < dir->rep.by_dn.cap; i++) {
		if (dir->rep.by_dn.slots[i].key != NULL)
			test_assert(dir_entry_one_block(dir->rep.by_dn.slots[i].val));
	}
	test_assert(dir_expand(dir, "ALL@example.com", &x, &error) == IX_OK);
	test_assert(x.count == 5);
	test_assert(expansion_has(&x, R("uid=alice")) && expansion_has(&x, R("uid=bob")));
	test_assert(expansion_has(&x, R("uid=carol")) && expansion_has(&x, R("uid=hidden")));
	test_assert(expansion_has(&x, R("cn=Ext")));
	test_assert(x.lists_visited == 3);
	test_assert(x.loops_cut == 2); /* eng met again from all; all met again from eng */
	for (size_t i = 0; i < x.count; i++) {
		if (x.recipients[i].type == DIR_TYPE_CONTACT)
			test_assert_str(x.recipients[i].target_address, "ext@other.org");
	}
	dir_expansion_free(&x);
	test_assert(x.recipients == NULL && x.count == 0);

	/* By DN, and a recipient that is not a list. */
	test_assert(dir_expand(dir, "cn=Eng,ou=Recipients," SUFFIX, &x, &error) == IX_OK);
	test_assert(x.count == 5);
	dir_expansion_free(&x);
	test_assert(dir_expand(dir, "bob@example.com", &x, &error) == IX_OK);
	test_assert(x.count == 1 && x.lists_visited == 0);
	dir_expansion_free(&x);
	test_assert(dir_expand(dir, "nobody@example.com", &x, &error) == IX_ENOTFOUND);

	/* Deleting a user removes it from every list (what refint does and the sync session never shows). */
	del(dir, 2);
	struct dir_recipient r;
	test_assert(dir_lookup_dn(dir, R("cn=sales"), &r) == IX_OK);
	test_assert(r.member_count == 2);
	dir_recipient_release(&r);
	/* A new entry with the same DN is not a member again. */
	add_user(dir, 20, "bob", "bob@example.com", NULL);
	test_assert(dir_expand(dir, "all@example.com", &x, &error) == IX_OK);
	test_assert(x.count == 4 && !expansion_has(&x, R("uid=bob")));
	dir_expansion_free(&x);

	/* A renamed member stays a member under its new DN. */
	put(dir, entry(3, R("uid=carol2"), "objectClass", "ixMailUser", "objectClass", "ixRecipient", "uid", "carol2",
		       "mail", "carol@example.com", END));
	test_assert(dir_lookup_dn(dir, R("cn=eng"), &r) == IX_OK);
	test_assert(r.member_count == 4);
	bool renamed = false;
	for (size_t i = 0; i < r.member_count; i++)
		renamed |= strcmp(r.members[i], R("uid=carol2")) == 0;
	test_assert(renamed);
	dir_recipient_release(&r);

	/* Dangling members are counted, not delivered. */
	add_list(dir, 13, "ghosts", R("uid=nobody"), R("uid=alice"), NULL, NULL);
	test_assert(dir_expand(dir, "ghosts@example.com", &x, &error) == IX_OK);
	test_assert(x.count == 1 && x.unresolved == 1);
	dir_expansion_free(&x);
	buf_free(&error);
	dir_destroy(&dir);
}

static void expand_depth_limit(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	add_user(dir, 1, "alice", "alice@example.com", NULL);
	/* l0 -> l1 -> ... -> l39 -> alice */
	char name[32], next[64];
	for (unsigned i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "l%u", i);
		if (i < 39)
			snprintf(next, sizeof(next), "cn=l%u,ou=Recipients," SUFFIX, i + 1);
		else
			snprintf(next, sizeof(next), "%s", R("uid=alice"));
		add_list(dir, 100 + i, name, next, NULL, NULL, NULL);
	}
	struct dir_expansion x;
	struct buf error = BUF_INIT;
	test_assert(dir_expand(dir, "l0@example.com", &x, &error) == IX_ELIMIT);
	test_assert(strstr(buf_cstr(&error), "nested") != NULL);
	test_assert(x.count == 0 && x.recipients == NULL);
	buf_reset(&error);
	test_assert(dir_expand(dir, "l20@example.com", &x, &error) == IX_OK);
	test_assert(x.count == 1 && x.lists_visited == 20);
	dir_expansion_free(&x);
	/* A list that contains itself. */
	add_list(dir, 200, "self", "cn=self,ou=Recipients," SUFFIX, R("uid=alice"), NULL, NULL);
	test_assert(dir_expand(dir, "self@example.com", &x, &error) == IX_OK);
	test_assert(x.count == 1 && x.loops_cut == 1);
	dir_expansion_free(&x);
	buf_free(&error);
	dir_destroy(&dir);
}

static void sweep_drops_unseen(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	add_user(dir, 1, "alice", "alice@example.com", NULL);
	add_user(dir, 2, "bob", "bob@example.com", NULL);
	add_list(dir, 3, "sales", R("uid=alice"), R("uid=bob"), NULL, NULL);
	unsigned char uuid[16];
	uuid_of(1, uuid);
	test_assert(dir_replica_mark(&dir->rep, uuid, 7));
	uuid_of(3, uuid);
	test_assert(dir_replica_mark(&dir->rep, uuid, 7));
	uuid_of(99, uuid);
	test_assert(!dir_replica_mark(&dir->rep, uuid, 7));
	test_assert(dir_replica_sweep(&dir->rep, 7, NULL, NULL) == 1);
	struct dir_recipient r;
	test_assert(dir_resolve(dir, "bob@example.com", &r) == IX_ENOTFOUND);
	test_assert(dir_resolve(dir, "sales@example.com", &r) == IX_OK);
	test_assert(r.member_count == 1);
	dir_recipient_release(&r);
	test_assert(dir_replica_sweep(&dir->rep, 7, NULL, NULL) == 0);
	dir_destroy(&dir);
}

static void recreated_entry_during_refresh(void)
{
	/* While the replica was away, bob was deleted (refint dropped him from every list without telling sync
	 * consumers), recreated, and added to sales again (which changed sales). In the refresh sales arrives
	 * before the new bob: sales must keep him; ops, not resent, must lose the old bob. */
	struct dir *dir = dir_create_offline(SUFFIX);
	add_user(dir, 1, "bob", "bob@example.com", NULL);
	add_list(dir, 2, "sales", R("uid=bob"), NULL, NULL, NULL);
	add_list(dir, 3, "ops", R("uid=bob"), NULL, NULL, NULL);
	unsigned session = 9;
	struct dir_entry *sales = entry(2, R("cn=sales"), "objectClass", "ixDistributionList", "cn", "sales", "mail",
					"sales@example.com", "member", R("uid=bob"), END);
	sales->mark = sales->loaded = session;
	put(dir, sales);
	struct dir_entry *bob = entry(4, R("uid=bob"), "objectClass", "ixMailUser", "uid", "bob", "mail",
				      "bob@example.com", END);
	bob->mark = bob->loaded = session;
	put(dir, bob);
	struct dir_recipient r;
	test_assert(dir_lookup_dn(dir, R("cn=sales"), &r) == IX_OK);
	test_assert(r.member_count == 1);
	dir_recipient_release(&r);
	test_assert(dir_lookup_dn(dir, R("cn=ops"), &r) == IX_OK);
	test_assert(r.member_count == 0);
	dir_recipient_release(&r);
	dir_destroy(&dir);
}

/* global Sieve scripts: found by name (cn compares without case, as LDAP does), gone once deleted; an entry of
 * another class there and a name that is no RDN value of ours (a path, an empty one) find nothing */
static void sieve_global_scripts(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	const char *text = "require \"fileinto\";\r\nfileinto \"Junk\";\r\n";
	put(dir, entry(1, "cn=spam," DIR_SIEVE_GLOBAL_OU "," SUFFIX, "objectClass", "ixSieveGlobal", "cn", "spam",
		       "ixSieveScript", text, END));
	put(dir, entry(2, "cn=other," DIR_SIEVE_GLOBAL_OU "," SUFFIX, "objectClass", "ixConnector", "cn", "other",
		       "ixSieveScript", "keep;", END));
	char *got = NULL;
	size_t len = 0;
	test_assert(dir_sieve_global(dir, "spam", &got, &len) == IX_OK);
	test_assert(len == strlen(text) && strcmp(got, text) == 0);
	free(got);
	test_assert(dir_sieve_global(dir, "SPAM", &got, &len) == IX_OK);
	free(got);
	test_assert(dir_sieve_global(dir, "other", &got, &len) == IX_ENOTFOUND); /* not of class ixSieveGlobal */
	test_assert(dir_sieve_global(dir, "../spam", &got, &len) == IX_ENOTFOUND);
	test_assert(dir_sieve_global(dir, "", &got, &len) == IX_ENOTFOUND);
	test_assert(dir_sieve_global_name_valid("spam-filter_2.0") && !dir_sieve_global_name_valid("a/b") &&
		    !dir_sieve_global_name_valid("a,b"));
	del(dir, 1);
	test_assert(dir_sieve_global(dir, "spam", &got, &len) == IX_ENOTFOUND);
	dir_destroy(&dir);
}

static void connectors_route_domains(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	const char *base = ",ou=Connectors,ou=Configuration," SUFFIX;
	char dn[256];
	snprintf(dn, sizeof(dn), "cn=internet%s", base);
	put(dir, entry(1, dn, "objectClass", "ixConnector", "cn", "internet", "ixAddressSpace", "*", "ixSmartHost",
		       "relay.isp.net:25", "ixConnectorCost", "10", END));
	snprintf(dn, sizeof(dn), "cn=partner-b%s", base);
	put(dir, entry(2, dn, "objectClass", "ixConnector", "cn", "partner-b", "ixAddressSpace", "*.partner.org",
		       "ixSmartHost", "b.partner.org", "ixConnectorCost", "5", END));
	snprintf(dn, sizeof(dn), "cn=partner-a%s", base);
	put(dir, entry(3, dn, "objectClass", "ixConnector", "cn", "partner-a", "ixAddressSpace", "*.partner.org",
		       "ixAddressSpace", "partner.org", "ixSmartHost", "a.partner.org", "ixConnectorCost", "5", END));
	snprintf(dn, sizeof(dn), "cn=eu%s", base);
	put(dir, entry(4, dn, "objectClass", "ixConnector", "cn", "eu", "ixAddressSpace", "*.eu.partner.org",
		       "ixSmartHost", "eu.partner.org", "ixConnectorCost", "50", END));

	struct dir_connector c;
	test_assert(dir_route_domain(dir, "Partner.ORG", &c) == IX_OK);
	test_assert_str(c.name, "partner-a"); /* exact match */
	dir_connector_free(&c);
	test_assert(dir_route_domain(dir, "mx.partner.org", &c) == IX_OK);
	test_assert_str(c.name, "partner-a"); /* same specificity and cost: by name */
	dir_connector_free(&c);
	test_assert(dir_route_domain(dir, "x.eu.partner.org", &c) == IX_OK);
	test_assert_str(c.name, "eu"); /* more specific beats cheaper */
	test_assert_str(c.smart_host, "eu.partner.org");
	dir_connector_free(&c);
	test_assert(dir_route_domain(dir, "example.net", &c) == IX_OK);
	test_assert_str(c.name, "internet");
	test_assert(c.cost == 10 && c.address_space_count == 1);
	dir_connector_free(&c);
	test_assert(dir_route_domain(dir, "notpartner.org", &c) == IX_OK);
	test_assert_str(c.name, "internet");
	dir_connector_free(&c);
	test_assert(dir_route_domain(dir, "", &c) == IX_ENOTFOUND);

	struct dir_connector *all;
	size_t count;
	test_assert(dir_connectors(dir, &all, &count) == IX_OK && count == 4);
	test_assert_str(all[0].name, "eu");
	test_assert(strcmp(all[2].name, "partner-a") == 0 && all[2].address_space_count == 2);
	dir_connectors_free(&all, count);
	del(dir, 1);
	test_assert(dir_route_domain(dir, "example.net", &c) == IX_ENOTFOUND);
	dir_destroy(&dir);
}

struct stress {
	struct dir *dir;
	atomic_bool stop;
	atomic_ullong lookups, found;
};

static void *stress_reader(void *arg)
{
	struct stress *st = arg;
	unsigned long long lookups = 0, found = 0;
	while (!atomic_load(&st->stop)) {
		struct dir_recipient r;
		if (dir_resolve(st->dir, "alice@example.com", &r) == IX_OK) {
			/* The snapshot stays readable whatever the writer does meanwhile. */
			if (r.primary_address == NULL || strcmp(r.primary_address, "alice@example.com") != 0 ||
			    r.address_count != 2)
				abort();
			found++;
		}
		dir_recipient_release(&r);
		struct dir_expansion x;
		if (dir_expand(st->dir, "sales@example.com", &x, NULL) == IX_OK) {
			for (size_t i = 0; i < x.count; i++) {
				if (x.recipients[i].dn == NULL || strlen(x.recipients[i].dn) < 4)
					abort();
			}
			dir_expansion_free(&x);
		}
		lookups++;
	}
	atomic_fetch_add(&st->lookups, lookups);
	atomic_fetch_add(&st->found, found);
	return NULL;
}

static void concurrent_readers_and_writer(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	add_user(dir, 1, "alice", "alice@example.com", "a1@example.com");
	add_user(dir, 2, "bob", "bob@example.com", NULL);
	add_list(dir, 3, "sales", R("uid=alice"), R("uid=bob"), NULL, NULL);
	struct stress st = { .dir = dir };
	atomic_init(&st.stop, false);
	atomic_init(&st.lookups, 0);
	atomic_init(&st.found, 0);
	pthread_t readers[3];
	for (int i = 0; i < 3; i++)
		test_assert(pthread_create(&readers[i], NULL, stress_reader, &st) == 0);
	for (unsigned round = 0; round < 3000; round++) {
		char secondary[64];
		snprintf(secondary, sizeof(secondary), "a%u@example.com", round % 7);
		add_user(dir, 1, "alice", "alice@example.com", secondary);
		if (round % 10 == 0) {
			del(dir, 2);
			add_user(dir, 2, "bob", "bob@example.com", NULL);
			add_list(dir, 3, "sales", R("uid=alice"), R("uid=bob"), NULL, NULL);
		}
	}
	atomic_store(&st.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(readers[i], NULL);
	/* alice is changed, never removed: every lookup found her */
	test_assert(atomic_load(&st.lookups) > 0 && atomic_load(&st.found) == atomic_load(&st.lookups));
	dir_destroy(&dir);
}

struct seen {
	int adds, modifies, deletes;
	size_t users;
};

static void on_change(void *ctx, enum dir_change_kind kind, enum dir_type type, const char *dn)
{
	struct seen *s = ctx;
	(void)type;
	(void)dn;
	s->adds += kind == DIR_CHANGE_ADD;
	s->modifies += kind == DIR_CHANGE_MODIFY;
	s->deletes += kind == DIR_CHANGE_DELETE;
}

static void count_users(void *ctx, const struct dir_recipient *r)
{
	struct seen *s = ctx;
	s->users += r->type == DIR_TYPE_USER;
}

static void hook_and_foreach(void)
{
	struct dir *dir = dir_create_offline(SUFFIX);
	struct seen s = { 0, 0, 0, 0 };
	dir_set_change_hook(dir, on_change, &s);
	add_user(dir, 1, "alice", "alice@example.com", NULL);
	add_user(dir, 2, "bob", "bob@example.com", NULL);
	add_user(dir, 2, "bob", "bob@example.com", "b@example.com");
	add_list(dir, 3, "sales", R("uid=alice"), NULL, NULL, NULL);
	del(dir, 1);
	del(dir, 42);
	test_assert(s.adds == 3 && s.modifies == 1 && s.deletes == 1);
	test_assert(dir_foreach_recipient(dir, count_users, &s) == 2);
	test_assert(s.users == 1);
	dir_destroy(&dir);
}

static void open_refuses_bad_arguments(void)
{
	struct dir *dir;
	struct buf error = BUF_INIT;
	test_assert(dir_open("not a url", SUFFIX, &dir, &error) == IX_EINVAL);
	test_assert(dir == NULL && error.len > 0);
	buf_reset(&error);
	test_assert(dir_open("ldapi://%2Ftmp%2Fnone", "", &dir, &error) == IX_EINVAL);
	buf_free(&error);
	/* Opening against a socket nobody listens on works; it just never becomes ready. */
	test_assert(dir_open("ldapi://%2Ftmp%2Fix-test-no-such-socket", SUFFIX, &dir, NULL) == IX_OK);
	test_assert(dir_wait_ready(dir, 50) == IX_EUNAVAIL);
	struct dir_status st;
	dir_status(dir, &st);
	test_assert(!st.ready && !st.connected);
	dir_destroy(&dir);
}

TEST_MAIN("dir", TEST_CASE(address_keys), TEST_CASE(dn_normalization), TEST_CASE(hash_map_matches_reference),
	  TEST_CASE(resolve_addresses), TEST_CASE(snapshot_outlives_change), TEST_CASE(expand_nested_loops_duplicates),
	  TEST_CASE(expand_depth_limit), TEST_CASE(sweep_drops_unseen), TEST_CASE(recreated_entry_during_refresh),
	  TEST_CASE(connectors_route_domains), TEST_CASE(sieve_global_scripts),
	  TEST_CASE(concurrent_readers_and_writer), TEST_CASE(hook_and_foreach), TEST_CASE(open_refuses_bad_arguments))
