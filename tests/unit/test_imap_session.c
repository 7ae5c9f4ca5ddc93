/* test_imap_session.c - IMAP and POP3 sessions without slapd: a real store in a temporary folder, a fixed user
 * table, a socketpair as the connection; commands whole, pipelined and byte by byte, and bad input. */
#include "tests/unit/test.h"
#include "common/err.h"
#include "common/evloop.h"
#include "transport/imap/imap_session.h"
#include "transport/pop3/pop3_session.h"
#include "transport/net/sasl.h"
#include "store/store.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GUID "0123456789abcdef0123456789abcdef"
#define GUID2 "fedcba9876543210fedcba9876543210" /* u2's mailbox: shares folders with u1, never logs in */
#define MAX_ROUNDS 400
#define ROUND_MSECS 10

static struct evloop *loop;
static struct store *st;
static struct workpool *pool, *read_pool;
static char dirbuf[] = "/tmp/ix-imapsess-XXXXXX";

static int fake_check(void *ctx, const char *user, const char *pass, size_t passlen)
{
	(void)ctx;
	bool known = strcmp(user, "u1") == 0 || strcmp(user, "u1@example.com") == 0 ||
		     strcmp(user, "j\xc3\xb6rg@example.com") == 0; /* a UTF-8 address (RFC 6856 UTF8 USER) */
	return known && passlen == 2 && memcmp(pass, "p1", 2) == 0 ? 0 : IX_EAUTH;
}

static int fake_lookup(void *ctx, const char *name, struct login_user *u_r)
{
	(void)ctx;
	memset(u_r, 0, sizeof(*u_r));
	if (strcmp(name, "u2") == 0) {
		u_r->login = xstrdup("u2");
		u_r->guid = xstrdup(GUID2);
		u_r->dn = xstrdup("uid=u2,ou=Recipients,dc=example,dc=com");
		u_r->address = xstrdup("u2@example.com");
		return 0;
	}
	if (strcmp(name, "u1") != 0 && strcmp(name, "u1@example.com") != 0 &&
	    strcmp(name, "j\xc3\xb6rg@example.com") != 0)
		return IX_ENOTFOUND;
	u_r->login = xstrdup("u1");
	u_r->guid = xstrdup(GUID);
	u_r->dn = xstrdup("uid=u1,ou=Recipients,dc=example,dc=com");
	u_r->address = xstrdup("u1@example.com");
	return 0;
}

static void fake_groups(void *ctx, const char *dn, struct buf *ids_r)
{
	(void)ctx;
	(void)dn;
	(void)ids_r;
}

static void fake_public(void *ctx, struct buf *paths_r)
{
	(void)ctx;
	buf_append(paths_r, "/Pub", 5);
}

static int fake_admin(void *ctx, const char *pass, size_t passlen)
{
	(void)ctx;
	return passlen == 8 && memcmp(pass, "admin-pw", 8) == 0 ? 0 : IX_EAUTH;
}

static struct login_userdb users = { fake_check, fake_lookup, fake_groups, fake_public, NULL, NULL,
				     NULL,       fake_admin,  NULL,        NULL,        NULL };

static void setup(void)
{
	if (loop != NULL)
		return;
	test_assert(mkdtemp(dirbuf) != NULL);
	struct store_settings ss;
	store_settings_default(&ss);
	ss.no_sync = 1;
	test_assert(store_open(dirbuf, &ss, &st, NULL) == 0);
	test_assert(evloop_create(&loop, NULL) == 0);
	test_assert(workpool_create(loop, 2, &pool, NULL) == 0);
	test_assert(workpool_create(loop, 1, &read_pool, NULL) == 0);
	ix_sasl_init("test", NULL);
}

struct client {
	int fd;
	struct buf in;
	void *srv;
	bool pop3;
	bool shared; /* on another client's server (client_join): that one frees it */
};

/* The silence allowed before login in the sessions client_open makes (0: the default). */
static unsigned login_timeout_msecs;

/* A zeroed client holding one end of a new socketpair; *sfd_r: the server's end. */
static void client_socket(struct client *c, int *sfd_r)
{
	int sv[2] = { -1, -1 };
	memset(c, 0, sizeof(*c));
	*sfd_r = -1;
	test_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	c->fd = sv[1];
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	*sfd_r = sv[0];
}

static void client_open(struct client *c, bool pop3)
{
	int sfd;
	client_socket(c, &sfd);
	c->pop3 = pop3;
	struct login_config cfg = { 0 };
	cfg.loop = loop;
	cfg.store = st;
	cfg.users = users;
	cfg.pool = pool;
	cfg.read_pool = read_pool;
	cfg.hostname = "test";
	/* 3 failures of an account from an address, 5 from an address; failures answered 1 ms late (the timer) */
	cfg.auth_limits = (struct throttle_limits){
		.pair_max = 3, .address_max = 5, .account_max = 100, .window_secs = 60
	};
	cfg.auth_failure_delay_msecs = 1;
	cfg.plaintext_on_loopback = true;
	cfg.login_timeout_msecs = login_timeout_msecs;
	struct login_server *ls;
	if (pop3) {
		c->srv = pop3_server_create(&cfg);
		ls = pop3_server_login(c->srv);
	} else {
		struct imap_server_config icfg = { .login = cfg, .max_message_size = 100000 };
		c->srv = imap_server_create(&icfg);
		ls = imap_server_login(c->srv);
	}
	login_server_accept(ls, sfd, false, NULL, NULL);
}

/* Another IMAP session on first's server, as the daemon's sessions share one. */
static void client_join(struct client *c, struct client *first)
{
	int sfd;
	client_socket(c, &sfd);
	c->srv = first->srv;
	c->shared = true;
	login_server_accept(imap_server_login(c->srv), sfd, false, NULL, NULL);
}

static void client_close(struct client *c)
{
	close(c->fd);
	for (int i = 0; i < 5; i++)
		evloop_run_once(loop, ROUND_MSECS);
	if (c->shared) {
		buf_free(&c->in);
		return;
	}
	if (c->pop3) {
		struct pop3_server *p = c->srv;
		pop3_server_destroy(&p);
	} else {
		struct imap_server *p = c->srv;
		imap_server_destroy(&p);
	}
	buf_free(&c->in);
}

/* Adds what the server has sent so far to c->in. */
static void client_read(struct client *c)
{
	char b[65536];
	ssize_t n;
	while ((n = read(c->fd, b, sizeof(b))) > 0)
		buf_append(&c->in, b, (size_t)n);
}

/* Runs the loop until the output holds needle (or gives up); returns whether it does. */
static bool wait_for(struct client *c, const char *needle)
{
	for (int i = 0; i < MAX_ROUNDS; i++) {
		client_read(c);
		if (c->in.len > 0 && memmem(c->in.data, c->in.len, needle, strlen(needle)) != NULL)
			return true; /* memmem: the output may hold NULs (literal8) */
		evloop_run_once(loop, ROUND_MSECS);
	}
	fprintf(stderr, "did not see \"%s\" in: %s\n", needle, buf_cstr(&c->in));
	return false;
}

static void send_str(struct client *c, const char *s)
{
	size_t len = strlen(s), off = 0;
	while (off < len) {
		ssize_t n = write(c->fd, s + off, len - off);
		if (n > 0)
			off += (size_t)n;
		else
			evloop_run_once(loop, ROUND_MSECS);
	}
}

static void login(struct client *c)
{
	test_assert(wait_for(c, "* OK"));
	send_str(c, "l1 LOGIN u1 p1\r\n");
	test_assert(wait_for(c, "l1 OK"));
}

static void imap_login_and_states(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	test_assert(wait_for(&c, "* OK [CAPABILITY IMAP4rev1"));
	send_str(&c, "a SELECT INBOX\r\nb LOGIN u1 wrong\r\nc LOGIN nobody p1\r\n");
	test_assert(wait_for(&c, "c NO [AUTHENTICATIONFAILED]"));
	test_assert(strstr(buf_cstr(&c.in), "a BAD") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "b NO [AUTHENTICATIONFAILED]") != NULL);
	send_str(&c, "d LOGIN u1@example.com p1\r\ne LOGIN u1 p1\r\nf CAPABILITY\r\n");
	test_assert(wait_for(&c, "f OK"));
	test_assert(strstr(buf_cstr(&c.in), "d OK [CAPABILITY") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "e BAD") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "UIDPLUS") != NULL);
	client_close(&c);
}

/* X-IX-IMPORT (a mailbox move): the administrator acting for a user imports keeping UIDVALIDITY and UIDs; an
 * ordinary login may not use it */
static void imap_import_admin_only(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "x1 X-IX-IMPORT FOLDERS\r\n");
	test_assert(wait_for(&c, "x1 NO [NOPERM]"));
	client_close(&c);
	client_open(&c, false);
	test_assert(wait_for(&c, "* OK"));
	send_str(&c, "i1 X-IX-IMPORT LOGIN u1 wrong\r\ni2 X-IX-IMPORT LOGIN u1 admin-pw\r\n"
		     "i3 X-IX-IMPORT FOLDER {4+}\r\nKeep 777 0 0 1\r\n"
		     "i4 X-IX-IMPORT APPEND Keep 5 1 1700000000 \"$Label1\" {13+}\r\nSubject: x\r\n\r\n\r\n"
		     "i5 X-IX-IMPORT APPEND Keep 3 0 0 \"\" {13+}\r\nSubject: y\r\n\r\n\r\n"
		     "i6 X-IX-IMPORT UIDS Keep\r\ni7 STATUS Keep (UIDVALIDITY UIDNEXT)\r\ni8 X-IX-IMPORT BOGUS\r\n"
		     "i9 X-IX-IMPORT APPENDS Keep 7 0 1700000000 1600000000 \"\" {13+}\r\nSubject: z\r\n\r\n\r\n"
		     "j1 SELECT Keep\r\nj2 UID FETCH 5:7 (SAVEDATE)\r\n");
	test_assert(wait_for(&c, "j2 OK"));
	const char *in = buf_cstr(&c.in);
	test_assert(strstr(in, "i1 NO [AUTHENTICATIONFAILED]") != NULL && strstr(in, "i2 OK") != NULL);
	test_assert(strstr(in, "i3 OK") != NULL && strstr(in, "i4 OK") != NULL);
	test_assert(strstr(in, "i5 NO [CANNOT]") != NULL && strstr(in, "UID 3 is below") != NULL);
	test_assert(strstr(in, "* X-IX-IMPORT UID 5 1 $Label1\r\n") != NULL);
	test_assert(strstr(in, "UIDVALIDITY 777 UIDNEXT 6") != NULL);
	test_assert(strstr(in, "i8 BAD") != NULL && strstr(in, "i9 OK") != NULL);
	/* APPEND gives an imported message no save date, APPENDS the one the source sent (RFC 8514) */
	test_assert(strstr(in, "(UID 5 SAVEDATE NIL)") != NULL);
	test_assert(strstr(in, "(UID 7 SAVEDATE \"13-Sep-2020 12:26:40 +0000\")") != NULL);
	client_close(&c);
}

static void imap_throttle(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	/* the pair (address, u1) is blocked after 3, without a password check: said as blocked, not as wrong */
	send_str(&c, "a LOGIN u1 x\r\nb LOGIN u1 x\r\nc LOGIN u1 x\r\nd LOGIN u1 p1\r\n");
	test_assert(wait_for(
		&c, "d NO [UNAVAILABLE] Temporarily blocked after too many failed logins; try again later.\r\n"));
	test_assert(strstr(buf_cstr(&c.in), "c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n") != NULL);
	/* another account from the address is still checked */
	send_str(&c, "e LOGIN nobody x\r\n");
	test_assert(wait_for(&c, "e NO [AUTHENTICATIONFAILED]"));
	/* X-IX-IMPORT LOGIN of u1 goes through the same throttle, with the same answer */
	send_str(&c, "f X-IX-IMPORT LOGIN u1 admin-pw\r\n");
	test_assert(wait_for(&c, "f NO [UNAVAILABLE] Temporarily blocked"));
	/* the fifth failure from the address blocks every account from it */
	send_str(&c, "g LOGIN nobody x\r\nh LOGIN u1@example.com p1\r\n");
	test_assert(wait_for(&c, "h NO [UNAVAILABLE] Temporarily blocked"));
	test_assert(strstr(buf_cstr(&c.in), "g NO [AUTHENTICATIONFAILED]") != NULL);
	client_close(&c);
	/* and import failures count towards it */
	client_open(&c, false);
	send_str(&c, "a X-IX-IMPORT LOGIN u1 x\r\nb X-IX-IMPORT LOGIN u1 x\r\nc X-IX-IMPORT LOGIN u1 x\r\n"
		     "d LOGIN u1 p1\r\n");
	test_assert(wait_for(&c, "d NO [UNAVAILABLE] Temporarily blocked"));
	test_assert(strstr(buf_cstr(&c.in), "c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n") != NULL);
	client_close(&c);
}

static void imap_append_fetch_search_store(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a APPEND INBOX (\\Flagged) {56}\r\n");
	test_assert(wait_for(&c, "+ OK"));
	send_str(&c, "From: x@example.org\r\nSubject: hello there\r\n\r\nbody text\r\n\r\n");
	test_assert(wait_for(&c, "a OK [APPENDUID"));
	send_str(&c, "b APPEND INBOX {23+}\r\nSubject: second\r\n\r\nzz\r\n\r\nc SELECT INBOX\r\n");
	test_assert(wait_for(&c, "c OK [READ-WRITE]"));
	test_assert(strstr(buf_cstr(&c.in), "* 2 EXISTS") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "* 2 RECENT") != NULL);
	buf_reset(&c.in);
	send_str(&c, "d FETCH 1 (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)\r\n");
	test_assert(wait_for(&c, "d OK"));
	test_assert(strstr(buf_cstr(&c.in), "\\Flagged") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "RFC822.SIZE 56") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "Subject: hello there\r\n\r\n") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "\"hello there\"") != NULL);
	send_str(&c, "e SEARCH SUBJECT second\r\nf UID SEARCH RETURN (COUNT) BODY text\r\n");
	test_assert(wait_for(&c, "f OK"));
	test_assert(strstr(buf_cstr(&c.in), "* SEARCH 2\r\n") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "COUNT 1") != NULL);
	send_str(&c, "g STORE 2 +FLAGS (\\Deleted)\r\nh EXPUNGE\r\n");
	test_assert(wait_for(&c, "h OK"));
	test_assert(strstr(buf_cstr(&c.in), "* 2 EXPUNGE") != NULL);
	/* a command fed one byte at a time */
	const char *cmd = "i FETCH 1 (BODY[TEXT])\r\n";
	for (const char *p = cmd; *p != '\0'; p++) {
		char one[2] = { *p, 0 };
		send_str(&c, one);
		evloop_run_once(loop, 0);
	}
	test_assert(wait_for(&c, "i OK"));
	test_assert(strstr(buf_cstr(&c.in), "BODY[TEXT] {11}\r\nbody text\r\n") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "\\Seen") != NULL);
	client_close(&c);
}

static void imap_bad_input(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a SELECT INBOX\r\nb FETCH 99 FLAGS\r\nc FETCH 1:* (FLAGS\r\nd APPEND INBOX {200000}\r\n"
		     "e UID FETCH 1:4294967295 (UID)\r\nf SEARCH NOT NOT NOT\r\ng FOO\r\nh LIST \"\" \"*\"\r\n"
		     "i STORE 1 FLAGS (\\Recent)\r\nj IDLE\r\nDONE\r\nk NOOP\r\n");
	test_assert(wait_for(&c, "k OK"));
	const char *out = buf_cstr(&c.in);
	test_assert(strstr(out, "b BAD") != NULL);
	test_assert(strstr(out, "c BAD") != NULL);
	/* above max_message_size the parser refuses the announcement itself (as the daemon does: test_hostile) */
	test_assert(strstr(out, "\r\nd BAD Literal too large\r\n") != NULL);
	test_assert(strstr(out, "e OK") != NULL);
	test_assert(strstr(out, "f BAD") != NULL);
	test_assert(strstr(out, "g BAD") != NULL);
	test_assert(strstr(out, "\"Public Folders/Pub\"") != NULL);
	test_assert(strstr(out, "i BAD") != NULL);
	test_assert(strstr(out, "j OK") != NULL);
	client_close(&c);
}

/* Two sessions on one folder: updates arrive at the allowed points only (RFC 3501 7.4.1: no EXPUNGE while
 * answering FETCH, STORE or SEARCH by sequence numbers, so the numbers the client uses stay valid). */
