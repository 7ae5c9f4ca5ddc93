# attendant/ - the system attendant and the `interchange` command a person types.
# Libraries from fragments that sort after this one are named with $$ (secondary expansion).
ATTENDANT_SRCS := attendant/interchange.c attendant/attendant.c attendant/cmd_system.c attendant/cmd_recipients.c attendant/cmd_app.c attendant/cmd_server.c attendant/cmd_store.c attendant/cmd_backup.c attendant/cmd_logs.c attendant/monitor.c attendant/metrics.c attendant/history.c attendant/cmd_queue.c attendant/cmd_move.c transport/imap/imap_client.c attendant/cmd_import.c attendant/import_target.c attendant/import_files.c attendant/import_users.c \
	attendant/cmd_join.c attendant/cmd_cert.c attendant/maintenance.c attendant/orphan.c attendant/repl_follow.c attendant/bootstrap.c \
	attendant/cmd_sync.c attendant/cmd_signin.c attendant/cmd_dns.c attendant/cmd_domain.c attendant/cmd_admin.c attendant/cmd_sieve.c \
	attendant/tlsrpt_report.c attendant/report_mail.c attendant/dmarc_report.c
PROGRAMS += $(BUILD)/interchange

$(BUILD)/interchange: $(call objs,$(ATTENDANT_SRCS)) $$(HTTP_LIB) $$(MTA_LIB) $$(SIEVE_LIB) $$(SYNC_LIB) $$(REPLICATION_LIB) $$(DAEMON_LIB) $$(DIR_LIB) $$(DIRECTORY_LIB) \
		$$(STORE_LIB) $$(MIME_LIB) $$(IMAPPARSE_LIB) \
		$$(NET_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDAP_LIBS) $(LMDB_LIBS) $(ICU_LIBS) $(SSL_LIBS) -lsystemd $(SASL_LIBS) $(JPEG_LIBS) $(DNS_LIBS) -lz

UNIT_TESTS += $(BUILD)/tests/unit/test_attendant
$(BUILD)/tests/unit/test_attendant: $(call objs,tests/unit/test_attendant.c tests/unit/test.c attendant/metrics.c attendant/history.c \
		attendant/monitor.c attendant/maintenance.c transport/imap/imap_client.c attendant/dmarc_report.c attendant/report_mail.c) \
		$$(MTA_LIB) $$(DIR_LIB) $$(DIRECTORY_LIB) $$(STORE_LIB) $$(MIME_LIB) $$(NET_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDAP_LIBS) $(LMDB_LIBS) $(ICU_LIBS) $(SSL_LIBS) $(SASL_LIBS) $(DNS_LIBS) -lz

# interchange user move between two servers (tests/e2e/test_multiserver.py provides the joined server)
E2E_TESTS += tests/e2e/test_move.py

# interchange import imap from Debian's Dovecot (tests/e2e/dovecot.py): folders, flags, dates, changes, master users
E2E_TESTS += tests/e2e/test_import.py

# make bench: the import rate from Debian's Dovecot (10,000 messages)
BENCHES += $(BUILD)/bench-import
$(BUILD)/bench-import: attendant/bench_import.py
	$(py_bench)

# faults around the services: kills in a burst, the directory unavailable, the attendant killed, backup and restore
E2E_TESTS += tests/e2e/test_faults.py

# make install: the layout, an installation under a temporary PREFIX that runs, init --standard-ports
E2E_TESTS += tests/e2e/test_install.py

# interchange cert install: checks, then every TLS port serves the new certificate without a restart
E2E_TESTS += tests/e2e/test_cert_install.py

# The systemd unit with this installation's folders (make install puts it in systemdunitdir).
PROGRAMS += $(BUILD)/interchange.service
$(BUILD)/interchange.service: attendant/interchange.service.in $(BUILD)/gen/paths.c
	@mkdir -p $(dir $@)
	sed -e 's|@sbindir@|$(sbindir)|g' -e 's|@statedir@|$(localstatedir)/lib/interchange|g' $< > $@

# logrotate's rules for the installation's log folder (make install puts them in sysconfdir/logrotate.d).
PROGRAMS += $(BUILD)/interchange.logrotate
$(BUILD)/interchange.logrotate: attendant/interchange.logrotate.in $(BUILD)/gen/paths.c
	@mkdir -p $(dir $@)
	sed -e 's|@logdir@|$(localstatedir)/log/interchange|g' $< > $@

# the unit passes systemd-analyze verify; the attendant speaks systemd's notify protocol (ready, watchdog, stopping)
E2E_TESTS += tests/e2e/test_systemd.py
