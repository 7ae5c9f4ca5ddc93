# store/store.mk - the information store library (libstore.a on LMDB), its unit tests, benchmark and fuzz target.
# Uses MIME_LIB from store/mime.mk (sorted before this file) when it exists; without it the cache stays empty.
STORE_SRCS := store/store.c store/store_folder.c store/store_msg.c store/store_acl.c store/store_check.c \
	store/store_notify.c store/store_cache.c store/store_move.c store/store_annot.c store/store_sieve.c
STORE_LIB := $(BUILD)/libstore.a
STORE_LDLIBS := $(LMDB_LIBS) $(ICU_LIBS) -lcrypto

ifdef MIME_LIB
STORE_MIME_LIB := $(MIME_LIB)
$(call objs,$(STORE_SRCS) tests/unit/test_store.c store/bench_store.c): CPPFLAGS += -DSTORE_HAVE_MIME
endif

$(STORE_LIB): $(call objs,$(STORE_SRCS))
	$(archive)

STORE_TEST_DEPS := $(STORE_LIB) $(STORE_MIME_LIB) $(COMMON_LIB)

UNIT_TESTS += $(BUILD)/tests/unit/test_store $(BUILD)/tests/unit/test_store_stress
$(BUILD)/tests/unit/test_store: $(call objs,tests/unit/test_store.c tests/unit/test.c) $(STORE_TEST_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(STORE_LDLIBS)
$(BUILD)/tests/unit/test_store_stress: $(call objs,tests/unit/test_store_stress.c tests/unit/test.c) \
		$(STORE_TEST_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(STORE_LDLIBS)

BENCHES += $(BUILD)/store/bench_store
$(BUILD)/store/bench_store: $(call objs,store/bench_store.c) $(STORE_TEST_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(STORE_LDLIBS)

FUZZ_TARGETS += store_names
FUZZ_LIBS_store_names := $(STORE_LIB) $(STORE_MIME_LIB)
FUZZ_LDLIBS_store_names := $(STORE_LDLIBS)

FUZZ_TARGETS += store_append
FUZZ_LIBS_store_append := $(STORE_LIB) $(STORE_MIME_LIB)
FUZZ_LDLIBS_store_append := $(STORE_LDLIBS)
