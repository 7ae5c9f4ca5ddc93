/* dir_replica.c - the in-memory replica: indexing entries by uuid, DN, address, login and domain, applying
 * changes (with the reference clean-up refint does in slapd), and the readers' calls (resolve, expand, servers). */
#include "directory/dir_private.h"
#include "common/settings.h"

#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

/* The attributes slapd's refint keeps pointing at live entries (ixHomeServer is not among them). */
static const enum dir_attr refint_attrs[] = {
	DA_MEMBER, DA_FORWARD_TO, DA_ACCEPT_FROM, DA_REJECT_FROM, DA_SEND_AS, DA_SEND_ON_BEHALF, DA_FULL_ACCESS,
};

static bool is_recipient(const struct dir_entry *e)
{
	return e->kind >= DIR_KIND_USER && e->kind <= DIR_KIND_FOLDER;
}

/* Each thread reads through one shard of the lock, picked round-robin at its first read. */
static atomic_uint next_shard;
static _Thread_local unsigned my_shard = UINT_MAX;

static pthread_rwlock_t *shard_lock(struct dir_replica *rep)
{
	if (my_shard == UINT_MAX)
		my_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % DIR_LOCK_SHARDS;
	return &rep->shards[my_shard].lock;
}

void dir_read_lock(struct dir_replica *rep)
{
	pthread_rwlock_rdlock(shard_lock(rep));
}

void dir_read_unlock(struct dir_replica *rep)
{
	pthread_rwlock_unlock(shard_lock(rep));
}

void dir_write_lock(struct dir_replica *rep)
{
	for (size_t i = 0; i < DIR_LOCK_SHARDS; i++)
		pthread_rwlock_wrlock(&rep->shards[i].lock);
}

void dir_write_unlock(struct dir_replica *rep)
{
	for (size_t i = DIR_LOCK_SHARDS; i-- > 0;)
		pthread_rwlock_unlock(&rep->shards[i].lock);
}

