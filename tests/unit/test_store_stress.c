/* test_store_stress.c - the store under concurrency and crashes: threads sharing one group commit, processes
 * appending, flagging, expunging and reading at once, a writer killed with SIGKILL again and again, and change
 * notification across processes. Every run ends with a clean store_check. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/err.h"
#include "store/store.h"
#include "common/util.h"

#include <errno.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define G1 "0123456789abcdef0123456789abcdef"
#define G2 "fedcba9876543210fedcba9876543210"

static char tmpdir[64];

static void make_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ix-stress-XXXXXX");
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

static struct store *open_store(int no_sync)
{
	struct store_settings set;
	store_settings_default(&set);
	set.no_sync = no_sync;
	struct store *st = NULL;
	struct buf err = BUF_INIT;
	if (store_open(tmpdir, &set, &st, &err) != 0)
		fprintf(stderr, "store_open: %s\n", buf_cstr(&err));
	buf_free(&err);
	return st;
}

static int append_msg(struct store *st, const char *guid, const char *guid2, unsigned n, uint32_t *uid_r)
{
	char *msg = xasprintf("From: load@example.com\r\nSubject: message %u\r\nMessage-ID: <%u.%ld@example.com>\r\n"
			      "\r\nBody of message %u from process %ld.\r\n",
			      n, n, (long)getpid(), n, (long)getpid());
	struct store_target t[2] = { { .guid = guid }, { .guid = guid2 } };
	struct store_append a = { .data = msg, .len = strlen(msg), .targets = t, .ntargets = guid2 ? 2 : 1 };
	int ret = store_append(st, &a, NULL);
	if (uid_r != NULL)
		*uid_r = t[0].uid;
	free(msg);
	return ret;
}

static int check_clean(struct store *st)
{
	struct buf rep = BUF_INIT;
	unsigned problems = 99;
	int ret = store_check(st, 0, &rep, &problems, NULL);
	if (ret != 0 || problems != 0)
		fprintf(stderr, "store_check: %d, %u problems\n%s", ret, problems, buf_cstr(&rep));
	buf_free(&rep);
	return ret == 0 && problems == 0;
}

/* ---- threads in one process share one group commit ---- */

#define THREADS 16u
#define PER_THREAD 25u

struct thread_arg {
	struct store *st;
	unsigned id;
	uint32_t uids[PER_THREAD];
	int failures;
};

static void *thread_appender(void *p)
{
	struct thread_arg *a = p;
	for (unsigned i = 0; i < PER_THREAD; i++)
		if (append_msg(a->st, G1, NULL, a->id * 1000 + i, &a->uids[i]) != 0)
			a->failures++;
	return NULL;
}

static void threads_group_commit(void)
{
	make_tmp();
	struct store *st = open_store(0); /* synced: the real path */
	test_assert(st != NULL);
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){ .st = st, .id = i };
		test_assert(pthread_create(&th[i], NULL, thread_appender, &args[i]) == 0);
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	/* every UID handed out once */
	static uint8_t seen[THREADS * PER_THREAD + 1];
	memset(seen, 0, sizeof(seen));
	for (unsigned i = 0; i < THREADS; i++) {
		test_assert(args[i].failures == 0);
		for (unsigned j = 0; j < PER_THREAD; j++) {
			uint32_t uid = args[i].uids[j];
			test_assert(uid >= 1 && uid <= THREADS * PER_THREAD && !seen[uid]);
			seen[uid] = 1;
		}
	}
	struct store_stats stats;
	store_get_stats(st, &stats);
	printf("# %u appends from %u threads in %llu synced commits\n", THREADS * PER_THREAD, THREADS,
	       (unsigned long long)stats.commits);
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == THREADS * PER_THREAD && info.uidnext == THREADS * PER_THREAD + 1);
	store_folder_info_free(&info);
	test_assert(check_clean(st));
	store_close(&st);
	remove_tmp();
}

/* Batches mixing operations that fail (no such folder, over quota) with ones that succeed: each failure leaves no
 * trace and disturbs none of the others (the batch runs again with each operation in a nested transaction). */
