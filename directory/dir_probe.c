/* dir_probe.c - a small program over the directory library for the end-to-end tests and for people: opens the
 * replica and answers commands (resolve, expand, wait, auth, status...) one line each, from argv or stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "directory/dir.h"
#include "common/settings.h"
#include "common/err.h"
#include "common/util.h"

/* Longest command line read from stdin; most words in one. */
#define PROBE_LINE_MAX 8192
#define PROBE_WORDS_MAX 8
/* Pause between two looks while waiting for a change. */
#define PROBE_POLL_USEC 200

static unsigned long long wall_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

static void print_recipient(const struct dir_recipient *r)
{
	printf("found type=%s dn=%s login=%s primary=%s host=%s guid=%s hidden=%d addresses=", dir_type_name(r->type),
	       r->dn, r->login ? r->login : "-", r->primary_address ? r->primary_address : "-",
	       r->home_server_host ? r->home_server_host : "-", r->mailbox_guid ? r->mailbox_guid : "-", r->hidden);
	for (size_t i = 0; i < r->address_count; i++)
		printf("%s%s", i ? "," : "", r->addresses[i]);
	printf(" members=%zu\n", r->member_count);
}

static bool expansion_has(struct dir *dir, const char *list, const char *dn, struct dir_expansion *exp)
{
	struct buf error = BUF_INIT;
	bool found = false;
	if (dir_expand(dir, list, exp, &error) == IX_OK) {
		struct dir_recipient probe;
		if (dir_lookup_dn(dir, dn, &probe) == IX_OK) {
			for (size_t i = 0; i < exp->count; i++) {
				if (exp->recipients[i].entry_ == probe.entry_ ||
				    strcasecmp(exp->recipients[i].dn, probe.dn) == 0)
					found = true;
			}
			dir_recipient_release(&probe);
		} else {
			for (size_t i = 0; i < exp->count; i++) {
				if (strcasecmp(exp->recipients[i].dn, dn) == 0)
					found = true;
			}
		}
	}
	buf_free(&error);
	return found;
}