void dir_replica_init(struct dir_replica *rep)
{
	memset(rep, 0, sizeof(*rep));
	/* Writer preference: glibc's default lets a steady stream of readers starve the sync thread, which would
	 * hold back every change. Readers never take the lock recursively, so the non-recursive kind is safe. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (size_t i = 0; i < DIR_LOCK_SHARDS; i++)
		pthread_rwlock_init(&rep->shards[i].lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	dir_map_init(&rep->by_uuid);
	dir_map_init(&rep->by_dn);
	dir_map_init(&rep->by_addr);
	dir_map_init(&rep->by_login);
	dir_map_init(&rep->by_domain);
	dir_map_init(&rep->by_principal);
	dir_map_init(&rep->by_signin);
}

void dir_replica_free(struct dir_replica *rep)
{
	for (size_t i = 0; i < rep->by_dn.cap; i++) {
		if (rep->by_dn.slots[i].key != NULL)
			dir_entry_unref(rep->by_dn.slots[i].val);
	}
	dir_map_free(&rep->by_uuid);
	dir_map_free(&rep->by_dn);
	dir_map_free(&rep->by_addr);
	dir_map_free(&rep->by_login);
	dir_map_free(&rep->by_domain);
	dir_map_free(&rep->by_principal);
	dir_map_free(&rep->by_signin);
	for (size_t i = 0; i < DIR_LOCK_SHARDS; i++)
		pthread_rwlock_destroy(&rep->shards[i].lock);
}

/* Write lock held for the next three. */
static void index_entry(struct dir_replica *rep, struct dir_entry *e)
{
	dir_map_add(&rep->by_uuid, e->uuid, sizeof(e->uuid), e);
	dir_map_add(&rep->by_dn, e->ndn, e->ndn_len, e);
	if (is_recipient(e)) {
		rep->recipients++;
		for (size_t i = 0; i < e->naddrs; i++) {
			struct dir_entry *owner = dir_map_add(&rep->by_addr, e->addr_keys[i], e->addr_key_lens[i], e);
			if (owner != NULL && owner != e)
				log_warn("directory: address %s of %s already belongs to %s; ignored", e->addr_keys[i],
					 e->dn, owner->dn);
		}
	}
	if (e->login_key != NULL)
		dir_map_add(&rep->by_login, e->login_key, strlen(e->login_key), e);
	if (e->domain_key != NULL)
		dir_map_add(&rep->by_domain, e->domain_key, strlen(e->domain_key), e);
	if (e->principal_key != NULL)
		dir_map_add(&rep->by_principal, e->principal_key, strlen(e->principal_key), e);
	if (e->kind == DIR_KIND_OAUTH_ISSUER || e->kind == DIR_KIND_KERBEROS)
		dir_map_add(&rep->by_signin, e->ndn, e->ndn_len, e);
}

static void unindex_entry(struct dir_replica *rep, struct dir_entry *e)
{
	dir_map_del(&rep->by_uuid, e->uuid, sizeof(e->uuid), e);
	dir_map_del(&rep->by_dn, e->ndn, e->ndn_len, e);
	if (is_recipient(e)) {
		rep->recipients--;
		for (size_t i = 0; i < e->naddrs; i++)
			dir_map_del(&rep->by_addr, e->addr_keys[i], e->addr_key_lens[i], e);
	}
	if (e->login_key != NULL)
		dir_map_del(&rep->by_login, e->login_key, strlen(e->login_key), e);
	if (e->domain_key != NULL)
		dir_map_del(&rep->by_domain, e->domain_key, strlen(e->domain_key), e);
	if (e->principal_key != NULL)
		dir_map_del(&rep->by_principal, e->principal_key, strlen(e->principal_key), e);
	if (e->kind == DIR_KIND_OAUTH_ISSUER || e->kind == DIR_KIND_KERBEROS)
		dir_map_del(&rep->by_signin, e->ndn, e->ndn_len, e);
}

static bool refers_to(const struct dir_entry *e, const char *ndn)
{
	for (size_t k = 0; k < IX_ARRAY_LEN(refint_attrs); k++) {
		enum dir_attr a = refint_attrs[k];
		for (size_t i = 0; i < e->nvals[a]; i++) {
			if (strcmp(e->nref[dir_dn_index(a)][i], ndn) == 0)
				return true;
		}
	}
	return false;
}

/* Removes (new_dn NULL) or renames every reference to ndn held by other entries: each such entry is replaced
 * by a copy without (or with the new) value. Entries whose content arrived in session fresh (when not 0) are
 * left alone: slapd sent them as they are now, after anything refint did. */
static void fix_refs(struct dir_replica *rep, const char *ndn, const char *new_dn, unsigned fresh)
{
	struct dir_entry **found = NULL;
	size_t count = 0, cap = 0;
	for (size_t i = 0; i < rep->by_dn.cap; i++) {
		struct dir_entry *e = rep->by_dn.slots[i].val;
		if (rep->by_dn.slots[i].key == NULL || (fresh != 0 && e->loaded == fresh) || !refers_to(e, ndn))
			continue;
		if (count == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			found = xrealloc(found, cap * sizeof(*found));
		}
		found[count++] = e;
	}
	for (size_t i = 0; i < count; i++) {
		struct dir_builder b;
		dir_builder_from_entry(&b, found[i]);
		dir_builder_replace_ref(&b, ndn, new_dn);
		struct dir_entry *ne = dir_builder_finish(&b);
		ne->mark = found[i]->mark;
		ne->loaded = found[i]->loaded;
		unindex_entry(rep, found[i]);
		index_entry(rep, ne);
		dir_entry_unref(found[i]);
	}
	free(found);
}

enum dir_change_kind dir_replica_put(struct dir_replica *rep, struct dir_entry *e)
{
	dir_write_lock(rep);
	struct dir_entry *old = dir_map_get(&rep->by_uuid, e->uuid, sizeof(e->uuid));
	if (old != NULL)
		unindex_entry(rep, old);
	struct dir_entry *stale = dir_map_get(&rep->by_dn, e->ndn, e->ndn_len);
	if (stale != NULL) {
		/* Same DN, another entryUUID: the old entry was deleted (and its memberships dropped by refint) while
		 * we were away. Lists already received in this refresh are current: they keep what they say. */
		unindex_entry(rep, stale);
		fix_refs(rep, stale->ndn, NULL, e->loaded);
	}
	index_entry(rep, e);
	if (old != NULL && strcmp(old->ndn, e->ndn) != 0)
		fix_refs(rep, old->ndn, e->dn, 0);
	dir_write_unlock(rep);
	dir_entry_unref(old);
	dir_entry_unref(stale);
	return old != NULL ? DIR_CHANGE_MODIFY : DIR_CHANGE_ADD;
}

struct dir_entry *dir_replica_del_uuid(struct dir_replica *rep, const unsigned char uuid[16])
{
	dir_write_lock(rep);
	struct dir_entry *e = dir_map_get(&rep->by_uuid, uuid, 16);
	if (e != NULL) {
		unindex_entry(rep, e);
		fix_refs(rep, e->ndn, NULL, 0);
	}
	dir_write_unlock(rep);
	return e;
}

bool dir_replica_mark(struct dir_replica *rep, const unsigned char uuid[16], unsigned mark)
{
	dir_read_lock(rep);
	struct dir_entry *e = dir_map_get(&rep->by_uuid, uuid, 16);
	if (e != NULL)
		e->mark = mark;
	dir_read_unlock(rep);
	return e != NULL;
}

size_t dir_replica_sweep(struct dir_replica *rep, unsigned mark, void (*fn)(void *ctx, struct dir_entry *e), void *ctx)
{
	struct dir_entry **gone = NULL;
	size_t count = 0, cap = 0;
	dir_write_lock(rep);
	for (size_t i = 0; i < rep->by_dn.cap; i++) {
		struct dir_entry *e = rep->by_dn.slots[i].val;
		if (rep->by_dn.slots[i].key == NULL || e->mark == mark)
			continue;
		if (count == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			gone = xrealloc(gone, cap * sizeof(*gone));
		}
		gone[count++] = e;
	}
	for (size_t i = 0; i < count; i++)
		unindex_entry(rep, gone[i]);
	for (size_t i = 0; i < count; i++)
		fix_refs(rep, gone[i]->ndn, NULL, 0);
	dir_write_unlock(rep);
	for (size_t i = 0; i < count; i++) {
		if (fn != NULL)
			fn(ctx, gone[i]);
		dir_entry_unref(gone[i]);
	}
	free(gone);
	return count;
}

/* --- readers --- */

const char *dir_type_name(enum dir_type type)
{
	switch (type) {
	case DIR_TYPE_USER: return "user";
	case DIR_TYPE_CONTACT: return "contact";
	case DIR_TYPE_LIST: return "list";
	case DIR_TYPE_FOLDER: return "folder";
	}
	return "unknown";
}

static const char *first(const struct dir_entry *e, enum dir_attr a)
{
	return e->nvals[a] > 0 ? e->vals[a][0] : NULL;
}

/* Read lock held: takes references on e and its home server and fills r. */
static void fill(const struct dir_replica *rep, struct dir_entry *e, struct dir_recipient *r)
{
	struct dir_entry *server = NULL;
	if (e->nvals[DA_HOMESERVER] > 0) {
		server = dir_map_get_hashed(&rep->by_dn, e->home_hash, e->nref[dir_dn_index(DA_HOMESERVER)][0],
					    e->home_len);
		if (server != NULL && server->kind == DIR_KIND_SERVER)
			dir_entry_ref(server);
		else
			server = NULL;
	}
	dir_entry_ref(e);
	*r = e->tmpl;
	r->home_server_host = server != NULL ? first(server, DA_HOSTNAME) : NULL;
	r->entry_ = e;
	r->server_ = server;
}

void dir_recipient_release(struct dir_recipient *r)
{
	if (r == NULL)
		return;
	dir_entry_unref(r->server_);
	dir_entry_unref(r->entry_);
	memset(r, 0, sizeof(*r));
}

/* Read lock held: the recipient owning an address key (key is modified when the subaddress is tried). */
static struct dir_entry *by_address(const struct dir_replica *rep, char *key, size_t len)
{
	struct dir_entry *e = dir_map_get(&rep->by_addr, key, len);
	if (e != NULL)
		return e;
	char *at = memrchr(key, '@', len);
	char *plus = at != NULL ? memchr(key, '+', (size_t)(at - key)) : NULL;
	if (plus == NULL || plus == key)
		return NULL;
	size_t tail = len - (size_t)(at - key);
	memmove(plus, at, tail + 1);
	return dir_map_get(&rep->by_addr, key, (size_t)(plus - key) + tail);
}

int dir_resolve(struct dir *dir, const char *address, struct dir_recipient *r)
{
	char key[DIR_ADDRESS_MAX + 1];
	size_t len = address != NULL ? dir_address_key(address, strnlen(address, DIR_ADDRESS_MAX + 1), key) : 0;
	struct dir_entry *e = NULL;
	if (len > 0) {
		struct dir_replica *rep = &dir->rep;
		dir_read_lock(rep);
		e = by_address(rep, key, len);
		if (e != NULL)
			fill(rep, e, r); /* fill sets every field */
		dir_read_unlock(rep);
	}
	if (e == NULL) {
		memset(r, 0, sizeof(*r));
		return IX_ENOTFOUND;
	}
	return IX_OK;
}

/* Read lock held. */
static struct dir_entry *by_dn(const struct dir_replica *rep, const char *ndn, size_t len)
{
	struct dir_entry *e = dir_map_get(&rep->by_dn, ndn, len);
	return e != NULL && is_recipient(e) ? e : NULL;
}

int dir_lookup_dn(struct dir *dir, const char *dn, struct dir_recipient *r)
{
	memset(r, 0, sizeof(*r));
	if (dn == NULL || strnlen(dn, DIR_DN_MAX + 1) > DIR_DN_MAX)
		return IX_ENOTFOUND;
	struct buf ndn = BUF_INIT;
	dir_dn_normalize(dn, &ndn);
	struct dir_replica *rep = &dir->rep;
	dir_read_lock(rep);
	struct dir_entry *e = by_dn(rep, buf_cstr(&ndn), ndn.len);
	if (e != NULL)
		fill(rep, e, r);
	dir_read_unlock(rep);
	buf_free(&ndn);
	return e != NULL ? IX_OK : IX_ENOTFOUND;
}

/* Lower-cases s into key (size max + 1). Returns the length, or 0 when empty or longer than max. */
static size_t lower_key(const char *s, size_t max, char *key)
{
	size_t len = s != NULL ? strnlen(s, max + 1) : 0;
	if (len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++)
		key[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
	key[len] = '\0';
	return len;
}

/* A recipient by a case-insensitive key of map (by_login, by_principal). */
static int lookup_lower(struct dir *dir, struct dir_map *map, const char *name, struct dir_recipient *r)
{
	memset(r, 0, sizeof(*r));
	char key[DIR_LOGIN_MAX + 1];
	size_t len = lower_key(name, DIR_LOGIN_MAX, key);
	if (len == 0)
		return IX_ENOTFOUND;
	struct dir_replica *rep = &dir->rep;
	dir_read_lock(rep);
	struct dir_entry *e = dir_map_get(map, key, len);
	if (e != NULL)
		fill(rep, e, r);
	dir_read_unlock(rep);
	return e != NULL ? IX_OK : IX_ENOTFOUND;
}

int dir_lookup_login(struct dir *dir, const char *login, struct dir_recipient *r)
{
	return lookup_lower(dir, &dir->rep.by_login, login, r);
}

int dir_lookup_principal(struct dir *dir, const char *principal, struct dir_recipient *r)
{
	return lookup_lower(dir, &dir->rep.by_principal, principal, r);
}

/* Longest domain name (RFC 1035). */
#define DIR_DOMAIN_MAX 255

/* The values of attr on the accepted domain's entry, one a line, replacing out's text (none: absent, when not
 * NULL). out NULL: only whether the domain is ours. Returns IX_OK or IX_ENOTFOUND. */
static int domain_values(struct dir *dir, const char *domain, enum dir_attr attr, const char *absent, struct buf *out)
{
	char key[DIR_DOMAIN_MAX + 1];
	size_t len = lower_key(domain, DIR_DOMAIN_MAX, key);
	if (len == 0)
		return IX_ENOTFOUND;
	struct dir_replica *rep = &dir->rep;
	dir_read_lock(rep);
	struct dir_entry *e = dir_map_get(&rep->by_domain, key, len);
	if (e != NULL && out != NULL) {
		buf_reset(out);
		for (size_t i = 0; i < e->nvals[attr]; i++)
			buf_printf(out, "%s%s", i > 0 ? "\n" : "", e->vals[attr][i]);
		if (e->nvals[attr] == 0 && absent != NULL)
			buf_append_str(out, absent);
	}
	dir_read_unlock(rep);
	return e != NULL ? IX_OK : IX_ENOTFOUND;
}

int dir_domain_type(struct dir *dir, const char *domain, struct buf *type_r)
{
	return domain_values(dir, domain, DA_DOMAIN_TYPE, "authoritative", type_r);
}

int dir_domain_dkim(struct dir *dir, const char *domain, struct buf *selectors_r)
{
	return domain_values(dir, domain, DA_DKIM_SELECTOR, NULL, selectors_r);
}

bool dir_is_local_domain(struct dir *dir, const char *domain)
{
	return dir_domain_type(dir, domain, NULL) == IX_OK;
}

/* --- list expansion --- */

struct expand {
	const struct dir_replica *rep;
	struct dir_map lists, finals; /* keyed by normalized DN */
	struct dir_expansion *exp;
	size_t cap;
	struct buf *error_r;
};

static int expand_entry(struct expand *x, struct dir_entry *e, unsigned depth)
{
	struct dir_expansion *exp = x->exp;
	if (e->kind != DIR_KIND_LIST) {
		if (dir_map_add(&x->finals, e->ndn, e->ndn_len, e) != NULL)
			return IX_OK;
		if (exp->count >= DIR_EXPAND_MAX_RECIPIENTS) {
			if (x->error_r != NULL)
				buf_printf(x->error_r, "the list expands to more than %d recipients",
					   DIR_EXPAND_MAX_RECIPIENTS);
			return IX_ELIMIT;
		}
		if (exp->count == x->cap) {
			x->cap = x->cap == 0 ? 16 : x->cap * 2;
			exp->recipients = xrealloc(exp->recipients, x->cap * sizeof(*exp->recipients));
		}
		fill(x->rep, e, &exp->recipients[exp->count++]);
		return IX_OK;
	}
	if (depth > DIR_EXPAND_MAX_DEPTH) {
		if (x->error_r != NULL)
			buf_printf(x->error_r, "lists are nested more than %d deep (at %s)", DIR_EXPAND_MAX_DEPTH,
				   e->dn);
		return IX_ELIMIT;
	}
	if (dir_map_add(&x->lists, e->ndn, e->ndn_len, e) != NULL) {
		exp->loops_cut++;
		return IX_OK;
	}
	exp->lists_visited++;
	for (size_t i = 0; i < e->nvals[DA_MEMBER]; i++) {
		const char *ndn = e->nref[dir_dn_index(DA_MEMBER)][i];
		struct dir_entry *m = by_dn(x->rep, ndn, strlen(ndn));
		if (m == NULL) {
			exp->unresolved++;
			continue;
		}
		int ret = expand_entry(x, m, depth + 1);
		if (ret != IX_OK)
			return ret;
	}
	return IX_OK;
}

int dir_expand(struct dir *dir, const char *list, struct dir_expansion *exp_r, struct buf *error_r)
{
	memset(exp_r, 0, sizeof(*exp_r));
	if (list == NULL)
		return IX_ENOTFOUND;
	bool is_dn = strchr(list, '=') != NULL && strchr(list, '@') == NULL;
	struct dir_replica *rep = &dir->rep;
	struct buf ndn = BUF_INIT;
	char key[DIR_ADDRESS_MAX + 1];
	size_t len = 0;
	if (is_dn) {
		if (strnlen(list, DIR_DN_MAX + 1) > DIR_DN_MAX)
			return IX_ENOTFOUND;
		dir_dn_normalize(list, &ndn);
	} else {
		len = dir_address_key(list, strnlen(list, DIR_ADDRESS_MAX + 1), key);
		if (len == 0)
			return IX_ENOTFOUND;
	}
	struct expand x = { .rep = rep, .exp = exp_r, .error_r = error_r };
	dir_map_init(&x.lists);
	dir_map_init(&x.finals);
	int ret = IX_ENOTFOUND;
	dir_read_lock(rep);
	struct dir_entry *e = is_dn ? by_dn(rep, buf_cstr(&ndn), ndn.len) : by_address(rep, key, len);
	if (e != NULL)
		ret = expand_entry(&x, e, 0);
	dir_read_unlock(rep);
	dir_map_free(&x.lists);
	dir_map_free(&x.finals);
	buf_free(&ndn);
	if (ret != IX_OK)
		dir_expansion_free(exp_r);
	return ret;
}

void dir_expansion_free(struct dir_expansion *exp)
{
	for (size_t i = 0; i < exp->count; i++)
		dir_recipient_release(&exp->recipients[i]);
	free(exp->recipients);
	memset(exp, 0, sizeof(*exp));
}

/* --- servers, iteration --- */

static unsigned port(const struct dir_entry *e, enum dir_attr a)
{
	unsigned long long v;
	if (e->nvals[a] == 0 || parse_uint(e->vals[a][0], 65535, &v) < 0)
		return 0;
	return (unsigned)v;
}

static int server_cmp(const void *a, const void *b)
{
	const struct dir_server *x = a, *y = b;
	return strcmp(x->name, y->name);
}

int dir_servers(struct dir *dir, struct dir_server **servers_r, size_t *count_r)
{
	struct dir_replica *rep = &dir->rep;
	struct dir_server *out = NULL;
	size_t count = 0, cap = 0;
	dir_read_lock(rep);
	for (size_t i = 0; i < rep->by_dn.cap; i++) {
		const struct dir_entry *e = rep->by_dn.slots[i].val;
		if (rep->by_dn.slots[i].key == NULL || e->kind != DIR_KIND_SERVER)
			continue;
		if (count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			out = xrealloc(out, cap * sizeof(*out));
		}
		struct dir_server *s = &out[count++];
		memset(s, 0, sizeof(*s));
		s->dn = xstrdup(e->dn);
		s->name = xstrdup(e->nvals[DA_CN] > 0 ? e->vals[DA_CN][0] : "");
		s->host = xstrdup(e->nvals[DA_HOSTNAME] > 0 ? e->vals[DA_HOSTNAME][0] : "");
		s->ldap_port = port(e, DA_LDAP_PORT);
		s->smtp_port = port(e, DA_SMTP_PORT);
		s->submission_port = port(e, DA_SUBMISSION_PORT);
		s->submissions_port = port(e, DA_SUBMISSIONS_PORT);
		s->imap_port = port(e, DA_IMAP_PORT);
		s->imaps_port = port(e, DA_IMAPS_PORT);
		s->pop3_port = port(e, DA_POP3_PORT);
		s->pop3s_port = port(e, DA_POP3S_PORT);
		s->sieve_port = port(e, DA_SIEVE_PORT);
		s->metrics_port = port(e, DA_METRICS_PORT);
	}
	dir_read_unlock(rep);
	if (count > 1)
		qsort(out, count, sizeof(*out), server_cmp);
	*servers_r = out;
	*count_r = count;
	return IX_OK;
}

int dir_server_settings(struct dir *dir, const char *server_dn, struct settings *settings_r)
{
	struct dir_replica *rep = &dir->rep;
	struct buf ndn = BUF_INIT;
	dir_dn_normalize(server_dn, &ndn);
	int ret = IX_ENOTFOUND;
	dir_read_lock(rep);
	const struct dir_entry *e = dir_map_get(&rep->by_dn, ndn.data, ndn.len);
	if (e != NULL && e->kind == DIR_KIND_SERVER) {
		settings_load(settings_r, e->vals[DA_SERVER_SETTING], e->nvals[DA_SERVER_SETTING]);
		ret = IX_OK;
	} else {
		settings_load(settings_r, NULL, 0);
	}
	dir_read_unlock(rep);
	buf_free(&ndn);
	return ret;
}

bool dir_server_allows_sender_from(struct dir *dir, const char *server_dn, const char *client)
{
	struct dir_replica *rep = &dir->rep;
	struct buf ndn = BUF_INIT;
	dir_dn_normalize(server_dn, &ndn);
	bool allowed = false;
	dir_read_lock(rep);
	const struct dir_entry *e = dir_map_get(&rep->by_dn, ndn.data, ndn.len);
	if (e != NULL && e->kind == DIR_KIND_SERVER) {
		for (size_t i = 0; i < e->nvals[DA_ALLOW_SENDER_FROM] && !allowed; i++)
			allowed = ip_in_cidr(e->vals[DA_ALLOW_SENDER_FROM][i], client) == 1;
	}
	dir_read_unlock(rep);
	buf_free(&ndn);
	return allowed;
}

void dir_cert_fingerprint(const void *der, size_t len, char *hex)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(der, len, md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int dir_server_by_cert(struct dir *dir, const char *fingerprint, struct buf *server_dn_r)
{
	struct dir_replica *rep = &dir->rep;
	int ret = IX_ENOTFOUND;
	if (fingerprint == NULL || strlen(fingerprint) != DIR_CERT_SHA256_HEX)
		return ret;
	dir_read_lock(rep);
	for (size_t i = 0; i < rep->by_dn.cap && ret != IX_OK; i++) {
		const struct dir_entry *e = rep->by_dn.slots[i].val;
		if (rep->by_dn.slots[i].key == NULL || e->kind != DIR_KIND_SERVER)
			continue;
		for (size_t k = 0; k < e->nvals[DA_SERVER_CERT] && ret != IX_OK; k++) {
			if (strcasecmp(e->vals[DA_SERVER_CERT][k], fingerprint) == 0) {
				ret = IX_OK;
				if (server_dn_r != NULL)
					buf_append_str(server_dn_r, e->dn);
			}
		}
	}
	dir_read_unlock(rep);
	return ret;
}

void dir_servers_free(struct dir_server **servers, size_t count)
{
	if (*servers == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*servers)[i].dn);
		free((*servers)[i].name);
		free((*servers)[i].host);
	}
	free(*servers);
	*servers = NULL;
}

/* --- connectors --- */

static void connector_copy(const struct dir_entry *e, struct dir_connector *c)
{
	memset(c, 0, sizeof(*c));
	c->dn = xstrdup(e->dn);
	c->name = xstrdup(e->nvals[DA_CN] > 0 ? e->vals[DA_CN][0] : "");
	c->smart_host = xstrdup(e->nvals[DA_SMART_HOST] > 0 ? e->vals[DA_SMART_HOST][0] : "");
	c->address_space_count = e->nvals[DA_ADDRESS_SPACE];
	c->address_spaces = xcalloc(c->address_space_count + 1, sizeof(char *));
	for (size_t i = 0; i < c->address_space_count; i++)
		c->address_spaces[i] = xstrdup(e->vals[DA_ADDRESS_SPACE][i]);
	unsigned long long cost;
	if (e->nvals[DA_CONNECTOR_COST] > 0 && parse_uint(e->vals[DA_CONNECTOR_COST][0], UINT_MAX, &cost) == 0)
		c->cost = (unsigned)cost;
}

void dir_connector_free(struct dir_connector *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->address_space_count; i++)
		free(c->address_spaces[i]);
	free(c->address_spaces);
	free(c->dn);
	free(c->name);
	free(c->smart_host);
	memset(c, 0, sizeof(*c));
}

