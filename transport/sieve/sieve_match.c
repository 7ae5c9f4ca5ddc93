/* sieve_match.c - Sieve's comparisons: the :matches wildcards with their captures (linear backtracking, the first
 * wildcard matching as little as possible), the comparators i;octet, i;ascii-casemap and i;ascii-numeric (RFC
 * 4790), and the relational operators (RFC 5231). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "transport/sieve/sieve_match.h"

static int eq_char(char a, char b, int casemap)
{
	if (casemap)
		return tolower((unsigned char)a) == tolower((unsigned char)b);
	return a == b;
}

int sieve_glob(const char *pat, size_t plen, const char *text, size_t len, int casemap, size_t (*captures)[2],
	       size_t ncap, unsigned *steps)
{
	/* the pattern as tokens: 0..255 a literal byte, -1 '?', -2 '*' */
	enum { ANY = -1, STAR = -2 };
	size_t cap = plen + 1;
	int tokens_small[256];
	size_t wild_small[256];
	int *tok = tokens_small;
	size_t *wild = wild_small; /* wildcard number of each token */
	int heap = cap > 256;
	if (heap) {
		tok = malloc(cap * sizeof(*tok));
		wild = malloc(cap * sizeof(*wild));
		if (tok == NULL || wild == NULL) {
			free(tok);
			free(wild);
			return 0;
		}
	}
	size_t n = 0, nw = 0;
	for (size_t i = 0; i < plen; i++) {
		if (pat[i] == '\\' && i + 1 < plen) {
			tok[n++] = (unsigned char)pat[++i];
		} else if (pat[i] == '?' || pat[i] == '*') {
			wild[n] = nw++;
			tok[n++] = pat[i] == '?' ? ANY : STAR;
		} else
			tok[n++] = (unsigned char)pat[i];
	}
	size_t pi = 0, ti = 0, star_pi = (size_t)-1, star_ti = 0;
	unsigned work = 0;
	while (ti < len) {
		work++;
		if (pi < n && tok[pi] == STAR) {
			if (wild[pi] < ncap && captures != NULL) {
				captures[wild[pi]][0] = ti;
				captures[wild[pi]][1] = ti;
			}
			star_pi = pi++;
			star_ti = ti;
		} else if (pi < n && (tok[pi] == ANY || (tok[pi] >= 0 && eq_char((char)tok[pi], text[ti], casemap)))) {
			if (tok[pi] == ANY && wild[pi] < ncap && captures != NULL) {
				captures[wild[pi]][0] = ti;
				captures[wild[pi]][1] = ti + 1;
			}
			pi++;
			ti++;
		} else if (star_pi != (size_t)-1) {
			ti = ++star_ti;
			pi = star_pi + 1;
			if (wild[star_pi] < ncap && captures != NULL)
				captures[wild[star_pi]][1] = ti;
		} else
			break;
	}
	while (pi < n && tok[pi] == STAR) {
		if (wild[pi] < ncap && captures != NULL) {
			captures[wild[pi]][0] = len;
			captures[wild[pi]][1] = len;
		}
		pi++;
	}
	int ok = ti == len && pi == n;
	if (heap) {
		free(tok);
		free(wild);
	}
	if (steps != NULL)
		*steps += work;
	return ok;
}

/* i;ascii-numeric: the leading digits as a number; a string without leading digit is positive infinity.
 * Compares numerically without overflow (leading zeros skipped, then length, then digits). */
static int cmp_numeric(const char *a, size_t al, const char *b, size_t bl)
{
	size_t ad = 0, bd = 0;
	while (ad < al && isdigit((unsigned char)a[ad]))
		ad++;
	while (bd < bl && isdigit((unsigned char)b[bd]))
		bd++;
	if (ad == 0 || bd == 0)
		return (ad == 0) - (bd == 0);
	while (ad > 1 && *a == '0') {
		a++;
		ad--;
	}
	while (bd > 1 && *b == '0') {
		b++;
		bd--;
	}
	if (ad != bd)
		return ad < bd ? -1 : 1;
	int c = memcmp(a, b, ad);
	return (c > 0) - (c < 0);
}

int sieve_compare(int comparator, const char *a, size_t al, const char *b, size_t bl)
{
	if (comparator == SIEVE_CMP_NUMERIC)
		return cmp_numeric(a, al, b, bl);
	size_t n = al < bl ? al : bl;
	for (size_t i = 0; i < n; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (comparator == SIEVE_CMP_CASEMAP) {
			x = tolower(x);
			y = tolower(y);
		}
		if (x != y)
			return x < y ? -1 : 1;
	}
	return (al > bl) - (al < bl);
}

int sieve_contains(int comparator, const char *hay, size_t hl, const char *needle, size_t nl)
{
	if (nl == 0)
		return 1;
	for (size_t i = 0; i + nl <= hl; i++)
		if (sieve_compare(comparator == SIEVE_CMP_NUMERIC ? SIEVE_CMP_OCTET : comparator, hay + i, nl, needle,
				  nl) == 0)
			return 1;
	return 0;
}

int sieve_relop(const char *op)
{
	static const char *const ops[] = { "gt", "ge", "lt", "le", "eq", "ne" };
	for (int i = 0; i < 6; i++)
		if (strcasecmp(op, ops[i]) == 0)
			return i;
	return SIEVE_REL_EQ;
}

int sieve_relop_holds(int op, int c)
{
	switch (op) {
	case SIEVE_REL_GT: return c > 0;
	case SIEVE_REL_GE: return c >= 0;
	case SIEVE_REL_LT: return c < 0;
	case SIEVE_REL_LE: return c <= 0;
	case SIEVE_REL_NE: return c != 0;
	default: return c == 0;
	}
}
