/* cmd_queue.c - the MTA's commands: interchange queue list|show|flush|delete, interchange track (the queue files and
 * the tracking log, read directly; transport/mta/queue.h) and interchange connector add|list|del (directory entries). */
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/provision.h"
#include "transport/mta/queue.h"
#include "transport/mta/queue_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char queue_help[] =
	"usage: interchange queue list [--json]\n"
	"       interchange queue show ID\n"
	"       interchange queue flush\n"
	"       interchange queue delete ID\n\n"
	"The mail queue: messages the transfer agent still has to deliver (remote recipients, and local ones that\n"
	"failed for a while). list shows each message with its recipients, attempts and last error; flush asks the\n"
	"transfer agent to retry everything now; delete drops a message without a notice to its sender.\n";

static const char track_help[] =
	"usage: interchange track ADDRESS|MESSAGE-ID\n\n"
	"Every event of the message tracking log (received, delivered, relayed, queued, deferred,\n"
	"bounced, refused: a sender, recipient or message the SMTP server refused, with its reply, and filtered:\n"
	"a mail filter's verdict and changes)\n"
	"for messages sent from or to ADDRESS, or with that Message-ID.\n";

static int queue_list_cmd(const char *qdir, bool json)
{
	char **ids;
	size_t n;
	struct buf err = BUF_INIT;
	if (queue_list(qdir, &ids, &n, &err) != 0) {
		cli_error("%s", buf_cstr(&err));
		buf_free(&err);
		return CLI_EXIT_FAIL;
	}
	long long now = (long long)time(NULL), oldest = 0;
	size_t active = 0, deferred = 0;
	json_t *messages = json_array();
	for (size_t i = 0; i < n; i++) {
		struct queue_msg m;
		buf_reset(&err);
		if (queue_read(qdir, ids[i], false, &m, &err) != 0) {
			queue_msg_free(&m);
			continue; /* delivered meanwhile */
		}
		bool is_active = false;
		for (size_t k = 0; k < m.nrcpts; k++)
			is_active |= m.rcpts[k].state == QUEUE_RCPT_PENDING && m.rcpts[k].next_try <= now;
		is_active ? active++ : deferred++;
		if (now - m.created > oldest)
			oldest = now - m.created;
		if (json) {
			json_array_append_new(messages, queue_msg_json(&m, now, false));
		} else {
			printf("%s  %6llds  <%s>\n", m.id, now - m.created, m.sender);
			for (size_t k = 0; k < m.nrcpts; k++) {
				const struct queue_rcpt *r = &m.rcpts[k];
				printf("    %-8s %s  attempts %u", queue_rcpt_state_name(r, now), r->addr, r->attempts);
				if (r->state == QUEUE_RCPT_PENDING && r->next_try > now)
					printf(", next in %llds", r->next_try - now);
				if (r->last_error[0] != '\0')
					printf("\n             last: %s", r->last_error);
				putchar('\n');
			}
		}
		queue_msg_free(&m);
	}
	if (json) {
		json_t *o = json_pack("{s:o, s:I, s:I, s:I, s:I}", "messages", json_incref(messages), "total",
				      (json_int_t)(active + deferred), "active", (json_int_t)active, "deferred",
				      (json_int_t)deferred, "oldest_age", (json_int_t)oldest);
		char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("%s\n", text != NULL ? text : "{}");
		free(text);
		json_decref(o);
	} else if (active + deferred == 0)
		printf("The queue is empty.\n");
	else
		printf("%zu message%s in the queue: %zu active, %zu deferred; the oldest is %lld seconds old.\n",
		       active + deferred, active + deferred == 1 ? "" : "s", active, deferred, oldest);
	json_decref(messages);
	queue_ids_free(&ids, n);
	buf_free(&err);
	return CLI_EXIT_OK;
}

