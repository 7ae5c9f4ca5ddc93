/* sieve_run.c - the Sieve interpreter: runs a checked script over one message and collects the actions (RFC 5228
 * and the extensions of SIEVE_EXTENSIONS), within the limits of actions, redirects, steps and time; a failure
 * leaves only the keep. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/util.h"
#include "store/mime.h"
#include "transport/sieve/sieve_int.h"
#include "transport/sieve/sieve_match.h"

#define MAX_VARS 256      /* variables of one script */
#define MAX_VAR_LEN 4096  /* bytes of one variable's value */
#define MAX_MATCH_VARS 10 /* ${0} .. ${9} */
#define DEFAULT_DUP_SECONDS (7 * 86400)

/* a list of strings, each malloc'ed */
struct vlist {
	struct buf *v;
	size_t n;
};

static void vl_add(struct vlist *l, const char *s, size_t len)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	struct buf *b = &l->v[l->n++];
	buf_init(b);
	buf_reserve(b, len + 1); /* data never NULL, even for "" */
	buf_append(b, s, len);
	b->data[b->len] = 0;
}

static void vl_free(struct vlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		buf_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct var {
	char *name;
	struct buf value;
};

struct vars {
	struct var *v;
	size_t n;
};

struct frame {
	const struct sieve_script *s;
	struct vars locals;
	struct vlist globals_declared;
	int returned;
	int variables; /* the script requires variables: strings are expanded */
};

struct run {
	const char *msg;
	size_t len;
	struct buf header; /* the header block as it is now (editheader changes it) */
	size_t body_off;
	int edited;
	struct mime_info *info; /* parsed on the first body test */
	const struct sieve_env *env;
	struct sieve_limits lim;
	struct sieve_result *res;
	struct buf *error_r;
	int rc;
	struct timespec start;
	int implicit_keep, stopped;
	struct buf flags; /* imap4flags' internal variable */
	struct vars globals;
	struct buf match[MAX_MATCH_VARS];
	struct vlist included; /* "location/name" of scripts included :once */
	unsigned redirects, depth;
	unsigned reject_line, keep_line;
};

static void fail(struct run *r, int rc, unsigned line, const char *fmt, ...) IX_PRINTF(4, 5);
static void fail(struct run *r, int rc, unsigned line, const char *fmt, ...)
{
	if (r->rc != IX_OK)
		return;
	r->rc = rc;
	if (r->error_r == NULL)
		return;
	buf_printf(r->error_r, "line %u: ", line);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(r->error_r, fmt, ap);
	va_end(ap);
}

/* counts work; fails the run past the step or time limit */
static int step(struct run *r, unsigned line, unsigned n)
{
	r->res->steps += n;
	if (r->rc != IX_OK)
		return 0;
	if (r->res->steps > r->lim.max_steps) {
		fail(r, IX_ELIMIT, line, "script ran too long (%u steps)", r->lim.max_steps);
		return 0;
	}
	if ((r->res->steps & 255) < n || n > 255) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (now.tv_sec - r->start.tv_sec) * 1000LL + (now.tv_nsec - r->start.tv_nsec) / 1000000;
		if (ms > r->lim.max_ms) {
			fail(r, IX_ELIMIT, line, "script ran too long (%u ms)", r->lim.max_ms);
			return 0;
		}
	}
	return 1;
}

/* ---- variables ---- */
static struct buf *var_find(struct vars *vs, const char *name, size_t len)
{
	for (size_t i = 0; i < vs->n; i++)
		if (strlen(vs->v[i].name) == len && strncasecmp(vs->v[i].name, name, len) == 0)
			return &vs->v[i].value;
	return NULL;
}

static int is_global(struct frame *f, const char *name, size_t len)
{
	if (len > 7 && strncasecmp(name, "global.", 7) == 0)
		return 1;
	for (size_t i = 0; i < f->globals_declared.n; i++)
		if (f->globals_declared.v[i].len == len && strncasecmp(f->globals_declared.v[i].data, name, len) == 0)
			return 1;
	return 0;
}

static struct buf *var_get(struct run *r, struct frame *f, const char *name, size_t len, int create)
{
	int global = is_global(f, name, len);
	if (len > 7 && strncasecmp(name, "global.", 7) == 0) {
		name += 7;
		len -= 7;
	}
	struct vars *vs = global ? &r->globals : &f->locals;
	struct buf *b = var_find(vs, name, len);
	if (b != NULL || !create)
		return b;
	if (vs->n >= MAX_VARS)
		return NULL;
	vs->v = xrealloc(vs->v, (vs->n + 1) * sizeof(*vs->v));
	vs->v[vs->n].name = xstrndup(name, len);
	buf_init(&vs->v[vs->n].value);
	return &vs->v[vs->n++].value;
}

static void vars_free(struct vars *vs)
{
	for (size_t i = 0; i < vs->n; i++) {
		free(vs->v[i].name);
		buf_free(&vs->v[i].value);
	}
	free(vs->v);
	vs->v = NULL;
	vs->n = 0;
}

static int valid_var_name(const char *p, size_t len, int *numeric_r)
{
	*numeric_r = 0;
	if (len == 0)
		return 0;
	if (isdigit((unsigned char)p[0])) {
		for (size_t i = 0; i < len; i++)
			if (!isdigit((unsigned char)p[i]))
				return 0;
		*numeric_r = 1;
		return 1;
	}
	int start = 1;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (c == '.' && !start) {
			start = 1;
			continue;
		}
		if (!(isalpha((unsigned char)c) || c == '_' || (!start && isdigit((unsigned char)c))))
			return 0;
		start = 0;
	}
	return !start;
}

/* appends s expanded (${name}, ${N}) when the script uses variables */
static void expand(struct run *r, struct frame *f, const char *s, size_t len, struct buf *out)
{
	if (!f->variables || memmem(s, len, "${", 2) == NULL) {
		buf_append(out, s, len);
		return;
	}
	size_t i = 0;
	while (i < len) {
		if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			const char *close = memchr(s + i + 2, '}', len - i - 2);
			int numeric;
			if (close != NULL && valid_var_name(s + i + 2, (size_t)(close - s - i - 2), &numeric)) {
				const char *name = s + i + 2;
				size_t nl = (size_t)(close - name);
				if (numeric) {
					unsigned long k = nl <= 2 ? strtoul(name, NULL, 10) : MAX_MATCH_VARS;
					if (k < MAX_MATCH_VARS)
						buf_append(out, r->match[k].data ? r->match[k].data : "",
							   r->match[k].len);
				} else {
					struct buf *v = var_get(r, f, name, nl, 0);
					if (v != NULL)
						buf_append(out, buf_cstr(v), v->len);
				}
				i = (size_t)(close - s) + 1;
				continue;
			}
		}
		buf_append_char(out, s[i++]);
	}
}

static char *expand_dup(struct run *r, struct frame *f, const struct sieve_arg *a)
{
	struct buf b = BUF_INIT;
	expand(r, f, a->strs[0].s, a->strs[0].len, &b);
	return buf_steal(&b);
}

