/* ixscram.c - a Cyrus SASL server plugin that gives slapd SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802, RFC 7677), and
 * their -PLUS forms where slapd binds the channel (olcSaslCBinding tls-endpoint), over the exchange of common/scram.c
 * and the verifiers the directory keeps beside the password (docs/directory.md, "SCRAM and app passwords").
 *
 * The user is named as for our PLAIN (directory/ixplain.c): canon_user has slapd map the name to an entry
 * (olcAuthzRegexp) and leave its DN in the property *slapAuthcDN. The verifiers are then read over slapd's own ldapi
 * socket (IX_LDAPI_URI) with SASL EXTERNAL, which slapd maps to our administrator: ixScramVerifier only while
 * ixScramBinding matches the current userPassword, never the app passwords (for mail only). A locked account is
 * refused; a wrong proof is made a failed simple bind of the account (a random password), so that slapd's password
 * policy counts it towards the lockout as it counts every other wrong password.
 *
 * Loaded by libsasl2 inside slapd (SASL_PATH), never linked into our programs; built with our common code compiled
 * for a shared object, its symbols hidden but the entry point. */
#include "common/base64.h"
#include "common/err.h"
#include "common/scram.h"
#include "directory/secrets.h"
#include "directory/slapd.h"
#include "directory/slapd_plugin.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

__attribute__((visibility("default"))) int sasl_server_plug_init(const sasl_utils_t *utils, int maxversion,
								 int *out_version, sasl_server_plug_t **pluglist,
								 int *plugcount);

/* what the salt of an unknown user is made from */
static unsigned char fake_secret[32];

struct exchange {
	enum scram_hash hash; /* the plugin's: SCRAM-SHA-1 or SCRAM-SHA-256 */
	struct scram_server srv;
	struct scram_cbind cbind;
	bool have_cbind;
	char *dn; /* the user's entry, or NULL when slapd mapped the name to none */
	struct buf out;
};

static int scram_new(void *glob_context, sasl_server_params_t *params, const char *challenge, unsigned challen,
		     void **conn_context)
{
	(void)challenge;
	(void)challen;
	struct exchange *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return SASL_NOMEM;
	x->hash = *(const enum scram_hash *)glob_context;
	x->srv.matched = -1;
	/* slapd's binding data, one type (olcSaslCBinding tls-endpoint), which slapd 2.5 names "ldap" and gives as
	 * "tls-server-end-point:" and the hash, as libldap's clients send it: taken as it comes */
	const sasl_channel_binding_t *cb = params->cbinding;
	if (cb != NULL && cb->name != NULL && cb->len > 0 && cb->len <= SCRAM_CBIND_MAX &&
	    strlen(cb->name) < sizeof(x->cbind.other_name)) {
		strcpy(x->cbind.other_name, cb->name);
		memcpy(x->cbind.other, cb->data, cb->len);
		x->cbind.other_len = cb->len;
		x->have_cbind = true;
	}
	*conn_context = x;
	return SASL_OK;
}

static void scram_dispose(void *conn_context, const sasl_utils_t *utils)
{
	(void)utils;
	struct exchange *x = conn_context;
	if (x == NULL)
		return;
	scram_server_reset(&x->srv);
	buf_free(&x->out);
	free(x->dn);
	free(x);
}

/* The first value of attr in the entry at dn (free it), or NULL. */
static char *first_value(LDAP *ld, const char *dn, const char *attr)
{
	char *attrs[] = { (char *)attr, NULL };
	LDAPMessage *res = NULL;
	char *v = NULL;
	if (ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, NULL, 1, &res) ==
	    LDAP_SUCCESS) {
		LDAPMessage *e = ldap_first_entry(ld, res);
		struct berval **vals = e != NULL ? ldap_get_values_len(ld, e, attr) : NULL;
		if (vals != NULL && vals[0] != NULL)
			v = strndup(vals[0]->bv_val, vals[0]->bv_len);
		ldap_value_free_len(vals);
	}
	if (res != NULL)
		ldap_msgfree(res);
	return v;
}

/* Whether slapd's lockout of the account holds (secrets_lock_holds with the policy of IX_SUFFIX's directory). */
static bool locked_out(LDAP *ld, const char *locked)
{
	const char *suffix = getenv("IX_SUFFIX");
	char *policy = NULL;
	if (suffix != NULL && asprintf(&policy, "%s,%s", SLAPD_POLICY_RDN, suffix) < 0)
		policy = NULL;
	char *v = policy != NULL ? first_value(ld, policy, "pwdLockoutDuration") : NULL;
	long duration = v != NULL ? strtol(v, NULL, 10) : 0;
	free(v);
	free(policy);
	return secrets_lock_holds(locked, duration, time(NULL));
}

