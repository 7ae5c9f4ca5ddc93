/* cmd_move.c - interchange user move LOGIN --to SERVER: moves a mailbox to another server of the organisation
 * while mail keeps arriving. Copies over the target's IMAP port (X-IX-IMPORT, transport/imap/imap_import.c), freezes
 * the local copy, copies the rest, then changes the home server. See docs/multi-server.md, "Moving a mailbox". */
#include "attendant/cli.h"
#include "transport/imap/imap_client.h"
#include "common/err.h"
#include "directory/ldap_util.h"
#include "directory/provision.h"
#include "directory/replication.h"
#include "store/store.h"
#include "transport/net/tcp.h"
#include "transport/net/tls.h"
#include "transport/net/tls_peers.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <ldap.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MOVE_TIMEOUT_MS 120000
#define MOVE_PASSES_MAX 3
#define MOVE_PASS_SMALL 100 /* a pass that copied fewer messages is the last before the freeze */

static const char move_help[] =
	"usage: interchange user move LOGIN --to SERVER [--admin-password PW] [--data DIR]\n\n"
	"Moves the mailbox of LOGIN (folders, messages, flags, keywords, UIDs and UIDVALIDITY) from this server, its\n"
	"home, to SERVER, then makes SERVER its home. Mail that arrives meanwhile is delivered: during the last copy\n"
	"it waits in the queue and then follows the mailbox. The copy left here is frozen and removed by the\n"
	"maintenance after the grace period. The administrator password (for SERVER's IMAP service) is taken from\n"
	"this server's replication settings unless given. A move that stopped half-way finishes when run again.\n";

/* Connects to the target's IMAP port. Elsewhere than on this machine the password crosses the network: STARTTLS,
 * the certificate one the organisation publishes and naming the host as we reached it. */
static int move_connect(struct imc *c, const struct config *cfg, const char *host, unsigned port, struct buf *error_r)
{
	int ret = imc_connect_tcp(c, host, port, MOVE_TIMEOUT_MS, error_r);
	if (ret == 0)
		ret = imc_greeting(c, NULL, error_r);
	if (ret != 0 || c->loopback)
		return ret;
	c->peers = tls_peers_create(cfg->data_dir, false);
	struct tls_ctx *ctx = tls_peers_ctx(c->peers);
	if (ctx == NULL) {
		buf_printf(error_r, "no certificates of the organisation's servers to check %s against (%s/%s)", host,
			   cfg->data_dir, TLS_PEERS_FILE);
		return IX_EUNAVAIL;
	}
	struct buf cmd = BUF_INIT;
	buf_append_str(&cmd, "STARTTLS");
	ret = imc_cmd(c, &cmd, NULL, NULL, error_r);
	buf_free(&cmd);
	if (ret == 0) {
		ret = imc_tls(c, ctx, host, error_r);
		if (ret != 0 && strstr(buf_cstr(error_r), "was refused") != NULL)
			buf_printf(error_r,
				   ": it is not one the organisation's servers publish, or it does not name %s", host);
	}
	return ret;
}

/* ---- what the target holds ---- */

struct tfolder {
	char *name;
	uint32_t uidvalidity;
};

struct tfolders {
	struct tfolder *v;
	size_t n;
};

static void on_folder(void *ctx, const struct imc_resp *r)
{
	struct tfolders *f = ctx;
	const char *line = r->text;
	const struct buf *lit = r->lit;
	unsigned uv, next, sub;
	if (sscanf(line, "X-IX-IMPORT FOLDER %u %u %u", &uv, &next, &sub) != 3 || lit->len == 0)
		return;
	f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
	f->v[f->n].name = xstrndup(lit->data, lit->len);
	f->v[f->n++].uidvalidity = uv;
}

struct tmsg {
	uint32_t uid;
	unsigned flags;
	char *keywords;
};

struct tmsgs {
	struct tmsg *v;
	size_t n;
};

static void on_uid(void *ctx, const struct imc_resp *r)
{
	struct tmsgs *m = ctx;
	const char *line = r->text;
	unsigned uid, flags;
	int off = 0;
	if (sscanf(line, "X-IX-IMPORT UID %u %u%n", &uid, &flags, &off) != 2)
		return;
	m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
	m->v[m->n].uid = uid;
	m->v[m->n].flags = flags;
	m->v[m->n++].keywords = xstrdup(line[off] == ' ' ? line + off + 1 : "");
}

static void tmsgs_free(struct tmsgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].keywords);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static void tfolders_free(struct tfolders *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].name);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/* ---- one pass: make the target equal to the source ---- */

