/* sasl_client.c - Cyrus SASL's client side (libsasl2's own mechanisms, not ours) signing in over IMAP, POP3 or SMTP
 * submission, with STARTTLS and channel binding (tls-exporter or tls-server-end-point) for the -PLUS mechanisms:
 * what tests/e2e/test_scram.py and the SCRAM benchmark drive, since imtest binds no channel under TLS 1.3.
 *
 * usage: sasl_client --proto imap|pop3|smtp -p PORT -u USER -w PASS [--mech M] [--starttls]
 *                    [--cb tls-exporter|tls-server-end-point [--wrong-cb]] [--count N] HOST
 * --wrong-cb spoils the binding data. Prints "OK MECH" per sign-in (and with --count the rate), or "FAILED: ..." and exits 1. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>

enum proto { P_IMAP, P_POP3, P_SMTP };

struct opts {
	enum proto proto;
	const char *host, *port, *user, *pass, *mech, *cb;
	bool starttls, wrong_cb;
	long count;
};

struct link {
	int fd;
	SSL *ssl;
	char in[16384];
	size_t have;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAILED: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	exit(1);
}

static void send_line(struct link *l, const char *s)
{
	char buf[16400];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", s);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die("line too long");
	if (getenv("SASL_CLIENT_TRACE") != NULL)
		fprintf(stderr, "C: %s\n", s);
	int w = l->ssl != NULL ? SSL_write(l->ssl, buf, n) : (int)write(l->fd, buf, (size_t)n);
	if (w != n)
		die("cannot write to the server");
}

/* One line from the server (without CRLF) into out. */
static void read_line(struct link *l, char *out, size_t max)
{
	for (;;) {
		char *nl = memchr(l->in, '\n', l->have);
		if (nl != NULL) {
			size_t len = (size_t)(nl - l->in);
			size_t copy = len > 0 && l->in[len - 1] == '\r' ? len - 1 : len;
			if (copy >= max)
				die("server line too long");
			memcpy(out, l->in, copy);
			out[copy] = '\0';
			memmove(l->in, nl + 1, l->have - len - 1);
			l->have -= len + 1;
			if (getenv("SASL_CLIENT_TRACE") != NULL)
				fprintf(stderr, "S: %s\n", out);
			return;
		}
		if (l->have == sizeof(l->in))
			die("server line too long");
		int n = l->ssl != NULL ? SSL_read(l->ssl, l->in + l->have, (int)(sizeof(l->in) - l->have))
				       : (int)read(l->fd, l->in + l->have, sizeof(l->in) - l->have);
		if (n <= 0)
			die("the server closed the connection");
		l->have += (size_t)n;
	}
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		die("cannot resolve %s", host);
	int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		die("cannot connect to %s", host);
	freeaddrinfo(ai);
	return fd;
}

/* Reads the server's lines until the one that ends a reply: IMAP's tagged line, POP3's one line, SMTP's last. */
static void reply(struct link *l, enum proto p, const char *tag, char *out, size_t max)
{
	for (;;) {
		read_line(l, out, max);
		if (p == P_POP3)
			return;
		if (p == P_SMTP && strlen(out) >= 4 && out[3] == '-')
			continue;
		if (p == P_IMAP && tag != NULL && strncmp(out, tag, strlen(tag)) != 0 && out[0] != '+')
			continue;
		return;
	}
}

static void start_tls(struct link *l, SSL_CTX *ctx, const char *host)
{
	l->ssl = SSL_new(ctx);
	SSL_set_fd(l->ssl, l->fd);
	SSL_set_tlsext_host_name(l->ssl, host);
	l->have = 0;
	if (SSL_connect(l->ssl) != 1)
		die("TLS handshake failed");
}

