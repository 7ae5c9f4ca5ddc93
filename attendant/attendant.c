/* attendant.c - the supervisor loop: slapd first, then the services, restarts with backoff, the address
 * generator, the control socket (status), and a clean stop in reverse order with slapd last. */
#include "attendant/attendant.h"
#include "attendant/bootstrap.h"
#include "directory/dir.h"
#include "common/audit.h"
#include "common/err.h"
#include "common/evloop.h"
#include "common/log.h"
#include "common/paths.h"
#include "attendant/maintenance.h"
#include "attendant/tlsrpt_report.h"
#include "attendant/dmarc_report.h"
#include "attendant/history.h"
#include "attendant/metrics.h"
#include "transport/mta/queue.h"
#include "attendant/monitor.h"
#include "attendant/orphan.h"
#include "common/privs.h"
#include "common/settings.h"
#include "directory/provision.h"
#include "attendant/repl_follow.h"
#include "directory/bindlog.h"
#include "directory/replication.h"
#include "directory/signin_config.h"
#include "directory/slapd.h"
#include "directory/upgrade.h"
#include "directory/sync.h"
#include "directory/sync_follow.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <systemd/sd-daemon.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A service is never given up: after a death it waits (backoff) and is started again; one that exited because the
 * directory was not there waits for slapd (waiting) when slapd is not running. */
enum svc_state { SVC_STOPPED, SVC_STARTING, SVC_RUNNING, SVC_BACKOFF, SVC_WAITING, SVC_STOPPING };
static const char *const svc_state_names[] = { "stopped", "starting", "running", "backoff", "waiting", "stopping" };

struct attendant;

/* Started in this order after slapd, stopped in the reverse order before it. */
const struct service_def attendant_services[] = {
	{ "mta", "ix-mta" },
	{ "smtpd", "ix-smtpd" },
	{ "imapd", "ix-imapd" },
	{ "pop3d", "ix-pop3d" },
	{ "managesieved", "ix-managesieved" },
	{ "httpd", "ix-httpd" },
	{ NULL, NULL },
};

struct service {
	const char *name;
	const char *program; /* NULL for slapd and the attendant itself */
	struct attendant *a;
	int prog_fd;        /* the program, opened before privileges were dropped (its folder may be closed to us) */
	int attendant_pipe; /* write end: closed when the attendant dies, so the service stops too */
	int ready_pipe;     /* read end: the service writes a byte when it listens (closed after) */
	pid_t pid;
	enum svc_state state;
	time_t started;    /* wall clock of the last start */
	unsigned restarts; /* restarts since the attendant started */
	unsigned failures; /* its own failures in a row (a run as long as the backoff ceiling ends the row) */
	unsigned
		dependency_exits; /* exits for want of the directory (IX_EXIT_DEPENDENCY), since the attendant started */
	unsigned long long next_try; /* now_usec() of the next start while in backoff */
	char last_exit[128];
	struct evloop_timer restart_timer;
};

#define MAX_SERVICES 8

struct attendant {
	struct config *cfg;
	struct evloop *loop;
	struct service slapd;
	struct service self;
	struct service services[MAX_SERVICES];
	size_t nservices;
	int slapd_lock_fd;
	int log_fd;
	int control_fd;
	char *control_path;
	struct prov *prov;
	struct dir *dir;                  /* live replica: its change hook triggers address generation */
	struct evloop_async *dir_changed; /* the hook runs on the replica's thread; this wakes our loop */
	/* the recipients the hook saw change since the loop last looked (under changed_lock); past
	 * ATTENDANT_ADDRESS_BATCH of them, changed_all instead: the loop then looks at every recipient once */
	pthread_mutex_t changed_lock;
	char **changed;
	size_t nchanged;
	int changed_all;
	struct evloop_timer address_timer;
	struct metrics_server *metrics;
	struct evloop_timer rotate_timer;
	struct evloop_timer maint_timer;
	struct evloop_timer cert_timer;
	struct evloop_timer watchdog_timer;
	struct evloop_timer history_timer;
	struct history *history; /* the mail flow of the last hour, for the console's graphs */
	struct stat cert_st, key_st;
	struct maintenance maint;
	time_t last_tlsrpt;           /* when the TLS reports (RFC 8460) were last sent (the start at first) */
	time_t last_dmarc;            /* when the DMARC aggregate reports were last sent (the start at first) */
	struct repl_follow repl;      /* replication follows the server entries (noted by the hook) */
	struct bindlog *bindlog;      /* failed LDAP binds from cn=accesslog into our log */
	struct sync_followers *syncs; /* live changes of the sync sources this server runs (its own threads) */
	size_t sync_removed;          /* users deleted at their sync source removed at a maintenance request */
	int stopping;
};

static void describe_exit(int status, char *out, size_t len)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == IX_EXIT_DEPENDENCY)
		snprintf(out, len, "exited with status %d: the directory was not available", IX_EXIT_DEPENDENCY);
	else if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(out, len, "ended (status %d)", status);
}

static int start_slapd(struct attendant *a, struct buf *error_r)
{
	struct service *s = &a->slapd;
	s->state = SVC_STARTING;
	s->pid = slapd_spawn(a->cfg, a->log_fd, a->slapd_lock_fd, error_r);
	if (s->pid < 0) {
		s->pid = 0;
		s->state = SVC_STOPPED;
		return IX_EIO;
	}
	s->started = time(NULL);
	int status = 0;
	int ret = slapd_wait_ready(a->cfg, s->pid, SLAPD_READY_TIMEOUT_MS, &status, error_r);
	if (ret != IX_OK) {
		if (kill(s->pid, 0) == 0)
			slapd_stop(s->pid, SLAPD_STOP_TIMEOUT_MS);
		s->pid = 0;
		s->state = SVC_STOPPED;
		char *log = config_log_path(a->cfg, "slapd.log");
		char *text = NULL;
		size_t len = 0;
		/* name the usual cause in words: the port is taken (another slapd, another program) */
		if (read_file(log, 16 * 1024 * 1024, &text, &len) == 0 && len > 2048 &&
		    strstr(text + len - 2048, "errno=98") != NULL)
			buf_printf(error_r,
				   ": the LDAP port %u is already in use (choose another with init --ldap-port)",
				   a->cfg->ports[PORT_LDAP]);
		else if (text != NULL && len <= 2048 && strstr(text, "errno=98") != NULL)
			buf_printf(error_r,
				   ": the LDAP port %u is already in use (choose another with init --ldap-port)",
				   a->cfg->ports[PORT_LDAP]);
		free(text);
		buf_printf(error_r, "; see %s", log);
		free(log);
		return ret;
	}
	s->state = SVC_RUNNING;
	log_info("slapd is running (pid %ld)", (long)s->pid);
	return IX_OK;
}

