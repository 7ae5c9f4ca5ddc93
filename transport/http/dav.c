/* dav.c - the read-only CardDAV address book under /dav/ (dav.h): sign-in with HTTP Basic bound in the directory as
 * the user, the resources (principal, address-book home, the one address book, a card per recipient), PROPFIND,
 * REPORT (addressbook-multiget, addressbook-query, sync-collection) and GET, request bodies read with libxml2. */
#include "transport/http/dav.h"
#include "transport/http/vcard.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/throttle.h"
#include "common/util.h"
#include "directory/dir.h"
#include "directory/ldap_util.h"
#include "directory/secrets.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NS_DAV "DAV:"
#define NS_CARD "urn:ietf:params:xml:ns:carddav"
#define NS_CS "http://calendarserver.org/ns/"
/* The address book's name under a user's home, and the URI a sync token starts with (RFC 6578: tokens are URIs). */
#define DAV_BOOK "directory"
#define DAV_SYNC_TOKEN "urn:x-interchange:sync:"
#define DAV_REALM "Basic realm=\"Interchange\", charset=\"UTF-8\""
/* A card's name: its entryUUID (36 characters) and ".vcf". */
#define DAV_UUID_LEN 36
/* Most hrefs one addressbook-multiget may name. */
#define DAV_MULTIGET_MAX 5000

struct dav {
	const struct config *cfg;
	struct dir *dir;
	char *ldapi_uri;
	struct throttle_guard *guard;
};

enum res { RES_ROOT, RES_PRINCIPAL, RES_HOME, RES_BOOK, RES_CARD };

/* The recipients of the address book: users, contacts and lists not hidden from it. */
#define DAV_VISIBLE                                                                          \
	"(|(objectClass=ixMailUser)(objectClass=ixContact)(objectClass=ixDistributionList))" \
	"(!(ixHideFromAddressBook=TRUE))"

/* A card and the entity tag of its entry (entryCSN: changes with every change of the entry). */
struct card {
	struct vcard v;
	char *etag;        /* quoted */
	char **member_dns; /* a group's member values, until members_resolve makes them v.members */
};
struct cards {
	struct card *v;
	size_t n, cap;
	bool photos; /* read the photos too */
};

/* A request being answered. */
struct call {
	struct dav *dav;
	const struct http_request *req;
	struct http_response *resp;
	LDAP *ld;    /* bound as the user */
	char *login; /* the user's uid */
	char *display;
	char *principal_href, *home_href, *book_href; /* percent-encoded paths ending in '/' */
	enum res res;
	char card_uid[DAV_UUID_LEN + 1];
	int version; /* vCard version the Accept header asks for: 3 (default) or 4 */
	xmlDocPtr doc;
};

/* A property asked for. */
struct propreq {
	const char *ns, *name;
	xmlNodePtr node;
};
struct props {
	struct propreq *v;
	size_t n;
};

struct dav *dav_create(const struct config *cfg, struct dir *dir)
{
	xmlInitParser();
	struct dav *dav = xcalloc(1, sizeof(*dav));
	dav->cfg = cfg;
	dav->dir = dir;
	dav->ldapi_uri = config_ldapi_uri(cfg);
	dav->guard = throttle_guard_create(DAV_GUARD_CAPACITY);
	return dav;
}

void dav_destroy(struct dav **dav)
{
	if (*dav == NULL)
		return;
	throttle_guard_destroy(&(*dav)->guard);
	free((*dav)->ldapi_uri);
	free(*dav);
	*dav = NULL;
	xmlCleanupParser();
}

void dav_settings(struct dav *dav, const struct settings *s)
{
	struct throttle_limits tl;
	throttle_limits_from_settings(s, &tl);
	throttle_guard_set(dav->guard, &tl);
}

/* ---- answers ---- */

static void answer(struct call *c, unsigned status, const char *message)
{
	buf_reset(&c->resp->body);
	http_response_error(c->resp, status, message);
}

/* 401 with the Basic challenge clients answer with the user's login and password. */
static void challenge(struct call *c, const char *message)
{
	http_response_header(c->resp, "WWW-Authenticate", DAV_REALM);
	answer(c, 401, message);
}

/* A DAV:error body with one precondition element (RFC 4918 16). */
static void precondition(struct call *c, unsigned status, const char *qname)
{
	buf_reset(&c->resp->body);
	c->resp->status = status;
	c->resp->content_type = "application/xml; charset=utf-8";
	buf_printf(&c->resp->body,
		   "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"" NS_DAV "\" xmlns:card=\"" NS_CARD
		   "\"><%s/></d:error>\n",
		   qname);
}

/* ---- sign-in ---- */

/* Login and password of an "Authorization: Basic" header (new strings); false when there is none or it is
 * malformed. */
static bool basic_header(const struct http_request *req, char **login_r, char **password_r)
{
	const char *h = http_request_header(req, "Authorization");
	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
		return false;
	struct buf plain = BUF_INIT;
	const char *colon = NULL;
	if (base64_decode(h + 6, strlen(h + 6), 4096, &plain) == IX_OK && memchr(plain.data, '\0', plain.len) == NULL)
		colon = strchr(buf_cstr(&plain), ':');
	if (colon != NULL) {
		*login_r = xstrndup(plain.data, (size_t)(colon - plain.data));
		*password_r = xstrdup(colon + 1);
	}
	OPENSSL_cleanse(plain.data, plain.len);
	buf_free(&plain);
	return colon != NULL;
}

/* Binds in the directory as the user the Basic header names (a login or an address), through the sign-in guard
 * every service applies. Answers and returns false when that fails. */
