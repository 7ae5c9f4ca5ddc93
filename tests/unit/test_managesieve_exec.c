/* test_managesieve_exec.c - ManageSieve's answers: strings quoted or as literals, response lines, the capability
 * list, and every script command over a real store (quota codes, the parser's error, NONEXISTENT, ACTIVE,
 * ALREADYEXISTS, the out-of-office script hidden). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"
#include "tests/unit/test.h"
#include "transport/managesieve/managesieve_exec.h"
#include "transport/sieve/sieve.h"

#define GUID "0123456789abcdef0123456789abcdef"

static void strings(void)
{
	struct buf b = BUF_INIT;
	ms_append_string(&b, "plain", 5);
	test_assert_str(buf_cstr(&b), "\"plain\"");
	buf_reset(&b);
	ms_append_string(&b, "a\"b\\c", 5);
	test_assert_str(buf_cstr(&b), "\"a\\\"b\\\\c\"");
	buf_reset(&b);
	ms_append_string(&b, "two\r\nlines", 10);
	test_assert_str(buf_cstr(&b), "{10}\r\ntwo\r\nlines");
	buf_reset(&b);
	char *big = xcalloc(1, MS_MAX_QUOTED + 2);
	memset(big, 'x', MS_MAX_QUOTED + 1);
	ms_append_string(&b, big, MS_MAX_QUOTED + 1);
	test_assert(strncmp(buf_cstr(&b), "{1025}\r\nxxx", 11) == 0 && b.len == MS_MAX_QUOTED + 1 + 8);
	buf_reset(&b);
	ms_append_string(&b, big, MS_MAX_QUOTED);
	test_assert(b.data[0] == '"' && b.len == MS_MAX_QUOTED + 2);
	free(big);
	buf_reset(&b);
	ms_append_response(&b, "NO", "QUOTA/MAXSIZE", "Too \"big\".");
	test_assert_str(buf_cstr(&b), "NO (QUOTA/MAXSIZE) \"Too \\\"big\\\".\"\r\n");
	buf_reset(&b);
	ms_append_response(&b, "OK", NULL, "");
	test_assert_str(buf_cstr(&b), "OK \"\"\r\n");
	buf_free(&b);
}

static void capabilities(void)
{
	struct buf b = BUF_INIT;
	struct ms_caps c = { "PLAIN LOGIN", true, NULL };
	ms_append_capabilities(&b, &c);
	test_assert(strstr(buf_cstr(&b), "\"IMPLEMENTATION\" \"Interchange\"\r\n") == buf_cstr(&b));
	test_assert(strstr(buf_cstr(&b), "\"SASL\" \"PLAIN LOGIN\"\r\n") != NULL);
	test_assert(strstr(buf_cstr(&b), "\"SIEVE\" \"" SIEVE_EXTENSIONS "\"\r\n") != NULL);
	test_assert(strstr(buf_cstr(&b), "\"STARTTLS\"\r\n") != NULL);
	test_assert(strstr(buf_cstr(&b), "\"MAXREDIRECTS\" \"4\"\r\n") != NULL);
	test_assert(strstr(buf_cstr(&b), "\"UNAUTHENTICATE\"\r\n") != NULL);
	test_assert(strstr(buf_cstr(&b), "\"OWNER\"") == NULL);
	test_assert(strstr(buf_cstr(&b), "\"VERSION\" \"1.0\"\r\n") != NULL);
	buf_reset(&b);
	struct ms_caps after = { "", false, "alice" };
	ms_append_capabilities(&b, &after);
	test_assert(strstr(buf_cstr(&b), "\"SASL\" \"\"\r\n") != NULL);
	test_assert(strstr(buf_cstr(&b), "STARTTLS") == NULL);
	test_assert(strstr(buf_cstr(&b), "\"OWNER\" \"alice\"\r\n") != NULL);
	buf_free(&b);
}

static char tmpdir[64];

static struct store *open_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ix-mse-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return NULL;
	struct store_settings set;
	store_settings_default(&set);
	set.no_sync = 1;
	struct store *st = NULL;
	if (store_open(tmpdir, &set, &st, NULL) != 0)
		return NULL;
	store_mailbox_ensure(st, GUID, NULL);
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

/* The whole answer to one command. */
static char *run(struct store *st, enum ms_verb verb, const char *name, const char *name2, const char *script,
		 uint32_t size)
{
	struct ms_request r = { 0 };
	r.verb = verb;
	r.name = name != NULL ? name : "";
	r.name_len = strlen(r.name);
	r.name2 = name2 != NULL ? name2 : "";
	r.name2_len = strlen(r.name2);
	r.script = script != NULL ? script : "";
	r.script_len = strlen(r.script);
	r.size = size;
	struct buf out = BUF_INIT, err = BUF_INIT;
	if (ms_exec(st, GUID, &r, &out, &err) != IX_OK)
		buf_printf(&out, "store error: %s", buf_cstr(&err));
	buf_free(&err);
	return buf_steal(&out);
}

