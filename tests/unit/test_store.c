/* test_store.c - unit tests for the information store: folders, append/fetch, flags and modseq, copy/move, expunge,
 * quotas, retention, search, ACLs and per-user \Seen, notification, the checker, map growth and bad input. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/err.h"
#include "store/store.h"
#include "store/store_int.h"
#ifdef STORE_HAVE_MIME
#include "store/mime.h"
#endif
#include "common/util.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define G1 "11111111-2222-3333-4444-555555555555"
#define G2 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define G3 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char msg1[] = "From: Alice <alice@example.com>\r\n"
			   "To: bob@example.com\r\n"
			   "Subject: Hello world\r\n"
			   "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
			   "Message-ID: <1@example.com>\r\n"
			   "\r\n"
			   "The body text of the first message.\r\n";

static char tmpdir[64];

static struct store *open_tmp(int no_sync)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ix-store-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return NULL;
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

static void close_tmp(struct store **st)
{
	store_close(st);
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(cmd);
}

static int append_to(struct store *st, const char *guid, const char *folder, const char *data, unsigned flags,
		     uint32_t *uid_r)
{
	struct store_target t = { .guid = guid, .folder = folder };
	struct store_append a = { .data = data, .len = strlen(data), .flags = flags, .targets = &t, .ntargets = 1 };
	int ret = store_append(st, &a, NULL);
	if (uid_r != NULL)
		*uid_r = t.uid;
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

static void standard_folders_on_first_use(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct store_folder_info *list = NULL;
	size_t n = 0;
	test_assert(store_folder_list(st, G1, NULL, &list, &n, NULL) == IX_ENOTFOUND);
	test_assert(store_mailbox_ensure(st, G1, NULL) == 0);
	test_assert(store_mailbox_ensure(st, G1, NULL) == 0);
	test_assert(store_folder_list(st, G1, NULL, &list, &n, NULL) == 0);
	test_assert(n == 6);
	int seen_sent = 0, seen_inbox = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].name, "Sent") == 0)
			seen_sent = list[i].special_use == STORE_USE_SENT;
		if (strcmp(list[i].name, "INBOX") == 0)
			seen_inbox = list[i].uidnext == 1 && list[i].messages == 0 && list[i].uidvalidity > 0;
	}
	store_folder_list_free(&list, n);
	test_assert(seen_sent && seen_inbox);
	test_assert_str(store_special_use_name(STORE_USE_JUNK), "\\Junk");
	struct store_folder_info info;
	test_assert(store_folder_status(st, "11111111222233334444555555555555", "inbox", NULL, &info, NULL) == 0);
	test_assert_str(info.name, "INBOX");
	store_folder_info_free(&info);
	test_assert(check_clean(st));
	close_tmp(&st);
}

static void folder_create_rename_delete(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct buf err = BUF_INIT;
	test_assert(store_folder_create(st, G1, "Projects/A/B", NULL) == 0);
	test_assert(store_folder_create(st, G1, "Projects/A", NULL) == IX_EEXIST);
	struct store_folder_info a, b;
	test_assert(store_folder_status(st, G1, "Projects/A/B", NULL, &b, NULL) == 0);
	uint32_t bid = b.id, buv = b.uidvalidity;
	store_folder_info_free(&b);
	uint32_t uid;
	test_assert(append_to(st, G1, "Projects/A/B", msg1, 0, &uid) == 0 && uid == 1);

	/* rename a subtree: children follow, ids and UIDVALIDITY stay */
	test_assert(store_folder_rename(st, G1, "Projects", "Work/Old", NULL) == 0);
	test_assert(store_folder_status(st, G1, "Projects/A/B", NULL, &b, NULL) == IX_ENOTFOUND);
	test_assert(store_folder_status(st, G1, "Work/Old/A/B", NULL, &b, NULL) == 0);
	test_assert(b.id == bid && b.uidvalidity == buv && b.messages == 1);
	store_folder_info_free(&b);
	test_assert(store_folder_status(st, G1, "Work", NULL, &a, NULL) == 0);
	store_folder_info_free(&a);
	test_assert(store_folder_rename(st, G1, "INBOX", "X", NULL) == IX_EPERM);
	test_assert(store_folder_rename(st, G1, "Work", "Work/Sub", NULL) == IX_EINVAL);
	test_assert(store_folder_rename(st, G1, "Work/Old", "Sent", NULL) == IX_EEXIST);
	test_assert(store_folder_rename(st, G1, "Nope", "Yes", NULL) == IX_ENOTFOUND);

	/* bad names */
	test_assert(store_folder_create(st, G1, "a//b", NULL) == IX_EINVAL);
	test_assert(store_folder_create(st, G1, "/a", NULL) == IX_EINVAL);
	test_assert(store_folder_create(st, G1, "a/", NULL) == IX_EINVAL);
	test_assert(store_folder_create(st, G1, "a\x01", NULL) == IX_EINVAL);
	test_assert(store_folder_create(st, G1, "caf\xc3", NULL) == IX_EINVAL);
	test_assert(store_folder_create(st, G1, "\xc0\xaf", NULL) == IX_EINVAL);
	test_assert(store_folder_create(st, G1, "a*", NULL) == IX_EINVAL);
	test_assert(store_folder_create(st, G1, "", &err) == IX_EINVAL);
	test_assert(err.len > 0);
	test_assert(store_folder_create(st, G1, "Caf\xc3\xa9 \xe2\x82\xac", NULL) == 0);
	test_assert(store_folder_create(st, "xyz", "A", NULL) == IX_EINVAL);

	/* delete: not with children, not INBOX; messages go to retention */
	test_assert(store_folder_delete(st, G1, "Work/Old", NULL) == IX_EPERM);
	test_assert(store_folder_delete(st, G1, "INBOX", NULL) == IX_EPERM);
	test_assert(store_folder_delete(st, G1, "Work/Old/A/B", NULL) == 0);
	size_t retained;
	test_assert(store_retention_count(st, G1, &retained, NULL) == 0 && retained == 1);
	test_assert(store_folder_subscribe(st, G1, "Work", 0, NULL) == 0);
	test_assert(store_folder_status(st, G1, "Work", NULL, &a, NULL) == 0);
	test_assert(!a.subscribed);
	store_folder_info_free(&a);
	/* subscriptions are names: CREATE subscribes nothing, DELETE keeps it, RENAME moves it, any name goes */
	struct buf subs = BUF_INIT;
	test_assert(store_folder_create(st, G1, "S/x", NULL) == 0);
	test_assert(store_subscriptions(st, G1, &subs, NULL) == 0);
	test_assert(memmem(subs.data, subs.len, "S/x", 4) == NULL && memmem(subs.data, subs.len, "Sent\0", 5) != NULL);
	test_assert(store_folder_subscribe(st, G1, "S/x", 1, NULL) == 0 &&
		    store_folder_subscribe(st, G1, "S/y", 1, NULL) == 0);
	test_assert(store_folder_status(st, G1, "S/x", NULL, &a, NULL) == 0 && a.subscribed);
	store_folder_info_free(&a);
	test_assert(store_folder_rename(st, G1, "S", "T", NULL) == 0);
	test_assert(store_folder_delete(st, G1, "T/x", NULL) == 0);
	test_assert(store_folder_subscribe(st, G1, "never", 0, NULL) == 0);
	buf_reset(&subs);
	test_assert(store_subscriptions(st, G1, &subs, NULL) == 0);
	test_assert(memmem(subs.data, subs.len, "\0S/y\0", 5) != NULL &&
		    memmem(subs.data, subs.len, "\0T/x\0", 5) != NULL);
	test_assert(memmem(subs.data, subs.len, "S/x", 3) == NULL && memmem(subs.data, subs.len, "never", 5) == NULL);
	test_assert(store_folder_create(st, G1, "T/x", NULL) == 0);
	test_assert(store_folder_status(st, G1, "T/x", NULL, &a, NULL) == 0 && a.subscribed);
	store_folder_info_free(&a);
	buf_free(&subs);
	struct store_quota_use q;
	test_assert(store_quota_get(st, G1, &q, NULL) == 0 && q.messages == 0 && q.bytes == 0);
	test_assert(check_clean(st));
	buf_free(&err);
	close_tmp(&st);
}

static void append_fetch(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid;
	test_assert(append_to(st, G1, NULL, msg1, STORE_FLAG_FLAGGED, &uid) == 0 && uid == 1);
	test_assert(append_to(st, G1, "INBOX", msg1, STORE_FLAG_SEEN, &uid) == 0 && uid == 2);
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == 2 && info.unseen == 1 && info.recent == 2 && info.uidnext == 3);
	test_assert(info.size == 2 * (sizeof(msg1) - 1));
	uint64_t hms = info.highestmodseq;
	test_assert(hms >= 3);
	store_folder_info_free(&info);

	struct buf out = BUF_INIT;
	test_assert(store_fetch_body(st, G1, NULL, 1, 0, 0, &out, NULL) == 0);
	test_assert(out.len == sizeof(msg1) - 1 && memcmp(out.data, msg1, out.len) == 0);
	buf_reset(&out);
	test_assert(store_fetch_body(st, G1, NULL, 1, 6, 5, &out, NULL) == 0);
	test_assert_str(buf_cstr(&out), "Alice");
	buf_reset(&out);
	test_assert(store_fetch_body(st, G1, NULL, 1, 100000, 5, &out, NULL) == 0 && out.len == 0);
	test_assert(store_fetch_header(st, G1, NULL, 2, &out, NULL) == 0);
	test_assert(out.len == (size_t)(strstr(msg1, "\r\n\r\n") - msg1) + 4);
	buf_reset(&out);
	test_assert(store_fetch_cache(st, G1, NULL, 2, &out, NULL) == 0);
#ifdef STORE_HAVE_MIME
	test_assert(out.len > 0);
	struct mime_info *mi;
	test_assert(store_fetch_mime(st, G1, NULL, 2, &mi, NULL) == 0);
	test_assert(strcmp(mi->subject, "Hello world") == 0 && strstr(mi->envelope, "Hello world") != NULL);
	mime_info_destroy(&mi);
	buf_reset(&out);
	test_assert(store_fetch_section(st, G1, NULL, 2, "TEXT", 0, 0, &out, NULL) == 0);
	test_assert_str(buf_cstr(&out), "The body text of the first message.\r\n");
	buf_reset(&out);
	test_assert(store_fetch_section(st, G1, NULL, 2, "TEXT", 4, 4, &out, NULL) == 0);
	test_assert_str(buf_cstr(&out), "body");
	buf_reset(&out);
	test_assert(store_fetch_section(st, G1, NULL, 2, "HEADER", 0, 0, &out, NULL) == 0);
	test_assert(out.len == (size_t)(strstr(msg1, "\r\n\r\n") - msg1) + 4);
	test_assert(store_fetch_section(st, G1, NULL, 2, "7.3", 0, 0, &out, NULL) == IX_ENOTFOUND);
