/* bench_store.c - `make bench` for the store: durable appends with group commit at 1, 8 and 64 writers, without
 * batching, the machine's raw synced-write rate, cached-envelope and whole-body fetches, bytes on disk per message. */
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store.h"
#include "common/util.h"

#ifdef STORE_HAVE_MIME
#include "store/mime.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN_USEC 2000000ULL /* each timed run */
#define MSG_SIZE 4096

static char tmpdir[64];

static void make_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ix-bench-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		fatal("mkdtemp: %s", strerror(errno));
}

static void remove_tmp(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", tmpdir);
	free(cmd);
}

static struct store *open_store(int no_group_commit, int no_sync)
{
	struct store_settings set;
	store_settings_default(&set);
	set.no_group_commit = no_group_commit;
	set.no_sync = no_sync || getenv("IX_BENCH_NOSYNC") != NULL; /* CPU-only figures, for profiling */
	set.map_size = 256ULL << 20;
	struct store *st = NULL;
	struct buf err = BUF_INIT;
	if (store_open(tmpdir, &set, &st, &err) != 0)
		fatal("store_open: %s", buf_cstr(&err));
	buf_free(&err);
	return st;
}

/* A message of about size bytes, unique by (a, b). */
static char *make_msg(size_t size, unsigned a, unsigned b, size_t *len_r)
{
	struct buf m = BUF_INIT;
	buf_printf(&m,
		   "From: Sender <sender@example.com>\r\nTo: Recipient <rcpt@example.com>\r\n"
		   "Subject: Benchmark message %u/%u\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
		   "Message-ID: <%u.%u@bench.example.com>\r\nMIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		   a, b, a, b);
	while (m.len + 80 < size)
		buf_append_str(&m,
			       "The quick brown fox jumps over the lazy dog, again and again and again, twice.\r\n");
	*len_r = m.len;
	return buf_steal(&m);
}

static void guid_of(unsigned n, char *out)
{
	snprintf(out, STORE_GUID_HEX_LEN + 1, "%08x%024x", 0xb0000000u + n, n);
}

struct writer {
	struct store *st;
	unsigned id;
	unsigned long long deadline;
	unsigned long count;
	int failed;
};

static void *writer_main(void *p)
{
	struct writer *w = p;
	char guid[STORE_GUID_HEX_LEN + 1];
	guid_of(w->id, guid);
	while (now_usec() < w->deadline) {
		size_t len;
		char *msg = make_msg(MSG_SIZE, w->id, (unsigned)w->count, &len);
		struct store_target t = { .guid = guid };
		struct store_append a = { .data = msg, .len = len, .targets = &t, .ntargets = 1 };
		if (store_append(w->st, &a, NULL) != 0)
			w->failed = 1;
		free(msg);
		w->count++;
	}
	return NULL;
}

/* Durable appends per second with nthreads concurrent writers. */
static double bench_appends(unsigned nthreads, int no_group_commit, double *per_commit_r)
{
	make_tmp();
	struct store *st = open_store(no_group_commit, 0);
	char guid[STORE_GUID_HEX_LEN + 1];
	for (unsigned i = 0; i < nthreads; i++) {
		guid_of(i, guid);
		store_mailbox_ensure(st, guid, NULL);
	}
	struct store_stats s0, s1;
	store_get_stats(st, &s0);
	pthread_t *th = xcalloc(nthreads, sizeof(*th));
	struct writer *w = xcalloc(nthreads, sizeof(*w));
	unsigned long long start = now_usec();
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct writer){ .st = st, .id = i, .deadline = start + RUN_USEC };
		if (pthread_create(&th[i], NULL, writer_main, &w[i]) != 0)
			fatal("pthread_create");
	}
	unsigned long total = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += w[i].count;
		if (w[i].failed)
			fatal("an append failed during the benchmark");
	}
	double secs = (double)(now_usec() - start) / 1e6;
	store_get_stats(st, &s1);
	*per_commit_r = s1.commits > s0.commits ? (double)(s1.ops - s0.ops) / (double)(s1.commits - s0.commits) : 0;
	free(th);
	free(w);
	store_close(&st);
	remove_tmp();
	return (double)total / secs;
}