static void *thread_mixed(void *p)
{
	struct thread_arg *a = p;
	for (unsigned i = 0; i < PER_THREAD; i++) {
		char *msg = xasprintf("Subject: mixed %u/%u\r\n\r\nbody\r\n", a->id, i);
		struct store_target t = { .guid = G1 };
		if (i % 3 == 1)
			t.folder = "Missing";
		else if (i % 3 == 2)
			t.quota_messages = 1; /* G1 holds more than one message from the first round on */
		struct store_append ap = { .data = msg, .len = strlen(msg), .targets = &t, .ntargets = 1 };
		int ret = store_append(a->st, &ap, NULL);
		if (i % 3 == 0 && ret == 0)
			a->uids[i] = t.uid;
		else if (i % 3 == 0 || (i % 3 == 1 && ret != IX_ENOTFOUND) || (i % 3 == 2 && ret != IX_ELIMIT))
			a->failures++;
		free(msg);
	}
	return NULL;
}

static void failing_ops_in_batches(void)
{
	make_tmp();
	struct store *st = open_store(1);
	test_assert(st != NULL);
	test_assert(append_msg(st, G1, NULL, 1, NULL) == 0 && append_msg(st, G1, NULL, 2, NULL) == 0);
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){ .st = st, .id = i };
		test_assert(pthread_create(&th[i], NULL, thread_mixed, &args[i]) == 0);
	}
	unsigned ok = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		test_assert(args[i].failures == 0);
		for (unsigned j = 0; j < PER_THREAD; j += 3)
			ok += args[i].uids[j] != 0;
	}
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == ok + 2 && info.uidnext == ok + 3);
	store_folder_info_free(&info);
	test_assert(store_folder_status(st, G1, "Missing", NULL, &info, NULL) == IX_ENOTFOUND);
	struct store_stats stats;
	store_get_stats(st, &stats);
	printf("# %u appends succeeded and %u failed in %llu commits\n", ok, THREADS * PER_THREAD - ok,
	       (unsigned long long)stats.commits);
	test_assert(check_clean(st));
	store_close(&st);
	remove_tmp();
}

/* ---- processes: appenders, a flagger/expunger and a reader at once ---- */

#define APPENDERS 3u
#define PER_APPENDER 120u

static int child_appender(unsigned id)
{
	struct store *st = open_store(1);
	if (st == NULL)
		return 1;
	int bad = 0;
	for (unsigned i = 0; i < PER_APPENDER; i++)
		if (append_msg(st, G1, i % 10 == 0 ? G2 : NULL, id * 10000 + i, NULL) != 0)
			bad++;
	store_close(&st);
	return bad ? 1 : 0;
}

static int child_flagger(void)
{
	struct store *st = open_store(1);
	if (st == NULL)
		return 1;
	int bad = 0;
	srand((unsigned)getpid());
	for (unsigned round = 0; round < 60; round++) {
		struct store_msg *list;
		size_t n;
		if (store_msg_list(st, G1, NULL, NULL, &list, &n, NULL) != 0) {
			usleep(1000); /* the mailbox may not exist yet */
			continue;
		}
		if (n > 0) {
			uint32_t pick[4];
			for (int i = 0; i < 4; i++)
				pick[i] = list[(size_t)rand() % n].uid;
			struct store_flag_update u = { .uids = pick,
						       .nuids = 4,
						       .mode = STORE_FLAGS_ADD,
						       .flags = round % 2 ? STORE_FLAG_SEEN : STORE_FLAG_DELETED,
						       .keywords = round % 3 ? NULL : "$Checked" };
			if (store_flags(st, G1, NULL, &u, NULL) != 0)
				bad++;
			free(u.failed_r);
			if (round % 5 == 0 && store_expunge(st, G1, NULL, NULL, 0, NULL, NULL, NULL) != 0)
				bad++;
			if (round % 7 == 0) {
				uint32_t dst[1];
				if (store_copy(st, G1, NULL, pick, 1, G1, "Archive", 1, 0, 0, dst, NULL, NULL) != 0)
					bad++;
			}
		}
		store_msg_list_free(&list, n);
	}
	store_close(&st);
	return bad ? 1 : 0;
}

