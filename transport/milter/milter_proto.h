/* milter_proto.h - the Sendmail milter protocol (version 6, as Postfix speaks it) on the wire: packets framed by a
 * 4-byte length, encoded into and decoded from bounded buffers by pure functions (no I/O, no globals). */
#ifndef IX_MILTER_PROTO_H
#define IX_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"

#define MILTER_VERSION 6
/* Longest packet accepted from a filter (its length field, the command byte included): libmilter sends at most
 * 64 KiB of data per packet, or 1 MiB when negotiated; longer is a broken or hostile filter. */
#define MILTER_PACKET_MAX (1u << 20)
/* Body chunks sent to a filter are at most this long (MILTER_CHUNK_SIZE of libmilter). */
#define MILTER_CHUNK_MAX 65535
/* Most strings decoded from one packet (a MAIL or RCPT with its ESMTP arguments). */
#define MILTER_STRINGS_MAX 16

/* Commands (MTA to filter). */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'

/* Replies (filter to MTA). */
#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN '4'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_CONN_FAIL 'f'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_SETSYMLIST 'l'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'

/* Actions a filter may take (SMFIF_*, OPTNEG's second word). */
#define SMFIF_ADDHDRS 0x001u
#define SMFIF_CHGBODY 0x002u
#define SMFIF_ADDRCPT 0x004u
#define SMFIF_DELRCPT 0x008u
#define SMFIF_CHGHDRS 0x010u
#define SMFIF_QUARANTINE 0x020u
#define SMFIF_CHGFROM 0x040u
#define SMFIF_ADDRCPT_PAR 0x080u
#define SMFIF_SETSYMLIST 0x100u

/* Protocol steps (SMFIP_*, OPTNEG's third word): steps the filter does not want, replies it will not send. */
#define SMFIP_NOCONNECT 0x000001u
#define SMFIP_NOHELO 0x000002u
#define SMFIP_NOMAIL 0x000004u
#define SMFIP_NORCPT 0x000008u
#define SMFIP_NOBODY 0x000010u
#define SMFIP_NOHDRS 0x000020u
#define SMFIP_NOEOH 0x000040u
#define SMFIP_NR_HDR 0x000080u
#define SMFIP_NOUNKNOWN 0x000100u
#define SMFIP_NODATA 0x000200u
#define SMFIP_SKIP 0x000400u
#define SMFIP_RCPT_REJ 0x000800u
#define SMFIP_NR_CONN 0x001000u
#define SMFIP_NR_HELO 0x002000u
#define SMFIP_NR_MAIL 0x004000u
#define SMFIP_NR_RCPT 0x008000u
#define SMFIP_NR_DATA 0x010000u
#define SMFIP_NR_UNKN 0x020000u
#define SMFIP_NR_EOH 0x040000u
#define SMFIP_NR_BODY 0x080000u
#define SMFIP_HDR_LEADSPC 0x100000u

/* Macro stages of SMFIR_SETSYMLIST (SMFIM_*). */
enum milter_stage {
	MILTER_STAGE_CONNECT,
	MILTER_STAGE_HELO,
	MILTER_STAGE_MAIL,
	MILTER_STAGE_RCPT,
	MILTER_STAGE_DATA,
	MILTER_STAGE_EOM,
	MILTER_STAGE_EOH,
	MILTER_STAGE_COUNT
};

/* Address families of SMFIC_CONNECT. */
#define SMFIA_UNKNOWN 'U'
#define SMFIA_UNIX 'L'
#define SMFIA_INET '4'
#define SMFIA_INET6 '6'

/* One packet: its command or reply byte and its data (pointing into the decoded buffer). */
struct milter_packet {
	char cmd;
	const char *data;
	size_t len;
};

/* Decodes the packet at the start of the len bytes at buf. Returns the bytes it takes (> 0) with *p_r set, 0 when
 * more bytes are needed, or -1 when the length field is 0 or above MILTER_PACKET_MAX. */
long milter_packet_decode(const void *buf, size_t len, struct milter_packet *p_r);

/* Each encoder appends one whole packet to out. */
void milter_encode(struct buf *out, char cmd, const void *data, size_t len);
/* SMFIC_OPTNEG: version, the actions the MTA allows, the protocol steps it can leave out. */
void milter_encode_optneg(struct buf *out, uint32_t version, uint32_t actions, uint32_t protocol);
/* A command whose data is n NUL-terminated strings (HELO, MAIL, RCPT, HEADER: name then value). */
void milter_encode_strings(struct buf *out, char cmd, const char *const *v, size_t n);
/* SMFIC_MACRO for the command cmd: n name/value pairs (names[i], values[i]); names as "j" or "{daemon_name}". */
void milter_encode_macros(struct buf *out, char cmd, const char *const *names, const char *const *values, size_t n);
/* SMFIC_CONNECT: host name, family (SMFIA_*), port and address (both left out for SMFIA_UNKNOWN). */
void milter_encode_connect(struct buf *out, const char *hostname, char family, unsigned port, const char *addr);

/* A filter's SMFIC_OPTNEG reply: its version, actions and protocol, and the raw macro lists that may follow. */
struct milter_optneg {
	uint32_t version, actions, protocol;
	const char *symlists; /* SMFIR_SETSYMLIST data after the three words (stage, names) pairs; len 0: none */
	size_t symlists_len;
};
/* Decodes an OPTNEG reply (p->cmd must be SMFIC_OPTNEG). Returns 0 or -1 (shorter than three words). */
int milter_decode_optneg(const struct milter_packet *p, struct milter_optneg *o_r);
/* The next (stage, names) pair of a macro list, advancing *pos and *left. Returns 1 with a stage below
 * MILTER_STAGE_COUNT and names (a NUL-terminated string inside the packet, space-separated), 0 at the end, -1 when
 * malformed (a stage out of range, a string without its NUL). */
int milter_symlist_next(const char **pos, size_t *left, uint32_t *stage_r, const char **names_r);
/* Splits the data of p into NUL-terminated strings (each must end with its NUL). Returns how many (at most max,
 * into v), or -1 when the data does not end with a NUL or holds more than max. */
int milter_decode_strings(const struct milter_packet *p, const char **v, size_t max);
/* SMFIR_CHGHEADER and SMFIR_INSHEADER: a 4-byte index, then the name and the value. Returns 0 or -1. */
int milter_decode_indexed_header(const struct milter_packet *p, uint32_t *index_r, const char **name_r,
				 const char **value_r);
/* SMFIR_REPLYCODE: checks "4xy " (or "4xy-") or "5xy " then text, and copies its first line into reply (size bytes,
 * at least 5; truncated at size; a "-" after the code becomes a space). Returns 4 or 5 (the class), or -1 (no
 * such code, a control character in the line). */
int milter_decode_replycode(const struct milter_packet *p, char *reply, size_t size);

#endif