static void command(struct dir *dir, int argc, char **argv)
{
	const char *cmd = argv[0];
	if (strcmp(cmd, "resolve") == 0 && argc == 2) {
		struct dir_recipient r;
		if (dir_resolve(dir, argv[1], &r) == IX_OK)
			print_recipient(&r);
		else
			printf("notfound\n");
		dir_recipient_release(&r);
	} else if (strcmp(cmd, "dn") == 0 && argc == 2) {
		struct dir_recipient r;
		if (dir_lookup_dn(dir, argv[1], &r) == IX_OK)
			print_recipient(&r);
		else
			printf("notfound\n");
		dir_recipient_release(&r);
	} else if (strcmp(cmd, "expand") == 0 && argc == 2) {
		struct dir_expansion exp;
		struct buf error = BUF_INIT;
		int ret = dir_expand(dir, argv[1], &exp, &error);
		if (ret == IX_OK) {
			printf("expanded count=%zu lists=%zu loops=%zu unresolved=%zu members=", exp.count,
			       exp.lists_visited, exp.loops_cut, exp.unresolved);
			for (size_t i = 0; i < exp.count; i++)
				printf("%s%s", i ? "|" : "", exp.recipients[i].dn);
			printf("\n");
			dir_expansion_free(&exp);
		} else {
			printf("error %s %s\n", ix_strerror(ret), buf_cstr(&error));
		}
		buf_free(&error);
	} else if (strcmp(cmd, "wait") == 0 && argc == 4) {
		/* wait ADDRESS present|absent TIMEOUT_MS: prints the wall-clock time it became so. */
		bool want = strcmp(argv[2], "present") == 0;
		unsigned long long deadline = now_usec() + strtoull(argv[3], NULL, 10) * 1000ULL;
		for (;;) {
			struct dir_recipient r;
			bool have = dir_resolve(dir, argv[1], &r) == IX_OK;
			dir_recipient_release(&r);
			if (have == want) {
				printf("ok %llu\n", wall_usec());
				break;
			}
			if (now_usec() > deadline) {
				printf("timeout\n");
				break;
			}
			usleep(PROBE_POLL_USEC);
		}
	} else if (strcmp(cmd, "wait-member") == 0 && argc == 5) {
		/* wait-member LIST DN in|out TIMEOUT_MS */
		bool want = strcmp(argv[3], "in") == 0;
		unsigned long long deadline = now_usec() + strtoull(argv[4], NULL, 10) * 1000ULL;
		for (;;) {
			struct dir_expansion exp;
			bool have = expansion_has(dir, argv[1], argv[2], &exp);
			dir_expansion_free(&exp);
			if (have == want) {
				printf("ok %llu\n", wall_usec());
				break;
			}
			if (now_usec() > deadline) {
				printf("timeout\n");
				break;
			}
			usleep(PROBE_POLL_USEC);
		}
	} else if (strcmp(cmd, "auth") == 0 && (argc == 3 || argc == 2)) {
		struct buf error = BUF_INIT;
		int ret = dir_authenticate(dir, argv[1], argc == 3 ? argv[2] : "", &error);
		printf("auth %s %s\n", ret == IX_OK ? "ok" : ret == IX_EAUTH ? "eauth" : "eunavail", buf_cstr(&error));
		buf_free(&error);
	} else if (strcmp(cmd, "ready") == 0 && argc == 2) {
		printf("ready %s\n", dir_wait_ready(dir, atoi(argv[1])) == IX_OK ? "ok" : "timeout");
	} else if (strcmp(cmd, "status") == 0) {
		struct dir_status st;
		dir_status(dir, &st);
		printf("status ready=%d connected=%d changes=%llu reconnects=%llu entries=%zu recipients=%zu "
		       "last_change=%llu\n",
		       st.ready, st.connected, st.changes, st.reconnects, st.entries, st.recipients,
		       st.last_change_usec);
	} else if (strcmp(cmd, "servers") == 0) {
		struct dir_server *servers;
		size_t count;
		dir_servers(dir, &servers, &count);
		printf("servers %zu", count);
		for (size_t i = 0; i < count; i++)
			printf(" %s:%s:smtp=%u:imap=%u", servers[i].name, servers[i].host, servers[i].smtp_port,
			       servers[i].imap_port);
		printf("\n");
		dir_servers_free(&servers, count);
	} else if (strcmp(cmd, "settings") == 0 && argc == 3) {
		/* settings SERVER-DN NAME: the effective value of one server setting */
		struct settings st;
		int r = dir_server_settings(dir, argv[1], &st);
		int id = setting_find(argv[2]);
		if (id < 0)
			printf("settings unknown-name\n");
		else
			printf("settings %s %llu%s\n", r == IX_OK ? "found" : "default", st.v[id],
			       st.set[id] ? " set" : "");
	} else if (strcmp(cmd, "domain") == 0 && argc == 2) {
		struct buf type = BUF_INIT;
		if (dir_domain_type(dir, argv[1], &type) == IX_OK)
			printf("domain yes %s\n", buf_cstr(&type));
		else
			printf("domain no\n");
		buf_free(&type);
	} else if (strcmp(cmd, "route") == 0 && argc == 2) {
		struct dir_connector c;
		if (dir_route_domain(dir, argv[1], &c) == IX_OK)
			printf("route %s %s cost=%u\n", c.name, c.smart_host, c.cost);
		else
			printf("route none\n");
		dir_connector_free(&c);
	} else if (strcmp(cmd, "now") == 0) {
		printf("now %llu\n", wall_usec());
	} else {
		printf("error unknown command or arguments: %s\n", cmd);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: dir_probe LDAPI_URI SUFFIX [COMMAND ARG...]\n"
			"  without a command, reads commands from stdin, one per line:\n"
			"  resolve ADDR | dn DN | expand LIST | wait ADDR present|absent MS |\n"
			"  wait-member LIST DN in|out MS | auth LOGIN [PASSWORD] | ready MS | status | servers |\n"
			"  domain NAME | route DOMAIN | now\n");
		return 2;
	}
	struct dir *dir;
	struct buf error = BUF_INIT;
	if (dir_open(argv[1], argv[2], &dir, &error) != IX_OK) {
		fprintf(stderr, "dir_probe: %s\n", buf_cstr(&error));
		buf_free(&error);
		return 1;
	}
	buf_free(&error);
	if (argc > 3) {
		if (dir_wait_ready(dir, 10000) != IX_OK) {
			fprintf(stderr, "dir_probe: the directory replica is not ready after 10 s\n");
			dir_destroy(&dir);
			return 1;
		}
		command(dir, argc - 3, argv + 3);
		dir_destroy(&dir);
		return 0;
	}
	char *line = xmalloc(PROBE_LINE_MAX);
	while (fgets(line, PROBE_LINE_MAX, stdin) != NULL) {
		char *words[PROBE_WORDS_MAX];
		int n = 0;
		for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w != NULL && n < PROBE_WORDS_MAX;
		     w = strtok_r(NULL, " \t\r\n", &save))
			words[n++] = w;
		if (n == 0)
			continue;
		if (strcmp(words[0], "quit") == 0)
			break;
		command(dir, n, words);
	}
	free(line);
	dir_destroy(&dir);
	return 0;
}
