/* ixbrowse.c - a slapd module that keeps slapd 2.5's sssvlv overlay from refusing the next page of a sorted browse
 * as busy (docs/slapd-facts.md, "A browse refused as busy between two pages").
 *
 * sssvlv marks a paged or VLV browse's sort as running while a page is served and clears the mark only after it has
 * sent the page's result; a client that asks for the next page at once can be read, and its request started on
 * another worker thread, before that, and sssvlv answers it 51 "Other sort requests already in progress". So this
 * module makes a search of a connection that reaches sssvlv wait until the searches of the same connection that
 * reached sssvlv before it have returned from slapd's frontend, which is after sssvlv has cleared its mark: a
 * condition variable, at most WAIT_SECONDS, after which the search goes on as slapd alone would run it. A connection
 * that asks one thing at a time, as address-book clients do, never waits longer than the end of its previous
 * request; one that sends several searches at once has those of the directory database run one after the other.
 * sssvlv's limits (olcSssVlvMax, olcSssVlvMaxPerConn) still refuse a browse's first page when too many sorts are
 * open, since a browse holds its sort between pages.
 *
 * It wraps two search handlers: sssvlv's (registering the search, after its wait, under its connection) and the
 * frontend's, through which every search of a client comes (unregistering it when it returns). Which search is the
 * current one passes between them in a thread-local variable: slapd runs an operation on one thread, and a search
 * the operation makes inside (an access rule's, an overlay's) goes through sssvlv on that thread again, where it
 * neither waits nor registers a second time.
 *
 * Loaded into slapd (olcModuleLoad) after sssvlv and before the databases are configured (cn=module{0}), never
 * linked into our programs. slapd installs no headers: the overlay is reached through slapd's overlay_find and the
 * frontend through its frontendDB, and their search handlers are at the place slapd 2.5's BackendInfo keeps them; the
 * module changes nothing unless the frontend's is slapd's own fe_op_search and the overlay's start matches what
 * sssvlv 2.5.13 sets: it then says so in slapd's log and stays loaded but idle (a browse may be refused as busy again,
 * which clients survive, where refusing to load would keep slapd, and so every service, from starting after an
 * update of slapd). A search's connection comes from the start of slapd 2.5's
 * Opheader, checked against the log prefix slapd writes there ("conn=N op=M"); a search whose header does not match
 * is let through as slapd alone would run it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "directory/slapd_module.h"

/* slapd's own, resolved when slapd loads the module */
extern void *overlay_find(const char *name);
extern void **frontendDB; /* BackendDB *: its first member is its BackendInfo */
extern int fe_op_search(void *op, void *rs);

int init_module(int argc, char *argv[]);

typedef int handler_fn(void *op, void *rs);

/* slapd 2.5's struct BackendInfo as pointer-sized slots: bi_type, then bi_init, bi_config, bi_open, bi_pause,
 * bi_unpause, bi_close, bi_destroy, bi_db_init, bi_db_config, bi_db_open, bi_db_close, bi_db_destroy, bi_op_bind,
 * bi_op_unbind, bi_op_search, ... */
enum { SLOT_SEARCH = 15, SLOTS = 22 };
/* the slots up to SLOTS sssvlv 2.5.13 sets (bi_type, bi_db_init, bi_db_open, bi_db_destroy, bi_op_search) */
static const int sssvlv_set[] = { 0, 8, 10, 12, SLOT_SEARCH };

/* the longest a search waits for its connection's earlier ones */
#define WAIT_SECONDS 5

/* the start of slapd 2.5's struct Opheader (servers/slapd/slap.h), an Operation's first member */
struct opheader {
	unsigned long opid, connid;
	void *conn;
	int msgid, protocol;
	pthread_t tid;
	void *threadctx, *tmpmemctx, *tmpmfuncs, *counters;
	char log_prefix[64];
};

/* A client's search while the frontend runs it (on that thread's stack); in open_searches once it reached sssvlv. */
struct search {
	unsigned long connid;
	int open;
	struct search *next;
};

static handler_fn *frontend_orig, *sssvlv_orig;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t search_done;
static struct search *open_searches;
static _Thread_local struct search *current;

