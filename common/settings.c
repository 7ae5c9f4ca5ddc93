/* settings.c - the table of server settings and their parsing. */
#include "common/settings.h"
#include "common/endpoint.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)

static const struct setting_def defs[SET_COUNT] = {
	[SET_SMTP_MAX_MESSAGE_SIZE] = { "smtp.max_message_size", 35 * MIB, 1 * KIB, 2 * GIB, "bytes",
					"largest message accepted (announced in EHLO SIZE)" },
	[SET_SMTP_MAX_RECIPIENTS] = { "smtp.max_recipients", 1000, 1, 100000, "",
				      "recipients per message; more get 452 4.5.3" },
	[SET_SMTP_MAX_LINE_LENGTH] = { "smtp.max_line_length", 8192, 1000, 1 * MIB, "bytes",
				       "longest command or message line" },
	[SET_SMTP_MAX_COMMANDS_BEFORE_MAIL] = { "smtp.max_commands_before_mail", 100, 5, 100000, "",
						"commands a client may send without starting a transaction" },
	[SET_SMTP_MAX_ERRORS] = { "smtp.max_errors", 10, 1, 1000, "", "errors before the server hangs up" },
	[SET_SMTP_MAX_CONNECTIONS] = { "smtp.max_connections", 1000, 1, 1000000, "", "simultaneous SMTP sessions" },
	[SET_SMTP_MAX_CONNECTIONS_PER_CLIENT] = { "smtp.max_connections_per_client", 50, 1, 100000, "",
						  "simultaneous sessions from one client address" },
	[SET_SMTP_IDLE_TIMEOUT] = { "smtp.idle_timeout", 300, 5, 86400, "seconds",
				    "silence after which a session is closed" },
	[SET_SMTP_MAX_HOPS] = { "smtp.max_hops", 50, 5, 1000, "",
				"Received headers after which a message is taken for a loop" },
	[SET_SMTP_SESSION_MAX_SECONDS] = { "smtp.session_max_seconds", 600, 1, 86400, "seconds",
					   "longest SMTP session, however busy (then 421 4.4.2)" },
	[SET_SMTP_DATA_MAX_SECONDS] = { "smtp.data_max_seconds", 300, 1, 86400, "seconds",
					"longest time to receive one message by DATA or BDAT (then 421 4.4.2)" },
	[SET_SMTP_INBOUND_CHECKS] = { "smtp.inbound_checks", 1, 0, 1, "",
				      "check SPF and DKIM of mail from outside into Authentication-Results (0: off)" },
	[SET_SMTP_MILTERS] = { "smtp.milters", 0, 0, 0, SETTING_TEXT,
			       "mail filters (milter) for port 25, in order: inet:HOST:PORT or unix:/PATH, comma-separated" },
	[SET_SMTP_SUBMISSION_MILTERS] = { "smtp.submission_milters", 0, 0, 0, SETTING_TEXT,
					  "mail filters (milter) for the submission ports (\"\": none), as smtp.milters" },
	[SET_SMTP_MILTER_DEFAULT] = { "smtp.milter_default", 1, 0, 1, "tempfail|accept",
				      "when a filter cannot be reached or does not answer in time: tempfail 1 (451), "
				      "accept 0 (go on without it)" },
	[SET_SMTP_MILTER_TIMEOUT] = { "smtp.milter_timeout", 30, 1, 3600, "seconds",
				      "longest wait for a filter's connection and for each of its replies" },
	[SET_DNS_RESOLVER] = { "dns.resolver", 0, 0, 0, SETTING_TEXT,
			       "the DNS server asked, IP[@PORT] (\"\": those of /etc/resolv.conf); answers validated" },
	[SET_DNS_TRUST_ANCHOR] = { "dns.trust_anchor", 0, 0, 0, SETTING_TEXT,
				   "file of DNSSEC trust anchors (\"\": " DNS_ROOT_KEY " when present)" },
	[SET_DNS_TIMEOUT] = { "dns.timeout", 10, 1, 300, "seconds",
			      "how long one DNS query of the mail path may take; then what needed it is deferred" },
	[SET_MTA_STS_CA_FILE] = { "mta_sts.ca_file", 0, 0, 0, SETTING_TEXT,
				  "file of CA certificates trusted besides the system's, for MTA-STS (policies, MX hosts)" },
	[SET_ARC_TRUSTED_SEALERS] = { "arc.trusted_sealers", 0, 0, 0, SETTING_TEXT,
				      "DOMAIN[,DOMAIN...]: a DMARC failure whose ARC chain passes, last sealed by one of "
				      "these, is delivered (forwarders and lists)" },
	[SET_TLSRPT_ENABLED] = { "tlsrpt.enabled", 0, 0, 1, "",
				 "1: record each outbound TLS negotiation and send the daily TLS reports (RFC 8460) to the "
				 "domains that ask for them" },
	[SET_TLSRPT_ORGANIZATION] = { "tlsrpt.organization", 0, 0, 0, SETTING_TEXT,
				      "organization-name of the TLS reports (\"\": the organisation's first domain)" },
	[SET_TLSRPT_CONTACT] = { "tlsrpt.contact", 0, 0, 0, SETTING_TEXT,
				 "contact-info of the TLS reports (\"\": postmaster@ the first domain)" },
	[SET_DMARC_REPORTS] = { "dmarc.reports", 0, 0, 1, "",
				"1: record each DMARC evaluation of mail from outside and send the aggregate reports "
				"(RFC 7489) to the domains that ask for them (rua=mailto:)" },
	[SET_DMARC_REPORT_INTERVAL] = { "dmarc.report_interval", 86400, 3600, 7 * 86400, "seconds",
					"how often the DMARC aggregate reports are sent" },
	[SET_DMARC_REPORT_ORGANIZATION] = { "dmarc.report_organization", 0, 0, 0, SETTING_TEXT,
					    "org_name of the DMARC reports (\"\": the organisation's first domain)" },
	[SET_DMARC_REPORT_CONTACT] = { "dmarc.report_contact", 0, 0, 0, SETTING_TEXT,
				       "email of the DMARC reports, and their sender (\"\": dmarc-noreply@ the first "
				       "domain)" },
	[SET_QUEUE_LIFETIME] = { "queue.lifetime", 5 * 86400, 1, 60 * 86400, "seconds",
				 "how long undeliverable mail is retried before it bounces" },
	[SET_QUEUE_RETRY_FIRST] = { "queue.retry_first", 60, 1, 86400, "seconds", "first retry delay" },
	[SET_QUEUE_RETRY_MAX] = { "queue.retry_max", 3600, 1, 86400, "seconds", "longest retry delay" },
	[SET_IMAP_IDLE_TIMEOUT] = { "imap.idle_timeout", 1800, 60, 86400, "seconds",
				    "silence after which an IMAP session is closed (RFC 3501: at least 30 minutes)" },
	[SET_IMAP_MAX_CONNECTIONS] = { "imap.max_connections", 20000, 1, 1000000, "", "simultaneous IMAP sessions" },
	[SET_POP3_IDLE_TIMEOUT] = { "pop3.idle_timeout", 600, 60, 86400, "seconds",
				    "silence after which a POP3 session is closed (RFC 1939: at least 10 minutes)" },
	[SET_IMAP_LOGIN_TIMEOUT] = { "imap.login_timeout", 60, 1, 3600, "seconds",
				     "silence before login after which an IMAP session is closed" },
	[SET_POP3_LOGIN_TIMEOUT] = { "pop3.login_timeout", 60, 1, 3600, "seconds",
				     "silence before login after which a POP3 session is closed" },
	[SET_AUTH_MAX_FAILURES] = { "auth.max_failures", 10, 1, 100000, "",
				    "failed logins of one account from one client address before that pair is blocked" },
	[SET_AUTH_MAX_ADDRESS_FAILURES] = { "auth.max_address_failures", 100, 1, 1000000, "",
					    "failed logins from one client address, all accounts, before it is blocked" },
	[SET_AUTH_MAX_ACCOUNT_FAILURES] = { "auth.max_account_failures", 30, 1, 100000, "",
					    "failed logins of one account, from all addresses, before it is blocked" },
	[SET_AUTH_FAILURE_WINDOW_SECONDS] = { "auth.failure_window_seconds", 60, 1, 86400, "seconds",
					      "the window the auth.max_*failures are counted in (from the first)" },
	[SET_AUTH_FAILURE_DELAY_MS] = { "auth.failure_delay_ms", 1000, 0, 60000, "milliseconds",
					"how long the answer to a failed login is held back" },
	[SET_AUTH_LOCKOUT_FAILURES] = { "auth.lockout_failures", 50, 1, 65535, "",
					"failed binds of an account in the directory before slapd locks it (organisation)" },
	[SET_AUTH_LOCKOUT_SECONDS] = { "auth.lockout_seconds", 300, 1, 86400, "seconds",
				       "how long slapd keeps an account locked (organisation)" },
	[SET_AUTH_LOCKOUT_WINDOW_SECONDS] = { "auth.lockout_window_seconds", 300, 1, 86400, "seconds",
					      "the window slapd counts an account's failed binds in (organisation)" },
	[SET_PASSWORD_MIN_LENGTH] = { "password.min_length", 8, 1, 1024, "characters",
				      "shortest password accepted on every path (organisation)" },
	[SET_PASSWORD_CHECK_NAMES] = { "password.check_names", 1, 0, 1, "",
				       "1: refuse a password containing the user's login, names or addresses" },
	[SET_AUTH_SCRAM_ITERATIONS] = { "auth.scram_iterations", 10000, 4096, 65536, "",
					"PBKDF2 iterations of the SCRAM verifiers made at each password change" },
	[SET_AUTH_SCRAM] = { "auth.scram", 1, 0, 2, "",
			     "SCRAM on IMAP, POP3 and SMTP: 1 without its -PLUS forms (GNU SASL clients such as "
			     "neomutt pick them and cannot bind), 2 with them inside TLS, 0 not at all" },
	[SET_STORE_RETENTION_DAYS] = { "store.retention_days", 14, 0, 3650, "days",
				       "how long expunged messages stay recoverable" },
	[SET_STORE_QUOTA_BYTES] = { "store.quota_bytes", 0, 0, 1ULL << 50, "bytes",
				    "default mailbox storage limit (0: none)" },
	[SET_STORE_QUOTA_MESSAGES] = { "store.quota_messages", 0, 0, 1ULL << 40, "",
				       "default mailbox message limit (0: none)" },
	[SET_STORE_QUOTA_WARN_PERCENT] = { "store.quota_warn_percent", 90, 1, 100, "percent",
					   "quota use at which the owner is warned" },
	[SET_STORE_DISK_WARN_FREE] = { "store.disk_warn_free", 1 * GIB, 0, 1ULL << 50, "bytes",
				       "free space on the data folder's file system below which status warns" },
	[SET_MAINT_CHECK_HOUR] = { "maintenance.check_hour", 3, 0, 23, "hour (UTC)",
				   "quiet hour of the nightly store consistency check" },
	[SET_MAINT_ORPHAN_GRACE_DAYS] = { "maintenance.orphan_grace_days", 30, 0, 3650, "days",
					  "how long a deleted user's mailbox is kept before it is removed" },
	[SET_ATTENDANT_RESTART_BACKOFF_FIRST_MS] = { "attendant.restart_backoff_first_ms", 500, 10, 60000,
						     "milliseconds",
						     "delay before restarting a service that died; doubles with each failure in a row" },
	[SET_ATTENDANT_RESTART_BACKOFF_MAX_SECONDS] = { "attendant.restart_backoff_max_seconds", 60, 1, 3600, "seconds",
							"longest delay between restarts of a failing service (it is always retried)" },
	[SET_FORWARDING_EXTERNAL] = { "forwarding.external", 0, 0, 1, "allow|deny",
				      "Sieve redirects to addresses outside the organisation (allow 1, deny 0)" },
	[SET_SIEVE_VACATION_DAYS] = { "sieve.vacation_days", 7, 1, 365, "days",
				      "an out-of-office or vacation reply goes to one sender once in this many days" },
	[SET_IMAP_PROXY] = { "imap.proxy", 1, 0, 1, "",
			     "1: an IMAP login of a user homed on another server is piped there; 0: it is answered "
			     "NO [REFERRAL imap://...] (RFC 2221) and the client goes there itself" },
	[SET_SYNC_PASSTHROUGH_CACHE_SECONDS] = { "sync.passthrough_cache_seconds", 900, 0, 86400, "seconds",
						 "how long a password a pass-through source took still signs in while "
						 "that source cannot be reached (0: never)" },
};

