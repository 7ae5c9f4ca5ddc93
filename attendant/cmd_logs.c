/* cmd_logs.c - interchange logs [SERVICE] [--follow] [--lines N]: the end of a service's log in the log folder
 * (config_log_path: DATA/log/SERVICE.log, or the installation's), and with --follow the lines as they come, across
 * rotations. */
#include "attendant/cli.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGS_DEFAULT_LINES 50
#define LOGS_MAX_LINES 100000
#define LOGS_FOLLOW_POLL_US 200000

static const char logs_help[] =
	"usage: interchange logs [SERVICE] [--follow] [--lines N]\n\n"
	"Shows the last lines (default 50) of a service's log: attendant (the default), slapd, or any service\n"
	"listed by 'interchange status'. --follow keeps printing new lines until interrupted, across log\n"
	"rotations. Logs live in DATA/log/, those of the installation's default data folder in its log folder\n"
	"(/var/log/interchange for the Debian package); under systemd they go to the journal (journalctl -u\n"
	"interchange) instead.\n";

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Prints the last n lines of fd's file; leaves the offset at the end. */
static void print_tail(int fd, unsigned long n)
{
	lseek(fd, file_tail_offset(fd, n), SEEK_SET);
	char chunk[8192];
	ssize_t r;
	while ((r = read(fd, chunk, sizeof(chunk))) > 0)
		(void)write_full(1, chunk, (size_t)r);
}

static void list_logs(const char *logdir)
{
	DIR *d = opendir(logdir);
	if (d == NULL)
		return;
	fprintf(stderr, "logs in %s:", logdir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".log") == 0)
			fprintf(stderr, " %.*s", (int)(len - 4), e->d_name);
	}
	closedir(d);
	fputc('\n', stderr);
}

int cmd_logs(const char *data_dir, int argc, char **argv)
{
	static const struct option opts[] = { { "follow", no_argument, NULL, 'f' },
					      { "lines", required_argument, NULL, 'n' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	int follow = 0;
	unsigned long long lines = LOGS_DEFAULT_LINES;
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "fn:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': follow = 1; break;
		case 'n':
			if (parse_uint(optarg, LOGS_MAX_LINES, &lines) < 0) {
				cli_error("--lines takes a number up to %d, not \"%s\"", LOGS_MAX_LINES, optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h': fputs(logs_help, stdout); return CLI_EXIT_OK;
		default: cli_error("logs: unknown or incomplete option %s", argv[optind - 1]); return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		cli_error("logs takes at most one SERVICE");
		return CLI_EXIT_USAGE;
	}
	const char *service = optind < argc ? argv[optind] : "attendant";
	for (const char *p = service; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
			cli_error("\"%s\" is not a service name", service);
			return CLI_EXIT_USAGE;
		}
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	char *logdir = config_log_path(&cfg, NULL);
	char *path = xasprintf("%s/%s.log", logdir, service);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = CLI_EXIT_OK;
	if (fd < 0) {
		cli_error("there is no log for %s (%s)", service, strerror(errno));
		list_logs(logdir);
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	print_tail(fd, (unsigned long)lines);
	if (follow) {
		signal(SIGINT, on_interrupt);
		signal(SIGTERM, on_interrupt);
		struct stat st;
		fstat(fd, &st);
		ino_t ino = st.st_ino;
		char chunk[8192];
		while (!interrupted) {
			ssize_t r = read(fd, chunk, sizeof(chunk));
			if (r > 0) {
				(void)write_full(1, chunk, (size_t)r);
				continue;
			}
			struct stat now;
			/* rotated (a new file under the name) or truncated (copy-truncate): start over on it */
			if (stat(path, &now) == 0 && now.st_ino != ino) {
				int nfd = open(path, O_RDONLY | O_CLOEXEC);
				if (nfd >= 0) {
					close(fd);
					fd = nfd;
					ino = now.st_ino;
					continue;
				}
			} else if (fstat(fd, &now) == 0 && now.st_size < lseek(fd, 0, SEEK_CUR)) {
				lseek(fd, 0, SEEK_SET);
				continue;
			}
			usleep(LOGS_FOLLOW_POLL_US);
		}
	}
	close(fd);
out:
	free(path);
	free(logdir);
	config_free(&cfg);
	return ret;
}
