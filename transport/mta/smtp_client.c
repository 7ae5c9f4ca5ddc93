/* smtp_client.c - outbound SMTP over blocking sockets with timeouts (see smtp_client.h). */
#include "transport/mta/smtp_client.h"
#include "transport/mta/dsn.h"
#include "common/err.h"
#include "transport/net/tcp.h"
#include "transport/smtp/smtp_parse.h"
#include "common/util.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

struct smtp_client {
	int fd;
	SSL *ssl;
	char peer[300];
	char *helo;
	struct buf in;  /* unread input */
	struct buf ext; /* EHLO reply keywords, one per line, upper case */
	bool esmtp;
	bool broken;
	unsigned timeout_ms;
	const char *tls_outcome; /* smtp_client_tls_outcome */
};

static void set_timeout(int fd, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int send_all(struct smtp_client *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n;
		if (c->ssl != NULL) {
			int k = SSL_write(c->ssl, data, len > (1u << 30) ? (1 << 30) : (int)len);
			n = k > 0 ? k : -1;
		} else {
			n = send(c->fd, data, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0) {
			c->broken = true;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more of a reply. partial: part of the reply is in already; our ACK for it goes out now, since a server
 * under Nagle holds the rest of a reply it writes in pieces until that ACK comes. */
static int fill(struct smtp_client *c, bool partial)
{
	char tmp[16384];
	ssize_t n;
	if (partial)
		tcp_quickack(c->fd);
	for (;;) {
		if (c->ssl != NULL) {
			int k = SSL_read(c->ssl, tmp, sizeof(tmp));
			n = k > 0 ? k : -1;
		} else {
			n = recv(c->fd, tmp, sizeof(tmp), 0);
			if (n < 0 && errno == EINTR)
				continue;
		}
		break;
	}
	if (n <= 0) {
		c->broken = true;
		return -1;
	}
	buf_append(&c->in, tmp, (size_t)n);
	return 0;
}

/* Reads one (possibly multi-line) reply: returns its code (100..599) and the text (lines joined with a space
 * after the code of the first) in text, or -1 when the connection broke or the reply is malformed. */
static int read_reply(struct smtp_client *c, struct buf *text)
{
	buf_reset(text);
	int code = -1;
	for (;;) {
		const char *nl;
		while ((nl = memchr(c->in.data != NULL ? c->in.data : "", '\n', c->in.len)) == NULL) {
			if (c->in.len > SMTP_CLIENT_LINE_MAX || fill(c, c->in.len > 0 || text->len > 0) < 0) {
				c->broken = true;
				return -1;
			}
		}
		size_t n = (size_t)(nl - c->in.data);
		size_t l = n > 0 && c->in.data[n - 1] == '\r' ? n - 1 : n;
		const char *line = c->in.data;
		if (l < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (l > 3 && line[3] != ' ' && line[3] != '-')) {
			c->broken = true;
			return -1;
		}
		int lc = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (code >= 0 && lc != code) {
			c->broken = true;
			return -1;
		}
		code = lc;
		bool last = l == 3 || line[3] == ' ';
		if (text->len == 0)
			buf_append(text, line, l);
		else if (text->len < SMTP_CLIENT_REPLY_MAX && l > 4) {
			buf_append_char(text, ' ');
			buf_append(text, line + 4, l - 4);
		}
		buf_consume(&c->in, n + 1);
		if (last)
			break;
	}
	for (size_t i = 0; i < text->len; i++) {
		if ((unsigned char)text->data[i] < 32)
			text->data[i] = ' ';
	}
	return code;
}

/* Sends line and its CRLF in one write (with TCP_NODELAY two writes would be two segments). */
static int send_line(struct smtp_client *c, const char *line)
{
	char *l = xasprintf("%s\r\n", line);
	int ret = send_all(c, l, strlen(l));
	free(l);
	return ret;
}

static int command(struct smtp_client *c, const char *line, struct buf *reply)
{
	if (send_line(c, line) < 0)
		return -1;
	return read_reply(c, reply);
}

static int ehlo(struct smtp_client *c, struct buf *reply)
{
	char *cmd = xasprintf("EHLO %s", c->helo);
	int sent = send_line(c, cmd);
	free(cmd);
	if (sent < 0)
		return -1;
	/* read the EHLO reply line by line to keep the keywords */
	buf_reset(&c->ext);
	buf_reset(reply);
	int code = -1;
	for (;;) {
		const char *nl;
		while ((nl = memchr(c->in.data != NULL ? c->in.data : "", '\n', c->in.len)) == NULL) {
			if (c->in.len > SMTP_CLIENT_LINE_MAX || fill(c, c->in.len > 0 || reply->len > 0) < 0)
				return -1;
		}
		size_t n = (size_t)(nl - c->in.data);
		size_t l = n > 0 && c->in.data[n - 1] == '\r' ? n - 1 : n;
		const char *line = c->in.data;
		if (l < 3 || (l > 3 && line[3] != ' ' && line[3] != '-'))
			return -1;
		code = atoi(line);
		bool last = l == 3 || line[3] == ' ';
		if (reply->len == 0)
			buf_append(reply, line, l);
		else if (l > 4 && c->ext.len < SMTP_CLIENT_REPLY_MAX) {
			for (size_t i = 4; i < l; i++)
				buf_append_char(&c->ext,
						line[i] >= 'a' && line[i] <= 'z' ? (char)(line[i] - 32) : line[i]);
			buf_append_char(&c->ext, '\n');
		}
		buf_consume(&c->in, n + 1);
		if (last)
			break;
	}
	return code;
}

bool smtp_client_has(const struct smtp_client *c, const char *keyword)
{
	size_t kl = strlen(keyword);
	const char *p = buf_cstr(&c->ext);
	while (*p != '\0') {
		const char *e = strchr(p, '\n');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
		if (l >= kl && strncasecmp(p, keyword, kl) == 0 && (l == kl || p[kl] == ' ' || p[kl] == '='))
			return true;
		p += l + (e != NULL);
	}
	return false;
}

bool smtp_client_alive(const struct smtp_client *c)
{
	/* an idle connection has nothing to read: EOF, an error or an unasked reply (421 at a shutdown) end it */
	struct pollfd p = { c->fd, POLLIN, 0 };
	return c->fd >= 0 && poll(&p, 1, 0) == 0;
}

bool smtp_client_is_tls(const struct smtp_client *c)
{
	return c->ssl != NULL;
}

const char *smtp_client_peer(const struct smtp_client *c)
{
	return c->peer;
}

/* Connects to host: to the addresses addrs[0..naddrs) in order when given (numeric), else to those the system
 * resolves host to. */
static int connect_host(const char *host, const char *const *addrs, size_t naddrs, unsigned port, unsigned timeout_ms,
			char *peer, size_t peer_size, struct buf *error_r)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (addrs != NULL) { /* one list of every address, in the caller's order */
		struct addrinfo **tail = &res;
		hints.ai_flags = AI_NUMERICHOST;
		for (size_t i = 0; i < naddrs; i++) {
			struct addrinfo *one = NULL;
			if (getaddrinfo(addrs[i], portstr, &hints, &one) != 0)
				continue;
			*tail = one;
			while (*tail != NULL)
				tail = &(*tail)->ai_next;
		}
		if (res == NULL) {
			buf_printf(error_r, "%s has no address", host);
			return -1;
		}
	} else {
		int rc = getaddrinfo(host, portstr, &hints, &res);
		if (rc != 0) {
			buf_printf(error_r, "cannot resolve %s: %s", host, gai_strerror(rc));
			return -1;
		}
	}
	int fd = -1;
	for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		char ip[INET6_ADDRSTRLEN] = "?";
		if (a->ai_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof(ip));
		else if (a->ai_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, ip, sizeof(ip));
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			buf_reset(error_r);
			buf_printf(error_r, "connect to %s[%s]:%u: %s", host, ip, port, strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd p = { fd, POLLOUT, 0 };
		int err = 0;
		socklen_t el = sizeof(err);
		if (poll(&p, 1, (int)timeout_ms) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
		    err != 0) {
			buf_reset(error_r);
			buf_printf(error_r, "connect to %s[%s]:%u: %s", host, ip, port,
				   err != 0 ? strerror(err) : "timed out");
			close(fd);
			fd = -1;
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		snprintf(peer, peer_size, "%s[%s]:%u", host, ip, port);
	}
	freeaddrinfo(res);
	return fd;
}

int smtp_client_dane_enable(struct tls_ctx *ctx, struct buf *error_r)
{
	if (SSL_CTX_dane_enable(tls_ctx_ssl(ctx)) <= 0) {
		buf_append_str(error_r, "DANE: ");
		tls_append_errors(error_r);
		return IX_EIO;
	}
	return IX_OK;
}

const char *smtp_client_tls_outcome(const struct smtp_client *c)
{
	return c->tls_outcome;
}

/* Prepares ssl to check the peer against the policy's TLSA records (reference name host). Returns the number of
 * usable records (0: TLS without authentication) or -1 with error_r. */
static int dane_prepare(SSL *ssl, const char *host, const struct smtp_tls_policy *p, struct buf *error_r)
{
	if (SSL_dane_enable(ssl, host) <= 0) {
		buf_append_str(error_r, "DANE: ");
		tls_append_errors(error_r);
		return -1;
	}
	/* DANE-EE: the key is the identity, the names in the certificate do not matter (RFC 7672 3.1.1) */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	int usable = 0;
	for (size_t i = 0; i < p->ntlsa; i++) {
		const unsigned char *r = p->tlsa[i];
		if (p->tlsa_len[i] < 4 || (r[0] != 2 && r[0] != 3))
			continue;
		if (SSL_dane_tlsa_add(ssl, r[0], r[1], r[2], r + 3, p->tlsa_len[i] - 3) > 0)
			usable++;
	}
	ERR_clear_error(); /* an unusable record's complaint */
	if (usable > 0)
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return usable;
}

int smtp_client_open(const char *host, unsigned port, const char *helo, struct tls_ctx *tls, unsigned timeout_ms,
		     struct smtp_client **c_r, struct buf *error_r)
{
	return smtp_client_open_policy(host, port, helo, tls, NULL, timeout_ms, c_r, error_r);
}

/* Tells the caller of policy the result-type of a failed TLS negotiation. */
static void tls_failed(const struct smtp_tls_policy *policy, const char *type)
{
	if (policy->result_r != NULL)
		*policy->result_r = type;
}

int smtp_client_open_policy(const char *host, unsigned port, const char *helo, struct tls_ctx *tls,
			    const struct smtp_tls_policy *policy, unsigned timeout_ms, struct smtp_client **c_r,
			    struct buf *error_r)
{
	static const struct smtp_tls_policy opportunistic = { SMTP_TLS_OPPORTUNISTIC, NULL, NULL, 0, NULL, 0, NULL };
	if (policy == NULL)
		policy = &opportunistic;
	bool dane = policy->mode == SMTP_TLS_DANE, sts = policy->mode == SMTP_TLS_VERIFY;
	*c_r = NULL;
	if (timeout_ms == 0)
		timeout_ms = SMTP_CLIENT_COMMAND_MS;
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	c->timeout_ms = timeout_ms;
	c->helo = xstrdup(helo);
	buf_init(&c->in);
	buf_init(&c->ext);
	c->tls_outcome = "no TLS";
	struct buf reply = BUF_INIT;
	int ret = IX_EUNAVAIL;
	c->fd = connect_host(host, policy->addrs, policy->naddrs, port,
			     timeout_ms < SMTP_CLIENT_CONNECT_MS ? timeout_ms : SMTP_CLIENT_CONNECT_MS, c->peer,
			     sizeof(c->peer), error_r);
	if (c->fd < 0)
		goto fail;
	tcp_nodelay(c->fd); /* every command, batch of pipelined commands and message goes in one send */
	set_timeout(c->fd, timeout_ms);
	int code = read_reply(c, &reply);
	if (code != 220) {
		if (code >= 500)
			ret = IX_EINVAL;
		buf_printf(error_r, "%s greeted with: %s", c->peer, code < 0 ? "nothing" : buf_cstr(&reply));
		goto fail;
	}
	code = ehlo(c, &reply);
	if (code == 250) {
		c->esmtp = true;
	} else if (code > 0) {
		char *cmd = xasprintf("HELO %s", helo);
		code = command(c, cmd, &reply);
		free(cmd);
	}
	if (code != 250) {
		if (code >= 500)
			ret = IX_EINVAL;
		buf_printf(error_r, "%s refused EHLO/HELO: %s", c->peer,
			   code < 0 ? "connection lost" : buf_cstr(&reply));
		goto fail;
	}
	const char *requirer = dane ? "its DANE TLSA records" : "the MTA-STS policy of its domain";
	if ((dane || sts) && (tls == NULL || !c->esmtp || !smtp_client_has(c, "STARTTLS"))) {
		buf_printf(error_r, "%s offers no STARTTLS, which %s require", c->peer, requirer);
		tls_failed(policy, "starttls-not-supported");
		goto fail;
	}
	if (tls != NULL && c->esmtp && smtp_client_has(c, "STARTTLS")) {
		code = command(c, "STARTTLS", &reply);
		if (code == 220) {
			buf_reset(&c->in);               /* nothing may be buffered across the handshake */
			c->ssl = tls_ssl_new(tls, host); /* a verifying context checks the name or address */
			int usable = dane ? dane_prepare(c->ssl, host, policy, error_r) : 0;
			if (usable < 0)
				goto fail;
			SSL_set_fd(c->ssl, c->fd);
			if (SSL_connect(c->ssl) != 1) {
				long v = SSL_get_verify_result(c->ssl);
				if (usable > 0 && v != X509_V_OK) {
					buf_printf(
						error_r,
						"%s: DANE: the certificate matches none of the TLSA records of %s (%s)",
						c->peer, host, X509_verify_cert_error_string(v));
					ERR_clear_error(); /* OpenSSL's "certificate verify failed" says no more */
					tls_failed(policy, "tlsa-invalid");
				} else if (sts && v != X509_V_OK) {
					buf_printf(error_r, "%s: MTA-STS: the certificate is not valid for %s (%s)",
						   c->peer, host, X509_verify_cert_error_string(v));
					ERR_clear_error();
					tls_failed(policy,
						   v == X509_V_ERR_HOSTNAME_MISMATCH  ? "certificate-host-mismatch"
						   : v == X509_V_ERR_CERT_HAS_EXPIRED ? "certificate-expired"
										      : "certificate-not-trusted");
				} else {
					buf_printf(error_r, "%s: TLS handshake failed: ", c->peer);
					tls_append_errors(error_r);
					tls_failed(policy, "validation-failure");
				}
				goto fail;
			}
			uint8_t usage = 0;
			bool verifying = (SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER) != 0;
			c->tls_outcome = sts     ? "TLS MTA-STS, verified"
					 : !dane ? (verifying ? "TLS, verified" : "TLS opportunistic, not verified")
					 : usable == 0 ? "TLS DANE, no usable TLSA record, not verified"
					 : SSL_get0_dane_tlsa(c->ssl, &usage, NULL, NULL, NULL, NULL) >= 0 && usage == 2
						 ? "TLS DANE, verified (DANE-TA)"
						 : "TLS DANE, verified (DANE-EE)";
			code = ehlo(c, &reply);
			if (code != 250) {
				buf_printf(error_r, "%s refused EHLO after STARTTLS: %s", c->peer, buf_cstr(&reply));
				goto fail;
			}
		} else if (code < 0) {
			buf_printf(error_r, "%s: connection lost at STARTTLS", c->peer);
			goto fail;
		} else if (dane || sts) {
			buf_printf(error_r, "%s refused STARTTLS, which %s require: %s", c->peer, requirer,
				   buf_cstr(&reply));
			tls_failed(policy, "starttls-not-supported");
			goto fail;
		}
	}
	buf_free(&reply);
	*c_r = c;
	return 0;
fail:
	buf_free(&reply);
	smtp_client_close(&c);
	return ret;
}

void smtp_client_close(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;
	if (c == NULL)
		return;
	if (c->fd >= 0 && !c->broken) {
		struct buf reply = BUF_INIT;
		set_timeout(c->fd, 2000);
		(void)command(c, "QUIT", &reply);
		buf_free(&reply);
	}
	if (c->ssl != NULL) {
		if (!c->broken)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->ext);
	free(c->helo);
	free(c);
	*cp = NULL;
}

/* Appends s as xtext (RFC 3461 4). */
static void xtext(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 33 || ch > 126 || ch == '+' || ch == '=')
			buf_printf(b, "+%02X", ch);
		else
			buf_append_char(b, (char)ch);
	}
}

static bool ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 128)
			return false;
	}
	return true;
}