static void expand_list(struct run *r, struct frame *f, const struct sieve_arg *a, struct vlist *out)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < a->count; i++) {
		buf_reset(&b);
		expand(r, f, a->strs[i].s, a->strs[i].len, &b);
		vl_add(out, buf_cstr(&b), b.len);
	}
	buf_free(&b);
}

/* ---- the header block ---- */
/* the next field of hdr from *pos: name and raw value (with folding) ranges; 0 at the end */
static int next_field(const char *h, size_t hl, size_t *pos, size_t *start_r, size_t *name_len_r, size_t *val_r,
		      size_t *end_r)
{
	size_t p = *pos;
	for (;;) {
		if (p >= hl || h[p] == '\r' || h[p] == '\n')
			return 0;
		size_t ls = p;
		const char *colon = NULL;
		size_t le = p;
		while (le < hl && h[le] != '\n')
			le++;
		colon = memchr(h + ls, ':', le - ls);
		size_t end = le < hl ? le + 1 : le;
		while (end < hl && (h[end] == ' ' || h[end] == '\t')) {
			while (end < hl && h[end] != '\n')
				end++;
			if (end < hl)
				end++;
		}
		p = end;
		if (colon == NULL || h[ls] == ' ' || h[ls] == '\t')
			continue;
		size_t nl = (size_t)(colon - (h + ls));
		while (nl > 0 && (h[ls + nl - 1] == ' ' || h[ls + nl - 1] == '\t'))
			nl--;
		*start_r = ls;
		*name_len_r = nl;
		*val_r = (size_t)(colon - h) + 1;
		*end_r = end;
		*pos = p;
		return 1;
	}
}

/* the unfolded, trimmed value h[a..b) appended to out; decoded (RFC 2047) when decode */
static void field_value(const char *h, size_t a, size_t b, int decode, struct buf *out)
{
	struct buf raw = BUF_INIT;
	for (size_t i = a; i < b; i++)
		if (h[i] != '\r' && h[i] != '\n')
			buf_append_char(&raw, h[i]);
	const char *v = buf_cstr(&raw);
	size_t l = raw.len;
	while (l > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		l--;
	}
	while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\t'))
		l--;
	if (decode)
		mime_decode_words(v, l, out);
	else
		buf_append(out, v, l);
	buf_free(&raw);
}

/* the values of the fields called name (each, or only the index-th: from 1, from the end when last) */
static void header_values(struct run *r, const char *name, long long index, int last, int decode, struct vlist *out)
{
	size_t pos = 0, st, nl, val, end;
	size_t count = 0, total = 0, nlen = strlen(name);
	const char *h = buf_cstr(&r->header);
	if (index > 0 && last) {
		while (next_field(h, r->header.len, &pos, &st, &nl, &val, &end))
			total += nl == nlen && strncasecmp(h + st, name, nl) == 0;
		if ((long long)total < index)
			return;
		index = (long long)total - index + 1;
		pos = 0;
	}
	struct buf v = BUF_INIT;
	while (next_field(h, r->header.len, &pos, &st, &nl, &val, &end)) {
		if (nl != nlen || strncasecmp(h + st, name, nl) != 0)
			continue;
		count++;
		if (index > 0 && (long long)count != index)
			continue;
		buf_reset(&v);
		field_value(h, val, end, decode, &v);
		vl_add(out, buf_cstr(&v), v.len);
	}
	buf_free(&v);
}

/* ---- matching ---- */
struct matcher {
	int type; /* 0 is, 1 contains, 2 matches, 3 count, 4 value */
	int cmp;
	int relop;
};

static void get_matcher(const struct sieve_node *n, int def_cmp, struct matcher *m)
{
	m->type = 0;
	m->cmp = def_cmp;
	m->relop = SIEVE_REL_EQ;
	if (sieve_tag(n, ":contains"))
		m->type = 1;
	else if (sieve_tag(n, ":matches"))
		m->type = 2;
	const struct sieve_arg *rel = sieve_tag(n, ":count");
	if (rel != NULL)
		m->type = 3;
	else if ((rel = sieve_tag(n, ":value")) != NULL)
		m->type = 4;
	if (rel != NULL)
		m->relop = sieve_relop(rel->strs[0].s);
	const struct sieve_arg *c = sieve_tag(n, ":comparator");
	if (c != NULL)
		m->cmp = strcmp(c->strs[0].s, "i;octet") == 0           ? SIEVE_CMP_OCTET
			 : strcmp(c->strs[0].s, "i;ascii-numeric") == 0 ? SIEVE_CMP_NUMERIC
									: SIEVE_CMP_CASEMAP;
}

/* 1 when a value matches a key; :matches sets the match variables on success */
static int match_values(struct run *r, struct frame *f, const struct matcher *m, const struct vlist *values,
			const struct vlist *keys, unsigned line)
{
	if (m->type == 3) {
		char num[32];
		int nl = snprintf(num, sizeof(num), "%zu", values->n);
		for (size_t k = 0; k < keys->n; k++)
			if (sieve_relop_holds(m->relop,
					      sieve_compare(m->cmp, num, (size_t)nl, keys->v[k].data, keys->v[k].len)))
				return 1;
		return 0;
	}
	for (size_t i = 0; i < values->n; i++) {
		const struct buf *v = &values->v[i];
		for (size_t k = 0; k < keys->n; k++) {
			const struct buf *key = &keys->v[k];
			if (!step(r, line, 1 + (unsigned)(v->len / 64)))
				return 0;
			int ok;
			switch (m->type) {
			case 1: ok = sieve_contains(m->cmp, v->data, v->len, key->data, key->len); break;
			case 2: {
				size_t caps[MAX_MATCH_VARS - 1][2];
				unsigned st = 0;
				ok = sieve_glob(key->data, key->len, v->data, v->len, m->cmp != SIEVE_CMP_OCTET, caps,
						MAX_MATCH_VARS - 1, &st);
				if (!step(r, line, st / 64))
					return 0;
				if (ok && f->variables) {
					size_t nw = 0;
					for (size_t j = 0; j < key->len; j++) {
						if (key->data[j] == '\\')
							j++;
						else if (key->data[j] == '*' || key->data[j] == '?')
							nw++;
					}
					for (size_t j = 0; j < MAX_MATCH_VARS; j++)
						buf_reset(&r->match[j]);
					buf_append(&r->match[0], v->data, v->len);
					for (size_t j = 0; j < nw && j < MAX_MATCH_VARS - 1; j++)
						buf_append(&r->match[j + 1], v->data + caps[j][0],
							   caps[j][1] - caps[j][0]);
				}
				break;
			}
			case 4:
				ok = sieve_relop_holds(m->relop,
						       sieve_compare(m->cmp, v->data, v->len, key->data, key->len));
				break;
			default: ok = sieve_compare(m->cmp, v->data, v->len, key->data, key->len) == 0;
			}
			if (ok)
				return 1;
		}
	}
	return 0;
}

