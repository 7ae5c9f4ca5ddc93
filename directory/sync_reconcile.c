/* sync_reconcile.c - the full reconcile of a sync source of type ldap: its users become mailbox users and its groups
 * (groupOfNames, groupOfUniqueNames) distribution lists, matched to ours by anchor (entryUUID) so that renames keep
 * the recipient; deleted users are disabled and hidden, never removed; conflicts are reported, never overwritten. */
#include "directory/sync_int.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "directory/ldap_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SOURCE_PAGE 500
/* A refresh of at least this many entries is applied in bulk: what our directory holds (names taken, addresses and
 * their owners) read once instead of asked per entry, and the writes sent WRITE_WINDOW at a time without waiting
 * for each answer (docs/sync.md, "Scale"). */
/* slapd runs at most half its threads (olcThreads, 16) of one connection's operations at once and defers the
 * others, logging each deferral: a wider window gains nothing */
#define BULK_MIN 200
#define WRITE_WINDOW 8
/* Ranges of a group's members read at most (Active Directory's member;range=, 1500 values each). */
#define RANGE_ROUNDS_MAX 10000
/* How many pairs of the member map are looked through one by one before it is sorted again (map_find). */
#define MAP_TAIL_MAX 256
/* How often a refresh writes its progress into the source's state (what `sync show` prints), in seconds. */
#define PROGRESS_EVERY 2
/* What each type of source calls users, contacts and groups. */
struct type_rules {
	const char *user_filter, *contact_class, *group_filter;
	const char *const *group_classes;
};
static const char *const ldap_group_classes[] = { "groupOfNames", "groupOfUniqueNames", "posixGroup", NULL };
static const char *const ad_group_classes[] = { "group", NULL };
static const struct type_rules ldap_rules = {
	"(&(objectClass=inetOrgPerson)(uid=*))", "inetOrgPerson",
	"(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))", ldap_group_classes
};
/* Active Directory: computers are users there too; only mail-enabled groups become lists */
static const struct type_rules ad_rules = { "(&(objectClass=user)(sAMAccountName=*)(!(objectClass=computer)))",
					    "contact", "(&(objectClass=group)(|(mail=*)(proxyAddresses=*)))",
					    ad_group_classes };
/* userAccountControl's ACCOUNTDISABLE bit */
#define AD_ACCOUNT_DISABLED 0x2
/* Active Directory's LDAP_SERVER_SHOW_DELETED_OID: tombstones (isDeleted=TRUE) are returned too */
#define AD_SHOW_DELETED_OID "1.2.840.113556.1.4.417"
/* How many lists a check for a loop of nested lists reads at most (beyond, the member is taken as a loop). */
#define LOOP_CHECK_MAX 10000
/* ppolicy's value for an account locked until an administrator unlocks it */
#define LOCKED_FOR_GOOD "000001010000Z"

/* A source DN (normalised) and our DN it maps to; seq: the order they were added in (the latest wins). */
struct map_pair {
	char *src, *our;
	size_t seq;
};

/* What a source entry becomes here. */
enum kind { K_USER, K_LIST, K_CONTACT };

/* One of our recipients from this source. */
struct ours {
	char *dn, *anchor, *name, *remote_dn; /* name: uid of a user, cn of a list or contact */
	char *vals[SA_COUNT];                 /* what the entry holds for each mapped attribute (addresses aside) */
	char **proxies, **members;
	enum kind kind;
	int deleted, locked, seen, renamed; /* locked: pwdAccountLockedTime set (deleted or disabled at the source) */
};

struct src_entry {
	char *dn, *anchor, *vals[SA_COUNT];
	char **addresses;   /* primary first */
	char **members;     /* groups: member and uniqueMember DNs */
	char **member_uids; /* posixGroup: memberUid values (logins at the source) */
	int disabled;       /* ad: userAccountControl's disabled bit */
};

struct src_set {
	struct src_entry *e;
	size_t n, cap;
};

/* A set of strings (ASCII case folded), each with a value: open addressing, grown at half full. */
struct strmap {
	char **keys, **vals;
	size_t cap, n;
};

/* A write sent and not yet answered (bulk mode). */
struct pending {
	int msgid;
	int add;           /* an add (else a change of a list's members) */
	enum kind kind;    /* an add: what it adds */
	char *dn, *src_dn; /* ours, and the source entry's (for the member map and problems) */
	struct ours *list; /* a change of members: our list when it existed before (counted as changed) */
};

/* A reconcile session (struct sync_apply of sync_int.h): our connection, the source's settings and connection, and
 * what a run read from the source. */
struct sync_apply {
	struct prov *p;
	LDAP *ours_ld, *src;
	const struct config *cfg;
	struct sync_conf conf;
	struct ours *ours;
	size_t nours;
	/* source DN (normalised) -> our DN, for list members; sorted by source DN when looked up */
	struct map_pair *map;
	size_t nmap, map_cap, map_sorted; /* map_sorted: how many entries the last sort covered */
	/* bulk mode (BULK_MIN): the DNs taken under ou=Recipients and the owner of each address, read once */
	int bulk;
	struct strmap taken, owners;
	struct pending window[WRITE_WINDOW];
	size_t nwindow;
	/* progress written into the source's state (a refresh followed by the attendant) */
	int progress_state;
	time_t progress_at, progress_start;
	struct buf problems;
	size_t nproblems;
	char last_change[32];
	struct src_set *collecting;                           /* where source_search's entries go */
	void (*each)(struct sync_apply *run, LDAPMessage *e); /* what source_search does with each entry */
	struct sync_result *r, own_result;
	sync_progress_fn *progress;
	void *pctx;
	/* live changes (sync_follow.c): the refresh phase's entries, the anchors it said are present, the bases */
	struct src_set users, groups;
	char **present;
	size_t npresent;
	char *users_base, *groups_base; /* normalised (dn_norm) */
	int anchor_is_uuid;             /* the anchor is entryUUID, which RFC 4533's messages carry */
	int applied;                    /* changes applied since the last sync_apply_finish */
	int counted; /* r's users, disabled, lists and contacts were counted in the directory and kept since */
	const struct type_rules *rules;
	int is_ad;
	unsigned long long usn; /* ad: the highest uSNChanged seen */
};

static void problem(struct sync_apply *run, int conflict, const char *fmt, ...) IX_PRINTF(3, 4);
static void problem(struct sync_apply *run, int conflict, const char *fmt, ...)
{
	if (conflict)
		run->r->conflicts++;
	else
		run->r->errors++;
	if (run->nproblems++ >= SYNC_MAX_PROBLEMS)
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_append_str(&run->problems, conflict ? "conflict: " : "error: ");
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		fatal("out of memory");
	va_end(ap);
	buf_append_str(&run->problems, s);
	buf_append(&run->problems, "\n", 1);
	free(s);
}

/* A DN in one form for comparisons: LDAPv3 string form, ASCII lower case; a new string (a copy when unparsable). */
static char *dn_norm(const char *dn)
{
	char *out = NULL;
	if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAPV3, &out, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || out == NULL) {
		out = NULL;
	}
	char *s = xstrdup(out != NULL ? out : dn);
	ldap_memfree(out);
	for (char *c = s; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return s;
}

/* ---- struct strmap ---- */

static size_t strmap_slot(const struct strmap *m, const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over the case-folded key */
	for (const char *c = key; *c != '\0'; c++)
		h = (h ^ (unsigned char)tolower((unsigned char)*c)) * 1099511628211ull;
	size_t i = (size_t)h & (m->cap - 1);
	while (m->keys[i] != NULL && strcasecmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* The value of key (NULL when absent; "" for a key put without one). */
static const char *strmap_get(const struct strmap *m, const char *key)
{
	if (m->cap == 0)
		return NULL;
	size_t i = strmap_slot(m, key);
	return m->keys[i] != NULL ? m->vals[i] : NULL;
}

/* Puts key with a copy of val (NULL: "") unless key is there already (the first value stays). */
static void strmap_put(struct strmap *m, const char *key, const char *val)
{
	if (2 * (m->n + 1) > m->cap) {
		struct strmap bigger = { .cap = m->cap ? m->cap * 2 : 1024 };
		bigger.keys = xcalloc(bigger.cap, sizeof(char *));
		bigger.vals = xcalloc(bigger.cap, sizeof(char *));
		for (size_t i = 0; i < m->cap; i++) {
			if (m->keys[i] != NULL) {
				size_t j = strmap_slot(&bigger, m->keys[i]);
				bigger.keys[j] = m->keys[i];
				bigger.vals[j] = m->vals[i];
			}
		}
		bigger.n = m->n;
		free(m->keys);
		free(m->vals);
		*m = bigger;
	}
	size_t i = strmap_slot(m, key);
	if (m->keys[i] != NULL)
		return;
	m->keys[i] = xstrdup(key);
	m->vals[i] = xstrdup(val != NULL ? val : "");
	m->n++;
}

static void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->keys[i]);
		free(m->vals[i]);
	}
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static int cmp_ours(const void *a, const void *b)
{
	return strcasecmp(((const struct ours *)a)->anchor, ((const struct ours *)b)->anchor);
}

static struct ours *find_ours(struct sync_apply *run, const char *anchor, enum kind kind)
{
	struct ours key = { .anchor = (char *)anchor };
	struct ours *o = bsearch(&key, run->ours, run->nours, sizeof(*run->ours), cmp_ours);
	return o != NULL && o->kind == kind ? o : NULL;
}

static void map_add(struct sync_apply *run, const char *src_dn, const char *our_dn)
{
	if (run->nmap == run->map_cap) {
		run->map_cap = run->map_cap ? run->map_cap * 2 : 64;
		run->map = xrealloc(run->map, sizeof(*run->map) * run->map_cap);
	}
	run->map[run->nmap] = (struct map_pair){ dn_norm(src_dn), xstrdup(our_dn), run->nmap };
	run->nmap++;
}

/* By source DN, and the latest added first among equal ones. */
static int cmp_pair(const void *a, const void *b)
{
	const struct map_pair *x = a, *y = b;
	int c = strcmp(x->src, y->src);
	return c != 0 ? c : (x->seq < y->seq) - (x->seq > y->seq);
}