static bool sign_in(struct call *c)
{
	char *login = NULL, *password = NULL;
	if (!basic_header(c->req, &login, &password)) {
		challenge(c, "Unauthorized: sign in with your login or address and your password");
		return false;
	}
	const char *peer = c->req->peer;
	uint64_t now = (uint64_t)time(NULL);
	enum throttle_block b = throttle_guard_check(c->dav->guard, peer, login, now);
	bool ok = false;
	if (b != THROTTLE_FREE) {
		log_warn("CardDAV sign-in of %s from %s refused: temporarily blocked (too many failed logins of %s)",
			 login, peer, throttle_block_text(b));
		answer(c, 429, "Too Many Requests: too many failed sign-ins; wait a few minutes");
		goto out;
	}
	struct dir_recipient r;
	int ret = dir_lookup_login(c->dav->dir, login, &r);
	if (ret != IX_OK)
		ret = dir_resolve(c->dav->dir, login, &r);
	if (ret == IX_OK && r.type != DIR_TYPE_USER) {
		dir_recipient_release(&r);
		ret = IX_EAUTH;
	}
	struct buf err = BUF_INIT;
	char *app = NULL;
	/* an app password (as on IMAP): checked against the user's app passwords, never bound with (slapd takes only
	 * the password); the address book is then read with our own identity, which the search's filter keeps to what
	 * the user would see (DAV_VISIBLE) */
	bool found = ret == IX_OK;
	if (found && secrets_app_password_shaped(password, strlen(password)))
		ret = dir_authenticate_mail(c->dav->dir, r.login, password, &app, &err);
	if (ret == IX_OK) {
		ret = app != NULL ? ldapu_connect_external(c->dav->ldapi_uri, &c->ld, &err)
				  : ldapu_connect_simple(c->dav->ldapi_uri, r.dn, password, &c->ld, &err);
		if (ret == IX_OK && app != NULL)
			log_info("CardDAV sign-in of %s from %s with the app password %s", login, peer, app);
		free(app);
		if (ret == IX_OK) {
			c->login = xstrdup(r.login);
			c->display = xstrdup(r.display_name != NULL ? r.display_name : r.login);
		}
	}
	if (found)
		dir_recipient_release(&r);
	if (ret == IX_OK) {
		ok = true;
	} else if (ret == IX_EUNAVAIL) {
		log_warn("CardDAV sign-in of %s: %s", login, buf_cstr(&err));
		answer(c, 503, "Service Unavailable: the directory does not answer; try again shortly");
	} else {
		unsigned n = throttle_guard_fail(c->dav->guard, peer, login, now);
		log_info("CardDAV sign-in of %s from %s failed (%u failures in the window)", login, peer, n);
		challenge(c, "Unauthorized: wrong login or password");
	}
	buf_free(&err);
out:
	OPENSSL_cleanse(password, strlen(password));
	free(password);
	free(login);
	return ok;
}

/* ---- resources ---- */

static bool uuid_valid(const char *s, size_t len)
{
	if (len != DAV_UUID_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
			return false;
	}
	return true;
}

/* Is path (decoded) the collection href (encoded, ending in '/'; with or without that slash)? */
static bool same_collection(const char *path, const char *href)
{
	size_t n = strlen(href) - 1;
	return strncasecmp(path, href, n) == 0 && (path[n] == '\0' || (path[n] == '/' && path[n + 1] == '\0'));
}

/* Which resource the path names: fills c->res (and c->card_uid). Answers 403 (another user's) or 404 and returns
 * false when it names none of the user's. */
static bool resource(struct call *c)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, DAV_PREFIX "principals/");
	http_percent_encode(&b, c->login, false);
	buf_append_char(&b, '/');
	c->principal_href = buf_steal(&b);
	buf_append_str(&b, DAV_PREFIX "addressbooks/");
	http_percent_encode(&b, c->login, false);
	buf_append_char(&b, '/');
	c->home_href = buf_steal(&b);
	c->book_href = xasprintf("%s" DAV_BOOK "/", c->home_href);
	const char *path = c->req->path;
	size_t book_len = strlen(c->book_href);
	if (strcmp(path, DAV_PREFIX) == 0 || strcmp(path, "/dav") == 0) {
		c->res = RES_ROOT;
	} else if (same_collection(path, c->principal_href)) {
		c->res = RES_PRINCIPAL;
	} else if (same_collection(path, c->home_href)) {
		c->res = RES_HOME;
	} else if (same_collection(path, c->book_href)) {
		c->res = RES_BOOK;
	} else if (strncasecmp(path, c->book_href, book_len) == 0 && strlen(path + book_len) == DAV_UUID_LEN + 4 &&
		   strcmp(path + book_len + DAV_UUID_LEN, ".vcf") == 0 && uuid_valid(path + book_len, DAV_UUID_LEN)) {
		c->res = RES_CARD;
		memcpy(c->card_uid, path + book_len, DAV_UUID_LEN);
		c->card_uid[DAV_UUID_LEN] = '\0';
	} else if (strncmp(path, DAV_PREFIX "principals/", strlen(DAV_PREFIX "principals/")) == 0 ||
		   strncmp(path, DAV_PREFIX "addressbooks/", strlen(DAV_PREFIX "addressbooks/")) == 0) {
		if (strncasecmp(path, c->home_href, strlen(c->home_href)) == 0 ||
		    strncasecmp(path, c->principal_href, strlen(c->principal_href)) == 0)
			answer(c, 404, "Not Found");
		else
			answer(c, 403, "Forbidden: this is another user's; yours is under your own login");
		return false;
	} else {
		answer(c, 404, "Not Found");
		return false;
	}
	return true;
}

/* ---- the cards, read from the directory as the user ---- */

/* Appends a copy of address to v's emails unless it has it already (case-insensitive). */
static void email_add(struct vcard *v, const char *address)
{
	for (size_t i = 0; i < v->email_count; i++)
		if (strcasecmp(v->emails[i], address) == 0)
			return;
	v->emails = xrealloc(v->emails, (v->email_count + 1) * sizeof(*v->emails));
	v->emails[v->email_count++] = xstrdup(address);
}

