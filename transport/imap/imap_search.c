/* imap_search.c - SEARCH key parsing into an AST (depth and size limited) and its evaluation over a message
 * view, its strings matched as substrings under i;unicode-casemap (common/unicasemap.h). */
#include "transport/imap/imap_search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/unicasemap.h"
#include "transport/imap/imap_objectid.h"
#include "transport/imap/mutf7.h"
#include "common/util.h"
#include "common/utf8.h"

struct sp {
	unsigned keys;
	bool uses_saved, uses_modseq, uses_recent;
	struct buf *err;
};

static int fail(struct sp *p, int code, const char *msg)
{
	buf_append_str(p->err, msg);
	return code;
}

static void key_free(struct imap_search_key *k)
{
	for (size_t i = 0; i < k->child_count; i++)
		key_free(&k->children[i]);
	free(k->children);
	free(k->name);
	free(k->value);
	imap_seqset_free(&k->seqset);
	memset(k, 0, sizeof(*k));
}

void imap_search_query_destroy(struct imap_search_query **qp)
{
	struct imap_search_query *q = *qp;
	if (q == NULL)
		return;
	*qp = NULL;
	key_free(&q->root);
	free(q);
}

static int get_string(struct sp *p, const struct imap_arg *a, struct imap_search_key *k)
{
	const char *s;
	size_t len;
	if (!imap_arg_get_astring(a, &s, &len))
		return fail(p, IX_EINVAL, "Invalid search string");
	if (len > IMAP_SEARCH_MAX_STRING)
		return fail(p, IX_ELIMIT, "Search string too long");
	if (memchr(s, '\0', len) != NULL || !utf8_valid(s, len))
		return fail(p, IX_EINVAL, "Search string is not valid UTF-8");
	k->value = xstrndup(s, len);
	k->value_len = len;
	return 0;
}

static int get_header_name(struct sp *p, const struct imap_arg *a, struct imap_search_key *k)
{
	const char *s;
	size_t len;
	if (!imap_arg_get_astring(a, &s, &len) || len == 0 || len > 128)
		return fail(p, IX_EINVAL, "Invalid header field name");
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ':')
			return fail(p, IX_EINVAL, "Invalid header field name");
	}
	k->name = xstrndup(s, len);
	return 0;
}

static int parse_keys(struct sp *p, const struct imap_arg *args, size_t count, size_t *pos, unsigned depth,
		      struct imap_search_key *and_r);

