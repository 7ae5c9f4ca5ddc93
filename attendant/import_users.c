/* import_users.c - a whole organisation moving in: interchange import csv FILE (its users, with their passwords or
 * password hashes, aliases and lists) and import imap --all CSV (their mailboxes, N at a time). */
#include "attendant/cli.h"
#include "attendant/import.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/provision.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- CSV (RFC 4180: quoted fields with "" for a quote; a header line names the columns) ---- */

struct csv {
	char ***rows; /* rows[0] is the header */
	size_t *widths, n;
};

static void csv_free(struct csv *c)
{
	for (size_t i = 0; i < c->n; i++) {
		for (size_t k = 0; k < c->widths[i]; k++)
			free(c->rows[i][k]);
		free(c->rows[i]);
	}
	free(c->rows);
	free(c->widths);
	memset(c, 0, sizeof(*c));
}

static int csv_read(const char *path, struct csv *c, struct buf *error_r)
{
	memset(c, 0, sizeof(*c));
	char *data = NULL;
	size_t len = 0;
	if (read_file(path, 1u << 28, &data, &len) != 0) {
		buf_printf(error_r, "cannot read %s: %s", path, strerror(errno));
		return IX_EIO;
	}
	struct buf field = BUF_INIT;
	char **row = NULL;
	size_t width = 0;
	bool quoted = false, any = false;
	for (size_t i = 0; i <= len; i++) {
		char ch = i < len ? data[i] : '\n';
		if (quoted) {
			if (ch == '"' && i + 1 < len && data[i + 1] == '"')
				buf_append_char(&field, data[i++]);
			else if (ch == '"')
				quoted = false;
			else if (i < len)
				buf_append_char(&field, ch);
			continue;
		}
		if (ch == '"') {
			quoted = any = true;
		} else if (ch == ',' || ch == '\n') {
			row = xrealloc(row, (width + 1) * sizeof(*row));
			row[width++] = buf_steal(&field);
			if (ch == '\n') {
				bool blank = width == 1 && row[0][0] == '\0' && !any;
				if (blank) {
					free(row[0]);
					free(row);
				} else {
					c->rows = xrealloc(c->rows, (c->n + 1) * sizeof(*c->rows));
					c->widths = xrealloc(c->widths, (c->n + 1) * sizeof(*c->widths));
					c->rows[c->n] = row;
					c->widths[c->n++] = width;
				}
				row = NULL;
				width = 0;
				any = false;
			}
		} else if (ch != '\r') {
			buf_append_char(&field, ch);
			any = true;
		}
	}
	buf_free(&field);
	free(data);
	if (c->n == 0) {
		buf_printf(error_r, "%s is empty: it needs a header line naming its columns", path);
		return IX_EINVAL;
	}
	return 0;
}

/* The column named name (case-insensitive, spaces and '-' as '_'), or -1. */
static int csv_col(const struct csv *c, const char *name)
{
	for (size_t k = 0; k < c->widths[0]; k++) {
		char *h = xstrdup(c->rows[0][k]);
		for (char *p = h; *p != '\0'; p++)
			if (*p == ' ' || *p == '-')
				*p = '_';
		bool eq = strcasecmp(h, name) == 0;
		free(h);
		if (eq)
			return (int)k;
	}
	return -1;
}

/* The field of row i in column col ("" when the row is short or the column absent). */
static const char *csv_get(const struct csv *c, size_t i, int col)
{
	return col >= 0 && (size_t)col < c->widths[i] ? c->rows[i][col] : "";
}

