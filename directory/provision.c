/* provision.c - recipient provisioning over LDAP (ldapi, EXTERNAL, as the administrator) and address
 * generation from recipient policies. The unique overlay is the last word on address ownership; the checks
 * here exist to give a person a clear sentence before slapd would answer "constraint violation". */
#include "directory/provision.h"
#include "directory/addrgen.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "common/log.h"
#include "common/settings.h"
#include "directory/secrets.h"
#include "directory/slapd.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RECIPIENT_FILTER "(objectClass=ixRecipient)"

struct prov {
	LDAP *ld;
	const struct config *cfg;
	char *recipients_dn; /* ou=Recipients,<suffix> */
	char *folders_dn;    /* ou=Public Folders,<suffix> */
};

static struct prov *prov_wrap(const struct config *cfg, LDAP *ld)
{
	struct prov *p = xcalloc(1, sizeof(*p));
	p->ld = ld;
	p->cfg = cfg;
	p->recipients_dn = xasprintf("ou=Recipients,%s", cfg->suffix);
	p->folders_dn = xasprintf("ou=Public Folders,%s", cfg->suffix);
	return p;
}

int prov_open(const struct config *cfg, struct prov **prov_r, struct buf *error_r)
{
	char *uri = config_ldapi_uri(cfg);
	LDAP *ld;
	struct buf err = BUF_INIT;
	int ret = ldapu_connect_external(uri, &ld, &err);
	free(uri);
	if (ret != IX_OK) {
		buf_printf(error_r, "the directory is not running (%s): start it with 'interchange start --data %s'",
			   buf_cstr(&err), cfg->data_dir);
		buf_free(&err);
		return IX_EUNAVAIL;
	}
	buf_free(&err);
	*prov_r = prov_wrap(cfg, ld);
	return IX_OK;
}

char *prov_login_dn(const struct config *cfg, const char *login)
{
	if (strcmp(login, PROV_ADMIN_LOGIN) == 0)
		return xstrdup(cfg->admin_dn);
	struct buf b = BUF_INIT;
	buf_append_str(&b, "uid=");
	ldapu_escape_dn(&b, login, strlen(login));
	buf_printf(&b, ",ou=Recipients,%s", cfg->suffix);
	return buf_steal(&b);
}

int prov_open_as(const struct config *cfg, const char *login, const char *password, struct prov **prov_r,
		 struct buf *error_r)
{
	if (!prov_login_valid(login) || password == NULL || password[0] == '\0') {
		buf_append_str(error_r, "wrong login or password");
		return IX_EAUTH;
	}
	char *uri = config_ldapi_uri(cfg), *dn = prov_login_dn(cfg, login);
	LDAP *ld;
	struct buf err = BUF_INIT;
	int ret = ldapu_connect_simple(uri, dn, password, &ld, &err);
	free(uri);
	free(dn);
	if (ret == IX_EAUTH)
		buf_append_str(error_r, "wrong login or password");
	else if (ret != IX_OK)
		buf_printf(error_r, "the directory is not answering (%s): is the system running?", buf_cstr(&err));
	buf_free(&err);
	if (ret == IX_OK)
		*prov_r = prov_wrap(cfg, ld);
	return ret;
}

void prov_close(struct prov **prov)
{
	struct prov *p = *prov;
	if (p == NULL)
		return;
	ldap_unbind_ext_s(p->ld, NULL, NULL);
	free(p->recipients_dn);
	free(p->folders_dn);
	free(p);
	*prov = NULL;
}

/* ---- validation ---- */

int prov_login_valid(const char *login)
{
	size_t len = strlen(login);
	if (len == 0 || len > PROV_MAX_LOGIN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = login[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '-' && c != '_')))
			return 0;
	}
	return 1;
}

int prov_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > PROV_MAX_NAME || name[0] == ' ' || name[len - 1] == ' ')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

int prov_address_valid(const char *address)
{
	size_t len = strlen(address);
	const char *at = strrchr(address, '@');
	if (len == 0 || len > PROV_MAX_ADDRESS || at == NULL || at == address || (size_t)(at - address) > 64)
		return 0;
	for (const char *c = address; c < at; c++) {
		unsigned char u = (unsigned char)*c;
		int atext = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
			    strchr("!#$%&'*+-/=?^_`{|}~", u) != NULL || u >= 0x80;
		if (u == '.') {
			if (c == address || c + 1 == at || c[1] == '.')
				return 0;
		} else if (!atext || u == 0) {
			return 0;
		}
	}
	return config_domain_valid(at + 1);
}

/* ---- small LDAP helpers ---- */

/* A base-scope read of an entry found a moment ago; IX_ENOTFOUND (with a sentence) when it went away meanwhile. */
static int read_entry(struct prov *p, const char *dn, const char *filter, const char *const *attrs, LDAPMessage **res_r,
		      struct buf *error_r)
{
	int ret = ldapu_search(p->ld, dn, LDAP_SCOPE_BASE, filter, attrs, res_r, error_r);
	if (ret == IX_ENOTFOUND)
		buf_printf(error_r, "%s no longer exists", dn);
	return ret;
}

/* A search over one of the organisation's containers; one that does not exist (an older directory) holds nothing. */
static int list_search(struct prov *p, const char *base, int scope, const char *filter, const char *const *attrs,
		       LDAPMessage **res_r, struct buf *error_r)
{
	int ret = ldapu_search(p->ld, base, scope, filter, attrs, res_r, error_r);
	return ret == IX_ENOTFOUND ? IX_OK : ret;
}

static int modify(struct prov *p, const char *dn, LDAPMod **mods, const char *what, struct buf *error_r)
{
	if (mods == NULL)
		return IX_OK;
	struct buf why = BUF_INIT;
	int ret = ldapu_modify(p->ld, dn, mods, &why);
	ldapu_mods_free(mods);
	if (ret == IX_ENOTFOUND)
		buf_printf(error_r, "%s: %s no longer exists", what, dn);
	else if (ret != IX_OK)
		buf_printf(error_r, "%s: %s", what, buf_cstr(&why));
	buf_free(&why);
	return ret;
}

static int is_list(struct prov *p, const char *dn)
{
	return ldapu_entry_matches(p->ld, dn, "(objectClass=ixDistributionList)");
}

/* The DN of the entry that owns address (in ixProxyAddresses or mail), or NULL. */
char *prov_address_owner(struct prov *p, const char *address)
{
	struct buf f = BUF_INIT, err = BUF_INIT;
	size_t len = strlen(address);
	buf_append_str(&f, "(|(ixProxyAddresses=smtp:");
	ldapu_escape_filter(&f, address, len);
	buf_append_str(&f, ")(mail=");
	ldapu_escape_filter(&f, address, len);
	buf_append_str(&f, "))");
	const char *attrs[] = { (char *)LDAP_NO_ATTRS, NULL };
	LDAPMessage *res = NULL;
	char *dn = NULL;
	if (list_search(p, p->cfg->suffix, LDAP_SCOPE_SUBTREE, f.data, attrs, &res, &err) == IX_OK) {
		LDAPMessage *e = ldapu_first_entry(p->ld, res);
		if (e != NULL) {
			char *d = ldap_get_dn(p->ld, e);
			dn = xstrdup(d);
			ldap_memfree(d);
		}
	}
	ldap_msgfree(res);
	buf_free(&f);
	buf_free(&err);
	return dn;
}

void prov_own_settings(struct prov *p, struct settings *st_r)
{
	static const char *const attrs[] = { "ixServerSetting", NULL };
	LDAPMessage *res = NULL;
	struct buf err = BUF_INIT;
	settings_load(st_r, NULL, 0);
	if (read_entry(p, p->cfg->server_dn, "(objectClass=ixServer)", attrs, &res, &err) == IX_OK) {
		size_t n = 0;
		char **vals = ldapu_get_values(p->ld, ldapu_first_entry(p->ld, res), "ixServerSetting", &n);
		settings_load(st_r, (const char *const *)vals, n);
		ldapu_values_free(&vals);
	}
	ldap_msgfree(res);
	buf_free(&err);
}

/* Whether password contains word (case-insensitive), for words of PROV_NAME_CHECK_MIN bytes or more. */
static int contains_word(const char *password, const char *word, size_t wlen)
{
	if (wlen < PROV_NAME_CHECK_MIN)
		return 0;
	for (const char *s = password; strlen(s) >= wlen; s++) {
		if (strncasecmp(s, word, wlen) == 0)
			return 1;
	}
	return 0;
}

/* Whether password contains name or one of its parts (split at spaces, dots, '-', '_', '@'). */
static const char *contains_name(const char *password, const char *name)
{
	if (name == NULL)
		return NULL;
	if (contains_word(password, name, strlen(name)))
		return name;
	for (const char *s = name; *s != '\0';) {
		size_t len = strcspn(s, " .-_@'");
		if (contains_word(password, s, len))
			return name;
		s += len;
		s += strspn(s, " .-_@'");
	}
	return NULL;
}

/* The password policy of the CLI (docs/directory.md "Passwords"): password.min_length characters (UTF-8 code
 * points) and, with password.check_names, none of the user's login, names or addresses (names is a NULL-terminated
 * list; an address counts by its local part). */
static int check_password_policy(struct prov *p, const char *password, const char *const *names, struct buf *error_r)
{
	struct settings st;
	prov_own_settings(p, &st);
	/* the length is the organisation's: the policy entry's pwdMinLength, which slapd applies too */
	static const char *const pattrs[] = { "pwdMinLength", NULL };
	char *pdn = xasprintf(SLAPD_POLICY_RDN ",%s", p->cfg->suffix);
	LDAPMessage *res = NULL;
	struct buf err = BUF_INIT;
	if (read_entry(p, pdn, "(objectClass=pwdPolicy)", pattrs, &res, &err) == IX_OK) {
		char *v = ldapu_get_first(p->ld, ldapu_first_entry(p->ld, res), "pwdMinLength");
		unsigned long long n;
		if (v != NULL && setting_parse(SET_PASSWORD_MIN_LENGTH, v, &n) == 0)
			st.v[SET_PASSWORD_MIN_LENGTH] = n;
		free(v);
	}
	ldap_msgfree(res);
	buf_free(&err);
	free(pdn);
	size_t chars = 0;
	for (const unsigned char *c = (const unsigned char *)password; *c != '\0'; c++)
		chars += (*c & 0xc0) != 0x80;
	if (chars < st.v[SET_PASSWORD_MIN_LENGTH]) {
		buf_printf(error_r,
			   "the password is too short: at least %llu characters are needed (the setting "
			   "password.min_length)",
			   st.v[SET_PASSWORD_MIN_LENGTH]);
		return IX_EINVAL;
	}
	if (!st.v[SET_PASSWORD_CHECK_NAMES])
		return IX_OK;
	for (size_t i = 0; names[i] != NULL; i++) {
		char *local = xstrndup(names[i], strcspn(names[i], "@"));
		const char *hit = contains_name(password, local);
		free(local);
		if (hit != NULL) {
			buf_printf(error_r,
				   "the password contains the user's own name, login or address (\"%s\"): choose "
				   "one that does not (the setting password.check_names)",
				   names[i]);
			return IX_EINVAL;
		}
	}
	return IX_OK;
}

/* Sets dn's password with the Password Modify operation (RFC 3062), so slapd hashes it (olcPasswordHash). */
/* The Password Modify operation (RFC 3062); old_password NULL: a reset (the administrator, a role). */
static int set_password(struct prov *p, const char *dn, const char *old_password, const char *password)
{
	struct berval id = { strlen(dn), (char *)dn }, newpw = { strlen(password), (char *)password },
		      gen = { 0, NULL };
	struct berval oldpw = { old_password != NULL ? strlen(old_password) : 0, (char *)old_password };
	int rc = ldap_passwd_s(p->ld, &id, old_password != NULL ? &oldpw : NULL, &newpw, &gen, NULL, NULL);
	ber_memfree(gen.bv_val);
	return rc;
}

char *prov_user_dn(struct prov *p, const char *login)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "uid=");
	ldapu_escape_dn(&b, login, strlen(login));
	buf_printf(&b, ",%s", p->recipients_dn);
	return buf_steal(&b);
}

static char *cn_dn(const char *name, const char *parent)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "cn=");
	ldapu_escape_dn(&b, name, strlen(name));
	buf_printf(&b, ",%s", parent);
	return buf_steal(&b);
}

char *prov_list_dn(struct prov *p, const char *name)
{
	return cn_dn(name, p->recipients_dn);
}

char *prov_config_dn(struct prov *p, const char *name, const char *folder)
{
	char *parent = xasprintf("%s,%s", folder, p->cfg->suffix);
	char *dn = cn_dn(name, parent);
	free(parent);
	return dn;
}

LDAP *prov_ldap(struct prov *p)
{
	return p->ld;
}

const struct config *prov_config(struct prov *p)
{
	return p->cfg;
}