static bool answer_is(struct store *st, enum ms_verb verb, const char *name, const char *name2, const char *script,
		      uint32_t size, const char *want)
{
	char *got = run(st, verb, name, name2, script, size);
	bool ok = strcmp(got, want) == 0;
	if (!ok)
		fprintf(stderr, "got: %s\nwant: %s\n", got, want);
	free(got);
	return ok;
}

static void scripts(void)
{
	struct store *st = open_tmp();
	test_assert(st != NULL);
	const char *rules = "require \"fileinto\";\r\nfileinto \"Lists\";\r\n";
	test_assert(answer_is(st, MS_LISTSCRIPTS, NULL, NULL, NULL, 0, "OK \"Listed.\"\r\n"));
	test_assert(answer_is(st, MS_HAVESPACE, "rules", NULL, NULL, 1000,
			      "OK \"Putting a script of that size is fine.\"\r\n"));
	test_assert(answer_is(st, MS_HAVESPACE, "rules", NULL, NULL, SIEVE_DEFAULT_MAX_SCRIPT + 1,
			      "NO (QUOTA/MAXSIZE) \"A script may hold at most 65536 bytes.\"\r\n"));
	/* the parser's own message */
	test_assert(answer_is(st, MS_PUTSCRIPT, "bad", NULL, "fileinto \"x\";", 0,
			      "NO \"line 1: fileinto needs require \\\"fileinto\\\"\"\r\n"));
	char *c = run(st, MS_CHECKSCRIPT, NULL, NULL, "if true {", 0);
	test_assert(strncmp(c, "NO \"line 1: ", 12) == 0);
	free(c);
	test_assert(answer_is(st, MS_CHECKSCRIPT, NULL, NULL, rules, 0, "OK \"The script is valid.\"\r\n"));
	test_assert(answer_is(st, MS_PUTSCRIPT, "rules", NULL, rules, 0, "OK \"Stored.\"\r\n"));
	test_assert(answer_is(st, MS_LISTSCRIPTS, NULL, NULL, NULL, 0, "\"rules\"\r\nOK \"Listed.\"\r\n"));
	test_assert(answer_is(st, MS_SETACTIVE, "rules", NULL, NULL, 0, "OK \"Active.\"\r\n"));
	test_assert(answer_is(st, MS_LISTSCRIPTS, NULL, NULL, NULL, 0, "\"rules\" ACTIVE\r\nOK \"Listed.\"\r\n"));
	test_assert(answer_is(st, MS_GETSCRIPT, "rules", NULL, NULL, 0,
			      "{40}\r\nrequire \"fileinto\";\r\nfileinto \"Lists\";\r\n\r\nOK \"Sent.\"\r\n"));
	test_assert(answer_is(st, MS_GETSCRIPT, "nope", NULL, NULL, 0,
			      "NO (NONEXISTENT) \"There is no script named nope.\"\r\n"));
	test_assert(answer_is(st, MS_SETACTIVE, "nope", NULL, NULL, 0,
			      "NO (NONEXISTENT) \"There is no script named nope.\"\r\n"));
	test_assert(answer_is(st, MS_DELETESCRIPT, "rules", NULL, NULL, 0,
			      "NO (ACTIVE) \"The active script cannot be deleted: SETACTIVE \\\"\\\" first.\"\r\n"));
	test_assert(answer_is(st, MS_PUTSCRIPT, "second", NULL, "keep;", 0, "OK \"Stored.\"\r\n"));
	test_assert(answer_is(st, MS_RENAMESCRIPT, "second", "rules", NULL, 0,
			      "NO (ALREADYEXISTS) \"A script named rules exists already.\"\r\n"));
	test_assert(answer_is(st, MS_RENAMESCRIPT, "rules", "filters", NULL, 0, "OK \"Renamed.\"\r\n"));
	test_assert(answer_is(st, MS_LISTSCRIPTS, NULL, NULL, NULL, 0,
			      "\"filters\" ACTIVE\r\n\"second\"\r\nOK \"Listed.\"\r\n"));
	test_assert(answer_is(st, MS_SETACTIVE, "", NULL, NULL, 0, "OK \"No script is active now.\"\r\n"));
	test_assert(answer_is(st, MS_DELETESCRIPT, "filters", NULL, NULL, 0, "OK \"Deleted.\"\r\n"));
	test_assert(answer_is(st, MS_DELETESCRIPT, "filters", NULL, NULL, 0,
			      "NO (NONEXISTENT) \"There is no script named filters.\"\r\n"));
	/* a script over the size limit is refused before it is parsed */
	char *big = xcalloc(1, SIEVE_DEFAULT_MAX_SCRIPT + 2);
	memset(big, '#', SIEVE_DEFAULT_MAX_SCRIPT + 1);
	test_assert(answer_is(st, MS_PUTSCRIPT, "big", NULL, big, 0,
			      "NO (QUOTA/MAXSIZE) \"A script may hold at most 65536 bytes.\"\r\n"));
	test_assert(answer_is(st, MS_CHECKSCRIPT, NULL, NULL, big, 0,
			      "NO (QUOTA/MAXSIZE) \"A script may hold at most 65536 bytes.\"\r\n"));
	free(big);
	/* the count: MS_MAX_SCRIPTS in all; replacing one is fine, one more is not */
	for (unsigned i = 1; i < MS_MAX_SCRIPTS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%u", i);
		test_assert(answer_is(st, MS_PUTSCRIPT, name, NULL, "keep;", 0, "OK \"Stored.\"\r\n"));
	}
	test_assert(answer_is(st, MS_PUTSCRIPT, "s1", NULL, "discard;", 0, "OK \"Stored.\"\r\n"));
	test_assert(answer_is(st, MS_PUTSCRIPT, "one-more", NULL, "keep;", 0,
			      "NO (QUOTA/MAXSCRIPTS) \"A mailbox may keep at most 32 scripts.\"\r\n"));
	test_assert(answer_is(st, MS_HAVESPACE, "one-more", NULL, NULL, 10,
			      "NO (QUOTA/MAXSCRIPTS) \"A mailbox may keep at most 32 scripts.\"\r\n"));
	test_assert(
		answer_is(st, MS_HAVESPACE, "s2", NULL, NULL, 10, "OK \"Putting a script of that size is fine.\"\r\n"));
	/* names the store refuses */
	c = run(st, MS_PUTSCRIPT, "a/b", NULL, "keep;", 0);
	test_assert(strncmp(c, "NO \"", 4) == 0);
	free(c);
	close_tmp(&st);
}

