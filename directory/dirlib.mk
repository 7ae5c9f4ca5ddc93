# directory/dirlib.mk - the directory client library (live replica, resolution, expansion, password checks),
# its unit and end-to-end tests, the probe program the end-to-end test drives, and the benchmark.
# Users link $(DIR_LIB) $(DIRECTORY_LIB) $(COMMON_LIB) with $(DIRECTORY_LDLIBS) (libdir uses ldap_util).
DIRLIB_SRCS := directory/dir_hash.c directory/dir_entry.c directory/dir_replica.c directory/dir_sync.c \
	directory/dir_auth.c directory/dir_ldap.c
DIR_LIB := $(BUILD)/libdir.a

$(DIR_LIB): $(call objs,$(DIRLIB_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_dir
$(BUILD)/tests/unit/test_dir: $(call objs,tests/unit/test_dir.c tests/unit/test.c) $(DIR_LIB) $(DIRECTORY_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DIRECTORY_LDLIBS)

PROGRAMS += $(BUILD)/directory/dir_probe
$(BUILD)/directory/dir_probe: $(call objs,directory/dir_probe.c) $(DIR_LIB) $(DIRECTORY_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DIRECTORY_LDLIBS)

E2E_TESTS += tests/e2e/test_replica.py

BENCHES += $(BUILD)/directory/bench_dir
$(BUILD)/directory/bench_dir: $(call objs,directory/bench_dir.c) $(DIR_LIB) $(DIRECTORY_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DIRECTORY_LDLIBS)