static int connector_cmp(const void *a, const void *b)
{
	const struct dir_connector *x = a, *y = b;
	return strcmp(x->name, y->name);
}

int dir_connectors(struct dir *dir, struct dir_connector **connectors_r, size_t *count_r)
{
	struct dir_replica *rep = &dir->rep;
	struct dir_connector *out = NULL;
	size_t count = 0, cap = 0;
	dir_read_lock(rep);
	for (size_t i = 0; i < rep->by_dn.cap; i++) {
		const struct dir_entry *e = rep->by_dn.slots[i].val;
		if (rep->by_dn.slots[i].key == NULL || e->kind != DIR_KIND_CONNECTOR)
			continue;
		if (count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			out = xrealloc(out, cap * sizeof(*out));
		}
		connector_copy(e, &out[count++]);
	}
	dir_read_unlock(rep);
	if (count > 1)
		qsort(out, count, sizeof(*out), connector_cmp);
	*connectors_r = out;
	*count_r = count;
	return IX_OK;
}

void dir_connectors_free(struct dir_connector **connectors, size_t count)
{
	if (*connectors == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		dir_connector_free(&(*connectors)[i]);
	free(*connectors);
	*connectors = NULL;
}

/* How specifically pattern matches domain (lower-cased, length len): 0 no match, 1 for "*", 2 + the parent's
 * length for "*.parent", and a value above any wildcard for an exact match. */
static size_t space_match(const char *pattern, const char *domain, size_t len)
{
	if (strcmp(pattern, "*") == 0)
		return 1;
	if (strncmp(pattern, "*.", 2) == 0) {
		const char *parent = pattern + 2;
		size_t plen = strlen(parent);
		if (plen == 0 || len <= plen + 1 || domain[len - plen - 1] != '.' ||
		    strcasecmp(domain + len - plen, parent) != 0)
			return 0;
		return 2 + plen;
	}
	return strcasecmp(pattern, domain) == 0 ? 2 + DIR_DOMAIN_MAX + 1 : 0;
}

int dir_route_domain(struct dir *dir, const char *domain, struct dir_connector *connector_r)
{
	memset(connector_r, 0, sizeof(*connector_r));
	char key[DIR_DOMAIN_MAX + 1];
	size_t len = lower_key(domain, DIR_DOMAIN_MAX, key);
	if (len == 0)
		return IX_ENOTFOUND;
	struct dir_replica *rep = &dir->rep;
	const struct dir_entry *best = NULL;
	size_t best_spec = 0;
	unsigned long long best_cost = 0;
	dir_read_lock(rep);
	for (size_t i = 0; i < rep->by_dn.cap; i++) {
		const struct dir_entry *e = rep->by_dn.slots[i].val;
		if (rep->by_dn.slots[i].key == NULL || e->kind != DIR_KIND_CONNECTOR)
			continue;
		size_t spec = 0;
		for (size_t k = 0; k < e->nvals[DA_ADDRESS_SPACE]; k++) {
			size_t m = space_match(e->vals[DA_ADDRESS_SPACE][k], key, len);
			if (m > spec)
				spec = m;
		}
		if (spec == 0)
			continue;
		unsigned long long cost = 0;
		if (e->nvals[DA_CONNECTOR_COST] > 0 && parse_uint(e->vals[DA_CONNECTOR_COST][0], UINT_MAX, &cost) < 0)
			cost = 0;
		const char *name = e->nvals[DA_CN] > 0 ? e->vals[DA_CN][0] : "";
		const char *best_name = best != NULL && best->nvals[DA_CN] > 0 ? best->vals[DA_CN][0] : "";
		if (best == NULL || spec > best_spec || (spec == best_spec && cost < best_cost) ||
		    (spec == best_spec && cost == best_cost && strcmp(name, best_name) < 0)) {
			best = e;
			best_spec = spec;
			best_cost = cost;
		}
	}
	if (best != NULL)
		connector_copy(best, connector_r);
	dir_read_unlock(rep);
	return best != NULL ? IX_OK : IX_ENOTFOUND;
}

size_t dir_foreach_recipient(struct dir *dir, dir_recipient_fn *fn, void *ctx)
{
	struct dir_replica *rep = &dir->rep;
	struct dir_recipient *all = NULL;
	size_t count = 0;
	dir_read_lock(rep);
	all = xcalloc(rep->recipients + 1, sizeof(*all));
	for (size_t i = 0; i < rep->by_dn.cap && count < rep->recipients; i++) {
		struct dir_entry *e = rep->by_dn.slots[i].val;
		if (rep->by_dn.slots[i].key != NULL && is_recipient(e))
			fill(rep, e, &all[count++]);
	}
	dir_read_unlock(rep);
	for (size_t i = 0; i < count; i++) {
		fn(ctx, &all[i]);
		dir_recipient_release(&all[i]);
	}
	free(all);
	return count;
}

/* --- sign-in configuration --- */

static const char *first_or(const struct dir_entry *e, enum dir_attr a, const char *dflt)
{
	return e->nvals[a] > 0 ? e->vals[a][0] : dflt;
}

static int issuer_cmp(const void *a, const void *b)
{
	const struct dir_oauth_issuer *x = a, *y = b;
	return strcmp(x->issuer, y->issuer);
}

int dir_oauth_issuers(struct dir *dir, struct dir_oauth_issuer **issuers_r, size_t *count_r)
{
	struct dir_replica *rep = &dir->rep;
	struct dir_oauth_issuer *out = NULL;
	size_t count = 0, cap = 0;
	dir_read_lock(rep);
	for (size_t i = 0; i < rep->by_signin.cap; i++) {
		const struct dir_entry *e = rep->by_signin.slots[i].val;
		if (rep->by_signin.slots[i].key == NULL || e->kind != DIR_KIND_OAUTH_ISSUER || e->nvals[DA_CN] == 0)
			continue;
		if (count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			out = xrealloc(out, cap * sizeof(*out));
		}
		struct dir_oauth_issuer *is = &out[count++];
		is->issuer = xstrdup(e->vals[DA_CN][0]);
		is->keys = xstrdup(first_or(e, DA_OAUTH_KEYS, ""));
		is->audience = xstrdup(first_or(e, DA_OAUTH_AUDIENCE, ""));
		is->claim = e->nvals[DA_OAUTH_CLAIM] > 0 ? xstrdup(e->vals[DA_OAUTH_CLAIM][0]) : NULL;
	}
	dir_read_unlock(rep);
	if (count > 1)
		qsort(out, count, sizeof(*out), issuer_cmp);
	*issuers_r = out;
	*count_r = count;
	return IX_OK;
}

void dir_oauth_issuers_free(struct dir_oauth_issuer **issuers, size_t count)
{
	if (*issuers == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*issuers)[i].issuer);
		free((*issuers)[i].keys);
		free((*issuers)[i].audience);
		free((*issuers)[i].claim);
	}
	free(*issuers);
	*issuers = NULL;
}

