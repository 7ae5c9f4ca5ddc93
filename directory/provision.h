/* provision.h - writing recipients to the directory: users, contacts, distribution lists, public folders,
 * and the attendant's address generation from recipient policies. Used by the `interchange` command.
 * Every function validates its input first and answers a mistake with a sentence in error_r. */
#ifndef IX_PROVISION_H
#define IX_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include "common/buf.h"
#include "common/config.h"
#include "common/settings.h"
#include "directory/ldap_util.h"

/* Limits on what a person may type. */
#define PROV_MAX_LOGIN 64
#define PROV_MAX_NAME 256
#define PROV_MAX_ADDRESS 254
#define PROV_MAX_PASSWORD 1024
/* Shortest part of a name or address that the password policy looks for in a password (password.check_names). */
#define PROV_NAME_CHECK_MIN 3
#define PROV_MAX_FOLDER_DEPTH 32
/* Collision variants tried before address generation gives up on a recipient (john.smith2 ... ). */
#define PROV_MAX_VARIANTS 1000

struct prov;

/* Connects to the running directory over ldapi as the administrator. IX_EUNAVAIL when it is not running. */
int prov_open(const struct config *cfg, struct prov **prov_r, struct buf *error_r);
void prov_close(struct prov **prov);
/* The settings of this server (defaults where its entry has none or cannot be read). */
void prov_own_settings(struct prov *p, struct settings *st_r);
/* The login the administrator (cfg->admin_dn) signs in with where a login is asked (the REST API). */
#define PROV_ADMIN_LOGIN "admin"
/* The DN login binds as: PROV_ADMIN_LOGIN the administrator's, else the user's uid=LOGIN,ou=Recipients,<suffix>
 * (escaped). A new string. */
char *prov_login_dn(const struct config *cfg, const char *login);
/* Connects to the running directory over ldapi as login (prov_login_dn) with password, a simple bind: what p then
 * does is decided by the directory's access rules for that identity (a role's, a user's own). Returns IX_OK, IX_EAUTH
 * ("wrong login or password": an unknown login, a wrong password, a locked account) or IX_EUNAVAIL, with a sentence. */
int prov_open_as(const struct config *cfg, const char *login, const char *password, struct prov **prov_r,
		 struct buf *error_r);

struct prov_user {
	const char *login, *given, *surname, *password;
	/* instead of password (a user moving in from another directory): a userPassword value in a scheme slapd checks
	 * (prov_password_hash_valid), stored as it is; such a user has no SCRAM verifiers until its password is set */
	const char *password_hash;
	const char *const *aliases;
	size_t alias_count;
	int hidden;
	int posix;          /* a POSIX account too (prov_posix_account_mods) */
	const char *server; /* home server name; NULL for this server */
};

int prov_user_add(struct prov *p, const struct prov_user *u, struct buf *error_r);
/* Whether hash is a password hash in a scheme our slapd verifies: {SSHA}, {SHA}, {SMD5}, {MD5} or {CRYPT} (its own
 * schemes; no module adds others); false with the reason in error_r. */
bool prov_password_hash_valid(const char *hash, struct buf *error_r);
int prov_user_del(struct prov *p, const char *login, struct buf *error_r);
int prov_user_passwd(struct prov *p, const char *login, const char *password, struct buf *error_r);
/* A user changing their own password (p opened as them, prov_open_as): as prov_user_passwd (the policy checked
 * first), with the old password handed to the directory, which its password policy asks of a user's own change; the
 * SCRAM verifiers are then made through admin (prov_open), since no user reads the userPassword they are tied to. */
int prov_user_passwd_own(struct prov *p, struct prov *admin, const char *login, const char *old_password,
			 const char *password, struct buf *error_r);
/* Human-readable description of a user (DN, addresses, lists, home server...) appended to out. */
int prov_user_show(struct prov *p, const char *login, struct buf *out, struct buf *error_r);
int prov_user_list(struct prov *p, struct buf *out, struct buf *error_r);

/* The details address books show about a person (docs/directory.md "People in the address book"), for `user set`:
 * each field NULL leaves the attribute as it is, "" removes it; title, department, company and office (in
 * physicalDeliveryOfficeName) as names (prov_name_valid), phone and mobile (telephoneNumber, mobile) as telephone
 * numbers (digits, spaces, + ( ) - . /, at most PROV_MAX_PHONE), manager a user's login (stored as its DN; the
 * manager's directReports are computed from it when read). Returns IX_OK, or IX_EINVAL or IX_ENOTFOUND (the user,
 * or the manager) with a sentence. */