void prov_mailbox_guid_new(char out[33])
{
	unsigned char g[16];
	if (RAND_bytes(g, sizeof(g)) != 1)
		fatal("no random numbers for a mailbox GUID");
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", g[i]);
}

static int entry_exists(struct prov *p, const char *dn)
{
	return ldapu_entry_matches(p->ld, dn, "(objectClass=*)");
}

static int check_addresses_free(struct prov *p, const char *const *addrs, size_t n, struct buf *error_r)
{
	for (size_t i = 0; i < n; i++) {
		if (!prov_address_valid(addrs[i])) {
			buf_printf(error_r, "\"%s\" is not a valid e-mail address (expected local-part@domain)",
				   addrs[i]);
			return IX_EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcasecmp(addrs[i], addrs[j]) == 0) {
				buf_printf(error_r, "the address %s is given twice", addrs[i]);
				return IX_EINVAL;
			}
		}
		char *owner = prov_address_owner(p, addrs[i]);
		if (owner != NULL) {
			buf_printf(error_r, "the address %s is already used by %s: choose another one", addrs[i],
				   owner);
			free(owner);
			return IX_EEXIST;
		}
	}
	return IX_OK;
}

static char *server_dn(struct prov *p, const char *server, struct buf *error_r)
{
	if (server == NULL)
		return xstrdup(p->cfg->server_dn);
	char *dn = NULL;
	struct buf parent = BUF_INIT;
	buf_printf(&parent, "ou=Servers,ou=Configuration,%s", p->cfg->suffix);
	dn = cn_dn(server, parent.data);
	buf_free(&parent);
	if (!entry_exists(p, dn)) {
		buf_printf(error_r, "there is no server named %s: see 'interchange server list'", server);
		free(dn);
		return NULL;
	}
	return dn;
}

/* ---- users ---- */

/* ---- SCRAM verifiers and app passwords (docs/directory.md, "SCRAM and app passwords") ---- */

/* What sits beside dn's password: whether it has the class ixScramUser, the salts its verifiers keep (the
 * password's first, then the app passwords'), its app password values (free with ldapu_values_free) and whether
 * its verifiers belong to its current userPassword value. */
struct user_secrets {
	bool has_class;
	bool current;
	bool verifiers;
	struct secrets_salts salts;
	char **verifier_values;
	char **apps;
};

static void user_secrets_free(struct user_secrets *us)
{
	ldapu_values_free(&us->verifier_values);
	ldapu_values_free(&us->apps);
}

static int read_secrets(struct prov *p, const char *dn, struct user_secrets *us_r, struct buf *error_r)
{
	memset(us_r, 0, sizeof(*us_r));
	static const char *const attrs[] = { "objectClass",    "userPassword",  "ixScramVerifier",
					     "ixScramBinding", "ixAppPassword", NULL };
	LDAPMessage *res = NULL;
	int ret = read_entry(p, dn, "(objectClass=*)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (ret == IX_OK && e == NULL) {
		buf_printf(error_r, "%s no longer exists", dn);
		ret = IX_ENOTFOUND;
	}
	if (e != NULL) {
		char **oc = ldapu_get_values(p->ld, e, "objectClass", NULL);
		for (size_t i = 0; oc[i] != NULL; i++)
			us_r->has_class |= strcasecmp(oc[i], "ixScramUser") == 0;
		ldapu_values_free(&oc);
		us_r->verifier_values = ldapu_get_values(p->ld, e, "ixScramVerifier", NULL);
		us_r->apps = ldapu_get_values(p->ld, e, "ixAppPassword", NULL);
		us_r->verifiers = us_r->verifier_values[0] != NULL;
		char *binding = ldapu_get_first(p->ld, e, "ixScramBinding");
		char **pw = ldapu_get_values(p->ld, e, "userPassword", NULL);
		us_r->current = secrets_binding_matches(binding, (const char *const *)pw);
		if (pw[0] != NULL)
			explicit_bzero(pw[0], strlen(pw[0]));
		ldapu_values_free(&pw);
		free(binding);
		secrets_salts_take(&us_r->salts, (const char *const *)us_r->verifier_values);
		for (size_t i = 0; us_r->apps[i] != NULL; i++) {
			struct secrets_app a;
			if (secrets_app_parse(us_r->apps[i], strlen(us_r->apps[i]), &a) != 0)
				continue;
			for (size_t k = 0; k < a.nv; k++)
				secrets_salts_add(&us_r->salts, &a.v[k]);
		}
	}
	ldap_msgfree(res);
	return ret;
}

/* The iteration count new verifiers get: this server's auth.scram_iterations. */
static unsigned scram_iterations(struct prov *p)
{
	struct settings st;
	prov_own_settings(p, &st);
	return (unsigned)st.v[SET_AUTH_SCRAM_ITERATIONS];
}

/* Adds to mods (with op: LDAP_MOD_ADD for a new entry, LDAP_MOD_REPLACE for a change) password's verifiers, made
 * with salts, and their binding to hash, the userPassword value stored with them. */
static int scram_mods(struct prov *p, const char *password, const char *hash, struct secrets_salts *salts, int op,
		      LDAPMod ***mods, size_t *n, struct buf *error_r)
{
	struct scram_verifier v[SCRAM_HASHES];
	int ret = secrets_make(password, strlen(password), salts, scram_iterations(p), v);
	if (ret != 0) {
		buf_append_str(error_r, "cannot make the SCRAM verifiers (no random numbers)");
		return ret;
	}
	char **vals = NULL;
	size_t nv = 0;
	for (int h = SCRAM_HASHES - 1; h >= 0; h--) {
		struct buf b = BUF_INIT;
		scram_verifier_format(&v[h], &b);
		ldapu_values_push(&vals, &nv, buf_cstr(&b));
		buf_free(&b);
	}
	explicit_bzero(v, sizeof(v));
	ldapu_mod_add(mods, n, op, "ixScramVerifier", vals);
	struct buf b = BUF_INIT;
	secrets_binding(hash, strlen(hash), &b);
	ldapu_mod_add(mods, n, op, "ixScramBinding", ldapu_values1(buf_cstr(&b)));
	buf_free(&b);
	return IX_OK;
}

/* Writes dn's SCRAM verifiers for password, bound to hash (the userPassword value they belong to), with the class
 * ixScramUser when missing and, with_password, hash itself as the new userPassword, all in one modify. The salts
 * kept across changes are those p may read (the administrator's); otherwise new ones are made. */
static int write_verifiers(struct prov *p, const char *dn, const char *password, const char *hash, bool with_password,
			   struct buf *error_r)
{
	struct user_secrets us;
	int ret = read_secrets(p, dn, &us, error_r);
	LDAPMod **mods = NULL;
	size_t n = 0;
	if (ret == IX_OK && !us.has_class)
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", ldapu_values1("ixScramUser"));
	if (ret == IX_OK && with_password)
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "userPassword", ldapu_values1(hash));
	if (ret == IX_OK)
		ret = scram_mods(p, password, hash, &us.salts, LDAP_MOD_REPLACE, &mods, &n, error_r);
	if (ret == IX_OK) /* frees mods */
		ret = modify(p, dn, mods,
			     with_password ? "could not set the password" : "could not store the SCRAM verifiers",
			     error_r);
	else
		ldapu_mods_free(mods);
	user_secrets_free(&us);
	return ret;
}

/* Gives dn (which has none or old ones) verifiers for password, its current userPassword value (just set), which p
 * reads back: the administrator, after a user's own change. */
static int set_verifiers(struct prov *p, const char *dn, const char *password, struct buf *error_r)
{
	static const char *const attrs[] = { "userPassword", NULL };
	LDAPMessage *res = NULL;
	char *hash = NULL;
	int ret = read_entry(p, dn, "(objectClass=*)", attrs, &res, error_r);
	if (ret == IX_OK)
		hash = ldapu_get_first(p->ld, ldapu_first_entry(p->ld, res), "userPassword");
	ldap_msgfree(res);
	if (ret == IX_OK && hash == NULL) {
		buf_append_str(error_r, "the password was not stored");
		ret = IX_EUNAVAIL;
	}
	if (ret == IX_OK)
		ret = write_verifiers(p, dn, password, hash, false, error_r);
	if (hash != NULL)
		explicit_bzero(hash, strlen(hash));
	free(hash);
	return ret;
}

/* Sets dn's password and its SCRAM verifiers in one modify: the hash made here (slapd_hash_ssha, olcPasswordHash's
 * scheme) and the verifiers bound to that hash, so the writer never reads a stored hash back and needs no read right
 * on the secrets (the roles reset passwords with =mwx, slapd_role_acl), and nothing can come between the password
 * and its verifiers. */
static int set_password_scram(struct prov *p, const char *dn, const char *password, struct buf *error_r)
{
	char *hash = slapd_hash_ssha(password);
	int ret = write_verifiers(p, dn, password, hash, true, error_r);
	explicit_bzero(hash, strlen(hash));
	free(hash);
	return ret;
}

bool prov_password_hash_valid(const char *hash, struct buf *error_r)
{
	static const char *const schemes[] = { "{SSHA}", "{SHA}", "{SMD5}", "{MD5}", "{CRYPT}" };
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t l = strlen(schemes[i]);
		if (strncasecmp(hash, schemes[i], l) == 0 && hash[l] != '\0' && strpbrk(hash, "\r\n") == NULL)
			return true;
	}
	buf_printf(error_r,
		   "the password hash must be in a scheme the directory checks: {SSHA}, {SHA}, {SMD5}, {MD5} or "
		   "{CRYPT} (as slappasswd makes them), not \"%.12s...\"",
		   hash);
	return false;
}

int prov_user_add(struct prov *p, const struct prov_user *u, struct buf *error_r)
{
	if (!prov_login_valid(u->login)) {
		buf_printf(error_r,
			   "\"%s\" is not a valid login: use 1-%d letters, digits, '.', '-' or '_', starting "
			   "with a letter or digit",
			   u->login, PROV_MAX_LOGIN);
		return IX_EINVAL;
	}
	if (!prov_name_valid(u->given) || !prov_name_valid(u->surname)) {
		buf_printf(error_r,
			   "given name and surname must be 1-%d characters without control characters or "
			   "leading or trailing spaces",
			   PROV_MAX_NAME);
		return IX_EINVAL;
	}
	int ret = IX_OK;
	if (u->password_hash != NULL) {
		if (u->password != NULL || !prov_password_hash_valid(u->password_hash, error_r)) {
			if (u->password != NULL)
				buf_printf(error_r, "a password or a password hash, not both");
			return IX_EINVAL;
		}
	} else {
		size_t plen = u->password != NULL ? strlen(u->password) : 0;
		if (plen == 0 || plen > PROV_MAX_PASSWORD) {
			buf_printf(error_r, "the password must be 1-%d characters", PROV_MAX_PASSWORD);
			return IX_EINVAL;
		}
		const char **names = xcalloc(u->alias_count + 4, sizeof(*names));
		names[0] = u->login;
		names[1] = u->given;
		names[2] = u->surname;
		for (size_t i = 0; i < u->alias_count; i++)
			names[3 + i] = u->aliases[i];
		ret = check_password_policy(p, u->password, names, error_r);
		free(names);
		if (ret != IX_OK)
			return ret;
	}
	ret = check_addresses_free(p, u->aliases, u->alias_count, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = prov_user_dn(p, u->login);
	if (entry_exists(p, dn)) {
		buf_printf(error_r, "a user with login %s already exists", u->login);
		free(dn);
		return IX_EEXIST;
	}
	char *home = server_dn(p, u->server, error_r);
	if (home == NULL) {
		free(dn);
		return IX_ENOTFOUND;
	}
	unsigned long long posix_id = 0;
	if (u->posix && (ret = prov_posix_id_new(p, &posix_id, error_r)) != IX_OK) {
		free(dn);
		free(home);
		return ret;
	}
	char guid[33];
	prov_mailbox_guid_new(guid);
	char *cn = xasprintf("%s %s", u->given, u->surname);
	LDAPMod **mods = NULL;
	size_t n = 0;
	char **oc = NULL;
	size_t noc = 0;
	ldapu_values_push(&oc, &noc, "inetOrgPerson");
	ldapu_values_push(&oc, &noc, "ixRecipient");
	ldapu_values_push(&oc, &noc, "ixMailUser");
	ldapu_values_push(&oc, &noc, "ixScramUser");
	if (u->posix) {
		ldapu_values_push(&oc, &noc, "posixAccount");
		prov_posix_account_mods(u->login, posix_id, &mods, &n);
	}
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", oc);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "uid", ldapu_values1(u->login));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1(cn));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "displayName", ldapu_values1(cn));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "givenName", ldapu_values1(u->given));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "sn", ldapu_values1(u->surname));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixNickname", ldapu_values1(u->login));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixMailboxGuid", ldapu_values1(guid));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixHomeServer", ldapu_values1(home));
	if (u->hidden)
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixHideFromAddressBook", ldapu_values1("TRUE"));
	if (u->alias_count > 0) {
		char **proxies = NULL;
		size_t np = 0;
		for (size_t i = 0; i < u->alias_count; i++) {
			char *v = xasprintf("smtp:%s", u->aliases[i]);
			ldapu_values_push(&proxies, &np, v);
			free(v);
		}
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixProxyAddresses", proxies);
	}
	/* the password in the same ADD, hashed here with the scheme slapd's Password Modify uses (olcPasswordHash
	 * {SSHA} applies only to that operation: an ADD stores what it is given). One write, not two: with two, a
	 * change another server makes to the new entry between them could race the second (docs/multi-server.md) */
	char *hash = u->password_hash != NULL ? xstrdup(u->password_hash) : slapd_hash_ssha(u->password);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "userPassword", ldapu_values1(hash));
	/* and its SCRAM verifiers, from the password as given (never from a stored one) */
	struct secrets_salts salts = { 0 };
	if (u->password != NULL)
		ret = scram_mods(p, u->password, hash, &salts, LDAP_MOD_ADD, &mods, &n, error_r);
	explicit_bzero(hash, strlen(hash));
	free(hash);
	int rc = ret == IX_OK ? ldap_add_ext_s(p->ld, dn, mods, NULL, NULL) : LDAP_SUCCESS;
	ldapu_mods_free(mods);
	free(cn);
	free(home);
	if (ret != IX_OK) {
		free(dn);
		return ret;
	}
	if (rc != LDAP_SUCCESS) {
		ret = ldapu_fail(p->ld, rc, "could not add the user", error_r);
		free(dn);
		return ret;
	}
	free(dn);
	return IX_OK;
}