/* One search key at args[*pos]. */
static int parse_key(struct sp *p, const struct imap_arg *args, size_t count, size_t *pos, unsigned depth,
		     struct imap_search_key *k)
{
	static const struct {
		const char *name;
		unsigned set, unset;
	} flag_keys[] = {
		{ "ANSWERED", IMAP_FLAG_ANSWERED, 0 },   { "DELETED", IMAP_FLAG_DELETED, 0 },
		{ "DRAFT", IMAP_FLAG_DRAFT, 0 },         { "FLAGGED", IMAP_FLAG_FLAGGED, 0 },
		{ "SEEN", IMAP_FLAG_SEEN, 0 },           { "RECENT", IMAP_FLAG_RECENT, 0 },
		{ "UNANSWERED", 0, IMAP_FLAG_ANSWERED }, { "UNDELETED", 0, IMAP_FLAG_DELETED },
		{ "UNDRAFT", 0, IMAP_FLAG_DRAFT },       { "UNFLAGGED", 0, IMAP_FLAG_FLAGGED },
		{ "UNSEEN", 0, IMAP_FLAG_SEEN },         { "NEW", IMAP_FLAG_RECENT, IMAP_FLAG_SEEN },
		{ "OLD", 0, IMAP_FLAG_RECENT },
	};
	static const struct {
		const char *name;
		const char *header;
	} addr_keys[] = {
		{ "BCC", "BCC" }, { "CC", "CC" }, { "FROM", "FROM" }, { "SUBJECT", "SUBJECT" }, { "TO", "TO" },
	};
	static const struct {
		const char *name;
		enum imap_search_type type;
	} date_keys[] = {
		{ "BEFORE", IMAP_SK_BEFORE },
		{ "ON", IMAP_SK_ON },
		{ "SINCE", IMAP_SK_SINCE },
		{ "SENTBEFORE", IMAP_SK_SENTBEFORE },
		{ "SENTON", IMAP_SK_SENTON },
		{ "SENTSINCE", IMAP_SK_SENTSINCE },
		{ "SAVEDBEFORE", IMAP_SK_SAVEDBEFORE },
		{ "SAVEDON", IMAP_SK_SAVEDON },
		{ "SAVEDSINCE", IMAP_SK_SAVEDSINCE },
	};
	memset(k, 0, sizeof(*k));
	if (++p->keys > IMAP_SEARCH_MAX_KEYS)
		return fail(p, IX_ELIMIT, "Too many search keys");
	if (depth > IMAP_SEARCH_MAX_DEPTH)
		return fail(p, IX_ELIMIT, "Search keys nested too deeply");
	if (*pos >= count)
		return fail(p, IX_EINVAL, "Missing search key");
	const struct imap_arg *a = &args[(*pos)++];
	const struct imap_arg *next = *pos < count ? &args[*pos] : NULL;
	if (a->type == IMAP_ARG_LIST) {
		size_t sub = 0;
		if (a->list_count == 0)
			return fail(p, IX_EINVAL, "Empty search key list");
		return parse_keys(p, a->list, a->list_count, &sub, depth + 1, k);
	}
	if (a->type != IMAP_ARG_ATOM)
		return fail(p, IX_EINVAL, "Invalid search key");
	char c = a->str[0];
	if ((c >= '0' && c <= '9') || c == '*' || c == '$') {
		k->type = IMAP_SK_SEQSET;
		if (imap_seqset_parse(a->str, a->len, true, &k->seqset, p->err) != 0)
			return IX_EINVAL;
		p->uses_saved |= k->seqset.saved;
		return 0;
	}
	if (imap_arg_atom_equals(a, "ALL")) {
		k->type = IMAP_SK_ALL;
		return 0;
	}
	if (imap_arg_atom_equals(a, "SAVEDATESUPPORTED")) {
		k->type = IMAP_SK_SAVEDATESUPPORTED;
		return 0;
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(flag_keys); i++) {
		if (imap_arg_atom_equals(a, flag_keys[i].name)) {
			k->type = IMAP_SK_FLAGS;
			k->flags_set = flag_keys[i].set;
			k->flags_unset = flag_keys[i].unset;
			p->uses_recent |= ((k->flags_set | k->flags_unset) & IMAP_FLAG_RECENT) != 0;
			return 0;
		}
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(addr_keys); i++) {
		if (imap_arg_atom_equals(a, addr_keys[i].name)) {
			if (next == NULL)
				return fail(p, IX_EINVAL, "Missing search string");
			k->type = IMAP_SK_HEADER;
			k->name = xstrdup(addr_keys[i].header);
			(*pos)++;
			return get_string(p, next, k);
		}
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(date_keys); i++) {
		if (imap_arg_atom_equals(a, date_keys[i].name)) {
			k->type = date_keys[i].type;
			if (next == NULL || imap_date_parse(next, &k->days) != 0)
				return fail(p, IX_EINVAL, "Invalid search date");
			(*pos)++;
			return 0;
		}
	}
	if (imap_arg_atom_equals(a, "BODY") || imap_arg_atom_equals(a, "TEXT")) {
		k->type = imap_arg_atom_equals(a, "BODY") ? IMAP_SK_BODY : IMAP_SK_TEXT;
		if (next == NULL)
			return fail(p, IX_EINVAL, "Missing search string");
		(*pos)++;
		return get_string(p, next, k);
	}
	if (imap_arg_atom_equals(a, "HEADER")) {
		k->type = IMAP_SK_HEADER;
		if (*pos + 1 >= count)
			return fail(p, IX_EINVAL, "HEADER needs a field name and a string");
		int ret = get_header_name(p, next, k);
		if (ret == 0)
			ret = get_string(p, &args[*pos + 1], k);
		*pos += 2;
		return ret;
	}
	if (imap_arg_atom_equals(a, "KEYWORD") || imap_arg_atom_equals(a, "UNKEYWORD")) {
		k->type = imap_arg_atom_equals(a, "KEYWORD") ? IMAP_SK_KEYWORD : IMAP_SK_UNKEYWORD;
		if (next == NULL || next->type != IMAP_ARG_ATOM || !imap_keyword_valid(next->str, next->len))
			return fail(p, IX_EINVAL, "Invalid keyword");
		k->name = xstrndup(next->str, next->len);
		(*pos)++;
		return 0;
	}
	if (imap_arg_atom_equals(a, "EMAILID") || imap_arg_atom_equals(a, "THREADID")) {
		k->type = imap_arg_atom_equals(a, "EMAILID") ? IMAP_SK_EMAILID : IMAP_SK_THREADID;
		if (next == NULL || next->type != IMAP_ARG_ATOM || !imap_objectid_valid(next->str, next->len))
			return fail(p, IX_EINVAL, "Invalid object identifier");
		k->name = xstrndup(next->str, next->len);
		(*pos)++;
		return 0;
	}
	if (imap_arg_atom_equals(a, "LARGER") || imap_arg_atom_equals(a, "SMALLER")) {
		k->type = imap_arg_atom_equals(a, "LARGER") ? IMAP_SK_LARGER : IMAP_SK_SMALLER;
		if (!imap_arg_get_number(next, INT64_MAX, &k->number))
			return fail(p, IX_EINVAL, "Invalid size");
		(*pos)++;
		return 0;
	}
	if (imap_arg_atom_equals(a, "OLDER") || imap_arg_atom_equals(a, "YOUNGER")) {
		k->type = imap_arg_atom_equals(a, "OLDER") ? IMAP_SK_OLDER : IMAP_SK_YOUNGER;
		/* RFC 5032: an nz-number of seconds */
		if (!imap_arg_get_number(next, INT32_MAX, &k->number) || k->number == 0)
			return fail(p, IX_EINVAL, "Invalid interval");
		(*pos)++;
		return 0;
	}
	if (imap_arg_atom_equals(a, "UID")) {
		k->type = IMAP_SK_UID;
		if (next == NULL || next->type != IMAP_ARG_ATOM)
			return fail(p, IX_EINVAL, "Invalid UID set");
		(*pos)++;
		if (imap_seqset_parse(next->str, next->len, true, &k->seqset, p->err) != 0)
			return IX_EINVAL;
		p->uses_saved |= k->seqset.saved;
		return 0;
	}
	if (imap_arg_atom_equals(a, "MODSEQ")) {
		/* MODSEQ ["/flags/\Seen" priv|shared|all] n: the entry is accepted and ignored (one modseq per message) */
		k->type = IMAP_SK_MODSEQ;
		p->uses_modseq = true;
		if (next != NULL && (next->type == IMAP_ARG_QUOTED || next->type == IMAP_ARG_LITERAL)) {
			if (*pos + 2 >= count || !(imap_arg_atom_equals(&args[*pos + 1], "PRIV") ||
						   imap_arg_atom_equals(&args[*pos + 1], "SHARED") ||
						   imap_arg_atom_equals(&args[*pos + 1], "ALL")))
				return fail(p, IX_EINVAL, "Invalid MODSEQ entry");
			if (next->len < 7 || strncasecmp(next->str, "/flags/", 7) != 0)
				return fail(p, IX_EINVAL, "Invalid MODSEQ entry name");
			*pos += 2;
			next = &args[*pos];
		}
		if (!imap_arg_get_number(next, INT64_MAX, &k->number))
			return fail(p, IX_EINVAL, "Invalid MODSEQ value");
		(*pos)++;
		return 0;
	}
	if (imap_arg_atom_equals(a, "NOT")) {
		k->type = IMAP_SK_NOT;
		k->children = xcalloc(1, sizeof(*k->children));
		k->child_count = 1;
		return parse_key(p, args, count, pos, depth + 1, &k->children[0]);
	}
	if (imap_arg_atom_equals(a, "OR")) {
		k->type = IMAP_SK_OR;
		k->children = xcalloc(2, sizeof(*k->children));
		k->child_count = 2;
		int ret = parse_key(p, args, count, pos, depth + 1, &k->children[0]);
		if (ret == 0)
			ret = parse_key(p, args, count, pos, depth + 1, &k->children[1]);
		return ret;
	}
	return fail(p, IX_EINVAL, "Unknown search key");
}

