/* import_files.c - interchange import maildir LOGIN DIR and import mbox LOGIN FILE [--folder NAME]: mail kept in
 * files by another server or a mail client, into a user's mailbox. A run again copies only what is new. */
#include "attendant/cli.h"
#include "attendant/import.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/imap/mutf7.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_MESSAGE_MAX (256u * 1024 * 1024) /* the largest message file read */

const char import_files_help[] =
	"usage: interchange import maildir LOGIN DIR\n"
	"       interchange import mbox LOGIN FILE [--folder NAME] [--format mboxrd|mboxo]\n\n"
	"maildir: every folder of a Maildir (Maildir++ '.Sub.Folder' or one folder per directory, as Dovecot and\n"
	"Courier keep them) with the flags of the file names, Dovecot's keywords, the files' dates as received dates,\n"
	"and the subscriptions file. mbox: the messages of one mbox file into NAME (default INBOX), dated by their\n"
	"From_ lines, flagged by Status and X-Status; mboxrd (default) unquotes '>From ' lines at any depth, mboxo\n"
	"only the first. Line ends become CRLF. Run again, either copies only what it did not copy before.\n";

/* ---- what was copied before: "FOLDER\tKEY" lines in DATA/import/LOGIN.files ----
 * Messages are stored in batches (one folder's, up to FILES_BATCH_MSGS or FILES_BATCH_BYTES), as import imap does,
 * with the same journal: before the store's transaction LOGIN.files.journal is rewritten with an I line (the folder,
 * its UIDNEXT) and a P line per message (its SHA-256 and key), synced; after the commit the keys of those stored are
 * appended to LOGIN.files, synced. A run that finds the journal (killed between the two) looks in the store for the
 * messages of its keys LOGIN.files lacks and records those it finds. So LOGIN.files never claims a message the store
 * lacks, and a message the store holds is never stored again. */

#define FILES_BATCH_MSGS 200                  /* messages stored in one transaction */
#define FILES_BATCH_BYTES (32u * 1024 * 1024) /* ... or bodies held for it at most */

struct seen {
	char **v;
	size_t n;
	FILE *out; /* appended to as messages are stored */
	char *journal_path;
	int journal; /* -1 until the first batch */
	/* the batch being gathered (one folder's messages), stored by seen_flush */
	struct pending {
		char *key, *what, *data, *keywords;
		size_t len;
		int64_t date;
		unsigned flags;
	} * p;
	size_t np, bytes;
	char *folder;
	bool unrecorded; /* a stored batch could not be recorded: the journal stays for the next run */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool seen_has(const struct seen *s, const char *folder, const char *key)
{
	char *k = xasprintf("%s\t%s", folder, key);
	bool found = s->n > 0 && bsearch(&k, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
	free(k);
	return found;
}

/* Appends the record of n messages of folder (keys) to LOGIN.files, synced. 0 or -1. */
static int seen_record(struct seen *s, const char *folder, char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(s->out, "%s\t%s\n", folder, keys[i]);
	return n == 0 || (fflush(s->out) == 0 && fdatasync(fileno(s->out)) == 0) ? 0 : -1;
}

/* The journal a stopped run left: the messages of its batch the store holds and LOGIN.files does not list are
 * recorded; then it goes. */
static void seen_recover(struct seen *s, struct import_target *t)
{
	char *data = NULL;
	size_t len = 0;
	if (read_file(s->journal_path, 1u << 30, &data, &len) != 0)
		return;
	char *folder = NULL, **keys = NULL;
	uint32_t uidnext = 0;
	uint8_t(*hash)[32] = NULL;
	size_t n = 0;
	for (char *line = data, *next; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next == NULL)
			break; /* a line the journal's writer did not finish: the batch was not stored */
		*next++ = '\0';
		char *f[3];
		size_t nf = import_split_tabs(line, f, 3);
		if (strcmp(f[0], "I") == 0 && nf == 3 && folder == NULL) {
			folder = xstrdup(f[1]);
			uidnext = (uint32_t)strtoul(f[2], NULL, 10);
		} else if (strcmp(f[0], "P") == 0 && nf == 3 && folder != NULL && strlen(f[1]) == 64 &&
			   !seen_has(s, folder, f[2])) {
			hash = xrealloc(hash, (n + 1) * sizeof(*hash));
			keys = xrealloc(keys, (n + 1) * sizeof(*keys));
			import_sha256_parse(f[1], hash[n]);
			keys[n++] = xstrdup(f[2]);
		}
	}
	uint32_t *uid = xcalloc(n + 1, sizeof(*uid));
	size_t found = folder != NULL
			       ? import_find_stored(t, folder, uidnext, (const uint8_t(*)[32])hash, n, NULL, 0, uid)
			       : 0;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (uid[i] == 0) {
			free(keys[i]);
			continue;
		}
		keys[w++] = keys[i];
		s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
		s->v[s->n++] = xasprintf("%s\t%s", folder, keys[i]);
	}
	if (seen_record(s, folder, keys, w) != 0)
		printf("  warning: cannot write the record of what was copied: %s\n", strerror(errno));
	else if (unlink(s->journal_path) == 0)
		fsync_parent(s->journal_path);
	if (found > 0) {
		printf("  %zu message%s stored by a run that stopped before recording %s: recorded now\n", found,
		       found == 1 ? "" : "s", found == 1 ? "it" : "them");
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	}
	for (size_t i = 0; i < w; i++)
		free(keys[i]);
	free(keys);
	free(uid);
	free(hash);
	free(folder);
	free(data);
}

