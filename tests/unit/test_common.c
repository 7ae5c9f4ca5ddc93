/* test_common.c - unit tests for common/: byte strings, number parsing, durable files. */
#include "tests/unit/test.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/settings.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void buf_grows_and_keeps_nul(void)
{
	struct buf b = BUF_INIT;
	test_assert_str(buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		buf_append(&b, "ab", 2);
	test_assert(b.len == 2000);
	test_assert(b.data[2000] == '\0');
	buf_printf(&b, "%d-%s", 42, "x");
	test_assert(b.len == 2004);
	test_assert(memcmp(b.data + 2000, "42-x", 4) == 0);
	buf_consume(&b, 1999);
	test_assert(b.len == 5);
	test_assert_str(buf_cstr(&b), "b42-x");
	buf_append(&b, "\0z", 2);
	test_assert(b.len == 7 && b.data[5] == '\0' && b.data[6] == 'z');
	char *s = buf_steal(&b);
	test_assert(b.data == NULL && b.len == 0);
	free(s);
	buf_free(&b);
}

static void buf_quoted_escapes_quote_and_backslash(void)
{
	struct buf b = BUF_INIT;
	buf_append_quoted(&b, "", 0);
	test_assert_str(buf_cstr(&b), "\"\"");
	buf_reset(&b);
	buf_append_quoted(&b, "a \"b\" \\c", 8);
	test_assert_str(buf_cstr(&b), "\"a \\\"b\\\" \\\\c\"");
	buf_reset(&b);
	buf_append_quoted(&b, "xyz", 2); /* len, not the string's end */
	test_assert_str(buf_cstr(&b), "\"xy\"");
	buf_free(&b);
}

static void ip_in_cidr_matches(void)
{
	test_assert(ip_in_cidr("127.0.0.1", "127.0.0.1") == 1);
	test_assert(ip_in_cidr("127.0.0.1", "127.0.0.2") == 0);
	test_assert(ip_in_cidr("192.168.1.0/24", "192.168.1.77") == 1);
	test_assert(ip_in_cidr("192.168.1.0/24", "192.168.2.77") == 0);
	test_assert(ip_in_cidr("10.0.0.0/9", "10.127.255.255") == 1);
	test_assert(ip_in_cidr("10.0.0.0/9", "10.128.0.0") == 0);
	test_assert(ip_in_cidr("0.0.0.0/0", "203.0.113.9") == 1);
	test_assert(ip_in_cidr("192.168.1.5", "::ffff:192.168.1.5") == 1); /* a v4 client on a dual-stack socket */
	test_assert(ip_in_cidr("2001:db8::/32", "2001:db8:1::5") == 1);
	test_assert(ip_in_cidr("2001:db8::/32", "2001:db9::5") == 0);
	test_assert(ip_in_cidr("::1", "::1") == 1);
	test_assert(ip_in_cidr("::1", "127.0.0.1") == 0);
	test_assert(ip_in_cidr("127.0.0.1", "unknown") == 0);
	test_assert(ip_in_cidr("192.168.1.0/33", "192.168.1.1") < 0);
	test_assert(ip_in_cidr("2001:db8::/129", "2001:db8::1") < 0);
	test_assert(ip_in_cidr("scanner.example.com", "192.168.1.1") < 0);
	test_assert(ip_in_cidr("/24", "192.168.1.1") < 0);
	test_assert(ip_in_cidr("10.0.0.1/", "10.0.0.1") < 0);
}

static void parse_uint_checks_wrap(void)
{
	unsigned long long v;
	test_assert(parse_uint("0", 10, &v) == 0 && v == 0);
	test_assert(parse_uint("65535", 65535, &v) == 0 && v == 65535);
	test_assert(parse_uint("65536", 65535, &v) < 0);
	test_assert(parse_uint("18446744073709551615", ~0ULL, &v) == 0 && v == ~0ULL);
	test_assert(parse_uint("18446744073709551616", ~0ULL, &v) < 0);
	test_assert(parse_uint("", 10, &v) < 0);
	test_assert(parse_uint("-1", 10, &v) < 0);
	test_assert(parse_uint("1 ", 10, &v) < 0);
}

static void atomic_file_roundtrip(void)
{
	char dir[] = "/tmp/ix-test-XXXXXX";
	test_assert(mkdtemp(dir) != NULL);
	char *sub = xasprintf("%s/a/b/c", dir);
	test_assert(mkdir_p(sub, 0700) == 0);
	char *path = xasprintf("%s/f", sub);
	test_assert(write_file_atomic(path, "hello", 5, 0600) == 0);
	char *data;
	size_t len;
	test_assert(read_file(path, 1024, &data, &len) == 0);
	test_assert(len == 5 && strcmp(data, "hello") == 0);
	free(data);
	test_assert(read_file(path, 2, &data, &len) < 0);
	char *copy = xasprintf("%s/g", sub);
	test_assert(file_copy(path, copy, 0600, 5) == 0);
	test_assert(read_file(copy, 1024, &data, &len) == 0 && len == 5 && memcmp(data, "hello", 5) == 0);
	free(data);
	test_assert(file_copy(path, copy, 0600, 4) < 0); /* larger than allowed */
	free(copy);
	test_assert(!folder_empty_or_missing(dir));
	char *missing = xasprintf("%s/none", dir);
	test_assert(folder_empty_or_missing(missing));
	test_assert(mkdir_p(missing, 0700) == 0 && folder_empty_or_missing(missing));
	free(missing);
	test_assert(remove_tree(dir) == 0);
	test_assert(folder_empty_or_missing(dir));
	free(path);
	free(sub);
}

static void strerror_names_codes(void)
{
	test_assert_str(ix_strerror(IX_OK), "success");
	test_assert_str(ix_strerror(IX_EEXIST), "already exists");
	test_assert_str(ix_strerror(12345), "unknown error");
}

static void settings_parse_and_load(void)
{
	unsigned long long v;
	int id = setting_find("smtp.max_message_size");
	test_assert(id == SET_SMTP_MAX_MESSAGE_SIZE);
	test_assert(setting_parse(id, "10M", &v) == 0 && v == 10ULL * 1024 * 1024);
	test_assert(setting_parse(id, "2048", &v) == 0 && v == 2048);
	test_assert(setting_parse(id, "12", &v) < 0);                    /* below the minimum */
	test_assert(setting_parse(id, "99999G", &v) < 0);                /* above the maximum */
	test_assert(setting_parse(id, "18446744073709551615G", &v) < 0); /* would wrap */
	test_assert(setting_parse(id, "", &v) < 0 && setting_parse(id, "k", &v) < 0 && setting_parse(id, "-1", &v) < 0);
	test_assert(setting_find("no.such") < 0);
	const char *vals[] = { "smtp.max_recipients=5", "bogus", "smtp.max_errors=0", "future.setting=1" };
	struct settings s;
	settings_load(&s, vals, 4);
	test_assert(s.v[SET_SMTP_MAX_RECIPIENTS] == 5 && s.set[SET_SMTP_MAX_RECIPIENTS]);
	test_assert(s.v[SET_SMTP_MAX_ERRORS] == setting_def(SET_SMTP_MAX_ERRORS)->def && !s.set[SET_SMTP_MAX_ERRORS]);
	for (int i = 0; i < SET_COUNT; i++) {
		const struct setting_def *d = setting_def(i);
		test_assert(d->name != NULL && d->def >= d->min && d->def <= d->max);
	}
	/* text settings: checked by their own rule, kept as text, never parsed as numbers */
	char why[SETTING_TEXT_MAX + 128];
	test_assert(setting_is_text(SET_DNS_RESOLVER) && !setting_is_text(SET_SMTP_MAX_ERRORS));
	test_assert(setting_parse(SET_DNS_RESOLVER, "1", &v) < 0);
	test_assert(setting_parse_text(SET_DNS_RESOLVER, "192.0.2.53@5353", why, sizeof(why)) == 0);
	test_assert(setting_parse_text(SET_DNS_RESOLVER, "2001:db8::53", why, sizeof(why)) == 0);
	test_assert(setting_parse_text(SET_DNS_RESOLVER, "", why, sizeof(why)) == 0);
	test_assert(setting_parse_text(SET_DNS_RESOLVER, "ns.example.com", why, sizeof(why)) < 0 &&
		    strstr(why, "IP address") != NULL);
	test_assert(setting_parse_text(SET_DNS_RESOLVER, "192.0.2.53@0", why, sizeof(why)) < 0);
	test_assert(setting_parse_text(SET_DNS_RESOLVER, "192.0.2.53@65536", why, sizeof(why)) < 0);
	test_assert(setting_parse_text(SET_DNS_TRUST_ANCHOR, "root.key", why, sizeof(why)) < 0);
	test_assert(setting_parse_text(SET_DNS_TRUST_ANCHOR, "/a\nb", why, sizeof(why)) < 0);
	test_assert(setting_parse_text(SET_SMTP_MAX_ERRORS, "5", why, sizeof(why)) < 0);
	/* mail filters: endpoint lists; the default action by name (tempfail 1, accept 0) or number */
	test_assert(setting_parse_text(SET_SMTP_MILTERS, "inet:127.0.0.1:11332,unix:/run/f.sock", why, sizeof(why)) ==
		    0);
	test_assert(setting_parse_text(SET_SMTP_SUBMISSION_MILTERS, "", why, sizeof(why)) == 0);
	test_assert(setting_parse_text(SET_SMTP_MILTERS, "tcp:127.0.0.1:11332", why, sizeof(why)) < 0 &&
		    strstr(why, "smtp.milters: ") == why);
	test_assert(setting_parse(SET_SMTP_MILTER_DEFAULT, "tempfail", &v) == 0 && v == 1);
	test_assert(setting_parse(SET_SMTP_MILTER_DEFAULT, "accept", &v) == 0 && v == 0);
	test_assert(setting_parse(SET_SMTP_MILTER_DEFAULT, "allow", &v) < 0);
	test_assert(setting_parse(SET_FORWARDING_EXTERNAL, "allow", &v) == 0 && v == 1);
	test_assert(setting_parse(SET_FORWARDING_EXTERNAL, "tempfail", &v) < 0);
	const char *tv[] = { "dns.resolver=192.0.2.53@5353", "dns.trust_anchor=relative" };
	settings_load(&s, tv, 2);
	test_assert_str(s.text[SET_DNS_RESOLVER], "192.0.2.53@5353");
	test_assert(s.set[SET_DNS_RESOLVER] && !s.set[SET_DNS_TRUST_ANCHOR] && s.text[SET_DNS_TRUST_ANCHOR][0] == '\0');
}

static void buf_read_fd_keeps_at_most_max_and_drains(void)
{
	int fds[2];
	test_assert(pipe(fds) == 0);
	char data[10000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	test_assert(write_full(fds[1], data, sizeof(data)) == 0);
	close(fds[1]);
	struct buf b = BUF_INIT;
	buf_append_str(&b, "xy");
	buf_read_fd(&b, fds[0], 100);
	test_assert(b.len == 100 && b.data[100] == '\0');
	test_assert(memcmp(b.data, "xy", 2) == 0 && memcmp(b.data + 2, data, 98) == 0);
	char c;
	test_assert(read(fds[0], &c, 1) == 0); /* drained to the end */
	close(fds[0]);
	buf_free(&b);
}

TEST_MAIN("common", TEST_CASE(buf_read_fd_keeps_at_most_max_and_drains), TEST_CASE(settings_parse_and_load),
	  TEST_CASE(buf_grows_and_keeps_nul), TEST_CASE(buf_quoted_escapes_quote_and_backslash),
	  TEST_CASE(parse_uint_checks_wrap), TEST_CASE(ip_in_cidr_matches), TEST_CASE(atomic_file_roundtrip),
	  TEST_CASE(strerror_names_codes))