static int queue_show_cmd(const char *qdir, const char *id)
{
	struct queue_msg m;
	struct buf err = BUF_INIT;
	int ret = queue_read(qdir, id, true, &m, &err);
	if (ret != 0) {
		if (ret == IX_ENOTFOUND)
			cli_error("no message %s in the queue (delivered, bounced or deleted)", id);
		else
			cli_error("%s", buf_cstr(&err));
		buf_free(&err);
		queue_msg_free(&m);
		return CLI_EXIT_FAIL;
	}
	long long now = (long long)time(NULL);
	printf("Queue id: %s\nAge: %lld seconds\nSender: <%s>\n", m.id, now - m.created, m.sender);
	if (m.msgid[0] != '\0')
		printf("Message-ID: %s\n", m.msgid);
	if (m.auth[0] != '\0')
		printf("Submitted by: %s\n", m.auth);
	for (size_t k = 0; k < m.nrcpts; k++) {
		const struct queue_rcpt *r = &m.rcpts[k];
		printf("Recipient: %s (%s, attempts %u)%s%s\n", r->addr, queue_rcpt_state_name(r, now), r->attempts,
		       r->last_error[0] ? ": " : "", r->last_error);
	}
	printf("\n");
	fwrite(m.body.data != NULL ? m.body.data : "", 1, m.body.len, stdout);
	queue_msg_free(&m);
	buf_free(&err);
	return CLI_EXIT_OK;
}

int cmd_queue(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(queue_help, stdout);
		return CLI_EXIT_OK;
	}
	/* plain `interchange queue` (or `queue --json`) lists, as a person would expect */
	char *list_argv[] = { argv[0], (char *)"list", argc > 1 ? argv[1] : NULL, NULL };
	if (argc < 2 || (argc == 2 && strcmp(argv[1], "--json") == 0)) {
		argv = list_argv;
		argc++;
	}
	const char *verb = argv[1];
	bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
	bool ok = (strcmp(verb, "list") == 0 && (argc == 2 || json)) || (strcmp(verb, "flush") == 0 && argc == 2) ||
		  ((strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0) && argc == 3);
	if (!ok) {
		fprintf(stderr, "interchange: queue: wrong arguments\n\n%s", queue_help);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	char *qdir = config_path(&cfg, "queue");
	int ret = CLI_EXIT_OK;
	if (strcmp(verb, "list") == 0) {
		ret = queue_list_cmd(qdir, json);
	} else if (strcmp(verb, "show") == 0) {
		ret = queue_show_cmd(qdir, argv[2]);
	} else if (strcmp(verb, "delete") == 0) {
		struct buf err = BUF_INIT;
		int r = queue_remove(qdir, argv[2], &err);
		if (r == 0) {
			printf("Deleted %s from the queue; its sender is not notified.\n", argv[2]);
		} else {
			if (r == IX_ENOTFOUND)
				cli_error("no message %s in the queue (delivered, bounced or deleted)", argv[2]);
			else
				cli_error("%s", buf_cstr(&err));
			ret = CLI_EXIT_FAIL;
		}
		buf_free(&err);
	} else {
		struct buf err = BUF_INIT;
		if (queue_request_flush(qdir, &err) != 0) {
			cli_error("%s", buf_cstr(&err));
			ret = CLI_EXIT_FAIL;
		} else {
			printf("The transfer agent retries every queued message now.\n");
		}
		buf_free(&err);
	}
	free(qdir);
	config_free(&cfg);
	return ret;
}

/* ---- track ---- */

static void track_print(const struct track_event *e, void *ctx)
{
	size_t *shown = ctx;
	if ((*shown)++ == 0)
		printf("%-20s  %-9s  %-24s  %-30s  %-30s  %s\n", "TIME", "EVENT", "QUEUE ID", "SENDER", "RECIPIENT",
		       "DETAIL");
	printf("%-20s  %-9s  %-24s  %-30s  %-30s  %s (%s; %s)\n", e->time, e->event, e->qid, e->sender, e->rcpt,
	       e->detail, e->server, e->msgid);
}