/* ---- addresses ---- */
static void address_part(const struct sieve_node *n, const char *a, size_t len, struct vlist *out)
{
	const char *at = NULL;
	for (size_t i = len; i > 0; i--)
		if (a[i - 1] == '@') {
			at = a + i - 1;
			break;
		}
	size_t local = at ? (size_t)(at - a) : len;
	if (sieve_tag(n, ":localpart")) {
		vl_add(out, a, local);
	} else if (sieve_tag(n, ":domain")) {
		if (at)
			vl_add(out, at + 1, len - local - 1);
		else
			vl_add(out, "", 0);
	} else if (sieve_tag(n, ":user") || sieve_tag(n, ":detail")) {
		const char *plus = memchr(a, '+', local);
		if (sieve_tag(n, ":user"))
			vl_add(out, a, plus ? (size_t)(plus - a) : local);
		else if (plus != NULL) /* no separator: :detail matches nothing (RFC 5233 4) */
			vl_add(out, plus + 1, local - (size_t)(plus - a) - 1);
	} else
		vl_add(out, a, len);
}

/* the addresses of a header value ("name <a@b>" lines from mime_addr_text) */
static void addresses_of(const char *value, size_t len, struct vlist *out)
{
	struct buf lines = BUF_INIT;
	mime_addr_text(value, len, &lines);
	const char *p = buf_cstr(&lines), *e = p + lines.len;
	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *le = nl ? nl : e;
		const char *lt = NULL;
		for (const char *q = le; q > p; q--)
			if (q[-1] == '<') {
				lt = q - 1;
				break;
			}
		if (lt != NULL) {
			const char *gt = memchr(lt, '>', (size_t)(le - lt));
			if (gt != NULL)
				vl_add(out, lt + 1, (size_t)(gt - lt - 1));
		}
		p = nl ? nl + 1 : e;
	}
	buf_free(&lines);
}

/* ---- dates (RFC 5260) ---- */
static int parse_zone(const char *z, int *min_r)
{
	if (strlen(z) != 5 || (z[0] != '+' && z[0] != '-'))
		return -1;
	for (int i = 1; i < 5; i++)
		if (!isdigit((unsigned char)z[i]))
			return -1;
	int m = ((z[1] - '0') * 10 + (z[2] - '0')) * 60 + (z[3] - '0') * 10 + (z[4] - '0');
	*min_r = z[0] == '-' ? -m : m;
	return 0;
}

static int date_part(long long t, int zone, const char *part, struct buf *out)
{
	time_t tt = (time_t)(t + zone * 60LL);
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return -1;
	int az = zone < 0 ? -zone : zone;
	char zs[8];
	snprintf(zs, sizeof(zs), "%c%02d%02d", zone < 0 ? '-' : '+', az / 60 % 100, az % 60);
	int y = tm.tm_year + 1900;
	if (strcasecmp(part, "year") == 0)
		buf_printf(out, "%04d", y);
	else if (strcasecmp(part, "month") == 0)
		buf_printf(out, "%02d", tm.tm_mon + 1);
	else if (strcasecmp(part, "day") == 0)
		buf_printf(out, "%02d", tm.tm_mday);
	else if (strcasecmp(part, "date") == 0)
		buf_printf(out, "%04d-%02d-%02d", y, tm.tm_mon + 1, tm.tm_mday);
	else if (strcasecmp(part, "julian") == 0)
		buf_printf(out, "%lld", (long long)(tt >= 0 ? tt / 86400 : (tt - 86399) / 86400) + 40587);
	else if (strcasecmp(part, "hour") == 0)
		buf_printf(out, "%02d", tm.tm_hour);
	else if (strcasecmp(part, "minute") == 0)
		buf_printf(out, "%02d", tm.tm_min);
	else if (strcasecmp(part, "second") == 0)
		buf_printf(out, "%02d", tm.tm_sec);
	else if (strcasecmp(part, "time") == 0)
		buf_printf(out, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
	else if (strcasecmp(part, "iso8601") == 0)
		buf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			   tm.tm_min, tm.tm_sec, zone < 0 ? '-' : '+', az / 60 % 100, az % 60);
	else if (strcasecmp(part, "std11") == 0) {
		static const char days[] = "SunMonTueWedThuFriSat", months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
		buf_printf(out, "%.3s, %02d %.3s %04d %02d:%02d:%02d %s", days + tm.tm_wday * 3, tm.tm_mday,
			   months + tm.tm_mon * 3, y, tm.tm_hour, tm.tm_min, tm.tm_sec, zs);
	} else if (strcasecmp(part, "zone") == 0)
		buf_append_str(out, zs);
	else if (strcasecmp(part, "weekday") == 0)
		buf_printf(out, "%d", tm.tm_wday);
	else
		return -1;
	return 0;
}

/* ---- tests ---- */
static int eval(struct run *r, struct frame *f, const struct sieve_node *t);

static int test_keys(struct run *r, struct frame *f, const struct sieve_node *t, const struct vlist *values,
		     const struct sieve_arg *keyarg, int def_cmp)
{
	struct matcher m;
	get_matcher(t, def_cmp, &m);
	struct vlist keys = { 0 };
	expand_list(r, f, keyarg, &keys);
	int ok = match_values(r, f, &m, values, &keys, t->line);
	vl_free(&keys);
	return ok;
}

static long long index_of(const struct sieve_node *t)
{
	const struct sieve_arg *a = sieve_tag(t, ":index");
	return a ? (long long)(a->number > 1000000 ? 1000000 : a->number) : 0;
}

static int test_header_like(struct run *r, struct frame *f, const struct sieve_node *t)
{
	int is_addr = strcmp(t->name, "address") == 0, is_env = strcmp(t->name, "envelope") == 0;
	struct vlist names = { 0 }, values = { 0 };
	expand_list(r, f, sieve_pos(t, 0), &names);
	long long idx = index_of(t);
	int last = sieve_tag(t, ":last") != NULL;
	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i].data;
		if (is_env) {
			const char *a = NULL;
			if (strcasecmp(name, "from") == 0)
				a = r->env->env_from ? r->env->env_from : "";
			else if (strcasecmp(name, "to") == 0)
				a = r->env->env_to ? r->env->env_to : "";
			if (a != NULL)
				address_part(t, a, strlen(a), &values);
		} else if (is_addr) {
			struct vlist raw = { 0 }, addrs = { 0 };
			header_values(r, name, idx, last, 0, &raw);
			for (size_t j = 0; j < raw.n; j++)
				addresses_of(raw.v[j].data, raw.v[j].len, &addrs);
			for (size_t j = 0; j < addrs.n; j++)
				address_part(t, addrs.v[j].data, addrs.v[j].len, &values);
			vl_free(&raw);
			vl_free(&addrs);
		} else
			header_values(r, name, idx, last, 1, &values);
	}
	int ok = test_keys(r, f, t, &values, sieve_pos(t, 1), SIEVE_CMP_CASEMAP);
	vl_free(&names);
	vl_free(&values);
	return ok;
}

static void split_flags(const char *s, size_t len, struct vlist *out)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		size_t st = i;
		while (i < len && s[i] != ' ')
			i++;
		if (i > st) {
			int dup = 0;
			for (size_t k = 0; k < out->n; k++)
				dup |= out->v[k].len == i - st && strncasecmp(out->v[k].data, s + st, i - st) == 0;
			if (!dup)
				vl_add(out, s + st, i - st);
		}
	}
}