struct move_stats {
	size_t folders, messages, changed, removed;
	uint64_t bytes;
	bool no_appends; /* the target answered BAD to APPENDS (an older version): save dates are not sent */
};

/* Creates or checks the folder on the target. UIDNEXT and HIGHESTMODSEQ are raised (last) only after the final
 * copy of its messages: appends need UIDs >= UIDNEXT. */
static int folder_cmd(struct imc *c, const struct store_folder_info *f, bool raise, struct buf *error_r)
{
	struct buf cmd = BUF_INIT;
	buf_append_str(&cmd, "X-IX-IMPORT FOLDER ");
	imc_add_lit(&cmd, f->name, strlen(f->name));
	buf_printf(&cmd, " %u %u %llu %d", f->uidvalidity, raise ? f->uidnext : 0,
		   raise ? (unsigned long long)f->highestmodseq : 0ULL, f->subscribed ? 1 : 0);
	int ret = imc_cmd(c, &cmd, NULL, NULL, error_r);
	buf_free(&cmd);
	return ret;
}

static int sync_folder(struct imc *c, struct store *st, const char *guid, const struct store_folder_info *f, bool final,
		       struct move_stats *ms, struct buf *error_r)
{
	struct buf cmd = BUF_INIT;
	int ret = folder_cmd(c, f, false, error_r);
	struct tmsgs have = { 0 };
	if (ret == 0) {
		buf_append_str(&cmd, "X-IX-IMPORT UIDS ");
		imc_add_lit(&cmd, f->name, strlen(f->name));
		ret = imc_cmd(c, &cmd, on_uid, &have, error_r);
	}
	struct store_msg *msgs = NULL;
	size_t count = 0;
	if (ret == 0)
		ret = store_msg_list(st, guid, f->name, NULL, &msgs, &count, error_r);
	/* both lists are in UID order: walk them together */
	size_t i = 0, k = 0;
	uint32_t top = have.n > 0 ? have.v[have.n - 1].uid : 0;
	struct buf body = BUF_INIT;
	while (ret == 0 && (i < count || k < have.n)) {
		if (k < have.n && (i == count || have.v[k].uid < msgs[i].uid)) {
			/* expunged here since the last pass */
			buf_printf(&cmd, "X-IX-IMPORT EXPUNGE ");
			imc_add_lit(&cmd, f->name, strlen(f->name));
			buf_printf(&cmd, " %u", have.v[k].uid);
			ret = imc_cmd(c, &cmd, NULL, NULL, error_r);
			ms->removed++;
			k++;
			continue;
		}
		const struct store_msg *m = &msgs[i];
		unsigned flags = m->flags & ~(unsigned)STORE_FLAG_RECENT;
		if (k < have.n && have.v[k].uid == m->uid) {
			if (have.v[k].flags != flags || strcmp(have.v[k].keywords, m->keywords) != 0) {
				buf_printf(&cmd, "X-IX-IMPORT FLAGS ");
				imc_add_lit(&cmd, f->name, strlen(f->name));
				buf_printf(&cmd, " %u %u ", m->uid, flags);
				imc_add_lit(&cmd, m->keywords, strlen(m->keywords));
				ret = imc_cmd(c, &cmd, NULL, NULL, error_r);
				ms->changed++;
			}
			i++;
			k++;
			continue;
		}
		i++;
		if (m->uid <= top)
			continue; /* cannot happen: the target only gets messages from us, in UID order */
		buf_reset(&body);
		ret = store_fetch_body(st, guid, f->name, m->uid, 0, 0, &body, error_r);
		if (ret == IX_ENOTFOUND) {
			buf_reset(error_r);
			ret = 0; /* expunged meanwhile: the next pass removes nothing, as it never arrived */
			continue;
		}
		if (ret != 0)
			break;
		/* the save date goes along (APPENDS) when the message has one; a target too old for APPENDS answers BAD
		 * and gets APPEND from then on (its copies then have none, as before) */
		int64_t saved = 0;
		bool with_date = !ms->no_appends && store_msg_savedate(st, guid, f->name, m->uid, &saved, NULL) == 0 &&
				 saved > 0;
		for (int attempt = 0; attempt < 2; attempt++) {
			buf_printf(&cmd, "X-IX-IMPORT %s ", with_date ? "APPENDS" : "APPEND");
			imc_add_lit(&cmd, f->name, strlen(f->name));
			buf_printf(&cmd, " %u %u %lld ", m->uid, flags, (long long)m->internal_date);
			if (with_date)
				buf_printf(&cmd, "%lld ", (long long)saved);
			imc_add_lit(&cmd, m->keywords, strlen(m->keywords));
			buf_append_char(&cmd, ' ');
			imc_add_lit(&cmd, body.data, body.len);
			ret = imc_cmd(c, &cmd, NULL, NULL, error_r);
			if (!(with_date && ret == IX_EINVAL && strstr(buf_cstr(error_r), "BAD X-IX-IMPORT") != NULL))
				break;
			buf_reset(error_r);
			ms->no_appends = true;
			with_date = false;
		}
		ms->messages++;
		ms->bytes += body.len;
	}
	buf_free(&body);
	if (ret == 0 && final)
		ret = folder_cmd(c, f, true, error_r);
	store_msg_list_free(&msgs, count);
	tmsgs_free(&have);
	buf_free(&cmd);
	ms->folders++;
	return ret;
}

