# transport/smtp.mk - the SMTP server (ix-smtpd), the message transfer agent (ix-mta), the durable queue,
# DSNs, the outbound SMTP client; their unit, fuzz and end-to-end tests, and the SMTP benchmark.
SMTP_SRCS := transport/queue.c transport/dsn.c transport/mta_route.c transport/smtp_client.c
SMTP_LIB := $(BUILD)/libsmtp.a

$(SMTP_LIB): $(call objs,$(SMTP_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

PROGRAMS += $(BUILD)/ix-smtpd $(BUILD)/ix-mta
$(BUILD)/ix-smtpd: $(call objs,transport/smtpd_main.c transport/smtpd.c) $(SMTP_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) -lresolv

$(BUILD)/ix-mta: $(call objs,transport/mta_main.c transport/mta.c) $(SMTP_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) -lresolv

SMTP_TESTS := test_queue test_dsn test_mta
UNIT_TESTS += $(foreach t,$(SMTP_TESTS),$(BUILD)/tests/unit/$(t))
$(foreach t,$(SMTP_TESTS),$(BUILD)/tests/unit/$(t)): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o \
		$(BUILD)/tests/unit/test.o $(SMTP_LIB) $(NET_LIB) $(DIR_LIB) $(DIRECTORY_LIB) $(STORE_LIB) \
		$(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDAP_LIBS) $(LMDB_LIBS) $(SSL_LIBS) $(SASL_LIBS) -lresolv

FUZZ_TARGETS += dsn
FUZZ_LIBS_dsn := $(SMTP_LIB) $(NET_LIB)

E2E_TESTS += tests/e2e/test_smtp.py

# the end-to-end tests' view into the store
PROGRAMS += $(BUILD)/transport/smtpd_probe
$(BUILD)/transport/smtpd_probe: $(call objs,transport/smtpd_probe.c) $(SMTP_LIB) $(STORE_LIB) $(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LMDB_LIBS) $(SSL_LIBS)

# make bench: the load generator; run without arguments it starts tests/bench/bench_smtp.py
BENCHES += $(BUILD)/transport/bench_smtp
$(BUILD)/transport/bench_smtp: $(call objs,transport/bench_smtp.c) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^