static int test_body(struct run *r, struct frame *f, const struct sieve_node *t)
{
	struct vlist values = { 0 };
	if (sieve_tag(t, ":raw")) {
		vl_add(&values, r->msg + r->body_off, r->len - r->body_off);
	} else {
		if (r->info == NULL && mime_parse(r->msg, r->len, NULL, &r->info, NULL) != IX_OK) {
			fail(r, IX_ELIMIT, t->line, "message too complex for body");
			return 0;
		}
		struct vlist types = { 0 };
		const struct sieve_arg *ct = sieve_tag(t, ":content");
		if (ct != NULL)
			expand_list(r, f, ct, &types);
		else
			vl_add(&types, "text", 4);
		struct buf text = BUF_INIT;
		for (size_t i = 0; i < r->info->part_count; i++) {
			const struct mime_part *p = &r->info->parts[i];
			if (p->is_multipart || p->is_message_rfc822)
				continue;
			int want = 0;
			for (size_t k = 0; k < types.n && !want; k++) {
				const char *ty = types.v[k].data, *slash = strchr(ty, '/');
				if (ty[0] == 0)
					want = 1;
				else if (slash == NULL)
					want = strcasecmp(ty, p->type) == 0;
				else
					want = (size_t)(slash - ty) == strlen(p->type) &&
					       strncasecmp(ty, p->type, (size_t)(slash - ty)) == 0 &&
					       strcasecmp(slash + 1, p->subtype) == 0;
			}
			if (!want)
				continue;
			buf_reset(&text);
			mime_decode_text(p, r->msg, &text);
			vl_add(&values, buf_cstr(&text), text.len);
		}
		buf_free(&text);
		vl_free(&types);
	}
	int ok = test_keys(r, f, t, &values, sieve_pos(t, 0), SIEVE_CMP_CASEMAP);
	vl_free(&values);
	return ok;
}

static int test_date(struct run *r, struct frame *f, const struct sieve_node *t, int current)
{
	size_t p = 0;
	char *header = current ? NULL : expand_dup(r, f, sieve_pos(t, p++));
	char *part = expand_dup(r, f, sieve_pos(t, p++));
	const struct sieve_arg *keys = sieve_pos(t, p);
	long long when = r->env->now;
	int zone = r->env->zone, ok = 0, have = 1;
	if (!current) {
		struct vlist v = { 0 };
		header_values(r, header, index_of(t) ? index_of(t) : 1, sieve_tag(t, ":last") != NULL, 0, &v);
		int hz = 0;
		have = v.n > 0 && mime_parse_date(v.v[0].data, &when, &hz) == 0;
		if (sieve_tag(t, ":originalzone"))
			zone = hz;
		vl_free(&v);
	}
	const struct sieve_arg *z = sieve_tag(t, ":zone");
	if (z != NULL && parse_zone(z->strs[0].s, &zone) != 0)
		have = 0; /* RFC 5260 2.4.1: an unknown zone makes the test false */
	if (have) {
		struct buf val = BUF_INIT;
		if (date_part(when, zone, part, &val) != 0)
			fail(r, IX_EINVAL, t->line, "unknown date part \"%s\"", part);
		else {
			struct vlist values = { 0 };
			vl_add(&values, buf_cstr(&val), val.len);
			ok = test_keys(r, f, t, &values, keys, SIEVE_CMP_CASEMAP);
			vl_free(&values);
		}
		buf_free(&val);
	}
	free(header);
	free(part);
	return ok;
}

static int test_duplicate(struct run *r, struct frame *f, const struct sieve_node *t)
{
	struct buf key = BUF_INIT;
	const struct sieve_arg *h = sieve_tag(t, ":handle");
	if (h != NULL)
		expand(r, f, h->strs[0].s, h->strs[0].len, &key);
	buf_append(&key, "\0", 1);
	const struct sieve_arg *u = sieve_tag(t, ":uniqueid"), *hd = sieve_tag(t, ":header");
	int have = 1;
	if (u != NULL)
		expand(r, f, u->strs[0].s, u->strs[0].len, &key);
	else {
		char *name = hd ? expand_dup(r, f, hd) : xstrdup("message-id");
		struct vlist v = { 0 };
		header_values(r, name, 1, 0, 0, &v);
		have = v.n > 0;
		if (have)
			buf_append(&key, v.v[0].data, v.v[0].len);
		vl_free(&v);
		free(name);
	}
	int seen = 0;
	if (have && r->env->seen != NULL) {
		const struct sieve_arg *sec = sieve_tag(t, ":seconds");
		long long secs = sec ? (long long)(sec->number > (1ULL << 40) ? (1ULL << 40) : sec->number)
				     : DEFAULT_DUP_SECONDS;
		buf_append_str(&key, "\0dup");
		seen = r->env->seen(r->env->ctx, buf_cstr(&key), key.len, secs, 0);
	}
	buf_free(&key);
	return seen;
}

