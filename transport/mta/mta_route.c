/* mta_route.c - recipient routing from the directory replica, delivery restrictions, send-as rights and the
 * server settings read (see mta.h). */
#include "transport/mta/mta.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "common/log.h"
#include "store/mime.h"
#include "store/store.h"
#include "transport/mta/dsn.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *mta_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at != NULL ? at + 1 : "";
}

static bool dn_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

bool mta_reply_is_moving(const char *reply)
{
	return reply != NULL && strncmp(reply, MTA_REPLY_MOVING, sizeof(MTA_REPLY_MOVING) - 1) == 0;
}

bool mta_homed_elsewhere(const struct dir_recipient *r, const char *server_dn)
{
	return r->home_server_dn != NULL && server_dn != NULL && !dn_eq(r->home_server_dn, server_dn);
}

static struct mta_target *add_target(struct mta_targets *t, enum mta_kind kind, const char *addr, const char *orcpt,
				     unsigned notify)
{
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	struct mta_target *x = &t->v[t->n++];
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->addr = xstrdup(addr);
	x->orcpt = xstrdup(orcpt != NULL ? orcpt : "");
	x->notify = notify;
	return x;
}

static bool have_addr(const struct mta_targets *t, const char *addr)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].kind != MTA_LOCAL && strcasecmp(t->v[i].addr, addr) == 0)
			return true;
	}
	return false;
}

static bool have_mailbox(const struct mta_targets *t, const char *guid, const char *folder)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct mta_target *x = &t->v[i];
		if (x->kind == MTA_LOCAL && strcasecmp(x->guid, guid) == 0 &&
		    ((x->folder == NULL && folder == NULL) ||
		     (x->folder != NULL && folder != NULL && strcmp(x->folder, folder) == 0)))
			return true;
	}
	return false;
}

static void fail(struct mta_targets *t, const char *addr, const char *orcpt, unsigned notify, const char *why)
{
	if (have_addr(t, addr))
		return;
	struct mta_target *x = add_target(t, MTA_FAIL, addr, orcpt, notify);
	x->error = xstrdup(why);
}

/* What one resolution works with: the replica, this server's entry, the sender (NULL: restrictions are not
 * checked, they were at accept) and the targets being built. */
struct resolution {
	struct dir *dir;
	const char *server_dn;
	const struct mta_sender *sender;
	struct mta_targets *t;
};

static void resolve_addr(const struct resolution *rs, const char *addr, const char *orcpt, unsigned notify,
			 unsigned depth);
/* depth at which forwarding is no longer followed (MTA_RESOLVE_FINAL starts there) */
#define NO_FORWARD_DEPTH 1000u

static char *server_dest(struct dir *dir, const char *dn)
{
	struct dir_server *sv;
	size_t n;
	char *dest = NULL;
	if (dir_servers(dir, &sv, &n) != IX_OK)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (dn_eq(sv[i].dn, dn) && sv[i].host != NULL)
			dest = xasprintf("%s:%u", sv[i].host, sv[i].smtp_port ? sv[i].smtp_port : 25);
	}
	dir_servers_free(&sv, n);
	return dest;
}