#endif
	test_assert(store_fetch_body(st, G1, NULL, 7, 0, 0, &out, NULL) == IX_ENOTFOUND);
	buf_free(&out);

	struct store_msg *list;
	size_t n;
	test_assert(store_msg_list(st, G1, NULL, NULL, &list, &n, NULL) == 0);
	test_assert(n == 2 && list[0].uid == 1 && list[1].uid == 2);
	test_assert(list[0].flags == (STORE_FLAG_FLAGGED | STORE_FLAG_RECENT));
	test_assert(list[0].modseq < list[1].modseq && list[1].modseq == hms);
	test_assert(list[0].size == sizeof(msg1) - 1 && list[0].internal_date > 0);
	store_msg_list_free(&list, n);
	test_assert(append_to(st, G1, "Nope", msg1, 0, &uid) == IX_ENOTFOUND);
	test_assert(check_clean(st));
	close_tmp(&st);
}

static void single_instance_refcounts(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct store_target t[3] = { { .guid = G1 }, { .guid = G2, .folder = "Junk" }, { .guid = G3 } };
	struct store_append a = {
		.data = msg1, .len = strlen(msg1), .keywords = "$Label1 Work", .targets = t, .ntargets = 3
	};
	test_assert(store_append(st, &a, NULL) == 0);
	test_assert(t[0].result == 0 && t[1].result == 0 && t[2].result == 0);
	test_assert(t[0].uid == 1 && t[1].uid == 1 && t[1].uidvalidity > 0);
	/* the same body again, delivered separately, still one instance */
	uint32_t uid;
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0 && uid == 2);
	struct buf rep = BUF_INIT;
	unsigned problems;
	test_assert(store_check(st, 0, &rep, &problems, NULL) == 0 && problems == 0);
	test_assert(strstr(buf_cstr(&rep), "3 mailboxes, 18 folders, 4 messages, 1 bodies") != NULL);
	buf_reset(&rep);
	/* expunge and purge everywhere but one: the body stays; then the last one: the body goes */
	uint32_t one = 1;
	test_assert(store_expunge(st, G1, NULL, NULL, 0, NULL, NULL, NULL) == 0); /* nothing \Deleted */
	test_assert(store_expunge(st, G1, NULL, &one, 1, NULL, NULL, NULL) == 0);
	test_assert(store_expunge(st, G2, "Junk", &one, 1, NULL, NULL, NULL) == 0);
	size_t purged;
	test_assert(store_retention_purge(st, NULL, (int64_t)time(NULL) + 10, &purged, NULL) == 0 && purged == 2);
	struct buf out = BUF_INIT;
	test_assert(store_fetch_body(st, G3, NULL, 1, 0, 0, &out, NULL) == 0 && out.len == strlen(msg1));
	struct store_msg m;
	test_assert(store_msg_get(st, G3, NULL, 1, NULL, &m, NULL) == 0);
	test_assert_str(m.keywords, "$Label1 Work");
	store_msg_free(&m);
	uint32_t two = 2;
	test_assert(store_expunge(st, G3, NULL, &one, 1, NULL, NULL, NULL) == 0);
	test_assert(store_expunge(st, G1, NULL, &two, 1, NULL, NULL, NULL) == 0);
	test_assert(store_retention_purge(st, NULL, (int64_t)time(NULL) + 10, &purged, NULL) == 0 && purged == 2);
	test_assert(store_check(st, 0, &rep, &problems, NULL) == 0 && problems == 0);
	test_assert(strstr(buf_cstr(&rep), "0 messages, 0 bodies") != NULL);
	buf_free(&rep);
	buf_free(&out);
	close_tmp(&st);
}

/* A target the store can never take (a bad folder name, a bad GUID) fails alone: the others get the message in the
 * same commit, and the message is not called refused. A public folder from the directory is created on first
 * delivery with the default ACL, its parents too. */
static void one_bad_target_fails_alone(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	test_assert(store_public_folder_ensure(st, "Support/Tickets", NULL) == 0);
	test_assert(store_public_folder_ensure(st, "Support/Tickets", NULL) == 0); /* again: nothing to do */
	struct store_target t[4] = { { .guid = G1 },
				     { .guid = STORE_PUBLIC_GUID, .folder = "Broken//Path" },
				     { .guid = STORE_PUBLIC_GUID, .folder = "Support/Tickets" },
				     { .guid = "xyz" } };
	struct store_append a = { .data = msg1, .len = strlen(msg1), .targets = t, .ntargets = 4 };
	struct buf err = BUF_INIT;
	test_assert(store_append(st, &a, &err) == IX_EINVAL && !a.refused);
	test_assert(t[0].result == 0 && t[0].uid == 1 && t[2].result == 0 && t[2].uid == 1);
	test_assert(t[1].result == IX_EINVAL && t[3].result == IX_EINVAL);
	test_assert(strstr(buf_cstr(&err), "folder name has an empty level") != NULL);
	struct store_folder_info info;
	test_assert(store_folder_status(st, STORE_PUBLIC_GUID, "Support", NULL, &info, NULL) == 0);
	store_folder_info_free(&info);
	const char *anyone[] = { "carol" }, *admin[] = { "carol", STORE_PUBLIC_ADMINS };
	unsigned r = 0, def = 0;
	store_rights_parse(STORE_PUBLIC_DEFAULT_RIGHTS, &def);
	test_assert(store_acl_rights(st, STORE_PUBLIC_GUID, "Support", anyone, 1, &r, NULL) == 0 && r == def);
	test_assert(store_acl_rights(st, STORE_PUBLIC_GUID, "Support/Tickets", admin, 2, &r, NULL) == 0 &&
		    r == STORE_RIGHTS_ALL);
	/* every target bad: the append fails, still not a refused message */
	buf_reset(&err);
	struct store_append b = { .data = msg1, .len = strlen(msg1), .targets = &t[1], .ntargets = 1 };
	test_assert(store_append(st, &b, &err) == IX_EINVAL && !b.refused && t[1].result == IX_EINVAL);
	test_assert_str(buf_cstr(&err), "folder name has an empty level (two separators in a row)");
	test_assert(store_public_folder_ensure(st, "/Bad", NULL) == IX_EINVAL);
	test_assert(check_clean(st));
	buf_free(&err);
	close_tmp(&st);
}

static void flags_modseq_unchangedsince(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid;
	for (int i = 0; i < 3; i++)
		test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0);
	struct store_msg *list;
	size_t n;
	test_assert(store_msg_list(st, G1, NULL, NULL, &list, &n, NULL) == 0 && n == 3);
	uint64_t m2 = list[1].modseq;
	store_msg_list_free(&list, n);

	uint32_t uids[] = { 1, 2, 99 };
	struct store_flag_update u = { .uids = uids,
				       .nuids = 3,
				       .mode = STORE_FLAGS_ADD,
				       .flags = STORE_FLAG_SEEN | STORE_FLAG_RECENT,
				       .keywords = "Important" };
	test_assert(store_flags(st, G1, NULL, &u, NULL) == 0);
	test_assert(u.nfailed_r == 0 && u.modseq_r > m2);
	uint64_t after = u.modseq_r;
	free(u.failed_r);
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.unseen == 1 && info.highestmodseq == after && info.recent == 3);
	store_folder_info_free(&info);

	/* the same change again changes nothing: no new modseq */
	test_assert(store_flags(st, G1, NULL, &u, NULL) == 0 && u.modseq_r == 0);
	free(u.failed_r);

	/* UNCHANGEDSINCE: message 3 (modseq below) changes, 1 (modseq after) is refused */
	uint32_t u13[] = { 1, 3 };
	struct store_flag_update c = {
		.uids = u13, .nuids = 2, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_FLAGGED, .unchangedsince = m2 + 1
	};
	test_assert(store_flags(st, G1, NULL, &c, NULL) == 0);
	test_assert(c.nfailed_r == 1 && c.failed_r[0] == 1 && c.modseq_r > after);
	free(c.failed_r);

	/* remove and replace, keywords */
	struct store_flag_update r = { .uids = uids, .nuids = 1, .mode = STORE_FLAGS_REMOVE, .keywords = "important" };
	test_assert(store_flags(st, G1, NULL, &r, NULL) == 0);
	free(r.failed_r);
	struct store_msg m;
	test_assert(store_msg_get(st, G1, NULL, 1, NULL, &m, NULL) == 0);
	test_assert_str(m.keywords, "");
	test_assert(m.flags == (STORE_FLAG_SEEN | STORE_FLAG_RECENT));
	store_msg_free(&m);
	struct store_flag_update p = {
		.uids = uids, .nuids = 1, .mode = STORE_FLAGS_REPLACE, .flags = STORE_FLAG_DRAFT, .keywords = "b a b"
	};
	test_assert(store_flags(st, G1, NULL, &p, NULL) == 0);
	free(p.failed_r);
	test_assert(store_msg_get(st, G1, NULL, 1, NULL, &m, NULL) == 0);
	test_assert_str(m.keywords, "a b");
	test_assert(m.flags == (STORE_FLAG_DRAFT | STORE_FLAG_RECENT));
	store_msg_free(&m);
	struct store_flag_update bad = { .uids = uids, .nuids = 1, .mode = STORE_FLAGS_ADD, .keywords = "\\Bad" };
	test_assert(store_flags(st, G1, NULL, &bad, NULL) == IX_EINVAL);

	/* change log since m2: every message changed after it, once each, in modseq order; 1 changed last */
	struct store_change *ch;
	test_assert(store_changes(st, G1, NULL, m2, &ch, &n, NULL) == 0);
	test_assert(n == 3);
	for (size_t i = 0; i < n; i++)
		test_assert(ch[i].modseq > m2 && !ch[i].expunged && (i == 0 || ch[i - 1].modseq <= ch[i].modseq));
	test_assert(ch[2].uid == 1);
	uint64_t last = ch[2].modseq;
	free(ch);
	test_assert(store_changes(st, G1, NULL, last, &ch, &n, NULL) == 0 && n == 0);
	free(ch);
	/* \Recent cleared below a UID only (what an IMAP session claimed), then everywhere */
	struct store_msg *rl = NULL;
	size_t rn = 0;
	test_assert(store_msg_list(st, G1, NULL, NULL, &rl, &rn, NULL) == 0 && rn >= 2);
	uint32_t below = rl[1].uid;
	store_msg_list_free(&rl, rn);
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	uint32_t recent_before = info.recent;
	store_folder_info_free(&info);
	test_assert(store_clear_recent(st, G1, NULL, below, NULL) == 0);
	test_assert(store_msg_list(st, G1, NULL, NULL, &rl, &rn, NULL) == 0);
	uint32_t still = 0;
	for (size_t i = 0; i < rn; i++) {
		test_assert((rl[i].flags & STORE_FLAG_RECENT) == 0 || rl[i].uid >= below);
		still += (rl[i].flags & STORE_FLAG_RECENT) != 0;
	}
	test_assert(still > 0 && still < recent_before);
	store_msg_list_free(&rl, rn);
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.recent == still);
	store_folder_info_free(&info);
	test_assert(check_clean(st));
	test_assert(store_clear_recent(st, G1, NULL, 0, NULL) == 0);
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.recent == 0);
	store_folder_info_free(&info);
	test_assert(check_clean(st));
	close_tmp(&st);
}

/* MOVE into the folder the messages are in: new UIDs (after everything), the originals expunged, flags, keywords
 * and the body kept, the folder's counts unchanged (RFC 6851 allows it; it is COPY then EXPUNGE) */