/* Stops watching s's ready pipe and closes it (nothing when it is closed already). */
static void ready_pipe_close(struct attendant *a, struct service *s)
{
	if (s->ready_pipe < 0)
		return;
	evloop_fd_remove(a->loop, s->ready_pipe);
	close(s->ready_pipe);
	s->ready_pipe = -1;
}

/* The service wrote its byte on the ready pipe: it listens now, and only now counts as running (status, metrics).
 * End of file instead: it died first, which service_died handles. */
static void on_service_ready(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)loop;
	(void)events;
	struct service *s = ctx;
	char c;
	ssize_t n = read(fd, &c, 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == 1 && s->state == SVC_STARTING) {
		s->state = SVC_RUNNING;
		log_info("%s is ready", s->name);
	}
	ready_pipe_close(s->a, s);
}

static int start_service(struct attendant *a, struct service *s, struct buf *error_r)
{
	int p[2], r[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		buf_printf(error_r, "pipe: %s", strerror(errno));
		return IX_EIO;
	}
	if (pipe2(r, O_CLOEXEC) < 0) {
		buf_printf(error_r, "pipe: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return IX_EIO;
	}
	const char *program = s->program;
	char *logname = xasprintf("%s.log", s->name), *logpath = config_log_path(a->cfg, logname);
	free(logname);
	char *keytab = config_path(a->cfg, SIGNIN_KEYTAB);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		buf_printf(error_r, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		close(r[0]);
		close(r[1]);
		free(logpath);
		free(keytab);
		return IX_EIO;
	}
	if (pid == 0) {
		/* under systemd the service keeps the journal as its standard error */
		int fd = log_to_journal() ? -1 : open(logpath, O_WRONLY | O_APPEND | O_CREAT, 0640);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fcntl(p[0], F_SETFD, 0);
		fcntl(r[1], F_SETFD, 0);
		char num[16];
		snprintf(num, sizeof(num), "%d", p[0]);
		setenv("IX_ATTENDANT_FD", num, 1);
		snprintf(num, sizeof(num), "%d", r[1]);
		setenv("IX_READY_FD", num, 1);
		setenv("KRB5_KTNAME", keytab, 1); /* GSSAPI's service keys (interchange kerberos keytab) */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *const argv[] = { (char *)program, (char *)"--data", a->cfg->data_dir, NULL };
		fexecve(s->prog_fd, argv, environ);
		fprintf(stderr, "cannot run %s: %s\n", program, strerror(errno));
		_exit(127);
	}
	close(p[0]);
	close(r[1]);
	free(logpath);
	free(keytab);
	s->ready_pipe = r[0];
	s->attendant_pipe = p[1];
	s->pid = pid;
	s->started = time(NULL);
	log_info("%s started (pid %ld)", s->name, (long)pid);
	/* starting until it says it listens: a service restarted after a crash is not shown running (status,
	 * metrics) while its ports still refuse connections */
	s->state = SVC_STARTING;
	if (fcntl(r[0], F_SETFL, O_NONBLOCK) < 0 ||
	    evloop_fd_set(a->loop, r[0], EVLOOP_READ, on_service_ready, s) != 0) {
		log_warn("cannot watch %s's start: %s; it counts as running from now", s->name, strerror(errno));
		close(r[0]);
		s->ready_pipe = -1;
		s->state = SVC_RUNNING;
	}
	return IX_OK;
}

/* The restart delays from the server's settings (the replica's copy; the defaults when it is not open). */
static void backoff_limits(struct attendant *a, unsigned long long *first_ms_r, unsigned long long *max_ms_r)
{
	struct settings st;
	if (a->dir == NULL || a->cfg->server_dn == NULL || dir_server_settings(a->dir, a->cfg->server_dn, &st) != IX_OK)
		settings_load(&st, NULL, 0);
	*first_ms_r = st.v[SET_ATTENDANT_RESTART_BACKOFF_FIRST_MS];
	*max_ms_r = st.v[SET_ATTENDANT_RESTART_BACKOFF_MAX_SECONDS] * 1000ULL;
	if (*first_ms_r > *max_ms_r)
		*first_ms_r = *max_ms_r;
}

static void restart_due(struct evloop *loop, struct evloop_timer *timer, void *ctx);

/* Schedules the next start of s: after a failure of its own the first delay doubled with each failure in a row up
 * to the ceiling, otherwise (a dependency exit) the first delay. Never gives up. */
static void schedule_restart(struct attendant *a, struct service *s, int own_failure)
{
	unsigned long long first, max;
	backoff_limits(a, &first, &max);
	unsigned long long delay = first;
	for (unsigned i = 1; own_failure && i < s->failures && delay < max; i++)
		delay *= 2;
	if (delay > max)
		delay = max;
	s->state = SVC_BACKOFF;
	s->next_try = now_usec() + delay * 1000ULL;
	if (own_failure)
		log_info("restarting %s in %llu ms (failure %u in a row; the delay doubles up to %llu s)", s->name,
			 delay, s->failures, max / 1000);
	else
		log_info("restarting %s in %llu ms (not counted as its failure)", s->name, delay);
	evloop_timer_start(a->loop, &s->restart_timer, delay, 0, restart_due, s);
}

/* slapd answers again: the services that exited for want of it start now. */
static void start_waiting_services(struct attendant *a)
{
	for (size_t i = 0; i < a->nservices; i++) {
		struct service *s = &a->services[i];
		if (s->state == SVC_WAITING) {
			log_info("slapd is back: starting %s", s->name);
			s->state = SVC_BACKOFF;
			s->next_try = now_usec();
			evloop_timer_start(a->loop, &s->restart_timer, 0, 0, restart_due, s);
		}
	}
}

static void restart_due(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	struct service *s = ctx;
	struct attendant *a = s->a;
	if (a->stopping)
		return;
	struct buf err = BUF_INIT;
	s->restarts++;
	s->next_try = 0;
	int ret = s->program != NULL ? start_service(a, s, &err) : start_slapd(a, &err);
	if (ret != IX_OK) {
		s->failures++;
		snprintf(s->last_exit, sizeof(s->last_exit), "did not start: %.100s", buf_cstr(&err));
		log_error("%s did not start: %s", s->name, buf_cstr(&err));
		schedule_restart(a, s, 1);
	} else if (s->program == NULL) {
		start_waiting_services(a);
	}
	buf_free(&err);
}

static void service_died(struct attendant *a, struct service *s, int status)
{
	describe_exit(status, s->last_exit, sizeof(s->last_exit));
	s->pid = 0;
	ready_pipe_close(a, s);
	if (s->attendant_pipe > 0) {
		close(s->attendant_pipe);
		s->attendant_pipe = -1;
	}
	if (a->stopping) {
		s->state = SVC_STOPPED;
		return;
	}
	log_warn("%s %s", s->name, s->last_exit);
	if (s->program != NULL && WIFEXITED(status) && WEXITSTATUS(status) == IX_EXIT_DEPENDENCY) {
		s->dependency_exits++;
		if (a->slapd.state != SVC_RUNNING) {
			s->state = SVC_WAITING;
			log_info("%s waits for slapd, which is %s (not counted as its failure)", s->name,
				 svc_state_names[a->slapd.state]);
			return;
		}
		schedule_restart(a, s, 0);
		return;
	}
	/* a run as long as the ceiling ends a row of failures: the next delay is the first again */
	unsigned long long first, max;
	backoff_limits(a, &first, &max);
	if ((unsigned long long)(time(NULL) - s->started) * 1000ULL >= max)
		s->failures = 0;
	s->failures++;
	schedule_restart(a, s, 1);
}

static void on_sigchld(struct evloop *loop, int signo, void *ctx)
{
	(void)loop;
	(void)signo;
	struct attendant *a = ctx;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == a->slapd.pid) {
			if (a->prov != NULL)
				prov_close(&a->prov);
			service_died(a, &a->slapd, status);
		}
		for (size_t i = 0; i < a->nservices; i++) {
			if (pid == a->services[i].pid)
				service_died(a, &a->services[i], status);
		}
	}
}