static void card_entry(void *ctx, LDAP *ld, LDAPMessage *e)
{
	struct cards *cs = ctx;
	char *uid = ldapu_get_first(ld, e, "entryUUID");
	if (uid == NULL || !uuid_valid(uid, strlen(uid))) {
		free(uid);
		return;
	}
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? cs->cap * 2 : 64;
		cs->v = xrealloc(cs->v, cs->cap * sizeof(*cs->v));
	}
	struct card *cd = &cs->v[cs->n++];
	memset(cd, 0, sizeof(*cd));
	struct vcard *v = &cd->v;
	v->uid = uid;
	char **classes = ldapu_get_values(ld, e, "objectClass", NULL);
	for (size_t i = 0; classes[i] != NULL; i++)
		if (strcasecmp(classes[i], "ixDistributionList") == 0)
			v->group = true;
	ldapu_values_free(&classes);
	if (v->group)
		cd->member_dns = ldapu_get_values(ld, e, "member", NULL);
	v->fn = ldapu_get_first(ld, e, "displayName");
	if (v->fn == NULL)
		v->fn = ldapu_get_first(ld, e, "cn");
	v->given = ldapu_get_first(ld, e, "givenName");
	v->surname = ldapu_get_first(ld, e, "sn");
	v->nickname = ldapu_get_first(ld, e, "ixNickname");
	v->company = ldapu_get_first(ld, e, "company");
	v->department = ldapu_get_first(ld, e, "department");
	v->title = ldapu_get_first(ld, e, "title");
	v->office = ldapu_get_first(ld, e, "physicalDeliveryOfficeName");
	v->phone = ldapu_get_first(ld, e, "telephoneNumber");
	v->mobile = ldapu_get_first(ld, e, "mobile");
	v->rev = ldapu_get_first(ld, e, "modifyTimestamp");
	char *mail = ldapu_get_first(ld, e, "mail");
	if (mail != NULL)
		email_add(v, mail);
	free(mail);
	char **proxies = ldapu_get_values(ld, e, "ixProxyAddresses", NULL);
	for (size_t i = 0; proxies[i] != NULL; i++)
		if (strncasecmp(proxies[i], "smtp:", 5) == 0 && strchr(proxies[i], '@') != NULL)
			email_add(v, proxies[i] + 5);
	ldapu_values_free(&proxies);
	if (cs->photos) {
		struct berval **photo = ldap_get_values_len(ld, e, "jpegPhoto");
		if (photo != NULL && photo[0] != NULL && photo[0]->bv_len > 0) {
			v->photo = xmalloc(photo[0]->bv_len);
			memcpy(v->photo, photo[0]->bv_val, photo[0]->bv_len);
			v->photo_len = photo[0]->bv_len;
		}
		ldap_value_free_len(photo);
	}
	char *csn = ldapu_get_first(ld, e, "entryCSN");
	const char *tag = csn != NULL ? csn : v->rev != NULL ? v->rev : "0";
	/* quoted-string: a CSN holds digits, '.', '#', 'Z' */
	cd->etag = xasprintf("\"%.*s\"", (int)strcspn(tag, "\"\\"), tag);
	free(csn);
}

static int card_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct card *)a)->v.uid, ((const struct card *)b)->v.uid);
}

static void cards_free(struct cards *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		vcard_free(&cs->v[i].v);
		free(cs->v[i].etag);
		ldapu_values_free(&cs->v[i].member_dns);
	}
	free(cs->v);
	memset(cs, 0, sizeof(*cs));
}

/* The entries of the address book by DN, for a group's members (members_resolve). */
struct dn_uid {
	char *dn, *uid;
};
struct dn_uids {
	struct dn_uid *v;
	size_t n;
};

static void dn_uid_entry(void *ctx, LDAP *ld, LDAPMessage *e)
{
	struct dn_uids *m = ctx;
	char *dn = ldap_get_dn(ld, e), *uid = ldapu_get_first(ld, e, "entryUUID");
	if (dn != NULL && uid != NULL && uuid_valid(uid, strlen(uid))) {
		m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
		m->v[m->n++] = (struct dn_uid){ xstrdup(dn), uid };
		uid = NULL;
	}
	ldap_memfree(dn);
	free(uid);
}

static int dn_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct dn_uid *)a)->dn, ((const struct dn_uid *)b)->dn);
}

/* Turns each group's member DNs into the UIDs of the members the user may see (one more search of the address book,
 * for the UIDs of every entry in it: a member hidden from the address book, or not readable by the user, is not in
 * it and is left out), and folds them into the group's entity tag, which then changes when a member is hidden. */
static int members_resolve(struct call *c, const char *base, struct cards *cs, struct buf *error_r)
{
	bool any = false;
	for (size_t i = 0; i < cs->n && !any; i++)
		any = cs->v[i].member_dns != NULL && cs->v[i].member_dns[0] != NULL;
	if (!any)
		return IX_OK;
	static const char *const attrs[] = { "entryUUID", NULL };
	struct dn_uids m = { 0 };
	int ret = ldapu_search_paged(c->ld, base, "(&" DAV_VISIBLE ")", attrs, DAV_PAGE, NULL, dn_uid_entry, &m,
				     error_r);
	if (m.n > 1)
		qsort(m.v, m.n, sizeof(*m.v), dn_cmp);
	for (size_t i = 0; ret == IX_OK && i < cs->n; i++) {
		struct card *cd = &cs->v[i];
		uint32_t h = 2166136261u; /* FNV-1a over the members' UIDs */
		for (size_t k = 0; cd->member_dns != NULL && cd->member_dns[k] != NULL; k++) {
			struct dn_uid key = { cd->member_dns[k], NULL }, *found;
			found = m.n > 0 ? bsearch(&key, m.v, m.n, sizeof(*m.v), dn_cmp) : NULL;
			if (found == NULL)
				continue;
			cd->v.members = xrealloc(cd->v.members, (cd->v.member_count + 1) * sizeof(*cd->v.members));
			cd->v.members[cd->v.member_count++] = xstrdup(found->uid);
			for (const char *p = found->uid; *p != '\0'; p++)
				h = (h ^ (unsigned char)*p) * 16777619u;
		}
		if (cd->member_dns != NULL) {
			char *tag = xasprintf("%.*s-%08x\"", (int)strlen(cd->etag) - 1, cd->etag, (unsigned)h);
			free(cd->etag);
			cd->etag = tag;
		}
	}
	for (size_t i = 0; i < m.n; i++) {
		free(m.v[i].dn);
		free(m.v[i].uid);
	}
	free(m.v);
	return ret;
}