static const char *map_find(struct sync_apply *run, const char *src_dn)
{
	/* the pairs added since the last sort are looked through one by one, the latest first, until there are more
	 * than MAP_TAIL_MAX of them (lists added one by one between look-ups would otherwise sort the map each time) */
	if (run->nmap - run->map_sorted > MAP_TAIL_MAX) {
		qsort(run->map, run->nmap, sizeof(*run->map), cmp_pair);
		run->map_sorted = run->nmap;
	}
	char *key = dn_norm(src_dn);
	const char *found = NULL;
	for (size_t i = run->nmap; i > run->map_sorted && found == NULL; i--) {
		if (strcmp(run->map[i - 1].src, key) == 0)
			found = run->map[i - 1].our;
	}
	size_t lo = 0, hi = run->map_sorted; /* the first pair not below the key: the latest added of its DN */
	while (found == NULL && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(run->map[mid].src, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (found == NULL && lo < run->map_sorted && strcmp(run->map[lo].src, key) == 0)
		found = run->map[lo].our;
	free(key);
	return found;
}

/* The members of the group s that are users here (our DNs), as the add of its list carries them; its lists and
 * contacts (which may not exist yet) and posixGroup's memberUid are left to set_members. */
static char **user_members(struct sync_apply *run, const struct src_entry *s)
{
	char **out = NULL;
	size_t n = 0;
	for (size_t i = 0; s->members != NULL && s->members[i] != NULL; i++) {
		const char *m = map_find(run, s->members[i]);
		if (m != NULL && strncasecmp(m, "uid=", 4) == 0)
			ldapu_values_push(&out, &n, m);
	}
	return out;
}

static void load_one(void *ctx, LDAP *ld, LDAPMessage *e)
{
	struct sync_apply *run = ctx;
	char *anchor = ldapu_get_first(ld, e, "ixSyncAnchor");
	if (anchor == NULL)
		return;
	if ((run->nours & (run->nours - 1)) == 0) /* grown at each power of two */
		run->ours = xrealloc(run->ours, sizeof(*run->ours) * (run->nours ? run->nours * 2 : 1));
	struct ours *o = &run->ours[run->nours++];
	memset(o, 0, sizeof(*o));
	char *dn = ldap_get_dn(ld, e);
	o->dn = xstrdup(dn);
	ldap_memfree(dn);
	o->anchor = anchor;
	char *deleted = ldapu_get_first(ld, e, "ixSyncDeleted");
	char *locked = ldapu_get_first(ld, e, "pwdAccountLockedTime");
	o->deleted = deleted != NULL;
	o->locked = locked != NULL;
	free(deleted);
	free(locked);
	char **oc = ldapu_get_values(ld, e, "objectClass", NULL);
	for (size_t i = 0; oc[i] != NULL; i++) {
		if (strcasecmp(oc[i], "ixDistributionList") == 0)
			o->kind = K_LIST;
		else if (strcasecmp(oc[i], "ixContact") == 0)
			o->kind = K_CONTACT;
	}
	ldapu_values_free(&oc);
	for (int i = 0; i < SA_COUNT; i++) {
		if (i != SA_ADDRESSES && i != SA_ANCHOR && i != SA_MAIL)
			o->vals[i] = ldapu_get_first(ld, e, sync_attr_names[i]);
	}
	const char *name = o->kind == K_USER ? o->vals[SA_LOGIN] : o->vals[SA_CN];
	o->name = xstrdup(name != NULL ? name : "");
	o->remote_dn = ldapu_get_first(ld, e, "ixSyncRemoteDn");
	o->proxies = ldapu_get_values(ld, e, "ixProxyAddresses", NULL);
	o->members = ldapu_get_values(ld, e, "member", NULL);
}

/* Reads our recipients from this source (those matching the filter extra too, when not NULL), sorted by anchor;
 * in pages, so that a large source's recipients are never all in one answer at once. */
static int load_ours(struct sync_apply *run, const char *extra, struct buf *error_r)
{
	struct buf f = BUF_INIT;
	buf_append_str(&f, "(&(ixSyncedFrom=");
	ldapu_escape_filter(&f, run->conf.dn, strlen(run->conf.dn));
	buf_printf(&f, ")%s)", extra != NULL ? extra : "");
	const char *attrs[SA_COUNT + 8] = { "ixSyncAnchor",     "ixSyncDeleted",  "objectClass",         "member",
					    "ixProxyAddresses", "ixSyncRemoteDn", "pwdAccountLockedTime" };
	size_t na = 7;
	for (int i = 0; i < SA_COUNT; i++) {
		if (i != SA_ADDRESSES && i != SA_ANCHOR && i != SA_MAIL)
			attrs[na++] = sync_attr_names[i];
	}
	attrs[na] = NULL;
	char *base = xasprintf("ou=Recipients,%s", run->cfg->suffix);
	int ret = ldapu_search_paged(run->ours_ld, base, f.data, attrs, SOURCE_PAGE, NULL, load_one, run, error_r);
	free(base);
	buf_free(&f);
	if (ret == IX_ENOTFOUND) {
		buf_reset(error_r);
		ret = IX_OK;
	}
	if (run->ours == NULL)
		run->ours = xcalloc(1, sizeof(*run->ours));
	qsort(run->ours, run->nours, sizeof(*run->ours), cmp_ours);
	return ret;
}

static void ours_free(struct sync_apply *run)
{
	for (size_t i = 0; i < run->nours; i++) {
		struct ours *o = &run->ours[i];
		free(o->dn);
		free(o->anchor);
		free(o->name);
		free(o->remote_dn);
		for (int j = 0; j < SA_COUNT; j++)
			free(o->vals[j]);
		ldapu_values_free(&o->proxies);
		ldapu_values_free(&o->members);
	}
	free(run->ours);
	for (size_t i = 0; i < run->nmap; i++) {
		free(run->map[i].src);
		free(run->map[i].our);
	}
	free(run->map);
	run->ours = NULL;
	run->nours = run->nmap = run->map_cap = run->map_sorted = 0;
	run->map = NULL;
}

/* Maps the source DN of each recipient loaded that is not disabled to ours (what a change of a group's members
 * needs when the users are not read with it). */
static void map_prefill(struct sync_apply *run)
{
	for (size_t i = 0; i < run->nours; i++) {
		if (run->ours[i].remote_dn != NULL && !run->ours[i].deleted)
			map_add(run, run->ours[i].remote_dn, run->ours[i].dn);
	}
}

static void source_entry(void *ctx, LDAP *ld, LDAPMessage *e)
{
	(void)ld;
	struct sync_apply *run = ctx;
	run->each(run, e);
}

/* Searches the source in pages (its size limit applies per page); each(run, entry) for every entry. IX_OK only when
 * the search went through to its end. */
static int source_search(struct sync_apply *run, const char *base, const char *filter, const char *const *attrs,
			 int show_deleted, void (*each)(struct sync_apply *run, LDAPMessage *e), struct buf *error_r)
{
	/* tombstones: asked for without insisting, so a server that does not know the control answers anyway */
	LDAPControl show = { .ldctl_oid = (char *)AD_SHOW_DELETED_OID, .ldctl_iscritical = 0 };
	run->each = each;
	return ldapu_search_paged(run->src, base, filter, attrs, SOURCE_PAGE, show_deleted ? &show : NULL, source_entry,
				  run, error_r);
}

/* ---- what the source holds ---- */

static void note_change(struct sync_apply *run, LDAPMessage *e)
{
	char *ts = ldapu_get_first(run->src, e, "modifyTimestamp");
	if (ts != NULL && strlen(ts) < sizeof(run->last_change) && strcmp(ts, run->last_change) > 0)
		snprintf(run->last_change, sizeof(run->last_change), "%s", ts);
	free(ts);
}

/* Whether a further address is typed and of a type other than smtp (Active Directory's proxyAddresses: X500:,
 * SIP:, X400:, EUM: ...): TYPE: before any '@', TYPE letters and digits. */
static int foreign_address(const char *v)
{
	const char *colon = strchr(v, ':'), *at = strchr(v, '@');
	if (colon == NULL || (at != NULL && at < colon) || colon == v || colon - v > 16)
		return 0;
	for (const char *c = v; c < colon; c++) {
		if (!isalnum((unsigned char)*c))
			return 0;
	}
	return strncasecmp(v, "smtp:", 5) != 0;
}

/* The anchor of a source entry: objectGUID's 16 bytes in Active Directory's string form (the first three fields
 * little-endian), any other attribute's first value as it is; a new string or NULL. */
static char *anchor_of(struct sync_apply *run, LDAPMessage *e)
{
	const char *attr = run->conf.their[SA_ANCHOR];
	if (strcasecmp(attr, "objectGUID") != 0)
		return ldapu_get_first(run->src, e, attr);
	struct berval **v = ldap_get_values_len(run->src, e, attr);
	char *out = NULL;
	if (v != NULL && v[0] != NULL && v[0]->bv_len == 16) {
		const unsigned char *b = (const unsigned char *)v[0]->bv_val;
		out = xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[3], b[2],
				b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
				b[15]);
	}
	ldap_value_free_len(v);
	return out;
}

static void note_usn(struct sync_apply *run, const char *usn)
{
	unsigned long long u = usn != NULL ? strtoull(usn, NULL, 10) : 0;
	if (u > run->usn)
		run->usn = u;
}

/* Active Directory answers a group of more than 1500 members (its MaxValRange) with member;range=0-1499 in place of
 * member; the next values are asked for as member;range=1500-*, and so on until a range ends with *. Appends what
 * the ranges hold to s->members (*nm of them). */
static void ranged_members(struct sync_apply *run, LDAPMessage *e, struct src_entry *s, size_t *nm)
{
	LDAPMessage *res = NULL;
	for (int round = 0; e != NULL && round < RANGE_ROUNDS_MAX; round++) {
		unsigned long next = 0;
		int found = 0, last = 1;
		BerElement *ber = NULL;
		for (char *a = ldap_first_attribute(run->src, e, &ber); a != NULL;
		     a = ldap_next_attribute(run->src, e, ber)) {
			if (strncasecmp(a, "member;range=", 13) == 0) {
				found = 1;
				char **v = ldapu_get_values(run->src, e, a, NULL);
				for (size_t i = 0; v[i] != NULL; i++)
					ldapu_values_push(&s->members, nm, v[i]);
				ldapu_values_free(&v);
				const char *dash = strchr(a + 13, '-');
				last = dash == NULL || dash[1] == '*';
				if (!last)
					next = strtoul(dash + 1, NULL, 10) + 1;
			}
			ldap_memfree(a);
		}
		ber_free(ber, 0);
		ldap_msgfree(res); /* the previous range's answer, done with */
		res = NULL;
		if (!found || last)
			break;
		char *attr = xasprintf("member;range=%lu-*", next);
		const char *attrs[] = { attr, NULL };
		struct buf err = BUF_INIT;
		e = NULL;
		if (ldapu_search(run->src, s->dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, &err) == IX_OK)
			e = ldapu_first_entry(run->src, res);
		else
			problem(run, 0, "%s: cannot read its members from the %luth on: %s", s->dn, next + 1,
				buf_cstr(&err));
		free(attr);
		buf_free(&err);
	}
	ldap_msgfree(res);
}

static void collect(struct sync_apply *run, LDAPMessage *e)
{
	struct src_set *set = run->collecting;
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 64;
		set->e = xrealloc(set->e, sizeof(*set->e) * set->cap);
	}
	struct src_entry *s = &set->e[set->n++];
	memset(s, 0, sizeof(*s));
	char *dn = ldap_get_dn(run->src, e);
	s->dn = xstrdup(dn != NULL ? dn : "");
	ldap_memfree(dn);
	for (int i = 0; i < SA_COUNT; i++) {
		if (run->conf.their[i] != NULL && i != SA_MAIL && i != SA_ADDRESSES)
			s->vals[i] = ldapu_get_first(run->src, e, run->conf.their[i]);
	}
	s->anchor = anchor_of(run, e);
	if (run->is_ad) {
		char *uac = ldapu_get_first(run->src, e, "userAccountControl"),
		     *usn = ldapu_get_first(run->src, e, "uSNChanged");
		s->disabled = uac != NULL && (strtoul(uac, NULL, 10) & AD_ACCOUNT_DISABLED) != 0;
		note_usn(run, usn);
		free(uac);
		free(usn);
	}
	size_t na = 0;
	char **mail = run->conf.their[SA_MAIL] ? ldapu_get_values(run->src, e, run->conf.their[SA_MAIL], NULL) : NULL;
	char **more = run->conf.their[SA_ADDRESSES] ? ldapu_get_values(run->src, e, run->conf.their[SA_ADDRESSES], NULL)
						    : NULL;
	/* an SMTP: (upper case) value of the further addresses names the primary; else the first mail */
	for (size_t i = 0; more != NULL && more[i] != NULL; i++) {
		if (strncmp(more[i], "SMTP:", 5) == 0)
			ldapu_values_push(&s->addresses, &na, more[i] + 5);
	}
	for (size_t i = 0; mail != NULL && mail[i] != NULL; i++)
		ldapu_values_push(&s->addresses, &na, mail[i]);
	for (size_t i = 0; more != NULL && more[i] != NULL; i++) {
		if (strncmp(more[i], "SMTP:", 5) == 0 || foreign_address(more[i]))
			continue; /* X500:, SIP:, X400: ... are not mail addresses */
		ldapu_values_push(&s->addresses, &na, strncasecmp(more[i], "smtp:", 5) == 0 ? more[i] + 5 : more[i]);
	}
	ldapu_values_free(&mail);
	ldapu_values_free(&more);
	size_t nm = 0;
	char **member = ldapu_get_values(run->src, e, "member", NULL);
	char **unique = ldapu_get_values(run->src, e, "uniqueMember", NULL);
	for (size_t i = 0; member[i] != NULL; i++)
		ldapu_values_push(&s->members, &nm, member[i]);
	for (size_t i = 0; unique[i] != NULL; i++) {
		char *hash = strrchr(unique[i], '#'); /* nameAndOptionalUID: DN#'0101'B */
		if (hash != NULL && hash[1] == '\'')
			*hash = '\0';
		ldapu_values_push(&s->members, &nm, unique[i]);
	}
	if (run->is_ad && member[0] == NULL)
		ranged_members(run, e, s, &nm);
	ldapu_values_free(&member);
	ldapu_values_free(&unique);
	s->member_uids = ldapu_get_values(run->src, e, "memberUid", NULL);
	note_change(run, e);
}

