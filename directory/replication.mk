# directory/replication.mk - one organisation, many servers: join and multi-provider replication kept in step with
# the directory (directory/replication_*.c, contract in replication.h), the in-place upgrades of data folders made by
# older versions (directory/upgrade.c), their unit test, and the multi-server and multi-host end-to-end tests.
# Programs link $(REPLICATION_LIB) before $(DIRECTORY_LIB) (it uses slapd.c and ldap_util.c).
REPLICATION_SRCS := directory/replication_servers.c directory/replication_certs.c directory/replication_config.c \
	directory/replication_join.c directory/replication_status.c directory/upgrade.c
REPLICATION_LIB := $(BUILD)/libreplication.a

$(REPLICATION_LIB): $(call objs,$(REPLICATION_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_replication
$(BUILD)/tests/unit/test_replication: $(call objs,tests/unit/test_replication.c tests/unit/test.c) $(REPLICATION_LIB) \
		$(DIRECTORY_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DIRECTORY_LDLIBS)

E2E_TESTS += tests/e2e/test_multiserver.py
# servers on separate network stacks (network namespaces, as root; SKIP elsewhere)
E2E_TESTS += tests/e2e/test_hosts.py

# make bench: replication latency between two servers and cross-server delivery (tests/e2e/test_multiserver_bench.py)
BENCHES += $(BUILD)/bench-multiserver
$(BUILD)/bench-multiserver: tests/e2e/test_multiserver_bench.py
	$(py_bench)
