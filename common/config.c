/* config.c - reads and writes the data folder's bootstrap file, KEY=VALUE lines. */
#include "common/config.h"
#include "common/err.h"
#include "common/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const port_names[PORT_COUNT] = { "ldap",    "ldaps", "smtp", "submission", "submissions",
						    "imap",    "imaps", "pop3", "pop3s",      "sieve",
						    "metrics", "http",  "https" };
static const unsigned port_defaults[PORT_COUNT] = { 3389, 3636, 2525, 2587, 2465, 1143, 1993,
						    1110, 1995, 4190, 9100, 8080, 8443 };
/* the IANA ports (the metrics port has none: Prometheus exporters use 9100) */
static const unsigned port_standard[PORT_COUNT] = { 389, 636, 25, 587, 465, 143, 993, 110, 995, 4190, 9100, 80, 443 };

const char *config_port_name(enum config_port p)
{
	return port_names[p];
}

unsigned config_port_default(enum config_port p)
{
	return port_defaults[p];
}

unsigned config_port_standard(enum config_port p)
{
	return port_standard[p];
}

int config_domain_valid(const char *domain)
{
	size_t len = strlen(domain), label = 0;
	if (len == 0 || len > 253 || domain[0] == '.' || domain[len - 1] == '.' || strchr(domain, '.') == NULL)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];
		if (c == '.') {
			if (label == 0 || domain[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

char *config_domain_to_suffix(const char *domain)
{
	if (!config_domain_valid(domain))
		return NULL;
	struct buf b = BUF_INIT;
	buf_append_str(&b, "dc=");
	for (const char *p = domain; *p != '\0'; p++) {
		if (*p == '.')
			buf_append_str(&b, ",dc=");
		else
			buf_append_char(&b, (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p));
	}
	return buf_steal(&b);
}

static char *absolute_path(const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		fatal("cannot read the current folder: %s", strerror(errno));
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
	while (b.len > 1 && b.data[b.len - 1] == '/')
		b.data[--b.len] = '\0';
	return buf_steal(&b);
}

void config_init_defaults(struct config *cfg, const char *data_dir, const char *domain)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = absolute_path(data_dir);
	cfg->domain = xstrdup(domain);
	cfg->suffix = config_domain_to_suffix(domain);
	if (cfg->suffix == NULL)
		cfg->suffix = xstrdup("dc=invalid");
	cfg->admin_dn = xasprintf("cn=admin,%s", cfg->suffix);
	cfg->listen = xstrdup("127.0.0.1");
	for (int p = 0; p < PORT_COUNT; p++)
		cfg->ports[p] = port_defaults[p];
}

void config_free(struct config *cfg)
{
	free(cfg->data_dir);
	free(cfg->domain);
	free(cfg->org);
	free(cfg->hostname);
	free(cfg->suffix);
	free(cfg->admin_dn);
	free(cfg->server_dn);
	free(cfg->listen);
	free(cfg->user);
	memset(cfg, 0, sizeof(*cfg));
}

char *config_path(const struct config *cfg, const char *relative)
{
	return xasprintf("%s/%s", cfg->data_dir, relative);
}

char *config_log_path(const struct config *cfg, const char *name)
{
	struct stat data, installed;
	int is_installed = stat(cfg->data_dir, &data) == 0 && stat(paths_statedir, &installed) == 0 &&
			   data.st_dev == installed.st_dev && data.st_ino == installed.st_ino;
	if (!is_installed)
		return name != NULL ? xasprintf("%s/log/%s", cfg->data_dir, name) : config_path(cfg, "log");
	return name != NULL ? xasprintf("%s/%s", paths_logdir, name) : xstrdup(paths_logdir);
}

int config_make_dirs(const struct config *cfg, const char *const *dirs, size_t n, struct buf *error_r)
{
	for (size_t i = 0; i < n; i++) {
		char *p = config_path(cfg, dirs[i]);
		int r = mkdir_p(p, 0750);
		if (r < 0)
			buf_printf(error_r, "cannot create %s: %s", p, strerror(errno));
		free(p);
		if (r < 0)
			return IX_EIO;
	}
	return IX_OK;
}

char *config_ldapi_uri_for(const char *socket_path)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "ldapi://");
	for (const unsigned char *p = (const unsigned char *)socket_path; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.')
			buf_append_char(&b, (char)*p);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	return buf_steal(&b);
}

char *config_ldapi_uri(const struct config *cfg)
{
	char *path = config_path(cfg, "run/ldapi");
	char *uri = config_ldapi_uri_for(path);
	free(path);
	return uri;
}

char *config_ldap_uri(const struct config *cfg)
{
	return xasprintf("ldap://127.0.0.1:%u", cfg->ports[PORT_LDAP]);
}

static char **string_field(struct config *cfg, const char *key)
{
	if (strcmp(key, "domain") == 0)
		return &cfg->domain;
	if (strcmp(key, "org") == 0)
		return &cfg->org;
	if (strcmp(key, "hostname") == 0)
		return &cfg->hostname;
	if (strcmp(key, "suffix") == 0)
		return &cfg->suffix;
	if (strcmp(key, "admin_dn") == 0)
		return &cfg->admin_dn;
	if (strcmp(key, "server_dn") == 0)
		return &cfg->server_dn;
	if (strcmp(key, "listen") == 0)
		return &cfg->listen;
	if (strcmp(key, "user") == 0)
		return &cfg->user;
	return NULL;
}

int config_load(const char *data_dir, struct config *cfg, struct buf *error_r)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = absolute_path(data_dir);
	char *path = config_path(cfg, CONFIG_FILE_NAME);
	char *data;
	if (read_file(path, CONFIG_MAX_BYTES, &data, NULL) < 0) {
		int e = errno;
		buf_printf(error_r, "%s is not an Interchange data folder (%s): create one with 'interchange init'",
			   cfg->data_dir, strerror(e));
		free(path);
		config_free(cfg);
		return e == ENOENT ? IX_ENOTFOUND : IX_EIO;
	}
	for (int p = 0; p < PORT_COUNT; p++)
		cfg->ports[p] = port_defaults[p];
	int ret = IX_OK;
	unsigned lineno = 0;
	for (char *save = NULL, *line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *eq = strchr(line, '=');
		if (eq == NULL) {
			buf_printf(error_r, "%s line %u: expected KEY=VALUE", path, lineno);
			ret = IX_EINVAL;
			break;
		}
		*eq = '\0';
		const char *key = line, *value = eq + 1;
		char **field = string_field(cfg, key);
		unsigned long long n;
		if (field != NULL) {
			free(*field);
			*field = xstrdup(value);
		} else if (strcmp(key, "anonymous_read") == 0) {
			cfg->anonymous_read = strcmp(value, "yes") == 0;
		} else if (strncmp(key, "port.", 5) == 0) {
			int p;
			for (p = 0; p < PORT_COUNT; p++)
				if (strcmp(key + 5, port_names[p]) == 0)
					break;
			if (p == PORT_COUNT || parse_uint(value, 65535, &n) < 0 || n == 0) {
				buf_printf(error_r, "%s line %u: bad port setting %s", path, lineno, key);
				ret = IX_EINVAL;
				break;
			}
			cfg->ports[p] = (unsigned)n;
		}
		/* unknown keys are kept for newer versions: ignored */
	}
	free(data);
	if (ret == IX_OK && cfg->listen == NULL)
		cfg->listen = xstrdup("127.0.0.1");
	if (ret == IX_OK && (cfg->domain == NULL || cfg->suffix == NULL || cfg->admin_dn == NULL)) {
		buf_printf(error_r, "%s: domain, suffix or admin_dn missing", path);
		ret = IX_EINVAL;
	}
	free(path);
	if (ret != IX_OK)
		config_free(cfg);
	return ret;
}

int config_save(const struct config *cfg, struct buf *error_r)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "# Interchange bootstrap configuration, written by 'interchange init'.\n"
			   "# Settings beyond these live in the directory (interchange server show).\n");
	buf_printf(
		&b,
		"domain=%s\norg=%s\nhostname=%s\nsuffix=%s\nadmin_dn=%s\nserver_dn=%s\nlisten=%s\nuser=%s\nanonymous_read=%s\n",
		cfg->domain, cfg->org ? cfg->org : "", cfg->hostname ? cfg->hostname : "", cfg->suffix, cfg->admin_dn,
		cfg->server_dn ? cfg->server_dn : "", cfg->listen ? cfg->listen : "127.0.0.1",
		cfg->user ? cfg->user : "", cfg->anonymous_read ? "yes" : "no");
	for (int p = 0; p < PORT_COUNT; p++)
		buf_printf(&b, "port.%s=%u\n", port_names[p], cfg->ports[p]);
	char *path = config_path(cfg, CONFIG_FILE_NAME);
	int ret = IX_OK;
	if (write_file_atomic(path, b.data, b.len, 0640) < 0) {
		buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
		ret = IX_EIO;
	}
	free(path);
	buf_free(&b);
	return ret;
}
