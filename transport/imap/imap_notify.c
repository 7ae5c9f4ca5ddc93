/* imap_notify.c - the pure part of IMAP NOTIFY (RFC 5465): NOTIFY SET and NOTIFY NONE checked over the parser's
 * bounded argument tree, with the rules of RFC 5465 section 3 on which events go together. */
#include "transport/imap/imap_notify.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	unsigned bit;
} event_names[] = {
	{ "MessageNew", IMAP_EV_MESSAGE_NEW },
	{ "MessageExpunge", IMAP_EV_MESSAGE_EXPUNGE },
	{ "FlagChange", IMAP_EV_FLAG_CHANGE },
	{ "AnnotationChange", IMAP_EV_ANNOTATION_CHANGE },
	{ "MailboxName", IMAP_EV_MAILBOX_NAME },
	{ "SubscriptionChange", IMAP_EV_SUBSCRIPTION_CHANGE },
	{ "MailboxMetadataChange", IMAP_EV_MAILBOX_METADATA_CHANGE },
	{ "ServerMetadataChange", IMAP_EV_SERVER_METADATA_CHANGE },
};

static const struct {
	const char *name;
	enum imap_notify_filter filter;
	bool mailboxes; /* followed by one-or-more-mailbox */
} filter_names[] = {
	{ "SELECTED", IMAP_NOTIFY_SELECTED, false },     { "SELECTED-DELAYED", IMAP_NOTIFY_SELECTED_DELAYED, false },
	{ "INBOXES", IMAP_NOTIFY_INBOXES, false },       { "PERSONAL", IMAP_NOTIFY_PERSONAL, false },
	{ "SUBSCRIBED", IMAP_NOTIFY_SUBSCRIBED, false }, { "SUBTREE", IMAP_NOTIFY_SUBTREE, true },
	{ "MAILBOXES", IMAP_NOTIFY_MAILBOXES, true },
};

void imap_notify_events_write(unsigned events, struct buf *out)
{
	bool first = true;
	for (size_t i = 0; i < IX_ARRAY_LEN(event_names); i++)
		if (events & event_names[i].bit) {
			buf_printf(out, "%s%s", first ? "" : " ", event_names[i].name);
			first = false;
		}
}

static int fail(struct buf *error_r, const char *msg)
{
	buf_append_str(error_r, msg);
	return IX_EINVAL;
}

/* events: "(" event *(SP event) ")" or NONE. MessageNew may carry a fetch-att list, taken and ignored (the
 * message's number is what is sent). */
static int events_parse(const struct imap_arg *a, unsigned *events_r, unsigned *unsupported_r, struct buf *error_r)
{
	*events_r = 0;
	if (imap_arg_atom_equals(a, "NONE"))
		return 0;
	if (a->type != IMAP_ARG_LIST || a->list_count == 0)
		return fail(error_r, "Events are a list or NONE");
	for (size_t i = 0; i < a->list_count; i++) {
		const struct imap_arg *e = &a->list[i];
		if (e->type == IMAP_ARG_LIST) {
			if (i == 0 || !imap_arg_atom_equals(&a->list[i - 1], "MESSAGENEW"))
				return fail(error_r, "Only MessageNew takes fetch attributes");
			continue;
		}
		size_t k = 0;
		while (k < IX_ARRAY_LEN(event_names) &&
		       !(e->type == IMAP_ARG_ATOM && strcasecmp(e->str, event_names[k].name) == 0))
			k++;
		if (k == IX_ARRAY_LEN(event_names))
			return fail(error_r, "Unknown event");
		if (*events_r & event_names[k].bit)
			return fail(error_r, "Event given twice");
		*events_r |= event_names[k].bit;
	}
	unsigned ev = *events_r;
	if (!(ev & IMAP_EV_MESSAGE_NEW) != !(ev & IMAP_EV_MESSAGE_EXPUNGE))
		return fail(error_r, "MessageNew and MessageExpunge go together");
	if ((ev & (IMAP_EV_FLAG_CHANGE | IMAP_EV_ANNOTATION_CHANGE)) && !(ev & IMAP_EV_MESSAGE_NEW))
		return fail(error_r, "FlagChange and AnnotationChange need MessageNew and MessageExpunge");
	*unsupported_r |= ev & ~IMAP_EV_SUPPORTED;
	return 0;
}

