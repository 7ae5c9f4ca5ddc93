/* config.h - the bootstrap configuration of one server's data folder (<data>/interchange.conf).
 * It holds only what is needed to reach the directory and find files; everything else lives in the directory. */
#ifndef IX_CONFIG_H
#define IX_CONFIG_H

#include "common/buf.h"

#define CONFIG_FILE_NAME "interchange.conf"
#define CONFIG_MAX_BYTES (64 * 1024)
/* sockaddr_un.sun_path holds 108 bytes including the NUL */
#define CONFIG_MAX_SOCKET_PATH 107

enum config_port {
	PORT_LDAP,
	PORT_LDAPS, /* LDAP with implicit TLS (ldaps://) */
	PORT_SMTP,
	PORT_SUBMISSION,
	PORT_SUBMISSIONS, /* submission with implicit TLS (RFC 8314) */
	PORT_IMAP,
	PORT_IMAPS,
	PORT_POP3,
	PORT_POP3S,
	PORT_SIEVE, /* ManageSieve (RFC 5804, STARTTLS) */
	PORT_METRICS,
	PORT_HTTP,  /* the web server (ix-httpd): ACME challenges, client configuration */
	PORT_HTTPS, /* the same over TLS */
	PORT_COUNT
};

struct config {
	char *data_dir;     /* absolute path of the data folder */
	char *domain;       /* first accepted domain, e.g. example.com */
	char *org;          /* organisation name */
	char *hostname;     /* this server's host name */
	char *suffix;       /* directory suffix, dc=example,dc=com */
	char *admin_dn;     /* cn=admin,<suffix> */
	char *server_dn;    /* this server's entry */
	char *user;         /* system user the services run as when started as root ("" or NULL: none) */
	char *listen;       /* address the services listen on (default 127.0.0.1; "0.0.0.0"/"::" for all) */
	int anonymous_read; /* address book readable without a bind */
	unsigned ports[PORT_COUNT];
};

/* Name of a port as used in status JSON and on the command line ("ldap", "smtp", "submission", ...). */
const char *config_port_name(enum config_port p);
/* The default port numbers, all unprivileged: 3389, 3636, 2525, 2587, 2465, 1143, 1993, 1110, 1995, 4190, 9100,
 * 8080, 8443. */
unsigned config_port_default(enum config_port p);
/* The standard port numbers (init --standard-ports): 389, 636, 25, 587, 465, 143, 993, 110, 995, 4190 (ManageSieve's
 * IANA port is unprivileged), 9100 (metrics, on 127.0.0.1 only), 80, 443. Below 1024 they need the system started as root (the services keep only the right to
 * bind them). */
unsigned config_port_standard(enum config_port p);

/* Fills *cfg with defaults for a data folder (ports, names derived from the domain). data_dir is made absolute. */
void config_init_defaults(struct config *cfg, const char *data_dir, const char *domain);
/* Reads <data_dir>/interchange.conf. Returns IX_OK, IX_ENOTFOUND (no such data folder) or IX_EINVAL. */
int config_load(const char *data_dir, struct config *cfg, struct buf *error_r);
/* Writes <data_dir>/interchange.conf durably. Returns IX_OK or IX_EIO. */
int config_save(const struct config *cfg, struct buf *error_r);
void config_free(struct config *cfg);

/* Paths inside the data folder; each returns a new string the caller frees. */
char *config_path(const struct config *cfg, const char *relative);
/* The path of the service log name ("attendant.log", "slapd.log", "smtpd.log"; NULL: the folder itself): in
 * paths_logdir (/var/log/interchange when installed for Debian) when cfg's data folder is the installation's default
 * one (paths_statedir, the same folder by device and inode), in DATA/log for every other data folder (a build
 * folder's ./var, a second server's). The audit and tracking logs stay in DATA/log: they are records commands read.
 * A new string the caller frees. */
char *config_log_path(const struct config *cfg, const char *name);
/* Creates each of the n folders dirs[] inside the data folder (mkdir -p, 0750). Returns IX_OK, or IX_EIO with
 * "cannot create PATH: REASON" in error_r at the first that fails. */
int config_make_dirs(const struct config *cfg, const char *const *dirs, size_t n, struct buf *error_r);
/* ldapi:// URL of the directory's local socket (<data>/run/ldapi). */
char *config_ldapi_uri(const struct config *cfg);
/* ldapi:// URL for any socket path, percent-encoded as libldap wants it (docs/slapd-facts.md, "ldapi URLs"). */
char *config_ldapi_uri_for(const char *socket_path);
/* ldap://127.0.0.1:PORT of the directory's TCP listener. */
char *config_ldap_uri(const struct config *cfg);
/* Turns a domain into a suffix: example.com -> dc=example,dc=com. Returns NULL for an invalid domain. */
char *config_domain_to_suffix(const char *domain);
/* Checks a domain name's syntax (LDH labels, dots, 1-253 chars). Returns 1 when valid. */
int config_domain_valid(const char *domain);

#endif
