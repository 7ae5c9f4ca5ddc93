/* endpoint.h - socket endpoints written the way Postfix and Sendmail name mail filters: "inet:HOST:PORT" (an IPv6
 * address in brackets, "inet:[::1]:11332") and "unix:/PATH", one at a time or as a comma-separated list. */
#ifndef IX_ENDPOINT_H
#define IX_ENDPOINT_H

#include <stddef.h>

/* Longest host name or address, and longest socket path (struct sockaddr_un's sun_path less its NUL). */
#define ENDPOINT_HOST_MAX 255
#define ENDPOINT_PATH_MAX 107
/* Most endpoints a list may name. */
#define ENDPOINT_LIST_MAX 8

enum endpoint_kind { ENDPOINT_INET, ENDPOINT_UNIX };

struct endpoint {
	enum endpoint_kind kind;
	char host[ENDPOINT_HOST_MAX + 1];                      /* INET: a name or an address (no brackets) */
	unsigned port;                                         /* INET: 1..65535 */
	char path[ENDPOINT_PATH_MAX + 1];                      /* UNIX: an absolute path */
	char text[ENDPOINT_HOST_MAX + ENDPOINT_PATH_MAX + 16]; /* the endpoint as written, for logs */
};

/* Parses one endpoint from the len bytes at spec (surrounding blanks ignored). Returns 0, or -1 with the reason in
 * why (size bytes). */
int endpoint_parse(const char *spec, size_t len, struct endpoint *ep_r, char *why, size_t size);
/* Parses a comma-separated list into v (room for max); "" and blanks-only give 0 endpoints. Returns 0 with the count
 * in *n_r, or -1 with the reason in why (a bad endpoint, more than max, an empty item). */
int endpoint_list_parse(const char *list, struct endpoint *v, size_t max, size_t *n_r, char *why, size_t size);

#endif
