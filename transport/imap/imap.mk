# transport/imap/ - IMAP4rev1: the pure protocol parsers (commands, SEARCH, FETCH, modified UTF-7:
# libimapparse.a), the sessions over the store (libimapd.a) and the ix-imapd daemon; their tests and benchmark.
IMAPPARSE_SRCS := transport/imap/imap_parse.c transport/imap/mutf7.c transport/imap/imap_fetch.c \
	transport/imap/imap_search.c transport/imap/imap_sort.c transport/imap/imap_objectid.c \
	transport/imap/imap_metadata.c transport/imap/imap_notify.c transport/imap/imap_url.c
IMAPPARSE_LIB := $(BUILD)/libimapparse.a

$(IMAPPARSE_LIB): $(call objs,$(IMAPPARSE_SRCS))
	$(archive)

IMAPD_SRCS := transport/imap/imap_session.c transport/imap/imap_output.c transport/imap/imap_watch.c \
	transport/imap/imap_view.c transport/imap/imap_mailbox.c transport/imap/imap_folders.c transport/imap/imap_list.c \
	transport/imap/imap_quota_acl.c transport/imap/imap_cmd.c transport/imap/imap_import.c \
	transport/imap/imap_session_compress.c transport/imap/imap_sort_cmd.c transport/imap/imap_objects.c \
	transport/imap/imap_context.c transport/imap/imap_metadata_cmd.c \
	transport/imap/imap_notify_cmd.c transport/imap/imap_catenate.c transport/imap/imap_urlauth_cmd.c
IMAPD_LIB := $(BUILD)/libimapd.a
# COMPRESS=DEFLATE needs zlib (zlib1g-dev); without its header the capability is simply not offered.
ifneq ($(wildcard /usr/include/zlib.h),)
$(BUILD)/transport/imap/imap_session_compress.o: CPPFLAGS += -DIMAP_HAVE_ZLIB
IMAPD_LDLIBS := -lz
else
IMAPD_LDLIBS :=
endif

$(IMAPD_LIB): $(call objs,$(IMAPD_SRCS))
	$(archive)

# URLAUTH over the store (imap_urlauth.c): IMAP's GENURLAUTH/URLFETCH and the submission server's BURL, with the
# URL parser it needs and the blocking IMAP client (imap_client.c) BURL fetches other servers' URLs with.
IMAPURL_LIB := $(BUILD)/libimapurl.a
$(IMAPURL_LIB): $(call objs,transport/imap/imap_urlauth.c transport/imap/imap_url.c transport/imap/imap_client.c)
	$(archive)

PROGRAMS += $(BUILD)/ix-imapd
$(BUILD)/ix-imapd: $(call objs,transport/imap/imapd.c) $(IMAPD_LIB) $(IMAPURL_LIB) $$(LOGIN_LIB) $(IMAPPARSE_LIB) \
		$$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) $(IMAPD_LDLIBS)

UNIT_TESTS += $(BUILD)/tests/unit/test_imap_parse
$(BUILD)/tests/unit/test_imap_parse: $(call objs,tests/unit/test_imap_parse.c tests/unit/test.c) $(IMAPPARSE_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(ICU_LIBS)

UNIT_TESTS += $(BUILD)/tests/unit/test_mutf7
$(BUILD)/tests/unit/test_mutf7: $(call objs,tests/unit/test_mutf7.c tests/unit/test.c) $(IMAPPARSE_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^

UNIT_TESTS += $(BUILD)/tests/unit/test_imap_session
$(BUILD)/tests/unit/test_imap_session: $(call objs,tests/unit/test_imap_session.c tests/unit/test.c) $(IMAPD_LIB) $$(POP3_LIB) \
		$(IMAPURL_LIB) $$(LOGIN_LIB) $(IMAPPARSE_LIB) $$(NET_LIB) $$(STORE_LIB) $$(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LMDB_LIBS) $(ICU_LIBS) $(SSL_LIBS) $(SASL_LIBS) $(IMAPD_LDLIBS)

FUZZ_TARGETS += imap mutf7 imap_sort imap_url
FUZZ_LIBS_imap := $(IMAPPARSE_LIB)
FUZZ_LIBS_mutf7 := $(IMAPPARSE_LIB)
FUZZ_LIBS_imap_sort := $(IMAPPARSE_LIB)
FUZZ_LIBS_imap_url := $(IMAPPARSE_LIB)
FUZZ_LDLIBS_imap := $(ICU_LIBS)
FUZZ_LDLIBS_imap_sort := $(ICU_LIBS)

# Whole sessions fuzzed (IMAP, and POP3 when the input starts with 'P') over a socketpair and a temporary store.
FUZZ_TARGETS += imap_session
FUZZ_LIBS_imap_session = $(IMAPD_LIB) $(IMAPURL_LIB) $(POP3_LIB) $(LOGIN_LIB) $(IMAPPARSE_LIB) $(NET_LIB) $(STORE_LIB) $(MIME_LIB)
FUZZ_LDLIBS_imap_session := $(LMDB_LIBS) $(ICU_LIBS) $(SSL_LIBS) $(SASL_LIBS) $(IMAPD_LDLIBS)

E2E_TESTS += tests/e2e/test_imap.py
# URLAUTH and BURL across IMAP and submission, CATENATE over the daemon
E2E_TESTS += tests/e2e/test_burl.py
# a webmail (Roundcube) listing a 10,000-message folder sorted and threaded by the server
E2E_TESTS += tests/e2e/test_webmail.py
# The stress driver (tests/stress/imap_stress.py): 20 clients, 20 s, every untagged response checked.
E2E_TESTS += tests/e2e/test_imap_stress.py

# make bench: idle-connection memory, IMAP throughput and a POP3 retrieve run against a started system.
BENCHES += $(BUILD)/bench-imap
$(BUILD)/bench-imap: transport/imap/bench_imap.py
	$(py_bench)
# The stress driver's figures, and the peer stack's (Dovecot) with the same driver in the same run.
BENCHES += $(BUILD)/bench-imap-stress
$(BUILD)/bench-imap-stress: tests/stress/bench_imap_stress.py
	$(py_bench)

UNIT_TESTS += $(BUILD)/tests/unit/test_imap_sort
$(BUILD)/tests/unit/test_imap_sort: $(call objs,tests/unit/test_imap_sort.c tests/unit/test.c) $(IMAPPARSE_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(ICU_LIBS)