static int seen_open(struct seen *s, struct import_target *t, struct buf *error_r)
{
	s->journal = -1;
	char *path = xasprintf("%s/%s.files", t->dir, t->login);
	s->journal_path = xasprintf("%s.journal", path);
	char *data = NULL;
	size_t len = 0;
	if (read_file(path, 1u << 30, &data, &len) == 0) {
		for (char *line = data, *next; *line != '\0'; line = next) {
			next = strchr(line, '\n');
			if (next == NULL)
				break;
			*next++ = '\0';
			s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
			s->v[s->n++] = xstrdup(line);
		}
	}
	free(data);
	if (s->n > 1) /* qsort's array may not be NULL, even when empty */
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	s->out = fopen(path, "a");
	if (s->out == NULL)
		buf_printf(error_r, "cannot write %s: %s", path, strerror(errno));
	else
		seen_recover(s, t);
	free(path);
	return s->out != NULL ? 0 : IX_EIO;
}

/* Stores the batch gathered: announced in the journal (synced), stored in one transaction, recorded in LOGIN.files
 * (synced). When the journal cannot be written nothing is stored: each message is reported (a later run tries it). */
static void seen_flush(struct seen *s, struct import_target *t)
{
	size_t n = s->np;
	if (n == 0)
		return;
	struct buf j = BUF_INIT;
	buf_printf(&j, "I\t%s\t%u\n", s->folder, import_uidnext(t, s->folder));
	struct import_msg *msgs = xcalloc(n, sizeof(*msgs));
	for (size_t i = 0; i < n; i++) {
		const struct pending *p = &s->p[i];
		buf_append_str(&j, "P\t");
		import_sha256_hex(p->data, p->len, &j);
		buf_printf(&j, "\t%s\n", p->key);
		msgs[i] = (struct import_msg){ .folder = s->folder,
					       .what = p->what,
					       .data = p->data,
					       .len = p->len,
					       .date = p->date,
					       .flags = p->flags,
					       .keywords = p->keywords };
	}
	if (s->journal < 0) {
		s->journal = open(s->journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (s->journal >= 0)
			fsync_parent(s->journal_path);
	}
	if (s->journal < 0 || ftruncate(s->journal, 0) != 0 || write_full(s->journal, j.data, j.len) != 0 ||
	    fdatasync(s->journal) != 0) {
		char *why = xasprintf("cannot write %s: %s", s->journal_path, strerror(errno));
		for (size_t i = 0; i < n; i++) {
			t->done++;
			import_error(t, s->p[i].what, why);
		}
		free(why);
	} else {
		import_store_batch(t, msgs, n);
		char **keys = xcalloc(n, sizeof(*keys));
		size_t stored = 0;
		for (size_t i = 0; i < n; i++)
			if (msgs[i].result == 0)
				keys[stored++] = s->p[i].key;
		/* when this fails the journal stays: the next run finds the batch in the store */
		if (seen_record(s, s->folder, keys, stored) != 0) {
			printf("  warning: cannot write the record of what was copied: %s\n", strerror(errno));
			s->unrecorded = true;
		}
		free(keys);
	}
	for (size_t i = 0; i < n; i++) {
		free(s->p[i].key);
		free(s->p[i].what);
		free(s->p[i].data);
		free(s->p[i].keywords);
	}
	free(msgs);
	buf_free(&j);
	s->np = 0;
	s->bytes = 0;
}

/* Takes one message of folder (key: its record in LOGIN.files; what: its name in an error; msg: the message as
 * stored, whose memory it takes) into the batch, stored when full. */
static void seen_store(struct seen *s, struct import_target *t, const char *folder, const char *key, const char *what,
		       struct buf *msg, int64_t date, unsigned flags, const char *keywords)
{
	if (s->np > 0 && (strcmp(s->folder, folder) != 0 || s->bytes + msg->len > FILES_BATCH_BYTES))
		seen_flush(s, t);
	if (s->np == 0) {
		free(s->folder);
		s->folder = xstrdup(folder);
		if (s->p == NULL)
			s->p = xcalloc(FILES_BATCH_MSGS, sizeof(*s->p));
	}
	struct pending *p = &s->p[s->np++];
	p->key = xstrdup(key);
	p->what = xstrdup(what);
	p->len = msg->len;
	p->data = msg->data != NULL ? buf_steal(msg) : xstrdup("");
	p->keywords = xstrdup(keywords != NULL ? keywords : "");
	p->date = date;
	p->flags = flags;
	s->bytes += p->len;
	if (s->np == FILES_BATCH_MSGS)
		seen_flush(s, t);
}

/* Stores what the batch holds, then frees s; the journal goes (what it announced is recorded). */
static void seen_close(struct seen *s, struct import_target *t)
{
	seen_flush(s, t);
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	if (s->out != NULL)
		fclose(s->out);
	if (s->journal >= 0) {
		close(s->journal);
		if (!s->unrecorded)
			unlink(s->journal_path);
	}
	free(s->journal_path);
	free(s->p);
	free(s->folder);
	memset(s, 0, sizeof(*s));
}

/* The message with every bare LF made CRLF (as IMAP hands messages out), into out. */
static void crlf(const char *p, size_t len, struct buf *out)
{
	buf_reset(out);
	buf_reserve(out, len + len / 32 + 2);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n' || (i > 0 && p[i - 1] == '\r'))
			continue;
		buf_append(out, p + start, i - start);
		buf_append(out, "\r\n", 2);
		start = i + 1;
	}
	buf_append(out, p + start, len - start);
}

