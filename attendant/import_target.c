/* import_target.c - the mailbox an `interchange import` fills: opening it (directory, lock, store), storing
 * messages in batches with the user's quota, finding a batch again after a stop, and the lines that say how it goes. */
#include "attendant/import.h"
#include "attendant/cli.h"
#include "attendant/maintenance.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define IMPORT_PROGRESS_SECS 2.0 /* a progress line for a long folder */
#define IMPORT_ERRORS_SHOWN 20   /* per-message errors printed per folder */
/* Tests only: import_store_batch's hook (import.h). */
#define IMPORT_TEST_KILL_ENV "INTERCHANGE_TEST_IMPORT_KILL_AFTER"

double import_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void import_human_bytes(struct buf *out, uint64_t n)
{
	if (n < 10 * 1024)
		buf_printf(out, "%llu bytes", (unsigned long long)n);
	else if (n < 1024ull * 1024)
		buf_printf(out, "%.1f KB", (double)n / 1024);
	else
		buf_printf(out, "%.1f MB", (double)n / (1024 * 1024));
}

enum store_special_use import_use_by_name(const char *name)
{
	static const struct {
		const char *name;
		enum store_special_use use;
	} names[] = {
		{ "Sent", STORE_USE_SENT },           { "Sent Items", STORE_USE_SENT },
		{ "Sent Messages", STORE_USE_SENT },  { "Sent Mail", STORE_USE_SENT },
		{ "Drafts", STORE_USE_DRAFTS },       { "Trash", STORE_USE_TRASH },
		{ "Deleted Items", STORE_USE_TRASH }, { "Deleted Messages", STORE_USE_TRASH },
		{ "Junk", STORE_USE_JUNK },           { "Junk E-mail", STORE_USE_JUNK },
		{ "Junk Email", STORE_USE_JUNK },     { "Spam", STORE_USE_JUNK },
		{ "Archive", STORE_USE_ARCHIVE },     { "Archives", STORE_USE_ARCHIVE },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].use;
	return STORE_USE_NONE;
}

int import_target_open(const struct config *cfg, const char *login, struct import_target *t, struct buf *error_r)
{
	memset(t, 0, sizeof(*t));
	t->login = login;
	t->lock = -1;
	t->t0 = import_now();
	const char *kill_after = getenv(IMPORT_TEST_KILL_ENV);
	t->kill_after = kill_after != NULL ? (unsigned)strtoul(kill_after, NULL, 10) : 0;
	struct prov *prov = NULL;
	int ret = prov_open(cfg, &prov, error_r);
	if (ret == 0)
		ret = prov_user_mailbox(prov, login, &t->guid, &t->quota_bytes, &t->quota_messages, error_r);
	prov_close(&prov);
	if (ret != 0)
		return ret;
	t->dir = config_path(cfg, "import");
	if (mkdir_p(t->dir, 0755) != 0) {
		buf_printf(error_r, "cannot create %s", t->dir);
		return IX_EIO;
	}
	/* while this runs the quota warning waits, and no other import into the mailbox starts */
	char rel[64];
	snprintf(rel, sizeof(rel), MAINT_IMPORT_LOCK, t->guid);
	t->lock_path = config_path(cfg, rel);
	t->lock = open(t->lock_path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644); /* the attendant reads it */
	if (t->lock < 0) {
		buf_printf(error_r, "cannot create %s", t->lock_path);
		return IX_EIO;
	}
	if (flock(t->lock, LOCK_EX | LOCK_NB) != 0) {
		close(t->lock);
		t->lock = -1;
		buf_printf(error_r, "another import into the mailbox of %s is running", login);
		return IX_EAGAIN;
	}
	if (cli_open_store(cfg, &t->st) != 0)
		return IX_EIO;
	return store_mailbox_ensure(t->st, t->guid, error_r);
}

