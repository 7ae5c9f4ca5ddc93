/* slapd.c - generates slapd's cn=config and base entries, runs slapadd, starts, waits for and stops slapd.
 * The configuration is documented in docs/directory.md; the traps it avoids are in shared notes/slapd.md. */
#include "directory/slapd.h"
#include "common/base64.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "directory/signin_config.h"
#include "common/log.h"
#include "common/privs.h"
#include "common/settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const char schema_interchange_ldif[];

char *slapd_hash_ssha(const char *password)
{
	unsigned char salt[8], digest[EVP_MAX_MD_SIZE + sizeof(salt)];
	unsigned int dlen = 0;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		fatal("no random numbers for a password salt");
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, password, strlen(password)) != 1 || EVP_DigestUpdate(ctx, salt, sizeof(salt)) != 1 ||
	    EVP_DigestFinal_ex(ctx, digest, &dlen) != 1)
		fatal("SHA-1 is not available from OpenSSL");
	EVP_MD_CTX_free(ctx);
	memcpy(digest + dlen, salt, sizeof(salt));
	struct buf hash = BUF_INIT;
	buf_append_str(&hash, "{SSHA}");
	base64_encode(digest, dlen + sizeof(salt), &hash);
	return buf_steal(&hash);
}

int slapd_run_tool(char *const argv[], struct buf *out)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		setenv("LDAPNOINIT", "1", 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	buf_read_fd(out, pipefd[0], SLAPD_TOOL_OUTPUT_MAX);
	close(pipefd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void slapd_password_acl(struct buf *b)
{
	/* A password (a bind, which checks `auth` on userPassword) is accepted in clear only where it cannot cross a
	 * network: the local socket, the loopback listener, or a wildcard listener from 127.0.0.1/::1. Anywhere else
	 * only inside TLS; a cleartext bind there fails like a wrong password (49). A user writes its own password
	 * and may have the old one checked (=wx: the Password Modify operation checks an old password it is sent
	 * with the auth right, and refuses it without). The SCRAM verifiers and app passwords (docs/directory.md,
	 * "SCRAM and app passwords") are secrets of the same kind: nobody reads them but our services (EXTERNAL). */
	buf_append_str(b,
		       "to attrs=" SLAPD_SECRET_ATTRS " by self =wx by anonymous sockurl.regex=\"^ldapi://\" auth "
		       "by anonymous sockurl.regex=\"^ldap://127\\.0\\.0\\.1:\" auth "
		       "by anonymous sockurl.regex=\"^ldap://(0\\.0\\.0\\.0|\\[::\\])?:\" peername.ip=127.0.0.1 auth "
		       "by anonymous sockurl.regex=\"^ldap://(0\\.0\\.0\\.0|\\[::\\])?:\" peername.ipv6=::1 auth "
		       "by anonymous tls_ssf=" SLAPD_TLS_MIN_SSF " auth by * none");
}

int slapd_recipient_acl(const struct config *cfg, int n, struct buf *b)
{
	/* first match wins (docs/slapd-facts.md, "ACL order"); anonymous =x: the search an authz-regexp runs for a
	 * bind is an authentication check made as the still anonymous client, and needs x on the entry and the
	 * attributes of its filter (docs/slapd-facts.md, "SASL PLAIN, hashes and the authcid") */
	if (n == 1)
		buf_printf(
			b,
			"to dn.subtree=\"%s\" filter=(ixHideFromAddressBook=TRUE) by self read by anonymous =x by * none",
			cfg->suffix);
	else if (n == 3)
		buf_printf(b, "to * by self read by users read by anonymous %s by * none",
			   cfg->anonymous_read ? "read" : "=x");
	return n == 1 || n == 3;
}

int slapd_role_acl(const struct config *cfg, int n, struct buf *b)
{
	const char *s = cfg->suffix;
	char *org = xasprintf("group.exact=\"cn=" SLAPD_ROLE_ORG "," SLAPD_ROLES_RDN ",%s\"", s);
	char *rcp = xasprintf("group.exact=\"cn=" SLAPD_ROLE_RECIPIENT "," SLAPD_ROLES_RDN ",%s\"", s);
	char *view = xasprintf("group.exact=\"cn=" SLAPD_ROLE_VIEW "," SLAPD_ROLES_RDN ",%s\"", s);
	/* passwords and the other secrets (SLAPD_SECRET_ATTRS) first, and for every role here: a rule below names no
	 * attribute and would let a reader read them (a break goes on to the next rule that matches). m: the ppolicy
	 * overlay takes a reset without the old password from whoever may manage the password. The roles that manage
	 * recipients write their secrets but never read them (no r: a hash or a verifier read is a password to crack
	 * offline): a new password goes in one modify with its hash made by the writer and its SCRAM verifiers bound
	 * to that hash (directory/provision.c), nothing read back. Nobody but the administrator reads the secrets;
	 * self as the password rule has it. */
	if (n == 0)
		buf_printf(b,
			   "to dn.subtree=\"ou=Recipients,%s\" attrs=" SLAPD_SECRET_ATTRS
			   " by self =wx by %s =mwx by %s =mwx "
			   "by %s none by * break",
			   s, org, rcp, view);
	else if (n == 1 || n == 2)
		buf_printf(b, "to dn.subtree=\"ou=%s,%s\" by %s write by %s write by %s read by * break",
			   n == 1 ? "Recipients" : "Public Folders", s, org, rcp, view);
	else if (n == 3)
		buf_printf(b,
			   "to dn.subtree=\"%s\" attrs=" SLAPD_SECRET_ATTRS
			   " by self =wx by %s =mwx by %s none by %s none "
			   "by * break",
			   s, org, rcp, view);
	else if (n == 4)
		buf_printf(b, "to dn.subtree=\"%s\" by %s write by %s read by %s read by * break", s, org, rcp, view);
	free(org);
	free(rcp);
	free(view);
	return n >= 0 && n < SLAPD_ROLE_ACLS;
}

void slapd_roles_ldif(const struct config *cfg, struct buf *b)
{
	static const char *const roles[] = { SLAPD_ROLE_ORG, SLAPD_ROLE_RECIPIENT, SLAPD_ROLE_VIEW };
	buf_printf(b, "dn: " SLAPD_ROLES_RDN ",%s\nobjectClass: organizationalUnit\nou: Roles\n\n", cfg->suffix);
	for (size_t i = 0; i < IX_ARRAY_LEN(roles); i++)
		buf_printf(b, "dn: cn=%s," SLAPD_ROLES_RDN ",%s\nobjectClass: groupOfNames\ncn: %s\nmember: %s\n\n",
			   roles[i], cfg->suffix, roles[i], cfg->admin_dn);
}

int slapd_application_acl(const struct config *cfg, int n, struct buf *b)
{
	/* after the password rule (none for an application) and the hidden recipients' (none), before "to *", which
	 * would give an application, as one of the "users", everything (docs/slapd-facts.md, "ACL order") */
	const char *s = cfg->suffix;
	/* dynlist finds the lists behind memberOf with a search from the suffix as the reader: without search on
	 * the suffix entry itself an application reads no memberOf */
	if (n == 0)
		buf_printf(b,
			   "to dn.base=\"%s\" attrs=entry by dn.onelevel=\"" SLAPD_APPLICATIONS_RDN ",%s\" search "
			   "by * break",
			   s, s);
	else if (n == 1)
		buf_printf(b,
			   "to dn.subtree=\"ou=Recipients,%s\" attrs=" SLAPD_APPLICATION_ATTRS
			   " by dn.onelevel=\"" SLAPD_APPLICATIONS_RDN ",%s\" read by * break",
			   s, s);
	else if (n == 2)
		buf_printf(b, "to * by dn.onelevel=\"" SLAPD_APPLICATIONS_RDN ",%s\" none by * break", s);
	return n >= 0 && n < SLAPD_APPLICATION_ACLS;
}

int slapd_hidden_value_acl(const struct config *cfg, int n, struct buf *b)
{
	/* val.regex hands each value to the set as ${v1}; the set reads that entry's ixHideFromAddressBook as slapd
	 * itself, whoever asks. A value that is no entry's DN yields an empty set: shown */
	static const char *const attrs[SLAPD_HIDDEN_VALUE_ACLS] = { "member", "manager" };
	if (n < 0 || n >= SLAPD_HIDDEN_VALUE_ACLS)
		return 0;
	buf_printf(b,
		   "to dn.onelevel=\"ou=Recipients,%s\" attrs=%s val.regex=\"^(.+)$\" "
		   "by set.expand=\"[${v1}]/ixHideFromAddressBook & [TRUE]\" none by * break",
		   cfg->suffix, attrs[n]);
	return 1;
}

char *slapd_authz_regexp(const struct config *cfg, int n)
{
	/* only characters a login or an address may hold: nothing that could widen the search filter; the name
	 * slapd gives a client of our PLAIN or SCRAM (directory/ixplain.c, directory/ixscram.c) */
	if (n == 1)
		return xasprintf("{1}\"^uid=([A-Za-z0-9][A-Za-z0-9._-]*)(,cn=[^,]+)?," SLAPD_AUTHZ_MECHS ",cn=auth$\" "
				 "\"ldap:///ou=Recipients,%s??one?(uid=$1)\"",
				 cfg->suffix);
	if (n == 2)
		return xasprintf("{2}\"^uid=([A-Za-z0-9._-]+@[A-Za-z0-9.-]+)(,cn=[^,]+)?," SLAPD_AUTHZ_MECHS
				 ",cn=auth$\" "
				 "\"ldap:///ou=Recipients,%s??one?(|(mail=$1)(ixProxyAddresses=smtp:$1))\"",
				 cfg->suffix);
	return NULL;
}

void slapd_accesslog_ldif(const struct config *cfg, int changetype, struct buf *b)
{
	const char *ct = changetype ? "changetype: add\n" : "";
	char *dir = config_path(cfg, SLAPD_ACCESSLOG_DIR);
	/* the log of every successful write (delta-syncrepl replays these, attribute by attribute); only the
	 * administrator, the replication identity, reads it: it is this database's rootDN too */
	buf_printf(b,
		   "dn: olcDatabase={2}mdb,cn=config\n%sobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
		   "olcDatabase: {2}mdb\nolcSuffix: " SLAPD_ACCESSLOG_SUFFIX "\nolcRootDN: %s\nolcDbDirectory: %s\n"
		   "olcDbMaxSize: %llu\nolcDbIndex: objectClass,entryCSN,reqStart,reqDN,reqResult eq\n"
		   "olcLimits: {0}dn.exact=\"%s\" size=unlimited time=unlimited\n"
		   "olcAccess: {0}to * by dn.exact=\"%s\" read by * none\n\n",
		   ct, cfg->admin_dn, dir, (unsigned long long)SLAPD_ACCESSLOG_MAX_SIZE, cfg->admin_dn, cfg->admin_dn);
	buf_printf(b,
		   "dn: olcOverlay={0}syncprov,olcDatabase={2}mdb,cn=config\n%sobjectClass: olcOverlayConfig\n"
		   "objectClass: olcSyncProvConfig\nolcOverlay: {0}syncprov\nolcSpNoPresent: TRUE\n"
		   "olcSpReloadHint: TRUE\n\n",
		   ct);
	buf_printf(b,
		   "dn: olcOverlay={5}accesslog,olcDatabase={1}mdb,cn=config\n%sobjectClass: olcOverlayConfig\n"
		   "objectClass: olcAccessLogConfig\nolcOverlay: {5}accesslog\nolcAccessLogDB: " SLAPD_ACCESSLOG_SUFFIX
		   "\nolcAccessLogOps: writes\nolcAccessLogSuccess: TRUE\nolcAccessLogPurge: " SLAPD_ACCESSLOG_PURGE
		   "\n\n",
		   ct);
	free(dir);
}

void slapd_ppolicy_ldif(const struct config *cfg, unsigned overlay_index, int changetype, struct buf *b)
{
	/* HashCleartext: a clear userPassword in an add or a modify is stored hashed (olcPasswordHash), and the
	 * access log, which runs after it, records the hash; UseLockout: a client asking for the policy control
	 * (our services do) learns that an account is locked rather than a wrong password */
	buf_printf(b,
		   "dn: olcOverlay={%u}ppolicy,olcDatabase={1}mdb,cn=config\n%sobjectClass: olcOverlayConfig\n"
		   "objectClass: olcPPolicyConfig\nolcOverlay: {%u}ppolicy\nolcPPolicyDefault: " SLAPD_POLICY_RDN
		   ",%s\nolcPPolicyHashCleartext: TRUE\nolcPPolicyUseLockout: TRUE\n\n",
		   overlay_index, changetype ? "changetype: add\n" : "", overlay_index, cfg->suffix);
}

const char *const *slapd_policy_setting_attrs(int id)
{
	static const char *const min_length[] = { "pwdMinLength", NULL };
	static const char *const failures[] = { "pwdMaxFailure", "pwdMaxRecordedFailure", NULL };
	static const char *const seconds[] = { "pwdLockoutDuration", NULL };
	static const char *const window[] = { "pwdFailureCountInterval", NULL };
	switch (id) {
	case SET_PASSWORD_MIN_LENGTH: return min_length;
	case SET_AUTH_LOCKOUT_FAILURES: return failures;
	case SET_AUTH_LOCKOUT_SECONDS: return seconds;
	case SET_AUTH_LOCKOUT_WINDOW_SECONDS: return window;
	default: return NULL;
	}
}

void slapd_policy_entry_ldif(const struct config *cfg, const unsigned long long *settings, struct buf *b)
{
	/* pwdCheckQuality 1: a clear password is checked (pwdMinLength); one that arrives hashed (our CLI hashes
	 * after checking it) is taken as it is. Users change their own password (the ACL lets them) only by giving
	 * the old one (pwdSafeModify: ppolicy verifies it; without ppolicy slapd refuses every old password it is
	 * sent); the administrator resets without it. The lockout expires by itself. */
	buf_printf(b,
		   "dn: " SLAPD_POLICY_RDN ",%s\nobjectClass: applicationProcess\nobjectClass: pwdPolicy\n"
		   "cn: Password Policy\npwdAttribute: userPassword\npwdCheckQuality: 1\npwdLockout: TRUE\n"
		   "pwdAllowUserChange: TRUE\npwdSafeModify: TRUE\n",
		   cfg->suffix);
	static const int ids[] = { SET_PASSWORD_MIN_LENGTH, SET_AUTH_LOCKOUT_FAILURES, SET_AUTH_LOCKOUT_SECONDS,
				   SET_AUTH_LOCKOUT_WINDOW_SECONDS };
	for (size_t i = 0; i < IX_ARRAY_LEN(ids); i++) {
		for (const char *const *a = slapd_policy_setting_attrs(ids[i]); *a != NULL; a++)
			buf_printf(b, "%s: %llu\n", *a, settings[ids[i]]);
	}
	buf_append_char(b, '\n');
}

static void config_ldif(const struct config *cfg, const char *rootpw_hash, unsigned server_id,
			const char *directory_extra, struct buf *b)
{
	char *run = config_path(cfg, "run");
	char *db = config_path(cfg, "directory/data");
	char *schema = config_path(cfg, "directory/schema/interchange.ldif");
	const char *hash = rootpw_hash;
	const char *s = cfg->suffix;
	/* the uid running init (root, or the owner) and the service user's uid are both the administrator over
	 * ldapi: the services run as the latter, the interchange command as either */
	unsigned uid = (unsigned)getuid(), svc_uid = uid;
	uid_t su;
	gid_t sg;
	if (cfg->user != NULL && cfg->user[0] != '\0' && privs_lookup(cfg->user, &su, &sg) == IX_OK)
		svc_uid = (unsigned)su;

	buf_printf(
		b,
		"dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
		"olcPidFile: %s/slapd.pid\nolcArgsFile: %s/slapd.args\n"
		/* our own uid over ldapi is the administrator; an unescaped + would never match
		    * (docs/slapd-facts.md, "The peercred DN and authz-regexp") */
		"olcAuthzRegexp: {0}\"gidNumber=[0-9]+\\+uidNumber=(%u|%u),cn=peercred,cn=external,cn=auth\" \"%s\"\n"
		/* SASL mechanisms that send a password only where a layer below protects it: PLAIN inside TLS and
		    * over ldapi, never in clear (slapd_sasl_plugins keeps the others out) */
		"olcSaslSecProps: " SLAPD_SASL_SECPROPS "\n"
		/* channel binding inside TLS: SCRAM-SHA-256-PLUS (directory/ixscram.c) */
		"olcSaslCBinding: " SLAPD_SASL_CBINDING "\n"
		"olcSizeLimit: 500\nolcToolThreads: 1\n",
		run, run, uid, svc_uid, cfg->admin_dn);
	/* binds by login or address (SASL PLAIN) */
	for (int n = 1; n <= 2; n++) {
		char *rule = slapd_authz_regexp(cfg, n);
		buf_printf(b, "olcAuthzRegexp: %s\n", rule);
		free(rule);
	}
	if (server_id != 0)
		buf_printf(b, "olcServerID: %u\n", server_id);
	/* StartTLS with the server's certificate: binds off the loopback listener need it (slapd_password_acl) */
	char *cert = config_path(cfg, "tls/cert.pem"), *key = config_path(cfg, "tls/key.pem");
	buf_printf(b, "olcTLSCertificateFile: %s\nolcTLSCertificateKeyFile: %s\n\n", cert, key);
	free(cert);
	free(key);
	/* our ordering module first: it must run before the schema that names its syntaxes (directory/ixordering.c) */
	char *ordering = config_path(cfg, SLAPD_ORDERING_MODULE);
	char *gate = config_path(cfg, SLAPD_GATE_MODULE);
	char *browse = config_path(cfg, SLAPD_BROWSE_MODULE);
	buf_printf(b,
		   "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
		   "olcModulePath: %s\nolcModuleLoad: %s name cn uid\nolcModuleLoad: back_mdb\n"
		   "olcModuleLoad: syncprov\nolcModuleLoad: unique\nolcModuleLoad: refint\nolcModuleLoad: dynlist\n"
		   "olcModuleLoad: sssvlv\nolcModuleLoad: " SLAPD_ACCESSLOG_MODULE
		   "\nolcModuleLoad: " SLAPD_PPOLICY_MODULE "\nolcModuleLoad: %s\nolcModuleLoad: %s\n\n",
		   paths_slapd_moduledir, ordering, gate, browse);
	free(ordering);
	free(gate);
	free(browse);
	char *core = config_path(cfg, "directory/schema/core.ldif");
	char *inetorg = config_path(cfg, "directory/schema/inetorgperson.ldif");
	char *nis = config_path(cfg, "directory/schema/nis.ldif");
	buf_printf(b,
		   "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
		   "include: file://%s\n\n"
		   "include: file://%s/cosine.ldif\n\n"
		   "include: file://%s\n\n"
		   "include: file://%s/dyngroup.ldif\n\n"
		   "include: file://%s\n\n"
		   "include: file://%s\n\n",
		   core, paths_slapd_schemadir, inetorg, paths_slapd_schemadir, schema, nis);
	free(core);
	free(inetorg);
	free(nis);
	buf_append_str(b, "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
			  "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\nolcPasswordHash: {SSHA}\n\n");
	buf_printf(b,
		   "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n"
		   /* olcAuthzRegexp has already mapped our uids to the administrator: grant cn=config to that
		    * identity over the local socket only (never over TCP, whatever the password) */
		   "olcAccess: {0}to * by dn.exact=\"%s\" sockurl.regex=\"^ldapi://\" manage by * none\n\n",
		   cfg->admin_dn);
	buf_printf(b,
		   "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
		   "olcDatabase: {1}mdb\nolcSuffix: %s\nolcRootDN: %s\n",
		   s, cfg->admin_dn);
	/* the administrator's password lives in its entry (ACLs apply to its bind); olcRootPW only for a restore of
	 * an older backup, which the attendant then moves into the entry */
	if (hash != NULL)
		buf_printf(b, "olcRootPW: %s\n", hash);
	if (directory_extra != NULL)
		buf_append_str(b, directory_extra);
	buf_printf(b,
		   "olcDbDirectory: %s\n"
		   "olcDbMaxSize: %llu\n"
		   "olcDbIndex: objectClass eq\nolcDbIndex: entryUUID,entryCSN eq\n"
		   "olcDbIndex: " SLAPD_NAME_INDEX "\nolcDbIndex: " SLAPD_ADDRESS_INDEX "\n"
		   "olcDbIndex: mail eq,sub,pres\nolcDbIndex: member,manager,ixMailboxGuid,ixHomeServer eq\n"
		   "olcDbIndex: " SLAPD_POSIX_INDEX "\n"
		   "olcDbIndex: " SLAPD_SYNC_INDEX "\n"
		   "olcLimits: {0}dn.exact=\"%s\" size=unlimited time=unlimited\n"
		   "olcLimits: {1}" SLAPD_USER_LIMITS "\n",
		   db, (unsigned long long)SLAPD_DB_MAX_SIZE, cfg->admin_dn);
	/* first match wins (docs/slapd-facts.md, "ACL order"): the password rule must come before any generic read */
	int rule = 0;
	for (int n = 0; n < SLAPD_ROLE_ACLS; n++) {
		buf_printf(b, "olcAccess: {%d}", rule++);
		slapd_role_acl(cfg, n, b);
		buf_append_str(b, "\n");
	}
	buf_printf(b, "olcAccess: {%d}", rule++);
	slapd_password_acl(b);
	buf_printf(b, "\nolcAccess: {%d}", rule++);
	slapd_recipient_acl(cfg, 1, b);
	buf_printf(b, "\nolcAccess: {%d}to dn.subtree=\"ou=Configuration,%s\" by * none\nolcAccess: {%d}", rule, s,
		   rule + 1);
	rule++;
	for (int n = 0; n < SLAPD_HIDDEN_VALUE_ACLS; n++) {
		slapd_hidden_value_acl(cfg, n, b);
		buf_printf(b, "\nolcAccess: {%d}", ++rule);
	}
	for (int n = 0; n < SLAPD_APPLICATION_ACLS; n++) {
		slapd_application_acl(cfg, n, b);
		buf_printf(b, "\nolcAccess: {%d}", ++rule);
	}
	slapd_recipient_acl(cfg, 3, b);
	buf_append_str(b, "\n\n");
	buf_append_str(b, "dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
			  "objectClass: olcSyncProvConfig\nolcOverlay: {0}syncprov\nolcSpCheckpoint: 100 10\n"
			  "olcSpSessionlog: 10000\n\n");
	buf_printf(b,
		   "dn: olcOverlay={1}unique,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
		   "objectClass: olcUniqueConfig\nolcOverlay: {1}unique\n"
		   "olcUniqueURI: ldap:///%s?ixProxyAddresses?sub\nolcUniqueURI: ldap:///%s?mail?sub\n"
		   "olcUniqueURI: ldap:///%s?uid?sub\nolcUniqueURI: ldap:///%s?ixMailboxGuid?sub\n\n",
		   s, s, s, s);
	buf_append_str(b, "dn: olcOverlay={2}refint,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
			  "objectClass: olcRefintConfig\nolcOverlay: {2}refint\n"
			  "olcRefintAttribute: member\nolcRefintAttribute: owner\nolcRefintAttribute: ixForwardTo\n"
			  "olcRefintAttribute: ixAcceptFrom\nolcRefintAttribute: ixRejectFrom\n"
			  "olcRefintAttribute: ixSendAs\nolcRefintAttribute: ixSendOnBehalf\n"
			  "olcRefintAttribute: ixFullAccess\n\n");
	/* memberOf computed at read time (see docs/directory.md for why dynlist, not the memberof overlay) */
	buf_append_str(b, "dn: olcOverlay={3}dynlist,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
			  "objectClass: olcDynListConfig\nolcOverlay: {3}dynlist\n"
			  "olcDynListAttrSet: ixDistributionList ixMemberURL member+memberOf@ixDistributionList\n"
			  "olcDynListAttrSet: " SLAPD_DIRECT_REPORTS_ATTRSET "\n\n");
	buf_append_str(b, "dn: olcOverlay={4}sssvlv,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
			  "objectClass: olcSssVlvConfig\nolcOverlay: {4}sssvlv\n\n");
	slapd_accesslog_ldif(cfg, 0, b);
	slapd_ppolicy_ldif(cfg, 6, 0, b);
	free(run);
	free(db);
	free(schema);
}

static void base_ldif(const struct config *cfg, const char *admin_hash, const unsigned long long *settings,
		      struct buf *b)
{
	const char *s = cfg->suffix;
	/* dc value of the suffix's first RDN */
	const char *dc = s + 3;
	size_t dclen = strcspn(dc, ",");
	buf_printf(b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %.*s\no: %s\n\n", s, (int)dclen,
		   dc, cfg->org);
	/* the administrator (the rootDN) as an entry: its bind then goes through the userPassword ACL */
	buf_printf(b,
		   "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: %.*s\n"
		   "userPassword: %s\ndescription: the organisation's administrator\n\n",
		   cfg->admin_dn, (int)strcspn(cfg->admin_dn + 3, ","), cfg->admin_dn + 3, admin_hash);
	static const char *const ous[] = { "Recipients", "Public Folders", "Configuration", "Applications" };
	for (size_t i = 0; i < IX_ARRAY_LEN(ous); i++)
		buf_printf(b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ous[i], s, ous[i]);
	static const char *const conf_ous[] = { "Servers", "Recipient Policies", "Accepted Domains", "Connectors" };
	for (size_t i = 0; i < IX_ARRAY_LEN(conf_ous); i++)
		buf_printf(b, "dn: ou=%s,ou=Configuration,%s\nobjectClass: organizationalUnit\nou: %s\n\n", conf_ous[i],
			   s, conf_ous[i]);
	buf_printf(b,
		   "dn: %s\nobjectClass: ixServer\ncn: %s\nixHostName: %s\nixServerRole: directory\n"
		   "ixServerRole: mailbox\nixServerRole: transport\n",
		   cfg->server_dn, cfg->hostname, cfg->hostname);
	for (int p = 0; p < PORT_COUNT; p++) {
		if (slapd_port_attr(p) != NULL)
			buf_printf(b, "%s: %u\n", slapd_port_attr(p), cfg->ports[p]);
	}
	for (int i = 0; i < SET_COUNT; i++) {
		if (settings[i] != setting_def(i)->def)
			buf_printf(b, "ixServerSetting: %s=%llu\n", setting_def(i)->name, settings[i]);
	}
	buf_printf(b,
		   "\ndn: cn=%s,ou=Accepted Domains,ou=Configuration,%s\nobjectClass: ixAcceptedDomain\ncn: %s\n"
		   "ixDomainType: authoritative\n\n",
		   cfg->domain, s, cfg->domain);
	buf_printf(
		b,
		"dn: cn=Default Policy,ou=Recipient Policies,ou=Configuration,%s\nobjectClass: ixRecipientPolicy\n"
		"cn: Default Policy\nixPolicyPriority: 1000\nixAddressTemplate: SMTP:%%g.%%s@%s\n"
		"ixNicknameTemplate: SMTP:%%m@%s\n"
		"description: Default policy: people get given.surname@domain, lists and folders nickname@domain\n\n",
		s, cfg->domain, cfg->domain);
	slapd_policy_entry_ldif(cfg, settings, b);
	slapd_roles_ldif(cfg, b);
}

/* slapadd into database dbnum ("-n0", "-n1"); with server_id the entries' CSNs carry that server ID (-S). */
static int slapadd(const struct config *cfg, const char *ldif_path, const char *dbnum, unsigned server_id,
		   struct buf *error_r)
{
	char *confdir = config_path(cfg, "directory/slapd.d");
	char sid[16];
	snprintf(sid, sizeof(sid), "%u", server_id);
	char *const argv[] = { (char *)SLAPADD_BIN,
			       (char *)"-q",
			       (char *)dbnum,
			       (char *)"-F",
			       confdir,
			       (char *)"-l",
			       (char *)ldif_path,
			       server_id != 0 ? (char *)"-S" : NULL,
			       sid,
			       NULL };
	struct buf out = BUF_INIT;
	int rc = slapd_run_tool(argv, &out);
	int ret = IX_OK;
	if (rc != 0) {
		buf_printf(error_r, "slapadd %s failed (%d): %s", dbnum, rc, buf_cstr(&out));
		ret = IX_EIO;
	}
	buf_free(&out);
	free(confdir);
	return ret;
}

static int write_text(const struct config *cfg, const char *rel, const struct buf *b, struct buf *error_r)
{
	char *path = config_path(cfg, rel);
	int ret = IX_OK;
	if (write_file_atomic(path, b->data, b->len, 0600) < 0) {
		buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
		ret = IX_EIO;
	}
	free(path);
	return ret;
}

/* Attribute types of Debian's schema files that address books sort on, by OID, given ORDERING_RULE in our copies:
 * physicalDeliveryOfficeName, telephoneNumber, mail, displayName. sn, givenName and title inherit the rule from
 * name (SLAPD_ORDERING_MODULE); cn, name and uid are slapd's own. */
#define ORDERING_RULE "caseIgnoreOrderingMatch"
static const char *const ordered_oids[] = { "2.5.4.19", "2.5.4.20", "0.9.2342.19200300.100.1.3",
					    "2.16.840.1.113730.3.1.241" };

/* b gets the LDIF text with continuation lines joined and ORDERING_RULE added to the definitions of ordered_oids
 * that have no ORDERING (the keywords of a definition may come in any order for slapd). */
void slapd_schema_add_ordering(const char *ldif, struct buf *b)
{
	struct buf line = BUF_INIT;
	for (const char *p = ldif; *p != '\0';) {
		size_t len = strcspn(p, "\n");
		buf_append(&line, p, len);
		p += len + (p[len] == '\n');
		if (*p == ' ') { /* a continuation: its first space is not part of the value */
			p++;
			continue;
		}
		const char *l = buf_cstr(&line);
		for (size_t i = 0; i < IX_ARRAY_LEN(ordered_oids); i++) {
			char *prefix = xasprintf("olcAttributeTypes: ( %s ", ordered_oids[i]);
			size_t end = line.len;
			while (end > 0 && l[end - 1] == ' ')
				end--;
			if (strncmp(l, prefix, strlen(prefix)) == 0 && strstr(l, " ORDERING ") == NULL && end > 0 &&
			    l[end - 1] == ')') {
				buf_append(b, l, end - 1);
				buf_append_str(b, "ORDERING " ORDERING_RULE " )");
				buf_reset(&line);
			}
			free(prefix);
			if (line.len == 0)
				break;
		}
		buf_append(b, line.data, line.len);
		buf_append_str(b, "\n");
		buf_reset(&line);
	}
	buf_free(&line);
}

/* slapd's schema NAME.ldif (paths_slapd_schemadir) with ordering rules (slapd_schema_add_ordering) appended to b. */
static int ordered_schema(const char *name, struct buf *b, struct buf *error_r)
{
	char *from = xasprintf("%s/%s.ldif", paths_slapd_schemadir, name), *data = NULL;
	size_t len;
	int ret = IX_OK;
	if (read_file(from, 1 << 20, &data, &len) < 0) {
		buf_printf(error_r, "cannot read %s: %s", from, strerror(errno));
		ret = IX_EIO;
	} else {
		slapd_schema_add_ordering(data, b);
	}
	free(data);
	free(from);
	return ret;
}

int slapd_nis_schema(struct buf *b, struct buf *error_r)
{
	struct buf joined = BUF_INIT;
	int ret = ordered_schema("nis", &joined, error_r);
	static const char group[] = "NAME 'posixGroup' ";
	for (const char *line = buf_cstr(&joined); ret == IX_OK && *line != '\0';) {
		size_t len = strcspn(line, "\n");
		if (line[0] != '#') {
			const char *structural = strstr(line, " STRUCTURAL ");
			const char *name = strstr(line, group);
			if (name != NULL && structural != NULL && structural < line + len) {
				buf_append(b, line, (size_t)(structural - line));
				buf_append_str(b, " AUXILIARY ");
				const char *rest = structural + strlen(" STRUCTURAL ");
				buf_append(b, rest, len - (size_t)(rest - line));
			} else {
				buf_append(b, line, len);
			}
			buf_append_char(b, '\n');
		}
		line += len + (line[len] == '\n');
	}
	if (ret == IX_OK && strstr(buf_cstr(b), "NAME 'posixGroup' DESC 'Abstraction of a group of accounts' SUP top "
						"AUXILIARY") == NULL) {
		buf_printf(error_r, "%s/nis.ldif does not define posixGroup as slapd 2.5's does",
			   paths_slapd_schemadir);
		ret = IX_EINVAL;
	}
	buf_free(&joined);
	return ret;
}

/* directory/schema/NAME.ldif: slapd's schema NAME.ldif with ordering rules (slapd_schema_add_ordering);
 * nis as slapd_nis_schema makes it. */
static int write_ordered_schema(const struct config *cfg, const char *name, struct buf *error_r)
{
	struct buf b = BUF_INIT;
	int ret = strcmp(name, "nis") == 0 ? slapd_nis_schema(&b, error_r) : ordered_schema(name, &b, error_r);
	if (ret == IX_OK) {
		char *rel = xasprintf("directory/schema/%s.ldif", name);
		ret = write_text(cfg, rel, &b, error_r);
		free(rel);
	}
	buf_free(&b);
	return ret;
}

/* A file of ours that slapd loads (rel, a path in the data folder) copied from the installation (beside the running
 * program, else the installed libexec folder: paths_find, by its base name), so slapd loads it whatever happens later
 * to that build. what names it in errors. */
static int install_beside(const struct config *cfg, const char *rel, const char *what, struct buf *error_r)
{
	const char *base = strrchr(rel, '/');
	struct buf missing = BUF_INIT;
	char *from = paths_find(base != NULL ? base + 1 : rel, &missing);
	if (from == NULL) {
		buf_printf(error_r, "slapd's %s %s", what, buf_cstr(&missing));
		buf_free(&missing);
		return IX_ENOTFOUND;
	}
	buf_free(&missing);
	char *to = config_path(cfg, rel);
	int ret = IX_OK;
	if (file_copy(from, to, 0644, 16 << 20) < 0) {
		buf_printf(error_r, "cannot copy slapd's %s %s to %s: %s", what, from, to, strerror(errno));
		ret = IX_EIO;
	}
	free(from);
	free(to);
	return ret;
}

int slapd_create_config(const struct config *cfg, const char *rootpw_hash, unsigned server_id,
			const char *directory_extra, struct buf *error_r)
{
	static const char *const dirs[] = { "directory/slapd.d", "directory/data", SLAPD_ACCESSLOG_DIR,
					    "directory/schema", "run" };
	if (config_make_dirs(cfg, dirs, IX_ARRAY_LEN(dirs), error_r) != IX_OK)
		return IX_EIO;
	struct buf b = BUF_INIT;
	buf_append_str(&b, schema_interchange_ldif);
	int ret = write_text(cfg, "directory/schema/interchange.ldif", &b, error_r);
	buf_reset(&b);
	if (ret == IX_OK)
		ret = write_ordered_schema(cfg, "core", error_r);
	if (ret == IX_OK)
		ret = write_ordered_schema(cfg, "inetorgperson", error_r);
	if (ret == IX_OK)
		ret = write_ordered_schema(cfg, "nis", error_r);
	if (ret == IX_OK)
		ret = install_beside(cfg, SLAPD_ORDERING_MODULE, "ordering module", error_r);
	if (ret == IX_OK)
		ret = install_beside(cfg, SLAPD_GATE_MODULE, "gate module", error_r);
	if (ret == IX_OK)
		ret = install_beside(cfg, SLAPD_BROWSE_MODULE, "browse module", error_r);
	if (ret == IX_OK) {
		config_ldif(cfg, rootpw_hash, server_id, directory_extra, &b);
		ret = write_text(cfg, "directory/config.ldif", &b, error_r);
	}
	if (ret == IX_OK) {
		char *path = config_path(cfg, "directory/config.ldif");
		ret = slapadd(cfg, path, "-n0", 0, error_r);
		free(path);
	}
	/* the configuration holds the admin password hash: keep only the live copy in slapd.d */
	char *cl = config_path(cfg, "directory/config.ldif");
	unlink(cl);
	free(cl);
	buf_free(&b);
	return ret;
}

int slapd_load_ldif(const struct config *cfg, const char *path, struct buf *error_r)
{
	return slapadd(cfg, path, "-n1", 0, error_r);
}

int slapd_create(const struct config *cfg, const char *admin_password, const unsigned long long *settings,
		 struct buf *error_r)
{
	char *hash = slapd_hash_ssha(admin_password);
	/* the first server of an organisation writes as server ID 1 from its first entry on, the ID a join gives it:
	 * entries written as ID 000 before a join are changes no server's access log knows, and delta-syncrepl
	 * then falls back to whole-entry refreshes that lose writes (docs/multi-server.md) */
	int ret = slapd_create_config(cfg, NULL, SLAPD_FIRST_SERVER_ID, NULL, error_r);
	struct buf b = BUF_INIT;
	if (ret == IX_OK) {
		base_ldif(cfg, hash, settings, &b);
		ret = write_text(cfg, "directory/base.ldif", &b, error_r);
	}
	if (ret == IX_OK) {
		char *path = config_path(cfg, "directory/base.ldif");
		ret = slapadd(cfg, path, "-n1", SLAPD_FIRST_SERVER_ID, error_r);
		free(path);
	}
	buf_free(&b);
	free(hash);
	return ret;
}

int slapd_export(const struct config *cfg, int dbnum, const char *path, struct buf *error_r)
{
	char *confdir = config_path(cfg, "directory/slapd.d");
	char num[8];
	snprintf(num, sizeof(num), "-n%d", dbnum);
	char *const argv[] = { (char *)SLAPCAT_BIN, num, (char *)"-F", confdir, (char *)"-l", (char *)path, NULL };
	struct buf out = BUF_INIT;
	int rc = slapd_run_tool(argv, &out);
	int ret = IX_OK;
	if (rc != 0) {
		buf_printf(error_r, "slapcat %s failed (%d): %s", num, rc, buf_cstr(&out));
		ret = IX_EIO;
	}
	buf_free(&out);
	free(confdir);
	return ret;
}

const char *slapd_port_attr(enum config_port p)
{
	static const char *const attrs[PORT_COUNT] = {
		[PORT_LDAP] = "ixLdapPort",
		[PORT_LDAPS] = "ixLdapsPort",
		[PORT_SMTP] = "ixSmtpPort",
		[PORT_SUBMISSION] = "ixSubmissionPort",
		[PORT_SUBMISSIONS] = "ixSubmissionsPort",
		[PORT_IMAP] = "ixImapPort",
		[PORT_IMAPS] = "ixImapsPort",
		[PORT_POP3] = "ixPop3Port",
		[PORT_POP3S] = "ixPop3sPort",
		[PORT_SIEVE] = "ixSievePort",
		[PORT_METRICS] = "ixMetricsPort",
	};
	return attrs[p];
}

int slapd_listen_valid(const char *addr)
{
	unsigned char a[16];
	return inet_pton(AF_INET, addr, a) == 1 || inet_pton(AF_INET6, addr, a) == 1;
}

/* The listener URLs of one scheme ("ldap" or "ldaps") at one port for the listen address l (a new string). */
static char *listen_urls(const char *l, const char *scheme, unsigned port)
{
	if (strcmp(l, "0.0.0.0") == 0 || strcmp(l, "*") == 0)
		return xasprintf("%s://0.0.0.0:%u/", scheme, port);
	if (strcmp(l, "::") == 0) /* slapd's IPv6 sockets are IPv6-only: IPv4 needs its own */
		return xasprintf("%s://[::]:%u/ %s://0.0.0.0:%u/", scheme, port, scheme, port);
	if (strcmp(l, "127.0.0.1") == 0)
		return xasprintf("%s://127.0.0.1:%u/", scheme, port);
	/* one address: there (TLS required for binds), and the loopback listener for this machine's own tools */
	return strchr(l, ':') != NULL ? xasprintf("%s://[%s]:%u/ %s://127.0.0.1:%u/", scheme, l, port, scheme, port)
				      : xasprintf("%s://%s:%u/ %s://127.0.0.1:%u/", scheme, l, port, scheme, port);
}

char *slapd_listen_urls(const struct config *cfg)
{
	const char *l = cfg->listen != NULL && cfg->listen[0] != '\0' ? cfg->listen : "127.0.0.1";
	char *plain = listen_urls(l, "ldap", cfg->ports[PORT_LDAP]);
	char *tls = listen_urls(l, "ldaps", cfg->ports[PORT_LDAPS]);
	char *urls = xasprintf("%s %s", plain, tls);
	free(plain);
	free(tls);
	return urls;
}

/* Where Debian and others keep Cyrus's plugins. */
static const char *const cyrus_plugin_dirs[] = { "/usr/lib/x86_64-linux-gnu/sasl2", "/usr/lib/aarch64-linux-gnu/sasl2",
						 "/usr/lib64/sasl2", "/usr/lib/sasl2" };

/* Cyrus's GSSAPI plugin (libsasl2-modules-gssapi-mit) beside ours while this server has a Kerberos keytab
 * (interchange kerberos keytab), so slapd offers GSSAPI exactly then; it finds the keytab through KRB5_KTNAME. */
static void slapd_gssapi_plugin(const struct config *cfg)
{
	char *keytab = config_path(cfg, SIGNIN_KEYTAB);
	char *link = config_path(cfg, SLAPD_SASL_DIR "/libgssapiv2.so");
	struct stat st;
	unlink(link);
	for (size_t i = 0; i < IX_ARRAY_LEN(cyrus_plugin_dirs) && stat(keytab, &st) == 0; i++) {
		char *plugin = xasprintf("%s/libgssapiv2.so", cyrus_plugin_dirs[i]);
		bool found = access(plugin, R_OK) == 0;
		if (found && symlink(plugin, link) < 0)
			log_warn("slapd: cannot link %s into %s: %s (no GSSAPI binds)", plugin, link, strerror(errno));
		free(plugin);
		if (found)
			break;
	}
	free(link);
	free(keytab);
}

/* Cyrus SASL mechanisms slapd may offer: the plugins it finds in SLAPD_SASL_DIR, which holds only ours for PLAIN
 * (directory/ixplain.c) and SCRAM (directory/ixscram.c); EXTERNAL is built into libsasl2. Without this slapd offers
 * every plugin installed (Cyrus's SCRAM, DIGEST-MD5, CRAM-MD5, NTLM), all of which need passwords stored in clear
 * and so always fail here. Copied at every
 * start, so older data folders get it too, and a new build's plugin replaces the old one; so are our gate and browse
 * modules (SLAPD_GATE_MODULE, SLAPD_BROWSE_MODULE), which upgrade_address_book adds to an older configuration. */
static int slapd_sasl_plugins(const struct config *cfg, struct buf *error_r)
{
	char *dir = config_path(cfg, SLAPD_SASL_DIR);
	int ret = IX_OK;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		buf_printf(error_r, "cannot create %s: %s", dir, strerror(errno));
		ret = IX_EIO;
	}
	free(dir);
	if (ret == IX_OK)
		ret = install_beside(cfg, SLAPD_SASL_PLUGIN, "SASL PLAIN plugin", error_r);
	if (ret == IX_OK) /* OAUTHBEARER and XOAUTH2, offered while an issuer is configured */
		ret = install_beside(cfg, SLAPD_SASL_DIR "/libixoauth.so", "SASL OAuth plugin", error_r);
	if (ret == IX_OK)
		ret = install_beside(cfg, SLAPD_SASL_SCRAM_PLUGIN, "SASL SCRAM plugin", error_r);
	if (ret == IX_OK)
		slapd_gssapi_plugin(cfg);
	if (ret == IX_OK)
		ret = install_beside(cfg, SLAPD_GATE_MODULE, "gate module", error_r);
	return ret == IX_OK ? install_beside(cfg, SLAPD_BROWSE_MODULE, "browse module", error_r) : ret;
}

pid_t slapd_spawn(const struct config *cfg, int log_fd, int lock_fd, struct buf *error_r)
{
	if (slapd_sasl_plugins(cfg, error_r) != IX_OK)
		return -1;
	char *sasl_dir = config_path(cfg, SLAPD_SASL_DIR);
	char *confdir = config_path(cfg, "directory/slapd.d");
	char *ldapi = config_ldapi_uri(cfg);
	/* the TCP listeners first: a second slapd then fails before it touches the ldapi socket (docs/slapd-facts.md,
	 * "One slapd per folder") */
	char *tcp = slapd_listen_urls(cfg);
	char *urls = xasprintf("%s %s", tcp, ldapi);
	free(tcp);
	char *keytab = config_path(cfg, SIGNIN_KEYTAB);
	pid_t pid = fork();
	if (pid < 0) {
		buf_printf(error_r, "cannot start slapd: %s", strerror(errno));
	} else if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (log_fd >= 0) {
			dup2(log_fd, 1);
			dup2(log_fd, 2);
		}
		if (lock_fd >= 0) {
			int flags = fcntl(lock_fd, F_GETFD);
			fcntl(lock_fd, F_SETFD, flags & ~FD_CLOEXEC);
		}
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setenv("LDAPNOINIT", "1", 1);
		setenv("SASL_PATH", sasl_dir, 1);
		setenv("IX_LDAPI_URI", ldapi, 1); /* where our PLAIN checks passwords, our SCRAM reads */
		setenv("KRB5_KTNAME", keytab, 1); /* the GSSAPI plugin's service keys */
		setenv("IX_SUFFIX", cfg->suffix,
		       1); /* where our OAuth plugin finds the issuers, our SCRAM the policy */
		execl(SLAPD_BIN, "slapd", "-d", "none", "-F", confdir, "-h", urls, (char *)NULL);
		_exit(127);
	}
	free(confdir);
	free(sasl_dir);
	free(ldapi);
	free(urls);
	free(keytab);
	return pid;
}