static int group_parse(const struct imap_arg *a, struct imap_notify_group *g, unsigned *unsupported_r,
		       struct buf *error_r)
{
	if (a->type != IMAP_ARG_LIST || a->list_count < 2)
		return fail(error_r, "An event group is (filter events)");
	size_t k = 0;
	while (k < IX_ARRAY_LEN(filter_names) && !imap_arg_atom_equals(&a->list[0], filter_names[k].name))
		k++;
	if (k == IX_ARRAY_LEN(filter_names))
		return fail(error_r, "Unknown mailbox filter");
	g->filter = filter_names[k].filter;
	size_t next = 1;
	if (filter_names[k].mailboxes) {
		const struct imap_arg *m = &a->list[1];
		const struct imap_arg *list = m->type == IMAP_ARG_LIST ? m->list : m;
		size_t count = m->type == IMAP_ARG_LIST ? m->list_count : 1;
		if (count == 0 || count > IMAP_NOTIFY_MAX_MAILBOXES)
			return fail(error_r, "SUBTREE and MAILBOXES take 1 to 64 mailboxes");
		g->mailboxes = xcalloc(count, sizeof(*g->mailboxes));
		for (size_t i = 0; i < count; i++) {
			const char *name;
			size_t len;
			if (list[i].type == IMAP_ARG_LIST || !imap_arg_get_mailbox(&list[i], &name, &len))
				return fail(error_r, "Invalid mailbox name");
			g->mailboxes[g->n++] = xstrndup(name, len);
		}
		next = 2;
	}
	if (a->list_count != next + 1)
		return fail(error_r, "An event group is (filter events)");
	int ret = events_parse(&a->list[next], &g->events, unsupported_r, error_r);
	if (ret == 0 && (g->filter == IMAP_NOTIFY_SELECTED || g->filter == IMAP_NOTIFY_SELECTED_DELAYED) &&
	    (g->events & (IMAP_EV_MAILBOX_NAME | IMAP_EV_SUBSCRIPTION_CHANGE | IMAP_EV_SERVER_METADATA_CHANGE)))
		ret = fail(error_r, "MailboxName, SubscriptionChange and ServerMetadataChange are not for SELECTED");
	return ret;
}

int imap_notify_parse(const struct imap_arg *args, size_t n, struct imap_notify_set *r, struct buf *error_r)
{
	memset(r, 0, sizeof(*r));
	if (n == 1 && imap_arg_atom_equals(&args[0], "NONE")) {
		r->none = true;
		return 0;
	}
	if (n == 0 || !imap_arg_atom_equals(&args[0], "SET"))
		return fail(error_r, "NOTIFY takes SET or NONE");
	size_t i = 1;
	if (i < n && imap_arg_atom_equals(&args[i], "STATUS")) {
		r->status = true;
		i++;
	}
	if (i >= n)
		return fail(error_r, "NOTIFY SET needs an event group");
	if (n - i > IMAP_NOTIFY_MAX_GROUPS) {
		buf_printf(error_r, "NOTIFY SET takes at most %u event groups", IMAP_NOTIFY_MAX_GROUPS);
		return IX_ELIMIT;
	}
	r->groups = xcalloc(n - i, sizeof(*r->groups));
	unsigned unsupported = 0, seen = 0;
	for (; i < n; i++) {
		struct imap_notify_group *g = &r->groups[r->n++];
		int ret = group_parse(&args[i], g, &unsupported, error_r);
		if (ret != 0)
			return ret;
		unsigned bit = 1u << g->filter;
		bool selected = g->filter == IMAP_NOTIFY_SELECTED || g->filter == IMAP_NOTIFY_SELECTED_DELAYED;
		if ((seen & bit) ||
		    (selected && (seen & (1u << IMAP_NOTIFY_SELECTED | 1u << IMAP_NOTIFY_SELECTED_DELAYED))))
			return fail(error_r, "A mailbox filter given twice");
		seen |= bit;
	}
	if (unsupported != 0) {
		imap_notify_events_write(IMAP_EV_SUPPORTED, error_r);
		return IX_ENOTFOUND;
	}
	return 0;
}

void imap_notify_set_free(struct imap_notify_set *r)
{
	for (size_t i = 0; i < r->n; i++) {
		for (size_t k = 0; k < r->groups[i].n; k++)
			free(r->groups[i].mailboxes[k]);
		free(r->groups[i].mailboxes);
	}
	free(r->groups);
	memset(r, 0, sizeof(*r));
}
