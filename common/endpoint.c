/* endpoint.c - parsing "inet:HOST:PORT" and "unix:/PATH" endpoints and lists of them (mail filters' addresses). */
#include "common/endpoint.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

int endpoint_parse(const char *spec, size_t len, struct endpoint *ep_r, char *why, size_t size)
{
	while (len > 0 && blank(spec[0])) {
		spec++;
		len--;
	}
	while (len > 0 && blank(spec[len - 1]))
		len--;
	memset(ep_r, 0, sizeof(*ep_r));
	if (len >= sizeof(ep_r->text)) {
		snprintf(why, size, "an endpoint of %zu characters is too long", len);
		return -1;
	}
	memcpy(ep_r->text, spec, len);
	const char *t = ep_r->text;
	if (strncmp(t, "unix:", 5) == 0) {
		const char *p = t + 5;
		if (p[0] != '/' || strlen(p) > ENDPOINT_PATH_MAX) {
			snprintf(why, size, "%s: unix: takes an absolute path of at most %d characters", t,
				 ENDPOINT_PATH_MAX);
			return -1;
		}
		ep_r->kind = ENDPOINT_UNIX;
		snprintf(ep_r->path, sizeof(ep_r->path), "%s", p);
		return 0;
	}
	if (strncmp(t, "inet:", 5) != 0) {
		snprintf(why, size, "\"%s\" is neither inet:HOST:PORT nor unix:/PATH", t);
		return -1;
	}
	const char *h = t + 5, *colon;
	size_t hlen;
	if (h[0] == '[') {
		const char *close = strchr(h, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(why, size, "%s: an IPv6 address is written inet:[ADDRESS]:PORT", t);
			return -1;
		}
		h++;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL) {
			snprintf(why, size, "%s: inet: takes HOST:PORT", t);
			return -1;
		}
		hlen = (size_t)(colon - h);
		if (memchr(h, ':', hlen) != NULL) {
			snprintf(why, size, "%s: an IPv6 address is written inet:[ADDRESS]:PORT", t);
			return -1;
		}
	}
	unsigned long long port;
	if (hlen == 0 || hlen > ENDPOINT_HOST_MAX || parse_uint(colon + 1, 65535, &port) < 0 || port == 0) {
		snprintf(why, size, "%s: inet: takes a host and a port from 1 to 65535", t);
		return -1;
	}
	for (size_t i = 0; i < hlen; i++) {
		if ((unsigned char)h[i] <= ' ' || h[i] == ',' || h[i] == '/' || h[i] == 0x7f) {
			snprintf(why, size, "%s: the host is not a name or an address", t);
			return -1;
		}
	}
	ep_r->kind = ENDPOINT_INET;
	memcpy(ep_r->host, h, hlen);
	ep_r->port = (unsigned)port;
	return 0;
}

int endpoint_list_parse(const char *list, struct endpoint *v, size_t max, size_t *n_r, char *why, size_t size)
{
	size_t n = 0;
	const char *p = list;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0') {
		*n_r = 0;
		return 0;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n >= max) {
			snprintf(why, size, "at most %zu endpoints", max);
			return -1;
		}
		size_t k = 0;
		while (k < len && blank(p[k]))
			k++;
		if (k == len) {
			snprintf(why, size, "an empty endpoint in the list");
			return -1;
		}
		if (endpoint_parse(p, len, &v[n], why, size) < 0)
			return -1;
		n++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*n_r = n;
	return 0;
}