static void src_set_free(struct src_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->e[i].dn);
		free(set->e[i].anchor);
		for (int j = 0; j < SA_COUNT; j++)
			free(set->e[i].vals[j]);
		ldapu_values_free(&set->e[i].addresses);
		ldapu_values_free(&set->e[i].members);
		ldapu_values_free(&set->e[i].member_uids);
	}
	free(set->e);
}

static char **source_attrs(struct sync_apply *run);

static int read_source(struct sync_apply *run, const char *base, const char *filter, struct src_set *set,
		       struct buf *error_r)
{
	char **attrs = source_attrs(run);
	run->collecting = set;
	int ret = source_search(run, base, filter, (const char *const *)attrs, 0, collect, error_r);
	run->collecting = NULL;
	ldapu_values_free(&attrs);
	return ret;
}

/* ---- writing our side ---- */

static void taken_one(void *ctx, LDAP *ld, LDAPMessage *e)
{
	struct sync_apply *run = ctx;
	char *dn = ldap_get_dn(ld, e), *n = dn_norm(dn != NULL ? dn : "");
	strmap_put(&run->taken, n, NULL);
	free(n);
	ldap_memfree(dn);
}

static void owners_one(void *ctx, LDAP *ld, LDAPMessage *e)
{
	struct sync_apply *run = ctx;
	char *dn = ldap_get_dn(ld, e);
	char **mail = ldapu_get_values(ld, e, "mail", NULL),
	     **proxies = ldapu_get_values(ld, e, "ixProxyAddresses", NULL);
	for (size_t i = 0; dn != NULL && mail[i] != NULL; i++)
		strmap_put(&run->owners, mail[i], dn);
	for (size_t i = 0; dn != NULL && proxies[i] != NULL; i++) {
		if (strncasecmp(proxies[i], "smtp:", 5) == 0) /* as prov_address_owner matches them */
			strmap_put(&run->owners, proxies[i] + 5, dn);
	}
	ldapu_values_free(&mail);
	ldapu_values_free(&proxies);
	ldap_memfree(dn);
}

/* Bulk mode: reads once the DNs taken under ou=Recipients and the owner of every address in our directory, which
 * the checks of each entry then look up here instead of asking the directory (the unique overlay still has the last
 * word on addresses). Without them (a failure), the checks ask the directory as for a few entries. */
static void bulk_begin(struct sync_apply *run)
{
	struct buf err = BUF_INIT;
	char *base = xasprintf("ou=Recipients,%s", run->cfg->suffix);
	const char *none[] = { LDAP_NO_ATTRS, NULL }, *addrs[] = { "mail", "ixProxyAddresses", NULL };
	int ret = ldapu_search_paged(run->ours_ld, base, "(objectClass=*)", none, SOURCE_PAGE, NULL, taken_one, run,
				     &err);
	if (ret == IX_OK)
		ret = ldapu_search_paged(run->ours_ld, run->cfg->suffix, "(|(mail=*)(ixProxyAddresses=*))", addrs,
					 SOURCE_PAGE, NULL, owners_one, run, &err);
	if (ret == IX_OK) {
		run->bulk = 1;
	} else {
		log_warn("sync %s: reading our recipients at once failed (each is checked alone): %s", run->conf.name,
			 buf_cstr(&err));
		strmap_free(&run->taken);
		strmap_free(&run->owners);
	}
	free(base);
	buf_free(&err);
}

/* The recipient that owns address (a new string), NULL when none does. */
static char *owner_of(struct sync_apply *run, const char *address)
{
	if (!run->bulk)
		return prov_address_owner(run->p, address);
	const char *o = strmap_get(&run->owners, address);
	return o != NULL ? xstrdup(o) : NULL;
}

/* Whether an entry of ours has the DN dn. */
static int dn_taken(struct sync_apply *run, const char *dn)
{
	if (!run->bulk)
		return ldapu_entry_matches(run->ours_ld, dn, "(objectClass=*)");
	char *n = dn_norm(dn);
	int taken = strmap_get(&run->taken, n) != NULL;
	free(n);
	return taken;
}

/* Bulk mode: notes that dn is ours now, with the addresses proxies (SMTP:/smtp: values). */
static void note_ours(struct sync_apply *run, const char *dn, char **proxies)
{
	if (!run->bulk)
		return;
	char *n = dn_norm(dn);
	strmap_put(&run->taken, n, NULL);
	free(n);
	for (size_t i = 0; proxies != NULL && proxies[i] != NULL; i++)
		strmap_put(&run->owners, proxies[i] + 5, dn);
}

/* Keeps r's counts of our recipients after a change (users, lists or contacts: n, and disabled users: disabled),
 * so that a batch of live changes need not count them all again (a source of 100,000 users takes seconds). */
static void count(struct sync_apply *run, enum kind kind, int n, int disabled)
{
	size_t *v = kind == K_USER ? &run->r->users : kind == K_LIST ? &run->r->lists : &run->r->contacts;
	if (n > 0 || *v > 0)
		*v += (size_t)(ptrdiff_t)n;
	if (disabled > 0 || run->r->disabled > 0)
		run->r->disabled += (size_t)(ptrdiff_t)disabled;
}

/* The answer to the write w (rc): counted, the member map filled, or a problem reported. */
static void write_done(struct sync_apply *run, const struct pending *w, int rc)
{
	if (w->add && rc == LDAP_SUCCESS) {
		run->r->added++;
		count(run, w->kind, 1, 0);
		map_add(run, w->src_dn, w->dn);
	} else if (w->add && rc == LDAP_CONSTRAINT_VIOLATION) {
		problem(run, 1, "%s: an address was taken meanwhile (%s); will be tried again", w->src_dn,
			ldap_err2string(rc));
	} else if (w->add) {
		problem(run, 0, "%s: cannot add %s: %s", w->src_dn, w->dn, ldap_err2string(rc));
	} else if (rc != LDAP_SUCCESS) {
		problem(run, 0, "%s: cannot set the members of %s: %s", w->src_dn, w->dn, ldap_err2string(rc));
	} else if (w->list != NULL) {
		run->r->changed++;
	}
}

