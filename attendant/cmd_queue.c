/* cmd_queue.c - the MTA's commands: interchange queue list|show|flush|delete, interchange track (the queue files and
 * the tracking log, read directly; transport/mta/queue.h) and interchange connector add|list|del (directory entries). */
#include "attendant/cli.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "transport/mta/queue.h"

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

static void json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 32)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

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
	size_t active = 0, deferred = 0, shown = 0;
	if (json)
		printf("{\"messages\":[");
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
			printf("%s{\"id\":\"%s\",\"age\":%lld,\"sender\":", shown++ ? "," : "", m.id, now - m.created);
			json_str(m.sender);
			printf(",\"message_id\":");
			json_str(m.msgid);
			printf(",\"size\":%zu,\"recipients\":[", m.body.len);
			for (size_t k = 0; k < m.nrcpts; k++) {
				const struct queue_rcpt *r = &m.rcpts[k];
				printf("%s{\"address\":", k ? "," : "");
				json_str(r->addr);
				printf(",\"state\":\"%s\",\"attempts\":%u,\"next_try\":%lld,\"last_error\":",
				       queue_rcpt_state_name(r, now), r->attempts, r->next_try);
				json_str(r->last_error);
				putchar('}');
			}
			printf("]}");
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
	if (json)
		printf("],\"total\":%zu,\"active\":%zu,\"deferred\":%zu,\"oldest_age\":%lld}\n", active + deferred,
		       active, deferred, oldest);
	else if (active + deferred == 0)
		printf("The queue is empty.\n");
	else
		printf("%zu message%s in the queue: %zu active, %zu deferred; the oldest is %lld seconds old.\n",
		       active + deferred, active + deferred == 1 ? "" : "s", active, deferred, oldest);
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

/* Longest connector name, address space and smart host accepted on the command line. */
#define CONNECTOR_NAME_MAX 64
#define CONNECTOR_SPACES_MAX 100
#define CONNECTOR_COST_MAX 1000000

static const char connector_help[] =
	"usage: interchange connector add NAME --address-space PATTERN [--address-space PATTERN]...\n"
	"                                 --smarthost HOST[:PORT] [--cost N]\n"
	"       interchange connector list\n"
	"       interchange connector del NAME\n\n"
	"Connectors route mail for other domains: a PATTERN is a domain (example.org), a domain and its subdomains\n"
	"(*.example.org) or everything (*). The most specific match wins, then the lowest cost; connectors with\n"
	"equal cost share the load. Mail for domains no connector matches goes to the domain's MX hosts.\n";

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CONNECTOR_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

static bool space_ok(const char *s)
{
	return strcmp(s, "*") == 0 || (strncmp(s, "*.", 2) == 0 && config_domain_valid(s + 2)) ||
	       config_domain_valid(s);
}

static bool smarthost_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[256];
	size_t hl = colon != NULL ? (size_t)(colon - s) : strlen(s);
	if (hl == 0 || hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	unsigned long long port;
	if (colon != NULL && (parse_uint(colon + 1, 65535, &port) < 0 || port == 0))
		return false;
	return config_domain_valid(host); /* also takes dotted IPv4 addresses */
}

static int connector_connect(const char *data_dir, struct config *cfg, LDAP **ld_r)
{
	if (cli_load_config(data_dir, cfg) < 0)
		return -1;
	char *uri = config_ldapi_uri(cfg);
	struct buf err = BUF_INIT;
	int ret = ldapu_connect_external(uri, ld_r, &err);
	free(uri);
	if (ret != IX_OK) {
		cli_error("cannot reach the directory (is the system started?): %s", buf_cstr(&err));
		config_free(cfg);
	}
	buf_free(&err);
	return ret == IX_OK ? 0 : -1;
}

