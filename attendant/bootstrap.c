/* bootstrap.c - the making of a new data folder that init, init --join and restore share: checks, the service user,
 * folders, configuration and certificate, and the removal of an incomplete folder. */
#include "attendant/bootstrap.h"
#include "attendant/attendant.h"
#include "common/err.h"
#include "common/privs.h"
#include "transport/net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest certificate or key file copied in. */
#define BOOTSTRAP_MAX_TLS_FILE (1024 * 1024)
/* Most names a generated certificate gives (the host name, localhost and the addresses). */
#define BOOTSTRAP_CERT_NAMES_MAX 64

/* A NULL-terminated list of distinct names (compared without case). */
struct names {
	const char *v[BOOTSTRAP_CERT_NAMES_MAX + 1];
	char *own[BOOTSTRAP_CERT_NAMES_MAX]; /* the copies names_add_copy made */
	size_t n, n_own;
};

static void names_add(struct names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcasecmp(l->v[i], name) == 0)
			return;
	}
	if (l->n < BOOTSTRAP_CERT_NAMES_MAX)
		l->v[l->n++] = name;
}

static void names_add_copy(struct names *l, const char *name)
{
	size_t before = l->n;
	names_add(l, name);
	if (l->n > before)
		l->v[l->n - 1] = l->own[l->n_own++] = xstrdup(name);
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n_own; i++)
		free(l->own[i]);
}

static bool loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
}

/* The text of sa's address into text (INET6_ADDRSTRLEN bytes); false for a family other than IPv4 and IPv6, and for
 * IPv6 link-local addresses (they mean nothing without an interface, so no client reaches a server by one). */
static bool address_text(const struct sockaddr *sa, char *text)
{
	if (sa->sa_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, text,
				 INET6_ADDRSTRLEN) != NULL;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	return sa->sa_family == AF_INET6 && !IN6_IS_ADDR_LINKLOCAL(a6) &&
	       inet_ntop(AF_INET6, a6, text, INET6_ADDRSTRLEN) != NULL;
}

/* Adds the addresses of this machine's interfaces of family (AF_INET, or AF_UNSPEC for IPv4 and IPv6) to l. */
static void names_add_interfaces(struct names *l, int family)
{
	struct ifaddrs *all;
	if (getifaddrs(&all) < 0)
		return;
	for (struct ifaddrs *i = all; i != NULL; i = i->ifa_next) {
		char text[INET6_ADDRSTRLEN];
		if (i->ifa_addr != NULL && (family == AF_UNSPEC || i->ifa_addr->sa_family == family) &&
		    address_text(i->ifa_addr, text))
			names_add_copy(l, text);
	}
	freeifaddrs(all);
}

/* True when sa is an address of this machine: loopback, or one of its interfaces'. */
static bool address_is_ours(const struct sockaddr *sa)
{
	char text[INET6_ADDRSTRLEN];
	if (loopback(sa))
		return true;
	if (!address_text(sa, text))
		return false;
	struct names ours = { .n = 0 };
	names_add_interfaces(&ours, AF_UNSPEC);
	bool found = false;
	for (size_t i = 0; i < ours.n && !found; i++)
		found = strcmp(ours.v[i], text) == 0;
	names_free(&ours);
	return found;
}

/* Settles the service user b->user: cfg->user and its ids, or NULL (root). */
static int settle_user(struct config *cfg, struct bootstrap *b, struct buf *error_r)
{
	free(cfg->user);
	cfg->user = NULL;
	const char *user = b->user;
	if (user == NULL || strcmp(user, "root") == 0 || geteuid() != 0)
		return IX_OK;
	struct buf uerr = BUF_INIT;
	int ret = privs_ensure_user(user, &uerr);
	if (ret == IX_OK && privs_lookup(user, &b->uid, &b->gid) != IX_OK)
		ret = IX_ENOTFOUND;
	if (ret != IX_OK) {
		if (!b->user_optional)
			buf_append_str(error_r, buf_cstr(&uerr));
		buf_free(&uerr);
		return b->user_optional ? IX_OK : ret;
	}
	buf_free(&uerr);
	if (!privs_can_reach(cfg->data_dir, b->uid, b->gid)) {
		if (!b->user_optional)
			fprintf(stderr,
				"interchange: warning: the service user %s cannot reach %s (a folder above it is "
				"closed to others); the services will run as root. Put the data folder where %s can "
				"reach it to run them unprivileged.\n",
				user, cfg->data_dir, user);
		return IX_OK;
	}
	cfg->user = xstrdup(user);
	return IX_OK;
}

