# directory/sync.mk - sync sources: the organisation's existing directory as the source of recipients
# (directory/sync_*.c, contract in sync.h). Programs link $(SYNC_LIB) before $(REPLICATION_LIB) (it connects to the
# source as replication connects to a peer) and $(DIRECTORY_LIB) (provisioning, ldap_util).
SYNC_SRCS := directory/sync_source.c directory/sync_reconcile.c directory/sync_follow.c directory/sync_auth.c directory/sync_relay.c
SYNC_LIB := $(BUILD)/libsync.a

$(SYNC_LIB): $(call objs,$(SYNC_SRCS))
	$(archive)


# make bench: the first sync of a source of 100,000 users and 10,000 groups (tests/bench/bench_sync.py), the time a
# change there takes to arrive here, and the peak memory of the attendant and of both slapds
BENCHES += $(BUILD)/bench-sync
$(BUILD)/bench-sync: tests/bench/bench_sync.py
	$(py_bench)

UNIT_TESTS += $(BUILD)/tests/unit/test_sync_relay
$(BUILD)/tests/unit/test_sync_relay: $(call objs,tests/unit/test_sync_relay.c tests/unit/test.c) $(SYNC_LIB) \
		$(REPLICATION_LIB) $(DIRECTORY_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DIRECTORY_LDLIBS)
