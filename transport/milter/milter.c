/* milter.c - one SMTP session's connection to a mail filter over a blocking socket with a deadline per step: each
 * stage told as it happens, the filter's verdict kept in its scope (the session, the message, one recipient), and
 * the transaction the filters' verdicts and changes to the message are gathered in. */
#include "transport/milter/milter.h"
#include "transport/milter/milter_proto.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* What we let a filter do, and the steps and replies we let it leave out (every one libmilter 8.14 knows), and
 * SMFIP_RCPT_REJ not offered: a filter is not told of the recipients we refuse ourselves. */
#define OUR_ACTIONS                                                                                         \
	(SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGHDRS | SMFIF_QUARANTINE | \
	 SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST)
#define OUR_PROTOCOL (0x1FFFFFu & ~SMFIP_RCPT_REJ)
/* Longest macro list a filter may ask for at one stage. */
#define SYMLIST_MAX 1024

/* The macros sent at each stage when the filter names none (Postfix's defaults, with the client's facts). */
static const char *const default_macros[MILTER_STAGE_COUNT] = {
	[MILTER_STAGE_CONNECT] = "j {daemon_name} {daemon_addr} v _ {client_addr} {client_name} {client_port}",
	[MILTER_STAGE_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	[MILTER_STAGE_MAIL] = "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
	[MILTER_STAGE_RCPT] = "{rcpt_addr} {rcpt_host} {rcpt_mailer}",
	[MILTER_STAGE_DATA] = "i",
	[MILTER_STAGE_EOM] = "i",
	[MILTER_STAGE_EOH] = "",
};

/* Where the filter is in the session, as Postfix's milter8 states. */
enum con_state {
	CON_OPEN,     /* told every stage it wants */
	CON_ACCEPTED, /* accepted the session at CONNECT or HELO: told nothing more */
	CON_REFUSED,  /* refused the session at CONNECT or HELO: every later stage gets its verdict (con_*) */
	CON_BROKEN,   /* failed (broken): every later call fails with why */
};

struct milter {
	int fd;
	unsigned timeout_ms;
	long long end_ms;    /* the stage's end (MILTER_CONVERSATION_TIMEOUTS timeouts) */
	size_t change_bytes; /* of the changes kept so far (at most the message's limit) */
	size_t change_limit;
	struct buf in, out;
	size_t taken; /* bytes of in the last packet read takes (dropped at the next read) */
	uint32_t actions, protocol;
	char symlist[MILTER_STAGE_COUNT][SYMLIST_MAX]; /* "" : the default */
	bool has_symlist[MILTER_STAGE_COUNT];
	const struct milter_client *client;
	enum con_state con;
	enum milter_verdict con_verdict;
	char con_reply[MILTER_REPLY_MAX];
	char why[256];    /* CON_BROKEN: what broke */
	char *sender;     /* the message's ({mail_addr}) */
	const char *rcpt; /* the recipient of the RCPT step under way ({rcpt_addr}) */
	bool in_msg;      /* MAIL was told and the message did not reach its end: ABORT before anything else */
	bool msg_done;    /* the filter accepted or discarded the message: told nothing more of it */
	bool data_sent;   /* DATA was told for this message */
	enum milter_verdict verdict; /* of the reply just read (R_DONE) */
	char reply[MILTER_REPLY_MAX];
	struct buf *error_r;
};

/* A change asked for at the end of the message, applied only once the filter's final reply lets the message on. */
struct mod {
	char type;
	uint32_t index;
	char *a, *b;
	size_t blen;
};

void milter_txn_init(struct milter_txn *t, const char *sender, const char *const *rcpts, size_t nrcpts,
		     const char *message, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->sender = xstrdup(sender);
	t->rcpts = xcalloc(nrcpts + 1, sizeof(char *));
	for (size_t i = 0; i < nrcpts; i++)
		t->rcpts[i] = xstrdup(rcpts[i]);
	t->nrcpts = nrcpts;
	t->cur = message;
	t->cur_len = len;
	milter_message_parse(message, len, &t->msg);
}

void milter_txn_free(struct milter_txn *t)
{
	free(t->sender);
	for (size_t i = 0; i < t->nrcpts; i++)
		free(t->rcpts[i]);
	free(t->rcpts);
	milter_message_free(&t->msg);
	buf_free(&t->done);
	buf_free(&t->text);
	memset(t, 0, sizeof(*t));
}

void milter_txn_message(const struct milter_txn *t, const char **message_r, size_t *len_r)
{
	*message_r = t->cur;
	*len_r = t->cur_len;
}

/* ---- I/O with a deadline ---- */

static int fail(struct milter *s, const char *fmt, ...) IX_PRINTF(2, 3);
static int fail(struct milter *s, const char *fmt, ...)
{
	if (s->error_r->len == 0) {
		va_list ap;
		va_start(ap, fmt);
		buf_vprintf(s->error_r, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(struct milter *s, short events, long long deadline)
{
	for (;;) {
		long long now = now_ms(), left = deadline - now;
		if (now >= s->end_ms)
			return fail(s, "the conversation took more than %u times smtp.milter_timeout",
				    MILTER_CONVERSATION_TIMEOUTS);
		if (deadline > s->end_ms)
			left = s->end_ms - now;
		if (left <= 0)
			return fail(s, "no reply within %s", "the timeout (smtp.milter_timeout)");
		struct pollfd p = { s->fd, events, 0 };
		int r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return fail(s, "poll: %s", strerror(errno));
	}
}

static int flush_out(struct milter *s)
{
	long long deadline = now_ms() + s->timeout_ms;
	size_t at = 0;
	while (at < s->out.len) {
		ssize_t n = send(s->fd, s->out.data + at, s->out.len - at, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			at += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return fail(s, "sending: %s", strerror(errno));
		if (wait_fd(s, POLLOUT, deadline) < 0)
			return -1;
	}
	buf_reset(&s->out);
	return 0;
}

/* Reads the filter's next packet other than SMFIR_PROGRESS (which starts the timeout again). The packet points into
 * s->in and is valid until the next read (s->taken: the bytes it took, dropped then). */
static int read_packet(struct milter *s, struct milter_packet *p_r)
{
	if (s->taken > 0)
		buf_consume(&s->in, s->taken);
	s->taken = 0;
	long long deadline = now_ms() + s->timeout_ms;
	for (;;) {
		long r = milter_packet_decode(s->in.data != NULL ? s->in.data : "", s->in.len, p_r);
		if (r < 0)
			return fail(s, "%s", "a packet longer than the protocol allows");
		if (r > 0) {
			if (p_r->cmd == SMFIR_PROGRESS) {
				buf_consume(&s->in, (size_t)r);
				deadline = now_ms() + s->timeout_ms;
				continue;
			}
			s->taken = (size_t)r;
			return 0;
		}
		char chunk[16384];
		ssize_t n = recv(s->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n > 0) {
			buf_append(&s->in, chunk, (size_t)n);
			continue;
		}
		if (n == 0)
			return fail(s, "%s", "the filter closed the connection");
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return fail(s, "receiving: %s", strerror(errno));
		if (wait_fd(s, POLLIN, deadline) < 0)
			return -1;
	}
}

static int connect_endpoint(const struct endpoint *ep, unsigned timeout_ms, struct buf *error_r)
{
	if (ep->kind == ENDPOINT_UNIX) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ep->path);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			buf_printf(error_r, "connecting: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	char port[8];
	snprintf(port, sizeof(port), "%u", ep->port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	int gr = getaddrinfo(ep->host, port, &hints, &res);
	if (gr != 0) {
		buf_printf(error_r, "%s: %s", ep->host, gai_strerror(gr));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		int r = connect(fd, a->ai_addr, a->ai_addrlen);
		if (r < 0 && errno == EINPROGRESS) {
			struct pollfd p = { fd, POLLOUT, 0 };
			int e = 0;
			socklen_t el = sizeof(e);
			if (poll(&p, 1, (int)timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 &&
			    e == 0)
				r = 0;
			else
				errno = e != 0 ? e : ETIMEDOUT;
		}
		if (r < 0) {
			buf_reset(error_r);
			buf_printf(error_r, "connecting: %s", strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd >= 0)
		buf_reset(error_r);
	return fd;
}

/* ---- macros ---- */

static bool same_macro(const char *a, size_t alen, const char *b)
{
	/* "i" and "{i}" name the same macro */
	if (alen >= 2 && a[0] == '{' && a[alen - 1] == '}') {
		a++;
		alen -= 2;
	}
	size_t blen = strlen(b);
	if (blen >= 2 && b[0] == '{' && b[blen - 1] == '}') {
		b++;
		blen -= 2;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

static const char *macro_value(const struct milter *s, const char *name, size_t len)
{
	if (same_macro(name, len, "mail_addr"))
		return s->sender;
	if (same_macro(name, len, "rcpt_addr"))
		return s->rcpt;
	for (size_t i = 0; i < s->client->nmacros; i++) {
		if (same_macro(name, len, s->client->macros[i].name))
			return s->client->macros[i].value[0] != '\0' ? s->client->macros[i].value : NULL;
	}
	return NULL;
}

/* SMFIC_MACRO before the command cmd of stage: the names of the stage's list that have a value. */
static void put_macros(struct milter *s, enum milter_stage stage, char cmd)
{
	const char *list = s->has_symlist[stage] ? s->symlist[stage] : default_macros[stage];
	const char *names[64], *values[64];
	char held[64][64];
	size_t n = 0;
	for (const char *p = list; *p != '\0' && n < 64;) {
		size_t len = strcspn(p, " ,");
		const char *v = len > 0 && len < sizeof(held[0]) ? macro_value(s, p, len) : NULL;
		if (v != NULL) {
			memcpy(held[n], p, len);
			held[n][len] = '\0';
			names[n] = held[n];
			values[n] = v;
			n++;
		}
		p += len;
		p += strspn(p, " ,");
	}
	if (n > 0)
		milter_encode_macros(&s->out, cmd, names, values, n);
}

/* ---- the conversation ---- */

enum reply { R_CONTINUE, R_ACCEPT, R_SKIP, R_DONE, R_ERROR };

/* The verdict of a reply: R_DONE for one that decides (reject, tempfail, discard), into s->verdict and s->reply. */
static enum reply verdict(struct milter *s, const struct milter_packet *p)
{
	switch (p->cmd) {
	case SMFIR_CONTINUE: return R_CONTINUE;
	case SMFIR_ACCEPT: return R_ACCEPT;
	case SMFIR_SKIP: return R_SKIP;
	case SMFIR_DISCARD: s->verdict = MILTER_DISCARD; return R_DONE;
	case SMFIR_REJECT:
		s->verdict = MILTER_REJECT;
		snprintf(s->reply, sizeof(s->reply), "%s", MILTER_REJECT_REPLY);
		return R_DONE;
	case SMFIR_TEMPFAIL:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		s->verdict = MILTER_TEMPFAIL;
		snprintf(s->reply, sizeof(s->reply), "%s", MILTER_TEMPFAIL_REPLY);
		return R_DONE;
	case SMFIR_REPLYCODE: {
		int c = milter_decode_replycode(p, s->reply, sizeof(s->reply));
		if (c < 0) {
			fail(s, "%s", "a malformed SMFIR_REPLYCODE");
			return R_ERROR;
		}
		s->verdict = c == 5 ? MILTER_REJECT : MILTER_TEMPFAIL;
		return R_DONE;
	}
	default: {
		char what[32];
		snprintf(what, sizeof(what), "'%c' (0x%02x)", p->cmd >= ' ' && p->cmd < 0x7f ? p->cmd : '?',
			 (unsigned char)p->cmd);
		fail(s, "an unexpected reply %s", what);
		return R_ERROR;
	}
	}
}

/* Sends what s->out holds; when the filter replies to this step (no_reply clear), reads and judges the reply. */
static enum reply step(struct milter *s, bool no_reply)
{
	if (flush_out(s) < 0)
		return R_ERROR;
	if (no_reply)
		return R_CONTINUE;
	struct milter_packet p;
	if (read_packet(s, &p) < 0)
		return R_ERROR;
	return verdict(s, &p);
}

static void mods_free(struct mod *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].a);
		free(m[i].b);
	}
	free(m);
}

static char *unbracket(const char *a)
{
	size_t len = strlen(a);
	if (len >= 2 && a[0] == '<' && a[len - 1] == '>')
		return xstrndup(a + 1, len - 2);
	return xstrdup(a);
}

/* Checks one change against the actions negotiated and keeps it. Returns 0 or -1. */
static int take_mod(struct milter *s, const struct milter_packet *p, struct mod **mods, size_t *nmods)
{
	static const struct {
		char type;
		uint32_t action;
	} need[] = { { SMFIR_ADDRCPT, SMFIF_ADDRCPT },      { SMFIR_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR },
		     { SMFIR_DELRCPT, SMFIF_DELRCPT },      { SMFIR_CHGFROM, SMFIF_CHGFROM },
		     { SMFIR_ADDHEADER, SMFIF_ADDHDRS },    { SMFIR_INSHEADER, SMFIF_ADDHDRS },
		     { SMFIR_CHGHEADER, SMFIF_CHGHDRS },    { SMFIR_REPLBODY, SMFIF_CHGBODY },
		     { SMFIR_QUARANTINE, SMFIF_QUARANTINE } };
	uint32_t action = 0;
	for (size_t i = 0; i < IX_ARRAY_LEN(need); i++) {
		if (need[i].type == p->cmd)
			action = need[i].action;
	}
	if ((s->actions & action) == 0) {
		char what[8];
		snprintf(what, sizeof(what), "'%c'", p->cmd);
		return fail(s, "a change %s it did not negotiate", what);
	}
	struct mod m = { p->cmd, 0, NULL, NULL, 0 };
	const char *v[MILTER_STRINGS_MAX];
	int n;
	switch (p->cmd) {
	case SMFIR_REPLBODY:
		m.b = xmalloc(p->len + 1);
		memcpy(m.b, p->data, p->len);
		m.blen = p->len;
		break;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER: {
		const char *name, *value;
		if (milter_decode_indexed_header(p, &m.index, &name, &value) < 0)
			return fail(s, "%s", "a malformed header change");
		m.a = xstrdup(name);
		m.b = xstrdup(value);
		break;
	}
	case SMFIR_ADDHEADER:
		n = milter_decode_strings(p, v, MILTER_STRINGS_MAX);
		if (n != 2 || v[0][0] == '\0')
			return fail(s, "%s", "a malformed header addition");
		m.a = xstrdup(v[0]);
		m.b = xstrdup(v[1]);
		break;
	default: /* a recipient, a sender or a reason, ESMTP arguments after it ignored */
		n = milter_decode_strings(p, v, MILTER_STRINGS_MAX);
		if (n < 1 || (p->cmd != SMFIR_QUARANTINE && p->cmd != SMFIR_CHGFROM && v[0][0] == '\0'))
			return fail(s, "%s", "a malformed envelope change");
		m.a = p->cmd == SMFIR_QUARANTINE ? xstrdup(v[0]) : unbracket(v[0]);
		break;
	}
	/* header names are field names: printable, no colon */
	if ((p->cmd == SMFIR_ADDHEADER || p->cmd == SMFIR_INSHEADER || p->cmd == SMFIR_CHGHEADER)) {
		for (const char *c = m.a; *c != '\0'; c++) {
			if ((unsigned char)*c <= ' ' || *c == ':' || *c == 0x7f) {
				free(m.a);
				free(m.b);
				return fail(s, "%s", "a header field name that is not one");
			}
		}
	}
	s->change_bytes += p->len;
	if (*nmods >= MILTER_CHANGES_MAX || s->change_bytes > s->change_limit) {
		free(m.a);
		free(m.b);
		return fail(s, "more changes than a message may have (%zu bytes in %zu)", s->change_bytes, *nmods + 1);
	}
	*mods = xrealloc(*mods, (*nmods + 1) * sizeof(**mods));
	(*mods)[(*nmods)++] = m;
	return 0;
}

static void note(struct milter_txn *t, const char *fmt, ...) IX_PRINTF(2, 3);
static void note(struct milter_txn *t, const char *fmt, ...)
{
	if (t->done.len > 0)
		buf_append_str(&t->done, ", ");
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&t->done, fmt, ap);
	va_end(ap);
}

static void apply_mods(struct milter_txn *t, const struct mod *m, size_t n)
{
	bool body_started = false;
	for (size_t i = 0; i < n; i++) {
		switch (m[i].type) {
		case SMFIR_ADDHEADER:
			milter_message_add(&t->msg, m[i].a, m[i].b);
			note(t, "added header %s", m[i].a);
			t->changed = true;
			break;
		case SMFIR_INSHEADER:
			milter_message_insert(&t->msg, m[i].index, m[i].a, m[i].b);
			note(t, "inserted header %s", m[i].a);
			t->changed = true;
			break;
		case SMFIR_CHGHEADER:
			milter_message_change(&t->msg, m[i].index, m[i].a, m[i].b);
			note(t, "%s header %s", m[i].b[0] == '\0' ? "deleted" : "changed", m[i].a);
			t->changed = true;
			break;
		case SMFIR_REPLBODY:
			milter_message_replace_body(&t->msg, !body_started, m[i].b, m[i].blen);
			if (!body_started)
				note(t, "%s", "replaced the body");
			body_started = true;
			t->changed = true;
			break;
		case SMFIR_QUARANTINE:
			t->quarantine = true;
			snprintf(t->quarantine_reason, sizeof(t->quarantine_reason), "%s", m[i].a);
			note(t, "quarantine (%s)", m[i].a);
			break;
		case SMFIR_CHGFROM:
			free(t->sender);
			t->sender = xstrdup(m[i].a);
			note(t, "changed the sender to <%s>", m[i].a);
			t->envelope = true;
			break;
		case SMFIR_DELRCPT:
			for (size_t k = 0; k < t->nrcpts; k++) {
				if (strcasecmp(t->rcpts[k], m[i].a) == 0) {
					free(t->rcpts[k]);
					t->rcpts[k] = t->rcpts[--t->nrcpts];
					k--;
				}
			}
			note(t, "deleted recipient <%s>", m[i].a);
			t->envelope = true;
			break;
		default: /* SMFIR_ADDRCPT, SMFIR_ADDRCPT_PAR */
			if (t->nrcpts >= MILTER_RCPTS_MAX)
				break;
			t->rcpts = xrealloc(t->rcpts, (t->nrcpts + 2) * sizeof(char *));
			t->rcpts[t->nrcpts++] = xstrdup(m[i].a);
			note(t, "added recipient <%s>", m[i].a);
			t->envelope = true;
			break;
		}
	}
}

/* Option negotiation: the filter's version, actions, the steps it leaves out and its macro lists. */
static int negotiate(struct milter *s)
{
	milter_encode_optneg(&s->out, MILTER_VERSION, OUR_ACTIONS, OUR_PROTOCOL);
	if (flush_out(s) < 0)
		return -1;
	struct milter_packet p;
	struct milter_optneg o;
	if (read_packet(s, &p) < 0)
		return -1;
	if (milter_decode_optneg(&p, &o) < 0)
		return fail(s, "%s", "no option negotiation in reply");
	if (o.version < 2 || o.version > MILTER_VERSION)
		return fail(s, "%s", "a protocol version other than 2 to 6");
	if ((o.protocol & ~OUR_PROTOCOL) != 0)
		return fail(s, "%s", "protocol steps we do not know");
	s->actions = o.actions & OUR_ACTIONS;
	s->protocol = o.protocol;
	if (o.version < 4)
		s->protocol |= SMFIP_NODATA; /* DATA came with version 4: an older filter would not know it */
	const char *pos = o.symlists;
	size_t left = o.symlists_len;
	uint32_t stage;
	const char *names;
	int r;
	while ((r = milter_symlist_next(&pos, &left, &stage, &names)) > 0) {
		snprintf(s->symlist[stage], sizeof(s->symlist[stage]), "%s", names);
		s->has_symlist[stage] = true;
	}
	if (r < 0)
		return fail(s, "%s", "a malformed macro list");
	return 0;
}

/* A call begins: its deadline, where its failure is said. Returns -1 (with the reason) for a broken connection. */
static int begin(struct milter *s, struct buf *error_r)
{
	s->error_r = error_r;
	s->end_ms = now_ms() + (long long)s->timeout_ms * MILTER_CONVERSATION_TIMEOUTS;
	if (s->con == CON_BROKEN)
		return fail(s, "%s", s->why);
	return 0;
}

/* The connection failed: of no more use (its reason kept for later calls). */
static int broken(struct milter *s)
{
	snprintf(s->why, sizeof(s->why), "%s", s->error_r->len > 0 ? buf_cstr(s->error_r) : "failed earlier");
	s->con = CON_BROKEN;
	return -1;
}

/* ABORT into s->out when a message is under way (sent with the next step). */
static void abort_message(struct milter *s)
{
	if (s->in_msg)
		milter_encode(&s->out, SMFIC_ABORT, NULL, 0);
	s->in_msg = false;
}

struct milter *milter_open(const struct endpoint *ep, const struct milter_client *client, struct buf *error_r)
{
	int fd = connect_endpoint(ep, client->timeout_ms, error_r);
	if (fd < 0)
		return NULL;
	struct milter *s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->timeout_ms = client->timeout_ms;
	s->client = client;
	s->sender = xstrdup("");
	if (begin(s, error_r) < 0 || negotiate(s) < 0) {
		milter_close(&s);
		return NULL;
	}
	return s;
}

int milter_event(struct milter *s, enum milter_event ev, const char *arg, enum milter_verdict *verdict_r, char *reply_r,
		 struct buf *error_r)
{
	*verdict_r = MILTER_PASS;
	reply_r[0] = '\0';
	if (begin(s, error_r) < 0)
		return -1;
	if (s->con == CON_REFUSED) {
		*verdict_r = s->con_verdict;
		snprintf(reply_r, MILTER_REPLY_MAX, "%s", s->con_reply);
		return 0;
	}
	if (s->con == CON_ACCEPTED)
		return 0;
	const struct milter_client *c = s->client;
	uint32_t pr = s->protocol;
	bool skip = false, no_reply = false;
	char *path = NULL;
	switch (ev) {
	case MILTER_EV_CONNECT:
		skip = pr & SMFIP_NOCONNECT;
		no_reply = pr & SMFIP_NR_CONN;
		if (skip)
			break;
		put_macros(s, MILTER_STAGE_CONNECT, SMFIC_CONNECT);
		if (c->addr[0] != '\0')
			milter_encode_connect(&s->out, c->name, strchr(c->addr, ':') != NULL ? SMFIA_INET6 : SMFIA_INET,
					      c->port, c->addr);
		else
			milter_encode_connect(&s->out, c->name, SMFIA_UNKNOWN, 0, "");
		break;
	case MILTER_EV_HELO:
		abort_message(s);
		skip = (pr & SMFIP_NOHELO) || arg[0] == '\0';
		no_reply = pr & SMFIP_NR_HELO;
		if (skip)
			break;
		put_macros(s, MILTER_STAGE_HELO, SMFIC_HELO);
		milter_encode_strings(&s->out, SMFIC_HELO, &arg, 1);
		break;
	case MILTER_EV_MAIL:
		abort_message(s);
		free(s->sender);
		s->sender = xstrdup(arg);
		s->in_msg = true;
		s->msg_done = false;
		s->data_sent = false;
		skip = pr & SMFIP_NOMAIL;
		no_reply = pr & SMFIP_NR_MAIL;
		if (skip)
			break;
		path = xasprintf("<%s>", arg);
		put_macros(s, MILTER_STAGE_MAIL, SMFIC_MAIL);
		milter_encode_strings(&s->out, SMFIC_MAIL, (const char *const *)&path, 1);
		break;
	case MILTER_EV_RCPT:
		skip = s->msg_done || (pr & SMFIP_NORCPT);
		no_reply = pr & SMFIP_NR_RCPT;
		if (skip)
			break;
		path = xasprintf("<%s>", arg);
		s->rcpt = arg;
		put_macros(s, MILTER_STAGE_RCPT, SMFIC_RCPT);
		milter_encode_strings(&s->out, SMFIC_RCPT, (const char *const *)&path, 1);
		break;
	case MILTER_EV_DATA:
		skip = s->msg_done || (pr & SMFIP_NODATA);
		no_reply = pr & SMFIP_NR_DATA;
		s->data_sent = true;
		if (skip)
			break;
		put_macros(s, MILTER_STAGE_DATA, SMFIC_DATA);
		milter_encode(&s->out, SMFIC_DATA, NULL, 0);
		break;
	}
	free(path);
	enum reply r = skip ? (flush_out(s) < 0 ? R_ERROR : R_CONTINUE) : step(s, no_reply);
	s->rcpt = NULL;
	if (r == R_ERROR)
		return broken(s);
	bool session = ev == MILTER_EV_CONNECT || ev == MILTER_EV_HELO;
	if (r == R_ACCEPT) {
		if (session)
			s->con = CON_ACCEPTED;
		else
			s->msg_done = true;
	} else if (r == R_DONE && s->verdict == MILTER_DISCARD) {
		if (!session) { /* not a verdict for a connection (libmilter's API says so; Postfix ignores it) */
			s->msg_done = true;
			*verdict_r = MILTER_DISCARD;
		}
	} else if (r == R_DONE) {
		*verdict_r = s->verdict;
		snprintf(reply_r, MILTER_REPLY_MAX, "%s", s->reply);
		if (session) {
			s->con = CON_REFUSED;
			s->con_verdict = s->verdict;
			snprintf(s->con_reply, sizeof(s->con_reply), "%s", s->reply);
		}
	}
	return 0;
}

/* The message of the transaction after DATA: header fields, EOH, body, end of message with its changes, into t
 * (a work copy). SMFIR_SKIP (skip the rest of the header fields or the body) goes on to the next step where it is
 * given elsewhere. */
static enum reply conversation(struct milter *s, struct milter_txn *t)
{
	uint32_t pr = s->protocol;
	enum reply r;
	if (!s->data_sent && !(pr & SMFIP_NODATA)) {
		put_macros(s, MILTER_STAGE_DATA, SMFIC_DATA);
		milter_encode(&s->out, SMFIC_DATA, NULL, 0);
		if ((r = step(s, pr & SMFIP_NR_DATA)) != R_CONTINUE && r != R_SKIP)
			return r;
	}
	s->data_sent = true;
	struct buf value = BUF_INIT;
	for (size_t i = 0; i < t->msg.n && !(pr & SMFIP_NOHDRS); i++) {
		const struct milter_field *f = &t->msg.f[i];
		if (f->name_len == 0)
			continue;
		char *name = xstrndup(f->text, f->name_len);
		if (pr & SMFIP_HDR_LEADSPC) {
			/* the value exactly as it follows the colon */
			buf_reset(&value);
			size_t end = f->len;
			while (end > f->name_len + 1 && (f->text[end - 1] == '\n' || f->text[end - 1] == '\r'))
				end--;
			buf_append(&value, f->text + f->name_len + 1, end - f->name_len - 1);
		} else {
			milter_message_value(&t->msg, i, &value);
		}
		const char *hv[2] = { name, buf_cstr(&value) };
		milter_encode_strings(&s->out, SMFIC_HEADER, hv, 2);
		free(name);
		r = step(s, pr & SMFIP_NR_HDR);
		if (r == R_SKIP)
			break;
		if (r != R_CONTINUE) {
			buf_free(&value);
			return r;
		}
	}
	buf_free(&value);
	if (!(pr & SMFIP_NOEOH)) {
		put_macros(s, MILTER_STAGE_EOH, SMFIC_EOH);
		milter_encode(&s->out, SMFIC_EOH, NULL, 0);
		if ((r = step(s, pr & SMFIP_NR_EOH)) != R_CONTINUE && r != R_SKIP)
			return r;
	}
	for (size_t at = 0; at < t->msg.body_len && !(pr & SMFIP_NOBODY);) {
		size_t n = t->msg.body_len - at < MILTER_CHUNK_MAX ? t->msg.body_len - at : MILTER_CHUNK_MAX;
		milter_encode(&s->out, SMFIC_BODY, t->msg.body + at, n);
		at += n;
		r = step(s, pr & SMFIP_NR_BODY);
		if (r == R_SKIP)
			break;
		if (r != R_CONTINUE)
			return r;
	}
	/* the end of the message: changes, then the final reply */
	put_macros(s, MILTER_STAGE_EOM, SMFIC_BODYEOB);
	milter_encode(&s->out, SMFIC_BODYEOB, NULL, 0);
	if (flush_out(s) < 0)
		return R_ERROR;
	struct mod *mods = NULL;
	size_t nmods = 0;
	for (;;) {
		struct milter_packet p;
		if (read_packet(s, &p) < 0) {
			mods_free(mods, nmods);
			return R_ERROR;
		}
		if (strchr("+-2ebhimq", p.cmd) != NULL && p.cmd != '\0') {
			if (take_mod(s, &p, &mods, &nmods) < 0) {
				mods_free(mods, nmods);
				return R_ERROR;
			}
			continue;
		}
		r = verdict(s, &p);
		if (r == R_CONTINUE || r == R_ACCEPT)
			apply_mods(t, mods, nmods);
		mods_free(mods, nmods);
		if (r != R_ERROR)
			s->in_msg = false; /* the message is over for the filter: no ABORT */
		return r == R_SKIP || r == R_ACCEPT ? R_CONTINUE : r;
	}
}

/* The envelope and message of a filter that passed the message on become t's. */
static void txn_take(struct milter_txn *t, struct milter_txn *work)
{
	char *sender = t->sender;
	t->sender = work->sender;
	work->sender = sender;
	char **rcpts = t->rcpts;
	size_t nrcpts = t->nrcpts;
	t->rcpts = work->rcpts;
	t->nrcpts = work->nrcpts;
	work->rcpts = rcpts;
	work->nrcpts = nrcpts;
	t->envelope = t->envelope || work->envelope;
	if (work->quarantine) {
		t->quarantine = true;
		snprintf(t->quarantine_reason, sizeof(t->quarantine_reason), "%s", work->quarantine_reason);
	}
	if (!work->changed)
		return;
	/* rendered before t's text goes: the work copy's fields and body may point into it */
	struct buf text = BUF_INIT;
	milter_message_render(&work->msg, &text);
	milter_message_free(&t->msg);
	buf_free(&t->text);
	t->text = text;
	t->cur = t->text.data != NULL ? t->text.data : "";
	t->cur_len = t->text.len;
	milter_message_parse(t->cur, t->cur_len, &t->msg);
	t->changed = true;
}

int milter_message(struct milter *s, struct milter_txn *t, struct buf *error_r)
{
	t->verdict = MILTER_PASS;
	buf_reset(&t->done);
	if (begin(s, error_r) < 0)
		return -1;
	if (s->con == CON_REFUSED) {
		t->verdict = s->con_verdict;
		snprintf(t->reply, sizeof(t->reply), "%s", s->con_reply);
		return 0;
	}
	if (s->con == CON_ACCEPTED || s->msg_done)
		return 0;
	s->change_bytes = 0;
	s->change_limit = (s->client->max_size > 0 ? s->client->max_size : t->cur_len) + MILTER_PACKET_MAX;
	/* what the filter does is applied to a copy first: a filter that fails midway leaves t as it was */
	struct milter_txn work;
	milter_txn_init(&work, t->sender, (const char *const *)t->rcpts, t->nrcpts, t->cur, t->cur_len);
	s->verdict = MILTER_PASS;
	enum reply r = conversation(s, &work);
	if (r == R_ERROR) {
		milter_txn_free(&work);
		return broken(s);
	}
	t->verdict = r == R_DONE ? s->verdict : MILTER_PASS;
	snprintf(t->reply, sizeof(t->reply), "%s", t->verdict == MILTER_PASS ? "" : s->reply);
	buf_append_str(&t->done, buf_cstr(&work.done));
	if (t->verdict == MILTER_PASS)
		txn_take(t, &work);
	milter_txn_free(&work);
	return 0;
}

void milter_close(struct milter **mp)
{
	struct milter *s = *mp;
	if (s == NULL)
		return;
	if (s->con != CON_BROKEN) {
		buf_reset(&s->out);
		abort_message(s);
		milter_encode(&s->out, SMFIC_QUIT, NULL, 0);
		(void)!send(s->fd, s->out.data, s->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	close(s->fd);
	buf_free(&s->in);
	buf_free(&s->out);
	free(s->sender);
	free(s);
	*mp = NULL;
}