/* One final (non-list) recipient. */
static void add_final(const struct resolution *rs, const struct dir_recipient *r, const char *addr, const char *orcpt,
		      unsigned notify, unsigned depth)
{
	struct dir *dir = rs->dir;
	const char *server_dn = rs->server_dn;
	struct mta_targets *t = rs->t;
	if (t->n >= MTA_TARGETS_MAX)
		return;
	const char *name = r->primary_address != NULL ? r->primary_address : addr;
	switch (r->type) {
	case DIR_TYPE_CONTACT:
		if (r->target_address == NULL || depth >= MTA_FORWARD_DEPTH_MAX) {
			fail(t, name, orcpt, notify, "550 5.1.1 Contact has no target address");
			return;
		}
		resolve_addr(rs, r->target_address, orcpt, notify, depth + 1);
		return;
	case DIR_TYPE_FOLDER:
		if (!have_mailbox(t, STORE_PUBLIC_GUID, r->folder_path)) {
			struct mta_target *x = add_target(t, MTA_LOCAL, name, orcpt, notify);
			x->guid = xstrdup(STORE_PUBLIC_GUID);
			x->folder = xstrdup(r->folder_path != NULL ? r->folder_path : "");
		}
		return;
	case DIR_TYPE_USER: break;
	case DIR_TYPE_LIST:
	default: return;
	}
	if (r->forward_to != NULL && depth < NO_FORWARD_DEPTH) {
		struct dir_recipient f;
		if (depth < MTA_FORWARD_DEPTH_MAX && dir_lookup_dn(dir, r->forward_to, &f) == IX_OK) {
			const char *fa = f.type == DIR_TYPE_CONTACT ? f.target_address : f.primary_address;
			if (fa != NULL)
				resolve_addr(rs, fa, orcpt, notify, depth + 1);
			dir_recipient_release(&f);
		} else {
			log_warn("forwarding of %s: %s cannot be followed", name, r->forward_to);
		}
		if (!r->deliver_and_redirect)
			return;
	}
	if (mta_homed_elsewhere(r, server_dn)) {
		if (have_addr(t, name))
			return;
		char *dest = server_dest(dir, r->home_server_dn);
		if (dest == NULL) {
			fail(t, name, orcpt, notify, "451 4.4.0 Home server of the recipient is unknown");
			return;
		}
		struct mta_target *x = add_target(t, MTA_SERVER, name, orcpt, notify);
		x->dest = dest;
		return;
	}
	if (r->mailbox_guid == NULL) {
		fail(t, name, orcpt, notify, "451 4.2.0 Mailbox not provisioned yet");
		return;
	}
	if (have_mailbox(t, r->mailbox_guid, NULL))
		return;
	struct mta_target *x = add_target(t, MTA_LOCAL, name, orcpt, notify);
	x->guid = xstrdup(r->mailbox_guid);
	x->quota_bytes = r->quota_bytes > 0 ? (uint64_t)r->quota_bytes : 0;
	x->quota_messages = r->quota_messages > 0 ? (uint64_t)r->quota_messages : 0;
}

static void resolve_addr(const struct resolution *rs, const char *addr, const char *orcpt, unsigned notify,
			 unsigned depth)
{
	struct dir *dir = rs->dir;
	struct mta_targets *t = rs->t;
	const char *domain = mta_domain(addr);
	if (*domain == '\0' || !dir_is_local_domain(dir, domain)) {
		if (*domain == '\0')
			fail(t, addr, orcpt, notify, "550 5.1.3 Bad recipient address syntax");
		else if (!have_addr(t, addr))
			add_target(t, MTA_REMOTE, addr, orcpt, notify);
		return;
	}
	struct dir_recipient r;
	if (dir_resolve(dir, addr, &r) != IX_OK) {
		struct buf type = BUF_INIT;
		bool relay = dir_domain_type(dir, domain, &type) == IX_OK &&
			     strcmp(buf_cstr(&type), "authoritative") != 0;
		buf_free(&type);
		if (relay && !have_addr(t, addr))
			add_target(t, MTA_REMOTE, addr, orcpt, notify);
		else if (!relay)
			fail(t, addr, orcpt, notify, "550 5.1.1 No such recipient here");
		return;
	}
	if (r.type != DIR_TYPE_LIST) {
		add_final(rs, &r, addr, orcpt, notify, depth);
		dir_recipient_release(&r);
		return;
	}
	struct dir_expansion exp;
	struct buf err = BUF_INIT;
	if (dir_expand(dir, r.dn, &exp, &err) != IX_OK) {
		log_warn("expanding %s: %s", addr, buf_cstr(&err));
		fail(t, addr, orcpt, notify, "550 5.4.6 List cannot be expanded");
	} else {
		for (size_t i = 0; i < exp.count; i++) {
			const struct dir_recipient *m = &exp.recipients[i];
			const char *maddr = m->primary_address != NULL ? m->primary_address : addr;
			/* a member's own restrictions hold when mail reaches it through a list (the list's were checked
			 * for the envelope recipient at RCPT) */
			const char *why = rs->sender != NULL
						  ? mta_check_restrictions(dir, m, rs->sender->address,
									   rs->sender->authenticated, rs->sender->size)
						  : NULL;
			if (why != NULL)
				fail(t, maddr, orcpt, notify, why);
			else
				add_final(rs, m, maddr, orcpt, notify, depth);
		}
		dir_expansion_free(&exp);
	}
	buf_free(&err);
	dir_recipient_release(&r);
}