const struct setting_def *setting_def(enum setting_id id)
{
	return &defs[id];
}

int setting_find(const char *name)
{
	for (int i = 0; i < SET_COUNT; i++) {
		if (strcmp(defs[i].name, name) == 0)
			return i;
	}
	return -1;
}

int setting_is_text(enum setting_id id)
{
	return strcmp(defs[id].unit, SETTING_TEXT) == 0;
}

/* IP[@PORT] (IPv4 or IPv6). */
static int resolver_valid(const char *value)
{
	char ip[64];
	const char *at = strchr(value, '@');
	size_t len = at != NULL ? (size_t)(at - value) : strlen(value);
	unsigned long long port;
	if (len == 0 || len >= sizeof(ip) || (at != NULL && parse_uint(at + 1, 65535, &port) < 0) ||
	    (at != NULL && port == 0))
		return -1;
	memcpy(ip, value, len);
	ip[len] = '\0';
	unsigned char a[16];
	return inet_pton(AF_INET, ip, a) == 1 || inet_pton(AF_INET6, ip, a) == 1 ? 0 : -1;
}

int setting_parse_text(enum setting_id id, const char *value, char *why, size_t size)
{
	if (!setting_is_text(id)) {
		snprintf(why, size, "%s is not a text setting", defs[id].name);
		return -1;
	}
	if (strlen(value) >= SETTING_TEXT_MAX) {
		snprintf(why, size, "%s takes at most %d characters", defs[id].name, SETTING_TEXT_MAX - 1);
		return -1;
	}
	for (const char *c = value; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			snprintf(why, size, "%s takes no control characters", defs[id].name);
			return -1;
		}
	}
	if (id == SET_DNS_RESOLVER && value[0] != '\0' && resolver_valid(value) < 0) {
		snprintf(why, size, "dns.resolver takes an IP address with an optional @PORT (or \"\"), not \"%s\"",
			 value);
		return -1;
	}
	if (id == SET_ARC_TRUSTED_SEALERS &&
	    strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-., ") != strlen(value)) {
		snprintf(why, size, "arc.trusted_sealers takes domain names separated by commas, not \"%s\"", value);
		return -1;
	}
	if (id == SET_SMTP_MILTERS || id == SET_SMTP_SUBMISSION_MILTERS) {
		struct endpoint ep[ENDPOINT_LIST_MAX];
		size_t n;
		char reason[SETTING_TEXT_MAX + 64];
		if (endpoint_list_parse(value, ep, ENDPOINT_LIST_MAX, &n, reason, sizeof(reason)) < 0) {
			snprintf(why, size, "%s: %s", defs[id].name, reason);
			return -1;
		}
	}
	if ((id == SET_DNS_TRUST_ANCHOR || id == SET_MTA_STS_CA_FILE) && value[0] != '\0' && value[0] != '/') {
		snprintf(why, size, "%s takes an absolute file name (or \"\"), not \"%s\"", defs[id].name, value);
		return -1;
	}
	return 0;
}

