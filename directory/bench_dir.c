/* bench_dir.c - directory benchmark: address resolutions per second from the replica and from a plain slapd search
 * over ldapi side by side, and the replica's change latency, on a real system with 10,000 users. */
#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "directory/dir.h"
#include "common/config.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "common/util.h"

extern char **environ;

#define BENCH_USERS 10000
#define BENCH_CHANGES 50
#define BENCH_REPLICA_USEC 1000000ULL /* time spent resolving from the replica */
#define BENCH_SEARCH_USEC 2000000ULL  /* time spent searching slapd */
#define BENCH_CHANGE_TIMEOUT_USEC 5000000ULL
#define BENCH_PATH_MAX 4096
#define BENCH_THREADS_MAX 8

static char ix_bin[BENCH_PATH_MAX];
static char data_dir[BENCH_PATH_MAX];

/* Runs argv (quietly unless it fails) and returns its exit status. */
static int run(const char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "bench_dir: cannot run %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static unsigned free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		fatal("bench_dir: cannot find a free port");
	close(fd);
	return ntohs(sa.sin_port);
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

static void cleanup(void)
{
	if (data_dir[0] == '\0')
		return;
	const char *stop[] = { ix_bin, "stop", "--data", data_dir, NULL };
	run(stop);
	char *parent = xstrdup(data_dir);
	*strrchr(parent, '/') = '\0';
	const char *rm[] = { "/bin/rm", "-rf", parent, NULL };
	run(rm);
	free(parent);
	data_dir[0] = '\0';
}

static int setup(const char *argv0, char **ldapi_r)
{
	const char *build = getenv("IX_BUILD");
	if (build != NULL) {
		snprintf(ix_bin, sizeof(ix_bin), "%s/interchange", build);
	} else {
		/* $(BUILD)/directory/bench_dir -> $(BUILD)/interchange */
		snprintf(ix_bin, sizeof(ix_bin), "%s", argv0);
		char *slash = strrchr(ix_bin, '/');
		if (slash != NULL)
			*slash = '\0';
		slash = strrchr(ix_bin, '/');
		size_t keep = slash != NULL ? (size_t)(slash - ix_bin) + 1 : 0;
		snprintf(ix_bin + keep, sizeof(ix_bin) - keep, "interchange");
	}
	if (access(ix_bin, X_OK) != 0) {
		fprintf(stderr, "bench_dir: %s not found (build it first)\n", ix_bin);
		return -1;
	}
	char tmpl[] = "/tmp/ixbench-XXXXXX";
	if (mkdtemp(tmpl) == NULL)
		fatal("bench_dir: mkdtemp: %s", strerror(errno));
	snprintf(data_dir, sizeof(data_dir), "%s/d", tmpl);

	char ports[PORT_COUNT][16], names[PORT_COUNT][32];
	const char *init[16 + 2 * PORT_COUNT] = { ix_bin,
						  "init",
						  "--data",
						  data_dir,
						  "--domain",
						  "example.com",
						  "--admin-password",
						  "bench-admin",
						  "--hostname",
						  "mail1.example.com" };
	size_t n = 10;
	for (int i = 0; i < PORT_COUNT; i++) {
		snprintf(names[i], sizeof(names[i]), "--%s-port", config_port_name(i));
		snprintf(ports[i], sizeof(ports[i]), "%u", free_port());
		init[n++] = names[i];
		init[n++] = ports[i];
	}
	init[n] = NULL;
	if (run(init) != 0) {
		fprintf(stderr, "bench_dir: interchange init failed\n");
		return -1;
	}

	/* 10,000 users loaded offline (slapadd while slapd is stopped, docs/slapd-facts.md, "slapadd bypasses overlays"). */
	unsigned long long t0 = now_usec();
	char *ldif_path = xasprintf("%s/users.ldif", data_dir);
	FILE *f = fopen(ldif_path, "w");
	if (f == NULL)
		fatal("bench_dir: %s: %s", ldif_path, strerror(errno));
	for (unsigned i = 0; i < BENCH_USERS; i++) {
		fprintf(f,
			"dn: uid=u%05u,ou=Recipients,dc=example,dc=com\nobjectClass: inetOrgPerson\n"
			"objectClass: ixRecipient\nobjectClass: ixMailUser\nuid: u%05u\ncn: User %05u\nsn: %05u\n"
			"givenName: User\nixMailboxGuid: %032x\n"
			"ixHomeServer: cn=mail1.example.com,ou=Servers,ou=Configuration,dc=example,dc=com\n"
			"ixProxyAddresses: SMTP:user.%05u@example.com\nixProxyAddresses: smtp:u%05u@example.com\n"
			"mail: user.%05u@example.com\n\n",
			i, i, i, i, i + 1, i, i, i);
	}
	fclose(f);
	char *conf = xasprintf("%s/directory/slapd.d", data_dir);
	const char *slapadd[] = { "/usr/sbin/slapadd", "-q", "-n1", "-F", conf, "-l", ldif_path, NULL };
	int rc = run(slapadd);
	free(conf);
	free(ldif_path);
	if (rc != 0) {
		fprintf(stderr, "bench_dir: slapadd failed\n");
		return -1;
	}
	printf("loaded %d users with slapadd in %.2f s\n", BENCH_USERS, (double)(now_usec() - t0) / 1e6);
	const char *start[] = { ix_bin, "start", "--data", data_dir, NULL };
	if (run(start) != 0) {
		fprintf(stderr, "bench_dir: interchange start failed\n");
		return -1;
	}
	char *sock = xasprintf("%s/run/ldapi", data_dir);
	*ldapi_r = ldapu_ldapi_uri(sock);
	free(sock);
	return 0;
}

/* CPU time used so far by this thread, in nanoseconds. */
static double thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU time used so far by slapd (user + system), in nanoseconds; -1 when unknown. */
static double slapd_cpu_ns(void)
{
	char *path = xasprintf("%s/run/slapd.pid", data_dir);
	char *text = NULL;
	size_t len;
	double ns = -1;
	if (read_file(path, 64, &text, &len) == 0) {
		char *stat = xasprintf("/proc/%ld/stat", strtol(text, NULL, 10));
		char *st = NULL;
		if (read_file(stat, 4096, &st, &len) == 0) {
			/* Fields 14 and 15 (utime, stime, in clock ticks) follow the ")" that ends the command name. */
			char *p = strrchr(st, ')');
			unsigned long long utime = 0, stime = 0;
			if (p != NULL &&
			    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2)
				ns = (double)(utime + stime) * 1e9 / (double)sysconf(_SC_CLK_TCK);
			free(st);
		}
		free(stat);
		free(text);
	}
	free(path);
	return ns;
}

/* This process's resident memory in kB (VmRSS), or 0. */
static unsigned long rss_kb(void)
{
	char *text = NULL;
	size_t len;
	unsigned long kb = 0;
	if (read_file("/proc/self/status", 1 << 16, &text, &len) == 0) {
		const char *p = strstr(text, "VmRSS:");
		if (p != NULL)
			kb = strtoul(p + 6, NULL, 10);
		free(text);
	}
	return kb;
}

static double replica_cpu_ns_per_op;
static double search_cpu_ns_per_op, search_slapd_ns_per_op;

static double bench_replica(struct dir *dir, char **addrs)
{
	double cpu0 = thread_cpu_ns();
	unsigned long long start = now_usec(), end = start + BENCH_REPLICA_USEC, count = 0, misses = 0;
	unsigned seed = 1;
	while (now_usec() < end) {
		for (int i = 0; i < 1000; i++) {
			seed = seed * 1103515245u + 12345u;
			struct dir_recipient r;
			if (dir_resolve(dir, addrs[(seed >> 8) % (2 * BENCH_USERS)], &r) != IX_OK)
				misses++;
			dir_recipient_release(&r);
		}
		count += 1000;
	}
	double rate = (double)count / ((double)(now_usec() - start) / 1e6);
	replica_cpu_ns_per_op = (thread_cpu_ns() - cpu0) / (double)count;
	if (misses > 0)
		printf("  (replica: %llu lookups missed!)\n", misses);
	return rate;
}

struct reader {
	struct dir *dir;
	char **addrs;
	unsigned seed;
	unsigned long long end, count;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	while (now_usec() < rd->end) {
		for (int i = 0; i < 1000; i++) {
			rd->seed = rd->seed * 1103515245u + 12345u;
			struct dir_recipient r;
			dir_resolve(rd->dir, rd->addrs[(rd->seed >> 8) % (2 * BENCH_USERS)], &r);
			dir_recipient_release(&r);
		}
		rd->count += 1000;
	}
	return NULL;
}

/* Resolutions per second with n threads resolving at once. */
static double bench_threads(struct dir *dir, char **addrs, unsigned n)
{
	struct reader rd[BENCH_THREADS_MAX];
	unsigned long long start = now_usec();
	for (unsigned i = 0; i < n; i++) {
		rd[i] = (struct reader){ dir, addrs, i + 11, start + BENCH_REPLICA_USEC, 0, 0 };
		pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]);
	}
	unsigned long long total = 0;
	for (unsigned i = 0; i < n; i++) {
		pthread_join(rd[i].thread, NULL);
		total += rd[i].count;
	}
	return (double)total / ((double)(now_usec() - start) / 1e6);
}

