/* sieve_match.h - Sieve's comparators and relational operators (RFC 4790, 5231), used by the interpreter and its
 * tests; sieve_glob (the :matches wildcards) is declared in sieve.h. */
#ifndef IX_SIEVE_MATCH_H
#define IX_SIEVE_MATCH_H

#include <stddef.h>
#include <stdlib.h>

#include "transport/sieve/sieve.h"

enum { SIEVE_CMP_OCTET, SIEVE_CMP_CASEMAP, SIEVE_CMP_NUMERIC };
enum { SIEVE_REL_GT, SIEVE_REL_GE, SIEVE_REL_LT, SIEVE_REL_LE, SIEVE_REL_EQ, SIEVE_REL_NE };

/* <0, 0 or >0 as a sorts before, equal to or after b under the comparator (numeric: leading digits as an
 * unbounded number, no digits = positive infinity). */
int sieve_compare(int comparator, const char *a, size_t al, const char *b, size_t bl);
/* 1 when needle occurs in hay under the comparator (numeric compares as octets: RFC 4790 has no substring there). */
int sieve_contains(int comparator, const char *hay, size_t hl, const char *needle, size_t nl);
/* SIEVE_REL_* for "gt" .. "ne" (any case); SIEVE_REL_EQ for anything else. */
int sieve_relop(const char *op);
/* 1 when a comparison result c satisfies op. */
int sieve_relop_holds(int op, int c);

#endif