static int eval(struct run *r, struct frame *f, const struct sieve_node *t)
{
	if (!step(r, t->line, 1))
		return 0;
	const char *n = t->name;
	if (strcmp(n, "true") == 0)
		return 1;
	if (strcmp(n, "false") == 0)
		return 0;
	if (strcmp(n, "not") == 0)
		return !eval(r, f, &t->tests[0]) && r->rc == IX_OK;
	if (strcmp(n, "allof") == 0 || strcmp(n, "anyof") == 0) {
		int all = n[1] == 'l';
		for (size_t i = 0; i < t->test_count; i++) {
			int v = eval(r, f, &t->tests[i]);
			if (r->rc != IX_OK)
				return 0;
			if (all && !v)
				return 0;
			if (!all && v)
				return 1;
		}
		return all;
	}
	if (strcmp(n, "header") == 0 || strcmp(n, "address") == 0 || strcmp(n, "envelope") == 0)
		return test_header_like(r, f, t);
	if (strcmp(n, "exists") == 0 || strcmp(n, "mailboxexists") == 0) {
		struct vlist names = { 0 };
		expand_list(r, f, sieve_pos(t, 0), &names);
		int ok = 1;
		for (size_t i = 0; i < names.n && ok; i++) {
			if (n[0] == 'e') {
				struct vlist v = { 0 };
				header_values(r, names.v[i].data, 1, 0, 0, &v);
				ok = v.n > 0;
				vl_free(&v);
			} else if (r->env->mailbox_exists != NULL)
				ok = r->env->mailbox_exists(r->env->ctx, names.v[i].data);
			else
				ok = strcasecmp(names.v[i].data, "INBOX") == 0;
		}
		vl_free(&names);
		return ok;
	}
	if (strcmp(n, "size") == 0) {
		uint64_t lim = sieve_pos(t, 0)->number;
		return sieve_tag(t, ":over") ? r->len > lim : r->len < lim;
	}
	if (strcmp(n, "body") == 0)
		return test_body(r, f, t);
	if (strcmp(n, "string") == 0) {
		struct vlist values = { 0 };
		expand_list(r, f, sieve_pos(t, 0), &values);
		/* RFC 5229 5: an empty source string counts as no value for :count */
		if (sieve_tag(t, ":count")) {
			struct vlist ne = { 0 };
			for (size_t i = 0; i < values.n; i++)
				if (values.v[i].len)
					vl_add(&ne, values.v[i].data, values.v[i].len);
			vl_free(&values);
			values = ne;
		}
		int ok = test_keys(r, f, t, &values, sieve_pos(t, 1), SIEVE_CMP_CASEMAP);
		vl_free(&values);
		return ok;
	}
	if (strcmp(n, "date") == 0 || strcmp(n, "currentdate") == 0)
		return test_date(r, f, t, n[0] == 'c');
	if (strcmp(n, "hasflag") == 0) {
		struct vlist values = { 0 };
		const struct sieve_arg *keys = sieve_pos(t, 1) ? sieve_pos(t, 1) : sieve_pos(t, 0);
		if (sieve_pos(t, 1) != NULL) {
			struct vlist names = { 0 };
			expand_list(r, f, sieve_pos(t, 0), &names);
			for (size_t i = 0; i < names.n; i++) {
				struct buf *v = var_get(r, f, names.v[i].data, names.v[i].len, 0);
				if (v != NULL)
					split_flags(buf_cstr(v), v->len, &values);
			}
			vl_free(&names);
		} else
			split_flags(buf_cstr(&r->flags), r->flags.len, &values);
		struct vlist kl = { 0 }, k2 = { 0 };
		expand_list(r, f, keys, &kl);
		for (size_t i = 0; i < kl.n; i++)
			split_flags(kl.v[i].data, kl.v[i].len, &k2);
		struct matcher m;
		get_matcher(t, SIEVE_CMP_CASEMAP, &m);
		int ok = match_values(r, f, &m, &values, &k2, t->line);
		vl_free(&kl);
		vl_free(&k2);
		vl_free(&values);
		return ok;
	}
	if (strcmp(n, "duplicate") == 0)
		return test_duplicate(r, f, t);
	fail(r, IX_EINVAL, t->line, "unknown test %s", n);
	return 0;
}

/* ---- actions ---- */
static struct sieve_action *add_action(struct run *r, enum sieve_action_type type, unsigned line)
{
	if (r->res->count >= r->lim.max_actions) {
		fail(r, IX_ELIMIT, line, "too many actions (limit %u)", r->lim.max_actions);
		return NULL;
	}
	r->res->actions = xrealloc(r->res->actions, (r->res->count + 1) * sizeof(*r->res->actions));
	struct sieve_action *a = &r->res->actions[r->res->count++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->line = line;
	return a;
}

static char *flags_of(struct run *r, struct frame *f, const struct sieve_node *c)
{
	const struct sieve_arg *fl = sieve_tag(c, ":flags");
	struct vlist l = { 0 }, split = { 0 };
	if (fl != NULL) {
		expand_list(r, f, fl, &l);
		for (size_t i = 0; i < l.n; i++)
			split_flags(l.v[i].data, l.v[i].len, &split);
	} else
		split_flags(buf_cstr(&r->flags), r->flags.len, &split);
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < split.n; i++) {
		if (i)
			buf_append_char(&out, ' ');
		buf_append(&out, split.v[i].data, split.v[i].len);
	}
	vl_free(&l);
	vl_free(&split);
	return buf_steal(&out);
}

static void do_flags(struct run *r, struct frame *f, const struct sieve_node *c)
{
	struct buf *target = &r->flags;
	const struct sieve_arg *list = sieve_pos(c, 0);
	if (sieve_pos(c, 1) != NULL) {
		char *name = expand_dup(r, f, list);
		int numeric;
		if (!valid_var_name(name, strlen(name), &numeric) || numeric)
			fail(r, IX_EINVAL, c->line, "%s: bad variable name \"%s\"", c->name, name);
		target = var_get(r, f, name, strlen(name), 1);
		free(name);
		list = sieve_pos(c, 1);
		if (target == NULL) {
			fail(r, IX_ELIMIT, c->line, "too many variables");
			return;
		}
	}
	struct vlist cur = { 0 }, given = { 0 }, gsplit = { 0 };
	expand_list(r, f, list, &given);
	for (size_t i = 0; i < given.n; i++)
		split_flags(given.v[i].data, given.v[i].len, &gsplit);
	if (c->name[0] != 's')
		split_flags(buf_cstr(target), target->len, &cur);
	struct buf out = BUF_INIT;
	int remove = c->name[0] == 'r';
	for (size_t i = 0; i < cur.n; i++) {
		int drop = 0;
		for (size_t k = 0; remove && k < gsplit.n; k++)
			drop |= strcasecmp(cur.v[i].data, gsplit.v[k].data) == 0;
		if (!drop) {
			if (out.len)
				buf_append_char(&out, ' ');
			buf_append(&out, cur.v[i].data, cur.v[i].len);
		}
	}
	for (size_t k = 0; !remove && k < gsplit.n; k++) {
		int dup = 0;
		for (size_t i = 0; i < cur.n; i++)
			dup |= strcasecmp(cur.v[i].data, gsplit.v[k].data) == 0;
		if (!dup) {
			if (out.len)
				buf_append_char(&out, ' ');
			buf_append(&out, gsplit.v[k].data, gsplit.v[k].len);
		}
	}
	buf_reset(target);
	buf_append(target, buf_cstr(&out), out.len);
	buf_free(&out);
	vl_free(&cur);
	vl_free(&given);
	vl_free(&gsplit);
}

static void do_set(struct run *r, struct frame *f, const struct sieve_node *c)
{
	char *name = expand_dup(r, f, sieve_pos(c, 0));
	int numeric;
	if (!valid_var_name(name, strlen(name), &numeric) || numeric) {
		fail(r, IX_EINVAL, c->line, "set: bad variable name \"%s\"", name);
		free(name);
		return;
	}
	struct buf v = BUF_INIT;
	buf_reserve(&v, 1); /* data never NULL */
	v.data[0] = 0;
	const struct sieve_arg *val = sieve_pos(c, 1);
	expand(r, f, val->strs[0].s, val->strs[0].len, &v);
	if (sieve_tag(c, ":lower") || sieve_tag(c, ":upper"))
		for (size_t i = 0; i < v.len; i++)
			v.data[i] = (char)(sieve_tag(c, ":lower") ? tolower((unsigned char)v.data[i])
								  : toupper((unsigned char)v.data[i]));
	if (v.len && sieve_tag(c, ":lowerfirst"))
		v.data[0] = (char)tolower((unsigned char)v.data[0]);
	if (v.len && sieve_tag(c, ":upperfirst"))
		v.data[0] = (char)toupper((unsigned char)v.data[0]);
	if (sieve_tag(c, ":quotewildcard")) {
		struct buf q = BUF_INIT;
		for (size_t i = 0; i < v.len; i++) {
			if (v.data[i] == '*' || v.data[i] == '?' || v.data[i] == '\\')
				buf_append_char(&q, '\\');
			buf_append_char(&q, v.data[i]);
		}
		buf_free(&v);
		v = q;
	}
	if (sieve_tag(c, ":length")) {
		/* characters, not bytes: UTF-8 continuation bytes do not count */
		size_t chars = 0;
		for (size_t i = 0; i < v.len; i++)
			chars += ((unsigned char)v.data[i] & 0xc0) != 0x80;
		buf_reset(&v);
		buf_printf(&v, "%zu", chars);
	}
	if (v.len > MAX_VAR_LEN)
		v.len = MAX_VAR_LEN;
	struct buf *target = var_get(r, f, name, strlen(name), 1);
	if (target == NULL)
		fail(r, IX_ELIMIT, c->line, "too many variables");
	else {
		buf_reset(target);
		buf_append(target, buf_cstr(&v), v.len);
	}
	buf_free(&v);
	free(name);
}

