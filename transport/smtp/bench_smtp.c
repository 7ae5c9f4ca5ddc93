/* bench_smtp.c - the SMTP load generator of `make bench`: N parallel sessions on loopback, one message with one
 * recipient per connection (like Postfix's smtp-source without -d), fixed-size messages, lock-step replies.
 * Run without arguments it hands over to tests/bench/bench_smtp.py, which starts a system and drives it. */
#include "common/buf.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Largest message and reply the generator handles. */
#define BENCH_SIZE_MAX (1u << 20)
#define BENCH_REPLY_MAX 4096
#define BENCH_SESSIONS_MAX 1024

struct bench {
	unsigned port, sessions, users, messages;
	char *body;
	size_t body_len;
	atomic_uint sent, failed;
};

struct worker {
	struct bench *b;
	unsigned index;
};

/* Reads one whole reply; returns its code or -1. */
static int reply(int fd, char *buf, size_t *have)
{
	for (;;) {
		/* a complete last line: "DDD " ... CRLF */
		size_t start = 0;
		for (size_t i = 0; i + 1 < *have; i++) {
			if (buf[i] == '\r' && buf[i + 1] == '\n') {
				if (i - start >= 3 && (i - start == 3 || buf[start + 3] == ' ')) {
					int code = atoi(buf + start);
					memmove(buf, buf + i + 2, *have - (i + 2));
					*have -= i + 2;
					return code;
				}
				start = i + 2;
			}
		}
		if (*have >= BENCH_REPLY_MAX)
			return -1;
		ssize_t n = read(fd, buf + *have, BENCH_REPLY_MAX - *have);
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
}

static int say(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int one_message(struct bench *b, unsigned user)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)b->port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char buf[BENCH_REPLY_MAX], cmd[256];
	size_t have = 0;
	int ok = -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || reply(fd, buf, &have) != 220)
		goto out;
	if (say(fd, "EHLO loadgen.example.net\r\n", 26) < 0 || reply(fd, buf, &have) != 250)
		goto out;
	/* from outside: port 25 refuses our own domains' senders without a login (a forged internal sender) */
	if (say(fd, "MAIL FROM:<loadgen@example.net>\r\n", 33) < 0 || reply(fd, buf, &have) != 250)
		goto out;
	int n = snprintf(cmd, sizeof(cmd), "RCPT TO:<user%04u@example.com>\r\n", user);
	if (say(fd, cmd, (size_t)n) < 0 || reply(fd, buf, &have) != 250)
		goto out;
	if (say(fd, "DATA\r\n", 6) < 0 || reply(fd, buf, &have) != 354)
		goto out;
	if (say(fd, b->body, b->body_len) < 0 || reply(fd, buf, &have) != 250)
		goto out;
	ok = 0;
	(void)say(fd, "QUIT\r\n", 6);
	(void)reply(fd, buf, &have);
out:
	close(fd);
	return ok;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	unsigned per = b->messages / b->users, extra = b->messages % b->users;
	/* worker w sends to users w+1, w+1+sessions, ...: k messages each, one connection per message */
	for (unsigned u = w->index + 1; u <= b->users; u += b->sessions) {
		unsigned k = per + (u <= extra ? 1 : 0);
		for (unsigned i = 0; i < k; i++) {
			if (one_message(b, u) == 0)
				atomic_fetch_add(&b->sent, 1);
			else
				atomic_fetch_add(&b->failed, 1);
		}
	}
	return NULL;
}

static void make_body(struct bench *b, size_t size)
{
	struct buf m = BUF_INIT;
	buf_printf(&m,
		   "From: loadgen@example.net\r\nTo: someone@example.com\r\nSubject: bench\r\n"
		   "Message-ID: <%llu.bench@loadgen>\r\n\r\n",
		   (unsigned long long)now_usec());
	while (m.len + 80 < size)
		buf_append_str(&m,
			       "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdef\r\n");
	buf_append_str(&m, ".\r\n");
	b->body_len = m.len;
	b->body = buf_steal(&m);
}

int main(int argc, char **argv)
{
	if (argc == 1) {
		/* `make bench`: the orchestrator starts a system and calls us back with arguments */
		char *self = xstrdup(argv[0]);
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			slash = strrchr(self, '/');
			if (slash != NULL)
				*slash = '\0';
			setenv("IX_BUILD", self, 0);
		}
		free(self);
		execlp("python3", "python3", "tests/bench/bench_smtp.py", (char *)NULL);
		fprintf(stderr, "bench_smtp: cannot run python3: %s\n", strerror(errno));
		return 1;
	}
	unsigned long long v[5];
	if (argc != 6) {
		fprintf(stderr, "usage: bench_smtp PORT SESSIONS USERS MESSAGES SIZE\n");
		return 2;
	}
	static const unsigned long long max[5] = { 65535, BENCH_SESSIONS_MAX, 9999, 100000000, BENCH_SIZE_MAX };
	for (int i = 0; i < 5; i++) {
		if (parse_uint(argv[i + 1], max[i], &v[i]) < 0 || v[i] == 0) {
			fprintf(stderr, "bench_smtp: bad argument %s\n", argv[i + 1]);
			return 2;
		}
	}
	struct bench b = {
		.port = (unsigned)v[0], .sessions = (unsigned)v[1], .users = (unsigned)v[2], .messages = (unsigned)v[3]
	};
	make_body(&b, (size_t)v[4]);
	pthread_t t[BENCH_SESSIONS_MAX];
	struct worker w[BENCH_SESSIONS_MAX];
	unsigned long long t0 = now_usec();
	for (unsigned i = 0; i < b.sessions; i++) {
		w[i] = (struct worker){ &b, i };
		if (pthread_create(&t[i], NULL, worker_run, &w[i]) != 0)
			fatal("cannot start threads");
	}
	for (unsigned i = 0; i < b.sessions; i++)
		pthread_join(t[i], NULL);
	double secs = (double)(now_usec() - t0) / 1e6;
	printf("sent=%u failed=%u secs=%.3f\n", atomic_load(&b.sent), atomic_load(&b.failed), secs);
	free(b.body);
	return 0;
}