/* The channel binding data of the TLS connection, as the client computes it. */
static size_t binding(SSL *ssl, const char *name, unsigned char *out)
{
	if (strcmp(name, "tls-exporter") == 0) {
		static const char label[] = "EXPORTER-Channel-Binding";
		if (SSL_export_keying_material(ssl, out, 32, label, sizeof(label) - 1, NULL, 0, 0) != 1)
			die("no tls-exporter on this connection");
		return 32;
	}
	if (strcmp(name, "tls-server-end-point") == 0) {
		X509 *cert = SSL_get1_peer_certificate(ssl);
		int md_nid = NID_undef;
		if (cert == NULL || X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) != 1)
			die("no server certificate");
		const EVP_MD *md = md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef
					   ? EVP_sha256()
					   : EVP_get_digestbynid(md_nid);
		unsigned len = 0;
		X509_digest(cert, md, out, &len);
		X509_free(cert);
		return len;
	}
	die("unknown channel binding %s", name);
}

static struct opts o;

static int cb_simple(void *ctx, int id, const char **result, unsigned *len)
{
	(void)ctx;
	if (id != SASL_CB_AUTHNAME && id != SASL_CB_USER)
		return SASL_BADPARAM;
	*result = id == SASL_CB_USER ? "" : o.user;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

static int cb_pass(sasl_conn_t *conn, void *ctx, int id, sasl_secret_t **psecret)
{
	(void)conn;
	(void)ctx;
	(void)id;
	static sasl_secret_t *secret;
	size_t n = strlen(o.pass);
	free(secret);
	secret = malloc(sizeof(*secret) + n);
	secret->len = n;
	memcpy(secret->data, o.pass, n + 1);
	*psecret = secret;
	return SASL_OK;
}

typedef int (*cb_fn)(void);

/* One sign-in; returns the mechanism Cyrus chose. */
static const char *sign_in(SSL_CTX *tls)
{
	struct link l = { .fd = tcp_connect(o.host, o.port) };
	char line[16384];
	const char *svc = o.proto == P_IMAP ? "imap" : o.proto == P_POP3 ? "pop" : "smtp";
	reply(&l, o.proto, NULL, line, sizeof(line)); /* greeting */
	if (o.proto == P_SMTP) {
		send_line(&l, "EHLO sasl-client");
		reply(&l, o.proto, NULL, line, sizeof(line));
	}
	if (o.starttls) {
		send_line(&l, o.proto == P_IMAP ? "S STARTTLS" : o.proto == P_POP3 ? "STLS" : "STARTTLS");
		reply(&l, o.proto, "S ", line, sizeof(line));
		start_tls(&l, tls, o.host);
		if (o.proto == P_SMTP) {
			send_line(&l, "EHLO sasl-client");
			reply(&l, o.proto, NULL, line, sizeof(line));
		}
	}
	static sasl_callback_t callbacks[] = {
		{ SASL_CB_AUTHNAME, (cb_fn)(void (*)(void))cb_simple, NULL },
		{ SASL_CB_USER, (cb_fn)(void (*)(void))cb_simple, NULL },
		{ SASL_CB_PASS, (cb_fn)(void (*)(void))cb_pass, NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	sasl_conn_t *conn = NULL;
	if (sasl_client_new(svc, o.host, NULL, NULL, callbacks, 0, &conn) != SASL_OK)
		die("sasl_client_new failed");
	sasl_security_properties_t props = { .max_ssf = 0, .maxbufsize = 0 };
	sasl_setprop(conn, SASL_SEC_PROPS, &props);
	unsigned char data[64];
	sasl_channel_binding_t cb = { 0 };
	if (o.cb != NULL) {
		if (l.ssl == NULL)
			die("channel binding needs --starttls");
		cb.name = o.cb;
		cb.critical = 1; /* the -PLUS mechanism or nothing */
		cb.len = (unsigned)binding(l.ssl, o.cb, data);
		if (o.wrong_cb)
			data[0] ^= 0x5a;
		cb.data = data;
		sasl_setprop(conn, SASL_CHANNEL_BINDING, &cb);
	}
	const char *out = NULL, *mech = NULL;
	unsigned outlen = 0;
	int r = sasl_client_start(conn, o.mech, NULL, &out, &outlen, &mech);
	if (r != SASL_OK && r != SASL_CONTINUE)
		die("sasl_client_start: %s", sasl_errdetail(conn));
	/* Cyrus names the mechanism without -PLUS when it binds the channel: its first message says ("p=") */
	char chosen[64];
	snprintf(chosen, sizeof(chosen), "%s%s", mech,
		 out != NULL && outlen > 2 && strncmp(out, "p=", 2) == 0 && strstr(mech, "-PLUS") == NULL ? "-PLUS"
													  : "");
	mech = chosen;
	char enc[16384], cmd[16500];
	unsigned enclen = 0;
	if (out != NULL && outlen > 0)
		sasl_encode64(out, outlen, enc, sizeof(enc), &enclen);
	else
		strcpy(enc, "=");
	snprintf(cmd, sizeof(cmd), "%s %s %s", o.proto == P_IMAP ? "A AUTHENTICATE" : "AUTH", mech, enc);
	send_line(&l, cmd);
	for (;;) {
		reply(&l, o.proto, "A ", line, sizeof(line));
		bool more = o.proto == P_SMTP ? strncmp(line, "334 ", 4) == 0 : strncmp(line, "+ ", 2) == 0;
		bool ok = o.proto == P_IMAP   ? strncmp(line, "A OK", 4) == 0
			  : o.proto == P_POP3 ? strncmp(line, "+OK", 3) == 0
					      : strncmp(line, "235 ", 4) == 0;
		if (ok)
			break;
		if (!more)
			die("the server refused: %s", line);
		const char *chal = line + (o.proto == P_SMTP ? 4 : 2);
		char dec[16384];
		unsigned declen = 0;
		if (sasl_decode64(chal, (unsigned)strlen(chal), dec, sizeof(dec), &declen) != SASL_OK)
			die("bad base64 from the server: %s", chal);
		r = sasl_client_step(conn, dec, declen, NULL, &out, &outlen);
		if (r != SASL_OK && r != SASL_CONTINUE)
			die("sasl_client_step (the server's proof?): %s", sasl_errdetail(conn));
		enclen = 0;
		enc[0] = '\0';
		if (out != NULL && outlen > 0)
			sasl_encode64(out, outlen, enc, sizeof(enc), &enclen);
		send_line(&l, enc);
	}
	static char used[64];
	snprintf(used, sizeof(used), "%s", mech);
	sasl_dispose(&conn);
	if (l.ssl != NULL) {
		SSL_shutdown(l.ssl);
		SSL_free(l.ssl);
	}
	close(l.fd);
	return used;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "proto", required_argument, NULL, 'P' },
		{ "mech", required_argument, NULL, 'm' },
		{ "cb", required_argument, NULL, 'c' },
		{ "wrong-cb", no_argument, NULL, 'W' },
		{ "starttls", no_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	o.mech = "SCRAM-SHA-256";
	o.count = 1;
	int c;
	while ((c = getopt_long(argc, argv, "p:u:w:", longopts, NULL)) != -1) {
		switch (c) {
		case 'P':
			o.proto = strcmp(optarg, "imap") == 0 ? P_IMAP : strcmp(optarg, "pop3") == 0 ? P_POP3 : P_SMTP;
			break;
		case 'm': o.mech = optarg; break;
		case 'c': o.cb = optarg; break;
		case 'W': o.wrong_cb = true; break;
		case 's': o.starttls = true; break;
		case 'n': o.count = strtol(optarg, NULL, 10); break;
		case 'p': o.port = optarg; break;
		case 'u': o.user = optarg; break;
		case 'w': o.pass = optarg; break;
		default: die("usage: see the comment at the top of sasl_client.c");
		}
	}
	if (optind != argc - 1 || o.port == NULL || o.user == NULL || o.pass == NULL || o.count < 1)
		die("usage: see the comment at the top of sasl_client.c");
	o.host = argv[optind];
	if (sasl_client_init(NULL) != SASL_OK)
		die("sasl_client_init failed");
	SSL_CTX *tls = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(tls, SSL_VERIFY_NONE, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const char *mech = NULL;
	for (long i = 0; i < o.count; i++)
		mech = sign_in(tls);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("OK %s\n", mech);
	if (o.count > 1)
		printf("%ld sign-ins in %.3f s: %.1f/s\n", o.count, secs, (double)o.count / secs);
	SSL_CTX_free(tls);
	sasl_client_done();
	return 0;
}
