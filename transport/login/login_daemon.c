/* login_daemon.c - the main of the IMAP, POP3 and ManageSieve daemons (see login_daemon.h): listeners hand connections to the
 * login core; passwords are checked by the directory. */
#include "transport/login/login_daemon.h"
#include "transport/daemon/daemon.h"
#include "transport/daemon/signin.h"
#include "directory/signin_config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>

struct login_main {
	struct daemon d;
	const struct login_daemon *ld;
	void *srv;
	struct login_server *login;
	struct listener *plain, *tls;
};

/* `interchange server set` reaches the running daemon through the replica. */
static void on_settings(struct daemon *d, const struct settings *s, void *ctx)
{
	(void)d;
	struct login_main *m = ctx;
	m->ld->apply(m->srv, s);
}

static void release_plain(void *ctx)
{
	struct login_main *m = ctx;
	if (m->plain != NULL) /* NULL once stopping: the listener is gone */
		listener_release(m->plain);
}

static void release_tls(void *ctx)
{
	struct login_main *m = ctx;
	if (m->tls != NULL) /* NULL once stopping: the listener is gone */
		listener_release(m->tls);
}

static void on_accept_plain(struct listener *l, int fd, void *ctx)
{
	(void)l;
	struct login_main *m = ctx;
	login_server_accept(m->login, fd, false, release_plain, m);
}

static void on_accept_tls(struct listener *l, int fd, void *ctx)
{
	(void)l;
	struct login_main *m = ctx;
	login_server_accept(m->login, fd, true, release_tls, m);
}

static void on_all_closed(void *ctx)
{
	daemon_stopped(ctx);
}

static void on_stop(struct daemon *d, void *ctx)
{
	struct login_main *m = ctx;
	listener_destroy(&m->plain);
	listener_destroy(&m->tls);
	login_server_shutdown(m->login, on_all_closed, d);
}

int login_daemon_main(const struct login_daemon *ld, int argc, char **argv)
{
	static struct login_main m;
	m.ld = ld;
	daemon_setup(&m.d, ld->name, DAEMON_WANT_STORE, argc, argv);
	unsigned long nofile = login_raise_nofile();
	struct buf err = BUF_INIT;
	char *app = xasprintf("ix-%s", ld->name);
	if (ix_sasl_init(app, &err) != 0)
		log_warn("SASL is unavailable (%s will fail): %s", ld->sasl_command, buf_cstr(&err));
	const struct settings *set = &m.d.settings;
	struct workpool *pool = NULL;
	struct workpool *read_pool = NULL;
	if (workpool_create(m.d.loop, ld->pool_threads, &pool, &err) != 0 ||
	    workpool_create(m.d.loop, LOGIN_READ_THREADS, &read_pool, &err) != 0)
		fatal("%s", buf_cstr(&err));
	struct login_config cfg = { 0 };
	cfg.loop = m.d.loop;
	cfg.store = m.d.store;
	login_userdb_dir(m.d.dir, &cfg.users);
	cfg.pool = pool;
	cfg.read_pool = read_pool;
	cfg.tls = m.d.tls;
	cfg.hostname = m.d.cfg.hostname != NULL ? m.d.cfg.hostname : "localhost";
	throttle_limits_from_settings(set, &cfg.auth_limits);
	cfg.auth_failure_delay_msecs = (unsigned)set->v[SET_AUTH_FAILURE_DELAY_MS];
	cfg.scram = (unsigned)set->v[SET_AUTH_SCRAM];
	cfg.plaintext_on_loopback = true;
	cfg.spool_dir = m.d.cfg.data_dir;
	cfg.server_dn = m.d.cfg.server_dn;
	/* the proxy presents this server's certificate to the home server (SASL EXTERNAL); the sessions ask for one only
	 * from a client that says EXTERNAL, after the handshake (login_sasl_start): an ordinary mail client never is */
	struct tls_peers *trust = tls_peers_create(m.d.cfg.data_dir, true);
	cfg.proxy_trust = trust;
	char *keytab = config_path(&m.d.cfg, SIGNIN_KEYTAB);
	struct signin *signin = signin_create(m.d.dir, keytab);
	free(keytab);
	cfg.verifiers = signin_verifiers(signin);
	m.srv = ld->create(&cfg, set, &m.login);
	daemon_watch_settings(&m.d, on_settings, &m); /* applies them at once too */
	unsigned maxc = (unsigned)set->v[SET_IMAP_MAX_CONNECTIONS];
	if (nofile > 64 && maxc > nofile - 64)
		maxc = (unsigned)(nofile - 64);
	m.plain = daemon_listen(&m.d, ld->port, maxc, on_accept_plain, &m);
	if (ld->tls_port != PORT_COUNT)
		m.tls = daemon_listen(&m.d, ld->tls_port, maxc, on_accept_tls, &m);
	/* past the connection limit a client hears why (not on the TLS port: plaintext would be garbage there) */
	listener_set_busy_reply(m.plain, ld->busy_reply);
	log_info("up to %u connections per port (open files limit %lu)", maxc, nofile);
	daemon_on_stop(&m.d, on_stop, &m);
	daemon_run(&m.d);
	workpool_destroy(&read_pool, 0); /* first: finished jobs report to their sessions */
	workpool_destroy(&pool, 0);
	ld->destroy(m.srv);
	listener_destroy(&m.plain);
	listener_destroy(&m.tls);
	tls_peers_destroy(&trust);
	signin_destroy(&signin);
	ix_sasl_done();
	free(app);
	buf_free(&err);
	daemon_teardown(&m.d);
	return 0;
}
