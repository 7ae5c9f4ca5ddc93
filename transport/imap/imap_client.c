/* imap_client.c - a small blocking IMAP client: TCP, TLS through transport/net/tls, whole responses with their
 * literals, tagged commands. Used by user move and import imap. */
#include "transport/imap/imap_client.h"
#include "common/err.h"
#include "common/util.h"
#include "transport/net/tcp.h"
#include "transport/net/tls.h"
#include "transport/net/tls_peers.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define IMC_LINE_MAX 65536
/* What one response may hold beside its largest literal (its lines, smaller literals): a server that keeps one
 * response going with literal after literal is cut off instead of filling memory. */
#define IMC_RESPONSE_SLACK (4 * IMC_LINE_MAX)

static int imc_write(struct imc *c, const char *p, size_t len)
{
	c->bytes_out += len;
	while (len > 0) {
		ssize_t n = c->ssl != NULL ? SSL_write(c->ssl, p, (int)(len > (1u << 30) ? (1u << 30) : len))
					   : send(c->fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return IX_EUNAVAIL;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more input; IX_EUNAVAIL on EOF, error or timeout. */
static int imc_fill(struct imc *c)
{
	char tmp[65536];
	ssize_t n = c->ssl != NULL ? SSL_read(c->ssl, tmp, sizeof(tmp)) : recv(c->fd, tmp, sizeof(tmp), 0);
	if (n <= 0)
		return IX_EUNAVAIL;
	c->bytes_in += (uint64_t)n;
	buf_append(&c->in, tmp, (size_t)n);
	return 0;
}

/* One whole response into raw (its literals inline, its final CRLF included); text and lit as struct imc_resp
 * says. IX_EINVAL for a line or literal past the limits, IX_EUNAVAIL when the connection is lost. */
static int imc_response(struct imc *c, struct buf *raw, struct buf *text, struct buf *lit)
{
	buf_reset(raw);
	buf_reset(text);
	buf_reset(lit);
	size_t lit_max = c->literal_max != 0 ? c->literal_max : IMC_LINE_MAX;
	size_t scan = 0; /* where the current line starts in c->in */
	bool in_text = true;
	for (;;) {
		char *eol = c->in.len > scan ? memmem(c->in.data + scan, c->in.len - scan, "\r\n", 2) : NULL;
		if (eol == NULL) {
			if (c->in.len - scan > IMC_LINE_MAX || c->in.len > lit_max + IMC_RESPONSE_SLACK)
				return IX_EINVAL;
			int ret = imc_fill(c);
			if (ret != 0)
				return ret;
			continue;
		}
		const char *line = c->in.data + scan;
		size_t len = (size_t)(eol - line);
		const char *brace = len > 0 && line[len - 1] == '}' ? memrchr(line, '{', len) : NULL;
		if (in_text)
			buf_append(text, line, brace != NULL ? (size_t)(brace - line) : len);
		if (brace == NULL) {
			scan += len + 2;
			break;
		}
		char *end;
		unsigned long long n = strtoull(brace + 1, &end, 10);
		if (end == brace + 1 || n > lit_max || scan + len + 2 + n > lit_max + IMC_RESPONSE_SLACK)
			return IX_EINVAL;
		while (c->in.len < scan + len + 2 + n) {
			int ret = imc_fill(c);
			if (ret != 0)
				return ret;
			line = c->in.data + scan;
		}
		if (in_text)
			buf_append(lit, line + len + 2, (size_t)n);
		in_text = false;
		scan += len + 2 + (size_t)n;
	}
	buf_append(raw, c->in.data, scan);
	buf_consume(&c->in, scan);
	return 0;
}

void imc_add_lit(struct buf *cmd, const char *data, size_t len)
{
	buf_printf(cmd, "{%zu+}\r\n", len);
	buf_append(cmd, data, len);
}

void imc_add_string(struct buf *cmd, const char *s, size_t len)
{
	bool plain = len < 1000;
	for (size_t i = 0; i < len && plain; i++)
		plain = s[i] >= 0x20 && s[i] < 0x7f;
	if (!plain) {
		imc_add_lit(cmd, s, len);
		return;
	}
	buf_append_quoted(cmd, s, len);
}

int imc_cmd_cont(struct imc *c, struct buf *cmd, const char *cont, imc_untagged_fn *fn, void *ctx, struct buf *error_r)
{
	char tag[16];
	snprintf(tag, sizeof(tag), "m%u", ++c->tag);
	size_t tlen = strlen(tag);
	struct buf all = BUF_INIT;
	buf_printf(&all, "%s ", tag);
	buf_append(&all, cmd->data, cmd->len);
	buf_append_str(&all, "\r\n");
	int ret = imc_write(c, all.data, all.len);
	buf_free(&all);
	struct buf raw = BUF_INIT, text = BUF_INIT, lit = BUF_INIT;
	while (ret == 0) {
		ret = imc_response(c, &raw, &text, &lit);
		if (ret != 0)
			break;
		const char *l = buf_cstr(&text);
		if (strncmp(l, tag, tlen) == 0 && l[tlen] == ' ') {
			l += tlen + 1;
			if (strncmp(l, "OK", 2) != 0) {
				buf_printf(error_r, "%s", l);
				ret = IX_EINVAL;
			}
			break;
		}
		if (l[0] == '+') {
			ret = imc_write(c, cont != NULL ? cont : "*", strlen(cont != NULL ? cont : "*"));
			if (ret == 0)
				ret = imc_write(c, "\r\n", 2);
			cont = NULL;
			continue;
		}
		if (strncmp(l, "* ", 2) == 0 && fn != NULL) {
			struct imc_resp r = { l + 2, &lit, raw.data + 2, raw.len - 2 };
			fn(ctx, &r);
		}
	}
	if (ret == IX_EUNAVAIL)
		buf_printf(error_r, "the connection to the IMAP server was lost");
	else if (ret == IX_EINVAL && error_r->len == 0)
		buf_printf(error_r, "the IMAP server sent a response past our limits");
	buf_free(&raw);
	buf_free(&text);
	buf_free(&lit);
	buf_reset(cmd);
	return ret;
}

int imc_cmd(struct imc *c, struct buf *cmd, imc_untagged_fn *fn, void *ctx, struct buf *error_r)
{
	return imc_cmd_cont(c, cmd, NULL, fn, ctx, error_r);
}

int imc_connect_tcp(struct imc *c, const char *host, unsigned port, unsigned timeout_ms, struct buf *error_r)
{
	size_t lit_max = c->literal_max;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->literal_max = lit_max;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char ps[16];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &res) != 0) {
		buf_printf(error_r, "cannot resolve %s", host);
		return IX_EUNAVAIL;
	}
	for (struct addrinfo *a = res; a != NULL && c->fd < 0; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype, 0);
		if (fd < 0)
			continue;
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			c->fd = fd;
			tcp_nodelay(fd); /* imc_cmd writes each command whole */
			c->loopback = (a->ai_family == AF_INET &&
				       (ntohl(((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr) >> 24) == 127) ||
				      (a->ai_family == AF_INET6 &&
				       IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr));
		} else {
			close(fd);
		}
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		buf_printf(error_r, "cannot connect to the IMAP service of %s port %u", host, port);
		return IX_EUNAVAIL;
	}
	return 0;
}

