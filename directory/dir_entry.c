/* dir_entry.c - replica entries: the attributes kept, building an immutable entry from LDAP values, and the
 * normalization of DNs and addresses used as map keys. */
#include "directory/dir_private.h"

#include <ldap.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/util.h"

static const char *const attr_names[DA_COUNT + 1] = {
	[DA_OBJECTCLASS] = "objectClass",
	[DA_UID] = "uid",
	[DA_CN] = "cn",
	[DA_SN] = "sn",
	[DA_GIVENNAME] = "givenName",
	[DA_DISPLAYNAME] = "displayName",
	[DA_MAIL] = "mail",
	[DA_PROXY] = "ixProxyAddresses",
	[DA_NICKNAME] = "ixNickname",
	[DA_HOMESERVER] = "ixHomeServer",
	[DA_GUID] = "ixMailboxGuid",
	[DA_HIDE] = "ixHideFromAddressBook",
	[DA_QUOTA_BYTES] = "ixQuotaBytes",
	[DA_QUOTA_MESSAGES] = "ixQuotaMessages",
	[DA_QUOTA_WARN] = "ixQuotaWarnBytes",
	[DA_FORWARD_TO] = "ixForwardTo",
	[DA_DELIVER_AND_REDIRECT] = "ixDeliverAndRedirect",
	[DA_ACCEPT_FROM] = "ixAcceptFrom",
	[DA_REJECT_FROM] = "ixRejectFrom",
	[DA_REQUIRE_AUTH] = "ixRequireAuthenticatedSender",
	[DA_MAX_RECEIVE] = "ixMaxReceiveSize",
	[DA_MEMBERS_ONLY] = "ixMembersOnly",
	[DA_SEND_AS] = "ixSendAs",
	[DA_SEND_ON_BEHALF] = "ixSendOnBehalf",
	[DA_FULL_ACCESS] = "ixFullAccess",
	[DA_TARGET] = "ixTargetAddress",
	[DA_MEMBER] = "member",
	[DA_MEMBER_URL] = "ixMemberURL",
	[DA_FOLDER_PATH] = "ixFolderPath",
	[DA_HOSTNAME] = "ixHostName",
	[DA_SERVER_ROLE] = "ixServerRole",
	[DA_LDAP_PORT] = "ixLdapPort",
	[DA_SMTP_PORT] = "ixSmtpPort",
	[DA_SUBMISSION_PORT] = "ixSubmissionPort",
	[DA_SUBMISSIONS_PORT] = "ixSubmissionsPort",
	[DA_IMAP_PORT] = "ixImapPort",
	[DA_IMAPS_PORT] = "ixImapsPort",
	[DA_POP3_PORT] = "ixPop3Port",
	[DA_POP3S_PORT] = "ixPop3sPort",
	[DA_SIEVE_PORT] = "ixSievePort",
	[DA_METRICS_PORT] = "ixMetricsPort",
	[DA_DOMAIN_TYPE] = "ixDomainType",
	[DA_DKIM_SELECTOR] = "ixDkimSelector",
	[DA_ADDRESS_TEMPLATE] = "ixAddressTemplate",
	[DA_NICKNAME_TEMPLATE] = "ixNicknameTemplate",
	[DA_POLICY_PRIORITY] = "ixPolicyPriority",
	[DA_POLICY_FILTER] = "ixPolicyFilter",
	[DA_ADDRESS_SPACE] = "ixAddressSpace",
	[DA_SMART_HOST] = "ixSmartHost",
	[DA_CONNECTOR_COST] = "ixConnectorCost",
	[DA_SERVER_SETTING] = "ixServerSetting",
	[DA_ALLOW_SENDER_FROM] = "ixAllowSenderFrom",
	[DA_SERVER_CERT] = "userCertificate;binary",
	[DA_OAUTH_KEYS] = "ixOAuthKeys",
	[DA_OAUTH_AUDIENCE] = "ixOAuthAudience",
	[DA_OAUTH_CLAIM] = "ixOAuthClaim",
	[DA_KERBEROS_REALM] = "ixKerberosRealm",
	[DA_USER_PRINCIPAL] = "ixUserPrincipalName",
	[DA_SIEVE_SCRIPT] = "ixSieveScript",
	[DA_COUNT] = NULL,
};
_Static_assert(sizeof(attr_names) / sizeof(attr_names[0]) == DA_COUNT + 1, "one name per attribute");