void mta_resolve(struct dir *dir, const char *server_dn, const char *addr, const char *orcpt, unsigned notify,
		 unsigned flags, const struct mta_sender *sender, struct mta_targets *t)
{
	struct resolution rs = { .dir = dir, .server_dn = server_dn, .sender = sender, .t = t };
	resolve_addr(&rs, addr, orcpt != NULL && *orcpt != '\0' ? orcpt : addr, notify,
		     (flags & MTA_RESOLVE_FINAL) ? NO_FORWARD_DEPTH : 0);
}

void mta_targets_free(struct mta_targets *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].addr);
		free(t->v[i].orcpt);
		free(t->v[i].guid);
		free(t->v[i].folder);
		free(t->v[i].dest);
		free(t->v[i].error);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

/* ---- restrictions ---- */

/* True when the sender's DN is dn itself or a final member of the list dn. */
static bool sender_matches(struct dir *dir, const char *sender_dn, const char *dn)
{
	if (dn_eq(sender_dn, dn))
		return true;
	struct dir_recipient e;
	if (dir_lookup_dn(dir, dn, &e) != IX_OK)
		return false;
	bool list = e.type == DIR_TYPE_LIST;
	dir_recipient_release(&e);
	if (!list)
		return false;
	struct dir_expansion exp;
	struct buf err = BUF_INIT;
	bool found = false;
	if (dir_expand(dir, dn, &exp, &err) == IX_OK) {
		for (size_t i = 0; i < exp.count && !found; i++)
			found = dn_eq(exp.recipients[i].dn, sender_dn);
		dir_expansion_free(&exp);
	}
	buf_free(&err);
	return found;
}

const char *mta_check_restrictions(struct dir *dir, const struct dir_recipient *r, const char *sender,
				   bool authenticated, unsigned long long size)
{
	if (r->max_receive_size > 0 && size > (unsigned long long)r->max_receive_size)
		return "552 5.2.3 Message too large for this recipient";
	if (r->require_authenticated_sender && !authenticated)
		return "550 5.7.1 This recipient accepts mail from authenticated senders only";
	if (r->accept_from_count == 0 && r->reject_from_count == 0 && !r->members_only)
		return NULL;
	struct dir_recipient s;
	bool known = sender != NULL && *sender != '\0' && dir_resolve(dir, sender, &s) == IX_OK;
	const char *verdict = NULL;
	/* a sender address of ours counts as that sender only when it authenticated (no spoofed insiders) */
	const char *sdn = known && authenticated ? s.dn : NULL;
	for (size_t i = 0; i < r->reject_from_count && verdict == NULL; i++) {
		if (known && sender_matches(dir, s.dn, r->reject_from[i]))
			verdict = "550 5.7.1 Sender is not allowed to send to this recipient";
	}
	if (verdict == NULL && r->accept_from_count > 0) {
		bool ok = false;
		for (size_t i = 0; i < r->accept_from_count && !ok; i++)
			ok = sdn != NULL && sender_matches(dir, sdn, r->accept_from[i]);
		if (!ok)
			verdict = "550 5.7.1 This recipient accepts mail only from listed senders";
	}
	if (verdict == NULL && r->members_only && r->type == DIR_TYPE_LIST) {
		if (sdn == NULL || !sender_matches(dir, sdn, r->dn))
			verdict = "550 5.7.1 This list accepts mail from its members only";
	}
	if (known)
		dir_recipient_release(&s);
	return verdict;
}

bool mta_header_from_domain(const char *msg, size_t len, char *out, size_t size)
{
	char from[DSN_HEADER_VALUE_MAX + 1];
	if (!dsn_header_value(msg, len, "From", from, sizeof(from)))
		return false;
	struct buf addrs = BUF_INIT;
	bool ok = false;
	if (mime_addr_text(from, strlen(from), &addrs) > 0) {
		const char *line = buf_cstr(&addrs), *nl = strchr(line, '\n');
		size_t llen = nl != NULL ? (size_t)(nl - line) : strlen(line);
		const char *gt = memchr(line, '>', llen),
			   *at = gt != NULL ? memrchr(line, '@', (size_t)(gt - line)) : NULL;
		if (at != NULL && (size_t)(gt - at - 1) < size) {
			snprintf(out, size, "%.*s", (int)(gt - at - 1), at + 1);
			ok = out[0] != '\0';
		}
	}
	buf_free(&addrs);
	return ok;
}

