/* pop3d.c - ix-pop3d, the POP3 daemon: started by the attendant, listens on the POP3 (STLS) and POP3S (implicit
 * TLS) ports and hands connections to pop3_session.c; passwords are checked by the directory. */
#include "transport/daemon/daemon.h"
#include "common/err.h"
#include "common/log.h"
#include "transport/pop3/pop3_session.h"
#include "transport/login/proxy.h"
#include "transport/net/sasl.h"
#include "common/util.h"

struct pop3d {
	struct daemon d;
	struct pop3_server *srv;
	struct listener *pop3, *pop3s;
};

/* `interchange server set` reaches the running daemon through the replica. */
static void on_settings(struct daemon *d, const struct settings *s, void *ctx)
{
	(void)d;
	struct pop3d *m = ctx;
	struct imapd_settings set;
	imapd_settings_from(s, &set);
	pop3_server_set_limits(m->srv, set.pop3_idle_timeout_secs * 1000u, set.auth_max_failures);
}

static void release_pop3(void *ctx)
{
	struct pop3d *m = ctx;
	if (m->pop3 != NULL) /* NULL once stopping: the listener is gone */
		listener_release(m->pop3);
}

static void release_pop3s(void *ctx)
{
	struct pop3d *m = ctx;
	if (m->pop3s != NULL) /* NULL once stopping: the listener is gone */
		listener_release(m->pop3s);
}

static void on_accept_pop3(struct listener *l, int fd, void *ctx)
{
	(void)l;
	struct pop3d *m = ctx;
	pop3_server_accept(m->srv, fd, false, release_pop3, m);
}

static void on_accept_pop3s(struct listener *l, int fd, void *ctx)
{
	(void)l;
	struct pop3d *m = ctx;
	pop3_server_accept(m->srv, fd, true, release_pop3s, m);
}

static void on_all_closed(void *ctx)
{
	daemon_stopped(ctx);
}

static void on_stop(struct daemon *d, void *ctx)
{
	struct pop3d *m = ctx;
	listener_destroy(&m->pop3);
	listener_destroy(&m->pop3s);
	pop3_server_shutdown(m->srv, on_all_closed, d);
}

int main(int argc, char **argv)
{
	static struct pop3d m;
	daemon_setup(&m.d, "pop3d", DAEMON_WANT_STORE, argc, argv);
	unsigned long nofile = imapd_raise_nofile();
	struct buf err = BUF_INIT;
	if (ix_sasl_init("ix-pop3d", &err) != 0)
		log_warn("SASL is unavailable (AUTH will fail): %s", buf_cstr(&err));
	struct imapd_settings set;
	imapd_settings_from(&m.d.settings, &set);
	struct workpool *pool = NULL;
	if (workpool_create(m.d.loop, IMAPD_POOL_THREADS / 2, &pool, &err) != 0)
		fatal("%s", buf_cstr(&err));
	struct pop3_server_config cfg = { 0 };
	cfg.loop = m.d.loop;
	cfg.store = m.d.store;
	imapd_userdb_dir(m.d.dir, &cfg.users);
	cfg.pool = pool;
	cfg.tls = m.d.tls;
	cfg.hostname = m.d.cfg.hostname != NULL ? m.d.cfg.hostname : "localhost";
	cfg.idle_timeout_msecs = set.pop3_idle_timeout_secs * 1000u;
	cfg.max_auth_failures = set.auth_max_failures;
	cfg.plaintext_on_loopback = true;
	cfg.server_dn = m.d.cfg.server_dn;
	struct proxy_trust *trust = proxy_trust_create(m.d.cfg.data_dir);
	cfg.proxy_trust = trust;
	m.srv = pop3_server_create(&cfg);
	unsigned maxc = set.imap_max_connections;
	if (nofile > 64 && maxc > nofile - 64)
		maxc = (unsigned)(nofile - 64);
	m.pop3 = daemon_listen(&m.d, PORT_POP3, maxc, on_accept_pop3, &m);
	m.pop3s = daemon_listen(&m.d, PORT_POP3S, maxc, on_accept_pop3s, &m);
	/* past the connection limit a client hears why (not on POP3S: plaintext would be garbage there) */
	listener_set_busy_reply(m.pop3, "-ERR [SYS/TEMP] Too many connections, try again later\r\n");
	daemon_on_stop(&m.d, on_stop, &m);
	daemon_watch_settings(&m.d, on_settings, &m);
	daemon_run(&m.d);
	workpool_destroy(&pool, 0); /* first: finished jobs report to their sessions */
	pop3_server_destroy(&m.srv);
	listener_destroy(&m.pop3);
	listener_destroy(&m.pop3s);
	proxy_trust_destroy(&trust);
	ix_sasl_done();
	buf_free(&err);
	daemon_teardown(&m.d);
	return 0;
}