/* Largest raw value kept (the schema's longest bound is 4096; a longer value is cut at a character boundary
 * only in the sense of bytes: such values do not occur through slapd's syntax checks). */
#define DIR_VALUE_MAX 65536
/* Smallest arena chunk. */
#define DIR_CHUNK_MIN 1024

const char *dir_attr_name(enum dir_attr attr)
{
	return attr >= 0 && attr < DA_COUNT ? attr_names[attr] : "?";
}

const char *const *dir_attr_names(void)
{
	return attr_names;
}

int dir_attr_lookup(const char *name)
{
	for (int i = 0; i < DA_COUNT; i++) {
		if (strcasecmp(attr_names[i], name) == 0)
			return i;
	}
	return -1;
}

bool dir_attr_is_dn(enum dir_attr attr)
{
	return dir_dn_index(attr) >= 0;
}

/* --- arena: an entry's strings and arrays live in a few chunks freed together --- */

struct dir_chunk {
	struct dir_chunk *next;
	size_t used, cap;
	_Alignas(64) char data[]; /* cache-line aligned: an entry's hot fields start a line */
};

static struct dir_chunk *chunk_new(size_t cap)
{
	size_t size = (sizeof(struct dir_chunk) + cap + 63) & ~(size_t)63;
	struct dir_chunk *c = aligned_alloc(64, size);
	if (c == NULL)
		fatal("out of memory (%zu bytes for a directory entry)", size);
	c->next = NULL;
	c->used = 0;
	c->cap = size - sizeof(struct dir_chunk);
	return c;
}