static int field_name_ok(const char *s)
{
	if (*s == 0)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 33 || (unsigned char)*s > 126 || *s == ':')
			return 0;
	return 1;
}

static void do_addheader(struct run *r, struct frame *f, const struct sieve_node *c)
{
	char *name = expand_dup(r, f, sieve_pos(c, 0)), *value = expand_dup(r, f, sieve_pos(c, 1));
	if (!field_name_ok(name)) {
		fail(r, IX_EINVAL, c->line, "addheader: bad field name \"%s\"", name);
	} else {
		struct buf field = BUF_INIT;
		buf_printf(&field, "%s: ", name);
		for (const char *p = value; *p; p++)
			if (*p != '\r' && *p != '\n')
				buf_append_char(&field, *p);
		buf_append_str(&field, "\r\n");
		struct buf nh = BUF_INIT;
		if (sieve_tag(c, ":last")) {
			size_t pos = 0, st, nl, val, end, stop = 0;
			const char *h = buf_cstr(&r->header);
			while (next_field(h, r->header.len, &pos, &st, &nl, &val, &end))
				stop = end;
			buf_append(&nh, h, stop);
			buf_append(&nh, buf_cstr(&field), field.len);
			buf_append(&nh, h + stop, r->header.len - stop);
		} else {
			buf_append(&nh, buf_cstr(&field), field.len);
			buf_append(&nh, buf_cstr(&r->header), r->header.len);
		}
		buf_free(&r->header);
		r->header = nh;
		r->edited = 1;
		buf_free(&field);
	}
	free(name);
	free(value);
}

static void do_deleteheader(struct run *r, struct frame *f, const struct sieve_node *c)
{
	char *name = expand_dup(r, f, sieve_pos(c, 0));
	const struct sieve_arg *pats = sieve_pos(c, 1);
	struct vlist keys = { 0 };
	if (pats != NULL)
		expand_list(r, f, pats, &keys);
	struct matcher m;
	get_matcher(c, SIEVE_CMP_CASEMAP, &m);
	long long idx = index_of(c), total = 0, count = 0;
	size_t pos = 0, st, nl, val, end, nlen = strlen(name);
	const char *h = buf_cstr(&r->header);
	if (idx > 0 && sieve_tag(c, ":last")) {
		while (next_field(h, r->header.len, &pos, &st, &nl, &val, &end))
			total += nl == nlen && strncasecmp(h + st, name, nl) == 0;
		idx = total - idx + 1;
		pos = 0;
	}
	struct buf nh = BUF_INIT, v = BUF_INIT;
	size_t kept = 0;
	while (next_field(h, r->header.len, &pos, &st, &nl, &val, &end)) {
		int del = 0;
		if (nl == nlen && strncasecmp(h + st, name, nl) == 0) {
			count++;
			del = idx <= 0 || count == idx;
			if (del && pats != NULL) {
				buf_reset(&v);
				field_value(h, val, end, 1, &v);
				struct vlist one = { 0 };
				vl_add(&one, buf_cstr(&v), v.len);
				del = match_values(r, f, &m, &one, &keys, c->line);
				vl_free(&one);
			}
		}
		buf_append(&nh, h + kept, st - kept);
		if (!del)
			buf_append(&nh, h + st, end - st);
		kept = end;
	}
	buf_append(&nh, h + kept, r->header.len - kept);
	if (nh.len != r->header.len) {
		r->edited = 1;
		buf_free(&r->header);
		r->header = nh;
	} else
		buf_free(&nh);
	buf_free(&v);
	vl_free(&keys);
	free(name);
}

static int addr_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	if (at == NULL || at == a || at[1] == 0)
		return 0;
	for (const char *p = a; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || (unsigned char)*p == 0x7f)
			return 0;
	return 1;
}

static int addr_in(const char *a, const struct vlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(a, l->v[i].data) == 0)
			return 1;
	return 0;
}

int sieve_header_is_auto(const char *header, size_t len)
{
	size_t pos = 0, st, nl, val, end;
	struct buf v = BUF_INIT;
	int is_auto = 0;
	while (!is_auto && next_field(header, len, &pos, &st, &nl, &val, &end)) {
		const char *name = header + st;
		buf_reset(&v);
		if (nl > 5 && strncasecmp(name, "list-", 5) == 0)
			is_auto = 1;
		else if (nl == 14 && strncasecmp(name, "auto-submitted", nl) == 0) {
			field_value(header, val, end, 0, &v);
			const char *s = buf_cstr(&v);
			is_auto = !(strncasecmp(s, "no", 2) == 0 && (s[2] == 0 || s[2] == ';' || s[2] == ' '));
		} else if (nl == 10 && strncasecmp(name, "precedence", nl) == 0) {
			field_value(header, val, end, 0, &v);
			const char *s = buf_cstr(&v);
			is_auto = strcasecmp(s, "bulk") == 0 || strcasecmp(s, "list") == 0 ||
				  strcasecmp(s, "junk") == 0;
		} else if ((nl == 13 && strncasecmp(name, "x-auto-suppress", nl) == 0) ||
			   (nl == 24 && strncasecmp(name, "x-auto-response-suppress", nl) == 0)) {
			field_value(header, val, end, 0, &v);
			const char *s = buf_cstr(&v);
			is_auto = strcasestr(s, "oof") != NULL || strcasestr(s, "all") != NULL;
		}
	}
	buf_free(&v);
	return is_auto;
}

