/* test_milter.c - unit tests for the milter client: endpoints, the packet codec byte by byte (every prefix of a
 * packet needs more, the whole takes exactly its bytes), the encoders' exact bytes, message edits, and whole
 * conversations with a scripted filter on a unix socket (steps left out, replies not sent, changes, verdicts,
 * timeouts, a filter that breaks off). */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/endpoint.h"
#include "common/util.h"
#include "transport/milter/milter.h"
#include "transport/milter/milter_edit.h"
#include "transport/milter/milter_proto.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void endpoints(void)
{
	struct endpoint ep[ENDPOINT_LIST_MAX];
	size_t n;
	char why[256];
	test_assert(endpoint_list_parse(" inet:127.0.0.1:11332 , unix:/run/f.sock,inet:[::1]:9", ep, ENDPOINT_LIST_MAX,
					&n, why, sizeof(why)) == 0);
	test_assert(n == 3);
	test_assert(ep[0].kind == ENDPOINT_INET && strcmp(ep[0].host, "127.0.0.1") == 0 && ep[0].port == 11332);
	test_assert_str(ep[0].text, "inet:127.0.0.1:11332");
	test_assert(ep[1].kind == ENDPOINT_UNIX && strcmp(ep[1].path, "/run/f.sock") == 0);
	test_assert(ep[2].kind == ENDPOINT_INET && strcmp(ep[2].host, "::1") == 0 && ep[2].port == 9);
	test_assert(endpoint_list_parse("  ", ep, ENDPOINT_LIST_MAX, &n, why, sizeof(why)) == 0 && n == 0);
	static const char *const bad[] = { "inet:host",     "inet:host:0", "inet:host:65536", "inet::25",
					   "unix:relative", "tcp:h:1",     "inet:::1:25",     "inet:[::1]25",
					   "inet:a b:25",   "inet:h:25,",  ",inet:h:25",      "inet:h:2x" };
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++)
		test_assert(endpoint_list_parse(bad[i], ep, ENDPOINT_LIST_MAX, &n, why, sizeof(why)) < 0);
	test_assert(endpoint_list_parse("unix:/a,unix:/b,unix:/c", ep, 2, &n, why, sizeof(why)) < 0);
}

/* Every prefix of an encoded packet needs more; the whole takes exactly its bytes and gives the command back. */
static int decodes_exactly(const struct buf *b, char cmd, size_t data_len)
{
	struct milter_packet p;
	for (size_t k = 0; k < b->len; k++) {
		if (milter_packet_decode(b->data, k, &p) != 0)
			return 0;
	}
	return milter_packet_decode(b->data, b->len, &p) == (long)b->len && p.cmd == cmd && p.len == data_len;
}

static void codec_bytes(void)
{
	struct buf b = BUF_INIT;
	milter_encode_optneg(&b, 6, 0x1ff, 0x1fffff);
	test_assert(b.len == 17 && memcmp(b.data, "\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff", 17) == 0);
	test_assert(decodes_exactly(&b, 'O', 12));
	buf_reset(&b);
	milter_encode_connect(&b, "mx.test", SMFIA_INET, 2525, "192.0.2.1");
	static const char conn[] = "\0\0\0\x16"
				   "Cmx.test\0"
				   "4\x09\xdd"
				   "192.0.2.1\0";
	test_assert(b.len == sizeof(conn) - 1 && memcmp(b.data, conn, b.len) == 0);
	test_assert(decodes_exactly(&b, 'C', 0x15));
	buf_reset(&b);
	milter_encode_connect(&b, "unknown", SMFIA_UNKNOWN, 0, "");
	test_assert(b.len == 14 && memcmp(b.data,
					  "\0\0\0\x0a"
					  "Cunknown\0U",
					  14) == 0);
	buf_reset(&b);
	const char *names[] = { "j", "{i}" }, *values[] = { "mx", "ABC" };
	milter_encode_macros(&b, SMFIC_MAIL, names, values, 2);
	static const char mac[] = "\0\0\0\x0f"
				  "DMj\0mx\0{i}\0ABC\0";
	test_assert(b.len == sizeof(mac) - 1 && memcmp(b.data, mac, b.len) == 0);
	test_assert(decodes_exactly(&b, 'D', 14));
	buf_reset(&b);
	const char *hv[] = { "Subject", "hi" };
	milter_encode_strings(&b, SMFIC_HEADER, hv, 2);
	test_assert(b.len == 16 && memcmp(b.data, "\0\0\0\x0cLSubject\0hi\0", 16) == 0);
	buf_reset(&b);
	milter_encode(&b, SMFIC_BODYEOB, NULL, 0);
	test_assert(b.len == 5 && memcmp(b.data,
					 "\0\0\0\x01"
					 "E",
					 5) == 0);
	test_assert(decodes_exactly(&b, 'E', 0));
	/* a length of 0, or past the limit, is an error as soon as the length is read */
	struct milter_packet p;
	test_assert(milter_packet_decode("\0\0\0\0c", 5, &p) == -1);
	test_assert(milter_packet_decode("\0\x10\0\x01", 4, &p) == -1);
	test_assert(milter_packet_decode("\0\x10\0\x00", 4, &p) == 0);
	buf_free(&b);
}

