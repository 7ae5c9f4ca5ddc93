# transport/imapd.mk - ix-imapd and ix-pop3d: IMAP4rev1 and POP3 sessions over the store (libimapd.a), their
# daemons, tests and benchmarks. Libraries from later fragments are named with $$ (secondary expansion).
IMAPD_SRCS := transport/imap_session.c transport/imap_cmd.c transport/imapd_auth.c transport/pop3_session.c
IMAPD_LIB := $(BUILD)/libimapd.a

$(IMAPD_LIB): $(call objs,$(IMAPD_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

PROGRAMS += $(BUILD)/ix-imapd
$(BUILD)/ix-imapd: $(call objs,transport/imapd.c) $(IMAPD_LIB) $$(IMAPPARSE_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS)

E2E_TESTS += tests/e2e/test_imap.py

PROGRAMS += $(BUILD)/ix-pop3d
$(BUILD)/ix-pop3d: $(call objs,transport/pop3d.c) $(IMAPD_LIB) $$(IMAPPARSE_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS)

E2E_TESTS += tests/e2e/test_pop3.py
