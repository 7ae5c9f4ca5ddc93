/* imapd.c - ix-imapd, the IMAP4rev1 daemon: started by the attendant, listens on the IMAP (STARTTLS) and IMAPS
 * (implicit TLS) ports and hands connections to imap_session.c (the main is the login core's login_daemon.c). */
#include "transport/imap/imap_session.h"
#include "transport/login/login_daemon.h"

static void *create(const struct login_config *cfg, const struct settings *set, struct login_server **login_r)
{
	struct imap_server_config c = { .login = *cfg, .max_message_size = set->v[SET_SMTP_MAX_MESSAGE_SIZE] };
	struct imap_server *srv = imap_server_create(&c);
	*login_r = imap_server_login(srv);
	return srv;
}

static void apply(void *srv, const struct settings *set)
{
	login_server_set_limits(imap_server_login(srv), (unsigned)set->v[SET_IMAP_IDLE_TIMEOUT] * 1000u,
				(unsigned)set->v[SET_IMAP_LOGIN_TIMEOUT] * 1000u, set);
	imap_server_set_max_message_size(srv, set->v[SET_SMTP_MAX_MESSAGE_SIZE]);
	login_server_set_referrals(imap_server_login(srv), set->v[SET_IMAP_PROXY] == 0);
}

static void destroy(void *srv)
{
	imap_server_destroy((struct imap_server **)&srv);
}

int main(int argc, char **argv)
{
	static const struct login_daemon imapd = {
		"imapd",   "AUTHENTICATE", LOGIN_POOL_THREADS,
		PORT_IMAP, PORT_IMAPS,     "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
		create,    apply,          destroy,
	};
	return login_daemon_main(&imapd, argc, argv);
}
