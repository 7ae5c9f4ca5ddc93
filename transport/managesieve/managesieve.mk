# transport/managesieve/ - ManageSieve (RFC 5804): the pure command parser, the answers and script commands over the
# store, the sessions on the login core (libmanagesieve.a) and the ix-managesieved daemon; their tests.
MANAGESIEVE_SRCS := transport/managesieve/managesieve_parse.c transport/managesieve/managesieve_exec.c \
	transport/managesieve/managesieve_session.c
MANAGESIEVE_LIB := $(BUILD)/libmanagesieve.a

$(MANAGESIEVE_LIB): $(call objs,$(MANAGESIEVE_SRCS))
	$(archive)

PROGRAMS += $(BUILD)/ix-managesieved
$(BUILD)/ix-managesieved: $(call objs,transport/managesieve/managesieved.c) $(MANAGESIEVE_LIB) $$(SIEVE_LIB) $$(LOGIN_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS)

UNIT_TESTS += $(BUILD)/tests/unit/test_managesieve_parse
$(BUILD)/tests/unit/test_managesieve_parse: $(call objs,tests/unit/test_managesieve_parse.c tests/unit/test.c) \
		$(MANAGESIEVE_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

FUZZ_TARGETS += managesieve
FUZZ_LIBS_managesieve := $(MANAGESIEVE_LIB)

# the answers and the script commands over a real store
UNIT_TESTS += $(BUILD)/tests/unit/test_managesieve_exec
$(BUILD)/tests/unit/test_managesieve_exec: $(call objs,tests/unit/test_managesieve_exec.c tests/unit/test.c) \
		$(MANAGESIEVE_LIB) $$(SIEVE_LIB) $$(STORE_TEST_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(STORE_LDLIBS)

# sieve-connect (Debian) against the running system; the protocol's errors with a raw client
E2E_TESTS += tests/e2e/test_managesieve.py