/* Whether op's header looks like slapd 2.5's; its connection's id in *connid_r. */
static int connection_of(void *op, unsigned long *connid_r)
{
	const struct opheader *h = *(struct opheader **)op;
	char prefix[sizeof(h->log_prefix)];
	if (h == NULL)
		return 0;
	int n = snprintf(prefix, sizeof(prefix), "conn=%lu op=%lu", h->connid, h->opid);
	if (n <= 0 || (size_t)n >= sizeof(prefix) || memcmp(prefix, h->log_prefix, (size_t)n + 1) != 0)
		return 0;
	*connid_r = h->connid;
	return 1;
}

/* Whether a search of s's connection other than s is open; called with lock held. */
static int connection_busy(const struct search *s)
{
	for (const struct search *o = open_searches; o != NULL; o = o->next)
		if (o != s && o->connid == s->connid)
			return 1;
	return 0;
}

static int frontend_search(void *op, void *rs)
{
	struct search s = { 0 };
	struct search *outer = current;
	current = connection_of(op, &s.connid) ? &s : NULL;
	int rc = frontend_orig(op, rs);
	current = outer;
	if (s.open) {
		pthread_mutex_lock(&lock);
		struct search **p = &open_searches;
		while (*p != &s)
			p = &(*p)->next;
		*p = s.next;
		pthread_cond_broadcast(&search_done);
		pthread_mutex_unlock(&lock);
	}
	return rc;
}

static int sssvlv_search(void *op, void *rs)
{
	struct search *s = current;
	if (s != NULL && !s->open) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += WAIT_SECONDS;
		pthread_mutex_lock(&lock);
		while (connection_busy(s))
			if (pthread_cond_timedwait(&search_done, &lock, &until) == ETIMEDOUT)
				break;
		s->next = open_searches;
		open_searches = s;
		s->open = 1;
		pthread_mutex_unlock(&lock);
	}
	return sssvlv_orig(op, rs);
}

/* What the module says when slapd is not the one it was written for. */
#define IDLE "left idle (a sorted browse may be refused as busy between its pages)"

int init_module(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	void **sssvlv = overlay_find("sssvlv");
	if (sssvlv == NULL) {
		fprintf(stderr, "ixbrowse: slapd's sssvlv module is not loaded (load it before this one)\n");
		return -1;
	}
	if (sssvlv[SLOT_SEARCH] == (void *)sssvlv_search) /* loaded twice */
		return 0;
	void **frontend = frontendDB != NULL ? (void **)frontendDB[0] : NULL;
	if (frontend == NULL || frontend[0] == NULL || strcmp(frontend[0], "frontend") != 0 ||
	    frontend[SLOT_SEARCH] != (void *)fe_op_search) {
		fprintf(stderr, "ixbrowse: slapd's frontend does not look like slapd 2.5's: " IDLE "\n");
		return 0;
	}
	if (sssvlv[0] == NULL || strcmp(sssvlv[0], "sssvlv") != 0 || !slapd_module_has(sssvlv[SLOT_SEARCH], "sssvlv")) {
		fprintf(stderr, "ixbrowse: the sssvlv overlay does not look like slapd 2.5's: " IDLE "\n");
		return 0;
	}
	for (int i = 1, k = 1; i < SLOTS; i++) {
		int set = k < (int)(sizeof(sssvlv_set) / sizeof(sssvlv_set[0])) && sssvlv_set[k] == i;
		k += set;
		if ((sssvlv[i] != NULL) != set) {
			fprintf(stderr,
				"ixbrowse: the sssvlv overlay's handlers are not where slapd 2.5 keeps them (slot %d %s): " IDLE
				"\n",
				i, sssvlv[i] != NULL ? "set" : "empty");
			return 0;
		}
	}
	pthread_condattr_t attr;
	if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&search_done, &attr) != 0) {
		fprintf(stderr, "ixbrowse: cannot make a condition variable\n");
		return -1;
	}
	pthread_condattr_destroy(&attr);
	frontend_orig = (handler_fn *)frontend[SLOT_SEARCH];
	frontend[SLOT_SEARCH] = (void *)frontend_search;
	sssvlv_orig = (handler_fn *)sssvlv[SLOT_SEARCH];
	sssvlv[SLOT_SEARCH] = (void *)sssvlv_search;
	return 0;
}