/* The out-of-office script belongs to `user oof`: never listed, and named it does not exist or cannot be written;
 * it does not count against the number of scripts. */
static void out_of_office_hidden(void)
{
	struct store *st = open_tmp();
	test_assert(st != NULL);
	const char *oof = "# " SIEVE_OOF_MARK "\r\nrequire \"vacation\";\r\nvacation \"away\";\r\n";
	test_assert(store_sieve_put(st, GUID, SIEVE_OOF_NAME, oof, strlen(oof), NULL) == IX_OK);
	test_assert(answer_is(st, MS_LISTSCRIPTS, NULL, NULL, NULL, 0, "OK \"Listed.\"\r\n"));
	const char *none = "NO (NONEXISTENT) \"There is no script named " SIEVE_OOF_NAME ".\"\r\n";
	const char *kept = "NO \"The name " SIEVE_OOF_NAME
			   " is kept for the out-of-office reply (interchange user oof).\"\r\n";
	test_assert(answer_is(st, MS_GETSCRIPT, SIEVE_OOF_NAME, NULL, NULL, 0, none));
	test_assert(answer_is(st, MS_SETACTIVE, SIEVE_OOF_NAME, NULL, NULL, 0, none));
	test_assert(answer_is(st, MS_DELETESCRIPT, SIEVE_OOF_NAME, NULL, NULL, 0, none));
	test_assert(answer_is(st, MS_RENAMESCRIPT, SIEVE_OOF_NAME, "mine", NULL, 0, none));
	test_assert(answer_is(st, MS_PUTSCRIPT, SIEVE_OOF_NAME, NULL, "keep;", 0, kept));
	test_assert(answer_is(st, MS_HAVESPACE, SIEVE_OOF_NAME, NULL, NULL, 5, kept));
	test_assert(answer_is(st, MS_PUTSCRIPT, "mine", NULL, "keep;", 0, "OK \"Stored.\"\r\n"));
	test_assert(answer_is(st, MS_RENAMESCRIPT, "mine", SIEVE_OOF_NAME, NULL, 0, kept));
	for (unsigned i = 1; i < MS_MAX_SCRIPTS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%u", i);
		test_assert(answer_is(st, MS_PUTSCRIPT, name, NULL, "keep;", 0, "OK \"Stored.\"\r\n"));
	}
	struct buf text = BUF_INIT;
	test_assert(store_sieve_get(st, GUID, SIEVE_OOF_NAME, &text, NULL) == IX_OK &&
		    strcmp(buf_cstr(&text), oof) == 0);
	buf_free(&text);
	close_tmp(&st);
}

TEST_MAIN("managesieve_exec", TEST_CASE(strings), TEST_CASE(capabilities), TEST_CASE(scripts),
	  TEST_CASE(out_of_office_hidden))