/* The values of attr in e as C strings (a NULL-terminated array: free_values), NULL when it has none. */
static char **values_of(LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);
	size_t n = 0;
	while (v != NULL && v[n] != NULL)
		n++;
	char **out = n > 0 ? calloc(n + 1, sizeof(*out)) : NULL;
	for (size_t i = 0; out != NULL && i < n; i++)
		out[i] = strndup(v[i]->bv_val, v[i]->bv_len);
	ldap_value_free_len(v);
	return out;
}

static void free_values(char **v, bool wipe)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
		if (wipe)
			memset(v[i], 0, strlen(v[i]));
		free(v[i]);
	}
	free(v);
}

/* Adds the user's current verifiers of x's hash; SASL_OK (also when there are none), SASL_NOAUTHZ when the
 * account is locked, SASL_FAIL when slapd cannot be asked. */
static int load_verifiers(sasl_server_params_t *params, struct exchange *x)
{
	LDAP *ld = slapd_plugin_ldapi(true);
	if (ld == NULL) {
		params->utils->seterror(params->utils->conn, 0, "cannot read the SCRAM verifiers");
		return SASL_FAIL;
	}
	char *attrs[] = { (char *)"userPassword", (char *)"ixScramVerifier", (char *)"ixScramBinding",
			  (char *)"pwdAccountLockedTime", NULL };
	LDAPMessage *res = NULL;
	int ret = SASL_OK;
	if (ldap_search_ext_s(ld, x->dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, NULL, 1, &res) !=
	    LDAP_SUCCESS) {
		ret = SASL_OK; /* no entry: no verifier */
	} else {
		LDAPMessage *e = ldap_first_entry(ld, res);
		char **pw = e != NULL ? values_of(ld, e, "userPassword") : NULL;
		char **ver = e != NULL ? values_of(ld, e, "ixScramVerifier") : NULL;
		char **binding = e != NULL ? values_of(ld, e, "ixScramBinding") : NULL;
		char **locked = e != NULL ? values_of(ld, e, "pwdAccountLockedTime") : NULL;
		if (locked != NULL && locked_out(ld, locked[0])) {
			params->utils->seterror(params->utils->conn, 0, "the account is locked");
			ret = SASL_NOAUTHZ;
		}
		bool current = binding != NULL && secrets_binding_matches(binding[0], (const char *const *)pw);
		for (size_t i = 0; ret == SASL_OK && current && ver != NULL && ver[i] != NULL; i++) {
			struct scram_verifier sv;
			if (scram_verifier_parse(ver[i], strlen(ver[i]), &sv) == 0)
				scram_server_add_verifier(&x->srv, &sv);
		}
		free_values(pw, true);
		free_values(ver, false);
		free_values(binding, false);
		free_values(locked, false);
	}
	if (res != NULL)
		ldap_msgfree(res);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* A wrong proof counts as a wrong password: a simple bind of the account with a random one, which slapd's password
 * policy records (pwdFailureTime) towards the lockout. */
static void count_failure(const char *dn)
{
	unsigned char rnd[24];
	LDAP *ld = RAND_bytes(rnd, sizeof(rnd)) == 1 ? slapd_plugin_ldapi(false) : NULL;
	if (ld == NULL)
		return;
	struct buf pw = BUF_INIT;
	base64_encode(rnd, sizeof(rnd), &pw);
	struct berval cred = { .bv_len = pw.len, .bv_val = pw.data };
	(void)ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	ldap_unbind_ext_s(ld, NULL, NULL);
	buf_free(&pw);
}

static int first_step(struct exchange *x, enum scram_hash h, sasl_server_params_t *params, const char *in,
		      unsigned inlen, const char **out, unsigned *outlen, sasl_out_params_t *oparams)
{
	struct buf err = BUF_INIT;
	/* the framework does not say whether the -PLUS name was chosen: the gs2 flag does, and the binding is then
	 * checked all the same ("y" where slapd binds is refused as a downgrade) */
	bool plus = inlen > 0 && in[0] == 'p';
	int r = scram_server_first(&x->srv, h, plus, x->have_cbind ? &x->cbind : NULL, in, inlen, &err);
	if (r != 0) {
		params->utils->seterror(params->utils->conn, 0, "%s", buf_cstr(&err));
		buf_free(&err);
		return r == IX_EAUTH ? SASL_BADAUTH : SASL_BADPROT;
	}
	buf_free(&err);
	/* what the framework checks against slapd's binding once we are done */
	oparams->cbindingdisp = plus ? SASL_CB_DISP_USED : in[0] == 'y' ? SASL_CB_DISP_WANT : SASL_CB_DISP_NONE;
	oparams->cbindingname = plus ? params->cbinding->name : NULL;
	const char *user = scram_server_user(&x->srv), *authz = scram_server_authzid(&x->srv);
	if (authz[0] != '\0' && strcmp(authz, user) != 0) {
		params->utils->seterror(params->utils->conn, 0, "acting for another identity is not offered");
		return SASL_NOAUTHZ;
	}
	int ret = params->canon_user(params->utils->conn, user, 0, SASL_CU_AUTHID | SASL_CU_AUTHZID, oparams);
	if (ret != SASL_OK)
		return ret;
	const char *dn = slapd_plugin_authc_dn(params);
	if (dn != NULL) {
		x->dn = strdup(dn);
		if (x->dn == NULL)
			return SASL_NOMEM;
		ret = load_verifiers(params, x);
		if (ret != SASL_OK)
			return ret;
	}
	/* an unknown user or one without verifiers gets a salt all the same, and fails at the end */
	if (scram_server_challenge(&x->srv, fake_secret, sizeof(fake_secret), SCRAM_ITERATIONS_DEFAULT, &x->out) != 0)
		return SASL_FAIL;
	*out = buf_cstr(&x->out);
	*outlen = (unsigned)x->out.len;
	return SASL_CONTINUE;
}

static int final_step(struct exchange *x, sasl_server_params_t *params, const char *in, unsigned inlen,
		      const char **out, unsigned *outlen, sasl_out_params_t *oparams)
{
	struct buf err = BUF_INIT;
	buf_reset(&x->out);
	int r = scram_server_final(&x->srv, x->have_cbind ? &x->cbind : NULL, in, inlen, &x->out, &err);
	if (r != 0) {
		params->utils->seterror(params->utils->conn, 0, "%s", buf_cstr(&err));
		buf_free(&err);
		if (r == IX_EAUTH && x->dn != NULL)
			count_failure(x->dn);
		return r == IX_EAUTH ? SASL_BADAUTH : SASL_BADPROT;
	}
	buf_free(&err);
	*out = buf_cstr(&x->out);
	*outlen = (unsigned)x->out.len;
	slapd_plugin_done(oparams);
	return SASL_OK; /* LDAP carries the server-final message with the success */
}

static int scram_step(void *conn_context, sasl_server_params_t *params, const char *in, unsigned inlen,
		      const char **out, unsigned *outlen, sasl_out_params_t *oparams)
{
	struct exchange *x = conn_context;
	*out = NULL;
	*outlen = 0;
	if (x->srv.state == 0)
		return first_step(x, x->hash, params, in, inlen, out, outlen, oparams);
	return final_step(x, params, in, inlen, out, outlen, oparams);
}

static const enum scram_hash sha1 = SCRAM_SHA_1, sha256 = SCRAM_SHA_256;

/* -PLUS is the framework's: a plugin with SASL_FEAT_CHANNEL_BINDING is offered under both names where slapd has
 * binding data, and params->cbindingdisp says which one the client chose. */
static sasl_server_plug_t plugins[] = {
	{
		.mech_name = "SCRAM-SHA-256",
		.max_ssf = 0,
		.security_flags = SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS | SASL_SEC_MUTUAL_AUTH,
		.features = SASL_FEAT_WANT_CLIENT_FIRST | SASL_FEAT_CHANNEL_BINDING,
		.glob_context = (void *)&sha256,
		.mech_new = scram_new,
		.mech_step = scram_step,
		.mech_dispose = scram_dispose,
	},
	{
		.mech_name = "SCRAM-SHA-1",
		.max_ssf = 0,
		.security_flags = SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS | SASL_SEC_MUTUAL_AUTH,
		.features = SASL_FEAT_WANT_CLIENT_FIRST | SASL_FEAT_CHANNEL_BINDING,
		.glob_context = (void *)&sha1,
		.mech_new = scram_new,
		.mech_step = scram_step,
		.mech_dispose = scram_dispose,
	},
};

int sasl_server_plug_init(const sasl_utils_t *utils, int maxversion, int *out_version, sasl_server_plug_t **pluglist,
			  int *plugcount)
{
	(void)utils;
	if (RAND_bytes(fake_secret, sizeof(fake_secret)) != 1)
		return SASL_FAIL;
	return slapd_plugin_init(maxversion, out_version, pluglist, plugcount, plugins,
				 (int)(sizeof(plugins) / sizeof(plugins[0])));
}
