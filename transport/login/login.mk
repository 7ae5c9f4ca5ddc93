# transport/login/ - what IMAP and POP3 share before and at login: the authentication jobs and the user table
# (imapd_auth.c, imapd_dir.c over the directory replica), and the proxy that hands a login on to the mailbox's
# home server (liblogin.a); the proxy's tests.
LOGIN_SRCS := transport/login/imapd_auth.c transport/login/imapd_dir.c transport/login/proxy.c \
	transport/login/proxy_parse.c
LOGIN_LIB := $(BUILD)/liblogin.a

$(LOGIN_LIB): $(call objs,$(LOGIN_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

UNIT_TESTS += $(BUILD)/tests/unit/test_proxy
$(BUILD)/tests/unit/test_proxy: $(call objs,tests/unit/test_proxy.c tests/unit/test.c) $(LOGIN_LIB) $$(NET_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(SSL_LIBS) $(SASL_LIBS)

# The proxy's parsers of backend responses.
FUZZ_TARGETS += proxy
FUZZ_LIBS_proxy = $(LOGIN_LIB)

# logins of users homed on another server, proxied there (two servers)
E2E_TESTS += tests/e2e/test_proxy.py