/* Keys from args[*pos] to the end, as an AND node. */
static int parse_keys(struct sp *p, const struct imap_arg *args, size_t count, size_t *pos, unsigned depth,
		      struct imap_search_key *and_r)
{
	memset(and_r, 0, sizeof(*and_r));
	and_r->type = IMAP_SK_AND;
	if (depth > IMAP_SEARCH_MAX_DEPTH)
		return fail(p, IX_ELIMIT, "Search keys nested too deeply");
	size_t cap = 0;
	while (*pos < count) {
		if (and_r->child_count == cap) {
			cap = cap ? cap * 2 : 4;
			and_r->children = xrealloc(and_r->children, cap * sizeof(*and_r->children));
		}
		struct imap_search_key *k = &and_r->children[and_r->child_count++];
		int ret = parse_key(p, args, count, pos, depth, k);
		if (ret != 0)
			return ret;
	}
	if (and_r->child_count == 0)
		return fail(p, IX_EINVAL, "Missing search key");
	return 0;
}

/* A partial-range "lo:hi" (RFC 5267: nz-number ":" nz-number), in either order. */
static bool partial_range(const struct imap_arg *a, uint32_t *lo_r, uint32_t *hi_r)
{
	if (a->type != IMAP_ARG_ATOM)
		return false;
	const char *colon = memchr(a->str, ':', a->len);
	if (colon == NULL)
		return false;
	uint32_t v[2];
	const char *part[2] = { a->str, colon + 1 };
	size_t len[2] = { (size_t)(colon - a->str), a->len - (size_t)(colon - a->str) - 1 };
	for (int i = 0; i < 2; i++) {
		uint64_t n = 0;
		if (len[i] == 0 || len[i] > 10 || part[i][0] == '0')
			return false;
		for (size_t k = 0; k < len[i]; k++) {
			if (part[i][k] < '0' || part[i][k] > '9')
				return false;
			n = n * 10 + (uint64_t)(part[i][k] - '0');
		}
		if (n > UINT32_MAX)
			return false;
		v[i] = (uint32_t)n;
	}
	*lo_r = v[0] < v[1] ? v[0] : v[1];
	*hi_r = v[0] < v[1] ? v[1] : v[0];
	return true;
}

