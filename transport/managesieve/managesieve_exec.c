/* managesieve_exec.c - ManageSieve's answers: strings, response lines, the capability list, and the script commands
 * over the store's Sieve scripts (see managesieve_exec.h). */
#include "transport/managesieve/managesieve_exec.h"
#include "common/err.h"
#include "common/util.h"
#include "store/store.h"
#include "transport/sieve/sieve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what the server writes ---- */

void ms_append_string(struct buf *out, const char *s, size_t len)
{
	bool literal = len > MS_MAX_QUOTED || memchr(s, '\0', len) != NULL || memchr(s, '\r', len) != NULL ||
		       memchr(s, '\n', len) != NULL;
	if (literal) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_append_quoted(out, s, len);
}

void ms_append_response(struct buf *out, const char *status, const char *code, const char *text)
{
	buf_append_str(out, status);
	if (code != NULL)
		buf_printf(out, " (%s)", code);
	buf_append_char(out, ' ');
	ms_append_string(out, text, strlen(text));
	buf_append_str(out, "\r\n");
}

static void cap(struct buf *out, const char *name, const char *value)
{
	ms_append_string(out, name, strlen(name));
	if (value != NULL) {
		buf_append_char(out, ' ');
		ms_append_string(out, value, strlen(value));
	}
	buf_append_str(out, "\r\n");
}

void ms_append_capabilities(struct buf *out, const struct ms_caps *caps)
{
	char redirects[16];
	snprintf(redirects, sizeof(redirects), "%u", SIEVE_DEFAULT_MAX_REDIRECTS);
	cap(out, "IMPLEMENTATION", "Interchange");
	cap(out, "SASL", caps->sasl != NULL ? caps->sasl : "");
	cap(out, "SIEVE", SIEVE_EXTENSIONS);
	if (caps->starttls)
		cap(out, "STARTTLS", NULL);
	cap(out, "MAXREDIRECTS", redirects);
	cap(out, "UNAUTHENTICATE", NULL);
	if (caps->owner != NULL)
		cap(out, "OWNER", caps->owner);
	cap(out, "VERSION", "1.0");
}

/* ---- the script commands ---- */

static bool is_oof(const char *name)
{
	return strcmp(name, SIEVE_OOF_NAME) == 0;
}

/* A name the client may give a script of its own: NULL, or why not. */
static const char *name_problem(const char *name, size_t len, struct buf *why)
{
	if (strlen(name) != len)
		return "A script name cannot hold a NUL.";
	if (is_oof(name))
		return "The name " SIEVE_OOF_NAME " is kept for the out-of-office reply (interchange user oof).";
	if (store_sieve_name_check(name, why) != IX_OK)
		return buf_cstr(why);
	return NULL;
}

/* The client's scripts (the out-of-office one left out): their count, and whether name is one of them. */
static int count_scripts(struct store *st, const char *guid, const char *name, size_t *count_r, bool *exists_r,
			 struct buf *error_r)
{
	struct buf names = BUF_INIT;
	int ret = store_sieve_list(st, guid, &names, NULL, error_r);
	*count_r = 0;
	*exists_r = false;
	char *save = NULL;
	for (char *n = ret == IX_OK && names.len > 0 ? strtok_r(names.data, "\n", &save) : NULL; n != NULL;
	     n = strtok_r(NULL, "\n", &save)) {
		if (is_oof(n))
			continue;
		(*count_r)++;
		if (name != NULL && strcmp(n, name) == 0)
			*exists_r = true;
	}
	buf_free(&names);
	return ret;
}

/* The quota checks of HAVESPACE and PUTSCRIPT: 1 when a script of size bytes may be stored as name, 0 when not (the
 * NO is in out), or the store's error. */
static int room_for(struct store *st, const char *guid, const char *name, uint64_t size, struct buf *out,
		    struct buf *error_r)
{
	if (size > SIEVE_DEFAULT_MAX_SCRIPT) {
		char text[96];
		snprintf(text, sizeof(text), "A script may hold at most %u bytes.", (unsigned)SIEVE_DEFAULT_MAX_SCRIPT);
		ms_append_response(out, "NO", "QUOTA/MAXSIZE", text);
		return 0;
	}
	size_t count;
	bool exists;
	int ret = count_scripts(st, guid, name, &count, &exists, error_r);
	if (ret != IX_OK)
		return ret;
	if (!exists && count >= MS_MAX_SCRIPTS) {
		char text[96];
		snprintf(text, sizeof(text), "A mailbox may keep at most %u scripts.", (unsigned)MS_MAX_SCRIPTS);
		ms_append_response(out, "NO", "QUOTA/MAXSCRIPTS", text);
		return 0;
	}
	return 1;
}

/* The Sieve parser's verdict: true, or false with its error in a NO. */
static bool script_ok(const struct ms_request *req, struct buf *out)
{
	struct sieve_script *s = NULL;
	struct buf err = BUF_INIT;
	bool ok = sieve_parse(req->script, req->script_len, SIEVE_DEFAULT_MAX_SCRIPT, &s, &err) == IX_OK;
	if (ok)
		sieve_free(s);
	else
		ms_append_response(out, "NO", NULL, buf_cstr(&err));
	buf_free(&err);
	return ok;
}

static void nonexistent(struct buf *out, const char *name)
{
	struct buf t = BUF_INIT;
	buf_printf(&t, "There is no script named %s.", name);
	ms_append_response(out, "NO", "NONEXISTENT", buf_cstr(&t));
	buf_free(&t);
}