/* Our folder of a role (the standard folder that carries it), or NULL. Caller frees. */
static char *role_folder(struct import_target *t, enum store_special_use use)
{
	struct store_folder_info *list = NULL;
	size_t count = 0;
	char *name = NULL;
	struct buf err = BUF_INIT;
	if (use != STORE_USE_NONE && store_folder_list(t->st, t->guid, NULL, &list, &count, &err) == 0)
		for (size_t i = 0; i < count && name == NULL; i++)
			if (list[i].special_use == use)
				name = xstrdup(list[i].name);
	store_folder_list_free(&list, count);
	buf_free(&err);
	return name;
}

/* Where a folder of the files goes here: a usual special folder name at the top ("Sent Items") to ours, else the same
 * name. */
static char *local_folder(struct import_target *t, const char *name)
{
	size_t top = strcspn(name, "/");
	char *first = xstrndup(name, top);
	char *role = role_folder(t, import_use_by_name(first));
	char *out = role != NULL ? xasprintf("%s%s", role, name + top) : xstrdup(name);
	free(first);
	free(role);
	return out;
}

static void ensure_folder(struct import_target *t, const char *folder)
{
	struct buf err = BUF_INIT;
	int made = store_folder_create(t->st, t->guid, folder, &err);
	if (made != 0 && made != IX_EEXIST)
		printf("  warning: %s: %s\n", folder, buf_cstr(&err));
	buf_free(&err);
}

