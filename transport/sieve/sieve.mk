# transport/sieve/ - Sieve (RFC 5228 and extensions): the pure parser, the checks and the interpreter (libsieve.a),
# its unit tests (the RFCs' examples) and its fuzz target.
SIEVE_SRCS := transport/sieve/sieve_parse.c transport/sieve/sieve_check.c transport/sieve/sieve_match.c \
	transport/sieve/sieve_run.c transport/sieve/sieve_oof.c
SIEVE_LIB := $(BUILD)/libsieve.a

$(SIEVE_LIB): $(call objs,$(SIEVE_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_sieve
$(BUILD)/tests/unit/test_sieve: $(call objs,tests/unit/test_sieve.c tests/unit/test.c) $(SIEVE_LIB) $$(MIME_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcrypto

FUZZ_TARGETS += sieve
FUZZ_LIBS_sieve := $(SIEVE_LIB) $(MIME_LIB)
FUZZ_LDLIBS_sieve := -lcrypto
E2E_TESTS += tests/e2e/test_sieve.py

# make bench: ix-smtpd's CPU per delivered message with a 20-rule script next to none
BENCHES += $(BUILD)/bench-sieve
$(BUILD)/bench-sieve: tests/bench/bench_sieve.py
	$(py_bench)