int bootstrap_check(struct config *cfg, struct bootstrap *b, struct buf *error_r)
{
	char *sock = config_path(cfg, ATTENDANT_SOCK);
	int too_long = strlen(sock) > CONFIG_MAX_SOCKET_PATH;
	free(sock);
	if (too_long) {
		buf_printf(error_r,
			   "the data folder path %s is too long for the directory's local socket (at most about %d "
			   "characters): choose a shorter --data",
			   cfg->data_dir, CONFIG_MAX_SOCKET_PATH - 20);
		return IX_EINVAL;
	}
	if (!folder_empty_or_missing(cfg->data_dir)) {
		buf_printf(error_r,
			   "%s already exists and is not empty: %s never overwrites a data folder (choose another "
			   "--data, or remove it if you mean to start over)",
			   cfg->data_dir, b->what);
		return IX_EEXIST;
	}
	return settle_user(cfg, b, error_r);
}

int bootstrap_make_cert(const struct config *cfg, const char *cert_path, const char *key_path, struct buf *error_r)
{
	struct names alt = { .n = 0 };
	const char *l = cfg->listen != NULL && cfg->listen[0] != '\0' ? cfg->listen : "127.0.0.1";
	if (tls_ip_literal(cfg->hostname))
		names_add(&alt, cfg->hostname);
	/* the directory's loopback listener is always there, whatever the listen setting */
	names_add(&alt, "localhost");
	names_add(&alt, "127.0.0.1");
	/* libldap checks a server reached as `localhost` against the machine's own name (gethostname, made canonical)
	 * instead: name both, so ldap://localhost verifies too */
	char machine[256];
	struct addrinfo hints = { .ai_flags = AI_CANONNAME, .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (gethostname(machine, sizeof(machine)) == 0 && memchr(machine, '\0', sizeof(machine)) != NULL &&
	    tls_host_name_valid(machine)) {
		names_add_copy(&alt, machine);
		if (getaddrinfo(machine, NULL, &hints, &res) == 0 && res->ai_canonname != NULL &&
		    tls_host_name_valid(res->ai_canonname))
			names_add_copy(&alt, res->ai_canonname);
		if (res != NULL)
			freeaddrinfo(res);
	}
	if (strcmp(l, "0.0.0.0") == 0 || strcmp(l, "::") == 0)
		names_add_interfaces(&alt, strcmp(l, "::") == 0 ? AF_UNSPEC : AF_INET);
	else
		names_add(&alt, l);
	int ret = tls_make_self_signed(cfg->hostname, alt.v, cert_path, key_path, BOOTSTRAP_CERT_DAYS, error_r);
	names_free(&alt);
	return ret;
}

void bootstrap_check_hostname(const struct config *cfg)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	const char *h = cfg->hostname;
	int rc = getaddrinfo(h, NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr,
			"interchange: warning: the host name %s does not resolve here (%s), so clients that "
			"connect by it cannot verify this server's certificate, which names it anyway. Make it "
			"resolve to an address of this machine (DNS, or a line \"ADDRESS %s\" in /etc/hosts), or "
			"have clients connect by a name or address the certificate gives ('interchange cert "
			"show').\n",
			h, gai_strerror(rc), h);
		return;
	}
	bool ours = false;
	char first[INET6_ADDRSTRLEN] = "?";
	for (struct addrinfo *a = res; a != NULL && !ours; a = a->ai_next) {
		ours = address_is_ours(a->ai_addr);
		if (a == res)
			(void)address_text(a->ai_addr, first);
	}
	freeaddrinfo(res);
	if (!ours)
		fprintf(stderr,
			"interchange: warning: the host name %s resolves to %s, which is not an address of this "
			"machine: clients that connect by it reach another machine. Make %s resolve to an address "
			"of this machine (DNS, or /etc/hosts), or init again with --hostname naming this "
			"machine.\n",
			h, first, h);
}