/* Replaces b's text with s. */
static void text_set(struct buf *b, const char *s)
{
	buf_reset(b);
	buf_append_str(b, s);
}

enum mta_send_right mta_send_right(struct dir *dir, const char *user, const char *from, struct buf *own_address_r)
{
	struct dir_recipient u, owner;
	int ru = strchr(user, '@') != NULL ? dir_resolve(dir, user, &u) : dir_lookup_login(dir, user, &u);
	if (ru != IX_OK)
		return MTA_SEND_NONE;
	if (own_address_r != NULL && u.primary_address != NULL)
		text_set(own_address_r, u.primary_address);
	enum mta_send_right right = MTA_SEND_NONE;
	if (from != NULL && *from != '\0' && dir_resolve(dir, from, &owner) == IX_OK) {
		if (dn_eq(owner.dn, u.dn))
			right = MTA_SEND_OWN;
		for (size_t i = 0; i < owner.send_as_count && right == MTA_SEND_NONE; i++) {
			if (dn_eq(owner.send_as[i], u.dn))
				right = MTA_SEND_AS;
		}
		for (size_t i = 0; i < owner.send_on_behalf_count && right == MTA_SEND_NONE; i++) {
			if (dn_eq(owner.send_on_behalf[i], u.dn))
				right = MTA_SEND_ON_BEHALF;
		}
		dir_recipient_release(&owner);
	}
	dir_recipient_release(&u);
	return right;
}

const char *mta_check_send_as(struct dir *dir, const char *user, const char *from)
{
	if (from == NULL || *from == '\0')
		return "553 5.7.1 Authenticated users may not send with a null sender";
	if (mta_send_right(dir, user, from, NULL) == MTA_SEND_NONE)
		return "553 5.7.1 Sender address rejected: not owned by the authenticated user";
	return NULL;
}

/* The addresses of a header field's value (mime_addr_text's lines "name <addr>"), each a new string in v[]; at most
 * max. Returns how many. */
static size_t header_addresses(const char *value, size_t len, char **v, size_t max)
{
	struct buf lines = BUF_INIT;
	mime_addr_text(value, len, &lines);
	size_t n = 0;
	for (char *save = NULL, *line = strtok_r(lines.data != NULL ? lines.data : (char *)"", "\n", &save);
	     line != NULL && n < max; line = strtok_r(NULL, "\n", &save)) {
		char *lt = strrchr(line, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;
		if (gt != NULL)
			v[n++] = xstrndup(lt + 1, (size_t)(gt - lt - 1));
	}
	buf_free(&lines);
	return n;
}

/* Most addresses of a From or Sender field looked at. */
#define MTA_HEADER_ADDRESSES_MAX 64

bool mta_check_header_from(struct dir *dir, const char *user, const char *msg, size_t len, struct buf *sender_r,
			   struct buf *reply_r)
{
	size_t hlen = dsn_header_length(msg, len);
	struct buf from = BUF_INIT, sender = BUF_INIT, own = BUF_INIT;
	char *addrs[MTA_HEADER_ADDRESSES_MAX];
	size_t nfrom = 0, nfields = mime_header_get_all(msg, hlen, "From", &from);
	bool ok = false, on_behalf = false;
	buf_reset(sender_r);
	if (nfields != 1) {
		text_set(reply_r, nfields == 0
					  ? "550 5.7.1 The message has no From header field: it must say who it is from"
					  : "550 5.7.1 The message has more than one From header field");
		goto out;
	}
	nfrom = header_addresses(from.data, from.len, addrs, MTA_HEADER_ADDRESSES_MAX);
	if (nfrom == 0) {
		text_set(reply_r, "550 5.7.1 The From header field names no address");
		goto out;
	}
	for (size_t i = 0; i < nfrom; i++) {
		enum mta_send_right r = mta_send_right(dir, user, addrs[i], &own);
		if (r == MTA_SEND_NONE) {
			buf_reset(reply_r);
			buf_printf(reply_r, "550 5.7.1 Header From <%.300s> is not an address %.100s may send as",
				   addrs[i], user);
			goto out;
		}
		on_behalf |= r == MTA_SEND_ON_BEHALF;
	}
	size_t nsender_fields = mime_header_get_all(msg, hlen, "Sender", &sender);
	if (nsender_fields > 0) {
		char *saddr[2];
		size_t ns = nsender_fields == 1 ? header_addresses(sender.data, sender.len, saddr, 2) : 0;
		enum mta_send_right r = ns == 1 ? mta_send_right(dir, user, saddr[0], NULL) : MTA_SEND_NONE;
		buf_reset(reply_r);
		if (ns != 1)
			text_set(reply_r, "550 5.7.1 The Sender header field must name one address");
		else if (r != MTA_SEND_OWN && r != MTA_SEND_AS)
			buf_printf(reply_r, "550 5.7.1 Header Sender <%.300s> is not an address %.100s may send as",
				   saddr[0], user);
		for (size_t i = 0; i < ns; i++)
			free(saddr[i]);
		if (reply_r->len > 0)
			goto out;
	} else if ((on_behalf || nfrom > 1) && own.len > 0) {
		text_set(sender_r, buf_cstr(&own)); /* RFC 5322 3.6.2: the agent responsible for the transmission */
	}
	ok = true;
out:
	for (size_t i = 0; i < nfrom; i++)
		free(addrs[i]);
	buf_free(&from);
	buf_free(&sender);
	buf_free(&own);
	return ok;
}

/* ---- settings ---- */

/* ---- connectors ---- */

/* How specifically a pattern matches domain: 0 not at all, 1 for "*", 1000 + length for "*.parent", 100000
 * for the domain itself. */
static size_t space_score(const char *pattern, const char *domain)
{
	if (strcasecmp(pattern, domain) == 0)
		return 100000;
	if (strcmp(pattern, "*") == 0)
		return 1;
	size_t pl = strlen(pattern), dl = strlen(domain);
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.' && dl > pl - 1 &&
	    strcasecmp(domain + dl - (pl - 1), pattern + 1) == 0)
		return 1000 + pl;
	return 0;
}

