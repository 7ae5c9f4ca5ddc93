/* test_addrgen.c - unit tests for address generation: ASCII folding, templates, collision variants, escaping. */
#include "tests/unit/test.h"
#include "directory/addrgen.h"
#include "common/err.h"
#include "directory/ldap_util.h"

#include <stdlib.h>

static const char *fold(const char *in)
{
	static struct buf b;
	buf_free(&b);
	addrgen_fold(in, &b);
	return buf_cstr(&b);
}

static void folds_accents_to_ascii(void)
{
	test_assert_str(fold("José"), "jose");
	test_assert_str(fold("Müller"), "muller");
	test_assert_str(fold("Straße"), "strasse");
	test_assert_str(fold("Æsa Øberg"), "aesaoberg");
	test_assert_str(fold("Łukasz Żółć"), "lukaszzolc");
	test_assert_str(fold("François-Noël"), "francois-noel");
	test_assert_str(fold("O'Brien"), "obrien");
	test_assert_str(fold("Ĳsselmeer"), "ijsselmeer");
	test_assert_str(fold("日本"), "");
	test_assert_str(fold(".a..b."), "a.b");
	test_assert_str(fold("\xff\xfe"
			     "ab\xc3"),
			"ab");
	test_assert_str(fold("(*)\\"), "");
}

static const char *expand(const char *tmpl, const char *g, const char *s, const char *m)
{
	static struct buf b;
	struct buf err = BUF_INIT;
	struct addrgen_vars v = { g, s, m };
	buf_free(&b);
	int ret = addrgen_expand(tmpl, &v, &b, &err);
	buf_free(&err);
	return ret == IX_OK ? buf_cstr(&b) : "<error>";
}

static void expands_templates(void)
{
	test_assert_str(expand("SMTP:%g.%s@Example.COM", "John", "Smith", "jsmith"), "john.smith@example.com");
	test_assert_str(expand("SMTP:%g.%s@example.com", "Renée", "Zoë Åberg", "x"), "renee.zoeaberg@example.com");
	test_assert_str(expand("smtp:%i%s@example.com", "John", "Smith", NULL), "jsmith@example.com");
	test_assert_str(expand("SMTP:%m@example.com", NULL, NULL, "Sales Team"), "salesteam@example.com");
	test_assert_str(expand("SMTP:%g.%s@example.com", NULL, "Smith", NULL), "smith@example.com");
	test_assert_str(expand("SMTP:%g.%s@example.com", "", "", "x"), "<error>");
	test_assert_str(expand("SMTP:%g.%s@example.com", "李", "王", "x"), "<error>");
	test_assert_str(expand("SMTP:%g.%s", "a", "b", NULL), "<error>");
	test_assert_str(expand("SMTP:%q@example.com", "a", "b", NULL), "<error>");
	test_assert_str(expand("SMTP:%g@example.com",
			       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, NULL),
			"<error>");
}

static void numbers_variants(void)
{
	struct buf b = BUF_INIT;
	addrgen_variant("john.smith@example.com", 2, &b);
	test_assert_str(buf_cstr(&b), "john.smith2@example.com");
	buf_reset(&b);
	addrgen_variant("john.smith@example.com", 13, &b);
	test_assert_str(buf_cstr(&b), "john.smith13@example.com");
	buf_free(&b);
}

static void escapes_filters_and_dns(void)
{
	struct buf b = BUF_INIT;
	ldapu_escape_filter(&b, "a*b(c)\\d", 8);
	test_assert_str(buf_cstr(&b), "a\\2ab\\28c\\29\\5cd");
	buf_reset(&b);
	ldapu_escape_filter(&b, "x\0y", 3);
	test_assert_str(buf_cstr(&b), "x\\00y");
	buf_reset(&b);
	ldapu_escape_dn(&b, "#Smith, John+ ", 14);
	test_assert_str(buf_cstr(&b), "\\#Smith\\, John\\+\\ ");
	buf_reset(&b);
	ldapu_escape_dn(&b, "a=b;c<d>\"", 9);
	test_assert_str(buf_cstr(&b), "a\\=b\\;c\\<d\\>\\\"");
	buf_free(&b);
	char *uri = ldapu_ldapi_uri("/tmp/a b/run/ldapi");
	test_assert_str(uri, "ldapi://%2Ftmp%2Fa%20b%2Frun%2Fldapi");
	free(uri);
}

TEST_MAIN("addrgen", TEST_CASE(folds_accents_to_ascii), TEST_CASE(expands_templates), TEST_CASE(numbers_variants),
	  TEST_CASE(escapes_filters_and_dns))
