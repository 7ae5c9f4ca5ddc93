# transport/smtp/ - the SMTP protocol (parser, session state machine: libsmtp.a) and the SMTP server
# (ix-smtpd: SMTP, submission); their unit, fuzz and end-to-end tests, the store probe and the SMTP benchmark.
SMTP_SRCS := transport/smtp/smtp_parse.c transport/smtp/smtp_session.c
SMTP_LIB := $(BUILD)/libsmtp.a

$(SMTP_LIB): $(call objs,$(SMTP_SRCS))
	$(archive)

PROGRAMS += $(BUILD)/ix-smtpd
$(BUILD)/ix-smtpd: $(call objs,transport/smtp/smtpd_main.c transport/smtp/smtpd.c transport/smtp/smtpd_milter.c) \
		$$(MTA_LIB) $$(SIEVE_LIB) $$(MILTER_LIB) $(SMTP_LIB) $$(IMAPURL_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) $(AUTHRES_LIBS) $(DNS_LIBS)

UNIT_TESTS += $(BUILD)/tests/unit/test_smtp_parse
$(BUILD)/tests/unit/test_smtp_parse: $(call objs,tests/unit/test_smtp_parse.c tests/unit/test.c) $(SMTP_LIB) \
		$$(NET_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(SSL_LIBS) $(SASL_LIBS)

FUZZ_TARGETS += smtp_cmd smtp_addr
FUZZ_LIBS_smtp_cmd := $(SMTP_LIB)
FUZZ_LIBS_smtp_addr := $(SMTP_LIB)

E2E_TESTS += tests/e2e/test_smtp.py
E2E_TESTS += tests/e2e/test_limits.py
E2E_TESTS += tests/e2e/test_stop.py
E2E_TESTS += tests/e2e/test_submission.py
E2E_TESTS += tests/e2e/test_smtputf8.py

# the end-to-end tests' view into the store
PROGRAMS += $(BUILD)/transport/smtpd_probe
$(BUILD)/transport/smtpd_probe: $(call objs,transport/smtp/smtpd_probe.c) $$(MTA_LIB) $(SMTP_LIB) $$(STORE_LIB) \
		$$(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LMDB_LIBS) $(ICU_LIBS) $(SSL_LIBS)

# make bench: the load generator; run without arguments it starts tests/bench/bench_smtp.py
BENCHES += $(BUILD)/transport/bench_smtp
$(BUILD)/transport/bench_smtp: $(call objs,transport/smtp/bench_smtp.c) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

# make bench: resident memory of ix-smtpd and ix-imapd while many clients are midway through large messages
BENCHES += $(BUILD)/bench-memory
$(BUILD)/bench-memory: transport/smtp/bench_memory.py
	$(py_bench)