/* The mailbox's Sieve scripts (and which is active), sent once the mailbox is frozen here: they move with it. */
static int copy_scripts(struct imc *c, struct store *st, const char *guid, struct buf *error_r)
{
	struct buf names = BUF_INIT, active = BUF_INIT, text = BUF_INIT, cmd = BUF_INIT;
	int ret = store_sieve_list(st, guid, &names, &active, error_r);
	char *save = NULL;
	for (char *n = ret == 0 && names.data ? strtok_r(names.data, "\n", &save) : NULL; ret == 0 && n != NULL;
	     n = strtok_r(NULL, "\n", &save)) {
		buf_reset(&text);
		if (store_sieve_get(st, guid, n, &text, NULL) != 0 || text.len == 0)
			continue; /* deleted meanwhile, or empty (nothing to run) */
		buf_reset(&cmd);
		buf_append_str(&cmd, "X-IX-IMPORT SIEVE ");
		imc_add_lit(&cmd, n, strlen(n));
		buf_printf(&cmd, " %d ", strcmp(n, buf_cstr(&active)) == 0);
		imc_add_lit(&cmd, text.data, text.len);
		ret = imc_cmd(c, &cmd, NULL, NULL, error_r);
	}
	buf_free(&names);
	buf_free(&active);
	buf_free(&text);
	buf_free(&cmd);
	return ret;
}

static int sync_pass(struct imc *c, struct store *st, const char *guid, bool final, struct move_stats *ms,
		     struct buf *error_r)
{
	struct store_folder_info *list = NULL;
	size_t count = 0;
	int ret = store_folder_list(st, guid, NULL, &list, &count, error_r);
	struct tfolders there = { 0 };
	struct buf cmd = BUF_INIT;
	if (ret == 0) {
		buf_append_str(&cmd, "X-IX-IMPORT FOLDERS");
		ret = imc_cmd(c, &cmd, on_folder, &there, error_r);
	}
	/* folders deleted (or renamed away) here: deepest first */
	for (size_t t = there.n; ret == 0 && t-- > 0;) {
		bool found = false;
		for (size_t i = 0; i < count && !found; i++)
			found = strcmp(list[i].name, there.v[t].name) == 0;
		if (found || strcmp(there.v[t].name, "INBOX") == 0)
			continue;
		buf_append_str(&cmd, "X-IX-IMPORT DELETE ");
		imc_add_lit(&cmd, there.v[t].name, strlen(there.v[t].name));
		ret = imc_cmd(c, &cmd, NULL, NULL, error_r);
	}
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = sync_folder(c, st, guid, &list[i], final, ms, error_r);
	tfolders_free(&there);
	buf_free(&cmd);
	store_folder_list_free(&list, count);
	return ret;
}

static double now_secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_pass(const char *what, const struct move_stats *ms, double secs)
{
	printf("  %s: %zu folder%s, %zu message%s (%llu bytes) copied, %zu flag change%s, %zu removed, %.2f s\n", what,
	       ms->folders, ms->folders == 1 ? "" : "s", ms->messages, ms->messages == 1 ? "" : "s",
	       (unsigned long long)ms->bytes, ms->changed, ms->changed == 1 ? "" : "s", ms->removed, secs);
	fflush(stdout);
}

/* Connects to the target's directory as the administrator: StartTLS with the certificate the organisation publishes
 * (repl_peer_connect), so the password never crosses the network in clear. Done before anything is copied or
 * frozen: a target we cannot write the home server on stops the move while nothing has changed. *ld_r NULL when the
 * target publishes no directory URI (the home is then written here). */
