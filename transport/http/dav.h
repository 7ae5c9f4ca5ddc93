/* dav.h - the read-only CardDAV address book of ix-httpd under /dav/ (RFC 6352, with RFC 6578 sync-collection and
 * RFC 6764 discovery; docs/carddav.md): HTTP Basic over TLS, every read made in the directory as the signed-in user,
 * so the directory's access rules decide what the address book shows. */
#ifndef IX_DAV_H
#define IX_DAV_H

#include "common/config.h"
#include "transport/http/http_server.h"

/* The path every CardDAV resource starts with, and the discovery path of RFC 6764 that redirects to it. */
#define DAV_PREFIX "/dav/"
#define DAV_WELL_KNOWN "/.well-known/carddav"
/* Failed sign-ins the CardDAV guard tracks at once (keys per table, common/throttle.h). */
#define DAV_GUARD_CAPACITY 4096
/* Entries per page of the directory searches (the directory's size limit applies per page). */
#define DAV_PAGE 500

struct dir;
struct settings;
struct dav;

/* cfg (the data folder's configuration) and dir (the live replica) outlive the address book. */
struct dav *dav_create(const struct config *cfg, struct dir *dir);
void dav_destroy(struct dav **dav);
/* New sign-in limits from this server's settings (auth.*), the same every service applies. */
void dav_settings(struct dav *dav, const struct settings *s);
/* Answers a request whose path is DAV_WELL_KNOWN or starts with DAV_PREFIX, any method. On the plain listener it
 * redirects to the same path over HTTPS (no password crosses the network in clear). */
void dav_handle(struct dav *dav, const struct http_request *req, struct http_response *resp);

#endif