unsigned smtp_client_utf8_need(const char *sender, const char *const *rcpts, size_t n, const char *data, size_t len)
{
	unsigned need = ascii(sender, strlen(sender)) ? 0 : SMTP_UTF8_ENVELOPE;
	for (size_t i = 0; i < n && need == 0; i++)
		need = ascii(rcpts[i], strlen(rcpts[i])) ? 0 : SMTP_UTF8_ENVELOPE;
	if (!ascii(data, dsn_header_length(data, len)))
		need |= SMTP_UTF8_HEADER;
	return need;
}

int smtp_client_send(struct smtp_client *c, struct smtp_client_msg *m, struct buf *error_r)
{
	for (size_t i = 0; i < m->nrcpts; i++) {
		m->codes[i] = 421;
		m->replies[i] = NULL;
	}
	if (m->utf8 != 0 && !smtp_client_has(c, "SMTPUTF8")) {
		/* RFC 6531 3.2: not sent to a server that cannot take it; the sender hears why */
		for (size_t i = 0; i < m->nrcpts; i++) {
			m->codes[i] = 553;
			m->replies[i] = xasprintf(
				"553 5.6.7 %s does not offer SMTPUTF8, which this message needs (%s)", c->peer,
				(m->utf8 & SMTP_UTF8_ENVELOPE) ? "an address in its envelope is not ASCII"
							       : "its header has UTF-8 text");
		}
		return 0;
	}
	bool pipelining = smtp_client_has(c, "PIPELINING"), dsn = smtp_client_has(c, "DSN");
	struct buf out = BUF_INIT, reply = BUF_INIT;
	buf_printf(&out, "MAIL FROM:<%s>", m->sender);
	if (m->utf8 != 0)
		buf_append_str(&out, " SMTPUTF8");
	if (smtp_client_has(c, "SIZE"))
		buf_printf(&out, " SIZE=%zu", m->len);
	if (m->eightbit && smtp_client_has(c, "8BITMIME"))
		buf_append_str(&out, " BODY=8BITMIME");
	if (dsn && m->envid != NULL && *m->envid != '\0') {
		buf_append_str(&out, " ENVID=");
		xtext(&out, m->envid);
	}
	buf_append_str(&out, "\r\n");
	size_t cmds = 1;
	int ret = 0, mail_code = -1, data_code = -1;
	size_t accepted = 0;
	if (!pipelining) {
		if (send_all(c, out.data, out.len) < 0)
			goto broken;
		buf_reset(&out);
		mail_code = read_reply(c, &reply);
		if (mail_code < 0)
			goto broken;
		if (mail_code != 250)
			goto mail_refused;
	}
	for (size_t i = 0; i < m->nrcpts; i++) {
		buf_printf(&out, "RCPT TO:<%s>", m->rcpts[i]);
		if (dsn && m->notify != NULL && m->notify[i] != 0) {
			unsigned n = m->notify[i];
			if (n & SMTP_NOTIFY_NEVER)
				buf_append_str(&out, " NOTIFY=NEVER");
			else
				buf_printf(&out, " NOTIFY=%s%s%s%s%s", (n & SMTP_NOTIFY_SUCCESS) ? "SUCCESS" : "",
					   (n & SMTP_NOTIFY_SUCCESS) && (n & (SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY))
						   ? ","
						   : "",
					   (n & SMTP_NOTIFY_FAILURE) ? "FAILURE" : "",
					   (n & SMTP_NOTIFY_FAILURE) && (n & SMTP_NOTIFY_DELAY) ? "," : "",
					   (n & SMTP_NOTIFY_DELAY) ? "DELAY" : "");
		}
		buf_append_str(&out, "\r\n");
		cmds++;
		if (!pipelining) {
			if (send_all(c, out.data, out.len) < 0)
				goto broken;
			buf_reset(&out);
			int code = read_reply(c, &reply);
			if (code < 0)
				goto broken;
			m->codes[i] = code;
			m->replies[i] = xstrdup(buf_cstr(&reply));
			accepted += code == 250 || code == 251;
		}
	}
	if (pipelining) {
		buf_append_str(&out, "DATA\r\n");
		if (send_all(c, out.data, out.len) < 0)
			goto broken;
		mail_code = read_reply(c, &reply);
		if (mail_code < 0)
			goto broken;
		char *mail_reply = xstrdup(buf_cstr(&reply));
		for (size_t i = 0; i < m->nrcpts; i++) {
			int code = read_reply(c, &reply);
			if (code < 0) {
				free(mail_reply);
				goto broken;
			}
			m->codes[i] = mail_code == 250 ? code : mail_code;
			m->replies[i] = xstrdup(mail_code == 250 ? buf_cstr(&reply) : mail_reply);
			accepted += mail_code == 250 && (code == 250 || code == 251);
		}
		free(mail_reply);
		data_code = read_reply(c, &reply);
		if (data_code < 0)
			goto broken;
	} else if (accepted > 0) {
		data_code = command(c, "DATA", &reply);
		if (data_code < 0)
			goto broken;
	}
	if (accepted == 0 || data_code != 354) {
		if (accepted > 0) {
			for (size_t i = 0; i < m->nrcpts; i++) {
				if (m->codes[i] == 250 || m->codes[i] == 251) {
					m->codes[i] = data_code;
					free(m->replies[i]);
					m->replies[i] = xstrdup(buf_cstr(&reply));
				}
			}
		}
		if (data_code == 354) { /* no recipient but the server wants data: end it empty */
			if (send_all(c, ".\r\n", 3) < 0 || read_reply(c, &reply) < 0)
				goto broken;
		}
		if (command(c, "RSET", &reply) < 0)
			goto broken;
		goto out;
	}
	/* the message, dot-stuffed, in one buffer */
	buf_reset(&out);
	buf_reserve(&out, m->len + m->len / 64 + 8);
	bool bol = true;
	for (size_t i = 0; i < m->len; i++) {
		if (bol && m->data[i] == '.')
			buf_append_char(&out, '.');
		buf_append_char(&out, m->data[i]);
		bol = m->data[i] == '\n';
	}
	if (!bol)
		buf_append_str(&out, "\r\n");
	buf_append_str(&out, ".\r\n");
	set_timeout(c->fd, SMTP_CLIENT_DATA_MS);
	if (send_all(c, out.data, out.len) < 0)
		goto broken;
	int end_code = read_reply(c, &reply);
	set_timeout(c->fd, c->timeout_ms);
	if (end_code < 0)
		goto broken;
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (m->codes[i] == 250 || m->codes[i] == 251) {
			m->codes[i] = end_code;
			free(m->replies[i]);
			m->replies[i] = xstrdup(buf_cstr(&reply));
		}
	}
	goto out;
mail_refused:
	for (size_t i = 0; i < m->nrcpts; i++) {
		m->codes[i] = mail_code;
		m->replies[i] = xstrdup(buf_cstr(&reply));
	}
	if (command(c, "RSET", &reply) < 0)
		c->broken = true;
	goto out;
broken:
	c->broken = true;
	ret = IX_EUNAVAIL;
	buf_printf(error_r, "%s: connection lost during the transaction", c->peer);
	for (size_t i = 0; i < m->nrcpts; i++) {
		m->codes[i] = 421;
		free(m->replies[i]);
		m->replies[i] = xasprintf("421 4.4.2 %s: connection lost", c->peer);
	}
out:
	(void)cmds;
	buf_free(&out);
	buf_free(&reply);
	return ret;
}
