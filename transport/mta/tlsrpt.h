/* tlsrpt.h - TLS reporting (RFC 8460): ix-mta records the outcome of each outbound TLS negotiation with the MX hosts of
 * a domain, one line a session in a file a day under the data folder; the attendant's daily report reads them
 * (attendant/tlsrpt_report.c). The line format lives here alone. */
#ifndef IX_TLSRPT_H
#define IX_TLSRPT_H

#include <stdbool.h>
#include "common/config.h"

/* The records' folder in the data folder: TLSRPT_DIR/YYYY-MM-DD, one per UTC day (the report renames a day's file
 * before it reads it, so what ix-mta writes meanwhile goes into a new one). */
#define TLSRPT_DIR "tlsrpt"

struct tlsrpt_session {
	long long time;       /* when (seconds since the epoch) */
	char domain[256];     /* the policy domain: the recipients' */
	char policy_type[20]; /* "tlsa", "sts" or "no-policy-found" (RFC 8460 4.4) */
	char mx_host[256];
	char ip[64];       /* the receiving MX's address ("" when unknown) */
	char result[40];   /* "success" or a result-type (RFC 8460 4.3: "tlsa-invalid", "starttls-not-supported"...) */
	char policy[1024]; /* the policy string's items separated by '|' (TLSA records "3 1 1 HEX"), "" for none */
};

/* Appends s as one line to DATA/TLSRPT_DIR/YYYY-MM-DD (s's UTC day), with one write on an O_APPEND descriptor (lines
 * of several threads and processes never mix). Returns IX_OK or IX_EIO. */
int tlsrpt_record(const struct config *cfg, const struct tlsrpt_session *s);
/* Parses one line (without its line end) into s_r. Returns false when it is malformed. */
bool tlsrpt_parse(const char *line, struct tlsrpt_session *s_r);
/* The address in a peer text "HOST[IP]:PORT" (or an error text that starts with one) into ip (size bytes); "" when
 * there is none. */
void tlsrpt_peer_ip(const char *peer, char *ip, size_t size);

#endif