static int list(struct store *st, const char *guid, struct buf *out, struct buf *error_r)
{
	struct buf names = BUF_INIT, active = BUF_INIT;
	int ret = store_sieve_list(st, guid, &names, &active, error_r);
	char *save = NULL;
	for (char *n = ret == IX_OK && names.len > 0 ? strtok_r(names.data, "\n", &save) : NULL; n != NULL;
	     n = strtok_r(NULL, "\n", &save)) {
		if (is_oof(n))
			continue;
		ms_append_string(out, n, strlen(n));
		buf_append_str(out, strcmp(n, buf_cstr(&active)) == 0 ? " ACTIVE\r\n" : "\r\n");
	}
	if (ret == IX_OK)
		ms_append_response(out, "OK", NULL, "Listed.");
	buf_free(&names);
	buf_free(&active);
	return ret;
}

/* One command; 0 when answered, else the store's error (nothing of the answer written yet but data lines). */
static int exec(struct store *st, const char *guid, const struct ms_request *req, struct buf *out, struct buf *error_r)
{
	struct buf why = BUF_INIT, text = BUF_INIT;
	const char *problem = NULL;
	int ret = IX_OK, room;
	switch (req->verb) {
	case MS_HAVESPACE:
	case MS_PUTSCRIPT:
		if ((problem = name_problem(req->name, req->name_len, &why)) != NULL) {
			ms_append_response(out, "NO", NULL, problem);
			break;
		}
		room = room_for(st, guid, req->name, req->verb == MS_HAVESPACE ? req->size : req->script_len, out,
				error_r);
		if (room < 0) {
			ret = room;
		} else if (room == 0) {
		} else if (req->verb == MS_HAVESPACE) {
			ms_append_response(out, "OK", NULL, "Putting a script of that size is fine.");
		} else if (script_ok(req, out)) {
			ret = store_sieve_put(st, guid, req->name, req->script, req->script_len, error_r);
			if (ret == IX_OK)
				ms_append_response(out, "OK", NULL, "Stored.");
		}
		break;
	case MS_CHECKSCRIPT:
		if (req->script_len > SIEVE_DEFAULT_MAX_SCRIPT) {
			buf_printf(&text, "A script may hold at most %u bytes.", (unsigned)SIEVE_DEFAULT_MAX_SCRIPT);
			ms_append_response(out, "NO", "QUOTA/MAXSIZE", buf_cstr(&text));
		} else if (script_ok(req, out)) {
			ms_append_response(out, "OK", NULL, "The script is valid.");
		}
		break;
	case MS_LISTSCRIPTS: ret = list(st, guid, out, error_r); break;
	case MS_SETACTIVE:
		if (req->name_len == 0) {
			ret = store_sieve_activate(st, guid, NULL, error_r);
			if (ret == IX_OK)
				ms_append_response(out, "OK", NULL, "No script is active now.");
		} else if (is_oof(req->name) || strlen(req->name) != req->name_len) {
			nonexistent(out, req->name);
		} else if ((ret = store_sieve_activate(st, guid, req->name, error_r)) == IX_ENOTFOUND) {
			ret = IX_OK;
			nonexistent(out, req->name);
		} else if (ret == IX_OK) {
			ms_append_response(out, "OK", NULL, "Active.");
		}
		break;
	case MS_GETSCRIPT:
		if (is_oof(req->name) || strlen(req->name) != req->name_len ||
		    (ret = store_sieve_get(st, guid, req->name, &text, error_r)) == IX_ENOTFOUND) {
			ret = IX_OK;
			nonexistent(out, req->name);
		} else if (ret == IX_OK) {
			buf_printf(out, "{%zu}\r\n", text.len);
			buf_append(out, text.data, text.len);
			buf_append_str(out, "\r\n");
			ms_append_response(out, "OK", NULL, "Sent.");
		}
		break;
	case MS_DELETESCRIPT:
		if (is_oof(req->name) || strlen(req->name) != req->name_len ||
		    (ret = store_sieve_delete(st, guid, req->name, error_r)) == IX_ENOTFOUND) {
			ret = IX_OK;
			nonexistent(out, req->name);
		} else if (ret == IX_EPERM) {
			ret = IX_OK;
			ms_append_response(out, "NO", "ACTIVE",
					   "The active script cannot be deleted: SETACTIVE \"\" first.");
		} else if (ret == IX_OK) {
			ms_append_response(out, "OK", NULL, "Deleted.");
		}
		break;
	case MS_RENAMESCRIPT:
		if (is_oof(req->name) || strlen(req->name) != req->name_len) {
			nonexistent(out, req->name);
		} else if ((problem = name_problem(req->name2, req->name2_len, &why)) != NULL) {
			ms_append_response(out, "NO", NULL, problem);
		} else if ((ret = store_sieve_rename(st, guid, req->name, req->name2, error_r)) == IX_ENOTFOUND) {
			ret = IX_OK;
			nonexistent(out, req->name);
		} else if (ret == IX_EEXIST) {
			ret = IX_OK;
			buf_printf(&text, "A script named %s exists already.", req->name2);
			ms_append_response(out, "NO", "ALREADYEXISTS", buf_cstr(&text));
		} else if (ret == IX_OK) {
			ms_append_response(out, "OK", NULL, "Renamed.");
		}
		break;
	default: ms_append_response(out, "NO", NULL, "Not a script command."); break;
	}
	buf_free(&why);
	buf_free(&text);
	return ret;
}

int ms_exec(struct store *st, const char *guid, const struct ms_request *req, struct buf *out, struct buf *error_r)
{
	struct buf answer = BUF_INIT;
	int ret = exec(st, guid, req, &answer, error_r);
	if (ret == IX_OK) /* else no partial listing before the NO */
		buf_append(out, answer.data, answer.len);
	else
		ms_append_response(out, "NO", "TRYLATER", "The mailbox store is not answering; try again later.");
	buf_free(&answer);
	return ret;
}
