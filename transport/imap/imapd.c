/* imapd.c - ix-imapd, the IMAP4rev1 daemon: started by the attendant, listens on the IMAP (STARTTLS) and IMAPS
 * (implicit TLS) ports and hands connections to imap_session.c; passwords are checked by the directory. */
#include "transport/daemon/daemon.h"
#include "common/err.h"
#include "transport/imap/imap_session.h"
#include "common/log.h"
#include "transport/login/proxy.h"
#include "transport/net/sasl.h"
#include "common/util.h"

#include <stdlib.h>
#include <unistd.h>

struct imapd {
	struct daemon d;
	struct imap_server *srv;
	struct listener *imap, *imaps;
};

/* `interchange server set` reaches the running daemon through the replica. */
static void on_settings(struct daemon *d, const struct settings *s, void *ctx)
{
	(void)d;
	struct imapd *m = ctx;
	struct imapd_settings set;
	imapd_settings_from(s, &set);
	imap_server_set_limits(m->srv, set.imap_idle_timeout_secs * 1000u, set.max_message_size, set.auth_max_failures);
}

static void release_imap(void *ctx)
{
	struct imapd *m = ctx;
	if (m->imap != NULL) /* NULL once stopping: the listener is gone */
		listener_release(m->imap);
}

static void release_imaps(void *ctx)
{
	struct imapd *m = ctx;
	if (m->imaps != NULL) /* NULL once stopping: the listener is gone */
		listener_release(m->imaps);
}

static void on_accept_imap(struct listener *l, int fd, void *ctx)
{
	(void)l;
	struct imapd *m = ctx;
	imap_server_accept(m->srv, fd, false, release_imap, m);
}

static void on_accept_imaps(struct listener *l, int fd, void *ctx)
{
	(void)l;
	struct imapd *m = ctx;
	imap_server_accept(m->srv, fd, true, release_imaps, m);
}

static void on_all_closed(void *ctx)
{
	daemon_stopped(ctx);
}

static void on_stop(struct daemon *d, void *ctx)
{
	struct imapd *m = ctx;
	listener_destroy(&m->imap);
	listener_destroy(&m->imaps);
	imap_server_shutdown(m->srv, on_all_closed, d);
}

int main(int argc, char **argv)
{
	static struct imapd m;
	daemon_setup(&m.d, "imapd", DAEMON_WANT_STORE, argc, argv);
	unsigned long nofile = imapd_raise_nofile();
	struct buf err = BUF_INIT;
	if (ix_sasl_init("ix-imapd", &err) != 0)
		log_warn("SASL is unavailable (AUTHENTICATE will fail): %s", buf_cstr(&err));
	struct imapd_settings set;
	imapd_settings_from(&m.d.settings, &set);
	struct workpool *pool = NULL;
	if (workpool_create(m.d.loop, IMAPD_POOL_THREADS, &pool, &err) != 0)
		fatal("%s", buf_cstr(&err));
	struct imap_server_config cfg = { 0 };
	cfg.loop = m.d.loop;
	cfg.store = m.d.store;
	imapd_userdb_dir(m.d.dir, &cfg.users);
	cfg.pool = pool;
	cfg.tls = m.d.tls;
	cfg.hostname = m.d.cfg.hostname != NULL ? m.d.cfg.hostname : "localhost";
	cfg.idle_timeout_msecs = set.imap_idle_timeout_secs * 1000u;
	cfg.max_message_size = set.max_message_size;
	cfg.max_auth_failures = set.auth_max_failures;
	cfg.plaintext_on_loopback = true;
	cfg.server_dn = m.d.cfg.server_dn;
	struct proxy_trust *trust = proxy_trust_create(m.d.cfg.data_dir);
	cfg.proxy_trust = trust;
	m.srv = imap_server_create(&cfg);
	unsigned maxc = set.imap_max_connections;
	if (nofile > 64 && maxc > nofile - 64)
		maxc = (unsigned)(nofile - 64);
	m.imap = daemon_listen(&m.d, PORT_IMAP, maxc, on_accept_imap, &m);
	m.imaps = daemon_listen(&m.d, PORT_IMAPS, maxc, on_accept_imaps, &m);
	/* past the connection limit a client hears why (not on IMAPS: plaintext would be garbage there) */
	listener_set_busy_reply(m.imap, "* BYE [UNAVAILABLE] Too many connections, try again later\r\n");
	log_info("up to %u connections per port (open files limit %lu)", maxc, nofile);
	daemon_on_stop(&m.d, on_stop, &m);
	daemon_watch_settings(&m.d, on_settings, &m);
	daemon_run(&m.d);
	workpool_destroy(&pool, 0); /* first: finished jobs report to their sessions */
	imap_server_destroy(&m.srv);
	listener_destroy(&m.imap);
	listener_destroy(&m.imaps);
	proxy_trust_destroy(&trust);
	ix_sasl_done();
	buf_free(&err);
	daemon_teardown(&m.d);
	return 0;
}