static int target_directory(const struct config *cfg, const struct prov_move *mv, const char *password, LDAP **ld_r,
			    struct buf *error_r)
{
	*ld_r = NULL;
	if (mv->target_ldap_uri == NULL)
		return 0;
	int ret = repl_peer_connect(cfg, mv->target_ldap_uri, cfg->admin_dn, password, ld_r, error_r);
	if (ret != 0)
		buf_printf(error_r, " (the target's directory, where the home server is changed)");
	return ret;
}

/* Makes the target the home server. Written on the target's own directory first (ld), so that the target never relays
 * mail for the mailbox back here; this server learns it by replication (its deliveries meanwhile wait: the copy
 * here is frozen). Without the target's directory (ld NULL), written here. Then waits until this server's directory
 * says so, for the command to return with the routing in place. */
static int switch_home(LDAP *ld, struct prov *prov, const char *login, const char *server, const struct prov_move *mv,
		       struct buf *error_r)
{
	if (ld == NULL)
		return prov_set_home(prov, mv->dn, mv->target_dn, error_r);
	char *vals[] = { mv->target_dn, NULL };
	LDAPMod mod = { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *)"ixHomeServer", .mod_values = vals };
	LDAPMod *mods[] = { &mod, NULL };
	struct buf why = BUF_INIT;
	int ret = ldapu_modify(ld, mv->dn, mods, &why);
	if (ret != IX_OK) {
		buf_printf(error_r, "could not change the home server on %s: %s", mv->target_ldap_uri,
			   ret == IX_ENOTFOUND ? "no such user there" : buf_cstr(&why));
		buf_free(&why);
		return IX_EUNAVAIL;
	}
	buf_free(&why);
	for (int i = 0; i < 100; i++) { /* replication takes milliseconds; 10 s at most */
		struct prov_move now;
		struct buf e2 = BUF_INIT;
		bool done = prov_move_prepare(prov, login, server, &now, &e2) == 0 &&
			    strcasecmp(now.home_dn, mv->target_dn) == 0;
		prov_move_free(&now);
		buf_free(&e2);
		if (done)
			return 0;
		usleep(100 * 1000);
	}
	return prov_set_home(prov, mv->dn, mv->target_dn, error_r);
}

/* The move proper, once the directory said where; the local store is open. */
static int move_mailbox(const struct config *cfg, struct prov *prov, struct store *st, const char *login,
			const char *server, const struct prov_move *mv, const char *password, struct buf *error_r)
{
	double t0 = now_secs();
	struct imc c = { .fd = -1 };
	LDAP *ld = NULL;
	int ret = store_mailbox_ensure(st, mv->guid, error_r); /* even an empty mailbox leaves a frozen copy */
	if (ret == 0)
		ret = target_directory(cfg, mv, password, &ld, error_r);
	if (ret == 0)
		ret = move_connect(&c, cfg, mv->target_host, mv->target_imap_port, error_r);
	struct buf cmd = BUF_INIT;
	if (ret == 0) {
		buf_append_str(&cmd, "X-IX-IMPORT LOGIN ");
		imc_add_lit(&cmd, login, strlen(login));
		buf_append_char(&cmd, ' ');
		imc_add_lit(&cmd, password, strlen(password));
		ret = imc_cmd(&c, &cmd, NULL, NULL, error_r);
	}
	if (ret == 0) {
		buf_append_str(&cmd, "X-IX-IMPORT BEGIN");
		ret = imc_cmd(&c, &cmd, NULL, NULL, error_r);
	}
	struct move_stats total = { 0 };
	for (int pass = 1; ret == 0 && pass <= MOVE_PASSES_MAX; pass++) {
		struct move_stats ms = { 0 };
		double t = now_secs();
		ret = sync_pass(&c, st, mv->guid, false, &ms, error_r);
		char what[32];
		snprintf(what, sizeof(what), "copy %d", pass);
		if (ret == 0)
			print_pass(what, &ms, now_secs() - t);
		total.messages += ms.messages;
		total.bytes += ms.bytes;
		total.folders = ms.folders;
		if (ms.messages < MOVE_PASS_SMALL)
			break;
	}
	bool frozen = false;
	if (ret == 0) {
		ret = store_mailbox_freeze(st, mv->guid, server, error_r);
		frozen = ret == 0;
	}
	if (ret == 0) {
		struct move_stats ms = { 0 };
		double t = now_secs();
		ret = sync_pass(&c, st, mv->guid, true, &ms, error_r);
		if (ret == 0)
			ret = copy_scripts(&c, st, mv->guid, error_r);
		if (ret == 0)
			print_pass("final copy (mailbox frozen here)", &ms, now_secs() - t);
		total.messages += ms.messages;
		total.bytes += ms.bytes;
	}
	if (ret == 0)
		ret = switch_home(ld, prov, login, server, mv, error_r);
	if (ret == 0) {
		/* moved: sessions here are told only now (a failed switch says nothing), and the target's copy is complete
		 * (if this is lost, the copy there is its owner's home: the maintenance keeps it all the same) */
		struct buf e2 = BUF_INIT;
		if (store_mailbox_mark(st, mv->guid, STORE_MARK_MOVED, true, &e2) != 0)
			printf("  warning: open IMAP sessions here were not told of the move: %s\n", buf_cstr(&e2));
		buf_reset(&e2);
		buf_append_str(&cmd, "X-IX-IMPORT COMMIT");
		if (imc_cmd(&c, &cmd, NULL, NULL, &e2) != 0)
			printf("  warning: the copy on %s is still marked incomplete: %s\n", server, buf_cstr(&e2));
		buf_free(&e2);
	}
	if (ret != 0 && frozen) {
		/* a failure we saw (not a crash): the mailbox goes on working here; running the command again resumes */
		struct buf e2 = BUF_INIT;
		if (store_mailbox_freeze(st, mv->guid, NULL, &e2) != 0)
			buf_printf(error_r, " (and the mailbox stays frozen: %s)", buf_cstr(&e2));
		buf_free(&e2);
	}
	buf_free(&cmd);
	imc_close(&c);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	if (ret == 0)
		printf("Moved the mailbox of %s to %s: %zu folder%s, %zu message%s, %llu bytes in %.2f s; the copy on %s "
		       "stays frozen until the maintenance removes it\n",
		       login, server, total.folders, total.folders == 1 ? "" : "s", total.messages,
		       total.messages == 1 ? "" : "s", (unsigned long long)total.bytes, now_secs() - t0,
		       cfg->hostname != NULL ? cfg->hostname : "this server");
	return ret;
}