static int require_user(struct prov *p, const char *login, char **dn_r, struct buf *error_r)
{
	if (!prov_login_valid(login)) {
		buf_printf(error_r, "\"%s\" is not a valid login", login);
		return IX_EINVAL;
	}
	char *dn = prov_user_dn(p, login);
	if (!entry_exists(p, dn)) {
		buf_printf(error_r, "there is no user with login %s: see 'interchange user list'", login);
		free(dn);
		return IX_ENOTFOUND;
	}
	*dn_r = dn;
	return IX_OK;
}

int prov_user_del(struct prov *p, const char *login, struct buf *error_r)
{
	char *dn;
	int ret = require_user(p, login, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	int rc = ldap_delete_ext_s(p->ld, dn, NULL, NULL);
	free(dn);
	if (rc != LDAP_SUCCESS)
		return ldapu_fail(p->ld, rc, "could not delete the user", error_r);
	return IX_OK;
}

/* Sets login's password through p. An administrator's reset (old_password NULL): the hash and its SCRAM verifiers
 * in one modify, nothing read back (set_password_scram). The user's own change (with old_password): the Password
 * Modify operation, which the password policy wants, then the verifiers through admin, which reads the new
 * userPassword value they are tied to (no user reads their own). */
static int user_passwd(struct prov *p, struct prov *admin, const char *login, const char *old_password,
		       const char *password, struct buf *error_r)
{
	size_t plen = password != NULL ? strlen(password) : 0;
	if (plen == 0 || plen > PROV_MAX_PASSWORD) {
		buf_printf(error_r, "the password must be 1-%d characters", PROV_MAX_PASSWORD);
		return IX_EINVAL;
	}
	char *dn;
	int ret = require_user(p, login, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	/* the names the policy checks: the login, given name, surname, display name and every address */
	static const char *const attrs[] = { "uid",  "givenName",        "sn", "cn", "displayName",
					     "mail", "ixProxyAddresses", NULL };
	LDAPMessage *res = NULL;
	ret = read_entry(p, dn, "(objectClass=*)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	char **names = NULL;
	size_t nn = 0;
	for (size_t a = 0; e != NULL && attrs[a + 1] != NULL; a++) {
		char **vals = ldapu_get_values(p->ld, e, attrs[a], NULL);
		for (size_t i = 0; vals[i] != NULL; i++)
			ldapu_values_push(&names, &nn, vals[i]);
		ldapu_values_free(&vals);
	}
	char **proxies = e != NULL ? ldapu_get_values(p->ld, e, "ixProxyAddresses", NULL) : NULL;
	for (size_t i = 0; proxies != NULL && proxies[i] != NULL; i++) {
		const char *colon = strchr(proxies[i], ':');
		ldapu_values_push(&names, &nn, colon != NULL ? colon + 1 : proxies[i]);
	}
	ldapu_values_free(&proxies);
	ldap_msgfree(res);
	if (ret == IX_OK) {
		const char *none[] = { NULL };
		ret = check_password_policy(p, password, names != NULL ? (const char *const *)names : none, error_r);
	}
	ldapu_values_free(&names);
	if (ret != IX_OK) {
		free(dn);
		return ret;
	}
	if (old_password == NULL) {
		ret = set_password_scram(p, dn, password, error_r);
	} else {
		int rc = set_password(p, dn, old_password, password);
		ret = rc == LDAP_SUCCESS ? set_verifiers(admin, dn, password, error_r)
					 : ldapu_fail(p->ld, rc, "could not set the password", error_r);
	}
	free(dn);
	return ret;
}

int prov_user_passwd(struct prov *p, const char *login, const char *password, struct buf *error_r)
{
	return user_passwd(p, p, login, NULL, password, error_r);
}

int prov_user_passwd_own(struct prov *p, struct prov *admin, const char *login, const char *old_password,
			 const char *password, struct buf *error_r)
{
	return user_passwd(p, admin, login, old_password, password, error_r);
}

/* Appends "label: value" lines for every address of entry e, primary first. */
static void show_addresses(struct prov *p, LDAPMessage *e, struct buf *out)
{
	struct berval **vals = ldap_get_values_len(p->ld, e, "ixProxyAddresses");
	int first = 1;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; vals != NULL && vals[i] != NULL; i++) {
			int primary = vals[i]->bv_len > 5 && strncmp(vals[i]->bv_val, "SMTP:", 5) == 0;
			if (primary != (pass == 0))
				continue;
			buf_printf(out, "%-14s%.*s%s\n", first ? "Addresses:" : "", (int)vals[i]->bv_len - 5,
				   vals[i]->bv_val + 5, primary ? " (primary)" : "");
			first = 0;
		}
	}
	if (first)
		buf_printf(out, "%-14s(none yet: the attendant generates one when the system runs)\n", "Addresses:");
	ldap_value_free_len(vals);
}

char *prov_rdn_value(const char *dn)
{
	LDAPDN parsed = NULL;
	char *s = NULL;
	if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && parsed != NULL && parsed[0] != NULL)
		s = xstrndup(parsed[0][0]->la_value.bv_val, parsed[0][0]->la_value.bv_len);
	ldap_dnfree(parsed);
	return s != NULL ? s : xstrdup(dn);
}

/* The cn of the entry at dn as stored (memberOf values come back normalised, in lower case). */
static char *display_cn(struct prov *p, const char *dn)
{
	const char *attrs[] = { "cn", NULL };
	LDAPMessage *res = NULL;
	struct buf err = BUF_INIT;
	char *cn = NULL;
	if (ldapu_search(p->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &res, &err) == IX_OK &&
	    ldap_first_entry(p->ld, res) != NULL)
		cn = ldapu_get_first(p->ld, ldap_first_entry(p->ld, res), "cn");
	ldap_msgfree(res);
	buf_free(&err);
	return cn != NULL ? cn : prov_rdn_value(dn);
}

/* The "SCRAM:" and "App passwords:" lines of user show. */
static void show_secrets(struct prov *p, const char *dn, struct buf *out)
{
	struct user_secrets us;
	struct buf err = BUF_INIT;
	if (read_secrets(p, dn, &us, &err) != IX_OK) {
		buf_printf(out, "%-14s(cannot be read: %s)\n", "SCRAM:", buf_cstr(&err));
	} else if (us.verifiers && us.current) {
		buf_printf(out, "%-14s", "SCRAM:");
		for (size_t i = 0; us.verifier_values[i] != NULL; i++) {
			struct scram_verifier v;
			if (scram_verifier_parse(us.verifier_values[i], strlen(us.verifier_values[i]), &v) == 0)
				buf_printf(out, "%s%s (%u iterations)", i > 0 ? ", " : "", scram_hash_name(v.hash),
					   v.iterations);
		}
		buf_append_char(out, '\n');
	} else {
		buf_printf(out, "%-14s%s\n", "SCRAM:",
			   us.verifiers
				   ? "none: the password was changed over LDAP since; the next `user passwd` makes them"
				   : "none yet: made at the next password change (`user passwd`)");
	}
	size_t napps = 0;
	for (size_t i = 0; us.apps != NULL && us.apps[i] != NULL; i++)
		napps++;
	buf_printf(out, "%s %zu\n", "App passwords:", napps);
	user_secrets_free(&us);
	buf_free(&err);
}