int slapd_wait_ready(const struct config *cfg, pid_t pid, unsigned timeout_ms, int *status_r, struct buf *error_r)
{
	char *uri = config_ldapi_uri(cfg);
	unsigned long long deadline = now_usec() + (unsigned long long)timeout_ms * 1000;
	int ret = IX_EUNAVAIL;
	for (;;) {
		int status;
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			*status_r = status;
			buf_printf(error_r, "slapd exited during start (%s %d)",
				   WIFEXITED(status) ? "status" : "signal",
				   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			break;
		}
		LDAP *ld;
		struct buf err = BUF_INIT;
		if (ldapu_connect_external(uri, &ld, &err) == IX_OK) {
			ldap_unbind_ext_s(ld, NULL, NULL);
			buf_free(&err);
			ret = IX_OK;
			break;
		}
		buf_free(&err);
		if (now_usec() > deadline) {
			buf_printf(error_r, "slapd did not answer within %u ms", timeout_ms);
			break;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	free(uri);
	return ret;
}

int slapd_stop(pid_t pid, unsigned timeout_ms)
{
	if (pid <= 0)
		return IX_OK;
	kill(pid, SIGTERM);
	unsigned long long deadline = now_usec() + (unsigned long long)timeout_ms * 1000;
	for (;;) {
		int status;
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno == ECHILD))
			return IX_OK;
		if (now_usec() > deadline) {
			log_warn("slapd (pid %ld) did not stop within %u ms: killing it", (long)pid, timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return IX_OK;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}