/* Waits for the answer to one write of the window. */
static void window_wait_one(struct sync_apply *run)
{
	struct timeval tv = { LDAPU_TIMEOUT_SECS, 0 };
	LDAPMessage *res = NULL;
	int type = ldap_result(run->ours_ld, LDAP_RES_ANY, LDAP_MSG_ALL, &tv, &res);
	if (type <= 0) { /* the connection failed or slapd does not answer: every write still out has failed */
		ldap_msgfree(res);
		int rc = type == 0 ? LDAP_TIMEOUT : LDAP_SERVER_DOWN;
		for (size_t i = 0; i < run->nwindow; i++) {
			write_done(run, &run->window[i], rc);
			free(run->window[i].dn);
			free(run->window[i].src_dn);
		}
		run->nwindow = 0;
		return;
	}
	int msgid = ldap_msgid(res), rc = LDAP_OTHER;
	ldap_parse_result(run->ours_ld, res, &rc, NULL, NULL, NULL, NULL, 1);
	for (size_t i = 0; i < run->nwindow; i++) {
		if (run->window[i].msgid != msgid)
			continue;
		write_done(run, &run->window[i], rc);
		free(run->window[i].dn);
		free(run->window[i].src_dn);
		run->window[i] = run->window[--run->nwindow];
		break;
	}
}

/* Waits for every write of the window. */
static void window_drain(struct sync_apply *run)
{
	while (run->nwindow > 0)
		window_wait_one(run);
}

/* Sends an add (add) or a modify of our entry dn for the source entry src_dn: in bulk mode without waiting (the
 * answer is handled by write_done when the window is full or drained), else waiting for it. */
static void write_entry(struct sync_apply *run, int add, enum kind kind, const char *dn, const char *src_dn,
			LDAPMod **mods, struct ours *list)
{
	struct pending w = { .add = add, .kind = kind, .dn = (char *)dn, .src_dn = (char *)src_dn, .list = list };
	int rc;
	if (!run->bulk) {
		rc = add ? ldap_add_ext_s(run->ours_ld, dn, mods, NULL, NULL)
			 : ldap_modify_ext_s(run->ours_ld, dn, mods, NULL, NULL);
		write_done(run, &w, rc);
		return;
	}
	if (run->nwindow == WRITE_WINDOW)
		window_wait_one(run);
	rc = add ? ldap_add_ext(run->ours_ld, dn, mods, NULL, NULL, &w.msgid)
		 : ldap_modify_ext(run->ours_ld, dn, mods, NULL, NULL, &w.msgid);
	if (rc != LDAP_SUCCESS) {
		write_done(run, &w, rc);
		return;
	}
	w.dn = xstrdup(dn);
	w.src_dn = xstrdup(src_dn);
	run->window[run->nwindow++] = w;
}

static void bulk_end(struct sync_apply *run)
{
	window_drain(run);
	run->bulk = 0;
	strmap_free(&run->taken);
	strmap_free(&run->owners);
}

/* The addresses of s that no other recipient holds (our_dn: the recipient they are for, NULL for a new one), as
 * ixProxyAddresses values (SMTP:primary first); each address held elsewhere is a conflict. */
static char **free_proxies(struct sync_apply *run, const struct src_entry *s, const char *our_dn, size_t *n_r)
{
	char **out = NULL;
	size_t n = 0;
	for (size_t i = 0; s->addresses != NULL && s->addresses[i] != NULL; i++) {
		const char *a = s->addresses[i];
		if (!prov_address_valid(a)) {
			problem(run, 0, "%s: \"%s\" is not an e-mail address; left out", s->dn, a);
			continue;
		}
		int dup = 0;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcasecmp(out[j] + 5, a) == 0;
		if (dup)
			continue;
		char *owner = owner_of(run, a);
		if (owner != NULL && (our_dn == NULL || strcasecmp(owner, our_dn) != 0)) {
			problem(run, 1, "%s: the address %s belongs to %s; left out", s->dn, a, owner);
			free(owner);
			continue;
		}
		free(owner);
		char *v = xasprintf("%s:%s", n == 0 ? "SMTP" : "smtp", a);
		ldapu_values_push(&out, &n, v);
		free(v);
	}
	*n_r = n;
	return out;
}

/* Whether two value arrays hold the same values (case-sensitive for the SMTP:/smtp: marker, not the address). */
static int same_values(char **a, char **b, int addresses)
{
	size_t na = 0, nb = 0;
	while (a != NULL && a[na] != NULL)
		na++;
	while (b != NULL && b[nb] != NULL)
		nb++;
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		int found = 0;
		for (size_t j = 0; j < nb && !found; j++)
			found = addresses ? strncmp(a[i], b[j], 4) == 0 && strcasecmp(a[i] + 4, b[j] + 4) == 0
					  : strcasecmp(a[i], b[j]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

/* The value a user's attribute takes: the source's, else what the entry needs (cn and sn are required). */
static const char *want(const struct src_entry *s, int a)
{
	if (s->vals[a] != NULL)
		return s->vals[a];
	if (a == SA_CN || a == SA_DISPLAY)
		return s->vals[SA_CN] != NULL ? s->vals[SA_CN] : s->vals[SA_LOGIN];
	if (a == SA_SURNAME)
		return s->vals[SA_CN] != NULL ? s->vals[SA_CN] : s->vals[SA_LOGIN];
	return NULL;
}

static const int user_attrs[] = { SA_GIVEN, SA_SURNAME, SA_CN, SA_DISPLAY, SA_TITLE, SA_PHONE, SA_PRINCIPAL };
static const int list_attrs[] = { SA_DISPLAY };
static const int contact_attrs[] = { SA_GIVEN, SA_SURNAME, SA_DISPLAY, SA_TITLE, SA_PHONE };

static void add_values(LDAPMod ***mods, size_t *n, const struct src_entry *s, const int *attrs, size_t nattrs)
{
	for (size_t i = 0; i < nattrs; i++) {
		const char *v = want(s, attrs[i]);
		if (v != NULL)
			ldapu_mod_add(mods, n, LDAP_MOD_ADD, sync_attr_names[attrs[i]], ldapu_values1(v));
	}
}

/* Adds our entry dn for s (proxies: its addresses, consumed); once added, it goes into the member map. */
static void add_entry(struct sync_apply *run, const struct src_entry *s, const char *dn, enum kind kind, char **proxies)
{
	LDAPMod **mods = NULL;
	size_t n = 0, noc = 0;
	char **oc = NULL;
	if (kind == K_LIST) {
		ldapu_values_push(&oc, &noc, "ixDistributionList");
	} else {
		ldapu_values_push(&oc, &noc, "inetOrgPerson");
		ldapu_values_push(&oc, &noc, kind == K_USER ? "ixMailUser" : "ixContact");
		if (kind == K_USER && want(s, SA_PRINCIPAL) != NULL) /* the class of ixUserPrincipalName */
			ldapu_values_push(&oc, &noc, "ixKerberosPrincipal");
	}
	ldapu_values_push(&oc, &noc, "ixRecipient");
	ldapu_values_push(&oc, &noc, "ixSyncedRecipient");
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", oc);
	if (kind == K_LIST) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1(s->vals[SA_CN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixNickname", ldapu_values1(s->vals[SA_CN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "displayName", ldapu_values1(want(s, SA_DISPLAY)));
		char **members = user_members(run, s); /* one write for a new list of users, not two */
		if (members != NULL)
			ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "member", members);
	} else if (kind == K_CONTACT) { /* mail goes to its address outside; proxies[0] is there (reconcile_one) */
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1(s->vals[SA_CN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixNickname", ldapu_values1(s->vals[SA_CN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixTargetAddress", ldapu_values1(proxies[0] + 5));
		add_values(&mods, &n, s, contact_attrs, IX_ARRAY_LEN(contact_attrs));
	} else {
		char guid[33];
		prov_mailbox_guid_new(guid);
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "uid", ldapu_values1(s->vals[SA_LOGIN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixNickname", ldapu_values1(s->vals[SA_LOGIN]));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixMailboxGuid", ldapu_values1(guid));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixHomeServer", ldapu_values1(run->cfg->server_dn));
		add_values(&mods, &n, s, user_attrs, IX_ARRAY_LEN(user_attrs));
		if (s->disabled) { /* disabled at the source: sign-in refused, hidden */
			ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "pwdAccountLockedTime", ldapu_values1(LOCKED_FOR_GOOD));
			ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixHideFromAddressBook", ldapu_values1("TRUE"));
		}
	}
	if (proxies != NULL) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "mail", ldapu_values1(proxies[0] + 5));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixProxyAddresses", proxies);
	}
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncedFrom", ldapu_values1(run->conf.dn));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncAnchor", ldapu_values1(s->anchor));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncRemoteDn", ldapu_values1(s->dn));
	note_ours(run, dn, proxies);
	write_entry(run, 1, kind, dn, s->dn, mods, NULL);
	ldapu_mods_free(mods);
}

/* Renames o to rdn_attr=name when its name changed at the source; IX_EEXIST (a conflict) when the name is taken. */
static int rename_entry(struct sync_apply *run, struct ours *o, const struct src_entry *s, const char *name,
			char *(*dn_of)(struct prov *, const char *))
{
	if (strcasecmp(o->name, name) == 0)
		return IX_OK;
	char *new_dn = dn_of(run->p, name);
	if (dn_taken(run, new_dn)) {
		problem(run, 1, "%s: cannot rename %s to %s, which is taken by another recipient", s->dn, o->dn,
			new_dn);
		free(new_dn);
		return IX_EEXIST;
	}
	const char *comma = strchr(new_dn, ',');
	char *rdn = xstrndup(new_dn, (size_t)(comma - new_dn));
	int rc = ldap_rename_s(run->ours_ld, o->dn, rdn, NULL, 1, NULL, NULL);
	free(rdn);
	if (rc != LDAP_SUCCESS) {
		problem(run, 0, "%s: cannot rename %s: %s", s->dn, o->dn, ldap_err2string(rc));
		free(new_dn);
		return IX_EIO;
	}
	free(o->dn);
	o->dn = new_dn;
	note_ours(run, new_dn, NULL);
	free(o->name);
	o->name = xstrdup(name);
	o->renamed = 1;
	run->r->renamed++;
	return IX_OK;
}

