/* cmd_import.c - interchange import imap LOGIN --from imaps://HOST[:PORT] ...: copies a user's mailbox from
 * another organisation's IMAP server into this server's store, again and again until the move-in is done. */
#include "attendant/cli.h"
#include "transport/imap/imap_client.h"
#include "attendant/import.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/util.h"
#include "store/store.h"
#include "transport/imap/imap_parse.h"
#include "transport/imap/mutf7.h"
#include "transport/net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define IMPORT_TIMEOUT_MS 300000
#define IMPORT_LITERAL_MAX (256u * 1024 * 1024) /* the largest message a server may hand us */
#define IMPORT_BATCH_MSGS 200                   /* messages fetched by one UID FETCH */
#define IMPORT_BATCH_BYTES (16u * 1024 * 1024)  /* ... or about this many bytes */
#define IMPORT_STORE_BYTES (32u * 1024 * 1024)  /* fetched bodies held for one store transaction at most */

static const char import_help[] =
	"usage: interchange import imap LOGIN --from imaps://HOST[:PORT] --user REMOTE-USER\n"
	"                 (--password PW | --password-file FILE | --oauth2-token-file FILE) [--admin REMOTE-ADMIN]\n"
	"                 [--folder-map REMOTE=LOCAL]... [--exclude PATTERN]... [--since YYYY-MM-DD]\n"
	"                 [--ca-file FILE]\n"
	"       interchange import imap --all CSV [--jobs N] --from ... [--admin REMOTE-ADMIN --password-file FILE]\n"
	"       interchange import csv FILE\n\n"
	"Copies the mailbox of REMOTE-USER on another IMAP server into the mailbox of LOGIN here: every folder\n"
	"with its hierarchy, messages byte for byte with their dates, flags and keywords, subscriptions; folders\n"
	"the server marks \\Sent, \\Drafts, \\Trash, \\Junk or \\Archive (or named so: \"Sent Items\", \"Deleted\n"
	"Items\"...) go to ours. Run it again at any time: it copies what is new, applies flag changes and removes\n"
	"what was deleted there (its state is kept in the data folder, import/LOGIN.state).\n"
	"imap://HOST uses STARTTLS; the certificate must verify (--ca-file for a private CA).\n"
	"--admin: sign in as REMOTE-ADMIN for REMOTE-USER (SASL PLAIN with an authorization identity, else\n"
	"Dovecot's 'user*admin'), with the administrator's password. --exclude: a shell pattern on remote\n"
	"folder names ('/' between levels); --since: only messages received since that day.\n"
	"--all: every user of a CSV file (columns login, remote_user, password; a header line names them),\n"
	"N at a time (--jobs, default 4), each logged in DATA/import/LOGIN.log.\n"
	"import csv: users from a CSV file with a header line: login, given, surname, password or password_hash\n"
	"(a {SSHA}, {SHA}, {SMD5}, {MD5} or {CRYPT} value), aliases and lists (separated by ';').\n";

/* ---- what the last runs copied (the state file and its journal) ----
 * LOGIN.state is the whole state, rewritten (atomically) when a folder is done: an F line per folder (remote name,
 * UIDVALIDITY there, local name), an M line per message copied (remote UID, local UID, flags, size, Message-ID,
 * keywords). LOGIN.journal holds what happened since: per batch of messages stored together, an F line, an I line
 * with the folder's UIDNEXT here before the batch and a P line per message (its SHA-256, then an M line's fields
 * with local UID 0), synced before the store's transaction; then, after the commit, the M lines of those stored. A
 * run replays the journal onto the state; a batch whose M lines are missing (killed between the commit and them)
 * is found in the store: messages from that UIDNEXT on with the same SHA-256. So the state never claims a message
 * the store lacks, and a message the store holds is never stored again. */

struct imsg {
	uint32_t ruid, luid;
	unsigned flags;
	uint64_t size;
	char *msgid;
	char *keywords;
	bool seen; /* listed by the server in this run */
};

struct ifolder {
	char *remote; /* the remote name, UTF-8, '/' between levels */
	char *local;
	uint32_t uidvalidity;
	struct imsg *m;
	size_t n;
	bool listed; /* the server lists it in this run */
};

struct istate {
	struct ifolder *f;
	size_t n;
	char *path;
};

static void esc(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '%' || *s == '\t' || *s == '\n' || *s == '\r')
			buf_printf(out, "%%%02X", (unsigned char)*s);
		else
			buf_append_char(out, *s);
	}
}

static char *unesc(const char *s)
{
	struct buf out = BUF_INIT;
	for (; *s != '\0'; s++) {
		unsigned v;
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
			buf_append_char(&out, (char)v);
			s += 2;
		} else {
			buf_append_char(&out, *s);
		}
	}
	return buf_steal(&out);
}

static struct ifolder *state_folder_add(struct istate *st, const char *remote, const char *local, uint32_t uv)
{
	st->f = xrealloc(st->f, (st->n + 1) * sizeof(*st->f));
	struct ifolder *f = &st->f[st->n++];
	memset(f, 0, sizeof(*f));
	f->remote = xstrdup(remote);
	f->local = xstrdup(local);
	f->uidvalidity = uv;
	return f;
}

static struct imsg *folder_msg_add(struct ifolder *f)
{
	if ((f->n & (f->n - 1)) == 0 || f->n == 0)
		f->m = xrealloc(f->m, (f->n < 8 ? 8 : f->n * 2) * sizeof(*f->m));
	struct imsg *m = &f->m[f->n++];
	memset(m, 0, sizeof(*m));
	return m;
}

static void imsg_free(struct imsg *m)
{
	free(m->msgid);
	free(m->keywords);
}

static void ifolder_free(struct ifolder *f)
{
	for (size_t i = 0; i < f->n; i++)
		imsg_free(&f->m[i]);
	free(f->m);
	free(f->remote);
	free(f->local);
}

static void state_free(struct istate *st)
{
	for (size_t i = 0; i < st->n; i++)
		ifolder_free(&st->f[i]);
	free(st->f);
	free(st->path);
	memset(st, 0, sizeof(*st));
}

static struct ifolder *state_find(struct istate *st, const char *remote)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->f[i].remote, remote) == 0)
			return &st->f[i];
	return NULL;
}

/* The fields of an M line after "M\t", with local UID luid. */
static void msg_fields(struct buf *out, const struct imsg *m, uint32_t luid)
{
	buf_printf(out, "%u\t%u\t%u\t%llu\t", m->ruid, luid, m->flags, (unsigned long long)m->size);
	esc(out, m->msgid);
	buf_append_char(out, '\t');
	esc(out, m->keywords);
	buf_append_char(out, '\n');
}

static void folder_line(struct buf *out, const struct ifolder *f)
{
	buf_append_str(out, "F\t");
	esc(out, f->remote);
	buf_printf(out, "\t%u\t", f->uidvalidity);
	esc(out, f->local);
	buf_append_char(out, '\n');
}

/* An M line's six fields (f[0..5]) into m. */
static void msg_parse(char **f, struct imsg *m)
{
	m->ruid = (uint32_t)strtoul(f[0], NULL, 10);
	m->luid = (uint32_t)strtoul(f[1], NULL, 10);
	m->flags = (unsigned)strtoul(f[2], NULL, 10);
	m->size = strtoull(f[3], NULL, 10);
	m->msgid = unesc(f[4]);
	m->keywords = unesc(f[5]);
}

static int cmp_imsg_ruid(const void *a, const void *b)
{
	const struct imsg *x = a, *y = b;
	return x->ruid < y->ruid ? -1 : x->ruid > y->ruid;
}

/* A batch the journal announced (I and P lines): the folder's UIDNEXT before it, its messages and their SHA-256. */
struct intent {
	size_t folder; /* index in the state */
	uint32_t uidnext;
	struct imsg *m;
	uint8_t (*hash)[32];
	size_t n;
};

static void intents_free(struct intent *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < in[i].n; k++)
			imsg_free(&in[i].m[k]);
		free(in[i].m);
		free(in[i].hash);
	}
	free(in);
}