int prov_user_show(struct prov *p, const char *login, struct buf *out, struct buf *error_r)
{
	char *dn;
	int ret = require_user(p, login, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	const char *attrs[] = {
		"uid",
		"cn",
		"ixProxyAddresses",
		"memberOf",
		"ixHomeServer",
		"ixMailboxGuid",
		"ixHideFromAddressBook",
		"ixUserPrincipalName",
		PROV_PERSON_ATTRS,
		PROV_POSIX_ATTRS,
		NULL,
	};
	LDAPMessage *res = NULL;
	ret = read_entry(p, dn, "(objectClass=*)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (e != NULL) {
		char *cn = ldapu_get_first(p->ld, e, "cn");
		char *home = ldapu_get_first(p->ld, e, "ixHomeServer");
		char *guid = ldapu_get_first(p->ld, e, "ixMailboxGuid");
		char *hidden = ldapu_get_first(p->ld, e, "ixHideFromAddressBook");
		buf_printf(out, "%-14s%s\n%-14s%s\n%-14s%s\n", "DN:", dn, "Login:", login, "Name:", cn ? cn : "");
		show_addresses(p, e, out);
		struct berval **lists = ldap_get_values_len(p->ld, e, "memberOf");
		if (lists == NULL || lists[0] == NULL)
			buf_printf(out, "%-14s(none)\n", "Lists:");
		for (size_t i = 0; lists != NULL && lists[i] != NULL; i++) {
			char *ldn = xstrndup(lists[i]->bv_val, lists[i]->bv_len);
			char *lcn = display_cn(p, ldn);
			buf_printf(out, "%-14s%s\n", i == 0 ? "Lists:" : "", lcn);
			free(lcn);
			free(ldn);
		}
		ldap_value_free_len(lists);
		prov_person_show(p, e, out);
		prov_posix_show(p->ld, e, out);
		char *hcn = home ? prov_rdn_value(home) : xstrdup("(none)");
		buf_printf(out, "%-14s%s\n%-14s%s\n%-14s%s\n", "Home server:", hcn, "Mailbox GUID:", guid ? guid : "",
			   "Hidden:", hidden != NULL && strcmp(hidden, "TRUE") == 0 ? "yes" : "no");
		char *upn = ldapu_get_first(p->ld, e, "ixUserPrincipalName");
		if (upn != NULL) /* Kerberos sign-in as this user (docs/sign-in.md) */
			buf_printf(out, "%-14s%s\n", "Principal:", upn);
		free(upn);
		show_secrets(p, dn, out);
		free(hcn);
		free(cn);
		free(home);
		free(guid);
		free(hidden);
	}
	ldap_msgfree(res);
	free(dn);
	return ret;
}

/* The user with that login (*dn_r: free it) and its secrets (*us_r: user_secrets_free), both only on IX_OK. */
static int login_secrets(struct prov *p, const char *login, char **dn_r, struct user_secrets *us_r, struct buf *error_r)
{
	int ret = require_user(p, login, dn_r, error_r);
	if (ret != IX_OK)
		return ret;
	ret = read_secrets(p, *dn_r, us_r, error_r);
	if (ret != IX_OK) {
		user_secrets_free(us_r);
		free(*dn_r);
		*dn_r = NULL;
	}
	return ret;
}

/* The index in us->apps of the app password called name, or -1. */
static int find_app(const struct user_secrets *us, const char *name)
{
	for (size_t i = 0; us->apps != NULL && us->apps[i] != NULL; i++) {
		struct secrets_app a;
		if (secrets_app_parse(us->apps[i], strlen(us->apps[i]), &a) == 0 && strcmp(a.name, name) == 0)
			return (int)i;
	}
	return -1;
}

int prov_app_password_add(struct prov *p, const char *login, const char *name, char **password_r, struct buf *error_r)
{
	*password_r = NULL;
	if (!secrets_app_name_valid(name)) {
		buf_printf(error_r, "an app password's name is 1-%d letters, digits, '.', '_' or '-'",
			   SECRETS_APP_NAME_MAX);
		return IX_EINVAL;
	}
	char *dn;
	struct user_secrets us;
	int ret = login_secrets(p, login, &dn, &us, error_r);
	if (ret != IX_OK)
		return ret;
	if (find_app(&us, name) >= 0) {
		buf_printf(error_r, "%s already has an app password called %s", login, name);
		ret = IX_EEXIST;
	}
	char password[SECRETS_APP_PASSWORD_LEN + 1];
	struct secrets_app a = { 0 };
	if (ret == IX_OK && secrets_random_password(password, SECRETS_APP_PASSWORD_LEN) != 0) {
		buf_append_str(error_r, "no random numbers");
		ret = IX_EUNAVAIL;
	}
	/* the user's salts, so that one SCRAM exchange can match the password or any app password */
	if (ret == IX_OK &&
	    secrets_make(password, SECRETS_APP_PASSWORD_LEN, &us.salts, scram_iterations(p), a.v) != 0) {
		buf_append_str(error_r, "cannot make the SCRAM verifiers");
		ret = IX_EUNAVAIL;
	}
	if (ret == IX_OK) {
		a.nv = SCRAM_HASHES;
		/* SCRAM-SHA-256 first: the one a PLAIN login checks */
		struct scram_verifier t = a.v[0];
		a.v[0] = a.v[SCRAM_SHA_256];
		a.v[SCRAM_SHA_256] = t;
		snprintf(a.name, sizeof(a.name), "%s", name);
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(a.created, sizeof(a.created), "%Y%m%d%H%M%SZ", &tm);
		struct buf v = BUF_INIT;
		secrets_app_format(&a, &v);
		LDAPMod **mods = NULL;
		size_t n = 0;
		if (!us.has_class)
			ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", ldapu_values1("ixScramUser"));
		ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixAppPassword", ldapu_values1(buf_cstr(&v)));
		ret = modify(p, dn, mods, "could not store the app password", error_r);
		buf_free(&v);
	}
	explicit_bzero(&a, sizeof(a));
	if (ret == IX_OK)
		*password_r = xstrdup(password);
	explicit_bzero(password, sizeof(password));
	user_secrets_free(&us);
	free(dn);
	return ret;
}

int prov_app_password_list(struct prov *p, const char *login, struct buf *out, struct buf *error_r)
{
	char *dn;
	struct user_secrets us;
	int ret = login_secrets(p, login, &dn, &us, error_r);
	if (ret != IX_OK)
		return ret;
	for (size_t i = 0; ret == IX_OK && us.apps[i] != NULL; i++) {
		struct secrets_app a;
		if (secrets_app_parse(us.apps[i], strlen(us.apps[i]), &a) != 0)
			continue;
		const char *c = a.created; /* YYYYMMDDHHMMSSZ */
		buf_printf(out, "%-24s created %.4s-%.2s-%.2s %.2s:%.2s UTC\n", a.name, c, c + 4, c + 6, c + 8, c + 10);
	}
	if (ret == IX_OK && (us.apps == NULL || us.apps[0] == NULL))
		buf_printf(out, "%s has no app passwords\n", login);
	user_secrets_free(&us);
	free(dn);
	return ret;
}

int prov_app_password_del(struct prov *p, const char *login, const char *name, struct buf *error_r)
{
	char *dn;
	struct user_secrets us;
	int ret = login_secrets(p, login, &dn, &us, error_r);
	if (ret != IX_OK)
		return ret;
	int i = find_app(&us, name);
	if (ret == IX_OK && i < 0) {
		buf_printf(error_r, "%s has no app password called %s", login, name);
		ret = IX_ENOTFOUND;
	}
	if (ret == IX_OK) {
		LDAPMod **mods = NULL;
		size_t n = 0;
		ldapu_mod_add(&mods, &n, LDAP_MOD_DELETE, "ixAppPassword", ldapu_values1(us.apps[i]));
		ret = modify(p, dn, mods, "could not delete the app password", error_r);
	}
	user_secrets_free(&us);
	free(dn);
	return ret;
}

int prov_user_list(struct prov *p, struct buf *out, struct buf *error_r)
{
	const char *attrs[] = { "uid", "cn", "mail", NULL };
	LDAPMessage *res = NULL;
	int ret = list_search(p, p->recipients_dn, LDAP_SCOPE_ONELEVEL, "(objectClass=ixMailUser)", attrs, &res,
			      error_r);
	if (ret != IX_OK)
		return ret;
	buf_printf(out, "%-20s %-30s %s\n", "LOGIN", "NAME", "ADDRESS");
	for (LDAPMessage *e = ldapu_first_entry(p->ld, res); e != NULL; e = ldap_next_entry(p->ld, e)) {
		char *uid = ldapu_get_first(p->ld, e, "uid"), *cn = ldapu_get_first(p->ld, e, "cn"),
		     *mail = ldapu_get_first(p->ld, e, "mail");
		buf_printf(out, "%-20s %-30s %s\n", uid ? uid : "", cn ? cn : "", mail ? mail : "(pending)");
		free(uid);
		free(cn);
		free(mail);
	}
	ldap_msgfree(res);
	return IX_OK;
}

/* ---- application accounts ---- */

static char *app_dn(struct prov *p, const char *name)
{
	char *parent = xasprintf(SLAPD_APPLICATIONS_RDN ",%s", p->cfg->suffix);
	char *dn = cn_dn(name, parent);
	free(parent);
	return dn;
}

/* The DN of application name, checked to exist (want 1) or not (want 0). */
static int app_lookup(struct prov *p, const char *name, int want, char **dn_r, struct buf *error_r)
{
	if (!prov_login_valid(name)) {
		buf_printf(error_r,
			   "\"%s\" is not a valid application name: use 1-%d letters, digits, '.', '-' or '_', "
			   "starting with a letter or digit",
			   name, PROV_MAX_LOGIN);
		return IX_EINVAL;
	}
	char *dn = app_dn(p, name);
	if (entry_exists(p, dn) != want) {
		if (want)
			buf_printf(error_r, "there is no application named %s: see 'interchange app list'", name);
		else
			buf_printf(error_r, "an application named %s already exists", name);
		free(dn);
		return want ? IX_ENOTFOUND : IX_EEXIST;
	}
	*dn_r = dn;
	return IX_OK;
}

/* password, checked against the policy with the application's name; or, when NULL, a new random one. *chosen_r is
 * the password to set (a new string). */
static int app_password(struct prov *p, const char *name, const char *password, char **chosen_r, struct buf *error_r)
{
	if (password == NULL) {
		char *out = xcalloc(1, PROV_APP_PASSWORD_LEN + 1);
		if (secrets_random_password(out, PROV_APP_PASSWORD_LEN) != 0)
			fatal("no random numbers for an application's password");
		*chosen_r = out;
		return IX_OK;
	}
	size_t plen = strlen(password);
	if (plen == 0 || plen > PROV_MAX_PASSWORD) {
		buf_printf(error_r, "the password must be 1-%d characters", PROV_MAX_PASSWORD);
		return IX_EINVAL;
	}
	const char *names[] = { name, NULL };
	int ret = check_password_policy(p, password, names, error_r);
	*chosen_r = ret == IX_OK ? xstrdup(password) : NULL;
	return ret;
}

static void free_password(char **password)
{
	if (*password != NULL)
		explicit_bzero(*password, strlen(*password));
	free(*password);
	*password = NULL;
}

int prov_app_add(struct prov *p, const char *name, const char *password, char **dn_r, char **password_r,
		 struct buf *error_r)
{
	*dn_r = NULL;
	*password_r = NULL;
	char *dn = NULL, *chosen = NULL;
	int ret = app_lookup(p, name, 0, &dn, error_r);
	if (ret == IX_OK)
		ret = app_password(p, name, password, &chosen, error_r);
	if (ret != IX_OK) {
		free(dn);
		return ret;
	}
	LDAPMod **mods = NULL;
	size_t n = 0, noc = 0;
	char **oc = NULL;
	ldapu_values_push(&oc, &noc, "applicationProcess");
	ldapu_values_push(&oc, &noc, "simpleSecurityObject");
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", oc);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1(name));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "description", ldapu_values1("an application: reads the address book"));
	/* hashed here, in the one ADD (as prov_user_add does) */
	char *hash = slapd_hash_ssha(chosen);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "userPassword", ldapu_values1(hash));
	explicit_bzero(hash, strlen(hash));
	free(hash);
	int rc = ldap_add_ext_s(p->ld, dn, mods, NULL, NULL);
	ldapu_mods_free(mods);
	if (rc != LDAP_SUCCESS) {
		free_password(&chosen);
		free(dn);
		return ldapu_fail(p->ld, rc, "could not add the application", error_r);
	}
	*dn_r = dn;
	if (password == NULL)
		*password_r = chosen;
	else
		free_password(&chosen);
	return IX_OK;
}

int prov_app_del(struct prov *p, const char *name, struct buf *error_r)
{
	char *dn;
	int ret = app_lookup(p, name, 1, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	int rc = ldap_delete_ext_s(p->ld, dn, NULL, NULL);
	free(dn);
	return rc == LDAP_SUCCESS ? IX_OK : ldapu_fail(p->ld, rc, "could not delete the application", error_r);
}

int prov_app_passwd(struct prov *p, const char *name, const char *password, char **password_r, struct buf *error_r)
{
	*password_r = NULL;
	char *dn = NULL, *chosen = NULL;
	int ret = app_lookup(p, name, 1, &dn, error_r);
	if (ret == IX_OK)
		ret = app_password(p, name, password, &chosen, error_r);
	if (ret == IX_OK) {
		int rc = set_password(p, dn, NULL, chosen);
		if (rc != LDAP_SUCCESS)
			ret = ldapu_fail(p->ld, rc, "could not set the password", error_r);
	}
	free(dn);
	if (ret == IX_OK && password == NULL)
		*password_r = chosen;
	else
		free_password(&chosen);
	return ret;
}

int prov_app_list(struct prov *p, struct buf *out, struct buf *error_r)
{
	static const char *const attrs[] = { "cn", NULL };
	char *base = xasprintf(SLAPD_APPLICATIONS_RDN ",%s", p->cfg->suffix);
	LDAPMessage *res = NULL;
	int ret = list_search(p, base, LDAP_SCOPE_ONELEVEL, "(objectClass=applicationProcess)", attrs, &res, error_r);
	free(base);
	if (ret != IX_OK)
		return ret;
	buf_printf(out, "%-20s %s\n", "NAME", "BIND DN");
	for (LDAPMessage *e = ldapu_first_entry(p->ld, res); e != NULL; e = ldap_next_entry(p->ld, e)) {
		char *cn = ldapu_get_first(p->ld, e, "cn"), *dn = ldap_get_dn(p->ld, e);
		buf_printf(out, "%-20s %s\n", cn != NULL ? cn : "", dn != NULL ? dn : "");
		free(cn);
		ldap_memfree(dn);
	}
	ldap_msgfree(res);
	return IX_OK;
}

/* ---- contacts, lists, folders ---- */

int prov_contact_add(struct prov *p, const char *name, const char *email, struct buf *error_r)
{
	if (!prov_name_valid(name)) {
		buf_printf(error_r, "a contact name must be 1-%d characters without control characters", PROV_MAX_NAME);
		return IX_EINVAL;
	}
	int ret = check_addresses_free(p, &email, 1, error_r);
	if (ret != IX_OK)
		return ret;
	char *dn = prov_list_dn(p, name);
	if (entry_exists(p, dn)) {
		buf_printf(error_r, "a recipient named %s already exists", name);
		free(dn);
		return IX_EEXIST;
	}
	LDAPMod **mods = NULL;
	size_t n = 0, noc = 0;
	char **oc = NULL;
	ldapu_values_push(&oc, &noc, "inetOrgPerson");
	ldapu_values_push(&oc, &noc, "ixRecipient");
	ldapu_values_push(&oc, &noc, "ixContact");
	char *proxy = xasprintf("SMTP:%s", email);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "objectClass", oc);
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "cn", ldapu_values1(name));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "sn", ldapu_values1(name));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "displayName", ldapu_values1(name));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "mail", ldapu_values1(email));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixTargetAddress", ldapu_values1(email));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixProxyAddresses", ldapu_values1(proxy));
	ldapu_mod_add(&mods, &n, LDAP_MOD_ADD, "ixNickname", ldapu_values1(name));
	int rc = ldap_add_ext_s(p->ld, dn, mods, NULL, NULL);
	ldapu_mods_free(mods);
	free(proxy);
	free(dn);
	return rc == LDAP_SUCCESS ? IX_OK : ldapu_fail(p->ld, rc, "could not add the contact", error_r);
}

