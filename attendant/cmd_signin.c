/* cmd_signin.c - interchange oauth: the OAuth 2.0 / OpenID Connect issuers whose bearer tokens sign users in
 * (OAUTHBEARER, XOAUTH2); interchange kerberos: the keytab, realm and principals of GSSAPI sign-in. The entries are
 * written by directory/signin_config.c; this file parses, checks keytabs and prints. */
#include "attendant/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"
#include "directory/signin_config.h"
#include "transport/daemon/signin.h"
#include "transport/net/jwt.h"
#include "transport/net/oauth.h"

#include "common/privs.h"

#include <errno.h>
#include <fcntl.h>
#include <krb5.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char oauth_help[] =
	"usage: interchange oauth add ISSUER --jwks FILE-OR-URL --audience AUD [--claim NAME]\n"
	"       interchange oauth list\n"
	"       interchange oauth del ISSUER\n\n"
	"Mail clients sign in with a bearer token (SASL OAUTHBEARER and XOAUTH2 on IMAP, POP3 and SMTP) that an\n"
	"identity provider (Keycloak, Entra ID, Authentik...) issued: a JWT signed with RS256, ES256 or EdDSA. ISSUER\n"
	"is the iss of its tokens; --jwks its keys, a JWKS file (on every server) or its jwks_uri (https://, fetched\n"
	"and cached, fetched again when a token names a key not seen); --audience the aud the tokens must carry;\n"
	"--claim the claim naming the user (email by default; preferred_username, upn): an address, a login or a\n"
	"Kerberos principal of a recipient. add again replaces an issuer's settings. OAUTHBEARER is offered once an\n"
	"issuer is configured. docs/sign-in.md: Keycloak and Entra ID. All commands take --data DIR.\n";

/* Reads the key set the way the servers will, so that a wrong path or URL is said now. */
static int check_keys(const char *keys, struct buf *out, struct buf *err)
{
	struct buf doc = BUF_INIT;
	int ret;
	if (strncasecmp(keys, "https://", 8) == 0) {
		ret = oauth_https_get(keys, NULL, NULL, JWKS_DOC_MAX, &doc, err);
	} else if (keys[0] != '/') {
		buf_printf(err, "--jwks takes an absolute file path or an https:// URL, not \"%s\"", keys);
		ret = IX_EINVAL;
	} else {
		int fd = open(keys, O_RDONLY | O_CLOEXEC);
		ret = fd >= 0 ? IX_OK : IX_EIO;
		if (fd < 0)
			buf_printf(err, "cannot read %s", keys);
		else
			buf_read_fd(&doc, fd, JWKS_DOC_MAX + 1);
		if (fd >= 0)
			close(fd);
	}
	struct jwks *ks = NULL;
	if (ret == IX_OK)
		ret = jwks_parse(doc.data != NULL ? doc.data : "", doc.len, &ks, err);
	if (ret == IX_OK && jwks_count(ks) == 0) {
		buf_printf(err, "%s holds no RSA (2048 bits or more), P-256 or Ed25519 signing key", keys);
		ret = IX_EINVAL;
	}
	if (ret == IX_OK)
		buf_printf(out, "%zu signing keys in %s\n", jwks_count(ks), keys);
	jwks_free(&ks);
	buf_free(&doc);
	return ret;
}