/* Reads path (the state, or its journal) into st; with in_r, the journal's intents are added to *in_r (caller frees
 * with intents_free). A missing file is empty. */
static int state_read(struct istate *st, const char *path, struct intent **in_r, size_t *nin_r, struct buf *error_r)
{
	char *data = NULL;
	size_t len = 0;
	int ret = read_file(path, 1u << 30, &data, &len);
	if (ret == IX_ENOTFOUND || (ret != 0 && errno == ENOENT))
		return 0;
	if (ret != 0) {
		buf_printf(error_r, "cannot read %s", path);
		return ret;
	}
	size_t cur = SIZE_MAX;
	struct intent *in = NULL;
	for (char *line = data, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		else
			break; /* a line the journal's writer did not finish */
		char *f[8];
		size_t n = import_split_tabs(line, f, 8);
		if (strcmp(f[0], "F") == 0 && n == 4) {
			char *r = unesc(f[1]), *l = unesc(f[3]);
			struct ifolder *fo = state_find(st, r);
			if (fo == NULL)
				fo = state_folder_add(st, r, l, (uint32_t)strtoul(f[2], NULL, 10));
			cur = (size_t)(fo - st->f);
			in = NULL;
			free(r);
			free(l);
		} else if (strcmp(f[0], "M") == 0 && n == 7 && cur != SIZE_MAX) {
			msg_parse(&f[1], folder_msg_add(&st->f[cur]));
		} else if (strcmp(f[0], "I") == 0 && n == 2 && cur != SIZE_MAX && in_r != NULL) {
			*in_r = xrealloc(*in_r, (*nin_r + 1) * sizeof(**in_r));
			in = &(*in_r)[(*nin_r)++];
			memset(in, 0, sizeof(*in));
			in->folder = cur;
			in->uidnext = (uint32_t)strtoul(f[1], NULL, 10);
		} else if (strcmp(f[0], "P") == 0 && n == 8 && in != NULL && strlen(f[1]) == 64) {
			in->m = xrealloc(in->m, (in->n + 1) * sizeof(*in->m));
			in->hash = xrealloc(in->hash, (in->n + 1) * sizeof(*in->hash));
			memset(&in->m[in->n], 0, sizeof(in->m[in->n]));
			msg_parse(&f[2], &in->m[in->n]);
			import_sha256_parse(f[1], in->hash[in->n]);
			in->n++;
		}
	}
	free(data);
	return 0;
}

/* Sorts a folder's messages by remote UID and drops repeated ones (a journal replayed onto a state that already
 * had it). */
static void folder_sort(struct ifolder *f)
{
	if (f->n < 2) /* qsort's array may not be NULL, even when empty */
		return;
	qsort(f->m, f->n, sizeof(*f->m), cmp_imsg_ruid);
	size_t w = 1;
	for (size_t i = 1; i < f->n; i++) {
		if (f->m[i].ruid != 0 && f->m[i].ruid == f->m[w - 1].ruid)
			imsg_free(&f->m[i]);
		else
			f->m[w++] = f->m[i];
	}
	f->n = w;
}

static bool folder_has(const struct ifolder *f, uint32_t ruid)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->m[mid].ruid == ruid)
			return true;
		if (f->m[mid].ruid < ruid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* A batch the journal announced but whose M lines are missing: its messages the store holds (from the UIDNEXT
 * before it, same SHA-256, not claimed by the state) go into the state. Returns how many. */
static size_t intent_recover(struct import_target *t, struct ifolder *f, const struct intent *in)
{
	size_t missing = 0, found = 0;
	uint8_t(*hash)[32] = xcalloc(in->n + 1, sizeof(*hash));
	size_t *which = xcalloc(in->n + 1, sizeof(*which));
	for (size_t k = 0; k < in->n; k++) {
		if (folder_has(f, in->m[k].ruid))
			continue;
		memcpy(hash[missing], in->hash[k], 32);
		which[missing++] = k;
	}
	uint32_t *claimed = xcalloc(f->n + 1, sizeof(*claimed)), *uid = xcalloc(missing + 1, sizeof(*uid));
	for (size_t i = 0; i < f->n; i++)
		claimed[i] = f->m[i].luid;
	if (f->n > 1) /* qsort's array may not be NULL, even when empty */
		qsort(claimed, f->n, sizeof(*claimed), cmp_u32);
	if (missing > 0)
		found = import_find_stored(t, f->local, in->uidnext, (const uint8_t(*)[32])hash, missing, claimed, f->n,
					   uid);
	for (size_t j = 0; j < missing; j++) {
		if (uid[j] == 0)
			continue;
		const struct imsg *src = &in->m[which[j]];
		struct imsg *m = folder_msg_add(f);
		*m = *src;
		m->msgid = xstrdup(src->msgid);
		m->keywords = xstrdup(src->keywords);
		m->luid = uid[j];
	}
	free(uid);
	free(claimed);
	free(which);
	free(hash);
	if (found > 0)
		folder_sort(f);
	return found;
}

static int state_save(const struct istate *st, struct buf *error_r)
{
	struct buf out = BUF_INIT;
	buf_append_str(&out,
		       "# interchange import imap: what was copied (remote UID, local UID, flags, size, Message-ID)\n");
	for (size_t i = 0; i < st->n; i++) {
		const struct ifolder *f = &st->f[i];
		folder_line(&out, f);
		for (size_t k = 0; k < f->n; k++) {
			buf_append_str(&out, "M\t");
			msg_fields(&out, &f->m[k], f->m[k].luid);
		}
	}
	int ret = write_file_atomic(st->path, out.data, out.len, 0600);
	if (ret != 0)
		buf_printf(error_r, "cannot write %s", st->path);
	buf_free(&out);
	return ret;
}

/* ---- parsing the server's responses ---- */

/* Parses one untagged response (raw, after "* ") with the command parser: "x " + raw reads as a command whose
 * name is the response's first word. NULL when it does not parse. */
static const struct imap_command *resp_parse(struct imap_parser *p, const struct imc_resp *r)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "x ");
	buf_append(&b, r->raw, r->raw_len);
	const struct imap_command *cmd = NULL;
	size_t used;
	struct buf err = BUF_INIT;
	imap_parser_reset(p);
	if (imap_parse_whole(p, b.data, b.len, &cmd, &used, &err) != 0)
		cmd = NULL;
	buf_free(&b);
	buf_free(&err);
	return cmd;
}

/* Flags of a FLAGS list into STORE_FLAG_* and space-separated keywords. */
static void flags_from_list(const struct imap_arg *list, unsigned *flags_r, struct buf *keywords)
{
	static const struct {
		const char *name;
		unsigned flag;
	} sys[] = { { "\\SEEN", STORE_FLAG_SEEN },
		    { "\\ANSWERED", STORE_FLAG_ANSWERED },
		    { "\\FLAGGED", STORE_FLAG_FLAGGED },
		    { "\\DELETED", STORE_FLAG_DELETED },
		    { "\\DRAFT", STORE_FLAG_DRAFT } };
	*flags_r = 0;
	buf_reset(keywords);
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (a->type != IMAP_ARG_ATOM)
			continue;
		if (a->str[0] == '\\') {
			for (size_t k = 0; k < sizeof(sys) / sizeof(sys[0]); k++)
				if (strcasecmp(a->str, sys[k].name) == 0)
					*flags_r |= sys[k].flag;
			continue;
		}
		if (!imap_keyword_valid(a->str, a->len))
			continue;
		if (keywords->len > 0)
			buf_append_char(keywords, ' ');
		buf_append(keywords, a->str, a->len);
	}
}

/* The Message-ID of a header block ("" when none), unfolded and trimmed. */
static char *message_id(const char *h, size_t len)
{
	struct buf out = BUF_INIT;
	const char *p = h, *end = h + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
		if (out.len > 0 || (l > 11 && strncasecmp(p, "Message-ID:", 11) == 0)) {
			if (out.len > 0 && p[0] != ' ' && p[0] != '\t')
				break;
			for (size_t i = out.len == 0 ? 11 : 0; i < l; i++)
				if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
					buf_append_char(&out, p[i]);
			if (out.len == 0)
				buf_append_char(&out, ' '); /* an empty first line: the value is on the next */
		}
		p = eol != NULL ? eol + 1 : end;
	}
	char *s = buf_steal(&out);
	if (s[0] == ' ')
		memmove(s, s + 1, strlen(s));
	return s;
}