int prov_find_recipient(struct prov *p, const char *name, char **dn_r, struct buf *error_r)
{
	if (name[0] == '\0' || strlen(name) > PROV_MAX_ADDRESS + PROV_MAX_NAME) {
		buf_append_str(error_r, "a recipient name must not be empty or that long");
		return IX_EINVAL;
	}
	struct buf f = BUF_INIT;
	size_t len = strlen(name);
	buf_append_str(&f, "(&" RECIPIENT_FILTER "(|(uid=");
	ldapu_escape_filter(&f, name, len);
	buf_append_str(&f, ")(cn=");
	ldapu_escape_filter(&f, name, len);
	buf_append_str(&f, ")(mail=");
	ldapu_escape_filter(&f, name, len);
	buf_append_str(&f, ")(ixProxyAddresses=smtp:");
	ldapu_escape_filter(&f, name, len);
	buf_append_str(&f, ")))");
	const char *attrs[] = { (char *)LDAP_NO_ATTRS, NULL };
	LDAPMessage *res = NULL;
	/* users, contacts and lists first; a public folder only when no other recipient has the name */
	int ret = list_search(p, p->recipients_dn, LDAP_SCOPE_SUBTREE, f.data, attrs, &res, error_r);
	if (ret == IX_OK && ldap_count_entries(p->ld, res) == 0) {
		ldap_msgfree(res);
		res = NULL;
		ret = list_search(p, p->folders_dn, LDAP_SCOPE_SUBTREE, f.data, attrs, &res, error_r);
	}
	buf_free(&f);
	if (ret != IX_OK)
		return ret;
	int count = ldap_count_entries(p->ld, res);
	if (count == 0) {
		buf_printf(error_r,
			   "there is no recipient called %s (give a login, a list or contact name, or an "
			   "address)",
			   name);
		ret = IX_ENOTFOUND;
	} else if (count > 1) {
		buf_printf(error_r, "%s names %d recipients: give a login or an address instead", name, count);
		ret = IX_EINVAL;
	} else {
		char *d = ldap_get_dn(p->ld, ldapu_first_entry(p->ld, res));
		*dn_r = xstrdup(d);
		ldap_memfree(d);
	}
	ldap_msgfree(res);
	return ret;
}

static int find_list(struct prov *p, const char *name, char **dn_r, struct buf *error_r)
{
	if (!prov_name_valid(name)) {
		buf_printf(error_r, "\"%s\" is not a valid list name", name);
		return IX_EINVAL;
	}
	char *dn = prov_list_dn(p, name);
	if (!is_list(p, dn)) {
		buf_printf(error_r, "there is no distribution list named %s", name);
		free(dn);
		return IX_ENOTFOUND;
	}
	*dn_r = dn;
	return IX_OK;
}

int prov_dl_add(struct prov *p, const char *name, const char *const *members, size_t n, bool posix, struct buf *error_r)
{
	if (!prov_name_valid(name)) {
		buf_printf(error_r, "a list name must be 1-%d characters without control characters", PROV_MAX_NAME);
		return IX_EINVAL;
	}
	char *dn = prov_list_dn(p, name);
	if (entry_exists(p, dn)) {
		buf_printf(error_r, "a recipient named %s already exists", name);
		free(dn);
		return IX_EEXIST;
	}
	char **member_dns = NULL;
	size_t nm = 0;
	int ret = IX_OK;
	for (size_t i = 0; i < n && ret == IX_OK; i++) {
		char *mdn;
		ret = prov_find_recipient(p, members[i], &mdn, error_r);
		if (ret == IX_OK) {
			ldapu_values_push(&member_dns, &nm, mdn);
			free(mdn);
		}
	}
	if (ret != IX_OK) {
		for (size_t i = 0; i < nm; i++)
			free(member_dns[i]);
		free(member_dns);
		free(dn);
		return ret;
	}
	unsigned long long gid = 0;
	if (posix && (ret = prov_posix_id_new(p, &gid, error_r)) != IX_OK) {
		ldapu_values_free(&member_dns);
		free(dn);
		return ret;
	}
	LDAPMod **mods = NULL;
	size_t k = 0, noc = 0;
	char **oc = NULL;
	ldapu_values_push(&oc, &noc, "ixDistributionList");
	ldapu_values_push(&oc, &noc, "ixRecipient");
	if (posix) {
		ldapu_values_push(&oc, &noc, "posixGroup");
		prov_posix_group_mods(gid, &mods, &k);
	}
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "objectClass", oc);
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "cn", ldapu_values1(name));
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "displayName", ldapu_values1(name));
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixNickname", ldapu_values1(name));
	if (nm > 0)
		ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "member", member_dns);
	int rc = ldap_add_ext_s(p->ld, dn, mods, NULL, NULL);
	ldapu_mods_free(mods);
	free(dn);
	return rc == LDAP_SUCCESS ? IX_OK : ldapu_fail(p->ld, rc, "could not add the list", error_r);
}

int prov_dl_member(struct prov *p, const char *name, const char *recipient, int add, struct buf *error_r)
{
	char *dn, *mdn;
	int ret = find_list(p, name, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	ret = prov_find_recipient(p, recipient, &mdn, error_r);
	if (ret != IX_OK) {
		free(dn);
		return ret;
	}
	if (add && strcasecmp(dn, mdn) == 0) {
		buf_printf(error_r, "a list cannot be a member of itself");
		free(dn);
		free(mdn);
		return IX_EINVAL;
	}
	LDAPMod **mods = NULL;
	size_t k = 0;
	ldapu_mod_add(&mods, &k, add ? LDAP_MOD_ADD : LDAP_MOD_DELETE, "member", ldapu_values1(mdn));
	enum ldapu_value_fault fault;
	ret = ldapu_modify_values(p->ld, dn, mods, "could not change the list", &fault, error_r);
	ldapu_mods_free(mods);
	if (fault == LDAPU_VALUE_EXISTS)
		buf_printf(error_r, "%s is already a member of %s", recipient, name);
	else if (fault == LDAPU_VALUE_MISSING)
		buf_printf(error_r, "%s is not a member of %s", recipient, name);
	free(dn);
	free(mdn);
	return ret;
}

int prov_dl_show(struct prov *p, const char *name, struct buf *out, struct buf *error_r)
{
	char *dn;
	int ret = find_list(p, name, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	const char *attrs[] = { "cn", "member", "ixProxyAddresses", "memberOf", PROV_POSIX_ATTRS, NULL };
	LDAPMessage *res = NULL;
	ret = read_entry(p, dn, "(objectClass=*)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (e != NULL) {
		buf_printf(out, "%-14s%s\n%-14s%s\n", "DN:", dn, "Name:", name);
		show_addresses(p, e, out);
		struct berval **members = ldap_get_values_len(p->ld, e, "member");
		if (members == NULL || members[0] == NULL)
			buf_printf(out, "%-14s(none)\n", "Members:");
		for (size_t i = 0; members != NULL && members[i] != NULL; i++) {
			char *mdn = xstrndup(members[i]->bv_val, members[i]->bv_len);
			char *mcn = prov_rdn_value(mdn);
			buf_printf(out, "%-14s%s (%s)\n", i == 0 ? "Members:" : "", mcn, mdn);
			free(mcn);
			free(mdn);
		}
		ldap_value_free_len(members);
		prov_posix_show(p->ld, e, out);
	}
	ldap_msgfree(res);
	free(dn);
	return ret;
}

int prov_folder_add(struct prov *p, const char *path, struct buf *error_r)
{
	while (*path == '/')
		path++;
	if (*path == '\0' || strlen(path) > 1024) {
		buf_append_str(error_r, "give a public folder path such as Sales/Leads");
		return IX_EINVAL;
	}
	char *copy = xstrdup(path);
	char *parts[PROV_MAX_FOLDER_DEPTH];
	size_t depth = 0;
	int ret = IX_OK;
	for (char *save = NULL, *c = strtok_r(copy, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
		if (depth == PROV_MAX_FOLDER_DEPTH || !prov_name_valid(c)) {
			buf_printf(error_r,
				   "\"%s\" is not a valid public folder path (at most %d levels, names without "
				   "control characters)",
				   path, PROV_MAX_FOLDER_DEPTH);
			ret = IX_EINVAL;
			break;
		}
		parts[depth++] = c;
	}
	char *parent = xstrdup(p->folders_dn);
	struct buf full = BUF_INIT;
	for (size_t i = 0; i < depth && ret == IX_OK; i++) {
		buf_printf(&full, "%s%s", i > 0 ? "/" : "", parts[i]); /* as IMAP names it, no leading slash */
		char *dn = cn_dn(parts[i], parent);
		if (entry_exists(p, dn)) {
			if (i + 1 == depth) {
				buf_printf(error_r, "the public folder %s already exists", full.data);
				ret = IX_EEXIST;
			}
		} else {
			LDAPMod **mods = NULL;
			size_t k = 0, noc = 0;
			char **oc = NULL;
			ldapu_values_push(&oc, &noc, "ixPublicFolder");
			ldapu_values_push(&oc, &noc, "ixRecipient");
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "objectClass", oc);
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "cn", ldapu_values1(parts[i]));
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixFolderPath", ldapu_values1(full.data));
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixNickname", ldapu_values1(parts[i]));
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "displayName", ldapu_values1(parts[i]));
			/* hidden from the address book until an administrator publishes it */
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixHideFromAddressBook", ldapu_values1("TRUE"));
			int rc = ldap_add_ext_s(p->ld, dn, mods, NULL, NULL);
			ldapu_mods_free(mods);
			if (rc != LDAP_SUCCESS)
				ret = ldapu_fail(p->ld, rc, "could not add the public folder", error_r);
		}
		free(parent);
		parent = dn;
	}
	free(parent);
	free(copy);
	buf_free(&full);
	return ret;
}

int prov_folder_list(struct prov *p, struct buf *out, struct buf *error_r)
{
	const char *attrs[] = { "ixFolderPath", "mail", NULL };
	LDAPMessage *res = NULL;
	int ret = list_search(p, p->folders_dn, LDAP_SCOPE_SUBTREE, "(objectClass=ixPublicFolder)", attrs, &res,
			      error_r);
	if (ret != IX_OK)
		return ret;
	for (LDAPMessage *e = ldapu_first_entry(p->ld, res); e != NULL; e = ldap_next_entry(p->ld, e)) {
		char *path = ldapu_get_first(p->ld, e, "ixFolderPath"), *mail = ldapu_get_first(p->ld, e, "mail");
		const char *v = path != NULL ? path : "";
		while (*v == '/')
			v++;
		if (*v != '\0')
			buf_printf(out, "%s\t%s\n", v, mail != NULL ? mail : "");
		free(path);
		free(mail);
	}
	ldap_msgfree(res);
	return IX_OK;
}

/* ---- address generation ---- */

struct policy {
	char **person;   /* ixAddressTemplate values */
	char **nickname; /* ixNicknameTemplate values */
	char *filter;
};

static void policy_free(struct policy *pol)
{
	for (size_t i = 0; pol->person != NULL && pol->person[i] != NULL; i++)
		free(pol->person[i]);
	for (size_t i = 0; pol->nickname != NULL && pol->nickname[i] != NULL; i++)
		free(pol->nickname[i]);
	free(pol->person);
	free(pol->nickname);
	free(pol->filter);
}

/* Loads the policies ordered by priority (lowest first). */
static int load_policies(struct prov *p, struct policy **pols_r, size_t *n_r, struct buf *error_r)
{
	char *base = xasprintf("ou=Recipient Policies,ou=Configuration,%s", p->cfg->suffix);
	const char *attrs[] = { "ixAddressTemplate", "ixNicknameTemplate", "ixPolicyPriority", "ixPolicyFilter", NULL };
	LDAPMessage *res = NULL;
	int ret = list_search(p, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixRecipientPolicy)", attrs, &res, error_r);
	free(base);
	if (ret != IX_OK)
		return ret;
	size_t n = 0;
	struct policy *pols = NULL;
	long long *prio = NULL;
	for (LDAPMessage *e = ldapu_first_entry(p->ld, res); e != NULL; e = ldap_next_entry(p->ld, e)) {
		pols = xrealloc(pols, sizeof(*pols) * (n + 1));
		prio = xrealloc(prio, sizeof(*prio) * (n + 1));
		pols[n].person = ldapu_get_values(p->ld, e, "ixAddressTemplate", NULL);
		pols[n].nickname = ldapu_get_values(p->ld, e, "ixNicknameTemplate", NULL);
		pols[n].filter = ldapu_get_first(p->ld, e, "ixPolicyFilter");
		char *pr = ldapu_get_first(p->ld, e, "ixPolicyPriority");
		prio[n] = pr != NULL ? atoll(pr) : 1000000;
		free(pr);
		/* insertion sort: a handful of policies */
		for (size_t i = n; i > 0 && prio[i - 1] > prio[i]; i--) {
			struct policy t = pols[i];
			pols[i] = pols[i - 1];
			pols[i - 1] = t;
			long long tp = prio[i];
			prio[i] = prio[i - 1];
			prio[i - 1] = tp;
		}
		n++;
	}
	ldap_msgfree(res);
	free(prio);
	*pols_r = pols;
	*n_r = n;
	return IX_OK;
}