static void move_into_same_folder(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid;
	test_assert(append_to(st, G1, NULL, msg1, STORE_FLAG_FLAGGED, &uid) == 0 && uid == 1);
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0 && uid == 2);
	uint32_t one[] = { 1 };
	struct store_flag_update f = { .uids = one, .nuids = 1, .mode = STORE_FLAGS_ADD, .keywords = "$Work" };
	test_assert(store_flags(st, G1, NULL, &f, NULL) == 0);
	free(f.failed_r);
	struct store_folder_info before, after;
	test_assert(store_folder_status(st, G1, NULL, NULL, &before, NULL) == 0);
	uint32_t dst[1] = { 0 }, validity = 0;
	test_assert(store_copy(st, G1, NULL, one, 1, G1, "INBOX", 1, 0, 0, dst, &validity, NULL) == 0);
	test_assert(dst[0] == 3 && validity == before.uidvalidity);
	test_assert(store_folder_status(st, G1, NULL, NULL, &after, NULL) == 0);
	test_assert(after.messages == 2 && after.size == before.size && after.uidnext == 4);
	test_assert(after.highestmodseq > before.highestmodseq);
	struct store_msg m;
	test_assert(store_msg_get(st, G1, NULL, 1, NULL, &m, NULL) == IX_ENOTFOUND);
	test_assert(store_msg_get(st, G1, NULL, 3, NULL, &m, NULL) == 0);
	test_assert((m.flags & STORE_FLAG_FLAGGED) && strcmp(m.keywords, "$Work") == 0);
	store_msg_free(&m);
	struct buf body = BUF_INIT;
	test_assert(store_fetch_body(st, G1, NULL, 3, 0, 0, &body, NULL) == 0 && body.len == strlen(msg1));
	buf_free(&body);
	store_folder_info_free(&before);
	store_folder_info_free(&after);
	test_assert(check_clean(st));
	close_tmp(&st);
}

static void copy_move_expunge(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid;
	for (int i = 0; i < 4; i++)
		test_assert(append_to(st, G1, NULL, msg1, i == 0 ? STORE_FLAG_SEEN : 0, &uid) == 0);
	uint32_t src[] = { 1, 2, 50 }, dst[3], uv;
	test_assert(store_copy(st, G1, NULL, src, 3, G1, "Archive", 0, 0, 0, dst, &uv, NULL) == 0);
	test_assert(dst[0] == 1 && dst[1] == 2 && dst[2] == 0 && uv > 0);
	test_assert(store_copy(st, G1, NULL, src, 2, G2, NULL, 1, 0, 0, dst, &uv, NULL) == 0);
	test_assert(dst[0] == 1 && dst[1] == 2);
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == 2 && info.unseen == 2);
	store_folder_info_free(&info);
	test_assert(store_folder_status(st, G2, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == 2 && info.unseen == 1);
	store_folder_info_free(&info);
	test_assert(store_copy(st, G1, "Archive", src, 1, G1, "Archive", 0, 0, 0, dst, &uv, NULL) == 0 && dst[0] == 3);

	/* expunge \Deleted; UIDs are never reused */
	uint32_t u4[] = { 4 };
	struct store_flag_update d = { .uids = u4, .nuids = 1, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_DELETED };
	test_assert(store_flags(st, G1, NULL, &d, NULL) == 0);
	free(d.failed_r);
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	uint64_t before = info.highestmodseq;
	store_folder_info_free(&info);
	uint32_t *exp;
	size_t nexp;
	test_assert(store_expunge(st, G1, NULL, NULL, 0, &exp, &nexp, NULL) == 0);
	test_assert(nexp == 1 && exp[0] == 4);
	free(exp);
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0 && uid == 5);
	struct store_change *ch;
	size_t n;
	test_assert(store_changes(st, G1, NULL, before, &ch, &n, NULL) == 0);
	test_assert(n == 2 && ch[0].uid == 4 && ch[0].expunged && ch[1].uid == 5 && !ch[1].expunged);
	free(ch);
	/* UID EXPUNGE: only the listed ones that are \Deleted */
	uint32_t u35[] = { 3, 5 };
	struct store_flag_update d5 = {
		.uids = &u35[1], .nuids = 1, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_DELETED
	};
	test_assert(store_flags(st, G1, NULL, &d5, NULL) == 0);
	free(d5.failed_r);
	test_assert(store_uid_expunge(st, G1, NULL, u35, 2, &exp, &nexp, NULL) == 0);
	test_assert(nexp == 1 && exp[0] == 5);
	free(exp);
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == 1 && info.uidnext == 6);
	store_folder_info_free(&info);
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	before = info.highestmodseq - 1; /* the UID EXPUNGE's modseq */
	store_folder_info_free(&info);
	struct store_change *ch2;
	size_t n2;
	test_assert(store_changes(st, G1, NULL, before, &ch2, &n2, NULL) == 0);
	test_assert(n2 == 1 && ch2[0].uid == 5 && ch2[0].expunged);
	free(ch2);
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0 && uid == 6);
	test_assert(check_clean(st));
	close_tmp(&st);
}

static void quota_limits(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	size_t len = strlen(msg1);
	struct store_target t = { .guid = G1, .quota_bytes = 3 * len, .quota_messages = 10 };
	struct store_append a = { .data = msg1, .len = len, .targets = &t, .ntargets = 1 };
	test_assert(store_append(st, &a, NULL) == 0);
	test_assert(store_append(st, &a, NULL) == 0);
	struct store_quota_use q;
	test_assert(store_quota_get(st, G1, &q, NULL) == 0 && q.messages == 2 && q.bytes == 2 * len && !q.warned);
	test_assert(store_append(st, &a, NULL) == 0);
	test_assert(store_quota_get(st, G1, &q, NULL) == 0 && q.warned);
	struct buf warned = BUF_INIT;
	test_assert(store_quota_warned(st, &warned, NULL) == 0);
	test_assert_str(buf_cstr(&warned), "11111111222233334444555555555555\n");
	buf_free(&warned);
	struct buf err = BUF_INIT;
	test_assert(store_append(st, &a, &err) == IX_ELIMIT && t.result == IX_ELIMIT);
	test_assert(strstr(buf_cstr(&err), "quota") != NULL);
	/* multi-recipient: one over quota, the other delivered */
	struct store_target two[2] = { { .guid = G1, .quota_bytes = 3 * len }, { .guid = G2, .quota_messages = 5 } };
	struct store_append b = { .data = msg1, .len = len, .targets = two, .ntargets = 2 };
	buf_reset(&err);
	test_assert(store_append(st, &b, &err) == IX_ELIMIT);
	test_assert(two[0].result == IX_ELIMIT && two[1].result == 0 && two[1].uid == 1);
	/* message-count quota */
	struct store_target t2 = { .guid = G3, .quota_messages = 1 };
	struct store_append c = { .data = msg1, .len = len, .targets = &t2, .ntargets = 1 };
	test_assert(store_append(st, &c, NULL) == 0);
	test_assert(store_append(st, &c, NULL) == IX_ELIMIT);
	/* the report */
	buf_reset(&err);
	struct buf out = BUF_INIT;
	test_assert(store_report_mailbox(st, G1, 3 * len, 0, &out, &err) == 0);
	test_assert(strstr(buf_cstr(&out), "INBOX") != NULL && strstr(buf_cstr(&out), "(100%)") != NULL);
	buf_free(&out);
	buf_free(&err);
	test_assert(check_clean(st));
	close_tmp(&st);
}

/* store_append_batch: each message as store_append would do it (quota counting the ones before, failures alone,
 * errors per message), all in one commit. */
static void append_batch(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	test_assert(store_mailbox_ensure(st, G1, NULL) == 0);
	size_t len = strlen(msg1);
	enum { N = 6 };
	struct store_target t[N];
	struct store_append a[N];
	struct buf err[N];
	const char *folders[N] = { "INBOX", "INBOX", "INBOX", "Nope", "Sent", "INBOX" };
	for (size_t i = 0; i < N; i++) {
		t[i] = (struct store_target){ .guid = G1, .folder = folders[i], .quota_messages = 3 };
		a[i] = (struct store_append){
			.data = msg1, .len = len, .flags = STORE_FLAG_SEEN, .targets = &t[i], .ntargets = 1
		};
		buf_init(&err[i]);
	}
	a[1].data = NULL;       /* refused before the transaction */
	a[2].keywords = "$Job"; /* kept */
	struct store_stats before, after;
	store_get_stats(st, &before);
	test_assert(store_append_batch(st, a, N, err) == IX_EINVAL);
	store_get_stats(st, &after);
	test_assert(after.commits == before.commits + 1);
	test_assert(t[0].result == 0 && t[0].uid == 1 && err[0].len == 0);
	test_assert(t[1].result == IX_EINVAL && a[1].refused && err[1].len > 0);
	test_assert(t[2].result == 0 && t[2].uid == 2 && err[2].len == 0);
	test_assert(t[3].result == IX_ENOTFOUND && err[3].len > 0);
	test_assert(t[4].result == 0 && t[4].uid == 1);
	test_assert(t[5].result == IX_ELIMIT && strstr(buf_cstr(&err[5]), "quota") != NULL); /* 3 stored before it */
	for (size_t i = 0; i < N; i++)
		buf_free(&err[i]);
	struct store_msg m;
	test_assert(store_msg_get(st, G1, "INBOX", 2, NULL, &m, NULL) == 0);
	test_assert_str(m.keywords, "$Job");
	test_assert((m.flags & STORE_FLAG_SEEN) != 0 && m.size == len);
	store_msg_free(&m);
	struct store_quota_use q;
	test_assert(store_quota_get(st, G1, &q, NULL) == 0 && q.messages == 3);

	/* 300 messages, errors not asked for: one commit, UIDs in order */
	enum { M = 300 };
	struct store_target *tm = xcalloc(M, sizeof(*tm));
	struct store_append *am = xcalloc(M, sizeof(*am));
	char(*data)[64] = xcalloc(M, sizeof(*data));
	for (size_t i = 0; i < M; i++) {
		snprintf(data[i], sizeof(data[i]), "Subject: %zu\r\n\r\nbody %zu\r\n", i, i);
		tm[i] = (struct store_target){ .guid = G2, .folder = "Archive" };
		am[i] = (struct store_append){
			.data = data[i], .len = strlen(data[i]), .targets = &tm[i], .ntargets = 1
		};
	}
	store_get_stats(st, &before);
	test_assert(store_append_batch(st, am, M, NULL) == 0);
	store_get_stats(st, &after);
	test_assert(after.commits == before.commits + 1);
	for (size_t i = 0; i < M; i++)
		test_assert(tm[i].result == 0 && tm[i].uid == i + 1);
	struct buf body = BUF_INIT;
	test_assert(store_fetch_body(st, G2, "Archive", 300, 0, 0, &body, NULL) == 0);
	test_assert_str(buf_cstr(&body), data[299]);
	buf_free(&body);
	free(data);
	free(am);
	free(tm);
	test_assert(store_append_batch(st, NULL, 0, NULL) == 0);
	test_assert(check_clean(st));
	close_tmp(&st);
}

