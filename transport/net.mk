# transport/net.mk - the network foundation: event loop (common/evloop.c), TLS, buffered connections,
# SASL, and the SMTP protocol parser. Everything lands in libnet.a; daemons link it with COMMON_LIB.
NET_SRCS := common/evloop.c
NET_LIB := $(BUILD)/libnet.a
NET_LDLIBS :=

$(NET_LIB): $(call objs,$(NET_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

UNIT_TESTS += $(BUILD)/tests/unit/test_evloop
$(BUILD)/tests/unit/test_evloop: $(call objs,tests/unit/test_evloop.c tests/unit/test.c) $(NET_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(NET_LDLIBS)
