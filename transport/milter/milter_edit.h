/* milter_edit.h - a message as mail filters see and change it: its header fields in order and its body, with the
 * changes a filter asks for at the end of the message (add, insert, change or delete a field; replace the body). */
#ifndef IX_MILTER_EDIT_H
#define IX_MILTER_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"

/* One header field: its whole text (name, colon, value, folded lines, the final CRLF), and the length of its name
 * (0: a line of the header block without a colon, kept as it is and never shown to a filter). */
struct milter_field {
	char *text;
	size_t len;
	size_t name_len;
};

struct milter_message {
	struct milter_field *f;
	size_t n;
	const char *body; /* after the empty line: in the parsed message, or in replaced */
	size_t body_len;
	bool separator; /* the message had the empty line (a message of only header fields may not) */
	bool replaced;  /* the body is a filter's (replaced) */
	struct buf replacement;
};

/* Splits msg (CRLF line ends) into fields and body. The fields are copied; body points into msg, which must outlive
 * m unless the body is replaced. Never fails. */
void milter_message_parse(const char *msg, size_t len, struct milter_message *m_r);
void milter_message_free(struct milter_message *m);
/* The value of field i as a filter gets it: without the blanks after the colon, each CRLF of a folded field turned
 * into LF, the final CRLF left out (replaces out's contents). */
void milter_message_value(const struct milter_message *m, size_t i, struct buf *out);
/* SMFIR_ADDHEADER: a new field after the others. SMFIR_INSHEADER: a new field at position index (0: first; past
 * the end: last). A value's LF line breaks become CRLF. */
void milter_message_add(struct milter_message *m, const char *name, const char *value);
void milter_message_insert(struct milter_message *m, uint32_t index, const char *name, const char *value);
/* SMFIR_CHGHEADER: the index-th (1-based; 0 taken as 1) field called name (case-insensitively) gets value, or is
 * removed when value is "". When there are fewer such fields, a non-empty value is added as a new field. */
void milter_message_change(struct milter_message *m, uint32_t index, const char *name, const char *value);
/* SMFIR_REPLBODY: the first call of a message (first true) drops the body, every call appends data to the new one
 * (a bare LF becomes CRLF, also across calls). */
void milter_message_replace_body(struct milter_message *m, bool first, const char *data, size_t len);
/* The whole message, header fields, the empty line and the body, into out (appended). */
void milter_message_render(const struct milter_message *m, struct buf *out);

#endif