static void update_entry(struct sync_apply *run, struct ours *o, const struct src_entry *s, const int *attrs,
			 size_t nattrs)
{
	LDAPMod **mods = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nattrs; i++) {
		const char *v = want(s, attrs[i]), *have = o->vals[attrs[i]];
		if (v != NULL && (have == NULL || strcmp(v, have) != 0))
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, sync_attr_names[attrs[i]], ldapu_values1(v));
		else if (v == NULL && have != NULL)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, sync_attr_names[attrs[i]], NULL);
		/* ixUserPrincipalName comes and goes with its class */
		if (attrs[i] == SA_PRINCIPAL && (v == NULL) != (have == NULL))
			ldapu_mod_add(&mods, &n, v != NULL ? LDAP_MOD_ADD : LDAP_MOD_DELETE, "objectClass",
				      ldapu_values1("ixKerberosPrincipal"));
	}
	if (o->renamed)
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixNickname", ldapu_values1(o->name));
	size_t np = 0;
	char **proxies = free_proxies(run, s, o->dn, &np);
	if (np > 0 && !same_values(proxies, o->proxies, 1)) {
		note_ours(run, o->dn, proxies);
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "mail", ldapu_values1(proxies[0] + 5));
		if (o->kind == K_CONTACT)
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixTargetAddress", ldapu_values1(proxies[0] + 5));
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixProxyAddresses", proxies);
	} else {
		ldapu_values_free(&proxies);
	}
	if (o->remote_dn == NULL || strcmp(o->remote_dn, s->dn) != 0)
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncRemoteDn", ldapu_values1(s->dn));
	int undeleted = o->deleted;
	if (o->deleted) /* back at the source within the grace days: enabled and shown again (unless disabled there) */
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixSyncDeleted", NULL);
	if (o->kind == K_USER && s->disabled && !o->locked) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "pwdAccountLockedTime", ldapu_values1(LOCKED_FOR_GOOD));
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixHideFromAddressBook", ldapu_values1("TRUE"));
	} else if ((o->deleted || o->locked) && !s->disabled) {
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixHideFromAddressBook", NULL);
		if (o->kind == K_USER && o->locked)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "pwdAccountLockedTime", NULL);
	}
	o->deleted = 0;
	if (mods == NULL) /* nothing changed: no write, so a run over an unchanged source costs the directory nothing */
		return;
	struct buf why = BUF_INIT;
	int ret = ldapu_modify(run->ours_ld, o->dn, mods, &why);
	ldapu_mods_free(mods);
	if (ret == IX_EEXIST)
		problem(run, 1, "%s: an address of it was taken meanwhile: %s", s->dn, buf_cstr(&why));
	else if (ret != IX_OK)
		problem(run, 0, "%s: cannot change %s: %s", s->dn, o->dn, buf_cstr(&why));
	else if (!o->renamed && !undeleted)
		run->r->changed++;
	if (ret == IX_OK && undeleted && o->kind == K_USER)
		count(run, K_USER, 1, -1);
	buf_free(&why);
}

static const char *const kind_names[] = { [K_USER] = "login", [K_LIST] = "list name", [K_CONTACT] = "contact name" };

/* What an entry of the users' base is: a user when it has a login, else a contact when it has an address. */
static enum kind person_kind(const struct src_entry *s)
{
	return s->vals[SA_LOGIN] == NULL && s->addresses != NULL && s->addresses[0] != NULL ? K_CONTACT : K_USER;
}

/* Adds or changes the recipient of one source entry; its DN goes into the member map. */
static void reconcile_one(struct sync_apply *run, const struct src_entry *s, enum kind kind)
{
	if (s->anchor == NULL) {
		problem(run, 0, "%s has no %s (the anchor): not synced", s->dn, run->conf.their[SA_ANCHOR]);
		return;
	}
	struct ours *o = find_ours(run, s->anchor, kind);
	if (o != NULL)
		o->seen = 1;
	const char *name = kind == K_USER ? s->vals[SA_LOGIN] : s->vals[SA_CN];
	if (name == NULL || (kind == K_USER ? !prov_login_valid(name) : !prov_name_valid(name))) {
		problem(run, 0, "%s: %s \"%s\" is not a valid %s: not synced", s->dn,
			kind == K_USER ? run->conf.their[SA_LOGIN] : "cn", name != NULL ? name : "", kind_names[kind]);
		return;
	}
	char *(*dn_of)(struct prov *, const char *) = kind == K_USER ? prov_user_dn : prov_list_dn;
	if (o == NULL) {
		char *dn = dn_of(run->p, name);
		if (dn_taken(run, dn)) {
			problem(run, 1, "%s: the %s %s is taken by %s, which is not from this source: not synced",
				s->dn, kind_names[kind], name, dn);
			free(dn);
			return;
		}
		size_t np = 0;
		char **proxies = free_proxies(run, s, NULL, &np);
		if (kind == K_CONTACT && np == 0)
			problem(run, 0, "%s: a contact without an address of its own: not synced", s->dn);
		else
			add_entry(run, s, dn, kind, proxies);
		if (kind == K_CONTACT && np == 0)
			ldapu_values_free(&proxies);
		free(dn);
		return;
	}
	rename_entry(run, o, s, name, dn_of);
	if (kind == K_LIST)
		update_entry(run, o, s, list_attrs, IX_ARRAY_LEN(list_attrs));
	else if (kind == K_CONTACT)
		update_entry(run, o, s, contact_attrs, IX_ARRAY_LEN(contact_attrs));
	else
		update_entry(run, o, s, user_attrs, IX_ARRAY_LEN(user_attrs));
	map_add(run, s->dn, o->dn);
}

/* Our user of this source whose login is uid (a posixGroup's memberUid), not disabled; a new string or NULL. */
static char *user_by_login(struct sync_apply *run, const char *uid)
{
	struct buf f = BUF_INIT, err = BUF_INIT;
	buf_append_str(&f, "(&(ixSyncedFrom=");
	ldapu_escape_filter(&f, run->conf.dn, strlen(run->conf.dn));
	buf_append_str(&f, ")(uid=");
	ldapu_escape_filter(&f, uid, strlen(uid));
	buf_append_str(&f, ")(!(ixSyncDeleted=*)))");
	const char *attrs[] = { LDAP_NO_ATTRS, NULL };
	char *base = xasprintf("ou=Recipients,%s", run->cfg->suffix), *dn = NULL;
	LDAPMessage *res = NULL;
	if (ldapu_search(run->ours_ld, base, LDAP_SCOPE_ONELEVEL, f.data, attrs, &res, &err) == IX_OK) {
		LDAPMessage *e = ldapu_first_entry(run->ours_ld, res);
		char *found = e != NULL ? ldap_get_dn(run->ours_ld, e) : NULL;
		dn = found != NULL ? xstrdup(found) : NULL;
		ldap_memfree(found);
	}
	ldap_msgfree(res);
	free(base);
	buf_free(&f);
	buf_free(&err);
	return dn;
}

/* Whether the list target is reached from the list from through nested lists, as our directory holds them now
 * (a check that reads more than LOOP_CHECK_MAX lists says yes). */
static int list_reaches(struct sync_apply *run, const char *from, const char *target)
{
	char **todo = NULL, **done = NULL;
	size_t ntodo = 0, ndone = 0;
	int found = 0;
	ldapu_values_push(&todo, &ntodo, from);
	const char *attrs[] = { "member", NULL };
	while (ntodo > 0 && !found) {
		char *dn = todo[--ntodo];
		todo[ntodo] = NULL;
		int seen = 0;
		for (size_t i = 0; i < ndone && !seen; i++)
			seen = strcasecmp(done[i], dn) == 0;
		if (!seen && ndone >= LOOP_CHECK_MAX)
			found = 1;
		if (seen || found) {
			free(dn);
			continue;
		}
		ldapu_values_push(&done, &ndone, dn);
		LDAPMessage *res = NULL;
		struct buf err = BUF_INIT;
		if (ldapu_search(run->ours_ld, dn, LDAP_SCOPE_BASE, "(objectClass=ixDistributionList)", attrs, &res,
				 &err) == IX_OK) {
			char **members = ldapu_get_values(run->ours_ld, ldapu_first_entry(run->ours_ld, res), "member",
							  NULL);
			for (size_t i = 0; members[i] != NULL && !found; i++) {
				if (strcasecmp(members[i], target) == 0)
					found = 1;
				else if (strncasecmp(members[i], "cn=", 3) == 0) /* a list or contact: lists nest */
					ldapu_values_push(&todo, &ntodo, members[i]);
			}
			ldapu_values_free(&members);
		}
		ldap_msgfree(res);
		buf_free(&err);
		free(dn);
	}
	ldapu_values_free(&todo);
	ldapu_values_free(&done);
	return found;
}

static void set_members(struct sync_apply *run, const struct src_entry *s)
{
	if (s->anchor == NULL || s->vals[SA_CN] == NULL)
		return;
	const char *our_dn = map_find(run, s->dn);
	if (our_dn == NULL)
		return;
	struct ours *o = find_ours(run, s->anchor, K_LIST);
	char **want_members = NULL;
	size_t n = 0;
	for (size_t i = 0; s->members != NULL && s->members[i] != NULL; i++) {
		const char *m = map_find(run, s->members[i]);
		if (m == NULL) /* members outside the source's users are not ours */
			continue;
		/* a group that holds itself, or one that holds it: the loop is reported and left open here (only a list
		 * or contact, cn=, can hold lists; the lists' members written so far are read from the directory) */
		int nested = strncasecmp(m, "cn=", 3) == 0;
		if (nested)
			window_drain(run);
		if (strcasecmp(m, our_dn) == 0 || (nested && list_reaches(run, m, our_dn))) {
			problem(run, 1, "%s: a group loop: %s holds it (directly or through its members); left out",
				s->dn, s->members[i]);
			continue;
		}
		ldapu_values_push(&want_members, &n, m);
	}
	for (size_t i = 0; s->member_uids != NULL && s->member_uids[i] != NULL; i++) {
		char *m = user_by_login(run, s->member_uids[i]);
		int dup = 0;
		for (size_t j = 0; m != NULL && j < n && !dup; j++)
			dup = strcasecmp(want_members[j], m) == 0;
		if (m != NULL && !dup)
			ldapu_values_push(&want_members, &n, m);
		free(m);
	}
	/* o NULL: the list was added by this run (its entry was read before) with its users (add_entry) */
	char **added = o == NULL ? user_members(run, s) : NULL;
	int same = same_values(want_members, o != NULL ? o->members : added, 0);
	ldapu_values_free(&added);
	if (same) {
		ldapu_values_free(&want_members);
		return;
	}
	if (o == NULL && n == 0)
		return;
	LDAPMod **mods = NULL;
	size_t nm = 0;
	ldapu_mod_add(&mods, &nm, LDAP_MOD_REPLACE, "member", want_members);
	write_entry(run, 0, K_LIST, our_dn, s->dn, mods, o);
	ldapu_mods_free(mods);
}