static void on_stop_signal(struct evloop *loop, int signo, void *ctx)
{
	struct attendant *a = ctx;
	log_info("stopping on signal %d (%s)", signo, strsignal(signo));
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	a->stopping = 1;
	evloop_stop(loop);
}

/* Shifts NAME.log.(k-1) to NAME.log.k ... NAME.log to NAME.log.1, keeping ATTENDANT_LOG_KEEP old files. */
/* slapd writes its stderr to an inherited descriptor: copy the log aside and truncate it in place (it appends,
 * so it continues at the new end). */
static void copy_truncate(const char *path)
{
	char *data;
	size_t len;
	if (read_file(path, 1ULL << 31, &data, &len) < 0)
		return;
	char *first = xasprintf("%s.1", path);
	for (int k = ATTENDANT_LOG_KEEP; k >= 2; k--) {
		char *from = xasprintf("%s.%d", path, k - 1), *to = xasprintf("%s.%d", path, k);
		rename(from, to);
		free(from);
		free(to);
	}
	if (write_file_atomic(first, data, len, 0640) == 0 && truncate(path, 0) < 0)
		log_warn("cannot truncate %s: %s", path, strerror(errno));
	free(first);
	free(data);
}

static void reopen_all(struct attendant *a)
{
	log_reopen();
	for (size_t i = 0; i < a->nservices; i++) {
		if (a->services[i].pid > 0)
			kill(a->services[i].pid, SIGHUP);
	}
}