/* ---- Maildir ---- */

struct mfile {
	char *name;
	uint32_t order; /* Dovecot's UID where it keeps a dovecot-uidlist, else 0 (name order) */
};

static int cmp_mfile(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The keyword names of Dovecot's dovecot-keywords ("0 $Label1" lines): index -> name, 26 at most. */
static void read_keywords(const char *dir, char *names[26])
{
	char *path = xasprintf("%s/dovecot-keywords", dir), *data = NULL;
	size_t len;
	if (read_file(path, 1u << 20, &data, &len) == 0) {
		for (char *line = strtok(data, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			char *sp = strchr(line, ' ');
			unsigned long i = strtoul(line, NULL, 10);
			if (sp != NULL && i < 26) {
				free(names[i]);
				names[i] = xstrdup(sp + 1);
			}
		}
	}
	free(data);
	free(path);
}

/* Dovecot's UIDs of the files' base names ("UID [fields] :BASE" lines after a header line). */
static uint32_t uidlist_order(const char *uidlist, const char *base)
{
	if (uidlist == NULL)
		return 0;
	size_t bl = strlen(base);
	for (const char *p = strstr(uidlist, base); p != NULL; p = strstr(p + 1, base)) {
		if (p[-1] != ':' || (p[bl] != '\n' && p[bl] != '\0' && p[bl] != ':'))
			continue;
		const char *line = p;
		while (line > uidlist && line[-1] != '\n')
			line--;
		return (uint32_t)strtoul(line, NULL, 10);
	}
	return 0;
}

/* Copies one folder of a Maildir (dir holds its cur/ and new/) into folder here. */
static void maildir_folder(struct import_target *t, struct seen *seen, const char *dir, const char *from,
			   const char *folder)
{
	import_folder_begin(t, from, folder);
	ensure_folder(t, folder);
	char *kw[26] = { NULL };
	read_keywords(dir, kw);
	char *uidpath = xasprintf("%s/dovecot-uidlist", dir), *uidlist = NULL;
	size_t ulen;
	if (read_file(uidpath, 1u << 28, &uidlist, &ulen) != 0)
		uidlist = NULL;
	free(uidpath);
	struct mfile *files = NULL;
	size_t n = 0, known = 0;
	uint64_t bytes = 0;
	static const char *const subs[] = { "cur", "new" };
	for (size_t s = 0; s < 2; s++) {
		char *sub = xasprintf("%s/%s", dir, subs[s]);
		DIR *d = opendir(sub);
		for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
			if (e->d_name[0] == '.')
				continue;
			char *base = xstrndup(e->d_name, strcspn(e->d_name, ":"));
			struct stat sb;
			char *path = xasprintf("%s/%s", sub, e->d_name);
			if (seen_has(seen, folder, base) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
				known += seen_has(seen, folder, base);
				free(base);
				free(path);
				continue;
			}
			files = xrealloc(files, (n + 1) * sizeof(*files));
			files[n].name = path;
			files[n++].order = uidlist_order(uidlist, base);
			/* the size with CRLF line ends where the name says it (",W=": Dovecot, Courier) */
			const char *w = strstr(e->d_name, ",W=");
			bytes += w != NULL ? strtoull(w + 3, NULL, 10) : (uint64_t)sb.st_size;
			free(base);
		}
		if (d != NULL)
			closedir(d);
		free(sub);
	}
	free(uidlist);
	if (n > 1) /* qsort's array may not be NULL, even when empty */
		qsort(files, n, sizeof(*files), cmp_mfile);
	import_folder_todo(t, known, n, bytes);
	struct buf msg = BUF_INIT, kws = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const char *name = strrchr(files[i].name, '/') + 1;
		char *data = NULL;
		size_t len = 0;
		struct stat sb;
		if (read_file(files[i].name, FILE_MESSAGE_MAX, &data, &len) != 0 || stat(files[i].name, &sb) != 0) {
			t->done++;
			import_error(t, name, strerror(errno));
			free(data);
			continue;
		}
		unsigned flags = 0;
		buf_reset(&kws);
		const char *info = strstr(name, ":2,");
		for (const char *f = info != NULL ? info + 3 : ""; *f != '\0'; f++) {
			const char *add = NULL;
			switch (*f) {
			case 'D': flags |= STORE_FLAG_DRAFT; break;
			case 'F': flags |= STORE_FLAG_FLAGGED; break;
			case 'R': flags |= STORE_FLAG_ANSWERED; break;
			case 'S': flags |= STORE_FLAG_SEEN; break;
			case 'T': flags |= STORE_FLAG_DELETED; break;
			case 'P': add = "$Forwarded"; break;
			default:
				if (*f >= 'a' && *f <= 'z')
					add = kw[*f - 'a'];
			}
			if (add != NULL)
				buf_printf(&kws, "%s%s", kws.len > 0 ? " " : "", add);
		}
		crlf(data, len, &msg);
		free(data);
		char *base = xstrndup(name, strcspn(name, ":"));
		seen_store(seen, t, folder, base, name, &msg, (int64_t)sb.st_mtime, flags, kws.data);
		free(base);
	}
	seen_flush(seen, t);
	import_folder_end(t);
	for (size_t i = 0; i < n; i++)
		free(files[i].name);
	free(files);
	for (size_t i = 0; i < 26; i++)
		free(kw[i]);
	buf_free(&msg);
	buf_free(&kws);
}