/* Takes the user dn out of this source's lists (as the full reconcile's members leave out disabled users; a change
 * applied alone must do it itself, since the source's groups may still name the user). */
static void leave_lists(struct sync_apply *run, const char *dn)
{
	struct buf f = BUF_INIT, err = BUF_INIT;
	buf_append_str(&f, "(&(ixSyncedFrom=");
	ldapu_escape_filter(&f, run->conf.dn, strlen(run->conf.dn));
	buf_append_str(&f, ")(member=");
	ldapu_escape_filter(&f, dn, strlen(dn));
	buf_append_str(&f, "))");
	const char *attrs[] = { LDAP_NO_ATTRS, NULL };
	char *base = xasprintf("ou=Recipients,%s", run->cfg->suffix);
	LDAPMessage *res = NULL;
	if (ldapu_search(run->ours_ld, base, LDAP_SCOPE_ONELEVEL, f.data, attrs, &res, &err) == IX_OK) {
		for (LDAPMessage *e = ldapu_first_entry(run->ours_ld, res); e != NULL;
		     e = ldap_next_entry(run->ours_ld, e)) {
			char *list = ldap_get_dn(run->ours_ld, e);
			LDAPMod **mods = NULL;
			size_t n = 0;
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "member", ldapu_values1(dn));
			buf_reset(&err);
			if (ldapu_modify(run->ours_ld, list, mods, &err) != IX_OK)
				problem(run, 0, "cannot take %s out of the list %s: %s", dn, list, buf_cstr(&err));
			ldapu_mods_free(mods);
			ldap_memfree(list);
		}
	}
	ldap_msgfree(res);
	free(base);
	buf_free(&f);
	buf_free(&err);
}

/* A user gone from the source: disabled (ppolicy's lock for good) and hidden at once, its mailbox kept; a list:
 * deleted. */
static void gone(struct sync_apply *run, struct ours *o)
{
	if (o->kind != K_USER) {
		int rc = ldap_delete_ext_s(run->ours_ld, o->dn, NULL, NULL);
		if (rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT)
			problem(run, 0, "cannot delete the %s %s, gone from the source: %s",
				o->kind == K_LIST ? "list" : "contact", o->dn, ldap_err2string(rc));
		else
			run->r->deleted++;
		if (rc == LDAP_SUCCESS)
			count(run, o->kind, -1, 0);
		return;
	}
	if (o->deleted)
		return;
	leave_lists(run, o->dn);
	char now[16];
	sync_now(now);
	LDAPMod **mods = NULL;
	size_t n = 0;
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncDeleted", ldapu_values1(now));
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixHideFromAddressBook", ldapu_values1("TRUE"));
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "pwdAccountLockedTime", ldapu_values1(LOCKED_FOR_GOOD));
	struct buf why = BUF_INIT;
	if (ldapu_modify(run->ours_ld, o->dn, mods, &why) != IX_OK)
		problem(run, 0, "cannot disable %s, deleted at the source: %s", o->dn, buf_cstr(&why));
	else {
		run->r->deleted++;
		count(run, K_USER, -1, 1);
	}
	o->deleted = 1;
	ldapu_mods_free(mods);
	buf_free(&why);
}

enum state_write {
	STATE_ONLY,    /* the state line alone */
	STATE_WHOLE,   /* after reading the whole source: counts, last run, the problems replaced */
	STATE_CHANGES, /* after applying changes: counts, the problems added to those of the last whole run */
};

/* Counts our recipients of this source into run->r (users, disabled, lists). */
static void count_ours(struct sync_apply *run)
{
	struct buf f = BUF_INIT, err = BUF_INIT;
	buf_append_str(&f, "(ixSyncedFrom=");
	ldapu_escape_filter(&f, run->conf.dn, strlen(run->conf.dn));
	buf_append_str(&f, ")");
	const char *attrs[] = { "objectClass", "ixSyncDeleted", NULL };
	char *base = xasprintf("ou=Recipients,%s", run->cfg->suffix);
	LDAPMessage *res = NULL;
	run->r->users = run->r->disabled = run->r->lists = run->r->contacts = 0;
	if (ldapu_search(run->ours_ld, base, LDAP_SCOPE_ONELEVEL, f.data, attrs, &res, &err) == IX_OK) {
		for (LDAPMessage *e = ldapu_first_entry(run->ours_ld, res); e != NULL;
		     e = ldap_next_entry(run->ours_ld, e)) {
			char **oc = ldapu_get_values(run->ours_ld, e, "objectClass", NULL);
			char *deleted = ldapu_get_first(run->ours_ld, e, "ixSyncDeleted");
			int list = 0, contact = 0;
			for (size_t i = 0; oc[i] != NULL; i++) {
				list |= strcasecmp(oc[i], "ixDistributionList") == 0;
				contact |= strcasecmp(oc[i], "ixContact") == 0;
			}
			if (list)
				run->r->lists++;
			else if (contact)
				run->r->contacts++;
			else if (deleted != NULL)
				run->r->disabled++;
			else
				run->r->users++;
			free(deleted);
			ldapu_values_free(&oc);
		}
	}
	ldap_msgfree(res);
	free(base);
	buf_free(&f);
	buf_free(&err);
}