static int return_fail(struct buf *error_r, const char *msg)
{
	if (error_r != NULL)
		buf_append_str(error_r, msg);
	return IX_EINVAL;
}

int imap_search_return_parse(const struct imap_arg *list, unsigned allowed, struct imap_return_opts *ret_r,
			     struct buf *error_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{ "MIN", IMAP_SEARCH_RETURN_MIN },         { "MAX", IMAP_SEARCH_RETURN_MAX },
		{ "ALL", IMAP_SEARCH_RETURN_ALL },         { "COUNT", IMAP_SEARCH_RETURN_COUNT },
		{ "SAVE", IMAP_SEARCH_RETURN_SAVE },       { "UPDATE", IMAP_SEARCH_RETURN_UPDATE },
		{ "CONTEXT", IMAP_SEARCH_RETURN_CONTEXT }, { "PARTIAL", IMAP_SEARCH_RETURN_PARTIAL },
	};
	memset(ret_r, 0, sizeof(*ret_r));
	if (list->type != IMAP_ARG_LIST) {
		return return_fail(error_r, "RETURN needs a list");
	}
	for (size_t i = 0; i < list->list_count; i++) {
		size_t o = 0;
		while (o < IX_ARRAY_LEN(opts) && !imap_arg_atom_equals(&list->list[i], opts[o].name))
			o++;
		if (o == IX_ARRAY_LEN(opts) || !(allowed & opts[o].bit) || (ret_r->opts & opts[o].bit)) {
			return return_fail(error_r, "Unknown RETURN option");
		}
		if (opts[o].bit == IMAP_SEARCH_RETURN_PARTIAL &&
		    (i + 1 >= list->list_count ||
		     !partial_range(&list->list[++i], &ret_r->partial_lo, &ret_r->partial_hi))) {
			return return_fail(error_r, "PARTIAL needs a range of positions");
		}
		ret_r->opts |= opts[o].bit;
	}
	/* RFC 4731: RETURN () is ALL; RFC 5267: so are UPDATE and CONTEXT alone */
	if ((ret_r->opts & ~(unsigned)(IMAP_SEARCH_RETURN_UPDATE | IMAP_SEARCH_RETURN_CONTEXT)) == 0)
		ret_r->opts |= IMAP_SEARCH_RETURN_ALL;
	return 0;
}