#define PROV_MAX_PHONE 64
struct prov_person {
	const char *title, *department, *company, *office, *phone, *mobile, *manager;
};
int prov_user_set(struct prov *p, const char *login, const struct prov_person *d, struct buf *error_r);
/* Sets a user's photo (thumbnailPhoto and jpegPhoto) to the JPEG in the file at path, or removes it (path NULL). A
 * JPEG larger than PROV_MAX_PHOTO bytes is made smaller first (prov_photo_fit, which says so in out); a file that is
 * no JPEG, larger than PROV_MAX_PHOTO_FILE, or that cannot be made small enough is refused with a sentence
 * (IX_EINVAL). */
#define PROV_MAX_PHOTO (100 * 1024)
#define PROV_MAX_PHOTO_FILE (20 << 20)
int prov_user_photo(struct prov *p, const char *login, const char *path, struct buf *out, struct buf *error_r);
/* The same with the image in memory (data, len; NULL removes the photo); what names it in sentences (a file's path,
 * "the photo"). */
int prov_user_photo_data(struct prov *p, const char *login, const char *what, const void *data, size_t len,
			 struct buf *out, struct buf *error_r);
/* A JPEG of len bytes made at most PROV_MAX_PHOTO: decoded at the largest of 1, 1/2, 1/4, 1/8 of its size that is
 * at most PROV_PHOTO_SIDE pixels a side (what Outlook shows at most), encoded at quality 85, 70 or 50, the next
 * smaller scale when none fits. IX_OK with the new JPEG in *out_r (free()) and *len_r, and a line saying what was done
 * appended to note_r; IX_EINVAL with a sentence when the image cannot be read or made small enough. */
#define PROV_PHOTO_SIDE 648
int prov_photo_fit(const unsigned char *data, size_t len, unsigned char **out_r, size_t *len_r, struct buf *note_r,
		   struct buf *error_r);
/* For prov_user_show: the attributes prov_person_show reads, and the lines it appends to out for user entry e
 * (read with them): each detail set, the manager and direct reports by login, the photo's size. */
#define PROV_PERSON_ATTRS                                                                                       \
	"title", "department", "company", "physicalDeliveryOfficeName", "telephoneNumber", "mobile", "manager", \
		"directReports", "thumbnailPhoto", "jpegPhoto"
void prov_person_show(struct prov *p, LDAPMessage *e, struct buf *out);
/* POSIX accounts and groups (docs/directory.md "POSIX accounts and groups"). IDs come from the range entry
 * PROV_POSIX_RANGE_RDN,<suffix> (ixPosixIdRange; made with PROV_POSIX_FIRST_ID..PROV_POSIX_LAST_ID by the first
 * allocation): prov_posix_id_new takes its next ID by replacing ixPosixNextId with an exact delete and add in one
 * modify, which fails when another writer took that ID first, and tries again (PROV_POSIX_ATTEMPTS times); an ID
 * some entry already has as uidNumber or gidNumber is skipped. Users and lists share the range, so a user's gidNumber
 * (its own uidNumber) is no list's. Returns IX_OK with *id_r, IX_EINVAL (the range is used up) or IX_EUNAVAIL, with a
 * sentence. */
#define PROV_POSIX_RANGE_RDN "cn=POSIX IDs,ou=Configuration"
#define PROV_POSIX_FIRST_ID 10000
#define PROV_POSIX_LAST_ID 59999
#define PROV_POSIX_ATTEMPTS 100
#define PROV_POSIX_HOME "/home"
#define PROV_POSIX_SHELL "/bin/bash"
int prov_posix_id_new(struct prov *p, unsigned long long *id_r, struct buf *error_r);
/* Appends to mods (count *n) what makes a user entry (with objectClass posixAccount, which the caller adds) a POSIX
 * account: uidNumber and gidNumber id, homeDirectory PROV_POSIX_HOME/login, loginShell PROV_POSIX_SHELL. */