int bootstrap_publish_cert(const struct config *cfg, struct buf *error_r)
{
	char *cert = config_path(cfg, "tls/cert.pem"), *dir = config_path(cfg, BOOTSTRAP_PUBLIC_DIR);
	char *copy = config_path(cfg, BOOTSTRAP_PUBLIC_CERT);
	int ret = IX_OK;
	/* explicit modes: the umask (027) would take the others' bits away */
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) || chmod(dir, 0755) < 0 ||
	    file_copy(cert, copy, 0644, BOOTSTRAP_MAX_TLS_FILE) < 0 || chmod(copy, 0644) < 0 ||
	    chmod(cfg->data_dir, 0711) < 0) {
		buf_printf(error_r, "cannot publish the certificate as %s: %s", copy, strerror(errno));
		ret = IX_EIO;
	}
	free(cert);
	free(dir);
	free(copy);
	return ret;
}

int bootstrap_create(const struct config *cfg, struct bootstrap *b, struct buf *error_r)
{
	static const char *const dirs[] = { "", "run", "log", "store", "queue", "tls" };
	/* the folder itself first: once it is there, a failure removes it */
	int ret = config_make_dirs(cfg, dirs, 1, error_r);
	b->created = ret == IX_OK;
	if (ret == IX_OK)
		ret = config_make_dirs(cfg, dirs + 1, IX_ARRAY_LEN(dirs) - 1, error_r);
	if (ret == IX_OK)
		ret = config_save(cfg, error_r);
	if (ret != IX_OK)
		return ret;
	char *to[3] = { config_path(cfg, "tls/cert.pem"), config_path(cfg, "tls/key.pem"),
			config_path(cfg, "tls/peers.pem") };
	const char *from[3] = { b->cert, b->key, b->peers };
	static const int modes[3] = { 0644, 0600, 0644 };
	if (b->cert == NULL)
		ret = bootstrap_make_cert(cfg, to[0], to[1], error_r);
	for (int i = 0; i < 3 && ret == IX_OK; i++) {
		if (from[i] != NULL && file_copy(from[i], to[i], modes[i], BOOTSTRAP_MAX_TLS_FILE) < 0) {
			buf_printf(error_r, "cannot copy %s to %s: %s", from[i], to[i], strerror(errno));
			ret = IX_EIO;
		}
	}
	for (int i = 0; i < 3; i++)
		free(to[i]);
	return ret == IX_OK ? bootstrap_publish_cert(cfg, error_r) : ret;
}

int bootstrap_log_dir(const struct config *cfg, struct buf *error_r)
{
	char *dir = config_log_path(cfg, NULL);
	uid_t uid;
	gid_t gid;
	int ret = IX_OK;
	if (mkdir_p(dir, 0750) < 0 || (geteuid() == 0 && cfg->user != NULL && cfg->user[0] != '\0' &&
				       privs_lookup(cfg->user, &uid, &gid) == 0 && chown(dir, uid, gid) < 0)) {
		buf_printf(error_r, "cannot make the log folder %s: %s", dir, strerror(errno));
		ret = IX_EIO;
	}
	free(dir);
	return ret;
}

int bootstrap_chown(const struct config *cfg, const struct bootstrap *b, struct buf *error_r)
{
	return cfg->user != NULL ? privs_chown_tree(cfg->data_dir, b->uid, b->gid, error_r) : IX_OK;
}

void bootstrap_abandon(const struct config *cfg, const struct bootstrap *b)
{
	if (b->created && remove_tree(cfg->data_dir) < 0)
		fprintf(stderr, "interchange: could not remove the incomplete %s: %s\n", cfg->data_dir,
			strerror(errno));
}