static int policy_applies(struct prov *p, const struct policy *pol, const char *dn)
{
	if (pol->filter == NULL || pol->filter[0] == '\0')
		return 1;
	return ldapu_entry_matches(p->ld, dn, pol->filter);
}

/* Checks whether the entry already holds address as a secondary (a user-given alias). */
static int has_proxy(struct prov *p, LDAPMessage *e, const char *address, char **value_r)
{
	struct berval **vals = ldap_get_values_len(p->ld, e, "ixProxyAddresses");
	int found = 0;
	for (size_t i = 0; vals != NULL && vals[i] != NULL && !found; i++) {
		if (vals[i]->bv_len == strlen(address) + 5 &&
		    strncasecmp(vals[i]->bv_val + 5, address, strlen(address)) == 0) {
			*value_r = xstrndup(vals[i]->bv_val, vals[i]->bv_len);
			found = 1;
		}
	}
	ldap_value_free_len(vals);
	return found;
}

/* Tries to make address the entry's primary. Returns IX_OK, IX_EEXIST (taken: try the next variant). */
static int assign_primary(struct prov *p, LDAPMessage *e, const char *dn, const char *address, struct buf *error_r)
{
	char *own = NULL;
	if (!has_proxy(p, e, address, &own)) {
		char *owner = prov_address_owner(p, address);
		if (owner != NULL) {
			free(owner);
			return IX_EEXIST;
		}
	}
	LDAPMod **mods = NULL;
	size_t k = 0;
	char *proxy = xasprintf("SMTP:%s", address);
	if (own != NULL)
		ldapu_mod_add(&mods, &k, LDAP_MOD_DELETE, "ixProxyAddresses", ldapu_values1(own));
	ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixProxyAddresses", ldapu_values1(proxy));
	ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "mail", ldapu_values1(address));
	/* IX_EEXIST (the value is there, or the unique overlay refused it): someone took it between our check and the
	 * write */
	enum ldapu_value_fault fault;
	int ret = ldapu_modify_values(p->ld, dn, mods, "could not write a generated address", &fault, error_r);
	ldapu_mods_free(mods);
	free(proxy);
	free(own);
	return ret;
}

static int generate_one(struct prov *p, const struct policy *pols, size_t npols, LDAPMessage *e, struct buf *error_r)
{
	char *ldn = ldap_get_dn(p->ld, e);
	char *dn = xstrdup(ldn);
	ldap_memfree(ldn);
	char *given = ldapu_get_first(p->ld, e, "givenName");
	char *sn = ldapu_get_first(p->ld, e, "sn");
	char *nick = ldapu_get_first(p->ld, e, "ixNickname");
	char *cn = ldapu_get_first(p->ld, e, "cn");
	struct berval **ocs = ldap_get_values_len(p->ld, e, "objectClass");
	int person = 0;
	for (size_t i = 0; ocs != NULL && ocs[i] != NULL; i++)
		person |= ocs[i]->bv_len == 10 && strncasecmp(ocs[i]->bv_val, "ixMailUser", 10) == 0;
	ldap_value_free_len(ocs);
	struct addrgen_vars vars = { given, sn, nick != NULL ? nick : cn };
	int ret = IX_ENOTFOUND;
	struct buf addr = BUF_INIT, variant = BUF_INIT, err = BUF_INIT;
	for (size_t i = 0; i < npols && ret == IX_ENOTFOUND; i++) {
		if (!policy_applies(p, &pols[i], dn))
			continue;
		/* a person's template first, the nickname template when the name gives no address */
		char **lists[2] = { person ? pols[i].person : NULL, pols[i].nickname };
		for (int l = 0; l < 2 && ret == IX_ENOTFOUND; l++) {
			for (size_t t = 0; lists[l] != NULL && lists[l][t] != NULL && ret == IX_ENOTFOUND; t++) {
				if (strncmp(lists[l][t], "SMTP:", 5) != 0)
					continue; /* only the primary (upper-case) template makes the primary */
				buf_reset(&addr);
				buf_reset(&err);
				if (addrgen_expand(lists[l][t], &vars, &addr, &err) != IX_OK) {
					log_debug("%s: %s", dn, buf_cstr(&err));
					continue;
				}
				for (unsigned v = 1; v <= PROV_MAX_VARIANTS; v++) {
					buf_reset(&variant);
					if (v == 1)
						buf_append(&variant, addr.data, addr.len);
					else
						addrgen_variant(addr.data, v, &variant);
					int r = assign_primary(p, e, dn, variant.data, error_r);
					if (r == IX_OK) {
						log_info("gave %s the address %s", dn, variant.data);
						ret = IX_OK;
						break;
					}
					if (r != IX_EEXIST) {
						ret = r;
						break;
					}
				}
			}
		}
	}
	if (ret == IX_ENOTFOUND)
		buf_printf(error_r, "no recipient policy gives %s an address", dn);
	buf_free(&addr);
	buf_free(&variant);
	buf_free(&err);
	free(dn);
	free(given);
	free(sn);
	free(nick);
	free(cn);
	return ret;
}

/* Gives an address to each recipient without one found by a search of base with scope (the whole directory, or one
 * entry); pols as load_policies gives them. */
static int generate_in(struct prov *p, const struct policy *pols, size_t npols, const char *base, int scope,
		       unsigned *count_r, struct buf *error_r)
{
	const char *attrs[] = { "objectClass", "givenName", "sn", "cn", "ixNickname", "ixProxyAddresses", NULL };
	LDAPMessage *res = NULL;
	int ret = list_search(p, base, scope, "(&" RECIPIENT_FILTER "(!(mail=*)))", attrs, &res, error_r);
	/* a DN that is no entry of ours (gone meanwhile) is passed over */
	if (scope == LDAP_SCOPE_BASE && ret != IX_OK && ret != IX_EUNAVAIL && ret != IX_EIO) {
		buf_reset(error_r);
		ret = IX_OK;
	}
	for (LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL; e != NULL;
	     e = ldap_next_entry(p->ld, e)) {
		struct buf err = BUF_INIT;
		int r = generate_one(p, pols, npols, e, &err);
		if (r == IX_OK)
			(*count_r)++;
		else
			log_warn("address generation: %s", buf_cstr(&err));
		if (r == IX_EUNAVAIL) {
			buf_append_str(error_r, buf_cstr(&err));
			ret = r;
			buf_free(&err);
			break;
		}
		buf_free(&err);
	}
	ldap_msgfree(res);
	return ret;
}

int prov_generate_addresses_for(struct prov *p, const char *const *dns, size_t n, unsigned *count_r,
				struct buf *error_r)
{
	*count_r = 0;
	struct policy *pols = NULL;
	size_t npols = 0;
	int ret = load_policies(p, &pols, &npols, error_r);
	if (ret != IX_OK)
		return ret;
	if (dns == NULL)
		ret = generate_in(p, pols, npols, p->cfg->suffix, LDAP_SCOPE_SUBTREE, count_r, error_r);
	for (size_t i = 0; dns != NULL && i < n && ret == IX_OK; i++)
		ret = generate_in(p, pols, npols, dns[i], LDAP_SCOPE_BASE, count_r, error_r);
	for (size_t i = 0; i < npols; i++)
		policy_free(&pols[i]);
	free(pols);
	return ret;
}

int prov_generate_addresses(struct prov *p, unsigned *count_r, struct buf *error_r)
{
	return prov_generate_addresses_for(p, NULL, 0, count_r, error_r);
}

/* ---- accepted domains ---- */

static char *domain_dn(struct prov *p, const char *domain, struct buf *error_r)
{
	if (!config_domain_valid(domain)) {
		buf_printf(error_r, "\"%s\" is not a domain name", domain);
		return NULL;
	}
	struct buf dn = BUF_INIT;
	buf_append_str(&dn, "cn=");
	ldapu_escape_dn(&dn, domain, strlen(domain));
	buf_printf(&dn, ",ou=Accepted Domains,ou=Configuration,%s", p->cfg->suffix);
	return buf_steal(&dn);
}

int prov_domain_each(struct prov *p, prov_domain_fn *fn, void *ctx, struct buf *error_r)
{
	char *base = xasprintf("ou=Accepted Domains,ou=Configuration,%s", p->cfg->suffix);
	const char *attrs[] = { "cn", "ixDomainType", "ixDkimSelector", NULL };
	LDAPMessage *res = NULL;
	int ret = list_search(p, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixAcceptedDomain)", attrs, &res, error_r);
	free(base);
	if (ret != IX_OK)
		return ret;
	for (LDAPMessage *e = ldapu_first_entry(p->ld, res); e != NULL; e = ldap_next_entry(p->ld, e)) {
		char *cn = ldapu_get_first(p->ld, e, "cn"), *type = ldapu_get_first(p->ld, e, "ixDomainType");
		char **sels = ldapu_get_values(p->ld, e, "ixDkimSelector", NULL);
		fn(ctx, cn != NULL ? cn : "", type != NULL ? type : "authoritative", (const char *const *)sels);
		ldapu_values_free(&sels);
		free(cn);
		free(type);
	}
	ldap_msgfree(res);
	return IX_OK;
}

static void domain_line(void *ctx, const char *domain, const char *type, const char *const *selectors)
{
	struct buf *out = ctx;
	buf_printf(out, "%-32s %-16s ", domain, type);
	for (size_t i = 0; selectors[i] != NULL; i++)
		buf_printf(out, "%s%s", i ? ", " : "", selectors[i]);
	buf_append_str(out, selectors[0] == NULL ? "-\n" : "\n");
}

int prov_domain_list(struct prov *p, struct buf *out, struct buf *error_r)
{
	buf_printf(out, "%-32s %-16s %s\n", "DOMAIN", "TYPE", "DKIM SELECTORS");
	return prov_domain_each(p, domain_line, out, error_r);
}

/* Reads the domain's entry: its selectors into selectors_r (may be NULL), whether it has the class ixDkimSigning. */
static int domain_read(struct prov *p, const char *dn, const char *domain, struct buf *selectors_r, bool *signing_r,
		       struct buf *error_r)
{
	const char *attrs[] = { "objectClass", "ixDkimSelector", NULL };
	LDAPMessage *res = NULL;
	int ret = ldapu_search(p->ld, dn, LDAP_SCOPE_BASE, "(objectClass=ixAcceptedDomain)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (ret == IX_ENOTFOUND || (ret == IX_OK && e == NULL)) {
		buf_reset(error_r);
		buf_printf(error_r, "%s is not one of the organisation's domains", domain);
		ret = IX_ENOTFOUND;
	}
	if (e != NULL) {
		char **sels = ldapu_get_values(p->ld, e, "ixDkimSelector", NULL);
		char **classes = ldapu_get_values(p->ld, e, "objectClass", NULL);
		if (selectors_r != NULL)
			buf_reset(selectors_r);
		for (size_t i = 0; sels != NULL && sels[i] != NULL; i++) {
			if (selectors_r != NULL)
				buf_printf(selectors_r, "%s%s", i ? "\n" : "", sels[i]);
			free(sels[i]);
		}
		*signing_r = false;
		for (size_t i = 0; classes != NULL && classes[i] != NULL; i++) {
			*signing_r |= strcasecmp(classes[i], "ixDkimSigning") == 0;
			free(classes[i]);
		}
		free(sels);
		free(classes);
	}
	ldap_msgfree(res);
	return ret;
}

int prov_domain_dkim_get(struct prov *p, const char *domain, struct buf *selectors_r, struct buf *error_r)
{
	char *dn = domain_dn(p, domain, error_r);
	if (dn == NULL)
		return IX_EINVAL;
	bool signing;
	int ret = domain_read(p, dn, domain, selectors_r, &signing, error_r);
	free(dn);
	return ret;
}

int prov_domain_dkim_set(struct prov *p, const char *domain, const char *const *selectors, size_t n,
			 struct buf *error_r)
{
	char *dn = domain_dn(p, domain, error_r);
	if (dn == NULL)
		return IX_EINVAL;
	bool signing;
	int ret = domain_read(p, dn, domain, NULL, &signing, error_r);
	if (ret == IX_OK) {
		LDAPMod **mods = NULL;
		size_t k = 0;
		if (!signing)
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "objectClass", ldapu_values1("ixDkimSigning"));
		char **vals = NULL;
		size_t nv = 0;
		for (size_t i = 0; i < n; i++)
			ldapu_values_push(&vals, &nv, selectors[i]);
		ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixDkimSelector", vals);
		ret = modify(p, dn, mods, "could not set the DKIM selectors", error_r);
	}
	free(dn);
	return ret;
}

/* ---- servers ---- */