void prov_posix_account_mods(const char *login, unsigned long long id, LDAPMod ***mods, size_t *n);
/* Appends what makes a list (with objectClass posixGroup) a POSIX group: gidNumber id. */
void prov_posix_group_mods(unsigned long long id, LDAPMod ***mods, size_t *n);
/* Appends a line with the POSIX attributes of entry e (read with PROV_POSIX_ATTRS) to out, when it has any. */
#define PROV_POSIX_ATTRS "uidNumber", "gidNumber", "homeDirectory", "loginShell"
void prov_posix_show(LDAP *ld, LDAPMessage *e, struct buf *out);
/* The configuration p was opened with. */
const struct config *prov_config(struct prov *p);
/* The value of the first RDN of dn (a new string; dn itself when it does not parse): a login, a list's name. */
char *prov_rdn_value(const char *dn);
/* App passwords of a user (docs/directory.md, "SCRAM and app passwords"): for IMAP, POP3 and SMTP, never LDAP
 * binds. add makes one called name (1-64 of A-Z a-z 0-9 . _ -) and hands its new random password to *password_r
 * (free it; shown once, stored only as SCRAM verifiers); IX_EEXIST when the name is taken. list appends one line
 * per app password (name, when made); del removes one (IX_ENOTFOUND when there is none of that name). Each
 * returns IX_OK or an ix_err code with error_r (IX_ENOTFOUND: no such user). */
int prov_app_password_add(struct prov *p, const char *login, const char *name, char **password_r, struct buf *error_r);
int prov_app_password_list(struct prov *p, const char *login, struct buf *out, struct buf *error_r);
int prov_app_password_del(struct prov *p, const char *login, const char *name, struct buf *error_r);
int prov_contact_add(struct prov *p, const char *name, const char *email, struct buf *error_r);
/* With posix, the list is a POSIX group too (RFC 2307bis: posixGroup with a gidNumber from the range, members by
 * DN in member). */
int prov_dl_add(struct prov *p, const char *name, const char *const *members, size_t n, bool posix,
		struct buf *error_r);
/* Adds (add=1) or removes a member (a login, list or contact name, or any address) of list name. */
int prov_dl_member(struct prov *p, const char *name, const char *recipient, int add, struct buf *error_r);
int prov_dl_show(struct prov *p, const char *name, struct buf *out, struct buf *error_r);
/* Connectors: routes for other domains through smart hosts (prov_connector.c). A name of letters, digits, '.', '-',
 * '_' up to PROV_CONNECTOR_NAME_MAX; address spaces "example.org", "*.example.org" or "*"; a smart host HOST[:PORT];
 * a cost up to PROV_CONNECTOR_COST_MAX (the lowest wins among equally specific matches). */
#define PROV_CONNECTORS_OU "ou=Connectors,ou=Configuration"
#define PROV_CONNECTOR_NAME_MAX 64
#define PROV_CONNECTOR_SPACES_MAX 100
#define PROV_CONNECTOR_COST_MAX 1000000
struct prov_connector {
	const char *name, *smarthost;
	const char **spaces;
	size_t space_count;
	unsigned long long cost;
};
/* IX_OK when c is a connector prov_connector_add takes, else IX_EINVAL with the sentence saying what is wrong. */
int prov_connector_check(const struct prov_connector *c, struct buf *error_r);
/* Adds c (checked first). IX_EEXIST when one of that name exists; the directory's refusal otherwise. */
int prov_connector_add(struct prov *p, const struct prov_connector *c, struct buf *error_r);
/* Every connector in *list_r (free with prov_connectors_free; its strings are its own), in the directory's order. */
int prov_connector_list(struct prov *p, struct prov_connector **list_r, size_t *count_r, struct buf *error_r);
void prov_connectors_free(struct prov_connector **list, size_t count);
/* Deletes connector name: IX_ENOTFOUND when there is none. */
int prov_connector_del(struct prov *p, const char *name, struct buf *error_r);
/* Global Sieve scripts (prov_sieve.c; include :global, RFC 6609): entries under DIR_SIEVE_GLOBAL_OU named as
 * dir_sieve_global_name_valid allows (IX_EINVAL with a sentence otherwise). The caller checks the text (the Sieve
 * parser, its size). list appends the names, one a line, sorted, and sets *count_r; get appends the text of one;
 * put stores text as name, replacing one of that name, refused with IX_ELIMIT and a sentence when max_count scripts
 * exist already and name is new; del deletes one. get and del: IX_ENOTFOUND with a sentence when there is none. */
