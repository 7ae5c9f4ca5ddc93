/* ldap_util.h - the one boundary where libldap meets Interchange: connecting to our slapd, escaping user input
 * for filters and DNs (RFC 4515, RFC 4514), and turning LDAP result codes into ix_err codes and sentences. */
#ifndef IX_LDAP_UTIL_H
#define IX_LDAP_UTIL_H

#include <ldap.h>
#include <stdbool.h>
#include "common/buf.h"

/* ldapi URL for a socket path, percent-encoded as libldap wants it (docs/slapd-facts.md, "ldapi URLs").
 * Caller frees. */
char *ldapu_ldapi_uri(const char *socket_path);

struct config;

/* Initialises a connection to uri without contacting it: protocol v3, no referrals, a 5 s network timeout. Returns
 * IX_OK with *ld_r (the caller unbinds with ldap_unbind_ext_s), or IX_EINVAL ("cannot use directory address URI:
 * REASON" in error_r) when uri is not an LDAP URI. */
int ldapu_open(const char *uri, LDAP **ld_r, struct buf *error_r);
/* Connects to uri and binds with SASL EXTERNAL (ldapi only: slapd maps our uid to the rootDN).
 * Sets protocol v3, no referrals, a network timeout. Returns IX_OK with *ld_r, or IX_EUNAVAIL / IX_EAUTH
 * with a sentence in error_r. The caller unbinds with ldap_unbind_ext_s. */
int ldapu_connect_external(const char *uri, LDAP **ld_r, struct buf *error_r);
/* ldapu_connect_external to this server's own slapd (its ldapi socket in cfg's data folder): the administrator. */
int ldapu_connect_local(const struct config *cfg, LDAP **ld_r, struct buf *error_r);
/* Connects to uri and binds as dn with password (a simple bind). Empty passwords are refused (they would be
 * unauthenticated binds). Returns IX_OK, IX_EAUTH (wrong DN or password), or IX_EUNAVAIL. */
int ldapu_connect_simple(const char *uri, const char *dn, const char *password, LDAP **ld_r, struct buf *error_r);
/* A simple bind on an initialised connection ld (uri only names it in messages). On success *ld_r = ld; on failure
 * ld is unbound and the result is IX_EAUTH ("wrong name or password") or IX_EUNAVAIL, with error_r. */
int ldapu_bind_simple(LDAP *ld, const char *uri, const char *dn, const char *password, LDAP **ld_r,
		      struct buf *error_r);

/* Appends value to out with the filter specials * ( ) \ NUL escaped as \XX (RFC 4515). */
void ldapu_escape_filter(struct buf *out, const char *value, size_t len);
/* Appends value to out escaped for use as an RDN value (RFC 4514: , + " \ < > ; = leading # or space,
 * trailing space, NUL). */
void ldapu_escape_dn(struct buf *out, const char *value, size_t len);

/* Translates an LDAP result code to an ix_err code. */
int ldapu_err(int ldap_rc);
/* Appends "WHAT: REASON" to error_r (libldap's sentence for rc, and slapd's diagnostic message when it sent one)
 * and returns ldapu_err(rc). */
int ldapu_fail(LDAP *ld, int rc, const char *what, struct buf *error_r);

/* Returns the first value of attr in entry as a new string, or NULL. */
char *ldapu_get_first(LDAP *ld, LDAPMessage *entry, const char *attr);
/* Every value of attr in entry (NULL: none) as a NULL-terminated array of new strings, empty when absent; the
 * count in *count_r when not NULL. Free with ldapu_values_free. */
char **ldapu_get_values(LDAP *ld, LDAPMessage *entry, const char *attr, size_t *count_r);
/* Frees such an array and sets *values to NULL; NULL is ignored. */
void ldapu_values_free(char ***values);

/* Building a change or an add: a NULL-terminated LDAPMod array grown one modification at a time. */
/* Appends a modification (op on attr, which must outlive mods; values, a NULL-terminated array of new strings or
 * NULL, now owned by mods) to *mods, whose count is *n. */