static double bench_search(const char *ldapi, char **addrs)
{
	LDAP *ld;
	struct buf error = BUF_INIT, filter = BUF_INIT;
	if (ldapu_connect_external(ldapi, &ld, &error) != IX_OK) {
		fprintf(stderr, "bench_dir: %s\n", buf_cstr(&error));
		buf_free(&error);
		return 0;
	}
	char *attrs[] = { "mail", "ixHomeServer", "ixMailboxGuid", "objectClass", NULL };
	double cpu0 = thread_cpu_ns(), slapd0 = slapd_cpu_ns();
	unsigned long long start = now_usec(), end = start + BENCH_SEARCH_USEC, count = 0, misses = 0;
	unsigned seed = 7;
	while (now_usec() < end) {
		seed = seed * 1103515245u + 12345u;
		const char *a = addrs[(seed >> 8) % (2 * BENCH_USERS)];
		buf_reset(&filter);
		buf_append_str(&filter, "(|(mail=");
		ldapu_escape_filter(&filter, a, strlen(a));
		buf_append_str(&filter, ")(ixProxyAddresses=smtp:");
		ldapu_escape_filter(&filter, a, strlen(a));
		buf_append_str(&filter, "))");
		LDAPMessage *res = NULL;
		int rc = ldap_search_ext_s(ld, "ou=Recipients,dc=example,dc=com", LDAP_SCOPE_SUBTREE, buf_cstr(&filter),
					   attrs, 0, NULL, NULL, NULL, 2, &res);
		if (rc != LDAP_SUCCESS || ldap_count_entries(ld, res) != 1)
			misses++;
		ldap_msgfree(res);
		count++;
	}
	double rate = (double)count / ((double)(now_usec() - start) / 1e6);
	search_cpu_ns_per_op = (thread_cpu_ns() - cpu0) / (double)count;
	double slapd1 = slapd_cpu_ns();
	search_slapd_ns_per_op = slapd0 >= 0 && slapd1 >= 0 ? (slapd1 - slapd0) / (double)count : -1;
	if (misses > 0)
		printf("  (slapd: %llu searches missed!)\n", misses);
	ldap_unbind_ext_s(ld, NULL, NULL);
	buf_free(&filter);
	buf_free(&error);
	return rate;
}

