/* imap_metadata.c - the pure part of IMAP METADATA (RFC 5464): entry names and the arguments of GETMETADATA and
 * SETMETADATA, checked over the parser's bounded argument tree. */
#include "transport/imap/imap_metadata.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int imap_metadata_entry(const char *s, size_t len, bool root, struct buf *out, struct buf *error_r)
{
	size_t start = out->len;
	const char *why = NULL;
	if (len > IMAP_METADATA_ENTRY_MAX)
		why = "is too long";
	for (size_t i = 0; i < len && why == NULL; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '*' || c == '%')
			why = "holds a character entry names may not hold";
		else if (c == '/' && (i + 1 == len || s[i + 1] == '/'))
			why = "has an empty component";
	}
	if (why == NULL) {
		for (size_t i = 0; i < len; i++)
			buf_append_char(out, (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]));
		const char *e = buf_cstr(out) + start;
		bool ok = strncmp(e, "/private/", 9) == 0 || strncmp(e, "/shared/", 8) == 0 ||
			  (root && (strcmp(e, "/private") == 0 || strcmp(e, "/shared") == 0));
		if (!ok) {
			out->len = start;
			out->data[start] = '\0';
			why = "is neither under /private nor under /shared";
		}
	}
	if (why == NULL)
		return 0;
	buf_printf(error_r, "Entry name %s", why);
	return IX_EINVAL;
}

bool imap_metadata_within(const char *entry, const char *name, int depth)
{
	size_t n = strlen(entry);
	if (strncmp(entry, name, n) != 0)
		return false;
	if (name[n] == '\0')
		return true;
	if (name[n] != '/' || depth == 0)
		return false;
	return depth < 0 || strchr(name + n + 1, '/') == NULL;
}

/* MAXSIZE n / DEPTH 0|1|infinity */
static int options_parse(const struct imap_arg *list, struct imap_getmetadata *r, struct buf *error_r)
{
	if (list->list_count == 0 || list->list_count % 2 != 0) {
		buf_append_str(error_r, "GETMETADATA options come in pairs");
		return IX_EINVAL;
	}
	bool seen_depth = false;
	for (size_t i = 0; i < list->list_count; i += 2) {
		const struct imap_arg *o = &list->list[i], *v = &list->list[i + 1];
		if (imap_arg_atom_equals(o, "MAXSIZE") && !r->has_maxsize) {
			if (!imap_arg_get_number(v, UINT32_MAX, &r->maxsize)) {
				buf_append_str(error_r, "MAXSIZE takes a number");
				return IX_EINVAL;
			}
			r->has_maxsize = true;
		} else if (imap_arg_atom_equals(o, "DEPTH") && !seen_depth) {
			seen_depth = true;
			if (imap_arg_atom_equals(v, "0"))
				r->depth = 0;
			else if (imap_arg_atom_equals(v, "1"))
				r->depth = 1;
			else if (imap_arg_atom_equals(v, "INFINITY"))
				r->depth = -1;
			else {
				buf_append_str(error_r, "DEPTH is 0, 1 or infinity");
				return IX_EINVAL;
			}
		} else {
			buf_append_str(error_r, "Unknown or repeated GETMETADATA option");
			return IX_EINVAL;
		}
	}
	return 0;
}

static int entry_take(const struct imap_arg *a, bool root, char **entry_r, struct buf *error_r)
{
	const char *s;
	size_t len;
	if (a->type == IMAP_ARG_LIST || a->type == IMAP_ARG_NIL || !imap_arg_get_astring(a, &s, &len)) {
		buf_append_str(error_r, "Entry names are strings");
		return IX_EINVAL;
	}
	struct buf e = BUF_INIT;
	int ret = imap_metadata_entry(s, len, root, &e, error_r);
	*entry_r = ret == 0 ? buf_steal(&e) : NULL;
	buf_free(&e);
	return ret;
}

static int mailbox_take(const struct imap_arg *a, const char **name_r, size_t *len_r, struct buf *error_r)
{
	if (a->type == IMAP_ARG_LIST || !imap_arg_get_mailbox(a, name_r, len_r)) {
		buf_append_str(error_r, "Missing mailbox name");
		return IX_EINVAL;
	}
	return 0;
}