/* Splits a list field at ';' (or spaces) into new strings. */
static size_t split_list(const char *s, char ***out)
{
	size_t n = 0;
	char *copy = xstrdup(s);
	*out = NULL;
	for (char *save = NULL, *t = strtok_r(copy, "; \t", &save); t != NULL; t = strtok_r(NULL, "; \t", &save)) {
		*out = xrealloc(*out, (n + 1) * sizeof(**out));
		(*out)[n++] = xstrdup(t);
	}
	free(copy);
	return n;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- import csv ---- */

/* Puts login in list name, making the list when there is none: 0 when done, 1 when it was a member already, else
 * an IX_* code with error_r. */
static int join_list(struct prov *p, const char *name, const char *login, struct buf *error_r)
{
	struct buf first = BUF_INIT;
	int ret = prov_dl_member(p, name, login, 1, &first);
	if (ret == IX_EEXIST && strstr(buf_cstr(&first), "already a member") != NULL)
		ret = 1;
	else if (ret != 0) {
		const char *members[] = { login };
		struct buf again = BUF_INIT;
		ret = prov_dl_add(p, name, members, 1, false, &again);
		if (ret != 0)
			buf_printf(error_r, "%s", ret == IX_EEXIST ? buf_cstr(&first) : buf_cstr(&again));
		buf_free(&again);
	}
	buf_free(&first);
	return ret;
}

static int csv_users(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	(void)out; /* each user is said as it is done */
	const struct csv *c = ctx;
	int login = csv_col(c, "login"), given = csv_col(c, "given"), surname = csv_col(c, "surname"),
	    password = csv_col(c, "password"), hash = csv_col(c, "password_hash"), aliases = csv_col(c, "aliases"),
	    lists = csv_col(c, "lists");
	if (login < 0 || given < 0 || surname < 0 || (password < 0 && hash < 0)) {
		buf_printf(err, "the header line must name the columns login, given, surname and password or "
				"password_hash (aliases and lists may follow)");
		return IX_EINVAL;
	}
	size_t added = 0, existed = 0, failed = 0, joined = 0;
	for (size_t i = 1; i < c->n; i++) {
		const char *l = csv_get(c, i, login);
		char **al = NULL, **li = NULL;
		size_t nal = split_list(csv_get(c, i, aliases), &al), nli = split_list(csv_get(c, i, lists), &li);
		const char *pw = csv_get(c, i, password), *h = csv_get(c, i, hash);
		struct prov_user u = { .login = l,
				       .given = csv_get(c, i, given),
				       .surname = csv_get(c, i, surname),
				       .password = pw[0] != '\0' ? pw : NULL,
				       .password_hash = h[0] != '\0' ? h : NULL,
				       .aliases = (const char *const *)al,
				       .alias_count = nal };
		struct buf why = BUF_INIT;
		int ret = prov_user_add(p, &u, &why);
		if (ret == 0) {
			added++;
			printf("  %s: added%s%s\n", l, u.password_hash != NULL ? " with its password hash" : "",
			       nal > 0 ? " with aliases" : "");
		} else if (ret == IX_EEXIST) {
			existed++;
			printf("  %s: exists, left as it is\n", l);
		} else {
			failed++;
			printf("  line %zu (%s): %s\n", i + 1, l, buf_cstr(&why));
		}
		for (size_t k = 0; k < nli && ret != IX_EINVAL; k++) {
			buf_reset(&why);
			int joins = join_list(p, li[k], l, &why);
			if (joins >= 0)
				joined += joins == 0;
			else {
				failed++;
				printf("  line %zu (%s): list %s: %s\n", i + 1, l, li[k], buf_cstr(&why));
			}
		}
		buf_free(&why);
		free_list(al, nal);
		free_list(li, nli);
	}
	printf("Imported %zu users from the file: %zu added, %zu existed, %zu list memberships, %zu failed\n", c->n - 1,
	       added, existed, joined, failed);
	fflush(stdout);
	if (failed > 0)
		buf_printf(err, "%zu line%s of the file failed (said above): correct them and run it again", failed,
			   failed == 1 ? "" : "s");
	return failed > 0 ? IX_EINVAL : 0;
}

int import_csv(const char *data_dir, int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "interchange: import csv needs one FILE\n");
		return CLI_EXIT_USAGE;
	}
	struct csv c;
	struct buf err = BUF_INIT;
	if (csv_read(argv[2], &c, &err) != 0) {
		cli_error("import csv: %s", buf_cstr(&err));
		buf_free(&err);
		return CLI_EXIT_FAIL;
	}
	buf_free(&err);
	int ret = cli_with_prov(data_dir, csv_users, &c);
	csv_free(&c);
	return ret;
}

/* ---- import imap --all ---- */