int imap_search_parse(const struct imap_arg *args, size_t count, struct imap_search_query **query_r, bool *badcharset_r,
		      struct buf *error_r)
{
	struct sp p = { .err = error_r };
	struct imap_search_query *q = xcalloc(1, sizeof(*q));
	size_t pos = 0;
	int ret = 0;
	*query_r = NULL;
	*badcharset_r = false;
	if (pos < count && imap_arg_atom_equals(&args[pos], "RETURN")) {
		pos++;
		if (pos >= count || args[pos].type != IMAP_ARG_LIST) {
			ret = fail(&p, IX_EINVAL, "RETURN needs a list");
			goto out;
		}
		struct imap_return_opts r;
		ret = imap_search_return_parse(&args[pos++], ~0u, &r, error_r);
		if (ret != 0)
			goto out;
		q->esearch = true;
		q->return_opts = r.opts;
		q->partial_lo = r.partial_lo;
		q->partial_hi = r.partial_hi;
	}
	if (pos < count && imap_arg_atom_equals(&args[pos], "CHARSET")) {
		const char *cs;
		size_t len;
		pos++;
		if (pos >= count || !imap_arg_get_astring(&args[pos], &cs, &len)) {
			ret = fail(&p, IX_EINVAL, "CHARSET needs a name");
			goto out;
		}
		pos++;
		if (!(len == 5 && strcasecmp(cs, "UTF-8") == 0) && !(len == 8 && strcasecmp(cs, "US-ASCII") == 0)) {
			*badcharset_r = true;
			ret = fail(&p, IX_EINVAL, "Unsupported charset");
			goto out;
		}
	}
	ret = parse_keys(&p, args, count, &pos, 0, &q->root);
out:
	if (ret != 0) {
		imap_search_query_destroy(&q);
		return ret;
	}
	q->uses_saved = p.uses_saved;
	q->uses_modseq = p.uses_modseq;
	q->uses_recent = p.uses_recent;
	*query_r = q;
	return 0;
}

