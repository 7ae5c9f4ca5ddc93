/* imap_notify.h - the pure part of IMAP NOTIFY (RFC 5465): NOTIFY SET/NONE's filters and events from a parsed
 * command's arguments. No I/O, no globals. */
#ifndef IX_IMAP_NOTIFY_H
#define IX_IMAP_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "transport/imap/imap_parse.h"

#define IMAP_NOTIFY_MAX_GROUPS 16u    /* event groups of one NOTIFY SET */
#define IMAP_NOTIFY_MAX_MAILBOXES 64u /* mailboxes named by one group */

enum imap_notify_filter {
	IMAP_NOTIFY_SELECTED,
	IMAP_NOTIFY_SELECTED_DELAYED,
	IMAP_NOTIFY_INBOXES,
	IMAP_NOTIFY_PERSONAL,
	IMAP_NOTIFY_SUBSCRIBED,
	IMAP_NOTIFY_SUBTREE,
	IMAP_NOTIFY_MAILBOXES,
};

enum imap_notify_event {
	IMAP_EV_MESSAGE_NEW = 1u << 0,
	IMAP_EV_MESSAGE_EXPUNGE = 1u << 1,
	IMAP_EV_FLAG_CHANGE = 1u << 2,
	IMAP_EV_ANNOTATION_CHANGE = 1u << 3, /* RFC 5257 message annotations: not offered (BADEVENT) */
	IMAP_EV_MAILBOX_NAME = 1u << 4,
	IMAP_EV_SUBSCRIPTION_CHANGE = 1u << 5,
	IMAP_EV_MAILBOX_METADATA_CHANGE = 1u << 6,
	IMAP_EV_SERVER_METADATA_CHANGE = 1u << 7,
};
/* The events this server offers (the BADEVENT response lists them). */
#define IMAP_EV_SUPPORTED                                                                             \
	(IMAP_EV_MESSAGE_NEW | IMAP_EV_MESSAGE_EXPUNGE | IMAP_EV_FLAG_CHANGE | IMAP_EV_MAILBOX_NAME | \
	 IMAP_EV_SUBSCRIPTION_CHANGE | IMAP_EV_MAILBOX_METADATA_CHANGE | IMAP_EV_SERVER_METADATA_CHANGE)

struct imap_notify_group {
	enum imap_notify_filter filter;
	char **mailboxes; /* SUBTREE/MAILBOXES: the names as the client sent them (NUL-free), owned */
	size_t n;
	unsigned events; /* enum imap_notify_event bits; 0: NONE */
};

struct imap_notify_set {
	bool none;   /* NOTIFY NONE */
	bool status; /* NOTIFY SET STATUS */
	struct imap_notify_group *groups;
	size_t n;
};

/* Parses NOTIFY's arguments (after the command name): "NONE", or "SET" ["STATUS"] 1*("(" filter SP events ")").
 * Returns 0; IX_EINVAL (syntax, or a rule of RFC 5465 section 3: MessageNew and MessageExpunge only together,
 * FlagChange and AnnotationChange only with them, SELECTED and SELECTED-DELAYED not both, MailboxName and
 * SubscriptionChange not for the selected mailbox, a filter given twice) with error_r set: answer BAD; or
 * IX_ENOTFOUND when an event the server does not offer is asked for: answer NO [BADEVENT (...)]. Free with
 * imap_notify_set_free either way. */
int imap_notify_parse(const struct imap_arg *args, size_t n, struct imap_notify_set *r, struct buf *error_r);
void imap_notify_set_free(struct imap_notify_set *r);
/* Appends the names of the events in a mask, space separated ("MessageNew MessageExpunge ..."). */
void imap_notify_events_write(unsigned events, struct buf *out);

#endif