static void codec_replies(void)
{
	/* OPTNEG with macro lists */
	static const char on[] = "\0\0\0\x06\0\0\0\x01\0\0\x30\x80"
				 "\0\0\0\x02{auth_authen} i\0"
				 "\0\0\0\x05j\0";
	struct milter_packet p = { 'O', on, sizeof(on) - 1 };
	struct milter_optneg o;
	test_assert(milter_decode_optneg(&p, &o) == 0 && o.version == 6 && o.actions == 1 && o.protocol == 0x3080);
	const char *pos = o.symlists, *names;
	size_t left = o.symlists_len;
	uint32_t stage;
	test_assert(milter_symlist_next(&pos, &left, &stage, &names) == 1 && stage == MILTER_STAGE_MAIL);
	test_assert_str(names, "{auth_authen} i");
	test_assert(milter_symlist_next(&pos, &left, &stage, &names) == 1 && stage == MILTER_STAGE_EOM);
	test_assert(milter_symlist_next(&pos, &left, &stage, &names) == 0);
	static const char bad_stage[] = "\0\0\0\x07x\0";
	pos = bad_stage;
	left = sizeof(bad_stage) - 1;
	test_assert(milter_symlist_next(&pos, &left, &stage, &names) == -1);
	static const char no_nul[] = "\0\0\0\x01xy";
	pos = no_nul;
	left = sizeof(no_nul) - 1;
	test_assert(milter_symlist_next(&pos, &left, &stage, &names) == -1);
	p = (struct milter_packet){ 'O', on, 11 };
	test_assert(milter_decode_optneg(&p, &o) == -1);
	/* reply codes */
	char reply[64];
	p = (struct milter_packet){ 'y', "554 5.7.1 Spam message rejected\0", 32 };
	test_assert(milter_decode_replycode(&p, reply, sizeof(reply)) == 5);
	test_assert_str(reply, "554 5.7.1 Spam message rejected");
	p = (struct milter_packet){ 'y', "451-4.7.1 first\r\n451 4.7.1 second\0", 34 };
	test_assert(milter_decode_replycode(&p, reply, sizeof(reply)) == 4);
	test_assert_str(reply, "451 4.7.1 first");
	p = (struct milter_packet){ 'y', "250 ok\0", 7 };
	test_assert(milter_decode_replycode(&p, reply, sizeof(reply)) == -1);
	p = (struct milter_packet){ 'y', "550 no nul", 10 };
	test_assert(milter_decode_replycode(&p, reply, sizeof(reply)) == -1);
	p = (struct milter_packet){ 'y', "550 a\x01z\0", 8 };
	test_assert(milter_decode_replycode(&p, reply, sizeof(reply)) == -1);
	p = (struct milter_packet){ 'y', "550 5.7.1 a long reason\0", 24 };
	test_assert(milter_decode_replycode(&p, reply, 10) == 5);
	test_assert_str(reply, "550 5.7.1");
	/* indexed header changes, strings */
	uint32_t idx;
	const char *name, *value;
	p = (struct milter_packet){ 'm', "\0\0\0\x02Subject\0new\0", 16 };
	test_assert(milter_decode_indexed_header(&p, &idx, &name, &value) == 0 && idx == 2);
	test_assert(strcmp(name, "Subject") == 0 && strcmp(value, "new") == 0);
	p = (struct milter_packet){ 'm', "\0\0\0\x02Subject\0", 12 };
	test_assert(milter_decode_indexed_header(&p, &idx, &name, &value) == -1);
	p = (struct milter_packet){ 'm', "\0\0\0", 3 };
	test_assert(milter_decode_indexed_header(&p, &idx, &name, &value) == -1);
	const char *v[2];
	p = (struct milter_packet){ 'h', "a\0b\0c\0", 6 };
	test_assert(milter_decode_strings(&p, v, 2) == -1);
	p = (struct milter_packet){ 'h', "a\0b", 3 };
	test_assert(milter_decode_strings(&p, v, 2) == -1);
	p = (struct milter_packet){ 'h', "a\0\0", 3 };
	test_assert(milter_decode_strings(&p, v, 2) == 2 && strcmp(v[1], "") == 0);
}