/* ---- the remote side ---- */

struct rfolder {
	char *name;  /* UTF-8, '/' between levels */
	char *local; /* where it goes here */
	enum store_special_use use;
	bool noselect, subscribed;
	uint32_t uidvalidity;
};

struct remote {
	struct imc c;
	struct imap_parser *parser;
	char sep;
	struct rfolder *f;
	size_t n;
	struct buf caps;
};

static bool has_cap(const struct remote *r, const char *cap)
{
	const char *s = buf_cstr(&r->caps);
	size_t l = strlen(cap);
	for (const char *p = s; (p = strcasestr(p, cap)) != NULL; p += l)
		if ((p == s || p[-1] == ' ') && (p[l] == '\0' || p[l] == ' ' || p[l] == ']'))
			return true;
	return false;
}

static void on_capability(void *ctx, const struct imc_resp *r)
{
	struct remote *rm = ctx;
	if (strncasecmp(r->text, "CAPABILITY ", 11) == 0) {
		buf_reset(&rm->caps);
		buf_append_str(&rm->caps, r->text + 11);
	}
}

/* A remote name (modified UTF-7 with the server's separator) in UTF-8 with '/'; NULL when it does not decode or
 * holds a '/' that is not a separator. */
static char *remote_name(const struct imap_arg *a, char sep)
{
	const char *s;
	size_t len;
	if (!imap_arg_get_astring(a, &s, &len))
		return NULL;
	struct buf u = BUF_INIT;
	if (mutf7_to_utf8(s, len, &u, NULL) != 0) {
		buf_reset(&u);
		buf_append(&u, s, len); /* some servers send UTF-8 as it is */
	}
	for (size_t i = 0; i < u.len; i++) {
		if (sep != '/' && u.data[i] == '/') {
			buf_free(&u);
			return NULL;
		}
		if (u.data[i] == sep)
			u.data[i] = '/';
	}
	return buf_steal(&u);
}

static void on_list(void *ctx, const struct imc_resp *r)
{
	struct remote *rm = ctx;
	bool lsub = strncasecmp(r->text, "LSUB ", 5) == 0;
	if (!lsub && strncasecmp(r->text, "LIST ", 5) != 0)
		return;
	const struct imap_command *cmd = resp_parse(rm->parser, r);
	if (cmd == NULL || cmd->arg_count < 3 || cmd->args[0].type != IMAP_ARG_LIST)
		return;
	if (cmd->args[1].type == IMAP_ARG_QUOTED && cmd->args[1].len == 1)
		rm->sep = cmd->args[1].str[0];
	char *name = remote_name(&cmd->args[2], rm->sep);
	if (name == NULL)
		return;
	struct rfolder *f = NULL;
	for (size_t i = 0; i < rm->n && f == NULL; i++)
		if (strcmp(rm->f[i].name, name) == 0)
			f = &rm->f[i];
	if (f == NULL && lsub) {
		free(name);
		return; /* a subscription to a folder that does not exist */
	}
	if (f == NULL) {
		rm->f = xrealloc(rm->f, (rm->n + 1) * sizeof(*rm->f));
		f = &rm->f[rm->n++];
		memset(f, 0, sizeof(*f));
		f->name = name;
	} else {
		free(name);
	}
	static const struct {
		const char *attr;
		enum store_special_use use;
	} uses[] = { { "\\Sent", STORE_USE_SENT },
		     { "\\Drafts", STORE_USE_DRAFTS },
		     { "\\Trash", STORE_USE_TRASH },
		     { "\\Junk", STORE_USE_JUNK },
		     { "\\Archive", STORE_USE_ARCHIVE } };
	const struct imap_arg *attrs = &cmd->args[0];
	for (size_t i = 0; i < attrs->list_count; i++) {
		const char *a = attrs->list[i].str;
		if (attrs->list[i].type != IMAP_ARG_ATOM)
			continue;
		if (lsub) {
			if (strcasecmp(a, "\\Noselect") != 0)
				f->subscribed = true;
			continue;
		}
		if (strcasecmp(a, "\\Noselect") == 0 || strcasecmp(a, "\\NonExistent") == 0)
			f->noselect = true;
		if (strcasecmp(a, "\\Subscribed") == 0)
			f->subscribed = true;
		for (size_t k = 0; k < sizeof(uses) / sizeof(uses[0]); k++)
			if (strcasecmp(a, uses[k].attr) == 0)
				f->use = uses[k].use;
	}
	if (lsub)
		f->subscribed = true;
}

/* ---- options and the run ---- */

struct run {
	const struct import_opts *o;
	struct import_target t;
	struct remote rm;
	struct istate state;
	char *journal_path;
	int journal;         /* -1 until the first batch after the state was written */
	struct ifolder *cur; /* the folder being copied */
	/* fetched bodies of the current folder, stored together by store_batch */
	struct pend {
		uint32_t ruid;
		const struct rmeta *meta;
		char *data;
		size_t len;
	} * pend;
	size_t npend, pend_bytes;
	int failed; /* a batch could not be announced in the journal: the import stops with fail_err */
	struct buf fail_err;
	/* fetched metadata of the current folder */
	struct rmeta {
		uint32_t uid;
		unsigned flags;
		char *keywords;
		int64_t date;
		uint64_t size;
		char *msgid;
	} * meta;
	size_t nmeta;
	struct buf kw;
};

/* Writes the whole state; then the journal, which it holds, goes. */
static void save_now(struct run *r)
{
	struct buf err = BUF_INIT;
	if (state_save(&r->state, &err) != 0) {
		printf("  warning: %s\n", buf_cstr(&err));
	} else {
		if (r->journal >= 0)
			close(r->journal);
		r->journal = -1;
		if (unlink(r->journal_path) == 0)
			fsync_parent(r->journal_path);
	}
	buf_free(&err);
}