static bool is_maildir(const char *dir)
{
	char *cur = xasprintf("%s/cur", dir);
	struct stat sb;
	bool yes = stat(cur, &sb) == 0 && S_ISDIR(sb.st_mode);
	free(cur);
	return yes;
}

/* A Maildir folder name as stored (modified UTF-7, sep between levels) in UTF-8 with '/'. */
static char *maildir_name(const char *name, char sep)
{
	struct buf u = BUF_INIT;
	if (mutf7_to_utf8(name, strlen(name), &u, NULL) != 0) {
		buf_reset(&u);
		buf_append_str(&u, name);
	}
	for (size_t i = 0; i < u.len; i++)
		if (u.data[i] == sep)
			u.data[i] = '/';
	return buf_steal(&u);
}

/* Folders one per directory (Dovecot's LAYOUT=fs): every subdirectory holding a Maildir, prefix its name. */
static void maildir_tree(struct import_target *t, struct seen *seen, const char *root, const char *rel, size_t *n)
{
	char *path = rel[0] != '\0' ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(path);
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "cur") == 0 || strcmp(e->d_name, "new") == 0 ||
		    strcmp(e->d_name, "tmp") == 0)
			continue;
		char *sub = xasprintf("%s/%s", path, e->d_name);
		char *subrel = rel[0] != '\0' ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
		struct stat sb;
		if (stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			if (is_maildir(sub)) {
				char *from = maildir_name(subrel, '/'), *to = local_folder(t, from);
				maildir_folder(t, seen, sub, from, to);
				free(from);
				free(to);
				(*n)++;
			}
			maildir_tree(t, seen, root, subrel, n);
		}
		free(sub);
		free(subrel);
	}
	if (d != NULL)
		closedir(d);
	free(path);
}