void imap_search_key_dump(const struct imap_search_key *k, struct buf *out)
{
	static const char *const names[] = {
		[IMAP_SK_ALL] = "ALL",
		[IMAP_SK_AND] = "AND",
		[IMAP_SK_OR] = "OR",
		[IMAP_SK_NOT] = "NOT",
		[IMAP_SK_SEQSET] = "SEQSET",
		[IMAP_SK_UID] = "UID",
		[IMAP_SK_FLAGS] = "FLAGS",
		[IMAP_SK_KEYWORD] = "KEYWORD",
		[IMAP_SK_UNKEYWORD] = "UNKEYWORD",
		[IMAP_SK_HEADER] = "HEADER",
		[IMAP_SK_BODY] = "BODY",
		[IMAP_SK_TEXT] = "TEXT",
		[IMAP_SK_BEFORE] = "BEFORE",
		[IMAP_SK_ON] = "ON",
		[IMAP_SK_SINCE] = "SINCE",
		[IMAP_SK_SENTBEFORE] = "SENTBEFORE",
		[IMAP_SK_SENTON] = "SENTON",
		[IMAP_SK_SENTSINCE] = "SENTSINCE",
		[IMAP_SK_LARGER] = "LARGER",
		[IMAP_SK_SMALLER] = "SMALLER",
		[IMAP_SK_MODSEQ] = "MODSEQ",
		[IMAP_SK_OLDER] = "OLDER",
		[IMAP_SK_YOUNGER] = "YOUNGER",
		[IMAP_SK_EMAILID] = "EMAILID",
		[IMAP_SK_THREADID] = "THREADID",
		[IMAP_SK_SAVEDBEFORE] = "SAVEDBEFORE",
		[IMAP_SK_SAVEDON] = "SAVEDON",
		[IMAP_SK_SAVEDSINCE] = "SAVEDSINCE",
		[IMAP_SK_SAVEDATESUPPORTED] = "SAVEDATESUPPORTED",
	};
	buf_printf(out, "(%s", names[k->type]);
	switch (k->type) {
	case IMAP_SK_SEQSET:
	case IMAP_SK_UID:
		if (k->seqset.saved)
			buf_append_str(out, " $");
		for (size_t i = 0; i < k->seqset.count; i++) {
			buf_printf(out, "%s%u:%u", i == 0 ? " " : ",", k->seqset.ranges[i].lo, k->seqset.ranges[i].hi);
		}
		break;
	case IMAP_SK_FLAGS: buf_printf(out, " +%u -%u", k->flags_set, k->flags_unset); break;
	case IMAP_SK_KEYWORD:
	case IMAP_SK_UNKEYWORD:
	case IMAP_SK_EMAILID:
	case IMAP_SK_THREADID: buf_printf(out, " %s", k->name); break;
	case IMAP_SK_HEADER: buf_printf(out, " %s \"%s\"", k->name, k->value); break;
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT: buf_printf(out, " \"%s\"", k->value); break;
	case IMAP_SK_BEFORE:
	case IMAP_SK_ON:
	case IMAP_SK_SINCE:
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
	case IMAP_SK_SAVEDBEFORE:
	case IMAP_SK_SAVEDON:
	case IMAP_SK_SAVEDSINCE: buf_printf(out, " %lld", (long long)k->days); break;
	case IMAP_SK_LARGER:
	case IMAP_SK_SMALLER:
	case IMAP_SK_MODSEQ:
	case IMAP_SK_OLDER:
	case IMAP_SK_YOUNGER: buf_printf(out, " %llu", (unsigned long long)k->number); break;
	default: break;
	}
	for (size_t i = 0; i < k->child_count; i++) {
		buf_append_char(out, ' ');
		imap_search_key_dump(&k->children[i], out);
	}
	buf_append_char(out, ')');
}

/* ---- evaluation ---- */

static int64_t day_of(int64_t t, int tz_minutes)
{
	int64_t local = t + (int64_t)tz_minutes * 60;
	int64_t d = local / 86400;
	if (local % 86400 < 0)
		d--;
	return d;
}

/* A date key (BEFORE, ON, SINCE and their SENT and SAVED forms) against the day the message has for it. */
static bool day_matches(const struct imap_search_key *k, int64_t day)
{
	switch (k->type) {
	case IMAP_SK_BEFORE:
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SAVEDBEFORE: return day < k->days;
	case IMAP_SK_ON:
	case IMAP_SK_SENTON:
	case IMAP_SK_SAVEDON: return day == k->days;
	default: return day >= k->days;
	}
}