static char *render(const struct milter_message *m)
{
	struct buf b = BUF_INIT;
	milter_message_render(m, &b);
	return buf_steal(&b);
}

static void edits(void)
{
	const char *msg = "Received: from x\r\n\tby y\r\nSubject: one\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody\r\n";
	struct milter_message m;
	milter_message_parse(msg, strlen(msg), &m);
	test_assert(m.n == 4 && m.separator && m.body_len == 6);
	struct buf v = BUF_INIT;
	milter_message_value(&m, 0, &v);
	test_assert_str(buf_cstr(&v), "from x\n\tby y");
	milter_message_add(&m, "X-Spam", "Yes\n\tfolded");
	milter_message_insert(&m, 0, "X-Top", "t");
	milter_message_change(&m, 2, "X-A", "two");
	milter_message_change(&m, 1, "subject", "");
	milter_message_change(&m, 5, "X-None", "added");
	milter_message_change(&m, 5, "X-Gone", "");
	char *out = render(&m);
	test_assert_str(out,
			"X-Top: t\r\nReceived: from x\r\n\tby y\r\nX-A: 1\r\nX-A: two\r\nX-Spam: Yes\r\n\tfolded\r\n"
			"X-None: added\r\n\r\nbody\r\n");
	free(out);
	milter_message_replace_body(&m, true, "new\nbo", 6);
	milter_message_replace_body(&m, false, "dy", 2);
	out = render(&m);
	test_assert(strstr(out, "\r\n\r\nnew\r\nbody\r\n") != NULL);
	free(out);
	milter_message_free(&m);
	/* only header fields, no empty line; a line without a colon is kept and never shown */
	msg = "Subject: x\r\nnot a field\r\n";
	milter_message_parse(msg, strlen(msg), &m);
	test_assert(m.n == 2 && m.f[1].name_len == 0 && !m.separator && m.body_len == 0);
	out = render(&m);
	test_assert_str(out, msg);
	free(out);
	milter_message_free(&m);
	buf_free(&v);
}

/* ---- a scripted filter ---- */

struct script {
	char path[108];
	int lfd;
	uint32_t protocol;   /* what the filter answers in OPTNEG */
	const char *symlist; /* raw macro lists after the three words (NULL: none) */
	size_t symlist_len;
	char reply_to;         /* the command it answers with reply (others: 'c', unless told not to reply) */
	unsigned nth;          /* only reply_to's nth time (1-based; 0: every time) */
	unsigned times;        /* reply_to received so far */
	struct buf reply;      /* a whole packet */
	struct buf eom;        /* packets it sends at the end of the message */
	bool silent;           /* never answers OPTNEG */
	bool hang_up_at_eom;   /* sends the eom packets, then closes */
	bool progress_forever; /* at the end of the message: SMFIR_PROGRESS every 20 ms, nothing else */
	struct buf seen;       /* command letters received, macros as D<cmd>{names} */
	struct buf headers;    /* name=value lines */
	struct buf body;
};

static int read_full(int fd, void *p, size_t n)
{
	size_t at = 0;
	while (at < n) {
		ssize_t r = read(fd, (char *)p + at, n - at);
		if (r <= 0)
			return -1;
		at += (size_t)r;
	}
	return 0;
}

static void send_packet(int fd, char cmd, const void *data, size_t len)
{
	struct buf b = BUF_INIT;
	milter_encode(&b, cmd, data, len);
	(void)!write(fd, b.data, b.len);
	buf_free(&b);
}

