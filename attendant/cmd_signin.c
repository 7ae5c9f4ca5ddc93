/* cmd_signin.c - interchange oauth: the OAuth 2.0 / OpenID Connect issuers whose bearer tokens sign users in
 * (OAUTHBEARER, XOAUTH2). The entries are written by directory/signin_config.c; this file parses and prints. */
#include "attendant/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"
#include "directory/signin_config.h"
#include "transport/net/jwt.h"
#include "transport/net/oauth.h"

#include <fcntl.h>
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
		ret = oauth_https_get(keys, JWKS_DOC_MAX, &doc, err);
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