/* The subscriptions file of a Maildir (Dovecot's "V\t2" form, tab between levels, or one name a line). */
static void maildir_subscriptions(struct import_target *t, const char *dir)
{
	char *path = xasprintf("%s/subscriptions", dir), *data = NULL;
	size_t len;
	if (read_file(path, 1u << 24, &data, &len) != 0) {
		free(path);
		return;
	}
	bool v2 = strncmp(data, "V\t", 2) == 0, body = !v2;
	struct buf err = BUF_INIT;
	for (char *line = data, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (!body) {
			body = line[0] == '\0';
			continue;
		}
		if (line[0] == '\0')
			continue;
		char *name = maildir_name(line, v2 ? '\t' : '.'), *local = local_folder(t, name);
		if (store_folder_subscribe(t->st, t->guid, local, 1, &err) != 0)
			printf("  warning: %s stays unsubscribed: %s\n", local, buf_cstr(&err));
		buf_reset(&err);
		free(name);
		free(local);
	}
	buf_free(&err);
	free(data);
	free(path);
}

static int import_maildir(struct import_target *t, const char *dir, struct buf *error_r)
{
	if (access(dir, R_OK | X_OK) != 0) {
		buf_printf(error_r,
			   "cannot read %s: %s (the import runs as the service user: the files must be readable "
			   "by it)",
			   dir, strerror(errno));
		return IX_EIO;
	}
	if (!is_maildir(dir)) {
		buf_printf(error_r, "%s is not a Maildir (it has no cur folder)", dir);
		return IX_EINVAL;
	}
	struct seen seen = { 0 };
	int ret = seen_open(&seen, t, error_r);
	if (ret != 0) {
		seen_close(&seen, t);
		return ret;
	}
	maildir_folder(t, &seen, dir, "INBOX", "INBOX");
	/* Maildir++: .Sub.Folder beside cur/ */
	DIR *d = opendir(dir);
	size_t nested = 0;
	struct mfile *dots = NULL;
	size_t ndots = 0;
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] != '.' || e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0)
			continue;
		dots = xrealloc(dots, (ndots + 1) * sizeof(*dots));
		dots[ndots].name = xstrdup(e->d_name);
		dots[ndots++].order = 0;
	}
	if (d != NULL)
		closedir(d);
	/* parents before children (qsort's array may not be NULL, even when empty) */
	if (ndots > 1)
		qsort(dots, ndots, sizeof(*dots), cmp_mfile);
	for (size_t i = 0; i < ndots; i++) {
		char *sub = xasprintf("%s/%s", dir, dots[i].name);
		if (is_maildir(sub)) {
			char *from = maildir_name(dots[i].name + 1, '.'), *to = local_folder(t, from);
			maildir_folder(t, &seen, sub, from, to);
			free(from);
			free(to);
		}
		free(sub);
		free(dots[i].name);
	}
	free(dots);
	maildir_tree(t, &seen, dir, "", &nested);
	maildir_subscriptions(t, dir);
	seen_close(&seen, t);
	return 0;
}

/* ---- mbox ---- */

static bool from_line(const char *p, const char *end)
{
	return end - p >= 5 && memcmp(p, "From ", 5) == 0;
}

/* The date of a From_ line ("From addr  Mon Jun  1 10:00:00 2020"), UTC; 0 when it has none. */
static int64_t from_date(const char *line, size_t len)
{
	char *l = xstrndup(line, len);
	char *p = l + 5;
	p += strcspn(p, " \t");
	p += strspn(p, " \t");
	struct tm tm = { 0 };
	const char *end = strptime(p, "%a %b %d %H:%M:%S %Y", &tm);
	free(l);
	return end != NULL ? (int64_t)timegm(&tm) : 0;
}

/* Flags from the header fields mail clients keep in mbox files: Status (R: seen), X-Status (A answered, F flagged,
 * T draft, D deleted), X-Keywords. */
