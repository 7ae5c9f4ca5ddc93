/* vcard.h - a recipient of the address book as a vCard: the text of vCard 4.0 (RFC 6350) and 3.0 (RFC 2426) for
 * CardDAV, and the text matches of CardDAV's addressbook-query filters (RFC 6352 10.5) on its properties. */
#ifndef IX_VCARD_H
#define IX_VCARD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* The most values one property has for a filter (vcard_values). */
#define VCARD_VALUES_MAX 64

/* One card. Every field is owned by the card (NULL when absent) and freed by vcard_free. */
struct vcard {
	char *uid;  /* the recipient's entryUUID */
	bool group; /* a distribution list (KIND:group), else a person */
	char *fn;   /* the name shown: displayName, else cn */
	char *given, *surname, *nickname;
	char *company, *department, *title, *office;
	char *phone, *mobile;
	char **emails; /* the primary address first */
	size_t email_count;
	char **members; /* a group's members the reader may see: their UIDs */
	size_t member_count;
	char *rev;            /* modifyTimestamp, LDAP GeneralizedTime (20261207095512Z) */
	unsigned char *photo; /* a JPEG */
	size_t photo_len;
};
void vcard_free(struct vcard *v);

/* Appends the card as vCard version 4 (4.0) or 3 (3.0), a group's members as MEMBER:urn:uuid:UID (4.0) or Apple's
 * X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:UID (3.0): CRLF line ends, lines folded at 75 octets without cutting a
 * UTF-8 character, text values escaped (backslash, comma, semicolon, newline). */
void vcard_write(const struct vcard *v, int version, struct buf *out);

/* The values of the card's property name (a vCard name, case-insensitive: FN, N, NICKNAME, EMAIL, TEL, ORG, TITLE,
 * UID, KIND) into vals (at most max; pointers into the card or static text). N is "surname;given", ORG
 * "company;department". Returns how many. */
size_t vcard_values(const struct vcard *v, const char *name, char *storage, size_t storage_len, const char **vals,
		    size_t max);

/* RFC 6352 text-match with the i;unicode-casemap collation on ASCII (case-insensitive) or i;octet (exact,
 * octet true): match_type "equals", "contains" (also NULL), "starts-with" or "ends-with"; false for another type. */
bool vcard_text_match(const char *value, const char *text, const char *match_type, bool octet);

#endif