static void retention_recover(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid;
	test_assert(append_to(st, G1, "Sent", msg1, STORE_FLAG_SEEN, &uid) == 0);
	test_assert(append_to(st, G1, "Drafts", msg1, 0, &uid) == 0);
	uint32_t one = 1;
	test_assert(store_expunge(st, G1, "Sent", &one, 1, NULL, NULL, NULL) == 0);
	test_assert(store_expunge(st, G1, "Drafts", &one, 1, NULL, NULL, NULL) == 0);
	test_assert(store_folder_delete(st, G1, "Drafts", NULL) == 0);
	struct store_quota_use q;
	test_assert(store_quota_get(st, G1, &q, NULL) == 0 && q.messages == 0);
	size_t n;
	test_assert(store_recover(st, G1, (int64_t)time(NULL) + 100, &n, NULL) == 0 && n == 0);
	struct buf rep = BUF_INIT;
	test_assert(store_report_recover(st, G1, 0, &rep, NULL) == 0);
	test_assert(strstr(buf_cstr(&rep), "Recovered 2 deleted items") != NULL);
	buf_free(&rep);
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, "Sent", NULL, &info, NULL) == 0);
	test_assert(info.messages == 1 && info.uidnext == 3 && info.unseen == 0);
	store_folder_info_free(&info);
	test_assert(store_folder_status(st, G1, "INBOX", NULL, &info, NULL) == 0); /* Drafts is gone */
	test_assert(info.messages == 1);
	store_folder_info_free(&info);
	test_assert(store_retention_count(st, G1, &n, NULL) == 0 && n == 0);
	test_assert(check_clean(st));
	/* deleting a whole mailbox frees its bodies but not those another mailbox still uses */
	test_assert(append_to(st, G2, NULL, msg1, 0, &uid) == 0);
	uint32_t one1 = 1;
	test_assert(store_expunge(st, G1, "INBOX", &one1, 1, NULL, NULL, NULL) == 0);
	test_assert(store_mailbox_delete(st, G1, NULL) == 0);
	test_assert(store_mailbox_delete(st, G1, NULL) == IX_ENOTFOUND);
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == IX_ENOTFOUND);
	struct buf body = BUF_INIT;
	test_assert(store_fetch_body(st, G2, NULL, 1, 0, 0, &body, NULL) == 0 && body.len == strlen(msg1));
	buf_free(&body);
	struct buf chk = BUF_INIT;
	unsigned problems;
	test_assert(store_check(st, 0, &chk, &problems, NULL) == 0 && problems == 0);
	test_assert(strstr(buf_cstr(&chk), "1 mailboxes, 6 folders, 1 messages, 1 bodies, 0 retained") != NULL);
	buf_free(&chk);
	close_tmp(&st);
}

static void search_messages(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	static const char msg2[] = "From: Carol <carol@example.org>\r\nSubject: Quarterly numbers\r\n"
				   "X-Folded: first\r\n\tsecond part\r\n\r\nRevenue went up.\r\nMore lines.\r\n";
	uint32_t uid;
	test_assert(append_to(st, G1, NULL, msg1, STORE_FLAG_SEEN, &uid) == 0);
	test_assert(append_to(st, G1, NULL, msg2, 0, &uid) == 0);
	uint32_t *u;
	size_t n;
	struct store_search q;
	memset(&q, 0, sizeof(q));
	q.header_name = "subject";
	q.header_value = "QUARTERLY";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 2);
	free(u);
	memset(&q, 0, sizeof(q));
	q.header_name = "X-Folded";
	q.header_value = "second part";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 2);
	free(u);
	memset(&q, 0, sizeof(q));
	q.body = "body text";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 1);
	free(u);
	q.body = "Subject";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 0);
	free(u);
	memset(&q, 0, sizeof(q));
	q.flags_unset = STORE_FLAG_SEEN;
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 2);
	free(u);
	memset(&q, 0, sizeof(q));
	q.larger = sizeof(msg2);
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 1);
	free(u);
	memset(&q, 0, sizeof(q));
	q.since = (int64_t)time(NULL) - 100;
	q.text = "example";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 2);
	free(u);
	q.before = 1000;
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 0);
	free(u);
#ifdef STORE_HAVE_MIME
	/* decoded forms: an RFC 2047 subject and a base64 text part */
	static const char msg3[] =
		"From: d@example.com\r\nSubject: =?utf-8?q?Caf=C3=A9_menu?=\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"U291cGUgZHUgam91ciDDoCBtaWRp\r\n";
	test_assert(append_to(st, G1, NULL, msg3, 0, &uid) == 0 && uid == 3);
	memset(&q, 0, sizeof(q));
	q.header_name = "Subject";
	q.header_value = "caf\xc3\xa9 MENU";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 3);
	free(u);
	memset(&q, 0, sizeof(q));
	q.body = "soupe du jour";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 3);
	free(u);
	memset(&q, 0, sizeof(q));
	q.text = "\xc3\xa0 midi";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 3);
	free(u);
	/* i;unicode-casemap: CAFÉ finds Café in the decoded subject, À MIDI the decoded body's à midi */
	memset(&q, 0, sizeof(q));
	q.header_name = "Subject";
	q.header_value = "CAF\xc3\x89";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 3);
	free(u);
	memset(&q, 0, sizeof(q));
	q.body = "\xc3\x80 MIDI";
	test_assert(store_search(st, G1, NULL, NULL, &q, &u, &n, NULL) == 0 && n == 1 && u[0] == 3);
	free(u);
#endif
	close_tmp(&st);
}

static void public_folders_acl_seen(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	unsigned r;
	test_assert(store_rights_parse("lrsp", &r) == 0);
	test_assert(r == (STORE_RIGHT_LOOKUP | STORE_RIGHT_READ | STORE_RIGHT_SEEN | STORE_RIGHT_POST));
	test_assert(store_rights_parse("lrz", &r) == IX_EINVAL);
	test_assert(store_rights_parse("c", &r) == 0 && r == (STORE_RIGHT_CREATE | STORE_RIGHT_DELETE));
	struct buf out = BUF_INIT;
	store_rights_format(STORE_RIGHTS_ALL, &out);
	test_assert_str(buf_cstr(&out), "lrswipkxtea");
	buf_reset(&out);

	test_assert(store_folder_create(st, STORE_PUBLIC_GUID, "Company/News", NULL) == 0);
	test_assert(store_acl_set(st, STORE_PUBLIC_GUID, "Company", STORE_ACL_ANYONE, STORE_RIGHT_LOOKUP, NULL) == 0);
	test_assert(store_acl_set(st, STORE_PUBLIC_GUID, "Company", "staff", STORE_RIGHT_READ | STORE_RIGHT_SEEN,
				  NULL) == 0);
	test_assert(store_acl_set(st, STORE_PUBLIC_GUID, "Company", "bob", STORE_RIGHTS_ALL, NULL) == 0);
	test_assert(store_acl_list(st, STORE_PUBLIC_GUID, "Company", &out, NULL) == 0);
	test_assert(strstr(buf_cstr(&out), "staff rs\n") != NULL && strstr(buf_cstr(&out), "anyone l\n") != NULL);
	const char *alice[] = { "alice", "staff" }, *eve[] = { "eve" }, *bob[] = { "bob" };
	test_assert(store_acl_rights(st, STORE_PUBLIC_GUID, "Company/News", alice, 2, &r, NULL) == 0);
	test_assert(r == (STORE_RIGHT_LOOKUP | STORE_RIGHT_READ | STORE_RIGHT_SEEN)); /* inherited */
	test_assert(store_acl_rights(st, STORE_PUBLIC_GUID, "Company/News", eve, 1, &r, NULL) == 0);
	test_assert(r == STORE_RIGHT_LOOKUP);
	test_assert(store_acl_set(st, STORE_PUBLIC_GUID, "Company/News", "alice", STORE_RIGHT_POST, NULL) == 0);
	test_assert(store_acl_rights(st, STORE_PUBLIC_GUID, "Company/News", alice, 2, &r, NULL) == 0);
	test_assert(r == STORE_RIGHT_POST); /* its own ACL now */
	test_assert(store_acl_rights(st, STORE_PUBLIC_GUID, "Company", bob, 1, &r, NULL) == 0 && r == STORE_RIGHTS_ALL);
	test_assert(store_acl_set(st, STORE_PUBLIC_GUID, "Company", "bob", 0, NULL) == 0);
	test_assert(store_acl_rights(st, STORE_PUBLIC_GUID, "Company", bob, 1, &r, NULL) == 0 &&
		    r == STORE_RIGHT_LOOKUP);

	/* per-user \Seen */
	uint32_t uid;
	test_assert(append_to(st, STORE_PUBLIC_GUID, "Company/News", msg1, STORE_FLAG_SEEN, &uid) == 0 && uid == 1);
	test_assert(append_to(st, STORE_PUBLIC_GUID, "Company/News", msg1, 0, &uid) == 0 && uid == 2);
	struct store_flag_update u = { .uids = &uid,
				       .nuids = 1,
				       .mode = STORE_FLAGS_ADD,
				       .flags = STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
				       .user = "alice" };
	test_assert(store_flags(st, STORE_PUBLIC_GUID, "Company/News", &u, NULL) == 0 && u.modseq_r > 0);
	free(u.failed_r);
	struct store_msg m;
	test_assert(store_msg_get(st, STORE_PUBLIC_GUID, "Company/News", 2, "alice", &m, NULL) == 0);
	test_assert(m.flags & STORE_FLAG_SEEN);
	test_assert(m.flags & STORE_FLAG_FLAGGED);
	store_msg_free(&m);
	test_assert(store_msg_get(st, STORE_PUBLIC_GUID, "Company/News", 2, "bob", &m, NULL) == 0);
	test_assert(!(m.flags & STORE_FLAG_SEEN));
	test_assert(m.flags & STORE_FLAG_FLAGGED); /* shared flags are shared */
	store_msg_free(&m);
	struct store_folder_info info;
	test_assert(store_folder_status(st, STORE_PUBLIC_GUID, "Company/News", "alice", &info, NULL) == 0);
	test_assert(info.unseen == 1 && info.messages == 2);
	store_folder_info_free(&info);
	test_assert(store_folder_status(st, STORE_PUBLIC_GUID, "Company/News", "bob", &info, NULL) == 0);
	test_assert(info.unseen == 2);
	store_folder_info_free(&info);
	struct store_search q;
	memset(&q, 0, sizeof(q));
	q.flags_set = STORE_FLAG_SEEN;
	uint32_t *res;
	size_t n;
	test_assert(store_search(st, STORE_PUBLIC_GUID, "Company/News", "alice", &q, &res, &n, NULL) == 0 && n == 1);
	free(res);
	test_assert(store_expunge(st, STORE_PUBLIC_GUID, "Company/News", &uid, 1, NULL, NULL, NULL) == 0);
	test_assert(check_clean(st));
	buf_free(&out);
	close_tmp(&st);
}

struct appender {
	struct store *st;
	pid_t waiter; /* the thread that polls the watch */
	int result;   /* append_to's */
	uint32_t uid;
};

/* Appends to G1 once the waiter sleeps in poll, so the append wakes a blocked watcher. */
static void *append_later(void *arg)
{
	struct appender *a = arg;
	for (int i = 0; i < 5000 && !test_thread_sleeps(a->waiter); i++)
		usleep(1000); /* polls for the condition */
	a->result = append_to(a->st, G1, NULL, msg1, 0, &a->uid);
	return NULL;
}

