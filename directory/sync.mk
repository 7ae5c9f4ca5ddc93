# directory/sync.mk - sync sources: the organisation's existing directory as the source of recipients
# (directory/sync_*.c, contract in sync.h). Programs link $(SYNC_LIB) before $(REPLICATION_LIB) (it connects to the
# source as replication connects to a peer) and $(DIRECTORY_LIB) (provisioning, ldap_util).
SYNC_SRCS := directory/sync_source.c directory/sync_reconcile.c directory/sync_follow.c directory/sync_auth.c
SYNC_LIB := $(BUILD)/libsync.a

$(SYNC_LIB): $(call objs,$(SYNC_SRCS))
	$(archive)

