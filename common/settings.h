/* settings.h - the registry of per-server settings (limits, timeouts) that live in the server's directory
 * entry as ixServerSetting NAME=VALUE values, set with `interchange server set NAME VALUE` and read by the
 * services from their directory replica (so changes apply without a restart). One table, one place. */
#ifndef IX_SETTINGS_H
#define IX_SETTINGS_H

#include <stddef.h>

enum setting_id {
	SET_SMTP_MAX_MESSAGE_SIZE,
	SET_SMTP_MAX_RECIPIENTS,
	SET_SMTP_MAX_LINE_LENGTH,
	SET_SMTP_MAX_COMMANDS_BEFORE_MAIL,
	SET_SMTP_MAX_ERRORS,
	SET_SMTP_MAX_CONNECTIONS,
	SET_SMTP_MAX_CONNECTIONS_PER_CLIENT,
	SET_SMTP_IDLE_TIMEOUT,
	SET_SMTP_MAX_HOPS,
	SET_SMTP_SESSION_MAX_SECONDS,
	SET_SMTP_DATA_MAX_SECONDS,
	SET_SMTP_INBOUND_CHECKS,
	SET_SMTP_MILTERS,
	SET_SMTP_SUBMISSION_MILTERS,
	SET_SMTP_MILTER_DEFAULT,
	SET_SMTP_MILTER_TIMEOUT,
	SET_DNS_RESOLVER,
	SET_DNS_TRUST_ANCHOR,
	SET_DNS_TIMEOUT,
	SET_MTA_STS_CA_FILE,
	SET_ARC_TRUSTED_SEALERS,
	SET_TLSRPT_ENABLED,
	SET_TLSRPT_ORGANIZATION,
	SET_TLSRPT_CONTACT,
	SET_DMARC_REPORTS,
	SET_DMARC_REPORT_INTERVAL,
	SET_DMARC_REPORT_ORGANIZATION,
	SET_DMARC_REPORT_CONTACT,
	SET_QUEUE_LIFETIME,
	SET_QUEUE_RETRY_FIRST,
	SET_QUEUE_RETRY_MAX,
	SET_IMAP_IDLE_TIMEOUT,
	SET_IMAP_MAX_CONNECTIONS,
	SET_POP3_IDLE_TIMEOUT,
	SET_IMAP_LOGIN_TIMEOUT,
	SET_POP3_LOGIN_TIMEOUT,
	SET_AUTH_MAX_FAILURES,
	SET_AUTH_MAX_ADDRESS_FAILURES,
	SET_AUTH_MAX_ACCOUNT_FAILURES,
	SET_AUTH_FAILURE_WINDOW_SECONDS,
	SET_AUTH_FAILURE_DELAY_MS,
	SET_AUTH_LOCKOUT_FAILURES,
	SET_AUTH_LOCKOUT_SECONDS,
	SET_AUTH_LOCKOUT_WINDOW_SECONDS,
	SET_PASSWORD_MIN_LENGTH,
	SET_PASSWORD_CHECK_NAMES,
	SET_AUTH_SCRAM_ITERATIONS,
	SET_AUTH_SCRAM,
	SET_STORE_RETENTION_DAYS,
	SET_STORE_QUOTA_BYTES,
	SET_STORE_QUOTA_MESSAGES,
	SET_STORE_QUOTA_WARN_PERCENT,
	SET_STORE_DISK_WARN_FREE,
	SET_MAINT_CHECK_HOUR,
	SET_MAINT_ORPHAN_GRACE_DAYS,
	SET_ATTENDANT_RESTART_BACKOFF_FIRST_MS,
	SET_ATTENDANT_RESTART_BACKOFF_MAX_SECONDS,
	SET_FORWARDING_EXTERNAL,
	SET_SIEVE_VACATION_DAYS,
	SET_IMAP_PROXY,
	SET_SYNC_PASSTHROUGH_CACHE_SECONDS,
	SET_COUNT
};

struct setting_def {
	const char *name;       /* e.g. "smtp.max_message_size" */
	unsigned long long def; /* default value */
	unsigned long long min, max;
	const char *unit;        /* "bytes", "seconds", "" ...; SETTING_TEXT for a text setting (def, min, max 0) */
	const char *description; /* one line for `server show` */
};

/* The unit of the settings whose value is text (kept in struct settings' text, at most SETTING_TEXT_MAX - 1 bytes;
 * "" is their default). */
#define SETTING_TEXT "text"
#define SETTING_TEXT_MAX 256
/* Debian's DNSSEC trust anchor of the root zone (package dns-root-data), the default of dns.trust_anchor. */
#define DNS_ROOT_KEY "/usr/share/dns/root.key"

/* The definition of setting id (0 <= id < SET_COUNT). */
const struct setting_def *setting_def(enum setting_id id);
/* Finds a setting by name; returns its id or -1. */
int setting_find(const char *name);
/* Parses value for setting id (decimal, optional k/m/g suffix for bytes; for a setting whose unit names two words,
 * "allow|deny" or "tempfail|accept", the first word is 1 and the second 0). Returns 0 or -1 when it is not a
 * number or out of range. */
int setting_parse(enum setting_id id, const char *value, unsigned long long *value_r);
/* True when id is a text setting. */
int setting_is_text(enum setting_id id);
/* Checks value for the text setting id: returns 0, or -1 with what is wrong in why (size bytes). */
int setting_parse_text(enum setting_id id, const char *value, char *why, size_t size);

/* Effective values of all settings, from ixServerSetting "NAME=VALUE" strings; unknown names and bad values
 * are ignored (the defaults stay), so a newer setting never breaks an older service. */
struct settings {
	unsigned long long v[SET_COUNT];
	unsigned char set[SET_COUNT];           /* 1 when given in the directory rather than defaulted */
	char text[SET_COUNT][SETTING_TEXT_MAX]; /* the values of text settings ("" for the others) */
};
void settings_load(struct settings *s, const char *const *values, size_t count);

#endif