/* Appends out to the journal (made if needed), synced with sync. 0 or -1. */
static int journal_write(struct run *r, const struct buf *out, bool sync)
{
	if (r->journal < 0) {
		r->journal = open(r->journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (r->journal < 0 || fsync_parent(r->journal_path) != 0)
			return -1;
	}
	if (write_full(r->journal, out->data, out->len) != 0)
		return -1;
	return sync ? fdatasync(r->journal) : 0;
}

/* Replays the journal a stopped run left onto the state, finds in the store the batches it stored but did not
 * record, and writes the state. */
static int journal_replay(struct run *r, struct buf *error_r)
{
	struct intent *in = NULL;
	size_t nin = 0;
	int ret = state_read(&r->state, r->journal_path, &in, &nin, error_r);
	if (ret != 0 || access(r->journal_path, F_OK) != 0) {
		intents_free(in, nin);
		return ret;
	}
	for (size_t i = 0; i < r->state.n; i++)
		folder_sort(&r->state.f[i]);
	size_t found = 0;
	for (size_t i = 0; i < nin; i++)
		found += intent_recover(&r->t, &r->state.f[in[i].folder], &in[i]);
	if (found > 0)
		printf("  %zu message%s stored by a run that stopped before recording %s: recorded now\n", found,
		       found == 1 ? "" : "s", found == 1 ? "it" : "them");
	intents_free(in, nin);
	save_now(r);
	return 0;
}

static const struct rmeta *meta_find(const struct run *r, uint32_t uid)
{
	size_t lo = 0, hi = r->nmeta;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->meta[mid].uid == uid)
			return &r->meta[mid];
		if (r->meta[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* * N FETCH (UID u FLAGS (...) INTERNALDATE "..." RFC822.SIZE n BODY[HEADER.FIELDS (MESSAGE-ID)] {..}) */
static void on_meta(void *ctx, const struct imc_resp *resp)
{
	struct run *r = ctx;
	const struct imap_command *cmd = resp_parse(r->rm.parser, resp);
	if (cmd == NULL || cmd->arg_count < 2 || !imap_arg_atom_equals(&cmd->args[0], "FETCH") ||
	    cmd->args[1].type != IMAP_ARG_LIST)
		return;
	struct rmeta m = { 0 };
	bool answer = false; /* holds what we asked for, not a FETCH sent unasked for a flag changed elsewhere */
	const struct imap_arg *l = &cmd->args[1];
	for (size_t i = 0; i + 1 < l->list_count; i += 2) {
		const struct imap_arg *k = &l->list[i], *v = &l->list[i + 1];
		answer |= imap_arg_atom_equals(k, "RFC822.SIZE");
		uint64_t n;
		const char *s;
		size_t len;
		if (imap_arg_atom_equals(k, "UID") && imap_arg_get_number(v, UINT32_MAX, &n))
			m.uid = (uint32_t)n;
		else if (imap_arg_atom_equals(k, "RFC822.SIZE") && imap_arg_get_number(v, UINT64_MAX, &n))
			m.size = n;
		else if (imap_arg_atom_equals(k, "FLAGS") && v->type == IMAP_ARG_LIST) {
			flags_from_list(v, &m.flags, &r->kw);
			m.keywords = xstrdup(buf_cstr(&r->kw));
		} else if (imap_arg_atom_equals(k, "INTERNALDATE")) {
			int tz;
			imap_datetime_parse(v, &m.date, &tz);
		} else if (k->type == IMAP_ARG_ATOM && strncasecmp(k->str, "BODY[HEADER", 11) == 0 &&
			   imap_arg_get_nstring(v, &s, &len)) {
			m.msgid = message_id(s, len);
		}
	}
	if (!answer || m.uid == 0 || (r->nmeta > 0 && r->meta[r->nmeta - 1].uid >= m.uid)) {
		free(m.keywords);
		free(m.msgid);
		return;
	}
	if (m.keywords == NULL)
		m.keywords = xstrdup("");
	if (m.msgid == NULL)
		m.msgid = xstrdup("");
	if ((r->nmeta & (r->nmeta - 1)) == 0)
		r->meta = xrealloc(r->meta, (r->nmeta < 8 ? 8 : r->nmeta * 2) * sizeof(*r->meta));
	r->meta[r->nmeta++] = m;
}

static void meta_free(struct run *r)
{
	for (size_t i = 0; i < r->nmeta; i++) {
		free(r->meta[i].keywords);
		free(r->meta[i].msgid);
	}
	free(r->meta);
	r->meta = NULL;
	r->nmeta = 0;
}

/* Stores the fetched bodies held in r->pend in one transaction: announced in the journal (synced) first, recorded
 * in the state and the journal after. When the journal cannot be written nothing is stored and r->failed is set. */
static void store_batch(struct run *r)
{
	size_t n = r->npend;
	if (n == 0)
		return;
	struct ifolder *f = r->cur;
	struct buf j = BUF_INIT;
	folder_line(&j, f);
	buf_printf(&j, "I\t%u\n", import_uidnext(&r->t, f->local));
	struct import_msg *msgs = xcalloc(n, sizeof(*msgs));
	char(*what)[32] = xcalloc(n, sizeof(*what));
	for (size_t i = 0; i < n; i++) {
		const struct pend *p = &r->pend[i];
		buf_append_str(&j, "P\t");
		import_sha256_hex(p->data, p->len, &j);
		buf_append_char(&j, '\t');
		struct imsg im = { .ruid = p->ruid,
				   .flags = p->meta->flags,
				   .size = p->meta->size,
				   .msgid = p->meta->msgid,
				   .keywords = p->meta->keywords };
		msg_fields(&j, &im, 0);
		snprintf(what[i], sizeof(what[i]), "message UID %u", p->ruid);
		msgs[i] = (struct import_msg){ .folder = f->local,
					       .what = what[i],
					       .data = p->data,
					       .len = p->len,
					       .date = p->meta->date,
					       .flags = p->meta->flags,
					       .keywords = p->meta->keywords };
	}
	if (journal_write(r, &j, true) != 0) {
		buf_printf(&r->fail_err, "cannot write %s: %s", r->journal_path, strerror(errno));
		r->failed = 1;
	} else {
		import_store_batch(&r->t, msgs, n);
		buf_reset(&j);
		for (size_t i = 0; i < n; i++) {
			if (msgs[i].result != 0)
				continue;
			const struct pend *p = &r->pend[i];
			struct imsg *im = folder_msg_add(f);
			im->ruid = p->ruid;
			im->luid = msgs[i].uid;
			im->flags = p->meta->flags;
			im->size = p->meta->size;
			im->msgid = xstrdup(p->meta->msgid);
			im->keywords = xstrdup(p->meta->keywords);
			im->seen = true;
			buf_append_str(&j, "M\t");
			msg_fields(&j, im, im->luid);
		}
		/* not synced: when it is lost, the next run finds the batch in the store by its announcement */
		if (j.len > 0 && journal_write(r, &j, false) != 0)
			printf("  warning: cannot write %s: %s\n", r->journal_path, strerror(errno));
	}
	for (size_t i = 0; i < n; i++)
		free(r->pend[i].data);
	free(msgs);
	free(what);
	buf_free(&j);
	r->npend = 0;
	r->pend_bytes = 0;
}

/* * N FETCH (UID u BODY[] {n}...): one message body, held for the next store_batch. */
static void on_body(void *ctx, const struct imc_resp *resp)
{
	struct run *r = ctx;
	const struct imap_command *cmd = resp_parse(r->rm.parser, resp);
	if (cmd == NULL || cmd->arg_count < 2 || !imap_arg_atom_equals(&cmd->args[0], "FETCH") ||
	    cmd->args[1].type != IMAP_ARG_LIST)
		return;
	const struct imap_arg *l = &cmd->args[1];
	uint32_t uid = 0;
	const char *body = NULL;
	size_t len = 0;
	for (size_t i = 0; i + 1 < l->list_count; i += 2) {
		uint64_t n;
		if (imap_arg_atom_equals(&l->list[i], "UID") && imap_arg_get_number(&l->list[i + 1], UINT32_MAX, &n))
			uid = (uint32_t)n;
		else if (imap_arg_atom_equals(&l->list[i], "BODY[]"))
			imap_arg_get_nstring(&l->list[i + 1], &body, &len);
	}
	const struct rmeta *m = meta_find(r, uid);
	if (m == NULL)
		return;
	if (body == NULL)
		return; /* a FETCH the server sends unasked (a flag changed by another session): not our answer */
	if (r->npend > 0 && r->pend_bytes + len > IMPORT_STORE_BYTES)
		store_batch(r);
	if (r->failed)
		return;
	if (r->npend == 0)
		r->pend = xrealloc(r->pend, IMPORT_BATCH_MSGS * sizeof(*r->pend));
	struct pend *p = &r->pend[r->npend++];
	p->ruid = uid;
	p->meta = m;
	p->data = xmalloc(len + 1);
	memcpy(p->data, body, len);
	p->len = len;
	r->pend_bytes += len;
	if (r->npend == IMPORT_BATCH_MSGS)
		store_batch(r);
}

static int imap_select(struct run *r, const char *name, uint32_t *uv_r, struct buf *error_r);

/* Copies the messages in todo (UIDs) with as few UID FETCH commands as their sizes allow. */
static int fetch_bodies(struct run *r, const uint32_t *todo, size_t n, struct buf *error_r)
{
	struct buf cmd = BUF_INIT;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0;) {
		buf_append_str(&cmd, "UID FETCH ");
		uint64_t bytes = 0;
		size_t k = 0;
		for (; i < n && k < IMPORT_BATCH_MSGS && (k == 0 || bytes < IMPORT_BATCH_BYTES); i++, k++) {
			buf_printf(&cmd, "%s%u", k > 0 ? "," : "", todo[i]);
			const struct rmeta *m = meta_find(r, todo[i]);
			bytes += m != NULL ? m->size : 0;
		}
		buf_append_str(&cmd, " (UID BODY.PEEK[])");
		ret = imc_cmd(&r->rm.c, &cmd, on_body, r, error_r);
		store_batch(r); /* what came, also when the server stopped in the middle */
		if (r->failed) {
			buf_reset(error_r);
			buf_append(error_r, r->fail_err.data, r->fail_err.len);
			ret = IX_EIO;
		}
	}
	buf_free(&cmd);
	return ret;
}

/* Makes the local copy of one selectable remote folder equal to it. */
static int import_folder(struct run *r, struct rfolder *rf, struct buf *error_r)
{
	uint32_t uv = 0;
	int ret = imap_select(r, rf->name, &uv, error_r);
	if (ret != 0)
		return ret;
	struct ifolder *f = state_find(&r->state, rf->name);
	if (f == NULL)
		f = state_folder_add(&r->state, rf->name, rf->local, uv);
	f->listed = true;
	r->cur = f;
	struct buf err = BUF_INIT;
	if (strcmp(f->local, rf->local) != 0) {
		/* a --folder-map changed since the last run: the copy moves along */
		if (store_folder_rename(r->t.st, r->t.guid, f->local, rf->local, &err) != 0)
			printf("  warning: %s stays in %s: %s\n", rf->name, f->local, buf_cstr(&err));
		else {
			free(f->local);
			f->local = xstrdup(rf->local);
		}
		buf_reset(&err);
	}
	import_folder_begin(&r->t, rf->name, f->local);
	int made = store_folder_create(r->t.st, r->t.guid, f->local, &err);
	if (made != 0 && made != IX_EEXIST)
		printf("  warning: %s: %s\n", f->local, buf_cstr(&err));
	buf_reset(&err);
	struct buf cmd = BUF_INIT;
	buf_append_str(&cmd,
		       "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
	meta_free(r);
	ret = imc_cmd(&r->rm.c, &cmd, on_meta, r, error_r);
	buf_free(&cmd);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < f->n; i++)
		f->m[i].seen = false;
	if (f->uidvalidity != uv) {
		/* the server numbered the folder anew: what was copied is recognised by Message-ID and size */
		for (size_t i = 0; i < f->n; i++) {
			f->m[i].ruid = 0;
			for (size_t k = 0; k < r->nmeta && f->m[i].msgid[0] != '\0'; k++) {
				if (strcmp(r->meta[k].msgid, f->m[i].msgid) == 0 && r->meta[k].size == f->m[i].size) {
					bool taken = false;
					for (size_t j = 0; j < i && !taken; j++)
						taken = f->m[j].ruid == r->meta[k].uid;
					if (!taken) {
						f->m[i].ruid = r->meta[k].uid;
						break;
					}
				}
			}
		}
		f->uidvalidity = uv;
		if (f->n > 1) /* qsort's array may not be NULL, even when empty */
			qsort(f->m, f->n, sizeof(*f->m), cmp_imsg_ruid);
	}
	/* known messages: flag changes; gone ones: removed here */
	uint32_t *gone = NULL;
	size_t ngone = 0;
	for (size_t i = 0; i < f->n; i++) {
		struct imsg *m = &f->m[i];
		const struct rmeta *rm = m->ruid != 0 ? meta_find(r, m->ruid) : NULL;
		if (rm == NULL) {
			gone = xrealloc(gone, (ngone + 1) * sizeof(*gone));
			gone[ngone++] = m->luid;
			m->luid = 0;
			continue;
		}
		m->seen = true;
		if (rm->flags == m->flags && strcmp(rm->keywords, m->keywords) == 0)
			continue;
		uint32_t luid = m->luid;
		struct store_flag_update upd = { .uids = &luid,
						 .nuids = 1,
						 .mode = STORE_FLAGS_REPLACE,
						 .flags = rm->flags,
						 .keywords = rm->keywords };
		if (store_flags(r->t.st, r->t.guid, f->local, &upd, &err) == 0) {
			m->flags = rm->flags;
			free(m->keywords);
			m->keywords = xstrdup(rm->keywords);
			r->t.changed++;
		} else {
			char what[32];
			snprintf(what, sizeof(what), "message UID %u", m->ruid);
			import_error(&r->t, what, buf_cstr(&err));
			buf_reset(&err);
		}
		free(upd.failed_r);
	}
	if (ngone > 0) {
		if (store_expunge(r->t.st, r->t.guid, f->local, gone, ngone, NULL, NULL, &err) == 0)
			r->t.removed += ngone;
		else
			printf("  warning: %s: messages deleted there stay here: %s\n", f->local, buf_cstr(&err));
		buf_reset(&err);
		size_t w = 0;
		for (size_t i = 0; i < f->n; i++) {
			if (f->m[i].luid != 0)
				f->m[w++] = f->m[i];
			else
				imsg_free(&f->m[i]);
		}
		f->n = w;
	}
	free(gone);
	/* new messages */
	uint32_t *todo = NULL;
	size_t ntodo = 0;
	uint64_t todo_bytes = 0;
	for (size_t k = 0, i = 0; k < r->nmeta; k++) {
		while (i < f->n && f->m[i].ruid < r->meta[k].uid)
			i++;
		if (i < f->n && f->m[i].ruid == r->meta[k].uid)
			continue;
		if (r->o->since != 0 && r->meta[k].date < r->o->since)
			continue;
		todo = xrealloc(todo, (ntodo + 1) * sizeof(*todo));
		todo[ntodo++] = r->meta[k].uid;
		todo_bytes += r->meta[k].size;
	}
	import_folder_todo(&r->t, f->n, ntodo, todo_bytes);
	if (ntodo > 0)
		save_now(r); /* the journal of the batches below starts from the state as it is now */
	ret = fetch_bodies(r, todo, ntodo, error_r);
	free(todo);
	if (f->n > 1) /* qsort's array may not be NULL, even when empty */
		qsort(f->m, f->n, sizeof(*f->m), cmp_imsg_ruid);
	if (ret == 0)
		import_folder_end(&r->t);
	save_now(r);
	buf_free(&err);
	return ret;
}

struct select_ctx {
	uint32_t uv;
};

static void on_select(void *ctx, const struct imc_resp *resp)
{
	struct select_ctx *s = ctx;
	const char *p = strstr(resp->text, "[UIDVALIDITY ");
	if (p != NULL)
		s->uv = (uint32_t)strtoul(p + 13, NULL, 10);
}

/* The remote name in the server's own form (its separator, modified UTF-7). */
static void add_remote_name(struct buf *cmd, const struct remote *rm, const char *name)
{
	struct buf m = BUF_INIT;
	if (mutf7_from_utf8(name, strlen(name), &m, NULL) != 0) {
		buf_reset(&m);
		buf_append_str(&m, name);
	}
	for (size_t i = 0; i < m.len; i++)
		if (m.data[i] == '/')
			m.data[i] = rm->sep;
	imc_add_string(cmd, m.data, m.len);
	buf_free(&m);
}

static int imap_select(struct run *r, const char *name, uint32_t *uv_r, struct buf *error_r)
{
	struct buf cmd = BUF_INIT;
	buf_append_str(&cmd, "EXAMINE ");
	add_remote_name(&cmd, &r->rm, name);
	struct select_ctx s = { 0 };
	int ret = imc_cmd(&r->rm.c, &cmd, on_select, &s, error_r);
	buf_free(&cmd);
	if (ret == IX_EINVAL)
		buf_printf(error_r, " (EXAMINE %s)", name);
	*uv_r = s.uv;
	return ret;
}

static void on_status(void *ctx, const struct imc_resp *resp)
{
	struct select_ctx *s = ctx;
	const char *p = strcasestr(resp->text, "UIDVALIDITY ");
	if (p != NULL && strncasecmp(resp->text, "STATUS ", 7) == 0)
		s->uv = (uint32_t)strtoul(p + 12, NULL, 10);
}

/* ---- signing in ---- */

static int sasl(struct run *r, const char *mech, const char *resp, size_t len, struct buf *error_r)
{
	struct buf b64 = BUF_INIT, cmd = BUF_INIT;
	base64_encode(resp, len, &b64);
	buf_printf(&cmd, "AUTHENTICATE %s", mech);
	if (has_cap(&r->rm, "SASL-IR"))
		buf_printf(&cmd, " %s", b64.len > 0 ? buf_cstr(&b64) : "=");
	int ret = imc_cmd_cont(&r->rm.c, &cmd, has_cap(&r->rm, "SASL-IR") ? "" : buf_cstr(&b64), on_capability, &r->rm,
			       error_r);
	memset(b64.data, 0, b64.len);
	buf_free(&b64);
	buf_free(&cmd);
	return ret;
}

static int sign_in(struct run *r, const char *secret, struct buf *error_r)
{
	const struct import_opts *o = r->o;
	struct buf b = BUF_INIT, cmd = BUF_INIT;
	int ret;
	if (o->token) {
		bool xo = has_cap(&r->rm, "AUTH=XOAUTH2");
		if (xo)
			buf_printf(&b, "user=%s\001auth=Bearer %s\001\001", o->user, secret);
		else
			buf_printf(&b, "n,a=%s,\001auth=Bearer %s\001\001", o->user, secret);
		ret = sasl(r, xo ? "XOAUTH2" : "OAUTHBEARER", b.data, b.len, error_r);
		if (ret == 0)
			printf("Signed in as %s with a bearer token (%s)\n", o->user, xo ? "XOAUTH2" : "OAUTHBEARER");
	} else if (o->admin != NULL) {
		/* SASL PLAIN with an authorization identity (RFC 4616), as Cyrus, Dovecot and Exchange take it */
		buf_append_str(&b, o->user);
		buf_append_char(&b, '\0');
		buf_append_str(&b, o->admin);
		buf_append_char(&b, '\0');
		buf_append_str(&b, secret);
		ret = has_cap(&r->rm, "AUTH=PLAIN") ? sasl(r, "PLAIN", b.data, b.len, error_r) : IX_EINVAL;
		if (ret == 0) {
			printf("Signed in as %s for %s (SASL PLAIN with an authorization identity)\n", o->admin,
			       o->user);
		} else if (ret == IX_EINVAL) {
			/* Dovecot's master users: LOGIN user*admin */
			struct buf first = BUF_INIT, star = BUF_INIT;
			buf_append(&first, error_r->data, error_r->len);
			buf_reset(error_r);
			buf_printf(&star, "%s*%s", o->user, o->admin);
			buf_append_str(&cmd, "LOGIN ");
			imc_add_string(&cmd, star.data, star.len);
			buf_append_char(&cmd, ' ');
			imc_add_string(&cmd, secret, strlen(secret));
			ret = imc_cmd(&r->rm.c, &cmd, on_capability, &r->rm, error_r);
			if (ret == 0)
				printf("Signed in as %s (a master user's login)\n", star.data);
			else if (first.len > 0)
				buf_printf(error_r, " (and SASL PLAIN with %s for %s: %s)", o->admin, o->user,
					   first.data);
			buf_free(&first);
			buf_free(&star);
		}
	} else {
		buf_append_str(&cmd, "LOGIN ");
		imc_add_string(&cmd, o->user, strlen(o->user));
		buf_append_char(&cmd, ' ');
		imc_add_string(&cmd, secret, strlen(secret));
		ret = imc_cmd(&r->rm.c, &cmd, on_capability, &r->rm, error_r);
		if (ret == 0)
			printf("Signed in as %s\n", o->user);
	}
	if (b.data != NULL)
		memset(b.data, 0, b.len);
	if (cmd.data != NULL)
		memset(cmd.data, 0, cmd.cap);
	buf_free(&b);
	buf_free(&cmd);
	if (ret == IX_EINVAL)
		buf_printf(error_r, " (the server refused the sign-in)");
	return ret;
}

/* imaps://HOST[:PORT] or imap://HOST[:PORT] (STARTTLS). */
static int parse_from(const char *from, char **host_r, unsigned *port_r, bool *implicit_r)
{
	const char *rest;
	if (strncasecmp(from, "imaps://", 8) == 0) {
		rest = from + 8;
		*implicit_r = true;
		*port_r = 993;
	} else if (strncasecmp(from, "imap://", 7) == 0) {
		rest = from + 7;
		*implicit_r = false;
		*port_r = 143;
	} else {
		return IX_EINVAL;
	}
	size_t hl = strcspn(rest, "/");
	char *hp = xstrndup(rest, hl);
	char *colon = hp[0] == '[' ? strstr(hp, "]:") : strrchr(hp, ':');
	if (colon != NULL) {
		if (hp[0] == '[')
			colon++;
		unsigned long long p;
		if (parse_uint(colon + 1, 65535, &p) != 0 || p == 0) {
			free(hp);
			return IX_EINVAL;
		}
		*port_r = (unsigned)p;
		*colon = '\0';
	}
	if (hp[0] == '[') {
		memmove(hp, hp + 1, strlen(hp));
		hp[strcspn(hp, "]")] = '\0';
	}
	*host_r = hp;
	return hp[0] != '\0' ? 0 : IX_EINVAL;
}

static int remote_open(struct run *r, const char *secret, struct buf *error_r)
{
	char *host = NULL;
	unsigned port = 0;
	bool implicit = false;
	if (parse_from(r->o->from, &host, &port, &implicit) != 0) {
		free(host);
		buf_printf(error_r, "--from wants imaps://HOST[:PORT] or imap://HOST[:PORT], not %s", r->o->from);
		return IX_EINVAL;
	}
	struct tls_ctx *ctx = NULL;
	int ret = tls_client_ctx_create(true, r->o->ca_file, &ctx, error_r);
	r->rm.c.literal_max = IMPORT_LITERAL_MAX;
	if (ret == 0)
		ret = imc_connect_tcp(&r->rm.c, host, port, IMPORT_TIMEOUT_MS, error_r);
	if (ret == 0 && implicit)
		ret = imc_tls(&r->rm.c, ctx, host, error_r);
	if (ret == 0)
		ret = imc_greeting(&r->rm.c, NULL, error_r);
	struct buf cmd = BUF_INIT;
	if (ret == 0 && !implicit) {
		buf_append_str(&cmd, "STARTTLS");
		ret = imc_cmd(&r->rm.c, &cmd, NULL, NULL, error_r);
		if (ret == IX_EINVAL)
			buf_printf(error_r, " (STARTTLS refused: the password would cross the network in clear)");
		if (ret == 0)
			ret = imc_tls(&r->rm.c, ctx, host, error_r);
	}
	if (ret == 0) {
		buf_append_str(&cmd, "CAPABILITY");
		ret = imc_cmd(&r->rm.c, &cmd, on_capability, &r->rm, error_r);
	}
	if (ret == 0)
		ret = sign_in(r, secret, error_r);
	if (ret == 0 && !has_cap(&r->rm, "IMAP4rev1")) {
		buf_append_str(&cmd, "CAPABILITY");
		ret = imc_cmd(&r->rm.c, &cmd, on_capability, &r->rm, error_r);
	}
	if (ret == 0) {
		r->rm.sep = '/';
		buf_append_str(&cmd, has_cap(&r->rm, "SPECIAL-USE") && has_cap(&r->rm, "LIST-EXTENDED")
					     ? "LIST \"\" \"*\" RETURN (SPECIAL-USE SUBSCRIBED)"
					     : "LIST \"\" \"*\"");
		ret = imc_cmd(&r->rm.c, &cmd, on_list, &r->rm, error_r);
	}
	if (ret == 0) {
		buf_append_str(&cmd, "LSUB \"\" \"*\"");
		ret = imc_cmd(&r->rm.c, &cmd, on_list, &r->rm, error_r);
	}
	buf_free(&cmd);
	tls_ctx_destroy(&ctx);
	if (ret != 0 && strstr(buf_cstr(error_r), r->o->from) == NULL)
		buf_printf(error_r, " (%s)", r->o->from);
	free(host);
	return ret;
}

/* ---- where remote folders go ---- */

static bool excluded(const struct import_opts *o, const char *name)
{
	for (size_t i = 0; i < o->nexcludes; i++) {
		if (fnmatch(o->excludes[i], name, 0) == 0)
			return true;
		/* a pattern that names a folder excludes what is under it */
		size_t l = strlen(name);
		for (size_t k = 1; k < l; k++) {
			if (name[k] != '/')
				continue;
			char *parent = xstrndup(name, k);
			bool m = fnmatch(o->excludes[i], parent, 0) == 0;
			free(parent);
			if (m)
				return true;
		}
	}
	return false;
}

/* prefix "A/B" of name "A/B" or "A/B/C": the rest ("" or "/C"), else NULL. */
static const char *under(const char *name, const char *prefix)
{
	size_t l = strlen(prefix);
	if (strncmp(name, prefix, l) != 0 || (name[l] != '\0' && name[l] != '/'))
		return NULL;
	return name + l;
}

static int map_folders(struct run *r, struct buf *error_r)
{
	struct store_folder_info *list = NULL;
	size_t count = 0;
	int ret = store_mailbox_ensure(r->t.st, r->t.guid, error_r);
	if (ret == 0)
		ret = store_folder_list(r->t.st, r->t.guid, NULL, &list, &count, error_r);
	if (ret != 0)
		return ret;
	/* a role goes by the attribute where the server gives any, else by the usual names */
	bool by_attr[STORE_USE_ARCHIVE + 1] = { false };
	for (size_t i = 0; i < r->rm.n; i++)
		by_attr[r->rm.f[i].use] = true;
	for (size_t i = 0; i < r->rm.n; i++) {
		struct rfolder *f = &r->rm.f[i];
		if (f->use == STORE_USE_NONE && strchr(f->name, '/') == NULL) {
			enum store_special_use u = import_use_by_name(f->name);
			if (!by_attr[u])
				f->use = u;
		}
	}
	for (size_t i = 0; i < r->rm.n; i++) {
		struct rfolder *f = &r->rm.f[i];
		struct buf local = BUF_INIT;
		for (size_t k = 0; k < r->o->nmaps && local.len == 0; k++) {
			const char *eq = strchr(r->o->maps[k], '=');
			char *from = xstrndup(r->o->maps[k], (size_t)(eq - r->o->maps[k]));
			const char *rest = under(f->name, from);
			if (rest != NULL)
				buf_printf(&local, "%s%s", eq + 1, rest);
			free(from);
		}
		/* a special folder and what is under it go to ours */
		for (size_t k = 0; k < r->rm.n && local.len == 0; k++) {
			const struct rfolder *p = &r->rm.f[k];
			const char *rest = p->use != STORE_USE_NONE ? under(f->name, p->name) : NULL;
			for (size_t j = 0; rest != NULL && j < count && local.len == 0; j++)
				if (list[j].special_use == p->use)
					buf_printf(&local, "%s%s", list[j].name, rest);
		}
		if (local.len == 0)
			buf_append_str(&local, f->name);
		struct buf norm = BUF_INIT;
		if (store_folder_name_norm(local.data, &norm, NULL) == 0)
			f->local = buf_steal(&norm);
		else
			f->local = buf_steal(&local);
		buf_free(&norm);
		buf_free(&local);
	}
	store_folder_list_free(&list, count);
	return 0;
}

/* The folders under f (renamed to "to" there and here) follow it in the state, as they did on both servers. */
static void rename_under(struct istate *st, const struct ifolder *f, const struct rfolder *to)
{
	for (size_t i = 0; i < st->n; i++) {
		struct ifolder *c = &st->f[i];
		const char *rrest = c != f ? under(c->remote, f->remote) : NULL;
		const char *lrest = rrest != NULL && *rrest != '\0' ? under(c->local, f->local) : NULL;
		if (lrest == NULL || *lrest == '\0')
			continue;
		char *remote = xasprintf("%s%s", to->name, rrest), *local = xasprintf("%s%s", to->local, lrest);
		free(c->remote);
		free(c->local);
		c->remote = remote;
		c->local = local;
	}
}

/* Folders copied before that the server no longer lists: renamed (the same UIDVALIDITY under a new name, moved
 * along here) or deleted (what was copied from them is removed here, and the folder when nothing else is in it). */
static void vanished_folders(struct run *r)
{
	struct buf err = BUF_INIT, cmd = BUF_INIT;
	for (size_t i = 0; i < r->state.n; i++) {
		struct ifolder *f = &r->state.f[i];
		bool listed = false;
		for (size_t k = 0; k < r->rm.n && !listed; k++)
			listed = strcmp(r->rm.f[k].name, f->remote) == 0 && !r->rm.f[k].noselect;
		if (listed)
			continue;
		/* a new remote folder with its UIDVALIDITY: renamed there */
		struct rfolder *to = NULL;
		for (size_t k = 0; k < r->rm.n && to == NULL; k++) {
			struct rfolder *rf = &r->rm.f[k];
			if (rf->noselect || state_find(&r->state, rf->name) != NULL || excluded(r->o, rf->name))
				continue;
			if (rf->uidvalidity == 0) {
				struct select_ctx s = { 0 };
				buf_append_str(&cmd, "STATUS ");
				add_remote_name(&cmd, &r->rm, rf->name);
				buf_append_str(&cmd, " (UIDVALIDITY)");
				if (imc_cmd(&r->rm.c, &cmd, on_status, &s, &err) == 0)
					rf->uidvalidity = s.uv;
				buf_reset(&err);
			}
			if (rf->uidvalidity == f->uidvalidity)
				to = rf;
		}
		if (to != NULL && store_folder_rename(r->t.st, r->t.guid, f->local, to->local, &err) == 0) {
			printf("  %s was renamed %s there: %s renamed %s here\n", f->remote, to->name, f->local,
			       to->local);
			rename_under(&r->state, f, to);
			free(f->remote);
			free(f->local);
			f->remote = xstrdup(to->name);
			f->local = xstrdup(to->local);
			continue;
		}
		buf_reset(&err);
		uint32_t *uids = xmalloc((f->n + 1) * sizeof(*uids));
		for (size_t k = 0; k < f->n; k++)
			uids[k] = f->m[k].luid;
		if (f->n > 0 && store_expunge(r->t.st, r->t.guid, f->local, uids, f->n, NULL, NULL, &err) == 0)
			r->t.removed += f->n;
		buf_reset(&err);
		free(uids);
		struct store_folder_info info = { 0 };
		bool empty = store_folder_status(r->t.st, r->t.guid, f->local, NULL, &info, &err) == 0 &&
			     info.messages == 0 && info.special_use == STORE_USE_NONE;
		store_folder_info_free(&info);
		buf_reset(&err);
		if (empty && store_folder_delete(r->t.st, r->t.guid, f->local, &err) == 0)
			printf("  %s was deleted there: %s deleted here\n", f->remote, f->local);
		else
			printf("  %s was deleted there: what was copied from it is removed from %s\n", f->remote,
			       f->local);
		buf_reset(&err);
		ifolder_free(f);
		r->state.f[i--] = r->state.f[--r->state.n];
	}
	buf_free(&err);
	buf_free(&cmd);
}

static int import_run(struct run *r, const char *secret, struct buf *error_r)
{
	int ret = remote_open(r, secret, error_r);
	if (ret == 0)
		ret = map_folders(r, error_r);
	if (ret != 0)
		return ret;
	vanished_folders(r);
	struct buf err = BUF_INIT;
	for (size_t i = 0; i < r->rm.n && ret == 0; i++) {
		struct rfolder *f = &r->rm.f[i];
		if (excluded(r->o, f->name)) {
			printf("  %s: excluded\n", f->name);
			continue;
		}
		if (f->noselect) {
			int made = store_folder_create(r->t.st, r->t.guid, f->local, &err);
			if (made != 0 && made != IX_EEXIST)
				printf("  warning: %s: %s\n", f->local, buf_cstr(&err));
			buf_reset(&err);
		} else {
			ret = import_folder(r, f, error_r);
			if (ret == IX_EINVAL) {
				/* this folder only (the server refused to open it): the others go on */
				printf("  error: %s: %s (skipped)\n", f->name, buf_cstr(error_r));
				buf_reset(error_r);
				r->t.failed++;
				ret = 0;
			}
		}
		if (ret == 0 && f->subscribed && store_folder_subscribe(r->t.st, r->t.guid, f->local, 1, &err) != 0) {
			printf("  warning: %s stays unsubscribed: %s\n", f->local, buf_cstr(&err));
			buf_reset(&err);
		}
	}
	buf_free(&err);
	return ret;
}

static char *read_secret(const char *path, struct buf *error_r)
{
	char *data = NULL;
	size_t len = 0;
	if (read_file(path, 64 * 1024, &data, &len) != 0) {
		buf_printf(error_r, "cannot read %s", path);
		return NULL;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	return data;
}

static int import_imap(const char *data_dir, int argc, char **argv)
{
	enum {
		OPT_FROM = 1,
		OPT_USER,
		OPT_PW,
		OPT_PWFILE,
		OPT_TOKEN,
		OPT_ADMIN,
		OPT_MAP,
		OPT_EXCL,
		OPT_SINCE,
		OPT_CA,
		OPT_ALL,
		OPT_JOBS
	};
	static const struct option opts[] = {
		{ "from", required_argument, NULL, OPT_FROM },
		{ "user", required_argument, NULL, OPT_USER },
		{ "password", required_argument, NULL, OPT_PW },
		{ "password-file", required_argument, NULL, OPT_PWFILE },
		{ "oauth2-token-file", required_argument, NULL, OPT_TOKEN },
		{ "admin", required_argument, NULL, OPT_ADMIN },
		{ "folder-map", required_argument, NULL, OPT_MAP },
		{ "exclude", required_argument, NULL, OPT_EXCL },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "ca-file", required_argument, NULL, OPT_CA },
		{ "all", required_argument, NULL, OPT_ALL },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		{ NULL, 0, NULL, 0 },
	};
	struct import_opts o = { 0 };
	const char *pwfile = NULL, *password = NULL, *tokenfile = NULL, *all = NULL;
	unsigned long long jobs = 4;
	int secrets = 0, usage = 0;
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_FROM: o.from = optarg; break;
		case OPT_USER: o.user = optarg; break;
		case OPT_PW: password = optarg, secrets++; break;
		case OPT_PWFILE: pwfile = optarg, secrets++; break;
		case OPT_TOKEN: tokenfile = optarg, o.token = true, secrets++; break;
		case OPT_ALL: all = optarg; break;
		case OPT_JOBS:
			if (parse_uint(optarg, 64, &jobs) != 0 || jobs == 0) {
				fprintf(stderr, "interchange: import imap: --jobs wants 1 to 64, not %s\n", optarg);
				usage = 1;
			}
			break;
		case OPT_ADMIN: o.admin = optarg; break;
		case OPT_CA: o.ca_file = optarg; break;
		case OPT_MAP:
			if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
				fprintf(stderr, "interchange: import imap: --folder-map wants REMOTE=LOCAL, not %s\n",
					optarg);
				usage = 1;
			}
			o.maps = xrealloc(o.maps, (o.nmaps + 1) * sizeof(*o.maps));
			o.maps[o.nmaps++] = optarg;
			break;
		case OPT_EXCL:
			o.excludes = xrealloc(o.excludes, (o.nexcludes + 1) * sizeof(*o.excludes));
			o.excludes[o.nexcludes++] = optarg;
			break;
		case OPT_SINCE: {
			struct tm tm = { 0 };
			const char *end = strptime(optarg, "%Y-%m-%d", &tm);
			if (end == NULL || *end != '\0') {
				fprintf(stderr, "interchange: import imap: --since wants YYYY-MM-DD, not %s\n", optarg);
				usage = 1;
			}
			o.since = (int64_t)timegm(&tm);
			break;
		}
		default: usage = 1;
		}
	}
	if (!usage && all == NULL && (optind + 1 != argc || o.from == NULL || o.user == NULL || secrets != 1)) {
		fprintf(stderr, "interchange: import imap needs LOGIN, --from, --user and one of --password, "
				"--password-file, --oauth2-token-file\n");
		usage = 1;
	}
	if (!usage && all != NULL &&
	    (optind != argc || o.from == NULL || o.user != NULL || secrets > 1 || (o.admin != NULL && secrets != 1))) {
		fprintf(stderr,
			"interchange: import imap --all CSV needs --from, no LOGIN or --user (the file has them) "
			"and with --admin its password (--password or --password-file)\n");
		usage = 1;
	}
	if (usage) {
		fprintf(stderr, "\n%s", import_help);
		free(o.maps);
		free(o.excludes);
		return CLI_EXIT_USAGE;
	}
	/* the secret's file is read before the command becomes the service user: it may be the administrator's alone */
	struct buf err = BUF_INIT;
	char *secret = password != NULL ? xstrdup(password) : NULL;
	if (pwfile != NULL || tokenfile != NULL)
		secret = read_secret(pwfile != NULL ? pwfile : tokenfile, &err);
	struct config cfg;
	int ret = CLI_EXIT_FAIL;
	if (cli_load_config(data_dir, &cfg) < 0)
		memset(&cfg, 0, sizeof(cfg));
	else if (secret == NULL && secrets > 0)
		cli_error("import imap: %s", buf_cstr(&err));
	else if (all != NULL)
		ret = import_imap_all(&cfg, &o, secret, all, (unsigned)jobs);
	else {
		o.login = argv[optind];
		ret = import_imap_one(&cfg, &o, secret);
	}
	if (secret != NULL) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	free(o.maps);
	free(o.excludes);
	buf_free(&err);
	if (cfg.data_dir != NULL)
		config_free(&cfg);
	return ret;
}