/* The problem lines of this run (at most SYNC_MAX_PROBLEMS, then how many were left out); consumes run->problems. */
static char **problem_values(struct sync_apply *run)
{
	char **problems = NULL;
	size_t np = 0;
	char *text = buf_steal(&run->problems);
	for (char *save = NULL, *line = text != NULL ? strtok_r(text, "\n", &save) : NULL; line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		ldapu_values_push(&problems, &np, line);
	if (run->nproblems > SYNC_MAX_PROBLEMS) {
		char *v = xasprintf("... and %zu more", run->nproblems - SYNC_MAX_PROBLEMS);
		ldapu_values_push(&problems, &np, v);
		free(v);
	}
	free(text);
	run->nproblems = 0;
	return problems;
}

/* Adds the problems of live changes to the source entry, one at a time (one already listed is not repeated), and
 * sets run->r's conflicts and errors to what the entry then lists. */
static void add_problems(struct sync_apply *run)
{
	char **problems = problem_values(run);
	for (size_t i = 0; problems != NULL && problems[i] != NULL; i++) {
		LDAPMod **mods = NULL;
		size_t n = 0;
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixSyncProblem", ldapu_values1(problems[i]));
		struct buf why = BUF_INIT;
		ldapu_modify(run->ours_ld, run->conf.dn, mods, &why); /* a value listed already: nothing to do */
		ldapu_mods_free(mods);
		buf_free(&why);
	}
	ldapu_values_free(&problems);
	const char *attrs[] = { "ixSyncProblem", NULL };
	LDAPMessage *res = NULL;
	struct buf err = BUF_INIT;
	if (ldapu_search(run->ours_ld, run->conf.dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, &err) == IX_OK) {
		char **all = ldapu_get_values(run->ours_ld, ldapu_first_entry(run->ours_ld, res), "ixSyncProblem",
					      NULL);
		run->r->conflicts = run->r->errors = 0;
		for (size_t i = 0; all[i] != NULL; i++) {
			if (strncmp(all[i], "conflict: ", 10) == 0)
				run->r->conflicts++;
			else if (strncmp(all[i], "error: ", 7) == 0)
				run->r->errors++;
		}
		ldapu_values_free(&all);
	}
	ldap_msgfree(res);
	buf_free(&err);
}

static void set_state(struct sync_apply *run, const char *state, enum state_write how)
{
	LDAPMod **mods = NULL;
	size_t n = 0;
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncState", ldapu_values1(state));
	if (how != STATE_ONLY) {
		char now[16];
		sync_now(now);
		if (how == STATE_WHOLE)
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncLastRun", ldapu_values1(now));
		if (run->last_change[0] != '\0')
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncLastChange", ldapu_values1(run->last_change));
		if (how == STATE_WHOLE || !run->counted) /* else kept by count() since */
			count_ours(run);
		run->counted = 1;
		if (how == STATE_WHOLE)
			ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncProblem", problem_values(run));
		else
			add_problems(run);
		char **counts = NULL;
		size_t nc = 0;
		const struct sync_result *r = run->r;
		const size_t vals[] = { r->users, r->disabled, r->lists, r->contacts, r->errors, r->conflicts };
		const char *names[] = { "users", "disabled", "lists", "contacts", "errors", "conflicts" };
		for (size_t i = 0; i < 6; i++) {
			char *v = xasprintf("%s=%zu", names[i], vals[i]);
			ldapu_values_push(&counts, &nc, v);
			free(v);
		}
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixSyncCount", counts);
	}
	struct buf why = BUF_INIT;
	ldapu_modify(run->ours_ld, run->conf.dn, mods, &why);
	ldapu_mods_free(mods);
	buf_free(&why);
}

/* Progress: the caller's callback every 100 entries, and every PROGRESS_EVERY seconds the source's state
 * ("refreshing: users 1200 of 5000, 850 a second"), which `sync show` prints. total 0: not known yet. */
static void progress(struct sync_apply *run, const char *phase, size_t done, size_t total)
{
	if (run->progress != NULL && total > 0 && (done % 100 == 0 || done == total))
		run->progress(run->pctx, phase, done, total);
	time_t now = time(NULL);
	if (done <= 1)
		run->progress_start = now;
	if (now - run->progress_at < PROGRESS_EVERY)
		return;
	run->progress_at = now;
	double seconds = (double)(now > run->progress_start ? now - run->progress_start : 1);
	char *state = total > 0 ? xasprintf("refreshing: %s %zu of %zu, %.0f a second", phase, done, total,
					    (double)done / seconds)
				: xasprintf("refreshing: %s %zu", phase, done);
	set_state(run, state, STATE_ONLY);
	free(state);
}

static int cmp_str(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static void src_set_clear(struct src_set *set)
{
	src_set_free(set);
	set->e = NULL;
	set->n = set->cap = 0;
}

/* Makes our recipients match run->users and run->groups (then emptied); what is gone from the source per mode. */
static int apply_sets(struct sync_apply *run, enum sync_gone mode, struct buf *error_r)
{
	int ret = load_ours(run, NULL, error_r);
	if (ret == IX_OK) {
		if (mode != SYNC_GONE_UNSEEN)
			map_prefill(run);
		if (run->users.n + run->groups.n >= BULK_MIN)
			bulk_begin(run);
		for (size_t i = 0; i < run->users.n; i++) {
			reconcile_one(run, &run->users.e[i], person_kind(&run->users.e[i]));
			progress(run, "users", i + 1, run->users.n);
		}
		window_drain(run); /* the users in the member map before the lists */
		for (size_t i = 0; i < run->groups.n; i++) {
			reconcile_one(run, &run->groups.e[i], K_LIST);
			progress(run, "lists", i + 1, run->groups.n);
		}
		window_drain(run);
		for (size_t i = 0; i < run->groups.n; i++) {
			set_members(run, &run->groups.e[i]);
			progress(run, "members of lists", i + 1, run->groups.n);
		}
		bulk_end(run);
		size_t np = 0;
		while (run->present != NULL && run->present[np] != NULL)
			np++;
		if (np > 0)
			qsort(run->present, np, sizeof(char *), cmp_str);
		for (size_t i = 0; mode != SYNC_GONE_LISTED && i < run->nours; i++) {
			struct ours *o = &run->ours[i];
			const char *key = o->anchor;
			if (o->seen || (mode == SYNC_GONE_NOT_PRESENT && np > 0 &&
					bsearch(&key, run->present, np, sizeof(char *), cmp_str) != NULL))
				continue;
			gone(run, o);
		}
		ours_free(run);
		run->applied++;
	}
	src_set_clear(&run->users);
	src_set_clear(&run->groups);
	ldapu_values_free(&run->present);
	run->npresent = 0;
	return ret;
}

/* Whether the normalised DN dn is base or below it. */
static int dn_under(const char *dn, const char *base)
{
	size_t ld = strlen(dn), lb = strlen(base);
	return ld >= lb && strcmp(dn + ld - lb, base) == 0 && (ld == lb || lb == 0 || dn[ld - lb - 1] == ',');
}

/* What a source entry is to us: 0 a user, 1 a group, -1 neither (outside the users' or groups' base). */
static int classify(struct sync_apply *run, LDAPMessage *e, const char *dn)
{
	char **oc = ldapu_get_values(run->src, e, "objectClass", NULL);
	int group = 0;
	for (size_t i = 0; oc[i] != NULL && !group; i++) {
		for (size_t j = 0; run->rules->group_classes[j] != NULL && !group; j++)
			group = strcasecmp(oc[i], run->rules->group_classes[j]) == 0;
	}
	ldapu_values_free(&oc);
	char *n = dn_norm(dn);
	int kind = group ? (dn_under(n, run->groups_base) ? 1 : -1) : (dn_under(n, run->users_base) ? 0 : -1);
	free(n);
	return kind;
}

int sync_apply_open(struct prov *p, const struct config *cfg, const char *name, struct sync_apply **a_r,
		    struct buf *error_r)
{
	struct sync_apply *run = xcalloc(1, sizeof(*run));
	run->p = p;
	run->ours_ld = prov_ldap(p);
	run->cfg = cfg;
	run->r = &run->own_result;
	buf_init(&run->problems);
	*a_r = NULL;
	int ret = sync_conf_load(p, cfg, name, &run->conf, error_r);
	if (ret != IX_OK) {
		buf_free(&run->problems);
		free(run);
		return ret;
	}
	run->users_base = dn_norm(run->conf.base);
	run->groups_base = dn_norm(run->conf.groups_base != NULL ? run->conf.groups_base : run->conf.base);
	run->anchor_is_uuid = strcasecmp(run->conf.their[SA_ANCHOR], "entryUUID") == 0;
	run->is_ad = run->conf.type != NULL && strcmp(run->conf.type, "ad") == 0;
	run->rules = run->is_ad ? &ad_rules : &ldap_rules;
	ret = sync_connect(cfg, &run->conf, &run->src, error_r);
	if (ret != IX_OK) {
		char *state = xasprintf("failed: %s", buf_cstr(error_r));
		set_state(run, state, STATE_ONLY);
		free(state);
		sync_apply_close(&run);
		return ret;
	}
	*a_r = run;
	return IX_OK;
}

void sync_apply_close(struct sync_apply **a)
{
	struct sync_apply *run = *a;
	if (run == NULL)
		return;
	*a = NULL;
	ours_free(run);
	src_set_free(&run->users);
	src_set_free(&run->groups);
	ldapu_values_free(&run->present);
	buf_free(&run->problems);
	if (run->src != NULL)
		ldap_unbind_ext_s(run->src, NULL, NULL);
	free(run->users_base);
	free(run->groups_base);
	sync_conf_free(&run->conf);
	free(run);
}

LDAP *sync_apply_source(struct sync_apply *a)
{
	return a->src;
}

int sync_apply_uuid_anchor(const struct sync_apply *a)
{
	return a->anchor_is_uuid;
}

/* The attributes read from the source (a new NULL-terminated array). */
static char **source_attrs(struct sync_apply *run)
{
	char **attrs = NULL;
	size_t n = 0;
	for (int i = 0; i < SA_COUNT; i++) {
		if (run->conf.their[i] != NULL)
			ldapu_values_push(&attrs, &n, run->conf.their[i]);
	}
	const char *more[] = { "modifyTimestamp", "member", "uniqueMember", "memberUid", "objectClass" };
	for (size_t i = 0; i < IX_ARRAY_LEN(more); i++)
		ldapu_values_push(&attrs, &n, more[i]);
	if (run->is_ad) {
		ldapu_values_push(&attrs, &n, "userAccountControl");
		ldapu_values_push(&attrs, &n, "uSNChanged");
		ldapu_values_push(&attrs, &n, "isDeleted");
	}
	return attrs;
}

/* The filter of the entries of the users' base: users (--filter, else the type's) or contacts (people with an
 * address and no login); a new string. */
static char *user_filter(struct sync_apply *run)
{
	const char *uf = run->conf.filter != NULL ? run->conf.filter : run->rules->user_filter;
	const char *open = uf[0] == '(' ? "" : "(", *close = uf[0] == '(' ? "" : ")";
	if (run->conf.their[SA_MAIL] == NULL)
		return xasprintf("%s%s%s", open, uf, close);
	return xasprintf("(|%s%s%s(&(objectClass=%s)(%s=*)(!(%s=*))))", open, uf, close, run->rules->contact_class,
			 run->conf.their[SA_MAIL], run->conf.their[SA_LOGIN]);
}

int sync_apply_scope(struct sync_apply *a, char **base_r, char **filter_r, char ***attrs_r, struct buf *error_r)
{
	/* the nearest entry above both bases: the longest common run of RDNs from the right */
	char **u = ldap_explode_dn(a->users_base, 0), **g = ldap_explode_dn(a->groups_base, 0);
	size_t nu = 0, ng = 0;
	while (u != NULL && u[nu] != NULL)
		nu++;
	while (g != NULL && g[ng] != NULL)
		ng++;
	size_t common = 0;
	while (common < nu && common < ng && strcmp(u[nu - 1 - common], g[ng - 1 - common]) == 0)
		common++;
	struct buf b = BUF_INIT;
	for (size_t i = nu - common; i < nu; i++)
		buf_printf(&b, "%s%s", i > nu - common ? "," : "", u[i]);
	ldap_memvfree((void **)u);
	ldap_memvfree((void **)g);
	if (common == 0) {
		buf_printf(error_r, "the users' base %s and the groups' base %s have no common entry above them",
			   a->conf.base, a->conf.groups_base);
		buf_free(&b);
		return IX_EINVAL;
	}
	*base_r = buf_steal(&b);
	char *uf = user_filter(a);
	*filter_r = xasprintf("(|%s%s)", uf, a->rules->group_filter);
	free(uf);
	*attrs_r = source_attrs(a);
	return IX_OK;
}

void sync_apply_collect(struct sync_apply *a, LDAPMessage *e, const char *uuid)
{
	char *dn = ldap_get_dn(a->src, e);
	int kind = classify(a, e, dn != NULL ? dn : "");
	if (kind < 0) {
		sync_apply_delete(a, a->anchor_is_uuid ? uuid : NULL, dn);
	} else {
		a->collecting = kind ? &a->groups : &a->users;
		collect(a, e);
		a->collecting = NULL;
		progress(a, "entries read from the source", a->users.n + a->groups.n, 0);
	}
	ldap_memfree(dn);
}

void sync_apply_present(struct sync_apply *a, const char *uuid)
{
	ldapu_values_push(&a->present, &a->npresent, uuid);
}

int sync_apply_refresh_done(struct sync_apply *a, enum sync_gone mode, struct buf *error_r)
{
	return apply_sets(a, mode, error_r);
}

/* Loads our recipients of this source matching filter (an OR of clauses in f, which is freed), the map filled. */
static int load_matching(struct sync_apply *run, struct buf *f, const char *what)
{
	struct buf err = BUF_INIT;
	buf_append_str(f, ")");
	int ret = load_ours(run, f->data, &err);
	if (ret != IX_OK)
		problem(run, 0, "%s: cannot read our recipients: %s", what, buf_cstr(&err));
	else
		map_prefill(run);
	buf_free(&err);
	buf_free(f);
	return ret;
}

void sync_apply_change(struct sync_apply *a, LDAPMessage *e, const char *uuid)
{
	char *dn = ldap_get_dn(a->src, e);
	int kind = classify(a, e, dn != NULL ? dn : "");
	if (kind < 0) { /* moved out of the bases, or no longer a group: as if deleted */
		sync_apply_delete(a, a->anchor_is_uuid ? uuid : NULL, dn);
		ldap_memfree(dn);
		return;
	}
	struct src_set set = { 0 };
	a->collecting = &set;
	collect(a, e);
	a->collecting = NULL;
	const struct src_entry *s = &set.e[0];
	struct buf f = BUF_INIT;
	buf_append_str(&f, "(|");
	if (s->anchor != NULL) {
		buf_append_str(&f, "(ixSyncAnchor=");
		ldapu_escape_filter(&f, s->anchor, strlen(s->anchor));
		buf_append_str(&f, ")");
	}
	for (size_t i = 0; kind == 1 && s->members != NULL && s->members[i] != NULL; i++) {
		buf_append_str(&f, "(ixSyncRemoteDn=");
		ldapu_escape_filter(&f, s->members[i], strlen(s->members[i]));
		buf_append_str(&f, ")");
	}
	if (s->anchor == NULL || load_matching(a, &f, s->dn) == IX_OK) {
		reconcile_one(a, s, kind == 1 ? K_LIST : person_kind(s));
		if (kind == 1)
			set_members(a, s);
	}
	buf_free(&f);
	ours_free(a);
	src_set_free(&set);
	ldap_memfree(dn);
	a->applied++;
}

void sync_apply_delete(struct sync_apply *a, const char *anchor, const char *dn)
{
	struct buf f = BUF_INIT;
	if (anchor != NULL) {
		buf_append_str(&f, "(|(ixSyncAnchor=");
		ldapu_escape_filter(&f, anchor, strlen(anchor));
	} else if (dn != NULL) {
		buf_append_str(&f, "(|(ixSyncRemoteDn=");
		ldapu_escape_filter(&f, dn, strlen(dn));
	} else {
		return;
	}
	buf_append_str(&f, ")");
	if (load_matching(a, &f, dn != NULL ? dn : anchor) == IX_OK) {
		for (size_t i = 0; i < a->nours; i++)
			gone(a, &a->ours[i]);
	}
	ours_free(a);
	a->applied++;
}

int sync_apply_pending(const struct sync_apply *a)
{
	return a->applied;
}

void sync_apply_finish(struct sync_apply *a, const char *state, int whole)
{
	set_state(a, state, whole ? STATE_WHOLE : STATE_CHANGES);
	a->applied = 0;
	a->last_change[0] = '\0';
}

const struct sync_result *sync_apply_result(const struct sync_apply *a)
{
	return a->r;
}

int sync_run(struct prov *p, const struct config *cfg, const char *name, sync_progress_fn *progress_fn, void *ctx,
	     struct sync_result *r, struct buf *error_r)
{
	memset(r, 0, sizeof(*r));
	struct sync_apply *run = NULL;
	int ret = sync_apply_open(p, cfg, name, &run, error_r);
	if (ret != IX_OK)
		return ret;
	run->r = r;
	run->progress = progress_fn;
	run->pctx = ctx;
	ret = sync_apply_read_all(run, error_r);
	sync_apply_close(&run);
	return ret;
}

int sync_apply_read_all(struct sync_apply *run, struct buf *error_r)
{
	set_state(run, "running", STATE_ONLY);
	char *uf = user_filter(run);
	int ret;
	ret = read_source(run, run->conf.base, uf, &run->users, error_r);
	free(uf);
	if (ret == IX_OK)
		ret = read_source(run, run->conf.groups_base != NULL ? run->conf.groups_base : run->conf.base,
				  run->rules->group_filter, &run->groups, error_r);
	/* the source was read whole: what it no longer holds is gone from it */
	if (ret == IX_OK)
		ret = apply_sets(run, SYNC_GONE_UNSEEN, error_r);
	if (ret == IX_OK) {
		set_state(run, "in step", STATE_WHOLE);
	} else {
		char *state = xasprintf("failed: %s", buf_cstr(error_r));
		set_state(run, state, STATE_ONLY);
		free(state);
	}
	return ret;
}

int sync_apply_polls(const struct sync_apply *a)
{
	return a->is_ad;
}

long sync_apply_poll_seconds(const struct sync_apply *a)
{
	return a->conf.poll_seconds;
}

unsigned long long sync_apply_usn(const struct sync_apply *a)
{
	return a->usn;
}

static void apply_changed(struct sync_apply *run, LDAPMessage *e)
{
	char *usn = ldapu_get_first(run->src, e, "uSNChanged");
	note_usn(run, usn);
	free(usn);
	sync_apply_change(run, e, NULL);
}

static void apply_tombstone(struct sync_apply *run, LDAPMessage *e)
{
	char *usn = ldapu_get_first(run->src, e, "uSNChanged"), *anchor = anchor_of(run, e);
	note_usn(run, usn);
	if (anchor != NULL)
		sync_apply_delete(run, anchor, NULL);
	free(anchor);
	free(usn);
}

int sync_apply_changes_since(struct sync_apply *a, unsigned long long usn, struct buf *error_r)
{
	char *base = NULL, *filter = NULL;
	char **attrs = NULL;
	int ret = sync_apply_scope(a, &base, &filter, &attrs, error_r);
	if (ret != IX_OK)
		return ret;
	if (a->usn < usn)
		a->usn = usn;
	char *changed = xasprintf("(&(uSNChanged>=%llu)(!(isDeleted=TRUE))%s)", usn + 1, filter);
	ret = source_search(a, base, changed, (const char *const *)attrs, 0, apply_changed, error_r);
	/* deleted entries become tombstones (isDeleted) in the domain's Deleted Objects: searched from the domain
	 * root, the DC= part of the base */
	const char *dc = base;
	while (dc != NULL && strncasecmp(dc, "dc=", 3) != 0) {
		dc = strchr(dc, ',');
		dc = dc != NULL ? dc + 1 : NULL;
	}
	if (ret == IX_OK && dc != NULL) {
		char *gone_filter = xasprintf("(&(isDeleted=TRUE)(uSNChanged>=%llu))", usn + 1);
		const char *tomb_attrs[] = { a->conf.their[SA_ANCHOR], "uSNChanged", NULL };
		ret = source_search(a, dc, gone_filter, tomb_attrs, 1, apply_tombstone, error_r);
		free(gone_filter);
	}
	free(changed);
	free(base);
	free(filter);
	ldapu_values_free(&attrs);
	return ret;
}

int sync_source_del(struct prov *p, const struct config *cfg, const char *name, int keep, struct buf *error_r)
{
	struct sync_result r = { 0 };
	struct sync_apply run = { .p = p, .ours_ld = prov_ldap(p), .cfg = cfg, .r = &r };
	buf_init(&run.problems);
	int ret = sync_conf_load(p, cfg, name, &run.conf, error_r);
	if (ret == IX_OK)
		ret = load_ours(&run, NULL, error_r);
	for (size_t i = 0; ret == IX_OK && i < run.nours; i++) {
		struct ours *o = &run.ours[i];
		if (!keep) {
			gone(&run, o);
			continue;
		}
		LDAPMod **mods = NULL;
		size_t n = 0;
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "objectClass", ldapu_values1("ixSyncedRecipient"));
		const char *attrs[] = { "ixSyncedFrom", "ixSyncAnchor", "ixSyncRemoteDn" };
		for (size_t j = 0; j < 3; j++)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, attrs[j], NULL);
		if (o->deleted)
			ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixSyncDeleted", NULL);
		struct buf why = BUF_INIT;
		if (ldapu_modify(run.ours_ld, o->dn, mods, &why) != IX_OK)
			problem(&run, 0, "cannot make %s a local recipient: %s", o->dn, buf_cstr(&why));
		ldapu_mods_free(mods);
		buf_free(&why);
	}
	if (ret == IX_OK && run.nproblems > 0) {
		buf_printf(error_r, "the source %s is kept: %s", name, buf_cstr(&run.problems));
		ret = IX_EIO;
	}
	if (ret == IX_OK) {
		int rc = ldap_delete_ext_s(run.ours_ld, run.conf.dn, NULL, NULL);
		if (rc != LDAP_SUCCESS)
			ret = ldapu_fail(run.ours_ld, rc, "cannot delete the sync source", error_r);
	}
	if (ret == IX_OK)
		sync_secret_remove(cfg, name);
	ours_free(&run);
	buf_free(&run.problems);
	sync_conf_free(&run.conf);
	return ret;
}