static void do_vacation(struct run *r, struct frame *f, const struct sieve_node *c)
{
	const char *sender = r->env->env_from ? r->env->env_from : "";
	struct vlist mine = { 0 };
	if (r->env->env_to && *r->env->env_to)
		vl_add(&mine, r->env->env_to, strlen(r->env->env_to));
	for (const char *const *a = r->env->user_addresses; a != NULL && *a != NULL; a++)
		vl_add(&mine, *a, strlen(*a));
	const struct sieve_arg *addrs = sieve_tag(c, ":addresses");
	if (addrs != NULL)
		expand_list(r, f, addrs, &mine);
	char *from = sieve_tag(c, ":from") ? expand_dup(r, f, sieve_tag(c, ":from")) : NULL;
	int reply = addr_ok(sender) && !addr_in(sender, &mine) &&
		    !sieve_header_is_auto(buf_cstr(&r->header), r->header.len);
	if (reply) {
		/* RFC 5230 4.6: not to owner-*, *-request or MAILER-DAEMON */
		const char *at = strrchr(sender, '@');
		size_t ll = (size_t)(at - sender);
		if ((ll >= 6 && strncasecmp(sender, "owner-", 6) == 0) ||
		    (ll >= 8 && strncasecmp(at - 8, "-request", 8) == 0) ||
		    (ll == 13 && strncasecmp(sender, "mailer-daemon", 13) == 0))
			reply = 0;
	}
	if (reply) {
		/* RFC 5230 4.5: only when one of the user's addresses is a recipient in the header */
		static const char *const fields[] = { "to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc" };
		struct vlist raw = { 0 }, found = { 0 };
		for (size_t i = 0; i < 6; i++)
			header_values(r, fields[i], 0, 0, 0, &raw);
		for (size_t i = 0; i < raw.n; i++)
			addresses_of(raw.v[i].data, raw.v[i].len, &found);
		reply = 0;
		for (size_t i = 0; i < found.n && !reply; i++)
			reply = addr_in(found.v[i].data, &mine);
		vl_free(&raw);
		vl_free(&found);
	}
	char *reason = expand_dup(r, f, sieve_pos(c, 0));
	if (reply && r->env->seen != NULL) {
		long long secs = r->env->vacation_seconds > 0 ? r->env->vacation_seconds : 7 * 86400LL;
		const struct sieve_arg *d = sieve_tag(c, ":days"), *s = sieve_tag(c, ":seconds");
		if (d != NULL)
			secs = (long long)(d->number < 1 ? 1 : d->number > 3650 ? 3650 : d->number) * 86400;
		else if (s != NULL)
			secs = (long long)(s->number > 3650ULL * 86400 ? 3650ULL * 86400 : s->number);
		struct buf key = BUF_INIT;
		buf_append_str(&key, "vacation");
		buf_append(&key, "\0", 1);
		const struct sieve_arg *h = sieve_tag(c, ":handle");
		if (h != NULL)
			expand(r, f, h->strs[0].s, h->strs[0].len, &key);
		else
			buf_append_str(&key, reason);
		buf_append(&key, "\0", 1);
		for (const char *p = sender; *p; p++)
			buf_append_char(&key, (char)tolower((unsigned char)*p));
		reply = secs == 0 || !r->env->seen(r->env->ctx, buf_cstr(&key), key.len, secs, 0);
		buf_free(&key);
	}
	if (reply) {
		struct sieve_action *a = add_action(r, SIEVE_VACATION, c->line);
		if (a != NULL) {
			a->address = xstrdup(sender);
			a->text = reason;
			reason = NULL;
			a->from = from;
			from = NULL;
			a->mime = sieve_tag(c, ":mime") != NULL;
			if (sieve_tag(c, ":subject"))
				a->subject = expand_dup(r, f, sieve_tag(c, ":subject"));
			else {
				struct vlist subj = { 0 };
				header_values(r, "subject", 1, 0, 1, &subj);
				a->subject = xasprintf("Auto: %s", subj.n ? subj.v[0].data : "");
				vl_free(&subj);
			}
		}
	}
	free(reason);
	free(from);
	vl_free(&mine);
}

static void exec_list(struct run *r, struct frame *f, const struct sieve_node *cmds, size_t count);