void import_target_close(struct import_target *t, bool finished)
{
	if (t->st != NULL) {
		double secs = import_now() - t->t0;
		struct buf sum = BUF_INIT;
		import_human_bytes(&sum, t->bytes);
		printf("%s %s: %zu folder%s, %zu message%s copied (%s) in %.1f s (%.0f messages/s, %.2f MB/s), %zu flag "
		       "change%s, %zu removed, %zu failed\n",
		       finished ? "Imported" : "Stopped importing", t->login, t->folders, t->folders == 1 ? "" : "s",
		       t->copied, t->copied == 1 ? "" : "s", buf_cstr(&sum), secs,
		       secs > 0 ? (double)t->copied / secs : 0, secs > 0 ? (double)t->bytes / secs / (1024 * 1024) : 0,
		       t->changed, t->changed == 1 ? "" : "s", t->removed, t->failed);
		buf_free(&sum);
		struct store_quota_use use = { 0 };
		struct buf err = BUF_INIT;
		if (t->quota_refused > 0)
			printf("Quota: %zu message%s did not fit in the mailbox of %s: raise its quota (interchange user "
			       "quota) and run the import again\n",
			       t->quota_refused, t->quota_refused == 1 ? "" : "s", t->login);
		else if (store_quota_get(t->st, t->guid, &use, &err) == 0 && use.warned)
			printf("Quota: the mailbox of %s is past its warning level; the warning held during the import "
			       "goes out at the next maintenance\n",
			       t->login);
		buf_free(&err);
		fflush(stdout);
	}
	if (t->lock >= 0) {
		unlink(t->lock_path);
		close(t->lock);
	}
	store_close(&t->st);
	free(t->lock_path);
	free(t->dir);
	free(t->guid);
	free(t->from);
	free(t->to);
	memset(t, 0, sizeof(*t));
	t->lock = -1;
}

void import_folder_begin(struct import_target *t, const char *from, const char *to)
{
	free(t->from);
	free(t->to);
	t->from = xstrdup(from);
	t->to = xstrdup(to);
	t->known = t->todo = t->done = t->errors = 0;
	t->todo_bytes = t->done_bytes = 0;
	t->changed_before = t->changed;
	t->removed_before = t->removed;
	t->folder_t0 = t->last_print = import_now();
}

void import_folder_todo(struct import_target *t, size_t known, size_t todo, uint64_t todo_bytes)
{
	t->known = known;
	t->todo = todo;
	t->todo_bytes = todo_bytes;
	t->folder_t0 = t->last_print = import_now();
}

/* The line per folder: done/total messages and bytes, the rate, the time left. */
static void print_progress(struct import_target *t, bool done)
{
	double secs = import_now() - t->folder_t0;
	struct buf line = BUF_INIT;
	size_t changed = t->changed - t->changed_before, removed = t->removed - t->removed_before;
	buf_printf(&line, "  %s -> %s: ", t->from, t->to);
	if (t->todo == 0) {
		buf_printf(&line, "nothing new (%zu message%s)", t->known, t->known == 1 ? "" : "s");
	} else {
		buf_printf(&line, "%zu of %zu new message%s, ", t->done, t->todo, t->todo == 1 ? "" : "s");
		import_human_bytes(&line, t->done_bytes);
		buf_append_str(&line, " of ");
		import_human_bytes(&line, t->todo_bytes);
	}
	if (done && changed > 0)
		buf_printf(&line, ", %zu flag change%s", changed, changed == 1 ? "" : "s");
	if (done && removed > 0)
		buf_printf(&line, ", %zu removed (deleted there)", removed);
	if (secs > 0 && t->done > 0) {
		double rate = (double)t->done_bytes / secs;
		buf_printf(&line, ", %.0f messages/s, %.2f MB/s", (double)t->done / secs, rate / (1024 * 1024));
		if (!done && rate > 0 && t->todo_bytes > t->done_bytes)
			buf_printf(&line, ", about %.0f s left", (double)(t->todo_bytes - t->done_bytes) / rate);
	}
	if (done && t->todo > 0)
		buf_printf(&line, " (%.2f s)", secs);
	puts(buf_cstr(&line));
	fflush(stdout);
	buf_free(&line);
	t->last_print = import_now();
}

void import_folder_end(struct import_target *t)
{
	print_progress(t, true);
	t->folders++;
}

void import_error(struct import_target *t, const char *what, const char *why)
{
	t->failed++;
	if (t->errors++ < IMPORT_ERRORS_SHOWN)
		printf("  error: %s, %s: %s (skipped; a later run tries again)\n", t->from, what, why);
	else if (t->errors == IMPORT_ERRORS_SHOWN + 1)
		printf("  error: %s: more messages failed (counted in the summary)\n", t->from);
}

/* The quota in words, for a refusal. */
static void quota_words(struct import_target *t, struct buf *out)
{
	struct store_quota_use use = { 0 };
	struct buf err = BUF_INIT;
	buf_append_str(out, "the mailbox is full: ");
	if (store_quota_get(t->st, t->guid, &use, &err) == 0) {
		import_human_bytes(out, use.bytes);
		buf_printf(out, " in %llu messages used", (unsigned long long)use.messages);
	}
	if (t->quota_bytes > 0) {
		buf_append_str(out, " of a quota of ");
		import_human_bytes(out, t->quota_bytes);
	}
	if (t->quota_messages > 0)
		buf_printf(out, "%s%llu messages", t->quota_bytes > 0 ? " and " : " of a quota of ", t->quota_messages);
	buf_free(&err);
}

