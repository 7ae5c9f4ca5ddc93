/* status_json.h - the facts of `interchange status --json` and GET /api/v1/status as one JSON object (jansson), made
 * in one place for both: the installation's configuration, the attendant's answer, the replication with the other
 * servers. */
#ifndef IX_STATUS_JSON_H
#define IX_STATUS_JSON_H

#include "common/config.h"
#include "directory/replication.h"

#include <jansson.h>

/* {"running", "data", "domain", "hostname", "ldap": {...}, "ports": {...}, the members of the attendant's "status"
 * answer ("services", "directory", "store", "disk", "queue", "maintenance", "certificate", "sync", "warnings"; NULL
 * or no JSON object: not running, "services": []), "replication": [{"server", "id", "state", "in_step",
 * "replicating"}] of peers but this server}. A new reference. */
json_t *status_json(const struct config *cfg, const char *attendant_answer, const struct repl_peer *peers,
		    size_t npeers);

#endif
