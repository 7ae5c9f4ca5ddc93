# transport/imap.mk - the pure IMAP and POP3 protocol parsers (commands, SEARCH, FETCH, modified UTF-7).
IMAPPARSE_SRCS := transport/imap_parse.c transport/mutf7.c transport/pop3_parse.c \
	transport/imap_fetch.c transport/imap_search.c
IMAPPARSE_LIB := $(BUILD)/libimapparse.a

$(IMAPPARSE_LIB): $(call objs,$(IMAPPARSE_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

UNIT_TESTS += $(BUILD)/tests/unit/test_imap_parse
$(BUILD)/tests/unit/test_imap_parse: $(call objs,tests/unit/test_imap_parse.c tests/unit/test.c) $(IMAPPARSE_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

FUZZ_TARGETS += imap
FUZZ_LIBS_imap := $(IMAPPARSE_LIB)

UNIT_TESTS += $(BUILD)/tests/unit/test_mutf7
$(BUILD)/tests/unit/test_mutf7: $(call objs,tests/unit/test_mutf7.c tests/unit/test.c) $(IMAPPARSE_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

FUZZ_TARGETS += mutf7
FUZZ_LIBS_mutf7 := $(IMAPPARSE_LIB)

UNIT_TESTS += $(BUILD)/tests/unit/test_pop3_parse
$(BUILD)/tests/unit/test_pop3_parse: $(call objs,tests/unit/test_pop3_parse.c tests/unit/test.c) $(IMAPPARSE_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

FUZZ_TARGETS += pop3
FUZZ_LIBS_pop3 := $(IMAPPARSE_LIB)