static void imap_concurrent_sessions(void)
{
	setup();
	struct client a, b;
	client_open(&a, false);
	client_open(&b, false);
	login(&a);
	login(&b);
	send_str(&a, "c CREATE Shared\r\n");
	test_assert(wait_for(&a, "c OK"));
	for (int i = 0; i < 3; i++) {
		send_str(&a, "d APPEND Shared {20+}\r\nSubject: m\r\n\r\nbody\r\n\r\n");
		test_assert(wait_for(&a, "d OK [APPENDUID"));
		buf_reset(&a.in);
	}
	send_str(&a, "e SELECT Shared\r\n");
	test_assert(wait_for(&a, "e OK [READ-WRITE]"));
	test_assert(strstr(buf_cstr(&a.in), "* 3 EXISTS") != NULL);
	send_str(&b, "f SELECT Shared\r\ng STORE 2 +FLAGS (\\Deleted)\r\nh EXPUNGE\r\n");
	test_assert(wait_for(&b, "h OK"));
	buf_reset(&a.in);
	/* a FETCH by sequence number still sees 3 messages and no EXPUNGE */
	send_str(&a, "i FETCH 3 (UID)\r\n");
	test_assert(wait_for(&a, "i OK"));
	test_assert(strstr(buf_cstr(&a.in), "EXPUNGE") == NULL);
	test_assert(strstr(buf_cstr(&a.in), "* 3 FETCH (UID 3)") != NULL);
	/* NOOP delivers it */
	buf_reset(&a.in);
	send_str(&a, "j NOOP\r\n");
	test_assert(wait_for(&a, "j OK"));
	test_assert(strstr(buf_cstr(&a.in), "* 2 EXPUNGE") != NULL);
	/* a flag change and a new message from b */
	buf_reset(&a.in);
	send_str(&b, "k STORE 1 +FLAGS (\\Flagged)\r\nl APPEND Shared {20+}\r\nSubject: n\r\n\r\nbody\r\n\r\n");
	test_assert(wait_for(&b, "l OK"));
	send_str(&a, "m IDLE\r\n");
	test_assert(wait_for(&a, "* 3 EXISTS"));
	test_assert(strstr(buf_cstr(&a.in), "* 1 FETCH (FLAGS (\\Flagged") != NULL);
	send_str(&a, "DONE\r\n");
	test_assert(wait_for(&a, "m OK"));
	/* CLOSE expunges silently (on the pool) */
	buf_reset(&a.in);
	send_str(&a, "n STORE 1 +FLAGS.SILENT (\\Deleted)\r\no CLOSE\r\np STATUS Shared (MESSAGES)\r\n");
	test_assert(wait_for(&a, "p OK"));
	test_assert(strstr(buf_cstr(&a.in), "EXPUNGE") == NULL);
	test_assert(strstr(buf_cstr(&a.in), "(MESSAGES 2)") != NULL);
	client_close(&a);
	client_close(&b);
}

/* Returns the position of needle in the client's output (-1: absent). */
static long out_pos(struct client *c, const char *needle)
{
	const char *in = buf_cstr(&c->in), *p = strstr(in, needle);
	return p != NULL ? (long)(p - in) : -1;
}

#define SYSFLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

/* FLAGS and PERMANENTFLAGS list the keywords the mailbox holds, and a new keyword is announced by a new FLAGS
 * before any response that carries it (RFC 3501 7.2.6), in the session that set it and in the others. */
static void imap_keywords_announced(void)
{
	setup();
	struct client a, b;
	client_open(&a, false);
	client_open(&b, false);
	login(&a);
	login(&b);
	send_str(&a, "c CREATE Kw\r\nd APPEND Kw ($Label1) {20+}\r\nSubject: k\r\n\r\nbody\r\n\r\n");
	test_assert(wait_for(&a, "d OK [APPENDUID"));
	send_str(&a, "e SELECT Kw\r\n");
	test_assert(wait_for(&a, "e OK [READ-WRITE]"));
	test_assert(out_pos(&a, "* FLAGS (" SYSFLAGS " $Label1)\r\n* OK [PERMANENTFLAGS (" SYSFLAGS
				" $Label1 \\*)] Flags permitted.\r\n") >= 0);
	send_str(&b, "f EXAMINE Kw\r\n");
	test_assert(wait_for(&b, "f OK [READ-ONLY]"));
	test_assert(out_pos(&b, "* FLAGS (" SYSFLAGS " $Label1)\r\n* OK [PERMANENTFLAGS ()] Flags permitted.\r\n") >=
		    0);
	buf_reset(&a.in);
	buf_reset(&b.in);
	send_str(&a, "g STORE 1 +FLAGS (Foo)\r\n");
	test_assert(wait_for(&a, "g OK"));
	const char *flags = "* FLAGS (" SYSFLAGS " $Label1 Foo)\r\n* OK [PERMANENTFLAGS (" SYSFLAGS
			    " $Label1 Foo \\*)] Flags permitted.\r\n* 1 FETCH (FLAGS (\\Recent $Label1 Foo))\r\n";
	test_assert(out_pos(&a, flags) == 0);
	send_str(&b, "h NOOP\r\n");
	test_assert(wait_for(&b, "h OK"));
	test_assert(out_pos(&b, "* FLAGS (" SYSFLAGS " $Label1 Foo)\r\n* OK [PERMANENTFLAGS ()] Flags permitted.\r\n"
				"* 1 FETCH (FLAGS (") == 0);
	test_assert(out_pos(&b, "$Label1 Foo))\r\n") > 0);
	/* a message arriving with a keyword: FLAGS before EXISTS; a FETCH of known keywords announces nothing */
	buf_reset(&b.in);
	send_str(&a, "i APPEND Kw (Bar) {20+}\r\nSubject: l\r\n\r\nbody\r\n\r\n");
	test_assert(wait_for(&a, "i OK [APPENDUID"));
	send_str(&b, "j NOOP\r\nk FETCH 1:2 (FLAGS)\r\n");
	test_assert(wait_for(&b, "k OK"));
	long fl = out_pos(&b, "* FLAGS (" SYSFLAGS " $Label1 Foo Bar)\r\n"), ex = out_pos(&b, "* 2 EXISTS\r\n");
	test_assert(fl >= 0 && ex > fl);
	test_assert(strstr(buf_cstr(&b.in) + fl + 1, "* FLAGS") == NULL);
	/* NIL is an atom, so a keyword in STORE (RFC 3501 flag-keyword) */
	buf_reset(&a.in);
	send_str(&a, "l STORE 1 +FLAGS NIL\r\n");
	test_assert(wait_for(&a, "l OK Store completed.\r\n"));
	test_assert(out_pos(&a, " NIL))\r\n") > 0);
	client_close(&a);
	client_close(&b);
}

/* Holding both worker threads (pool_block) keeps the store's \Recent clearing pending, as a slow disk would. */
static int gate[2] = { -1, -1 };

static void gate_run(void *arg)
{
	(void)arg;
	char ch;
	test_assert(read(gate[0], &ch, 1) == 1);
}

static void gate_done(void *arg)
{
	(void)arg;
}

static void pool_block(void)
{
	test_assert(pipe(gate) == 0);
	workpool_submit(pool, gate_run, gate_done, NULL);
	workpool_submit(pool, gate_run, gate_done, NULL);
}

static void pool_release(void)
{
	test_assert(write(gate[1], "xx", 2) == 2);
	for (int i = 0; i < 10; i++)
		evloop_run_once(loop, ROUND_MSECS);
	close(gate[0]);
	close(gate[1]);
}

static void append_msg(const char *folder, const char *msg)
{
	struct store_target tg = { .guid = GUID, .folder = folder };
	struct store_append ap = { .data = msg, .len = strlen(msg), .targets = &tg, .ntargets = 1 };
	test_assert(store_append(st, &ap, NULL) == 0);
}

static void append_direct(const char *folder)
{
	append_msg(folder, "Subject: r\r\n\r\nbody\r\n");
}

/* \Recent belongs to exactly one session and every view agrees (RFC 3501 2.3.2), even while the store's clearing is
 * still under way: STATUS from another connection, a second SELECT, a read-only EXAMINE and new arrivals. */
static void imap_recent_owned_once(void)
{
	setup();
	struct client a, b, c;
	client_open(&a, false);
	client_join(&b, &a);
	client_join(&c, &a);
	login(&a);
	login(&b);
	login(&c);
	send_str(&a, "c CREATE Rec\r\n");
	test_assert(wait_for(&a, "c OK"));
	append_direct("Rec");
	pool_block();
	send_str(&a, "d SELECT Rec\r\n");
	test_assert(wait_for(&a, "d OK [READ-WRITE]"));
	test_assert(out_pos(&a, "* 1 EXISTS\r\n* 1 RECENT\r\n") >= 0);
	send_str(&b, "e STATUS Rec (MESSAGES RECENT)\r\nf SELECT Rec\r\n");
	test_assert(wait_for(&b, "f OK [READ-WRITE]"));
	test_assert(out_pos(&b, "* STATUS Rec (MESSAGES 1 RECENT 0)\r\n") >= 0);
	test_assert(out_pos(&b, "* 1 EXISTS\r\n* 0 RECENT\r\n") >= 0);
	send_str(&c, "g EXAMINE Rec\r\n");
	test_assert(wait_for(&c, "g OK [READ-ONLY]"));
	test_assert(out_pos(&c, "* 1 EXISTS\r\n* 0 RECENT\r\n") >= 0);
	/* a new message: the first session to be told takes it, the other does not */
	append_direct("Rec");
	buf_reset(&a.in);
	buf_reset(&b.in);
	send_str(&b, "h NOOP\r\n");
	test_assert(wait_for(&b, "h OK"));
	test_assert(out_pos(&b, "* 2 EXISTS\r\n* 1 RECENT\r\n") >= 0);
	send_str(&a, "i NOOP\r\nj FETCH 2 (FLAGS)\r\n");
	test_assert(wait_for(&a, "j OK"));
	test_assert(out_pos(&a, "* 2 EXISTS\r\n* 1 RECENT\r\n") >= 0); /* its own first message only */
	test_assert(out_pos(&a, "* 2 FETCH (FLAGS ())\r\n") >= 0);
	send_str(&c, "k STATUS Rec (RECENT)\r\n");
	test_assert(wait_for(&c, "k OK"));
	test_assert(out_pos(&c, "* STATUS Rec (RECENT 0)\r\n") >= 0);
	pool_release();
	/* once the store has caught up it says the same */
	struct store_folder_info info;
	test_assert(store_folder_status(st, GUID, "Rec", NULL, &info, NULL) == 0);
	test_assert(info.recent == 0);
	store_folder_info_free(&info);
	client_close(&c);
	client_close(&b);
	client_close(&a);
}

/* FETCH of MODSEQ and SEARCH MODSEQ enable CONDSTORE (RFC 7162 3.1): later STORE answers carry MODSEQ */
static void imap_modseq_enables_condstore(void)
{
	setup();
	struct client c;
	for (int round = 0; round < 2; round++) {
		client_open(&c, false);
		login(&c);
		send_str(&c, "a SELECT INBOX\r\nb STORE 1 +FLAGS (\\Flagged)\r\n");
		test_assert(wait_for(&c, "b OK"));
		test_assert(out_pos(&c, "* 1 FETCH (FLAGS (\\Flagged") >= 0 && out_pos(&c, " MODSEQ (") < 0);
		send_str(&c, round == 0 ? "c FETCH 1 (MODSEQ)\r\n" : "c SEARCH MODSEQ 1\r\n");
		test_assert(wait_for(&c, "c OK"));
		buf_reset(&c.in);
		send_str(&c, "d STORE 1 -FLAGS (\\Flagged)\r\n");
		test_assert(wait_for(&c, "d OK"));
		test_assert(out_pos(&c, " MODSEQ (") > 0);
		client_close(&c);
	}
}

/* A logged-in session with folder Srch selected: message 1 has a From with comments inside the address, two To
 * fields, two X-Tag fields and a Date an hour east of UTC just after midnight; message 2 a Cc with comments and a
 * Date five hours west of UTC just before midnight (so each one's date as written and its UTC date differ). */
static void search_folder_open(struct client *c)
{
	static bool made;
	client_open(c, false);
	login(c);
	if (!made) {
		made = true;
		send_str(c, "s1 CREATE Srch\r\n");
		test_assert(wait_for(c, "s1 OK"));
		append_msg("Srch", "From: <user-from (comment)@ (comment) domain.org>\r\nTo: a@x.org\r\n"
				   "To: Second <second@y.org>\r\nX-Tag: one\r\nX-Tag: two\r\n"
				   "Date: Mon, 1 Jan 2024 00:59:00 +0100\r\nSubject: a\r\n\r\nbody\r\n");
		append_msg("Srch", "From: Bob <bob@z.org>\r\nCc: \"Carol (x)\" <carol (home) @ example.net>\r\n"
				   "Date: Sun, 31 Dec 2023 23:30:00 -0500\r\nSubject: b\r\n\r\nbody\r\n");
	}
	send_str(c, "s2 SELECT Srch\r\n");
	test_assert(wait_for(c, "s2 OK [READ-WRITE]"));
	buf_reset(&c->in);
}

/* Sends a SEARCH and checks its exact answer ("* SEARCH 1 2\r\n" and the tagged OK). */
static void search_expect(struct client *c, const char *criteria, const char *result)
{
	char *cmd = xasprintf("q SEARCH %s\r\n", criteria), *want = xasprintf("* SEARCH%s\r\nq OK", result);
	buf_reset(&c->in);
	send_str(c, cmd);
	test_assert(wait_for(c, "q OK"));
	if (out_pos(c, want) != 0)
		fprintf(stderr, "SEARCH %s: got %s\n", criteria, buf_cstr(&c->in));
	test_assert(out_pos(c, want) == 0);
	free(cmd);
	free(want);
}

/* FROM, TO, CC and BCC match the ENVELOPE's addresses (RFC 3501 6.4.4): comments inside an address are not part
 * of it */
static void imap_search_address_comments(void)
{
	setup();
	struct client c;
	search_folder_open(&c);
	search_expect(&c, "FROM user-from@domain.org", " 1");
	search_expect(&c, "FROM \"<user-from@domain.org>\"", " 1");
	search_expect(&c, "CC carol@example.net", " 2");
	search_expect(&c, "CC \"Carol (x) <carol@\"", " 2");
	search_expect(&c, "FROM comment", " 1"); /* the field as written still matches */
	search_expect(&c, "FROM nobody@domain.org", "");
	client_close(&c);
}

/* SENTBEFORE, SENTON and SENTSINCE compare the Date field's date as written, disregarding time and zone
 * (RFC 3501 6.4.4), not its UTC date */
static void imap_search_sent_date_as_written(void)
{
	setup();
	struct client c;
	search_folder_open(&c);
	search_expect(&c, "SENTON 1-Jan-2024", " 1");
	search_expect(&c, "SENTON 31-Dec-2023", " 2");
	search_expect(&c, "SENTBEFORE 1-Jan-2024", " 2");
	search_expect(&c, "SENTSINCE 1-Jan-2024", " 1");
	search_expect(&c, "SENTSINCE 31-Dec-2023 SENTBEFORE 2-Jan-2024", " 1 2");
	client_close(&c);
}

/* HEADER (and TO, which is one) looks at every field of that name, not only the first */
static void imap_search_header_every_field(void)
{
	setup();
	struct client c;
	search_folder_open(&c);
	search_expect(&c, "HEADER X-Tag one", " 1");
	search_expect(&c, "HEADER X-Tag two", " 1");
	search_expect(&c, "TO second@y.org", " 1");
	search_expect(&c, "TO a@x.org", " 1");
	search_expect(&c, "HEADER X-Tag three", "");
	client_close(&c);
}

/* Sends one command (tag "t") and checks that its whole answer is exactly want. */
/* Sends "tag command" and checks that everything answered up to the tagged line is want. */
static void expect_tagged(struct client *c, const char *tag, const char *command, const char *want)
{
	char *line = xasprintf("%s %s\r\n", tag, command), *start = xasprintf("%s ", tag),
	     *mid = xasprintf("\n%s ", tag);
	buf_reset(&c->in);
	send_str(c, line);
	for (int i = 0; i < MAX_ROUNDS; i++) {
		const char *in = buf_cstr(&c->in), *t = strncmp(in, start, strlen(start)) == 0 ? in : strstr(in, mid);
		if (t != NULL && strstr(t, "\r\n") != NULL)
			break;
		wait_for(c, "\r\n");
		evloop_run_once(loop, ROUND_MSECS);
	}
	if (strcmp(buf_cstr(&c->in), want) != 0)
		fprintf(stderr, "%s: got\n%s", command, buf_cstr(&c->in));
	test_assert_str(buf_cstr(&c->in), want);
	free(line);
	free(start);
	free(mid);
}

static void expect_answer(struct client *c, const char *command, const char *want)
{
	expect_tagged(c, "t", command, want);
}

/* Sends CAPABILITY (tag "u") and returns whether the answer holds needle. */
static bool capability_has(struct client *c, const char *needle)
{
	buf_reset(&c->in);
	send_str(c, "u CAPABILITY\r\n");
	return wait_for(c, "u OK") && out_pos(c, needle) > 0;
}

/* Sends a SEARCH, SORT or THREAD command (tag "t") and expects its untagged answer, then the OK naming the command. */
static void expect_completed(struct client *c, const char *command, const char *answer)
{
	const char *done = strstr(command, "THREAD") != NULL ? "Thread"
			   : strstr(command, "SORT") != NULL ? "Sort"
							     : "Search";
	char *want = xasprintf("%s\r\nt OK %s completed.\r\n", answer, done);
	expect_answer(c, command, want);
	free(want);
}

