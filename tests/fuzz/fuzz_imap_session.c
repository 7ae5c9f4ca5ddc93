/* fuzz_imap_session.c - fuzz target for whole IMAP and POP3 sessions: after a login (and SELECT INBOX), the input
 * is the client's byte stream (POP3 when it starts with 'P'); the session must answer without crashing, leaking
 * or hanging. Runs over a socketpair with a real store in a temporary folder and a fixed user table. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/evloop.h"
#include "transport/imap/imap_session.h"
#include "common/log.h"
#include "transport/pop3/pop3_session.h"
#include "transport/net/sasl.h"
#include "store/store.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_GUID "0123456789abcdef0123456789abcdef"
#define FUZZ_MAX_INPUT 65536
#define FUZZ_MAX_ROUNDS 400

static struct evloop *loop;
static struct store *st;

static int fz_check(void *ctx, const char *user, const char *pass, size_t passlen)
{
	(void)ctx;
	return strcmp(user, "u1") == 0 && passlen == 2 && memcmp(pass, "p1", 2) == 0 ? 0 : IX_EAUTH;
}

static int fz_lookup(void *ctx, const char *name, struct login_user *u_r)
{
	(void)ctx;
	memset(u_r, 0, sizeof(*u_r));
	if (strcmp(name, "u1") != 0 && strcmp(name, "u2") != 0)
		return IX_ENOTFOUND;
	u_r->login = xstrdup(name);
	u_r->guid = xstrdup(strcmp(name, "u1") == 0 ? FUZZ_GUID : "fedcba9876543210fedcba9876543210");
	u_r->dn = xstrdup("uid=u1,dc=example,dc=com");
	u_r->address = xstrdup("u1@example.com");
	u_r->quota_bytes = 10 * 1024 * 1024;
	return 0;
}

static void fz_groups(void *ctx, const char *dn, struct buf *ids_r)
{
	(void)ctx;
	(void)dn;
	buf_append(ids_r, "pf-admins", 10);
}

static void fz_public(void *ctx, struct buf *paths_r)
{
	(void)ctx;
	buf_append(paths_r, "/Pub/Sub", 9);
}

static void fz_users(void *ctx, struct buf *logins_r)
{
	(void)ctx;
	buf_append(logins_r, "u1\0u2", 6);
}

static void setup(void)
{
	if (loop != NULL)
		return;
	char *dir = xstrdup("/tmp/ix-fuzz-imapsess-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	struct store_settings ss;
	store_settings_default(&ss);
	ss.no_sync = 1;
	if (store_open(dir, &ss, &st, NULL) != 0 || evloop_create(&loop, NULL) != 0)
		abort();
	free(dir);
	ix_sasl_init("fuzz", NULL);
	log_set_level(LOG_LEVEL_ERROR);
}

/* Reads and drops the session's output (FUZZ_DEBUG=1 shows it). */
static void drain(int fd)
{
	char b[65536];
	ssize_t n;
	while ((n = read(fd, b, sizeof(b))) > 0)
		if (getenv("FUZZ_DEBUG") != NULL)
			fwrite(b, 1, (size_t)n, stderr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;
	setup();
	bool pop3 = size > 0 && data[0] == 'P';
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	struct login_userdb users = { .check_password = fz_check,
				      .lookup = fz_lookup,
				      .groups = fz_groups,
				      .public_folders = fz_public,
				      .users = fz_users };
	struct imap_server *isrv = NULL;
	struct pop3_server *psrv = NULL;
	const char *prefix;
	struct login_config cfg = { 0 };
	cfg.loop = loop;
	cfg.store = st;
	cfg.users = users;
	cfg.hostname = "fuzz";
	cfg.auth_limits = (struct throttle_limits){ pop3 ? 0 : 5, pop3 ? 0 : 20, pop3 ? 0 : 10, 60 };
	cfg.plaintext_on_loopback = true;
	struct login_server *ls;
	if (pop3) {
		psrv = pop3_server_create(&cfg);
		ls = pop3_server_login(psrv);
		prefix = "USER u1\r\nPASS p1\r\n";
	} else {
		struct imap_server_config icfg = { .login = cfg, .max_message_size = 100000 };
		isrv = imap_server_create(&icfg);
		ls = imap_server_login(isrv);
		prefix = "a LOGIN u1 p1\r\nb SELECT INBOX\r\n";
	}
	login_server_accept(ls, sv[0], false, NULL, NULL);
	struct buf in = BUF_INIT;
	buf_append_str(&in, prefix);
	buf_append(&in, pop3 ? data + 1 : data, pop3 ? size - 1 : size);
	size_t off = 0;
	for (int round = 0; round < FUZZ_MAX_ROUNDS; round++) {
		if (off < in.len) {
			ssize_t n = write(sv[1], in.data + off, in.len - off);
			if (n > 0)
				off += (size_t)n;
			if (off == in.len)
				shutdown(sv[1], SHUT_WR);
		}
		drain(sv[1]);
		evloop_run_once(loop, 1);
		if (login_server_sessions(ls) == 0)
			break;
	}
	drain(sv[1]);
	close(sv[1]);
	imap_server_destroy(&isrv);
	pop3_server_destroy(&psrv);
	buf_free(&in);
	return 0;
}