static void notification(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct store_watch *w = NULL, *other = NULL;
	test_assert(store_watch_create(st, G1, &w, NULL) == 0);
	test_assert(store_watch_create(st, G2, &other, NULL) == 0);
	test_assert(store_watch_drain(w) == 0);
	pthread_t th;
	struct appender a = { st, gettid(), -1, 0 };
	test_assert(pthread_create(&th, NULL, append_later, &a) == 0);
	struct pollfd pfd = { store_watch_fd(w), POLLIN, 0 };
	int n = poll(&pfd, 1, 5000);
	pthread_join(th, NULL);
	test_assert(a.result == 0 && a.uid == 1);
	test_assert(n == 1);
	test_assert(store_watch_drain(w) == 1);
	test_assert(store_watch_drain(w) == 0);
	test_assert(store_watch_drain(other) == 0);
	store_watch_destroy(&w);
	store_watch_destroy(&other);
	test_assert(w == NULL);
	close_tmp(&st);
}

/* Every watch of a store is on its one inotify instance (fs.inotify.max_user_instances is 128 by default: one per
 * mailbox ran out with that many users watched); the instance outlives its watches (closing one waits for the
 * kernel's RCU grace period, which stalled imapd's every session) and is closed with the store. Each watch sees its
 * own mailbox's commits only, also when another watch of the same mailbox is destroyed. */
static void notification_reuse(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct store_watch *w = NULL;
	test_assert(store_watch_create(st, G1, &w, NULL) == 0);
	int fd = store_watch_fd(w);
	store_watch_destroy(&w);
	test_assert(w == NULL);
	test_assert(fcntl(fd, F_GETFD) >= 0); /* kept open, not closed */
	test_assert(store_watch_create(st, G2, &w, NULL) == 0);
	test_assert(store_watch_fd(w) == fd);
	test_assert(store_watch_drain(w) == 0); /* the old watch's IN_IGNORED is gone */
	uint32_t uid = 0;
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0);
	test_assert(store_watch_drain(w) == 0); /* the old mailbox no longer fires */
	test_assert(append_to(st, G2, NULL, msg1, 0, &uid) == 0);
	test_assert(store_watch_drain(w) == 1);
	/* 300 mailboxes watched, more than the kernel's default number of instances, on the one descriptor */
	enum { MANY = 300 };
	struct store_watch *many[MANY];
	char guid[STORE_GUID_HEX_LEN + 1];
	for (int i = 0; i < MANY; i++) {
		snprintf(guid, sizeof(guid), "%032x", i + 1);
		test_assert(store_watch_create(st, guid, &many[i], NULL) == 0);
		test_assert(store_watch_fd(many[i]) == fd);
	}
	/* two watches of G2: destroying one leaves the other firing */
	struct store_watch *again = NULL;
	test_assert(store_watch_create(st, G2, &again, NULL) == 0);
	store_watch_destroy(&again);
	test_assert(append_to(st, G2, NULL, msg1, 0, &uid) == 0);
	test_assert(store_watch_drain(many[6]) == 0 && store_watch_drain(w) == 1 && store_watch_drain(w) == 0);
	snprintf(guid, sizeof(guid), "%032x", 7);
	test_assert(append_to(st, guid, NULL, msg1, 0, &uid) == 0);
	test_assert(store_watch_drain(w) == 0 && store_watch_drain(many[5]) == 0 && store_watch_drain(many[6]) == 1);
	for (int i = 0; i < MANY; i++)
		store_watch_destroy(&many[i]);
	store_watch_destroy(&w);
	close_tmp(&st);
	test_assert(fcntl(fd, F_GETFD) < 0); /* closed with the store */
}

/* Breaks records behind the store's back, as a crash or a bug could. */
static int op_break(struct wtx *w, void *ctx, struct buf *error_r)
{
	(void)ctx;
	uint8_t g[STORE_GUID_LEN];
	store_guid_parse(G1, g, NULL);
	uint32_t fid;
	struct folder_rec f;
	int ret = folder_lookup(w->txn, w->st, g, "INBOX", &fid, error_r);
	if (ret == 0)
		ret = folder_get(w->txn, w->st, g, fid, &f, error_r);
	if (ret != 0)
		return ret;
	f.messages += 3;
	f.unseen = 0;
	f.uidnext = 1;
	ret = folder_put(w, g, fid, &f, "INBOX", error_r);
	/* an orphan body with its reference record and hash index entry */
	uint8_t k[KEY_BODY_LEN];
	uint64_t id = 999999;
	key_body(k, id);
	struct bref_rec br = { 1, 5, { 0 } };
	memset(br.hash, 0x42, sizeof(br.hash));
	if (ret == 0)
		ret = wput(w, w->st->db_body, k, sizeof(k), "hello", 5, error_r);
	if (ret == 0)
		ret = wput(w, w->st->db_bref, k, sizeof(k), &br, sizeof(br), error_r);
	if (ret == 0)
		ret = wput(w, w->st->db_bhash, br.hash, 32, &id, sizeof(id), error_r);
	return ret;
}

static void check_finds_and_repairs(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid;
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0);
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0);
	test_assert(check_clean(st));
	test_assert(store_write(st, op_break, NULL, NULL) == 0);
	struct buf rep = BUF_INIT;
	unsigned problems;
	test_assert(store_check(st, 0, &rep, &problems, NULL) == 0);
	test_assert(problems >= 3);
	test_assert(strstr(buf_cstr(&rep), "UIDNEXT") != NULL);
	test_assert(strstr(buf_cstr(&rep), "orphans") != NULL);
	test_assert(strstr(buf_cstr(&rep), "--repair") != NULL);
	buf_reset(&rep);
	test_assert(store_check(st, 1, &rep, &problems, NULL) == 0 && problems >= 3);
	test_assert(strstr(buf_cstr(&rep), "repaired") != NULL);
	test_assert(check_clean(st));
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == 2 && info.unseen == 2 && info.uidnext == 3);
	store_folder_info_free(&info);
	buf_free(&rep);
	close_tmp(&st);
}

/* store_changes(since) for every since against what the message records and the expunges say. */
static int changes_agree(struct store *st, const uint32_t *expunged, const uint64_t *expunged_at, size_t nexp)
{
	struct store_msg *list;
	size_t n;
	struct store_folder_info info;
	if (store_msg_list(st, G1, NULL, NULL, &list, &n, NULL) != 0)
		return 0;
	if (store_folder_status(st, G1, NULL, NULL, &info, NULL) != 0)
		return 0;
	int ok = 1;
	for (uint64_t since = 0; since <= info.highestmodseq && ok; since++) {
		struct store_change *ch;
		size_t nch, want = 0;
		if (store_changes(st, G1, NULL, since, &ch, &nch, NULL) != 0)
			return 0;
		for (size_t i = 0; i < n; i++)
			want += list[i].modseq > since;
		for (size_t i = 0; i < nexp; i++)
			want += expunged_at[i] > since;
		ok = nch == want;
		for (size_t i = 0; i < nch && ok; i++) {
			ok = ch[i].modseq > since && (i == 0 || ch[i - 1].modseq <= ch[i].modseq);
			int found = 0;
			for (size_t j = 0; j < n && !ch[i].expunged; j++)
				found |= list[j].uid == ch[i].uid && list[j].modseq == ch[i].modseq;
			for (size_t j = 0; j < nexp && ch[i].expunged; j++)
				found |= expunged[j] == ch[i].uid && expunged_at[j] == ch[i].modseq;
			ok = ok && found;
		}
		if (!ok)
			fprintf(stderr, "store_changes since %llu: %zu entries, %zu expected\n",
				(unsigned long long)since, nch, want);
		free(ch);
	}
	store_folder_info_free(&info);
	store_msg_list_free(&list, n);
	return ok;
}

/* The change log holds changed messages and expunges; messages that never changed are found by UID. */
static void change_log_layout(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid, exp_uids[4] = { 0 };
	uint64_t exp_at[4] = { 0 };
	size_t nexp = 0;
	for (int i = 0; i < 6; i++)
		test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0);
	test_assert(changes_agree(st, exp_uids, exp_at, nexp));
	uint32_t u2[] = { 2 }, u5[] = { 5 }, u1[] = { 1, 3 };
	struct store_flag_update f = { .uids = u2, .nuids = 1, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN };
	test_assert(store_flags(st, G1, NULL, &f, NULL) == 0);
	free(f.failed_r);
	f.uids = u5;
	f.keywords = "later";
	test_assert(store_flags(st, G1, NULL, &f, NULL) == 0);
	free(f.failed_r);
	f.uids = u2; /* changed twice: one entry, at its latest modseq */
	f.flags = STORE_FLAG_FLAGGED;
	test_assert(store_flags(st, G1, NULL, &f, NULL) == 0);
	free(f.failed_r);
	test_assert(changes_agree(st, exp_uids, exp_at, nexp));
	/* copies into the same folder arrive after everything */
	test_assert(store_copy(st, G1, NULL, u1, 2, G1, NULL, 0, 0, 0, NULL, NULL, NULL) == 0);
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0 && uid == 9);
	test_assert(changes_agree(st, exp_uids, exp_at, nexp));
	/* expunge a changed and an unchanged message */
	uint32_t ex[] = { 5, 6 }, *out;
	size_t nout;
	test_assert(store_expunge(st, G1, NULL, ex, 2, &out, &nout, NULL) == 0 && nout == 2);
	free(out);
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	exp_uids[nexp] = 5, exp_at[nexp++] = info.highestmodseq;
	exp_uids[nexp] = 6, exp_at[nexp++] = info.highestmodseq;
	store_folder_info_free(&info);
	test_assert(changes_agree(st, exp_uids, exp_at, nexp));
	/* the newest message changes: the older unchanged ones are still found */
	uint32_t u9[] = { 9 };
	f.uids = u9;
	test_assert(store_flags(st, G1, NULL, &f, NULL) == 0);
	free(f.failed_r);
	test_assert(store_clear_recent(st, G1, NULL, 0, NULL) == 0);
	test_assert(changes_agree(st, exp_uids, exp_at, nexp));
	test_assert(check_clean(st));
	close_tmp(&st);
}

/* Damage only the new layout can have: lost keyword and hash index entries, a changed message without its change
 * log entry, an unchanged one out of modseq order, a stray keyword record. */