struct job {
	pid_t pid;
	char *login, *log;
};

/* The last line of a job's log that says how it ended ("Imported ..." or "Stopped ..."), or its last line. */
static char *job_outcome(const char *log)
{
	char *data = NULL;
	size_t len = 0;
	if (read_file(log, 1u << 26, &data, &len) != 0)
		return xstrdup("(no log)");
	char *best = NULL;
	for (char *line = strtok(data, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strncmp(line, "Imported ", 9) == 0 || strncmp(line, "Stopped ", 8) == 0 ||
		    strncmp(line, "interchange: ", 13) == 0 || strncmp(line, "Quota: ", 7) == 0 || best == NULL) {
			free(best);
			best = xstrdup(line);
		}
	}
	free(data);
	return best != NULL ? best : xstrdup("(empty log)");
}

/* One child: the import of row i with its output in its log. Never returns. */
static void job_run(const struct config *cfg, const struct import_opts *base, const char *secret, const char *login,
		    const char *user, const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	struct import_opts o = *base;
	o.login = login;
	o.user = user;
	_exit(import_imap_one(cfg, &o, secret));
}

int import_imap_all(const struct config *cfg, const struct import_opts *o, const char *secret, const char *path,
		    unsigned jobs)
{
	struct csv c;
	struct buf err = BUF_INIT;
	if (csv_read(path, &c, &err) != 0) {
		cli_error("import imap --all: %s", buf_cstr(&err));
		buf_free(&err);
		return CLI_EXIT_FAIL;
	}
	int login = csv_col(&c, "login"), user = csv_col(&c, "remote_user"), password = csv_col(&c, "password");
	if (login < 0 || (o->admin == NULL && password < 0)) {
		cli_error(
			"import imap --all: the header line of %s must name the columns login, remote_user (optional) "
			"and, without --admin, password",
			path);
		csv_free(&c);
		buf_free(&err);
		return CLI_EXIT_FAIL;
	}
	char *dir = config_path(cfg, "import");
	mkdir_p(dir, 0755);
	double t0 = import_now();
	printf("Importing %zu mailboxes from %s, %u at a time (a log per user in %s)\n", c.n - 1, o->from, jobs, dir);
	fflush(stdout);
	struct job *run = xcalloc(jobs, sizeof(*run));
	size_t next = 1, running = 0, ok = 0, failed = 0;
	while (next < c.n || running > 0) {
		while (running < jobs && next < c.n) {
			size_t i = next++;
			const char *l = csv_get(&c, i, login), *u = csv_get(&c, i, user);
			const char *pw = o->admin != NULL ? secret : csv_get(&c, i, password);
			if (!prov_login_valid(l)) {
				printf("  line %zu: \"%s\" is not a login\n", i + 1, l);
				failed++;
				continue;
			}
			size_t slot = 0;
			while (run[slot].pid != 0)
				slot++;
			run[slot].login = xstrdup(l);
			run[slot].log = xasprintf("%s/%s.log", dir, l);
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0)
				job_run(cfg, o, pw, l, u[0] != '\0' ? u : l, run[slot].log);
			if (pid < 0) {
				printf("  %s: cannot start: %s\n", l, strerror(errno));
				failed++;
				free(run[slot].login);
				free(run[slot].log);
				continue;
			}
			run[slot].pid = pid;
			running++;
		}
		if (running == 0)
			break;
		int status = 0;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;
		for (size_t k = 0; k < jobs; k++) {
			if (run[k].pid != pid)
				continue;
			bool good = WIFEXITED(status) && WEXITSTATUS(status) == 0;
			char *outcome = job_outcome(run[k].log);
			printf("  %s: %s%s\n", run[k].login, outcome, good ? "" : " (see its log)");
			fflush(stdout);
			free(outcome);
			good ? ok++ : failed++;
			free(run[k].login);
			free(run[k].log);
			run[k].pid = 0;
			running--;
		}
	}
	printf("Imported %zu of %zu mailboxes in %.1f s, %zu failed\n", ok, c.n - 1, import_now() - t0, failed);
	free(run);
	free(dir);
	csv_free(&c);
	buf_free(&err);
	return failed > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
