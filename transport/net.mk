# transport/net.mk - the network foundation: event loop (common/evloop.c), TLS, buffered connections,
# SASL, and the SMTP protocol parser. Everything lands in libnet.a; daemons link it with COMMON_LIB.
NET_SRCS := common/evloop.c transport/tls.c transport/conn.c transport/sasl.c \
	transport/smtp_parse.c transport/smtp_session.c
NET_LIB := $(BUILD)/libnet.a
NET_LDLIBS := $(SSL_LIBS) $(SASL_LIBS)

$(NET_LIB): $(call objs,$(NET_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

NET_TESTS := test_evloop test_tls test_conn test_smtp_parse
UNIT_TESTS += $(foreach t,$(NET_TESTS),$(BUILD)/tests/unit/$(t))
$(foreach t,$(NET_TESTS),$(BUILD)/tests/unit/$(t)): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o \
		$(BUILD)/tests/unit/test.o $(NET_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(NET_LDLIBS)

FUZZ_TARGETS += smtp_cmd smtp_addr
FUZZ_LIBS_smtp_cmd := $(NET_LIB)
FUZZ_LIBS_smtp_addr := $(NET_LIB)