/* SORT with every key (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO), ESORT (RFC 5267), THREAD ORDEREDSUBJECT and
 * REFERENCES over five messages: dates out of arrival order, one without a Date (its internal date counts),
 * subjects with Re:, Fwd:, [tags] and (fwd), an encoded display name, References and In-Reply-To links. */
static void imap_sort_and_thread(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Sorted\r\n");
	test_assert(wait_for(&c, "a OK"));
	append_msg("Sorted",
		   "From: \"Zed\" <alice@a.org>\r\nTo: bob@b.org\r\nCc: zz@c.org\r\n"
		   "Date: Tue, 2 Jan 2024 10:00:00 +0000\r\nSubject: Hello\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n");
	append_msg("Sorted", "From: Bob <bob@b.org>\r\nTo: Amy <zed@z.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
			     "Subject: Re: hello\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n\r\nbody\r\n");
	append_msg("Sorted", "From: carol@c.org\r\nCc: aa@c.org\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\n"
			     "Subject: [list] Fwd: Other\r\nMessage-ID: <3@x>\r\n\r\nbody\r\n");
	append_msg("Sorted",
		   "From: =?utf-8?q?Andr=C3=A9?= <dave@d.org>\r\nDate: Thu, 4 Jan 2024 09:00:00 +0100\r\n"
		   "Subject: Re: Re: Hello (fwd)\r\nMessage-ID: <4@x>\r\nIn-Reply-To: <2@x>\r\n\r\n"
		   "a longer body than the others have, by far: 0123456789012345678901234567890123456789\r\n");
	append_msg("Sorted",
		   "From: eve@e.org\r\nSubject: Other\r\nMessage-ID: <5@x>\r\nReferences: <3@x>\r\n\r\nbody\r\n");
	send_str(&c, "b SELECT Sorted\r\n");
	test_assert(wait_for(&c, "b OK [READ-WRITE]"));
	static const struct {
		const char *command, *answer;
	} cases[] = {
		{ "SORT (DATE) UTF-8 ALL", "* SORT 2 1 3 4 5" },
		{ "SORT (REVERSE DATE) UTF-8 ALL", "* SORT 5 4 3 1 2" },
		{ "SORT (SUBJECT) US-ASCII ALL", "* SORT 1 2 4 3 5" },
		{ "SORT (SUBJECT DATE) UTF-8 ALL", "* SORT 2 1 4 3 5" },
		{ "SORT (FROM) UTF-8 ALL", "* SORT 1 2 3 4 5" },
		{ "SORT (REVERSE FROM) UTF-8 ALL", "* SORT 5 4 3 2 1" },
		{ "SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 4 2 3 5 1" },
		{ "SORT (TO) UTF-8 ALL", "* SORT 3 4 5 1 2" },
		{ "SORT (DISPLAYTO) UTF-8 ALL", "* SORT 3 4 5 2 1" },
		{ "SORT (CC) UTF-8 ALL", "* SORT 2 4 5 3 1" },
		{ "SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 3 4 5" },
		{ "SORT (REVERSE SIZE DATE) UTF-8 SUBJECT hello", "* SORT 4 2 1" },
		{ "SORT (DATE) UTF-8 SUBJECT hello NOT FROM bob", "* SORT 1 4" },
		{ "UID SORT (REVERSE DATE) UTF-8 UID 2:4", "* SORT 4 3 2" },
		{ "SORT (DATE) UTF-8 SUBJECT nothing", "* SORT" },
		{ "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL",
		  "* ESEARCH (TAG \"t\") MIN 2 MAX 5 COUNT 5 ALL 2,1,3:5" },
		{ "SORT RETURN () (REVERSE DATE) UTF-8 ALL", "* ESEARCH (TAG \"t\") ALL 5,4,3,1:2" },
		{ "THREAD REFERENCES UTF-8 ALL", "* THREAD (1 2 4)(3 5)" },
		{ "THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (2 (1)(4))(3 5)" },
		/* 4's parent (2) is left out: 4 goes to the top, then under 1 by its reply subject */
		{ "UID THREAD REFERENCES UTF-8 NOT UID 2", "* THREAD (1 4)(3 5)" },
		{ "THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD" },
		/* REFS: the thread with the latest message last; no subject merge (4 stays apart from 1) */
		{ "THREAD REFS UTF-8 ALL", "* THREAD (1 2 4)(3 5)" },
		{ "THREAD REFS UTF-8 NOT 5", "* THREAD (3)(1 2 4)" },
		{ "UID THREAD REFS UTF-8 NOT UID 2", "* THREAD (1)(4)(3 5)" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++)
		expect_completed(&c, cases[i].command, cases[i].answer);
	expect_answer(&c, "SORT (DATE) KOI8-R ALL", "t NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n");
	expect_answer(&c, "SORT (COLOR) UTF-8 ALL", "t BAD Unknown sort key\r\n");
	expect_answer(&c, "SORT (REVERSE) UTF-8 ALL", "t BAD REVERSE must be followed by a sort key\r\n");
	expect_answer(&c, "SORT (DATE) UTF-8", "t BAD SORT needs a charset and search criteria\r\n");
	expect_answer(&c, "THREAD REFS2 UTF-8 ALL", "t BAD THREAD takes ORDEREDSUBJECT, REFERENCES or REFS\r\n");
	test_assert(
		capability_has(&c, " SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT "));
	client_close(&c);
}

/* I18NLEVEL=1 (RFC 5255 section 4): SEARCH's strings, SORT's string keys and THREAD's base subjects compare under
 * i;unicode-casemap (RFC 5051): résumé and RÉSUMÉ, RFC 5051's DZ with caron in two cases, Cyrillic (RFC 5255
 * 4.6's strings (2) and (4), the KOI8-R one as the UTF-8 it converts to), and a body declared UTF-8 that is not,
 * searched as bytes (RFC 5255 4.6 (c)). Header text is always UTF-8 by then: the MIME cache repairs it. */
static void imap_i18nlevel(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	test_assert(wait_for(&c, "* OK"));
	test_assert(out_pos(&c, "I18NLEVEL") < 0); /* listed once authenticated (RFC 5255 4.3) */
	login(&c);
	test_assert(capability_has(&c, " I18NLEVEL=1"));
	send_str(&c, "a CREATE I18n\r\n");
	test_assert(wait_for(&c, "a OK"));
	append_msg("I18n", "From: =?utf-8?q?=C3=89mile?= <emile@x.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
			   "Subject: =?utf-8?q?R=C3=A9sum=C3=A9?= for the job\r\nMessage-ID: <1@x>\r\n"
			   "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
			   "Gr\xc3\xbc\xc3\x9f"
			   "e aus der Stra\xc3\x9f"
			   "e\r\n");
	append_msg("I18n", "From: Zoe <zoe@x.org>\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n"
			   "Subject: Re: R\xc3\x89SUM\xc3\x89 FOR THE JOB\r\nMessage-ID: <2@x>\r\n\r\nbody\r\n");
	append_msg("I18n", "From: abe@x.org\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\n"
			   "Subject: \xc7\x86 report\r\nMessage-ID: <3@x>\r\n\r\nbody\r\n");
	append_msg("I18n",
		   "From: abe@x.org\r\nDate: Thu, 4 Jan 2024 10:00:00 +0000\r\n"
		   "Subject: \xD1\x81\xD0\x95\xD0\xA0\xD0\x93\xD0\x95\xD0\x99\r\nMessage-ID: <4@x>\r\n\r\nbody\r\n");
	append_msg("I18n", "From: abe@x.org\r\nDate: Fri, 5 Jan 2024 10:00:00 +0000\r\n"
			   "Subject: \xc7\x84 REPORT\r\nMessage-ID: <5@x>\r\n"
			   "Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xe9 Hello\r\n");
	append_msg("I18n", "From: abe@x.org\r\nDate: Sat, 6 Jan 2024 10:00:00 +0000\r\n"
			   "Subject: =?utf-8?b?0JDQu9C10LrRgdC10Lk=?=\r\nMessage-ID: <6@x>\r\n\r\nbody\r\n");
	send_str(&c, "b SELECT I18n\r\n");
	test_assert(wait_for(&c, "b OK [READ-WRITE]"));
	static const struct {
		const char *command, *answer;
	} cases[] = {
		/* résumé and RÉSUMÉ: É is E + U+0301 either way; an unaccented E is another letter */
		{ "SEARCH CHARSET UTF-8 SUBJECT {8+}\r\nR\xc3\x89SUM\xc3\x89", "* SEARCH 1 2" },
		{ "SEARCH CHARSET UTF-8 SUBJECT {8+}\r\nr\xc3\xa9sum\xc3\xa9", "* SEARCH 1 2" },
		{ "SEARCH SUBJECT resume", "* SEARCH" },
		/* Cyrillic case: сергей finds СЕРГЕЙ-with-a-small-с; АЛЕКСЕЙ the decoded encoded-word */
		{ "SEARCH CHARSET UTF-8 SUBJECT {12+}\r\n\xD1\x81\xD0\xB5\xD1\x80\xD0\xB3\xD0\xB5\xD0\xB9",
		  "* SEARCH 4" },
		{ "SEARCH CHARSET UTF-8 SUBJECT {14+}\r\n\xD0\x90\xD0\x9B\xD0\x95\xD0\x9A\xD0\xA1\xD0\x95\xD0\x99",
		  "* SEARCH 6" },
		/* RFC 5051's example: U+01C6 and U+01C4 both become "D", "z", U+030C */
		{ "SEARCH CHARSET UTF-8 SUBJECT {2+}\r\n\xc7\x85", "* SEARCH 3 5" },
		/* a body that is not UTF-8 is searched as bytes (i;octet) */
		{ "SEARCH BODY Hello", "* SEARCH 5" },
		{ "SEARCH BODY hello", "* SEARCH" },
		/* BODY and TEXT: ß has no simple titlecase, so STRASSE is not Straße (RFC 5051 uses no SpecialCasing) */
		{ "SEARCH CHARSET UTF-8 BODY {7+}\r\nSTRA\xc3\x9f"
		  "E",
		  "* SEARCH 1" },
		{ "SEARCH CHARSET UTF-8 TEXT {6+}\r\nGR\xc3\x9c\xc3\x9f", "* SEARCH 1" },
		{ "SEARCH BODY STRASSE", "* SEARCH" },
		/* FROM: the decoded display name */
		{ "SEARCH CHARSET UTF-8 FROM {6+}\r\n\xc3\xa9MILE", "* SEARCH 1" },
		/* SORT: D before R, then RFC 5255's (4) before (2) */
		{ "SORT (SUBJECT) UTF-8 ALL", "* SORT 3 5 1 2 6 4" },
		{ "SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT 4 6 1 2 3 5" },
		/* Émile sorts with E, before Zoe (as bytes, É came after Z) */
		{ "SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 3 4 5 6 1 2" },
		{ "SORT (FROM) UTF-8 ALL", "* SORT 3 4 5 6 1 2" },
		/* THREAD: résumé and RE: RÉSUMÉ are one base subject, and so are the two DZ reports */
		{ "THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (1 2)(3 5)(4)(6)" },
		{ "THREAD REFERENCES UTF-8 ALL", "* THREAD (1 2)((3)(5))(4)(6)" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++)
		expect_completed(&c, cases[i].command, cases[i].answer);
	client_close(&c);
}

/* APPENDLIMIT (RFC 7889): the capability carries the server's limit (100000 in these tests), and STATUS and
 * LIST-STATUS answer the APPENDLIMIT item with it */
static void imap_appendlimit(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	test_assert(wait_for(&c, "* OK"));
	test_assert(out_pos(&c, "APPENDLIMIT") < 0); /* before login: not offered */
	login(&c);
	test_assert(capability_has(&c, " APPENDLIMIT=100000"));
	send_str(&c, "a CREATE Lim\r\n");
	test_assert(wait_for(&c, "a OK"));
	expect_answer(&c, "STATUS Lim (APPENDLIMIT)",
		      "* STATUS Lim (APPENDLIMIT 100000)\r\nt OK Status completed.\r\n");
	expect_answer(&c, "STATUS Lim (MESSAGES APPENDLIMIT)",
		      "* STATUS Lim (MESSAGES 0 APPENDLIMIT 100000)\r\nt OK Status completed.\r\n");
	expect_answer(&c, "LIST \"\" Lim RETURN (STATUS (APPENDLIMIT UIDNEXT))",
		      "* LIST (\\HasNoChildren) \"/\" \"Lim\"\r\n* STATUS \"Lim\" (APPENDLIMIT 100000 UIDNEXT 1)\r\n"
		      "t OK LIST completed.\r\n");
	expect_answer(&c, "STATUS Lim (APPENDLIMITS)", "t BAD Unknown STATUS item\r\n");
	client_close(&c);
}

/* WITHIN (RFC 5032): OLDER and YOUNGER count seconds back from now against the internal date; a message
 * appended with a date of 2020 and one appended now */
static void imap_within(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Within\r\nb APPEND Within \"01-Jan-2020 00:00:00 +0000\" {14+}\r\nSubject: old\r\n\r\n"
		     "c APPEND Within {14+}\r\nSubject: new\r\n\r\nd SELECT Within\r\n");
	test_assert(wait_for(&c, "d OK [READ-WRITE]"));
	expect_answer(&c, "SEARCH OLDER 3600", "* SEARCH 1\r\nt OK Search completed.\r\n");
	expect_answer(&c, "SEARCH YOUNGER 3600", "* SEARCH 2\r\nt OK Search completed.\r\n");
	expect_answer(&c, "SEARCH YOUNGER 1000000000", "* SEARCH 1 2\r\nt OK Search completed.\r\n");
	expect_answer(&c, "SEARCH OLDER 1000000000", "* SEARCH\r\nt OK Search completed.\r\n");
	expect_answer(&c, "UID SEARCH NOT OLDER 3600", "* SEARCH 2\r\nt OK Search completed.\r\n");
	expect_answer(&c, "SEARCH OLDER 0", "t BAD Invalid interval\r\n");
	test_assert(capability_has(&c, " ESORT WITHIN "));
	client_close(&c);
}

/* UNAUTHENTICATE (RFC 8437): from the selected state back to not authenticated, the mailbox closed without
 * expunging and ENABLE forgotten; another login then works on the same connection */
static void imap_unauthenticate(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	test_assert(wait_for(&c, "* OK"));
	test_assert(out_pos(&c, "UNAUTHENTICATE") < 0);
	expect_answer(&c, "UNAUTHENTICATE", "t BAD Log in first: UNAUTHENTICATE not allowed now\r\n");
	send_str(&c, "l1 LOGIN u1 p1\r\n");
	test_assert(wait_for(&c, "l1 OK"));
	test_assert(out_pos(&c, " UNAUTHENTICATE") > 0);
	send_str(&c, "a CREATE Unauth\r\nb APPEND Unauth (\\Deleted) {14+}\r\nSubject: del\r\n\r\n"
		     "c ENABLE CONDSTORE\r\nd SELECT Unauth\r\n");
	test_assert(wait_for(&c, "d OK [READ-WRITE]"));
	buf_reset(&c.in);
	send_str(&c, "f FETCH 1 FLAGS\r\n");
	test_assert(wait_for(&c, "f OK"));
	test_assert(out_pos(&c, "MODSEQ (") > 0);
	expect_answer(&c, "UNAUTHENTICATE x", "t BAD UNAUTHENTICATE takes no arguments\r\n");
	expect_answer(&c, "UNAUTHENTICATE", "t OK Unauthenticated.\r\n");
	expect_answer(&c, "FETCH 1 FLAGS", "t BAD Log in first: FETCH not allowed now\r\n");
	expect_answer(&c, "STATUS Unauth (MESSAGES)", "t BAD Log in first: STATUS not allowed now\r\n");
	test_assert(capability_has(&c, "AUTH=PLAIN") && out_pos(&c, "UNAUTHENTICATE") < 0);
	send_str(&c, "l2 LOGIN u1 p1\r\n");
	test_assert(wait_for(&c, "l2 OK"));
	/* the message marked \Deleted is still there (no expunge), and CONDSTORE is off again (no MODSEQ) */
	buf_reset(&c.in);
	send_str(&c, "e SELECT Unauth\r\ng FETCH 1 FLAGS\r\n");
	test_assert(wait_for(&c, "g OK"));
	test_assert(out_pos(&c, "* 1 EXISTS\r\n") >= 0 && out_pos(&c, "\\Deleted") > 0 && out_pos(&c, "MODSEQ (") < 0);
	expect_answer(&c, "UNAUTHENTICATE", "t OK Unauthenticated.\r\n");
	expect_answer(&c, "LOGIN u1 wrong", "t NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	client_close(&c);
}

/* LIST-MYRIGHTS (RFC 8440): LIST RETURN (MYRIGHTS) adds after each mailbox that exists the MYRIGHTS response the
 * MYRIGHTS command gives for it: all rights on the user's own folders, the default ACL's on a public folder, none
 * for the \\Noselect "Public Folders" level */
static void imap_list_myrights(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Myr/Sub\r\n");
	test_assert(wait_for(&c, "a OK"));
	expect_answer(&c, "MYRIGHTS Myr", "* MYRIGHTS Myr lrswipkxtea\r\nt OK MYRIGHTS completed.\r\n");
	expect_answer(&c, "LIST \"\" \"Myr*\" RETURN (MYRIGHTS)",
		      "* LIST (\\HasChildren) \"/\" \"Myr\"\r\n* MYRIGHTS \"Myr\" lrswipkxtea\r\n"
		      "* LIST (\\HasNoChildren) \"/\" \"Myr/Sub\"\r\n* MYRIGHTS \"Myr/Sub\" lrswipkxtea\r\n"
		      "t OK LIST completed.\r\n");
	expect_answer(&c, "MYRIGHTS \"Public Folders/Pub\"",
		      "* MYRIGHTS \"Public Folders/Pub\" lrsp\r\nt OK MYRIGHTS completed.\r\n");
	expect_answer(
		&c, "LIST \"\" \"Public Folders*\" RETURN (MYRIGHTS STATUS (MESSAGES))",
		"* LIST (\\Noselect \\HasChildren) \"/\" \"Public Folders\"\r\n"
		"* LIST (\\HasNoChildren) \"/\" \"Public Folders/Pub\"\r\n* STATUS \"Public Folders/Pub\" (MESSAGES 0)\r\n"
		"* MYRIGHTS \"Public Folders/Pub\" lrsp\r\nt OK LIST completed.\r\n");
	test_assert(capability_has(&c, " LIST-MYRIGHTS "));
	client_close(&c);
}

/* The UIDVALIDITY of a folder, by STATUS, in *v_r. */
static void folder_uidvalidity(struct client *c, const char *folder, unsigned *v_r)
{
	char *cmd = xasprintf("v STATUS %s (UIDVALIDITY)\r\n", folder),
	     *want = xasprintf("* STATUS %s (UIDVALIDITY ", folder);
	buf_reset(&c->in);
	send_str(c, cmd);
	*v_r = 0;
	bool seen = wait_for(c, "v OK");
	long at = out_pos(c, want);
	bool ok = seen && at >= 0 && sscanf(buf_cstr(&c->in) + at + strlen(want), "%u", v_r) == 1;
	free(cmd);
	free(want);
	test_assert(ok);
}

/* The MAILBOXID (RFC 8474) of a folder, by STATUS, in id_r. */
static void folder_mailboxid(struct client *c, const char *folder, struct buf *id_r)
{
	char *cmd = xasprintf("v STATUS %s (MAILBOXID)\r\n", folder),
	     *want = xasprintf("* STATUS %s (MAILBOXID (", folder);
	buf_reset(&c->in);
	send_str(c, cmd);
	bool seen = wait_for(c, "v OK");
	long at = out_pos(c, want);
	const char *id = at >= 0 ? buf_cstr(&c->in) + at + strlen(want) : "";
	buf_reset(id_r);
	buf_append(id_r, id, strcspn(id, ")"));
	free(cmd);
	free(want);
	test_assert(seen && at >= 0 && buf_cstr(id_r)[0] == 'F');
}

/* REPLACE and UID REPLACE (RFC 8508): the new message stored (APPENDUID in an untagged OK) and the old one
 * expunged in one command, into the selected folder or another; the old one stays when the APPEND fails */
static void imap_replace(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Rep\r\nb CREATE RepOther\r\n");
	test_assert(wait_for(&c, "b OK"));
	append_msg("Rep", "Subject: one\r\n\r\n1\r\n");
	append_msg("Rep", "Subject: two\r\n\r\n2\r\n");
	unsigned v1, v2;
	folder_uidvalidity(&c, "Rep", &v1);
	folder_uidvalidity(&c, "RepOther", &v2);
	send_str(&c, "c SELECT Rep\r\n");
	test_assert(wait_for(&c, "c OK [READ-WRITE]"));
	/* the view catches up after the untagged OK: 1 goes, the new message is the second of two, both recent */
	char *want = xasprintf("* OK [APPENDUID %u 3] Replacement Message ID\r\n* 1 EXPUNGE\r\n* 2 EXISTS\r\n"
			       "* 2 RECENT\r\nt OK Replace completed.\r\n",
			       v1);
	expect_answer(&c, "REPLACE 1 Rep (\\Draft) {14+}\r\nSubject: new\r\n", want);
	free(want);
	expect_answer(
		&c, "FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
		"* 1 FETCH (UID 2 FLAGS (\\Recent) BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: two\r\n\r\n)\r\n"
		"* 2 FETCH (UID 3 FLAGS (\\Draft \\Recent) BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: new\r\n\r\n)\r\n"
		"t OK Fetch completed.\r\n");
	want = xasprintf("* OK [APPENDUID %u 1] Replacement Message ID\r\n* 2 EXPUNGE\r\nt OK Replace completed.\r\n",
			 v2);
	expect_answer(&c, "UID REPLACE 3 RepOther {14+}\r\nSubject: out\r\n", want);
	free(want);
	/* refusals: the old message stays */
	expect_answer(&c, "REPLACE 2 Rep {1+}\r\nx", "t BAD No message 2 in the mailbox\r\n");
	expect_answer(&c, "UID REPLACE 3 Rep {1+}\r\nx", "t NO Message doesn't exist.\r\n");
	expect_answer(&c, "REPLACE 1 Nowhere {1+}\r\nx", "t NO [TRYCREATE] Mailbox doesn't exist.\r\n");
	expect_answer(&c, "REPLACE 1 Rep", "t BAD REPLACE needs a message number, a mailbox name and a message\r\n");
	expect_answer(&c, "UID SEARCH ALL", "* SEARCH 2\r\nt OK Search completed.\r\n");
	send_str(&c, "d EXAMINE Rep\r\n");
	test_assert(wait_for(&c, "d OK [READ-ONLY]"));
	expect_answer(&c, "REPLACE 1 Rep {1+}\r\nx", "t NO [READ-ONLY] The mailbox is read-only.\r\n");
	test_assert(capability_has(&c, " REPLACE"));
	client_close(&c);
}

/* MULTIAPPEND (RFC 3502): several messages in one APPEND, each with its own flags and date, one APPENDUID set; all
 * or nothing: when the store refuses the second message (MIME nesting past its limit) the first one goes again */
static void imap_multiappend(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Multi\r\n");
	test_assert(wait_for(&c, "a OK"));
	unsigned v;
	folder_uidvalidity(&c, "Multi", &v);
	char *want = xasprintf("t OK [APPENDUID %u 1:3] Append completed.\r\n", v);
	expect_answer(&c,
		      "APPEND Multi (\\Seen) {13+}\r\nSubject: m1\r\n \"01-Jan-2020 00:00:00 +0000\" {13+}\r\n"
		      "Subject: m2\r\n (\\Flagged) {13+}\r\nSubject: m3\r\n",
		      want);
	free(want);
	struct buf deep = BUF_INIT;
	for (int d = 0; d < 40; d++)
		buf_printf(&deep, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", d, d);
	buf_append_str(&deep, "Content-Type: text/plain\r\n\r\nx\r\n");
	char *cmd = xasprintf("APPEND Multi {13+}\r\nSubject: m4\r\n {%zu+}\r\n%s", deep.len, buf_cstr(&deep));
	expect_answer(&c, cmd, "t NO [LIMIT] message refused: MIME parts nested too deeply (limit 32)\r\n");
	free(cmd);
	buf_free(&deep);
	expect_answer(&c, "APPEND Multi {13+}\r\nSubject: m5\r\n {0+}\r\n", "t NO Empty messages are not stored.\r\n");
	expect_answer(&c, "APPEND Multi {13+}\r\nSubject: m5\r\n (\\Seen)",
		      "t BAD APPEND needs each message as a literal\r\n");
	expect_answer(&c, "STATUS Multi (MESSAGES UIDNEXT)",
		      "* STATUS Multi (MESSAGES 3 UIDNEXT 5)\r\nt OK Status completed.\r\n");
	send_str(&c, "b SELECT Multi\r\n");
	test_assert(wait_for(&c, "b OK [READ-WRITE]"));
	expect_answer(&c, "FETCH 1:* (UID FLAGS)",
		      "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n"
		      "* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))\r\nt OK Fetch completed.\r\n");
	expect_answer(&c, "UID SEARCH OLDER 3600", "* SEARCH 2\r\nt OK Search completed.\r\n");
	test_assert(capability_has(&c, " MULTIAPPEND"));
	client_close(&c);
}

/* Subscriptions are names, independent of the folders that exist (RFC 3501 6.3.6, RFC 9051 6.3.7-8, RFC 5258) */
static void imap_subscriptions_independent(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Sb/one\r\nb CREATE Sb/two/deep\r\nc CREATE Sb/gone\r\nd CREATE Sb/three/x\r\n");
	test_assert(wait_for(&c, "d OK"));
	/* CREATE subscribes nothing, not even the parents it makes */
	expect_answer(&c, "LSUB \"\" Sb*", "t OK LSUB completed.\r\n");
	send_str(&c, "e SUBSCRIBE Sb/one\r\nf SUBSCRIBE Sb/two/deep\r\ng SUBSCRIBE Sb/gone\r\nh DELETE Sb/gone\r\n");
	test_assert(wait_for(&c, "h OK"));
	/* LSUB %: an unsubscribed parent of a subscribed child is \Noselect; the deleted folder stays subscribed */
	expect_answer(
		&c, "LSUB \"\" Sb/%",
		"* LSUB (\\HasNoChildren) \"/\" \"Sb/one\"\r\n* LSUB (\\Noselect \\HasChildren) \"/\" \"Sb/two\"\r\n"
		"* LSUB (\\Noselect \\HasNoChildren) \"/\" \"Sb/gone\"\r\nt OK LSUB completed.\r\n");
	/* LIST (SUBSCRIBED): the name whose folder is gone is \NonExistent */
	expect_answer(
		&c, "LIST (SUBSCRIBED) \"\" Sb/*",
		"* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Sb/one\"\r\n"
		"* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Sb/two/deep\"\r\n"
		"* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"Sb/gone\"\r\nt OK LIST completed.\r\n");
	/* RECURSIVEMATCH: a parent with a subscribed child the pattern does not show carries CHILDINFO */
	expect_answer(
		&c, "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" Sb/t%",
		"* LIST (\\HasChildren) \"/\" \"Sb/two\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\nt OK LIST completed.\r\n");
	expect_answer(&c, "LIST (RECURSIVEMATCH) \"\" Sb/*", "t BAD RECURSIVEMATCH needs another selection option\r\n");
	expect_answer(&c, "LIST (RECURSIVEMATCH REMOTE) \"\" Sb/*",
		      "t BAD RECURSIVEMATCH needs another selection option\r\n");
	/* a plain LIST shows only what exists */
	expect_answer(&c, "LIST \"\" Sb/g*", "t OK LIST completed.\r\n");
	/* UNSUBSCRIBE: a name whose folder is gone, and a name never subscribed, are fine (RFC 9051 6.3.8) */
	expect_answer(&c, "UNSUBSCRIBE Sb/gone", "t OK UNSUBSCRIBE completed.\r\n");
	expect_answer(&c, "UNSUBSCRIBE Sb/never", "t OK UNSUBSCRIBE completed.\r\n");
	expect_answer(&c, "SUBSCRIBE Sb/never", "t NO [NONEXISTENT] no folder \"Sb/never\"\r\n");
	/* RENAME takes the subscriptions along */
	send_str(&c, "i RENAME Sb/two Sb/four\r\n");
	test_assert(wait_for(&c, "i OK"));
	expect_answer(&c, "LSUB \"\" Sb/*",
		      "* LSUB (\\HasNoChildren) \"/\" \"Sb/four/deep\"\r\n* LSUB (\\HasNoChildren) \"/\" \"Sb/one\"\r\n"
		      "t OK LSUB completed.\r\n");
	client_close(&c);
}

/* MOVE into the folder the messages are in is allowed: COPYUID with new UIDs, the originals expunged (RFC 6851) */
static void imap_move_into_same_folder(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Mv\r\n");
	test_assert(wait_for(&c, "a OK"));
	append_msg("Mv", "Subject: one\r\n\r\nbody\r\n");
	append_msg("Mv", "Subject: two\r\n\r\nbody\r\n");
	send_str(&c, "b SELECT Mv\r\nc STORE 1 +FLAGS.SILENT (\\Flagged)\r\n");
	test_assert(wait_for(&c, "c OK"));
	struct store_folder_info info;
	test_assert(store_folder_status(st, GUID, "Mv", NULL, &info, NULL) == 0);
	char *want = xasprintf("* OK [COPYUID %u 1 3] Moved.\r\n* 1 EXPUNGE\r\n* 2 EXISTS\r\n* 2 RECENT\r\n"
			       "t OK Move completed.\r\n",
			       info.uidvalidity);
	store_folder_info_free(&info);
	expect_answer(&c, "MOVE 1 Mv", want);
	free(want);
	expect_answer(&c, "FETCH 1:* (UID FLAGS)",
		      "* 1 FETCH (UID 2 FLAGS (\\Recent))\r\n"
		      "* 2 FETCH (UID 3 FLAGS (\\Flagged \\Recent))\r\nt OK Fetch completed.\r\n");
	client_close(&c);
}

/* BINARY (RFC 3516): BINARY[] is the whole message, header included; content holding NUL goes in a literal8 */
static void imap_binary_whole_and_nul(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	static const char msg[] = "Subject: b\r\nContent-Transfer-Encoding: binary\r\n\r\na\0b\r\n";
	size_t len = sizeof(msg) - 1;
	send_str(&c, "a CREATE Bin\r\n");
	test_assert(wait_for(&c, "a OK"));
	char *cmd = xasprintf("b APPEND Bin ~{%zu+}\r\n", len);
	send_str(&c, cmd);
	free(cmd);
	test_assert(write(c.fd, msg, len) == (ssize_t)len);
	send_str(&c, "\r\nc SELECT Bin\r\n");
	test_assert(wait_for(&c, "c OK"));
	buf_reset(&c.in);
	send_str(&c, "d FETCH 1 (BINARY.PEEK[] BINARY.SIZE[] BINARY.PEEK[1])\r\n");
	test_assert(wait_for(&c, "d OK"));
	struct buf want = BUF_INIT;
	buf_printf(&want, "* 1 FETCH (BINARY[] ~{%zu}\r\n", len);
	buf_append(&want, msg, len);
	buf_printf(&want, " BINARY.SIZE[] %zu BINARY[1] ~{5}\r\na", len);
	buf_append(&want, "\0b\r\n)\r\nd OK", 10);
	if (c.in.len < want.len || memcmp(c.in.data, want.data, want.len) != 0)
		fprintf(stderr, "BINARY: got %s\n", buf_cstr(&c.in));
	test_assert(c.in.len >= want.len && memcmp(c.in.data, want.data, want.len) == 0);
	buf_free(&want);
	client_close(&c);
}

/* Headers with raw UTF-8 (RFC 6855): a session that did not ENABLE UTF8=ACCEPT gets them downgraded as RFC 6857 says
 * (encoded-words; an address that is not ASCII as an empty group), a session that did gets them as stored */
static void imap_utf8_downgrade(void)
{
	setup();
	struct client c, u;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Intl\r\n");
	test_assert(wait_for(&c, "a OK"));
	append_msg("Intl", "Subject: Gr\xc3\xbc\xc3\x9f"
			   "e\r\nFrom: J\xc3\xb6rg <j\xc3\xb6rg@example.org>\r\n"
			   "To: Ann <ann@example.org>\r\n\r\nbody\r\n");
	send_str(&c, "b SELECT Intl\r\n");
	test_assert(wait_for(&c, "b OK"));
	expect_answer(&c, "FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])",
		      "* 1 FETCH (ENVELOPE (NIL \"=?UTF-8?B?R3LDvMOfZQ==?=\" "
		      "((NIL NIL \"=?UTF-8?B?SsO2cmc=?= =?UTF-8?B?asO2cmdAZXhhbXBsZS5vcmc=?=\" NIL)(NIL NIL NIL NIL)) "
		      "((NIL NIL \"=?UTF-8?B?SsO2cmc=?= =?UTF-8?B?asO2cmdAZXhhbXBsZS5vcmc=?=\" NIL)(NIL NIL NIL NIL)) "
		      "((NIL NIL \"=?UTF-8?B?SsO2cmc=?= =?UTF-8?B?asO2cmdAZXhhbXBsZS5vcmc=?=\" NIL)(NIL NIL NIL NIL)) "
		      "((\"Ann\" NIL \"ann\" \"example.org\")) NIL NIL NIL NIL) "
		      "BODY[HEADER.FIELDS (SUBJECT FROM)] {105}\r\n"
		      "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"
		      "From: =?UTF-8?B?SsO2cmc=?= =?UTF-8?B?asO2cmdAZXhhbXBsZS5vcmc=?= :;\r\n\r\n)\r\n"
		      "t OK Fetch completed.\r\n");
	client_open(&u, false);
	login(&u);
	send_str(&u, "a ENABLE UTF8=ACCEPT\r\nb SELECT Intl\r\n");
	test_assert(wait_for(&u, "b OK"));
	expect_answer(&u, "FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
		      "* 1 FETCH (ENVELOPE (NIL {7}\r\nGr\xc3\xbc\xc3\x9f"
		      "e "
		      "(({5}\r\nJ\xc3\xb6rg NIL {5}\r\nj\xc3\xb6rg \"example.org\")) "
		      "(({5}\r\nJ\xc3\xb6rg NIL {5}\r\nj\xc3\xb6rg \"example.org\")) "
		      "(({5}\r\nJ\xc3\xb6rg NIL {5}\r\nj\xc3\xb6rg \"example.org\")) "
		      "((\"Ann\" NIL \"ann\" \"example.org\")) NIL NIL NIL NIL) "
		      "BODY[HEADER.FIELDS (SUBJECT)] {20}\r\nSubject: Gr\xc3\xbc\xc3\x9f"
		      "e\r\n\r\n)\r\n"
		      "t OK Fetch completed.\r\n");
	client_close(&u);
	client_close(&c);
}

static void pop3_session_basics(void)
{
	setup();
	struct client c;
	client_open(&c, true);
	test_assert(wait_for(&c, "+OK"));
	send_str(&c, "STAT\r\nUSER u1\r\nPASS p1\r\nSTAT\r\nUIDL 1\r\nTOP 1 0\r\nDELE 1\r\nSTAT\r\nQUIT\r\n");
	test_assert(wait_for(&c, "+OK Bye; 1 messages deleted."));
	const char *out = buf_cstr(&c.in);
	test_assert(strstr(out, "-ERR Log in first") != NULL);
	test_assert(strstr(out, "+OK Logged in; 1 messages.") != NULL);
	test_assert(strstr(out, "+OK 0 0") != NULL);
	test_assert(strstr(out, "Subject: hello there\r\n\r\n.\r\n") != NULL);
	client_close(&c);
	struct store_folder_info info;
	test_assert(store_folder_status(st, GUID, "INBOX", NULL, &info, NULL) == 0);
	test_assert(info.messages == 0);
	store_folder_info_free(&info);
}

/* POP3 UTF8 (RFC 6856): CAPA says UTF8 USER; a UTF-8 user name signs in, one that is not UTF-8 is refused; without
 * the UTF8 command a message with UTF-8 headers is sent downgraded (RFC 6857), after it as stored; UTF8 is taken
 * before login only. */
static void pop3_utf8(void)
{
	setup();
	append_msg("INBOX", "From: J\xc3\xb6rg <j@x.org>\r\nSubject: Gr\xc3\xbc\xc3\x9f"
			    "e\r\n\r\nbody\r\n");
	struct client c;
	client_open(&c, true);
	test_assert(wait_for(&c, "+OK"));
	send_str(&c, "CAPA\r\nUSER \xff\xfe\r\nUSER j\xc3\xb6rg@example.com\r\nPASS p1\r\nRETR 1\r\nUTF8\r\nQUIT\r\n");
	test_assert(wait_for(&c, "+OK Bye"));
	const char *out = buf_cstr(&c.in);
	test_assert(strstr(out, "\r\nUTF8 USER\r\n") != NULL);
	test_assert(strstr(out, "-ERR [AUTH] User names are UTF-8.\r\n") != NULL);
	test_assert(strstr(out, "+OK Logged in; 1 messages.") != NULL);
	test_assert(strstr(out, "Subject: =?UTF-8?") != NULL && strstr(out, "Gr\xc3\xbc") == NULL);
	test_assert(strstr(out, "-ERR Not allowed now: already logged in.") != NULL);
	client_close(&c);
	client_open(&c, true);
	test_assert(wait_for(&c, "+OK"));
	send_str(&c, "UTF8\r\nUSER u1\r\nPASS p1\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n");
	test_assert(wait_for(&c, "+OK Bye"));
	out = buf_cstr(&c.in);
	test_assert(strstr(out, "+OK UTF8 enabled.\r\n") != NULL);
	test_assert(strstr(out, "From: J\xc3\xb6rg <j@x.org>\r\nSubject: Gr\xc3\xbc\xc3\x9f"
				"e\r\n\r\nbody\r\n.\r\n") != NULL);
	client_close(&c);
}

/* Logins and SEARCH never wait for the threads that wait for syncs: with every write thread held (pool_block, as
 * slow syncs would), a LOGIN, a SEARCH and the reads on the loop are answered; the STORE waits for a thread. */
static void imap_reads_pass_blocked_writes(void)
{
	setup();
	append_direct("INBOX");
	pool_block();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "s SELECT INBOX\r\nf FETCH 1 (FLAGS)\r\nq SEARCH ALL\r\n");
	test_assert(wait_for(&c, "q OK"));
	test_assert(out_pos(&c, "* SEARCH 1") >= 0);
	send_str(&c, "w STORE 1 +FLAGS (\\Flagged)\r\n");
	for (int i = 0; i < 10; i++) {
		evloop_run_once(loop, ROUND_MSECS);
		client_read(&c);
	}
	test_assert(out_pos(&c, "q OK") >= 0 && out_pos(&c, "w OK") < 0);
	pool_release();
	test_assert(wait_for(&c, "w OK"));
	client_close(&c);
}

static void teardown(void)
{
	workpool_destroy(&read_pool, 0);
	workpool_destroy(&pool, 0);
	evloop_destroy(&loop);
	store_close(&st);
	char *cmd = xasprintf("rm -rf %s", dirbuf);
	test_assert(system(cmd) == 0);
	free(cmd);
	ix_sasl_done();
}

/* the silence allowed before login comes from the configuration (imap.login_timeout, pop3.login_timeout) */
/* Public folders: a level the user may not see above one they may is listed \Noselect (so "%" walks down to it);
 * "Public Folders" has children whatever the pattern; selecting the namespace root is refused as such, not as a
 * mailbox that does not exist. */
static void imap_public_hierarchy(void)
{
	setup();
	test_assert(store_public_folder_ensure(st, "Dept/Team/Leads", NULL) == 0);
	test_assert(store_acl_set(st, STORE_PUBLIC_GUID, "Dept", STORE_ACL_ANYONE, 0, NULL) == 0);
	test_assert(store_acl_set(st, STORE_PUBLIC_GUID, "Dept/Team", STORE_ACL_ANYONE, 0, NULL) == 0);
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a LIST \"\" \"Public Folders/%\"\r\n");
	test_assert(wait_for(&c, "a OK"));
	test_assert(strstr(buf_cstr(&c.in), "* LIST (\\Noselect \\HasChildren) \"/\" \"Public Folders/Dept\"\r\n") !=
		    NULL);
	test_assert(strstr(buf_cstr(&c.in), "* LIST (\\HasNoChildren) \"/\" \"Public Folders/Pub\"\r\n") != NULL);
	send_str(&c, "b LIST \"Public Folders/Dept/\" \"%\"\r\n");
	test_assert(wait_for(&c, "b OK"));
	test_assert(strstr(buf_cstr(&c.in),
			   "* LIST (\\Noselect \\HasChildren) \"/\" \"Public Folders/Dept/Team\"\r\n") != NULL);
	send_str(&c, "c LIST \"\" \"Public Folders/Dept/Team/%\"\r\n");
	test_assert(wait_for(&c, "c OK"));
	test_assert(strstr(buf_cstr(&c.in), "* LIST (\\HasNoChildren) \"/\" \"Public Folders/Dept/Team/Leads\"\r\n") !=
		    NULL);
	send_str(&c, "d LIST \"\" \"%\"\r\n");
	test_assert(wait_for(&c, "d OK"));
	test_assert(strstr(buf_cstr(&c.in), "* LIST (\\Noselect \\HasChildren) \"/\" \"Public Folders\"\r\n") != NULL);
	send_str(&c, "e SELECT \"Public Folders\"\r\nf SELECT \"Public Folders/\"\r\n");
	test_assert(wait_for(&c, "f NO"));
	test_assert(strstr(buf_cstr(&c.in), "e NO [CANNOT] ") != NULL &&
		    strstr(buf_cstr(&c.in), "f NO [CANNOT] ") != NULL);
	test_assert(strstr(buf_cstr(&c.in), "NONEXISTENT") == NULL);
	client_close(&c);
}

/* CATENATE (RFC 4469), its example: a draft's header, MIME header and part by URL between TEXT literals gives the
 * same bytes back; the URL forms (server-relative, absolute with this host and user, relative to the selected
 * mailbox), MULTIAPPEND with CATENATE, BADURL (no such section, a changed UIDVALIDITY, another user, another host, a
 * URLAUTH URL) and TOOBIG, none of which stores anything. */
static void imap_catenate(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	test_assert(capability_has(&c, " CATENATE"));
	const char *draft = "From: a@x.org\r\nSubject: draft\r\nMIME-Version: 1.0\r\n"
			    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
			    "--b1\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b1--\r\n";
	send_str(&c, "a CREATE Cat\r\n");
	test_assert(wait_for(&c, "a OK"));
	append_msg("Cat", draft);
	unsigned v;
	folder_uidvalidity(&c, "Cat", &v);
	char *cmd = xasprintf(
		"APPEND Cat (\\Seen \\Draft $MDNSent) CATENATE (URL "
		"\"/Cat;UIDVALIDITY=%u/;UID=1/;section=HEADER\" TEXT {6+}\r\n--b1\r\n URL "
		"\"/Cat;UIDVALIDITY=%u/;UID=1/;section=1.MIME\" URL \"/Cat;UIDVALIDITY=%u/;UID=1/;section=1\" "
		"TEXT {10+}\r\n\r\n--b1--\r\n)",
		v, v, v);
	char *want = xasprintf("t OK [APPENDUID %u 2] Append completed.\r\n", v);
	expect_answer(&c, cmd, want);
	free(cmd);
	free(want);
	send_str(&c, "b SELECT Cat\r\n");
	test_assert(wait_for(&c, "b OK"));
	char *body = xasprintf("* 2 FETCH (UID 2 BODY[] {%zu}\r\n%s)\r\nt OK Fetch completed.\r\n", strlen(draft),
			       draft);
	expect_answer(&c, "UID FETCH 2 BODY.PEEK[]", body);
	free(body);
	expect_answer(&c, "FETCH 2 FLAGS",
		      "* 2 FETCH (FLAGS (\\Seen \\Draft \\Recent $MDNSent))\r\nt OK Fetch completed.\r\n");
	/* absolute with this server's host and the user; relative to the selected mailbox; MULTIAPPEND of two */
	buf_reset(&c.in);
	send_str(&c, "m APPEND Cat CATENATE (URL \"imap://u1@test/Cat/;UID=2/;SECTION=HEADER\" TEXT {4+}\r\nhi\r\n) "
		     "CATENATE (TEXT {12+}\r\nSubject: x\r\n URL \";UID=1/;SECTION=TEXT\")\r\n");
	test_assert(wait_for(&c, "m OK"));
	want = xasprintf("m OK [APPENDUID %u 3:4] Append completed.\r\n", v);
	test_assert(out_pos(&c, want) >= 0);
	free(want);
	const char *text = "--b1\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b1--\r\n";
	body = xasprintf("* 4 FETCH (UID 4 BODY[] {%zu}\r\nSubject: x\r\n%s)\r\nt OK Fetch completed.\r\n",
			 12 + strlen(text), text);
	expect_answer(&c, "UID FETCH 4 BODY.PEEK[]", body);
	free(body);
	body = xasprintf("* 3 FETCH (UID 3 BODY[TEXT] {4}\r\nhi\r\n)\r\nt OK Fetch completed.\r\n");
	expect_answer(&c, "UID FETCH 3 BODY.PEEK[TEXT]", body);
	free(body);
	/* refusals: BADURL with the URL as given; nothing stored by any of them */
	static const struct {
		const char *url, *why;
	} bad[] = {
		{ "/Cat/;UID=1/;section=30", "No such message or section" },
		{ "/Cat;UIDVALIDITY=1/;UID=1", "The mailbox's UIDVALIDITY has changed" },
		{ "/Cat/;UID=99", "No such message or section" },
		{ "/Nope/;UID=1", "No such mailbox" },
		{ "imap://u2@test/Cat/;UID=1", "The URL names another server or another user" },
		{ "imap://u1@elsewhere.example/Cat/;UID=1", "The URL names another server or another user" },
		{ "imap://u1@test/Cat/;UID=1;URLAUTH=anonymous", "URLAUTH URLs are not taken by CATENATE" },
		{ "/Cat/;UID=1/;section=HEADER.FIELDS%20(TO)", "Only HEADER, TEXT, MIME and part sections are served" },
		{ "/Cat/;UID=1/;COLOUR=red", "Bad IMAP URL: unknown or misplaced parameter" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		cmd = xasprintf("APPEND Cat CATENATE (TEXT {4+}\r\nhi\r\n URL \"%s\")", bad[i].url);
		want = xasprintf("t NO [BADURL %s] %s.\r\n", bad[i].url, bad[i].why);
		expect_answer(&c, cmd, want);
		free(cmd);
		free(want);
	}
	expect_answer(&c, "APPEND Cat CATENATE (TEXT {4+}\r\nhi\r\n URL)",
		      "t BAD CATENATE takes a list of TEXT literal and URL url parts\r\n");
	/* TOOBIG: two URLs of a 60,000-byte message, past the limit of 100,000 */
	struct buf big = BUF_INIT;
	buf_append_str(&big, "Subject: big\r\n\r\n");
	while (big.len < 60000)
		buf_append_str(&big, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
	append_msg("Cat", buf_cstr(&big));
	buf_free(&big);
	buf_reset(&c.in);
	send_str(&c, "n NOOP\r\n");
	test_assert(wait_for(&c, "n OK") && out_pos(&c, "* 5 EXISTS\r\n") >= 0);
	expect_answer(&c, "APPEND Cat CATENATE (URL \"/Cat/;UID=5\" URL \";UID=5\")",
		      "t NO [TOOBIG] The message would be larger than the 100000 bytes allowed.\r\n");
	expect_answer(&c, "STATUS Cat (MESSAGES)", "* STATUS Cat (MESSAGES 5)\r\nt OK Status completed.\r\n");
	client_close(&c);
}

/* The URL of a GENURLAUTH answer (tag "g"), in url_r. */
static void genurlauth(struct client *c, const char *rump, struct buf *url_r)
{
	char *cmd = xasprintf("g GENURLAUTH \"%s\" INTERNAL\r\n", rump),
	     *want = xasprintf("* GENURLAUTH \"%s:internal:", rump);
	buf_reset(&c->in);
	send_str(c, cmd);
	test_assert(wait_for(c, "g OK GENURLAUTH completed."));
	long at = out_pos(c, want);
	test_assert(at >= 0);
	const char *start = buf_cstr(&c->in) + at + strlen("* GENURLAUTH \""), *end = strchr(start, '"');
	buf_reset(url_r);
	buf_append(url_r, start, (size_t)(end - start));
	test_assert(url_r->len == strlen(rump) + strlen(":internal:") + 64);
	free(cmd);
	free(want);
}

/* URLAUTH (RFC 4467), its example's shape: GENURLAUTH authorises a rump URL of the user's own mailbox, URLFETCH
 * gives its content to whom the access identifier names (anonymous, authuser, user+u1; submit+u1 only to a server
 * signing in for u1, so not here), a tampered token, another access in the same token, an expired URL and one
 * after RESETKEY give NIL; GENURLAUTH refuses other users' and other servers' URLs and URLs without ;URLAUTH=. */
static void imap_urlauth(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	test_assert(capability_has(&c, " URLAUTH"));
	send_str(&c, "a CREATE Ua\r\n");
	test_assert(wait_for(&c, "a OK"));
	const char *msg = "Subject: u\r\nContent-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\n\r\none\r\n--q\r\n"
			  "\r\ntwo\r\n--q--\r\n";
	append_msg("Ua", msg);
	struct buf url = BUF_INIT;
	genurlauth(&c, "imap://u1@test/Ua/;uid=1/;section=2;urlauth=user+u1", &url);
	char *cmd = xasprintf("URLFETCH \"%s\"", buf_cstr(&url));
	char *want = xasprintf("* URLFETCH \"%s\" {3}\r\ntwo\r\nt OK URLFETCH completed.\r\n", buf_cstr(&url));
	expect_answer(&c, cmd, want);
	free(cmd);
	free(want);
	/* tampered: one hex digit changed; the same token under another access identifier */
	struct buf bad = BUF_INIT;
	buf_append(&bad, url.data, url.len);
	bad.data[bad.len - 1] = bad.data[bad.len - 1] == '0' ? '1' : '0';
	cmd = xasprintf("URLFETCH \"%s\"", buf_cstr(&bad));
	want = xasprintf("* URLFETCH \"%s\" NIL\r\nt OK URLFETCH completed.\r\n", buf_cstr(&bad));
	expect_answer(&c, cmd, want);
	free(cmd);
	free(want);
	buf_reset(&bad);
	const char *tok = strstr(buf_cstr(&url), ":internal:");
	buf_printf(&bad, "imap://u1@test/Ua/;uid=1/;section=2;urlauth=anonymous%s", tok);
	cmd = xasprintf("URLFETCH \"%s\"", buf_cstr(&bad));
	want = xasprintf("* URLFETCH \"%s\" NIL\r\nt OK URLFETCH completed.\r\n", buf_cstr(&bad));
	expect_answer(&c, cmd, want);
	free(cmd);
	free(want);
	/* anonymous, whole message, with the folder's UIDVALIDITY; submit+u1 is not for an ordinary session of u1; a
	 * UIDVALIDITY the folder does not have */
	struct buf anon = BUF_INIT, sub = BUF_INIT, old = BUF_INIT, stale = BUF_INIT;
	unsigned v;
	folder_uidvalidity(&c, "Ua", &v);
	char *rump = xasprintf("imap://u1@test/Ua;UIDVALIDITY=%u/;uid=1;urlauth=anonymous", v);
	genurlauth(&c, rump, &anon);
	free(rump);
	rump = xasprintf("imap://u1@test/Ua;UIDVALIDITY=%u/;uid=1;urlauth=anonymous", v + 1);
	genurlauth(&c, rump, &stale);
	free(rump);
	genurlauth(&c, "imap://u1@test/Ua/;uid=1/;section=1;urlauth=submit+u1", &sub);
	buf_reset(&c.in);
	cmd = xasprintf("f URLFETCH \"%s\" \"%s\" \"%s\"\r\n", buf_cstr(&anon), buf_cstr(&sub), buf_cstr(&stale));
	send_str(&c, cmd);
	free(cmd);
	test_assert(wait_for(&c, "f OK"));
	want = xasprintf("* URLFETCH \"%s\" {%zu}\r\n%s\r\n* URLFETCH \"%s\" NIL\r\n* URLFETCH \"%s\" NIL\r\n"
			 "f OK URLFETCH completed.\r\n",
			 buf_cstr(&anon), strlen(msg), msg, buf_cstr(&sub), buf_cstr(&stale));
	test_assert(strcmp(buf_cstr(&c.in), want) == 0);
	free(want);
	/* expired */
	struct buf exp = BUF_INIT;
	genurlauth(&c, "imap://u1@test/Ua/;uid=1;EXPIRE=2020-01-01T00:00:00Z;urlauth=authuser", &exp);
	cmd = xasprintf("URLFETCH \"%s\"", buf_cstr(&exp));
	want = xasprintf("* URLFETCH \"%s\" NIL\r\nt OK URLFETCH completed.\r\n", buf_cstr(&exp));
	expect_answer(&c, cmd, want);
	free(cmd);
	free(want);
	/* RESETKEY: the URLs made before stop working; a new one verifies again */
	buf_append(&old, url.data, url.len);
	expect_answer(&c, "RESETKEY Ua INTERNAL", "t OK [URLMECH INTERNAL] The mailbox's key is reset.\r\n");
	cmd = xasprintf("URLFETCH \"%s\"", buf_cstr(&old));
	want = xasprintf("* URLFETCH \"%s\" NIL\r\nt OK URLFETCH completed.\r\n", buf_cstr(&old));
	expect_answer(&c, cmd, want);
	free(cmd);
	free(want);
	genurlauth(&c, "imap://u1@test/Ua/;uid=1/;section=2;urlauth=user+u1", &url);
	test_assert(strcmp(buf_cstr(&url), buf_cstr(&old)) != 0);
	cmd = xasprintf("URLFETCH \"%s\"", buf_cstr(&url));
	want = xasprintf("* URLFETCH \"%s\" {3}\r\ntwo\r\nt OK URLFETCH completed.\r\n", buf_cstr(&url));
	expect_answer(&c, cmd, want);
	free(cmd);
	free(want);
	expect_answer(&c, "RESETKEY", "t OK Every mailbox's key is reset.\r\n");
	expect_answer(&c, "RESETKEY Nope", "t NO [NONEXISTENT] Mailbox doesn't exist.\r\n");
	/* refusals of GENURLAUTH */
	static const struct {
		const char *rump, *why;
	} refused[] = {
		{ "imap://u2@test/Ua/;uid=1;urlauth=anonymous", "The URL must name this server and your own user" },
		{ "imap://u1@elsewhere/Ua/;uid=1;urlauth=anonymous",
		  "The URL must name this server and your own user" },
		{ "imap://u1@test/Ua/;uid=1", "Not a rump URL (it must end with ;URLAUTH=access)" },
		{ "imap://u1@test/Nope/;uid=1;urlauth=anonymous", "No such mailbox" },
		{ "imap://u1@test/Public%20Folders/Pub/;uid=1;urlauth=anonymous",
		  "Only your own mailboxes' URLs are authorised" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(refused); i++) {
		cmd = xasprintf("GENURLAUTH \"%s\" INTERNAL", refused[i].rump);
		want = xasprintf("t NO %s\r\n", refused[i].why);
		expect_answer(&c, cmd, want);
		free(cmd);
		free(want);
	}
	expect_answer(&c, "GENURLAUTH \"imap://u1@test/Ua/;uid=1;urlauth=anonymous\" XYZ",
		      "t BAD GENURLAUTH takes pairs of a rump URL and the mechanism INTERNAL\r\n");
	buf_free(&url);
	buf_free(&bad);
	buf_free(&anon);
	buf_free(&sub);
	buf_free(&old);
	buf_free(&stale);
	buf_free(&exp);
	client_close(&c);
}

/* SEARCHRES (RFC 5182), its examples: SAVE alone answers no ESEARCH at all, only the tagged OK, and "$" then names
 * the result; SAVE with MIN and/or MAX saves only those (both when both), with COUNT or ALL every match; a SEARCH
 * (SAVE) answered NO leaves "$" empty; "$" in the criteria of the next SEARCH is the old result. */
static void imap_searchres(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	test_assert(capability_has(&c, " SEARCHRES"));
	send_str(&c, "a CREATE Res\r\n");
	test_assert(wait_for(&c, "a OK"));
	for (int i = 1; i <= 5; i++) {
		char *msg = xasprintf("From: %s@x.org\r\nSubject: m%d\r\n\r\n%s\r\n", i == 3 ? "smith" : "amy", i,
				      i == 5 ? "a longer body than the rest" : "b");
		append_msg("Res", msg);
		free(msg);
	}
	send_str(&c, "b SELECT Res\r\nc STORE 2:5 +FLAGS.SILENT (\\Flagged)\r\n");
	test_assert(wait_for(&c, "c OK"));
	expect_tagged(&c, "A282", "SEARCH RETURN (SAVE) FLAGGED NOT FROM \"Smith\"", "A282 OK Search completed.\r\n");
	expect_tagged(&c, "A283", "FETCH $ (UID)",
		      "* 2 FETCH (UID 2)\r\n* 4 FETCH (UID 4)\r\n* 5 FETCH (UID 5)\r\nA283 OK Fetch completed.\r\n");
	expect_tagged(&c, "A284", "SEARCH $ SMALLER 40", "* SEARCH 2 4\r\nA284 OK Search completed.\r\n");
	/* the pipelined example: the ESEARCH of MIN, then FETCH $ of that one message */
	buf_reset(&c.in);
	send_str(&c, "A285 SEARCH RETURN (SAVE MIN) FLAGGED NOT FROM \"Smith\"\r\nA286 FETCH $ (UID)\r\n");
	test_assert(wait_for(&c, "A286 OK"));
	test_assert(strcmp(buf_cstr(&c.in), "* ESEARCH (TAG \"A285\") MIN 2\r\nA285 OK Search completed.\r\n"
					    "* 2 FETCH (UID 2)\r\nA286 OK Fetch completed.\r\n") == 0);
	expect_tagged(&c, "A287", "UID SEARCH RETURN (SAVE MIN MAX) FLAGGED",
		      "* ESEARCH (TAG \"A287\") UID MIN 2 MAX 5\r\nA287 OK Search completed.\r\n");
	expect_answer(&c, "UID FETCH $ (FLAGS)",
		      "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n* 5 FETCH (UID 5 FLAGS (\\Flagged \\Recent))\r\n"
		      "t OK Fetch completed.\r\n");
	expect_tagged(&c, "A288", "SEARCH RETURN (SAVE MAX) FLAGGED SMALLER 40",
		      "* ESEARCH (TAG \"A288\") MAX 4\r\nA288 OK Search completed.\r\n");
	expect_answer(&c, "SEARCH $", "* SEARCH 4\r\nt OK Search completed.\r\n");
	/* MIN and MAX the same message: saved once */
	expect_tagged(&c, "A289", "SEARCH RETURN (SAVE MIN MAX) FROM smith",
		      "* ESEARCH (TAG \"A289\") MIN 3 MAX 3\r\nA289 OK Search completed.\r\n");
	expect_answer(&c, "SEARCH RETURN (COUNT) $", "* ESEARCH (TAG \"t\") COUNT 1\r\nt OK Search completed.\r\n");
	/* with COUNT (or ALL) every match is saved */
	expect_tagged(&c, "A290", "SEARCH RETURN (SAVE MIN COUNT) FLAGGED",
		      "* ESEARCH (TAG \"A290\") MIN 2 COUNT 4\r\nA290 OK Search completed.\r\n");
	expect_answer(&c, "SEARCH $", "* SEARCH 2 3 4 5\r\nt OK Search completed.\r\n");
	/* "$" in the criteria is the previous result while the new one is saved */
	expect_tagged(&c, "A291", "SEARCH RETURN (SAVE) $ FROM amy", "A291 OK Search completed.\r\n");
	expect_answer(&c, "SEARCH $", "* SEARCH 2 4 5\r\nt OK Search completed.\r\n");
	/* nothing found: "$" is empty, still no ESEARCH */
	expect_tagged(&c, "A292", "SEARCH RETURN (SAVE) SUBJECT nothing", "A292 OK Search completed.\r\n");
	expect_answer(&c, "FETCH $ (UID)", "t OK Fetch completed.\r\n");
	/* a SEARCH (SAVE) answered NO empties it too */
	expect_tagged(&c, "A293", "SEARCH RETURN (SAVE) ALL", "A293 OK Search completed.\r\n");
	expect_tagged(&c, "A294", "SEARCH RETURN (SAVE) CHARSET KOI8-R ALL",
		      "A294 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n");
	expect_answer(&c, "FETCH $ (UID)", "t OK Fetch completed.\r\n");
	/* IMAP4rev2 answers with ESEARCH, but not for SAVE alone */
	expect_answer(&c, "ENABLE IMAP4rev2", "* ENABLED IMAP4rev2\r\nt OK Enabled.\r\n");
	expect_tagged(&c, "A295", "SEARCH RETURN (SAVE) FROM smith", "A295 OK Search completed.\r\n");
	expect_answer(&c, "SEARCH $", "* ESEARCH (TAG \"t\") ALL 3\r\nt OK Search completed.\r\n");
	client_close(&c);
}

/* IMAP4rev2 (RFC 9051) after ENABLE IMAP4rev2, item by item of its appendix E: no \Recent (none claimed, so a rev1
 * session still gets them; no RECENT response, status item or search keys), SEARCH answered by ESEARCH, SELECT
 * without UNSEEN and with the mailbox's LIST, CLOSED, STATUS DELETED and SIZE, HASCHILDREN, UTF-8 mailbox names */
static void imap_rev2(void)
{
	setup();
	struct client c, r1;
	client_open(&c, false);
	login(&c);
	test_assert(capability_has(&c, "CAPABILITY IMAP4rev1 IMAP4rev2 "));
	send_str(&c, "a CREATE R2/Kid\r\n");
	test_assert(wait_for(&c, "a OK"));
	append_msg("R2", "Subject: one\r\n\r\n1\r\n");
	append_msg("R2", "Subject: two\r\n\r\n2\r\n");
	expect_answer(&c, "ENABLE IMAP4rev2", "* ENABLED IMAP4rev2\r\nt OK Enabled.\r\n");
	expect_answer(&c, "ENABLE IMAP4rev2 UTF8=ACCEPT", "* ENABLED\r\nt OK Enabled.\r\n");
	unsigned v;
	folder_uidvalidity(&c, "R2", &v);
	struct buf mid = BUF_INIT;
	folder_mailboxid(&c, "R2", &mid);
	char *want = xasprintf("* FLAGS (" SYSFLAGS ")\r\n* OK [PERMANENTFLAGS (" SYSFLAGS " \\*)] Flags permitted.\r\n"
			       "* 2 EXISTS\r\n* OK [MAILBOXID (%s)] Ok\r\n* OK [UIDVALIDITY %u] UIDs valid.\r\n"
			       "* OK [UIDNEXT 3] Predicted next UID.\r\n* LIST (\\HasChildren) \"/\" \"R2\"\r\n"
			       "* OK [HIGHESTMODSEQ 3] Highest.\r\nt OK [READ-WRITE] SELECT completed.\r\n",
			       buf_cstr(&mid), v);
	expect_answer(&c, "SELECT R2", want);
	free(want);
	buf_free(&mid);
#define NO_RECENT_KEYS "t BAD RECENT, NEW and OLD are not IMAP4rev2 search keys\r\n"
	static const struct {
		const char *command, *answer;
	} cases[] = {
		{ "FETCH 1:* FLAGS", "* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS ())\r\nt OK Fetch completed.\r\n" },
		{ "SEARCH ALL", "* ESEARCH (TAG \"t\") ALL 1:2\r\nt OK Search completed.\r\n" },
		{ "UID SEARCH SUBJECT two", "* ESEARCH (TAG \"t\") UID ALL 2\r\nt OK Search completed.\r\n" },
		{ "SEARCH SUBJECT three", "* ESEARCH (TAG \"t\")\r\nt OK Search completed.\r\n" },
		{ "SEARCH RETURN (COUNT) ALL", "* ESEARCH (TAG \"t\") COUNT 2\r\nt OK Search completed.\r\n" },
		{ "SEARCH RECENT", NO_RECENT_KEYS },
		{ "SEARCH NOT NEW", NO_RECENT_KEYS },
		{ "SORT (DATE) UTF-8 OLD", NO_RECENT_KEYS },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(cases); i++)
		expect_answer(&c, cases[i].command, cases[i].answer);
	expect_answer(&c, "STORE 1 +FLAGS.SILENT (\\Deleted)", "t OK Store completed.\r\n");
	expect_answer(&c, "STATUS R2 (MESSAGES DELETED SIZE)",
		      "* STATUS R2 (MESSAGES 2 DELETED 1 SIZE 38)\r\nt OK Status completed.\r\n");
	expect_answer(&c, "STATUS R2 (MESSAGES RECENT)", "t BAD RECENT is not an IMAP4rev2 STATUS item\r\n");
	expect_answer(&c, "LIST \"\" R2 RETURN (STATUS (RECENT))", "t BAD Unknown LIST return option\r\n");
	/* an arrival: EXISTS without RECENT */
	append_msg("R2", "Subject: three\r\n\r\n3\r\n");
	expect_answer(&c, "NOOP", "* 3 EXISTS\r\nt OK NOOP completed.\r\n");
	/* a rev1 session on the same server: the messages are still recent, since the rev2 session claimed none */
	client_join(&r1, &c);
	login(&r1);
	expect_answer(&r1, "STATUS R2 (RECENT DELETED)",
		      "* STATUS R2 (RECENT 3 DELETED 1)\r\nt OK Status completed.\r\n");
	client_close(&r1);
	expect_answer(&c, "DELETE R2", "t NO [HASCHILDREN] The mailbox has subfolders: delete them first.\r\n");
	/* mailbox names in UTF-8 both ways; selecting another mailbox says CLOSED first; INBOX as the server spells it */
	send_str(&c, "t CREATE \"Bro\xcc\x88t\xc3\xa9\"\r\n");
	test_assert(wait_for(&c, "t OK [MAILBOXID (F"));
	expect_answer(&c, "LIST \"\" Bro*",
		      "* LIST (\\HasNoChildren) \"/\" \"Bro\xcc\x88t\xc3\xa9\"\r\nt OK LIST completed.\r\n");
	buf_reset(&c.in);
	send_str(&c, "b SELECT \"Bro\xcc\x88t\xc3\xa9\"\r\n");
	test_assert(wait_for(&c, "b OK [READ-WRITE]"));
	test_assert(out_pos(&c, "* OK [CLOSED] Previous mailbox closed.\r\n") >= 0);
	test_assert(out_pos(&c, "* LIST (\\HasNoChildren) \"/\" \"Bro\xcc\x88t\xc3\xa9\"\r\n") > 0);
	buf_reset(&c.in);
	send_str(&c, "d EXAMINE inbox\r\n");
	test_assert(wait_for(&c, "d OK [READ-ONLY]"));
	test_assert(out_pos(&c, "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n") > 0 && out_pos(&c, "RECENT") < 0);
	/* a non-synchronizing literal of up to 4096 bytes (LITERAL-, within LITERAL+) */
	expect_answer(&c, "STATUS {2+}\r\nR2 (MESSAGES)", "* STATUS R2 (MESSAGES 3)\r\nt OK Status completed.\r\n");
	client_close(&c);
}

/* The id after "NAME (" in the k-th (from 0) occurrence in the output, in id_r ("" when missing). */
static void output_id(struct client *c, const char *name, int k, struct buf *id_r)
{
	char *needle = xasprintf("%s (", name);
	const char *at = buf_cstr(&c->in);
	for (int i = 0; at != NULL && i <= k; i++) {
		at = strstr(at, needle);
		if (at != NULL)
			at += strlen(needle);
	}
	buf_reset(id_r);
	if (at != NULL)
		buf_append(id_r, at, strcspn(at, ")"));
	free(needle);
}

/* OBJECTID (RFC 8474): MAILBOXID from CREATE, SELECT and STATUS, kept by RENAME and new for a new folder of the same
 * name; EMAILID the same for a copy, THREADID shared by a message and its reply; SEARCH EMAILID/THREADID. PREVIEW
 * (RFC 8970) of plain, HTML, multipart and text-less messages, with LAZY. */
static void imap_objectid_and_preview(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	struct buf id1 = BUF_INIT, id2 = BUF_INIT, e1 = BUF_INIT, e2 = BUF_INIT, t1 = BUF_INIT, t2 = BUF_INIT;
	send_str(&c, "a CREATE Obj\r\n");
	test_assert(wait_for(&c, "a OK [MAILBOXID (F"));
	output_id(&c, "MAILBOXID", 0, &e1);
	folder_mailboxid(&c, "Obj", &id1);
	test_assert_str(buf_cstr(&e1), buf_cstr(&id1));
	send_str(&c, "b RENAME Obj ObjR\r\nc CREATE Obj\r\n");
	test_assert(wait_for(&c, "c OK [MAILBOXID (F"));
	folder_mailboxid(&c, "ObjR", &id2);
	test_assert_str(buf_cstr(&id2), buf_cstr(&id1));
	folder_mailboxid(&c, "Obj", &id2);
	test_assert(strcmp(buf_cstr(&id2), buf_cstr(&id1)) != 0);
	append_msg("ObjR", "Message-ID: <root@x>\r\nSubject: root\r\n\r\nFirst line\r\n> quoted\r\nlast line\r\n");
	append_msg("ObjR", "Message-ID: <reply@x>\r\nReferences: <root@x>\r\nSubject: Re: root\r\n\r\nA reply\r\n");
	append_msg("ObjR",
		   "Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n"
		   "\r\n<html><head><style>x</style></head><body>Caf=E9 &amp; cr=\r\n=E8me</body></html>\r\n");
	append_msg("ObjR",
		   "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
		   "<b>html</b>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain  text\r\n--b--\r\n");
	append_msg("ObjR", "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n");
	buf_reset(&c.in);
	send_str(&c, "d SELECT ObjR\r\n");
	test_assert(wait_for(&c, "d OK [READ-WRITE]"));
	char *line = xasprintf("* OK [MAILBOXID (%s)] Ok\r\n", buf_cstr(&id1));
	test_assert(out_pos(&c, line) > 0);
	free(line);
	buf_reset(&c.in);
	send_str(&c, "e FETCH 1:2 (EMAILID THREADID)\r\n");
	test_assert(wait_for(&c, "e OK"));
	output_id(&c, "EMAILID", 0, &e1);
	output_id(&c, "EMAILID", 1, &e2);
	output_id(&c, "THREADID", 0, &t1);
	output_id(&c, "THREADID", 1, &t2);
	test_assert(e1.len == 25 && buf_cstr(&e1)[0] == 'M' && t1.len == 25 && buf_cstr(&t1)[0] == 'T');
	test_assert(strcmp(buf_cstr(&e1), buf_cstr(&e2)) != 0 && strcmp(buf_cstr(&t1), buf_cstr(&t2)) == 0);
	char *want = xasprintf("* 1 FETCH (EMAILID (%s) THREADID (%s))\r\n", buf_cstr(&e1), buf_cstr(&t1));
	test_assert(out_pos(&c, want) == 0);
	free(want);
	/* a copy keeps its EMAILID; SEARCH finds by either identifier */
	send_str(&c, "f COPY 1 Obj\r\n");
	test_assert(wait_for(&c, "f OK"));
	char *cmd = xasprintf("SEARCH EMAILID %s", buf_cstr(&e1));
	expect_answer(&c, cmd, "* SEARCH 1\r\nt OK Search completed.\r\n");
	free(cmd);
	cmd = xasprintf("UID SEARCH THREADID %s", buf_cstr(&t1));
	expect_answer(&c, cmd, "* SEARCH 1 2\r\nt OK Search completed.\r\n");
	free(cmd);
	expect_answer(&c, "SEARCH EMAILID M000", "* SEARCH\r\nt OK Search completed.\r\n");
	expect_answer(&c, "FETCH 1:* PREVIEW",
		      "* 1 FETCH (PREVIEW \"First line last line\")\r\n* 2 FETCH (PREVIEW \"A reply\")\r\n"
		      "* 3 FETCH (PREVIEW {14}\r\nCaf\xc3\xa9 & cr\xc3\xa8me)\r\n* 4 FETCH (PREVIEW \"plain text\")\r\n"
		      "* 5 FETCH (PREVIEW \"\")\r\nt OK Fetch completed.\r\n");
	expect_answer(&c, "UID FETCH 2 (PREVIEW (LAZY))",
		      "* 2 FETCH (UID 2 PREVIEW \"A reply\")\r\nt OK Fetch completed.\r\n");
	send_str(&c, "g SELECT Obj\r\n");
	test_assert(wait_for(&c, "g OK"));
	buf_reset(&c.in);
	send_str(&c, "h FETCH 1 (EMAILID)\r\n");
	test_assert(wait_for(&c, "h OK"));
	output_id(&c, "EMAILID", 0, &e2);
	test_assert_str(buf_cstr(&e2), buf_cstr(&e1));
	/* under UTF8=ACCEPT the preview goes in a quoted string */
	expect_answer(&c, "ENABLE UTF8=ACCEPT", "* ENABLED UTF8=ACCEPT\r\nt OK Enabled.\r\n");
	send_str(&c, "i SELECT ObjR\r\n");
	test_assert(wait_for(&c, "i OK"));
	expect_answer(&c, "FETCH 3 PREVIEW",
		      "* 3 FETCH (PREVIEW \"Caf\xc3\xa9 & cr\xc3\xa8me\")\r\nt OK Fetch completed.\r\n");
	test_assert(capability_has(&c, " OBJECTID PREVIEW"));
	buf_free(&id1);
	buf_free(&id2);
	buf_free(&e1);
	buf_free(&e2);
	buf_free(&t1);
	buf_free(&t2);
	client_close(&c);
}

/* SAVEDATE (RFC 8514): FETCH SAVEDATE is the time the message was saved in the folder (APPEND, COPY), NIL for one
 * imported with its UID; SEARCH SAVEDON/SAVEDBEFORE/SAVEDSINCE use it, the internal date standing in for a NIL */
static void imap_savedate(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char today[32], date[48];
	strftime(today, sizeof(today), "%d-%b-%Y", &tm);
	strftime(date, sizeof(date), "SAVEDATE \"%d-%b-%Y ", &tm);
	send_str(&c, "a CREATE Sav\r\nb CREATE SavCopy\r\n"
		     "c APPEND Sav \"01-Jan-2020 00:00:00 +0000\" {14+}\r\nSubject: one\r\n\r\n");
	test_assert(wait_for(&c, "c OK"));
	struct store_target t = { .guid = GUID, .folder = "Sav", .want_uid = 5 };
	const char *imported = "Subject: imported\r\n\r\nx\r\n";
	struct store_append ap = {
		.data = imported, .len = strlen(imported), .internal_date = 1700000000, .targets = &t, .ntargets = 1
	};
	test_assert(store_append(st, &ap, NULL) == 0 && t.uid == 5);
	send_str(&c, "d SELECT Sav\r\n");
	test_assert(wait_for(&c, "d OK"));
	buf_reset(&c.in);
	send_str(&c, "e UID FETCH 1:* (SAVEDATE)\r\n");
	test_assert(wait_for(&c, "e OK"));
	char *want = xasprintf("* 1 FETCH (UID 1 %s", date);
	test_assert(out_pos(&c, want) == 0 && out_pos(&c, "* 2 FETCH (UID 5 SAVEDATE NIL)\r\n") > 0);
	free(want);
	char *cmd = xasprintf("UID SEARCH SAVEDON %s", today);
	expect_answer(&c, cmd, "* SEARCH 1\r\nt OK Search completed.\r\n");
	free(cmd);
	cmd = xasprintf("UID SEARCH SAVEDBEFORE %s", today);
	expect_answer(&c, cmd, "* SEARCH 5\r\nt OK Search completed.\r\n");
	free(cmd);
	expect_answer(&c, "UID SEARCH SAVEDSINCE 14-Nov-2023 SAVEDATESUPPORTED",
		      "* SEARCH 1 5\r\nt OK Search completed.\r\n");
	/* a copy is saved now in its new folder, whatever the original's dates */
	send_str(&c, "f UID COPY 5 SavCopy\r\ng SELECT SavCopy\r\n");
	test_assert(wait_for(&c, "g OK"));
	buf_reset(&c.in);
	send_str(&c, "h FETCH 1 (SAVEDATE INTERNALDATE)\r\n");
	test_assert(wait_for(&c, "h OK"));
	want = xasprintf("* 1 FETCH (INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" %s", date);
	test_assert(out_pos(&c, want) == 0);
	free(want);
	test_assert(capability_has(&c, " SAVEDATE"));
	client_close(&c);
}

/* CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267): RETURN (UPDATE) keeps a result up to date with ADDTO and REMOVEFROM
 * (the session's own STORE, a delivery after its EXISTS, an expunge before its EXPUNGE; SORT with positions),
 * CANCELUPDATE, PARTIAL, the refusals and NOUPDATE past the limit */
static void imap_context_updates(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	send_str(&c, "a CREATE Ctx\r\n");
	test_assert(wait_for(&c, "a OK"));
	append_msg("Ctx", "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: a\r\n\r\n1\r\n");
	append_msg("Ctx", "Date: Wed, 3 Jan 2024 00:00:00 +0000\r\nSubject: b\r\n\r\n2\r\n");
	append_msg("Ctx", "Date: Tue, 2 Jan 2024 00:00:00 +0000\r\nSubject: c\r\n\r\n3\r\n");
	send_str(&c, "b SELECT Ctx\r\n");
	test_assert(wait_for(&c, "b OK [READ-WRITE]"));
	expect_tagged(&c, "u1", "UID SEARCH RETURN (UPDATE) UNSEEN",
		      "* ESEARCH (TAG \"u1\") UID ALL 1:3\r\nu1 OK Search completed.\r\n");
	expect_tagged(&c, "s1", "UID SORT RETURN (UPDATE) (DATE) UTF-8 UNSEEN",
		      "* ESEARCH (TAG \"s1\") UID ALL 1,3,2\r\ns1 OK Sort completed.\r\n");
	expect_tagged(&c, "u1", "SEARCH RETURN (UPDATE) ALL", "u1 BAD The tag names an update context already\r\n");
	expect_tagged(&c, "x1", "SEARCH RETURN (UPDATE MIN) ALL",
		      "x1 BAD UPDATE is not taken with MIN, MAX, PARTIAL or SAVE\r\n");
	/* the session's own STORE: out of both results */
	expect_tagged(&c, "a1", "STORE 1 +FLAGS.SILENT (\\Seen)",
		      "* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 1)\r\n* ESEARCH (TAG \"s1\") UID REMOVEFROM (0 1)\r\n"
		      "a1 OK Store completed.\r\n");
	/* a delivery: after its EXISTS; first by date */
	append_msg("Ctx", "Date: Mon, 1 Jan 2024 09:00:00 +0000\r\nSubject: d\r\n\r\n4\r\n");
	expect_tagged(&c, "n1", "NOOP",
		      "* 4 EXISTS\r\n* 4 RECENT\r\n* ESEARCH (TAG \"u1\") UID ADDTO (0 4)\r\n"
		      "* ESEARCH (TAG \"s1\") UID ADDTO (1 4)\r\nn1 OK NOOP completed.\r\n");
	/* an expunge: before its EXPUNGE */
	expect_tagged(&c, "a2", "STORE 3 +FLAGS.SILENT (\\Deleted)", "a2 OK Store completed.\r\n");
	expect_tagged(&c, "e1", "EXPUNGE",
		      "* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 3)\r\n* ESEARCH (TAG \"s1\") UID REMOVEFROM (0 3)\r\n"
		      "* 3 EXPUNGE\r\ne1 OK Expunge completed.\r\n");
	/* by sequence numbers; CANCELUPDATE ends the others */
	expect_tagged(&c, "q1", "SEARCH RETURN (UPDATE) UNSEEN",
		      "* ESEARCH (TAG \"q1\") ALL 2:3\r\nq1 OK Search completed.\r\n");
	expect_tagged(&c, "c1", "CANCELUPDATE \"u1\" \"s1\"", "c1 OK Updates cancelled.\r\n");
	expect_tagged(&c, "c2", "CANCELUPDATE \"u1\"", "c2 BAD CANCELUPDATE takes the tags of update contexts\r\n");
	expect_tagged(&c, "a3", "STORE 2 +FLAGS.SILENT (\\Seen)",
		      "* ESEARCH (TAG \"q1\") REMOVEFROM (0 2)\r\na3 OK Store completed.\r\n");
	/* PARTIAL: the results at those positions */
	expect_answer(&c, "UID SEARCH RETURN (PARTIAL 1:2) ALL",
		      "* ESEARCH (TAG \"t\") UID PARTIAL (1:2 1:2)\r\nt OK Search completed.\r\n");
	expect_answer(&c, "SEARCH RETURN (PARTIAL 9:5 COUNT) ALL",
		      "* ESEARCH (TAG \"t\") COUNT 3 PARTIAL (5:9 NIL)\r\nt OK Search completed.\r\n");
	expect_answer(&c, "UID SORT RETURN (PARTIAL 2:3) (REVERSE DATE) UTF-8 ALL",
		      "* ESEARCH (TAG \"t\") UID PARTIAL (2:3 4,1)\r\nt OK Sort completed.\r\n");
	expect_answer(&c, "SEARCH RETURN (PARTIAL 0:3) ALL", "t BAD PARTIAL needs a range of positions\r\n");
	/* the limit: q1 and seven more, then NOUPDATE (the result is still given) */
	for (int i = 0; i < 7; i++) {
		char tag[8];
		snprintf(tag, sizeof(tag), "m%d", i);
		send_str(&c, tag);
		send_str(&c, " SEARCH RETURN (UPDATE) ALL\r\n");
		char *done = xasprintf("%s OK", tag);
		test_assert(wait_for(&c, done));
		free(done);
	}
	expect_tagged(&c, "m7", "SEARCH RETURN (UPDATE) ALL",
		      "* ESEARCH (TAG \"m7\") ALL 1:3\r\n* NO [NOUPDATE \"m7\"] Too many update contexts.\r\n"
		      "m7 OK Search completed.\r\n");
	/* closing the mailbox ends every context */
	send_str(&c, "d SELECT Ctx\r\n");
	test_assert(wait_for(&c, "d OK"));
	expect_tagged(&c, "a4", "STORE 1 -FLAGS.SILENT (\\Seen)", "a4 OK Store completed.\r\n");
	test_assert(capability_has(&c, " CONTEXT=SEARCH CONTEXT=SORT"));
	client_close(&c);
}

/* METADATA and METADATA-SERVER (RFC 5464), after its examples: server and mailbox entries, private and shared, DEPTH,
 * MAXSIZE with LONGENTRIES, the entries the server answers (/shared/admin, /private/specialuse), NIL removes, the
 * limits (MAXSIZE, TOOMANY: nothing of a refused command is set), rights on a public folder, rename keeps and delete
 * drops a folder's entries, and another user's private entries stay apart (store level). */
static void imap_metadata(void)
{
	setup();
	struct client c;
	client_open(&c, false);
	login(&c);
	test_assert(capability_has(&c, " METADATA METADATA-SERVER"));
	expect_answer(&c, "SETMETADATA \"\" (/shared/comment \"Shared comment\" /private/comment \"My comment\")",
		      "t OK SETMETADATA completed.\r\n");
	expect_answer(&c, "GETMETADATA \"\" /shared/comment",
		      "* METADATA \"\" (/shared/comment \"Shared comment\")\r\nt OK GETMETADATA completed.\r\n");
	expect_answer(&c, "GETMETADATA \"\" (/shared/comment /private/comment /private/none)",
		      "* METADATA \"\" (/shared/comment \"Shared comment\" /private/comment \"My comment\" "
		      "/private/none NIL)\r\nt OK GETMETADATA completed.\r\n");
	expect_answer(&c, "GETMETADATA \"\" (DEPTH infinity) (/shared)",
		      "* METADATA \"\" (/shared/admin \"mailto:postmaster@example.com\" /shared/comment "
		      "\"Shared comment\")\r\nt OK GETMETADATA completed.\r\n");
	expect_answer(&c, "SETMETADATA \"\" (/shared/admin \"mailto:me@example.com\")",
		      "t NO [NOPERM] /shared/admin is set by the server\r\n");
	/* mailbox entries: case-insensitive names, DEPTH 1 and infinity, literal values, MAXSIZE */
	send_str(&c, "a CREATE Meta\r\n");
	test_assert(wait_for(&c, "a OK"));
	expect_answer(&c,
		      "SETMETADATA Meta (/private/filters/values/small \"Now\" /Private/Filters/Values/Big {30+}\r\n"
		      "012345678901234567890123456789 /private/filters/values/big/deep \"x\")",
		      "t OK SETMETADATA completed.\r\n");
	expect_answer(&c, "GETMETADATA Meta (DEPTH 1) (/private/filters/values)",
		      "* METADATA \"Meta\" (/private/filters/values/big \"012345678901234567890123456789\" "
		      "/private/filters/values/small \"Now\")\r\nt OK GETMETADATA completed.\r\n");
	expect_answer(
		&c, "GETMETADATA (MAXSIZE 10 DEPTH infinity) Meta /private/filters/values",
		"* METADATA \"Meta\" (/private/filters/values/big/deep \"x\" /private/filters/values/small \"Now\")"
		"\r\nt OK [METADATA LONGENTRIES 30] GETMETADATA completed.\r\n");
	expect_answer(&c, "GETMETADATA Meta /private/filters/values",
		      "* METADATA \"Meta\" (/private/filters/values NIL)\r\nt OK GETMETADATA completed.\r\n");
	/* NIL removes; a value with a NUL (set here in the store: the parser's literal8 is tested apart) comes back as
	 * literal8 */
	expect_answer(&c, "SETMETADATA Meta (/private/filters/values/big NIL)", "t OK SETMETADATA completed.\r\n");
	const struct store_annot bin = { "/shared/bin", "a\0b", 3 };
	test_assert(store_annot_set(st, GUID, "Meta", "u1", &bin, 1, NULL) == 0);
	buf_reset(&c.in);
	send_str(&c, "t GETMETADATA Meta (/private/filters/values/big /shared/bin)\r\n");
	test_assert(wait_for(&c, "t OK"));
	static const char want_bin[] =
		"* METADATA \"Meta\" (/private/filters/values/big NIL /shared/bin ~{3}\r\na\0b)\r\n";
	if (c.in.len < sizeof(want_bin) - 1 || memcmp(c.in.data, want_bin, sizeof(want_bin) - 1) != 0)
		fwrite(c.in.data, 1, c.in.len, stderr);
	test_assert(c.in.len > sizeof(want_bin) - 1 && memcmp(c.in.data, want_bin, sizeof(want_bin) - 1) == 0);
	/* /private/specialuse (RFC 6154 5) */
	expect_answer(&c, "GETMETADATA Trash /private/specialuse",
		      "* METADATA \"Trash\" (/private/specialuse \"\\\\Trash\")\r\nt OK GETMETADATA completed.\r\n");
	expect_answer(&c, "GETMETADATA Meta /private/specialuse",
		      "* METADATA \"Meta\" (/private/specialuse NIL)\r\nt OK GETMETADATA completed.\r\n");
	expect_answer(&c, "SETMETADATA Trash (/private/specialuse \"\\\\Junk\")",
		      "t NO [NOPERM] /private/specialuse is set by the server\r\n");
	/* limits: a value too large; too many entries (and then none of the command's is set) */
	struct buf big = BUF_INIT;
	buf_printf(&big, "SETMETADATA Meta (/shared/big {%u+}\r\n", STORE_ANNOT_VALUE_MAX + 1);
	for (unsigned i = 0; i <= STORE_ANNOT_VALUE_MAX; i++)
		buf_append_char(&big, 'v');
	buf_append_char(&big, ')');
	char *want = xasprintf("t NO [METADATA MAXSIZE %u] Value too large\r\n", STORE_ANNOT_VALUE_MAX);
	expect_answer(&c, buf_cstr(&big), want);
	free(want);
	buf_reset(&big);
	buf_append_str(&big, "SETMETADATA Meta (");
	for (unsigned i = 0; i < STORE_ANNOT_PER_FOLDER_MAX; i++)
		buf_printf(&big, "%s/private/n/%u \"v\"", i > 0 ? " " : "", i);
	buf_append_char(&big, ')');
	want = xasprintf("t NO [METADATA TOOMANY] Too many annotations on this mailbox (limit %u)\r\n",
			 STORE_ANNOT_PER_FOLDER_MAX);
	expect_answer(&c, buf_cstr(&big), want);
	free(want);
	buf_free(&big);
	expect_answer(&c, "GETMETADATA Meta /private/n/0",
		      "* METADATA \"Meta\" (/private/n/0 NIL)\r\nt OK GETMETADATA completed.\r\n");
	/* syntax, a folder that does not exist */
	expect_answer(&c, "GETMETADATA Meta /public/x",
		      "t BAD Entry name is neither under /private nor under /shared\r\n");
	expect_answer(&c, "GETMETADATA Nope /private/comment", "t NO [NONEXISTENT] Mailbox doesn't exist\r\n");
	/* a public folder with anyone "lrsp": private entries yes, shared ones need "w" */
	expect_answer(&c, "SETMETADATA \"Public Folders/Pub\" (/private/comment \"mine\")",
		      "t OK SETMETADATA completed.\r\n");
	expect_answer(&c, "SETMETADATA \"Public Folders/Pub\" (/shared/comment \"everyone's\")",
		      "t NO [NOPERM] You may not use the annotations of this mailbox\r\n");
	/* another user's private entries are apart from u1's */
	const struct store_annot other = { "/private/comment", "theirs", 6 };
	test_assert(store_annot_set(st, STORE_PUBLIC_GUID, "Pub", "u2", &other, 1, NULL) == 0);
	expect_answer(
		&c, "GETMETADATA \"Public Folders/Pub\" /private/comment",
		"* METADATA \"Public Folders/Pub\" (/private/comment \"mine\")\r\nt OK GETMETADATA completed.\r\n");
	/* rename keeps the entries, delete drops them */
	send_str(&c, "a RENAME Meta Meta2\r\n");
	test_assert(wait_for(&c, "a OK"));
	expect_answer(
		&c, "GETMETADATA Meta2 /private/filters/values/small",
		"* METADATA \"Meta2\" (/private/filters/values/small \"Now\")\r\nt OK GETMETADATA completed.\r\n");
	send_str(&c, "b DELETE Meta2\r\nc CREATE Meta2\r\n");
	test_assert(wait_for(&c, "c OK"));
	expect_answer(&c, "GETMETADATA Meta2 /private/filters/values/small",
		      "* METADATA \"Meta2\" (/private/filters/values/small NIL)\r\nt OK GETMETADATA completed.\r\n");
	client_close(&c);
}

/* NOTIFY (RFC 5465): with no command from the client, another session's (another server's) CREATE, a delivery, a
 * RENAME (OLDNAME), UNSUBSCRIBE and SUBSCRIBE, SETMETADATA and DELETE come as LIST, STATUS and METADATA responses;
 * NOTIFY SET STATUS answers each folder at once; the selected mailbox's EXISTS comes at once; NOTIFY NONE ends it;
 * the rules on events (BAD) and an event not offered (BADEVENT). */
static void imap_notify(void)
{
	setup();
	struct client a, b;
	client_open(&a, false);
	login(&a);
	client_open(&b, false);
	login(&b);
	test_assert(capability_has(&a, " NOTIFY"));
	buf_reset(&a.in);
	send_str(&a,
		 "n1 NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge FlagChange MailboxName "
		 "SubscriptionChange MailboxMetadataChange)) (SELECTED (MessageNew MessageExpunge FlagChange))\r\n");
	test_assert(wait_for(&a, "n1 OK NOTIFY completed."));
	test_assert(strstr(buf_cstr(&a.in), "* STATUS \"INBOX\" (MESSAGES ") != NULL);
	buf_reset(&a.in);
	send_str(&b, "b1 CREATE Ntf\r\n");
	test_assert(wait_for(&b, "b1 OK"));
	test_assert(wait_for(&a, "* LIST () \"/\" \"Ntf\"\r\n"));
	buf_reset(&a.in);
	append_direct("Ntf");
	test_assert(wait_for(&a, "* STATUS \"Ntf\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "));
	buf_reset(&a.in);
	send_str(&b, "b2 RENAME Ntf Ntf2\r\n");
	test_assert(wait_for(&a, "* LIST () \"/\" \"Ntf2\" (\"OLDNAME\" (\"Ntf\"))\r\n"));
	buf_reset(&a.in);
	send_str(&b, "b3 SUBSCRIBE Ntf2\r\n");
	test_assert(wait_for(&a, "* LIST (\\Subscribed) \"/\" \"Ntf2\"\r\n"));
	buf_reset(&a.in);
	send_str(&b, "b4 UNSUBSCRIBE Ntf2\r\n");
	test_assert(wait_for(&a, "* LIST () \"/\" \"Ntf2\"\r\n"));
	buf_reset(&a.in);
	send_str(&b, "b5 SETMETADATA Ntf2 (/private/comment \"x\")\r\n");
	test_assert(wait_for(&a, "* METADATA \"Ntf2\" /private/comment\r\n"));
	/* the selected mailbox: EXISTS without a command; not its STATUS */
	send_str(&a, "s1 CREATE NtfSel\r\ns2 SELECT NtfSel\r\n");
	test_assert(wait_for(&a, "s2 OK"));
	buf_reset(&a.in);
	append_direct("NtfSel");
	test_assert(wait_for(&a, "* 1 EXISTS\r\n"));
	test_assert(strstr(buf_cstr(&a.in), "* STATUS \"NtfSel\"") == NULL);
	buf_reset(&a.in);
	send_str(&b, "b6 DELETE Ntf2\r\n");
	test_assert(wait_for(&a, "* LIST (\\NonExistent) \"/\" \"Ntf2\"\r\n"));
	/* NONE: nothing more */
	expect_tagged(&a, "n2", "NOTIFY NONE", "n2 OK NOTIFY completed.\r\n");
	buf_reset(&a.in);
	send_str(&b, "b7 CREATE Ntf3\r\n");
	test_assert(wait_for(&b, "b7 OK"));
	for (int i = 0; i < 20; i++)
		evloop_run_once(loop, ROUND_MSECS);
	client_read(&a);
	if (a.in.len > 0)
		fprintf(stderr, "after NOTIFY NONE: %s", buf_cstr(&a.in));
	test_assert(a.in.len == 0);
	expect_tagged(&a, "n3", "NOTIFY SET (SELECTED (MessageNew))",
		      "n3 BAD MessageNew and MessageExpunge go together\r\n");
	expect_tagged(&a, "n4",
		      "NOTIFY SET (PERSONAL (MailboxName)) (SELECTED-DELAYED (MessageNew MessageExpunge)) "
		      "(SELECTED (MessageNew MessageExpunge))",
		      "n4 BAD A mailbox filter given twice\r\n");
	expect_tagged(&a, "n5", "NOTIFY SET (INBOXES (MessageNew MessageExpunge AnnotationChange))",
		      "n5 NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "
		      "MailboxMetadataChange ServerMetadataChange)] Event not supported\r\n");
	client_close(&a);
	client_close(&b);
}

/* NOTIFY beyond the personal namespace: SUBTREE and MAILBOXES naming a public folder and a folder another user shares
 * (with the l and r rights) give that folder's STATUS when mail arrives, as for the user's own; a shared folder
 * without r gives no STATUS, and PERSONAL never covers them. */
static void imap_notify_shared(void)
{
	setup();
	struct buf err = BUF_INIT;
	test_assert(store_mailbox_ensure(st, GUID2, &err) == 0);
	test_assert(store_folder_create(st, GUID2, "Team", &err) == 0 &&
		    store_folder_create(st, GUID2, "Hidden", &err) == 0);
	test_assert(store_acl_set(st, GUID2, "Team", "u1", STORE_RIGHT_LOOKUP | STORE_RIGHT_READ, &err) == 0);
	test_assert(store_acl_set(st, GUID2, "Hidden", "u1", STORE_RIGHT_LOOKUP, &err) == 0);
	buf_free(&err);
	struct client a;
	client_open(&a, false);
	login(&a);
	send_str(&a, "p LIST \"\" \"Public Folders/*\"\r\n"); /* makes the public folders' store side */
	test_assert(wait_for(&a, "p OK"));
	expect_tagged(&a, "n1",
		      "NOTIFY SET (PERSONAL (MessageNew MessageExpunge)) (SUBTREE \"Public Folders/Pub\" (MessageNew "
		      "MessageExpunge MailboxName)) (MAILBOXES (\"Other Users/u2/Team\" \"Other Users/u2/Hidden\") "
		      "(MessageNew MessageExpunge))",
		      "n1 OK NOTIFY completed.\r\n");
	struct store_target tg = { .guid = STORE_PUBLIC_GUID, .folder = "Pub" };
	const char *msg = "Subject: pub\r\n\r\nbody\r\n";
	struct store_append ap = { .data = msg, .len = strlen(msg), .targets = &tg, .ntargets = 1 };
	test_assert(store_append(st, &ap, NULL) == 0);
	test_assert(wait_for(&a, "* STATUS \"Public Folders/Pub\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "));
	buf_reset(&a.in);
	struct store_target t2 = { .guid = GUID2, .folder = "Team" };
	ap.targets = &t2;
	test_assert(store_append(st, &ap, NULL) == 0);
	test_assert(wait_for(&a, "* STATUS \"Other Users/u2/Team\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "));
	buf_reset(&a.in);
	struct store_target t3 = { .guid = GUID2, .folder = "Hidden" };
	ap.targets = &t3;
	test_assert(store_append(st, &ap, NULL) == 0);
	for (int i = 0; i < 20; i++)
		evloop_run_once(loop, ROUND_MSECS);
	client_read(&a);
	test_assert(strstr(buf_cstr(&a.in), "Hidden") == NULL); /* l without r: no STATUS */
	/* a new public folder under the subtree: its LIST */
	buf_reset(&a.in);
	test_assert(store_folder_create(st, STORE_PUBLIC_GUID, "Pub/Sub", NULL) == 0);
	test_assert(wait_for(&a, "* LIST () \"/\" \"Public Folders/Pub/Sub\"\r\n"));
	expect_tagged(&a, "n2", "NOTIFY NONE", "n2 OK NOTIFY completed.\r\n");
	client_close(&a);
}

static void login_timeout_configured(void)
{
	setup();
	login_timeout_msecs = 300;
	struct client c, p;
	client_open(&c, false);
	client_open(&p, true);
	login_timeout_msecs = 0;
	unsigned long long start = now_usec();
	test_assert(wait_for(&c, "* BYE Idle for too long."));
	test_assert(wait_for(&p, "-ERR Idle for too long; bye."));
	test_assert(now_usec() - start < 30ull * 1000 * 1000); /* far below the 60 s default */
	client_close(&c);
	client_close(&p);
}

TEST_MAIN("imap_session", TEST_CASE(imap_login_and_states), TEST_CASE(imap_import_admin_only), TEST_CASE(imap_throttle),
	  TEST_CASE(imap_append_fetch_search_store), TEST_CASE(imap_bad_input), TEST_CASE(imap_concurrent_sessions),
	  TEST_CASE(imap_keywords_announced), TEST_CASE(imap_recent_owned_once),
	  TEST_CASE(imap_modseq_enables_condstore), TEST_CASE(imap_search_address_comments),
	  TEST_CASE(imap_search_sent_date_as_written), TEST_CASE(imap_search_header_every_field),
	  TEST_CASE(imap_sort_and_thread), TEST_CASE(imap_appendlimit), TEST_CASE(imap_within),
	  TEST_CASE(imap_i18nlevel), TEST_CASE(imap_unauthenticate), TEST_CASE(imap_list_myrights),
	  TEST_CASE(imap_replace), TEST_CASE(imap_multiappend), TEST_CASE(imap_subscriptions_independent),
	  TEST_CASE(imap_move_into_same_folder), TEST_CASE(imap_binary_whole_and_nul), TEST_CASE(imap_utf8_downgrade),
	  TEST_CASE(imap_public_hierarchy), TEST_CASE(imap_rev2), TEST_CASE(imap_searchres), TEST_CASE(imap_catenate),
	  TEST_CASE(imap_urlauth), TEST_CASE(imap_objectid_and_preview), TEST_CASE(imap_savedate),
	  TEST_CASE(imap_context_updates), TEST_CASE(imap_metadata), TEST_CASE(imap_notify),
	  TEST_CASE(imap_notify_shared), TEST_CASE(pop3_session_basics), TEST_CASE(pop3_utf8),
	  TEST_CASE(login_timeout_configured), TEST_CASE(imap_reads_pass_blocked_writes), TEST_CASE(teardown))
