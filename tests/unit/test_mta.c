/* test_mta.c - unit tests for the MTA's outbound SMTP client against a scripted SMTP server on loopback:
 * pipelined transactions, per-recipient results, dot-stuffing, DSN parameters, connection reuse, refusals and a
 * server that hangs up. */
#include "tests/unit/test.h"
#include "common/err.h"
#include "transport/mta/mta.h"
#include "transport/mta/mta_sts.h"
#include "transport/mta/smtp_client.h"
#include "transport/mta/tlsrpt.h"
#include "transport/mta/dmarcrpt.h"
#include "transport/smtp/smtp_parse.h"
#include "store/store.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A one-connection-at-a-time SMTP server that records the commands and the message data it gets. */
struct sink {
	int lfd;
	unsigned port;
	bool pipelining, dsn, hangup_at_data, smtputf8;
	struct buf log; /* commands, one per line, and DATA as "DATA[...]" */
	unsigned connections;
	pthread_t thread;
};

static ssize_t get_line(int fd, char *out, size_t max)
{
	size_t n = 0;
	while (n + 1 < max) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r <= 0)
			return -1;
		out[n++] = c;
		if (c == '\n')
			break;
	}
	out[n] = '\0';
	return (ssize_t)n;
}

static void put(int fd, const char *s)
{
	(void)!write(fd, s, strlen(s));
}