static int child_reader(void)
{
	struct store *st = open_store(1);
	if (st == NULL)
		return 1;
	int bad = 0;
	struct buf body = BUF_INIT;
	for (unsigned round = 0; round < 200; round++) {
		struct store_msg *list;
		size_t n;
		if (store_msg_list(st, G1, NULL, NULL, &list, &n, NULL) != 0)
			continue;
		for (size_t i = 0; i < n; i += 7) {
			buf_reset(&body);
			int ret = store_fetch_body(st, G1, NULL, list[i].uid, 0, 0, &body, NULL);
			if (ret == 0 && body.len != list[i].size)
				bad++;
			else if (ret != 0 && ret != IX_ENOTFOUND)
				bad++;
		}
		/* uids strictly increasing in one snapshot */
		for (size_t i = 1; i < n; i++)
			if (list[i].uid <= list[i - 1].uid)
				bad++;
		store_msg_list_free(&list, n);
	}
	buf_free(&body);
	store_close(&st);
	return bad ? 1 : 0;
}

static void processes_concurrently(void)
{
	make_tmp();
	pid_t pids[APPENDERS + 2];
	for (unsigned i = 0; i < APPENDERS + 2; i++) {
		pids[i] = fork();
		test_assert(pids[i] >= 0);
		if (pids[i] == 0) {
			int rc = i < APPENDERS ? child_appender(i) : i == APPENDERS ? child_flagger() : child_reader();
			_exit(rc);
		}
	}
	int failed = 0;
	for (unsigned i = 0; i < APPENDERS + 2; i++) {
		int status;
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	test_assert(failed == 0);
	struct store *st = open_store(1);
	test_assert(st != NULL);
	test_assert(check_clean(st));
	/* nothing lost: every appended message is in INBOX, Archive or retention */
	struct store_folder_info inbox, archive;
	size_t retained;
	test_assert(store_folder_status(st, G1, NULL, NULL, &inbox, NULL) == 0);
	test_assert(store_folder_status(st, G1, "Archive", NULL, &archive, NULL) == 0);
	test_assert(store_retention_count(st, G1, &retained, NULL) == 0);
	test_assert(inbox.messages + archive.messages + retained == APPENDERS * PER_APPENDER);
	test_assert(inbox.uidnext == APPENDERS * PER_APPENDER + 1);
	store_folder_info_free(&inbox);
	store_folder_info_free(&archive);
	struct store_quota_use q;
	test_assert(store_quota_get(st, G2, &q, NULL) == 0 && q.messages == APPENDERS * (PER_APPENDER / 10));
	store_close(&st);
	remove_tmp();
}

/* ---- crash: a writer killed with SIGKILL at random moments ---- */

#define CRASHES 20u

static void crash_writer(int fd, unsigned round)
{
	struct store *st = open_store(0);
	if (st == NULL)
		_exit(2);
	for (unsigned i = 0;; i++) {
		uint32_t uid;
		if (append_msg(st, G1, i % 4 == 0 ? G2 : NULL, round * 100000 + i, &uid) != 0)
			_exit(3);
		/* reported only after the call returned: the append is durable */
		if (write_full(fd, &uid, sizeof(uid)) < 0)
			_exit(4);
		/* other writes to be killed in the middle of: flags, copies, and expunges in another folder */
		struct store_flag_update u = { .uids = &uid,
					       .nuids = 1,
					       .mode = STORE_FLAGS_ADD,
					       .flags = i % 2 ? STORE_FLAG_SEEN : STORE_FLAG_FLAGGED,
					       .keywords = "$Crash" };
		if (store_flags(st, G1, NULL, &u, NULL) != 0)
			_exit(5);
		free(u.failed_r);
		uint32_t dst = 0;
		if (i % 3 == 0 && store_copy(st, G1, NULL, &uid, 1, G2, "Archive", 0, 0, 0, &dst, NULL, NULL) != 0)
			_exit(6);
		if (i % 5 == 0 && store_expunge(st, G2, "Archive", NULL, 0, NULL, NULL, NULL) != 0)
			_exit(7);
		if (i % 5 == 1) {
			struct store_flag_update d = {
				.uids = &dst, .nuids = 1, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_DELETED
			};
			store_flags(st, G2, "Archive", &d, NULL);
			free(d.failed_r);
		}
	}
}

static void crash_kill9(void)
{
	make_tmp();
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	uint32_t max_uid = 0;
	size_t total = 0;
	for (unsigned round = 0; round < CRASHES; round++) {
		int p[2];
		test_assert(pipe(p) == 0);
		pid_t pid = fork();
		test_assert(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_writer(p[1], round);
		}
		close(p[1]);
		/* wait for the first commit, then kill at a random moment */
		uint32_t first;
		ssize_t got = read(p[0], &first, sizeof(first));
		usleep((useconds_t)(rand() % 40000));
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		test_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		uint32_t *uids = NULL;
		size_t n = 0;
		if (got == sizeof(first)) {
			uids = xrealloc(uids, (n + 1) * sizeof(*uids));
			uids[n++] = first;
		}
		uint32_t uid;
		while (read(p[0], &uid, sizeof(uid)) == sizeof(uid)) {
			uids = xrealloc(uids, (n + 1) * sizeof(*uids));
			uids[n++] = uid;
		}
		close(p[0]);
		struct store *st = open_store(0);
		test_assert(st != NULL);
		int missing = 0;
		for (size_t i = 0; i < n; i++) {
			struct store_msg m;
			if (store_msg_get(st, G1, NULL, uids[i], NULL, &m, NULL) != 0)
				missing++;
			else
				store_msg_free(&m);
			if (uids[i] <= max_uid)
				missing++; /* a UID handed out twice */
		}
		if (n > 0)
			max_uid = uids[n - 1];
		total += n;
		free(uids);
		int clean = check_clean(st);
		store_close(&st);
		test_assert(missing == 0);
		test_assert(clean);
	}
	printf("# %u kills, %zu acknowledged appends all present\n", CRASHES, total);
	remove_tmp();
}

/* ---- notification across processes ---- */

static void notify_across_processes(void)
{
	make_tmp();
	struct store *st = open_store(1);
	test_assert(st != NULL);
	struct store_watch *w = NULL;
	test_assert(store_watch_create(st, G1, &w, NULL) == 0);
	unsigned long long start = now_usec();
	pid_t pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		struct store *cs = open_store(1);
		int rc = cs != NULL && append_msg(cs, G1, NULL, 1, NULL) == 0 ? 0 : 1;
		store_close(&cs);
		_exit(rc);
	}
	struct pollfd pfd = { store_watch_fd(w), POLLIN, 0 };
	int n = poll(&pfd, 1, 5000);
	unsigned long long waited = now_usec() - start;
	int status;
	waitpid(pid, &status, 0);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	test_assert(n == 1 && store_watch_drain(w) == 1);
	printf("# notified %llu us after the writer started\n", waited);
	struct store_change *ch;
	size_t nch;
	test_assert(store_changes(st, G1, NULL, 0, &ch, &nch, NULL) == 0 && nch == 1 && ch[0].uid == 1);
	free(ch);
	store_watch_destroy(&w);
	store_close(&st);
	remove_tmp();
}