static int op_break_layout(struct wtx *w, void *ctx, struct buf *error_r)
{
	(void)ctx;
	uint8_t g[STORE_GUID_LEN], fk[KEY_FOLDER_LEN], kk[KEY_MSG_LEN];
	store_guid_parse(G1, g, NULL);
	uint32_t fid;
	int ret = folder_lookup(w->txn, w->st, g, "INBOX", &fid, error_r);
	struct msg_rec m1, m2, m3;
	if (ret == 0)
		ret = msg_get(w->txn, w->st, g, fid, 1, &m1, error_r);
	if (ret == 0)
		ret = msg_get(w->txn, w->st, g, fid, 2, &m2, error_r);
	if (ret == 0)
		ret = msg_get(w->txn, w->st, g, fid, 3, &m3, error_r);
	if (ret != 0)
		return ret;
	if (!(m1.flags & MSG_F_KEYWORDS) || !(m2.flags & MSG_F_CHANGED) || (m3.flags & MSG_F_CHANGED))
		return IX_EINVAL; /* the test's setup went wrong */
	key_folder(fk, g, fid);
	key_msg(kk, g, fid, 1);
	ret = wdel(w, w->st->db_kw, kk, sizeof(kk), error_r);
	struct chg_rec c;
	chg_make(&c, m2.modseq, 2, 0);
	if (ret == 0)
		ret = wdel_dup(w, w->st->db_chg, fk, sizeof(fk), &c, sizeof(c), error_r);
	struct msg_rec low = m3;
	low.modseq = 1;
	if (ret == 0)
		ret = wdel_dup(w, w->st->db_msg, fk, sizeof(fk), &m3, sizeof(m3), error_r);
	if (ret == 0)
		ret = wput_dup(w, w->st->db_msg, fk, sizeof(fk), &low, sizeof(low), 0, error_r);
	key_msg(kk, g, fid, 77);
	if (ret == 0)
		ret = wput(w, w->st->db_kw, kk, sizeof(kk), "stray", 5, error_r);
	uint8_t bk[KEY_BODY_LEN];
	key_body(bk, m1.body);
	MDB_val v;
	if (ret == 0)
		ret = tget(w->txn, w->st->db_bref, bk, sizeof(bk), &v, error_r);
	if (ret == 0)
		ret = wdel(w, w->st->db_bhash, (const char *)v.mv_data + offsetof(struct bref_rec, hash), 32, error_r);
	return ret;
}

static void check_new_layout(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	uint32_t uid;
	struct store_target t = { .guid = G1 };
	struct store_append a = { .data = msg1, .len = strlen(msg1), .keywords = "Work", .targets = &t, .ntargets = 1 };
	test_assert(store_append(st, &a, NULL) == 0);
	for (int i = 0; i < 4; i++)
		test_assert(append_to(st, G1, NULL, "Subject: other\r\n\r\nbody\r\n", 0, &uid) == 0);
	uint32_t u2[] = { 2 };
	struct store_flag_update f = { .uids = u2, .nuids = 1, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN };
	test_assert(store_flags(st, G1, NULL, &f, NULL) == 0);
	free(f.failed_r);
	test_assert(check_clean(st));
	test_assert(store_write(st, op_break_layout, NULL, NULL) == 0);
	struct buf rep = BUF_INIT;
	unsigned problems;
	test_assert(store_check(st, 0, &rep, &problems, NULL) == 0);
	test_assert(problems == 5);
	test_assert(strstr(buf_cstr(&rep), "lost its keywords") != NULL);
	test_assert(strstr(buf_cstr(&rep), "missing from the change log") != NULL);
	test_assert(strstr(buf_cstr(&rep), "lower modseq") != NULL);
	test_assert(strstr(buf_cstr(&rep), "keyword records belong to no message") != NULL);
	test_assert(strstr(buf_cstr(&rep), "hash index") != NULL);
	buf_reset(&rep);
	test_assert(store_check(st, 1, &rep, &problems, NULL) == 0 && problems == 5);
	test_assert(check_clean(st));
	/* after the repair the body is found by its hash again: a second delivery shares it */
	test_assert(store_append(st, &a, NULL) == 0);
	struct store_msg m1, m6;
	test_assert(store_msg_get(st, G1, NULL, 1, NULL, &m1, NULL) == 0);
	test_assert(store_msg_get(st, G1, NULL, t.uid, NULL, &m6, NULL) == 0);
	test_assert(memcmp(m1.hash, m6.hash, 32) == 0 && strcmp(m6.keywords, "Work") == 0);
	store_msg_free(&m1);
	store_msg_free(&m6);
	test_assert(check_clean(st));
	buf_free(&rep);
	close_tmp(&st);
}

static int op_old_version(struct wtx *w, void *ctx, struct buf *error_r)
{
	(void)ctx;
	uint32_t ver = 1;
	return wput(w, w->st->db_meta, "version", 7, &ver, sizeof(ver), error_r);
}

/* A store written in an older format is refused with a clear message, and left alone. */
static void old_format_refused(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	test_assert(store_write(st, op_old_version, NULL, NULL) == 0);
	store_close(&st);
	struct buf err = BUF_INIT;
	test_assert(store_open(tmpdir, NULL, &st, &err) == IX_ECORRUPT && st == NULL);
	test_assert(strstr(buf_cstr(&err), "format version 1") != NULL);
	test_assert(store_open(tmpdir, NULL, &st, NULL) == IX_ECORRUPT);
	buf_free(&err);
	close_tmp(&st);
}

static void map_grows_then_refuses(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ix-store-XXXXXX");
	test_assert(mkdtemp(tmpdir) != NULL);
	struct store_settings set;
	store_settings_default(&set);
	set.no_sync = 1;
	set.map_size = 1 << 20;
	set.map_size_max = 4 << 20;
	struct store *st = NULL;
	test_assert(store_open(tmpdir, &set, &st, NULL) == 0);
	size_t len = 200 * 1024;
	char *big = xmalloc(len + 1);
	memset(big, 'x', len);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	big[len] = '\0';
	int ret = 0;
	unsigned stored = 0;
	struct buf err = BUF_INIT;
	for (unsigned i = 0; i < 100; i++) {
		snprintf(big + 16, 12, "%010u", i); /* unique bodies */
		big[26] = 'x';
		uint32_t uid;
		ret = append_to(st, G1, NULL, big, 0, &uid);
		if (ret != 0)
			break;
		stored++;
	}
	test_assert(ret == IX_EAGAIN);
	test_assert(stored >= 8); /* grew past the initial 1 MiB */
	struct store_append a = { .data = big, .len = len };
	struct store_target t = { .guid = G1 };
	a.targets = &t;
	a.ntargets = 1;
	test_assert(store_append(st, &a, &err) == IX_EAGAIN);
	test_assert(strstr(buf_cstr(&err), "full") != NULL);
	struct store_stats stats;
	store_get_stats(st, &stats);
	test_assert(stats.map_size == 4 << 20);
	struct store_folder_info info;
	test_assert(store_folder_status(st, G1, NULL, NULL, &info, NULL) == 0);
	test_assert(info.messages == stored);
	store_folder_info_free(&info);
	test_assert(check_clean(st));
	/* after expunge and purge, there is room again */
	test_assert(store_expunge(st, G1, NULL, NULL, 0, NULL, NULL, NULL) == 0);
	struct store_flag_update d = {
		.uids = (uint32_t[]){ 1, 2, 3 }, .nuids = 3, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_DELETED
	};
	test_assert(store_flags(st, G1, NULL, &d, NULL) == 0);
	free(d.failed_r);
	test_assert(store_expunge(st, G1, NULL, NULL, 0, NULL, NULL, NULL) == 0);
	size_t purged;
	test_assert(store_retention_purge(st, G1, (int64_t)time(NULL) + 5, &purged, NULL) == 0 && purged == 3);
	/* LMDB reuses pages freed by a transaction from the one after the next */
	test_assert(store_folder_subscribe(st, G1, NULL, 1, NULL) == 0);
	test_assert(store_append(st, &a, NULL) == 0);
	free(big);
	buf_free(&err);
	close_tmp(&st);
	/* reopening keeps the grown size */
}

static void bad_input(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ix-store-XXXXXX");
	test_assert(mkdtemp(tmpdir) != NULL);
	struct store_settings set;
	store_settings_default(&set);
	set.no_sync = 1;
	set.max_message_size = 100;
	struct store *st = NULL;
	test_assert(store_open(tmpdir, &set, &st, NULL) == 0);
	struct buf err = BUF_INIT;
	char big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	test_assert(append_to(st, G1, NULL, big, 0, NULL) == IX_ELIMIT);
	struct store_target t = { .guid = "not-a-guid" };
	struct store_append a = { .data = "x", .len = 1, .targets = &t, .ntargets = 1 };
	test_assert(store_append(st, &a, &err) == IX_EINVAL && t.result == IX_EINVAL);
	a.ntargets = 0;
	test_assert(store_append(st, &a, NULL) == IX_EINVAL);
	struct store_target t2 = { .guid = G1 };
	struct store_append k = { .data = "x", .len = 1, .keywords = "ok (bad", .targets = &t2, .ntargets = 1 };
	test_assert(store_append(st, &k, NULL) == IX_EINVAL);
	test_assert(check_clean(st));
	/* a second open in the same process shares the handle */
	struct store *st2 = NULL;
	char *alias = xasprintf("%s/.", tmpdir);
	test_assert(store_open(alias, NULL, &st2, NULL) == 0 && st2 == st);
	free(alias);
	store_close(&st2);
	test_assert(st2 == NULL && check_clean(st));
	buf_free(&err);
	store_close(&st);
	/* a folder that is not a store */
	struct store *bad = NULL;
	err.len = 0;
	test_assert(store_open("/proc/nonexistent/store", NULL, &bad, &err) != 0 && bad == NULL);
	test_assert(err.len > 0);
	buf_free(&err);
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	test_assert(system(cmd) == 0);
	free(cmd);
}

/* the target side of a move: folders keep the source's UIDVALIDITY, messages their UIDs */
static void import_keeps_uids(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct buf err = BUF_INIT;
	uint32_t uv = 0;
	/* a new folder (with its missing parent) takes the given UIDVALIDITY */
	test_assert(store_folder_import(st, G1, "Projects/2024", 1000, 0, 0, &uv, &err) == 0 && uv == 1000);
	struct store_folder_info fi;
	test_assert(store_folder_status(st, G1, "Projects/2024", NULL, &fi, NULL) == 0);
	test_assert(fi.uidvalidity == 1000 && fi.uidnext == 1);
	store_folder_info_free(&fi);
	test_assert(store_folder_status(st, G1, "Projects", NULL, &fi, NULL) == 0 && fi.uidvalidity != 1000);
	store_folder_info_free(&fi);
	/* INBOX made at first use never held a message: it adopts the source's value */
	test_assert(store_folder_import(st, G1, "inbox", 900, 0, 0, &uv, NULL) == 0 && uv == 900);
	/* messages with wanted UIDs, in order, with gaps */
	struct store_target t = { .guid = G1, .folder = "Projects/2024", .want_uid = 3 };
	struct store_append a = { .data = msg1,
				  .len = strlen(msg1),
				  .flags = STORE_FLAG_SEEN,
				  .keywords = "$Label1",
				  .internal_date = 1700000000,
				  .targets = &t,
				  .ntargets = 1 };
	test_assert(store_append(st, &a, NULL) == 0 && t.uid == 3 && t.uidvalidity == 1000);
	t.want_uid = 7;
	test_assert(store_append(st, &a, NULL) == 0 && t.uid == 7);
	/* a UID below UIDNEXT is refused, nothing is stored */
	t.want_uid = 5;
	err.len = 0;
	test_assert(store_append(st, &a, &err) == IX_EEXIST && t.result == IX_EEXIST && err.len > 0);
	t.want_uid = 0;
	test_assert(store_append(st, &a, NULL) == 0 && t.uid == 8);
	struct store_msg m;
	test_assert(store_msg_get(st, G1, "Projects/2024", 3, NULL, &m, NULL) == 0);
	test_assert(m.internal_date == 1700000000 && (m.flags & STORE_FLAG_SEEN) && strcmp(m.keywords, "$Label1") == 0);
	store_msg_free(&m);
	/* a rerun is harmless; UIDNEXT and HIGHESTMODSEQ only go up */
	test_assert(store_folder_import(st, G1, "Projects/2024", 1000, 20, 500, &uv, NULL) == 0);
	test_assert(store_folder_import(st, G1, "Projects/2024", 1000, 10, 5, &uv, NULL) == 0);
	test_assert(store_folder_status(st, G1, "Projects/2024", NULL, &fi, NULL) == 0);
	test_assert(fi.uidvalidity == 1000 && fi.uidnext == 20 && fi.highestmodseq == 500 && fi.messages == 3);
	store_folder_info_free(&fi);
	/* a folder that holds messages under another UIDVALIDITY is left alone */
	err.len = 0;
	test_assert(store_folder_import(st, G1, "Projects/2024", 1234, 0, 0, &uv, &err) == IX_EEXIST);
	test_assert(uv == 1000 && err.len > 0);
	test_assert(store_folder_import(st, G1, "Projects/2024", 0, 0, 0, NULL, NULL) == IX_EINVAL);
	/* a folder created later still gets a UIDVALIDITY above every imported one */
	test_assert(store_folder_create(st, G1, "Later", NULL) == 0);
	test_assert(store_folder_status(st, G1, "Later", NULL, &fi, NULL) == 0 && fi.uidvalidity > 1000);
	store_folder_info_free(&fi);
	test_assert(check_clean(st));
	buf_free(&err);
	close_tmp(&st);
}