int cmd_oauth(const char *data_dir, int argc, char **argv)
{
	int shown = cli_help_or_usage(argc, argv, oauth_help);
	if (shown >= 0)
		return shown;
	const char *verb = argv[1], *issuer = NULL, *keys = NULL, *aud = NULL, *claim = NULL;
	bool list = strcmp(verb, "list") == 0, add = strcmp(verb, "add") == 0, del = strcmp(verb, "del") == 0;
	if (!list && !add && !del) {
		fprintf(stderr, "interchange: unknown oauth command \"%s\"\n\n%s", verb, oauth_help);
		return CLI_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		const char **opt = NULL;
		if (add && strcmp(argv[i], "--jwks") == 0)
			opt = &keys;
		else if (add && strcmp(argv[i], "--audience") == 0)
			opt = &aud;
		else if (add && strcmp(argv[i], "--claim") == 0)
			opt = &claim;
		if (opt != NULL && i + 1 < argc && *opt == NULL) {
			*opt = argv[++i];
		} else if (opt == NULL && !list && issuer == NULL && argv[i][0] != '-') {
			issuer = argv[i];
		} else {
			fprintf(stderr, "interchange: oauth %s: unexpected argument \"%s\"\n\n%s", verb, argv[i],
				oauth_help);
			return CLI_EXIT_USAGE;
		}
	}
	if ((!list && issuer == NULL) || (add && (keys == NULL || aud == NULL))) {
		fprintf(stderr, "interchange: oauth %s needs %s\n\n%s", verb,
			add ? "ISSUER, --jwks and --audience" : "the ISSUER", oauth_help);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf out = BUF_INIT, err = BUF_INIT;
	int ret = add ? check_keys(keys, &out, &err) : IX_OK;
	struct prov *p = NULL;
	if (ret == IX_OK)
		ret = prov_open(&cfg, &p, &err);
	if (ret == IX_OK) {
		LDAP *ld = prov_ldap(p);
		if (list) {
			ret = signin_oauth_list(ld, &cfg, &out, &err);
		} else if (del) {
			ret = signin_oauth_del(ld, &cfg, issuer, &err);
			if (ret == IX_OK)
				buf_printf(&out, "Deleted issuer %s: its tokens no longer sign anyone in\n", issuer);
		} else {
			int replaced;
			ret = signin_oauth_add(ld, &cfg, issuer, keys, aud, claim, &replaced, &err);
			if (ret == IX_OK)
				buf_printf(&out, "%s issuer %s: tokens for %s, the user named by their %s claim\n",
					   replaced ? "Changed" : "Added", issuer, aud,
					   claim != NULL ? claim : "email");
		}
		prov_close(&p);
	}
	return cli_finish(ret, &out, &err, &cfg);
}

/* ---- interchange kerberos ---- */

static const char kerberos_help[] =
	"usage: interchange kerberos keytab FILE\n"
	"       interchange kerberos realm REALM\n"
	"       interchange kerberos principal LOGIN PRINCIPAL|--none\n"
	"       interchange kerberos show\n\n"
	"Domain-joined clients sign in with their Kerberos ticket (SASL GSSAPI on IMAP, POP3, SMTP and LDAP). keytab\n"
	"installs this server's keys: FILE must hold imap/, pop/, smtp/ and ldap/ principals of its host name (ktutil,\n"
	"kadmin ktadd, or Active Directory's ktpass / msktutil); the first keytab also sets the realm. USER@REALM then\n"
	"signs in as the user with login USER; realm changes it. principal gives a user a principal of another\n"
	"realm (an Active Directory userPrincipalName), --none takes it away. GSSAPI is offered only while a keytab\n"
	"is installed; LDAP offers it from the directory's next start. docs/sign-in.md: Active Directory.\n"
	"All commands take --data DIR.\n";

static const char *const keytab_services[] = { "imap", "pop", "smtp", "ldap" };
/* Largest keytab taken (a few keys per principal are a few hundred bytes). */
#define KEYTAB_MAX (1024 * 1024)

/* The principals of the keytab at path (one a line into names_r) and the realm of its imap/HOST principal. Returns
 * IX_OK, or IX_EINVAL when it cannot be read or lacks a service's principal for host (err says which). */
static int keytab_check(const char *path, const char *host, struct buf *names_r, struct buf *realm_r, struct buf *err)
{
	krb5_context kc;
	if (krb5_init_context(&kc) != 0) {
		buf_append_str(err, "cannot initialise Kerberos (krb5.conf)");
		return IX_EUNAVAIL;
	}
	char *name = xasprintf("FILE:%s", path);
	krb5_keytab kt;
	krb5_kt_cursor cur;
	krb5_keytab_entry ent;
	int ret = IX_OK;
	bool found[IX_ARRAY_LEN(keytab_services)] = { false };
	krb5_error_code kerr = krb5_kt_resolve(kc, name, &kt);
	if (kerr == 0 && (kerr = krb5_kt_start_seq_get(kc, kt, &cur)) != 0)
		krb5_kt_close(kc, kt);
	if (kerr != 0) {
		const char *why = krb5_get_error_message(kc, kerr);
		buf_printf(err, "%s is not a keytab that can be read: %s", path, why);
		krb5_free_error_message(kc, why);
		ret = IX_EINVAL;
	} else {
		while (krb5_kt_next_entry(kc, kt, &ent, &cur) == 0) {
			char *p = NULL;
			if (krb5_unparse_name(kc, ent.principal, &p) == 0) {
				if (strstr(buf_cstr(names_r), p) == NULL)
					buf_printf(names_r, "  %s\n", p);
				for (size_t i = 0; i < IX_ARRAY_LEN(keytab_services); i++) {
					size_t sl = strlen(keytab_services[i]), hl = strlen(host);
					if (strncmp(p, keytab_services[i], sl) == 0 && p[sl] == '/' &&
					    strncasecmp(p + sl + 1, host, hl) == 0 && p[sl + 1 + hl] == '@') {
						found[i] = true;
						if (i == 0 && realm_r->len == 0)
							buf_append_str(realm_r, p + sl + 2 + hl);
					}
				}
				krb5_free_unparsed_name(kc, p);
			}
			krb5_free_keytab_entry_contents(kc, &ent);
		}
		krb5_kt_end_seq_get(kc, kt, &cur);
		krb5_kt_close(kc, kt);
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(keytab_services) && ret == IX_OK; i++) {
		if (!found[i]) {
			buf_printf(err, "%s has no %s/%s principal (it holds:\n%s)", path, keytab_services[i], host,
				   buf_cstr(names_r));
			ret = IX_EINVAL;
		}
	}
	free(name);
	krb5_free_context(kc);
	return ret;
}

/* Reads the keytab the administrator gave (before the command drops to the services' user, who may not read it). */
static int keytab_read(const char *from, struct buf *content_r, struct buf *err)
{
	int fd = open(from, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		buf_printf(err, "cannot read %s: %s", from, strerror(errno));
		return IX_EIO;
	}
	buf_read_fd(content_r, fd, KEYTAB_MAX);
	close(fd);
	return IX_OK;
}

/* Writes the keytab into the data folder (as the services' user), readable by that user only. */
static int keytab_install(const struct config *cfg, const struct buf *content, struct buf *err)
{
	char *to = config_path(cfg, SIGNIN_KEYTAB);
	char *dir = xstrdup(to);
	*strrchr(dir, '/') = '\0';
	int ret = IX_OK;
	if (mkdir_p(dir, 0750) < 0) {
		buf_printf(err, "cannot create %s: %s", dir, strerror(errno));
		ret = IX_EIO;
	} else if (write_file_atomic(to, content->data, content->len, 0640) < 0) {
		buf_printf(err, "cannot write %s: %s", to, strerror(errno));
		ret = IX_EIO;
	}
	free(dir);
	free(to);
	return ret;
}

int cmd_kerberos(const char *data_dir, int argc, char **argv)
{
	int shown = cli_help_or_usage(argc, argv, kerberos_help);
	if (shown >= 0)
		return shown;
	const char *verb = argv[1];
	bool keytab = strcmp(verb, "keytab") == 0, realm = strcmp(verb, "realm") == 0,
	     principal = strcmp(verb, "principal") == 0, show = strcmp(verb, "show") == 0;
	int want = keytab || realm ? 3 : principal ? 4 : 2;
	if ((!keytab && !realm && !principal && !show) || argc != want) {
		fprintf(stderr, "interchange: kerberos %s: %s\n\n%s", verb,
			!keytab && !realm && !principal && !show ? "unknown command" : "wrong arguments",
			kerberos_help);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config_keep(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf out = BUF_INIT, err = BUF_INIT, names = BUF_INIT, kr = BUF_INIT, cur = BUF_INIT, content = BUF_INIT;
	int ret = keytab ? keytab_check(argv[2], cfg.hostname, &names, &kr, &err) : IX_OK;
	if (ret == IX_OK && keytab)
		ret = keytab_read(argv[2], &content, &err);
	if (ret == IX_OK)
		ret = privs_drop(cfg.user, 0, &err);
	struct prov *p = NULL;
	char *dflt = signin_default_realm();
	if (ret == IX_OK)
		ret = prov_open(&cfg, &p, &err);
	if (ret == IX_OK) {
		LDAP *ld = prov_ldap(p);
		bool has_realm = signin_kerberos_realm_get(ld, &cfg, &cur, &err) == IX_OK;
		buf_reset(&err);
		if (keytab) {
			ret = keytab_install(&cfg, &content, &err);
			/* the first keytab sets the realm; a later one keeps it (and refreshes slapd's settings) */
			if (ret == IX_OK)
				ret = signin_kerberos_realm(ld, &cfg, has_realm ? buf_cstr(&cur) : buf_cstr(&kr), dflt,
							    &err);
			if (ret == IX_OK)
				buf_printf(
					&out,
					"Installed the keytab of %s:\n%sUsers sign in as LOGIN@%s; IMAP, POP3 and SMTP offer "
					"GSSAPI now, LDAP from the directory's next start (interchange stop, then start)\n",
					cfg.hostname, buf_cstr(&names), has_realm ? buf_cstr(&cur) : buf_cstr(&kr));
		} else if (realm) {
			ret = signin_kerberos_realm(ld, &cfg, argv[2], dflt, &err);
			if (ret == IX_OK)
				buf_printf(&out, "Kerberos realm %s: USER@%s signs in as the user with login USER\n",
					   argv[2], argv[2]);
		} else if (principal) {
			const char *pr = strcmp(argv[3], "--none") == 0 ? NULL : argv[3];
			ret = signin_user_principal(ld, &cfg, argv[2], pr, &err);
			if (ret == IX_OK)
				buf_printf(&out,
					   pr != NULL ? "%s signs in as %s too\n" : "%s has no other principal%s\n",
					   pr != NULL ? pr : argv[2], pr != NULL ? argv[2] : "");
		} else {
			char *path = config_path(&cfg, SIGNIN_KEYTAB);
			struct buf kerr = BUF_INIT;
			bool installed = access(path, R_OK) == 0;
			if (installed)
				keytab_check(path, cfg.hostname, &names, &kr, &kerr);
			buf_printf(&out, "Realm:  %s\nKeytab: %s\n%s", has_realm ? buf_cstr(&cur) : "(not set)",
				   installed ? path : "(none: GSSAPI is not offered)", buf_cstr(&names));
			buf_free(&kerr);
			free(path);
		}
		prov_close(&p);
	}
	free(dflt);
	buf_free(&names);
	buf_free(&kr);
	buf_free(&cur);
	if (content.data != NULL)
		explicit_bzero(content.data, content.len);
	buf_free(&content);
	return cli_finish(ret, &out, &err, &cfg);
}