/* ---- random operations, checked after every few steps ---- */

static void random_operations_stay_consistent(void)
{
	make_tmp();
	struct store *st = open_store(1);
	test_assert(st != NULL);
	static const char *const guids[] = { G1, G2 };
	static const char *const folders[] = { "INBOX", "Archive", "Work", "Work/Sub", "Trash" };
	srand(12345);
	store_folder_create(st, G1, "Work/Sub", NULL);
	store_folder_create(st, G2, "Work/Sub", NULL);
	unsigned ops = 0, bad = 0;
	for (unsigned step = 0; step < 2000; step++) {
		const char *g = guids[rand() % 2], *f = folders[rand() % 5];
		const char *g2 = guids[rand() % 2], *f2 = folders[rand() % 5];
		struct store_msg *list = NULL;
		size_t n = 0;
		store_msg_list(st, g, f, NULL, &list, &n, NULL);
		uint32_t pick[3] = { 0, 0, 0 };
		for (int i = 0; i < 3 && n > 0; i++)
			pick[i] = list[(size_t)rand() % n].uid;
		store_msg_list_free(&list, n);
		int ret = 0;
		switch (rand() % 10) {
		case 0:
		case 1:
		case 2: {
			struct store_target t[2] = { { .guid = g, .folder = f }, { .guid = g2, .folder = f2 } };
			char *msg = xasprintf("Subject: random %u\r\n\r\nbody %u\r\n", step % 37, step % 37);
			struct store_append a = { .data = msg,
						  .len = strlen(msg),
						  .flags = (unsigned)rand() & 0x1f,
						  .keywords = rand() % 2 ? "a b" : NULL,
						  .targets = t,
						  .ntargets = 1 + (unsigned)(rand() % 2) };
			ret = store_append(st, &a, NULL);
			free(msg);
			break;
		}
		case 3: {
			struct store_flag_update u = { .uids = pick,
						       .nuids = 3,
						       .mode = (enum store_flag_mode)(rand() % 3),
						       .flags = (unsigned)rand() & 0x1f,
						       .keywords = rand() % 2 ? "b c" : NULL,
						       .unchangedsince = rand() % 3 ? 0 : 5 };
			ret = store_flags(st, g, f, &u, NULL);
			free(u.failed_r);
			break;
		}
		case 4: {
			uint32_t dst[3];
			ret = store_copy(st, g, f, pick, 3, g2, f2, rand() % 2, 0, 0, dst, NULL, NULL);
			if (ret == IX_EINVAL)
				ret = 0; /* a move into the same folder */
			break;
		}
		case 5:
			ret = rand() % 2 ? store_expunge(st, g, f, NULL, 0, NULL, NULL, NULL)
					 : store_expunge(st, g, f, pick, 2, NULL, NULL, NULL);
			break;
		case 6: {
			size_t c;
			ret = rand() % 2 ? store_recover(st, g, 0, &c, NULL)
					 : store_retention_purge(st, NULL, (int64_t)time(NULL) + 10, &c, NULL);
			break;
		}
		case 7: ret = store_clear_recent(st, g, f, 0, NULL); break;
		case 8:
			/* rename a subtree back and forth */
			if (store_folder_rename(st, g, "Work", "Projects/Work", NULL) == 0)
				ret = store_folder_rename(st, g, "Projects/Work", "Work", NULL);
			break;
		default:
			/* delete and recreate a leaf: its messages go to retention */
			if (store_folder_delete(st, g, "Trash", NULL) == 0)
				ret = store_folder_create(st, g, "Trash", NULL);
			break;
		}
		if (ret != 0 && ret != IX_ENOTFOUND)
			bad++;
		if (ret == 0)
			ops++;
		if (step % 25 == 24) {
			struct buf rep = BUF_INIT;
			unsigned problems = 99;
			if (store_check(st, 0, &rep, &problems, NULL) != 0 || problems != 0) {
				fprintf(stderr, "after step %u:\n%s", step, buf_cstr(&rep));
				bad++;
			}
			buf_free(&rep);
			if (bad)
				break;
		}
	}
	test_assert(bad == 0);
	test_assert(ops > 1000);
	struct store_quota_use q1, q2;
	test_assert(store_quota_get(st, G1, &q1, NULL) == 0 && store_quota_get(st, G2, &q2, NULL) == 0);
	printf("# %u random operations succeeded; %llu + %llu messages left\n", ops, (unsigned long long)q1.messages,
	       (unsigned long long)q2.messages);
	test_assert(check_clean(st));
	store_close(&st);
	remove_tmp();
}