/* the source side of a move: a frozen mailbox refuses changes with a temporary error until it is deleted */
static void freeze_refuses_changes(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct buf err = BUF_INIT, note = BUF_INIT;
	uint32_t uid;
	test_assert(append_to(st, G1, NULL, msg1, 0, &uid) == 0);
	int frozen = 1;
	test_assert(store_mailbox_frozen(st, G1, &frozen, NULL, NULL) == 0 && frozen == 0);
	test_assert(store_mailbox_freeze(st, G1, "server-b", NULL) == 0);
	test_assert(store_mailbox_frozen(st, G1, &frozen, &note, NULL) == 0 && frozen == 1);
	test_assert(strcmp(buf_cstr(&note), "server-b") == 0);
	/* a delivery to two mailboxes: the frozen one fails temporarily, the other gets it */
	struct store_target t[2] = { { .guid = G1 }, { .guid = G2 } };
	struct store_append a = { .data = msg1, .len = strlen(msg1), .targets = t, .ntargets = 2 };
	test_assert(store_append(st, &a, &err) == IX_EAGAIN);
	test_assert(t[0].result == IX_EAGAIN && t[1].result == 0 && strstr(buf_cstr(&err), "server-b") != NULL);
	/* every other change is refused too */
	struct store_flag_update upd = { .uids = &uid, .nuids = 1, .mode = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN };
	test_assert(store_flags(st, G1, NULL, &upd, NULL) == IX_EAGAIN);
	test_assert(store_folder_create(st, G1, "New", NULL) == IX_EAGAIN);
	test_assert(store_expunge(st, G1, NULL, &uid, 1, NULL, NULL, NULL) == IX_EAGAIN);
	struct store_folder_info fi;
	test_assert(store_folder_status(st, G1, NULL, NULL, &fi, NULL) == 0 && fi.messages == 1);
	store_folder_info_free(&fi);
	/* unfreezing lets changes through again; freezing again then deleting drops the mark with the mailbox */
	test_assert(store_mailbox_freeze(st, G1, NULL, NULL) == 0);
	test_assert(store_flags(st, G1, NULL, &upd, NULL) == 0);
	test_assert(store_mailbox_freeze(st, G1, "server-b", NULL) == 0);
	test_assert(store_mailbox_delete(st, G1, NULL) == 0);
	test_assert(store_mailbox_frozen(st, G1, &frozen, NULL, NULL) == 0 && frozen == 0);
	test_assert(append_to(st, G1, NULL, msg1, 0, NULL) == 0);
	test_assert(store_mailbox_freeze(st, "bad guid", "x", NULL) == IX_EINVAL);
	test_assert(check_clean(st));
	buf_free(&note);
	buf_free(&err);
	close_tmp(&st);
}

/* a move's marks: they block no change, a frozen mailbox takes them, and they go with the mailbox */
static void move_marks(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	test_assert(append_to(st, G1, NULL, msg1, 0, NULL) == 0);
	int on = 1;
	test_assert(store_mailbox_marked(st, G1, STORE_MARK_INCOMPLETE, &on, NULL) == 0 && on == 0);
	test_assert(store_mailbox_mark(st, G1, STORE_MARK_INCOMPLETE, true, NULL) == 0);
	test_assert(store_mailbox_marked(st, G1, STORE_MARK_INCOMPLETE, &on, NULL) == 0 && on == 1);
	test_assert(store_mailbox_marked(st, G1, STORE_MARK_MOVED, &on, NULL) == 0 && on == 0);
	test_assert(append_to(st, G1, NULL, msg1, 0, NULL) == 0); /* an incomplete copy takes the import */
	test_assert(store_mailbox_mark(st, G1, STORE_MARK_INCOMPLETE, false, NULL) == 0);
	test_assert(store_mailbox_mark(st, G1, STORE_MARK_INCOMPLETE, false, NULL) == 0); /* twice is fine */
	test_assert(store_mailbox_marked(st, G1, STORE_MARK_INCOMPLETE, &on, NULL) == 0 && on == 0);
	test_assert(store_mailbox_freeze(st, G1, "server-b", NULL) == 0);
	test_assert(store_mailbox_mark(st, G1, STORE_MARK_MOVED, true, NULL) == 0);
	test_assert(store_mailbox_mark(st, G1, STORE_MARK_INCOMPLETE, true, NULL) == 0);
	test_assert(store_mailbox_delete(st, G1, NULL) == 0);
	test_assert(store_mailbox_marked(st, G1, STORE_MARK_MOVED, &on, NULL) == 0 && on == 0);
	test_assert(store_mailbox_marked(st, G1, STORE_MARK_INCOMPLETE, &on, NULL) == 0 && on == 0);
	test_assert(store_mailbox_mark(st, "bad guid", STORE_MARK_MOVED, true, NULL) == IX_EINVAL);
	test_assert(check_clean(st));
	close_tmp(&st);
}

