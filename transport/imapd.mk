# transport/imapd.mk - ix-imapd and ix-pop3d: IMAP4rev1 and POP3 sessions over the store (libimapd.a), their
# daemons (with imapd_dir.c, the directory-backed user table), tests and benchmarks. Libraries from later fragments are named with $$ (secondary expansion).
IMAPD_SRCS := transport/imap_session.c transport/imap_cmd.c transport/imap_import.c transport/imapd_auth.c transport/pop3_session.c \
	transport/imap_session_compress.c transport/proxy.c transport/proxy_parse.c
IMAPD_LIB := $(BUILD)/libimapd.a
# COMPRESS=DEFLATE needs zlib (zlib1g-dev); without its header the capability is simply not offered.
ifneq ($(wildcard /usr/include/zlib.h),)
$(BUILD)/transport/imap_session_compress.o: CPPFLAGS += -DIMAP_HAVE_ZLIB
IMAPD_LDLIBS := -lz
else
IMAPD_LDLIBS :=
endif

$(IMAPD_LIB): $(call objs,$(IMAPD_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

PROGRAMS += $(BUILD)/ix-imapd
$(BUILD)/ix-imapd: $(call objs,transport/imapd.c transport/imapd_dir.c) $(IMAPD_LIB) $$(IMAPPARSE_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) $(IMAPD_LDLIBS)

E2E_TESTS += tests/e2e/test_imap.py

PROGRAMS += $(BUILD)/ix-pop3d
$(BUILD)/ix-pop3d: $(call objs,transport/pop3d.c transport/imapd_dir.c) $(IMAPD_LIB) $$(IMAPPARSE_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) $(IMAPD_LDLIBS)

E2E_TESTS += tests/e2e/test_pop3.py
# logins of users homed on another server, proxied there (two servers)
E2E_TESTS += tests/e2e/test_proxy.py

# make bench: idle-connection memory, IMAP throughput and a POP3 retrieve run against a started system.
BENCHES += $(BUILD)/bench-imap
$(BUILD)/bench-imap: transport/bench_imap.py
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nIX_BUILD=$(BUILD) exec python3 $(CURDIR)/transport/bench_imap.py "$$@"\n' > $@
	chmod +x $@

UNIT_TESTS += $(BUILD)/tests/unit/test_imap_session
$(BUILD)/tests/unit/test_imap_session: $(call objs,tests/unit/test_imap_session.c tests/unit/test.c) $(IMAPD_LIB) \
		$$(IMAPPARSE_LIB) $$(NET_LIB) $$(STORE_LIB) $$(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LMDB_LIBS) $(SSL_LIBS) $(SASL_LIBS) $(IMAPD_LDLIBS)

UNIT_TESTS += $(BUILD)/tests/unit/test_proxy
$(BUILD)/tests/unit/test_proxy: $(call objs,tests/unit/test_proxy.c tests/unit/test.c) $(IMAPD_LIB) $$(NET_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(SSL_LIBS) $(SASL_LIBS)

# The proxy's parsers of backend responses.
FUZZ_TARGETS += proxy
FUZZ_LIBS_proxy = $(IMAPD_LIB)

# Whole sessions fuzzed (IMAP, and POP3 when the input starts with 'P') over a socketpair and a temporary store.
FUZZ_TARGETS += imap_session
FUZZ_LIBS_imap_session = $(IMAPD_LIB) $(IMAPPARSE_LIB) $(NET_LIB) $(STORE_LIB) $(MIME_LIB)
FUZZ_LDLIBS_imap_session := $(LMDB_LIBS) $(SSL_LIBS) $(SASL_LIBS) $(IMAPD_LDLIBS)
