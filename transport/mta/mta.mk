# transport/mta/ - the message transfer agent: the durable queue, DSNs, routing by the directory, the outbound
# SMTP client (libmta.a) and the ix-mta daemon; their unit and fuzz tests.
MTA_SRCS := transport/mta/queue.c transport/mta/track.c transport/mta/dsn.c transport/mta/mta_route.c transport/mta/smtp_client.c \
	transport/mta/dkim.c transport/mta/dkim_key.c transport/mta/arc.c transport/mta/authres.c \
	transport/mta/authres_field.c transport/mta/dns.c transport/mta/mta_sieve.c transport/mta/mta_oof.c \
	transport/mta/mta_sts.c transport/mta/tlsrpt.c transport/mta/dayrec.c transport/mta/dmarcrpt.c transport/mta/dkim_domain.c transport/mta/queue_json.c
MTA_LIB := $(BUILD)/libmta.a
# the checks on the way in (transport/mta/authres.c): libspf2, libopendkim and libopendmarc
AUTHRES_LIBS := -lspf2 -lopendkim -lopendmarc
# the validating DNS resolver (transport/mta/dns.c)
DNS_LIBS := -lunbound

$(MTA_LIB): $(call objs,$(MTA_SRCS))
	$(archive)

PROGRAMS += $(BUILD)/ix-mta
$(BUILD)/ix-mta: $(call objs,transport/mta/mta_main.c transport/mta/mta.c) $(MTA_LIB) $$(SIEVE_LIB) $$(SMTP_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) $(DNS_LIBS)

MTA_TESTS := test_queue test_dsn test_mta test_dkim test_authres
UNIT_TESTS += $(foreach t,$(MTA_TESTS),$(BUILD)/tests/unit/$(t))
$(foreach t,$(MTA_TESTS),$(BUILD)/tests/unit/$(t)): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o \
		$(BUILD)/tests/unit/test.o $(MTA_LIB) $$(SMTP_LIB) $$(NET_LIB) $$(DIR_LIB) $$(DIRECTORY_LIB) \
		$$(STORE_LIB) $$(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDAP_LIBS) $(LMDB_LIBS) $(ICU_LIBS) $(SSL_LIBS) $(SASL_LIBS) $(AUTHRES_LIBS) $(DNS_LIBS)

E2E_TESTS += tests/e2e/test_dkim.py
E2E_TESTS += tests/e2e/test_authres.py
E2E_TESTS += tests/e2e/test_arc.py

# make bench: server CPU per message leaving the organisation, DKIM signing off and on
BENCHES += $(BUILD)/bench-dkim
$(BUILD)/bench-dkim: tests/bench/bench_dkim.py
	$(py_bench)

# make bench: ix-smtpd CPU per message from outside, the checks on the way in off and on (SPF, DKIM)
BENCHES += $(BUILD)/bench-authres
$(BUILD)/bench-authres: tests/bench/bench_authres.py
	$(py_bench)

FUZZ_TARGETS += dsn
FUZZ_LIBS_dsn = $(MTA_LIB) $(SMTP_LIB) $(NET_LIB)

# the end-to-end tests' view into the DNS module (tests/e2e/test_dns.py)
PROGRAMS += $(BUILD)/transport/dns_probe
$(BUILD)/transport/dns_probe: $(call objs,transport/mta/dns_probe.c) $(MTA_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DNS_LIBS)
E2E_TESTS += tests/e2e/test_dns.py
E2E_TESTS += tests/e2e/test_dane.py
