/* sync_int.h - what the files of sync sources share: a source's settings as read from its entry, and its
 * connection to the source. Not for use outside directory/sync_*.c. */
#ifndef IX_SYNC_INT_H
#define IX_SYNC_INT_H

#include "directory/sync.h"

/* Our attributes a source's entries fill, with the attribute of the source each one is read from. */
enum sync_attr {
	SA_LOGIN,
	SA_GIVEN,
	SA_SURNAME,
	SA_CN,
	SA_DISPLAY,
	SA_MAIL,
	SA_ADDRESSES,
	SA_ANCHOR,
	SA_TITLE,
	SA_PHONE,
	SA_COUNT
};
/* Our name of each (what --map takes on the left). */
extern const char *const sync_attr_names[SA_COUNT];

struct sync_conf {
	char *dn, *name, *type, *uri, *bind_dn, *base, *filter, *groups_base, *server_dn;
	char *their[SA_COUNT]; /* NULL: not read */
};

/* The DN of source name's entry (a new string). */
char *sync_source_dn(const struct config *cfg, const char *name);
/* Reads source name's entry into c (free with sync_conf_free). IX_ENOTFOUND with a sentence when there is none. */
int sync_conf_load(struct prov *p, const struct config *cfg, const char *name, struct sync_conf *c,
		   struct buf *error_r);
void sync_conf_free(struct sync_conf *c);
/* Connects and binds to the source with the password this server keeps for it (StartTLS and the source's
 * certificate checked unless the URI is local). */
int sync_connect(const struct config *cfg, const struct sync_conf *c, LDAP **ld_r, struct buf *error_r);
/* Removes the password and the CA certificates this server keeps for source name. */
void sync_secret_remove(const struct config *cfg, const char *name);
/* The present time as an LDAP generalized time (YYYYMMDDHHMMSSZ). */
void sync_now(char out[16]);

#endif