int sync_expire(struct prov *p, const struct config *cfg, time_t now, size_t *removed_r, struct buf *error_r)
{
	*removed_r = 0;
	LDAP *ld = prov_ldap(p);
	LDAPMessage *sources = NULL;
	int ret = sync_sources_here(p, cfg, &sources, error_r);
	char *base = xasprintf("ou=Recipients,%s", cfg->suffix);
	for (LDAPMessage *src = ldapu_first_entry(ld, sources); src != NULL; src = ldap_next_entry(ld, src)) {
		char *dn = ldap_get_dn(ld, src), *grace_text = ldapu_get_first(ld, src, "ixSyncGraceDays");
		long grace = grace_text != NULL ? strtol(grace_text, NULL, 10) : SYNC_GRACE_DAYS_DEFAULT;
		char cutoff[16];
		sync_time(now - (time_t)grace * 86400, cutoff);
		struct buf f = BUF_INIT;
		buf_append_str(&f, "(&(objectClass=ixMailUser)(ixSyncedFrom=");
		ldapu_escape_filter(&f, dn, strlen(dn));
		buf_printf(&f, ")(ixSyncDeleted<=%s))", cutoff);
		const char *attrs[] = { LDAP_NO_ATTRS, NULL };
		LDAPMessage *res = NULL;
		int r = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, f.data, attrs, &res, error_r);
		if (r == IX_ENOTFOUND)
			r = IX_OK;
		for (LDAPMessage *e = ldapu_first_entry(ld, res); r == IX_OK && e != NULL; e = ldap_next_entry(ld, e)) {
			char *user = ldap_get_dn(ld, e);
			int rc = ldap_delete_ext_s(ld, user, NULL, NULL);
			if (rc == LDAP_SUCCESS || rc == LDAP_NO_SUCH_OBJECT) {
				(*removed_r)++;
				log_info("sync: removed %s, deleted at its source more than %ld days ago", user, grace);
			} else {
				r = ldapu_fail(ld, rc, "cannot remove a user deleted at its source", error_r);
			}
			ldap_memfree(user);
		}
		if (r != IX_OK && ret == IX_OK)
			ret = r;
		ldap_msgfree(res);
		buf_free(&f);
		free(grace_text);
		ldap_memfree(dn);
	}
	free(base);
	ldap_msgfree(sources);
	return ret;
}