static void *arena_alloc(struct dir_chunk **head, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct dir_chunk *c = *head;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > DIR_CHUNK_MIN ? n : DIR_CHUNK_MIN;
		c = chunk_new(cap);
		c->next = *head;
		*head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

/* Starts an arena whose first chunk holds cap bytes. */
static void arena_start(struct dir_chunk **head, size_t cap)
{
	*head = chunk_new(cap);
}

static const char *arena_strndup(struct dir_chunk **head, const char *s, size_t len)
{
	char *p = arena_alloc(head, len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static void arena_free(struct dir_chunk *c)
{
	while (c != NULL) {
		struct dir_chunk *next = c->next;
		free(c);
		c = next;
	}
}

/* --- normalization --- */

static void ascii_lower(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	}
}

void dir_dn_normalize(const char *dn, struct buf *out)
{
	size_t start = out->len;
	LDAPDN ldn = NULL;
	char *str = NULL;
	if (ldap_str2dn(dn, &ldn, LDAP_DN_FORMAT_LDAP) == LDAP_SUCCESS &&
	    ldap_dn2str(ldn, &str, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && str != NULL)
		buf_append_str(out, str);
	else
		buf_append_str(out, dn);
	if (str != NULL)
		ldap_memfree(str);
	if (ldn != NULL)
		ldap_dnfree(ldn);
	buf_reserve(out, 0);
	if (out->data != NULL)
		ascii_lower(out->data + start, out->len - start);
}

/* ASCII lower case of each byte, 0 for control characters (refused in addresses). */
static const unsigned char address_fold[256] = {
#define F4(c) F1(c), F1(c + 1), F1(c + 2), F1(c + 3)
#define F1(c) ((c) < 0x20 || (c) == 0x7f ? 0 : (c) >= 'A' && (c) <= 'Z' ? (c) - 'A' + 'a' : (c))
#define F16(c) F4(c), F4(c + 4), F4(c + 8), F4(c + 12)
	F16(0),   F16(16),  F16(32),  F16(48),  F16(64),  F16(80),  F16(96),  F16(112),
	F16(128), F16(144), F16(160), F16(176), F16(192), F16(208), F16(224), F16(240),
#undef F16
#undef F1
#undef F4
};

size_t dir_address_key(const char *address, size_t len, char *key)
{
	if (len == 0 || len > DIR_ADDRESS_MAX)
		return 0;
	bool at = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = address_fold[(unsigned char)address[i]];
		if (c == 0)
			return 0;
		at |= c == '@';
		key[i] = (char)c;
	}
	key[len] = '\0';
	return at ? len : 0;
}

bool dir_proxy_smtp(const char *value, const char **address_r, bool *primary_r)
{
	const char *colon = strchr(value, ':');
	const char *at = strchr(value, '@');
	if (colon == NULL || (at != NULL && at < colon)) {
		*address_r = value;
		*primary_r = false;
		return true;
	}
	if (colon - value != 4 || strncasecmp(value, "smtp", 4) != 0)
		return false;
	*address_r = colon + 1;
	*primary_r = strncmp(value, "SMTP", 4) == 0;
	return true;
}

/* --- builder --- */

void dir_builder_init(struct dir_builder *b, const char *dn, const unsigned char uuid[16])
{
	memset(b, 0, sizeof(*b));
	b->dn = xstrdup(dn != NULL ? dn : "");
	if (uuid != NULL)
		memcpy(b->uuid, uuid, sizeof(b->uuid));
}

void dir_builder_add_id(struct dir_builder *b, enum dir_attr attr, const char *value, size_t len)
{
	if (attr < 0 || attr >= DA_COUNT || len > DIR_VALUE_MAX)
		return;
	if (b->count == b->cap) {
		b->cap = b->cap == 0 ? 16 : b->cap * 2;
		b->vals = xrealloc(b->vals, b->cap * sizeof(*b->vals));
	}
	b->vals[b->count].attr = attr;
	b->vals[b->count].value = xstrndup(value, len);
	b->count++;
}

void dir_builder_add(struct dir_builder *b, const char *attr_name, const char *value, size_t len)
{
	int attr = dir_attr_lookup(attr_name);
	if (attr >= 0)
		dir_builder_add_id(b, (enum dir_attr)attr, value, len);
}

void dir_builder_from_entry(struct dir_builder *b, const struct dir_entry *e)
{
	dir_builder_init(b, e->dn, e->uuid);
	for (int a = 0; a < DA_COUNT; a++) {
		for (size_t i = 0; i < e->nvals[a]; i++)
			dir_builder_add_id(b, (enum dir_attr)a, e->vals[a][i], strlen(e->vals[a][i]));
	}
}

void dir_builder_replace_ref(struct dir_builder *b, const char *ndn, const char *new_dn)
{
	struct buf norm = BUF_INIT;
	size_t out = 0;
	for (size_t i = 0; i < b->count; i++) {
		struct dir_builder_val *v = &b->vals[i];
		if (dir_attr_is_dn((enum dir_attr)v->attr)) {
			buf_reset(&norm);
			dir_dn_normalize(v->value, &norm);
			if (strcmp(buf_cstr(&norm), ndn) == 0) {
				free(v->value);
				if (new_dn == NULL)
					continue;
				v->value = xstrdup(new_dn);
			}
		}
		b->vals[out++] = *v;
	}
	b->count = out;
	buf_free(&norm);
}

void dir_builder_free(struct dir_builder *b)
{
	for (size_t i = 0; i < b->count; i++)
		free(b->vals[i].value);
	free(b->vals);
	free(b->dn);
	memset(b, 0, sizeof(*b));
}

static bool has_class(const struct dir_entry *e, const char *name)
{
	for (size_t i = 0; i < e->nvals[DA_OBJECTCLASS]; i++) {
		if (strcasecmp(e->vals[DA_OBJECTCLASS][i], name) == 0)
			return true;
	}
	return false;
}

static long long number(const struct dir_entry *e, enum dir_attr a)
{
	unsigned long long v;
	if (e->nvals[a] == 0 || parse_uint(e->vals[a][0], LLONG_MAX, &v) < 0)
		return -1;
	return (long long)v;
}

static bool boolean(const struct dir_entry *e, enum dir_attr a)
{
	return e->nvals[a] > 0 && strcasecmp(e->vals[a][0], "TRUE") == 0;
}

static void add_address(struct dir_entry *e, const char *address, size_t cap)
{
	char key[DIR_ADDRESS_MAX + 1];
	size_t len = dir_address_key(address, strlen(address), key);
	if (len == 0)
		return;
	for (size_t i = 0; i < e->naddrs; i++) {
		if (e->addr_key_lens[i] == len && memcmp(e->addr_keys[i], key, len) == 0)
			return;
	}
	if (e->naddrs >= cap)
		return;
	e->addrs[e->naddrs] = address;
	e->addr_keys[e->naddrs] = arena_strndup(&e->mem, key, len);
	e->addr_key_lens[e->naddrs] = len;
	e->naddrs++;
}

static const char *lower_copy(struct dir_entry *e, const char *s)
{
	size_t len = strlen(s);
	char *p = arena_alloc(&e->mem, len + 1);
	memcpy(p, s, len + 1);
	ascii_lower(p, len);
	return p;
}

static const char *first(const struct dir_entry *e, enum dir_attr a)
{
	return e->nvals[a] > 0 ? e->vals[a][0] : NULL;
}

static void make_template(struct dir_entry *e)
{
	struct dir_recipient *r = &e->tmpl;
	r->type = (enum dir_type)e->kind;
	r->dn = e->dn;
	r->login = e->kind == DIR_KIND_USER ? first(e, DA_UID) : NULL;
	r->nickname = first(e, DA_NICKNAME);
	r->display_name = e->nvals[DA_DISPLAYNAME] > 0 ? first(e, DA_DISPLAYNAME) : first(e, DA_CN);
	r->given_name = first(e, DA_GIVENNAME);
	r->surname = first(e, DA_SN);
	r->primary_address = e->primary;
	r->addresses = e->addrs;
	r->address_count = e->naddrs;
	r->target_address = first(e, DA_TARGET);
	r->home_server_dn = first(e, DA_HOMESERVER);
	r->mailbox_guid = first(e, DA_GUID);
	r->hidden = e->hidden;
	r->quota_bytes = e->quota_bytes;
	r->quota_messages = e->quota_messages;
	r->quota_warn_bytes = e->quota_warn_bytes;
	r->forward_to = first(e, DA_FORWARD_TO);
	r->deliver_and_redirect = e->deliver_and_redirect;
	r->accept_from = e->vals[DA_ACCEPT_FROM];
	r->accept_from_count = e->nvals[DA_ACCEPT_FROM];
	r->reject_from = e->vals[DA_REJECT_FROM];
	r->reject_from_count = e->nvals[DA_REJECT_FROM];
	r->require_authenticated_sender = e->require_auth;
	r->max_receive_size = e->max_receive_size;
	r->members_only = e->members_only;
	r->send_as = e->vals[DA_SEND_AS];
	r->send_as_count = e->nvals[DA_SEND_AS];
	r->send_on_behalf = e->vals[DA_SEND_ON_BEHALF];
	r->send_on_behalf_count = e->nvals[DA_SEND_ON_BEHALF];
	r->full_access = e->vals[DA_FULL_ACCESS];
	r->full_access_count = e->nvals[DA_FULL_ACCESS];
	r->members = e->vals[DA_MEMBER];
	r->member_count = e->nvals[DA_MEMBER];
	r->member_url = first(e, DA_MEMBER_URL);
	r->folder_path = first(e, DA_FOLDER_PATH);
	/* versions before 0.9 wrote the path with a leading slash ("/Sales/Leads"): the same folder */
	while (r->folder_path != NULL && r->folder_path[0] == '/')
		r->folder_path++;
}

struct dir_entry *dir_builder_finish(struct dir_builder *b)
{
	/* The entry and everything it points to share one block, sized from the builder with the arena's rounding
	 * (an upper bound: address keys are counted for every proxy and mail value), so that a resolution touches
	 * few cache lines and pages and nothing is wasted. DN values are normalized once, here. */
#define R16(n) (((n) + 15) & ~(size_t)15)
	size_t counts[DA_COUNT] = { 0 };
	struct buf *norms = xcalloc(b->count + 1, sizeof(*norms));
	struct buf *ndn = &norms[b->count];
	dir_dn_normalize(b->dn, ndn);
	size_t dnlen = strlen(b->dn);
	size_t size = R16(sizeof(struct dir_entry)) + R16(dnlen + 1) + R16(ndn->len + 1);
	for (size_t i = 0; i < b->count; i++) {
		int a = b->vals[i].attr;
		size_t len = strlen(b->vals[i].value);
		counts[a]++;
		size += R16(len + 1);
		if (dir_attr_is_dn((enum dir_attr)a)) {
			dir_dn_normalize(b->vals[i].value, &norms[i]);
			size += R16(norms[i].len + 1);
		}
		if (a == DA_PROXY || a == DA_MAIL || a == DA_UID || a == DA_CN)
			size += R16(len + 1); /* address key, login key, domain key */
	}
	for (int a = 0; a < DA_COUNT; a++) {
		if (counts[a] > 0)
			size += R16((counts[a] + 1) * sizeof(char *)) * (dir_attr_is_dn((enum dir_attr)a) ? 2 : 1);
	}
	size += 3 * R16((counts[DA_PROXY] + counts[DA_MAIL] + 1) * sizeof(char *));
#undef R16
	struct dir_chunk *mem;
	arena_start(&mem, size);
	struct dir_entry *e = arena_alloc(&mem, sizeof(*e));
	memset(e, 0, sizeof(*e));
	e->mem = mem;
	atomic_init(&e->refs, 1);
	memcpy(e->uuid, b->uuid, sizeof(e->uuid));
	e->dn = arena_strndup(&e->mem, b->dn, dnlen);
	e->ndn = arena_strndup(&e->mem, buf_cstr(ndn), ndn->len);
	e->ndn_len = ndn->len;

	for (int a = 0; a < DA_COUNT; a++) {
		if (counts[a] == 0)
			continue;
		e->vals[a] = arena_alloc(&e->mem, (counts[a] + 1) * sizeof(char *));
		int d = dir_dn_index((enum dir_attr)a);
		if (d >= 0)
			e->nref[d] = arena_alloc(&e->mem, (counts[a] + 1) * sizeof(char *));
	}
	for (size_t i = 0; i < b->count; i++) {
		int a = b->vals[i].attr;
		const char *v = arena_strndup(&e->mem, b->vals[i].value, strlen(b->vals[i].value));
		int d = dir_dn_index((enum dir_attr)a);
		if (d >= 0) {
			e->nref[d][e->nvals[a]] = arena_strndup(&e->mem, buf_cstr(&norms[i]), norms[i].len);
			e->nref[d][e->nvals[a] + 1] = NULL;
		}
		e->vals[a][e->nvals[a]++] = v;
		e->vals[a][e->nvals[a]] = NULL;
	}
	for (size_t i = 0; i <= b->count; i++)
		buf_free(&norms[i]);
	free(norms);

	if (has_class(e, "ixMailUser"))
		e->kind = DIR_KIND_USER;
	else if (has_class(e, "ixContact"))
		e->kind = DIR_KIND_CONTACT;
	else if (has_class(e, "ixDistributionList"))
		e->kind = DIR_KIND_LIST;
	else if (has_class(e, "ixPublicFolder"))
		e->kind = DIR_KIND_FOLDER;
	else if (has_class(e, "ixServer"))
		e->kind = DIR_KIND_SERVER;
	else if (has_class(e, "ixAcceptedDomain"))
		e->kind = DIR_KIND_DOMAIN;
	else if (has_class(e, "ixRecipientPolicy"))
		e->kind = DIR_KIND_POLICY;
	else if (has_class(e, "ixConnector"))
		e->kind = DIR_KIND_CONNECTOR;
	else if (has_class(e, "ixOAuthIssuer"))
		e->kind = DIR_KIND_OAUTH_ISSUER;
	else if (has_class(e, "ixKerberos"))
		e->kind = DIR_KIND_KERBEROS;
	else if (has_class(e, "ixSieveGlobal"))
		e->kind = DIR_KIND_SIEVE_GLOBAL;

	if (e->kind >= DIR_KIND_USER && e->kind <= DIR_KIND_FOLDER) {
		size_t cap = e->nvals[DA_PROXY] + e->nvals[DA_MAIL];
		e->addrs = arena_alloc(&e->mem, (cap + 1) * sizeof(char *));
		e->addr_keys = arena_alloc(&e->mem, (cap + 1) * sizeof(char *));
		e->addr_key_lens = arena_alloc(&e->mem, (cap + 1) * sizeof(size_t));
		const char *smtp_primary = NULL;
		for (size_t i = 0; i < e->nvals[DA_PROXY]; i++) {
			const char *address;
			bool primary;
			if (!dir_proxy_smtp(e->vals[DA_PROXY][i], &address, &primary))
				continue;
			if (primary && smtp_primary == NULL && *address != '\0')
				smtp_primary = address;
			add_address(e, address, cap);
		}
		for (size_t i = 0; i < e->nvals[DA_MAIL]; i++)
			add_address(e, e->vals[DA_MAIL][i], cap);
		e->addrs[e->naddrs] = NULL;
		e->primary = e->nvals[DA_MAIL] > 0 ? e->vals[DA_MAIL][0] : smtp_primary;
		if (e->kind == DIR_KIND_USER && e->nvals[DA_UID] > 0)
			e->login_key = lower_copy(e, e->vals[DA_UID][0]);
		if (e->kind == DIR_KIND_USER && e->nvals[DA_USER_PRINCIPAL] > 0)
			e->principal_key = lower_copy(e, e->vals[DA_USER_PRINCIPAL][0]);
	}
	if (e->kind == DIR_KIND_DOMAIN && e->nvals[DA_CN] > 0)
		e->domain_key = lower_copy(e, e->vals[DA_CN][0]);
	if (e->nvals[DA_HOMESERVER] > 0) {
		const char *home = e->nref[dir_dn_index(DA_HOMESERVER)][0];
		e->home_len = strlen(home);
		e->home_hash = dir_hash(home, e->home_len);
	}
	e->hidden = boolean(e, DA_HIDE);
	e->deliver_and_redirect = boolean(e, DA_DELIVER_AND_REDIRECT);
	e->require_auth = boolean(e, DA_REQUIRE_AUTH);
	e->members_only = boolean(e, DA_MEMBERS_ONLY);
	e->quota_bytes = number(e, DA_QUOTA_BYTES);
	e->quota_messages = number(e, DA_QUOTA_MESSAGES);
	e->quota_warn_bytes = number(e, DA_QUOTA_WARN);
	e->max_receive_size = number(e, DA_MAX_RECEIVE);
	make_template(e);
	dir_builder_free(b);
	return e;
}

bool dir_entry_one_block(const struct dir_entry *e)
{
	return e->mem != NULL && e->mem->next == NULL;
}

struct dir_entry *dir_entry_ref(struct dir_entry *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	return e;
}

void dir_entry_unref(struct dir_entry *e)
{
	if (e == NULL)
		return;
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
		return;
	arena_free(e->mem); /* e lives in the first chunk: gone after this */
}