bool dir_has_oauth_issuer(struct dir *dir)
{
	struct dir_replica *rep = &dir->rep;
	bool found = false;
	dir_read_lock(rep);
	for (size_t i = 0; i < rep->by_signin.cap && !found; i++)
		found = rep->by_signin.slots[i].key != NULL &&
			((const struct dir_entry *)rep->by_signin.slots[i].val)->kind == DIR_KIND_OAUTH_ISSUER;
	dir_read_unlock(rep);
	return found;
}

bool dir_sieve_global_name_valid(const char *name)
{
	size_t n = strlen(name);
	return n > 0 && n <= DIR_SIEVE_GLOBAL_NAME_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

int dir_sieve_global(struct dir *dir, const char *name, char **text_r, size_t *len_r)
{
	if (!dir_sieve_global_name_valid(name))
		return IX_ENOTFOUND;
	struct buf dn = BUF_INIT, ndn = BUF_INIT;
	buf_printf(&dn, "cn=%s," DIR_SIEVE_GLOBAL_OU ",%s", name, dir->suffix);
	dir_dn_normalize(buf_cstr(&dn), &ndn);
	struct dir_replica *rep = &dir->rep;
	int ret = IX_ENOTFOUND;
	dir_read_lock(rep);
	const struct dir_entry *e = dir_map_get(&rep->by_dn, buf_cstr(&ndn), ndn.len);
	if (e != NULL && e->kind == DIR_KIND_SIEVE_GLOBAL && e->nvals[DA_SIEVE_SCRIPT] > 0) {
		*len_r = strlen(e->vals[DA_SIEVE_SCRIPT][0]);
		*text_r = xstrndup(e->vals[DA_SIEVE_SCRIPT][0], *len_r);
		ret = IX_OK;
	}
	dir_read_unlock(rep);
	buf_free(&dn);
	buf_free(&ndn);
	return ret;
}

int dir_kerberos_realm(struct dir *dir, struct buf *realm_r)
{
	struct dir_replica *rep = &dir->rep;
	int ret = IX_ENOTFOUND;
	dir_read_lock(rep);
	for (size_t i = 0; i < rep->by_signin.cap && ret != IX_OK; i++) {
		const struct dir_entry *e = rep->by_signin.slots[i].val;
		if (rep->by_signin.slots[i].key != NULL && e->kind == DIR_KIND_KERBEROS &&
		    e->nvals[DA_KERBEROS_REALM] > 0) {
			buf_reset(realm_r);
			buf_append_str(realm_r, e->vals[DA_KERBEROS_REALM][0]);
			ret = IX_OK;
		}
	}
	dir_read_unlock(rep);
	return ret;
}
