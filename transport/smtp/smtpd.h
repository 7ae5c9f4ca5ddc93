/* smtpd.h - ix-smtpd, the SMTP server of the Internet Mail Service: inbound on the SMTP port, submission on the
 * submission port; local recipients are delivered into the store in-process, the rest goes to the queue. */
#ifndef IX_SMTPD_H
#define IX_SMTPD_H

/* Worker threads that make deliveries durable (store group commit gathers their appends into one sync). */
#define SMTPD_WORKERS 16
/* Distinct client addresses tracked for the per-client connection limit and failed logins. */
#define SMTPD_CLIENTS_MAX 65536
/* Share of smtp.max_connections (per port) kept for client addresses that hold no connection yet: addresses that
 * already hold one get at most the rest, so a few addresses holding many connections cannot lock a new one out. */
#define SMTPD_RESERVE_PERCENT 10
/* Where a message a sender's DMARC policy quarantines is delivered in a user's mailbox (the \\Junk folder every
 * mailbox is made with). */
#define SMTPD_JUNK_FOLDER "Junk"
/* The answer to unauthenticated mail on port 25 with a sender in one of the organisation's domains (a forged internal
 * sender) from a client that is neither one of our servers nor an exception set for this server. */
#define SMTPD_FORGED_SENDER_REPLY                                                                                      \
	"550 5.7.1 Sender address rejected: mail from this organisation's own domain must come from a logged-in user " \
	"(authenticate first)"

/* The whole program: daemon_setup, listeners, the loop, teardown. Returns the exit status. */
int smtpd_main(int argc, char **argv);

#endif
