# transport/net/ - the network foundation of every protocol: TLS (OpenSSL), buffered connections on the event
# loop, SASL (Cyrus), the TCP options of every connection. Everything lands in libnet.a; daemons link it with
# COMMON_LIB.
NET_SRCS := transport/net/tls.c transport/net/tls_peers.c transport/net/conn.c transport/net/sasl.c transport/net/tcp.c \
	transport/net/jwt.c transport/net/oauth.c transport/net/bearer.c
NET_LIB := $(BUILD)/libnet.a
NET_LDLIBS := $(SSL_LIBS) $(SASL_LIBS)

$(NET_LIB): $(call objs,$(NET_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_tls
$(BUILD)/tests/unit/test_tls: $(call objs,tests/unit/test_tls.c tests/unit/test.c) $(NET_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(NET_LDLIBS)

# JWTs (Ed25519, P-256) and the OAUTHBEARER / XOAUTH2 exchanges
UNIT_TESTS += $(BUILD)/tests/unit/test_jwt
$(BUILD)/tests/unit/test_jwt: $(call objs,tests/unit/test_jwt.c tests/unit/test.c) $(NET_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(NET_LDLIBS)

# connections, driven by real SMTP sessions
UNIT_TESTS += $(BUILD)/tests/unit/test_conn
$(BUILD)/tests/unit/test_conn: $(call objs,tests/unit/test_conn.c tests/unit/test.c) $$(SMTP_LIB) $(NET_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(NET_LDLIBS)

# clients that write a command, a literal or the end of DATA in several segments (TCP_NODELAY, TCP_QUICKACK)
E2E_TESTS += tests/e2e/test_segments.py

# make bench: those clients' median time next to the same transaction written in one segment
BENCHES += $(BUILD)/bench-segments
$(BUILD)/bench-segments: transport/net/bench_segments.py
	$(py_bench)

# sign-in with OAuth bearer tokens (OAUTHBEARER, XOAUTH2): curl over IMAP, POP3 and SMTP, tokens minted by the test
E2E_TESTS += tests/e2e/test_oauth.py

# sign-in with Kerberos (GSSAPI): a real MIT KDC of two realms, curl, imtest and ldapwhoami
E2E_TESTS += tests/e2e/test_kerberos.py

# make bench: IMAP sign-ins per second, PLAIN next to OAUTHBEARER and GSSAPI
BENCHES += $(BUILD)/bench-signin
$(BUILD)/bench-signin: transport/net/bench_signin.py
	$(py_bench)

# Our Cyrus SASL plugin giving slapd OAUTHBEARER and XOAUTH2 (transport/net/ixoauth.c), built from its sources with
# only its entry point visible; slapd loads it from its plugin folder (directory/slapd.c), as it loads ixplain.
IXOAUTH_SRCS := transport/net/ixoauth.c transport/net/bearer.c transport/net/jwt.c transport/net/oauth.c common/buf.c \
	common/base64.c common/util.c common/log.c common/err.c
PROGRAMS += $(BUILD)/libixoauth.so
$(BUILD)/libixoauth.so: $(IXOAUTH_SRCS) $(wildcard transport/net/*.h common/*.h) directory/slapd_plugin.h
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -I. -O2 -g -std=c11 $(WARN) -fPIC -shared -fvisibility=hidden -pthread -Wl,--no-undefined \
		-o $@ $(IXOAUTH_SRCS) -lldap -llber -ljansson -lssl -lcrypto

# Cyrus SASL's own client side (libsasl2) with channel binding, which test_scram and the SCRAM benchmark drive
# (tests/e2e/sasl_client.c: imtest binds no channel under TLS 1.3)
PROGRAMS += $(BUILD)/tests/e2e/sasl_client
$(BUILD)/tests/e2e/sasl_client: tests/e2e/sasl_client.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -O2 -g -std=c11 $(WARN) -o $@ $< $(SASL_LIBS) $(SSL_LIBS)
