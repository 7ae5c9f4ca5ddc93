/* imap_url.h - IMAP URLs (RFC 5092) as CATENATE (RFC 4469), URLAUTH (RFC 4467) and BURL (RFC 4468) use them: one
 * message or part of one, absolute or relative, with URLAUTH's rump and verifier. Pure: no I/O, no globals. */
#ifndef IX_IMAP_URL_H
#define IX_IMAP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* A parsed IMAP URL naming a message (or a part of one). Strings are percent-decoded, NUL-terminated and owned
 * (imap_url_free); NULL when absent. */
struct imap_url {
	char *user;           /* enc-user of an absolute URL ("imap://user@host/..."), or of nothing */
	char *host;           /* NULL: a relative URL ("/mailbox..." or ";UID=..." of the selected mailbox) */
	unsigned port;        /* 0: none given */
	char *mailbox;        /* UTF-8; NULL: the selected mailbox (";UID=..." relative form) */
	uint32_t uidvalidity; /* 0: none given */
	uint32_t uid;         /* always set (a URL without a UID does not parse) */
	char *section;        /* as written ("1.2.MIME", "HEADER"), upper-cased; NULL: the whole message */
	bool partial;         /* ;PARTIAL=offset[.length] */
	uint64_t partial_offset, partial_length; /* length 0: to the end */
	bool has_expire;
	int64_t expire; /* ;EXPIRE= date-time, seconds since the epoch (UTC) */
	/* URLAUTH (RFC 4467): ;URLAUTH=access[:mechanism:token] */
	char *access;    /* "anonymous", "authuser", "user+NAME", "submit+NAME" as written (NAME decoded) */
	size_t rump_len; /* bytes of the URL up to the end of the access (the rump URL); 0: no URLAUTH */
	char *mechanism; /* upper-cased ("INTERNAL"); NULL: a rump URL */
	char *token;     /* lower-cased hex; NULL: a rump URL */
};

/* Parses url (len bytes). Returns 0, or IX_EINVAL with error_r saying what is wrong; *url_r is to be freed with
 * imap_url_free either way. Keywords (UIDVALIDITY, UID, SECTION, PARTIAL, EXPIRE, URLAUTH) are case-insensitive. */
int imap_url_parse(const char *url, size_t len, struct imap_url *url_r, struct buf *error_r);
void imap_url_free(struct imap_url *url);

/* The URLAUTH access identifier's kind and user: IMAP_URL_ACCESS_* and, for USER and SUBMIT, the name after "+"
 * (a pointer into access). Returns IMAP_URL_ACCESS_BAD for anything else. */
enum imap_url_access {
	IMAP_URL_ACCESS_BAD,
	IMAP_URL_ACCESS_ANONYMOUS,
	IMAP_URL_ACCESS_AUTHUSER,
	IMAP_URL_ACCESS_USER,
	IMAP_URL_ACCESS_SUBMIT
};
enum imap_url_access imap_url_access_kind(const char *access, const char **user_r);

/* The section of a URL as the store names it (store_fetch_section): "" (whole), "HEADER", "TEXT", "1.2",
 * "1.2.MIME"... Appends it to out and returns 0, or IX_EINVAL for a section the store cannot serve (HEADER.FIELDS
 * and anything but digits, dots and HEADER, TEXT, MIME). */
int imap_url_section_spec(const struct imap_url *url, struct buf *out);

#endif