int imc_greeting(struct imc *c, struct buf *greeting_r, struct buf *error_r)
{
	struct buf raw = BUF_INIT, text = BUF_INIT, lit = BUF_INIT;
	int ret = imc_response(c, &raw, &text, &lit);
	if (ret == 0 && strncmp(buf_cstr(&text), "* OK", 4) != 0) {
		buf_printf(error_r, "the IMAP server greets with: %s", buf_cstr(&text));
		ret = IX_EUNAVAIL;
	} else if (ret != 0) {
		buf_printf(error_r, "the IMAP server sent no greeting");
		ret = IX_EUNAVAIL;
	} else if (greeting_r != NULL) {
		buf_append(greeting_r, text.data + 2, text.len - 2);
	}
	buf_free(&raw);
	buf_free(&text);
	buf_free(&lit);
	return ret;
}

int imc_tls(struct imc *c, struct tls_ctx *ctx, const char *host, struct buf *error_r)
{
	c->ssl = tls_ssl_new(ctx, host);
	if (SSL_set_fd(c->ssl, c->fd) == 1 && SSL_connect(c->ssl) == 1)
		return 0;
	long v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK)
		buf_printf(error_r, "the certificate of %s was refused (%s)", host, X509_verify_cert_error_string(v));
	else
		buf_printf(error_r, "TLS with %s failed: ", host);
	tls_append_errors(v != X509_V_OK ? NULL : error_r);
	return IX_EUNAVAIL;
}

void imc_close(struct imc *c)
{
	if (c->fd >= 0) {
		struct buf cmd = BUF_INIT, err = BUF_INIT;
		buf_append_str(&cmd, "LOGOUT");
		imc_cmd(c, &cmd, NULL, NULL, &err);
		buf_free(&cmd);
		buf_free(&err);
	}
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	tls_peers_destroy(&c->peers);
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->in);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}
