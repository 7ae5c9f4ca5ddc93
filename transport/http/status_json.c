/* status_json.c - the status facts as JSON (see status_json.h). */
#include "transport/http/status_json.h"

#include <stdlib.h>

json_t *status_json(const struct config *cfg, const char *attendant_answer, const struct repl_peer *peers,
		    size_t npeers)
{
	json_t *facts = attendant_answer != NULL ? json_loads(attendant_answer, 0, NULL) : NULL;
	bool running = json_is_object(facts);
	char *uri = config_ldap_uri(cfg), *ldapi = config_ldapi_uri(cfg);
	json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}}", "running", running, "data", cfg->data_dir,
			      "domain", cfg->domain, "hostname", cfg->hostname != NULL ? cfg->hostname : "", "ldap",
			      "uri", uri, "ldapi", ldapi, "suffix", cfg->suffix, "admin_dn", cfg->admin_dn);
	free(uri);
	free(ldapi);
	json_t *ports = json_object();
	for (int p = 0; p < PORT_COUNT; p++)
		json_object_set_new(ports, config_port_name(p), json_integer(cfg->ports[p]));
	json_object_set_new(o, "ports", ports);
	if (running)
		json_object_update(o, facts);
	else
		json_object_set_new(o, "services", json_array());
	json_decref(facts);
	json_t *repl = json_array();
	for (size_t i = 0; i < npeers; i++) {
		if (!peers[i].self)
			json_array_append_new(repl, json_pack("{s:s, s:i, s:s, s:b, s:b}", "server", peers[i].name,
							      "id", (int)peers[i].id, "state",
							      peers[i].state != NULL ? peers[i].state : "", "in_step",
							      peers[i].in_step, "replicating", peers[i].replicating));
	}
	json_object_set_new(o, "replication", repl);
	return o;
}
