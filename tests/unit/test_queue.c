/* test_queue.c - unit tests for the durable queue: file format round trip, refusal of damaged files byte by byte,
 * files on disk (write, read, list, remove), ids and backoff. */
#include "tests/unit/test.h"
#include "common/err.h"
#include "transport/mta/queue.h"
#include "transport/smtp/smtp_parse.h"
#include "common/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void sample(struct queue_msg *m)
{
	queue_msg_init(m);
	queue_new_id(m->id);
	m->created = 1700000000;
	queue_set_field(&m->sender, "alice@example.com");
	queue_set_field(&m->envid, "env-1");
	m->ret = SMTP_RET_HDRS;
	queue_set_field(&m->msgid, "<id@x>");
	struct queue_rcpt *r = queue_msg_add_rcpt(m, "bob@remote.test", "Bob@Remote.test", SMTP_NOTIFY_FAILURE);
	r->attempts = 3;
	r->next_try = 1700000100;
	queue_set_field(&r->last_error, "451 4.4.1 connect\tfailed\r\ninjected: yes");
	queue_msg_add_rcpt(m, "carol@remote.test", NULL, 0)->state = QUEUE_RCPT_DONE;
	buf_append_str(&m->body, "Subject: hi\r\n\r\nbody\r\n");
}

static void format_round_trip(void)
{
	struct queue_msg m, r;
	sample(&m);
	struct buf img = BUF_INIT, err = BUF_INIT;
	queue_serialize(&m, &img);
	test_assert(queue_parse(img.data, img.len, true, &r, &err) == 0);
	test_assert_str(r.id, m.id);
	test_assert(r.created == 1700000000 && r.ret == SMTP_RET_HDRS);
	test_assert_str(r.sender, "alice@example.com");
	test_assert_str(r.envid, "env-1");
	test_assert(r.nrcpts == 2);
	test_assert_str(r.rcpts[0].addr, "bob@remote.test");
	test_assert_str(r.rcpts[0].orcpt, "Bob@Remote.test");
	test_assert(r.rcpts[0].attempts == 3 && r.rcpts[0].next_try == 1700000100);
	test_assert(r.rcpts[0].notify == SMTP_NOTIFY_FAILURE);
	/* control bytes in an error text cannot forge a line */
	test_assert(strchr(r.rcpts[0].last_error, '\n') == NULL && strchr(r.rcpts[0].last_error, '\t') == NULL);
	test_assert(r.rcpts[1].state == QUEUE_RCPT_DONE);
	test_assert(r.body.len == m.body.len && memcmp(r.body.data, m.body.data, m.body.len) == 0);
	queue_msg_free(&r);
	test_assert(queue_parse(img.data, img.len, false, &r, &err) == 0 && r.body.len == 0);
	queue_msg_free(&r);
	queue_msg_free(&m);
	buf_free(&img);
	buf_free(&err);
}

static void damaged_files_refused(void)
{
	struct queue_msg m, r;
	sample(&m);
	struct buf img = BUF_INIT, err = BUF_INIT;
	queue_serialize(&m, &img);
	size_t body_at = img.len - m.body.len;
	/* every truncation of the envelope part is refused, never read past */
	for (size_t n = 0; n < body_at; n++) {
		char *cut = xmalloc(n + 1);
		memcpy(cut, img.data, n);
		test_assert(queue_parse(cut, n, true, &r, &err) == IX_ECORRUPT);
		queue_msg_free(&r);
		free(cut);
	}
	/* a body that does not match its announced length */
	test_assert(queue_parse(img.data, img.len - 1, true, &r, &err) == IX_ECORRUPT);
	queue_msg_free(&r);
	const char *bad[] = {
		"IXQ 2\nid 1\nrcpt 0\t0\t0\t0\t0\ta@b\t\t\nbody 0\n",
		"IXQ 1\nid xyz\nrcpt 0\t0\t0\t0\t0\ta@b\t\t\nbody 0\n",
		"IXQ 1\nid 1\nrcpt 9\t0\t0\t0\t0\ta@b\t\t\nbody 0\n",
		"IXQ 1\nid 1\nrcpt 0\t0\t0\t0\t0\t\t\t\nbody 0\n",
		"IXQ 1\nid 1\nbody 0\n",
		"IXQ 1\nid 1\nrcpt 0\t0\t0\t0\t0\ta@b\t\t\nunknown x\nbody 0\n",
		"IXQ 1\nid 1\nrcpt 0\t0\t0\t0\t0\ta@b\t\t\nbody 99999999999999999999\n",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(bad); i++) {
		test_assert(queue_parse(bad[i], strlen(bad[i]), true, &r, &err) == IX_ECORRUPT);
		queue_msg_free(&r);
	}
	const char *good = "IXQ 1\nid 1\nrcpt 0\t0\t0\t0\t0\ta@b\t\t\nbody 0\n";
	test_assert(queue_parse(good, strlen(good), true, &r, &err) == 0 && r.nrcpts == 1);
	queue_msg_free(&r);
	queue_msg_free(&m);
	buf_free(&img);
	buf_free(&err);
}

