# transport/managesieve/ - ManageSieve (RFC 5804): the pure command parser (libmanagesieve.a); its tests.
MANAGESIEVE_SRCS := transport/managesieve/managesieve_parse.c
MANAGESIEVE_LIB := $(BUILD)/libmanagesieve.a

$(MANAGESIEVE_LIB): $(call objs,$(MANAGESIEVE_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_managesieve_parse
$(BUILD)/tests/unit/test_managesieve_parse: $(call objs,tests/unit/test_managesieve_parse.c tests/unit/test.c) \
		$(MANAGESIEVE_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

FUZZ_TARGETS += managesieve
FUZZ_LIBS_managesieve := $(MANAGESIEVE_LIB)