static void *sink_run(void *arg)
{
	struct sink *k = arg;
	for (;;) {
		int fd = accept(k->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		k->connections++;
		put(fd, "220 sink ESMTP\r\n");
		char line[2048];
		while (get_line(fd, line, sizeof(line)) > 0) {
			if (strncmp(line, "EHLO", 4) == 0) {
				put(fd, "250-sink\r\n");
				if (k->pipelining)
					put(fd, "250-PIPELINING\r\n");
				if (k->dsn)
					put(fd, "250-DSN\r\n");
				if (k->smtputf8)
					put(fd, "250-SMTPUTF8\r\n");
				put(fd, "250 SIZE 100000\r\n");
				continue;
			}
			buf_append_str(&k->log, line);
			if (strncmp(line, "RCPT TO:<bad", 12) == 0) {
				put(fd, "550 5.1.1 no such user\r\n");
			} else if (strncmp(line, "DATA", 4) == 0) {
				if (k->hangup_at_data)
					break;
				put(fd, "354 go\r\n");
				buf_append_str(&k->log, "DATA[");
				while (get_line(fd, line, sizeof(line)) > 0 && strcmp(line, ".\r\n") != 0)
					buf_append_str(&k->log, line);
				buf_append_str(&k->log, "]\n");
				put(fd, "250 2.0.0 queued as X\r\n");
			} else if (strncmp(line, "QUIT", 4) == 0) {
				put(fd, "221 bye\r\n");
				break;
			} else {
				put(fd, "250 ok\r\n");
			}
		}
		close(fd);
	}
}

static void sink_start(struct sink *k)
{
	k->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (bind(k->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(k->lfd, 4) < 0 ||
	    getsockname(k->lfd, (struct sockaddr *)&sa, &sl) < 0)
		fatal("sink: cannot listen");
	k->port = ntohs(sa.sin_port);
	buf_init(&k->log);
	pthread_create(&k->thread, NULL, sink_run, k);
}

static void sink_stop(struct sink *k)
{
	shutdown(k->lfd, SHUT_RDWR);
	close(k->lfd);
	pthread_join(k->thread, NULL);
	buf_free(&k->log);
}

static int send_one(struct smtp_client *c, const char *const *rcpts, const unsigned *notify, size_t n, const char *data,
		    int *codes, char **replies)
{
	struct smtp_client_msg m = { "a@example.com", rcpts, notify, "env+1", data, strlen(data),
				     false,           n,     codes,  replies, 0 };
	struct buf err = BUF_INIT;
	int r = smtp_client_send(c, &m, &err);
	buf_free(&err);
	return r;
}

static void pipelined_transactions_and_reuse(void)
{
	struct sink k = { .pipelining = true, .dsn = true };
	sink_start(&k);
	struct smtp_client *c;
	struct buf err = BUF_INIT;
	test_assert(smtp_client_open("127.0.0.1", k.port, "mx.example.com", NULL, 5000, &c, &err) == 0);
	test_assert(smtp_client_has(c, "PIPELINING") && smtp_client_has(c, "dsn") && !smtp_client_has(c, "DS"));
	const char *rcpts[] = { "x@remote.test", "bad@remote.test", "y@remote.test" };
	const unsigned notify[] = { SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, 0, SMTP_NOTIFY_NEVER };
	int codes[3];
	char *replies[3];
	test_assert(send_one(c, rcpts, notify, 3, "Subject: t\r\n\r\n.leading dot\r\nend", codes, replies) == 0);
	test_assert(codes[0] == 250 && codes[1] == 550 && codes[2] == 250);
	test_assert(strstr(replies[1], "5.1.1") != NULL && strstr(replies[0], "queued") != NULL);
	for (int i = 0; i < 3; i++)
		free(replies[i]);
	/* the same connection carries a second message */
	test_assert(send_one(c, rcpts, NULL, 1, "Subject: two\r\n\r\nx\r\n", codes, replies) == 0 && codes[0] == 250);
	free(replies[0]);
	smtp_client_close(&c);
	test_assert(c == NULL);
	const char *log = buf_cstr(&k.log);
	test_assert(strstr(log, "MAIL FROM:<a@example.com> SIZE=") != NULL);
	test_assert(strstr(log, " ENVID=env+2B1") != NULL); /* xtext */
	test_assert(strstr(log, "RCPT TO:<x@remote.test> NOTIFY=SUCCESS,FAILURE\r\n") != NULL);
	test_assert(strstr(log, "RCPT TO:<y@remote.test> NOTIFY=NEVER\r\n") != NULL);
	test_assert(strstr(log, "DATA[Subject: t\r\n\r\n..leading dot\r\nend\r\n]") != NULL); /* stuffed, ended */
	test_assert(strstr(log, "DATA[Subject: two") != NULL);
	test_assert(k.connections == 1);
	sink_stop(&k);
	buf_free(&err);
}

static void lock_step_without_pipelining(void)
{
	struct sink k = { 0 };
	sink_start(&k);
	struct smtp_client *c;
	struct buf err = BUF_INIT;
	test_assert(smtp_client_open("127.0.0.1", k.port, "mx.example.com", NULL, 5000, &c, &err) == 0);
	const char *rcpts[] = { "bad@remote.test", "bad2@remote.test" };
	int codes[2];
	char *replies[2];
	/* every recipient refused: no DATA is sent, the connection stays usable */
	test_assert(send_one(c, rcpts, NULL, 2, "x\r\n", codes, replies) == 0);
	test_assert(codes[0] == 550 && codes[1] == 550);
	free(replies[0]);
	free(replies[1]);
	test_assert(strstr(buf_cstr(&k.log), "DATA") == NULL);
	test_assert(strstr(buf_cstr(&k.log), "NOTIFY") == NULL); /* no DSN offered */
	const char *ok[] = { "z@remote.test" };
	test_assert(send_one(c, ok, NULL, 1, "y\r\n", codes, replies) == 0 && codes[0] == 250);
	free(replies[0]);
	smtp_client_close(&c);
	sink_stop(&k);
	buf_free(&err);
}

static void broken_connection_is_temporary(void)
{
	struct sink k = { .pipelining = true, .hangup_at_data = true };
	sink_start(&k);
	struct smtp_client *c;
	struct buf err = BUF_INIT;
	test_assert(smtp_client_open("127.0.0.1", k.port, "mx.example.com", NULL, 5000, &c, &err) == 0);
	const char *rcpts[] = { "x@remote.test" };
	int codes[1];
	char *replies[1];
	test_assert(send_one(c, rcpts, NULL, 1, "x\r\n", codes, replies) == IX_EUNAVAIL);
	test_assert(codes[0] == 421);
	free(replies[0]);
	smtp_client_close(&c);
	sink_stop(&k);
	/* nobody listening: a temporary failure with a reason */
	buf_reset(&err);
	test_assert(smtp_client_open("127.0.0.1", k.port, "mx.example.com", NULL, 2000, &c, &err) == IX_EUNAVAIL);
	test_assert(c == NULL && strstr(buf_cstr(&err), "connect to") != NULL);
	buf_free(&err);
}

/* MTA-STS policy documents (RFC 8461 3.2) and the mx patterns. */
static void mta_sts_policy_parsed(void)
{
	struct mta_sts_policy p;
	struct buf err = BUF_INIT;
	static const char doc[] = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
				  "mx: *.backup.example.net\nmax_age: 604800 \r\nextension: ignored\r\n";
	test_assert(mta_sts_parse(doc, sizeof(doc) - 1, &p, &err));
	test_assert(p.mode == MTA_STS_ENFORCE && p.nmx == 2 && p.max_age == 604800);
	test_assert(mta_sts_mx_allowed(&p, "mail.example.com") && mta_sts_mx_allowed(&p, "MAIL.example.com."));
	test_assert(mta_sts_mx_allowed(&p, "mx1.backup.example.net"));
	test_assert(!mta_sts_mx_allowed(&p, "a.b.backup.example.net")); /* the wildcard is one label */
	test_assert(!mta_sts_mx_allowed(&p, "backup.example.net") && !mta_sts_mx_allowed(&p, "evil.example.com"));
	test_assert(!mta_sts_mx_allowed(&p, "xmail.example.com"));
	static const char testing[] = "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 99999999999\n";
	test_assert(mta_sts_parse(testing, sizeof(testing) - 1, &p, &err) && p.mode == MTA_STS_TESTING);
	test_assert(p.max_age == MTA_STS_MAX_AGE_MAX); /* at most a year */
	static const char *const bad[] = {
		"mode: enforce\nmx: a.example\nmax_age: 1\n",                  /* no version */
		"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",  /* another version */
		"version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",   /* no such mode */
		"version: STSv1\nmode: enforce\nmx: a.example\n",              /* no max_age */
		"version: STSv1\nmode: enforce\nmax_age: 1\n",                 /* enforce without mx */
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", /* not a number */
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		buf_reset(&err);
		test_assert(!mta_sts_parse(bad[i], strlen(bad[i]), &p, &err) && err.len > 0);
	}
	buf_free(&err);
}

/* SMTPUTF8 (RFC 6531): what needs it, declared to a server that offers it, never sent to one that does not. */
static void smtputf8_declared_or_refused(void)
{
	static const char ascii_msg[] = "Subject: plain\r\n\r\nbody \xc3\xbc is 8BITMIME's business\r\n";
	static const char utf8_header[] = "Subject: Gr\xc3\xbc\xc3\x9f\x65\r\n\r\nx\r\n";
	const char *plain[] = { "x@remote.test" }, *utf8[] = { "j\xc3\xbcrgen@remote.test" };
	test_assert(smtp_client_utf8_need("a@example.com", plain, 1, ascii_msg, strlen(ascii_msg)) == 0);
	test_assert(smtp_client_utf8_need("a@example.com", utf8, 1, ascii_msg, strlen(ascii_msg)) ==
		    SMTP_UTF8_ENVELOPE);
	test_assert(smtp_client_utf8_need("\xc3\xa9@example.com", plain, 1, ascii_msg, strlen(ascii_msg)) ==
		    SMTP_UTF8_ENVELOPE);
	test_assert(smtp_client_utf8_need("a@example.com", plain, 1, utf8_header, strlen(utf8_header)) ==
		    SMTP_UTF8_HEADER);
	for (int offer = 0; offer < 2; offer++) {
		struct sink k = { .pipelining = true, .smtputf8 = offer };
		sink_start(&k);
		struct smtp_client *c;
		struct buf err = BUF_INIT;
		test_assert(smtp_client_open("127.0.0.1", k.port, "mx.example.com", NULL, 5000, &c, &err) == 0);
		int codes[1];
		char *replies[1];
		struct smtp_client_msg m = { "a@example.com",
					     utf8,
					     NULL,
					     NULL,
					     utf8_header,
					     strlen(utf8_header),
					     false,
					     1,
					     codes,
					     replies,
					     SMTP_UTF8_ENVELOPE | SMTP_UTF8_HEADER };
		test_assert(smtp_client_send(c, &m, &err) == 0);
		if (offer) {
			test_assert(codes[0] == 250);
			test_assert(strstr(buf_cstr(&k.log), "MAIL FROM:<a@example.com> SMTPUTF8 SIZE=") != NULL);
			test_assert(strstr(buf_cstr(&k.log), "RCPT TO:<j\xc3\xbcrgen@remote.test>") != NULL);
		} else {
			test_assert(codes[0] == 553);
			test_assert(strncmp(replies[0], "553 5.6.7 ", 10) == 0 &&
				    strstr(replies[0], "SMTPUTF8") != NULL &&
				    strstr(replies[0], "address in its envelope is not ASCII") != NULL);
			test_assert(strstr(buf_cstr(&k.log), "MAIL") == NULL); /* nothing was sent */
		}
		free(replies[0]);
		/* a plain message on the same connection declares nothing */
		m.rcpts = plain;
		m.data = ascii_msg;
		m.len = strlen(ascii_msg);
		m.utf8 = 0;
		buf_reset(&k.log);
		test_assert(smtp_client_send(c, &m, &err) == 0 && codes[0] == 250);
		free(replies[0]);
		smtp_client_close(&c);
		test_assert(strstr(buf_cstr(&k.log), "SMTPUTF8") == NULL);
		sink_stop(&k);
		buf_free(&err);
	}
}

/* The TLS reporting records: written to the day's file, read back; tabs and line ends in a field cannot make more
 * fields or lines; malformed lines refused. */
static void tlsrpt_records(void)
{
	char dir[] = "/tmp/ix-tlsrpt-XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	struct config cfg = { .data_dir = dir };
	struct tlsrpt_session s = { .time = 1796601600 }, r; /* 2026-12-07 00:00:00 UTC */
	snprintf(s.domain, sizeof(s.domain), "bad.test");
	snprintf(s.policy_type, sizeof(s.policy_type), "tlsa");
	snprintf(s.mx_host, sizeof(s.mx_host), "mx\tevil\nline");
	snprintf(s.ip, sizeof(s.ip), "192.0.2.1");
	snprintf(s.result, sizeof(s.result), "tlsa-invalid");
	snprintf(s.policy, sizeof(s.policy), "3 1 1 AB|2 0 1 CD");
	test_assert(tlsrpt_record(&cfg, &s) == IX_OK);
	char *path = xasprintf("%s/" TLSRPT_DIR "/2026-12-07", dir), *data = NULL;
	size_t len;
	test_assert(read_file(path, 4096, &data, &len) == 0 && len > 0 && data[len - 1] == '\n');
	test_assert(memchr(data, '\n', len) == data + len - 1); /* one line */
	data[len - 1] = '\0';
	test_assert(tlsrpt_parse(data, &r) && r.time == s.time && strcmp(r.mx_host, "mx evil line") == 0);
	test_assert(strcmp(r.domain, "bad.test") == 0 && strcmp(r.policy, "3 1 1 AB|2 0 1 CD") == 0);
	test_assert(strcmp(r.ip, "192.0.2.1") == 0 && strcmp(r.result, "tlsa-invalid") == 0);
	const char *bad[] = { "", "x\ta\tb\tc\td\te\tf", "1\ta\tb\tc\td\te", "1\ta\tb\tc\td\te\tf\tg",
			      "1\t\tb\tc\td\te\tf" };
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++)
		test_assert(!tlsrpt_parse(bad[i], &r));
	char ip[64];
	tlsrpt_peer_ip("mx2.dane.test[192.0.2.26]:25: DANE: ...", ip, sizeof(ip));
	test_assert(strcmp(ip, "192.0.2.26") == 0);
	tlsrpt_peer_ip("cannot resolve x", ip, sizeof(ip));
	test_assert(ip[0] == '\0');
	unlink(path);
	char *sub = xasprintf("%s/" TLSRPT_DIR, dir);
	rmdir(sub);
	rmdir(dir);
	free(sub);
	free(path);
	free(data);
}

/* A delivery that meets a mailbox frozen for a move, by the plain path or through a Sieve script's keep (both turn
 * the store's failure into a reply with mta_local_failure), is the reply both ix-smtpd and ix-mta retry within a
 * second; any other store failure keeps the usual backoff. */
static void frozen_mailbox_is_moving(void)
{
	char dir[] = "/tmp/ix-mta-XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	struct store_settings set;
	store_settings_default(&set);
	set.no_sync = 1;
	struct store *st = NULL;
	struct buf err = BUF_INIT;
	test_assert(store_open(dir, &set, &st, &err) == 0);
	static const char guid[] = "0123456789abcdef0123456789abcdef";
	static const char msg[] = "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n";
	struct store_target t = { .guid = guid };
	struct store_append a = { .data = msg, .len = strlen(msg), .targets = &t, .ntargets = 1 };
	test_assert(store_append(st, &a, &err) == 0);
	test_assert(store_mailbox_freeze(st, guid, "server-b", NULL) == 0);
	buf_reset(&err);
	t.result = 0;
	test_assert(store_append(st, &a, &err) == IX_EAGAIN && t.result == IX_EAGAIN);
	struct mta_target tg = { .kind = MTA_LOCAL, .guid = (char *)guid };
	bool permanent = true;
	char *reply = mta_local_failure(&tg, t.result, buf_cstr(&err), &permanent);
	test_assert(!permanent && strcmp(reply, MTA_REPLY_MOVING) == 0 && mta_reply_is_moving(reply));
	free(reply);
	reply = mta_local_failure(&tg, IX_EIO, "disk trouble", &permanent);
	test_assert(!permanent && strncmp(reply, "451 4.3.0", 9) == 0 && !mta_reply_is_moving(reply));
	free(reply);
	test_assert(!mta_reply_is_moving("451 4.2.1 Mailbox disabled") && !mta_reply_is_moving(NULL));
	store_close(&st);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	test_assert(system(cmd) == 0);
	free(cmd);
	buf_free(&err);
}

/* The DMARC evaluation records: every field written to the day's file and read back; malformed lines refused. */
static void dmarcrpt_records(void)
{
	char dir[] = "/tmp/ix-dmarcrpt-XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	struct config cfg = { .data_dir = dir };
	struct dmarcrpt_eval e = { .time = 1796601600 }, r; /* 2026-12-07 00:00:00 UTC */
	snprintf(e.domain, sizeof(e.domain), "sender.test");
	snprintf(e.header_from, sizeof(e.header_from), "mail.sender.test");
	snprintf(e.envelope_from, sizeof(e.envelope_from), "bounce.sender.test");
	snprintf(e.ip, sizeof(e.ip), "2001:db8::7");
	snprintf(e.p, sizeof(e.p), "reject");
	snprintf(e.sp, sizeof(e.sp), "quarantine");
	snprintf(e.adkim, sizeof(e.adkim), "s");
	snprintf(e.aspf, sizeof(e.aspf), "r");
	snprintf(e.pct, sizeof(e.pct), "50");
	snprintf(e.disposition, sizeof(e.disposition), "none");
	snprintf(e.dkim, sizeof(e.dkim), "pass");
	snprintf(e.spf, sizeof(e.spf), "fail");
	snprintf(e.reason, sizeof(e.reason), "local_policy");
	snprintf(e.dkim_auth, sizeof(e.dkim_auth), "sender.test rsa1 pass|other.test - fail");
	snprintf(e.spf_domain, sizeof(e.spf_domain), "bounce.sender.test");
	snprintf(e.spf_scope, sizeof(e.spf_scope), "mfrom");
	snprintf(e.spf_result, sizeof(e.spf_result), "softfail");
	test_assert(dmarcrpt_record(&cfg, &e) == IX_OK);
	char *path = xasprintf("%s/" DMARCRPT_DIR "/2026-12-07", dir), *data = NULL;
	size_t len;
	test_assert(read_file(path, 4096, &data, &len) == 0 && len > 0 && data[len - 1] == '\n');
	data[len - 1] = '\0';
	test_assert(dmarcrpt_parse(data, &r) && memcmp(&r, &e, sizeof(r)) == 0);
	const char *bad[] = { "", "1\tsender.test", "x\ta\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn\to\tp\tq" };
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++)
		test_assert(!dmarcrpt_parse(bad[i], &r));
	free(data);
	unlink(path);
	free(path);
	char *sub = xasprintf("%s/" DMARCRPT_DIR, dir);
	rmdir(sub);
	free(sub);
	rmdir(dir);
}

TEST_MAIN("mta", TEST_CASE(pipelined_transactions_and_reuse), TEST_CASE(lock_step_without_pipelining),
	  TEST_CASE(broken_connection_is_temporary), TEST_CASE(smtputf8_declared_or_refused),
	  TEST_CASE(mta_sts_policy_parsed), TEST_CASE(tlsrpt_records), TEST_CASE(dmarcrpt_records),
	  TEST_CASE(frozen_mailbox_is_moving))