/* The recipients of the address book the user may read (the directory's access rules leave out those hidden from
 * it; the filter leaves them out for themselves too), restricted to the entryUUIDs of uids (NULL: all), sorted by
 * UID. Answers 503 and returns false when the directory fails. */
static bool cards_load(struct call *c, const char *const *uids, size_t uid_count, bool photos, struct cards *cs)
{
	memset(cs, 0, sizeof(*cs));
	cs->photos = photos;
	struct buf filter = BUF_INIT;
	buf_append_str(&filter, "(&" DAV_VISIBLE);
	if (uids != NULL) {
		if (uid_count == 0) {
			buf_free(&filter);
			return true;
		}
		buf_append_str(&filter, "(|");
		for (size_t i = 0; i < uid_count; i++)
			buf_printf(&filter, "(entryUUID=%s)", uids[i]); /* checked by uuid_valid */
		buf_append_char(&filter, ')');
	}
	buf_append_char(&filter, ')');
	const char *attrs[] = { "entryUUID",
				"objectClass",
				"displayName",
				"cn",
				"givenName",
				"sn",
				"ixNickname",
				"company",
				"department",
				"title",
				"physicalDeliveryOfficeName",
				"telephoneNumber",
				"mobile",
				"modifyTimestamp",
				"entryCSN",
				"mail",
				"ixProxyAddresses",
				"member",
				photos ? "jpegPhoto" : NULL,
				NULL };
	char *base = xasprintf("ou=Recipients,%s", c->dav->cfg->suffix);
	struct buf err = BUF_INIT;
	int ret = ldapu_search_paged(c->ld, base, buf_cstr(&filter), attrs, DAV_PAGE, NULL, card_entry, cs, &err);
	if (ret == IX_OK)
		ret = members_resolve(c, base, cs, &err);
	if (ret != IX_OK) {
		log_error("CardDAV: reading the address book as %s: %s", c->login, buf_cstr(&err));
		answer(c, 503, "Service Unavailable: the directory did not answer; try again shortly");
		cards_free(cs);
	} else if (cs->n > 1) {
		qsort(cs->v, cs->n, sizeof(*cs->v), card_cmp);
	}
	buf_free(&err);
	buf_free(&filter);
	free(base);
	return ret == IX_OK;
}

static struct card *cards_find(struct cards *cs, const char *uid)
{
	struct card key = { .v = { .uid = (char *)uid } };
	return cs->n ? bsearch(&key, cs->v, cs->n, sizeof(*cs->v), card_cmp) : NULL;
}

/* The state of the whole address book as the user sees it: a hash of every card's UID and entity tag, so that it
 * changes when a card is added, changed, removed or hidden. 32 hex digits. */
