/* pop3d.c - ix-pop3d, the POP3 daemon: started by the attendant, listens on the POP3 (STLS) and POP3S (implicit
 * TLS) ports and hands connections to pop3_session.c (the main is the login core's login_daemon.c). */
#include "transport/pop3/pop3_session.h"
#include "transport/login/login_daemon.h"

static void *create(const struct login_config *cfg, const struct settings *set, struct login_server **login_r)
{
	(void)set;
	struct pop3_server *srv = pop3_server_create(cfg);
	*login_r = pop3_server_login(srv);
	return srv;
}

static void apply(void *srv, const struct settings *set)
{
	login_server_set_limits(pop3_server_login(srv), (unsigned)set->v[SET_POP3_IDLE_TIMEOUT] * 1000u,
				(unsigned)set->v[SET_POP3_LOGIN_TIMEOUT] * 1000u, set);
}

static void destroy(void *srv)
{
	pop3_server_destroy((struct pop3_server **)&srv);
}

int main(int argc, char **argv)
{
	static const struct login_daemon pop3d = {
		"pop3d",   "AUTH",     LOGIN_POOL_THREADS / 2,
		PORT_POP3, PORT_POP3S, "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
		create,    apply,      destroy,
	};
	return login_daemon_main(&pop3d, argc, argv);
}