int prov_server_list(struct prov *p, struct buf *out, struct buf *error_r)
{
	char *base = xasprintf("ou=Servers,ou=Configuration,%s", p->cfg->suffix);
	const char *attrs[] = { "cn",         "ixHostName", "ixServerRole", "ixLdapPort",
				"ixSmtpPort", "ixImapPort", "ixPop3Port",   NULL };
	LDAPMessage *res = NULL;
	int ret = list_search(p, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixServer)", attrs, &res, error_r);
	free(base);
	if (ret != IX_OK)
		return ret;
	buf_printf(out, "%-24s %-28s %-28s %s\n", "NAME", "HOST", "ROLES", "PORTS (ldap smtp imap pop3)");
	for (LDAPMessage *e = ldapu_first_entry(p->ld, res); e != NULL; e = ldap_next_entry(p->ld, e)) {
		char *cn = ldapu_get_first(p->ld, e, "cn"), *host = ldapu_get_first(p->ld, e, "ixHostName");
		char **roles = ldapu_get_values(p->ld, e, "ixServerRole", NULL);
		struct buf r = BUF_INIT;
		for (size_t i = 0; roles != NULL && roles[i] != NULL; i++) {
			buf_printf(&r, "%s%s", i ? "," : "", roles[i]);
			free(roles[i]);
		}
		free(roles);
		char *pl = ldapu_get_first(p->ld, e, "ixLdapPort"), *ps = ldapu_get_first(p->ld, e, "ixSmtpPort"),
		     *pi = ldapu_get_first(p->ld, e, "ixImapPort"), *pp = ldapu_get_first(p->ld, e, "ixPop3Port");
		buf_printf(out, "%-24s %-28s %-28s %s %s %s %s%s\n", cn ? cn : "", host ? host : "", buf_cstr(&r),
			   pl ? pl : "-", ps ? ps : "-", pi ? pi : "-", pp ? pp : "-",
			   cn != NULL && p->cfg->hostname != NULL && strcasecmp(cn, p->cfg->hostname) == 0
				   ? "  (this server)"
				   : "");
		free(pl);
		free(ps);
		free(pi);
		free(pp);
		buf_free(&r);
		free(cn);
		free(host);
	}
	ldap_msgfree(res);
	return IX_OK;
}

static char *server_entry_dn(struct prov *p, const char *server, struct buf *error_r)
{
	if (server != NULL && !prov_name_valid(server)) {
		buf_printf(error_r, "\"%s\" is not a valid server name", server);
		return NULL;
	}
	return server_dn(p, server, error_r);
}

int prov_server_show(struct prov *p, const char *server, struct buf *out, struct buf *error_r)
{
	char *dn = server_entry_dn(p, server, error_r);
	if (dn == NULL)
		return IX_ENOTFOUND;
	LDAPMessage *res = NULL;
	int ret = read_entry(p, dn, "(objectClass=ixServer)", NULL, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (e == NULL && ret == IX_OK) {
		buf_printf(error_r, "the server entry %s is missing", dn);
		ret = IX_ENOTFOUND;
	}
	if (e != NULL) {
		char *cn = ldapu_get_first(p->ld, e, "cn"), *host = ldapu_get_first(p->ld, e, "ixHostName");
		char **roles = ldapu_get_values(p->ld, e, "ixServerRole", NULL);
		buf_printf(out, "%-14s%s\n%-14s%s\n%-14s%s\n%-14s", "Server:", cn ? cn : "", "Host:", host ? host : "",
			   "DN:", dn, "Roles:");
		for (size_t i = 0; roles != NULL && roles[i] != NULL; i++) {
			buf_printf(out, "%s%s", i ? ", " : "", roles[i]);
			free(roles[i]);
		}
		free(roles);
		buf_printf(out, "\n%-14s", "Ports:");
		for (int i = 0; i < PORT_COUNT; i++) {
			if (slapd_port_attr(i) == NULL)
				continue; /* kept in the bootstrap configuration only */
			char *v = ldapu_get_first(p->ld, e, slapd_port_attr(i));
			buf_printf(out, "%s%s %s", i ? ", " : "", config_port_name(i), v ? v : "-");
			free(v);
		}
		buf_append_str(out, "\nSettings:\n");
		char **vals = ldapu_get_values(p->ld, e, "ixServerSetting", NULL);
		size_t n = 0;
		while (vals != NULL && vals[n] != NULL)
			n++;
		struct settings st;
		settings_load(&st, (const char *const *)vals, n);
		for (int i = 0; i < SET_COUNT; i++) {
			const struct setting_def *d = setting_def(i);
			if (setting_is_text(i))
				buf_printf(out, "  %-34s %-21s %s%s\n", d->name, st.set[i] ? st.text[i] : "\"\"",
					   d->description, st.set[i] ? "" : " (default)");
			else
				buf_printf(out, "  %-34s %-12llu %-8s %s%s\n", d->name, st.v[i], d->unit,
					   d->description, st.set[i] ? "" : " (default)");
		}
		for (size_t i = 0; i < n; i++)
			free(vals[i]);
		free(vals);
		vals = ldapu_get_values(p->ld, e, "ixAllowSenderFrom", NULL);
		buf_append_str(out, "Unauthenticated senders in our domains accepted on port 25 from:");
		for (size_t i = 0; vals != NULL && vals[i] != NULL; i++)
			buf_printf(out, "%s%s", i ? ", " : " ", vals[i]);
		buf_append_str(out, vals != NULL && vals[0] != NULL ? "\n" : " no one (allow-sender-from adds)\n");
		ldapu_values_free(&vals);
		free(cn);
		free(host);
	}
	ldap_msgfree(res);
	free(dn);
	return ret;
}

int prov_server_set(struct prov *p, const char *server, const char *name, const char *value, struct buf *error_r)
{
	int id = setting_find(name);
	if (id < 0) {
		buf_printf(error_r, "there is no setting called %s: 'interchange server show' lists them", name);
		return IX_EINVAL;
	}
	const struct setting_def *d = setting_def(id);
	unsigned long long v = 0;
	char why[SETTING_TEXT_MAX + 128];
	if (setting_is_text(id) && setting_parse_text(id, value, why, sizeof(why)) < 0) {
		buf_append_str(error_r, why);
		return IX_EINVAL;
	}
	if (!setting_is_text(id) && setting_parse(id, value, &v) < 0) {
		buf_printf(error_r, "%s takes a whole number from %llu to %llu%s%s, not \"%s\"", name, d->min, d->max,
			   d->unit[0] ? " " : "", d->unit, value);
		return IX_EINVAL;
	}
	char *dn = server_entry_dn(p, server, error_r);
	if (dn == NULL)
		return IX_ENOTFOUND;
	const char *attrs[] = { "ixServerSetting", NULL };
	LDAPMessage *res = NULL;
	int ret = read_entry(p, dn, "(objectClass=ixServer)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (e != NULL) {
		LDAPMod **mods = NULL;
		size_t k = 0;
		char **old = ldapu_get_values(p->ld, e, "ixServerSetting", NULL);
		size_t nlen = strlen(name);
		for (size_t i = 0; old != NULL && old[i] != NULL; i++) {
			if (strncmp(old[i], name, nlen) == 0 && old[i][nlen] == '=')
				ldapu_mod_add(&mods, &k, LDAP_MOD_DELETE, "ixServerSetting", ldapu_values1(old[i]));
			free(old[i]);
		}
		free(old);
		char *nv = setting_is_text(id) ? xasprintf("%s=%s", name, value) : xasprintf("%s=%llu", name, v);
		ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixServerSetting", ldapu_values1(nv));
		free(nv);
		ret = modify(p, dn, mods, "could not change the setting", error_r);
	}
	/* the settings slapd's password policy follows are the organisation's: its policy entry gets them too */
	const char *const *pattrs = slapd_policy_setting_attrs(id);
	if (ret == IX_OK && pattrs != NULL) {
		LDAPMod **mods = NULL;
		size_t k = 0;
		char num[24];
		snprintf(num, sizeof(num), "%llu", v);
		for (; *pattrs != NULL; pattrs++)
			ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, *pattrs, ldapu_values1(num));
		char *pdn = xasprintf(SLAPD_POLICY_RDN ",%s", p->cfg->suffix);
		ret = modify(p, pdn, mods, "could not change the password policy entry", error_r);
		free(pdn);
	}
	ldap_msgfree(res);
	free(dn);
	return ret;
}

int prov_server_sender_from(struct prov *p, const char *server, const char *client, bool allow, struct buf *error_r)
{
	if (ip_in_cidr(client, "") < 0) {
		buf_printf(error_r, "\"%s\" is neither an IP address nor a range such as 192.0.2.0/24 or 2001:db8::/48",
			   client);
		return IX_EINVAL;
	}
	char *dn = server_entry_dn(p, server, error_r);
	if (dn == NULL)
		return IX_ENOTFOUND;
	const char *attrs[] = { "objectClass", "ixAllowSenderFrom", NULL };
	LDAPMessage *res = NULL;
	int ret = read_entry(p, dn, "(objectClass=ixServer)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (e != NULL) {
		char **classes = ldapu_get_values(p->ld, e, "objectClass", NULL);
		char **old = ldapu_get_values(p->ld, e, "ixAllowSenderFrom", NULL);
		bool has_class = false;
		const char *present = NULL;
		for (size_t i = 0; classes != NULL && classes[i] != NULL; i++)
			has_class = has_class || strcasecmp(classes[i], "ixSenderExceptions") == 0;
		for (size_t i = 0; old != NULL && old[i] != NULL; i++) {
			if (strcasecmp(old[i], client) == 0)
				present = old[i];
		}
		LDAPMod **mods = NULL;
		size_t k = 0;
		if (allow && present == NULL) {
			if (!has_class)
				ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "objectClass",
					      ldapu_values1("ixSenderExceptions"));
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixAllowSenderFrom", ldapu_values1(client));
		} else if (!allow && present != NULL) {
			ldapu_mod_add(&mods, &k, LDAP_MOD_DELETE, "ixAllowSenderFrom", ldapu_values1(present));
		}
		ret = modify(p, dn, mods, "could not change the sender exceptions", error_r);
		ldapu_values_free(&classes);
		ldapu_values_free(&old);
	}
	ldap_msgfree(res);
	free(dn);
	return ret;
}

int prov_user_mailbox(struct prov *p, const char *login, char **guid_r, unsigned long long *quota_bytes_r,
		      unsigned long long *quota_messages_r, struct buf *error_r)
{
	char *dn;
	int ret = require_user(p, login, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	const char *attrs[] = { "ixMailboxGuid", "ixQuotaBytes", "ixQuotaMessages", NULL };
	LDAPMessage *res = NULL;
	ret = read_entry(p, dn, "(objectClass=*)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	char *guid = e != NULL ? ldapu_get_first(p->ld, e, "ixMailboxGuid") : NULL;
	char *qb = e != NULL ? ldapu_get_first(p->ld, e, "ixQuotaBytes") : NULL;
	char *qm = e != NULL ? ldapu_get_first(p->ld, e, "ixQuotaMessages") : NULL;
	ldap_msgfree(res);
	if (ret == IX_OK && guid == NULL) {
		buf_printf(error_r, "%s has no mailbox GUID", login);
		ret = IX_ECORRUPT;
	}
	/* server defaults from this server's settings */
	struct settings st;
	settings_load(&st, NULL, 0);
	const char *sattrs[] = { "ixServerSetting", NULL };
	if (ret == IX_OK && ldapu_search(p->ld, p->cfg->server_dn, LDAP_SCOPE_BASE, "(objectClass=ixServer)", sattrs,
					 &res, error_r) == IX_OK) {
		LDAPMessage *se = ldapu_first_entry(p->ld, res);
		char **vals = se != NULL ? ldapu_get_values(p->ld, se, "ixServerSetting", NULL) : NULL;
		size_t n = 0;
		while (vals != NULL && vals[n] != NULL)
			n++;
		settings_load(&st, (const char *const *)vals, n);
		for (size_t i = 0; i < n; i++)
			free(vals[i]);
		free(vals);
		ldap_msgfree(res);
	}
	if (ret == IX_OK) {
		*guid_r = guid;
		guid = NULL;
		*quota_bytes_r = qb != NULL ? strtoull(qb, NULL, 10) : st.v[SET_STORE_QUOTA_BYTES];
		*quota_messages_r = qm != NULL ? strtoull(qm, NULL, 10) : st.v[SET_STORE_QUOTA_MESSAGES];
	}
	free(guid);
	free(qb);
	free(qm);
	free(dn);
	return ret;
}

/* ---- mailbox moves ---- */

int prov_move_prepare(struct prov *p, const char *login, const char *server, struct prov_move *m_r, struct buf *error_r)
{
	memset(m_r, 0, sizeof(*m_r));
	int ret = require_user(p, login, &m_r->dn, error_r);
	if (ret != IX_OK)
		return ret;
	m_r->target_dn = server_entry_dn(p, server, error_r);
	if (m_r->target_dn == NULL)
		return IX_ENOTFOUND;
	const char *attrs[] = { "ixMailboxGuid", "ixHomeServer", NULL };
	LDAPMessage *res = NULL;
	ret = read_entry(p, m_r->dn, "(objectClass=*)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (e != NULL) {
		m_r->guid = ldapu_get_first(p->ld, e, "ixMailboxGuid");
		m_r->home_dn = ldapu_get_first(p->ld, e, "ixHomeServer");
	}
	ldap_msgfree(res);
	if (ret == IX_OK && (m_r->guid == NULL || m_r->home_dn == NULL)) {
		buf_printf(error_r, "%s has no mailbox GUID or no home server", login);
		return IX_ECORRUPT;
	}
	const char *sattrs[] = { "ixHostName", "ixImapPort", "ixLdapUri", NULL };
	if (ret == IX_OK)
		ret = read_entry(p, m_r->target_dn, "(objectClass=ixServer)", sattrs, &res, error_r);
	e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	if (e != NULL) {
		m_r->target_host = ldapu_get_first(p->ld, e, "ixHostName");
		m_r->target_ldap_uri = ldapu_get_first(p->ld, e, "ixLdapUri");
		char *port = ldapu_get_first(p->ld, e, "ixImapPort");
		m_r->target_imap_port = port != NULL ? (unsigned)strtoul(port, NULL, 10) : 143;
		free(port);
	}
	if (ret == IX_OK)
		ldap_msgfree(res);
	if (ret == IX_OK && m_r->target_host == NULL) {
		buf_printf(error_r, "server %s has no host name in the directory", server);
		return IX_ECORRUPT;
	}
	return ret;
}

void prov_move_free(struct prov_move *m)
{
	free(m->dn);
	free(m->guid);
	free(m->home_dn);
	free(m->target_dn);
	free(m->target_host);
	free(m->target_ldap_uri);
	memset(m, 0, sizeof(*m));
}

/* ---- restrictions, forwarding, delegation, quotas ---- */

int prov_set_home(struct prov *p, const char *user_dn, const char *server_dn, struct buf *error_r)
{
	LDAPMod **mods = NULL;
	size_t n = 0;
	ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, "ixHomeServer", ldapu_values1(server_dn));
	return modify(p, user_dn, mods, "could not change the home server", error_r);
}

/* Resolves names to DNs into a value array; IX_OK or the first failure. */
static int names_to_dns(struct prov *p, const char *const *names, size_t n, char ***dns_r, struct buf *error_r)
{
	char **dns = NULL;
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		char *dn;
		int ret = prov_find_recipient(p, names[i], &dn, error_r);
		if (ret != IX_OK) {
			for (size_t j = 0; j < nd; j++)
				free(dns[j]);
			free(dns);
			return ret;
		}
		ldapu_values_push(&dns, &nd, dn);
		free(dn);
	}
	*dns_r = dns;
	return IX_OK;
}