int prov_sieve_global_list(struct prov *p, struct buf *names_r, size_t *count_r, struct buf *error_r);
int prov_sieve_global_get(struct prov *p, const char *name, struct buf *text_r, struct buf *error_r);
int prov_sieve_global_put(struct prov *p, const char *name, const char *text, size_t max_count, struct buf *error_r);
int prov_sieve_global_del(struct prov *p, const char *name, struct buf *error_r);
/* Creates a public folder and any missing parents; PATH is /-separated. */
int prov_folder_add(struct prov *p, const char *path, struct buf *error_r);
/* Appends a line "PATH\tADDRESS\n" for every public folder (PATH without a leading slash; ADDRESS empty when the
 * folder has no address), in the directory's order. */
int prov_folder_list(struct prov *p, struct buf *out, struct buf *error_r);

/* Delivery restrictions of a recipient (user, list, contact, folder), enforced by smtpd at RCPT time. Lists of
 * senders are recipients by name or address (stored as DNs); NULL/0 fields leave a restriction as it is,
 * clear removes every restriction first. */
struct prov_restrict {
	const char *const *accept_from;
	size_t accept_count;
	const char *const *reject_from;
	size_t reject_count;
	int authenticated_only; /* -1 unchanged, 0 off, 1 on */
	int members_only;       /* lists only: -1 unchanged, 0 off, 1 on */
	long long max_size;     /* -1 unchanged, 0 none */
	int clear;
};
int prov_restrict(struct prov *p, const char *recipient, const struct prov_restrict *r, struct buf *error_r);
/* Forwarding: mail for recipient goes to target (a recipient; NULL removes forwarding), with keep_copy also to
 * the mailbox. */
int prov_forward(struct prov *p, const char *recipient, const char *target, int keep_copy, struct buf *error_r);
/* The addresses of recipient (any kind), in one change: makes primary (not NULL) the primary address (mail and
 * "SMTP:"; the old primary stays as a secondary), adds each of add[0..nadd) as a secondary ("smtp:"; a valid address
 * no other recipient has) and removes each of del[0..ndel) (a secondary of this recipient: the primary is replaced,
 * never removed). Returns IX_OK, or IX_EINVAL, IX_EEXIST (an address another recipient has), IX_ENOTFOUND or the
 * directory's error, with a sentence. */
int prov_addresses(struct prov *p, const char *recipient, const char *primary, const char *const *add, size_t nadd,
		   const char *const *del, size_t ndel, struct buf *error_r);
/* Hides recipient from the address book (ixHideFromAddressBook TRUE) or shows it again. */
int prov_hidden(struct prov *p, const char *recipient, bool hidden, struct buf *error_r);
/* The rights one recipient may have on another's behalf (user delegate): send as owner (ixSendAs), send on behalf of
 * owner (ixSendOnBehalf), or full access to owner's mailbox (ixFullAccess: every folder with every right over IMAP,
 * and signing in to it with their own credentials; owner and delegate are users then). */
enum prov_delegate_right {
	PROV_SEND_AS,
	PROV_SEND_ON_BEHALF,
	PROV_FULL_ACCESS,
};
/* The attribute that holds a right ("ixSendAs", "ixSendOnBehalf", "ixFullAccess"). */
const char *prov_delegate_attr(enum prov_delegate_right right);
/* Grants (revoke=0) or revokes the right of delegate (a recipient: login, address or name) on owner. Returns IX_OK,
 * or IX_ENOTFOUND, IX_EINVAL (full access with an owner or delegate that is not a user), IX_EEXIST / IX_ENOTFOUND
 * with "already has" / "does not have" sentences, or the directory's error. */
int prov_delegate(struct prov *p, const char *owner, const char *delegate, enum prov_delegate_right right, int revoke,
		  struct buf *error_r);
/* Quotas of a user: -1 leaves a value, 0 means none (the server default applies when absent). */
int prov_quota(struct prov *p, const char *login, long long bytes, long long messages, long long warn_bytes,
	       struct buf *error_r);

/* Application accounts (docs/directory.md "Application accounts"): cn=NAME,ou=Applications,<suffix>, an identity
 * another system (Nextcloud, GitLab...) binds with to search the address book and nothing else. NAME as a login
 * (prov_login_valid). add and passwd take password, or with NULL generate one (PROV_APP_PASSWORD_LEN letters and
 * digits) and hand it back in *password_r (a new string, else NULL); add hands back the DN to bind with in *dn_r (a
 * new string). list appends a table of NAME and bind DN to out. Return IX_OK, or IX_EINVAL, IX_EEXIST, IX_ENOTFOUND
 * or the directory's error with a sentence in error_r. */