static void on_sighup(struct evloop *loop, int signo, void *ctx)
{
	(void)loop;
	(void)signo;
	reopen_all(ctx);
	log_info("logs reopened");
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Size-based rotation of every service log in the log folder (config_log_path). */
static void rotate_tick(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	struct attendant *a = ctx;
	char *path = config_log_path(a->cfg, "attendant.log");
	if (file_size(path) > ATTENDANT_LOG_ROTATE_BYTES) {
		file_shift(path, ATTENDANT_LOG_KEEP);
		log_reopen();
		log_info("log rotated");
	}
	free(path);
	path = config_log_path(a->cfg, "slapd.log");
	if (file_size(path) > ATTENDANT_LOG_ROTATE_BYTES)
		copy_truncate(path);
	if (audit_rotate(a->cfg->data_dir, AUDIT_ROTATE_BYTES, AUDIT_KEEP))
		log_info("rotated the audit log");
	free(path);
	for (size_t i = 0; i < a->nservices; i++) {
		char *name = xasprintf("%s.log", a->services[i].name);
		path = config_log_path(a->cfg, name);
		free(name);
		if (file_size(path) > ATTENDANT_LOG_ROTATE_BYTES) {
			file_shift(path, ATTENDANT_LOG_KEEP);
			if (a->services[i].pid > 0)
				kill(a->services[i].pid, SIGHUP);
			log_info("rotated the log of %s", a->services[i].name);
		}
		free(path);
	}
}

/* In an organisation of several servers one attendant generates addresses, so that two servers never give
 * the same address to two new recipients before replication shows each the other's choice (the unique overlay
 * sees only its own server's writes): the server whose entry's DN sorts first. */
static int address_master(struct attendant *a)
{
	if (a->dir == NULL)
		return 1;
	struct dir_server *servers = NULL;
	size_t n = 0;
	if (dir_servers(a->dir, &servers, &n) != IX_OK || n == 0)
		return 1;
	const char *first = NULL;
	for (size_t i = 0; i < n; i++) {
		if (first == NULL || strcasecmp(servers[i].dn, first) < 0)
			first = servers[i].dn;
	}
	int master = first == NULL || a->cfg->server_dn == NULL || strcasecmp(first, a->cfg->server_dn) == 0;
	dir_servers_free(&servers, n);
	return master;
}

/* The attendant's connection to the directory, opened when first needed; NULL (a warning logged) when it cannot be. */
static struct prov *attendant_prov(struct attendant *a, const char *what)
{
	struct buf err = BUF_INIT;
	if (a->prov == NULL && prov_open(a->cfg, &a->prov, &err) != IX_OK)
		log_warn("%s: %s", what, buf_cstr(&err));
	buf_free(&err);
	return a->prov;
}

/* Gives addresses to the recipients without one: those named by dns (n of them), or every recipient (dns NULL). */
static void generate_addresses(struct attendant *a, const char *const *dns, size_t n)
{
	if (a->slapd.state != SVC_RUNNING || !address_master(a))
		return;
	struct buf err = BUF_INIT;
	if (attendant_prov(a, "address generation") == NULL)
		return;
	unsigned count = 0;
	int ret = prov_generate_addresses_for(a->prov, dns, n, &count, &err);
	if (ret == IX_EUNAVAIL || ret == IX_EIO)
		prov_close(&a->prov); /* reconnect next time (slapd restarted) */
	buf_free(&err);
}

/* The periodic sweep: a safety net behind the replica's change hook (and the only trigger if the replica
 * cannot run). */
static void address_tick(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	generate_addresses(ctx, NULL, 0);
	repl_follow_sync(&((struct attendant *)ctx)->repl, 1);
}

/* The recipients changed since the last call: each looked at alone, so that a burst of changes (a sync source's
 * first run adds thousands) costs one look each, not a search of every recipient per change; after a burst larger
 * than ATTENDANT_ADDRESS_BATCH, one search of every recipient. */
static void on_dir_changed_loop(struct evloop *loop, void *ctx)
{
	(void)loop;
	struct attendant *a = ctx;
	pthread_mutex_lock(&a->changed_lock);
	char **dns = a->changed;
	size_t n = a->nchanged;
	int all = a->changed_all;
	a->changed = NULL;
	a->nchanged = 0;
	a->changed_all = 0;
	pthread_mutex_unlock(&a->changed_lock);
	if (all)
		generate_addresses(a, NULL, 0);
	else if (n > 0)
		generate_addresses(a, (const char *const *)dns, n);
	for (size_t i = 0; i < n; i++)
		free(dns[i]);
	free(dns);
	repl_follow_sync(&a->repl, 0);
}

/* Replica thread: a recipient appeared or changed. Wake the loop; it generates addresses there. */
static void on_dir_change(void *ctx, enum dir_change_kind kind, enum dir_type type, const char *dn)
{
	struct attendant *a = ctx;
	/* a server entry that comes or goes may change whom slapd replicates from (attendant/repl_follow.c) */
	int server = repl_follow_note(&a->repl, dn);
	if (kind != DIR_CHANGE_DELETE) {
		/* a policy or domain changed: any recipient may now get an address */
		int everyone = type == 0 && (strcasestr(dn, ",ou=Recipient Policies,") != NULL ||
					     strcasestr(dn, ",ou=Accepted Domains,") != NULL);
		pthread_mutex_lock(&a->changed_lock);
		if (everyone || a->nchanged >= ATTENDANT_ADDRESS_BATCH) {
			a->changed_all = 1;
		} else if (!a->changed_all) {
			a->changed = xrealloc(a->changed, sizeof(*a->changed) * (a->nchanged + 1));
			a->changed[a->nchanged++] = xstrdup(dn);
		}
		pthread_mutex_unlock(&a->changed_lock);
	}
	if (server || kind != DIR_CHANGE_DELETE)
		evloop_async_send(a->dir_changed);
}

static void fill_service(struct monitor_service *m, const struct service *s, time_t now)
{
	m->name = s->name;
	m->state = svc_state_names[s->state];
	m->pid = s->state == SVC_RUNNING ? (long)s->pid : 0;
	m->uptime = s->state == SVC_RUNNING ? (long)(now - s->started) : 0;
	m->restarts = s->restarts;
	m->last_exit = s->last_exit;
	m->failures = s->failures;
	m->dependency_exits = s->dependency_exits;
	unsigned long long t = now_usec();
	m->next_try = s->state == SVC_BACKOFF ? (s->next_try > t ? (long)((s->next_try - t + 999999) / 1000000) : 0)
					      : -1;
}

static void collect(struct attendant *a, struct monitor_facts *f)
{
	monitor_collect(a->cfg, a->dir, f);
	time_t now = time(NULL);
	fill_service(&f->services[f->service_count++], &a->self, now);
	fill_service(&f->services[f->service_count++], &a->slapd, now);
	for (size_t i = 0; i < a->nservices && f->service_count < MONITOR_MAX_SERVICES; i++)
		fill_service(&f->services[f->service_count++], &a->services[i], now);
	f->maint_last_purge = a->maint.last_purge;
	f->maint_last_check = a->maint.last_check;
	f->maint_purged = a->maint.purged_total;
	f->maint_quota_warnings = a->maint.quota_warnings_sent;
	f->maint_check_problems = a->maint.check_problems;
	f->quota_warned = a->maint.quota_warned_now;
	struct sync_follow_status st[MONITOR_MAX_SYNC];
	size_t n = sync_followers_status(a->syncs, st, MONITOR_MAX_SYNC);
	for (size_t i = 0; i < n; i++) {
		struct monitor_sync *m = &f->sync[f->sync_count++];
		snprintf(m->name, sizeof(m->name), "%.*s", (int)sizeof(m->name) - 1, st[i].name);
		snprintf(m->state, sizeof(m->state), "%.*s", (int)sizeof(m->state) - 1, st[i].state);
		snprintf(m->last_error, sizeof(m->last_error), "%.*s", (int)sizeof(m->last_error) - 1,
			 st[i].last_error);
		m->state_age = (long long)(now - st[i].since);
		m->last_change_age = st[i].last_applied ? (long long)(now - st[i].last_applied) : -1;
		m->last_run_age = st[i].last_run ? (long long)(now - st[i].last_run) : -1;
		m->changes = st[i].changes;
		m->reconnects = st[i].reconnects;
		m->users = st[i].users;
		m->disabled = st[i].disabled;
		m->lists = st[i].lists;
		m->contacts = st[i].contacts;
		m->conflicts = st[i].conflicts;
		m->errors = st[i].errors;
		m->passthrough = st[i].passthrough;
		m->pt_accepted = st[i].pt_accepted;
		m->pt_refused = st[i].pt_refused;
		m->pt_cached = st[i].pt_cached;
		m->pt_unreachable = st[i].pt_unreachable;
		m->pt_entries = st[i].pt_entries;
	}
	monitor_warnings(f);
}

/* At a maintenance request: the users deleted at their sync source past its grace days removed now (the followers'
 * keeper does it hourly; directory/sync.h). */
static void sync_expire_now(struct attendant *a, time_t now)
{
	if (attendant_prov(a, "sync sources") == NULL)
		return;
	size_t removed = 0;
	struct buf err = BUF_INIT;
	if (sync_expire(a->prov, a->cfg, now, &removed, &err) != IX_OK)
		log_warn("sync: removing users deleted at their source: %s", buf_cstr(&err));
	a->sync_removed += removed;
	buf_free(&err);
}

static void maint_tick(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	struct attendant *a = ctx;
	if (a->slapd.state == SVC_RUNNING) {
		time_t now = time(NULL);
		maintenance_tick(&a->maint, a->cfg, a->dir, now);
		if (now - a->last_tlsrpt >= TLSRPT_INTERVAL_S) {
			a->last_tlsrpt = now;
			tlsrpt_report_run(a->cfg, a->dir, now);
		}
		dmarc_report_run(a->cfg, a->dir, now, &a->last_dmarc, false, NULL);
	}
}

/* The certificate files changed: slapd loads them (a pair caught between its two renames is refused: looked at again
 * next time) and every local user gets the new public copy. */
static void cert_tick(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	struct attendant *a = ctx;
	char *cert = config_path(a->cfg, "tls/cert.pem"), *key = config_path(a->cfg, "tls/key.pem");
	int changed = file_changed(cert, &a->cert_st) | file_changed(key, &a->key_st);
	free(cert);
	free(key);
	if (!changed || a->slapd.state != SVC_RUNNING)
		return;
	struct buf err = BUF_INIT;
	if (upgrade_tls_files(a->cfg, &err) != IX_OK) {
		log_warn("the certificate changed but slapd cannot use it yet: %s", buf_cstr(&err));
		memset(&a->cert_st, 0, sizeof(a->cert_st));
	} else {
		log_info("the certificate changed: slapd serves it to new connections");
		buf_reset(&err);
		if (bootstrap_publish_cert(a->cfg, &err) != IX_OK)
			log_warn("%s", buf_cstr(&err));
	}
	buf_free(&err);
}

/* systemd's watchdog (WatchdogSec=): a ping from the attendant's loop, so a loop that stopped turning is restarted. */
static void watchdog_tick(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	(void)ctx;
	sd_notify(0, "WATCHDOG=1");
}

/* The end of an interval of the mail flow's history: what the tracking log gained, and the queue's length. */
static void history_tick(struct evloop *loop, struct evloop_timer *timer, void *ctx)
{
	(void)loop;
	(void)timer;
	struct attendant *a = ctx;
	history_read_log(a->history, a->cfg->data_dir);
	struct queue_stats qs = { 0 };
	struct buf err = BUF_INIT;
	char *qdir = config_path(a->cfg, "queue");
	(void)queue_stats(qdir, (long long)time(NULL), &qs, &err);
	history_sample(a->history, (long long)time(NULL), qs.active, qs.active + qs.deferred);
	free(qdir);
	buf_free(&err);
}

static void render_metrics(void *ctx, struct buf *out)
{
	struct monitor_facts f;
	collect(ctx, &f);
	monitor_prometheus(&f, out);
}

static void on_control(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	struct attendant *a = ctx;
	int c = accept4(a->control_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	/* a request is one short line; the client is local and waits for us, a slow one gets a timeout */
	struct timeval tv = { 1, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char req[ATTENDANT_MAX_REQUEST];
	ssize_t n = read(c, req, sizeof(req) - 1);
	struct buf out = BUF_INIT;
	if (n > 0) {
		req[n] = '\0';
		req[strcspn(req, "\r\n")] = '\0';
		struct monitor_facts f;
		if (strcmp(req, "status") == 0) {
			collect(a, &f);
			buf_append_char(&out, '{');
			monitor_json(&f, &out);
			buf_append_str(&out, "}\n");
		} else if (strcmp(req, "maintenance") == 0) {
			maintenance_run_all(&a->maint, a->cfg, a->dir, time(NULL));
			sync_expire_now(a, time(NULL));
			a->last_tlsrpt = time(NULL);
			tlsrpt_report_run(a->cfg, a->dir, a->last_tlsrpt);
			buf_printf(&out,
				   "Maintenance done: %llu deleted items purged since start, %u quota warnings sent, "
				   "store check: %d problems, %zu users deleted at their sync source removed since "
				   "start%s\n",
				   a->maint.purged_total, a->maint.quota_warnings_sent, a->maint.check_problems,
				   a->sync_removed + sync_followers_removed(a->syncs),
				   a->maint.last_error[0] ? "; last error: " : "");
			buf_append_str(&out, a->maint.last_error);
		} else if (strcmp(req, "dmarc-report") == 0) {
			dmarc_report_run(a->cfg, a->dir, time(NULL), &a->last_dmarc, true, &out);
		} else if (strcmp(req, "metrics") == 0) {
			collect(a, &f);
			history_read_log(a->history, a->cfg->data_dir);
			buf_append_str(&out, "{\"counters\": {");
			monitor_json(&f, &out);
			buf_append_str(&out, "}, \"history\": ");
			history_json(a->history, (long long)time(NULL), &out);
			buf_append_str(&out, "}\n");
		} else if (strcmp(req, "status-text") == 0) {
			collect(a, &f);
			monitor_text(&f, &out);
		} else {
			buf_printf(&out, "{\"error\": \"unknown request\"}\n");
		}
		(void)write_full(c, out.data, out.len);
	}
	buf_free(&out);
	close(c);
}

static int open_control(struct attendant *a, struct buf *error_r)
{
	a->control_path = config_path(a->cfg, ATTENDANT_SOCK);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(a->control_path) >= sizeof(sun.sun_path)) {
		buf_printf(error_r, "the data folder path is too long for a local socket (%s)", a->control_path);
		return IX_EINVAL;
	}
	strcpy(sun.sun_path, a->control_path);
	unlink(a->control_path); /* we hold the attendant lock: a leftover socket is stale */
	a->control_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (a->control_fd < 0 || bind(a->control_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(a->control_fd, 16) < 0) {
		buf_printf(error_r, "cannot open the control socket %s: %s", a->control_path, strerror(errno));
		return IX_EIO;
	}
	return evloop_fd_set(a->loop, a->control_fd, EVLOOP_READ, on_control, a);
}

/* What a data folder needs before anything starts: a folder that init did not finish, or that lost a part, is
 * named in words instead of starting half a system (slapd would make an empty directory database in place of a
 * lost one and serve it). The store and the queue are made on demand and are not checked here. */
static int data_folder_check(const struct config *cfg, struct buf *error_r)
{
	static const char restore[] = "restore this server from a backup ('interchange restore'), or remove the "
				      "folder and run 'interchange init' again";
	static const struct {
		const char *rel, *what, *why, *remedy;
	} parts[] = {
		{ "directory/slapd.d", "the directory configuration",
		  "the folder was not fully initialised or has been damaged", restore },
		{ "directory/data/data.mdb", "the directory database",
		  "starting would serve an empty directory in its place", restore },
		{ "tls/cert.pem", "the TLS certificate", "the services cannot offer TLS without it",
		  "put the certificate back, or a new certificate and key (PEM) as tls/cert.pem and tls/key.pem" },
		{ "tls/key.pem", "the TLS private key", "the services cannot offer TLS without it",
		  "put the key back, or a new certificate and key (PEM) as tls/cert.pem and tls/key.pem" },
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(parts); i++) {
		char *path = config_path(cfg, parts[i].rel);
		int ok = access(path, R_OK) == 0;
		int saved = errno;
		if (!ok)
			buf_printf(error_r, "%s %s cannot be used (%s): %s; %s", parts[i].what, path, strerror(saved),
				   parts[i].why, parts[i].remedy);
		free(path);
		if (!ok)
			return IX_ENOTFOUND;
	}
	return IX_OK;
}

static int take_lock(const struct config *cfg, const char *rel, int *fd_r, struct buf *error_r)
{
	char *path = config_path(cfg, rel);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		buf_printf(error_r, "cannot open %s: %s", path, strerror(errno));
		free(path);
		return IX_EIO;
	}
	free(path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return IX_EEXIST;
	}
	*fd_r = fd;
	return IX_OK;
}

/* Waits (bounded) until every service started says it is ready, so `start` returns when the system answers.
 * A service that dies or stays silent is left to supervision (restart with backoff, forever). */
static void wait_services_ready(struct attendant *a)
{
	unsigned long long deadline = now_usec() + ATTENDANT_READY_TIMEOUT_MS * 1000ULL;
	for (size_t i = 0; i < a->nservices; i++) {
		struct service *s = &a->services[i];
		if (s->ready_pipe < 0)
			continue;
		for (;;) {
			long long left = (long long)(deadline - now_usec()) / 1000;
			struct pollfd pfd = { s->ready_pipe, POLLIN, 0 };
			int n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0)
				on_service_ready(a->loop, s->ready_pipe, EVLOOP_READ, s);
			else /* (the loop goes on watching its pipe) */
				log_warn("%s did not say it was ready (it may have failed to start; see log/%s.log)",
					 s->name, s->name);
			break;
		}
	}
}

/* Stops the services in reverse order: SIGTERM (they close sessions politely), then SIGKILL after a grace. */
static void stop_services(struct attendant *a)
{
	for (size_t i = a->nservices; i-- > 0;) {
		struct service *s = &a->services[i];
		evloop_timer_stop(a->loop, &s->restart_timer);
		if (s->pid > 0)
			kill(s->pid, SIGTERM);
	}
	unsigned long long deadline = now_usec() + ATTENDANT_STOP_GRACE_MS * 1000ULL;
	for (size_t i = a->nservices; i-- > 0;) {
		struct service *s = &a->services[i];
		while (s->pid > 0) {
			int status;
			pid_t w = waitpid(s->pid, &status, WNOHANG);
			if (w == s->pid || (w < 0 && errno == ECHILD)) {
				s->pid = 0;
				break;
			}
			if (now_usec() > deadline) {
				log_warn("%s (pid %ld) did not stop in time: killing it", s->name, (long)s->pid);
				kill(s->pid, SIGKILL);
				waitpid(s->pid, &status, 0);
				s->pid = 0;
				break;
			}
			usleep(10000);
		}
		s->state = SVC_STOPPED;
		ready_pipe_close(a, s);
		if (s->attendant_pipe >= 0) {
			close(s->attendant_pipe);
			s->attendant_pipe = -1;
		}
	}
}

/* Tells the waiting `interchange start` the outcome: "ok" (error NULL) or "error: reason". */
static void report(int *ready_fd, const char *error)
{
	if (*ready_fd < 0)
		return;
	struct buf b = BUF_INIT;
	if (error == NULL)
		buf_append_str(&b, "ok\n");
	else
		buf_printf(&b, "error: %s\n", error);
	(void)write_full(*ready_fd, b.data, b.len);
	buf_free(&b);
	close(*ready_fd);
	*ready_fd = -1;
}

int attendant_run(struct config *cfg, int ready_fd)
{
	struct attendant a = { .cfg = cfg,
			       .slapd_lock_fd = -1,
			       .log_fd = -1,
			       .control_fd = -1,
			       .changed_lock = PTHREAD_MUTEX_INITIALIZER };
	repl_follow_init(&a.repl, cfg);
	struct buf err = BUF_INIT;
	int attendant_lock = -1, ret = 1;
	a.slapd.name = "slapd";
	a.slapd.a = &a;
	a.slapd.attendant_pipe = -1;
	a.self.attendant_pipe = -1;
	a.self.name = "attendant";
	for (size_t i = 0; attendant_services[i].name != NULL; i++) {
		/* every daemon of the installation runs: one that is missing is a broken installation, said in words */
		char *program = paths_find(attendant_services[i].program, &err);
		int fd = program != NULL ? open(program, O_RDONLY | O_CLOEXEC) : -1;
		if (program != NULL && fd < 0)
			buf_printf(&err, "cannot open %s: %s", program, strerror(errno));
		free(program);
		if (fd < 0) {
			buf_printf(&err, " (the %s service cannot run: install Interchange again)",
				   attendant_services[i].name);
			goto out;
		}
		struct service *svc = &a.services[a.nservices++];
		svc->name = attendant_services[i].name;
		svc->program = attendant_services[i].program;
		svc->prog_fd = fd;
		svc->a = &a;
		svc->attendant_pipe = -1;
		svc->ready_pipe = -1;
	}
	/* started as root: everything from here on runs as the service user, keeping only the right to bind low
	 * ports (inherited by slapd and the services) */
	if (privs_drop(cfg->user, 1, &err) != IX_OK)
		goto out;

	/* libldap writes to sockets slapd may have closed (docs/slapd-facts.md, "SIGPIPE and lost connections") */
	signal(SIGPIPE, SIG_IGN);
	setenv("LDAPNOINIT", "1", 1);
	char *slapd_log = config_log_path(cfg, "slapd.log");
	a.log_fd = log_to_journal() ? fcntl(2, F_DUPFD_CLOEXEC, 3)
				    : open(slapd_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	free(slapd_log);

	int r = take_lock(cfg, ATTENDANT_LOCK, &attendant_lock, &err);
	/* an attendant killed a moment ago holds the lock until it has exited, and a service it was forking holds it
	 * until it runs its program: wait for that (bounded), never for an attendant that runs (a supervisor's
	 * Restart= runs start the moment the attendant died) */
	unsigned long long lock_deadline = now_usec() + ORPHAN_KILL_WAIT_MS * 1000ULL;
	while (r == IX_EEXIST && orphan_exiting((pid_t)orphan_read_pid(cfg, ATTENDANT_PID)) &&
	       now_usec() < lock_deadline) {
		usleep(10000);
		r = take_lock(cfg, ATTENDANT_LOCK, &attendant_lock, &err);
	}
	if (r == IX_EEXIST) {
		buf_printf(&err, "Interchange is already running at %s", cfg->data_dir);
		goto out;
	} else if (r != IX_OK) {
		goto out;
	}
	/* every local user reads the certificate in the data folder's public part: a folder an older version made has
	 * none until now, and after `cert renew` this publishes the new one */
	struct buf publish_err = BUF_INIT;
	if (bootstrap_publish_cert(cfg, &publish_err) != IX_OK)
		log_warn("%s", buf_cstr(&publish_err));
	buf_free(&publish_err);
	/* an attendant killed without a stop (SIGKILL, the OOM killer) left slapd running, and maybe services still
	 * closing: stop those of this data folder cleanly, then start as usual */
	struct orphan orphans[ORPHAN_MAX];
	size_t norphans = orphan_find(cfg, orphans, ORPHAN_MAX);
	if (norphans > 0) {
		struct buf list = BUF_INIT;
		for (size_t i = 0; i < norphans; i++)
			buf_printf(&list, "%s%s (pid %ld)", i ? ", " : "", orphans[i].name, (long)orphans[i].pid);
		log_warn("processes of an earlier run are still running (its attendant was killed?): %s; stopping them",
			 buf_cstr(&list));
		buf_free(&list);
		size_t left = orphan_stop(orphans, norphans);
		if (left > 0)
			log_error("%zu processes of the earlier run did not stop", left);
		else
			log_info("the processes of the earlier run have stopped");
	}
	r = take_lock(cfg, SLAPD_LOCK, &a.slapd_lock_fd, &err);
	if (r == IX_EEXIST) {
		buf_printf(&err,
			   "a directory server from an earlier run is still running (see %s/%s): stop it with "
			   "'interchange stop --data %s'",
			   cfg->data_dir, SLAPD_PIDFILE, cfg->data_dir);
		goto out;
	} else if (r != IX_OK) {
		goto out;
	}
	if (data_folder_check(cfg, &err) != IX_OK)
		goto out;
	char *pidpath = config_path(cfg, ATTENDANT_PID);
	char pidtext[32];
	int pidlen = snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)getpid());
	write_file_atomic(pidpath, pidtext, (size_t)pidlen, 0640);
	free(pidpath);

	if (evloop_create(&a.loop, &err) != IX_OK)
		goto out;
	evloop_signal(a.loop, SIGTERM, on_stop_signal, &a, NULL);
	evloop_signal(a.loop, SIGINT, on_stop_signal, &a, NULL);
	evloop_signal(a.loop, SIGHUP, on_sighup, &a, NULL);
	evloop_signal(a.loop, SIGCHLD, on_sigchld, &a, NULL);
	a.self.pid = getpid();
	a.self.state = SVC_RUNNING;
	a.self.started = time(NULL);

	log_info("starting the directory (slapd)");
	/* cn=config must be manageable over ldapi for replication to follow the servers (directory/replication_config.c) */
	if (repl_prepare_config(cfg, &err) != IX_OK) {
		log_warn("replication: %s", buf_cstr(&err));
		buf_reset(&err);
	}
	if (start_slapd(&a, &err) != IX_OK)
		goto out_stop;
	for (size_t i = 0; i < a.nservices; i++) {
		if (start_service(&a, &a.services[i], &err) != IX_OK)
			goto out_stop;
	}
	wait_services_ready(&a);
	if (open_control(&a, &err) != IX_OK)
		goto out_stop;
	/* the replica tells us of new recipients within milliseconds; the slow sweep catches anything missed */
	char *ldapi = config_ldapi_uri(cfg);
	if (evloop_async_create(a.loop, on_dir_changed_loop, &a, &a.dir_changed, &err) != IX_OK ||
	    dir_open(ldapi, cfg->suffix, &a.dir, &err) != IX_OK) {
		free(ldapi);
		goto out_stop;
	}
	free(ldapi);
	dir_set_change_hook(a.dir, on_dir_change, &a);
	if (bindlog_start(cfg, &a.bindlog, &err) != IX_OK)
		goto out_stop;
	if (dir_wait_ready(a.dir, SLAPD_READY_TIMEOUT_MS) != IX_OK)
		log_warn("the directory replica is not ready yet; address generation sweeps every %d ms meanwhile",
			 ATTENDANT_ADDRESS_SWEEP_MS);
	evloop_timer_start(a.loop, &a.address_timer, 0, ATTENDANT_ADDRESS_SWEEP_MS, address_tick, &a);
	maintenance_init(&a.maint);
	a.last_tlsrpt = time(NULL);
	a.last_dmarc = a.last_tlsrpt;
	evloop_timer_start(a.loop, &a.maint_timer, MAINT_TICK_MS, MAINT_TICK_MS, maint_tick, &a);
	evloop_timer_start(a.loop, &a.rotate_timer, ATTENDANT_LOG_CHECK_MS, ATTENDANT_LOG_CHECK_MS, rotate_tick, &a);
	{
		char *cert = config_path(cfg, "tls/cert.pem"), *key = config_path(cfg, "tls/key.pem");
		file_changed(cert, &a.cert_st);
		file_changed(key, &a.key_st);
		free(cert);
		free(key);
	}
	evloop_timer_start(a.loop, &a.cert_timer, ATTENDANT_CERT_CHECK_MS, ATTENDANT_CERT_CHECK_MS, cert_tick, &a);
	sync_followers_start(cfg, MAINT_PURGE_INTERVAL_S, &a.syncs);
	a.history = xmalloc(sizeof(*a.history));
	history_init(a.history);
	{ /* from now on: what the tracking log holds already is not this hour's flow */
		char *track = config_path(cfg, TRACK_LOG_FILE);
		struct stat st;
		if (stat(track, &st) == 0) {
			a.history->ino = st.st_ino;
			a.history->offset = st.st_size;
		}
		free(track);
	}
	evloop_timer_start(a.loop, &a.history_timer, HISTORY_INTERVAL_S * 1000, HISTORY_INTERVAL_S * 1000, history_tick,
			   &a);
	if (metrics_server_create(a.loop, cfg->ports[PORT_METRICS], render_metrics, &a, &a.metrics, &err) != IX_OK) {
		buf_printf(&err, " (the metrics port %u; choose another with init --metrics-port)",
			   cfg->ports[PORT_METRICS]);
		goto out_stop;
	}
	log_info("Interchange is running at %s", cfg->data_dir);
	report(&ready_fd, NULL);
	/* run by systemd (Type=notify): ready now, and the watchdog pinged at half its period */
	sd_notifyf(0, "READY=1\nSTATUS=Interchange is running at %s\nMAINPID=%ld", cfg->data_dir, (long)getpid());
	uint64_t watchdog_usec = 0;
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec >= 2000)
		evloop_timer_start(a.loop, &a.watchdog_timer, 0, watchdog_usec / 2000, watchdog_tick, &a);
	evloop_run(a.loop);
	ret = 0;