static void do_include(struct run *r, const struct sieve_node *c)
{
	const char *loc = sieve_tag(c, ":global") ? "global" : "personal";
	const char *name = sieve_pos(c, 0)->strs[0].s;
	if (strchr(name, '/') != NULL || name[0] == 0) {
		fail(r, IX_EINVAL, c->line, "include: bad script name \"%s\"", name);
		return;
	}
	char *id = xasprintf("%s/%s", loc, name);
	if (sieve_tag(c, ":once") && addr_in(id, &r->included)) {
		free(id);
		return;
	}
	vl_add(&r->included, id, strlen(id));
	free(id);
	if (r->depth >= r->lim.max_include) {
		fail(r, IX_ELIMIT, c->line, "include: nested deeper than %u", r->lim.max_include);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	if (r->env->include == NULL || r->env->include(r->env->ctx, loc, name, &text, &len) != 0) {
		if (!sieve_tag(c, ":optional"))
			fail(r, IX_EINVAL, c->line, "include: no %s script \"%s\"", loc, name);
		return;
	}
	struct sieve_script *s;
	struct buf err = BUF_INIT;
	int rc = sieve_parse(text, len, 0, &s, &err);
	free(text);
	if (rc != IX_OK) {
		fail(r, rc, c->line, "include \"%s\": %s", name, buf_cstr(&err));
		buf_free(&err);
		return;
	}
	buf_free(&err);
	struct frame sub = { .s = s, .variables = sieve_requires(s, "variables") };
	r->depth++;
	exec_list(r, &sub, s->cmds, s->count);
	r->depth--;
	vars_free(&sub.locals);
	vl_free(&sub.globals_declared);
	sieve_free(s);
}

static void exec_one(struct run *r, struct frame *f, const struct sieve_node *c)
{
	const char *n = c->name;
	if (strcmp(n, "require") == 0)
		return;
	if (strcmp(n, "stop") == 0) {
		r->stopped = 1;
	} else if (strcmp(n, "return") == 0) {
		f->returned = 1;
	} else if (strcmp(n, "keep") == 0) {
		int dup = 0; /* RFC 5228 2.10.3: a second keep is the same action */
		for (size_t i = 0; i < r->res->count; i++)
			dup |= r->res->actions[i].type == SIEVE_KEEP;
		struct sieve_action *a = dup ? NULL : add_action(r, SIEVE_KEEP, c->line);
		if (a != NULL)
			a->flags = flags_of(r, f, c);
		r->implicit_keep = 0;
		r->keep_line = c->line;
	} else if (strcmp(n, "discard") == 0) {
		r->implicit_keep = 0;
	} else if (strcmp(n, "redirect") == 0) {
		char *to = expand_dup(r, f, sieve_pos(c, 0));
		if (!addr_ok(to))
			fail(r, IX_EINVAL, c->line, "redirect: bad address \"%s\"", to);
		else if (++r->redirects > r->lim.max_redirects)
			fail(r, IX_ELIMIT, c->line, "too many redirects (limit %u)", r->lim.max_redirects);
		else {
			int dup = 0;
			for (size_t i = 0; i < r->res->count; i++)
				dup |= r->res->actions[i].type == SIEVE_REDIRECT &&
				       strcasecmp(r->res->actions[i].address, to) == 0;
			struct sieve_action *a = dup ? NULL : add_action(r, SIEVE_REDIRECT, c->line);
			if (a != NULL) {
				a->address = to;
				to = NULL;
			}
			if (!sieve_tag(c, ":copy"))
				r->implicit_keep = 0;
			r->keep_line = c->line;
		}
		free(to);
	} else if (strcmp(n, "fileinto") == 0) {
		char *folder = expand_dup(r, f, sieve_pos(c, 0));
		if (folder[0] == 0 || memchr(folder, '\r', strlen(folder)) || strchr(folder, '\n')) {
			fail(r, IX_EINVAL, c->line, "fileinto: bad folder name");
			free(folder);
			return;
		}
		struct sieve_action *a = add_action(r, SIEVE_FILEINTO, c->line);
		if (a != NULL) {
			a->folder = folder;
			a->flags = flags_of(r, f, c);
			a->create = sieve_tag(c, ":create") != NULL;
		} else
			free(folder);
		if (!sieve_tag(c, ":copy"))
			r->implicit_keep = 0;
		r->keep_line = c->line;
	} else if (strcmp(n, "reject") == 0 || strcmp(n, "ereject") == 0) {
		struct sieve_action *a = add_action(r, n[0] == 'r' ? SIEVE_REJECT : SIEVE_EREJECT, c->line);
		if (a != NULL)
			a->text = expand_dup(r, f, sieve_pos(c, 0));
		r->implicit_keep = 0;
		r->reject_line = c->line;
	} else if (strcmp(n, "vacation") == 0) {
		do_vacation(r, f, c);
	} else if (strcmp(n, "setflag") == 0 || strcmp(n, "addflag") == 0 || strcmp(n, "removeflag") == 0) {
		do_flags(r, f, c);
	} else if (strcmp(n, "set") == 0) {
		do_set(r, f, c);
	} else if (strcmp(n, "addheader") == 0) {
		do_addheader(r, f, c);
	} else if (strcmp(n, "deleteheader") == 0) {
		do_deleteheader(r, f, c);
	} else if (strcmp(n, "include") == 0) {
		do_include(r, c);
	} else if (strcmp(n, "global") == 0) {
		expand_list(r, f, sieve_pos(c, 0), &f->globals_declared);
	} else
		fail(r, IX_EINVAL, c->line, "unknown command %s", n);
}

static void exec_list(struct run *r, struct frame *f, const struct sieve_node *cmds, size_t count)
{
	int chain_done = 0;
	for (size_t i = 0; i < count; i++) {
		if (r->rc != IX_OK || r->stopped || f->returned)
			return;
		const struct sieve_node *c = &cmds[i];
		if (!step(r, c->line, 1))
			return;
		if (strcmp(c->name, "if") == 0 || strcmp(c->name, "elsif") == 0) {
			if (c->name[0] == 'i')
				chain_done = 0;
			if (chain_done)
				continue;
			int v = eval(r, f, &c->tests[0]);
			if (r->rc != IX_OK)
				return;
			if (v) {
				chain_done = 1;
				exec_list(r, f, c->block, c->block_count);
			}
		} else if (strcmp(c->name, "else") == 0) {
			if (!chain_done)
				exec_list(r, f, c->block, c->block_count);
			chain_done = 1;
		} else
			exec_one(r, f, c);
	}
}

void sieve_limits_default(struct sieve_limits *lim_r)
{
	lim_r->max_actions = SIEVE_DEFAULT_MAX_ACTIONS;
	lim_r->max_redirects = SIEVE_DEFAULT_MAX_REDIRECTS;
	lim_r->max_steps = SIEVE_DEFAULT_MAX_STEPS;
	lim_r->max_ms = SIEVE_DEFAULT_MAX_MS;
	lim_r->max_include = SIEVE_DEFAULT_MAX_INCLUDE;
}

static void action_free(struct sieve_action *a)
{
	free(a->folder);
	free(a->address);
	free(a->flags);
	free(a->text);
	free(a->subject);
	free(a->from);
}

void sieve_result_free(struct sieve_result *result)
{
	for (size_t i = 0; i < result->count; i++)
		action_free(&result->actions[i]);
	free(result->actions);
	free(result->header);
	memset(result, 0, sizeof(*result));
}

/* where the body starts: after the first empty line (CRLF or LF), or at the end */
static size_t body_offset(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 3;
	}
	if (len > 0 && msg[0] == '\n')
		return 1;
	if (len > 1 && msg[0] == '\r' && msg[1] == '\n')
		return 2;
	return len;
}

int sieve_run(const struct sieve_script *script, const char *msg, size_t len, const struct sieve_env *env,
	      const struct sieve_limits *lim, struct sieve_result *result_r, struct buf *error_r)
{
	memset(result_r, 0, sizeof(*result_r));
	struct run r = { .msg = msg, .len = len, .env = env, .res = result_r, .error_r = error_r, .implicit_keep = 1 };
	if (lim != NULL)
		r.lim = *lim;
	else
		sieve_limits_default(&r.lim);
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	r.body_off = body_offset(msg, len);
	buf_init(&r.header);
	buf_append(&r.header, msg, r.body_off);
	buf_init(&r.flags);
	for (size_t i = 0; i < MAX_MATCH_VARS; i++)
		buf_init(&r.match[i]);
	struct frame f = { .s = script, .variables = sieve_requires(script, "variables") };
	exec_list(&r, &f, script->cmds, script->count);
	if (r.rc == IX_OK && r.reject_line != 0) {
		/* RFC 5429 2.1: reject and ereject do not mix with keeping, filing or forwarding the message */
		for (size_t i = 0; i < result_r->count; i++) {
			enum sieve_action_type t = result_r->actions[i].type;
			if (t == SIEVE_KEEP || t == SIEVE_FILEINTO || t == SIEVE_REDIRECT || t == SIEVE_VACATION) {
				fail(&r, IX_EINVAL, r.reject_line, "reject cannot be combined with line %u's action",
				     result_r->actions[i].line);
				break;
			}
		}
	}
	if (r.rc == IX_OK && r.implicit_keep) {
		int have = 0;
		for (size_t i = 0; i < result_r->count; i++)
			have |= result_r->actions[i].type == SIEVE_KEEP;
		if (!have) {
			/* the implicit keep may go over max_actions: it is always allowed */
			result_r->actions = xrealloc(result_r->actions,
						     (result_r->count + 1) * sizeof(*result_r->actions));
			struct sieve_action *a = &result_r->actions[result_r->count++];
			memset(a, 0, sizeof(*a));
			a->type = SIEVE_KEEP;
			a->flags = flags_of(&r, &f, &(struct sieve_node){ .name = "keep" });
		}
	}
	if (r.rc != IX_OK) {
		unsigned steps = result_r->steps;
		sieve_result_free(result_r);
		result_r->steps = steps;
		result_r->actions = xcalloc(1, sizeof(*result_r->actions));
		result_r->actions[0].type = SIEVE_KEEP;
		result_r->actions[0].flags = xstrdup("");
		result_r->count = 1;
	} else if (r.edited) {
		result_r->header_len = r.header.len;
		result_r->header = buf_steal(&r.header);
	}
	result_r->body_off = r.body_off;
	buf_free(&r.header);
	buf_free(&r.flags);
	for (size_t i = 0; i < MAX_MATCH_VARS; i++)
		buf_free(&r.match[i]);
	vars_free(&f.locals);
	vars_free(&r.globals);
	vl_free(&f.globals_declared);
	vl_free(&r.included);
	mime_info_destroy(&r.info);
	return r.rc;
}
