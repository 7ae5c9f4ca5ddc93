/* api.h - the REST API of ix-httpd under /api/v1/ (docs/api.md): JSON in and out, every call made in the directory as
 * the caller (HTTP Basic or a session cookie), so that the directory's access rules and the administrative roles
 * decide; each change recorded in the audit log. */
#ifndef IX_API_H
#define IX_API_H

#include "common/config.h"
#include "transport/http/http_server.h"

/* The path every route of the API starts with. */
#define API_PREFIX "/api/v1/"
/* Sessions of the console: how many at once (past it the one closest to its end is dropped), how long one lasts from
 * sign-in, and its cookie. */
#define API_SESSIONS 256
#define API_SESSION_SECONDS 3600
#define API_SESSION_COOKIE "ix_session"
/* The header a session's unsafe request (POST, PUT, PATCH, DELETE) must carry with the session's CSRF token. */
#define API_CSRF_HEADER "X-CSRF-Token"
/* Pagination of lists: the page size when none is asked, and the largest one. */
#define API_PAGE_DEFAULT 100
#define API_PAGE_MAX 1000
/* Failed sign-ins the API's guard tracks at once (keys per table, common/throttle.h). */
#define API_GUARD_CAPACITY 4096

struct dir;
struct settings;
struct api;

/* cfg (the data folder's configuration) and dir (the live replica) outlive the API. */
struct api *api_create(const struct config *cfg, struct dir *dir);
/* Frees; sets *api to NULL (every session is forgotten). */
void api_destroy(struct api **api);
/* New sign-in limits from this server's settings (auth.*), the same every service applies. */
void api_settings(struct api *api, const struct settings *s);
/* Answers a request whose path starts with API_PREFIX (on any listener: a plain one gets 403 and a sentence). */
void api_handle(struct api *api, const struct http_request *req, struct http_response *resp);

#endif
