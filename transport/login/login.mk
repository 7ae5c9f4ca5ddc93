# transport/login/ - what IMAP and POP3 share before and at login (liblogin.a): the login core (login_session.c:
# sessions, authentication jobs, throttle, proxy hand-off, with a function table per protocol), the daemons' one
# main (login_daemon.c), the user table (login_auth.c, login_users.c over the directory replica), and the proxy
# that hands a login on to the mailbox's home server; the proxy's tests.
LOGIN_SRCS := transport/login/login_session.c transport/login/login_daemon.c transport/login/login_auth.c \
	transport/login/login_users.c transport/login/proxy.c transport/login/proxy_parse.c
LOGIN_LIB := $(BUILD)/liblogin.a

$(LOGIN_LIB): $(call objs,$(LOGIN_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_proxy
$(BUILD)/tests/unit/test_proxy: $(call objs,tests/unit/test_proxy.c tests/unit/test.c) $(LOGIN_LIB) $$(NET_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(SSL_LIBS) $(SASL_LIBS)

# The proxy's parsers of backend responses.
FUZZ_TARGETS += proxy
FUZZ_LIBS_proxy = $(LOGIN_LIB)

# logins of users homed on another server, proxied there (two servers)
E2E_TESTS += tests/e2e/test_proxy.py
# password guessing: throttling by address and account, "temporarily blocked", slapd's lockout (every service)
E2E_TESTS += tests/e2e/test_guessing.py