#define PROV_APP_PASSWORD_LEN 24
int prov_app_add(struct prov *p, const char *name, const char *password, char **dn_r, char **password_r,
		 struct buf *error_r);
int prov_app_del(struct prov *p, const char *name, struct buf *error_r);
int prov_app_passwd(struct prov *p, const char *name, const char *password, char **password_r, struct buf *error_r);
int prov_app_list(struct prov *p, struct buf *out, struct buf *error_r);

/* Servers of the organisation: a table of every server (name, host, roles, ports); one server's entry with
 * its effective settings (server NULL: this server); a setting changed in the directory (validated against
 * common/settings.h; the services pick it up from their replica without a restart). */
int prov_server_list(struct prov *p, struct buf *out, struct buf *error_r);

/* The accepted domains: one line each with the domain, its type and its DKIM selectors. */
int prov_domain_list(struct prov *p, struct buf *out, struct buf *error_r);
/* Calls fn for every accepted domain: its name, type (authoritative when unset) and DKIM selectors ("ALGORITHM:
 * SELECTOR", ending with NULL), valid during the call. */
typedef void prov_domain_fn(void *ctx, const char *domain, const char *type, const char *const *selectors);
int prov_domain_each(struct prov *p, prov_domain_fn *fn, void *ctx, struct buf *error_r);
/* The DKIM selectors of accepted domain (ixDkimSelector, "ALGORITHM:SELECTOR"), one a line, replacing selectors_r's
 * text. Returns IX_OK, or IX_ENOTFOUND with a sentence when the domain is not one of the organisation's. */
int prov_domain_dkim_get(struct prov *p, const char *domain, struct buf *selectors_r, struct buf *error_r);
/* Replaces them with selectors[0..n) (the entry gets the class ixDkimSigning when it lacks it). */
int prov_domain_dkim_set(struct prov *p, const char *domain, const char *const *selectors, size_t n,
			 struct buf *error_r);
int prov_server_show(struct prov *p, const char *server, struct buf *out, struct buf *error_r);
int prov_server_set(struct prov *p, const char *server, const char *name, const char *value, struct buf *error_r);
/* Adds (allow) or removes an exception to the refusal of forged internal senders on port 25: client (an IP address
 * or a CIDR range) may send unauthenticated mail with a sender in one of the organisation's domains to that server
 * (NULL: this server). Kept in the server's entry (ixAllowSenderFrom, with the ixSenderExceptions class); ix-smtpd
 * reads it from its replica. Adding one already there, or removing one that is not, changes nothing. Returns IX_OK,
 * IX_EINVAL (not an address or range) or the directory's error, with a sentence. */
int prov_server_sender_from(struct prov *p, const char *server, const char *client, bool allow, struct buf *error_r);

/* The mailbox of a user: its GUID (32 hex, a new string) and its quotas (the user's own, else the server's
 * store.quota_* settings; 0 means none). */
int prov_user_mailbox(struct prov *p, const char *login, char **guid_r, unsigned long long *quota_bytes_r,
		      unsigned long long *quota_messages_r, struct buf *error_r);

/* A mailbox move (`interchange user move`): the user's mailbox GUID and home server entry, and the target server's
 * entry, host name and IMAP port. Free with prov_move_free. */
struct prov_move {
	char *dn, *guid, *home_dn;
	char *target_dn, *target_host, *target_ldap_uri; /* target_ldap_uri: NULL when unknown */
	unsigned target_imap_port;
};
int prov_move_prepare(struct prov *p, const char *login, const char *server, struct prov_move *m_r,
		      struct buf *error_r);
void prov_move_free(struct prov_move *m);
/* Makes server_dn the home server of the user (ixHomeServer). */
int prov_set_home(struct prov *p, const char *user_dn, const char *server_dn, struct buf *error_r);
/* A page of recipients (prov_recipient_search). Strings are new; kind is static ("user", "contact", "list", "folder"). */
struct prov_recipient {
	char *dn, *name, *login, *mail; /* login: users only; mail: the primary address, NULL while pending */
	const char *kind;
	char **addresses; /* ixProxyAddresses ("SMTP:" primary, "smtp:" others), NULL-terminated */
	size_t address_count;
	bool hidden; /* hidden from the address book */
};
struct prov_recipients {
	struct prov_recipient *items;
	size_t count; /* on this page */
	size_t total; /* matching, on every page */
};
/* The recipients the connection's identity may read whose name, login or primary address contains query, or one of
 * whose addresses is query (NULL or "": all), of one kind (NULL: all; else "user", "contact", "list" or "folder"), sorted by name: limit of them from
 * offset. A directory identity other than the administrator sees at most 500 (its search limit). Returns IX_OK with
 * *page_r (free with prov_recipients_free), IX_EINVAL (an unknown kind) or the directory's error, with a sentence. */