int prov_restrict(struct prov *p, const char *recipient, const struct prov_restrict *r, struct buf *error_r)
{
	char *dn;
	int ret = prov_find_recipient(p, recipient, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	if (r->members_only >= 0 && !is_list(p, dn)) {
		buf_printf(error_r, "--members-only applies to distribution lists, and %s is not one", recipient);
		free(dn);
		return IX_EINVAL;
	}
	LDAPMod **mods = NULL;
	size_t k = 0;
	static const char *const all[] = { "ixAcceptFrom", "ixRejectFrom", "ixRequireAuthenticatedSender",
					   "ixMaxReceiveSize", "ixMembersOnly" };
	if (r->clear) {
		/* replace with no values deletes an attribute whether or not it is there */
		for (size_t i = 0; i < IX_ARRAY_LEN(all); i++) {
			if (strcmp(all[i], "ixMembersOnly") == 0 && !is_list(p, dn))
				continue;
			ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, all[i], NULL);
		}
	}
	char **dns;
	if (r->accept_count > 0) {
		if ((ret = names_to_dns(p, r->accept_from, r->accept_count, &dns, error_r)) != IX_OK)
			goto out;
		ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixAcceptFrom", dns);
	}
	if (r->reject_count > 0) {
		if ((ret = names_to_dns(p, r->reject_from, r->reject_count, &dns, error_r)) != IX_OK)
			goto out;
		ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixRejectFrom", dns);
	}
	if (r->authenticated_only >= 0)
		ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixRequireAuthenticatedSender",
			      ldapu_values1(r->authenticated_only ? "TRUE" : "FALSE"));
	if (r->members_only >= 0)
		ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixMembersOnly",
			      ldapu_values1(r->members_only ? "TRUE" : "FALSE"));
	if (r->max_size >= 0) {
		char num[32];
		snprintf(num, sizeof(num), "%lld", r->max_size);
		ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixMaxReceiveSize",
			      r->max_size > 0 ? ldapu_values1(num) : NULL);
	}
	ret = modify(p, dn, mods, "could not change the restrictions", error_r);
	mods = NULL;
out:
	ldapu_mods_free(mods);
	free(dn);
	return ret;
}

/* The value of entry e's ixProxyAddresses that holds address (either prefix, any case), a new string; NULL when none. */
static char *proxy_value(struct prov *p, LDAPMessage *e, const char *address)
{
	char **vals = ldapu_get_values(p->ld, e, "ixProxyAddresses", NULL);
	char *found = NULL;
	for (size_t i = 0; vals[i] != NULL && found == NULL; i++)
		if (strncasecmp(vals[i], "smtp:", 5) == 0 && strcasecmp(vals[i] + 5, address) == 0)
			found = xstrdup(vals[i]);
	ldapu_values_free(&vals);
	return found;
}

int prov_addresses(struct prov *p, const char *recipient, const char *primary, const char *const *add, size_t nadd,
		   const char *const *del, size_t ndel, struct buf *error_r)
{
	char *dn;
	int ret = prov_find_recipient(p, recipient, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	static const char *const attrs[] = { "mail", "ixProxyAddresses", NULL };
	LDAPMessage *res = NULL;
	ret = read_entry(p, dn, "(objectClass=*)", attrs, &res, error_r);
	LDAPMessage *e = ret == IX_OK ? ldapu_first_entry(p->ld, res) : NULL;
	char *mail = e != NULL ? ldapu_get_first(p->ld, e, "mail") : NULL;
	LDAPMod **mods = NULL;
	size_t k = 0;
	if (ret == IX_OK && primary != NULL && (mail == NULL || strcasecmp(mail, primary) != 0)) {
		char *own = proxy_value(p, e, primary);
		if (own == NULL)
			ret = check_addresses_free(p, &primary, 1, error_r);
		if (ret == IX_OK) {
			char *old = mail != NULL ? proxy_value(p, e, mail) : NULL;
			if (old != NULL) {
				char *demoted = xasprintf("smtp:%s", old + 5);
				ldapu_mod_add(&mods, &k, LDAP_MOD_DELETE, "ixProxyAddresses", ldapu_values1(old));
				ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixProxyAddresses", ldapu_values1(demoted));
				free(demoted);
			}
			if (own != NULL)
				ldapu_mod_add(&mods, &k, LDAP_MOD_DELETE, "ixProxyAddresses", ldapu_values1(own));
			char *v = xasprintf("SMTP:%s", primary);
			ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixProxyAddresses", ldapu_values1(v));
			ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "mail", ldapu_values1(primary));
			free(v);
			free(old);
		}
		free(own);
	}
	if (ret == IX_OK && nadd > 0)
		ret = check_addresses_free(p, add, nadd, error_r);
	for (size_t i = 0; ret == IX_OK && i < nadd; i++) {
		char *v = xasprintf("smtp:%s", add[i]);
		ldapu_mod_add(&mods, &k, LDAP_MOD_ADD, "ixProxyAddresses", ldapu_values1(v));
		free(v);
	}
	for (size_t i = 0; ret == IX_OK && i < ndel; i++) {
		char *own = proxy_value(p, e, del[i]);
		if (own == NULL) {
			buf_printf(error_r, "%s is not an address of %s", del[i], recipient);
			ret = IX_ENOTFOUND;
		} else if ((mail != NULL && strcasecmp(del[i], mail) == 0 && primary == NULL) ||
			   (primary != NULL && strcasecmp(del[i], primary) == 0)) {
			buf_printf(error_r, "%s is the primary address of %s: make another address primary first",
				   del[i], recipient);
			ret = IX_EINVAL;
		} else {
			/* "smtp:": the old primary is deleted after its demotion above */
			char *v = xasprintf("smtp:%s", own + 5);
			ldapu_mod_add(&mods, &k, LDAP_MOD_DELETE, "ixProxyAddresses", ldapu_values1(v));
			free(v);
		}
		free(own);
	}
	if (ret == IX_OK) {
		ret = modify(p, dn, mods, "could not change the addresses", error_r);
		mods = NULL;
	}
	ldapu_mods_free(mods);
	free(mail);
	ldap_msgfree(res);
	free(dn);
	return ret;
}

int prov_hidden(struct prov *p, const char *recipient, bool hidden, struct buf *error_r)
{
	char *dn;
	int ret = prov_find_recipient(p, recipient, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	LDAPMod **mods = NULL;
	size_t k = 0;
	ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixHideFromAddressBook", hidden ? ldapu_values1("TRUE") : NULL);
	ret = modify(p, dn, mods, "could not change whether it is hidden", error_r);
	free(dn);
	return ret;
}

int prov_forward(struct prov *p, const char *recipient, const char *target, int keep_copy, struct buf *error_r)
{
	char *dn, *tdn = NULL;
	int ret = prov_find_recipient(p, recipient, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	if (target != NULL && (ret = prov_find_recipient(p, target, &tdn, error_r)) != IX_OK) {
		free(dn);
		return ret;
	}
	if (tdn != NULL && strcasecmp(tdn, dn) == 0) {
		buf_printf(error_r, "a recipient cannot forward to itself");
		free(dn);
		free(tdn);
		return IX_EINVAL;
	}
	LDAPMod **mods = NULL;
	size_t k = 0;
	ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixForwardTo", tdn != NULL ? ldapu_values1(tdn) : NULL);
	ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, "ixDeliverAndRedirect",
		      tdn != NULL && keep_copy ? ldapu_values1("TRUE") : NULL);
	ret = modify(p, dn, mods, "could not change forwarding", error_r);
	free(dn);
	free(tdn);
	return ret;
}

const char *prov_delegate_attr(enum prov_delegate_right right)
{
	return right == PROV_FULL_ACCESS      ? "ixFullAccess"
	       : right == PROV_SEND_ON_BEHALF ? "ixSendOnBehalf"
					      : "ixSendAs";
}

int prov_delegate(struct prov *p, const char *owner, const char *delegate, enum prov_delegate_right right, int revoke,
		  struct buf *error_r)
{
	char *dn, *ddn;
	int ret = prov_find_recipient(p, owner, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	if ((ret = prov_find_recipient(p, delegate, &ddn, error_r)) != IX_OK) {
		free(dn);
		return ret;
	}
	if (right == PROV_FULL_ACCESS && !revoke) { /* a mailbox, and someone who can sign in */
		const char *who = !ldapu_entry_matches(p->ld, dn, "(objectClass=ixMailUser)")    ? owner
				  : !ldapu_entry_matches(p->ld, ddn, "(objectClass=ixMailUser)") ? delegate
												 : NULL;
		if (who != NULL) {
			buf_printf(error_r, "full access is between users: %s is not a user with a mailbox", who);
			free(dn);
			free(ddn);
			return IX_EINVAL;
		}
	}
	LDAPMod **mods = NULL;
	size_t k = 0;
	ldapu_mod_add(&mods, &k, revoke ? LDAP_MOD_DELETE : LDAP_MOD_ADD, prov_delegate_attr(right),
		      ldapu_values1(ddn));
	enum ldapu_value_fault fault;
	ret = ldapu_modify_values(p->ld, dn, mods, "could not change the right", &fault, error_r);
	ldapu_mods_free(mods);
	if (fault == LDAPU_VALUE_EXISTS)
		buf_printf(error_r, "%s already has that right on %s", delegate, owner);
	else if (fault == LDAPU_VALUE_MISSING)
		buf_printf(error_r, "%s does not have that right on %s", delegate, owner);
	free(dn);
	free(ddn);
	return ret;
}

int prov_quota(struct prov *p, const char *login, long long bytes, long long messages, long long warn_bytes,
	       struct buf *error_r)
{
	char *dn;
	int ret = require_user(p, login, &dn, error_r);
	if (ret != IX_OK)
		return ret;
	LDAPMod **mods = NULL;
	size_t k = 0;
	const char *attrs[] = { "ixQuotaBytes", "ixQuotaMessages", "ixQuotaWarnBytes" };
	long long vals[] = { bytes, messages, warn_bytes };
	for (size_t i = 0; i < 3; i++) {
		if (vals[i] < 0)
			continue;
		char num[32];
		snprintf(num, sizeof(num), "%lld", vals[i]);
		ldapu_mod_add(&mods, &k, LDAP_MOD_REPLACE, attrs[i], ldapu_values1(num));
	}
	ret = modify(p, dn, mods, "could not change the quota", error_r);
	free(dn);
	return ret;
}