int user_move(const char *data_dir, int argc, char **argv)
{
	enum { O_TO = 1, O_PW };
	static const struct option opts[] = {
		{ "to", required_argument, NULL, O_TO },
		{ "admin-password", required_argument, NULL, O_PW },
		{ NULL, 0, NULL, 0 },
	};
	const char *to = NULL, *pw = NULL;
	if (cli_wants_help(argc, argv)) {
		fputs(move_help, stdout);
		return CLI_EXIT_OK;
	}
	optind = 2;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == O_TO)
			to = optarg;
		else if (o == O_PW)
			pw = optarg;
		else {
			fprintf(stderr, "interchange: user move: unknown or incomplete option %s\n\n%s",
				argv[optind - 1], move_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || to == NULL) {
		fprintf(stderr, "interchange: user move needs one LOGIN and --to SERVER\n\n%s", move_help);
		return CLI_EXIT_USAGE;
	}
	const char *login = argv[optind];
	struct config cfg;
	if (cli_load_config(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf err = BUF_INIT;
	struct prov *prov = NULL;
	struct prov_move mv = { 0 };
	struct store *st = NULL;
	char *password = pw != NULL ? xstrdup(pw) : NULL;
	int ret = prov_open(&cfg, &prov, &err);
	if (ret == 0)
		ret = prov_move_prepare(prov, login, to, &mv, &err);
	if (ret == 0 && strcasecmp(mv.home_dn, mv.target_dn) == 0) {
		buf_printf(&err, "the mailbox of %s is already on %s", login, to);
		ret = IX_EEXIST;
	}
	if (ret == 0 && strcasecmp(mv.home_dn, cfg.server_dn) != 0) {
		buf_printf(&err, "the mailbox of %s is not on this server (its home is %s): run the move there", login,
			   mv.home_dn);
		ret = IX_EINVAL;
	}
	if (ret == 0 && password == NULL)
		ret = repl_admin_password(&cfg, &password, &err);
	if (ret == 0) {
		char *path = config_path(&cfg, "store");
		ret = store_open(path, NULL, &st, &err);
		free(path);
	}
	if (ret == 0) {
		printf("Moving the mailbox of %s to %s (%s, IMAP port %u)\n", login, to, mv.target_host,
		       mv.target_imap_port);
		fflush(stdout);
		ret = move_mailbox(&cfg, prov, st, login, to, &mv, password, &err);
	}
	if (ret != 0)
		cli_error("user move: %s", buf_cstr(&err));
	if (password != NULL) {
		memset(password, 0, strlen(password));
		free(password);
	}
	store_close(&st);
	prov_move_free(&mv);
	prov_close(&prov);
	buf_free(&err);
	config_free(&cfg);
	return ret == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