static unsigned mbox_flags(const char *msg, size_t len, struct buf *keywords)
{
	unsigned flags = 0;
	buf_reset(keywords);
	for (const char *p = msg, *end = msg + len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
		if (l == 0 || (l == 1 && p[0] == '\r'))
			break; /* the end of the header */
		char *line = xstrndup(p, l);
		line[strcspn(line, "\r")] = '\0';
		if (strncasecmp(line, "Status:", 7) == 0 && strchr(line + 7, 'R') != NULL)
			flags |= STORE_FLAG_SEEN;
		else if (strncasecmp(line, "X-Status:", 9) == 0)
			for (const char *f = line + 9; *f != '\0'; f++)
				flags |= *f == 'A'   ? STORE_FLAG_ANSWERED
					 : *f == 'F' ? STORE_FLAG_FLAGGED
					 : *f == 'T' ? STORE_FLAG_DRAFT
					 : *f == 'D' ? STORE_FLAG_DELETED
						     : 0;
		else if (strncasecmp(line, "X-Keywords:", 11) == 0)
			for (char *save = NULL, *k = strtok_r(line + 11, " ,\t", &save); k != NULL;
			     k = strtok_r(NULL, " ,\t", &save))
				buf_printf(keywords, "%s%s", keywords->len > 0 ? " " : "", k);
		free(line);
		p = eol != NULL ? eol + 1 : end;
	}
	return flags;
}

/* One message of the file (between its From_ line and the next): '>From ' lines unquoted (mboxrd: one '>' off
 * any number; mboxo: only '>From '), line ends CRLF, into out. */
static void mbox_message(const char *p, size_t len, bool rd, struct buf *out)
{
	struct buf plain = BUF_INIT;
	for (const char *end = p + len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol != NULL ? (size_t)(eol - p) + 1 : (size_t)(end - p);
		size_t q = 0;
		while (q < l && p[q] == '>')
			q++;
		if (q > 0 && (rd || q == 1) && l - q >= 5 && memcmp(p + q, "From ", 5) == 0)
			buf_append(&plain, p + 1, l - 1);
		else
			buf_append(&plain, p, l);
		p += l;
	}
	crlf(plain.data != NULL ? plain.data : "", plain.len, out);
	buf_free(&plain);
}