int imap_getmetadata_parse(const struct imap_arg *args, size_t n, struct imap_getmetadata *r, struct buf *error_r)
{
	memset(r, 0, sizeof(*r));
	size_t i = 0;
	int ret = 0;
	if (n > 0 && args[0].type == IMAP_ARG_LIST)
		ret = options_parse(&args[i++], r, error_r);
	if (ret == 0 && i >= n) {
		buf_append_str(error_r, "Missing mailbox name");
		ret = IX_EINVAL;
	}
	if (ret == 0)
		ret = mailbox_take(&args[i++], &r->mailbox, &r->mailbox_len, error_r);
	/* the options after the mailbox (a list that names options, not entries) */
	if (ret == 0 && i == 1 && n == 3 && args[1].type == IMAP_ARG_LIST && args[1].list_count > 0 &&
	    args[1].list[0].type == IMAP_ARG_ATOM && args[1].list[0].str[0] != '/')
		ret = options_parse(&args[i++], r, error_r);
	if (ret == 0 && i + 1 != n) {
		buf_append_str(error_r, i >= n ? "Missing entry names" : "Too many arguments");
		ret = IX_EINVAL;
	}
	if (ret != 0)
		return ret;
	const struct imap_arg *list = args[i].type == IMAP_ARG_LIST ? args[i].list : &args[i];
	size_t count = args[i].type == IMAP_ARG_LIST ? args[i].list_count : 1;
	if (count == 0 || count > IMAP_METADATA_MAX_ENTRIES) {
		buf_printf(error_r, "GETMETADATA takes 1 to %u entry names", IMAP_METADATA_MAX_ENTRIES);
		return count == 0 ? IX_EINVAL : IX_ELIMIT;
	}
	r->entries = xcalloc(count, sizeof(*r->entries));
	for (size_t k = 0; k < count && ret == 0; k++)
		if ((ret = entry_take(&list[k], true, &r->entries[k], error_r)) == 0)
			r->n++;
	return ret;
}

void imap_getmetadata_free(struct imap_getmetadata *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->entries[i]);
	free(r->entries);
	memset(r, 0, sizeof(*r));
}

int imap_setmetadata_parse(const struct imap_arg *args, size_t n, struct imap_setmetadata *r, struct buf *error_r)
{
	memset(r, 0, sizeof(*r));
	int ret = n > 0 ? mailbox_take(&args[0], &r->mailbox, &r->mailbox_len, error_r) : IX_EINVAL;
	if (n == 0)
		buf_append_str(error_r, "Missing mailbox name");
	if (ret == 0 &&
	    (n != 2 || args[1].type != IMAP_ARG_LIST || args[1].list_count == 0 || args[1].list_count % 2 != 0)) {
		buf_append_str(error_r, "SETMETADATA takes a mailbox and a list of entries and values");
		ret = IX_EINVAL;
	}
	if (ret != 0)
		return ret;
	size_t count = args[1].list_count / 2;
	if (count > IMAP_METADATA_MAX_ENTRIES) {
		buf_printf(error_r, "SETMETADATA takes at most %u entries", IMAP_METADATA_MAX_ENTRIES);
		return IX_ELIMIT;
	}
	r->set = xcalloc(count, sizeof(*r->set));
	for (size_t k = 0; k < count && ret == 0; k++) {
		const struct imap_arg *v = &args[1].list[2 * k + 1];
		struct imap_metadata_value *m = &r->set[k];
		if ((ret = entry_take(&args[1].list[2 * k], false, &m->entry, error_r)) != 0)
			break;
		r->n++;
		if (!imap_arg_get_nstring(v, &m->value, &m->len)) {
			buf_append_str(error_r, "Values are strings, literals or NIL");
			ret = IX_EINVAL;
		}
	}
	return ret;
}

void imap_setmetadata_free(struct imap_setmetadata *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->set[i].entry);
	free(r->set);
	memset(r, 0, sizeof(*r));
}