static bool in_saved(const struct imap_search_msg *m)
{
	size_t lo = 0, hi = m->saved_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->saved_uids[mid] == m->uid)
			return true;
		if (m->saved_uids[mid] < m->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool has_keyword(const struct imap_search_msg *m, const char *kw)
{
	for (size_t i = 0; i < m->keyword_count; i++) {
		if (strcasecmp(m->keywords[i], kw) == 0)
			return true;
	}
	return false;
}

static bool key_match(const struct imap_search_key *k, const struct imap_search_msg *m)
{
	struct buf text = BUF_INIT;
	bool r = false;
	int64_t day;
	switch (k->type) {
	case IMAP_SK_ALL: return true;
	case IMAP_SK_AND:
		for (size_t i = 0; i < k->child_count; i++) {
			if (!key_match(&k->children[i], m))
				return false;
		}
		return true;
	case IMAP_SK_OR: return key_match(&k->children[0], m) || key_match(&k->children[1], m);
	case IMAP_SK_NOT: return !key_match(&k->children[0], m);
	case IMAP_SK_SEQSET:
		return k->seqset.saved ? in_saved(m) : imap_seqset_contains(&k->seqset, m->seq, m->seq_max);
	case IMAP_SK_UID: return k->seqset.saved ? in_saved(m) : imap_seqset_contains(&k->seqset, m->uid, m->uid_max);
	case IMAP_SK_FLAGS: return (m->flags & k->flags_set) == k->flags_set && (m->flags & k->flags_unset) == 0;
	case IMAP_SK_KEYWORD: return has_keyword(m, k->name);
	case IMAP_SK_UNKEYWORD: return !has_keyword(m, k->name);
	case IMAP_SK_HEADER:
		if (m->header != NULL && m->header(m->ctx, k->name, &text))
			r = unicasemap_contains(buf_cstr(&text), text.len, k->value, k->value_len);
		break;
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
		if (m->body != NULL) {
			m->body(m->ctx, k->type == IMAP_SK_TEXT, &text);
			r = unicasemap_contains(buf_cstr(&text), text.len, k->value, k->value_len);
		}
		break;
	case IMAP_SK_BEFORE:
	case IMAP_SK_ON:
	case IMAP_SK_SINCE: return day_matches(k, day_of(m->internal_date, m->internal_tz));
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		day = m->has_sent_date ? day_of(m->sent_date, m->sent_tz) : day_of(m->internal_date, m->internal_tz);
		return day_matches(k, day);
	case IMAP_SK_SAVEDBEFORE:
	case IMAP_SK_SAVEDON:
	case IMAP_SK_SAVEDSINCE:
		/* without a save date (stored before the store kept them) the internal date stands in for it */
		return day_matches(k, day_of(m->has_save_date ? m->save_date : m->internal_date, m->internal_tz));
	case IMAP_SK_SAVEDATESUPPORTED: return true;
	case IMAP_SK_LARGER: return m->size > k->number;
	case IMAP_SK_SMALLER: return m->size < k->number;
	case IMAP_SK_MODSEQ: return m->modseq >= k->number;
	case IMAP_SK_OLDER: return m->internal_date < m->now - (int64_t)k->number;
	case IMAP_SK_YOUNGER: return m->internal_date >= m->now - (int64_t)k->number;
	case IMAP_SK_EMAILID: return m->emailid != NULL && strcmp(m->emailid, k->name) == 0;
	case IMAP_SK_THREADID:
		if (m->threadid != NULL) {
			m->threadid(m->ctx, &text);
			r = strcmp(buf_cstr(&text), k->name) == 0;
		}
		break;
	}
	buf_free(&text);
	return r;
}

bool imap_search_match(const struct imap_search_query *query, const struct imap_search_msg *msg)
{
	return key_match(&query->root, msg);
}