static void book_state(const struct cards *cs, char out[33])
{
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	if (sha == NULL || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1)
		fatal("out of memory");
	for (size_t i = 0; i < cs->n; i++) {
		EVP_DigestUpdate(sha, cs->v[i].v.uid, strlen(cs->v[i].v.uid));
		EVP_DigestUpdate(sha, cs->v[i].etag, strlen(cs->v[i].etag) + 1);
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	EVP_DigestFinal_ex(sha, md, &md_len);
	EVP_MD_CTX_free(sha);
	for (size_t i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- request bodies ---- */

static bool is(xmlNodePtr n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL &&
	       strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr n, const char *ns, const char *name)
{
	for (xmlNodePtr k = n != NULL ? n->children : NULL; k != NULL; k = k->next)
		if (is(k, ns, name))
			return k;
	return NULL;
}

/* Reads the body as XML (no network, no external entities, no entity substitution). NULL when it is not XML. */
static xmlNodePtr body_root(struct call *c)
{
	if (c->req->body_len == 0 || c->req->body_len > INT32_MAX)
		return NULL;
	c->doc = xmlReadMemory(c->req->body, (int)c->req->body_len, "request.xml", NULL,
			       XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	return c->doc != NULL ? xmlDocGetRootElement(c->doc) : NULL;
}

/* The properties a prop element names. */
static void props_of(xmlNodePtr prop, struct props *p)
{
	for (xmlNodePtr k = prop != NULL ? prop->children : NULL; k != NULL; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
		p->v[p->n++] = (struct propreq){ k->ns != NULL ? (const char *)k->ns->href : "", (const char *)k->name,
						 k };
	}
}

/* allprop (RFC 4918 9.1): the live properties a client needs to list a collection. */
static void props_all(struct props *p)
{
	static const char *const all[][2] = {
		{ NS_DAV, "resourcetype" },   { NS_DAV, "displayname" }, { NS_DAV, "getetag" },
		{ NS_DAV, "getcontenttype" }, { NS_CS, "getctag" },      { NS_DAV, "sync-token" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(all); i++) {
		p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
		p->v[p->n++] = (struct propreq){ all[i][0], all[i][1], NULL };
	}
}

/* The vCard version an address-data element asks for (version or content-type attributes), else the Accept
 * header's. */
static int address_data_version(struct call *c, xmlNodePtr node)
{
	int version = c->version;
	xmlChar *v = node != NULL ? xmlGetProp(node, (const xmlChar *)"version") : NULL;
	if (v != NULL)
		version = strcmp((const char *)v, "4.0") == 0 ? 4 : 3;
	xmlFree(v);
	return version;
}

/* ---- answers with properties ---- */

/* Writes the element of property p of resource res (cd: the card of RES_CARD, state: the book's, or NULL) with its
 * value into out. Returns false when the resource has no such property. */
static bool prop_value(struct call *c, enum res res, const struct card *cd, const char *state, const struct propreq *p,
		       struct buf *out)
{
	bool collection = res != RES_CARD;
	if (strcmp(p->ns, NS_DAV) == 0) {
		const char *n = p->name;
		if (strcmp(n, "resourcetype") == 0) {
			buf_append_str(out, "<d:resourcetype>");
			if (collection && res != RES_PRINCIPAL)
				buf_append_str(out, "<d:collection/>");
			if (res == RES_PRINCIPAL)
				buf_append_str(out, "<d:principal/>");
			if (res == RES_BOOK)
				buf_append_str(out, "<card:addressbook/>");
			buf_append_str(out, "</d:resourcetype>");
		} else if (strcmp(n, "displayname") == 0) {
			buf_append_str(out, "<d:displayname>");
			const char *name = res == RES_ROOT        ? "Interchange"
					   : res == RES_PRINCIPAL ? c->display
					   : res == RES_HOME      ? "Address books"
					   : res == RES_BOOK      ? c->dav->cfg->org
								  : cd->v.fn;
			buf_append_xml(out, name != NULL ? name : "Address book");
			buf_append_str(out, "</d:displayname>");
		} else if (strcmp(n, "current-user-principal") == 0) {
			buf_printf(out, "<d:current-user-principal><d:href>%s</d:href></d:current-user-principal>",
				   c->principal_href);
		} else if (strcmp(n, "principal-URL") == 0 && res == RES_PRINCIPAL) {
			buf_printf(out, "<d:principal-URL><d:href>%s</d:href></d:principal-URL>", c->principal_href);
		} else if (strcmp(n, "owner") == 0 && (res == RES_HOME || res == RES_BOOK)) {
			buf_printf(out, "<d:owner><d:href>%s</d:href></d:owner>", c->principal_href);
		} else if (strcmp(n, "getetag") == 0 && res == RES_CARD) {
			buf_append_str(out, "<d:getetag>");
			buf_append_xml(out, cd->etag);
			buf_append_str(out, "</d:getetag>");
		} else if (strcmp(n, "getcontenttype") == 0 && res == RES_CARD) {
			buf_append_str(out, "<d:getcontenttype>text/vcard; charset=utf-8</d:getcontenttype>");
		} else if (strcmp(n, "sync-token") == 0 && res == RES_BOOK && state != NULL) {
			buf_printf(out, "<d:sync-token>" DAV_SYNC_TOKEN "%s</d:sync-token>", state);
		} else if (strcmp(n, "supported-report-set") == 0 && res == RES_BOOK) {
			buf_append_str(out, "<d:supported-report-set>"
					    "<d:supported-report><d:report><card:addressbook-multiget/></d:report>"
					    "</d:supported-report>"
					    "<d:supported-report><d:report><card:addressbook-query/></d:report>"
					    "</d:supported-report>"
					    "<d:supported-report><d:report><d:sync-collection/></d:report>"
					    "</d:supported-report></d:supported-report-set>");
		} else if (strcmp(n, "current-user-privilege-set") == 0) {
			/* read-only: the address book shows the directory, which changes through the administration */
			buf_append_str(out, "<d:current-user-privilege-set><d:privilege><d:read/></d:privilege>"
					    "<d:privilege><d:read-current-user-privilege-set/></d:privilege>"
					    "</d:current-user-privilege-set>");
		} else {
			return false;
		}
		return true;
	}
	if (strcmp(p->ns, NS_CARD) == 0) {
		const char *n = p->name;
		if (strcmp(n, "addressbook-home-set") == 0 && res != RES_CARD) {
			buf_printf(out, "<card:addressbook-home-set><d:href>%s</d:href></card:addressbook-home-set>",
				   c->home_href);
		} else if (strcmp(n, "addressbook-description") == 0 && res == RES_BOOK) {
			buf_append_str(out, "<card:addressbook-description>The address book of ");
			buf_append_xml(out, c->dav->cfg->org != NULL ? c->dav->cfg->org : "the organisation");
			buf_append_str(out, " (read-only)</card:addressbook-description>");
		} else if (strcmp(n, "supported-address-data") == 0 && res == RES_BOOK) {
			buf_append_str(out, "<card:supported-address-data>"
					    "<card:address-data-type content-type=\"text/vcard\" version=\"3.0\"/>"
					    "<card:address-data-type content-type=\"text/vcard\" version=\"4.0\"/>"
					    "</card:supported-address-data>");
		} else if (strcmp(n, "address-data") == 0 && res == RES_CARD) {
			struct buf text = BUF_INIT;
			vcard_write(&cd->v, address_data_version(c, p->node), &text);
			buf_append_str(out, "<card:address-data>");
			/* a character reference keeps the vCard's CR, which an XML reader would otherwise drop */
			const char *t = buf_cstr(&text);
			for (size_t len; *t != '\0'; t += len + (*t == '\r')) {
				len = strcspn(t, "\r");
				struct buf part = BUF_INIT;
				buf_append(&part, t, len);
				buf_append_xml(out, buf_cstr(&part));
				buf_free(&part);
				if (t[len] == '\r')
					buf_append_str(out, "&#13;");
			}
			buf_append_str(out, "</card:address-data>");
			buf_free(&text);
		} else {
			return false;
		}
		return true;
	}
	if (strcmp(p->ns, NS_CS) == 0 && strcmp(p->name, "getctag") == 0 && res == RES_BOOK && state != NULL) {
		buf_printf(out, "<cs:getctag>%s</cs:getctag>", state);
		return true;
	}
	return false;
}

static void multistatus_begin(struct call *c)
{
	c->resp->status = 207;
	c->resp->content_type = "application/xml; charset=utf-8";
	buf_append_str(&c->resp->body, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"" NS_DAV
				       "\" xmlns:card=\"" NS_CARD "\" xmlns:cs=\"" NS_CS "\">\n");
}

/* One d:response: the properties found (200) and those the resource has not (404). */
static void response_props(struct call *c, const char *href, enum res res, const struct card *cd, const char *state,
			   const struct props *p)
{
	struct buf *out = &c->resp->body;
	struct buf found = BUF_INIT, missing = BUF_INIT;
	for (size_t i = 0; i < p->n; i++) {
		if (prop_value(c, res, cd, state, &p->v[i], &found))
			continue;
		buf_append_str(&missing, "<x:");
		buf_append_xml(&missing, p->v[i].name);
		buf_append_str(&missing, " xmlns:x=\"");
		buf_append_xml(&missing, p->v[i].ns);
		buf_append_str(&missing, "\"/>");
	}
	buf_printf(out, "<d:response><d:href>%s</d:href>", href);
	if (found.len > 0 || missing.len == 0)
		buf_printf(out, "<d:propstat><d:prop>%s</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>",
			   buf_cstr(&found));
	if (missing.len > 0)
		buf_printf(out,
			   "<d:propstat><d:prop>%s</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>",
			   buf_cstr(&missing));
	buf_append_str(out, "</d:response>\n");
	buf_free(&found);
	buf_free(&missing);
}

static void response_status(struct call *c, const char *href, const char *status)
{
	buf_printf(&c->resp->body, "<d:response><d:href>%s</d:href><d:status>HTTP/1.1 %s</d:status></d:response>\n",
		   href, status);
}

static void response_card(struct call *c, const struct card *cd, const struct props *p)
{
	char *href = xasprintf("%s%s.vcf", c->book_href, cd->v.uid);
	response_props(c, href, RES_CARD, cd, NULL, p);
	free(href);
}

static const char *res_href(struct call *c, enum res res)
{
	return res == RES_ROOT        ? DAV_PREFIX
	       : res == RES_PRINCIPAL ? c->principal_href
	       : res == RES_HOME      ? c->home_href
				      : c->book_href;
}

static bool wants(const struct props *p, const char *ns, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].ns, ns) == 0 && strcmp(p->v[i].name, name) == 0)
			return true;
	return false;
}

/* ---- methods ---- */

static void propfind(struct call *c)
{
	const char *depth = http_request_header(c->req, "Depth");
	bool deep = depth == NULL || strcmp(depth, "0") != 0; /* "1" and "infinity" list the children */
	struct props p = { 0 };
	xmlNodePtr root = body_root(c);
	if (c->req->body_len > 0 && !is(root, NS_DAV, "propfind")) {
		answer(c, 400, "Bad Request: the body is not a DAV:propfind");
		return;
	}
	xmlNodePtr prop = child(root, NS_DAV, "prop");
	if (prop != NULL)
		props_of(prop, &p);
	else
		props_all(&p);
	struct cards cs = { 0 };
	bool book_state_wanted = wants(&p, NS_CS, "getctag") || wants(&p, NS_DAV, "sync-token");
	bool need_cards = c->res == RES_CARD || (c->res == RES_BOOK && (deep || book_state_wanted)) ||
			  (c->res == RES_HOME && deep && book_state_wanted);
	bool photos = wants(&p, NS_CARD, "address-data");
	if (need_cards) {
		const char *one[] = { c->card_uid };
		if (!cards_load(c, c->res == RES_CARD ? one : NULL, 1, photos, &cs))
			goto out;
	}
	if (c->res == RES_CARD) {
		if (cs.n == 0) {
			answer(c, 404, "Not Found: no such card (or it is hidden from the address book)");
			goto out;
		}
		multistatus_begin(c);
		response_card(c, &cs.v[0], &p);
	} else {
		char state[33];
		if (need_cards)
			book_state(&cs, state);
		multistatus_begin(c);
		response_props(c, res_href(c, c->res), c->res, NULL, need_cards ? state : NULL, &p);
		if (deep && c->res == RES_HOME)
			response_props(c, c->book_href, RES_BOOK, NULL, need_cards ? state : NULL, &p);
		for (size_t i = 0; deep && c->res == RES_BOOK && i < cs.n; i++)
			response_card(c, &cs.v[i], &p);
	}
	buf_append_str(&c->resp->body, "</d:multistatus>\n");
out:
	cards_free(&cs);
	free(p.v);
}

/* The card UID an href names in the user's address book (an absolute URL or a path), or NULL. */
static const char *href_uid(struct call *c, const char *href, char uid[DAV_UUID_LEN + 1])
{
	const char *path = href;
	if (strncmp(href, "https://", 8) == 0 || strncmp(href, "http://", 7) == 0) {
		path = strchr(strstr(href, "//") + 2, '/');
		if (path == NULL)
			return NULL;
	}
	size_t n = strlen(c->book_href);
	if (strncasecmp(path, c->book_href, n) != 0 || strlen(path + n) != DAV_UUID_LEN + 4 ||
	    strcmp(path + n + DAV_UUID_LEN, ".vcf") != 0 || !uuid_valid(path + n, DAV_UUID_LEN))
		return NULL;
	memcpy(uid, path + n, DAV_UUID_LEN);
	uid[DAV_UUID_LEN] = '\0';
	return uid;
}

static void multiget(struct call *c, xmlNodePtr root, const struct props *p)
{
	size_t n = 0;
	char(*uids)[DAV_UUID_LEN + 1] = NULL;
	const char **ptrs = NULL;
	xmlChar **hrefs = NULL;
	for (xmlNodePtr k = root->children; k != NULL; k = k->next) {
		if (!is(k, NS_DAV, "href"))
			continue;
		if (n == DAV_MULTIGET_MAX)
			break;
		hrefs = xrealloc(hrefs, (n + 1) * sizeof(*hrefs));
		uids = xrealloc(uids, (n + 1) * sizeof(*uids));
		hrefs[n] = xmlNodeGetContent(k);
		if (href_uid(c, (const char *)hrefs[n], uids[n]) == NULL)
			uids[n][0] = '\0';
		n++;
	}
	size_t m = 0;
	ptrs = xcalloc(n + 1, sizeof(*ptrs));
	for (size_t i = 0; i < n; i++)
		if (uids[i][0] != '\0')
			ptrs[m++] = uids[i];
	struct cards cs = { 0 };
	if (cards_load(c, ptrs, m, wants(p, NS_CARD, "address-data"), &cs)) {
		multistatus_begin(c);
		for (size_t i = 0; i < n; i++) {
			struct card *cd = uids[i][0] != '\0' ? cards_find(&cs, uids[i]) : NULL;
			if (cd != NULL) {
				response_card(c, cd, p);
			} else {
				struct buf h = BUF_INIT;
				buf_append_xml(&h, (const char *)hrefs[i]);
				response_status(c, buf_cstr(&h), "404 Not Found");
				buf_free(&h);
			}
		}
		buf_append_str(&c->resp->body, "</d:multistatus>\n");
	}
	cards_free(&cs);
	for (size_t i = 0; i < n; i++)
		xmlFree(hrefs[i]);
	free(hrefs);
	free(uids);
	free(ptrs);
}

/* RFC 6352 10.5.4: a text-match on every value of a property; true when one matches (negate-condition inverts). */
static bool text_match(xmlNodePtr tm, const char *const *vals, size_t n)
{
	xmlChar *text = xmlNodeGetContent(tm);
	xmlChar *type = xmlGetProp(tm, (const xmlChar *)"match-type");
	xmlChar *negate = xmlGetProp(tm, (const xmlChar *)"negate-condition");
	xmlChar *collation = xmlGetProp(tm, (const xmlChar *)"collation");
	bool octet = collation != NULL && strcmp((const char *)collation, "i;octet") == 0;
	bool neg = negate != NULL && strcmp((const char *)negate, "yes") == 0;
	bool any = false;
	for (size_t i = 0; i < n && !any; i++)
		any = vcard_text_match(vals[i], text != NULL ? (const char *)text : "", (const char *)type, octet) !=
		      neg;
	xmlFree(text);
	xmlFree(type);
	xmlFree(negate);
	xmlFree(collation);
	return any;
}

/* Does an element with a "test" attribute of anyof (default) or allof combine its conditions with AND? */
static bool test_allof(xmlNodePtr n)
{
	xmlChar *t = xmlGetProp(n, (const xmlChar *)"test");
	bool all = t != NULL && strcmp((const char *)t, "allof") == 0;
	xmlFree(t);
	return all;
}

/* RFC 6352 10.5.1: a prop-filter on the card. */
static bool prop_filter(xmlNodePtr pf, const struct vcard *v)
{
	xmlChar *name = xmlGetProp(pf, (const xmlChar *)"name");
	char storage[1024];
	const char *vals[VCARD_VALUES_MAX];
	size_t n = name != NULL ? vcard_values(v, (const char *)name, storage, sizeof(storage), vals, VCARD_VALUES_MAX)
				: 0;
	xmlFree(name);
	if (child(pf, NS_CARD, "is-not-defined") != NULL)
		return n == 0;
	bool all = test_allof(pf), result = all, any_test = false;
	for (xmlNodePtr k = pf->children; k != NULL; k = k->next) {
		if (!is(k, NS_CARD, "text-match"))
			continue; /* param-filter: our properties carry no parameters to filter on */
		any_test = true;
		bool m = text_match(k, vals, n);
		result = all ? result && m : result || m;
	}
	return any_test ? result : n > 0;
}

static bool card_matches(xmlNodePtr filter, const struct vcard *v)
{
	if (filter == NULL)
		return true;
	bool all = test_allof(filter), result = all, any = false;
	for (xmlNodePtr k = filter->children; k != NULL; k = k->next) {
		if (!is(k, NS_CARD, "prop-filter"))
			continue;
		any = true;
		bool m = prop_filter(k, v);
		result = all ? result && m : result || m;
	}
	return any ? result : true;
}

static void query(struct call *c, xmlNodePtr root, const struct props *p)
{
	xmlNodePtr filter = child(root, NS_CARD, "filter");
	xmlNodePtr nres = child(child(root, NS_CARD, "limit"), NS_CARD, "nresults");
	size_t limit = SIZE_MAX;
	if (nres != NULL) {
		xmlChar *t = xmlNodeGetContent(nres);
		limit = t != NULL ? strtoul((const char *)t, NULL, 10) : SIZE_MAX;
		xmlFree(t);
	}
	struct cards cs = { 0 };
	if (!cards_load(c, NULL, 0, wants(p, NS_CARD, "address-data"), &cs))
		return;
	multistatus_begin(c);
	size_t shown = 0;
	bool truncated = false;
	for (size_t i = 0; i < cs.n; i++) {
		if (!card_matches(filter, &cs.v[i].v))
			continue;
		if (shown == limit) {
			truncated = true;
			break;
		}
		response_card(c, &cs.v[i], p);
		shown++;
	}
	if (truncated)
		response_status(c, c->book_href, "507 Insufficient Storage");
	buf_append_str(&c->resp->body, "</d:multistatus>\n");
	cards_free(&cs);
}

/* RFC 6578: no token gives every card and the current token; the current token gives nothing new; an older one is
 * refused as no longer valid (the client then lists the address book again): the directory keeps no history of
 * deletions to answer it with. */
static void sync_collection(struct call *c, xmlNodePtr root, const struct props *p)
{
	xmlChar *token = xmlNodeGetContent(child(root, NS_DAV, "sync-token"));
	struct cards cs = { 0 };
	if (!cards_load(c, NULL, 0, wants(p, NS_CARD, "address-data"), &cs)) {
		xmlFree(token);
		return;
	}
	char state[33];
	book_state(&cs, state);
	const char *t = token != NULL ? (const char *)token : "";
	t += strspn(t, " \t\r\n");
	bool initial = t[0] == '\0';
	bool current = strncmp(t, DAV_SYNC_TOKEN, strlen(DAV_SYNC_TOKEN)) == 0 &&
		       strncmp(t + strlen(DAV_SYNC_TOKEN), state, 32) == 0;
	if (!initial && !current) {
		precondition(c, 403, "d:valid-sync-token");
	} else {
		multistatus_begin(c);
		for (size_t i = 0; initial && i < cs.n; i++)
			response_card(c, &cs.v[i], p);
		buf_printf(&c->resp->body, "<d:sync-token>" DAV_SYNC_TOKEN "%s</d:sync-token>\n</d:multistatus>\n",
			   state);
	}
	xmlFree(token);
	cards_free(&cs);
}

static void report(struct call *c)
{
	xmlNodePtr root = body_root(c);
	if (root == NULL) {
		answer(c, 400, "Bad Request: a REPORT needs an XML body");
		return;
	}
	if (c->res != RES_BOOK) {
		precondition(c, 403, "d:supported-report");
		return;
	}
	struct props p = { 0 };
	xmlNodePtr prop = child(root, NS_DAV, "prop");
	if (prop != NULL)
		props_of(prop, &p);
	else
		props_all(&p);
	if (is(root, NS_CARD, "addressbook-multiget"))
		multiget(c, root, &p);
	else if (is(root, NS_CARD, "addressbook-query"))
		query(c, root, &p);
	else if (is(root, NS_DAV, "sync-collection"))
		sync_collection(c, root, &p);
	else
		precondition(c, 403, "d:supported-report");
	free(p.v);
}

static void get_card(struct call *c)
{
	if (c->res != RES_CARD) {
		answer(c, 405, "Method Not Allowed: GET a card; list the address book with PROPFIND or REPORT");
		http_response_header(c->resp, "Allow", "OPTIONS, PROPFIND, REPORT");
		return;
	}
	const char *one[] = { c->card_uid };
	struct cards cs = { 0 };
	if (!cards_load(c, one, 1, true, &cs))
		return;
	if (cs.n == 0) {
		answer(c, 404, "Not Found: no such card (or it is hidden from the address book)");
	} else {
		const char *inm = http_request_header(c->req, "If-None-Match");
		http_response_header(c->resp, "ETag", cs.v[0].etag);
		if (inm != NULL && strstr(inm, cs.v[0].etag) != NULL) {
			c->resp->status = 304;
		} else {
			c->resp->content_type = c->version == 4 ? "text/vcard; charset=utf-8; version=4.0"
								: "text/vcard; charset=utf-8";
			vcard_write(&cs.v[0].v, c->version, &c->resp->body);
		}
	}
	cards_free(&cs);
}

void dav_handle(struct dav *dav, const struct http_request *req, struct http_response *resp)
{
	struct call c = { .dav = dav, .req = req, .resp = resp, .version = 3 };
	const char *m = req->method;
	if (!req->tls) {
		http_response_to_https(req, resp, dav->cfg->ports[PORT_HTTPS], dav->cfg->hostname,
				       "Moved Permanently: the address book is served over HTTPS only");
		return;
	}
	if (strcmp(req->path, DAV_WELL_KNOWN) == 0 || strcmp(req->path, DAV_WELL_KNOWN "/") == 0) {
		/* RFC 6764 6: the context path, where PROPFIND finds the principal */
		http_response_header(resp, "Location", DAV_PREFIX);
		answer(&c, 301, "Moved Permanently: " DAV_PREFIX);
		return;
	}
	http_response_header(resp, "DAV", "1, 3, addressbook");
	if (strcmp(m, "OPTIONS") == 0) {
		http_response_header(resp, "Allow", "OPTIONS, GET, HEAD, PROPFIND, REPORT");
		return;
	}
	static const char *const writes[] = { "PUT",  "DELETE", "PROPPATCH", "MKCOL",  "MOVE",
					      "COPY", "POST",   "LOCK",      "UNLOCK", "ACL" };
	bool write = false;
	for (size_t i = 0; i < IX_ARRAY_LEN(writes); i++)
		write = write || strcmp(m, writes[i]) == 0;
	bool known = write || strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "PROPFIND") == 0 ||
		     strcmp(m, "REPORT") == 0;
	if (!known) {
		http_response_header(resp, "Allow", "OPTIONS, GET, HEAD, PROPFIND, REPORT");
		answer(&c, 405, "Method Not Allowed");
		return;
	}
	if (!sign_in(&c))
		goto out;
	if (!resource(&c))
		goto out;
	const char *accept = http_request_header(req, "Accept");
	if (accept != NULL && strstr(accept, "version=4.0") != NULL)
		c.version = 4;
	if (write)
		answer(&c, 403,
		       "Forbidden: the address book is read-only; it shows the directory, which the "
		       "administrators change");
	else if (strcmp(m, "PROPFIND") == 0)
		propfind(&c);
	else if (strcmp(m, "REPORT") == 0)
		report(&c);
	else
		get_card(&c);
out:
	if (c.doc != NULL)
		xmlFreeDoc(c.doc);
	if (c.ld != NULL)
		ldap_unbind_ext_s(c.ld, NULL, NULL);
	free(c.login);
	free(c.display);
	free(c.principal_href);
	free(c.home_href);
	free(c.book_href);
}