/* Past the MIME parser's limits the message itself is refused: IX_EINVAL naming the limit, never a quota. */
static void refuses_unparseable(void)
{
#ifdef STORE_HAVE_MIME
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	struct buf deep = BUF_INIT, wide = BUF_INIT, err = BUF_INIT;
	for (unsigned i = 0; i <= MIME_DEFAULT_MAX_DEPTH; i++)
		buf_printf(&deep, "Content-Type: multipart/mixed; boundary=b%u\r\n\r\n--b%u\r\n", i, i);
	buf_printf(&wide, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (unsigned i = 0; i < MIME_DEFAULT_MAX_PARTS; i++)
		buf_printf(&wide, "--b\r\n\r\n%u\r\n", i);
	buf_printf(&wide, "--b--\r\n");
	struct store_target t = { .guid = G1 };
	struct store_append a = { .data = deep.data, .len = deep.len, .targets = &t, .ntargets = 1 };
	test_assert(store_append(st, &a, &err) == IX_EINVAL && t.result == IX_EINVAL && a.refused);
	test_assert(strstr(buf_cstr(&err), "nested too deeply (limit 32)") != NULL);
	a.data = wide.data;
	a.len = wide.len;
	buf_reset(&err);
	test_assert(store_append(st, &a, &err) == IX_EINVAL && t.result == IX_EINVAL && a.refused);
	test_assert(strstr(buf_cstr(&err), "too many MIME parts (limit 10000)") != NULL);
	test_assert(check_clean(st));
	buf_free(&deep);
	buf_free(&wide);
	buf_free(&err);
	close_tmp(&st);
#endif
}

/* Empties the save-date table: the store as a version without save dates left it. */
static int op_forget_save_dates(struct wtx *w, void *ctx, struct buf *error_r)
{
	(void)ctx;
	int rc = mdb_drop(w->txn, w->st->db_sdate, 0);
	return rc == 0 ? 0 : store_mdb_error(rc, "emptying sdate", error_r);
}

/* Writes a save date for INBOX UID 99 (no such message) and one for UID 2 naming another body: what a version that
 * did not know the table could leave behind. */
static int op_stale_save_dates(struct wtx *w, void *ctx, struct buf *error_r)
{
	(void)ctx;
	uint8_t guid[STORE_GUID_LEN], k[KEY_MSG_LEN];
	int ret = store_guid_parse(G2, guid, error_r);
	uint32_t fid = 0;
	if (ret == 0)
		ret = folder_lookup(w->txn, w->st, guid, "INBOX", &fid, error_r);
	struct sdate_rec sd = { 1234, UINT64_MAX };
	for (uint32_t uid = 2; uid <= 99 && ret == 0; uid += 97) {
		key_msg(k, guid, fid, uid);
		ret = wput(w, w->st->db_sdate, k, sizeof(k), &sd, sizeof(sd), error_r);
	}
	return ret;
}

/* Save dates (RFC 8514): written by APPEND, COPY and MOVE (the time of the copy), not by an import with UIDs; a store
 * from before the table reads as "none" for its messages and dates the new ones; expunge and folder delete remove
 * them; records left for another message are never read as its date and are repaired by the check. */
static void save_dates(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	int64_t t0 = (int64_t)time(NULL), d;
	uint32_t uid, dst[1], v;
	test_assert(append_to(st, G2, NULL, msg1, 0, &uid) == 0 && uid == 1);
	test_assert(store_msg_savedate(st, G2, NULL, 1, &d, NULL) == 0 && d >= t0 && d <= (int64_t)time(NULL));
	/* an older version's store: the message has no save date, before and after a reopen; a new one has */
	test_assert(store_write(st, op_forget_save_dates, NULL, NULL) == 0);
	test_assert(store_msg_savedate(st, G2, NULL, 1, &d, NULL) == IX_ENOTFOUND);
	store_close(&st);
	test_assert(store_open(tmpdir, NULL, &st, NULL) == 0);
	test_assert(store_msg_savedate(st, G2, "INBOX", 1, &d, NULL) == IX_ENOTFOUND);
	test_assert(append_to(st, G2, NULL, "Subject: two\r\n\r\nx\r\n", 0, &uid) == 0 && uid == 2);
	test_assert(store_msg_savedate(st, G2, NULL, 2, &d, NULL) == 0 && d >= t0);
	test_assert(check_clean(st));
	/* COPY and MOVE date the new message; the undated one gets a date by its move */
	test_assert(store_folder_create(st, G2, "Other", NULL) == 0);
	uint32_t two = 2, one = 1;
	test_assert(store_copy(st, G2, NULL, &two, 1, G2, "Other", 0, 0, 0, dst, &v, NULL) == 0 && dst[0] == 1);
	test_assert(store_msg_savedate(st, G2, "Other", 1, &d, NULL) == 0 && d >= t0);
	test_assert(store_copy(st, G2, NULL, &one, 1, G2, "Other", 1, 0, 0, dst, &v, NULL) == 0 && dst[0] == 2);
	test_assert(store_msg_savedate(st, G2, "Other", 2, &d, NULL) == 0 && d >= t0);
	/* an import keeping its UID has none */
	struct store_target t = { .guid = G2, .folder = "Other", .want_uid = 10 };
	struct store_append a = { .data = msg1, .len = strlen(msg1), .targets = &t, .ntargets = 1 };
	test_assert(store_append(st, &a, NULL) == 0 && t.uid == 10);
	test_assert(store_msg_savedate(st, G2, "Other", 10, &d, NULL) == IX_ENOTFOUND);
	/* records left behind: never the date of another message, found and removed by the check */
	test_assert(store_write(st, op_stale_save_dates, NULL, NULL) == 0);
	test_assert(store_msg_savedate(st, G2, NULL, 1, &d, NULL) == IX_ENOTFOUND); /* moved away: gone */
	test_assert(store_msg_savedate(st, G2, NULL, 2, &d, NULL) == IX_ENOTFOUND); /* written for another body */
	struct buf rep = BUF_INIT;
	unsigned problems = 0;
	test_assert(store_check(st, 1, &rep, &problems, NULL) == 0 && problems == 1);
	test_assert(strstr(buf_cstr(&rep), "2 save date records belong to no message") != NULL);
	buf_free(&rep);
	/* expunge and folder delete take the dates along: nothing is left for the check */
	test_assert(store_expunge(st, G2, NULL, &two, 1, NULL, NULL, NULL) == 0);
	test_assert(store_folder_delete(st, G2, "Other", NULL) == 0);
	test_assert(check_clean(st));
	close_tmp(&st);
}

/* Deletes the annotation table itself: the store as a version without annotations left it. */
static int op_drop_annotations(struct wtx *w, void *ctx, struct buf *error_r)
{
	(void)ctx;
	int rc = mdb_drop(w->txn, w->st->db_annot, 1);
	return rc == 0 ? 0 : store_mdb_error(rc, "dropping annot", error_r);
}

static void annot_collect(const char *entry, const void *value, size_t len, void *arg)
{
	struct buf *out = arg;
	buf_printf(out, "%s=%.*s;", entry, (int)len, (const char *)value);
}

static char *annot_list(struct store *st, const char *folder, const char *user, const char *entry, int depth)
{
	struct buf out = BUF_INIT;
	if (store_annot_get(st, G2, folder, user, entry, depth, annot_collect, &out, NULL) != 0)
		buf_append_str(&out, "(error)");
	return buf_steal(&out);
}

/* Annotations (RFC 5464): a store made before the table opens and gets it; entries of a folder and of the mailbox,
 * shared and per-user private, walked to a depth without neighbours that share a prefix; a set beyond the count
 * limit changes nothing; rename keeps them, folder and mailbox delete remove them, the check finds none left. */
static void annotations(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	test_assert(store_folder_create(st, G2, "Notes", NULL) == 0);
	test_assert(store_write(st, op_drop_annotations, NULL, NULL) == 0);
	store_close(&st);
	test_assert(store_open(tmpdir, NULL, &st, NULL) == 0);
	const struct store_annot set[] = {
		{ "/shared/comment", "s", 1 },      { "/private/comment", "p1", 2 }, { "/private/comment/a", "x", 1 },
		{ "/private/comment/a/b", "y", 1 }, { "/private/comments", "z", 1 },
	};
	test_assert(store_annot_set(st, G2, "Notes", "u1", set, IX_ARRAY_LEN(set), NULL) == 0);
	const struct store_annot other = { "/private/comment", "p2", 2 };
	test_assert(store_annot_set(st, G2, "Notes", "u2", &other, 1, NULL) == 0);
	const struct store_annot own = { "/private/comment", "server", 6 };
	test_assert(store_annot_set(st, G2, NULL, "u1", &own, 1, NULL) == 0);
	char *l = annot_list(st, "Notes", "u1", "/private/comment", 0);
	test_assert_str(l, "/private/comment=p1;");
	free(l);
	l = annot_list(st, "Notes", "u2", "/private/comment", 1);
	test_assert_str(l, "/private/comment=p2;");
	free(l);
	l = annot_list(st, "Notes", "u1", "/private/comment", 1);
	test_assert_str(l, "/private/comment=p1;/private/comment/a=x;");
	free(l);
	l = annot_list(st, "Notes", "u1", "/private", -1);
	test_assert_str(l, "/private/comment=p1;/private/comment/a=x;/private/comment/a/b=y;/private/comments=z;");
	free(l);
	l = annot_list(st, "Notes", "u2", "/shared", -1);
	test_assert_str(l, "/shared/comment=s;");
	free(l);
	l = annot_list(st, NULL, "u1", "/private/comment", 0);
	test_assert_str(l, "/private/comment=server;");
	free(l);
	/* the limit: u1 sees 5 entries; 96 more is one too many, and none of them is set */
	struct store_annot many[STORE_ANNOT_PER_FOLDER_MAX];
	char names[STORE_ANNOT_PER_FOLDER_MAX][32];
	for (size_t i = 0; i < STORE_ANNOT_PER_FOLDER_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "/private/n%zu", i);
		many[i] = (struct store_annot){ names[i], "v", 1 };
	}
	struct buf err = BUF_INIT;
	test_assert(store_annot_set(st, G2, "Notes", "u1", many, STORE_ANNOT_PER_FOLDER_MAX - 4, &err) == IX_ELIMIT);
	test_assert(strstr(buf_cstr(&err), "too many annotations") != NULL);
	l = annot_list(st, "Notes", "u1", "/private/n0", 0);
	test_assert_str(l, "");
	free(l);
	test_assert(store_annot_set(st, G2, "Notes", "u1", many, STORE_ANNOT_PER_FOLDER_MAX - 5, NULL) == 0);
	const struct store_annot gone = { "/private/comments", NULL, 0 };
	test_assert(store_annot_set(st, G2, "Notes", "u1", &gone, 1, NULL) == 0);
	test_assert(store_annot_set(st, G2, "Nope", "u1", &gone, 1, NULL) == IX_ENOTFOUND);
	const struct store_annot bad = { "/public/x", "v", 1 };
	test_assert(store_annot_set(st, G2, "Notes", "u1", &bad, 1, NULL) == IX_EINVAL);
	test_assert(check_clean(st));
	/* rename keeps, delete removes */
	test_assert(store_folder_rename(st, G2, "Notes", "Notes2", NULL) == 0);
	l = annot_list(st, "Notes2", "u1", "/shared/comment", 0);
	test_assert_str(l, "/shared/comment=s;");
	free(l);
	test_assert(store_folder_delete(st, G2, "Notes2", NULL) == 0);
	test_assert(store_folder_create(st, G2, "Notes2", NULL) == 0);
	l = annot_list(st, "Notes2", "u1", "/private", -1);
	test_assert_str(l, "");
	free(l);
	test_assert(check_clean(st));
	test_assert(store_mailbox_delete(st, G2, NULL) == 0);
	test_assert(check_clean(st));
	buf_free(&err);
	close_tmp(&st);
}

/* a mailbox's Sieve scripts: put, list, activate, rename, the active one kept from deletion, seen records, and
 * all of it gone with the mailbox */
static void sieve_scripts(void)
{
	struct store *st = open_tmp(1);
	test_assert(st != NULL);
	test_assert(store_mailbox_ensure(st, G1, NULL) == 0);
	struct buf a = BUF_INIT, b = BUF_INIT;
	test_assert(store_sieve_put(st, G1, "rules", "keep;", 5, NULL) == 0);
	test_assert(store_sieve_put(st, G1, "other", "stop;", 5, NULL) == 0);
	test_assert(store_sieve_put(st, G1, "a/b", "x", 1, NULL) == IX_EINVAL);
	test_assert(store_sieve_active(st, G1, NULL, &a, NULL) == IX_ENOTFOUND);
	test_assert(store_sieve_activate(st, G1, "nope", NULL) == IX_ENOTFOUND);
	test_assert(store_sieve_activate(st, G1, "rules", NULL) == 0);
	test_assert(store_sieve_list(st, G1, &a, &b, NULL) == 0);
	test_assert_str(buf_cstr(&a), "other\nrules\n");
	test_assert_str(buf_cstr(&b), "rules");
	test_assert(store_sieve_delete(st, G1, "rules", NULL) == IX_EPERM);
	test_assert(store_sieve_rename(st, G1, "rules", "other", NULL) == IX_EEXIST);
	test_assert(store_sieve_rename(st, G1, "rules", "main", NULL) == 0);
	buf_reset(&a);
	buf_reset(&b);
	test_assert(store_sieve_active(st, G1, &a, &b, NULL) == 0);
	test_assert_str(buf_cstr(&a), "main");
	test_assert_str(buf_cstr(&b), "keep;");
	test_assert(store_sieve_delete(st, G1, "other", NULL) == 0);
	test_assert(store_sieve_delete(st, G1, "other", NULL) == IX_ENOTFOUND);
	test_assert(store_sieve_seen(st, G1, "k", 1, 100, 0, NULL) == 0);
	test_assert(store_sieve_seen(st, G1, "k", 1, 100, 0, NULL) == 1);
	test_assert(store_sieve_seen(st, G1, "k", 1, 0, 0, NULL) == 0);
	test_assert(store_sieve_seen(st, G1, "j", 1, 100, 1, NULL) == 0);
	test_assert(store_sieve_seen(st, G1, "j", 1, 100, 1, NULL) == 0);
	/* another mailbox sees none of it */
	test_assert(store_mailbox_ensure(st, G2, NULL) == 0);
	test_assert(store_sieve_seen(st, G2, "k", 1, 100, 1, NULL) == 0);
	buf_reset(&a);
	test_assert(store_sieve_list(st, G2, &a, NULL, NULL) == 0 && a.len == 0);
	test_assert(store_mailbox_delete(st, G1, NULL) == 0);
	test_assert(store_mailbox_ensure(st, G1, NULL) == 0);
	buf_reset(&a);
	buf_reset(&b);
	test_assert(store_sieve_list(st, G1, &a, &b, NULL) == 0 && a.len == 0 && b.len == 0);
	test_assert(store_sieve_seen(st, G1, "k", 1, 100, 1, NULL) == 0);
	buf_free(&a);
	buf_free(&b);
	close_tmp(&st);
}

TEST_MAIN("store", TEST_CASE(standard_folders_on_first_use), TEST_CASE(folder_create_rename_delete),
	  TEST_CASE(append_fetch), TEST_CASE(single_instance_refcounts), TEST_CASE(one_bad_target_fails_alone),
	  TEST_CASE(flags_modseq_unchangedsince), TEST_CASE(copy_move_expunge), TEST_CASE(move_into_same_folder),
	  TEST_CASE(quota_limits), TEST_CASE(append_batch), TEST_CASE(retention_recover), TEST_CASE(search_messages),
	  TEST_CASE(public_folders_acl_seen), TEST_CASE(notification), TEST_CASE(notification_reuse),
	  TEST_CASE(check_finds_and_repairs), TEST_CASE(change_log_layout), TEST_CASE(check_new_layout),
	  TEST_CASE(old_format_refused), TEST_CASE(map_grows_then_refuses), TEST_CASE(bad_input),
	  TEST_CASE(import_keeps_uids), TEST_CASE(freeze_refuses_changes), TEST_CASE(move_marks),
	  TEST_CASE(refuses_unparseable), TEST_CASE(save_dates), TEST_CASE(annotations), TEST_CASE(sieve_scripts))
