/* managesieved.c - ix-managesieved, the ManageSieve daemon: started by the attendant, listens on the ManageSieve port
 * (STARTTLS) and hands connections to managesieve_session.c (the main is the login core's login_daemon.c). */
#include "transport/managesieve/managesieve_session.h"
#include "transport/login/login_daemon.h"

static void *create(const struct login_config *cfg, const struct settings *set, struct login_server **login_r)
{
	(void)set;
	struct ms_server *srv = ms_server_create(cfg);
	*login_r = ms_server_login(srv);
	return srv;
}

/* A client editing scripts keeps its session open as an IMAP client does: IMAP's timeouts apply. */
static void apply(void *srv, const struct settings *set)
{
	login_server_set_limits(ms_server_login(srv), (unsigned)set->v[SET_IMAP_IDLE_TIMEOUT] * 1000u,
				(unsigned)set->v[SET_IMAP_LOGIN_TIMEOUT] * 1000u, set);
}

static void destroy(void *srv)
{
	ms_server_destroy((struct ms_server **)&srv);
}

int main(int argc, char **argv)
{
	static const struct login_daemon managesieved = {
		"managesieved", "AUTHENTICATE", LOGIN_POOL_THREADS / 4,
		PORT_SIEVE,     PORT_COUNT,     "NO (TRYLATER) \"Too many connections, try again later.\"\r\n",
		create,         apply,          destroy,
	};
	return login_daemon_main(&managesieved, argc, argv);
}