static bool no_reply(uint32_t pr, char cmd)
{
	switch (cmd) {
	case 'C': return pr & SMFIP_NR_CONN;
	case 'H': return pr & SMFIP_NR_HELO;
	case 'M': return pr & SMFIP_NR_MAIL;
	case 'R': return pr & SMFIP_NR_RCPT;
	case 'T': return pr & SMFIP_NR_DATA;
	case 'L': return pr & SMFIP_NR_HDR;
	case 'N': return pr & SMFIP_NR_EOH;
	case 'B': return pr & SMFIP_NR_BODY;
	default: return cmd == 'D' || cmd == 'A' || cmd == 'Q';
	}
}

static void *filter_thread(void *arg)
{
	struct script *sc = arg;
	int fd = accept(sc->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	for (;;) {
		unsigned char lenb[4];
		if (read_full(fd, lenb, 4) < 0)
			break;
		uint32_t n = (uint32_t)lenb[0] << 24 | (uint32_t)lenb[1] << 16 | (uint32_t)lenb[2] << 8 | lenb[3];
		char *data = xmalloc(n);
		if (n == 0 || read_full(fd, data, n) < 0) {
			free(data);
			break;
		}
		char cmd = data[0];
		if (cmd == 'D') {
			buf_printf(&sc->seen, "D%c{", data[1]);
			for (size_t at = 2; at < n;) {
				const char *name = data + at, *value = name + strlen(name) + 1;
				buf_printf(&sc->seen, "%s%s %s", at > 2 ? " " : "", name, value);
				at += strlen(name) + strlen(value) + 2;
			}
			buf_append_char(&sc->seen, '}');
		} else {
			buf_append_char(&sc->seen, cmd);
		}
		if (cmd == 'L')
			buf_printf(&sc->headers, "%s=%s\n", data + 1, data + 2 + strlen(data + 1));
		if (cmd == 'B')
			buf_append(&sc->body, data + 1, n - 1);
		if (cmd == 'O') {
			free(data);
			if (sc->silent) {
				sleep(1);
				break;
			}
			struct buf b = BUF_INIT;
			unsigned char w[12] = { 0, 0, 0, 6, 0, 0, 0x01, 0xff };
			w[8] = (unsigned char)(sc->protocol >> 24);
			w[9] = (unsigned char)(sc->protocol >> 16);
			w[10] = (unsigned char)(sc->protocol >> 8);
			w[11] = (unsigned char)sc->protocol;
			buf_append(&b, w, 12);
			if (sc->symlist != NULL)
				buf_append(&b, sc->symlist, sc->symlist_len);
			send_packet(fd, 'O', b.data, b.len);
			buf_free(&b);
			continue;
		}
		free(data);
		if (cmd == 'Q')
			break;
		if (cmd == 'E' && sc->progress_forever) {
			static const char progress[] = "\0\0\0\x01p";
			while (write(fd, progress, 5) == 5)
				usleep(20000);
			break;
		}
		if (cmd == 'E') {
			(void)!write(fd, sc->eom.data, sc->eom.len);
			if (sc->hang_up_at_eom)
				break;
			continue;
		}
		if (no_reply(sc->protocol, cmd))
			continue;
		if (cmd == sc->reply_to && sc->reply.len > 0 && (sc->nth == 0 || ++sc->times == sc->nth))
			(void)!write(fd, sc->reply.data, sc->reply.len);
		else
			send_packet(fd, 'p', NULL, 0), send_packet(fd, 'c', NULL, 0);
	}
	close(fd);
	return NULL;
}

static int script_start(struct script *sc, pthread_t *th, struct endpoint *ep)
{
	signal(SIGPIPE, SIG_IGN); /* the filter writes on after the client has gone */
	snprintf(sc->path, sizeof(sc->path), "/tmp/ix-test-milter-%d.sock", (int)getpid());
	unlink(sc->path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sc->path);
	sc->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sc->lfd < 0 || bind(sc->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(sc->lfd, 1) < 0)
		return -1;
	char why[128];
	char spec[140];
	snprintf(spec, sizeof(spec), "unix:%s", sc->path);
	if (endpoint_parse(spec, strlen(spec), ep, why, sizeof(why)) < 0)
		return -1;
	return pthread_create(th, NULL, filter_thread, sc);
}

static void script_free(struct script *sc)
{
	buf_free(&sc->reply);
	buf_free(&sc->eom);
	buf_free(&sc->seen);
	buf_free(&sc->headers);
	buf_free(&sc->body);
}

static const char message[] = "Subject: hello\r\nX-A: 1\r\n\r\nline one\r\n";
static const struct milter_macro macros[] = { { "j", "mx.example.com" }, { "{i}", "QID1" } };
static const char *const rcpts[] = { "a@example.com", "b@example.com" };

/* The message of the next conversation (NULL: message). */
static const char *conv_message;

/* One session with the script as ix-smtpd holds it: every stage in order, a recipient refused left out of the
 * transaction, a refusal or discard at any other stage ending it (t->verdict, t->reply), else the message. Returns
 * 0, or -1 with err. */
static int converse(struct script *sc, struct milter_txn *t, unsigned timeout_ms, struct buf *err)
{
	pthread_t th;
	struct endpoint ep;
	if (script_start(sc, &th, &ep) != 0)
		return -2;
	const struct milter_client client = { "192.0.2.1", 25, "unknown", macros, 2, timeout_ms, 0 };
	const char *m = conv_message != NULL ? conv_message : message;
	milter_txn_init(t, "s@sender.test", rcpts, 2, m, strlen(m));
	struct milter *f = milter_open(&ep, &client, err);
	int r = f != NULL ? 0 : -1;
	enum milter_verdict v = MILTER_PASS;
	char reply[MILTER_REPLY_MAX];
	const char *kept[2];
	size_t nkept = 0;
	static const enum milter_event stages[] = { MILTER_EV_CONNECT, MILTER_EV_HELO, MILTER_EV_MAIL,
						    MILTER_EV_RCPT,    MILTER_EV_RCPT, MILTER_EV_DATA };
	const char *args[] = { "", "client.test", "s@sender.test", rcpts[0], rcpts[1], "" };
	for (size_t i = 0; i < IX_ARRAY_LEN(stages) && r == 0 && v == MILTER_PASS; i++) {
		if (stages[i] == MILTER_EV_DATA && nkept == 0)
			break; /* every recipient refused */
		r = milter_event(f, stages[i], args[i], &v, reply, err);
		if (r == 0 && stages[i] == MILTER_EV_RCPT) {
			if (v == MILTER_PASS)
				kept[nkept++] = args[i];
			else if (v != MILTER_DISCARD)
				v = MILTER_PASS; /* that recipient only */
		}
	}
	if (r == 0 && v != MILTER_PASS) {
		t->verdict = v;
		snprintf(t->reply, sizeof(t->reply), "%s", reply);
	} else if (r == 0 && nkept > 0) {
		if (nkept < 2) {
			milter_txn_free(t);
			milter_txn_init(t, "s@sender.test", kept, nkept, m, strlen(m));
		}
		r = milter_message(f, t, err);
	}
	milter_close(&f);
	pthread_join(th, NULL);
	close(sc->lfd);
	unlink(sc->path);
	return r;
}

static void session_all_steps_and_changes(void)
{
	struct script sc = { .protocol = SMFIP_NR_HDR | SMFIP_NOEOH };
	/* the filter asks for {i} at MAIL and j at the end */
	static const char sym[] = "\0\0\0\x02{i} {nope}\0\0\0\0\x05j\0";
	sc.symlist = sym;
	sc.symlist_len = sizeof(sym) - 1;
	milter_encode_strings(&sc.eom, 'h', (const char *const[]){ "X-Spam", "no" }, 2);
	static const char chg[] = "\0\0\0\x01Subject\0[checked] hello\0", ins[] = "\0\0\0\x00X-First\0top\0";
	milter_encode(&sc.eom, 'm', chg, sizeof(chg) - 1);
	milter_encode(&sc.eom, 'i', ins, sizeof(ins) - 1);
	milter_encode(&sc.eom, 'b', "new body\n", 9);
	milter_encode_strings(&sc.eom, '+', (const char *const[]){ "<c@example.com>" }, 1);
	milter_encode_strings(&sc.eom, '-', (const char *const[]){ "<a@example.com>" }, 1);
	milter_encode_strings(&sc.eom, 'q', (const char *const[]){ "looks odd" }, 1);
	milter_encode(&sc.eom, 'c', NULL, 0);
	struct milter_txn t;
	struct buf err = BUF_INIT;
	int r = converse(&sc, &t, 2000, &err);
	if (r != 0)
		fprintf(stderr, "%s\n", buf_cstr(&err));
	test_assert(r == 0);
	test_assert(t.verdict == MILTER_PASS && t.changed && t.envelope && t.quarantine);
	test_assert_str(t.quarantine_reason, "looks odd");
	/* every step in order, headers without replies, no EOH, the macros asked for (unknown ones left out) */
	test_assert_str(buf_cstr(&sc.seen), "ODC{j mx.example.com}CHDM{{i} QID1}MDR{{rcpt_addr} a@example.com}R"
					    "DR{{rcpt_addr} b@example.com}RDT{i QID1}TLLBDE{j mx.example.com}EQ");
	test_assert_str(buf_cstr(&sc.headers), "Subject=hello\nX-A=1\n");
	test_assert_str(buf_cstr(&sc.body), "line one\r\n");
	const char *m;
	size_t len;
	milter_txn_message(&t, &m, &len);
	test_assert(len ==
		    strlen("X-First: top\r\nSubject: [checked] hello\r\nX-A: 1\r\nX-Spam: no\r\n\r\nnew body\r\n"));
	test_assert(memcmp(m, "X-First: top\r\nSubject: [checked] hello\r\nX-A: 1\r\nX-Spam: no\r\n\r\nnew body\r\n",
			   len) == 0);
	test_assert(t.nrcpts == 2 && strcmp(t.rcpts[0], "c@example.com") == 0 &&
		    strcmp(t.rcpts[1], "b@example.com") == 0);
	test_assert(strstr(buf_cstr(&t.done), "added header X-Spam") != NULL);
	test_assert(strstr(buf_cstr(&t.done), "added recipient <c@example.com>") != NULL);
	milter_txn_free(&t);
	script_free(&sc);
	buf_free(&err);
}

static void session_verdicts(void)
{
	/* the first recipient refused: that one only, the message goes on with the other */
	struct script sc = { .protocol = 0, .reply_to = 'R', .nth = 1 };
	milter_encode_strings(&sc.reply, 'y', (const char *const[]){ "550 5.1.1 no such user" }, 1);
	milter_encode(&sc.eom, 'c', NULL, 0);
	struct milter_txn t;
	struct buf err = BUF_INIT;
	test_assert(converse(&sc, &t, 2000, &err) == 0);
	test_assert(t.verdict == MILTER_PASS && t.nrcpts == 1 && strcmp(t.rcpts[0], "b@example.com") == 0);
	test_assert(strstr(buf_cstr(&sc.seen), "MDR{{rcpt_addr} a@example.com}RDR{{rcpt_addr} b@example.com}RDT") !=
		    NULL);
	test_assert(strstr(buf_cstr(&sc.seen), "EQ") != NULL && strchr(buf_cstr(&sc.seen), 'A') == NULL);
	milter_txn_free(&t);
	script_free(&sc);

	/* every recipient refused: no message; ABORT (the message was under way) and QUIT */
	struct script ra = { .protocol = 0, .reply_to = 'R' };
	milter_encode(&ra.reply, 'r', NULL, 0);
	test_assert(converse(&ra, &t, 2000, &err) == 0);
	test_assert(strstr(buf_cstr(&ra.seen), "b@example.com}RAQ") != NULL);
	script_free(&ra);
	milter_txn_free(&t);

	/* refused at HELO: the session is refused, every later stage gets the verdict without the filter */
	struct script rh = { .protocol = 0, .reply_to = 'H' };
	milter_encode_strings(&rh.reply, 'y', (const char *const[]){ "554 5.7.1 go away" }, 1);
	test_assert(converse(&rh, &t, 2000, &err) == 0);
	test_assert(t.verdict == MILTER_REJECT && strcmp(t.reply, "554 5.7.1 go away") == 0);
	milter_txn_free(&t);
	script_free(&rh);
	{
		struct script r2 = { .protocol = 0, .reply_to = 'H' };
		milter_encode(&r2.reply, 't', NULL, 0);
		pthread_t th;
		struct endpoint ep;
		test_assert(script_start(&r2, &th, &ep) == 0);
		const struct milter_client client = { "", 0, "unknown", NULL, 0, 2000, 0 };
		struct milter *f = milter_open(&ep, &client, &err);
		enum milter_verdict v;
		char reply[MILTER_REPLY_MAX];
		test_assert(f != NULL && milter_event(f, MILTER_EV_CONNECT, "", &v, reply, &err) == 0 &&
			    v == MILTER_PASS);
		test_assert(milter_event(f, MILTER_EV_HELO, "x.test", &v, reply, &err) == 0 && v == MILTER_TEMPFAIL);
		test_assert(milter_event(f, MILTER_EV_HELO, "y.test", &v, reply, &err) == 0 && v == MILTER_TEMPFAIL);
		test_assert(milter_event(f, MILTER_EV_MAIL, "s@x.test", &v, reply, &err) == 0 && v == MILTER_TEMPFAIL);
		test_assert_str(reply, MILTER_TEMPFAIL_REPLY);
		milter_close(&f);
		pthread_join(th, NULL);
		close(r2.lfd);
		unlink(r2.path);
		test_assert_str(buf_cstr(&r2.seen), "OCHQ"); /* no second HELO, no MAIL, no ABORT */
		script_free(&r2);
	}

	/* accepted at CONNECT: told nothing more, the message passes */
	struct script ac0 = { .protocol = 0, .reply_to = 'C' };
	milter_encode(&ac0.reply, 'a', NULL, 0);
	test_assert(converse(&ac0, &t, 2000, &err) == 0 && t.verdict == MILTER_PASS);
	test_assert(strstr(buf_cstr(&ac0.seen), "CQ") != NULL && strchr(buf_cstr(&ac0.seen), 'M') == NULL);
	milter_txn_free(&t);
	script_free(&ac0);

	/* discard at RCPT: the message is to be dropped; the filter is told nothing more of it */
	struct script dr = { .protocol = 0, .reply_to = 'R', .nth = 1 };
	milter_encode(&dr.reply, 'd', NULL, 0);
	test_assert(converse(&dr, &t, 2000, &err) == 0 && t.verdict == MILTER_DISCARD);
	milter_txn_free(&t);
	script_free(&dr);

	/* refused at MAIL: the transaction */
	struct script rm = { .protocol = 0, .reply_to = 'M' };
	milter_encode(&rm.reply, 'r', NULL, 0);
	test_assert(converse(&rm, &t, 2000, &err) == 0);
	test_assert(t.verdict == MILTER_REJECT && strcmp(t.reply, MILTER_REJECT_REPLY) == 0);
	test_assert(strchr(buf_cstr(&rm.seen), 'R') == NULL);
	milter_txn_free(&t);
	script_free(&rm);

	struct script td = { .protocol = 0, .reply_to = 'T' };
	milter_encode(&td.reply, 't', NULL, 0);
	test_assert(converse(&td, &t, 2000, &err) == 0);
	test_assert(t.verdict == MILTER_TEMPFAIL && strcmp(t.reply, MILTER_TEMPFAIL_REPLY) == 0);
	milter_txn_free(&t);
	script_free(&td);

	struct script dd = { .protocol = SMFIP_NOBODY };
	milter_encode(&dd.eom, 'h', "X-Dropped\0yes\0", 14);
	milter_encode(&dd.eom, 'd', NULL, 0);
	test_assert(converse(&dd, &t, 2000, &err) == 0);
	test_assert(t.verdict == MILTER_DISCARD && !t.changed); /* changes before a discard are not applied */
	test_assert(strchr(buf_cstr(&dd.seen), 'B') == NULL);
	milter_txn_free(&t);
	script_free(&dd);

	/* accept at MAIL: the filter is done with the message, which passes unchanged */
	struct script ac = { .protocol = 0, .reply_to = 'M' };
	milter_encode(&ac.reply, 'a', NULL, 0);
	test_assert(converse(&ac, &t, 2000, &err) == 0);
	test_assert(t.verdict == MILTER_PASS && !t.changed && strchr(buf_cstr(&ac.seen), 'R') == NULL);
	test_assert(strstr(buf_cstr(&ac.seen), "MAQ") != NULL); /* ABORT: the message did not reach its end */
	milter_txn_free(&t);
	script_free(&ac);

	/* SKIP at the first body chunk: no more chunks, the end of the message all the same */
	struct script sk = { .protocol = SMFIP_SKIP, .reply_to = 'B' };
	milter_encode(&sk.reply, 's', NULL, 0);
	milter_encode(&sk.eom, 'c', NULL, 0);
	struct buf big = BUF_INIT;
	buf_append_str(&big, "Subject: big\r\n\r\n");
	for (int i = 0; i < 2000; i++)
		buf_append_str(&big, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
	conv_message = buf_cstr(&big);
	int r = converse(&sk, &t, 2000, &err);
	conv_message = NULL;
	test_assert(r == 0 && t.verdict == MILTER_PASS);
	test_assert(strstr(buf_cstr(&sk.seen), "BDE{i QID1}EQ") != NULL && strstr(buf_cstr(&sk.seen), "BB") == NULL);
	test_assert(sk.body.len == MILTER_CHUNK_MAX);
	milter_txn_free(&t);
	script_free(&sk);
	buf_free(&big);
	buf_free(&err);
}

static void session_failures(void)
{
	struct milter_txn t;
	struct buf err = BUF_INIT;
	/* no answer to OPTNEG within the timeout */
	struct script si = { .silent = true };
	test_assert(converse(&si, &t, 200, &err) == -1);
	test_assert(strstr(buf_cstr(&err), "no reply within") != NULL);
	milter_txn_free(&t);
	script_free(&si);
	/* changes, then the connection breaks before the final reply: nothing is applied */
	buf_reset(&err);
	struct script hu = { .hang_up_at_eom = true };
	milter_encode(&hu.eom, 'h', "X-Half\0yes\0", 11);
	test_assert(converse(&hu, &t, 2000, &err) == -1);
	test_assert(!t.changed && t.msg.n == 2);
	milter_txn_free(&t);
	script_free(&hu);
	/* a change the filter did not negotiate (it answers with actions 0x1ff: all of them but CHGFROM is there;
	 * QUARANTINE is in; use a reply that is not a change at all) */
	buf_reset(&err);
	struct script bad = { 0 };
	milter_encode(&bad.eom, 'z', NULL, 0);
	test_assert(converse(&bad, &t, 2000, &err) == -1);
	test_assert(strstr(buf_cstr(&err), "unexpected reply") != NULL);
	milter_txn_free(&t);
	script_free(&bad);
	/* progress without end: the conversation's own limit (ten timeouts) ends it */
	buf_reset(&err);
	struct script pf = { .progress_forever = true };
	test_assert(converse(&pf, &t, 100, &err) == -1);
	test_assert(strstr(buf_cstr(&err), "more than 10 times") != NULL);
	milter_txn_free(&t);
	script_free(&pf);
	/* changes past the message's limit (its size plus a packet's) */
	buf_reset(&err);
	struct script many = { 0 };
	char *chunk = xcalloc(1, 60000);
	for (int i = 0; i < 20; i++)
		milter_encode(&many.eom, 'b', chunk, 60000);
	free(chunk);
	milter_encode(&many.eom, 'c', NULL, 0);
	test_assert(converse(&many, &t, 2000, &err) == -1);
	test_assert(strstr(buf_cstr(&err), "more changes than a message may have") != NULL && !t.changed);
	milter_txn_free(&t);
	script_free(&many);
	/* nothing listens */
	buf_reset(&err);
	struct endpoint ep;
	char why[64];
	test_assert(endpoint_parse("unix:/nonexistent/ix.sock", 25, &ep, why, sizeof(why)) == 0);
	const struct milter_client client = { "", 0, "unknown", NULL, 0, 500, 0 };
	test_assert(milter_open(&ep, &client, &err) == NULL && strstr(buf_cstr(&err), "connecting") != NULL);
	buf_free(&err);
}

TEST_MAIN("milter", TEST_CASE(endpoints), TEST_CASE(codec_bytes), TEST_CASE(codec_replies), TEST_CASE(edits),
	  TEST_CASE(session_all_steps_and_changes), TEST_CASE(session_verdicts), TEST_CASE(session_failures))
