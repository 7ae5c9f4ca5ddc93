# common/ - the small base every program links: byte strings, logging, errors, file helpers.
COMMON_SRCS := common/util.c common/log.c common/buf.c common/err.c common/config.c common/settings.c \
	common/privs.c
COMMON_LIB := $(BUILD)/libcommon.a

$(COMMON_LIB): $(call objs,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

UNIT_TESTS += $(BUILD)/tests/unit/test_common
$(BUILD)/tests/unit/test_common: $(call objs,tests/unit/test_common.c tests/unit/test.c) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^
FUZZ_TARGETS += uint