static char *connector_dn(const struct config *cfg, const char *name)
{
	struct buf dn = BUF_INIT;
	buf_append_str(&dn, "cn=");
	ldapu_escape_dn(&dn, name, strlen(name));
	buf_printf(&dn, ",ou=Connectors,ou=Configuration,%s", cfg->suffix);
	return buf_steal(&dn);
}

static int connector_add(const char *data_dir, int argc, char **argv)
{
	const char *name = NULL, *smarthost = NULL, *spaces[CONNECTOR_SPACES_MAX];
	size_t nspaces = 0;
	unsigned long long cost = 0;
	bool have_cost = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--address-space") == 0 && i + 1 < argc && nspaces < CONNECTOR_SPACES_MAX)
			spaces[nspaces++] = argv[++i];
		else if (strcmp(a, "--smarthost") == 0 && i + 1 < argc)
			smarthost = argv[++i];
		else if (strcmp(a, "--cost") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], CONNECTOR_COST_MAX, &cost) < 0) {
				fprintf(stderr, "interchange: connector: the cost must be a number from 0 to %d\n",
					CONNECTOR_COST_MAX);
				return CLI_EXIT_USAGE;
			}
			have_cost = true;
		} else if (a[0] != '-' && name == NULL)
			name = a;
		else {
			fprintf(stderr, "interchange: connector: unknown or incomplete option %s\n\n%s", a,
				connector_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (name == NULL || smarthost == NULL || nspaces == 0) {
		fprintf(stderr, "interchange: connector add needs a NAME, --address-space and --smarthost\n\n%s",
			connector_help);
		return CLI_EXIT_USAGE;
	}
	if (!name_ok(name)) {
		cli_error("\"%s\" is not a connector name (letters, digits, '.', '-', '_'; up to %d)", name,
			  CONNECTOR_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < nspaces; i++) {
		if (!space_ok(spaces[i])) {
			cli_error("\"%s\" is not an address space: give a domain, *.domain or *", spaces[i]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!smarthost_ok(smarthost)) {
		cli_error("\"%s\" is not a smart host: give HOST or HOST:PORT", smarthost);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	LDAP *ld;
	if (connector_connect(data_dir, &cfg, &ld) < 0)
		return CLI_EXIT_FAIL;
	char *dn = connector_dn(&cfg, name);
	char costbuf[24];
	snprintf(costbuf, sizeof(costbuf), "%llu", cost);
	char *oc[] = { "ixConnector", NULL }, *cn[] = { (char *)name, NULL }, *sh[] = { (char *)smarthost, NULL },
	     *co[] = { costbuf, NULL };
	char **sp = xcalloc(nspaces + 1, sizeof(char *));
	for (size_t i = 0; i < nspaces; i++)
		sp[i] = (char *)spaces[i];
	LDAPMod m_oc = { LDAP_MOD_ADD, "objectClass", { oc } }, m_cn = { LDAP_MOD_ADD, "cn", { cn } },
		m_sp = { LDAP_MOD_ADD, "ixAddressSpace", { sp } }, m_sh = { LDAP_MOD_ADD, "ixSmartHost", { sh } },
		m_co = { LDAP_MOD_ADD, "ixConnectorCost", { co } };
	LDAPMod *mods[] = { &m_oc, &m_cn, &m_sp, &m_sh, have_cost ? &m_co : NULL, NULL };
	int rc = ldap_add_ext_s(ld, dn, mods, NULL, NULL);
	int ret = CLI_EXIT_OK;
	if (rc == LDAP_SUCCESS) {
		printf("Added connector %s: mail for", name);
		for (size_t i = 0; i < nspaces; i++)
			printf("%s %s", i ? "," : "", spaces[i]);
		printf(" goes to %s (cost %llu)\n", smarthost, cost);
	} else if (rc == LDAP_ALREADY_EXISTS) {
		cli_error("a connector named %s exists already", name);
		ret = CLI_EXIT_FAIL;
	} else {
		cli_error("cannot add connector %s: %s", name, ldap_err2string(rc));
		ret = CLI_EXIT_FAIL;
	}
	free(sp);
	free(dn);
	ldap_unbind_ext_s(ld, NULL, NULL);
	config_free(&cfg);
	return ret;
}

static int connector_list(const char *data_dir)
{
	struct config cfg;
	LDAP *ld;
	if (connector_connect(data_dir, &cfg, &ld) < 0)
		return CLI_EXIT_FAIL;
	char *base = xasprintf("ou=Connectors,ou=Configuration,%s", cfg.suffix);
	const char *attrs[] = { "cn", "ixAddressSpace", "ixSmartHost", "ixConnectorCost", NULL };
	LDAPMessage *res = NULL;
	struct buf err = BUF_INIT;
	int rc = ldapu_search(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=ixConnector)", attrs, &res, &err);
	int ret = CLI_EXIT_OK;
	if (rc != IX_OK && rc != IX_ENOTFOUND) {
		cli_error("cannot list connectors: %s", buf_cstr(&err));
		ret = CLI_EXIT_FAIL;
	} else if (ldap_count_entries(ld, res) <= 0) {
		printf("No connectors: mail for other domains goes to their MX hosts.\n");
	} else {
		printf("%-20s  %-6s  %-28s  %s\n", "NAME", "COST", "SMART HOST", "ADDRESS SPACES");
		for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL; e = ldap_next_entry(ld, e)) {
			char *name = ldapu_get_first(ld, e, "cn"), *sh = ldapu_get_first(ld, e, "ixSmartHost"),
			     *cost = ldapu_get_first(ld, e, "ixConnectorCost");
			printf("%-20s  %-6s  %-28s  ", name ? name : "?", cost ? cost : "0", sh ? sh : "-");
			struct berval **v = ldap_get_values_len(ld, e, "ixAddressSpace");
			for (int i = 0; v != NULL && v[i] != NULL; i++)
				printf("%s%.*s", i ? ", " : "", (int)v[i]->bv_len, v[i]->bv_val);
			putchar('\n');
			ldap_value_free_len(v);
			free(name);
			free(sh);
			free(cost);
		}
	}
	ldap_msgfree(res);
	buf_free(&err);
	free(base);
	ldap_unbind_ext_s(ld, NULL, NULL);
	config_free(&cfg);
	return ret;
}

static int connector_del(const char *data_dir, const char *name)
{
	if (!name_ok(name)) {
		cli_error("\"%s\" is not a connector name", name);
		return CLI_EXIT_USAGE;
	}
	struct config cfg;
	LDAP *ld;
	if (connector_connect(data_dir, &cfg, &ld) < 0)
		return CLI_EXIT_FAIL;
	char *dn = connector_dn(&cfg, name);
	int rc = ldap_delete_ext_s(ld, dn, NULL, NULL);
	int ret = CLI_EXIT_OK;
	if (rc == LDAP_SUCCESS) {
		printf("Deleted connector %s\n", name);
	} else if (rc == LDAP_NO_SUCH_OBJECT) {
		cli_error("there is no connector named %s (see interchange connector list)", name);
		ret = CLI_EXIT_FAIL;
	} else {
		cli_error("cannot delete connector %s: %s", name, ldap_err2string(rc));
		ret = CLI_EXIT_FAIL;
	}
	free(dn);
	ldap_unbind_ext_s(ld, NULL, NULL);
	config_free(&cfg);
	return ret;
}

int cmd_connector(const char *data_dir, int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(connector_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "add") == 0)
		return connector_add(data_dir, argc, argv);
	if (strcmp(argv[1], "list") == 0 && argc == 2)
		return connector_list(data_dir);
	if (strcmp(argv[1], "del") == 0 && argc == 3)
		return connector_del(data_dir, argv[2]);
	fprintf(stderr, "interchange: connector: wrong arguments\n\n%s", connector_help);
	return CLI_EXIT_USAGE;
}
