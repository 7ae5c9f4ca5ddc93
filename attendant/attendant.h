/* attendant.h - the system attendant: the process `interchange start` runs. It starts slapd and waits until it
 * answers, supervises every service (restart with backoff, never given up), generates e-mail
 * addresses from recipient policies, answers status on a control socket, and stops everything cleanly. */
#ifndef IX_ATTENDANT_H
#define IX_ATTENDANT_H

#include "common/config.h"
#include "common/control.h"

/* A service that dies is always started again, after a delay that doubles with each failure in a row from the
 * setting attendant.restart_backoff_first_ms (500 ms) up to attendant.restart_backoff_max_seconds (60 s). An exit
 * with IX_EXIT_DEPENDENCY (the directory unavailable) is not a failure of the service: it is restarted after the
 * first delay, or as soon as slapd runs again. */
/* How long start waits for the services to say they listen. */
#define ATTENDANT_READY_TIMEOUT_MS 20000
/* How long the services get to close their sessions at stop before SIGKILL. */
#define ATTENDANT_STOP_GRACE_MS 10000
/* How often the address generator sweeps for recipients without a primary address, behind the replica's
 * change hook (which triggers it within milliseconds of a change). */
#define ATTENDANT_ADDRESS_SWEEP_MS 30000
/* How many changed recipients the change hook keeps for the generator to look at one by one; a larger burst is
 * looked at by one search of every recipient instead. */
#define ATTENDANT_ADDRESS_BATCH 2000
/* The service logs (config_log_path) are rotated past this size (checked every ATTENDANT_LOG_CHECK_MS), keeping
 * ATTENDANT_LOG_KEEP old files (NAME.log.1 ... .5). SIGHUP to the attendant reopens every log but slapd's (its
 * standard error), which is why the logrotate file copies and truncates. */
#define ATTENDANT_LOG_ROTATE_BYTES (10 * 1024 * 1024)
#define ATTENDANT_LOG_CHECK_MS 30000
#define ATTENDANT_LOG_KEEP 5
/* How often the attendant looks at tls/cert.pem and tls/key.pem: when they changed (interchange cert install, a
 * certbot deploy hook), slapd is told to load them (upgrade_tls_files) and the public copy is made again; the
 * services look for themselves (transport/daemon/daemon.h). */
#define ATTENDANT_CERT_CHECK_MS 5000
/* Longest control request line. */
#define ATTENDANT_MAX_REQUEST 256

/* Runs the attendant in this process until SIGTERM/SIGINT. When ready_fd >= 0, writes "ok\n" to it once the
 * system answers, or "error: reason\n" when it cannot start, then closes it. Returns the exit code. */
int attendant_run(struct config *cfg, int ready_fd);

/* A supervised daemon: a program of the installation (paths_find: beside the interchange program, else in the
 * installed libexec folder), run as PROGRAM --data DIR. */
struct service_def {
	const char *name;
	const char *program;
};
/* The services, in start order; the list ends with a NULL name. */
extern const struct service_def attendant_services[];

/* Paths of the run folder files, shared by the attendant and the commands that talk to it. */
#define ATTENDANT_LOCK "run/attendant.lock"
#define ATTENDANT_PID "run/attendant.pid"
#define ATTENDANT_SOCK CONTROL_SOCK
#define SLAPD_LOCK "run/slapd.lock"
#define SLAPD_PIDFILE "run/slapd.pid"

#endif
