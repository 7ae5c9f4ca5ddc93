# transport/pop3/ - POP3 (RFC 1939, 2449, 5034): the pure command parser and the sessions over the store
# (libpop3.a) and the ix-pop3d daemon; their tests.
POP3_SRCS := transport/pop3/pop3_parse.c transport/pop3/pop3_session.c
POP3_LIB := $(BUILD)/libpop3.a

$(POP3_LIB): $(call objs,$(POP3_SRCS))
	$(archive)

PROGRAMS += $(BUILD)/ix-pop3d
$(BUILD)/ix-pop3d: $(call objs,transport/pop3/pop3d.c) $(POP3_LIB) $$(LOGIN_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS)

UNIT_TESTS += $(BUILD)/tests/unit/test_pop3_parse
$(BUILD)/tests/unit/test_pop3_parse: $(call objs,tests/unit/test_pop3_parse.c tests/unit/test.c) $(POP3_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

FUZZ_TARGETS += pop3
FUZZ_LIBS_pop3 := $(POP3_LIB)

E2E_TESTS += tests/e2e/test_pop3.py