static void bench_changes(struct dir *dir, const char *ldapi)
{
	LDAP *ld;
	struct buf error = BUF_INIT;
	if (ldapu_connect_external(ldapi, &ld, &error) != IX_OK) {
		fprintf(stderr, "bench_dir: %s\n", buf_cstr(&error));
		buf_free(&error);
		return;
	}
	unsigned long long total[BENCH_CHANGES], after[BENCH_CHANGES];
	size_t n = 0, lost = 0;
	for (unsigned i = 0; i < BENCH_CHANGES; i++) {
		char dn[128], value[160], address[128];
		snprintf(dn, sizeof(dn), "uid=u%05u,ou=Recipients,dc=example,dc=com", i * 97 % BENCH_USERS);
		snprintf(address, sizeof(address), "changed%u@example.com", i);
		snprintf(value, sizeof(value), "smtp:%s", address);
		char *vals[] = { value, NULL };
		LDAPMod mod = { .mod_op = LDAP_MOD_ADD, .mod_type = "ixProxyAddresses", .mod_values = vals };
		LDAPMod *mods[] = { &mod, NULL };
		unsigned long long t0 = now_usec();
		int rc = ldap_modify_ext_s(ld, dn, mods, NULL, NULL);
		unsigned long long t1 = now_usec();
		if (rc != LDAP_SUCCESS) {
			fprintf(stderr, "bench_dir: modify %s: %s\n", dn, ldap_err2string(rc));
			break;
		}
		struct dir_recipient r;
		while (dir_resolve(dir, address, &r) != IX_OK && now_usec() - t0 < BENCH_CHANGE_TIMEOUT_USEC)
			;
		unsigned long long t2 = now_usec();
		if (r.entry_ == NULL) {
			lost++;
			continue;
		}
		dir_recipient_release(&r);
		total[n] = t2 - t0;
		after[n] = t2 - t1;
		n++;
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	buf_free(&error);
	if (n == 0)
		return;
	qsort(total, n, sizeof(total[0]), cmp_ull);
	qsort(after, n, sizeof(after[0]), cmp_ull);
	size_t p99 = (n * 99 + 99) / 100 - 1;
	printf("replica change latency over %zu modifies (modify sent -> visible to dir_resolve): median %.2f ms, "
	       "p99 %.2f ms\n",
	       n, (double)total[n / 2] / 1000.0, (double)total[p99] / 1000.0);
	printf("  of which after the modify's reply: median %.2f ms, p99 %.2f ms%s\n", (double)after[n / 2] / 1000.0,
	       (double)after[p99] / 1000.0, lost ? " (some changes never arrived!)" : "");
}

int main(int argc, char **argv)
{
	(void)argc;
	setenv("LDAPNOINIT", "1", 1);
	atexit(cleanup); /* also after fatal(): stop the system and remove its folder */
	char *ldapi = NULL;
	if (setup(argv[0], &ldapi) != 0) {
		cleanup();
		return 1;
	}
	char **addrs = xcalloc(2 * BENCH_USERS, sizeof(char *));
	for (unsigned i = 0; i < BENCH_USERS; i++) {
		addrs[2 * i] = xasprintf("User.%05u@Example.com", i);
		addrs[2 * i + 1] = xasprintf("u%05u@example.com", i);
	}
	struct dir *dir;
	struct buf error = BUF_INIT;
	unsigned long long t0 = now_usec();
	unsigned long rss0 = rss_kb();
	int ret = dir_open(ldapi, "dc=example,dc=com", &dir, &error);
	if (ret == IX_OK && dir_wait_ready(dir, 60000) == IX_OK) {
		struct dir_status st;
		dir_status(dir, &st);
		printf("replica loaded %zu entries (%zu recipients) in %.0f ms, %.1f MB resident\n", st.entries,
		       st.recipients, (double)(now_usec() - t0) / 1000.0, (double)(rss_kb() - rss0) / 1024.0);
		double replica = bench_replica(dir, addrs);
		struct dir_status st2;
		dir_status(dir, &st2);
		if (st2.changes != st.changes)
			printf("  (%llu changes were applied while resolving)\n", st2.changes - st.changes);
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		unsigned nthreads = cpus < 2 ? 2 : cpus > BENCH_THREADS_MAX ? BENCH_THREADS_MAX : (unsigned)cpus;
		double threaded = bench_threads(dir, addrs, nthreads);
		double search = bench_search(ldapi, addrs);
		printf("address resolutions per second: replica %.0f (%.0f ns each), slapd search over ldapi %.0f "
		       "(one connection); replica/slapd = %.0fx (goals: >= 1,000,000/s and >= 250x)\n",
		       replica, 1e9 / replica, search, search > 0 ? replica / search : 0.0);
		double search_cpu = search_cpu_ns_per_op + (search_slapd_ns_per_op > 0 ? search_slapd_ns_per_op : 0);
		printf("CPU per resolution: replica %.0f ns (%.0f per CPU-second); slapd search %.1f us (client %.1f + "
		       "slapd %.1f); replica/slapd by CPU = %.0fx\n",
		       replica_cpu_ns_per_op, 1e9 / replica_cpu_ns_per_op, search_cpu / 1000.0,
		       search_cpu_ns_per_op / 1000.0, search_slapd_ns_per_op / 1000.0,
		       search_cpu / replica_cpu_ns_per_op);
		printf("replica with %u reader threads at once: %.0f resolutions per second in total\n", nthreads,
		       threaded);
		bench_changes(dir, ldapi);
	} else {
		fprintf(stderr, "bench_dir: the replica did not load: %s\n", buf_cstr(&error));
		ret = IX_EUNAVAIL;
	}
	dir_destroy(&dir);
	buf_free(&error);
	for (unsigned i = 0; i < 2 * BENCH_USERS; i++)
		free(addrs[i]);
	free(addrs);
	free(ldapi);
	cleanup();
	return ret == IX_OK ? 0 : 1;
}