int import_imap_one(const struct config *cfg, const struct import_opts *o, const char *secret)
{
	struct buf err = BUF_INIT;
	struct run r = { .o = o };
	r.rm.c.fd = -1;
	r.rm.parser = imap_parser_create(&(struct imap_parser_settings){ .max_literal = IMPORT_LITERAL_MAX,
									 .max_literals = IMPORT_LITERAL_MAX });
	r.journal = -1;
	int ret = import_target_open(cfg, o->login, &r.t, &err);
	if (ret == 0) {
		r.state.path = xasprintf("%s/%s.state", r.t.dir, o->login);
		r.journal_path = xasprintf("%s/%s.journal", r.t.dir, o->login);
		ret = state_read(&r.state, r.state.path, NULL, NULL, &err);
	}
	if (ret == 0)
		ret = journal_replay(&r, &err);
	bool loaded = ret == 0; /* the state is written at the end only when it was read */
	if (ret == 0) {
		printf("Importing %s from %s into the mailbox of %s\n", o->user, o->from, o->login);
		fflush(stdout);
		ret = import_run(&r, secret, &err);
	}
	if (r.t.st != NULL && loaded)
		save_now(&r);
	bool failed = r.t.failed > 0;
	import_target_close(&r.t, ret == 0);
	if (ret != 0)
		cli_error("import imap: %s", buf_cstr(&err));
	meta_free(&r);
	buf_free(&r.kw);
	for (size_t i = 0; i < r.rm.n; i++) {
		free(r.rm.f[i].name);
		free(r.rm.f[i].local);
	}
	free(r.rm.f);
	buf_free(&r.rm.caps);
	imc_close(&r.rm.c);
	imap_parser_destroy(&r.rm.parser);
	state_free(&r.state);
	if (r.journal >= 0)
		close(r.journal);
	free(r.journal_path);
	free(r.pend);
	buf_free(&r.fail_err);
	buf_free(&err);
	return ret == 0 && !failed ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cmd_import(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || (argc == 2 && cli_wants_help(argc, argv))) {
		fprintf(argc < 2 ? stderr : stdout, "%s\n%s", import_help, import_files_help);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	bool files = strcmp(argv[1], "maildir") == 0 || strcmp(argv[1], "mbox") == 0;
	if (cli_wants_help(argc, argv)) {
		fputs(files ? import_files_help : import_help, stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "imap") == 0)
		return import_imap(data_dir, argc, argv);
	if (strcmp(argv[1], "csv") == 0)
		return import_csv(data_dir, argc, argv);
	if (files)
		return import_files(data_dir, argc, argv);
	fprintf(stderr, "interchange: import: unknown kind %s (imap, maildir, mbox)\n\n%s\n%s", argv[1], import_help,
		import_files_help);
	return CLI_EXIT_USAGE;
}