int prov_recipient_search(struct prov *p, const char *query, const char *kind, size_t offset, size_t limit,
			  struct prov_recipients *page_r, struct buf *error_r);
void prov_recipients_free(struct prov_recipients *page);
/* One recipient found by login, name or address (prov_find_recipient), read as the connection's identity. IX_OK with
 * *r_r (free with prov_recipient_free), or IX_ENOTFOUND / the directory's error, with a sentence. */
int prov_recipient_get(struct prov *p, const char *name, struct prov_recipient *r_r, struct buf *error_r);
void prov_recipient_free(struct prov_recipient *r);
/* Deletes the recipient found by login, name or address (any kind; a public folder without subfolders). */
int prov_recipient_del(struct prov *p, const char *name, struct buf *error_r);
/* Administrative roles (docs/api.md "Roles"; their access rules: slapd_role_acl), strongest first. */
enum prov_role {
	PROV_ROLE_ORG,       /* Organisation Admins: everything */
	PROV_ROLE_RECIPIENT, /* Recipient Admins: recipients only */
	PROV_ROLE_VIEW,      /* View-Only Admins: read only */
	PROV_ROLE_COUNT,
	PROV_ROLE_NONE = PROV_ROLE_COUNT, /* none: a user */
};
/* The role's name ("Organisation Admins"); "" for PROV_ROLE_NONE. */
const char *prov_role_name(enum prov_role role);
/* Adds (add true) or removes recipient (a login, a name or an address, as prov_find_recipient) as a member of role
 * (its name, without case). Returns IX_OK, or IX_EINVAL (not a role), IX_ENOTFOUND (no such recipient; not a
 * member), IX_EEXIST (a member already) or the directory's error, with a sentence. */
int prov_role_member(struct prov *p, const char *role, const char *recipient, bool add, struct buf *error_r);
/* Appends a table of ROLE and MEMBER (login or name; the administrator, in every role, left out) to out. */
int prov_role_list(struct prov *p, struct buf *out, struct buf *error_r);
/* The strongest role the entry dn holds, as the connection's identity reads the roles (the administrator's DN:
 * PROV_ROLE_ORG); PROV_ROLE_NONE when none or on any failure. */
enum prov_role prov_role_of(struct prov *p, const char *dn);
/* Finds a recipient by login, list/contact/folder name or address; *dn_r is a new string. */
int prov_find_recipient(struct prov *p, const char *name, char **dn_r, struct buf *error_r);

/* For writers of recipients beside this file (directory/sync_*.c): the connection (the administrator's, owned by p),
 * the DN a user with login or a list named name has (new strings; the login or name is escaped), a new mailbox
 * GUID (32 lower-case hex digits and a NUL), and the DN of the entry that owns address in ixProxyAddresses or mail
 * (a new string), NULL when none does. */
LDAP *prov_ldap(struct prov *p);
char *prov_user_dn(struct prov *p, const char *login);
char *prov_list_dn(struct prov *p, const char *name);
/* "cn=NAME,FOLDER,SUFFIX" (NAME escaped) for an entry of a folder under the suffix, such as PROV_CONNECTORS_OU. */
char *prov_config_dn(struct prov *p, const char *name, const char *folder);
void prov_mailbox_guid_new(char out[33]);
char *prov_address_owner(struct prov *p, const char *address);

/* Address generation (the attendant's job): gives every recipient without a primary address one from the
 * recipient policy, resolving collisions with numbered variants and keeping user-given aliases.
 * *count_r is the number of recipients given an address. */
int prov_generate_addresses(struct prov *p, unsigned *count_r, struct buf *error_r);
/* The same for the recipients named by dns (n DNs, each looked at alone: what a change touched, without reading every
 * recipient); a DN that is gone or no recipient is passed over. dns NULL: every recipient, as above. */
int prov_generate_addresses_for(struct prov *p, const char *const *dns, size_t n, unsigned *count_r,
				struct buf *error_r);

/* Validation helpers, exposed for tests. Each returns 1 when valid. */
int prov_login_valid(const char *login);
int prov_address_valid(const char *address);
int prov_name_valid(const char *name);

#endif
