/* repl_follow.c - the attendant's side of replication: a server entry changed (noted from the replica's thread),
 * so slapd's cn=config is brought in step on the loop; old data folders are upgraded on the first run. */
#include "attendant/repl_follow.h"
#include "common/err.h"
#include "common/log.h"
#include "directory/replication.h"
#include "directory/upgrade.h"

#include <stdio.h>
#include <string.h>

void repl_follow_init(struct repl_follow *f, const struct config *cfg)
{
	memset(f, 0, sizeof(*f));
	f->cfg = cfg;
	atomic_init(&f->servers_changed, 0);
}

int repl_follow_note(struct repl_follow *f, const char *dn)
{
	int hit = repl_server_dn(f->cfg, dn);
	if (hit)
		atomic_store(&f->servers_changed, 1);
	return hit;
}

/* The in-place upgrades of a data folder made by an older version; f->upgraded once every one succeeded (each is
 * idempotent, so one that failed, say slapd too busy to answer in time, is tried again at the next sweep). */
static void run_upgrades(struct repl_follow *f, struct buf *err)
{
	unsigned added = 0, replaced = 0, changes = 0, total = 0;
	int failed = 0;
	if (upgrade_schema(f->cfg, &added, &replaced, err) == IX_OK) {
		if (added + replaced > 0)
			log_info("schema: added %u definitions this directory lacked and replaced %u older ones", added,
				 replaced);
		buf_reset(err);
		if (upgrade_server_ports(f->cfg, &changes, err) != IX_OK) {
			failed = 1;
			log_warn("this server's ports in the directory: %s", buf_cstr(err));
		} else if (changes > 0)
			log_info("directory: %u ports added to this server's entry", changes);
		buf_reset(err);
		total += changes;
		changes = 0;
		if (upgrade_refint(f->cfg, &changes, err) != IX_OK) {
			failed = 1;
			log_warn("references kept to live entries (refint): %s", buf_cstr(err));
		} else if (changes > 0)
			log_info("directory: %u attributes added to those refint keeps free of deleted entries",
				 changes);
	} else {
		log_warn("schema check: %s", buf_cstr(err));
		failed = 1;
	}
	buf_reset(err);
	total += changes;
	changes = 0;
	if (upgrade_security(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("securing the directory: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("directory: %u changes for TLS off the loopback listener (see docs/multi-server.md)", changes);
	buf_reset(err);
	total += changes;
	changes = 0;
	if (upgrade_accesslog(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("replication: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("replication: added the access log (cn=accesslog) that delta-syncrepl replays");
	buf_reset(err);
	total += changes;
	changes = 0;
	if (upgrade_passwords(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("password policy: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info(
			"password policy: %u changes (the ppolicy overlay, the policy entry, passwords stored in clear "
			"now hashed)",
			changes);
	buf_reset(err);
	total += changes;
	/* before the application rules, which name the POSIX attributes */
	changes = 0;
	if (upgrade_posix(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("POSIX accounts: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("directory: %u changes for POSIX accounts and groups (the RFC 2307bis schema, its index)",
			 changes);
	buf_reset(err);
	total += changes;
	changes = 0;
	if (upgrade_index(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("indexes: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("directory: %u changes of indexes (sync sources' recipients, names and addresses)", changes);
	buf_reset(err);
	changes = 0;
	if (upgrade_sasl(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("binds by login or address: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("directory: %u changes for SASL PLAIN binds by login or address", changes);
	buf_reset(err);
	total += changes;
	changes = 0;
	if (upgrade_applications(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("application accounts: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("directory: %u changes for application accounts (ou=Applications and its access rules)",
			 changes);
	buf_reset(err);
	total += changes;
	changes = 0;
	if (upgrade_address_book(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("address book details: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("directory: %u changes for the address book's person details (directReports, hidden "
			 "recipients kept out of member and manager values)",
			 changes);
	buf_reset(err);
	total += changes;
	changes = 0;
	if (upgrade_roles(f->cfg, &changes, err) != IX_OK) {
		failed = 1;
		log_warn("administrative roles: %s", buf_cstr(err));
	} else if (changes > 0)
		log_info("directory: %u changes for the administrative roles (ou=Roles and its access rules)", changes);
	buf_reset(err);
	total += added + replaced + changes;
	f->upgraded = !failed;
	if (!failed)
		log_info("directory: up to date with this version (%u changes made)", total);
}

void repl_follow_sync(struct repl_follow *f, int force)
{
	if (!atomic_exchange(&f->servers_changed, 0) && !force)
		return;
	struct buf err = BUF_INIT;
	if (!f->upgraded)
		run_upgrades(f, &err);
	int changed = 0;
	if (repl_sync_config(f->cfg, &changed, &err) != IX_OK) {
		/* the periodic sweep would repeat the same warning every time: say it once */
		if (strncmp(f->last_error, buf_cstr(&err), sizeof(f->last_error) - 1) != 0)
			log_warn("replication: %s", buf_cstr(&err));
		snprintf(f->last_error, sizeof(f->last_error), "%s", buf_cstr(&err));
	} else {
		f->last_error[0] = '\0';
		if (changed)
			log_info("replication: slapd's providers follow the servers in the directory now");
	}
	buf_free(&err);
}
