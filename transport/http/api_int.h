/* api_int.h - what the files of the REST API share (api.c: sign-in, routing, servers, queue, audit; api_recipients.c:
 * recipients and self-service; api_admin.c: the infrastructure): the request being answered and the calls that
 * answer it. Not for other callers. */
#ifndef IX_API_INT_H
#define IX_API_INT_H

#include "transport/http/api.h"
#include "common/buf.h"
#include "directory/provision.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#define TOKEN_BYTES 32
#define TOKEN_HEX (TOKEN_BYTES * 2)
/* Most path segments after API_PREFIX a route has. */
#define API_SEGMENTS 4

struct session {
	char id[TOKEN_HEX + 1], csrf[TOKEN_HEX + 1];
	char *login, *password;
	time_t expires; /* 0: free */
};

struct api {
	const struct config *cfg;
	struct dir *dir;
	struct throttle_guard *guard;
	pthread_mutex_t lock; /* sessions */
	struct session sessions[API_SESSIONS];
};

/* A request being answered: who asked, through what, and the connection made as them. */
struct call {
	struct api *api;
	const struct http_request *req;
	struct http_response *resp;
	char *login, *password;
	struct prov *prov;
	enum prov_role role;
	bool by_session;
	const char *seg[API_SEGMENTS];
	size_t nseg;
	char *path_copy;
};

/* Answers with status and body (taken). */
void reply(struct call *c, unsigned status, json_t *body);
/* Answers an error: {"error": the sentence, "status"}. */
void fail(struct call *c, unsigned status, const char *fmt, ...) IX_PRINTF(3, 4);
/* Answers a library call's failure ret with its sentence why; a refusal of the directory says who was refused. */
void fail_with(struct call *c, int ret, const struct buf *why);
/* Answers a change made: status with body (taken) on IX_OK, else as fail_with. */
void done(struct call *c, int ret, struct buf *err, unsigned status, json_t *body);
/* Whether the caller holds an administrative role. */
bool is_admin(struct call *c);
/* What the directory does not guard: true when the caller's role is role or stronger, else answers 403. */
bool require_role(struct call *c, enum prov_role role);
/* A whole number argument of the query (def when absent); false (answered) when it is not one within max. */
bool query_size(struct call *c, const char *name, size_t def, size_t max, size_t *v_r);
/* The strings of a JSON array (a NULL: none) as a new array (free() it, not its strings); false when it is no
 * array of strings. */
bool string_array(json_t *a, const char ***out_r, size_t *n_r);
/* Optional string member key of in into *v_r (NULL when absent or null); false (answered) when of another type. */
bool opt_string(struct call *c, json_t *in, const char *key, const char **v_r);
/* Whether path segment i is s. */
bool seg_is(const struct call *c, size_t i, const char *s);

/* Answers 200 with a list: the members of items (taken) that hold the query's q (without case, in any string
 * member, or in its arrays and objects), the page offset/limit of them, as {"items", "total", "offset", "limit"}. */
void reply_list(struct call *c, json_t *items);

/* A route of a table: the first segment, the number of segments, a fixed segment when there is one (the second of
 * two, else the third), the method ("GET" takes HEAD, "PATCH" takes PUT), and its handler. */
struct api_route {
	const char *what;
	size_t nseg;
	const char *sub;
	const char *method;
	void (*fn)(struct call *c, json_t *in);
};
/* Runs the route of routes[0..n) that takes the request's path and method as and returns true; else appends the
 * methods its routes take on that path to allow_r and returns false. */
bool api_table_route(struct call *c, json_t *in, const char *as, const struct api_route *routes, size_t n,
		     struct buf *allow_r);
/* The routes of api_admin.c: status, metrics, logs, connectors, sync sources, DKIM keys. */
extern const struct api_route api_admin_routes[];
extern const size_t api_admin_route_count;

/* The routes of api_recipients.c: runs the one that takes the request's path and method as (GET for HEAD, PATCH
 * for PUT) and returns true; else appends the methods its routes take on that path to allow_r and returns false. */
bool api_recipients_route(struct call *c, json_t *in, const char *as, struct buf *allow_r);

#endif
