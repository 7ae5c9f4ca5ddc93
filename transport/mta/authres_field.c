/* authres_field.c - the Authentication-Results fields of a message that claim the organisation's authserv-id
 * (RFC 8601 5): found, read and removed; pure text, no library of the checks (ix-mta reads them to seal, arc.c). */
#include "transport/mta/authres.h"
#include "transport/mta/dsn.h"

#include <string.h>
#include <strings.h>

struct claim_ctx {
	const char *id, *msg;
	struct buf *out;    /* NULL: only look */
	const char *needle; /* only look for a claim holding this text */
	size_t copied;
	bool found;
	const char *val; /* the first claim's value */
	size_t vlen;
};

/* Skips whitespace and (nested) comments. */
static size_t skip_cfws(const char *v, size_t i, size_t len)
{
	int depth = 0;
	for (; i < len; i++) {
		if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && depth > 0)
			depth--;
		else if (depth == 0 && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
			break;
	}
	return i;
}

static bool each_claim(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct claim_ctx *c = ctx;
	if (nlen != 22 || strncasecmp(name, "Authentication-Results", 22) != 0)
		return true;
	size_t s = skip_cfws(val, 0, vlen), e = s;
	while (e < vlen && val[e] != ';' && val[e] != ' ' && val[e] != '\t' && val[e] != '\r' && val[e] != '\n' &&
	       val[e] != '(')
		e++;
	size_t idlen = strlen(c->id);
	if (e - s != idlen || strncasecmp(val + s, c->id, idlen) != 0)
		return true;
	if (c->needle != NULL && memmem(val, vlen, c->needle, strlen(c->needle)) == NULL)
		return true;
	c->found = true;
	c->val = val;
	c->vlen = vlen;
	if (c->out == NULL)
		return false;
	size_t start = (size_t)(name - c->msg);
	buf_append(c->out, c->msg + c->copied, start - c->copied);
	c->copied = (size_t)(val + vlen - c->msg);
	return true;
}

bool authres_claims(const char *authserv_id, const char *msg, size_t len)
{
	struct claim_ctx c = { authserv_id, msg, NULL, NULL, 0, false, NULL, 0 };
	dsn_each_field(msg, len, each_claim, &c);
	return c.found;
}

bool authres_quarantined(const char *authserv_id, const char *msg, size_t len)
{
	struct claim_ctx c = { authserv_id, msg, NULL, "dmarc=fail (p=quarantine, quarantined)", 0, false, NULL, 0 };
	dsn_each_field(msg, len, each_claim, &c);
	return c.found;
}

void authres_strip(const char *authserv_id, const char *msg, size_t len, struct buf *out)
{
	struct claim_ctx c = { authserv_id, msg, out, NULL, 0, false, NULL, 0 };
	dsn_each_field(msg, len, each_claim, &c);
	buf_append(out, msg + c.copied, len - c.copied);
}

bool authres_own(const char *authserv_id, const char *msg, size_t len, const char **val_r, size_t *vlen_r)
{
	struct claim_ctx c = { authserv_id, msg, NULL, NULL, 0, false, NULL, 0 };
	dsn_each_field(msg, len, each_claim, &c);
	*val_r = c.val;
	*vlen_r = c.vlen;
	return c.found;
}