int cmd_track(const char *data_dir, int argc, char **argv)
{
	if (argc != 2 || cli_wants_help(argc, argv)) {
		fputs(track_help, argc != 2 ? stderr : stdout);
		return argc != 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	size_t shown = 0;
	if (track_search(cfg.data_dir, argv[1], track_print, &shown) == 0)
		printf("No tracked message from or to %s, or with that Message-ID.\n", argv[1]);
	config_free(&cfg);
	return CLI_EXIT_OK;
}

/* ---- connectors ---- */

static const char connector_help[] =
	"usage: interchange connector add NAME --address-space PATTERN [--address-space PATTERN]...\n"
	"                                 --smarthost HOST[:PORT] [--cost N]\n"
	"       interchange connector list\n"
	"       interchange connector del NAME\n\n"
	"Connectors route mail for other domains: a PATTERN is a domain (example.org), a domain and its subdomains\n"
	"(*.example.org) or everything (*). The most specific match wins, then the lowest cost; connectors with\n"
	"equal cost share the load. Mail for domains no connector matches goes to the domain's MX hosts.\n";

static int connector_add(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	const struct prov_connector *c = ctx;
	int ret = prov_connector_add(p, c, err);
	if (ret == IX_OK) {
		buf_printf(out, "Added connector %s: mail for", c->name);
		for (size_t i = 0; i < c->space_count; i++)
			buf_printf(out, "%s %s", i ? "," : "", c->spaces[i]);
		buf_printf(out, " goes to %s (cost %llu)\n", c->smarthost, c->cost);
	}
	return ret;
}

static int connector_add_args(const char *data_dir, int argc, char **argv)
{
	const char *spaces[PROV_CONNECTOR_SPACES_MAX];
	struct prov_connector c = { .spaces = spaces };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--address-space") == 0 && i + 1 < argc && c.space_count < PROV_CONNECTOR_SPACES_MAX)
			spaces[c.space_count++] = argv[++i];
		else if (strcmp(a, "--smarthost") == 0 && i + 1 < argc)
			c.smarthost = argv[++i];
		else if (strcmp(a, "--cost") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], PROV_CONNECTOR_COST_MAX, &c.cost) < 0) {
				fprintf(stderr, "interchange: connector: the cost must be a number from 0 to %d\n",
					PROV_CONNECTOR_COST_MAX);
				return CLI_EXIT_USAGE;
			}
		} else if (a[0] != '-' && c.name == NULL)
			c.name = a;
		else {
			fprintf(stderr, "interchange: connector: unknown or incomplete option %s\n\n%s", a,
				connector_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (c.name == NULL || c.smarthost == NULL || c.space_count == 0) {
		fprintf(stderr, "interchange: connector add needs a NAME, --address-space and --smarthost\n\n%s",
			connector_help);
		return CLI_EXIT_USAGE;
	}
	struct buf err = BUF_INIT;
	if (prov_connector_check(&c, &err) != IX_OK) {
		cli_error("%s", buf_cstr(&err));
		buf_free(&err);
		return CLI_EXIT_USAGE;
	}
	return cli_with_prov(data_dir, connector_add, &c);
}

static int connector_list(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	(void)ctx;
	struct prov_connector *list;
	size_t n;
	int ret = prov_connector_list(p, &list, &n, err);
	if (ret == IX_OK && n == 0)
		buf_append_str(out, "No connectors: mail for other domains goes to their MX hosts.\n");
	else if (ret == IX_OK)
		buf_printf(out, "%-20s  %-6s  %-28s  %s\n", "NAME", "COST", "SMART HOST", "ADDRESS SPACES");
	for (size_t i = 0; ret == IX_OK && i < n; i++) {
		buf_printf(out, "%-20s  %-6llu  %-28s  ", list[i].name, list[i].cost,
			   list[i].smarthost != NULL ? list[i].smarthost : "-");
		for (size_t k = 0; k < list[i].space_count; k++)
			buf_printf(out, "%s%s", k ? ", " : "", list[i].spaces[k]);
		buf_append_char(out, '\n');
	}
	prov_connectors_free(&list, n);
	return ret;
}

static int connector_del(const struct config *cfg, struct prov *p, void *ctx, struct buf *out, struct buf *err)
{
	(void)cfg;
	int ret = prov_connector_del(p, ctx, err);
	if (ret == IX_OK)
		buf_printf(out, "Deleted connector %s\n", (const char *)ctx);
	return ret;
}

int cmd_connector(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(connector_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "add") == 0)
		return connector_add_args(data_dir, argc, argv);
	if (strcmp(argv[1], "list") == 0 && argc == 2)
		return cli_with_prov(data_dir, connector_list, NULL);
	if (strcmp(argv[1], "del") == 0 && argc == 3)
		return cli_with_prov(data_dir, connector_del, argv[2]);
	fprintf(stderr, "interchange: connector: wrong arguments\n\n%s", connector_help);
	return CLI_EXIT_USAGE;
}