static int import_mbox(struct import_target *t, const char *file, const char *folder, bool rd, struct buf *error_r)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		buf_printf(error_r, "cannot read %s: %s%s", file, strerror(errno),
			   errno == EACCES ? " (the import runs as the service user: the file must be readable by it)"
					   : "");
		if (fd >= 0)
			close(fd);
		return IX_EIO;
	}
	size_t size = (size_t)sb.st_size;
	const char *map = size > 0 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : "";
	close(fd);
	if (map == MAP_FAILED) {
		buf_printf(error_r, "cannot read %s: %s", file, strerror(errno));
		return IX_EIO;
	}
	const char *end = map + size;
	if (size > 0 && !from_line(map, end)) {
		buf_printf(error_r, "%s is not an mbox file (it does not begin with a From_ line)", file);
		munmap((void *)map, size);
		return IX_EINVAL;
	}
	struct seen seen = { 0 };
	int ret = seen_open(&seen, t, error_r);
	char *local = NULL;
	if (ret == 0) {
		local = folder != NULL ? xstrdup(folder) : xstrdup("INBOX");
		import_folder_begin(t, file, local);
		ensure_folder(t, local);
	}
	/* the messages: [start of From_ line, start of the next) */
	const char **starts = NULL;
	size_t n = 0;
	for (const char *p = map; ret == 0 && p < end;) {
		if (from_line(p, end)) {
			starts = xrealloc(starts, (n + 2) * sizeof(*starts));
			starts[n++] = p;
		}
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		p = eol != NULL ? eol + 1 : end;
	}
	if (starts != NULL)
		starts[n] = end;
	size_t known = 0, todo = 0;
	uint64_t bytes = 0;
	char(*keys)[EVP_MAX_MD_SIZE * 2 + 1] = n > 0 ? xmalloc(n * sizeof(*keys)) : NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		EVP_Digest(starts[i], (size_t)(starts[i + 1] - starts[i]), md, &mdlen, EVP_sha256(), NULL);
		for (unsigned k = 0; k < mdlen; k++)
			snprintf(keys[i] + 2 * k, 3, "%02x", md[k]);
		/* the same message twice in a file counts twice: the key says which occurrence */
		size_t again = 0;
		for (size_t j = 0; j < i; j++)
			again += strncmp(keys[j], keys[i], 64) == 0;
		if (again > 0)
			snprintf(keys[i] + 64, sizeof(keys[i]) - 64, "-%zu", again);
		if (seen_has(&seen, local, keys[i]))
			known++;
		else {
			todo++;
			/* after the From_ line, with a CR for each LF, as stored */
			const char *body = memchr(starts[i], '\n', (size_t)(starts[i + 1] - starts[i]));
			body = body != NULL ? body + 1 : starts[i + 1];
			bytes += (uint64_t)(starts[i + 1] - body);
			for (const char *p = body; (p = memchr(p, '\n', (size_t)(starts[i + 1] - p))) != NULL; p++)
				bytes++;
		}
	}
	if (ret == 0)
		import_folder_todo(t, known, todo, bytes);
	struct buf msg = BUF_INIT, kws = BUF_INIT;
	for (size_t i = 0; ret == 0 && i < n; i++) {
		if (seen_has(&seen, local, keys[i]))
			continue;
		const char *from = starts[i], *body = memchr(from, '\n', (size_t)(starts[i + 1] - from));
		body = body != NULL ? body + 1 : starts[i + 1];
		size_t len = (size_t)(starts[i + 1] - body);
		if (len >= 2 && body[len - 1] == '\n' && body[len - 2] == '\n')
			len--; /* the blank line the file puts before the next From_ */
		else if (len >= 4 && memcmp(body + len - 4, "\r\n\r\n", 4) == 0)
			len -= 2;
		mbox_message(body, len, rd, &msg);
		unsigned flags = mbox_flags(msg.data, msg.len, &kws);
		char what[48];
		snprintf(what, sizeof(what), "message %zu (byte %zu)", i + 1, (size_t)(from - map));
		seen_store(&seen, t, local, keys[i], what, &msg, from_date(from, (size_t)(body - from)), flags,
			   kws.data);
	}
	if (ret == 0) {
		seen_flush(&seen, t);
		import_folder_end(t);
	}
	buf_free(&msg);
	buf_free(&kws);
	free(keys);
	free(starts);
	free(local);
	seen_close(&seen, t);
	if (size > 0)
		munmap((void *)map, size);
	return ret;
}

int import_files(const char *data_dir, int argc, char **argv)
{
	bool mbox = strcmp(argv[1], "mbox") == 0;
	static const struct option opts[] = {
		{ "folder", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *folder = NULL, *format = "mboxrd";
	optind = 2;
	int c, usage = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f' && mbox)
			folder = optarg;
		else if (c == 'r' && mbox && (strcmp(optarg, "mboxrd") == 0 || strcmp(optarg, "mboxo") == 0))
			format = optarg;
		else
			usage = 1;
	}
	if (usage || optind + 2 != argc) {
		fprintf(stderr, "interchange: import %s needs LOGIN and a %s\n\n%s", argv[1], mbox ? "FILE" : "DIR",
			import_files_help);
		return CLI_EXIT_USAGE;
	}
	const char *login = argv[optind], *path = argv[optind + 1];
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct import_target t;
	struct buf err = BUF_INIT;
	int ret = import_target_open(&cfg, login, &t, &err);
	struct buf norm = BUF_INIT;
	if (ret == 0 && folder != NULL && store_folder_name_norm(folder, &norm, &err) != 0)
		ret = IX_EINVAL;
	if (ret == 0) {
		printf("Importing %s into the mailbox of %s\n", path, login);
		fflush(stdout);
		ret = mbox ? import_mbox(&t, path, folder != NULL ? norm.data : NULL, strcmp(format, "mboxrd") == 0,
					 &err)
			   : import_maildir(&t, path, &err);
	}
	bool failed = t.failed > 0;
	import_target_close(&t, ret == 0);
	if (ret != 0)
		cli_error("import %s: %s", argv[1], buf_cstr(&err));
	buf_free(&norm);
	buf_free(&err);
	config_free(&cfg);
	return ret == 0 && !failed ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