void ldapu_mod_add(LDAPMod ***mods, size_t *n, int op, const char *attr, char **values);
/* A NULL-terminated value array holding a copy of v. */
char **ldapu_values1(const char *v);
/* Appends a copy of v to the NULL-terminated array *vals of *n values (*vals NULL: a new array). */
void ldapu_values_push(char ***vals, size_t *n, const char *v);
/* Frees mods made with ldapu_mod_add, their values included; NULL is ignored. */
void ldapu_mods_free(LDAPMod **mods);

/* The one time limit of a synchronous search or change (seconds), for our slapd and for a peer's alike; past it
 * the call fails with IX_EUNAVAIL. */
#define LDAPU_TIMEOUT_SECS 10

/* Searches base (attrs NULL-terminated; NULL: all user attributes). Returns IX_OK with the result chain in *res_r
 * (free with ldap_msgfree; it may hold no entries); IX_ENOTFOUND when base does not exist, with *res_r NULL and
 * error_r untouched (the caller knows what it looked for and says so); or another code (ldapu_err) with
 * "search of BASE failed: REASON" in error_r and *res_r NULL. */
int ldapu_search(LDAP *ld, const char *base, int scope, const char *filter, const char *const *attrs,
		 LDAPMessage **res_r, struct buf *error_r);
/* Calls each(ctx, ld, entry) for every entry a subtree search of base finds, searching in pages of page_size entries
 * (RFC 2696: a server's size limit applies per page, so the whole result comes back), with extra (NULL: none), a
 * control sent on every page beside the paging one. Returns IX_OK only when the search went through to its end, else
 * an ldapu_err code with "search of BASE failed: REASON" in error_r. */
typedef void ldapu_entry_fn(void *ctx, LDAP *ld, LDAPMessage *entry);
int ldapu_search_paged(LDAP *ld, const char *base, const char *filter, const char *const *attrs, int page_size,
		       LDAPControl *extra, ldapu_entry_fn *each, void *ctx, struct buf *error_r);
/* Whether the entry dn exists and matches filter (a base-scope search for no attributes, with the same time
 * limit); false on any failure. */
bool ldapu_entry_matches(LDAP *ld, const char *dn, const char *filter);
/* The values of attr of the entry dn (*values_r: NULL-terminated, free with ldapu_values_free; NULL when it has
 * none). Returns IX_OK, or as ldapu_search. */
int ldapu_read_values(LDAP *ld, const char *dn, const char *attr, char ***values_r, struct buf *error_r);
/* Adds dn as an organizationalUnit named ou when it does not exist (a folder under ou=Configuration that older
 * directories lack). Returns IX_OK, or the directory's error with "WHAT: REASON" in error_r (ldapu_fail). */
int ldapu_ensure_ou(LDAP *ld, const char *dn, const char *ou, const char *what, struct buf *error_r);
/* ldap_first_entry that takes a NULL chain (what ldapu_search leaves on failure) and gives NULL. */
LDAPMessage *ldapu_first_entry(LDAP *ld, LDAPMessage *res);
/* Changes dn by mods (which stay the caller's). Returns IX_OK; IX_ENOTFOUND when dn does not exist, with error_r
 * untouched; or another code with "cannot change DN: REASON" in error_r. */
int ldapu_modify(LDAP *ld, const char *dn, LDAPMod **mods, struct buf *error_r);
/* What a change of single values found in the way (ldapu_modify_values). */
enum ldapu_value_fault {
	LDAPU_VALUE_NONE,    /* nothing: the change was made, or failed for another reason */
	LDAPU_VALUE_EXISTS,  /* a value to add is there already */
	LDAPU_VALUE_MISSING, /* a value (or the attribute) to delete is not there */
};
/* Changes dn by mods (the caller's) with the same time limit, for callers that add or delete single values and say
 * themselves what an existing or missing value means: returns IX_EEXIST with *fault_r LDAPU_VALUE_EXISTS, or
 * IX_ENOTFOUND with LDAPU_VALUE_MISSING, error_r untouched; any other failure (a missing dn, the unique overlay's
 * refusal: IX_EEXIST) has *fault_r LDAPU_VALUE_NONE and "WHAT: REASON" in error_r (ldapu_fail). IX_OK when done. */
int ldapu_modify_values(LDAP *ld, const char *dn, LDAPMod **mods, const char *what, enum ldapu_value_fault *fault_r,
			struct buf *error_r);

#endif