static size_t connector_score(const struct dir_connector *c, const char *domain)
{
	size_t best = 0;
	for (size_t i = 0; i < c->address_space_count; i++) {
		size_t sc = space_score(c->address_spaces[i], domain);
		if (sc > best)
			best = sc;
	}
	return best;
}

char *mta_pick_smart_host(struct dir *dir, const char *domain, const struct dir_connector *best, const char *key)
{
	struct dir_connector *all;
	size_t n;
	if (dir_connectors(dir, &all, &n) != IX_OK)
		return xstrdup(best->smart_host);
	size_t want = connector_score(best, domain), ties = 0;
	const char *tie[64];
	for (size_t i = 0; i < n && ties < IX_ARRAY_LEN(tie); i++) {
		if (all[i].cost == best->cost && all[i].smart_host[0] != '\0' &&
		    connector_score(&all[i], domain) == want)
			tie[ties++] = all[i].smart_host;
	}
	unsigned long h = 5381;
	for (const char *k = key; *k != '\0'; k++)
		h = h * 33 + (unsigned char)*k;
	char *pick = xstrdup(ties > 0 ? tie[h % ties] : best->smart_host);
	dir_connectors_free(&all, n);
	return pick;
}

void mta_local_prepare(struct store *st, const struct mta_target *tg)
{
	if (tg->kind == MTA_LOCAL && tg->folder != NULL && strcmp(tg->guid, STORE_PUBLIC_GUID) == 0)
		store_public_folder_ensure(st, tg->folder, NULL);
}

char *mta_local_failure(const struct mta_target *tg, int result, const char *store_error, bool *permanent_r)
{
	*permanent_r = false;
	if (result == IX_ELIMIT)
		return xstrdup("452 4.2.2 Mailbox full");
	if (result == IX_EAGAIN && strstr(store_error, "being moved") != NULL)
		return xstrdup(MTA_REPLY_MOVING);
	if (result != IX_EINVAL)
		return xasprintf("451 4.3.0 Store: %.200s", store_error);
	*permanent_r = true;
	struct buf norm = BUF_INIT, why = BUF_INIT;
	if (store_folder_name_norm(tg->folder, &norm, &why) == 0)
		buf_append_str(&why, store_error);
	char *reply = tg->folder != NULL ? xasprintf("550 5.2.0 The folder %.200s cannot take mail: %.200s", tg->folder,
						     buf_cstr(&why))
					 : xasprintf("550 5.2.0 The mailbox cannot take mail: %.200s", buf_cstr(&why));
	buf_free(&norm);
	buf_free(&why);
	return reply;
}
