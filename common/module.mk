# common/ - the small base every program links: byte strings, logging, errors, file helpers, settings, the event
# loop, the worker pool and the failure throttle.
COMMON_SRCS := common/util.c common/log.c common/buf.c common/err.c common/config.c common/settings.c \
	common/privs.c common/evloop.c common/utf8.c common/base64.c common/workpool.c common/throttle.c \
	common/spool.c
COMMON_LIB := $(BUILD)/libcommon.a

$(COMMON_LIB): $(call objs,$(COMMON_SRCS))
	$(archive)

COMMON_TESTS := test_common test_evloop test_utf8 test_base64 test_workpool test_throttle test_spool
UNIT_TESTS += $(foreach t,$(COMMON_TESTS),$(BUILD)/tests/unit/$(t))
$(foreach t,$(COMMON_TESTS),$(BUILD)/tests/unit/$(t)): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o \
		$(BUILD)/tests/unit/test.o $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcrypto
FUZZ_TARGETS += uint