int setting_parse(enum setting_id id, const char *value, unsigned long long *value_r)
{
	if (setting_is_text(id))
		return -1;
	size_t len = strlen(value);
	unsigned long long mult = 1;
	char digits[32];
	const char *bar = strchr(defs[id].unit, '|');
	if (bar != NULL) {
		size_t first = (size_t)(bar - defs[id].unit);
		if (strlen(value) == first && strncmp(value, defs[id].unit, first) == 0) {
			*value_r = 1;
			return 0;
		}
		if (strcmp(value, bar + 1) == 0) {
			*value_r = 0;
			return 0;
		}
	}
	if (len == 0 || len >= sizeof(digits))
		return -1;
	memcpy(digits, value, len + 1);
	if (strcmp(defs[id].unit, "bytes") == 0) {
		char last = digits[len - 1];
		if (last == 'k' || last == 'K')
			mult = KIB;
		else if (last == 'm' || last == 'M')
			mult = MIB;
		else if (last == 'g' || last == 'G')
			mult = GIB;
		if (mult != 1)
			digits[len - 1] = '\0';
	}
	unsigned long long v;
	if (parse_uint(digits, defs[id].max / mult, &v) < 0)
		return -1;
	v *= mult;
	if (v < defs[id].min || v > defs[id].max)
		return -1;
	*value_r = v;
	return 0;
}

void settings_load(struct settings *s, const char *const *values, size_t count)
{
	for (int i = 0; i < SET_COUNT; i++) {
		s->v[i] = defs[i].def;
		s->set[i] = 0;
		s->text[i][0] = '\0';
	}
	for (size_t i = 0; i < count; i++) {
		const char *eq = strchr(values[i], '=');
		if (eq == NULL || (size_t)(eq - values[i]) >= 64)
			continue;
		char name[64];
		memcpy(name, values[i], (size_t)(eq - values[i]));
		name[eq - values[i]] = '\0';
		int id = setting_find(name);
		unsigned long long v;
		char why[8];
		if (id >= 0 && setting_is_text(id) && setting_parse_text(id, eq + 1, why, sizeof(why)) == 0) {
			snprintf(s->text[id], sizeof(s->text[id]), "%s", eq + 1);
			s->set[id] = 1;
		} else if (id >= 0 && setting_parse(id, eq + 1, &v) == 0) {
			s->v[id] = v;
			s->set[id] = 1;
		}
	}
}