static void files_on_disk(void)
{
	char dir[] = "/tmp/ixq-XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	char *qdir = xasprintf("%s/queue", dir);
	struct buf err = BUF_INIT;
	test_assert(queue_dir_ensure(qdir, &err) == 0);
	struct queue_msg a, b, r;
	sample(&a);
	sample(&b);
	test_assert(strcmp(a.id, b.id) < 0); /* ids sort in creation order */
	test_assert(queue_write(qdir, &b, &err) == 0);
	test_assert(queue_write(qdir, &a, &err) == 0);
	/* a temp file of an interrupted write is not a message */
	char *tmp = xasprintf("%s/%s.tmp.1", qdir, a.id);
	test_assert(write_file_atomic(tmp, "x", 1, 0600) == 0);
	char **ids;
	size_t n;
	test_assert(queue_list(qdir, &ids, &n, &err) == 0);
	test_assert(n == 2 && strcmp(ids[0], a.id) == 0 && strcmp(ids[1], b.id) == 0);
	queue_ids_free(&ids, n);
	/* rewrite with new state */
	a.rcpts[0].attempts = 4;
	test_assert(queue_write(qdir, &a, &err) == 0);
	test_assert(queue_read(qdir, a.id, true, &r, &err) == 0 && r.rcpts[0].attempts == 4);
	queue_msg_free(&r);
	test_assert(queue_remove(qdir, a.id, &err) == 0);
	test_assert(queue_read(qdir, a.id, true, &r, &err) == IX_ENOTFOUND);
	queue_msg_free(&r);
	test_assert(queue_remove(qdir, a.id, &err) == IX_ENOTFOUND);
	test_assert(queue_read(qdir, "../etc", true, &r, &err) == IX_EINVAL);
	queue_msg_free(&r);
	test_assert(queue_remove(qdir, b.id, &err) == 0);
	unlink(tmp);
	free(tmp);
	rmdir(qdir);
	rmdir(dir);
	free(qdir);
	queue_msg_free(&a);
	queue_msg_free(&b);
	buf_free(&err);
}

/* A write-back racing a delete (interchange queue delete while the MTA finishes an attempt) never brings the
 * message back: after both are done the file is gone, round after round. */
struct race {
	const char *qdir;
	struct queue_msg *m;
	atomic_int go;
	int updates_after_delete;
};

static void *updater(void *arg)
{
	struct race *r = arg;
	struct buf err = BUF_INIT;
	while (atomic_load(&r->go) == 0)
		;
	for (int i = 0; i < 50; i++) {
		if (queue_update(r->qdir, r->m, &err) == IX_ENOTFOUND)
			r->updates_after_delete++;
	}
	buf_free(&err);
	return NULL;
}

static void update_never_undoes_a_delete(void)
{
	char dir[] = "/tmp/ixq-XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	char *qdir = xasprintf("%s/queue", dir);
	struct buf err = BUF_INIT;
	test_assert(queue_dir_ensure(qdir, &err) == 0);
	struct queue_msg m, r;
	sample(&m);
	test_assert(queue_update(qdir, &m, &err) == IX_ENOTFOUND); /* not queued: nothing written */
	test_assert(queue_read(qdir, m.id, false, &r, &err) == IX_ENOTFOUND);
	queue_msg_free(&r);
	int resurrected = 0, refused = 0;
	for (int round = 0; round < 200; round++) {
		test_assert(queue_write(qdir, &m, &err) == 0);
		struct race rc = { .qdir = qdir, .m = &m };
		pthread_t t;
		test_assert(pthread_create(&t, NULL, updater, &rc) == 0);
		atomic_store(&rc.go, 1);
		test_assert(queue_remove(qdir, m.id, &err) == 0);
		pthread_join(t, NULL);
		refused += rc.updates_after_delete;
		if (queue_read(qdir, m.id, false, &r, &err) != IX_ENOTFOUND) {
			resurrected++;
			queue_remove(qdir, m.id, &err);
		}
		queue_msg_free(&r);
	}
	test_assert(resurrected == 0);
	test_assert(refused > 0); /* the updates did run after deletes */
	char *lock = xasprintf("%s/.lock", qdir);
	char **ids;
	size_t n;
	test_assert(queue_list(qdir, &ids, &n, &err) == 0 && n == 0); /* the lock file is not a message */
	queue_ids_free(&ids, n);
	unlink(lock);
	free(lock);
	rmdir(qdir);
	rmdir(dir);
	free(qdir);
	queue_msg_free(&m);
	buf_free(&err);
}

static void ids_and_backoff(void)
{
	char a[QUEUE_ID_MAX + 1], b[QUEUE_ID_MAX + 1];
	queue_new_id(a);
	queue_new_id(b);
	test_assert(queue_id_valid(a) && queue_id_valid(b) && strcmp(a, b) != 0);
	test_assert(!queue_id_valid("") && !queue_id_valid("abc.tmp") && !queue_id_valid("ABC") &&
		    !queue_id_valid("0123456789abcdef0123456789abcdef0"));
	test_assert(queue_backoff(1, 60, 3600) == 60);
	test_assert(queue_backoff(2, 60, 3600) == 120);
	test_assert(queue_backoff(5, 60, 3600) == 960);
	test_assert(queue_backoff(7, 60, 3600) == 3600);
	test_assert(queue_backoff(1000000, 60, 3600) == 3600);
}

TEST_MAIN("queue", TEST_CASE(format_round_trip), TEST_CASE(damaged_files_refused), TEST_CASE(files_on_disk),
	  TEST_CASE(update_never_undoes_a_delete), TEST_CASE(ids_and_backoff))