/* ---- one process grows the map, another adopts the new size ---- */

static void map_growth_across_processes(void)
{
	make_tmp();
	struct store_settings set;
	store_settings_default(&set);
	set.no_sync = 1;
	set.map_size = 1 << 20;
	struct store *st = NULL;
	test_assert(store_open(tmpdir, &set, &st, NULL) == 0);
	uint32_t uid;
	test_assert(append_msg(st, G1, NULL, 0, &uid) == 0);
	pid_t pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		struct store *cs = NULL;
		int rc = store_open(tmpdir, &set, &cs, NULL);
		char *big = xmalloc(64 * 1024 + 1);
		for (unsigned i = 0; rc == 0 && i < 60; i++) {
			snprintf(big, 64, "Subject: %u\r\n\r\n", i);
			size_t l = strlen(big);
			memset(big + l, 'z', 64 * 1024 - l);
			big[64 * 1024] = '\0';
			struct store_target t = { .guid = G2 };
			struct store_append a = { .data = big, .len = 64 * 1024, .targets = &t, .ntargets = 1 };
			rc = store_append(cs, &a, NULL);
		}
		free(big);
		store_close(&cs);
		_exit(rc == 0 ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* our map is still 1 MiB: reading and writing must adopt the grown size */
	struct store_folder_info info;
	test_assert(store_folder_status(st, G2, NULL, NULL, &info, NULL) == 0 && info.messages == 60);
	store_folder_info_free(&info);
	struct buf body = BUF_INIT;
	test_assert(store_fetch_body(st, G2, NULL, 60, 0, 0, &body, NULL) == 0 && body.len == 64 * 1024);
	buf_free(&body);
	test_assert(append_msg(st, G1, NULL, 1, &uid) == 0 && uid == 2);
	struct store_stats stats;
	store_get_stats(st, &stats);
	test_assert(stats.map_size > (1 << 20));
	test_assert(check_clean(st));
	store_close(&st);
	remove_tmp();
}

/* ---- a store opened while another process grows it ---- */

struct opener {
	struct store_settings set;
	volatile pid_t tid;
	int result;
	struct buf err;
};

static void *open_in_thread(void *arg)
{
	struct opener *o = arg;
	o->tid = gettid();
	struct store *st = NULL;
	o->result = store_open(tmpdir, &o->set, &st, &o->err);
	store_close(&st);
	return NULL;
}

/* The database open at store_open runs a transaction like any other: when another process grew the map between the
 * environment's open and that transaction (MDB_MAP_RESIZED), it adopts the new size instead of failing. The other
 * process holds LMDB's writer lock with the growth written but not committed, the open starts and waits on that
 * lock (its environment sized from the old data), then the growth is committed. */
static void open_while_growing(void)
{
	make_tmp();
	struct opener o = { .err = BUF_INIT };
	store_settings_default(&o.set);
	o.set.no_sync = 1;
	o.set.map_size = 1 << 20;
	struct store *st = NULL;
	test_assert(store_open(tmpdir, &o.set, &st, NULL) == 0);
	store_close(&st);
	int written[2], commit[2];
	test_assert(pipe(written) == 0 && pipe(commit) == 0);
	pid_t pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		char c = 0;
		static char pad[4 << 20];
		MDB_val k = { 3, (void *)"pad" }, v = { sizeof(pad), pad };
		int rc = mdb_env_create(&env);
		if (rc == 0 && (rc = mdb_env_set_maxdbs(env, 16)) == 0 &&
		    (rc = mdb_env_set_mapsize(env, 64 << 20)) == 0 &&
		    (rc = mdb_env_open(env, tmpdir, MDB_NOSYNC, 0600)) == 0 &&
		    (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0 &&
		    (rc = mdb_dbi_open(txn, "pad", MDB_CREATE, &dbi)) == 0)
			rc = mdb_put(txn, dbi, &k, &v, 0);
		if (write(written[1], &c, 1) != 1 || read(commit[0], &c, 1) != 1)
			rc = -1;
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		_exit(rc == 0 ? 0 : 1);
	}
	char c;
	test_assert(read(written[0], &c, 1) == 1);
	pthread_t th;
	test_assert(pthread_create(&th, NULL, open_in_thread, &o) == 0);
	unsigned long long deadline = now_usec() + 10000000ULL;
	while ((o.tid == 0 || !test_thread_sleeps(o.tid)) && now_usec() < deadline)
		usleep(1000);
	test_assert(write(commit[1], "c", 1) == 1);
	pthread_join(th, NULL);
	int status;
	waitpid(pid, &status, 0);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (o.result != 0)
		printf("# store_open: %s\n", buf_cstr(&o.err));
	test_assert(o.result == 0);
	buf_free(&o.err);
	close(written[0]);
	close(written[1]);
	close(commit[0]);
	close(commit[1]);
	remove_tmp();
}

TEST_MAIN("store_stress", TEST_CASE(map_growth_across_processes), TEST_CASE(open_while_growing),
	  TEST_CASE(random_operations_stay_consistent), TEST_CASE(threads_group_commit),
	  TEST_CASE(failing_ops_in_batches), TEST_CASE(processes_concurrently), TEST_CASE(crash_kill9),
	  TEST_CASE(notify_across_processes))