/* The machine's limit: one small appended write + fdatasync per commit. */
static double bench_raw_sync(void)
{
	make_tmp();
	char *path = xasprintf("%s/raw", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fatal("open %s: %s", path, strerror(errno));
	char block[512];
	memset(block, 'r', sizeof(block));
	unsigned long n = 0;
	unsigned long long start = now_usec(), deadline = start + RUN_USEC / 2;
	while (now_usec() < deadline) {
		if (write_full(fd, block, sizeof(block)) < 0 || fdatasync(fd) < 0)
			fatal("raw write: %s", strerror(errno));
		n++;
	}
	double secs = (double)(now_usec() - start) / 1e6;
	close(fd);
	free(path);
	remove_tmp();
	return (double)n / secs;
}

static void bench_fetch(double *env_r, double *body_r)
{
	make_tmp();
	struct store *st = open_store(0, 1);
	const char *guid = "c0000000000000000000000000000001";
	enum { N = 1000 };
	for (unsigned i = 0; i < N; i++) {
		size_t len;
		char *msg = make_msg(MSG_SIZE, 7, i, &len);
		struct store_target t = { .guid = guid };
		struct store_append a = { .data = msg, .len = len, .targets = &t, .ntargets = 1 };
		if (store_append(st, &a, NULL) != 0)
			fatal("append failed");
		free(msg);
	}
	struct buf out = BUF_INIT;
	unsigned long n = 0;
	size_t check = 0;
	unsigned long long start = now_usec(), deadline = start + RUN_USEC / 2;
	while (now_usec() < deadline) {
		for (unsigned i = 0; i < 100; i++, n++) {
			buf_reset(&out);
			if (store_fetch_cache(st, guid, NULL, (uint32_t)(n % N) + 1, &out, NULL) != 0)
				fatal("fetch failed");
#ifdef STORE_HAVE_MIME
			struct mime_info *info;
			if (mime_info_deserialize(out.data, out.len, &info) != 0)
				fatal("cache record does not deserialize");
			check += strlen(info->envelope);
			mime_info_destroy(&info);
#else
			check += out.len;
#endif
		}
	}
	*env_r = (double)n / ((double)(now_usec() - start) / 1e6);
	n = 0;
	start = now_usec();
	deadline = start + RUN_USEC / 2;
	while (now_usec() < deadline) {
		for (unsigned i = 0; i < 100; i++, n++) {
			buf_reset(&out);
			if (store_fetch_body(st, guid, NULL, (uint32_t)(n % N) + 1, 0, 0, &out, NULL) != 0)
				fatal("fetch failed");
			check += out.len;
		}
	}
	*body_r = (double)n / ((double)(now_usec() - start) / 1e6);
	if (check == 0)
		fatal("nothing fetched");
	buf_free(&out);
	store_close(&st);
	remove_tmp();
}

/* The same as bench_appends(64), but 8 processes of 8 writers: batching across processes happens through LMDB's
 * writer lock (a process's queue grows while another commits) and shared syncs. */
static double bench_appends_procs(unsigned nprocs, unsigned nthreads)
{
	make_tmp();
	int p[2];
	if (pipe(p) < 0)
		fatal("pipe: %s", strerror(errno));
	unsigned long long start = now_usec();
	for (unsigned k = 0; k < nprocs; k++) {
		pid_t pid = fork();
		if (pid < 0)
			fatal("fork: %s", strerror(errno));
		if (pid > 0)
			continue;
		close(p[0]);
		struct store *st = open_store(0, 0);
		pthread_t *th = xcalloc(nthreads, sizeof(*th));
		struct writer *w = xcalloc(nthreads, sizeof(*w));
		for (unsigned i = 0; i < nthreads; i++) {
			w[i] = (struct writer){ .st = st, .id = 100 + k * nthreads + i, .deadline = start + RUN_USEC };
			if (pthread_create(&th[i], NULL, writer_main, &w[i]) != 0)
				fatal("pthread_create");
		}
		unsigned long total = 0;
		for (unsigned i = 0; i < nthreads; i++) {
			pthread_join(th[i], NULL);
			total += w[i].failed ? 0 : w[i].count;
		}
		store_close(&st);
		if (write_full(p[1], &total, sizeof(total)) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	unsigned long total = 0, n;
	while (read(p[0], &n, sizeof(n)) == sizeof(n))
		total += n;
	close(p[0]);
	while (wait(NULL) > 0)
		;
	double secs = (double)(now_usec() - start) / 1e6;
	remove_tmp();
	return (double)total / secs;
}

/* Milliseconds from the start of a durable append in one process to the wake-up of a watcher in another. */
static void bench_notify(double *median_r, double *max_r)
{
	make_tmp();
	enum { ROUNDS = 40 };
	const char *guid = "d0000000000000000000000000000001";
	int p[2];
	if (pipe(p) < 0)
		fatal("pipe: %s", strerror(errno));
	struct store *st = open_store(0, 0);
	store_mailbox_ensure(st, guid, NULL);
	struct store_watch *w;
	if (store_watch_create(st, guid, &w, NULL) != 0)
		fatal("watch failed");
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		/* the watcher: reports the time of each wake-up */
		close(p[0]);
		for (unsigned i = 0; i < ROUNDS; i++) {
			struct pollfd pfd = { store_watch_fd(w), POLLIN, 0 };
			if (poll(&pfd, 1, 2000) != 1)
				_exit(1);
			unsigned long long t = now_usec();
			store_watch_drain(w);
			if (write_full(p[1], &t, sizeof(t)) < 0)
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	store_watch_destroy(&w);
	double lat[ROUNDS];
	for (unsigned i = 0; i < ROUNDS; i++) {
		usleep(10000);
		size_t len;
		char *msg = make_msg(1000, 9, i, &len);
		struct store_target t = { .guid = guid };
		struct store_append a = { .data = msg, .len = len, .targets = &t, .ntargets = 1 };
		unsigned long long t0 = now_usec(), t1;
		if (store_append(st, &a, NULL) != 0)
			fatal("append failed");
		free(msg);
		if (read(p[0], &t1, sizeof(t1)) != sizeof(t1))
			fatal("the watcher did not wake up");
		lat[i] = (double)(t1 - t0) / 1000.0;
	}
	close(p[0]);
	waitpid(pid, NULL, 0);
	store_close(&st);
	remove_tmp();
	for (unsigned i = 1; i < ROUNDS; i++)
		for (unsigned j = i; j > 0 && lat[j - 1] > lat[j]; j--) {
			double x = lat[j];
			lat[j] = lat[j - 1];
			lat[j - 1] = x;
		}
	*median_r = lat[ROUNDS / 2];
	*max_r = lat[ROUNDS - 1];
}

/* Bytes the store grows by per delivered message, for messages of msg_size to nrcpt mailboxes. */
static double bench_disk(unsigned nrcpt, size_t msg_size)
{
	make_tmp();
	struct store *st = open_store(0, 1);
	enum { MSGS = 200 };
	char(*guids)[STORE_GUID_HEX_LEN + 1] = xcalloc(nrcpt, sizeof(*guids));
	struct store_target *t = xcalloc(nrcpt, sizeof(*t));
	for (unsigned i = 0; i < nrcpt; i++) {
		guid_of(1000 + i, guids[i]);
		store_mailbox_ensure(st, guids[i], NULL);
	}
	/* a few deliveries first so the trees have their shape, then measure */
	struct store_stats s0, s1;
	for (unsigned round = 0; round < 2; round++) {
		if (round == 1)
			store_get_stats(st, &s0);
		for (unsigned m = 0; m < MSGS; m++) {
			size_t len;
			char *msg = make_msg(msg_size, round, m, &len);
			for (unsigned i = 0; i < nrcpt; i++)
				t[i] = (struct store_target){ .guid = guids[i] };
			struct store_append a = { .data = msg, .len = len, .targets = t, .ntargets = nrcpt };
			if (store_append(st, &a, NULL) != 0)
				fatal("append failed");
			free(msg);
		}
	}
	store_get_stats(st, &s1);
	free(t);
	free(guids);
	store_close(&st);
	remove_tmp();
	return (double)(s1.map_used - s0.map_used) / MSGS;
}

int main(void)
{
	log_set_name("bench_store");
	double pc1, pc8, pc64, pcu;
	double raw = bench_raw_sync();
	double g1 = bench_appends(1, 0, &pc1);
	double g8 = bench_appends(8, 0, &pc8);
	double g64 = bench_appends(64, 0, &pc64);
	double u64 = bench_appends(64, 1, &pcu);
	double p8x8 = bench_appends_procs(8, 8);
	double nmed, nmax;
	bench_notify(&nmed, &nmax);
	double env, body;
	bench_fetch(&env, &body);
	double d1 = bench_disk(1, MSG_SIZE), d100 = bench_disk(100, MSG_SIZE);
	double e1 = bench_disk(1, 32768), e100 = bench_disk(100, 32768);

	printf("store benchmark (%d-byte messages, every append durable before it returns)\n", MSG_SIZE);
	printf("  raw synced writes (512 B append + fdatasync)    %10.0f /s   (the machine's limit per commit)\n", raw);
	printf("  appends, group commit,  1 writer                %10.0f /s   (%.1f appends per commit)\n", g1, pc1);
	printf("  appends, group commit,  8 writers               %10.0f /s   (%.1f appends per commit)\n", g8, pc8);
	printf("  appends, group commit, 64 writers               %10.0f /s   (%.1f appends per commit)\n", g64, pc64);
	printf("  appends, no batching,  64 writers               %10.0f /s   (%.1f appends per commit)\n", u64, pcu);
	printf("  group commit gain at 64 writers                 %10.1f x   (goal: 20 x)\n", u64 > 0 ? g64 / u64 : 0);
	printf("  appends, 8 processes x 8 writers                %10.0f /s\n", p8x8);
	printf("  change notification to another process     %6.1f ms median, %.1f ms max (append start to wake-up)\n",
	       nmed, nmax);
	printf("  cached envelope fetches%s                  %10.0f /s\n",
#ifdef STORE_HAVE_MIME
	       " (deserialized)",
#else
	       " (raw blob)    ",
#endif
	       env);
	printf("  whole body fetches                              %10.0f /s\n", body);
	printf("  disk per message, 4 KiB,  1 recipient           %10.0f B\n", d1);
	printf("  disk per message, 4 KiB,  100 recipients        %10.0f B   (%.2f x single; goal < 2 x)\n", d100,
	       d1 > 0 ? d100 / d1 : 0);
	printf("  disk per message, 32 KiB, 1 recipient           %10.0f B\n", e1);
	printf("  disk per message, 32 KiB, 100 recipients        %10.0f B   (%.2f x single)\n", e100,
	       e1 > 0 ? e100 / e1 : 0);
	return 0;
}