out_stop:
	a.stopping = 1;
	evloop_timer_stop(a.loop, &a.address_timer);
	evloop_timer_stop(a.loop, &a.rotate_timer);
	evloop_timer_stop(a.loop, &a.maint_timer);
	evloop_timer_stop(a.loop, &a.cert_timer);
	evloop_timer_stop(a.loop, &a.watchdog_timer);
	evloop_timer_stop(a.loop, &a.history_timer);
	if (a.history != NULL)
		history_free(a.history);
	free(a.history);
	sync_followers_stop(&a.syncs);
	maintenance_free(&a.maint);
	evloop_timer_stop(a.loop, &a.slapd.restart_timer);
	prov_close(&a.prov);
	metrics_server_destroy(&a.metrics);
	bindlog_stop(&a.bindlog);
	if (a.dir != NULL)
		dir_set_change_hook(a.dir, NULL, NULL);
	dir_destroy(&a.dir);
	evloop_async_destroy(&a.dir_changed);
	for (size_t i = 0; i < a.nchanged; i++)
		free(a.changed[i]);
	free(a.changed);
	stop_services(&a);
	if (a.slapd.pid > 0) {
		log_info("stopping slapd (pid %ld)", (long)a.slapd.pid);
		slapd_stop(a.slapd.pid, SLAPD_STOP_TIMEOUT_MS);
		a.slapd.pid = 0;
	}
	if (a.control_fd >= 0) {
		evloop_fd_remove(a.loop, a.control_fd);
		close(a.control_fd);
		unlink(a.control_path);
	}
	char *pp = config_path(cfg, ATTENDANT_PID);
	unlink(pp);
	free(pp);
	log_info("stopped");
out:
	if (err.len > 0) {
		log_error("%s", buf_cstr(&err));
		report(&ready_fd, buf_cstr(&err));
		sd_notifyf(0, "STATUS=could not start: %s", buf_cstr(&err));
	}
	if (ready_fd >= 0)
		close(ready_fd);
	evloop_destroy(&a.loop);
	free(a.control_path);
	for (size_t i = 0; i < a.nservices; i++)
		close(a.services[i].prog_fd);
	if (a.slapd_lock_fd >= 0)
		close(a.slapd_lock_fd);
	if (attendant_lock >= 0)
		close(attendant_lock);
	if (a.log_fd >= 0)
		close(a.log_fd);
	buf_free(&err);
	return ret;
}