int import_store_batch(struct import_target *t, struct import_msg *msgs, size_t n)
{
	struct store_target *tg = xcalloc(n > 0 ? n : 1, sizeof(*tg));
	struct store_append *req = xcalloc(n > 0 ? n : 1, sizeof(*req));
	struct buf *err = xcalloc(n > 0 ? n : 1, sizeof(*err));
	for (size_t i = 0; i < n; i++) {
		const struct import_msg *m = &msgs[i];
		tg[i] = (struct store_target){ .guid = t->guid,
					       .folder = m->folder != NULL ? m->folder : t->to,
					       .quota_bytes = t->quota_bytes,
					       .quota_messages = t->quota_messages };
		req[i] = (struct store_append){ .data = m->data,
						.len = m->len,
						.internal_date = m->date,
						.flags = m->flags,
						.keywords = m->keywords != NULL && m->keywords[0] != '\0' ? m->keywords
													  : NULL,
						.targets = &tg[i],
						.ntargets = 1 };
		buf_init(&err[i]);
	}
	int first = store_append_batch(t->st, req, n, err);
	if (++t->batches == t->kill_after)
		raise(SIGKILL);
	for (size_t i = 0; i < n; i++) {
		struct import_msg *m = &msgs[i];
		m->result = tg[i].result;
		m->uid = m->result == 0 ? tg[i].uid : 0;
		t->done++;
		if (m->result == 0) {
			t->copied++;
			t->bytes += m->len;
			t->done_bytes += m->len;
		} else if (m->result == IX_ELIMIT && !req[i].refused) {
			t->quota_refused++;
			buf_reset(&err[i]);
			quota_words(t, &err[i]);
			import_error(t, m->what, buf_cstr(&err[i]));
		} else {
			import_error(t, m->what, buf_cstr(&err[i]));
		}
		buf_free(&err[i]);
	}
	free(err);
	free(req);
	free(tg);
	if (import_now() - t->last_print > IMPORT_PROGRESS_SECS && t->done < t->todo)
		print_progress(t, false);
	return first;
}

uint32_t import_uidnext(struct import_target *t, const char *folder)
{
	struct store_folder_info info = { 0 };
	struct buf err = BUF_INIT;
	uint32_t uidnext = 1;
	if (store_folder_status(t->st, t->guid, folder, NULL, &info, &err) == 0)
		uidnext = info.uidnext;
	store_folder_info_free(&info);
	buf_free(&err);
	return uidnext;
}

void import_sha256_hex(const char *data, size_t len, struct buf *out)
{
	uint8_t hash[32];
	unsigned hlen = sizeof(hash);
	if (EVP_Digest(data, len, hash, &hlen, EVP_sha256(), NULL) != 1)
		fatal("SHA-256 failed (OpenSSL)");
	for (size_t k = 0; k < sizeof(hash); k++)
		buf_printf(out, "%02x", hash[k]);
}

void import_sha256_parse(const char *hex, uint8_t hash[32])
{
	for (size_t k = 0; k < 32; k++) {
		unsigned v = 0;
		sscanf(hex + 2 * k, "%2x", &v);
		hash[k] = (uint8_t)v;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

size_t import_find_stored(struct import_target *t, const char *folder, uint32_t uidnext, const uint8_t (*hashes)[32],
			  size_t n, const uint32_t *claimed, size_t nclaimed, uint32_t *uid_r)
{
	memset(uid_r, 0, n * sizeof(*uid_r));
	struct store_msg *list = NULL;
	size_t count = 0, found = 0;
	struct buf err = BUF_INIT;
	if (n == 0 || store_msg_list(t->st, t->guid, folder, NULL, &list, &count, &err) != 0) {
		if (n > 0)
			printf("  warning: %s: %s\n", folder, buf_cstr(&err));
		buf_free(&err);
		return 0;
	}
	buf_free(&err);
	bool *used = xcalloc(count + 1, sizeof(*used));
	for (size_t k = 0; k < n; k++) {
		for (size_t i = 0; i < count; i++) {
			if (used[i] || list[i].uid < uidnext || memcmp(list[i].hash, hashes[k], 32) != 0 ||
			    (nclaimed > 0 &&
			     bsearch(&list[i].uid, claimed, nclaimed, sizeof(*claimed), cmp_u32) != NULL))
				continue;
			used[i] = true;
			uid_r[k] = list[i].uid;
			found++;
			break;
		}
	}
	free(used);
	store_msg_list_free(&list, count);
	return found;
}

size_t import_split_tabs(char *line, char **fields, size_t max)
{
	size_t n = 0;
	while (n < max) {
		fields[n++] = line;
		char *t = strchr(line, '\t');
		if (t == NULL)
			break;
		*t = '\0';
		line = t + 1;
	}
	return n;
}
