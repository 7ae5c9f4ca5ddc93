# transport/milter/ - the MTA side of the milter protocol (libmilter_client.a): the pure packet codec, message
# edits, and one message's conversation with each mail filter; their unit and fuzz tests.
MILTER_SRCS := transport/milter/milter_proto.c transport/milter/milter_edit.c transport/milter/milter.c
MILTER_LIB := $(BUILD)/libmilter_client.a

$(MILTER_LIB): $(call objs,$(MILTER_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_milter
$(BUILD)/tests/unit/test_milter: $(call objs,tests/unit/test_milter.c tests/unit/test.c) $(MILTER_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -pthread

FUZZ_TARGETS += milter
FUZZ_LIBS_milter := $(MILTER_LIB)
E2E_TESTS += tests/e2e/test_milter.py

# make bench: ix-smtpd's CPU per message with rspamd as a milter, next to none
BENCHES += $(BUILD)/bench-milter
$(BUILD)/bench-milter: tests/bench/bench_milter.py
	$(py_bench)
